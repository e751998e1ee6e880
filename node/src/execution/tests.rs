use crate::block_rules::BlockRejection;
use crate::chain::ClockBound;
use crate::testutil::{TestChain, BALANCE};
use quorate_proto::v1::ExecStatus;
use std::sync::Arc;

#[test]
fn validator_reexecution_accepts_honest_block_and_rejects_tampered_roots() {
    let t = TestChain::new(2);
    t.admit_ok(vec![
        t.transfer(0, t.addr(1), 10, 0),
        t.transfer(1, t.addr(0), 3, 0),
    ]);
    let candidates = t.mempool.lock().select(10, 1 << 20);
    let (block, dropped) = t
        .chain
        .propose(candidates, t.validator.public().0, 2_000)
        .expect("propose");
    assert!(dropped.is_empty());
    let ok = t
        .chain
        .validate(&block.header_bytes, block.txs.clone(), None)
        .expect("validate");
    assert_eq!(ok.map(|b| b.hash), Ok(block.hash));
    let mut bad = block.header.clone();
    bad.state_root = bytes::Bytes::copy_from_slice(&[0; 32]);
    let bad = bytes::Bytes::from(prost::Message::encode_to_vec(&bad));
    assert!(matches!(
        t.chain.validate(&bad, block.txs.clone(), None),
        Ok(Err(BlockRejection::RootsMismatch { .. }))
    ));
    let mut reordered = block.txs.clone();
    reordered.reverse();
    assert!(t
        .chain
        .validate(&block.header_bytes, reordered, None)
        .expect("validate")
        .is_err());
}

/// Issue 14 (pipelining): the next block is built and judged on a decided block's changes
/// while its commit is under way; it must be exactly the block built after the commit,
/// judged valid by a validator that committed first, and commit on top of it.
#[test]
fn a_block_built_before_its_parent_is_written_is_the_block_built_after() {
    let generated = quorate_genesis::generate("test-chain", 1, 4, BALANCE, 1_000).expect("genesis");
    let (early, late) = (
        TestChain::of_generated(&generated, 0),
        TestChain::of_generated(&generated, 0),
    );
    let first = vec![
        early.transfer(0, early.addr(1), 10, 0),
        early.transfer(1, early.addr(2), 7, 0),
    ];
    let second = vec![
        early.transfer(1, early.addr(3), 5, 1),
        early.transfer(0, early.addr(1), 4, 1),
        early.transfer(2, early.addr(0), 1, 0),
    ];
    let key = early.validator.public().0;
    let mut decided: Option<Arc<crate::storage::ExecutedBlock>> = None;
    for t in [&early, &late] {
        t.admit_ok(first.clone());
        let candidates = t.mempool.lock().select(10, 1 << 20);
        let (block, _) = t.chain.propose(candidates, key, 2_000).expect("propose");
        if let Some(d) = &decided {
            assert_eq!(block.hash, d.hash, "same first block");
        }
        decided = Some(Arc::new(block));
        t.admit_ok(second.clone());
    }
    let decided = decided.expect("built");
    // `late` commits first, then builds; `early` builds on the decided block before its
    // commit (its mempool told only that the block is decided).
    let cert = late.chain.solo_certificate(&late.validator, 0, &decided);
    late.chain.commit(&decided, &cert).expect("commit");
    late.mempool
        .lock()
        .on_commit(&decided.txs, &decided.changes);
    let candidates = late.mempool.lock().select(10, 1 << 20);
    let (after, _) = late.chain.propose(candidates, key, 3_000).expect("propose");
    early
        .mempool
        .lock()
        .on_decided(&decided.txs, &decided.changes);
    let candidates = early.mempool.lock().select(10, 1 << 20);
    assert_eq!(
        candidates.len(),
        3,
        "the decided block's transactions left out"
    );
    let (before, dropped) = early
        .chain
        .propose_on(Some(&decided), candidates, key, 3_000)
        .expect("propose on the decided block");
    assert!(dropped.is_empty());
    assert_eq!(early.chain.head().height, 0, "nothing committed yet");
    assert_eq!(before.hash, after.hash);
    assert_eq!(before.receipts, after.receipts);
    assert_eq!(before.changes, after.changes);
    // Judged on the decided block by the node still writing it, and by the one that wrote it.
    let on_decided = early
        .chain
        .validate_on(Some(&decided), &after.header_bytes, after.txs.clone(), None)
        .expect("validate");
    assert_eq!(on_decided.map(|b| b.hash), Ok(after.hash));
    let on_head = late
        .chain
        .validate_on(
            Some(&decided),
            &before.header_bytes,
            before.txs.clone(),
            None,
        )
        .expect("validate once written");
    assert_eq!(on_head.map(|b| b.hash), Ok(before.hash));
    // Without the decided block, the same header is not on the head.
    assert!(matches!(
        early
            .chain
            .validate(&after.header_bytes, after.txs.clone(), None),
        Ok(Err(BlockRejection::NotOnHead { .. }))
    ));
    early.chain.commit(&decided, &cert).expect("commit");
    let cert = early.chain.solo_certificate(&early.validator, 0, &before);
    let head = early.chain.commit(&before, &cert).expect("commit on top");
    assert_eq!(head.state_root, after.lthash.root());
}

