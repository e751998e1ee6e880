use super::*;
use crate::testutil::{TestChain, BALANCE};

#[test]
fn committed_blocks_survive_reopen_with_consistent_state() {
    let t = TestChain::new(3);
    let fee = t.genesis.params.transfer_fuel * t.genesis.params.fuel_price;
    t.admit_ok(vec![
        t.transfer(0, t.addr(1), 100, 0),
        t.transfer(1, t.addr(2), 50, 0),
    ]);
    let h1 = t.produce().expect("block 1");
    t.admit_ok(vec![t.transfer(0, t.addr(2), 7, 1)]);
    let h2 = t.produce().expect("block 2");
    assert_eq!((h1.height, h2.height), (1, 2));
    let t = t.reopen();
    let head = t.chain.head();
    assert_eq!(head, h2);
    let s = t.chain.storage();
    assert_eq!(
        s.account(&t.addr(0)).expect("a0"),
        Account {
            balance: BALANCE - 107 - 2 * fee,
            nonce: 2,
            keyed: false,
        }
    );
    assert_eq!(
        s.account(&t.addr(1)).expect("a1"),
        Account {
            balance: BALANCE + 100 - 50 - fee,
            nonce: 1,
            keyed: false,
        }
    );
    assert_eq!(
        s.account(&t.addr(2)).expect("a2"),
        Account {
            balance: BALANCE + 57,
            nonce: 0,
            keyed: false,
        }
    );
    let b2 = s.block_by_height(2).expect("read").expect("block 2");
    assert_eq!(b2.hash(), h2.hash);
    assert_eq!(s.height_of(&h2.hash).expect("index"), Some(2));
    let rec = s
        .tx(&Hash32::from_slice(&b2.tx_hashes[0]).expect("hash"))
        .expect("read")
        .expect("tx");
    assert_eq!((rec.height, rec.index), (2, 0));
    assert_eq!(rec.receipt.expect("receipt").fee, fee);
    // The state root in the header is the accumulator over all accounts and entries (the
    // genesis admin and trusted deployer, the system contracts), recomputed from scratch.
    assert_eq!(s.recompute_lthash().expect("scan").root(), head.state_root);
    assert_eq!(
        b2.decode_header().expect("header").state_root.as_ref(),
        head.state_root.0
    );
}

#[test]
fn a_refused_commit_writes_nothing() {
    let t = TestChain::new(2);
    t.admit_ok(vec![t.transfer(0, t.addr(1), 100, 0)]);
    let candidates = t.mempool.lock().select(10, 1 << 20);
    let (block, _) = t
        .chain
        .propose(candidates, t.validator.public().0, 5_000)
        .expect("propose");
    // A certificate signed by a key that is not a validator must be refused before any write.
    let stranger = quorate_proto::Keypair::from_secret(&[9; 32]);
    let sig = quorate_proto::certificate::sign_commit(
        &stranger,
        0,
        &t.genesis.chain_id,
        1,
        0,
        &block.hash,
    );
    let cert = quorate_proto::v1::CommitCertificate {
        height: 1,
        round: 0,
        block_hash: bytes::Bytes::copy_from_slice(&block.hash.0),
        signatures: vec![sig],
    };
    assert!(t.chain.commit(&block, &cert).is_err());
    // Storage refuses a block that is not the next height.
    let head = t.chain.head();
    let s = t.chain.storage();
    let mut wrong = block;
    wrong.header.height = 5;
    assert!(matches!(
        s.commit_block(&wrong, &cert, None, Durability::Synced),
        Err(StorageError::NotNext { got: 5, head: 0 })
    ));
    assert_eq!(s.head().expect("head"), head);
    assert!(s.block_by_height(1).expect("read").is_none());
    assert_eq!(
        s.account(&t.addr(0)).expect("a0"),
        Account {
            balance: BALANCE,
            nonce: 0,
            keyed: false,
        }
    );
    assert_eq!(s.check_consistency().expect("consistent"), head);
}

