//! The `/metrics` endpoint on `metrics.addr`: when scraped, reads the gauges of state from the
//! node (consensus status, mempool, peers, RocksDB, contract compilations) and serves the
//! registry of [`crate::metrics`] in the OpenMetrics text format.

use std::sync::Arc;

use crate::metrics::{get, StateReading};
use crate::rpc::NodeState;

/// The gauges of state of the node behind `state`, now.
pub fn reading(state: &NodeState) -> StateReading {
    let c = *state.consensus.borrow();
    let (mempool_txs, mempool_bytes) = {
        let m = state.mempool.lock();
        (m.len(), m.bytes())
    };
    let storage = state.chain.storage();
    let prop = |name: &str| storage.int_property(name).unwrap_or(0) as i64;
    StateReading {
        height: c.height,
        round: c.round,
        step: c.step,
        peer_height: c.highest_peer_height,
        mempool_txs,
        mempool_bytes,
        network: state
            .network
            .as_ref()
            .map(|net| (net.connected_peers().len(), net.inbox_dropped())),
        rocksdb_sst_bytes: prop("rocksdb.total-sst-files-size"),
        rocksdb_memtable_bytes: prop("rocksdb.size-all-mem-tables"),
        rocksdb_write_stopped: prop("rocksdb.is-write-stopped"),
        rocksdb_delayed_write_rate: prop("rocksdb.actual-delayed-write-rate"),
        compilations: state.chain.contracts().vm().compilations(),
    }
}

/// Serves `/metrics` on `listener` until `shutdown` turns true.
pub async fn serve(
    state: Arc<NodeState>,
    listener: tokio::net::TcpListener,
    mut shutdown: tokio::sync::watch::Receiver<bool>,
) -> std::io::Result<()> {
    use axum::routing::get as route;
    let app = axum::Router::new().route(
        "/metrics",
        route(move || {
            let state = state.clone();
            async move {
                let body = tokio::task::spawn_blocking(move || get().render(&reading(&state)))
                    .await
                    .unwrap_or_default();
                (
                    [(
                        axum::http::header::CONTENT_TYPE,
                        "application/openmetrics-text; version=1.0.0; charset=utf-8",
                    )],
                    body,
                )
            }
        }),
    );
    axum::serve(listener, app)
        .with_graceful_shutdown(async move {
            let _ = shutdown.wait_for(|stop| *stop).await;
        })
        .await
}
