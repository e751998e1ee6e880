//! Fuzzing of the host ABI (feature `fuzzing`): a contract that reads its input as a program
//! of host calls with arbitrary pointers, lengths and values, run on an in-memory state. Every
//! host function must answer any argument with a result or a clean failure, never a panic, and
//! a failed call must leave the state as it found it.

use std::collections::BTreeMap;
use std::sync::OnceLock;

use quorate_proto::crypto::{Address, Hash32};

use crate::{Backend, BlockEnv, CallRequest, Checkpoint, Vm, VmConfig};

/// State for the fuzzed calls: contract storage and balances with an undo journal.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct MemState {
    storage: Storage,
    balances: BTreeMap<Address, u64>,
    code: BTreeMap<Address, Hash32>,
    journal: Vec<Undo>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Undo {
    Storage(Address, Vec<u8>, Option<Vec<u8>>),
    Balance(Address, Option<u64>),
}

/// Never fails.
#[derive(Debug)]
pub struct Never;

impl std::fmt::Display for Never {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("never")
    }
}

impl std::error::Error for Never {}

/// Contract storage of the fuzzed state: (contract, key) to value.
type Storage = BTreeMap<(Address, Vec<u8>), Vec<u8>>;

impl MemState {
    /// The state without its journal, for comparing before and after.
    fn contents(&self) -> (&Storage, &BTreeMap<Address, u64>) {
        (&self.storage, &self.balances)
    }
}

impl Backend for MemState {
    type Error = Never;

    fn storage_get(&mut self, c: &Address, key: &[u8]) -> Result<Option<Vec<u8>>, Never> {
        Ok(self.storage.get(&(*c, key.to_vec())).cloned())
    }

    fn storage_set(&mut self, c: &Address, key: &[u8], v: Option<&[u8]>) -> Result<bool, Never> {
        let k = (*c, key.to_vec());
        let old = match v {
            Some(v) => self.storage.insert(k, v.to_vec()),
            None => self.storage.remove(&k),
        };
        let existed = old.is_some();
        self.journal.push(Undo::Storage(*c, key.to_vec(), old));
        Ok(existed)
    }

    fn balance(&mut self, a: &Address) -> Result<u64, Never> {
        Ok(self.balances.get(a).copied().unwrap_or(0))
    }

    fn transfer(&mut self, from: &Address, to: &Address, amount: u64) -> Result<bool, Never> {
        let fb = self.balance(from)?;
        if fb < amount {
            return Ok(false);
        }
        if from == to || amount == 0 {
            return Ok(true);
        }
        let prev = self.balances.insert(*from, fb - amount);
        self.journal.push(Undo::Balance(*from, prev));
        let tb = self.balance(to)?;
        let prev = self.balances.insert(*to, tb.saturating_add(amount));
        self.journal.push(Undo::Balance(*to, prev));
        Ok(true)
    }

    fn key_acts_for(&mut self, account: &Address, key: &[u8; 32]) -> Result<bool, Never> {
        Ok(Address::of_public_key(key) == *account)
    }

    fn code_of(&mut self, a: &Address) -> Result<Option<Hash32>, Never> {
        Ok(self.code.get(a).copied())
    }

    fn checkpoint(&mut self) -> Checkpoint {
        Checkpoint(self.journal.len())
    }

    fn revert_to(&mut self, checkpoint: Checkpoint) {
        while self.journal.len() > checkpoint.0 {
            match self.journal.pop() {
                Some(Undo::Storage(c, k, Some(v))) => {
                    self.storage.insert((c, k), v);
                }
                Some(Undo::Storage(c, k, None)) => {
                    self.storage.remove(&(c, k));
                }
                Some(Undo::Balance(a, Some(b))) => {
                    self.balances.insert(a, b);
                }
                Some(Undo::Balance(a, None)) => {
                    self.balances.remove(&a);
                }
                None => break,
            }
        }
    }
}

