//! The Quorate node: admission, mempool, execution, storage, the consensus driver, gRPC server
//! and the `quorate` command-line tool.

pub mod admission;
pub mod admission_queue;
pub mod block_rules;
pub mod byzantine;
pub mod chain;
pub mod chain_params;
pub mod config;
pub mod contracts;
#[cfg(any(test, feature = "sim"))]
pub mod counter_contract;
pub mod driver;
pub mod environment;
pub mod execution;
pub mod fuzz_targets;
pub mod mempool;
pub mod metrics;
pub mod metrics_server;
pub mod network;
pub mod node;
pub mod protocol;
pub mod rpc;
#[cfg(any(test, feature = "sim"))]
pub mod sim;
pub mod snapshot;
pub mod state_root;
pub mod state_sync;
pub mod storage;
pub mod sync_server;
#[cfg(test)]
#[allow(missing_docs, clippy::unwrap_used)]
mod testutil;
pub mod tls;
pub mod validator_sets;
pub mod verified_tx;
