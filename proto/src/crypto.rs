//! Keys, addresses, hashes and the strict ed25519 acceptance rule shared by single and batch
//! verification.
//!
//! # Acceptance rule
//! A signature `(R, s)` by public key `A` on message `M` is valid when all of these hold:
//! 1. `A` and `R` are canonical encodings of curve points (re-encoding gives the same bytes);
//! 2. neither `A` nor `R` is of small order (order dividing 8);
//! 3. `s` is a canonical scalar (`s < ℓ`);
//! 4. the cofactored equation `[8]([s]B − R − [k]A) = 0` holds, `k = SHA-512(R ‖ A ‖ M) mod ℓ`.
//!
//! Single verification ([`verify_strict`]) checks exactly this. Batch verification
//! ([`verify_batch`]) checks 1–3 per item, then ed25519-dalek's `verify_batch` equation over
//! chunks of [`VERIFY_BATCH_SIZE`]: `Σ zᵢ([sᵢ]B − Rᵢ − [kᵢ]Aᵢ) = 0` with 128-bit weights `zᵢ`
//! derived from a transcript of all inputs. If a chunk passes, every item's residual has no
//! prime-order part (up to a 2⁻¹²⁸ chance), so every item satisfies 4. If a chunk fails, each
//! of its items is checked alone with [`verify_strict`]. Either way the result for each item is
//! exactly the single-verification result, so two validators can never
//! disagree because one verified in a batch and the other alone. See `docs/adr/0001`.

use std::fmt;

use curve25519_dalek::edwards::{CompressedEdwardsY, EdwardsPoint};
use curve25519_dalek::scalar::Scalar;
use curve25519_dalek::traits::IsIdentity;
use ed25519_dalek::{Signer, SigningKey};
use rayon::prelude::*;
use sha2::{Digest, Sha512};

/// Length in bytes of an account address.
pub const ADDRESS_LEN: usize = 20;
/// Length in bytes of an ed25519 public key.
pub const PUBLIC_KEY_LEN: usize = 32;
/// Length in bytes of an ed25519 signature.
pub const SIGNATURE_LEN: usize = 64;

/// Domain separation tag for transaction signatures.
pub const TX_SIGN_DOMAIN: &[u8] = b"quorate/v1/tx\0";
/// Domain separation tag for address derivation.
const ADDRESS_DOMAIN: &str = "quorate/v1/address";

/// Signatures verified together per batch; large enough to amortise, small enough to spread
/// over cores and to keep the fallback cheap when one item is bad.
pub const VERIFY_BATCH_SIZE: usize = 64;

/// A 32-byte blake3 hash.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct Hash32(pub [u8; 32]);

impl Hash32 {
    /// blake3 of `bytes`.
    pub fn of(bytes: &[u8]) -> Self {
        Self(*blake3::hash(bytes).as_bytes())
    }

    /// The hash from a 32-byte slice, or `None` for any other length.
    pub fn from_slice(bytes: &[u8]) -> Option<Self> {
        Some(Self(bytes.try_into().ok()?))
    }

    /// Lower-case hex.
    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }

    /// Parses 64 hex digits (an optional `0x` prefix is allowed).
    pub fn from_hex(s: &str) -> Result<Self, KeyError> {
        let bytes = decode_hex(s)?;
        Self::from_slice(&bytes).ok_or(KeyError::Length {
            expected: 32,
            got: bytes.len(),
        })
    }
}

impl fmt::Debug for Hash32 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.to_hex())
    }
}

impl fmt::Display for Hash32 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.to_hex())
    }
}

/// Errors parsing keys, addresses and hashes.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum KeyError {
    /// Not hexadecimal.
    #[error("invalid hex: {0}")]
    Hex(String),
    /// Wrong number of bytes.
    #[error("expected {expected} bytes, got {got}")]
    Length {
        /// Bytes required.
        expected: usize,
        /// Bytes given.
        got: usize,
    },
    /// Not a valid ed25519 public key (not a canonical curve point, or of small order).
    #[error("invalid ed25519 public key {0}")]
    InvalidPublicKey(String),
}

