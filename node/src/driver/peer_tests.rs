//! One real driver (RocksDB, execution, the state machine) of a 4-validator chain, with the
//! test playing the other three validators: what a dishonest peer sends, and what the driver
//! does with it.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use quorate_consensus::{BlockId, Proposal, Signable, Signer, Vote, VoteKind};
use quorate_proto::v1::{
    consensus_message, Block, CommitCertificate, CommitSignature, CompactBlock, ConsensusMessage,
    DecisionResponse,
};
use tokio::sync::{mpsc, watch, Notify};

use super::codec::proposal_to_proto;
use super::signing::ConsensusSigner;
use super::{now_ms, Driver};
use crate::network::{peer_id_of, Command, ConsensusEvent, Inbox, NetworkHandle};
use crate::storage::Head;
use crate::testutil::TestChain;

const N: usize = 4;

/// A 4-validator chain: the driver under test runs validator `me`; `peers[i]` holds validator
/// `i`'s chain and key, for building and signing what the test sends.
struct Harness {
    generated: quorate_genesis::Generated,
    peers: Vec<TestChain>,
    inbox: Arc<Inbox<ConsensusEvent>>,
    commands: mpsc::Receiver<Command>,
    heads: watch::Receiver<Head>,
    stop: watch::Sender<bool>,
    task: tokio::task::JoinHandle<Result<(), super::DriverError>>,
}

fn timeouts() -> quorate_consensus::Timeouts {
    quorate_consensus::Timeouts {
        propose_ms: 2_000,
        prevote_ms: 300,
        precommit_ms: 300,
        delta_ms: 100,
        max_ms: 5_000,
        rebroadcast_ms: 200,
    }
}

impl Harness {
    fn start(me: usize) -> Self {
        Self::start_with(me, timeouts())
    }

    fn start_with(me: usize, timeouts: quorate_consensus::Timeouts) -> Self {
        let generated =
            quorate_genesis::generate("peer-test", N, 2, 1_000_000, 1_000).expect("genesis");
        let peers: Vec<TestChain> = (0..N)
            .map(|i| TestChain::of_generated(&generated, i))
            .collect();
        let ids = generated
            .validator_keys
            .iter()
            .map(|k| peer_id_of(&k.public()).expect("peer id"))
            .collect::<Vec<_>>();
        let (handle, commands) =
            NetworkHandle::detached(ids.clone(), ids[me], &generated.genesis.chain_id);
        let inbox = Arc::new(Inbox::new(N + 1, 1024, 64 << 20));
        let t = &peers[me];
        let (heads_tx, heads) = watch::channel(t.chain.head());
        let (stop, stop_rx) = watch::channel(false);
        let driver = Driver {
            chain: t.chain.clone(),
            mempool: t.mempool.clone(),
            admitted: Arc::new(Notify::new()),
            key: t.validator.clone(),
            block_interval: Duration::from_millis(5),
            empty_block_interval: Duration::from_millis(50),
            timeouts,
            heads: heads_tx,
            status: watch::channel(Default::default()).0,
            max_clock_drift: Duration::from_secs(2),
            network: Some((handle, inbox.clone())),
            bodies: Default::default(),
            byzantine: Default::default(),
        };
        let task = tokio::spawn(driver.run(stop_rx));
        Self {
            generated,
            peers,
            inbox,
            commands,
            heads,
            stop,
            task,
        }
    }

    fn signer(&self, v: usize) -> ConsensusSigner {
        ConsensusSigner {
            chain_id: self.generated.genesis.chain_id.clone(),
            key: self.generated.validator_keys[v].clone(),
        }
    }

    /// A block of one transfer built by validator `v` at `time_ms`.
    fn block(&self, v: usize, time_ms: u64) -> crate::execution::ExecutedBlock {
        self.block_naming(v, v, time_ms)
    }

    /// A block of one transfer built on validator `v`'s chain, naming validator `named` as its
    /// proposer.
    fn block_naming(
        &self,
        v: usize,
        named: usize,
        time_ms: u64,
    ) -> crate::execution::ExecutedBlock {
        let p = &self.peers[v];
        let tx = p.transfer(0, p.addr(1), 5, 0);
        let verified = crate::admission::verify_one(tx, &p.genesis.chain_id, &p.genesis.params)
            .expect("valid transfer");
        let (block, _) = p
            .chain
            .propose(
                vec![Arc::new(verified)],
                self.generated.validator_keys[named].public().0,
                time_ms,
            )
            .expect("propose");
        block
    }

