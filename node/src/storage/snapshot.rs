//! The state as a snapshot sees it: every entry of one committed height read in a fixed order,
//! and a verified snapshot's entries written into an empty database that then becomes a chain
//! at the snapshot's height.

use bytes::Bytes;
use prost::Message;
use quorate_proto::crypto::Hash32;
use quorate_proto::v1::{BlockHeader, StateEntry, StateKind};
use rocksdb::{IteratorMode, WriteBatch};

use super::blocks::BlockRecord;
use super::contracts::{ContractRecord, EntryKey, Space};
use super::db::{
    corrupt, Head, Storage, StorageError, CF_ACCOUNTS, CF_BLOCKS, CF_BLOCK_HASHES, CF_CODE,
    CF_META, META_CHAIN_ID, META_GENESIS, META_HEAD, META_PRUNED, META_SCHEMA, SCHEMA_VERSION,
};
use crate::state_root::LtHash;

/// One item of the state, in the order a snapshot holds them: every entry by (kind, key),
/// then the bytecode of every deployed contract by code hash.
pub enum StateItem<'a> {
    /// A state entry (under the state root).
    Entry(StateKind, &'a [u8], &'a [u8]),
    /// A deployed contract's bytecode (bound to the state by its code hash).
    Code(&'a [u8]),
}

/// The kinds of entry in snapshot order, with the space of each (none for accounts).
const KINDS: [(StateKind, Option<Space>); 4] = [
    (StateKind::Account, None),
    (StateKind::Storage, Some(Space::Storage)),
    (StateKind::Contract, Some(Space::Contract)),
    (StateKind::System, Some(Space::System)),
];

fn space_of(kind: StateKind) -> Option<Space> {
    KINDS.iter().find(|(k, _)| *k == kind).and_then(|(_, s)| *s)
}

/// Adds the entry `(kind, key, value)` to `lthash` exactly as the state commitment does.
pub fn add_to_lthash(lthash: &mut LtHash, kind: StateKind, key: &[u8], value: &[u8]) {
    match space_of(kind) {
        None => lthash.insert(key, value),
        Some(space) => lthash.insert(
            &EntryKey {
                space,
                key: key.to_vec(),
            }
            .state_key(),
            value,
        ),
    }
}

/// Whether `(kind, key, value)` has the shape of an entry of its kind (an account: a 20-byte
/// address and a non-empty account; the others: [`EntryKey::check_shape`]).
pub fn check_entry_shape(kind: StateKind, key: &[u8], value: &[u8]) -> Result<(), String> {
    match space_of(kind) {
        None if key.len() != 20 => Err(format!("an account address of {} bytes", key.len())),
        None => match super::state::Account::from_bytes(value) {
            Some(a) if !a.is_empty() => Ok(()),
            Some(_) => Err("an empty account (empty accounts are absent)".into()),
            None => Err(format!("an account of {} bytes", value.len())),
        },
        Some(space) => EntryKey {
            space,
            key: key.to_vec(),
        }
        .check_shape(value),
    }
}

/// The code hashes `entry` binds to the state: a contract record's code, or the new code of
/// each system-contract upgrade to come (ADR 0018), which a node joining before the upgrade's
/// height needs as much as deployed code.
pub fn code_hashes_of(entry: &StateEntry) -> Result<Vec<Hash32>, StorageError> {
    code_hashes(entry.kind(), &entry.key, &entry.value)
}

fn code_hashes(kind: StateKind, key: &[u8], value: &[u8]) -> Result<Vec<Hash32>, StorageError> {
    match kind {
        StateKind::Contract => {
            let record =
                ContractRecord::decode(value).map_err(|e| corrupt("contract record", e))?;
            let mut hashes = vec![record.code()?];
            for r in &record.retired {
                hashes.push(
                    Hash32::from_slice(r).ok_or_else(|| corrupt("contract record", "retired"))?,
                );
            }
            Ok(hashes)
        }
        StateKind::System if key == EntryKey::upgrades().key.as_slice() => {
            quorate_proto::v1::PendingUpgrades::decode(value)
                .map_err(|e| corrupt("upgrades", e))?
                .upgrades
                .iter()
                .map(|u| {
                    Hash32::from_slice(&u.code_hash).ok_or_else(|| corrupt("upgrades", "code hash"))
                })
                .collect()
        }
        _ => Ok(Vec::new()),
    }
}

/// The state of one committed height, fixed when the reader was made: later commits do not
/// change what it reads. Every block is one write batch, so the reader holds all of a block
/// or none of it.
pub struct StateReader<'a> {
    storage: &'a Storage,
    snap: rocksdb::SnapshotWithThreadMode<'a, rocksdb::DB>,
    /// The head it reads.
    pub head: Head,
    /// The record of the head's block (none at genesis).
    pub record: Option<BlockRecord>,
}

