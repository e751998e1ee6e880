//! Simulated clients: one per funded account, each sending its transactions one at a time
//! through a validator's admission queue (as the gRPC `Submit` does), waiting for the commit,
//! and sending the same transaction again, to the same or another validator, when no commit
//! shows within a timeout. An account is single-key (transfers), 2-of-2 (adds a key, raises its
//! thresholds, then co-signs every transfer) or a remitter (deposits into a reserve entry, then
//! remits from it through the system contract); the first account, the chain's trusted
//! deployer, deploys a counter with precompiled machine code that computes otherwise than its
//! bytecode (ADR 0010: the machine code is the contract) and then calls it.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use prost::Message;
use quorate_genesis::system::REMITTANCE;
use quorate_proto::contracts::remittance as rm;
use quorate_proto::crypto::Hash32;
use quorate_proto::tx::{body, cosign, sign, transfer_body, tx_hash};
use quorate_proto::v1::tx_body::Payload;
use quorate_proto::v1::{
    key_change, Call, Deploy, ExecStatus, KeyChange, Receipt, Thresholds, Transaction, WeightedKey,
};
use quorate_proto::{Address, Keypair};
use rand::Rng;

use super::{Violation, World, ACCOUNTS, VALIDATORS};
use crate::admission_queue::Origin;

/// How long a client waits for its transaction's commit before sending it again.
const COMMIT_WAIT: Duration = Duration::from_secs(8);
/// How long a client waits for admission's answer.
const ADMIT_WAIT: Duration = Duration::from_secs(5);
/// Reserve entry remitters deposit into.
const ENTRY: &str = "sim";
/// Fuel of the counter's deploy (its machine code pays per byte, like bytecode).
const DEPLOY_FUEL: u64 = 900_000;
/// Fuel of a call of the counter.
const CALL_FUEL: u64 = 200_000;
/// The counter's value after its `init`.
pub(crate) const COUNTER_START: u64 = 41;
/// The deployer's (the chain admin's) nonce that changes chain parameters (ADR 0017) instead of
/// calling the counter: every later height is judged by the new ones.
const PARAMS_NONCE: u64 = 3;

/// The deployer's nonce that activates protocol version 2 from a few heights on (ADR 0019), in
/// builds that support it (feature `protocol-test-v2`); in others the counter is called.
const ACTIVATE_NONCE: u64 = 5;

/// Whether the deployer's transaction of `nonce` is the protocol activation.
fn activates(nonce: u64) -> bool {
    crate::protocol::SUPPORTED >= 2 && nonce == ACTIVATE_NONCE
}

/// The activation of version 2 at the earliest height a validator's published head allows,
/// with a few heights to spare for the transaction's way into a block.
fn activation(world: &World) -> Payload {
    let head = (0..VALIDATORS)
        .map(|v| world.validators[v].lock().acked_head)
        .max()
        .unwrap_or(0);
    let height = head + world.generated.genesis.params.validator_set_delay + 4;
    Payload::Admin(quorate_proto::v1::Admin {
        action: Some(quorate_proto::v1::admin::Action::ActivateProtocol(
            quorate_proto::v1::ActivateProtocol { version: 2, height },
        )),
    })
}

/// The parameter change the chain admin makes: fewer and smaller transactions per block, still
/// above anything the clients send.
fn param_change() -> Payload {
    Payload::Admin(quorate_proto::v1::Admin {
        action: Some(quorate_proto::v1::admin::Action::SetParams(
            quorate_proto::v1::ParamChanges {
                values: [("block_max_txs", 200), ("max_tx_bytes", 65_536)]
                    .into_iter()
                    .map(|(name, value)| quorate_proto::v1::ParamValue {
                        name: name.into(),
                        value,
                    })
                    .collect(),
            },
        )),
    })
}

/// The deploy the trusted deployer sends: the bytecode of a counter whose `inc` adds 1, the
/// machine code (built by the chain's engine) of one whose `inc` adds 2.
pub(crate) struct Precompiled {
    /// The bytecode deployed.
    pub bytecode: Bytes,
    /// The machine code deployed with it (of the other counter).
    pub machine_code: Bytes,
    /// The chain's engine, which built it.
    pub engine: [u8; 32],
}

impl Precompiled {
    /// Builds the deploy with the engine of `params`.
    pub fn build(params: &quorate_genesis::ChainParams) -> Self {
        let (by_one, by_two) = crate::counter_contract::counters_by_one_and_two();
        let builder = quorate_vm::Vm::<crate::execution::WorldState>::new(
            crate::contracts::vm_config(params),
        )
        .expect("the chain's engine builds");
        Self {
            machine_code: Bytes::from(
                builder
                    .precompile(&by_two)
                    .expect("the counter precompiles"),
            ),
            bytecode: Bytes::from(by_one),
            engine: builder.fingerprint().0,
        }
    }
}

/// The counter the trusted deployer (account 0) deploys with its first transaction.
pub(crate) fn counter_address(world: &World) -> Address {
    Address::of_contract(&world.generated.account_keys[0].address(), 0)
}