    /// Validator `v`'s signed proposal of `block` at height 1, round 0, with the block in
    /// compact form or none.
    fn proposal(
        &self,
        v: usize,
        block: &crate::execution::ExecutedBlock,
        body: Option<CompactBlock>,
    ) -> ConsensusEvent {
        let proposal = Proposal {
            height: 1,
            round: 0,
            block: BlockId(block.hash.0),
            pol_round: None,
            proposer: v as u32,
        };
        let signature = self.signer(v).sign(Signable::Proposal(&proposal));
        ConsensusEvent::Message(Box::new(ConsensusMessage {
            message: Some(consensus_message::Message::Proposal(proposal_to_proto(
                &quorate_consensus::SignedProposal {
                    proposal,
                    signature,
                },
            ))),
            compact_block: body,
        }))
    }

    /// A certificate for `block` at height 1, round 0, signed by `who`.
    fn certificate(
        &self,
        block: &crate::execution::ExecutedBlock,
        who: &[usize],
    ) -> CommitCertificate {
        CommitCertificate {
            height: 1,
            round: 0,
            block_hash: Bytes::copy_from_slice(&block.hash.0),
            signatures: who
                .iter()
                .map(|&v| {
                    let vote = Vote {
                        height: 1,
                        round: 0,
                        kind: VoteKind::Precommit,
                        block: Some(BlockId(block.hash.0)),
                        validator: v as u32,
                    };
                    CommitSignature {
                        validator_index: v as u32,
                        signature: Bytes::from(self.signer(v).sign(Signable::Vote(&vote)).0),
                    }
                })
                .collect(),
        }
    }

    fn body(block: &crate::execution::ExecutedBlock) -> Block {
        super::body_of(block)
    }

    fn compact(block: &crate::execution::ExecutedBlock) -> CompactBlock {
        super::compact_of(block)
    }

    /// Waits (bounded) until the driver commits height 1; returns the head.
    async fn committed(&mut self) -> Head {
        tokio::time::timeout(Duration::from_secs(30), async {
            loop {
                let h = self.heads.borrow_and_update().clone();
                if h.height >= 1 {
                    return h;
                }
                self.heads.changed().await.expect("driver alive");
            }
        })
        .await
        .expect("height 1 committed in time")
    }

    /// Waits (bounded) for a command matching `f`, returning what it maps to.
    async fn command<T>(&mut self, mut f: impl FnMut(&Command) -> Option<T>) -> T {
        tokio::time::timeout(Duration::from_secs(30), async {
            loop {
                let c = self.commands.recv().await.expect("driver alive");
                if let Some(t) = f(&c) {
                    return t;
                }
            }
        })
        .await
        .expect("command sent in time")
    }

    async fn stop(self) {
        self.stop.send(true).expect("driver listening");
        self.task.await.expect("joins").expect("driver ok");
    }
}

/// This validator's own vote of `kind` in a published command, if it is one.
fn own_vote(c: &Command, me: u32, kind: VoteKind) -> Option<Option<[u8; 32]>> {
    let m = c.published_consensus()?;
    let consensus_message::Message::Vote(v) = m.message? else {
        return None;
    };
    let expected = match kind {
        VoteKind::Prevote => quorate_proto::v1::VoteKind::Prevote,
        VoteKind::Precommit => quorate_proto::v1::VoteKind::Precommit,
    } as i32;
    (v.validator == me && v.kind == expected && v.height == 1)
        .then(|| <[u8; 32]>::try_from(v.block_hash.as_ref()).ok())
}

/// Issue 13, defect 2: a proposer sent a truncated copy of its body first; the driver kept it,
/// judged the block invalid for the whole height, and could not commit it even with its
/// certificate and the right body from sync. Now the wrong copy is refused on arrival and the
/// certified block commits.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_truncated_body_does_not_stop_the_certified_block_from_committing() {
    let mut h = Harness::start(2);
    // Height 1, round 0: the proposer is validator 1.
    let block = h.block(1, now_ms());
    let mut truncated = Harness::compact(&block);
    truncated.tx_hashes.clear();
    h.inbox.push(1, h.proposal(1, &block, Some(truncated)), 0);
    let cert = h.certificate(&block, &[0, 1, 3]);
    h.inbox.push(
        3,
        ConsensusEvent::Decision {
            from: 3,
            height: 1,
            response: Box::new(DecisionResponse {
                block: Some(Harness::body(&block)),
                certificate: Some(cert),
                ..DecisionResponse::default()
            }),
        },
        0,
    );
    let head = h.committed().await;
    assert_eq!(head.hash, block.hash);
    h.stop().await;
}

