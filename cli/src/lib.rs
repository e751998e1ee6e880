//! The `quorate` command line: keys, genesis, node, dev chain and client commands.

mod bench;
mod ceremony;
mod chaos;
mod client;
mod contract;
mod governance;
mod interface;
mod key_sets;
mod localnet;
mod output;
mod setup;
mod snapshot;
mod system;
mod validators;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};

/// Default gRPC endpoint of client commands.
pub const DEFAULT_NODE_URL: &str = "http://127.0.0.1:7050";

/// Quorate: a permissioned BFT blockchain node.
#[derive(Parser, Debug)]
#[command(name = "quorate", version, about)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
    /// TLS of client commands.
    #[command(flatten)]
    pub tls: TlsOpts,
}

/// TLS of client commands and the load generator (a node with `[grpc.tls]`; use an
/// `https://` URL).
#[derive(Args, Debug, Clone, Default)]
pub struct TlsOpts {
    /// CA certificate (PEM) the node's certificate must be signed by.
    #[arg(long, global = true, env = "QUORATE_CA")]
    pub ca: Option<PathBuf>,
    /// Client certificate (PEM), for a node that requires mutual TLS.
    #[arg(long, global = true, env = "QUORATE_CERT", requires = "key")]
    pub cert: Option<PathBuf>,
    /// Client private key (PEM) of `--cert`.
    #[arg(long, global = true, env = "QUORATE_KEY", requires = "cert")]
    pub key: Option<PathBuf>,
}

/// Options shared by client commands.
#[derive(Args, Debug, Clone)]
pub struct ClientOpts {
    /// gRPC endpoint of the node.
    #[arg(long, global = true, env = "QUORATE_NODE", default_value = DEFAULT_NODE_URL)]
    pub node: String,
    /// Print machine-readable JSON.
    #[arg(long, global = true)]
    pub json: bool,
}

/// Top-level commands.
#[derive(Subcommand, Debug)]
pub enum Command {
    /// Generate or inspect ed25519 key files.
    #[command(subcommand)]
    Keys(KeysCommand),
    /// Create a new chain's genesis, keys and node homes.
    #[command(subcommand)]
    Genesis(GenesisCommand),
    /// Run a node.
    #[command(subcommand)]
    Node(NodeCommand),
    /// TLS for the client API: a development CA with node and client certificates.
    #[command(subcommand)]
    Tls(TlsCommand),
    /// Run a single dev validator on the embedded dev genesis, with funded dev accounts.
    Dev(DevArgs),
    /// Run a local cluster of validators as separate processes on loopback.
    Localnet(LocalnetArgs),
    /// Build, sign, submit and follow transactions.
    #[command(subcommand)]
    Tx(TxCommand),
    /// Show an account's balance and nonce (`quorate account ADDRESS`), or show and change the
    /// keys that control it.
    #[command(args_conflicts_with_subcommands = true)]
    Account {
        /// Address (40 hex digits).
        address: Option<String>,
        /// Key sets: show one, add, remove or re-weight keys, change thresholds.
        #[command(subcommand)]
        keys: Option<key_sets::AccountCommand>,
        /// Client options.
        #[command(flatten)]
        opts: ClientOpts,
    },
    /// Show a committed block: by height, by hash, or the latest.
    Block {
        /// Height or block hash; the latest block if omitted.
        block: Option<String>,
        /// Include full transactions.
        #[arg(long)]
        txs: bool,
        /// Client options.
        #[command(flatten)]
        opts: ClientOpts,
    },
    /// Show the node's chain, head, validators and mempool.
    Status {
        /// Client options.
        #[command(flatten)]
        opts: ClientOpts,
    },
    /// Ask the node whether it is serving (exit 0) or catching up / short of a quorum (exit 1).
    Health {
        /// Client options.
        #[command(flatten)]
        opts: ClientOpts,
    },
    /// Create, build, deploy, call and query WebAssembly contracts.
    #[command(subcommand)]
    Contract(ContractCommand),
    /// Follow contract events as blocks commit (filtered by contract and kind); a broken
    /// connection or a node restart is resumed after the last event printed, and the command
    /// gives up (exit 1) after a minute without the node.
    Events(EventsArgs),
    /// Chain administration (admin account only): trusted deployers, the admin role, and the
    /// validator set (add, remove, replace; in force `validator_set_delay` heights later).
    #[command(subcommand)]
    Admin(AdminCommand),
    /// Governance by the organisations (ADR 0016): the policy, proposals and approvals.
    #[command(subcommand)]
    Gov(governance::GovCommand),
    /// Show the validator set of a height, the changes that led to it and those decided to
    /// come; with `--genesis`, check the chain of changes from the genesis set.
    Validators(validators::ValidatorsArgs),
    /// The remittance system contract: reserve fund lists and covered remittances.
    #[command(subcommand)]
    Remittance(system::RemittanceCommand),
    /// The credit-certificate escrow system contract: issue, transfer through escrow, return.
    #[command(subcommand)]
    Escrow(system::EscrowCommand),
    /// The certificate issuance system contract: authorities, specifications, batches, checks.
    #[command(subcommand)]
    Certs(system::CertsCommand),
    /// The device control permissions system contract: owners, controllers, grants, checks.
    #[command(subcommand)]
    Device(system::DeviceCommand),
    /// State snapshots: list a node's, export one to a file, import a file into a new node.
    #[command(subcommand)]
    Snapshot(snapshot::SnapshotCommand),
    /// Load generator: start (or use) a cluster, send a workload, report tx/s and latency.
    Bench(bench::BenchArgs),
    /// Fault campaign: a cluster under load while validators are killed, paused and
    /// partitioned on a seeded schedule; then checks that nothing acknowledged was lost and
    /// that all validators agree.
    Chaos(chaos::ChaosArgs),
}

