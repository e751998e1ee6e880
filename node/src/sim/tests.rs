//! The CI slice of the node simulator: a few seeds of each mix, the replay of one seed, and
//! the liars' scenarios asserting what the liar did and what the honest validators did about
//! it. The campaign (`scripts/nodesim.sh`) runs thousands.

use super::*;
use crate::byzantine::Behaviour;

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
    assert_eq!(
        r.param_changes, 1,
        "the admin's parameter change did not commit with success"
    );
}

/// ADR 0019 in the simulator (builds with `protocol-test-v2`, which scripts/test.sh runs with
/// the filter `protocol`): the chain admin activates version 2 a few heights ahead; every honest
/// validator's blocks follow the schedule it committed (checked at the end of every run), and
/// the run crosses the height.
#[cfg(feature = "protocol-test-v2")]
#[test]
fn a_protocol_activation_is_followed_by_every_validator() {
    let r = run(1, Mix::Calm);
    clean(&r);
    let at = r
        .protocol_activated_at
        .expect("the admin's activation did not commit with success");
    assert!(
        r.height >= at + 2,
        "the run ended at {} before version 2 at {at}",
        r.height
    );
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

/// A liar withholds bodies and transactions from one victim on a healthy network: it acts, the
/// victim asks the others for what it withholds, and every invariant holds.
#[test]
fn a_withholding_liar_acts_and_its_victim_fetches_elsewhere() {
    let plan = Plan {
        liar: Some((0, Behaviour::Withhold)),
        faults: net::Faults::none(),
        crashes: false,
        ..Plan::new(11, Mix::Withhold)
    };
    let r = run_plan(plan);
    clean(&r);
    assert!(r.byzantine_acts > 0, "the liar never withheld anything");
    assert!(
        r.fetched_elsewhere > 0,
        "no honest validator asked anyone but the proposer"
    );
    assert!(r.height >= 3, "committed {} heights", r.height);
}

/// A seeded slice of the campaign: the first seeds of each mix keep every invariant, and in
/// each Byzantine run the liar acted.
#[test]
fn a_seeded_slice_of_every_mix_keeps_every_invariant() {
    for mix in [Mix::Faults, Mix::Byzantine, Mix::Withhold] {
        for seed in 0..2 {
            let r = run(seed, mix);
            assert!(
                r.violations.is_empty(),
                "seed {seed} of {mix}: {:#?}\nreplay: {}",
                r.violations,
                replay_command(seed, mix)
            );
            if mix != Mix::Faults {
                assert!(
                    r.byzantine_acts > 0,
                    "seed {seed} of {mix}: the liar never acted"
                );
            }
        }
    }
}

/// The liars the node simulator added for findings 19 and 23 act in a run, and what they aim
/// at never happens: no client transaction is committed with keys its sender did not sign with
/// (the `forged` check), and no honest validator keeps more bodies for its peers than its bound
/// (the `memory` check) although the liar signs dozens of bodiless proposals per height.
#[test]
fn liars_that_void_transactions_or_sign_bodiless_proposals_act_and_are_refused() {
    for behaviour in [Behaviour::VoidTxs, Behaviour::BodilessProposals] {
        let plan = Plan {
            liar: Some((1, behaviour)),
            faults: net::Faults::none(),
            crashes: false,
            ..Plan::new(3, Mix::Byzantine)
        };
        let r = run_plan(plan);
        clean(&r);
        assert!(r.byzantine_acts > 0, "{behaviour:?} never acted");
        assert!(
            r.height >= 3,
            "{behaviour:?}: committed {} heights",
            r.height
        );
    }
}

/// Finding 21: a liar's votes with forged signatures reach part of the honest validators;
/// each refuses them (counted), and none passes one on (the `relayed` check, which verifies
/// every consensus message an honest validator accepts in a run with a liar).
#[test]
fn forged_votes_are_refused_by_the_first_honest_validator_and_never_relayed() {
    let plan = Plan {
        liar: Some((2, Behaviour::ForgedVotes)),
        faults: net::Faults::none(),
        crashes: false,
        ..Plan::new(4, Mix::Byzantine)
    };
    let r = run_plan(plan);
    clean(&r);
    assert!(r.byzantine_acts > 0, "the liar never forged a vote");
    assert!(
        r.refused_gossip > 0,
        "no honest validator refused a forged vote"
    );
    assert!(r.height >= 3, "committed {} heights", r.height);
}

/// Finding 22: a liar sends every other validator bursts of sync requests over the per-peer
/// limit; the honest validators refuse what is over it (counted), no refused request frees a
/// place, and none ever queues more of the liar's requests than the limit (the `memory`
/// check, counted apart from the node's own accounting).
#[test]
fn a_sync_request_flood_is_refused_over_the_per_peer_limit() {
    let plan = Plan {
        liar: Some((3, Behaviour::SyncFlood)),
        faults: net::Faults::none(),
        crashes: false,
        ..Plan::new(5, Mix::Byzantine)
    };
    let r = run_plan(plan);
    clean(&r);
    assert!(r.byzantine_acts > 0, "the liar never flooded");
    assert!(
        r.refused_sync > 0,
        "no honest validator refused a request over the limit"
    );
    assert!(r.height >= 3, "committed {} heights", r.height);
}

/// Finding 33: a liar publishes again, four times at once, every consensus message it receives
/// from another validator (genuinely signed by it). The honest validators drop the copies of a
/// message still waiting for their driver (counted) and never hold two copies of one message
/// at once (the `memory` check reads each honest validator's inbox), so copies cannot push a
/// validator's other messages out of its queue.
#[test]
fn copies_of_another_validators_messages_are_dropped_while_one_waits() {
    let plan = Plan {
        liar: Some((0, Behaviour::Republish)),
        crashes: false,
        ..Plan::new(7, Mix::Byzantine)
    };
    let r = run_plan(plan);
    clean(&r);
    assert!(r.byzantine_acts > 0, "the liar never published a copy");
    assert!(
        r.copies_dropped > 0,
        "no honest validator dropped a copy of a waiting message"
    );
    assert!(r.height >= 3, "committed {} heights", r.height);
}

/// Findings 20 and 26: a liar gossips messages that decode far beyond their size (empty
/// transactions, empty cosignatures) and pads its sync answers with empty entries; the honest
/// validators refuse each on its bytes (counted), and none takes a message that decodes to more
/// than a small multiple of its size (the `memory` check, which decodes what they accept).
#[test]
fn gossip_and_answers_that_decode_beyond_their_size_are_refused_on_their_bytes() {
    let plan = Plan {
        liar: Some((1, Behaviour::AmplifyingGossip)),
        faults: net::Faults::none(),
        crashes: false,
        ..Plan::new(6, Mix::Byzantine)
    };
    let r = run_plan(plan);
    clean(&r);
    assert!(
        r.byzantine_acts > 0,
        "the liar never sent an amplifying message"
    );
    assert!(
        r.refused_gossip > 0,
        "no honest validator refused an amplifying message"
    );
    assert!(r.height >= 3, "committed {} heights", r.height);
}

/// Finding 17: a liar answers decision requests with forged certificates and junk bodies; the
/// honest validators charge those answers to it, and never charge an honest validator (the
/// `accused` check, which every run makes: a late honest answer, for a height committed since
/// it was asked, is no fault; with that told apart no more, the campaign's seed 1 fails it).
#[test]
fn forged_decision_answers_are_charged_to_the_liar_and_never_to_an_honest_validator() {
    let plan = Plan {
        liar: Some((0, Behaviour::JunkSync)),
        crashes: true,
        ..Plan::new(18, Mix::Byzantine)
    };
    let r = run_plan(plan);
    clean(&r);
    assert!(r.byzantine_acts > 0, "the liar never answered with junk");
    assert!(
        r.charged > 0,
        "no honest validator charged a forged decision answer to the liar"
    );
}

/// Finding 32 (ADR 0010): the chain's trusted deployer deploys a counter whose machine code adds
/// 2 where its bytecode adds 1, then calls it; validators crash, and half the restarts find the
/// artifact cache damaged. An honest validator that held the counter restarts without its
/// artifact (it compiles the system contracts again, the damage landed), executes calls of the
/// counter after that, each returning the machine code's value (the `counter` check), and
/// every validator keeps computing the same state (agreement, validity, liveness). With
/// start-up compiling the bytecode in the machine code's place
/// (`scripts/defects/machine-code-recompiled.patch`), the restarted validator's state splits
/// from the others' and the run fails.
#[test]
fn precompiled_machine_code_runs_alike_after_a_validator_loses_its_artifacts() {
    let r = run(5, Mix::Faults);
    clean(&r);
    assert!(r.artifacts_lost > 0, "no restart lost its artifacts");
    assert!(
        r.counter_calls > 0,
        "no call of the counter returned its value"
    );
    assert!(
        r.counter_calls_after_loss > 0,
        "no call of the counter committed after a validator holding it lost its artifact \
         ({} calls in all)",
        r.counter_calls
    );
}

/// The medium finding of the `proposers` map: an equivocating liar signs, with each of
/// its compact proposals, 40 more for its round naming blocks nobody has. The honest
/// validators take them (they remember a liar's blocks up to the bound, 8) and never more than
/// the bound (the `memory` sample of `remembered_proposers`).
#[test]
fn an_equivocating_proposer_fills_only_its_share_of_the_proposers_remembered() {
    let plan = Plan {
        liar: Some((0, Behaviour::Equivocate)),
        crashes: false,
        ..Plan::new(0, Mix::Byzantine)
    };
    let r = run_plan(plan);
    clean(&r);
    assert!(r.byzantine_acts > 0, "the liar never equivocated");
    assert!(
        r.most_proposers_remembered > crate::driver::proposers::PER_PROPOSER as u64,
        "the liar's extra proposals never filled its share (most remembered: {})",
        r.most_proposers_remembered
    );
    assert!(r.height >= 3, "committed {} heights", r.height);
}
