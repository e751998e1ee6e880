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

/// Runs `cmd`; returns (exit code, stdout, stderr).
fn output(cmd: &mut std::process::Command, what: &str) -> (i32, String, String) {
    let out = cmd.output().expect(what);
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Runs `quorate ARGS` with no node options added.
fn quorate(args: &[&str]) -> (i32, String, String) {
    output(
        std::process::Command::new(common::bin()).args(args),
        "run quorate",
    )
}

/// The TLS options of a client command.
fn tls<'a>(ca: &'a str, cert: &'a str, key: &'a str, node: &'a str) -> [&'a str; 8] {
    ["--ca", ca, "--cert", cert, "--key", key, "--node", node]
}

/// Runs the Python client example against `node` (host:port) with extra arguments.
fn python_status(node: &str, extra: &[&str]) -> (i32, String, String) {
    let script = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../clients/python/node_status.py"
    );
    output(
        std::process::Command::new(common::python())
            .arg(script)
            .args(["--node", node, "--timeout", "10"])
            .args(extra),
        "python with the quorate package (scripts/test.sh installs it)",
    )
}

#[test]
fn grpc_over_tls_and_mutual_tls_from_the_cli_and_python() {
    let dir = tempfile::tempdir().expect("tempdir");
    let home = dir.path().join("home");
    let certs = dir.path().join("tls");
    let other = dir.path().join("other-ca");
    let path = |p: &std::path::Path, f: &str| p.join(f).to_str().expect("utf8").to_owned();
    let home_s = home.to_str().expect("utf8");
    std::fs::create_dir_all(&home).expect("home");
    let (code, out, err) = quorate(&[
        "tls",
        "gen",
        "--out",
        &path(dir.path(), "tls"),
        "--hosts",
        "127.0.0.1,localhost",
        "--home",
        home_s,
        "--mutual",
    ]);
    assert_eq!(code, 0, "{out}{err}");
    let (code, _, err) = quorate(&["tls", "gen", "--out", &path(dir.path(), "other-ca")]);
    assert_eq!(code, 0, "{err}");
    let node = DevNode::start(&home);
    let addr = node.url.trim_start_matches("http://").to_owned();
    let https = format!("https://{addr}");
    let (ca, cert, key) = (
        path(&certs, "ca.pem"),
        path(&certs, "client.pem"),
        path(&certs, "client.key"),
    );

    // The CLI with the CA and a client certificate: status, then a transfer that commits.
    let mtls = tls(&ca, &cert, &key, &https);
    let (code, out, err) = quorate(&[&["status", "--json"][..], &mtls].concat());
    assert_eq!(code, 0, "{out}{err}");
    let status: serde_json::Value = serde_json::from_str(out.trim()).expect("json");
    assert_eq!(status["chain_id"], "quorate-dev");
    let k0 = node.key(0);
    let (code, out, err) = quorate(
        &[
            &[
                "tx",
                "transfer",
                "--from",
                k0.to_str().expect("utf8"),
                "--to",
                &dev_address(1),
                "--amount",
                "5",
                "--wait",
                "--json",
            ][..],
            &mtls,
        ]
        .concat(),
    );
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("COMMITTED"), "{out}");

    // Refused: plaintext, no client certificate, a server CA it does not know, a client
    // certificate from another CA.
    let refused = |args: &[&str], why: &str| {
        let (code, out, err) = quorate(&[&["status"][..], args].concat());
        assert_ne!(code, 0, "{why} was accepted: {out}");
        assert!(!out.contains("quorate-dev"), "{why}: {out}");
        err
    };
    // A client certificate signed by the same CA in a later `tls gen --ca-dir` is accepted.
    let second = dir.path().join("second");
    let (code, out, err) = quorate(&[
        "tls",
        "gen",
        "--out",
        second.to_str().expect("utf8"),
        "--ca-dir",
        certs.to_str().expect("utf8"),
    ]);
    assert_eq!(code, 0, "{out}{err}");
    let (ca2, cert2, key2) = (
        path(&second, "ca.pem"),
        path(&second, "client.pem"),
        path(&second, "client.key"),
    );
    let (code, out, err) = quorate(&[&["status"][..], &tls(&ca2, &cert2, &key2, &https)].concat());
    assert_eq!(code, 0, "{out}{err}");

    refused(&["--node", &format!("http://{addr}")], "plaintext");
    refused(&["--ca", &ca, "--node", &https], "no client certificate");
    let other_ca = path(&other, "ca.pem");
    let err = refused(&tls(&other_ca, &cert, &key, &https), "an unknown server CA");
    assert!(
        err.to_lowercase().contains("certificate") || err.contains("connect"),
        "{err}"
    );
    let (other_cert, other_key) = (path(&other, "client.pem"), path(&other, "client.key"));
    refused(
        &tls(&ca, &other_cert, &other_key, &https),
        "a client certificate of another CA",
    );
    // An https:// URL without a CA is a usage error, not an unverified connection.
    let err = refused(&["--node", &https], "https:// without --ca");
    assert!(err.contains("--ca"), "{err}");
    // TLS options with an http:// URL are a usage error, not a silent plaintext connection.
    let err = refused(
        &[
            "--ca",
            &ca,
            "--cert",
            &cert,
            "--key",
            &key,
            "--node",
            &format!("http://{addr}"),
        ],
        "TLS options on http://",
    );
    assert!(err.contains("https://"), "{err}");

    // A Python grpcio client with stubs generated from proto/: the same rules.
    let (code, out, err) = python_status(&addr, &["--ca", &ca, "--cert", &cert, "--key", &key]);
    assert_eq!(code, 0, "{out}{err}");
    let v: serde_json::Value = serde_json::from_str(out.trim()).expect("python json");
    assert_eq!(v["chain_id"], "quorate-dev");
    assert!(v["height"].as_u64().expect("height") >= 1);
    assert_eq!(v["health"], "SERVING");
    let (code, out, _) = python_status(&addr, &[]);
    assert_eq!(code, 2, "plaintext from Python was accepted: {out}");
    let (code, out, _) = python_status(&addr, &["--ca", &ca]);
    assert_eq!(
        code, 2,
        "Python without a client certificate was accepted: {out}"
    );
    let (code, out, _) = python_status(
        &addr,
        &[
            "--ca",
            &path(&other, "ca.pem"),
            "--cert",
            &cert,
            "--key",
            &key,
        ],
    );
    assert_eq!(code, 2, "Python trusting another CA was accepted: {out}");
}

