//! Entry points for fuzzing every decoder that reads bytes from outside the node: clients'
//! transactions, peers' headers, bodies, consensus messages, transaction gossip and sync
//! answers (snapshot manifests and chunks included), the consensus record read back from disk, and the genesis and config files. Each
//! takes arbitrary bytes and must neither panic nor accept what the rules refuse; `fuzz/`
//! drives them with libFuzzer (nightly), and `tests/fuzz_corpus.rs` replays the kept corpus
//! with seeded mutations on stable.

use std::collections::BTreeSet;
use std::sync::OnceLock;

use bytes::Bytes;
use prost::Message;
use quorate_consensus::{Consensus, Input, Params, Timeouts};
use quorate_genesis::{ChainParams, Genesis};
use quorate_proto::certificate::{verify_certificate, ValidatorSet};
use quorate_proto::v1::{
    Block, ConsensusMessage, ConsensusRecord, DecisionResponse, Transaction, TxGossip,
};
use quorate_proto::{Hash32, Keypair};

use crate::block_rules::{check_body, check_compact, decode_header};
use crate::driver::codec::{certificate_from_proto, message_from_proto, record_entry};
use crate::driver::signing::{ConsensusSigner, ConsensusVerifier};
use crate::verified_tx::verify_block_txs;

/// Chain id of the fixed context the targets check against.
pub const CHAIN_ID: &str = "fuzz-chain";

/// The fixed context: four validators with known keys and default chain parameters.
pub struct Context {
    /// Chain parameters.
    pub params: ChainParams,
    /// Validator keys, by index.
    pub keys: Vec<Keypair>,
    /// The validator set.
    pub validators: ValidatorSet,
}

/// The context every target uses (built once).
pub fn context() -> &'static Context {
    static CONTEXT: OnceLock<Context> = OnceLock::new();
    CONTEXT.get_or_init(|| {
        let keys: Vec<Keypair> = (1..=4u8).map(|i| Keypair::from_secret(&[i; 32])).collect();
        Context {
            params: ChainParams::default(),
            validators: ValidatorSet::new(keys.iter().map(Keypair::public).collect()),
            keys,
        }
    })
}

/// A transaction from a client: decode, stateless rules, signature.
pub fn transaction(data: &[u8]) {
    let c = context();
    if let Ok(tx) = Transaction::decode(data) {
        if let Ok(v) = verify_block_txs(vec![tx.clone()], CHAIN_ID, &c.params) {
            // Accepted: the signature really verifies over the body's hash.
            let key = quorate_proto::PublicKey::from_slice(&tx.public_key).expect("checked");
            let msg = quorate_proto::tx::signing_message(&v[0].hash);
            assert!(key.verify(&msg, &tx.signature), "accepted a bad signature");
        }
    }
}

/// A block header from a peer: only the canonical encoding is accepted.
pub fn block_header(data: &[u8]) {
    let bytes = Bytes::copy_from_slice(data);
    if let Ok(h) = decode_header(&bytes) {
        assert_eq!(h.encode_to_vec(), data, "accepted a non-canonical header");
    }
}

/// A block body from a peer: header, body against header, transactions.
pub fn block_body(data: &[u8]) {
    let c = context();
    let Ok(block) = Block::decode(data) else {
        return;
    };
    let Ok(header) = decode_header(&block.header) else {
        return;
    };
    if check_body(&header, &block.transactions, &c.params).is_ok() {
        let _ = verify_block_txs(block.transactions, CHAIN_ID, &c.params);
    }
}

/// A consensus message from a peer, through a validator's state machine.
pub fn consensus_message(data: &[u8]) {
    let c = context();
    let Ok(m) = ConsensusMessage::decode(data) else {
        return;
    };
    let Ok(msg) = message_from_proto(&m) else {
        return;
    };
    let mut machine = Consensus::new(
        Params::new(4, Some(0), Timeouts::default()),
        ConsensusSigner {
            chain_id: CHAIN_ID.into(),
            key: c.keys[0].clone(),
        },
        ConsensusVerifier {
            chain_id: CHAIN_ID.into(),
            sets: std::sync::Arc::new(crate::validator_sets::ValidatorSets::fixed(&c.validators)),
        },
        1,
        &[],
    );
    let _ = machine.start();
    let _ = machine.handle(Input::Message(msg));
    if let Some(b) = m.compact_block {
        if let Ok(h) = decode_header(&b.header) {
            let _ = check_compact(&h, &b.tx_hashes, &c.params);
        }
    }
}

