//! The per-transaction hot path, piece by piece: decode, hash, signature checks (single, batch,
//! with raw ed25519-dalek in the same run as the ceiling), admission, and block execution +
//! RocksDB commit. Run: `cargo bench -p quorate-benches --bench hot_path`.

// criterion_group! generates an undocumented public function.
#![allow(missing_docs)]

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use parking_lot::Mutex;
use prost::Message;
use quorate_genesis::{generate, Genesis};
use quorate_node::admission::Admission;
use quorate_node::chain::Chain;
use quorate_node::mempool::{Mempool, MempoolLimits};
use quorate_node::storage::{Storage, StorageOptions};
use quorate_proto::crypto::{verify_batch, verify_strict, VerifyItem, VERIFY_BATCH_SIZE};
use quorate_proto::tx::{sign, signing_message, transfer_body, tx_hash, DecodedTx};
use quorate_proto::v1::Transaction;
use quorate_proto::Keypair;
use rayon::prelude::*;

const N: usize = 1024;

struct Fixture {
    genesis: Genesis,
    validator: Keypair,
    txs: Vec<Transaction>,
}

/// N transfers from N/8 funded accounts (8 consecutive nonces each).
fn fixture() -> Fixture {
    let senders = N / 8;
    let g = generate("bench", 1, senders, 1_000_000_000, 0).expect("genesis");
    let txs = (0..N)
        .map(|i| {
            let from = &g.account_keys[i % senders];
            let to = g.account_keys[(i + 1) % senders].address();
            sign(
                &transfer_body("bench", from, (i / senders) as u64, 1_000, to, 1, vec![]),
                from,
            )
        })
        .collect();
    Fixture {
        genesis: g.genesis,
        validator: g.validator_keys[0].clone(),
        txs,
    }
}

fn pieces(c: &mut Criterion) {
    let f = fixture();
    let encoded: Vec<Bytes> = f
        .txs
        .iter()
        .map(|t| Bytes::from(t.encode_to_vec()))
        .collect();
    let mut g = c.benchmark_group("per_tx");
    g.throughput(Throughput::Elements(1));
    g.bench_function("decode", |b| {
        b.iter(|| DecodedTx::decode(encoded[0].clone(), 65_536).expect("decodes"))
    });
    g.bench_function("blake3_body", |b| b.iter(|| tx_hash(&f.txs[0].body)));
    let msg = signing_message(&tx_hash(&f.txs[0].body));
    g.bench_function("verify_single_quorate", |b| {
        b.iter(|| {
            assert!(verify_strict(
                &f.txs[0].public_key,
                &msg,
                &f.txs[0].signature
            ))
        })
    });
    let vk = ed25519_dalek::VerifyingKey::from_bytes(
        f.txs[0].public_key.as_ref().try_into().expect("32"),
    )
    .expect("key");
    let sig = ed25519_dalek::Signature::from_slice(&f.txs[0].signature).expect("sig");
    g.bench_function("verify_single_dalek_strict", |b| {
        b.iter(|| assert!(vk.verify_strict(&msg, &sig).is_ok()))
    });
    g.finish();

    let msgs: Vec<[u8; 46]> = f
        .txs
        .iter()
        .map(|t| signing_message(&tx_hash(&t.body)))
        .collect();
    let items: Vec<VerifyItem<'_>> = f
        .txs
        .iter()
        .zip(&msgs)
        .map(|(t, m)| VerifyItem {
            public_key: &t.public_key,
            message: m,
            signature: &t.signature,
        })
        .collect();
    let keys: Vec<ed25519_dalek::VerifyingKey> = f
        .txs
        .iter()
        .map(|t| {
            ed25519_dalek::VerifyingKey::from_bytes(t.public_key.as_ref().try_into().expect("32"))
                .expect("key")
        })
        .collect();
    let sigs: Vec<ed25519_dalek::Signature> = f
        .txs
        .iter()
        .map(|t| ed25519_dalek::Signature::from_slice(&t.signature).expect("sig"))
        .collect();
    let msg_refs: Vec<&[u8]> = msgs.iter().map(|m| m.as_slice()).collect();
    let mut g = c.benchmark_group("signatures_1024");
    g.throughput(Throughput::Elements(N as u64));
    g.bench_function("quorate_verify_batch_all_cores", |b| {
        b.iter(|| assert!(verify_batch(&items).iter().all(|ok| *ok)))
    });
    let one = rayon::ThreadPoolBuilder::new()
        .num_threads(1)
        .build()
        .expect("pool");
    g.bench_function("quorate_verify_batch_1_core", |b| {
        b.iter(|| one.install(|| assert!(verify_batch(&items).iter().all(|ok| *ok))))
    });
    g.bench_function("dalek_verify_batch_64_all_cores_ceiling", |b| {
        b.iter(|| {
            msg_refs
                .par_chunks(VERIFY_BATCH_SIZE)
                .zip(sigs.par_chunks(VERIFY_BATCH_SIZE))
                .zip(keys.par_chunks(VERIFY_BATCH_SIZE))
                .for_each(|((m, s), k)| assert!(ed25519_dalek::verify_batch(m, s, k).is_ok()))
        })
    });
    g.finish();

    let dir = tempfile::tempdir().expect("tempdir");
    let mut g = c.benchmark_group("pipeline_1024");
    g.throughput(Throughput::Elements(N as u64));
    g.sample_size(10).measurement_time(Duration::from_secs(8));
    for sync in [false, true] {
        let name = if sync {
            "admit_execute_commit_sync"
        } else {
            "admit_execute_commit_nosync"
        };
        let mut round = 0;
        g.bench_function(name, |b| {
            b.iter_batched(
                || {
                    round += 1;
                    let storage = Storage::open(
                        &dir.path().join(format!("{name}-{round}")),
                        &StorageOptions {
                            sync_writes: sync,
                            ..Default::default()
                        },
                    )
                    .expect("open");
                    let chain =
                        Arc::new(Chain::open(f.genesis.clone(), storage.clone()).expect("chain"));
                    let mempool = Arc::new(Mutex::new(Mempool::new(MempoolLimits {
                        max_txs: 100_000,
                        max_bytes: 1 << 30,
                        nonce_window: 1024,
                    })));
                    let admission = Admission::new(
                        "bench".into(),
                        chain.params().clone(),
                        storage,
                        mempool.clone(),
                        chain.contracts().clone(),
                    );
                    (admission, chain, mempool, f.txs.clone())
                },
                |(admission, chain, mempool, txs)| {
                    let results = admission.admit(txs).expect("admit");
                    assert!(results.iter().all(|r| r.result.is_ok()));
                    let params = &chain.info().params;
                    let candidates = mempool.lock().select(
                        params.block_max_txs as usize,
                        params.block_max_bytes as usize,
                    );
                    let (block, dropped) = chain
                        .propose(candidates, f.validator.public().0, 1)
                        .expect("propose");
                    assert!(dropped.is_empty());
                    let cert = chain.solo_certificate(&f.validator, 0, &block);
                    let head = chain.commit(&block, &cert).expect("commit");
                    mempool.lock().on_commit(&block.txs, &block.changes);
                    assert_eq!(head.height, 1);
                },
                BatchSize::PerIteration,
            )
        });
    }
    g.finish();
}

criterion_group!(benches, pieces);
criterion_main!(benches);