/// The interpreter contract: `run` reads its input as 17-byte instructions (an opcode and four
/// little-endian i32 arguments) and makes the host call the opcode names (modulo 20) with them.
pub const INTERPRETER: &str = r#"(module
  (import "quorate" "input_len" (func $input_len (result i32)))
  (import "quorate" "input_read" (func $input_read (param i32)))
  (import "quorate" "scratch_len" (func $scratch_len (result i32)))
  (import "quorate" "scratch_read" (func $scratch_read (param i32)))
  (import "quorate" "set_return" (func $set_return (param i32 i32)))
  (import "quorate" "abort" (func $abort (param i32 i32 i32)))
  (import "quorate" "storage_get" (func $storage_get (param i32 i32) (result i32)))
  (import "quorate" "storage_set" (func $storage_set (param i32 i32 i32 i32)))
  (import "quorate" "storage_remove" (func $storage_remove (param i32 i32) (result i32)))
  (import "quorate" "caller" (func $caller (param i32)))
  (import "quorate" "origin" (func $origin (param i32)))
  (import "quorate" "self_address" (func $self_address (param i32)))
  (import "quorate" "value" (func $value (result i64)))
  (import "quorate" "block_height" (func $block_height (result i64)))
  (import "quorate" "block_time_ms" (func $block_time_ms (result i64)))
  (import "quorate" "balance" (func $balance (param i32) (result i64)))
  (import "quorate" "transfer" (func $transfer (param i32 i64) (result i32)))
  (import "quorate" "emit_event" (func $emit_event (param i32 i32 i32 i32)))
  (import "quorate" "call" (func $call (param i32 i32 i32 i32 i32 i64) (result i32)))
  (import "quorate" "blake3" (func $blake3 (param i32 i32 i32)))
  (memory (export "memory") 2)
  (func (export "run")
    (local $end i32) (local $p i32) (local $a i32) (local $b i32) (local $c i32) (local $d i32)
    ;; The program is copied to 65536; a longer one traps in input_read (also a case).
    (call $input_read (i32.const 65536))
    (local.set $p (i32.const 65536))
    (local.set $end (i32.add (i32.const 65536) (call $input_len)))
    (block $done
      (loop $next
        (br_if $done (i32.gt_u (i32.add (local.get $p) (i32.const 17)) (local.get $end)))
        (local.set $a (i32.load (i32.add (local.get $p) (i32.const 1))))
        (local.set $b (i32.load (i32.add (local.get $p) (i32.const 5))))
        (local.set $c (i32.load (i32.add (local.get $p) (i32.const 9))))
        (local.set $d (i32.load (i32.add (local.get $p) (i32.const 13))))
        (block $out
          (block $c19 (block $c18 (block $c17 (block $c16 (block $c15 (block $c14 (block $c13
          (block $c12 (block $c11 (block $c10 (block $c9 (block $c8 (block $c7 (block $c6
          (block $c5 (block $c4 (block $c3 (block $c2 (block $c1 (block $c0
            (br_table $c0 $c1 $c2 $c3 $c4 $c5 $c6 $c7 $c8 $c9 $c10 $c11 $c12 $c13 $c14 $c15
                      $c16 $c17 $c18 $c19
              (i32.rem_u (i32.load8_u (local.get $p)) (i32.const 20))))
            (drop (call $input_len)) (br $out))
            (call $input_read (local.get $a)) (br $out))
            (drop (call $scratch_len)) (br $out))
            (call $scratch_read (local.get $a)) (br $out))
            (call $set_return (local.get $a) (local.get $b)) (br $out))
            (call $abort (local.get $a) (local.get $b) (local.get $c)) (br $out))
            (drop (call $storage_get (local.get $a) (local.get $b))) (br $out))
            (call $storage_set (local.get $a) (local.get $b) (local.get $c) (local.get $d)) (br $out))
            (drop (call $storage_remove (local.get $a) (local.get $b))) (br $out))
            (call $caller (local.get $a)) (br $out))
            (call $origin (local.get $a)) (br $out))
            (call $self_address (local.get $a)) (br $out))
            (drop (call $value)) (br $out))
            (drop (call $block_height)) (br $out))
            (drop (call $block_time_ms)) (br $out))
            (drop (call $balance (local.get $a))) (br $out))
            (drop (call $transfer (local.get $a) (i64.extend_i32_u (local.get $b)))) (br $out))
            (call $emit_event (local.get $a) (local.get $b) (local.get $c) (local.get $d)) (br $out))
            (drop (call $call (local.get $a) (local.get $b) (local.get $c) (local.get $d)
                              (local.get $a) (i64.extend_i32_u (local.get $b)))) (br $out))
            (call $blake3 (local.get $a) (local.get $b) (local.get $c)))
        (local.set $p (i32.add (local.get $p) (i32.const 17)))
        (br $next)))))"#;

/// Address the interpreter is deployed at.
pub const CONTRACT: Address = Address([0xc0; 20]);
/// Address that calls it.
pub const CALLER: Address = Address([0xca; 20]);

fn engine() -> &'static (Vm<MemState>, Hash32) {
    static ENGINE: OnceLock<(Vm<MemState>, Hash32)> = OnceLock::new();
    ENGINE.get_or_init(|| {
        let vm = Vm::new(VmConfig::default()).expect("engine");
        let wasm = wat::parse_str(INTERPRETER).expect("interpreter wat");
        let compiled = vm.compile(&wasm).expect("interpreter compiles");
        (vm, compiled.code_hash)
    })
}

/// Runs `program` through the interpreter; panics if the engine does (the bug being looked
/// for) or if a failed call changed the state.
pub fn host_abi(program: &[u8]) {
    let (vm, code_hash) = engine();
    let mut state = MemState::default();
    state.code.insert(CONTRACT, *code_hash);
    state.balances.insert(CALLER, 1_000_000);
    state.balances.insert(CONTRACT, 1_000);
    state
        .storage
        .insert((CONTRACT, b"k".to_vec()), b"value".to_vec());
    let before = state.clone();
    let read_only = program.first().is_some_and(|b| b & 1 == 1);
    let request = CallRequest {
        origin: CALLER,
        caller: CALLER,
        contract: CONTRACT,
        method: "run",
        input: program,
        value: if read_only {
            0
        } else {
            u64::from(program.get(1).copied().unwrap_or(0))
        },
        fuel: 2_000_000,
        read_only,
        deploying: false,
        env: BlockEnv {
            height: 7,
            time_ms: 1_700_000_000_000,
            tx_index: 0,
        },
    };
    let (after, outcome) = vm.call(state, &request);
    let outcome = outcome.expect("the engine never fails on a contract's behaviour");
    if outcome.result.is_err() || read_only {
        assert_eq!(
            after.contents(),
            before.contents(),
            "a failed or read-only call changed the state"
        );
    }
}
