//! The host functions (module `quorate`) behind safe wrappers. On wasm32 they are the node's
//! imports; elsewhere they run against the in-memory mock host of [`crate::testing`], so
//! contract logic can be unit-tested with `cargo test`.

#[cfg(target_arch = "wasm32")]
use alloc::vec::Vec;

#[cfg(target_arch = "wasm32")]
use crate::error::ErrorKind;

#[cfg(target_arch = "wasm32")]
mod host {
    #[link(wasm_import_module = "quorate")]
    extern "C" {
        pub fn input_len() -> i32;
        pub fn input_read(ptr: *mut u8);
        pub fn scratch_len() -> i32;
        pub fn scratch_read(ptr: *mut u8);
        pub fn set_return(ptr: *const u8, len: i32);
        pub fn abort(kind: i32, ptr: *const u8, len: i32);
        pub fn storage_get(key: *const u8, key_len: i32) -> i32;
        pub fn storage_set(key: *const u8, key_len: i32, value: *const u8, value_len: i32);
        pub fn storage_remove(key: *const u8, key_len: i32) -> i32;
        pub fn caller(out: *mut u8);
        pub fn origin(out: *mut u8);
        pub fn self_address(out: *mut u8);
        pub fn value() -> i64;
        pub fn block_height() -> i64;
        pub fn block_time_ms() -> i64;
        pub fn new_id() -> i64;
        pub fn balance(addr: *const u8) -> i64;
        pub fn key_acts_for(account: *const u8, key: *const u8) -> i32;
        pub fn transfer(to: *const u8, amount: i64) -> i32;
        pub fn emit_event(kind: *const u8, kind_len: i32, data: *const u8, data_len: i32);
        pub fn call(
            addr: *const u8,
            method: *const u8,
            method_len: i32,
            input: *const u8,
            input_len: i32,
            value: i64,
        ) -> i32;
        pub fn blake3(data: *const u8, len: i32, out: *mut u8);
    }
}

/// Reads a host buffer whose length `len` gives and which `read` copies out.
#[cfg(target_arch = "wasm32")]
fn host_buffer(len: unsafe extern "C" fn() -> i32, read: unsafe extern "C" fn(*mut u8)) -> Vec<u8> {
    // SAFETY: the host writes exactly `len()` bytes into the buffer it is given.
    unsafe {
        let len = len() as usize;
        let mut buf = Vec::with_capacity(len);
        read(buf.as_mut_ptr());
        buf.set_len(len);
        buf
    }
}

#[cfg(target_arch = "wasm32")]
fn scratch() -> Vec<u8> {
    host_buffer(host::scratch_len, host::scratch_read)
}

/// The call's input bytes.
#[cfg(target_arch = "wasm32")]
pub(crate) fn input() -> Vec<u8> {
    host_buffer(host::input_len, host::input_read)
}

/// Sets the call's return data.
#[cfg(target_arch = "wasm32")]
pub(crate) fn set_return(data: &[u8]) {
    // SAFETY: pointer and length describe a live slice.
    unsafe { host::set_return(data.as_ptr(), data.len() as i32) }
}

/// Ends the call as failed; nothing it wrote is kept.
#[cfg(target_arch = "wasm32")]
pub(crate) fn abort(kind: ErrorKind, message: &str) -> ! {
    // SAFETY: pointer and length describe a live slice; the host never returns from abort.
    unsafe {
        host::abort(kind as i32, message.as_ptr(), message.len() as i32);
        core::arch::wasm32::unreachable()
    }
}

#[cfg(target_arch = "wasm32")]
pub(crate) fn storage_get(key: &[u8]) -> Option<Vec<u8>> {
    // SAFETY: pointer and length describe a live slice.
    let found = unsafe { host::storage_get(key.as_ptr(), key.len() as i32) };
    (found == 1).then(scratch)
}

#[cfg(target_arch = "wasm32")]
pub(crate) fn storage_set(key: &[u8], value: &[u8]) {
    // SAFETY: pointers and lengths describe live slices.
    unsafe {
        host::storage_set(
            key.as_ptr(),
            key.len() as i32,
            value.as_ptr(),
            value.len() as i32,
        )
    }
}

