use bytes::Bytes;
use prost::Message;
use quorate_proto::crypto::Hash32;
use quorate_proto::v1::{SnapshotChunk, SnapshotManifest, StateKind};

use super::*;
use crate::storage::Account;
use crate::testutil::TestChain;

/// A chain with enough accounts for the state to span several chunks, and two blocks.
fn busy_chain() -> TestChain {
    let t = TestChain::new(25_000);
    t.admit_ok(vec![
        t.transfer(0, t.addr(1), 100, 0),
        t.transfer(1, t.addr(2), 50, 0),
    ]);
    t.produce().expect("block 1");
    t.admit_ok(vec![t.transfer(0, t.addr(3), 7, 1)]);
    t.produce().expect("block 2");
    t
}

fn snapshot_of(t: &TestChain, dir: &std::path::Path) -> (SnapshotStore, SnapshotSummary) {
    let store = SnapshotStore::new(dir);
    let info = t.chain.info();
    let summary = take(
        t.chain.storage(),
        &store,
        &info.chain_id,
        &info.genesis_hash,
        || {},
    )
    .expect("take")
    .expect("new snapshot");
    (store, summary)
}

fn verified(t: &TestChain, manifest: SnapshotManifest) -> Result<VerifiedManifest, SnapshotError> {
    let info = t.chain.info();
    verify_manifest(
        manifest,
        &info.chain_id,
        &info.genesis_hash,
        &info.validators,
    )
}

#[test]
fn an_imported_snapshot_is_the_same_state_and_the_chain_goes_on_from_it() {
    let t = busy_chain();
    let head = t.chain.head();
    let work = tempfile::tempdir().expect("tempdir");
    let (store, summary) = snapshot_of(&t, &work.path().join("snapshots"));
    assert_eq!(summary.height, 2);
    assert_eq!(summary.state_root, head.state_root);
    assert!(summary.chunks >= 2, "{summary:?}");
    assert!(
        summary.codes >= 4,
        "the system contracts' code: {summary:?}"
    );
    assert_eq!(store.heights().expect("list"), vec![2]);

    let file = work.path().join("state.snapshot");
    let exported = export(&store, 2, &file).expect("export");
    assert_eq!(exported, summary);

    let fresh = tempfile::tempdir().expect("tempdir");
    let info = t.chain.info();
    let imported = import_file(
        &file,
        fresh.path(),
        &info.chain_id,
        &info.genesis_hash,
        &info.validators,
        None,
    )
    .expect("import");
    assert_eq!(imported.head, head);
    assert_eq!(imported.entries, summary.entries);
    assert!(!fresh
        .path()
        .with_file_name(format!(
            "{}.importing",
            fresh.path().file_name().expect("name").to_string_lossy()
        ))
        .exists());

    let u = TestChain::in_dir(
        fresh,
        t.genesis.clone(),
        t.validator.clone(),
        t.accounts.clone(),
    );
    assert_eq!(u.chain.head(), head);
    let s = u.chain.storage();
    assert_eq!(s.recompute_lthash().expect("scan").root(), head.state_root);
    for i in [0, 1, 2, 3, 24_999] {
        assert_eq!(
            s.account(&t.addr(i)).expect("imported"),
            t.chain.storage().account(&t.addr(i)).expect("original")
        );
    }
    // Blocks start above the snapshot: its own block is held without transactions.
    assert_eq!(s.lowest_block().expect("lowest"), 3);
    assert!(s.block_with_txs(2, true).expect("read").is_none());

    // Both chains commit the same next block.
    for c in [&t, &u] {
        c.admit_ok(vec![c.transfer(0, c.addr(4), 9, 2)]);
    }
    let (a, b) = (t.produce().expect("3"), u.produce().expect("3 on import"));
    assert_eq!(a, b);
    assert_eq!(
        u.chain.storage().account(&t.addr(4)).expect("read"),
        Account {
            balance: crate::testutil::BALANCE + 9,
            nonce: 0,
            keyed: false,
        }
    );
}

