//! The rules a block from another validator must meet before this validator votes for it, and
//! the typed reasons it is refused. The checks that need no state (header bytes, body against
//! header, the chain's block limits) run before any signature is verified or any transaction
//! executed, so a wrong copy of a body costs little and is never kept.

use bytes::Bytes;
use prost::Message;
use quorate_genesis::ChainParams;
use quorate_proto::crypto::Hash32;
use quorate_proto::merkle;
use quorate_proto::v1::{BlockHeader, Transaction};

use crate::verified_tx::AdmissionError;

/// Most bytes a consensus message or sync answer holds besides its transactions: the header,
/// the proposal or certificate, and the framing of each transaction (tag and length).
pub const MESSAGE_OVERHEAD_BYTES: usize = 64 * 1024;
/// Framing per transaction inside a block message (field tag and length prefix).
pub const FRAMING_PER_TX_BYTES: usize = 6;

/// The largest message that carries a full block of `params`: a p2p message limit below this
/// would leave a validator unable to receive or sync the chain's largest blocks.
pub fn max_block_message_bytes(params: &ChainParams) -> usize {
    params.block_max_bytes as usize
        + params.block_max_txs as usize * FRAMING_PER_TX_BYTES
        + MESSAGE_OVERHEAD_BYTES
}

/// Why a block is not voted for (or, for a decided block, not committed).
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum BlockRejection {
    /// The header bytes are not a `BlockHeader`.
    #[error("header bytes do not decode: {0}")]
    Undecodable(String),
    /// The header bytes decode, but are not the canonical encoding of what they decode to
    /// (extra or reordered fields): the block id would not be the hash validators re-derive.
    #[error("header bytes hash to {sent} but their canonical encoding hashes to {canonical}")]
    NonCanonicalHeader {
        /// blake3 of the bytes sent.
        sent: Hash32,
        /// blake3 of the canonical encoding.
        canonical: Hash32,
    },
    /// Does not extend the committed head.
    #[error("block {height} with parent {parent} does not extend head {head_height} {head_hash}")]
    NotOnHead {
        /// Block height.
        height: u64,
        /// Block parent, hex.
        parent: String,
        /// Head height.
        head_height: u64,
        /// Head hash.
        head_hash: Hash32,
    },
    /// Another chain.
    #[error("block is for chain {got:?}; this is chain {expected:?}")]
    WrongChain {
        /// Chain id in the header.
        got: String,
        /// This chain.
        expected: String,
    },
    /// Time runs backwards.
    #[error("block time {time_ms} is before its parent's {parent_ms}")]
    TimeBeforeParent {
        /// Block time.
        time_ms: u64,
        /// Parent time.
        parent_ms: u64,
    },
    /// Time too far ahead of this validator's clock (only for a proposal being voted on).
    #[error(
        "block time {time_ms} is {ahead_ms} ms ahead of this validator's clock {local_ms}; at most {max_drift_ms} ms are allowed"
    )]
    TimeAhead {
        /// Block time.
        time_ms: u64,
        /// This validator's clock.
        local_ms: u64,
        /// How far ahead.
        ahead_ms: u64,
        /// The configured bound.
        max_drift_ms: u64,
    },
    /// The header claims another protocol version than the one in force at its height.
    #[error(
        "block header's protocol_version is {got}; version {expected} is in force at its height \
         (version 1 is written as an absent field, 0)"
    )]
    WrongProtocolVersion {
        /// The header's field (0: absent, version 1).
        got: u32,
        /// In force.
        expected: u32,
    },
    /// The block's height follows a protocol version this release does not support.
    #[error("{0}")]
    UnsupportedProtocol(crate::protocol::Halt),
    /// The header names a proposer outside the validator set.
    #[error("proposer {0} is not a validator of this chain at the block's height")]
    UnknownProposer(String),
    /// The header names another set for the next height than the one the chain decided.
    #[error("header names validator set {got} for the next height; the chain decided {expected}")]
    WrongNextValidators {
        /// Hash in the header, hex.
        got: String,
        /// Hash of the set the chain decided, hex.
        expected: String,
    },
    /// A fresh proposal whose header names someone else as proposer.
    #[error("header names proposer {header} but the proposal is signed by validator {signer}")]
    ProposerMismatch {
        /// Key in the header, hex.
        header: String,
        /// Index of the signer.
        signer: u32,
    },
    /// Too many transactions.
    #[error("block holds {count} transactions; the chain allows {max}")]
    TooManyTxs {
        /// Count.
        count: usize,
        /// Limit.
        max: u32,
    },
    /// Too many bytes.
    #[error("block holds {bytes} bytes of transactions; the chain allows {max}")]
    TooManyBytes {
        /// Sum of encoded transaction sizes.
        bytes: usize,
        /// Limit.
        max: u32,
    },
    /// The body does not hold as many transactions as the header says.
    #[error("body holds {got} transactions; the header says {expected}")]
    TxCountMismatch {
        /// In the body.
        got: usize,
        /// In the header.
        expected: u32,
    },
    /// A compact block names a transaction by something that is not a 32-byte hash.
    #[error("transaction hash {index} is not 32 bytes")]
    BadTxHash {
        /// Position in the block.
        index: usize,
    },
    /// The body's transactions are not the ones the header commits to.
    #[error("transaction root of the body {got} differs from the header's {expected}")]
    TxRootMismatch {
        /// Computed from the body.
        got: Hash32,
        /// In the header, hex.
        expected: String,
    },
    /// A transaction fails the stateless rules or its signature.
    #[error("transaction {index}: {reason}")]
    BadTx {
        /// Position in the block.
        index: usize,
        /// Why.
        reason: AdmissionError,
    },
    /// A transaction cannot be part of a block on this head (stale nonce, cannot pay).
    #[error("transaction {hash} cannot be included: {reason}")]
    NotIncludable {
        /// Its hash.
        hash: Hash32,
        /// Why.
        reason: String,
    },
    /// Re-execution gives other roots than the header's.
    #[error(
        "re-execution gives state root {state}, receipts root {receipts}; the header says {header_state}, {header_receipts}"
    )]
    RootsMismatch {
        /// State root computed here.
        state: String,
        /// Receipts root computed here.
        receipts: String,
        /// State root in the header.
        header_state: String,
        /// Receipts root in the header.
        header_receipts: String,
    },
}

