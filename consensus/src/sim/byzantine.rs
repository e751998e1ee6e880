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
}

impl ByzantineKind {
    /// Every behaviour.
    pub const ALL: [ByzantineKind; 3] = [
        ByzantineKind::Equivocate,
        ByzantineKind::InvalidBlocks,
        ByzantineKind::Silent,
    ];
}
