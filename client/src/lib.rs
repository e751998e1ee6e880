//! The Quorate client library: what a program that talks to validators needs, and what the
//! `quorate` command line and the load generator use.
//!
//! - [`connect`]: a gRPC channel to a node, plaintext or TLS (mutual TLS with a client
//!   identity), whose failures name their cause and the fix.
//! - [`Node`]: submit a signed transaction and get its hash at once, or submit and wait for
//!   its outcome; a wait that runs out says the outcome is unknown and names the hash to ask
//!   about, and submitting the same transaction again is safe (same hash, one inclusion).
//! - [`NonceManager`]: one account's nonces handed to many tasks at once, with no gap and no
//!   reuse, a nonce given back when its transaction is refused.
//! - [`ClientError`]: typed errors carrying the node's refusal code and message.
//!
//! Transactions are built and signed with `quorate_proto::tx` (`body`, `transfer_body`,
//! `sign`, `cosign`, `tx_hash`), the same code every validator checks them with.

mod connect;
mod error;
mod node;
mod nonce;

pub use connect::{connect, Tls};
pub use error::ClientError;
pub use node::{Node, Outcome};
pub use nonce::{NonceLease, NonceManager};
