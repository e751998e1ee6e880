//! A contract made from the template with `quorate contract new`, built with `quorate
//! contract build` (cargo, wasm32), deployed to a real `quorate dev` process, then called and
//! queried from the CLI and over gRPC; its events arrive on the event stream; refusals come
//! back typed; a restart keeps it callable.

mod common;

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use bytes::Bytes;
use prost::Message;
use quorate_genesis::dev_account_key;
use quorate_proto::tx::{body, sign};
use quorate_proto::v1::contract_service_client::ContractServiceClient;
use quorate_proto::v1::tx_body::Payload;
use quorate_proto::v1::tx_service_client::TxServiceClient;
use quorate_proto::v1::{
    Call, ExecStatus, GetContractRequest, QueryRequest, StreamEventsRequest, SubmitRequest,
    TxState, WaitForCommitRequest,
};

use common::{bin, DevNode};

/// The template's result message.
#[derive(Clone, PartialEq, Message)]
struct CounterValue {
    #[prost(uint64, tag = "1")]
    value: u64,
}

/// The template's increment arguments.
#[derive(Clone, PartialEq, Message)]
struct IncrementArgs {
    #[prost(uint64, tag = "1")]
    by: u64,
}

fn quorate(args: &[&str]) -> (i32, String) {
    let out = Command::new(bin())
        .args(args)
        .output()
        .expect("run quorate");
    (
        out.status.code().unwrap_or(-1),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

/// `contract new` + `contract build`; returns the wasm path.
fn build_template(dir: &Path) -> String {
    let crate_dir = dir.join("demo");
    let (code, out) = quorate(&[
        "contract",
        "new",
        "demo",
        "--dir",
        &crate_dir.display().to_string(),
    ]);
    assert_eq!(code, 0, "contract new: {out}");
    let (code, out) = quorate(&[
        "contract",
        "build",
        &crate_dir.display().to_string(),
        "--json",
    ]);
    assert_eq!(code, 0, "contract build: {out}");
    let line = out
        .lines()
        .rev()
        .find(|l| l.starts_with('{'))
        .unwrap_or_else(|| panic!("no JSON from build: {out}"));
    let v: serde_json::Value = serde_json::from_str(line).expect("json");
    assert_eq!(v["init"], true);
    assert_eq!(v["interface"], true);
    v["wasm"].as_str().expect("wasm path").to_owned()
}

#[test]
fn template_contract_deploys_calls_queries_and_streams_events() {
    let dir = tempfile::tempdir().expect("tempdir");
    let wasm = build_template(dir.path());
    let home = dir.path().join("dev");
    let node = DevNode::start(&home);
    let dev1 = node.key(1).display().to_string();
    let dev3 = node.key(3).display().to_string();

    // Deploy from the CLI, with init arguments as JSON through the embedded interface.
    let (code, v) = node.cli_json(&[
        "contract",
        "deploy",
        &wasm,
        "--from",
        &dev1,
        "--init",
        r#"{"start": 10}"#,
    ]);
    assert_eq!(code, 0, "{v}");
    assert_eq!(v["receipt"]["status"], "SUCCESS", "{v}");
    let contract = v["receipt"]["contract_address"]
        .as_str()
        .expect("address")
        .to_owned();

    // Call and query from the CLI.
    let (code, v) = node.cli_json(&[
        "contract",
        "call",
        &contract,
        "increment",
        r#"{"by": 5}"#,
        "--from",
        &dev1,
    ]);
    assert_eq!(code, 0, "{v}");
    assert_eq!(v["receipt"]["return"]["value"], "15");
    assert_eq!(v["receipt"]["events"][0]["kind"], "incremented");
    assert_eq!(v["receipt"]["events"][0]["decoded"]["value"], "15");
    let (code, v) = node.cli_json(&["contract", "query", &contract, "get"]);
    assert_eq!(code, 0, "{v}");
    assert_eq!(v["return"]["value"], "15");

    // Refusals and failures, each with its own code.
    let (code, v) = node.cli_json(&[
        "contract",
        "call",
        &contract,
        "increment",
        r#"{"by": 5000}"#,
        "--from",
        &dev1,
    ]);
    assert_eq!(
        (code, v["receipt"]["status"].as_str()),
        (3, Some("BAD_INPUT")),
        "{v}"
    );
    let (code, v) = node.cli_json(&["contract", "call", &contract, "reset", "--from", &dev3]);
    assert_eq!(
        (code, v["receipt"]["status"].as_str()),
        (3, Some("PERMISSION_DENIED")),
        "{v}"
    );
    let (code, v) = node.cli_json(&[
        "contract",
        "deploy",
        &wasm,
        "--from",
        &dev3,
        "--precompiled",
    ]);
    assert_eq!(
        (code, v["rejection"]["code"].as_str()),
        (2, Some("NOT_TRUSTED")),
        "{v}"
    );
    // The trusted deployer (dev-0) deploys machine code built by the chain's engine, which
    // the dev genesis names; after the restart below it still runs (ADR 0010).
    let dev0 = node.key(0).display().to_string();
    let (code, v) = node.cli_json(&[
        "contract",
        "deploy",
        &wasm,
        "--from",
        &dev0,
        "--precompiled",
        "--init",
        r#"{"start": 100}"#,
    ]);
    assert_eq!(code, 0, "{v}");
    assert_eq!(v["receipt"]["status"], "SUCCESS", "{v}");
    let precompiled = v["receipt"]["contract_address"]
        .as_str()
        .expect("address")
        .to_owned();
    let genesis: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(home.join("genesis.json")).expect("genesis"))
            .expect("json");
    let (_, status) = node.cli_json(&["status"]);
    assert_eq!(
        genesis["engine_fingerprint"], status["engine_fingerprint"],
        "the node runs the chain's engine: {status}"
    );
    let garbage = dir.path().join("garbage.wasm");
    std::fs::write(&garbage, b"\0asm\x01\0\0\0not really").expect("write");
    let (code, _) = node.cli(&[
        "contract",
        "deploy",
        &garbage.display().to_string(),
        "--from",
        &dev3,
    ]);
    assert_eq!(code, 1, "the CLI checks the module before sending it");

    // Over gRPC: query, a signed call, contract info and the event stream.
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    rt.block_on(async {
        let channel = node.channel().await;
        let addr = Bytes::from(hex::decode(&contract).expect("hex"));
        let mut contracts = ContractServiceClient::new(channel.clone());
        let info = contracts
            .get_contract(GetContractRequest {
                address: addr.clone(),
            })
            .await
            .expect("info")
            .into_inner();
        assert_eq!(info.methods, vec!["get", "increment", "reset"]);
        assert!(!info.interface.is_empty());

        let key = dev_account_key(2);
        let call = sign(
            &body(
                "quorate-dev",
                &key,
                0,
                1_000_000,
                Payload::Call(Call {
                    contract: addr.clone(),
                    method: "increment".into(),
                    args: Bytes::from(IncrementArgs { by: 7 }.encode_to_vec()),
                    value: 0,
                }),
            ),
            &key,
        );
        let mut txs = TxServiceClient::new(channel.clone());
        let submitted = txs
            .submit(SubmitRequest {
                transaction: Some(call),
            })
            .await
            .expect("submit")
            .into_inner();
        assert!(submitted.rejection.is_none(), "{:?}", submitted.rejection);
        let status = txs
            .wait_for_commit(WaitForCommitRequest {
                tx_hash: submitted.tx_hash,
                timeout_ms: 60_000,
            })
            .await
            .expect("wait")
            .into_inner();
        assert_eq!(status.state, TxState::Committed as i32);
        let receipt = status.receipt.expect("receipt");
        assert_eq!(
            receipt.status,
            ExecStatus::Success as i32,
            "{}",
            receipt.error
        );
        assert_eq!(
            CounterValue::decode(receipt.return_data)
                .expect("decode")
                .value,
            22
        );

        let q = contracts
            .query(QueryRequest {
                contract: addr.clone(),
                method: "get".into(),
                ..QueryRequest::default()
            })
            .await
            .expect("query")
            .into_inner();
        assert_eq!(q.status, ExecStatus::Success as i32, "{}", q.error);
        assert_eq!(
            CounterValue::decode(q.return_data).expect("decode").value,
            22
        );
        // A query may not write.
        let q = contracts
            .query(QueryRequest {
                contract: addr.clone(),
                method: "increment".into(),
                args: Bytes::from(IncrementArgs { by: 1 }.encode_to_vec()),
                ..QueryRequest::default()
            })
            .await
            .expect("query")
            .into_inner();
        assert_eq!(q.status, ExecStatus::PermissionDenied as i32);

        // Both successful increments are on the stream, in order, filtered to this contract.
        let mut stream = contracts
            .stream_events(StreamEventsRequest {
                from_height: 1,
                contract: addr.clone(),
                kind: "incremented".into(),
            })
            .await
            .expect("stream")
            .into_inner();
        let mut values = Vec::new();
        while values.len() < 2 {
            let item = tokio::time::timeout(Duration::from_secs(60), stream.message())
                .await
                .expect("event in time")
                .expect("stream ok")
                .expect("stream open");
            let event = item.event.expect("event");
            assert_eq!(event.contract, addr);
            values.push(CounterValue::decode(event.data).expect("decode").value);
        }
        assert_eq!(values, vec![15, 22]);
    });

    // After a restart the contract is still there and callable.
    node.kill();
    let node = DevNode::start(&home);
    let (code, v) = node.cli_json(&["contract", "query", &contract, "get"]);
    assert_eq!(code, 0, "{v}");
    assert_eq!(v["return"]["value"], "22");
    let (code, v) = node.cli_json(&["contract", "query", &precompiled, "get"]);
    assert_eq!(code, 0, "{v}");
    assert_eq!(v["return"]["value"], "100");
}