/// What an account sends.
#[derive(Clone, Copy, Debug)]
enum Role {
    Single,
    Multisig,
    Remitter,
    /// Deploys the precompiled counter, then calls it.
    Deployer,
}

/// Runs every client until aborted.
pub(crate) async fn run(world: Arc<World>) {
    let mut clients = tokio::task::JoinSet::new();
    for k in 0..ACCOUNTS {
        let role = world.rng(|r| match r.gen_range(0..4u8) {
            0 => Role::Multisig,
            1 => Role::Remitter,
            _ => Role::Single,
        });
        // The first account is the chain's trusted deployer (its role is drawn all the same,
        // so the other accounts' roles are those of a run without it).
        let role = if k == 0 { Role::Deployer } else { role };
        clients.spawn(client(world.clone(), k, role));
    }
    while clients.join_next().await.is_some() {}
}

/// The second key of a 2-of-2 account.
fn second_key(key: &Keypair) -> Keypair {
    Keypair::from_secret(&Hash32::of(&[&key.public().0[..], b"second"].concat()).0)
}

/// Account `k`'s transaction of `nonce`.
fn transaction(world: &World, k: usize, role: Role, nonce: u64) -> Transaction {
    let g = &world.generated;
    let chain_id = &g.genesis.chain_id;
    let key = &g.account_keys[k];
    let fuel = g.genesis.params.transfer_fuel;
    let to = g.account_keys[(k + 1 + nonce as usize) % ACCOUNTS].address();
    let to = if to == key.address() {
        g.account_keys[(k + 2) % ACCOUNTS].address()
    } else {
        to
    };
    let keys = |change| {
        Payload::Keys(KeyChange {
            change: Some(change),
        })
    };
    match (role, nonce) {
        (Role::Multisig, 0) => {
            let add = key_change::Change::AddKey(WeightedKey {
                public_key: Bytes::copy_from_slice(&second_key(key).public().0),
                weight: 1,
            });
            sign(&body(chain_id, key, nonce, fuel, keys(add)), key)
        }
        (Role::Multisig, 1) => {
            let t = key_change::Change::SetThresholds(Thresholds {
                base: 2,
                key_management: 2,
                ..Thresholds::default()
            });
            sign(&body(chain_id, key, nonce, fuel, keys(t)), key)
        }
        (Role::Multisig, _) => {
            let mut tx = sign(
                &transfer_body(chain_id, key, nonce, fuel, to, 1 + nonce, Vec::new()),
                key,
            );
            cosign(&mut tx, &second_key(key));
            tx
        }
        (Role::Remitter, 0) => {
            let args = rm::DepositArgs {
                entry: ENTRY.into(),
            };
            sign(
                &body(
                    chain_id,
                    key,
                    0,
                    1_000_000,
                    call("deposit", &args, 1_000_000),
                ),
                key,
            )
        }
        (Role::Remitter, _) => {
            let args = rm::RemitArgs {
                remittee: Bytes::copy_from_slice(&to.0),
                amount: 1,
                allocations: vec![rm::Allocation {
                    entry: ENTRY.into(),
                    amount: 1,
                }],
                memo: String::new(),
            };
            sign(
                &body(chain_id, key, nonce, 200_000, call("remit", &args, 0)),
                key,
            )
        }
        (Role::Deployer, 0) => {
            let p = &world.precompiled;
            let deploy = Payload::Deploy(Deploy {
                code: p.bytecode.clone(),
                machine_code: p.machine_code.clone(),
                engine_fingerprint: Bytes::copy_from_slice(&p.engine),
                init_args: Bytes::copy_from_slice(&COUNTER_START.to_le_bytes()),
            });
            sign(&body(chain_id, key, 0, DEPLOY_FUEL, deploy), key)
        }
        (Role::Deployer, PARAMS_NONCE) => {
            sign(&body(chain_id, key, nonce, fuel, param_change()), key)
        }
        (Role::Deployer, n) if activates(n) => {
            sign(&body(chain_id, key, nonce, fuel, activation(world)), key)
        }
        (Role::Deployer, _) => {
            let inc = Payload::Call(Call {
                contract: Bytes::copy_from_slice(&counter_address(world).0),
                method: "inc".into(),
                args: Bytes::new(),
                value: 0,
            });
            sign(&body(chain_id, key, nonce, CALL_FUEL, inc), key)
        }
        (Role::Single, _) => sign(
            &transfer_body(chain_id, key, nonce, fuel, to, 1 + nonce, Vec::new()),
            key,
        ),
    }
}

fn call(method: &str, args: &impl Message, value: u64) -> Payload {
    Payload::Call(Call {
        contract: Bytes::copy_from_slice(&Address::of_system_contract(REMITTANCE).0),
        method: method.to_owned(),
        args: Bytes::from(args.encode_to_vec()),
        value,
    })
}

