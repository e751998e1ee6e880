//! The mempool: admitted transactions waiting for a block. Bounded in count and bytes,
//! deduplicated by hash, and ordered per account by nonce.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use tokio::time::Instant;

use quorate_proto::crypto::{Address, Hash32};
use quorate_proto::v1::KeySet;

use crate::storage::Account;
use crate::verified_tx::authority::authorize;
use crate::verified_tx::{AdmissionError, RejectionLog, VerifiedTx};

/// Mempool bounds.
#[derive(Clone, Debug)]
pub struct MempoolLimits {
    /// Most transactions held.
    pub max_txs: usize,
    /// Most bytes (sum of encoded sizes) held.
    pub max_bytes: usize,
    /// How far past an account's next nonce a transaction may be.
    pub nonce_window: u64,
}

struct Entry {
    tx: Arc<VerifiedTx>,
    seq: u64,
    cost: u128,
    arrived: Instant,
}

#[derive(Default)]
struct AccountQueue {
    /// Committed next nonce, as last seen.
    next_nonce: u64,
    /// Pending transactions by nonce.
    by_nonce: BTreeMap<u64, Hash32>,
    /// Sum of the pending transactions' maximum costs.
    cost: u128,
}

/// Pending transactions.
pub struct Mempool {
    limits: MempoolLimits,
    entries: HashMap<Hash32, Entry>,
    accounts: HashMap<Address, AccountQueue>,
    /// Arrival order: sequence number → hash.
    arrival: BTreeMap<u64, Hash32>,
    next_seq: u64,
    bytes: usize,
    /// Transactions of the decided block whose commit is being written: no longer pending
    /// (neither selected nor counted), still found by `get` until the commit is written.
    decided: HashMap<Hash32, Arc<VerifiedTx>>,
    /// The account nonces after that block (the storage still holds the ones before it).
    decided_nonces: HashMap<Address, u64>,
    /// Leaf → hash of the co-signed transactions held (pending or decided), whose leaf in a
    /// block's transaction root is not their hash.
    leaves: HashMap<Hash32, Hash32>,
    /// Why recently evicted transactions were dropped (bounded).
    evicted: RejectionLog,
}

/// How many eviction reasons the mempool remembers for status queries.
const EVICTIONS_KEPT: usize = 10_000;

impl Mempool {
    /// An empty mempool.
    pub fn new(limits: MempoolLimits) -> Self {
        Self {
            limits,
            entries: HashMap::new(),
            accounts: HashMap::new(),
            arrival: BTreeMap::new(),
            next_seq: 0,
            bytes: 0,
            decided: HashMap::new(),
            decided_nonces: HashMap::new(),
            leaves: HashMap::new(),
            evicted: RejectionLog::new(EVICTIONS_KEPT),
        }
    }

    /// Number of pending transactions.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// True when empty.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Sum of encoded sizes of pending transactions.
    pub fn bytes(&self) -> usize {
        self.bytes
    }

    /// When the longest-waiting pending transaction arrived.
    pub fn oldest_arrival(&self) -> Option<Instant> {
        self.arrival
            .values()
            .next()
            .map(|h| self.entries[h].arrived)
    }

    /// The pending transaction with `hash` (or one of a decided block still being written).
    pub fn get(&self, hash: &Hash32) -> Option<Arc<VerifiedTx>> {
        self.entries
            .get(hash)
            .map(|e| e.tx.clone())
            .or_else(|| self.decided.get(hash).cloned())
    }

    /// The pending (or decided) transaction whose leaf in a block's transaction root is
    /// `leaf`: the same copy the proposer holds, signing keys included.
    pub fn get_leaf(&self, leaf: &Hash32) -> Option<Arc<VerifiedTx>> {
        // A single-key transaction's leaf is its hash; a co-signed one is found by hash only
        // when this copy carries the same keys.
        let by_hash = self.get(leaf).filter(|t| t.leaf == *leaf);
        by_hash.or_else(|| {
            let hash = self.leaves.get(leaf)?;
            self.get(hash).filter(|t| t.leaf == *leaf)
        })
    }

    /// `committed`, or the account's nonce after the decided block being written.
    fn nonce_after_decided(&self, addr: &Address, committed: u64) -> u64 {
        self.decided_nonces
            .get(addr)
            .map_or(committed, |&n| n.max(committed))
    }

