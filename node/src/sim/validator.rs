//! One simulated validator: the node's own components assembled as `node.rs` assembles them
//! (storage, chain, mempool, admission, the admission queue, gossip intake, the sync server and
//! the consensus driver), with the simulated network in place of libp2p; crashed by aborting
//! every task at an await point and restarted from its RocksDB directory.

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Weak};
use std::time::Duration;

use libp2p::PeerId;
use parking_lot::Mutex;
use quorate_proto::Keypair;
use rand::Rng;
use tokio::sync::{mpsc, watch, Notify};
use tokio::task::AbortHandle;
use tokio::time::Instant;

use super::checks::Violation;
use super::net::{self, SimRequest};
use super::{World, VALIDATORS};
use crate::admission::Admission;
use crate::admission_queue::AdmissionQueue;
use crate::byzantine::{Behaviour, Byzantine};
use crate::chain::Chain;
use crate::driver::{ConsensusStatus, Driver};
use crate::mempool::{Mempool, MempoolLimits};
use crate::network::{
    peer_id_of, GossipIntake, Inbox, NetworkHandle, SyncRequests, INBOX_ITEMS_PER_SENDER,
    INBOX_SENDERS, SYNC_QUEUE, TX_GOSSIP_QUEUE_BYTES,
};
use crate::storage::{Storage, StorageOptions};
use crate::sync_server::BodyCache;

/// How long a restart waits for a crashed incarnation's last tasks to let go of its database.
const RELEASE_WAIT: Duration = Duration::from_secs(30);

/// A validator's place in the world: its key, its disk, and what runs now.
pub(crate) struct Slot {
    key: Keypair,
    dir: tempfile::TempDir,
    behaviour: Option<Behaviour>,
    /// Starts so far (an answer to an earlier incarnation is lost).
    pub incarnation: u64,
    /// The running incarnation, if up.
    pub running: Option<Running>,
    /// The highest head this validator published (acknowledged to clients as durable).
    pub acked_head: u64,
    /// The head when it last stopped.
    stopped_height: u64,
    /// The database of the last incarnation, until its tasks let go of it.
    released: Option<Weak<Storage>>,
    /// Acts of the Byzantine behaviour in earlier incarnations.
    pub earlier_acts: u64,
}

/// A running incarnation.
pub(crate) struct Running {
    /// Gossip checks and the driver's inbox.
    pub intake: GossipIntake,
    /// The sync server's queues.
    pub urgent: mpsc::Sender<SimRequest>,
    /// The sync server's queue for decisions and snapshot parts.
    pub bulk: mpsc::Sender<SimRequest>,
    /// Places of each validator's sync requests waiting here (the node's own accounting).
    pub places: crate::network::sync_places::SyncPlaces<usize, u64>,
    /// Each validator's sync requests queued here and not answered yet, counted apart from
    /// `places` (what the memory check holds against the per-peer limit).
    pub queued: HashMap<usize, usize>,
    /// Gossip seen lately, by publication.
    pub seen: HashMap<[u8; 32], Instant>,
    /// Client submissions.
    pub queue: AdmissionQueue,
    /// The chain.
    pub chain: Arc<Chain>,
    /// The driver's status.
    pub status: watch::Receiver<ConsensusStatus>,
    /// Its deviations, if any.
    pub byzantine: Byzantine,
    incarnation: u64,
    stop: watch::Sender<bool>,
    tasks: Vec<AbortHandle>,
}

impl Slot {
    /// Validator `index` of `generated`, with `behaviour` if it lies.
    pub fn new(
        index: usize,
        generated: &quorate_genesis::Generated,
        template: &Path,
        behaviour: Option<Behaviour>,
    ) -> Self {
        let dir = temp_dir();
        for entry in std::fs::read_dir(template).expect("the genesis template is readable") {
            let entry = entry.expect("a directory entry");
            std::fs::copy(entry.path(), dir.path().join(entry.file_name()))
                .expect("the genesis template copies");
        }
        Self {
            key: generated.validator_keys[index].clone(),
            dir,
            behaviour,
            incarnation: 0,
            running: None,
            acked_head: 0,
            stopped_height: 0,
            released: None,
            earlier_acts: 0,
        }
    }

