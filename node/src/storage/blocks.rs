//! Block and transaction records, and the atomic block commit.

use std::sync::Arc;

use bytes::Bytes;
use prost::Message;
use quorate_proto::crypto::{Address, Hash32};
use quorate_proto::v1::{
    BlockHeader, CommitCertificate, KeySet, Receipt, Transaction, ValidatorSetChange,
};
use rocksdb::WriteBatch;

use super::contracts::{EntryKey, NewCode};
use super::db::{
    corrupt, Durability, Head, Storage, StorageError, CF_ACCOUNTS, CF_BLOCKS, CF_BLOCK_HASHES,
    CF_META, CF_TXS, META_PRUNED, META_SET_CHANGE,
};
use super::state::Account;
use crate::state_root::LtHash;
use crate::verified_tx::VerifiedTx;

/// A block executed on top of the head, ready to be certified and committed.
#[derive(Debug)]
pub struct ExecutedBlock {
    /// Decoded header.
    pub header: BlockHeader,
    /// Encoded header, as hashed and signed.
    pub header_bytes: Bytes,
    /// blake3 of `header_bytes`.
    pub hash: Hash32,
    /// Transactions in block order.
    pub txs: Vec<Arc<VerifiedTx>>,
    /// One receipt per transaction.
    pub receipts: Vec<Receipt>,
    /// Accounts changed by the block with their new state, sorted by address.
    pub changes: Vec<(Address, Account)>,
    /// State entries changed by the block (`None`: removed), sorted by key.
    pub entries: Vec<(EntryKey, Option<Vec<u8>>)>,
    /// Contract code the block stores first, with this node's artifacts.
    pub new_code: Vec<NewCode>,
    /// State accumulator after the block.
    pub lthash: LtHash,
}

impl ExecutedBlock {
    /// The head this block makes when committed.
    pub fn head(&self) -> Head {
        Head {
            height: self.header.height,
            hash: self.hash,
            time_ms: self.header.time_ms,
            state_root: self.lthash.root(),
        }
    }

    /// The key sets this block set, by account (a key set is never removed).
    pub fn key_set_changes(&self) -> Vec<(Address, KeySet)> {
        self.entries
            .iter()
            .filter_map(|(k, v)| {
                let account = k.key_set_account()?;
                Some((account, KeySet::decode(v.as_deref()?).ok()?))
            })
            .collect()
    }

    /// Whether the next block may execute on this one's changes before its commit is written:
    /// not when it stores contract code (the engine loads code from the storage) or changes the
    /// validator schedule or the protocol activations (the node follows them at commit).
    pub fn next_can_run_before_commit(&self) -> bool {
        let (schedule, protocol) = (EntryKey::validators(), EntryKey::protocol());
        self.new_code.is_empty()
            && self
                .entries
                .iter()
                .all(|(k, _)| *k != schedule && *k != protocol)
    }
}

/// Most heights whose blocks one commit prunes.
pub const PRUNE_PER_COMMIT: u64 = 16;

/// A committed block as stored: header bytes, transaction hashes and certificate. The
/// transactions themselves are stored once, in their `TxRecord`s.
#[derive(Clone, PartialEq, Message)]
pub struct BlockRecord {
    /// Encoded header, exactly as hashed.
    #[prost(bytes = "bytes", tag = "1")]
    pub header: Bytes,
    /// Transaction hashes in block order.
    #[prost(bytes = "bytes", repeated, tag = "2")]
    pub tx_hashes: Vec<Bytes>,
    /// The commit certificate.
    #[prost(message, optional, tag = "3")]
    pub certificate: Option<CommitCertificate>,
}

impl BlockRecord {
    /// blake3 of the header bytes.
    pub fn hash(&self) -> Hash32 {
        Hash32::of(&self.header)
    }

    /// Decoded header.
    pub fn decode_header(&self) -> Result<BlockHeader, StorageError> {
        BlockHeader::decode(self.header.clone()).map_err(|e| corrupt("block header", e))
    }
}

/// A committed transaction as stored.
#[derive(Clone, PartialEq, Message)]
pub struct TxRecord {
    /// Height of its block.
    #[prost(uint64, tag = "1")]
    pub height: u64,
    /// Index in the block.
    #[prost(uint32, tag = "2")]
    pub index: u32,
    /// The transaction as received.
    #[prost(message, optional, tag = "3")]
    pub transaction: Option<Transaction>,
    /// What executing it did.
    #[prost(message, optional, tag = "4")]
    pub receipt: Option<Receipt>,
}

