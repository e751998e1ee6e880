//! Contract calls run ahead in parallel give exactly the blocks of running them in order (ADR
//! 0020): random blocks full of conflicts, built both ways, compared field by field, and
//! judged by a validator running ahead.

use std::sync::Arc;

use bytes::Bytes;
use prost::Message;
use quorate_genesis::system::REMITTANCE;
use quorate_proto::contracts::remittance as rm;
use quorate_proto::v1::tx_body::Payload as Wire;
use quorate_proto::v1::{Call, Deploy, ExecStatus, Transaction};
use quorate_proto::{Address, Hash32};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::contract_tests::{deploy_wat, VAULT};
use super::{InvalidTx, ParallelMode};
use crate::counter_contract::counter_wasm;
use crate::storage::{Account, ExecutedBlock};
use crate::testutil::TestChain;
use crate::verified_tx::{forge_verified, Payload, VerifiedTx};

/// Accounts that sign (few, so that calls collide over reserves, remittees and balances).
const SIGNERS: usize = 6;
/// Fuel limit of every call.
const FUEL: u64 = 400_000;
const BALANCE: u64 = 1_000_000_000_000;
/// What a signer left poor gets from the deployer.
const REFILL: u64 = 1_000_000_000;

/// `relay` (arguments: a vault's address) has the vault keep 30 of the proxy's tokens, then
/// asks it to `pay`, which traps when the vault lacks 50: nested calls, one undone with its
/// transfer while the call goes on.
const PROXY: &str = r#"(module
  (import "quorate" "input_read" (func $input_read (param i32)))
  (import "quorate" "call" (func $call (param i32 i32 i32 i32 i32 i64) (result i32)))
  (memory (export "memory") 1)
  (data (i32.const 100) "pay")
  (data (i32.const 110) "deposit")
  (func (export "relay")
    (call $input_read (i32.const 0))
    (drop (call $call (i32.const 0) (i32.const 110) (i32.const 7) (i32.const 0) (i32.const 0)
      (i64.const 30)))
    (drop (call $call (i32.const 0) (i32.const 100) (i32.const 3) (i32.const 0) (i32.const 0)
      (i64.const 0)))))"#;

/// `ask` (arguments: an account, then a public key) returns 1 when the key acts for the
/// account (`key_acts_for`), 0 otherwise: a read of the account's key set, which key changes
/// of the same block write.
const ASKER: &str = r#"(module
  (import "quorate" "input_read" (func $input_read (param i32)))
  (import "quorate" "key_acts_for" (func $acts (param i32 i32) (result i32)))
  (import "quorate" "set_return" (func $set_return (param i32 i32)))
  (memory (export "memory") 1)
  (func (export "ask")
    (call $input_read (i32.const 0))
    (i32.store8 (i32.const 100) (call $acts (i32.const 0) (i32.const 20)))
    (call $set_return (i32.const 100) (i32.const 1))))"#;

struct Contracts {
    remittance: Address,
    vault: Address,
    counter: Address,
    proxy: Address,
    asker: Address,
}

/// A chain with rich accounts, the vault and a counter deployed, and reserves deposited.
fn setup() -> (TestChain, Contracts) {
    let mut generated =
        quorate_genesis::generate("parallel", 1, SIGNERS + 1, BALANCE, 1_000).expect("genesis");
    let engine = crate::contracts::engine_fingerprint(&generated.genesis.params).expect("engine");
    generated.genesis.engine_fingerprint = Some(engine.to_hex());
    let t = TestChain::of_generated(&generated, 0);
    let deployer = SIGNERS;
    let deploy = |nonce: u64, code: Vec<u8>, init: Vec<u8>| {
        t.signed(
            deployer,
            nonce,
            FUEL,
            Wire::Deploy(Deploy {
                code: Bytes::from(code),
                init_args: Bytes::from(init),
                ..Deploy::default()
            }),
        )
    };
    let vault = deploy(0, wat::parse_str(VAULT).expect("wat"), Vec::new());
    let counter = deploy(1, counter_wasm(), 41u64.to_le_bytes().to_vec());
    let proxy = deploy(2, wat::parse_str(PROXY).expect("wat"), Vec::new());
    let asker = deploy(3, wat::parse_str(ASKER).expect("wat"), Vec::new());
    t.admit_ok(vec![
        vault.clone(),
        counter.clone(),
        proxy.clone(),
        asker.clone(),
    ]);
    t.produce().expect("deploys");
    for tx in [&vault, &counter, &proxy, &asker] {
        let r = t.receipt(tx);
        assert_eq!(r.status, ExecStatus::Success as i32, "{}", r.error);
    }
    let contracts = Contracts {
        remittance: Address::of_system_contract(REMITTANCE),
        vault: Address::of_contract(&t.addr(deployer), 0),
        counter: Address::of_contract(&t.addr(deployer), 1),
        proxy: Address::of_contract(&t.addr(deployer), 2),
        asker: Address::of_contract(&t.addr(deployer), 3),
    };
    (t, contracts)
}

