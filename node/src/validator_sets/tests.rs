use super::*;
use quorate_proto::Keypair;

fn entry(i: u8) -> ValidatorEntry {
    ValidatorEntry {
        public_key: Keypair::from_secret(&[i; 32]).public().0.to_vec().into(),
        name: format!("v{i}"),
    }
}

fn key(i: u8) -> PublicKey {
    Keypair::from_secret(&[i; 32]).public()
}

#[test]
fn changes_compose_take_effect_later_and_old_sets_are_dropped() {
    let s0 = genesis_schedule((1..=4).map(entry).collect());
    let s1 = change_schedule(&s0, &AdminAction::AddValidator(entry(5)), 10, 5).expect("holds");
    assert_eq!(s1.sets.len(), 2);
    assert_eq!(s1.sets[1].from_height, 15);
    assert_eq!(s1.sets[1].validators.len(), 5);
    // A second change in the same block builds on the first.
    let s2 = change_schedule(&s1, &AdminAction::RemoveValidator(key(1)), 10, 5).expect("holds");
    assert_eq!(s2.sets.len(), 2);
    assert_eq!(
        s2.sets[1].validators,
        vec![entry(2), entry(3), entry(4), entry(5)]
    );
    // Once the change is in force, the genesis set is dropped at the next change.
    let s3 = change_schedule(&s2, &AdminAction::ReplaceValidator(key(2), entry(6)), 20, 5)
        .expect("holds");
    assert_eq!(
        s3.sets.iter().map(|s| s.from_height).collect::<Vec<_>>(),
        vec![15, 25]
    );
    assert_eq!(s3.sets[1].validators[0], entry(6));

    let sets = ValidatorSets::new((1..=4).map(entry).collect(), [], &s3).expect("holds");
    assert_eq!(sets.at(14).set.len(), 4);
    assert_eq!(sets.at(15).set.keys()[0], key(2));
    assert_eq!(sets.at(25).set.keys()[0], key(6));
    assert_eq!(sets.after(20).len(), 1);
    assert!(sets.members_from(15).contains(&key(6)));
    assert!(!sets.members_from(15).contains(&key(1)));
    // Who left, as known at each height: refused by the network even when configured as a
    // peer (a key never in a known set is not among them: issue 25).
    assert!(sets.retired_at(14).is_empty(), "1 leaves at 15, decided");
    assert_eq!(sets.retired_at(15), vec![key(1)]);
    assert_eq!(sets.retired_at(25), vec![key(1), key(2)]);
    assert!(!sets.retired_at(25).contains(&key(9)));
}

#[test]
fn refused_changes_change_nothing() {
    let s0 = genesis_schedule(vec![entry(1)]);
    let remove = AdminAction::RemoveValidator(key(1));
    assert!(matches!(
        change_schedule(&s0, &remove, 3, 3),
        Err(SetChangeRefused::Set(SetChangeError::Size(0)))
    ));
    assert_eq!(
        change_schedule(&s0, &AdminAction::AddValidator(entry(1)), 3, 3),
        Err(SetChangeRefused::AlreadyMember(key(1).to_hex()))
    );
    assert_eq!(
        change_schedule(&s0, &AdminAction::RemoveValidator(key(2)), 3, 3),
        Err(SetChangeRefused::NotMember(key(2).to_hex()))
    );
    let s1 = change_schedule(&s0, &AdminAction::AddValidator(entry(2)), 3, 3).expect("holds");
    assert_eq!(
        change_schedule(&s1, &AdminAction::ReplaceValidator(key(1), entry(2)), 3, 3),
        Err(SetChangeRefused::AlreadyMember(key(2).to_hex()))
    );
}