/// Transactions gossiped by a peer.
pub fn tx_gossip(data: &[u8]) {
    let c = context();
    if let Ok(g) = TxGossip::decode(data) {
        let _ = verify_block_txs(g.transactions, CHAIN_ID, &c.params);
    }
}

/// A peer's answer to a sync request: certificate, then body.
pub fn sync_answer(data: &[u8]) {
    let c = context();
    let Ok(r) = DecisionResponse::decode(data) else {
        return;
    };
    if let Some(cert) = &r.certificate {
        if let Ok(core) = certificate_from_proto(cert) {
            let hash = Hash32(core.block.0);
            if verify_certificate(cert, CHAIN_ID, &c.validators, cert.height, &hash).is_ok() {
                // What verifies holds a quorum of distinct validators of the set.
                let signers: BTreeSet<u32> =
                    cert.signatures.iter().map(|s| s.validator_index).collect();
                assert!(signers.len() >= c.validators.quorum());
                assert!(signers.iter().all(|&i| (i as usize) < c.validators.len()));
            }
        }
    }
    if let Some(b) = r.block {
        if let Ok(h) = decode_header(&b.header) {
            let _ = check_body(&h, &b.transactions, &c.params);
        }
    }
    let _ = verify_block_txs(r.transactions, CHAIN_ID, &c.params);
    if let Some(m) = r.snapshot_manifest {
        let _ = crate::snapshot::verify_manifest(m, CHAIN_ID, &Hash32([0; 32]), &c.validators);
    }
    if !r.snapshot_chunk.is_empty() {
        snapshot_chunk(&r.snapshot_chunk);
    }
}

/// A snapshot chunk checked against a manifest that lists its size and digest and an empty
/// accumulator, so that decoding and every entry check run: only a chunk without entries can
/// pass (anything else would be an LtHash collision with the empty multiset).
fn snapshot_chunk(data: &[u8]) {
    use crate::state_root::LtHash;
    let info = quorate_proto::v1::SnapshotChunkInfo {
        lthash: LtHash::default().to_bytes().into(),
        digest: Bytes::copy_from_slice(&Hash32::of(data).0),
        size: data.len() as u64,
        entries: 0,
        codes: 0,
    };
    let manifest = crate::snapshot::VerifiedManifest {
        manifest: quorate_proto::v1::SnapshotManifest {
            height: 1,
            chunks: vec![info],
            ..Default::default()
        },
        header: Default::default(),
        block_hash: Hash32([0; 32]),
        chunk_lthashes: vec![LtHash::default()],
        lthash: LtHash::default(),
        validators: quorate_proto::certificate::ValidatorSet::new(Vec::new()),
    };
    if let Ok(chunk) = manifest.verify_chunk(0, data) {
        assert!(chunk.entries.is_empty() && chunk.index == 0 && chunk.height == 1);
    }
}

/// An entry of the consensus record, read back from disk.
pub fn record(data: &[u8]) {
    if let Ok(r) = ConsensusRecord::decode(data) {
        let _ = record_entry(r);
    }
}

/// A genesis file.
pub fn genesis(data: &[u8]) {
    if let Ok(text) = std::str::from_utf8(data) {
        if let Ok(g) = Genesis::from_json(text) {
            // What loads is consistent: its validator set and hash can be computed.
            let _ = g.validator_set();
            let _ = g.hash();
        }
    }
}

/// A node config file.
pub fn config(data: &[u8]) {
    use figment::providers::{Format, Serialized, Toml};
    if let Ok(text) = std::str::from_utf8(data) {
        let loaded: Result<crate::config::NodeConfig, _> =
            figment::Figment::from(Serialized::defaults(crate::config::NodeConfig::default()))
                .merge(Toml::string(text))
                .extract();
        if let Ok(cfg) = loaded {
            if cfg.validate().is_ok() {
                let _ = cfg.p2p.settings(1);
                let _ = cfg.validate_for_chain(&context().params);
            }
        }
    }
}

/// A fuzz target: takes any bytes, must not panic.
pub type Target = fn(&[u8]);

