//! Shared helpers for integration tests: a `quorate dev` process on loopback that is killed
//! when dropped, and a CLI runner.
#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

pub mod cluster;
pub mod hosts;

/// Path of the built `quorate` binary.
pub fn bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_quorate"))
}

/// The Python that has the `quorate` package (clients/python) installed, for the examples in
/// clients/python: `QUORATE_PYTHON`, else the test command's virtual environment
/// (`<target>/py-venv`, which scripts/test.sh fills before the Rust tests run).
pub fn python() -> PathBuf {
    if let Some(p) = std::env::var_os("QUORATE_PYTHON") {
        return PathBuf::from(p);
    }
    let target = std::env::var_os("CARGO_TARGET_DIR").map_or_else(
        || PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../target")),
        PathBuf::from,
    );
    let venv = target.join("py-venv").join("bin").join("python");
    assert!(
        venv.exists(),
        "no Python with the quorate package at {}: run scripts/test.sh, or set QUORATE_PYTHON to a python that has `pip install ./clients/python`",
        venv.display()
    );
    venv
}

/// A `quorate dev` process.
pub struct DevNode {
    pub child: Child,
    pub url: String,
    pub home: PathBuf,
}

impl DevNode {
    /// Starts `quorate dev --home HOME` on a free loopback port and waits (bounded) until it
    /// serves gRPC.
    pub fn start(home: &Path) -> DevNode {
        Self::start_with(home, &[])
    }

    /// Starts it with configuration overrides (`QUORATE_CFG_*` variables).
    pub fn start_with(home: &Path, config: &[(&str, &str)]) -> DevNode {
        let mut child = Command::new(bin())
            .args(["dev", "--home"])
            .arg(home)
            .args(["--grpc-addr", "127.0.0.1:0"])
            .env("QUORATE_CFG_BLOCK__INTERVAL_MS", "20")
            .envs(config.iter().copied())
            .env("RUST_LOG", "warn")
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn quorate dev");
        let stdout = child.stdout.take().expect("stdout");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if let Some(addr) = line.strip_prefix("grpc listening on ") {
                    let _ = tx.send(addr.trim().to_owned());
                }
            }
        });
        let addr = match rx.recv_timeout(Duration::from_secs(60)) {
            Ok(a) => a,
            Err(_) => {
                let _ = child.kill();
                panic!("quorate dev did not start within 60 s");
            }
        };
        DevNode {
            child,
            url: format!("http://{addr}"),
            home: home.to_owned(),
        }
    }

    /// A gRPC channel to this node.
    pub async fn channel(&self) -> tonic::transport::Channel {
        tonic::transport::Endpoint::from_shared(self.url.clone())
            .expect("url")
            .connect()
            .await
            .expect("connect")
    }

    /// SIGKILL, no shutdown of any kind.
    pub fn kill(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Key file of dev account `i`.
    pub fn key(&self, i: usize) -> PathBuf {
        self.home.join("keys").join(format!("dev-{i}.json"))
    }

    /// Runs a client command against this node; returns (exit code, stdout).
    pub fn cli(&self, args: &[&str]) -> (i32, String) {
        let out = Command::new(bin())
            .args(args)
            .args(["--node", &self.url])
            .output()
            .expect("run quorate");
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stdout).into_owned(),
        )
    }

    /// Runs a client command with `--json` and parses its output.
    pub fn cli_json(&self, args: &[&str]) -> (i32, serde_json::Value) {
        let mut all = args.to_vec();
        all.push("--json");
        let (code, out) = self.cli(&all);
        let v =
            serde_json::from_str(out.trim()).unwrap_or_else(|e| panic!("not JSON ({e}): {out}"));
        (code, v)
    }
}

impl Drop for DevNode {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Address of dev account `i`.
pub fn dev_address(i: u32) -> String {
    quorate_genesis::dev_account_key(i).address().to_hex()
}
