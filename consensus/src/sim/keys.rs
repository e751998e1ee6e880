//! The simulator's signature scheme: a keyed blake3 hash per validator. Cheap enough for
//! thousands of schedules, and unforgeable by the simulated Byzantine validators, which are
//! only ever handed their own key.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use super::sets::SetSchedule;
use crate::types::{Signable, Signature, Signer, ValidatorIndex, Verifier, VoteKind};

fn key_of(v: ValidatorIndex) -> [u8; 32] {
    blake3::derive_key("quorate/sim/validator-key", &v.to_le_bytes())
}

fn encode(what: Signable<'_>) -> Vec<u8> {
    let mut m = Vec::with_capacity(64);
    match what {
        Signable::Proposal(p) => {
            m.push(0);
            m.extend_from_slice(&p.height.to_le_bytes());
            m.extend_from_slice(&p.round.to_le_bytes());
            m.extend_from_slice(&p.block.0);
            m.extend_from_slice(&p.pol_round.map_or(u64::MAX, u64::from).to_le_bytes());
        }
        Signable::Vote(v) => {
            m.push(match v.kind {
                VoteKind::Prevote => 1,
                VoteKind::Precommit => 2,
            });
            m.extend_from_slice(&v.height.to_le_bytes());
            m.extend_from_slice(&v.round.to_le_bytes());
            match v.block {
                Some(b) => {
                    m.push(1);
                    m.extend_from_slice(&b.0);
                }
                None => m.push(0),
            }
        }
    }
    m
}

/// One simulated validator's signing key.
#[derive(Clone)]
pub struct SimSigner {
    key: [u8; 32],
}

impl SimSigner {
    /// The key of simulated node `v` (validator `v` when the set never changes).
    pub fn new(v: ValidatorIndex) -> Self {
        Self { key: key_of(v) }
    }
}

impl Signer for SimSigner {
    fn sign(&self, what: Signable<'_>) -> Signature {
        Signature(
            blake3::keyed_hash(&self.key, &encode(what))
                .as_bytes()
                .to_vec(),
        )
    }
}

/// Checks simulated signatures against the set deciding each message's height, as one host
/// knows it (the changes decided by the blocks it committed).
#[derive(Clone)]
pub struct SimVerifier {
    sets: Arc<SetSchedule>,
    known: Arc<AtomicU64>,
}

impl SimVerifier {
    /// A verifier for validators `0..n`, no set change.
    pub fn new(n: u32) -> Self {
        Self::with_sets(
            Arc::new(SetSchedule::fixed(n)),
            Arc::new(AtomicU64::new(u64::MAX)),
        )
    }

    /// A verifier following `sets` as far as `known` heights are committed.
    pub fn with_sets(sets: Arc<SetSchedule>, known: Arc<AtomicU64>) -> Self {
        Self { sets, known }
    }
}

impl Verifier for SimVerifier {
    fn verify(&self, validator: ValidatorIndex, what: Signable<'_>, signature: &Signature) -> bool {
        let known = self.known.load(Ordering::Relaxed);
        let members = self.sets.members_at(what.height(), known);
        members.get(validator as usize).is_some_and(|&node| {
            signature.0.as_slice() == blake3::keyed_hash(&key_of(node), &encode(what)).as_bytes()
        })
    }
}
