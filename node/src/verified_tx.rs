//! A transaction that passed admission's checks that need no state: its payload parsed and
//! checked for shape ([`Payload`]), the chain id, fuel bounds, and every signature verified in
//! one parallel batch ([`VerifiedTx`]); the refusals of admission ([`AdmissionError`]); and the
//! question of which keys may act for an account ([`authority`]). Admission, the mempool,
//! execution and the driver all take these; none of them is needed to make one.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;

use bytes::Bytes;
use quorate_genesis::ChainParams;
use quorate_proto::crypto::{verify_batch, Address, Hash32, PublicKey, VerifyItem};
use quorate_proto::tx::{DecodeError, DecodedTx};
use quorate_proto::v1::Governance;
use quorate_proto::v1::{
    key_change, tx_body, Admin, GovernancePolicy, KeyChange, KeySet, RejectCode, Rejection,
    Transaction, ValidatorEntry,
};
use quorate_proto::{governance, keyset};

pub mod authority;

use authority::{authorize, deciding_set, AuthError};

/// What a transaction asks the chain to do, parsed and checked for shape.
#[derive(Clone, Debug, PartialEq)]
pub enum Payload {
    /// Native token transfer.
    Transfer {
        /// Recipient.
        to: Address,
        /// Amount (positive).
        amount: u64,
    },
    /// Contract deployment.
    Deploy {
        /// Wasm bytecode (shares the transaction's buffer).
        code: Bytes,
        /// Machine code from a trusted deployer, with the fingerprint of the engine that built it.
        machine_code: Option<(Bytes, [u8; 32])>,
        /// Arguments of `init`.
        init_args: Bytes,
    },
    /// Contract call.
    Call {
        /// Contract address.
        contract: Address,
        /// Method name.
        method: String,
        /// Encoded arguments.
        args: Bytes,
        /// Tokens sent with the call.
        value: u64,
    },
    /// Chain administration (admin only).
    Admin(AdminAction),
    /// A change to the signer's own key set.
    Keys(KeyChange),
    /// A proposal or an approval (members of the governance policy only; ADR 0016).
    Governance(GovAction),
}

/// A governance step.
#[derive(Clone, Debug, PartialEq)]
pub enum GovAction {
    /// Puts `action` to the members; counts as the proposer's approval.
    Propose {
        /// The action, parsed.
        action: AdminAction,
        /// The action as sent (kept in the proposal's record).
        raw: Admin,
        /// Heights it stays open after its own (0: the policy's lifetime).
        lifetime: u64,
        /// Free text.
        memo: String,
    },
    /// Approves the proposal with this number.
    Approve(u64),
}

/// An administrative change.
#[derive(Clone, Debug, PartialEq)]
pub enum AdminAction {
    /// Adds (`true`) or removes a trusted deployer.
    SetTrustedDeployer(Address, bool),
    /// Hands the admin role to another account.
    SetAdmin(Address),
    /// Adds a validator at the end of the set.
    AddValidator(ValidatorEntry),
    /// Removes the validator with this key.
    RemoveValidator(PublicKey),
    /// Puts a new validator in the place of the one with this key.
    ReplaceValidator(PublicKey, ValidatorEntry),
    /// Puts the chain under this governance policy (and removes the single admin).
    SetPolicy(GovernancePolicy),
    /// New values of governed chain parameters, by name.
    SetParams(Vec<(String, u64)>),
    /// New code for the system contract of this name (ADR 0018); no code cancels the
    /// upgrade to come.
    UpgradeContract {
        /// The system contract.
        name: String,
        /// Its new bytecode, or empty.
        code: Bytes,
    },
    /// Protocol `version` from `height` on (ADR 0019); height 0 cancels it.
    ActivateProtocol {
        /// The version (2 or more).
        version: u32,
        /// Its first height, or 0.
        height: u64,
    },
}

/// Most parameters one change names.
pub const MAX_PARAM_CHANGES: usize = 16;

/// Longest validator name, bytes.
pub const MAX_VALIDATOR_NAME: usize = 64;

fn validator_key(bytes: &[u8], what: &str) -> Result<PublicKey, AdmissionError> {
    PublicKey::from_slice(bytes).map_err(|e| AdmissionError::InvalidPayload(format!("{what}: {e}")))
}

