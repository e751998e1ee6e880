//! The snapshot directory of a node: one subdirectory per height (`<height, 20 digits>/`) with
//! a `manifest` and its `chunk-NNNNNN` files. A snapshot is written under a `.partial-*` name
//! and renamed into place once whole, so a listed snapshot is always complete.

use std::io::Write;
use std::path::{Path, PathBuf};

use prost::Message;
use quorate_proto::v1::SnapshotManifest;

use super::format::{io_error, SnapshotError, MAX_CHUNK_BYTES, MAX_MANIFEST_BYTES};

/// Name of a snapshot's manifest file.
const MANIFEST: &str = "manifest";
/// Prefix of a snapshot being written.
const PARTIAL: &str = ".partial-";

/// How long after a chunk of a snapshot was last read the snapshot is kept although newer
/// ones replaced it: a node joining from it is still downloading (issue 25).
pub const IN_USE_GRACE: std::time::Duration = std::time::Duration::from_secs(600);

/// A directory of snapshots.
#[derive(Clone, Debug)]
pub struct SnapshotStore {
    dir: PathBuf,
    /// When a chunk of each snapshot was last read (shared by every clone of the store; one
    /// entry per snapshot held at most).
    read: std::sync::Arc<parking_lot::Mutex<std::collections::HashMap<u64, std::time::Instant>>>,
}

impl SnapshotStore {
    /// The store at `dir` (created when the first snapshot is written).
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Self {
            dir: dir.into(),
            read: Default::default(),
        }
    }

    /// Its directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn path_of(&self, height: u64) -> PathBuf {
        self.dir.join(format!("{height:020}"))
    }

    /// File name of chunk `index`.
    pub(super) fn chunk_name(index: u32) -> String {
        format!("chunk-{index:06}")
    }

    /// Heights of the complete snapshots held, lowest first.
    pub fn heights(&self) -> Result<Vec<u64>, SnapshotError> {
        let entries = match std::fs::read_dir(&self.dir) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(io_error(&self.dir)(e)),
        };
        let mut heights = Vec::new();
        for entry in entries {
            let entry = entry.map_err(io_error(&self.dir))?;
            let name = entry.file_name();
            let Some(name) = name.to_str() else { continue };
            if name.len() == 20 && name.bytes().all(|b| b.is_ascii_digit()) {
                if let Ok(h) = name.parse() {
                    heights.push(h);
                }
            }
        }
        heights.sort_unstable();
        Ok(heights)
    }

    /// The latest snapshot's height, if any.
    pub fn latest(&self) -> Result<Option<u64>, SnapshotError> {
        Ok(self.heights()?.last().copied())
    }

    fn existing(&self, height: u64) -> Result<PathBuf, SnapshotError> {
        let path = self.path_of(height);
        if path.join(MANIFEST).is_file() {
            Ok(path)
        } else {
            Err(SnapshotError::NotFound {
                height,
                dir: self.dir.clone(),
            })
        }
    }

    /// The manifest of the snapshot of `height`.
    pub fn manifest(&self, height: u64) -> Result<SnapshotManifest, SnapshotError> {
        let path = self.existing(height)?.join(MANIFEST);
        let bytes = read_bounded(&path, MAX_MANIFEST_BYTES)?;
        SnapshotManifest::decode(bytes.as_slice()).map_err(|e| SnapshotError::BadFile {
            path,
            reason: e.to_string(),
        })
    }

    /// The encoded chunk `index` of the snapshot of `height` (`NotFound` when either is not
    /// held).
    pub fn chunk(&self, height: u64, index: u32) -> Result<Vec<u8>, SnapshotError> {
        let path = self.existing(height)?.join(Self::chunk_name(index));
        if !path.is_file() {
            return Err(SnapshotError::NotFound {
                height,
                dir: self.dir.clone(),
            });
        }
        self.read.lock().insert(height, std::time::Instant::now());
        read_bounded(&path, MAX_CHUNK_BYTES)
    }

    /// A fresh directory to write a snapshot into (any left by an interrupted one is removed
    /// first: one snapshot is written at a time).
    pub(super) fn start_partial(&self) -> Result<PathBuf, SnapshotError> {
        std::fs::create_dir_all(&self.dir).map_err(io_error(&self.dir))?;
        self.remove_partials()?;
        let path = self.dir.join(format!("{PARTIAL}{}", std::process::id()));
        std::fs::create_dir(&path).map_err(io_error(&path))?;
        Ok(path)
    }

    fn remove_partials(&self) -> Result<(), SnapshotError> {
        for entry in std::fs::read_dir(&self.dir).map_err(io_error(&self.dir))? {
            let entry = entry.map_err(io_error(&self.dir))?;
            if entry.file_name().to_string_lossy().starts_with(PARTIAL) {
                let path = entry.path();
                std::fs::remove_dir_all(&path).map_err(io_error(&path))?;
            }
        }
        Ok(())
    }

    /// Writes `manifest` into the partial directory and moves it into place as the snapshot
    /// of its height (durably: files and directories synced). `false` if that height was
    /// already held (the partial one is removed).
    pub(super) fn complete(
        &self,
        partial: &Path,
        manifest: &SnapshotManifest,
    ) -> Result<bool, SnapshotError> {
        write_synced(&partial.join(MANIFEST), &manifest.encode_to_vec())?;
        sync_dir(partial)?;
        let target = self.path_of(manifest.height);
        if target.exists() {
            std::fs::remove_dir_all(partial).map_err(io_error(partial))?;
            return Ok(false);
        }
        std::fs::rename(partial, &target).map_err(io_error(&target))?;
        sync_dir(&self.dir)?;
        Ok(true)
    }

    /// Removes all but the latest `keep` snapshots, except the newest of those a chunk was
    /// read from in the last [`IN_USE_GRACE`] (removed by a later call once it has passed):
    /// one at most, so a peer reading a chunk of each snapshot in turn cannot make the node
    /// keep them all.
    pub fn keep_latest(&self, keep: usize) -> Result<Vec<u64>, SnapshotError> {
        self.keep_latest_with_grace(keep, IN_USE_GRACE)
    }

    fn keep_latest_with_grace(
        &self,
        keep: usize,
        grace: std::time::Duration,
    ) -> Result<Vec<u64>, SnapshotError> {
        let heights = self.heights()?;
        let mut read = self.read.lock();
        let old = &heights[..heights.len().saturating_sub(keep)];
        let pinned = old
            .iter()
            .rev()
            .find(|h| read.get(h).is_some_and(|t| t.elapsed() < grace))
            .copied();
        let gone: Vec<u64> = old.iter().copied().filter(|h| Some(*h) != pinned).collect();
        for h in &gone {
            let path = self.path_of(*h);
            std::fs::remove_dir_all(&path).map_err(io_error(&path))?;
            read.remove(h);
        }
        Ok(gone)
    }
}

