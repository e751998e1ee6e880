//! `quorate contract …`, `quorate events` and `quorate admin …`: create, build, deploy, call
//! and query contracts, follow their events, and administer trusted deployers.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Command as Process, ExitCode, Stdio};

use anyhow::{bail, Context};
use bytes::Bytes;
use prost::Message;
use quorate_client::{Checkpoint, EventFilter, Node};
use quorate_genesis::KeyFile;
use quorate_proto::crypto::{Address, Hash32};
use quorate_proto::tx::{body_for, sign};
use quorate_proto::v1::tx_body::Payload;
use quorate_proto::v1::{
    admin, Admin, Call, Deploy, ExecStatus, QueryRequest, ReplaceValidator, SetTrustedDeployer,
    TxStatusResponse, ValidatorEntry,
};
use serde_json::{json, Value};

use super::client::{
    connect, exit_code, report_unfinished, runtime, signing_context, submit, Submitted,
};
use super::interface::Interface;
use super::output;
use super::{AdminCommand, ClientOpts, ContractCommand, EventsArgs, SignOpts};

/// The template crate `contract new` copies (the counter in `contracts/template`).
const TEMPLATE_CARGO: &str = include_str!("../../contracts/template/Cargo.toml");
const TEMPLATE_BUILD: &str = include_str!("../../contracts/template/build.rs");
const TEMPLATE_PROTO: &str = include_str!("../../contracts/template/proto/contract.proto");
const TEMPLATE_LIB: &str = include_str!("../../contracts/template/src/lib.rs");
/// The SDK of the source tree this binary was built from.
const SDK_DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../contracts/sdk");

pub(super) fn run(cmd: ContractCommand) -> anyhow::Result<ExitCode> {
    match cmd {
        ContractCommand::New { name, dir, sdk } => new(&name, dir, sdk),
        ContractCommand::Build { dir, json } => build(&dir, json).map(|_| ExitCode::SUCCESS),
        ContractCommand::Deploy {
            wasm,
            init,
            init_hex,
            precompiled,
            sign,
        } => runtime()?.block_on(deploy(&wasm, init, init_hex, precompiled, sign)),
        ContractCommand::Call {
            contract,
            method,
            args,
            args_hex,
            value,
            sign,
        } => runtime()?.block_on(async {
            call(parse_addr(&contract)?, &method, args, args_hex, value, sign).await
        }),
        ContractCommand::Query {
            contract,
            method,
            args,
            args_hex,
            caller,
            fuel_limit,
            opts,
        } => runtime()?.block_on(async {
            let caller = caller.as_deref().map(parse_addr).transpose()?;
            query(
                parse_addr(&contract)?,
                &method,
                args,
                args_hex,
                caller,
                fuel_limit,
                &opts,
            )
            .await
        }),
        ContractCommand::Info { contract, opts } => runtime()?.block_on(info(&contract, &opts)),
    }
}

fn snake(name: &str) -> String {
    name.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '_'
            }
        })
        .collect()
}

