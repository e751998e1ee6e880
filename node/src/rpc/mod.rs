//! The gRPC server: transaction, chain and node services, plus server reflection and the
//! standard health service.

mod chain_service;
mod contract_service;
pub mod explorer;
mod grpc_web;
mod node_service;
mod tx_service;

use std::sync::Arc;

use parking_lot::Mutex;
use quorate_proto::v1::chain_service_server::ChainServiceServer;
use quorate_proto::v1::contract_service_server::ContractServiceServer;
use quorate_proto::v1::node_service_server::NodeServiceServer;
use quorate_proto::v1::tx_service_server::TxServiceServer;
use quorate_proto::PublicKey;
use tokio::sync::watch;
use tokio_stream::wrappers::TcpListenerStream;
use tokio_stream::StreamExt;

use crate::admission::Admission;
use crate::chain::Chain;
use crate::config::GrpcConfig;
use crate::mempool::Mempool;
use crate::storage::{Head, StorageError};

/// What the services share.
pub struct NodeState {
    /// The chain.
    pub chain: Arc<Chain>,
    /// The mempool.
    pub mempool: Arc<Mutex<Mempool>>,
    /// Admission pipeline.
    pub admission: Arc<Admission>,
    /// Submissions join coalesced admission rounds here (which also gossip what clients sent).
    pub admission_queue: crate::admission_queue::AdmissionQueue,
    /// Latest committed head.
    pub heads: watch::Receiver<Head>,
    /// Where consensus stands.
    pub consensus: watch::Receiver<crate::driver::ConsensusStatus>,
    /// This node's key.
    pub node_key: PublicKey,
    /// Server limits.
    pub grpc: GrpcConfig,
    /// The validators' network (none with one validator).
    pub network: Option<crate::network::NetworkHandle>,
    /// Places for read-only queries running at once (`grpc.max_concurrent_queries`).
    pub queries: Arc<tokio::sync::Semaphore>,
    /// Places for open server streams (`grpc.max_streams`).
    pub streams: Arc<tokio::sync::Semaphore>,
}

impl NodeState {
    /// The semaphores bounding queries and streams for `grpc`.
    pub fn limits(grpc: &GrpcConfig) -> (Arc<tokio::sync::Semaphore>, Arc<tokio::sync::Semaphore>) {
        (
            Arc::new(tokio::sync::Semaphore::new(grpc.max_concurrent_queries)),
            Arc::new(tokio::sync::Semaphore::new(grpc.max_streams)),
        )
    }
}

fn internal(e: StorageError) -> tonic::Status {
    tracing::error!(error = %e, "storage failure while serving a request");
    tonic::Status::internal(format!("storage: {e}"))
}

/// Streams what `load` yields for every committed height from `from` (0: the next one) on,
/// following new heads, until the client goes away or `load` fails (the error is sent last).
/// Each stream holds one of `grpc.max_streams` places while it is open; with none free the
/// call is refused with RESOURCE_EXHAUSTED.
fn follow_heights<T, F, Fut>(
    state: Arc<NodeState>,
    from: u64,
    mut load: F,
) -> Result<tokio::sync::mpsc::Receiver<Result<T, tonic::Status>>, tonic::Status>
where
    T: Send + 'static,
    F: FnMut(Arc<NodeState>, u64) -> Fut + Send + 'static,
    Fut: std::future::Future<Output = Result<Vec<T>, tonic::Status>> + Send,
{
    let place = state.streams.clone().try_acquire_owned().map_err(|_| {
        tonic::Status::resource_exhausted(format!(
            "all {} stream places of this node are taken (grpc.max_streams)",
            state.grpc.max_streams
        ))
    })?;
    let mut heads = state.heads.clone();
    let mut next = match from {
        0 => heads.borrow().height + 1,
        h => h,
    };
    let (tx, rx) = tokio::sync::mpsc::channel(16);
    tokio::spawn(async move {
        let _place = place;
        loop {
            let head = heads.borrow_and_update().height;
            while next <= head {
                match load(state.clone(), next).await {
                    Ok(items) => {
                        for item in items {
                            if tx.send(Ok(item)).await.is_err() {
                                return;
                            }
                        }
                    }
                    Err(e) => {
                        let _ = tx.send(Err(e)).await;
                        return;
                    }
                }
                next += 1;
            }
            tokio::select! {
                changed = heads.changed() => if changed.is_err() { return },
                _ = tx.closed() => return,
            }
        }
    });
    Ok(rx)
}

/// Why this node should not be given work now, if it should not.
pub fn not_serving_reason(state: &NodeState) -> Option<String> {
    let published = state.heads.borrow().height;
    if let Some(halt) = state.chain.halt_at(published + 1) {
        return Some(format!("stopped deciding blocks: {halt}"));
    }
    let set = state.chain.sets().at(state.chain.head().height + 1);
    let member = usize::from(set.set.index_of(&state.node_key).is_some());
    if let Some(net) = &state.network {
        let connected = net.connected_validators();
        // This node (if a validator) plus the validators it reaches must make a quorum to
        // commit anything.
        let quorum = set.set.quorum();
        if connected + member < quorum {
            return Some(format!(
                "connected to {connected} of the other {} validators; a quorum needs {}",
                set.set.len() - member,
                quorum - member
            ));
        }
    }
    let c = *state.consensus.borrow();
    if c.catching_up() {
        return Some(format!(
            "catching up: deciding height {} while validators are at {}",
            c.height, c.highest_peer_height
        ));
    }
    None
}

