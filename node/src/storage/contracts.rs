//! Contract state: key-value entries (contract storage, contract records, system settings),
//! contract bytecode by code hash, and compiled artifacts by code hash and engine fingerprint.
//!
//! Entries are consensus state (they enter the state root under a space tag); bytecode is
//! content-addressed and bound to the state through the code hash in each contract record;
//! artifacts are this node's own cache and never part of consensus.

use bytes::Bytes;
use prost::Message;
use quorate_proto::crypto::{Address, Hash32};
use quorate_proto::v1::{
    GovernancePolicy, KeySet, ParamSchedule, ProposalRecord, ValidatorSchedule,
};
use rocksdb::{Direction, IteratorMode, WriteBatch};

use super::db::{
    corrupt, Storage, StorageError, CF_ARTIFACTS, CF_CODE, CF_CONTRACTS, CF_CONTRACT_STORAGE,
    CF_SYSTEM,
};

/// Which kind of state entry a key belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Space {
    /// A contract's own storage: key = contract address ‖ contract key.
    Storage,
    /// A deployed contract's record: key = contract address.
    Contract,
    /// Chain settings (admin, trusted deployers): key = setting name.
    System,
}

impl Space {
    /// Its column family.
    pub(crate) fn cf(self) -> &'static str {
        match self {
            Self::Storage => CF_CONTRACT_STORAGE,
            Self::Contract => CF_CONTRACTS,
            Self::System => CF_SYSTEM,
        }
    }

    /// Tag that separates the spaces inside the state commitment (account keys are 20 bytes
    /// with no tag, so no entry key can collide with one).
    fn tag(self) -> u8 {
        match self {
            Self::Storage => b's',
            Self::Contract => b'c',
            Self::System => b'y',
        }
    }
}

/// The key of a state entry.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct EntryKey {
    /// Its space.
    pub space: Space,
    /// Its key in the space's column family.
    pub key: Vec<u8>,
}

/// System setting: the admin address.
const ADMIN: &[u8] = b"admin";
/// System setting: the validator schedule (`ValidatorSchedule`).
const VALIDATORS: &[u8] = b"validators";
/// System setting prefix: `trusted/` ‖ address → [1] for each trusted deployer.
const TRUSTED: &[u8] = b"trusted/";
/// System setting prefix: `keys/` ‖ address → encoded `KeySet` of a multi-key account.
const KEYS: &[u8] = b"keys/";
/// System setting: the governed chain parameters in force and to come (`ParamSchedule`;
/// ADR 0017). Absent: the genesis parameters.
const PARAMS: &[u8] = b"params";
/// System setting: system-contract upgrades decided and not yet in force (`PendingUpgrades`;
/// ADR 0018).
const UPGRADES: &[u8] = b"upgrades";
/// System setting: the protocol versions activated (`ProtocolSchedule`; ADR 0019). Absent:
/// version 1 throughout.
const PROTOCOL: &[u8] = b"protocol";
/// System setting: the governance policy (`GovernancePolicy`; ADR 0016).
const GOVERNANCE: &[u8] = b"governance";
/// System setting: the governance period (u64, big-endian; absent: 0), ended by each hand-over
/// to a single admin (ADR 0016).
const GOVERNANCE_EPOCH: &[u8] = b"governance-epoch";
/// System setting: the number of the latest proposal (u64, big-endian).
const PROPOSAL_COUNT: &[u8] = b"proposal-count";
/// System setting prefix: `proposals/` ‖ number (u64, big-endian) → `ProposalRecord`.
const PROPOSALS: &[u8] = b"proposals/";
/// System setting: the chain's engine fingerprint (32 bytes; absent: no machine code).
const ENGINE: &[u8] = b"engine";
/// System setting prefix: `machine-code/` ‖ code hash → the machine code that *is* that code
/// (deployed precompiled; ADR 0010). Absent: the code is compiled from its bytecode.
const MACHINE_CODE: &[u8] = b"machine-code/";

impl EntryKey {
    /// `contract`'s storage entry `key`.
    pub fn storage(contract: &Address, key: &[u8]) -> Self {
        let mut k = Vec::with_capacity(20 + key.len());
        k.extend_from_slice(&contract.0);
        k.extend_from_slice(key);
        Self {
            space: Space::Storage,
            key: k,
        }
    }

    /// The record of the contract at `addr`.
    pub fn contract(addr: &Address) -> Self {
        Self {
            space: Space::Contract,
            key: addr.0.to_vec(),
        }
    }

