//! Snapshots taken by a running validator every `storage.snapshot_interval` heights, written
//! on a thread of their own while blocks go on committing.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use quorate_proto::crypto::Hash32;

use super::store::SnapshotStore;
use super::take::take;
use crate::storage::Storage;

/// When and where a validator takes its snapshots.
#[derive(Clone, Debug)]
pub struct SnapshotSchedule {
    store: SnapshotStore,
    interval: u64,
    keep: usize,
    chain_id: String,
    genesis_hash: Hash32,
    busy: Arc<AtomicBool>,
}

impl SnapshotSchedule {
    /// A snapshot into `store` after every height that is a multiple of `interval` (none when
    /// 0), keeping the latest `keep`.
    pub fn new(
        store: SnapshotStore,
        interval: u64,
        keep: usize,
        chain_id: &str,
        genesis_hash: Hash32,
    ) -> Self {
        Self {
            store,
            interval,
            keep: keep.max(1),
            chain_id: chain_id.to_owned(),
            genesis_hash,
            busy: Arc::new(AtomicBool::new(false)),
        }
    }

    /// The snapshot directory.
    pub fn store(&self) -> &SnapshotStore {
        &self.store
    }

    /// Whether a snapshot is being written now (the next one due meanwhile is skipped).
    pub fn is_writing(&self) -> bool {
        self.busy.load(Ordering::Acquire)
    }

    /// Called right after `height` committed and before anything else commits: when a
    /// snapshot is due, fixes the state of `height` and writes it on another thread. Returns
    /// once the state is fixed (microseconds); a snapshot still being written when the next
    /// is due makes that one skipped.
    pub fn after_commit(&self, storage: &Arc<Storage>, height: u64) {
        if self.interval == 0 || !height.is_multiple_of(self.interval) {
            return;
        }
        if self.busy.swap(true, Ordering::AcqRel) {
            tracing::warn!(
                height,
                "snapshot skipped: the previous one is still being written"
            );
            return;
        }
        let (fixed_tx, fixed_rx) = std::sync::mpsc::sync_channel::<()>(1);
        let (this, storage) = (self.clone(), storage.clone());
        let spawned = std::thread::Builder::new()
            .name("snapshot".into())
            .spawn(move || {
                let started = std::time::Instant::now();
                let taken = take(
                    &storage,
                    &this.store,
                    &this.chain_id,
                    &this.genesis_hash,
                    || {
                        let _ = fixed_tx.send(());
                    },
                );
                match taken {
                    Ok(Some(s)) => {
                        crate::metrics::get().snapshot_height.set(s.height as i64);
                        tracing::info!(
                            height = s.height,
                            chunks = s.chunks,
                            entries = s.entries,
                            bytes = s.bytes,
                            ms = started.elapsed().as_millis() as u64,
                            "snapshot taken"
                        );
                        if let Err(e) = this.store.keep_latest(this.keep) {
                            tracing::warn!(error = %e, "could not remove old snapshots");
                        }
                    }
                    Ok(None) => {}
                    Err(e) => {
                        crate::metrics::get().snapshot_failures.inc();
                        tracing::error!(height, error = %e, "snapshot failed");
                    }
                }
                this.busy.store(false, Ordering::Release);
            });
        match spawned {
            // Returns when the state is fixed, or at once if the thread ended before that.
            Ok(_) => {
                let _ = fixed_rx.recv();
            }
            Err(e) => {
                tracing::error!(height, error = %e, "snapshot thread could not start");
                self.busy.store(false, Ordering::Release);
            }
        }
    }
}
