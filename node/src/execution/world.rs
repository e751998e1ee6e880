//! The state a block executes against: committed state in RocksDB plus the block's changes so
//! far, with an undo journal so that a failed contract call (or a failed part of one) is
//! rolled back exactly. It is also the contract engine's view of state.

use std::collections::HashMap;
use std::sync::{Arc, OnceLock};

use foldhash::fast::SeedableRandomState;
use foldhash::SharedSeed;

use prost::Message;
use quorate_proto::crypto::{Address, Hash32};
use quorate_vm::{Backend, Checkpoint};

use super::speculation::{Moves, Observed, Seen};
use crate::state_root::LtHash;
use crate::storage::ExecutedBlock;
use crate::storage::{Account, AccountBytes, ContractRecord, EntryKey, Storage, StorageError};

/// What a write replaced, to undo it.
enum Undo {
    Account(Address, Account),
    Entry(EntryKey, Option<Vec<u8>>),
    /// A speculative transfer's balance changes: `amount` moved from the first to the second.
    Moved(Address, Address, u64),
}

/// An entry's committed value and its current value (`None`: absent).
pub(super) type EntrySlot = (Option<Vec<u8>>, Option<Vec<u8>>);

/// The hasher of a block's maps, whose keys contracts and senders choose: foldhash with a
/// process-wide seed drawn once from `rand`'s generator, which the OS seeds (foldhash's own
/// global seed mixes addresses and the time), and a fresh seed per map. The maps' order never leaves the
/// node: what they hold is sorted or summed before it reaches a block.
fn map_hasher() -> SeedableRandomState {
    static SHARED: OnceLock<SharedSeed> = OnceLock::new();
    let shared = SHARED.get_or_init(|| SharedSeed::from_u64(rand::random()));
    SeedableRandomState::with_seed(rand::random(), shared)
}

/// Committed state plus uncommitted changes, each remembered with its committed original so
/// the state accumulator updates in O(changes).
pub struct WorldState {
    storage: Arc<Storage>,
    /// Reads of a RocksDB snapshot (a read-only query's), or `None` for the latest state.
    at: Option<Arc<rocksdb::ReadOptions>>,
    /// A decided block whose commit may still be under way: its changes are read before the
    /// storage, so the next block executes on its state either way.
    parent: Option<Arc<ExecutedBlock>>,
    /// Keyed with foldhash ([`map_hasher`]): SipHash of entry keys was 3% of a validator's
    /// time building remittance blocks.
    accounts: HashMap<Address, (Account, Account), SeedableRandomState>,
    entries: HashMap<EntryKey, EntrySlot, SeedableRandomState>,
    journal: Vec<Undo>,
    /// Set when this state is a speculative run's view over a block's state (see
    /// [`super::speculation`]): reads miss into that state, never into storage.
    speculation: Option<Box<Speculating>>,
}

/// A speculative run's view besides what it read: the frozen state it reads and the balance
/// changes and checks of its transfers (kept apart from the accounts it read, so that moving
/// tokens is not a read of the balances involved).
struct Speculating {
    base: Arc<WorldState>,
    moves: Moves,
}

impl WorldState {
    /// No changes yet on top of `storage`.
    pub fn new(storage: Arc<Storage>) -> Self {
        Self::on(storage, None)
    }

    /// No changes yet on top of `parent`'s state: the storage with `parent`'s changes over it
    /// (`None`: the storage alone).
    pub fn on(storage: Arc<Storage>, parent: Option<Arc<ExecutedBlock>>) -> Self {
        Self {
            storage,
            at: None,
            parent,
            accounts: HashMap::with_hasher(map_hasher()),
            entries: HashMap::with_hasher(map_hasher()),
            journal: Vec::new(),
            speculation: None,
        }
    }

