//! Key sets: the weighted keys that control an account, the thresholds per class of action,
//! multi-signature address derivation, and the key-change rules with their lock-out guard.
//!
//! An account without a key set entry is controlled by the one key its address is derived
//! from ([`single`]). A key set is kept in canonical form — keys sorted by public key, each
//! once — so that its encoding and the address derived from it are reproducible by any client
//! (docs/TRANSACTIONS.md, "Multi-key accounts").

use bytes::Bytes;

use crate::crypto::{Address, ADDRESS_LEN, PUBLIC_KEY_LEN};
use crate::v1::{key_change, KeyChange, KeySet, Thresholds, WeightedKey};

/// Most keys an account may hold (a transaction carries at most this many signatures).
pub const MAX_KEYS: usize = 16;
/// Domain of multi-signature address derivation (blake3 `derive_key` context).
pub const MULTISIG_ADDRESS_DOMAIN: &str = "quorate/v1/multisig-address";

/// The class of an action, which decides the threshold it needs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ActionClass {
    /// Anything the other classes do not cover.
    Base,
    /// A change to the account's key set.
    KeyManagement,
    /// A contract deploy.
    Deploy,
    /// A transfer above the account's `large_transfer_above`.
    LargeTransfer(u64),
    /// A contract call, with the value it carries (large when above `large_transfer_above`).
    ContractCall {
        /// The value the call carries.
        value: u64,
        /// Whether that is a large transfer.
        large: bool,
    },
}

impl std::fmt::Display for ActionClass {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Base => f.write_str("this action"),
            Self::KeyManagement => f.write_str("a key change"),
            Self::Deploy => f.write_str("a deploy"),
            Self::LargeTransfer(amount) => write!(f, "a transfer of {amount}"),
            Self::ContractCall { value: 0, .. } => f.write_str("a contract call"),
            Self::ContractCall { value, .. } => write!(f, "a contract call carrying {value}"),
        }
    }
}

/// Why a key set or a key change is refused.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum KeySetError {
    /// No key, or more than [`MAX_KEYS`].
    #[error("a key set holds 1 to {MAX_KEYS} keys; this one has {0}")]
    KeyCount(usize),
    /// A public key is not 32 bytes.
    #[error("public key is {0} bytes; expected 32")]
    KeyLength(usize),
    /// A public key no one can sign for: not a point of the curve, or one of small order (the
    /// identity among them). Counted toward a threshold it would lock the account out.
    #[error("public key {0} is not a key anyone can sign with (not a valid ed25519 point, or of small order)")]
    UnusableKey(String),
    /// A key appears twice, or keys are out of canonical order.
    #[error("keys must be sorted by public key, each once")]
    NotCanonical,
    /// A weight of 0.
    #[error("key {0} has weight 0; weights are at least 1")]
    ZeroWeight(String),
    /// No thresholds.
    #[error("the key set carries no thresholds")]
    NoThresholds,
    /// The base or key-management threshold is 0.
    #[error("the {0} threshold must be at least 1")]
    ZeroThreshold(&'static str),
    /// A threshold the keys cannot reach: the account would be locked out of that action.
    #[error("the {name} threshold {threshold} is above the total weight {total} of the keys: the account would be locked out")]
    Unreachable {
        /// Which threshold.
        name: &'static str,
        /// Its value.
        threshold: u32,
        /// Sum of the weights.
        total: u64,
    },
    /// Adding a key the set holds.
    #[error("key {0} is already in the key set")]
    KeyPresent(String),
    /// Removing or re-weighting a key the set does not hold.
    #[error("key {0} is not in the key set")]
    KeyAbsent(String),
    /// A key change with no change.
    #[error("the key change carries no change")]
    Empty,
}

/// The key set of a single-key account: its one key, weight 1, every threshold 1.
pub fn single(public_key: &[u8; PUBLIC_KEY_LEN]) -> KeySet {
    KeySet {
        keys: vec![WeightedKey {
            public_key: Bytes::copy_from_slice(public_key),
            weight: 1,
        }],
        thresholds: Some(Thresholds {
            base: 1,
            key_management: 1,
            deploy: 0,
            large_transfer_above: 0,
            large_transfer: 0,
            contract_call: 0,
        }),
    }
}

/// The key set of `keys` (public key, weight; any order) with `thresholds`, in canonical
/// order (still to be [`validate`]d).
pub fn of(keys: &[([u8; PUBLIC_KEY_LEN], u32)], thresholds: Thresholds) -> KeySet {
    canonicalize(KeySet {
        keys: keys
            .iter()
            .map(|(k, weight)| WeightedKey {
                public_key: Bytes::copy_from_slice(k),
                weight: *weight,
            })
            .collect(),
        thresholds: Some(thresholds),
    })
}

