//! An in-memory host for unit tests of contract logic on the build machine (not wasm32):
//! storage, caller and block context you set, events and balances you read back.
//!
//! ```ignore
//! quorate_sdk::testing::reset();
//! quorate_sdk::testing::set_caller(Address([1; 20]));
//! assert_eq!(increment(IncrementArgs { by: 2 }).unwrap().value, 2);
//! assert_eq!(quorate_sdk::testing::events()[0].0, "incremented");
//! ```

use alloc::collections::BTreeMap;
use alloc::string::String;
use alloc::vec::Vec;

use crate::Address;

/// The mock host's state (one per thread).
#[derive(Default)]
pub(crate) struct MockHost {
    pub(crate) storage: BTreeMap<Vec<u8>, Vec<u8>>,
    pub(crate) balances: BTreeMap<[u8; 20], u64>,
    /// Keys that may sign a contract call for an account besides its own key (set with
    /// [`set_account_key`]).
    pub(crate) account_keys: BTreeMap<[u8; 20], Vec<[u8; 32]>>,
    pub(crate) caller: [u8; 20],
    pub(crate) origin: [u8; 20],
    pub(crate) self_address: [u8; 20],
    pub(crate) value: u64,
    pub(crate) height: u64,
    pub(crate) time_ms: u64,
    pub(crate) tx_index: u32,
    /// Ids `new_id` made since the transaction's place was set.
    pub(crate) ids: u64,
    pub(crate) input: Vec<u8>,
    pub(crate) output: Vec<u8>,
    pub(crate) events: Vec<(String, Vec<u8>)>,
}

std::thread_local! {
    static HOST: core::cell::RefCell<MockHost> = core::cell::RefCell::new(MockHost::default());
}

fn with<T>(f: impl FnOnce(&mut MockHost) -> T) -> T {
    HOST.with(|h| f(&mut h.borrow_mut()))
}

/// Clears storage, balances, events and context.
pub fn reset() {
    with(|h| *h = MockHost::default());
}

/// Sets who calls (and, unless set otherwise, the origin).
pub fn set_caller(a: Address) {
    with(|h| {
        h.caller = a.0;
        h.origin = a.0;
    });
}

/// Sets the transaction's signer.
pub fn set_origin(a: Address) {
    with(|h| h.origin = a.0);
}

/// Sets the contract's own address.
pub fn set_self_address(a: Address) {
    with(|h| h.self_address = a.0);
}

/// Sets the value sent with the call.
pub fn set_value(v: u64) {
    with(|h| h.value = v);
}

/// Sets block height and time.
pub fn set_block(height: u64, time_ms: u64) {
    with(|h| {
        h.height = height;
        h.time_ms = time_ms;
    });
}

/// Sets the place of the transaction in its block (a new transaction: its ids start again).
pub fn set_tx_index(index: u32) {
    with(|h| {
        h.tx_index = index;
        h.ids = 0;
    });
}

/// Sets a native balance.
pub fn set_balance(a: Address, amount: u64) {
    with(|h| {
        h.balances.insert(a.0, amount);
    });
}

/// Lets `key` alone sign a contract call for account `a` (an account whose key set holds it
/// with enough weight, or whose key was rotated to it).
pub fn set_account_key(a: Address, key: [u8; 32]) {
    with(|h| h.account_keys.entry(a.0).or_default().push(key));
}

/// Reads a native balance.
pub fn balance_of(a: Address) -> u64 {
    with(|h| h.balances.get(&a.0).copied().unwrap_or(0))
}

/// Sets the raw call input (what `dispatch` decodes).
pub fn set_input(bytes: Vec<u8>) {
    with(|h| h.input = bytes);
}

/// The last return data set.
pub fn output() -> Vec<u8> {
    with(|h| h.output.clone())
}

/// Events emitted so far: (kind, data).
pub fn events() -> Vec<(String, Vec<u8>)> {
    with(|h| h.events.clone())
}

/// The host functions against the mock.
pub(crate) mod mock {
    use alloc::vec::Vec;

    use super::with;
    use crate::error::ErrorKind;

    pub(crate) fn input() -> Vec<u8> {
        with(|h| h.input.clone())
    }

    pub(crate) fn set_return(data: &[u8]) {
        with(|h| h.output = data.to_vec());
    }

    pub(crate) fn abort(kind: ErrorKind, message: &str) -> ! {
        panic!("contract aborted ({kind:?}): {message}")
    }

    pub(crate) fn storage_get(key: &[u8]) -> Option<Vec<u8>> {
        with(|h| h.storage.get(key).cloned())
    }

    pub(crate) fn storage_set(key: &[u8], value: &[u8]) {
        with(|h| {
            h.storage.insert(key.to_vec(), value.to_vec());
        });
    }

    pub(crate) fn storage_remove(key: &[u8]) -> bool {
        with(|h| h.storage.remove(key).is_some())
    }

    pub(crate) fn caller() -> [u8; 20] {
        with(|h| h.caller)
    }

    pub(crate) fn origin() -> [u8; 20] {
        with(|h| h.origin)
    }

    pub(crate) fn self_address() -> [u8; 20] {
        with(|h| h.self_address)
    }

    pub(crate) fn value() -> u64 {
        with(|h| h.value)
    }

    pub(crate) fn block_height() -> u64 {
        with(|h| h.height)
    }

    pub(crate) fn block_time_ms() -> u64 {
        with(|h| h.time_ms)
    }

    pub(crate) fn new_id() -> u64 {
        with(|h| {
            let n = h.ids;
            h.ids += 1;
            (h.height << 28) | (u64::from(h.tx_index) << 8) | n
        })
    }

    pub(crate) fn balance(addr: &[u8; 20]) -> u64 {
        with(|h| h.balances.get(addr).copied().unwrap_or(0))
    }

    pub(crate) fn key_acts_for(account: &[u8; 20], key: &[u8; 32]) -> bool {
        with(|h| match h.account_keys.get(account) {
            Some(keys) => keys.contains(key),
            None => crate::crypto::address_of_key(key).0 == *account,
        })
    }

    pub(crate) fn transfer(to: &[u8; 20], amount: u64) -> bool {
        with(|h| {
            let from = h.self_address;
            let have = h.balances.get(&from).copied().unwrap_or(0);
            if have < amount {
                return false;
            }
            h.balances.insert(from, have - amount);
            *h.balances.entry(*to).or_insert(0) += amount;
            true
        })
    }

    pub(crate) fn emit_event(kind: &str, data: &[u8]) {
        with(|h| h.events.push((kind.into(), data.to_vec())));
    }

    pub(crate) fn blake3(data: &[u8]) -> [u8; 32] {
        *::blake3::hash(data).as_bytes()
    }

    pub(crate) fn call(
        _contract: &[u8; 20],
        _method: &str,
        _input: &[u8],
        _value: u64,
    ) -> Result<Vec<u8>, Vec<u8>> {
        Err(b"calls to other contracts are not available in the mock host".to_vec())
    }
}
