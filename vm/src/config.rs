//! Limits and fuel prices of the engine. Both are consensus rules: every validator of a chain
//! must use the same values (the node takes them from genesis).

/// Caps on what a contract may be and use.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Largest wasm module accepted, bytes.
    pub max_code_bytes: usize,
    /// Largest linear memory of one instance, bytes (a multiple of 64 KiB).
    pub max_memory_bytes: usize,
    /// Most table elements of one instance.
    pub max_table_elements: usize,
    /// Wasm stack available to one call, bytes.
    pub max_stack_bytes: usize,
    /// Deepest chain of contract-to-contract calls (the transaction's own call is depth 1).
    pub max_call_depth: usize,
    /// Most contract instances one transaction may create (its call and every nested call).
    pub max_instances_per_tx: usize,
    /// Longest storage key, bytes.
    pub max_key_bytes: usize,
    /// Longest storage value, bytes.
    pub max_value_bytes: usize,
    /// Longest call input or return data, bytes.
    pub max_io_bytes: usize,
    /// Longest event kind, bytes.
    pub max_event_kind_bytes: usize,
    /// Longest event data, bytes.
    pub max_event_data_bytes: usize,
    /// Most events one transaction may emit.
    pub max_events_per_tx: usize,
    /// Longest method name, bytes.
    pub max_method_bytes: usize,
    /// Stores that may run at once on this node (block execution plus read-only queries); sizes
    /// the instance pool. Not a consensus rule.
    pub concurrent_stores: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_code_bytes: 512 * 1024,
            max_memory_bytes: 16 << 20,
            max_table_elements: 4096,
            max_stack_bytes: 512 * 1024,
            max_call_depth: 8,
            max_instances_per_tx: 32,
            max_key_bytes: 256,
            max_value_bytes: 64 * 1024,
            max_io_bytes: 256 * 1024,
            max_event_kind_bytes: 64,
            max_event_data_bytes: 16 * 1024,
            max_events_per_tx: 1024,
            max_method_bytes: 64,
            concurrent_stores: 8,
        }
    }
}

/// Fuel charged for host work, on top of wasmtime's fuel per wasm operator.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FuelCosts {
    /// Every host call.
    pub host_call: u64,
    /// Every byte copied between the host and linear memory.
    pub per_byte: u64,
    /// A storage read.
    pub storage_read: u64,
    /// A storage write or removal.
    pub storage_write: u64,
    /// Every byte of key plus value written.
    pub storage_write_per_byte: u64,
    /// An emitted event.
    pub event: u64,
    /// A balance read or transfer.
    pub balance: u64,
    /// A call to another contract (before the callee's own fuel).
    pub call: u64,
    /// A blake3 hash.
    pub hash: u64,
    /// Every byte hashed.
    pub hash_per_byte: u64,
}

impl Default for FuelCosts {
    fn default() -> Self {
        Self {
            host_call: 20,
            per_byte: 1,
            storage_read: 200,
            storage_write: 1_000,
            storage_write_per_byte: 10,
            event: 200,
            balance: 200,
            call: 2_000,
            hash: 100,
            hash_per_byte: 1,
        }
    }
}

/// Everything the engine is built from.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct VmConfig {
    /// Caps.
    pub limits: Limits,
    /// Host fuel prices.
    pub fuel: FuelCosts,
}
