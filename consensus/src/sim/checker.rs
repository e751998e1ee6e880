//! The invariants, checked on every persisted message and every commit of an honest validator.

use std::collections::{BTreeSet, HashMap};
use std::fmt;

use std::sync::atomic::AtomicU64;
use std::sync::Arc;

use super::keys::SimVerifier;
use super::sets::{NodeId, SetSchedule};
use super::SimBlock;
use crate::types::{
    BlockId, Certificate, Height, Round, Signable, Signed, ValidatorIndex, Verifier, Vote, VoteKind,
};

/// A broken invariant.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Violation {
    /// Two honest validators committed different blocks at one height.
    Disagreement {
        /// Height.
        height: Height,
        /// First committer and its block.
        first: (ValidatorIndex, BlockId),
        /// Second committer and its block.
        second: (ValidatorIndex, BlockId),
    },
    /// An honest validator committed with a certificate that does not prove finality.
    BadCertificate {
        /// Committer.
        validator: ValidatorIndex,
        /// Height.
        height: Height,
    },
    /// An honest validator committed a block that is invalid or does not extend its chain.
    InvalidBlock {
        /// Committer.
        validator: ValidatorIndex,
        /// Height.
        height: Height,
    },
    /// An honest validator voted for a block that is invalid.
    VotedInvalid {
        /// Validator.
        validator: ValidatorIndex,
        /// Height.
        height: Height,
    },
    /// An honest validator signed two different messages for one slot (e.g. after a restart).
    HonestEquivocation {
        /// Validator.
        validator: ValidatorIndex,
        /// Height.
        height: Height,
        /// Round.
        round: Round,
    },
    /// After the network healed, an honest validator did not keep committing.
    Stalled {
        /// Validator.
        validator: ValidatorIndex,
        /// Its height at the end.
        height: Height,
        /// Height it had to reach.
        target: Height,
    },
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Violation::Disagreement {
                height,
                first,
                second,
            } => write!(
                f,
                "disagreement at height {height}: validator {} committed {}, validator {} committed {}",
                first.0, first.1, second.0, second.1
            ),
            Violation::BadCertificate { validator, height } => write!(
                f,
                "validator {validator} committed height {height} with an invalid certificate"
            ),
            Violation::InvalidBlock { validator, height } => write!(
                f,
                "validator {validator} committed an invalid block at height {height}"
            ),
            Violation::VotedInvalid { validator, height } => write!(
                f,
                "honest validator {validator} voted for an invalid block at height {height}"
            ),
            Violation::HonestEquivocation {
                validator,
                height,
                round,
            } => write!(
                f,
                "honest validator {validator} signed two messages for one slot at height {height} round {round}"
            ),
            Violation::Stalled {
                validator,
                height,
                target,
            } => write!(
                f,
                "validator {validator} stalled at height {height} after the network healed (needed {target})"
            ),
        }
    }
}

/// Slot of a signed message: (node, height, round, 0 proposal / 1 prevote / 2 precommit).
type SlotKey = (NodeId, Height, Round, u8);

fn quorum(n: usize) -> usize {
    n * 2 / 3 + 1
}

/// Global record of what honest validators signed and committed.
pub(crate) struct Checker {
    sets: Arc<SetSchedule>,
    verifier: SimVerifier,
    signed: HashMap<SlotKey, Signed>,
    committed: HashMap<Height, (ValidatorIndex, BlockId)>,
}

impl Checker {
    pub(crate) fn new(sets: Arc<SetSchedule>) -> Self {
        Self {
            verifier: SimVerifier::with_sets(sets.clone(), Arc::new(AtomicU64::new(u64::MAX))),
            sets,
            signed: HashMap::new(),
            committed: HashMap::new(),
        }
    }

    /// Honest node `node` persisted its own `s` (it is about to send it); `invalid` says
    /// whether a block is one that re-execution would reject.
    pub(crate) fn on_signed(
        &mut self,
        node: NodeId,
        s: &Signed,
        invalid: impl Fn(&BlockId) -> bool,
    ) -> Result<(), Violation> {
        if let Signed::Vote(v) = s {
            if v.vote.block.as_ref().is_some_and(&invalid) {
                return Err(Violation::VotedInvalid {
                    validator: v.vote.validator,
                    height: v.vote.height,
                });
            }
        }
        let key = match s {
            Signed::Proposal(p) => (node, p.proposal.height, p.proposal.round, 0),
            Signed::Vote(v) => (
                node,
                v.vote.height,
                v.vote.round,
                match v.vote.kind {
                    VoteKind::Prevote => 1,
                    VoteKind::Precommit => 2,
                },
            ),
        };
        match self.signed.get(&key) {
            Some(old) if old != s => Err(Violation::HonestEquivocation {
                validator: key.0,
                height: key.1,
                round: key.2,
            }),
            Some(_) => Ok(()),
            None => {
                self.signed.insert(key, s.clone());
                Ok(())
            }
        }
    }

    /// Honest `validator`, whose chain ends at `head`, commits `block` with `cert`.
    pub(crate) fn on_commit(
        &mut self,
        validator: ValidatorIndex,
        head: BlockId,
        block: Option<&SimBlock>,
        cert: &Certificate,
    ) -> Result<(), Violation> {
        if !self.certificate_ok(cert) {
            return Err(Violation::BadCertificate {
                validator,
                height: cert.height,
            });
        }
        let ok = block.is_some_and(|b| {
            b.valid && b.id == cert.block && b.height == cert.height && b.parent == head
        });
        if !ok {
            return Err(Violation::InvalidBlock {
                validator,
                height: cert.height,
            });
        }
        match self.committed.get(&cert.height) {
            Some(&(first, id)) if id != cert.block => Err(Violation::Disagreement {
                height: cert.height,
                first: (first, id),
                second: (validator, cert.block),
            }),
            Some(_) => Ok(()),
            None => {
                self.committed.insert(cert.height, (validator, cert.block));
                Ok(())
            }
        }
    }

    /// A quorum of distinct validators' valid precommits for the certified block.
    fn certificate_ok(&self, cert: &Certificate) -> bool {
        let mut seen = BTreeSet::new();
        cert.signatures.iter().all(|(v, sig)| {
            let vote = Vote {
                height: cert.height,
                round: cert.round,
                kind: VoteKind::Precommit,
                block: Some(cert.block),
                validator: *v,
            };
            seen.insert(*v) && self.verifier.verify(*v, Signable::Vote(&vote), sig)
        }) && seen.len() >= quorum(self.sets.members_at(cert.height, u64::MAX).len())
    }
}
