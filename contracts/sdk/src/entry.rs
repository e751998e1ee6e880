//! Entry points: how an exported method decodes its arguments, runs, and returns or fails.

use prost::Message;

use crate::{env, Error, Result};

/// Runs a method: decodes the input as `A` (failing with BAD_INPUT if it does not decode),
/// calls `f`, and sets its encoded result as return data or aborts with its error. The
/// [`crate::methods!`] macro calls this from each exported function.
pub fn dispatch<A: Message + Default, R: Message>(f: fn(A) -> Result<R>) {
    let input = env::input();
    let args = match A::decode(input.as_slice()) {
        Ok(a) => a,
        Err(e) => Error::bad_input(crate::__format!("arguments do not decode: {e}")).abort(),
    };
    match f(args) {
        Ok(r) => env::set_return(&r.encode_to_vec()),
        Err(e) => e.abort(),
    }
}

/// Declares contract methods. Each `fn name(args: A) -> Result<R>` (A and R protobuf messages,
/// or `()`) is exported under its own name; `init` runs once, at deploy.
///
/// ```ignore
/// quorate_sdk::methods! {
///     fn init(args: InitArgs) -> Result<()> { ... }
///     fn increment(args: IncrementArgs) -> Result<CounterValue> { ... }
/// }
/// ```
#[macro_export]
macro_rules! methods {
    ($(
        $(#[$meta:meta])*
        fn $name:ident ( $arg:ident : $ty:ty ) -> $ret:ty $body:block
    )*) => {
        $(
            $(#[$meta])*
            pub fn $name($arg: $ty) -> $ret $body

            const _: () = {
                #[cfg(target_arch = "wasm32")]
                #[export_name = ::core::stringify!($name)]
                extern "C" fn __quorate_entry() {
                    $crate::dispatch($name)
                }
            };
        )*
    };
}

/// Embeds the contract's interface (an encoded protobuf `FileDescriptorSet` with a service
/// whose rpc names are the method names) in the `quorate:interface` custom section, so clients
/// can call it with JSON arguments (`quorate contract call ... '{"by": 2}'`).
///
/// `quorate_sdk::interface!(concat!(env!("OUT_DIR"), "/interface.bin"));`
#[macro_export]
macro_rules! interface {
    ($path:expr) => {
        #[cfg(target_arch = "wasm32")]
        #[link_section = "quorate:interface"]
        #[used]
        static __QUORATE_INTERFACE: [u8; include_bytes!($path).len()] = *include_bytes!($path);
    };
}