/// `contract new`: a new crate from the template.
fn new(name: &str, dir: Option<PathBuf>, sdk: Option<PathBuf>) -> anyhow::Result<ExitCode> {
    let valid = !name.is_empty()
        && name.chars().next().is_some_and(|c| c.is_ascii_alphabetic())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    if !valid {
        bail!("contract name {name:?} must start with a letter and hold only letters, digits, - and _");
    }
    let dir = dir.unwrap_or_else(|| PathBuf::from(name));
    if dir.exists() {
        bail!("{} already exists", dir.display());
    }
    let sdk = sdk.unwrap_or_else(|| PathBuf::from(SDK_DIR));
    let sdk = sdk.canonicalize().with_context(|| {
        format!(
            "the SDK is not at {}: pass --sdk <path to contracts/sdk>",
            sdk.display()
        )
    })?;
    let package = format!("{}.v1", snake(name));
    let cargo = TEMPLATE_CARGO
        .replace("name = \"counter\"", &format!("name = \"{name}\""))
        .replace(
            "path = \"../sdk\"",
            &format!("path = {:?}", sdk.display().to_string()),
        )
        + "\n# A workspace of its own, with the release profile contracts want.\n[workspace]\n\n\
           [profile.release]\nopt-level = \"z\"\nlto = true\ncodegen-units = 1\npanic = \"abort\"\nstrip = true\n";
    let files: [(&str, String); 5] = [
        ("Cargo.toml", cargo),
        ("build.rs", TEMPLATE_BUILD.to_owned()),
        (
            "proto/contract.proto",
            TEMPLATE_PROTO.replace("counter.v1", &package),
        ),
        ("src/lib.rs", TEMPLATE_LIB.replace("counter.v1", &package)),
        (".gitignore", "/target\n".to_owned()),
    ];
    for (path, text) in files {
        let p = dir.join(path);
        if let Some(parent) = p.parent() {
            std::fs::create_dir_all(parent)
                .with_context(|| format!("creating {}", parent.display()))?;
        }
        std::fs::write(&p, text).with_context(|| format!("writing {}", p.display()))?;
    }
    println!(
        "created contract {name} in {}\n  edit proto/contract.proto and src/lib.rs, then:\n  quorate contract build {}\n  quorate contract deploy <wasm> --from <key file>",
        dir.display(),
        dir.display()
    );
    Ok(ExitCode::SUCCESS)
}

/// Ensures the wasm32 target is installed (rustup), once.
fn ensure_wasm_target() -> anyhow::Result<()> {
    let libdir = Process::new("rustc")
        .args([
            "--print",
            "target-libdir",
            "--target",
            "wasm32-unknown-unknown",
        ])
        .output()
        .context("running rustc (is Rust installed?)")?;
    let dir = String::from_utf8_lossy(&libdir.stdout).trim().to_owned();
    if libdir.status.success() && Path::new(&dir).exists() {
        return Ok(());
    }
    eprintln!("installing the wasm32-unknown-unknown target with rustup");
    let status = Process::new("rustup")
        .args(["target", "add", "wasm32-unknown-unknown"])
        .status()
        .context("running rustup")?;
    if !status.success() {
        bail!("rustup target add wasm32-unknown-unknown failed");
    }
    Ok(())
}

/// `contract build`: cargo for wasm32, then the module's checks; returns the wasm path.
pub(super) fn build(dir: &Path, json_out: bool) -> anyhow::Result<PathBuf> {
    let manifest = dir.join("Cargo.toml");
    if !manifest.exists() {
        bail!("{} has no Cargo.toml", dir.display());
    }
    ensure_wasm_target()?;
    let out = Process::new("cargo")
        .args(["build", "--release", "--target", "wasm32-unknown-unknown"])
        .args([
            "--message-format",
            "json-render-diagnostics",
            "--manifest-path",
        ])
        .arg(&manifest)
        .stderr(Stdio::inherit())
        .output()
        .context("running cargo")?;
    if !out.status.success() {
        bail!("cargo build failed");
    }
    let wasm = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|m| m["reason"] == "compiler-artifact")
        .flat_map(|m| {
            m["filenames"]
                .as_array()
                .cloned()
                .unwrap_or_default()
                .into_iter()
                .filter_map(|f| f.as_str().map(PathBuf::from))
                .collect::<Vec<_>>()
        })
        .rfind(|f| f.extension().is_some_and(|e| e == "wasm"))
        .context("cargo built no .wasm (is the crate a cdylib?)")?;
    let bytes = std::fs::read(&wasm).with_context(|| format!("reading {}", wasm.display()))?;
    let vm = local_vm()?;
    let info = vm
        .validate(&bytes)
        .map_err(|e| anyhow::anyhow!("{} would be refused: {e}", wasm.display()))?;
    let hash = Hash32::of(&bytes);
    if json_out {
        println!(
            "{}",
            json!({"wasm": wasm.display().to_string(), "bytes": bytes.len(), "code_hash": hash.to_hex(),
                   "methods": info.methods, "init": info.has_init, "interface": info.interface.is_some()})
        );
    } else {
        println!(
            "built {}\n  size      {} bytes\n  code hash {}\n  methods   {}{}\n  interface {}",
            wasm.display(),
            bytes.len(),
            hash,
            info.methods.join(", "),
            if info.has_init { " (and init)" } else { "" },
            if info.interface.is_some() {
                "embedded"
            } else {
                "none (arguments as --args-hex)"
            }
        );
    }
    Ok(wasm)
}

