use super::*;
use crate::testutil::{TestChain, BALANCE};

fn verified(t: &TestChain, from: usize, nonce: u64, amount: u64) -> Arc<VerifiedTx> {
    // Only admission makes a VerifiedTx: admit, then take it back out of the pool.
    let tx = t.transfer(from, t.addr((from + 1) % t.accounts.len()), amount, nonce);
    t.admit_ok(vec![tx]);
    let pool = t.mempool.lock();
    let hash = pool.arrival.values().last().copied().expect("inserted");
    pool.get(&hash).expect("present")
}

#[test]
fn selects_consecutive_nonces_in_arrival_order_and_fills_late_gaps() {
    let t = TestChain::new(2);
    // Account 0 sends nonce 1 before nonce 0; account 1 sends 0 then 1.
    let a1 = verified(&t, 0, 1, 1);
    let b0 = verified(&t, 1, 0, 1);
    let a0 = verified(&t, 0, 0, 1);
    let b1 = verified(&t, 1, 1, 1);
    let pool = t.mempool.lock();
    let picked: Vec<Hash32> = pool.select(10, 1 << 20).iter().map(|t| t.hash).collect();
    assert_eq!(picked.len(), 4);
    let pos = |h: &Hash32| picked.iter().position(|p| p == h).expect("picked");
    assert!(pos(&a0.hash) < pos(&a1.hash), "nonce order per account");
    assert!(pos(&b0.hash) < pos(&b1.hash));
    // Count and byte limits.
    assert_eq!(pool.select(2, 1 << 20).len(), 2);
    assert_eq!(pool.select(10, a0.encoded_len).len(), 1);
    assert_eq!(pool.next_nonce(&t.addr(0), 0), 2);
}

#[test]
fn gap_blocks_later_nonces_and_commit_prunes_stale() {
    let t = TestChain::new(2);
    let _a2 = verified(&t, 0, 2, 1);
    assert!(
        t.mempool.lock().select(10, 1 << 20).is_empty(),
        "nonce 2 waits for 0 and 1"
    );
    let _a0 = verified(&t, 0, 0, 1);
    assert_eq!(t.mempool.lock().select(10, 1 << 20).len(), 1);
    // A commit that moves account 0 to nonce 3 (as if 0..2 committed elsewhere) drops all.
    let mut pool = t.mempool.lock();
    pool.on_commit(
        &[],
        &[(
            t.addr(0),
            Account {
                balance: 5,
                nonce: 3,
                keyed: false,
            },
        )],
    );
    assert!(pool.is_empty());
    assert_eq!(pool.bytes(), 0);
}

#[test]
fn capacity_limits_refuse_with_mempool_full() {
    let t = TestChain::new(1);
    let tx = verified(&t, 0, 0, 1);
    let mut pool = Mempool::new(MempoolLimits {
        max_txs: 1,
        max_bytes: 1 << 20,
        nonce_window: 8,
    });
    let acct = Account {
        balance: 1_000_000,
        nonce: 0,
        keyed: false,
    };
    pool.insert(tx.clone(), acct, 1).expect("first fits");
    let second = verified(&t, 0, 1, 1);
    assert!(matches!(
        pool.insert(second, acct, 1),
        Err(AdmissionError::MempoolFull { txs: 1, .. })
    ));
    let mut by_bytes = Mempool::new(MempoolLimits {
        max_txs: 10,
        max_bytes: tx.encoded_len - 1,
        nonce_window: 8,
    });
    assert!(matches!(
        by_bytes.insert(tx, acct, 1),
        Err(AdmissionError::MempoolFull { .. })
    ));
}

