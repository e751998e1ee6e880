//! `quorate chaos`: a validator cluster on loopback under a transfer load while validators are
//! killed (SIGKILL) and restarted, paused (SIGSTOP/SIGCONT) and cut off from each other, on a
//! seeded schedule. At the end every fault is healed and it checks that every transaction a
//! client saw committed is committed, at the same height, on every validator, that all
//! validators hold the same blocks, and that all are alive.
//!
//! Partitions blackhole the packets between the validators' p2p ports with routing rules
//! (libp2p dials from its listening port, so both directions of every connection carry a
//! validator's port). They need root and a network namespace of the run's own
//! (`scripts/chaos.sh` makes one), so that the rules touch nothing else. Without them the run
//! has kills and pauses only.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{ExitCode, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use clap::Args;
use parking_lot::Mutex;
use quorate_proto::tx::{sign, transfer_body};
use quorate_proto::v1::TxState;
use rand::{Rng, SeedableRng};
use tokio::process::{Child, Command};

use super::client::connect;
use super::localnet::node_homes;
use super::setup::{write_chain_quietly, ChainLayout, GRPC_ADDR_FILE};

/// `quorate chaos`
#[derive(Args, Debug)]
pub struct ChaosArgs {
    /// Validators of the cluster.
    #[arg(long, default_value_t = 4)]
    pub validators: usize,
    /// How long faults are injected, in seconds (then everything heals and is checked).
    #[arg(long, default_value_t = 60)]
    pub seconds: u64,
    /// Seed of the fault schedule (the same seed gives the same schedule of faults).
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Directory for the cluster (default: a temporary one, removed afterwards).
    #[arg(long)]
    pub home: Option<PathBuf>,
    /// First gRPC port; validator i uses port + i, and p2p port + 100 + i.
    #[arg(long, default_value_t = 27050)]
    pub port: u16,
    /// Concurrent clients sending transfers (one transaction per call, each waits for its
    /// commit).
    #[arg(long, default_value_t = 4)]
    pub clients: usize,
    /// This process runs in a network namespace of its own (as `scripts/chaos.sh` starts it,
    /// as root): partitions rewrite that namespace's routing rules. Without it there are no
    /// partitions.
    #[arg(long)]
    pub own_netns: bool,
    /// Print the result as JSON.
    #[arg(long)]
    pub json: bool,
}

/// Accounts each client sends from.
const ACCOUNTS_PER_CLIENT: usize = 2;
/// Longest the final checks wait for the cluster to settle.
const SETTLE: Duration = Duration::from_secs(180);

/// What happened during a run, and what the checks found.
#[derive(Debug, Default, serde::Serialize)]
struct Outcome {
    seed: u64,
    validators: usize,
    seconds: u64,
    kills: u32,
    pauses: u32,
    partitions: u32,
    submitted: u64,
    acknowledged: u64,
    acknowledged_checked: u64,
    lost: u64,
    heights: Vec<u64>,
    blocks_compared: u64,
    diverging_blocks: u64,
    all_alive: bool,
}

/// A validator process and its state in the schedule.
struct Validator {
    home: PathBuf,
    url: String,
    child: Option<Child>,
    paused: bool,
}

impl Validator {
    fn spawn(&mut self, exe: &Path) -> anyhow::Result<()> {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.home.join("node.log"))
            .context("opening node.log")?;
        let child = Command::new(exe)
            .args(["node", "run", "--home"])
            .arg(&self.home)
            .env("QUORATE_CFG_CONSENSUS__PROPOSE_TIMEOUT_MS", "1500")
            .env("QUORATE_CFG_CONSENSUS__PREVOTE_TIMEOUT_MS", "500")
            .env("QUORATE_CFG_CONSENSUS__PRECOMMIT_TIMEOUT_MS", "500")
            .env("QUORATE_CFG_CONSENSUS__TIMEOUT_DELTA_MS", "250")
            .env("QUORATE_CFG_CONSENSUS__TIMEOUT_MAX_MS", "5000")
            .env("QUORATE_CFG_CONSENSUS__REBROADCAST_MS", "500")
            .env("QUORATE_CFG_BLOCK__EMPTY_INTERVAL_MS", "300")
            .env("QUORATE_CFG_P2P__REDIAL_INTERVAL_MS", "300")
            .stdout(Stdio::null())
            .stderr(log)
            .kill_on_drop(true)
            .spawn()
            .context("starting a validator")?;
        self.child = Some(child);
        self.paused = false;
        Ok(())
    }

    fn pid(&self) -> Option<u32> {
        self.child.as_ref().and_then(Child::id)
    }

    fn signal(&self, sig: &str) {
        if let Some(pid) = self.pid() {
            let _ = std::process::Command::new("kill")
                .args([sig, &pid.to_string()])
                .status();
        }
    }

    async fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.start_kill();
            let _ = c.wait().await;
        }
        self.paused = false;
    }

    fn up(&self) -> bool {
        self.child.is_some() && !self.paused
    }
}

