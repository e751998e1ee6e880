//! Governance steps in a block (ADR 0016): a member proposes an administrative action, members
//! approve it, and the approval that reaches the threshold of the action's kind runs it with
//! the single admin's code. Every step is written to the proposal's record.

use bytes::Bytes;
use prost::Message;
use quorate_proto::governance::{self, Kind};
use quorate_proto::v1::{
    Admin, Event, ExecStatus, GovernancePolicy, ProposalApproval, ProposalRecord,
};

use super::{BlockExecutor, Outcome};
use crate::storage::{corrupt, EntryKey, StorageError};
use crate::verified_tx::{AdminAction, GovAction, VerifiedTx};

impl BlockExecutor<'_> {
    /// A proposal or an approval by `tx`'s signer.
    pub(super) fn governance(
        &mut self,
        tx: &VerifiedTx,
        step: &GovAction,
    ) -> Result<Outcome, StorageError> {
        let Some(policy) = self.policy()? else {
            return Ok(Outcome::failed(
                ExecStatus::PermissionDenied,
                "the chain has no governance policy".into(),
            ));
        };
        if !governance::is_member(&policy, &tx.signer.0) {
            return Ok(Outcome::failed(
                ExecStatus::PermissionDenied,
                format!(
                    "account {} is not a member of the chain's governance policy",
                    tx.signer
                ),
            ));
        }
        let approval = ProposalApproval {
            member: Bytes::copy_from_slice(&tx.signer.0),
            height: self.env.height,
            tx_hash: Bytes::copy_from_slice(&tx.hash.0),
        };
        let height = self.env.height;
        let (mut record, action, event) = match step {
            GovAction::Propose {
                action,
                raw,
                lifetime,
                memo,
            } => {
                let count =
                    crate::storage::decode_count(self.state.entry(&EntryKey::proposal_count())?)?
                        + 1;
                self.state.set_entry(
                    EntryKey::proposal_count(),
                    Some(count.to_be_bytes().to_vec()),
                )?;
                let lifetime = match *lifetime {
                    0 => policy.proposal_lifetime,
                    l => l.min(policy.proposal_lifetime),
                };
                let record = ProposalRecord {
                    number: count,
                    epoch: self.epoch()?,
                    proposer: approval.member.clone(),
                    action: Some(raw.clone()),
                    memo: memo.clone(),
                    height,
                    tx_hash: approval.tx_hash.clone(),
                    open_until: height.saturating_add(lifetime),
                    approvals: vec![approval],
                    ..ProposalRecord::default()
                };
                (record, action.clone(), "proposed")
            }
            GovAction::Approve(number) => {
                let Some(record) = self.proposal(*number)? else {
                    return Ok(Outcome::failed(
                        ExecStatus::BadInput,
                        format!("there is no proposal {number}"),
                    ));
                };
                let mut record = record;
                let epoch = self.epoch()?;
                if let Err(why) = open_for(&record, &tx.signer.0, epoch, height) {
                    return Ok(Outcome::failed(ExecStatus::BadInput, why));
                }
                record.approvals.push(approval);
                let action = parse_recorded(record.action.as_ref())?;
                (record, action, "approved")
            }
        };
        let mut events = vec![event_of(event, &record)];
        let kind = Kind::of(
            record
                .action
                .as_ref()
                .and_then(|a| a.action.as_ref())
                .ok_or_else(|| corrupt("proposal record", "no action"))?,
        );
        if governance::counted_approvals(&record, &policy) >= kind.threshold(&policy) {
            let outcome = self.apply_admin(&action)?;
            record.executed_height = height;
            record.outcome = outcome.status as i32;
            record.error = outcome.error;
            events.push(event_of("executed", &record));
            // What the action itself reports (a parameter or upgrade schedule).
            events.extend(outcome.events);
        }
        self.state.set_entry(
            EntryKey::proposal(record.number),
            Some(record.encode_to_vec()),
        )?;
        Ok(Outcome {
            events,
            return_data: Bytes::from(record.encode_to_vec()),
            ..Outcome::success()
        })
    }

    /// The policy in force at this point of the block.
    pub(super) fn policy(&mut self) -> Result<Option<GovernancePolicy>, StorageError> {
        self.state
            .entry(&EntryKey::governance())?
            .map(|b| {
                GovernancePolicy::decode(b.as_slice()).map_err(|e| corrupt("governance policy", e))
            })
            .transpose()
    }

    /// The governance period in force at this point of the block.
    fn epoch(&mut self) -> Result<u64, StorageError> {
        crate::storage::decode_count(self.state.entry(&EntryKey::governance_epoch())?)
    }

    /// Ends the governance period (a hand-over to a single admin): no proposal made so far
    /// can run, even under a policy installed later.
    pub(super) fn end_governance_period(&mut self) -> Result<(), StorageError> {
        let next = self.epoch()? + 1;
        self.state.set_entry(
            EntryKey::governance_epoch(),
            Some(next.to_be_bytes().to_vec()),
        )?;
        Ok(())
    }

    fn proposal(&mut self, number: u64) -> Result<Option<ProposalRecord>, StorageError> {
        self.state
            .entry(&EntryKey::proposal(number))?
            .map(|b| {
                ProposalRecord::decode(b.as_slice())
                    .map_err(|e| corrupt(format!("proposal {number}"), e))
            })
            .transpose()
    }
}

/// Why `member` cannot approve `record` at `height` in governance period `epoch`, if it cannot.
fn open_for(record: &ProposalRecord, member: &[u8], epoch: u64, height: u64) -> Result<(), String> {
    let number = record.number;
    if record.executed_height != 0 {
        return Err(format!(
            "proposal {number} was executed at height {} and takes no more approvals",
            record.executed_height
        ));
    }
    if record.epoch != epoch {
        return Err(format!(
            "proposal {number} was made under a governance policy that has since ended (the \
             chain was handed to a single admin): it can no longer run"
        ));
    }
    if height > record.open_until {
        return Err(format!(
            "proposal {number} expired: it was open until height {}",
            record.open_until
        ));
    }
    if record.approvals.iter().any(|a| a.member == member) {
        return Err(format!(
            "account {} already approved proposal {number}",
            hex::encode(member)
        ));
    }
    Ok(())
}

/// The action of a committed record (written by [`BlockExecutor::governance`] from a parsed
/// action, so it parses again unless the state is corrupt).
fn parse_recorded(action: Option<&Admin>) -> Result<AdminAction, StorageError> {
    let action = action.ok_or_else(|| corrupt("proposal record", "no action"))?;
    crate::verified_tx::admin_action(action).map_err(|e| corrupt("proposal record", e))
}

/// A `governance` event of `kind` carrying `record`.
fn event_of(kind: &str, record: &ProposalRecord) -> Event {
    Event {
        source: "governance".into(),
        kind: kind.into(),
        data: Bytes::from(record.encode_to_vec()),
        contract: Bytes::new(),
    }
}