    /// The running incarnation if it is `incarnation`.
    pub fn running_at(&mut self, incarnation: u64) -> Option<&mut Running> {
        self.running
            .as_mut()
            .filter(|r| r.incarnation == incarnation)
    }

    /// The committed height (of the database when stopped).
    pub fn height(&self) -> u64 {
        self.running
            .as_ref()
            .map_or(self.stopped_height, |r| r.chain.head().height)
    }

    /// Byzantine acts in every incarnation so far.
    pub fn acts(&self) -> u64 {
        self.earlier_acts + self.running.as_ref().map_or(0, |r| r.byzantine.acted())
    }
}

fn temp_dir() -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix("quorate-sim-")
        .tempdir()
        .expect("a temporary directory")
}

/// A database holding `generated`'s genesis state, closed (for copying).
pub(crate) fn genesis_template(generated: &quorate_genesis::Generated) -> tempfile::TempDir {
    let dir = temp_dir();
    let storage = Storage::open(dir.path(), &storage_options()).expect("a fresh database opens");
    let chain = Chain::open(generated.genesis.clone(), storage.clone())
        .expect("the simulated genesis opens");
    storage.flush().expect("the genesis flushes");
    drop(chain);
    drop(storage);
    dir
}

/// Overwrites every stored contract's artifact for the chain's engine with junk.
fn damage_artifacts(world: &World, storage: &Storage) -> Result<(), crate::storage::StorageError> {
    for code_hash in storage.code_hashes()? {
        storage.put_artifact(&code_hash, &world.precompiled.engine, b"damaged")?;
    }
    Ok(())
}

/// Validator `i` opened `chain` on a damaged artifact cache: the damage must have reached it
/// (it compiled the contracts without machine code again), and if it held the counter when it
/// stopped at `stopped_height`, the counter's later calls are what it must run alike.
fn damage_landed(world: &World, i: usize, chain: &Chain, stopped_height: u64) {
    if chain.contracts().vm().compilations() == 0 {
        world.checks.violate(Violation::Restart {
            validator: i,
            why: "the damaged artifact cache was loaded as it was: nothing compiled again".into(),
        });
        return;
    }
    world.stats.lock().artifacts_lost += 1;
    let mut counter = world.counter.lock();
    if world.plan.honest(i) && counter.deployed_at.is_some_and(|h| h <= stopped_height) {
        counter.losses.push((i, stopped_height));
    }
}

fn storage_options() -> StorageOptions {
    StorageOptions {
        sync_writes: false,
        block_cache_bytes: 4 << 20,
        max_open_files: 64,
        ..StorageOptions::default()
    }
}

impl World {
    /// The libp2p identity of validator `i`.
    pub(crate) fn peer(&self, i: usize) -> PeerId {
        peer_id_of(&self.generated.validator_keys[i].public()).expect("a valid key")
    }

    /// The validator with libp2p identity `peer`.
    pub(crate) fn index_of(&self, peer: &PeerId) -> Option<usize> {
        (0..VALIDATORS).find(|i| self.peer(*i) == *peer)
    }
}

