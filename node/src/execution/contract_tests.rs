//! Contracts through admission, block execution, commit and restart, with hand-written wasm.

use bytes::Bytes;
use quorate_proto::v1::tx_body::Payload as Wire;
use quorate_proto::v1::{admin, Admin, Call, Deploy, ExecStatus, SetTrustedDeployer, Transaction};
use quorate_proto::Address;

use crate::counter_contract::{counter_wasm, counter_wat, counters_by_one_and_two};
use crate::storage::EntryKey;
use crate::testutil::{TestChain, BALANCE};
use crate::verified_tx::AdmissionError;

const FUEL: u64 = 500_000;
/// Fuel of a deploy with machine code (its ~25 KB are paid per byte like bytecode).
const MC_FUEL: u64 = 900_000;

/// System contracts every test chain deploys at genesis.
const SYSTEM: usize = quorate_genesis::system::SYSTEM_CONTRACTS.len();

fn deploy_tx(
    t: &TestChain,
    from: usize,
    nonce: u64,
    machine_code: Option<(Vec<u8>, [u8; 32])>,
) -> Transaction {
    let fuel = if machine_code.is_some() {
        MC_FUEL
    } else {
        FUEL
    };
    let (mc, fp) = machine_code
        .map(|(m, f)| (Bytes::from(m), Bytes::copy_from_slice(&f)))
        .unwrap_or_default();
    t.signed(
        from,
        nonce,
        fuel,
        Wire::Deploy(Deploy {
            code: Bytes::from(counter_wasm()),
            machine_code: mc,
            engine_fingerprint: fp,
            init_args: Bytes::copy_from_slice(&41u64.to_le_bytes()),
        }),
    )
}

fn call_tx(t: &TestChain, from: usize, nonce: u64, contract: Address, method: &str) -> Transaction {
    t.signed(
        from,
        nonce,
        FUEL,
        Wire::Call(Call {
            contract: Bytes::copy_from_slice(&contract.0),
            method: method.into(),
            args: Bytes::new(),
            value: 0,
        }),
    )
}

fn value(data: &[u8]) -> u64 {
    u64::from_le_bytes(data.try_into().expect("8 bytes"))
}

/// A chain of `accounts` accounts where account 0 (the trusted deployer) holds almost twice
/// the usual balance, enough for two deploys with machine code (an extra account funds it).
fn rich_deployer(accounts: usize) -> TestChain {
    let t = TestChain::new(accounts + 1);
    t.admit_ok(vec![t.transfer(accounts, t.addr(0), 900_000, 0)]);
    t.produce().expect("funded");
    t
}

/// An engine like the chain's, apart from it: a deployer's tool chain building machine code.
fn builder(t: &TestChain) -> quorate_vm::Vm<crate::execution::WorldState> {
    quorate_vm::Vm::new(crate::contracts::vm_config(&t.genesis.params)).expect("engine")
}

fn deployed(t: &TestChain, tx: &Transaction) -> Address {
    let r = t.receipt(tx);
    assert_eq!(r.status, ExecStatus::Success as i32, "deploy: {}", r.error);
    Address::from_slice(&r.contract_address).expect("address")
}

#[test]
fn deploy_call_query_and_restart_without_recompiling() {
    let t = TestChain::new(2);
    let compiled_at_genesis = t.chain.contracts().vm().compilations();
    assert_eq!(compiled_at_genesis, SYSTEM as u64);
    let deploy = deploy_tx(&t, 1, 0, None);
    t.admit_ok(vec![deploy.clone()]);
    t.produce().expect("block");
    let contract = deployed(&t, &deploy);
    assert_eq!(contract, Address::of_contract(&t.addr(1), 0));
    assert_eq!(
        t.chain.contracts().vm().compilations(),
        compiled_at_genesis + 1
    );

    let inc = call_tx(&t, 1, 1, contract, "inc");
    t.admit_ok(vec![inc.clone()]);
    t.produce().expect("block");
    let r = t.receipt(&inc);
    assert_eq!(r.status, ExecStatus::Success as i32, "{}", r.error);
    assert_eq!(value(&r.return_data), 42);
    assert_eq!(r.events.len(), 1);
    assert_eq!(r.events[0].kind, "incremented");
    assert_eq!(r.events[0].contract.as_ref(), contract.0);
    // The fee is the fuel used, and only that left the signer.
    let account = t.chain.storage().account(&t.addr(1)).expect("account");
    let deploy_fee = t.receipt(&deploy).fee;
    assert_eq!(account.balance, BALANCE - deploy_fee - r.fee);
    assert_eq!(r.fee, r.fuel_used * t.genesis.params.fuel_price);
    // The state root covers the contract's storage and record.
    let storage = t.chain.storage();
    assert_eq!(
        storage.recompute_lthash().expect("scan").root(),
        t.chain.head().state_root
    );

    let t = t.reopen();
    assert_eq!(
        t.chain.contracts().vm().compilations(),
        0,
        "restart loads artifacts"
    );
    let (out, head) = t
        .chain
        .contracts()
        .query(
            t.chain.storage(),
            contract,
            "get",
            b"",
            Address::default(),
            FUEL,
        )
        .expect("query");
    assert_eq!(value(&out.result.expect("get")), 42);
    assert_eq!(head.height, 2);
    // A query cannot write.
    let (out, _) = t
        .chain
        .contracts()
        .query(
            t.chain.storage(),
            contract,
            "inc",
            b"",
            Address::default(),
            FUEL,
        )
        .expect("query");
    assert!(matches!(
        out.result,
        Err(quorate_vm::Failure::PermissionDenied(_))
    ));
}

