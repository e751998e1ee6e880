//! Bounds on what a peer's encoded message may decode to, checked on its bytes before it is
//! decoded. Protobuf lets a two-byte entry (`0a 00`) decode to a whole empty transaction of
//! over a hundred bytes in memory: a 24 MiB gossip message of them decoded to ~12.6 M
//! transactions (~1.5 GB) before any check (issue 24). Every transaction a node can use is at
//! least [`MIN_TX_BYTES`] on the wire and every transaction leaf exactly 32 bytes, so entries
//! below that are refused here, and what a message decodes to stays within a small multiple of
//! its size.

/// The fewest bytes a usable transaction takes on the wire: its public key (32 bytes) and
/// signature (64 bytes), each with a tag and a length byte. Smaller ones cannot verify.
pub const MIN_TX_BYTES: usize = 2 + 32 + 2 + 64;

/// A transaction leaf's length (compact blocks name transactions by leaf).
const LEAF_BYTES: usize = 32;
/// The fewest bytes of a usable cosignature: its public key and signature with their tags.
const MIN_COSIGNATURE_BYTES: usize = 2 + 32 + 2 + 64;
/// Most cosignatures a transaction may carry (16 signatures in all).
const MAX_COSIGNATURES: usize = 15;
/// The fewest bytes of a certificate's signature entry: a 64-byte signature with its tag.
const MIN_COMMIT_SIGNATURE_BYTES: usize = 2 + 64;

/// The fewest bytes of a snapshot chunk's entry: its 2,048-byte accumulator with its tag.
const MIN_CHUNK_INFO_BYTES: usize = 3 + 2048;
/// The fewest bytes of a validator entry: its 32-byte key with its tag.
const MIN_VALIDATOR_ENTRY_BYTES: usize = 2 + 32;
/// The fewest bytes of a set change: one validator entry with its tag.
const MIN_SET_CHANGE_BYTES: usize = 2 + MIN_VALIDATOR_ENTRY_BYTES;

/// Why an encoded message was refused before decoding.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WireError {
    /// The bytes are not a protobuf message.
    #[error("malformed message: {0}")]
    Malformed(&'static str),
    /// A transaction too small to be a signed one.
    #[error(
        "transaction {index} is {len} bytes; a signed transaction takes at least {MIN_TX_BYTES}"
    )]
    TinyTransaction {
        /// Its position among the message's transactions.
        index: usize,
        /// Its length.
        len: usize,
    },
    /// A cosignature too small to verify, or more of them than a transaction may carry.
    #[error("transaction {index}: {why}")]
    BadCosignatures {
        /// The transaction's position.
        index: usize,
        /// What is wrong.
        why: String,
    },
    /// A certificate signature entry too small to hold a signature, or more of them than
    /// there can be validators.
    #[error("certificate: {0}")]
    BadCertificate(String),
    /// A snapshot manifest with more entries than a snapshot can have, or entries too small
    /// to be used.
    #[error("snapshot manifest: {0}")]
    BadManifest(String),
    /// A transaction leaf of another length than 32 bytes.
    #[error("transaction leaf {index} is {len} bytes, not {LEAF_BYTES}")]
    LeafLength {
        /// Its position in the list.
        index: usize,
        /// Its length.
        len: usize,
    },
}

/// One field of an encoded message: its number and, for length-delimited fields, the bytes.
struct Field<'a> {
    number: u64,
    bytes: Option<&'a [u8]>,
}

fn varint(buf: &mut &[u8]) -> Result<u64, WireError> {
    let mut value = 0u64;
    for i in 0..10 {
        let (&b, rest) = buf
            .split_first()
            .ok_or(WireError::Malformed("truncated varint"))?;
        *buf = rest;
        value |= u64::from(b & 0x7f) << (7 * i);
        if b & 0x80 == 0 {
            return Ok(value);
        }
    }
    Err(WireError::Malformed("varint over 10 bytes"))
}

