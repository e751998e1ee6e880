//! `quorate localnet`: a cluster of validators as separate processes on loopback.

use std::path::{Path, PathBuf};
use std::process::{ExitCode, Stdio};
use std::time::Duration;

use anyhow::{bail, Context};
use tokio::process::{Child, Command};

use super::setup::{write_chain, ChainLayout, GRPC_ADDR_FILE};
use super::LocalnetArgs;
use quorate_node::config::CONFIG_FILE;

/// Balance of each funded localnet account.
const LOCALNET_BALANCE: u64 = 1_000_000_000_000;
/// Longest a validator may take to start serving.
const START_TIMEOUT: Duration = Duration::from_secs(60);
/// Longest a validator may take to stop after SIGTERM.
const STOP_TIMEOUT: Duration = Duration::from_secs(15);

/// The node homes (`node-N/`) of a cluster directory.
pub(super) fn node_homes(home: &Path) -> Vec<PathBuf> {
    (0..)
        .map(|i| home.join(format!("node-{i}")))
        .take_while(|h| h.join(CONFIG_FILE).exists())
        .collect()
}

/// Generates the cluster (or reuses `--home`), starts every validator, prints their gRPC
/// addresses, and stops them all on Ctrl-C or SIGTERM.
pub(super) fn run(args: LocalnetArgs) -> anyhow::Result<ExitCode> {
    let home = args.home;
    if home.join("genesis.json").exists() {
        println!("reusing the cluster in {}", home.display());
    } else {
        let layout = ChainLayout {
            grpc_port: args.grpc_port,
            p2p_port: args.p2p_port,
            metrics_port: Some(args.metrics_port),
            // One binary runs every validator of a localnet: it may take machine code.
            precompiled_contracts: true,
            ..ChainLayout::loopback(
                "quorate-localnet",
                args.validators,
                args.accounts,
                LOCALNET_BALANCE,
            )
        };
        write_chain(&home, &layout)?;
    }
    let homes = node_homes(&home);
    if homes.is_empty() {
        bail!("{} holds no node-0/{CONFIG_FILE}", home.display());
    }
    let exe = std::env::current_exe().context("locating the quorate binary")?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    runtime.block_on(async move {
        let mut children = start_validators(&exe, &homes)?;
        let outcome = serve(&homes, &mut children).await;
        stop(&mut children).await;
        outcome
    })?;
    Ok(ExitCode::SUCCESS)
}

/// Starts `quorate node run` in each home, logging to its `node.log`.
pub(super) fn start_validators(exe: &Path, homes: &[PathBuf]) -> anyhow::Result<Vec<Child>> {
    let mut children = Vec::with_capacity(homes.len());
    for h in homes {
        let _ = std::fs::remove_file(h.join(GRPC_ADDR_FILE));
        let log = std::fs::File::create(h.join("node.log"))
            .with_context(|| format!("creating {}", h.join("node.log").display()))?;
        let child = Command::new(exe)
            .args(["node", "run", "--home"])
            .arg(h)
            .stdout(Stdio::null())
            .stderr(log)
            .kill_on_drop(true)
            .spawn()
            .with_context(|| format!("starting the validator in {}", h.display()))?;
        children.push(child);
    }
    Ok(children)
}

async fn serve(homes: &[PathBuf], children: &mut [Child]) -> anyhow::Result<()> {
    for (i, (h, child)) in homes.iter().zip(children.iter_mut()).enumerate() {
        let addr = wait_for_addr(h, child).await?;
        println!(
            "validator {i}: grpc http://{addr}  home {}  log {}",
            h.display(),
            h.join("node.log").display()
        );
    }
    let first = std::fs::read_to_string(homes[0].join(GRPC_ADDR_FILE)).unwrap_or_default();
    println!(
        "{} validators running; submit with e.g. `quorate status --node http://{first}`; Ctrl-C stops them",
        homes.len(),
    );
    println!("explorer: http://{first}/explorer/ (every validator serves it)");
    tokio::select! {
        _ = shutdown_signal() => {
            println!("stopping the validators");
            Ok(())
        }
        (i, status) = first_exit(children) => {
            bail!("validator {i} exited ({status}); see its node.log")
        }
    }
}

/// Waits (bounded) until the validator in `home` serves gRPC; returns its address.
pub(super) async fn wait_for_addr(home: &Path, child: &mut Child) -> anyhow::Result<String> {
    let deadline = tokio::time::Instant::now() + START_TIMEOUT;
    loop {
        // The node publishes the file whole (renamed into place); an empty one is still
        // taken as not there yet, for a node of an older version.
        if let Ok(addr) = std::fs::read_to_string(home.join(GRPC_ADDR_FILE)) {
            if !addr.trim().is_empty() {
                return Ok(addr.trim().to_owned());
            }
        }
        if let Some(status) = child.try_wait()? {
            bail!(
                "the validator in {} exited ({status}); see {}",
                home.display(),
                home.join("node.log").display()
            );
        }
        if tokio::time::Instant::now() > deadline {
            bail!("the validator in {} did not start in time", home.display());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn first_exit(children: &mut [Child]) -> (usize, String) {
    loop {
        for (i, c) in children.iter_mut().enumerate() {
            if let Ok(Some(status)) = c.try_wait() {
                return (i, status.to_string());
            }
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// SIGTERM to every validator (they shut down cleanly), SIGKILL to any still running after
/// the timeout.
pub(super) async fn stop(children: &mut [Child]) {
    for c in children.iter() {
        if let Some(pid) = c.id() {
            let _ = std::process::Command::new("kill")
                .args(["-TERM", &pid.to_string()])
                .status();
        }
    }
    for c in children.iter_mut() {
        if tokio::time::timeout(STOP_TIMEOUT, c.wait()).await.is_err() {
            let _ = c.start_kill();
            let _ = c.wait().await;
        }
    }
}

async fn shutdown_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    match signal(SignalKind::terminate()) {
        Ok(mut term) => {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
        }
        Err(_) => {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}
