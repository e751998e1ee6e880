//! Verified votes of one height, by round, kind and validator.
//!
//! A validator that equivocates may have several votes in one slot; each is kept (up to
//! [`MAX_VOTES_PER_SLOT`]) and a validator counts once towards each block it signed for. That
//! keeps quorum intersection: two different blocks with 2f+1 signers each would need f+1 honest
//! signers each, more than the 2f+1 honest validators there are.

use std::collections::BTreeMap;

use crate::types::{BlockId, Round, Signature, SignedVote, ValidatorIndex, VoteKind};

/// Most distinct votes kept for one validator, round and kind (bounds what an equivocating
/// validator can make others store).
pub const MAX_VOTES_PER_SLOT: usize = 4;

/// What happened to a vote offered to the tally.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Added {
    /// A validator's first vote of this round and kind.
    New,
    /// The same vote again (re-sent or duplicated by the network).
    Duplicate,
    /// A different vote from a validator that already voted: equivocation. Both are kept
    /// (within the cap); the first one is returned as evidence.
    Conflict(Box<SignedVote>),
}

/// Votes of one round.
#[derive(Default, Debug)]
struct RoundVotes {
    prevotes: BTreeMap<ValidatorIndex, Vec<SignedVote>>,
    precommits: BTreeMap<ValidatorIndex, Vec<SignedVote>>,
}

impl RoundVotes {
    fn of(&self, kind: VoteKind) -> &BTreeMap<ValidatorIndex, Vec<SignedVote>> {
        match kind {
            VoteKind::Prevote => &self.prevotes,
            VoteKind::Precommit => &self.precommits,
        }
    }
}

/// All votes of the current height, by round.
#[derive(Default, Debug)]
pub(crate) struct VoteTally {
    rounds: BTreeMap<Round, RoundVotes>,
}

impl VoteTally {
    /// Adds a vote whose signature was checked. Beyond [`MAX_VOTES_PER_SLOT`] a validator's
    /// further conflicting votes are dropped unless `keep` (the vote is for a block proposed at
    /// this height, whose count may decide a proof of lock).
    pub(crate) fn add(&mut self, v: SignedVote, keep: bool) -> Added {
        let round = self.rounds.entry(v.vote.round).or_default();
        let map = match v.vote.kind {
            VoteKind::Prevote => &mut round.prevotes,
            VoteKind::Precommit => &mut round.precommits,
        };
        let slot = map.entry(v.vote.validator).or_default();
        if slot.iter().any(|old| old.vote == v.vote) {
            return Added::Duplicate;
        }
        let first = slot.first().cloned();
        if keep || slot.len() < MAX_VOTES_PER_SLOT {
            slot.push(v);
        }
        match first {
            None => Added::New,
            Some(first) => Added::Conflict(Box::new(first)),
        }
    }

    /// Votes of `kind` in `round` for exactly `block` (`None` counts nil votes).
    pub(crate) fn count(&self, round: Round, kind: VoteKind, block: Option<BlockId>) -> usize {
        self.rounds.get(&round).map_or(0, |r| {
            r.of(kind)
                .values()
                .filter(|votes| votes.iter().any(|v| v.vote.block == block))
                .count()
        })
    }

    /// Votes of `kind` in `round`, whatever they are for.
    pub(crate) fn count_any(&self, round: Round, kind: VoteKind) -> usize {
        self.rounds.get(&round).map_or(0, |r| r.of(kind).len())
    }

    /// Every `(round, block)` with at least `quorum` precommits, lowest round first.
    pub(crate) fn committable(&self, quorum: usize) -> Vec<(Round, BlockId)> {
        self.quorums(VoteKind::Precommit, quorum)
    }

    /// Every `(round, block)` with at least `quorum` votes of `kind`, lowest round first.
    pub(crate) fn quorums(&self, kind: VoteKind, quorum: usize) -> Vec<(Round, BlockId)> {
        let mut out = Vec::new();
        for (&round, r) in &self.rounds {
            let mut counts: BTreeMap<BlockId, usize> = BTreeMap::new();
            for votes in r.of(kind).values() {
                // A validator's votes in one slot are distinct, so each block appears once.
                for b in votes.iter().filter_map(|v| v.vote.block) {
                    *counts.entry(b).or_default() += 1;
                }
            }
            out.extend(
                counts
                    .into_iter()
                    .filter(|&(_, c)| c >= quorum)
                    .map(|(b, _)| (round, b)),
            );
        }
        out
    }

    /// The votes of `kind` for `block` in `round`, by validator.
    pub(crate) fn for_block(
        &self,
        round: Round,
        kind: VoteKind,
        block: BlockId,
    ) -> Vec<&SignedVote> {
        self.rounds.get(&round).map_or_else(Vec::new, |r| {
            r.of(kind)
                .values()
                .filter_map(|votes| votes.iter().find(|v| v.vote.block == Some(block)))
                .collect()
        })
    }

    /// The precommit signatures for `block` in `round`, by validator.
    pub(crate) fn precommit_signatures(
        &self,
        round: Round,
        block: BlockId,
    ) -> Vec<(ValidatorIndex, Signature)> {
        self.for_block(round, VoteKind::Precommit, block)
            .into_iter()
            .map(|v| (v.vote.validator, v.signature.clone()))
            .collect()
    }
}
