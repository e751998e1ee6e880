//! The chain: committed head and state, and the operations the consensus driver performs —
//! propose a block on the head, validate another validator's block, and commit a certified
//! block.

use std::sync::Arc;

use parking_lot::Mutex;
use prost::Message;
use quorate_genesis::{ChainParams, Genesis};
use quorate_proto::certificate::{verify_certificate, CertificateError, ValidatorSet};
use quorate_proto::crypto::Hash32;
use quorate_proto::v1::{CommitCertificate, ValidatorSchedule, ValidatorSetChange};

use bytes::Bytes;

use crate::block_rules::{decode_header, BlockRejection};
use crate::chain_params::ParamBook;
use crate::contracts::ContractRuntime;
use crate::execution::{build_block, validate_block, BlockContext, InvalidTx};
use crate::snapshot::SnapshotSchedule;
use crate::state_root::LtHash;
use crate::storage::ExecutedBlock;
use crate::storage::{corrupt, Durability, EntryKey, Head, Storage, StorageError};
use crate::validator_sets::ValidatorSets;
use crate::verified_tx::VerifiedTx;

/// Why a block could not be committed.
#[derive(Debug, thiserror::Error)]
pub enum CommitError {
    /// The certificate does not prove the block final.
    #[error("commit certificate rejected: {0}")]
    Certificate(#[from] CertificateError),
    /// Storage failed.
    #[error(transparent)]
    Storage(#[from] StorageError),
    /// The block does not extend the head.
    #[error("block {height} with parent {parent} does not extend head {head_height} {head_hash}")]
    NotOnHead {
        /// Block height.
        height: u64,
        /// Block parent hash.
        parent: String,
        /// Head height.
        head_height: u64,
        /// Head hash.
        head_hash: Hash32,
    },
}

/// The state a block executes on: head, accumulator, and the decided block whose changes are
/// read over the storage while its commit may be under way.
type Parent = (Head, LtHash, Option<Arc<ExecutedBlock>>);

/// The bound on a proposal's time: this validator's clock plus the drift it tolerates.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ClockBound {
    /// This validator's clock, ms since the epoch.
    pub now_ms: u64,
    /// How far ahead of it a proposal's time may be, ms.
    pub max_drift_ms: u64,
}

/// Static facts about the chain, from genesis.
#[derive(Clone, Debug)]
pub struct ChainInfo {
    /// Chain id.
    pub chain_id: String,
    /// Hash of the genesis.
    pub genesis_hash: Hash32,
    /// The genesis chain parameters (those of a height: [`Chain::params_at`]).
    pub params: ChainParams,
    /// The genesis validator set (the set of later heights: [`Chain::sets`]).
    pub validators: ValidatorSet,
    /// The genesis, without its funded accounts (they are in the state from height 0 on).
    pub genesis: Genesis,
}

/// Committed chain state plus block building and committing.
pub struct Chain {
    info: ChainInfo,
    storage: Arc<Storage>,
    contracts: Arc<ContractRuntime>,
    tip: Mutex<(Head, LtHash)>,
    sets: Arc<ValidatorSets>,
    params: Arc<ParamBook>,
    snapshots: std::sync::OnceLock<SnapshotSchedule>,
}

impl Chain {
    /// Opens the chain on `storage`, writing genesis if the database is new and checking the
    /// stored head otherwise.
    pub fn open(genesis: Genesis, storage: Arc<Storage>) -> Result<Self, StorageError> {
        let genesis_hash = genesis.hash();
        Self::open_with_hash(genesis, genesis_hash, storage)
    }

