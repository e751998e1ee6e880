//! `quorate-nodesim`: runs seeds of the deterministic node simulator and prints one line per
//! seed; a seed that breaks an invariant is printed with its violations and the command that
//! replays it, and the exit status is 1.

use std::process::ExitCode;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use clap::Parser;
use quorate_node::sim::{self, Mix};

/// Runs whole validators in one process on a simulated network and clock.
#[derive(Parser)]
#[command(name = "quorate-nodesim")]
struct Args {
    /// What the runs throw at the validators.
    #[arg(long, value_enum, default_value_t = Mix::All)]
    mix: Mix,
    /// One seed to run.
    #[arg(long, conflicts_with = "seeds")]
    seed: Option<u64>,
    /// A range of seeds, `FROM..TO` (TO excluded).
    #[arg(long, default_value = "0..10")]
    seeds: String,
    /// The Byzantine validator's behaviour in every run of the `byzantine` and `withhold` mixes
    /// (otherwise drawn from the seed).
    #[arg(long, value_enum)]
    liar: Option<quorate_node::byzantine::Behaviour>,
    /// Stop at the first seed that breaks an invariant.
    #[arg(long)]
    stop_at_first: bool,
    /// Print the validators' logs (debug and above) to stderr.
    #[arg(long)]
    verbose: bool,
    /// Wall-clock seconds one seed may take: a run that never ends (a validator spinning
    /// without letting simulated time pass) is reported as a livelock.
    #[arg(long, default_value_t = 600)]
    wall_limit_s: u64,
}

/// Reports the seed being run as a livelock once it has run `limit` of wall time, and exits.
fn watchdog(current: Arc<Mutex<Option<(u64, Instant)>>>, mix: Mix, liar: String, limit: Duration) {
    std::thread::spawn(move || loop {
        std::thread::sleep(Duration::from_secs(1));
        let Some((seed, since)) = *current.lock().unwrap_or_else(|e| e.into_inner()) else {
            continue;
        };
        if since.elapsed() > limit {
            println!("seed={seed} mix={mix} violations=1");
            println!(
                "  VIOLATION seed={seed}: livelock: the run did not end within {} s of wall time (simulated time stopped passing)",
                limit.as_secs()
            );
            println!("  replay: {}{liar}", sim::replay_command(seed, mix));
            println!("summary mix={mix} failed=1 (livelock)");
            let _ = std::io::Write::flush(&mut std::io::stdout());
            std::process::exit(1);
        }
    });
}

fn main() -> ExitCode {
    let args = Args::parse();
    if args.verbose {
        tracing_subscriber::fmt()
            .with_max_level(tracing::Level::DEBUG)
            .with_writer(std::io::stderr)
            .init();
    }
    let seeds = match args.seed {
        Some(s) => s..s + 1,
        None => match args
            .seeds
            .split_once("..")
            .map(|(a, b)| (a.parse(), b.parse()))
        {
            Some((Ok(a), Ok(b))) if a < b => a..b,
            _ => {
                eprintln!(
                    "--seeds must be FROM..TO with FROM < TO, got {:?}",
                    args.seeds
                );
                return ExitCode::from(2);
            }
        },
    };
    let (mut failed, mut runs, mut simulated, started) = (0u64, 0u64, 0f64, Instant::now());
    let replay_liar = args
        .liar
        .and_then(|b| clap::ValueEnum::to_possible_value(&b))
        .map(|v| format!(" --liar {}", v.get_name()))
        .unwrap_or_default();
    let current = Arc::new(Mutex::new(None));
    watchdog(
        current.clone(),
        args.mix,
        replay_liar.clone(),
        Duration::from_secs(args.wall_limit_s),
    );
    for seed in seeds {
        let t = Instant::now();
        *current.lock().unwrap_or_else(|e| e.into_inner()) = Some((seed, t));
        let mut plan = sim::Plan::new(seed, args.mix);
        if let (Some(b), Some((v, _))) = (args.liar, plan.liar) {
            plan.liar = Some((v, b));
        }
        let liar = plan
            .liar
            .map_or("none".to_owned(), |(v, b)| format!("{v}:{b:?}"));
        let drawn = plan.drawn;
        let r = sim::run_plan(plan);
        runs += 1;
        simulated += r.simulated.as_secs_f64();
        println!(
            "seed={seed} mix={} drawn={drawn} liar={liar} height={} simulated_s={:.1} delivered={} lost={} crashes={} submissions={} acknowledged={} byzantine_acts={} fetched_elsewhere={} refused_gossip={} copies_dropped={} refused_sync={} charged={} artifacts_lost={} counter_calls={} counter_calls_after_loss={} param_changes={} protocol_v2_from={} trace={} violations={} wall_ms={}",
            args.mix,
            r.height,
            r.simulated.as_secs_f64(),
            r.delivered,
            r.lost,
            r.crashes,
            r.submissions,
            r.acknowledged,
            r.byzantine_acts,
            r.fetched_elsewhere,
            r.refused_gossip,
            r.copies_dropped,
            r.refused_sync,
            r.charged,
            r.artifacts_lost,
            r.counter_calls,
            r.counter_calls_after_loss,
            r.param_changes,
            r.protocol_activated_at.unwrap_or(0),
            r.trace,
            r.violations.len(),
            t.elapsed().as_millis()
        );
        if !r.violations.is_empty() {
            failed += 1;
            for v in &r.violations {
                println!("  VIOLATION seed={seed}: {v}");
            }
            println!(
                "  replay: {}{replay_liar}",
                sim::replay_command(seed, args.mix)
            );
            if args.stop_at_first {
                break;
            }
        }
    }
    println!(
        "summary mix={} runs={runs} failed={failed} simulated_h={:.2} wall_s={:.0}",
        args.mix,
        simulated / 3600.0,
        started.elapsed().as_secs_f64()
    );
    if failed > 0 {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    }
}