fn validator_entry(e: &ValidatorEntry, what: &str) -> Result<ValidatorEntry, AdmissionError> {
    validator_key(&e.public_key, what)?;
    if e.name.len() > MAX_VALIDATOR_NAME {
        return Err(AdmissionError::InvalidPayload(format!(
            "{what}: name of {} bytes (at most {MAX_VALIDATOR_NAME})",
            e.name.len()
        )));
    }
    Ok(e.clone())
}

impl Payload {
    /// The contract bytecode it carries: a deploy's, or an upgrade's (sent by an admin or
    /// proposed to the members). Such a transaction may be as large as a deploy, and pays for
    /// its code as a deploy does.
    pub fn code(&self) -> Option<&Bytes> {
        match self {
            Self::Deploy { code, .. }
            | Self::Admin(AdminAction::UpgradeContract { code, .. })
            | Self::Governance(GovAction::Propose {
                action: AdminAction::UpgradeContract { code, .. },
                ..
            }) => Some(code),
            _ => None,
        }
    }

    /// Fuel the transaction needs before any contract code runs.
    pub fn intrinsic_fuel(&self, params: &ChainParams) -> u64 {
        let c = &params.contracts;
        let per_byte = |bytes: usize| {
            c.deploy_fuel
                .saturating_add(c.deploy_fuel_per_byte.saturating_mul(bytes as u64))
        };
        match self {
            // Machine code is stored as state (ADR 0010): its bytes are paid like bytecode's.
            Self::Deploy {
                code, machine_code, ..
            } => per_byte(code.len() + machine_code.as_ref().map_or(0, |(mc, _)| mc.len())),
            Self::Admin(_) | Self::Governance(_) if self.code().is_some() => {
                per_byte(self.code().map_or(0, Bytes::len))
            }
            Self::Transfer { .. } | Self::Admin(_) | Self::Keys(_) | Self::Governance(_) => {
                params.transfer_fuel
            }
            Self::Call { args, .. } => c
                .call_fuel
                .saturating_add(c.call_fuel_per_byte.saturating_mul(args.len() as u64)),
        }
    }

    /// Tokens the payload moves out of the signer's balance (besides the fee).
    pub fn amount_out(&self) -> u64 {
        match self {
            Self::Transfer { amount, .. } => *amount,
            Self::Call { value, .. } => *value,
            Self::Deploy { .. } | Self::Admin(_) | Self::Keys(_) | Self::Governance(_) => 0,
        }
    }
}

/// A transaction that passed the stateless checks and signature verification. Only admission
/// constructs it, so holding one proves the signature was checked; it is never checked again.
// `#[non_exhaustive]` would only stop other crates; the private field stops other modules too.
#[allow(clippy::manual_non_exhaustive)]
#[derive(Debug)]
pub struct VerifiedTx {
    /// The transaction as received.
    pub tx: Transaction,
    /// blake3 of the body bytes.
    pub hash: Hash32,
    /// Signer address.
    pub signer: Address,
    /// Signer's nonce for this transaction.
    pub nonce: u64,
    /// Fuel limit.
    pub fuel_limit: u64,
    /// The parsed payload.
    pub payload: Payload,
    /// Encoded size of the transaction.
    pub encoded_len: usize,
    /// The key set this transaction registers for a multi-signature address (canonical, and
    /// the signer address is derived from it).
    pub key_set: Option<KeySet>,
    /// Its leaf in the block's transaction root (`quorate_proto::tx::tx_leaf`).
    pub leaf: Hash32,
    /// Private: makes this type constructible only here, after verification.
    _verified: (),
}

impl VerifiedTx {
    /// Most the transaction can take from its signer: amount + fuel_limit × fuel_price.
    pub fn max_cost(&self, fuel_price: u64) -> u128 {
        u128::from(self.payload.amount_out()) + u128::from(self.fuel_limit) * u128::from(fuel_price)
    }

    /// The key of the first signature (decoding checked its length).
    pub fn primary_key(&self) -> [u8; 32] {
        self.tx
            .public_key
            .as_ref()
            .try_into()
            .expect("decode checked the key length")
    }

    /// Every key that signed, the first signature's first.
    pub fn signing_keys(&self) -> impl Iterator<Item = &[u8]> {
        std::iter::once(self.tx.public_key.as_ref())
            .chain(self.tx.cosignatures.iter().map(|c| c.public_key.as_ref()))
    }
}

