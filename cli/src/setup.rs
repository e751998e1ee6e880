//! Operator commands: keys, genesis generation, running a node, and the dev chain.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{bail, Context};
use quorate_genesis::{
    dev_account_key, dev_genesis, dev_validator_key, Genesis, KeyFile, DEV_ACCOUNTS,
};
use serde_json::json;

use super::{DevArgs, GenesisCommand, KeysCommand, TlsCommand};
use quorate_node::config::{LogFormat, NodeConfig, CONFIG_FILE};
use quorate_node::node::{NodeSetup, RunningNode};

/// Name of the file where a running node writes its bound gRPC address.
pub const GRPC_ADDR_FILE: &str = "grpc.addr";
/// File in a node's home holding the bound metrics address.
pub const METRICS_ADDR_FILE: &str = "metrics.addr";
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
        KeysCommand::Multisig(args) => return super::key_sets::multisig(args),
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
    match cmd {
        GenesisCommand::New { out, layout } => {
            write_chain(&out, &layout)?;
            Ok(ExitCode::SUCCESS)
        }
        GenesisCommand::Entry(args) => super::ceremony::entry(args),
        GenesisCommand::Assemble(args) => super::ceremony::assemble(args),
        GenesisCommand::Check(args) => super::ceremony::check(args),
    }
}

/// What a new chain looks like: its genesis and where each validator listens.
#[derive(clap::Args, Clone, Debug)]
pub struct ChainLayout {
    /// Chain id.
    #[arg(long, default_value = "quorate-local")]
    pub chain_id: String,
    /// Number of validators (n = 3f+1 tolerates f faulty ones).
    #[arg(long, default_value_t = 1)]
    pub validators: usize,
    /// Funded accounts to create (with key files).
    #[arg(long, default_value_t = 4)]
    pub accounts: usize,
    /// Balance of each funded account.
    #[arg(long, default_value_t = 1_000_000_000_000)]
    pub balance: u64,
    /// gRPC port (validators on one host take consecutive ports from it).
    #[arg(long, default_value_t = 7050)]
    pub grpc_port: u16,
    /// libp2p port (validators on one host take consecutive ports from it).
    #[arg(long, default_value_t = 7060)]
    pub p2p_port: u16,
    /// Serve Prometheus metrics from this port on (validators on one host take
    /// consecutive ports); off when not given.
    #[arg(long)]
    pub metrics_port: Option<u16>,
    /// The host of each validator, comma-separated, one per validator (IPv4 addresses or
    /// DNS names); without it every validator is on 127.0.0.1.
    #[arg(long, value_delimiter = ',')]
    pub hosts: Vec<String>,
    /// Name this release's contract engine in genesis, so that trusted deployers may deploy
    /// precompiled machine code (ADR 0010). Every validator must then run a release with the
    /// same engine (on x86-64 Linux: the same wasmtime and ABI), and a new engine means a new
    /// chain until engine upgrades land; without it the chain takes bytecode only.
    #[arg(long)]
    pub precompiled_contracts: bool,
    /// More funded accounts without key files (1,000 tokens each, addresses derived from
    /// their index), for a large state in measurements.
    #[arg(skip)]
    pub extra_funded: usize,
}

impl ChainLayout {
    /// A chain of `validators` on loopback.
    pub fn loopback(chain_id: &str, validators: usize, accounts: usize, balance: u64) -> Self {
        Self {
            chain_id: chain_id.to_owned(),
            validators,
            accounts,
            balance,
            grpc_port: 7050,
            p2p_port: 7060,
            metrics_port: None,
            hosts: Vec::new(),
            precompiled_contracts: false,
            extra_funded: 0,
        }
    }
}

