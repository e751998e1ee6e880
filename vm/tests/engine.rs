//! The engine against hand-written modules: results, events, fuel, the failure kinds, state
//! rollback, nested calls, validation refusals, and artifacts that load without compiling.

mod common;

use common::*;
use quorate_vm::{CallOutcome, Failure, ValidationError, Vm, VmConfig};

const FUEL: u64 = 5_000_000;

fn counter() -> String {
    format!(
        r#"(module {IMPORTS}
  (memory (export "memory") 1)
  (data (i32.const 0) "n")
  (data (i32.const 16) "incremented")
  (data (i32.const 32) "not allowed")
  (func $inc (export "inc")
    (local $v i64)
    (if (i32.eq (call $storage_get (i32.const 0) (i32.const 1)) (i32.const 1))
      (then (call $scratch_read (i32.const 64)) (local.set $v (i64.load (i32.const 64)))))
    (local.set $v (i64.add (local.get $v) (i64.const 1)))
    (i64.store (i32.const 64) (local.get $v))
    (call $storage_set (i32.const 0) (i32.const 1) (i32.const 64) (i32.const 8))
    (call $emit_event (i32.const 16) (i32.const 11) (i32.const 64) (i32.const 8))
    (call $set_return (i32.const 64) (i32.const 8)))
  (func (export "inc_then_trap") (call $inc) (unreachable))
  (func (export "spin") (loop $l (br $l)))
  (func (export "bomb")
    (loop $l (br_if $l (i32.ne (memory.grow (i32.const 16)) (i32.const -1))))
    (unreachable))
  (func $rec (export "recurse") (call $rec))
  (func (export "refuse") (call $abort (i32.const 2) (i32.const 32) (i32.const 11)))
  (func (export "echo")
    (call $input_read (i32.const 1024))
    (call $set_return (i32.const 1024) (call $input_len)))
  (func (export "height")
    (i64.store (i32.const 64) (call $block_height))
    (call $set_return (i32.const 64) (i32.const 8)))
  (func (export "pay") (drop (call $transfer (i32.const 128) (i64.const 5))))
  (func (export "hash")
    (call $input_read (i32.const 1024))
    (call $blake3 (i32.const 1024) (call $input_len) (i32.const 512))
    (call $set_return (i32.const 512) (i32.const 32)))
  (func (export "hash_out_of_bounds")
    (call $blake3 (i32.const 65000) (i32.const 1000) (i32.const 512)))
  (func (export "init") (call $inc))
)"#
    )
}

fn value_of(out: &CallOutcome) -> u64 {
    let bytes = out.result.as_ref().expect("call succeeded");
    u64::from_le_bytes(bytes.as_slice().try_into().expect("8 bytes"))
}

fn stored(state: &MemState, at: u8) -> Option<Vec<u8>> {
    state.storage.get(&(addr(at), b"n".to_vec())).cloned()
}

#[test]
fn calls_return_data_write_storage_and_emit_events_with_deterministic_fuel() {
    let vm = vm();
    let mut state = MemState::default();
    deploy(&vm, &mut state, 1, &counter());
    let first = run(&vm, &mut state, &request(1, "inc", b"", FUEL));
    assert_eq!(value_of(&first), 1);
    assert_eq!(first.events.len(), 1);
    assert_eq!(first.events[0].kind, "incremented");
    assert_eq!(first.events[0].contract, addr(1));
    let second = run(&vm, &mut state, &request(1, "inc", b"", FUEL));
    assert_eq!(value_of(&second), 2);
    assert_eq!(stored(&state, 1), Some(2u64.to_le_bytes().to_vec()));
    assert!(first.fuel_used > 0);
    // The same call on the same state costs the same fuel on a fresh engine.
    let vm2 = Vm::new(VmConfig::default()).expect("engine");
    let mut state2 = MemState::default();
    deploy(&vm2, &mut state2, 1, &counter());
    let again = run(&vm2, &mut state2, &request(1, "inc", b"", FUEL));
    assert_eq!(again.fuel_used, first.fuel_used);
    let echo = run(&vm, &mut state, &request(1, "echo", b"hello", FUEL));
    assert_eq!(echo.result, Ok(b"hello".to_vec()));
    let height = run(&vm, &mut state, &request(1, "height", b"", FUEL));
    assert_eq!(value_of(&height), 7);
}

