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
        AdminAction::SetTrustedDeployer(..) | AdminAction::SetAdmin(_) => {
            return Ok(schedule.clone())
        }
    }
    ValidatorSet::from_entries(&next)?;
    let effective = height + delay;
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
mod tests {
    use super::*;
    use quorate_proto::Keypair;

    fn entry(i: u8) -> ValidatorEntry {
        ValidatorEntry {
            public_key: Keypair::from_secret(&[i; 32]).public().0.to_vec().into(),
            name: format!("v{i}"),
        }
    }

    fn key(i: u8) -> PublicKey {
        Keypair::from_secret(&[i; 32]).public()
    }

    #[test]
    fn changes_compose_take_effect_later_and_old_sets_are_dropped() {
        let s0 = genesis_schedule((1..=4).map(entry).collect());
        let s1 = change_schedule(&s0, &AdminAction::AddValidator(entry(5)), 10, 5).expect("holds");
        assert_eq!(s1.sets.len(), 2);
        assert_eq!(s1.sets[1].from_height, 15);
        assert_eq!(s1.sets[1].validators.len(), 5);
        // A second change in the same block builds on the first.
        let s2 = change_schedule(&s1, &AdminAction::RemoveValidator(key(1)), 10, 5).expect("holds");
        assert_eq!(s2.sets.len(), 2);
        assert_eq!(
            s2.sets[1].validators,
            vec![entry(2), entry(3), entry(4), entry(5)]
        );
        // Once the change is in force, the genesis set is dropped at the next change.
        let s3 = change_schedule(&s2, &AdminAction::ReplaceValidator(key(2), entry(6)), 20, 5)
            .expect("holds");
        assert_eq!(
            s3.sets.iter().map(|s| s.from_height).collect::<Vec<_>>(),
            vec![15, 25]
        );
        assert_eq!(s3.sets[1].validators[0], entry(6));

        let sets = ValidatorSets::new((1..=4).map(entry).collect(), [], &s3).expect("holds");
        assert_eq!(sets.at(14).set.len(), 4);
        assert_eq!(sets.at(15).set.keys()[0], key(2));
        assert_eq!(sets.at(25).set.keys()[0], key(6));
        assert_eq!(sets.after(20).len(), 1);
        assert!(sets.members_from(15).contains(&key(6)));
        assert!(!sets.members_from(15).contains(&key(1)));
    }

    #[test]
    fn refused_changes_change_nothing() {
        let s0 = genesis_schedule(vec![entry(1)]);
        let remove = AdminAction::RemoveValidator(key(1));
        assert!(matches!(
            change_schedule(&s0, &remove, 3, 3),
            Err(SetChangeRefused::Set(SetChangeError::Size(0)))
        ));
        assert_eq!(
            change_schedule(&s0, &AdminAction::AddValidator(entry(1)), 3, 3),
            Err(SetChangeRefused::AlreadyMember(key(1).to_hex()))
        );
        assert_eq!(
            change_schedule(&s0, &AdminAction::RemoveValidator(key(2)), 3, 3),
            Err(SetChangeRefused::NotMember(key(2).to_hex()))
        );
        let s1 = change_schedule(&s0, &AdminAction::AddValidator(entry(2)), 3, 3).expect("holds");
        assert_eq!(
            change_schedule(&s1, &AdminAction::ReplaceValidator(key(1), entry(2)), 3, 3),
            Err(SetChangeRefused::AlreadyMember(key(2).to_hex()))
        );
    }