/// Why a transaction was refused. Each variant carries the values a client needs.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum AdmissionError {
    /// Bytes do not decode or have wrong field lengths.
    #[error("malformed transaction: {0}")]
    Malformed(String),
    /// Too large.
    #[error("transaction is {size} bytes; the chain allows at most {max}")]
    Oversized {
        /// Size.
        size: usize,
        /// Limit.
        max: usize,
    },
    /// Another chain.
    #[error("transaction is for chain {got:?}; this is chain {expected:?}")]
    WrongChain {
        /// Chain id in the body.
        got: String,
        /// This chain.
        expected: String,
    },
    /// Signature invalid.
    #[error("signature does not verify for public key {0}")]
    BadSignature(String),
    /// Signer not derived from the key.
    #[error("signer {signer} is not the address {derived} of the signing key")]
    SignerMismatch {
        /// Body signer.
        signer: Address,
        /// Address of the key.
        derived: Address,
    },
    /// Replay.
    #[error("nonce {nonce} already used by account {account}; next is {next}")]
    NonceUsed {
        /// Account.
        account: Address,
        /// Offered nonce.
        nonce: u64,
        /// Expected next nonce.
        next: u64,
    },
    /// Too far ahead.
    #[error(
        "nonce {nonce} of account {account} is more than {window} ahead of its next nonce {next}"
    )]
    NonceTooFar {
        /// Account.
        account: Address,
        /// Offered nonce.
        nonce: u64,
        /// Next committed nonce.
        next: u64,
        /// Window kept by the mempool.
        window: u64,
    },
    /// Already pending.
    #[error("transaction {0} is already pending")]
    Duplicate(Hash32),
    /// Nonce taken by another pending tx.
    #[error("nonce {nonce} of account {account} is already taken by pending transaction {other}")]
    NoncePending {
        /// Account.
        account: Address,
        /// Nonce.
        nonce: u64,
        /// The pending transaction holding it.
        other: Hash32,
    },
    /// Not enough funds.
    #[error("account {account} has balance {balance}; it needs {needed} (amount + max fee {this_cost}, plus {pending_cost} for its pending transactions)")]
    InsufficientBalance {
        /// Account.
        account: Address,
        /// Committed balance.
        balance: u64,
        /// Total needed.
        needed: u128,
        /// This transaction's maximum cost.
        this_cost: u128,
        /// Pending transactions' maximum cost.
        pending_cost: u128,
    },
    /// Fuel limit too low.
    #[error("fuel limit {limit} is below the {needed} this transaction needs")]
    FuelLimitTooLow {
        /// Offered.
        limit: u64,
        /// Needed.
        needed: u64,
    },
    /// Fuel limit too high.
    #[error("fuel limit {limit} exceeds the chain maximum {max}")]
    FuelLimitTooHigh {
        /// Offered.
        limit: u64,
        /// Max.
        max: u64,
    },
    /// No known payload.
    #[error("transaction carries no payload this node knows")]
    UnknownPayload,
    /// Payload fields invalid.
    #[error("invalid payload: {0}")]
    InvalidPayload(String),
    /// Mempool full.
    #[error("mempool is full ({txs} transactions, {bytes} bytes)")]
    MempoolFull {
        /// Count.
        txs: usize,
        /// Bytes.
        bytes: usize,
    },
    /// Machine code from an account that is not a trusted deployer.
    #[error("account {0} is not a trusted deployer: only trusted deployers may send machine code")]
    NotTrusted(Address),
    /// Machine code built by an engine other than the chain's.
    #[error("machine code was built by engine {got}; the chain runs engine {expected}")]
    EngineMismatch {
        /// Fingerprint in the deploy.
        got: String,
        /// The chain's (or why there is none).
        expected: String,
    },
    /// Invalid contract code.
    #[error("invalid contract code: {0}")]
    InvalidCode(String),
    /// Admin action from someone else.
    #[error("account {signer} is not the chain admin{}", admin.map(|a| format!(" ({a})")).unwrap_or_else(|| " (the chain has none)".into()))]
    NotAdmin {
        /// Signer.
        signer: Address,
        /// The admin, if any.
        admin: Option<Address>,
    },
    /// Call to an address without a contract.
    #[error("no contract is deployed at {0}")]
    UnknownContract(Address),
    /// The signing keys' weights fall short of the action's threshold.
    #[error("keys of weight {signed} signed; {action} needs {needed}")]
    InsufficientWeight {
        /// Sum of the signing keys' weights.
        signed: u64,
        /// The threshold.
        needed: u32,
        /// The action in words ("a transfer of 5000").
        action: String,
    },
    /// A key signed twice.
    #[error("key {0} signed more than once")]
    DuplicateSignature(String),
    /// A signing key is not one of the account's.
    #[error("key {key} is not a key of account {account}")]
    ForeignKey {
        /// The account.
        account: Address,
        /// The key (hex).
        key: String,
    },
    /// A key set or key change breaks the key-set rules.
    #[error("invalid key set: {0}")]
    InvalidKeySet(String),
    /// An activation of a protocol version this release does not support (ADR 0019).
    #[error(
        "protocol version {version} is not supported by this node (its release supports 1 to \
         {supported}): upgrade the node before sending or approving its activation"
    )]
    UnsupportedProtocol {
        /// The version named.
        version: u32,
        /// The highest this release supports.
        supported: u32,
    },
    /// This node stopped deciding blocks before a protocol version its release does not
    /// support (ADR 0019): it keeps no transaction it could never include.
    #[error("this node stopped deciding blocks: {0}")]
    Halted(crate::protocol::Halt),
    /// A governance step from an account that is not a member of the chain's policy.
    #[error("account {signer} is not a member of the chain's governance policy{}", if *governed { "" } else { " (the chain has none)" })]
    NotMember {
        /// Signer.
        signer: Address,
        /// Whether the chain has a policy at all.
        governed: bool,
    },
}

