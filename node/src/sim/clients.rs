//! Simulated clients: one per funded account, each sending its transactions one at a time
//! through a validator's admission queue (as the gRPC `Submit` does), waiting for the commit,
//! and sending the same transaction again, to the same or another validator, when no commit
//! shows within a timeout. An account is single-key (transfers), 2-of-2 (adds a key, raises its
//! thresholds, then co-signs every transfer) or a remitter (deposits into a reserve entry, then
//! remits from it through the system contract).

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use prost::Message;
use quorate_genesis::system::REMITTANCE;
use quorate_proto::contracts::remittance as rm;
use quorate_proto::crypto::Hash32;
use quorate_proto::tx::{body, cosign, sign, transfer_body, tx_hash};
use quorate_proto::v1::tx_body::Payload;
use quorate_proto::v1::{key_change, Call, KeyChange, Thresholds, Transaction, WeightedKey};
use quorate_proto::{Address, Keypair};
use rand::Rng;

use super::{World, ACCOUNTS, VALIDATORS};
use crate::admission_queue::Origin;

/// How long a client waits for its transaction's commit before sending it again.
const COMMIT_WAIT: Duration = Duration::from_secs(8);
/// How long a client waits for admission's answer.
const ADMIT_WAIT: Duration = Duration::from_secs(5);
/// Reserve entry remitters deposit into.
const ENTRY: &str = "sim";

/// What an account sends.
#[derive(Clone, Copy, Debug)]
enum Role {
    Single,
    Multisig,
    Remitter,
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
                if let Some(height) = acknowledged(&world, v, &hash) {
                    world.checks.acknowledge(hash, height);
                    world.stats.lock().acknowledged += 1;
                    break 'acknowledged;
                }
            }
        }
    }
}

/// The height at which validator `v` reports `hash` committed, if it does and has published
/// that height (what a client's status query would be told).
fn acknowledged(world: &World, v: usize, hash: &Hash32) -> Option<u64> {
    let slot = world.validators[v].lock();
    let r = slot.running.as_ref()?;
    let record = r.chain.storage().tx(hash).ok()??;
    (record.height <= slot.acked_head).then_some(record.height)
}
