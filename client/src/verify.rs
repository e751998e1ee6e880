//! Checking what a node says against the genesis file, on the client's side: a block is final
//! when a quorum of the validator set in force at its height signed it, and that set is proven
//! from the genesis set by a chain of certified set changes; a transaction is in a block when
//! its leaf is among those whose Merkle root the block's header carries.
//!
//! What is trusted is the genesis file and nothing a node says. What is not covered: a node
//! asked for the set at a height far from the last one checked may leave out a change between
//! them; the old set's quorum must then have signed the block, which its honest members only
//! do while they are validators. Following blocks in order ([`ChainVerifier::verify`] over a
//! [`crate::BlockStream`]) leaves nothing out: each header names the next set's hash.

use std::path::Path;

use bytes::Bytes;
use prost::Message as _;
use quorate_genesis::Genesis;
use quorate_proto::certificate::{
    follow_set_changes, verify_certificate, CertificateError, SetChangeError, ValidatorSet,
};
use quorate_proto::crypto::{Hash32, PublicKey};
use quorate_proto::merkle;
use quorate_proto::tx::leaf_of;
use quorate_proto::v1::{BlockHeader, BlockInfo, ValidatorSetChange};

use crate::error::ClientError;
use crate::node::Node;

/// Why a block, a set change or an inclusion does not hold.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum VerifyError {
    /// The genesis file could not be read or is not valid.
    #[error("genesis: {0}")]
    Genesis(String),
    /// The header's bytes do not hash to the block's hash, or do not decode.
    #[error("block {hash}: {why}")]
    Header {
        /// The block's hash as the node gave it.
        hash: String,
        /// What is wrong.
        why: String,
    },
    /// The block belongs to another chain.
    #[error("block of chain {found:?}; this chain is {expected:?}")]
    Chain {
        /// The chain id in the header.
        found: String,
        /// The genesis file's.
        expected: String,
    },
    /// The certificate does not prove the block final under the set in force at its height.
    #[error("block {height}: certificate: {source}")]
    Certificate {
        /// The block's height.
        height: u64,
        /// Why.
        source: CertificateError,
    },
    /// The block carries no certificate.
    #[error("block {0} carries no certificate")]
    NoCertificate(u64),
    /// The chain of set changes does not prove a set from the genesis set.
    #[error("validator set changes: {0}")]
    SetChange(#[from] SetChangeError),
    /// A node proved another set change at a height than one proven before: two certified
    /// histories of one chain, which a quorum of honest validators never signs.
    #[error("two different certified set changes at height {0}")]
    ConflictingChange(u64),
    /// A node's chain of set changes leaves out a change proven before.
    #[error("the set changes given leave out the change at height {0}, proven before")]
    OmittedChange(u64),
    /// The block does not follow the block checked before it.
    #[error("block {height} names parent {found}, the block checked before it is {expected}")]
    Parent {
        /// The block's height.
        height: u64,
        /// Its parent hash.
        found: String,
        /// The hash of the block before it (for block 1, the genesis file's hash).
        expected: String,
    },
    /// The set proven for a height is not the one the header before it named.
    #[error(
        "the set proven for height {height} hashes to {proven}; the header before it names {named}"
    )]
    UnnamedSet {
        /// The height.
        height: u64,
        /// Hash of the set proven.
        proven: String,
        /// Hash named by the header of the height before.
        named: String,
    },
    /// The block's transactions do not match its header.
    #[error("block {height}: transactions: {why}")]
    Transactions {
        /// The block's height.
        height: u64,
        /// What does not match.
        why: String,
    },
    /// The transaction is not in the block.
    #[error("transaction {0} is not in block {1}")]
    NotIncluded(String, u64),
}

/// A block whose certificate holds: its header decoded from the bytes that were signed (never
/// the node's own decoding), and who signed it.
#[derive(Clone, Debug, PartialEq)]
pub struct VerifiedBlock {
    /// Its hash.
    pub hash: Hash32,
    /// Its header, decoded from the certified bytes.
    pub header: BlockHeader,
    /// The validators whose signatures the certificate carries, in its order.
    pub signers: Vec<PublicKey>,
    /// The size of the set that certified it.
    pub set_size: usize,
    /// Whether the block carried its transactions and they matched the header's `tx_root`.
    pub transactions_checked: bool,
}

