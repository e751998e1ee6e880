//! One transaction per call from the Rust library (`quorate_client::Node::submit`): `--clients`
//! concurrent tasks, each sending transfers from its own funded account (key files
//! `<keys>/account-N.json` from N = 1), signed before the clock starts, until `--txs` are
//! accepted; then waits for every sender's last one. Prints JSON like the Python and TypeScript
//! programs (`scripts/bench-clients.sh`).
//!
//!   cargo run --release -p quorate-client --example single_calls -- URL KEYS_DIR CLIENTS TXS

use std::time::{Duration, Instant};

use quorate_client::{transaction, KeyFile, Keypair, Node};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [url, keys, clients, txs] = args.as_slice() else {
        return Err("usage: single_calls URL KEYS_DIR CLIENTS TXS".into());
    };
    let (clients, txs): (usize, usize) = (clients.parse()?, txs.parse()?);
    let node = Node::connect(url, None).await?;
    let status = node.node_status().await?;
    let fuel = status.params.as_ref().map_or(0, |p| p.transfer_fuel);
    let to = Keypair::generate().address();
    let per = txs / clients;
    let mut work = Vec::with_capacity(clients);
    for i in 1..=clients {
        let key = KeyFile::load(format!("{keys}/account-{i}.json").as_ref())?;
        let nonce = node.account(&key.address()).await?.next_nonce;
        work.push(
            (0..per as u64)
                .map(|k| {
                    let payload = transaction::transfer(to, 1, b"");
                    let body = transaction::body(
                        &status.chain_id,
                        key.address(),
                        nonce + k,
                        fuel,
                        payload,
                    );
                    transaction::sign(&body, &key)
                })
                .collect::<Vec<_>>(),
        );
    }
    let started = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for signed in work {
        let node = node.clone();
        tasks.spawn(async move {
            let mut latencies = Vec::with_capacity(signed.len());
            let mut last = None;
            for tx in &signed {
                let t0 = Instant::now();
                last = Some(node.submit(tx).await?);
                latencies.push(t0.elapsed());
            }
            Ok::<_, quorate_client::ClientError>((latencies, last))
        });
    }
    let (mut latencies, mut last) = (Vec::new(), Vec::new());
    while let Some(done) = tasks.join_next().await {
        let (l, h) = done??;
        latencies.extend(l);
        last.extend(h);
    }
    let accepted = started.elapsed();
    for hash in &last {
        node.wait(hash, Duration::from_secs(300)).await?;
    }
    let committed = started.elapsed();
    latencies.sort_unstable();
    let n = latencies.len();
    let ms = |d: Duration| (d.as_secs_f64() * 100_000.0).round() / 100.0;
    println!(
        "{{\"library\": \"rust (quorate-client)\", \"clients\": {clients}, \"txs\": {n}, \"accept_s\": {:.3}, \"commit_s\": {:.3}, \"tx_per_s\": {:.1}, \"accept_p50_ms\": {}, \"accept_p99_ms\": {}}}",
        accepted.as_secs_f64(),
        committed.as_secs_f64(),
        n as f64 / committed.as_secs_f64(),
        ms(latencies[n / 2]),
        ms(latencies[(n * 99 / 100).min(n - 1)]),
    );
    Ok(())
}
