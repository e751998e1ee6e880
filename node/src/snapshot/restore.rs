//! Turning a verified snapshot into a node's database: chunks are checked and written into a
//! directory beside the target as they arrive, in any order, and the directory takes the
//! target's name only once the state is whole. A crash during an import leaves no database
//! behind, never a partial one that a node could open.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use bytes::Bytes;
use quorate_proto::certificate::ValidatorSet;
use quorate_proto::crypto::Hash32;

use super::file::SnapshotFile;
use super::format::{io_error, SnapshotError};
use super::store::sync_dir;
use super::verify::{verify_manifest, VerifiedManifest};
use crate::storage::{code_hashes_of, BlockRecord, Head, Storage, StorageOptions};

/// What an import wrote.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ImportSummary {
    /// The head of the new database.
    pub head: Head,
    /// Chunks read.
    pub chunks: usize,
    /// State entries written.
    pub entries: u64,
    /// Contract bytecodes written.
    pub codes: u64,
}

/// An import under way.
pub struct Restore {
    verified: VerifiedManifest,
    storage: Arc<Storage>,
    tmp: PathBuf,
    target: PathBuf,
    done: Vec<bool>,
    entries: u64,
    referenced: BTreeSet<Hash32>,
    code: BTreeSet<Hash32>,
}

impl Restore {
    /// Starts importing `verified` into the database directory `target`, which must be absent
    /// or empty.
    pub fn begin(target: &Path, verified: VerifiedManifest) -> Result<Self, SnapshotError> {
        if target.exists() {
            let mut entries = std::fs::read_dir(target).map_err(io_error(target))?;
            if entries.next().is_some() {
                return Err(SnapshotError::TargetNotEmpty(target.to_owned()));
            }
        }
        let name = target
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| "data".into());
        let tmp = target.with_file_name(format!("{name}.importing"));
        if tmp.exists() {
            std::fs::remove_dir_all(&tmp).map_err(io_error(&tmp))?;
        }
        let storage = Storage::open(
            &tmp,
            &StorageOptions {
                sync_writes: false,
                ..StorageOptions::default()
            },
        )?;
        let done = vec![false; verified.chunk_count()];
        Ok(Self {
            verified,
            storage,
            tmp,
            target: target.to_owned(),
            done,
            entries: 0,
            referenced: BTreeSet::new(),
            code: BTreeSet::new(),
        })
    }

    /// The manifest being imported.
    pub fn manifest(&self) -> &VerifiedManifest {
        &self.verified
    }

    /// Checks chunk `index` and writes it; `false` if it was already written. A chunk that
    /// fails its check changes nothing: fetch it again from elsewhere.
    pub fn add_chunk(&mut self, index: u32, bytes: &[u8]) -> Result<bool, SnapshotError> {
        let chunk = self.verified.verify_chunk(index, bytes)?;
        if self.done[index as usize] {
            return Ok(false);
        }
        let mut referenced = Vec::new();
        for e in &chunk.entries {
            referenced.extend(code_hashes_of(e).map_err(|e| SnapshotError::BadChunk {
                index,
                reason: e.to_string(),
            })?);
        }
        self.storage.import_items(&chunk.entries, &chunk.code)?;
        self.referenced.extend(referenced);
        self.code
            .extend(chunk.code.iter().map(|w: &Bytes| Hash32::of(w)));
        self.entries += chunk.entries.len() as u64;
        self.done[index as usize] = true;
        Ok(true)
    }

    /// Indexes of the chunks not written yet.
    pub fn missing(&self) -> Vec<u32> {
        (0..self.done.len() as u32)
            .filter(|i| !self.done[*i as usize])
            .collect()
    }

    /// Completes the import once every chunk is written: checks that the bytecode is exactly
    /// that of the contracts in the state, makes the database a chain at the snapshot's height
    /// and moves it to the target.
    pub fn finish(self) -> Result<ImportSummary, SnapshotError> {
        let missing = self.missing().len();
        if missing > 0 {
            let e = SnapshotError::Incomplete {
                height: self.verified.height(),
                missing,
                total: self.done.len(),
            };
            self.abandon();
            return Err(e);
        }
        let unheld = self
            .referenced
            .difference(&self.code)
            .next()
            .map(|h| format!("a contract runs code {h}, which the snapshot does not hold"));
        let unused = (self.code.difference(&self.referenced).next())
            .map(|h| format!("code {h} is held but no contract runs it"));
        if let Some(reason) = unheld.or(unused) {
            self.abandon();
            return Err(SnapshotError::Code(reason));
        }
        let m = &self.verified.manifest;
        let record = BlockRecord {
            header: m.header.clone(),
            tx_hashes: Vec::new(),
            certificate: m.certificate.clone(),
        };
        let head = self.storage.finish_import(
            &m.chain_id,
            &Hash32::from_slice(&m.genesis_hash).unwrap_or_default(),
            &record,
            &self.verified.header,
            &self.verified.lthash,
        )?;
        self.storage.import_set_changes(&m.set_changes)?;
        let summary = ImportSummary {
            head,
            chunks: self.done.len(),
            entries: self.entries,
            codes: self.code.len() as u64,
        };
        // Close the database before it is moved.
        drop(self.storage);
        std::fs::rename(&self.tmp, &self.target).map_err(io_error(&self.target))?;
        if let Some(parent) = self.target.parent().filter(|p| !p.as_os_str().is_empty()) {
            sync_dir(parent)?;
        }
        Ok(summary)
    }
}

impl Restore {
    /// Gives the import up: the partial database is removed.
    pub fn abandon(self) {
        drop(self.storage);
        if let Err(e) = std::fs::remove_dir_all(&self.tmp) {
            tracing::warn!(path = %self.tmp.display(), error = %e, "could not remove an abandoned import");
        }
    }
}

/// Imports the snapshot file `file` into the empty database directory `target` of a node of
/// the chain `chain_id` with `genesis_hash`, whose validators are `validators`.
pub fn import_file(
    file: &Path,
    target: &Path,
    chain_id: &str,
    genesis_hash: &Hash32,
    validators: &ValidatorSet,
    anchor: Option<&super::TrustAnchor>,
) -> Result<ImportSummary, SnapshotError> {
    let (mut reader, manifest) = SnapshotFile::open(file)?;
    let verified = verify_manifest(manifest, chain_id, genesis_hash, validators)?;
    if let Some(a) = anchor {
        verified.check_anchor(validators, a)?;
    }
    let mut restore = Restore::begin(target, verified)?;
    for index in 0..restore.manifest().chunk_count() as u32 {
        if let Err(e) = reader
            .next_chunk(index)
            .and_then(|bytes| restore.add_chunk(index, &bytes))
        {
            restore.abandon();
            return Err(e);
        }
    }
    restore.finish()
}
