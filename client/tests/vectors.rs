//! Conformance vectors: what every client library must compute exactly as the node does
//! (addresses, multi-signature addresses, encoded bodies, hashes, signing messages,
//! signatures, leaves), computed here by the node's own rules (`quorate-proto`) and kept in
//! `clients/vectors.json`, which the Python (and later TypeScript) tests check. This test fails
//! if the file and the rules ever differ; `QUORATE_WRITE_VECTORS=1` writes it again.

use prost::Message as _;
use quorate_proto::v1::Thresholds;
use quorate_proto::{keyset, tx, Keypair};
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
