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
