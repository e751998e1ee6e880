//! The database and its layout: the RocksDB handle ([`Storage`]), its column families and
//! metadata keys, its options, the committed head, and the errors of storage.

use rocksdb::{Options, WriteOptions, DB};

use quorate_proto::crypto::Hash32;

/// Column family: height (u64 BE) → `BlockRecord`.
pub(crate) const CF_BLOCKS: &str = "blocks";
/// Column family: block hash → height (u64 BE).
pub(crate) const CF_BLOCK_HASHES: &str = "block_hashes";
/// Column family: tx hash → `TxRecord`.
pub(crate) const CF_TXS: &str = "txs";
/// Column family: address → `Account` (16 bytes).
pub(crate) const CF_ACCOUNTS: &str = "accounts";
/// Column family: chain metadata.
pub(crate) const CF_META: &str = "meta";
/// Column family: height (u64 BE) ‖ entry hash → consensus record entry.
pub(crate) const CF_CONSENSUS: &str = "consensus";
/// Column family: contract address ‖ key → value (contract storage).
pub(crate) const CF_CONTRACT_STORAGE: &str = "contract_storage";
/// Column family: contract address → `ContractRecord`.
pub(crate) const CF_CONTRACTS: &str = "contracts";
/// Column family: chain settings (admin, trusted deployers).
pub(crate) const CF_SYSTEM: &str = "system";
/// Column family: code hash → wasm bytecode.
pub(crate) const CF_CODE: &str = "code";
/// Column family: code hash ‖ engine fingerprint → machine code (this node's cache).
pub(crate) const CF_ARTIFACTS: &str = "artifacts";
/// Every column family.
pub(crate) const ALL_CFS: [&str; 11] = [
    CF_BLOCKS,
    CF_BLOCK_HASHES,
    CF_TXS,
    CF_ACCOUNTS,
    CF_META,
    CF_CONSENSUS,
    CF_CONTRACT_STORAGE,
    CF_CONTRACTS,
    CF_SYSTEM,
    CF_CODE,
    CF_ARTIFACTS,
];

pub(crate) const META_HEAD: &[u8] = b"head";
pub(crate) const META_LTHASH: &[u8] = b"lthash";
pub(crate) const META_GENESIS: &[u8] = b"genesis_hash";
pub(crate) const META_CHAIN_ID: &[u8] = b"chain_id";
pub(crate) const META_SCHEMA: &[u8] = b"schema_version";
/// The highest height whose block was pruned (u64 BE; absent: none).
pub(crate) const META_PRUNED: &[u8] = b"pruned_to";
/// blake3 of the genesis file as last checked in full.
pub(crate) const META_GENESIS_FILE: &[u8] = b"genesis_file_hash";
/// That genesis as JSON without its funded accounts (they are in the state).
pub(crate) const META_GENESIS_SUMMARY: &[u8] = b"genesis_summary";
/// Prefix of a validator set change's proof: ‖ height (u64 BE) → `ValidatorSetChange`.
pub(crate) const META_SET_CHANGE: &[u8] = b"set_change/";
/// 2: the validator schedule is a state entry from genesis, set changes are recorded.
pub(crate) const SCHEMA_VERSION: u32 = 2;

/// Storage failures. Any of these means the node cannot go on safely.
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    /// RocksDB reported an error.
    #[error("rocksdb: {0}")]
    Rocks(#[from] rocksdb::Error),
    /// A stored record does not decode: the database is damaged.
    #[error("corrupt record {what}: {detail}")]
    Corrupt {
        /// Which record.
        what: String,
        /// What was wrong.
        detail: String,
    },
    /// The database belongs to another chain.
    #[error("database holds chain {found_chain} (genesis {found_genesis}), not {chain} (genesis {genesis})")]
    WrongChain {
        /// Chain id stored.
        found_chain: String,
        /// Genesis hash stored.
        found_genesis: String,
        /// Chain id expected.
        chain: String,
        /// Genesis hash expected.
        genesis: String,
    },
    /// The contract engine failed in a way no transaction can cause (a deployed contract's
    /// code missing or not loadable).
    #[error("contract engine: {0}")]
    Engine(String),
    /// This node's contract engine is not the one the chain names (ADR 0010): it would run
    /// precompiled contracts differently, so it does not start.
    #[error("this node's contract engine is {node}, but the chain runs engine {chain}: run a release with the chain's engine")]
    EngineMismatch {
        /// The chain's engine fingerprint (hex).
        chain: String,
        /// This node's (hex).
        node: String,
    },
    /// A block at an unexpected height was offered for commit.
    #[error("cannot commit height {got}: head is {head}")]
    NotNext {
        /// Offered height.
        got: u64,
        /// Current head.
        head: u64,
    },
}