/// Puts the keys of `set` in canonical order (it is still to be [`validate`]d).
pub fn canonicalize(mut set: KeySet) -> KeySet {
    set.keys.sort_by(|a, b| a.public_key.cmp(&b.public_key));
    set
}

/// Sum of the weights of `set`'s keys.
pub fn total_weight(set: &KeySet) -> u64 {
    set.keys.iter().map(|k| u64::from(k.weight)).sum()
}

/// Whether anyone can sign for the 32 bytes `key`: a valid ed25519 point not of small order
/// (issue 25: the lock-out guard counted the weight of keys no signature can ever come from).
fn can_sign_for(key: &[u8]) -> bool {
    <[u8; PUBLIC_KEY_LEN]>::try_from(key)
        .ok()
        .and_then(|b| ed25519_dalek::VerifyingKey::from_bytes(&b).ok())
        .is_some_and(|vk| !vk.is_weak())
}

/// Checks that `set` is canonical, that every key is one someone can sign with, and that every
/// threshold in use is reachable by its keys.
pub fn validate(set: &KeySet) -> Result<(), KeySetError> {
    if set.keys.is_empty() || set.keys.len() > MAX_KEYS {
        return Err(KeySetError::KeyCount(set.keys.len()));
    }
    for k in &set.keys {
        if k.public_key.len() != PUBLIC_KEY_LEN {
            return Err(KeySetError::KeyLength(k.public_key.len()));
        }
        if k.weight == 0 {
            return Err(KeySetError::ZeroWeight(hex::encode(&k.public_key)));
        }
        if !can_sign_for(&k.public_key) {
            return Err(KeySetError::UnusableKey(hex::encode(&k.public_key)));
        }
    }
    if set
        .keys
        .windows(2)
        .any(|w| w[0].public_key >= w[1].public_key)
    {
        return Err(KeySetError::NotCanonical);
    }
    let t = set.thresholds.as_ref().ok_or(KeySetError::NoThresholds)?;
    if t.base == 0 {
        return Err(KeySetError::ZeroThreshold("base"));
    }
    if t.key_management == 0 {
        return Err(KeySetError::ZeroThreshold("key management"));
    }
    let total = total_weight(set);
    for (name, threshold) in [
        ("base", t.base),
        ("key management", t.key_management),
        ("deploy", t.deploy),
        ("large transfer", t.large_transfer),
        ("contract call", t.contract_call),
    ] {
        if u64::from(threshold) > total {
            return Err(KeySetError::Unreachable {
                name,
                threshold,
                total,
            });
        }
    }
    Ok(())
}

/// The canonical bytes an address is derived from: for each key in order its 32 bytes and its
/// weight (u32, big-endian), then the thresholds base, key_management, deploy (u32 BE),
/// large_transfer_above (u64 BE) and large_transfer (u32 BE).
pub fn canonical_bytes(set: &KeySet) -> Vec<u8> {
    let t = set.thresholds.unwrap_or_default();
    let mut out = Vec::with_capacity(1 + set.keys.len() * 36 + 24);
    out.push(set.keys.len() as u8);
    for k in &set.keys {
        out.extend_from_slice(&k.public_key);
        out.extend_from_slice(&k.weight.to_be_bytes());
    }
    out.extend_from_slice(&t.base.to_be_bytes());
    out.extend_from_slice(&t.key_management.to_be_bytes());
    out.extend_from_slice(&t.deploy.to_be_bytes());
    out.extend_from_slice(&t.large_transfer_above.to_be_bytes());
    out.extend_from_slice(&t.large_transfer.to_be_bytes());
    // Only when set, so that every address derived before the threshold existed stays.
    if t.contract_call != 0 {
        out.extend_from_slice(&t.contract_call.to_be_bytes());
    }
    out
}

/// The multi-signature address of `set`: the first 20 bytes of blake3 `derive_key`
/// ([`MULTISIG_ADDRESS_DOMAIN`]) over [`canonical_bytes`]. Distinct from every single-key
/// address (another derivation context).
pub fn address(set: &KeySet) -> Address {
    let mut hasher = blake3::Hasher::new_derive_key(MULTISIG_ADDRESS_DOMAIN);
    hasher.update(&canonical_bytes(set));
    let mut out = [0u8; ADDRESS_LEN];
    out.copy_from_slice(&hasher.finalize().as_bytes()[..ADDRESS_LEN]);
    Address(out)
}

/// The weight of `public_key` in `set`, if it is one of its keys.
pub fn weight_of(set: &KeySet, public_key: &[u8]) -> Option<u32> {
    set.keys
        .iter()
        .find(|k| k.public_key.as_ref() == public_key)
        .map(|k| k.weight)
}

