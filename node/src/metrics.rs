//! Prometheus metrics (the `prometheus-client` crate for the exposition format), served at
//! `/metrics` on `metrics.addr`. Counters and histograms are updated where things happen, once
//! per batch or block rather than per transaction; gauges of state (height, mempool, peers,
//! RocksDB) are read when scraped. Every metric is listed with its meaning in
//! docs/OPERATING.md.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::{Registry, Unit};

/// A refusal code label.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct CodeLabel {
    /// The code, e.g. `NONCE_USED`.
    pub code: String,
}

/// An execution status label.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct StatusLabel {
    /// The status, e.g. `OUT_OF_FUEL`.
    pub status: String,
}

/// A p2p traffic label.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct TrafficLabel {
    /// `in` or `out`.
    pub direction: &'static str,
    /// `consensus`, `transactions` or `sync`.
    pub kind: &'static str,
}

/// A label naming what a peer sent that this node refused or had to work around.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ReasonLabel {
    /// What happened, e.g. `body_withheld`.
    pub reason: &'static str,
}

/// A gRPC method label.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct MethodLabel {
    /// Full method path, e.g. `/quorate.v1.TxService/Submit`.
    pub method: String,
}

/// A gRPC method and status code label.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RpcLabel {
    /// Full method path.
    pub method: String,
    /// gRPC status code name (`OK` unless the call failed in its headers).
    pub code: String,
}

/// Buckets for latencies from 0.1 ms to about 100 s.
fn seconds_buckets() -> impl Iterator<Item = f64> {
    exponential_buckets(0.0001, 2.0, 20)
}

/// Every metric of the node.
pub struct Metrics {
    registry: Registry,
    /// Height being decided.
    pub height: Gauge,
    /// Current round.
    pub round: Gauge,
    /// Current step (0 propose, 1 prevote, 2 precommit).
    pub step: Gauge,
    /// Highest height other validators were seen at.
    pub peer_height: Gauge,
    /// Time between two commits.
    pub block_interval: Histogram,
    /// Time to write a committed block.
    pub commit_seconds: Histogram,
    /// Blocks committed.
    pub blocks: Counter,
    /// Transactions admitted into the mempool (from clients and gossip).
    pub txs_admitted: Counter,
    /// Transactions refused, by code.
    pub txs_refused: Family<CodeLabel, Counter>,
    /// What peers sent that was refused, or withheld what was asked of them, by reason.
    pub peer_faults: Family<ReasonLabel, Counter>,
    /// Transactions committed.
    pub txs_committed: Counter,
    /// Transactions of compact proposals not in the mempool, asked of their proposer.
    pub proposal_txs_fetched: Counter,
    /// Committed transactions whose execution failed, by status.
    pub txs_failed: Family<StatusLabel, Counter>,
    /// Pending transactions.
    pub mempool_txs: Gauge,
    /// Pending bytes.
    pub mempool_bytes: Gauge,
    /// Signatures per verification batch.
    pub signature_batch: Histogram,
    /// Time to verify one batch of signatures.
    pub signature_seconds: Histogram,
    /// Transactions per coalesced admission round.
    pub admission_round_txs: Histogram,
    /// Validators and observers connected.
    pub peers: Gauge,
    /// p2p bytes by direction and kind.
    pub p2p_bytes: Family<TrafficLabel, Counter>,
    /// Consensus messages dropped because their sender's queue was full.
    pub inbox_dropped: Counter,
    /// RocksDB: bytes in SST files.
    pub rocksdb_sst_bytes: Gauge,
    /// RocksDB: bytes in memtables.
    pub rocksdb_memtable_bytes: Gauge,
    /// RocksDB: 1 while writes are stopped.
    pub rocksdb_write_stopped: Gauge,
    /// RocksDB: delayed write rate while writes are slowed (0 otherwise).
    pub rocksdb_delayed_write_rate: Gauge,
    /// Contract calls in committed blocks, by status.
    pub contract_calls: Family<StatusLabel, Counter>,
    /// Fuel used by committed contract transactions.
    pub contract_fuel: Counter,
    /// Contract compilations by this node's engine.
    pub contract_compiles: Counter,
    /// Contract calls run ahead in parallel (ADR 0020).
    pub calls_run_ahead: Counter,
    /// Runs ahead kept (the others ran again in order).
    pub calls_run_ahead_kept: Counter,
    /// Stored artifacts loaded instead of compiled.
    pub artifact_loads: Counter,
    /// Height of the latest snapshot this node took.
    pub snapshot_height: Gauge,
    /// Snapshots that failed to be taken.
    pub snapshot_failures: Counter,
    /// gRPC requests by method and code.
    pub grpc_requests: Family<RpcLabel, Counter>,
    /// gRPC request latency by method (to the response headers; streams: until opened).
    pub grpc_seconds: Family<MethodLabel, Histogram>,
    compiles_seen: AtomicU64,
    dropped_seen: AtomicU64,
}