/// The block `block`, checked against `set` (the set in force at its height) and `chain_id`:
/// header bytes hash to the block's hash, the certificate holds, and the transactions, when
/// the block carries them, match its header's `tx_root`, count and the listed hashes.
pub fn verify_block(
    chain_id: &str,
    set: &ValidatorSet,
    block: &BlockInfo,
) -> Result<VerifiedBlock, VerifyError> {
    let claimed = hex::encode(&block.hash);
    let header_error = |why: String| VerifyError::Header {
        hash: claimed.clone(),
        why,
    };
    let hash = Hash32::of(&block.header_bytes);
    if hash.0.as_slice() != block.hash.as_ref() {
        return Err(header_error(format!(
            "its header bytes hash to {hash}, not to the block's hash"
        )));
    }
    let header = BlockHeader::decode(block.header_bytes.as_ref())
        .map_err(|e| header_error(format!("its header bytes do not decode: {e}")))?;
    if block.header.as_ref().is_some_and(|h| *h != header) {
        return Err(header_error(
            "the node's decoded header is not the header its bytes hold".into(),
        ));
    }
    if header.chain_id != chain_id {
        return Err(VerifyError::Chain {
            found: header.chain_id,
            expected: chain_id.to_owned(),
        });
    }
    let certificate = block
        .certificate
        .as_ref()
        .ok_or(VerifyError::NoCertificate(header.height))?;
    verify_certificate(certificate, chain_id, set, header.height, &hash).map_err(|source| {
        VerifyError::Certificate {
            height: header.height,
            source,
        }
    })?;
    let signers = certificate
        .signatures
        .iter()
        .map(|s| set.keys()[s.validator_index as usize])
        .collect();
    let transactions_checked = !block.transactions.is_empty() || header.tx_count == 0;
    if transactions_checked {
        check_transactions(&header, block)?;
    }
    Ok(VerifiedBlock {
        hash,
        header,
        signers,
        set_size: set.len(),
        transactions_checked,
    })
}

/// The block's transactions against its header: their count, their leaves' root, and the
/// hashes the node listed.
fn check_transactions(header: &BlockHeader, block: &BlockInfo) -> Result<(), VerifyError> {
    let wrong = |why: String| VerifyError::Transactions {
        height: header.height,
        why,
    };
    if block.transactions.len() != header.tx_count as usize {
        return Err(wrong(format!(
            "{} carried, the header counts {}",
            block.transactions.len(),
            header.tx_count
        )));
    }
    let leaves: Vec<Hash32> = block.transactions.iter().map(leaf_of).collect();
    let root = merkle::root(&leaves);
    if root.0.as_slice() != header.tx_root.as_ref() {
        return Err(wrong(format!(
            "their root is {root}, the header's tx_root is {}",
            hex::encode(&header.tx_root)
        )));
    }
    let hashes_match = block.tx_hashes.len() == block.transactions.len()
        && block
            .tx_hashes
            .iter()
            .zip(&block.transactions)
            .all(|(h, tx)| h.as_ref() == Hash32::of(&tx.body).0.as_slice());
    if !hashes_match {
        return Err(wrong(
            "the hashes listed are not those of the transactions carried".into(),
        ));
    }
    Ok(())
}

/// The position of transaction `hash` in `block`, checked against the header's `tx_root`
/// (`block` must carry its transactions and have passed [`verify_block`]).
pub fn verify_inclusion(block: &BlockInfo, hash: &Hash32) -> Result<u32, VerifyError> {
    let header = signed_header(block)?;
    let height = header.height;
    check_transactions(&header, block)?;
    block
        .transactions
        .iter()
        .position(|tx| Hash32::of(&tx.body) == *hash)
        .map(|i| i as u32)
        .ok_or_else(|| VerifyError::NotIncluded(hash.to_hex(), height))
}

/// The header `block` carries, decoded from bytes that hash to the block's hash.
fn signed_header(block: &BlockInfo) -> Result<BlockHeader, VerifyError> {
    let header_error = |why: String| VerifyError::Header {
        hash: hex::encode(&block.hash),
        why,
    };
    if Hash32::of(&block.header_bytes).0.as_slice() != block.hash.as_ref() {
        return Err(header_error(
            "its header bytes do not hash to the block's hash".into(),
        ));
    }
    BlockHeader::decode(block.header_bytes.as_ref())
        .map_err(|e| header_error(format!("its header bytes do not decode: {e}")))
}

/// What a client trusts (the genesis file) and what it has checked since: the set changes
/// proven, and the last block verified, so that blocks checked in order need no more than
/// their certificates.
#[derive(Clone, Debug)]
pub struct ChainVerifier {
    chain_id: String,
    genesis_hash: Hash32,
    genesis_set: ValidatorSet,
    /// Set changes proven so far, oldest first.
    changes: Vec<ValidatorSetChange>,
    /// The last block verified: its height, hash, the set that certified it and the hash of
    /// the set its header names for the next height.
    last: Option<(u64, Hash32, ValidatorSet, Vec<u8>)>,
}