/// Issue 13, defect 3: a proposal stamped a year ahead gets a nil prevote; once 2f+1 certify
/// it anyway, the block is judged without the clock and committed like the others did.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_proposal_from_the_future_gets_a_nil_prevote_but_commits_once_certified() {
    let mut h = Harness::start(2);
    let year_ms = 365 * 24 * 3600 * 1000;
    let block = h.block(1, now_ms() + year_ms);
    h.inbox
        .push(1, h.proposal(1, &block, Some(Harness::compact(&block))), 0);
    let prevote = h.command(|c| own_vote(c, 2, VoteKind::Prevote)).await;
    assert_eq!(prevote, None, "a nil prevote for a block from the future");
    let cert = h.certificate(&block, &[0, 1, 3]);
    h.inbox.push(
        3,
        ConsensusEvent::Decision {
            from: 3,
            height: 1,
            response: Box::new(DecisionResponse {
                block: Some(Harness::body(&block)),
                certificate: Some(cert),
                ..DecisionResponse::default()
            }),
        },
        0,
    );
    let head = h.committed().await;
    assert_eq!(head.hash, block.hash);
    h.stop().await;
}

/// Issue 13, defect 8: a proposer re-sent its whole block body with every re-send of a stuck
/// round. Now only the first send carries it; a validator that got the proposal without its
/// body asks for it, and votes once it arrives.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bodies_go_out_once_and_a_missing_one_is_fetched() {
    // Validator 1 proposes at height 1, round 0: the driver under test.
    let mut h = Harness::start(1);
    let (mut with_body, mut without) = (0, 0);
    while without < 2 {
        let (id, body) = h
            .command(|c| match c.published_consensus()?.message? {
                consensus_message::Message::Proposal(p) => Some((
                    p.block_hash.clone(),
                    c.published_consensus()
                        .and_then(|m| m.compact_block)
                        .is_some(),
                )),
                _ => None,
            })
            .await;
        assert_eq!(id.len(), 32);
        if body {
            with_body += 1;
        } else {
            without += 1;
        }
    }
    assert_eq!(with_body, 1, "the body went out with the first send only");
    h.stop().await;

    // Validator 2 gets validator 1's proposal without a body: it asks validator 1 for it.
    let mut h = Harness::start(2);
    let block = h.block(1, now_ms());
    h.inbox.push(1, h.proposal(1, &block, None), 0);
    let (from, hash) = h.command(|c| c.body_request()).await;
    assert_eq!((from, hash), (1, block.hash.0));
    h.inbox.push(
        1,
        ConsensusEvent::Body {
            from: 1,
            hash,
            block: Some(Box::new(Harness::body(&block))),
        },
        0,
    );
    let prevote = h.command(|c| own_vote(c, 2, VoteKind::Prevote)).await;
    assert_eq!(prevote, Some(block.hash.0), "it prevotes the fetched block");
    h.stop().await;
}

/// Issue 13, defect 10: `header.proposer` was never checked, so a proposer could name another
/// validator as the block's proposer. A fresh proposal's header must name its signer.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fresh_proposal_must_name_its_signer_as_proposer() {
    let mut h = Harness::start(2);
    let block = h.block_naming(1, 3, now_ms());
    h.inbox
        .push(1, h.proposal(1, &block, Some(Harness::compact(&block))), 0);
    let prevote = h.command(|c| own_vote(c, 2, VoteKind::Prevote)).await;
    assert_eq!(
        prevote, None,
        "a block naming another proposer gets a nil prevote"
    );
    h.stop().await;
}

/// Issue 14: a compact proposal whose transactions are all in the mempool is filled from it
/// and voted for without asking anyone for anything.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_compact_proposal_is_filled_from_the_mempool() {
    let mut h = Harness::start(2);
    let block = h.block(1, now_ms());
    h.peers[2].admit_ok(vec![block.txs[0].tx.clone()]);
    h.inbox
        .push(1, h.proposal(1, &block, Some(Harness::compact(&block))), 0);
    let mut asked = 0;
    let prevote = h
        .command(|c| {
            asked += usize::from(c.txs_request().is_some() || c.body_request().is_some());
            own_vote(c, 2, VoteKind::Prevote)
        })
        .await;
    assert_eq!(prevote, Some(block.hash.0), "it prevotes the block");
    assert_eq!(asked, 0, "nothing was fetched");
    h.stop().await;
}

/// Issue 14: the transactions of a compact proposal missing from the mempool are asked of the
/// proposer (only those), and the block is voted for once they arrive.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn missing_transactions_of_a_compact_proposal_are_fetched_from_the_proposer() {
    let mut h = Harness::start(2);
    let block = h.block(1, now_ms());
    h.inbox
        .push(1, h.proposal(1, &block, Some(Harness::compact(&block))), 0);
    let (from, hash, hashes) = h.command(|c| c.txs_request()).await;
    assert_eq!((from, hash), (1, block.hash.0), "asked of the proposer");
    assert_eq!(hashes, vec![Bytes::copy_from_slice(&block.txs[0].hash.0)]);
    h.inbox.push(
        1,
        ConsensusEvent::Txs {
            from: 1,
            hash,
            transactions: vec![block.txs[0].tx.clone()],
        },
        0,
    );
    let prevote = h.command(|c| own_vote(c, 2, VoteKind::Prevote)).await;
    assert_eq!(
        prevote,
        Some(block.hash.0),
        "it prevotes the completed block"
    );
    h.stop().await;
}

