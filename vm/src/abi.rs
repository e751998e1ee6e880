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
    ("tx_index", &[], &[I32]),
    ("balance", &[I32], &[I64]),
    ("key_acts_for", &[I32, I32], &[I32]),
    ("transfer", &[I32, I64], &[I32]),
    ("emit_event", &[I32, I32, I32, I32], &[]),
    ("call", &[I32, I32, I32, I32, I32, I64], &[I32]),
    ("blake3", &[I32, I32, I32], &[]),
];

/// The signature of host function `name`, if there is one.
pub(crate) fn host_signature(name: &str) -> Option<(&'static [ValType], &'static [ValType])> {
    HOST_FUNCTIONS
        .iter()
        .find(|(n, _, _)| *n == name)
        .map(|(_, p, r)| (*p, *r))
}
