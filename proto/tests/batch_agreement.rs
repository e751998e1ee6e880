//! Batch and single signature verification must accept exactly the same signatures, including
//! crafted ones: small-order keys and nonces, mixed-order points, non-canonical scalars and
//! encodings. A disagreement would let two validators disagree on a transaction.

use curve25519_dalek::constants::{ED25519_BASEPOINT_POINT as B, EIGHT_TORSION};
use curve25519_dalek::edwards::{CompressedEdwardsY, EdwardsPoint};
use curve25519_dalek::scalar::Scalar;
use proptest::prelude::*;
use quorate_proto::crypto::{verify_batch, verify_strict, VerifyItem, VERIFY_BATCH_SIZE};
use quorate_proto::Keypair;
use sha2::{Digest, Sha512};

/// A test case: key, message, signature, and what the acceptance rule says.
#[derive(Clone, Debug)]
struct Case {
    name: String,
    pk: Vec<u8>,
    msg: Vec<u8>,
    sig: Vec<u8>,
    valid: bool,
}

fn scalar(seed: u8) -> Scalar {
    Scalar::from_hash(Sha512::new().chain_update([seed, 0x5a]))
}

/// s = r + k·a for arbitrary encodings of A and R (lets us build signatures over odd points).
fn raw_sig(a: Scalar, pk: &[u8; 32], r: Scalar, r_enc: &[u8; 32], msg: &[u8]) -> Vec<u8> {
    let k = Scalar::from_hash(
        Sha512::new()
            .chain_update(r_enc)
            .chain_update(pk)
            .chain_update(msg),
    );
    let s = r + k * a;
    let mut sig = r_enc.to_vec();
    sig.extend_from_slice(s.as_bytes());
    sig
}

fn enc(p: &EdwardsPoint) -> [u8; 32] {
    p.compress().to_bytes()
}

