//! Protocol versions (ADR 0019): an activation is scheduled, moved or cancelled by the chain's
//! authority, every header carries the version of its height, and a release that does not
//! support a scheduled version refuses to decide its heights and says what to install.

use bytes::Bytes;
use prost::Message;
use quorate_proto::v1::tx_body::Payload as Wire;
use quorate_proto::v1::{admin, ActivateProtocol, Admin, BlockHeader, ExecStatus, Transaction};

use crate::block_rules::BlockRejection;
use crate::protocol::SUPPORTED;
use crate::testutil::TestChain;
use crate::verified_tx::{verify_block_txs, AdmissionError};

const FUEL: u64 = 100_000;

fn activate(version: u32, height: u64) -> Wire {
    Wire::Admin(Admin {
        action: Some(admin::Action::ActivateProtocol(ActivateProtocol {
            version,
            height,
        })),
    })
}

struct Admin0 {
    t: TestChain,
    nonce: u64,
    filler_nonce: u64,
}

impl Admin0 {
    fn new() -> Self {
        Self {
            t: TestChain::new(2),
            nonce: 0,
            filler_nonce: 0,
        }
    }

    fn admin_tx(&mut self, payload: Wire) -> Transaction {
        let tx = self.t.signed(0, self.nonce, FUEL, payload);
        self.nonce += 1;
        tx
    }

    /// Commits `txs` in one block built by this node, past admission (which refuses
    /// activations of versions this release does not support): as a block proposed by a
    /// validator on a newer release arrives.
    fn commit_unadmitted(&self, txs: Vec<Transaction>) -> crate::storage::Head {
        let chain = &self.t.chain;
        let height = chain.head().height + 1;
        let verified = verify_block_txs(txs, &self.t.genesis.chain_id, &chain.params_at(height))
            .expect("well formed");
        let (block, dropped) = chain
            .propose(verified, self.t.validator.public().0, 1)
            .expect("propose");
        assert!(dropped.is_empty(), "{dropped:?}");
        let cert = chain.solo_certificate(&self.t.validator, 0, &block);
        chain.commit(&block, &cert).expect("commit")
    }

    /// Commits the admin's `payload` alone; its receipt.
    fn run(&mut self, payload: Wire) -> quorate_proto::v1::Receipt {
        let tx = self.admin_tx(payload);
        self.commit_unadmitted(vec![tx.clone()]);
        self.t.receipt(&tx)
    }

    fn filler(&mut self) -> Transaction {
        let tx = self.t.transfer(1, self.t.addr(0), 1, self.filler_nonce);
        self.filler_nonce += 1;
        tx
    }
}

/// The header of `header_bytes` with its version field set to `version`, re-encoded.
fn claiming(header_bytes: &Bytes, version: u32) -> Bytes {
    let mut h = BlockHeader::decode(header_bytes.clone()).expect("header");
    h.protocol_version = version;
    Bytes::from(h.encode_to_vec())
}

#[test]
fn a_protocol_version_is_scheduled_moved_and_cancelled_only_by_the_rules() {
    let mut a = Admin0::new();
    let delay = a.t.genesis.params.validator_set_delay;
    // Admission refuses what this release cannot run, and names the fix.
    let tx = a.t.signed(0, 0, FUEL, activate(SUPPORTED + 1, 100));
    let refused = a.t.admission.admit(vec![tx]).expect("admit");
    match &refused[0].result {
        Err(e @ AdmissionError::UnsupportedProtocol { version, supported }) => {
            assert_eq!((*version, *supported), (SUPPORTED + 1, SUPPORTED));
            assert!(e.to_string().contains("upgrade the node"), "{e}");
        }
        other => panic!("admitted: {other:?}"),
    }
    let h = a.t.chain.head().height + 1;
    let too_early = a.run(activate(2, h + delay - 1));
    assert_eq!(too_early.status, ExecStatus::BadInput as i32);
    assert!(
        too_early.error.contains("at the earliest"),
        "{}",
        too_early.error
    );
    // At exactly the delay: taken, and fixed from then on (closer than the delay, the blocks
    // before it are built while earlier commits are written, and an old release stops on the
    // schedule it knows: review of issue 28).
    let mut b = Admin0::new();
    let hb = b.t.chain.head().height + 1;
    let r = b.run(activate(2, hb + delay));
    assert_eq!(r.status, ExecStatus::Success as i32, "{}", r.error);
    for late in [activate(2, 0), activate(2, hb + delay + 50)] {
        let r = b.run(late);
        assert_eq!(r.status, ExecStatus::BadInput as i32);
        assert!(
            r.error.contains("can no longer be moved or cancelled"),
            "{}",
            r.error
        );
    }
    assert_eq!(b.t.chain.protocol_at(hb + delay), 2);
    let skipping = a.run(activate(3, h + 100));
    assert_eq!(skipping.status, ExecStatus::BadInput as i32);
    assert!(
        skipping.error.contains("the next version is 2"),
        "{}",
        skipping.error
    );
    assert_eq!(
        a.t.chain.params().protocol_after(0),
        None,
        "nothing scheduled"
    );

    let at = a.t.chain.head().height + 1 + delay + 5;
    let r = a.run(activate(2, at));
    assert_eq!(r.status, ExecStatus::Success as i32, "{}", r.error);
    assert_eq!(
        (r.events[0].source.as_str(), r.events[0].kind.as_str()),
        ("protocol", "scheduled")
    );
    let book = a.t.chain.params().clone();
    assert_eq!(book.protocol_after(a.t.chain.head().height), Some((at, 2)));
    assert_eq!((book.protocol_at(at - 1), book.protocol_at(at)), (1, 2));
    // Another version while one is scheduled: refused; the same one moves.
    let other = a.run(activate(3, at + 10));
    assert!(other.error.contains("cancel it"), "{}", other.error);
    let moved = a.run(activate(2, at + 10));
    assert_eq!(moved.status, ExecStatus::Success as i32, "{}", moved.error);
    assert_eq!(book.protocol_at(at), 1);
    assert_eq!(book.protocol_at(at + 10), 2);
    let cancelled = a.run(activate(2, 0));
    assert_eq!(cancelled.status, ExecStatus::Success as i32);
    assert_eq!(cancelled.events[0].kind, "cancelled");
    assert_eq!(book.protocol_at(at + 10), 1);
    assert_eq!(a.t.chain.storage().protocol_schedule().expect("read"), None);
    let nothing = a.run(activate(2, 0));
    assert!(
        nothing.error.contains("nothing to cancel"),
        "{}",
        nothing.error
    );
}

