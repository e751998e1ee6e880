//! Hashing (blake3, computed by the host and charged per byte) and addresses derived from it.

use crate::{env, Address};

/// blake3 of `data`.
pub fn blake3(data: &[u8]) -> [u8; 32] {
    env::blake3(data)
}

/// An address derived from a domain tag and parts: the first 20 bytes of blake3 over the tag's
/// length (u16, big-endian), the tag, then each part's length (u16, big-endian) and bytes. For
/// addresses no key controls, which only the contract that derives them can move value from.
pub fn derive_address(tag: &str, parts: &[&[u8]]) -> Address {
    let mut buf = alloc::vec::Vec::with_capacity(64);
    for p in core::iter::once(tag.as_bytes()).chain(parts.iter().copied()) {
        buf.extend_from_slice(&(p.len() as u16).to_be_bytes());
        buf.extend_from_slice(p);
    }
    let digest = blake3(&buf);
    let mut out = [0u8; 20];
    out.copy_from_slice(&digest[..20]);
    Address(out)
}

/// First 20 bytes of blake3 in key-derivation mode (computed in the contract: the host offers
/// plain blake3 only).
fn derive_key_address(context: &str, material: &[u8]) -> Address {
    let mut hasher = ::blake3::Hasher::new_derive_key(context);
    hasher.update(material);
    let mut out = [0u8; 20];
    out.copy_from_slice(&hasher.finalize().as_bytes()[..20]);
    Address(out)
}

/// Whether `key` alone may sign a contract call for `account` now: its weight in the account's
/// key set reaches the threshold of a call (so it can stand for the account, in a 2-of-2
/// address for instance); for an account without a key set, whether `account` is the key's
/// own address. Reads state: charged like two balance reads.
pub fn key_acts_for(account: &Address, key: &[u8; 32]) -> bool {
    env::key_acts_for(&account.0, key)
}

/// The address of an account whose one ed25519 key is `public_key` (the node's derivation,
/// docs/TRANSACTIONS.md §1).
pub fn address_of_key(public_key: &[u8; 32]) -> Address {
    derive_key_address("quorate/v1/address", public_key)
}

/// The multi-signature address of `keys` (public key, weight; any order) with thresholds
/// `base` and `key_management` and no deploy or large-transfer threshold: the address
/// `quorate keys multisig` derives (docs/TRANSACTIONS.md, "Multi-key accounts"). Transactions
/// from it carry signatures whose weights reach the threshold.
pub fn multisig_address(keys: &[([u8; 32], u32)], base: u32, key_management: u32) -> Address {
    let mut sorted = keys.to_vec();
    sorted.sort();
    let mut material = alloc::vec::Vec::with_capacity(1 + sorted.len() * 36 + 24);
    material.push(sorted.len() as u8);
    for (key, weight) in &sorted {
        material.extend_from_slice(key);
        material.extend_from_slice(&weight.to_be_bytes());
    }
    material.extend_from_slice(&base.to_be_bytes());
    material.extend_from_slice(&key_management.to_be_bytes());
    material.extend_from_slice(&0u32.to_be_bytes());
    material.extend_from_slice(&0u64.to_be_bytes());
    material.extend_from_slice(&0u32.to_be_bytes());
    derive_key_address("quorate/v1/multisig-address", &material)
}
