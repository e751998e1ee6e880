//! Issue 28 on real processes: four organisations, each on a host of its own (a network
//! namespace with its own address where the test may make them, else a directory and loopback
//! ports), make their keys and signed entries; an assembler who holds only the entries builds
//! a genesis governed by the four and refuses a tampered entry; each organisation checks the
//! result (the same hash for all); no secret exists outside its organisation's directory; the
//! four validators start from their own homes and commit together. Then the organisations
//! govern: a fifth organisation's validator is added only once three of four approved (two
//! approvals change nothing, an expired proposal cannot run), and it signs blocks.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::time::Duration;

use common::cluster::{path_str, wait_for};
use common::hosts::Hosts;
use serde_json::Value;

const ORGS: usize = 4;
const LIMIT: Duration = Duration::from_secs(120);

/// `quorate args` on `host` (`None`: the client host): exit code, stdout, stderr.
fn quorate_on(hosts: &Hosts, host: Option<usize>, args: &[&str]) -> (i32, String, String) {
    let out = hosts
        .quorate(host)
        .args(args)
        .output()
        .expect("run quorate");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// `quorate args --json` on `host`, which must succeed.
fn json_on(hosts: &Hosts, host: Option<usize>, args: &[&str]) -> Value {
    let mut all = args.to_vec();
    all.push("--json");
    let (code, out, err) = quorate_on(hosts, host, &all);
    assert_eq!(code, 0, "quorate {args:?}: {out}{err}");
    serde_json::from_str(out.trim()).expect("json")
}

/// Every file under `dir`.
fn files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).expect("read dir") {
        let path = entry.expect("entry").path();
        if path.is_dir() {
            out.extend(files(&path));
        } else {
            out.push(path);
        }
    }
    out
}

/// Validators started by the test, stopped when it ends however it ends.
struct Running(Vec<Child>);

