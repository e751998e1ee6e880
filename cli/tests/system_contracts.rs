//! The four system contracts deployed at genesis, driven through a real `quorate dev` process:
//! every call from the CLI (`quorate remittance|escrow|certs|device …`), some also over gRPC
//! with the typed messages of `quorate_proto::contracts`, and every refusal the contracts
//! promise: insufficient reserve coverage, confirmation by someone other than the creditor,
//! issuing by a non-authority, use of a revoked or expired certificate, granting by a
//! non-owner, a check after revocation or expiry. A refused call changes nothing.

mod common;

use std::time::{Duration, Instant};

use bytes::Bytes;
use prost::Message;
use quorate_genesis::system::{DEVICE_PERMISSIONS, REMITTANCE};
use quorate_proto::contracts::{device_permissions as dp, remittance as rm};
use quorate_proto::crypto::Address;
use quorate_proto::v1::contract_service_client::ContractServiceClient;
use quorate_proto::v1::{ExecStatus, QueryRequest};
use serde_json::Value;

use common::{dev_address, DevNode};

/// A dev node of its own, in a temporary home.
fn start() -> (tempfile::TempDir, DevNode) {
    let dir = tempfile::tempdir().expect("tempdir");
    let node = DevNode::start(&dir.path().join("dev"));
    (dir, node)
}

fn key(node: &DevNode, i: usize) -> String {
    node.key(i).display().to_string()
}

/// A command line's words (the tests use no argument with a space in it).
fn words(command: &str) -> Vec<&str> {
    command.split_whitespace().collect()
}

/// A transaction that must succeed; returns the whole JSON status.
fn ok_tx(node: &DevNode, command: &str) -> Value {
    let args = words(command);
    let (code, v) = node.cli_json(&args);
    assert_eq!(code, 0, "{args:?}: {v}");
    assert_eq!(v["receipt"]["status"], "SUCCESS", "{args:?}: {v}");
    v
}

/// A transaction that must commit and fail with `status`; returns the error text.
fn failed_tx(node: &DevNode, command: &str, status: &str) -> String {
    let args = words(command);
    let (code, v) = node.cli_json(&args);
    assert_eq!(code, 3, "{args:?} should fail: {v}");
    assert_eq!(v["receipt"]["status"], status, "{args:?}: {v}");
    v["receipt"]["error"].as_str().expect("error").to_owned()
}

/// A query that must succeed; returns the decoded result.
fn query(node: &DevNode, command: &str) -> Value {
    let args = words(command);
    let (code, v) = node.cli_json(&args);
    assert_eq!(code, 0, "{args:?}: {v}");
    assert_eq!(v["status"], "SUCCESS", "{args:?}: {v}");
    v["return"].clone()
}

fn balance(node: &DevNode, address: &str) -> u64 {
    let (code, v) = node.cli_json(&["account", address]);
    assert_eq!(code, 0, "{v}");
    v["balance"].as_u64().expect("balance")
}

fn hex0x(a: &str) -> String {
    format!("0x{a}")
}

