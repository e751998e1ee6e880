//! Taking a snapshot: the state of one committed height read through a [`StateReader`] and
//! cut into chunks in a fixed order.

use std::path::{Path, PathBuf};

use bytes::Bytes;
use prost::Message;
use quorate_proto::crypto::Hash32;
use quorate_proto::v1::{SnapshotChunk, SnapshotChunkInfo, SnapshotManifest, StateEntry};

use super::format::{SnapshotError, CHUNK_TARGET_BYTES, FORMAT};
use super::store::SnapshotStore;
use super::store::{sync_dir, write_synced};
use crate::state_root::LtHash;
use crate::storage::{add_to_lthash, StateItem, Storage};

/// What a snapshot holds.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SnapshotSummary {
    /// Height it was taken after.
    pub height: u64,
    /// State root at that height.
    pub state_root: Hash32,
    /// Chunks.
    pub chunks: u32,
    /// State entries.
    pub entries: u64,
    /// Contract bytecodes.
    pub codes: u64,
    /// Encoded size of all chunks, bytes.
    pub bytes: u64,
}

impl SnapshotSummary {
    /// The summary of a manifest (the state root is its header's).
    pub fn of(manifest: &SnapshotManifest) -> Self {
        let state_root = quorate_proto::v1::BlockHeader::decode(manifest.header.clone())
            .ok()
            .and_then(|h| Hash32::from_slice(&h.state_root))
            .unwrap_or_default();
        Self {
            height: manifest.height,
            state_root,
            chunks: manifest.chunks.len() as u32,
            entries: manifest.chunks.iter().map(|c| c.entries as u64).sum(),
            codes: manifest.chunks.iter().map(|c| c.codes as u64).sum(),
            bytes: manifest.chunks.iter().map(|c| c.size).sum(),
        }
    }
}

/// Takes a snapshot of `storage`'s head into `store`. `fixed` is called as soon as the state
/// to write is fixed (commits may go on from then). Returns `None` when the store already
/// held a snapshot of that height.
pub fn take(
    storage: &Storage,
    store: &SnapshotStore,
    chain_id: &str,
    genesis_hash: &Hash32,
    fixed: impl FnOnce(),
) -> Result<Option<SnapshotSummary>, SnapshotError> {
    let reader = storage.state_reader()?;
    fixed();
    let Some(record) = reader.record.clone() else {
        return Err(SnapshotError::AtGenesis);
    };
    let partial = store.start_partial()?;
    let mut chunker = Chunker::new(&partial, reader.head.height);
    let cut = reader.for_each(|item| chunker.push(item));
    let chunks = match cut.and_then(|()| chunker.finish()) {
        Ok(c) => c,
        Err(e) => {
            let _ = std::fs::remove_dir_all(&partial);
            return Err(e);
        }
    };
    sync_dir(&partial)?;
    let manifest = SnapshotManifest {
        format: FORMAT,
        chain_id: chain_id.to_owned(),
        genesis_hash: Bytes::copy_from_slice(&genesis_hash.0),
        height: reader.head.height,
        header: record.header,
        certificate: record.certificate,
        chunks,
        // Proofs of the sets up to the one deciding the height after the snapshot's.
        set_changes: storage
            .set_changes()?
            .into_iter()
            .filter(|c| c.height <= reader.head.height + 1)
            .collect(),
    };
    let summary = SnapshotSummary::of(&manifest);
    Ok(store.complete(&partial, &manifest)?.then_some(summary))
}

/// Cuts items into chunks of about [`CHUNK_TARGET_BYTES`] and writes each as it closes.
struct Chunker {
    dir: PathBuf,
    height: u64,
    current: SnapshotChunk,
    current_bytes: usize,
    lthash: LtHash,
    infos: Vec<SnapshotChunkInfo>,
}

impl Chunker {
    fn new(dir: &Path, height: u64) -> Self {
        Self {
            dir: dir.to_owned(),
            height,
            current: SnapshotChunk::default(),
            current_bytes: 0,
            lthash: LtHash::default(),
            infos: Vec::new(),
        }
    }

    fn push(&mut self, item: StateItem<'_>) -> Result<(), SnapshotError> {
        let size = match &item {
            StateItem::Entry(_, k, v) => k.len() + v.len() + 8,
            StateItem::Code(w) => w.len() + 4,
        };
        if self.current_bytes > 0 && self.current_bytes + size > CHUNK_TARGET_BYTES {
            self.seal()?;
        }
        match item {
            StateItem::Entry(kind, key, value) => {
                add_to_lthash(&mut self.lthash, kind, key, value);
                self.current.entries.push(StateEntry {
                    kind: kind as i32,
                    key: Bytes::copy_from_slice(key),
                    value: Bytes::copy_from_slice(value),
                });
            }
            StateItem::Code(wasm) => self.current.code.push(Bytes::copy_from_slice(wasm)),
        }
        self.current_bytes += size;
        Ok(())
    }

    fn seal(&mut self) -> Result<(), SnapshotError> {
        let index = self.infos.len() as u32;
        let mut chunk = std::mem::take(&mut self.current);
        chunk.height = self.height;
        chunk.index = index;
        let bytes = chunk.encode_to_vec();
        write_synced(&self.dir.join(SnapshotStore::chunk_name(index)), &bytes)?;
        let lthash = std::mem::take(&mut self.lthash);
        self.infos.push(SnapshotChunkInfo {
            lthash: lthash.to_bytes().into(),
            digest: Bytes::copy_from_slice(&Hash32::of(&bytes).0),
            size: bytes.len() as u64,
            entries: chunk.entries.len() as u32,
            codes: chunk.code.len() as u32,
        });
        self.current_bytes = 0;
        Ok(())
    }

    fn finish(mut self) -> Result<Vec<SnapshotChunkInfo>, SnapshotError> {
        if self.current_bytes > 0 || self.infos.is_empty() {
            self.seal()?;
        }
        Ok(self.infos)
    }
}
