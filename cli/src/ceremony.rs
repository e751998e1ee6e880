//! `quorate genesis entry|assemble|check`: the key ceremony of a consortium (issue 28). Each
//! organisation makes its keys and signed entry on its own host; whoever assembles needs only
//! the entries; each organisation checks the result. No command writes another organisation's
//! secret.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{bail, Context};
use clap::Args;
use quorate_genesis::ceremony::{self, Authority, Entry};
use quorate_genesis::{ChainParams, Genesis, GenesisAccount, KeyFile};
use serde_json::json;

/// `quorate genesis entry`
#[derive(Args, Debug)]
pub struct EntryArgs {
    /// The chain the entry is for.
    #[arg(long)]
    pub chain_id: String,
    /// The organisation's name (its validator's name in the genesis).
    #[arg(long)]
    pub name: String,
    /// The organisation's directory on its own host: its validator key
    /// (`validator.key.json`, made unless there), account keys (`keys/`) and `entry.json`.
    #[arg(long)]
    pub dir: PathBuf,
    /// Where its validator listens for peers (`/ip4/HOST/tcp/PORT` or `/dns4/NAME/tcp/PORT`);
    /// the peer id is added from the key.
    #[arg(long)]
    pub p2p_addr: Option<String>,
    /// Accounts to make and fund.
    #[arg(long, default_value_t = 1)]
    pub accounts: usize,
    /// Balance of each.
    #[arg(long, default_value_t = 1_000_000_000)]
    pub balance: u64,
    /// The account that approves governance proposals for the organisation (an address, e.g.
    /// of a multi-key account, funded some other way; default: a new key `member.key.json` in
    /// `--dir`, funded with `--balance`).
    #[arg(long)]
    pub member: Option<String>,
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
}

/// `quorate genesis assemble`
#[derive(Args, Debug)]
pub struct AssembleArgs {
    /// The chain's id (every entry must be for it).
    #[arg(long)]
    pub chain_id: String,
    /// An organisation's entry file (repeat; the order does not matter).
    #[arg(long = "entry", required = true)]
    pub entries: Vec<PathBuf>,
    /// The chain's start, ms since the Unix epoch (every assembler must use the same to get
    /// the same genesis).
    #[arg(long)]
    pub genesis_time_ms: u64,
    /// The admin account (one of the entries' accounts). Without it or `--governance`: no
    /// administration.
    #[arg(long, conflicts_with = "governance")]
    pub admin: Option<String>,
    /// Govern the chain by the organisations (ADR 0016): each entry's member approves, and
    /// every kind of action needs this many approvals (change one with `--threshold`).
    #[arg(long, value_name = "K")]
    pub governance: Option<u32>,
    /// Approvals one kind of action needs: `KIND=K` with KIND one of validators, deployers,
    /// params, upgrades, policy (repeat).
    #[arg(long = "threshold", value_name = "KIND=K", requires = "governance")]
    pub thresholds: Vec<String>,
    /// Heights a proposal stays open for approvals.
    #[arg(long, default_value_t = 1_000, requires = "governance")]
    pub proposal_lifetime: u64,
    /// The chain parameters (a JSON file of `ChainParams`; missing fields take their
    /// defaults). Default: every parameter at its default.
    #[arg(long)]
    pub params: Option<PathBuf>,
    /// Where to write the genesis.
    #[arg(long)]
    pub out: PathBuf,
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
}

/// `quorate genesis check`
#[derive(Args, Debug)]
pub struct CheckArgs {
    /// The assembled genesis.
    #[arg(long)]
    pub genesis: PathBuf,
    /// This organisation's own entry.
    #[arg(long)]
    pub entry: PathBuf,
    /// Every other organisation's entry, as handed round (repeat): the genesis must be exactly
    /// what all the entries assemble to.
    #[arg(long = "with")]
    pub others: Vec<PathBuf>,
    /// The governance the organisations agreed on: the genesis must be governed by its
    /// entries' members with this many approvals for every kind but those `--threshold`
    /// names (without it, the check prints the assembler's choice for you to read).
    #[arg(long, value_name = "K")]
    pub governance: Option<u32>,
    /// With `--governance`: the approvals one kind needs, `KIND=K` (repeat).
    #[arg(long = "threshold", value_name = "KIND=K", requires = "governance")]
    pub thresholds: Vec<String>,
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
}

