//! A counter contract: anyone increments it, its deployer may reset it. Start from here:
//! `quorate contract new my-contract` copies this crate.
#![cfg_attr(not(test), no_std)]

extern crate alloc;

use alloc::vec::Vec;

use quorate_sdk::storage::Item;
use quorate_sdk::{context, ensure, events, methods, Error, Result};

/// Messages generated from `proto/contract.proto`.
pub mod pb {
    include!(concat!(env!("OUT_DIR"), "/counter.v1.rs"));
}
use pb::{CounterValue, GetArgs, IncrementArgs, InitArgs, ResetArgs};

quorate_sdk::interface!(concat!(env!("OUT_DIR"), "/interface.bin"));

static VALUE: Item<u64> = Item::new("value");
static OWNER: Item<Vec<u8>> = Item::new("owner");

methods! {
    /// Runs once, at deploy: the deployer owns the counter.
    fn init(args: InitArgs) -> Result<CounterValue> {
        OWNER.save(&context::caller().to_vec());
        VALUE.save(&args.start);
        Ok(CounterValue { value: args.start })
    }

    /// Adds `by` (1 to 1000) and emits "incremented".
    fn increment(args: IncrementArgs) -> Result<CounterValue> {
        ensure!(
            (1..=1000).contains(&args.by),
            Error::bad_input("by must be between 1 and 1000")
        );
        let value = VALUE
            .load_or_default()?
            .checked_add(args.by)
            .ok_or_else(|| Error::new("counter overflow"))?;
        VALUE.save(&value);
        let out = CounterValue { value };
        events::emit("incremented", &out);
        Ok(out)
    }

    /// The current value.
    fn get(_args: GetArgs) -> Result<CounterValue> {
        Ok(CounterValue {
            value: VALUE.load_or_default()?,
        })
    }

    /// Sets the counter back to zero (owner only).
    fn reset(_args: ResetArgs) -> Result<CounterValue> {
        ensure!(
            OWNER.load_or_default()? == context::caller().to_vec(),
            Error::permission_denied("only the owner may reset the counter")
        );
        VALUE.save(&0);
        Ok(CounterValue { value: 0 })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use quorate_sdk::{testing, Address};

    #[test]
    fn increments_emit_and_only_the_owner_resets() {
        testing::reset();
        testing::set_caller(Address([1; 20]));
        init(InitArgs { start: 5 }).unwrap();
        assert_eq!(increment(IncrementArgs { by: 2 }).unwrap().value, 7);
        assert_eq!(testing::events()[0].0, "incremented");
        assert_eq!(
            increment(IncrementArgs { by: 0 }).unwrap_err().kind,
            quorate_sdk::ErrorKind::BadInput
        );
        testing::set_caller(Address([2; 20]));
        assert_eq!(
            reset(ResetArgs {}).unwrap_err().kind,
            quorate_sdk::ErrorKind::PermissionDenied
        );
        testing::set_caller(Address([1; 20]));
        assert_eq!(reset(ResetArgs {}).unwrap().value, 0);
        assert_eq!(get(GetArgs {}).unwrap().value, 0);
    }
}
