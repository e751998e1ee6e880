//! Node configuration: `config.toml` in the node's home, overridden by `QUORATE_CFG_*`
//! environment variables (`__` separates sections: `QUORATE_CFG_MEMPOOL__MAX_TXS=5000`).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use figment::providers::{Env, Format, Serialized, Toml};
use figment::Figment;
use serde::{Deserialize, Serialize};

/// File name of the config inside a node's home.
pub const CONFIG_FILE: &str = "config.toml";
/// Prefix of environment overrides.
pub const ENV_PREFIX: &str = "QUORATE_CFG_";

/// Everything a node reads at start-up besides genesis and its key.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct NodeConfig {
    /// gRPC listen address (port 0 picks a free port; the bound address is printed and written
    /// to `grpc.addr` in the home).
    pub grpc_addr: SocketAddr,
    /// Genesis file, relative to the home unless absolute.
    pub genesis_file: PathBuf,
    /// Validator key file, relative to the home unless absolute.
    pub key_file: PathBuf,
    /// RocksDB directory, relative to the home unless absolute.
    pub data_dir: PathBuf,
    /// Mempool bounds.
    pub mempool: MempoolConfig,
    /// Block production.
    pub block: BlockConfig,
    /// Consensus timers.
    pub consensus: ConsensusConfig,
    /// Peer-to-peer network between validators.
    pub p2p: P2pConfig,
    /// Storage.
    pub storage: StorageConfig,
    /// gRPC server limits.
    pub grpc: GrpcConfig,
    /// Logging.
    pub log: LogConfig,
    /// Prometheus metrics.
    pub metrics: MetricsConfig,
    /// The explorer page served on the gRPC port (ADR 0014).
    pub explorer: ExplorerConfig,
    /// Block execution.
    pub execution: ExecutionConfig,
}

/// Block execution on this node. Blocks are the same whatever it says.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ExecutionConfig {
    /// Contract calls run ahead in parallel and are kept where running them in order would
    /// give the same (ADR 0020): `off` (the default), `adaptive` (the calls of contracts whose
    /// runs were mostly kept lately) or `always`.
    pub run_ahead: crate::execution::ParallelMode,
}

/// The explorer page every validator serves under `/explorer/` on its gRPC port.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ExplorerConfig {
    /// Serve it (the default); `false` answers a page request with 404.
    pub enabled: bool,
    /// Other validators' gRPC URLs (`https://host:port`) the page offers for cross-checking
    /// what a query reports (the user can add others).
    pub peer_urls: Vec<String>,
}

impl Default for ExplorerConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            peer_urls: Vec::new(),
        }
    }
}

/// Prometheus metrics.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MetricsConfig {
    /// Address of the `/metrics` endpoint (port 0 picks a free one, written to `metrics.addr`
    /// in the home); none (the default) serves no metrics.
    pub addr: Option<SocketAddr>,
}

impl Default for NodeConfig {
    fn default() -> Self {
        Self {
            grpc_addr: SocketAddr::from(([127, 0, 0, 1], 7050)),
            genesis_file: "genesis.json".into(),
            key_file: "validator.key.json".into(),
            data_dir: "data".into(),
            mempool: MempoolConfig::default(),
            block: BlockConfig::default(),
            consensus: ConsensusConfig::default(),
            p2p: P2pConfig::default(),
            storage: StorageConfig::default(),
            grpc: GrpcConfig::default(),
            log: LogConfig::default(),
            metrics: MetricsConfig::default(),
            explorer: ExplorerConfig::default(),
            execution: ExecutionConfig::default(),
        }
    }
}

/// Mempool bounds.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MempoolConfig {
    /// Most pending transactions.
    pub max_txs: usize,
    /// Most pending bytes.
    pub max_bytes: usize,
    /// How far past an account's next nonce a transaction may be.
    pub nonce_window: u64,
}

impl Default for MempoolConfig {
    fn default() -> Self {
        Self {
            max_txs: 200_000,
            max_bytes: 256 << 20,
            nonce_window: 1024,
        }
    }
}

