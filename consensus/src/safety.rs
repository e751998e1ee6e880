//! The voting rules that make two conflicting commits impossible, kept in one place.
//!
//! Everything else in the state machine decides *when* to vote; these functions decide *what*
//! a validator may vote for. With at most f Byzantine validators out of 3f+1 they guarantee
//! that once 2f+1 validators precommit block B in round r, no quorum can prevote (and so no
//! one can precommit or commit) any other block in a later round of the same height. The
//! argument is in `consensus/README.md`.

use crate::types::{BlockId, Round};

/// A validator's lock: the latest round in which it precommitted a block, and that block.
pub type Lock = Option<(Round, BlockId)>;

/// May a validator holding `lock` prevote for `block`, proposed with proof-of-lock round
/// `pol_round` (Tendermint, arXiv 1807.04938, Algorithm 1 lines 22–33)?
///
/// `lock = None ∨ lock.block = block ∨ (pol_round = Some(vr) ∧ lock.round ≤ vr)`
///
/// The caller has already checked that `block` is valid and, when `pol_round` is `Some(vr)`,
/// that it holds 2f+1 prevotes for `block` in round `vr < current round`.
pub fn may_prevote(lock: Lock, block: BlockId, pol_round: Option<Round>) -> bool {
    match (lock, pol_round) {
        (None, _) => true,
        (Some((_, locked)), _) if locked == block => true,
        (Some((locked_round, _)), Some(vr)) => locked_round <= vr,
        (Some(_), None) => false,
    }
}

/// The lock after precommitting `block` in `round` (Algorithm 1 lines 36–41): precommitting
/// is the only way a lock changes, and it only moves to a later round.
pub fn lock_on(lock: Lock, round: Round, block: BlockId) -> Lock {
    match lock {
        Some((r, _)) if r > round => lock,
        _ => Some((round, block)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: BlockId = BlockId([1; 32]);
    const B: BlockId = BlockId([2; 32]);

    #[test]
    fn unlocked_validator_may_prevote_anything_valid() {
        assert!(may_prevote(None, A, None));
        assert!(may_prevote(None, A, Some(3)));
    }

    #[test]
    fn locked_validator_prevotes_only_its_block_or_a_newer_proof_of_lock() {
        let lock = Some((2, A));
        assert!(may_prevote(lock, A, None));
        assert!(!may_prevote(lock, B, None));
        assert!(!may_prevote(lock, B, Some(1)));
        assert!(may_prevote(lock, B, Some(2)));
        assert!(may_prevote(lock, B, Some(5)));
    }

    #[test]
    fn lock_only_moves_forward() {
        assert_eq!(lock_on(None, 1, A), Some((1, A)));
        assert_eq!(lock_on(Some((1, A)), 3, B), Some((3, B)));
        assert_eq!(lock_on(Some((3, B)), 2, A), Some((3, B)));
    }
}