#[test]
fn a_trapping_call_charges_its_fee_and_changes_nothing_else() {
    let t = TestChain::new(2);
    let deploy = deploy_tx(&t, 0, 0, None);
    t.admit_ok(vec![deploy.clone()]);
    t.produce().expect("block");
    let contract = deployed(&t, &deploy);
    let before = t
        .chain
        .storage()
        .entry(&EntryKey::storage(&contract, b"n"))
        .expect("read");
    let boom = call_tx(&t, 0, 1, contract, "boom");
    t.admit_ok(vec![boom.clone()]);
    t.produce().expect("block");
    let r = t.receipt(&boom);
    assert_eq!(r.status, ExecStatus::Trapped as i32);
    assert!(r.events.is_empty());
    assert!(r.fee > 0);
    let after = t
        .chain
        .storage()
        .entry(&EntryKey::storage(&contract, b"n"))
        .expect("read");
    assert_eq!(before, after);
    assert_eq!(t.chain.storage().account(&t.addr(0)).expect("a").nonce, 2);
}

#[test]
fn bad_code_unknown_contracts_and_untrusted_machine_code_are_refused() {
    let t = TestChain::new(2);
    let vm = t.chain.contracts().vm();
    let bad = t.signed(
        1,
        0,
        FUEL,
        Wire::Deploy(Deploy {
            code: Bytes::from_static(b"\0asm\x01\0\0\0garbage"),
            ..Deploy::default()
        }),
    );
    let nowhere = call_tx(&t, 1, 0, Address([7; 20]), "inc");
    // Account 1 is not a trusted deployer (genesis trusts account 0).
    let machine = vm.precompile(&counter_wasm()).expect("precompile");
    let untrusted = deploy_tx(&t, 1, 0, Some((machine.clone(), vm.fingerprint().0)));
    let wrong_engine = deploy_tx(&t, 0, 0, Some((machine, [9; 32])));
    let results = t
        .admission
        .admit(vec![bad, nowhere, untrusted.clone(), wrong_engine])
        .expect("admit");
    let errs: Vec<_> = results
        .into_iter()
        .map(|a| a.result.expect_err("refused"))
        .collect();
    assert!(
        matches!(errs[0], AdmissionError::InvalidCode(_)),
        "{:?}",
        errs[0]
    );
    assert!(matches!(errs[1], AdmissionError::UnknownContract(_)));
    assert!(matches!(errs[2], AdmissionError::NotTrusted(_)));
    assert!(matches!(errs[3], AdmissionError::EngineMismatch { .. }));
    assert_eq!(t.mempool.lock().len(), 0);

    // A proposer that skips admission gets the same verdict from execution.
    let verified =
        crate::verified_tx::verify_one(untrusted.clone(), &t.genesis.chain_id, &t.genesis.params)
            .expect("well formed");
    let (block, dropped) = t
        .chain
        .propose(
            vec![std::sync::Arc::new(verified)],
            t.validator.public().0,
            5,
        )
        .expect("propose");
    assert!(dropped.is_empty());
    assert_eq!(
        block.receipts[0].status,
        ExecStatus::PermissionDenied as i32
    );
    assert!(block.new_code.is_empty());
}