impl Storage {
    /// Commits `block` with its certificate in one atomic write, durable as `durability`
    /// says: block record, hash index, transactions and receipts, changed accounts, state
    /// accumulator and head, and the pruning of the consensus record up to its height.
    pub fn commit_block(
        &self,
        block: &ExecutedBlock,
        certificate: &CommitCertificate,
        set_change: Option<&ValidatorSetChange>,
        durability: Durability,
    ) -> Result<Head, StorageError> {
        let head = self.head()?;
        let height = block.header.height;
        if height != head.height + 1 {
            return Err(StorageError::NotNext {
                got: height,
                head: head.height,
            });
        }
        let mut batch = WriteBatch::default();
        let record = BlockRecord {
            header: block.header_bytes.clone(),
            tx_hashes: block
                .txs
                .iter()
                .map(|t| Bytes::copy_from_slice(&t.hash.0))
                .collect(),
            certificate: Some(certificate.clone()),
        };
        batch.put_cf(
            self.cf(CF_BLOCKS),
            height.to_be_bytes(),
            record.encode_to_vec(),
        );
        batch.put_cf(self.cf(CF_BLOCK_HASHES), block.hash.0, height.to_be_bytes());
        self.prune_record(&mut batch, height);
        let txs_cf = self.cf(CF_TXS);
        let mut buf = Vec::with_capacity(512);
        for (index, (tx, receipt)) in block.txs.iter().zip(&block.receipts).enumerate() {
            let rec = TxRecord {
                height,
                index: index as u32,
                transaction: Some(tx.tx.clone()),
                receipt: Some(receipt.clone()),
            };
            buf.clear();
            rec.encode(&mut buf).expect("Vec grows as needed");
            batch.put_cf(txs_cf, tx.hash.0, &buf);
        }
        let accounts = self.cf(CF_ACCOUNTS);
        for (addr, acct) in &block.changes {
            // An emptied account is deleted: the state holds (and the accumulator covers) only
            // accounts with a balance or a nonce.
            if acct.is_empty() {
                batch.delete_cf(accounts, addr.0);
            } else {
                batch.put_cf(accounts, addr.0, acct.to_bytes());
            }
        }
        self.put_contract_state(&mut batch, &block.entries, &block.new_code);
        let new_head = Head {
            height,
            hash: block.hash,
            time_ms: block.header.time_ms,
            state_root: block.lthash.root(),
        };
        self.put_head(&mut batch, &new_head, &block.lthash);
        if let Some(change) = set_change {
            self.put_set_change(&mut batch, change);
        }
        self.prune_blocks(&mut batch, height)?;
        let _commit = self.commit_lock.write();
        match durability {
            Durability::Synced => self.write(batch)?,
            Durability::Deferred => self.db().write_opt(batch, &self.deferred_opts)?,
        }
        Ok(new_head)
    }

    /// Adds to the commit of `height` the deletion of the blocks that leave the kept window
    /// (block record, hash index, transactions and receipts): at most [`PRUNE_PER_COMMIT`]
    /// heights at a time, so that a window shrunk at a restart is caught up over the next
    /// commits instead of in one huge write. The state is never pruned.
    fn prune_blocks(&self, batch: &mut WriteBatch, height: u64) -> Result<(), StorageError> {
        let Some(keep) = self.keep_blocks else {
            return Ok(());
        };
        let target = height.saturating_sub(keep);
        let done = self.lowest_block()?.saturating_sub(1);
        if target <= done {
            return Ok(());
        }
        let upto = target.min(done + PRUNE_PER_COMMIT);
        for h in done + 1..=upto {
            if let Some(record) = self.block_by_height(h)? {
                batch.delete_cf(self.cf(CF_BLOCK_HASHES), record.hash().0);
                for t in &record.tx_hashes {
                    batch.delete_cf(self.cf(CF_TXS), t);
                }
            }
            batch.delete_cf(self.cf(CF_BLOCKS), h.to_be_bytes());
        }
        batch.put_cf(self.cf(CF_META), META_PRUNED, upto.to_be_bytes());
        Ok(())
    }

    /// The lowest height whose block this node holds (1 unless blocks were pruned).
    pub fn lowest_block(&self) -> Result<u64, StorageError> {
        match self.db().get_pinned_cf(self.cf(CF_META), META_PRUNED)? {
            None => Ok(1),
            Some(b) => <[u8; 8]>::try_from(&*b)
                .map(|b| u64::from_be_bytes(b) + 1)
                .map_err(|_| corrupt("pruned height", "wrong length")),
        }
    }