fn call(contract: Address, method: &str, args: Vec<u8>, value: u64) -> Wire {
    Wire::Call(Call {
        contract: Bytes::copy_from_slice(&contract.0),
        method: method.into(),
        args: Bytes::from(args),
        value,
    })
}

/// A random payload from `signer`: remittance deposits, remits and withdrawals over two
/// entries, vault deposits, drains and payments, counter increments, native transfers (also
/// to the contracts), values above the balance, calls to no contract or no method, and
/// deploys whose contract a later call of the block uses.
fn payload(
    rng: &mut ChaCha8Rng,
    c: &Contracts,
    accounts: &[Address],
    fresh: &[Address],
) -> (Wire, bool) {
    let entry = if rng.gen_bool(0.5) { "a" } else { "b" };
    let someone = accounts[rng.gen_range(0..accounts.len())];
    let small = rng.gen_range(1..=400u64);
    let wire = match rng.gen_range(0..100) {
        0..=29 => {
            let args = rm::RemitArgs {
                remittee: Bytes::copy_from_slice(&someone.0),
                amount: small,
                allocations: vec![rm::Allocation {
                    entry: entry.into(),
                    amount: rng.gen_range(1..=400),
                }],
                memo: String::new(),
            };
            call(c.remittance, "remit", args.encode_to_vec(), 0)
        }
        30..=41 => {
            let args = rm::DepositArgs {
                entry: entry.into(),
            };
            let value = if rng.gen_bool(0.1) {
                BALANCE * 2
            } else {
                small * 3
            };
            call(c.remittance, "deposit", args.encode_to_vec(), value)
        }
        42..=49 => {
            let args = rm::WithdrawArgs {
                entry: entry.into(),
                amount: small,
            };
            call(c.remittance, "withdraw", args.encode_to_vec(), 0)
        }
        50..=61 => {
            let to = match rng.gen_range(0..4) {
                0 => c.vault,
                1 => c.remittance,
                _ => someone,
            };
            return (
                Wire::Transfer(quorate_proto::v1::Transfer {
                    to: Bytes::copy_from_slice(&to.0),
                    amount: small,
                    ..Default::default()
                }),
                false,
            );
        }
        62..=67 => call(c.vault, "deposit", Vec::new(), small),
        // With a value, the balance the call reads includes what it brought.
        68..=71 => call(c.vault, "drain", Vec::new(), small % 2 * small),
        // With a value, the payment's balance check counts what the call itself brought.
        72..=77 => call(c.vault, "pay", Vec::new(), small % 80),
        // Reads (only) the count that `inc` of another signer writes.
        78..=79 => call(c.counter, "get", Vec::new(), 0),
        80..=85 => call(c.counter, "inc", Vec::new(), 0),
        86..=89 => call(c.proxy, "relay", c.vault.0.to_vec(), small % 40),
        90..=91 => call(someone, "inc", Vec::new(), 0),
        92..=93 => call(c.counter, "nothing", Vec::new(), 0),
        94..=96 if !fresh.is_empty() => {
            let target = fresh[rng.gen_range(0..fresh.len())];
            let method = ["deposit", "drain", "pay"][rng.gen_range(0..3)];
            call(target, method, Vec::new(), small)
        }
        _ => return (deploy_wat(VAULT), true),
    };
    (wire, false)
}

/// A change of `signer`'s key set: adds or removes the key of signer 2 or 3 (weight 1), so the
/// signer's own key keeps acting for it; now and then one that fails (the key is already in
/// the set, or not in it).
fn key_change(rng: &mut ChaCha8Rng, t: &TestChain, signer: usize) -> (Wire, usize) {
    let other = 2 + rng.gen_range(0..2);
    debug_assert_ne!(signer, other, "signers 0 and 1 change their key sets");
    (keys(t, other, rng.gen_bool(0.5)), other)
}