/// An engine configured like a default chain's, for checks and precompilation.
fn local_vm() -> anyhow::Result<quorate_vm::Vm<quorate_node::execution::WorldState>> {
    Ok(quorate_vm::Vm::new(quorate_node::contracts::vm_config(
        &quorate_genesis::ChainParams::default(),
    ))?)
}

fn args_bytes(
    iface: Option<&Interface>,
    method: &str,
    json_args: Option<String>,
    hex_args: Option<String>,
) -> anyhow::Result<Vec<u8>> {
    match (json_args, hex_args) {
        (Some(_), Some(_)) => bail!("give arguments as JSON or as --args-hex, not both"),
        (None, Some(h)) => hex::decode(h.trim_start_matches("0x")).context("--args-hex is not hex"),
        (j, None) => match iface {
            Some(i) => i.encode_args(method, j.as_deref().unwrap_or("{}")),
            None if j.is_some() => bail!(
                "the contract embeds no interface: give arguments as --args-hex (encoded bytes)"
            ),
            None => Ok(Vec::new()),
        },
    }
}

async fn interface_of(node: &Node, contract: &Address) -> anyhow::Result<Option<Interface>> {
    let info = node.contract(contract).await?;
    if info.interface.is_empty() {
        return Ok(None);
    }
    Interface::decode(&info.interface).map(Some)
}

/// Signs `payload` with the key of `sign` (and its co-signers, for its account), then saves
/// it (`--save`) or submits it and waits unless told not to.
pub(super) async fn send(sign_opts: &SignOpts, payload: Payload) -> anyhow::Result<Submitted> {
    let key = KeyFile::load(&sign_opts.from)?;
    let key_set = sign_opts.multi.load_key_set()?;
    let account = sign_opts.multi.account(&key, key_set.as_ref())?;
    let node = connect(&sign_opts.opts.node).await?;
    let (status, next) = signing_context(&node, &account).await?;
    let nonce = sign_opts.nonce.unwrap_or(next);
    let mut body = body_for(
        &status.chain_id,
        account,
        nonce,
        sign_opts.fuel_limit,
        payload,
    );
    body.key_set = key_set;
    let mut tx = sign(&body, &key);
    sign_opts.multi.cosign(&mut tx)?;
    if let Some(path) = &sign_opts.save {
        std::fs::write(path, hex::encode(tx.encode_to_vec()) + "\n")
            .with_context(|| format!("writing {}", path.display()))?;
        let hash = quorate_proto::tx::tx_hash(&tx.body).to_hex();
        return Ok(Submitted::Saved(hash, path.clone()));
    }
    submit(&node, tx, !sign_opts.no_wait).await
}

/// Signs and sends `payload` (see [`send`]) and reports the outcome with the exit code.
pub(super) fn send_and_report(sign_opts: SignOpts, payload: Payload) -> anyhow::Result<ExitCode> {
    runtime()?.block_on(async move {
        let submitted = send(&sign_opts, payload).await?;
        if let Some(code) = report_unfinished(&submitted, &sign_opts.opts) {
            return Ok(code);
        }
        let Submitted::Status(status) = submitted else {
            unreachable!("report_unfinished handles the others")
        };
        Ok(report(&status, &sign_opts.opts, &[], None, None))
    })
}