/// Block production.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct BlockConfig {
    /// Longest a pending transaction waits before its proposer cuts a block, ms (a full block
    /// is cut at once).
    pub interval_ms: u64,
    /// With nothing pending, a proposer proposes an empty block after this long, ms (a heartbeat
    /// that shows the chain is live; must be shorter than the propose timeout).
    pub empty_interval_ms: u64,
}

impl Default for BlockConfig {
    fn default() -> Self {
        Self {
            interval_ms: 20,
            empty_interval_ms: 1000,
        }
    }
}

/// Consensus timers (see `consensus/README.md`): each waits `base + delta_ms × round`, capped.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ConsensusConfig {
    /// Wait for a round's proposal, ms.
    pub propose_timeout_ms: u64,
    /// Wait after 2f+1 prevotes that do not agree, ms.
    pub prevote_timeout_ms: u64,
    /// Wait after 2f+1 precommits that do not agree, ms.
    pub precommit_timeout_ms: u64,
    /// Added to each timeout per round, ms.
    pub timeout_delta_ms: u64,
    /// Cap on any timeout, ms.
    pub timeout_max_ms: u64,
    /// Period of re-sending this validator's latest votes, ms.
    pub rebroadcast_ms: u64,
    /// How far ahead of this validator's clock a proposed block's time may be, ms; a proposal
    /// further ahead gets a nil prevote (a decided block is committed whatever its time).
    /// Bounds how far one proposer with a wrong clock can move chain time forward.
    pub max_clock_drift_ms: u64,
}

impl Default for ConsensusConfig {
    fn default() -> Self {
        let t = quorate_consensus::Timeouts::default();
        Self {
            propose_timeout_ms: t.propose_ms,
            prevote_timeout_ms: t.prevote_ms,
            precommit_timeout_ms: t.precommit_ms,
            timeout_delta_ms: t.delta_ms,
            timeout_max_ms: t.max_ms,
            rebroadcast_ms: t.rebroadcast_ms,
            max_clock_drift_ms: 2_000,
        }
    }
}

impl ConsensusConfig {
    /// The state machine's timeouts.
    pub fn timeouts(&self) -> quorate_consensus::Timeouts {
        quorate_consensus::Timeouts {
            propose_ms: self.propose_timeout_ms,
            prevote_ms: self.prevote_timeout_ms,
            precommit_ms: self.precommit_timeout_ms,
            delta_ms: self.timeout_delta_ms,
            max_ms: self.timeout_max_ms,
            rebroadcast_ms: self.rebroadcast_ms,
        }
    }
}

/// Peer-to-peer network between validators (used when genesis lists more than one).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct P2pConfig {
    /// libp2p listen address (`/ip4/127.0.0.1/tcp/0` picks a free port; the bound address is
    /// written to `p2p.addr` in the home).
    pub listen_addr: String,
    /// Peers to stay connected to: multiaddrs ending in `/p2p/<peer id>`.
    pub peers: Vec<String>,
    /// Peer ids of non-validators allowed to connect.
    pub observers: Vec<String>,
    /// Largest gossip message or block-sync response, bytes.
    pub max_message_bytes: usize,
    /// How often unconnected peers are dialled again, ms.
    pub redial_interval_ms: u64,
    /// Client transactions go out to the other validators in one message per this interval at
    /// most, ms (0: one message per admission round). Longer: fewer messages for every
    /// validator to receive and admit; shorter: transactions reach the proposer sooner.
    pub tx_gossip_interval_ms: u64,
}

impl Default for P2pConfig {
    fn default() -> Self {
        Self {
            listen_addr: "/ip4/127.0.0.1/tcp/7060".into(),
            peers: Vec::new(),
            observers: Vec::new(),
            max_message_bytes: 24 << 20,
            redial_interval_ms: 1000,
            tx_gossip_interval_ms: crate::admission_queue::GOSSIP_INTERVAL.as_millis() as u64,
        }
    }
}

