//! The engine as the node uses it: validate and compile modules, load stored artifacts, and
//! run calls and read-only queries with fuel, checkpoints and typed failures.

use std::collections::HashMap;
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use parking_lot::{Condvar, Mutex, RwLock};
use quorate_proto::crypto::{Address, Hash32};
use wasmtime::{
    AsContextMut, Engine, InstancePre, Linker, Memory, Module, ResourceLimiter, Store, Trap,
};

use crate::abi::{AbiLevel, INIT_METHOD};
use crate::backend::{Backend, Checkpoint};
use crate::config::VmConfig;
use crate::engine::{self, EngineError, Fingerprint};
use crate::inspect::{inspect, ModuleInfo, ValidationError};

/// blake3 of a contract's wasm bytecode.
pub type CodeHash = Hash32;

/// The block a call runs in.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct BlockEnv {
    /// Block height.
    pub height: u64,
    /// Block time, ms since the epoch.
    pub time_ms: u64,
    /// Position of the transaction in its block, from 0 (0 for a query).
    pub tx_index: u32,
}

/// One call into a contract.
#[derive(Clone, Debug)]
pub struct CallRequest<'a> {
    /// The transaction's signer (or the querying account).
    pub origin: Address,
    /// Who calls: the signer for a transaction's own call.
    pub caller: Address,
    /// The contract called.
    pub contract: Address,
    /// Exported method to run.
    pub method: &'a str,
    /// Encoded arguments.
    pub input: &'a [u8],
    /// Native tokens moved from `caller` to `contract` before the method runs.
    pub value: u64,
    /// Fuel available to the call.
    pub fuel: u64,
    /// A read-only query: writes, transfers and events are refused.
    pub read_only: bool,
    /// Running `init` at deploy (the only time `init` may run).
    pub deploying: bool,
    /// The block.
    pub env: BlockEnv,
}

/// An event a contract emitted.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ContractEvent {
    /// The emitting contract.
    pub contract: Address,
    /// Event kind.
    pub kind: String,
    /// Event data.
    pub data: Vec<u8>,
}

/// Why a call failed. A failed call changes no state.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Failure {
    /// The wasm trapped (unreachable, out-of-bounds access, stack overflow, ABI misuse).
    Trap(String),
    /// The contract refused, with its message.
    Aborted(String),
    /// The call used all its fuel.
    OutOfFuel,
    /// The contract needed more linear memory than an instance may have.
    OutOfMemory(String),
    /// The caller may not do this (or a query tried to write).
    PermissionDenied(String),
    /// Undecodable or invalid arguments, unknown method or contract.
    BadInput(String),
    /// The value sent with the call exceeds the sender's balance.
    InsufficientFunds(String),
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Trap(m) => write!(f, "wasm trap: {m}"),
            Self::OutOfFuel => f.write_str("out of fuel"),
            Self::Aborted(m)
            | Self::OutOfMemory(m)
            | Self::PermissionDenied(m)
            | Self::BadInput(m)
            | Self::InsufficientFunds(m) => f.write_str(m),
        }
    }
}

/// What a call did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CallOutcome {
    /// The method's return data, or why it failed.
    pub result: Result<Vec<u8>, Failure>,
    /// Fuel consumed (wasm operators and host work).
    pub fuel_used: u64,
    /// Events emitted, in order (none when the call failed).
    pub events: Vec<ContractEvent>,
}

/// A failure of the node, not of the contract: the call's result must not be used.
#[derive(Debug, thiserror::Error)]
pub enum VmError {
    /// The state backend failed.
    #[error("state backend: {0}")]
    Backend(Box<dyn std::error::Error + Send + Sync>),
    /// A deployed contract's code is not loaded.
    #[error("code {0} of a deployed contract is not loaded")]
    NotLoaded(CodeHash),
    /// The engine failed in a way no contract can cause.
    #[error("wasm engine: {0}")]
    Engine(String),
}

/// A stored artifact could not be loaded.
#[derive(Debug, thiserror::Error)]
#[error("artifact for code {code_hash}: {reason}")]
pub struct LoadError {
    /// The code.
    pub code_hash: CodeHash,
    /// Why.
    pub reason: String,
}

/// A module compiled (or loaded from machine code) and installed.
#[derive(Clone, Debug)]
pub struct Compiled {
    /// blake3 of the bytecode.
    pub code_hash: CodeHash,
    /// Machine code to store, loadable by an engine with the same fingerprint.
    pub artifact: Vec<u8>,
    /// What the module offers.
    pub info: ModuleInfo,
}