#[test]
fn a_tampered_chunk_is_refused_and_a_good_copy_is_taken_afterwards() {
    let t = busy_chain();
    let work = tempfile::tempdir().expect("tempdir");
    let (store, _) = snapshot_of(&t, &work.path().join("snapshots"));
    let manifest = store.manifest(2).expect("manifest");
    let good = store.chunk(2, 0).expect("chunk 0");

    // A damaged copy: its digest no longer matches.
    let mut flipped = good.clone();
    let mid = flipped.len() / 2;
    flipped[mid] ^= 1;
    // A forged copy whose manifest entry was forged to match its bytes: its entries no longer
    // sum to the accumulator the manifest gives it.
    let mut chunk = SnapshotChunk::decode(good.as_slice()).expect("decode");
    let mut value = chunk.entries[0].value.to_vec();
    value[7] ^= 0x40;
    chunk.entries[0].value = Bytes::from(value);
    let forged = chunk.encode_to_vec();
    let mut forged_manifest = manifest.clone();
    forged_manifest.chunks[0].digest = Bytes::copy_from_slice(&Hash32::of(&forged).0);
    forged_manifest.chunks[0].size = forged.len() as u64;

    let target = tempfile::tempdir().expect("tempdir");
    let mut restore = Restore::begin(
        target.path(),
        verified(&t, forged_manifest).expect("verified"),
    )
    .expect("begin");
    match restore.add_chunk(0, &forged) {
        Err(SnapshotError::BadChunk { index: 0, reason }) => {
            assert!(reason.contains("entries hash to"), "{reason}")
        }
        other => panic!("forged chunk accepted: {other:?}"),
    }
    restore.abandon();

    // With the accumulator forged too, the manifest no longer sums to the certified root.
    let mut chunk_lthash = crate::state_root::LtHash::default();
    for e in &chunk.entries {
        crate::storage::add_to_lthash(&mut chunk_lthash, e.kind(), &e.key, &e.value);
    }
    let mut forged_root = manifest.clone();
    forged_root.chunks[0].lthash = chunk_lthash.to_bytes().into();
    assert!(matches!(
        verified(&t, forged_root),
        Err(SnapshotError::RootMismatch { height: 2, .. })
    ));

    let mut restore = Restore::begin(
        target.path(),
        verified(&t, manifest.clone()).expect("verified"),
    )
    .expect("begin");
    match restore.add_chunk(0, &flipped) {
        Err(SnapshotError::BadChunk { index: 0, reason }) => {
            assert!(reason.contains("digest"), "{reason}")
        }
        other => panic!("damaged chunk accepted: {other:?}"),
    }
    // A chunk given for another index is refused as well.
    let second = store.chunk(2, 1).expect("chunk 1");
    assert!(matches!(
        restore.add_chunk(0, &second),
        Err(SnapshotError::BadChunk { index: 0, .. })
    ));
    assert_eq!(restore.missing().len(), manifest.chunks.len());
    // An import cannot finish with a chunk missing.
    let other = tempfile::tempdir().expect("tempdir");
    let mut partial =
        Restore::begin(other.path(), verified(&t, manifest.clone()).expect("v")).expect("begin");
    partial.add_chunk(0, &good).expect("chunk 0");
    match partial.finish() {
        Err(SnapshotError::Incomplete { missing, total, .. }) => {
            assert_eq!(
                (missing, total),
                (manifest.chunks.len() - 1, manifest.chunks.len())
            )
        }
        other => panic!("finished incomplete: {other:?}"),
    }
    for i in 0..manifest.chunks.len() as u32 {
        assert!(restore
            .add_chunk(i, &store.chunk(2, i).expect("chunk"))
            .expect("good chunk"));
    }
    assert!(!restore.add_chunk(0, &good).expect("again"), "already held");
    let summary = restore.finish().expect("finish");
    assert_eq!(summary.head, t.chain.head());
}