/// Partitions by routing rules: a `blackhole` rule for the TCP packets from one validator's
/// p2p port to another's, both ways, ahead of the local table. Only in a network namespace
/// this run owns (`--own-netns`), whose routing rules nothing else uses.
struct Firewall {
    ports: Vec<u16>,
    active: bool,
}

/// Priority of the partition rules (the local table moves behind them).
const RULE_PRIORITY: &str = "10";

fn ip(args: &[&str]) -> bool {
    std::process::Command::new("ip")
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

impl Firewall {
    /// `None` when the rules cannot be set (not root, no `ip`).
    fn new(ports: Vec<u16>) -> Option<Self> {
        // Local delivery is looked up at priority 100 instead of 0, after the partition rules.
        if !ip(&["rule", "add", "priority", "100", "table", "local"]) {
            return None;
        }
        let _ = ip(&["rule", "del", "priority", "0"]);
        Some(Self {
            ports,
            active: false,
        })
    }

    /// Cuts every validator of `side` (true) from every other.
    fn split(&mut self, side: &[bool]) {
        self.heal();
        self.active = true;
        for (i, &a) in side.iter().enumerate() {
            for (j, &b) in side.iter().enumerate() {
                if a && !b {
                    for (s, d) in [(i, j), (j, i)] {
                        let (sp, dp) = (self.ports[s].to_string(), self.ports[d].to_string());
                        ip(&[
                            "rule",
                            "add",
                            "priority",
                            RULE_PRIORITY,
                            "ipproto",
                            "tcp",
                            "sport",
                            &sp,
                            "dport",
                            &dp,
                            "blackhole",
                        ]);
                    }
                }
            }
        }
    }

    fn heal(&mut self) {
        if self.active {
            while ip(&["rule", "del", "priority", RULE_PRIORITY]) {}
            self.active = false;
        }
    }
}

impl Drop for Firewall {
    fn drop(&mut self) {
        self.heal();
    }
}

/// Runs `quorate chaos`.
pub(super) fn run(args: ChaosArgs) -> anyhow::Result<ExitCode> {
    if args.validators < 4 {
        bail!("--validators must be at least 4 (a cluster that tolerates a fault)");
    }
    let temp;
    let home = match &args.home {
        Some(h) => h.clone(),
        None => {
            temp = tempfile::tempdir().context("creating a temporary directory")?;
            temp.path().to_owned()
        }
    };
    let layout = ChainLayout {
        grpc_port: args.port,
        p2p_port: args.port + 100,
        ..ChainLayout::loopback(
            "quorate-chaos",
            args.validators,
            args.clients * ACCOUNTS_PER_CLIENT,
            1_000_000_000_000,
        )
    };
    let written = write_chain_quietly(&home, &layout)?;
    let exe = std::env::current_exe().context("locating the quorate binary")?;
    let runtime = super::client::runtime()?;
    let outcome = runtime.block_on(chaos(&args, &home, &exe, written.account_keys))?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&outcome)?);
    } else {
        println!(
            "chaos seed {} over {} s: {} kills, {} pauses, {} partitions; {} transfers submitted, {} acknowledged committed and checked on all {} validators: {} lost; {} blocks compared, {} diverging; all alive: {}",
            outcome.seed,
            outcome.seconds,
            outcome.kills,
            outcome.pauses,
            outcome.partitions,
            outcome.submitted,
            outcome.acknowledged_checked,
            outcome.validators,
            outcome.lost,
            outcome.blocks_compared,
            outcome.diverging_blocks,
            outcome.all_alive
        );
    }
    let ok = outcome.lost == 0
        && outcome.diverging_blocks == 0
        && outcome.all_alive
        && outcome.acknowledged_checked == outcome.acknowledged;
    Ok(if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// Transactions a client saw committed: (hash, height).
type Acks = Arc<Mutex<Vec<([u8; 32], u64)>>>;

async fn chaos(
    args: &ChaosArgs,
    home: &Path,
    exe: &Path,
    keys: Vec<quorate_proto::Keypair>,
) -> anyhow::Result<Outcome> {
    let homes = node_homes(home);
    let mut vals: Vec<Validator> = homes
        .iter()
        .enumerate()
        .map(|(i, h)| Validator {
            home: h.clone(),
            url: format!("http://127.0.0.1:{}", args.port + i as u16),
            child: None,
            paused: false,
        })
        .collect();
    for v in &mut vals {
        v.spawn(exe)?;
    }
    for v in &vals {
        wait_serving(&v.home).await?;
    }
    let chain_id = "quorate-chaos".to_owned();
    let p2p_ports: Vec<u16> = (0..vals.len())
        .map(|i| args.port + 100 + i as u16)
        .collect();
    let mut firewall = if args.own_netns {
        Firewall::new(p2p_ports)
    } else {
        None
    };
    if firewall.is_none() {
        eprintln!("chaos: no partitions (they need --own-netns, root and `ip`)");
    }
    let mut outcome = Outcome {
        seed: args.seed,
        validators: vals.len(),
        seconds: args.seconds,
        ..Outcome::default()
    };

    // The load: each client sends from its own accounts, one transfer per call, through a
    // validator of its choice, and records what it saw committed.
    let acks: Acks = Arc::default();
    let submitted = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let urls: Vec<String> = vals.iter().map(|v| v.url.clone()).collect();
    let mut clients = Vec::new();
    for (c, owned) in keys.chunks(ACCOUNTS_PER_CLIENT).enumerate() {
        clients.push(tokio::spawn(client(
            c,
            owned.to_vec(),
            urls.clone(),
            chain_id.clone(),
            acks.clone(),
            submitted.clone(),
            stop.clone(),
        )));
    }

    // The faults.
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(args.seed);
    let started = Instant::now();
    let end = started + Duration::from_secs(args.seconds);
    let n = vals.len();
    let f = (n - 1) / 3;
    let mut partition_until: Option<Instant> = None;
    let mut back_at: Vec<Option<Instant>> = vec![None; n];
    while Instant::now() < end {
        tokio::time::sleep(Duration::from_millis(rng.gen_range(500..2_500))).await;
        let now = Instant::now();
        // Bring back what is due.
        for i in 0..n {
            if back_at[i].is_some_and(|t| t <= now) {
                back_at[i] = None;
                if vals[i].child.is_none() {
                    vals[i].spawn(exe)?;
                } else if vals[i].paused {
                    vals[i].signal("-CONT");
                    vals[i].paused = false;
                }
            }
        }
        if partition_until.is_some_and(|t| t <= now) {
            partition_until = None;
            if let Some(fw) = firewall.as_mut() {
                fw.heal();
            }
        }
        // At most f + 1 validators down at once: sometimes more than the protocol tolerates
        // (commits stop; safety must hold), mostly not.
        let down = vals.iter().filter(|v| !v.up()).count();
        let i = rng.gen_range(0..n);
        match rng.gen_range(0..3) {
            0 if down <= f && vals[i].up() => {
                vals[i].kill().await;
                back_at[i] = Some(now + Duration::from_millis(rng.gen_range(500..6_000)));
                outcome.kills += 1;
            }
            1 if down <= f && vals[i].up() => {
                vals[i].signal("-STOP");
                vals[i].paused = true;
                back_at[i] = Some(now + Duration::from_millis(rng.gen_range(500..4_000)));
                outcome.pauses += 1;
            }
            2 if partition_until.is_none() => {
                if let Some(fw) = firewall.as_mut() {
                    let side: Vec<bool> = (0..n).map(|_| rng.gen_bool(0.5)).collect();
                    fw.split(&side);
                    partition_until =
                        Some(now + Duration::from_millis(rng.gen_range(1_000..6_000)));
                    outcome.partitions += 1;
                }
            }
            _ => {}
        }
    }

    // Heal everything, stop the load, let the cluster settle.
    if let Some(fw) = firewall.as_mut() {
        fw.heal();
    }
    for v in &mut vals {
        if v.child.is_none() {
            v.spawn(exe)?;
        } else if v.paused {
            v.signal("-CONT");
            v.paused = false;
        }
    }
    stop.store(true, Ordering::Relaxed);
    for c in clients {
        let _ = c.await;
    }
    outcome.submitted = submitted.load(Ordering::Relaxed);
    let acks = acks.lock().clone();
    outcome.acknowledged = acks.len() as u64;
    let check = check(&mut vals, &acks, &mut outcome).await;
    for v in &mut vals {
        v.kill().await;
    }
    check?;
    Ok(outcome)
}

async fn wait_serving(home: &Path) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(60);
    while !home.join(GRPC_ADDR_FILE).exists() {
        if Instant::now() > deadline {
            bail!("validator in {} did not start", home.display());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Ok(())
}

/// One client: transfers from its accounts, one per call, each waited for.
async fn client(
    index: usize,
    keys: Vec<quorate_proto::Keypair>,
    urls: Vec<String>,
    chain_id: String,
    acks: Acks,
    submitted: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
) {
    let mut turn = index;
    let mut nonces: Vec<Option<u64>> = vec![None; keys.len()];
    let sink = quorate_proto::Keypair::from_secret(&[0x5a; 32]).address();
    while !stop.load(Ordering::Relaxed) {
        turn += 1;
        let url = &urls[turn % urls.len()];
        let k = turn % keys.len();
        let Ok(node) = connect(url).await else {
            tokio::time::sleep(Duration::from_millis(200)).await;
            continue;
        };
        let nonce = match nonces[k] {
            Some(n) => n,
            None => match node.account(&keys[k].address()).await {
                Ok(a) => a.next_nonce,
                Err(_) => continue,
            },
        };
        let tx = sign(
            &transfer_body(&chain_id, &keys[k], nonce, 1_000, sink, 1, Vec::new()),
            &keys[k],
        );
        let hash = quorate_proto::tx::tx_hash(&tx.body);
        let call = tokio::time::timeout(Duration::from_secs(5), node.submit_as_is(&tx)).await;
        let admitted = matches!(call, Ok(Ok(_)));
        if !admitted {
            // Refused (a nonce another validator already holds) or unreachable: ask again.
            nonces[k] = None;
            continue;
        }
        submitted.fetch_add(1, Ordering::Relaxed);
        nonces[k] = Some(nonce + 1);
        let waited = tokio::time::timeout(
            Duration::from_secs(10),
            node.wait(&hash, Duration::from_secs(8)),
        )
        .await;
        match waited {
            Ok(Ok(outcome)) => acks.lock().push((hash.0, outcome.height)),
            // Not seen committed in time: not acknowledged; the nonce is uncertain.
            _ => nonces[k] = None,
        }
    }
}

/// Heights of every validator, `None` where it does not answer.
async fn heights(vals: &[Validator]) -> Vec<Option<u64>> {
    let mut out = Vec::new();
    for v in vals {
        let h = match connect(&v.url).await {
            Ok(node) => node.node_status().await.ok().map(|s| s.height),
            Err(_) => None,
        };
        out.push(h);
    }
    out
}

async fn check(
    vals: &mut [Validator],
    acks: &[([u8; 32], u64)],
    outcome: &mut Outcome,
) -> anyhow::Result<()> {
    // Wait until every validator answers and has reached the highest height seen plus two.
    let deadline = Instant::now() + SETTLE;
    let mut target: Option<u64> = None;
    let hs = loop {
        let hs = heights(vals).await;
        if let Some(top) = hs.iter().flatten().max() {
            let t = *target.get_or_insert(top + 2);
            if hs.iter().all(|h| h.is_some_and(|h| h >= t)) {
                break hs;
            }
        }
        if Instant::now() > deadline {
            break hs;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    outcome.heights = hs.iter().map(|h| h.unwrap_or(0)).collect();
    outcome.all_alive = vals.iter_mut().all(|v| {
        v.child
            .as_mut()
            .is_some_and(|c| matches!(c.try_wait(), Ok(None)))
    }) && hs.iter().all(Option::is_some);
    let common = outcome.heights.iter().copied().min().unwrap_or(0);
    // Every validator holds the same block at every height they all have.
    let mut nodes = Vec::new();
    for v in vals.iter() {
        nodes.push(connect(&v.url).await?);
    }
    for h in 1..=common {
        let mut hashes = BTreeSet::new();
        for node in &nodes {
            let b = node
                .block(h, false)
                .await
                .with_context(|| format!("block {h}"))?;
            hashes.insert(b.hash.to_vec());
        }
        outcome.blocks_compared += 1;
        if hashes.len() != 1 {
            outcome.diverging_blocks += 1;
        }
    }
    // Every acknowledged transaction is committed, at the height the client saw, everywhere.
    for (hash, height) in acks {
        let mut everywhere = true;
        for node in &nodes {
            let s = node
                .status(&quorate_proto::Hash32(*hash))
                .await
                .context("status")?;
            everywhere &= s.state == TxState::Committed as i32 && s.height == *height;
        }
        outcome.acknowledged_checked += 1;
        if !everywhere {
            outcome.lost += 1;
        }
    }
    Ok(())
}
