use super::*;
use crate::testutil::{TestChain, BALANCE};
use bytes::Bytes;
use quorate_proto::tx::{sign, transfer_body};
use quorate_proto::v1::RejectCode;
use quorate_proto::Keypair;

fn code(t: &TestChain, tx: Transaction) -> RejectCode {
    let a = t.admission.admit(vec![tx]).expect("admit").remove(0);
    match a.result {
        Ok(()) => panic!("expected a refusal"),
        Err(e) => e.code(),
    }
}

#[test]
fn accepts_valid_and_refuses_each_bad_kind_without_changing_state() {
    let t = TestChain::new(2);
    let to = t.addr(1);
    let fuel = t.genesis.params.transfer_fuel;
    t.admit_ok(vec![t.transfer(0, to, 10, 0)]);
    assert_eq!(t.mempool.lock().len(), 1);

    // Duplicate of a pending transaction.
    assert_eq!(code(&t, t.transfer(0, to, 10, 0)), RejectCode::Duplicate);
    // Another transaction with a pending nonce.
    assert_eq!(code(&t, t.transfer(0, to, 11, 0)), RejectCode::NoncePending);
    // Wrong chain.
    let k = &t.accounts[0];
    assert_eq!(
        code(
            &t,
            sign(&transfer_body("other", k, 1, fuel, to, 1, vec![]), k)
        ),
        RejectCode::WrongChain
    );
    // Bad signature.
    let mut bad = t.transfer(0, to, 10, 1);
    let mut sig = bad.signature.to_vec();
    sig[0] ^= 1;
    bad.signature = Bytes::from(sig);
    assert_eq!(code(&t, bad), RejectCode::BadSignature);
    // Signed by a key that is not the body's signer.
    let stranger = Keypair::from_secret(&[77; 32]);
    let mut body = transfer_body(&t.genesis.chain_id, k, 1, fuel, to, 1, vec![]);
    body.signer = Bytes::copy_from_slice(&k.address().0);
    assert_eq!(code(&t, sign(&body, &stranger)), RejectCode::SignerMismatch);
    // Oversized.
    let big = sign(
        &transfer_body(&t.genesis.chain_id, k, 1, fuel, to, 1, vec![0; 140_000]),
        k,
    );
    let a = t
        .admission
        .admit(vec![big.clone()])
        .expect("admit")
        .remove(0);
    assert_eq!(
        a.result.as_ref().map_err(AdmissionError::code),
        Err(RejectCode::Oversized)
    );
    assert_eq!(
        a.hash,
        Some(quorate_proto::tx::tx_hash(&big.body)),
        "oversized refusals still name the tx"
    );
    // Overdraft, counting the pending transfer.
    assert_eq!(
        code(&t, t.transfer(0, to, BALANCE - 10 - fuel, 1)),
        RejectCode::InsufficientBalance
    );
    // Fuel bounds.
    assert_eq!(
        code(
            &t,
            sign(
                &transfer_body(&t.genesis.chain_id, k, 1, fuel - 1, to, 1, vec![]),
                k
            )
        ),
        RejectCode::FuelLimitTooLow
    );
    let too_much = t.genesis.params.max_fuel_per_tx + 1;
    assert_eq!(
        code(
            &t,
            sign(
                &transfer_body(&t.genesis.chain_id, k, 1, too_much, to, 1, vec![]),
                k
            )
        ),
        RejectCode::FuelLimitTooHigh
    );
    // Zero amount and unknown payload.
    assert_eq!(
        code(&t, t.transfer(0, to, 0, 1)),
        RejectCode::InvalidPayload
    );
    let mut body = transfer_body(&t.genesis.chain_id, k, 1, fuel, to, 1, vec![]);
    body.payload = None;
    assert_eq!(code(&t, sign(&body, k)), RejectCode::UnknownPayload);
    // Too far ahead.
    assert_eq!(code(&t, t.transfer(0, to, 1, 100)), RejectCode::NonceTooFar);
    // Malformed bytes.
    let garbage = Transaction {
        body: Bytes::from_static(&[0xff; 8]),
        public_key: k.public().0.to_vec().into(),
        signature: vec![0; 64].into(),
        cosignatures: Vec::new(),
    };
    assert_eq!(code(&t, garbage), RejectCode::Malformed);
    let short_key = Transaction {
        public_key: Bytes::from_static(&[1; 5]),
        ..t.transfer(0, to, 1, 1)
    };
    assert_eq!(code(&t, short_key), RejectCode::Malformed);

    // None of that touched the mempool or the state.
    assert_eq!(t.mempool.lock().len(), 1);
    assert_eq!(
        t.chain
            .storage()
            .account(&k.address())
            .expect("acct")
            .balance,
        BALANCE
    );
}