impl ChainVerifier {
    /// Trusts `genesis`.
    pub fn new(genesis: &Genesis) -> Self {
        Self {
            chain_id: genesis.chain_id.clone(),
            genesis_hash: genesis.hash(),
            genesis_set: genesis.validator_set(),
            changes: Vec::new(),
            last: None,
        }
    }

    /// Trusts the genesis file at `path`.
    pub fn load(path: &Path) -> Result<Self, VerifyError> {
        Genesis::load(path)
            .map(|g| Self::new(&g))
            .map_err(|e| VerifyError::Genesis(e.to_string()))
    }

    /// The chain's id.
    pub fn chain_id(&self) -> &str {
        &self.chain_id
    }

    /// The set changes proven so far, oldest first.
    pub fn changes(&self) -> &[ValidatorSetChange] {
        &self.changes
    }

    /// The set in force at `height`, proven from the genesis set by `changes` (every change up
    /// to `height`, oldest first, as `GetValidatorSet` gives them). The changes are kept; a
    /// change that contradicts one proven before is refused.
    pub fn prove_set(
        &mut self,
        changes: &[ValidatorSetChange],
        height: u64,
    ) -> Result<ValidatorSet, VerifyError> {
        let set = follow_set_changes(&self.chain_id, &self.genesis_set, changes, height)?;
        let keys = |c: &ValidatorSetChange| -> Vec<Bytes> {
            c.validators.iter().map(|v| v.public_key.clone()).collect()
        };
        if let Some(left_out) = self
            .changes
            .iter()
            .take_while(|c| c.height <= height)
            .find(|known| !changes.iter().any(|c| c.height == known.height))
        {
            return Err(VerifyError::OmittedChange(left_out.height));
        }
        for change in changes.iter().take_while(|c| c.height <= height) {
            match self.changes.iter().find(|c| c.height == change.height) {
                Some(known) if keys(known) != keys(change) => {
                    return Err(VerifyError::ConflictingChange(change.height))
                }
                Some(_) => {}
                None => {
                    let at = self.changes.partition_point(|c| c.height < change.height);
                    self.changes.insert(at, change.clone());
                }
            }
        }
        Ok(set)
    }

    /// `block`, checked: its certificate against the set in force at its height (asked of
    /// `node` and proven from genesis, unless the block follows the last one checked under
    /// the same set), its link to the block checked before it, and its transactions when it
    /// carries them.
    pub async fn verify(
        &mut self,
        node: &Node,
        block: &BlockInfo,
    ) -> Result<VerifiedBlock, ClientError> {
        // The height is the signed header's, never the node's own decoding of it.
        let height = signed_header(block)?.height;
        let follows = self
            .last
            .clone()
            .filter(|(h, ..)| *h + 1 == height && height > 0);
        let set = match follows {
            Some((_, _, set, next)) if set.hash().0.as_slice() == next.as_slice() => set,
            _ => {
                let answer = node.validator_set(height).await?;
                let set = self.prove_set(&answer.changes, height)?;
                if let Some((_, _, _, named)) = follows {
                    if set.hash().0.as_slice() != named.as_slice() {
                        return Err(VerifyError::UnnamedSet {
                            height,
                            proven: set.hash().to_hex(),
                            named: hex::encode(named),
                        }
                        .into());
                    }
                }
                set
            }
        };
        let verified = self.verify_with(&set, block)?;
        self.last = Some((
            verified.header.height,
            verified.hash,
            set,
            verified.header.next_validators_hash.to_vec(),
        ));
        Ok(verified)
    }

    /// `block` checked against `set`, with its link to the last block checked (or, for
    /// block 1, to the genesis file).
    fn verify_with(
        &self,
        set: &ValidatorSet,
        block: &BlockInfo,
    ) -> Result<VerifiedBlock, VerifyError> {
        let verified = verify_block(&self.chain_id, set, block)?;
        let height = verified.header.height;
        let expected = match &self.last {
            _ if height == 1 => Some(self.genesis_hash),
            Some((h, hash, ..)) if *h + 1 == height => Some(*hash),
            _ => None,
        };
        if let Some(expected) = expected {
            if verified.header.parent_hash.as_ref() != expected.0.as_slice() {
                return Err(VerifyError::Parent {
                    height,
                    found: hex::encode(&verified.header.parent_hash),
                    expected: expected.to_hex(),
                });
            }
        }
        Ok(verified)
    }
}
