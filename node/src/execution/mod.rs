//! Execution: applies transactions to state (native transfers, contract deploys and calls,
//! admin actions) and builds the pre-processed block whose header carries the resulting state
//! and receipt roots.

mod governance;
mod params;
mod protocol;
mod speculation;
mod upgrades;
mod world;

use std::collections::HashMap;
use std::sync::Arc;

use bytes::Bytes;
use prost::Message;
use quorate_genesis::ChainParams;
use quorate_proto::crypto::{Address, Hash32};
use quorate_proto::merkle;
use quorate_proto::v1::{BlockHeader, Event, ExecStatus, KeyChange, Receipt, ValidatorSchedule};
use quorate_vm::{BlockEnv, CallOutcome, CallRequest, Failure, INIT_METHOD};

pub use speculation::{ParallelMode, ParallelPolicy, ParallelStats};
pub use world::WorldState;

use crate::block_rules::BlockRejection;
use crate::contracts::ContractRuntime;
use crate::state_root::LtHash;
use crate::storage::{
    corrupt, Account, ContractRecord, EntryKey, ExecutedBlock, Head, NewCode, Storage, StorageError,
};
use crate::validator_sets::change_schedule;
use crate::verified_tx::authority::{authorize, deciding_set, AuthError};
use crate::verified_tx::{check_params, AdminAction, Payload, VerifiedTx};

/// Why a transaction cannot be part of a block at all (as opposed to failing with a receipt).
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum InvalidTx {
    /// Nonce is not the account's next.
    #[error("nonce {got} of {account} is not its next nonce {expected}")]
    Nonce {
        /// Account.
        account: Address,
        /// Offered.
        got: u64,
        /// Expected.
        expected: u64,
    },
    /// Signed by a key that has no say over a single-key account (not the key its address is
    /// derived from): never admitted, so only a dishonest proposer includes one.
    #[error("{0}")]
    Unauthorized(String),
    /// Larger, or with a higher fuel limit, than the parameters of the block's height allow
    /// (admitted under earlier parameters; ADR 0017).
    #[error("under the parameters of this height: {0}")]
    OutsideParams(String),
    /// Cannot pay the fee for the fuel it uses.
    #[error("account {account} cannot pay fee {fee} from balance {balance}")]
    CannotPayFee {
        /// Account.
        account: Address,
        /// Fee.
        fee: u64,
        /// Balance.
        balance: u64,
    },
}

impl InvalidTx {
    /// A nonce past the account's next: includable once the nonces before it are used.
    pub fn nonce_ahead(&self) -> bool {
        matches!(self, Self::Nonce { got, expected, .. } if got > expected)
    }
}

/// The receipt status of a contract failure.
pub fn failure_status(f: &Failure) -> ExecStatus {
    match f {
        Failure::Trap(_) => ExecStatus::Trapped,
        Failure::Aborted(_) => ExecStatus::Aborted,
        Failure::OutOfFuel => ExecStatus::OutOfFuel,
        Failure::OutOfMemory(_) => ExecStatus::OutOfMemory,
        Failure::PermissionDenied(_) => ExecStatus::PermissionDenied,
        Failure::BadInput(_) => ExecStatus::BadInput,
        Failure::InsufficientFunds(_) => ExecStatus::InsufficientFunds,
    }
}

/// What a deploy, call or admin action did, before fees.
struct Outcome {
    status: ExecStatus,
    /// Fuel beyond the intrinsic fuel.
    fuel: u64,
    error: String,
    events: Vec<Event>,
    return_data: Bytes,
    contract_address: Bytes,
}

impl Outcome {
    fn failed(status: ExecStatus, error: String) -> Self {
        Self {
            status,
            fuel: 0,
            error,
            events: Vec::new(),
            return_data: Bytes::new(),
            contract_address: Bytes::new(),
        }
    }

    fn success() -> Self {
        Self::failed(ExecStatus::Success, String::new())
    }

    /// From a contract call's outcome.
    fn of_call(out: CallOutcome) -> Self {
        match out.result {
            Ok(data) => Self {
                status: ExecStatus::Success,
                fuel: out.fuel_used,
                error: String::new(),
                events: out
                    .events
                    .into_iter()
                    .map(|e| Event {
                        source: "contract".into(),
                        kind: e.kind,
                        data: Bytes::from(e.data),
                        contract: Bytes::copy_from_slice(&e.contract.0),
                    })
                    .collect(),
                return_data: Bytes::from(data),
                contract_address: Bytes::new(),
            },
            Err(f) => Self {
                fuel: out.fuel_used,
                ..Self::failed(failure_status(&f), f.to_string())
            },
        }
    }
}

