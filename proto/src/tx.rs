//! Transactions: building, signing, hashing and the bounded decode that admission uses.

use bytes::Bytes;
use prost::Message;

use crate::crypto::{Address, Hash32, Keypair, PUBLIC_KEY_LEN, SIGNATURE_LEN, TX_SIGN_DOMAIN};
use crate::v1::{tx_body, Cosignature, Transaction, TxBody};

/// Domain of a transaction's leaf in the block's transaction root.
const TX_LEAF_DOMAIN: &str = "quorate/v1/tx-leaf";

/// The message a transaction signature covers: a domain tag followed by the transaction hash.
pub fn signing_message(tx_hash: &Hash32) -> [u8; TX_SIGN_DOMAIN.len() + 32] {
    let mut msg = [0u8; TX_SIGN_DOMAIN.len() + 32];
    msg[..TX_SIGN_DOMAIN.len()].copy_from_slice(TX_SIGN_DOMAIN);
    msg[TX_SIGN_DOMAIN.len()..].copy_from_slice(&tx_hash.0);
    msg
}

/// The hash of a transaction: blake3 over its encoded body bytes as signed.
pub fn tx_hash(body_bytes: &[u8]) -> Hash32 {
    Hash32::of(body_bytes)
}

/// Encodes and signs `body` with `key`.
pub fn sign(body: &TxBody, key: &Keypair) -> Transaction {
    let body_bytes = Bytes::from(body.encode_to_vec());
    let hash = tx_hash(&body_bytes);
    let signature = key.sign(&signing_message(&hash));
    Transaction {
        body: body_bytes,
        public_key: Bytes::copy_from_slice(&key.public().0),
        signature: Bytes::copy_from_slice(&signature),
        cosignatures: Vec::new(),
    }
}

/// Adds `key`'s signature to `tx` as a cosignature. Refused (returns false) when `key` already
/// signed it.
pub fn cosign(tx: &mut Transaction, key: &Keypair) -> bool {
    let public = key.public().0;
    if tx.public_key.as_ref() == public
        || tx
            .cosignatures
            .iter()
            .any(|c| c.public_key.as_ref() == public)
    {
        return false;
    }
    let signature = key.sign(&signing_message(&tx_hash(&tx.body)));
    tx.cosignatures.push(Cosignature {
        public_key: Bytes::copy_from_slice(&public),
        signature: Bytes::copy_from_slice(&signature),
    });
    true
}

/// A transaction's leaf in its block's transaction root: blake3 `derive_key("quorate/v1/tx-leaf")`
/// over the hash and the signing public keys in the order carried, so that a block commits to
/// which keys authorised each transaction (they decide its execution). Every copy of a
/// transaction that matches a block's root is signed by the same keys: a copy re-signed by
/// another key, or with a cosignature added or stripped, is another leaf (issue 24).
pub fn tx_leaf(hash: &Hash32, tx: &Transaction) -> Hash32 {
    let mut hasher = blake3::Hasher::new_derive_key(TX_LEAF_DOMAIN);
    hasher.update(&hash.0);
    hasher.update(&tx.public_key);
    for c in &tx.cosignatures {
        hasher.update(&c.public_key);
    }
    Hash32(*hasher.finalize().as_bytes())
}

/// [`tx_leaf`] of a transaction not yet decoded (its hash computed here).
pub fn leaf_of(tx: &Transaction) -> Hash32 {
    tx_leaf(&tx_hash(&tx.body), tx)
}

/// A transfer body for `key`'s account.
pub fn transfer_body(
    chain_id: &str,
    key: &Keypair,
    nonce: u64,
    fuel_limit: u64,
    to: Address,
    amount: u64,
    memo: Vec<u8>,
) -> TxBody {
    let transfer = crate::v1::Transfer {
        to: Bytes::copy_from_slice(&to.0),
        amount,
        memo: Bytes::from(memo),
    };
    body(
        chain_id,
        key,
        nonce,
        fuel_limit,
        tx_body::Payload::Transfer(transfer),
    )
}

/// A body carrying `payload` for `key`'s account.
pub fn body(
    chain_id: &str,
    key: &Keypair,
    nonce: u64,
    fuel_limit: u64,
    payload: tx_body::Payload,
) -> TxBody {
    body_for(chain_id, key.address(), nonce, fuel_limit, payload)
}