    /// The admin setting.
    pub fn admin() -> Self {
        Self {
            space: Space::System,
            key: ADMIN.to_vec(),
        }
    }

    /// The validator schedule: the set in force and those decided to come.
    pub fn validators() -> Self {
        Self {
            space: Space::System,
            key: VALIDATORS.to_vec(),
        }
    }

    /// The trusted-deployer flag of `account`.
    pub fn trusted(account: &Address) -> Self {
        let mut k = TRUSTED.to_vec();
        k.extend_from_slice(&account.0);
        Self {
            space: Space::System,
            key: k,
        }
    }

    /// The key set of `account` (present once the account is keyed).
    pub fn key_set(account: &Address) -> Self {
        let mut k = KEYS.to_vec();
        k.extend_from_slice(&account.0);
        Self {
            space: Space::System,
            key: k,
        }
    }

    /// The chain parameter schedule.
    pub fn params() -> Self {
        Self {
            space: Space::System,
            key: PARAMS.to_vec(),
        }
    }

    /// The protocol versions activated (ADR 0019).
    pub fn protocol() -> Self {
        Self {
            space: Space::System,
            key: PROTOCOL.to_vec(),
        }
    }

    /// The system-contract upgrades to come.
    pub fn upgrades() -> Self {
        Self {
            space: Space::System,
            key: UPGRADES.to_vec(),
        }
    }

    /// The governance policy.
    pub fn governance() -> Self {
        Self {
            space: Space::System,
            key: GOVERNANCE.to_vec(),
        }
    }

    /// The governance period.
    pub fn governance_epoch() -> Self {
        Self {
            space: Space::System,
            key: GOVERNANCE_EPOCH.to_vec(),
        }
    }

    /// The number of the latest proposal.
    pub fn proposal_count() -> Self {
        Self {
            space: Space::System,
            key: PROPOSAL_COUNT.to_vec(),
        }
    }

    /// The record of proposal `number`.
    pub fn proposal(number: u64) -> Self {
        let mut k = PROPOSALS.to_vec();
        k.extend_from_slice(&number.to_be_bytes());
        Self {
            space: Space::System,
            key: k,
        }
    }

    /// The chain's engine fingerprint.
    pub fn engine() -> Self {
        Self {
            space: Space::System,
            key: ENGINE.to_vec(),
        }
    }

    /// The machine code deployed for the bytecode with `code_hash`.
    pub fn machine_code(code_hash: &Hash32) -> Self {
        let mut k = MACHINE_CODE.to_vec();
        k.extend_from_slice(&code_hash.0);
        Self {
            space: Space::System,
            key: k,
        }
    }

    /// The account whose key set this entry is, if it is one.
    pub fn key_set_account(&self) -> Option<Address> {
        if self.space != Space::System {
            return None;
        }
        Address::from_slice(self.key.strip_prefix(KEYS)?).ok()
    }

    /// Whether `key` has the shape of an entry of this space, and `value` the form such an
    /// entry holds: what a snapshot's entry must pass before it is imported (issue 25). Account
    /// keys enter the state commitment untagged and are 20 bytes; every other entry enters it
    /// as tag ‖ key, and no well-formed key of another space makes that 20 bytes, so an entry
    /// cannot be moved to another kind without failing here.
    pub fn check_shape(&self, value: &[u8]) -> Result<(), String> {
        let len = self.key.len();
        match self.space {
            Space::Storage if len < 20 => Err(format!(
                "a contract storage key of {len} bytes (at least 20)"
            )),
            Space::Storage => Ok(()),
            Space::Contract if len != 20 => Err(format!("a contract address of {len} bytes")),
            Space::Contract => ContractRecord::decode(value)
                .map_err(|e| e.to_string())
                .and_then(|r| {
                    (r.code_hash.len() == 32 && r.deployer.len() == 20)
                        .then_some(())
                        .ok_or_else(|| "code hash or deployer of the wrong length".into())
                })
                .map_err(|e| format!("a contract record that does not decode: {e}")),
            Space::System => self.check_system_shape(value),
        }
    }

