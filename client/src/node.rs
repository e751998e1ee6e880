//! One node's transaction and account services: submit and get the hash at once, wait for an
//! outcome, or both; a wait that runs out is "unknown, query this hash", never a guess.

use std::time::{Duration, Instant};

use bytes::Bytes;
use quorate_proto::crypto::{Address, Hash32};
use quorate_proto::tx::tx_hash;
use quorate_proto::v1::chain_service_client::ChainServiceClient;
use quorate_proto::v1::contract_service_client::ContractServiceClient;
use quorate_proto::v1::node_service_client::NodeServiceClient;
use quorate_proto::v1::tx_service_client::TxServiceClient;
use quorate_proto::v1::{
    get_block_request, BlockInfo, ContractInfo, ExecStatus, GetAccountRequest, GetAccountResponse,
    GetBlockRequest, GetContractRequest, GetGovernanceRequest, GetNodeStatusRequest,
    GetProposalRequest, GetValidatorSetRequest, GetValidatorSetResponse, GovernanceInfo,
    NodeStatus, ProposalInfo, QueryRequest, QueryResponse, Receipt, RejectCode, Rejection,
    SubmitBatchRequest, SubmitRequest, SubmitResult, Transaction, TxState, TxStatusRequest,
    TxStatusResponse, WaitForCommitRequest,
};
use tonic::transport::Channel;

use crate::connect::{connect, Tls};
use crate::error::ClientError;
use crate::stream::{BlockStream, Checkpoint, EventFilter, EventStream};

/// The largest answer taken from a node: a block with its transactions may be larger than
/// tonic's default of 4 MiB (a node sends up to `grpc.max_message_bytes`, 32 MiB by default).
pub const MAX_MESSAGE_BYTES: usize = 64 << 20;

/// The longest one `WaitForCommit` call may ask for (the node caps it there).
const LONGEST_WAIT: Duration = Duration::from_secs(300);

/// A committed transaction: where it is, what it did, and the copy the chain holds (its
/// co-signatures may differ from the copy a client sent).
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct Outcome {
    /// The transaction's hash.
    pub hash: Hash32,
    /// Height of its block.
    pub height: u64,
    /// Position in that block.
    pub index: u32,
    /// What executing it did (its status says whether it succeeded).
    pub receipt: Receipt,
    /// The transaction as committed, when the node returned it.
    pub transaction: Option<Transaction>,
}

impl Outcome {
    /// Whether its execution succeeded.
    pub fn succeeded(&self) -> bool {
        self.receipt.status == quorate_proto::v1::ExecStatus::Success as i32
    }
}

/// A connection to one node.
#[derive(Clone, Debug)]
pub struct Node {
    url: String,
    channel: Channel,
    /// TLS without a client certificate (see [`ClientError::from_status`]).
    tls_without_identity: bool,
}

impl Node {
    /// Connects to the node at `url` (with `tls` for an `https://` URL).
    pub async fn connect(url: &str, tls: Option<&Tls>) -> Result<Self, ClientError> {
        Ok(Self {
            url: url.to_owned(),
            channel: connect(url, tls).await?,
            tls_without_identity: tls.is_some_and(|t| t.identity.is_none()),
        })
    }

    /// A node reached through an open `channel` (plaintext, or TLS that presents a client
    /// certificate), known as `url` in errors.
    pub fn from_channel(url: &str, channel: Channel) -> Self {
        Self {
            url: url.to_owned(),
            channel,
            tls_without_identity: false,
        }
    }

    /// The node's URL.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The gRPC channel, for the services this type does not wrap.
    pub fn channel(&self) -> &Channel {
        &self.channel
    }

    pub(crate) fn tx(&self) -> TxServiceClient<Channel> {
        TxServiceClient::new(self.channel.clone()).max_decoding_message_size(MAX_MESSAGE_BYTES)
    }

    pub(crate) fn chain(&self) -> ChainServiceClient<Channel> {
        ChainServiceClient::new(self.channel.clone()).max_decoding_message_size(MAX_MESSAGE_BYTES)
    }

    pub(crate) fn contracts(&self) -> ContractServiceClient<Channel> {
        ContractServiceClient::new(self.channel.clone())
            .max_decoding_message_size(MAX_MESSAGE_BYTES)
    }

    fn node_service(&self) -> NodeServiceClient<Channel> {
        NodeServiceClient::new(self.channel.clone()).max_decoding_message_size(MAX_MESSAGE_BYTES)
    }

