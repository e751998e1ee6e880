//! Protocol activations in a block (ADR 0019): `activate_protocol` schedules the next version
//! from a height at least `validator_set_delay` away, moves the one scheduled, or cancels it
//! (height 0), while it is still at least `validator_set_delay` away. Every activation since genesis stays in the `protocol` entry, so any height,
//! however old, knows its version.

use bytes::Bytes;
use prost::Message;
use quorate_proto::v1::{Event, ExecStatus, ProtocolActivation, ProtocolSchedule};

use super::{BlockExecutor, Outcome};
use crate::storage::{EntryKey, StorageError};

impl BlockExecutor<'_> {
    /// Activates `version` from `height` on (0: cancels the version scheduled).
    pub(super) fn activate_protocol(
        &mut self,
        version: u32,
        height: u64,
    ) -> Result<Outcome, StorageError> {
        let now = self.env.height;
        let mut schedule: ProtocolSchedule = self
            .state
            .message(&EntryKey::protocol(), "protocol schedule")?;
        let failed = |why: String| Ok(Outcome::failed(ExecStatus::BadInput, why));
        let earliest = now.saturating_add(self.params.validator_set_delay);
        // At most one activation is ahead of the block: the last one.
        let pending = schedule
            .activations
            .last()
            .filter(|a| a.from_height > now)
            .cloned();
        let activations: Vec<(u64, u32)> = schedule
            .activations
            .iter()
            .map(|a| (a.from_height, a.version))
            .collect();
        let in_force = crate::protocol::version_at(&activations, now);
        // An activation closer than the delay is fixed: the blocks before it are built and
        // judged while earlier commits are still being written, and a release that does not
        // support it stops on the schedule it knows (review of issue 28).
        if let Some(p) = pending.as_ref().filter(|p| p.from_height < earliest) {
            return failed(format!(
                "version {} activates at height {}, less than validator_set_delay away: it can \
                 no longer be moved or cancelled",
                p.version, p.from_height
            ));
        }
        let (kind, activation) = if height == 0 {
            let Some(p) = pending else {
                return failed("no protocol version is scheduled: nothing to cancel".into());
            };
            if p.version != version {
                return failed(format!(
                    "version {} is scheduled, not {version}: nothing cancelled",
                    p.version
                ));
            }
            schedule.activations.pop();
            ("cancelled", p)
        } else {
            if height < earliest {
                return failed(format!(
                    "a protocol version activates at height {earliest} at the earliest \
                     (validator_set_delay after this block), not {height}"
                ));
            }
            match &pending {
                Some(p) if p.version != version => {
                    return failed(format!(
                        "version {} is scheduled at height {}: cancel it (height 0) before \
                         activating version {version}",
                        p.version, p.from_height
                    ));
                }
                Some(_) => {
                    schedule.activations.pop();
                }
                None if version != in_force + 1 => {
                    return failed(format!(
                        "version {in_force} is in force: the next version is {}, not {version}",
                        in_force + 1
                    ));
                }
                None => {}
            }
            let a = ProtocolActivation {
                version,
                from_height: height,
            };
            schedule.activations.push(a);
            ("scheduled", a)
        };
        let empty = schedule.activations.is_empty();
        self.state
            .set_message(EntryKey::protocol(), &schedule, empty)?;
        let data = Bytes::from(activation.encode_to_vec());
        Ok(Outcome {
            events: vec![Event {
                source: "protocol".into(),
                kind: kind.into(),
                data: data.clone(),
                contract: Bytes::new(),
            }],
            return_data: data,
            ..Outcome::success()
        })
    }
}
