//! The consensus driver: owns this validator's consensus state machine and performs its
//! actions — persists the record, keeps timers, builds blocks from the mempool when it
//! proposes, re-executes proposals, and commits certified blocks to RocksDB.
//!
//! One task runs the machine; blocking work (building, executing, RocksDB writes) runs on the
//! blocking pool and the task awaits it, so actions are performed strictly in order.

pub mod codec;
#[cfg(test)]
mod peer_tests;
pub mod proposers;
pub mod signing;
#[cfg(test)]
mod tests;

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use parking_lot::Mutex;
use prost::Message as _;
use quorate_consensus::{
    Action, BlockId, Certificate, Consensus, Height, Input, Params, Round, Signed, SignedProposal,
    TimeoutKind, Timeouts, ValidatorIndex, VoteKind,
};
use quorate_proto::v1::{Block, CompactBlock, ConsensusRecord, Transaction};
use quorate_proto::{Hash32, Keypair};
use tokio::sync::{watch, Notify};
use tokio::time::Instant;

use crate::block_rules::{check_body, check_bytes, check_compact, decode_header, BlockRejection};
use crate::byzantine::Byzantine;
use crate::chain::{Chain, ClockBound, CommitError};
use crate::environment::now_ms;
use crate::mempool::Mempool;
use crate::network::{ConsensusEvent, Inbox, NetworkHandle};
use crate::storage::ExecutedBlock;
use crate::storage::{Head, StorageError};
use crate::sync_server::BodyCache;
use crate::verified_tx::{verify_block_txs, VerifiedTx};
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
    /// A block body kept with the consensus record no longer validates: the record or the
    /// state is damaged.
    #[error(
        "block {block} kept with the consensus record of height {height} does not validate: {why}"
    )]
    RestoredBlock {
        /// Height of the record.
        height: Height,
        /// The block.
        block: BlockId,
        /// Why.
        why: String,
    },
    /// A blocking task panicked or was cancelled.
    #[error("blocking task failed: {0}")]
    Join(String),
}

/// Where consensus stands, published after every step (for health and metrics).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ConsensusStatus {
    /// Height being decided (the committed head + 1).
    pub height: Height,
    /// Current round.
    pub round: Round,
    /// Current step: 0 propose, 1 prevote, 2 precommit.
    pub step: u8,
    /// The highest height other validators were seen at.
    pub highest_peer_height: Height,
    /// Bodies received from or asked of other validators and not settled yet (what peers make
    /// this node keep; bounded).
    pub kept_bodies: u32,
    /// Blocks built or executed at this height and kept until it is decided.
    pub executed_blocks: u32,
    /// Blocks of this height whose proposer is remembered (whom to ask first for a body;
    /// bounded per proposer).
    pub remembered_proposers: u32,
    /// Validations waiting for a body this node already holds: 0, since a body kept settles
    /// the validation waiting for it at once (the node simulator checks it).
    pub stale_waits: u32,
    /// Answers from validators that proved their sender dishonest (a decision answer that
    /// cannot be one) since start: an honest validator is never charged.
    pub charged: u32,
    /// The validators they came from: bit i for validator i (of the first 64).
    pub charged_validators: u64,
}

impl ConsensusStatus {
    /// Other validators are two or more heights ahead: this node is catching up.
    pub fn catching_up(&self) -> bool {
        self.highest_peer_height >= self.height.saturating_add(2)
    }
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
    /// Longest a pending transaction waits before this validator, as proposer, cuts a block.
    pub block_interval: Duration,
    /// With nothing pending, how long the proposer waits before proposing an empty block.
    pub empty_block_interval: Duration,
    /// Consensus timers.
    pub timeouts: Timeouts,
    /// Publishes each new head.
    pub heads: watch::Sender<Head>,
    /// Publishes where consensus stands after every step.
    pub status: watch::Sender<ConsensusStatus>,
    /// How far ahead of this validator's clock a proposal's time may be before it gets a nil
    /// prevote (a block 2f+1 validators endorsed is judged without it).
    pub max_clock_drift: Duration,
    /// The validators' network, with the inbox of what it received for consensus (none with
    /// one validator).
    pub network: Option<(NetworkHandle, Arc<Inbox<ConsensusEvent>>)>,
    /// Bodies of this height's blocks, shared with the sync server that answers body requests.
    pub bodies: Arc<BodyCache>,
    /// Deviations from the protocol, for tests of Byzantine validators (none in a release
    /// build).
    pub byzantine: Byzantine,
}

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> T + Send + 'static,
) -> Result<T, DriverError> {
    crate::environment::blocking(f)
        .await
        .map_err(|e| DriverError::Join(e.0))
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
    /// A body a validation waits for is due to be asked for again.
    Fetch,
    Network(ConsensusEvent),
}

/// Most block bodies received from others kept at once (current and next height), and most
/// for one height and round (an equivocating proposer sends several).
const MAX_RECEIVED_BODIES: usize = 12;
const MAX_BODIES_PER_ROUND: usize = 2;
/// Misbehaviour reports logged per height (the rest are only counted).
const MISBEHAVIOUR_LOGGED_PER_HEIGHT: u32 = 16;
/// How long before a body a validation waits for is asked of the next validator; it doubles
/// after each full turn through the others that gave nothing, up to [`BODY_RETRY_MAX`].
const BODY_RETRY: Duration = Duration::from_millis(250);
/// Longest wait between two requests for a body a validation waits for.
const BODY_RETRY_MAX: Duration = Duration::from_secs(4);
/// How long a commit, with transactions pending, waits for the next record write to make it
/// durable before it fsyncs the WAL itself (a validator that proposes next writes its proposal
/// within a few milliseconds).
const COMMIT_SYNC_GRACE: Duration = Duration::from_millis(20);
/// How long the transactions of a compact proposal may take to come before the fetch counts
/// as failed (an answer or its failure is normally reported well before), at least; in later
/// rounds as long as the round's propose timeout, which grows (see [`Host::partial_timeout`]).
const PARTIAL_TIMEOUT: Duration = Duration::from_secs(5);

/// A block body received from another validator: checked against its header, its
/// transactions' signatures verified; kept until executed (or, if judged invalid, until the
/// height ends, in case 2f+1 validators endorse the block and it is judged again).
struct ReceivedBody {
    height: Height,
    round: Round,
    header_bytes: Bytes,
    txs: Vec<Arc<VerifiedTx>>,
}

/// A body asked for from other validators.
struct Wanted {
    height: Height,
    /// The round of the proposal it was asked for without a validation waiting (such bodies
    /// count against the bound on kept bodies from the moment they are asked for).
    round: Option<Round>,
    asked: Option<Instant>,
    attempts: u32,
    /// A validation is waiting for it (`Some(endorsed)`).
    validation: Option<bool>,
    /// A compact proposal of the block, filled from the mempool, waiting for the transactions
    /// asked of its proposer.
    partial: Option<Partial>,
    /// The proposer did not give the transactions its compact proposal named: the block gets
    /// a nil prevote (it is still fetched whole if 2f+1 validators endorse it).
    fetch_failed: bool,
}

