//! Contract calls run ahead, in parallel, and kept only where sequential execution would have
//! done exactly the same (ADR 0020).
//!
//! While a block's transactions are applied in order, its contract calls run ahead in waves on
//! the rayon pool, each over the state where the block has got to when its wave starts,
//! through a speculative [`WorldState`] that
//! remembers every account and entry it read with the value it saw. A transfer is not a read:
//! it is kept as a balance change and a check ("`from` held at least `amount`, given this
//! run's own earlier changes: yes or no"), so calls paying out of one contract's balance do not
//! collide over it.
//!
//! Then, in block order, each transaction's fee and nonce steps run as always, and a call's run
//! ahead is kept only if everything it read still has the value it saw and every balance check
//! still comes out the same. Its writes and balance changes are then applied, and its outcome
//! (return data, events, fuel) is the one sequential execution would have produced, because
//! the run observed nothing else. Otherwise the call runs again, there, in order. So the
//! result never depends on the schedule, and the sequential path stays the reference: a
//! validator may run ahead or not, and blocks are the same either way.

use std::collections::HashMap;
use std::sync::Arc;

use parking_lot::Mutex;
use quorate_proto::crypto::{Address, Hash32};
use quorate_vm::CallOutcome;
use rayon::prelude::*;

use super::WorldState;
use crate::storage::{Account, EntryKey, StorageError};

/// One balance check of a speculative transfer.
#[derive(Clone, Copy, Debug)]
struct Check {
    account: Address,
    /// The run's own net change to `account` before the check.
    own: i128,
    amount: u64,
    passed: bool,
}

/// The transfers of a speculative run: net balance changes and the checks they made.
#[derive(Default, Debug)]
pub(crate) struct Moves {
    net: HashMap<Address, i128>,
    checks: Vec<Check>,
    /// The block-start balance of every account moved or checked.
    base: HashMap<Address, Account>,
}

impl Moves {
    /// `read` (a balance read from the block's state) with this run's own changes.
    pub(crate) fn balance_after(&self, addr: &Address, read: u64) -> u64 {
        let net = self.net.get(addr).copied().unwrap_or(0);
        u64::try_from(i128::from(read) + net).expect("checked transfers never go below zero")
    }

    /// A transfer of `amount` from `from` (whose block-start balance is `seen`) to `to`, as
    /// the sequential backend would make it: refused when the balance is short.
    pub(crate) fn transfer(&mut self, from: Address, seen: u64, to: Address, amount: u64) -> bool {
        let own = self.net.get(&from).copied().unwrap_or(0);
        let passed = i128::from(seen) + own >= i128::from(amount);
        self.checks.push(Check {
            account: from,
            own,
            amount,
            passed,
        });
        if passed && from != to && amount > 0 {
            *self.net.entry(from).or_default() -= i128::from(amount);
            *self.net.entry(to).or_default() += i128::from(amount);
        }
        passed
    }

    /// Undoes a transfer (the call or a nested call failed). Its check stays: the run saw it.
    pub(crate) fn undo(&mut self, from: Address, to: Address, amount: u64) {
        *self.net.entry(from).or_default() += i128::from(amount);
        *self.net.entry(to).or_default() -= i128::from(amount);
    }

    /// Reads the block-start value of every account moved or checked (on the run's thread).
    pub(crate) fn remember_base(
        &mut self,
        mut peek: impl FnMut(&Address) -> Result<Account, StorageError>,
    ) -> Result<(), StorageError> {
        let accounts: Vec<Address> = self
            .net
            .keys()
            .copied()
            .chain(self.checks.iter().map(|c| c.account))
            .collect();
        for a in accounts {
            if let std::collections::hash_map::Entry::Vacant(slot) = self.base.entry(a) {
                slot.insert(peek(&a)?);
            }
        }
        Ok(())
    }
}

/// What a speculative run saw of one entry.
#[derive(Debug)]
pub(crate) enum Seen {
    /// Only read: the digest of the value seen (`None`: absent). A digest, not the value, so
    /// that calls reading large entries do not each keep a copy until the block is applied.
    Read(Option<Hash32>),
    /// Written: the value seen and the value left.
    Written(Option<Vec<u8>>, Option<Vec<u8>>),
}

impl Seen {
    /// From an entry's value seen and value left.
    pub(crate) fn of(seen: Option<Vec<u8>>, left: Option<Vec<u8>>) -> Self {
        if seen == left {
            Self::Read(seen.as_deref().map(Hash32::of))
        } else {
            Self::Written(seen, left)
        }
    }