#[test]
fn blake3_hashes_memory_and_charges_per_byte() {
    let vm = vm();
    let mut state = MemState::default();
    deploy(&vm, &mut state, 1, &counter());
    let short = run(&vm, &mut state, &request(1, "hash", b"abc", FUEL));
    assert_eq!(short.result, Ok(blake3::hash(b"abc").as_bytes().to_vec()));
    let data = vec![7u8; 4000];
    let long = run(&vm, &mut state, &request(1, "hash", &data, FUEL));
    assert_eq!(long.result, Ok(blake3::hash(&data).as_bytes().to_vec()));
    // 3,997 more bytes hashed (1 each), also read in (1 each): at least 7,994 more fuel.
    assert!(
        long.fuel_used >= short.fuel_used + 7_994,
        "{} vs {}",
        long.fuel_used,
        short.fuel_used
    );
    let out = run(
        &vm,
        &mut state,
        &request(1, "hash_out_of_bounds", b"", FUEL),
    );
    assert!(out.result.is_err(), "reading past memory fails the call");
}

#[test]
fn an_infinite_loop_stops_at_the_fuel_limit() {
    let vm = vm();
    let mut state = MemState::default();
    deploy(&vm, &mut state, 1, &counter());
    let out = run(&vm, &mut state, &request(1, "spin", b"", 100_000));
    assert_eq!(out.result, Err(Failure::OutOfFuel));
    assert_eq!(out.fuel_used, 100_000);
}

#[test]
fn a_memory_bomb_fails_as_out_of_memory() {
    let vm = vm();
    let mut state = MemState::default();
    deploy(&vm, &mut state, 1, &counter());
    let out = run(&vm, &mut state, &request(1, "bomb", b"", FUEL));
    match out.result {
        Err(Failure::OutOfMemory(msg)) => assert!(msg.contains("capped at"), "{msg}"),
        other => panic!("expected out of memory, got {other:?}"),
    }
}

#[test]
fn deep_recursion_fails_cleanly_as_a_stack_overflow_trap() {
    let vm = vm();
    let mut state = MemState::default();
    deploy(&vm, &mut state, 1, &counter());
    let out = run(&vm, &mut state, &request(1, "recurse", b"", u64::MAX / 2));
    match out.result {
        Err(Failure::Trap(msg)) => assert!(msg.contains("stack overflow"), "{msg}"),
        other => panic!("expected a stack overflow trap, got {other:?}"),
    }
    // The engine is still usable afterwards.
    let ok = run(&vm, &mut state, &request(1, "inc", b"", FUEL));
    assert_eq!(value_of(&ok), 1);
}

#[test]
fn a_trap_leaves_state_and_events_unchanged() {
    let vm = vm();
    let mut state = MemState::default();
    deploy(&vm, &mut state, 1, &counter());
    run(&vm, &mut state, &request(1, "inc", b"", FUEL));
    let out = run(&vm, &mut state, &request(1, "inc_then_trap", b"", FUEL));
    assert!(
        matches!(out.result, Err(Failure::Trap(_))),
        "{:?}",
        out.result
    );
    assert!(out.events.is_empty());
    assert_eq!(stored(&state, 1), Some(1u64.to_le_bytes().to_vec()));
}

