//! `quorate bench`: the load generator. It starts a cluster on loopback (or uses a running
//! one), sets up the workload, pre-signs every measured transaction, submits them over gRPC
//! from concurrent clients (batches or singles, open loop or at a target rate), follows the
//! committed blocks, and reports committed tx/s, submit → commit and submit → admitted
//! latency, refusals, and the validators' CPU (in all and per committed transaction) and
//! memory, as text or JSON, with an optional SVG plot.

mod procstat;
mod report;
mod workload;

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};
use prost::Message;
use quorate_client::{ClientError, Node};
use quorate_genesis::KeyFile;
use quorate_proto::contracts::certificates as certs;
use quorate_proto::tx::tx_hash;
use quorate_proto::v1::{ExecStatus, NodeStatus, RejectCode, Transaction};
use quorate_proto::Keypair;
use tokio::process::Child;

use super::client::connect;
use super::localnet::{node_homes, start_validators, stop, wait_for_addr};
use super::setup::{write_chain_quietly, ChainLayout};
use report::{Latency, Report, ValidatorUsage};
use workload::{ChainFacts, Class, Plan, Workload};

/// Balance of each account of a cluster the load generator starts.
const BENCH_BALANCE: u64 = 1_000_000_000_000_000;
/// Pause before retrying a submission the node refused with `MEMPOOL_FULL`.
const RETRY_PAUSE: Duration = Duration::from_millis(20);
/// Transactions per `SubmitBatch` during set-up.
const SETUP_BATCH: usize = 256;

/// `quorate bench`
#[derive(Args, Debug)]
pub struct BenchArgs {
    /// What the measured transactions are.
    #[arg(long, value_enum, default_value = "transfer")]
    pub workload: Workload,
    /// Measured transactions to send.
    #[arg(long, default_value_t = 20_000)]
    pub txs: usize,
    /// Sending accounts.
    #[arg(long, default_value_t = 1_000)]
    pub senders: usize,
    /// Concurrent gRPC clients (spread over the validators).
    #[arg(long, default_value_t = 8)]
    pub clients: usize,
    /// Transactions per SubmitBatch; 1 sends each alone with Submit.
    #[arg(long, default_value_t = 64)]
    pub batch: usize,
    /// Target submission rate in tx/s over all clients; 0 sends as fast as the nodes take them.
    #[arg(long, default_value_t = 0)]
    pub rate: u64,
    /// Certificates per issue_batch transaction (certs and mix workloads).
    #[arg(long, default_value_t = 100)]
    pub certs_per_tx: usize,
    /// Whom transfers and remittances pay: sender i's k-th transaction pays sender
    /// i + N + k. With 1 (the default) the payees of a block are mostly its own senders: every
    /// remittance then names an account another remittance of its block names too (each
    /// appends to that account's history), so they depend on each other; with half the
    /// senders, payees send in other blocks while a block holds fewer than half the senders.
    #[arg(long, default_value_t = 1)]
    pub payee_offset: usize,
    /// Fund this many more accounts in the genesis of the cluster it starts (no keys; a large
    /// state for memory measurements).
    #[arg(long, default_value_t = 0)]
    pub extra_accounts: usize,
    /// Validators of the cluster to start on loopback.
    #[arg(long, default_value_t = 1)]
    pub validators: usize,
    /// Directory for that cluster (default: a temporary one, removed afterwards).
    #[arg(long)]
    pub home: Option<PathBuf>,
    /// First gRPC port of that cluster; validator i listens on port + i.
    #[arg(long, default_value_t = 7150)]
    pub grpc_port: u16,
    /// First libp2p port of that cluster.
    #[arg(long, default_value_t = 7170)]
    pub p2p_port: u16,
    /// Run the validators of the cluster it starts with this `quorate` executable instead of
    /// this one (to compare releases under one load generator).
    #[arg(long, conflicts_with = "nodes")]
    pub validator_binary: Option<PathBuf>,
    /// Use a running cluster instead (repeat for each validator's gRPC endpoint).
    #[arg(long = "node")]
    pub nodes: Vec<String>,
    /// With --node: directory of funded key files account-0.json (the chain admin),
    /// account-1.json … (the senders), as `quorate genesis new` writes them.
    #[arg(long, requires = "nodes")]
    pub keys: Option<PathBuf>,
    /// Longest wait for commits after the last submission.
    #[arg(long, default_value = "120s", value_parser = humantime::parse_duration)]
    pub timeout: Duration,
    /// Print the report as JSON.
    #[arg(long)]
    pub json: bool,
    /// Also write the report as JSON to this file.
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Write an SVG plot of throughput and latency over time.
    #[arg(long)]
    pub plot: Option<PathBuf>,
}

