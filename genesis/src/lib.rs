//! The genesis of a Quorate chain: its id, validator set, funded accounts and the chain
//! parameters every validator must share; plus key files, the generator behind
//! `quorate genesis new`, and the embedded dev genesis behind `quorate dev`.

pub mod ceremony;
mod dev;
mod keyfile;
pub mod system;

use std::collections::HashSet;
use std::path::Path;

use quorate_proto::certificate::{ValidatorSet, MAX_VALIDATORS};
use quorate_proto::crypto::{Address, Hash32, KeyError, PublicKey};
use quorate_proto::Keypair;
use serde::{Deserialize, Serialize};

pub use dev::{
    build_dev_genesis, dev_account_key, dev_genesis, dev_validator_key, DEV_ACCOUNTS, DEV_CHAIN_ID,
};
pub use keyfile::{KeyFile, KeyFileError};

/// Longest chain id accepted.
pub const CHAIN_ID_MAX_LEN: usize = 64;

/// A chain's genesis file (JSON).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Genesis {
    /// Chain id carried by every transaction and signed into every commit.
    pub chain_id: String,
    /// Time of the chain's start, milliseconds since the Unix epoch; block 1 is no earlier.
    pub genesis_time_ms: u64,
    /// Validators in index order (indices are used in commit certificates).
    pub validators: Vec<GenesisValidator>,
    /// Accounts funded at height 0.
    #[serde(default)]
    pub accounts: Vec<GenesisAccount>,
    /// Chain parameters.
    #[serde(default)]
    pub params: ChainParams,
    /// The admin account (address, hex): the only one that may change the trusted deployers
    /// or hand the role on. No admin means the chain has no administration.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub admin: Option<String>,
    /// Governance by the organisations (ADR 0016): who approves administrative actions, and
    /// how many of them each kind needs. A chain has this or an `admin`, not both.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub governance: Option<GenesisGovernance>,
    /// Accounts (addresses, hex) allowed to deploy precompiled machine code.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub trusted_deployers: Vec<String>,
    /// The contract engine of the chain (its fingerprint, hex; ADR 0010): machine code a
    /// trusted deployer sends must be built by it, and every validator must run it. None: the
    /// chain takes no machine code, and its validators may run any engine.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub engine_fingerprint: Option<String>,
    /// System contracts deployed at genesis, by name and code hash (this release's code for
    /// each name must have that hash).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub system_contracts: Vec<GenesisContract>,
    /// Certificate authorities of the certificates system contract (addresses, hex); its admin
    /// is the chain admin.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub certificate_authorities: Vec<String>,
}

/// The governance policy a chain starts with (`GovernancePolicy` in the state).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GenesisGovernance {
    /// The organisations, each with the account that approves for it.
    pub members: Vec<GenesisMember>,
    /// Approvals a validator-set change needs.
    pub validators: u32,
    /// Approvals a trusted-deployer change needs.
    pub deployers: u32,
    /// Approvals a chain-parameter change needs.
    pub params: u32,
    /// Approvals an upgrade needs.
    pub upgrades: u32,
    /// Approvals a change of the policy itself (or a hand-over to one admin) needs.
    pub policy: u32,
    /// Most heights a proposal stays open.
    pub proposal_lifetime: u64,
}

/// A member of the genesis policy.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GenesisMember {
    /// The organisation.
    pub name: String,
    /// Its approving account (address, hex).
    pub address: String,
}

impl GenesisGovernance {
    /// `k` approvals of every kind from `members`, proposals open for `lifetime` heights.
    pub fn uniform(members: Vec<GenesisMember>, k: u32, lifetime: u64) -> Self {
        Self {
            members,
            validators: k,
            deployers: k,
            params: k,
            upgrades: k,
            policy: k,
            proposal_lifetime: lifetime,
        }
    }

    /// The field holding the approvals `kind` needs.
    pub fn threshold_mut(&mut self, kind: quorate_proto::governance::Kind) -> &mut u32 {
        use quorate_proto::governance::Kind;
        match kind {
            Kind::Validators => &mut self.validators,
            Kind::Deployers => &mut self.deployers,
            Kind::Params => &mut self.params,
            Kind::Upgrades => &mut self.upgrades,
            Kind::Policy => &mut self.policy,
        }
    }