impl Wanted {
    /// How long after the last request the body is asked of the next validator: [`BODY_RETRY`],
    /// doubled for each full turn through the other `n - 1` validators, up to
    /// [`BODY_RETRY_MAX`]. A validator whose peers withhold a body keeps asking, but no faster
    /// than this.
    fn retry_after(&self, n: u32) -> Duration {
        let turns = self.attempts / n.saturating_sub(1).max(1);
        BODY_RETRY
            .saturating_mul(1 << turns.min(5))
            .min(BODY_RETRY_MAX)
    }

    /// True once the last request went to the last validator of a turn.
    fn turn_done(&self, n: u32) -> bool {
        self.attempts.is_multiple_of(n.saturating_sub(1).max(1))
    }

    /// Nothing asked yet for a block of `height`.
    fn new(height: Height) -> Self {
        Self {
            height,
            round: None,
            asked: None,
            attempts: 0,
            validation: None,
            partial: None,
            fetch_failed: false,
        }
    }
}

/// A compact proposal whose transactions are partly in the mempool.
struct Partial {
    height: Height,
    round: Round,
    /// When its missing transactions were asked for.
    asked: Instant,
    header_bytes: Bytes,
    /// Every transaction's leaf (its hash, bound to its keys when several signed), in block
    /// order (checked against the header's root).
    hashes: Vec<Hash32>,
    /// The transactions at hand, in block order.
    slots: Vec<Option<Arc<VerifiedTx>>>,
    /// Positions of those asked for.
    missing: Vec<usize>,
}

/// Waits for the next network event, or forever without a network.
async fn next_event(inbox: &Option<Arc<Inbox<ConsensusEvent>>>) -> ConsensusEvent {
    match inbox {
        Some(inbox) => inbox.pop().await,
        None => std::future::pending().await,
    }
}

/// The wire form of an executed block's body.
fn body_of(b: &ExecutedBlock) -> Block {
    Block {
        header: b.header_bytes.clone(),
        transactions: b.txs.iter().map(|t| t.tx.clone()).collect(),
    }
}

/// The compact form of an executed block: header and transaction leaves (the hash, bound to
/// the signing keys when several signed).
fn compact_of(b: &ExecutedBlock) -> CompactBlock {
    CompactBlock {
        header: b.header_bytes.clone(),
        tx_hashes: b
            .txs
            .iter()
            .map(|t| Bytes::copy_from_slice(&t.leaf.0))
            .collect(),
    }
}

/// The transactions a proposer answered must be exactly those asked for, in the order asked.
fn check_fetched(partial: &Partial, txs: &[Transaction]) -> Result<(), String> {
    if txs.len() != partial.missing.len() {
        return Err(format!(
            "{} transactions answered for {} asked",
            txs.len(),
            partial.missing.len()
        ));
    }
    for (&i, tx) in partial.missing.iter().zip(txs) {
        if quorate_proto::tx::leaf_of(tx) != partial.hashes[i] {
            return Err(format!("transaction {i} is not the one the block names"));
        }
    }
    Ok(())
}

/// How long the transactions of a compact proposal of `round` may take: [`PARTIAL_TIMEOUT`],
/// or the round's propose timeout when that is longer (on a slow network the timers grow with
/// the rounds; a fixed fetch deadline would fail every fetch of every round alike).
fn partial_timeout(timeouts: &Timeouts, round: Round) -> Duration {
    PARTIAL_TIMEOUT.max(Duration::from_millis(
        timeouts.duration_ms(TimeoutKind::Propose, round),
    ))
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
    blocks: BTreeMap<BlockId, Arc<ExecutedBlock>>,
    /// Bodies received from other validators, not executed or judged invalid (bounded).
    received: BTreeMap<BlockId, ReceivedBody>,
    /// Bodies asked for from other validators.
    wanted: BTreeMap<BlockId, Wanted>,
    /// Proposer of each admissible proposal seen, by block (whom to ask for its body first).
    proposers: proposers::Proposers,
    /// Blocks whose body went out with their proposal (re-sends go without).
    sent_bodies: BTreeSet<BlockId>,
    /// Blocks whose body is kept with the consensus record of this height.
    persisted_bodies: BTreeSet<BlockId>,
    /// Pending timers, one per kind (a newer one supersedes the older).
    timers: BTreeMap<TimeoutKind, (Instant, quorate_consensus::Timeout)>,
    build: Option<BuildRequest>,
    /// Record entries waiting to be written before the next outward action.
    unwritten: Vec<Vec<u8>>,
    unwritten_height: Height,
    started: Instant,
    /// When the last block was committed (for the block interval).
    last_commit: Option<Instant>,
    /// The height being decided.
    height: Height,
    /// This validator's index in the set deciding the current height (`None`: not a member).
    me: Option<ValidatorIndex>,
    /// Size of that set.
    n: u32,
    /// Highest first height of a set the machine was told of.
    told: Height,
    /// Sets to tell the machine of, found at a commit.
    new_sets: Vec<Input>,
    /// The last commit, written, synced and published in the background.
    committing: Option<Committing>,
    /// Misbehaviour reports logged at this height.
    misbehaviour_logged: u32,
    /// Answers that proved their sender dishonest, and their senders (bit i: validator i).
    charged: (u32, u64),
    /// Inputs for the machine found while handling another (a verdict on a body that came with
    /// a decision), handed over after that one.
    queued: VecDeque<Input>,
    /// Set by a commit after which this release must not decide the next height.
    halted: Option<crate::protocol::Halt>,
}

/// A decided block being committed in the background.
struct Committing {
    block: Arc<ExecutedBlock>,
    /// Fires once the block is written (`None`: already seen).
    written: Option<tokio::sync::oneshot::Receiver<()>>,
    /// Tells the task that a record write fsynced after the commit's write made it durable
    /// (so it needs no fsync of its own).
    covered: Option<tokio::sync::oneshot::Sender<()>>,
    /// Writes, fsyncs, then publishes the head.
    task: tokio::task::JoinHandle<Result<(), DriverError>>,
}