/// Applies the transactions of one block, in order, over committed state.
pub struct BlockExecutor<'a> {
    params: &'a ChainParams,
    /// The genesis parameters: no parameter change lets blocks or transactions outgrow them.
    ceiling: &'a ChainParams,
    contracts: &'a ContractRuntime,
    env: BlockEnv,
    state: WorldState,
    new_code: Vec<NewCode>,
    /// Accounts whose key set a transaction of this block changed (registered or changed).
    keys_changed: std::collections::HashSet<Address>,
    /// The protocol version whose rules the block follows (ADR 0019).
    protocol: u32,
    /// The block's contract calls run ahead (ADR 0020).
    ahead: speculation::Ahead,
    /// The run ahead of the transaction being applied.
    pending: Option<speculation::RunAhead>,
    /// Transactions included so far: the position of the next one in the block.
    included: u32,
    /// The block's transactions, while calls of it run ahead.
    block: Vec<Arc<VerifiedTx>>,
}

/// The engine request of a call transaction given `fuel` for its code (`None` for other
/// payloads).
fn call_request(tx: &VerifiedTx, fuel: u64, env: BlockEnv) -> Option<CallRequest<'_>> {
    match &tx.payload {
        Payload::Call {
            contract,
            method,
            args,
            value,
        } => Some(CallRequest {
            origin: tx.signer,
            caller: tx.signer,
            contract: *contract,
            method,
            input: args,
            value: *value,
            fuel,
            read_only: false,
            deploying: false,
            env,
        }),
        _ => None,
    }
}

/// Entries a contract call is expected to touch, to size a block's entry map once (a remit
/// touches six, most calls fewer; the map grows past this when needed). Bounded by the
/// block's transaction limit.
const ENTRIES_PER_CALL: usize = 4;

impl<'a> BlockExecutor<'a> {
    /// An executor for the block at `env` on top of `storage`'s committed state, with
    /// `parent`'s changes over it when that block's commit may still be under way.
    pub fn new(
        storage: &Arc<Storage>,
        parent: Option<Arc<ExecutedBlock>>,
        (params, ceiling): (&'a ChainParams, &'a ChainParams),
        contracts: &'a ContractRuntime,
        env: BlockEnv,
    ) -> Self {
        Self {
            params,
            ceiling,
            contracts,
            env,
            state: WorldState::on(storage.clone(), parent),
            new_code: Vec::new(),
            keys_changed: std::collections::HashSet::new(),
            protocol: 1,
            ahead: speculation::Ahead::none(),
            pending: None,
            included: 0,
            block: Vec::new(),
        }
    }

    /// The block's environment for the transaction being applied (its place in the block).
    fn tx_env(&self) -> BlockEnv {
        BlockEnv {
            tx_index: self.included,
            ..self.env
        }
    }

    /// The same executor following the rules of protocol `version` (1 unless told).
    pub fn following(mut self, version: u32) -> Self {
        self.protocol = version;
        self
    }

    /// Runs the contract calls of `txs` (the block, in order) ahead, in parallel, over the
    /// state so far, as the contract runtime's policy chooses; [`Self::apply_at`] keeps each
    /// run only where it equals running the call in order (ADR 0020).
    pub fn run_ahead(&mut self, txs: &[Arc<VerifiedTx>]) -> Result<(), StorageError> {
        let params = self.params;
        if self.contracts.parallel().mode() == ParallelMode::Off {
            return Ok(());
        }
        // Only calls that can be applied as far as the block's start shows (their nonce comes
        // next, they fit the parameters, the signer can reserve the fee from its block-start
        // balance, the contract exists): a block a dishonest proposer filled with calls that
        // are never applied costs at most one extra run per call.
        let mut next_nonce: HashMap<Address, u64> = HashMap::new();
        let mut calls: Vec<(usize, Address)> = Vec::new();
        for (i, tx) in txs.iter().enumerate() {
            let signer = self.state.account(&tx.signer)?;
            let next = next_nonce.entry(tx.signer).or_insert(signer.nonce);
            let in_turn = tx.nonce == *next;
            if in_turn {
                *next += 1;
            }
            let Payload::Call { contract, .. } = &tx.payload else {
                continue;
            };
            let applicable = in_turn
                && check_params(tx, params).is_ok()
                && tx.payload.intrinsic_fuel(params) <= tx.fuel_limit
                && signer.balance >= tx.fuel_limit.saturating_mul(params.fuel_price);
            // Whether a record is there, without decoding it (this runs for every call).
            if applicable && self.state.entry(&EntryKey::contract(contract))?.is_some() {
                calls.push((i, *contract));
            }
        }
        let calls = self.contracts.parallel().choose(calls);
        if calls.is_empty() {
            return Ok(());
        }
        let signers: Vec<Address> = txs.iter().map(|t| t.signer).collect();
        let one_wave = self.contracts.parallel().one_wave();
        self.ahead = speculation::Ahead::planned(txs.len(), calls, &signers, one_wave);
        self.block = txs.to_vec();
        self.run_wave_at(0);
        Ok(())
    }