/// Issue 13, defect 1 at the chain level: a proposal whose header bytes carry an unknown
/// field decoded to the honest header and validated under a hash other than the id the
/// certificate names; it is refused now, and the canonical bytes still validate.
#[test]
fn a_block_with_re_encoded_header_bytes_is_refused() {
    let t = TestChain::new(2);
    t.admit_ok(vec![t.transfer(0, t.addr(1), 10, 0)]);
    let candidates = t.mempool.lock().select(10, 1 << 20);
    let (block, _) = t
        .chain
        .propose(candidates, t.validator.public().0, 2_000)
        .expect("propose");
    let mut extended = block.header_bytes.to_vec();
    extended.extend_from_slice(&[0xa0, 0x01, 0x00]);
    let extended = bytes::Bytes::from(extended);
    assert!(matches!(
        t.chain.validate(&extended, block.txs.clone(), None),
        Ok(Err(BlockRejection::NonCanonicalHeader { .. }))
    ));
    let ok = t
        .chain
        .validate(&block.header_bytes, block.txs.clone(), None)
        .expect("validate")
        .expect("valid");
    assert_eq!(ok.hash, quorate_proto::Hash32::of(&block.header_bytes));
}

/// Issue 13, defect 3: a proposal's time had no upper bound, so one proposer with a clock a
/// year ahead moved chain time forward for good. A proposal may be at most the configured
/// drift ahead of the validator's clock; a decided block is judged without the clock.
#[test]
fn a_proposal_from_the_future_is_refused_unless_decided() {
    let t = TestChain::new(2);
    t.admit_ok(vec![t.transfer(0, t.addr(1), 10, 0)]);
    let candidates = t.mempool.lock().select(10, 1 << 20);
    let year_ms = 365 * 24 * 3600 * 1000;
    let now_ms = 1_700_000_000_000;
    let (block, _) = t
        .chain
        .propose(candidates, t.validator.public().0, now_ms + year_ms)
        .expect("propose");
    let clock = ClockBound {
        now_ms,
        max_drift_ms: 2_000,
    };
    assert!(matches!(
        t.chain.validate(&block.header_bytes, block.txs.clone(), Some(clock)),
        Ok(Err(BlockRejection::TimeAhead { ahead_ms, max_drift_ms: 2_000, .. })) if ahead_ms == year_ms
    ));
    let within = ClockBound {
        now_ms: now_ms + year_ms - 1_000,
        ..clock
    };
    assert!(matches!(
        t.chain
            .validate(&block.header_bytes, block.txs.clone(), Some(within)),
        Ok(Ok(_))
    ));
    assert!(matches!(
        t.chain
            .validate(&block.header_bytes, block.txs.clone(), None),
        Ok(Ok(_))
    ));
}