impl Driver {
    /// Runs consensus until `shutdown` turns true or a failure makes going on unsafe.
    pub async fn run(mut self, mut shutdown: watch::Receiver<bool>) -> Result<(), DriverError> {
        let info = self.chain.info().clone();
        let height = self.chain.head().height + 1;
        let (net, inbound) = match self.network.take() {
            Some((h, rx)) => (Some(h), Some(rx)),
            None => (None, None),
        };
        let mut host = Host {
            d: self,
            net,
            blocks: BTreeMap::new(),
            received: BTreeMap::new(),
            wanted: BTreeMap::new(),
            proposers: Default::default(),
            sent_bodies: BTreeSet::new(),
            persisted_bodies: BTreeSet::new(),
            timers: BTreeMap::new(),
            build: None,
            unwritten: Vec::new(),
            unwritten_height: height,
            started: Instant::now(),
            last_commit: None,
            height,
            me: None,
            n: 0,
            told: height,
            new_sets: Vec::new(),
            committing: None,
            misbehaviour_logged: 0,
            charged: (0, 0),
            queued: VecDeque::new(),
            halted: None,
        };
        host.enter_height(height);
        if let Some(halt) = host.d.chain.halt_at(height) {
            return host.halt(halt, shutdown).await;
        }
        let record = host.load_record(height).await?;
        let params = Params::new(host.n, host.me, host.d.timeouts.clone());
        let mut core = Consensus::new(
            params,
            ConsensusSigner {
                chain_id: info.chain_id.clone(),
                key: host.d.key.clone(),
            },
            ConsensusVerifier {
                chain_id: info.chain_id.clone(),
                sets: host.d.chain.sets().clone(),
            },
            height,
            &record,
        );
        tracing::info!(height, state = %core.describe(), records = record.len(), "consensus started");
        let mut actions: VecDeque<Action> = core.start().into();
        // Sets decided by committed blocks and not in force yet (from the state at start-up).
        for input in std::mem::take(&mut host.new_sets) {
            actions.extend(core.handle(input));
        }
        loop {
            loop {
                while let Some(action) = actions.pop_front() {
                    if let Some(input) = host.perform(action).await? {
                        actions.extend(core.handle(input));
                    }
                    // A commit left the next height to a protocol version this release does
                    // not support: nothing more is sent or signed (ADR 0019).
                    if let Some(halt) = host.halted.take() {
                        return host.halt(halt, shutdown).await;
                    }
                    // Set changes a commit brought: the machine hears of them before anything
                    // else.
                    for input in std::mem::take(&mut host.new_sets) {
                        actions.extend(core.handle(input));
                    }
                }
                match host.queued.pop_front() {
                    Some(input) => actions.extend(core.handle(input)),
                    None => break,
                }
            }
            host.flush_record().await?;
            host.d.status.send_if_modified(|s| {
                let now = ConsensusStatus {
                    height: core.height(),
                    round: core.round(),
                    step: match core.step() {
                        quorate_consensus::Step::Propose => 0,
                        quorate_consensus::Step::Prevote => 1,
                        quorate_consensus::Step::Precommit => 2,
                    },
                    highest_peer_height: core.highest_peer_height(),
                    kept_bodies: (host.received.len() + host.wanted.len()) as u32,
                    executed_blocks: host.blocks.len() as u32,
                    remembered_proposers: host.proposers.len() as u32,
                    stale_waits: host.stale_waits(),
                    charged: host.charged.0,
                    charged_validators: host.charged.1,
                };
                let changed = *s != now;
                *s = now;
                changed
            });
            let (round_before, height_before) = (core.round(), core.height());
            let timer = host.earliest_timer();
            let fetch = host.next_fetch_retry();
            let wake = tokio::select! {
                // In this order, so that one seed of the node simulator gives one run.
                biased;
                _ = shutdown.changed() => return host.finish_commit().await,
                () = sleep_until(timer.map(|(at, _)| at)) => Wake::Timer,
                () = sleep_until(fetch) => Wake::Fetch,
                () = host.build_ready() => Wake::Build,
                e = next_event(&inbound) => Wake::Network(e),
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
                (Wake::Fetch, _) => {
                    host.retry_fetches();
                    continue;
                }
                (Wake::Network(e), _) => match host.inbound(e, &core).await? {
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
    /// Reads the record of `height`, restoring the bodies of blocks this validator proposed or
    /// locked on.
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
                RecordEntry::LockedBlock(b) => self.restore_block(height, b).await?,
            }
        }
        Ok(signed)
    }

    /// Re-executes a block body kept with the record so it can be proposed, re-sent or
    /// committed again. It was valid when it was kept and the head has not moved: failing now
    /// means the database is damaged, and going on could sign for a block this validator
    /// cannot produce.
    async fn restore_block(&mut self, height: Height, b: Block) -> Result<(), DriverError> {
        let chain = self.d.chain.clone();
        let id = BlockId(Hash32::of(&b.header).0);
        let result = blocking(move || {
            let info = chain.info();
            let params = chain.params_at(height);
            let txs = verify_block_txs(b.transactions, &info.chain_id, &params)
                .map_err(|(i, e)| format!("transaction {i}: {e}"))?;
            match chain.validate(&b.header, txs, None) {
                Ok(Ok(block)) => Ok(block),
                Ok(Err(why)) => Err(why.to_string()),
                Err(e) => Err(e.to_string()),
            }
        })
        .await?;
        match result {
            Ok(block) => {
                let block = Arc::new(block);
                self.d.bodies.put(height, block.hash.0, body_of(&block));
                self.persisted_bodies.insert(id);
                self.blocks.insert(id, block);
                Ok(())
            }
            Err(why) => Err(DriverError::RestoredBlock {
                height,
                block: id,
                why,
            }),
        }
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
            Action::ValidateBlock {
                height,
                block,
                endorsed,
            } => return self.validate(height, block, endorsed).await,
            Action::Commit(cert) => self.commit(cert).await?,
            Action::Misbehaviour(m) => {
                crate::metrics::get().refused("consensus_misbehaviour");
                // A liar can send one equivocation per message: the log keeps the first few of
                // each height (with both messages, as evidence), the metric counts them all.
                self.misbehaviour_logged += 1;
                if self.misbehaviour_logged <= MISBEHAVIOUR_LOGGED_PER_HEIGHT {
                    tracing::warn!(?m, "validator misbehaviour");
                }
            }
        }
        Ok(None)
    }

    /// Judges a block: at once if this node built or executed it; by re-executing its body if
    /// held (with the clock bound unless `endorsed`); otherwise fetches the body first and
    /// answers when it arrives.
    async fn validate(
        &mut self,
        height: Height,
        block: BlockId,
        endorsed: bool,
    ) -> Result<Option<Input>, DriverError> {
        if self.blocks.contains_key(&block) {
            return Ok(Some(Input::Validated {
                height,
                block,
                valid: true,
            }));
        }
        let Some(r) = self.received.get(&block) else {
            self.expire_partials();
            if let Some(w) = self.wanted.get_mut(&block) {
                if w.partial.is_some() {
                    w.validation = Some(endorsed);
                    return Ok(None);
                }
                if w.fetch_failed && !endorsed {
                    return Ok(Some(Input::Validated {
                        height,
                        block,
                        valid: false,
                    }));
                }
            }
            self.want_body(height, block, Some(endorsed));
            return Ok(None);
        };
        let chain = self.d.chain.clone();
        let (header_bytes, txs) = (r.header_bytes.clone(), r.txs.clone());
        let clock = (!endorsed).then(|| ClockBound {
            now_ms: now_ms(),
            max_drift_ms: self.d.max_clock_drift.as_millis() as u64,
        });
        let (n, started) = (txs.len(), Instant::now());
        let parent = self.uncommitted_parent();
        let verdict =
            blocking(move || chain.validate_on(parent.as_ref(), &header_bytes, txs, clock))
                .await??;
        tracing::debug!(
            height,
            %block,
            txs = n,
            endorsed,
            ms = ms_since(started),
            "re-executed proposed block"
        );
        let valid = match verdict {
            Ok(executed) if BlockId(executed.hash.0) == block => {
                let executed = Arc::new(executed);
                self.d.bodies.put(height, block.0, body_of(&executed));
                self.received.remove(&block);
                self.blocks.insert(block, executed);
                true
            }
            Ok(_) => {
                tracing::warn!(%block, "re-executed block hashes to another id");
                false
            }
            Err(why) => {
                // The body stays, in case 2f+1 validators endorse the block and it is judged again.
                tracing::warn!(%block, endorsed, reason = %why, "proposed block is invalid");
                false
            }
        };
        Ok(Some(Input::Validated {
            height,
            block,
            valid,
        }))
    }