    /// The block at `height` with the records of its transactions (none unless `with_txs`);
    /// `None` below the lowest height held. Read while no commit runs: a commit that prunes the
    /// block cannot take its transactions away in between.
    pub fn block_with_txs(
        &self,
        height: u64,
        with_txs: bool,
    ) -> Result<Option<(BlockRecord, Vec<TxRecord>)>, StorageError> {
        let _consistent = self.read_consistent();
        if height < self.lowest_block()? {
            // Pruned, or the block a snapshot started from (held without its transactions).
            return Ok(None);
        }
        let Some(record) = self.block_by_height(height)? else {
            return Ok(None);
        };
        let txs = if with_txs {
            self.txs(&record.tx_hashes)?
        } else {
            Vec::new()
        };
        Ok(Some((record, txs)))
    }

    /// The block at `height`, if committed.
    pub fn block_by_height(&self, height: u64) -> Result<Option<BlockRecord>, StorageError> {
        self.db()
            .get_pinned_cf(self.cf(CF_BLOCKS), height.to_be_bytes())?
            .map(|b| BlockRecord::decode(&*b).map_err(|e| corrupt(format!("block {height}"), e)))
            .transpose()
    }

    /// The height of the block with `hash`, if committed.
    pub fn height_of(&self, hash: &Hash32) -> Result<Option<u64>, StorageError> {
        self.db()
            .get_pinned_cf(self.cf(CF_BLOCK_HASHES), hash.0)?
            .map(|b| {
                <[u8; 8]>::try_from(&*b)
                    .map(u64::from_be_bytes)
                    .map_err(|_| corrupt(format!("block hash index {hash}"), "wrong length"))
            })
            .transpose()
    }

    /// The committed transaction with `hash`, with its location and receipt.
    pub fn tx(&self, hash: &Hash32) -> Result<Option<TxRecord>, StorageError> {
        self.db()
            .get_pinned_cf(self.cf(CF_TXS), hash.0)?
            .map(|b| TxRecord::decode(&*b).map_err(|e| corrupt(format!("tx {hash}"), e)))
            .transpose()
    }

    /// True when a transaction with `hash` is committed.
    pub fn has_tx(&self, hash: &Hash32) -> Result<bool, StorageError> {
        Ok(self.db().get_pinned_cf(self.cf(CF_TXS), hash.0)?.is_some())
    }

    /// The committed transactions of `hashes`, in order.
    pub fn txs(&self, hashes: &[Bytes]) -> Result<Vec<TxRecord>, StorageError> {
        self.db()
            .batched_multi_get_cf(self.cf(CF_TXS), hashes.iter(), false)
            .into_iter()
            .zip(hashes)
            .map(|(r, h)| {
                let b = r?.ok_or_else(|| corrupt(format!("tx {}", hex::encode(h)), "missing"))?;
                TxRecord::decode(&*b).map_err(|e| corrupt(format!("tx {}", hex::encode(h)), e))
            })
            .collect()
    }
}

impl Storage {
    fn put_set_change(&self, batch: &mut WriteBatch, change: &ValidatorSetChange) {
        let mut key = META_SET_CHANGE.to_vec();
        key.extend_from_slice(&change.height.to_be_bytes());
        batch.put_cf(self.cf(CF_META), key, change.encode_to_vec());
    }

    /// Every validator set change in force, oldest first, each with the certified header that
    /// proves it (never pruned: a client or a joining node follows them from genesis).
    pub fn set_changes(&self) -> Result<Vec<ValidatorSetChange>, StorageError> {
        let meta = self.cf(CF_META);
        self.db()
            .prefix_iterator_cf(meta, META_SET_CHANGE)
            .take_while(|item| {
                item.as_ref()
                    .map_or(true, |(k, _)| k.starts_with(META_SET_CHANGE))
            })
            .map(|item| {
                let (_, v) = item?;
                ValidatorSetChange::decode(&*v).map_err(|e| corrupt("validator set change", e))
            })
            .collect()
    }

    /// Records set changes proven elsewhere (a verified snapshot's), for a database that starts
    /// at the snapshot's height.
    pub fn import_set_changes(&self, changes: &[ValidatorSetChange]) -> Result<(), StorageError> {
        let mut batch = WriteBatch::default();
        for c in changes {
            self.put_set_change(&mut batch, c);
        }
        self.write(batch)
    }
}
