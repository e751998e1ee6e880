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
use quorate_proto::v1::{Block, BlockHeader, ConsensusRecord, DecisionResponse};
use quorate_proto::{Hash32, Keypair};
use tokio::sync::{mpsc, watch, Notify};
use tokio::time::Instant;

use crate::admission::{verify_block_txs, VerifiedTx};
use crate::chain::{Chain, CommitError};
use crate::execution::ExecutedBlock;
use crate::mempool::Mempool;
use crate::network::{ConsensusEvent, NetworkHandle};
use crate::storage::{Head, StorageError};
use codec::{
    certificate_from_proto, certificate_to_proto, message_from_proto, message_to_proto,
    record_entry, record_of_signed, RecordEntry,
};
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
    /// The validators' network, with what it received for consensus (none with one validator).
    pub network: Option<(NetworkHandle, mpsc::Receiver<ConsensusEvent>)>,
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

/// Milliseconds since `started`, for the step durations in the log.
fn ms_since(started: Instant) -> f64 {
    started.elapsed().as_secs_f64() * 1e3
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
    Network(ConsensusEvent),
}

/// A block body received from another validator, checked and ready to execute.
struct Received {
    header: BlockHeader,
    txs: Vec<Arc<VerifiedTx>>,
}

/// Waits for the next network event, or forever without a network.
async fn next_event(rx: &mut Option<mpsc::Receiver<ConsensusEvent>>) -> ConsensusEvent {
    match rx {
        Some(rx) => match rx.recv().await {
            Some(e) => e,
            None => std::future::pending().await,
        },
        None => std::future::pending().await,
    }
}

