//! The rules of governance by the organisations (ADR 0016) that the node, the genesis and the
//! clients share: what a valid policy is, the kind of each administrative action, how many
//! approvals a proposal has and needs, and where it stands at a height.

use crate::v1::{admin, GovernancePolicy, ProposalRecord, ProposalStatus};

/// Most members of a policy.
pub const MAX_MEMBERS: usize = 64;
/// Longest lifetime of a proposal, heights.
pub const MAX_LIFETIME: u64 = 1_000_000;
/// Longest member name, bytes.
pub const MAX_MEMBER_NAME: usize = 64;
/// Longest proposal memo, bytes.
pub const MAX_MEMO: usize = 256;

/// The kinds of administrative action, each with its own threshold.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// Validator-set changes.
    Validators,
    /// Trusted deployers.
    Deployers,
    /// Chain parameters.
    Params,
    /// System-contract and protocol upgrades.
    Upgrades,
    /// The policy itself, and handing the chain to a single admin.
    Policy,
}

impl Kind {
    /// Every kind, in the policy's field order.
    pub const ALL: [Kind; 5] = [
        Kind::Validators,
        Kind::Deployers,
        Kind::Params,
        Kind::Upgrades,
        Kind::Policy,
    ];

    /// The kind of `action`.
    pub fn of(action: &admin::Action) -> Self {
        match action {
            admin::Action::AddValidator(_)
            | admin::Action::RemoveValidator(_)
            | admin::Action::ReplaceValidator(_) => Self::Validators,
            admin::Action::SetTrustedDeployer(_) => Self::Deployers,
            admin::Action::SetParams(_) => Self::Params,
            admin::Action::UpgradeContract(_) | admin::Action::ActivateProtocol(_) => {
                Self::Upgrades
            }
            admin::Action::SetAdmin(_) | admin::Action::SetPolicy(_) => Self::Policy,
        }
    }

    /// Its name, as the policy's field and the CLI have it.
    pub fn name(self) -> &'static str {
        match self {
            Self::Validators => "validators",
            Self::Deployers => "deployers",
            Self::Params => "params",
            Self::Upgrades => "upgrades",
            Self::Policy => "policy",
        }
    }

    /// The kind named `name`.
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.name() == name)
    }

    /// Approvals `policy` asks for this kind.
    pub fn threshold(self, policy: &GovernancePolicy) -> u32 {
        match self {
            Self::Validators => policy.validators,
            Self::Deployers => policy.deployers,
            Self::Params => policy.params,
            Self::Upgrades => policy.upgrades,
            Self::Policy => policy.policy,
        }
    }
}

/// Why a policy is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PolicyError {
    /// No member, or more than [`MAX_MEMBERS`].
    #[error("a policy has 1 to {MAX_MEMBERS} members, not {0}")]
    Members(usize),
    /// A member's address is not 20 bytes, or its name is too long.
    #[error("member {index}: {what}")]
    Member {
        /// Its place in the list.
        index: usize,
        /// What is wrong.
        what: String,
    },
    /// Two members share an address or a name.
    #[error("{0} appears twice among the members")]
    Duplicate(String),
    /// A threshold of 0 or above the member count.
    #[error("threshold {kind} = {value}: it must be 1 to {members} (the members)")]
    Threshold {
        /// The kind.
        kind: &'static str,
        /// Its value.
        value: u32,
        /// Member count.
        members: usize,
    },
    /// A lifetime of 0 or above [`MAX_LIFETIME`].
    #[error("proposal_lifetime {0}: it must be 1 to {MAX_LIFETIME} heights")]
    Lifetime(u64),
}

/// Checks `policy` needs nothing but itself: members, unique addresses and names, every
/// threshold reachable, a bounded lifetime.
pub fn validate_policy(policy: &GovernancePolicy) -> Result<(), PolicyError> {
    let n = policy.members.len();
    if n == 0 || n > MAX_MEMBERS {
        return Err(PolicyError::Members(n));
    }
    let mut seen = std::collections::HashSet::new();
    for (index, m) in policy.members.iter().enumerate() {
        if m.address.len() != 20 {
            return Err(PolicyError::Member {
                index,
                what: format!("address of {} bytes; expected 20", m.address.len()),
            });
        }
        if m.name.len() > MAX_MEMBER_NAME {
            return Err(PolicyError::Member {
                index,
                what: format!("name of {} bytes (at most {MAX_MEMBER_NAME})", m.name.len()),
            });
        }
        if !seen.insert(hex::encode(&m.address)) {
            return Err(PolicyError::Duplicate(format!(
                "address {}",
                hex::encode(&m.address)
            )));
        }
        if !m.name.is_empty() && !seen.insert(format!("name {:?}", m.name)) {
            return Err(PolicyError::Duplicate(format!("name {:?}", m.name)));
        }
    }
    for kind in Kind::ALL {
        let value = kind.threshold(policy);
        if value == 0 || value as usize > n {
            return Err(PolicyError::Threshold {
                kind: kind.name(),
                value,
                members: n,
            });
        }
    }
    if policy.proposal_lifetime == 0 || policy.proposal_lifetime > MAX_LIFETIME {
        return Err(PolicyError::Lifetime(policy.proposal_lifetime));
    }
    Ok(())
}

