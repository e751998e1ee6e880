//! Parameter changes in a block (ADR 0017): the governed parameters a `set_params` action names
//! change from `validator_set_delay` heights on, never before a change already decided, and
//! never past the genesis sizes.

use bytes::Bytes;
use prost::Message;
use quorate_proto::v1::{Event, ExecStatus, ParamSchedule};

use super::{BlockExecutor, Outcome};
use crate::chain_params::{entry_of, params_of};
use crate::storage::{corrupt, EntryKey, StorageError};

impl BlockExecutor<'_> {
    /// Schedules `changes` (governed parameter names and values).
    pub(super) fn set_params(
        &mut self,
        changes: &[(String, u64)],
    ) -> Result<Outcome, StorageError> {
        let height = self.env.height;
        let mut schedule: ParamSchedule = self
            .state
            .message(&EntryKey::params(), "parameter schedule")?;
        // Every change since genesis stays: a node knows the parameters of every height.
        let last = schedule.scheduled.last();
        let base = match last {
            Some(s) => params_of(self.ceiling, s).map_err(|e| corrupt("parameter schedule", e))?,
            None => self.params.clone(),
        };
        let effective =
            (height + self.params.validator_set_delay).max(last.map_or(0, |s| s.from_height));
        let named: Vec<(&str, u64)> = changes.iter().map(|(n, v)| (n.as_str(), *v)).collect();
        let next = match base.with_changes(&named, self.ceiling) {
            Ok(p) => p,
            Err(e) => return Ok(Outcome::failed(ExecStatus::BadInput, e.to_string())),
        };
        let entry = entry_of(effective, &next);
        match schedule.scheduled.last_mut() {
            Some(s) if s.from_height == effective => *s = entry.clone(),
            _ => schedule.scheduled.push(entry.clone()),
        }
        self.state
            .set_message(EntryKey::params(), &schedule, false)?;
        let data = Bytes::from(entry.encode_to_vec());
        Ok(Outcome {
            events: vec![Event {
                source: "params".into(),
                kind: "scheduled".into(),
                data: data.clone(),
                contract: Bytes::new(),
            }],
            return_data: data,
            ..Outcome::success()
        })
    }
}
