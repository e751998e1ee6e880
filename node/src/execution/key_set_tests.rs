//! Execution of multi-key transactions: registration, the re-check against the key set at the
//! block, and that a transaction left out of a block leaves nothing behind.

use std::sync::Arc;

use bytes::Bytes;
use quorate_proto::keyset;
use quorate_proto::tx::{body_for, cosign, sign};
use quorate_proto::v1::{
    key_change, tx_body, KeyChange, KeySet, Thresholds, Transfer, WeightedKey,
};
use quorate_proto::{Address, Keypair};

use crate::testutil::TestChain;
use crate::verified_tx::VerifiedTx;
use quorate_proto::v1::ExecStatus;

fn verified(t: &TestChain, tx: quorate_proto::v1::Transaction) -> Arc<VerifiedTx> {
    Arc::new(
        crate::verified_tx::verify_one(tx, &t.genesis.chain_id, &t.genesis.params).expect("valid"),
    )
}

/// Account 0's key change `c` at `nonce`, signed by its key.
fn key_change_of_0(
    t: &TestChain,
    nonce: u64,
    c: key_change::Change,
) -> quorate_proto::v1::Transaction {
    let a = &t.accounts[0];
    let p = tx_body::Payload::Keys(KeyChange { change: Some(c) });
    let fuel = t.genesis.params.transfer_fuel;
    sign(
        &quorate_proto::tx::body(&t.genesis.chain_id, a, nonce, fuel, p),
        a,
    )
}

/// Account 0 adds account 1's key (weight 1; every threshold stays 1), committed: the key
/// change.
fn add_key_of_1_to_0(t: &TestChain) -> quorate_proto::v1::Transaction {
    let add = key_change_of_0(
        t,
        0,
        key_change::Change::AddKey(WeightedKey {
            public_key: Bytes::copy_from_slice(&t.accounts[1].public().0),
            weight: 1,
        }),
    );
    t.admit_ok(vec![add.clone()]);
    t.produce().expect("block");
    add
}

fn two_of_two(a: &Keypair, b: &Keypair) -> KeySet {
    let thresholds = Thresholds {
        base: 2,
        key_management: 2,
        ..Thresholds::default()
    };
    keyset::of(&[(a.public().0, 1), (b.public().0, 1)], thresholds)
}

fn transfer(to: Address, amount: u64) -> tx_body::Payload {
    tx_body::Payload::Transfer(Transfer {
        to: Bytes::copy_from_slice(&to.0),
        amount,
        memo: Bytes::new(),
    })
}

#[test]
fn a_registration_that_cannot_pay_its_fee_leaves_nothing_behind() {
    let t = TestChain::new(2);
    let (a, b) = (&t.accounts[0], &t.accounts[1]);
    let set = two_of_two(a, b);
    let unfunded = keyset::address(&set);
    let fuel = t.genesis.params.transfer_fuel;
    let mut body = body_for(
        &t.genesis.chain_id,
        unfunded,
        0,
        fuel,
        transfer(t.addr(0), 1),
    );
    body.key_set = Some(set);
    let mut tx = sign(&body, a);
    assert!(cosign(&mut tx, b));
    let (block, dropped) = t
        .chain
        .propose(vec![verified(&t, tx)], t.validator.public().0, 1_000)
        .expect("propose");
    assert_eq!(dropped.len(), 1, "it cannot pay its fee");
    assert!(block.txs.is_empty());
    assert!(
        block.entries.is_empty(),
        "no key set registered: {:?}",
        block.entries
    );
    assert!(block.changes.is_empty(), "{:?}", block.changes);
}