#[test]
fn failures_are_typed() {
    let vm = vm();
    let mut state = MemState::default();
    deploy(&vm, &mut state, 1, &counter());
    let refused = run(&vm, &mut state, &request(1, "refuse", b"", FUEL));
    assert_eq!(
        refused.result,
        Err(Failure::PermissionDenied("not allowed".into()))
    );
    let missing = run(&vm, &mut state, &request(1, "nope", b"", FUEL));
    assert!(matches!(missing.result, Err(Failure::BadInput(_))));
    let nobody = run(&vm, &mut state, &request(9, "inc", b"", FUEL));
    assert!(matches!(nobody.result, Err(Failure::BadInput(_))));
    let init = run(&vm, &mut state, &request(1, "init", b"", FUEL));
    assert!(matches!(init.result, Err(Failure::BadInput(_))));
    let mut deploying = request(1, "init", b"", FUEL);
    deploying.deploying = true;
    assert!(run(&vm, &mut state, &deploying).result.is_ok());
}

#[test]
fn queries_cannot_write_transfer_or_emit() {
    let vm = vm();
    let mut state = MemState::default();
    deploy(&vm, &mut state, 1, &counter());
    let mut q = request(1, "inc", b"", FUEL);
    q.read_only = true;
    let out = run(&vm, &mut state, &q);
    assert!(matches!(out.result, Err(Failure::PermissionDenied(_))));
    assert_eq!(stored(&state, 1), None);
    let mut echo = request(1, "echo", b"x", FUEL);
    echo.read_only = true;
    assert_eq!(run(&vm, &mut state, &echo).result, Ok(b"x".to_vec()));
}

#[test]
fn value_moves_with_a_call_and_is_refunded_when_it_fails() {
    let vm = vm();
    let mut state = MemState::default();
    deploy(&vm, &mut state, 1, &counter());
    state.balances.insert(addr(USER), 100);
    let mut paid = request(1, "inc", b"", FUEL);
    paid.value = 40;
    assert!(run(&vm, &mut state, &paid).result.is_ok());
    assert_eq!(state.balances[&addr(1)], 40);
    let mut failing = request(1, "inc_then_trap", b"", FUEL);
    failing.value = 10;
    assert!(run(&vm, &mut state, &failing).result.is_err());
    assert_eq!(state.balances[&addr(USER)], 60);
    let mut too_much = request(1, "inc", b"", FUEL);
    too_much.value = 61;
    assert!(matches!(
        run(&vm, &mut state, &too_much).result,
        Err(Failure::InsufficientFunds(_))
    ));
    // A contract pays from its own balance.
    assert!(run(&vm, &mut state, &request(1, "pay", b"", FUEL))
        .result
        .is_ok());
    assert_eq!(state.balances[&addr(1)], 35);
}

#[test]
fn a_failed_nested_call_is_rolled_back_and_reported_to_the_caller() {
    let vm = vm();
    let mut state = MemState::default();
    deploy(&vm, &mut state, 2, &counter());
    let callee = "\\02".repeat(20);
    let caller = format!(
        r#"(module {IMPORTS}
  (memory (export "memory") 1)
  (data (i32.const 0) "{callee}")
  (data (i32.const 32) "inc_then_trap")
  (data (i32.const 48) "inc")
  (data (i32.const 64) "s")
  (func (export "try")
    (i32.store (i32.const 96)
      (call $call (i32.const 0) (i32.const 32) (i32.const 13) (i32.const 0) (i32.const 0) (i64.const 0)))
    (i32.store (i32.const 100)
      (call $call (i32.const 0) (i32.const 48) (i32.const 3) (i32.const 0) (i32.const 0) (i64.const 0)))
    (call $storage_set (i32.const 64) (i32.const 1) (i32.const 96) (i32.const 8))
    (call $set_return (i32.const 96) (i32.const 8)))
)"#
    );
    deploy(&vm, &mut state, 1, &caller);
    let out = run(&vm, &mut state, &request(1, "try", b"", FUEL));
    // First call failed (1), second succeeded (0).
    assert_eq!(out.result, Ok(vec![1, 0, 0, 0, 0, 0, 0, 0]));
    // Only the successful nested call's write and event remain.
    assert_eq!(stored(&state, 2), Some(1u64.to_le_bytes().to_vec()));
    assert_eq!(out.events.len(), 1);
    assert_eq!(out.events[0].contract, addr(2));
}

