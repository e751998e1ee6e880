//! The driver restarted from a persisted record, on a real RocksDB.

use std::sync::Arc;
use std::time::Duration;

use prost::Message;
use quorate_consensus::{
    BlockId, Proposal, Signable, Signed, SignedProposal, SignedVote, Signer, Timeouts, Vote,
    VoteKind,
};
use quorate_proto::v1::{consensus_record::Entry, Block, ConsensusRecord};
use tokio::sync::{watch, Notify};

use super::codec::record_of_signed;
use super::signing::ConsensusSigner;
use super::Driver;
use crate::storage::Head;
use crate::testutil::TestChain;

fn fast_timeouts() -> Timeouts {
    Timeouts {
        propose_ms: 300,
        prevote_ms: 50,
        precommit_ms: 50,
        delta_ms: 10,
        max_ms: 1000,
        rebroadcast_ms: 200,
    }
}

/// The driver of a one-validator chain with fast timers, publishing its heads on `heads`.
fn single_validator_driver(t: &TestChain, heads: watch::Sender<Head>) -> Driver {
    Driver {
        chain: t.chain.clone(),
        mempool: t.mempool.clone(),
        admitted: Arc::new(Notify::new()),
        key: t.validator.clone(),
        block_interval: Duration::from_millis(5),
        empty_block_interval: Duration::from_millis(20),
        timeouts: fast_timeouts(),
        heads,
        status: watch::channel(Default::default()).0,
        max_clock_drift: Duration::from_secs(2),
        network: None,
        bodies: Default::default(),
        byzantine: Default::default(),
    }
}

/// Runs the driver until the head reaches `height`, then stops it.
async fn run_until(t: &TestChain, height: u64) -> Head {
    let (heads_tx, mut heads) = watch::channel(t.chain.head());
    let (stop, stop_rx) = watch::channel(false);
    let driver = single_validator_driver(t, heads_tx);
    let task = tokio::spawn(driver.run(stop_rx));
    let head = tokio::time::timeout(Duration::from_secs(60), async {
        loop {
            let h = heads.borrow_and_update().clone();
            if h.height >= height {
                return h;
            }
            heads.changed().await.expect("driver alive");
        }
    })
    .await
    .expect("head reached in time");
    stop.send(true).expect("driver listening");
    task.await.expect("joins").expect("driver ok");
    head
}