    /// Asks another validator for the body of `block` (the proposer first, then the others in
    /// turn), at most once per [`Wanted::retry_after`]. `validation`: a validation waits for it.
    fn want_body(&mut self, height: Height, block: BlockId, validation: Option<bool>) {
        let Some(net) = &self.net else { return };
        let (n, me) = (self.n.max(1), self.me);
        let first = self.proposers.get(&block);
        let w = self
            .wanted
            .entry(block)
            .or_insert_with(|| Wanted::new(height));
        if validation.is_some() {
            w.validation = validation;
        }
        // The transactions of a compact proposal are being fetched: no whole body yet.
        if w.partial.is_some() || w.asked.is_some_and(|t| t.elapsed() < w.retry_after(n)) {
            return;
        }
        // The others in turn, starting with the proposer.
        let others: Vec<ValidatorIndex> = (0..n).filter(|&v| Some(v) != me).collect();
        let start = first
            .and_then(|p| others.iter().position(|&v| v == p))
            .unwrap_or(0);
        let turn = w.attempts as usize;
        w.asked = Some(Instant::now());
        w.attempts += 1;
        let Some(&target) = others.get((start + turn) % others.len().max(1)) else {
            return;
        };
        tracing::debug!(height, %block, from = target, "asking for a block body");
        net.request_body(target, height, block.0);
    }

    /// Sends a consensus message to the other validators; a proposal carries its block in
    /// compact form (header and transaction hashes) the first time it is sent (validators that
    /// missed it fetch the body).
    fn broadcast(&mut self, msg: &quorate_consensus::Message) {
        let Some(net) = &self.net else { return };
        let body = match msg {
            quorate_consensus::Message::Proposal(p)
                if self.sent_bodies.insert(p.proposal.block) =>
            {
                self.blocks.get(&p.proposal.block).map(|b| compact_of(b))
            }
            _ => None,
        };
        if let Some(m) = message_to_proto(msg, body) {
            for m in self.d.byzantine.outgoing(m, &self.d.key, &self.d.chain) {
                net.publish_consensus(&m);
            }
        }
    }

    /// Handles what the network received; returns the machine's input, if any. Work is spent
    /// on a block body only after what came with it is authenticated: a proposal's signature
    /// and proposer, a certificate's quorum, or a body this node asked for.
    async fn inbound<S, V>(
        &mut self,
        e: ConsensusEvent,
        core: &Consensus<S, V>,
    ) -> Result<Option<Input>, DriverError>
    where
        S: quorate_consensus::Signer,
        V: quorate_consensus::Verifier,
    {
        match e {
            ConsensusEvent::Message(m) => {
                if let Some(net) = &self.net {
                    for copy in self.d.byzantine.received(&m) {
                        net.publish_consensus(&copy);
                    }
                }
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
                        body = m.compact_block.is_some(),
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
                if let quorate_consensus::Message::Proposal(sp) = &msg {
                    if core.admissible_proposal(sp) {
                        self.proposal_body(sp, m.compact_block);
                        // Filled from the mempool: a validation may have waited for it.
                        self.settle(sp.proposal.block, core.height()).await?;
                    }
                }
                Ok(Some(Input::Message(msg)))
            }
            // State sync is over once the driver runs: a late answer is of no use.
            ConsensusEvent::Snapshot { .. } => Ok(None),
            ConsensusEvent::Decision {
                from,
                height,
                response,
            } => {
                let (cert, body) = match (response.certificate, response.block) {
                    (Some(c), Some(b)) => (c, b),
                    (None, None) => {
                        if response.lowest_height > height {
                            tracing::warn!(
                                from,
                                height,
                                lowest = response.lowest_height,
                                "validator pruned the block this node needs: this node must start from a state snapshot (stop it, move its data directory away and start it again: it joins by state sync)"
                            );
                        }
                        return Ok(Some(Input::NoDecision { from, height }));
                    }
                    _ => {
                        tracing::warn!(
                            from,
                            height,
                            "decision answer without block or certificate"
                        );
                        return Ok(None);
                    }
                };
                let cert = match certificate_from_proto(&cert) {
                    Ok(c) => c,
                    Err(e) => {
                        tracing::warn!(from, error = %e, "malformed decision");
                        self.charge(from, "decision_malformed");
                        return Ok(None);
                    }
                };
                if cert.height < core.height() && cert.height == height {
                    // This validator committed the height since it asked (by the others'
                    // votes, or another answer came first): nothing wrong with the answer.
                    tracing::debug!(
                        from,
                        height,
                        "late decision answer; height already committed"
                    );
                    return Ok(None);
                }
                if !core.admissible_certificate(&cert) {
                    tracing::warn!(
                        from,
                        height = cert.height,
                        "decision with an invalid certificate refused"
                    );
                    self.charge(from, "decision_invalid_certificate");
                    return Ok(None);
                }
                let (height, block) = (cert.height, cert.block);
                self.accept_body(height, Round::MAX, block, body, None)
                    .await?;
                // A block whose judgement waits for its body is judged now, whether the body
                // came with the decision or another way; the verdict follows the decision.
                self.settle(block, core.height()).await?;
                Ok(Some(Input::Message(quorate_consensus::Message::Decision(
                    cert,
                ))))
            }
            ConsensusEvent::Body { from, hash, block } => {
                let id = BlockId(hash);
                let Some(w) = self.wanted.get(&id) else {
                    return Ok(None);
                };
                let height = w.height;
                match block {
                    Some(body) => {
                        self.accept_body(height, Round::MAX, id, *body, None)
                            .await?;
                    }
                    None => {
                        tracing::debug!(from, block = %id, "peer does not hold the body asked for");
                        crate::metrics::get().refused("body_withheld");
                    }
                }
                // Kept now, or held already (it came another way meanwhile): settled.
                if self.blocks.contains_key(&id) || self.received.contains_key(&id) {
                    self.settle(id, core.height()).await?;
                    return Ok(None);
                }
                // Nothing, or a wrong copy: the next validator of this turn is asked at once.
                let n = self.n;
                if let Some(w) = self.wanted.get_mut(&id) {
                    if w.validation.is_some() && !w.turn_done(n) {
                        w.asked = None;
                        self.want_body(height, id, None);
                    }
                }
                Ok(None)
            }
            ConsensusEvent::Txs {
                from,
                hash,
                transactions,
            } => {
                self.fill_missing(from, BlockId(hash), transactions, core.height())
                    .await
            }
        }
    }

    /// The block of an authenticated compact proposal, filled from the mempool, or a request
    /// for what it lacks.
    fn proposal_body(&mut self, sp: &SignedProposal, compact: Option<CompactBlock>) {
        let p = &sp.proposal;
        self.proposers.note(p.block, p.proposer);
        match compact {
            Some(compact) => {
                // A fresh proposal's header must name its signer; a re-proposal names the
                // round that built it.
                let named = p.pol_round.is_none().then_some(p.proposer);
                self.accept_compact(p.height, p.round, p.block, compact, named, p.proposer);
            }
            None if !self.blocks.contains_key(&p.block)
                && !self.received.contains_key(&p.block)
                && !self.wanted.contains_key(&p.block) =>
            {
                // Unsolicited work: within the bound on kept bodies, counted from now on.
                if let Err(why) = self.room_for_proposal(p.height, p.round) {
                    tracing::warn!(block = %p.block, height = p.height, reason = %why, "not fetching the body of a proposal");
                    return;
                }
                self.wanted
                    .entry(p.block)
                    .or_insert_with(|| Wanted::new(p.height))
                    .round = Some(p.round);
                self.want_body(p.height, p.block, None);
            }
            None => {}
        }
    }

