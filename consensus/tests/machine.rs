//! The state machine's rules one at a time, through its public interface.

use quorate_consensus::sim::{SimSigner, SimVerifier};
use quorate_consensus::{
    Action, BlockId, Certificate, Consensus, Input, Message, Misbehaviour, Params, Proposal,
    Signable, Signed, SignedProposal, SignedVote, Signer, Timeout, TimeoutKind, Timeouts, Vote,
    VoteKind,
};

type Machine = Consensus<SimSigner, SimVerifier>;

const A: BlockId = BlockId([0xaa; 32]);
const B: BlockId = BlockId([0xbb; 32]);

fn machine(n: u32, me: u32, height: u64, record: &[Signed]) -> (Machine, Vec<Action>) {
    let mut m = Consensus::new(
        Params::new(n, Some(me), Timeouts::default()),
        SimSigner::new(me),
        SimVerifier::new(n),
        height,
        record,
    );
    let actions = m.start();
    (m, actions)
}

fn proposal(from: u32, height: u64, round: u32, block: BlockId, pol: Option<u32>) -> Input {
    let proposal = Proposal {
        height,
        round,
        block,
        pol_round: pol,
        proposer: from,
    };
    let signature = SimSigner::new(from).sign(Signable::Proposal(&proposal));
    Input::Message(Message::Proposal(SignedProposal {
        proposal,
        signature,
    }))
}

fn vote(from: u32, height: u64, round: u32, kind: VoteKind, block: Option<BlockId>) -> SignedVote {
    let vote = Vote {
        height,
        round,
        kind,
        block,
        validator: from,
    };
    let signature = SimSigner::new(from).sign(Signable::Vote(&vote));
    SignedVote { vote, signature }
}

fn own_votes(actions: &[Action]) -> Vec<(VoteKind, Option<BlockId>)> {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::Broadcast(Message::Vote(v)) => Some((v.vote.kind, v.vote.block)),
            _ => None,
        })
        .collect()
}

/// Every message sent was persisted by an earlier action of the same batch or before.
fn assert_persisted_before_sent(actions: &[Action], earlier: &[Signed]) {
    let mut persisted: Vec<Signed> = earlier.to_vec();
    for a in actions {
        match a {
            Action::Persist(s) => persisted.push(s.clone()),
            Action::Broadcast(Message::Vote(v)) => {
                assert!(
                    persisted.contains(&Signed::Vote(v.clone())),
                    "{v:?} sent unpersisted"
                )
            }
            Action::Broadcast(Message::Proposal(p)) => assert!(
                persisted.contains(&Signed::Proposal(p.clone())),
                "{p:?} sent unpersisted"
            ),
            _ => {}
        }
    }
}

#[test]
fn single_validator_builds_votes_and_commits() {
    let (mut m, start) = machine(1, 0, 5, &[]);
    assert!(start.iter().any(|a| matches!(
        a,
        Action::BuildBlock {
            height: 5,
            round: 0
        }
    )));
    let out = m.handle(Input::BlockBuilt {
        height: 5,
        round: 0,
        block: A,
    });
    assert_persisted_before_sent(&out, &[]);
    assert_eq!(
        own_votes(&out),
        vec![(VoteKind::Prevote, Some(A)), (VoteKind::Precommit, Some(A))]
    );
    let cert = out
        .iter()
        .find_map(|a| match a {
            Action::Commit(c) => Some(c.clone()),
            _ => None,
        })
        .expect("commits");
    assert_eq!((cert.height, cert.round, cert.block), (5, 0, A));
    assert_eq!(cert.signatures.len(), 1);
    assert_eq!(m.height(), 6);
    assert!(out.iter().any(|a| matches!(
        a,
        Action::BuildBlock {
            height: 6,
            round: 0
        }
    )));
}

#[test]
fn invalid_block_gets_a_nil_prevote() {
    // Height 1, round 0: the proposer is validator 1.
    let (mut m, _) = machine(4, 2, 1, &[]);
    let out = m.handle(proposal(1, 1, 0, A, None));
    assert!(out
        .iter()
        .any(|a| matches!(a, Action::ValidateBlock { height: 1, block } if *block == A)));
    assert!(
        own_votes(&out).is_empty(),
        "no vote before the host answers"
    );
    let out = m.handle(Input::Validated {
        height: 1,
        block: A,
        valid: false,
    });
    assert_eq!(own_votes(&out), vec![(VoteKind::Prevote, None)]);
}

#[test]
fn valid_block_gets_a_prevote_and_a_polka_a_precommit() {
    let (mut m, _) = machine(4, 2, 1, &[]);
    m.handle(proposal(1, 1, 0, A, None));
    let out = m.handle(Input::Validated {
        height: 1,
        block: A,
        valid: true,
    });
    assert_eq!(own_votes(&out), vec![(VoteKind::Prevote, Some(A))]);
    m.handle(Input::Message(Message::Vote(vote(
        1,
        1,
        0,
        VoteKind::Prevote,
        Some(A),
    ))));
    let out = m.handle(Input::Message(Message::Vote(vote(
        3,
        1,
        0,
        VoteKind::Prevote,
        Some(A),
    ))));
    assert_eq!(own_votes(&out), vec![(VoteKind::Precommit, Some(A))]);
    assert_eq!(m.lock(), Some((0, A)));
}

