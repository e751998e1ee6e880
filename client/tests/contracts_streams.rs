//! The library against a real node started in this process on loopback (the dev chain, which
//! carries the system contracts): typed system-contract methods checked against the interface
//! each contract embeds, block and event streams that resume across a node restart, and
//! blocks and inclusions checked against the genesis file, with forgeries refused.

use std::net::SocketAddr;
use std::time::Duration;

use prost_reflect::DescriptorPool;
use quorate_client::system::{self, remittance};
use quorate_client::{
    transaction, ChainVerifier, Checkpoint, ClientError, EventFilter, Hash32, Node, VerifyError,
};
use quorate_genesis::{dev_account_key, dev_genesis, dev_validator_key};
use quorate_node::config::NodeConfig;
use quorate_node::node::{GenesisSource, NodeSetup, RunningNode};
use quorate_proto::certificate::CertificateError;
use quorate_proto::v1::Transaction;
use quorate_proto::Keypair;

const WAIT: Duration = Duration::from_secs(60);

async fn start(data: &std::path::Path, addr: SocketAddr) -> RunningNode {
    let mut config = NodeConfig {
        grpc_addr: addr,
        ..NodeConfig::default()
    };
    config.block.interval_ms = 10;
    config.storage.sync_writes = false;
    RunningNode::start(NodeSetup {
        config,
        genesis: GenesisSource::Loaded(Box::new(dev_genesis())),
        key: dev_validator_key(),
        data_dir: data.to_owned(),
        byzantine: Default::default(),
    })
    .await
    .expect("node starts")
}