/// Prints a committed status, decoding the return data of `method` and the events of
/// `contract` with its interface; returns the exit code.
fn report(
    status: &TxStatusResponse,
    opts: &ClientOpts,
    contract: &[u8],
    iface: Option<&Interface>,
    method: Option<&str>,
) -> ExitCode {
    let receipt = status.receipt.clone().unwrap_or_default();
    let decoded_return = match (iface, method) {
        (Some(i), Some(m)) if !receipt.return_data.is_empty() => {
            i.decode_result(m, &receipt.return_data).ok()
        }
        _ => None,
    };
    let decoded_events: Vec<Option<Value>> = receipt
        .events
        .iter()
        .map(|e| {
            iface
                .filter(|_| e.contract.as_ref() == contract)
                .and_then(|i| i.decode_event(&e.kind, &e.data))
        })
        .collect();
    if opts.json {
        let mut v = output::tx_status(status);
        if let Some(r) = decoded_return {
            v["receipt"]["return"] = r;
        }
        for (i, d) in decoded_events.into_iter().enumerate() {
            if let Some(d) = d {
                v["receipt"]["events"][i]["decoded"] = d;
            }
        }
        println!("{v}");
    } else {
        // Raw hex only for what the interface does not decode.
        let mut raw = status.clone();
        if let Some(r) = raw.receipt.as_mut() {
            if decoded_return.is_some() {
                r.return_data = Bytes::new();
            }
            let mut decoded = decoded_events.iter().map(Option::is_some);
            r.events.retain(|_| !decoded.next().unwrap_or(false));
        }
        println!("{}", output::tx_status_text(&raw));
        if let Some(r) = &decoded_return {
            println!("  return   {r}");
        }
        for (e, d) in receipt.events.iter().zip(decoded_events) {
            match d {
                Some(d) if Some(&d) == decoded_return.as_ref() => {
                    println!("  event    {} (the value returned)", e.kind);
                }
                Some(d) => println!("  event    {} {d}", e.kind),
                None => {}
            }
        }
    }
    exit_code(status)
}

async fn deploy(
    wasm_path: &Path,
    init: Option<String>,
    init_hex: Option<String>,
    precompiled: bool,
    sign_opts: SignOpts,
) -> anyhow::Result<ExitCode> {
    let code =
        std::fs::read(wasm_path).with_context(|| format!("reading {}", wasm_path.display()))?;
    let vm = local_vm()?;
    let info = vm
        .validate(&code)
        .map_err(|e| anyhow::anyhow!("{} would be refused: {e}", wasm_path.display()))?;
    let iface = info
        .interface
        .as_deref()
        .map(Interface::decode)
        .transpose()?;
    let init_args = if info.has_init {
        args_bytes(iface.as_ref(), quorate_vm::INIT_METHOD, init, init_hex)?
    } else if init.is_some() || init_hex.is_some() {
        bail!("the contract has no init method to take arguments");
    } else {
        Vec::new()
    };
    let (machine_code, engine_fingerprint) = if precompiled {
        let node = connect(&sign_opts.opts.node).await?;
        let key = KeyFile::load(&sign_opts.from)?;
        let (status, _) = signing_context(&node, &key.address()).await?;
        if status.engine_fingerprint.as_ref() != vm.fingerprint().0 {
            bail!(
                "this binary's contract engine ({}) differs from the node's ({}): deploy without --precompiled, or precompile with the node's release",
                vm.fingerprint(),
                hex::encode(&status.engine_fingerprint)
            );
        }
        let mc = vm
            .precompile(&code)
            .map_err(|e| anyhow::anyhow!("precompiling: {e}"))?;
        (Bytes::from(mc), Bytes::copy_from_slice(&vm.fingerprint().0))
    } else {
        (Bytes::new(), Bytes::new())
    };
    let payload = Payload::Deploy(Deploy {
        code: Bytes::from(code),
        machine_code,
        engine_fingerprint,
        init_args: Bytes::from(init_args),
    });
    let submitted = send(&sign_opts, payload).await?;
    if let Some(code) = report_unfinished(&submitted, &sign_opts.opts) {
        return Ok(code);
    }
    let Submitted::Status(status) = submitted else {
        unreachable!("report_unfinished handles the others")
    };
    let address = status
        .receipt
        .as_ref()
        .map(|r| r.contract_address.to_vec())
        .unwrap_or_default();
    let init = info.has_init.then_some(quorate_vm::INIT_METHOD);
    Ok(report(
        &status,
        &sign_opts.opts,
        &address,
        iface.as_ref(),
        init,
    ))
}

