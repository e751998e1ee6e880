//! Who is calling, in which block, and native tokens.

use crate::{env, Address, Error, Result};

/// The account or contract that called this method.
pub fn caller() -> Address {
    Address(env::caller())
}

/// The account that signed the transaction (equals `caller()` unless a contract called).
pub fn origin() -> Address {
    Address(env::origin())
}

/// This contract's address.
pub fn self_address() -> Address {
    Address(env::self_address())
}

/// Native tokens sent with this call (already credited to this contract).
pub fn value() -> u64 {
    env::value()
}

/// Height of the block being executed.
pub fn block_height() -> u64 {
    env::block_height()
}

/// Time of the block being executed, ms since the Unix epoch (the same on every validator).
pub fn block_time_ms() -> u64 {
    env::block_time_ms()
}

/// A new id, unique in the chain and increasing with its order, made by the node from the
/// transaction's place: `height << 28 | index in the block << 8 | n` for the transaction's
/// `n`-th id. Unlike a stored counter, which every creating call of a block reads and writes,
/// it lets those calls run in parallel (ADR 0020). At most 256 per transaction (the 257th
/// traps). Code importing it may be deployed from protocol version 2; genesis code at once.
pub fn new_id() -> u64 {
    env::new_id()
}

/// Native balance of `addr`.
pub fn balance(addr: &Address) -> u64 {
    env::balance(&addr.0)
}

/// Sends `amount` native tokens from this contract to `to`.
pub fn transfer(to: &Address, amount: u64) -> Result<()> {
    if env::transfer(&to.0, amount) {
        Ok(())
    } else {
        Err(Error::new(crate::__format!(
            "contract balance {} is below {amount}",
            balance(&self_address())
        )))
    }
}