/// Adds (`add`) or removes the key of signer `other`, weight 1.
fn keys(t: &TestChain, other: usize, add: bool) -> Wire {
    use quorate_proto::v1::{key_change::Change, KeyChange, WeightedKey};
    let key = Bytes::copy_from_slice(&t.accounts[other].public().0);
    let change = if add {
        Change::AddKey(WeightedKey {
            public_key: key,
            weight: 1,
        })
    } else {
        Change::RemoveKey(key)
    };
    Wire::Keys(KeyChange {
        change: Some(change),
    })
}

/// `ask`: does the key of signer `key` act for signer `of`?
fn ask(t: &TestChain, c: &Contracts, of: usize, key: usize) -> Wire {
    let mut args = t.addr(of).0.to_vec();
    args.extend_from_slice(&t.accounts[key].public().0);
    call(c.asker, "ask", args, 0)
}

/// A random block: `len` transactions from few signers with the nonces they need, now and
/// then one that is not the next, and now and then a deposit of about the signer's whole
/// balance: its run ahead (over the block's start) can pass a balance check that fails in
/// order, after the fee is reserved. Signers left poor by one are refilled first. `fresh`
/// holds the contracts deployed by earlier blocks not committed yet (their calls test the
/// decided parent's code), and gets this block's.
fn random_block(
    rng: &mut ChaCha8Rng,
    t: &TestChain,
    c: &Contracts,
    decided: Option<&ExecutedBlock>,
    fresh: &mut Vec<Address>,
    len: usize,
) -> Vec<Arc<VerifiedTx>> {
    let account = |i: usize| account_after(t, decided, &t.addr(i));
    let mut nonces: Vec<u64> = (0..SIGNERS).map(|i| account(i).nonce).collect();
    let mut accounts: Vec<Address> = (0..=SIGNERS).map(|i| t.addr(i)).collect();
    accounts.push(c.vault);
    let height = decided.map_or(t.chain.head().height, |d| d.header.height) + 1;
    let params = t.chain.params_at(height);
    let mut balances: Vec<u64> = (0..SIGNERS).map(|i| account(i).balance).collect();
    let forge = |tx: Transaction| {
        Arc::new(forge_verified(tx, &t.genesis.chain_id, &params).expect("well formed"))
    };
    let deployer = SIGNERS;
    let mut deployer_nonce = account(deployer).nonce;
    let mut block: Vec<Arc<VerifiedTx>> = Vec::new();
    for (i, b) in balances.iter_mut().enumerate() {
        if *b < REFILL {
            block.push(forge(t.transfer(
                deployer,
                t.addr(i),
                REFILL,
                deployer_nonce,
            )));
            deployer_nonce += 1;
            *b += REFILL;
        }
    }
    // The block's last key change: (whose key set, whose key).
    let mut last_change = None;
    block.extend((0..len).map(|_| {
        let signer = rng.gen_range(0..SIGNERS);
        // Key changes and the questions about them are kept to few accounts and keys (signers
        // 0 and 1 add or remove the keys of signers 2 and 3), and most questions after a
        // change are about it, so that a block often asks about a key set it changed.
        let (wire, deploys) = if signer < 2 && rng.gen_bool(0.15) {
            let (wire, other) = key_change(rng, t, signer);
            last_change = Some((signer, other));
            (wire, false)
        } else if rng.gen_bool(0.06) {
            let (of, key) = match last_change {
                Some(change) if rng.gen_bool(0.8) => change,
                _ => {
                    let of = rng.gen_range(0..2);
                    (
                        of,
                        if rng.gen_bool(0.8) {
                            2 + rng.gen_range(0..2)
                        } else {
                            of
                        },
                    )
                }
            };
            (ask(t, c, of, key), false)
        } else if rng.gen_bool(0.015) {
            let value = balances[signer]
                .saturating_sub(rng.gen_range(0..3 * FUEL))
                .max(1);
            (call(c.vault, "deposit", Vec::new(), value), false)
        } else {
            payload(rng, c, &accounts, fresh)
        };
        let mut nonce = nonces[signer];
        if rng.gen_bool(0.02) {
            nonce += 1;
        } else {
            nonces[signer] += 1;
        }
        if deploys {
            fresh.push(Address::of_contract(&t.addr(signer), nonce));
        }
        let fuel = match wire {
            Wire::Transfer(_) | Wire::Keys(_) => params.transfer_fuel,
            _ => FUEL,
        };
        forge(t.signed(signer, nonce, fuel, wire))
    }));
    block
}

