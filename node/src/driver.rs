//! The consensus driver: owns this validator's consensus state machine and performs its
//! actions — persists the record, keeps timers, builds blocks from the mempool when it
//! proposes, re-executes proposals, and commits certified blocks to RocksDB.
//!
//! One task runs the machine; blocking work (building, executing, RocksDB writes) runs on the
//! blocking pool and the task awaits it, so actions are performed strictly in order.

pub mod codec;
pub mod signing;
#[cfg(test)]
mod tests;

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use parking_lot::Mutex;
use prost::Message as _;
use quorate_consensus::{
    Action, BlockId, Certificate, Consensus, Height, Input, Params, Round, Signed, TimeoutKind,
    Timeouts, VoteKind,
};
use quorate_proto::v1::{Block, BlockHeader, ConsensusRecord};
use quorate_proto::Keypair;
use tokio::sync::{watch, Notify};
use tokio::time::Instant;

use crate::admission::verify_block_txs;
use crate::chain::{Chain, CommitError};
use crate::execution::ExecutedBlock;
use crate::mempool::Mempool;
use crate::storage::{Head, StorageError};
use codec::{certificate_to_proto, record_entry, record_of_signed, RecordEntry};
use signing::{ConsensusSigner, ConsensusVerifier};

/// Why the driver stopped. Any of these stops the node: it cannot go on safely.
#[derive(Debug, thiserror::Error)]
pub enum DriverError {
    /// Storage failed.
    #[error("storage: {0}")]
    Storage(#[from] StorageError),
    /// A certified block could not be committed.
    #[error("committing a block: {0}")]
    Commit(#[from] CommitError),
    /// The consensus record is damaged.
    #[error("consensus record at height {height}: {detail}")]
    Record {
        /// Height of the record.
        height: Height,
        /// What is wrong.
        detail: String,
    },
    /// Consensus decided a block whose body this node does not hold.
    #[error("decided block {0} is not held by this node")]
    MissingBlock(BlockId),
    /// A blocking task panicked or was cancelled.
    #[error("blocking task failed: {0}")]
    Join(String),
}

/// What the driver is started with.
pub struct Driver {
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
    /// Longest a pending transaction waits before this validator, as proposer, cuts a block.
    pub block_interval: Duration,
    /// With nothing pending, how long the proposer waits before proposing an empty block.
    pub empty_block_interval: Duration,
    /// Consensus timers.
    pub timeouts: Timeouts,
    /// Publishes each new head.
    pub heads: watch::Sender<Head>,
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> T + Send + 'static,
) -> Result<T, DriverError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| DriverError::Join(e.to_string()))
}

