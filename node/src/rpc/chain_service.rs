//! `quorate.v1.ChainService`: accounts, blocks, and the stream of committed blocks.

use std::pin::Pin;
use std::sync::Arc;

use bytes::Bytes;
use futures::Stream;
use quorate_proto::crypto::{Address, Hash32};
use quorate_proto::v1::chain_service_server::ChainService;
use quorate_proto::v1::{
    get_block_request::Selector, BlockInfo, GetAccountRequest, GetAccountResponse, GetBlockRequest,
    GetGovernanceRequest, GetProposalRequest, GetValidatorSetRequest, GetValidatorSetResponse,
    GovernanceInfo, GovernancePolicy, ProposalInfo, ProposalRecord, ProposalStatus, ScheduledSet,
    StreamBlocksRequest,
};
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Response, Status};

use super::{internal, NodeState};
use crate::storage::{BlockRecord, StorageError, TxRecord};

/// The service implementation.
pub struct ChainApi(pub Arc<NodeState>);

/// The client form of a stored block.
pub fn block_info(record: BlockRecord, txs: Vec<TxRecord>) -> Result<BlockInfo, StorageError> {
    let header = record.decode_header()?;
    let transactions = txs.into_iter().filter_map(|r| r.transaction).collect();
    Ok(BlockInfo {
        hash: Bytes::copy_from_slice(&record.hash().0),
        header: Some(header),
        header_bytes: record.header,
        tx_hashes: record.tx_hashes,
        transactions,
        certificate: record.certificate,
    })
}

pub(super) async fn load_block(
    state: &Arc<NodeState>,
    height: u64,
    include_txs: bool,
) -> Result<Option<BlockInfo>, Status> {
    let storage = state.chain.storage().clone();
    let (block, lowest) = tokio::task::spawn_blocking(move || {
        let block = storage
            .block_with_txs(height, include_txs)?
            .map(|(r, txs)| block_info(r, txs))
            .transpose()?;
        Ok::<_, StorageError>((block, storage.lowest_block()?))
    })
    .await
    .map_err(|e| Status::internal(format!("block loading task failed: {e}")))?
    .map_err(internal)?;
    if block.is_none() && height < lowest {
        return Err(pruned(height, lowest));
    }
    Ok(block)
}

/// The answer for a block below the lowest this node holds (pruned, or before the snapshot
/// it started from).
pub(super) fn pruned(height: u64, lowest: u64) -> Status {
    Status::not_found(format!(
        "block {height} is not held: this node keeps blocks from height {lowest} (older ones \
         were pruned, storage.keep_blocks, or precede the snapshot it started from); ask an \
         archive node"
    ))
}

/// Most proposals one `GetGovernance` answer lists.
const MAX_PROPOSALS_LISTED: usize = 100;
/// Most proposal records one `GetGovernance` request reads.
const MAX_PROPOSALS_SCANNED: usize = 1_000;

/// Where `record` stands at `height` under `policy` in governance period `epoch`.
pub fn proposal_info(
    record: ProposalRecord,
    policy: Option<&GovernancePolicy>,
    epoch: u64,
    height: u64,
) -> ProposalInfo {
    use quorate_proto::governance;
    let kind = governance::kind_of(&record);
    let status = governance::status(&record, epoch, height);
    let (approvals, threshold) = match policy {
        Some(p) => (
            governance::counted_approvals(&record, p),
            kind.map_or(0, |k| k.threshold(p)),
        ),
        None => (0, 0),
    };
    ProposalInfo {
        status: status as i32,
        kind: kind.map_or("", |k| k.name()).to_owned(),
        approvals,
        threshold,
        height,
        record: Some(record),
    }
}

async fn blocking<T: Send + 'static>(
    what: &'static str,
    f: impl FnOnce() -> Result<T, StorageError> + Send + 'static,
) -> Result<T, Status> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| Status::internal(format!("{what} task failed: {e}")))?
        .map_err(internal)
}