/// A body carrying `payload` for account `signer` (a multi-key account or a multi-signature
/// address signs with keys whose own addresses differ from it).
pub fn body_for(
    chain_id: &str,
    signer: Address,
    nonce: u64,
    fuel_limit: u64,
    payload: tx_body::Payload,
) -> TxBody {
    TxBody {
        chain_id: chain_id.to_owned(),
        signer: Bytes::copy_from_slice(&signer.0),
        nonce,
        fuel_limit,
        key_set: None,
        payload: Some(payload),
    }
}

/// Why bytes are not a well-formed transaction (before any chain rule is applied).
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum DecodeError {
    /// The whole encoded transaction is larger than allowed.
    #[error("transaction is {size} bytes; the limit is {max}")]
    TooLarge {
        /// Encoded size.
        size: usize,
        /// Chain limit.
        max: usize,
    },
    /// Not a valid protobuf `Transaction`/`TxBody`.
    #[error("not a valid transaction encoding: {0}")]
    Protobuf(String),
    /// Public key is not 32 bytes.
    #[error("public key is {0} bytes; expected 32")]
    PublicKeyLength(usize),
    /// Signature is not 64 bytes.
    #[error("signature is {0} bytes; expected 64")]
    SignatureLength(usize),
    /// Signer is not a 20-byte address.
    #[error("signer is {0} bytes; expected 20")]
    SignerLength(usize),
    /// More signatures than an account may have keys.
    #[error("{0} signatures; a transaction carries at most {max}", max = crate::keyset::MAX_KEYS)]
    TooManySignatures(usize),
}

/// A transaction whose body is decoded and whose hash is computed, not yet verified.
#[derive(Clone, Debug)]
pub struct DecodedTx {
    /// The transaction as received (body bytes untouched).
    pub tx: Transaction,
    /// The decoded body.
    pub body: TxBody,
    /// blake3 of the body bytes.
    pub hash: Hash32,
    /// The signer address from the body.
    pub signer: Address,
    /// Public key bytes.
    pub public_key: [u8; PUBLIC_KEY_LEN],
    /// Encoded size of the whole transaction (for mempool accounting).
    pub encoded_len: usize,
}

impl DecodedTx {
    /// Decodes the body of an already-parsed `Transaction`, enforcing `max_tx_bytes` on the
    /// encoded transaction before touching the body.
    pub fn from_transaction(tx: Transaction, max_tx_bytes: usize) -> Result<Self, DecodeError> {
        let encoded_len = tx.encoded_len();
        if encoded_len > max_tx_bytes {
            return Err(DecodeError::TooLarge {
                size: encoded_len,
                max: max_tx_bytes,
            });
        }
        let public_key: [u8; PUBLIC_KEY_LEN] = tx
            .public_key
            .as_ref()
            .try_into()
            .map_err(|_| DecodeError::PublicKeyLength(tx.public_key.len()))?;
        if tx.signature.len() != SIGNATURE_LEN {
            return Err(DecodeError::SignatureLength(tx.signature.len()));
        }
        if tx.cosignatures.len() >= crate::keyset::MAX_KEYS {
            return Err(DecodeError::TooManySignatures(tx.cosignatures.len() + 1));
        }
        for c in &tx.cosignatures {
            if c.public_key.len() != PUBLIC_KEY_LEN {
                return Err(DecodeError::PublicKeyLength(c.public_key.len()));
            }
            if c.signature.len() != SIGNATURE_LEN {
                return Err(DecodeError::SignatureLength(c.signature.len()));
            }
        }
        // Decoding from `Bytes` shares the buffer for the body's bytes fields: no copy.
        let body =
            TxBody::decode(tx.body.clone()).map_err(|e| DecodeError::Protobuf(e.to_string()))?;
        let signer = Address::from_slice(&body.signer)
            .map_err(|_| DecodeError::SignerLength(body.signer.len()))?;
        let hash = tx_hash(&tx.body);
        Ok(Self {
            tx,
            body,
            hash,
            signer,
            public_key,
            encoded_len,
        })
    }

    /// Decodes raw bytes of an encoded `Transaction`, size-checked first.
    pub fn decode(bytes: Bytes, max_tx_bytes: usize) -> Result<Self, DecodeError> {
        if bytes.len() > max_tx_bytes {
            return Err(DecodeError::TooLarge {
                size: bytes.len(),
                max: max_tx_bytes,
            });
        }
        let tx = Transaction::decode(bytes).map_err(|e| DecodeError::Protobuf(e.to_string()))?;
        Self::from_transaction(tx, max_tx_bytes)
    }