    /// The policy as the state holds it (addresses must parse: see [`Genesis::validate`]).
    pub fn to_policy(&self) -> Result<quorate_proto::v1::GovernancePolicy, GenesisError> {
        let members = self
            .members
            .iter()
            .map(|m| {
                let address =
                    Address::from_hex(&m.address).map_err(|source| GenesisError::RoleAddress {
                        role: "governance member",
                        address: m.address.clone(),
                        source,
                    })?;
                Ok(quorate_proto::v1::GovernanceMember {
                    name: m.name.clone(),
                    address: address.0.to_vec().into(),
                })
            })
            .collect::<Result<_, GenesisError>>()?;
        let policy = quorate_proto::v1::GovernancePolicy {
            members,
            validators: self.validators,
            deployers: self.deployers,
            params: self.params,
            upgrades: self.upgrades,
            policy: self.policy,
            proposal_lifetime: self.proposal_lifetime,
        };
        quorate_proto::governance::validate_policy(&policy)?;
        Ok(policy)
    }
}

/// A system contract deployed at genesis.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GenesisContract {
    /// The system contract's name (`remittance`, `credit-escrow`, `certificates`,
    /// `device-permissions`).
    pub name: String,
    /// blake3 of its wasm bytecode, hex.
    pub code_hash: String,
}

/// A validator listed in genesis.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GenesisValidator {
    /// Operator-facing name.
    pub name: String,
    /// ed25519 public key, hex.
    pub public_key: String,
}

/// An account funded at genesis.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GenesisAccount {
    /// Optional label.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub name: String,
    /// Address, hex (40 digits).
    pub address: String,
    /// Initial balance.
    pub balance: u64,
}

/// Parameters every validator must agree on.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ChainParams {
    /// Largest encoded transaction accepted, bytes.
    pub max_tx_bytes: u32,
    /// Most transactions in one block.
    pub block_max_txs: u32,
    /// Largest sum of encoded transaction sizes in one block, bytes.
    pub block_max_bytes: u32,
    /// Fuel a native transfer costs.
    pub transfer_fuel: u64,
    /// Most fuel one transaction may ask for.
    pub max_fuel_per_tx: u64,
    /// Tokens charged per unit of fuel used (fees are burned).
    pub fuel_price: u64,
    /// Contract engine limits and prices.
    pub contracts: ContractParams,
    /// A validator set change decided at height h comes into force at h + this (at least
    /// 3, so that every validator knows the set of a height two heights before deciding it).
    pub validator_set_delay: u64,
}

/// Contract parameters every validator must agree on: size caps, intrinsic fuel of deploys
/// and calls, engine limits and host-call prices.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ContractParams {
    /// Largest contract bytecode, bytes.
    pub max_code_bytes: u32,
    /// Largest deploy transaction (bytecode plus machine code), bytes.
    pub max_deploy_tx_bytes: u32,
    /// Fuel of a deploy before its init, plus `deploy_fuel_per_byte` per bytecode byte.
    pub deploy_fuel: u64,
    /// Fuel per bytecode byte of a deploy (validation and compilation).
    pub deploy_fuel_per_byte: u64,
    /// Fuel of a call before the contract runs, plus `call_fuel_per_byte` per argument byte.
    pub call_fuel: u64,
    /// Fuel per argument byte of a call.
    pub call_fuel_per_byte: u64,
    /// Largest linear memory of a contract instance, bytes (a multiple of 65536).
    pub max_memory_bytes: u32,
    /// Wasm stack of a call, bytes.
    pub max_stack_bytes: u32,
    /// Deepest chain of contract-to-contract calls.
    pub max_call_depth: u32,
    /// Fuel of every host call.
    pub host_call_fuel: u64,
    /// Fuel per byte moved between host and contract memory.
    pub host_byte_fuel: u64,
    /// Fuel of a storage read.
    pub storage_read_fuel: u64,
    /// Fuel of a storage write or removal.
    pub storage_write_fuel: u64,
    /// Fuel per key-plus-value byte written.
    pub storage_write_byte_fuel: u64,
    /// Fuel of an emitted event.
    pub event_fuel: u64,
    /// Fuel of a balance read or transfer by a contract.
    pub balance_fuel: u64,
    /// Fuel of a contract-to-contract call.
    pub nested_call_fuel: u64,
    /// Fuel of a blake3 hash by a contract, plus `hash_byte_fuel` per byte.
    pub hash_fuel: u64,
    /// Fuel per byte hashed.
    pub hash_byte_fuel: u64,
}

impl Default for ContractParams {
    fn default() -> Self {
        Self {
            max_code_bytes: 512 * 1024,
            max_deploy_tx_bytes: 8 * 1024 * 1024,
            deploy_fuel: 100_000,
            deploy_fuel_per_byte: 20,
            call_fuel: 5_000,
            call_fuel_per_byte: 2,
            max_memory_bytes: 16 << 20,
            max_stack_bytes: 512 * 1024,
            max_call_depth: 8,
            host_call_fuel: 20,
            host_byte_fuel: 1,
            storage_read_fuel: 200,
            storage_write_fuel: 1_000,
            storage_write_byte_fuel: 10,
            event_fuel: 200,
            balance_fuel: 200,
            nested_call_fuel: 2_000,
            hash_fuel: 100,
            hash_byte_fuel: 1,
        }
    }
}