/// Decodes header bytes, refusing any encoding but the canonical one: the block id is the hash
/// of these bytes, so they must be exactly what re-encoding the decoded header gives.
pub fn decode_header(bytes: &Bytes) -> Result<BlockHeader, BlockRejection> {
    let header = BlockHeader::decode(bytes.clone())
        .map_err(|e| BlockRejection::Undecodable(e.to_string()))?;
    let canonical = header.encode_to_vec();
    if canonical != bytes.as_ref() {
        return Err(BlockRejection::NonCanonicalHeader {
            sent: Hash32::of(bytes),
            canonical: Hash32::of(&canonical),
        });
    }
    Ok(header)
}

/// Checks a block body against its header and the chain's block limits, before any signature
/// is verified: count, bytes, and the transaction root over the transactions' leaves (the
/// body hash, bound to the signing keys when several signed: `quorate_proto::tx::tx_leaf`).
pub fn check_body(
    header: &BlockHeader,
    txs: &[Transaction],
    params: &ChainParams,
) -> Result<(), BlockRejection> {
    check_count(header, txs.len(), params)?;
    check_bytes(txs.iter().map(Message::encoded_len).sum(), params)?;
    let leaves: Vec<Hash32> = txs.iter().map(quorate_proto::tx::leaf_of).collect();
    check_root(header, &leaves)
}

/// Checks a compact block (its transactions named by leaf) against its header and the chain's
/// count limit before anything is looked up or fetched for it; returns the leaves. The byte
/// limit is checked with [`check_bytes`] once the transactions are at hand.
pub fn check_compact(
    header: &BlockHeader,
    tx_hashes: &[Bytes],
    params: &ChainParams,
) -> Result<Vec<Hash32>, BlockRejection> {
    check_count(header, tx_hashes.len(), params)?;
    let hashes = tx_hashes
        .iter()
        .enumerate()
        .map(|(index, h)| Hash32::from_slice(h).ok_or(BlockRejection::BadTxHash { index }))
        .collect::<Result<Vec<_>, _>>()?;
    check_root(header, &hashes)?;
    Ok(hashes)
}

/// The chain's limit on transactions per block, and the header's count.
fn check_count(
    header: &BlockHeader,
    count: usize,
    params: &ChainParams,
) -> Result<(), BlockRejection> {
    if count > params.block_max_txs as usize {
        return Err(BlockRejection::TooManyTxs {
            count,
            max: params.block_max_txs,
        });
    }
    if count != header.tx_count as usize {
        return Err(BlockRejection::TxCountMismatch {
            got: count,
            expected: header.tx_count,
        });
    }
    Ok(())
}

/// The chain's limit on the encoded bytes of a block's transactions.
pub fn check_bytes(bytes: usize, params: &ChainParams) -> Result<(), BlockRejection> {
    if bytes > params.block_max_bytes as usize {
        return Err(BlockRejection::TooManyBytes {
            bytes,
            max: params.block_max_bytes,
        });
    }
    Ok(())
}