#[test]
fn a_snapshot_of_another_chain_a_bad_certificate_or_a_used_directory_is_refused() {
    let t = busy_chain();
    let work = tempfile::tempdir().expect("tempdir");
    let (store, _) = snapshot_of(&t, &work.path().join("snapshots"));
    let manifest = store.manifest(2).expect("manifest");

    let info = t.chain.info();
    assert!(matches!(
        verify_manifest(
            manifest.clone(),
            "other-chain",
            &info.genesis_hash,
            &info.validators
        ),
        Err(SnapshotError::WrongChain { .. })
    ));
    let mut wrong_sig = manifest.clone();
    let cert = wrong_sig.certificate.as_mut().expect("certificate");
    let mut sig = cert.signatures[0].signature.to_vec();
    sig[0] ^= 1;
    cert.signatures[0].signature = Bytes::from(sig);
    assert!(matches!(
        verified(&t, wrong_sig),
        Err(SnapshotError::Certificate { height: 2, .. })
    ));
    let mut other_height = manifest.clone();
    other_height.height = 1;
    assert!(matches!(
        verified(&t, other_height),
        Err(SnapshotError::BadManifest(_))
    ));
    let mut format = manifest.clone();
    format.format = 2;
    assert!(matches!(
        verified(&t, format),
        Err(SnapshotError::Format(2))
    ));

    // A node's database already in place is never overwritten.
    let file = work.path().join("s");
    export(&store, 2, &file).expect("export");
    let used = tempfile::tempdir().expect("tempdir");
    std::fs::write(used.path().join("CURRENT"), b"x").expect("write");
    assert!(matches!(
        import_file(
            &file,
            used.path(),
            &info.chain_id,
            &info.genesis_hash,
            &info.validators,
            None
        ),
        Err(SnapshotError::TargetNotEmpty(_))
    ));
    // A truncated file is refused, and leaves nothing behind.
    let bytes = std::fs::read(&file).expect("read");
    let cut = work.path().join("cut");
    std::fs::write(&cut, &bytes[..bytes.len() - 10]).expect("write");
    let target = work.path().join("data");
    assert!(matches!(
        import_file(
            &cut,
            &target,
            &info.chain_id,
            &info.genesis_hash,
            &info.validators,
            None
        ),
        Err(SnapshotError::BadFile { .. })
    ));
    assert!(!target.exists());
    assert!(!work.path().join("data.importing").exists());
    std::fs::write(&cut, b"not a snapshot").expect("write");
    assert!(matches!(
        SnapshotFile::open(&cut),
        Err(SnapshotError::BadFile { .. })
    ));
}

#[test]
fn a_validator_snapshots_every_interval_and_keeps_the_latest() {
    let t = TestChain::new(4);
    assert!(matches!(
        take(
            t.chain.storage(),
            &SnapshotStore::new(tempfile::tempdir().expect("tmp").path()),
            "test-chain",
            &t.chain.info().genesis_hash,
            || {}
        ),
        Err(SnapshotError::AtGenesis)
    ));
    let work = tempfile::tempdir().expect("tempdir");
    let store = SnapshotStore::new(work.path());
    let info = t.chain.info();
    t.chain.take_snapshots(SnapshotSchedule::new(
        store.clone(),
        2,
        2,
        &info.chain_id,
        info.genesis_hash,
    ));
    let mut roots = std::collections::BTreeMap::new();
    for nonce in 0..6 {
        t.admit_ok(vec![t.transfer(0, t.addr(1), 1, nonce)]);
        let head = t.produce().expect("block");
        roots.insert(head.height, head.state_root);
        // Each snapshot is written, and the old ones removed, before the next is due (one still
        // being written makes the next skipped): wait for the writer, not for the file alone.
        if head.height.is_multiple_of(2) {
            let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
            let schedule = t.chain.snapshots().expect("a schedule");
            while schedule.is_writing() || !store.heights().expect("list").contains(&head.height) {
                assert!(
                    std::time::Instant::now() < deadline,
                    "no snapshot of {}",
                    head.height
                );
                std::thread::sleep(std::time::Duration::from_millis(10));
            }
        }
    }
    assert_eq!(store.heights().expect("list"), vec![4, 6]);
    // Each is the state of its own height, not of a later one.
    for h in [4, 6] {
        let v = verified(&t, store.manifest(h).expect("manifest")).expect("verified");
        assert_eq!(v.lthash.root(), roots[&h]);
    }
}

