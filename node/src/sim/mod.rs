//! The deterministic node simulator: whole validators (driver, chain on RocksDB in temporary
//! directories, mempool, admission, sync server, execution with the system contracts) in one
//! process, their network replaced by a simulated one ([`net`]), their time by tokio's paused
//! clock, blocking work run inline ([`crate::environment`]), and every choice taken from one
//! seed: one seed replays one run.
//!
//! A run has two phases. During the *storm* the network delays, drops, duplicates, reorders
//! and partitions per link, validators crash and restart from their disk, at most f validators
//! lie ([`Mix`]), and clients submit single-key, co-signed and contract transactions through
//! admission, retrying on timeouts. Then the network *heals*: every link delivers, every
//! crashed validator restarts, and every honest validator must commit within a bounded
//! simulated time. Checked throughout and at the end ([`checks`]): agreement, validity of
//! every committed block and of every block an honest node serves, liveness after the heal,
//! nothing acknowledged lost, a transaction hash included at most once, and what each node
//! keeps bounded.

mod checks;
mod clients;
mod net;
mod validator;

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;
use quorate_proto::Keypair;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::byzantine::Behaviour;

pub use checks::Violation;

/// Validators in a simulated chain (f = 1).
pub const VALIDATORS: usize = 4;
/// Client accounts (funded at genesis; the first is the chain's admin and certificate
/// authority).
pub const ACCOUNTS: usize = 8;

/// What a run throws at the validators.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Mix {
    /// A healthy network, no crash, no liar (the baseline).
    Calm,
    /// Delays, drops, duplicates, reordering, partitions and crashes; everyone honest.
    Faults,
    /// One validator lies (a behaviour chosen by the seed) and tells each peer something
    /// different, on a faulty network, with crashes.
    Byzantine,
    /// One validator withholds bodies and transactions from one victim, or answers its fetches
    /// with re-signed copies; the others are honest; the network is faulty.
    Withhold,
    /// A seed-chosen mix of the above.
    All,
}

impl fmt::Display for Mix {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use clap::ValueEnum as _;
        let name = self
            .to_possible_value()
            .map(|v| v.get_name().to_owned())
            .unwrap_or_default();
        f.write_str(&name)
    }
}

/// The behaviours a Byzantine validator of the simulator draws from: all but `Flood`, and
/// `ForgedSnapshots`, which lies only to nodes joining by state sync (simulated validators
/// restart from their disk; its refusals are shown on processes, `forged_snapshots`).
const LIARS: &[Behaviour] = &[
    Behaviour::ReencodeHeader,
    Behaviour::SplitBodies,
    Behaviour::FutureTime,
    Behaviour::PastTime,
    Behaviour::Equivocate,
    Behaviour::AbsurdVotes,
    Behaviour::JunkSync,
    Behaviour::BadTxs,
    Behaviour::Silent,
    Behaviour::Withhold,
    Behaviour::ResignFetched,
    Behaviour::VoidTxs,
    Behaviour::BodilessProposals,
    Behaviour::ForgedVotes,
    Behaviour::SyncFlood,
    Behaviour::AmplifyingGossip,
    Behaviour::Republish,
];

/// Everything a run is made of, derived from its seed and mix.
#[derive(Clone, Debug)]
pub struct Plan {
    /// The seed.
    pub seed: u64,
    /// The mix asked for.
    pub mix: Mix,
    /// The mix this seed drew (differs from `mix` only for [`Mix::All`]).
    pub drawn: Mix,
    /// The Byzantine validator and its behaviour, if any.
    pub liar: Option<(usize, Behaviour)>,
    /// Link behaviour during the storm.
    pub faults: net::Faults,
    /// Crashes and partitions during the storm.
    pub crashes: bool,
    /// Simulated length of the storm.
    pub storm: Duration,
    /// Simulated time the validators get after the heal to commit.
    pub heal_window: Duration,
    /// Longest simulated time one piece of blocking work (a read, a write, an execution)
    /// takes; each draws its own from 0 up to this.
    pub disk_ms: u64,
}