    fn check_system_shape(&self, value: &[u8]) -> Result<(), String> {
        let k = self.key.as_slice();
        let suffix = |prefix: &[u8], n: usize| k.strip_prefix(prefix).is_some_and(|s| s.len() == n);
        let ok = if k == ADMIN {
            value.len() == 20
        } else if k == VALIDATORS {
            ValidatorSchedule::decode(value).is_ok()
        } else if k == ENGINE {
            value.len() == 32
        } else if k == UPGRADES {
            quorate_proto::v1::PendingUpgrades::decode(value).is_ok()
        } else if k == PARAMS {
            ParamSchedule::decode(value).is_ok()
        } else if k == PROTOCOL {
            quorate_proto::v1::ProtocolSchedule::decode(value).is_ok()
        } else if k == GOVERNANCE {
            GovernancePolicy::decode(value).is_ok()
        } else if k == PROPOSAL_COUNT || k == GOVERNANCE_EPOCH {
            value.len() == 8
        } else if suffix(PROPOSALS, 8) {
            ProposalRecord::decode(value).is_ok()
        } else if suffix(TRUSTED, 20) {
            value == [1]
        } else if suffix(KEYS, 20) {
            KeySet::decode(value).is_ok()
        } else if suffix(MACHINE_CODE, 32) {
            !value.is_empty()
        } else {
            return Err(format!(
                "no system entry has the key {}",
                String::from_utf8_lossy(k)
            ));
        };
        if ok {
            Ok(())
        } else {
            Err(format!(
                "system entry {} holds a value of another form",
                String::from_utf8_lossy(k)
            ))
        }
    }

    /// The key under which this entry enters the state commitment.
    pub fn state_key(&self) -> Vec<u8> {
        let mut k = Vec::with_capacity(1 + self.key.len());
        k.push(self.space.tag());
        k.extend_from_slice(&self.key);
        k
    }
}

/// A deployed contract as stored (a state entry).
#[derive(Clone, PartialEq, Message)]
pub struct ContractRecord {
    /// blake3 of the bytecode.
    #[prost(bytes = "bytes", tag = "1")]
    pub code_hash: Bytes,
    /// Who deployed it.
    #[prost(bytes = "bytes", tag = "2")]
    pub deployer: Bytes,
    /// Height of the block that deployed it.
    #[prost(uint64, tag = "3")]
    pub height: u64,
    /// Upgrades in force so far (a system contract's code replaced by governance, ADR 0018).
    #[prost(uint32, tag = "4")]
    pub version: u32,
    /// Height from which its current code runs, if it was upgraded.
    #[prost(uint64, tag = "5")]
    pub upgraded_at: u64,
    /// Code hashes it ran before, or was to run (an upgrade replaced or cancelled before its
    /// height): code the chain decided stays bound to the state (ADR 0018).
    #[prost(bytes = "bytes", repeated, tag = "6")]
    pub retired: Vec<Bytes>,
}

impl ContractRecord {
    /// The code hash.
    pub fn code(&self) -> Result<Hash32, StorageError> {
        Hash32::from_slice(&self.code_hash).ok_or_else(|| corrupt("contract record", "code hash"))
    }
}

/// Bytecode first stored by a block, with this node's artifact for it.
#[derive(Clone, Debug)]
pub struct NewCode {
    /// blake3 of `wasm`.
    pub code_hash: Hash32,
    /// The bytecode.
    pub wasm: Bytes,
    /// Machine code for `fingerprint`.
    pub artifact: std::sync::Arc<Vec<u8>>,
    /// Engine fingerprint of `artifact`.
    pub fingerprint: [u8; 32],
}

fn artifact_key(code_hash: &Hash32, fingerprint: &[u8; 32]) -> [u8; 64] {
    let mut k = [0u8; 64];
    k[..32].copy_from_slice(&code_hash.0);
    k[32..].copy_from_slice(fingerprint);
    k
}

impl Storage {
    /// The committed value of a state entry.
    pub fn entry(&self, key: &EntryKey) -> Result<Option<Vec<u8>>, StorageError> {
        self.entry_at(key, None)
    }

    /// [`Storage::entry`] as of the snapshot `at` reads (`None`: the latest).
    pub fn entry_at(
        &self,
        key: &EntryKey,
        at: Option<&rocksdb::ReadOptions>,
    ) -> Result<Option<Vec<u8>>, StorageError> {
        let cf = self.cf(key.space.cf());
        Ok(match at {
            Some(o) => self.db().get_cf_opt(cf, &key.key, o)?,
            None => self.db().get_cf(cf, &key.key)?,
        })
    }

