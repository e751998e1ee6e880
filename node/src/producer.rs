//! The single-validator block driver (n = 1): cuts a block when a full block's worth of
//! transactions waits or the oldest has waited `block_interval_ms`, executes it, signs the
//! commit (its own signature is the whole 1-of-1 certificate) and commits it.

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use parking_lot::Mutex;
use quorate_proto::certificate::sign_commit;
use quorate_proto::v1::CommitCertificate;
use quorate_proto::Keypair;
use tokio::sync::{watch, Notify};
use tokio::time::Instant;

use crate::chain::{Chain, CommitError};
use crate::mempool::Mempool;
use crate::storage::{Head, StorageError};

/// Why the producer stopped.
#[derive(Debug, thiserror::Error)]
pub enum ProducerError {
    /// Storage failed while building a block.
    #[error("building a block: {0}")]
    Storage(#[from] StorageError),
    /// The commit failed; the node must not go on.
    #[error("committing a block: {0}")]
    Commit(#[from] CommitError),
    /// The blocking task panicked or was cancelled.
    #[error("block production task failed: {0}")]
    Join(String),
}

/// Drives block production for a one-validator chain.
pub struct SoloProducer {
    /// The chain.
    pub chain: Arc<Chain>,
    /// Shared mempool.
    pub mempool: Arc<Mutex<Mempool>>,
    /// Signalled when transactions are admitted.
    pub admitted: Arc<Notify>,
    /// The validator's key.
    pub key: Keypair,
    /// Its index in the validator set.
    pub validator_index: u32,
    /// Longest a pending transaction waits for a block to be cut.
    pub block_interval: Duration,
    /// Publishes each new head.
    pub heads: watch::Sender<Head>,
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

impl SoloProducer {
    /// Runs until `shutdown` turns true or a commit fails.
    pub async fn run(self, mut shutdown: watch::Receiver<bool>) -> Result<(), ProducerError> {
        let this = Arc::new(self);
        let max_txs = this.chain.info().params.block_max_txs as usize;
        loop {
            // Wait for work.
            while this.mempool.lock().is_empty() {
                tokio::select! {
                    _ = this.admitted.notified() => {}
                    _ = shutdown.changed() => return Ok(()),
                }
            }
            // Cut the block once the oldest pending transaction has waited one interval, or
            // earlier when a full block is waiting.
            let oldest = this
                .mempool
                .lock()
                .oldest_arrival()
                .unwrap_or_else(std::time::Instant::now);
            let deadline = Instant::from_std(oldest) + this.block_interval;
            while this.mempool.lock().len() < max_txs {
                tokio::select! {
                    _ = tokio::time::sleep_until(deadline) => break,
                    _ = this.admitted.notified() => {}
                    _ = shutdown.changed() => return Ok(()),
                }
            }
            let p = this.clone();
            tokio::task::spawn_blocking(move || p.produce_one())
                .await
                .map_err(|e| ProducerError::Join(e.to_string()))??;
        }
    }

    /// Builds, certifies and commits one block from the mempool. Blocking.
    pub fn produce_one(&self) -> Result<Option<Head>, ProducerError> {
        let params = &self.chain.info().params;
        let started = std::time::Instant::now();
        let candidates = self.mempool.lock().select(
            params.block_max_txs as usize,
            params.block_max_bytes as usize,
        );
        if candidates.is_empty() {
            return Ok(None);
        }
        let (block, dropped) = self
            .chain
            .propose(candidates, self.key.public().0, now_ms())?;
        if !dropped.is_empty() {
            for (hash, why) in &dropped {
                tracing::warn!(tx = %hash, reason = %why, "dropping transaction that can no longer be included");
            }
            self.mempool.lock().evict(dropped.iter().map(|(h, _)| h));
        }
        if block.txs.is_empty() {
            return Ok(None);
        }
        let info = self.chain.info();
        let signature = sign_commit(
            &self.key,
            self.validator_index,
            &info.chain_id,
            block.header.height,
            0,
            &block.hash,
        );
        let certificate = CommitCertificate {
            height: block.header.height,
            round: 0,
            block_hash: bytes::Bytes::copy_from_slice(&block.hash.0),
            signatures: vec![signature],
        };
        let head = self.chain.commit(&block, &certificate)?;
        self.mempool.lock().on_commit(&block.txs, &block.changes);
        self.heads.send_replace(head.clone());
        tracing::info!(
            height = head.height,
            hash = %head.hash,
            txs = block.txs.len(),
            elapsed_ms = started.elapsed().as_millis() as u64,
            "committed block"
        );
        Ok(Some(head))
    }
}
