//! A short, seeded slice of the fault campaign (`scripts/chaos.sh` runs long ones): four
//! validators under load while they are killed, paused and (as root, in a network namespace
//! this test creates and removes) partitioned; nothing acknowledged is lost, no block differs,
//! every validator is alive at the end.

mod common;

use std::process::Command;

#[test]
fn a_seeded_slice_of_chaos_loses_nothing() {
    let bin = common::bin();
    let root = Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0");
    let ns = format!("quorate-chaos-test-{}", std::process::id());
    let in_netns = root
        && Command::new("ip")
            .args(["netns", "add", &ns])
            .status()
            .is_ok_and(|s| s.success());
    let mut cmd = if in_netns {
        let _ = Command::new("ip")
            .args(["netns", "exec", &ns, "ip", "link", "set", "lo", "up"])
            .status();
        let mut c = Command::new("ip");
        c.args(["netns", "exec", &ns])
            .arg(&bin)
            .arg("chaos")
            .arg("--own-netns");
        c
    } else {
        eprintln!("not root: this slice runs without partitions");
        let mut c = Command::new(&bin);
        c.arg("chaos");
        c
    };
    // Off the cluster tests' ports (10000..28000) and the ephemeral range, in case of no namespace.
    let port = 61_000 + (std::process::id() % 20) * 200;
    let out = cmd
        .args(["--seconds", "20", "--seed", "7", "--json"])
        .args(["--port", &port.to_string()])
        .output()
        .expect("run quorate chaos");
    if in_netns {
        let _ = Command::new("ip").args(["netns", "del", &ns]).status();
    }
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "chaos failed: {stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_str(&stdout).expect("json");
    assert_eq!(v["lost"], 0, "{v}");
    assert_eq!(v["diverging_blocks"], 0, "{v}");
    assert_eq!(v["all_alive"], true, "{v}");
    assert!(
        v["acknowledged"].as_u64() > Some(0),
        "the load committed nothing: {v}"
    );
    assert!(
        v["kills"].as_u64().unwrap_or(0) + v["pauses"].as_u64().unwrap_or(0) > 0,
        "no fault was injected: {v}"
    );
    println!("{v}");
}