    /// Runs the wave of calls ahead that is due at position `at` of the block, if any.
    fn run_wave_at(&mut self, at: usize) {
        let wave = self.ahead.wave_at(at);
        if wave.is_empty() {
            return;
        }
        let (vm, env, params, txs) = (self.contracts.vm(), self.env, self.params, &self.block);
        // Transactions left out before `at` shift the places of those after it.
        let left_out = at as u32 - self.included;
        let stand_in = self.state.detached();
        let base = std::mem::replace(&mut self.state, stand_in);
        let (state, runs) = speculation::run_wave(base, wave, left_out, |i, state| {
            let tx = &txs[i];
            let fuel = tx.fuel_limit - tx.payload.intrinsic_fuel(params);
            // Its place if every transaction from `at` to it is included (checked when
            // settled).
            let env = BlockEnv {
                tx_index: i as u32 - left_out,
                ..env
            };
            let request = call_request(tx, fuel, env).expect("only calls run ahead");
            let (state, outcome) = vm.call(state, &request);
            (state, outcome.ok())
        });
        self.state = state;
        self.ahead.ran(runs);
    }

    /// [`Self::apply`] for the transaction at `index` of the block given to
    /// [`Self::run_ahead`], keeping its run ahead where it equals running it here.
    pub fn apply_at(
        &mut self,
        index: usize,
        tx: &VerifiedTx,
    ) -> Result<Result<Receipt, InvalidTx>, StorageError> {
        self.run_wave_at(index);
        self.pending = self.ahead.take(index);
        let applied = self.apply(tx);
        self.pending = None;
        applied
    }

    /// Hands the tally of the block's runs ahead to the runtime's policy.
    fn finish_ahead(&mut self) {
        let ahead = std::mem::replace(&mut self.ahead, speculation::Ahead::none());
        ahead.finish(self.contracts.parallel());
    }

    /// Loads every account `txs` can touch directly with one multi-get, and makes room for the
    /// entries their contract calls will touch.
    pub fn prefetch(&mut self, txs: &[Arc<VerifiedTx>]) -> Result<(), StorageError> {
        let mut addrs: Vec<Address> = Vec::with_capacity(txs.len() * 2);
        let mut calls = 0;
        for t in txs {
            addrs.push(t.signer);
            match t.payload {
                Payload::Transfer { to, .. } => addrs.push(to),
                Payload::Call { .. } => calls += 1,
                _ => (),
            }
        }
        self.state.reserve_entries(calls * ENTRIES_PER_CALL);
        self.state.prefetch(&mut addrs)
    }

    /// Applies one transaction: checks nonce, signing keys and fee, bumps the nonce, runs the
    /// payload and charges the fee for the fuel used. A payload failure still charges the fee
    /// and yields a failed receipt (its own effects undone); signatures short of the weight the
    /// key set at this block asks yield an `INSUFFICIENT_WEIGHT` receipt when a transaction of
    /// this block changed that key set: the nonce is used and a transfer's fee charged, nothing
    /// else changes (so its hash, included once, can never be included again: issue 25);
    /// keys that do not authorise it against the set the block started with never did (its
    /// copy was re-signed or co-signed by someone else): an `InvalidTx`. An `InvalidTx` changes
    /// nothing.
    pub fn apply(&mut self, tx: &VerifiedTx) -> Result<Result<Receipt, InvalidTx>, StorageError> {
        let applied = self.apply_here(tx)?;
        if applied.is_ok() {
            self.included += 1;
        }
        Ok(applied)
    }

    /// [`Self::apply`] at the current place.
    fn apply_here(&mut self, tx: &VerifiedTx) -> Result<Result<Receipt, InvalidTx>, StorageError> {
        if let Err(e) = check_params(tx, self.params) {
            return Ok(Err(InvalidTx::OutsideParams(e.to_string())));
        }
        let signer = self.state.account(&tx.signer)?;
        if tx.nonce != signer.nonce {
            return Ok(Err(InvalidTx::Nonce {
                account: tx.signer,
                got: tx.nonce,
                expected: signer.nonce,
            }));
        }
        let committed = if signer.keyed {
            Some(self.state.key_set(&tx.signer)?)
        } else {
            None
        };
        match authorize(tx, deciding_set(tx, committed.as_ref())) {
            Ok(()) => {}
            Err(e @ AuthError::SignerMismatch { .. }) => {
                return Ok(Err(InvalidTx::Unauthorized(e.to_string())))
            }
            Err(e) if !self.keys_changed.contains(&tx.signer) => {
                return Ok(Err(InvalidTx::Unauthorized(e.to_string())))
            }
            Err(e) => {
                let (signer, fuel_used, fee) = match self.charge_transfer_fee(tx, signer) {
                    Ok(charged) => charged,
                    Err(invalid) => return Ok(Err(invalid)),
                };
                self.state.set_account(tx.signer, signer);
                self.state.seal_transaction();
                let status = ExecStatus::InsufficientWeight;
                return Ok(Ok(receipt(tx, status, fuel_used, fee, e.to_string())));
            }
        }
        let r = match &tx.payload {
            Payload::Transfer { to, amount } => self.transfer(tx, signer, *to, *amount)?,
            _ => self.contract_tx(tx, signer)?,
        };
        self.state.seal_transaction();
        Ok(r)
    }