#[test]
fn wrong_genesis_and_damaged_head_are_refused() {
    let t = TestChain::new(1);
    let s = t.chain.storage().clone();
    let other = quorate_genesis::generate("other-chain", 1, 0, 1, 0)
        .expect("gen")
        .genesis;
    assert!(matches!(
        s.init_genesis(&other.chain_id, other.hash(), 0, &[], &[], &[]),
        Err(StorageError::WrongChain { .. })
    ));
    // A head that points past the stored blocks is detected at start-up.
    let bogus = Head {
        height: 9,
        hash: Hash32([1; 32]),
        time_ms: 0,
        state_root: t.chain.head().state_root,
    };
    let mut batch = WriteBatch::default();
    batch.put_cf(s.cf(CF_META), META_HEAD, bogus.to_bytes());
    s.write(batch).expect("write");
    assert!(matches!(
        s.check_consistency(),
        Err(StorageError::Corrupt { .. })
    ));
}

#[test]
fn head_and_account_encodings_roundtrip() {
    let h = Head {
        height: 3,
        hash: Hash32([2; 32]),
        time_ms: 44,
        state_root: Hash32([5; 32]),
    };
    assert_eq!(Head::from_bytes(&h.to_bytes()), Some(h));
    assert_eq!(Head::from_bytes(&[0; 3]), None);
    let a = Account {
        balance: u64::MAX,
        nonce: 7,
        keyed: false,
    };
    assert_eq!(Account::from_bytes(a.to_bytes().as_ref()), Some(a));
    let keyed = Account { keyed: true, ..a };
    assert_eq!(keyed.to_bytes().as_ref().len(), 17);
    assert_eq!(Account::from_bytes(keyed.to_bytes().as_ref()), Some(keyed));
    assert_eq!(
        a.to_bytes().as_ref().len(),
        16,
        "a single-key account's encoding is unchanged"
    );
}

/// Issue 13, defect 10: `sync_writes = false` (for benchmarks) also dropped the fsync of the
/// consensus record, so after a power loss a validator could forget a vote and sign a
/// conflicting one. The record is synced whatever the setting; block commits follow it.
#[test]
fn the_consensus_record_is_synced_even_when_block_writes_are_not() {
    use rocksdb::statistics::Ticker;
    let dir = tempfile::tempdir().expect("tempdir");
    let s = Storage::open(
        dir.path(),
        &StorageOptions {
            sync_writes: false,
            statistics: true,
            ..StorageOptions::default()
        },
    )
    .expect("open");
    let before = s.ticker(Ticker::WalFileSynced);
    s.append_record(1, &[b"vote".to_vec()]).expect("record");
    let after_record = s.ticker(Ticker::WalFileSynced);
    assert!(after_record > before, "the record write was not fsynced");
    let mut batch = WriteBatch::default();
    batch.put_cf(s.cf(CF_META), b"probe", b"1");
    s.write(batch).expect("write");
    assert_eq!(
        s.ticker(Ticker::WalFileSynced),
        after_record,
        "other writes follow sync_writes = false"
    );
}

/// Issue 16: a restart reads the genesis recorded at the last full check when the file still
/// has the same hash, instead of parsing the whole file again.
#[test]
fn the_genesis_recorded_for_a_file_is_read_back_only_for_that_file() {
    let t = TestChain::new(2);
    let s = t.chain.storage().clone();
    let file = Hash32::of(b"genesis file bytes");
    assert!(s.recorded_genesis(&file).expect("read").is_none());
    let summary = t.chain.info().genesis.clone();
    s.record_genesis(&file, &summary.to_json()).expect("record");
    let (back, hash) = s.recorded_genesis(&file).expect("read").expect("recorded");
    assert_eq!(back, summary);
    assert!(
        back.accounts.is_empty(),
        "funded accounts are in the state, not the record"
    );
    assert_eq!(hash, t.chain.info().genesis_hash);
    assert!(s
        .recorded_genesis(&Hash32::of(b"an edited file"))
        .expect("read")
        .is_none());
}

#[test]
fn a_flush_leaves_nothing_for_the_next_open_to_replay() {
    let t = TestChain::new(3);
    t.admit_ok(vec![t.transfer(0, t.addr(1), 100, 0)]);
    let head = t.produce().expect("block 1");
    let s = t.chain.storage();
    let in_memtables = |s: &Storage| {
        s.int_property("rocksdb.num-entries-active-mem-table")
            .expect("property")
    };
    assert!(
        in_memtables(s) > 0,
        "genesis and block 1 are in the memtables"
    );
    s.flush().expect("flush");
    assert_eq!(in_memtables(s), 0);
    let t = t.reopen();
    assert_eq!(t.chain.head(), head);
    assert_eq!(
        t.chain.storage().account(&t.addr(1)).expect("a1").balance,
        BALANCE + 100
    );
}

