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
        .any(|a| matches!(a, Action::ValidateBlock { height: 1, block, .. } if *block == A)));
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

fn certificate(height: u64, round: u32, block: BlockId, who: &[u32]) -> Certificate {
    Certificate {
        height,
        round,
        block,
        signatures: who
            .iter()
            .map(|&v| {
                (
                    v,
                    vote(v, height, round, VoteKind::Precommit, Some(block)).signature,
                )
            })
            .collect(),
    }
}

/// Issue 13, defect 2: a verdict of "invalid" (a bad copy of the body, or a clock that says the
/// block is from the future) stuck for the whole height, so a validator could never commit the
/// block even once 2f+1 validators had certified it and the right body had arrived.
#[test]
fn a_certified_block_once_judged_invalid_is_judged_again_and_committed() {
    let (mut m, _) = machine(4, 2, 1, &[]);
    m.handle(proposal(1, 1, 0, A, None));
    let out = m.handle(Input::Validated {
        height: 1,
        block: A,
        valid: false,
    });
    assert_eq!(own_votes(&out), vec![(VoteKind::Prevote, None)]);
    let cert = certificate(1, 0, A, &[0, 1, 3]);
    m.handle(Input::Message(Message::Decision(cert.clone())));
    let out = m.handle(Input::Validated {
        height: 1,
        block: A,
        valid: true,
    });
    assert!(
        out.iter()
            .any(|a| matches!(a, Action::Commit(c) if *c == cert)),
        "the certified block is committed: {out:?}"
    );
    assert_eq!(m.height(), 2);
}

/// Issue 13, defect 10: `round + 1` overflowed (a panic in a build with overflow checks) once
/// f+1 validators had been seen at the last round.
#[test]
fn the_last_round_does_not_overflow() {
    let (mut m, _) = machine(4, 0, 1, &[]);
    for v in [1, 2] {
        m.handle(Input::Message(Message::Vote(vote(
            v,
            1,
            u32::MAX,
            VoteKind::Prevote,
            None,
        ))));
    }
    assert_eq!(m.round(), u32::MAX);
    m.handle(Input::Timeout(Timeout {
        height: 1,
        round: u32::MAX,
        kind: TimeoutKind::Precommit,
    }));
    assert_eq!(m.round(), u32::MAX);
}

/// Issue 13, defect 10: messages of the next height that arrive just before this validator
/// commits were dropped; the proposal of the next height then had to wait for a re-send.
#[test]
fn messages_of_the_next_height_are_kept_and_handled_after_the_commit() {
    let (mut m, _) = machine(4, 0, 1, &[]);
    // Height 2, round 0: the proposer is (2 + 0) % 4 = 2.
    let out = m.handle(proposal(2, 2, 0, B, None));
    assert!(!out
        .iter()
        .any(|a| matches!(a, Action::ValidateBlock { .. })));
    m.handle(Input::Message(Message::Decision(certificate(
        1,
        0,
        A,
        &[1, 2, 3],
    ))));
    let out = m.handle(Input::Validated {
        height: 1,
        block: A,
        valid: true,
    });
    assert_eq!(m.height(), 2);
    assert!(
        out.iter()
            .any(|a| matches!(a, Action::ValidateBlock { height: 2, block, .. } if *block == B)),
        "the kept proposal of height 2 is handled: {out:?}"
    );
}

/// Issue 13, defect 10: after a restart a proposer re-sent its votes but not its own proposal,
/// so validators that had missed it could not vote in that round.
#[test]
fn a_restarted_proposer_sends_its_proposal_again() {
    // Height 1, round 0: the proposer is validator 1.
    let p = Proposal {
        height: 1,
        round: 0,
        block: A,
        pol_round: None,
        proposer: 1,
    };
    let signed = SignedProposal {
        proposal: p,
        signature: SimSigner::new(1).sign(Signable::Proposal(&p)),
    };
    let (_, start) = machine(4, 1, 1, &[Signed::Proposal(signed.clone())]);
    assert!(
        start
            .iter()
            .any(|a| matches!(a, Action::Broadcast(Message::Proposal(sp)) if *sp == signed)),
        "{start:?}"
    );
    assert!(!start.iter().any(|a| matches!(a, Action::Persist(_))));
}

/// Issue 13, defect 10: a validator that signed a vote for height u64::MAX was taken to be
/// ahead for good and asked for decisions at every re-send. Once it answers that it holds no
/// decision, it is not asked again.
#[test]
fn a_validator_that_claimed_a_height_it_does_not_hold_is_not_asked_again() {
    let (mut m, _) = machine(4, 0, 1, &[]);
    let out = m.handle(Input::Message(Message::Vote(vote(
        2,
        u64::MAX,
        0,
        VoteKind::Prevote,
        None,
    ))));
    assert!(matches!(
        out.as_slice(),
        [Action::RequestDecision { from: 2, height: 1 }]
    ));
    let rebroadcast = || {
        Input::Timeout(Timeout {
            height: 1,
            round: 0,
            kind: TimeoutKind::Rebroadcast,
        })
    };
    let asks = |out: &[Action]| {
        out.iter()
            .filter(|a| matches!(a, Action::RequestDecision { .. }))
            .count()
    };
    assert_eq!(
        asks(&m.handle(rebroadcast())),
        1,
        "asked again while it seems ahead"
    );
    m.handle(Input::NoDecision { from: 2, height: 1 });
    // No longer taken to be ahead: a validator making no progress asks one validator per
    // re-send, in turn (validators that left the set decide nothing more, so it polls), and
    // validator 2 only in its turn.
    let mut asked = Vec::new();
    for _ in 0..3 {
        let out = m.handle(rebroadcast());
        assert!(asks(&out) <= 1);
        asked.extend(out.iter().filter_map(|a| match a {
            Action::RequestDecision { from, .. } => Some(*from),
            _ => None,
        }));
    }
    assert!(asked.iter().filter(|&&v| v == 2).count() <= 1, "{asked:?}");
}