#[test]
fn trusted_machine_code_deploys_without_compiling_and_the_admin_controls_trust() {
    let t = TestChain::new(3);
    let builder = builder(&t);
    let machine = builder.precompile(&counter_wasm()).expect("precompile");
    let fp = t.chain.contracts().vm().fingerprint().0;
    assert_eq!(
        builder.fingerprint().0,
        fp,
        "same configuration, same engine"
    );

    // Account 0 is the genesis admin and trusted deployer.
    let before = t.chain.contracts().vm().compilations();
    let deploy = deploy_tx(&t, 0, 0, Some((machine.clone(), fp)));
    t.admit_ok(vec![deploy.clone()]);
    t.produce().expect("block");
    deployed(&t, &deploy);
    assert_eq!(t.chain.contracts().vm().compilations(), before);

    // A non-admin cannot grant trust; the admin can.
    let grant = |from: usize, nonce: u64| {
        t.signed(
            from,
            nonce,
            10_000,
            Wire::Admin(Admin {
                action: Some(admin::Action::SetTrustedDeployer(SetTrustedDeployer {
                    account: Bytes::copy_from_slice(&t.addr(2).0),
                    trusted: true,
                })),
            }),
        )
    };
    let refused = t.admission.admit(vec![grant(1, 0)]).expect("admit");
    assert!(matches!(
        refused[0].result,
        Err(AdmissionError::NotAdmin { .. })
    ));
    let granted = grant(0, 1);
    t.admit_ok(vec![granted.clone()]);
    t.produce().expect("block");
    assert_eq!(t.receipt(&granted).status, ExecStatus::Success as i32);
    assert!(t
        .chain
        .storage()
        .is_trusted_deployer(&t.addr(2))
        .expect("read"));
    let by_new = deploy_tx(&t, 2, 0, Some((machine, fp)));
    t.admit_ok(vec![by_new.clone()]);
    t.produce().expect("block");
    deployed(&t, &by_new);
}

#[test]
fn a_failing_init_leaves_no_contract() {
    let (t, r) =
        deploy_alone(r#"(module (memory (export "memory") 1) (func (export "init") unreachable))"#);
    assert_eq!(r.status, ExecStatus::Trapped as i32);
    assert!(r.contract_address.is_empty());
    let addr = Address::of_contract(&t.addr(0), 0);
    assert!(t.chain.storage().contract(&addr).expect("read").is_none());
}

#[test]
fn an_engine_change_recompiles_stored_code_at_start_up_not_on_a_call() {
    let t = TestChain::new(1);
    let deploy = deploy_tx(&t, 0, 0, None);
    t.admit_ok(vec![deploy.clone()]);
    t.produce().expect("block");
    let contract = deployed(&t, &deploy);
    let storage = t.chain.storage().clone();
    let code_hash = storage
        .contract(&contract)
        .expect("read")
        .expect("record")
        .code()
        .expect("hash");
    // An unchanged engine loads what is stored.
    let same = crate::contracts::ContractRuntime::new(&t.genesis.params).expect("engine");
    let report = same.load_stored(&storage).expect("load");
    assert_eq!((report.loaded, report.recompiled), (SYSTEM + 1, 0));
    // An artifact this engine cannot load (as after an engine upgrade) is replaced by a
    // compilation from the stored bytecode, at start-up; the next start loads it.
    let fp = same.vm().fingerprint().0;
    storage
        .put_artifact(&code_hash, &fp, b"artifact of another engine")
        .expect("write");
    let upgraded = crate::contracts::ContractRuntime::new(&t.genesis.params).expect("engine");
    let report = upgraded.load_stored(&storage).expect("load");
    assert_eq!((report.loaded, report.recompiled), (SYSTEM, 1));
    assert_eq!(upgraded.vm().compilations(), 1);
    let (out, _) = upgraded
        .query(&storage, contract, "get", b"", Address::default(), FUEL)
        .expect("query");
    assert_eq!(value(&out.result.expect("get")), 41);
    assert_eq!(upgraded.vm().compilations(), 1, "the call compiled nothing");
    let again = crate::contracts::ContractRuntime::new(&t.genesis.params).expect("engine");
    assert_eq!(again.load_stored(&storage).expect("load").recompiled, 0);
}

/// `deposit` keeps the value sent with the call; `drain` sends the contract's whole balance
/// to its caller (a balance read), leaving the contract's account at balance 0 and nonce 0;
/// `pay` sends 50 tokens to the caller (a balance check only) and traps if it cannot.
pub(super) const VAULT: &str = r#"(module
  (import "quorate" "caller" (func $caller (param i32)))
  (import "quorate" "self_address" (func $self (param i32)))
  (import "quorate" "balance" (func $balance (param i32) (result i64)))
  (import "quorate" "transfer" (func $transfer (param i32 i64) (result i32)))
  (memory (export "memory") 1)
  (func (export "deposit"))
  (func (export "drain")
    (call $self (i32.const 0))
    (call $caller (i32.const 32))
    (drop (call $transfer (i32.const 32) (call $balance (i32.const 0)))))
  (func (export "pay")
    (call $caller (i32.const 32))
    (if (call $transfer (i32.const 32) (i64.const 50)) (then (unreachable)))))"#;

