//! The node's contract runtime: the engine built from the chain's parameters, the artifacts
//! it loads at start-up (recompiling from stored bytecode only after an engine change), the
//! system contracts deployed at genesis, code preparation for deploys, and read-only queries.

use std::collections::HashMap;
use std::sync::Arc;

use bytes::Bytes;
use parking_lot::Mutex;
use quorate_genesis::ChainParams;
use quorate_proto::contracts::certificates;
use quorate_proto::crypto::{Address, Hash32};
use quorate_vm::{
    AbiLevel, BlockEnv, CallOutcome, CallRequest, EngineError, FuelCosts, Limits, ModuleInfo,
    ValidationError, Vm, VmConfig,
};

use crate::execution::{ParallelPolicy, WorldState};
use crate::state_root::LtHash;
use crate::storage::{ContractRecord, EntryKey, Head, NewCode, Storage, StorageError};

/// The engine configuration a chain's parameters call for.
pub fn vm_config(params: &ChainParams) -> VmConfig {
    let c = &params.contracts;
    VmConfig {
        limits: Limits {
            max_code_bytes: c.max_code_bytes as usize,
            max_memory_bytes: c.max_memory_bytes as usize,
            max_stack_bytes: c.max_stack_bytes as usize,
            max_call_depth: c.max_call_depth as usize,
            ..Limits::default()
        },
        fuel: FuelCosts {
            host_call: c.host_call_fuel,
            per_byte: c.host_byte_fuel,
            storage_read: c.storage_read_fuel,
            storage_write: c.storage_write_fuel,
            storage_write_per_byte: c.storage_write_byte_fuel,
            event: c.event_fuel,
            balance: c.balance_fuel,
            call: c.nested_call_fuel,
            hash: c.hash_fuel,
            hash_per_byte: c.hash_byte_fuel,
        },
    }
}

/// The fingerprint of the engine this release builds for a chain's parameters: what a genesis
/// made here names as the chain's engine (ADR 0010).
pub fn engine_fingerprint(params: &ChainParams) -> Result<quorate_vm::Fingerprint, EngineError> {
    Ok(Vm::<WorldState>::new(vm_config(params))?.fingerprint())
}

/// What loading the stored contracts at start-up did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LoadReport {
    /// Artifacts loaded as stored.
    pub loaded: usize,
    /// Contracts compiled again from bytecode (no artifact for this engine).
    pub recompiled: usize,
}

/// Code ready for a deploy.
pub struct PreparedCode {
    /// blake3 of the bytecode.
    pub code_hash: Hash32,
    /// What the module offers.
    pub info: ModuleInfo,
    /// Bytecode and artifact to store with the block, when storage lacks them.
    pub new_code: Option<NewCode>,
}

/// Where the loaded module of code not committed yet came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Source {
    /// Compiled here from the bytecode.
    Compiled,
    /// Machine code a trusted deployer sent, with its hash.
    MachineCode(Hash32),
}

/// An artifact of code not committed yet, and where it came from.
type Pending = (Arc<Vec<u8>>, Source);

/// The contract engine of a node with its code bookkeeping.
pub struct ContractRuntime {
    vm: Vm<WorldState>,
    /// Artifacts of deploys whose blocks are not committed yet, with where they came from: a
    /// module loaded for one block is reused by another only if that block would load the
    /// same (a block that never commits must not decide what another block runs).
    unpersisted: Mutex<HashMap<Hash32, Pending>>,
    /// Which contract calls run ahead in parallel (ADR 0020).
    parallel: ParallelPolicy,
}

impl ContractRuntime {
    /// Builds the engine for `params`.
    pub fn new(params: &ChainParams) -> Result<Self, EngineError> {
        Ok(Self {
            vm: Vm::new(vm_config(params))?,
            unpersisted: Mutex::new(HashMap::new()),
            parallel: ParallelPolicy::default(),
        })
    }

    /// Which contract calls run ahead, and how that fared.
    pub fn parallel(&self) -> &ParallelPolicy {
        &self.parallel
    }

    /// The engine.
    pub fn vm(&self) -> &Vm<WorldState> {
        &self.vm
    }