fn decode_hex(s: &str) -> Result<Vec<u8>, KeyError> {
    let s = s.trim();
    let s = s.strip_prefix("0x").unwrap_or(s);
    hex::decode(s).map_err(|e| KeyError::Hex(e.to_string()))
}

/// An account address: the first 20 bytes of a domain-separated blake3 of the public key.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct Address(pub [u8; ADDRESS_LEN]);

impl Address {
    /// The address of an ed25519 public key.
    pub fn of_public_key(public_key: &[u8; PUBLIC_KEY_LEN]) -> Self {
        let mut hasher = blake3::Hasher::new_derive_key(ADDRESS_DOMAIN);
        hasher.update(public_key);
        let mut out = [0u8; ADDRESS_LEN];
        out.copy_from_slice(&hasher.finalize().as_bytes()[..ADDRESS_LEN]);
        Self(out)
    }

    /// The address of the contract deployed by `deployer`'s transaction with `nonce`: the
    /// first 20 bytes of blake3 (key derivation "quorate/v1/contract-address") over the deployer
    /// address and the nonce (8 bytes, big-endian).
    pub fn of_contract(deployer: &Address, nonce: u64) -> Self {
        let mut hasher = blake3::Hasher::new_derive_key("quorate/v1/contract-address");
        hasher.update(&deployer.0);
        hasher.update(&nonce.to_be_bytes());
        let mut out = [0u8; ADDRESS_LEN];
        out.copy_from_slice(&hasher.finalize().as_bytes()[..ADDRESS_LEN]);
        Self(out)
    }

    /// The address of the system contract `name` (deployed in genesis): the first 20 bytes of
    /// blake3 (key derivation "quorate/v1/system-contract") over the name.
    pub fn of_system_contract(name: &str) -> Self {
        let mut hasher = blake3::Hasher::new_derive_key("quorate/v1/system-contract");
        hasher.update(name.as_bytes());
        let mut out = [0u8; ADDRESS_LEN];
        out.copy_from_slice(&hasher.finalize().as_bytes()[..ADDRESS_LEN]);
        Self(out)
    }

    /// The address from a 20-byte slice.
    pub fn from_slice(bytes: &[u8]) -> Result<Self, KeyError> {
        Ok(Self(bytes.try_into().map_err(|_| KeyError::Length {
            expected: ADDRESS_LEN,
            got: bytes.len(),
        })?))
    }

    /// Parses 40 hex digits (an optional `0x` prefix is allowed).
    pub fn from_hex(s: &str) -> Result<Self, KeyError> {
        Self::from_slice(&decode_hex(s)?)
    }

    /// Lower-case hex.
    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }
}

impl fmt::Debug for Address {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.to_hex())
    }
}

impl fmt::Display for Address {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.to_hex())
    }
}

impl std::str::FromStr for Address {
    type Err = KeyError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::from_hex(s)
    }
}

/// A validated ed25519 public key (canonical, not of small order).
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct PublicKey(pub [u8; PUBLIC_KEY_LEN]);

impl PublicKey {
    /// Checks that `bytes` is a canonical, non-small-order curve point.
    pub fn from_slice(bytes: &[u8]) -> Result<Self, KeyError> {
        let arr: [u8; PUBLIC_KEY_LEN] = bytes.try_into().map_err(|_| KeyError::Length {
            expected: PUBLIC_KEY_LEN,
            got: bytes.len(),
        })?;
        if decompress_checked(&arr).is_none() {
            return Err(KeyError::InvalidPublicKey(hex::encode(arr)));
        }
        Ok(Self(arr))
    }

    /// Parses 64 hex digits.
    pub fn from_hex(s: &str) -> Result<Self, KeyError> {
        Self::from_slice(&decode_hex(s)?)
    }

    /// Lower-case hex.
    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }

    /// The account address of this key.
    pub fn address(&self) -> Address {
        Address::of_public_key(&self.0)
    }

    /// Verifies `signature` on `message` under the strict acceptance rule.
    pub fn verify(&self, message: &[u8], signature: &[u8]) -> bool {
        verify_strict(&self.0, message, signature)
    }
}