impl Metrics {
    fn new() -> Self {
        let mut r = Registry::with_prefix("quorate");
        let gauge = |r: &mut Registry, name: &str, help: &str| {
            let g = Gauge::default();
            r.register(name, help, g.clone());
            g
        };
        let counter = |r: &mut Registry, name: &str, help: &str| {
            let c = Counter::default();
            r.register(name, help, c.clone());
            c
        };
        let seconds = |r: &mut Registry, name: &str, help: &str| {
            let h = Histogram::new(seconds_buckets());
            r.register_with_unit(name, help, Unit::Seconds, h.clone());
            h
        };
        let height = gauge(&mut r, "consensus_height", "Height being decided");
        let round = gauge(
            &mut r,
            "consensus_round",
            "Round of the height being decided",
        );
        let step = gauge(
            &mut r,
            "consensus_step",
            "Step of the round: 0 propose, 1 prevote, 2 precommit",
        );
        let peer_height = gauge(
            &mut r,
            "consensus_peer_height",
            "Highest height other validators were seen at",
        );
        let block_interval = seconds(&mut r, "block_interval", "Time between two commits");
        let commit_seconds = seconds(
            &mut r,
            "block_commit",
            "Time to write a committed block to RocksDB (before its WAL fsync)",
        );
        let blocks = counter(&mut r, "blocks_committed", "Blocks committed");
        let txs_admitted = counter(
            &mut r,
            "transactions_admitted",
            "Transactions admitted into the mempool (from clients and from gossip)",
        );
        let txs_refused = Family::<CodeLabel, Counter>::default();
        r.register(
            "transactions_refused",
            "Transactions refused at admission, by refusal code",
            txs_refused.clone(),
        );
        let peer_faults = Family::<ReasonLabel, Counter>::default();
        r.register(
            "peer_faults",
            "What peers sent that was refused, or withheld what was asked, by reason",
            peer_faults.clone(),
        );
        let txs_committed = counter(&mut r, "transactions_committed", "Transactions committed");
        let proposal_txs_fetched = counter(
            &mut r,
            "proposal_transactions_fetched",
            "Transactions of compact proposals this validator lacked and asked of the proposer",
        );
        let txs_failed = Family::<StatusLabel, Counter>::default();
        r.register(
            "transactions_failed",
            "Committed transactions whose execution failed, by status",
            txs_failed.clone(),
        );
        let mempool_txs = gauge(&mut r, "mempool_transactions", "Pending transactions");
        let mempool_bytes = Gauge::default();
        r.register_with_unit(
            "mempool",
            "Encoded size of the pending transactions",
            Unit::Bytes,
            mempool_bytes.clone(),
        );
        let signature_batch = Histogram::new(exponential_buckets(1.0, 2.0, 15));
        r.register(
            "signature_batch_size",
            "Signatures per verification batch",
            signature_batch.clone(),
        );
        let signature_seconds = seconds(
            &mut r,
            "signature_batch_verify",
            "Time to verify one batch of signatures",
        );
        let admission_round_txs = Histogram::new(exponential_buckets(1.0, 2.0, 14));
        r.register(
            "admission_round_size",
            "Transactions per admission round (concurrent submissions and gossip coalesced)",
            admission_round_txs.clone(),
        );
        let peers = gauge(
            &mut r,
            "p2p_peers",
            "Peers connected (validators and observers)",
        );
        let p2p_bytes = Family::<TrafficLabel, Counter>::default();
        r.register_with_unit(
            "p2p",
            "p2p payload bytes by direction (in, out) and kind (consensus, transactions, sync); gossip counts each message once however many peers it goes to",
            Unit::Bytes,
            p2p_bytes.clone(),
        );
        let inbox_dropped = counter(
            &mut r,
            "p2p_consensus_dropped",
            "Consensus messages dropped because their sender's queue was full",
        );
        let rocksdb_sst_bytes = Gauge::default();
        r.register_with_unit(
            "rocksdb_sst",
            "Size of RocksDB's SST files",
            Unit::Bytes,
            rocksdb_sst_bytes.clone(),
        );
        let rocksdb_memtable_bytes = Gauge::default();
        r.register_with_unit(
            "rocksdb_memtable",
            "Size of RocksDB's memtables",
            Unit::Bytes,
            rocksdb_memtable_bytes.clone(),
        );
        let rocksdb_write_stopped = gauge(
            &mut r,
            "rocksdb_write_stopped",
            "1 while RocksDB stops writes (a write stall)",
        );
        let rocksdb_delayed_write_rate = gauge(
            &mut r,
            "rocksdb_delayed_write_rate",
            "Bytes per second RocksDB lets writers write while it slows them (0 otherwise)",
        );
        let contract_calls = Family::<StatusLabel, Counter>::default();
        r.register(
            "contract_calls",
            "Contract calls and deploys in committed blocks, by status",
            contract_calls.clone(),
        );
        let contract_fuel = counter(
            &mut r,
            "contract_fuel",
            "Fuel used by committed contract transactions",
        );
        let contract_compiles = counter(
            &mut r,
            "contract_compiles",
            "Contract compilations by this node's engine",
        );
        let artifact_loads = counter(
            &mut r,
            "contract_artifact_loads",
            "Stored contract artifacts loaded at start-up instead of compiled",
        );
        let snapshot_height = gauge(
            &mut r,
            "snapshot_height",
            "Height of the latest state snapshot this node took",
        );
        let snapshot_failures = counter(
            &mut r,
            "snapshot_failures",
            "State snapshots that could not be taken (see the log)",
        );
        let calls_run_ahead = counter(
            &mut r,
            "contract_calls_run_ahead",
            "Contract calls run ahead in parallel before their block was applied in order",
        );
        let calls_run_ahead_kept = counter(
            &mut r,
            "contract_calls_run_ahead_kept",
            "Runs ahead kept because running the call in order would have done the same",
        );
        let grpc_requests = Family::<RpcLabel, Counter>::default();
        r.register(
            "grpc_requests",
            "gRPC requests by method and status code",
            grpc_requests.clone(),
        );
        let grpc_seconds = Family::<MethodLabel, Histogram>::new_with_constructor(|| {
            Histogram::new(seconds_buckets())
        });
        r.register_with_unit(
            "grpc_request",
            "gRPC request latency by method, to the response headers",
            Unit::Seconds,
            grpc_seconds.clone(),
        );
        Self {
            registry: r,
            height,
            round,
            step,
            peer_height,
            block_interval,
            commit_seconds,
            blocks,
            txs_admitted,
            txs_refused,
            peer_faults,
            txs_committed,
            proposal_txs_fetched,
            txs_failed,
            mempool_txs,
            mempool_bytes,
            signature_batch,
            signature_seconds,
            admission_round_txs,
            peers,
            p2p_bytes,
            inbox_dropped,
            rocksdb_sst_bytes,
            rocksdb_memtable_bytes,
            rocksdb_write_stopped,
            rocksdb_delayed_write_rate,
            contract_calls,
            contract_fuel,
            contract_compiles,
            calls_run_ahead,
            calls_run_ahead_kept,
            artifact_loads,
            snapshot_height,
            snapshot_failures,
            grpc_requests,
            grpc_seconds,
            compiles_seen: AtomicU64::new(0),
            dropped_seen: AtomicU64::new(0),
        }
    }

