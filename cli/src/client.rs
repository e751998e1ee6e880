//! Client commands: talk to a node over gRPC.
//!
//! Exit codes: 0 done; 1 error (unreachable node, timeout, bad input); 2 the node refused the
//! transaction; 3 the transaction committed but its execution failed.

use std::path::Path;
use std::process::ExitCode;

use anyhow::{bail, Context};
use bytes::Bytes;
use prost::Message;
use quorate_client::{ClientError, Node};
use quorate_genesis::KeyFile;
use quorate_proto::crypto::{Address, Hash32};
use quorate_proto::tx::{sign, transfer_body, tx_hash};
use quorate_proto::v1::{
    ExecStatus, NodeStatus, Rejection, Transaction, TxState, TxStatusResponse,
};
use serde_json::json;

use super::output;
use super::{ClientOpts, TransferArgs, TxCommand};

/// Exit code when the node refused a transaction.
const EXIT_REFUSED: u8 = 2;
/// Exit code when a transaction committed with a failed execution.
const EXIT_EXEC_FAILED: u8 = 3;
/// How long `--wait` waits for an outcome.
const WAIT: std::time::Duration = std::time::Duration::from_secs(60);

pub(super) fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")
}

/// TLS of this process's connections (set once from the command line).
static TLS: std::sync::OnceLock<super::TlsOpts> = std::sync::OnceLock::new();

/// Sets the TLS options every later connection uses.
pub(super) fn set_tls(opts: super::TlsOpts) {
    let _ = TLS.set(opts);
}

/// The node at `url`, reached with the TLS options of the command line (a failure names what
/// failed and how to fix it).
pub(super) async fn connect(url: &str) -> anyhow::Result<Node> {
    let tls = match TLS.get().filter(|o| o.ca.is_some() || o.cert.is_some()) {
        None => None,
        Some(opts) => {
            let Some(ca) = &opts.ca else {
                bail!("--cert needs --ca: the CA the node's certificate is signed by");
            };
            Some(quorate_client::Tls {
                ca: ca.clone(),
                identity: opts.cert.clone().zip(opts.key.clone()),
            })
        }
    };
    Ok(Node::connect(url, tls.as_ref()).await?)
}

pub(super) fn status_err(what: &str, s: tonic::Status) -> anyhow::Error {
    anyhow::anyhow!("{what}: {} ({:?})", s.message(), s.code())
}

pub(super) fn tx(cmd: TxCommand) -> anyhow::Result<ExitCode> {
    runtime()?.block_on(async move {
        match cmd {
            TxCommand::Transfer(args) => transfer(*args).await,
            TxCommand::Sign {
                file,
                add_signature,
                out,
                json,
            } => super::key_sets::sign_file(&file, &add_signature, out.as_deref(), json),
            TxCommand::Submit { file, wait, opts } => {
                let tx = read_tx_file(&file)?;
                let node = connect(&opts.node).await?;
                submit_and_report(&node, tx, wait, &opts).await
            }
            TxCommand::Status { hash, wait, opts } => {
                let hash = Hash32::from_hex(&hash).context("transaction hash")?;
                let node = connect(&opts.node).await?;
                let status = node.status(&hash).await?;
                // A hash the node does not know is answered at once (a typo, or a pruned
                // transaction), not waited for.
                if !wait || status.state == TxState::Unknown as i32 {
                    return Ok(report_status(&status, &opts));
                }
                let waited = wait_status(&node, &hash).await?;
                if let Some(code) = report_unfinished(&waited, &opts) {
                    return Ok(code);
                }
                let Submitted::Status(status) = waited else {
                    unreachable!("report_unfinished handles the others")
                };
                Ok(report_status(&status, &opts))
            }
        }
    })
}

