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
/// The p2p addresses (with peer ids) of validators `0..n`.
fn p2p_addrs(c: &Cluster, n: usize) -> Vec<String> {
    (0..n)
        .map(|i| {
            std::fs::read_to_string(c.home(i).join("p2p.addr"))
                .expect("p2p.addr")
                .trim()
                .to_owned()
        })
        .collect()
}

/// Makes home `i` for a new node with `quorate node init`: the chain's genesis, a new key,
/// `peers` as its p2p peers. Returns its gRPC port and public key.
fn new_home(c: &Cluster, i: usize, peers: &[String]) -> (u16, String) {
    new_home_with_key(c, i, peers, None)
}

/// [`new_home`] with the key file `key` instead of a new key.
fn new_home_with_key(c: &Cluster, i: usize, peers: &[String], key: Option<&str>) -> (u16, String) {
    let (grpc, p2p) = Cluster::free_ports();
    let mut init = vec![
        "node".to_owned(),
        "init".into(),
        "--home".into(),
        path_str(&c.home(i)),
        "--genesis".into(),
        path_str(&c.dir.path().join("genesis.json")),
        "--grpc-addr".into(),
        format!("127.0.0.1:{grpc}"),
        "--p2p-addr".into(),
        format!("/ip4/127.0.0.1/tcp/{p2p}"),
    ];
    for p in peers {
        init.push("--peer".into());
        init.push(p.clone());
    }
    if let Some(k) = key {
        init.push("--key".into());
        init.push(k.to_owned());
    }
    let init: Vec<&str> = init.iter().map(String::as_str).collect();
    let made = c.local_json(&init);
    let key = made["public_key"].as_str().expect("public key").to_owned();
    (grpc, key)
}

/// Sets `p2p.peers` in the config of node `i` (whose config lists none).
fn set_peers(c: &Cluster, i: usize, peers: &[String]) {
    let config = c.home(i).join("config.toml");
    let text = std::fs::read_to_string(&config).expect("config");
    let list: Vec<String> = peers.iter().map(|p| format!("{p:?}")).collect();
    let set = format!("peers = [{}]", list.join(", "));
    assert!(text.contains("peers = []"), "{text}");
    std::fs::write(&config, text.replace("peers = []", &set)).expect("config");
}

/// Submits an admin change of the validator set through validator `via` and returns the
/// height it is in force from.
fn change_set(c: &Cluster, via: usize, args: &[&str]) -> u64 {
    let admin = path_str(&c.account_key(0));
    let mut all = vec!["admin"];
    all.extend_from_slice(args);
    all.extend_from_slice(&["--from", &admin]);
    let changed = c
        .json(via, &all)
        .unwrap_or_else(|| panic!("{args:?} failed\n{}", c.log(via)));
    assert_eq!(changed["receipt"]["status"], "SUCCESS", "{changed}");
    let sets = c.json(via, &["validators"]).expect("validators");
    sets["scheduled"][0]["from_height"]
        .as_u64()
        .unwrap_or_else(|| panic!("no scheduled change: {sets}"))
}

#[test]
fn a_validator_added_joins_by_state_sync_and_votes_and_a_removed_one_is_refused() {
    let mut c = Cluster::start(4);
    let admin = path_str(&c.account_key(0));
    let genesis = path_str(&c.dir.path().join("genesis.json"));
    let peers = p2p_addrs(&c, 4);
    let (grpc, new_key) = new_home(&c, 4, &peers);

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
    let (code, out) = c.cli(new, &["validators", "--genesis", &genesis, "--json"]);
    assert_eq!(code, 0, "validators --genesis: {out}");
    let checked: serde_json::Value = serde_json::from_str(out.trim()).expect("json");
    assert_eq!(checked["verified_from_genesis"], true, "{checked}");
    assert_eq!(checked["changes"].as_array().expect("changes").len(), 2);
    let top = c.height(1).expect("height");
    assert_same_blocks(
        &c,
        &[0, 1, 2, new],
        c.lowest_common_height(&[0, 1, 2, new]),
        top,
    );

    // Validator 1 loses its data after both changes are in force and joins by state sync
    // (issue 25): the snapshot it takes carries the changes and is offered by f + 1 = 2
    // validators of the set in force. With the new validator down as well the chain stands
    // still, so validators 0 and 2 offer the same latest snapshot.
    c.kill(new);
    c.kill(1);
    let still = wait_for(LIMIT, "validators 0 and 2 to stand still", || {
        let a = c.json(0, &["status"])?;
        let b = c.json(2, &["status"])?;
        let same = a["height"] == b["height"] && a["snapshot_heights"] == b["snapshot_heights"];
        std::thread::sleep(Duration::from_secs(1));
        let again = c.json(0, &["status"])?;
        (same && again["height"] == a["height"]).then_some(a)
    });
    assert!(
        still["snapshot_heights"]
            .as_array()
            .is_some_and(|h| !h.is_empty()),
        "{still}"
    );
    std::fs::remove_dir_all(c.home(1).join("data")).expect("delete data");
    c.restart(1);
    let log = c.log(1);
    let line = log
        .lines()
        .rev()
        .find(|l| l.contains("state sync: fetching a snapshot"))
        .unwrap_or_else(|| panic!("validator 1 did not join by state sync:\n{log}"));
    let field = |name: &str| -> u64 {
        let at = line
            .find(&format!("{name}="))
            .unwrap_or_else(|| panic!("{name} in {line}"));
        line[at + name.len() + 1..]
            .split(|ch: char| !ch.is_ascii_digit())
            .next()
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("{name} in {line}"))
    };
    assert!(
        field("set_changes") >= 2,
        "the manifest carries no changes: {line}"
    );
    assert!(
        field("vouching") >= 2,
        "not offered by f + 1 validators in force: {line}"
    );
    c.restart(new);
    let top = c.height(0).expect("height");
    c.wait_height(&[0, 1, 2, new], top + 3, LIMIT);
    assert_same_blocks(
        &c,
        &[0, 1, 2, new],
        c.lowest_common_height(&[0, 1, 2, new]),
        top + 3,
    );
}