/// The transactions are the ones the header commits to.
fn check_root(header: &BlockHeader, hashes: &[Hash32]) -> Result<(), BlockRejection> {
    let root = merkle::root(hashes);
    if root.0 != header.tx_root.as_ref() {
        return Err(BlockRejection::TxRootMismatch {
            got: root,
            expected: hex::encode(&header.tx_root),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header() -> BlockHeader {
        BlockHeader {
            chain_id: "c".into(),
            height: 3,
            parent_hash: Bytes::from_static(&[1; 32]),
            proposer: Bytes::from_static(&[2; 32]),
            time_ms: 9,
            tx_root: Bytes::copy_from_slice(&merkle::root(&[]).0),
            state_root: Bytes::from_static(&[3; 32]),
            receipts_root: Bytes::from_static(&[4; 32]),
            tx_count: 0,
            next_validators_hash: Bytes::new(),
            protocol_version: 0,
        }
    }

    /// Issue 13, defect 1: a header with an unknown field appended decoded to the same header,
    /// so it was validated and voted for under an id no honest validator re-derives.
    #[test]
    fn only_the_canonical_header_encoding_is_accepted() {
        let bytes = Bytes::from(header().encode_to_vec());
        assert_eq!(decode_header(&bytes), Ok(header()));
        let mut extended = bytes.to_vec();
        extended.extend_from_slice(&[0xa0, 0x01, 0x00]);
        let extended = Bytes::from(extended);
        assert_eq!(BlockHeader::decode(extended.clone()).ok(), Some(header()));
        assert!(matches!(
            decode_header(&extended),
            Err(BlockRejection::NonCanonicalHeader { sent, canonical })
                if sent == Hash32::of(&extended) && canonical == Hash32::of(&bytes)
        ));
    }

    /// Issue 13, defects 2 and 7: a body is checked against its header (count, root) and the
    /// chain's limits before anything else is done with it.
    #[test]
    fn a_body_must_match_its_header_and_the_block_limits() {
        let params = ChainParams::default();
        let tx = |n: u8| Transaction {
            body: Bytes::from(vec![n; 10]),
            public_key: Bytes::from_static(&[0; 32]),
            signature: Bytes::from_static(&[0; 64]),
            cosignatures: Vec::new(),
        };
        let txs = vec![tx(1), tx(2)];
        let hashes: Vec<Hash32> = txs.iter().map(quorate_proto::tx::leaf_of).collect();
        let h = BlockHeader {
            tx_root: Bytes::copy_from_slice(&merkle::root(&hashes).0),
            tx_count: 2,
            ..header()
        };
        assert_eq!(check_body(&h, &txs, &params), Ok(()));
        assert!(matches!(
            check_body(&h, &txs[..1], &params),
            Err(BlockRejection::TxCountMismatch {
                got: 1,
                expected: 2
            })
        ));
        let swapped = vec![tx(2), tx(1)];
        assert!(matches!(
            check_body(&h, &swapped, &params),
            Err(BlockRejection::TxRootMismatch { .. })
        ));
        let small = ChainParams {
            block_max_txs: 1,
            ..ChainParams::default()
        };
        assert!(matches!(
            check_body(&h, &txs, &small),
            Err(BlockRejection::TooManyTxs { count: 2, max: 1 })
        ));
        let tight = ChainParams {
            block_max_bytes: 50,
            ..ChainParams::default()
        };
        assert!(matches!(
            check_body(&h, &txs, &tight),
            Err(BlockRejection::TooManyBytes { max: 50, .. })
        ));
    }

    /// A compact proposal's hashes are checked against the header and the count limit before
    /// any transaction is looked up or fetched.
    #[test]
    fn a_compact_block_must_match_its_header() {
        let params = ChainParams::default();
        let hashes = [Hash32([1; 32]), Hash32([2; 32])];
        let wire: Vec<Bytes> = hashes
            .iter()
            .map(|h| Bytes::copy_from_slice(&h.0))
            .collect();
        let h = BlockHeader {
            tx_root: Bytes::copy_from_slice(&merkle::root(&hashes).0),
            tx_count: 2,
            ..header()
        };
        assert_eq!(check_compact(&h, &wire, &params), Ok(hashes.to_vec()));
        assert!(matches!(
            check_compact(&h, &wire[..1], &params),
            Err(BlockRejection::TxCountMismatch {
                got: 1,
                expected: 2
            })
        ));
        let reversed: Vec<Bytes> = wire.iter().rev().cloned().collect();
        assert!(matches!(
            check_compact(&h, &reversed, &params),
            Err(BlockRejection::TxRootMismatch { .. })
        ));
        let short = vec![wire[0].clone(), Bytes::from_static(&[2; 31])];
        assert_eq!(
            check_compact(&h, &short, &params),
            Err(BlockRejection::BadTxHash { index: 1 })
        );
        let small = ChainParams {
            block_max_txs: 1,
            ..ChainParams::default()
        };
        assert!(matches!(
            check_compact(&h, &wire, &small),
            Err(BlockRejection::TooManyTxs { count: 2, max: 1 })
        ));
    }
}