    /// Checks a compact proposal against its header and fills its body from the mempool; the
    /// transactions it lacks are asked of `proposer` (the body is kept once they arrive, see
    /// [`Host::fill_missing`]). Nothing is looked up before the header, count and transaction
    /// root are checked, and the partial body counts against the bound on bodies kept.
    fn accept_compact(
        &mut self,
        height: Height,
        round: Round,
        id: BlockId,
        compact: CompactBlock,
        named: Option<ValidatorIndex>,
        proposer: ValidatorIndex,
    ) {
        self.expire_partials();
        if self.blocks.contains_key(&id)
            || self.received.contains_key(&id)
            || self.wanted.get(&id).is_some_and(|w| w.partial.is_some())
        {
            return;
        }
        let params = self.d.chain.params_at(height);
        let checked = self
            .room_for_proposal(height, round)
            .and_then(|()| self.check_header(height, id, &compact.header, named))
            .and_then(|h| {
                check_compact(&h, &compact.tx_hashes, &params).map_err(|e| e.to_string())
            });
        let hashes = match checked {
            Ok(hashes) => hashes,
            Err(why) => {
                tracing::warn!(block = %id, height, reason = %why, "refused compact proposal");
                return;
            }
        };
        let slots: Vec<Option<Arc<VerifiedTx>>> = {
            let pool = self.d.mempool.lock();
            hashes.iter().map(|h| pool.get_leaf(h)).collect()
        };
        let missing: Vec<usize> = (0..slots.len()).filter(|&i| slots[i].is_none()).collect();
        let mut partial = Partial {
            height,
            round,
            asked: Instant::now(),
            header_bytes: compact.header,
            hashes,
            slots,
            missing,
        };
        if partial.missing.is_empty() {
            if let Err(why) = self.keep_filled(height, id, &mut partial) {
                tracing::warn!(block = %id, height, reason = %why, "refused compact proposal");
            }
            return;
        }
        let asked: Vec<Hash32> = partial.missing.iter().map(|&i| partial.hashes[i]).collect();
        crate::metrics::get()
            .proposal_txs_fetched
            .inc_by(asked.len() as u64);
        tracing::debug!(height, block = %id, from = proposer, missing = asked.len(), "asking the proposer for transactions");
        if let Some(net) = &self.net {
            net.request_txs(proposer, height, id.0, &asked);
        }
        let w = self.wanted.entry(id).or_insert_with(|| Wanted::new(height));
        w.partial = Some(partial);
    }

    /// The transactions a compact proposal lacked arrived from its proposer: they must be
    /// exactly those asked for, in order, with valid signatures; then the body is kept. If they
    /// are not, the block gets a nil prevote when it is judged (at once if a validation waits)
    /// and is fetched whole only if 2f+1 validators endorse it.
    async fn fill_missing(
        &mut self,
        from: ValidatorIndex,
        id: BlockId,
        transactions: Vec<Transaction>,
        current: Height,
    ) -> Result<Option<Input>, DriverError> {
        let Some(w) = self.wanted.get_mut(&id) else {
            return Ok(None);
        };
        let Some(mut partial) = w.partial.take() else {
            return Ok(None);
        };
        let (height, validation) = (w.height, w.validation);
        let verdict = match check_fetched(&partial, &transactions) {
            Ok(()) => {
                let info = self.d.chain.info().clone();
                let params = self.d.chain.params_at(height);
                let missing = partial.missing.clone();
                blocking(move || {
                    verify_block_txs(transactions, &info.chain_id, &params).map_err(
                        |(i, reason)| {
                            BlockRejection::BadTx {
                                index: missing[i],
                                reason,
                            }
                            .to_string()
                        },
                    )
                })
                .await?
            }
            Err(why) => Err(why),
        };
        let kept = verdict.and_then(|txs| {
            for (&i, tx) in partial.missing.iter().zip(txs) {
                partial.slots[i] = Some(tx);
            }
            self.keep_filled(height, id, &mut partial)
        });
        match kept {
            Ok(()) => {
                let w = self.wanted.remove(&id);
                match w.and_then(|w| w.validation) {
                    Some(endorsed) if height == current => {
                        self.validate(height, id, endorsed).await
                    }
                    _ => Ok(None),
                }
            }
            Err(why) => {
                tracing::warn!(from, block = %id, height, reason = %why, "proposer did not give the transactions of its compact proposal");
                crate::metrics::get().refused("fetch_failed");
                if let Some(w) = self.wanted.get_mut(&id) {
                    w.fetch_failed = true;
                    w.asked = None;
                    if validation == Some(false) {
                        // Answered below: no verdict is owed any more.
                        w.validation = None;
                    }
                }
                match validation {
                    Some(false) if height == current => Ok(Some(Input::Validated {
                        height,
                        block: id,
                        valid: false,
                    })),
                    Some(true) => {
                        self.want_body(height, id, Some(true));
                        Ok(None)
                    }
                    _ => Ok(None),
                }
            }
        }
    }

    /// Keeps a compact proposal whose transactions are all at hand, once they are within the
    /// chain's byte limit.
    fn keep_filled(
        &mut self,
        height: Height,
        id: BlockId,
        partial: &mut Partial,
    ) -> Result<(), String> {
        let txs = std::mem::take(&mut partial.slots)
            .into_iter()
            .collect::<Option<Vec<_>>>()
            .ok_or("transactions missing")?;
        let bytes = txs.iter().map(|t| t.tx.encoded_len()).sum();
        check_bytes(bytes, &self.d.chain.params_at(height)).map_err(|e| e.to_string())?;
        self.received.insert(
            id,
            ReceivedBody {
                height,
                round: partial.round,
                header_bytes: partial.header_bytes.clone(),
                txs,
            },
        );
        Ok(())
    }

