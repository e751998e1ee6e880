//! Validator sets, the commit message validators sign, and commit certificate checks.

use std::collections::HashSet;

use prost::Message;

use crate::crypto::{verify_batch, Hash32, PublicKey, VerifyItem};
use crate::v1::{
    BlockHeader, CommitCertificate, CommitSignature, ValidatorEntry, ValidatorSetChange,
};

/// Domain separation tag for commit votes.
pub const COMMIT_SIGN_DOMAIN: &[u8] = b"quorate/v1/commit\0";

/// Domain separation tag of a validator set's hash.
pub const VALIDATOR_SET_DOMAIN: &[u8] = b"quorate/v1/validators\0";

/// Most validators a set may hold (genesis or after a change).
pub const MAX_VALIDATORS: usize = 64;

/// The ordered validator set in force at some height (the genesis set, or one a set change
/// brought in).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ValidatorSet {
    keys: Vec<PublicKey>,
}

impl ValidatorSet {
    /// A validator set; order is the genesis order and defines validator indices.
    pub fn new(keys: Vec<PublicKey>) -> Self {
        Self { keys }
    }

    /// Number of validators `n`.
    pub fn len(&self) -> usize {
        self.keys.len()
    }

    /// True when there are no validators (never valid for a chain).
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// The validators' public keys in index order.
    pub fn keys(&self) -> &[PublicKey] {
        &self.keys
    }

    /// Index of `key` in the set.
    pub fn index_of(&self, key: &PublicKey) -> Option<u32> {
        self.keys
            .iter()
            .position(|k| k == key)
            .and_then(|i| u32::try_from(i).ok())
    }

    /// Most Byzantine validators tolerated: `f = ⌊(n − 1) / 3⌋`.
    pub fn max_faulty(&self) -> usize {
        self.keys.len().saturating_sub(1) / 3
    }

    /// Signatures needed for a certificate: `⌊2n/3⌋ + 1` (2f+1 when n = 3f+1).
    pub fn quorum(&self) -> usize {
        self.keys.len() * 2 / 3 + 1
    }

    /// The set's hash, as block headers carry it in `next_validators_hash`.
    pub fn hash(&self) -> Hash32 {
        validator_set_hash(&self.keys)
    }

    /// The set of `entries`' keys, in order, checked: 1 to [`MAX_VALIDATORS`] valid keys, no
    /// key twice.
    pub fn from_entries(entries: &[ValidatorEntry]) -> Result<Self, SetChangeError> {
        if entries.is_empty() || entries.len() > MAX_VALIDATORS {
            return Err(SetChangeError::Size(entries.len()));
        }
        let mut keys = Vec::with_capacity(entries.len());
        for e in entries {
            let key = PublicKey::from_slice(&e.public_key)
                .map_err(|_| SetChangeError::BadKey(hex::encode(&e.public_key)))?;
            if keys.contains(&key) {
                return Err(SetChangeError::DuplicateKey(key.to_hex()));
            }
            keys.push(key);
        }
        Ok(Self { keys })
    }
}

/// blake3 over the domain tag, the number of keys (u32, big endian) and each 32-byte key in
/// index order. Names are labels and not covered.
pub fn validator_set_hash(keys: &[PublicKey]) -> Hash32 {
    let mut h = blake3::Hasher::new();
    h.update(VALIDATOR_SET_DOMAIN);
    h.update(&(keys.len() as u32).to_be_bytes());
    for k in keys {
        h.update(&k.0);
    }
    Hash32(*h.finalize().as_bytes())
}

/// Why a chain of validator set changes does not prove a set.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SetChangeError {
    /// A set must hold 1 to [`MAX_VALIDATORS`] validators.
    #[error("a validator set of {0} (1 to {MAX_VALIDATORS} allowed)")]
    Size(usize),
    /// Not a valid ed25519 public key.
    #[error("validator key {0} is not a valid ed25519 public key")]
    BadKey(String),
    /// The same key twice in one set.
    #[error("validator key {0} appears twice in one set")]
    DuplicateKey(String),
    /// Changes must come in increasing height order, each after height 1.
    #[error("set change at height {height} does not follow the one at {previous}")]
    Order {
        /// The change's height.
        height: u64,
        /// The previous change's (1 for genesis).
        previous: u64,
    },
    /// The header does not decode or is not that of `height - 1` on this chain.
    #[error("set change at height {height}: {reason}")]
    Header {
        /// The change's height.
        height: u64,
        /// What is wrong.
        reason: String,
    },
    /// The header's certificate does not hold against the set in force before the change.
    #[error("set change at height {height}: certificate of its header: {source}")]
    Certificate {
        /// The change's height.
        height: u64,
        /// Why.
        source: CertificateError,
    },
    /// The header names another set than the one the change carries.
    #[error(
        "set change at height {height}: the header names set {named}, the change carries {carried}"
    )]
    WrongSet {
        /// The change's height.
        height: u64,
        /// Hash in the header.
        named: String,
        /// Hash of the set carried.
        carried: String,
    },
}