    /// [`Chain::open`] with the genesis hash already known (a genesis read back from the
    /// database has no funded accounts, so its own hash is not the chain's).
    pub fn open_with_hash(
        genesis: Genesis,
        genesis_hash: Hash32,
        storage: Arc<Storage>,
    ) -> Result<Self, StorageError> {
        let contracts = Arc::new(
            ContractRuntime::new(&genesis.params)
                .map_err(|e| StorageError::Engine(e.to_string()))?,
        );
        // Every validator runs the chain's engine, or none does (ADR 0010).
        let chain_engine = if storage.is_initialized()? {
            storage.chain_engine()?
        } else {
            genesis.engine()
        };
        let mine = contracts.vm().fingerprint();
        if let Some(chain) = chain_engine.filter(|fp| *fp != mine.0) {
            return Err(StorageError::EngineMismatch {
                chain: hex::encode(chain),
                node: mine.to_hex(),
            });
        }
        // Stored contracts first: a restarted node must not compile the system contracts again.
        let report = contracts.load_stored(&storage)?;
        let (entries, new_code) = if storage.is_initialized()? {
            (Vec::new(), Vec::new())
        } else {
            contracts.genesis_state(&storage, &genesis)?
        };
        storage.init_genesis(
            &genesis.chain_id,
            genesis_hash,
            genesis.genesis_time_ms,
            &genesis.balances(),
            &entries,
            &new_code,
        )?;
        contracts.persisted(&new_code);
        let head = storage.check_consistency()?;
        let lthash = storage.lthash()?;
        let sets = ValidatorSets::new(
            genesis.validator_entries(),
            storage
                .set_changes()?
                .into_iter()
                .map(|c| (c.height, c.validators)),
            &storage.validator_schedule()?,
        )
        .map_err(|e| StorageError::Corrupt {
            what: "validator sets".into(),
            detail: e.to_string(),
        })?;
        let params = ParamBook::new(
            genesis.params.clone(),
            (
                storage.param_schedule()?.as_ref(),
                storage.protocol_schedule()?.as_ref(),
            ),
            head.height,
        )
        .map_err(|e| StorageError::Corrupt {
            what: "parameter schedule".into(),
            detail: e.to_string(),
        })?;
        crate::metrics::get()
            .artifact_loads
            .inc_by(report.loaded as u64);
        tracing::info!(
            loaded = report.loaded,
            recompiled = report.recompiled,
            deployed_at_genesis = new_code.len(),
            engine = %contracts.vm().fingerprint(),
            "contracts ready"
        );
        // The funded accounts are state now; a large genesis would otherwise stay in memory.
        let mut genesis = genesis;
        genesis.accounts = Vec::new();
        let info = ChainInfo {
            chain_id: genesis.chain_id.clone(),
            genesis_hash,
            params: genesis.params.clone(),
            validators: genesis.validator_set(),
            genesis,
        };
        Ok(Self {
            info,
            storage,
            contracts,
            tip: Mutex::new((head, lthash)),
            sets: Arc::new(sets),
            params: Arc::new(params),
            snapshots: std::sync::OnceLock::new(),
        })
    }

    /// Takes snapshots on `schedule` from now on (once; a second schedule is ignored).
    pub fn take_snapshots(&self, schedule: SnapshotSchedule) {
        let _ = self.snapshots.set(schedule);
    }

    /// The snapshot schedule, if snapshots are taken.
    pub fn snapshots(&self) -> Option<&SnapshotSchedule> {
        self.snapshots.get()
    }

    /// Static chain facts.
    pub fn info(&self) -> &ChainInfo {
        &self.info
    }

    /// The validator sets of every height the committed state knows.
    pub fn sets(&self) -> &Arc<ValidatorSets> {
        &self.sets
    }

    /// The chain parameters of every height the committed state knows.
    pub fn params(&self) -> &Arc<ParamBook> {
        &self.params
    }

    /// The chain parameters deciding `height`.
    pub fn params_at(&self, height: u64) -> Arc<ChainParams> {
        self.params.at(height)
    }

    /// The protocol version deciding `height` (ADR 0019).
    pub fn protocol_at(&self, height: u64) -> u32 {
        self.params.protocol_at(height)
    }

