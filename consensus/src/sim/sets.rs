//! Validator set changes in the simulator: which simulated nodes form the set that decides
//! each height. A change is decided by the block of one height and comes into force a fixed
//! number of heights later, as in the node; every host learns it when it commits that block.

use crate::types::{Height, ValidatorIndex};

/// A simulated node: the identity that keeps its key across set changes (its index in a set,
/// the `ValidatorIndex` of its messages, may differ from set to set).
pub type NodeId = u32;

/// One decided change.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SetChange {
    /// Height of the block that decides it.
    pub decided: Height,
    /// First height the new set decides.
    pub effective: Height,
    /// The new set's members, in index order.
    pub members: Vec<NodeId>,
}

/// The genesis set and every change of one schedule, in order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SetSchedule {
    /// Members of the genesis set.
    pub genesis: Vec<NodeId>,
    /// Changes, by increasing decided (and effective) height.
    pub changes: Vec<SetChange>,
    /// Simulated nodes `0..nodes` (members or not; those outside a set follow as observers).
    pub nodes: u32,
}

impl SetSchedule {
    /// A schedule with no change: nodes `0..n` forever.
    pub fn fixed(n: u32) -> Self {
        Self {
            genesis: (0..n).collect(),
            changes: Vec::new(),
            nodes: n,
        }
    }

    /// The set deciding `height` as known to a host that has committed `known` heights (changes
    /// decided above it are not known yet; the host's guess is the latest it knows).
    pub fn members_at(&self, height: Height, known: Height) -> &[NodeId] {
        self.changes
            .iter()
            .rfind(|c| c.decided <= known && c.effective <= height)
            .map_or(&self.genesis, |c| &c.members)
    }

    /// `node`'s index in the set deciding `height`, as known after `known` heights.
    pub fn index_of(&self, node: NodeId, height: Height, known: Height) -> Option<ValidatorIndex> {
        self.members_at(height, known)
            .iter()
            .position(|&m| m == node)
            .map(|i| i as ValidatorIndex)
    }

    /// Changes decided by the block at `height`.
    pub fn decided_at(&self, height: Height) -> impl Iterator<Item = &SetChange> {
        self.changes.iter().filter(move |c| c.decided == height)
    }
}