/// Every target by name, for the replay test and the fuzz crate.
pub const TARGETS: &[(&str, Target)] = &[
    ("transaction", transaction),
    ("block_header", block_header),
    ("block_body", block_body),
    ("consensus_message", consensus_message),
    ("tx_gossip", tx_gossip),
    ("sync_answer", sync_answer),
    ("record", record),
    ("genesis", genesis),
    ("config", config),
];

/// Valid inputs to start a corpus from, per target.
pub fn seeds() -> Vec<(&'static str, Vec<u8>)> {
    let c = context();
    let signer = &c.keys[1];
    let tx = quorate_proto::tx::sign(
        &quorate_proto::tx::transfer_body(
            CHAIN_ID,
            signer,
            0,
            c.params.transfer_fuel,
            c.keys[2].address(),
            5,
            b"memo".to_vec(),
        ),
        signer,
    );
    let hashes = vec![quorate_proto::tx::tx_hash(&tx.body)];
    let header = quorate_proto::v1::BlockHeader {
        chain_id: CHAIN_ID.into(),
        height: 1,
        parent_hash: Bytes::from_static(&[7; 32]),
        proposer: Bytes::copy_from_slice(&c.keys[1].public().0),
        time_ms: 1_700_000_000_000,
        tx_root: Bytes::copy_from_slice(&quorate_proto::merkle::root(&hashes).0),
        state_root: Bytes::from_static(&[8; 32]),
        receipts_root: Bytes::from_static(&[9; 32]),
        tx_count: 1,
        next_validators_hash: Bytes::new(),
        protocol_version: 0,
    };
    let header_bytes = Bytes::from(header.encode_to_vec());
    let block = Block {
        header: header_bytes.clone(),
        transactions: vec![tx.clone()],
    };
    let id = quorate_consensus::BlockId(Hash32::of(&header_bytes).0);
    let proposal = quorate_consensus::Proposal {
        height: 1,
        round: 0,
        block: id,
        pol_round: None,
        proposer: 1,
    };
    let sp = quorate_consensus::SignedProposal {
        proposal,
        signature: quorate_consensus::Signer::sign(
            &ConsensusSigner {
                chain_id: CHAIN_ID.into(),
                key: c.keys[1].clone(),
            },
            quorate_consensus::Signable::Proposal(&proposal),
        ),
    };
    let message = crate::driver::codec::message_to_proto(
        &quorate_consensus::Message::Proposal(sp.clone()),
        Some(quorate_proto::v1::CompactBlock {
            header: block.header.clone(),
            tx_hashes: block
                .transactions
                .iter()
                .map(|t| Bytes::copy_from_slice(&quorate_proto::tx::tx_hash(&t.body).0))
                .collect(),
        }),
    )
    .expect("a proposal has a wire form");
    let cert = quorate_proto::v1::CommitCertificate {
        height: 1,
        round: 0,
        block_hash: Bytes::copy_from_slice(&id.0),
        signatures: (0..3u32)
            .map(|v| {
                quorate_proto::certificate::sign_commit(
                    &c.keys[v as usize],
                    v,
                    CHAIN_ID,
                    1,
                    0,
                    &Hash32(id.0),
                )
            })
            .collect(),
    };
    let record = crate::driver::codec::record_of_signed(&quorate_consensus::Signed::Proposal(sp));
    let generated = quorate_genesis::generate(CHAIN_ID, 4, 2, 1_000, 1_000).expect("genesis");
    vec![
        ("transaction", tx.encode_to_vec()),
        ("block_header", header_bytes.to_vec()),
        ("block_body", block.encode_to_vec()),
        ("consensus_message", message.encode_to_vec()),
        (
            "tx_gossip",
            TxGossip {
                transactions: vec![tx.clone(), tx],
            }
            .encode_to_vec(),
        ),
        (
            "sync_answer",
            DecisionResponse {
                block: Some(block),
                certificate: Some(cert),
                ..DecisionResponse::default()
            }
            .encode_to_vec(),
        ),
        ("record", record.encode_to_vec()),
        ("genesis", generated.genesis.to_json().into_bytes()),
        (
            "config",
            crate::config::NodeConfig::default().to_toml().into_bytes(),
        ),
    ]
}
