//! `quorate gov …`: governance by the organisations (ADR 0016). Members propose administrative
//! actions and approve each other's proposals; anyone reads the policy and the records.

use std::process::ExitCode;

use anyhow::{bail, Context};
use clap::Subcommand;
use prost::Message;
use quorate_client::transaction::{approve, propose};
use quorate_genesis::{GenesisGovernance, GenesisMember};
use quorate_proto::governance::Kind;
use quorate_proto::v1::{
    tx_body::Payload, ExecStatus, GovernancePolicy, ProposalInfo, ProposalRecord, ProposalStatus,
    TxState,
};
use serde_json::{json, Value};

use super::client::Submitted;
use super::client::{connect, exit_code, report_unfinished, runtime};
use super::contract::{admin_payload, parse_addr, send};
use super::output;
use super::{AdminCommand, ClientOpts, SignOpts};

/// `quorate gov …`
#[derive(Subcommand, Debug)]
pub enum GovCommand {
    /// Who administers the chain (its policy, or its single admin) and its proposals, newest
    /// first.
    Show {
        /// Only proposals still open for approvals.
        #[arg(long)]
        open: bool,
        /// At most this many proposals (the node lists at most 100).
        #[arg(long, default_value_t = 20)]
        limit: u32,
        /// Proposals numbered below this (to page back).
        #[arg(long, default_value_t = 0)]
        before: u64,
        /// Client options.
        #[command(flatten)]
        opts: ClientOpts,
    },
    /// One proposal: its action, who proposed and approved it when, and what executing it did.
    Proposal {
        /// Its number.
        number: u64,
        /// Client options.
        #[command(flatten)]
        opts: ClientOpts,
    },
    /// Propose an administrative action to the members (members only): any `quorate admin`
    /// action, e.g. `quorate gov propose add-validator KEY --name org-e --from member.json`.
    /// It counts as your approval; the approval that reaches the threshold of its kind runs it.
    Propose {
        /// Heights it stays open for approvals (0: as long as the policy allows).
        #[arg(long, default_value_t = 0)]
        lifetime: u64,
        /// A note for the other members.
        #[arg(long, default_value = "")]
        memo: String,
        /// The action.
        #[command(subcommand)]
        action: AdminCommand,
    },
    /// Approve a proposal (members only).
    Approve {
        /// Its number.
        number: u64,
        /// Signing options (the member's key).
        #[command(flatten)]
        sign: SignOpts,
    },
}

/// Runs `quorate gov …`.
pub(super) fn run(cmd: GovCommand) -> anyhow::Result<ExitCode> {
    match cmd {
        GovCommand::Show {
            open,
            limit,
            before,
            opts,
        } => show(open, limit, before, &opts),
        GovCommand::Proposal { number, opts } => runtime()?.block_on(async {
            let info = connect(&opts.node).await?.proposal(number).await?;
            print_proposal(&info, opts.json);
            Ok(ExitCode::SUCCESS)
        }),
        GovCommand::Propose {
            lifetime,
            memo,
            action,
        } => {
            let (payload, sign) = admin_payload(action)?;
            step(sign, propose(payload, lifetime, &memo)?)
        }
        GovCommand::Approve { number, sign } => step(sign, approve(number)),
    }
}