/// How a contract's code reaches the engine.
pub(crate) struct Shared<B: Backend> {
    pub(crate) config: VmConfig,
    modules: RwLock<HashMap<CodeHash, InstancePre<Ctx<B>>>>,
}

impl<B: Backend> Shared<B> {
    fn module(&self, code: &CodeHash) -> Option<InstancePre<Ctx<B>>> {
        self.modules.read().get(code).cloned()
    }
}

/// A frame of the contract call stack.
pub(crate) struct Frame {
    pub(crate) contract: Address,
    pub(crate) caller: Address,
    pub(crate) value: u64,
    pub(crate) input: Vec<u8>,
    pub(crate) output: Vec<u8>,
    pub(crate) memory: Memory,
}

/// Denies memory and table growth past the caps, remembering a denied memory growth so that
/// the failure it leads to reads as out of memory.
pub(crate) struct Limiter {
    max_memory: usize,
    max_table: usize,
    max_instances: usize,
    pub(crate) memory_denied: bool,
}

impl ResourceLimiter for Limiter {
    fn memory_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        if desired > self.max_memory {
            self.memory_denied = true;
            return Ok(false);
        }
        Ok(true)
    }

    fn table_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        Ok(desired <= self.max_table)
    }

    fn instances(&self) -> usize {
        self.max_instances
    }

    fn memories(&self) -> usize {
        self.max_instances
    }

    fn tables(&self) -> usize {
        self.max_instances
    }
}

/// Per-call state inside the wasmtime store.
pub(crate) struct Ctx<B: Backend> {
    pub(crate) backend: B,
    pub(crate) shared: Arc<Shared<B>>,
    pub(crate) env: BlockEnv,
    pub(crate) origin: Address,
    pub(crate) read_only: bool,
    pub(crate) frames: Vec<Frame>,
    pub(crate) events: Vec<ContractEvent>,
    pub(crate) scratch: Vec<u8>,
    pub(crate) instances: usize,
    /// Ids `new_id` made in this transaction.
    pub(crate) ids: u64,
    pub(crate) limiter: Limiter,
}

impl<B: Backend> Ctx<B> {
    /// The running frame. Host functions run only inside a frame.
    pub(crate) fn frame(&self) -> &Frame {
        self.frames
            .last()
            .expect("host functions run inside a frame")
    }

    pub(crate) fn frame_mut(&mut self) -> &mut Frame {
        self.frames
            .last_mut()
            .expect("host functions run inside a frame")
    }
}

/// An error raised by a host function: a typed failure of the call, or a node failure.
#[derive(Debug)]
pub(crate) enum HostFault {
    Fail(Failure),
    Fatal(VmError),
}

impl fmt::Display for HostFault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Fail(x) => x.fmt(f),
            Self::Fatal(e) => e.fmt(f),
        }
    }
}

impl std::error::Error for HostFault {}

/// A host-function error that fails the call with `f`.
pub(crate) fn fail(f: Failure) -> wasmtime::Error {
    wasmtime::Error::new(HostFault::Fail(f))
}

/// A host-function error for a backend failure.
pub(crate) fn fatal<E: std::error::Error + Send + Sync + 'static>(e: E) -> wasmtime::Error {
    wasmtime::Error::new(HostFault::Fatal(VmError::Backend(Box::new(e))))
}

/// Sorts an error out of wasm into a failure of the call or a failure of the node.
pub(crate) fn classify(
    err: wasmtime::Error,
    memory_denied: bool,
    max_memory: usize,
) -> Result<Failure, VmError> {
    let failure = match err.downcast::<HostFault>() {
        Ok(HostFault::Fatal(e)) => return Err(e),
        Ok(HostFault::Fail(f)) => f,
        Err(err) => match err.downcast_ref::<Trap>() {
            Some(Trap::OutOfFuel) => Failure::OutOfFuel,
            Some(Trap::StackOverflow) => {
                Failure::Trap("stack overflow (recursion deeper than the wasm stack allows)".into())
            }
            Some(trap) => Failure::Trap(trap.to_string()),
            // Instantiation errors that are not traps (none are expected after validation).
            None => Failure::Trap(format!("{err:#}")),
        },
    };
    Ok(match failure {
        Failure::Trap(m) | Failure::Aborted(m) if memory_denied => Failure::OutOfMemory(format!(
            "out of memory: linear memory is capped at {max_memory} bytes ({m})"
        )),
        other => other,
    })
}