impl From<AuthError> for AdmissionError {
    fn from(e: AuthError) -> Self {
        match e {
            AuthError::SignerMismatch { signer, derived } => {
                Self::SignerMismatch { signer, derived }
            }
            AuthError::ForeignKey { account, key } => Self::ForeignKey { account, key },
            AuthError::InsufficientWeight {
                signed,
                needed,
                action,
            } => Self::InsufficientWeight {
                signed,
                needed,
                action,
            },
        }
    }
}

impl AdmissionError {
    /// The wire code of this refusal.
    pub fn code(&self) -> RejectCode {
        match self {
            Self::Malformed(_) => RejectCode::Malformed,
            Self::Oversized { .. } => RejectCode::Oversized,
            Self::WrongChain { .. } => RejectCode::WrongChain,
            Self::BadSignature(_) => RejectCode::BadSignature,
            Self::SignerMismatch { .. } => RejectCode::SignerMismatch,
            Self::NonceUsed { .. } => RejectCode::NonceUsed,
            Self::NonceTooFar { .. } => RejectCode::NonceTooFar,
            Self::Duplicate(_) => RejectCode::Duplicate,
            Self::NoncePending { .. } => RejectCode::NoncePending,
            Self::InsufficientBalance { .. } => RejectCode::InsufficientBalance,
            Self::FuelLimitTooLow { .. } => RejectCode::FuelLimitTooLow,
            Self::FuelLimitTooHigh { .. } => RejectCode::FuelLimitTooHigh,
            Self::UnknownPayload => RejectCode::UnknownPayload,
            Self::InvalidPayload(_) => RejectCode::InvalidPayload,
            Self::MempoolFull { .. } => RejectCode::MempoolFull,
            Self::NotTrusted(_) => RejectCode::NotTrusted,
            Self::EngineMismatch { .. } => RejectCode::EngineMismatch,
            Self::InvalidCode(_) => RejectCode::InvalidCode,
            Self::NotAdmin { .. } => RejectCode::NotAdmin,
            Self::UnknownContract(_) => RejectCode::UnknownContract,
            Self::InsufficientWeight { .. } => RejectCode::InsufficientWeight,
            Self::DuplicateSignature(_) => RejectCode::DuplicateSignature,
            Self::ForeignKey { .. } => RejectCode::ForeignKey,
            Self::InvalidKeySet(_) => RejectCode::InvalidKeySet,
            Self::NotMember { .. } => RejectCode::NotMember,
            Self::UnsupportedProtocol { .. } | Self::Halted(_) => RejectCode::UnsupportedProtocol,
        }
    }

    /// The wire form.
    pub fn to_rejection(&self) -> Rejection {
        Rejection {
            code: self.code() as i32,
            message: self.to_string(),
        }
    }
}