fn signed_vote(signer: &ConsensusSigner, kind: VoteKind, block: BlockId) -> Signed {
    let vote = Vote {
        height: 1,
        round: 0,
        kind,
        block: Some(block),
        validator: 0,
    };
    let signature = signer.sign(Signable::Vote(&vote));
    Signed::Vote(SignedVote { vote, signature })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_commits_exactly_the_block_it_had_precommitted() {
    let t = TestChain::new(2);
    t.admit_ok(vec![t.transfer(0, t.addr(1), 5, 0)]);
    let candidates = t.mempool.lock().select(100, 1 << 20);
    let (block, _) = t
        .chain
        .propose(candidates, t.validator.public().0, 1)
        .expect("propose");
    let id = BlockId(block.hash.0);
    let signer = ConsensusSigner {
        chain_id: t.genesis.chain_id.clone(),
        key: t.validator.clone(),
    };
    let proposal = Proposal {
        height: 1,
        round: 0,
        block: id,
        pol_round: None,
        proposer: 0,
    };
    let signature = signer.sign(Signable::Proposal(&proposal));
    // What the driver writes up to its precommit, before committing: the crash comes here.
    let mut entries: Vec<Vec<u8>> = [
        Signed::Proposal(SignedProposal {
            proposal,
            signature,
        }),
        signed_vote(&signer, VoteKind::Prevote, id),
        signed_vote(&signer, VoteKind::Precommit, id),
    ]
    .iter()
    .map(|s| record_of_signed(s).encode_to_vec())
    .collect();
    entries.push(
        ConsensusRecord {
            entry: Some(Entry::LockedBlock(Block {
                header: block.header_bytes.clone(),
                transactions: block.txs.iter().map(|t| t.tx.clone()).collect(),
            })),
        }
        .encode_to_vec(),
    );
    t.chain
        .storage()
        .append_record(1, &entries)
        .expect("record");
    // A restart: same database, empty mempool.
    let t = t.reopen();
    let head = run_until(&t, 1).await;
    assert_eq!(
        head.hash, block.hash,
        "the locked block is the one committed"
    );
    assert_eq!(
        t.chain.storage().record(1).expect("read"),
        Vec::<Vec<u8>>::new(),
        "the record of a committed height is deleted with the block"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_after_a_prevote_moves_to_a_new_round_instead_of_signing_again() {
    let t = TestChain::new(2);
    let signer = ConsensusSigner {
        chain_id: t.genesis.chain_id.clone(),
        key: t.validator.clone(),
    };
    // Prevoted a block whose body died with the process.
    let lost = BlockId([0x42; 32]);
    let entry = record_of_signed(&signed_vote(&signer, VoteKind::Prevote, lost)).encode_to_vec();
    t.chain
        .storage()
        .append_record(1, &[entry])
        .expect("record");
    let t = t.reopen();
    t.admit_ok(vec![t.transfer(0, t.addr(1), 5, 0)]);
    let head = run_until(&t, 1).await;
    let record = t
        .chain
        .storage()
        .block_by_height(1)
        .expect("read")
        .expect("block 1");
    let cert = record.certificate.expect("certificate");
    assert!(
        cert.round >= 1,
        "round 0 was already voted on; the block must come from a later round"
    );
    assert_ne!(head.hash.0, lost.0);
}

/// Issue 13, defect 10: a locked block kept with the record that no longer validated was only
/// logged; the validator went on locked on a block it could not produce. It is a damaged
/// record now, and the driver refuses to run on it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_kept_block_that_no_longer_validates_stops_the_driver() {
    let t = TestChain::new(2);
    t.admit_ok(vec![t.transfer(0, t.addr(1), 5, 0)]);
    let candidates = t.mempool.lock().select(100, 1 << 20);
    let (block, _) = t
        .chain
        .propose(candidates, t.validator.public().0, 1)
        .expect("propose");
    // The body lost its transaction: it no longer matches its header.
    let damaged = ConsensusRecord {
        entry: Some(Entry::LockedBlock(Block {
            header: block.header_bytes.clone(),
            transactions: Vec::new(),
        })),
    }
    .encode_to_vec();
    t.chain
        .storage()
        .append_record(1, &[damaged])
        .expect("record");
    let t = t.reopen();
    let (heads_tx, _heads) = watch::channel(t.chain.head());
    let (_stop, stop_rx) = watch::channel(false);
    let driver = single_validator_driver(&t, heads_tx);
    let outcome = tokio::time::timeout(Duration::from_secs(30), driver.run(stop_rx))
        .await
        .expect("the driver stops at once");
    assert!(
        matches!(
            outcome,
            Err(super::DriverError::RestoredBlock { height: 1, .. })
        ),
        "{outcome:?}"
    );
}

/// Issue 24: the wait for a compact proposal's transactions was a fixed 5 s while the round
/// timers grow; on a network slow enough to need later rounds every fetch failed alike. It is
/// now at least the round's propose timeout.
#[test]
fn the_wait_for_fetched_transactions_grows_with_the_rounds() {
    let slow = Timeouts {
        propose_ms: 3_000,
        delta_ms: 1_000,
        max_ms: 30_000,
        ..fast_timeouts()
    };
    assert_eq!(super::partial_timeout(&slow, 0), super::PARTIAL_TIMEOUT);
    assert_eq!(
        super::partial_timeout(&slow, 10),
        Duration::from_millis(13_000)
    );
    assert_eq!(
        super::partial_timeout(&slow, 100),
        Duration::from_millis(30_000)
    );
}
