//! `quorate dev` as a real process, driven by the CLI: transfers commit, balances change,
//! blocks show, and each kind of bad transaction is refused with its own reason and changes
//! nothing.

mod common;

use common::{dev_address, DevNode};

#[test]
fn transfers_commit_and_bad_transactions_are_refused_distinctly() {
    let dir = tempfile::tempdir().expect("tempdir");
    let node = DevNode::start(dir.path());
    let k0 = node.key(0);
    let k0 = k0.to_str().expect("utf8");
    let a1 = dev_address(1);

    let (_, before0) = node.cli_json(&["account", &dev_address(0)]);
    let (_, before1) = node.cli_json(&["account", &a1]);

    // A transfer commits and balances move.
    let (code, res) = node.cli_json(&[
        "tx", "transfer", "--from", k0, "--to", &a1, "--amount", "1234", "--wait",
    ]);
    assert_eq!(code, 0, "{res}");
    assert_eq!(res["state"], "COMMITTED");
    assert_eq!(res["receipt"]["status"], "SUCCESS");
    let fee = res["receipt"]["fee"].as_u64().expect("fee");
    let height = res["height"].as_u64().expect("height");
    let (_, after1) = node.cli_json(&["account", &a1]);
    assert_eq!(
        after1["balance"].as_u64(),
        Some(before1["balance"].as_u64().expect("b") + 1234)
    );

    // The block shows it, with a certificate.
    let (code, block) = node.cli_json(&["block", &height.to_string()]);
    assert_eq!(code, 0);
    assert_eq!(block["height"].as_u64(), Some(height));
    assert!(block["tx_hashes"]
        .as_array()
        .expect("hashes")
        .iter()
        .any(|h| *h == res["tx_hash"]));
    assert_eq!(
        block["certificate"]["signatures"]
            .as_array()
            .expect("sigs")
            .len(),
        1
    );
    let (code, latest) = node.cli(&["block"]);
    assert_eq!(code, 0);
    assert!(latest.contains("certified"), "{latest}");

    // Replay: save a signed transfer, submit it twice.
    let saved = dir.path().join("tx.hex");
    let saved = saved.to_str().expect("utf8");
    let (code, _) = node.cli(&[
        "tx",
        "transfer",
        "--from",
        k0,
        "--to",
        &a1,
        "--amount",
        "5",
        "--save",
        saved,
        "--save-only",
    ]);
    assert_eq!(code, 0);
    let (code, first) = node.cli_json(&["tx", "submit", saved, "--wait"]);
    assert_eq!(
        (code, &first["state"]),
        (0, &serde_json::json!("COMMITTED"))
    );
    let state_before = node.cli_json(&["account", &dev_address(0)]).1;

    // A 1-unit transfer from dev-0 to dev-1 with extra flags.
    let transfer = |extra: &[&'static str]| {
        let mut args = vec![
            "tx",
            "transfer",
            "--from",
            k0,
            "--to",
            a1.as_str(),
            "--amount",
            "1",
        ];
        args.extend_from_slice(extra);
        args
    };
    let mut overdraft = transfer(&[]);
    overdraft[7] = "999999999999999";
    let refusals: Vec<(&str, Vec<&str>)> = vec![
        ("NONCE_USED", vec!["tx", "submit", saved]),
        ("WRONG_CHAIN", transfer(&["--chain-id", "another-chain"])),
        ("BAD_SIGNATURE", transfer(&["--corrupt-signature"])),
        ("OVERSIZED", transfer(&["--memo-bytes", "140000"])),
        ("INSUFFICIENT_BALANCE", overdraft),
    ];
    let mut seen = std::collections::HashSet::new();
    for (expected, args) in &refusals {
        let (code, out) = node.cli_json(args);
        assert_eq!(code, 2, "{expected}: exit code 2 means refused; got {out}");
        assert_eq!(out["state"], "REJECTED", "{expected}: {out}");
        assert_eq!(out["rejection"]["code"], *expected, "{out}");
        assert!(!out["rejection"]["message"]
            .as_str()
            .expect("message")
            .is_empty());
        assert!(seen.insert(out["rejection"]["message"].as_str().expect("m").to_owned()));
    }
    // Nothing changed: balance and nonce of the sender, and the mempool is empty.
    let (_, after0) = node.cli_json(&["account", &dev_address(0)]);
    assert_eq!(after0, state_before);
    let (_, status) = node.cli_json(&["status"]);
    assert_eq!(status["mempool_txs"], 0);
    assert_eq!(status["chain_id"], "quorate-dev");
    assert_eq!(
        after0["balance"].as_u64().expect("b"),
        before0["balance"].as_u64().expect("b") - 1234 - 5 - 2 * fee
    );
}