#[test]
fn replay_after_commit_is_nonce_used_and_status_remembers_refusals() {
    let t = TestChain::new(2);
    let tx = t.transfer(0, t.addr(1), 5, 0);
    t.admit_ok(vec![tx.clone()]);
    t.produce().expect("block");
    let a = t.admission.admit(vec![tx]).expect("admit").remove(0);
    assert!(
        matches!(
            a.result,
            Err(AdmissionError::NonceUsed {
                nonce: 0,
                next: 1,
                ..
            })
        ),
        "{:?}",
        a.result
    );
    let hash = a.hash.expect("hash");
    assert!(matches!(
        t.admission.rejection(&hash),
        Some(AdmissionError::NonceUsed { .. })
    ));
    // The message names the values.
    assert!(a
        .result
        .expect_err("refused")
        .to_string()
        .contains("nonce 0 already used"));
}

#[test]
fn batch_with_mixed_good_and_bad_signatures_admits_exactly_the_good() {
    let t = TestChain::new(3);
    let mut txs = Vec::new();
    let mut expect_ok = Vec::new();
    for i in 0..150u64 {
        let from = (i % 3) as usize;
        let mut tx = t.transfer(from, t.addr((from + 1) % 3), 1, i / 3);
        let good = i % 17 != 5;
        if !good {
            let mut sig = tx.signature.to_vec();
            sig[40] ^= 0x10;
            tx.signature = Bytes::from(sig);
        }
        txs.push(tx);
        expect_ok.push(good);
    }
    // Nonces after a bad one fall into the future window or pend: only signature results are
    // compared for the bad ones; good ones before any bad nonce of their account get in.
    let results = t.admission.admit(txs).expect("admit");
    for (r, good) in results.iter().zip(&expect_ok) {
        if !good {
            assert_eq!(
                r.result.as_ref().map_err(AdmissionError::code),
                Err(RejectCode::BadSignature)
            );
        } else {
            assert!(!matches!(r.result, Err(AdmissionError::BadSignature(_))));
        }
    }
}

/// Issue 25 (low): every signature of a transaction (up to 16) was verified before the cheap
/// check that its keys are the account's. Cosignatures by keys the account does not hold are
/// now refused before any verification: the refusal names the foreign key (`FOREIGN_KEY`),
/// not a bad signature, although none of these cosignatures would verify.
#[test]
fn foreign_cosigners_are_refused_before_any_signature_is_verified() {
    let t = TestChain::new(2);
    let mut tx = t.transfer(0, t.addr(1), 10, 0);
    for i in 0..15u8 {
        tx.cosignatures.push(quorate_proto::v1::Cosignature {
            public_key: Bytes::copy_from_slice(&Keypair::from_secret(&[i + 1; 32]).public().0),
            signature: Bytes::from(vec![0u8; 64]),
        });
    }
    assert_eq!(code(&t, tx), RejectCode::ForeignKey);
    assert_eq!(t.mempool.lock().len(), 0);
    // A well-signed transaction of the same batch is admitted as ever.
    t.admit_ok(vec![t.transfer(1, t.addr(0), 10, 0)]);
}
