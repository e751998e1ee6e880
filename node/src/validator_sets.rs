//! Validator sets over a chain's heights: the genesis set, the changes in force since (each
//! proven by a certified header, kept for clients and joining nodes) and the changes decided
//! and not yet in force (the `validators` state entry). What decides a height, who signs its
//! certificate, and who may connect all follow from here.

use std::sync::Arc;

use parking_lot::RwLock;
use quorate_proto::certificate::{SetChangeError, ValidatorSet};
use quorate_proto::crypto::{Hash32, PublicKey};
use quorate_proto::v1::{ScheduledSet, ValidatorEntry, ValidatorSchedule};

use crate::verified_tx::AdminAction;

/// One validator set with what is derived from it once.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SetInfo {
    /// First height it decides.
    pub from_height: u64,
    /// Keys in index order.
    pub set: ValidatorSet,
    /// Keys and names as the state lists them.
    pub entries: Vec<ValidatorEntry>,
    /// `validator_set_hash` of the keys.
    pub hash: Hash32,
}

impl SetInfo {
    /// The set of `entries` deciding heights from `from_height` on.
    pub fn new(from_height: u64, entries: Vec<ValidatorEntry>) -> Result<Self, SetChangeError> {
        let set = ValidatorSet::from_entries(&entries)?;
        Ok(Self {
            from_height,
            hash: set.hash(),
            set,
            entries,
        })
    }
}

/// The sets of one chain, as far as its committed state knows them.
#[derive(Debug)]
pub struct ValidatorSets {
    /// Sets by first height, increasing; the first is the genesis set (from height 1).
    sets: RwLock<Vec<Arc<SetInfo>>>,
    /// Consensus signatures found good against these sets' keys.
    verified: VerifiedSignatures,
}

impl ValidatorSets {
    /// Sets from the genesis set, the changes in force (oldest first) and the committed
    /// schedule (whose sets at or below a later change are already among them).
    pub fn new(
        genesis: Vec<ValidatorEntry>,
        in_force: impl IntoIterator<Item = (u64, Vec<ValidatorEntry>)>,
        schedule: &ValidatorSchedule,
    ) -> Result<Self, SetChangeError> {
        let this = Self {
            sets: RwLock::new(vec![Arc::new(SetInfo::new(1, genesis)?)]),
            verified: VerifiedSignatures::default(),
        };
        for (height, entries) in in_force {
            this.push(SetInfo::new(height, entries)?);
        }
        this.follow(schedule)?;
        Ok(this)
    }

    /// One set for every height (tests, tools).
    pub fn fixed(set: &ValidatorSet) -> Self {
        let entries = set
            .keys()
            .iter()
            .map(|k| ValidatorEntry {
                public_key: k.0.to_vec().into(),
                name: String::new(),
            })
            .collect();
        Self {
            sets: RwLock::new(vec![Arc::new(SetInfo {
                from_height: 1,
                set: set.clone(),
                entries,
                hash: set.hash(),
            })]),
            verified: VerifiedSignatures::default(),
        }
    }

    /// Consensus signatures found good against these sets' keys.
    pub fn verified(&self) -> &VerifiedSignatures {
        &self.verified
    }

    fn push(&self, info: SetInfo) {
        let mut sets = self.sets.write();
        let last = sets.last().expect("never empty");
        if info.from_height > last.from_height && info.hash != last.hash {
            sets.push(Arc::new(info));
        } else if info.from_height == last.from_height {
            *sets.last_mut().expect("never empty") = Arc::new(info);
        }
    }

    /// Takes in the sets a newly committed schedule lists (after a block that changed it).
    pub fn follow(&self, schedule: &ValidatorSchedule) -> Result<(), SetChangeError> {
        for s in &schedule.sets {
            self.push(SetInfo::new(s.from_height, s.validators.clone())?);
        }
        Ok(())
    }

    /// The set deciding `height` (for heights beyond those the committed state knows, the
    /// latest it knows).
    pub fn at(&self, height: u64) -> Arc<SetInfo> {
        let sets = self.sets.read();
        sets.iter()
            .rev()
            .find(|s| s.from_height <= height)
            .unwrap_or(&sets[0])
            .clone()
    }

    /// Sets that decide heights above `height`, first height increasing.
    pub fn after(&self, height: u64) -> Vec<Arc<SetInfo>> {
        self.sets
            .read()
            .iter()
            .filter(|s| s.from_height > height)
            .cloned()
            .collect()
    }

    /// Every key of a set deciding `height` or an earlier height that decides none from
    /// `height` on: the validators this node knows to have left.
    pub fn retired_at(&self, height: u64) -> Vec<PublicKey> {
        // Linear in the keys of every set known (sets are kept from genesis on).
        let members: std::collections::HashSet<PublicKey> =
            self.members_from(height).into_iter().collect();
        let mut seen = std::collections::HashSet::new();
        let mut keys: Vec<PublicKey> = Vec::new();
        for s in self.sets.read().iter().filter(|s| s.from_height <= height) {
            for k in s.set.keys() {
                if !members.contains(k) && seen.insert(*k) {
                    keys.push(*k);
                }
            }
        }
        keys
    }

    /// Every key that decides `height` or a later height: who may connect as a validator.
    pub fn members_from(&self, height: u64) -> Vec<PublicKey> {
        let current = self.at(height);
        let mut keys: Vec<PublicKey> = current.set.keys().to_vec();
        for s in self.after(height) {
            for k in s.set.keys() {
                if !keys.contains(k) {
                    keys.push(*k);
                }
            }
        }
        keys
    }
}

