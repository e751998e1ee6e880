//! Calls to other contracts. A failed callee's writes and events are undone; the caller gets
//! the failure and decides what to do.

use alloc::string::String;
use alloc::vec::Vec;

use prost::Message;

use crate::{env, Address, Error, Result};

/// Calls `method` of `contract` with protobuf arguments, sending `value` native tokens from
/// this contract, and decodes the protobuf result.
pub fn call<A: Message, R: Message + Default>(
    contract: &Address,
    method: &str,
    args: &A,
    value: u64,
) -> Result<R> {
    let out = call_raw(contract, method, &args.encode_to_vec(), value)?;
    R::decode(out.as_slice()).map_err(|e| {
        Error::new(crate::__format!(
            "result of {contract}.{method} does not decode: {e}"
        ))
    })
}

/// Calls with raw argument bytes; returns the raw result.
pub fn call_raw(contract: &Address, method: &str, args: &[u8], value: u64) -> Result<Vec<u8>> {
    env::call(&contract.0, method, args, value).map_err(|msg| {
        Error::new(crate::__format!(
            "call to {contract}.{method} failed: {}",
            String::from_utf8_lossy(&msg)
        ))
    })
}