#[test]
fn a_key_removed_earlier_in_the_block_makes_its_transaction_a_failed_receipt() {
    let t = TestChain::new(2);
    let b = &t.accounts[1];
    let fuel = t.genesis.params.transfer_fuel;
    let change = |nonce, c| key_change_of_0(&t, nonce, c);
    // Account 0 adds b's key (weight 1; every threshold stays 1).
    let add = add_key_of_1_to_0(&t);
    assert_eq!(t.receipt(&add).status, ExecStatus::Success as i32);
    // One block: remove b, then a transfer b signed for account 0.
    let remove = change(
        1,
        key_change::Change::RemoveKey(Bytes::copy_from_slice(&b.public().0)),
    );
    let by_b = sign(
        &body_for(
            &t.genesis.chain_id,
            t.addr(0),
            2,
            fuel,
            transfer(t.addr(1), 5),
        ),
        b,
    );
    let (block, dropped) = t
        .chain
        .propose(
            vec![verified(&t, remove), verified(&t, by_b)],
            t.validator.public().0,
            2_000,
        )
        .expect("propose");
    assert!(dropped.is_empty());
    let r = &block.receipts[1];
    assert_eq!(r.status, ExecStatus::InsufficientWeight as i32, "{r:?}");
    assert_eq!(
        (r.fee, r.fuel_used),
        (fuel * t.genesis.params.fuel_price, fuel),
        "a transfer's fee"
    );
    assert!(r.error.contains("is not a key of account"), "{}", r.error);
    let account0 = block
        .changes
        .iter()
        .find(|(addr, _)| *addr == t.addr(0))
        .expect("account 0 changed")
        .1;
    assert_eq!(account0.nonce, 3, "the transaction's nonce is used");
    assert!(
        block.changes.iter().all(|(addr, _)| *addr != t.addr(1)),
        "nothing moved"
    );
    let sets = block.key_set_changes();
    assert_eq!(sets.len(), 1);
    assert_eq!(sets[0].1.keys.len(), 1, "only a's key is left");
}

/// Issue 24 (finding "void anyone's pending transaction for free"): a proposer added a foreign
/// cosignature to a pending transaction, or re-signed a keyed account's transaction with its own
/// key. Execution gave an `INSUFFICIENT_WEIGHT` receipt (no fee), so the block was valid and the
/// real transaction was evicted everywhere. Signing keys that do not authorise the transaction
/// against the key set the block started with are the proposer's fault: the transaction cannot
/// be included (the block is invalid). Only a key set changed earlier in the same block yields
/// the receipt (the test above).
#[test]
fn keys_that_never_authorised_a_transaction_make_it_never_includable() {
    let t = TestChain::new(3);
    let (a, b, liar) = (&t.accounts[0], &t.accounts[1], &t.accounts[2]);
    let fuel = t.genesis.params.transfer_fuel;
    // A single-key account's transfer with a foreign cosignature added.
    let mut cosigned = t.transfer(0, t.addr(1), 5, 0);
    assert!(cosign(&mut cosigned, liar));
    // Account 1 becomes keyed (adds a's key; every threshold stays 1); then its transfer,
    // re-signed by the liar's key.
    let add = sign(
        &quorate_proto::tx::body(
            &t.genesis.chain_id,
            b,
            0,
            fuel,
            tx_body::Payload::Keys(KeyChange {
                change: Some(key_change::Change::AddKey(WeightedKey {
                    public_key: Bytes::copy_from_slice(&a.public().0),
                    weight: 1,
                })),
            }),
        ),
        b,
    );
    t.admit_ok(vec![add.clone()]);
    t.produce().expect("block");
    assert_eq!(t.receipt(&add).status, ExecStatus::Success as i32);
    let resigned = sign(
        &body_for(
            &t.genesis.chain_id,
            t.addr(1),
            1,
            fuel,
            transfer(t.addr(0), 5),
        ),
        liar,
    );
    for (what, tx) in [("foreign cosignature", cosigned), ("re-signed", resigned)] {
        let (block, dropped) = t
            .chain
            .propose(vec![verified(&t, tx)], t.validator.public().0, 2_000)
            .expect("propose");
        assert_eq!(dropped.len(), 1, "{what}: never includable");
        assert!(
            dropped[0].1.to_string().contains("not a key of account"),
            "{what}: {}",
            dropped[0].1
        );
        assert!(block.txs.is_empty(), "{what}: no receipt");
    }
}