    /// Checks a block body and keeps it for validation: its header must hash to `id`, be the
    /// canonical encoding, be of `height` (and name `proposer`, for a fresh proposal); the
    /// transactions must be the ones the header commits to, within the chain's limits, with
    /// valid signatures (those admitted before are not verified again). A body that fails is
    /// refused and not kept, so a good copy can still come. Returns whether it was kept.
    async fn accept_body(
        &mut self,
        height: Height,
        round: Round,
        id: BlockId,
        body: Block,
        proposer: Option<ValidatorIndex>,
    ) -> Result<bool, DriverError> {
        if self.blocks.contains_key(&id) || self.received.contains_key(&id) {
            return Ok(false);
        }
        match self.check_body(height, id, &body, proposer) {
            Ok(()) => {}
            Err(why) => {
                tracing::warn!(block = %id, height, reason = %why, "refused block body");
                return Ok(false);
            }
        }
        let chain = self.d.chain.clone();
        let mempool = self.d.mempool.clone();
        let header_bytes = body.header.clone();
        let checked = blocking(move || -> Result<Vec<Arc<VerifiedTx>>, BlockRejection> {
            let info = chain.info();
            let params = chain.params_at(height);
            let mut txs: Vec<Option<Arc<VerifiedTx>>> = Vec::with_capacity(body.transactions.len());
            let mut unverified = Vec::new();
            {
                let pool = mempool.lock();
                for tx in body.transactions {
                    match pool.get(&quorate_proto::tx::tx_hash(&tx.body)) {
                        // Verified at admission (the same body bytes): not verified again.
                        Some(v) if v.tx == tx => txs.push(Some(v)),
                        _ => {
                            txs.push(None);
                            unverified.push(tx);
                        }
                    }
                }
            }
            let mut fresh = verify_block_txs(unverified, &info.chain_id, &params)
                .map_err(|(index, reason)| BlockRejection::BadTx { index, reason })?
                .into_iter();
            Ok(txs
                .into_iter()
                .map(|t| t.or_else(|| fresh.next()))
                .collect::<Option<Vec<_>>>()
                .expect("one verified transaction per unverified one"))
        })
        .await?;
        match checked {
            Ok(txs) => {
                self.received.insert(
                    id,
                    ReceivedBody {
                        height,
                        round,
                        header_bytes,
                        txs,
                    },
                );
                Ok(true)
            }
            Err(why) => {
                tracing::warn!(block = %id, height, reason = %why, "refused block body");
                Ok(false)
            }
        }
    }

    /// The checks of a body that need no signature and no state.
    fn check_body(
        &self,
        height: Height,
        id: BlockId,
        body: &Block,
        proposer: Option<ValidatorIndex>,
    ) -> Result<(), String> {
        let header = self.check_header(height, id, &body.header, proposer)?;
        check_body(&header, &body.transactions, &self.d.chain.params_at(height))
            .map_err(|e| e.to_string())
    }

    /// The checks of a block's header that need no state: it hashes to `id`, is the canonical
    /// encoding, is of `height` and (for a fresh proposal) names `proposer`.
    fn check_header(
        &self,
        height: Height,
        id: BlockId,
        header_bytes: &Bytes,
        proposer: Option<ValidatorIndex>,
    ) -> Result<quorate_proto::v1::BlockHeader, String> {
        if Hash32::of(header_bytes).0 != id.0 {
            return Err("header does not hash to the block id".into());
        }
        let header = decode_header(header_bytes).map_err(|e| e.to_string())?;
        if header.height != height {
            return Err(format!(
                "header is for height {}, not {height}",
                header.height
            ));
        }
        if let Some(p) = proposer {
            let set = self.d.chain.sets().at(height);
            let key = set.set.keys().get(p as usize);
            if key.is_none_or(|k| k.0 != header.proposer.as_ref()) {
                return Err(BlockRejection::ProposerMismatch {
                    header: hex::encode(&header.proposer),
                    signer: p,
                }
                .to_string());
            }
        }
        Ok(header)
    }

    /// The bound on what unsolicited compact proposals make this node keep: bodies received
    /// and partial bodies together, and per height and round. Bodies this node asked for —
    /// a certified decision, a body it fetched — do not count against it: refusing them could
    /// leave it unable ever to commit.
    fn room_for_proposal(&self, height: Height, round: Round) -> Result<(), String> {
        // Partial bodies, and bodies asked for proposals that have not come yet.
        let pending = self
            .wanted
            .values()
            .filter_map(|w| match (&w.partial, w.round) {
                (Some(p), _) => Some((p.height, p.round)),
                (None, Some(r)) => Some((w.height, r)),
                (None, None) => None,
            });
        let kept = self.received.len() + pending.clone().count();
        let same_round = self
            .received
            .values()
            .filter(|r| r.height == height && r.round == round)
            .count()
            + pending.filter(|&(h, r)| h == height && r == round).count();
        if kept >= MAX_RECEIVED_BODIES || same_round >= MAX_BODIES_PER_ROUND {
            return Err(format!(
                "already holding {kept} bodies ({same_round} for height {height} round {round})"
            ));
        }
        Ok(())
    }

    /// Gives up on the partial bodies whose transactions did not come within
    /// [`PARTIAL_TIMEOUT`] (an answer lost with a full inbox, a request dropped): they count
    /// as failed fetches. A validation waiting for one gets its verdict now: invalid, or, for
    /// a block 2f+1 endorsed, the whole body is fetched.
    fn expire_partials(&mut self) {
        let mut endorsed = Vec::new();
        let timeouts = self.d.timeouts.clone();
        for (id, w) in &mut self.wanted {
            if w.partial
                .as_ref()
                .is_some_and(|p| p.asked.elapsed() >= partial_timeout(&timeouts, p.round))
            {
                tracing::debug!(block = %id, "transactions of a compact proposal never came");
                w.partial = None;
                w.fetch_failed = true;
                w.asked = None;
                match w.validation {
                    Some(false) if w.height == self.height => {
                        w.validation = None;
                        self.queued.push_back(Input::Validated {
                            height: w.height,
                            block: *id,
                            valid: false,
                        });
                    }
                    Some(true) => endorsed.push((w.height, *id)),
                    _ => {}
                }
            }
        }
        for (height, id) in endorsed {
            self.want_body(height, id, None);
        }
        // A body asked for a proposal that nobody gave and no validation waits for frees its
        // place in the bound on kept bodies after the same time.
        self.wanted.retain(|_, w| {
            let stale = w.round.is_some_and(|r| {
                w.validation.is_none()
                    && w.partial.is_none()
                    && w.asked
                        .is_some_and(|t| t.elapsed() >= partial_timeout(&timeouts, r))
            });
            !stale
        });
    }

    /// When a fetch a validation waits for is next due: a compact proposal's transactions to
    /// give up on, or a body to ask of the next validator.
    fn next_fetch_retry(&self) -> Option<Instant> {
        self.net.as_ref()?;
        let n = self.n.max(1);
        self.wanted
            .values()
            .filter(|w| w.validation.is_some() && w.height == self.height)
            .map(|w| match (&w.partial, w.asked) {
                (Some(p), _) => p.asked + partial_timeout(&self.d.timeouts, p.round),
                (None, Some(asked)) => asked + w.retry_after(n),
                (None, None) => Instant::now(),
            })
            .min()
    }

    /// Gives up on overdue compact proposals and asks the next validator for every body a
    /// validation still waits for (see [`Host::next_fetch_retry`]). Verdicts go to
    /// [`Host::queued`].
    fn retry_fetches(&mut self) {
        self.expire_partials();
        let due: Vec<(Height, BlockId)> = self
            .wanted
            .iter()
            .filter(|(_, w)| w.validation.is_some() && w.partial.is_none())
            .filter(|(_, w)| w.height == self.height)
            .map(|(id, w)| (w.height, *id))
            .collect();
        for (height, id) in due {
            self.want_body(height, id, None);
        }
    }

    /// Validator `from` sent what proves it dishonest (`reason`): counted in
    /// `quorate_peer_faults_total` and published in the status.
    fn charge(&mut self, from: u32, reason: &'static str) {
        crate::metrics::get().refused(reason);
        self.charged.0 = self.charged.0.saturating_add(1);
        if from < 64 {
            self.charged.1 |= 1 << from;
        }
    }