    /// `signer` after paying a transfer's fee and using `tx`'s nonce, with the fuel used and
    /// the fee: out of fuel (admission refuses such limits; a proposer could still include
    /// one), the whole limit is charged. Bounded: genesis checks max_fuel_per_tx × fuel_price.
    fn charge_transfer_fee(
        &self,
        tx: &VerifiedTx,
        mut signer: Account,
    ) -> Result<(Account, u64, u64), InvalidTx> {
        let fuel_used = self.params.transfer_fuel.min(tx.fuel_limit);
        let fee = fuel_used.saturating_mul(self.params.fuel_price);
        if signer.balance < fee {
            return Err(InvalidTx::CannotPayFee {
                account: tx.signer,
                fee,
                balance: signer.balance,
            });
        }
        signer.balance -= fee;
        signer.nonce += 1;
        Ok((signer, fuel_used, fee))
    }

    fn transfer(
        &mut self,
        tx: &VerifiedTx,
        signer: Account,
        to: Address,
        amount: u64,
    ) -> Result<Result<Receipt, InvalidTx>, StorageError> {
        let fuel_needed = self.params.transfer_fuel;
        let (mut signer, fuel_used, fee) = match self.charge_transfer_fee(tx, signer) {
            Ok(charged) => charged,
            Err(invalid) => return Ok(Err(invalid)),
        };
        self.register_key_set(tx, &mut signer)?;
        if fuel_needed > tx.fuel_limit {
            self.state.set_account(tx.signer, signer);
            let msg = format!("transfer needs {fuel_needed} fuel");
            return Ok(Ok(receipt(tx, ExecStatus::OutOfFuel, fuel_used, fee, msg)));
        }
        if signer.balance < amount {
            let msg = format!(
                "balance {} after fee is below amount {amount}",
                signer.balance
            );
            self.state.set_account(tx.signer, signer);
            return Ok(Ok(receipt(
                tx,
                ExecStatus::InsufficientFunds,
                fuel_used,
                fee,
                msg,
            )));
        }
        signer.balance -= amount;
        self.state.set_account(tx.signer, signer);
        let mut recipient = self.state.account(&to)?;
        // Total supply fits in u64 (genesis checks it and fees only burn), so this cannot overflow.
        recipient.balance = recipient
            .balance
            .checked_add(amount)
            .expect("supply fits in u64");
        self.state.set_account(to, recipient);
        let mut done = receipt(tx, ExecStatus::Success, fuel_used, fee, String::new());
        if crate::protocol::marks_transfers(self.protocol) {
            done.events.push(Event {
                source: "protocol".into(),
                kind: "v2".into(),
                data: Bytes::new(),
                contract: Bytes::new(),
            });
        }
        Ok(Ok(done))
    }

