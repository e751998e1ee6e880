//! The simulator's signature scheme: a keyed blake3 hash per validator. Cheap enough for
//! thousands of schedules, and unforgeable by the simulated Byzantine validators, which are
//! only ever handed their own key.

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
    /// The key of validator `v`.
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

/// Checks simulated signatures of a validator set of size `n`.
#[derive(Clone)]
pub struct SimVerifier {
    keys: Vec<[u8; 32]>,
}

impl SimVerifier {
    /// A verifier for validators `0..n`.
    pub fn new(n: u32) -> Self {
        Self {
            keys: (0..n).map(key_of).collect(),
        }
    }
}

impl Verifier for SimVerifier {
    fn verify(&self, validator: ValidatorIndex, what: Signable<'_>, signature: &Signature) -> bool {
        self.keys.get(validator as usize).is_some_and(|k| {
            signature.0.as_slice() == blake3::keyed_hash(k, &encode(what)).as_bytes()
        })
    }
}