/// What kind of action a transaction is, for its class.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ActionKind {
    /// A key change.
    KeyChange,
    /// A contract deploy.
    Deploy,
    /// A contract call.
    Call,
    /// A transfer or an admin action.
    Other,
}

/// The class of an action of `kind` moving `amount_out` tokens out of the account (the amount
/// of a transfer, the value a call carries).
pub fn class_of(set: &KeySet, kind: ActionKind, amount_out: u64) -> ActionClass {
    let t = set.thresholds.unwrap_or_default();
    let large = t.large_transfer != 0 && amount_out > t.large_transfer_above;
    match kind {
        ActionKind::KeyChange => ActionClass::KeyManagement,
        ActionKind::Deploy => ActionClass::Deploy,
        ActionKind::Call => ActionClass::ContractCall {
            value: amount_out,
            large,
        },
        ActionKind::Other if large => ActionClass::LargeTransfer(amount_out),
        ActionKind::Other => ActionClass::Base,
    }
}

/// The weight an action of `class` needs from `set`'s keys.
pub fn threshold(set: &KeySet, class: ActionClass) -> u32 {
    let t = set.thresholds.unwrap_or_default();
    match class {
        ActionClass::Base => t.base,
        ActionClass::KeyManagement => t.key_management,
        ActionClass::Deploy if t.deploy != 0 => t.deploy,
        ActionClass::Deploy => t.base,
        ActionClass::LargeTransfer(_) => t.large_transfer.max(t.base),
        ActionClass::ContractCall { large, .. } => {
            // Never below `base`: a call may forward what it carries.
            let call = t.contract_call.max(t.base);
            if large {
                call.max(t.large_transfer)
            } else {
                call
            }
        }
    }
}