    /// A speculative view over `base` (a block's state, frozen while speculative runs read it):
    /// reads come from `base` and are remembered with the value seen; transfers are kept as
    /// balance changes and checks ([`Moves`]) rather than reads and writes.
    pub(super) fn speculative(base: Arc<WorldState>) -> Self {
        Self {
            speculation: Some(Box::new(Speculating {
                moves: Moves::default(),
                base: base.clone(),
            })),
            ..Self::on(base.storage.clone(), None)
        }
    }

    /// What a speculative run read (accounts and entries, each with the value seen), wrote
    /// (entries whose value changed) and moved; `None` for a state that is not speculative.
    pub(super) fn into_observed(self) -> Result<Option<Observed>, StorageError> {
        let Some(s) = self.speculation else {
            return Ok(None);
        };
        let Speculating { base, mut moves } = *s;
        moves.remember_base(|a| base.peek_account(a))?;
        Ok(Some(Observed {
            accounts: self
                .accounts
                .into_iter()
                .map(|(a, (seen, _))| (a, seen))
                .collect(),
            entries: self
                .entries
                .into_iter()
                .map(|(key, (seen, left))| (key, Seen::of(seen, left)))
                .collect(),
            moves,
        }))
    }

    /// An account's current value without loading it (`None`: not loaded, so unchanged in
    /// this block).
    pub(super) fn loaded_account(&self, addr: &Address) -> Option<Account> {
        self.accounts.get(addr).map(|(_, cur)| *cur)
    }

    /// An entry's current value without loading it (`None`: not loaded, so unchanged in this
    /// block).
    pub(super) fn loaded_entry(&self, key: &EntryKey) -> Option<&Option<Vec<u8>>> {
        self.entries.get(key).map(|(_, cur)| cur)
    }

    /// Records `value` as the current and original value of an account not loaded yet (a
    /// value read elsewhere from the same state: spares a storage read).
    pub(super) fn adopt_account(&mut self, addr: Address, value: Account) {
        self.accounts.entry(addr).or_insert((value, value));
    }

    /// Records `value` as the current and original value of an entry not loaded yet (a value
    /// read elsewhere from the same state: spares a storage read).
    pub(super) fn adopt_entry(&mut self, key: &EntryKey, value: &Option<Vec<u8>>) {
        if !self.entries.contains_key(key) {
            self.entries
                .insert(key.clone(), (value.clone(), value.clone()));
        }
    }

    /// An account's value without loading it into this state: what a speculative run over this
    /// state reads.
    fn peek_account(&self, addr: &Address) -> Result<Account, StorageError> {
        if let Some((_, cur)) = self.accounts.get(addr) {
            return Ok(*cur);
        }
        if let Some(s) = &self.speculation {
            return s.base.peek_account(addr);
        }
        match self.parent_account(addr) {
            Some(acct) => Ok(acct),
            None => self.storage.account_at(addr, self.at.as_deref()),
        }
    }

    /// An entry's value without loading it into this state.
    fn peek_entry(&self, key: &EntryKey) -> Result<Option<Vec<u8>>, StorageError> {
        if let Some((_, cur)) = self.entries.get(key) {
            return Ok(cur.clone());
        }
        if let Some(s) = &self.speculation {
            return s.base.peek_entry(key);
        }
        match self.parent_entry(key) {
            Some(v) => Ok(v),
            None => self.storage.entry_at(key, self.at.as_deref()),
        }
    }

    /// An empty state on the same storage and parent (to stand in while this one is lent
    /// out).
    pub fn detached(&self) -> Self {
        Self {
            at: self.at.clone(),
            ..Self::on(self.storage.clone(), self.parent.clone())
        }
    }

    /// No changes yet on top of the committed state that `at` reads (read options holding a
    /// RocksDB snapshot, which must outlive this state).
    pub fn at_snapshot(storage: Arc<Storage>, at: Arc<rocksdb::ReadOptions>) -> Self {
        Self {
            at: Some(at),
            ..Self::on(storage, None)
        }
    }

    /// The storage underneath.
    pub fn storage(&self) -> &Arc<Storage> {
        &self.storage
    }

