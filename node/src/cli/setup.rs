//! Operator commands: keys, genesis generation, running a node, and the dev chain.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{bail, Context};
use quorate_genesis::{
    dev_account_key, dev_genesis, dev_validator_key, Genesis, KeyFile, DEV_ACCOUNTS,
};
use serde_json::json;

use super::{DevArgs, GenesisCommand, KeysCommand};
use crate::config::{LogFormat, NodeConfig, CONFIG_FILE};
use crate::node::{NodeSetup, RunningNode};

/// Name of the file where a running node writes its bound gRPC address.
pub const GRPC_ADDR_FILE: &str = "grpc.addr";
/// Name of the file where a cluster node writes its bound libp2p address.
pub const P2P_ADDR_FILE: &str = "p2p.addr";

pub(super) fn keys(cmd: KeysCommand) -> anyhow::Result<ExitCode> {
    match cmd {
        KeysCommand::Generate { out, force, json } => {
            if out.exists() && !force {
                bail!("{} exists; pass --force to overwrite", out.display());
            }
            let key = quorate_proto::Keypair::generate();
            KeyFile::save(&key, &out)?;
            print_key(&out, &key, json);
        }
        KeysCommand::Show { file, json } => {
            let key = KeyFile::load(&file)?;
            print_key(&file, &key, json);
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn print_key(path: &Path, key: &quorate_proto::Keypair, json: bool) {
    if json {
        println!(
            "{}",
            json!({"file": path.display().to_string(), "address": key.address().to_hex(), "public_key": key.public().to_hex()})
        );
    } else {
        println!(
            "key file:   {}\naddress:    {}\npublic key: {}",
            path.display(),
            key.address(),
            key.public().to_hex()
        );
    }
}

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

pub(super) fn genesis(cmd: GenesisCommand) -> anyhow::Result<ExitCode> {
    let GenesisCommand::New {
        validators,
        out,
        chain_id,
        accounts,
        balance,
        grpc_port,
        p2p_port,
    } = cmd;
    write_chain(
        &out, &chain_id, validators, accounts, balance, grpc_port, p2p_port,
    )?;
    Ok(ExitCode::SUCCESS)
}

/// Writes a new chain into `out`: genesis, account keys, and one home per validator whose
/// config lists every other validator as a p2p peer.
pub(super) fn write_chain(
    out: &Path,
    chain_id: &str,
    validators: usize,
    accounts: usize,
    balance: u64,
    grpc_port: u16,
    p2p_port: u16,
) -> anyhow::Result<()> {
    let written = write_chain_quietly(
        out, chain_id, validators, accounts, balance, grpc_port, p2p_port, 0,
    )?;
    for line in &written.lines {
        println!("{line}");
    }
    Ok(())
}

/// What `write_chain_quietly` wrote: a line per validator, account and the genesis, and the
/// funded accounts' keys.
pub(super) struct WrittenChain {
    /// Human-readable summary lines.
    pub lines: Vec<String>,
    /// Keys of the funded accounts, in order (`keys/account-N.json`).
    pub account_keys: Vec<quorate_proto::Keypair>,
}

/// `write_chain` without printing; `extra_funded` more accounts (no key files, 1,000 tokens
/// each, addresses derived from their index) make a large state for measurements.
#[allow(clippy::too_many_arguments)]
pub(super) fn write_chain_quietly(
    out: &Path,
    chain_id: &str,
    validators: usize,
    accounts: usize,
    balance: u64,
    grpc_port: u16,
    p2p_port: u16,
    extra_funded: usize,
) -> anyhow::Result<WrittenChain> {
    let mut lines = Vec::new();
    if validators == 0 {
        bail!("--validators must be at least 1");
    }
    if out.join("genesis.json").exists() {
        bail!(
            "{} already holds a genesis.json; choose another --out",
            out.display()
        );
    }
    let mut generated =
        quorate_genesis::generate(chain_id, validators, accounts, balance, now_ms())?;
    if extra_funded > 0 {
        generated
            .genesis
            .accounts
            .extend((0..extra_funded as u64).map(|i| {
                quorate_genesis::GenesisAccount {
                    name: String::new(),
                    address: hex::encode(
                        &quorate_proto::Hash32::of(
                            &[b"quorate/bench/funded/".as_slice(), &i.to_le_bytes()].concat(),
                        )
                        .0[..20],
                    ),
                    balance: 1_000,
                }
            }));
        generated.genesis.validate()?;
    }
    std::fs::create_dir_all(out.join("keys"))
        .with_context(|| format!("creating {}", out.display()))?;
    generated.genesis.save(&out.join("genesis.json"))?;
    let port = |base: u16, i: usize, what: &str| {
        u16::try_from(i)
            .ok()
            .and_then(|i| base.checked_add(i))
            .with_context(|| format!("{what} port overflows"))
    };
    let mut p2p_addrs = Vec::with_capacity(validators);
    for (i, key) in generated.validator_keys.iter().enumerate() {
        let peer = crate::network::peer_id_of(&key.public())?;
        p2p_addrs.push(format!(
            "/ip4/127.0.0.1/tcp/{}/p2p/{peer}",
            port(p2p_port, i, "p2p")?
        ));
    }
    for (i, key) in generated.validator_keys.iter().enumerate() {
        let home = out.join(format!("node-{i}"));
        std::fs::create_dir_all(&home).with_context(|| format!("creating {}", home.display()))?;
        generated.genesis.save(&home.join("genesis.json"))?;
        KeyFile::save(key, &home.join("validator.key.json"))?;
        let grpc = port(grpc_port, i, "gRPC")?;
        let mut config = NodeConfig {
            grpc_addr: ([127, 0, 0, 1], grpc).into(),
            ..NodeConfig::default()
        };
        config.p2p.listen_addr = format!("/ip4/127.0.0.1/tcp/{}", port(p2p_port, i, "p2p")?);
        config.p2p.peers = p2p_addrs
            .iter()
            .enumerate()
            .filter(|&(j, _)| j != i)
            .map(|(_, a)| a.clone())
            .collect();
        std::fs::write(home.join(CONFIG_FILE), config.to_toml())?;
        lines.push(format!(
            "validator {i}: home {}  grpc 127.0.0.1:{grpc}  p2p {}  key {}",
            home.display(),
            p2p_addrs[i],
            key.public().to_hex()
        ));
    }
    for (i, key) in generated.account_keys.iter().enumerate() {
        let path = out.join("keys").join(format!("account-{i}.json"));
        KeyFile::save(key, &path)?;
        lines.push(format!(
            "account {i}: {}  {}  balance {balance}",
            path.display(),
            key.address()
        ));
    }
    lines.push(format!(
        "genesis: {}  chain {}  hash {}",
        out.join("genesis.json").display(),
        chain_id,
        generated.genesis.hash()
    ));
    Ok(WrittenChain {
        lines,
        account_keys: generated.account_keys,
    })
}

fn init_logging(format: LogFormat, filter: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(filter));
    // Colour codes only for a person at a terminal, never in a file or a log collector.
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(ansi)
        .with_writer(std::io::stderr);
    let _ = match format {
        LogFormat::Json => builder.json().try_init(),
        LogFormat::Text => builder.try_init(),
    };
}

/// Runs the node in `home` until a signal; `grpc_addr` overrides the config's.
pub(super) fn run_node(
    home: &Path,
    grpc_addr: Option<std::net::SocketAddr>,
    byzantine: crate::byzantine::Byzantine,
) -> anyhow::Result<ExitCode> {
    let mut setup = NodeSetup::from_home(home)
        .with_context(|| format!("loading node home {}", home.display()))?;
    setup.byzantine = byzantine;
    if let Some(addr) = grpc_addr {
        setup.config.grpc_addr = addr;
    }
    init_logging(setup.config.log.format, &setup.config.log.filter);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("quorate-rt")
        .build()
        .context("starting the async runtime")?;
    runtime.block_on(async {
        let node = RunningNode::start(setup).await?;
        let addr_file = home.join(GRPC_ADDR_FILE);
        std::fs::write(&addr_file, node.grpc_addr.to_string())
            .with_context(|| format!("writing {}", addr_file.display()))?;
        println!("grpc listening on {}", node.grpc_addr);
        if let Some(p2p) = &node.p2p_addr {
            let p2p_file = home.join(P2P_ADDR_FILE);
            std::fs::write(&p2p_file, p2p.to_string())
                .with_context(|| format!("writing {}", p2p_file.display()))?;
            println!("p2p listening on {p2p}");
        }
        node.run_until_signal().await?;
        anyhow::Ok(())
    })?;
    Ok(ExitCode::SUCCESS)
}

fn default_dev_home() -> anyhow::Result<PathBuf> {
    let home = std::env::var_os("HOME").context("HOME is not set; pass --home")?;
    Ok(PathBuf::from(home).join(".quorate").join("dev"))
}

pub(super) fn dev(args: DevArgs) -> anyhow::Result<ExitCode> {
    let home = match args.home {
        Some(h) => h,
        None => default_dev_home()?,
    };
    let genesis: Genesis = dev_genesis();
    std::fs::create_dir_all(home.join("keys"))
        .with_context(|| format!("creating {}", home.display()))?;
    let config_path = home.join(CONFIG_FILE);
    if !config_path.exists() {
        std::fs::write(&config_path, NodeConfig::default().to_toml())?;
    }
    if args.reset {
        let config = NodeConfig::load(&home)?;
        let data = NodeConfig::resolve(&home, &config.data_dir);
        if data.exists() {
            std::fs::remove_dir_all(&data)
                .with_context(|| format!("removing {}", data.display()))?;
        }
    }
    genesis.save(&home.join("genesis.json"))?;
    KeyFile::save(&dev_validator_key(), &home.join("validator.key.json"))?;
    println!(
        "quorate dev chain {} (home {})",
        genesis.chain_id,
        home.display()
    );
    println!("dev accounts (keys are public: never use them on a real chain):");
    for i in 0..DEV_ACCOUNTS as u32 {
        let key = dev_account_key(i);
        let path = home.join("keys").join(format!("dev-{i}.json"));
        KeyFile::save(&key, &path)?;
        println!("  dev-{i}  {}  {}", key.address(), path.display());
    }
    run_node(&home, args.grpc_addr, crate::byzantine::Byzantine::honest())
}
