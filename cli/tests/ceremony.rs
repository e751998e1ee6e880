//! Issue 28, the key ceremony on real processes: four organisations, each in a directory of its
//! own (its "host"), make their keys and signed entries; an assembler who holds only the
//! entries builds the genesis and refuses a tampered one; each organisation checks the result
//! (the same hash for all); no secret exists outside its organisation's directory; the four
//! validators start from their own homes and commit together.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use common::cluster::{path_str, wait_for, Cluster};

const ORGS: usize = 4;
const LIMIT: Duration = Duration::from_secs(120);

fn quorate(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(common::bin())
        .args(args)
        .output()
        .expect("run quorate");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn json(args: &[&str]) -> serde_json::Value {
    let mut all = args.to_vec();
    all.push("--json");
    let (code, out, err) = quorate(&all);
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
fn four_organisations_make_a_chain_without_sharing_a_secret() {
    let root = tempfile::tempdir().expect("tmp");
    let org = |i: usize| root.path().join(format!("org-{i}"));
    let assembler = root.path().join("assembler");
    std::fs::create_dir_all(&assembler).expect("assembler dir");
    let ports: Vec<(u16, u16)> = (0..ORGS).map(|_| Cluster::free_ports()).collect();

    // Each organisation, on its own host: keys and a signed entry.
    let mut entries = Vec::new();
    for (i, (_, p2p)) in ports.iter().enumerate() {
        let made = json(&[
            "genesis",
            "entry",
            "--chain-id",
            "consortium",
            "--name",
            &format!("org-{i}"),
            "--dir",
            &path_str(&org(i)),
            "--p2p-addr",
            &format!("/ip4/127.0.0.1/tcp/{p2p}"),
            "--accounts",
            "2",
        ]);
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

    // The real entries, given in another order: the genesis.
    let genesis = assembler.join("genesis.json");
    let mut assemble = vec!["genesis", "assemble", "--chain-id", "consortium"];
    let real: Vec<String> = entries.iter().rev().map(|p| path_str(p)).collect();
    for e in &real {
        assemble.extend(["--entry", e.as_str()]);
    }
    let genesis_s = path_str(&genesis);
    assemble.extend(["--genesis-time-ms", "1", "--out", genesis_s.as_str()]);
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
    let check = |i: usize, genesis: &Path| -> (i32, String, String) {
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
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        quorate(&args)
    };
    for i in 0..ORGS {
        std::fs::copy(&genesis, org(i).join("genesis.json")).expect("copy genesis");
        let (code, out, err) = check(i, &org(i).join("genesis.json"));
        assert_eq!(code, 0, "{out}{err}");
        let checked: serde_json::Value = serde_json::from_str(out.trim()).expect("json");
        assert_eq!(checked["genesis_hash"], hash.as_str());
        assert_eq!(
            checked["validator_index"], i,
            "validators in the order of names"
        );
    }
    // A genesis whose assembler moved funds is caught by the organisation it robbed.
    let mut robbed: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&genesis).expect("genesis")).expect("json");
    robbed["accounts"][0]["balance"] = serde_json::json!(1);
    let robbed_path = org(0).join("robbed-genesis.json");
    std::fs::write(&robbed_path, robbed.to_string()).expect("write");
    let (code, _, err) = check(0, &robbed_path);
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
    let (code, _, err) = check(3, &packed_path);
    assert_ne!(code, 0);
    assert!(
        err.contains("not the one the entries give: its validators differ"),
        "{err}"
    );

    // No secret outside its organisation's directory: every secret seed made (a validator
    // key and two accounts per organisation) appears in files under its own organisation's
    // directory only; the assembler's holds none.
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
        ORGS * 3,
        "a validator key and two accounts each"
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

    // Each starts its validator from its own home, with the others as peers.
    let mut running = Running(Vec::new());
    let mut urls = Vec::new();
    for (i, (grpc, p2p)) in ports.iter().enumerate() {
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
            format!("127.0.0.1:{grpc}"),
            "--p2p-addr".to_owned(),
            format!("/ip4/127.0.0.1/tcp/{p2p}"),
        ];
        for (j, p) in peers.iter().enumerate() {
            if j != i {
                init.extend(["--peer".to_owned(), p.clone()]);
            }
        }
        let init: Vec<&str> = init.iter().map(String::as_str).collect();
        let (code, out, err) = quorate(&init);
        assert_eq!(code, 0, "{out}{err}");
        let log = std::fs::File::create(org(i).join("node.log")).expect("log");
        running.0.push(
            Command::new(common::bin())
                .args(["node", "run", "--home", &path_str(&home)])
                .env("QUORATE_CFG_BLOCK__EMPTY_INTERVAL_MS", "300")
                .stdout(Stdio::null())
                .stderr(log)
                .spawn()
                .expect("start"),
        );
        urls.push(format!("http://127.0.0.1:{grpc}"));
    }
    let height = |url: &str| -> Option<u64> {
        let (code, out, _) = quorate(&["status", "--node", url, "--json"]);
        (code == 0)
            .then(|| serde_json::from_str::<serde_json::Value>(out.trim()).ok())
            .flatten()
            .and_then(|v| v["height"].as_u64())
    };
    wait_for(LIMIT, "every organisation's validator at height 3", || {
        urls.iter()
            .all(|u| height(u).is_some_and(|h| h >= 3))
            .then_some(())
    });
    let block_hash = |url: &str| {
        let (code, out, err) = quorate(&["block", "2", "--node", url, "--json"]);
        assert_eq!(code, 0, "{out}{err}");
        serde_json::from_str::<serde_json::Value>(out.trim()).expect("json")["hash"].clone()
    };
    let first = block_hash(&urls[0]);
    for u in &urls[1..] {
        assert_eq!(block_hash(u), first, "one chain");
    }
    let (code, out, _) = quorate(&["status", "--node", &urls[2], "--json"]);
    assert_eq!(code, 0);
    let status: serde_json::Value = serde_json::from_str(out.trim()).expect("json");
    assert_eq!(status["genesis_hash"], hash.as_str());
}
