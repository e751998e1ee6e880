//! The stages after signature checks, one at a time, on 1024 transactions: mempool insert and
//! block selection, block execution of native transfers (state changes + state root), the
//! RocksDB block commit with and without fsync, and block execution of remittance contract
//! calls (the wasm system contract: instantiate + call per transaction).
//! Run: `cargo bench -p quorate-benches --bench stages`.

// criterion_group! generates an undocumented public function.
#![allow(missing_docs)]

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use prost::Message;
use quorate_genesis::system::REMITTANCE;
use quorate_genesis::{generate, Genesis};
use quorate_node::chain::Chain;
use quorate_node::mempool::{Mempool, MempoolLimits};
use quorate_node::storage::{Account, Storage, StorageOptions};
use quorate_node::verified_tx::{verify_block_txs, VerifiedTx};
use quorate_proto::contracts::remittance as rm;
use quorate_proto::crypto::Address;
use quorate_proto::tx::{body, sign, transfer_body};
use quorate_proto::v1::tx_body::Payload;
use quorate_proto::v1::{Call, Transaction};
use quorate_proto::Keypair;

const N: usize = 1024;
const SENDERS: usize = N / 8;
const BALANCE: u64 = 1_000_000_000_000;

struct Fixture {
    genesis: Genesis,
    validator: Keypair,
    accounts: Vec<Keypair>,
}

fn fixture() -> Fixture {
    let g = generate("bench", 1, SENDERS, BALANCE, 0).expect("genesis");
    Fixture {
        genesis: g.genesis,
        validator: g.validator_keys[0].clone(),
        accounts: g.account_keys,
    }
}

/// N transfers, 8 consecutive nonces per sender (from `first_nonce`).
fn transfers(f: &Fixture, first_nonce: u64) -> Vec<Transaction> {
    (0..N)
        .map(|i| {
            let from = &f.accounts[i % SENDERS];
            let to = f.accounts[(i + 1) % SENDERS].address();
            let nonce = first_nonce + (i / SENDERS) as u64;
            sign(
                &transfer_body("bench", from, nonce, 1_000, to, 1, vec![]),
                from,
            )
        })
        .collect()
}

fn call(
    f: &Fixture,
    i: usize,
    nonce: u64,
    method: &str,
    args: &impl Message,
    value: u64,
) -> Transaction {
    let key = &f.accounts[i % SENDERS];
    let payload = Payload::Call(Call {
        contract: Bytes::copy_from_slice(&Address::of_system_contract(REMITTANCE).0),
        method: method.into(),
        args: Bytes::from(args.encode_to_vec()),
        value,
    });
    sign(&body("bench", key, nonce, 1_000_000, payload), key)
}

fn verified(f: &Fixture, txs: Vec<Transaction>) -> Vec<Arc<VerifiedTx>> {
    verify_block_txs(txs, "bench", &f.genesis.params).expect("valid")
}

fn open(f: &Fixture, dir: &std::path::Path, sync: bool) -> Arc<Chain> {
    let storage = Storage::open(
        dir,
        &StorageOptions {
            sync_writes: sync,
            ..Default::default()
        },
    )
    .expect("open");
    Arc::new(Chain::open(f.genesis.clone(), storage).expect("chain"))
}

/// Proposes and commits `txs` as the next block.
fn commit_block(f: &Fixture, chain: &Chain, txs: Vec<Arc<VerifiedTx>>, time_ms: u64) {
    let (block, dropped) = chain
        .propose(txs, f.validator.public().0, time_ms)
        .expect("propose");
    assert!(dropped.is_empty(), "{dropped:?}");
    let cert = chain.solo_certificate(&f.validator, 0, &block);
    chain.commit(&block, &cert).expect("commit");
}

fn stages(c: &mut Criterion) {
    let f = fixture();
    let txs = verified(&f, transfers(&f, 0));
    let limits = MempoolLimits {
        max_txs: 100_000,
        max_bytes: 1 << 30,
        nonce_window: 1024,
    };
    let fresh = Account {
        balance: BALANCE,
        nonce: 0,
        keyed: false,
    };

    let mut g = c.benchmark_group("stages_1024");
    g.throughput(Throughput::Elements(N as u64));
    g.sample_size(20);
    g.bench_function("mempool_insert", |b| {
        b.iter_batched(
            || (Mempool::new(limits.clone()), txs.clone()),
            |(mut pool, txs)| {
                for t in txs {
                    pool.insert(t, fresh, 1).expect("insert");
                }
                pool
            },
            BatchSize::SmallInput,
        )
    });
    let mut full = Mempool::new(limits.clone());
    for t in &txs {
        full.insert(t.clone(), fresh, 1).expect("insert");
    }
    g.bench_function("mempool_select", |b| {
        b.iter(|| assert_eq!(full.select(N, 64 << 20).len(), N))
    });

    let dir = tempfile::tempdir().expect("tempdir");
    let chain = open(&f, &dir.path().join("exec"), false);
    g.bench_function("execute_transfers_and_state_root", |b| {
        b.iter(|| {
            chain
                .propose(txs.clone(), f.validator.public().0, 1)
                .expect("propose")
        })
    });

    // Remittance calls: every sender deposits first (committed), then 8 remits each.
    let deposits = verified(
        &f,
        (0..SENDERS)
            .map(|i| {
                let args = rm::DepositArgs {
                    entry: "bench".into(),
                };
                call(&f, i, 0, "deposit", &args, 1_000)
            })
            .collect(),
    );
    commit_block(&f, &chain, deposits, 2);
    let remits = verified(
        &f,
        (0..N)
            .map(|i| {
                let to = f.accounts[(i + 1) % SENDERS].address();
                let args = rm::RemitArgs {
                    remittee: Bytes::copy_from_slice(&to.0),
                    amount: 1,
                    allocations: vec![rm::Allocation {
                        entry: "bench".into(),
                        amount: 1,
                    }],
                    memo: String::new(),
                };
                call(&f, i, 1 + (i / SENDERS) as u64, "remit", &args, 0)
            })
            .collect(),
    );
    g.bench_function("execute_remittance_calls_and_state_root", |b| {
        b.iter(|| {
            let (block, dropped) = chain
                .propose(remits.clone(), f.validator.public().0, 3)
                .expect("propose");
            assert!(dropped.is_empty());
            block
        })
    });
    g.finish();

    let mut g = c.benchmark_group("commit_1024_transfers");
    g.throughput(Throughput::Elements(N as u64));
    g.sample_size(10).measurement_time(Duration::from_secs(8));
    for sync in [false, true] {
        let name = if sync {
            "rocksdb_sync"
        } else {
            "rocksdb_nosync"
        };
        let mut round = 0;
        g.bench_function(name, |b| {
            b.iter_batched(
                || {
                    round += 1;
                    let chain = open(&f, &dir.path().join(format!("{name}-{round}")), sync);
                    let (block, _) = chain
                        .propose(txs.clone(), f.validator.public().0, 1)
                        .expect("propose");
                    let cert = chain.solo_certificate(&f.validator, 0, &block);
                    (chain, block, cert)
                },
                |(chain, block, cert)| chain.commit(&block, &cert).expect("commit"),
                BatchSize::PerIteration,
            )
        });
    }
    g.finish();
}

criterion_group!(benches, stages);
criterion_main!(benches);