impl Plan {
    /// The run of `seed` in `mix`.
    pub fn new(seed: u64, mix: Mix) -> Self {
        let mut rng = ChaCha8Rng::seed_from_u64(seed ^ 0x51_4d_50_4c_41_4e);
        let drawn = match mix {
            Mix::All => {
                [Mix::Calm, Mix::Faults, Mix::Byzantine, Mix::Withhold][rng.gen_range(0..4)]
            }
            m => m,
        };
        let liar = match drawn {
            Mix::Byzantine => Some((
                rng.gen_range(0..VALIDATORS),
                LIARS[rng.gen_range(0..LIARS.len())],
            )),
            Mix::Withhold => Some((
                rng.gen_range(0..VALIDATORS),
                if rng.gen_bool(0.5) {
                    Behaviour::Withhold
                } else {
                    Behaviour::ResignFetched
                },
            )),
            _ => None,
        };
        let faults = match drawn {
            Mix::Calm => net::Faults::none(),
            _ => net::Faults::draw(&mut rng),
        };
        Self {
            seed,
            mix,
            drawn,
            liar,
            faults,
            crashes: !matches!(drawn, Mix::Calm) && rng.gen_bool(0.7),
            storm: Duration::from_secs(match drawn {
                Mix::Calm => rng.gen_range(10..=20),
                _ => rng.gen_range(15..=30),
            }),
            heal_window: Duration::from_secs(60),
            disk_ms: rng.gen_range(0..=30),
        }
    }

    /// Whether validator `i` is honest.
    pub fn honest(&self, i: usize) -> bool {
        self.liar.is_none_or(|(l, _)| l != i)
    }
}

/// What a run did and found.
#[derive(Debug, Default, Clone)]
pub struct Report {
    /// Broken invariants (empty for a clean run).
    pub violations: Vec<Violation>,
    /// Highest height committed by every honest validator at the end.
    pub height: u64,
    /// Simulated time of the whole run.
    pub simulated: Duration,
    /// Messages and answers the network delivered.
    pub delivered: u64,
    /// Messages and answers it lost (drops, partitions, a crashed end).
    pub lost: u64,
    /// Crashes (each followed by a restart from disk).
    pub crashes: u64,
    /// Client transactions acknowledged as committed.
    pub acknowledged: u64,
    /// Client submissions (retries included).
    pub submissions: u64,
    /// How many times the Byzantine validator's behaviour acted.
    pub byzantine_acts: u64,
    /// Body and transaction fetches honest validators sent to someone other than the block's
    /// proposer (asking elsewhere).
    pub fetched_elsewhere: u64,
    /// Gossip refused by honest validators' checks.
    pub refused_gossip: u64,
    /// Consensus messages honest validators dropped as copies of one waiting for their driver.
    pub copies_dropped: u64,
    /// The most blocks whose proposer an honest validator remembered at one height, as sampled.
    pub most_proposers_remembered: u64,
    /// Sync requests honest validators refused (over the per-peer limit, a full queue, or
    /// while down).
    pub refused_sync: u64,
    /// Restarts that found their artifact cache damaged (drawn for each restart) and compiled
    /// the contracts without machine code again: each must run every contract as before.
    pub artifacts_lost: u64,
    /// Calls of the trusted deployer's precompiled counter acknowledged as committed, each
    /// with a receipt of the machine code's result.
    pub counter_calls: u64,
    /// Parameter changes by the chain admin acknowledged as committed with success (ADR 0017;
    /// every height after is judged by the new parameters).
    pub param_changes: u64,
    /// The height from which protocol version 2 is in force, when the chain admin activated it
    /// with success (only in builds that support it, feature `protocol-test-v2`; ADR 0019):
    /// every honest validator's blocks from it on must carry version 2, those before version 1.
    pub protocol_activated_at: Option<u64>,
    /// Of those, the ones an honest validator executed after it restarted with its artifacts
    /// damaged while holding the counter: the call's height above the validator's height when
    /// it stopped, and at or below its height at the end.
    pub counter_calls_after_loss: u64,
    /// Answers the honest validators running at the end charged as proving their sender
    /// dishonest (each charge of an honest validator is an `accused` violation).
    pub charged: u64,
    /// A digest of every commit (validator, height, block, simulated time): equal for two runs
    /// of one seed.
    pub trace: String,
}