    /// The nonce an account's next new transaction should carry: past its pending ones.
    pub fn next_nonce(&self, addr: &Address, committed: u64) -> u64 {
        let committed = self.nonce_after_decided(addr, committed);
        let Some(q) = self.accounts.get(addr) else {
            return committed;
        };
        let mut n = committed.max(q.next_nonce);
        while q.by_nonce.contains_key(&n) {
            n += 1;
        }
        n
    }

    /// Inserts a verified transaction, given its signer's committed state. Checks replay,
    /// nonce window, duplicates, balance (with the signer's pending costs) and capacity.
    pub fn insert(
        &mut self,
        tx: Arc<VerifiedTx>,
        signer: Account,
        fuel_price: u64,
    ) -> Result<(), AdmissionError> {
        let account = tx.signer;
        let signer = Account {
            nonce: self.nonce_after_decided(&account, signer.nonce),
            ..signer
        };
        if tx.nonce < signer.nonce {
            return Err(AdmissionError::NonceUsed {
                account,
                nonce: tx.nonce,
                next: signer.nonce,
            });
        }
        if tx.nonce - signer.nonce >= self.limits.nonce_window {
            return Err(AdmissionError::NonceTooFar {
                account,
                nonce: tx.nonce,
                next: signer.nonce,
                window: self.limits.nonce_window,
            });
        }
        if self.entries.contains_key(&tx.hash) || self.decided.contains_key(&tx.hash) {
            return Err(AdmissionError::Duplicate(tx.hash));
        }
        let queue = self.accounts.get(&account);
        if let Some(other) = queue.and_then(|q| q.by_nonce.get(&tx.nonce)) {
            return Err(AdmissionError::NoncePending {
                account,
                nonce: tx.nonce,
                other: *other,
            });
        }
        let cost = tx.max_cost(fuel_price);
        let pending_cost = queue.map_or(0, |q| q.cost);
        if u128::from(signer.balance) < pending_cost + cost {
            return Err(AdmissionError::InsufficientBalance {
                account,
                balance: signer.balance,
                needed: pending_cost + cost,
                this_cost: cost,
                pending_cost,
            });
        }
        if self.entries.len() >= self.limits.max_txs
            || self.bytes + tx.encoded_len > self.limits.max_bytes
        {
            return Err(AdmissionError::MempoolFull {
                txs: self.entries.len(),
                bytes: self.bytes,
            });
        }
        let seq = self.next_seq;
        self.next_seq += 1;
        let q = self.accounts.entry(account).or_default();
        q.next_nonce = q.next_nonce.max(signer.nonce);
        q.by_nonce.insert(tx.nonce, tx.hash);
        q.cost += cost;
        if tx.leaf != tx.hash {
            self.leaves.insert(tx.leaf, tx.hash);
        }
        self.arrival.insert(seq, tx.hash);
        self.bytes += tx.encoded_len;
        self.entries.insert(
            tx.hash,
            Entry {
                tx,
                seq,
                cost,
                arrived: Instant::now(),
            },
        );
        Ok(())
    }

    /// Up to `max_txs` transactions within `max_bytes`, in arrival order, taking for each
    /// account only the run of consecutive nonces starting at its next committed nonce.
    pub fn select(&self, max_txs: usize, max_bytes: usize) -> Vec<Arc<VerifiedTx>> {
        let mut out = Vec::with_capacity(max_txs.min(self.entries.len()));
        let mut expected: HashMap<Address, u64> = HashMap::new();
        let mut bytes = 0usize;
        for hash in self.arrival.values() {
            if out.len() >= max_txs {
                break;
            }
            let e = &self.entries[hash];
            let next = expected
                .entry(e.tx.signer)
                .or_insert_with(|| self.accounts.get(&e.tx.signer).map_or(0, |q| q.next_nonce));
            if e.tx.nonce != *next || bytes + e.tx.encoded_len > max_bytes {
                continue;
            }
            *next += 1;
            bytes += e.tx.encoded_len;
            out.push(e.tx.clone());
        }
        // A lower nonce that arrived late unblocks the same account's earlier arrivals, which
        // the walk above skipped: take them now rather than a block later. Each account's run
        // continues from where the walk stopped, so nothing is taken twice.
        for (addr, next) in &mut expected {
            let Some(q) = self.accounts.get(addr) else {
                continue;
            };
            while let Some(h) = q.by_nonce.get(next) {
                let len = self.entries[h].tx.encoded_len;
                if out.len() >= max_txs || bytes + len > max_bytes {
                    break;
                }
                bytes += len;
                out.push(self.entries[h].tx.clone());
                *next += 1;
            }
        }
        out
    }

