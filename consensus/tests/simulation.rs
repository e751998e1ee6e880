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
fn validator_set_changes() {
    run_mix(FaultMix::SetChange);
}

/// The schedules with set changes really change the set: some add a validator, some remove
/// one, some replace one, and some of those happen while validators crash or one is Byzantine.
#[test]
fn set_change_schedules_cover_add_remove_replace_under_faults() {
    let (mut add, mut remove, mut replace, mut with_crash, mut with_byzantine) = (0, 0, 0, 0, 0);
    for seed in 0..200 {
        for mix in [FaultMix::SetChange, FaultMix::Crash, FaultMix::All] {
            let sc = Scenario::generate(seed, mix);
            let mut before = sc.sets.genesis.clone();
            for c in &sc.sets.changes {
                match c.members.len().cmp(&before.len()) {
                    std::cmp::Ordering::Greater => add += 1,
                    std::cmp::Ordering::Less => remove += 1,
                    std::cmp::Ordering::Equal => replace += 1,
                }
                before = c.members.clone();
            }
            if !sc.sets.changes.is_empty() {
                with_crash += usize::from(mix == FaultMix::Crash);
                with_byzantine += usize::from(mix != FaultMix::Crash && !sc.byzantine.is_empty());
            }
        }
    }
    assert!(
        add > 0 && remove > 0 && replace > 0 && with_crash > 0 && with_byzantine > 0,
        "add {add} remove {remove} replace {replace} crash {with_crash} byzantine {with_byzantine}"
    );
}

#[test]
fn commits_lost_before_their_sync() {
    run_mix(FaultMix::LostWrites);
}

/// Commits written without fsync and lost in a crash are decided again, identically (the
/// consensus record their write would have pruned survives with them): the schedules really
/// lose commits, including those of lone validators, and nothing breaks.
#[test]
fn lost_commits_are_decided_again_the_same() {
    let (mut lost, mut lone) = (0, 0);
    for seed in 0..400 {
        let sc = Scenario::generate(seed, FaultMix::LostWrites);
        let report = run(&sc);
        assert!(report.violation.is_none(), "{report}");
        lost += report.lost_commits;
        lone += u64::from(sc.n == 1 && report.lost_commits > 0);
    }
    assert!(
        lost >= 10 && lone > 0,
        "{lost} commits lost, {lone} by a lone validator"
    );
}

/// The simulator's model of lost writes has teeth: a host whose pruning of the consensus record
/// stayed durable while the commit was lost (a record kept in a log synced apart from the
/// blocks) lets a lone validator decide a second block at a height it had committed.
#[test]
fn a_record_pruned_apart_from_the_commit_is_caught() {
    let mut caught = 0;
    for seed in 0..400 {
        let mut sc = Scenario::generate(seed, FaultMix::LostWrites);
        sc.record_pruned_apart = true;
        let report = run(&sc);
        if let Some(v) = &report.violation {
            assert!(
                matches!(
                    v,
                    Violation::Disagreement { .. } | Violation::HonestEquivocation { .. }
                ),
                "{report}"
            );
            caught += 1;
        }
    }
    println!("{caught} schedules caught the unsafe host");
    assert!(caught > 0, "no schedule caught the unsafe host");
}

/// A validator added by a set change signs certificates once the change is in force, and one
/// removed stops being counted.
#[test]
fn added_validators_vote_and_removed_ones_stop() {
    let mut checked = 0;
    for seed in 0..300 {
        let sc = Scenario::generate(seed, FaultMix::SetChange);
        let Some(change) = sc.sets.changes.first() else {
            continue;
        };
        let report = run(&sc);
        assert!(report.violation.is_none(), "{report}");
        let top = report.heights.iter().copied().max().unwrap_or(0);
        if top >= change.effective + 2 {
            checked += 1;
        }
    }
    assert!(
        checked > 20,
        "only {checked} schedules went past a set change"
    );
}

/// The stalls validator-set changes first caused, found by longer campaigns than CI runs
/// (validators leaving the set go silent; a later set's index named the wrong validator): each
/// seed stalled before the fix (consensus/README item 10; 270 and 875 under the mixes of that
/// day, before `set-change` had Byzantine validators) and must not again.
#[test]
fn the_stalls_set_changes_caused_stay_fixed() {
    let seeds = [
        (FaultMix::SetChange, 270),
        (FaultMix::Crash, 875),
        (FaultMix::Crash, 2462),
        (FaultMix::Crash, 4708),
        (FaultMix::Crash, 6776),
        (FaultMix::Crash, 9053),
        (FaultMix::Crash, 9553),
        (FaultMix::Crash, 14117),
        (FaultMix::Crash, 19226),
        (FaultMix::All, 6703),
        (FaultMix::SetChange, 9020),
        (FaultMix::SetChange, 11387),
    ];
    for (mix, seed) in seeds {
        let report = run(&Scenario::generate(seed, mix));
        assert!(report.violation.is_none(), "{report}");
    }
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

/// Issue 24: the random Byzantine mixes caught ignore-lock in about 0.1% of their schedules.
/// The `lock-split` mix aims at the validators that just locked (one honest validator alone sees
/// the first round's precommits; the Byzantine proposer of the second round proposes a fresh
/// block): it must catch the bug in at least 10% of its schedules, and never fail the protocol
/// with the lock honoured.
#[test]
fn the_lock_split_mix_catches_ignore_lock_in_a_tenth_of_its_schedules() {
    let seeds: Vec<u64> = (0..300).collect();
    let mut caught = 0;
    for &seed in &seeds {
        let mut sc = Scenario::generate(seed, FaultMix::LockSplit);
        let honest = run(&sc);
        assert!(honest.violation.is_none(), "{honest}");
        assert!(
            honest.heights.iter().all(|&h| h >= sc.liveness_heights),
            "{honest}"
        );
        sc.broken = Some(InjectedFault::IgnoreLock);
        let broken = run(&sc);
        if let Some(v) = &broken.violation {
            assert!(
                matches!(v, Violation::Disagreement { .. }),
                "unexpected violation {broken}"
            );
            caught += 1;
        }
    }
    assert!(
        caught * 10 >= seeds.len(),
        "ignore-lock caught in only {caught} of {} lock-split schedules",
        seeds.len()
    );
    println!(
        "ignore-lock caught in {caught} of {} lock-split schedules",
        seeds.len()
    );
}