/// Through a real chain: an admin replacement of the only validator is recorded with its
/// proof, named by the header of the height before it, enforced on certificates from its
/// height on, kept across a restart; refused changes leave a receipt and change nothing.
#[test]
fn a_replacement_is_proven_enforced_and_survives_a_restart() {
    use crate::testutil::TestChain;
    use quorate_proto::certificate::follow_set_changes;
    use quorate_proto::v1::{admin, tx_body::Payload as Wire, Admin, ExecStatus, ReplaceValidator};

    let t = TestChain::new(3);
    let old = t.validator.clone();
    let new = Keypair::from_secret(&[42; 32]);
    let genesis_set = t.chain.info().validators.clone();
    let admin_tx = |from: usize, nonce: u64, action: admin::Action| {
        t.signed(
            from,
            nonce,
            10_000,
            Wire::Admin(Admin {
                action: Some(action),
            }),
        )
    };
    let replace = admin::Action::ReplaceValidator(ReplaceValidator {
        old_key: old.public().0.to_vec().into(),
        new: Some(ValidatorEntry {
            public_key: new.public().0.to_vec().into(),
            name: "moved".into(),
        }),
    });
    // Refused: not the admin; removing the only validator; adding one already there.
    let not_admin = admin_tx(1, 0, replace.clone());
    let empty = admin_tx(
        0,
        0,
        admin::Action::RemoveValidator(old.public().0.to_vec().into()),
    );
    let dup = admin_tx(
        0,
        1,
        admin::Action::AddValidator(ValidatorEntry {
            public_key: old.public().0.to_vec().into(),
            name: String::new(),
        }),
    );
    t.admit_ok(vec![empty.clone(), dup.clone()]);
    t.produce().expect("block");
    for (tx, status) in [(&empty, ExecStatus::BadInput), (&dup, ExecStatus::BadInput)] {
        assert_eq!(t.receipt(tx).status, status as i32, "{:?}", t.receipt(tx));
    }
    assert!(t.admission.admit(vec![not_admin]).expect("admit")[0]
        .result
        .is_err());
    assert!(
        t.chain.sets().after(1).is_empty(),
        "a refused change changed the set"
    );

    let tx = admin_tx(0, 2, replace);
    t.admit_ok(vec![tx.clone()]);
    let decided = t.produce().expect("block").height;
    assert_eq!(t.receipt(&tx).status, ExecStatus::Success as i32);
    let effective = decided + t.chain.info().params.validator_set_delay;
    assert_eq!(t.chain.sets().after(decided)[0].from_height, effective);

    // Blocks up to the change, signed by the old key; each names the next height's set.
    let mut nonce = 0;
    let mut step = |key: &Keypair| {
        t.admit_ok(vec![t.transfer(1, t.addr(2), 1, nonce)]);
        nonce += 1;
        let candidates = t.mempool.lock().select(10, 1 << 20);
        let (block, _) = t
            .chain
            .propose(candidates, key.public().0, 1)
            .expect("propose");
        let cert = t.chain.solo_certificate(key, 0, &block);
        (block, cert)
    };
    while t.chain.head().height + 1 < effective {
        let (block, cert) = step(&old);
        let next = if block.header.height + 1 == effective {
            ValidatorSet::new(vec![new.public()]).hash()
        } else {
            genesis_set.hash()
        };
        assert_eq!(block.header.next_validators_hash.as_ref(), next.0);
        t.chain.commit(&block, &cert).expect("commit");
        t.mempool.lock().on_commit(&block.txs, &block.changes);
    }
    // At the change: the old key's certificate is refused, the new key's accepted.
    let (block, old_cert) = step(&old);
    assert!(t.chain.commit(&block, &old_cert).is_err());
    let (block, new_cert) = step(&new);
    t.chain
        .commit(&block, &new_cert)
        .expect("commit by the new key");

    let changes = t.chain.storage().set_changes().expect("changes");
    assert_eq!(changes.len(), 1);
    assert_eq!(changes[0].height, effective);
    let chain_id = &t.chain.info().chain_id;
    let proven = follow_set_changes(chain_id, &genesis_set, &changes, effective).expect("holds");
    assert_eq!(proven.keys(), &[new.public()]);
    let t = t.reopen();
    assert_eq!(t.chain.sets().at(effective).set.keys(), &[new.public()]);
    assert_eq!(t.chain.sets().at(effective - 1).set, genesis_set);
}

/// A signature found good once is not verified again; a bad one is never remembered, nor
/// answered from a good one's memory; memory is bounded to two generations.
#[test]
fn good_signatures_are_verified_once_and_bad_ones_every_time() {
    let v = VerifiedSignatures::default();
    let k = Keypair::from_secret(&[7; 32]);
    let sig = k.sign(b"prevote");
    assert!(v.verify(&k.public(), b"prevote", &sig));
    assert!(v.verify(&k.public(), b"prevote", &sig));
    assert_eq!(v.verifications(), 1, "the second check verified again");
    let mut forged = sig;
    forged[5] ^= 1;
    assert!(!v.verify(&k.public(), b"prevote", &forged));
    assert!(!v.verify(&k.public(), b"prevote", &forged));
    assert!(!v.verify(&key(8), b"prevote", &sig), "another key");
    assert!(
        !v.verify(&k.public(), b"precommit", &sig),
        "another message"
    );
    assert_eq!(
        v.verifications(),
        5,
        "a bad signature was answered from memory"
    );
    for i in 0..(2 * VERIFIED_GENERATION + 10) as u64 {
        let m = i.to_le_bytes();
        assert!(v.verify(&k.public(), &m, &k.sign(&m)));
    }
    assert!(v.remembered() <= 2 * VERIFIED_GENERATION);
    let before = v.verifications();
    assert!(v.verify(&k.public(), b"prevote", &sig));
    assert_eq!(
        v.verifications(),
        before + 1,
        "the oldest generation was kept"
    );
}