    pub(crate) fn error(&self, what: &'static str, status: tonic::Status) -> ClientError {
        ClientError::from_status(&self.url, what, status, self.tls_without_identity)
    }

    /// Submits `tx`; returns its hash once the node admitted it. Submitting a transaction the
    /// node already holds (pending, or committed) is not an error: it returns the same hash.
    pub async fn submit(&self, tx: &Transaction) -> Result<Hash32, ClientError> {
        match self.submit_as_is(tx).await {
            Err(ClientError::Refused {
                hash: Some(hash),
                code,
                message,
            }) => match code {
                RejectCode::Duplicate => Ok(hash),
                // A used nonce may be this very transaction, committed already (or decided and
                // about to be published: the node still calls it pending).
                RejectCode::NonceUsed if self.holds(&hash).await? => Ok(hash),
                _ => Err(ClientError::Refused {
                    hash: Some(hash),
                    code,
                    message,
                }),
            },
            other => other,
        }
    }

    /// Submits `tx` and returns the node's answer as given: the hash once admitted, or
    /// [`ClientError::Refused`] with the node's code, including `DUPLICATE` (this transaction
    /// is pending already) and `NONCE_USED` (its nonce is committed, maybe by this very
    /// transaction), which [`Node::submit`] takes as success when the node holds it.
    pub async fn submit_as_is(&self, tx: &Transaction) -> Result<Hash32, ClientError> {
        self.sender().submit_as_is(tx).await
    }

    /// Submits `txs` in one call (the node admits them in one round, up to its
    /// `grpc.max_batch_txs`); the node's answer to each, in order, as
    /// [`Node::submit_as_is`] gives it. The outer error is the call's own.
    pub async fn submit_batch(
        &self,
        txs: Vec<Transaction>,
    ) -> Result<Vec<Result<Hash32, ClientError>>, ClientError> {
        self.sender().submit_batch(txs).await
    }

    /// A sender for one task that submits many transactions: it keeps its own client to the
    /// node instead of setting one up for each call.
    pub fn sender(&self) -> Sender {
        Sender {
            client: self.tx(),
            node: self.clone(),
        }
    }

    /// Whether the node holds the transaction `hash`: committed, or pending.
    async fn holds(&self, hash: &Hash32) -> Result<bool, ClientError> {
        let state = self.status(hash).await?.state;
        Ok(state == TxState::Committed as i32 || state == TxState::Pending as i32)
    }

    /// Where the transaction `hash` is now, as this node knows it.
    pub async fn status(&self, hash: &Hash32) -> Result<TxStatusResponse, ClientError> {
        Ok(self
            .tx()
            .get_status(TxStatusRequest {
                tx_hash: Bytes::copy_from_slice(&hash.0),
            })
            .await
            .map_err(|s| self.error("transaction status", s))?
            .into_inner())
    }

    /// Waits up to `timeout` for the transaction `hash` to be committed. A refusal (or an
    /// eviction) is [`ClientError::Refused`]; no outcome in time, or a connection that broke
    /// while waiting, is [`ClientError::Unknown`]: ask again about `hash`.
    pub async fn wait(&self, hash: &Hash32, timeout: Duration) -> Result<Outcome, ClientError> {
        let started = Instant::now();
        // The node answers at once for a hash it does not hold (not yet gossiped to it, or
        // dropped): ask again after a pause that grows, never in a tight loop.
        let mut pause = Duration::from_millis(50);
        loop {
            let left = timeout.saturating_sub(started.elapsed());
            let unknown = |why: String| ClientError::Unknown {
                hash: *hash,
                waited: started.elapsed(),
                why,
            };
            if left.is_zero() {
                return Err(unknown("no outcome in the time given".into()));
            }
            let asked = Instant::now();
            let status = self
                .tx()
                .wait_for_commit(WaitForCommitRequest {
                    tx_hash: Bytes::copy_from_slice(&hash.0),
                    timeout_ms: left.min(LONGEST_WAIT).as_millis().max(1) as u32,
                })
                .await;
            let status = match status {
                Ok(s) => s.into_inner(),
                Err(s) => {
                    return Err(match self.error("wait for commit", s) {
                        e @ ClientError::Unreachable { .. } => unknown(e.to_string()),
                        other => other,
                    })
                }
            };
            match TxState::try_from(status.state) {
                Ok(TxState::Committed) => {
                    return Ok(Outcome {
                        hash: *hash,
                        height: status.height,
                        index: status.index,
                        receipt: status.receipt.ok_or_else(|| ClientError::BadAnswer {
                            what: "wait for commit",
                            why: "committed without a receipt".into(),
                        })?,
                        transaction: status.transaction,
                    })
                }
                Ok(TxState::Rejected | TxState::Evicted) => {
                    return Err(refused(Some(*hash), &status.rejection.unwrap_or_default()))
                }
                // Pending, or not known (yet) to this node: wait on while time is left.
                _ => {}
            }
            if asked.elapsed() < pause {
                tokio::time::sleep(pause.min(timeout.saturating_sub(started.elapsed()))).await;
                pause = (pause * 2).min(Duration::from_secs(1));
            }
        }
    }

