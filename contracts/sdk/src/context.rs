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

/// Position of the transaction in its block, from 0 (0 in a query). With the height it names
/// the call's place in the chain: [`new_id`] makes ids of it.
pub fn tx_index() -> u32 {
    env::tx_index()
}

/// An id for the `n`-th thing (n < 16) this call creates, unique in the chain and increasing
/// with the chain's order: `height << 24 | tx_index << 4 | n` (a genesis allows at most 2^20
/// transactions in a block). Unlike a stored counter, which every creating call of a block
/// reads and writes, it lets those calls run in parallel (ADR 0020).
pub fn new_id(n: u8) -> u64 {
    debug_assert!(n < 16);
    (block_height() << 24) | (u64::from(tx_index()) << 4) | u64::from(n & 15)
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