    /// The committed record of the contract at `addr`.
    pub fn contract(&self, addr: &Address) -> Result<Option<ContractRecord>, StorageError> {
        self.entry(&EntryKey::contract(addr))?
            .map(|b| {
                ContractRecord::decode(b.as_slice())
                    .map_err(|e| corrupt(format!("contract {addr}"), e))
            })
            .transpose()
    }

    /// The committed admin account.
    pub fn admin(&self) -> Result<Option<Address>, StorageError> {
        self.entry(&EntryKey::admin())?
            .map(|b| Address::from_slice(&b).map_err(|e| corrupt("admin", e)))
            .transpose()
    }

    /// The committed parameter schedule, if governance ever changed a parameter.
    pub fn param_schedule(&self) -> Result<Option<ParamSchedule>, StorageError> {
        self.entry(&EntryKey::params())?
            .map(|b| {
                ParamSchedule::decode(b.as_slice()).map_err(|e| corrupt("parameter schedule", e))
            })
            .transpose()
    }

    /// The committed protocol activations, if any version was ever activated.
    pub fn protocol_schedule(
        &self,
    ) -> Result<Option<quorate_proto::v1::ProtocolSchedule>, StorageError> {
        self.entry(&EntryKey::protocol())?
            .map(|b| {
                quorate_proto::v1::ProtocolSchedule::decode(b.as_slice())
                    .map_err(|e| corrupt("protocol schedule", e))
            })
            .transpose()
    }

    /// The committed governance policy, if the chain has one.
    pub fn governance(&self) -> Result<Option<GovernancePolicy>, StorageError> {
        self.entry(&EntryKey::governance())?
            .map(|b| {
                GovernancePolicy::decode(b.as_slice()).map_err(|e| corrupt("governance policy", e))
            })
            .transpose()
    }

    /// The committed record of proposal `number`.
    pub fn proposal(&self, number: u64) -> Result<Option<ProposalRecord>, StorageError> {
        self.entry(&EntryKey::proposal(number))?
            .map(|b| {
                ProposalRecord::decode(b.as_slice())
                    .map_err(|e| corrupt(format!("proposal {number}"), e))
            })
            .transpose()
    }

    /// The number of the latest committed proposal (0: none yet).
    pub fn proposal_count(&self) -> Result<u64, StorageError> {
        decode_count(self.entry(&EntryKey::proposal_count())?)
    }

    /// The committed governance period.
    pub fn governance_epoch(&self) -> Result<u64, StorageError> {
        decode_count(self.entry(&EntryKey::governance_epoch())?)
    }

    /// Committed proposals numbered below `before` (0: all), newest first, those `keep`
    /// accepts, at most `limit`, reading at most `scan` records. Returns them and the number
    /// to pass as `before` to go on (0: none is left).
    pub fn proposals(
        &self,
        before: u64,
        limit: usize,
        scan: usize,
        keep: impl Fn(&ProposalRecord) -> bool,
    ) -> Result<(Vec<ProposalRecord>, u64), StorageError> {
        if before == 1 {
            return Ok((Vec::new(), 0));
        }
        let start = EntryKey::proposal(if before == 0 { u64::MAX } else { before - 1 });
        let mut out = Vec::new();
        let mut last = before;
        let iter = self.db().iterator_cf(
            self.cf(Space::System.cf()),
            IteratorMode::From(&start.key, Direction::Reverse),
        );
        for (scanned, item) in iter.enumerate() {
            let (key, value) = item?;
            if !key.starts_with(PROPOSALS) {
                break;
            }
            if out.len() >= limit || scanned >= scan {
                // More are left below the last one read.
                return Ok((out, last));
            }
            let record = ProposalRecord::decode(value.as_ref())
                .map_err(|e| corrupt("proposal record", e))?;
            last = record.number;
            if keep(&record) {
                out.push(record);
            }
        }
        Ok((out, 0))
    }

    /// The committed key sets of `accounts`, in order (`None`: the account has none), with one
    /// multi-get.
    pub fn key_sets(&self, accounts: &[Address]) -> Result<Vec<Option<KeySet>>, StorageError> {
        let cf = self.cf(Space::System.cf());
        let keys: Vec<EntryKey> = accounts.iter().map(EntryKey::key_set).collect();
        self.db()
            .batched_multi_get_cf(cf, keys.iter().map(|k| &k.key), false)
            .into_iter()
            .zip(accounts)
            .map(|(r, addr)| {
                r?.map(|b| {
                    KeySet::decode(b.as_ref()).map_err(|e| corrupt(format!("key set of {addr}"), e))
                })
                .transpose()
            })
            .collect()
    }