impl From<DecodeError> for AdmissionError {
    fn from(e: DecodeError) -> Self {
        match e {
            DecodeError::TooLarge { size, max } => Self::Oversized { size, max },
            other => Self::Malformed(other.to_string()),
        }
    }
}

/// A bounded memory of recent refusals, so a status query can say why (nothing is persisted:
/// a refused transaction changes nothing).
pub struct RejectionLog {
    capacity: usize,
    order: VecDeque<Hash32>,
    reasons: HashMap<Hash32, AdmissionError>,
}

impl RejectionLog {
    /// A log keeping at most `capacity` refusals.
    pub fn new(capacity: usize) -> Self {
        Self {
            capacity,
            order: VecDeque::with_capacity(capacity),
            reasons: HashMap::with_capacity(capacity),
        }
    }

    /// Remembers why `hash` was refused (the oldest reason goes when full).
    pub fn record(&mut self, hash: Hash32, err: AdmissionError) {
        if self.capacity == 0 {
            return;
        }
        if self.reasons.insert(hash, err).is_none() {
            self.order.push_back(hash);
            if self.order.len() > self.capacity {
                if let Some(old) = self.order.pop_front() {
                    self.reasons.remove(&old);
                }
            }
        }
    }

    /// Why `hash` was refused, if it was recently.
    pub fn get(&self, hash: &Hash32) -> Option<AdmissionError> {
        self.reasons.get(hash).cloned()
    }
}

fn address(bytes: &[u8], what: &str) -> Result<Address, AdmissionError> {
    Address::from_slice(bytes).map_err(|e| AdmissionError::InvalidPayload(format!("{what}: {e}")))
}

/// Parses an administrative action and checks its shape.
pub(crate) fn admin_action(a: &Admin) -> Result<AdminAction, AdmissionError> {
    use quorate_proto::v1::admin::Action;
    let invalid = |m: String| Err(AdmissionError::InvalidPayload(m));
    Ok(match &a.action {
        None => return invalid("admin transaction carries no action".into()),
        Some(Action::SetTrustedDeployer(t)) => {
            AdminAction::SetTrustedDeployer(address(&t.account, "trusted deployer")?, t.trusted)
        }
        Some(Action::SetAdmin(new)) => AdminAction::SetAdmin(address(new, "new admin")?),
        Some(Action::AddValidator(v)) => {
            AdminAction::AddValidator(validator_entry(v, "validator to add")?)
        }
        Some(Action::RemoveValidator(k)) => {
            AdminAction::RemoveValidator(validator_key(k, "validator to remove")?)
        }
        Some(Action::ReplaceValidator(r)) => {
            let new = r.new.as_ref().ok_or_else(|| {
                AdmissionError::InvalidPayload("replace_validator carries no new validator".into())
            })?;
            AdminAction::ReplaceValidator(
                validator_key(&r.old_key, "validator to replace")?,
                validator_entry(new, "new validator")?,
            )
        }
        Some(Action::SetParams(changes)) => {
            let n = changes.values.len();
            if n == 0 || n > MAX_PARAM_CHANGES {
                return invalid(format!(
                    "a parameter change names 1 to {MAX_PARAM_CHANGES} parameters, not {n}"
                ));
            }
            let mut seen = std::collections::HashSet::new();
            for v in &changes.values {
                if !quorate_genesis::GOVERNED_PARAMS.contains(&v.name.as_str()) {
                    return invalid(
                        quorate_genesis::ParamChangeError::Unknown(v.name.clone()).to_string(),
                    );
                }
                if !seen.insert(v.name.as_str()) {
                    return invalid(format!("parameter {} is named twice", v.name));
                }
            }
            AdminAction::SetParams(
                changes
                    .values
                    .iter()
                    .map(|v| (v.name.clone(), v.value))
                    .collect(),
            )
        }
        Some(Action::UpgradeContract(u)) => {
            if u.name.is_empty() || u.name.len() > 64 {
                return invalid(format!(
                    "a system contract's name is 1 to 64 bytes, not {}",
                    u.name.len()
                ));
            }
            AdminAction::UpgradeContract {
                name: u.name.clone(),
                code: u.code.clone(),
            }
        }
        Some(Action::ActivateProtocol(a)) => {
            if a.version < 2 {
                return invalid(format!(
                    "protocol versions activated start at 2 (1 is the genesis version), not {}",
                    a.version
                ));
            }
            AdminAction::ActivateProtocol {
                version: a.version,
                height: a.height,
            }
        }
        Some(Action::SetPolicy(p)) => {
            governance::validate_policy(p)
                .map_err(|e| AdmissionError::InvalidPayload(format!("governance policy: {e}")))?;
            AdminAction::SetPolicy(p.clone())
        }
    })
}