    /// Deploys, calls and admin actions: the maximum fee is reserved up front (so a value
    /// sent with a call can never eat into it), the payload runs, and the unused fuel is
    /// refunded.
    fn contract_tx(
        &mut self,
        tx: &VerifiedTx,
        mut signer: Account,
    ) -> Result<Result<Receipt, InvalidTx>, StorageError> {
        let price = self.params.fuel_price;
        let intrinsic = tx.payload.intrinsic_fuel(self.params);
        // Bounded: genesis checks max_fuel_per_tx × fuel_price, admission the fuel limit.
        let reserved = tx.fuel_limit.saturating_mul(price);
        if signer.balance < reserved {
            return Ok(Err(InvalidTx::CannotPayFee {
                account: tx.signer,
                fee: reserved,
                balance: signer.balance,
            }));
        }
        signer.balance -= reserved;
        signer.nonce += 1;
        self.register_key_set(tx, &mut signer)?;
        self.state.set_account(tx.signer, signer);
        let outcome = if intrinsic > tx.fuel_limit {
            Outcome {
                fuel: 0,
                ..Outcome::failed(
                    ExecStatus::OutOfFuel,
                    format!("this transaction needs {intrinsic} fuel before any code runs"),
                )
            }
        } else {
            let fuel = tx.fuel_limit - intrinsic;
            match &tx.payload {
                Payload::Deploy {
                    code,
                    machine_code,
                    init_args,
                } => self.deploy(tx, fuel, code, machine_code.as_ref(), init_args)?,
                Payload::Call { .. } => {
                    let request = call_request(tx, fuel, self.tx_env()).expect("a call");
                    let kept = match self.pending.take() {
                        // A run ahead at another place (a transaction before it was left out)
                        // may have made ids of its place: it runs again here.
                        // (Not a collision: the policy is not told.)
                        Some(run) if run.tx_index != self.included => None,
                        Some(run) => {
                            let contract = run.contract;
                            let kept = run.settle(&mut self.state)?;
                            self.ahead.settled(contract, kept.is_some());
                            kept
                        }
                        None => None,
                    };
                    let out = match kept {
                        Some(out) => out,
                        None => self.run(&request)?,
                    };
                    Outcome::of_call(out)
                }
                Payload::Admin(action) => self.admin(tx, action)?,
                Payload::Governance(step) => self.governance(tx, step)?,
                Payload::Keys(change) => self.key_change(tx, change)?,
                Payload::Transfer { .. } => unreachable!("transfers take the native path"),
            }
        };
        let fuel_used = intrinsic.min(tx.fuel_limit) + outcome.fuel;
        let fee = fuel_used.saturating_mul(price);
        let mut signer = self.state.account(&tx.signer)?;
        signer.balance = signer
            .balance
            .checked_add(reserved - fee)
            .expect("supply fits in u64");
        self.state.set_account(tx.signer, signer);
        Ok(Ok(Receipt {
            tx_hash: Bytes::copy_from_slice(&tx.hash.0),
            status: outcome.status as i32,
            fuel_used,
            fee,
            error: outcome.error,
            events: outcome.events,
            return_data: outcome.return_data,
            contract_address: outcome.contract_address,
        }))
    }

    /// Runs a contract call with the block's state lent to the engine.
    fn run(&mut self, req: &CallRequest<'_>) -> Result<CallOutcome, StorageError> {
        let stand_in = self.state.detached();
        let state = std::mem::replace(&mut self.state, stand_in);
        let (state, outcome) = self.contracts.vm().call(state, req);
        self.state = state;
        outcome.map_err(|e| StorageError::Engine(e.to_string()))
    }

    fn deploy(
        &mut self,
        tx: &VerifiedTx,
        fuel: u64,
        code: &Bytes,
        machine_code: Option<&(Bytes, [u8; 32])>,
        init_args: &Bytes,
    ) -> Result<Outcome, StorageError> {
        if machine_code.is_some() && self.state.entry(&EntryKey::trusted(&tx.signer))?.is_none() {
            return Ok(Outcome::failed(
                ExecStatus::PermissionDenied,
                format!(
                    "account {} is not a trusted deployer: only trusted deployers may send machine code",
                    tx.signer
                ),
            ));
        }
        // For a precompiled deploy the contract *is* its machine code (ADR 0010): it must be
        // built by the chain's engine, which every validator runs, and it is never replaced by
        // a compilation of the bytecode. The first deploy of a bytecode decides what runs for
        // it; later deploys of the same bytecode reuse that, whatever they send.
        if let Some((_, fp)) = machine_code {
            match self.state.entry(&EntryKey::engine())? {
                None => {
                    return Ok(Outcome::failed(
                        ExecStatus::BadInput,
                        "this chain takes no machine code: its genesis names no engine".into(),
                    ))
                }
                Some(chain) if chain.as_slice() != fp.as_slice() => {
                    return Ok(Outcome::failed(
                        ExecStatus::BadInput,
                        format!(
                            "machine code built by engine {}; the chain runs engine {}",
                            hex::encode(fp),
                            hex::encode(&chain)
                        ),
                    ))
                }
                Some(_) => {}
            }
        }
        let offered = machine_code.map(|(mc, _)| mc.to_vec());
        let (decided, executable, prepared) = self.prepare_code(code, offered)?;
        let prepared = match prepared {
            Ok(p) => p,
            Err(e) => {
                return Ok(Outcome::failed(
                    ExecStatus::BadInput,
                    format!("invalid contract code: {e}"),
                ))
            }
        };
        let address = Address::of_contract(&tx.signer, tx.nonce);
        if self.state.contract(&address)?.is_some() {
            return Ok(Outcome::failed(
                ExecStatus::BadInput,
                format!("a contract already exists at {address}"),
            ));
        }
        let record = ContractRecord {
            code_hash: Bytes::copy_from_slice(&prepared.code_hash.0),
            deployer: Bytes::copy_from_slice(&tx.signer.0),
            height: self.env.height,
            ..Default::default()
        };
        self.state
            .set_entry(EntryKey::contract(&address), Some(record.encode_to_vec()))?;
        let mut outcome = Outcome::success();
        if prepared.info.has_init {
            outcome = Outcome::of_call(self.run(&CallRequest {
                origin: tx.signer,
                caller: tx.signer,
                contract: address,
                method: INIT_METHOD,
                input: init_args,
                value: 0,
                fuel,
                read_only: false,
                deploying: true,
                env: self.tx_env(),
            })?);
            if outcome.status != ExecStatus::Success {
                // No contract without a successful init (the engine undid init's writes).
                self.state.set_entry(EntryKey::contract(&address), None)?;
                return Ok(outcome);
            }
        }
        if let Some(new) = prepared.new_code {
            if !self.new_code.iter().any(|c| c.code_hash == new.code_hash) {
                if let (false, Some(mc)) = (decided, executable) {
                    self.state
                        .set_entry(EntryKey::machine_code(&new.code_hash), Some(mc))?;
                }
                self.new_code.push(new);
            }
        }
        outcome.contract_address = Bytes::copy_from_slice(&address.0);
        Ok(outcome)
    }

