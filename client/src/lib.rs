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
//! - [`transaction`]: payloads, bodies, signing, co-signing after checking what others signed,
//!   a transaction as text between machines and in words for the one who signs it.
//! - [`system`]: the four system contracts' methods, typed by the interface each embeds.
//! - [`Node::blocks`], [`Node::events`]: streams that resume from their checkpoint after a
//!   reconnect, with no block or event lost or repeated.
//! - [`ChainVerifier`]: blocks checked against the validator set proven from the genesis file
//!   (set changes included), transactions against their block's `tx_root`.
//! - [`KeyFile`], [`Keypair`], [`multisig_address`]: keys as the command line keeps them,
//!   single-key and multi-signature addresses.
//! - [`ClientError`]: typed errors carrying the node's refusal code and message.
//!
//! The hashing and signing rules are `quorate_proto`'s: the same code every validator checks
//! transactions with.

mod connect;
mod error;
mod node;
mod nonce;
mod stream;
pub mod system;
pub mod transaction;
mod verify;

pub use connect::{connect, Tls};
pub use error::ClientError;
pub use node::{Node, Outcome, Sender};
pub use nonce::{NonceLease, NonceManager};
pub use quorate_genesis::{Genesis, KeyFile, KeyFileError};
pub use quorate_proto::crypto::{Address, Hash32, PublicKey};
pub use quorate_proto::keyset;
pub use quorate_proto::v1::{KeySet, Thresholds};
pub use quorate_proto::Keypair;
pub use stream::{BlockStream, Checkpoint, EventFilter, EventStream, GIVE_UP_AFTER};
pub use verify::{verify_block, verify_inclusion, ChainVerifier, VerifiedBlock, VerifyError};

/// The address of the multi-signature account of `keys` (public key, weight) under
/// `thresholds`: the key set is put in canonical order first, so any order gives one address.
pub fn multisig_address(keys: &[([u8; 32], u32)], thresholds: Thresholds) -> (Address, KeySet) {
    let set = keyset::of(keys, thresholds);
    (keyset::address(&set), set)
}
