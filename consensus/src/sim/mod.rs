//! Deterministic simulator: n validators running the real state machine over a simulated
//! network with virtual time, driven by one seed. It injects message delay, drops,
//! duplication and reordering, partitions that heal, crashes at any point of a step with
//! restart from the persisted record, and Byzantine validators; it checks the invariants of
//! [`checker::Violation`] at every commit and every signed message. The same seed always
//! replays the same schedule.

mod byzantine;
mod checker;
mod keys;
mod sets;
mod world;

use std::fmt;
use std::str::FromStr;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

pub use byzantine::ByzantineKind;
pub use checker::Violation;
pub use keys::{SimSigner, SimVerifier};
pub use sets::{NodeId, SetChange, SetSchedule};

use crate::types::{BlockId, Height, ValidatorIndex};

/// Which faults a schedule injects (every mix also delays, drops, duplicates and reorders).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FaultMix {
    /// Only the unreliable network.
    Network,
    /// Validators crash at any point and restart from their persisted record.
    Crash,
    /// The network splits into two sides, then heals.
    Partition,
    /// Up to f validators equivocate, vote for invalid blocks, or stay silent.
    Byzantine,
    /// Crashes, partitions and Byzantine validators together.
    All,
    /// Validator set changes (add, remove, replace) with Byzantine validators over the
    /// unreliable network.
    SetChange,
    /// Block commits written without fsync (made durable by the next record write or a
    /// background sync, as the node does); validators crash often, in the middle of steps,
    /// and a crash loses the commits not yet synced. With Byzantine validators and set
    /// changes.
    LostWrites,
    /// Targeted at the validators that just locked (Twins-like): f Byzantine validators of
    /// kind [`ByzantineKind::LockSplit`], one honest validator that alone sees the first
    /// round's precommits at the heights a Byzantine validator proposes the second round, and
    /// whose own messages do not reach the others until the heal.
    LockSplit,
}

impl FaultMix {
    /// Every mix.
    pub const ALL: [FaultMix; 8] = [
        FaultMix::Network,
        FaultMix::Crash,
        FaultMix::Partition,
        FaultMix::Byzantine,
        FaultMix::All,
        FaultMix::SetChange,
        FaultMix::LostWrites,
        FaultMix::LockSplit,
    ];

    fn crashes(self) -> bool {
        matches!(self, FaultMix::Crash | FaultMix::All | FaultMix::LostWrites)
    }

    fn partitions(self) -> bool {
        matches!(self, FaultMix::Partition | FaultMix::All)
    }

    fn byzantine(self) -> bool {
        matches!(
            self,
            FaultMix::Byzantine | FaultMix::All | FaultMix::SetChange | FaultMix::LostWrites
        )
    }

    /// Mixes in which half the schedules change the validator set while their faults happen
    /// (not the Byzantine-only mix: its schedules stay those that show the checker catches a
    /// broken protocol).
    fn set_changes(self) -> bool {
        matches!(
            self,
            FaultMix::Crash | FaultMix::All | FaultMix::SetChange | FaultMix::LostWrites
        )
    }
}

impl fmt::Display for FaultMix {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            FaultMix::Network => "network",
            FaultMix::Crash => "crash",
            FaultMix::Partition => "partition",
            FaultMix::Byzantine => "byzantine",
            FaultMix::All => "all",
            FaultMix::SetChange => "set-change",
            FaultMix::LostWrites => "lost-writes",
            FaultMix::LockSplit => "lock-split",
        })
    }
}

impl FromStr for FaultMix {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        FaultMix::ALL
            .into_iter()
            .find(|m| m.to_string() == s)
            .ok_or_else(|| {
                format!(
                    "unknown fault mix {s:?}: use network, crash, partition, byzantine, all, set-change, lost-writes or lock-split"
                )
            })
    }
}

/// A scheduled fault.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Fault {
    /// The validator stops; with `mid_step` it stops after performing only
    /// this many of the actions of its next step.
    Crash {
        /// Validator.
        node: ValidatorIndex,
        /// Stop in the middle of the next step, after this many actions.
        mid_step: Option<usize>,
    },
    /// The validator restarts from its persisted record.
    Restart {
        /// Validator.
        node: ValidatorIndex,
    },
    /// Messages flow only between validators with the same side.
    Partition {
        /// Side of each validator.
        sides: Vec<u8>,
    },
}

