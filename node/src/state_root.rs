//! The state commitment: an LtHash (lattice homomorphic multiset hash) over all accounts.
//!
//! Each `(address, account)` pair is expanded with blake3's XOF to 1024 16-bit lanes; the
//! accumulator is their lane-wise sum mod 2¹⁶, and the state root is blake3 of the lanes. A block
//! updates it in O(changed accounts): subtract the old pair, add the new one. Unlike a plain
//! additive hash, LtHash with 1024 lanes rests on a lattice problem and resists generalized
//! birthday attacks (Bellare–Micciancio; used by Facebook and Solana). It gives no inclusion
//! proofs; see `docs/adr/0002-state-commitment.md`.

use quorate_proto::crypto::Hash32;

/// Number of 16-bit lanes.
pub const LANES: usize = 1024;

/// The accumulator.
#[derive(Clone, PartialEq, Eq)]
pub struct LtHash {
    lanes: Box<[u16; LANES]>,
}

impl Default for LtHash {
    fn default() -> Self {
        Self {
            lanes: Box::new([0; LANES]),
        }
    }
}

impl std::fmt::Debug for LtHash {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "LtHash({})", self.root())
    }
}

fn element(key: &[u8], value: &[u8]) -> [u16; LANES] {
    let mut h = blake3::Hasher::new_derive_key("quorate/v1/state-element");
    h.update(&(key.len() as u32).to_le_bytes());
    h.update(key);
    h.update(value);
    let mut bytes = [0u8; LANES * 2];
    h.finalize_xof().fill(&mut bytes);
    let mut out = [0u16; LANES];
    for (lane, pair) in out.iter_mut().zip(bytes.chunks_exact(2)) {
        *lane = u16::from_le_bytes([pair[0], pair[1]]);
    }
    out
}

impl LtHash {
    /// Adds the pair `(key, value)` to the multiset.
    pub fn insert(&mut self, key: &[u8], value: &[u8]) {
        let e = element(key, value);
        for (a, b) in self.lanes.iter_mut().zip(e.iter()) {
            *a = a.wrapping_add(*b);
        }
    }

    /// Removes the pair `(key, value)` from the multiset.
    pub fn remove(&mut self, key: &[u8], value: &[u8]) {
        let e = element(key, value);
        for (a, b) in self.lanes.iter_mut().zip(e.iter()) {
            *a = a.wrapping_sub(*b);
        }
    }

    /// Removes the pairs `removed` and adds the pairs `added` (`(key, value)` each); a large
    /// update expands its elements on the rayon pool (the sum is the same in any order).
    pub fn update(&mut self, removed: &[(&[u8], &[u8])], added: &[(&[u8], &[u8])]) {
        use rayon::prelude::*;
        /// Below this many pairs the hand-off to rayon costs more than it saves.
        const PARALLEL_FROM: usize = 64;
        let pairs: Vec<(&[u8], &[u8], bool)> = removed
            .iter()
            .map(|(k, v)| (*k, *v, false))
            .chain(added.iter().map(|(k, v)| (*k, *v, true)))
            .collect();
        let fold = |mut acc: LtHash, (key, value, add): &(&[u8], &[u8], bool)| {
            if *add {
                acc.insert(key, value);
            } else {
                acc.remove(key, value);
            }
            acc
        };
        if pairs.len() < PARALLEL_FROM {
            let acc = pairs.iter().fold(std::mem::take(self), fold);
            *self = acc;
            return;
        }
        let delta = pairs
            .par_chunks(PARALLEL_FROM / 2)
            .map(|chunk| chunk.iter().fold(LtHash::default(), fold))
            .reduce(LtHash::default, |mut a, b| {
                a.add(&b);
                a
            });
        self.add(&delta);
    }

    /// Adds every pair of `other`'s multiset to this one (the accumulators of two disjoint
    /// parts of the state sum to the accumulator of the whole).
    pub fn add(&mut self, other: &LtHash) {
        for (a, b) in self.lanes.iter_mut().zip(other.lanes.iter()) {
            *a = a.wrapping_add(*b);
        }
    }

    /// The 32-byte state root.
    pub fn root(&self) -> Hash32 {
        Hash32::of(&self.to_bytes())
    }

    /// Little-endian lanes, for storage.
    pub fn to_bytes(&self) -> Vec<u8> {
        self.lanes.iter().flat_map(|l| l.to_le_bytes()).collect()
    }

    /// Reads the stored form; `None` if the length is wrong.
    pub fn from_bytes(bytes: &[u8]) -> Option<Self> {
        if bytes.len() != LANES * 2 {
            return None;
        }
        let mut lanes = Box::new([0u16; LANES]);
        for (lane, pair) in lanes.iter_mut().zip(bytes.chunks_exact(2)) {
            *lane = u16::from_le_bytes([pair[0], pair[1]]);
        }
        Some(Self { lanes })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn order_independent_and_removable() {
        let mut a = LtHash::default();
        a.insert(b"k1", b"v1");
        a.insert(b"k2", b"v2");
        let mut b = LtHash::default();
        b.insert(b"k2", b"v2");
        b.insert(b"k1", b"v1");
        assert_eq!(a.root(), b.root());
        b.remove(b"k2", b"v2");
        let mut c = LtHash::default();
        c.insert(b"k1", b"v1");
        assert_eq!(b.root(), c.root());
        assert_ne!(b.root(), a.root());
        assert_eq!(LtHash::from_bytes(&a.to_bytes()), Some(a));
    }

    #[test]
    fn parts_sum_to_the_whole() {
        let mut whole = LtHash::default();
        let (mut left, mut right) = (LtHash::default(), LtHash::default());
        for i in 0u32..10 {
            whole.insert(&i.to_be_bytes(), b"v");
            let part = if i % 3 == 0 { &mut left } else { &mut right };
            part.insert(&i.to_be_bytes(), b"v");
        }
        assert_ne!(left.root(), whole.root());
        left.add(&right);
        assert_eq!(left, whole);
    }

    #[test]
    fn a_large_update_on_rayon_sums_to_the_serial_one() {
        let pair = |i: u32| (i.to_be_bytes().to_vec(), (i * 7).to_le_bytes().to_vec());
        let pairs: Vec<(Vec<u8>, Vec<u8>)> = (0..300).map(pair).collect();
        let mut start = LtHash::default();
        for (k, v) in &pairs[..150] {
            start.insert(k, v);
        }
        let removed: Vec<(&[u8], &[u8])> =
            pairs[..100].iter().map(|(k, v)| (&k[..], &v[..])).collect();
        let added: Vec<(&[u8], &[u8])> =
            pairs[150..].iter().map(|(k, v)| (&k[..], &v[..])).collect();
        let mut serial = start.clone();
        for (k, v) in &removed {
            serial.remove(k, v);
        }
        for (k, v) in &added {
            serial.insert(k, v);
        }
        let mut parallel = start.clone();
        parallel.update(&removed, &added);
        assert_eq!(parallel, serial);
        let mut small = start;
        small.update(&removed[..10], &added[..10]);
        assert_ne!(small, serial);
    }

    #[test]
    fn key_value_boundary_is_unambiguous() {
        let mut a = LtHash::default();
        a.insert(b"ab", b"c");
        let mut b = LtHash::default();
        b.insert(b"a", b"bc");
        assert_ne!(a.root(), b.root());
    }
}
