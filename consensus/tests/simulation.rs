//! Thousands of seeded schedules per fault mix through the deterministic simulator, plus a
//! deliberately broken protocol that the invariant checker must catch.
//!
//! `QUORATE_SIM_SCHEDULES=N cargo test -p quorate-consensus --test simulation` runs N per mix.

use quorate_consensus::sim::{run, FaultMix, Scenario, Violation};
use quorate_consensus::InjectedFault;

fn schedules() -> u64 {
    std::env::var("QUORATE_SIM_SCHEDULES")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(2_000)
}

fn run_mix(mix: FaultMix) {
    let n = schedules();
    let mut committed = 0u64;
    for seed in 0..n {
        let report = run(&Scenario::generate(seed, mix));
        assert!(report.violation.is_none(), "{report}");
        committed += report.heights.iter().copied().max().unwrap_or(0);
    }
    // Every schedule heals and must then gain heights; the sum shows the runs did work.
    assert!(
        committed >= 3 * n,
        "only {committed} heights over {n} schedules"
    );
    println!("mix {mix}: {n} schedules, {committed} heights committed, no violation");
}

#[test]
fn network_faults_only() {
    run_mix(FaultMix::Network);
}

#[test]
fn crashes_and_restarts() {
    run_mix(FaultMix::Crash);
}

#[test]
fn partitions_that_heal() {
    run_mix(FaultMix::Partition);
}

#[test]
fn byzantine_validators() {
    run_mix(FaultMix::Byzantine);
}

#[test]
fn everything_together() {
    run_mix(FaultMix::All);
}

#[test]
fn a_seed_replays_exactly() {
    for mix in FaultMix::ALL {
        let sc = Scenario::generate(7, mix);
        let (a, b) = (run(&sc), run(&sc));
        assert_eq!(
            (a.heights, a.events, a.misbehaviour),
            (b.heights, b.events, b.misbehaviour)
        );
    }
}

/// Honest validators that ignore their lock must be caught committing different blocks:
/// the checker is not blind.
#[test]
fn ignoring_the_lock_is_caught() {
    let mut caught = Vec::new();
    for seed in 0..2_000 {
        let mut sc = Scenario::generate(seed, FaultMix::Byzantine);
        sc.broken = Some(InjectedFault::IgnoreLock);
        let report = run(&sc);
        if let Some(v) = &report.violation {
            assert!(
                matches!(v, Violation::Disagreement { .. }),
                "unexpected violation {report}"
            );
            caught.push(seed);
        }
    }
    assert!(
        !caught.is_empty(),
        "the broken protocol passed 2,000 schedules"
    );
    // The same schedules with the lock honoured are safe.
    for &seed in &caught {
        let report = run(&Scenario::generate(seed, FaultMix::Byzantine));
        assert!(report.violation.is_none(), "{report}");
    }
    println!("ignore-lock caught by seeds {caught:?}");
}
