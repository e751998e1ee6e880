//! `quorate snapshot …`: list a node's state snapshots, pack one into a file, and import such
//! a file into a node with no data.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{bail, Context};
use clap::Subcommand;
use quorate_genesis::Genesis;
use serde_json::json;

use quorate_node::config::NodeConfig;
use quorate_node::snapshot::{self, SnapshotStore, SnapshotSummary};
use quorate_node::storage::{Storage, StorageOptions};

/// `quorate snapshot …`
#[derive(Subcommand, Debug)]
pub enum SnapshotCommand {
    /// List the snapshots a node holds (taken every `storage.snapshot_interval` heights).
    List {
        /// Node home directory.
        #[arg(long)]
        home: PathBuf,
        /// Print machine-readable JSON.
        #[arg(long)]
        json: bool,
    },
    /// Write one of a node's snapshots to a single file to copy to another machine (works
    /// while the node runs). With no snapshot held and the node stopped, one is taken of its
    /// head first.
    Export {
        /// Node home directory.
        #[arg(long)]
        home: PathBuf,
        /// Height of the snapshot (default: the latest).
        #[arg(long)]
        height: Option<u64>,
        /// File to write.
        #[arg(long)]
        out: PathBuf,
        /// Print machine-readable JSON.
        #[arg(long)]
        json: bool,
    },
    /// Check a snapshot file against this node's genesis (certificate, state root, every
    /// chunk) and make it the node's database; the node must be stopped and hold no data.
    /// Started, it catches up from the snapshot's height by blocks.
    Import {
        /// Node home directory.
        #[arg(long)]
        home: PathBuf,
        /// Snapshot file (from `quorate snapshot export`).
        #[arg(long)]
        file: PathBuf,
        /// Trust anchor `HEIGHT:SET_HASH` (default: the node config's `storage.trust_height`
        /// and `storage.trust_validators_hash`): the snapshot must be at that height or later
        /// and prove that validator set there.
        #[arg(long)]
        trust: Option<snapshot::TrustAnchor>,
        /// Print machine-readable JSON.
        #[arg(long)]
        json: bool,
    },
}

/// Runs a snapshot command.
pub(super) fn run(cmd: SnapshotCommand) -> anyhow::Result<ExitCode> {
    match cmd {
        SnapshotCommand::List { home, json } => list(&home, json),
        SnapshotCommand::Export {
            home,
            height,
            out,
            json,
        } => export(&home, height, &out, json),
        SnapshotCommand::Import {
            home,
            file,
            trust,
            json,
        } => import(&home, &file, trust, json),
    }
}

/// The node's config, with its data and snapshot directories resolved.
fn node_dirs(home: &Path) -> anyhow::Result<(NodeConfig, PathBuf, SnapshotStore)> {
    let config =
        NodeConfig::load(home).with_context(|| format!("loading node home {}", home.display()))?;
    let data = NodeConfig::resolve(home, &config.data_dir);
    let store = SnapshotStore::new(NodeConfig::resolve(home, &config.storage.snapshot_dir));
    Ok((config, data, store))
}

fn summary_json(s: &SnapshotSummary) -> serde_json::Value {
    json!({
        "height": s.height,
        "state_root": s.state_root.to_hex(),
        "chunks": s.chunks,
        "entries": s.entries,
        "codes": s.codes,
        "bytes": s.bytes,
    })
}

fn list(home: &Path, json: bool) -> anyhow::Result<ExitCode> {
    let (_, _, store) = node_dirs(home)?;
    let mut out = Vec::new();
    for h in store.heights()? {
        out.push(SnapshotSummary::of(&store.manifest(h)?));
    }
    if json {
        println!(
            "{}",
            serde_json::Value::Array(out.iter().map(summary_json).collect())
        );
    } else if out.is_empty() {
        println!("no snapshot in {}", store.dir().display());
    } else {
        for s in &out {
            println!(
                "height {:>10}  state root {}  {} chunks, {} entries, {} bytes",
                s.height, s.state_root, s.chunks, s.entries, s.bytes
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn export(home: &Path, height: Option<u64>, out: &Path, json: bool) -> anyhow::Result<ExitCode> {
    let (_, data, store) = node_dirs(home)?;
    let height = match (height, store.latest()?) {
        (Some(h), _) | (None, Some(h)) => h,
        (None, None) => take_offline(&data, &store)?,
    };
    let s = snapshot::export(&store, height, out)?;
    if json {
        let mut v = summary_json(&s);
        v["file"] = json!(out.display().to_string());
        println!("{v}");
    } else {
        println!(
            "exported the snapshot of height {} (state root {}) to {}: {} chunks, {} entries, {} bytes",
            s.height,
            s.state_root,
            out.display(),
            s.chunks,
            s.entries,
            s.bytes
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// Takes a snapshot of a stopped node's head into its store; returns its height.
fn take_offline(data: &Path, store: &SnapshotStore) -> anyhow::Result<u64> {
    if !data.join("CURRENT").exists() {
        bail!(
            "no snapshot in {} and no database in {}",
            store.dir().display(),
            data.display()
        );
    }
    let storage = Storage::open(data, &StorageOptions::default()).map_err(|e| {
        anyhow::anyhow!(
            "no snapshot in {} yet, and the database cannot be opened to take one ({e}); if the node runs, wait for its next snapshot (storage.snapshot_interval) or stop it",
            store.dir().display()
        )
    })?;
    let (chain_id, genesis_hash) = storage
        .chain_identity()?
        .context("the database holds no chain")?;
    let taken = snapshot::take(&storage, store, &chain_id, &genesis_hash, || {})?;
    let head = storage.head()?;
    Ok(taken.map_or(head.height, |s| s.height))
}

fn import(
    home: &Path,
    file: &Path,
    trust: Option<snapshot::TrustAnchor>,
    json: bool,
) -> anyhow::Result<ExitCode> {
    let (config, data, _) = node_dirs(home)?;
    let anchor = match trust {
        Some(a) => Some(a),
        None => config.storage.trust_anchor()?,
    };
    let genesis_path = NodeConfig::resolve(home, &config.genesis_file);
    let genesis = Genesis::load(&genesis_path)
        .with_context(|| format!("loading genesis {}", genesis_path.display()))?;
    let s = snapshot::import_file(
        file,
        &data,
        &genesis.chain_id,
        &genesis.hash(),
        &genesis.validator_set(),
        anchor.as_ref(),
    )?;
    if json {
        println!(
            "{}",
            json!({
                "height": s.head.height,
                "block_hash": s.head.hash.to_hex(),
                "state_root": s.head.state_root.to_hex(),
                "chunks": s.chunks,
                "entries": s.entries,
                "codes": s.codes,
                "data_dir": data.display().to_string(),
            })
        );
    } else {
        println!(
            "imported the snapshot of height {} (block {}, state root {}) into {}: {} chunks, {} entries, {} contract codes; start the node to catch up from height {}",
            s.head.height,
            s.head.hash,
            s.head.state_root,
            data.display(),
            s.chunks,
            s.entries,
            s.codes,
            s.head.height + 1
        );
    }
    Ok(ExitCode::SUCCESS)
}