/// Issue 25 (high): an `INSUFFICIENT_WEIGHT` receipt left the nonce unused and the docs said
/// to resubmit "the same one with enough weight": the same hash was then included a second
/// time, the index by hash pointed at the second inclusion, and the first block was served
/// with the second copy (whose leaf its `tx_root` does not name). A proposer could do it at
/// will with two copies in one block. The receipt now uses the nonce: a hash is included once.
#[test]
fn a_transaction_hash_is_included_at_most_once() {
    let t = TestChain::new(2);
    let (a, b) = (&t.accounts[0], &t.accounts[1]);
    let fuel = t.genesis.params.transfer_fuel;
    let change = |nonce, c| key_change_of_0(&t, nonce, c);
    add_key_of_1_to_0(&t);
    // One block: account 0 raises its base threshold to 2, then a transfer b signed alone.
    let raise = change(
        1,
        key_change::Change::SetThresholds(Thresholds {
            base: 2,
            large_transfer: 2,
            key_management: 1,
            ..Thresholds::default()
        }),
    );
    let by_b = sign(
        &body_for(
            &t.genesis.chain_id,
            t.addr(0),
            2,
            fuel,
            transfer(t.addr(1), 5),
        ),
        b,
    );
    t.admit_ok(vec![raise.clone(), by_b.clone()]);
    let first = t.produce().expect("block 2");
    let r = t.receipt(&by_b);
    assert_eq!(r.status, ExecStatus::InsufficientWeight as i32, "{r:?}");
    // The same transaction with enough weight: the same hash, refused.
    let mut weighty = by_b.clone();
    assert!(cosign(&mut weighty, a));
    let refused = t.admission.admit(vec![weighty.clone()]).expect("admit");
    assert!(refused[0].result.is_err(), "{:?}", refused[0].result);
    // A proposer that includes it anyway leaves it out (its nonce is used), alone or twice.
    let (block, dropped) = t
        .chain
        .propose(
            vec![verified(&t, weighty.clone()), verified(&t, weighty)],
            t.validator.public().0,
            5_000,
        )
        .expect("propose");
    assert!(block.txs.is_empty());
    assert_eq!(dropped.len(), 2);
    // The hash still names its one inclusion.
    let hash = quorate_proto::tx::tx_hash(&by_b.body);
    let record = t
        .chain
        .storage()
        .tx(&hash)
        .expect("read")
        .expect("committed");
    assert_eq!(record.height, first.height);
    assert_eq!(
        t.receipt(&by_b).status,
        ExecStatus::InsufficientWeight as i32
    );
}

/// Issue 25 (medium): the large-transfer threshold did not cover value a contract moves for a
/// call that carries none (the remittance contract's `remit` pays from reserves): one key could
/// do it. A `contract_call` threshold now guards every call of the account, whatever value it
/// carries; a call that carries a large value needs the higher of the two.
#[test]
fn the_contract_call_threshold_guards_calls_that_carry_no_value() {
    use quorate_proto::v1::Call;
    let t = TestChain::new(2);
    let (a, b) = (&t.accounts[0], &t.accounts[1]);
    let keys = |nonce, c| key_change_of_0(&t, nonce, c);
    add_key_of_1_to_0(&t);
    t.admit_ok(vec![keys(
        1,
        key_change::Change::SetThresholds(Thresholds {
            base: 1,
            key_management: 1,
            contract_call: 2,
            ..Thresholds::default()
        }),
    )]);
    t.produce().expect("block");
    let remittance = quorate_genesis::system::system_contract(quorate_genesis::system::REMITTANCE)
        .expect("system contract")
        .address();
    let call = body_for(
        &t.genesis.chain_id,
        t.addr(0),
        2,
        100_000,
        tx_body::Payload::Call(Call {
            contract: Bytes::copy_from_slice(&remittance.0),
            method: "remit".into(),
            args: Bytes::new(),
            value: 0,
        }),
    );
    // One key: a call carrying nothing no longer passes.
    let refused = t
        .admission
        .admit(vec![sign(&call, a)])
        .expect("admit")
        .remove(0);
    match &refused.result {
        Err(e @ crate::verified_tx::AdmissionError::InsufficientWeight { .. }) => {
            assert!(e.to_string().contains("a contract call needs 2"), "{e}")
        }
        other => panic!("a one-key call was {other:?}"),
    }
    let mut both = sign(&call, a);
    assert!(cosign(&mut both, b));
    t.admit_ok(vec![both]);
}