/// Runs `method` of `target` in a new instance inside the store: the transaction's own call
/// and every nested call go through here.
pub(crate) fn invoke<B: Backend>(
    mut cx: impl AsContextMut<Data = Ctx<B>>,
    target: Address,
    caller: Address,
    method: &str,
    input: Vec<u8>,
    value: u64,
    deploying: bool,
) -> wasmtime::Result<Vec<u8>> {
    let mut cx = cx.as_context_mut();
    let ctx = cx.data_mut();
    let limits = &ctx.shared.config.limits;
    if (method == INIT_METHOD) != deploying {
        return Err(fail(Failure::BadInput(if deploying {
            "deploy must run init".into()
        } else {
            format!("method {INIT_METHOD:?} runs only at deploy")
        })));
    }
    if ctx.frames.len() >= limits.max_call_depth {
        return Err(fail(Failure::Trap(format!(
            "call depth limit {} reached",
            limits.max_call_depth
        ))));
    }
    if ctx.instances >= limits.max_instances_per_tx {
        return Err(fail(Failure::Trap(format!(
            "a transaction may run at most {} contract instances",
            limits.max_instances_per_tx
        ))));
    }
    let code = ctx
        .backend
        .code_of(&target)
        .map_err(fatal)?
        .ok_or_else(|| fail(Failure::BadInput(format!("no contract at {target}"))))?;
    let pre = ctx
        .shared
        .module(&code)
        .ok_or_else(|| wasmtime::Error::new(HostFault::Fatal(VmError::NotLoaded(code))))?;
    if value > 0 {
        if ctx.read_only {
            return Err(fail(Failure::PermissionDenied(
                "a read-only query cannot send value".into(),
            )));
        }
        if !ctx
            .backend
            .transfer(&caller, &target, value)
            .map_err(fatal)?
        {
            let balance = ctx.backend.balance(&caller).map_err(fatal)?;
            return Err(fail(Failure::InsufficientFunds(format!(
                "{caller} has {balance}; the call sends {value}"
            ))));
        }
    }
    ctx.instances += 1;
    let instance = pre.instantiate(&mut cx)?;
    let memory = instance
        .get_memory(&mut cx, "memory")
        .ok_or_else(|| fail(Failure::Trap("module exports no memory".into())))?;
    let func = instance
        .get_typed_func::<(), ()>(&mut cx, method)
        .map_err(|_| {
            fail(Failure::BadInput(format!(
                "contract {target} has no method {method:?}"
            )))
        })?;
    cx.data_mut().frames.push(Frame {
        contract: target,
        caller,
        value,
        input,
        output: Vec::new(),
        memory,
    });
    let result = func.call(&mut cx, ());
    let frame = cx.data_mut().frames.pop().expect("pushed above");
    result.map(|()| frame.output)
}

/// The imports and exports of a loaded module with their types, in the form of
/// [`ModuleInfo::shape`].
fn shape_of(module: &Module) -> Vec<String> {
    use crate::inspect::shape_signature;
    fn name(t: &wasmtime::ValType) -> &'static str {
        match t {
            wasmtime::ValType::I32 => "i32",
            wasmtime::ValType::I64 => "i64",
            wasmtime::ValType::F32 => "f32",
            wasmtime::ValType::F64 => "f64",
            wasmtime::ValType::V128 => "v128",
            wasmtime::ValType::Ref(_) => "ref",
        }
    }
    let func = |f: &wasmtime::FuncType| {
        let params: Vec<_> = f.params().collect();
        let results: Vec<_> = f.results().collect();
        shape_signature(params.iter().map(name), results.iter().map(name))
    };
    let mut shape = Vec::new();
    for i in module.imports() {
        match i.ty() {
            wasmtime::ExternType::Func(f) => shape.push(format!(
                "import {}.{} func {}",
                i.module(),
                i.name(),
                func(&f)
            )),
            _ => shape.push(format!("import {}.{} other", i.module(), i.name())),
        }
    }
    for e in module.exports() {
        let kind = match e.ty() {
            wasmtime::ExternType::Func(f) => format!("func {}", func(&f)),
            wasmtime::ExternType::Memory(_) => "memory".into(),
            wasmtime::ExternType::Table(_) => "table".into(),
            wasmtime::ExternType::Global(_) => "global".into(),
            _ => "other".into(),
        };
        shape.push(format!("export {} {kind}", e.name()));
    }
    shape.sort();
    shape
}

/// Bounds how many stores run at once, so the instance pool can never run dry (a dry pool
/// would make an instantiation fail on one validator and not on another).
struct Slots {
    free: Mutex<usize>,
    freed: Condvar,
}

