//! RocksDB storage: blocks, transactions with receipts, account state and chain metadata.
//!
//! Invariant: everything a block changes (its record, its transactions and receipts, the
//! accounts it touched, the state accumulator and the new head) is written in one `WriteBatch`,
//! so after a crash at any instant the database holds either all of a block or none of it.

mod blocks;
mod contracts;
mod db;
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

pub use blocks::{BlockRecord, ExecutedBlock, TxRecord};
pub(crate) use contracts::decode_count;
pub use contracts::{ContractRecord, EntryKey, NewCode, Space};
pub(crate) use db::corrupt;
pub use db::{Durability, Head, Storage, StorageError, StorageOptions};
pub use snapshot::{add_to_lthash, check_entry_shape, code_hashes_of, StateItem, StateReader};
pub use state::{Account, AccountBytes};

use crate::state_root::LtHash;

use db::*;

/// The share of a memtable's size given to its whole-key bloom filter (1.6 MiB of 32).
const MEMTABLE_BLOOM_RATIO: f64 = 0.05;

impl Storage {
    /// Opens (creating if missing) the database at `path`.
    pub fn open(path: &Path, opts: &StorageOptions) -> Result<Arc<Self>, StorageError> {
        let cache = Cache::new_lru_cache(opts.block_cache_bytes);
        // `point_lookups`: a bloom filter in the table files. `misses`: also one in the
        // memtables, for the families most reads of absent keys go to: transactions (is this
        // hash committed?), accounts, contract storage and system entries. A write of a new key
        // first reads the old value for the state root, and without a filter in the memtable
        // every such miss walked the skip list (point reads were 12% of a validator's time
        // building remittance blocks, most of them misses; docs/PERFORMANCE.md). Each filter
        // is 1.6 MiB per 32 MiB memtable: at most 12.8 MiB for four families' two memtables.
        let cf_opts = |point_lookups: bool, misses: bool| {
            let mut table = BlockBasedOptions::default();
            table.set_block_cache(&cache);
            table.set_block_size(16 * 1024);
            let mut o = Options::default();
            if point_lookups {
                table.set_bloom_filter(10.0, false);
            }
            if misses {
                o.set_memtable_prefix_bloom_ratio(MEMTABLE_BLOOM_RATIO);
                o.set_memtable_whole_key_filtering(true);
            }
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
            ColumnFamilyDescriptor::new(CF_BLOCKS, cf_opts(false, false)),
            ColumnFamilyDescriptor::new(CF_BLOCK_HASHES, cf_opts(true, false)),
            ColumnFamilyDescriptor::new(CF_TXS, cf_opts(true, true)),
            ColumnFamilyDescriptor::new(CF_ACCOUNTS, cf_opts(true, true)),
            ColumnFamilyDescriptor::new(CF_META, cf_opts(false, false)),
            ColumnFamilyDescriptor::new(CF_CONSENSUS, cf_opts(false, false)),
            ColumnFamilyDescriptor::new(CF_CONTRACT_STORAGE, cf_opts(true, true)),
            ColumnFamilyDescriptor::new(CF_CONTRACTS, cf_opts(true, false)),
            ColumnFamilyDescriptor::new(CF_SYSTEM, cf_opts(true, true)),
            ColumnFamilyDescriptor::new(CF_CODE, cf_opts(true, false)),
            ColumnFamilyDescriptor::new(CF_ARTIFACTS, cf_opts(true, false)),
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