/// An account's state after `decided` (a block not committed yet) or, without one, committed.
fn account_after(t: &TestChain, decided: Option<&ExecutedBlock>, addr: &Address) -> Account {
    decided
        .and_then(|d| {
            d.changes
                .binary_search_by_key(addr, |(a, _)| *a)
                .ok()
                .map(|i| d.changes[i].1)
        })
        .unwrap_or_else(|| t.chain.storage().account(addr).expect("account"))
}

/// Builds `txs` in order and running ahead on the head or on `decided` (a decided block whose
/// commit is still to come), asserts the blocks are the same and has the validator side
/// judge it running ahead on the same parent; returns the block built in order and what it
/// left out.
fn build_both_ways_on(
    t: &TestChain,
    decided: Option<&Arc<ExecutedBlock>>,
    txs: Vec<Arc<VerifiedTx>>,
    time_ms: u64,
) -> (ExecutedBlock, Vec<(Hash32, InvalidTx)>) {
    let policy = t.chain.contracts().parallel();
    let proposer = t.validator.public().0;
    policy.set_mode(ParallelMode::Off);
    let (seq, seq_dropped) = t
        .chain
        .propose_on(decided, txs.clone(), proposer, time_ms)
        .expect("in order");
    policy.set_mode(ParallelMode::Always);
    let (par, par_dropped) = t
        .chain
        .propose_on(decided, txs, proposer, time_ms)
        .expect("ahead");
    assert_eq!(par.receipts, seq.receipts, "receipts and events");
    assert_eq!(par.changes, seq.changes, "accounts");
    assert_eq!(par.entries, seq.entries, "entries");
    assert_eq!(par.header, seq.header, "header: state and receipt roots");
    assert_eq!(par_dropped, seq_dropped, "left out");
    let judged = t
        .chain
        .validate_on(decided, &seq.header_bytes, seq.txs.clone(), None)
        .expect("validate")
        .expect("a validator running ahead accepts the block built in order");
    assert_eq!(judged.header, seq.header);
    (seq, seq_dropped)
}

/// Commits `block` (the head's next) with a certificate of the test's one validator.
fn commit(t: &TestChain, block: &ExecutedBlock) {
    let cert = t.chain.solo_certificate(&t.validator, 0, block);
    t.chain.commit(block, &cert).expect("commit");
}

/// What the committed blocks held: receipts by status (key changes apart), key changes
/// applied and refused, and `ask`'s answers (no, yes) about keys other than the account's own.
#[derive(Debug, Default)]
struct Seen {
    statuses: std::collections::BTreeMap<i32, usize>,
    key_changes: [usize; 2],
    foreign_answers: [usize; 2],
}

impl Seen {
    /// Commits `block` and counts what it held.
    fn commit(&mut self, t: &TestChain, c: &Contracts, block: &ExecutedBlock) {
        commit(t, block);
        for (tx, receipt) in block.txs.iter().zip(&block.receipts) {
            let ok = receipt.status == ExecStatus::Success as i32;
            match &tx.payload {
                Payload::Keys(_) => self.key_changes[usize::from(ok)] += 1,
                Payload::Call { contract, args, .. } if ok && *contract == c.asker => {
                    let key: [u8; 32] = args[20..].try_into().expect("a key");
                    if Address::of_public_key(&key).0[..] != args[..20] {
                        self.foreign_answers[usize::from(receipt.return_data[..] == [1])] += 1;
                    }
                    *self.statuses.entry(receipt.status).or_default() += 1;
                }
                _ => *self.statuses.entry(receipt.status).or_default() += 1,
            }
        }
    }
}

/// [`build_both_ways_on`] the head, then commits the block.
fn build_both_ways(t: &TestChain, txs: Vec<Arc<VerifiedTx>>, time_ms: u64) {
    commit(t, &build_both_ways_on(t, None, txs, time_ms).0);
}