#[test]
fn every_header_carries_its_heights_version_and_an_unsupported_one_is_never_decided() {
    let mut a = Admin0::new();
    let delay = a.t.genesis.params.validator_set_delay;
    let at = a.t.chain.head().height + 1 + delay + 2;
    let r = a.run(activate(2, at));
    assert_eq!(r.status, ExecStatus::Success as i32, "{}", r.error);
    // Below the height, version 1: no field, and a block claiming 2 is refused.
    let filler = a.t.transfer(1, a.t.addr(0), 1, a.filler_nonce);
    let params = a.t.chain.params_at(a.t.chain.head().height + 1);
    let txs = verify_block_txs(vec![filler.clone()], &a.t.genesis.chain_id, &params)
        .expect("well formed");
    let (block, _) =
        a.t.chain
            .propose(txs.clone(), a.t.validator.public().0, 1)
            .expect("propose");
    assert_eq!(block.header.protocol_version, 0);
    let refused =
        a.t.chain
            .validate(&claiming(&block.header_bytes, 2), txs, None)
            .expect("validate");
    assert_eq!(
        refused.err(),
        Some(BlockRejection::WrongProtocolVersion {
            got: 2,
            expected: 1
        })
    );
    while a.t.chain.head().height + 1 < at {
        let f = a.filler();
        a.commit_unadmitted(vec![f]);
        assert_eq!(
            a.t.chain.halt().is_some(),
            SUPPORTED < 2 && a.t.chain.head().height + 1 >= at
        );
    }
    // A restart knows the version of every height.
    let t = std::mem::replace(&mut a.t, TestChain::new(1)).reopen();
    a.t = t;
    assert_eq!(a.t.chain.protocol_at(at - 1), 1);
    assert_eq!(a.t.chain.protocol_at(at), 2);
    let f = a.filler();
    let params = a.t.chain.params_at(at);
    let txs = verify_block_txs(vec![f], &a.t.genesis.chain_id, &params).expect("well formed");
    if SUPPORTED < 2 {
        // This release stops: it names what to install, and refuses any block of the height.
        let halt = a.t.chain.halt().expect("halted before the version");
        assert_eq!((halt.version, halt.height), (2, at));
        assert!(
            halt.to_string()
                .contains("install a release that supports version 2"),
            "{halt}"
        );
        let mut header = BlockHeader::decode(block.header_bytes.clone()).expect("header");
        header.height = at;
        header.protocol_version = 2;
        let refused =
            a.t.chain
                .validate(&Bytes::from(header.encode_to_vec()), txs.clone(), None)
                .expect("validate");
        assert!(
            matches!(refused, Err(BlockRejection::UnsupportedProtocol(ref h)) if h.version == 2),
            "{refused:?}"
        );
        // A block built on the head (the driver never asks for one here): refused all the same.
        let (built, _) =
            a.t.chain
                .propose(txs.clone(), a.t.validator.public().0, 1)
                .expect("propose");
        assert_eq!(built.header.height, at);
        let refused =
            a.t.chain
                .validate(&built.header_bytes, txs, None)
                .expect("validate");
        assert!(
            matches!(refused, Err(BlockRejection::UnsupportedProtocol(_))),
            "{refused:?}"
        );
        // It keeps no transaction, from a client or a peer.
        let tx = a.t.transfer(1, a.t.addr(0), 1, a.filler_nonce);
        let refused = a.t.admission.admit(vec![tx]).expect("admit");
        assert!(
            matches!(refused[0].result, Err(AdmissionError::Halted(ref h)) if h.height == at),
            "{:?}",
            refused[0].result
        );
    } else {
        // A release that knows version 2 follows its rules from the height on.
        assert!(a.t.chain.halt().is_none());
        let (block, _) =
            a.t.chain
                .propose(txs.clone(), a.t.validator.public().0, 1)
                .expect("propose");
        assert_eq!(block.header.protocol_version, 2);
        assert_eq!(block.receipts[0].events[0].kind, "v2");
        let refused =
            a.t.chain
                .validate(&claiming(&block.header_bytes, 0), txs, None)
                .expect("validate");
        assert_eq!(
            refused.err(),
            Some(BlockRejection::WrongProtocolVersion {
                got: 0,
                expected: 2
            })
        );
    }
}