/// Issue 25 (high): an entry's kind was not bound to the state commitment. Accounts enter it
/// as (address, value), other entries as (tag ‖ key, value), so the system entry `validators`
/// hashed like an account keyed `"yvalidators"`, and an account whose address starts with
/// 0x79 (`y`) like a system entry keyed by the other 19 bytes. Only the sum of the chunks'
/// accumulators is certified: a server re-cut a chunk with the entry moved to the other kind,
/// forged the manifest's digest and size to match, and every check passed. Every entry is now
/// checked for the shape of its kind before it counts.
#[test]
fn an_entry_moved_to_another_kind_is_refused() {
    let t = TestChain::new(2);
    let y = quorate_proto::Address([0x79; 20]);
    t.admit_ok(vec![t.transfer(0, y, 5, 0)]);
    t.produce().expect("block 1");
    let work = tempfile::tempdir().expect("tempdir");
    let (store, summary) = snapshot_of(&t, &work.path().join("snapshots"));
    let manifest = store.manifest(summary.height).expect("manifest");
    let moves: [(StateKind, &[u8], StateKind, Vec<u8>); 2] = [
        (
            StateKind::System,
            b"validators",
            StateKind::Account,
            b"yvalidators".to_vec(),
        ),
        (
            StateKind::Account,
            &y.0,
            StateKind::System,
            y.0[1..].to_vec(),
        ),
    ];
    for (from_kind, from_key, to_kind, to_key) in moves {
        let index = (0..manifest.chunks.len() as u32)
            .find(|i| {
                let c = SnapshotChunk::decode(
                    store.chunk(summary.height, *i).expect("chunk").as_slice(),
                )
                .expect("decode");
                c.entries
                    .iter()
                    .any(|e| e.kind() == from_kind && e.key.as_ref() == from_key)
            })
            .expect("the entry is in a chunk");
        let mut chunk = SnapshotChunk::decode(
            store
                .chunk(summary.height, index)
                .expect("chunk")
                .as_slice(),
        )
        .expect("decode");
        let entry = chunk
            .entries
            .iter_mut()
            .find(|e| e.kind() == from_kind && e.key.as_ref() == from_key)
            .expect("entry");
        entry.kind = to_kind as i32;
        entry.key = Bytes::from(to_key);
        chunk
            .entries
            .sort_by(|a, b| (a.kind, &a.key).cmp(&(b.kind, &b.key)));
        // The moved entry hashes exactly as before: the chunk's accumulator is unchanged.
        let mut moved = crate::state_root::LtHash::default();
        for e in &chunk.entries {
            crate::storage::add_to_lthash(&mut moved, e.kind(), &e.key, &e.value);
        }
        assert_eq!(
            moved.to_bytes(),
            manifest.chunks[index as usize].lthash.to_vec(),
            "the forgery keeps the accumulator"
        );
        let forged = chunk.encode_to_vec();
        let mut forged_manifest = manifest.clone();
        forged_manifest.chunks[index as usize].digest =
            Bytes::copy_from_slice(&Hash32::of(&forged).0);
        forged_manifest.chunks[index as usize].size = forged.len() as u64;
        let target = tempfile::tempdir().expect("tempdir");
        let mut restore = Restore::begin(
            target.path(),
            verified(&t, forged_manifest).expect("the manifest still verifies"),
        )
        .expect("begin");
        match restore.add_chunk(index, &forged) {
            Err(SnapshotError::BadChunk { reason, .. }) => {
                assert!(reason.contains("entry"), "{reason}")
            }
            other => panic!("{from_kind:?} entry moved to {to_kind:?} accepted: {other:?}"),
        }
        restore.abandon();
    }
}

/// A chain whose only validator is replaced by the key `[42; 32]`, committed up to the height
/// before the change comes into force; with that height (the change's).
fn a_replacement_about_to_come() -> (TestChain, u64) {
    use quorate_proto::v1::{
        admin, tx_body::Payload as Wire, Admin, ReplaceValidator, ValidatorEntry,
    };
    let t = TestChain::new(2);
    let new = quorate_proto::Keypair::from_secret(&[42; 32]);
    let replace = t.signed(
        0,
        0,
        10_000,
        Wire::Admin(Admin {
            action: Some(admin::Action::ReplaceValidator(ReplaceValidator {
                old_key: t.validator.public().0.to_vec().into(),
                new: Some(ValidatorEntry {
                    public_key: new.public().0.to_vec().into(),
                    name: "moved".into(),
                }),
            })),
        }),
    );
    t.admit_ok(vec![replace]);
    let decided = t.produce().expect("block").height;
    let effective = decided + t.chain.info().params.validator_set_delay;
    // Up to the height before the change: the snapshot's header names the new set.
    let mut nonce = 0;
    while t.chain.head().height + 1 < effective {
        t.admit_ok(vec![t.transfer(1, t.addr(0), 1, nonce)]);
        nonce += 1;
        t.produce().expect("block");
    }
    (t, effective)
}