    /// Validations waiting for a body this node holds (see [`ConsensusStatus::stale_waits`]).
    fn stale_waits(&self) -> u32 {
        self.wanted
            .iter()
            .filter(|(id, w)| {
                w.validation.is_some()
                    && w.partial.is_none()
                    && (self.blocks.contains_key(*id) || self.received.contains_key(*id))
            })
            .count() as u32
    }

    /// If the body of `id` is held and the block is still wanted (a validation may wait for
    /// it), [`Host::body_arrived`]; its verdict goes to [`Host::queued`].
    async fn settle(&mut self, id: BlockId, current: Height) -> Result<(), DriverError> {
        let held = self.blocks.contains_key(&id) || self.received.contains_key(&id);
        let Some(w) = self.wanted.get(&id).filter(|w| held && w.partial.is_none()) else {
            return Ok(());
        };
        let height = w.height;
        if let Some(verdict) = self.body_arrived(height, id, current).await? {
            self.queued.push_back(verdict);
        }
        Ok(())
    }

    /// A body was kept for `id`: if a validation waits for it, the block is judged now.
    async fn body_arrived(
        &mut self,
        height: Height,
        id: BlockId,
        current: Height,
    ) -> Result<Option<Input>, DriverError> {
        let Some(w) = self.wanted.remove(&id) else {
            return Ok(None);
        };
        if w.fetch_failed {
            tracing::info!(height, block = %id, attempts = w.attempts, "fetched elsewhere the body of a block whose transactions its proposer did not give");
        }
        match w.validation {
            Some(endorsed) if height == current => self.validate(height, id, endorsed).await,
            _ => Ok(None),
        }
    }

    fn persist(&mut self, s: &Signed) {
        self.unwritten_height = s.height();
        self.unwritten.push(record_of_signed(s).encode_to_vec());
        // The body of a block this validator proposes or precommits is kept with the record:
        // after a restart it may have to send, propose or commit exactly that block.
        let me = self.me;
        let own_block = match s {
            Signed::Vote(v)
                if v.vote.kind == VoteKind::Precommit && Some(v.vote.validator) == me =>
            {
                v.vote.block
            }
            Signed::Proposal(p) if Some(p.proposal.proposer) == me => Some(p.proposal.block),
            _ => None,
        };
        if let Some(id) = own_block {
            if let Some(b) = self.blocks.get(&id) {
                if self.persisted_bodies.insert(id) {
                    self.unwritten.push(
                        ConsensusRecord {
                            entry: Some(quorate_proto::v1::consensus_record::Entry::LockedBlock(
                                body_of(b),
                            )),
                        }
                        .encode_to_vec(),
                    );
                }
            }
        }
    }

    /// Writes the pending record entries durably (one fsynced batch).
    /// The last commit is written first: a record entry of the next height must never be
    /// durable while the commit before it is not (after a crash the node would start at the
    /// committed height without its later entries, and could sign again at the next one).
    async fn flush_record(&mut self) -> Result<(), DriverError> {
        if self.unwritten.is_empty() {
            return Ok(());
        }
        self.wait_written().await?;
        let entries = std::mem::take(&mut self.unwritten);
        let height = self.unwritten_height;
        let storage = self.d.chain.storage().clone();
        let (n, started) = (entries.len(), Instant::now());
        blocking(move || storage.append_record(height, &entries)).await??;
        // Fsynced after the last commit's write (waited for above): that commit is durable.
        if let Some(covered) = self.committing.as_mut().and_then(|c| c.covered.take()) {
            let _ = covered.send(());
        }
        tracing::debug!(
            height,
            entries = n,
            ms = ms_since(started),
            "wrote consensus record"
        );
        Ok(())
    }

    /// Commits a decided block. The write runs in the background while the next height starts:
    /// its blocks are built and judged on the decided block's changes
    /// ([`Chain::propose_on`]), unless the block stores contract code or changes the validator
    /// schedule (then the write is waited for here). It is written without waiting for the
    /// fsync: the first record entry of the next height is written only after it (see
    /// [`Host::flush_record`]) and fsynced, which makes the commit durable with it (one WAL);
    /// a crash before either finds the record of this height intact and decides the same block
    /// again. Clients learn of the head only once it is durable (ADR 0008).
    async fn commit(&mut self, cert: Certificate) -> Result<(), DriverError> {
        let block = self
            .blocks
            .get(&cert.block)
            .cloned()
            .ok_or(DriverError::MissingBlock(cert.block))?;
        // The previous commit has normally long finished; its failure stops the driver.
        self.finish_commit().await?;
        let height = block.header.height;
        let leader = quorate_proto::PublicKey::from_slice(&block.header.proposer)
            .ok()
            .and_then(|k| self.d.chain.sets().at(height).set.index_of(&k));
        // Its transactions stop being pending at once (status queries still find them), so
        // the next block is selected without them.
        let busy = {
            let mut mempool = self.d.mempool.lock();
            mempool.on_decided(&block.txs, &block.changes);
            mempool.evict_unauthorized(&block.key_set_changes());
            !mempool.is_empty()
        };
        // Served from the cache until the block is in the storage (however long ago it came,
        // whatever else the cache took in since).
        if !self.d.bodies.contains(&block.hash.0) {
            self.d.bodies.put(height, block.hash.0, body_of(&block));
        }
        let (written_tx, written) = tokio::sync::oneshot::channel();
        let (covered, covered_rx) = tokio::sync::oneshot::channel();
        let task = {
            let (chain, mempool, heads, bodies) = (
                self.d.chain.clone(),
                self.d.mempool.clone(),
                self.d.heads.clone(),
                self.d.bodies.clone(),
            );
            let (b, proto) = (block.clone(), certificate_to_proto(&cert));
            let since_start_ms = self.started.elapsed().as_millis() as u64;
            tokio::spawn(async move {
                let started = Instant::now();
                let storage = chain.storage().clone();
                let (head, b) = blocking(move || {
                    let head = chain.commit_deferred(&b, &proto)?;
                    let mut pool = mempool.lock();
                    pool.on_commit(&b.txs, &b.changes);
                    // Again after the write: a transaction admitted against the key set
                    // before it (admission reads the storage) goes now.
                    pool.evict_unauthorized(&b.key_set_changes());
                    drop(pool);
                    Ok::<_, DriverError>((head, b))
                })
                .await??;
                // The height's bodies are served from the cache until the block is in the
                // storage: a validator still fetching its transactions gets them either way.
                bodies.forget_up_to(height);
                let _ = written_tx.send(());
                let commit_ms = ms_since(started);
                crate::metrics::get()
                    .commit_seconds
                    .observe(crate::metrics::seconds_since(started.into_std()));
                tracing::info!(
                    height,
                    round = cert.round,
                    leader = ?leader,
                    hash = %head.hash,
                    txs = b.txs.len(),
                    signatures = cert.signatures.len(),
                    commit_ms,
                    since_start_ms,
                    "committed block"
                );
                // With transactions pending the next record write normally comes within a few
                // milliseconds and makes the commit durable with its own fsync; only without
                // one is the WAL synced here (one fsync fewer per height, none racing the
                // proposal's). An idle node syncs at once: nothing will cover it soon.
                let by_record = busy
                    && tokio::select! {
                        biased;
                        r = covered_rx => r.is_ok(),
                        () = tokio::time::sleep(COMMIT_SYNC_GRACE) => false,
                    };
                if !by_record {
                    blocking(move || storage.sync_wal()).await??;
                }
                tracing::debug!(height, by_record, ms = ms_since(started), "commit durable");
                heads.send_if_modified(|h| {
                    let newer = head.height > h.height;
                    if newer {
                        *h = head;
                    }
                    newer
                });
                Ok(())
            })
        };
        self.committing = Some(Committing {
            block: block.clone(),
            written: Some(written),
            covered: Some(covered),
            task,
        });
        if !block.next_can_run_before_commit() {
            self.wait_written().await?;
        }
        self.record_commit_metrics(&block);
        self.blocks.clear();
        self.received.retain(|_, r| r.height > height);
        self.wanted.retain(|_, w| w.height > height);
        self.proposers.clear();
        self.sent_bodies.clear();
        self.persisted_bodies.clear();
        self.enter_height(height + 1);
        // Activations are decided `validator_set_delay` (≥ 3) heights ahead, so the one for
        // the next height is in a block whose commit has finished.
        self.halted = self.d.chain.halt_at(height + 1);
        Ok(())
    }