/// Blocks per run: `QUORATE_PARALLEL_BLOCKS`, or enough to meet every kind of conflict.
fn blocks() -> usize {
    std::env::var("QUORATE_PARALLEL_BLOCKS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(3000)
}

#[test]
fn running_calls_ahead_builds_the_blocks_running_them_in_order_builds() {
    let (t, c) = setup();
    let seed = std::env::var("QUORATE_PARALLEL_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(29);
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut seen = Seen::default();
    let policy = t.chain.contracts().parallel();
    let proposer = t.validator.public().0;
    let (mut on_decided, mut child_runs, mut child_kept) = (0, 0, 0);
    let mut b = 0;
    while b < blocks() {
        // Every other block runs all its calls in one wave, so that calls of one signer run
        // ahead over the same state and collide (waves by signer avoid most of that).
        policy.set_one_wave(b % 2 == 1);
        let mut fresh = Vec::new();
        let len = rng.gen_range(2..=24);
        let txs = random_block(&mut rng, &t, &c, None, &mut fresh, len);
        let time_ms = t.chain.head().time_ms + 1;
        let (block, _) = build_both_ways_on(&t, None, txs, time_ms);
        // Every fifth block is decided, and the next is built and judged on it before its
        // commit, as a validator does while the commit is written: runs ahead then read the
        // decided block's changes and code, not the storage's older state.
        if b % 5 == 4 && b + 1 < blocks() {
            let decided = Arc::new(block);
            let len = rng.gen_range(2..=24);
            let txs = random_block(&mut rng, &t, &c, Some(&decided), &mut fresh, len);
            let time_ms = decided.header.time_ms + 1;
            let before = policy.stats();
            let (next, left_out) = build_both_ways_on(&t, Some(&decided), txs.clone(), time_ms);
            let after = policy.stats();
            (child_runs, child_kept) = (
                child_runs + after.runs - before.runs,
                child_kept + after.kept - before.kept,
            );
            seen.commit(&t, &c, &decided);
            // Built again on the committed head, in order: the same block, so what the three
            // builds on the decided parent read of it was its state (a reading of the storage's
            // older state would have made them agree with each other, not with this).
            policy.set_mode(ParallelMode::Off);
            let (again, left_out_again) = t
                .chain
                .propose(txs, proposer, time_ms)
                .expect("on the head");
            assert_eq!(again.header, next.header, "block {b}: the same on the head");
            assert_eq!(
                again.receipts, next.receipts,
                "block {b}: receipts on the head"
            );
            assert_eq!(left_out_again, left_out, "block {b}: left out on the head");
            on_decided += 1;
            b += 1;
            seen.commit(&t, &c, &next);
        } else {
            seen.commit(&t, &c, &block);
        }
        b += 1;
        assert_eq!(t.chain.head().height as usize, b + 1, "block {b} committed");
    }
    // The runs met what they are about (runs kept and runs thrown away, on the head and on a
    // decided parent, and failed calls), given blocks enough to meet them.
    let stats = policy.stats();
    if blocks() >= 6 {
        assert!(on_decided > 0, "no block was built on a decided parent");
    }
    if blocks() < 100 {
        eprintln!(
            "{} blocks: too few to assert that every kind of run was met",
            blocks()
        );
    } else {
        assert!(stats.kept > 0, "no run ahead was kept: {stats:?}");
        assert!(
            stats.runs > stats.kept,
            "no run ahead was thrown away: {stats:?}"
        );
        assert!(
            child_kept > 0 && child_runs > child_kept,
            "runs ahead on a decided parent: {child_kept} kept of {child_runs}"
        );
        for status in [
            ExecStatus::Success,
            ExecStatus::Aborted,
            ExecStatus::InsufficientFunds,
            ExecStatus::BadInput,
            ExecStatus::Trapped,
        ] {
            assert!(
                seen.statuses.get(&(status as i32)).copied().unwrap_or(0) > 0,
                "no {status:?} receipt in {seen:?}"
            );
        }
        // Key sets changed, and other signers' keys were found acting and not acting for
        // an account.
        assert!(
            seen.key_changes[1] > 0 && seen.foreign_answers.iter().all(|&n| n > 0),
            "{seen:?}"
        );
    }
    eprintln!(
        "seed {seed}: {stats:?} ({on_decided} blocks on a decided parent: {child_kept} of \
         {child_runs} runs kept), {seen:?}"
    );
}

/// A question run ahead over the block's start, before a key change of the same block that
/// flips its answer, runs again in order: 4 reads the counter (a call, so the first wave starts
/// before the key changes), signer 0 adds signer 2's key, 5 asks whether that key acts for 0
/// (yes; no at the block's start), 0 removes the key, 3 asks again (no). The questions are
/// their signers' first transactions, so they run ahead in the first wave in either kind of
/// wave, and neither run can be kept: account 0 changed under both.
#[test]
fn a_question_run_ahead_before_a_key_change_of_its_block_runs_again() {
    let (t, c) = setup();
    let policy = t.chain.contracts().parallel();
    let params = t.chain.params_at(t.chain.head().height + 1);
    let forge = |signer: usize, nonce: u64, wire: Wire| {
        let fuel = match wire {
            Wire::Keys(_) => params.transfer_fuel,
            _ => FUEL,
        };
        let tx = t.signed(signer, nonce, fuel, wire);
        Arc::new(forge_verified(tx, &t.genesis.chain_id, &params).expect("well formed"))
    };
    for one_wave in [false, true] {
        policy.set_one_wave(one_wave);
        let nonce = |i: usize| {
            t.chain
                .storage()
                .account(&t.addr(i))
                .expect("account")
                .nonce
        };
        let n0 = nonce(0);
        let txs = vec![
            forge(4, nonce(4), call(c.counter, "get", Vec::new(), 0)),
            forge(0, n0, keys(&t, 2, true)),
            forge(5, nonce(5), ask(&t, &c, 0, 2)),
            forge(0, n0 + 1, keys(&t, 2, false)),
            forge(3, nonce(3), ask(&t, &c, 0, 2)),
        ];
        let before = policy.stats();
        let (block, left_out) = build_both_ways_on(&t, None, txs, t.chain.head().time_ms + 1);
        let after = policy.stats();
        assert!(left_out.is_empty(), "{left_out:?}");
        let answers: Vec<&[u8]> = block.receipts[1..]
            .iter()
            .map(|r| &r.return_data[..])
            .collect();
        assert_eq!(answers, [&[][..], &[1], &[], &[0]], "one wave: {one_wave}");
        // Built running ahead and judged running ahead: three runs each time, the counter's
        // kept, both questions' thrown away.
        let (runs, kept) = (after.runs - before.runs, after.kept - before.kept);
        assert_eq!(
            (runs, runs - kept),
            (6, 4),
            "every call ran ahead, and the questions' runs were thrown away"
        );
        commit(&t, &block);
    }
}

/// Not a test: times a block of remits from distinct senders built in order and running
/// ahead (`cargo test -p quorate-node --lib run_ahead_timing -- --ignored --nocapture`).
#[test]
#[ignore]
fn run_ahead_timing() {
    const N: usize = 2000;
    let mut generated =
        quorate_genesis::generate("timing", 1, N, BALANCE / 1000, 1_000).expect("genesis");
    let engine = crate::contracts::engine_fingerprint(&generated.genesis.params).expect("engine");
    generated.genesis.engine_fingerprint = Some(engine.to_hex());
    let t = TestChain::of_generated(&generated, 0);
    let remittance = Address::of_system_contract(REMITTANCE);
    let params = t.chain.params_at(2);
    let forge = |tx: Transaction| {
        Arc::new(forge_verified(tx, &t.genesis.chain_id, &params).expect("well formed"))
    };
    let deposits: Vec<_> = (0..N)
        .map(|i| {
            let args = rm::DepositArgs { entry: "a".into() };
            forge(t.signed(
                i,
                0,
                FUEL,
                call(remittance, "deposit", args.encode_to_vec(), 1000),
            ))
        })
        .collect();
    build_both_ways(&t, deposits, 2);
    let remits: Vec<_> = (0..N)
        .map(|i| {
            let args = rm::RemitArgs {
                remittee: Bytes::copy_from_slice(&[
                    (i % 251) as u8 + 1,
                    (i / 251) as u8 + 1,
                    9,
                    9,
                    9,
                    9,
                    9,
                    9,
                    9,
                    9,
                    9,
                    9,
                    9,
                    9,
                    9,
                    9,
                    9,
                    9,
                    9,
                    9,
                ]),
                amount: 1,
                allocations: vec![rm::Allocation {
                    entry: "a".into(),
                    amount: 1,
                }],
                memo: String::new(),
            };
            forge(t.signed(
                i,
                1,
                FUEL,
                call(remittance, "remit", args.encode_to_vec(), 0),
            ))
        })
        .collect();
    let policy = t.chain.contracts().parallel();
    let proposer = t.validator.public().0;
    for round in 0..3 {
        for mode in [ParallelMode::Off, ParallelMode::Always] {
            policy.set_mode(mode);
            let before = policy.stats();
            let start = std::time::Instant::now();
            let (block, _) = t.chain.propose(remits.clone(), proposer, 3).expect("build");
            let took = start.elapsed();
            let after = policy.stats();
            eprintln!(
                "round {round} {mode:?}: {} txs in {took:?} ({:.1} us/tx); runs {} kept {}",
                block.txs.len(),
                took.as_secs_f64() * 1e6 / block.txs.len() as f64,
                after.runs - before.runs,
                after.kept - before.kept
            );
        }
    }
}
