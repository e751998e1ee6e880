//! Quorate's contract engine: wasmtime configured for determinism, ahead-of-time compiled
//! artifacts keyed by code hash and engine fingerprint, fuel metering bound to each
//! transaction's fuel limit, and the host ABI contracts call (module `quorate`).
//!
//! The engine knows nothing about RocksDB or blocks: state is reached through the [`Backend`]
//! trait, which the node implements over its block overlay (with checkpoints so that a failed
//! call changes nothing), and compiled artifacts are handed to the caller to store.
//!
//! Determinism rules (every validator must get the same result, fuel and events):
//! - NaN canonicalisation on; threads, SIMD, relaxed SIMD, multi-memory, memory64, tail calls,
//!   GC and the component model off;
//! - code is generated for the baseline of the target architecture, never for the host's extra
//!   CPU features, so machine code, stack use and artifacts are the same on every validator;
//! - no host function reads a clock or randomness: block height and time come from the block;
//! - fuel: wasmtime's per-operator fuel plus a fixed charge per host call and per byte moved.

mod abi;
mod backend;
mod config;
mod engine;
#[cfg(feature = "fuzzing")]
pub mod fuzzing;
mod host;
mod inspect;
mod runtime;

pub use abi::{
    new_id, AbiLevel, AbortKind, IMPORT_MODULE, INIT_METHOD, INTERFACE_SECTION,
    NEWER_HOST_FUNCTIONS,
};
pub use backend::{Backend, Checkpoint};
pub use config::{FuelCosts, Limits, VmConfig};
pub use engine::{EngineError, Fingerprint};
pub use inspect::{inspect, ModuleInfo, ValidationError};
pub use runtime::{
    BlockEnv, CallOutcome, CallRequest, CodeHash, Compiled, ContractEvent, Failure, LoadError, Vm,
    VmError,
};
