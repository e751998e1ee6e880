//! Four real validator processes on loopback: transfers submitted to any of them commit on
//! all with identical blocks and state roots; a killed validator does not stop the others and
//! catches up by block sync when restarted, or from another validator's snapshot when its data
//! is lost; killing the leader causes a round change; killing
//! two of four stops commits without any fork, and one coming back resumes them.

mod common;

use std::time::Duration;

use common::cluster::{path_str, wait_for, Cluster};

const LIMIT: Duration = Duration::from_secs(120);

/// Every validator in `which` holds the same block hash and state root at heights up to
/// `top`, from the lowest height all of them hold (one that joined from a snapshot holds no
/// blocks below it).
fn assert_same_chain(c: &Cluster, which: &[usize], top: u64) {
    assert_same_blocks(c, which, c.lowest_common_height(which), top);
}

/// Every validator in `which` holds the same block hash and state root at heights from..=top.
fn assert_same_blocks(c: &Cluster, which: &[usize], from: u64, top: u64) {
    for h in from..=top {
        let first = c
            .block_at(which[0], h)
            .unwrap_or_else(|| panic!("validator {} lacks height {h}", which[0]));
        for &i in &which[1..] {
            let other = c
                .block_at(i, h)
                .unwrap_or_else(|| panic!("validator {i} lacks height {h}"));
            assert_eq!(
                first, other,
                "validators {} and {i} differ at height {h}",
                which[0]
            );
        }
    }
}

fn address_of(c: &Cluster, account: usize) -> String {
    let out = std::process::Command::new(common::bin())
        .args(["keys", "show", "--json"])
        .arg(c.account_key(account))
        .output()
        .expect("keys show");
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    v["address"].as_str().expect("address").to_owned()
}

/// A counter without an interface: `inc` adds one, `get` returns the 8-byte value.
const COUNTER: &str = r#"(module
  (import "quorate" "scratch_read" (func $scratch_read (param i32)))
  (import "quorate" "set_return" (func $set_return (param i32 i32)))
  (import "quorate" "storage_get" (func $storage_get (param i32 i32) (result i32)))
  (import "quorate" "storage_set" (func $storage_set (param i32 i32 i32 i32)))
  (memory (export "memory") 1)
  (data (i32.const 0) "n")
  (func $load
    (if (i32.eq (call $storage_get (i32.const 0) (i32.const 1)) (i32.const 1))
      (then (call $scratch_read (i32.const 64)))))
  (func (export "inc")
    (call $load)
    (i64.store (i32.const 64) (i64.add (i64.load (i32.const 64)) (i64.const 1)))
    (call $storage_set (i32.const 0) (i32.const 1) (i32.const 64) (i32.const 8)))
  (func (export "get") (call $load) (call $set_return (i32.const 64) (i32.const 8)))
)"#;

/// Deploys the counter from `account` through validator `via`; returns its address.
fn deploy_counter(c: &Cluster, via: usize, account: usize) -> String {
    let wasm = c.dir.path().join("counter.wasm");
    std::fs::write(&wasm, wat::parse_str(COUNTER).expect("wat")).expect("write wasm");
    let key = path_str(&c.account_key(account));
    let v = c
        .json(
            via,
            &["contract", "deploy", &path_str(&wasm), "--from", &key],
        )
        .unwrap_or_else(|| panic!("deploy failed\n{}", c.log(via)));
    v["receipt"]["contract_address"]
        .as_str()
        .expect("contract address")
        .to_owned()
}

/// Sends a transfer from `account` through validator `via` and waits for its commit.
fn transfer(c: &Cluster, via: usize, account: usize, to: &str) {
    let key = path_str(&c.account_key(account));
    let (code, out) = c.cli(
        via,
        &[
            "tx", "transfer", "--from", &key, "--to", to, "--amount", "7", "--wait",
        ],
    );
    assert_eq!(code, 0, "transfer via {via} failed: {out}\n{}", c.log(via));
    assert!(out.contains("COMMITTED"), "{out}");
}