    /// Stops deciding blocks before a protocol version this release does not support: the
    /// last commit is finished, the reason logged (and reported by status and health), and
    /// the node keeps serving reads and other validators' fetches until it is shut down.
    async fn halt(
        &mut self,
        halt: crate::protocol::Halt,
        mut shutdown: watch::Receiver<bool>,
    ) -> Result<(), DriverError> {
        self.finish_commit().await?;
        tracing::error!(
            version = halt.version,
            height = halt.height,
            supported = halt.supported,
            head = self.d.chain.head().height,
            "consensus stopped: {halt}"
        );
        while !*shutdown.borrow() {
            if shutdown.changed().await.is_err() {
                break;
            }
        }
        Ok(())
    }

    /// Waits until the last commit is written (not necessarily synced).
    async fn wait_written(&mut self) -> Result<(), DriverError> {
        let Some(c) = &mut self.committing else {
            return Ok(());
        };
        let Some(written) = c.written.take() else {
            return Ok(());
        };
        if written.await.is_err() {
            // The task ended before writing: its error says why.
            self.finish_commit().await?;
        }
        Ok(())
    }

    /// Waits until the last commit is written, synced and published.
    async fn finish_commit(&mut self) -> Result<(), DriverError> {
        if let Some(c) = self.committing.take() {
            c.task
                .await
                .map_err(|e| DriverError::Join(e.to_string()))??;
        }
        Ok(())
    }

    /// The decided block whose commit may still be under way: the next height's blocks execute
    /// on its changes.
    fn uncommitted_parent(&self) -> Option<Arc<ExecutedBlock>> {
        self.committing.as_ref().map(|c| c.block.clone())
    }

    /// Takes in the validator sets for deciding `height`: this validator's place, the sets
    /// decided since the machine was last told (queued for it), and the network's view of who
    /// the validators are when the set changes.
    fn enter_height(&mut self, height: Height) {
        self.height = height;
        self.misbehaviour_logged = 0;
        let sets = self.d.chain.sets().clone();
        let key = self.d.key.public();
        let current = sets.at(height);
        let changed = current.set.len() as u32 != self.n
            || current.set.index_of(&key) != self.me
            || current.from_height == height;
        self.n = current.set.len() as u32;
        self.me = current.set.index_of(&key);
        let mut told_new = false;
        for s in sets.after(height) {
            if s.from_height > self.told {
                self.told = s.from_height;
                told_new = true;
                tracing::info!(
                    from_height = s.from_height,
                    validators = s.set.len(),
                    member = s.set.index_of(&key).is_some(),
                    "validator set change decided"
                );
                self.new_sets.push(Input::ValidatorSet {
                    from: s.from_height,
                    validators: s.set.len() as u32,
                    me: s.set.index_of(&key),
                });
            }
        }
        if changed && current.from_height == height && height > 1 {
            tracing::info!(
                height,
                validators = current.set.len(),
                index = ?self.me,
                "validator set change in force"
            );
        }
        if changed || told_new {
            if let Some(net) = &self.net {
                net.set_validators(
                    current.set.keys(),
                    &sets.members_from(height),
                    &sets.retired_at(height),
                );
            }
        }
    }

    /// Metrics of a committed block: interval, commit time, transactions, failures, contract
    /// calls and fuel (one pass over the receipts).
    fn record_commit_metrics(&mut self, block: &ExecutedBlock) {
        use quorate_proto::v1::ExecStatus;
        let m = crate::metrics::get();
        if let Some(last) = self.last_commit.replace(Instant::now()) {
            m.block_interval
                .observe(crate::metrics::seconds_since(last.into_std()));
        }
        m.blocks.inc();
        m.txs_committed.inc_by(block.txs.len() as u64);
        let mut fuel = 0u64;
        for (tx, r) in block.txs.iter().zip(&block.receipts) {
            let status = ExecStatus::try_from(r.status).unwrap_or(ExecStatus::Unspecified);
            let name = || {
                status
                    .as_str_name()
                    .trim_start_matches("EXEC_STATUS_")
                    .to_owned()
            };
            if status != ExecStatus::Success {
                m.txs_failed
                    .get_or_create(&crate::metrics::StatusLabel { status: name() })
                    .inc();
            }
            if !matches!(tx.payload, crate::verified_tx::Payload::Transfer { .. }) {
                fuel += r.fuel_used;
                m.contract_calls
                    .get_or_create(&crate::metrics::StatusLabel { status: name() })
                    .inc();
            }
        }
        m.contract_fuel.inc_by(fuel);
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
        let max_txs = self.d.chain.params_at(req.height).block_max_txs as usize;
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
                deadline = deadline.min(oldest + self.d.block_interval);
            }
            if Instant::now() >= deadline {
                return;
            }
            tokio::select! {
                biased;
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
        let byzantine = self.d.byzantine.clone();
        let key = self.d.key.clone();
        let started = Instant::now();
        let parent = self.uncommitted_parent();
        let height = req.height;
        let (block, dropped) = blocking(move || {
            let params = chain.params_at(height);
            let candidates = mempool.lock().select(
                params.block_max_txs as usize,
                params.block_max_bytes as usize,
            );
            let (block, dropped) = chain.propose_on(
                parent.as_ref(),
                candidates,
                proposer,
                byzantine.block_time(now_ms()),
            )?;
            Ok::<_, StorageError>((
                byzantine.built(block, parent.as_ref(), &chain, &key),
                dropped,
            ))
        })
        .await??;
        // A nonce ahead of the account's (behind one an invalidated transaction left unused)
        // may still come: that transaction stays pending; the others can never be included.
        let dropped: Vec<_> = dropped
            .into_iter()
            .filter(|(_, why)| !why.nonce_ahead())
            .collect();
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
        self.d.bodies.put(req.height, id.0, body_of(&block));
        self.blocks.insert(id, Arc::new(block));
        Ok(Some(Input::BlockBuilt {
            height: req.height,
            round: req.round,
            block: id,
        }))
    }
}