impl fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.to_hex())
    }
}

/// An ed25519 signing key with its public half.
pub struct Keypair {
    signing: SigningKey,
}

impl Keypair {
    /// A fresh key from the operating system's randomness.
    pub fn generate() -> Self {
        Self {
            signing: SigningKey::generate(&mut rand::rngs::OsRng),
        }
    }

    /// The key with this 32-byte secret seed.
    pub fn from_secret(secret: &[u8; 32]) -> Self {
        Self {
            signing: SigningKey::from_bytes(secret),
        }
    }

    /// The 32-byte secret seed.
    pub fn secret_bytes(&self) -> [u8; 32] {
        self.signing.to_bytes()
    }

    /// The public key.
    pub fn public(&self) -> PublicKey {
        PublicKey(self.signing.verifying_key().to_bytes())
    }

    /// The account address.
    pub fn address(&self) -> Address {
        self.public().address()
    }

    /// Signs `message` (deterministic ed25519).
    pub fn sign(&self, message: &[u8]) -> [u8; SIGNATURE_LEN] {
        self.signing.sign(message).to_bytes()
    }
}

impl Clone for Keypair {
    fn clone(&self) -> Self {
        Self::from_secret(&self.secret_bytes())
    }
}

impl fmt::Debug for Keypair {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Keypair({})", self.public().to_hex())
    }
}

/// Whether the y coordinate of an encoded point (the low 255 bits) is below p = 2^255 − 19.
fn is_canonical_y(bytes: &[u8; 32]) -> bool {
    // y ≥ p only when y = p + k for k < 19: bits 8..255 all set and the low byte ≥ 0xed.
    !(bytes[31] & 0x7f == 0x7f && bytes[1..31].iter().all(|&b| b == 0xff) && bytes[0] >= 0xed)
}

/// Decompresses a point, requiring a canonical encoding and an order that does not divide 8.
///
/// Canonical means `compress(decompress(bytes)) == bytes`. That fails only for y ≥ p, or for
/// x = 0 with the sign bit set; x = 0 means y = ±1, points of order 1 or 2, which the
/// small-order test refuses anyway. So checking y < p is exact, and saves the field inversion
/// a `compress` costs (the largest share of verification time in a profile of the node).
fn decompress_checked(bytes: &[u8; 32]) -> Option<EdwardsPoint> {
    if !is_canonical_y(bytes) {
        return None;
    }
    let point = CompressedEdwardsY(*bytes).decompress()?;
    if point.is_small_order() {
        return None;
    }
    Some(point)
}

/// Most public keys each thread keeps decompressed.
const KEY_CACHE_CAPACITY: usize = 16_384;

std::thread_local! {
    /// Public keys that passed `decompress_checked` on this thread, as points: a permissioned
    /// chain has few signers, and the square root is a third of a batch verification's cost.
    /// Per thread, so the verification threads share no lock.
    static KEY_CACHE: std::cell::RefCell<std::collections::HashMap<[u8; 32], EdwardsPoint>> =
        std::cell::RefCell::new(std::collections::HashMap::new());
}

/// `decompress_checked` for public keys, through this thread's cache (only keys that pass are
/// kept, so the answer is always `decompress_checked`'s).
fn decompress_key(bytes: &[u8; 32]) -> Option<EdwardsPoint> {
    if let Some(p) = KEY_CACHE.with(|c| c.borrow().get(bytes).copied()) {
        return Some(p);
    }
    let point = decompress_checked(bytes)?;
    KEY_CACHE.with(|c| {
        let mut c = c.borrow_mut();
        if c.len() >= KEY_CACHE_CAPACITY {
            c.clear();
        }
        c.insert(*bytes, point);
    });
    Some(point)
}