/// Starts (or restarts) validator `i` from its directory.
pub(crate) fn start(world: &Arc<World>, i: usize) {
    let mut slot = world.validators[i].lock();
    slot.incarnation += 1;
    let incarnation = slot.incarnation;
    let genesis = world.generated.genesis.clone();
    let chain_id = genesis.chain_id.clone();
    let stopped_height = slot.stopped_height;
    // Half the restarts find the artifact cache damaged (a disk fault, or a cache emptied by
    // hand): the node must run every contract as it did.
    let damaged = incarnation > 1 && world.rng(|r| r.gen_bool(0.5));
    let opened = Storage::open(slot.dir.path(), &storage_options()).and_then(|storage| {
        if damaged {
            damage_artifacts(world, &storage)?;
        }
        Ok((storage.clone(), Arc::new(Chain::open(genesis, storage)?)))
    });
    let (storage, chain) = match opened {
        Ok(o) => o,
        Err(e) => {
            world.checks.violate(Violation::Restart {
                validator: i,
                why: e.to_string(),
            });
            return;
        }
    };
    if damaged {
        damage_landed(world, i, &chain, stopped_height);
    }
    // Validators differ in how they execute (ADR 0020): half run contract calls ahead, so a
    // block that came out differently would split them.
    let mode = if i.is_multiple_of(2) {
        crate::execution::ParallelMode::Always
    } else {
        crate::execution::ParallelMode::Off
    };
    chain.contracts().parallel().set_mode(mode);
    let head = chain.head().height;
    if head < slot.acked_head {
        world.checks.violate(Violation::Lost {
            validator: i,
            what: format!(
                "restarted at height {head} after acknowledging height {}",
                slot.acked_head
            ),
        });
    }
    let mempool = Arc::new(Mutex::new(Mempool::new(MempoolLimits {
        max_txs: 20_000,
        max_bytes: 32 << 20,
        nonce_window: 64,
    })));
    let admission = Arc::new(Admission::new(
        chain_id.clone(),
        chain.params().clone(),
        storage.clone(),
        mempool.clone(),
        chain.contracts().clone(),
    ));
    let peers: Vec<PeerId> = (0..VALIDATORS).map(|v| world.peer(v)).collect();
    let (handle, commands) = NetworkHandle::detached(peers.clone(), peers[i], &chain_id);
    let inbox = Arc::new(Inbox::new(
        INBOX_SENDERS,
        INBOX_ITEMS_PER_SENDER,
        2 * (24 << 20),
    ));
    let (txs_tx, txs_rx) = mpsc::channel(1024);
    let intake = GossipIntake {
        consensus: inbox.clone(),
        txs_tx,
        tx_bytes: Arc::new(tokio::sync::Semaphore::new(TX_GOSSIP_QUEUE_BYTES >> 10)),
        check: Some(crate::driver::signing::signature_check(&chain)),
        warnings: Default::default(),
    };
    let (urgent, bulk, requests) = SyncRequests::channels(SYNC_QUEUE);
    let byzantine = slot.behaviour.map(Byzantine::new).unwrap_or_default();
    let bodies = Arc::new(BodyCache::default());
    let admitted = Arc::new(Notify::new());
    let queue = AdmissionQueue::start(
        admission,
        Some((handle.clone(), crate::admission_queue::GOSSIP_INTERVAL))
            .filter(|_| byzantine.gossips_client_txs()),
        admitted.clone(),
    );
    let (heads_tx, mut heads) = watch::channel(chain.head());
    let (status_tx, status) = watch::channel(ConsensusStatus::default());
    let (stop, stop_rx) = watch::channel(false);
    let config = crate::config::NodeConfig::default();
    let side = byzantine.side_tasks(&handle, VALIDATORS as u32, i as u32);
    let driver = Driver {
        chain: chain.clone(),
        mempool: mempool.clone(),
        admitted,
        key: slot.key.clone(),
        block_interval: Duration::from_millis(config.block.interval_ms),
        empty_block_interval: Duration::from_millis(config.block.empty_interval_ms),
        timeouts: config.consensus.timeouts(),
        heads: heads_tx,
        status: status_tx,
        max_clock_drift: Duration::from_millis(config.consensus.max_clock_drift_ms),
        network: Some((handle, inbox)),
        bodies: bodies.clone(),
        byzantine: byzantine.clone(),
    };
    let mut tasks: Vec<_> = side.iter().map(|t| t.abort_handle()).collect();
    let w = world.clone();
    tasks.push(
        tokio::spawn(async move {
            // A liar's hooks can leave its own record holding a block it cannot validate
            // again after a crash; its stopping is its own affair.
            let result = driver.run(stop_rx).await;
            if let (Err(e), true) = (result, w.plan.honest(i)) {
                w.checks.violate(Violation::DriverStopped {
                    validator: i,
                    why: e.to_string(),
                });
            }
        })
        .abort_handle(),
    );
    tasks.push(tokio::spawn(crate::node::gossip_intake(txs_rx, queue.clone())).abort_handle());
    let w = world.clone();
    let sources = crate::sync_server::Sources {
        storage,
        cache: bodies.clone(),
        snapshots: None,
    };
    tasks.push(
        tokio::spawn(crate::sync_server::serve_with(
            requests,
            sources,
            byzantine.clone(),
            move |req, response| net::respond(&w, i, req, response),
        ))
        .abort_handle(),
    );
    tasks.push(tokio::spawn(net::route(world.clone(), i, incarnation, commands)).abort_handle());
    let w = world.clone();
    let started = w.started;
    tasks.push(
        tokio::spawn(async move {
            while heads.changed().await.is_ok() {
                let head = heads.borrow_and_update().clone();
                let mut slot = w.validators[i].lock();
                slot.acked_head = slot.acked_head.max(head.height);
                drop(slot);
                w.checks
                    .committed(i, head.height, head.hash.0, started.elapsed());
            }
        })
        .abort_handle(),
    );
    slot.running = Some(Running {
        intake,
        urgent,
        bulk,
        places: Default::default(),
        queued: HashMap::new(),
        seen: HashMap::new(),
        queue,
        chain,
        status,
        byzantine,
        incarnation,
        stop,
        tasks,
    });
}