/// Sends a proposal or an approval; once committed, prints the proposal as it then stands.
fn step(sign: SignOpts, payload: Payload) -> anyhow::Result<ExitCode> {
    runtime()?.block_on(async move {
        let submitted = send(&sign, payload).await?;
        if let Some(code) = report_unfinished(&submitted, &sign.opts) {
            return Ok(code);
        }
        let Submitted::Status(status) = submitted else {
            unreachable!("report_unfinished handles the others")
        };
        let receipt = status.receipt.clone().unwrap_or_default();
        let committed = status.state == TxState::Committed as i32
            && receipt.status == ExecStatus::Success as i32;
        let record = committed
            .then(|| ProposalRecord::decode(receipt.return_data.as_ref()).ok())
            .flatten();
        let Some(record) = record else {
            if sign.opts.json {
                println!("{}", output::tx_status(&status));
            } else {
                println!("{}", output::tx_status_text(&status));
            }
            return Ok(exit_code(&status));
        };
        // The action this step ran, if it ran one and it failed: exit as for a failed execution.
        let failed =
            record.executed_height == status.height && record.outcome != ExecStatus::Success as i32;
        let code = if failed {
            exit_code_failed()
        } else {
            ExitCode::SUCCESS
        };
        // Where it stands now (a later block may have moved it on), with the threshold; if
        // that read fails, the record as the step left it.
        let info = match connect(&sign.opts.node).await {
            Ok(node) => node.proposal(record.number).await.ok(),
            Err(_) => None,
        }
        .unwrap_or_else(|| ProposalInfo {
            status: quorate_proto::governance::status(&record, record.epoch, status.height) as i32,
            kind: quorate_proto::governance::kind_of(&record)
                .map_or("", |k| k.name())
                .to_owned(),
            approvals: record.approvals.len() as u32,
            threshold: 0,
            height: status.height,
            record: Some(record.clone()),
        });
        if sign.opts.json {
            let mut v = output::tx_status(&status);
            v["proposal"] = proposal_json(&info);
            println!("{v}");
        } else {
            println!(
                "tx {}: committed at height {}",
                hex::encode(&status.tx_hash),
                status.height
            );
            print_proposal(&info, false);
        }
        Ok(code)
    })
}

/// The exit code of a committed transaction whose execution failed.
fn exit_code_failed() -> ExitCode {
    exit_code(&quorate_proto::v1::TxStatusResponse {
        state: TxState::Committed as i32,
        receipt: Some(quorate_proto::v1::Receipt {
            status: ExecStatus::BadInput as i32,
            ..Default::default()
        }),
        ..Default::default()
    })
}

fn show(open: bool, limit: u32, before: u64, opts: &ClientOpts) -> anyhow::Result<ExitCode> {
    runtime()?.block_on(async {
        let g = connect(&opts.node)
            .await?
            .governance(open, before, limit)
            .await?;
        if opts.json {
            println!(
                "{}",
                json!({
                    "height": g.height,
                    "admin": (!g.admin.is_empty()).then(|| hex::encode(&g.admin)),
                    "policy": g.policy.as_ref().map(output::policy_json),
                    "latest": g.latest,
                    "next_before": (g.next_before != 0).then_some(g.next_before),
                    "proposals": g.proposals.iter().map(proposal_json).collect::<Vec<_>>(),
                })
            );
            return Ok(ExitCode::SUCCESS);
        }
        println!("at height {}", g.height);
        match (&g.policy, g.admin.is_empty()) {
            (Some(p), _) => println!(
                "{}",
                quorate_client::transaction::describe_admin(Some(
                    &quorate_proto::v1::admin::Action::SetPolicy(p.clone())
                ))
                .replacen("govern by", "governed by", 1)
            ),
            (None, false) => println!("administered by the single admin {}", hex::encode(&g.admin)),
            (None, true) => println!("no administration"),
        }
        if g.proposals.is_empty() {
            println!(
                "no {}proposals{}",
                if open { "open " } else { "" },
                if g.latest == 0 { " yet" } else { " listed" }
            );
        }
        for p in &g.proposals {
            print_proposal(p, false);
        }
        if g.next_before != 0 {
            println!("more: --before {}", g.next_before);
        }
        Ok(ExitCode::SUCCESS)
    })
}

fn status_name(status: i32) -> &'static str {
    match ProposalStatus::try_from(status) {
        Ok(ProposalStatus::Open) => "OPEN",
        Ok(ProposalStatus::Executed) => "EXECUTED",
        Ok(ProposalStatus::Failed) => "FAILED",
        Ok(ProposalStatus::Expired) => "EXPIRED",
        _ => "UNKNOWN",
    }
}

