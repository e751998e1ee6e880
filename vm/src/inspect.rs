//! Static checks of a contract module, run before anything is compiled: wasm validity under
//! the engine's feature set, size and resource caps, imports limited to the host ABI, and the
//! callable methods it exports.

use wasmparser::{ExternalKind, FuncType, Parser, Payload, TypeRef, ValType};

use crate::abi::{host_signature, AbiLevel, IMPORT_MODULE, INIT_METHOD, INTERFACE_SECTION};
use crate::config::Limits;

/// Wasm page size.
const PAGE: u64 = 64 * 1024;

/// What a valid contract module offers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ModuleInfo {
    /// Callable methods: exported functions taking and returning nothing, sorted; `init` is
    /// not among them (it runs only at deploy).
    pub methods: Vec<String>,
    /// The module exports `init`.
    pub has_init: bool,
    /// The interface descriptor from the `quorate:interface` custom section, if any.
    pub interface: Option<Vec<u8>>,
    /// Its imports and exports with their types, one line each, sorted: what machine code
    /// claiming to be this module must offer too.
    pub shape: Vec<String>,
}

/// The name of a value type in a module's shape.
pub(crate) fn type_name(t: &ValType) -> &'static str {
    match t {
        ValType::I32 => "i32",
        ValType::I64 => "i64",
        ValType::F32 => "f32",
        ValType::F64 => "f64",
        ValType::V128 => "v128",
        ValType::Ref(_) => "ref",
    }
}

/// A function type in a module's shape.
pub(crate) fn shape_signature<'a>(
    params: impl IntoIterator<Item = &'a str>,
    results: impl IntoIterator<Item = &'a str>,
) -> String {
    let list = |v: Vec<&str>| v.join(",");
    format!(
        "({})->({})",
        list(params.into_iter().collect()),
        list(results.into_iter().collect())
    )
}

/// Why a module cannot be deployed.
#[derive(Clone, Debug, thiserror::Error, PartialEq, Eq)]
pub enum ValidationError {
    /// Larger than the chain allows.
    #[error("module is {size} bytes; the chain allows at most {max}")]
    TooLarge {
        /// Size.
        size: usize,
        /// Cap.
        max: usize,
    },
    /// Not valid wasm, or uses a feature the engine forbids (threads, SIMD, memory64, ...).
    #[error("invalid or forbidden wasm: {0}")]
    Invalid(String),
    /// Imports something other than a host function of the ABI.
    #[error("import {module}.{name} is not a host function of the ABI (module \"quorate\")")]
    UnknownImport {
        /// Import module.
        module: String,
        /// Import name.
        name: String,
    },
    /// Imports a host function with the wrong signature.
    #[error("import quorate.{name} has type {got}; the ABI's is {expected}")]
    ImportSignature {
        /// Function.
        name: String,
        /// ABI signature.
        expected: String,
        /// Module's signature.
        got: String,
    },
    /// Exports no linear memory named `memory`.
    #[error("module must export its linear memory as \"memory\"")]
    NoMemory,
    /// Asks for more initial memory than an instance may have.
    #[error("initial memory {bytes} bytes exceeds the cap {max}")]
    MemoryTooLarge {
        /// Initial bytes.
        bytes: u64,
        /// Cap.
        max: u64,
    },
    /// Asks for a larger initial table than an instance may have.
    #[error("initial table of {elements} elements exceeds the cap {max}")]
    TableTooLarge {
        /// Initial elements.
        elements: u64,
        /// Cap.
        max: u64,
    },
    /// `init` exists but does not take and return nothing.
    #[error("export \"init\" must be a function taking and returning nothing")]
    BadInit,
    /// Machine code sent with the bytecode does not load into this engine, or offers other
    /// imports or exports than the bytecode.
    #[error("machine code: {0}")]
    MachineCode(String),
}

fn signature(params: &[ValType], results: &[ValType]) -> String {
    let list = |v: &[ValType]| {
        v.iter()
            .map(|t| t.to_string())
            .collect::<Vec<_>>()
            .join(", ")
    };
    format!("({}) -> ({})", list(params), list(results))
}

fn invalid(e: impl std::fmt::Display) -> ValidationError {
    ValidationError::Invalid(e.to_string())
}