/// Issue 17: a node that keeps only its last blocks (`storage.keep_blocks`) answers for a
/// pruned block with a clear refusal, reports where its blocks start, keeps the whole state,
/// and goes on pruning after a restart. It runs as an archive node first, so that the
/// transfer is looked up before any pruning can race the client.
#[test]
fn a_node_that_prunes_keeps_its_last_blocks_and_the_whole_state() {
    let dir = tempfile::tempdir().expect("tempdir");
    let fast = ("QUORATE_CFG_BLOCK__EMPTY_INTERVAL_MS", "20");
    let pruning = [("QUORATE_CFG_STORAGE__KEEP_BLOCKS", "64"), fast];
    let node = DevNode::start_with(dir.path(), &[fast]);
    let k0 = node.key(0);
    let k0 = k0.to_str().expect("utf8");
    let a1 = dev_address(1);
    let (_, before) = node.cli_json(&["account", &a1]);
    let (code, res) = node.cli_json(&[
        "tx", "transfer", "--from", k0, "--to", &a1, "--amount", "77", "--wait",
    ]);
    assert_eq!(code, 0, "{res}");
    let height = res["height"].as_u64().expect("height");
    let tx_hash = res["tx_hash"].as_str().expect("hash").to_owned();
    let status = |node: &DevNode| node.cli_json(&["status"]).1;
    let field = |s: &serde_json::Value, f: &str| s[f].as_u64().expect(f);
    // Waits (bounded) until `f` holds of the node's status; returns that status.
    let wait = |node: &DevNode, what: &str, f: &dyn Fn(&serde_json::Value) -> bool| {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
        loop {
            let s = status(node);
            if f(&s) {
                return s;
            }
            assert!(std::time::Instant::now() < deadline, "{what} not reached");
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
    };
    let s = wait(&node, "20 more blocks", &|s| {
        field(s, "height") >= height + 20
    });
    assert_eq!(
        field(&s, "lowest_block_height"),
        1,
        "an archive node keeps every block"
    );
    let home = node.home.clone();
    node.kill();

    let node = DevNode::start_with(&home, &pruning);
    // Pruning catches up at most 16 heights per commit: wait until it has.
    let s = wait(&node, "pruning past the transfer, caught up", &|s| {
        let lowest = field(s, "lowest_block_height");
        lowest > height + 5 && lowest + 64 >= field(s, "height")
    });
    let lowest = field(&s, "lowest_block_height");
    let out = std::process::Command::new(common::bin())
        .args(["block", &height.to_string(), "--node", &node.url])
        .output()
        .expect("run quorate");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        err.contains("is not held") && err.contains("keep_blocks"),
        "{err}"
    );
    let (code, _) = node.cli_json(&["block"]);
    assert_eq!(code, 0, "the latest block is served");
    let (code, _) = node.cli(&["tx", "status", &tx_hash]);
    assert_ne!(code, 0, "a pruned transaction is no longer served");
    let (_, after) = node.cli_json(&["account", &a1]);
    assert_eq!(
        after["balance"].as_u64(),
        Some(before["balance"].as_u64().expect("balance") + 77),
        "the state is whole"
    );

    node.kill();
    let node = DevNode::start_with(&home, &pruning);
    wait(&node, "pruning after the restart", &|s| {
        field(s, "lowest_block_height") > lowest
    });
}