/// A proposal as JSON.
fn proposal_json(info: &ProposalInfo) -> Value {
    let r = info.record.clone().unwrap_or_default();
    json!({
        "number": r.number,
        "kind": info.kind,
        "status": status_name(info.status),
        "approvals": info.approvals,
        "threshold": info.threshold,
        "action": output::admin_json(r.action.as_ref().and_then(|a| a.action.as_ref())),
        "memo": r.memo,
        "proposer": hex::encode(&r.proposer),
        "height": r.height,
        "tx_hash": hex::encode(&r.tx_hash),
        "open_until": r.open_until,
        "approved_by": r.approvals.iter().map(|a| json!({
            "member": hex::encode(&a.member), "height": a.height, "tx_hash": hex::encode(&a.tx_hash),
        })).collect::<Vec<_>>(),
        "executed_height": (r.executed_height != 0).then_some(r.executed_height),
        "outcome": (r.executed_height != 0).then(|| output::exec_status_name(r.outcome)),
        "error": r.error,
        "read_at": info.height,
    })
}

fn print_proposal(info: &ProposalInfo, as_json: bool) {
    if as_json {
        println!("{}", proposal_json(info));
        return;
    }
    let r = info.record.clone().unwrap_or_default();
    // An open proposal counts its current members' approvals against the threshold in force;
    // a closed one is what its record holds.
    let approvals = if info.status == ProposalStatus::Open as i32 {
        format!("{} of {} approvals", info.approvals, info.threshold)
    } else {
        format!("{} approvals", r.approvals.len())
    };
    println!(
        "proposal {} ({}): {}, {approvals}; open until height {}",
        r.number,
        info.kind,
        status_name(info.status),
        r.open_until
    );
    println!(
        "  {}",
        quorate_client::transaction::describe_admin(
            r.action.as_ref().and_then(|a| a.action.as_ref())
        )
    );
    if !r.memo.is_empty() {
        println!("  memo: {:?}", r.memo);
    }
    println!(
        "  proposed by {} at height {} (tx {})",
        hex::encode(&r.proposer),
        r.height,
        hex::encode(&r.tx_hash)
    );
    for a in &r.approvals {
        println!(
            "  approved by {} at height {} (tx {})",
            hex::encode(&a.member),
            a.height,
            hex::encode(&a.tx_hash)
        );
    }
    if r.executed_height != 0 {
        println!(
            "  executed at height {}: {}{}",
            r.executed_height,
            output::exec_status_name(r.outcome),
            if r.error.is_empty() {
                String::new()
            } else {
                format!(": {}", r.error)
            }
        );
    }
}

/// A policy from `--member NAME=ADDRESS` (repeat), a uniform threshold `k` and `KIND=K`
/// overrides.
pub(super) fn policy_from_args(
    members: &[String],
    k: u32,
    thresholds: &[String],
    lifetime: u64,
) -> anyhow::Result<GovernancePolicy> {
    let members = members
        .iter()
        .map(|m| {
            let (name, address) = m
                .split_once('=')
                .with_context(|| format!("member {m:?}: expected NAME=ADDRESS"))?;
            Ok(GenesisMember {
                name: name.to_owned(),
                address: parse_addr(address)?.to_hex(),
            })
        })
        .collect::<anyhow::Result<_>>()?;
    Ok(terms_from_args(members, k, thresholds, lifetime)?.to_policy()?)
}

/// Governance terms: `members`, `k` approvals for every kind but those `KIND=K` overrides name,
/// proposals open `lifetime` heights.
pub(super) fn terms_from_args(
    members: Vec<GenesisMember>,
    k: u32,
    thresholds: &[String],
    lifetime: u64,
) -> anyhow::Result<GenesisGovernance> {
    let mut terms = GenesisGovernance::uniform(members, k, lifetime);
    for (kind, value) in parse_thresholds(thresholds)? {
        *terms.threshold_mut(kind) = value;
    }
    Ok(terms)
}

/// `KIND=K` pairs.
fn parse_thresholds(items: &[String]) -> anyhow::Result<Vec<(Kind, u32)>> {
    items
        .iter()
        .map(|t| {
            let (kind, k) = t
                .split_once('=')
                .with_context(|| format!("threshold {t:?}: expected KIND=K"))?;
            let k: u32 = k
                .parse()
                .with_context(|| format!("threshold {t:?}: K is a number"))?;
            let Some(kind) = Kind::from_name(kind) else {
                bail!(
                    "threshold {t:?}: no kind {kind:?} (validators, deployers, params, upgrades, policy)"
                );
            };
            Ok((kind, k))
        })
        .collect()
}
