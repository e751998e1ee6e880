//! Conformance vectors: what every client library must compute exactly as the node does
//! (addresses, multi-signature addresses, encoded bodies, hashes, signing messages,
//! signatures, leaves), computed here by the node's own rules (`quorate-proto`) and kept in
//! `clients/vectors.json`, which the Python (and later TypeScript) tests check. This test fails
//! if the file and the rules ever differ; `QUORATE_WRITE_VECTORS=1` writes it again.

use bytes::Bytes;
use prost::Message as _;
use quorate_client::{verify_block, ChainVerifier, VerifyError};
use quorate_proto::certificate::{sign_commit, CertificateError, ValidatorSet};
use quorate_proto::v1::{
    BlockHeader, BlockInfo, CommitCertificate, Thresholds, Transaction, ValidatorEntry,
    ValidatorSetChange,
};
use quorate_proto::{keyset, merkle, tx, Hash32, Keypair};
use serde_json::{json, Value};

fn key(i: u8) -> Keypair {
    Keypair::from_secret(&[i; 32])
}

fn vectors() -> Value {
    let keys: Vec<Value> = (1..=3u8)
        .map(|i| {
            let k = key(i);
            json!({
                "seed": hex::encode([i; 32]),
                "public_key": hex::encode(k.public().0),
                "address": hex::encode(k.address().0),
            })
        })
        .collect();
    let thresholds = Thresholds {
        base: 2,
        key_management: 4,
        deploy: 0,
        large_transfer_above: 5_000,
        large_transfer: 3,
        contract_call: 0,
    };
    let weights = [2u32, 1, 1];
    let members: Vec<([u8; 32], u32)> = (1..=3u8)
        .zip(weights)
        .map(|(i, w)| (key(i).public().0, w))
        .collect();
    let set = keyset::of(&members, thresholds);
    let with_calls = keyset::of(
        &members,
        Thresholds {
            contract_call: 3,
            ..thresholds
        },
    );
    let multisig = |set: &quorate_proto::v1::KeySet| {
        let t = set.thresholds.expect("thresholds");
        json!({
            "keys": set.keys.iter().map(|k| json!({"public_key": hex::encode(&k.public_key), "weight": k.weight})).collect::<Vec<_>>(),
            "thresholds": {
                "base": t.base, "key_management": t.key_management, "deploy": t.deploy,
                "large_transfer_above": t.large_transfer_above, "large_transfer": t.large_transfer,
                "contract_call": t.contract_call,
            },
            "canonical_bytes": hex::encode(keyset::canonical_bytes(set)),
            "address": hex::encode(keyset::address(set).0),
        })
    };
    let sender = key(1);
    let to = key(2).address();
    let body = tx::transfer_body("vectors-chain", &sender, 7, 1_000, to, 25, b"memo".to_vec());
    let body_bytes = body.encode_to_vec();
    let hash = tx::tx_hash(&body_bytes);
    let mut signed = tx::sign(&body, &sender);
    let (signature, single_leaf) = (signed.signature.clone(), tx::leaf_of(&signed));
    assert!(tx::cosign(&mut signed, &key(3)));
    json!({
        "about": "Computed by client/tests/vectors.rs from quorate-proto; every client library checks them.",
        "verification": verification(),
        "bodies": bodies(),
        "system_contracts": quorate_genesis::system::SYSTEM_CONTRACTS.iter().map(|c| json!({
            "name": c.name, "address": hex::encode(c.address().0),
        })).collect::<Vec<_>>(),
        "contract_address": {
            "deployer": hex::encode(key(1).address().0),
            "nonce": 9,
            "address": hex::encode(quorate_proto::Address::of_contract(&key(1).address(), 9).0),
        },
        "keys": keys,
        "multisig": [multisig(&set), multisig(&with_calls)],
        "transfer": {
            "chain_id": "vectors-chain",
            "signer_seed": hex::encode([1u8; 32]),
            "nonce": 7,
            "fuel_limit": 1000,
            "to": hex::encode(to.0),
            "amount": 25,
            "memo": hex::encode(b"memo"),
            "body_bytes": hex::encode(&body_bytes),
            "tx_hash": hex::encode(hash.0),
            "signing_message": hex::encode(tx::signing_message(&hash)),
            "signature": hex::encode(&signature),
            "leaf": hex::encode(single_leaf.0),
            "cosigner_seed": hex::encode([3u8; 32]),
            "cosigned_transaction": hex::encode(signed.encode_to_vec()),
            "cosigned_leaf": hex::encode(tx::leaf_of(&signed).0),
        },
    })
}