fn deposit(key: &Keypair, nonce: u64, amount: u64) -> Transaction {
    let args = remittance::DepositArgs {
        entry: "salaries".into(),
    };
    transaction::sign(
        &transaction::body(
            "quorate-dev",
            key.address(),
            nonce,
            10_000_000,
            remittance::DEPOSIT.call(&args, amount),
        ),
        key,
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_system_method_matches_the_interface_its_contract_embeds() {
    let dir = tempfile::tempdir().expect("tmp");
    let running = start(dir.path(), "127.0.0.1:0".parse().expect("addr")).await;
    let node = Node::connect(&format!("http://{}", running.grpc_addr), None)
        .await
        .expect("connect");
    let mut checked = 0;
    for contract in quorate_genesis::system::SYSTEM_CONTRACTS {
        let info = node.contract(&contract.address()).await.expect("deployed");
        let pool = DescriptorPool::decode(info.interface.as_ref()).expect("interface");
        let embedded: Vec<(String, String, String)> = pool
            .services()
            .flat_map(|s| s.methods().collect::<Vec<_>>())
            .map(|m| {
                (
                    m.name().to_owned(),
                    m.input().full_name().to_owned(),
                    m.output().full_name().to_owned(),
                )
            })
            .collect();
        let ours: Vec<(String, String, String)> = system::all_methods()
            .filter(|(c, ..)| *c == contract.name)
            .map(|(_, m, a, r)| (m.to_string(), a.to_string(), r.to_string()))
            .collect();
        assert_eq!(ours, embedded, "{}", contract.name);
        checked += ours.len();
    }
    assert_eq!(checked, 32, "every method of the four contracts");
}

/// Issue 26: a block stream and an event stream interrupted by a node restart go on from
/// their checkpoints: every block once in order, every event once, none lost.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn streams_resume_across_a_node_restart_with_nothing_lost_or_repeated() {
    let dir = tempfile::tempdir().expect("tmp");
    let data = dir.path().join("data");
    let running = start(&data, "127.0.0.1:0".parse().expect("addr")).await;
    let addr = running.grpc_addr;
    let node = Node::connect(&format!("http://{addr}"), None)
        .await
        .expect("connect");
    let key = dev_account_key(0);
    let filter = EventFilter {
        contract: Some(remittance::DEPOSIT.address()),
        kind: Some("deposited".into()),
    };
    let mut events = node.events(filter, Checkpoint::default());
    let mut blocks = node.blocks(1, true);

    let mut sent = Vec::new();
    for nonce in 0..3 {
        let outcome = node
            .submit_and_wait(&deposit(&key, nonce, 100 + nonce), WAIT)
            .await
            .expect("committed");
        assert!(outcome.succeeded(), "{:?}", outcome.receipt);
        let change = remittance::DEPOSIT
            .result(&outcome.receipt)
            .expect("result");
        assert_eq!(change.entry, "salaries");
        sent.push(outcome);
    }
    let mut seen = Vec::new();
    for _ in 0..3 {
        seen.push(events.next().await.expect("event"));
    }
    let mut heights = Vec::new();
    while heights.last().copied().unwrap_or(0) < sent[2].height {
        heights.push(
            blocks
                .next()
                .await
                .expect("block")
                .header
                .expect("header")
                .height,
        );
    }
    let checkpoint = events.checkpoint();
    assert_eq!(checkpoint, Checkpoint::of(&seen[2]));

    // The node stops under both streams and comes back on the same address and data.
    running.stop().await.expect("stops");
    let running = start(&data, addr).await;
    for nonce in 3..6 {
        let outcome = node
            .submit_and_wait(&deposit(&key, nonce, 100 + nonce), WAIT)
            .await
            .expect("committed after the restart");
        sent.push(outcome);
    }
    for _ in 3..6 {
        seen.push(events.next().await.expect("event after the restart"));
    }
    while heights.last().copied().unwrap_or(0) < sent[5].height {
        heights.push(
            blocks
                .next()
                .await
                .expect("block")
                .header
                .expect("header")
                .height,
        );
    }
    let sent_hashes: Vec<&[u8]> = sent.iter().map(|o| o.hash.0.as_slice()).collect();
    let seen_hashes: Vec<&[u8]> = seen.iter().map(|e| e.tx_hash.as_ref()).collect();
    assert_eq!(
        seen_hashes, sent_hashes,
        "every deposit's event once, in order"
    );
    assert_eq!(
        heights,
        (1..=sent[5].height).collect::<Vec<_>>(),
        "every block once, in order, across the restart"
    );
    // A stream opened later from the saved checkpoint gives exactly the events after it.
    let mut later = node.events(
        EventFilter {
            contract: Some(remittance::DEPOSIT.address()),
            kind: None,
        },
        checkpoint,
    );
    for outcome in &sent[3..] {
        let event = later.next().await.expect("event after the checkpoint");
        assert_eq!(event.tx_hash.as_ref(), outcome.hash.0.as_slice());
    }
    // The reserves as a typed query.
    let reserves = remittance::RESERVES
        .query(
            &node,
            &remittance::ReservesArgs {
                owner: key.address().0.to_vec().into(),
            },
        )
        .await
        .expect("reserves");
    assert_eq!(reserves.total, (100..106).sum::<u64>());
    running.stop().await.expect("stops");
}

/// Issue 26: blocks checked on the client's side against the genesis file; forged
/// certificates, headers and transaction lists are refused with their reason.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn blocks_and_inclusions_are_checked_against_genesis_and_forgeries_refused() {
    let dir = tempfile::tempdir().expect("tmp");
    let running = start(dir.path(), "127.0.0.1:0".parse().expect("addr")).await;
    let node = Node::connect(&format!("http://{}", running.grpc_addr), None)
        .await
        .expect("connect");
    let key = dev_account_key(1);
    let outcome = node
        .submit_and_wait(&deposit(&key, 0, 7), WAIT)
        .await
        .expect("committed");
    let mut verifier = ChainVerifier::new(&dev_genesis());
    let mut blocks = node.blocks(1, true);
    let mut last = None;
    while last.is_none() {
        let block = blocks.next().await.expect("block");
        let verified = verifier.verify(&node, &block).await.expect("verifies");
        assert!(verified.transactions_checked);
        assert_eq!(verified.signers, vec![dev_validator_key().public()]);
        if verified.header.height == outcome.height {
            last = Some(block);
        }
    }
    let block = last.expect("the deposit's block");
    assert_eq!(
        quorate_client::verify_inclusion(&block, &outcome.hash).expect("included"),
        outcome.index
    );
    let set = dev_genesis().validator_set();
    let chain = "quorate-dev";

    let mut forged = block.clone();
    let cert = forged.certificate.as_mut().expect("certificate");
    let mut signature = cert.signatures[0].signature.to_vec();
    signature[0] ^= 1;
    cert.signatures[0].signature = signature.into();
    assert_eq!(
        quorate_client::verify_block(chain, &set, &forged),
        Err(VerifyError::Certificate {
            height: outcome.height,
            source: CertificateError::BadSignature(0)
        })
    );
    let mut unsigned = block.clone();
    unsigned
        .certificate
        .as_mut()
        .expect("cert")
        .signatures
        .clear();
    assert!(matches!(
        quorate_client::verify_block(chain, &set, &unsigned),
        Err(VerifyError::Certificate {
            source: CertificateError::NoQuorum { got: 0, .. },
            ..
        })
    ));
    // A certificate checked against a set it was not signed by.
    let other_set =
        quorate_proto::certificate::ValidatorSet::new(vec![
            Keypair::from_secret(&[42; 32]).public()
        ]);
    assert!(matches!(
        quorate_client::verify_block(chain, &other_set, &block),
        Err(VerifyError::Certificate {
            source: CertificateError::BadSignature(0),
            ..
        })
    ));
    let mut swapped = block.clone();
    swapped.header_bytes = blocks.next().await.expect("the next block").header_bytes;
    let result = quorate_client::verify_block(chain, &set, &swapped);
    assert!(
        matches!(result, Err(VerifyError::Header { .. })),
        "{result:?}"
    );
    let mut dropped = block.clone();
    dropped.transactions.clear();
    dropped.transactions.push(deposit(&key, 1, 8));
    assert!(matches!(
        quorate_client::verify_block(chain, &set, &dropped),
        Err(VerifyError::Transactions { .. })
    ));
    assert!(matches!(
        quorate_client::verify_block("another-chain", &set, &block),
        Err(VerifyError::Chain { .. })
    ));
    assert_eq!(
        quorate_client::verify_inclusion(&block, &Hash32([3; 32])),
        Err(VerifyError::NotIncluded(
            Hash32([3; 32]).to_hex(),
            outcome.height
        ))
    );
    // The validator's key signs a second chain from the same genesis (what a validator set
    // that equivocates could show a client): each block certified, but a block of the other
    // chain does not follow the block checked before it.
    let other_dir = tempfile::tempdir().expect("tmp");
    let other = start(other_dir.path(), "127.0.0.1:0".parse().expect("addr")).await;
    let fork = Node::connect(&format!("http://{}", other.grpc_addr), None)
        .await
        .expect("connect");
    let h = outcome.height;
    let mut fork_blocks = fork.blocks(h + 1, false);
    let fork_next = fork_blocks.next().await.expect("the other chain's block");
    let mut linked = ChainVerifier::new(&dev_genesis());
    let ours = node.block(h, false).await.expect("our block");
    linked.verify(&node, &ours).await.expect("ours verifies");
    ChainVerifier::new(&dev_genesis())
        .verify(&fork, &fork_next)
        .await
        .expect("the other chain's block is certified on its own");
    match linked.verify(&fork, &fork_next).await {
        Err(ClientError::Verify(VerifyError::Parent { height, .. })) => assert_eq!(height, h + 1),
        other => panic!("a block of another chain after ours: {other:?}"),
    }
    other.stop().await.expect("stops");
    running.stop().await.expect("stops");
}