/// Issue 25 (high): a set-change proof showed that the changes carried happened, not that none
/// was missing: a server could drop the last change (its proof is signed by the set before
/// it), and the joining node took the old set for the heights after it. The set the changes
/// prove for the next height must now be the one the certified header names.
#[test]
fn a_manifest_missing_a_set_change_is_refused() {
    let (t, effective) = a_replacement_about_to_come();
    let work = tempfile::tempdir().expect("tempdir");
    let (store, summary) = snapshot_of(&t, &work.path().join("snapshots"));
    assert_eq!(summary.height, effective - 1);
    let manifest = store.manifest(summary.height).expect("manifest");
    assert_eq!(
        manifest.set_changes.len(),
        1,
        "the change to come is carried"
    );
    verified(&t, manifest.clone()).expect("the whole manifest verifies");
    let mut cut = manifest;
    cut.set_changes.clear();
    match verified(&t, cut) {
        Err(SnapshotError::BadManifest(reason)) => {
            assert!(reason.contains("a change is missing"), "{reason}")
        }
        other => panic!("a manifest without its last change: {other:?}"),
    }
}

/// Issue 25 (high, second half): no trust anchor. An operator's anchor (a height and the hash
/// of the validator set deciding it, from a node it trusts) now refuses snapshots below it or
/// proving another set there, in state sync and in `snapshot import`.
#[test]
fn a_snapshot_must_descend_from_the_trust_anchor() {
    let (t, effective) = a_replacement_about_to_come();
    let work = tempfile::tempdir().expect("tempdir");
    let (store, summary) = snapshot_of(&t, &work.path().join("snapshots"));
    let v = verified(&t, store.manifest(summary.height).expect("manifest")).expect("verified");
    let info = t.chain.info();
    let new_set =
        quorate_proto::certificate::ValidatorSet::new(vec![quorate_proto::Keypair::from_secret(
            &[42; 32],
        )
        .public()]);
    let anchor = |height: u64, set: &quorate_proto::certificate::ValidatorSet| TrustAnchor {
        height,
        validators_hash: set.hash(),
    };
    v.check_anchor(&info.validators, &anchor(effective - 1, &info.validators))
        .expect("the set in force at the snapshot's height");
    v.check_anchor(&info.validators, &anchor(2, &info.validators))
        .expect("an earlier anchor on the same history");
    for (a, why) in [
        (anchor(effective - 1, &new_set), "prove set"),
        (anchor(effective, &new_set), "below the trusted height"),
    ] {
        match v.check_anchor(&info.validators, &a) {
            Err(SnapshotError::Untrusted(reason)) => assert!(reason.contains(why), "{reason}"),
            other => panic!("{a:?}: {other:?}"),
        }
    }
    // Through `snapshot import`'s path: refused, nothing imported.
    let file = work.path().join("state.snapshot");
    export(&store, summary.height, &file).expect("export");
    let target = tempfile::tempdir().expect("tempdir");
    assert!(matches!(
        import_file(
            &file,
            target.path(),
            &info.chain_id,
            &info.genesis_hash,
            &info.validators,
            Some(&anchor(effective - 1, &new_set)),
        ),
        Err(SnapshotError::Untrusted(_))
    ));
    assert!(!target.path().join("CURRENT").exists());
    assert_eq!(
        format!("9:{}", new_set.hash().to_hex()).parse::<TrustAnchor>(),
        Ok(anchor(9, &new_set))
    );
    assert!("0:00".parse::<TrustAnchor>().is_err());
    assert!("9".parse::<TrustAnchor>().is_err());
}