#[tonic::async_trait]
impl ChainService for ChainApi {
    async fn get_governance(
        &self,
        request: Request<GetGovernanceRequest>,
    ) -> Result<Response<GovernanceInfo>, Status> {
        let req = request.into_inner();
        let limit = match req.limit as usize {
            0 => MAX_PROPOSALS_LISTED,
            n => n.min(MAX_PROPOSALS_LISTED),
        };
        let height = self.0.heads.borrow().height;
        let storage = self.0.chain.storage().clone();
        let (admin, policy, epoch, latest, (records, next_before)) =
            blocking("governance reading", move || {
                let admin = storage.admin()?;
                let policy = storage.governance()?;
                let epoch = storage.governance_epoch()?;
                let latest = storage.proposal_count()?;
                let open_only = req.open_only;
                let listed = storage.proposals(req.before, limit, MAX_PROPOSALS_SCANNED, |r| {
                    !open_only
                        || quorate_proto::governance::status(r, epoch, height)
                            == ProposalStatus::Open
                })?;
                Ok((admin, policy, epoch, latest, listed))
            })
            .await?;
        let proposals = records
            .into_iter()
            .map(|r| proposal_info(r, policy.as_ref(), epoch, height))
            .collect();
        Ok(Response::new(GovernanceInfo {
            height,
            admin: admin
                .map(|a| Bytes::copy_from_slice(&a.0))
                .unwrap_or_default(),
            policy,
            proposals,
            latest,
            next_before,
        }))
    }

    async fn get_proposal(
        &self,
        request: Request<GetProposalRequest>,
    ) -> Result<Response<ProposalInfo>, Status> {
        let number = request.into_inner().number;
        let height = self.0.heads.borrow().height;
        let storage = self.0.chain.storage().clone();
        let (record, policy, epoch) = blocking("proposal reading", move || {
            Ok((
                storage.proposal(number)?,
                storage.governance()?,
                storage.governance_epoch()?,
            ))
        })
        .await?;
        let record = record.ok_or_else(|| {
            Status::not_found(format!("there is no proposal {number} (yet) on this chain"))
        })?;
        Ok(Response::new(proposal_info(
            record,
            policy.as_ref(),
            epoch,
            height,
        )))
    }

    async fn get_account(
        &self,
        request: Request<GetAccountRequest>,
    ) -> Result<Response<GetAccountResponse>, Status> {
        let addr = Address::from_slice(&request.into_inner().address)
            .map_err(|e| Status::invalid_argument(format!("address: {e}")))?;
        // Read the head first: the account is at least as new as the height reported.
        let height = self.0.heads.borrow().height;
        let storage = self.0.chain.storage();
        let acct = storage.account(&addr).map_err(internal)?;
        let key_set = if acct.keyed {
            storage.key_sets(&[addr]).map_err(internal)?.pop().flatten()
        } else {
            None
        };
        let next_nonce = self.0.mempool.lock().next_nonce(&addr, acct.nonce);
        Ok(Response::new(GetAccountResponse {
            account: Some(quorate_proto::v1::Account {
                address: Bytes::copy_from_slice(&addr.0),
                balance: acct.balance,
                nonce: acct.nonce,
            }),
            height,
            next_nonce,
            key_set,
        }))
    }

    async fn get_validator_set(
        &self,
        request: Request<GetValidatorSetRequest>,
    ) -> Result<Response<GetValidatorSetResponse>, Status> {
        let asked = request.into_inner().height;
        // The published head, as `GetBlock` has it: a block committed but not yet durable is
        // not counted, so the block before the height answered can always be fetched.
        let next = self.0.heads.borrow().height + 1;
        let height = if asked == 0 { next } else { asked };
        if height > next {
            return Err(Status::out_of_range(format!(
                "height {height} is not decided yet: the next height is {next} (sets decided to \
                 come are listed under `scheduled`)"
            )));
        }
        let sets = self.0.chain.sets();
        let set = sets.at(height);
        let storage = self.0.chain.storage().clone();
        let changes = tokio::task::spawn_blocking(move || storage.set_changes())
            .await
            .map_err(|e| Status::internal(format!("set change loading task failed: {e}")))?
            .map_err(internal)?
            .into_iter()
            .filter(|c| c.height <= height)
            .collect();
        Ok(Response::new(GetValidatorSetResponse {
            height,
            validators: set.entries.clone(),
            set_hash: Bytes::copy_from_slice(&set.hash.0),
            changes,
            scheduled: sets
                .after(next)
                .iter()
                .map(|s| ScheduledSet {
                    from_height: s.from_height,
                    validators: s.entries.clone(),
                })
                .collect(),
        }))
    }

