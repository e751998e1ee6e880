//! `quorate bench` end to end: it starts its own validator on loopback, sets up and sends a
//! mixed workload (transfers, remittances, certificate batches), and reports every
//! transaction committed, with latencies, the validator's memory and a plot.

mod common;

use std::process::Command;

use common::bin;

#[test]
fn bench_runs_a_mixed_workload_and_reports_it() {
    let dir = tempfile::tempdir().expect("tempdir");
    let plot = dir.path().join("run.svg");
    // Ports of their own, by process id: 28000..32000, off the cluster tests' runs and below
    // the ephemeral range outgoing connections take ports from.
    let base = 28_000 + (std::process::id() % 1_000) as u16 * 4;
    let out = Command::new(bin())
        .args(["bench", "--validators", "1", "--workload", "mix"])
        .args(["--txs", "300", "--senders", "20", "--certs-per-tx", "2"])
        .args([
            "--clients",
            "3",
            "--batch",
            "16",
            "--timeout",
            "60s",
            "--json",
        ])
        .args(["--grpc-port", &base.to_string()])
        .args(["--p2p-port", &(base + 2).to_string()])
        .arg("--home")
        .arg(dir.path().join("cluster"))
        .arg("--plot")
        .arg(&plot)
        .env("RUST_LOG", "warn")
        .output()
        .expect("run quorate bench");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: serde_json::Value = serde_json::from_str(stdout.trim()).expect("JSON report");
    assert_eq!(report["txs"], 300);
    assert_eq!(report["accepted"], 300, "{report}");
    assert_eq!(report["committed"], 300, "{report}");
    assert_eq!(report["failed_in_execution"], 0, "{report}");
    assert!(report["certificates_per_s"].as_f64().unwrap_or(0.0) > 0.0);
    assert!(report["latency"]["max_ms"].as_f64().unwrap_or(0.0) > 0.0);
    assert!(report["latency"]["p50_ms"].as_f64() <= report["latency"]["max_ms"].as_f64());
    let usage = report["usage"].as_array().expect("usage");
    assert_eq!(usage.len(), 1);
    assert!(usage[0]["peak_rss_mib"].as_f64().unwrap_or(0.0) > 1.0);
    let svg = std::fs::read_to_string(&plot).expect("plot written");
    assert!(svg.starts_with("<svg"));
    // The validator ran without panicking.
    let log =
        std::fs::read_to_string(dir.path().join("cluster/node-0/node.log")).unwrap_or_default();
    assert!(!log.contains("panicked"), "{log}");
}