fn cases() -> Vec<Case> {
    let mut out = Vec::new();
    let msg = b"quorate batch agreement".to_vec();

    // Honest signatures.
    for i in 0..8u8 {
        let kp = Keypair::from_secret(&[i + 1; 32]);
        let m = vec![i; 40];
        out.push(Case {
            name: format!("honest-{i}"),
            pk: kp.public().0.to_vec(),
            sig: kp.sign(&m).to_vec(),
            msg: m,
            valid: true,
        });
    }
    // Honest signature, wrong message.
    let kp = Keypair::from_secret(&[42; 32]);
    out.push(Case {
        name: "wrong-message".into(),
        pk: kp.public().0.to_vec(),
        sig: kp.sign(b"other").to_vec(),
        msg: msg.clone(),
        valid: false,
    });

    for (t, torsion) in EIGHT_TORSION.iter().enumerate() {
        // Small-order public key A = T with R = rB, s = r: satisfies the cofactored equation,
        // refused by rule 2.
        let r = scalar(t as u8);
        let pk = enc(torsion);
        let r_enc = enc(&(B * r));
        let mut sig = r_enc.to_vec();
        sig.extend_from_slice(r.as_bytes());
        out.push(Case {
            name: format!("small-order-key-{t}"),
            pk: pk.to_vec(),
            msg: msg.clone(),
            sig,
            valid: false,
        });

        // Small-order R = T with s = k·a: cofactored equation holds, refused by rule 2.
        let a = scalar(100 + t as u8);
        let pk = enc(&(B * a));
        let r_enc = enc(torsion);
        let k = Scalar::from_hash(
            Sha512::new()
                .chain_update(r_enc)
                .chain_update(pk)
                .chain_update(&msg),
        );
        let mut sig = r_enc.to_vec();
        sig.extend_from_slice((k * a).as_bytes());
        out.push(Case {
            name: format!("small-order-r-{t}"),
            pk: pk.to_vec(),
            msg: msg.clone(),
            sig,
            valid: false,
        });

        if t == 0 {
            continue; // the identity gives no mixed-order point
        }
        // Mixed-order key A = aB + T signed with a: residual −kT, accepted (cofactored).
        let a = scalar(150 + t as u8);
        let pk = enc(&(B * a + torsion));
        let r = scalar(200 + t as u8);
        let sig = raw_sig(a, &pk, r, &enc(&(B * r)), &msg);
        out.push(Case {
            name: format!("mixed-order-key-{t}"),
            pk: pk.to_vec(),
            msg: msg.clone(),
            sig,
            valid: true,
        });

        // Mixed-order R = rB + T: residual −T, accepted (cofactored).
        let a = scalar(50 + t as u8);
        let pk = enc(&(B * a));
        let r = scalar(60 + t as u8);
        let sig = raw_sig(a, &pk, r, &enc(&(B * r + torsion)), &msg);
        out.push(Case {
            name: format!("mixed-order-r-{t}"),
            pk: pk.to_vec(),
            msg: msg.clone(),
            sig,
            valid: true,
        });
    }

    // Non-canonical s = s + ℓ.
    let kp = Keypair::from_secret(&[9; 32]);
    let mut sig = kp.sign(&msg).to_vec();
    let s = Scalar::from_canonical_bytes(sig[32..].try_into().expect("32")).expect("canonical");
    let mut s_plus_l = [0u8; 32];
    // ℓ = 2^252 + 27742317777372353535851937790883648493, little-endian.
    let l: [u8; 32] = [
        0xed, 0xd3, 0xf5, 0x5c, 0x1a, 0x63, 0x12, 0x58, 0xd6, 0x9c, 0xf7, 0xa2, 0xde, 0xf9, 0xde,
        0x14, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x10,
    ];
    let mut carry = 0u16;
    for i in 0..32 {
        let v = u16::from(s.as_bytes()[i]) + u16::from(l[i]) + carry;
        s_plus_l[i] = v as u8;
        carry = v >> 8;
    }
    sig[32..].copy_from_slice(&s_plus_l);
    out.push(Case {
        name: "non-canonical-s".into(),
        pk: kp.public().0.to_vec(),
        msg: msg.clone(),
        sig,
        valid: false,
    });

    // Non-canonical point encodings: y + p for small y, and "negative zero" x.
    let p_minus_19: [u8; 32] = {
        let mut b = [0xffu8; 32];
        b[0] = 0xed;
        b[31] = 0x7f;
        b
    };
    for y in 0u8..19 {
        let mut e = p_minus_19;
        // p + y = (2^255 − 19) + y: little-endian, low byte 0xed + y.
        e[0] = 0xed_u8.wrapping_add(y);
        if u16::from(0xedu8) + u16::from(y) > 0xff {
            continue; // would need a carry; the values that fit are enough
        }
        for sign in [0u8, 0x80] {
            let mut e = e;
            e[31] = (e[31] & 0x7f) | sign;
            let Some(point) = CompressedEdwardsY(e).decompress() else {
                continue;
            };
            assert_ne!(
                point.compress().to_bytes(),
                e,
                "encoding y+p must be non-canonical"
            );
            // As a public key with an arbitrary signature.
            let r = scalar(y);
            let sig = raw_sig(Scalar::ONE, &e, r, &enc(&(B * r)), &msg);
            out.push(Case {
                name: format!("non-canonical-key-y{y}-{sign}"),
                pk: e.to_vec(),
                msg: msg.clone(),
                sig,
                valid: false,
            });
            // As R in an otherwise honest-looking signature.
            let a = scalar(30 + y);
            let pk = enc(&(B * a));
            let sig = raw_sig(a, &pk, Scalar::ZERO, &e, &msg);
            out.push(Case {
                name: format!("non-canonical-r-y{y}-{sign}"),
                pk: pk.to_vec(),
                msg: msg.clone(),
                sig,
                valid: false,
            });
        }
    }

    // Garbage.
    out.push(Case {
        name: "zero-sig".into(),
        pk: Keypair::from_secret(&[3; 32]).public().0.to_vec(),
        msg: msg.clone(),
        sig: vec![0; 64],
        valid: false,
    });
    out.push(Case {
        name: "short-sig".into(),
        pk: Keypair::from_secret(&[3; 32]).public().0.to_vec(),
        msg: msg.clone(),
        sig: vec![1; 63],
        valid: false,
    });
    out.push(Case {
        name: "short-key".into(),
        pk: vec![1; 31],
        msg,
        sig: vec![1; 64],
        valid: false,
    });
    out
}