    /// Loads every stored contract: the machine code deployed for it, if it was deployed
    /// precompiled (never a compilation in its place: ADR 0010); else the artifact for this
    /// engine when there is one, else a compilation from the stored bytecode whose artifact is
    /// stored for the next start.
    pub fn load_stored(&self, storage: &Storage) -> Result<LoadReport, StorageError> {
        let fingerprint = self.vm.fingerprint();
        let mut report = LoadReport::default();
        for code_hash in storage.code_hashes()? {
            if let Some(machine_code) = storage.machine_code(&code_hash)? {
                self.vm.load(code_hash, &machine_code).map_err(|e| {
                    StorageError::Engine(format!(
                        "the machine code deployed for {code_hash} does not load: {e}"
                    ))
                })?;
                report.loaded += 1;
                continue;
            }
            if let Some(artifact) = storage.artifact(&code_hash, &fingerprint.0)? {
                match self.vm.load(code_hash, &artifact) {
                    Ok(()) => {
                        report.loaded += 1;
                        continue;
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "stored artifact does not load; recompiling")
                    }
                }
            }
            let wasm = storage
                .code(&code_hash)?
                .ok_or_else(|| StorageError::Corrupt {
                    what: format!("code {code_hash}"),
                    detail: "listed but missing".into(),
                })?;
            let compiled = self.vm.compile(&wasm).map_err(|e| {
                StorageError::Engine(format!("stored code {code_hash} does not compile: {e}"))
            })?;
            storage.put_artifact(&code_hash, &fingerprint.0, &compiled.artifact)?;
            report.recompiled += 1;
        }
        Ok(report)
    }

    /// Validates deploy code and makes it callable: installs `machine_code` when given (the
    /// caller has checked that it may be: a trusted deployer, the chain's engine), compiles
    /// otherwise, or reuses what is loaded. `Ok(Err(_))` when the code is invalid or the
    /// machine code does not install (the deploy fails with a receipt).
    pub fn prepare(
        &self,
        storage: &Storage,
        wasm: &Bytes,
        machine_code: Option<&[u8]>,
        level: AbiLevel,
    ) -> Result<Result<PreparedCode, ValidationError>, StorageError> {
        let info = match self.vm.validate_at(wasm, level) {
            Ok(info) => info,
            Err(e) => return Ok(Err(e)),
        };
        let code_hash = Hash32::of(wasm);
        // Committed code is loaded as committed (`persisted`); anything else is checked
        // against where its loaded module came from.
        let stored = storage.has_code(&code_hash)?;
        let loaded = self.vm.is_loaded(&code_hash);
        if stored && loaded {
            return Ok(Ok(PreparedCode {
                code_hash,
                info,
                new_code: None,
            }));
        }
        let wanted = match machine_code {
            Some(mc) => Source::MachineCode(Hash32::of(mc)),
            None => Source::Compiled,
        };
        let pending = self.unpersisted.lock().get(&code_hash).cloned();
        let artifact = match pending {
            Some((a, source)) if loaded && source == wanted => a,
            _ => {
                let compiled = match machine_code {
                    Some(mc) => self.vm.install_machine_code(wasm, mc),
                    None => self.vm.compile(wasm),
                };
                let compiled = match compiled {
                    Ok(c) => c,
                    Err(e) => return Ok(Err(e)),
                };
                let a = Arc::new(compiled.artifact);
                self.unpersisted
                    .lock()
                    .insert(code_hash, (a.clone(), wanted));
                a
            }
        };
        let new_code = (!stored).then(|| NewCode {
            code_hash,
            wasm: wasm.clone(),
            artifact,
            fingerprint: self.vm.fingerprint().0,
        });
        Ok(Ok(PreparedCode {
            code_hash,
            info,
            new_code,
        }))
    }

    /// The state a new chain starts with besides balances: admin and trusted deployers, and the
    /// system contracts deployed (compiled, recorded at their fixed addresses, `init` run).
    /// Returns the entries and the code to store.
    #[allow(clippy::type_complexity)]
    pub fn genesis_state(
        &self,
        storage: &Arc<Storage>,
        genesis: &quorate_genesis::Genesis,
    ) -> Result<(Vec<(EntryKey, Vec<u8>)>, Vec<NewCode>), StorageError> {
        let engine = |what: String| StorageError::Engine(what);
        let mut state = WorldState::new(storage.clone());
        let admin = genesis.admin_address();
        state.set_entry(
            EntryKey::validators(),
            Some(prost::Message::encode_to_vec(
                &crate::validator_sets::genesis_schedule(genesis.validator_entries()),
            )),
        )?;
        if let Some(a) = admin {
            state.set_entry(EntryKey::admin(), Some(a.0.to_vec()))?;
        }
        if let Some(policy) = genesis.governance_policy() {
            state.set_entry(
                EntryKey::governance(),
                Some(prost::Message::encode_to_vec(&policy)),
            )?;
        }
        if let Some(fp) = genesis.engine() {
            state.set_entry(EntryKey::engine(), Some(fp.to_vec()))?;
        }
        for t in genesis.trusted_deployer_addresses() {
            state.set_entry(EntryKey::trusted(&t), Some(vec![1u8]))?;
        }
        let mut new_code = Vec::new();
        for sc in genesis.system_contract_code() {
            let wasm = Bytes::from_static(sc.wasm);
            let prepared = self
                .prepare(storage, &wasm, None, AbiLevel::Latest)?
                .map_err(|e| engine(format!("system contract {}: {e}", sc.name)))?;
            let address = sc.address();
            let record = ContractRecord {
                code_hash: Bytes::copy_from_slice(&prepared.code_hash.0),
                deployer: Bytes::copy_from_slice(&[0u8; 20]),
                height: 0,
                ..Default::default()
            };
            state.set_entry(
                EntryKey::contract(&address),
                Some(prost::Message::encode_to_vec(&record)),
            )?;
            if prepared.info.has_init {
                let input = match sc.name {
                    quorate_genesis::system::CERTIFICATES => {
                        prost::Message::encode_to_vec(&certificates::InitArgs {
                            admin: admin
                                .map(|a| Bytes::copy_from_slice(&a.0))
                                .unwrap_or_default(),
                            authorities: genesis
                                .certificate_authority_addresses()
                                .iter()
                                .map(|a| Bytes::copy_from_slice(&a.0))
                                .collect(),
                        })
                    }
                    _ => Vec::new(),
                };
                let caller = admin.unwrap_or_default();
                let request = CallRequest {
                    origin: caller,
                    caller,
                    contract: address,
                    method: quorate_vm::INIT_METHOD,
                    input: &input,
                    value: 0,
                    fuel: genesis.params.max_fuel_per_tx,
                    read_only: false,
                    deploying: true,
                    env: BlockEnv {
                        height: 0,
                        time_ms: genesis.genesis_time_ms,
                        tx_index: 0,
                    },
                };
                let (back, outcome) = self.vm.call(state, &request);
                state = back;
                let outcome = outcome.map_err(|e| engine(e.to_string()))?;
                if let Err(f) = outcome.result {
                    return Err(engine(format!(
                        "system contract {} init failed: {f}",
                        sc.name
                    )));
                }
            }
            new_code.extend(prepared.new_code);
        }
        let (_, entries, _) = state.finish(LtHash::default());
        let entries = entries
            .into_iter()
            .filter_map(|(k, v)| v.map(|v| (k, v)))
            .collect();
        Ok((entries, new_code))
    }

    /// After a block stored `new_code`: makes sure the loaded module of each is the artifact
    /// that block ran (another, uncommitted block may have loaded another one since), and
    /// forgets the pending artifacts.
    pub fn persisted(&self, new_code: &[NewCode]) {
        if new_code.is_empty() {
            return;
        }
        let mut pending = self.unpersisted.lock();
        for c in new_code {
            let current = pending.remove(&c.code_hash);
            if current.is_some_and(|(a, _)| a.as_slice() != c.artifact.as_slice()) {
                if let Err(e) = self.vm.load(c.code_hash, &c.artifact) {
                    // It loaded when the block ran; failing now is an engine fault.
                    tracing::error!(error = %e, code = %c.code_hash, "committed artifact no longer loads");
                }
            }
        }
    }

    /// A read-only call on the committed state; also returns the height it ran at.
    pub fn query(
        &self,
        storage: &Arc<Storage>,
        contract: Address,
        method: &str,
        args: &[u8],
        caller: Address,
        fuel: u64,
    ) -> Result<(CallOutcome, Head), StorageError> {
        // One committed state for the whole query, a RocksDB snapshot's: commits go on
        // meanwhile (the snapshot outlives every read made through `at`).
        let snapshot = storage.db().snapshot();
        let at = Arc::new(Storage::snapshot_reads(&snapshot));
        let head = storage.head_at(Some(&at))?;
        let request = CallRequest {
            origin: caller,
            caller,
            contract,
            method,
            input: args,
            value: 0,
            fuel,
            read_only: true,
            deploying: false,
            env: BlockEnv {
                height: head.height,
                time_ms: head.time_ms,
                tx_index: 0,
            },
        };
        let state = WorldState::at_snapshot(storage.clone(), at);
        let (state, outcome) = self.vm.call(state, &request);
        // Every read through the snapshot ends before it is released.
        drop(state);
        drop(snapshot);
        let outcome = outcome.map_err(|e| StorageError::Engine(e.to_string()))?;
        Ok((outcome, head))
    }
}
