//! Static parameters of one validator's state machine: set size, its own index, timeouts.

use crate::types::{Height, Round, ValidatorIndex};

/// The kinds of timer the protocol sets.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Debug)]
pub enum TimeoutKind {
    /// Waiting for the round's proposal.
    Propose,
    /// Waiting for prevotes to agree after 2f+1 arrived.
    Prevote,
    /// Waiting for precommits to agree after 2f+1 arrived.
    Precommit,
    /// Periodic re-send of this validator's latest messages, so that drops and partitions are
    /// repaired once the network heals.
    Rebroadcast,
}

/// A timer: it fires as an input carrying the same value.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub struct Timeout {
    /// Height it was set at.
    pub height: Height,
    /// Round it was set in.
    pub round: Round,
    /// Which timer.
    pub kind: TimeoutKind,
}

/// Timer durations: `base + delta × round`, capped at `max_ms`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Timeouts {
    /// Base wait for a proposal, ms.
    pub propose_ms: u64,
    /// Base wait after 2f+1 mixed prevotes, ms.
    pub prevote_ms: u64,
    /// Base wait after 2f+1 mixed precommits, ms.
    pub precommit_ms: u64,
    /// Added per round, ms.
    pub delta_ms: u64,
    /// Cap on any protocol timeout, ms.
    pub max_ms: u64,
    /// Period of the re-send timer, ms.
    pub rebroadcast_ms: u64,
}

impl Default for Timeouts {
    fn default() -> Self {
        Self {
            propose_ms: 3000,
            prevote_ms: 1000,
            precommit_ms: 1000,
            delta_ms: 500,
            max_ms: 30_000,
            rebroadcast_ms: 1000,
        }
    }
}

impl Timeouts {
    /// How long `kind` waits in `round`: grows with the round so that, once the network is
    /// timely again, some round is long enough for honest validators to agree; bounded so that
    /// a long outage does not leave validators waiting for minutes after it ends.
    pub fn duration_ms(&self, kind: TimeoutKind, round: Round) -> u64 {
        let base = match kind {
            TimeoutKind::Propose => self.propose_ms,
            TimeoutKind::Prevote => self.prevote_ms,
            TimeoutKind::Precommit => self.precommit_ms,
            TimeoutKind::Rebroadcast => return self.rebroadcast_ms,
        };
        base.saturating_add(self.delta_ms.saturating_mul(u64::from(round)))
            .min(self.max_ms)
    }
}

/// A deliberate protocol bug, for showing that the simulator's checks catch one.
#[cfg(feature = "sim")]
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum InjectedFault {
    /// Prevote for any valid proposal regardless of the lock.
    IgnoreLock,
}

/// Parameters of one validator's state machine.
#[derive(Clone, Debug)]
pub struct Params {
    /// Number of validators `n`.
    pub validators: u32,
    /// This validator's index, or `None` for a non-voting follower.
    pub me: Option<ValidatorIndex>,
    /// Timer durations.
    pub timeouts: Timeouts,
    /// A deliberate bug (simulator only).
    #[cfg(feature = "sim")]
    pub fault: Option<InjectedFault>,
}

impl Params {
    /// Parameters for validator `me` of `validators`.
    pub fn new(validators: u32, me: Option<ValidatorIndex>, timeouts: Timeouts) -> Self {
        assert!(validators > 0, "a validator set is never empty");
        Self {
            validators,
            me,
            timeouts,
            #[cfg(feature = "sim")]
            fault: None,
        }
    }

    /// Votes that make a quorum: `⌊2n/3⌋ + 1` (2f+1 when n = 3f+1). Any two quorums share at
    /// least one honest validator when at most f are Byzantine.
    pub fn quorum(&self) -> usize {
        self.validators as usize * 2 / 3 + 1
    }

    /// Validators of which at least one is honest: `n − quorum + 1` (f+1 when n = 3f+1).
    pub fn one_honest(&self) -> usize {
        self.validators as usize - self.quorum() + 1
    }

    /// The proposer of `round` at `height`: round-robin, shifted by one each height.
    pub fn proposer(&self, height: Height, round: Round) -> ValidatorIndex {
        ((height + u64::from(round)) % u64::from(self.validators)) as ValidatorIndex
    }
}