/// Reads a file of at most `max` bytes.
fn read_bounded(path: &Path, max: u64) -> Result<Vec<u8>, SnapshotError> {
    let len = std::fs::metadata(path).map_err(io_error(path))?.len();
    if len > max {
        return Err(SnapshotError::BadFile {
            path: path.to_owned(),
            reason: format!("{len} bytes, more than the {max} allowed"),
        });
    }
    std::fs::read(path).map_err(io_error(path))
}

/// Writes `bytes` to a new file at `path` and syncs it.
pub(super) fn write_synced(path: &Path, bytes: &[u8]) -> Result<(), SnapshotError> {
    let mut f = std::fs::File::create(path).map_err(io_error(path))?;
    f.write_all(bytes).map_err(io_error(path))?;
    f.sync_all().map_err(io_error(path))
}

/// Syncs a directory, so that the names in it survive a crash.
pub(super) fn sync_dir(path: &Path) -> Result<(), SnapshotError> {
    std::fs::File::open(path)
        .and_then(|d| d.sync_all())
        .map_err(io_error(path))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Issue 25 (low): `keep_latest` deleted a snapshot a joining node was still downloading.
    /// A snapshot a chunk was read from lately is kept until the grace has passed.
    #[test]
    fn a_snapshot_being_read_outlives_newer_ones_for_a_while() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = SnapshotStore::new(dir.path());
        for h in [10u64, 20, 30, 40] {
            let d = store.path_of(h);
            std::fs::create_dir_all(&d).expect("dir");
            std::fs::write(d.join(MANIFEST), b"").expect("manifest");
            std::fs::write(d.join(SnapshotStore::chunk_name(0)), b"chunk").expect("chunk");
        }
        // A joiner reads from 10 (through a clone, as the sync server holds one): it is kept.
        assert_eq!(store.clone().chunk(10, 0).expect("chunk"), b"chunk");
        assert_eq!(store.keep_latest(1).expect("keep"), vec![20, 30]);
        assert_eq!(store.heights().expect("heights"), vec![10, 40]);
        for h in [50u64, 60] {
            let d = store.path_of(h);
            std::fs::create_dir_all(&d).expect("dir");
            std::fs::write(d.join(MANIFEST), b"").expect("manifest");
            std::fs::write(d.join(SnapshotStore::chunk_name(0)), b"chunk").expect("chunk");
        }
        store.chunk(50, 0).expect("chunk");
        assert_eq!(
            store.keep_latest(1).expect("keep"),
            vec![10, 40],
            "one pinned at most: the newest read"
        );
        assert_eq!(store.heights().expect("heights"), vec![50, 60]);
        assert_eq!(
            store
                .keep_latest_with_grace(1, std::time::Duration::ZERO)
                .expect("keep"),
            vec![50],
            "once the grace has passed"
        );
        assert!(
            store.read.lock().is_empty(),
            "nothing kept for removed snapshots"
        );
    }
}