#[cfg(target_arch = "wasm32")]
pub(crate) fn storage_remove(key: &[u8]) -> bool {
    // SAFETY: pointer and length describe a live slice.
    unsafe { host::storage_remove(key.as_ptr(), key.len() as i32) == 1 }
}

#[cfg(target_arch = "wasm32")]
fn address_from(f: unsafe extern "C" fn(*mut u8)) -> [u8; 20] {
    let mut out = [0u8; 20];
    // SAFETY: the host writes exactly 20 bytes.
    unsafe { f(out.as_mut_ptr()) };
    out
}

#[cfg(target_arch = "wasm32")]
pub(crate) fn caller() -> [u8; 20] {
    address_from(host::caller)
}

#[cfg(target_arch = "wasm32")]
pub(crate) fn origin() -> [u8; 20] {
    address_from(host::origin)
}

#[cfg(target_arch = "wasm32")]
pub(crate) fn self_address() -> [u8; 20] {
    address_from(host::self_address)
}

#[cfg(target_arch = "wasm32")]
pub(crate) fn value() -> u64 {
    // SAFETY: no arguments.
    unsafe { host::value() as u64 }
}

#[cfg(target_arch = "wasm32")]
pub(crate) fn block_height() -> u64 {
    // SAFETY: no arguments.
    unsafe { host::block_height() as u64 }
}

#[cfg(target_arch = "wasm32")]
pub(crate) fn block_time_ms() -> u64 {
    // SAFETY: no arguments.
    unsafe { host::block_time_ms() as u64 }
}

#[cfg(target_arch = "wasm32")]
pub(crate) fn new_id() -> u64 {
    // SAFETY: no arguments.
    unsafe { host::new_id() as u64 }
}

#[cfg(target_arch = "wasm32")]
pub(crate) fn balance(addr: &[u8; 20]) -> u64 {
    // SAFETY: the pointer covers 20 bytes.
    unsafe { host::balance(addr.as_ptr()) as u64 }
}

#[cfg(target_arch = "wasm32")]
pub(crate) fn key_acts_for(account: &[u8; 20], key: &[u8; 32]) -> bool {
    // SAFETY: the pointers cover 20 and 32 bytes.
    unsafe { host::key_acts_for(account.as_ptr(), key.as_ptr()) == 1 }
}

#[cfg(target_arch = "wasm32")]
pub(crate) fn transfer(to: &[u8; 20], amount: u64) -> bool {
    // SAFETY: the pointer covers 20 bytes.
    unsafe { host::transfer(to.as_ptr(), amount as i64) == 0 }
}

#[cfg(target_arch = "wasm32")]
pub(crate) fn emit_event(kind: &str, data: &[u8]) {
    // SAFETY: pointers and lengths describe live slices.
    unsafe {
        host::emit_event(
            kind.as_ptr(),
            kind.len() as i32,
            data.as_ptr(),
            data.len() as i32,
        )
    }
}

/// Calls `method` of `contract`; `Ok(return data)` or `Err(failure message)`.
#[cfg(target_arch = "wasm32")]
pub(crate) fn call(
    contract: &[u8; 20],
    method: &str,
    input: &[u8],
    value: u64,
) -> Result<Vec<u8>, Vec<u8>> {
    // SAFETY: pointers and lengths describe live slices.
    let status = unsafe {
        host::call(
            contract.as_ptr(),
            method.as_ptr(),
            method.len() as i32,
            input.as_ptr(),
            input.len() as i32,
            value as i64,
        )
    };
    let out = scratch();
    if status == 0 {
        Ok(out)
    } else {
        Err(out)
    }
}

/// blake3 of `data`, computed by the host.
#[cfg(target_arch = "wasm32")]
pub(crate) fn blake3(data: &[u8]) -> [u8; 32] {
    let mut out = [0u8; 32];
    // SAFETY: the input slice is live; the host writes exactly 32 bytes.
    unsafe { host::blake3(data.as_ptr(), data.len() as i32, out.as_mut_ptr()) };
    out
}

#[cfg(not(target_arch = "wasm32"))]
pub(crate) use crate::testing::mock::{
    abort, balance, blake3, block_height, block_time_ms, call, caller, emit_event, input,
    key_acts_for, new_id, origin, self_address, set_return, storage_get, storage_remove,
    storage_set, transfer, value,
};