    /// The message the signature must cover.
    pub fn signing_message(&self) -> [u8; TX_SIGN_DOMAIN.len() + 32] {
        signing_message(&self.hash)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::verify_strict;

    #[test]
    fn signed_transfer_decodes_and_verifies() {
        let key = Keypair::from_secret(&[1; 32]);
        let to = Keypair::from_secret(&[2; 32]).address();
        let tx = sign(&transfer_body("c", &key, 0, 1000, to, 5, vec![]), &key);
        let d = DecodedTx::decode(Bytes::from(tx.encode_to_vec()), 4096).expect("decodes");
        assert_eq!(d.signer, key.address());
        assert_eq!(d.hash, tx_hash(&tx.body));
        assert!(verify_strict(
            &d.public_key,
            &d.signing_message(),
            &d.tx.signature
        ));
    }

    #[test]
    fn oversized_and_malformed_are_refused() {
        let key = Keypair::from_secret(&[1; 32]);
        let tx = sign(
            &transfer_body("c", &key, 0, 1000, key.address(), 5, vec![0; 500]),
            &key,
        );
        let bytes = Bytes::from(tx.encode_to_vec());
        assert!(matches!(
            DecodedTx::decode(bytes, 100),
            Err(DecodeError::TooLarge { .. })
        ));
        assert!(matches!(
            DecodedTx::decode(Bytes::from_static(&[0xff, 0xff, 0xff]), 100),
            Err(DecodeError::Protobuf(_))
        ));
        let mut short = tx.clone();
        short.signature = Bytes::from_static(&[1, 2, 3]);
        assert_eq!(
            DecodedTx::from_transaction(short, 4096).err(),
            Some(DecodeError::SignatureLength(3))
        );
        // At most 16 signatures in all; each cosignature's lengths are checked too.
        let mut crowded = tx.clone();
        for i in 0..15u8 {
            assert!(cosign(&mut crowded, &Keypair::from_secret(&[10 + i; 32])));
        }
        assert!(DecodedTx::from_transaction(crowded.clone(), 8192).is_ok());
        assert!(cosign(&mut crowded, &Keypair::from_secret(&[99; 32])));
        assert_eq!(
            DecodedTx::from_transaction(crowded, 8192).err(),
            Some(DecodeError::TooManySignatures(17))
        );
        let mut bad_cosig = tx.clone();
        assert!(cosign(&mut bad_cosig, &Keypair::from_secret(&[3; 32])));
        bad_cosig.cosignatures[0].public_key = Bytes::from_static(&[7; 31]);
        assert_eq!(
            DecodedTx::from_transaction(bad_cosig, 4096).err(),
            Some(DecodeError::PublicKeyLength(31))
        );
    }

    #[test]
    fn a_leaf_binds_the_hash_and_every_signing_key() {
        let key = Keypair::from_secret(&[1; 32]);
        let tx = sign(
            &transfer_body("c", &key, 0, 1000, key.address(), 5, vec![]),
            &key,
        );
        let hash = tx_hash(&tx.body);
        assert_ne!(
            tx_leaf(&hash, &tx),
            hash,
            "one key signed: the leaf binds it too"
        );
        let other = Keypair::from_secret(&[9; 32]);
        let resigned = Transaction {
            public_key: Bytes::copy_from_slice(&other.public().0),
            signature: Bytes::copy_from_slice(&other.sign(&signing_message(&hash))),
            ..tx.clone()
        };
        assert_ne!(tx_leaf(&hash, &resigned), tx_leaf(&hash, &tx), "re-signed");
        let mut with_b = tx.clone();
        assert!(cosign(&mut with_b, &Keypair::from_secret(&[2; 32])));
        let mut with_c = tx.clone();
        assert!(cosign(&mut with_c, &Keypair::from_secret(&[3; 32])));
        assert_eq!(tx_hash(&with_b.body), hash, "cosigning keeps the hash");
        assert_ne!(tx_leaf(&hash, &with_b), hash);
        assert_ne!(tx_leaf(&hash, &with_b), tx_leaf(&hash, &with_c));
        assert!(!cosign(&mut with_b, &key), "a key signs once");
    }
}