struct SlotGuard<'a>(&'a Slots);

impl Slots {
    fn acquire(&self) -> SlotGuard<'_> {
        let mut free = self.free.lock();
        while *free == 0 {
            self.freed.wait(&mut free);
        }
        *free -= 1;
        SlotGuard(self)
    }
}

impl Drop for SlotGuard<'_> {
    fn drop(&mut self) {
        *self.0.free.lock() += 1;
        self.0.freed.notify_one();
    }
}

/// The contract engine for a backend type `B`.
pub struct Vm<B: Backend> {
    engine: Engine,
    linker: Linker<Ctx<B>>,
    shared: Arc<Shared<B>>,
    fingerprint: Fingerprint,
    compilations: AtomicU64,
    slots: Slots,
}

impl<B: Backend> Vm<B> {
    /// Builds the engine and the host ABI.
    pub fn new(config: VmConfig) -> Result<Self, EngineError> {
        let (engine, fingerprint) = engine::build(&config.limits)?;
        let mut linker = Linker::new(&engine);
        crate::host::define(&mut linker).map_err(|e| EngineError(format!("{e:#}")))?;
        let slots = Slots {
            free: Mutex::new(config.limits.concurrent_stores.max(1)),
            freed: Condvar::new(),
        };
        Ok(Self {
            engine,
            linker,
            shared: Arc::new(Shared {
                config,
                modules: RwLock::new(HashMap::new()),
            }),
            fingerprint,
            compilations: AtomicU64::new(0),
            slots,
        })
    }

    /// The engine's fingerprint: artifacts carry it, and only matching ones load.
    pub fn fingerprint(&self) -> Fingerprint {
        self.fingerprint
    }

    /// The configuration.
    pub fn config(&self) -> &VmConfig {
        &self.shared.config
    }

    /// How many modules this engine compiled from bytecode since it was built.
    pub fn compilations(&self) -> u64 {
        self.compilations.load(Ordering::Relaxed)
    }

    /// True when the code is loaded and callable.
    pub fn is_loaded(&self, code_hash: &CodeHash) -> bool {
        self.shared.modules.read().contains_key(code_hash)
    }

    /// Checks bytecode: size, validity under the engine's features, ABI imports, caps.
    /// Deterministic: every validator reaches the same verdict.
    pub fn validate(&self, wasm: &[u8]) -> Result<ModuleInfo, ValidationError> {
        self.validate_at(wasm, AbiLevel::Latest)
    }

    /// [`Self::validate`] against the host functions of `level`: what a deploy or an upgrade
    /// checks, at its height's protocol version.
    pub fn validate_at(&self, wasm: &[u8], level: AbiLevel) -> Result<ModuleInfo, ValidationError> {
        let max = self.shared.config.limits.max_code_bytes;
        if wasm.len() > max {
            return Err(ValidationError::TooLarge {
                size: wasm.len(),
                max,
            });
        }
        Module::validate(&self.engine, wasm)
            .map_err(|e| ValidationError::Invalid(format!("{e:#}")))?;
        inspect(wasm, &self.shared.config.limits, level)
    }

    fn install(&self, code_hash: CodeHash, module: &Module) -> Result<(), String> {
        let pre = self
            .linker
            .instantiate_pre(module)
            .map_err(|e| format!("{e:#}"))?;
        self.shared.modules.write().insert(code_hash, pre);
        Ok(())
    }

    /// Validates and compiles bytecode, installs it, and returns the artifact to store.
    pub fn compile(&self, wasm: &[u8]) -> Result<Compiled, ValidationError> {
        let info = self.validate(wasm)?;
        let code_hash = Hash32::of(wasm);
        let module = Module::new(&self.engine, wasm)
            .map_err(|e| ValidationError::Invalid(format!("compile: {e:#}")))?;
        self.compilations.fetch_add(1, Ordering::Relaxed);
        let artifact = module
            .serialize()
            .map_err(|e| ValidationError::Invalid(format!("serialize: {e:#}")))?;
        self.install(code_hash, &module)
            .map_err(ValidationError::Invalid)?;
        Ok(Compiled {
            code_hash,
            artifact,
            info,
        })
    }

    /// Machine code for `wasm` as this engine would produce it, for a trusted deployer to
    /// send (`deploy --precompiled`). Installs nothing.
    pub fn precompile(&self, wasm: &[u8]) -> Result<Vec<u8>, ValidationError> {
        self.validate(wasm)?;
        self.engine
            .precompile_module(wasm)
            .map_err(|e| ValidationError::Invalid(format!("compile: {e:#}")))
    }