    /// Checks and compiles `code` as the chain has decided it: code it already holds (committed,
    /// or stored by a parent block whose commit may still be under way, never by the timing of
    /// that write) runs as first decided (its machine code, if it came precompiled); new code
    /// runs `offered` machine code if any, else is compiled. Returns whether it was decided,
    /// the machine code used, and the prepared code or why it is invalid.
    #[allow(clippy::type_complexity)]
    fn prepare_code(
        &mut self,
        code: &Bytes,
        offered: Option<Vec<u8>>,
    ) -> Result<
        (
            bool,
            Option<Vec<u8>>,
            Result<crate::contracts::PreparedCode, quorate_vm::ValidationError>,
        ),
        StorageError,
    > {
        let code_hash = Hash32::of(code);
        let decided = self.state.has_code(&code_hash)?
            || self.new_code.iter().any(|c| c.code_hash == code_hash);
        let executable = if decided {
            self.state.entry(&EntryKey::machine_code(&code_hash))?
        } else {
            offered
        };
        let storage = self.state.storage().clone();
        let level = crate::protocol::abi_level(self.protocol);
        let prepared = self
            .contracts
            .prepare(&storage, code, executable.as_deref(), level)?;
        Ok((decided, executable, prepared))
    }

    /// A multi-signature address's first transaction registers the key set it carries — with
    /// its nonce and fee, once it is sure to be included (an `InvalidTx` leaves no trace).
    fn register_key_set(
        &mut self,
        tx: &VerifiedTx,
        signer: &mut Account,
    ) -> Result<(), StorageError> {
        if let (false, Some(set)) = (signer.keyed, &tx.key_set) {
            self.state
                .set_entry(EntryKey::key_set(&tx.signer), Some(set.encode_to_vec()))?;
            signer.keyed = true;
            self.keys_changed.insert(tx.signer);
        }
        Ok(())
    }

    /// Applies a change to the signer's key set (its single key's set when it has none yet);
    /// a change that would lock the account out fails with `BAD_INPUT`.
    fn key_change(&mut self, tx: &VerifiedTx, change: &KeyChange) -> Result<Outcome, StorageError> {
        let mut account = self.state.account(&tx.signer)?;
        let current = if account.keyed {
            self.state.key_set(&tx.signer)?
        } else {
            quorate_proto::keyset::single(&tx.primary_key())
        };
        match quorate_proto::keyset::apply_change(&current, change) {
            Err(e) => Ok(Outcome::failed(ExecStatus::BadInput, e.to_string())),
            Ok(next) => {
                self.state
                    .set_entry(EntryKey::key_set(&tx.signer), Some(next.encode_to_vec()))?;
                account.keyed = true;
                self.keys_changed.insert(tx.signer);
                self.state.set_account(tx.signer, account);
                Ok(Outcome::success())
            }
        }
    }

    fn admin(&mut self, tx: &VerifiedTx, action: &AdminAction) -> Result<Outcome, StorageError> {
        let admin = self.state.entry(&EntryKey::admin())?;
        if admin.as_deref() != Some(&tx.signer.0[..]) {
            return Ok(Outcome::failed(
                ExecStatus::PermissionDenied,
                format!("account {} is not the chain admin", tx.signer),
            ));
        }
        self.apply_admin(action)
    }

