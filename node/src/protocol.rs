//! Protocol versions (ADR 0019): which rules a height follows, which versions this release
//! supports, and why a node whose release is too old stops before a version it does not know.
//!
//! A release that changes how blocks are validated or executed writes the change as
//! `if protocol >= V` where it applies; the version of a height comes from the chain's
//! schedule (`ParamBook::protocol_at`), so a binary that knows both runs the old rules below
//! the activation height and the new ones from it.

/// The highest protocol version this release supports. Version 2 exists only in builds with
/// the test-only feature `protocol-test-v2`, whose one rule ([`marks_transfers`]) lets the
/// rolling-upgrade test see which rules a block followed.
pub const SUPPORTED: u32 = if cfg!(feature = "protocol-test-v2") {
    2
} else {
    1
};

/// The version in force at `height` by `activations` (first height, version; increasing).
pub fn version_at(activations: &[(u64, u32)], height: u64) -> u32 {
    activations
        .iter()
        .rev()
        .find(|(from, _)| *from <= height)
        .map_or(1, |(_, v)| *v)
}

/// The header's `protocol_version` for blocks of `version`: absent (0) for version 1, so that
/// every block of version 1 keeps the bytes it had before versions existed.
pub fn header_field(version: u32) -> u32 {
    if version <= 1 {
        0
    } else {
        version
    }
}

/// The test-only rule of version 2 (feature `protocol-test-v2`): every successful transfer's
/// receipt carries an event `protocol`/`v2`. Harmless to clients, and it changes the receipts
/// root, so a block executed under the wrong rules is refused.
pub fn marks_transfers(version: u32) -> bool {
    cfg!(feature = "protocol-test-v2") && version >= 2
}

/// The host functions code deployed or installed under `version` may import. A release that
/// adds a host function refuses code importing it below the version that offers it, exactly
/// as a release without it does (the same check, the same error), so the two agree on every
/// block of the versions both support. Genesis code may import every function at once: every
/// validator of a new chain runs a release that carries that genesis's code.
pub fn abi_level(version: u32) -> quorate_vm::AbiLevel {
    if version >= 2 {
        quorate_vm::AbiLevel::Latest
    } else {
        quorate_vm::AbiLevel::V1
    }
}

/// Why a node stopped deciding blocks: the next height follows a version its release does not
/// support.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "protocol version {version} activates at height {height}; this release supports versions 1 \
     to {supported}: install a release that supports version {version} and restart"
)]
pub struct Halt {
    /// The version activated.
    pub version: u32,
    /// Its first height.
    pub height: u64,
    /// The highest version this release supports.
    pub supported: u32,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_height_follows_the_version_activated_before_it() {
        let activations = [(10, 2), (20, 3)];
        for (h, v) in [(0, 1), (9, 1), (10, 2), (19, 2), (20, 3), (1_000, 3)] {
            assert_eq!(version_at(&activations, h), v, "height {h}");
        }
        assert_eq!(version_at(&[], 5), 1);
        assert_eq!(header_field(1), 0);
        assert_eq!(header_field(2), 2);
    }
}