/// Issue 25 (high), on real processes. A chain that started with one validator, A, and grew:
/// A, restarted with an empty data directory and the other validator in `p2p.peers`, joins from
/// its snapshot instead of deciding a second block 1 alone (it skipped state sync and did).
/// Then A is replaced by C: C, whose genesis names only A (gone), joins through `p2p.peers`
/// (state sync asked only the genesis validators).
#[test]
fn a_one_validator_chain_that_grew_is_rejoined_not_forked_and_reached_through_peers() {
    let mut c = Cluster::start(1);
    let b_key = path_str(&c.dir.path().join("b.json"));
    c.local_json(&["keys", "generate", "--out", &b_key]);
    let in_force = change_set(&c, 0, &["add-validator", &b_key, "--name", "b"]);
    // A opens its p2p port once a larger set is decided: on its next start.
    c.kill(0);
    c.restart(0);
    let a_peer = p2p_addrs(&c, 1);
    let (grpc_b, _) = new_home_with_key(&c, 1, &a_peer, Some(&b_key));
    let b = c.join(grpc_b);
    c.wait_height(&[0, b], in_force + 12, LIMIT);

    // A loses its data; its config now names B.
    c.kill(0);
    std::fs::remove_dir_all(c.home(0).join("data")).expect("delete data");
    let b_addr = p2p_addrs(&c, 2)[1].clone();
    set_peers(&c, 0, std::slice::from_ref(&b_addr));
    let log_len = c.log(0).len();
    c.restart(0);
    let log = c.log(0)[log_len..].to_owned();
    assert!(log.contains("state sync: joined from a snapshot"), "{log}");
    assert!(!log.contains("a new chain"), "{log}");
    // The chain goes on with both (a quorum of two): had A decided a chain of its own, B would
    // stand still; the blocks both hold are the same.
    let top = c.height(b).expect("height");
    c.wait_height(&[0, b], top + 3, LIMIT);
    let from = c.lowest_common_height(&[0, b]);
    assert_same_blocks(&c, &[0, b], from, top + 3);

    // A is replaced by C. C's genesis names only A, which is stopped at the last height it
    // decides (the chain then waits for C); C reaches B through its `p2p.peers`.
    let (grpc_c, key_c) = new_home(&c, 2, &[a_peer[0].clone(), b_addr.clone()]);
    let key_a = c.json(0, &["status"]).expect("status")["node_public_key"]
        .as_str()
        .expect("key")
        .to_owned();
    let in_force = change_set(&c, b, &["replace-validator", &key_a, &key_c, "--name", "c"]);
    c.wait_height(&[b], in_force - 1, LIMIT);
    c.kill(0);
    let joined = c.join(grpc_c);
    let log = c.log(joined);
    assert!(log.contains("state sync: joined from a snapshot"), "{log}");
    c.wait_height(&[b, joined], in_force + 3, LIMIT);
    let top = c.height(b).expect("height");
    assert_same_blocks(&c, &[b, joined], c.lowest_common_height(&[b, joined]), top);
}