/// Issue 14: a proposer that answers the fetch with other transactions, or with none, gets a
/// nil prevote at once — not from the propose timeout, which this test puts an hour away.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_compact_proposal_whose_fetch_fails_or_is_wrong_gets_a_nil_prevote() {
    for answer in ["other transaction", "nothing"] {
        let far = quorate_consensus::Timeouts {
            propose_ms: 3_600_000,
            ..timeouts()
        };
        let mut h = Harness::start_with(2, far);
        let block = h.block(1, now_ms());
        h.inbox
            .push(1, h.proposal(1, &block, Some(Harness::compact(&block))), 0);
        let (_, hash, _) = h.command(|c| c.txs_request()).await;
        let p = &h.peers[1];
        let transactions = match answer {
            "other transaction" => vec![p.transfer(0, p.addr(1), 6, 0)],
            _ => Vec::new(),
        };
        h.inbox.push(
            1,
            ConsensusEvent::Txs {
                from: 1,
                hash,
                transactions,
            },
            0,
        );
        let prevote = h.command(|c| own_vote(c, 2, VoteKind::Prevote)).await;
        assert_eq!(
            prevote, None,
            "a nil prevote when the proposer answers {answer}"
        );
        h.stop().await;
    }
}

/// Issue 14 (found by CI's chaos slice, where one validator never caught up): compact proposals
/// whose missing transactions never come (an answer dropped from a full inbox) each kept a
/// partial body, and the bound on kept bodies then refused the body of a certified decision as
/// well, so the validator could never commit again. Now only unsolicited proposals count
/// against the bound, and unanswered partial bodies expire.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unanswered_compact_proposals_cannot_keep_a_certified_block_out() {
    use quorate_proto::v1::BlockHeader;
    let mut h = Harness::start(2);
    // Twelve proposals of height 2 (admissible a height ahead), two per round from the right
    // proposer, each naming a transaction this validator does not hold; their fetch is never
    // answered.
    let mut asked = 0;
    for round in 1..=7u32 {
        let v = ((2 + round) % N as u32) as usize;
        if v == 2 {
            continue;
        }
        for copy in 0..2u8 {
            let missing = quorate_proto::Hash32([round as u8 * 2 + copy; 32]);
            let header = BlockHeader {
                chain_id: h.generated.genesis.chain_id.clone(),
                height: 2,
                parent_hash: Bytes::from_static(&[1; 32]),
                proposer: Bytes::copy_from_slice(&h.generated.validator_keys[v].public().0),
                time_ms: now_ms(),
                tx_root: Bytes::copy_from_slice(&quorate_proto::merkle::root(&[missing]).0),
                state_root: Bytes::from_static(&[3; 32]),
                receipts_root: Bytes::from_static(&[4; 32]),
                tx_count: 1,
                next_validators_hash: Bytes::new(),
            };
            let header_bytes = Bytes::from(prost::Message::encode_to_vec(&header));
            let proposal = Proposal {
                height: 2,
                round,
                block: BlockId(quorate_proto::Hash32::of(&header_bytes).0),
                pol_round: None,
                proposer: v as u32,
            };
            let signature = h.signer(v).sign(Signable::Proposal(&proposal));
            let sp = quorate_consensus::SignedProposal {
                proposal,
                signature,
            };
            h.inbox.push(
                v,
                ConsensusEvent::Message(Box::new(ConsensusMessage {
                    message: Some(consensus_message::Message::Proposal(proposal_to_proto(&sp))),
                    compact_block: Some(CompactBlock {
                        header: header_bytes,
                        tx_hashes: vec![Bytes::copy_from_slice(&missing.0)],
                    }),
                })),
                0,
            );
            asked += 1;
        }
    }
    let mut requests = 0;
    while requests < 12 {
        h.command(|c| c.txs_request()).await;
        requests += 1;
    }
    assert_eq!(asked, 12);
    // Height 1 is decided by the others: its certified body must be taken.
    let block = h.block(1, now_ms());
    let cert = h.certificate(&block, &[0, 1, 3]);
    h.inbox.push(
        3,
        ConsensusEvent::Decision {
            from: 3,
            height: 1,
            response: Box::new(DecisionResponse {
                block: Some(Harness::body(&block)),
                certificate: Some(cert),
                ..DecisionResponse::default()
            }),
        },
        0,
    );
    let head = h.committed().await;
    assert_eq!(head.hash, block.hash);
    h.stop().await;
}
