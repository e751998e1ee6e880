//! The contract ABI: the import module, the host functions with their signatures, and the
//! conventions for methods, `init`, abort kinds and the interface section.

use wasmparser::ValType;

/// Module name of every host import.
pub const IMPORT_MODULE: &str = "quorate";

/// Export called once at deploy, with the deploy's init arguments, when the module has it.
pub const INIT_METHOD: &str = "init";

/// Custom section in which a contract may embed the protobuf `FileDescriptorSet` describing
/// its methods (a `service` whose rpc names are the method names).
pub const INTERFACE_SECTION: &str = "quorate:interface";

/// Why a contract aborted, as passed to the `abort` host function.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AbortKind {
    /// The contract refused the call (its own rule), with a message.
    Failed,
    /// The arguments could not be decoded or are invalid.
    BadInput,
    /// The caller may not do this.
    PermissionDenied,
}

impl AbortKind {
    /// The kind for an ABI code; unknown codes read as `Failed`.
    pub fn from_code(code: i32) -> Self {
        match code {
            1 => Self::BadInput,
            2 => Self::PermissionDenied,
            _ => Self::Failed,
        }
    }
}

const I32: ValType = ValType::I32;
const I64: ValType = ValType::I64;

/// Every host function: name, parameter types, result types.
pub(crate) const HOST_FUNCTIONS: &[(&str, &[ValType], &[ValType])] = &[
    ("input_len", &[], &[I32]),
    ("input_read", &[I32], &[]),
    ("scratch_len", &[], &[I32]),
    ("scratch_read", &[I32], &[]),
    ("set_return", &[I32, I32], &[]),
    ("abort", &[I32, I32, I32], &[]),
    ("storage_get", &[I32, I32], &[I32]),
    ("storage_set", &[I32, I32, I32, I32], &[]),
    ("storage_remove", &[I32, I32], &[I32]),
    ("caller", &[I32], &[]),
    ("origin", &[I32], &[]),
    ("self_address", &[I32], &[]),
    ("value", &[], &[I64]),
    ("block_height", &[], &[I64]),
    ("block_time_ms", &[], &[I64]),
    ("new_id", &[], &[I64]),
    ("balance", &[I32], &[I64]),
    ("key_acts_for", &[I32, I32], &[I32]),
    ("transfer", &[I32, I64], &[I32]),
    ("emit_event", &[I32, I32, I32, I32], &[]),
    ("call", &[I32, I32, I32, I32, I32, I64], &[I32]),
    ("blake3", &[I32, I32, I32], &[]),
];

/// Which host functions code may import: a host function added to the ABI is offered to
/// deployed code only from a protocol version on (a release without it refuses code importing
/// it, so accepting it is a rule every validator must follow from the same height).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AbiLevel {
    /// The ABI of protocol version 1: without the functions of [`NEWER_HOST_FUNCTIONS`].
    V1,
    /// Every host function of this release.
    Latest,
}

/// Host functions newer than [`AbiLevel::V1`].
pub const NEWER_HOST_FUNCTIONS: &[&str] = &["new_id"];

/// An id made from a transaction's place in the chain: `height << 28 | tx_index << 8 | n`
/// for the `n`-th id (from 0) the transaction makes. Unique in the chain and increasing with
/// its order; `Err` past 256 ids in a transaction or 2^20 transactions in a block.
pub fn new_id(height: u64, tx_index: u32, n: u64) -> Result<u64, &'static str> {
    if n >= 256 {
        return Err("a transaction makes at most 256 new ids");
    }
    if tx_index >= 1 << 20 {
        return Err("new ids need a block of at most 2^20 transactions");
    }
    if height >= 1 << 36 {
        return Err("new ids need a height below 2^36");
    }
    Ok((height << 28) | (u64::from(tx_index) << 8) | n)
}

/// The signature of host function `name` at `level`, if there is one.
pub(crate) fn host_signature(
    name: &str,
    level: AbiLevel,
) -> Option<(&'static [ValType], &'static [ValType])> {
    if level == AbiLevel::V1 && NEWER_HOST_FUNCTIONS.contains(&name) {
        return None;
    }
    HOST_FUNCTIONS
        .iter()
        .find(|(n, _, _)| *n == name)
        .map(|(_, p, r)| (*p, *r))
}

#[cfg(test)]
mod new_id_tests {
    use super::*;

    #[test]
    fn ids_are_unique_per_place_and_bounded() {
        assert_eq!(new_id(5, 3, 0), Ok((5 << 28) | (3 << 8)));
        assert_eq!(new_id(5, 3, 255), Ok((5 << 28) | (3 << 8) | 255));
        assert!(new_id(5, 3, 255) < new_id(5, 4, 0));
        assert!(new_id(5, (1 << 20) - 1, 255) < new_id(6, 0, 0));
        assert!(new_id(5, 3, 256).is_err());
        assert!(new_id(5, 1 << 20, 0).is_err());
        assert!(new_id(1 << 36, 0, 0).is_err());
        assert!(host_signature("new_id", AbiLevel::V1).is_none());
        assert!(host_signature("new_id", AbiLevel::Latest).is_some());
        assert!(host_signature("block_height", AbiLevel::V1).is_some());
    }
}
