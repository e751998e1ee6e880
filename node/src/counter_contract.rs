//! A hand-written counter contract, for tests and the node simulator: `init` stores the 8-byte
//! init argument; `inc` adds a step, emits "incremented" and returns the value; `get` returns
//! the value; `boom` increments and then traps.

/// The counter's text format, its value kept under `key`, `inc` adding `step`.
fn counter_text(key: &str, step: u64) -> String {
    format!(
        r#"(module
  (import "quorate" "input_len" (func $input_len (result i32)))
  (import "quorate" "input_read" (func $input_read (param i32)))
  (import "quorate" "scratch_read" (func $scratch_read (param i32)))
  (import "quorate" "set_return" (func $set_return (param i32 i32)))
  (import "quorate" "storage_get" (func $storage_get (param i32 i32) (result i32)))
  (import "quorate" "storage_set" (func $storage_set (param i32 i32 i32 i32)))
  (import "quorate" "emit_event" (func $emit_event (param i32 i32 i32 i32)))
  (memory (export "memory") 1)
  (data (i32.const 0) "{key}")
  (data (i32.const 16) "incremented")
  (func $load (result i64)
    (if (result i64) (i32.eq (call $storage_get (i32.const 0) (i32.const 1)) (i32.const 1))
      (then (call $scratch_read (i32.const 64)) (i64.load (i32.const 64)))
      (else (i64.const 0))))
  (func $store (param $v i64)
    (i64.store (i32.const 64) (local.get $v))
    (call $storage_set (i32.const 0) (i32.const 1) (i32.const 64) (i32.const 8)))
  (func (export "init")
    (call $input_read (i32.const 128))
    (call $store (i64.load (i32.const 128))))
  (func $inc (export "inc")
    (call $store (i64.add (call $load) (i64.const {step})))
    (call $emit_event (i32.const 16) (i32.const 11) (i32.const 64) (i32.const 8))
    (call $set_return (i32.const 64) (i32.const 8)))
  (func (export "get")
    (i64.store (i32.const 64) (call $load))
    (call $set_return (i32.const 64) (i32.const 8)))
  (func (export "boom") (call $inc) (unreachable))
)"#
    )
}

/// The counter's bytecode, its value kept under the one-byte `key`, `inc` adding `step`.
pub fn counter_wat(key: &str, step: u64) -> Vec<u8> {
    assert_eq!(key.len(), 1, "the counter's key is one byte");
    wat::parse_str(counter_text(key, step)).expect("the counter's text parses")
}

/// The counter of key "n" that adds one.
pub fn counter_wasm() -> Vec<u8> {
    counter_wat("n", 1)
}

/// Two counters of one shape (key "m"): one whose `inc` adds 1, one whose `inc` adds 2 (the
/// bytecode of the one and the machine code of the other make a deploy whose machine code
/// computes otherwise than its bytecode).
pub fn counters_by_one_and_two() -> (Vec<u8>, Vec<u8>) {
    (counter_wat("m", 1), counter_wat("m", 2))
}

/// The counter without its `init` export (code that replaces a contract keeps its storage and
/// runs no `init`: the shape of a system-contract upgrade, ADR 0018).
pub fn counter_without_init(key: &str, step: u64) -> Vec<u8> {
    assert_eq!(key.len(), 1, "the counter's key is one byte");
    let text = counter_text(key, step).replace(r#"(func (export "init")"#, "(func $init");
    wat::parse_str(text).expect("the counter's text parses")
}