    /// Through a real chain: an admin replacement of the only validator is recorded with its
    /// proof, named by the header of the height before it, enforced on certificates from its
    /// height on, kept across a restart; refused changes leave a receipt and change nothing.
    #[test]
    fn a_replacement_is_proven_enforced_and_survives_a_restart() {
        use crate::testutil::TestChain;
        use quorate_proto::certificate::follow_set_changes;
        use quorate_proto::v1::{
            admin, tx_body::Payload as Wire, Admin, ExecStatus, ReplaceValidator,
        };

        let t = TestChain::new(3);
        let old = t.validator.clone();
        let new = Keypair::from_secret(&[42; 32]);
        let genesis_set = t.chain.info().validators.clone();
        let admin_tx = |from: usize, nonce: u64, action: admin::Action| {
            t.signed(
                from,
                nonce,
                10_000,
                Wire::Admin(Admin {
                    action: Some(action),
                }),
            )
        };
        let replace = admin::Action::ReplaceValidator(ReplaceValidator {
            old_key: old.public().0.to_vec().into(),
            new: Some(ValidatorEntry {
                public_key: new.public().0.to_vec().into(),
                name: "moved".into(),
            }),
        });
        // Refused: not the admin; removing the only validator; adding one already there.
        let not_admin = admin_tx(1, 0, replace.clone());
        let empty = admin_tx(
            0,
            0,
            admin::Action::RemoveValidator(old.public().0.to_vec().into()),
        );
        let dup = admin_tx(
            0,
            1,
            admin::Action::AddValidator(ValidatorEntry {
                public_key: old.public().0.to_vec().into(),
                name: String::new(),
            }),
        );
        t.admit_ok(vec![empty.clone(), dup.clone()]);
        t.produce().expect("block");
        for (tx, status) in [(&empty, ExecStatus::BadInput), (&dup, ExecStatus::BadInput)] {
            assert_eq!(t.receipt(tx).status, status as i32, "{:?}", t.receipt(tx));
        }
        assert!(t.admission.admit(vec![not_admin]).expect("admit")[0]
            .result
            .is_err());
        assert!(
            t.chain.sets().after(1).is_empty(),
            "a refused change changed the set"
        );

        let tx = admin_tx(0, 2, replace);
        t.admit_ok(vec![tx.clone()]);
        let decided = t.produce().expect("block").height;
        assert_eq!(t.receipt(&tx).status, ExecStatus::Success as i32);
        let effective = decided + t.chain.info().params.validator_set_delay;
        assert_eq!(t.chain.sets().after(decided)[0].from_height, effective);

        // Blocks up to the change, signed by the old key; each names the next height's set.
        let mut nonce = 0;
        let mut step = |key: &Keypair| {
            t.admit_ok(vec![t.transfer(1, t.addr(2), 1, nonce)]);
            nonce += 1;
            let candidates = t.mempool.lock().select(10, 1 << 20);
            let (block, _) = t
                .chain
                .propose(candidates, key.public().0, 1)
                .expect("propose");
            let cert = t.chain.solo_certificate(key, 0, &block);
            (block, cert)
        };
        while t.chain.head().height + 1 < effective {
            let (block, cert) = step(&old);
            let next = if block.header.height + 1 == effective {
                ValidatorSet::new(vec![new.public()]).hash()
            } else {
                genesis_set.hash()
            };
            assert_eq!(block.header.next_validators_hash.as_ref(), next.0);
            t.chain.commit(&block, &cert).expect("commit");
            t.mempool.lock().on_commit(&block.txs, &block.changes);
        }
        // At the change: the old key's certificate is refused, the new key's accepted.
        let (block, old_cert) = step(&old);
        assert!(t.chain.commit(&block, &old_cert).is_err());
        let (block, new_cert) = step(&new);
        t.chain
            .commit(&block, &new_cert)
            .expect("commit by the new key");

        let changes = t.chain.storage().set_changes().expect("changes");
        assert_eq!(changes.len(), 1);
        assert_eq!(changes[0].height, effective);
        let chain_id = &t.chain.info().chain_id;
        let proven =
            follow_set_changes(chain_id, &genesis_set, &changes, effective).expect("holds");
        assert_eq!(proven.keys(), &[new.public()]);
        let t = t.reopen();
        assert_eq!(t.chain.sets().at(effective).set.keys(), &[new.public()]);
        assert_eq!(t.chain.sets().at(effective - 1).set, genesis_set);
    }

    /// A signature found good once is not verified again; a bad one is never remembered, nor
    /// answered from a good one's memory; memory is bounded to two generations.
    #[test]
    fn good_signatures_are_verified_once_and_bad_ones_every_time() {
        let v = VerifiedSignatures::default();
        let k = Keypair::from_secret(&[7; 32]);
        let sig = k.sign(b"prevote");
        assert!(v.verify(&k.public(), b"prevote", &sig));
        assert!(v.verify(&k.public(), b"prevote", &sig));
        assert_eq!(v.verifications(), 1, "the second check verified again");
        let mut forged = sig;
        forged[5] ^= 1;
        assert!(!v.verify(&k.public(), b"prevote", &forged));
        assert!(!v.verify(&k.public(), b"prevote", &forged));
        assert!(!v.verify(&key(8), b"prevote", &sig), "another key");
        assert!(
            !v.verify(&k.public(), b"precommit", &sig),
            "another message"
        );
        assert_eq!(
            v.verifications(),
            5,
            "a bad signature was answered from memory"
        );
        for i in 0..(2 * VERIFIED_GENERATION + 10) as u64 {
            let m = i.to_le_bytes();
            assert!(v.verify(&k.public(), &m, &k.sign(&m)));
        }
        assert!(v.remembered() <= 2 * VERIFIED_GENERATION);
        let before = v.verifications();
        assert!(v.verify(&k.public(), b"prevote", &sig));
        assert_eq!(
            v.verifications(),
            before + 1,
            "the oldest generation was kept"
        );
    }
}
