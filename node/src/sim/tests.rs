//! The CI slice of the node simulator: a few seeds of each mix, the replay of one seed, and
//! the liars' scenarios asserting what the liar did and what the honest validators did about
//! it. The campaign (`scripts/nodesim.sh`) runs thousands.

use super::*;

fn clean(r: &Report) {
    assert!(r.violations.is_empty(), "violations: {:#?}", r.violations);
}

#[test]
fn a_calm_run_commits_client_transactions_and_keeps_every_invariant() {
    let r = run(1, Mix::Calm);
    clean(&r);
    assert!(r.height >= 5, "committed {} heights", r.height);
    assert!(r.acknowledged >= 10, "acknowledged {}", r.acknowledged);
    assert_eq!(r.lost, 0);
}

#[test]
fn one_seed_replays_one_run() {
    let a = run(7, Mix::Faults);
    let b = run(7, Mix::Faults);
    clean(&a);
    assert_eq!(
        a.trace, b.trace,
        "the commits differ between two runs of one seed"
    );
    assert_eq!(
        (a.delivered, a.lost, a.submissions, a.acknowledged),
        (b.delivered, b.lost, b.submissions, b.acknowledged)
    );
}