/// Follows `changes` (oldest first) from the `genesis` set and returns the set in force at
/// `height`: each change is proven by the header of the height before it, certified by the set
/// in force there, naming the new set's hash. Changes above `height` are ignored.
pub fn follow_set_changes(
    chain_id: &str,
    genesis: &ValidatorSet,
    changes: &[ValidatorSetChange],
    height: u64,
) -> Result<ValidatorSet, SetChangeError> {
    let mut set = genesis.clone();
    let mut previous = 1;
    for change in changes.iter().take_while(|c| c.height <= height) {
        let h = change.height;
        if h <= previous {
            return Err(SetChangeError::Order {
                height: h,
                previous,
            });
        }
        let header =
            BlockHeader::decode(change.header.as_ref()).map_err(|e| SetChangeError::Header {
                height: h,
                reason: format!("header does not decode: {e}"),
            })?;
        if header.height != h - 1 || header.chain_id != chain_id {
            return Err(SetChangeError::Header {
                height: h,
                reason: format!(
                    "header of height {} on chain {:?}, expected {} on {chain_id:?}",
                    header.height,
                    header.chain_id,
                    h - 1
                ),
            });
        }
        let cert = change
            .certificate
            .as_ref()
            .ok_or_else(|| SetChangeError::Header {
                height: h,
                reason: "no certificate".into(),
            })?;
        verify_certificate(cert, chain_id, &set, h - 1, &Hash32::of(&change.header))
            .map_err(|source| SetChangeError::Certificate { height: h, source })?;
        let next = ValidatorSet::from_entries(&change.validators)?;
        let named = header.next_validators_hash.as_ref();
        if named != next.hash().0 {
            return Err(SetChangeError::WrongSet {
                height: h,
                named: hex::encode(named),
                carried: next.hash().to_hex(),
            });
        }
        set = next;
        previous = h;
    }
    Ok(set)
}

/// The bytes a validator signs to commit `block_hash` at `height` and `round` on `chain_id`.
pub fn commit_message(chain_id: &str, height: u64, round: u32, block_hash: &Hash32) -> Vec<u8> {
    let mut m = Vec::with_capacity(COMMIT_SIGN_DOMAIN.len() + 2 + chain_id.len() + 8 + 4 + 32);
    m.extend_from_slice(COMMIT_SIGN_DOMAIN);
    // chain_id is bounded by genesis validation to fit in u16.
    m.extend_from_slice(&(chain_id.len() as u16).to_be_bytes());
    m.extend_from_slice(chain_id.as_bytes());
    m.extend_from_slice(&height.to_be_bytes());
    m.extend_from_slice(&round.to_be_bytes());
    m.extend_from_slice(&block_hash.0);
    m
}

/// Why a commit certificate does not prove a block final.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum CertificateError {
    /// Certifies another block or height than the one checked.
    #[error("certificate is for height {cert_height} block {cert_hash}, expected height {height} block {hash}")]
    WrongBlock {
        /// Height in the certificate.
        cert_height: u64,
        /// Block hash in the certificate.
        cert_hash: String,
        /// Height checked.
        height: u64,
        /// Block hash checked.
        hash: String,
    },
    /// A validator index outside the set.
    #[error("validator index {index} is outside the set of {n}")]
    UnknownValidator {
        /// The index.
        index: u32,
        /// Size of the set.
        n: usize,
    },
    /// The same validator signed twice.
    #[error("validator {0} appears twice")]
    DuplicateValidator(u32),
    /// A signature does not verify.
    #[error("signature of validator {0} does not verify")]
    BadSignature(u32),
    /// Fewer signatures than the quorum.
    #[error("{got} signatures; {needed} of {n} validators needed")]
    NoQuorum {
        /// Valid distinct signatures.
        got: usize,
        /// Quorum.
        needed: usize,
        /// Set size.
        n: usize,
    },
}