    /// Runs an administrative action the chain's authority (its admin, or its members through
    /// a proposal) decided.
    fn apply_admin(&mut self, action: &AdminAction) -> Result<Outcome, StorageError> {
        match action {
            AdminAction::SetTrustedDeployer(account, trusted) => {
                let value = trusted.then(|| vec![1u8]);
                self.state.set_entry(EntryKey::trusted(account), value)?;
            }
            // One authority at a time (ADR 0016): a single admin or a policy.
            AdminAction::SetAdmin(new) => {
                self.state
                    .set_entry(EntryKey::admin(), Some(new.0.to_vec()))?;
                if self.policy()?.is_some() {
                    self.state.set_entry(EntryKey::governance(), None)?;
                    self.end_governance_period()?;
                }
            }
            AdminAction::SetParams(changes) => return self.set_params(changes),
            AdminAction::UpgradeContract { name, code } => {
                return self.upgrade_contract(name, code)
            }
            AdminAction::ActivateProtocol { version, height } => {
                return self.activate_protocol(*version, *height)
            }
            AdminAction::SetPolicy(policy) => {
                self.state
                    .set_entry(EntryKey::governance(), Some(policy.encode_to_vec()))?;
                self.state.set_entry(EntryKey::admin(), None)?;
            }
            AdminAction::AddValidator(_)
            | AdminAction::RemoveValidator(_)
            | AdminAction::ReplaceValidator(..) => {
                let key = EntryKey::validators();
                let current = self
                    .state
                    .entry(&key)?
                    .ok_or_else(|| corrupt("validator schedule", "missing"))?;
                let current = ValidatorSchedule::decode(current.as_slice())
                    .map_err(|e| corrupt("validator schedule", e))?;
                let delay = self.params.validator_set_delay;
                match change_schedule(&current, action, self.env.height, delay) {
                    Ok(next) => {
                        self.state.set_entry(key, Some(next.encode_to_vec()))?;
                    }
                    Err(why) => return Ok(Outcome::failed(ExecStatus::BadInput, why.to_string())),
                }
            }
        }
        Ok(Outcome::success())
    }

    /// The state changes, the code to store and the accumulator updated from `lthash`.
    #[allow(clippy::type_complexity)]
    fn finish(
        self,
        lthash: LtHash,
    ) -> (
        Vec<(Address, Account)>,
        Vec<(EntryKey, Option<Vec<u8>>)>,
        Vec<NewCode>,
        LtHash,
    ) {
        let (changes, entries, lthash) = self.state.finish(lthash);
        (changes, entries, self.new_code, lthash)
    }
}

fn receipt(
    tx: &VerifiedTx,
    status: ExecStatus,
    fuel_used: u64,
    fee: u64,
    error: String,
) -> Receipt {
    Receipt {
        tx_hash: Bytes::copy_from_slice(&tx.hash.0),
        status: status as i32,
        fuel_used,
        fee,
        error,
        ..Receipt::default()
    }
}

/// Everything needed to build a block on top of `parent`.
pub struct BlockContext<'a> {
    /// Chain id.
    pub chain_id: &'a str,
    /// Chain parameters in force at the block's height.
    pub params: &'a ChainParams,
    /// The genesis parameters (the ceiling of size parameters).
    pub ceiling: &'a ChainParams,
    /// The contract engine.
    pub contracts: &'a ContractRuntime,
    /// The head the block extends.
    pub parent: &'a Head,
    /// State accumulator after `parent`.
    pub parent_lthash: &'a LtHash,
    /// Proposer's public key.
    pub proposer: [u8; 32],
    /// Block time, ms since the epoch (already clamped to be ≥ the parent's).
    pub time_ms: u64,
    /// Hash of the validator set deciding the height after this block.
    pub next_validators_hash: Hash32,
    /// The protocol version in force at the block's height (ADR 0019).
    pub protocol: u32,
    /// The parent block when its commit may still be under way (its changes are read over the
    /// storage); `None` when the storage holds the parent's state.
    pub uncommitted_parent: Option<&'a Arc<ExecutedBlock>>,
}

impl BlockContext<'_> {
    fn executor<'a>(&'a self, storage: &Arc<Storage>) -> BlockExecutor<'a> {
        BlockExecutor::new(
            storage,
            self.uncommitted_parent.cloned(),
            (self.params, self.ceiling),
            self.contracts,
            BlockEnv {
                height: self.parent.height + 1,
                time_ms: self.time_ms,
                tx_index: 0,
            },
        )
        .following(self.protocol)
    }
}

/// Executes `candidates` in order on top of the parent, leaving out the ones that cannot be
/// included, and builds the header with the resulting roots (the proposer's side).
pub fn build_block(
    storage: &Arc<Storage>,
    ctx: &BlockContext<'_>,
    candidates: Vec<Arc<VerifiedTx>>,
) -> Result<(ExecutedBlock, Vec<(Hash32, InvalidTx)>), StorageError> {
    let mut exec = ctx.executor(storage);
    exec.begin_block()?;
    exec.prefetch(&candidates)?;
    exec.run_ahead(&candidates)?;
    let mut txs = Vec::with_capacity(candidates.len());
    let mut receipts = Vec::with_capacity(candidates.len());
    let mut dropped = Vec::new();
    for (i, tx) in candidates.into_iter().enumerate() {
        match exec.apply_at(i, &tx)? {
            Ok(r) => {
                receipts.push(r);
                txs.push(tx);
            }
            Err(e) => dropped.push((tx.hash, e)),
        }
    }
    exec.finish_ahead();
    let state = exec.finish(ctx.parent_lthash.clone());
    Ok((seal(ctx, txs, receipts, state), dropped))
}

