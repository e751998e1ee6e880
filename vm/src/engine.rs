//! The wasmtime engine with Quorate's deterministic settings, and its fingerprint.

use std::fmt;
use std::hash::{Hash, Hasher};

use wasmtime::{
    Config, Enabled, Engine, InstanceAllocationStrategy, OptLevel, PoolingAllocationConfig,
    Strategy,
};

use crate::config::Limits;

/// Version of the host ABI; part of the fingerprint, so artifacts built against another ABI
/// are never loaded.
const ABI_VERSION: &str = "quorate-abi/2";

/// The engine could not be built.
#[derive(Debug, thiserror::Error)]
#[error("wasm engine: {0}")]
pub struct EngineError(pub String);

/// Identifies an engine build and configuration: machine code compiled by one engine loads
/// only into an engine with the same fingerprint (blake3 of wasmtime's compatibility hash and
/// the ABI version).
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Fingerprint(pub [u8; 32]);

impl Fingerprint {
    /// Lowercase hex.
    pub fn to_hex(&self) -> String {
        quorate_proto::crypto::Hash32(self.0).to_hex()
    }
}

impl fmt::Display for Fingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

impl fmt::Debug for Fingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Fingerprint({})", self.to_hex())
    }
}

/// Feeds `Hash` output into blake3.
struct Blake3Hasher(blake3::Hasher);

impl Hasher for Blake3Hasher {
    fn finish(&self) -> u64 {
        let mut b = [0u8; 8];
        b.copy_from_slice(&self.0.finalize().as_bytes()[..8]);
        u64::from_le_bytes(b)
    }

    fn write(&mut self, bytes: &[u8]) {
        self.0.update(bytes);
    }
}

/// On x86-64 Linux, code is generated for a fixed target and the x86-64-v2 feature level
/// (present on every server CPU since 2009) instead of the host's own features, so machine
/// code, stack use and artifacts are the same on every validator. Wider features (AVX, BMI,
/// LZCNT, FMA) are never used. Elsewhere the host's features are used.
#[cfg(all(target_arch = "x86_64", target_os = "linux"))]
fn pin_target(config: &mut Config) -> Result<(), EngineError> {
    config
        .target("x86_64-unknown-linux-gnu")
        .map_err(|e| EngineError(format!("{e:#}")))?;
    for flag in [
        "has_sse3",
        "has_ssse3",
        "has_sse41",
        "has_sse42",
        "has_popcnt",
    ] {
        // SAFETY: wasmtime checks every enabled flag against the host's CPU when the engine
        // compiles or loads code and refuses a host that lacks one, so no instruction the
        // host cannot run is ever executed.
        #[allow(unsafe_code)]
        unsafe {
            config.cranelift_flag_enable(flag);
        }
    }
    Ok(())
}

#[cfg(not(all(target_arch = "x86_64", target_os = "linux")))]
fn pin_target(_config: &mut Config) -> Result<(), EngineError> {
    Ok(())
}

/// Most bytes of a memory or table reset in place, not returned to the kernel, after a call.
const KEEP_RESIDENT_BYTES: usize = 1 << 20;

/// Builds the engine.
pub(crate) fn build(limits: &Limits) -> Result<(Engine, Fingerprint), EngineError> {
    let mut config = Config::new();
    config
        .strategy(Strategy::Cranelift)
        .cranelift_opt_level(OptLevel::Speed)
        .cranelift_nan_canonicalization(true)
        .consume_fuel(true)
        .wasm_simd(false)
        .wasm_relaxed_simd(false)
        .wasm_multi_memory(false)
        .wasm_memory64(false)
        .wasm_tail_call(false)
        .wasm_custom_page_sizes(false)
        .wasm_wide_arithmetic(false)
        .wasm_extended_const(true)
        .wasm_multi_value(true)
        .wasm_bulk_memory(true)
        .wasm_backtrace(false)
        .max_wasm_stack(limits.max_stack_bytes)
        // Bounds-checked memories without guard pages: a reused memory slot then needs no
        // mprotect when a call grows its memory or when the slot is reset for the next call.
        .memory_reservation(limits.max_memory_bytes as u64)
        .memory_guard_size(0)
        .guard_before_linear_memory(false)
        .memory_may_move(false);
    pin_target(&mut config)?;
    let stores = limits.concurrent_stores.max(1) as u32;
    let instances = stores * limits.max_instances_per_tx.max(1) as u32;
    let mut pool = PoolingAllocationConfig::new();
    pool.total_core_instances(instances)
        .total_memories(instances)
        .total_tables(instances)
        .max_memories_per_module(1)
        .max_tables_per_module(1)
        .max_memory_size(limits.max_memory_bytes)
        .table_elements(limits.max_table_elements)
        .max_unused_warm_slots(instances.min(64));
    // A contract call dirties a few pages of its memory; returning them to the kernel after
    // every call (the default) cost a third of a remittance call in page faults, madvise and
    // TLB shootdowns. Where the kernel can list the dirty pages (PAGEMAP_SCAN, Linux 6.7+),
    // reset those in place instead and keep them resident.
    if PoolingAllocationConfig::is_pagemap_scan_available() {
        pool.pagemap_scan(Enabled::Yes)
            .linear_memory_keep_resident(KEEP_RESIDENT_BYTES.min(limits.max_memory_bytes))
            .table_keep_resident(KEEP_RESIDENT_BYTES);
    }
    config.allocation_strategy(InstanceAllocationStrategy::Pooling(pool));
    let engine = Engine::new(&config).map_err(|e| EngineError(format!("{e:#}")))?;
    let mut h = Blake3Hasher(blake3::Hasher::new_derive_key(
        "quorate/v1/engine-fingerprint",
    ));
    ABI_VERSION.hash(&mut h);
    engine.precompile_compatibility_hash().hash(&mut h);
    let fingerprint = Fingerprint(*h.0.finalize().as_bytes());
    Ok((engine, fingerprint))
}
