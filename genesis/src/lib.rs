//! The genesis of a Quorate chain: its id, validator set, funded accounts and the chain
//! parameters every validator must share; plus key files, the generator behind
//! `quorate genesis new`, and the embedded dev genesis behind `quorate dev`.

mod dev;
mod keyfile;

use std::collections::HashSet;
use std::path::Path;

use quorate_proto::certificate::ValidatorSet;
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
}

impl Default for ChainParams {
    fn default() -> Self {
        Self {
            max_tx_bytes: 64 * 1024,
            block_max_txs: 10_000,
            block_max_bytes: 16 * 1024 * 1024,
            transfer_fuel: 1_000,
            max_fuel_per_tx: 100_000_000,
            fuel_price: 1,
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
        self.params.validate()
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

impl ChainParams {
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
    }
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
        let text = good
            .to_json()
            .replacen("\"chain_id\"", "\"surprise\": 1, \"chain_id\"", 1);
        assert!(
            matches!(Genesis::from_json(&text), Err(GenesisError::Parse(_))),
            "unknown fields refused"
        );
    }
}
