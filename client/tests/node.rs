//! The library against a real node started in this process on loopback (the dev chain): submit
//! and wait, resubmission, refusals with their codes, a wait that runs out, many tasks of one
//! account through the nonce manager, and connection failures that name their cause.

use std::time::Duration;

use quorate_client::{ClientError, Node, NonceManager, Tls};
use quorate_genesis::{dev_account_key, dev_genesis, dev_validator_key};
use quorate_node::config::{GrpcTlsConfig, NodeConfig};
use quorate_node::node::{GenesisSource, NodeSetup, RunningNode};
use quorate_proto::crypto::Hash32;
use quorate_proto::tx::{sign, transfer_body};
use quorate_proto::v1::{RejectCode, Transaction, TxState};
use quorate_proto::Keypair;

const WAIT: Duration = Duration::from_secs(60);

async fn start(dir: &std::path::Path, tune: impl FnOnce(&mut NodeConfig)) -> RunningNode {
    let mut config = NodeConfig {
        grpc_addr: "127.0.0.1:0".parse().expect("addr"),
        ..NodeConfig::default()
    };
    config.block.interval_ms = 10;
    config.storage.sync_writes = false;
    tune(&mut config);
    RunningNode::start(NodeSetup {
        config,
        genesis: GenesisSource::Loaded(Box::new(dev_genesis())),
        key: dev_validator_key(),
        data_dir: dir.join("data"),
        byzantine: Default::default(),
    })
    .await
    .expect("node starts")
}

fn transfer(from: &Keypair, to: &Keypair, amount: u64, nonce: u64) -> Transaction {
    sign(
        &transfer_body(
            "quorate-dev",
            from,
            nonce,
            1_000,
            to.address(),
            amount,
            vec![],
        ),
        from,
    )
}