/// `set` with `change` applied, checked: a change that would leave a threshold the keys
/// cannot reach (or no key) is refused, so no change can lock an account out.
pub fn apply_change(set: &KeySet, change: &KeyChange) -> Result<KeySet, KeySetError> {
    let mut next = set.clone();
    match change.change.as_ref().ok_or(KeySetError::Empty)? {
        key_change::Change::AddKey(k) => {
            if weight_of(set, &k.public_key).is_some() {
                return Err(KeySetError::KeyPresent(hex::encode(&k.public_key)));
            }
            next.keys.push(k.clone());
        }
        key_change::Change::RemoveKey(pk) => {
            if weight_of(set, pk).is_none() {
                return Err(KeySetError::KeyAbsent(hex::encode(pk)));
            }
            next.keys.retain(|k| k.public_key != *pk);
        }
        key_change::Change::SetWeight(k) => {
            let slot = next
                .keys
                .iter_mut()
                .find(|x| x.public_key == k.public_key)
                .ok_or_else(|| KeySetError::KeyAbsent(hex::encode(&k.public_key)))?;
            slot.weight = k.weight;
        }
        key_change::Change::SetThresholds(t) => next.thresholds = Some(*t),
    }
    let next = canonicalize(next);
    validate(&next)?;
    Ok(next)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The public key of the secret `[b; 32]`, with `weight`.
    fn key(b: u8, weight: u32) -> WeightedKey {
        WeightedKey {
            public_key: Bytes::copy_from_slice(&crate::Keypair::from_secret(&[b; 32]).public().0),
            weight,
        }
    }

    fn two_of_three() -> KeySet {
        canonicalize(KeySet {
            keys: vec![key(3, 1), key(1, 1), key(2, 1)],
            thresholds: Some(Thresholds {
                base: 2,
                key_management: 3,
                deploy: 0,
                large_transfer_above: 5_000,
                large_transfer: 3,
                contract_call: 0,
            }),
        })
    }

    #[test]
    fn canonical_sets_validate_and_derive_one_address_whatever_the_given_order() {
        let a = two_of_three();
        validate(&a).expect("valid");
        let mut shuffled = a.clone();
        shuffled.keys.reverse();
        assert_eq!(validate(&shuffled), Err(KeySetError::NotCanonical));
        assert_eq!(address(&canonicalize(shuffled)), address(&a));
        let mut other = a.clone();
        other.thresholds.as_mut().expect("thresholds").base = 1;
        assert_ne!(
            address(&other),
            address(&a),
            "thresholds are part of the address"
        );
        let single_key = [9u8; 32];
        assert_ne!(
            address(&single(&single_key)),
            Address::of_public_key(&single_key),
            "multi-signature and single-key addresses never coincide"
        );
    }

    /// Issue 25 (low): the lock-out guard counted keys no one can sign with. Adding one with
    /// weight 5 and removing the real key left an account whose thresholds were "reachable"
    /// and which no transaction could ever move again.
    #[test]
    fn keys_no_one_can_sign_with_are_refused() {
        let identity = {
            let mut b = [0u8; 32];
            b[0] = 1;
            b
        };
        let mut off_curve = [0u8; 32];
        // The first y whose x² is not a square (no point has it).
        for y in 2u8..=255 {
            off_curve[0] = y;
            if ed25519_dalek::VerifyingKey::from_bytes(&off_curve).is_err() {
                break;
            }
        }
        assert!(ed25519_dalek::VerifyingKey::from_bytes(&off_curve).is_err());
        for bad in [identity, off_curve, [0u8; 32]] {
            let set = canonicalize(KeySet {
                keys: vec![
                    key(1, 1),
                    WeightedKey {
                        public_key: Bytes::copy_from_slice(&bad),
                        weight: 5,
                    },
                ],
                thresholds: Some(Thresholds {
                    base: 5,
                    key_management: 5,
                    ..Thresholds::default()
                }),
            });
            assert!(
                matches!(validate(&set), Err(KeySetError::UnusableKey(_))),
                "{}: {:?}",
                hex::encode(bad),
                validate(&set)
            );
        }
        validate(&two_of_three()).expect("real keys pass");
    }

    /// Issue 25: calls have a threshold of their own; a call carrying a large value needs the
    /// higher of it and the large-transfer one; an address derived without it is unchanged.
    #[test]
    fn contract_calls_have_their_own_threshold() {
        let mut s = two_of_three();
        let before = address(&s);
        let call = |s: &KeySet, value| threshold(s, class_of(s, ActionKind::Call, value));
        assert_eq!(call(&s, 0), 2, "0: the base threshold");
        assert_eq!(call(&s, 5_001), 3, "a large value: large_transfer");
        s.thresholds.as_mut().expect("t").contract_call = 3;
        validate(&s).expect("reachable");
        assert_ne!(
            address(&s),
            before,
            "a set threshold is part of the address"
        );
        assert_eq!(call(&s, 0), 3);
        assert_eq!(
            threshold(&s, class_of(&s, ActionKind::Other, 10)),
            2,
            "transfers keep base"
        );
        s.thresholds.as_mut().expect("t").contract_call = 4;
        assert!(matches!(
            validate(&s),
            Err(KeySetError::Unreachable {
                name: "contract call",
                ..
            })
        ));
        s.thresholds.as_mut().expect("t").contract_call = 0;
        assert_eq!(
            address(&s),
            before,
            "unset, the address is the one derived before"
        );
    }

    #[test]
    fn thresholds_per_class() {
        let s = two_of_three();
        assert_eq!(threshold(&s, class_of(&s, ActionKind::Other, 5_000)), 2);
        assert_eq!(threshold(&s, class_of(&s, ActionKind::Other, 5_001)), 3);
        assert_eq!(threshold(&s, class_of(&s, ActionKind::Deploy, 0)), 2);
        assert_eq!(threshold(&s, class_of(&s, ActionKind::KeyChange, 0)), 3);
    }

    #[test]
    fn changes_that_would_lock_the_account_out_are_refused() {
        let s = two_of_three();
        let remove = |b: u8| KeyChange {
            change: Some(key_change::Change::RemoveKey(key(b, 1).public_key)),
        };
        // Key management needs 3 of the 3 weights: removing any key strands it.
        assert!(matches!(
            apply_change(&s, &remove(1)),
            Err(KeySetError::Unreachable {
                name: "key management",
                threshold: 3,
                total: 2
            })
        ));
        let heavier = apply_change(
            &s,
            &KeyChange {
                change: Some(key_change::Change::SetWeight(key(2, 2))),
            },
        )
        .expect("re-weight");
        assert_eq!(total_weight(&heavier), 4);
        let after = apply_change(&heavier, &remove(1)).expect("3 of 3 still reachable");
        assert_eq!(after.keys.len(), 2);
        assert!(matches!(
            apply_change(&after, &remove(9)),
            Err(KeySetError::KeyAbsent(_))
        ));
        let one: [u8; 32] = key(1, 1).public_key.as_ref().try_into().expect("32 bytes");
        let mut last = single(&one);
        assert_eq!(
            apply_change(&last, &remove(1)),
            Err(KeySetError::KeyCount(0))
        );
        last = apply_change(
            &last,
            &KeyChange {
                change: Some(key_change::Change::AddKey(key(0, 1))),
            },
        )
        .expect("add");
        assert!(
            last.keys[0].public_key < last.keys[1].public_key,
            "kept canonical"
        );
    }
}