const CHAIN: &str = "vectors-chain";

/// One body of each kind, built with this library's builders, with what each library needs to
/// build it again: every library must produce the same bytes.
fn bodies() -> Value {
    use quorate_client::system::remittance;
    use quorate_client::transaction as t;
    let signer = key(1).address();
    let (k2, k3) = (key(2).public(), key(3).public());
    // Every field a value of its own, so that a builder that swaps two is caught.
    let thresholds = Thresholds {
        base: 2,
        key_management: 5,
        deploy: 1,
        large_transfer_above: 1_000,
        large_transfer: 4,
        contract_call: 3,
    };
    let code: Vec<u8> = (0u8..64).collect();
    let deposit = remittance::DepositArgs {
        entry: "rent".into(),
    };
    let cases: Vec<(&str, Value, quorate_proto::v1::tx_body::Payload)> = vec![
        (
            "call",
            json!({"contract": hex::encode(remittance::DEPOSIT.address().0), "method": "deposit", "args": hex::encode(deposit.encode_to_vec()), "value": 100}),
            remittance::DEPOSIT.call(&deposit, 100),
        ),
        (
            "system_call",
            json!({"contract": "remittance", "method": "deposit", "fields": {"entry": "rent"}, "value": 100}),
            remittance::DEPOSIT.call(&deposit, 100),
        ),
        (
            "deploy",
            json!({"code": hex::encode(&code), "init_args": "0a01"}),
            t::deploy(code.clone(), vec![0x0a, 0x01]),
        ),
        (
            "add_key",
            json!({"public_key": k2.to_hex(), "weight": 2}),
            t::add_key(&k2, 2),
        ),
        (
            "remove_key",
            json!({"public_key": k3.to_hex()}),
            t::remove_key(&k3),
        ),
        (
            "set_weight",
            json!({"public_key": k2.to_hex(), "weight": 3}),
            t::set_weight(&k2, 3),
        ),
        (
            "set_thresholds",
            json!({"base": 2, "key_management": 5, "deploy": 1, "large_transfer_above": 1000, "large_transfer": 4, "contract_call": 3}),
            t::set_thresholds(thresholds),
        ),
        (
            "set_trusted_deployer",
            json!({"account": hex::encode(key(2).address().0), "trusted": true}),
            t::set_trusted_deployer(key(2).address(), true),
        ),
        (
            "set_trusted_deployer",
            json!({"account": hex::encode(key(3).address().0), "trusted": false}),
            t::set_trusted_deployer(key(3).address(), false),
        ),
        (
            "set_admin",
            json!({"to": hex::encode(key(3).address().0)}),
            t::set_admin(key(3).address()),
        ),
        (
            "add_validator",
            json!({"public_key": k2.to_hex(), "name": "v-new"}),
            t::add_validator(&k2, "v-new"),
        ),
        (
            "remove_validator",
            json!({"public_key": k3.to_hex()}),
            t::remove_validator(&k3),
        ),
        (
            "replace_validator",
            json!({"old": k3.to_hex(), "new": k2.to_hex(), "name": "v-repl"}),
            t::replace_validator(&k3, &k2, "v-repl"),
        ),
    ];
    cases
        .into_iter()
        .map(|(kind, fields, payload)| {
            let body = t::body(CHAIN, signer, 3, 5_000_000, payload);
            json!({
                "kind": kind, "fields": fields, "chain_id": CHAIN,
                "signer": hex::encode(signer.0), "nonce": 3, "fuel_limit": 5_000_000,
                "body_bytes": hex::encode(body.encode_to_vec()),
            })
        })
        .collect()
}

