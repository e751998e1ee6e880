//! Runs the deterministic consensus simulator over many seeds and prints what happened.
//!
//! `cargo run --release -p quorate-consensus --features sim --bin quorate-sim -- \
//!    [--mix network|crash|partition|byzantine|all|set-change|lost-writes] [--schedules N] [--start SEED] \
//!    [--seed SEED] [--broken ignore-lock] [--verbose]`

use std::process::ExitCode;
use std::time::Instant;

use quorate_consensus::sim::{run, FaultMix, Scenario};
use quorate_consensus::InjectedFault;

struct Args {
    mixes: Vec<FaultMix>,
    schedules: u64,
    start: u64,
    single: Option<u64>,
    broken: Option<InjectedFault>,
    verbose: bool,
}

fn parse() -> Result<Args, String> {
    let mut a = Args {
        mixes: FaultMix::ALL.to_vec(),
        schedules: 1000,
        start: 0,
        single: None,
        broken: None,
        verbose: false,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().ok_or_else(|| format!("{flag} needs a value"));
        match flag.as_str() {
            "--mix" => a.mixes = vec![value()?.parse()?],
            "--schedules" => a.schedules = value()?.parse().map_err(|e| format!("--schedules: {e}"))?,
            "--start" => a.start = value()?.parse().map_err(|e| format!("--start: {e}"))?,
            "--seed" => a.single = Some(value()?.parse().map_err(|e| format!("--seed: {e}"))?),
            "--broken" => match value()?.as_str() {
                "ignore-lock" => a.broken = Some(InjectedFault::IgnoreLock),
                other => return Err(format!("unknown --broken {other:?}: use ignore-lock")),
            },
            "--verbose" => a.verbose = true,
            "--help" | "-h" => {
                return Err("usage: quorate-sim [--mix network|crash|partition|byzantine|all|set-change|lost-writes] \
                    [--schedules N] [--start SEED] [--seed SEED] [--broken ignore-lock] [--verbose]"
                    .into())
            }
            other => return Err(format!("unknown argument {other:?} (try --help)")),
        }
    }
    Ok(a)
}

fn main() -> ExitCode {
    let args = match parse() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(2);
        }
    };
    let seeds: Vec<u64> = match args.single {
        Some(s) => vec![s],
        None => (args.start..args.start + args.schedules).collect(),
    };
    let mut violations = 0u64;
    for mix in &args.mixes {
        let started = Instant::now();
        let (mut heights_min, mut heights_max, mut heights_sum, mut events) = (u64::MAX, 0, 0, 0);
        let (mut failed, mut lost) = (0u64, 0u64);
        for &seed in &seeds {
            let mut sc = Scenario::generate(seed, *mix);
            sc.broken = args.broken;
            let r = run(&sc);
            let top = r.heights.iter().copied().max().unwrap_or(0);
            heights_min = heights_min.min(top);
            heights_max = heights_max.max(top);
            heights_sum += top;
            events += r.events;
            lost += r.lost_commits;
            if r.violation.is_some() {
                failed += 1;
                println!("{r}");
            } else if args.verbose || args.single.is_some() {
                println!("{r}");
            }
        }
        violations += failed;
        println!(
            "mix {mix}: {} schedules, seeds {}..={}, heights committed min {} avg {:.1} max {}, {} events, {} commits lost unsynced, {} violations, {:.1}s",
            seeds.len(),
            seeds.first().copied().unwrap_or(0),
            seeds.last().copied().unwrap_or(0),
            heights_min,
            heights_sum as f64 / seeds.len().max(1) as f64,
            heights_max,
            events,
            lost,
            failed,
            started.elapsed().as_secs_f64()
        );
    }
    if violations > 0 {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    }
}
