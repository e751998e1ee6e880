//! A rolling upgrade to a new protocol version on four real validator processes (ADR 0019,
//! OPERATING §7b). The "old release" is `quorate` built without the test-only feature
//! `protocol-test-v2` (it supports version 1), the "new release" this test's binary, built with
//! it (it supports 1 and 2; version 2's one rule marks every transfer's receipt with an event
//! `protocol`/`v2`). Operators replace three validators' binaries one at a time while the chain
//! commits; the admin activates version 2 at a height; the validator left on the old release
//! refuses to help activate it, stops before the height saying which version to install, and
//! keeps serving reads; the others cross the height under the new rules; the last operator
//! upgrades and its validator catches up and votes.
//!
//! `QUORATE_V1_BIN` names the old release's binary (scripts/test.sh copies it from the
//! workspace build before building this one):
//! `QUORATE_V1_BIN=target/quorate-protocol-v1 cargo test -p quorate-cli --features protocol-test-v2 --test protocol_upgrade`

mod common;

use std::path::PathBuf;
use std::time::Duration;

use common::cluster::{path_str, wait_for, Cluster};
use serde_json::Value;

const LIMIT: Duration = Duration::from_secs(120);
/// The validator whose operator upgrades last.
const LATE: usize = 3;

fn old_release() -> PathBuf {
    let path = std::env::var_os("QUORATE_V1_BIN")
        .map(PathBuf::from)
        .expect(
            "QUORATE_V1_BIN must name a quorate binary built without the protocol-test-v2 feature \
         (scripts/test.sh sets it)",
        );
    assert!(
        path.exists(),
        "QUORATE_V1_BIN {} does not exist",
        path.display()
    );
    path
}

fn status(c: &Cluster, i: usize) -> Value {
    c.json(i, &["status"])
        .unwrap_or_else(|| panic!("validator {i} gives no status\n{}", c.log(i)))
}

/// Sends a transfer through validator `via` and waits for it; its receipt.
fn transfer(c: &Cluster, via: usize, account: usize) -> Value {
    let key = path_str(&c.account_key(account));
    let to = "00000000000000000000000000000000000000aa";
    let v = c
        .json(
            via,
            &[
                "tx", "transfer", "--from", &key, "--to", to, "--amount", "3", "--wait",
            ],
        )
        .unwrap_or_else(|| panic!("transfer via {via} failed\n{}", c.log(via)));
    assert_eq!(v["state"], "COMMITTED", "{v}");
    v["receipt"].clone()
}

fn marked_v2(receipt: &Value) -> bool {
    receipt["events"].as_array().is_some_and(|e| {
        e.iter()
            .any(|e| e["source"] == "protocol" && e["kind"] == "v2")
    })
}

/// Waits until the chain, as validator `watch` sees it, commits `n` more heights.
fn commits(c: &Cluster, watch: usize, n: u64, why: &str) {
    let from = c.height(watch).expect("height");
    wait_for(LIMIT, &format!("{n} more heights {why}"), || {
        c.height(watch).is_some_and(|h| h >= from + n).then_some(())
    });
}

