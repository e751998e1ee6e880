//! Binary Merkle roots over 32-byte leaf hashes (transaction and receipt roots).
//!
//! Leaves are hashed as `blake3(0x00 ‖ leaf)`, inner nodes as `blake3(0x01 ‖ left ‖ right)`;
//! an odd node at the end of a level is carried up unchanged (never duplicated, so two different
//! lists never share a root). The empty list has the root `blake3("quorate/v1/merkle-empty")`.

use crate::crypto::Hash32;

fn hash_leaf(leaf: &Hash32) -> Hash32 {
    let mut h = blake3::Hasher::new();
    h.update(&[0x00]);
    h.update(&leaf.0);
    Hash32(*h.finalize().as_bytes())
}

fn hash_node(left: &Hash32, right: &Hash32) -> Hash32 {
    let mut h = blake3::Hasher::new();
    h.update(&[0x01]);
    h.update(&left.0);
    h.update(&right.0);
    Hash32(*h.finalize().as_bytes())
}

/// The Merkle root of `leaves` in order.
pub fn root(leaves: &[Hash32]) -> Hash32 {
    if leaves.is_empty() {
        return Hash32::of(b"quorate/v1/merkle-empty");
    }
    let mut level: Vec<Hash32> = leaves.iter().map(hash_leaf).collect();
    while level.len() > 1 {
        let next = level
            .chunks(2)
            .map(|pair| match pair {
                [l, r] => hash_node(l, r),
                [single] => *single,
                _ => unreachable!("chunks(2) yields one or two items"),
            })
            .collect();
        level = next;
    }
    level[0]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn leaves(n: u8) -> Vec<Hash32> {
        (0..n).map(|i| Hash32::of(&[i])).collect()
    }

    #[test]
    fn roots_differ_for_different_lists() {
        let mut seen = std::collections::HashSet::new();
        for n in 0..20 {
            assert!(seen.insert(root(&leaves(n))), "root collision at {n}");
        }
        let mut l = leaves(3);
        let base = root(&l);
        l.swap(0, 1);
        assert_ne!(root(&l), base, "order matters");
        // Duplicating the last leaf must not give the same root (CVE-2012-2459 shape).
        let mut dup = leaves(3);
        dup.push(dup[2]);
        assert_ne!(root(&dup), base);
    }

    #[test]
    fn single_leaf_root_is_leaf_hash() {
        let l = leaves(1);
        assert_eq!(root(&l), hash_leaf(&l[0]));
    }
}