/// Why an admin transaction cannot change the set (its receipt says so; nothing changes).
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SetChangeRefused {
    /// The key to add is already a validator.
    #[error("{0} is already a validator")]
    AlreadyMember(String),
    /// The key to remove or replace is not a validator.
    #[error("{0} is not a validator")]
    NotMember(String),
    /// The set would be empty or too large.
    #[error(transparent)]
    Set(#[from] SetChangeError),
}

/// The schedule after `action`, decided by the block at `height`: the change applies to the
/// latest set decided (so several changes compose) and comes into force at `height + delay`;
/// sets no height above `height` is decided by any more are dropped.
pub fn change_schedule(
    schedule: &ValidatorSchedule,
    action: &AdminAction,
    height: u64,
    delay: u64,
) -> Result<ValidatorSchedule, SetChangeRefused> {
    let latest = schedule
        .sets
        .last()
        .map(|s| s.validators.clone())
        .unwrap_or_default();
    // Keys are checked by admission and again by `from_entries` below.
    let position = |key: &[u8]| latest.iter().position(|e| e.public_key.as_ref() == key);
    let mut next = latest.clone();
    match action {
        AdminAction::AddValidator(entry) => {
            if position(&entry.public_key).is_some() {
                return Err(SetChangeRefused::AlreadyMember(hex::encode(
                    &entry.public_key,
                )));
            }
            next.push(entry.clone());
        }
        AdminAction::RemoveValidator(key) => {
            let i = position(&key.0).ok_or_else(|| SetChangeRefused::NotMember(key.to_hex()))?;
            next.remove(i);
        }
        AdminAction::ReplaceValidator(old, entry) => {
            let i = position(&old.0).ok_or_else(|| SetChangeRefused::NotMember(old.to_hex()))?;
            if position(&entry.public_key).is_some_and(|j| j != i) {
                return Err(SetChangeRefused::AlreadyMember(hex::encode(
                    &entry.public_key,
                )));
            }
            next[i] = entry.clone();
        }
        AdminAction::SetTrustedDeployer(..)
        | AdminAction::SetAdmin(_)
        | AdminAction::SetPolicy(_)
        | AdminAction::SetParams(_)
        | AdminAction::UpgradeContract { .. }
        | AdminAction::ActivateProtocol { .. } => return Ok(schedule.clone()),
    }
    ValidatorSet::from_entries(&next)?;
    // Never before a change already decided (governance may shorten the delay, ADR 0017).
    let effective = (height + delay).max(schedule.sets.last().map_or(0, |s| s.from_height));
    let mut sets = schedule.sets.clone();
    match sets.last_mut() {
        Some(last) if last.from_height == effective => last.validators = next,
        _ => sets.push(ScheduledSet {
            from_height: effective,
            validators: next,
        }),
    }
    // Keep the set deciding `height + 1` and every later one.
    let keep_from = sets
        .iter()
        .rposition(|s| s.from_height <= height + 1)
        .unwrap_or(0);
    sets.drain(..keep_from);
    Ok(ValidatorSchedule { sets })
}

/// The schedule a chain starts with: the genesis set from height 1.
pub fn genesis_schedule(genesis: Vec<ValidatorEntry>) -> ValidatorSchedule {
    ValidatorSchedule {
        sets: vec![ScheduledSet {
            from_height: 1,
            validators: genesis,
        }],
    }
}

/// Digests remembered per generation of [`VerifiedSignatures`].
const VERIFIED_GENERATION: usize = 4096;

/// Consensus signatures this node found good, by a digest of key, message and signature: the
/// network task verifies every gossiped proposal and vote before it queues or forwards it, and
/// the consensus core verifies it again; the second answer comes from here instead of a second
/// ed25519 verification. Only good signatures are remembered, at most two generations of
/// [`VERIFIED_GENERATION`] digests.
#[derive(Default)]
pub struct VerifiedSignatures {
    generations: parking_lot::Mutex<[std::collections::HashSet<[u8; 32]>; 2]>,
    /// ed25519 verifications done (those answered from memory are not counted).
    verifications: std::sync::atomic::AtomicU64,
}

impl std::fmt::Debug for VerifiedSignatures {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VerifiedSignatures")
            .field("remembered", &self.remembered())
            .field("verifications", &self.verifications())
            .finish()
    }
}

impl VerifiedSignatures {
    /// Whether `signature` by `key` over `message` verifies.
    pub fn verify(&self, key: &quorate_proto::PublicKey, message: &[u8], signature: &[u8]) -> bool {
        let mut h = blake3::Hasher::new();
        h.update(&key.0);
        h.update(&(message.len() as u64).to_le_bytes());
        h.update(message);
        h.update(signature);
        let digest = *h.finalize().as_bytes();
        {
            let g = self.generations.lock();
            if g[0].contains(&digest) || g[1].contains(&digest) {
                return true;
            }
        }
        self.verifications
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        if !key.verify(message, signature) {
            return false;
        }
        let mut g = self.generations.lock();
        if g[0].len() >= VERIFIED_GENERATION {
            g[1] = std::mem::take(&mut g[0]);
        }
        g[0].insert(digest);
        true
    }

    /// ed25519 verifications done so far.
    pub fn verifications(&self) -> u64 {
        self.verifications
            .load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Digests remembered.
    pub fn remembered(&self) -> usize {
        let g = self.generations.lock();
        g[0].len() + g[1].len()
    }
}

#[cfg(test)]
mod tests;