impl Drop for Running {
    fn drop(&mut self) {
        for c in &mut self.0 {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

#[test]
fn four_organisations_make_a_chain_without_sharing_a_secret_and_govern_it_together() {
    // The fifth host is the organisation that joins later.
    let hosts = Hosts::new(ORGS + 1);
    let root = tempfile::tempdir().expect("tmp");
    let org = |i: usize| root.path().join(format!("org-{i}"));
    let assembler = root.path().join("assembler");
    std::fs::create_dir_all(&assembler).expect("assembler dir");
    let quorate = |args: &[&str]| quorate_on(&hosts, None, args);
    let json = |args: &[&str]| json_on(&hosts, None, args);

    // Each organisation, on its own host: keys and a signed entry.
    let mut entries = Vec::new();
    for i in 0..ORGS {
        let p2p = hosts.p2p(i);
        let made = json_on(
            &hosts,
            Some(i),
            &[
                "genesis",
                "entry",
                "--chain-id",
                "consortium",
                "--name",
                &format!("org-{i}"),
                "--dir",
                &path_str(&org(i)),
                "--p2p-addr",
                &p2p,
                "--accounts",
                "3",
            ],
        );
        assert!(made["member"].as_str().is_some_and(|m| m.len() == 40));
        assert!(made["p2p_address"]
            .as_str()
            .expect("addr")
            .contains("/p2p/"));
        // Only the entry leaves the host.
        let handed = assembler.join(format!("org-{i}.json"));
        std::fs::copy(org(i).join("entry.json"), &handed).expect("hand over");
        entries.push(handed);
    }

    // The assembler refuses an entry altered on the way (more funds for org-1).
    let tampered = assembler.join("tampered.json");
    let text = std::fs::read_to_string(&entries[1]).expect("entry");
    let mut value: serde_json::Value = serde_json::from_str(&text).expect("json");
    value["accounts"][0]["balance"] = serde_json::json!(999_999_999_999u64);
    std::fs::write(&tampered, value.to_string()).expect("write");
    let mut with_tampered = vec!["genesis", "assemble", "--chain-id", "consortium"];
    let entry_args: Vec<String> = [&entries[0], &tampered, &entries[2], &entries[3]]
        .iter()
        .map(|p| path_str(p))
        .collect();
    for e in &entry_args {
        with_tampered.extend(["--entry", e.as_str()]);
    }
    let bad_out = path_str(&assembler.join("bad-genesis.json"));
    with_tampered.extend(["--genesis-time-ms", "1", "--out", bad_out.as_str()]);
    let (code, out, err) = quorate(&with_tampered);
    assert_ne!(code, 0, "{out}");
    assert!(
        err.contains("entry \"org-1\": its signature does not verify"),
        "{err}"
    );
    assert!(!assembler.join("bad-genesis.json").exists());

    // The real entries, given in another order: the genesis, governed by the four (three
    // approvals for a set change, all four for the policy itself).
    let genesis = assembler.join("genesis.json");
    let mut assemble = vec!["genesis", "assemble", "--chain-id", "consortium"];
    let real: Vec<String> = entries.iter().rev().map(|p| path_str(p)).collect();
    for e in &real {
        assemble.extend(["--entry", e.as_str()]);
    }
    let genesis_s = path_str(&genesis);
    assemble.extend(["--genesis-time-ms", "1", "--out", genesis_s.as_str()]);
    assemble.extend(["--governance", "3", "--threshold", "policy=4"]);
    assemble.extend(["--proposal-lifetime", "40"]);
    let assembled = json(&assemble);
    let hash = assembled["genesis_hash"].as_str().expect("hash").to_owned();
    let peers: Vec<String> = assembled["peers"]
        .as_array()
        .expect("peers")
        .iter()
        .map(|p| p.as_str().expect("peer").to_owned())
        .collect();
    assert_eq!(peers.len(), ORGS);

    // Each organisation checks it against its own entry and the others', as handed round: the
    // same hash everywhere.
    // What the organisations agreed on, which each check holds the genesis to.
    let agreed = ["--governance", "3", "--threshold", "policy=4"];
    let check = |i: usize, genesis: &Path, terms: &[&str]| -> (i32, String, String) {
        let mut args = vec![
            "genesis".to_owned(),
            "check".to_owned(),
            "--genesis".to_owned(),
            path_str(genesis),
            "--entry".to_owned(),
            path_str(&org(i).join("entry.json")),
            "--json".to_owned(),
        ];
        for (j, e) in entries.iter().enumerate() {
            if j != i {
                args.extend(["--with".to_owned(), path_str(e)]);
            }
        }
        args.extend(terms.iter().map(|t| (*t).to_owned()));
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        quorate(&args)
    };
    for i in 0..ORGS {
        std::fs::copy(&genesis, org(i).join("genesis.json")).expect("copy genesis");
        let (code, out, err) = check(i, &org(i).join("genesis.json"), &agreed);
        assert_eq!(code, 0, "{out}{err}");
        let checked: serde_json::Value = serde_json::from_str(out.trim()).expect("json");
        assert_eq!(checked["genesis_hash"], hash.as_str());
        assert_eq!(
            checked["validator_index"], i,
            "validators in the order of names"
        );
        assert_eq!(checked["governance"]["validators"], 3);
        assert_eq!(
            checked["governance"]["members"][i]["name"],
            format!("org-{i}")
        );
    }
    // A genesis whose assembler moved funds is caught by the organisation it robbed.
    let mut robbed: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&genesis).expect("genesis")).expect("json");
    robbed["accounts"][0]["balance"] = serde_json::json!(1);
    let robbed_path = org(0).join("robbed-genesis.json");
    std::fs::write(&robbed_path, robbed.to_string()).expect("write");
    let (code, _, err) = check(0, &robbed_path, &[]);
    assert_ne!(code, 0);
    assert!(
        err.contains("does not hold entry \"org-0\" as signed"),
        "{err}"
    );
    // One with a validator of the assembler's own, handed to every organisation alike (the
    // same hash for all): each finds it is not what the entries give.
    let mut packed: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&genesis).expect("genesis")).expect("json");
    packed["validators"]
        .as_array_mut()
        .expect("validators")
        .push(serde_json::json!({"name": "zz-assembler", "public_key": "11".repeat(32)}));
    let packed_path = org(3).join("packed-genesis.json");
    std::fs::write(&packed_path, packed.to_string()).expect("write");
    let (code, _, err) = check(3, &packed_path, &[]);
    assert_ne!(code, 0);
    assert!(
        err.contains("not the one the entries give: its validators differ"),
        "{err}"
    );

    // An organisation that agreed on other terms finds the genesis is not what it agreed.
    let (code, _, err) = check(2, &org(2).join("genesis.json"), &["--governance", "2"]);
    assert_ne!(code, 0);
    assert!(err.contains("not the one agreed"), "{err}");
    // One that makes the assembler a member: each finds it too.
    let mut member: Value =
        serde_json::from_str(&std::fs::read_to_string(&genesis).expect("genesis")).expect("json");
    member["governance"]["members"]
        .as_array_mut()
        .expect("members")
        .push(serde_json::json!({"name": "zz-assembler", "address": "22".repeat(20)}));
    let member_path = org(1).join("member-genesis.json");
    std::fs::write(&member_path, member.to_string()).expect("write");
    let (code, _, err) = check(1, &member_path, &[]);
    assert_ne!(code, 0);
    assert!(err.contains("governance members differ"), "{err}");

    // No secret outside its organisation's directory: every secret seed made (a validator
    // key, a governance member and three accounts per organisation) appears in files under its
    // own organisation's directory only; the assembler's holds none.
    let seed_of = |file: &Path| -> Option<String> {
        let v: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(file).ok()?).ok()?;
        v["secret_key"].as_str().map(str::to_owned)
    };
    let all_files = files(root.path());
    let mut seeds = Vec::new();
    for i in 0..ORGS {
        for file in files(&org(i)) {
            if let Some(seed) = seed_of(&file) {
                seeds.push((i, seed));
            }
        }
    }
    assert_eq!(
        seeds.len(),
        ORGS * 5,
        "a validator key, a member and three accounts each"
    );
    for (i, seed) in &seeds {
        for file in &all_files {
            if std::fs::read_to_string(file)
                .unwrap_or_default()
                .contains(seed.as_str())
            {
                assert!(
                    file.starts_with(org(*i)),
                    "org-{i}'s secret is in {}",
                    file.display()
                );
            }
        }
    }

    // Each starts its validator from its own home on its own host, with the others as peers.
    let mut running = Running(Vec::new());
    let start = |running: &mut Running, i: usize, peers: &[String]| {
        let home = org(i).join("home");
        let mut init = vec![
            "node".to_owned(),
            "init".to_owned(),
            "--home".to_owned(),
            path_str(&home),
            "--genesis".to_owned(),
            path_str(&org(i).join("genesis.json")),
            "--key".to_owned(),
            path_str(&org(i).join("validator.key.json")),
            "--grpc-addr".to_owned(),
            hosts.grpc(i),
            "--p2p-addr".to_owned(),
            hosts.p2p(i),
        ];
        for p in peers {
            init.extend(["--peer".to_owned(), p.clone()]);
        }
        let init: Vec<&str> = init.iter().map(String::as_str).collect();
        let (code, out, err) = quorate_on(&hosts, Some(i), &init);
        assert_eq!(code, 0, "{out}{err}");
        let log = std::fs::File::create(org(i).join("node.log")).expect("log");
        running.0.push(
            hosts
                .quorate(Some(i))
                .args(["node", "run", "--home", &path_str(&home)])
                .env("QUORATE_CFG_BLOCK__EMPTY_INTERVAL_MS", "300")
                .stdout(Stdio::null())
                .stderr(log)
                .spawn()
                .expect("start"),
        );
    };
    for i in 0..ORGS {
        let others: Vec<String> = (0..ORGS)
            .filter(|&j| j != i)
            .map(|j| {
                peers
                    .iter()
                    .find(|p| p.starts_with(&hosts.p2p(j)))
                    .expect("peer")
                    .clone()
            })
            .collect();
        start(&mut running, i, &others);
    }
    let urls: Vec<String> = (0..=ORGS).map(|i| hosts.url(i)).collect();
    let height = |url: &str| -> Option<u64> {
        let (code, out, _) = quorate(&["status", "--node", url, "--json"]);
        (code == 0)
            .then(|| serde_json::from_str::<serde_json::Value>(out.trim()).ok())
            .flatten()
            .and_then(|v| v["height"].as_u64())
    };
    wait_for(LIMIT, "every organisation's validator at height 3", || {
        urls[..ORGS]
            .iter()
            .all(|u| height(u).is_some_and(|h| h >= 3))
            .then_some(())
    });
    let block_hash = |url: &str| {
        let (code, out, err) = quorate(&["block", "2", "--node", url, "--json"]);
        assert_eq!(code, 0, "{out}{err}");
        serde_json::from_str::<serde_json::Value>(out.trim()).expect("json")["hash"].clone()
    };
    let first = block_hash(&urls[0]);
    for u in &urls[1..ORGS] {
        assert_eq!(block_hash(u), first, "one chain");
    }
    let (code, out, _) = quorate(&["status", "--node", &urls[2], "--json"]);
    assert_eq!(code, 0);
    let status: serde_json::Value = serde_json::from_str(out.trim()).expect("json");
    assert_eq!(status["genesis_hash"], hash.as_str());

    // Governance: the chain holds the policy the genesis named, and no single admin.
    let gov = json(&["gov", "show", "--node", &urls[0]]);
    assert_eq!(gov["admin"], Value::Null);
    assert_eq!(
        gov["policy"]["members"].as_array().map(Vec::len),
        Some(ORGS)
    );
    assert_eq!(gov["policy"]["thresholds"]["validators"], 3);

    // A fifth organisation makes its validator key on its own host.
    std::fs::create_dir_all(org(ORGS)).expect("dir");
    std::fs::copy(&genesis, org(ORGS).join("genesis.json")).expect("copy genesis");
    let new_key = path_str(&org(ORGS).join("validator.key.json"));
    let made = json_on(&hosts, Some(ORGS), &["keys", "generate", "--out", &new_key]);
    let new_public = made["public_key"].as_str().expect("key").to_owned();

    // Each organisation acts through its own validator with its own member key.
    let member = |i: usize| path_str(&org(i).join("member.key.json"));
    let step = |i: usize, args: &[&str]| -> (i32, Value) {
        let mut all = args.to_vec();
        let from = member(i);
        all.extend(["--from", &from, "--node", &urls[i], "--json"]);
        let (code, out, err) = quorate_on(&hosts, Some(i), &all);
        let v = serde_json::from_str(out.trim()).unwrap_or_else(|e| panic!("{e}: {out}{err}"));
        (code, v)
    };
    // The sets to come as node `i` has them (read on the node that answered the step: it holds
    // that step's block).
    let scheduled = |i: usize| json(&["validators", "--node", &urls[i]])["scheduled"].clone();
    let (code, v) = step(
        0,
        &[
            "gov",
            "propose",
            "add-validator",
            &new_public,
            "--name",
            "org-4",
        ],
    );
    assert_eq!(code, 0, "{v}");
    let p = &v["proposal"];
    assert_eq!(
        (
            p["number"].as_u64(),
            p["kind"].as_str(),
            p["status"].as_str()
        ),
        (Some(1), Some("validators"), Some("OPEN"))
    );
    assert_eq!(
        (p["approvals"].as_u64(), p["threshold"].as_u64()),
        (Some(1), Some(3))
    );
    let (code, v) = step(1, &["gov", "approve", "1"]);
    assert_eq!(code, 0, "{v}");
    assert_eq!(v["proposal"]["status"], "OPEN", "two of three: {v}");
    assert_eq!(v["proposal"]["approvals"], 2);
    assert_eq!(scheduled(1), serde_json::json!([]), "no set change yet");

    // A proposal left to expire (removing org-3) cannot run, however many approve it late.
    let org3_key = serde_json::from_str::<Value>(
        &std::fs::read_to_string(org(3).join("entry.json")).expect("entry"),
    )
    .expect("json")["validator_key"]
        .as_str()
        .expect("key")
        .to_owned();
    let (code, v) = step(
        2,
        &[
            "gov",
            "propose",
            "--lifetime",
            "1",
            "remove-validator",
            &org3_key,
        ],
    );
    assert_eq!(code, 0, "{v}");
    assert_eq!(v["proposal"]["number"], 2);
    let open_until = v["proposal"]["open_until"].as_u64().expect("open_until");
    wait_for(LIMIT, "proposal 2's last height to pass", || {
        height(&urls[0])
            .is_some_and(|h| h > open_until + 1)
            .then_some(())
    });
    for i in [0, 3] {
        let (code, v) = step(i, &["gov", "approve", "2"]);
        assert_eq!(code, 3, "an execution failure: {v}");
        assert_eq!(v["receipt"]["status"], "BAD_INPUT", "{v}");
        let error = v["receipt"]["error"].as_str().unwrap_or_default();
        assert!(error.contains("proposal 2 expired"), "{v}");
    }
    let expired = json(&["gov", "proposal", "2", "--node", &urls[1]]);
    assert_eq!(expired["status"], "EXPIRED");
    assert_eq!(expired["approved_by"].as_array().map(Vec::len), Some(1));
    assert_eq!(scheduled(3), serde_json::json!([]), "nothing changed");

    // The third approval of proposal 1 adds org-4, in force validator_set_delay heights on.
    let (code, v) = step(2, &["gov", "approve", "1"]);
    assert_eq!(code, 0, "{v}");
    let p = &v["proposal"];
    assert_eq!(p["status"], "EXECUTED", "{v}");
    assert_eq!(p["outcome"], "SUCCESS");
    let approvers: Vec<&str> = p["approved_by"]
        .as_array()
        .expect("approvals")
        .iter()
        .map(|a| a["member"].as_str().expect("member"))
        .collect();
    let addresses: Vec<String> = (0..3)
        .map(|i| {
            json(&["keys", "show", &member(i)])["address"]
                .as_str()
                .expect("a")
                .to_owned()
        })
        .collect();
    assert_eq!(approvers, addresses, "who approved, in order");
    let next = scheduled(2);
    let from = next[0]["from_height"].as_u64().expect("a scheduled set");
    assert_eq!(
        next[0]["validators"].as_array().map(Vec::len),
        Some(ORGS + 1)
    );
    assert_eq!(
        next[0]["validators"][ORGS]["public_key"],
        new_public.as_str()
    );

    // Org-4 starts its validator on its host; once the set is in force, org-3 stops: of five
    // validators four must sign, so every block from then on carries org-4's signature.
    let all_peers: Vec<String> = peers.clone();
    start(&mut running, ORGS, &all_peers);
    wait_for(LIMIT, "org-4's validator past the set change", || {
        height(&urls[ORGS]).is_some_and(|h| h > from).then_some(())
    });
    running.0[3].kill().expect("stop org-3");
    let _ = running.0[3].wait();
    let stopped_at = height(&urls[0]).expect("height");
    // A block decided before the stop may still have been on its way to the head: from two on.
    wait_for(LIMIT, "four blocks without org-3", || {
        height(&urls[0])
            .is_some_and(|h| h >= stopped_at + 4)
            .then_some(())
    });
    for h in stopped_at + 2..=stopped_at + 4 {
        let block = json(&["block", &h.to_string(), "--node", &urls[0]]);
        let signers: Vec<u64> = block["certificate"]["signatures"]
            .as_array()
            .expect("signatures")
            .iter()
            .map(|s| s["validator_index"].as_u64().expect("index"))
            .collect();
        assert!(signers.contains(&4), "block {h} signed by {signers:?}");
        assert!(!signers.contains(&3), "block {h} signed by {signers:?}");
    }
    println!(
        "governance: org-4 added at height {from} after 3 of 4 approvals; blocks {}..={} signed without org-3 ({})",
        stopped_at + 2,
        stopped_at + 4,
        if hosts.isolated() { "network namespaces" } else { "loopback" }
    );

    // A block limit changed by governance (params: three of four): in force at the decided
    // height plus validator_set_delay on every validator still running.
    let running_urls: Vec<&String> = [0, 1, 2, ORGS].iter().map(|&i| &urls[i]).collect();
    let delay = json(&["status", "--node", &urls[0]])["params"]["validator_set_delay"]
        .as_u64()
        .expect("delay");
    let (code, v) = step(0, &["gov", "propose", "set-params", "block_max_txs=3"]);
    assert_eq!(code, 0, "{v}");
    let number = v["proposal"]["number"]
        .as_u64()
        .expect("number")
        .to_string();
    assert_eq!(v["proposal"]["kind"], "params");
    step(1, &["gov", "approve", &number]);
    let (code, v) = step(2, &["gov", "approve", &number]);
    assert_eq!(code, 0, "{v}");
    assert_eq!(v["proposal"]["status"], "EXECUTED", "{v}");
    let effective = v["proposal"]["executed_height"].as_u64().expect("executed") + delay;
    for u in &running_urls {
        wait_for(LIMIT, "the parameter change's height", || {
            height(u).is_some_and(|h| h >= effective).then_some(())
        });
        let status = json(&["status", "--node", u]);
        assert_eq!(status["params"]["block_max_txs"], 3, "{u}: {status}");
    }
    // Twelve transfers in one batch: from the decided height on no block holds more than 3.
    let keys = path_str(&org(0).join("keys"));
    let (code, out, err) = quorate(&[
        "bench",
        "--node",
        &urls[0],
        "--keys",
        &keys,
        "--txs",
        "12",
        "--senders",
        "2",
        "--clients",
        "1",
        "--batch",
        "12",
        "--timeout",
        "60s",
    ]);
    assert_eq!(code, 0, "{out}{err}");
    let top = height(&urls[0]).expect("height");
    for u in &running_urls {
        wait_for(LIMIT, "the batch's last block", || {
            height(u).is_some_and(|h| h >= top).then_some(())
        });
    }
    let mut with_txs = 0;
    for h in effective..=top {
        for u in &running_urls {
            let block = json(&["block", &h.to_string(), "--node", u]);
            let n = block["tx_hashes"].as_array().map_or(0, Vec::len);
            assert!(n <= 3, "block {h} on {u} holds {n} transactions");
            if *u == &urls[0] && n > 0 {
                with_txs += 1;
            }
        }
    }
    assert!(with_txs >= 4, "12 transactions in {with_txs} blocks");
}