#[test]
fn four_validators_agree_survive_a_crash_and_a_leader_kill() {
    let mut c = Cluster::start(4);
    let sink = address_of(&c, 7);
    // Submitted to any node, committed on all.
    for via in 0..4 {
        transfer(&c, via, via, &sink);
    }
    let top = c.height(0).expect("height");
    c.wait_height(&[0, 1, 2, 3], top, LIMIT);
    assert_same_chain(&c, &[0, 1, 2, 3], top);
    let balance = c.json(3, &["account", &sink]).expect("account")["balance"]
        .as_u64()
        .expect("balance");
    assert_eq!(balance, 1_000_000_000_000 + 4 * 7);

    // A contract deployed through one validator and called through another executes the same
    // on all four (same receipts, same state root).
    let contract = deploy_counter(&c, 2, 5);
    let key = path_str(&c.account_key(6));
    let (code, out) = c.cli(
        1,
        &[
            "contract", "call", &contract, "inc", "--from", &key, "--json",
        ],
    );
    assert_eq!(code, 0, "call: {out}");
    let top = c.height(1).expect("height");
    c.wait_height(&[0, 1, 2, 3], top, LIMIT);
    assert_same_chain(&c, &[0, 1, 2, 3], top);
    for i in 0..4 {
        let q = c
            .json(i, &["contract", "query", &contract, "get"])
            .expect("query");
        assert_eq!(q["return_data"], "0100000000000000", "validator {i}: {q}");
    }

    // A 2-of-2 address of accounts 4 and 5 receives funds through validator 0 and spends them
    // with both signatures through validator 2: the co-signed transaction's leaf (hash bound
    // to its keys) fills compact proposals on all four, which agree.
    let set = path_str(&c.dir.path().join("pair.json"));
    let (k4, k5) = (path_str(&c.account_key(4)), path_str(&c.account_key(5)));
    let pair = c.local_json(&[
        "keys",
        "multisig",
        "--member",
        &k4,
        "--member",
        &k5,
        "--threshold",
        "2",
        "--out",
        &set,
    ])["address"]
        .as_str()
        .expect("address")
        .to_owned();
    let k6 = path_str(&c.account_key(6));
    let (code, out) = c.cli(
        0,
        &[
            "tx", "transfer", "--from", &k6, "--to", &pair, "--amount", "100000", "--wait",
        ],
    );
    assert_eq!(code, 0, "funding the pair: {out}");
    let (code, out) = c.cli(
        2,
        &[
            "tx",
            "transfer",
            "--from",
            &k4,
            "--cosign",
            &k5,
            "--key-set",
            &set,
            "--to",
            &sink,
            "--amount",
            "7",
            "--wait",
        ],
    );
    assert_eq!(code, 0, "co-signed transfer: {out}");
    let (code, out) = c.cli(
        1,
        &[
            "tx",
            "transfer",
            "--from",
            &k4,
            "--account",
            &pair,
            "--to",
            &sink,
            "--amount",
            "7",
        ],
    );
    assert_eq!(code, 2, "one signature of two is refused: {out}");
    assert!(out.contains("INSUFFICIENT_WEIGHT"), "{out}");
    let top = c.height(2).expect("height");
    c.wait_height(&[0, 1, 2, 3], top, LIMIT);
    assert_same_chain(&c, &[0, 1, 2, 3], top);
    for i in 0..4 {
        let keys = c.json(i, &["account", "keys", &pair]).expect("keys");
        assert_eq!(
            keys["keys"].as_array().map(Vec::len),
            Some(2),
            "validator {i}"
        );
    }

    // One validator down: the other three keep committing.
    c.kill(3);
    let before = c.height(0).expect("height");
    transfer(&c, 1, 4, &sink);
    c.wait_height(&[0, 1, 2], before + 3, LIMIT);
    // Back up: it catches up by block sync and agrees.
    c.restart(3);
    let target = c.height(0).expect("height") + 2;
    c.wait_height(&[0, 1, 2, 3], target, LIMIT);
    assert_same_chain(&c, &[0, 1, 2, 3], target);

    // Its data lost: it comes back from a snapshot another validator exports while running,
    // and catches up from the snapshot's height instead of replaying from genesis.
    c.kill(3);
    std::fs::remove_dir_all(c.home(3).join("data")).expect("delete data");
    wait_for(LIMIT, "a snapshot on validator 0", || {
        let s = c.json(0, &["status"])?;
        (!s["snapshot_heights"].as_array()?.is_empty()).then_some(())
    });
    let file = c.dir.path().join("state.snapshot");
    let exported = c.local_json(&[
        "snapshot",
        "export",
        "--home",
        &path_str(&c.home(0)),
        "--out",
        &path_str(&file),
    ]);
    let imported = c.local_json(&[
        "snapshot",
        "import",
        "--home",
        &path_str(&c.home(3)),
        "--file",
        &path_str(&file),
    ]);
    let at = imported["height"].as_u64().expect("height");
    assert_eq!(exported["height"].as_u64(), Some(at));
    let (_, root) = c.block_at(0, at).expect("block at the snapshot's height");
    assert_eq!(imported["state_root"].as_str(), Some(root.as_str()));
    c.restart(3);
    transfer(&c, 3, 3, &sink);
    let target = c.height(0).expect("height") + 2;
    c.wait_height(&[0, 1, 2, 3], target, LIMIT);
    assert_same_blocks(&c, &[0, 1, 2, 3], at + 1, target);
    let status = c.json(3, &["status"]).expect("status");
    assert_eq!(status["lowest_block_height"].as_u64(), Some(at + 1));
    let balance = c.json(3, &["account", &sink]).expect("account")["balance"].as_u64();
    assert_eq!(balance, Some(1_000_000_000_000 + 7 * 7));

    // Kill the proposer of the next height's first round: a round change, then commits resume.
    let h = c.height(0).expect("height");
    let leader = ((h + 1) % 4) as usize;
    c.kill(leader);
    let alive: Vec<usize> = (0..4).filter(|&i| i != leader).collect();
    // Heights h+1..=h+6 include one whose first-round proposer was already dead (the
    // rotation gives it every fourth height).
    c.wait_height(&alive, h + 6, LIMIT);
    let rounds: Vec<u64> = (h + 1..=h + 6)
        .filter_map(|height| {
            c.json(alive[0], &["block", &height.to_string()])
                .and_then(|b| b["certificate"]["round"].as_u64())
        })
        .collect();
    assert!(
        rounds.iter().any(|&r| r > 0),
        "a height proposed by the dead leader must commit in a later round: {rounds:?}"
    );
    assert_same_chain(&c, &alive, h + 6);
}

