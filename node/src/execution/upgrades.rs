//! System-contract upgrades (ADR 0018): an upgrade action checks and compiles the new code and
//! schedules it; the first block of its height switches the contract's record to it, before
//! any transaction, so every call from that height on runs it and every block before ran (and
//! replays with) the code before. The contract's address and storage stay.

use bytes::Bytes;
use prost::Message;
use quorate_proto::crypto::{Address, Hash32};
use quorate_proto::v1::{Event, ExecStatus, PendingUpgrade, PendingUpgrades};

use super::{BlockExecutor, Outcome};
use crate::storage::{corrupt, EntryKey, StorageError};

impl BlockExecutor<'_> {
    /// Schedules `code` for the system contract `name` (no code: cancels the upgrade to come).
    pub(super) fn upgrade_contract(
        &mut self,
        name: &str,
        code: &Bytes,
    ) -> Result<Outcome, StorageError> {
        let address = Address::of_system_contract(name);
        let Some(record) = self.state.contract(&address)? else {
            return Ok(Outcome::failed(
                ExecStatus::BadInput,
                format!("this chain has no system contract {name:?}"),
            ));
        };
        let failed = |why: String| Ok(Outcome::failed(ExecStatus::BadInput, why));
        let code_hash = Hash32::of(code);
        let mut pending = self.pending_upgrades()?;
        let scheduled = pending.upgrades.iter().position(|u| u.name == name);
        if code.is_empty() {
            // No code: cancels the upgrade to come.
            let Some(i) = scheduled else {
                return failed(format!("system contract {name:?} has no upgrade to come"));
            };
            let cancelled = pending.upgrades.remove(i);
            self.retire(&address, &cancelled.code_hash)?;
            self.save_upgrades(pending)?;
            return Ok(Outcome {
                events: vec![upgrade_event("cancelled", &address, &cancelled)],
                ..Outcome::success()
            });
        }
        if record.code()? == code_hash {
            return failed(format!(
                "system contract {name:?} already runs code {code_hash}"
            ));
        }
        if scheduled.is_some_and(|i| pending.upgrades[i].code_hash.as_ref() == code_hash.0) {
            return failed(format!(
                "system contract {name:?} is already to run code {code_hash}"
            ));
        }
        // Code that once came precompiled runs as its machine code (ADR 0010), which no member
        // reviewed: refused, so the code approved is the code that runs.
        if self
            .state
            .entry(&EntryKey::machine_code(&code_hash))?
            .is_some()
        {
            return failed(format!(
                "code {code_hash} was deployed with machine code on this chain; an upgrade runs \
                 bytecode only: build it differently (its hash changes)"
            ));
        }
        let level = crate::protocol::abi_level(self.protocol);
        let info = match self.contracts.vm().validate_at(code, level) {
            Ok(info) => info,
            Err(e) => return failed(format!("invalid contract code: {e}")),
        };
        if info.has_init {
            return failed(
                "upgraded code keeps the contract's storage and runs no `init`: remove the export"
                    .into(),
            );
        }
        // Checked and compiled now, long before its height.
        let prepared = match self.prepare_code(code, None)?.2 {
            Ok(p) => p,
            Err(e) => return failed(format!("invalid contract code: {e}")),
        };
        if let Some(new) = prepared.new_code {
            if !self.new_code.iter().any(|c| c.code_hash == new.code_hash) {
                self.new_code.push(new);
            }
        }
        if let Some(i) = scheduled {
            // A newer decision replaces the one to come; its code stays known to the state.
            let replaced = pending.upgrades.remove(i);
            self.retire(&address, &replaced.code_hash)?;
        }
        let upgrade = PendingUpgrade {
            name: name.to_owned(),
            code_hash: Bytes::copy_from_slice(&code_hash.0),
            from_height: self.env.height + self.params.validator_set_delay,
        };
        pending.upgrades.push(upgrade.clone());
        self.save_upgrades(pending)?;
        Ok(Outcome {
            events: vec![upgrade_event("scheduled", &address, &upgrade)],
            return_data: Bytes::from(upgrade.encode_to_vec()),
            ..Outcome::success()
        })
    }

    /// Puts in force the upgrades due at this block's height: first thing in every block.
    pub fn begin_block(&mut self) -> Result<(), StorageError> {
        let mut pending = self.pending_upgrades()?;
        let height = self.env.height;
        let (due, later): (Vec<_>, Vec<_>) = pending
            .upgrades
            .drain(..)
            .partition(|u| u.from_height <= height);
        if due.is_empty() {
            return Ok(());
        }
        for u in due {
            let address = Address::of_system_contract(&u.name);
            let mut record = self
                .state
                .contract(&address)?
                .ok_or_else(|| corrupt("upgrades", format!("no contract {}", u.name)))?;
            let old = std::mem::replace(&mut record.code_hash, u.code_hash);
            record.retired.push(old);
            record.version += 1;
            record.upgraded_at = height;
            self.state
                .set_entry(EntryKey::contract(&address), Some(record.encode_to_vec()))?;
        }
        self.save_upgrades(PendingUpgrades { upgrades: later })?;
        self.state.seal_transaction();
        Ok(())
    }

    /// Keeps `code_hash` among the contract's retired code: code once decided stays part of
    /// the state (snapshots carry it), so whether code is new to the chain never depends on
    /// how a node came by its store (ADR 0010's "the first deploy decides").
    fn retire(&mut self, address: &Address, code_hash: &Bytes) -> Result<(), StorageError> {
        let mut record = self
            .state
            .contract(address)?
            .ok_or_else(|| corrupt("upgrades", format!("no contract at {address}")))?;
        if !record.retired.contains(code_hash) && record.code_hash != *code_hash {
            record.retired.push(code_hash.clone());
            self.state
                .set_entry(EntryKey::contract(address), Some(record.encode_to_vec()))?;
        }
        Ok(())
    }

    fn save_upgrades(&mut self, pending: PendingUpgrades) -> Result<(), StorageError> {
        let empty = pending.upgrades.is_empty();
        self.state
            .set_message(EntryKey::upgrades(), &pending, empty)
    }

    fn pending_upgrades(&mut self) -> Result<PendingUpgrades, StorageError> {
        self.state.message(&EntryKey::upgrades(), "upgrades")
    }
}

/// An `upgrades` event of `kind` about `upgrade` of the contract at `address`.
fn upgrade_event(kind: &str, address: &Address, upgrade: &PendingUpgrade) -> Event {
    Event {
        source: "upgrades".into(),
        kind: kind.into(),
        data: Bytes::from(upgrade.encode_to_vec()),
        contract: Bytes::copy_from_slice(&address.0),
    }
}