/// The committed block at `height` with its certificate, as block sync serves it (empty when
/// not committed here).
fn decision_at(
    storage: &crate::storage::Storage,
    height: Height,
) -> Result<DecisionResponse, StorageError> {
    let Some(record) = storage.block_by_height(height)? else {
        return Ok(DecisionResponse::default());
    };
    let transactions = storage
        .txs(&record.tx_hashes)?
        .into_iter()
        .filter_map(|t| t.transaction)
        .collect();
    Ok(DecisionResponse {
        block: Some(Block {
            header: record.header,
            transactions,
        }),
        certificate: record.certificate,
    })
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
    net: Option<NetworkHandle>,
    /// Blocks built or validated at the current height, by id.
    blocks: HashMap<BlockId, Arc<ExecutedBlock>>,
    /// Bodies received from other validators, not yet executed.
    received: HashMap<BlockId, Received>,
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
    pub async fn run(mut self, mut shutdown: watch::Receiver<bool>) -> Result<(), DriverError> {
        let info = self.chain.info().clone();
        let height = self.chain.head().height + 1;
        let (net, mut inbound) = match self.network.take() {
            Some((h, rx)) => (Some(h), Some(rx)),
            None => (None, None),
        };
        let mut host = Host {
            d: self,
            net,
            blocks: HashMap::new(),
            received: HashMap::new(),
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
                e = next_event(&mut inbound) => Wake::Network(e),
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
                (Wake::Network(e), _) => match host.inbound(e, core.height()).await? {
                    Some(input) => input,
                    None => continue,
                },
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
            Action::Broadcast(msg) => self.broadcast(&msg),
            Action::RequestDecision { from, height } => {
                if let Some(net) = &self.net {
                    net.request_decision(from, height);
                }
            }
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
                // Blocks this node built or re-executed are valid by construction; others are
                // executed here from the body that came with their message.
                if self.blocks.contains_key(&block) {
                    return Ok(Some(Input::Validated {
                        height,
                        block,
                        valid: true,
                    }));
                }
                if let Some(r) = self.received.remove(&block) {
                    let chain = self.d.chain.clone();
                    let (txs, started) = (r.txs.len(), Instant::now());
                    let verdict = blocking(move || chain.validate(&r.header, r.txs)).await??;
                    tracing::debug!(
                        height,
                        %block,
                        txs,
                        ms = ms_since(started),
                        "re-executed proposed block"
                    );
                    let valid = match verdict {
                        Ok(executed) => {
                            self.blocks.insert(block, Arc::new(executed));
                            true
                        }
                        Err(why) => {
                            tracing::warn!(%block, reason = %why, "proposed block is invalid");
                            false
                        }
                    };
                    return Ok(Some(Input::Validated {
                        height,
                        block,
                        valid,
                    }));
                }
            }
            Action::Commit(cert) => self.commit(cert).await?,
            Action::Misbehaviour(m) => tracing::warn!(?m, "validator misbehaviour"),
        }
        Ok(None)
    }

    /// Sends a consensus message to the other validators, with the body of a proposed block.
    fn broadcast(&self, msg: &quorate_consensus::Message) {
        let Some(net) = &self.net else { return };
        let body = match msg {
            quorate_consensus::Message::Proposal(p) => {
                self.blocks.get(&p.proposal.block).map(|b| Block {
                    header: b.header_bytes.clone(),
                    transactions: b.txs.iter().map(|t| t.tx.clone()).collect(),
                })
            }
            _ => None,
        };
        if let Some(m) = message_to_proto(msg, body) {
            net.publish_consensus(&m);
        }
    }

    /// Handles what the network received; returns the machine's input, if any.
    async fn inbound(
        &mut self,
        e: ConsensusEvent,
        height: Height,
    ) -> Result<Option<Input>, DriverError> {
        match e {
            ConsensusEvent::Message(m) => {
                let msg = match message_from_proto(&m) {
                    Ok(msg) => msg,
                    Err(e) => {
                        tracing::warn!(error = %e, "malformed consensus message");
                        return Ok(None);
                    }
                };
                match &msg {
                    quorate_consensus::Message::Proposal(p) => tracing::debug!(
                        height = p.proposal.height,
                        round = p.proposal.round,
                        block = %p.proposal.block,
                        "received proposal"
                    ),
                    quorate_consensus::Message::Vote(v) => tracing::debug!(
                        height = v.vote.height,
                        round = v.vote.round,
                        kind = ?v.vote.kind,
                        validator = v.vote.validator,
                        "received vote"
                    ),
                    quorate_consensus::Message::Decision(c) => {
                        tracing::debug!(height = c.height, "received decision")
                    }
                }
                if let (quorate_consensus::Message::Proposal(p), Some(body)) = (&msg, m.block) {
                    if p.proposal.height == height {
                        self.accept_body(p.proposal.block, body).await?;
                    }
                }
                Ok(Some(Input::Message(msg)))
            }
            ConsensusEvent::Decision(resp) => {
                let (Some(cert), Some(body)) = (resp.certificate, resp.block) else {
                    return Ok(None);
                };
                let cert = match certificate_from_proto(&cert) {
                    Ok(c) if c.height == height => c,
                    Ok(_) => return Ok(None),
                    Err(e) => {
                        tracing::warn!(error = %e, "malformed decision");
                        return Ok(None);
                    }
                };
                self.accept_body(cert.block, body).await?;
                Ok(Some(Input::Message(quorate_consensus::Message::Decision(
                    cert,
                ))))
            }
            ConsensusEvent::DecisionRequested { height, channel } => {
                let storage = self.d.chain.storage().clone();
                let response = blocking(move || decision_at(&storage, height)).await??;
                if let Some(net) = &self.net {
                    net.respond(channel, response);
                }
                Ok(None)
            }
        }
    }

    /// Checks a received block body (its header hash must be `id`; transactions not already
    /// verified by admission are verified in one batch) and keeps it for validation.
    async fn accept_body(&mut self, id: BlockId, body: Block) -> Result<(), DriverError> {
        if self.blocks.contains_key(&id) || self.received.contains_key(&id) {
            return Ok(());
        }
        if Hash32::of(&body.header).0 != id.0 {
            tracing::warn!(block = %id, "block body does not match its id");
            return Ok(());
        }
        let chain = self.d.chain.clone();
        let mempool = self.d.mempool.clone();
        let checked = blocking(move || -> Result<Received, String> {
            let header = BlockHeader::decode(body.header.clone()).map_err(|e| e.to_string())?;
            let info = chain.info();
            let mut txs: Vec<Option<Arc<VerifiedTx>>> = Vec::with_capacity(body.transactions.len());
            let mut unverified = Vec::new();
            {
                let pool = mempool.lock();
                for tx in body.transactions {
                    match pool.get(&quorate_proto::tx::tx_hash(&tx.body)) {
                        // Verified at admission: not verified again.
                        Some(v) => txs.push(Some(v)),
                        None => {
                            txs.push(None);
                            unverified.push(tx);
                        }
                    }
                }
            }
            let mut fresh = verify_block_txs(unverified, &info.chain_id, &info.params)
                .map_err(|(i, e)| format!("transaction {i}: {e}"))?
                .into_iter();
            let txs = txs
                .into_iter()
                .map(|t| t.or_else(|| fresh.next()))
                .collect::<Option<Vec<_>>>()
                .ok_or("transaction count mismatch")?;
            Ok(Received { header, txs })
        })
        .await?;
        match checked {
            Ok(r) => {
                self.received.insert(id, r);
            }
            Err(why) => tracing::warn!(block = %id, reason = %why, "refused block body"),
        }
        Ok(())
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
        let (n, started) = (entries.len(), Instant::now());
        blocking(move || storage.append_record(height, &entries)).await??;
        tracing::debug!(
            height,
            entries = n,
            ms = ms_since(started),
            "wrote consensus record"
        );
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
        let started = Instant::now();
        let head = blocking(move || chain.commit(&b, &proto)).await??;
        let commit_ms = ms_since(started);
        self.d.mempool.lock().on_commit(&block.txs, &block.changes);
        self.blocks.clear();
        self.received.clear();
        self.d.heads.send_replace(head.clone());
        let leader = quorate_proto::PublicKey::from_slice(&block.header.proposer)
            .ok()
            .and_then(|k| self.d.chain.info().validators.index_of(&k));
        tracing::info!(
            height = head.height,
            round = cert.round,
            leader = ?leader,
            hash = %head.hash,
            txs = block.txs.len(),
            signatures = cert.signatures.len(),
            commit_ms,
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
        let started = Instant::now();
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
        tracing::debug!(
            height = req.height,
            round = req.round,
            block = %block.hash,
            txs = block.txs.len(),
            ms = ms_since(started),
            "built block"
        );
        self.blocks.insert(id, Arc::new(block));
        Ok(Some(Input::BlockBuilt {
            height: req.height,
            round: req.round,
            block: id,
        }))
    }
}