#[test]
fn two_of_four_down_stops_commits_and_one_back_resumes_them() {
    let mut c = Cluster::start(4);
    c.wait_height(&[0, 1, 2, 3], 2, LIMIT);
    use tonic_health::pb::health_check_response::ServingStatus;
    wait_for(LIMIT, "validator 0 serving", || {
        (c.health(0) == Some(ServingStatus::Serving)).then_some(())
    });
    c.kill(2);
    c.kill(3);
    // Without a quorum in reach, health says so (issue 16).
    wait_for(LIMIT, "validator 0 not serving without a quorum", || {
        (c.health(0) == Some(ServingStatus::NotServing)).then_some(())
    });
    // The CLI probe says so too, by its exit code.
    assert_eq!(c.cli(0, &["health"]), (1, "NOT_SERVING\n".to_owned()));
    // Let in-flight heights settle, then the height must stay put.
    std::thread::sleep(Duration::from_secs(2));
    let stuck = c.height(0).expect("height");
    std::thread::sleep(Duration::from_secs(4));
    assert_eq!(c.height(0), Some(stuck), "two of four cannot commit");
    assert_eq!(c.height(1), c.height(0), "no fork between the survivors");
    c.restart(3);
    c.wait_height(&[0, 1, 3], stuck + 2, LIMIT);
    assert_same_chain(&c, &[0, 1, 3], stuck + 2);
    wait_for(LIMIT, "validator 0 serving again", || {
        (c.health(0) == Some(ServingStatus::Serving)).then_some(())
    });
    assert_eq!(c.cli(0, &["health"]), (0, "SERVING\n".to_owned()));
    // Nothing in a log file is a terminal colour code (issue 16).
    for i in [0, 1, 3] {
        assert!(
            !c.log(i).contains('\u{1b}'),
            "colour codes in node-{i}/node.log"
        );
    }
    let peers = wait_for(LIMIT, "peers listed", || {
        let s = c.json(0, &["status"])?;
        let peers = s["peers"].as_array()?.len();
        (peers == 2).then_some(peers)
    });
    assert_eq!(peers, 2);
}