/// Rules 1–3 of the acceptance rule: encodings and orders, without the equation.
fn precheck(
    public_key: &[u8; 32],
    signature: &[u8; 64],
) -> Option<(EdwardsPoint, EdwardsPoint, Scalar)> {
    let a = decompress_key(public_key)?;
    let r_bytes: [u8; 32] = signature[..32].try_into().ok()?;
    let r = decompress_checked(&r_bytes)?;
    let s_bytes: [u8; 32] = signature[32..].try_into().ok()?;
    let s = Option::<Scalar>::from(Scalar::from_canonical_bytes(s_bytes))?;
    Some((a, r, s))
}

/// The terms of the verification equation, A, R, s and k = H(R ‖ A ‖ M), or `None` when the
/// lengths or encodings break the acceptance rule.
fn equation_terms(
    public_key: &[u8],
    message: &[u8],
    signature: &[u8],
) -> Option<(EdwardsPoint, EdwardsPoint, Scalar, Scalar)> {
    let pk = <&[u8; 32]>::try_from(public_key).ok()?;
    let sig = <&[u8; 64]>::try_from(signature).ok()?;
    let (a, r, s) = precheck(pk, sig)?;
    let mut h = Sha512::new();
    h.update(&sig[..32]);
    h.update(pk);
    h.update(message);
    Some((a, r, s, Scalar::from_hash(h)))
}

/// Verifies one signature under the acceptance rule (module docs). Any length error is a
/// rejection.
pub fn verify_strict(public_key: &[u8], message: &[u8], signature: &[u8]) -> bool {
    let Some((a, r, s, k)) = equation_terms(public_key, message, signature) else {
        return false;
    };
    // [s]B − [k]A − R, then clear the cofactor.
    let check = EdwardsPoint::vartime_double_scalar_mul_basepoint(&k, &(-a), &s) - r;
    check.mul_by_cofactor().is_identity()
}

/// One item to verify: public key, message, signature.
#[derive(Clone, Copy, Debug)]
pub struct VerifyItem<'a> {
    /// Signer's public key bytes.
    pub public_key: &'a [u8],
    /// Signed message.
    pub message: &'a [u8],
    /// Signature bytes.
    pub signature: &'a [u8],
}