impl Default for ChainParams {
    fn default() -> Self {
        Self {
            max_tx_bytes: 128 * 1024,
            block_max_txs: 10_000,
            block_max_bytes: 16 * 1024 * 1024,
            transfer_fuel: 1_000,
            max_fuel_per_tx: 100_000_000,
            fuel_price: 1,
            contracts: ContractParams::default(),
            validator_set_delay: 10,
        }
    }
}

/// Why a genesis file cannot start a chain.
#[derive(Debug, thiserror::Error)]
pub enum GenesisError {
    /// File could not be read or written.
    #[error("genesis file {path}: {source}")]
    Io {
        /// The path.
        path: String,
        /// The error.
        source: std::io::Error,
    },
    /// Not valid JSON for the genesis format.
    #[error("genesis is not valid: {0}")]
    Parse(#[from] serde_json::Error),
    /// The chain id is empty, too long or has characters outside `[A-Za-z0-9._-]`.
    #[error("chain id {0:?} must be 1-64 characters of A-Z a-z 0-9 . _ -")]
    ChainId(String),
    /// No validators.
    #[error("genesis lists no validators")]
    NoValidators,
    /// More validators than a set may hold.
    #[error("genesis lists {0} validators; at most {MAX_VALIDATORS} are allowed")]
    TooManyValidators(usize),
    /// A validator's key is not valid.
    #[error("validator {name}: {source}")]
    ValidatorKey {
        /// Validator name.
        name: String,
        /// Why.
        source: KeyError,
    },
    /// The same validator key or name appears twice.
    #[error("validator {0} is listed twice")]
    DuplicateValidator(String),
    /// An account address is not valid.
    #[error("account {address}: {source}")]
    AccountAddress {
        /// The address text.
        address: String,
        /// Why.
        source: KeyError,
    },
    /// The same account appears twice.
    #[error("account {0} is listed twice")]
    DuplicateAccount(String),
    /// An admin or trusted-deployer address is not valid.
    #[error("{role} {address}: {source}")]
    RoleAddress {
        /// Which role.
        role: &'static str,
        /// The address text.
        address: String,
        /// Why.
        source: KeyError,
    },
    /// The engine fingerprint is not 32 bytes of hex.
    #[error("engine_fingerprint {0:?} must be 64 hex digits (32 bytes)")]
    EngineFingerprint(String),
    /// A system contract this release does not carry, or carries with other code.
    #[error("system contract {name:?}: {why}")]
    SystemContract {
        /// Its name.
        name: String,
        /// What is wrong.
        why: String,
    },
    /// The governance policy breaks a rule (the rule is the message, not a separate cause).
    #[error("governance: {0}")]
    Governance(quorate_proto::governance::PolicyError),
    /// Both a single admin and a governance policy.
    #[error("a genesis has an admin or a governance policy, not both")]
    AdminAndGovernance,
    /// Balances sum past u64.
    #[error("total genesis balance overflows u64")]
    SupplyOverflow,
    /// A parameter is out of range.
    #[error("parameter {name} = {value}: {why}")]
    Param {
        /// Parameter name.
        name: &'static str,
        /// Its value.
        value: u64,
        /// What it must be.
        why: &'static str,
    },
}

impl From<quorate_proto::governance::PolicyError> for GenesisError {
    fn from(e: quorate_proto::governance::PolicyError) -> Self {
        Self::Governance(e)
    }
}

impl Genesis {
    /// Reads and validates a genesis file.
    pub fn load(path: &Path) -> Result<Self, GenesisError> {
        let text = std::fs::read_to_string(path).map_err(|source| GenesisError::Io {
            path: path.display().to_string(),
            source,
        })?;
        Self::from_json(&text)
    }

    /// Parses and validates genesis JSON.
    pub fn from_json(text: &str) -> Result<Self, GenesisError> {
        let g: Genesis = serde_json::from_str(text)?;
        g.validate()?;
        Ok(g)
    }

    /// Pretty JSON, as written to disk.
    pub fn to_json(&self) -> String {
        let mut s = serde_json::to_string_pretty(self).expect("genesis always serializes");
        s.push('\n');
        s
    }

    /// Writes the genesis as JSON.
    pub fn save(&self, path: &Path) -> Result<(), GenesisError> {
        std::fs::write(path, self.to_json()).map_err(|source| GenesisError::Io {
            path: path.display().to_string(),
            source,
        })
    }