/// Checks `bytes` against the ABI and `limits` (after `wasmtime::Module::validate` has checked
/// it against the engine's features) and lists what it offers.
pub fn inspect(
    bytes: &[u8],
    limits: &Limits,
    level: AbiLevel,
) -> Result<ModuleInfo, ValidationError> {
    if bytes.len() > limits.max_code_bytes {
        return Err(ValidationError::TooLarge {
            size: bytes.len(),
            max: limits.max_code_bytes,
        });
    }
    let mut types: Vec<FuncType> = Vec::new();
    // Type index of every function: imported ones first, then defined ones.
    let mut func_types: Vec<u32> = Vec::new();
    let mut exports: Vec<(String, ExternalKind, u32)> = Vec::new();
    let mut imports_shape: Vec<String> = Vec::new();
    let mut interface = None;
    for payload in Parser::new(0).parse_all(bytes) {
        match payload.map_err(invalid)? {
            Payload::TypeSection(r) => {
                for t in r.into_iter_err_on_gc_types() {
                    types.push(t.map_err(invalid)?);
                }
            }
            Payload::ImportSection(r) => {
                for import in r {
                    let import = import.map_err(invalid)?;
                    let unknown = || ValidationError::UnknownImport {
                        module: import.module.to_owned(),
                        name: import.name.to_owned(),
                    };
                    let TypeRef::Func(type_index) = import.ty else {
                        return Err(unknown());
                    };
                    if import.module != IMPORT_MODULE {
                        return Err(unknown());
                    }
                    let (params, results) =
                        host_signature(import.name, level).ok_or_else(unknown)?;
                    let ty = types
                        .get(type_index as usize)
                        .ok_or_else(|| invalid("import refers to a missing type"))?;
                    if ty.params() != params || ty.results() != results {
                        return Err(ValidationError::ImportSignature {
                            name: import.name.to_owned(),
                            expected: signature(params, results),
                            got: signature(ty.params(), ty.results()),
                        });
                    }
                    imports_shape.push(format!(
                        "import {}.{} func {}",
                        import.module,
                        import.name,
                        shape_signature(
                            ty.params().iter().map(type_name),
                            ty.results().iter().map(type_name)
                        )
                    ));
                    func_types.push(type_index);
                }
            }
            Payload::FunctionSection(r) => {
                for f in r {
                    func_types.push(f.map_err(invalid)?);
                }
            }
            Payload::MemorySection(r) => {
                for m in r {
                    let m = m.map_err(invalid)?;
                    let page = m.page_size_log2.map_or(PAGE, |log| 1u64 << log);
                    let bytes = m.initial.saturating_mul(page);
                    let max = limits.max_memory_bytes as u64;
                    if bytes > max {
                        return Err(ValidationError::MemoryTooLarge { bytes, max });
                    }
                }
            }
            Payload::TableSection(r) => {
                for t in r {
                    let t = t.map_err(invalid)?;
                    let max = limits.max_table_elements as u64;
                    if t.ty.initial > max {
                        return Err(ValidationError::TableTooLarge {
                            elements: t.ty.initial,
                            max,
                        });
                    }
                }
            }
            Payload::ExportSection(r) => {
                for e in r {
                    let e = e.map_err(invalid)?;
                    exports.push((e.name.to_owned(), e.kind, e.index));
                }
            }
            Payload::CustomSection(r) if r.name() == INTERFACE_SECTION => {
                interface = Some(r.data().to_vec());
            }
            _ => {}
        }
    }
    if !exports
        .iter()
        .any(|(name, kind, _)| name == "memory" && *kind == ExternalKind::Memory)
    {
        return Err(ValidationError::NoMemory);
    }
    let mut methods = Vec::new();
    let mut has_init = false;
    let fn_shape = |ty: &FuncType| {
        shape_signature(
            ty.params().iter().map(type_name),
            ty.results().iter().map(type_name),
        )
    };
    let mut shape = imports_shape;
    for (name, kind, index) in &exports {
        if *kind != ExternalKind::Func {
            let kind = match kind {
                ExternalKind::Memory => "memory",
                ExternalKind::Table => "table",
                ExternalKind::Global => "global",
                _ => "other",
            };
            shape.push(format!("export {name} {kind}"));
            continue;
        }
        let ty = func_types
            .get(*index as usize)
            .and_then(|t| types.get(*t as usize))
            .ok_or_else(|| invalid("export refers to a missing function"))?;
        shape.push(format!("export {name} func {}", fn_shape(ty)));
        let nullary = ty.params().is_empty() && ty.results().is_empty();
        if name == INIT_METHOD {
            if !nullary {
                return Err(ValidationError::BadInit);
            }
            has_init = true;
        } else if nullary && name.len() <= limits.max_method_bytes {
            methods.push(name.clone());
        }
    }
    methods.sort();
    shape.sort();
    Ok(ModuleInfo {
        methods,
        has_init,
        interface,
        shape,
    })
}