    /// The parent block's new state of `addr`, if it changed it.
    fn parent_account(&self, addr: &Address) -> Option<Account> {
        let p = self.parent.as_ref()?;
        let i = p.changes.binary_search_by_key(addr, |(a, _)| *a).ok()?;
        Some(p.changes[i].1)
    }

    /// True when bytecode with `code_hash` is stored, or stored by the parent block whose
    /// commit may still be under way (what the chain holds, whatever the write's timing).
    pub fn has_code(&self, code_hash: &Hash32) -> Result<bool, StorageError> {
        if self
            .parent
            .as_ref()
            .is_some_and(|p| p.new_code.iter().any(|c| c.code_hash == *code_hash))
        {
            return Ok(true);
        }
        self.storage.has_code(code_hash)
    }

    /// The parent block's new value of `key` (`Some(None)`: removed), if it changed it.
    fn parent_entry(&self, key: &EntryKey) -> Option<Option<Vec<u8>>> {
        let p = self.parent.as_ref()?;
        let i = p.entries.binary_search_by(|(k, _)| k.cmp(key)).ok()?;
        Some(p.entries[i].1.clone())
    }

    /// Loads the committed state of `addrs` with one multi-get (those not loaded yet and not
    /// changed by the parent block).
    pub fn prefetch(&mut self, addrs: &mut Vec<Address>) -> Result<(), StorageError> {
        addrs.sort_unstable();
        addrs.dedup();
        addrs.retain(|a| !self.accounts.contains_key(a));
        self.accounts.reserve(addrs.len());
        if self.parent.is_some() {
            addrs.retain(|a| match self.parent_account(a) {
                Some(acct) => {
                    self.accounts.insert(*a, (acct, acct));
                    false
                }
                None => true,
            });
        }
        for (addr, acct) in addrs
            .iter()
            .zip(self.storage.accounts_at(addrs, self.at.as_deref())?)
        {
            self.accounts.insert(*addr, (acct, acct));
        }
        Ok(())
    }

    /// Room for `n` more entries, so a block's contract calls do not grow the map step by step.
    pub fn reserve_entries(&mut self, n: usize) {
        self.entries.reserve(n);
    }

    /// Current state of an account.
    pub fn account(&mut self, addr: &Address) -> Result<Account, StorageError> {
        if let Some((_, cur)) = self.accounts.get(addr) {
            return Ok(*cur);
        }
        let acct = self.peek_account(addr)?;
        self.accounts.insert(*addr, (acct, acct));
        Ok(acct)
    }

    /// Sets an account (after `account` loaded it).
    pub fn set_account(&mut self, addr: Address, acct: Account) {
        let slot = self.accounts.entry(addr).or_insert((acct, acct));
        self.journal.push(Undo::Account(addr, slot.1));
        slot.1 = acct;
    }

    /// Current value of a state entry.
    pub fn entry(&mut self, key: &EntryKey) -> Result<Option<Vec<u8>>, StorageError> {
        if let Some((_, cur)) = self.entries.get(key) {
            return Ok(cur.clone());
        }
        let v = self.peek_entry(key)?;
        self.entries.insert(key.clone(), (v.clone(), v.clone()));
        Ok(v)
    }

    /// Sets (or with `None` removes) a state entry; returns whether it had a value.
    pub fn set_entry(
        &mut self,
        key: EntryKey,
        value: Option<Vec<u8>>,
    ) -> Result<bool, StorageError> {
        let before = self.entry(&key)?;
        let existed = before.is_some();
        let slot = self.entries.get_mut(&key).expect("entry() loaded the slot");
        slot.1 = value;
        self.journal.push(Undo::Entry(key, before));
        Ok(existed)
    }

