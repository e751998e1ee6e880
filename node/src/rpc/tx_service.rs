//! `quorate.v1.TxService`: submit, status and wait-for-commit.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use quorate_proto::crypto::Hash32;
use quorate_proto::v1::tx_service_server::TxService;
use quorate_proto::v1::Transaction;
use quorate_proto::v1::{
    SubmitBatchRequest, SubmitBatchResponse, SubmitRequest, SubmitResult, TxState, TxStatusRequest,
    TxStatusResponse, WaitForCommitRequest,
};
use tonic::{Request, Response, Status};

use super::{internal, NodeState};
use crate::admission::Admitted;
use crate::admission_queue::{Origin, QueueError};

/// Default `WaitForCommit` timeout.
const DEFAULT_WAIT: Duration = Duration::from_secs(30);

/// The service implementation.
pub struct TxApi(pub Arc<NodeState>);

fn parse_hash(bytes: &[u8]) -> Result<Hash32, Status> {
    Hash32::from_slice(bytes).ok_or_else(|| {
        Status::invalid_argument(format!("tx_hash must be 32 bytes, got {}", bytes.len()))
    })
}

fn to_result(a: Admitted) -> SubmitResult {
    SubmitResult {
        tx_hash: a
            .hash
            .map(|h| Bytes::copy_from_slice(&h.0))
            .unwrap_or_default(),
        rejection: a.result.err().map(|e| e.to_rejection()),
    }
}

impl TxApi {
    async fn admit(&self, txs: Vec<Transaction>) -> Result<Vec<SubmitResult>, Status> {
        let results = self
            .0
            .admission_queue
            .admit(txs, Origin::Client)
            .await
            .map_err(|e| match e {
                QueueError::Closed => Status::unavailable(e.to_string()),
                QueueError::Storage(_) => {
                    tracing::error!(error = %e, "storage failure while admitting");
                    Status::internal(e.to_string())
                }
            })?;
        Ok(results.into_iter().map(to_result).collect())
    }

    /// Where `hash` is: committed, pending, recently refused, or unknown.
    pub fn status(&self, hash: &Hash32) -> Result<TxStatusResponse, Status> {
        let storage = self.0.chain.storage();
        let pending = |transaction| TxStatusResponse {
            tx_hash: Bytes::copy_from_slice(&hash.0),
            state: TxState::Pending as i32,
            transaction,
            ..Default::default()
        };
        // A commit is written before it is durable; until the node publishes its head, its
        // transactions are reported pending (a crash in between may undo the write).
        let from_record = |rec: crate::storage::TxRecord| {
            if rec.height > self.0.heads.borrow().height {
                return pending(rec.transaction);
            }
            TxStatusResponse {
                tx_hash: Bytes::copy_from_slice(&hash.0),
                state: TxState::Committed as i32,
                height: rec.height,
                index: rec.index,
                receipt: rec.receipt,
                rejection: None,
                transaction: rec.transaction,
            }
        };
        if let Some(rec) = storage.tx(hash).map_err(internal)? {
            return Ok(from_record(rec));
        }
        if let Some(tx) = self.0.mempool.lock().get(hash) {
            return Ok(pending(Some(tx.tx.clone())));
        }
        // A commit writes storage before it prunes the mempool: look again so a transaction
        // committed between the two reads is not reported unknown.
        if let Some(rec) = storage.tx(hash).map_err(internal)? {
            return Ok(from_record(rec));
        }
        let evicted = self.0.mempool.lock().eviction(hash);
        let (state, rejection) = match (evicted, self.0.admission.rejection(hash)) {
            (Some(e), _) => (TxState::Evicted, Some(e.to_rejection())),
            (None, Some(e)) => (TxState::Rejected, Some(e.to_rejection())),
            (None, None) => (TxState::Unknown, None),
        };
        Ok(TxStatusResponse {
            tx_hash: Bytes::copy_from_slice(&hash.0),
            state: state as i32,
            rejection,
            ..Default::default()
        })
    }
}

#[tonic::async_trait]
impl TxService for TxApi {
    async fn submit(
        &self,
        request: Request<SubmitRequest>,
    ) -> Result<Response<SubmitResult>, Status> {
        let tx = request
            .into_inner()
            .transaction
            .ok_or_else(|| Status::invalid_argument("transaction is required"))?;
        let mut results = self.admit(vec![tx]).await?;
        Ok(Response::new(results.remove(0)))
    }

    async fn submit_batch(
        &self,
        request: Request<SubmitBatchRequest>,
    ) -> Result<Response<SubmitBatchResponse>, Status> {
        let txs = request.into_inner().transactions;
        let max = self.0.grpc.max_batch_txs;
        if txs.len() > max {
            return Err(Status::invalid_argument(format!(
                "batch of {} transactions; at most {max} per request",
                txs.len()
            )));
        }
        Ok(Response::new(SubmitBatchResponse {
            results: self.admit(txs).await?,
        }))
    }

    async fn get_status(
        &self,
        request: Request<TxStatusRequest>,
    ) -> Result<Response<TxStatusResponse>, Status> {
        let hash = parse_hash(&request.into_inner().tx_hash)?;
        Ok(Response::new(self.status(&hash)?))
    }

    async fn wait_for_commit(
        &self,
        request: Request<WaitForCommitRequest>,
    ) -> Result<Response<TxStatusResponse>, Status> {
        let req = request.into_inner();
        let hash = parse_hash(&req.tx_hash)?;
        let timeout = match req.timeout_ms {
            0 => DEFAULT_WAIT,
            ms => Duration::from_millis(u64::from(ms).min(self.0.grpc.max_wait_ms)),
        };
        let deadline = tokio::time::Instant::now() + timeout;
        let mut heads = self.0.heads.clone();
        loop {
            // Mark the current head seen before reading, so a commit after the read wakes us.
            heads.borrow_and_update();
            let status = self.status(&hash)?;
            if status.state != TxState::Pending as i32 {
                return Ok(Response::new(status));
            }
            tokio::select! {
                changed = heads.changed() => if changed.is_err() {
                    return Err(Status::unavailable("node is shutting down"));
                },
                _ = tokio::time::sleep_until(deadline) => return Ok(Response::new(status)),
            }
        }
    }
}
