//! The snapshot file an operator copies between machines: a magic line, then the manifest and
//! each chunk in order, each as a 4-byte big-endian length and the encoded message.

use std::io::{BufReader, BufWriter, Read, Write};
use std::path::{Path, PathBuf};

use prost::Message;
use quorate_proto::v1::SnapshotManifest;

use super::format::{io_error, SnapshotError, MAX_CHUNK_BYTES, MAX_MANIFEST_BYTES};
use super::store::SnapshotStore;
use super::take::SnapshotSummary;

/// First bytes of a snapshot file.
const MAGIC: &[u8] = b"QUORATE-SNAPSHOT\n";

/// Writes the snapshot of `height` held in `store` to the file `out` (through a temporary
/// name, so `out` is whole or absent).
pub fn export(
    store: &SnapshotStore,
    height: u64,
    out: &Path,
) -> Result<SnapshotSummary, SnapshotError> {
    let manifest = store.manifest(height)?;
    let tmp = PathBuf::from(format!("{}.partial", out.display()));
    let file = std::fs::File::create(&tmp).map_err(io_error(&tmp))?;
    let mut w = BufWriter::new(file);
    let write = |w: &mut BufWriter<std::fs::File>, bytes: &[u8]| {
        w.write_all(&(bytes.len() as u32).to_be_bytes())?;
        w.write_all(bytes)
    };
    w.write_all(MAGIC).map_err(io_error(&tmp))?;
    write(&mut w, &manifest.encode_to_vec()).map_err(io_error(&tmp))?;
    for index in 0..manifest.chunks.len() as u32 {
        let chunk = store.chunk(height, index)?;
        write(&mut w, &chunk).map_err(io_error(&tmp))?;
    }
    let file = w.into_inner().map_err(|e| io_error(&tmp)(e.into_error()))?;
    file.sync_all().map_err(io_error(&tmp))?;
    std::fs::rename(&tmp, out).map_err(io_error(out))?;
    Ok(SnapshotSummary::of(&manifest))
}

/// A snapshot file being read: its manifest first, then its chunks in order.
pub struct SnapshotFile {
    path: PathBuf,
    reader: BufReader<std::fs::File>,
}

impl SnapshotFile {
    /// Opens `path` and reads its manifest (not yet checked).
    pub fn open(path: &Path) -> Result<(Self, SnapshotManifest), SnapshotError> {
        let file = std::fs::File::open(path).map_err(io_error(path))?;
        let mut f = Self {
            path: path.to_owned(),
            reader: BufReader::new(file),
        };
        let mut magic = [0u8; MAGIC.len()];
        f.reader
            .read_exact(&mut magic)
            .map_err(|e| f.bad(format!("too short ({e})")))?;
        if magic != MAGIC {
            return Err(f.bad("it does not start with the snapshot file marker"));
        }
        let bytes = f.next_message("manifest", MAX_MANIFEST_BYTES)?;
        let manifest = SnapshotManifest::decode(bytes.as_slice())
            .map_err(|e| f.bad(format!("manifest does not decode: {e}")))?;
        Ok((f, manifest))
    }

    fn bad(&self, reason: impl Into<String>) -> SnapshotError {
        SnapshotError::BadFile {
            path: self.path.clone(),
            reason: reason.into(),
        }
    }

    fn next_message(&mut self, what: &str, max: u64) -> Result<Vec<u8>, SnapshotError> {
        let mut len = [0u8; 4];
        self.reader
            .read_exact(&mut len)
            .map_err(|e| self.bad(format!("{what}: truncated ({e})")))?;
        let len = u32::from_be_bytes(len) as u64;
        if len > max {
            return Err(self.bad(format!("{what}: {len} bytes, more than {max}")));
        }
        let mut bytes = vec![0u8; len as usize];
        self.reader
            .read_exact(&mut bytes)
            .map_err(|e| self.bad(format!("{what}: truncated ({e})")))?;
        Ok(bytes)
    }

    /// The next chunk's encoded bytes.
    pub fn next_chunk(&mut self, index: u32) -> Result<Vec<u8>, SnapshotError> {
        self.next_message(&format!("chunk {index}"), MAX_CHUNK_BYTES)
    }
}