/// Issue 17: with `keep_blocks`, a commit deletes the blocks that leave the window (record, hash
/// index, transactions and receipts); a window set on an archive node at restart is caught up
/// at most `PRUNE_PER_COMMIT` heights per commit; the state stays whole and the pruned height
/// survives a restart.
#[test]
fn pruning_keeps_the_last_blocks_and_the_whole_state() {
    let t = TestChain::new(3);
    for nonce in 0..30 {
        t.admit_ok(vec![t.transfer(0, t.addr(1), 1, nonce)]);
        t.produce().expect("block");
    }
    let s = t.chain.storage().clone();
    let first = s.block_by_height(1).expect("read").expect("block 1");
    let first_tx = Hash32::from_slice(&first.tx_hashes[0]).expect("hash");
    assert!(s.tx(&first_tx).expect("read").is_some());
    drop(s);
    let keep = StorageOptions {
        sync_writes: false,
        keep_blocks: Some(5),
        ..StorageOptions::default()
    };
    let t = t.reopen_with(&keep);
    let s = t.chain.storage().clone();
    assert_eq!(
        s.lowest_block().expect("lowest"),
        1,
        "nothing pruned before a commit"
    );
    t.admit_ok(vec![t.transfer(0, t.addr(1), 1, 30)]);
    t.produce().expect("block 31");
    assert_eq!(
        s.lowest_block().expect("lowest"),
        1 + blocks::PRUNE_PER_COMMIT
    );
    assert!(s.block_by_height(1).expect("read").is_none());
    assert!(
        s.tx(&first_tx).expect("read").is_none(),
        "its transactions went too"
    );
    assert_eq!(s.height_of(&first.hash()).expect("read"), None);
    t.admit_ok(vec![t.transfer(0, t.addr(1), 1, 31)]);
    let head = t.produce().expect("block 32");
    assert_eq!(
        s.lowest_block().expect("lowest"),
        28,
        "caught up: 28..=32 kept"
    );
    for h in 1..=32 {
        let held = s.block_by_height(h).expect("read").is_some();
        assert_eq!(held, h >= 28, "height {h}");
    }
    assert!(s.block_with_txs(27, true).expect("read").is_none());
    let (_, txs) = s.block_with_txs(30, true).expect("read").expect("block 30");
    assert_eq!(txs.len(), 1);
    assert_eq!(s.recompute_lthash().expect("scan").root(), head.state_root);
    assert_eq!(s.account(&t.addr(0)).expect("a0").nonce, 32);
    drop(s);
    let t = t.reopen_with(&keep);
    assert_eq!(t.chain.storage().lowest_block().expect("lowest"), 28);
    assert_eq!(t.chain.head(), head);
}

/// Issue 14: the consensus driver commits without waiting for the fsync. A deferred commit
/// is not fsynced; the next consensus record write (same WAL) or `sync_wal` makes it durable,
/// and a synced commit still fsyncs.
#[test]
fn a_deferred_commit_is_fsynced_by_the_next_record_write_or_sync_wal() {
    use rocksdb::statistics::Ticker;
    let t = TestChain::new(4).reopen_with(&StorageOptions {
        sync_writes: true,
        statistics: true,
        ..StorageOptions::default()
    });
    let s = t.chain.storage().clone();
    let synced = || s.ticker(Ticker::WalFileSynced);
    let commit = |nonce: u64, deferred: bool| {
        t.admit_ok(vec![t.transfer(0, t.addr(1), 5, nonce)]);
        let candidates = t.mempool.lock().select(100, 1 << 20);
        let (block, _) = t
            .chain
            .propose(candidates, t.validator.public().0, 1)
            .expect("propose");
        let cert = t.chain.solo_certificate(&t.validator, 0, &block);
        let head = if deferred {
            t.chain.commit_deferred(&block, &cert)
        } else {
            t.chain.commit(&block, &cert)
        }
        .expect("commit");
        t.mempool.lock().on_commit(&block.txs, &block.changes);
        head
    };
    let before = synced();
    let head = commit(0, true);
    assert_eq!(head.height, 1);
    assert_eq!(synced(), before, "a deferred commit was fsynced");
    s.append_record(2, &[b"prevote".to_vec()]).expect("record");
    let after_record = synced();
    assert!(after_record > before, "the record write was not fsynced");
    commit(1, true);
    assert_eq!(synced(), after_record);
    s.sync_wal().expect("sync");
    let after_sync = synced();
    assert!(after_sync > after_record, "sync_wal did not fsync");
    commit(2, false);
    assert!(synced() > after_sync, "a synced commit was not fsynced");
    assert_eq!(t.chain.head().height, 3);
}