/// The entry in `path`, its signature checked and its p2p address (if any) ending in its own
/// validator's peer id.
fn read_entry(path: &Path) -> anyhow::Result<Entry> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let entry = Entry::from_json(&text)
        .with_context(|| format!("{} is not a genesis entry", path.display()))?;
    entry.verify()?;
    if !entry.p2p_address.is_empty() {
        let key = quorate_proto::PublicKey::from_hex(&entry.validator_key)?;
        let peer = quorate_node::network::peer_id_of(&key)?;
        let addr: libp2p::Multiaddr = entry
            .p2p_address
            .parse()
            .with_context(|| format!("entry {:?}: p2p address", entry.name))?;
        if addr.iter().last() != Some(libp2p::multiaddr::Protocol::P2p(peer)) {
            bail!(
                "entry {:?}: its p2p address {} does not end in its own validator's peer id {peer}",
                entry.name,
                entry.p2p_address
            );
        }
    }
    Ok(entry)
}

/// The key in `path`, or a new one written there (readable by its owner only).
fn load_or_make(path: &Path) -> anyhow::Result<quorate_proto::Keypair> {
    if path.exists() {
        return Ok(KeyFile::load(path)?);
    }
    let key = quorate_proto::Keypair::generate();
    KeyFile::save(&key, path)?;
    Ok(key)
}

