//! Chain parameters over the heights (ADR 0017): the genesis parameters, and the governed ones
//! changed since, each from the height it comes into force (the `params` state entry). Every
//! rule that depends on a parameter asks for the parameters of the height it judges.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use parking_lot::RwLock;
use quorate_genesis::ChainParams;
use quorate_proto::v1::{ParamSchedule, ParamValue, ProtocolSchedule, ScheduledParams};

/// Why a stored schedule cannot be read.
#[derive(Debug, thiserror::Error)]
#[error("parameter schedule: {0}")]
pub struct ScheduleError(String);

/// The parameters of one chain at every height its committed state knows.
#[derive(Debug)]
pub struct ParamBook {
    genesis: Arc<ChainParams>,
    /// Parameters by first height, increasing (empty: the genesis parameters throughout).
    entries: RwLock<Vec<(u64, Arc<ChainParams>)>>,
    /// Protocol versions by first height, increasing (empty: version 1 throughout; ADR 0019).
    versions: RwLock<Vec<(u64, u32)>>,
    /// The committed height (what "the next height" means for admission).
    committed: AtomicU64,
}

impl ParamBook {
    /// The genesis parameters with the committed `schedule` and protocol versions, at
    /// committed height `height`.
    pub fn new(
        genesis: ChainParams,
        (schedule, protocol): (Option<&ParamSchedule>, Option<&ProtocolSchedule>),
        height: u64,
    ) -> Result<Self, ScheduleError> {
        let book = Self {
            genesis: Arc::new(genesis),
            entries: RwLock::new(Vec::new()),
            versions: RwLock::new(Vec::new()),
            committed: AtomicU64::new(height),
        };
        if let Some(s) = schedule {
            book.follow(s)?;
        }
        if let Some(p) = protocol {
            book.follow_protocol(p)?;
        }
        Ok(book)
    }

    /// Takes in a newly committed protocol schedule (every activation since genesis).
    pub fn follow_protocol(&self, schedule: &ProtocolSchedule) -> Result<(), ScheduleError> {
        let mut next: Vec<(u64, u32)> = Vec::with_capacity(schedule.activations.len());
        for a in &schedule.activations {
            if next
                .last()
                .is_some_and(|(h, v)| a.from_height <= *h || a.version != v + 1)
                || a.version < 2
            {
                return Err(ScheduleError(format!(
                    "protocol activation of version {} at height {} out of order",
                    a.version, a.from_height
                )));
            }
            next.push((a.from_height, a.version));
        }
        *self.versions.write() = next;
        Ok(())
    }

    /// The protocol version in force at `height` (1 before any activation).
    pub fn protocol_at(&self, height: u64) -> u32 {
        crate::protocol::version_at(&self.versions.read(), height)
    }

    /// The first activation, at or after `height`, of a version above `supported`: the
    /// height from which this release cannot decide blocks.
    pub fn unsupported_from(&self, supported: u32) -> Option<(u64, u32)> {
        self.versions
            .read()
            .iter()
            .find(|(_, v)| *v > supported)
            .copied()
    }

    /// Set when deciding `height` needs a protocol version this release does not support.
    pub fn halt_at(&self, height: u64) -> Option<crate::protocol::Halt> {
        let supported = crate::protocol::SUPPORTED;
        self.unsupported_from(supported)
            .filter(|(from, _)| *from <= height)
            .map(|(from, version)| crate::protocol::Halt {
                version,
                height: from,
                supported,
            })
    }

    /// [`ParamBook::halt_at`] the height after the committed one.
    pub fn halt(&self) -> Option<crate::protocol::Halt> {
        self.halt_at(self.committed.load(Ordering::Acquire) + 1)
    }

    /// The version activated and not yet in force at `height`, with its first height.
    pub fn protocol_after(&self, height: u64) -> Option<(u64, u32)> {
        self.versions
            .read()
            .iter()
            .find(|(from, _)| *from > height)
            .copied()
    }

    /// The genesis parameters (also the ceiling of block and transaction sizes).
    pub fn genesis(&self) -> &Arc<ChainParams> {
        &self.genesis
    }