#[test]
fn bad_modules_are_refused_with_a_reason() {
    let vm = vm();
    let refuse = |wat: &str| vm.validate(&wat::parse_str(wat).expect("wat")).err();
    assert!(matches!(
        vm.validate(b"\0asm garbage"),
        Err(ValidationError::Invalid(_))
    ));
    // Forbidden features: SIMD, threads (shared memory), memory64.
    let simd = r#"(module (memory (export "memory") 1)
        (func (export "f") (drop (v128.const i32x4 0 0 0 0))))"#;
    assert!(matches!(refuse(simd), Some(ValidationError::Invalid(_))));
    let shared = r#"(module (memory (export "memory") 1 1 shared))"#;
    assert!(matches!(refuse(shared), Some(ValidationError::Invalid(_))));
    let mem64 = r#"(module (memory (export "memory") i64 1))"#;
    assert!(matches!(refuse(mem64), Some(ValidationError::Invalid(_))));
    let wasi = r#"(module (import "wasi_snapshot_preview1" "fd_write" (func (param i32 i32 i32 i32) (result i32)))
        (memory (export "memory") 1))"#;
    assert!(matches!(
        refuse(wasi),
        Some(ValidationError::UnknownImport { .. })
    ));
    let wrong_sig = r#"(module (import "quorate" "storage_get" (func (param i32) (result i32)))
        (memory (export "memory") 1))"#;
    assert!(matches!(
        refuse(wrong_sig),
        Some(ValidationError::ImportSignature { .. })
    ));
    let no_memory = r#"(module (func (export "f")))"#;
    assert_eq!(refuse(no_memory), Some(ValidationError::NoMemory));
    let huge = r#"(module (memory (export "memory") 1000))"#;
    assert!(matches!(
        refuse(huge),
        Some(ValidationError::MemoryTooLarge { .. })
    ));
    let big = vec![0u8; VmConfig::default().limits.max_code_bytes + 1];
    assert!(matches!(
        vm.validate(&big),
        Err(ValidationError::TooLarge { .. })
    ));
    let info = vm
        .validate(&wat::parse_str(counter()).expect("wat"))
        .expect("valid");
    assert!(info.has_init);
    assert!(info.methods.contains(&"inc".to_string()));
    assert!(!info.methods.contains(&"init".to_string()));
}

#[test]
fn stored_artifacts_load_into_a_new_engine_without_compiling() {
    let wasm = wat::parse_str(counter()).expect("wat");
    let first = vm();
    let compiled = first.compile(&wasm).expect("compile");
    assert_eq!(first.compilations(), 1);
    let second = vm();
    assert_eq!(second.fingerprint(), first.fingerprint());
    second
        .load(compiled.code_hash, &compiled.artifact)
        .expect("load");
    assert_eq!(second.compilations(), 0);
    let mut state = MemState::default();
    state.code.insert(addr(1), compiled.code_hash);
    let out = run(&second, &mut state, &request(1, "inc", b"", FUEL));
    assert_eq!(value_of(&out), 1);
    assert!(second.load(compiled.code_hash, b"not an artifact").is_err());
}

#[test]
fn machine_code_installs_without_compiling_and_bad_machine_code_is_refused() {
    let wasm = wat::parse_str(counter()).expect("wat");
    let builder = vm();
    let machine_code = builder.precompile(&wasm).expect("precompile");
    let node = vm();
    let installed = node
        .install_machine_code(&wasm, &machine_code)
        .expect("machine code loads");
    assert_eq!(node.compilations(), 0);
    assert!(node.is_loaded(&installed.code_hash));
    assert!(matches!(
        node.install_machine_code(&wasm, b"garbage"),
        Err(ValidationError::MachineCode(_))
    ));
    let other = wat::parse_str(r#"(module (memory (export "memory") 1) (func (export "other")))"#)
        .expect("wat");
    let other_code = builder.precompile(&other).expect("precompile");
    assert!(matches!(
        node.install_machine_code(&wasm, &other_code),
        Err(ValidationError::MachineCode(_))
    ));
    assert_eq!(node.compilations(), 0, "nothing compiled in its place");
}
