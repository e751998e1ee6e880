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
    /// Aims at the validators that just locked (the `lock-split` mix): as the proposer of a
    /// round after the first it proposes a fresh block without proof of lock, and votes for it,
    /// while the network (the adversary's) lets only one honest validator see the first round's
    /// precommits. Honest validators that keep their lock refuse the fresh block; validators
    /// that ignore their lock decide it, and the one that saw the precommits decided another.
    LockSplit,
}

impl ByzantineKind {
    /// Every behaviour the mixes other than `lock-split` draw from.
    pub const ALL: [ByzantineKind; 5] = [
        ByzantineKind::Equivocate,
        ByzantineKind::InvalidBlocks,
        ByzantineKind::Silent,
        ByzantineKind::BadBodies,
        ByzantineKind::FutureTime,
    ];
}
