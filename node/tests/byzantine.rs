//! Four real validator processes on loopback, one of them Byzantine (`quorate node run
//! --byzantine BEHAVIOUR`, feature `byzantine`): under a transfer load, the three honest ones
//! keep committing, agree on every block hash, never exit, stay within a memory bound, and
//! commit every transaction a client saw admitted.
//!
//! `cargo test -p quorate-node --features byzantine --test byzantine`

mod common;

use std::time::Duration;

use common::cluster::{path_str, Cluster};

const LIMIT: Duration = Duration::from_secs(180);
/// Resident memory an honest validator of this small chain must stay under.
const RSS_BOUND: u64 = 768 << 20;
/// The Byzantine validator.
const BYZANTINE: usize = 0;
const HONEST: [usize; 3] = [1, 2, 3];

fn start(behaviour: &str) -> Cluster {
    let behaviour = behaviour.to_owned();
    Cluster::start_with(4, move |i| {
        if i != BYZANTINE {
            return (Vec::new(), Vec::new());
        }
        let env = vec![
            // It may send larger messages than the others accept.
            (
                "QUORATE_CFG_P2P__MAX_MESSAGE_BYTES".to_owned(),
                (64u64 << 20).to_string(),
            ),
        ];
        (vec!["--byzantine".to_owned(), behaviour.clone()], env)
    })
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

/// Submits a transfer from `account` through honest validator `via` (without waiting);
/// returns its hash once admitted.
fn submit(c: &Cluster, via: usize, account: usize, to: &str) -> String {
    let key = path_str(&c.account_key(account));
    let v = c
        .json(
            via,
            &[
                "tx", "transfer", "--from", &key, "--to", to, "--amount", "3",
            ],
        )
        .unwrap_or_else(|| panic!("transfer via {via} refused\n{}", c.log(via)));
    v["tx_hash"]
        .as_str()
        .or_else(|| v["hash"].as_str())
        .unwrap_or_else(|| panic!("no hash in {v}"))
        .to_owned()
}

/// Every honest validator holds the same block at each height up to `top` (from the lowest
/// height all of them hold: one that joined from a snapshot has no blocks below it).
fn assert_honest_agree(c: &Cluster, top: u64) {
    for h in c.lowest_common_height(&HONEST)..=top {
        let first = c
            .block_at(HONEST[0], h)
            .unwrap_or_else(|| panic!("validator {} lacks height {h}", HONEST[0]));
        for &i in &HONEST[1..] {
            let other = c
                .block_at(i, h)
                .unwrap_or_else(|| panic!("validator {i} lacks height {h}"));
            assert_eq!(first, other, "honest validators differ at height {h}");
        }
    }
}

fn assert_honest_alive_and_bounded(c: &mut Cluster) {
    for i in HONEST {
        assert!(c.alive(i), "honest validator {i} exited:\n{}", c.log(i));
        let rss = c.rss_bytes(i).expect("rss");
        assert!(
            rss < RSS_BOUND,
            "honest validator {i} holds {} MiB",
            rss >> 20
        );
    }
}

/// Runs the load and the checks every scenario shares; `mid` runs halfway (faults of its own).
fn scenario(behaviour: &str, mid: impl FnOnce(&mut Cluster)) {
    let mut c = start(behaviour);
    let sink = address_of(&c, 7);
    let mut hashes = Vec::new();
    for round in 0..2 {
        for (k, via) in HONEST.into_iter().enumerate() {
            hashes.push(submit(&c, via, round * 3 + k, &sink));
        }
    }
    let start = c.height(HONEST[0]).expect("height");
    // Eight heights: the Byzantine validator is the first proposer of every fourth one.
    c.wait_height(&HONEST, start + 8, LIMIT);
    mid(&mut c);
    for (k, via) in HONEST.into_iter().enumerate() {
        hashes.push(submit(&c, via, 6 - k % 2, &sink));
    }
    let now = c.height(HONEST[0]).expect("height");
    c.wait_height(&HONEST, now + 8, LIMIT);
    assert_honest_alive_and_bounded(&mut c);
    let top = HONEST
        .iter()
        .filter_map(|&i| c.height(i))
        .min()
        .expect("heights");
    assert_honest_agree(&c, top);
    // Everything admitted was committed, on every honest validator that holds every block
    // (one that joined from a snapshot has the effects in its state, not the records).
    let archives: Vec<usize> = HONEST
        .into_iter()
        .filter(|&i| {
            c.json(i, &["status"]).expect("status")["lowest_block_height"].as_u64() == Some(1)
        })
        .collect();
    assert!(archives.len() >= 2, "{archives:?}");
    for h in &hashes {
        for &i in &archives {
            let s = common::cluster::wait_for(LIMIT, "a transaction to commit", || {
                let s = c.json(i, &["tx", "status", h])?;
                (s["state"] == "COMMITTED").then_some(s)
            });
            assert_eq!(s["state"], "COMMITTED");
        }
    }
    println!(
        "{behaviour}: honest validators at height {top}, agree on every block, {} transactions committed; byzantine alive: {}",
        hashes.len(),
        c.alive(BYZANTINE)
    );
}

#[test]
fn reencoded_headers() {
    scenario("reencode-header", |_| {});
}

#[test]
fn split_bodies() {
    scenario("split-bodies", |_| {});
}

#[test]
fn future_timestamps() {
    scenario("future-time", |c| {
        // Chain time never ran ahead of the honest clocks by more than the drift.
        let head = c.json(HONEST[0], &["block"]).expect("block");
        let time_ms = head["time_ms"].as_u64().expect("time");
        let now_ms = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .expect("clock")
            .as_millis() as u64;
        assert!(
            time_ms <= now_ms + 2_000,
            "chain time {time_ms} ran ahead of {now_ms}"
        );
    });
}

#[test]
fn past_timestamps() {
    scenario("past-time", |_| {});
}

#[test]
fn equivocation() {
    scenario("equivocate", |_| {});
}

#[test]
fn absurd_votes() {
    scenario("absurd-votes", |_| {});
}

#[test]
fn bad_transactions() {
    scenario("bad-txs", |_| {});
}

#[test]
fn flood() {
    scenario("flood", |_| {});
}

#[test]
fn silence() {
    scenario("silent", |_| {});
}

#[test]
fn junk_sync_answers() {
    scenario("junk-sync", |c| {
        // An honest validator falls behind and catches up while the Byzantine one answers
        // every sync request with junk.
        c.kill(3);
        let h = c.height(1).expect("height");
        c.wait_height(&[1, 2], h + 6, LIMIT);
        c.restart(3);
        let target = c.height(1).expect("height");
        c.wait_height(&[3], target, LIMIT);
        // Its data lost, it joins by state sync: the Byzantine validator, asked first, serves
        // damaged chunks, which are refused and fetched from an honest one.
        c.kill(3);
        std::fs::remove_dir_all(c.home(3).join("data")).expect("delete data");
        common::cluster::wait_for(LIMIT, "a snapshot on validator 1", || {
            let s = c.json(1, &["status"])?;
            (!s["snapshot_heights"].as_array()?.is_empty()).then_some(())
        });
        c.restart(3);
        let target = c.height(1).expect("height");
        c.wait_height(&[3], target, LIMIT);
        let log = c.log(3);
        assert!(log.contains("state sync: chunk refused"), "{log}");
        assert!(log.contains("joined from a snapshot"), "{log}");
        let lowest = c.json(3, &["status"]).expect("status")["lowest_block_height"].as_u64();
        assert!(lowest.is_some_and(|l| l > 1), "{lowest:?}");
    });
}