impl P2pConfig {
    /// The parsed network settings, for a chain of at most `block_max_txs` per block.
    pub fn settings(
        &self,
        block_max_txs: u32,
    ) -> Result<crate::network::NetworkSettings, crate::network::NetworkError> {
        use crate::network::NetworkError;
        let addr = |field: &'static str, v: &str| {
            v.parse::<libp2p::Multiaddr>()
                .map_err(|e| NetworkError::BadConfig {
                    field,
                    value: v.to_owned(),
                    why: e.to_string(),
                })
        };
        let peers = self
            .peers
            .iter()
            .map(|p| {
                let a = addr("p2p.peers", p)?;
                if !a
                    .iter()
                    .any(|x| matches!(x, libp2p::multiaddr::Protocol::P2p(_)))
                {
                    return Err(NetworkError::BadConfig {
                        field: "p2p.peers",
                        value: p.clone(),
                        why: "must end in /p2p/<peer id>".into(),
                    });
                }
                Ok(a)
            })
            .collect::<Result<_, _>>()?;
        let observers = self
            .observers
            .iter()
            .map(|o| {
                o.parse::<libp2p::PeerId>()
                    .map_err(|e| NetworkError::BadConfig {
                        field: "p2p.observers",
                        value: o.clone(),
                        why: e.to_string(),
                    })
            })
            .collect::<Result<_, _>>()?;
        Ok(crate::network::NetworkSettings {
            listen_addr: addr("p2p.listen_addr", &self.listen_addr)?,
            peers,
            observers,
            max_message_bytes: self.max_message_bytes,
            block_max_txs,
            redial_interval: std::time::Duration::from_millis(self.redial_interval_ms),
        })
    }
}

/// Fewest heights a pruning node keeps (`storage.keep_blocks`): a validator that lost its last
/// unsynced commits, or fell a few heights behind, must find the blocks it needs at its peers.
pub const MIN_KEEP_BLOCKS: u64 = 64;

/// Storage.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StorageConfig {
    /// fsync each block commit before acknowledging it (turn off only for benchmarks).
    pub sync_writes: bool,
    /// RocksDB block cache, MiB.
    pub block_cache_mib: usize,
    /// Keep the blocks, transactions and receipts of only this many latest heights (the state
    /// is always whole; at least [`MIN_KEEP_BLOCKS`]); 0 keeps every block (an archive node).
    pub keep_blocks: u64,
    /// Take a state snapshot after every height that is a multiple of this (0: none).
    pub snapshot_interval: u64,
    /// Snapshots kept (the latest ones).
    pub snapshots_kept: usize,
    /// Directory of the snapshots (relative to the node home).
    pub snapshot_dir: PathBuf,
    /// A validator that starts with no data fetches the latest snapshot from the other
    /// validators instead of replaying every block from genesis (turn off for an archive
    /// node that must hold every block).
    pub state_sync: bool,
    /// Trust anchor of state sync and `snapshot import` (0: none): a snapshot is taken only at
    /// this height or later, proving the validator set `trust_validators_hash` here.
    pub trust_height: u64,
    /// Hash (hex) of the validator set deciding `trust_height`, read from a node the operator
    /// trusts (`quorate validators --height H --json`, `set_hash`).
    pub trust_validators_hash: String,
}

impl StorageConfig {
    /// The trust anchor, if one is configured.
    pub fn trust_anchor(&self) -> Result<Option<crate::snapshot::TrustAnchor>, ConfigError> {
        match (self.trust_height, self.trust_validators_hash.is_empty()) {
            (0, true) => Ok(None),
            (h, _) => format!("{h}:{}", self.trust_validators_hash)
                .parse()
                .map(Some)
                .map_err(|_: String| ConfigError::Invalid {
                    field: "storage.trust_height/trust_validators_hash",
                    value: format!("{h}:{}", self.trust_validators_hash),
                    why: "give both, a height above 0 and the 64-hex-digit hash of the validator set deciding it, or neither",
                }),
        }
    }
}

impl Default for StorageConfig {
    fn default() -> Self {
        Self {
            sync_writes: true,
            block_cache_mib: 64,
            keep_blocks: 0,
            snapshot_interval: 1000,
            snapshots_kept: 2,
            snapshot_dir: PathBuf::from("snapshots"),
            state_sync: true,
            trust_height: 0,
            trust_validators_hash: String::new(),
        }
    }
}