/// Calls `method` of the contract at `addr` in a transaction and reports the outcome.
pub(super) async fn call(
    addr: Address,
    method: &str,
    json_args: Option<String>,
    hex_args: Option<String>,
    value: u64,
    sign_opts: SignOpts,
) -> anyhow::Result<ExitCode> {
    let iface = interface_of(&connect(&sign_opts.opts.node).await?, &addr).await?;
    let args = args_bytes(iface.as_ref(), method, json_args, hex_args)?;
    let payload = Payload::Call(Call {
        contract: Bytes::copy_from_slice(&addr.0),
        method: method.to_owned(),
        args: Bytes::from(args),
        value,
    });
    let submitted = send(&sign_opts, payload).await?;
    if let Some(code) = report_unfinished(&submitted, &sign_opts.opts) {
        return Ok(code);
    }
    let Submitted::Status(status) = submitted else {
        unreachable!("report_unfinished handles the others")
    };
    Ok(report(
        &status,
        &sign_opts.opts,
        &addr.0,
        iface.as_ref(),
        Some(method),
    ))
}

/// Runs `method` of the contract at `addr` read-only and prints its result.
pub(super) async fn query(
    addr: Address,
    method: &str,
    json_args: Option<String>,
    hex_args: Option<String>,
    caller: Option<Address>,
    fuel_limit: Option<u64>,
    opts: &ClientOpts,
) -> anyhow::Result<ExitCode> {
    let caller = caller.unwrap_or_default();
    let node = connect(&opts.node).await?;
    let iface = interface_of(&node, &addr).await?;
    let args = args_bytes(iface.as_ref(), method, json_args, hex_args)?;
    let r = node
        .query_answer(QueryRequest {
            contract: Bytes::copy_from_slice(&addr.0),
            method: method.to_owned(),
            args: Bytes::from(args),
            caller: Bytes::copy_from_slice(&caller.0),
            fuel_limit: fuel_limit.unwrap_or(0),
        })
        .await?;
    let ok = r.status == ExecStatus::Success as i32;
    let decoded = iface
        .as_ref()
        .filter(|_| ok)
        .and_then(|i| i.decode_result(method, &r.return_data).ok());
    if opts.json {
        println!(
            "{}",
            json!({"status": output::exec_status(r.status), "return": decoded,
                   "return_data": hex::encode(&r.return_data), "error": r.error,
                   "fuel_used": r.fuel_used, "height": r.height})
        );
    } else if ok {
        match decoded {
            Some(v) => println!("{v}"),
            None => println!("0x{}", hex::encode(&r.return_data)),
        }
        eprintln!("(height {}, fuel {})", r.height, r.fuel_used);
    } else {
        println!(
            "query failed: {} {} (height {}, fuel {})",
            output::exec_status(r.status),
            r.error,
            r.height,
            r.fuel_used
        );
    }
    Ok(if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(3)
    })
}