    /// Whether `current` is the value seen.
    fn matches(&self, current: &Option<Vec<u8>>) -> bool {
        match self {
            Self::Read(digest) => *digest == current.as_deref().map(Hash32::of),
            Self::Written(seen, _) => seen == current,
        }
    }
}

/// What a speculative run read, wrote and moved.
#[derive(Debug)]
pub(crate) struct Observed {
    /// Accounts read, with the value seen.
    pub(crate) accounts: Vec<(Address, Account)>,
    /// Entries read or written.
    pub(crate) entries: Vec<(EntryKey, Seen)>,
    /// Transfers.
    pub(crate) moves: Moves,
}

/// A contract call run ahead: what it observed and its outcome.
pub(crate) struct RunAhead {
    /// The contract called.
    pub(crate) contract: Address,
    /// The place in the block it ran at.
    pub(crate) tx_index: u32,
    observed: Observed,
    outcome: CallOutcome,
}

impl RunAhead {
    /// A run's result: its outcome if everything it observed is as `state` (the block's state
    /// at the call's place, after its fee step) has it, its effects then applied to `state`;
    /// `None`, with `state` untouched, when anything differs.
    pub(crate) fn settle(
        self,
        state: &mut WorldState,
    ) -> Result<Option<CallOutcome>, StorageError> {
        let Observed {
            accounts,
            entries,
            moves,
        } = self.observed;
        let unchanged_account =
            |a: &Address, seen: &Account| state.loaded_account(a).is_none_or(|cur| cur == *seen);
        if !accounts.iter().all(|(a, seen)| unchanged_account(a, seen)) {
            return Ok(None);
        }
        let unchanged_entry =
            |k: &EntryKey, seen: &Seen| state.loaded_entry(k).is_none_or(|cur| seen.matches(cur));
        if !entries.iter().all(|(k, seen)| unchanged_entry(k, seen)) {
            return Ok(None);
        }
        let balance = |a: &Address| {
            state
                .loaded_account(a)
                .or_else(|| moves.base.get(a).copied())
                .map(|acct| acct.balance)
                .expect("every moved or checked account has its block-start value")
        };
        for c in &moves.checks {
            let passes = i128::from(balance(&c.account)) + c.own >= i128::from(c.amount);
            if passes != c.passed {
                return Ok(None);
            }
        }
        // Everything the run saw is as sequential execution would see it here: apply.
        for (key, seen) in entries {
            if let Seen::Written(seen, left) = seen {
                state.adopt_entry(&key, &seen);
                state.set_entry(key, left)?;
            }
        }
        let mut moved: Vec<(&Address, &i128)> =
            moves.net.iter().filter(|(_, n)| **n != 0).collect();
        moved.sort_unstable();
        for (addr, net) in moved {
            state.adopt_account(*addr, moves.base[addr]);
            let mut acct = state.account(addr)?;
            acct.balance = u64::try_from(i128::from(acct.balance) + net)
                .expect("the checks hold, and the supply fits in u64");
            state.set_account(*addr, acct);
        }
        Ok(Some(self.outcome))
    }
}

/// When contract calls run ahead.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Deserialize, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ParallelMode {
    /// Never: every call runs in order. The default: on a machine whose cores are all busy
    /// (2 cores shared with the load generator, docs/PERFORMANCE.md) running ahead costs more
    /// CPU than it saves.
    #[default]
    Off,
    /// Every call of a block with two or more.
    Always,
    /// The calls of contracts whose runs ahead were mostly kept lately (calls that collide, over
    /// a counter every call writes for instance, would run twice for nothing).
    Adaptive,
}

/// How runs ahead fared for one contract.
#[derive(Clone, Copy, Debug, Default)]
struct Fared {
    /// Kept, out of the runs ahead of the last block that had any.
    kept: u32,
    runs: u32,
    /// Blocks since the last one with runs ahead.
    idle_blocks: u32,
}

/// Most contracts remembered (calls may name any address).
const MAX_REMEMBERED: usize = 4096;
/// A contract left out is tried again after this many blocks.
const RETRY_AFTER_BLOCKS: u32 = 32;

/// Counts of runs ahead since start.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ParallelStats {
    /// Calls run ahead.
    pub runs: u64,
    /// Runs kept.
    pub kept: u64,
}