/// Issue 28: the remittance contract upgraded in place to version 2 (built by
/// scripts/build-system-contracts.sh from the crate's feature `v2`) on four validators: the
/// reserves version 1 stored are read by version 2, its new method is callable from the
/// upgrade height on (and unknown before), and a validator replaying every block from genesis
/// (its data deleted, state sync off) computes every block before and after the upgrade to the
/// same hash and state root as the others.
#[test]
fn the_remittance_contract_upgraded_in_place_keeps_its_state_and_replays_from_genesis() {
    let mut c = Cluster::start(4);
    let admin = path_str(&c.account_key(0));
    let remitter = path_str(&c.account_key(1));
    let owner = address_of(&c, 1);
    let code = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../genesis/system/upgrades/remittance-v2.wasm"
    );
    let remittance = quorate_proto::Address::of_system_contract("remittance").to_hex();
    let reserves = |c: &Cluster, via: usize| -> serde_json::Value {
        c.json(via, &["remittance", "reserves", &owner])
            .unwrap_or_else(|| panic!("reserves\n{}", c.log(via)))["return"]
            .clone()
    };
    let call = |c: &Cluster, via: usize, args: &[&str]| -> (i32, String) {
        let mut all = vec!["remittance"];
        all.extend_from_slice(args);
        all.extend_from_slice(&["--from", &remitter, "--json"]);
        c.cli(via, &all)
    };
    // Version 1 state: two entries.
    for (entry, amount) in [("payroll", "1000"), ("bonus", "500")] {
        let (code, out) = call(&c, 0, &["deposit", entry, amount]);
        assert_eq!(code, 0, "deposit: {out}");
    }
    let before = reserves(&c, 1);
    assert_eq!(before["total"], "1500", "{before}");
    let move_args = r#"{"from": "payroll", "to": "travel", "amount": 400}"#;
    let move_reserve = |c: &Cluster, via: usize| {
        c.cli(
            via,
            &[
                "contract",
                "call",
                &remittance,
                "move_reserve",
                move_args,
                "--from",
                &remitter,
                "--json",
            ],
        )
    };
    let (code1, out) = move_reserve(&c, 2);
    assert_ne!(code1, 0, "version 1's interface has no move_reserve: {out}");
    // Sent anyway (its arguments as bytes): version 1 refuses it in a block before the upgrade,
    // which a replay on version 2's code would run with success (another state root).
    let (_, out) = c.cli(
        2,
        &[
            "contract",
            "call",
            &remittance,
            "move_reserve",
            "--args-hex",
            "0a07706179726f6c6c120674726176656c189003",
            "--from",
            &remitter,
            "--json",
        ],
    );
    let refused: serde_json::Value = serde_json::from_str(out.trim()).expect("json");
    assert_eq!(refused["receipt"]["status"], "BAD_INPUT", "{refused}");

    let decided = c.height(0).expect("height");
    let upgraded = c
        .json(
            0,
            &[
                "admin",
                "upgrade-contract",
                "remittance",
                "--wasm",
                code,
                "--from",
                &admin,
            ],
        )
        .unwrap_or_else(|| panic!("upgrade\n{}", c.log(0)));
    assert_eq!(upgraded["receipt"]["status"], "SUCCESS", "{upgraded}");
    let info = |c: &Cluster| c.json(0, &["contract", "info", &remittance]).expect("info");
    let at = wait_for(LIMIT, "the upgrade to come into force", || {
        info(&c)["upgraded_at"].as_u64()
    });
    assert!(
        at > decided,
        "in force after the deciding block: {at} > {decided}"
    );
    assert!(
        c.block_at(0, at - 1).is_some(),
        "blocks before the upgrade were committed on the old code"
    );
    c.wait_height(&[0, 1, 2, 3], at, LIMIT);
    assert_eq!(info(&c)["version"], 1, "{}", info(&c));
    // Version 2 reads version 1's reserves, and its new method works on them.
    assert_eq!(
        reserves(&c, 3),
        before,
        "the stored reserves, read by version 2"
    );
    let (code2, out) = move_reserve(&c, 2);
    assert_eq!(code2, 0, "move_reserve: {out}");
    let moved: serde_json::Value = serde_json::from_str(out.trim()).expect("json");
    assert_eq!(moved["receipt"]["status"], "SUCCESS", "{moved}");
    let events = moved["receipt"]["events"].to_string();
    assert!(events.contains("moved"), "{events}");
    let after = reserves(&c, 1);
    assert_eq!(after["total"], "1500", "nothing left the contract: {after}");
    let entries = after["entries"].to_string();
    assert!(
        entries.contains("travel") && entries.contains("\"600\""),
        "payroll 600, travel 400: {after}"
    );
    let head = c.height(0).expect("height");

    // Validator 3 replays every block from genesis: with a block before the upgrade run on
    // the new code (or one after on the old), its state roots would differ and it would stop.
    c.kill(3);
    std::fs::remove_dir_all(c.home(3).join("data")).expect("delete data");
    c.extra[3].1.push((
        "QUORATE_CFG_STORAGE__STATE_SYNC".to_owned(),
        "false".to_owned(),
    ));
    c.restart(3);
    c.wait_height(&[3], head, LIMIT);
    let log = c.log(3);
    assert!(
        !log.contains("joined from a snapshot"),
        "replayed, not synced"
    );
    assert_same_blocks(&c, &[0, 3], 1, head);
}