/// Runs seed `seed` of `mix` to the end and checks it.
pub fn run(seed: u64, mix: Mix) -> Report {
    run_plan(Plan::new(seed, mix))
}

/// Runs `plan` (on a fresh single-threaded runtime with a paused clock).
pub fn run_plan(plan: Plan) -> Report {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .start_paused(true)
        .build()
        .expect("a current-thread runtime builds");
    let report = runtime.block_on(async move {
        // The simulated wall clock starts at a fixed instant, so blocks are the same bytes in
        // every run of a seed.
        crate::environment::simulate(GENESIS_TIME_MS + 1_000);
        let r = World::run(plan).await;
        crate::environment::stop_simulating();
        r
    });
    // Tasks still parked (a crashed node's leftovers) go with the runtime.
    runtime.shutdown_background();
    report
}

/// The genesis time of every simulated chain.
const GENESIS_TIME_MS: u64 = 1_767_225_600_000;

/// The simulated world: validators, network, clients, and the seeded randomness they share.
pub(crate) struct World {
    plan: Plan,
    rng: Mutex<ChaCha8Rng>,
    generated: quorate_genesis::Generated,
    validators: Vec<Mutex<validator::Slot>>,
    net: net::Net,
    checks: checks::Checks,
    stats: Mutex<Report>,
    /// The trusted deployer's precompiled counter.
    precompiled: clients::Precompiled,
    /// Where the counter's life stands.
    counter: Mutex<CounterProgress>,
    /// When the run started (simulated).
    started: tokio::time::Instant,
}