/// Verifies one chunk with the batch equation, after the per-item prechecks; if the chunk
/// fails, finds the bad items by single verification.
fn verify_chunk(items: &[VerifyItem<'_>], out: &mut [bool]) {
    if batch_equation_holds(items) {
        out.fill(true);
        return;
    }
    for (item, ok) in items.iter().zip(out.iter_mut()) {
        *ok = verify_strict(item.public_key, item.message, item.signature);
    }
}

/// The cofactored batch equation over `items` with random 128-bit weights z_i:
/// [8]([Σ z_i s_i]B − Σ [z_i]R_i − Σ [z_i k_i]A_i) = 0. False if any item fails the
/// encoding rules. Uses the points the prechecks decompressed (ed25519-dalek's `verify_batch`
/// would decompress R again and want keys it compresses first: a third of the time).
fn batch_equation_holds(items: &[VerifyItem<'_>]) -> bool {
    use curve25519_dalek::constants::ED25519_BASEPOINT_POINT;
    use curve25519_dalek::traits::VartimeMultiscalarMul;
    use rand::Rng;

    let mut rng = rand::thread_rng();
    let mut scalars: Vec<Scalar> = Vec::with_capacity(2 * items.len() + 1);
    let mut points: Vec<EdwardsPoint> = Vec::with_capacity(2 * items.len() + 1);
    let mut b_coefficient = Scalar::ZERO;
    for item in items {
        let Some((a, r, s, k)) = equation_terms(item.public_key, item.message, item.signature)
        else {
            return false;
        };
        let z = Scalar::from(rng.gen::<u128>());
        b_coefficient += z * s;
        scalars.push(-z);
        points.push(r);
        scalars.push(-(z * k));
        points.push(a);
    }
    scalars.push(b_coefficient);
    points.push(ED25519_BASEPOINT_POINT);
    EdwardsPoint::vartime_multiscalar_mul(&scalars, &points)
        .mul_by_cofactor()
        .is_identity()
}

/// Verifies many signatures in parallel batches of [`VERIFY_BATCH_SIZE`] on rayon's pool.
/// `result[i]` is exactly `verify_strict(items[i])`.
pub fn verify_batch(items: &[VerifyItem<'_>]) -> Vec<bool> {
    let mut out = vec![false; items.len()];
    items
        .par_chunks(VERIFY_BATCH_SIZE)
        .zip(out.par_chunks_mut(VERIFY_BATCH_SIZE))
        .for_each(|(chunk, out)| verify_chunk(chunk, out));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn address_is_stable_and_parses() {
        let kp = Keypair::from_secret(&[7u8; 32]);
        let addr = kp.address();
        assert_eq!(Address::from_hex(&addr.to_hex()), Ok(addr));
        assert_eq!(Address::from_hex(&format!("0x{}", addr.to_hex())), Ok(addr));
        assert!(matches!(
            Address::from_hex("abcd"),
            Err(KeyError::Length {
                expected: 20,
                got: 2
            })
        ));
        assert!(matches!(Address::from_hex("zz"), Err(KeyError::Hex(_))));
    }

    #[test]
    fn sign_and_verify_roundtrip() {
        let kp = Keypair::generate();
        let sig = kp.sign(b"hello");
        assert!(kp.public().verify(b"hello", &sig));
        assert!(!kp.public().verify(b"hellp", &sig));
        assert!(!verify_strict(&kp.public().0, b"hello", &sig[..63]));
    }

    #[test]
    fn canonical_check_matches_compress_roundtrip() {
        let old_rule = |b: &[u8; 32]| {
            let c = CompressedEdwardsY(*b);
            c.decompress()
                .filter(|p| p.compress() == c && !p.is_small_order())
                .is_some()
        };
        let mut cases: Vec<[u8; 32]> = Vec::new();
        // y = p + k (non-canonical) and p - 1 - k (canonical), both signs.
        for k in 0u8..19 {
            for sign in [0u8, 0x80] {
                let mut hi = [0xffu8; 32];
                hi[31] = 0x7f | sign;
                hi[0] = 0xed + k;
                cases.push(hi);
                let mut lo = [0xffu8; 32];
                lo[31] = 0x7f | sign;
                lo[0] = 0xec - k;
                cases.push(lo);
            }
        }
        // y = ±1 with both signs, 0, and real keys and signature R values.
        for y in [1u8, 0] {
            for sign in [0u8, 0x80] {
                let mut b = [0u8; 32];
                b[0] = y;
                b[31] = sign;
                cases.push(b);
            }
        }
        for i in 0..64u8 {
            let kp = Keypair::from_secret(&[i; 32]);
            cases.push(kp.public().0);
            let sig = kp.sign(b"m");
            cases.push(sig[..32].try_into().expect("32"));
            let mut flipped = kp.public().0;
            flipped[31] ^= 0x80;
            cases.push(flipped);
        }
        for c in &cases {
            assert_eq!(
                decompress_checked(c).is_some(),
                old_rule(c),
                "{}",
                hex::encode(c)
            );
        }
    }

    #[test]
    fn cached_keys_give_the_same_answers() {
        let kp = Keypair::from_secret(&[9u8; 32]);
        let sig = kp.sign(b"m");
        for _ in 0..3 {
            assert!(verify_strict(&kp.public().0, b"m", &sig));
            assert!(!verify_strict(&kp.public().0, b"n", &sig));
        }
        let mut identity = [0u8; 32];
        identity[0] = 1;
        for _ in 0..2 {
            assert!(
                decompress_key(&identity).is_none(),
                "refused keys are not cached"
            );
        }
        assert_eq!(
            decompress_key(&kp.public().0),
            decompress_checked(&kp.public().0)
        );
    }

    #[test]
    fn public_key_rejects_small_order_points() {
        // The identity point encoding: y = 1.
        let mut identity = [0u8; 32];
        identity[0] = 1;
        assert!(PublicKey::from_slice(&identity).is_err());
    }
}
