//! The gRPC API through a real tonic server on loopback: every service and method, plus
//! server reflection and the health service.

use std::time::Duration;

use bytes::Bytes;
use futures::StreamExt;
use quorate_genesis::{dev_account_key, dev_genesis, dev_validator_key};
use quorate_node::config::NodeConfig;
use quorate_node::node::{GenesisSource, NodeSetup, RunningNode};
use quorate_proto::tx::{sign, transfer_body};
use quorate_proto::v1::chain_service_client::ChainServiceClient;
use quorate_proto::v1::node_service_client::NodeServiceClient;
use quorate_proto::v1::tx_service_client::TxServiceClient;
use quorate_proto::v1::{
    get_block_request::Selector, GetAccountRequest, GetBlockRequest, GetNodeStatusRequest,
    RejectCode, StreamBlocksRequest, SubmitBatchRequest, SubmitRequest, Transaction, TxState,
    TxStatusRequest, WaitForCommitRequest,
};
use quorate_proto::Keypair;
use tonic::transport::Channel;

async fn start(dir: &std::path::Path) -> RunningNode {
    start_with(dir, |_| {}).await
}

async fn start_with(dir: &std::path::Path, tune: impl FnOnce(&mut NodeConfig)) -> RunningNode {
    let mut config = NodeConfig {
        grpc_addr: "127.0.0.1:0".parse().expect("addr"),
        ..NodeConfig::default()
    };
    config.block.interval_ms = 10;
    config.storage.sync_writes = false;
    config.grpc.max_batch_txs = 100;
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

async fn channel(node: &RunningNode) -> Channel {
    tonic::transport::Endpoint::from_shared(format!("http://{}", node.grpc_addr))
        .expect("url")
        .connect()
        .await
        .expect("connect")
}

/// Submits `tx` and waits (up to 30 s) for it to commit; returns its final status.
async fn submit_and_wait(
    txs: &mut TxServiceClient<Channel>,
    tx: Transaction,
) -> quorate_proto::v1::TxStatusResponse {
    let hash = txs
        .submit(SubmitRequest {
            transaction: Some(tx),
        })
        .await
        .expect("submit")
        .into_inner()
        .tx_hash;
    txs.wait_for_commit(WaitForCommitRequest {
        tx_hash: hash,
        timeout_ms: 30_000,
    })
    .await
    .expect("wait")
    .into_inner()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_service_works_over_loopback() {
    let dir = tempfile::tempdir().expect("tempdir");
    let node = start(dir.path()).await;
    let ch = channel(&node).await;
    let mut txs = TxServiceClient::new(ch.clone());
    let mut chain = ChainServiceClient::new(ch.clone());
    let mut status = NodeServiceClient::new(ch.clone());
    let (k0, k1) = (dev_account_key(0), dev_account_key(1));

    // Status before any block.
    let s = status
        .get_status(GetNodeStatusRequest {})
        .await
        .expect("status")
        .into_inner();
    assert_eq!(
        (s.chain_id.as_str(), s.height, s.validators.len()),
        ("quorate-dev", 0, 1)
    );
    assert_eq!(s.params.expect("params").transfer_fuel, 1_000);
    let err = chain
        .get_block(GetBlockRequest {
            selector: Some(Selector::Latest(true)),
            include_transactions: false,
        })
        .await
        .expect_err("no blocks yet");
    assert_eq!(err.code(), tonic::Code::NotFound);

    // Follow the block stream from height 1 before anything commits.
    let mut stream = chain
        .stream_blocks(StreamBlocksRequest {
            from_height: 1,
            include_transactions: true,
        })
        .await
        .expect("stream")
        .into_inner();

    // Submit one, then wait for it.
    let t0 = transfer(&k0, &k1, 10, 0);
    let r = txs
        .submit(SubmitRequest {
            transaction: Some(t0.clone()),
        })
        .await
        .expect("submit")
        .into_inner();
    assert!(r.rejection.is_none(), "{:?}", r.rejection);
    let hash0 = r.tx_hash.clone();
    let w = txs
        .wait_for_commit(WaitForCommitRequest {
            tx_hash: hash0.clone(),
            timeout_ms: 30_000,
        })
        .await
        .expect("wait")
        .into_inner();
    assert_eq!(w.state, TxState::Committed as i32);
    assert_eq!(w.receipt.as_ref().expect("receipt").fee, 1_000);
    assert_eq!(w.transaction.as_ref(), Some(&t0));

    // A batch: good ones, a duplicate of a pending one, and a bad signature; results in order.
    let mut bad = transfer(&k1, &k0, 1, 0);
    bad.signature = Bytes::from(vec![7u8; 64]);
    let batch = vec![
        transfer(&k0, &k1, 1, 1),
        transfer(&k0, &k1, 2, 2),
        transfer(&k0, &k1, 1, 1),
        bad,
    ];
    let res = txs
        .submit_batch(SubmitBatchRequest {
            transactions: batch,
        })
        .await
        .expect("batch")
        .into_inner()
        .results;
    let codes: Vec<i32> = res
        .iter()
        .map(|r| r.rejection.as_ref().map_or(0, |j| j.code))
        .collect();
    assert_eq!(
        codes,
        vec![
            0,
            0,
            RejectCode::Duplicate as i32,
            RejectCode::BadSignature as i32
        ]
    );
    // The refused one is reported as such by status.
    let st = txs
        .get_status(TxStatusRequest {
            tx_hash: res[3].tx_hash.clone(),
        })
        .await
        .expect("status")
        .into_inner();
    assert_eq!(st.state, TxState::Rejected as i32);
    assert_eq!(
        st.rejection.expect("reason").code,
        RejectCode::BadSignature as i32
    );
    let last = txs
        .wait_for_commit(WaitForCommitRequest {
            tx_hash: res[1].tx_hash.clone(),
            timeout_ms: 30_000,
        })
        .await
        .expect("wait")
        .into_inner();
    assert_eq!(last.state, TxState::Committed as i32);

    // Oversized batch request is refused as a whole.
    let too_many: Vec<Transaction> = (0..101).map(|n| transfer(&k1, &k0, 1, n)).collect();
    let err = txs
        .submit_batch(SubmitBatchRequest {
            transactions: too_many,
        })
        .await
        .expect_err("too many");
    assert_eq!(err.code(), tonic::Code::InvalidArgument);

    // Accounts.
    let a = chain
        .get_account(GetAccountRequest {
            address: Bytes::copy_from_slice(&k0.address().0),
        })
        .await
        .expect("acct")
        .into_inner();
    let acct = a.account.expect("account");
    assert_eq!((acct.nonce, a.next_nonce), (3, 3));
    assert_eq!(acct.balance, 1_000_000_000_000 - 13 - 3 * 1_000);
    let err = chain
        .get_account(GetAccountRequest {
            address: Bytes::from_static(&[1, 2]),
        })
        .await
        .expect_err("bad address");
    assert_eq!(err.code(), tonic::Code::InvalidArgument);

    // Blocks by height, hash and latest agree; certificates verify against the genesis set.
    let latest = chain
        .get_block(GetBlockRequest {
            selector: Some(Selector::Latest(true)),
            include_transactions: true,
        })
        .await
        .expect("latest")
        .into_inner();
    let header = latest.header.clone().expect("header");
    let by_hash = chain
        .get_block(GetBlockRequest {
            selector: Some(Selector::Hash(latest.hash.clone())),
            include_transactions: false,
        })
        .await
        .expect("by hash")
        .into_inner();
    let by_height = chain
        .get_block(GetBlockRequest {
            selector: Some(Selector::Height(header.height)),
            include_transactions: false,
        })
        .await
        .expect("by height")
        .into_inner();
    assert_eq!(by_hash.hash, latest.hash);
    assert_eq!(by_height.header_bytes, latest.header_bytes);
    assert_eq!(
        blake3::hash(&latest.header_bytes).as_bytes(),
        latest.hash.as_ref()
    );
    assert_eq!(latest.transactions.len(), latest.tx_hashes.len());
    let h = quorate_proto::crypto::Hash32::from_slice(&latest.hash).expect("hash");
    quorate_proto::certificate::verify_certificate(
        latest.certificate.as_ref().expect("certificate"),
        "quorate-dev",
        &dev_genesis().validator_set(),
        header.height,
        &h,
    )
    .expect("certificate verifies");
    let err = chain
        .get_block(GetBlockRequest {
            selector: Some(Selector::Height(header.height + 100)),
            include_transactions: false,
        })
        .await
        .expect_err("future");
    assert_eq!(err.code(), tonic::Code::NotFound);

    // The stream delivered every block from 1 to the head, in order, each extending the last.
    let mut parent: Option<Bytes> = None;
    for expected in 1..=header.height {
        let b = tokio::time::timeout(Duration::from_secs(30), stream.next())
            .await
            .expect("in time")
            .expect("item")
            .expect("ok");
        let bh = b.header.expect("header");
        assert_eq!(bh.height, expected);
        if let Some(p) = &parent {
            assert_eq!(&bh.parent_hash, p);
        }
        parent = Some(b.hash);
    }

    // Status now.
    let s = status
        .get_status(GetNodeStatusRequest {})
        .await
        .expect("status")
        .into_inner();
    assert_eq!(s.height, header.height);
    assert_eq!(s.latest_block_hash, latest.hash);

    // Health and reflection.
    // Health follows the commits it has seen: SERVING soon after the first (bounded wait).
    let mut health = tonic_health::pb::health_client::HealthClient::new(ch.clone());
    let serving = tonic_health::pb::health_check_response::ServingStatus::Serving as i32;
    let mut status = 0;
    for _ in 0..300 {
        status = health
            .check(tonic_health::pb::HealthCheckRequest {
                service: "quorate.v1.TxService".into(),
            })
            .await
            .expect("health")
            .into_inner()
            .status;
        if status == serving {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(status, serving);
    use tonic_reflection::pb::v1::server_reflection_client::ServerReflectionClient;
    use tonic_reflection::pb::v1::{
        server_reflection_request::MessageRequest, server_reflection_response::MessageResponse,
        ServerReflectionRequest,
    };
    let mut refl = ServerReflectionClient::new(ch);
    let req = ServerReflectionRequest {
        host: String::new(),
        message_request: Some(MessageRequest::ListServices(String::new())),
    };
    let mut resp = refl
        .server_reflection_info(tokio_stream::iter(vec![req]))
        .await
        .expect("reflection")
        .into_inner();
    let msg = resp.next().await.expect("response").expect("ok");
    let Some(MessageResponse::ListServicesResponse(list)) = msg.message_response else {
        panic!("unexpected reflection answer")
    };
    let names: Vec<String> = list.service.into_iter().map(|s| s.name).collect();
    for svc in [
        "quorate.v1.TxService",
        "quorate.v1.ChainService",
        "quorate.v1.NodeService",
        "grpc.health.v1.Health",
    ] {
        assert!(
            names.iter().any(|n| n == svc),
            "{svc} missing from {names:?}"
        );
    }

    node.stop().await.expect("clean stop");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wait_for_commit_on_unknown_hash_returns_unknown_and_bad_hash_is_invalid() {
    let dir = tempfile::tempdir().expect("tempdir");
    let node = start(dir.path()).await;
    let mut txs = TxServiceClient::new(channel(&node).await);
    let s = txs
        .wait_for_commit(WaitForCommitRequest {
            tx_hash: Bytes::from(vec![9u8; 32]),
            timeout_ms: 100,
        })
        .await
        .expect("wait")
        .into_inner();
    assert_eq!(s.state, TxState::Unknown as i32);
    let err = txs
        .get_status(TxStatusRequest {
            tx_hash: Bytes::from_static(&[1]),
        })
        .await
        .expect_err("bad");
    assert_eq!(err.code(), tonic::Code::InvalidArgument);
    node.stop().await.expect("clean stop");
}

/// `spin` loops until its fuel runs out.
const SPIN: &str = r#"(module (memory (export "memory") 1) (func (export "spin") (loop (br 0))))"#;

/// Issue 13, defect 5: a read-only query could burn the chain's whole per-transaction fuel while
/// holding the commit lock and an engine slot, and server streams were not bounded at all.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn queries_and_streams_are_bounded() {
    use quorate_proto::v1::contract_service_client::ContractServiceClient;
    use quorate_proto::v1::{tx_body, Deploy, ExecStatus, QueryRequest};
    let dir = tempfile::tempdir().expect("tempdir");
    let node = start_with(dir.path(), |c| {
        c.grpc.max_streams = 1;
        c.grpc.max_query_fuel = 200_000;
    })
    .await;
    let ch = channel(&node).await;
    let mut txs = TxServiceClient::new(ch.clone());
    let key = dev_account_key(1);
    let deploy = sign(
        &quorate_proto::tx::body(
            "quorate-dev",
            &key,
            0,
            5_000_000,
            tx_body::Payload::Deploy(Deploy {
                code: Bytes::from(wat::parse_str(SPIN).expect("wat")),
                ..Deploy::default()
            }),
        ),
        &key,
    );
    let status = submit_and_wait(&mut txs, deploy).await;
    let receipt = status.receipt.expect("committed");
    assert_eq!(
        receipt.status,
        ExecStatus::Success as i32,
        "{}",
        receipt.error
    );
    let contract = receipt.contract_address;

    let mut contracts = ContractServiceClient::new(ch.clone());
    let out = contracts
        .query(QueryRequest {
            contract,
            method: "spin".into(),
            fuel_limit: u64::MAX,
            ..QueryRequest::default()
        })
        .await
        .expect("query")
        .into_inner();
    assert_eq!(out.status, ExecStatus::OutOfFuel as i32);
    assert!(
        out.fuel_used <= 200_000,
        "a query used {} fuel past grpc.max_query_fuel",
        out.fuel_used
    );

    let mut chain = ChainServiceClient::new(ch.clone());
    let open = chain
        .stream_blocks(StreamBlocksRequest::default())
        .await
        .expect("first stream");
    let refused = chain
        .stream_blocks(StreamBlocksRequest::default())
        .await
        .expect_err("a second stream is over grpc.max_streams");
    assert_eq!(refused.code(), tonic::Code::ResourceExhausted);
    // Closing the stream frees its place (its task notices at the next block, or at once).
    drop(open);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        match chain.stream_blocks(StreamBlocksRequest::default()).await {
            Ok(_) => break,
            Err(e) => {
                assert_eq!(e.code(), tonic::Code::ResourceExhausted);
                assert!(
                    tokio::time::Instant::now() < deadline,
                    "the place never came back"
                );
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
    node.stop().await.expect("clean stop");
}

/// One HTTP GET of `/metrics` on `addr`; the body.
async fn scrape(addr: std::net::SocketAddr) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = tokio::net::TcpStream::connect(addr).await.expect("connect");
    s.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .await
        .expect("request");
    let mut out = Vec::new();
    s.read_to_end(&mut out).await.expect("response");
    let text = String::from_utf8(out).expect("utf-8");
    assert!(text.starts_with("HTTP/1.1 200"), "{text}");
    text.split_once("\r\n\r\n").expect("body").1.to_owned()
}

/// The `# TYPE` of each metric family and the value of each sample, from the text format.
fn parse_metrics(
    body: &str,
) -> (
    std::collections::HashMap<String, String>,
    Vec<(String, f64)>,
) {
    let mut types = std::collections::HashMap::new();
    let mut samples = Vec::new();
    for line in body.lines() {
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (name, ty) = rest.split_once(' ').expect("name and type");
            types.insert(name.to_owned(), ty.to_owned());
        } else if !line.starts_with('#') && !line.is_empty() {
            let (name, value) = line.rsplit_once(' ').expect("sample");
            samples.push((name.to_owned(), value.parse().expect("number")));
        }
    }
    (types, samples)
}

fn sample(samples: &[(String, f64)], name: &str) -> f64 {
    samples
        .iter()
        .filter(|(n, _)| n == name || n.starts_with(&format!("{name}{{")))
        .map(|(_, v)| v)
        .sum()
}

/// Issue 16: metrics scraped from a running node parse, carry the documented names and types,
/// and move after a transfer.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_are_scraped_and_move_after_a_transfer() {
    let dir = tempfile::tempdir().expect("tempdir");
    let node = start_with(dir.path(), |c| {
        c.metrics.addr = Some("127.0.0.1:0".parse().expect("addr"));
    })
    .await;
    let addr = node.metrics_addr.expect("metrics on");
    let (types, before) = parse_metrics(&scrape(addr).await);
    for (name, ty) in [
        ("quorate_consensus_height", "gauge"),
        ("quorate_consensus_round", "gauge"),
        ("quorate_consensus_step", "gauge"),
        ("quorate_block_interval_seconds", "histogram"),
        ("quorate_block_commit_seconds", "histogram"),
        ("quorate_transactions_admitted", "counter"),
        ("quorate_transactions_refused", "counter"),
        ("quorate_transactions_committed", "counter"),
        ("quorate_transactions_failed", "counter"),
        ("quorate_mempool_transactions", "gauge"),
        ("quorate_mempool_bytes", "gauge"),
        ("quorate_signature_batch_size", "histogram"),
        ("quorate_signature_batch_verify_seconds", "histogram"),
        ("quorate_p2p_peers", "gauge"),
        ("quorate_p2p_bytes", "counter"),
        ("quorate_rocksdb_sst_bytes", "gauge"),
        ("quorate_rocksdb_write_stopped", "gauge"),
        ("quorate_contract_calls", "counter"),
        ("quorate_contract_fuel", "counter"),
        ("quorate_contract_compiles", "counter"),
        ("quorate_contract_artifact_loads", "counter"),
        ("quorate_grpc_requests", "counter"),
        ("quorate_grpc_request_seconds", "histogram"),
    ] {
        assert_eq!(types.get(name).map(String::as_str), Some(ty), "{name}");
    }
    let committed_before = sample(&before, "quorate_transactions_committed_total");
    let mut txs = TxServiceClient::new(channel(&node).await);
    let tx = transfer(&dev_account_key(2), &dev_account_key(3), 11, 0);
    let status = submit_and_wait(&mut txs, tx).await;
    assert_eq!(status.state, TxState::Committed as i32);
    let (_, after) = parse_metrics(&scrape(addr).await);
    assert!(sample(&after, "quorate_transactions_committed_total") >= committed_before + 1.0);
    assert!(sample(&after, "quorate_transactions_admitted_total") >= 1.0);
    assert!(
        sample(&after, "quorate_consensus_height") > sample(&before, "quorate_consensus_height")
    );
    assert!(sample(&after, "quorate_blocks_committed_total") >= 1.0);
    assert!(
        sample(&after, "quorate_grpc_requests_total") >= 2.0,
        "Submit and WaitForCommit are counted"
    );
    assert!(sample(&after, "quorate_signature_batch_size_count") >= 1.0);
    node.stop().await.expect("clean stop");
}