/// A block at `height` carrying `txs`, whose header names `next_set` for the next height.
fn header(height: u64, txs: &[Transaction], next_set: &ValidatorSet) -> BlockHeader {
    let leaves: Vec<Hash32> = txs.iter().map(tx::leaf_of).collect();
    BlockHeader {
        chain_id: CHAIN.into(),
        height,
        parent_hash: Bytes::copy_from_slice(&[height as u8; 32]),
        proposer: Bytes::copy_from_slice(&key(11).public().0),
        time_ms: 1_700_000_000_000 + height,
        tx_root: Bytes::copy_from_slice(&merkle::root(&leaves).0),
        state_root: Bytes::copy_from_slice(&[7; 32]),
        receipts_root: Bytes::copy_from_slice(&[8; 32]),
        tx_count: txs.len() as u32,
        next_validators_hash: Bytes::copy_from_slice(&next_set.hash().0),
        protocol_version: 0,
    }
}

/// A certificate of `hash` at `height` signed by `signers` (index in the set, key).
fn certificate(height: u64, hash: &Hash32, signers: &[(u32, u8)]) -> CommitCertificate {
    CommitCertificate {
        height,
        round: 0,
        block_hash: Bytes::copy_from_slice(&hash.0),
        signatures: signers
            .iter()
            .map(|&(index, seed)| sign_commit(&key(seed), index, CHAIN, height, 0, hash))
            .collect(),
    }
}

/// The block of `header` carrying `txs`, certified by `signers`.
fn block(header: &BlockHeader, txs: &[Transaction], signers: &[(u32, u8)]) -> BlockInfo {
    let header_bytes = header.encode_to_vec();
    let hash = Hash32::of(&header_bytes);
    BlockInfo {
        hash: Bytes::copy_from_slice(&hash.0),
        header: Some(header.clone()),
        header_bytes: header_bytes.into(),
        tx_hashes: txs
            .iter()
            .map(|t| Bytes::copy_from_slice(&tx::tx_hash(&t.body).0))
            .collect(),
        transactions: txs.to_vec(),
        certificate: Some(certificate(header.height, &hash, signers)),
    }
}

fn entries(seeds: &[u8]) -> Vec<ValidatorEntry> {
    seeds
        .iter()
        .map(|&s| ValidatorEntry {
            public_key: Bytes::copy_from_slice(&key(s).public().0),
            name: format!("validator-{s}"),
        })
        .collect()
}

/// The change to the set of `seeds` at `height`, proven by a header of `height - 1` naming
/// `named` and certified by `signers`.
fn change(
    height: u64,
    seeds: &[u8],
    named: &ValidatorSet,
    signers: &[(u32, u8)],
) -> ValidatorSetChange {
    let header = header(height - 1, &[], named);
    let bytes = header.encode_to_vec();
    ValidatorSetChange {
        height,
        validators: entries(seeds),
        certificate: Some(certificate(height - 1, &Hash32::of(&bytes), signers)),
        header: bytes.into(),
    }
}

/// A verifier trusting a genesis of the validators `seeds` on the vectors' chain.
fn verifier_of(seeds: &[u8]) -> ChainVerifier {
    ChainVerifier::new(&quorate_genesis::Genesis {
        chain_id: CHAIN.into(),
        validators: seeds
            .iter()
            .map(|&s| quorate_genesis::GenesisValidator {
                name: format!("validator-{s}"),
                public_key: key(s).public().to_hex(),
            })
            .collect(),
        ..quorate_genesis::build_dev_genesis()
    })
}

/// How a library reports the outcome of checking a block: "ok" or the kind of refusal.
fn outcome(result: Result<(), VerifyError>) -> &'static str {
    match result {
        Ok(()) => "ok",
        Err(VerifyError::SetChange(_)) => "set_change",
        Err(VerifyError::Header { .. }) => "header_hash",
        Err(VerifyError::Transactions { .. }) => "transactions",
        Err(VerifyError::Chain { .. }) => "chain",
        Err(VerifyError::Certificate { source, .. }) => match source {
            CertificateError::WrongBlock { .. } => "wrong_block",
            CertificateError::UnknownValidator { .. } => "unknown_validator",
            CertificateError::DuplicateValidator(_) => "duplicate_validator",
            CertificateError::BadSignature(_) => "bad_signature",
            CertificateError::NoQuorum { .. } => "no_quorum",
        },
        Err(other) => panic!("no vector kind for {other}"),
    }
}