    /// Counts one peer fault of `reason` (see [`Metrics::peer_faults`]).
    pub fn refused(&self, reason: &'static str) {
        self.peer_faults
            .get_or_create(&ReasonLabel { reason })
            .inc();
    }

    /// How many peer faults of `reason` so far.
    pub fn refusals(&self, reason: &'static str) -> u64 {
        self.peer_faults
            .get_or_create(&ReasonLabel { reason })
            .get()
    }

    /// p2p bytes of `kind` going `direction`.
    pub fn p2p(&self, direction: &'static str, kind: &'static str, bytes: usize) {
        self.p2p_bytes
            .get_or_create(&TrafficLabel { direction, kind })
            .inc_by(bytes as u64);
    }

    /// p2p payload bytes of `kind` so far: (received, sent).
    pub fn p2p_totals(&self, kind: &'static str) -> (u64, u64) {
        let get = |direction| {
            self.p2p_bytes
                .get_or_create(&TrafficLabel { direction, kind })
                .get()
        };
        (get("in"), get("out"))
    }

    /// Sets the gauges of state from `reading` (taken from the node when scraped), then encodes
    /// everything.
    pub fn render(&self, reading: &StateReading) -> String {
        self.height.set(reading.height as i64);
        self.round.set(i64::from(reading.round));
        self.step.set(i64::from(reading.step));
        self.peer_height.set(reading.peer_height as i64);
        self.mempool_txs.set(reading.mempool_txs as i64);
        self.mempool_bytes.set(reading.mempool_bytes as i64);
        if let Some((peers, dropped)) = reading.network {
            self.peers.set(peers as i64);
            let seen = self.dropped_seen.swap(dropped, Ordering::Relaxed);
            self.inbox_dropped.inc_by(dropped.saturating_sub(seen));
        }
        self.rocksdb_sst_bytes.set(reading.rocksdb_sst_bytes);
        self.rocksdb_memtable_bytes
            .set(reading.rocksdb_memtable_bytes);
        self.rocksdb_write_stopped
            .set(reading.rocksdb_write_stopped);
        self.rocksdb_delayed_write_rate
            .set(reading.rocksdb_delayed_write_rate);
        let seen = self
            .compiles_seen
            .swap(reading.compilations, Ordering::Relaxed);
        self.contract_compiles
            .inc_by(reading.compilations.saturating_sub(seen));
        let mut out = String::new();
        prometheus_client::encoding::text::encode(&mut out, &self.registry)
            .expect("writing to a String cannot fail");
        out
    }
}

