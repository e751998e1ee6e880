//! A wait for a hash the node does not hold: the node answers each `WaitForCommit` at once, and
//! the library must pause between asks, not spin until its timeout. Its own test binary, so
//! that the node's request counter (one per process) counts this test's calls alone.

use std::time::Duration;

use quorate_client::{ClientError, Node};
use quorate_genesis::{dev_genesis, dev_validator_key};
use quorate_node::config::NodeConfig;
use quorate_node::metrics::RpcLabel;
use quorate_node::node::{GenesisSource, NodeSetup, RunningNode};
use quorate_proto::crypto::Hash32;

fn wait_calls() -> u64 {
    quorate_node::metrics::get()
        .grpc_requests
        .get_or_create(&RpcLabel {
            method: "/quorate.v1.TxService/WaitForCommit".into(),
            code: "OK".into(),
        })
        .get()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wait_for_a_hash_the_node_does_not_hold_asks_a_few_times_not_thousands() {
    let dir = tempfile::tempdir().expect("tmp");
    let mut config = NodeConfig {
        grpc_addr: "127.0.0.1:0".parse().expect("addr"),
        ..NodeConfig::default()
    };
    config.storage.sync_writes = false;
    let running = RunningNode::start(NodeSetup {
        config,
        genesis: GenesisSource::Loaded(Box::new(dev_genesis())),
        key: dev_validator_key(),
        data_dir: dir.path().join("data"),
        byzantine: Default::default(),
    })
    .await
    .expect("node starts");
    let node = Node::connect(&format!("http://{}", running.grpc_addr), None)
        .await
        .expect("connect");
    let before = wait_calls();
    let e = node
        .wait(&Hash32([5; 32]), Duration::from_secs(2))
        .await
        .expect_err("nobody submitted it");
    assert!(matches!(e, ClientError::Unknown { .. }), "{e}");
    let calls = wait_calls() - before;
    // Pauses of 50, 100, 200, 400, 800 ms, then 1 s: about seven asks in 2 s.
    assert!((2..=12).contains(&calls), "{calls} calls in 2 s");
}