/// Keeps the standard health service true: NOT_SERVING while the node cannot reach a quorum
/// of validators or is catching up, SERVING once it commits at the head.
async fn report_health(
    state: Arc<NodeState>,
    health: tonic_health::server::HealthReporter,
    mut shutdown: watch::Receiver<bool>,
) {
    let start_height = state.heads.borrow().height;
    let mut serving: Option<bool> = None;
    // Commits and consensus steps are followed as they happen; connections by polling.
    let mut heads = state.heads.clone();
    let mut consensus = state.consensus.clone();
    let mut tick = tokio::time::interval(std::time::Duration::from_millis(250));
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            Ok(()) = heads.changed() => {}
            Ok(()) = consensus.changed() => {}
            _ = shutdown.changed() => return,
        }
        let committed_since_start = state.heads.borrow().height > start_height;
        let reason = not_serving_reason(&state).or_else(|| {
            (!committed_since_start).then(|| "has not committed a block since it started".into())
        });
        let now = reason.is_none();
        if serving != Some(now) {
            let status = if now {
                tonic_health::ServingStatus::Serving
            } else {
                tonic_health::ServingStatus::NotServing
            };
            health.set_service_status("", status).await;
            health
                .set_service_status(
                    <TxServiceServer<tx_service::TxApi> as tonic::server::NamedService>::NAME,
                    status,
                )
                .await;
            for name in [
                <ChainServiceServer<chain_service::ChainApi> as tonic::server::NamedService>::NAME,
                <NodeServiceServer<node_service::NodeApi> as tonic::server::NamedService>::NAME,
                <ContractServiceServer<contract_service::ContractApi> as tonic::server::NamedService>::NAME,
            ] {
                health.set_service_status(name, status).await;
            }
            match &reason {
                Some(why) => tracing::info!(reason = %why, "health: NOT_SERVING"),
                None => tracing::info!("health: SERVING"),
            }
            serving = Some(now);
        }
    }
}

/// Serves all services on `listener` until `shutdown` turns true.
pub async fn serve(
    state: Arc<NodeState>,
    listener: tokio::net::TcpListener,
    tls: Option<tonic::transport::ServerTlsConfig>,
    explorer: Option<Arc<explorer::Site>>,
    mut shutdown: watch::Receiver<bool>,
) -> Result<(), tonic::transport::Error> {
    let max = state.grpc.max_message_bytes;
    let reflection_v1 = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(quorate_proto::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        .build_v1()
        .expect("embedded descriptor sets are valid");
    let reflection_v1alpha = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(quorate_proto::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        .build_v1alpha()
        .expect("embedded descriptor sets are valid");
    let (health, health_service) = tonic_health::server::health_reporter();
    tokio::spawn(report_health(state.clone(), health, shutdown.clone()));
    // `Server::tcp_nodelay` does not reach connections we accept ourselves: without this, Nagle's
    // algorithm holds each small response for the client's delayed ACK (about 40 ms a call).
    let incoming = TcpListenerStream::new(listener).map(|conn| {
        if let Ok(c) = &conn {
            let _ = c.set_nodelay(true);
        }
        conn
    });
    let mut builder = tonic::transport::Server::builder();
    if let Some(tls) = tls {
        builder = builder.tls_config(tls)?;
    }
    builder
        // gRPC-web beside gRPC, so that a browser talks to a validator with no proxy: HTTP/1.1
        // for browsers without HTTP/2 to this address, any origin (the API carries no cookies
        // or credentials), the gRPC status headers exposed to the page.
        .accept_http1(true)
        .layer(grpc_web::WebOrNativeLayer::new(explorer))
        .concurrency_limit_per_connection(state.grpc.concurrency_per_connection)
        // Over all connections too: a client opening many connections waits like one.
        .layer(tower::limit::GlobalConcurrencyLimitLayer::new(
            state.grpc.max_concurrent_requests,
        ))
        .layer(crate::metrics::GrpcMetricsLayer)
        .http2_keepalive_interval(Some(std::time::Duration::from_secs(30)))
        .http2_keepalive_timeout(Some(std::time::Duration::from_secs(10)))
        .add_service(
            TxServiceServer::new(tx_service::TxApi(state.clone()))
                .max_decoding_message_size(max)
                .max_encoding_message_size(max),
        )
        .add_service(
            ChainServiceServer::new(chain_service::ChainApi(state.clone()))
                .max_decoding_message_size(max)
                .max_encoding_message_size(max),
        )
        .add_service(
            ContractServiceServer::new(contract_service::ContractApi(state.clone()))
                .max_decoding_message_size(max)
                .max_encoding_message_size(max),
        )
        .add_service(NodeServiceServer::new(node_service::NodeApi(state.clone())))
        .add_service(health_service)
        .add_service(reflection_v1)
        .add_service(reflection_v1alpha)
        .serve_with_incoming_shutdown(incoming, async move {
            let _ = shutdown.wait_for(|stop| *stop).await;
        })
        .await
}