#[test]
fn a_rolling_upgrade_activates_a_new_protocol_version_and_an_old_release_stops_before_it() {
    let old = old_release();
    let new = common::bin();
    let mut c = Cluster::start_on(4, |_| (Vec::new(), Vec::new()), |_| old.clone());
    c.wait_height(&[0, 1, 2, 3], 3, LIMIT);
    let s = status(&c, 0);
    assert_eq!(
        (
            s["protocol"]["version"].as_u64(),
            s["protocol"]["supported"].as_u64()
        ),
        (Some(1), Some(1)),
        "the old release supports version 1 only: {s}"
    );
    let before = transfer(&c, 0, 1);
    assert!(!marked_v2(&before), "{before}");

    // Operators upgrade 0, 1 and 2, one at a time: the others commit while each is down.
    for i in 0..3 {
        let watch = (i + 1) % 4;
        let stopped = c.stop(i).expect("running");
        assert!(stopped.success(), "validator {i} stopped with {stopped}");
        commits(&c, watch, 2, &format!("while validator {i} restarts"));
        c.bins[i] = new.clone();
        c.restart(i);
        let s = status(&c, i);
        assert_eq!(s["protocol"]["supported"].as_u64(), Some(2), "{s}");
        assert_eq!(s["protocol"]["version"].as_u64(), Some(1), "{s}");
        let head = c.height(watch).expect("height");
        c.wait_height(&[i], head, LIMIT);
    }
    commits(&c, LATE, 2, "with three validators on the new release");
    // The new release runs version 1's rules while version 1 is in force.
    let below = transfer(&c, 0, 3);
    assert!(!marked_v2(&below), "{below}");

    // The old release refuses to help activate a version it cannot run.
    let admin = path_str(&c.account_key(0));
    // Far enough for the refused attempt and the activation to commit under a loaded machine.
    let delay = status(&c, 0)["params"]["validator_set_delay"]
        .as_u64()
        .expect("delay");
    let at = c.height(0).expect("height") + 4 * delay;
    let at_text = at.to_string();
    let activate: [&str; 8] = [
        "admin",
        "activate-protocol",
        "--version",
        "2",
        "--height",
        &at_text,
        "--from",
        &admin,
    ];
    let (code, out) = c.cli(LATE, &activate);
    assert_ne!(code, 0, "{out}");
    assert!(
        out.contains("UNSUPPORTED_PROTOCOL") && out.contains("upgrade the node"),
        "{out}"
    );
    // Through a validator on the new release.
    let activated = c
        .json(0, &activate)
        .unwrap_or_else(|| panic!("activation failed\n{}", c.log(0)));
    assert_eq!(activated["receipt"]["status"], "SUCCESS", "{activated}");
    for i in [0, LATE] {
        let s = status(&c, i);
        assert_eq!(
            (
                s["protocol"]["scheduled"]["version"].as_u64(),
                s["protocol"]["scheduled"]["from_height"].as_u64()
            ),
            (Some(2), Some(at)),
            "validator {i}: {s}"
        );
    }

    // The new release crosses the height under version 2; the old one stops before it.
    c.wait_height(&[0, 1, 2], at + 3, LIMIT);
    let halted = wait_for(LIMIT, "the old release to report its halt", || {
        let s = c.json(LATE, &["status"])?;
        let why = s["protocol"]["halted"].as_str()?.to_owned();
        Some((why, s))
    });
    let (why, s) = halted;
    assert_eq!(
        s["height"].as_u64(),
        Some(at - 1),
        "stopped at the last height of v1: {s}"
    );
    assert!(
        why.contains(&format!("protocol version 2 activates at height {at}"))
            && why.contains("install a release that supports version 2"),
        "{why}"
    );
    assert!(c.alive(LATE), "it keeps serving reads");
    let log = c.log(LATE);
    assert!(
        log.contains("consensus stopped") && log.contains("install a release that supports"),
        "{log}"
    );
    // Its consensus stopped before the height: it never judged a proposal of it (which it
    // would refuse, logging this reason, had it gone on).
    assert!(
        !log.lines()
            .any(|l| l.contains("proposed block is invalid") && l.contains("activates at height")),
        "{log}"
    );
    assert_eq!(
        c.health(LATE),
        Some(tonic_health::pb::health_check_response::ServingStatus::NotServing)
    );
    let (code, out) = c.cli(
        LATE,
        &[
            "tx",
            "transfer",
            "--from",
            &admin,
            "--to",
            "00000000000000000000000000000000000000aa",
            "--amount",
            "1",
        ],
    );
    assert_ne!(code, 0, "a halted node takes no transactions: {out}");
    for h in [at - 1, at] {
        let b = c.json(0, &["block", &h.to_string()]).expect("block");
        let expected = if h < at { 1 } else { 2 };
        assert_eq!(
            b["protocol_version"].as_u64(),
            Some(expected),
            "height {h}: {b}"
        );
    }
    let after = transfer(&c, 1, 2);
    assert!(
        marked_v2(&after),
        "version 2's rule from the height on: {after}"
    );
    // The old release holds every block before the height, the same as the others.
    assert_eq!(c.block_at(LATE, at - 1), c.block_at(0, at - 1));

    // The last operator upgrades: its validator takes the version-2 blocks and votes.
    let stopped = c.stop(LATE).expect("running");
    assert!(
        stopped.success(),
        "the halted validator stopped with {stopped}"
    );
    c.bins[LATE] = new.clone();
    c.restart(LATE);
    let head = c.height(0).expect("height");
    c.wait_height(&[LATE], head + 2, LIMIT);
    let s = status(&c, LATE);
    assert_eq!(s["protocol"]["version"].as_u64(), Some(2), "{s}");
    assert!(s["protocol"]["halted"].is_null(), "{s}");
    // With one validator stopped, the late one's vote is needed for every block: it votes.
    c.stop(0).expect("running");
    commits(
        &c,
        LATE,
        3,
        "with validator 0 stopped and the late one voting",
    );
    let last = c.height(LATE).expect("height");
    assert_eq!(c.block_at(LATE, last), c.block_at(1, last));
}