/// A deploy of the module `wat`, without arguments.
pub(super) fn deploy_wat(wat: &str) -> Wire {
    Wire::Deploy(Deploy {
        code: Bytes::from(wat::parse_str(wat).expect("wat")),
        ..Deploy::default()
    })
}

/// Deploys `wat` from account 0 of a fresh one-account chain; its receipt.
fn deploy_alone(wat: &str) -> (TestChain, quorate_proto::v1::Receipt) {
    let t = TestChain::new(1);
    let deploy = t.signed(0, 0, FUEL, deploy_wat(wat));
    t.admit_ok(vec![deploy.clone()]);
    t.produce().expect("block");
    let r = t.receipt(&deploy);
    (t, r)
}

/// Issue 13, defect 6: an account that became (0 balance, 0 nonce) was added to the state
/// accumulator but never taken out of it when it changed again, so the header's state root
/// drifted away from the state actually stored (fatal for state sync from snapshots).
#[test]
fn an_account_emptied_and_refilled_keeps_the_state_root_equal_to_the_stored_state() {
    let t = TestChain::new(2);
    let deploy = t.signed(0, 0, FUEL, deploy_wat(VAULT));
    t.admit_ok(vec![deploy.clone()]);
    t.produce().expect("block");
    let vault = deployed(&t, &deploy);
    let call = |nonce: u64, method: &str, value: u64| {
        t.signed(
            1,
            nonce,
            FUEL,
            Wire::Call(Call {
                contract: Bytes::copy_from_slice(&vault.0),
                method: method.into(),
                args: Bytes::new(),
                value,
            }),
        )
    };
    let storage = t.chain.storage().clone();
    let steps = [("deposit", 100), ("drain", 0), ("deposit", 7)];
    for (nonce, (method, value)) in steps.into_iter().enumerate() {
        let tx = call(nonce as u64, method, value);
        t.admit_ok(vec![tx.clone()]);
        t.produce().expect("block");
        let r = t.receipt(&tx);
        assert_eq!(
            r.status,
            ExecStatus::Success as i32,
            "{method}: {}",
            r.error
        );
        assert_eq!(
            storage.recompute_lthash().expect("scan").root(),
            t.chain.head().state_root,
            "after {method}: the state root no longer matches the stored state"
        );
    }
    assert_eq!(storage.account(&vault).expect("read").balance, 7);
}

