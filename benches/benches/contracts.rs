//! The contract engine: deploy (validate + compile), loading a stored artifact, instantiate +
//! an empty call, and a counter increment (storage read, write and an event) against the
//! node's block state on RocksDB. Run: `cargo bench -p quorate-benches --bench contracts`.
//!
//! A hand-written counter (WAT) is always measured. The Rust template contract is measured too
//! when it has been built: `cargo build --release --target wasm32-unknown-unknown
//! --manifest-path contracts/Cargo.toml`.

// criterion_group! generates an undocumented public function.
#![allow(missing_docs)]

use std::path::Path;
use std::sync::Arc;

use bytes::Bytes;
use criterion::{criterion_group, criterion_main, Criterion};
use prost::Message;
use quorate_genesis::ChainParams;
use quorate_node::contracts::vm_config;
use quorate_node::execution::WorldState;
use quorate_node::storage::{ContractRecord, EntryKey, Storage, StorageOptions};
use quorate_proto::crypto::{Address, Hash32};
use quorate_vm::{BlockEnv, CallRequest, Vm};

const COUNTER_WAT: &str = r#"(module
  (import "quorate" "scratch_read" (func $scratch_read (param i32)))
  (import "quorate" "set_return" (func $set_return (param i32 i32)))
  (import "quorate" "storage_get" (func $storage_get (param i32 i32) (result i32)))
  (import "quorate" "storage_set" (func $storage_set (param i32 i32 i32 i32)))
  (import "quorate" "emit_event" (func $emit_event (param i32 i32 i32 i32)))
  (memory (export "memory") 1)
  (data (i32.const 0) "value")
  (data (i32.const 16) "incremented")
  (func (export "noop"))
  (func (export "increment")
    (local $v i64)
    (if (i32.eq (call $storage_get (i32.const 0) (i32.const 5)) (i32.const 1))
      (then (call $scratch_read (i32.const 64)) (local.set $v (i64.load (i32.const 64)))))
    (i64.store (i32.const 64) (i64.add (local.get $v) (i64.const 1)))
    (call $storage_set (i32.const 0) (i32.const 5) (i32.const 64) (i32.const 8))
    (call $emit_event (i32.const 16) (i32.const 11) (i32.const 64) (i32.const 8))
    (call $set_return (i32.const 64) (i32.const 8)))
)"#;

const TEMPLATE_WASM: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../contracts/target/wasm32-unknown-unknown/release/counter.wasm"
);

fn vm() -> Vm<WorldState> {
    Vm::new(vm_config(&ChainParams::default())).expect("engine")
}

/// `IncrementArgs { by: 1 }` of the template.
fn template_increment_args() -> Vec<u8> {
    vec![0x08, 0x01]
}

/// Benchmarks one contract: compile, load, empty call (when it has `noop`) and increment.
fn contract(c: &mut Criterion, name: &str, wasm: &[u8], noop: bool, increment_args: &[u8]) {
    let mut g = c.benchmark_group(format!("contract/{name}"));
    g.sample_size(20);
    let compiler = vm();
    g.bench_function(format!("deploy_compile_{}kb", wasm.len() / 1024), |b| {
        b.iter(|| compiler.compile(wasm).expect("compiles"))
    });
    let compiled = compiler.compile(wasm).expect("compiles");
    g.bench_function("load_stored_artifact", |b| {
        let fresh = vm();
        b.iter(|| {
            fresh
                .load(compiled.code_hash, &compiled.artifact)
                .expect("loads")
        })
    });

    let dir = tempfile::tempdir().expect("tempdir");
    let storage = Storage::open(
        dir.path(),
        &StorageOptions {
            sync_writes: false,
            ..StorageOptions::default()
        },
    )
    .expect("storage");
    let engine = vm();
    engine
        .load(compiled.code_hash, &compiled.artifact)
        .expect("loads");
    let contract = Address([7; 20]);
    let mut state = WorldState::new(storage.clone());
    let record = ContractRecord {
        code_hash: Bytes::copy_from_slice(&compiled.code_hash.0),
        deployer: Bytes::copy_from_slice(&[1; 20]),
        height: 1,
        ..Default::default()
    };
    state
        .set_entry(EntryKey::contract(&contract), Some(record.encode_to_vec()))
        .expect("record");
    // The template's init owns the counter; increments do not need it.
    let mut state = Some(state);
    let mut run = |method: &str, input: &[u8]| {
        let req = CallRequest {
            origin: Address([1; 20]),
            caller: Address([1; 20]),
            contract,
            method,
            input,
            value: 0,
            fuel: 10_000_000,
            read_only: false,
            deploying: false,
            env: BlockEnv {
                height: 2,
                time_ms: 1,
                tx_index: 0,
            },
        };
        let (mut back, out) = engine.call(state.take().expect("state"), &req);
        back.seal_transaction();
        state = Some(back);
        let out = out.expect("no node failure");
        assert!(out.result.is_ok(), "{method}: {:?}", out.result);
        out.fuel_used
    };
    if noop {
        g.bench_function("instantiate_and_empty_call", |b| {
            b.iter(|| run("noop", b""))
        });
    }
    let fuel = run("increment", increment_args);
    println!("contract/{name}: increment uses {fuel} fuel");
    g.bench_function("increment_call", |b| {
        b.iter(|| run("increment", increment_args))
    });
    g.finish();
    drop(Arc::clone(&storage));
}

fn benches(c: &mut Criterion) {
    let wat = wat::parse_str(COUNTER_WAT).expect("wat");
    contract(c, "wat_counter", &wat, true, b"");
    if Path::new(TEMPLATE_WASM).exists() {
        let wasm = std::fs::read(TEMPLATE_WASM).expect("read template wasm");
        println!(
            "contract/template_counter: {} bytes, code hash {}",
            wasm.len(),
            Hash32::of(&wasm)
        );
        contract(
            c,
            "template_counter",
            &wasm,
            false,
            &template_increment_args(),
        );
    } else {
        println!("template contract not built ({TEMPLATE_WASM}); measuring the WAT counter only");
    }
}

criterion_group!(contract_benches, benches);
criterion_main!(contract_benches);