    /// Identifies this genesis: blake3 of its compact JSON, so formatting does not matter.
    pub fn hash(&self) -> Hash32 {
        Hash32::of(&serde_json::to_vec(self).expect("genesis always serializes"))
    }

    /// Checks every cross-field rule once, at load.
    pub fn validate(&self) -> Result<(), GenesisError> {
        let id_ok = !self.chain_id.is_empty()
            && self.chain_id.len() <= CHAIN_ID_MAX_LEN
            && self
                .chain_id
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b));
        if !id_ok {
            return Err(GenesisError::ChainId(self.chain_id.clone()));
        }
        if self.validators.is_empty() {
            return Err(GenesisError::NoValidators);
        }
        if self.validators.len() > MAX_VALIDATORS {
            return Err(GenesisError::TooManyValidators(self.validators.len()));
        }
        let mut keys = HashSet::new();
        let mut names = HashSet::new();
        for v in &self.validators {
            let key = PublicKey::from_hex(&v.public_key).map_err(|source| {
                GenesisError::ValidatorKey {
                    name: v.name.clone(),
                    source,
                }
            })?;
            if !keys.insert(key.0) || !names.insert(v.name.as_str()) {
                return Err(GenesisError::DuplicateValidator(v.name.clone()));
            }
        }
        let mut addrs = HashSet::new();
        let mut supply: u64 = 0;
        for a in &self.accounts {
            let addr =
                Address::from_hex(&a.address).map_err(|source| GenesisError::AccountAddress {
                    address: a.address.clone(),
                    source,
                })?;
            if !addrs.insert(addr) {
                return Err(GenesisError::DuplicateAccount(a.address.clone()));
            }
            supply = supply
                .checked_add(a.balance)
                .ok_or(GenesisError::SupplyOverflow)?;
        }
        let role = |role: &'static str, address: &String| {
            Address::from_hex(address).map_err(|source| GenesisError::RoleAddress {
                role,
                address: address.clone(),
                source,
            })
        };
        if let Some(admin) = &self.admin {
            role("admin", admin)?;
        }
        if let Some(g) = &self.governance {
            if self.admin.is_some() {
                return Err(GenesisError::AdminAndGovernance);
            }
            g.to_policy()?;
        }
        let mut trusted = HashSet::new();
        for t in &self.trusted_deployers {
            if !trusted.insert(role("trusted deployer", t)?) {
                return Err(GenesisError::DuplicateAccount(t.clone()));
            }
        }
        if let Some(fp) = &self.engine_fingerprint {
            if fp.len() != 64 || hex::decode(fp).is_err() {
                return Err(GenesisError::EngineFingerprint(fp.clone()));
            }
        }
        let mut authorities = HashSet::new();
        for a in &self.certificate_authorities {
            if !authorities.insert(role("certificate authority", a)?) {
                return Err(GenesisError::DuplicateAccount(a.clone()));
            }
        }
        let mut names = HashSet::new();
        for c in &self.system_contracts {
            let err = |why: String| GenesisError::SystemContract {
                name: c.name.clone(),
                why,
            };
            if !names.insert(c.name.as_str()) {
                return Err(err("listed twice".into()));
            }
            let code = system::system_contract(&c.name).ok_or_else(|| {
                err(format!(
                    "not a system contract of this release (it has {})",
                    system::SYSTEM_CONTRACTS.map(|s| s.name).join(", ")
                ))
            })?;
            if c.code_hash != code.code_hash().to_hex() {
                return Err(err(format!(
                    "genesis names code {} but this release carries {}: run the release the chain was made with",
                    c.code_hash,
                    code.code_hash()
                )));
            }
        }
        self.params.validate()
    }

    /// The admin account, if any. Call on a validated genesis.
    pub fn admin_address(&self) -> Option<Address> {
        self.admin
            .as_ref()
            .map(|a| Address::from_hex(a).expect("validated genesis"))
    }

    /// The governance policy, if any. Call on a validated genesis.
    pub fn governance_policy(&self) -> Option<quorate_proto::v1::GovernancePolicy> {
        self.governance
            .as_ref()
            .map(|g| g.to_policy().expect("validated genesis"))
    }

    /// The certificate authorities. Call on a validated genesis.
    pub fn certificate_authority_addresses(&self) -> Vec<Address> {
        self.certificate_authorities
            .iter()
            .map(|a| Address::from_hex(a).expect("validated genesis"))
            .collect()
    }

    /// The system contracts to deploy, with their code. Call on a validated genesis.
    pub fn system_contract_code(&self) -> Vec<&'static system::SystemContract> {
        self.system_contracts
            .iter()
            .map(|c| system::system_contract(&c.name).expect("validated genesis"))
            .collect()
    }

    /// The trusted deployers. Call on a validated genesis.
    pub fn trusted_deployer_addresses(&self) -> Vec<Address> {
        self.trusted_deployers
            .iter()
            .map(|a| Address::from_hex(a).expect("validated genesis"))
            .collect()
    }

    /// The chain's engine fingerprint, if it names one. Call on a validated genesis.
    pub fn engine(&self) -> Option<[u8; 32]> {
        self.engine_fingerprint.as_ref().map(|fp| {
            hex::decode(fp)
                .expect("validated genesis")
                .try_into()
                .expect("validated genesis")
        })
    }

    /// The validator set (order = genesis order). Call on a validated genesis.
    pub fn validator_set(&self) -> ValidatorSet {
        ValidatorSet::new(
            self.validators
                .iter()
                .map(|v| PublicKey::from_hex(&v.public_key).expect("validated genesis"))
                .collect(),
        )
    }

    /// The genesis validators as set entries (key, name), in index order. Call on a validated
    /// genesis.
    pub fn validator_entries(&self) -> Vec<quorate_proto::v1::ValidatorEntry> {
        self.validators
            .iter()
            .map(|v| quorate_proto::v1::ValidatorEntry {
                public_key: PublicKey::from_hex(&v.public_key)
                    .expect("validated genesis")
                    .0
                    .to_vec()
                    .into(),
                name: v.name.clone(),
            })
            .collect()
    }

    /// Funded accounts as (address, balance). Call on a validated genesis.
    pub fn balances(&self) -> Vec<(Address, u64)> {
        self.accounts
            .iter()
            .map(|a| {
                (
                    Address::from_hex(&a.address).expect("validated genesis"),
                    a.balance,
                )
            })
            .collect()
    }
}