    /// Submits `tx` and waits up to `timeout` for its outcome. Safe to call again with the same
    /// transaction after any error: it has the same hash and is included at most once. A
    /// submission whose answer was lost is [`ClientError::Unknown`] with the hash computed here.
    pub async fn submit_and_wait(
        &self,
        tx: &Transaction,
        timeout: Duration,
    ) -> Result<Outcome, ClientError> {
        let hash = match self.submit(tx).await {
            Ok(hash) => hash,
            // The node may have admitted it before the connection broke.
            Err(e @ ClientError::Unreachable { .. }) => {
                return Err(ClientError::Unknown {
                    hash: tx_hash(&tx.body),
                    waited: Duration::ZERO,
                    why: e.to_string(),
                })
            }
            Err(e) => return Err(e),
        };
        self.wait(&hash, timeout).await
    }

    /// `address`'s account: balance, committed nonce, next nonce (counting pending
    /// transactions), key set.
    pub async fn account(&self, address: &Address) -> Result<GetAccountResponse, ClientError> {
        Ok(self
            .chain()
            .get_account(GetAccountRequest {
                address: Bytes::copy_from_slice(&address.0),
            })
            .await
            .map_err(|s| self.error("account", s))?
            .into_inner())
    }

    /// The committed block at `height` (0: the latest), with its transactions if asked.
    pub async fn block(
        &self,
        height: u64,
        include_transactions: bool,
    ) -> Result<BlockInfo, ClientError> {
        let selector = if height == 0 {
            get_block_request::Selector::Latest(true)
        } else {
            get_block_request::Selector::Height(height)
        };
        self.block_of(selector, include_transactions).await
    }

    /// The committed block whose hash is `hash`, with its transactions if asked.
    pub async fn block_by_hash(
        &self,
        hash: &Hash32,
        include_transactions: bool,
    ) -> Result<BlockInfo, ClientError> {
        let selector = get_block_request::Selector::Hash(Bytes::copy_from_slice(&hash.0));
        self.block_of(selector, include_transactions).await
    }

    async fn block_of(
        &self,
        selector: get_block_request::Selector,
        include_transactions: bool,
    ) -> Result<BlockInfo, ClientError> {
        Ok(self
            .chain()
            .get_block(GetBlockRequest {
                selector: Some(selector),
                include_transactions,
            })
            .await
            .map_err(|s| self.error("block", s))?
            .into_inner())
    }

    /// The validator set in force at `height` (0: the next height), with the set changes
    /// that prove it from genesis (check them with [`crate::ChainVerifier`]).
    pub async fn validator_set(&self, height: u64) -> Result<GetValidatorSetResponse, ClientError> {
        Ok(self
            .chain()
            .get_validator_set(GetValidatorSetRequest { height })
            .await
            .map_err(|s| self.error("validator set", s))?
            .into_inner())
    }

    /// Who administers the chain (its single admin or its governance policy) and its
    /// proposals numbered below `before` (0: from the latest), newest first, at most `limit`
    /// (0: the node's most), only those open if `open_only`.
    pub async fn governance(
        &self,
        open_only: bool,
        before: u64,
        limit: u32,
    ) -> Result<GovernanceInfo, ClientError> {
        Ok(self
            .chain()
            .get_governance(GetGovernanceRequest {
                open_only,
                before,
                limit,
            })
            .await
            .map_err(|s| self.error("governance", s))?
            .into_inner())
    }

    /// Proposal `number`'s record and where it stands.
    pub async fn proposal(&self, number: u64) -> Result<ProposalInfo, ClientError> {
        Ok(self
            .chain()
            .get_proposal(GetProposalRequest { number })
            .await
            .map_err(|s| self.error("proposal", s))?
            .into_inner())
    }

    /// Every committed block from `from_height` (at least 1) on, each once, resumed after a
    /// broken connection or a node restart.
    pub fn blocks(&self, from_height: u64, include_transactions: bool) -> BlockStream {
        BlockStream::new(self.clone(), from_height, include_transactions)
    }