/// Crashes validator `i`: every task of it stops at its next await, nothing is flushed.
pub(crate) fn crash(world: &Arc<World>, i: usize) {
    let running = {
        let mut slot = world.validators[i].lock();
        let Some(r) = slot.running.take() else {
            return;
        };
        slot.earlier_acts += r.byzantine.acted();
        slot.stopped_height = r.chain.head().height;
        slot.released = Some(Arc::downgrade(r.chain.storage()));
        r
    };
    for t in &running.tasks {
        t.abort();
    }
    drop(running);
    world.stats.lock().crashes += 1;
}

/// Stops validator `i` at the end of a run (its driver told to stop, then its tasks aborted).
pub(crate) fn stop(world: &Arc<World>, i: usize) {
    if let Some(r) = world.validators[i].lock().running.as_ref() {
        let _ = r.stop.send(true);
    }
    crash(world, i);
}

/// Restarts validator `i` once the crashed incarnation's tasks let go of its database.
pub(crate) async fn restart(world: &Arc<World>, i: usize) {
    let deadline = Instant::now() + RELEASE_WAIT;
    loop {
        let held = world.validators[i]
            .lock()
            .released
            .as_ref()
            .is_some_and(|w| w.strong_count() > 0);
        if !held {
            break;
        }
        if Instant::now() >= deadline {
            world.checks.violate(Violation::Restart {
                validator: i,
                why: format!(
                    "the crashed incarnation's database is still held after {} s",
                    RELEASE_WAIT.as_secs()
                ),
            });
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    world.validators[i].lock().released = None;
    start(world, i);
}

/// Restarts validator `i` if it is down.
pub(crate) async fn restart_if_down(world: &Arc<World>, i: usize) {
    let down = world.validators[i].lock().running.is_none();
    if down {
        restart(world, i).await;
    }
}

/// Until `end`: crashes (each followed by a restart) and partitions, one at a time, at times
/// and of lengths drawn from the seed.
pub(crate) async fn crash_and_partition_until(world: &Arc<World>, end: Instant) {
    loop {
        let (wait, kind, who, other, length) = world.rng(|r| {
            (
                Duration::from_millis(r.gen_range(500..6_000)),
                r.gen_range(0..3u8),
                r.gen_range(0..VALIDATORS),
                r.gen_range(0..VALIDATORS),
                Duration::from_millis(r.gen_range(300..10_000)),
            )
        });
        if Instant::now() + wait >= end {
            return;
        }
        tokio::time::sleep(wait).await;
        let length = length.min(end.saturating_duration_since(Instant::now()));
        match kind {
            0 => {
                crash(world, who);
                tokio::time::sleep(length).await;
                restart(world, who).await;
            }
            1 => {
                world.net.partition(&[who]);
                tokio::time::sleep(length).await;
                world.net.mend();
            }
            _ => {
                let pair = if other == who {
                    vec![who]
                } else {
                    vec![who, other]
                };
                world.net.partition(&pair);
                tokio::time::sleep(length).await;
                world.net.mend();
            }
        }
    }
}