async fn transfer(args: TransferArgs) -> anyhow::Result<ExitCode> {
    let key = KeyFile::load(&args.from)?;
    let to =
        Address::from_hex(&args.to).with_context(|| format!("recipient address {:?}", args.to))?;
    let memo = match args.memo_bytes {
        Some(n) => vec![b'x'; n],
        None => args.memo.into_bytes(),
    };
    let needs_node = args.chain_id.is_none()
        || args.nonce.is_none()
        || args.fuel_limit.is_none()
        || !args.save_only;
    let node = if needs_node {
        Some(connect(&args.opts.node).await?)
    } else {
        None
    };
    let (chain_id, transfer_fuel) = match (&node, args.chain_id.clone(), args.fuel_limit) {
        (_, Some(c), Some(f)) => (c, f),
        (Some(node), chain, fuel) => {
            let s = node.node_status().await?;
            let default_fuel = s.params.map_or(0, |p| p.transfer_fuel);
            (chain.unwrap_or(s.chain_id), fuel.unwrap_or(default_fuel))
        }
        (None, _, _) => bail!("--chain-id and --fuel-limit are needed without a node"),
    };
    let key_set = args.multi.load_key_set()?;
    let account = args.multi.account(&key, key_set.as_ref())?;
    let nonce = match (args.nonce, &node) {
        (Some(n), _) => n,
        (None, Some(node)) => node.account(&account).await?.next_nonce,
        (None, None) => bail!("--nonce is needed without a node"),
    };
    let mut body = transfer_body(&chain_id, &key, nonce, transfer_fuel, to, args.amount, memo);
    body.signer = Bytes::copy_from_slice(&account.0);
    body.key_set = key_set;
    let mut tx = sign(&body, &key);
    args.multi.cosign(&mut tx)?;
    if args.corrupt_signature {
        let mut sig = tx.signature.to_vec();
        sig[10] ^= 0x01;
        tx.signature = Bytes::from(sig);
    }
    if let Some(path) = &args.save {
        std::fs::write(path, hex::encode(tx.encode_to_vec()) + "\n")
            .with_context(|| format!("writing {}", path.display()))?;
    }
    if args.save_only {
        let hash = tx_hash(&tx.body);
        if args.opts.json {
            println!(
                "{}",
                json!({"tx_hash": hash.to_hex(), "nonce": nonce, "saved": args.save.map(|p| p.display().to_string())})
            );
        } else {
            println!("signed tx {hash} (nonce {nonce}) saved");
        }
        return Ok(ExitCode::SUCCESS);
    }
    let node = node.expect("connected unless save_only");
    submit_and_report(&node, tx, args.wait, &args.opts).await
}

pub(super) fn read_tx_file(path: &Path) -> anyhow::Result<Transaction> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    quorate_client::transaction::from_text(&text)
        .with_context(|| format!("{} is not a signed transaction", path.display()))
}

/// What became of a submitted transaction.
pub(super) enum Submitted {
    /// The node refused it.
    Refused {
        /// Hash (hex) or "(undecodable)".
        hash: String,
        /// Why.
        rejection: Rejection,
    },
    /// Accepted; not waited for.
    Pending(String),
    /// Its status after waiting.
    Status(Box<TxStatusResponse>),
    /// No outcome within [`WAIT`]: its last status (pending, or not known to this node yet)
    /// and why.
    TimedOut(Box<TxStatusResponse>, String),
    /// Signed and saved to a file (hash, path), not submitted.
    Saved(String, std::path::PathBuf),
}

/// Submits `tx` and, with `wait`, waits for its outcome. The node's answer is reported as
/// given: submitting a transaction the node holds already is refused (`DUPLICATE` while
/// pending, `NONCE_USED` once committed), which is what a replayed transaction gets.
pub(super) async fn submit(node: &Node, tx: Transaction, wait: bool) -> anyhow::Result<Submitted> {
    let hash = match node.submit_as_is(&tx).await {
        Ok(hash) => hash,
        Err(ClientError::Refused {
            hash,
            code,
            message,
        }) => {
            return Ok(Submitted::Refused {
                hash: hash.map_or_else(|| "(undecodable)".to_owned(), |h| h.to_hex()),
                rejection: Rejection {
                    code: code as i32,
                    message,
                },
            })
        }
        Err(e) => return Err(e.into()),
    };
    if !wait {
        return Ok(Submitted::Pending(hash.to_hex()));
    }
    wait_status(node, &hash).await
}