/// Issue 14 (pipelining): a decided block's transactions stop being pending at once — not
/// selected, not counted, so an idle proposer does not cut an empty block for them — while a
/// status query still finds them until the commit is written; their nonces are refused again.
#[test]
fn a_decided_blocks_transactions_leave_the_pending_set_but_stay_findable_until_written() {
    let t = TestChain::new(2);
    let a0 = verified(&t, 0, 0, 1);
    let a1 = verified(&t, 0, 1, 1);
    let b0 = verified(&t, 1, 0, 1);
    let changes = [(
        t.addr(0),
        Account {
            balance: BALANCE - 100,
            nonce: 1,
            keyed: false,
        },
    )];
    let mut pool = t.mempool.lock();
    pool.on_decided(std::slice::from_ref(&a0), &changes);
    assert_eq!(pool.len(), 2, "a0 is no longer pending");
    assert!(pool.get(&a0.hash).is_some(), "still found while written");
    let picked: Vec<Hash32> = pool.select(10, 1 << 20).iter().map(|t| t.hash).collect();
    assert_eq!(picked, vec![a1.hash, b0.hash]);
    assert_eq!(pool.next_nonce(&t.addr(0), 0), 2, "past the decided nonce");
    drop(pool);
    // The storage still says nonce 0 for account 0: the decided block's nonce is refused,
    // and a0 itself is a duplicate.
    let again = t.transfer(0, t.addr(1), 2, 0);
    let refused = t.admission.admit(vec![again]).expect("admit");
    assert!(
        matches!(
            refused[0].result,
            Err(AdmissionError::NonceUsed {
                nonce: 0,
                next: 1,
                ..
            })
        ),
        "{:?}",
        refused[0].result
    );
    let mut pool = t.mempool.lock();
    pool.on_commit(std::slice::from_ref(&a0), &changes);
    assert!(pool.get(&a0.hash).is_none(), "gone once written");
    assert_eq!(pool.len(), 2);
}

/// Issue 25 (low): when a block's copy of a pending transaction had another leaf (the same
/// transaction signed by another of the account's keys), the pending copy's leaf stayed in
/// the leaf map for good: a leak per such block. And the decided copy's leaf was not found
/// while its commit was written.
#[test]
fn a_decided_copy_with_another_leaf_leaves_no_leaf_behind() {
    use quorate_proto::tx::{body_for, sign};
    use quorate_proto::v1::{key_change, tx_body, KeyChange, Transfer, WeightedKey};
    let t = TestChain::new(2);
    let (a, b) = (t.accounts[0].clone(), t.accounts[1].clone());
    let fuel = t.genesis.params.transfer_fuel;
    let add = sign(
        &quorate_proto::tx::body(
            &t.genesis.chain_id,
            &a,
            0,
            fuel,
            tx_body::Payload::Keys(KeyChange {
                change: Some(key_change::Change::AddKey(WeightedKey {
                    public_key: bytes::Bytes::copy_from_slice(&b.public().0),
                    weight: 1,
                })),
            }),
        ),
        &a,
    );
    t.admit_ok(vec![add]);
    t.produce().expect("block");
    // One transfer of account 0, signed by a (pending here) and by b (in the block).
    let body = body_for(
        &t.genesis.chain_id,
        t.addr(0),
        1,
        fuel,
        tx_body::Payload::Transfer(Transfer {
            to: bytes::Bytes::copy_from_slice(&t.addr(1).0),
            amount: 3,
            memo: bytes::Bytes::new(),
        }),
    );
    t.admit_ok(vec![sign(&body, &a)]);
    let by_b = Arc::new(
        crate::verified_tx::verify_one(sign(&body, &b), &t.genesis.chain_id, &t.genesis.params)
            .expect("valid"),
    );
    let mut pool = t.mempool.lock();
    let pending_leaf = pool.get(&by_b.hash).expect("pending").leaf;
    assert_ne!(pending_leaf, by_b.leaf, "two copies, two leaves");
    let after = [(
        t.addr(0),
        Account {
            balance: BALANCE,
            nonce: 2,
            keyed: true,
        },
    )];
    pool.on_decided(std::slice::from_ref(&by_b), &after);
    assert_eq!(
        pool.get_leaf(&by_b.leaf).map(|tx| tx.leaf),
        Some(by_b.leaf),
        "the decided copy is found by its leaf while its commit is written"
    );
    pool.on_commit(std::slice::from_ref(&by_b), &after);
    assert!(pool.is_empty());
    assert!(pool.leaves.is_empty(), "leaves left: {:?}", pool.leaves);
}