/// Issue 13, defects 7 and 10: the chain's block limits and the proposer named in the header
/// are checked on every block from another validator, not only on this node's own.
#[test]
fn block_limits_and_the_proposer_are_checked_on_others_blocks() {
    let t = TestChain::new(3);
    t.admit_ok(vec![
        t.transfer(0, t.addr(1), 10, 0),
        t.transfer(1, t.addr(2), 10, 0),
    ]);
    let candidates = t.mempool.lock().select(10, 1 << 20);
    let (block, _) = t
        .chain
        .propose(candidates.clone(), t.validator.public().0, 2_000)
        .expect("propose");
    let (stranger, _) = t
        .chain
        .propose(candidates, t.accounts[0].public().0, 2_000)
        .expect("propose");
    assert!(matches!(
        t.chain
            .validate(&stranger.header_bytes, stranger.txs.clone(), None),
        Ok(Err(BlockRejection::UnknownProposer(_)))
    ));
    let mut genesis = t.genesis.clone();
    genesis.params.block_max_txs = 1;
    let small = crate::testutil::TestChain::with_genesis(genesis, t.validator.clone());
    assert!(matches!(
        small
            .chain
            .validate(&block.header_bytes, block.txs.clone(), None),
        Ok(Err(BlockRejection::TooManyTxs { count: 2, max: 1 }))
    ));
}

#[test]
fn transfer_beyond_balance_fails_with_receipt_charging_only_the_fee() {
    // Two mempools of a cluster can each admit one of two transfers that together
    // overdraw; the block still executes both and the second fails with a receipt.
    let t = TestChain::new(2);
    let fee = t.genesis.params.transfer_fuel * t.genesis.params.fuel_price;
    let verify = |tx| {
        std::sync::Arc::new(
            crate::verified_tx::verify_one(tx, &t.genesis.chain_id, &t.genesis.params)
                .expect("valid"),
        )
    };
    let first = verify(t.transfer(0, t.addr(1), BALANCE - 2 * fee, 0));
    let second = verify(t.transfer(0, t.addr(1), 10, 1));
    let (block, dropped) = t
        .chain
        .propose(vec![first, second], t.validator.public().0, 2_000)
        .expect("propose");
    assert!(dropped.is_empty());
    assert_eq!(block.receipts[0].status, ExecStatus::Success as i32);
    assert_eq!(
        block.receipts[1].status,
        ExecStatus::InsufficientFunds as i32
    );
    assert_eq!(block.receipts[1].fee, fee);
    assert!(
        block.receipts[1].error.contains("below amount 10"),
        "{}",
        block.receipts[1].error
    );
    let changes: std::collections::HashMap<_, _> = block.changes.iter().cloned().collect();
    assert_eq!(
        changes[&t.addr(0)],
        crate::storage::Account {
            balance: 0,
            nonce: 2,
            keyed: false,
        }
    );
    assert_eq!(changes[&t.addr(1)].balance, BALANCE + BALANCE - 2 * fee);
}

#[test]
fn stale_nonce_is_left_out_of_a_proposal() {
    let t = TestChain::new(2);
    t.admit_ok(vec![t.transfer(1, t.addr(0), 5, 0)]);
    let mut candidates = t.mempool.lock().select(10, 1 << 20);
    candidates.push(candidates[0].clone());
    let (block, dropped) = t
        .chain
        .propose(candidates, t.validator.public().0, 3_000)
        .expect("propose");
    assert_eq!(block.txs.len(), 1);
    assert_eq!(dropped.len(), 1, "the repeated nonce is left out");
    assert_eq!(block.receipts[0].status, ExecStatus::Success as i32);
}