/// Polls `probe` until it returns true (bounded: block time has to pass, not be fast).
fn eventually(what: &str, mut probe: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while !probe() {
        assert!(
            Instant::now() < deadline,
            "{what} did not happen within 60 s"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// A read-only query over gRPC with typed messages.
fn grpc_query<A: Message, R: Message + Default>(
    node: &DevNode,
    contract: &str,
    method: &str,
    args: &A,
) -> R {
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    rt.block_on(async {
        let channel = node.channel().await;
        let r = ContractServiceClient::new(channel)
            .query(QueryRequest {
                contract: Bytes::copy_from_slice(&Address::of_system_contract(contract).0),
                method: method.into(),
                args: Bytes::from(args.encode_to_vec()),
                ..QueryRequest::default()
            })
            .await
            .expect("query")
            .into_inner();
        assert_eq!(r.status, ExecStatus::Success as i32, "{}", r.error);
        R::decode(r.return_data).expect("decode")
    })
}

#[test]
fn remittance_needs_reserves_that_cover_the_amount() {
    let (_dir, node) = start();
    let (remitter, remittee) = (key(&node, 1), key(&node, 2));
    let (a1, a2) = (dev_address(1), dev_address(2));
    let contract = Address::of_system_contract(REMITTANCE).to_hex();

    // The status lists the system contracts at their fixed addresses.
    let (_, status) = node.cli_json(&["status"]);
    let listed: Vec<(&str, &str)> = status["system_contracts"]
        .as_array()
        .expect("system contracts")
        .iter()
        .map(|c| {
            (
                c["name"].as_str().unwrap_or(""),
                c["address"].as_str().unwrap_or(""),
            )
        })
        .collect();
    assert!(
        listed.contains(&(REMITTANCE, contract.as_str())),
        "{listed:?}"
    );
    assert_eq!(listed.len(), 4);

    let v = ok_tx(
        &node,
        &format!("remittance deposit payroll 1000 --from {remitter}"),
    );
    assert_eq!(v["receipt"]["return"]["balance"], "1000");
    assert_eq!(v["receipt"]["events"][0]["kind"], "deposited");
    ok_tx(
        &node,
        &format!("remittance deposit bonus 500 --from {remitter}"),
    );
    let r = query(&node, &format!("remittance reserves {a1}"));
    assert_eq!(r["total"], "1500", "{r}");
    assert_eq!(
        balance(&node, &contract),
        1500,
        "the contract holds the reserves"
    );

    // A deposit must carry tokens; an unknown entry cannot be withdrawn from or allocated.
    failed_tx(
        &node,
        &format!("remittance deposit payroll 0 --from {remitter}"),
        "BAD_INPUT",
    );
    failed_tx(
        &node,
        &format!("remittance withdraw travel 1 --from {remitter}"),
        "ABORTED",
    );

    // Allocations that do not cover the amount: refused, nothing moves.
    let before = balance(&node, &a2);
    let err = failed_tx(
        &node,
        &format!("remittance remit {a2} 1200 --alloc bonus=200 --from {remitter}"),
        "ABORTED",
    );
    assert!(err.contains("do not cover"), "{err}");
    // An allocation larger than its entry holds is refused too.
    failed_tx(
        &node,
        &format!(
            "remittance remit {a2} 1200 --alloc payroll=1000 --alloc bonus=600 --from {remitter}"
        ),
        "ABORTED",
    );
    failed_tx(
        &node,
        &format!("remittance remit {a2} 10 --alloc travel=10 --from {remitter}"),
        "ABORTED",
    );
    assert_eq!(
        query(&node, &format!("remittance reserves {a1}"))["total"],
        "1500"
    );
    assert_eq!(balance(&node, &a2), before);

    // Covered: the amount leaves the reserves (in allocation order) and reaches the remittee.
    let v = ok_tx(
        &node,
        &format!("remittance remit {remittee} 1200 --alloc payroll=1000 --alloc bonus=300 --memo salary --from {remitter}"),
    );
    let sent = &v["receipt"]["return"];
    // The id is the remit's place in the chain: height << 28 | index in its block << 8 | n.
    let id: u64 = sent["id"].as_str().expect("id").parse().expect("number");
    let height: u64 = v["height"].as_u64().expect("height");
    assert_eq!(id >> 28, height, "{v}");
    assert_eq!(id & 0xff, 0, "the transaction's first id");
    assert_eq!(sent["charged"][1]["amount"], "200", "{sent}");
    assert_eq!(balance(&node, &a2), before + 1200);
    assert_eq!(balance(&node, &contract), 300);
    let r = query(&node, &format!("remittance reserves {remitter}"));
    assert_eq!(r["total"], "300");
    assert_eq!(r["entries"][0]["name"], "bonus");

    // Withdraw, not past the entry.
    failed_tx(
        &node,
        &format!("remittance withdraw bonus 301 --from {remitter}"),
        "ABORTED",
    );
    ok_tx(
        &node,
        &format!("remittance withdraw bonus 100 --from {remitter}"),
    );

    // Queries: one remittance, each side's history; the same over gRPC with typed messages.
    assert_eq!(
        query(&node, &format!("remittance show {id}"))["memo"],
        "salary"
    );
    let h = query(&node, &format!("remittance history {a2}"));
    assert_eq!(h["total"], "1");
    assert_eq!(h["remittances"][0]["remitter"], hex0x(&a1));
    assert_eq!(
        query(&node, &format!("remittance history {a1}"))["total"],
        "1"
    );
    let list: rm::ReserveList = grpc_query(
        &node,
        REMITTANCE,
        "reserves",
        &rm::ReservesArgs {
            owner: Bytes::from(hex::decode(&a1).expect("hex")),
        },
    );
    assert_eq!(list.total, 200);
    assert_eq!(list.entries[0].name, "bonus");
}

#[test]
fn credit_certificates_move_through_escrow_only_with_the_creditor() {
    let (_dir, node) = start();
    let (issuer, debtor, creditor, other) =
        (key(&node, 0), key(&node, 1), key(&node, 2), key(&node, 3));

    failed_tx(
        &node,
        &format!("escrow issue {debtor} 5000 --maturity 1000 --from {issuer}"),
        "BAD_INPUT",
    );
    let v = ok_tx(
        &node,
        &format!("escrow issue {debtor} 5000 --maturity 365d --terms invoice-17 --from {issuer}"),
    );
    let c = &v["receipt"]["return"];
    assert_eq!(
        (c["id"].as_str(), c["state"].as_str()),
        (Some("1"), Some("HELD")),
        "{c}"
    );

    // Only the holder transfers; the certificate goes to the target of debtor and creditor.
    failed_tx(
        &node,
        &format!("escrow transfer 1 {creditor} --from {other}"),
        "PERMISSION_DENIED",
    );
    let target = query(&node, &format!("escrow target {debtor} {creditor}"))["address"].clone();
    let v = ok_tx(
        &node,
        &format!("escrow transfer 1 {creditor} --from {debtor}"),
    );
    let c = &v["receipt"]["return"];
    assert_eq!(c["state"], "IN_ESCROW");
    assert_eq!(c["holder"], target);

    // Confirmation by anyone but the creditor is refused and changes nothing.
    for who in [&other, &debtor, &issuer] {
        let err = failed_tx(
            &node,
            &format!("escrow confirm 1 --from {who}"),
            "PERMISSION_DENIED",
        );
        assert!(err.contains("creditor"), "{err}");
    }
    assert_eq!(query(&node, "escrow show 1")["state"], "IN_ESCROW");
    // Before the deadline the debtor cannot reclaim it.
    failed_tx(
        &node,
        &format!("escrow reclaim 1 --from {debtor}"),
        "ABORTED",
    );
    let v = ok_tx(&node, &format!("escrow confirm 1 --from {creditor}"));
    let c = &v["receipt"]["return"];
    assert_eq!(c["state"], "HELD");
    assert_eq!(c["holder"], hex0x(&dev_address(2)));
    failed_tx(
        &node,
        &format!("escrow confirm 1 --from {creditor}"),
        "ABORTED",
    );

    // Return: one transaction from the escrow's 2-of-2 address, which both the debtor (the
    // creditor above, debtor of a new transfer) and the creditor (other) sign.
    ok_tx(
        &node,
        &format!("escrow transfer 1 {other} --from {creditor}"),
    );
    let target = query(&node, &format!("escrow target {creditor} {other}"))["address"]
        .as_str()
        .expect("address")
        .trim_start_matches("0x")
        .to_owned();
    // It is the address `quorate keys multisig` derives for the two keys, 2 of 2.
    let out = std::process::Command::new(common::bin())
        .args([
            "keys", "multisig", "--member", &creditor, "--member", &other,
        ])
        .args(["--threshold", "2", "--json"])
        .output()
        .expect("keys multisig");
    let derived: Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(derived["address"].as_str(), Some(target.as_str()));
    // It pays its fee: fund it.
    ok_tx(
        &node,
        &format!("tx transfer --from {issuer} --to {target} --amount 20000000 --wait"),
    );
    // One signature is not the escrow address's: refused at admission, nothing changes.
    let alone = format!("escrow return 1 --debtor {creditor} --creditor {other} --from {creditor}");
    let (code, v) = node.cli_json(&words(&alone));
    assert_eq!(code, 2, "{v}");
    assert_eq!(v["rejection"]["code"], "INSUFFICIENT_WEIGHT", "{v}");
    assert_eq!(query(&node, "escrow show 1")["state"], "IN_ESCROW");
    // Both sign one transaction: back to the debtor.
    let v = ok_tx(
        &node,
        &format!(
            "escrow return 1 --debtor {creditor} --creditor {other} --from {creditor} --cosign {other}"
        ),
    );
    assert_eq!(v["receipt"]["return"]["state"], "HELD");
    assert_eq!(v["receipt"]["return"]["holder"], hex0x(&dev_address(2)));

    // Return after the deadline: only the debtor reclaims, once block time passed it.
    ok_tx(
        &node,
        &format!("escrow transfer 1 {other} --deadline 2s --from {creditor}"),
    );
    let deadline: u64 = query(&node, "escrow show 1")["escrow_deadline_ms"]
        .as_str()
        .and_then(|s| s.parse().ok())
        .expect("deadline");
    eventually("block time past the deadline", || {
        let (_, s) = node.cli_json(&["status"]);
        s["latest_block_time_ms"].as_u64().unwrap_or(0) > deadline
    });
    failed_tx(
        &node,
        &format!("escrow reclaim 1 --from {other}"),
        "PERMISSION_DENIED",
    );
    let v = ok_tx(&node, &format!("escrow reclaim 1 --from {creditor}"));
    assert_eq!(v["receipt"]["return"]["state"], "HELD");

    // Every step is in the certificate's history.
    let c = query(&node, "escrow show 1");
    let actions: Vec<&str> = c["history"]
        .as_array()
        .expect("history")
        .iter()
        .filter_map(|h| h["action"].as_str())
        .collect();
    assert_eq!(
        actions,
        [
            "issued",
            "escrowed",
            "confirmed",
            "escrowed",
            "returned",
            "escrowed",
            "reclaimed"
        ]
    );
    let (code, v) = node.cli_json(&["escrow", "show", "7"]);
    assert_eq!((code, v["status"].as_str()), (3, Some("BAD_INPUT")), "{v}");
}

/// Issue 25 (low): the escrow took only the key an account's address was derived from, so a
/// creditor whose key rotated could not be paid through it. Its current key now stands for it;
/// the retired one is refused.
#[test]
fn an_escrow_creditor_whose_key_rotated_is_named_by_its_current_key() {
    let (dir, node) = start();
    let (issuer, debtor, creditor) = (key(&node, 0), key(&node, 1), key(&node, 3));
    let rotated = dir.path().join("rotated.json").display().to_string();
    let out = std::process::Command::new(common::bin())
        .args(["keys", "generate", "--out", &rotated])
        .output()
        .expect("keys generate");
    assert!(out.status.success(), "{out:?}");
    let creditor_account = dev_address(3);
    ok_tx(
        &node,
        &format!("account add-key {rotated} --from {creditor}"),
    );
    ok_tx(
        &node,
        &format!("account remove-key {creditor} --from {rotated} --account {creditor_account}"),
    );
    ok_tx(
        &node,
        &format!("escrow issue {debtor} 5000 --maturity 365d --from {issuer}"),
    );
    let err = failed_tx(
        &node,
        &format!("escrow transfer 1 {creditor} --from {debtor}"),
        "BAD_INPUT",
    );
    assert!(err.contains("creditor_key"), "{err}");
    let v = ok_tx(
        &node,
        &format!(
            "escrow transfer 1 {rotated} --creditor-account {creditor_account} --from {debtor}"
        ),
    );
    assert_eq!(v["receipt"]["return"]["state"], "IN_ESCROW", "{v}");
    let v = ok_tx(
        &node,
        &format!("escrow confirm 1 --from {rotated} --account {creditor_account}"),
    );
    assert_eq!(v["receipt"]["return"]["holder"], hex0x(&creditor_account));
}

#[test]
fn certificates_are_issued_by_authorities_and_refused_once_revoked_or_expired() {
    let (dir, node) = start();
    let (admin, ca, subject, outsider) =
        (key(&node, 0), key(&node, 1), key(&node, 2), key(&node, 3));
    let a = query(&node, "certs authorities");
    assert_eq!(a["admin"], hex0x(&dev_address(0)));

    // Roles: only the admin names authorities; only authorities create specifications.
    failed_tx(
        &node,
        &format!("certs create-spec degree --validity 365d --from {ca}"),
        "PERMISSION_DENIED",
    );
    failed_tx(
        &node,
        &format!("certs add-authority {ca} --from {outsider}"),
        "PERMISSION_DENIED",
    );
    ok_tx(&node, &format!("certs add-authority {ca} --from {admin}"));
    let v = ok_tx(
        &node,
        &format!("certs create-spec degree --schema degree/v1 --validity 365d --from {ca}"),
    );
    assert_eq!(v["receipt"]["return"]["id"], "1");
    ok_tx(
        &node,
        &format!("certs create-spec day-pass --validity 1s --from {ca}"),
    );

    // A batch of 2,000 in one transaction: the first two to `subject`, the rest to others.
    let file = dir.path().join("batch.csv");
    let mut lines = vec![
        format!("{},BSc physics", dev_address(2)),
        format!("{},MSc physics", dev_address(2)),
    ];
    lines.extend((2..2000u32).map(|i| format!("{:040x},graduate {i}", u64::from(i) + 1)));
    std::fs::write(&file, lines.join("\n")).expect("write batch");
    let file = file.display().to_string();
    let v = ok_tx(
        &node,
        &format!("certs issue 1 --file {file} --fuel-limit 100000000 --from {ca}"),
    );
    let batch = &v["receipt"]["return"];
    assert_eq!(
        (batch["first_id"].as_str(), batch["count"].as_u64()),
        (Some("1"), Some(2000))
    );
    assert!(v["receipt"]["fuel_used"].as_u64().expect("fuel") < 100_000_000);

    // Issuing by a non-authority, or by an authority against another's specification.
    let err = failed_tx(
        &node,
        &format!("certs issue 1 --subject {subject} --from {outsider}"),
        "PERMISSION_DENIED",
    );
    assert!(err.contains("authority"), "{err}");
    failed_tx(
        &node,
        &format!("certs issue 1 --subject {subject} --from {admin}"),
        "PERMISSION_DENIED",
    );
    assert_eq!(query(&node, "certs spec 1")["issued"], "2000");

    // Verify by id: valid, unknown.
    let v = query(&node, "certs verify 1");
    assert_eq!(v["validity"], "VALID");
    assert_eq!(v["certificate"]["data"], hex0x(&hex::encode("BSc physics")));
    assert_eq!(query(&node, "certs verify 2001")["validity"], "UNKNOWN");

    // Presenting: the subject only.
    failed_tx(
        &node,
        &format!("certs present 1 --from {outsider}"),
        "PERMISSION_DENIED",
    );
    ok_tx(
        &node,
        &format!("certs present 1 --purpose job --from {subject}"),
    );

    // Revocation: the issuer only; a revoked certificate cannot be used.
    failed_tx(
        &node,
        &format!("certs revoke 2 --from {admin}"),
        "PERMISSION_DENIED",
    );
    ok_tx(
        &node,
        &format!("certs revoke 2 --reason withdrawn --from {ca}"),
    );
    let v = query(&node, "certs verify 2");
    assert_eq!(v["validity"], "REVOKED");
    assert_eq!(v["certificate"]["revocation_reason"], "withdrawn");
    let err = failed_tx(
        &node,
        &format!("certs present 2 --from {subject}"),
        "ABORTED",
    );
    assert!(err.contains("revoked"), "{err}");
    failed_tx(&node, &format!("certs revoke 2 --from {ca}"), "ABORTED");
    assert_eq!(query(&node, "certs spec 1")["revoked"], "1");

    // Expiry: a day pass valid for one second; then it is expired and refused.
    let v = ok_tx(
        &node,
        &format!("certs issue 2 --subject {subject}:visitor --from {ca}"),
    );
    assert_eq!(v["receipt"]["return"]["first_id"], "2001");
    eventually("certificate 2001 expiring", || {
        query(&node, "certs verify 2001")["validity"] == "EXPIRED"
    });
    let err = failed_tx(
        &node,
        &format!("certs present 2001 --from {subject}"),
        "ABORTED",
    );
    assert!(err.contains("expired"), "{err}");

    // A removed authority issues no more; the admin role moves on.
    ok_tx(
        &node,
        &format!("certs remove-authority {ca} --from {admin}"),
    );
    failed_tx(
        &node,
        &format!("certs issue 1 --subject {subject} --from {ca}"),
        "PERMISSION_DENIED",
    );
    failed_tx(
        &node,
        &format!("certs set-admin {ca} --from {ca}"),
        "PERMISSION_DENIED",
    );
    ok_tx(&node, &format!("certs set-admin {outsider} --from {admin}"));
    assert_eq!(
        query(&node, "certs authorities")["admin"],
        hex0x(&dev_address(3))
    );
}

#[test]
fn device_permissions_are_granted_by_owners_and_controllers_and_end_on_revocation_or_expiry() {
    let (_dir, node) = start();
    let (owner, controller, participant, stranger) =
        (key(&node, 1), key(&node, 2), key(&node, 3), key(&node, 0));

    let v = ok_tx(&node, &format!("device register door-1 --from {owner}"));
    assert_eq!(v["receipt"]["return"]["owner"], hex0x(&dev_address(1)));
    failed_tx(
        &node,
        &format!("device register door-1 --from {stranger}"),
        "ABORTED",
    );

    // Granting by a non-owner; naming controllers is the owner's.
    let err = failed_tx(
        &node,
        &format!("device grant door-1 {participant} --scope unlock --from {stranger}"),
        "PERMISSION_DENIED",
    );
    assert!(err.contains("owner"), "{err}");
    failed_tx(
        &node,
        &format!("device add-controller door-1 {controller} --from {stranger}"),
        "PERMISSION_DENIED",
    );
    ok_tx(
        &node,
        &format!("device add-controller door-1 {controller} --from {owner}"),
    );
    failed_tx(
        &node,
        &format!("device grant door-9 {participant} --scope unlock --from {owner}"),
        "BAD_INPUT",
    );

    // A controller grants, recording data about itself.
    let v = ok_tx(
        &node,
        &format!("device grant door-1 {participant} --scope unlock,read --expires 1h --data landlord --from {controller}"),
    );
    let g = &v["receipt"]["return"];
    assert_eq!(g["id"], "1");
    assert_eq!(g["grantor"], hex0x(&dev_address(2)));
    assert_eq!(g["grantor_data"], hex0x(&hex::encode("landlord")));
    let c = query(&node, &format!("device check door-1 {participant} unlock"));
    assert_eq!(
        (c["allowed"].as_bool(), c["grant_id"].as_str()),
        (Some(true), Some("1"))
    );
    let c = query(&node, &format!("device check door-1 {participant} lock"));
    assert_eq!(c["allowed"], false, "outside the scope: {c}");
    let c = query(&node, &format!("device check door-1 {stranger} unlock"));
    assert_eq!(c["allowed"], false);
    // The same check over gRPC with typed messages.
    let r: dp::CheckResult = grpc_query(
        &node,
        DEVICE_PERMISSIONS,
        "check",
        &dp::CheckArgs {
            device: "door-1".into(),
            participant: Bytes::from(hex::decode(dev_address(3)).expect("hex")),
            action: "read".into(),
        },
    );
    assert!(r.allowed);
    assert_eq!(r.grant_id, 1);

    // Revocation must carry data corresponding to the grant, from someone entitled to it.
    let err = failed_tx(
        &node,
        &format!("device revoke 1 --data tenant --from {owner}"),
        "BAD_INPUT",
    );
    assert!(err.contains("correspond"), "{err}");
    failed_tx(
        &node,
        &format!("device revoke 1 --data landlord --from {participant}"),
        "PERMISSION_DENIED",
    );
    assert_eq!(
        query(&node, &format!("device check door-1 {participant} unlock"))["allowed"],
        true,
        "refused revocations change nothing"
    );
    ok_tx(
        &node,
        &format!("device revoke 1 --data landlord --from {owner}"),
    );
    let c = query(&node, &format!("device check door-1 {participant} unlock"));
    assert_eq!(c["allowed"], false);
    assert!(
        c["reason"].as_str().unwrap_or("").contains("revoked"),
        "{c}"
    );

    // A grant that expires: allowed until block time passes it, then not.
    let v = ok_tx(
        &node,
        &format!("device grant door-1 {participant} --scope * --expires 1s --from {owner}"),
    );
    assert_eq!(v["receipt"]["return"]["id"], "2");
    eventually("grant 2 expiring", || {
        query(&node, &format!("device check door-1 {participant} open"))["allowed"] == false
    });
    let c = query(&node, &format!("device check door-1 {participant} open"));
    assert!(
        c["reason"].as_str().unwrap_or("").contains("expired"),
        "{c}"
    );

    // A removed controller grants no more.
    ok_tx(
        &node,
        &format!("device remove-controller door-1 {controller} --from {owner}"),
    );
    failed_tx(
        &node,
        &format!("device grant door-1 {participant} --scope read --from {controller}"),
        "PERMISSION_DENIED",
    );

    // The device and its full history.
    let d = query(&node, "device show door-1");
    assert_eq!(d["controllers"].as_array().map(Vec::len), Some(0));
    let h = query(&node, "device history door-1");
    assert_eq!(h["total"], "3");
    let kinds: Vec<&str> = h["entries"]
        .as_array()
        .expect("entries")
        .iter()
        .filter_map(|e| e["kind"].as_str())
        .collect();
    assert_eq!(kinds, ["grant", "revoke", "grant"]);
    assert_eq!(
        h["entries"][1]["grant"]["revoke_data"],
        hex0x(&hex::encode("landlord"))
    );
}