/// One schedule, generated from a seed.
#[derive(Clone, Debug)]
pub struct Scenario {
    /// The seed it came from.
    pub seed: u64,
    /// The fault mix.
    pub mix: FaultMix,
    /// Validators of the genesis set.
    pub n: u32,
    /// The genesis set and its changes; nodes beyond the genesis set start as followers.
    pub sets: SetSchedule,
    /// Byzantine validators and their behaviour.
    pub byzantine: Vec<(ValidatorIndex, ByzantineKind)>,
    /// Probability a message is dropped, until the heal.
    pub drop: f64,
    /// Probability a message is delivered twice.
    pub duplicate: f64,
    /// Message delay bounds, ms (random in between, so messages reorder).
    pub delay_ms: (u64, u64),
    /// Faults with their virtual time, ms.
    pub faults: Vec<(u64, Fault)>,
    /// When the network heals and crashed validators restart, ms.
    pub heal_ms: u64,
    /// Heights every honest validator must gain after the heal.
    pub liveness_heights: u64,
    /// Virtual time allowed for that after the heal, ms.
    pub liveness_ms: u64,
    /// Run honest validators with a deliberate protocol bug.
    pub broken: Option<crate::InjectedFault>,
    /// Commits are written without fsync and a crash may lose those not yet synced.
    pub lost_writes: bool,
    /// A deliberately unsafe host for tests: a lost commit's pruning of the consensus record
    /// survives (as if the record lived in a separately synced log).
    pub record_pruned_apart: bool,
}

impl Scenario {
    /// The schedule for `seed` under `mix`.
    pub fn generate(seed: u64, mix: FaultMix) -> Self {
        if mix == FaultMix::LockSplit {
            return Self::lock_split(seed);
        }
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let n: u32 = match rng.gen_range(0..20) {
            0 => 1,
            1..=12 => 4,
            13..=17 => 7,
            _ => 10,
        };
        let f = (n - 1) / 3;
        let heal_ms = rng.gen_range(2_000..6_000);
        let mut byzantine = Vec::new();
        if mix.byzantine() && f > 0 {
            let count = rng.gen_range(1..=f);
            while byzantine.len() < count as usize {
                let v = rng.gen_range(0..n);
                if byzantine.iter().all(|&(b, _)| b != v) {
                    let kind = ByzantineKind::ALL[rng.gen_range(0..ByzantineKind::ALL.len())];
                    byzantine.push((v, kind));
                }
            }
        }
        let honest: Vec<ValidatorIndex> = (0..n)
            .filter(|v| byzantine.iter().all(|(b, _)| b != v))
            .collect();
        let mut faults = Vec::new();
        let lost_writes = mix == FaultMix::LostWrites;
        if mix.crashes() {
            let crashes = if lost_writes {
                rng.gen_range(2..=6)
            } else {
                rng.gen_range(1..=4)
            };
            for _ in 0..crashes {
                let node = honest[rng.gen_range(0..honest.len())];
                let at = rng.gen_range(0..heal_ms);
                // Crashing a few actions into a step often lands between a commit and the
                // write that makes it durable.
                let mid_step = if lost_writes {
                    Some(rng.gen_range(0..6))
                } else {
                    rng.gen_bool(0.5).then(|| rng.gen_range(0..6))
                };
                faults.push((at, Fault::Crash { node, mid_step }));
                let back = at + rng.gen_range(50..3_000);
                if back < heal_ms {
                    faults.push((back, Fault::Restart { node }));
                }
            }
        }
        if mix.partitions() {
            for _ in 0..rng.gen_range(1..=3) {
                let at = rng.gen_range(0..heal_ms);
                let sides = (0..n).map(|_| rng.gen_range(0..2u8)).collect();
                faults.push((at, Fault::Partition { sides }));
                let until = at + rng.gen_range(100..3_000);
                if until < heal_ms {
                    faults.push((
                        until,
                        Fault::Partition {
                            sides: vec![0; n as usize],
                        },
                    ));
                }
            }
        }
        faults.sort_by_key(|(t, _)| *t);
        let max_delay = rng.gen_range(5..120);
        let sets = if mix.set_changes() {
            set_changes(seed, n, &byzantine)
        } else {
            SetSchedule::fixed(n)
        };
        Self {
            seed,
            mix,
            n,
            sets,
            byzantine,
            drop: rng.gen_range(0.0..0.2),
            duplicate: rng.gen_range(0.0..0.1),
            delay_ms: (1, max_delay),
            faults,
            heal_ms,
            liveness_heights: 3,
            liveness_ms: 120_000,
            broken: None,
            lost_writes,
            record_pruned_apart: false,
        }
    }
}

