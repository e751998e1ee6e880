//! An in-memory backend with an undo journal, and helpers to build modules from WAT.
#![allow(dead_code)]

use std::collections::HashMap;

use quorate_proto::crypto::{Address, Hash32};
use quorate_vm::{Backend, BlockEnv, CallOutcome, CallRequest, Checkpoint, Vm, VmConfig};

#[derive(Debug, thiserror::Error)]
#[error("never fails")]
pub struct Never;

enum Undo {
    Storage(Address, Vec<u8>, Option<Vec<u8>>),
    Balance(Address, u64),
}

/// State for tests: contract storage, balances, deployed code, and a journal.
#[derive(Default)]
pub struct MemState {
    pub storage: HashMap<(Address, Vec<u8>), Vec<u8>>,
    pub balances: HashMap<Address, u64>,
    pub code: HashMap<Address, Hash32>,
    journal: Vec<Undo>,
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
        self.journal.push(Undo::Balance(*from, fb));
        self.balances.insert(*from, fb - amount);
        let tb = self.balance(to)?;
        self.journal.push(Undo::Balance(*to, tb));
        self.balances.insert(*to, tb + amount);
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

    fn revert_to(&mut self, cp: Checkpoint) {
        while self.journal.len() > cp.0 {
            match self.journal.pop().expect("len checked") {
                Undo::Storage(c, k, old) => {
                    match old {
                        Some(v) => self.storage.insert((c, k), v),
                        None => self.storage.remove(&(c, k)),
                    };
                }
                Undo::Balance(a, b) => {
                    self.balances.insert(a, b);
                }
            }
        }
    }
}

pub fn addr(n: u8) -> Address {
    Address([n; 20])
}

pub const USER: u8 = 0xee;

pub fn vm() -> Vm<MemState> {
    Vm::new(VmConfig::default()).expect("engine")
}

/// Compiles `wat` and deploys it at `addr(at)`.
pub fn deploy(vm: &Vm<MemState>, state: &mut MemState, at: u8, wat: &str) {
    let wasm = wat::parse_str(wat).expect("wat");
    let c = vm.compile(&wasm).expect("compile");
    state.code.insert(addr(at), c.code_hash);
}

pub fn request<'a>(contract: u8, method: &'a str, input: &'a [u8], fuel: u64) -> CallRequest<'a> {
    CallRequest {
        origin: addr(USER),
        caller: addr(USER),
        contract: addr(contract),
        method,
        input,
        value: 0,
        fuel,
        read_only: false,
        deploying: false,
        env: BlockEnv {
            height: 7,
            time_ms: 1_700_000_000_000,
            tx_index: 0,
        },
    }
}

/// Runs `req` against `state` (replaced by the state after the call).
pub fn run(vm: &Vm<MemState>, state: &mut MemState, req: &CallRequest<'_>) -> CallOutcome {
    let (back, outcome) = vm.call(std::mem::take(state), req);
    *state = back;
    outcome.expect("no node failure")
}

/// The imports every test module may use.
pub const IMPORTS: &str = r#"
  (import "quorate" "input_len" (func $input_len (result i32)))
  (import "quorate" "input_read" (func $input_read (param i32)))
  (import "quorate" "scratch_len" (func $scratch_len (result i32)))
  (import "quorate" "scratch_read" (func $scratch_read (param i32)))
  (import "quorate" "set_return" (func $set_return (param i32 i32)))
  (import "quorate" "abort" (func $abort (param i32 i32 i32)))
  (import "quorate" "storage_get" (func $storage_get (param i32 i32) (result i32)))
  (import "quorate" "storage_set" (func $storage_set (param i32 i32 i32 i32)))
  (import "quorate" "emit_event" (func $emit_event (param i32 i32 i32 i32)))
  (import "quorate" "transfer" (func $transfer (param i32 i64) (result i32)))
  (import "quorate" "call" (func $call (param i32 i32 i32 i32 i32 i64) (result i32)))
  (import "quorate" "caller" (func $caller (param i32)))
  (import "quorate" "block_height" (func $block_height (result i64)))
  (import "quorate" "blake3" (func $blake3 (param i32 i32 i32)))
"#;