/// The chain parameters governance may change (`set_params`, ADR 0017), by name. The contract
/// engine's limits (`contracts.max_code_bytes` among them) and host-call prices are not: they
/// make the engine (its fingerprint), which a protocol upgrade changes.
pub const GOVERNED_PARAMS: [&str; 12] = [
    "max_tx_bytes",
    "block_max_txs",
    "block_max_bytes",
    "transfer_fuel",
    "max_fuel_per_tx",
    "fuel_price",
    "validator_set_delay",
    "contracts.max_deploy_tx_bytes",
    "contracts.deploy_fuel",
    "contracts.deploy_fuel_per_byte",
    "contracts.call_fuel",
    "contracts.call_fuel_per_byte",
];

/// The least `max_tx_bytes` a parameter change may set.
pub const MIN_GOVERNED_TX_BYTES: u32 = 16_384;

/// Why a parameter change is refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ParamChangeError {
    /// A name that is not a governed parameter.
    #[error("{0:?} is not a parameter governance changes (it changes: {list})", list = GOVERNED_PARAMS.join(", "))]
    Unknown(String),
    /// A value too large for the parameter.
    #[error("{name} = {value} does not fit the parameter (at most {max})")]
    TooLarge {
        /// The parameter.
        name: String,
        /// The value.
        value: u64,
        /// Its largest.
        max: u64,
    },
    /// The parameters that would result break a genesis rule.
    #[error("{0}")]
    Invalid(String),
    /// Blocks or transactions larger than the genesis allows: every validator's p2p message
    /// limit was checked against the genesis values only.
    #[error("{name} = {value} is above the genesis value {ceiling}: blocks and transactions may not outgrow what every validator's p2p limits were set for")]
    AboveCeiling {
        /// The parameter.
        name: &'static str,
        /// The value.
        value: u64,
        /// The genesis value.
        ceiling: u64,
    },
}

impl ChainParams {
    /// The value of the governed parameter `name`.
    pub fn governed(&self, name: &str) -> Option<u64> {
        let c = &self.contracts;
        Some(match name {
            "max_tx_bytes" => self.max_tx_bytes.into(),
            "block_max_txs" => self.block_max_txs.into(),
            "block_max_bytes" => self.block_max_bytes.into(),
            "transfer_fuel" => self.transfer_fuel,
            "max_fuel_per_tx" => self.max_fuel_per_tx,
            "fuel_price" => self.fuel_price,
            "validator_set_delay" => self.validator_set_delay,
            "contracts.max_deploy_tx_bytes" => c.max_deploy_tx_bytes.into(),
            "contracts.deploy_fuel" => c.deploy_fuel,
            "contracts.deploy_fuel_per_byte" => c.deploy_fuel_per_byte,
            "contracts.call_fuel" => c.call_fuel,
            "contracts.call_fuel_per_byte" => c.call_fuel_per_byte,
            _ => return None,
        })
    }

