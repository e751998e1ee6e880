//! The consensus record: what this validator signed at the current height (and the bodies of
//! blocks it precommitted), written before any of it is sent, so a restart never makes it sign
//! a conflicting message. Entries of committed heights are deleted in the block's own batch.

use rocksdb::{Direction, IteratorMode, WriteBatch};

use super::db::{Storage, StorageError, CF_CONSENSUS};

fn key(height: u64, entry: &[u8]) -> [u8; 24] {
    let mut k = [0u8; 24];
    k[..8].copy_from_slice(&height.to_be_bytes());
    k[8..].copy_from_slice(&blake3::hash(entry).as_bytes()[..16]);
    k
}

impl Storage {
    /// Durably adds encoded `ConsensusRecord` entries for `height`, in one write that is
    /// always fsynced (`sync_writes = false` only relaxes block commits).
    pub fn append_record(&self, height: u64, entries: &[Vec<u8>]) -> Result<(), StorageError> {
        let cf = self.cf(CF_CONSENSUS);
        let mut batch = WriteBatch::default();
        for e in entries {
            batch.put_cf(cf, key(height, e), e);
        }
        self.db.write_opt(batch, &self.record_opts)?;
        Ok(())
    }

    /// The encoded record entries of `height`.
    pub fn record(&self, height: u64) -> Result<Vec<Vec<u8>>, StorageError> {
        let prefix = height.to_be_bytes();
        let mut out = Vec::new();
        let iter = self.db.iterator_cf(
            self.cf(CF_CONSENSUS),
            IteratorMode::From(&prefix, Direction::Forward),
        );
        for item in iter {
            let (k, v) = item?;
            if !k.starts_with(&prefix) {
                break;
            }
            out.push(v.to_vec());
        }
        Ok(out)
    }

    /// Adds the deletion of every record entry up to `height` to `batch`.
    pub(crate) fn prune_record(&self, batch: &mut WriteBatch, height: u64) {
        batch.delete_range_cf(
            self.cf(CF_CONSENSUS),
            0u64.to_be_bytes(),
            height.saturating_add(1).to_be_bytes(),
        );
    }
}