#[test]
fn proposals_from_the_wrong_proposer_or_with_bad_signatures_are_refused() {
    let (mut m, _) = machine(4, 2, 1, &[]);
    let out = m.handle(proposal(3, 1, 0, A, None));
    assert!(matches!(
        out.as_slice(),
        [Action::Misbehaviour(Misbehaviour::WrongProposer {
            validator: 3,
            round: 0
        })]
    ));
    let mut forged = vote(1, 1, 0, VoteKind::Prevote, Some(A));
    forged.vote.validator = 3;
    let out = m.handle(Input::Message(Message::Vote(forged)));
    assert!(matches!(
        out.as_slice(),
        [Action::Misbehaviour(Misbehaviour::BadSignature {
            validator: 3
        })]
    ));
}

#[test]
fn a_restarted_validator_keeps_its_lock_and_never_signs_twice() {
    // Validator 2 prevoted and precommitted A in round 0, then crashed.
    let record = vec![
        Signed::Vote(vote(2, 1, 0, VoteKind::Prevote, Some(A))),
        Signed::Vote(vote(1, 1, 0, VoteKind::Prevote, Some(A))),
        Signed::Vote(vote(3, 1, 0, VoteKind::Prevote, Some(A))),
        Signed::Vote(vote(2, 1, 0, VoteKind::Precommit, Some(A))),
    ];
    let (mut m, start) = machine(4, 2, 1, &record);
    assert_eq!(m.lock(), Some((0, A)));
    // It re-sends what it signed instead of signing anything new for round 0.
    assert_eq!(
        own_votes(&start),
        vec![(VoteKind::Prevote, Some(A)), (VoteKind::Precommit, Some(A))]
    );
    assert!(!start.iter().any(|a| matches!(a, Action::Persist(_))));
    let out = m.handle(Input::Timeout(Timeout {
        height: 1,
        round: 0,
        kind: TimeoutKind::Prevote,
    }));
    assert!(own_votes(&out).is_empty());
    // Round 1 is its own ((1 + 1) % 4 = 2): it re-proposes A with its proof of lock.
    let out = m.handle(Input::Timeout(Timeout {
        height: 1,
        round: 0,
        kind: TimeoutKind::Precommit,
    }));
    let reproposed = out.iter().find_map(|a| match a {
        Action::Broadcast(Message::Proposal(p)) => Some(p.proposal),
        _ => None,
    });
    assert_eq!(
        reproposed.map(|p| (p.block, p.pol_round)),
        Some((A, Some(0)))
    );
    // In round 2 a fresh proposal of B (no proof of lock) gets a nil prevote.
    m.handle(Input::Timeout(Timeout {
        height: 1,
        round: 1,
        kind: TimeoutKind::Precommit,
    }));
    m.handle(proposal(3, 1, 2, B, None));
    let out = m.handle(Input::Validated {
        height: 1,
        block: B,
        valid: true,
    });
    assert_eq!(own_votes(&out), vec![(VoteKind::Prevote, None)]);
}

#[test]
fn decisions_need_a_valid_certificate() {
    let (mut m, _) = machine(4, 0, 1, &[]);
    let sigs = |who: &[u32]| {
        who.iter()
            .map(|&v| (v, vote(v, 1, 3, VoteKind::Precommit, Some(A)).signature))
            .collect::<Vec<_>>()
    };
    let short = Certificate {
        height: 1,
        round: 3,
        block: A,
        signatures: sigs(&[1, 2]),
    };
    let out = m.handle(Input::Message(Message::Decision(short)));
    assert!(matches!(
        out.as_slice(),
        [Action::Misbehaviour(Misbehaviour::BadCertificate {
            height: 1
        })]
    ));
    let good = Certificate {
        height: 1,
        round: 3,
        block: A,
        signatures: sigs(&[1, 2, 3]),
    };
    let out = m.handle(Input::Message(Message::Decision(good.clone())));
    assert!(out
        .iter()
        .any(|a| matches!(a, Action::ValidateBlock { block, .. } if *block == A)));
    let out = m.handle(Input::Validated {
        height: 1,
        block: A,
        valid: true,
    });
    assert!(out
        .iter()
        .any(|a| matches!(a, Action::Commit(c) if *c == good)));
    assert_eq!(m.height(), 2);
}

#[test]
fn a_validator_that_is_behind_asks_for_the_decision() {
    let (mut m, _) = machine(4, 0, 1, &[]);
    let out = m.handle(Input::Message(Message::Vote(vote(
        2,
        4,
        0,
        VoteKind::Prevote,
        None,
    ))));
    assert!(matches!(
        out.as_slice(),
        [Action::RequestDecision { from: 2, height: 1 }]
    ));
}