/// When a block commit's write reaches the disk.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Durability {
    /// fsynced before the commit returns (unless `sync_writes` is off).
    Synced,
    /// Written without fsync: durable after the next synced write of this database (the
    /// consensus record's, which shares the WAL) or [`Storage::sync_wal`]. A crash before
    /// that may lose it, together with the pruning of the consensus record it carries.
    Deferred,
}

/// RocksDB tuning, set explicitly rather than left to defaults.
#[derive(Clone, Debug)]
pub struct StorageOptions {
    /// fsync the WAL on every block commit (a commit is acknowledged only after this).
    pub sync_writes: bool,
    /// Block cache size, bytes.
    pub block_cache_bytes: usize,
    /// Most open files RocksDB may hold.
    pub max_open_files: i32,
    /// Keep RocksDB's statistics (tickers such as WAL syncs and write stalls).
    pub statistics: bool,
    /// Keep only the blocks (with their transactions and receipts) of this many latest
    /// heights; `None` keeps every block (an archive node).
    pub keep_blocks: Option<u64>,
}

impl Default for StorageOptions {
    fn default() -> Self {
        Self {
            sync_writes: true,
            block_cache_bytes: 64 << 20,
            max_open_files: 512,
            statistics: false,
            keep_blocks: None,
        }
    }
}

/// The head of the chain as stored.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct Head {
    /// Height of the latest committed block; 0 at genesis.
    pub height: u64,
    /// Its hash (the genesis hash at height 0).
    pub hash: Hash32,
    /// Its time, ms since the epoch.
    pub time_ms: u64,
    /// State root after it.
    pub state_root: Hash32,
}

impl Head {
    /// The head as stored under `META_HEAD`.
    pub(super) fn to_bytes(&self) -> Vec<u8> {
        let mut v = Vec::with_capacity(8 + 32 + 8 + 32);
        v.extend_from_slice(&self.height.to_be_bytes());
        v.extend_from_slice(&self.hash.0);
        v.extend_from_slice(&self.time_ms.to_be_bytes());
        v.extend_from_slice(&self.state_root.0);
        v
    }

    /// A head stored under `META_HEAD`.
    pub(super) fn from_bytes(b: &[u8]) -> Option<Self> {
        if b.len() != 80 {
            return None;
        }
        Some(Self {
            height: u64::from_be_bytes(b[0..8].try_into().ok()?),
            hash: Hash32::from_slice(&b[8..40])?,
            time_ms: u64::from_be_bytes(b[40..48].try_into().ok()?),
            state_root: Hash32::from_slice(&b[48..80])?,
        })
    }
}

/// The node's database.
pub struct Storage {
    pub(super) db: DB,
    /// The options the database was opened with (its statistics live there).
    pub(super) db_opts: Options,
    pub(super) write_opts: WriteOptions,
    /// Block commits whose fsync is deferred ([`Durability::Deferred`]).
    pub(super) deferred_opts: WriteOptions,
    /// Whether block commits are fsynced at all (`StorageOptions::sync_writes`).
    pub(super) sync_writes: bool,
    /// Writes of the consensus record: always synced, whatever `sync_writes` says, because a
    /// vote lost in a power failure could let this validator sign a conflicting one.
    pub(super) record_opts: WriteOptions,
    /// Held for writing while a block commits and for reading by a read-only query, so that a
    /// query sees one committed state throughout.
    pub(super) commit_lock: parking_lot::RwLock<()>,
    /// Blocks kept (`None`: all).
    pub(super) keep_blocks: Option<u64>,
}

pub(crate) fn corrupt(what: impl Into<String>, detail: impl ToString) -> StorageError {
    StorageError::Corrupt {
        what: what.into(),
        detail: detail.to_string(),
    }
}
