//! What a simulated Byzantine validator does. It signs only with its own key: it can lie,
//! equivocate and stay silent, but not forge.

/// A Byzantine behaviour.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ByzantineKind {
    /// Sends different proposals to different validators, and conflicting votes (another block
    /// or nil) to a random half of them.
    Equivocate,
    /// Proposes blocks whose roots do not match, calls every block valid, and ignores its lock.
    InvalidBlocks,
    /// Never sends anything.
    Silent,
    /// Sends most copies of its block bodies (with proposals and in sync answers) damaged:
    /// bytes that do not match the block id. Hosts must refuse such a copy and keep waiting for
    /// a good one, not judge the block by it.
    BadBodies,
    /// Stamps its blocks with a time ahead of some validators' clocks: those judge the
    /// proposal invalid, but must still lock on and commit the block once 2f+1 endorse it.
    FutureTime,
}

impl ByzantineKind {
    /// Every behaviour.
    pub const ALL: [ByzantineKind; 5] = [
        ByzantineKind::Equivocate,
        ByzantineKind::InvalidBlocks,
        ByzantineKind::Silent,
        ByzantineKind::BadBodies,
        ByzantineKind::FutureTime,
    ];
}
