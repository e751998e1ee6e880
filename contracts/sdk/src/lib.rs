//! The Quorate contract SDK: write a smart contract in Rust, build it for
//! `wasm32-unknown-unknown`, deploy it with `quorate contract deploy`.
//!
//! A contract is a set of methods, each taking and returning a protobuf message:
//!
//! ```ignore
//! use quorate_sdk::{methods, storage::Item, Result};
//!
//! static COUNT: Item<u64> = Item::new("count");
//!
//! methods! {
//!     fn increment(args: IncrementArgs) -> Result<CounterValue> {
//!         let value = COUNT.load_or_default()? + args.by;
//!         COUNT.save(&value);
//!         quorate_sdk::events::emit("incremented", &CounterValue { value });
//!         Ok(CounterValue { value })
//!     }
//! }
//! ```
//!
//! - [`storage`]: typed storage scoped to the contract ([`storage::Item`], [`storage::Map`]).
//! - [`context`]: caller, origin, block height and time, native balances and transfers.
//! - [`events`]: events for the receipt and the node's event stream.
//! - [`call`]: calls to other contracts.
//! - [`crypto`]: blake3 hashing and derived addresses.
//! - [`Error`]: fail with a message and a kind (refused, bad input, permission denied);
//!   nothing a failed call wrote is kept.
//! - [`testing`]: an in-memory host for unit tests off-chain.
//!
//! Every host call costs fuel; a call that runs out stops with OUT_OF_FUEL.
#![no_std]

#[doc(hidden)]
pub extern crate alloc as __alloc;

extern crate alloc;
#[cfg(any(not(target_arch = "wasm32"), feature = "build"))]
extern crate std;

mod address;
#[cfg(feature = "build")]
pub mod build;
pub mod call;
pub mod context;
pub mod crypto;
mod entry;
mod env;
mod error;
pub mod events;
#[cfg(all(target_arch = "wasm32", feature = "runtime"))]
mod runtime;
pub mod storage;
#[cfg(not(target_arch = "wasm32"))]
pub mod testing;

pub use address::Address;
pub use entry::dispatch;
pub use error::{Error, ErrorKind, Result};
pub use prost;

/// `alloc::format!` for the SDK's macros.
#[doc(hidden)]
#[macro_export]
macro_rules! __format {
    ($($arg:tt)*) => { $crate::__alloc::format!($($arg)*) };
}