    /// Every governed parameter with its value, in [`GOVERNED_PARAMS`] order.
    pub fn governed_values(&self) -> Vec<(&'static str, u64)> {
        GOVERNED_PARAMS
            .iter()
            .map(|n| (*n, self.governed(n).expect("a governed name")))
            .collect()
    }

    /// These parameters with `changes` applied (each a governed name and its new value), the
    /// result checked by the genesis rules and against `ceiling` (the genesis parameters: no
    /// block or transaction may grow past them).
    pub fn with_changes(
        &self,
        changes: &[(&str, u64)],
        ceiling: &ChainParams,
    ) -> Result<ChainParams, ParamChangeError> {
        let mut next = self.clone();
        for &(name, value) in changes {
            let narrow = |v: u64| {
                u32::try_from(v).map_err(|_| ParamChangeError::TooLarge {
                    name: name.to_owned(),
                    value: v,
                    max: u32::MAX.into(),
                })
            };
            let c = &mut next.contracts;
            match name {
                "max_tx_bytes" => next.max_tx_bytes = narrow(value)?,
                "block_max_txs" => next.block_max_txs = narrow(value)?,
                "block_max_bytes" => next.block_max_bytes = narrow(value)?,
                "transfer_fuel" => next.transfer_fuel = value,
                "max_fuel_per_tx" => next.max_fuel_per_tx = value,
                "fuel_price" => next.fuel_price = value,
                "validator_set_delay" => next.validator_set_delay = value,
                "contracts.max_deploy_tx_bytes" => c.max_deploy_tx_bytes = narrow(value)?,
                "contracts.deploy_fuel" => c.deploy_fuel = value,
                "contracts.deploy_fuel_per_byte" => c.deploy_fuel_per_byte = value,
                "contracts.call_fuel" => c.call_fuel = value,
                "contracts.call_fuel_per_byte" => c.call_fuel_per_byte = value,
                other => return Err(ParamChangeError::Unknown(other.to_owned())),
            }
        }
        next.validate()
            .map_err(|e| ParamChangeError::Invalid(e.to_string()))?;
        // Governance's own transactions (a policy of 64 members, a change of every parameter)
        // must always fit, or a change could lock the members out: no change lowers
        // `max_tx_bytes` below the floor.
        if next.max_tx_bytes < MIN_GOVERNED_TX_BYTES && next.max_tx_bytes < self.max_tx_bytes {
            return Err(ParamChangeError::Invalid(format!(
                "max_tx_bytes = {}: a change may not lower it below {MIN_GOVERNED_TX_BYTES}, so that governance transactions always fit",
                next.max_tx_bytes
            )));
        }
        for (name, value, top) in [
            (
                "max_tx_bytes",
                next.max_tx_bytes.into(),
                ceiling.max_tx_bytes.into(),
            ),
            (
                "block_max_txs",
                next.block_max_txs.into(),
                ceiling.block_max_txs.into(),
            ),
            (
                "block_max_bytes",
                next.block_max_bytes.into(),
                ceiling.block_max_bytes.into(),
            ),
            (
                "contracts.max_deploy_tx_bytes",
                next.contracts.max_deploy_tx_bytes.into(),
                ceiling.contracts.max_deploy_tx_bytes.into(),
            ),
        ] {
            if value > top {
                return Err(ParamChangeError::AboveCeiling {
                    name,
                    value,
                    ceiling: top,
                });
            }
        }
        Ok(next)
    }

    fn validate(&self) -> Result<(), GenesisError> {
        let p = |name, value: u64, why| Err(GenesisError::Param { name, value, why });
        if self.max_tx_bytes < 256 {
            return p(
                "max_tx_bytes",
                self.max_tx_bytes.into(),
                "must be at least 256",
            );
        }
        if self.block_max_txs == 0 {
            return p("block_max_txs", 0, "must be positive");
        }
        if !(3..=100_000).contains(&self.validator_set_delay) {
            return p(
                "validator_set_delay",
                self.validator_set_delay,
                "must be in 3..=100000",
            );
        }
        if self.block_max_bytes < self.max_tx_bytes {
            return p(
                "block_max_bytes",
                self.block_max_bytes.into(),
                "must be at least max_tx_bytes",
            );
        }
        if self.transfer_fuel == 0 || self.transfer_fuel > self.max_fuel_per_tx {
            return p(
                "transfer_fuel",
                self.transfer_fuel,
                "must be in 1..=max_fuel_per_tx",
            );
        }
        if self.max_fuel_per_tx.checked_mul(self.fuel_price).is_none() {
            return p(
                "fuel_price",
                self.fuel_price,
                "max_fuel_per_tx * fuel_price overflows u64",
            );
        }
        self.contracts.validate(self)
    }
}

