//! RocksDB storage: blocks, transactions with receipts, account state and chain metadata.
//!
//! Invariant: everything a block changes (its record, its transactions and receipts, the
//! accounts it touched, the state accumulator and the new head) is written in one `WriteBatch`,
//! so after a crash at any instant the database holds either all of a block or none of it.

mod blocks;
mod contracts;
mod record;
mod snapshot;
mod state;

use std::path::Path;
use std::sync::Arc;

use quorate_proto::crypto::Hash32;
use rocksdb::{
    BlockBasedOptions, Cache, ColumnFamilyDescriptor, Options, ReadOptions, WriteBatch,
    WriteOptions, DB,
};

pub use blocks::{BlockRecord, TxRecord};
pub use contracts::{ContractRecord, EntryKey, NewCode, Space};
pub use snapshot::{add_to_lthash, check_entry_shape, code_hash_of, StateItem, StateReader};
pub use state::Account;

use crate::state_root::LtHash;

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
const ALL_CFS: [&str; 11] = [
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

const META_HEAD: &[u8] = b"head";
const META_LTHASH: &[u8] = b"lthash";
const META_GENESIS: &[u8] = b"genesis_hash";
const META_CHAIN_ID: &[u8] = b"chain_id";
const META_SCHEMA: &[u8] = b"schema_version";
/// The highest height whose block was pruned (u64 BE; absent: none).
pub(crate) const META_PRUNED: &[u8] = b"pruned_to";
/// blake3 of the genesis file as last checked in full.
const META_GENESIS_FILE: &[u8] = b"genesis_file_hash";
/// That genesis as JSON without its funded accounts (they are in the state).
const META_GENESIS_SUMMARY: &[u8] = b"genesis_summary";
/// Prefix of a validator set change's proof: ‖ height (u64 BE) → `ValidatorSetChange`.
pub(crate) const META_SET_CHANGE: &[u8] = b"set_change/";
/// 2: the validator schedule is a state entry from genesis, set changes are recorded.
const SCHEMA_VERSION: u32 = 2;

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
    fn to_bytes(&self) -> Vec<u8> {
        let mut v = Vec::with_capacity(8 + 32 + 8 + 32);
        v.extend_from_slice(&self.height.to_be_bytes());
        v.extend_from_slice(&self.hash.0);
        v.extend_from_slice(&self.time_ms.to_be_bytes());
        v.extend_from_slice(&self.state_root.0);
        v
    }

    fn from_bytes(b: &[u8]) -> Option<Self> {
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
    db: DB,
    /// The options the database was opened with (its statistics live there).
    db_opts: Options,
    write_opts: WriteOptions,
    /// Block commits whose fsync is deferred ([`Durability::Deferred`]).
    deferred_opts: WriteOptions,
    /// Whether block commits are fsynced at all (`StorageOptions::sync_writes`).
    sync_writes: bool,
    /// Writes of the consensus record: always synced, whatever `sync_writes` says, because a
    /// vote lost in a power failure could let this validator sign a conflicting one.
    record_opts: WriteOptions,
    /// Held for writing while a block commits and for reading by a read-only query, so that a
    /// query sees one committed state throughout.
    commit_lock: parking_lot::RwLock<()>,
    /// Blocks kept (`None`: all).
    keep_blocks: Option<u64>,
}

pub(crate) fn corrupt(what: impl Into<String>, detail: impl ToString) -> StorageError {
    StorageError::Corrupt {
        what: what.into(),
        detail: detail.to_string(),
    }
}

impl Storage {
    /// Opens (creating if missing) the database at `path`.
    pub fn open(path: &Path, opts: &StorageOptions) -> Result<Arc<Self>, StorageError> {
        let cache = Cache::new_lru_cache(opts.block_cache_bytes);
        let cf_opts = |point_lookups: bool| {
            let mut table = BlockBasedOptions::default();
            table.set_block_cache(&cache);
            table.set_block_size(16 * 1024);
            if point_lookups {
                table.set_bloom_filter(10.0, false);
            }
            let mut o = Options::default();
            o.set_block_based_table_factory(&table);
            o.set_compression_type(rocksdb::DBCompressionType::Lz4);
            o.set_write_buffer_size(32 << 20);
            o
        };
        let mut db_opts = Options::default();
        db_opts.create_if_missing(true);
        db_opts.create_missing_column_families(true);
        db_opts.set_max_open_files(opts.max_open_files);
        db_opts.increase_parallelism(2);
        db_opts.set_max_background_jobs(2);
        db_opts.set_keep_log_file_num(4);
        db_opts.set_max_total_wal_size(256 << 20);
        db_opts.set_paranoid_checks(true);
        if opts.statistics {
            db_opts.enable_statistics();
        }
        let cfs = vec![
            ColumnFamilyDescriptor::new(CF_BLOCKS, cf_opts(false)),
            ColumnFamilyDescriptor::new(CF_BLOCK_HASHES, cf_opts(true)),
            ColumnFamilyDescriptor::new(CF_TXS, cf_opts(true)),
            ColumnFamilyDescriptor::new(CF_ACCOUNTS, cf_opts(true)),
            ColumnFamilyDescriptor::new(CF_META, cf_opts(false)),
            ColumnFamilyDescriptor::new(CF_CONSENSUS, cf_opts(false)),
            ColumnFamilyDescriptor::new(CF_CONTRACT_STORAGE, cf_opts(true)),
            ColumnFamilyDescriptor::new(CF_CONTRACTS, cf_opts(true)),
            ColumnFamilyDescriptor::new(CF_SYSTEM, cf_opts(true)),
            ColumnFamilyDescriptor::new(CF_CODE, cf_opts(true)),
            ColumnFamilyDescriptor::new(CF_ARTIFACTS, cf_opts(true)),
        ];
        let db = DB::open_cf_descriptors(&db_opts, path, cfs)?;
        let mut write_opts = WriteOptions::default();
        write_opts.set_sync(opts.sync_writes);
        let mut deferred_opts = WriteOptions::default();
        deferred_opts.set_sync(false);
        let mut record_opts = WriteOptions::default();
        record_opts.set_sync(true);
        Ok(Arc::new(Self {
            db,
            db_opts,
            write_opts,
            deferred_opts,
            sync_writes: opts.sync_writes,
            record_opts,
            commit_lock: parking_lot::RwLock::new(()),
            keep_blocks: opts.keep_blocks,
        }))
    }

    pub(crate) fn cf(&self, name: &str) -> &rocksdb::ColumnFamily {
        self.db
            .cf_handle(name)
            .expect("all column families are created at open")
    }

    /// Writes the genesis state (balances and state entries) if the database is empty, or
    /// checks that it belongs to this genesis. Returns the head.
    pub fn init_genesis(
        &self,
        chain_id: &str,
        genesis_hash: Hash32,
        genesis_time_ms: u64,
        balances: &[(quorate_proto::Address, u64)],
        entries: &[(EntryKey, Vec<u8>)],
        new_code: &[NewCode],
    ) -> Result<Head, StorageError> {
        let meta = self.cf(CF_META);
        if let Some(stored) = self.db.get_cf(meta, META_GENESIS)? {
            let found_chain = self
                .db
                .get_cf(meta, META_CHAIN_ID)?
                .map(|b| String::from_utf8_lossy(&b).into_owned())
                .unwrap_or_default();
            if stored != genesis_hash.0 || found_chain != chain_id {
                return Err(StorageError::WrongChain {
                    found_chain,
                    found_genesis: hex::encode(stored),
                    chain: chain_id.to_owned(),
                    genesis: genesis_hash.to_hex(),
                });
            }
            let schema = self
                .db
                .get_cf(meta, META_SCHEMA)?
                .and_then(|b| <[u8; 4]>::try_from(b.as_slice()).ok())
                .map_or(0, u32::from_be_bytes);
            if schema != SCHEMA_VERSION {
                return Err(StorageError::Corrupt {
                    what: "database".into(),
                    detail: format!(
                        "written in format {schema}; this release reads format {SCHEMA_VERSION} \
                         (start the node on an empty data directory, or import a snapshot)"
                    ),
                });
            }
            return self.head();
        }
        let mut lthash = LtHash::default();
        let mut batch = WriteBatch::default();
        let accounts = self.cf(CF_ACCOUNTS);
        for (addr, balance) in balances.iter().filter(|(_, b)| *b > 0) {
            let acct = Account {
                balance: *balance,
                nonce: 0,
                keyed: false,
            };
            let value = acct.to_bytes();
            lthash.insert(&addr.0, value.as_ref());
            batch.put_cf(accounts, addr.0, value);
        }
        let owned: Vec<(EntryKey, Option<Vec<u8>>)> = entries
            .iter()
            .map(|(k, v)| {
                lthash.insert(&k.state_key(), v);
                (k.clone(), Some(v.clone()))
            })
            .collect();
        self.put_contract_state(&mut batch, &owned, new_code);
        let head = Head {
            height: 0,
            hash: genesis_hash,
            time_ms: genesis_time_ms,
            state_root: lthash.root(),
        };
        batch.put_cf(meta, META_LTHASH, lthash.to_bytes());
        batch.put_cf(meta, META_HEAD, head.to_bytes());
        batch.put_cf(meta, META_CHAIN_ID, chain_id.as_bytes());
        batch.put_cf(meta, META_SCHEMA, SCHEMA_VERSION.to_be_bytes());
        // The genesis marker goes in the same batch: a crash leaves either nothing or all.
        batch.put_cf(meta, META_GENESIS, genesis_hash.0);
        self.db.write_opt(batch, &self.write_opts)?;
        Ok(head)
    }

    /// Records that the genesis file with `file_hash` was checked in full and opened this
    /// database; `summary` is that genesis as JSON without its funded accounts.
    pub fn record_genesis(&self, file_hash: &Hash32, summary: &str) -> Result<(), StorageError> {
        let meta = self.cf(CF_META);
        let mut batch = WriteBatch::default();
        batch.put_cf(meta, META_GENESIS_SUMMARY, summary.as_bytes());
        batch.put_cf(meta, META_GENESIS_FILE, file_hash.0);
        self.write(batch)
    }

    /// The genesis recorded for a file with `file_hash`, with the chain's genesis hash; `None`
    /// when the file changed (or was never recorded) and must be checked in full.
    pub fn recorded_genesis(
        &self,
        file_hash: &Hash32,
    ) -> Result<Option<(quorate_genesis::Genesis, Hash32)>, StorageError> {
        let meta = self.cf(CF_META);
        let Some(recorded) = self.db.get_pinned_cf(meta, META_GENESIS_FILE)? else {
            return Ok(None);
        };
        if recorded.as_ref() != file_hash.0 {
            return Ok(None);
        }
        let (Some(summary), Some(hash)) = (
            self.db.get_cf(meta, META_GENESIS_SUMMARY)?,
            self.db.get_cf(meta, META_GENESIS)?,
        ) else {
            return Ok(None);
        };
        let genesis: quorate_genesis::Genesis =
            serde_json::from_slice(&summary).map_err(|e| corrupt("recorded genesis", e))?;
        let hash = Hash32::from_slice(&hash).ok_or_else(|| corrupt("genesis hash", "length"))?;
        Ok(Some((genesis, hash)))
    }

    /// The chain id and genesis hash this database belongs to (`None` before a genesis).
    pub fn chain_identity(&self) -> Result<Option<(String, Hash32)>, StorageError> {
        let meta = self.cf(CF_META);
        let (Some(chain), Some(hash)) = (
            self.db.get_cf(meta, META_CHAIN_ID)?,
            self.db.get_cf(meta, META_GENESIS)?,
        ) else {
            return Ok(None);
        };
        let hash = Hash32::from_slice(&hash).ok_or_else(|| corrupt("genesis hash", "length"))?;
        Ok(Some((String::from_utf8_lossy(&chain).into_owned(), hash)))
    }

    /// True once a genesis has been written.
    pub fn is_initialized(&self) -> Result<bool, StorageError> {
        Ok(self
            .db
            .get_pinned_cf(self.cf(CF_META), META_GENESIS)?
            .is_some())
    }

    /// The latest committed head.
    pub fn head(&self) -> Result<Head, StorageError> {
        self.head_at(None)
    }

    /// [`Storage::head`] as of the snapshot `at` reads (`None`: the latest).
    pub fn head_at(&self, at: Option<&ReadOptions>) -> Result<Head, StorageError> {
        let cf = self.cf(CF_META);
        let bytes = match at {
            Some(o) => self.db.get_cf_opt(cf, META_HEAD, o)?,
            None => self.db.get_cf(cf, META_HEAD)?,
        }
        .ok_or_else(|| corrupt("head", "missing: genesis was never written"))?;
        Head::from_bytes(&bytes).ok_or_else(|| corrupt("head", "wrong length"))
    }

    /// Read options that see the committed state of this instant for as long as `snapshot`
    /// lives (commits go on meanwhile): give them to the `_at` reads.
    pub fn snapshot_reads(snapshot: &rocksdb::SnapshotWithThreadMode<'_, DB>) -> ReadOptions {
        let mut o = ReadOptions::default();
        o.set_snapshot(snapshot);
        o
    }

    /// Holds commits back while the guard lives (tests of what must not wait for them).
    #[cfg(test)]
    pub(crate) fn hold_commits(&self) -> parking_lot::RwLockWriteGuard<'_, ()> {
        self.commit_lock.write()
    }

    /// The state accumulator after the head.
    pub fn lthash(&self) -> Result<LtHash, StorageError> {
        let bytes = self
            .db
            .get_cf(self.cf(CF_META), META_LTHASH)?
            .ok_or_else(|| corrupt("lthash", "missing"))?;
        LtHash::from_bytes(&bytes).ok_or_else(|| corrupt("lthash", "wrong length"))
    }

    /// Writes `batch` with the configured durability.
    pub(crate) fn write(&self, batch: WriteBatch) -> Result<(), StorageError> {
        Ok(self.db.write_opt(batch, &self.write_opts)?)
    }

    /// Makes every write so far durable (one fsync of the WAL, which all column families
    /// share); nothing to do when `sync_writes` is off.
    pub fn sync_wal(&self) -> Result<(), StorageError> {
        if self.sync_writes {
            self.db.flush_wal(true)?;
        }
        Ok(())
    }

    /// Blocks commits while held: what is read under it is one committed state.
    pub fn read_consistent(&self) -> parking_lot::RwLockReadGuard<'_, ()> {
        self.commit_lock.read()
    }

    pub(crate) fn db(&self) -> &DB {
        &self.db
    }

    /// A RocksDB integer property summed over every column family (e.g.
    /// `rocksdb.total-sst-files-size`); `None` if RocksDB does not know it.
    pub fn int_property(&self, name: &str) -> Option<u64> {
        let mut total = None;
        for cf in ALL_CFS {
            if let Ok(Some(v)) = self.db.property_int_value_cf(self.cf(cf), name) {
                total = Some(total.unwrap_or(0) + v);
            }
        }
        total
    }

    /// Writes every memtable to SST files, so that the next open has no write-ahead log to
    /// replay (after a large genesis, replaying it took seconds). Done at a clean stop and after
    /// a genesis is written; a crash just replays the log.
    pub fn flush(&self) -> Result<(), StorageError> {
        for cf in ALL_CFS {
            self.db.flush_cf(self.cf(cf))?;
        }
        Ok(())
    }

    /// A RocksDB statistics ticker (0 unless opened with `statistics`).
    pub fn ticker(&self, ticker: rocksdb::statistics::Ticker) -> u64 {
        self.db_opts.get_ticker_count(ticker)
    }

    pub(crate) fn put_head(&self, batch: &mut WriteBatch, head: &Head, lthash: &LtHash) {
        let meta = self.cf(CF_META);
        batch.put_cf(meta, META_HEAD, head.to_bytes());
        batch.put_cf(meta, META_LTHASH, lthash.to_bytes());
    }

    /// Checks that the stored head, its block record and the state accumulator agree; run at
    /// start-up so a damaged database is refused rather than served.
    pub fn check_consistency(&self) -> Result<Head, StorageError> {
        let head = self.head()?;
        let lthash = self.lthash()?;
        if lthash.root() != head.state_root {
            return Err(corrupt(
                "state",
                format!(
                    "accumulator root {} != head state root {}",
                    lthash.root(),
                    head.state_root
                ),
            ));
        }
        if head.height > 0 {
            let block = self
                .block_by_height(head.height)?
                .ok_or_else(|| corrupt("head", format!("block {} missing", head.height)))?;
            if block.hash() != head.hash {
                return Err(corrupt(
                    "head",
                    format!("block {} hash mismatch", head.height),
                ));
            }
        }
        if self.block_by_height(head.height + 1)?.is_some() {
            return Err(corrupt(
                "head",
                format!("a block above head {} exists", head.height),
            ));
        }
        Ok(head)
    }
}

#[cfg(test)]
mod tests;