impl Command {
    /// Whether this runs a node or a cluster (rather than a client command that ends).
    pub fn is_long_running(&self) -> bool {
        matches!(self, Self::Node(_) | Self::Dev(_) | Self::Localnet(_))
    }
}

/// Options of commands that sign and send a transaction.
#[derive(Args, Debug, Clone)]
pub struct SignOpts {
    /// Key file of the signer.
    #[arg(long)]
    pub from: PathBuf,
    /// Fuel limit (the fee is the fuel used times the chain's fuel price).
    #[arg(long, default_value_t = 10_000_000)]
    pub fuel_limit: u64,
    /// Nonce (default: the account's next, past its pending transactions).
    #[arg(long)]
    pub nonce: Option<u64>,
    /// Submit and return without waiting for the commit.
    #[arg(long)]
    pub no_wait: bool,
    /// Sign and save the transaction to this file instead of submitting it (for co-signers:
    /// `quorate tx sign`, then `quorate tx submit`).
    #[arg(long, value_name = "FILE")]
    pub save: Option<PathBuf>,
    /// Accounts with several keys.
    #[command(flatten)]
    pub multi: key_sets::MultiSignOpts,
    /// Client options.
    #[command(flatten)]
    pub opts: ClientOpts,
}

/// `quorate contract …`
#[derive(Subcommand, Debug)]
pub enum ContractCommand {
    /// Create a contract crate from the template (a counter with an embedded interface).
    New {
        /// Crate name.
        name: String,
        /// Directory to create (default: ./NAME).
        #[arg(long)]
        dir: Option<PathBuf>,
        /// Path of the quorate-sdk crate (default: contracts/sdk of this build's source tree).
        #[arg(long)]
        sdk: Option<PathBuf>,
    },
    /// Build a contract crate for wasm32-unknown-unknown and check it as a node would.
    Build {
        /// Crate directory.
        #[arg(default_value = ".")]
        dir: PathBuf,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Deploy a built contract; prints its address.
    Deploy {
        /// The .wasm file.
        wasm: PathBuf,
        /// Arguments of init, as JSON of its message (bytes fields in hex).
        #[arg(long)]
        init: Option<String>,
        /// Arguments of init as encoded bytes (hex).
        #[arg(long, conflicts_with = "init")]
        init_hex: Option<String>,
        /// Compile here and send machine code (trusted deployers only; the node then loads it
        /// instead of compiling).
        #[arg(long)]
        precompiled: bool,
        /// Signing options.
        #[command(flatten)]
        sign: SignOpts,
    },
    /// Call a contract method in a transaction.
    Call {
        /// Contract address.
        contract: String,
        /// Method name.
        method: String,
        /// Arguments as JSON of the method's message (from the contract's interface).
        args: Option<String>,
        /// Arguments as encoded bytes (hex), for contracts without an interface.
        #[arg(long)]
        args_hex: Option<String>,
        /// Native tokens to send with the call.
        #[arg(long, default_value_t = 0)]
        value: u64,
        /// Signing options.
        #[command(flatten)]
        sign: SignOpts,
    },
    /// Run a method read-only on the latest committed state (no transaction, no fee).
    Query {
        /// Contract address.
        contract: String,
        /// Method name.
        method: String,
        /// Arguments as JSON of the method's message.
        args: Option<String>,
        /// Arguments as encoded bytes (hex).
        #[arg(long)]
        args_hex: Option<String>,
        /// Address the contract sees as caller.
        #[arg(long)]
        caller: Option<String>,
        /// Fuel for the query (default: the node's).
        #[arg(long)]
        fuel_limit: Option<u64>,
        /// Client options.
        #[command(flatten)]
        opts: ClientOpts,
    },
    /// Show a deployed contract: code hash, deployer, methods, balance.
    Info {
        /// Contract address.
        contract: String,
        /// Client options.
        #[command(flatten)]
        opts: ClientOpts,
    },
}

/// `quorate events`
#[derive(Args, Debug)]
pub struct EventsArgs {
    /// Only events of this contract.
    #[arg(long)]
    pub contract: Option<String>,
    /// Only events of this kind.
    #[arg(long)]
    pub kind: Option<String>,
    /// First height (default: the next block).
    #[arg(long, default_value_t = 0)]
    pub from_height: u64,
    /// Stop after this many events.
    #[arg(long)]
    pub limit: Option<usize>,
    /// Client options.
    #[command(flatten)]
    pub opts: ClientOpts,
}

/// `quorate admin …`
#[derive(Subcommand, Debug)]
pub enum AdminCommand {
    /// Allow an account to deploy precompiled machine code.
    Trust {
        /// Account address.
        account: String,
        /// Signing options (the admin's key).
        #[command(flatten)]
        sign: SignOpts,
    },
    /// Withdraw that permission.
    Untrust {
        /// Account address.
        account: String,
        /// Signing options (the admin's key).
        #[command(flatten)]
        sign: SignOpts,
    },
    /// Hand the admin role to another account.
    SetAdmin {
        /// Account address.
        account: String,
        /// Signing options (the admin's key).
        #[command(flatten)]
        sign: SignOpts,
    },
    /// Add a validator at the end of the set (it should be running and synced first: from
    /// `validator_set_delay` heights on it counts in every quorum).
    AddValidator {
        /// The new validator's public key (hex) or key file.
        #[arg(value_name = "KEY")]
        validator: String,
        /// Its name (a label).
        #[arg(long, default_value = "")]
        name: String,
        /// Signing options (the admin's key).
        #[command(flatten)]
        sign: SignOpts,
    },
    /// Remove a validator (its connections are refused once the change is in force).
    RemoveValidator {
        /// Its public key (hex) or key file.
        #[arg(value_name = "KEY")]
        validator: String,
        /// Signing options (the admin's key).
        #[command(flatten)]
        sign: SignOpts,
    },
    /// Put the chain under a governance policy (ADR 0016): the members approve each kind of
    /// action by proposals (`quorate gov`), and the single admin role ends. Through
    /// `quorate gov propose`, replaces the policy in force.
    SetPolicy {
        /// A member: `NAME=ADDRESS` (repeat; 1 to 64).
        #[arg(long = "member", value_name = "NAME=ADDRESS", required = true)]
        members: Vec<String>,
        /// Approvals every kind of action needs (change one with `--threshold`).
        #[arg(long, value_name = "K")]
        governance: u32,
        /// Approvals one kind needs: `KIND=K` with KIND one of validators, deployers, params,
        /// upgrades, policy (repeat).
        #[arg(long = "threshold", value_name = "KIND=K")]
        thresholds: Vec<String>,
        /// Most heights a proposal stays open.
        #[arg(long, default_value_t = 1_000)]
        proposal_lifetime: u64,
        /// Signing options (the admin's key, or a member's through `quorate gov propose`).
        #[command(flatten)]
        sign: SignOpts,
    },
    /// Change chain parameters (`NAME=VALUE`, e.g. `block_max_txs=500 fuel_price=2`), in force
    /// `validator_set_delay` heights after the block; `quorate status` shows them decided.
    SetParams {
        /// New values, `NAME=VALUE` with NAME one of the governed parameters (repeat).
        #[arg(value_name = "NAME=VALUE", required = true)]
        values: Vec<String>,
        /// Signing options (the admin's key, or a member's through `quorate gov propose`).
        #[command(flatten)]
        sign: SignOpts,
    },
    /// Replace a system contract's code in place (its address and storage stay), from
    /// `validator_set_delay` heights after the block on; the code is checked and compiled now.
    UpgradeContract {
        /// The system contract (remittance, credit-escrow, certificates, device-permissions).
        name: String,
        /// The new wasm bytecode.
        #[arg(long, required_unless_present = "cancel")]
        wasm: Option<PathBuf>,
        /// Cancel the upgrade of this contract decided and not yet in force.
        #[arg(long, conflicts_with = "wasm")]
        cancel: bool,
        /// Signing options (the admin's key, or a member's through `quorate gov propose`).
        #[command(flatten)]
        sign: SignOpts,
    },
    /// Switch the chain to protocol VERSION from HEIGHT on (ADR 0019, OPERATING §7b): install
    /// a release that supports it on every validator first; validators left on an older
    /// release stop before HEIGHT and say which version to install.
    ActivateProtocol {
        /// The version (one above the version in force, or the one scheduled, to move it).
        #[arg(long)]
        version: u32,
        /// Its first height (at least `validator_set_delay` above the deciding block).
        #[arg(long, required_unless_present = "cancel", value_parser = clap::value_parser!(u64).range(1..))]
        height: Option<u64>,
        /// Cancel the activation of VERSION scheduled (at least `validator_set_delay` heights
        /// away: closer, it is fixed).
        #[arg(long, conflicts_with = "height")]
        cancel: bool,
        /// Signing options (the admin's key, or a member's through `quorate gov propose`).
        #[command(flatten)]
        sign: SignOpts,
    },
    /// Put a new key in a validator's place (same index; a new consensus key and network
    /// identity, e.g. after a key compromise or a machine move).
    ReplaceValidator {
        /// The key leaving (hex) or its key file.
        old: String,
        /// The key coming in (hex) or its key file.
        new: String,
        /// The new validator's name.
        #[arg(long, default_value = "")]
        name: String,
        /// Signing options (the admin's key).
        #[command(flatten)]
        sign: SignOpts,
    },
}

/// `quorate keys …`
#[derive(Subcommand, Debug)]
pub enum KeysCommand {
    /// Generate a new key and write it to a key file (mode 0600).
    Generate {
        /// Key file to write.
        #[arg(long)]
        out: PathBuf,
        /// Overwrite an existing file.
        #[arg(long)]
        force: bool,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Show the address and public key of a key file.
    Show {
        /// Key file.
        file: PathBuf,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Derive the multi-signature address of keys with weights and thresholds (and write the
    /// key set its first transaction registers).
    Multisig(key_sets::MultisigArgs),
}

/// `quorate tls …`
#[derive(Subcommand, Debug)]
pub enum TlsCommand {
    /// Write a development CA, a node certificate and a client certificate (PEM) into a folder;
    /// with `--home`, turn TLS on in those nodes' configs. For test networks: production
    /// deployments use their organisation's CA.
    Gen {
        /// Folder to write `ca.pem`, `node.pem`, `node.key`, `client.pem`, `client.key` into.
        #[arg(long)]
        out: PathBuf,
        /// Names the node certificate is valid for: IP addresses or DNS names.
        #[arg(long, value_delimiter = ',', default_values_t = ["127.0.0.1".to_owned(), "localhost".to_owned()])]
        hosts: Vec<String>,
        /// Sign with the development CA in this folder (its `ca.pem` and `ca.key`, as an
        /// earlier `tls gen` wrote them) instead of a new one: one CA for every host's node.
        #[arg(long)]
        ca_dir: Option<PathBuf>,
        /// Node homes whose config gets a `[grpc.tls]` section pointing at these files.
        #[arg(long)]
        home: Vec<PathBuf>,
        /// With `--home`: require client certificates signed by the CA (mutual TLS).
        #[arg(long)]
        mutual: bool,
        /// With `--mutual`: accept client certificates signed by the CAs in this PEM file
        /// instead (e.g. every consortium organisation's `ca.pem`, concatenated).
        #[arg(long, requires = "mutual")]
        client_ca: Option<PathBuf>,
    },
}

/// `quorate genesis …`
#[derive(Subcommand, Debug)]
pub enum GenesisCommand {
    /// Generate validator keys, funded accounts, a genesis and one node home per validator.
    New {
        /// Output directory (must not hold a genesis already).
        #[arg(long)]
        out: PathBuf,
        /// The chain: validators, accounts, ports, hosts.
        #[command(flatten)]
        layout: setup::ChainLayout,
    },
    /// Key ceremony, on an organisation's own host: make its validator key and accounts and
    /// its signed public entry.
    Entry(ceremony::EntryArgs),
    /// Key ceremony: build the genesis from the organisations' entries (each signature
    /// checked; the same entries give the same genesis whoever assembles).
    Assemble(ceremony::AssembleArgs),
    /// Key ceremony, on an organisation's own host: check that the genesis holds its entry as
    /// signed, and print the genesis hash to compare.
    Check(ceremony::CheckArgs),
}

/// `quorate node …`
#[derive(Subcommand, Debug)]
pub enum NodeCommand {
    /// Run the node whose home directory holds config.toml, genesis and key.
    Run {
        /// Node home directory.
        #[arg(long)]
        home: PathBuf,
        /// Misbehave on purpose, for tests of what honest validators survive (builds with the
        /// `byzantine` feature only; never in a release build).
        #[cfg(feature = "byzantine")]
        #[arg(long, value_enum)]
        byzantine: Option<quorate_node::byzantine::Behaviour>,
    },
    /// Make a home for a node joining a running chain: the chain's genesis, a new validator
    /// key (or a given one), a config that reaches the chain's validators. Prints the key to
    /// add with `quorate admin add-validator`; started with an empty data directory, the node
    /// joins from the validators' latest snapshot.
    Init(setup::InitArgs),
}

/// `quorate dev`
#[derive(Args, Debug)]
pub struct DevArgs {
    /// Home directory (default: ~/.quorate/dev).
    #[arg(long)]
    pub home: Option<PathBuf>,
    /// gRPC listen address (port 0 picks a free one).
    #[arg(long)]
    pub grpc_addr: Option<std::net::SocketAddr>,
    /// Delete the dev chain's data first and start again from genesis.
    #[arg(long)]
    pub reset: bool,
}

/// `quorate localnet`
#[derive(Args, Debug)]
pub struct LocalnetArgs {
    /// Number of validators (4 tolerates one faulty).
    #[arg(long, default_value_t = 4)]
    pub validators: usize,
    /// Directory for the cluster (reused if it already holds one).
    #[arg(long, default_value = "./localnet")]
    pub home: PathBuf,
    /// First gRPC port; validator i listens on port + i.
    #[arg(long, default_value_t = 7050)]
    pub grpc_port: u16,
    /// First libp2p port; validator i listens on port + i.
    #[arg(long, default_value_t = 7060)]
    pub p2p_port: u16,
    /// First Prometheus metrics port; validator i serves http://127.0.0.1:(port + i)/metrics.
    #[arg(long, default_value_t = 9100)]
    pub metrics_port: u16,
    /// Funded accounts to create.
    #[arg(long, default_value_t = 8)]
    pub accounts: usize,
}

/// `quorate tx …`
#[derive(Subcommand, Debug)]
pub enum TxCommand {
    /// Sign a native transfer and submit it (or save it with --save-only).
    Transfer(Box<TransferArgs>),
    /// Add a signature to a transaction saved with `--save` (offline): co-signers pass the file
    /// along until their weight suffices, then one submits it.
    Sign {
        /// File holding the hex-encoded transaction.
        file: PathBuf,
        /// Key file of the co-signer.
        #[arg(long = "add-signature", value_name = "KEY_FILE")]
        add_signature: PathBuf,
        /// Write the result here (default: back to FILE).
        #[arg(long)]
        out: Option<PathBuf>,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Submit a signed transaction saved with `--save`.
    Submit {
        /// File holding the hex-encoded signed transaction.
        file: PathBuf,
        /// Wait until it commits.
        #[arg(long)]
        wait: bool,
        /// Client options.
        #[command(flatten)]
        opts: ClientOpts,
    },
    /// Show a transaction's status and receipt.
    Status {
        /// Transaction hash (64 hex digits).
        hash: String,
        /// Wait until it commits.
        #[arg(long)]
        wait: bool,
        /// Client options.
        #[command(flatten)]
        opts: ClientOpts,
    },
}

/// `quorate tx transfer`
#[derive(Args, Debug)]
pub struct TransferArgs {
    /// Key file of the sender.
    #[arg(long)]
    pub from: PathBuf,
    /// Recipient address.
    #[arg(long)]
    pub to: String,
    /// Amount to send.
    #[arg(long)]
    pub amount: u64,
    /// Nonce (default: the account's next, past its pending transactions).
    #[arg(long)]
    pub nonce: Option<u64>,
    /// Fuel limit (default: what a transfer costs).
    #[arg(long)]
    pub fuel_limit: Option<u64>,
    /// Memo text carried with the transfer.
    #[arg(long, default_value = "")]
    pub memo: String,
    /// Memo of this many filler bytes (to exercise size limits).
    #[arg(long, conflicts_with = "memo")]
    pub memo_bytes: Option<usize>,
    /// Chain id to sign for (default: the node's).
    #[arg(long)]
    pub chain_id: Option<String>,
    /// Wait until the transfer commits.
    #[arg(long)]
    pub wait: bool,
    /// Also write the signed transaction (hex) to this file.
    #[arg(long)]
    pub save: Option<PathBuf>,
    /// Only sign and save (with --save); do not submit.
    #[arg(long, requires = "save")]
    pub save_only: bool,
    /// Accounts with several keys.
    #[command(flatten)]
    pub multi: key_sets::MultiSignOpts,
    /// Flip a bit of the signature before sending (to see the node refuse it).
    #[arg(long, hide = true)]
    pub corrupt_signature: bool,
    /// Client options.
    #[command(flatten)]
    pub opts: ClientOpts,
}

/// Runs a parsed command line. Returns the process exit code (non-zero when the node refused
/// what was asked).
pub fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    client::set_tls(cli.tls);
    match cli.command {
        Command::Keys(cmd) => setup::keys(cmd),
        Command::Genesis(cmd) => setup::genesis(cmd),
        Command::Tls(cmd) => setup::tls(cmd),
        #[cfg(not(feature = "byzantine"))]
        Command::Node(NodeCommand::Run { home }) => {
            setup::run_node(&home, None, quorate_node::byzantine::Byzantine::honest())
        }
        #[cfg(feature = "byzantine")]
        Command::Node(NodeCommand::Run { home, byzantine }) => setup::run_node(
            &home,
            None,
            byzantine
                .map(quorate_node::byzantine::Byzantine::new)
                .unwrap_or_default(),
        ),
        Command::Node(NodeCommand::Init(args)) => setup::init_node(args),
        Command::Dev(args) => setup::dev(args),
        Command::Localnet(args) => localnet::run(args),
        Command::Tx(cmd) => client::tx(cmd),
        Command::Account {
            keys: Some(key_sets::AccountCommand::Keys { address }),
            opts,
            ..
        } => key_sets::show(&address, &opts),
        Command::Account {
            keys: Some(cmd), ..
        } => key_sets::change(cmd),
        Command::Account {
            address: Some(address),
            opts,
            ..
        } => client::account(&address, &opts),
        Command::Account { .. } => {
            anyhow::bail!("give an address, or a subcommand (see quorate account --help)")
        }
        Command::Block { block, txs, opts } => client::block(block.as_deref(), txs, &opts),
        Command::Status { opts } => client::status(&opts),
        Command::Health { opts } => client::health(&opts),
        Command::Contract(cmd) => contract::run(cmd),
        Command::Events(args) => contract::events(args),
        Command::Admin(cmd) => contract::admin(cmd),
        Command::Gov(cmd) => governance::run(cmd),
        Command::Validators(args) => validators::run(args),
        Command::Remittance(cmd) => system::remittance(cmd),
        Command::Escrow(cmd) => system::escrow(cmd),
        Command::Certs(cmd) => system::certs(cmd),
        Command::Device(cmd) => system::device(cmd),
        Command::Snapshot(cmd) => snapshot::run(cmd),
        Command::Bench(args) => bench::run(args),
        Command::Chaos(args) => chaos::run(args),
    }
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    /// Every subcommand's arguments are consistent (unique names, valid requirements): clap
    /// checks this only when a subcommand is first parsed, so a clash would otherwise surface
    /// only when someone runs that command.
    #[test]
    fn every_command_line_is_consistent() {
        super::Cli::command().debug_assert();
    }
}