    /// Set when the next height follows a protocol version this release does not support:
    /// the node must not decide it (ADR 0019).
    pub fn halt(&self) -> Option<crate::protocol::Halt> {
        self.params.halt()
    }

    /// [`Chain::halt`] for deciding `height`.
    pub fn halt_at(&self, height: u64) -> Option<crate::protocol::Halt> {
        self.params.halt_at(height)
    }

    /// The storage.
    pub fn storage(&self) -> &Arc<Storage> {
        &self.storage
    }

    /// The contract runtime.
    pub fn contracts(&self) -> &Arc<ContractRuntime> {
        &self.contracts
    }

    /// The committed head.
    pub fn head(&self) -> Head {
        self.tip.lock().0.clone()
    }

    fn context<'a>(
        &'a self,
        (head, lthash, uncommitted_parent): &'a Parent,
        params: &'a ChainParams,
        proposer: [u8; 32],
        time_ms: u64,
    ) -> BlockContext<'a> {
        BlockContext {
            uncommitted_parent: uncommitted_parent.as_ref(),
            chain_id: &self.info.chain_id,
            params,
            ceiling: &self.info.params,
            contracts: &self.contracts,
            parent: head,
            parent_lthash: lthash,
            proposer,
            // Block time never goes backwards, whatever the proposer's clock says.
            time_ms: time_ms.max(head.time_ms),
            next_validators_hash: self.sets.at(head.height + 2).hash,
            protocol: self.params.protocol_at(head.height + 1),
        }
    }

    /// Builds and executes a block of `candidates` on the head. Transactions that cannot be
    /// included (stale nonce, cannot pay the fee) are left out and returned.
    pub fn propose(
        &self,
        candidates: Vec<Arc<VerifiedTx>>,
        proposer: [u8; 32],
        time_ms: u64,
    ) -> Result<(ExecutedBlock, Vec<(Hash32, InvalidTx)>), StorageError> {
        self.propose_on(None, candidates, proposer, time_ms)
    }

    /// The state a block of the next height executes on: the head's, or with `decided`
    /// (a decided block whose commit may still be under way) that block's. A decided block
    /// that is neither the head nor on it is a bug of the caller.
    fn parent(&self, decided: Option<&Arc<ExecutedBlock>>) -> Result<Parent, StorageError> {
        let (head, lthash) = self.tip.lock().clone();
        match decided {
            None => Ok((head, lthash, None)),
            Some(b) if b.hash == head.hash => Ok((head, lthash, None)),
            Some(b)
                if b.header.height == head.height + 1
                    && b.header.parent_hash.as_ref() == head.hash.0 =>
            {
                Ok((b.head(), b.lthash.clone(), Some(b.clone())))
            }
            Some(b) => Err(StorageError::Corrupt {
                what: "decided block".into(),
                detail: format!(
                    "block {} at height {} is not on the head {} at {}",
                    b.hash, b.header.height, head.hash, head.height
                ),
            }),
        }
    }

    /// [`Chain::propose`] on the state after `decided` (see [`Chain::validate_on`]).
    pub fn propose_on(
        &self,
        decided: Option<&Arc<ExecutedBlock>>,
        candidates: Vec<Arc<VerifiedTx>>,
        proposer: [u8; 32],
        time_ms: u64,
    ) -> Result<(ExecutedBlock, Vec<(Hash32, InvalidTx)>), StorageError> {
        let parent = self.parent(decided)?;
        let params = self.params_at(parent.0.height + 1);
        build_block(
            &self.storage,
            &self.context(&parent, &params, proposer, time_ms),
            candidates,
        )
    }

    /// Re-executes a block from another validator given its header bytes exactly as hashed;
    /// `Ok(Err(reason))` if it must not be voted for (or committed). With `clock`, the block
    /// is a proposal being voted on and its time may not be further ahead of this validator's
    /// clock than the bound; a decided block is judged without it.
    pub fn validate(
        &self,
        header_bytes: &Bytes,
        txs: Vec<Arc<VerifiedTx>>,
        clock: Option<ClockBound>,
    ) -> Result<Result<ExecutedBlock, BlockRejection>, StorageError> {
        self.validate_on(None, header_bytes, txs, clock)
    }

    /// [`Chain::validate`] on the state after `decided`: a block decided at the head's next
    /// height whose commit may still be under way (or already done), so that the next height's
    /// blocks are built and judged while it is written.
    pub fn validate_on(
        &self,
        decided: Option<&Arc<ExecutedBlock>>,
        header_bytes: &Bytes,
        txs: Vec<Arc<VerifiedTx>>,
        clock: Option<ClockBound>,
    ) -> Result<Result<ExecutedBlock, BlockRejection>, StorageError> {
        let header = match decode_header(header_bytes) {
            Ok(h) => h,
            Err(why) => return Ok(Err(why)),
        };
        let params = self.params_at(header.height);
        let protocol = self.protocol_at(header.height);
        if let Some(halt) = self.halt_at(header.height) {
            return Ok(Err(BlockRejection::UnsupportedProtocol(halt)));
        }
        if header.protocol_version != crate::protocol::header_field(protocol) {
            return Ok(Err(BlockRejection::WrongProtocolVersion {
                got: header.protocol_version,
                expected: protocol,
            }));
        }
        if txs.len() > params.block_max_txs as usize {
            return Ok(Err(BlockRejection::TooManyTxs {
                count: txs.len(),
                max: params.block_max_txs,
            }));
        }
        let bytes: usize = txs.iter().map(|t| t.encoded_len).sum();
        if bytes > params.block_max_bytes as usize {
            return Ok(Err(BlockRejection::TooManyBytes {
                bytes,
                max: params.block_max_bytes,
            }));
        }
        let parent = self.parent(decided)?;
        let head = &parent.0;
        if header.height != head.height + 1 || header.parent_hash.as_ref() != head.hash.0 {
            return Ok(Err(BlockRejection::NotOnHead {
                height: header.height,
                parent: hex::encode(&header.parent_hash),
                head_height: head.height,
                head_hash: head.hash,
            }));
        }
        if header.chain_id != self.info.chain_id {
            return Ok(Err(BlockRejection::WrongChain {
                got: header.chain_id,
                expected: self.info.chain_id.clone(),
            }));
        }
        if header.time_ms < head.time_ms {
            return Ok(Err(BlockRejection::TimeBeforeParent {
                time_ms: header.time_ms,
                parent_ms: head.time_ms,
            }));
        }
        if let Some(c) = clock {
            if header.time_ms > c.now_ms.saturating_add(c.max_drift_ms) {
                return Ok(Err(BlockRejection::TimeAhead {
                    time_ms: header.time_ms,
                    local_ms: c.now_ms,
                    ahead_ms: header.time_ms - c.now_ms,
                    max_drift_ms: c.max_drift_ms,
                }));
            }
        }
        let proposer = match quorate_proto::PublicKey::from_slice(&header.proposer) {
            Ok(k) if self.sets.at(header.height).set.index_of(&k).is_some() => k.0,
            _ => {
                return Ok(Err(BlockRejection::UnknownProposer(hex::encode(
                    &header.proposer,
                ))))
            }
        };
        validate_block(
            &self.storage,
            &self.context(&parent, &params, proposer, header.time_ms),
            &header,
            txs,
        )
    }

    /// The 1-of-1 certificate of a single-validator chain: `key`'s own commit signature. For
    /// tests and benchmarks that commit blocks without running consensus.
    pub fn solo_certificate(
        &self,
        key: &quorate_proto::Keypair,
        validator_index: u32,
        block: &ExecutedBlock,
    ) -> CommitCertificate {
        let signature = quorate_proto::certificate::sign_commit(
            key,
            validator_index,
            &self.info.chain_id,
            block.header.height,
            0,
            &block.hash,
        );
        CommitCertificate {
            height: block.header.height,
            round: 0,
            block_hash: bytes::Bytes::copy_from_slice(&block.hash.0),
            signatures: vec![signature],
        }
    }

    /// Checks `certificate` against the validator set of the block's height and commits
    /// `block` atomically and durably (with the proof of a set change it announces for the
    /// next height).
    pub fn commit(
        &self,
        block: &ExecutedBlock,
        certificate: &CommitCertificate,
    ) -> Result<Head, CommitError> {
        self.commit_with(block, certificate, Durability::Synced)
    }

    /// [`Chain::commit`] without waiting for the fsync: the commit is durable once the next
    /// consensus record write or a [`Storage::sync_wal`] returns. The consensus driver's
    /// commit, which must not publish the head before then.
    pub fn commit_deferred(
        &self,
        block: &ExecutedBlock,
        certificate: &CommitCertificate,
    ) -> Result<Head, CommitError> {
        self.commit_with(block, certificate, Durability::Deferred)
    }

    fn commit_with(
        &self,
        block: &ExecutedBlock,
        certificate: &CommitCertificate,
        durability: Durability,
    ) -> Result<Head, CommitError> {
        let height = block.header.height;
        let current = self.sets.at(height);
        verify_certificate(
            certificate,
            &self.info.chain_id,
            &current.set,
            height,
            &block.hash,
        )?;
        let next = self.sets.at(height + 1);
        let set_change = (next.hash != current.hash).then(|| ValidatorSetChange {
            height: height + 1,
            validators: next.entries.clone(),
            header: block.header_bytes.clone(),
            certificate: Some(certificate.clone()),
        });
        let mut tip = self.tip.lock();
        if block.header.height != tip.0.height + 1
            || block.header.parent_hash.as_ref() != tip.0.hash.0
        {
            return Err(CommitError::NotOnHead {
                height: block.header.height,
                parent: hex::encode(&block.header.parent_hash),
                head_height: tip.0.height,
                head_hash: tip.0.hash,
            });
        }
        let head =
            self.storage
                .commit_block(block, certificate, set_change.as_ref(), durability)?;
        // The schedules this block changed, followed by the books that read them.
        if let Some(s) =
            changed::<ValidatorSchedule>(block, EntryKey::validators(), "validator schedule")?
        {
            self.sets
                .follow(&s)
                .map_err(|e| corrupt("validator schedule", e))?;
        }
        if let Some(s) = changed::<quorate_proto::v1::ParamSchedule>(
            block,
            EntryKey::params(),
            "parameter schedule",
        )? {
            self.params
                .follow(&s)
                .map_err(|e| corrupt("parameter schedule", e))?;
        }
        if let Some(s) = changed::<quorate_proto::v1::ProtocolSchedule>(
            block,
            EntryKey::protocol(),
            "protocol schedule",
        )? {
            self.params
                .follow_protocol(&s)
                .map_err(|e| corrupt("protocol schedule", e))?;
        }
        self.params.committed(head.height);
        if let Some(s) = self.snapshots.get() {
            // Under the tip lock: nothing else commits until the snapshot's state is fixed.
            s.after_commit(&self.storage, head.height);
        }
        self.contracts.persisted(&block.new_code);
        *tip = (head.clone(), block.lthash.clone());
        Ok(head)
    }
}

/// The message a system entry holds after `block`, if the block changed it (removed: the
/// message's default, as when the last protocol activation is cancelled).
fn changed<M: Message + Default>(
    block: &ExecutedBlock,
    key: EntryKey,
    what: &str,
) -> Result<Option<M>, StorageError> {
    block
        .entries
        .iter()
        .find(|(k, _)| *k == key)
        .map(|(_, v)| M::decode(v.as_deref().unwrap_or_default()).map_err(|e| corrupt(what, e)))
        .transpose()
}