impl StateReader<'_> {
    /// Calls `each` for every item: each entry by (kind, key), then the bytecode of every
    /// deployed contract and every upgrade to come, by code hash.
    pub fn for_each<E: From<StorageError>>(
        &self,
        mut each: impl FnMut(StateItem<'_>) -> Result<(), E>,
    ) -> Result<(), E> {
        let storage = self.storage;
        let mut code = Vec::new();
        for (kind, space) in KINDS {
            let cf = space.map_or(CF_ACCOUNTS, |s| s.cf());
            for item in self.snap.iterator_cf(storage.cf(cf), IteratorMode::Start) {
                let (k, v) = item.map_err(StorageError::from)?;
                code.extend(code_hashes(kind, &k, &v)?);
                each(StateItem::Entry(kind, &k, &v))?;
            }
        }
        code.sort_unstable_by_key(|h| h.0);
        code.dedup();
        for hash in code {
            let wasm = self
                .snap
                .get_cf(storage.cf(CF_CODE), hash.0)
                .map_err(StorageError::from)?
                .ok_or_else(|| corrupt("code", format!("{hash} missing")))?;
            each(StateItem::Code(&wasm))?;
        }
        Ok(())
    }
}

impl Storage {
    /// A reader of the whole state after the head as of now.
    pub fn state_reader(&self) -> Result<StateReader<'_>, StorageError> {
        let snap = self.db().snapshot();
        let head = snap
            .get_cf(self.cf(CF_META), META_HEAD)?
            .and_then(|b| Head::from_bytes(&b))
            .ok_or_else(|| corrupt("head", "missing or wrong length"))?;
        let record = snap
            .get_cf(self.cf(CF_BLOCKS), head.height.to_be_bytes())?
            .map(|b| BlockRecord::decode(&*b).map_err(|e| corrupt("head block", e)))
            .transpose()?;
        if record.is_none() && head.height > 0 {
            return Err(corrupt(
                "head block",
                format!("block {} missing", head.height),
            ));
        }
        Ok(StateReader {
            storage: self,
            snap,
            head,
            record,
        })
    }

    /// Writes the entries and bytecode of one verified snapshot chunk. Until
    /// [`Storage::finish_import`] the database has no head and is not a chain.
    pub fn import_items(&self, entries: &[StateEntry], code: &[Bytes]) -> Result<(), StorageError> {
        let mut batch = WriteBatch::default();
        for e in entries {
            let cf = space_of(e.kind()).map_or(CF_ACCOUNTS, |s| s.cf());
            batch.put_cf(self.cf(cf), &e.key, &e.value);
        }
        for wasm in code {
            batch.put_cf(self.cf(CF_CODE), Hash32::of(wasm).0, wasm);
        }
        self.write(batch)
    }

    /// Makes an imported state a chain at the snapshot's height: chain identity, the head
    /// block's record (its transactions are not held, so blocks are served from the next
    /// height), the accumulator and the head, in one write.
    pub fn finish_import(
        &self,
        chain_id: &str,
        genesis_hash: &Hash32,
        record: &BlockRecord,
        header: &BlockHeader,
        lthash: &LtHash,
    ) -> Result<Head, StorageError> {
        let meta = self.cf(CF_META);
        let head = Head {
            height: header.height,
            hash: record.hash(),
            time_ms: header.time_ms,
            state_root: lthash.root(),
        };
        let mut batch = WriteBatch::default();
        batch.put_cf(
            self.cf(CF_BLOCKS),
            head.height.to_be_bytes(),
            record.encode_to_vec(),
        );
        batch.put_cf(
            self.cf(CF_BLOCK_HASHES),
            head.hash.0,
            head.height.to_be_bytes(),
        );
        batch.put_cf(meta, META_PRUNED, head.height.to_be_bytes());
        self.put_head(&mut batch, &head, lthash);
        batch.put_cf(meta, META_CHAIN_ID, chain_id.as_bytes());
        batch.put_cf(meta, META_SCHEMA, SCHEMA_VERSION.to_be_bytes());
        batch.put_cf(meta, META_GENESIS, genesis_hash.0);
        self.write(batch)?;
        self.flush()?;
        Ok(head)
    }
}

impl Storage {
    /// The state accumulator recomputed from every stored account and entry (a full scan: for
    /// checks, never on the block path), read as a snapshot reads the state.
    pub fn recompute_lthash(&self) -> Result<crate::state_root::LtHash, StorageError> {
        let mut lthash = crate::state_root::LtHash::default();
        self.state_reader()?.for_each(|item| {
            if let StateItem::Entry(kind, key, value) = item {
                add_to_lthash(&mut lthash, kind, key, value);
            }
            Ok::<_, StorageError>(())
        })?;
        Ok(lthash)
    }
}