/// Issue 25: every kind of state entry has a shape, and no well-formed entry of another kind
/// enters the state commitment under a 20-byte key (an account's): the kinds cannot be
/// confused.
#[test]
fn every_entry_kind_has_a_shape_no_other_kind_can_take() {
    use crate::storage::{check_entry_shape, EntryKey};
    use prost::Message as _;
    use quorate_proto::v1::{KeySet, StateKind, ValidatorSchedule};
    let addr = quorate_proto::Address([0x79; 20]);
    let hash = quorate_proto::Hash32([7; 32]);
    let record = crate::storage::ContractRecord {
        code_hash: bytes::Bytes::copy_from_slice(&hash.0),
        deployer: bytes::Bytes::copy_from_slice(&addr.0),
        height: 1,
        ..Default::default()
    }
    .encode_to_vec();
    let well_formed: Vec<(EntryKey, Vec<u8>)> = vec![
        (EntryKey::admin(), addr.0.to_vec()),
        (
            EntryKey::validators(),
            ValidatorSchedule::default().encode_to_vec(),
        ),
        (EntryKey::engine(), vec![1; 32]),
        (EntryKey::trusted(&addr), vec![1]),
        (EntryKey::key_set(&addr), KeySet::default().encode_to_vec()),
        (EntryKey::machine_code(&hash), vec![1, 2, 3]),
        (
            EntryKey::governance(),
            quorate_proto::v1::GovernancePolicy::default().encode_to_vec(),
        ),
        (EntryKey::proposal_count(), 7u64.to_be_bytes().to_vec()),
        (EntryKey::governance_epoch(), 1u64.to_be_bytes().to_vec()),
        (
            EntryKey::proposal(7),
            quorate_proto::v1::ProposalRecord::default().encode_to_vec(),
        ),
        (EntryKey::contract(&addr), record),
        (EntryKey::storage(&addr, b""), vec![]),
        (EntryKey::storage(&addr, b"k"), vec![9]),
    ];
    for (key, value) in &well_formed {
        key.check_shape(value)
            .unwrap_or_else(|e| panic!("{key:?}: {e}"));
        assert_ne!(
            key.state_key().len(),
            20,
            "{key:?} would hash like an account"
        );
    }
    let account = crate::storage::Account {
        balance: 1,
        nonce: 0,
        keyed: false,
    };
    check_entry_shape(StateKind::Account, &addr.0, account.to_bytes().as_ref()).expect("account");
    // What a forger would move: an account as a system entry, the schedule as an account,
    // and keys of a length no entry of the kind has.
    let refused: Vec<(StateKind, Vec<u8>, Vec<u8>)> = vec![
        (
            StateKind::System,
            addr.0[1..].to_vec(),
            account.to_bytes().as_ref().to_vec(),
        ),
        (
            StateKind::Account,
            b"yvalidators".to_vec(),
            ValidatorSchedule::default().encode_to_vec(),
        ),
        (StateKind::Account, addr.0.to_vec(), vec![0; 16]),
        (StateKind::Storage, addr.0[1..].to_vec(), vec![1]),
        (StateKind::Contract, addr.0[1..].to_vec(), vec![]),
        (StateKind::System, b"admin".to_vec(), vec![1; 19]),
        (StateKind::System, b"trusted/".to_vec(), vec![1]),
    ];
    for (kind, key, value) in refused {
        assert!(
            check_entry_shape(kind, &key, &value).is_err(),
            "{kind:?} {key:?} accepted"
        );
    }
}