impl Scenario {
    /// A `lock-split` schedule: 4 or 7 validators, f of them Byzantine
    /// ([`ByzantineKind::LockSplit`]), a reliable but reordering network until a heal 15 to
    /// 30 s in.
    fn lock_split(seed: u64) -> Self {
        let mut rng = ChaCha8Rng::seed_from_u64(seed ^ 0x10c5_5911_7000_0001);
        let n: u32 = if rng.gen_bool(0.7) { 4 } else { 7 };
        let f = (n - 1) / 3;
        let mut byzantine = Vec::new();
        while byzantine.len() < f as usize {
            let v = rng.gen_range(0..n);
            if byzantine.iter().all(|&(b, _)| b != v) {
                byzantine.push((v, ByzantineKind::LockSplit));
            }
        }
        Self {
            seed,
            mix: FaultMix::LockSplit,
            n,
            sets: SetSchedule::fixed(n),
            byzantine,
            drop: rng.gen_range(0.0..0.02),
            duplicate: rng.gen_range(0.0..0.05),
            delay_ms: (1, rng.gen_range(5..60)),
            faults: Vec::new(),
            heal_ms: rng.gen_range(15_000..30_000),
            liveness_heights: 3,
            liveness_ms: 120_000,
            broken: None,
            lost_writes: false,
            record_pruned_apart: false,
        }
    }
}

/// Half the schedules of a mix with set changes get one to three: a follower added, a member
/// removed (it stays on as a follower and may come back), or a member replaced, decided at
/// early heights (while the schedule's faults happen) and in force 3 to 6 heights later. No set
/// holds more Byzantine members than it tolerates. A separate random stream, so that the rest
/// of the schedule is the one the seed gives without changes.
fn set_changes(seed: u64, n: u32, byzantine: &[(ValidatorIndex, ByzantineKind)]) -> SetSchedule {
    let mut rng = ChaCha8Rng::seed_from_u64(seed ^ 0x5e7c_4a46_e000_0001);
    let mut sets = SetSchedule::fixed(n);
    if !rng.gen_bool(0.5) {
        return sets;
    }
    let nodes = n + rng.gen_range(1..=2);
    let delay = rng.gen_range(3..=6);
    let faulty = |m: &[NodeId]| {
        m.iter()
            .filter(|v| byzantine.iter().any(|(b, _)| b == *v))
            .count()
    };
    let mut members = sets.genesis.clone();
    let mut decided = 0;
    for _ in 0..rng.gen_range(1..=3) {
        decided += rng.gen_range(1..=4);
        let outside: Vec<NodeId> = (0..nodes).filter(|v| !members.contains(v)).collect();
        let mut next = members.clone();
        match rng.gen_range(0..3) {
            0 if !outside.is_empty() => next.push(outside[rng.gen_range(0..outside.len())]),
            1 if members.len() > 1 => {
                next.remove(rng.gen_range(0..members.len()));
            }
            2 if !outside.is_empty() => {
                let i = rng.gen_range(0..members.len());
                next[i] = outside[rng.gen_range(0..outside.len())];
            }
            _ => continue,
        }
        if faulty(&next) > (next.len() - 1) / 3 {
            continue;
        }
        sets.changes.push(SetChange {
            decided,
            effective: decided + delay,
            members: next.clone(),
        });
        members = next;
    }
    sets.nodes = nodes;
    sets
}

/// A block body as the simulated hosts hold it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SimBlock {
    /// Its id.
    pub id: BlockId,
    /// Height.
    pub height: Height,
    /// Parent's id.
    pub parent: BlockId,
    /// Whether re-execution would match its roots (false: built by a Byzantine proposer).
    pub valid: bool,
    /// A damaged copy: its bytes do not hash to `id` (sent by a Byzantine validator).
    pub damaged: bool,
    /// Stamped ahead of the clocks of some validators, who judge it invalid until 2f+1
    /// validators endorse it.
    pub future_time: bool,
}

/// What one schedule did.
#[derive(Clone, Debug)]
pub struct Report {
    /// The scenario's seed.
    pub seed: u64,
    /// The fault mix.
    pub mix: FaultMix,
    /// Validators.
    pub n: u32,
    /// Committed height of each validator at the end.
    pub heights: Vec<Height>,
    /// Events processed.
    pub events: u64,
    /// Misbehaviours the honest state machines reported.
    pub misbehaviour: u64,
    /// Commits lost by crashes before they were synced (and decided again).
    pub lost_commits: u64,
    /// The first broken invariant, if any.
    pub violation: Option<Violation>,
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "seed {} mix {} n {} heights {:?} events {} misbehaviour {}",
            self.seed, self.mix, self.n, self.heights, self.events, self.misbehaviour
        )?;
        match &self.violation {
            Some(v) => write!(
                f,
                " VIOLATION: {v} (replay: quorate-sim --mix {} --seed {})",
                self.mix, self.seed
            ),
            None => write!(f, " ok"),
        }
    }
}

/// Runs one scenario to its end.
pub fn run(scenario: &Scenario) -> Report {
    world::World::new(scenario).run()
}