fn items(cases: &[Case]) -> Vec<VerifyItem<'_>> {
    cases
        .iter()
        .map(|c| VerifyItem {
            public_key: &c.pk,
            message: &c.msg,
            signature: &c.sig,
        })
        .collect()
}

#[test]
fn single_verification_follows_the_rule() {
    for c in cases() {
        assert_eq!(
            verify_strict(&c.pk, &c.msg, &c.sig),
            c.valid,
            "case {}",
            c.name
        );
    }
}

#[test]
fn honest_signatures_also_pass_dalek_verify_strict() {
    for c in cases().iter().filter(|c| c.name.starts_with("honest")) {
        let vk = ed25519_dalek::VerifyingKey::from_bytes(c.pk.as_slice().try_into().expect("32"))
            .expect("key");
        let sig = ed25519_dalek::Signature::from_slice(&c.sig).expect("sig");
        assert!(vk.verify_strict(&c.msg, &sig).is_ok(), "case {}", c.name);
    }
}

#[test]
fn each_case_alone_in_a_batch_agrees() {
    for c in cases() {
        let one = [c.clone()];
        assert_eq!(verify_batch(&items(&one)), vec![c.valid], "case {}", c.name);
    }
}

#[test]
fn each_case_among_valid_ones_agrees() {
    let all = cases();
    let honest: Vec<Case> = all.iter().filter(|c| c.valid).cloned().collect();
    for c in &all {
        // The odd case in the middle of a full batch of accepted signatures.
        let mut batch: Vec<Case> = honest
            .iter()
            .cycle()
            .take(VERIFY_BATCH_SIZE - 1)
            .cloned()
            .collect();
        batch.insert(VERIFY_BATCH_SIZE / 2, c.clone());
        let expected: Vec<bool> = batch.iter().map(|c| c.valid).collect();
        assert_eq!(verify_batch(&items(&batch)), expected, "case {}", c.name);
    }
}

#[test]
fn all_cases_together_agree_with_single() {
    let all = cases();
    // Several batches' worth so chunk boundaries fall in different places.
    let many: Vec<Case> = all
        .iter()
        .cycle()
        .take(all.len() * 3 + 7)
        .cloned()
        .collect();
    let single: Vec<bool> = many
        .iter()
        .map(|c| verify_strict(&c.pk, &c.msg, &c.sig))
        .collect();
    assert_eq!(verify_batch(&items(&many)), single);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]
    /// Random selections and random corruptions: batch result == single result, item by item.
    #[test]
    fn random_mixes_agree(picks in proptest::collection::vec((0usize..1000, any::<Option<(u8, u8)>>()), 1..150)) {
        let all = cases();
        let mixed: Vec<Case> = picks.iter().map(|(i, flip)| {
            let mut c = all[i % all.len()].clone();
            if let Some((pos, bit)) = flip {
                let pos = *pos as usize % c.sig.len().max(1);
                if let Some(b) = c.sig.get_mut(pos) { *b ^= 1 << (bit % 8); }
            }
            c
        }).collect();
        let single: Vec<bool> = mixed.iter().map(|c| verify_strict(&c.pk, &c.msg, &c.sig)).collect();
        prop_assert_eq!(verify_batch(&items(&mixed)), single);
    }
}