/// Account `k`'s client: each transaction until it is acknowledged as committed, then the next.
async fn client(world: Arc<World>, k: usize, role: Role) {
    for nonce in 0.. {
        let tx = transaction(&world, k, role, nonce);
        let hash = tx_hash(&tx.body);
        world
            .checks
            .signed(hash, quorate_proto::tx::tx_leaf(&hash, &tx));
        'acknowledged: loop {
            let (pause, v) = world.rng(|r| {
                (
                    Duration::from_millis(r.gen_range(20..1_500)),
                    r.gen_range(0..VALIDATORS),
                )
            });
            tokio::time::sleep(pause).await;
            let queue = world.validators[v]
                .lock()
                .running
                .as_ref()
                .map(|r| r.queue.clone());
            let Some(queue) = queue else {
                continue;
            };
            world.stats.lock().submissions += 1;
            // A refusal (already pending, already committed) is no reason to stop looking.
            let _ = tokio::time::timeout(ADMIT_WAIT, queue.admit(vec![tx.clone()], Origin::Client))
                .await;
            drop(queue);
            let waited = tokio::time::Instant::now();
            while waited.elapsed() < COMMIT_WAIT {
                tokio::time::sleep(Duration::from_millis(200)).await;
                if let Some((height, receipt)) = acknowledged(&world, v, &hash) {
                    world.checks.acknowledge(hash, height);
                    world.stats.lock().acknowledged += 1;
                    if let Role::Deployer = role {
                        // A liar's receipts are its own: take an honest validator's.
                        let honest = if world.plan.honest(v) {
                            Some((v, receipt))
                        } else {
                            (0..VALIDATORS)
                                .filter(|u| world.plan.honest(*u))
                                .find_map(|u| committed(&world, u, &hash).map(|(_, r)| (u, r)))
                        };
                        if let Some((u, receipt)) = honest {
                            counter_receipt(&world, u, nonce, height, receipt);
                        }
                    }
                    break 'acknowledged;
                }
            }
        }
    }
}

/// The height at which validator `v` reports `hash` committed, and its receipt, if it does and
/// has published that height (what a client's status query would be told).
fn acknowledged(world: &World, v: usize, hash: &Hash32) -> Option<(u64, Option<Receipt>)> {
    committed(world, v, hash).filter(|(height, _)| *height <= world.validators[v].lock().acked_head)
}

/// The height at which validator `v`'s storage holds `hash`, and its receipt.
fn committed(world: &World, v: usize, hash: &Hash32) -> Option<(u64, Option<Receipt>)> {
    let slot = world.validators[v].lock();
    let record = slot.running.as_ref()?.chain.storage().tx(hash).ok()??;
    Some((record.height, record.receipt))
}

/// The trusted deployer's transaction of `nonce`, committed at `height` with `receipt` as
/// honest validator `v` reports it: the deploy must create the counter, the parameter change
/// succeed, and call `n` must return `COUNTER_START + 2n` (the machine code's step, not the
/// bytecode's).
fn counter_receipt(world: &World, v: usize, nonce: u64, height: u64, receipt: Option<Receipt>) {
    let success = receipt
        .as_ref()
        .is_some_and(|r| r.status == ExecStatus::Success as i32);
    let why = if nonce == 0 {
        let created = receipt
            .as_ref()
            .is_some_and(|r| r.contract_address.as_ref() == counter_address(world).0);
        if success && created {
            world.counter.lock().deployed_at = Some(height);
            return;
        }
        format!("the deploy did not create the counter: {receipt:?}")
    } else if nonce == PARAMS_NONCE {
        if success {
            world.stats.lock().param_changes += 1;
            return;
        }
        format!("the parameter change failed: {receipt:?}")
    } else if activates(nonce) {
        let r = receipt.as_ref();
        if success {
            let at = r.and_then(|r| {
                quorate_proto::v1::ProtocolActivation::decode(r.return_data.as_ref()).ok()
            });
            world.stats.lock().protocol_activated_at = at.map(|a| a.from_height);
            return;
        }
        // Too slow into a block for the height it named: refused, and nothing changes.
        if r.is_some_and(|r| r.error.contains("at the earliest")) {
            return;
        }
        format!("the protocol activation failed: {receipt:?}")
    } else {
        let calls = nonce
            - u64::from(nonce > PARAMS_NONCE)
            - u64::from(crate::protocol::SUPPORTED >= 2 && nonce > ACTIVATE_NONCE);
        let expected = COUNTER_START + 2 * calls;
        let returned = receipt
            .as_ref()
            .and_then(|r| <[u8; 8]>::try_from(r.return_data.as_ref()).ok())
            .map(u64::from_le_bytes);
        if success && returned == Some(expected) {
            world.counter.lock().calls.push(height);
            world.stats.lock().counter_calls += 1;
            return;
        }
        format!("call {nonce} returned {returned:?}, not {expected}: {receipt:?}")
    };
    world
        .checks
        .violate(Violation::Counter { validator: v, why });
}
