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