/// Sleeps until `at`, or forever without one.
async fn sleep_until(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

/// What woke the driver.
enum Wake {
    Timer,
    Build,
}

/// A block this validator was asked to build.
struct BuildRequest {
    height: Height,
    round: Round,
    asked: Instant,
}

/// The driver's state besides the machine.
struct Host {
    d: Driver,
    /// Blocks built or validated at the current height, by id.
    blocks: HashMap<BlockId, Arc<ExecutedBlock>>,
    /// Pending timers, one per kind (a newer one supersedes the older).
    timers: BTreeMap<TimeoutKind, (Instant, quorate_consensus::Timeout)>,
    build: Option<BuildRequest>,
    /// Record entries waiting to be written before the next outward action.
    unwritten: Vec<Vec<u8>>,
    unwritten_height: Height,
    started: Instant,
}

impl Driver {
    /// Runs consensus until `shutdown` turns true or a failure makes going on unsafe.
    pub async fn run(self, mut shutdown: watch::Receiver<bool>) -> Result<(), DriverError> {
        let info = self.chain.info().clone();
        let height = self.chain.head().height + 1;
        let mut host = Host {
            d: self,
            blocks: HashMap::new(),
            timers: BTreeMap::new(),
            build: None,
            unwritten: Vec::new(),
            unwritten_height: height,
            started: Instant::now(),
        };
        let record = host.load_record(height).await?;
        let params = Params::new(
            info.validators.len() as u32,
            Some(host.d.validator_index),
            host.d.timeouts.clone(),
        );
        let mut core = Consensus::new(
            params,
            ConsensusSigner {
                chain_id: info.chain_id.clone(),
                key: host.d.key.clone(),
            },
            ConsensusVerifier {
                chain_id: info.chain_id.clone(),
                validators: info.validators.clone(),
            },
            height,
            &record,
        );
        tracing::info!(height, state = %core.describe(), records = record.len(), "consensus started");
        let mut actions: VecDeque<Action> = core.start().into();
        loop {
            while let Some(action) = actions.pop_front() {
                if let Some(input) = host.perform(action).await? {
                    actions.extend(core.handle(input));
                }
            }
            host.flush_record().await?;
            let (round_before, height_before) = (core.round(), core.height());
            let timer = host.earliest_timer();
            let wake = tokio::select! {
                _ = shutdown.changed() => return Ok(()),
                () = sleep_until(timer.map(|(at, _)| at)) => Wake::Timer,
                () = host.build_ready() => Wake::Build,
            };
            let input = match (wake, timer) {
                (Wake::Timer, Some((_, kind))) => match host.timers.remove(&kind) {
                    Some((_, t)) => Input::Timeout(t),
                    None => continue,
                },
                (Wake::Build, _) => match host.build_block().await? {
                    Some(input) => input,
                    None => continue,
                },
                (Wake::Timer, None) => continue,
            };
            actions.extend(core.handle(input));
            if core.height() == height_before && core.round() != round_before {
                tracing::info!(
                    height = core.height(),
                    round = core.round(),
                    leader = core.params().proposer(core.height(), core.round()),
                    "round change"
                );
            }
        }
    }
}

impl Host {
    /// Reads the record of `height`, restoring the bodies of blocks this validator locked on.
    async fn load_record(&mut self, height: Height) -> Result<Vec<Signed>, DriverError> {
        let storage = self.d.chain.storage().clone();
        let raw = blocking(move || storage.record(height)).await??;
        let bad = |detail: String| DriverError::Record { height, detail };
        let mut signed = Vec::new();
        for bytes in raw {
            let entry =
                ConsensusRecord::decode(bytes.as_slice()).map_err(|e| bad(e.to_string()))?;
            match record_entry(entry).map_err(|e| bad(e.to_string()))? {
                RecordEntry::Signed(s) => signed.push(s),
                RecordEntry::LockedBlock(b) => self.restore_block(b).await?,
            }
        }
        Ok(signed)
    }

    /// Re-executes a locked block's stored body so it can be proposed or committed again.
    async fn restore_block(&mut self, b: Block) -> Result<(), DriverError> {
        let chain = self.d.chain.clone();
        let result = blocking(move || {
            let header = BlockHeader::decode(b.header.clone()).map_err(|e| e.to_string())?;
            let info = chain.info();
            let txs = verify_block_txs(b.transactions, &info.chain_id, &info.params)
                .map_err(|(i, e)| format!("transaction {i}: {e}"))?;
            match chain.validate(&header, txs) {
                Ok(Ok(block)) => Ok(block),
                Ok(Err(why)) => Err(why),
                Err(e) => Err(e.to_string()),
            }
        })
        .await?;
        match result {
            Ok(block) => {
                self.blocks.insert(BlockId(block.hash.0), Arc::new(block));
            }
            Err(why) => tracing::warn!(reason = %why, "stored locked block no longer applies"),
        }
        Ok(())
    }

    /// Performs one action; returns the machine's input if the action is answered at once.
    async fn perform(&mut self, action: Action) -> Result<Option<Input>, DriverError> {
        if !matches!(action, Action::Persist(_)) {
            self.flush_record().await?;
        }
        match action {
            Action::Persist(s) => self.persist(&s),
            // The network layer carries these to the other validators; with one validator there
            // is no one to send to.
            Action::Broadcast(_) | Action::RequestDecision { .. } => {}
            Action::ScheduleTimeout { timeout, after_ms } => {
                let at = Instant::now() + Duration::from_millis(after_ms);
                self.timers.insert(timeout.kind, (at, timeout));
            }
            Action::BuildBlock { height, round } => {
                self.build = Some(BuildRequest {
                    height,
                    round,
                    asked: Instant::now(),
                });
                self.d.admitted.notify_one();
            }
            Action::ValidateBlock { height, block } => {
                // Blocks this node built or re-executed are valid by construction; bodies from
                // other validators arrive with their messages and are executed there.
                if self.blocks.contains_key(&block) {
                    return Ok(Some(Input::Validated {
                        height,
                        block,
                        valid: true,
                    }));
                }
            }
            Action::Commit(cert) => self.commit(cert).await?,
            Action::Misbehaviour(m) => tracing::warn!(?m, "validator misbehaviour"),
        }
        Ok(None)
    }

    fn persist(&mut self, s: &Signed) {
        self.unwritten_height = s.height();
        self.unwritten.push(record_of_signed(s).encode_to_vec());
        // The body of a block this validator precommits is kept with the record: after a
        // restart it may have to propose or commit exactly that block.
        if let Signed::Vote(v) = s {
            if let (VoteKind::Precommit, Some(id), true) = (
                v.vote.kind,
                v.vote.block,
                v.vote.validator == self.d.validator_index,
            ) {
                if let Some(b) = self.blocks.get(&id) {
                    let body = Block {
                        header: b.header_bytes.clone(),
                        transactions: b.txs.iter().map(|t| t.tx.clone()).collect(),
                    };
                    self.unwritten.push(
                        ConsensusRecord {
                            entry: Some(quorate_proto::v1::consensus_record::Entry::LockedBlock(
                                body,
                            )),
                        }
                        .encode_to_vec(),
                    );
                }
            }
        }
    }

    /// Writes the pending record entries durably (one fsynced batch).
    async fn flush_record(&mut self) -> Result<(), DriverError> {
        if self.unwritten.is_empty() {
            return Ok(());
        }
        let entries = std::mem::take(&mut self.unwritten);
        let height = self.unwritten_height;
        let storage = self.d.chain.storage().clone();
        blocking(move || storage.append_record(height, &entries)).await??;
        Ok(())
    }

    async fn commit(&mut self, cert: Certificate) -> Result<(), DriverError> {
        let block = self
            .blocks
            .get(&cert.block)
            .cloned()
            .ok_or(DriverError::MissingBlock(cert.block))?;
        let chain = self.d.chain.clone();
        let proto = certificate_to_proto(&cert);
        let b = block.clone();
        let head = blocking(move || chain.commit(&b, &proto)).await??;
        self.d.mempool.lock().on_commit(&block.txs, &block.changes);
        self.blocks.clear();
        self.d.heads.send_replace(head.clone());
        tracing::info!(
            height = head.height,
            round = cert.round,
            hash = %head.hash,
            txs = block.txs.len(),
            signatures = cert.signatures.len(),
            since_start_ms = self.started.elapsed().as_millis() as u64,
            "committed block"
        );
        Ok(())
    }

    /// The earliest pending timer.
    fn earliest_timer(&self) -> Option<(Instant, TimeoutKind)> {
        self.timers.iter().map(|(&kind, &(at, _))| (at, kind)).min()
    }

    /// Returns once a requested block should be cut: a full block waits, the oldest pending
    /// transaction has waited `block_interval`, or nothing came for `empty_block_interval`.
    async fn build_ready(&self) {
        let Some(req) = &self.build else {
            return std::future::pending().await;
        };
        let max_txs = self.d.chain.info().params.block_max_txs as usize;
        loop {
            let (len, oldest) = {
                let m = self.d.mempool.lock();
                (m.len(), m.oldest_arrival())
            };
            if len >= max_txs {
                return;
            }
            let mut deadline = req.asked + self.d.empty_block_interval;
            if let Some(oldest) = oldest {
                deadline = deadline.min(Instant::from_std(oldest) + self.d.block_interval);
            }
            if Instant::now() >= deadline {
                return;
            }
            tokio::select! {
                _ = tokio::time::sleep_until(deadline) => return,
                _ = self.d.admitted.notified() => {}
            }
        }
    }

    /// Builds and executes the requested block from the mempool.
    async fn build_block(&mut self) -> Result<Option<Input>, DriverError> {
        let Some(req) = self.build.take() else {
            return Ok(None);
        };
        let chain = self.d.chain.clone();
        let mempool = self.d.mempool.clone();
        let proposer = self.d.key.public().0;
        let (block, dropped) = blocking(move || {
            let params = &chain.info().params;
            let candidates = mempool.lock().select(
                params.block_max_txs as usize,
                params.block_max_bytes as usize,
            );
            chain.propose(candidates, proposer, now_ms())
        })
        .await??;
        if !dropped.is_empty() {
            for (hash, why) in &dropped {
                tracing::warn!(tx = %hash, reason = %why, "dropping transaction that can no longer be included");
            }
            self.d.mempool.lock().evict(dropped.iter().map(|(h, _)| h));
        }
        let id = BlockId(block.hash.0);
        tracing::debug!(height = req.height, round = req.round, block = %block.hash, txs = block.txs.len(), "built block");
        self.blocks.insert(id, Arc::new(block));
        Ok(Some(Input::BlockBuilt {
            height: req.height,
            round: req.round,
            block: id,
        }))
    }
}