/// The gauges of state, read from the node when `/metrics` is scraped
/// (`metrics_server::reading`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct StateReading {
    /// Height being decided.
    pub height: u64,
    /// Its round.
    pub round: u32,
    /// Its step.
    pub step: u8,
    /// Highest height a peer claimed.
    pub peer_height: u64,
    /// Transactions in the mempool.
    pub mempool_txs: usize,
    /// Their bytes.
    pub mempool_bytes: usize,
    /// Connected peers and the driver's inbox drops so far, when the node has a network.
    pub network: Option<(usize, u64)>,
    /// RocksDB `total-sst-files-size`.
    pub rocksdb_sst_bytes: i64,
    /// RocksDB `size-all-mem-tables`.
    pub rocksdb_memtable_bytes: i64,
    /// RocksDB `is-write-stopped`.
    pub rocksdb_write_stopped: i64,
    /// RocksDB `actual-delayed-write-rate`.
    pub rocksdb_delayed_write_rate: i64,
    /// Contract compilations so far.
    pub compilations: u64,
}

/// The node's metrics (one set per process).
pub fn get() -> &'static Metrics {
    static METRICS: OnceLock<Metrics> = OnceLock::new();
    METRICS.get_or_init(Metrics::new)
}

/// Seconds since `start`, for histograms.
pub fn seconds_since(start: std::time::Instant) -> f64 {
    start.elapsed().as_secs_f64()
}

/// A tower layer counting gRPC requests and their latency by method.
#[derive(Clone, Copy, Debug, Default)]
pub struct GrpcMetricsLayer;

impl<S> tower::Layer<S> for GrpcMetricsLayer {
    type Service = GrpcMetrics<S>;
    fn layer(&self, inner: S) -> Self::Service {
        GrpcMetrics { inner }
    }
}

/// See [`GrpcMetricsLayer`].
#[derive(Clone, Debug)]
pub struct GrpcMetrics<S> {
    inner: S,
}

impl<S, B, R> tower::Service<axum::http::Request<B>> for GrpcMetrics<S>
where
    S: tower::Service<axum::http::Request<B>, Response = axum::http::Response<R>>,
    S::Future: Send + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = std::pin::Pin<
        Box<dyn std::future::Future<Output = Result<Self::Response, Self::Error>> + Send>,
    >;

    fn poll_ready(
        &mut self,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: axum::http::Request<B>) -> Self::Future {
        let method = req.uri().path().to_owned();
        let started = std::time::Instant::now();
        let fut = self.inner.call(req);
        Box::pin(async move {
            let res = fut.await;
            let m = get();
            m.grpc_seconds
                .get_or_create(&MethodLabel {
                    method: method.clone(),
                })
                .observe(seconds_since(started));
            let code = match &res {
                Ok(r) => r
                    .headers()
                    .get("grpc-status")
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| v.parse::<i32>().ok())
                    .map_or("OK".to_owned(), |c| {
                        format!("{:?}", tonic::Code::from_i32(c))
                    }),
                Err(_) => "TRANSPORT".to_owned(),
            };
            m.grpc_requests
                .get_or_create(&RpcLabel { method, code })
                .inc();
            res
        })
    }
}