/// Checks that `cert` carries a quorum of valid, distinct validator signatures over
/// `block_hash` at `height`.
pub fn verify_certificate(
    cert: &CommitCertificate,
    chain_id: &str,
    validators: &ValidatorSet,
    height: u64,
    block_hash: &Hash32,
) -> Result<(), CertificateError> {
    if cert.height != height || cert.block_hash.as_ref() != block_hash.0 {
        return Err(CertificateError::WrongBlock {
            cert_height: cert.height,
            cert_hash: hex::encode(&cert.block_hash),
            height,
            hash: block_hash.to_hex(),
        });
    }
    let mut seen = HashSet::with_capacity(cert.signatures.len());
    for s in &cert.signatures {
        if s.validator_index as usize >= validators.len() {
            return Err(CertificateError::UnknownValidator {
                index: s.validator_index,
                n: validators.len(),
            });
        }
        if !seen.insert(s.validator_index) {
            return Err(CertificateError::DuplicateValidator(s.validator_index));
        }
    }
    let message = commit_message(chain_id, cert.height, cert.round, block_hash);
    let items: Vec<VerifyItem<'_>> = cert
        .signatures
        .iter()
        .map(|s| VerifyItem {
            public_key: &validators.keys()[s.validator_index as usize].0,
            message: &message,
            signature: &s.signature,
        })
        .collect();
    let results = verify_batch(&items);
    if let Some(pos) = results.iter().position(|ok| !ok) {
        return Err(CertificateError::BadSignature(
            cert.signatures[pos].validator_index,
        ));
    }
    if cert.signatures.len() < validators.quorum() {
        return Err(CertificateError::NoQuorum {
            got: cert.signatures.len(),
            needed: validators.quorum(),
            n: validators.len(),
        });
    }
    Ok(())
}