/// Re-executes a proposed block's transactions and checks its header (the validator's side).
/// Every transaction must be includable, and the roots must match.
pub fn validate_block(
    storage: &Arc<Storage>,
    ctx: &BlockContext<'_>,
    header: &BlockHeader,
    txs: Vec<Arc<VerifiedTx>>,
) -> Result<Result<ExecutedBlock, BlockRejection>, StorageError> {
    let ctx = BlockContext {
        time_ms: header.time_ms,
        ..*ctx
    };
    let mut exec = ctx.executor(storage);
    exec.begin_block()?;
    exec.prefetch(&txs)?;
    exec.run_ahead(&txs)?;
    let mut receipts = Vec::with_capacity(txs.len());
    for (i, tx) in txs.iter().enumerate() {
        match exec.apply_at(i, tx)? {
            Ok(r) => receipts.push(r),
            Err(e) => {
                return Ok(Err(BlockRejection::NotIncludable {
                    hash: tx.hash,
                    reason: e.to_string(),
                }))
            }
        }
    }
    exec.finish_ahead();
    let state = exec.finish(ctx.parent_lthash.clone());
    let mine = seal(&ctx, txs, receipts, state);
    if mine.header.tx_root != header.tx_root || mine.header.tx_count != header.tx_count {
        return Ok(Err(BlockRejection::TxRootMismatch {
            got: Hash32::from_slice(&mine.header.tx_root).unwrap_or_default(),
            expected: hex::encode(&header.tx_root),
        }));
    }
    if mine.header.next_validators_hash != header.next_validators_hash {
        return Ok(Err(BlockRejection::WrongNextValidators {
            got: hex::encode(&header.next_validators_hash),
            expected: ctx.next_validators_hash.to_hex(),
        }));
    }
    if mine.header != *header {
        return Ok(Err(BlockRejection::RootsMismatch {
            state: hex::encode(&mine.header.state_root),
            receipts: hex::encode(&mine.header.receipts_root),
            header_state: hex::encode(&header.state_root),
            header_receipts: hex::encode(&header.receipts_root),
        }));
    }
    Ok(Ok(mine))
}

#[allow(clippy::type_complexity)]
fn seal(
    ctx: &BlockContext<'_>,
    txs: Vec<Arc<VerifiedTx>>,
    receipts: Vec<Receipt>,
    (changes, entries, new_code, lthash): (
        Vec<(Address, Account)>,
        Vec<(EntryKey, Option<Vec<u8>>)>,
        Vec<NewCode>,
        LtHash,
    ),
) -> ExecutedBlock {
    let tx_hashes: Vec<Hash32> = txs.iter().map(|t| t.leaf).collect();
    // Encoding and hashing every receipt is a block's largest step after execution and the
    // state root: spread over rayon for large blocks (the order of the hashes is kept).
    let receipt_hash = |r: &Receipt| Hash32::of(&r.encode_to_vec());
    let receipt_hashes: Vec<Hash32> = if receipts.len() >= 64 {
        use rayon::prelude::*;
        receipts
            .par_iter()
            .with_min_len(32)
            .map(receipt_hash)
            .collect()
    } else {
        receipts.iter().map(receipt_hash).collect()
    };
    let header = BlockHeader {
        chain_id: ctx.chain_id.to_owned(),
        height: ctx.parent.height + 1,
        parent_hash: Bytes::copy_from_slice(&ctx.parent.hash.0),
        proposer: Bytes::copy_from_slice(&ctx.proposer),
        time_ms: ctx.time_ms,
        tx_root: Bytes::copy_from_slice(&merkle::root(&tx_hashes).0),
        state_root: Bytes::copy_from_slice(&lthash.root().0),
        receipts_root: Bytes::copy_from_slice(&merkle::root(&receipt_hashes).0),
        tx_count: txs.len() as u32,
        next_validators_hash: Bytes::copy_from_slice(&ctx.next_validators_hash.0),
        protocol_version: crate::protocol::header_field(ctx.protocol),
    };
    let header_bytes = Bytes::from(header.encode_to_vec());
    let hash = Hash32::of(&header_bytes);
    ExecutedBlock {
        header,
        header_bytes,
        hash,
        txs,
        receipts,
        changes,
        entries,
        new_code,
        lthash,
    }
}

#[cfg(test)]
mod contract_tests;
#[cfg(test)]
mod governance_tests;
#[cfg(test)]
mod key_set_tests;
#[cfg(test)]
mod parallel_tests;
#[cfg(test)]
mod protocol_tests;

#[cfg(test)]
mod tests;