/// Runs `quorate bench`.
pub fn run(args: BenchArgs) -> anyhow::Result<ExitCode> {
    if args.senders < 2 || args.txs == 0 || args.clients == 0 || args.batch == 0 {
        bail!("need at least 2 senders, 1 transaction, 1 client and a batch of 1");
    }
    if args.workload == Workload::Certs && args.senders > workload::MAX_CERT_SENDERS {
        bail!(
            "the certs workload takes at most {} senders (each becomes a certificate authority)",
            workload::MAX_CERT_SENDERS
        );
    }
    if matches!(args.workload, Workload::Certs | Workload::Mix)
        && !(1..=2_000).contains(&args.certs_per_tx)
    {
        bail!("--certs-per-tx must be 1 to 2000");
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    runtime.block_on(async move {
        let mut cluster = Cluster::start_or_join(&args).await?;
        // Ctrl-C still stops the validators this run started.
        let outcome = tokio::select! {
            r = measure(&args, &cluster) => r,
            _ = tokio::signal::ctrl_c() => Err(anyhow::anyhow!("interrupted")),
        };
        cluster.stop().await;
        let report = outcome?;
        if let Some(path) = &args.out {
            std::fs::write(path, serde_json::to_string_pretty(&report)?)
                .with_context(|| format!("writing {}", path.display()))?;
        }
        if let Some(path) = &args.plot {
            report.plot(path)?;
        }
        if args.json {
            println!("{}", serde_json::to_string(&report)?);
        } else {
            println!("{}", report.text());
        }
        Ok(ExitCode::SUCCESS)
    })
}

/// The validators measured: started here (and stopped after) or already running.
struct Cluster {
    urls: Vec<String>,
    admin: Keypair,
    senders: Vec<Keypair>,
    children: Vec<Child>,
    _temp: Option<tempfile::TempDir>,
}

impl Cluster {
    async fn start_or_join(args: &BenchArgs) -> anyhow::Result<Self> {
        if !args.nodes.is_empty() {
            let dir = args
                .keys
                .as_deref()
                .context("--node needs --keys: the funded accounts' key files")?;
            let load = |i: usize| {
                let p = dir.join(format!("account-{i}.json"));
                KeyFile::load(&p).with_context(|| format!("key file {}", p.display()))
            };
            let admin = load(0)?;
            let senders = (1..=args.senders)
                .map(load)
                .collect::<anyhow::Result<Vec<_>>>()?;
            return Ok(Self {
                urls: args.nodes.clone(),
                admin,
                senders,
                children: Vec::new(),
                _temp: None,
            });
        }
        let (home, temp) = match &args.home {
            Some(h) => (h.clone(), None),
            None => {
                let t = tempfile::tempdir().context("creating a temporary directory")?;
                (t.path().to_owned(), Some(t))
            }
        };
        eprintln!(
            "starting {} validator(s) with {} funded accounts in {}",
            args.validators,
            args.senders + 1,
            home.display()
        );
        let layout = ChainLayout {
            grpc_port: args.grpc_port,
            p2p_port: args.p2p_port,
            extra_funded: args.extra_accounts,
            ..ChainLayout::loopback(
                "quorate-bench",
                args.validators,
                args.senders + 1,
                BENCH_BALANCE,
            )
        };
        let account_keys = match &args.validator_binary {
            None => write_chain_quietly(&home, &layout)?.account_keys,
            // That release writes its own chain, so that its configuration is one it reads.
            Some(exe) => write_chain_with(exe, &home, &layout)?,
        };
        let mut keys = account_keys.into_iter();
        let admin = keys.next().context("no admin account")?;
        let senders: Vec<Keypair> = keys.collect();
        let homes = node_homes(&home);
        let exe = match &args.validator_binary {
            Some(exe) => exe.clone(),
            None => std::env::current_exe().context("locating the quorate binary")?,
        };
        let mut children = start_validators(&exe, &homes)?;
        let mut urls = Vec::new();
        for (h, c) in homes.iter().zip(children.iter_mut()) {
            urls.push(format!("http://{}", wait_for_addr(h, c).await?));
        }
        let cluster = Self {
            urls,
            admin,
            senders,
            children,
            _temp: temp,
        };
        cluster.wait_until_producing().await?;
        Ok(cluster)
    }

    /// Waits (bounded) until every validator has committed a block.
    async fn wait_until_producing(&self) -> anyhow::Result<()> {
        let deadline = Instant::now() + Duration::from_secs(60);
        for url in &self.urls {
            loop {
                if let Ok(node) = connect(url).await {
                    if node.node_status().await.is_ok_and(|s| s.height > 0) {
                        break;
                    }
                }
                if Instant::now() > deadline {
                    bail!("{url} committed no block within 60 s");
                }
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }
        Ok(())
    }

    fn pids(&self) -> Vec<u32> {
        self.children.iter().filter_map(Child::id).collect()
    }

    async fn stop(&mut self) {
        stop(&mut self.children).await;
    }
}

/// Writes the chain of `layout` into `home` with another release's `genesis new`; returns the
/// funded accounts' keys in order.
fn write_chain_with(
    exe: &std::path::Path,
    home: &std::path::Path,
    layout: &ChainLayout,
) -> anyhow::Result<Vec<Keypair>> {
    if layout.extra_funded > 0 {
        bail!("--extra-accounts cannot be used with --validator-binary");
    }
    let out = std::process::Command::new(exe)
        .args(["genesis", "new", "--out"])
        .arg(home)
        .args(["--chain-id", &layout.chain_id])
        .args(["--validators", &layout.validators.to_string()])
        .args(["--accounts", &layout.accounts.to_string()])
        .args(["--balance", &layout.balance.to_string()])
        .args(["--grpc-port", &layout.grpc_port.to_string()])
        .args(["--p2p-port", &layout.p2p_port.to_string()])
        .output()
        .with_context(|| format!("running {} genesis new", exe.display()))?;
    if !out.status.success() {
        bail!(
            "{} genesis new failed: {}",
            exe.display(),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    (0..layout.accounts)
        .map(|i| {
            let p = home.join("keys").join(format!("account-{i}.json"));
            KeyFile::load(&p).with_context(|| format!("key file {}", p.display()))
        })
        .collect()
}

/// Submits set-up transactions and waits for each to commit successfully; returns their
/// receipts' return data.
async fn setup(node: &Node, txs: Vec<Transaction>) -> anyhow::Result<Vec<Vec<u8>>> {
    let mut hashes = Vec::with_capacity(txs.len());
    for chunk in txs.chunks(SETUP_BATCH) {
        for answer in node.submit_batch(chunk.to_vec()).await? {
            hashes.push(answer.context("set-up transaction refused")?);
        }
    }
    let mut out = Vec::with_capacity(hashes.len());
    for h in hashes {
        let outcome = node
            .wait(&h, Duration::from_secs(120))
            .await
            .context("waiting for set-up")?;
        if !outcome.succeeded() {
            bail!(
                "set-up transaction did not succeed: {}",
                outcome.receipt.error
            );
        }
        out.push(outcome.receipt.return_data.to_vec());
    }
    Ok(out)
}

/// Shared record of the measured transactions.
struct Record {
    start: Instant,
    index: HashMap<[u8; 32], usize>,
    submitted_us: Vec<AtomicU64>,
    /// How long the call that the node answered by taking the transaction took (a
    /// `MEMPOOL_FULL` retry's wait is not in it).
    acceptance_us: Vec<AtomicU64>,
    committed_us: Vec<AtomicU64>,
    accepted: AtomicU64,
    resolved: AtomicU64,
    retried: AtomicU64,
    committed: AtomicU64,
    blocks: AtomicU64,
    submitting_done: AtomicBool,
    rejected: parking_lot::Mutex<BTreeMap<String, u64>>,
}

impl Record {
    fn now_us(&self) -> u64 {
        // Never 0: 0 means "not yet".
        (self.start.elapsed().as_micros() as u64).max(1)
    }
}

async fn measure(args: &BenchArgs, cluster: &Cluster) -> anyhow::Result<Report> {
    let first = connect(&cluster.urls[0]).await?;
    let status = first.node_status().await?;
    let params = status.params.unwrap_or_default();
    let facts = ChainFacts {
        chain_id: status.chain_id.clone(),
        transfer_fuel: params.transfer_fuel,
        max_fuel_per_tx: params.max_fuel_per_tx,
    };
    let plan = Plan {
        payee_offset: args.payee_offset,
        ..Plan::new(
            args.workload,
            args.txs,
            cluster.senders.len(),
            args.certs_per_tx,
        )
    };

    // Set-up: roles and reserves, then specifications.
    let admin_nonce = first
        .account(&cluster.admin.address())
        .await
        .context("admin account")?
        .next_nonce;
    let roles = plan.setup_roles(&facts, &cluster.admin, admin_nonce, &cluster.senders);
    if !roles.is_empty() {
        eprintln!("set-up: {} role and reserve transactions", roles.len());
        setup(&first, roles).await?;
    }
    let thresholds = plan.setup_thresholds(&facts, &cluster.senders);
    if !thresholds.is_empty() {
        eprintln!("set-up: {} key sets of 2 of 3", thresholds.len());
        setup(&first, thresholds).await?;
    }
    let mut spec_of = vec![0u64; cluster.senders.len()];
    let specs = plan.setup_specs(&facts, &cluster.senders);
    if !specs.is_empty() {
        eprintln!("set-up: {} certificate specifications", specs.len());
        let returned = setup(&first, specs).await?;
        let owners = (0..cluster.senders.len()).filter(|&i| args.workload.class(i) == Class::Certs);
        for (i, data) in owners.zip(returned) {
            spec_of[i] = certs::Spec::decode(data.as_slice())
                .context("create_spec result")?
                .id;
        }
    }

    eprintln!("signing {} transactions", args.txs);
    let txs = plan.measured(&facts, &cluster.senders, &spec_of);
    let is_cert: Vec<bool> = txs
        .iter()
        .map(|(i, _)| args.workload.class(*i) == Class::Certs)
        .collect();
    let index: HashMap<[u8; 32], usize> = txs
        .iter()
        .enumerate()
        .map(|(n, (_, t))| (tx_hash(&t.body).0, n))
        .collect();
    let record = Arc::new(Record {
        start: Instant::now(),
        index,
        submitted_us: (0..txs.len()).map(|_| AtomicU64::new(0)).collect(),
        acceptance_us: (0..txs.len()).map(|_| AtomicU64::new(0)).collect(),
        committed_us: (0..txs.len()).map(|_| AtomicU64::new(0)).collect(),
        accepted: AtomicU64::new(0),
        resolved: AtomicU64::new(0),
        retried: AtomicU64::new(0),
        committed: AtomicU64::new(0),
        blocks: AtomicU64::new(0),
        submitting_done: AtomicBool::new(false),
        rejected: parking_lot::Mutex::new(BTreeMap::new()),
    });

    // Follow every block from the next one, in a task of its own (a measured transaction's
    // commit time is when its block arrives), started before the first submission.
    let from_height = first.node_status().await?.height + 1;
    let follower = {
        let record = record.clone();
        let mut blocks = first.blocks(from_height, false);
        tokio::spawn(async move {
            loop {
                let block = blocks.next().await.context("block stream")?;
                let now = record.now_us();
                record.blocks.fetch_add(1, Ordering::Relaxed);
                for h in &block.tx_hashes {
                    let Ok(h): Result<[u8; 32], _> = h.as_ref().try_into() else {
                        continue;
                    };
                    if let Some(&n) = record.index.get(&h) {
                        if record.committed_us[n].swap(now, Ordering::SeqCst) == 0 {
                            record.committed.fetch_add(1, Ordering::SeqCst);
                        }
                    }
                }
            }
            #[allow(unreachable_code)]
            anyhow::Ok(())
        })
    };

    let pids = cluster.pids();
    let traffic_start = traffic(&statuses(&cluster.urls).await?);
    let usage_start: Vec<_> = pids.iter().map(|&p| procstat::read(p)).collect();
    let progress = ProgressBar::new(txs.len() as u64);
    progress.set_style(
        ProgressStyle::with_template(
            "{elapsed_precise} [{bar:40}] {pos}/{len} committed ({per_sec}) {msg}",
        )
        .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );

    // The clients: client c sends the transactions of senders i with i % clients == c, in
    // round order, to validator c % validators.
    let mut per_client: Vec<Vec<(usize, Transaction)>> = vec![Vec::new(); args.clients];
    for (n, (i, t)) in txs.into_iter().enumerate() {
        per_client[i % args.clients].push((n, t));
    }
    let mut tasks = Vec::new();
    for (c, work) in per_client.into_iter().enumerate() {
        let node = connect(&cluster.urls[c % cluster.urls.len()]).await?;
        let record = record.clone();
        let batch = args.batch;
        let pause = (args.rate > 0).then(|| {
            Duration::from_secs_f64(batch as f64 * args.clients as f64 / args.rate as f64)
        });
        // At a fixed rate the clients take turns (client c starts c/clients of a pause late),
        // so the nodes see an even stream of batches, not every client's batch at once.
        let start =
            Instant::now() + pause.map_or(Duration::ZERO, |p| p * c as u32 / args.clients as u32);
        tasks.push(tokio::spawn(async move {
            client(node, work, batch, start, pause, record).await
        }));
    }
    let submitting = {
        let record = record.clone();
        tokio::spawn(async move {
            let mut result = Ok(());
            for t in tasks {
                match t.await {
                    Ok(Ok(())) => {}
                    Ok(Err(e)) => result = Err(e),
                    Err(e) => result = Err(anyhow::anyhow!("client task: {e}")),
                }
            }
            record.submitting_done.store(true, Ordering::SeqCst);
            result
        })
    };

    // Follow commits until every accepted transaction committed, or the timeout after the
    // last submission.
    let mut last_submit: Option<Instant> = None;
    // A short tick: the validators' CPU is read when the loop ends, so an idle tail would
    // count in the CPU per transaction of a short run.
    let mut tick = tokio::time::interval(Duration::from_millis(50));
    loop {
        let done = record.submitting_done.load(Ordering::SeqCst);
        if done && last_submit.is_none() {
            last_submit = Some(Instant::now());
        }
        let resolved = record.resolved.load(Ordering::SeqCst);
        if done
            && record.committed.load(Ordering::SeqCst) >= record.accepted.load(Ordering::SeqCst)
            && resolved as usize == record.submitted_us.len()
        {
            break;
        }
        if last_submit.is_some_and(|t| t.elapsed() > args.timeout) {
            progress.println("timed out waiting for commits");
            break;
        }
        if follower.is_finished() {
            // It ends only with an error (the node gone for longer than the stream waits).
            follower.await.context("block follower")??;
            bail!("the block stream ended");
        }
        progress.set_position(record.committed.load(Ordering::Relaxed));
        tick.tick().await;
    }
    let usage_end: Vec<_> = pids.iter().map(|&p| procstat::read(p)).collect();
    follower.abort();
    progress.finish_and_clear();
    submitting.await.context("client tasks")??;
    // Each validator's committed height right after the last commit (one left behind shows as
    // a gap of several heights), and the traffic.
    let end = statuses(&cluster.urls).await?;
    let heights = end.iter().map(|s| s.height).collect();
    let mut p2p_received = traffic(&end);
    for (kind, bytes) in &mut p2p_received {
        *bytes = bytes.saturating_sub(traffic_start.get(kind).copied().unwrap_or(0));
    }

    progress.println("reading receipts");
    let (failed, failure_example) = count_failed(&first, &record).await?;

    let submitted: Vec<u64> = record
        .submitted_us
        .iter()
        .map(|a| a.load(Ordering::SeqCst))
        .collect();
    let committed: Vec<u64> = record
        .committed_us
        .iter()
        .map(|a| a.load(Ordering::SeqCst))
        .collect();
    let first_submit = submitted
        .iter()
        .copied()
        .filter(|&s| s > 0)
        .min()
        .unwrap_or(0);
    let last_commit = committed.iter().copied().max().unwrap_or(0);
    let duration_s = last_commit.saturating_sub(first_submit) as f64 / 1e6;
    let mut latencies: Vec<u64> = submitted
        .iter()
        .zip(&committed)
        .filter(|(&s, &c)| s > 0 && c > 0)
        .map(|(&s, &c)| c.saturating_sub(s))
        .collect();
    let mut acceptance: Vec<u64> = record
        .acceptance_us
        .iter()
        .map(|a| a.load(Ordering::SeqCst))
        .filter(|&a| a > 0)
        .collect();
    let n_committed = record.committed.load(Ordering::SeqCst);
    let tps = if duration_s > 0.0 {
        n_committed as f64 / duration_s
    } else {
        0.0
    };
    let cert_txs = committed
        .iter()
        .zip(&is_cert)
        .filter(|(&c, &cert)| c > 0 && cert)
        .count();
    let certificates_per_s = if duration_s > 0.0 {
        (cert_txs * args.certs_per_tx) as f64 / duration_s
    } else {
        0.0
    };
    let usage = usage_start
        .iter()
        .zip(&usage_end)
        .enumerate()
        .filter_map(|(v, (a, b))| {
            let (a, b) = (a.as_ref()?, b.as_ref()?);
            Some(ValidatorUsage {
                validator: v,
                cpu_percent: procstat::cpu_percent(a, b),
                cpu_us_per_tx: if n_committed == 0 {
                    0.0
                } else {
                    procstat::cpu_seconds(a, b) * 1e6 / n_committed as f64
                },
                rss_mib: b.rss_kib as f64 / 1024.0,
                peak_rss_mib: b.peak_rss_kib as f64 / 1024.0,
            })
        })
        .collect();
    let timeline = report::timeline(&submitted, &committed);
    let rejected = record.rejected.lock().clone();
    Ok(Report {
        workload: args.workload,
        validators: cluster.urls.len(),
        senders: cluster.senders.len(),
        clients: args.clients,
        batch: args.batch,
        rate: args.rate,
        certs_per_tx: if is_cert.contains(&true) {
            args.certs_per_tx
        } else {
            0
        },
        txs: submitted.len(),
        accepted: record.accepted.load(Ordering::SeqCst),
        rejected,
        retried: record.retried.load(Ordering::SeqCst),
        committed: n_committed,
        failed_in_execution: failed,
        failure_example,
        duration_s,
        committed_tps: tps,
        certificates_per_s,
        latency: Latency::of(&mut latencies),
        acceptance: Latency::of(&mut acceptance),
        blocks: record.blocks.load(Ordering::SeqCst),
        usage,
        p2p_received,
        heights,
        timeline,
    })
}

/// Every validator's status, read one after another.
async fn statuses(urls: &[String]) -> anyhow::Result<Vec<NodeStatus>> {
    let mut out = Vec::with_capacity(urls.len());
    for url in urls {
        out.push(connect(url).await?.node_status().await?);
    }
    Ok(out)
}

/// p2p payload bytes received so far by all the validators together, by kind.
fn traffic(statuses: &[NodeStatus]) -> BTreeMap<String, u64> {
    let mut total = BTreeMap::new();
    for t in statuses.iter().flat_map(|s| &s.p2p_traffic) {
        *total.entry(t.kind.clone()).or_insert(0) += t.received_bytes;
    }
    total
}

/// One client: submits its transactions in order, in batches, retrying `MEMPOOL_FULL`.
async fn client(
    node: Node,
    work: Vec<(usize, Transaction)>,
    batch: usize,
    start: Instant,
    pause: Option<Duration>,
    record: Arc<Record>,
) -> anyhow::Result<()> {
    let mut next_send = start;
    let mut sender = node.sender();
    for chunk in work.chunks(batch) {
        if let Some(p) = pause {
            tokio::time::sleep_until(next_send.into()).await;
            next_send += p;
        }
        let mut pending: Vec<&(usize, Transaction)> = chunk.iter().collect();
        while !pending.is_empty() {
            let now = record.now_us();
            for (n, _) in &pending {
                // The first attempt's time: a retry's wait is part of the latency.
                let _ = record.submitted_us[*n].compare_exchange(
                    0,
                    now,
                    Ordering::SeqCst,
                    Ordering::SeqCst,
                );
            }
            // The node's answers as given: a refusal is counted, not taken for an error.
            let answers = if pending.len() == 1 {
                match sender.submit_as_is(&pending[0].1).await {
                    Err(e) if e.reject_code().is_none() => return Err(e).context("submit"),
                    answer => vec![answer],
                }
            } else {
                sender
                    .submit_batch(pending.iter().map(|(_, t)| t.clone()).collect())
                    .await
                    .context("submit batch")?
            };
            let answered = record.now_us();
            let mut retry = Vec::new();
            for (item, answer) in pending.iter().zip(answers) {
                match answer.as_ref().map_err(ClientError::reject_code) {
                    Ok(_) => {
                        // Never 0: 0 means "not yet".
                        let took = answered.saturating_sub(now).max(1);
                        record.acceptance_us[item.0].store(took, Ordering::SeqCst);
                        record.accepted.fetch_add(1, Ordering::SeqCst);
                        record.resolved.fetch_add(1, Ordering::SeqCst);
                    }
                    Err(Some(RejectCode::MempoolFull)) => {
                        record.retried.fetch_add(1, Ordering::Relaxed);
                        retry.push(*item);
                    }
                    Err(code) => {
                        let name = code.map_or_else(
                            || "UNKNOWN".to_owned(),
                            |c| {
                                c.as_str_name()
                                    .trim_start_matches("REJECT_CODE_")
                                    .to_owned()
                            },
                        );
                        *record.rejected.lock().entry(name).or_default() += 1;
                        record.resolved.fetch_add(1, Ordering::SeqCst);
                    }
                }
            }
            if !retry.is_empty() {
                tokio::time::sleep(RETRY_PAUSE).await;
            }
            pending = retry;
        }
    }
    Ok(())
}

/// How many committed measured transactions failed in execution, and one failure's error
/// (from their receipts, read 64 at a time).
async fn count_failed(node: &Node, record: &Record) -> anyhow::Result<(u64, Option<String>)> {
    use futures::{StreamExt, TryStreamExt};
    let committed: Vec<[u8; 32]> = record
        .index
        .iter()
        .filter(|(_, &n)| record.committed_us[n].load(Ordering::SeqCst) > 0)
        .map(|(h, _)| *h)
        .collect();
    let statuses: Vec<Option<String>> = futures::stream::iter(committed)
        .map(|h| async move {
            let s = node.status(&quorate_proto::Hash32(h)).await?;
            anyhow::Ok(
                s.receipt
                    .filter(|r| r.status != ExecStatus::Success as i32)
                    .map(|r| r.error),
            )
        })
        .buffer_unordered(64)
        .try_collect()
        .await?;
    let mut failures = statuses.into_iter().flatten();
    let first = failures.next();
    let count = u64::from(first.is_some()) + failures.count() as u64;
    Ok((count, first))
}