/// Issue 13, defect 9: machine code from a trusted deployer was installed under the code hash
/// of the bytecode it came with, whatever module it really was, and stayed installed after a
/// block that never committed: a later plain deploy of the same bytecode then ran it on the
/// validators that had executed that block, and the bytecode on the others.
#[test]
fn machine_code_must_match_its_bytecode_and_never_outlives_an_uncommitted_block() {
    let t = rich_deployer(2);
    let builder = builder(&t);
    let fp = t.chain.contracts().vm().fingerprint().0;
    let vm = || t.chain.contracts().vm();

    // Machine code of a module with other exports is not taken for the counter, and nothing
    // is compiled in its place (ADR 0010): the deploy fails.
    let other = wat::parse_str(r#"(module (memory (export "memory") 1) (func (export "other")))"#)
        .expect("wat");
    let before = vm().compilations();
    let deploy = deploy_tx(
        &t,
        0,
        0,
        Some((builder.precompile(&other).expect("mc"), fp)),
    );
    t.admit_ok(vec![deploy.clone()]);
    t.produce().expect("block");
    let r = t.receipt(&deploy);
    assert_eq!(r.status, ExecStatus::BadInput as i32, "{}", r.error);
    assert!(r.error.contains("machine code"), "{}", r.error);
    assert_eq!(vm().compilations(), before, "nothing compiled in its place");
    assert!(t
        .chain
        .storage()
        .contract(&Address::of_contract(&t.addr(0), 0))
        .expect("read")
        .is_none());

    // Same shape, other behaviour: a counter that adds 2, sent as the machine code of a
    // counter that adds 1 (new bytecode, so nothing is stored for it yet).
    let (by_one, by_two) = counters_by_one_and_two();
    let lying = t.signed(
        0,
        1,
        MC_FUEL,
        Wire::Deploy(Deploy {
            code: Bytes::from(by_one.clone()),
            machine_code: Bytes::from(builder.precompile(&by_two).expect("mc")),
            engine_fingerprint: Bytes::copy_from_slice(&fp),
            init_args: Bytes::copy_from_slice(&41u64.to_le_bytes()),
        }),
    );
    t.admit_ok(vec![lying.clone()]);
    let candidates = t.mempool.lock().select(10, 1 << 20);
    // Executed in a proposal that never commits.
    let (_, dropped) = t
        .chain
        .propose(candidates, t.validator.public().0, 5_000)
        .expect("propose");
    assert!(dropped.is_empty());
    t.mempool
        .lock()
        .evict([quorate_proto::tx::tx_hash(&lying.body)].iter());
    // A plain deploy of the same bytecode runs the bytecode.
    let plain = t.signed(
        1,
        0,
        FUEL,
        Wire::Deploy(Deploy {
            code: Bytes::from(by_one),
            init_args: Bytes::copy_from_slice(&41u64.to_le_bytes()),
            ..Deploy::default()
        }),
    );
    t.admit_ok(vec![plain.clone()]);
    t.produce().expect("block");
    let honest = deployed(&t, &plain);
    let inc = call_tx(&t, 1, 1, honest, "inc");
    t.admit_ok(vec![inc.clone()]);
    t.produce().expect("block");
    let r = t.receipt(&inc);
    assert_eq!(r.status, ExecStatus::Success as i32, "{}", r.error);
    assert_eq!(
        value(&r.return_data),
        42,
        "the machine code of the uncommitted block ran"
    );
}

/// Issue 24 (medium): a contract query held the storage's commit lock for reading, so a block
/// commit waited for every query in progress (each bounded only by its fuel). A query now reads
/// a RocksDB snapshot: with commits held back, it still answers.
#[test]
fn a_query_reads_a_snapshot_and_never_waits_for_a_commit() {
    let t = TestChain::new(2);
    let deploy = deploy_tx(&t, 1, 0, None);
    t.admit_ok(vec![deploy.clone()]);
    t.produce().expect("block");
    let contract = deployed(&t, &deploy);
    t.admit_ok(vec![call_tx(&t, 1, 1, contract, "inc")]);
    t.produce().expect("block");
    let storage = t.chain.storage().clone();
    // What a commit holds while it writes.
    let commit = storage.hold_commits();
    let (tx, rx) = std::sync::mpsc::channel();
    let chain = t.chain.clone();
    std::thread::spawn(move || {
        let answer = chain.contracts().query(
            chain.storage(),
            contract,
            "get",
            b"",
            Address::default(),
            FUEL,
        );
        let _ = tx.send(answer.map(|(out, head)| (out.result, head.height)));
    });
    let (result, height) = rx
        .recv_timeout(std::time::Duration::from_secs(60))
        .expect("the query answered while a commit was under way")
        .expect("query");
    drop(commit);
    assert_eq!(value(&result.expect("get")), 42);
    assert_eq!(height, 2);
}

/// What a query reads through its snapshot is the state of the instant it was taken, whatever
/// commits meanwhile (the reads a query makes: head, accounts, entries).
#[test]
fn reads_through_a_snapshot_see_the_state_of_its_instant() {
    use crate::storage::{EntryKey, Storage};
    let t = TestChain::new(2);
    let storage = t.chain.storage().clone();
    let before = storage.account(&t.addr(0)).expect("account");
    let admin = EntryKey::admin();
    let admin_before = storage.entry(&admin).expect("entry");
    let snapshot = storage.db().snapshot();
    let at = Storage::snapshot_reads(&snapshot);
    t.admit_ok(vec![t.transfer(0, t.addr(1), 5, 0)]);
    t.produce().expect("block");
    let now = storage.account(&t.addr(0)).expect("account");
    assert_eq!(now.nonce, before.nonce + 1, "the block committed");
    let then = storage.account_at(&t.addr(0), Some(&at)).expect("account");
    assert_eq!((then.nonce, then.balance), (before.nonce, before.balance));
    let many = storage
        .accounts_at(&[t.addr(0)], Some(&at))
        .expect("accounts");
    assert_eq!(many[0].nonce, before.nonce);
    assert_eq!(storage.head_at(Some(&at)).expect("head").height, 0);
    assert_eq!(storage.head().expect("head").height, 1);
    assert_eq!(
        storage.entry_at(&admin, Some(&at)).expect("entry"),
        admin_before
    );
    drop(at);
    drop(snapshot);
}

/// A precompiled deploy of `by_one` whose machine code is `by_two` (same shape, `inc` adds
/// 2), by the trusted deployer (account 0), and the contract's address.
fn deploy_lying_machine_code(t: &TestChain) -> Address {
    let builder = builder(t);
    let (by_one, by_two) = counters_by_one_and_two();
    let deploy = t.signed(
        0,
        0,
        MC_FUEL,
        Wire::Deploy(Deploy {
            code: Bytes::from(by_one),
            machine_code: Bytes::from(builder.precompile(&by_two).expect("mc")),
            engine_fingerprint: Bytes::copy_from_slice(&builder.fingerprint().0),
            init_args: Bytes::copy_from_slice(&41u64.to_le_bytes()),
        }),
    );
    t.admit_ok(vec![deploy.clone()]);
    t.produce().expect("block");
    deployed(t, &deploy)
}

fn get(chain: &crate::chain::Chain, contract: Address) -> u64 {
    let (out, _) = chain
        .contracts()
        .query(
            chain.storage(),
            contract,
            "get",
            b"",
            Address::default(),
            FUEL,
        )
        .expect("query");
    value(&out.result.expect("get"))
}

/// Issue 24 (medium), ADR 0010: trusted machine code was checked for its shape only, and a
/// validator without a usable artifact for it (another engine, an artifact lost, a node that
/// joined by state sync, which carries no artifacts) compiled the bytecode instead: machine
/// code that computes otherwise than its bytecode split the state roots. The machine code is
/// now the contract: it is state, loaded as it is at every start and after a state sync, and
/// never replaced by a compilation.
#[test]
fn a_precompiled_contract_runs_its_machine_code_after_its_artifact_is_lost_and_after_state_sync() {
    let t = rich_deployer(2);
    let contract = deploy_lying_machine_code(&t);
    let inc = call_tx(&t, 0, 1, contract, "inc");
    t.admit_ok(vec![inc.clone()]);
    t.produce().expect("block");
    assert_eq!(
        value(&t.receipt(&inc).return_data),
        43,
        "the machine code ran"
    );

    // The node's artifact store loses it (a damaged cache, or an engine that wrote another).
    let storage = t.chain.storage().clone();
    let code_hash = storage
        .contract(&contract)
        .expect("read")
        .expect("record")
        .code()
        .expect("hash");
    let fp = t.chain.contracts().vm().fingerprint().0;
    storage
        .put_artifact(&code_hash, &fp, b"not an artifact")
        .expect("write");
    drop(storage);
    let t = t.reopen();
    assert_eq!(
        t.chain.contracts().vm().compilations(),
        0,
        "nothing compiled"
    );
    assert_eq!(get(&t.chain, contract), 43);
    let inc = call_tx(&t, 0, 2, contract, "inc");
    t.admit_ok(vec![inc.clone()]);
    let head = t.produce().expect("block");
    assert_eq!(
        value(&t.receipt(&inc).return_data),
        45,
        "still the machine code"
    );

    // A node that joins by state sync runs the same code and reaches the same state.
    let work = tempfile::tempdir().expect("tempdir");
    let store = crate::snapshot::SnapshotStore::new(work.path().join("snapshots"));
    let info = t.chain.info().clone();
    crate::snapshot::take(
        t.chain.storage(),
        &store,
        &info.chain_id,
        &info.genesis_hash,
        || {},
    )
    .expect("take")
    .expect("snapshot");
    let file = work.path().join("state.snapshot");
    crate::snapshot::export(&store, head.height, &file).expect("export");
    let fresh = tempfile::tempdir().expect("tempdir");
    crate::snapshot::import_file(
        &file,
        fresh.path(),
        &info.chain_id,
        &info.genesis_hash,
        &info.validators,
        None,
    )
    .expect("import");
    let u = TestChain::in_dir(
        fresh,
        t.genesis.clone(),
        t.validator.clone(),
        t.accounts.clone(),
    );
    assert_eq!(get(&u.chain, contract), 45);
    for c in [&t, &u] {
        c.admit_ok(vec![call_tx(c, 0, 3, contract, "inc")]);
    }
    let (a, b) = (
        t.produce().expect("next"),
        u.produce().expect("next on import"),
    );
    assert_eq!(a, b, "the same block and state root on both");
    assert_eq!(get(&u.chain, contract), 47);
    assert_eq!(
        u.chain.contracts().vm().compilations(),
        SYSTEM as u64,
        "the system contracts' bytecode compiled, not the precompiled contract's"
    );
}

/// ADR 0010: a validator whose engine is not the chain's does not start (it would run
/// precompiled contracts otherwise than the others), and writes nothing.
#[test]
fn a_validator_whose_engine_is_not_the_chains_refuses_to_start() {
    let t = TestChain::new(1);
    let mine = t.chain.contracts().vm().fingerprint();
    assert_eq!(
        t.chain.storage().chain_engine().expect("read"),
        Some(mine.0),
        "genesis recorded the chain's engine"
    );
    let mut genesis = t.genesis.clone();
    genesis.engine_fingerprint = Some("09".repeat(32));
    let dir = tempfile::tempdir().expect("tempdir");
    let storage =
        crate::storage::Storage::open(dir.path(), &crate::storage::StorageOptions::default())
            .expect("open");
    let err = crate::chain::Chain::open(genesis, storage.clone())
        .err()
        .expect("refused");
    let text = err.to_string();
    assert!(
        matches!(err, crate::storage::StorageError::EngineMismatch { .. }),
        "{text}"
    );
    assert!(
        text.contains(&"09".repeat(32)) && text.contains(&mine.to_hex()),
        "names both engines: {text}"
    );
    assert!(!storage.is_initialized().expect("read"), "nothing written");
    drop(storage);

    // A database holds the chain's engine: a node on another engine refuses it too, whatever
    // the genesis file it is given says.
    let storage = t.chain.storage().clone();
    let (genesis, dir) = (t.genesis.clone(), t.dir);
    drop(t.admission);
    drop(t.chain);
    let mut batch = rocksdb::WriteBatch::default();
    storage.put_contract_state(&mut batch, &[(EntryKey::engine(), Some(vec![9; 32]))], &[]);
    storage.write(batch).expect("write");
    drop(storage);
    let storage =
        crate::storage::Storage::open(dir.path(), &crate::storage::StorageOptions::default())
            .expect("open");
    let mut unnamed = genesis.clone();
    unnamed.engine_fingerprint = None;
    let err = crate::chain::Chain::open_with_hash(unnamed, genesis.hash(), storage)
        .err()
        .expect("refused");
    assert!(
        matches!(err, crate::storage::StorageError::EngineMismatch { .. }),
        "{err}"
    );
}

/// ADR 0010: machine code is accepted only with the chain's engine, decided from state, so
/// every validator decides alike; a chain whose genesis names no engine takes none. A
/// proposer that skips admission gets the same verdict from execution.
#[test]
fn machine_code_without_the_chains_engine_fails_on_every_validator_alike() {
    let generated = quorate_genesis::generate("test-chain", 1, 2, BALANCE, 1_000).expect("genesis");
    assert_eq!(generated.genesis.engine_fingerprint, None);
    let no_engine = TestChain::in_dir(
        tempfile::tempdir().expect("tempdir"),
        generated.genesis,
        generated.validator_keys[0].clone(),
        generated.account_keys,
    );
    let with_engine = TestChain::new(2);
    let vm = with_engine.chain.contracts().vm();
    let machine = vm.precompile(&counter_wasm()).expect("precompile");
    let cases = [
        (&no_engine, vm.fingerprint().0, "takes no machine code"),
        (&with_engine, [9; 32], "the chain runs engine"),
    ];
    for (t, fp, why) in cases {
        let deploy = deploy_tx(t, 0, 0, Some((machine.clone(), fp)));
        let refused = t.admission.admit(vec![deploy.clone()]).expect("admit");
        let err = refused[0].result.as_ref().expect_err("refused");
        assert!(
            matches!(err, AdmissionError::EngineMismatch { .. }),
            "{err:?}"
        );
        let verified =
            crate::verified_tx::verify_one(deploy, &t.genesis.chain_id, &t.genesis.params)
                .expect("well formed");
        let before = t.chain.contracts().vm().compilations();
        let (block, dropped) = t
            .chain
            .propose(
                vec![std::sync::Arc::new(verified)],
                t.validator.public().0,
                5,
            )
            .expect("propose");
        assert!(dropped.is_empty());
        assert_eq!(block.receipts[0].status, ExecStatus::BadInput as i32);
        assert!(
            block.receipts[0].error.contains(why),
            "{}",
            block.receipts[0].error
        );
        assert!(block.new_code.is_empty());
        assert_eq!(t.chain.contracts().vm().compilations(), before);
    }
}

/// ADR 0010: the first deploy of a bytecode decides what runs for it. A later deploy of the
/// same bytecode with other machine code — in the next block, executed while the first
/// block's commit may still be under way, or after it — reuses the first, and both ways give
/// the same block (a decision made from the write's timing would split the chain).
#[test]
fn the_first_deploy_of_a_bytecode_decides_what_runs_for_it() {
    let t = rich_deployer(2);
    let builder = builder(&t);
    let fp = builder.fingerprint().0;
    let (by_one, by_two) = counters_by_one_and_two();
    let by_three = counter_wat("m", 3);
    let deploy = |nonce: u64, machine: &[u8]| {
        t.signed(
            0,
            nonce,
            MC_FUEL,
            Wire::Deploy(Deploy {
                code: Bytes::from(by_one.clone()),
                machine_code: Bytes::from(builder.precompile(machine).expect("mc")),
                engine_fingerprint: Bytes::copy_from_slice(&fp),
                init_args: Bytes::copy_from_slice(&41u64.to_le_bytes()),
            }),
        )
    };
    let verified = |tx: Transaction| {
        std::sync::Arc::new(
            crate::verified_tx::verify_one(tx, &t.genesis.chain_id, &t.genesis.params)
                .expect("well formed"),
        )
    };
    let (first, second) = (
        Address::of_contract(&t.addr(0), 0),
        Address::of_contract(&t.addr(0), 1),
    );
    let proposer = t.validator.public().0;
    let (b1, dropped) = t
        .chain
        .propose(vec![verified(deploy(0, &by_two))], proposer, 5)
        .expect("propose");
    assert!(dropped.is_empty());
    let b1 = std::sync::Arc::new(b1);
    let next = || {
        vec![
            verified(deploy(1, &by_three)),
            verified(call_tx(&t, 0, 2, first, "inc")),
            verified(call_tx(&t, 0, 3, second, "inc")),
        ]
    };
    let (early, dropped) = t
        .chain
        .propose_on(Some(&b1), next(), proposer, 6)
        .expect("propose on the uncommitted block");
    assert!(dropped.is_empty());
    let incs: Vec<u64> = early.receipts[1..]
        .iter()
        .map(|r| {
            assert_eq!(r.status, ExecStatus::Success as i32, "{}", r.error);
            value(&r.return_data)
        })
        .collect();
    assert_eq!(
        incs,
        vec![43, 43],
        "both contracts run the first machine code"
    );
    let cert = t.chain.solo_certificate(&t.validator, 0, &b1);
    t.chain.commit(&b1, &cert).expect("commit block 1");
    let (late, _) = t
        .chain
        .propose(next(), proposer, 6)
        .expect("propose on the committed block");
    assert_eq!(
        late.hash, early.hash,
        "the same block whether or not the first block was written"
    );
}

/// `new_id` is a host function newer than protocol version 1: a release without it refuses
/// code importing it, so under version 1 this release refuses it too, with the very receipt an
/// older release writes (its error text is in the receipts root). Only genesis code, which
/// every validator of a new chain runs, may import it at once.
#[test]
fn code_importing_new_id_is_refused_below_protocol_version_two_as_an_older_release_does() {
    let (t, r) = deploy_alone(
        r#"(module
  (import "quorate" "new_id" (func $new_id (result i64)))
  (memory (export "memory") 1)
  (func (export "make") (drop (call $new_id))))"#,
    );
    assert_eq!(r.status, ExecStatus::BadInput as i32, "{}", r.error);
    assert_eq!(
        r.error,
        "invalid contract code: import quorate.new_id is not a host function of the ABI \
         (module \"quorate\")"
    );
    assert!(t
        .chain
        .storage()
        .entry(&EntryKey::contract(&Address::of_contract(&t.addr(0), 0)))
        .expect("read")
        .is_none());
}