async fn info(contract: &str, opts: &ClientOpts) -> anyhow::Result<ExitCode> {
    let addr = Address::from_hex(contract).with_context(|| format!("contract {contract:?}"))?;
    let i = connect(&opts.node).await?.contract(&addr).await?;
    if opts.json {
        println!(
            "{}",
            json!({"address": hex::encode(&i.address), "code_hash": hex::encode(&i.code_hash),
                   "deployer": hex::encode(&i.deployer), "deployed_height": i.deployed_height,
                   "methods": i.methods, "code_size": i.code_size, "balance": i.balance,
                   "interface": !i.interface.is_empty(), "version": i.version,
                   "upgraded_at": (i.upgraded_at != 0).then_some(i.upgraded_at)})
        );
    } else {
        println!(
            "contract {}\n  code hash {}\n  code size {} bytes\n  deployer  {}\n  deployed  at height {}{}\n  balance   {}\n  methods   {}\n  interface {}",
            hex::encode(&i.address),
            hex::encode(&i.code_hash),
            i.code_size,
            hex::encode(&i.deployer),
            i.deployed_height,
            if i.version == 0 {
                String::new()
            } else {
                format!("\n  version   {} (code in force from height {})", i.version, i.upgraded_at)
            },
            i.balance,
            i.methods.join(", "),
            if i.interface.is_empty() { "none" } else { "embedded" }
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// `quorate events`: follows contract events (filtered), printing each as it commits.
pub(super) fn events(args: EventsArgs) -> anyhow::Result<ExitCode> {
    runtime()?.block_on(async move {
        let contract = args
            .contract
            .as_deref()
            .map(|c| Address::from_hex(c).with_context(|| format!("contract {c:?}")))
            .transpose()?;
        let node = connect(&args.opts.node).await?;
        let from_height = match args.from_height {
            0 => node.node_status().await?.height + 1,
            h => h,
        };
        // Opened again from the last event printed if the connection breaks or the node
        // restarts: no event is skipped or printed twice.
        let mut stream = node.events(
            EventFilter {
                contract,
                kind: args.kind.clone(),
            },
            Checkpoint::before_height(from_height),
        );
        let mut interfaces: HashMap<Vec<u8>, Option<Interface>> = HashMap::new();
        let mut seen = 0usize;
        loop {
            let item = stream.next().await?;
            let Some(e) = item.event else { continue };
            if !interfaces.contains_key(e.contract.as_ref()) {
                let iface = match Address::from_slice(&e.contract) {
                    Ok(a) => interface_of(&node, &a).await.ok().flatten(),
                    Err(_) => None,
                };
                interfaces.insert(e.contract.to_vec(), iface);
            }
            let decoded = interfaces
                .get(e.contract.as_ref())
                .and_then(Option::as_ref)
                .and_then(|i| i.decode_event(&e.kind, &e.data));
            if args.opts.json {
                println!(
                    "{}",
                    json!({"height": item.height, "tx_hash": hex::encode(&item.tx_hash),
                           "tx_index": item.tx_index, "event_index": item.event_index,
                           "contract": hex::encode(&e.contract), "kind": e.kind,
                           "data": hex::encode(&e.data), "decoded": decoded})
                );
            } else {
                println!(
                    "height {} tx {} #{}: {} {} {}",
                    item.height,
                    hex::encode(&item.tx_hash),
                    item.event_index,
                    hex::encode(&e.contract),
                    e.kind,
                    decoded
                        .map_or_else(|| format!("0x{}", hex::encode(&e.data)), |d| d.to_string())
                );
            }
            seen += 1;
            if args.limit.is_some_and(|l| seen >= l) {
                break;
            }
        }
        Ok(ExitCode::SUCCESS)
    })
}

/// `quorate admin …`.
pub(super) fn admin(cmd: AdminCommand) -> anyhow::Result<ExitCode> {
    let (payload, sign_opts) = admin_payload(cmd)?;
    send_and_report(sign_opts, payload)
}

/// The administrative action of `cmd` as a payload, with the signing options.
pub(super) fn admin_payload(cmd: AdminCommand) -> anyhow::Result<(Payload, SignOpts)> {
    let (action, sign_opts) = match cmd {
        AdminCommand::Trust { account, sign } => (
            admin::Action::SetTrustedDeployer(SetTrustedDeployer {
                account: Bytes::copy_from_slice(&parse_addr(&account)?.0),
                trusted: true,
            }),
            sign,
        ),
        AdminCommand::Untrust { account, sign } => (
            admin::Action::SetTrustedDeployer(SetTrustedDeployer {
                account: Bytes::copy_from_slice(&parse_addr(&account)?.0),
                trusted: false,
            }),
            sign,
        ),
        AdminCommand::SetAdmin { account, sign } => (
            admin::Action::SetAdmin(Bytes::copy_from_slice(&parse_addr(&account)?.0)),
            sign,
        ),
        AdminCommand::AddValidator {
            validator,
            name,
            sign,
        } => (
            admin::Action::AddValidator(ValidatorEntry {
                public_key: Bytes::copy_from_slice(&super::validators::parse_key(&validator)?.0),
                name,
            }),
            sign,
        ),
        AdminCommand::RemoveValidator { validator, sign } => (
            admin::Action::RemoveValidator(Bytes::copy_from_slice(
                &super::validators::parse_key(&validator)?.0,
            )),
            sign,
        ),
        AdminCommand::ReplaceValidator {
            old,
            new,
            name,
            sign,
        } => (
            admin::Action::ReplaceValidator(ReplaceValidator {
                old_key: Bytes::copy_from_slice(&super::validators::parse_key(&old)?.0),
                new: Some(ValidatorEntry {
                    public_key: Bytes::copy_from_slice(&super::validators::parse_key(&new)?.0),
                    name,
                }),
            }),
            sign,
        ),
        AdminCommand::UpgradeContract {
            name, wasm, sign, ..
        } => {
            let code = match wasm {
                None => Vec::new(), // --cancel
                Some(wasm) => {
                    let code = std::fs::read(&wasm)
                        .with_context(|| format!("reading {}", wasm.display()))?;
                    // The same checks a validator makes, before paying for a transaction.
                    local_vm()?
                        .validate(&code)
                        .map_err(|e| anyhow::anyhow!("{} would be refused: {e}", wasm.display()))?;
                    code
                }
            };
            (
                admin::Action::UpgradeContract(quorate_proto::v1::UpgradeContract {
                    name,
                    code: code.into(),
                }),
                sign,
            )
        }
        AdminCommand::ActivateProtocol {
            version,
            height,
            sign,
            ..
        } => (
            admin::Action::ActivateProtocol(quorate_proto::v1::ActivateProtocol {
                version,
                // --cancel
                height: height.unwrap_or(0),
            }),
            sign,
        ),
        AdminCommand::SetParams { values, sign } => (
            admin::Action::SetParams(quorate_proto::v1::ParamChanges {
                values: values
                    .iter()
                    .map(|v| {
                        let (name, value) = v
                            .split_once('=')
                            .with_context(|| format!("{v:?}: expected NAME=VALUE"))?;
                        if !quorate_genesis::GOVERNED_PARAMS.contains(&name) {
                            bail!(
                                "{name:?} is not a parameter governance changes (it changes: {})",
                                quorate_genesis::GOVERNED_PARAMS.join(", ")
                            );
                        }
                        Ok(quorate_proto::v1::ParamValue {
                            name: name.to_owned(),
                            value: value
                                .parse()
                                .with_context(|| format!("{v:?}: VALUE is a number"))?,
                        })
                    })
                    .collect::<anyhow::Result<_>>()?,
            }),
            sign,
        ),
        AdminCommand::SetPolicy {
            members,
            governance,
            thresholds,
            proposal_lifetime,
            sign,
        } => (
            admin::Action::SetPolicy(super::governance::policy_from_args(
                &members,
                governance,
                &thresholds,
                proposal_lifetime,
            )?),
            sign,
        ),
    };
    Ok((
        Payload::Admin(Admin {
            action: Some(action),
        }),
        sign_opts,
    ))
}

/// An address from 40 hex digits, with the text in the error.
pub(super) fn parse_addr(s: &str) -> anyhow::Result<Address> {
    Address::from_hex(s).with_context(|| format!("address {s:?}"))
}