    /// Installs machine code a trusted deployer sent with `wasm`, without compiling. Machine
    /// code that does not load into this engine (another fingerprint, or damaged), or that
    /// offers other imports or exports than `wasm`, is an error: the caller never compiles
    /// `wasm` in its place, since the machine code *is* the contract (ADR 0010).
    pub fn install_machine_code(
        &self,
        wasm: &[u8],
        machine_code: &[u8],
    ) -> Result<Compiled, ValidationError> {
        let info = self.validate(wasm)?;
        let code_hash = Hash32::of(wasm);
        // Receipts carry fixed texts: the engine's message is not part of the outcome.
        let module = self.deserialize(machine_code).map_err(|_| {
            ValidationError::MachineCode("it does not load into the chain's engine".into())
        })?;
        // Machine code must at least offer what the bytecode offers: the same imports and
        // exports with the same types. (That it computes the same is the trusted deployer's
        // word: checking it would mean compiling.)
        if shape_of(&module) != info.shape {
            return Err(ValidationError::MachineCode(
                "its imports or exports differ from the bytecode's".into(),
            ));
        }
        self.install(code_hash, &module).map_err(|_| {
            ValidationError::MachineCode("it does not link against the host ABI".into())
        })?;
        Ok(Compiled {
            code_hash,
            artifact: machine_code.to_vec(),
            info,
        })
    }

    /// Loads an artifact this engine stored earlier (at start-up, instead of compiling).
    pub fn load(&self, code_hash: CodeHash, artifact: &[u8]) -> Result<(), LoadError> {
        let err = |reason: String| LoadError { code_hash, reason };
        let module = self.deserialize(artifact).map_err(err)?;
        self.install(code_hash, &module).map_err(err)
    }

    fn deserialize(&self, machine_code: &[u8]) -> Result<Module, String> {
        // SAFETY: machine code comes only from this node's artifact store (written by
        // `compile` of an engine with the same fingerprint) or from a deployer the chain's
        // genesis or admin designated as trusted to supply machine code, which is the trust
        // model of precompiled deploys (docs/adr/0003-contract-engine.md). wasmtime itself
        // rejects artifacts of another version or configuration.
        #[allow(unsafe_code)]
        unsafe {
            Module::deserialize(&self.engine, machine_code).map_err(|e| format!("{e:#}"))
        }
    }

    /// Runs a call with `backend` as state; returns the backend (with the call's writes, or
    /// none of them if it failed) and the outcome.
    pub fn call(&self, backend: B, req: &CallRequest<'_>) -> (B, Result<CallOutcome, VmError>) {
        let _slot = self.slots.acquire();
        let limits = &self.shared.config.limits;
        let mut store = Store::new(
            &self.engine,
            Ctx {
                backend,
                shared: self.shared.clone(),
                env: req.env,
                origin: req.origin,
                read_only: req.read_only,
                frames: Vec::with_capacity(limits.max_call_depth),
                events: Vec::new(),
                scratch: Vec::new(),
                instances: 0,
                ids: 0,
                limiter: Limiter {
                    max_memory: limits.max_memory_bytes,
                    max_table: limits.max_table_elements,
                    max_instances: limits.max_instances_per_tx,
                    memory_denied: false,
                },
            },
        );
        store.limiter(|ctx| &mut ctx.limiter);
        if let Err(e) = store.set_fuel(req.fuel) {
            let ctx = store.into_data();
            return (ctx.backend, Err(VmError::Engine(format!("{e:#}"))));
        }
        let start: Checkpoint = store.data_mut().backend.checkpoint();
        let result = invoke(
            &mut store,
            req.contract,
            req.caller,
            req.method,
            req.input.to_vec(),
            req.value,
            req.deploying,
        );
        let fuel_used = req.fuel - store.get_fuel().unwrap_or(0);
        let mut ctx = store.into_data();
        let outcome = match result {
            Ok(output) => Ok(CallOutcome {
                result: Ok(output),
                fuel_used,
                events: std::mem::take(&mut ctx.events),
            }),
            Err(e) => {
                ctx.backend.revert_to(start);
                classify(e, ctx.limiter.memory_denied, limits.max_memory_bytes).map(|f| {
                    CallOutcome {
                        result: Err(f),
                        fuel_used,
                        events: Vec::new(),
                    }
                })
            }
        };
        (ctx.backend, outcome)
    }
}