/// Decides which calls run ahead and remembers how that fared.
#[derive(Debug, Default)]
pub struct ParallelPolicy {
    mode: Mutex<ParallelMode>,
    /// Every call in one wave (a switch for tests and measurements: calls of one signer then
    /// run ahead over the same state and collide).
    one_wave: std::sync::atomic::AtomicBool,
    fared: Mutex<HashMap<Address, Fared>>,
    stats: Mutex<ParallelStats>,
}

impl ParallelPolicy {
    /// A policy in `mode`.
    pub fn new(mode: ParallelMode) -> Self {
        Self {
            mode: Mutex::new(mode),
            ..Self::default()
        }
    }

    /// The mode.
    pub fn mode(&self) -> ParallelMode {
        *self.mode.lock()
    }

    /// Switches to `mode` from the next block on (blocks are the same in every mode).
    pub fn set_mode(&self, mode: ParallelMode) {
        *self.mode.lock() = mode;
    }

    /// Runs every call of a block ahead in one wave (`true`) or in waves by signer (the
    /// default): for tests and measurements.
    pub fn set_one_wave(&self, one: bool) {
        self.one_wave
            .store(one, std::sync::atomic::Ordering::Relaxed);
    }

    /// Whether every call runs in one wave.
    pub(crate) fn one_wave(&self) -> bool {
        self.one_wave.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Counts since start.
    pub fn stats(&self) -> ParallelStats {
        *self.stats.lock()
    }

    /// Of `calls` (position in the block, contract), those to run ahead: none when fewer than
    /// two would.
    pub(crate) fn choose(&self, calls: Vec<(usize, Address)>) -> Vec<(usize, Address)> {
        let mode = self.mode();
        if mode == ParallelMode::Off || calls.len() < 2 {
            return Vec::new();
        }
        let fared = self.fared.lock();
        let chosen: Vec<_> = calls
            .into_iter()
            .filter(|(_, c)| runs_ahead(mode, c, &fared))
            .collect();
        if chosen.len() < 2 {
            return Vec::new();
        }
        chosen
    }

    /// Records a block's runs ahead per contract (kept, runs); ages the others.
    fn record(&self, block: &HashMap<Address, (u32, u32)>) {
        let mut fared = self.fared.lock();
        for f in fared.values_mut() {
            f.idle_blocks = f.idle_blocks.saturating_add(1);
        }
        if fared.len() + block.len() > MAX_REMEMBERED {
            fared.clear();
        }
        let mut stats = self.stats.lock();
        for (contract, &(kept, runs)) in block {
            fared.insert(
                *contract,
                Fared {
                    kept,
                    runs,
                    idle_blocks: 0,
                },
            );
            stats.runs += u64::from(runs);
            stats.kept += u64::from(kept);
            let metrics = crate::metrics::get();
            metrics.calls_run_ahead.inc_by(u64::from(runs));
            metrics.calls_run_ahead_kept.inc_by(u64::from(kept));
        }
    }
}

/// Whether calls to `contract` run ahead in the next block, given how they fared.
fn runs_ahead(mode: ParallelMode, contract: &Address, fared: &HashMap<Address, Fared>) -> bool {
    match mode {
        ParallelMode::Off => false,
        ParallelMode::Always => true,
        ParallelMode::Adaptive => fared.get(contract).is_none_or(|f| {
            f.runs == 0 || f.kept * 2 >= f.runs || f.idle_blocks >= RETRY_AFTER_BLOCKS
        }),
    }
}

/// A block's runs ahead, by position of the transaction in the block, the waves still to
/// run, and their tally.
///
/// Calls run ahead in waves. A call whose signer has an earlier call in the block would read
/// what that call writes (its own reserves, say), so it runs ahead only once that call has
/// been applied: the first wave holds each signer's first call and runs over the block's
/// start; when the block is applied up to a call that has not run, the next wave runs over
/// the state there, with every call after it whose signer's previous call is applied by
/// then.
pub(crate) struct Ahead {
    runs: Vec<Option<RunAhead>>,
    /// Per position: the contract, if the call there is to run ahead.
    chosen: Vec<Option<Address>>,
    /// Per position: the position of the signer's previous chosen call, if any.
    previous: Vec<Option<usize>>,
    /// Per position: its wave (how many chosen calls its signer has before it).
    wave_of: Vec<usize>,
    /// Positions of each wave, in order.
    waves: Vec<Vec<usize>>,
    /// Per position: its wave has run (or it was left to run in order).
    launched: Vec<bool>,
    /// Per contract: (kept, runs).
    tally: HashMap<Address, (u32, u32)>,
}

impl Ahead {
    /// No run ahead.
    pub(crate) fn none() -> Self {
        Self::planned(0, Vec::new(), &[], false)
    }