/// gRPC server limits.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct GrpcConfig {
    /// Largest request or response message, bytes.
    pub max_message_bytes: usize,
    /// Most transactions in one `SubmitBatch`.
    pub max_batch_txs: usize,
    /// Concurrent requests per connection.
    pub concurrency_per_connection: usize,
    /// Longest `WaitForCommit` a client may ask for, ms.
    pub max_wait_ms: u64,
    /// Requests served at once over all connections; more wait.
    pub max_concurrent_requests: usize,
    /// Server streams (blocks, events) open at once; more are refused with RESOURCE_EXHAUSTED.
    pub max_streams: usize,
    /// Read-only contract queries run at once; more wait. Kept below the engine's concurrent
    /// stores so that block execution always finds an instance slot.
    pub max_concurrent_queries: usize,
    /// Most fuel one query may use (a query asking for more gets this much).
    pub max_query_fuel: u64,
    /// TLS on the client API (plaintext without it).
    pub tls: Option<GrpcTlsConfig>,
}

/// TLS on the client API. Paths are relative to the node's home unless absolute.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GrpcTlsConfig {
    /// The node's certificate chain (PEM).
    pub cert_file: PathBuf,
    /// The node's private key (PEM).
    pub key_file: PathBuf,
    /// With it, mutual TLS: only clients with a certificate this CA signed (PEM) may connect.
    #[serde(default)]
    pub client_ca_file: Option<PathBuf>,
}

impl Default for GrpcConfig {
    fn default() -> Self {
        Self {
            max_message_bytes: 32 << 20,
            max_batch_txs: 10_000,
            concurrency_per_connection: 256,
            max_wait_ms: 300_000,
            max_concurrent_requests: 1024,
            max_streams: 256,
            max_concurrent_queries: 2,
            max_query_fuel: 10_000_000,
            tls: None,
        }
    }
}

/// Logging.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LogConfig {
    /// `text` or `json`.
    pub format: LogFormat,
    /// `tracing` filter, e.g. `info` or `quorate_node=debug` (RUST_LOG overrides it).
    pub filter: String,
}

impl Default for LogConfig {
    fn default() -> Self {
        Self {
            format: LogFormat::Text,
            filter: "info".into(),
        }
    }
}

/// Log output format.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
}

/// A config that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// Not readable or not the config format.
    #[error("config: {0}")]
    Load(#[from] Box<figment::Error>),
    /// A p2p address or peer id that does not parse.
    #[error("config: {0}")]
    P2p(String),
    /// A value out of range.
    #[error("config {field} = {value}: {why}")]
    Invalid {
        /// Field.
        field: &'static str,
        /// Value.
        value: String,
        /// What it must be.
        why: &'static str,
    },
    /// A value too small for the chain's genesis parameters.
    #[error("config {field} = {value} is below the {needed} this chain needs: {why}")]
    TooSmallForChain {
        /// Field.
        field: &'static str,
        /// Value.
        value: u64,
        /// Least value that works.
        needed: u64,
        /// Why.
        why: &'static str,
    },
}

impl NodeConfig {
    /// Loads `home/config.toml` (defaults where absent) with environment overrides, and checks it.
    pub fn load(home: &Path) -> Result<Self, ConfigError> {
        let cfg: NodeConfig = Figment::from(Serialized::defaults(NodeConfig::default()))
            .merge(Toml::file(home.join(CONFIG_FILE)))
            .merge(Env::prefixed(ENV_PREFIX).split("__"))
            .extract()
            .map_err(Box::new)?;
        cfg.validate()?;
        Ok(cfg)
    }

