//! What a snapshot is made of on disk and on the wire: its format version, the size bounds of
//! its chunks and manifests, and why one could not be taken, read, checked or imported.

use std::path::PathBuf;

use crate::storage::StorageError;

/// Format version of manifests and chunks.
pub const FORMAT: u32 = 1;
/// Size at which a chunk is closed (an item larger than this gets a chunk of its own).
pub const CHUNK_TARGET_BYTES: usize = 1 << 20;
/// Largest encoded chunk accepted from a file or a peer.
pub const MAX_CHUNK_BYTES: u64 = 64 << 20;
/// Largest encoded manifest accepted from a file or a peer (about 30,000 chunks).
pub const MAX_MANIFEST_BYTES: u64 = 64 << 20;
/// Most chunks a manifest may list.
pub const MAX_CHUNKS: usize = 30_000;

/// Why a snapshot could not be taken, read, checked or imported.
#[derive(Debug, thiserror::Error)]
pub enum SnapshotError {
    /// A file or directory could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// Path.
        path: PathBuf,
        /// Error.
        source: std::io::Error,
    },
    /// The database failed.
    #[error(transparent)]
    Storage(#[from] StorageError),
    /// Nothing is committed yet: a snapshot starts from a committed block.
    #[error("nothing to snapshot: the chain has no committed block yet")]
    AtGenesis,
    /// No snapshot at the height asked for.
    #[error("no snapshot of height {height} in {dir}")]
    NotFound {
        /// Height asked for.
        height: u64,
        /// Snapshot directory.
        dir: PathBuf,
    },
    /// The snapshot directory holds none.
    #[error("no snapshot in {0}")]
    NoneHeld(PathBuf),
    /// Not a snapshot file, or a damaged or truncated one.
    #[error("{path}: not a readable snapshot file: {reason}")]
    BadFile {
        /// Path.
        path: PathBuf,
        /// What was wrong.
        reason: String,
    },
    /// Another format version.
    #[error("snapshot format {0} is not supported (this node reads format {FORMAT})")]
    Format(u32),
    /// The snapshot belongs to another chain.
    #[error("snapshot of chain {chain} (genesis {genesis}), this node runs {expected_chain} (genesis {expected_genesis})")]
    WrongChain {
        /// Chain id in the snapshot.
        chain: String,
        /// Genesis hash in the snapshot.
        genesis: String,
        /// This node's chain id.
        expected_chain: String,
        /// This node's genesis hash.
        expected_genesis: String,
    },
    /// The manifest is malformed.
    #[error("snapshot manifest rejected: {0}")]
    BadManifest(String),
    /// The snapshot does not descend from the operator's trust anchor.
    #[error("snapshot refused by the trust anchor: {0}")]
    Untrusted(String),
    /// The certificate does not make the snapshot's header final.
    #[error("snapshot of height {height}: certificate rejected: {source}")]
    Certificate {
        /// Height.
        height: u64,
        /// Why.
        source: quorate_proto::certificate::CertificateError,
    },
    /// The validator set changes it carries do not prove the set of its height.
    #[error("snapshot's validator set changes rejected: {0}")]
    SetChanges(#[from] quorate_proto::certificate::SetChangeError),
    /// The chunks' accumulators do not sum to the header's state root.
    #[error("snapshot of height {height}: chunks sum to state root {sum}, the certified header has {header}")]
    RootMismatch {
        /// Height.
        height: u64,
        /// Root of the chunks' sum.
        sum: String,
        /// Root in the header.
        header: String,
    },
    /// A chunk does not match the manifest (tampered, damaged or from another snapshot).
    #[error("snapshot chunk {index} rejected: {reason}")]
    BadChunk {
        /// Chunk index.
        index: u32,
        /// What was wrong.
        reason: String,
    },
    /// The bytecode in the snapshot does not match the contracts in its state.
    #[error("snapshot bytecode: {0}")]
    Code(String),
    /// The node's database directory already holds data.
    #[error("{0} is not empty: import a snapshot only into a node with no data (stop the node and move its data directory away first)")]
    TargetNotEmpty(PathBuf),
    /// Chunks are missing at the end of an import.
    #[error("snapshot of height {height} incomplete: {missing} of {total} chunks missing")]
    Incomplete {
        /// Height.
        height: u64,
        /// Chunks missing.
        missing: usize,
        /// Chunks in the manifest.
        total: usize,
    },
}

/// An I/O error with its path.
pub(crate) fn io_error(
    path: &std::path::Path,
) -> impl FnOnce(std::io::Error) -> SnapshotError + '_ {
    move |source| SnapshotError::Io {
        path: path.to_owned(),
        source,
    }
}