/// Parses a governance step and checks its shape.
fn gov_action(g: &Governance) -> Result<GovAction, AdmissionError> {
    use quorate_proto::v1::governance::Action;
    let invalid = |m: String| Err(AdmissionError::InvalidPayload(m));
    Ok(match &g.action {
        None => return invalid("governance transaction carries no action".into()),
        Some(Action::Approve(0)) => return invalid("proposals are numbered from 1".into()),
        Some(Action::Approve(n)) => GovAction::Approve(*n),
        Some(Action::Propose(p)) => {
            let Some(raw) = &p.action else {
                return invalid("proposal carries no action".into());
            };
            if p.memo.len() > governance::MAX_MEMO {
                return invalid(format!(
                    "memo of {} bytes (at most {})",
                    p.memo.len(),
                    governance::MAX_MEMO
                ));
            }
            if p.lifetime > governance::MAX_LIFETIME {
                return invalid(format!(
                    "lifetime of {} heights (at most {})",
                    p.lifetime,
                    governance::MAX_LIFETIME
                ));
            }
            GovAction::Propose {
                action: admin_action(raw)?,
                raw: raw.clone(),
                lifetime: p.lifetime,
                memo: p.memo.clone(),
            }
        }
    })
}

/// Parses the payload and checks its shape (the rules that depend on chain parameters are
/// [`check_params`]).
fn parse_payload(d: &DecodedTx) -> Result<Payload, AdmissionError> {
    let invalid = |m: String| Err(AdmissionError::InvalidPayload(m));
    let payload = match &d.body.payload {
        None => return Err(AdmissionError::UnknownPayload),
        Some(tx_body::Payload::Transfer(t)) => {
            let to = address(&t.to, "transfer recipient")?;
            if t.amount == 0 {
                return invalid("transfer amount must be positive".into());
            }
            Payload::Transfer {
                to,
                amount: t.amount,
            }
        }
        Some(tx_body::Payload::Deploy(dep)) => {
            if dep.code.is_empty() {
                return invalid("deploy carries no code".into());
            }
            let machine_code = if dep.machine_code.is_empty() {
                None
            } else {
                let fp: [u8; 32] = dep.engine_fingerprint.as_ref().try_into().map_err(|_| {
                    AdmissionError::InvalidPayload(format!(
                        "engine fingerprint is {} bytes; expected 32",
                        dep.engine_fingerprint.len()
                    ))
                })?;
                Some((dep.machine_code.clone(), fp))
            };
            Payload::Deploy {
                code: dep.code.clone(),
                machine_code,
                init_args: dep.init_args.clone(),
            }
        }
        Some(tx_body::Payload::Call(c)) => {
            let contract = address(&c.contract, "call contract")?;
            if c.method.is_empty() || c.method.len() > 64 {
                return invalid(format!(
                    "method name must be 1-64 bytes, got {}",
                    c.method.len()
                ));
            }
            Payload::Call {
                contract,
                method: c.method.clone(),
                args: c.args.clone(),
                value: c.value,
            }
        }
        Some(tx_body::Payload::Admin(a)) => Payload::Admin(admin_action(a)?),
        Some(tx_body::Payload::Governance(g)) => Payload::Governance(gov_action(g)?),
        Some(tx_body::Payload::Keys(change)) => {
            let key = |k: &[u8]| {
                if k.len() == 32 {
                    Ok(())
                } else {
                    Err(AdmissionError::InvalidKeySet(format!(
                        "public key is {} bytes; expected 32",
                        k.len()
                    )))
                }
            };
            match &change.change {
                None => return Err(AdmissionError::InvalidKeySet("no change given".into())),
                Some(key_change::Change::AddKey(k) | key_change::Change::SetWeight(k)) => {
                    key(&k.public_key)?;
                    if k.weight == 0 {
                        return Err(AdmissionError::InvalidKeySet(
                            "weights are at least 1".into(),
                        ));
                    }
                }
                Some(key_change::Change::RemoveKey(k)) => key(k)?,
                Some(key_change::Change::SetThresholds(_)) => {}
            }
            Payload::Keys(change.clone())
        }
    };
    Ok(payload)
}