    /// Every contract event `filter` lets through after `after` (the default checkpoint:
    /// from height 1), each once, resumed after a broken connection or a node restart.
    pub fn events(&self, filter: EventFilter, after: Checkpoint) -> EventStream {
        EventStream::new(self.clone(), filter, after)
    }

    /// A read-only call of `method` of `contract` with encoded `args` against the latest
    /// committed state; what it returned, or [`ClientError::QueryFailed`].
    pub async fn query(
        &self,
        contract: &Address,
        method: &str,
        args: Vec<u8>,
    ) -> Result<Bytes, ClientError> {
        let answer = self
            .query_answer(QueryRequest {
                contract: Bytes::copy_from_slice(&contract.0),
                method: method.to_owned(),
                args: args.into(),
                caller: Bytes::new(),
                fuel_limit: 0,
            })
            .await?;
        if answer.status != ExecStatus::Success as i32 {
            return Err(ClientError::QueryFailed {
                method: method.to_owned(),
                status: ExecStatus::try_from(answer.status).unwrap_or(ExecStatus::Unspecified),
                message: answer.error,
            });
        }
        Ok(answer.return_data)
    }

    /// The node's whole answer to a read-only call (status, return data, error, fuel used,
    /// height), with the caller and fuel limit of `request`: a failed call is an answer here,
    /// not an error.
    pub async fn query_answer(&self, request: QueryRequest) -> Result<QueryResponse, ClientError> {
        Ok(self
            .contracts()
            .query(request)
            .await
            .map_err(|s| self.error("query", s))?
            .into_inner())
    }

    /// The deployed contract at `address`: code hash, methods, embedded interface, balance.
    pub async fn contract(&self, address: &Address) -> Result<ContractInfo, ClientError> {
        Ok(self
            .contracts()
            .get_contract(GetContractRequest {
                address: Bytes::copy_from_slice(&address.0),
            })
            .await
            .map_err(|s| self.error("contract", s))?
            .into_inner())
    }

    /// The node's status: chain id, height, parameters, validators.
    pub async fn node_status(&self) -> Result<NodeStatus, ClientError> {
        Ok(self
            .node_service()
            .get_status(GetNodeStatusRequest {})
            .await
            .map_err(|s| self.error("node status", s))?
            .into_inner())
    }
}

/// One task's sender ([`Node::sender`]): the node's answers as given, as
/// [`Node::submit_as_is`] and [`Node::submit_batch`] give them.
#[derive(Clone, Debug)]
pub struct Sender {
    node: Node,
    client: TxServiceClient<Channel>,
}

impl Sender {
    /// [`Node::submit_as_is`] through this sender's client.
    pub async fn submit_as_is(&mut self, tx: &Transaction) -> Result<Hash32, ClientError> {
        let result = self
            .client
            .submit(SubmitRequest {
                transaction: Some(tx.clone()),
            })
            .await
            .map_err(|s| self.node.error("submit", s))?
            .into_inner();
        admission(result)
    }

    /// [`Node::submit_batch`] through this sender's client.
    pub async fn submit_batch(
        &mut self,
        txs: Vec<Transaction>,
    ) -> Result<Vec<Result<Hash32, ClientError>>, ClientError> {
        let sent = txs.len();
        let results = self
            .client
            .submit_batch(SubmitBatchRequest { transactions: txs })
            .await
            .map_err(|s| self.node.error("submit batch", s))?
            .into_inner()
            .results;
        if results.len() != sent {
            return Err(ClientError::BadAnswer {
                what: "submit batch",
                why: format!("{} answers to {sent} transactions", results.len()),
            });
        }
        Ok(results.into_iter().map(admission).collect())
    }
}

/// The node's answer to one submitted transaction: its hash, or the refusal.
fn admission(result: SubmitResult) -> Result<Hash32, ClientError> {
    let hash = Hash32::from_slice(&result.tx_hash);
    match result.rejection {
        None => hash.ok_or_else(|| ClientError::BadAnswer {
            what: "submit",
            why: "admitted without a hash".into(),
        }),
        Some(rejection) => Err(refused(hash, &rejection)),
    }
}

/// A refusal of the transaction `hash`.
fn refused(hash: Option<Hash32>, rejection: &Rejection) -> ClientError {
    ClientError::Refused {
        hash,
        code: RejectCode::try_from(rejection.code).unwrap_or(RejectCode::Unspecified),
        message: rejection.message.clone(),
    }
}