impl ContractParams {
    fn validate(&self, chain: &ChainParams) -> Result<(), GenesisError> {
        let p = |name, value: u64, why| Err(GenesisError::Param { name, value, why });
        if self.max_code_bytes < 1024 || self.max_code_bytes > self.max_deploy_tx_bytes {
            return p(
                "contracts.max_code_bytes",
                self.max_code_bytes.into(),
                "must be in 1024..=max_deploy_tx_bytes",
            );
        }
        if self.max_deploy_tx_bytes > chain.block_max_bytes {
            return p(
                "contracts.max_deploy_tx_bytes",
                self.max_deploy_tx_bytes.into(),
                "must be at most block_max_bytes",
            );
        }
        if self.max_memory_bytes < 65_536 || !self.max_memory_bytes.is_multiple_of(65_536) {
            return p(
                "contracts.max_memory_bytes",
                self.max_memory_bytes.into(),
                "must be a positive multiple of 65536",
            );
        }
        if self.max_stack_bytes < 64 * 1024 || self.max_stack_bytes > 8 << 20 {
            return p(
                "contracts.max_stack_bytes",
                self.max_stack_bytes.into(),
                "must be in 65536..=8388608",
            );
        }
        if self.max_call_depth == 0 || self.max_call_depth > 64 {
            return p(
                "contracts.max_call_depth",
                self.max_call_depth.into(),
                "must be in 1..=64",
            );
        }
        let max_deploy_fuel = self.deploy_fuel.saturating_add(
            self.deploy_fuel_per_byte
                .saturating_mul(self.max_code_bytes.into()),
        );
        if max_deploy_fuel > chain.max_fuel_per_tx {
            return p(
                "contracts.deploy_fuel",
                self.deploy_fuel,
                "a deploy of max_code_bytes must fit in max_fuel_per_tx",
            );
        }
        if self.call_fuel == 0 || self.call_fuel > chain.max_fuel_per_tx {
            return p(
                "contracts.call_fuel",
                self.call_fuel,
                "must be in 1..=max_fuel_per_tx",
            );
        }
        Ok(())
    }
}

/// Keys and genesis produced by [`generate`].
pub struct Generated {
    /// The genesis.
    pub genesis: Genesis,
    /// Validator keys, in validator index order.
    pub validator_keys: Vec<Keypair>,
    /// Funded account keys, in genesis account order.
    pub account_keys: Vec<Keypair>,
}

/// A new chain with `validators` fresh validator keys and `accounts` fresh funded accounts.
pub fn generate(
    chain_id: &str,
    validators: usize,
    accounts: usize,
    balance: u64,
    genesis_time_ms: u64,
) -> Result<Generated, GenesisError> {
    let validator_keys: Vec<Keypair> = (0..validators).map(|_| Keypair::generate()).collect();
    let account_keys: Vec<Keypair> = (0..accounts).map(|_| Keypair::generate()).collect();
    generate_from_keys(
        chain_id,
        validator_keys,
        account_keys,
        balance,
        genesis_time_ms,
    )
}

/// Like [`generate`], with the given keys (a simulator derives them from its seed).
pub fn generate_from_keys(
    chain_id: &str,
    validator_keys: Vec<Keypair>,
    account_keys: Vec<Keypair>,
    balance: u64,
    genesis_time_ms: u64,
) -> Result<Generated, GenesisError> {
    let genesis = assemble(
        chain_id,
        genesis_time_ms,
        &validator_keys,
        &account_keys,
        balance,
    );
    genesis.validate()?;
    Ok(Generated {
        genesis,
        validator_keys,
        account_keys,
    })
}

fn assemble(
    chain_id: &str,
    genesis_time_ms: u64,
    validator_keys: &[Keypair],
    account_keys: &[Keypair],
    balance: u64,
) -> Genesis {
    Genesis {
        chain_id: chain_id.to_owned(),
        genesis_time_ms,
        validators: validator_keys
            .iter()
            .enumerate()
            .map(|(i, k)| GenesisValidator {
                name: format!("validator-{i}"),
                public_key: k.public().to_hex(),
            })
            .collect(),
        accounts: account_keys
            .iter()
            .enumerate()
            .map(|(i, k)| GenesisAccount {
                name: format!("account-{i}"),
                address: k.address().to_hex(),
                balance,
            })
            .collect(),
        params: ChainParams::default(),
        // The first funded account administers the chain and may deploy machine code.
        admin: account_keys.first().map(|k| k.address().to_hex()),
        governance: None,
        trusted_deployers: account_keys
            .first()
            .map(|k| vec![k.address().to_hex()])
            .unwrap_or_default(),
        // The engine is the builder's to name (`quorate genesis new` names its own): the
        // genesis crate knows no engine.
        engine_fingerprint: None,
        // Every system contract of this release, with the first account as certificate
        // authority.
        system_contracts: release_system_contracts(),
        certificate_authorities: account_keys
            .first()
            .map(|k| vec![k.address().to_hex()])
            .unwrap_or_default(),
    }
}