    /// A system entry holding one message, decoded (`what` names it in a corruption error);
    /// absent: the message's default.
    pub fn message<M: Message + Default>(
        &mut self,
        key: &EntryKey,
        what: &str,
    ) -> Result<M, StorageError> {
        match self.entry(key)? {
            None => Ok(M::default()),
            Some(b) => M::decode(b.as_slice()).map_err(|e| crate::storage::corrupt(what, e)),
        }
    }

    /// Stores `m` under `key`, or removes the entry when `empty` (nothing left to keep).
    pub fn set_message<M: Message>(
        &mut self,
        key: EntryKey,
        m: &M,
        empty: bool,
    ) -> Result<(), StorageError> {
        self.set_entry(key, (!empty).then(|| m.encode_to_vec()))?;
        Ok(())
    }

    /// The current record of the contract at `addr`.
    pub fn contract(&mut self, addr: &Address) -> Result<Option<ContractRecord>, StorageError> {
        self.entry(&EntryKey::contract(addr))?
            .map(|b| {
                ContractRecord::decode(b.as_slice()).map_err(|e| StorageError::Corrupt {
                    what: format!("contract {addr}"),
                    detail: e.to_string(),
                })
            })
            .transpose()
    }

    /// Forgets the undo journal: called between transactions, which are never undone.
    pub fn seal_transaction(&mut self) {
        self.journal.clear();
    }

    /// The changed accounts and entries (sorted) and the accumulator updated from `lthash`.
    #[allow(clippy::type_complexity)]
    pub fn finish(
        self,
        mut lthash: LtHash,
    ) -> (
        Vec<(Address, Account)>,
        Vec<(EntryKey, Option<Vec<u8>>)>,
        LtHash,
    ) {
        let changed_accounts: Vec<(Address, Account, Account)> = self
            .accounts
            .into_iter()
            .filter(|(_, (orig, cur))| orig != cur)
            .map(|(addr, (orig, cur))| (addr, orig, cur))
            .collect();
        let changed_entries: Vec<(EntryKey, Vec<u8>, EntrySlot)> = self
            .entries
            .into_iter()
            .filter(|(_, (orig, cur))| orig != cur)
            .map(|(key, slot)| {
                let state_key = key.state_key();
                (key, state_key, slot)
            })
            .collect();
        // What leaves the accumulator and what enters it. An empty account (balance 0,
        // nonce 0) is absent: not in the accumulator and not stored, whichever way it became
        // empty.
        let account_bytes: Vec<(&[u8], AccountBytes, AccountBytes)> = changed_accounts
            .iter()
            .map(|(addr, orig, cur)| (&addr.0[..], orig.to_bytes(), cur.to_bytes()))
            .collect();
        let mut removed: Vec<(&[u8], &[u8])> = Vec::new();
        let mut added: Vec<(&[u8], &[u8])> = Vec::new();
        for ((_, orig, cur), (key, orig_bytes, cur_bytes)) in
            changed_accounts.iter().zip(&account_bytes)
        {
            if !orig.is_empty() {
                removed.push((key, orig_bytes.as_ref()));
            }
            if !cur.is_empty() {
                added.push((key, cur_bytes.as_ref()));
            }
        }
        for (_, state_key, (orig, cur)) in &changed_entries {
            if let Some(o) = orig {
                removed.push((state_key, o));
            }
            if let Some(c) = cur {
                added.push((state_key, c));
            }
        }
        lthash.update(&removed, &added);
        let mut accounts: Vec<(Address, Account)> = changed_accounts
            .into_iter()
            .map(|(addr, _, cur)| (addr, cur))
            .collect();
        accounts.sort_unstable_by_key(|(a, _)| *a);
        let mut entries: Vec<(EntryKey, Option<Vec<u8>>)> = changed_entries
            .into_iter()
            .map(|(key, _, (_, cur))| (key, cur))
            .collect();
        entries.sort_unstable_by(|a, b| a.0.cmp(&b.0));
        (accounts, entries, lthash)
    }