/// Blocks and validator set change chains to check from a genesis set, each with the outcome
/// every library must reach; computed here, the outcomes checked against this library.
fn verification() -> Value {
    let genesis_seeds = [11u8, 12, 13, 14];
    let changed_seeds = [11u8, 12, 13, 15];
    let genesis = ValidatorSet::from_entries(&entries(&genesis_seeds)).expect("set");
    let changed = ValidatorSet::from_entries(&entries(&changed_seeds)).expect("set");
    // The set changes at height 5: validator 14 leaves, 15 takes its index (3).
    let good_change = change(5, &changed_seeds, &changed, &[(0, 11), (1, 12), (2, 13)]);
    let sender = key(1);
    let mut cosigned = tx::sign(
        &tx::transfer_body(CHAIN, &sender, 0, 1_000, key(2).address(), 3, vec![]),
        &sender,
    );
    assert!(tx::cosign(&mut cosigned, &key(3)));
    let plain = tx::sign(
        &tx::transfer_body(CHAIN, &sender, 1, 1_000, key(2).address(), 4, vec![]),
        &sender,
    );
    let txs = vec![cosigned.clone(), plain.clone()];

    let at3 = header(3, &txs, &genesis);
    let at7 = header(7, &txs, &changed);
    let good7 = block(&at7, &txs, &[(0, 11), (1, 12), (3, 15)]);
    let mut blocks: Vec<(&str, BlockInfo, &str)> = vec![
        (
            "a block under the genesis set",
            block(&at3, &txs, &[(0, 11), (2, 13), (3, 14)]),
            "ok",
        ),
        (
            "a block under the changed set (index 3 is validator 15 now)",
            good7.clone(),
            "ok",
        ),
        (
            "index 3 signed by validator 14, who left the set at height 5",
            block(&at7, &txs, &[(0, 11), (1, 12), (3, 14)]),
            "bad_signature",
        ),
        (
            "two signatures of four validators",
            block(&at7, &txs, &[(0, 11), (1, 12)]),
            "no_quorum",
        ),
        (
            "one validator counted twice",
            block(&at7, &txs, &[(0, 11), (1, 12), (1, 12)]),
            "duplicate_validator",
        ),
        (
            "an index outside the set",
            block(&at7, &txs, &[(0, 11), (1, 12), (4, 15)]),
            "unknown_validator",
        ),
    ];
    let mut other_block = good7.clone();
    other_block.certificate =
        block(&header(7, &[], &changed), &[], &[(0, 11), (1, 12), (3, 15)]).certificate;
    blocks.push((
        "the certificate of another block",
        other_block,
        "wrong_block",
    ));
    let mut edited = good7.clone();
    let mut edited_header = at7.clone();
    edited_header.tx_count = 1;
    edited.header_bytes = edited_header.encode_to_vec().into();
    blocks.push(("header bytes edited after signing", edited, "header_hash"));
    let mut misdecoded = good7.clone();
    misdecoded.header.as_mut().expect("header").height = 3;
    blocks.push((
        "the node's decoded header says another height than the signed bytes",
        misdecoded,
        "header_hash",
    ));
    let mut replaced = good7.clone();
    replaced.transactions[1] = tx::sign(
        &tx::transfer_body(CHAIN, &sender, 1, 1_000, key(2).address(), 400, vec![]),
        &sender,
    );
    replaced.tx_hashes[1] = Bytes::copy_from_slice(&tx::tx_hash(&replaced.transactions[1].body).0);
    blocks.push((
        "a transaction replaced by another",
        replaced,
        "transactions",
    ));
    let mut stripped = good7.clone();
    stripped.transactions[0].cosignatures.clear();
    blocks.push((
        "a co-signature stripped (the leaf binds the signing keys)",
        stripped,
        "transactions",
    ));

    let mut chains: Vec<(&str, Vec<ValidatorSetChange>, &str)> = vec![(
        "the change, certified by the genesis set",
        vec![good_change.clone()],
        "ok",
    )];
    let mut other_set = good_change.clone();
    other_set.validators = entries(&[11, 12, 13, 16]);
    chains.push((
        "another set than the header names",
        vec![other_set],
        "set_change",
    ));
    let by_new_set = change(5, &changed_seeds, &changed, &[(0, 11), (1, 12), (3, 15)]);
    chains.push((
        "certified by the new set instead of the one in force",
        vec![by_new_set],
        "set_change",
    ));
    let mut renamed = good_change.clone();
    let mut h = BlockHeader::decode(renamed.header.as_ref()).expect("header");
    h.next_validators_hash = Bytes::copy_from_slice(
        &ValidatorSet::from_entries(&entries(&[11, 12, 13, 16]))
            .expect("set")
            .hash()
            .0,
    );
    renamed.header = h.encode_to_vec().into();
    renamed.validators = entries(&[11, 12, 13, 16]);
    chains.push((
        "the header's named set edited after signing",
        vec![renamed],
        "set_change",
    ));

    // Every outcome, checked against this library.
    let verify = |changes: &[ValidatorSetChange], b: &BlockInfo| -> Result<(), VerifyError> {
        let mut verifier = verifier_of(&genesis_seeds);
        // The height the signed bytes hold, not the node's decoding.
        let height = BlockHeader::decode(b.header_bytes.as_ref()).map_or(0, |h| h.height);
        let set = verifier.prove_set(changes, height)?;
        verify_block(CHAIN, &set, b).map(|_| ())
    };
    let hexs = |m: &dyn Fn() -> Vec<u8>| hex::encode(m());
    json!({
        "chain_id": CHAIN,
        "genesis_validators": entries(&genesis_seeds).iter().map(|e| hex::encode(&e.public_key)).collect::<Vec<_>>(),
        "set_changes": [hexs(&|| good_change.encode_to_vec())],
        "blocks": blocks.iter().map(|(about, b, expected)| {
            assert_eq!(outcome(verify(std::slice::from_ref(&good_change), b)), *expected, "{about}");
            json!({"about": about, "block_info": hex::encode(b.encode_to_vec()), "expect": expected})
        }).collect::<Vec<_>>(),
        "set_change_chains": chains.iter().map(|(about, changes, expected)| {
            assert_eq!(outcome(verify(changes, &good7)), *expected, "{about}");
            json!({"about": about, "changes": changes.iter().map(|c| hex::encode(c.encode_to_vec())).collect::<Vec<_>>(), "block_info": hex::encode(good7.encode_to_vec()), "expect": expected})
        }).collect::<Vec<_>>(),
    })
}