    fn remove(&mut self, hash: &Hash32) {
        if let Some(e) = self.entries.remove(hash) {
            // The decided copy keeps its leaf until the commit is written; the pending copy's
            // own leaf goes (issue 25: a block's copy may carry other signing keys).
            if self.decided.get(hash).is_none_or(|d| d.leaf != e.tx.leaf) {
                self.leaves.remove(&e.tx.leaf);
            }
            self.arrival.remove(&e.seq);
            self.bytes -= e.tx.encoded_len;
            if let Some(q) = self.accounts.get_mut(&e.tx.signer) {
                q.by_nonce.remove(&e.tx.nonce);
                q.cost -= e.cost;
                if q.by_nonce.is_empty() {
                    self.accounts.remove(&e.tx.signer);
                }
            }
        }
    }

    /// Drops transactions that can no longer be included.
    pub fn evict<'a>(&mut self, hashes: impl IntoIterator<Item = &'a Hash32>) {
        for h in hashes {
            self.remove(h);
        }
    }

    /// When a block is decided: its transactions stop being pending (kept aside until
    /// [`Mempool::on_commit`], so that status queries still find them while the commit is
    /// written) and those the new account nonces made stale are dropped. The next block is
    /// selected from what remains.
    pub fn on_decided(&mut self, decided: &[Arc<VerifiedTx>], changes: &[(Address, Account)]) {
        for tx in decided {
            if self.entries.contains_key(&tx.hash) {
                // Into `decided` first, so that `remove` keeps the leaf for `get_leaf`; the
                // block's copy is found by its own leaf.
                self.decided.insert(tx.hash, tx.clone());
                self.remove(&tx.hash);
                self.leaves.insert(tx.leaf, tx.hash);
            }
        }
        self.decided_nonces = changes.iter().map(|(a, acct)| (*a, acct.nonce)).collect();
        self.drop_stale(changes);
    }

    /// After a commit is written: drops the committed transactions (decided or still pending)
    /// and any that the new account nonces made stale.
    pub fn on_commit(&mut self, committed: &[Arc<VerifiedTx>], changes: &[(Address, Account)]) {
        for tx in committed {
            self.remove(&tx.hash);
        }
        for tx in self.decided.values() {
            self.leaves.remove(&tx.leaf);
        }
        self.decided.clear();
        self.decided_nonces.clear();
        self.drop_stale(changes);
    }

    /// The seed's invalidation processing: after a block changed the key sets `key_sets`,
    /// drops the pending transactions of those accounts whose signatures no longer carry the
    /// weight their action needs, and remembers why for status queries. Returns how many.
    pub fn evict_unauthorized(&mut self, key_sets: &[(Address, KeySet)]) -> usize {
        let mut dropped = Vec::new();
        for (addr, set) in key_sets {
            let Some(q) = self.accounts.get(addr) else {
                continue;
            };
            for hash in q.by_nonce.values() {
                let tx = &self.entries[hash].tx;
                if let Err(e) = authorize(tx, Some(set)) {
                    dropped.push((*hash, e));
                }
            }
        }
        let n = dropped.len();
        for (hash, why) in dropped {
            self.remove(&hash);
            self.evicted.record(hash, why.into());
        }
        n
    }

    /// Why `hash` was evicted after a key-set change, if it was recently.
    pub fn eviction(&self, hash: &Hash32) -> Option<AdmissionError> {
        self.evicted.get(hash)
    }

    /// Drops the transactions whose nonce `changes` used up.
    fn drop_stale(&mut self, changes: &[(Address, Account)]) {
        for (addr, acct) in changes {
            let stale: Vec<Hash32> = match self.accounts.get_mut(addr) {
                None => continue,
                Some(q) => {
                    q.next_nonce = q.next_nonce.max(acct.nonce);
                    q.by_nonce.range(..acct.nonce).map(|(_, h)| *h).collect()
                }
            };
            for h in stale {
                self.remove(&h);
            }
        }
        debug_assert_eq!(self.arrival.len(), self.entries.len());
    }
}

#[cfg(test)]
mod tests;
