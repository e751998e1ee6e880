//! Validator sets, the commit message validators sign, and commit certificate checks.

use std::collections::HashSet;

use crate::crypto::{verify_batch, Hash32, PublicKey, VerifyItem};
use crate::v1::{CommitCertificate, CommitSignature};

/// Domain separation tag for commit votes.
pub const COMMIT_SIGN_DOMAIN: &[u8] = b"quorate/v1/commit\0";

/// The ordered validator set of a chain, from genesis.
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
}
