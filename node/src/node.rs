//! Assembles a running node: storage, chain, mempool, admission, consensus driver and gRPC
//! server.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;
use quorate_genesis::{Genesis, GenesisError, KeyFile, KeyFileError};
use quorate_proto::Keypair;
use tokio::sync::{watch, Notify};
use tokio::task::JoinHandle;

use crate::admission::Admission;
use crate::chain::Chain;
use crate::config::{ConfigError, NodeConfig};
use crate::driver::{Driver, DriverError};
use crate::mempool::{Mempool, MempoolLimits};
use crate::rpc::{self, NodeState};
use crate::snapshot::{SnapshotSchedule, SnapshotStore};
use crate::storage::{Storage, StorageError, StorageOptions};
use crate::sync_server::BodyCache;

/// Why a node could not start or stopped.
#[derive(Debug, thiserror::Error)]
pub enum NodeError {
    /// Bad config.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// Bad genesis.
    #[error(transparent)]
    Genesis(#[from] GenesisError),
    /// Bad key file.
    #[error(transparent)]
    Key(#[from] KeyFileError),
    /// Storage failed.
    #[error(transparent)]
    Storage(#[from] StorageError),
    /// The p2p network could not start.
    #[error("p2p network: {0}")]
    Network(#[from] crate::network::NetworkError),
    /// The gRPC listener could not bind.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// Address.
        addr: SocketAddr,
        /// Error.
        source: std::io::Error,
    },
    /// The gRPC server failed.
    #[error("gRPC server: {0}")]
    Grpc(String),
    /// TLS of the client API could not be set up.
    #[error("gRPC TLS: {0}")]
    Tls(#[from] crate::tls::TlsError),
    /// Joining by state sync failed.
    #[error("state sync: {0}")]
    StateSync(#[from] crate::state_sync::StateSyncError),
    /// Consensus stopped with an error.
    #[error("consensus: {0}")]
    Consensus(#[from] DriverError),
    /// A file in the home could not be written.
    #[error("writing {path}: {source}")]
    Io {
        /// Path.
        path: PathBuf,
        /// Error.
        source: std::io::Error,
    },
}

/// Where a node's genesis comes from.
pub enum GenesisSource {
    /// Already loaded and checked.
    Loaded(Box<Genesis>),
    /// A file: checked in full the first time; later, if the file still hashes to what was
    /// recorded, the genesis is read from the database instead of parsed again (a genesis
    /// with a million funded accounts is about 100 MB of JSON).
    File(PathBuf),
}

/// What a node is started from.
pub struct NodeSetup {
    /// Validated config.
    pub config: NodeConfig,
    /// The chain's genesis.
    pub genesis: GenesisSource,
    /// This validator's key.
    pub key: Keypair,
    /// RocksDB directory.
    pub data_dir: PathBuf,
    /// How the validator deviates from the protocol (only in test builds).
    pub byzantine: crate::byzantine::Byzantine,
}

impl NodeSetup {
    /// Reads config, genesis and key from a node home directory.
    pub fn from_home(home: &Path) -> Result<Self, NodeError> {
        let mut config = NodeConfig::load(home)?;
        if let Some(tls) = config.grpc.tls.as_mut() {
            tls.cert_file = NodeConfig::resolve(home, &tls.cert_file);
            tls.key_file = NodeConfig::resolve(home, &tls.key_file);
            tls.client_ca_file = tls
                .client_ca_file
                .as_ref()
                .map(|p| NodeConfig::resolve(home, p));
        }
        let genesis = GenesisSource::File(NodeConfig::resolve(home, &config.genesis_file));
        let key = KeyFile::load(&NodeConfig::resolve(home, &config.key_file))?;
        let data_dir = NodeConfig::resolve(home, &config.data_dir);
        config.storage.snapshot_dir = NodeConfig::resolve(home, &config.storage.snapshot_dir);
        Ok(Self {
            config,
            genesis,
            key,
            data_dir,
            byzantine: crate::byzantine::Byzantine::honest(),
        })
    }
}

/// A started node.
pub struct RunningNode {
    /// The bound gRPC address.
    pub grpc_addr: SocketAddr,
    /// The bound libp2p address with this node's peer id (clusters only).
    pub p2p_addr: Option<libp2p::Multiaddr>,
    /// The bound address of `/metrics`, when metrics are on.
    pub metrics_addr: Option<SocketAddr>,
    /// Shared state (for in-process use and tests).
    pub state: Arc<NodeState>,
    shutdown: watch::Sender<bool>,
    driver: JoinHandle<Result<(), DriverError>>,
    server: JoinHandle<Result<(), tonic::transport::Error>>,
}

impl RunningNode {
    /// Starts the node: opens storage, checks it against genesis, starts block production and
    /// the gRPC server.
    pub async fn start(setup: NodeSetup) -> Result<Self, NodeError> {
        let NodeSetup {
            config,
            genesis,
            key,
            data_dir,
            byzantine,
        } = setup;
        #[cfg(any(test, feature = "byzantine"))]
        if let Some(b) = byzantine.behaviour() {
            tracing::warn!(behaviour = ?b, "this validator is Byzantine on purpose (test build)");
        }
        std::fs::create_dir_all(&data_dir).map_err(|source| NodeError::Io {
            path: data_dir.clone(),
            source,
        })?;
        // A validator with no data joins from the other validators' latest snapshot.
        let early_network = if config.storage.state_sync && !data_dir.join("CURRENT").exists() {
            join_by_state_sync(&config, &genesis, &key, &data_dir).await?
        } else {
            None
        };
        let storage = Storage::open(
            &data_dir,
            &StorageOptions {
                sync_writes: config.storage.sync_writes,
                block_cache_bytes: config.storage.block_cache_mib << 20,
                keep_blocks: (config.storage.keep_blocks > 0).then_some(config.storage.keep_blocks),
                ..StorageOptions::default()
            },
        )?;
        let started = std::time::Instant::now();
        // The explorer gives the page the genesis whose hash the chain has (ADR 0014).
        let explorer_genesis = match &genesis {
            GenesisSource::Loaded(g) => rpc::explorer::GenesisBytes::Ready(bytes::Bytes::from(
                serde_json::to_vec(g.as_ref()).expect("a genesis serializes"),
            )),
            GenesisSource::File(path) => rpc::explorer::GenesisBytes::File(path.clone()),
        };
        let (genesis, genesis_hash, record) = match genesis {
            GenesisSource::Loaded(g) => {
                let h = g.hash();
                (*g, h, None)
            }
            GenesisSource::File(path) => load_genesis(&storage, &path)?,
        };
        tracing::info!(
            from_record = record.is_none(),
            ms = started.elapsed().as_millis() as u64,
            "genesis ready"
        );
        config.validate_for_chain(&genesis.params)?;
        let chain = Arc::new(Chain::open_with_hash(
            genesis,
            genesis_hash,
            storage.clone(),
        )?);
        chain
            .contracts()
            .parallel()
            .set_mode(config.execution.run_ahead);
        if let Some(file_hash) = record {
            // Checked in full and opened: later starts read it from the database.
            let summary = &chain.info().genesis;
            storage.record_genesis(&file_hash, &summary.to_json())?;
            // The next start then reads SST files instead of replaying the genesis from the log.
            storage.flush()?;
        }
        let st = &config.storage;
        if st.keep_blocks > 0 && st.snapshot_interval >= st.keep_blocks {
            tracing::warn!(
                keep_blocks = st.keep_blocks,
                snapshot_interval = st.snapshot_interval,
                "storage.keep_blocks does not exceed storage.snapshot_interval: a validator joining from this node's latest snapshot may not find the blocks after it here"
            );
        }
        if config.storage.snapshot_interval > 0 {
            let dir = match data_dir.parent() {
                Some(parent) => NodeConfig::resolve(parent, &config.storage.snapshot_dir),
                None => config.storage.snapshot_dir.clone(),
            };
            chain.take_snapshots(SnapshotSchedule::new(
                SnapshotStore::new(dir),
                config.storage.snapshot_interval,
                config.storage.snapshots_kept,
                &chain.info().chain_id,
                chain.info().genesis_hash,
            ));
        }
        let head = chain.head();
        tracing::info!(chain_id = %chain.info().chain_id, height = head.height, hash = %head.hash, "opened chain");
        let sets = chain.sets().clone();
        let current = sets.at(head.height + 1);
        let members = sets.members_from(head.height + 1);
        let retired = sets.retired_at(head.height + 1);
        if current.set.index_of(&key.public()).is_none() {
            tracing::warn!(
                key = %key.public().to_hex(),
                height = head.height + 1,
                decided_later = members.contains(&key.public()),
                "this node's key is not in the validator set deciding the next height: it follows the chain and votes only once a set change brings it in"
            );
        }
        let genesis_set = sets.at(1);
        let no_peers = config
            .p2p
            .settings(chain.info().params.block_max_txs)
            .is_ok_and(|s| other_peer_keys(&s, &key).is_empty());
        if genesis_set.set.len() == 1
            && genesis_set.set.index_of(&key.public()).is_some()
            && members.len() > 1
            && no_peers
        {
            tracing::warn!(
                "this chain started with this validator alone and has grown, but p2p.peers is empty: list the other validators there, or a restart with an empty data directory cannot find the chain (OPERATING §6c)"
            );
        }
        let mempool = Arc::new(Mutex::new(Mempool::new(MempoolLimits {
            max_txs: config.mempool.max_txs,
            max_bytes: config.mempool.max_bytes,
            nonce_window: config.mempool.nonce_window,
        })));
        let admission = Arc::new(Admission::new(
            chain.info().chain_id.clone(),
            chain.params().clone(),
            storage,
            mempool.clone(),
            chain.contracts().clone(),
        ));
        let admitted = Arc::new(Notify::new());
        let (heads_tx, heads_rx) = watch::channel(head);
        let (status_tx, status_rx) = watch::channel(crate::driver::ConsensusStatus::default());
        let (shutdown, shutdown_rx) = watch::channel(false);
        let mut p2p_addr = None;
        let bodies = Arc::new(BodyCache::default());
        // One validator alone needs no network: unless the set is (or is decided to become)
        // larger, or this node is not that validator.
        let network = if members.len() > 1 || current.set.index_of(&key.public()).is_none() {
            let parts = match early_network {
                Some(parts) => parts,
                None => {
                    let settings = config.p2p.settings(chain.info().params.block_max_txs)?;
                    crate::network::start(settings, &key, &current.set, &chain.info().chain_id)
                        .await?
                }
            };
            parts
                .handle
                .set_validators(current.set.keys(), &members, &retired);
            parts
                .handle
                .check_signatures_with(crate::driver::signing::signature_check(&chain));
            let addr = parts
                .listen_addr
                .clone()
                .with(libp2p::multiaddr::Protocol::P2p(
                    parts.handle.local_peer_id(),
                ));
            p2p_addr = Some(addr);
            tokio::spawn(crate::sync_server::serve(
                parts.sync_requests,
                chain.storage().clone(),
                bodies.clone(),
                chain.snapshots().map(|s| s.store().clone()),
                parts.handle.clone(),
                byzantine.clone(),
            ));
            if let Some(me) = current.set.index_of(&key.public()) {
                // A test build's liar may run tasks of its own; they end with the process.
                drop(byzantine.side_tasks(&parts.handle, current.set.len() as u32, me));
            }
            Some((parts.handle, parts.consensus, parts.txs))
        } else {
            None
        };
        let network_handle = network.as_ref().map(|(h, _, _)| h.clone());
        let admission_queue = crate::admission_queue::AdmissionQueue::start(
            admission.clone(),
            network_handle
                .clone()
                .filter(|_| byzantine.gossips_client_txs())
                .map(|n| {
                    let interval = Duration::from_millis(config.p2p.tx_gossip_interval_ms);
                    (n, interval)
                }),
            admitted.clone(),
        );
        let network = network.map(|(handle, consensus, txs)| {
            tokio::spawn(gossip_intake(txs, admission_queue.clone()));
            (handle, consensus)
        });
        let driver = Driver {
            chain: chain.clone(),
            mempool: mempool.clone(),
            admitted: admitted.clone(),
            key: key.clone(),
            block_interval: Duration::from_millis(config.block.interval_ms),
            empty_block_interval: Duration::from_millis(config.block.empty_interval_ms),
            timeouts: config.consensus.timeouts(),
            heads: heads_tx,
            status: status_tx,
            max_clock_drift: Duration::from_millis(config.consensus.max_clock_drift_ms),
            network,
            bodies,
            byzantine,
        };
        let driver = tokio::spawn(driver.run(shutdown_rx.clone()));
        let (queries, streams) = NodeState::limits(&config.grpc);
        let state = Arc::new(NodeState {
            chain,
            mempool,
            admission,
            admission_queue,
            heads: heads_rx,
            consensus: status_rx,
            node_key: key.public(),
            grpc: config.grpc.clone(),
            network: network_handle,
            queries,
            streams,
        });
        let listener = tokio::net::TcpListener::bind(config.grpc_addr)
            .await
            .map_err(|source| NodeError::Bind {
                addr: config.grpc_addr,
                source,
            })?;
        let grpc_addr = listener.local_addr().map_err(|source| NodeError::Bind {
            addr: config.grpc_addr,
            source,
        })?;
        let tls = match &config.grpc.tls {
            Some(t) => Some(crate::tls::server_config(
                &t.cert_file,
                &t.key_file,
                t.client_ca_file.as_deref(),
            )?),
            None => None,
        };
        let explorer = config.explorer.enabled.then(|| {
            Arc::new(rpc::explorer::Site::new(
                explorer_genesis,
                state.chain.info().genesis_hash,
                &state.chain.info().chain_id,
                &key.public().to_hex(),
                &config.explorer.peer_urls,
            ))
        });
        let server = tokio::spawn(rpc::serve(
            state.clone(),
            listener,
            tls,
            explorer,
            shutdown_rx.clone(),
        ));
        tracing::info!(%grpc_addr, tls = config.grpc.tls.is_some(), mutual = config.grpc.tls.as_ref().is_some_and(|t| t.client_ca_file.is_some()), "gRPC listening");
        let metrics_addr = match config.metrics.addr {
            Some(addr) => {
                let listener = tokio::net::TcpListener::bind(addr)
                    .await
                    .map_err(|source| NodeError::Bind { addr, source })?;
                let bound = listener
                    .local_addr()
                    .map_err(|source| NodeError::Bind { addr, source })?;
                let state = state.clone();
                tokio::spawn(async move {
                    if let Err(e) = crate::metrics_server::serve(state, listener, shutdown_rx).await
                    {
                        tracing::error!(error = %e, "metrics endpoint failed");
                    }
                });
                tracing::info!(addr = %bound, "metrics listening on /metrics");
                Some(bound)
            }
            None => None,
        };
        Ok(Self {
            grpc_addr,
            p2p_addr,
            metrics_addr,
            state,
            shutdown,
            driver,
            server,
        })
    }

    /// Runs until Ctrl-C/SIGTERM or until a component fails, then shuts down cleanly.
    pub async fn run_until_signal(self) -> Result<(), NodeError> {
        let Self {
            state,
            shutdown,
            mut driver,
            mut server,
            ..
        } = self;
        let outcome = tokio::select! {
            _ = shutdown_signal() => { tracing::info!("shutting down"); Ok(()) }
            r = &mut driver => Err(flatten_driver(r).err().unwrap_or_else(|| NodeError::Grpc("consensus stopped".into()))),
            r = &mut server => Err(match r { Ok(Err(e)) => NodeError::Grpc(e.to_string()), Ok(Ok(())) => NodeError::Grpc("server stopped".into()), Err(e) => NodeError::Grpc(e.to_string()) }),
        };
        let _ = shutdown.send(true);
        if !driver.is_finished() {
            flatten_driver(driver.await)?;
        }
        if !server.is_finished() {
            let _ = server.await;
        }
        close(state).await?;
        outcome
    }

    /// Stops the node and waits for its tasks; the database is closed when it returns (unless
    /// the caller still holds the node's state).
    pub async fn stop(self) -> Result<(), NodeError> {
        let Self {
            state,
            shutdown,
            driver,
            server,
            ..
        } = self;
        let _ = shutdown.send(true);
        let p = flatten_driver(driver.await);
        let _ = server.await;
        close(state).await?;
        p
    }
}

/// Flushes and closes the database of a node whose driver and server have stopped: waits (at
/// most [`CLOSE_WITHIN`]) for the tasks that still hold it (those feeding block and event
/// streams, the admission queue) to end, so that a node started again on the same data
/// directory finds it closed.
async fn close(state: Arc<NodeState>) -> Result<(), NodeError> {
    let started = std::time::Instant::now();
    let places = u32::try_from(state.grpc.max_streams).unwrap_or(u32::MAX);
    let streams_ended = tokio::time::timeout(CLOSE_WITHIN, state.streams.acquire_many(places))
        .await
        .is_ok();
    state.chain.storage().flush()?;
    if !streams_ended {
        tracing::warn!("streams still open {CLOSE_WITHIN:?} after the node stopped");
    }
    let storage = state.chain.storage().clone();
    if Arc::strong_count(&state) > 1 {
        // Held outside the node (a test, an embedding program): it closes with their copy.
        return Ok(());
    }
    drop(state);
    while Arc::strong_count(&storage) > 1 && started.elapsed() < CLOSE_WITHIN {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    if Arc::strong_count(&storage) > 1 {
        tracing::warn!("tasks still hold the database {CLOSE_WITHIN:?} after the node stopped");
    }
    Ok(())
}

/// How long a stopping node waits for the tasks that hold its database.
const CLOSE_WITHIN: Duration = Duration::from_secs(10);

/// The genesis in `path`: from the database when the file still has the hash recorded at the
/// last full check, otherwise parsed and checked in full. Returns the genesis, its hash, and
/// the file's hash to record when it was checked in full.
fn load_genesis(
    storage: &Storage,
    path: &Path,
) -> Result<
    (
        Genesis,
        quorate_proto::Hash32,
        Option<quorate_proto::Hash32>,
    ),
    NodeError,
> {
    let bytes = std::fs::read(path).map_err(|source| NodeError::Io {
        path: path.to_owned(),
        source,
    })?;
    let file_hash = quorate_proto::Hash32::of(&bytes);
    if let Some((genesis, genesis_hash)) = storage.recorded_genesis(&file_hash)? {
        return Ok((genesis, genesis_hash, None));
    }
    let text = std::str::from_utf8(&bytes).map_err(|e| {
        NodeError::Genesis(GenesisError::Io {
            path: path.display().to_string(),
            source: std::io::Error::new(std::io::ErrorKind::InvalidData, e),
        })
    })?;
    let genesis = Genesis::from_json(text)?;
    let hash = genesis.hash();
    Ok((genesis, hash, Some(file_hash)))
}

/// State sync of a validator with no data (nothing with one validator): starts the network,
/// imports the others' latest snapshot into `data_dir` if one is offered, and hands the
/// network on.
async fn join_by_state_sync(
    config: &NodeConfig,
    genesis: &GenesisSource,
    key: &Keypair,
    data_dir: &Path,
) -> Result<Option<crate::network::NetworkParts>, NodeError> {
    // Parsed here for its validators; the database records it once opened.
    let parsed;
    let g = match genesis {
        GenesisSource::Loaded(g) => g,
        GenesisSource::File(path) => {
            parsed = Box::new(Genesis::load(path)?);
            &parsed
        }
    };
    let validators = g.validator_set();
    let settings = config.p2p.settings(g.params.block_max_txs)?;
    let peers = other_peer_keys(&settings, key);
    // The only validator of its genesis with no peers configured: a new chain (a chain that
    // grew needs its other validators in `p2p.peers`, OPERATING §6c).
    if validators.len() < 2 && validators.index_of(&key.public()).is_some() && peers.is_empty() {
        return Ok(None);
    }
    let mut parts = crate::network::start(settings, key, &validators, &g.chain_id).await?;
    let target = crate::state_sync::JoinTarget {
        chain_id: &g.chain_id,
        genesis_hash: g.hash(),
        validators: &validators,
        local: validators.index_of(&key.public()),
        anchor: config.storage.trust_anchor()?,
        peers: &peers,
    };
    let mut io = crate::state_sync::Channels {
        net: &parts.handle,
        inbox: &parts.consensus,
        requests: &mut parts.sync_requests,
    };
    if let Some(s) = crate::state_sync::run(&mut io, &target, data_dir).await? {
        tracing::info!(
            height = s.head.height,
            state_root = %s.head.state_root,
            chunks = s.chunks,
            entries = s.entries,
            "state sync: joined from a snapshot; catching up by blocks"
        );
    }
    Ok(Some(parts))
}

/// The validator keys of the configured peers (`p2p.peers`) other than this node's own.
fn other_peer_keys(
    settings: &crate::network::NetworkSettings,
    key: &Keypair,
) -> Vec<quorate_proto::PublicKey> {
    crate::network::configured_peer_keys(&settings.peers)
        .into_iter()
        .filter(|k| *k != key.public())
        .collect()
}

fn flatten_driver(
    r: Result<Result<(), DriverError>, tokio::task::JoinError>,
) -> Result<(), NodeError> {
    match r {
        Ok(r) => Ok(r?),
        Err(e) => Err(NodeError::Consensus(DriverError::Join(e.to_string()))),
    }
}

/// Gossiped transaction batches waiting for an admission round at once, at most.
const GOSSIP_BATCHES_IN_FLIGHT: usize = 64;

/// Admits transactions gossiped by other validators: the second security verification, in
/// the same coalesced rounds as clients' submissions, before they are stored in the mempool.
pub(crate) async fn gossip_intake(
    mut rx: tokio::sync::mpsc::Receiver<crate::network::GossipBatch>,
    queue: crate::admission_queue::AdmissionQueue,
) {
    // Batches from several validators join rounds together; at most this many wait at once,
    // so a flood of gossip is admitted at the pace rounds go and the network's bounded
    // channel pushes back.
    let places = Arc::new(tokio::sync::Semaphore::new(GOSSIP_BATCHES_IN_FLIGHT));
    while let Some(batch) = rx.recv().await {
        let Ok(place) = places.clone().acquire_owned().await else {
            return;
        };
        let queue = queue.clone();
        tokio::spawn(async move {
            // The batch's place in the network's byte budget is kept until it is admitted.
            let (txs, _bytes) = (batch.transactions, batch.place);
            let _place = place;
            match queue
                .admit(txs, crate::admission_queue::Origin::Gossip)
                .await
            {
                Ok(results) => {
                    let refused = results.iter().filter(|r| r.result.is_err()).count();
                    if refused > 0 {
                        tracing::debug!(
                            refused,
                            "gossiped transactions refused (already known, or invalid here)"
                        );
                    }
                }
                Err(e) => tracing::error!(error = %e, "gossip admission failed"),
            }
        });
    }
}

async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        let mut term = match signal(SignalKind::terminate()) {
            Ok(s) => s,
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
                return;
            }
        };
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}