fn take<'a>(buf: &mut &'a [u8], n: u64) -> Result<&'a [u8], WireError> {
    let n = usize::try_from(n).map_err(|_| WireError::Malformed("length overflows"))?;
    if buf.len() < n {
        return Err(WireError::Malformed("field runs past the end"));
    }
    let (head, rest) = buf.split_at(n);
    *buf = rest;
    Ok(head)
}

/// The top-level fields of `buf`, without allocating.
fn fields(mut buf: &[u8]) -> impl Iterator<Item = Result<Field<'_>, WireError>> {
    std::iter::from_fn(move || {
        if buf.is_empty() {
            return None;
        }
        let field = (|| {
            let key = varint(&mut buf)?;
            let number = key >> 3;
            let bytes = match key & 7 {
                0 => {
                    varint(&mut buf)?;
                    None
                }
                1 => {
                    take(&mut buf, 8)?;
                    None
                }
                2 => {
                    let len = varint(&mut buf)?;
                    Some(take(&mut buf, len)?)
                }
                5 => {
                    take(&mut buf, 4)?;
                    None
                }
                _ => return Err(WireError::Malformed("unsupported wire type")),
            };
            Ok(Field { number, bytes })
        })();
        if field.is_err() {
            buf = &[];
        }
        Some(field)
    })
}

/// Every occurrence of length-delimited field `number` of `buf`, checked by `each` with its
/// position among them.
fn each_of(
    buf: &[u8],
    number: u64,
    mut each: impl FnMut(usize, &[u8]) -> Result<(), WireError>,
) -> Result<(), WireError> {
    let mut index = 0;
    for f in fields(buf) {
        let f = f?;
        if f.number == number {
            if let Some(bytes) = f.bytes {
                each(index, bytes)?;
                index += 1;
            }
        }
    }
    Ok(())
}

/// A transaction of signed size whose cosignatures (field 4) are each of signed size and at
/// most [`MAX_COSIGNATURES`]: an empty cosignature entry decodes two bytes into a whole struct.
fn signed_size(index: usize, tx: &[u8]) -> Result<(), WireError> {
    if tx.len() < MIN_TX_BYTES {
        return Err(WireError::TinyTransaction {
            index,
            len: tx.len(),
        });
    }
    let mut count = 0;
    each_of(tx, 4, |_, cosignature| {
        count += 1;
        if count > MAX_COSIGNATURES {
            return Err(WireError::BadCosignatures {
                index,
                why: format!("more than {MAX_COSIGNATURES} cosignatures"),
            });
        }
        if cosignature.len() < MIN_COSIGNATURE_BYTES {
            return Err(WireError::BadCosignatures {
                index,
                why: format!("a cosignature of {} bytes", cosignature.len()),
            });
        }
        Ok(())
    })
}

/// A certificate (`CommitCertificate`): each signature entry (field 4) can hold a signature,
/// and there are no more than validators can be.
fn certificate(buf: &[u8]) -> Result<(), WireError> {
    let max = 2 * quorate_proto::certificate::MAX_VALIDATORS;
    let mut count = 0;
    each_of(buf, 4, |_, entry| {
        count += 1;
        if count > max {
            return Err(WireError::BadCertificate(format!(
                "more than {max} signatures"
            )));
        }
        if entry.len() < MIN_COMMIT_SIGNATURE_BYTES {
            return Err(WireError::BadCertificate(format!(
                "a signature entry of {} bytes",
                entry.len()
            )));
        }
        Ok(())
    })
}

/// A `TxGossip`: every transaction (field 1) of signed size.
pub fn check_tx_gossip(buf: &[u8]) -> Result<(), WireError> {
    each_of(buf, 1, signed_size)
}

/// A `ConsensusMessage`: every leaf of its compact block (field 4, leaves field 2) 32 bytes.
pub fn check_consensus_message(buf: &[u8]) -> Result<(), WireError> {
    each_of(buf, 4, |_, compact| {
        each_of(compact, 2, |index, leaf| {
            if leaf.len() != LEAF_BYTES {
                return Err(WireError::LeafLength {
                    index,
                    len: leaf.len(),
                });
            }
            Ok(())
        })
    })
}