    /// `calls` (position, contract, signer) of a block of `len` transactions to run ahead.
    pub(crate) fn planned(
        len: usize,
        calls: Vec<(usize, Address)>,
        signers: &[Address],
        one_wave: bool,
    ) -> Self {
        let mut chosen = vec![None; len];
        let mut previous = vec![None; len];
        let mut wave_of = vec![0; len];
        let mut waves: Vec<Vec<usize>> = Vec::new();
        let mut last: HashMap<Address, (usize, usize)> = HashMap::new();
        for (i, contract) in calls {
            chosen[i] = Some(contract);
            // One wave: every call as the first of its signer.
            let before = if one_wave {
                None
            } else {
                last.get(&signers[i]).copied()
            };
            let wave = match before {
                Some((p, w)) => {
                    previous[i] = Some(p);
                    w + 1
                }
                None => 0,
            };
            last.insert(signers[i], (i, wave));
            wave_of[i] = wave;
            if waves.len() <= wave {
                waves.push(Vec::new());
            }
            waves[wave].push(i);
        }
        Self {
            runs: (0..len).map(|_| None).collect(),
            chosen,
            previous,
            wave_of,
            waves,
            launched: vec![false; len],
            tally: HashMap::new(),
        }
    }

    /// The wave to run when the block is applied up to `at`: empty unless the call there is
    /// to run ahead and its wave has not run; else the calls of its wave from `at` on whose
    /// signer's previous call comes before `at`. Every call of the wave from `at` on is then
    /// marked: those not ready (their signer's previous call comes later) run in order. A
    /// wave of one call is not worth running. Each position is looked at once per block.
    pub(crate) fn wave_at(&mut self, at: usize) -> Vec<(usize, Address)> {
        if self.launched.get(at).is_none_or(|l| *l) || self.chosen[at].is_none() {
            return Vec::new();
        }
        let mut wave = Vec::new();
        for &j in &self.waves[self.wave_of[at]] {
            if j < at || self.launched[j] {
                continue;
            }
            self.launched[j] = true;
            if let (Some(contract), true) =
                (self.chosen[j], self.previous[j].is_none_or(|p| p < at))
            {
                wave.push((j, contract));
            }
        }
        if wave.len() < 2 {
            return Vec::new();
        }
        wave
    }

    /// Records the runs of a wave.
    pub(crate) fn ran(&mut self, runs: Vec<(usize, RunAhead)>) {
        for (index, run) in runs {
            self.runs[index] = Some(run);
        }
    }

    /// The run ahead of the transaction at `index`, if any (taken).
    pub(crate) fn take(&mut self, index: usize) -> Option<RunAhead> {
        self.runs.get_mut(index)?.take()
    }

    /// Notes whether the run ahead of a call to `contract` was kept.
    pub(crate) fn settled(&mut self, contract: Address, kept: bool) {
        let t = self.tally.entry(contract).or_default();
        t.1 += 1;
        t.0 += u32::from(kept);
    }