    /// Cross-field sanity, checked once at start-up.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let bad = |field, value: &dyn ToString, why| {
            Err(ConfigError::Invalid {
                field,
                value: value.to_string(),
                why,
            })
        };
        if !(1..=60_000).contains(&self.block.interval_ms) {
            return bad(
                "block.interval_ms",
                &self.block.interval_ms,
                "must be in 1..=60000",
            );
        }
        if self.block.empty_interval_ms < self.block.interval_ms
            || self.block.empty_interval_ms >= self.consensus.propose_timeout_ms
        {
            return bad(
                "block.empty_interval_ms",
                &self.block.empty_interval_ms,
                "must be at least block.interval_ms and below consensus.propose_timeout_ms",
            );
        }
        let c = &self.consensus;
        if [
            c.prevote_timeout_ms,
            c.precommit_timeout_ms,
            c.rebroadcast_ms,
        ]
        .contains(&0)
            || c.timeout_max_ms
                < c.propose_timeout_ms
                    .max(c.prevote_timeout_ms)
                    .max(c.precommit_timeout_ms)
        {
            return bad(
                "consensus.*_ms",
                &c.timeout_max_ms,
                "timeouts must be positive and timeout_max_ms at least each base timeout",
            );
        }
        if self.p2p.tx_gossip_interval_ms > 1000 {
            return bad(
                "p2p.tx_gossip_interval_ms",
                &self.p2p.tx_gossip_interval_ms,
                "must be at most 1000 (a second)",
            );
        }
        if self.p2p.max_message_bytes < 1 << 20 || self.p2p.redial_interval_ms == 0 {
            return bad(
                "p2p.max_message_bytes/redial_interval_ms",
                &self.p2p.max_message_bytes,
                "must be at least 1 MiB and a positive interval",
            );
        }
        if let Err(e) = self.p2p.settings(1) {
            return Err(ConfigError::P2p(e.to_string()));
        }
        if self.mempool.max_txs == 0 || self.mempool.nonce_window == 0 {
            return bad(
                "mempool.max_txs/nonce_window",
                &self.mempool.max_txs,
                "must be positive",
            );
        }
        if self.mempool.max_bytes < 1 << 20 {
            return bad(
                "mempool.max_bytes",
                &self.mempool.max_bytes,
                "must be at least 1 MiB",
            );
        }
        if self.grpc.max_message_bytes < 1 << 20 {
            return bad(
                "grpc.max_message_bytes",
                &self.grpc.max_message_bytes,
                "must be at least 1 MiB",
            );
        }
        if self.grpc.max_batch_txs == 0 || self.grpc.concurrency_per_connection == 0 {
            return bad(
                "grpc.max_batch_txs/concurrency_per_connection",
                &self.grpc.max_batch_txs,
                "must be positive",
            );
        }
        let g = &self.grpc;
        if g.max_concurrent_requests == 0 || g.max_streams == 0 || g.max_query_fuel == 0 {
            return bad(
                "grpc.max_concurrent_requests/max_streams/max_query_fuel",
                &g.max_concurrent_requests,
                "must be positive",
            );
        }
        if g.max_concurrent_queries == 0
            || g.max_concurrent_queries >= quorate_vm::Limits::default().concurrent_stores
        {
            return bad(
                "grpc.max_concurrent_queries",
                &g.max_concurrent_queries,
                "must be positive and below the engine's concurrent stores (8)",
            );
        }
        self.storage.trust_anchor()?;
        if (1..MIN_KEEP_BLOCKS).contains(&self.storage.keep_blocks) {
            return bad(
                "storage.keep_blocks",
                &self.storage.keep_blocks,
                "must be 0 (keep every block) or at least 64: peers that fell behind or lost their last commits fetch those blocks here",
            );
        }
        if self.storage.snapshot_interval > 0 && self.storage.snapshots_kept == 0 {
            return bad(
                "storage.snapshots_kept",
                &self.storage.snapshots_kept,
                "must be at least 1 when storage.snapshot_interval is set",
            );
        }
        if self.consensus.max_clock_drift_ms < 100 {
            return bad(
                "consensus.max_clock_drift_ms",
                &self.consensus.max_clock_drift_ms,
                "must be at least 100",
            );
        }
        Ok(())
    }

    /// Checks against the chain's genesis parameters, once at start-up: the p2p message limit
    /// must hold the chain's largest block, or this node could neither receive nor sync it.
    pub fn validate_for_chain(
        &self,
        params: &quorate_genesis::ChainParams,
    ) -> Result<(), ConfigError> {
        let needed = crate::block_rules::max_block_message_bytes(params);
        if self.p2p.max_message_bytes < needed {
            return Err(ConfigError::TooSmallForChain {
                field: "p2p.max_message_bytes",
                value: self.p2p.max_message_bytes as u64,
                needed: needed as u64,
                why: "a message must hold the largest block (block_max_bytes and block_max_txs of genesis)",
            });
        }
        Ok(())
    }

    /// `path` resolved against `home` unless absolute.
    pub fn resolve(home: &Path, path: &Path) -> PathBuf {
        if path.is_absolute() {
            path.to_owned()
        } else {
            home.join(path)
        }
    }

    /// The config as TOML, as written by `genesis new` and `dev`.
    pub fn to_toml(&self) -> String {
        toml::to_string_pretty(self).expect("config always serializes")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_and_env_override_and_unknown_keys_refused() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(
            dir.path().join(CONFIG_FILE),
            "grpc_addr = \"127.0.0.1:9999\"\n[block]\ninterval_ms = 35\n",
        )
        .expect("write");
        let cfg = NodeConfig::load(dir.path()).expect("loads");
        assert_eq!(cfg.grpc_addr.port(), 9999);
        assert_eq!(cfg.block.interval_ms, 35);
        assert_eq!(cfg.mempool, MempoolConfig::default());
        std::fs::write(
            dir.path().join(CONFIG_FILE),
            "grpc_adr = \"127.0.0.1:9999\"\n",
        )
        .expect("write");
        assert!(matches!(
            NodeConfig::load(dir.path()),
            Err(ConfigError::Load(_))
        ));
        std::fs::write(dir.path().join(CONFIG_FILE), "[block]\ninterval_ms = 0\n").expect("write");
        assert!(matches!(
            NodeConfig::load(dir.path()),
            Err(ConfigError::Invalid {
                field: "block.interval_ms",
                ..
            })
        ));
        let text = NodeConfig::default().to_toml();
        std::fs::write(dir.path().join(CONFIG_FILE), text).expect("write");
        assert_eq!(
            NodeConfig::load(dir.path()).expect("loads"),
            NodeConfig::default()
        );
    }

    /// Issue 25 (low): pruning had no floor; `keep_blocks = 1` left peers that fell a height
    /// behind, or lost an unsynced commit, nothing to fetch.
    #[test]
    fn pruning_keeps_at_least_the_floor() {
        let mut c = NodeConfig::default();
        for (keep, ok) in [
            (0, true),
            (1, false),
            (MIN_KEEP_BLOCKS - 1, false),
            (MIN_KEEP_BLOCKS, true),
        ] {
            c.storage.keep_blocks = keep;
            assert_eq!(c.validate().is_ok(), ok, "keep_blocks = {keep}");
        }
    }

    /// Issue 13, defect 7: a p2p message limit below the chain's largest block left a node
    /// unable to receive or sync such blocks; it is refused at start-up now.
    #[test]
    fn a_p2p_message_limit_below_the_largest_block_is_refused() {
        let params = quorate_genesis::ChainParams::default();
        assert!(NodeConfig::default().validate_for_chain(&params).is_ok());
        let mut small = NodeConfig::default();
        small.p2p.max_message_bytes = 2 << 20;
        assert!(matches!(
            small.validate_for_chain(&params),
            Err(ConfigError::TooSmallForChain {
                field: "p2p.max_message_bytes",
                ..
            })
        ));
    }

    #[test]
    fn a_gossip_interval_over_a_second_is_refused() {
        let mut c = NodeConfig::default();
        c.p2p.tx_gossip_interval_ms = 0;
        assert!(c.validate().is_ok(), "0: one message per admission round");
        c.p2p.tx_gossip_interval_ms = 1001;
        let err = c.validate().expect_err("refused").to_string();
        assert!(err.contains("p2p.tx_gossip_interval_ms"), "{err}");
    }

    #[test]
    fn running_calls_ahead_is_off_unless_told_and_an_unknown_mode_is_refused() {
        use crate::execution::ParallelMode;
        let home = tempfile::tempdir().expect("tempdir");
        assert_eq!(
            NodeConfig::load(home.path())
                .expect("defaults")
                .execution
                .run_ahead,
            ParallelMode::Off
        );
        let write =
            |text: &str| std::fs::write(home.path().join(CONFIG_FILE), text).expect("write");
        write("[execution]\nrun_ahead = \"adaptive\"\n");
        let c = NodeConfig::load(home.path()).expect("adaptive");
        assert_eq!(c.execution.run_ahead, ParallelMode::Adaptive);
        write("[execution]\nrun_ahead = \"sometimes\"\n");
        let err = NodeConfig::load(home.path())
            .expect_err("refused")
            .to_string();
        assert!(err.contains("sometimes"), "{err}");
    }
}