/// A `DecisionResponse`: every transaction of its block (field 1, transactions field 2) and
/// every fetched transaction (field 3) of signed size, its certificate (field 2) and its
/// snapshot manifest (field 5) bounded.
pub fn check_response(buf: &[u8]) -> Result<(), WireError> {
    // Protobuf merges repeats of a message field, so each is counted once at most: the bounds
    // below hold for the message decoded, not one occurrence of it.
    once(buf, &[1, 2, 5])?;
    each_of(buf, 1, |_, block| each_of(block, 2, signed_size))?;
    each_of(buf, 2, |_, c| certificate(c))?;
    each_of(buf, 3, signed_size)?;
    each_of(buf, 5, |_, m| manifest(m))
}

/// Each of the message fields `numbers` occurs at most once in `buf`.
fn once(buf: &[u8], numbers: &[u64]) -> Result<(), WireError> {
    for &n in numbers {
        let mut seen = 0;
        each_of(buf, n, |_, _| {
            seen += 1;
            if seen > 1 {
                return Err(WireError::Malformed("a message field repeated"));
            }
            Ok(())
        })?;
    }
    Ok(())
}

/// A `SnapshotManifest`: its certificate (field 6) bounded, every chunk entry (field 7) large
/// enough to hold its accumulator, at most [`MAX_SET_CHANGES`] set changes (field 8), each
/// with at most [`MAX_VALIDATORS`] validator entries (field 2) that hold a key, and a bounded
/// certificate (field 4).
///
/// [`MAX_SET_CHANGES`]: crate::snapshot::MAX_SET_CHANGES
/// [`MAX_VALIDATORS`]: quorate_proto::certificate::MAX_VALIDATORS
fn manifest(buf: &[u8]) -> Result<(), WireError> {
    once(buf, &[6])?;
    each_of(buf, 6, |_, c| certificate(c))?;
    each_of(buf, 7, |index, chunk| {
        if chunk.len() < MIN_CHUNK_INFO_BYTES {
            return Err(WireError::BadManifest(format!(
                "chunk entry {index} is {} bytes",
                chunk.len()
            )));
        }
        Ok(())
    })?;
    each_of(buf, 8, |index, change| {
        if index >= crate::snapshot::MAX_SET_CHANGES {
            return Err(WireError::BadManifest(format!(
                "more than {} set changes",
                crate::snapshot::MAX_SET_CHANGES
            )));
        }
        if change.len() < MIN_SET_CHANGE_BYTES {
            return Err(WireError::BadManifest(format!(
                "set change {index} is {} bytes",
                change.len()
            )));
        }
        each_of(change, 2, |v, entry| {
            if v >= quorate_proto::certificate::MAX_VALIDATORS {
                return Err(WireError::BadManifest(format!(
                    "set change {index} names more than {} validators",
                    quorate_proto::certificate::MAX_VALIDATORS
                )));
            }
            if entry.len() < MIN_VALIDATOR_ENTRY_BYTES {
                return Err(WireError::BadManifest(format!(
                    "set change {index}: validator entry {v} is {} bytes",
                    entry.len()
                )));
            }
            Ok(())
        })?;
        once(change, &[4])?;
        each_of(change, 4, |_, c| certificate(c))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;
    use prost::Message as _;
    use quorate_proto::v1::{
        Block, CommitCertificate, CommitSignature, CompactBlock, ConsensusMessage,
        DecisionResponse, SnapshotChunkInfo, SnapshotManifest, Transaction, TxGossip,
        ValidatorEntry, ValidatorSetChange,
    };

    fn signed(n: u8) -> Transaction {
        let key = quorate_proto::Keypair::from_secret(&[n; 32]);
        quorate_proto::tx::sign(
            &quorate_proto::tx::transfer_body("c", &key, 0, 1_000, key.address(), 5, vec![]),
            &key,
        )
    }

    #[test]
    fn real_messages_pass() {
        let txs = vec![signed(1), signed(2)];
        let gossip = TxGossip {
            transactions: txs.clone(),
        };
        assert_eq!(check_tx_gossip(&gossip.encode_to_vec()), Ok(()));
        let compact = ConsensusMessage {
            message: None,
            compact_block: Some(CompactBlock {
                header: Bytes::from_static(&[1; 90]),
                tx_hashes: vec![Bytes::from_static(&[2; 32]); 3],
            }),
        };
        assert_eq!(check_consensus_message(&compact.encode_to_vec()), Ok(()));
        let response = DecisionResponse {
            block: Some(Block {
                header: Bytes::from_static(&[1; 90]),
                transactions: txs.clone(),
            }),
            transactions: txs,
            ..Default::default()
        };
        assert_eq!(check_response(&response.encode_to_vec()), Ok(()));
        assert_eq!(check_response(&[]), Ok(()), "an empty answer");
    }

    /// Issue 24: two bytes per empty transaction or leaf are refused before decoding.
    #[test]
    fn empty_entries_are_refused_before_decoding() {
        let junk: Vec<u8> = [0x0a, 0x00].repeat(1 << 16);
        assert_eq!(
            check_tx_gossip(&junk),
            Err(WireError::TinyTransaction { index: 0, len: 0 })
        );
        let mut gossip = TxGossip {
            transactions: vec![signed(1)],
        }
        .encode_to_vec();
        gossip.extend_from_slice(&[0x0a, 0x00]);
        assert_eq!(
            check_tx_gossip(&gossip),
            Err(WireError::TinyTransaction { index: 1, len: 0 })
        );
        let compact = ConsensusMessage {
            message: None,
            compact_block: Some(CompactBlock {
                header: Bytes::new(),
                tx_hashes: vec![Bytes::new(); 1000],
            }),
        };
        assert_eq!(
            check_consensus_message(&compact.encode_to_vec()),
            Err(WireError::LeafLength { index: 0, len: 0 })
        );
        let response = DecisionResponse {
            block: Some(Block {
                header: Bytes::new(),
                transactions: vec![Transaction::default(); 10],
            }),
            ..Default::default()
        };
        assert!(matches!(
            check_response(&response.encode_to_vec()),
            Err(WireError::TinyTransaction { .. })
        ));
        let fetched = DecisionResponse {
            transactions: vec![Transaction::default(); 10],
            ..Default::default()
        };
        assert!(check_response(&fetched.encode_to_vec()).is_err());
    }

    /// Issue 24 (review): the same two-byte trick one level down, in a transaction's
    /// cosignatures or a certificate's signatures.
    #[test]
    fn empty_nested_entries_are_refused_before_decoding() {
        let mut tx = signed(1).encode_to_vec();
        tx.extend_from_slice(&[0x22, 0x00].repeat(1000));
        let mut gossip = vec![0x0a];
        prost::encoding::encode_varint(tx.len() as u64, &mut gossip);
        gossip.extend_from_slice(&tx);
        assert!(matches!(
            check_tx_gossip(&gossip),
            Err(WireError::BadCosignatures { index: 0, .. })
        ));
        let mut cosigned = signed(1);
        for k in 2..=17u8 {
            quorate_proto::tx::cosign(
                &mut cosigned,
                &quorate_proto::Keypair::from_secret(&[k; 32]),
            );
        }
        let gossip = TxGossip {
            transactions: vec![cosigned],
        };
        assert!(matches!(
            check_tx_gossip(&gossip.encode_to_vec()),
            Err(WireError::BadCosignatures { .. })
        ));
        let mut ok = signed(1);
        quorate_proto::tx::cosign(&mut ok, &quorate_proto::Keypair::from_secret(&[2; 32]));
        assert_eq!(
            check_tx_gossip(
                &TxGossip {
                    transactions: vec![ok]
                }
                .encode_to_vec()
            ),
            Ok(())
        );
        let response = DecisionResponse {
            certificate: Some(quorate_proto::v1::CommitCertificate {
                height: 1,
                round: 0,
                block_hash: Bytes::from_static(&[1; 32]),
                signatures: vec![Default::default(); 1000],
            }),
            ..Default::default()
        };
        assert!(matches!(
            check_response(&response.encode_to_vec()),
            Err(WireError::BadCertificate(_))
        ));
    }

    /// A real snapshot manifest, as a validator offers it.
    fn manifest() -> SnapshotManifest {
        let certificate = CommitCertificate {
            height: 7,
            round: 0,
            block_hash: Bytes::from_static(&[1; 32]),
            signatures: (0..3)
                .map(|i| CommitSignature {
                    validator_index: i,
                    signature: Bytes::from_static(&[2; 64]),
                })
                .collect(),
        };
        SnapshotManifest {
            format: 1,
            chain_id: "c".into(),
            genesis_hash: Bytes::from_static(&[3; 32]),
            height: 7,
            header: Bytes::from_static(&[4; 90]),
            certificate: Some(certificate.clone()),
            chunks: vec![
                SnapshotChunkInfo {
                    lthash: Bytes::from(vec![5; 2048]),
                    digest: Bytes::from_static(&[6; 32]),
                    size: 100,
                    entries: 3,
                    codes: 0,
                };
                2
            ],
            set_changes: vec![ValidatorSetChange {
                height: 5,
                validators: (0..4u8)
                    .map(|i| ValidatorEntry {
                        public_key: Bytes::from(vec![i; 32]),
                        name: format!("v{i}"),
                    })
                    .collect(),
                header: Bytes::from_static(&[4; 90]),
                certificate: Some(certificate),
            }],
        }
    }

    fn offering(manifest: SnapshotManifest) -> Vec<u8> {
        DecisionResponse {
            snapshot_manifest: Some(manifest),
            ..Default::default()
        }
        .encode_to_vec()
    }

    /// Issue 25 (left from issue 24): a manifest's repeated fields, two bytes an empty entry,
    /// are bounded before the answer is decoded, as a block's are.
    #[test]
    fn a_manifest_of_empty_entries_is_refused_before_decoding() {
        assert_eq!(check_response(&offering(manifest())), Ok(()));
        let mut changes = manifest();
        changes.set_changes = vec![Default::default(); 100_000];
        let mut validators = manifest();
        validators.set_changes[0].validators = vec![Default::default(); 100_000];
        let mut chunks = manifest();
        chunks.chunks = vec![Default::default(); 100_000];
        let mut signatures = manifest();
        signatures.set_changes[0]
            .certificate
            .as_mut()
            .expect("the manifest's set change is certified")
            .signatures = vec![Default::default(); 100_000];
        let mut top = manifest();
        top.certificate
            .as_mut()
            .expect("the manifest is certified")
            .signatures = vec![Default::default(); 100_000];
        // The same bounds across repeats of a field, which protobuf merges into one.
        let mut repeated = offering(manifest());
        repeated.extend(offering(manifest()));
        assert_eq!(
            check_response(&repeated),
            Err(WireError::Malformed("a message field repeated"))
        );
        for (what, m) in [
            ("empty set changes", changes),
            ("empty validator entries", validators),
            ("empty chunk entries", chunks),
            ("a set change's empty signatures", signatures),
            ("the manifest's empty signatures", top),
        ] {
            let bytes = offering(m);
            assert!(bytes.len() < 1 << 20, "{what}: {} bytes", bytes.len());
            assert!(
                matches!(
                    check_response(&bytes),
                    Err(WireError::BadManifest(_) | WireError::BadCertificate(_))
                ),
                "{what} passed: {:?}",
                check_response(&bytes)
            );
        }
    }

    #[test]
    fn malformed_bytes_are_refused() {
        assert!(matches!(
            check_tx_gossip(&[0x0a, 0x05, 1]),
            Err(WireError::Malformed(_))
        ));
        assert!(matches!(
            check_tx_gossip(&[0xff; 11]),
            Err(WireError::Malformed(_))
        ));
        assert!(matches!(
            check_tx_gossip(&[0x0b]),
            Err(WireError::Malformed(_))
        ));
    }
}
