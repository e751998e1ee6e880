//! State snapshots: the whole state after one committed height, cut into chunks that a node
//! which has never seen the state can check one by one.
//!
//! A snapshot is a manifest and its chunks. The manifest names the height, carries that
//! height's block header and commit certificate, and for each chunk its LtHash accumulator,
//! digest and size. A chunk holds a run of state entries in (kind, key) order, or contract
//! bytecode. Checking goes from the chain down: the certificate makes the header final, the
//! chunks' accumulators must sum to the header's state root, and each chunk must match its
//! digest and accumulator before a byte of it is written. Bytecode is bound by the code hash in
//! each contract record. Chunking is deterministic, so every validator that snapshots the same
//! height cuts the same chunks.
//!
//! Validators take one every `storage.snapshot_interval` heights into their snapshot directory
//! (see [`SnapshotSchedule`]); `quorate snapshot export` packs one into a single file and
//! `quorate snapshot import` turns such a file into a fresh node's database.

mod file;
mod format;
mod restore;
mod schedule;
mod store;
mod take;
mod verify;

pub use file::{export, SnapshotFile};
pub use format::{
    SnapshotError, CHUNK_TARGET_BYTES, FORMAT, MAX_CHUNKS, MAX_CHUNK_BYTES, MAX_MANIFEST_BYTES,
};
pub use restore::{import_file, ImportSummary, Restore};
pub use schedule::SnapshotSchedule;
pub use store::SnapshotStore;
pub use take::{take, SnapshotSummary};
pub use verify::{
    manifest_identity, verify_manifest, TrustAnchor, VerifiedManifest, MAX_SET_CHANGES,
};

#[cfg(test)]
mod tests;
