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
    /// Schedules `code` for the system contract `name`.
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
        let code_hash = Hash32::of(code);
        if record.code()? == code_hash {
            return Ok(Outcome::failed(
                ExecStatus::BadInput,
                format!("system contract {name:?} already runs code {code_hash}"),
            ));
        }
        // As a deploy decides (ADR 0010): code the chain already holds runs as it was first
        // decided (its machine code, if it came precompiled); new code is compiled here, now,
        // long before its height.
        let prepared = match self.prepare_code(code, None)?.2 {
            Ok(p) => p,
            Err(e) => {
                return Ok(Outcome::failed(
                    ExecStatus::BadInput,
                    format!("invalid contract code: {e}"),
                ))
            }
        };
        if prepared.info.has_init {
            return Ok(Outcome::failed(
                ExecStatus::BadInput,
                "upgraded code keeps the contract's storage and runs no `init`: remove the \
                 export"
                    .into(),
            ));
        }
        if let Some(new) = prepared.new_code {
            if !self.new_code.iter().any(|c| c.code_hash == new.code_hash) {
                self.new_code.push(new);
            }
        }
        let mut pending = self.pending_upgrades()?;
        pending.upgrades.retain(|u| u.name != name);
        let upgrade = PendingUpgrade {
            name: name.to_owned(),
            code_hash: Bytes::copy_from_slice(&code_hash.0),
            from_height: self.env.height + self.params.validator_set_delay,
        };
        pending.upgrades.push(upgrade.clone());
        self.state
            .set_entry(EntryKey::upgrades(), Some(pending.encode_to_vec()))?;
        let data = Bytes::from(upgrade.encode_to_vec());
        Ok(Outcome {
            events: vec![Event {
                source: "upgrades".into(),
                kind: "scheduled".into(),
                data: data.clone(),
                contract: Bytes::copy_from_slice(&address.0),
            }],
            return_data: data,
            ..Outcome::success()
        })
    }

    /// Puts in force the upgrades due at this block's height: first thing in every block.
    pub fn begin_block(&mut self) -> Result<(), StorageError> {
        let Some(bytes) = self.state.entry(&EntryKey::upgrades())? else {
            return Ok(());
        };
        let mut pending =
            PendingUpgrades::decode(bytes.as_slice()).map_err(|e| corrupt("upgrades", e))?;
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
            record.code_hash = u.code_hash;
            record.version += 1;
            record.upgraded_at = height;
            self.state
                .set_entry(EntryKey::contract(&address), Some(record.encode_to_vec()))?;
        }
        let rest = (!later.is_empty()).then(|| PendingUpgrades { upgrades: later }.encode_to_vec());
        self.state.set_entry(EntryKey::upgrades(), rest)?;
        self.state.seal_transaction();
        Ok(())
    }

    fn pending_upgrades(&mut self) -> Result<PendingUpgrades, StorageError> {
        self.state
            .entry(&EntryKey::upgrades())?
            .map(|b| PendingUpgrades::decode(b.as_slice()).map_err(|e| corrupt("upgrades", e)))
            .transpose()
            .map(Option::unwrap_or_default)
    }
}