/// Issue 17, validator-set changes on real processes: a fifth validator added by admin
/// transaction joins through state sync and then votes (with one of the first four down, no
/// certificate is possible without it); a validator removed stops being counted and the others
/// refuse its connections; a client checks the set from the genesis file through the changes.
#[test]
fn a_validator_added_joins_by_state_sync_and_votes_and_a_removed_one_is_refused() {
    let mut c = Cluster::start(4);
    let admin = path_str(&c.account_key(0));
    let genesis = path_str(&c.dir.path().join("genesis.json"));
    // A home for the new validator: the chain's genesis, a new key, the validators as peers.
    let peers: Vec<String> = (0..4)
        .map(|i| std::fs::read_to_string(c.home(i).join("p2p.addr")).expect("p2p.addr"))
        .collect();
    let (grpc, p2p) = Cluster::free_ports();
    let new_home = c.home(4);
    let mut init = vec![
        "node".to_owned(),
        "init".into(),
        "--home".into(),
        path_str(&new_home),
        "--genesis".into(),
        genesis.clone(),
        "--grpc-addr".into(),
        format!("127.0.0.1:{grpc}"),
        "--p2p-addr".into(),
        format!("/ip4/127.0.0.1/tcp/{p2p}"),
    ];
    for p in &peers {
        init.push("--peer".into());
        init.push(p.trim().to_owned());
    }
    let init: Vec<&str> = init.iter().map(String::as_str).collect();
    let made = c.local_json(&init);
    let new_key = made["public_key"].as_str().expect("public key").to_owned();

    // Let the others take a snapshot or two first, so the newcomer joins from one.
    c.wait_height(&[0, 1, 2, 3], 25, LIMIT);
    let (code, out) = c.cli(
        1,
        &[
            "admin",
            "add-validator",
            &new_key,
            "--name",
            "fifth",
            "--from",
            &admin,
            "--json",
        ],
    );
    assert_eq!(code, 0, "add-validator: {out}");
    let added: serde_json::Value = serde_json::from_str(out.trim()).expect("json");
    assert_eq!(added["state"], "COMMITTED", "{added}");
    assert_eq!(added["receipt"]["status"], "SUCCESS", "{added}");
    let sets = c.json(0, &["validators"]).expect("validators");
    let effective = sets["scheduled"][0]["from_height"]
        .as_u64()
        .unwrap_or_else(|| panic!("no scheduled change: {sets}"));
    assert_eq!(
        sets["scheduled"][0]["validators"][4]["public_key"],
        new_key.as_str()
    );

    let new = c.join(grpc);
    assert_eq!(new, 4);
    let log = c.log(new);
    assert!(
        log.contains("state sync: joined from a snapshot"),
        "the new validator did not join by state sync:\n{log}"
    );
    assert!(
        c.lowest_common_height(&[new]) > 1,
        "it holds blocks from genesis: it replayed instead"
    );
    c.wait_height(&[0, 1, 2, 3, new], effective + 2, LIMIT);

    // Five validators, quorum four: with validator 0 down, every certificate needs the new one.
    c.kill(0);
    let from = c.height(1).expect("height") + 1;
    c.wait_height(&[1, 2, 3, new], from + 4, LIMIT);
    for h in from..from + 4 {
        let b = c.json(new, &["block", &h.to_string()]).expect("block");
        let signers: Vec<u64> = b["certificate"]["signatures"]
            .as_array()
            .expect("signatures")
            .iter()
            .map(|s| s["validator_index"].as_u64().expect("index"))
            .collect();
        assert!(
            signers.contains(&4),
            "height {h} certified without the new validator: {b}"
        );
        assert!(!signers.contains(&0), "validator 0 is down: {b}");
    }
    c.restart(0);

    // Remove validator 3: once the change is in force it is not counted and is refused.
    let v3_key = c.json(3, &["status"]).expect("status")["node_public_key"]
        .as_str()
        .expect("key")
        .to_owned();
    let removed = c
        .json(2, &["admin", "remove-validator", &v3_key, "--from", &admin])
        .expect("remove-validator");
    assert_eq!(removed["receipt"]["status"], "SUCCESS", "{removed}");
    let sets = c.json(2, &["validators"]).expect("validators");
    let effective = sets["scheduled"][0]["from_height"]
        .as_u64()
        .expect("height");
    c.wait_height(&[0, 1, 2, new], effective + 8, LIMIT);
    let set = c
        .json(1, &["validators", "--height", &effective.to_string()])
        .expect("set");
    let keys: Vec<&str> = set["validators"]
        .as_array()
        .expect("validators")
        .iter()
        .map(|v| v["public_key"].as_str().expect("key"))
        .collect();
    assert_eq!(keys.len(), 4);
    assert!(!keys.contains(&v3_key.as_str()) && keys.contains(&new_key.as_str()));
    // Its connections are refused: no validator keeps it as a peer, and it falls behind.
    let v3_peer = peers[3]
        .trim()
        .rsplit('/')
        .next()
        .expect("peer id")
        .to_owned();
    wait_for(LIMIT, "the others to drop validator 3", || {
        [0, 1, 2, new]
            .iter()
            .all(|&i| {
                c.json(i, &["status"]).is_some_and(|s| {
                    !s["peers"]
                        .as_array()
                        .is_some_and(|p| p.iter().any(|x| x.as_str() == Some(&v3_peer)))
                })
            })
            .then_some(())
    });
    let stuck = c.height(3).expect("height");
    let top = c.height(1).expect("height");
    c.wait_height(&[0, 1, 2, new], top + 5, LIMIT);
    assert!(
        c.height(3).expect("height") <= stuck.max(effective),
        "validator 3 kept up after its removal"
    );
    assert!(c.log(1).contains("validator left the set"));
    // A validator restarted after the change, whose config still lists validator 3 as a peer,
    // refuses it too.
    c.kill(1);
    c.restart(1);
    c.wait_height(&[1], c.height(0).expect("height") + 2, LIMIT);
    wait_for(
        LIMIT,
        "the restarted validator to refuse validator 3",
        || {
            c.json(1, &["status"])
                .is_some_and(|s| {
                    !s["peers"]
                        .as_array()
                        .is_some_and(|p| p.iter().any(|x| x.as_str() == Some(&v3_peer)))
                })
                .then_some(())
        },
    );
    std::thread::sleep(Duration::from_secs(2));
    let status = c.json(1, &["status"]).expect("status");
    assert!(
        !status["peers"].to_string().contains(&v3_peer),
        "validator 3 connected again: {status}"
    );

    // A client follows the changes from the genesis file: two changes, each certified.
    let checked = c
        .json(new, &["validators", "--genesis", &genesis])
        .expect("validators --genesis");
    assert_eq!(checked["verified_from_genesis"], true, "{checked}");
    assert_eq!(checked["changes"].as_array().expect("changes").len(), 2);
    let top = c.height(1).expect("height");
    assert_same_blocks(
        &c,
        &[0, 1, 2, new],
        c.lowest_common_height(&[0, 1, 2, new]),
        top,
    );
}
