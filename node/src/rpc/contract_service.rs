//! `quorate.v1.ContractService`: read-only queries, contract metadata, the event stream.

use std::pin::Pin;
use std::sync::Arc;

use bytes::Bytes;
use futures::Stream;
use quorate_proto::crypto::Address;
use quorate_proto::v1::contract_service_server::ContractService;
use quorate_proto::v1::{
    ContractInfo, EventRecord, ExecStatus, GetContractRequest, QueryRequest, QueryResponse,
    StreamEventsRequest,
};
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Response, Status};

use super::{internal, NodeState};
use crate::execution::failure_status;

/// Fuel of a query that names none.
pub const DEFAULT_QUERY_FUEL: u64 = 10_000_000;

/// The service implementation.
pub struct ContractApi(pub Arc<NodeState>);

fn address(bytes: &[u8], what: &str) -> Result<Address, Status> {
    Address::from_slice(bytes).map_err(|e| Status::invalid_argument(format!("{what}: {e}")))
}

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, crate::storage::StorageError> + Send + 'static,
) -> Result<T, Status> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| Status::internal(format!("task failed: {e}")))?
        .map_err(internal)
}

#[tonic::async_trait]
impl ContractService for ContractApi {
    async fn query(
        &self,
        request: Request<QueryRequest>,
    ) -> Result<Response<QueryResponse>, Status> {
        let req = request.into_inner();
        let contract = address(&req.contract, "contract")?;
        let caller = if req.caller.is_empty() {
            Address::default()
        } else {
            address(&req.caller, "caller")?
        };
        if req.method.is_empty() {
            return Err(Status::invalid_argument("method is empty"));
        }
        // A query holds an engine slot (and its RocksDB snapshot) while it runs: its fuel is
        // bounded by the node's own cap, and only a few run at once.
        let cap = self
            .0
            .chain
            .params()
            .next()
            .max_fuel_per_tx
            .min(self.0.grpc.max_query_fuel);
        let fuel = match req.fuel_limit {
            0 => DEFAULT_QUERY_FUEL.min(cap),
            f => f.min(cap),
        };
        let _place = self
            .0
            .queries
            .clone()
            .acquire_owned()
            .await
            .map_err(|_| Status::unavailable("node is shutting down"))?;
        let chain = self.0.chain.clone();
        let (outcome, head) = blocking(move || {
            chain.contracts().query(
                chain.storage(),
                contract,
                &req.method,
                &req.args,
                caller,
                fuel,
            )
        })
        .await?;
        let (status, return_data, error) = match outcome.result {
            Ok(data) => (ExecStatus::Success, Bytes::from(data), String::new()),
            Err(f) => (failure_status(&f), Bytes::new(), f.to_string()),
        };
        Ok(Response::new(QueryResponse {
            status: status as i32,
            return_data,
            error,
            fuel_used: outcome.fuel_used,
            height: head.height,
        }))
    }

    async fn get_contract(
        &self,
        request: Request<GetContractRequest>,
    ) -> Result<Response<ContractInfo>, Status> {
        let addr = address(&request.into_inner().address, "address")?;
        let chain = self.0.chain.clone();
        let found = blocking(move || {
            let storage = chain.storage();
            let Some(record) = storage.contract(&addr)? else {
                return Ok(None);
            };
            let code_hash = record.code()?;
            let code = storage.code(&code_hash)?.unwrap_or_default();
            let balance = storage.account(&addr)?.balance;
            // Stored code passed validation at deploy; listing its exports cannot fail.
            let limits = &chain.contracts().vm().config().limits;
            let info = quorate_vm::inspect(&code, limits, quorate_vm::AbiLevel::Latest).ok();
            Ok(Some(ContractInfo {
                address: Bytes::copy_from_slice(&addr.0),
                code_hash: record.code_hash,
                deployer: record.deployer,
                deployed_height: record.height,
                methods: info.as_ref().map(|i| i.methods.clone()).unwrap_or_default(),
                interface: info
                    .and_then(|i| i.interface)
                    .map(Bytes::from)
                    .unwrap_or_default(),
                code_size: code.len() as u32,
                balance,
                version: record.version,
                upgraded_at: record.upgraded_at,
            }))
        })
        .await?;
        found
            .map(Response::new)
            .ok_or_else(|| Status::not_found(format!("no contract is deployed at {addr}")))
    }

    type StreamEventsStream = Pin<Box<dyn Stream<Item = Result<EventRecord, Status>> + Send>>;

    async fn stream_events(
        &self,
        request: Request<StreamEventsRequest>,
    ) -> Result<Response<Self::StreamEventsStream>, Status> {
        let req = request.into_inner();
        let contract = if req.contract.is_empty() {
            None
        } else {
            Some(address(&req.contract, "contract")?)
        };
        let kind = (!req.kind.is_empty()).then_some(req.kind);
        let rx = super::follow_heights(self.0.clone(), req.from_height, move |state, height| {
            let kind = kind.clone();
            async move {
                let found = blocking(move || {
                    let storage = state.chain.storage();
                    let Some((_, txs)) = storage.block_with_txs(height, true)? else {
                        return Ok(Err(storage.lowest_block()?));
                    };
                    let mut out = Vec::new();
                    for rec in txs {
                        let Some(receipt) = rec.receipt else { continue };
                        for (i, event) in receipt.events.into_iter().enumerate() {
                            let wanted = contract.is_none_or(|c| event.contract.as_ref() == c.0)
                                && kind.as_ref().is_none_or(|k| *k == event.kind);
                            if wanted {
                                out.push(EventRecord {
                                    height,
                                    tx_hash: receipt.tx_hash.clone(),
                                    tx_index: rec.index,
                                    event_index: i as u32,
                                    event: Some(event),
                                });
                            }
                        }
                    }
                    Ok(Ok(out))
                })
                .await?;
                match found {
                    Ok(events) => Ok(events),
                    Err(lowest) if height < lowest => {
                        Err(super::chain_service::pruned(height, lowest))
                    }
                    Err(_) => Ok(Vec::new()),
                }
            }
        })?;
        Ok(Response::new(Box::pin(ReceiverStream::new(rx))))
    }
}
