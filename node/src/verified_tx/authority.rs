//! Whether the keys that signed a transaction may act for its signer account: each key must
//! be one of the account's, and their weights must reach the threshold of the action's class.
//! Admission asks it against committed state, execution against the state at its block, and
//! the mempool again when a key-set change commits (docs/TRANSACTIONS.md, "Multi-key accounts").

use quorate_proto::crypto::Address;
use quorate_proto::keyset::{self, ActionClass, ActionKind};
use quorate_proto::v1::KeySet;

use super::{Payload, VerifiedTx};

/// Why the signatures of a transaction do not authorise it.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum AuthError {
    /// A single-key account, and the key that signed is not the one its address comes from.
    #[error("signer {signer} is not the address {derived} of the signing key")]
    SignerMismatch {
        /// The account.
        signer: Address,
        /// Address of the signing key.
        derived: Address,
    },
    /// A key that signed is not a key of the account.
    #[error("key {key} is not a key of account {account}")]
    ForeignKey {
        /// The account.
        account: Address,
        /// The key (hex).
        key: String,
    },
    /// The keys are the account's, but their weights fall short.
    #[error("keys of weight {signed} signed; {action} needs {needed}")]
    InsufficientWeight {
        /// Sum of the signing keys' weights.
        signed: u64,
        /// The threshold.
        needed: u32,
        /// The action's class, in words ("a transfer of 5000").
        action: String,
    },
}

/// The class of `tx`'s action under `set`.
pub fn class(tx: &VerifiedTx, set: &KeySet) -> ActionClass {
    let kind = match tx.payload {
        Payload::Keys(_) => ActionKind::KeyChange,
        Payload::Deploy { .. } => ActionKind::Deploy,
        Payload::Call { .. } => ActionKind::Call,
        Payload::Transfer { .. } | Payload::Admin(_) | Payload::Governance(_) => ActionKind::Other,
    };
    keyset::class_of(set, kind, tx.payload.amount_out())
}

/// The key set that decides for `tx`'s account: `committed` when the account has one,
/// otherwise the one `tx` registers (a multi-signature address's first transaction, whose
/// derivation admission checked), otherwise `None` (a single-key account).
pub fn deciding_set<'a>(tx: &'a VerifiedTx, committed: Option<&'a KeySet>) -> Option<&'a KeySet> {
    committed.or(tx.key_set.as_ref())
}

/// Checks `tx`'s signing keys against `set` (see [`deciding_set`]); with no set, the account
/// is a single-key account: one signature, by the key its address is derived from.
pub fn authorize(tx: &VerifiedTx, set: Option<&KeySet>) -> Result<(), AuthError> {
    let Some((set, signed)) = members(tx, set)? else {
        return Ok(());
    };
    let action = class(tx, set);
    let needed = keyset::threshold(set, action);
    if signed < u64::from(needed) {
        return Err(AuthError::InsufficientWeight {
            signed,
            needed,
            action: action.to_string(),
        });
    }
    Ok(())
}

/// The first half of [`authorize`], cheap enough to run before any signature is verified:
/// every signing key is one of the account's. Returns the set with the signing keys' weight
/// (`None` for a single-key account, whose one key is right).
pub fn members<'a>(
    tx: &VerifiedTx,
    set: Option<&'a KeySet>,
) -> Result<Option<(&'a KeySet, u64)>, AuthError> {
    let Some(set) = set else {
        let derived = Address::of_public_key(&tx.primary_key());
        if derived != tx.signer {
            return Err(AuthError::SignerMismatch {
                signer: tx.signer,
                derived,
            });
        }
        if let Some(c) = tx.tx.cosignatures.first() {
            return Err(AuthError::ForeignKey {
                account: tx.signer,
                key: hex::encode(&c.public_key),
            });
        }
        return Ok(None);
    };
    let mut signed = 0u64;
    for key in tx.signing_keys() {
        match keyset::weight_of(set, key) {
            Some(w) => signed += u64::from(w),
            None => {
                return Err(AuthError::ForeignKey {
                    account: tx.signer,
                    key: hex::encode(key),
                })
            }
        }
    }
    Ok(Some((set, signed)))
}