/// Whether `address` is a member of `policy`.
pub fn is_member(policy: &GovernancePolicy, address: &[u8]) -> bool {
    policy.members.iter().any(|m| m.address == address)
}

/// The approvals of `record` that count under `policy`: those of its current members.
pub fn counted_approvals(record: &ProposalRecord, policy: &GovernancePolicy) -> u32 {
    record
        .approvals
        .iter()
        .filter(|a| is_member(policy, &a.member))
        .count() as u32
}

/// The kind of `record`'s action (`None` only for a record without one, which the node never
/// writes).
pub fn kind_of(record: &ProposalRecord) -> Option<Kind> {
    record
        .action
        .as_ref()
        .and_then(|a| a.action.as_ref())
        .map(Kind::of)
}

/// Where `record` stands once `height` is committed in governance period `epoch` (a proposal
/// of an ended period never runs: it reads as expired).
pub fn status(record: &ProposalRecord, epoch: u64, height: u64) -> ProposalStatus {
    if record.executed_height != 0 {
        if record.outcome == crate::v1::ExecStatus::Success as i32 {
            ProposalStatus::Executed
        } else {
            ProposalStatus::Failed
        }
    } else if height > record.open_until || record.epoch != epoch {
        ProposalStatus::Expired
    } else {
        ProposalStatus::Open
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::v1::{GovernanceMember, ProposalApproval};

    fn policy(n: usize, k: u32) -> GovernancePolicy {
        GovernancePolicy {
            members: (0..n)
                .map(|i| GovernanceMember {
                    name: format!("org{i}"),
                    address: vec![i as u8 + 1; 20].into(),
                })
                .collect(),
            validators: k,
            deployers: k,
            params: k,
            upgrades: k,
            policy: k,
            proposal_lifetime: 10,
        }
    }

    #[test]
    fn a_policy_needs_reachable_thresholds_and_unique_members() {
        assert_eq!(validate_policy(&policy(4, 3)), Ok(()));
        assert_eq!(validate_policy(&policy(0, 1)), Err(PolicyError::Members(0)));
        assert!(matches!(
            validate_policy(&policy(4, 5)),
            Err(PolicyError::Threshold {
                kind: "validators",
                ..
            })
        ));
        let mut p = policy(4, 3);
        p.policy = 0;
        assert!(matches!(
            validate_policy(&p),
            Err(PolicyError::Threshold { kind: "policy", .. })
        ));
        let mut p = policy(4, 3);
        p.members[2].address = p.members[0].address.clone();
        assert!(matches!(
            validate_policy(&p),
            Err(PolicyError::Duplicate(_))
        ));
        let mut p = policy(4, 3);
        p.members[1].address = vec![1; 19].into();
        assert!(matches!(
            validate_policy(&p),
            Err(PolicyError::Member { index: 1, .. })
        ));
        let mut p = policy(4, 3);
        p.proposal_lifetime = MAX_LIFETIME + 1;
        assert_eq!(
            validate_policy(&p),
            Err(PolicyError::Lifetime(MAX_LIFETIME + 1))
        );
        assert!(matches!(
            validate_policy(&policy(MAX_MEMBERS + 1, 1)),
            Err(PolicyError::Members(_))
        ));
    }

    #[test]
    fn only_current_members_count_and_status_follows_the_height() {
        let p = policy(4, 3);
        let approval = |m: u8| ProposalApproval {
            member: vec![m; 20].into(),
            height: 1,
            tx_hash: Default::default(),
        };
        let mut r = ProposalRecord {
            open_until: 20,
            approvals: vec![approval(1), approval(2), approval(9)],
            ..Default::default()
        };
        assert_eq!(counted_approvals(&r, &p), 2);
        assert_eq!(status(&r, 0, 20), ProposalStatus::Open);
        assert_eq!(status(&r, 0, 21), ProposalStatus::Expired);
        assert_eq!(
            status(&r, 1, 20),
            ProposalStatus::Expired,
            "an ended period"
        );
        r.executed_height = 15;
        r.outcome = crate::v1::ExecStatus::Success as i32;
        assert_eq!(status(&r, 0, 99), ProposalStatus::Executed);
        r.outcome = crate::v1::ExecStatus::BadInput as i32;
        assert_eq!(status(&r, 0, 99), ProposalStatus::Failed);
    }
}