    /// The key set of a keyed account at this point of the block (a keyed account without one
    /// is a corrupt state).
    pub fn key_set(
        &mut self,
        account: &Address,
    ) -> Result<quorate_proto::v1::KeySet, StorageError> {
        let what = || format!("key set of {account}");
        let bytes = self
            .entry(&EntryKey::key_set(account))?
            .ok_or_else(|| crate::storage::corrupt(what(), "missing"))?;
        quorate_proto::v1::KeySet::decode(bytes.as_slice())
            .map_err(|e| crate::storage::corrupt(what(), e))
    }
}

impl Backend for WorldState {
    type Error = StorageError;

    fn storage_get(
        &mut self,
        contract: &Address,
        key: &[u8],
    ) -> Result<Option<Vec<u8>>, StorageError> {
        self.entry(&EntryKey::storage(contract, key))
    }

    fn storage_set(
        &mut self,
        contract: &Address,
        key: &[u8],
        value: Option<&[u8]>,
    ) -> Result<bool, StorageError> {
        self.set_entry(EntryKey::storage(contract, key), value.map(<[u8]>::to_vec))
    }

    fn balance(&mut self, addr: &Address) -> Result<u64, StorageError> {
        let read = self.account(addr)?.balance;
        Ok(match &self.speculation {
            Some(s) => s.moves.balance_after(addr, read),
            None => read,
        })
    }

    fn transfer(
        &mut self,
        from: &Address,
        to: &Address,
        amount: u64,
    ) -> Result<bool, StorageError> {
        // Speculating: the balance as the run would see it, without making it a read.
        let seen = match self.speculation {
            Some(_) => Some(self.peek_account(from)?.balance),
            None => None,
        };
        if let (Some(seen), Some(s)) = (seen, self.speculation.as_mut()) {
            let moved = s.moves.transfer(*from, seen, *to, amount);
            if moved && from != to && amount > 0 {
                self.journal.push(Undo::Moved(*from, *to, amount));
            }
            return Ok(moved);
        }
        let mut source = self.account(from)?;
        if source.balance < amount {
            return Ok(false);
        }
        if from == to || amount == 0 {
            return Ok(true);
        }
        source.balance -= amount;
        self.set_account(*from, source);
        let mut dest = self.account(to)?;
        // Total supply fits in u64 (genesis checks it; fees only burn): no overflow.
        dest.balance = dest
            .balance
            .checked_add(amount)
            .expect("supply fits in u64");
        self.set_account(*to, dest);
        Ok(true)
    }

    fn key_acts_for(&mut self, account: &Address, key: &[u8; 32]) -> Result<bool, StorageError> {
        use quorate_proto::keyset::{class_of, threshold, weight_of, ActionKind};
        if !self.account(account)?.keyed {
            return Ok(Address::of_public_key(key) == *account);
        }
        let set = self.key_set(account)?;
        let needed = threshold(&set, class_of(&set, ActionKind::Call, 0));
        Ok(weight_of(&set, key).is_some_and(|w| w >= needed))
    }

    fn code_of(&mut self, addr: &Address) -> Result<Option<Hash32>, StorageError> {
        self.contract(addr)?.map(|r| r.code()).transpose()
    }

    fn checkpoint(&mut self) -> Checkpoint {
        Checkpoint(self.journal.len())
    }

    fn revert_to(&mut self, checkpoint: Checkpoint) {
        while self.journal.len() > checkpoint.0 {
            match self.journal.pop().expect("length checked") {
                Undo::Account(addr, prev) => {
                    if let Some(slot) = self.accounts.get_mut(&addr) {
                        slot.1 = prev;
                    }
                }
                Undo::Entry(key, prev) => {
                    if let Some(slot) = self.entries.get_mut(&key) {
                        slot.1 = prev;
                    }
                }
                Undo::Moved(from, to, amount) => {
                    if let Some(s) = self.speculation.as_mut() {
                        s.moves.undo(from, to, amount);
                    }
                }
            }
        }
    }
}