/// Every rule of a transaction that depends on chain parameters: its size for its kind, a
/// deploy's code size, and a fuel limit between its intrinsic fuel and the chain's maximum.
/// Admission and the stateless checks of fetched transactions ask it with the parameters they
/// judge by; execution asks it again with those of the block's height, for transactions
/// verified earlier (parameters change by governance, ADR 0017): one list, so a copy from the
/// mempool and a copy fetched from a peer meet the same verdict.
pub fn check_params(v: &VerifiedTx, params: &ChainParams) -> Result<(), AdmissionError> {
    let max = match v.payload.code() {
        Some(_) => params.contracts.max_deploy_tx_bytes as usize,
        None => params.max_tx_bytes as usize,
    };
    if v.encoded_len > max {
        return Err(AdmissionError::Oversized {
            size: v.encoded_len,
            max,
        });
    }
    if let Some(code) = v.payload.code() {
        let max = params.contracts.max_code_bytes as usize;
        if code.len() > max {
            return Err(AdmissionError::InvalidCode(format!(
                "code is {} bytes; the chain allows at most {max}",
                code.len()
            )));
        }
    }
    let needed = v.payload.intrinsic_fuel(params);
    if v.fuel_limit < needed {
        return Err(AdmissionError::FuelLimitTooLow {
            limit: v.fuel_limit,
            needed,
        });
    }
    if v.fuel_limit > params.max_fuel_per_tx {
        return Err(AdmissionError::FuelLimitTooHigh {
            limit: v.fuel_limit,
            max: params.max_fuel_per_tx,
        });
    }
    Ok(())
}

/// The most bytes any transaction may have (deploys have their own, larger cap).
pub(crate) fn decode_limit(params: &ChainParams) -> usize {
    params
        .max_tx_bytes
        .max(params.contracts.max_deploy_tx_bytes) as usize
}

/// Checks that need no state: chain id, signer, payload shape, fuel bounds.
pub(crate) fn check_stateless(
    d: DecodedTx,
    chain_id: &str,
    params: &ChainParams,
) -> Result<VerifiedTx, AdmissionError> {
    if d.body.chain_id != chain_id {
        return Err(AdmissionError::WrongChain {
            got: d.body.chain_id.clone(),
            expected: chain_id.to_owned(),
        });
    }
    // Which keys may sign is a question of state (the account's key set), asked after the
    // signatures verify; here only that no key signs twice.
    for (i, c) in d.tx.cosignatures.iter().enumerate() {
        if c.public_key == d.tx.public_key
            || d.tx.cosignatures[..i]
                .iter()
                .any(|o| o.public_key == c.public_key)
        {
            return Err(AdmissionError::DuplicateSignature(hex::encode(
                &c.public_key,
            )));
        }
    }
    let key_set = match &d.body.key_set {
        None => None,
        Some(set) => {
            keyset::validate(set).map_err(|e| AdmissionError::InvalidKeySet(e.to_string()))?;
            let derived = keyset::address(set);
            if derived != d.signer {
                return Err(AdmissionError::InvalidKeySet(format!(
                    "signer {} is not the address {derived} of the key set it carries",
                    d.signer
                )));
            }
            Some(set.clone())
        }
    };
    let payload = parse_payload(&d)?;
    let fuel_limit = d.body.fuel_limit;
    let v = VerifiedTx {
        nonce: d.body.nonce,
        leaf: quorate_proto::tx::tx_leaf(&d.hash, &d.tx),
        tx: d.tx,
        hash: d.hash,
        signer: d.signer,
        fuel_limit,
        payload,
        encoded_len: d.encoded_len,
        key_set,
        _verified: (),
    };
    check_params(&v, params)?;
    Ok(v)
}

/// The signing keys may act for the account (against its committed key set, `None` for a
/// single-key account), and a key change leaves a key set no threshold of which is out of
/// reach.
pub(crate) fn check_authority(
    v: &VerifiedTx,
    committed: Option<&KeySet>,
) -> Result<(), AdmissionError> {
    let set = deciding_set(v, committed);
    authorize(v, set)?;
    if let Payload::Keys(change) = &v.payload {
        let current = set
            .cloned()
            .unwrap_or_else(|| keyset::single(&v.primary_key()));
        keyset::apply_change(&current, change)
            .map_err(|e| AdmissionError::InvalidKeySet(e.to_string()))?;
    }
    Ok(())
}