/// One validator's signature for a certificate.
pub fn sign_commit(
    key: &crate::Keypair,
    validator_index: u32,
    chain_id: &str,
    height: u64,
    round: u32,
    block_hash: &Hash32,
) -> CommitSignature {
    let sig = key.sign(&commit_message(chain_id, height, round, block_hash));
    CommitSignature {
        validator_index,
        signature: bytes::Bytes::copy_from_slice(&sig),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Keypair;

    fn set(n: u8) -> (Vec<Keypair>, ValidatorSet) {
        let keys: Vec<Keypair> = (0..n).map(|i| Keypair::from_secret(&[i + 1; 32])).collect();
        let vs = ValidatorSet::new(keys.iter().map(Keypair::public).collect());
        (keys, vs)
    }

    #[test]
    fn quorum_sizes() {
        for (n, q, f) in [(1, 1, 0), (3, 3, 0), (4, 3, 1), (7, 5, 2), (10, 7, 3)] {
            let (_, vs) = set(n);
            assert_eq!((vs.quorum(), vs.max_faulty()), (q, f), "n={n}");
        }
    }

    #[test]
    fn certificate_checks() {
        let (keys, vs) = set(4);
        let hash = Hash32::of(b"block");
        let sigs: Vec<_> = (0..3)
            .map(|i| sign_commit(&keys[i], i as u32, "c", 5, 0, &hash))
            .collect();
        let cert = CommitCertificate {
            height: 5,
            round: 0,
            block_hash: bytes::Bytes::copy_from_slice(&hash.0),
            signatures: sigs.clone(),
        };
        assert_eq!(verify_certificate(&cert, "c", &vs, 5, &hash), Ok(()));
        assert!(matches!(
            verify_certificate(&cert, "other-chain", &vs, 5, &hash),
            Err(CertificateError::BadSignature(0))
        ));
        assert!(matches!(
            verify_certificate(&cert, "c", &vs, 6, &hash),
            Err(CertificateError::WrongBlock { .. })
        ));
        let mut two = cert.clone();
        two.signatures.truncate(2);
        assert_eq!(
            verify_certificate(&two, "c", &vs, 5, &hash),
            Err(CertificateError::NoQuorum {
                got: 2,
                needed: 3,
                n: 4
            })
        );
        let mut dup = cert.clone();
        dup.signatures[2] = dup.signatures[0].clone();
        assert_eq!(
            verify_certificate(&dup, "c", &vs, 5, &hash),
            Err(CertificateError::DuplicateValidator(0))
        );
        let mut wrong_signer = cert;
        wrong_signer.signatures[1].validator_index = 3;
        assert_eq!(
            verify_certificate(&wrong_signer, "c", &vs, 5, &hash),
            Err(CertificateError::BadSignature(3))
        );
    }

    fn entries(keys: &[Keypair]) -> Vec<ValidatorEntry> {
        keys.iter()
            .map(|k| ValidatorEntry {
                public_key: bytes::Bytes::copy_from_slice(&k.public().0),
                name: String::new(),
            })
            .collect()
    }

    /// A header of `height` naming `next` for the following height, certified by `signers`.
    fn change(
        height: u64,
        next: &[Keypair],
        signers: &[Keypair],
        chain: &str,
    ) -> ValidatorSetChange {
        let header = BlockHeader {
            chain_id: chain.into(),
            height: height - 1,
            next_validators_hash: bytes::Bytes::copy_from_slice(
                &ValidatorSet::from_entries(&entries(next))
                    .expect("holds")
                    .hash()
                    .0,
            ),
            ..Default::default()
        };
        let bytes = bytes::Bytes::from(header.encode_to_vec());
        let hash = Hash32::of(&bytes);
        let signatures = signers
            .iter()
            .enumerate()
            .map(|(i, k)| sign_commit(k, i as u32, chain, height - 1, 0, &hash))
            .collect();
        ValidatorSetChange {
            height,
            validators: entries(next),
            header: bytes,
            certificate: Some(CommitCertificate {
                height: height - 1,
                round: 0,
                block_hash: bytes::Bytes::copy_from_slice(&hash.0),
                signatures,
            }),
        }
    }

    #[test]
    fn set_changes_are_followed_from_genesis_and_forgeries_refused() {
        let (keys, genesis) = set(4);
        let newcomer = Keypair::from_secret(&[99; 32]);
        let mut second: Vec<Keypair> = keys[1..].to_vec();
        second.push(newcomer.clone());
        // 4 → {1, 2, 3, new} at 10 (certified by 0..3), → {2, 3, new} at 20 (by the second set).
        let c1 = change(10, &second, &keys[..3], "c");
        let c2 = change(20, &second[1..], &second[..3], "c");
        let chain = [c1.clone(), c2.clone()];
        assert_eq!(
            follow_set_changes("c", &genesis, &chain, 9),
            Ok(genesis.clone())
        );
        let at_15 = follow_set_changes("c", &genesis, &chain, 15).expect("holds");
        assert_eq!(at_15.keys()[3], newcomer.public());
        assert_eq!(
            follow_set_changes("c", &genesis, &chain, 25)
                .expect("holds")
                .len(),
            3
        );

        // The second change certified by the genesis set instead of the set in force.
        let forged = change(20, &second[1..], &keys[..3], "c");
        assert!(matches!(
            follow_set_changes("c", &genesis, &[c1.clone(), forged], 25),
            Err(SetChangeError::Certificate { height: 20, .. })
        ));
        // A set other than the one the certified header names.
        let mut swapped = c1.clone();
        swapped.validators = entries(&keys[..2]);
        assert!(matches!(
            follow_set_changes("c", &genesis, &[swapped], 15),
            Err(SetChangeError::WrongSet { height: 10, .. })
        ));
        // Out of order, another chain, a duplicate key.
        assert!(matches!(
            follow_set_changes("c", &genesis, &[c2.clone(), c1.clone()], 25),
            Err(SetChangeError::Certificate { .. } | SetChangeError::Order { .. })
        ));
        assert!(matches!(
            follow_set_changes("d", &genesis, std::slice::from_ref(&c1), 15),
            Err(SetChangeError::Header { height: 10, .. })
        ));
        let mut dup = c1;
        dup.validators.push(dup.validators[0].clone());
        assert!(matches!(
            follow_set_changes("c", &genesis, &[dup], 15),
            Err(SetChangeError::DuplicateKey(_))
        ));
    }
}