/// Makes the organisation's keys (its own host only) and its signed entry.
pub(super) fn entry(args: EntryArgs) -> anyhow::Result<ExitCode> {
    std::fs::create_dir_all(args.dir.join("keys"))
        .with_context(|| format!("creating {}", args.dir.display()))?;
    let key = load_or_make(&args.dir.join("validator.key.json"))?;
    let p2p_address = match &args.p2p_addr {
        None => String::new(),
        Some(a) => {
            let addr: libp2p::Multiaddr =
                a.parse().with_context(|| format!("p2p address {a:?}"))?;
            let peer = quorate_node::network::peer_id_of(&key.public())?;
            format!("{addr}/p2p/{peer}")
        }
    };
    let mut accounts = Vec::with_capacity(args.accounts + 1);
    let member = match &args.member {
        Some(a) => quorate_proto::crypto::Address::from_hex(a)
            .with_context(|| format!("member {a:?}"))?
            .to_hex(),
        None => {
            // A new key, funded like the accounts so it can pay for its proposals.
            let address = load_or_make(&args.dir.join("member.key.json"))?
                .address()
                .to_hex();
            accounts.push(GenesisAccount {
                name: format!("{}-member", args.name),
                address: address.clone(),
                balance: args.balance,
            });
            address
        }
    };
    for i in 0..args.accounts {
        let account = load_or_make(&args.dir.join("keys").join(format!("account-{i}.json")))?;
        accounts.push(GenesisAccount {
            name: format!("{}-{i}", args.name),
            address: account.address().to_hex(),
            balance: args.balance,
        });
    }
    let entry = Entry::sign(
        &args.chain_id,
        &args.name,
        &key,
        &p2p_address,
        accounts,
        &member,
    );
    let out = args.dir.join("entry.json");
    std::fs::write(&out, entry.to_json()).with_context(|| format!("writing {}", out.display()))?;
    if args.json {
        println!(
            "{}",
            json!({"entry": out.display().to_string(), "validator_key": entry.validator_key, "p2p_address": entry.p2p_address, "member": entry.member})
        );
    } else {
        println!(
            "entry of {} for chain {} in {} (validator {}, governance member {}); hand it, and only it, to whoever assembles",
            args.name,
            args.chain_id,
            out.display(),
            entry.validator_key,
            entry.member
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// Builds the genesis from the entries, each checked.
pub(super) fn assemble(args: AssembleArgs) -> anyhow::Result<ExitCode> {
    let entries = args
        .entries
        .iter()
        .map(|p| read_entry(p))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let params = match &args.params {
        None => ChainParams::default(),
        Some(p) => {
            let text =
                std::fs::read_to_string(p).with_context(|| format!("reading {}", p.display()))?;
            serde_json::from_str(&text)
                .with_context(|| format!("{} is not a set of chain parameters", p.display()))?
        }
    };
    let authority = match (&args.admin, args.governance) {
        (Some(a), _) => Authority::Admin(a.clone()),
        (None, Some(k)) => Authority::Governance(super::governance::terms_from_args(
            Vec::new(),
            k,
            &args.thresholds,
            args.proposal_lifetime,
        )?),
        (None, None) => Authority::None,
    };
    let genesis = ceremony::assemble(
        &args.chain_id,
        args.genesis_time_ms,
        &entries,
        params,
        &authority,
    )?;
    if args.out.exists() {
        bail!("{} exists already", args.out.display());
    }
    genesis.save(&args.out)?;
    let peers: Vec<&str> = entries
        .iter()
        .map(|e| e.p2p_address.as_str())
        .filter(|a| !a.is_empty())
        .collect();
    if args.json {
        println!(
            "{}",
            json!({"genesis": args.out.display().to_string(), "genesis_hash": genesis.hash().to_hex(), "validators": genesis.validators.len(), "peers": peers})
        );
    } else {
        println!(
            "genesis of {} with {} validators in {}\ngenesis hash {}\npeers: {}",
            args.chain_id,
            genesis.validators.len(),
            args.out.display(),
            genesis.hash(),
            peers.join(" ")
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// Checks that the genesis holds this organisation's entry as signed; prints the genesis hash
/// to compare with the other organisations.
pub(super) fn check(args: CheckArgs) -> anyhow::Result<ExitCode> {
    let genesis = Genesis::load(&args.genesis)
        .with_context(|| format!("genesis {}", args.genesis.display()))?;
    let entry = read_entry(&args.entry)?;
    let mut all = vec![entry.clone()];
    for p in &args.others {
        all.push(read_entry(p)?);
    }
    let index = ceremony::check(&genesis, &entry, &all)?;
    if let Some(k) = args.governance {
        let Some(g) = &genesis.governance else {
            bail!(
                "the genesis is not governed by the organisations ({}), but --governance {k} was agreed",
                genesis
                    .admin
                    .as_deref()
                    .map_or("no administration".to_owned(), |a| format!("single admin {a}"))
            );
        };
        let agreed = super::governance::terms_from_args(
            g.members.clone(),
            k,
            &args.thresholds,
            g.proposal_lifetime,
        )?;
        if agreed != *g {
            bail!(
                "the genesis's governance is not the one agreed: it has {}, the agreement {}",
                governance_terms(&genesis),
                governance_terms(&Genesis {
                    governance: Some(agreed),
                    ..genesis.clone()
                })
            );
        }
    }
    if args.json {
        println!(
            "{}",
            json!({"genesis_hash": genesis.hash().to_hex(), "chain_id": genesis.chain_id,
                   "validator_index": index, "validators": genesis.validators.len(),
                   "entry": entry.name, "admin": genesis.admin, "governance": genesis.governance,
                   "genesis_time_ms": genesis.genesis_time_ms, "params": genesis.params})
        );
    } else {
        println!(
            "genesis hash {} (chain {}, {} validators): compare it with every other organisation's\n\
             {} is validator {index} with key {}, and its {} account(s) hold what it signed\n\
             the genesis is exactly what the {} entries give; the assembler chose, read them: \
             admin {}, governance {}, start {} ms, parameters {}",
            genesis.hash(),
            genesis.chain_id,
            genesis.validators.len(),
            entry.name,
            entry.validator_key,
            entry.accounts.len(),
            all.len(),
            genesis.admin.as_deref().unwrap_or("none"),
            governance_terms(&genesis),
            genesis.genesis_time_ms,
            serde_json::to_string(&genesis.params).unwrap_or_default()
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// The governance an assembler chose, in one line.
fn governance_terms(genesis: &Genesis) -> String {
    match &genesis.governance {
        None => "none".into(),
        Some(g) => format!(
            "{} members (validators {}, deployers {}, params {}, upgrades {}, policy {} of them; proposals open {} heights)",
            g.members.len(),
            g.validators,
            g.deployers,
            g.params,
            g.upgrades,
            g.policy,
            g.proposal_lifetime
        ),
    }
}