/// A `VerifiedTx` whose signature was *not* verified (stateless checks only): for a Byzantine
/// validator's blocks in tests; honest nodes verify every transaction of such a block.
#[cfg(any(test, feature = "byzantine"))]
pub fn forge_verified(tx: Transaction, chain_id: &str, params: &ChainParams) -> Option<VerifiedTx> {
    let d = DecodedTx::from_transaction(tx, decode_limit(params)).ok()?;
    check_stateless(d, chain_id, params).ok()
}

/// Test-only: stateless checks plus a strict signature check, without the mempool.
#[cfg(test)]
pub(crate) fn verify_one(
    tx: Transaction,
    chain_id: &str,
    params: &ChainParams,
) -> Result<VerifiedTx, AdmissionError> {
    let mut v = verify_block_txs(vec![tx], chain_id, params).map_err(|(_, e)| e)?;
    Ok(Arc::into_inner(v.remove(0)).expect("only reference"))
}

/// `verify_batch`, with its size and time in the metrics.
fn timed_verify_batch(items: &[VerifyItem<'_>]) -> Vec<bool> {
    if items.is_empty() {
        return Vec::new();
    }
    let started = std::time::Instant::now();
    let valid = verify_batch(items);
    let m = crate::metrics::get();
    m.signature_batch.observe(items.len() as f64);
    m.signature_seconds
        .observe(crate::metrics::seconds_since(started));
    valid
}

/// Verifies every signature of `txs` (cosignatures too) in one parallel batch; for each
/// transaction, `Err` with the first key whose signature fails.
pub(crate) fn verify_signatures(txs: &[&VerifiedTx]) -> Vec<Result<(), String>> {
    let messages: Vec<_> = txs
        .iter()
        .map(|v| quorate_proto::tx::signing_message(&v.hash))
        .collect();
    let mut items: Vec<VerifyItem<'_>> = Vec::with_capacity(txs.len());
    let mut owner: Vec<usize> = Vec::with_capacity(txs.len());
    for (i, (v, m)) in txs.iter().zip(&messages).enumerate() {
        items.push(VerifyItem {
            public_key: &v.tx.public_key,
            message: m,
            signature: &v.tx.signature,
        });
        owner.push(i);
        for c in &v.tx.cosignatures {
            items.push(VerifyItem {
                public_key: &c.public_key,
                message: m,
                signature: &c.signature,
            });
            owner.push(i);
        }
    }
    let valid = timed_verify_batch(&items);
    let mut out = vec![Ok(()); txs.len()];
    for ((ok, &i), item) in valid.iter().zip(&owner).zip(&items) {
        if !ok && out[i].is_ok() {
            out[i] = Err(hex::encode(item.public_key));
        }
    }
    out
}

/// Checks the transactions of a block that did not come through this node's admission (a
/// stored or received block): stateless rules and one parallel signature batch. On failure,
/// names the position of the first bad transaction.
pub fn verify_block_txs(
    txs: Vec<Transaction>,
    chain_id: &str,
    params: &ChainParams,
) -> Result<Vec<Arc<VerifiedTx>>, (usize, AdmissionError)> {
    let mut checked = Vec::with_capacity(txs.len());
    for (i, tx) in txs.into_iter().enumerate() {
        let d = DecodedTx::from_transaction(tx, decode_limit(params)).map_err(|e| (i, e.into()))?;
        checked.push(check_stateless(d, chain_id, params).map_err(|e| (i, e))?);
    }
    let refs: Vec<&VerifiedTx> = checked.iter().collect();
    if let Some((i, Err(key))) = verify_signatures(&refs)
        .into_iter()
        .enumerate()
        .find(|(_, r)| r.is_err())
    {
        return Err((i, AdmissionError::BadSignature(key)));
    }
    Ok(checked.into_iter().map(Arc::new).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rejection_log_is_bounded() {
        let mut log = RejectionLog::new(2);
        for i in 0..5u8 {
            log.record(Hash32([i; 32]), AdmissionError::UnknownPayload);
        }
        assert!(log.get(&Hash32([0; 32])).is_none());
        assert!(log.get(&Hash32([4; 32])).is_some());
        assert_eq!(log.order.len(), 2);
    }
}