impl World {
    async fn run(plan: Plan) -> Report {
        let mut rng = ChaCha8Rng::seed_from_u64(plan.seed);
        let key = |rng: &mut ChaCha8Rng| Keypair::from_secret(&rng.gen::<[u8; 32]>());
        let validator_keys = (0..VALIDATORS).map(|_| key(&mut rng)).collect();
        let account_keys = (0..ACCOUNTS).map(|_| key(&mut rng)).collect();
        let mut generated = quorate_genesis::generate_from_keys(
            "quorate-sim",
            validator_keys,
            account_keys,
            1_000_000_000,
            GENESIS_TIME_MS,
        )
        .expect("the simulated genesis is valid");
        // The chain names its engine, so its trusted deployer may deploy machine code.
        let precompiled = clients::Precompiled::build(&generated.genesis.params);
        generated.genesis.engine_fingerprint = Some(hex::encode(precompiled.engine));
        // The genesis state (system contracts compiled and installed) is built once and
        // copied to every validator's directory: compiling is most of a start's work.
        let template = validator::genesis_template(&generated);
        let validators = (0..VALIDATORS)
            .map(|i| {
                let behaviour = plan.liar.filter(|(l, _)| *l == i).map(|(_, b)| b);
                Mutex::new(validator::Slot::new(
                    i,
                    &generated,
                    template.path(),
                    behaviour,
                ))
            })
            .collect();
        let net = net::Net::new(plan.faults.clone(), &mut rng);
        let world = Arc::new(World {
            net,
            started: tokio::time::Instant::now(),
            checks: checks::Checks::default(),
            rng: Mutex::new(rng),
            generated,
            validators,
            stats: Mutex::new(Report::default()),
            precompiled,
            counter: Mutex::default(),
            plan,
        });
        let started = world.started;
        let disk = world.clone();
        crate::environment::set_blocking_latency(Some(Box::new(move || {
            let max = disk.plan.disk_ms;
            Duration::from_millis(disk.rng(|r| r.gen_range(0..=max)))
        })));
        for i in 0..VALIDATORS {
            validator::start(&world, i);
        }
        let sampler = tokio::spawn(checks::sample(world.clone()));
        let clients = tokio::spawn(clients::run(world.clone()));
        let storm_end = started + world.plan.storm;
        if world.plan.crashes {
            validator::crash_and_partition_until(&world, storm_end).await;
        } else {
            tokio::time::sleep_until(storm_end).await;
        }
        // The heal: every link delivers, every validator runs.
        world.net.heal();
        for i in 0..VALIDATORS {
            validator::restart_if_down(&world, i).await;
        }
        let healed_at = world.honest_heights().into_iter().max().unwrap_or(0);
        let deadline = tokio::time::Instant::now() + world.plan.heal_window;
        let live = loop {
            let heights = world.honest_heights();
            if heights.iter().all(|h| *h >= healed_at + 2) {
                break true;
            }
            if tokio::time::Instant::now() >= deadline {
                break false;
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        };
        if !live {
            world.checks.violate(Violation::Liveness {
                healed_at,
                heights: world.honest_heights(),
                window_s: world.plan.heal_window.as_secs(),
            });
        }
        clients.abort();
        sampler.abort();
        // Let in-flight commits land before the final reading.
        tokio::time::sleep(Duration::from_secs(2)).await;
        let mut report = world.stats.lock().clone();
        report.counter_calls_after_loss = world.counter_calls_after_loss();
        checks::at_end(&world, &mut report);
        for i in 0..VALIDATORS {
            validator::stop(&world, i);
        }
        report.simulated = started.elapsed();
        report.violations = world.checks.take();
        crate::environment::set_blocking_latency(None);
        report
    }

    /// A number from the run's randomness.
    fn rng<T>(&self, f: impl FnOnce(&mut ChaCha8Rng) -> T) -> T {
        f(&mut self.rng.lock())
    }

    /// The committed heights of the honest validators now (of their databases; a stopped one
    /// counts with what it had).
    fn honest_heights(&self) -> Vec<u64> {
        (0..VALIDATORS)
            .filter(|i| self.plan.honest(*i))
            .map(|i| self.validators[i].lock().height())
            .collect()
    }
}

/// The heights that matter for the precompiled counter.
#[derive(Debug, Default)]
struct CounterProgress {
    /// Where its deploy was acknowledged (with a receipt that created it).
    deployed_at: Option<u64>,
    /// Where each acknowledged call of it committed (each returning the machine code's value).
    calls: Vec<u64>,
    /// Honest validators that held it and restarted with their artifacts damaged, each with
    /// its height when it stopped.
    losses: Vec<(usize, u64)>,
}

impl World {
    /// Calls of the counter an honest validator executed after restarting without its
    /// artifacts (see [`Report::counter_calls_after_loss`]).
    fn counter_calls_after_loss(&self) -> u64 {
        // The slots are locked apart from the counter (a start locks its slot, then the
        // counter).
        let (losses, calls) = {
            let c = self.counter.lock();
            (c.losses.clone(), c.calls.clone())
        };
        let ends: Vec<(u64, u64)> = losses
            .iter()
            .map(|(v, stopped)| (*stopped, self.validators[*v].lock().height()))
            .collect();
        calls
            .iter()
            .filter(|h| {
                ends.iter()
                    .any(|(stopped, end)| *stopped < **h && **h <= *end)
            })
            .count() as u64
    }
}

/// The command that replays seed `seed` of `mix`.
pub fn replay_command(seed: u64, mix: Mix) -> String {
    format!(
        "cargo run --release -p quorate-node --features sim --bin quorate-nodesim -- --mix {mix} --seed {seed} --verbose"
    )
}

#[cfg(test)]
mod tests;