    /// Hands the tally to `policy`.
    pub(crate) fn finish(self, policy: &ParallelPolicy) {
        if policy.mode() == ParallelMode::Adaptive || !self.tally.is_empty() {
            policy.record(&self.tally);
        }
    }
}

/// Runs `calls` (position in the block, contract) ahead, in parallel, over `base`, each with
/// `run` (which runs one call on a state) at its position less `left_out` (transactions left
/// out before the wave); returns `base` and the runs that completed.
pub(crate) fn run_wave<F>(
    base: WorldState,
    calls: Vec<(usize, Address)>,
    left_out: u32,
    run: F,
) -> (WorldState, Vec<(usize, RunAhead)>)
where
    F: Fn(usize, WorldState) -> (WorldState, Option<CallOutcome>) + Sync,
{
    let base = Arc::new(base);
    // A run that failed in any way (a storage error, an engine fault) is dropped: its call
    // runs in order, where such a failure counts.
    let done: Vec<Option<(usize, RunAhead)>> = calls
        .into_par_iter()
        .map(|(index, contract)| {
            let (state, outcome) = run(index, WorldState::speculative(base.clone()));
            let observed = state.into_observed().ok().flatten();
            outcome.zip(observed).map(|(outcome, observed)| {
                (
                    index,
                    RunAhead {
                        observed,
                        outcome,
                        contract,
                        tx_index: index as u32 - left_out,
                    },
                )
            })
        })
        .collect();
    let base = Arc::try_unwrap(base)
        .unwrap_or_else(|_| unreachable!("every speculative state was dropped"));
    (base, done.into_iter().flatten().collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_signers_later_call_runs_ahead_in_a_wave_after_its_earlier_one_is_applied() {
        let (x, y, z) = (Address([7; 20]), Address([8; 20]), Address([9; 20]));
        let c = Address([1; 20]);
        // Positions: 0 x, 1 y, 2 transfer by z, 3 x, 4 y, 5 z, 6 x.
        let signers = [x, y, z, x, y, z, x];
        let calls = vec![(0, c), (1, c), (3, c), (4, c), (5, c), (6, c)];
        let mut ahead = Ahead::planned(7, calls, &signers, false);
        // First wave at the first call: every signer's first call.
        assert_eq!(ahead.wave_at(0), vec![(0, c), (1, c), (5, c)]);
        assert!(ahead.wave_at(1).is_empty(), "already run");
        assert!(ahead.wave_at(2).is_empty(), "not a call to run ahead");
        // Position 3 is x's second call: its wave holds y's second call too.
        assert_eq!(ahead.wave_at(3), vec![(3, c), (4, c)]);
        assert!(
            ahead.wave_at(5).is_empty(),
            "z's call ran in the first wave"
        );
        // x's third call is alone in its wave: left to run in order.
        assert!(ahead.wave_at(6).is_empty());
        // At 2 both second calls have their previous call applied: one wave.
        let mut ahead = Ahead::planned(
            4,
            vec![(0, c), (1, c), (2, c), (3, c)],
            &[x, y, y, x],
            false,
        );
        assert_eq!(ahead.wave_at(0), vec![(0, c), (1, c)]);
        assert_eq!(ahead.wave_at(2), vec![(2, c), (3, c)]);
        // A call whose signer's previous call comes after the wave's start is not ready: it
        // runs in order, and a wave of one is not run.
        let mut ahead = Ahead::planned(
            4,
            vec![(0, c), (1, c), (2, c), (3, c)],
            &[x, x, y, y],
            false,
        );
        assert_eq!(ahead.wave_at(0), vec![(0, c), (2, c)]);
        assert!(ahead.wave_at(1).is_empty());
        assert!(ahead.wave_at(3).is_empty());
    }

    #[test]
    fn adaptive_leaves_out_a_contract_whose_runs_collide_and_tries_it_again_later() {
        let policy = ParallelPolicy::new(ParallelMode::Adaptive);
        let (a, b) = (Address([1; 20]), Address([2; 20]));
        let calls = vec![(0, a), (1, a), (2, b), (3, b)];
        assert_eq!(policy.choose(calls.clone()), calls, "nothing known yet");
        policy.record(&HashMap::from([(a, (0, 2)), (b, (2, 2))]));
        assert_eq!(policy.choose(calls.clone()), vec![(2, b), (3, b)]);
        assert!(
            policy.choose(vec![(0, a), (1, b)]).is_empty(),
            "one call alone does not run ahead"
        );
        for _ in 1..RETRY_AFTER_BLOCKS {
            policy.record(&HashMap::from([(b, (2, 2))]));
        }
        assert_eq!(policy.choose(calls.clone()), vec![(2, b), (3, b)]);
        policy.record(&HashMap::new());
        assert_eq!(policy.choose(calls.clone()), calls, "tried again");
        assert_eq!(
            policy.stats(),
            ParallelStats {
                runs: 4 + 2 * u64::from(RETRY_AFTER_BLOCKS - 1),
                kept: 2 + 2 * u64::from(RETRY_AFTER_BLOCKS - 1),
            }
        );
        policy.set_mode(ParallelMode::Always);
        policy.record(&HashMap::from([(a, (0, 2))]));
        assert_eq!(policy.choose(calls.clone()), calls);
        policy.set_mode(ParallelMode::Off);
        assert!(policy.choose(calls).is_empty());
    }
}