    /// The committed validator schedule (written at genesis, so present on every chain).
    pub fn validator_schedule(&self) -> Result<ValidatorSchedule, StorageError> {
        let bytes = self
            .entry(&EntryKey::validators())?
            .ok_or_else(|| corrupt("validator schedule", "missing"))?;
        ValidatorSchedule::decode(bytes.as_slice()).map_err(|e| corrupt("validator schedule", e))
    }

    /// The chain's committed engine fingerprint (none: the chain takes no machine code).
    pub fn chain_engine(&self) -> Result<Option<[u8; 32]>, StorageError> {
        self.entry(&EntryKey::engine())?
            .map(|b| {
                <[u8; 32]>::try_from(b.as_slice())
                    .map_err(|_| corrupt("engine fingerprint", "not 32 bytes"))
            })
            .transpose()
    }

    /// The committed machine code of the bytecode with `code_hash`, if it was deployed
    /// precompiled.
    pub fn machine_code(&self, code_hash: &Hash32) -> Result<Option<Vec<u8>>, StorageError> {
        self.entry(&EntryKey::machine_code(code_hash))
    }

    /// True when `account` is a committed trusted deployer.
    pub fn is_trusted_deployer(&self, account: &Address) -> Result<bool, StorageError> {
        Ok(self.entry(&EntryKey::trusted(account))?.is_some())
    }

    /// Stored bytecode with `code_hash`.
    pub fn code(&self, code_hash: &Hash32) -> Result<Option<Vec<u8>>, StorageError> {
        Ok(self.db().get_cf(self.cf(CF_CODE), code_hash.0)?)
    }

    /// True when bytecode with `code_hash` is stored.
    pub fn has_code(&self, code_hash: &Hash32) -> Result<bool, StorageError> {
        Ok(self
            .db()
            .get_pinned_cf(self.cf(CF_CODE), code_hash.0)?
            .is_some())
    }

    /// Every stored code hash.
    pub fn code_hashes(&self) -> Result<Vec<Hash32>, StorageError> {
        self.db()
            .iterator_cf(self.cf(CF_CODE), IteratorMode::Start)
            .map(|item| {
                let (k, _) = item?;
                Hash32::from_slice(&k).ok_or_else(|| corrupt("code key", "wrong length"))
            })
            .collect()
    }

    /// This node's artifact for `code_hash` built by the engine with `fingerprint`.
    pub fn artifact(
        &self,
        code_hash: &Hash32,
        fingerprint: &[u8; 32],
    ) -> Result<Option<Vec<u8>>, StorageError> {
        Ok(self
            .db()
            .get_cf(self.cf(CF_ARTIFACTS), artifact_key(code_hash, fingerprint))?)
    }

    /// Stores an artifact (after a recompilation at start-up).
    pub fn put_artifact(
        &self,
        code_hash: &Hash32,
        fingerprint: &[u8; 32],
        artifact: &[u8],
    ) -> Result<(), StorageError> {
        let mut batch = WriteBatch::default();
        batch.put_cf(
            self.cf(CF_ARTIFACTS),
            artifact_key(code_hash, fingerprint),
            artifact,
        );
        self.write(batch)
    }

    /// Adds changed entries and new code to a block's batch.
    pub(crate) fn put_contract_state(
        &self,
        batch: &mut WriteBatch,
        entries: &[(EntryKey, Option<Vec<u8>>)],
        new_code: &[NewCode],
    ) {
        for (key, value) in entries {
            let cf = self.cf(key.space.cf());
            match value {
                Some(v) => batch.put_cf(cf, &key.key, v),
                None => batch.delete_cf(cf, &key.key),
            }
        }
        for c in new_code {
            batch.put_cf(self.cf(CF_CODE), c.code_hash.0, &c.wasm);
            batch.put_cf(
                self.cf(CF_ARTIFACTS),
                artifact_key(&c.code_hash, &c.fingerprint),
                c.artifact.as_slice(),
            );
        }
    }
}

/// The proposal count held in `value` (absent: 0).
pub(crate) fn decode_count(value: Option<Vec<u8>>) -> Result<u64, StorageError> {
    value
        .map(|b| {
            <[u8; 8]>::try_from(b.as_slice())
                .map(u64::from_be_bytes)
                .map_err(|_| corrupt("proposal count", "not 8 bytes"))
        })
        .transpose()
        .map(Option::unwrap_or_default)
}