async fn plain(running: &RunningNode) -> Node {
    Node::connect(&format!("http://{}", running.grpc_addr), None)
        .await
        .expect("connect")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_transfer_commits_once_however_often_it_is_submitted() {
    let dir = tempfile::tempdir().expect("tmp");
    let running = start(dir.path(), |_| {}).await;
    let node = plain(&running).await;
    let (a, b) = (dev_account_key(0), dev_account_key(1));
    let tx = transfer(&a, &b, 5, 0);
    let outcome = node.submit_and_wait(&tx, WAIT).await.expect("committed");
    assert!(outcome.succeeded(), "{:?}", outcome.receipt);
    assert_eq!(
        outcome.transaction.as_ref(),
        Some(&tx),
        "the copy the chain holds"
    );
    // The same transaction again, after its commit: the same hash and outcome, no second
    // inclusion (a retry after a lost answer is safe).
    let again = node.submit_and_wait(&tx, WAIT).await.expect("same outcome");
    assert_eq!(again, outcome);
    let account = node.account(&a.address()).await.expect("account");
    assert_eq!(account.next_nonce, 1, "one inclusion");
}

/// `submit_as_is` and `submit_batch` give the node's answers verbatim (a resubmission is refused
/// `DUPLICATE` while pending, `NONCE_USED` once committed), where `submit` takes both as success.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_nodes_answers_as_given_one_at_a_time_and_in_a_batch() {
    let dir = tempfile::tempdir().expect("tmp");
    let running = start(dir.path(), |_| {}).await;
    let node = plain(&running).await;
    let (a, b) = (dev_account_key(2), dev_account_key(3));
    let refused = |answer: Result<Hash32, ClientError>| match answer {
        Err(ClientError::Refused { hash, code, .. }) => (hash, code),
        other => panic!("expected a refusal, got {other:?}"),
    };

    // A batch: admitted, refused for its chain, and the first one again (pending: DUPLICATE).
    let first = transfer(&a, &b, 1, 0);
    let wrong_chain = sign(
        &transfer_body("another-chain", &a, 1, 1_000, b.address(), 1, vec![]),
        &a,
    );
    let answers = node
        .submit_batch(vec![first.clone(), wrong_chain.clone(), first.clone()])
        .await
        .expect("the batch call");
    let mut answers = answers.into_iter();
    let hash = answers.next().expect("three answers").expect("admitted");
    assert_eq!(hash, quorate_proto::tx::tx_hash(&first.body));
    assert_eq!(
        refused(answers.next().expect("second")),
        (
            Some(quorate_proto::tx::tx_hash(&wrong_chain.body)),
            RejectCode::WrongChain
        )
    );
    assert_eq!(
        refused(answers.next().expect("third")),
        (Some(hash), RejectCode::Duplicate)
    );
    node.wait(&hash, WAIT).await.expect("committed");

    // Committed: as given, a replay (NONCE_USED); through `submit`, the same hash.
    assert_eq!(
        refused(node.submit_as_is(&first).await),
        (Some(hash), RejectCode::NonceUsed)
    );
    assert_eq!(node.submit(&first).await.expect("held: success"), hash);
    // Another transaction with that nonce is a replay for both.
    let other = transfer(&a, &b, 2, 0);
    assert_eq!(
        refused(node.submit_as_is(&other).await),
        (
            Some(quorate_proto::tx::tx_hash(&other.body)),
            RejectCode::NonceUsed
        )
    );
    assert_eq!(
        node.submit(&other)
            .await
            .err()
            .and_then(|e| e.reject_code()),
        Some(RejectCode::NonceUsed)
    );

    // Pending (a nonce ahead of the next one waits in the mempool): DUPLICATE as given,
    // success through `submit`.
    let ahead = transfer(&a, &b, 3, 3);
    let ahead_hash = node.submit_as_is(&ahead).await.expect("admitted ahead");
    assert_eq!(
        refused(node.submit_as_is(&ahead).await),
        (Some(ahead_hash), RejectCode::Duplicate)
    );
    assert_eq!(
        node.submit(&ahead).await.expect("pending: success"),
        ahead_hash
    );
    assert_eq!(
        node.status(&ahead_hash).await.expect("status").state,
        TxState::Pending as i32
    );
    // An empty batch is an empty answer, not an error.
    assert!(node
        .submit_batch(Vec::new())
        .await
        .expect("empty")
        .is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refusals_carry_the_nodes_code_and_an_unanswered_wait_names_the_hash() {
    let dir = tempfile::tempdir().expect("tmp");
    let running = start(dir.path(), |_| {}).await;
    let node = plain(&running).await;
    let (a, b) = (dev_account_key(0), dev_account_key(1));
    let wrong_chain = sign(
        &transfer_body("another-chain", &a, 0, 1_000, b.address(), 5, vec![]),
        &a,
    );
    match node.submit(&wrong_chain).await {
        Err(e) => assert_eq!(e.reject_code(), Some(RejectCode::WrongChain), "{e}"),
        Ok(h) => panic!("admitted {h}"),
    }
    // A transaction nobody submitted: the wait runs out and says so, naming the hash.
    let hash = Hash32([9; 32]);
    match node.wait(&hash, Duration::from_millis(300)).await {
        Err(ClientError::Unknown {
            hash: h, waited, ..
        }) => {
            assert_eq!(h, hash);
            assert!(waited >= Duration::from_millis(300));
        }
        other => panic!("expected unknown, got {other:?}"),
    }
    assert_eq!(
        node.status(&hash).await.expect("status").state,
        TxState::Unknown as i32
    );
}

/// Issue 26: one account sends 1,000 transfers from 20 concurrent tasks through the nonce
/// manager; every one commits, once, and the account's nonce ends at 1,000.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn twenty_tasks_of_one_account_send_a_thousand_transfers_without_gap_or_reuse() {
    let dir = tempfile::tempdir().expect("tmp");
    let running = start(dir.path(), |_| {}).await;
    let node = plain(&running).await;
    let (a, b) = (dev_account_key(2), dev_account_key(3));
    let nonces = NonceManager::load(&node, a.address())
        .await
        .expect("nonces");
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..20 {
        let (node, nonces, a, b) = (node.clone(), nonces.clone(), a.clone(), b.clone());
        tasks.spawn(async move {
            let mut hashes = Vec::new();
            for _ in 0..50 {
                let lease = nonces.lease();
                let tx = transfer(&a, &b, 1, lease.nonce());
                let hash = node.submit(&tx).await.expect("admitted");
                lease.used();
                hashes.push(hash);
            }
            hashes
        });
    }
    let mut hashes = Vec::new();
    while let Some(done) = tasks.join_next().await {
        hashes.extend(done.expect("task"));
    }
    assert_eq!(hashes.len(), 1_000);
    let mut places = Vec::new();
    for hash in &hashes {
        let outcome = node.wait(hash, WAIT).await.expect("committed");
        assert!(outcome.succeeded());
        places.push((outcome.height, outcome.index));
    }
    places.sort_unstable();
    places.dedup();
    assert_eq!(places.len(), 1_000, "each in its own place");
    let account = node.account(&a.address()).await.expect("account");
    assert_eq!(account.account.expect("account").nonce, 1_000);
}

/// Issue 26: connection failures name their cause and the fix: nothing listening, a
/// plaintext call to a TLS node, and a mutual-TLS node called without a client certificate
/// (the CLI said only `transport error (Unknown)` and `h2 protocol error`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connection_failures_name_their_cause_and_the_fix() {
    let dir = tempfile::tempdir().expect("tmp");
    let certs = dir.path().join("tls");
    quorate_node::tls::generate(&certs, &["localhost".to_owned()], None).expect("certs");
    let running = start(dir.path(), |c| {
        c.grpc.tls = Some(GrpcTlsConfig {
            cert_file: certs.join(quorate_node::tls::NODE_CERT),
            key_file: certs.join(quorate_node::tls::NODE_KEY),
            client_ca_file: Some(certs.join(quorate_node::tls::CA_CERT)),
        });
    })
    .await;
    let port = running.grpc_addr.port();
    let fix = |e: ClientError| match e {
        ClientError::Unreachable { fix, .. } => fix,
        other => panic!("expected a transport failure, got {other:?}"),
    };

    // Nothing listens on a port just freed.
    let free = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let closed = free.local_addr().expect("addr").port();
    drop(free);
    let e = Node::connect(&format!("http://127.0.0.1:{closed}"), None)
        .await
        .expect_err("nothing listens");
    assert!(fix(e).contains("nothing listens"));

    // Plaintext to the TLS node: the connection opens, the first call fails.
    let e = match Node::connect(&format!("http://localhost:{port}"), None).await {
        Ok(node) => node.node_status().await.expect_err("plaintext to TLS"),
        Err(e) => e,
    };
    let text = e.to_string();
    assert!(fix(e).contains("https://"), "{text}");

    // TLS with the CA but no client certificate, against mutual TLS.
    let ca_only = Tls {
        ca: certs.join(quorate_node::tls::CA_CERT),
        identity: None,
    };
    let e = match Node::connect(&format!("https://localhost:{port}"), Some(&ca_only)).await {
        Ok(node) => node.node_status().await.expect_err("no client certificate"),
        Err(e) => e,
    };
    let text = e.to_string();
    assert!(fix(e).contains("client certificate"), "{text}");

    // With the client identity, it works.
    let mutual = Tls {
        identity: Some((
            certs.join(quorate_node::tls::CLIENT_CERT),
            certs.join(quorate_node::tls::CLIENT_KEY),
        )),
        ..ca_only
    };
    let node = Node::connect(&format!("https://localhost:{port}"), Some(&mutual))
        .await
        .expect("mutual TLS");
    assert_eq!(
        node.node_status().await.expect("status").chain_id,
        "quorate-dev"
    );
}
