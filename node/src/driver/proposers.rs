//! Who proposed each block of the current height: the validator to ask first for a body it
//! lacks. Bounded per proposer, so an equivocating proposer (any number of signed proposals
//! for the rounds it leads) crowds out only its own entries, never an honest proposer's.

use std::collections::{BTreeMap, VecDeque};

use quorate_consensus::{BlockId, ValidatorIndex};

/// Blocks remembered per proposer and height. An honest proposer proposes one block per round
/// it leads; past this many (29 rounds or more of one height with four validators), its oldest
/// are forgotten, and a body of one of those is asked of the others in turn from the start.
pub const PER_PROPOSER: usize = 8;

/// The proposer of each admissible proposal seen at the current height, the newest
/// [`PER_PROPOSER`] blocks of each.
#[derive(Debug, Default)]
pub struct Proposers {
    by_block: BTreeMap<BlockId, ValidatorIndex>,
    /// Each proposer's blocks remembered, oldest first.
    order: BTreeMap<ValidatorIndex, VecDeque<BlockId>>,
}

impl Proposers {
    /// Notes that `proposer` proposed `block`; past its share, its oldest block is forgotten
    /// (the newest is the one a validation is likely to need).
    pub fn note(&mut self, block: BlockId, proposer: ValidatorIndex) {
        if self.by_block.contains_key(&block) {
            return;
        }
        let blocks = self.order.entry(proposer).or_default();
        blocks.push_back(block);
        self.by_block.insert(block, proposer);
        while blocks.len() > PER_PROPOSER {
            if let Some(old) = blocks.pop_front() {
                self.by_block.remove(&old);
            }
        }
    }

    /// The proposer of `block`, if remembered.
    pub fn get(&self, block: &BlockId) -> Option<ValidatorIndex> {
        self.by_block.get(block).copied()
    }

    /// Blocks remembered.
    pub fn len(&self) -> usize {
        self.by_block.len()
    }

    /// Whether none is remembered.
    pub fn is_empty(&self) -> bool {
        self.by_block.is_empty()
    }

    /// Forgets everything (a new height).
    pub fn clear(&mut self) {
        self.by_block.clear();
        self.order.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Issue 24 (medium): the driver remembered the proposer of every admissible proposal until
    /// the height ended, and an equivocating proposer may sign any number of them. Then a cap
    /// on the whole map let that proposer fill it, so honest proposers' blocks were asked of
    /// someone else first. The bound is per proposer now, keeping each one's newest.
    #[test]
    fn an_equivocating_proposer_fills_only_its_own_share() {
        let id = |i: u32| {
            let mut id = [0u8; 32];
            id[..4].copy_from_slice(&i.to_le_bytes());
            BlockId(id)
        };
        let mut p = Proposers::default();
        for i in 0..10_000u32 {
            p.note(id(i), 3);
        }
        p.note(BlockId([0xff; 32]), 1);
        assert_eq!(p.len(), PER_PROPOSER + 1, "entries kept");
        assert_eq!(
            p.get(&BlockId([0xff; 32])),
            Some(1),
            "the honest proposer is remembered"
        );
        assert_eq!(p.get(&id(9_999)), Some(3), "its newest block is remembered");
        assert_eq!(p.get(&id(0)), None, "its oldest are forgotten");
        p.clear();
        assert_eq!(p.len(), 0);
        p.note(BlockId([7; 32]), 3);
        assert_eq!(
            p.get(&BlockId([7; 32])),
            Some(3),
            "a new height starts afresh"
        );
    }
}