/// Every system contract of this release, as a genesis lists it (name and code hash).
pub(crate) fn release_system_contracts() -> Vec<GenesisContract> {
    system::SYSTEM_CONTRACTS
        .iter()
        .map(|c| GenesisContract {
            name: c.name.to_owned(),
            code_hash: c.code_hash().to_hex(),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_genesis_roundtrips_and_validates() {
        let g = generate("test-chain", 4, 3, 1_000, 1).expect("generates");
        let back = Genesis::from_json(&g.genesis.to_json()).expect("parses");
        assert_eq!(back, g.genesis);
        assert_eq!(back.hash(), g.genesis.hash());
        assert_eq!(back.validator_set().len(), 4);
        assert_eq!(back.validator_set().quorum(), 3);
    }

    #[test]
    fn bad_genesis_is_refused_with_reason() {
        let good = generate("c", 1, 1, 5, 0).expect("generates").genesis;
        let mut g = good.clone();
        g.chain_id = "bad id!".into();
        assert!(matches!(g.validate(), Err(GenesisError::ChainId(_))));
        let mut g = good.clone();
        g.validators.clear();
        assert!(matches!(g.validate(), Err(GenesisError::NoValidators)));
        let mut g = good.clone();
        g.validators.push(g.validators[0].clone());
        assert!(matches!(
            g.validate(),
            Err(GenesisError::DuplicateValidator(_))
        ));
        let mut g = good.clone();
        g.accounts.push(GenesisAccount {
            name: String::new(),
            address: "12".into(),
            balance: 1,
        });
        assert!(matches!(
            g.validate(),
            Err(GenesisError::AccountAddress { .. })
        ));
        let mut g = good.clone();
        g.accounts[0].balance = u64::MAX;
        g.accounts.push(GenesisAccount {
            name: String::new(),
            address: "11".repeat(20),
            balance: 1,
        });
        assert!(matches!(g.validate(), Err(GenesisError::SupplyOverflow)));
        let mut g = good.clone();
        g.params.max_tx_bytes = 10;
        assert!(matches!(
            g.validate(),
            Err(GenesisError::Param {
                name: "max_tx_bytes",
                ..
            })
        ));
        let mut g = good.clone();
        g.admin = Some("xyz".into());
        assert!(matches!(
            g.validate(),
            Err(GenesisError::RoleAddress { role: "admin", .. })
        ));
        let mut g = good.clone();
        g.trusted_deployers.push(g.trusted_deployers[0].clone());
        assert!(matches!(
            g.validate(),
            Err(GenesisError::DuplicateAccount(_))
        ));
        let mut g = good.clone();
        g.system_contracts[0].code_hash = "00".repeat(32);
        assert!(matches!(
            g.validate(),
            Err(GenesisError::SystemContract { .. })
        ));
        for bad in ["zz".repeat(32), "00".repeat(31)] {
            let mut g = good.clone();
            g.engine_fingerprint = Some(bad);
            assert!(matches!(
                g.validate(),
                Err(GenesisError::EngineFingerprint(_))
            ));
        }
        let mut g = good.clone();
        g.engine_fingerprint = Some("ab".repeat(32));
        g.validate().expect("a 32-byte engine fingerprint");
        assert_eq!(g.engine(), Some([0xab; 32]));
        assert_ne!(g.hash(), good.hash(), "the engine is part of the genesis");
        let mut g = good.clone();
        g.system_contracts[0].name = "casino".into();
        assert!(matches!(
            g.validate(),
            Err(GenesisError::SystemContract { .. })
        ));
        let mut g = good.clone();
        g.params.contracts.max_memory_bytes = 1000;
        assert!(matches!(
            g.validate(),
            Err(GenesisError::Param {
                name: "contracts.max_memory_bytes",
                ..
            })
        ));
        let mut g = good.clone();
        g.params.contracts.deploy_fuel = g.params.max_fuel_per_tx;
        assert!(matches!(
            g.validate(),
            Err(GenesisError::Param {
                name: "contracts.deploy_fuel",
                ..
            })
        ));
        let text = good
            .to_json()
            .replacen("\"chain_id\"", "\"surprise\": 1, \"chain_id\"", 1);
        assert!(
            matches!(Genesis::from_json(&text), Err(GenesisError::Parse(_))),
            "unknown fields refused"
        );
    }
}