/// The outcome of the transaction `hash` as its status ([`Submitted::Status`]), waiting up to
/// [`WAIT`] for one; [`Submitted::TimedOut`] without one.
pub(super) async fn wait_status(node: &Node, hash: &Hash32) -> anyhow::Result<Submitted> {
    let status = match node.wait(hash, WAIT).await {
        Ok(outcome) => TxStatusResponse {
            tx_hash: Bytes::copy_from_slice(&hash.0),
            state: TxState::Committed as i32,
            height: outcome.height,
            index: outcome.index,
            receipt: Some(outcome.receipt),
            rejection: None,
            transaction: outcome.transaction,
        },
        // Refused or evicted: the node's status says which, and why.
        Err(ClientError::Refused { .. }) => node.status(hash).await?,
        Err(e @ ClientError::Unknown { .. }) => {
            let last = node.status(hash).await?;
            return Ok(Submitted::TimedOut(Box::new(last), e.to_string()));
        }
        Err(e) => return Err(e.into()),
    };
    Ok(Submitted::Status(Box::new(status)))
}

/// Prints a refusal or a pending submission; returns the exit code.
pub(super) fn report_unfinished(s: &Submitted, opts: &ClientOpts) -> Option<ExitCode> {
    match s {
        Submitted::Refused { hash, rejection } => {
            if opts.json {
                println!(
                    "{}",
                    json!({"tx_hash": hash, "state": "REJECTED", "rejection": output::rejection(rejection)})
                );
            } else {
                println!(
                    "tx {hash}: REFUSED {}: {}",
                    output::reject_code_name(rejection.code),
                    rejection.message
                );
            }
            Some(ExitCode::from(EXIT_REFUSED))
        }
        Submitted::Pending(hash) => {
            if opts.json {
                println!("{}", json!({"tx_hash": hash, "state": "PENDING"}));
            } else {
                println!("tx {hash}: accepted, pending");
            }
            Some(ExitCode::SUCCESS)
        }
        Submitted::Saved(hash, path) => {
            if opts.json {
                println!(
                    "{}",
                    json!({"tx_hash": hash, "saved": path.display().to_string()})
                );
            } else {
                println!("signed tx {hash} saved to {}", path.display());
            }
            Some(ExitCode::SUCCESS)
        }
        Submitted::TimedOut(status, why) => {
            if opts.json {
                let mut v = output::tx_status(status);
                v["timed_out"] = json!(why);
                println!("{v}");
            } else {
                println!("{}", output::tx_status_text(status));
            }
            eprintln!(
                "{why}: ask later with `quorate tx status {}`",
                hex::encode(&status.tx_hash)
            );
            Some(ExitCode::FAILURE)
        }
        Submitted::Status(_) => None,
    }
}

async fn submit_and_report(
    node: &Node,
    tx: Transaction,
    wait: bool,
    opts: &ClientOpts,
) -> anyhow::Result<ExitCode> {
    let submitted = submit(node, tx, wait).await?;
    if let Some(code) = report_unfinished(&submitted, opts) {
        return Ok(code);
    }
    let Submitted::Status(status) = submitted else {
        unreachable!("report_unfinished handles the others")
    };
    Ok(report_status(&status, opts))
}

/// The exit code for a transaction's status.
pub(super) fn exit_code(status: &TxStatusResponse) -> ExitCode {
    match TxState::try_from(status.state) {
        Ok(TxState::Committed) => match status.receipt.as_ref().map(|r| r.status) {
            Some(s) if s == ExecStatus::Success as i32 => ExitCode::SUCCESS,
            _ => ExitCode::from(EXIT_EXEC_FAILED),
        },
        Ok(TxState::Rejected | TxState::Evicted) => ExitCode::from(EXIT_REFUSED),
        Ok(TxState::Pending) => ExitCode::SUCCESS,
        _ => ExitCode::FAILURE,
    }
}

fn report_status(status: &TxStatusResponse, opts: &ClientOpts) -> ExitCode {
    if opts.json {
        println!("{}", output::tx_status(status));
    } else {
        println!("{}", output::tx_status_text(status));
    }
    exit_code(status)
}