/// Writes a new chain into `out`: genesis, account keys, and one home per validator whose
/// config lists every other validator as a p2p peer; prints what it wrote.
pub(super) fn write_chain(out: &Path, layout: &ChainLayout) -> anyhow::Result<()> {
    let written = write_chain_quietly(out, layout)?;
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

/// `write_chain` without printing.
pub(super) fn write_chain_quietly(
    out: &Path,
    layout: &ChainLayout,
) -> anyhow::Result<WrittenChain> {
    let ChainLayout {
        chain_id,
        validators,
        accounts,
        balance,
        grpc_port,
        p2p_port,
        metrics_port,
        hosts,
        precompiled_contracts,
        extra_funded,
    } = layout.clone();
    let mut lines = Vec::new();
    if validators == 0 {
        bail!("--validators must be at least 1");
    }
    if !hosts.is_empty() && hosts.len() != validators {
        bail!(
            "--hosts names {} hosts for {validators} validators; give one per validator",
            hosts.len()
        );
    }
    if out.join("genesis.json").exists() {
        bail!(
            "{} already holds a genesis.json; choose another --out",
            out.display()
        );
    }
    let mut generated =
        quorate_genesis::generate(&chain_id, validators, accounts, balance, now_ms())?;
    // Asked for: the chain runs this release's engine, machine code of trusted deployers is
    // built by it, and every validator must run it (ADR 0010).
    if precompiled_contracts {
        generated.genesis.engine_fingerprint =
            Some(quorate_node::contracts::engine_fingerprint(&generated.genesis.params)?.to_hex());
    }
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
    let host_of = |i: usize| hosts.get(i).map_or("127.0.0.1", String::as_str);
    // Validators sharing a host take consecutive ports.
    let offset = |i: usize| (0..i).filter(|&j| host_of(j) == host_of(i)).count();
    let port = |base: u16, i: usize, what: &str| {
        u16::try_from(offset(i))
            .ok()
            .and_then(|o| base.checked_add(o))
            .with_context(|| format!("{what} port overflows"))
    };
    // An IPv4 address is listened on as it is; a name is reached by DNS and listened on at
    // every address of its host.
    let ip_of = |host: &str| host.parse::<std::net::Ipv4Addr>().ok();
    let mut p2p_addrs = Vec::with_capacity(validators);
    for (i, key) in generated.validator_keys.iter().enumerate() {
        let peer = quorate_node::network::peer_id_of(&key.public())?;
        let host = host_of(i);
        let proto = if ip_of(host).is_some() { "ip4" } else { "dns4" };
        p2p_addrs.push(format!(
            "/{proto}/{host}/tcp/{}/p2p/{peer}",
            port(p2p_port, i, "p2p")?
        ));
    }
    for (i, key) in generated.validator_keys.iter().enumerate() {
        let home = out.join(format!("node-{i}"));
        std::fs::create_dir_all(&home).with_context(|| format!("creating {}", home.display()))?;
        generated.genesis.save(&home.join("genesis.json"))?;
        KeyFile::save(key, &home.join("validator.key.json"))?;
        let listen_ip = ip_of(host_of(i)).unwrap_or(std::net::Ipv4Addr::UNSPECIFIED);
        let grpc = port(grpc_port, i, "gRPC")?;
        let mut config = NodeConfig {
            grpc_addr: (listen_ip, grpc).into(),
            ..NodeConfig::default()
        };
        config.p2p.listen_addr = format!("/ip4/{listen_ip}/tcp/{}", port(p2p_port, i, "p2p")?);
        config.p2p.peers = p2p_addrs
            .iter()
            .enumerate()
            .filter(|&(j, _)| j != i)
            .map(|(_, a)| a.clone())
            .collect();
        if let Some(m) = metrics_port {
            config.metrics.addr = Some((listen_ip, port(m, i, "metrics")?).into());
        }
        // The explorer offers the other validators for cross-checking what a query reports.
        config.explorer.peer_urls = (0..validators)
            .filter(|&j| j != i)
            .map(|j| {
                Ok(format!(
                    "http://{}:{}",
                    host_of(j),
                    port(grpc_port, j, "gRPC")?
                ))
            })
            .collect::<anyhow::Result<_>>()?;
        std::fs::write(home.join(CONFIG_FILE), config.to_toml())?;
        lines.push(format!(
            "validator {i}: home {}  grpc {}:{grpc}  p2p {}{}  key {}",
            home.display(),
            host_of(i),
            p2p_addrs[i],
            config
                .metrics
                .addr
                .map(|a| format!("  metrics http://{}:{}/metrics", host_of(i), a.port()))
                .unwrap_or_default(),
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

/// Writes `contents` to `path` so that a reader sees the whole file or none: a temporary file
/// beside it, renamed over it. A plain write truncates first, and a load generator polling for
/// `grpc.addr` once read it empty (issue 24).
fn publish_file(path: &Path, contents: &str) -> anyhow::Result<()> {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, contents).with_context(|| format!("writing {}", tmp.display()))?;
    std::fs::rename(&tmp, path).with_context(|| format!("writing {}", path.display()))
}

/// Runs the node in `home` until a signal; `grpc_addr` overrides the config's.
pub(super) fn run_node(
    home: &Path,
    grpc_addr: Option<std::net::SocketAddr>,
    byzantine: quorate_node::byzantine::Byzantine,
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
    let explorer = setup.config.explorer.enabled;
    let scheme = if setup.config.grpc.tls.is_some() {
        "https"
    } else {
        "http"
    };
    runtime.block_on(async {
        let node = RunningNode::start(setup).await?;
        if explorer {
            println!("explorer on {scheme}://{}/explorer/", node.grpc_addr);
        }
        // `grpc.addr` last: whoever waits for it (scripts, tests) finds the others written.
        if let Some(m) = node.metrics_addr {
            publish_file(&home.join(METRICS_ADDR_FILE), &m.to_string())?;
            println!("metrics on http://{m}/metrics");
        }
        if let Some(p2p) = &node.p2p_addr {
            publish_file(&home.join(P2P_ADDR_FILE), &p2p.to_string())?;
            println!("p2p listening on {p2p}");
        }
        publish_file(&home.join(GRPC_ADDR_FILE), &node.grpc_addr.to_string())?;
        println!("grpc listening on {}", node.grpc_addr);
        node.run_until_signal().await?;
        anyhow::Ok(())
    })?;
    Ok(ExitCode::SUCCESS)
}

/// Arguments of `quorate node init`.
#[derive(clap::Args, Debug)]
pub struct InitArgs {
    /// Home directory to create (must not hold a node yet).
    #[arg(long)]
    pub home: PathBuf,
    /// The chain's genesis file.
    #[arg(long)]
    pub genesis: PathBuf,
    /// The node's key file (default: a new key, written into the home).
    #[arg(long)]
    pub key: Option<PathBuf>,
    /// gRPC listen address.
    #[arg(long, default_value = "127.0.0.1:7050")]
    pub grpc_addr: std::net::SocketAddr,
    /// libp2p listen address (multiaddr).
    #[arg(long, default_value = "/ip4/0.0.0.0/tcp/7150")]
    pub p2p_addr: String,
    /// A validator to connect to, as a multiaddr ending in /p2p/<peer id> (repeat); the
    /// validators' `p2p.addr` files or `quorate genesis new` output give them.
    #[arg(long = "peer", required = true)]
    pub peers: Vec<String>,
    /// Print machine-readable JSON.
    #[arg(long)]
    pub json: bool,
}

/// `quorate node init`.
pub(super) fn init_node(args: InitArgs) -> anyhow::Result<ExitCode> {
    let config_path = args.home.join(CONFIG_FILE);
    if config_path.exists() {
        bail!(
            "{} already holds a node; choose another --home",
            args.home.display()
        );
    }
    let genesis = Genesis::load(&args.genesis)
        .with_context(|| format!("genesis {}", args.genesis.display()))?;
    let key = match &args.key {
        Some(path) => {
            KeyFile::load(path).with_context(|| format!("key file {}", path.display()))?
        }
        None => quorate_proto::Keypair::generate(),
    };
    let mut config = NodeConfig {
        grpc_addr: args.grpc_addr,
        ..NodeConfig::default()
    };
    config.p2p.listen_addr = args.p2p_addr.clone();
    for p in &args.peers {
        let addr: libp2p::Multiaddr = p.parse().with_context(|| format!("peer address {p:?}"))?;
        if !addr
            .iter()
            .any(|x| matches!(x, libp2p::multiaddr::Protocol::P2p(_)))
        {
            bail!("peer address {p:?} must end in /p2p/<peer id>");
        }
    }
    config.p2p.peers = args.peers.clone();
    std::fs::create_dir_all(&args.home)
        .with_context(|| format!("creating {}", args.home.display()))?;
    genesis.save(&args.home.join("genesis.json"))?;
    KeyFile::save(&key, &args.home.join("validator.key.json"))?;
    std::fs::write(&config_path, config.to_toml())?;
    let peer_id = quorate_node::network::peer_id_of(&key.public())?;
    if args.json {
        println!(
            "{}",
            json!({
                "home": args.home.display().to_string(),
                "public_key": key.public().to_hex(),
                "peer_id": peer_id.to_string(),
                "chain_id": genesis.chain_id,
            })
        );
    } else {
        println!(
            "node home {} for chain {}\npublic key {}\npeer id {}\n\
             the chain's admin adds it with:\n  quorate admin add-validator {} --name <name> --from <admin key>\n\
             then start it: quorate node run --home {}",
            args.home.display(),
            genesis.chain_id,
            key.public().to_hex(),
            peer_id,
            key.public().to_hex(),
            args.home.display()
        );
    }
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
    let mut genesis: Genesis = dev_genesis();
    // The dev chain runs this release's engine, so its trusted account (dev-0) can deploy
    // precompiled contracts (ADR 0010); a release with another engine needs `--reset`.
    genesis.engine_fingerprint =
        Some(quorate_node::contracts::engine_fingerprint(&genesis.params)?.to_hex());
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
    run_node(
        &home,
        args.grpc_addr,
        quorate_node::byzantine::Byzantine::honest(),
    )
}

/// `quorate tls gen`: development certificates, and TLS turned on in the given node homes.
pub(super) fn tls(cmd: TlsCommand) -> anyhow::Result<ExitCode> {
    let TlsCommand::Gen {
        out,
        hosts,
        ca_dir,
        home,
        mutual,
        client_ca,
    } = cmd;
    let client_ca = client_ca
        .map(|f| {
            f.canonicalize()
                .with_context(|| format!("client CA file {}", f.display()))
        })
        .transpose()?;
    if hosts.is_empty() {
        bail!("--hosts needs at least one IP address or DNS name");
    }
    for h in &home {
        if !h.is_dir() {
            bail!("node home {} does not exist", h.display());
        }
        let config = NodeConfig::load(h).with_context(|| format!("node home {}", h.display()))?;
        if config.grpc.tls.is_some() {
            bail!("{} already has [grpc.tls]; edit it by hand", h.display());
        }
    }
    quorate_node::tls::generate(&out, &hosts, ca_dir.as_deref())?;
    let dir = out
        .canonicalize()
        .with_context(|| format!("resolving {}", out.display()))?;
    // A folder inside the node's home is named relative to it, so the home can move (to
    // another host, to /var/lib/quorate) with its certificates.
    let section_for = |home: Option<&Path>| {
        let name = |file: &str| {
            let path = dir.join(file);
            home.and_then(|h| h.canonicalize().ok())
                .and_then(|h| path.strip_prefix(h).ok().map(Path::to_path_buf))
                .unwrap_or(path)
        };
        let mut section = format!(
            "\n[grpc.tls]\ncert_file = {:?}\nkey_file = {:?}\n",
            name(quorate_node::tls::NODE_CERT),
            name(quorate_node::tls::NODE_KEY)
        );
        if mutual {
            let ca = client_ca
                .clone()
                .unwrap_or_else(|| name(quorate_node::tls::CA_CERT));
            section.push_str(&format!("client_ca_file = {ca:?}\n"));
        }
        section
    };
    for h in &home {
        use std::io::Write;
        let path = h.join(CONFIG_FILE);
        std::fs::OpenOptions::new()
            .append(true)
            .create(true)
            .open(&path)
            .and_then(|mut f| f.write_all(section_for(Some(h)).as_bytes()))
            .with_context(|| format!("writing {}", path.display()))?;
        // The edited config must still load.
        NodeConfig::load(h).with_context(|| format!("node home {}", h.display()))?;
    }
    println!(
        "wrote {}, a node certificate for {} and a client certificate to {}",
        match &ca_dir {
            Some(d) => format!("the CA of {}", d.display()),
            None => "a development CA".to_owned(),
        },
        hosts.join(", "),
        dir.display()
    );
    if home.is_empty() {
        println!("node config:{}", section_for(None));
    } else {
        println!(
            "TLS{} on in {} node home(s)",
            if mutual { " (mutual)" } else { "" },
            home.len()
        );
    }
    let client = dir.join(quorate_node::tls::CLIENT_CERT);
    let key = dir.join(quorate_node::tls::CLIENT_KEY);
    println!(
        "clients: quorate --ca {} --cert {} --key {} status --node https://{}:7050",
        dir.join(quorate_node::tls::CA_CERT).display(),
        client.display(),
        key.display(),
        hosts[0]
    );
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::publish_file;

    /// Finding 24: a reader that opened `grpc.addr` before the node published it again reads the
    /// whole earlier file (the new one is renamed over it), never one truncated under it, and a
    /// reader polling while the node publishes never reads an empty file.
    #[test]
    fn a_published_file_is_never_seen_empty_or_truncated() {
        use std::io::Read;
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("grpc.addr");
        publish_file(&path, "127.0.0.1:7050").expect("publish");
        let mut before = std::fs::File::open(&path).expect("open");
        publish_file(&path, "127.0.0.1:7051").expect("publish again");
        let mut read = String::new();
        before.read_to_string(&mut read).expect("read");
        assert_eq!(read, "127.0.0.1:7050", "the file was rewritten in place");
        assert_eq!(
            std::fs::read_to_string(&path).expect("read"),
            "127.0.0.1:7051"
        );
        assert!(
            !path.with_extension("tmp").exists(),
            "the temporary file is left"
        );

        let done = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let reader = {
            let (path, done) = (path.clone(), done.clone());
            std::thread::spawn(move || {
                let mut empty = 0usize;
                while !done.load(std::sync::atomic::Ordering::Relaxed) {
                    if std::fs::read_to_string(&path).is_ok_and(|s| s.is_empty()) {
                        empty += 1;
                    }
                }
                empty
            })
        };
        for port in 0..2_000u16 {
            publish_file(&path, &format!("127.0.0.1:{port}")).expect("publish");
        }
        done.store(true, std::sync::atomic::Ordering::Relaxed);
        assert_eq!(
            reader.join().expect("reader"),
            0,
            "a reader saw the file empty"
        );
    }
}