    /// Takes in a newly committed schedule (every change since genesis).
    pub fn follow(&self, schedule: &ParamSchedule) -> Result<(), ScheduleError> {
        let mut next: Vec<(u64, Arc<ChainParams>)> = Vec::with_capacity(schedule.scheduled.len());
        for s in &schedule.scheduled {
            next.push((s.from_height, Arc::new(params_of(&self.genesis, s)?)));
        }
        *self.entries.write() = next;
        Ok(())
    }

    /// The parameters deciding `height`.
    pub fn at(&self, height: u64) -> Arc<ChainParams> {
        self.entries
            .read()
            .iter()
            .rev()
            .find(|(from, _)| *from <= height)
            .map_or_else(|| self.genesis.clone(), |(_, p)| p.clone())
    }

    /// The parameters of the next height to be decided.
    pub fn next(&self) -> Arc<ChainParams> {
        self.at(self.committed.load(Ordering::Acquire) + 1)
    }

    /// Records that `height` is committed.
    pub fn committed(&self, height: u64) {
        self.committed.fetch_max(height, Ordering::AcqRel);
    }

    /// Changes decided to come into force after `height`.
    pub fn after(&self, height: u64) -> Vec<(u64, Arc<ChainParams>)> {
        self.entries
            .read()
            .iter()
            .filter(|(from, _)| *from > height)
            .cloned()
            .collect()
    }
}

/// The parameters of a schedule entry: the genesis ones with the entry's governed values.
pub fn params_of(genesis: &ChainParams, s: &ScheduledParams) -> Result<ChainParams, ScheduleError> {
    let changes: Vec<(&str, u64)> = s
        .values
        .iter()
        .map(|v| (v.name.as_str(), v.value))
        .collect();
    // The ceiling was checked when the change was decided; a later genesis value is the same.
    genesis
        .with_changes(&changes, genesis)
        .map_err(|e| ScheduleError(format!("entry from height {}: {e}", s.from_height)))
}

/// The schedule entry of `params` from `from_height` on (every governed value).
pub fn entry_of(from_height: u64, params: &ChainParams) -> ScheduledParams {
    ScheduledParams {
        from_height,
        values: params
            .governed_values()
            .into_iter()
            .map(|(name, value)| ParamValue {
                name: name.to_owned(),
                value,
            })
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_height_gets_the_parameters_in_force_there() {
        let genesis = ChainParams::default();
        let lower = genesis
            .with_changes(&[("block_max_txs", 7)], &genesis)
            .expect("valid");
        let cheaper = lower
            .with_changes(&[("fuel_price", 0)], &genesis)
            .expect("valid");
        let book = ParamBook::new(genesis.clone(), (None, None), 0).expect("book");
        assert_eq!(*book.at(100), genesis);
        book.follow(&ParamSchedule {
            scheduled: vec![entry_of(10, &lower), entry_of(20, &cheaper)],
        })
        .expect("follow");
        assert_eq!(*book.at(9), genesis);
        assert_eq!(*book.at(10), lower);
        assert_eq!(*book.at(25), cheaper);
        assert_eq!(book.after(10).len(), 1);
        book.committed(19);
        assert_eq!(*book.next(), cheaper);
        // A book rebuilt from the stored schedule (a restart) knows every height alike.
        let stored = ParamSchedule {
            scheduled: vec![entry_of(10, &lower), entry_of(20, &cheaper)],
        };
        let again = ParamBook::new(genesis.clone(), (Some(&stored), None), 19).expect("book");
        for h in [1, 9, 10, 19, 20, 99] {
            assert_eq!(again.at(h), book.at(h), "height {h}");
        }
    }

    #[test]
    fn a_change_past_the_genesis_sizes_or_the_rules_is_refused() {
        let genesis = ChainParams::default();
        let more = u64::from(genesis.block_max_txs) + 1;
        assert!(matches!(
            genesis.with_changes(&[("block_max_txs", more)], &genesis),
            Err(quorate_genesis::ParamChangeError::AboveCeiling { .. })
        ));
        assert!(matches!(
            genesis.with_changes(&[("validator_set_delay", 2)], &genesis),
            Err(quorate_genesis::ParamChangeError::Invalid(_))
        ));
        assert!(matches!(
            genesis.with_changes(&[("contracts.max_code_bytes", 1)], &genesis),
            Err(quorate_genesis::ParamChangeError::Unknown(_))
        ));
    }
}