/// The chain id, parameters and `key`'s next nonce, from the node.
pub(super) async fn signing_context(
    node: &Node,
    address: &Address,
) -> anyhow::Result<(NodeStatus, u64)> {
    let status = node.node_status().await?;
    let nonce = node.account(address).await?.next_nonce;
    Ok((status, nonce))
}

pub(super) fn account(address: &str, opts: &ClientOpts) -> anyhow::Result<ExitCode> {
    let addr = Address::from_hex(address).with_context(|| format!("address {address:?}"))?;
    runtime()?.block_on(async {
        let resp = connect(&opts.node).await?.account(&addr).await?;
        let a = resp.account.unwrap_or_default();
        if opts.json {
            let mut v = json!({"address": addr.to_hex(), "balance": a.balance, "nonce": a.nonce, "next_nonce": resp.next_nonce, "height": resp.height});
            if let Some(set) = &resp.key_set {
                v["key_set"] = super::key_sets::key_set_json(set);
            }
            println!("{v}");
        } else {
            println!("account {addr}\n  balance    {}\n  nonce      {}\n  next nonce {} (with pending)\n  at height  {}", a.balance, a.nonce, resp.next_nonce, resp.height);
            if let Some(set) = &resp.key_set {
                println!("  keys       {} (quorate account keys {addr})", set.keys.len());
            }
        }
        Ok(ExitCode::SUCCESS)
    })
}

pub(super) fn block(which: Option<&str>, txs: bool, opts: &ClientOpts) -> anyhow::Result<ExitCode> {
    /// A block by its height (0: the latest) or by its hash.
    enum Which {
        Height(u64),
        Hash(Hash32),
    }
    let which = match which {
        None | Some("latest") => Which::Height(0),
        Some(s) if s.len() == 64 || s.starts_with("0x") => {
            Which::Hash(Hash32::from_hex(s).context("block hash")?)
        }
        Some(s) => match s.parse() {
            Ok(0) => bail!("height 0 is genesis, which has no block: blocks start at 1"),
            Ok(h) => Which::Height(h),
            Err(_) => bail!("{s:?} is neither a height nor a block hash"),
        },
    };
    runtime()?.block_on(async {
        let node = connect(&opts.node).await?;
        let b = match which {
            Which::Height(h) => node.block(h, txs).await?,
            Which::Hash(h) => node.block_by_hash(&h, txs).await?,
        };
        if opts.json {
            println!("{}", output::block(&b));
        } else {
            println!("{}", output::block_text(&b));
        }
        Ok(ExitCode::SUCCESS)
    })
}

/// `quorate health`: the node's gRPC health (the standard `grpc.health.v1` service); exit code
/// 0 when SERVING, 1 otherwise, for probes (systemd, containers, load balancers).
pub(super) fn health(opts: &ClientOpts) -> anyhow::Result<ExitCode> {
    use tonic_health::pb::{health_check_response::ServingStatus, health_client::HealthClient};
    runtime()?.block_on(async {
        let resp = HealthClient::new(connect(&opts.node).await?.channel().clone())
            .check(tonic_health::pb::HealthCheckRequest {
                service: String::new(),
            })
            .await
            .map_err(|s| status_err("health", s))?
            .into_inner();
        let status = ServingStatus::try_from(resp.status).unwrap_or(ServingStatus::Unknown);
        if opts.json {
            println!("{}", serde_json::json!({ "status": status.as_str_name() }));
        } else {
            println!("{}", status.as_str_name());
        }
        Ok(if status == ServingStatus::Serving {
            ExitCode::SUCCESS
        } else {
            ExitCode::FAILURE
        })
    })
}

pub(super) fn status(opts: &ClientOpts) -> anyhow::Result<ExitCode> {
    runtime()?.block_on(async {
        let s = connect(&opts.node).await?.node_status().await?;
        if opts.json {
            println!("{}", output::status(&s));
        } else {
            println!("{}", output::status_text(&s));
        }
        Ok(ExitCode::SUCCESS)
    })
}