/// Issue 25: `key_acts_for` (what the escrow asks of each party's key) follows the account's
/// key set: its own key while it has none; any key weighing a contract call's threshold once it
/// has one (1-of-2: both keys); none when no single key reaches it (2-of-2), and never a
/// stranger's.
#[test]
fn a_key_acts_for_an_account_only_with_the_weight_of_a_call() {
    use quorate_vm::Backend;
    let t = TestChain::new(3);
    let (a, b, stranger) = (
        t.accounts[0].public().0,
        t.accounts[1].public().0,
        t.accounts[2].public().0,
    );
    let account = t.addr(0);
    let acts = |key: &[u8; 32]| {
        let mut world = crate::execution::WorldState::new(t.chain.storage().clone());
        world.key_acts_for(&account, key).expect("read")
    };
    assert_eq!((acts(&a), acts(&b)), (true, false), "its own key only");
    add_key_of_1_to_0(&t);
    assert_eq!(
        (acts(&a), acts(&b), acts(&stranger)),
        (true, true, false),
        "1-of-2"
    );
    let raise = key_change_of_0(
        &t,
        1,
        key_change::Change::SetThresholds(Thresholds {
            base: 2,
            key_management: 2,
            ..Thresholds::default()
        }),
    );
    t.admit_ok(vec![raise]);
    t.produce().expect("block");
    assert_eq!((acts(&a), acts(&b)), (false, false), "2-of-2: no key alone");
}

/// Issue 25 (high, "a Byzantine proposer can cause it at will"): in one block, a key change
/// raises the account's threshold, then two copies of one transaction (one hash, two leaves):
/// signed by one key (short of the new weight), then co-signed with enough. Before the fix the
/// first got an `INSUFFICIENT_WEIGHT` receipt that left the nonce unused and the second was
/// included too: one hash twice. Now the first uses the nonce; the honest proposer leaves the
/// second out, and a block naming it is refused by every validator judging it.
#[test]
fn a_block_naming_one_transaction_twice_is_refused() {
    let t = TestChain::new(2);
    let (a, b) = (&t.accounts[0], &t.accounts[1]);
    let fuel = t.genesis.params.transfer_fuel;
    add_key_of_1_to_0(&t);
    let raise = key_change_of_0(
        &t,
        1,
        key_change::Change::SetThresholds(Thresholds {
            base: 2,
            large_transfer: 2,
            key_management: 1,
            ..Thresholds::default()
        }),
    );
    let body = body_for(
        &t.genesis.chain_id,
        t.addr(0),
        2,
        fuel,
        transfer(t.addr(1), 5),
    );
    let by_b = sign(&body, b);
    let mut weighty = by_b.clone();
    assert!(cosign(&mut weighty, a));
    let hash = quorate_proto::tx::tx_hash(&by_b.body);
    assert_eq!(hash, quorate_proto::tx::tx_hash(&weighty.body));
    assert_ne!(
        quorate_proto::tx::leaf_of(&by_b),
        quorate_proto::tx::leaf_of(&weighty)
    );
    let all = vec![
        verified(&t, raise),
        verified(&t, by_b),
        verified(&t, weighty),
    ];
    let (block, dropped) = t
        .chain
        .propose(all.clone(), t.validator.public().0, 5_000)
        .expect("propose");
    assert_eq!(block.txs.len(), 2, "the honest proposer keeps one copy");
    assert_eq!(
        block.receipts[1].status,
        ExecStatus::InsufficientWeight as i32
    );
    assert_eq!(dropped.len(), 1);
    let judged = t
        .chain
        .validate(&block.header_bytes, all, None)
        .expect("validate");
    match judged {
        Err(crate::block_rules::BlockRejection::NotIncludable { hash: h, reason }) => {
            assert_eq!(h, hash);
            assert!(reason.contains("nonce"), "{reason}");
        }
        other => panic!("a block with both copies was not refused: {other:?}"),
    }
}