#[test]
fn the_conformance_vectors_are_the_nodes_rules() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../clients/vectors.json");
    let computed = serde_json::to_string_pretty(&vectors()).expect("json") + "\n";
    if std::env::var_os("QUORATE_WRITE_VECTORS").is_some() {
        std::fs::write(path, &computed).expect("write the vectors");
    }
    let kept = std::fs::read_to_string(path)
        .expect("clients/vectors.json (QUORATE_WRITE_VECTORS=1 writes it)");
    assert_eq!(
        kept, computed,
        "clients/vectors.json differs from the node's rules: if the rules changed on purpose, write it again with QUORATE_WRITE_VECTORS=1 and check every library"
    );
}

/// Review finding H2: a node may not leave out, or replace, a set change the verifier proved
/// before (asked for the set at a later height).
#[test]
fn a_verifier_refuses_changes_that_leave_out_or_replace_one_it_proved() {
    let genesis_seeds = [11u8, 12, 13, 14];
    let changed_seeds = [11u8, 12, 13, 15];
    let changed = ValidatorSet::from_entries(&entries(&changed_seeds)).expect("set");
    let good = change(5, &changed_seeds, &changed, &[(0, 11), (1, 12), (2, 13)]);
    let mut verifier = verifier_of(&genesis_seeds);
    assert_eq!(
        verifier.prove_set(std::slice::from_ref(&good), 7),
        Ok(changed.clone())
    );
    // The same chain again, and a later height: fine.
    assert_eq!(
        verifier.prove_set(std::slice::from_ref(&good), 9),
        Ok(changed)
    );
    // Without it, the genesis set would be "in force" at 9: refused.
    assert_eq!(
        verifier.prove_set(&[], 9),
        Err(VerifyError::OmittedChange(5))
    );
    // Below the change, nothing is left out.
    assert!(verifier.prove_set(&[], 4).is_ok());
}