/// Issue 13, defect 4: the host checks a proposal before it spends work on the body that came
/// with it: signature, proposer of the round, height and round window.
#[test]
fn the_host_can_check_a_proposal_before_touching_its_body() {
    let (m, _) = machine(4, 0, 1, &[]);
    let signed = |from: u32, height: u64, round: u32| {
        let p = Proposal {
            height,
            round,
            block: A,
            pol_round: None,
            proposer: from,
        };
        SignedProposal {
            proposal: p,
            signature: SimSigner::new(from).sign(Signable::Proposal(&p)),
        }
    };
    // Height 1 round 0: proposer 1; height 2 round 0: proposer 2.
    assert!(m.admissible_proposal(&signed(1, 1, 0)));
    assert!(m.admissible_proposal(&signed(2, 2, 0)));
    assert!(
        !m.admissible_proposal(&signed(2, 1, 0)),
        "not the round's proposer"
    );
    assert!(
        !m.admissible_proposal(&signed(1, 3, 2)),
        "two heights ahead"
    );
    assert!(
        !m.admissible_proposal(&signed(1, 1, 400)),
        "beyond the round window"
    );
    let mut forged = signed(1, 1, 0);
    forged.proposal.block = B;
    assert!(
        !m.admissible_proposal(&forged),
        "signature does not cover it"
    );
}

/// A set change told by the host takes effect at its height: the size, this validator's index
/// and whose signatures count all change there, not before.
#[test]
fn a_set_change_takes_effect_at_its_height() {
    use quorate_consensus::sim::{SetChange, SetSchedule};
    use std::sync::atomic::AtomicU64;
    use std::sync::Arc;
    // Node 0 alone, then nodes 5 and 0 (node 0 becomes index 1) from height 4.
    let sets = Arc::new(SetSchedule {
        genesis: vec![0],
        changes: vec![SetChange {
            decided: 1,
            effective: 4,
            members: vec![5, 0],
        }],
        nodes: 6,
    });
    let mut m = Consensus::new(
        Params::new(1, Some(0), Timeouts::default()),
        SimSigner::new(0),
        SimVerifier::with_sets(sets, Arc::new(AtomicU64::new(u64::MAX))),
        1,
        &[],
    );
    let mut actions = m.start();
    for h in 1..=3u64 {
        assert!(actions
            .iter()
            .any(|a| matches!(a, Action::BuildBlock { height, .. } if *height == h)));
        if h == 1 {
            // The host commits height 1, whose block decided the change.
            m.handle(Input::ValidatorSet {
                from: 4,
                validators: 2,
                me: Some(1),
            });
        }
        actions = m.handle(Input::BlockBuilt {
            height: h,
            round: 0,
            block: BlockId([h as u8; 32]),
        });
        assert!(actions
            .iter()
            .any(|a| matches!(a, Action::Commit(c) if c.height == h)));
        // Alone, its own precommit is the whole certificate.
        assert_eq!(m.params().validators, if h < 3 { 1 } else { 2 });
    }
    assert_eq!((m.height(), m.params().me), (4, Some(1)));
    // Index 0 (node 5) proposes round 0 of height 4: this validator does not build.
    assert!(!actions
        .iter()
        .any(|a| matches!(a, Action::BuildBlock { .. })));
    let p = Proposal {
        height: 4,
        round: 0,
        block: A,
        pol_round: None,
        proposer: 0,
    };
    // Signed by node 5 it is the proposal of index 0; signed by node 0 it is not.
    let forged = SimSigner::new(0).sign(Signable::Proposal(&p));
    let out = m.handle(Input::Message(Message::Proposal(SignedProposal {
        proposal: p,
        signature: forged,
    })));
    assert!(out.iter().any(|a| matches!(
        a,
        Action::Misbehaviour(Misbehaviour::BadSignature { validator: 0 })
    )));
    let signature = SimSigner::new(5).sign(Signable::Proposal(&p));
    let out = m.handle(Input::Message(Message::Proposal(SignedProposal {
        proposal: p,
        signature,
    })));
    assert!(out
        .iter()
        .any(|a| matches!(a, Action::ValidateBlock { height: 4, block, .. } if *block == A)));
    // Two validators: node 5's precommit (index 0) alone is not a quorum; with this
    // validator's own, it is.
    let mut precommit = vote(0, 4, 0, VoteKind::Precommit, Some(A));
    precommit.signature = SimSigner::new(5).sign(Signable::Vote(&precommit.vote));
    let out = m.handle(Input::Message(Message::Vote(precommit)));
    assert!(!out.iter().any(|a| matches!(a, Action::Commit(_))));
    let mut prevote = vote(0, 4, 0, VoteKind::Prevote, Some(A));
    prevote.signature = SimSigner::new(5).sign(Signable::Vote(&prevote.vote));
    m.handle(Input::Message(Message::Vote(prevote)));
    let out = m.handle(Input::Validated {
        height: 4,
        block: A,
        valid: true,
    });
    assert!(out
        .iter()
        .any(|a| matches!(a, Action::Commit(c) if c.height == 4)));
}