    async fn get_block(
        &self,
        request: Request<GetBlockRequest>,
    ) -> Result<Response<BlockInfo>, Status> {
        let req = request.into_inner();
        let head = self.0.heads.borrow().height;
        let height = match req.selector {
            None => return Err(Status::invalid_argument("give a height, a hash, or latest")),
            Some(Selector::Latest(_)) => head,
            Some(Selector::Height(h)) => h,
            Some(Selector::Hash(h)) => {
                let hash = Hash32::from_slice(&h).ok_or_else(|| {
                    Status::invalid_argument(format!(
                        "block hash must be 32 bytes, got {}",
                        h.len()
                    ))
                })?;
                self.0
                    .chain
                    .storage()
                    .height_of(&hash)
                    .map_err(internal)?
                    .ok_or_else(|| {
                        Status::not_found(format!("no committed block with hash {hash}"))
                    })?
            }
        };
        if height == 0 {
            return Err(Status::not_found(
                "no blocks yet: height 0 is genesis, blocks start at 1",
            ));
        }
        // Only what the node has published: a block written but not yet durable is not shown.
        if height > head {
            return Err(Status::not_found(format!(
                "no block at height {height}; head is {head}"
            )));
        }
        load_block(&self.0, height, req.include_transactions)
            .await?
            .map(Response::new)
            .ok_or_else(|| {
                Status::not_found(format!("no block at height {height}; head is {head}"))
            })
    }

    type StreamBlocksStream = Pin<Box<dyn Stream<Item = Result<BlockInfo, Status>> + Send>>;

    async fn stream_blocks(
        &self,
        request: Request<StreamBlocksRequest>,
    ) -> Result<Response<Self::StreamBlocksStream>, Status> {
        let req = request.into_inner();
        let include_txs = req.include_transactions;
        let rx = super::follow_heights(
            self.0.clone(),
            req.from_height,
            move |state, height| async move {
                let block = load_block(&state, height, include_txs)
                    .await?
                    .ok_or_else(|| {
                        Status::internal(format!("block {height} missing below head"))
                    })?;
                Ok(vec![block])
            },
        )?;
        Ok(Response::new(Box::pin(ReceiverStream::new(rx))))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::GrpcConfig;
    use crate::testutil::TestChain;
    use tokio::sync::watch;

    /// The services of `t`'s chain, whose published head is what `heads` holds.
    fn api(t: &TestChain, heads: watch::Receiver<crate::storage::Head>) -> ChainApi {
        let admission = Arc::new(crate::admission::Admission::new(
            t.genesis.chain_id.clone(),
            t.chain.params().clone(),
            t.chain.storage().clone(),
            t.mempool.clone(),
            t.chain.contracts().clone(),
        ));
        let admission_queue = crate::admission_queue::AdmissionQueue::start(
            admission.clone(),
            None,
            Arc::new(tokio::sync::Notify::new()),
        );
        let grpc = GrpcConfig::default();
        let (queries, streams) = NodeState::limits(&grpc);
        ChainApi(Arc::new(NodeState {
            chain: t.chain.clone(),
            mempool: t.mempool.clone(),
            admission,
            admission_queue,
            heads,
            consensus: watch::channel(Default::default()).1,
            node_key: t.validator.public(),
            grpc,
            network: None,
            queries,
            streams,
        }))
    }

    /// A block committed but not yet published (its fsync pending, as between the driver's
    /// deferred commit and the head it sends) is not shown by `GetBlock`, so `GetValidatorSet`
    /// must not count it either: a client that checks the set through the block before its
    /// height would ask for a block the node says it does not have.
    #[tokio::test]
    async fn the_validator_set_is_of_the_published_head_not_of_a_commit_in_flight() {
        let t = TestChain::new(2);
        let (heads_tx, heads) = watch::channel(t.chain.head());
        let api = api(&t, heads);
        t.admit_ok(vec![t.transfer(0, t.addr(1), 5, 0)]);
        let published = t.produce().expect("block 1");
        heads_tx.send_replace(published.clone());
        t.admit_ok(vec![t.transfer(0, t.addr(1), 5, 1)]);
        let in_flight = t.produce().expect("block 2");
        assert_eq!((published.height, in_flight.height), (1, 2));

        let set = api
            .get_validator_set(Request::new(GetValidatorSetRequest { height: 0 }))
            .await
            .expect("set")
            .into_inner();
        assert_eq!(set.height, 2, "the next height after the published head");
        let block_before = api
            .get_block(Request::new(GetBlockRequest {
                selector: Some(Selector::Height(set.height - 1)),
                include_transactions: false,
            }))
            .await;
        assert!(block_before.is_ok(), "{block_before:?}");
        let ahead = api
            .get_validator_set(Request::new(GetValidatorSetRequest { height: 3 }))
            .await
            .expect_err("height 3 follows a block not published");
        assert_eq!(ahead.code(), tonic::Code::OutOfRange, "{ahead:?}");
    }
}
