//! The validators' network over libp2p: TCP with noise (authenticated encryption) and yamux
//! (multiplexing), gossipsub for transactions and consensus messages, and a request/response
//! protocol for block sync. Each validator's libp2p identity is its genesis key, and only the
//! genesis validators and configured observers may connect.
//!
//! Everything a peer sends is checked before it is passed on or queued: gossip is validated by
//! this task before gossipsub forwards it (it must decode, and consensus messages must come
//! from a validator), consensus traffic is queued per sending validator ([`Inbox`]), and sync
//! requests go to their own bounded queue with a per-peer limit, served off the consensus task.

mod codec;
pub mod inbox;
pub mod sync_places;
#[cfg(test)]
mod tests;
pub mod warnings;
pub mod wire;

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use libp2p::gossipsub::{self, IdentTopic, MessageAuthenticity, ValidationMode};
use libp2p::request_response::{self, ProtocolSupport, ResponseChannel};
use libp2p::swarm::{NetworkBehaviour, SwarmEvent};
use libp2p::{allow_block_list, identity, Multiaddr, PeerId, Swarm};
use parking_lot::RwLock;
use prost::Message;
use quorate_proto::certificate::{ValidatorSet, MAX_VALIDATORS};
use quorate_proto::v1::{
    Block, ConsensusMessage, DecisionRequest, DecisionResponse, SnapshotRequest, Transaction,
    TxGossip,
};
use quorate_proto::{Hash32, Keypair, PublicKey};
use tokio::sync::mpsc;

pub use codec::{SyncCodec, SYNC_PROTOCOL};
pub use inbox::Inbox;

/// Most sync requests one peer may have waiting to be answered; more are refused.
pub const SYNC_REQUESTS_PER_PEER: usize = 8;
/// How long an outbound sync request waits for its answer before it fails.
pub const SYNC_REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// Most sync requests of all peers waiting in each of the two queues ([`SyncRequests`]).
pub const SYNC_QUEUE: usize = 64;
/// Most consensus events queued per sending validator.
pub const INBOX_ITEMS_PER_SENDER: usize = 4096;
/// Most bytes of gossiped transactions (as received) waiting for or in admission at once;
/// beyond it gossip is ignored until admission catches up.
pub const TX_GOSSIP_QUEUE_BYTES: usize = 128 << 20;

/// Checks a gossiped consensus message's signature before it is queued or forwarded: the
/// index of the validator that signed it, or why it is refused. Set by the node once it knows
/// the validator sets ([`NetworkHandle::check_signatures_with`]).
pub type SignatureCheck = Arc<dyn Fn(&ConsensusMessage) -> Result<u32, Unchecked> + Send + Sync>;

/// Why a gossiped consensus message is not queued.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Unchecked {
    /// It is for a height this node has committed: of no use here, dropped without checking its
    /// signature and not held against its sender (an honest validator may just be behind). A
    /// liar replaying a validator's old votes cannot fill that validator's queue with them.
    Stale,
    /// A bad signature, or a message that means nothing.
    Invalid(String),
}

impl From<String> for Unchecked {
    fn from(why: String) -> Self {
        Self::Invalid(why)
    }
}

impl From<&str> for Unchecked {
    fn from(why: &str) -> Self {
        Self::Invalid(why.to_owned())
    }
}

/// Queues of the driver's inbox: one per validator index for its gossip (validators of the
/// current and a decided set), one per validator for its answers to this node's sync requests,
/// and one for anyone else.
pub const INBOX_SENDERS: usize = 3 * MAX_VALIDATORS + 1;
/// Where the queues of sync answers start: a validator's answers never wait behind, or get
/// dropped for, gossip queued under its name.
const ANSWER_QUEUES: usize = 2 * MAX_VALIDATORS;

/// Gossiped transactions for admission, holding their place in [`TX_GOSSIP_QUEUE_BYTES`]
/// until dropped.
#[derive(Debug)]
pub struct GossipBatch {
    /// The transactions.
    pub transactions: Vec<Transaction>,
    /// Their place in the byte budget, given back when the batch is dropped.
    pub place: Option<tokio::sync::OwnedSemaphorePermit>,
}

/// Why the network could not start.
#[derive(Debug, thiserror::Error)]
pub enum NetworkError {
    /// A key cannot be used as a libp2p identity.
    #[error("key {0} is not a valid ed25519 libp2p identity")]
    BadKey(String),
    /// A configured address or peer id does not parse.
    #[error("p2p config {field} = {value:?}: {why}")]
    BadConfig {
        /// Field.
        field: &'static str,
        /// Value.
        value: String,
        /// Why.
        why: String,
    },
    /// libp2p refused to build or listen.
    #[error("libp2p: {0}")]
    Libp2p(String),
}

/// Network settings (from the `[p2p]` config section).
#[derive(Clone, Debug)]
pub struct NetworkSettings {
    /// Address to listen on.
    pub listen_addr: Multiaddr,
    /// Peers to keep connections to.
    pub peers: Vec<Multiaddr>,
    /// Non-validator peers allowed to connect.
    pub observers: Vec<PeerId>,
    /// Largest gossip message or sync response, bytes.
    pub max_message_bytes: usize,
    /// The chain's most transactions per block (bounds a request for the transactions of a
    /// compact proposal).
    pub block_max_txs: u32,
    /// How often unconnected peers are dialled again.
    pub redial_interval: Duration,
}

/// The libp2p identity of a validator key.
pub fn peer_id_of(key: &PublicKey) -> Result<PeerId, NetworkError> {
    identity::ed25519::PublicKey::try_from_bytes(&key.0)
        .map(|pk| identity::PublicKey::from(pk).to_peer_id())
        .map_err(|_| NetworkError::BadKey(key.to_hex()))
}

/// The validator key behind a peer id (an ed25519 identity inlined in the id), if it is one.
pub fn key_of_peer(peer: &PeerId) -> Option<PublicKey> {
    let hash: &libp2p::multihash::Multihash<64> = peer.as_ref();
    // Code 0: the identity "hash", whose digest is the protobuf-encoded public key.
    if hash.code() != 0 {
        return None;
    }
    let key = identity::PublicKey::try_decode_protobuf(hash.digest()).ok()?;
    let ed = key.try_into_ed25519().ok()?;
    PublicKey::from_slice(&ed.to_bytes()).ok()
}

/// The validator keys of the peers configured by identity (`p2p.peers`), in their order,
/// without repeats.
pub fn configured_peer_keys(peers: &[Multiaddr]) -> Vec<PublicKey> {
    let mut keys: Vec<PublicKey> = Vec::new();
    for k in peers
        .iter()
        .filter_map(peer_of_addr)
        .filter_map(|p| key_of_peer(&p))
    {
        if !keys.contains(&k) {
            keys.push(k);
        }
    }
    keys
}

fn libp2p_keypair(key: &Keypair) -> Result<identity::Keypair, NetworkError> {
    let mut secret = key.secret_bytes();
    identity::Keypair::ed25519_from_bytes(&mut secret)
        .map_err(|_| NetworkError::BadKey(key.public().to_hex()))
}

/// Something the network received for the consensus driver.
#[derive(Debug)]
pub enum ConsensusEvent {
    /// A proposal or vote (with the block body when a proposal is first sent), gossiped by a
    /// validator.
    Message(Box<ConsensusMessage>),
    /// The answer of validator `from` to [`NetworkHandle::request_decision`] for `height`
    /// (empty when it has not committed that height).
    Decision {
        /// Who answered.
        from: u32,
        /// The height asked for.
        height: u64,
        /// Block and certificate.
        response: Box<DecisionResponse>,
    },
    /// The answer of validator `from` to [`NetworkHandle::request_body`]: the body of a block
    /// it holds (`None` when it has none).
    Body {
        /// Who answered.
        from: u32,
        /// The block asked for.
        hash: [u8; 32],
        /// Its body.
        block: Option<Box<Block>>,
    },
    /// The answer of validator `from` to [`NetworkHandle::request_snapshot`] (`None` when
    /// the request failed: timeout, refused, connection lost).
    Snapshot {
        /// Who answered.
        from: u32,
        /// The snapshot height asked for (0: the latest).
        height: u64,
        /// The chunk asked for (`None`: the manifest).
        chunk: Option<u32>,
        /// The answer.
        response: Option<Box<DecisionResponse>>,
    },
    /// The answer of validator `from` to [`NetworkHandle::request_txs`]: the transactions
    /// asked for, in the order asked (empty when it does not hold them).
    Txs {
        /// Who answered.
        from: u32,
        /// The block they belong to.
        hash: [u8; 32],
        /// The transactions.
        transactions: Vec<Transaction>,
    },
}

/// A peer's sync request, to be answered with [`NetworkHandle::respond`].
#[derive(Debug)]
pub struct SyncRequest {
    /// Who asks.
    pub peer: PeerId,
    /// The request's id on that peer's connection (its place in the per-peer limit).
    pub id: request_response::InboundRequestId,
    /// What it asks for: a committed decision, or (with `block_hash`) a block body.
    pub request: DecisionRequest,
    /// Where the answer goes.
    pub channel: ResponseChannel<DecisionResponse>,
}

/// Peers' sync requests in two queues: fetches of the bodies and transactions of blocks being
/// decided (small, and a validator waits on them to vote) are answered before decisions and
/// snapshot parts (bulk catching up), so a peer catching up — or pretending to — cannot starve
/// the current height's fetches.
pub struct SyncRequests<T = SyncRequest> {
    urgent: mpsc::Receiver<T>,
    bulk: mpsc::Receiver<T>,
}

impl<T> SyncRequests<T> {
    /// Two queues of `capacity` requests each: the senders of fetches and of the rest, and
    /// the receiving end.
    pub fn channels(capacity: usize) -> (mpsc::Sender<T>, mpsc::Sender<T>, Self) {
        let (urgent_tx, urgent) = mpsc::channel(capacity);
        let (bulk_tx, bulk) = mpsc::channel(capacity);
        (urgent_tx, bulk_tx, Self { urgent, bulk })
    }

    /// The two queues: fetches, then the rest.
    pub fn split(self) -> (mpsc::Receiver<T>, mpsc::Receiver<T>) {
        (self.urgent, self.bulk)
    }

    /// The next request, a fetch before anything else; `None` once the network is gone.
    pub async fn recv(&mut self) -> Option<T> {
        tokio::select! {
            biased;
            Some(r) = self.urgent.recv() => Some(r),
            r = self.bulk.recv() => match r {
                Some(r) => Some(r),
                None => self.urgent.recv().await,
            },
        }
    }
}

/// Which queue a sync request goes to: a body or transaction fetch (it names a block), or the
/// rest.
pub fn urgent(request: &DecisionRequest) -> bool {
    !request.block_hash.is_empty() && request.snapshot.is_none()
}

/// What an outbound sync request asked for.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Asked {
    Decision {
        from: u32,
        height: u64,
    },
    Body {
        from: u32,
        hash: [u8; 32],
    },
    Txs {
        from: u32,
        hash: [u8; 32],
    },
    Snapshot {
        from: u32,
        height: u64,
        chunk: Option<u32>,
    },
}

/// What the handle asks of the network task.
pub(crate) enum Command {
    Publish {
        topic: IdentTopic,
        data: Vec<u8>,
    },
    Request {
        peer: PeerId,
        request: DecisionRequest,
        asked: Asked,
    },
    Respond {
        id: request_response::InboundRequestId,
        channel: ResponseChannel<DecisionResponse>,
        response: Box<DecisionResponse>,
    },
    /// The validators changed: `members` (those deciding the current height, then those a
    /// decided change brings in) may connect and send consensus messages; validators that
    /// left (`retired`) are disconnected unless they are observers; configured peers
    /// (`p2p.peers`) never known as validators stay.
    SetValidators {
        members: Vec<PeerId>,
        retired: Vec<PeerId>,
    },
    /// From now on consensus messages are checked with this before they are queued (under
    /// their signer) or forwarded.
    SetSignatureCheck(SignatureCheck),
}

/// Sends to the network task; cheap to clone.
#[derive(Clone)]
pub struct NetworkHandle {
    commands: mpsc::Sender<Command>,
    consensus_topic: IdentTopic,
    tx_topic: IdentTopic,
    /// The validators deciding the current height, by index.
    validators: Arc<RwLock<Vec<PeerId>>>,
    connected: Arc<RwLock<HashSet<PeerId>>>,
    local: PeerId,
    inbox: Arc<Inbox<ConsensusEvent>>,
}

impl NetworkHandle {
    /// Consensus messages dropped so far because their sender's queue was full.
    pub fn inbox_dropped(&self) -> u64 {
        self.inbox.dropped()
    }

    /// Gossips a consensus message to every validator.
    pub fn publish_consensus(&self, msg: &ConsensusMessage) {
        self.send(Command::Publish {
            topic: self.consensus_topic.clone(),
            data: msg.encode_to_vec(),
        });
    }

    /// Gossips transactions admitted from clients.
    pub fn publish_txs(&self, transactions: Vec<Transaction>) {
        self.send(Command::Publish {
            topic: self.tx_topic.clone(),
            data: TxGossip { transactions }.encode_to_vec(),
        });
    }

    /// Asks validator `validator` for the committed block at `height`.
    pub fn request_decision(&self, validator: u32, height: u64) {
        self.request(
            validator,
            DecisionRequest {
                height,
                ..Default::default()
            },
            Asked::Decision {
                from: validator,
                height,
            },
        );
    }

    /// Asks validator `validator` for the body of block `hash` proposed at `height`.
    pub fn request_body(&self, validator: u32, height: u64, hash: [u8; 32]) {
        self.request(
            validator,
            DecisionRequest {
                height,
                block_hash: bytes::Bytes::copy_from_slice(&hash),
                ..Default::default()
            },
            Asked::Body {
                from: validator,
                hash,
            },
        );
    }

    /// Asks validator `validator` for the transactions `tx_hashes` of block `hash` proposed at
    /// `height` (those a compact proposal named that this node lacks).
    pub fn request_txs(&self, validator: u32, height: u64, hash: [u8; 32], tx_hashes: &[Hash32]) {
        self.request(
            validator,
            DecisionRequest {
                height,
                block_hash: bytes::Bytes::copy_from_slice(&hash),
                tx_hashes: tx_hashes
                    .iter()
                    .map(|h| bytes::Bytes::copy_from_slice(&h.0))
                    .collect(),
                snapshot: None,
            },
            Asked::Txs {
                from: validator,
                hash,
            },
        );
    }

    /// Asks validator `validator` for the manifest of its snapshot of `height` (0: its
    /// latest), or with `chunk` for that chunk of it.
    pub fn request_snapshot(&self, validator: u32, height: u64, chunk: Option<u32>) {
        self.request(
            validator,
            DecisionRequest {
                snapshot: Some(SnapshotRequest { height, chunk }),
                ..Default::default()
            },
            Asked::Snapshot {
                from: validator,
                height,
                chunk,
            },
        );
    }

    /// The validator set changed: `current` decides the current height (indices of requests
    /// refer to it), `members` are every validator of this and the decided later sets,
    /// `retired` the validators of earlier sets that left (refused even if configured).
    pub fn set_validators(
        &self,
        current: &[PublicKey],
        members: &[PublicKey],
        retired: &[PublicKey],
    ) {
        let peers = |keys: &[PublicKey]| -> Vec<PeerId> {
            keys.iter().filter_map(|k| peer_id_of(k).ok()).collect()
        };
        *self.validators.write() = peers(current);
        self.send(Command::SetValidators {
            members: peers(members),
            retired: peers(retired),
        });
    }

    /// Requests by index go to `targets` from now on, without changing who may connect: a
    /// joining node asks the genesis validators and the configured peers (`p2p.peers`), which
    /// may be today's validators when every genesis validator has been replaced.
    pub fn set_request_targets(&self, targets: &[PublicKey]) {
        *self.validators.write() = targets.iter().filter_map(|k| peer_id_of(k).ok()).collect();
    }

    /// Checks every gossiped consensus message's signature with `check` before it is queued or
    /// forwarded, and queues it under the validator that signed it: junk a liar sends through
    /// an honest validator is refused by that validator and never counted against it.
    pub fn check_signatures_with(&self, check: SignatureCheck) {
        self.send(Command::SetSignatureCheck(check));
    }

    fn request(&self, validator: u32, request: DecisionRequest, asked: Asked) {
        let peer = self.validators.read().get(validator as usize).copied();
        if let Some(peer) = peer {
            if peer != self.local {
                self.send(Command::Request {
                    peer,
                    request,
                    asked,
                });
            }
        }
    }

    /// Answers a peer's sync request (which frees its place in that peer's limit).
    pub fn respond(&self, request: SyncRequest, response: DecisionResponse) {
        self.send(Command::Respond {
            id: request.id,
            channel: request.channel,
            response: Box::new(response),
        });
    }

    /// Validators (other than this node) connected now.
    pub fn connected_validators(&self) -> usize {
        let connected = self.connected.read();
        self.validators
            .read()
            .iter()
            .filter(|p| **p != self.local && connected.contains(p))
            .count()
    }

    /// Peers connected now.
    pub fn connected_peers(&self) -> Vec<PeerId> {
        self.connected.read().iter().copied().collect()
    }

    /// This node's peer id.
    pub fn local_peer_id(&self) -> PeerId {
        self.local
    }

    fn send(&self, c: Command) {
        // A full queue means the network is far behind; consensus re-sends what matters.
        if self.commands.try_send(c).is_err() {
            tracing::warn!("network command queue full; dropping a message");
        }
    }
}

#[cfg(any(test, feature = "sim"))]
impl NetworkHandle {
    /// A handle whose commands come out of the returned receiver instead of going to a swarm
    /// (for driver tests that play the other validators, and the node simulator).
    pub(crate) fn detached(
        validators: Vec<PeerId>,
        local: PeerId,
        chain_id: &str,
    ) -> (Self, mpsc::Receiver<Command>) {
        let (commands, rx) = mpsc::channel(4096);
        let handle = Self {
            commands,
            consensus_topic: IdentTopic::new(format!("quorate/{chain_id}/consensus/1")),
            tx_topic: IdentTopic::new(format!("quorate/{chain_id}/txs/1")),
            validators: Arc::new(RwLock::new(validators)),
            connected: Arc::new(RwLock::new(HashSet::new())),
            local,
            inbox: Arc::new(Inbox::new(1, 1, 1)),
        };
        (handle, rx)
    }
}

#[cfg(test)]
impl Command {
    /// The consensus message this command publishes, if it is one.
    pub(crate) fn published_consensus(&self) -> Option<ConsensusMessage> {
        match self {
            Command::Publish { topic, data } if topic.to_string().ends_with("/consensus/1") => {
                ConsensusMessage::decode(data.as_slice()).ok()
            }
            _ => None,
        }
    }

    /// The transactions this command gossips, if it gossips transactions.
    pub(crate) fn published_txs(&self) -> Option<Vec<quorate_proto::v1::Transaction>> {
        match self {
            Command::Publish { topic, data } if topic.to_string().ends_with("/txs/1") => {
                TxGossip::decode(data.as_slice())
                    .ok()
                    .map(|g| g.transactions)
            }
            _ => None,
        }
    }

    /// The body this command asks a validator for: (validator, block hash).
    pub(crate) fn body_request(&self) -> Option<(u32, [u8; 32])> {
        match self {
            Command::Request {
                asked: Asked::Body { from, hash },
                ..
            } => Some((*from, *hash)),
            _ => None,
        }
    }

    /// The transactions this command asks a validator for: (validator, block hash, hashes).
    pub(crate) fn txs_request(&self) -> Option<(u32, [u8; 32], Vec<bytes::Bytes>)> {
        match self {
            Command::Request {
                asked: Asked::Txs { from, hash },
                request,
                ..
            } => Some((*from, *hash, request.tx_hashes.clone())),
            _ => None,
        }
    }
}

/// Incoming connections still in their handshake, at most: anyone can open a TCP connection
/// and stall the handshake (issue 25: there was no connection limit). Past it, new incoming
/// connections are closed at once. The limit is global (libp2p has no per-address one): an
/// attacker who keeps it full (about 26 stalled connections a second, against the 10-s
/// upgrade timeout) refuses every incoming dial, so it is set well above what honest peers
/// need, and validators also dial out.
pub const MAX_PENDING_INCOMING: u32 = 256;
/// Connections to one peer, at most (a dial each way, while gossipsub settles on one).
pub const MAX_CONNECTIONS_PER_PEER: u32 = 2;
/// Established connections, at most: every validator of the largest set, twice, and room for
/// observers.
pub const MAX_CONNECTIONS: u32 = 4 * quorate_proto::certificate::MAX_VALIDATORS as u32;

#[derive(NetworkBehaviour)]
struct Behaviour {
    limits: libp2p::connection_limits::Behaviour,
    allowed: allow_block_list::Behaviour<allow_block_list::AllowedPeers>,
    gossip: gossipsub::Behaviour,
    sync: request_response::Behaviour<SyncCodec>,
}

/// What the network hands to the node.
pub struct NetworkParts {
    /// Handle to send with.
    pub handle: NetworkHandle,
    /// Consensus messages and sync answers, for the driver, queued per sending validator.
    pub consensus: Arc<Inbox<ConsensusEvent>>,
    /// Sync requests of other peers, for the sync server.
    pub sync_requests: SyncRequests,
    /// Gossiped transactions, for admission.
    pub txs: mpsc::Receiver<GossipBatch>,
    /// The address actually listened on.
    pub listen_addr: Multiaddr,
}

/// Starts the network task for validator `key` of `validators` on `chain_id`.
pub async fn start(
    settings: NetworkSettings,
    key: &Keypair,
    validators: &ValidatorSet,
    chain_id: &str,
) -> Result<NetworkParts, NetworkError> {
    let keypair = libp2p_keypair(key)?;
    let local = keypair.public().to_peer_id();
    let validator_peers: Vec<PeerId> = validators
        .keys()
        .iter()
        .map(peer_id_of)
        .collect::<Result<_, _>>()?;
    let max = settings.max_message_bytes;
    let gossip_config = gossipsub::ConfigBuilder::default()
        .max_transmit_size(max)
        // Messages are not signed by libp2p (see `with_behaviour` below): every connection is
        // already authenticated by noise with an allow-listed key, each transaction carries
        // its own signature, and each proposal and vote its consensus signature (ADR 0005).
        .validation_mode(ValidationMode::Permissive)
        .heartbeat_interval(Duration::from_millis(500))
        .mesh_n_low(1)
        .mesh_n(validator_peers.len().clamp(2, 8))
        .mesh_n_high(validator_peers.len().clamp(2, 8) * 2)
        .mesh_outbound_min(1)
        .flood_publish(true)
        // Nothing is forwarded before this node has checked it (`NetworkTask::validate`).
        .validate_messages()
        .build()
        .map_err(|e| NetworkError::Libp2p(e.to_string()))?;
    let mut swarm = libp2p::SwarmBuilder::with_existing_identity(keypair)
        .with_tokio()
        .with_tcp(
            libp2p::tcp::Config::default().nodelay(true),
            libp2p::noise::Config::new,
            libp2p::yamux::Config::default,
        )
        .map_err(|e| NetworkError::Libp2p(e.to_string()))?
        .with_behaviour(|key| {
            let gossip = gossipsub::Behaviour::new(
                MessageAuthenticity::Author(key.public().to_peer_id()),
                gossip_config,
            )?;
            let sync = request_response::Behaviour::with_codec(
                SyncCodec {
                    max_bytes: max,
                    max_request_bytes: codec::max_request_bytes(settings.block_max_txs),
                },
                [(SYNC_PROTOCOL, ProtocolSupport::Full)],
                request_response::Config::default()
                    .with_request_timeout(SYNC_REQUEST_TIMEOUT)
                    .with_max_concurrent_streams(64),
            );
            Ok::<_, Box<dyn std::error::Error + Send + Sync>>(Behaviour {
                limits: libp2p::connection_limits::Behaviour::new(
                    libp2p::connection_limits::ConnectionLimits::default()
                        .with_max_pending_incoming(Some(MAX_PENDING_INCOMING))
                        .with_max_established_per_peer(Some(MAX_CONNECTIONS_PER_PEER))
                        .with_max_established(Some(MAX_CONNECTIONS)),
                ),
                allowed: allow_block_list::Behaviour::default(),
                gossip,
                sync,
            })
        })
        .map_err(|e| NetworkError::Libp2p(e.to_string()))?
        .with_swarm_config(|c| c.with_idle_connection_timeout(Duration::from_secs(3600)))
        .build();
    // Peers the operator configured by identity are trusted to connect too, unless the node
    // learns that they left a validator set: a node joining a chain whose set has changed
    // since genesis (or restarted far behind) reaches today's validators through them.
    let configured = settings.peers.iter().filter_map(peer_of_addr);
    for peer in validator_peers
        .iter()
        .copied()
        .chain(settings.observers.iter().copied())
        .chain(configured)
    {
        swarm.behaviour_mut().allowed.allow_peer(peer);
    }
    let consensus_topic = IdentTopic::new(format!("quorate/{chain_id}/consensus/1"));
    let tx_topic = IdentTopic::new(format!("quorate/{chain_id}/txs/1"));
    for t in [&consensus_topic, &tx_topic] {
        swarm
            .behaviour_mut()
            .gossip
            .subscribe(t)
            .map_err(|e| NetworkError::Libp2p(e.to_string()))?;
    }
    swarm
        .listen_on(settings.listen_addr.clone())
        .map_err(|e| NetworkError::Libp2p(e.to_string()))?;
    let listen_addr = loop {
        match swarm.select_next_some().await {
            SwarmEvent::NewListenAddr { address, .. } => break address,
            SwarmEvent::ListenerError { error, .. }
            | SwarmEvent::ListenerClosed {
                reason: Err(error), ..
            } => {
                return Err(NetworkError::Libp2p(format!(
                    "cannot listen on {}: {error}",
                    settings.listen_addr
                )))
            }
            _ => {}
        }
    };
    tracing::info!(peer_id = %local, %listen_addr, "p2p listening");
    let (commands, commands_rx) = mpsc::channel(4096);
    // Queues by sender (`INBOX_SENDERS`); each holds a few full blocks at most.
    let consensus = Arc::new(Inbox::new(INBOX_SENDERS, INBOX_ITEMS_PER_SENDER, 2 * max));
    let (sync_tx, sync_bulk_tx, sync_requests) = SyncRequests::channels(SYNC_QUEUE);
    let (txs_tx, txs) = mpsc::channel(1024);
    let validator_index: HashMap<PeerId, u32> = validator_peers
        .iter()
        .enumerate()
        .map(|(i, p)| (*p, i as u32))
        .collect();
    let connected = Arc::new(RwLock::new(HashSet::new()));
    let handle = NetworkHandle {
        commands,
        consensus_topic: consensus_topic.clone(),
        tx_topic: tx_topic.clone(),
        validators: Arc::new(RwLock::new(validator_peers.clone())),
        connected: connected.clone(),
        local,
        inbox: consensus.clone(),
    };
    let task = NetworkTask {
        swarm,
        peers: settings.peers,
        redial_interval: settings.redial_interval,
        consensus_topic,
        tx_topic,
        intake: GossipIntake {
            consensus: consensus.clone(),
            txs_tx,
            tx_bytes: Arc::new(tokio::sync::Semaphore::new(TX_GOSSIP_QUEUE_BYTES >> 10)),
            check: None,
            warnings: Default::default(),
        },
        sync_tx,
        sync_bulk_tx,
        connected,
        validator_index,
        observers: settings.observers.iter().copied().collect(),
        pending: HashMap::new(),
        places: Default::default(),
    };
    tokio::spawn(task.run(commands_rx));
    Ok(NetworkParts {
        handle,
        consensus,
        sync_requests,
        txs,
        listen_addr,
    })
}

struct NetworkTask {
    swarm: Swarm<Behaviour>,
    peers: Vec<Multiaddr>,
    redial_interval: Duration,
    consensus_topic: IdentTopic,
    tx_topic: IdentTopic,
    /// Checks and queues gossip and sync answers.
    intake: GossipIntake,
    /// Body and transaction fetches of peers, answered first.
    sync_tx: mpsc::Sender<SyncRequest>,
    /// Other sync requests (decisions, snapshot parts).
    sync_bulk_tx: mpsc::Sender<SyncRequest>,
    connected: Arc<RwLock<HashSet<PeerId>>>,
    validator_index: HashMap<PeerId, u32>,
    /// Non-validators allowed to connect (configured; never disconnected by a set change).
    observers: HashSet<PeerId>,
    /// Outbound sync requests and what they asked for.
    pending: HashMap<request_response::OutboundRequestId, Asked>,
    /// Places of each peer's sync requests queued and not answered yet.
    places: sync_places::SyncPlaces<PeerId, request_response::InboundRequestId>,
}

/// What becomes of a gossip message: passed on (and queued here), dropped quietly, or refused
/// (and its sender penalised).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Valid: queued here and forwarded.
    Accept,
    /// Not forwarded, not held against the sender (a stale message; a full queue; one kept
    /// for the driver before the node can check signatures).
    Ignore,
    /// Invalid: not queued, not forwarded.
    Refuse,
}

/// What makes two consensus messages copies of one another: the signed proposal or vote (as
/// decoded, so encoding tricks and unknown fields fall away) and, for a proposal with its
/// block, the block's header. An error if the unsigned part contradicts the signed one: a vote
/// with a block attached, a header that does not hash to the proposed block. (A proposal's
/// leaves are checked against the header's root by the driver; copies that differ only there
/// are one message here, the first one kept.)
pub fn copy_key(m: &ConsensusMessage) -> Result<[u8; 32], &'static str> {
    use quorate_proto::v1::consensus_message::Message;
    let mut h = blake3::Hasher::new();
    match (&m.message, &m.compact_block) {
        (None, _) => return Err("no proposal or vote"),
        (Some(Message::Vote(_)), Some(_)) => return Err("a vote with a block attached"),
        (Some(Message::Vote(v)), None) => {
            h.update(b"vote");
            h.update(&v.encode_to_vec());
        }
        (Some(Message::Proposal(p)), compact) => {
            h.update(b"proposal");
            h.update(&p.encode_to_vec());
            if let Some(c) = compact {
                if quorate_proto::Hash32::of(&c.header).0[..] != p.block_hash[..] {
                    return Err("a block header that does not hash to the proposed block");
                }
                h.update(&c.header);
            }
        }
    }
    Ok(*h.finalize().as_bytes())
}

/// The checks and queues gossip passes before it may be forwarded: consensus messages must come
/// over a validator's connection, stay within the byte bounds ([`wire`]), decode and (once the
/// node knows the sets) carry a good signature, and are queued under their signer; transaction
/// batches are bounded the same way and queued for admission within a byte budget.
pub struct GossipIntake {
    /// Consensus messages and sync answers, per sending validator.
    pub consensus: Arc<Inbox<ConsensusEvent>>,
    /// Gossiped transactions for admission.
    pub txs_tx: mpsc::Sender<GossipBatch>,
    /// The byte budget of gossiped transactions queued for admission, in KiB.
    pub tx_bytes: Arc<tokio::sync::Semaphore>,
    /// The signature check of consensus messages, once the node knows the validator sets.
    pub check: Option<SignatureCheck>,
    /// Warnings about what peers send, rate-limited.
    pub warnings: warnings::Warnings,
}

impl GossipIntake {
    /// A consensus message `data` received from `from` (validator `author`, if it is one).
    pub fn consensus(&self, author: Option<u32>, from: &PeerId, data: &[u8]) -> Verdict {
        crate::metrics::get().p2p("in", "consensus", data.len());
        let Some(from) = author else {
            if let Some(left_out) = self.warnings.allow("consensus_from_non_validator") {
                tracing::warn!(peer = %from, left_out, "consensus message from a non-validator refused");
            }
            return Verdict::Refuse;
        };
        if let Err(e) = wire::check_consensus_message(data) {
            if let Some(left_out) = self.warnings.allow("consensus_bound") {
                tracing::warn!(validator = from, error = %e, left_out, "consensus message refused before decoding");
            }
            crate::metrics::get().refused("gossip_undecodable_bound");
            return Verdict::Refuse;
        }
        match ConsensusMessage::decode(data) {
            Ok(m) => {
                // A copy of a message still waiting for the driver (re-published, or the same
                // signed message in other bytes or with another block attached) is of no use:
                // its signature is not checked again, and it is neither queued nor passed on,
                // so copies of a validator's genuine messages cannot push its others out of
                // its queue. What is not signed must match what is: a vote carries no block,
                // and a proposal's block header hashes to the block it names.
                let key = match copy_key(&m) {
                    Ok(key) => key,
                    Err(why) => {
                        if let Some(left_out) = self.warnings.allow("consensus_unsigned_part") {
                            tracing::warn!(
                                validator = from,
                                reason = why,
                                left_out,
                                "consensus message refused: its unsigned part does not match"
                            );
                        }
                        crate::metrics::get().refused("consensus_unsigned_part");
                        return Verdict::Refuse;
                    }
                };
                if self.consensus.is_copy(&key) {
                    return Verdict::Ignore;
                }
                // Queued under its signer once signatures are checked here; a forged one is
                // refused, so this node does not pass it on under its own name.
                let queue = match &self.check {
                    Some(check) => match check(&m) {
                        Ok(signer) => signer,
                        // Not a fault: an honest validator that is behind re-sends them.
                        Err(Unchecked::Stale) => return Verdict::Ignore,
                        Err(Unchecked::Invalid(why)) => {
                            if let Some(left_out) = self.warnings.allow("consensus_signature") {
                                tracing::warn!(peer = from, reason = %why, left_out, "consensus message with a bad signature refused");
                            }
                            crate::metrics::get().refused("consensus_bad_signature");
                            return Verdict::Refuse;
                        }
                    },
                    // Before the node knows the sets (a network started early for state
                    // sync) a message cannot be checked: kept for the driver, which checks
                    // every signature itself, but not passed on under this node's name.
                    None => {
                        // Unchecked, so kept without a key: what another sender queued under
                        // its own name must not make a genuine copy look like one.
                        self.push_unkeyed(from, m, data.len());
                        return Verdict::Ignore;
                    }
                };
                if self.push_consensus(queue, key, m, data.len()) {
                    Verdict::Accept
                } else {
                    Verdict::Ignore
                }
            }
            Err(e) => {
                if let Some(left_out) = self.warnings.allow("consensus_undecodable") {
                    tracing::warn!(validator = from, error = %e, left_out, "undecodable consensus message");
                }
                Verdict::Refuse
            }
        }
    }

    /// Queues a consensus message that could not be checked under its sender `queue`.
    fn push_unkeyed(&self, queue: u32, m: ConsensusMessage, bytes: usize) {
        let dropped =
            self.consensus
                .push(queue as usize, ConsensusEvent::Message(Box::new(m)), bytes);
        self.warn_dropped(queue, dropped);
    }

    /// Queues a consensus message with the copy key `key` under its signer `queue`; false if
    /// a copy of it is waiting.
    fn push_consensus(&self, queue: u32, key: [u8; 32], m: ConsensusMessage, bytes: usize) -> bool {
        let Some(dropped) = self.consensus.push_keyed(
            queue as usize,
            key,
            ConsensusEvent::Message(Box::new(m)),
            bytes,
        ) else {
            return false;
        };
        self.warn_dropped(queue, dropped);
        true
    }

    /// Warns (rate-limited) that `dropped` messages left `queue`'s full queue.
    fn warn_dropped(&self, queue: u32, dropped: usize) {
        if dropped > 0 {
            if let Some(left_out) = self.warnings.allow("consensus_queue") {
                tracing::warn!(
                    validator = queue,
                    dropped,
                    left_out,
                    "consensus queue of a validator full; dropping its oldest messages"
                );
            }
        }
    }

    /// A batch of transactions `data` received from `from`.
    pub fn transactions(&self, from: &PeerId, data: &[u8]) -> Verdict {
        crate::metrics::get().p2p("in", "transactions", data.len());
        if let Err(e) = wire::check_tx_gossip(data) {
            if let Some(left_out) = self.warnings.allow("transactions_bound") {
                tracing::warn!(peer = %from, error = %e, left_out, "transaction gossip refused before decoding");
            }
            crate::metrics::get().refused("gossip_undecodable_bound");
            return Verdict::Refuse;
        }
        let kib = (data.len() >> 10).max(1) as u32;
        let Ok(place) = self.tx_bytes.clone().try_acquire_many_owned(kib) else {
            if let Some(left_out) = self.warnings.allow("transactions_queue_bytes") {
                tracing::warn!(
                    left_out,
                    "transaction gossip queue full (bytes); dropping a batch"
                );
            }
            return Verdict::Ignore;
        };
        match TxGossip::decode(data) {
            Ok(g) => {
                let batch = GossipBatch {
                    transactions: g.transactions,
                    place: Some(place),
                };
                if self.txs_tx.try_send(batch).is_err() {
                    if let Some(left_out) = self.warnings.allow("transactions_queue") {
                        tracing::warn!(left_out, "transaction gossip queue full; dropping a batch");
                    }
                    return Verdict::Ignore;
                }
                Verdict::Accept
            }
            Err(e) => {
                if let Some(left_out) = self.warnings.allow("transactions_undecodable") {
                    tracing::warn!(peer = %from, error = %e, left_out, "undecodable transaction gossip");
                }
                Verdict::Refuse
            }
        }
    }

    /// A sync answer `response` to `asked`, queued under the validator asked; `None` when the
    /// request failed (timeout, refused, connection lost): the driver then stops waiting.
    pub(crate) fn answer(&self, asked: Asked, response: Option<DecisionResponse>) {
        let bytes = response.as_ref().map_or(0, |r| r.encoded_len());
        let (from, event) = match (asked, response) {
            (Asked::Decision { from, height }, Some(response)) => (
                from,
                ConsensusEvent::Decision {
                    from,
                    height,
                    response: Box::new(response),
                },
            ),
            (Asked::Decision { .. }, None) => return,
            (Asked::Body { from, hash }, response) => (
                from,
                ConsensusEvent::Body {
                    from,
                    hash,
                    block: response.and_then(|r| r.block).map(Box::new),
                },
            ),
            (Asked::Txs { from, hash }, response) => (
                from,
                ConsensusEvent::Txs {
                    from,
                    hash,
                    transactions: response.map(|r| r.transactions).unwrap_or_default(),
                },
            ),
            (
                Asked::Snapshot {
                    from,
                    height,
                    chunk,
                },
                response,
            ) => (
                from,
                ConsensusEvent::Snapshot {
                    from,
                    height,
                    chunk,
                    response: response.map(Box::new),
                },
            ),
        };
        self.consensus
            .push(ANSWER_QUEUES + from as usize, event, bytes);
    }
}

fn peer_of_addr(a: &Multiaddr) -> Option<PeerId> {
    a.iter().find_map(|p| match p {
        libp2p::multiaddr::Protocol::P2p(id) => Some(id),
        _ => None,
    })
}

impl NetworkTask {
    async fn run(mut self, mut commands: mpsc::Receiver<Command>) {
        let mut redial = tokio::time::interval(self.redial_interval);
        loop {
            tokio::select! {
                c = commands.recv() => match c {
                    Some(c) => self.command(c),
                    // Every handle dropped: the node is shutting down.
                    None => return,
                },
                e = self.swarm.select_next_some() => self.event(e),
                _ = redial.tick() => self.redial(),
            }
        }
    }

    fn redial(&mut self) {
        let connected = self.connected.read().clone();
        for addr in &self.peers {
            let Some(peer) = peer_of_addr(addr) else {
                continue;
            };
            if !connected.contains(&peer) && peer != *self.swarm.local_peer_id() {
                if let Err(e) = self.swarm.dial(addr.clone()) {
                    tracing::debug!(%addr, error = %e, "dial failed");
                }
            }
        }
    }

    fn command(&mut self, c: Command) {
        match c {
            Command::Publish { topic, data } => {
                let kind = if topic.hash() == self.consensus_topic.hash() {
                    "consensus"
                } else {
                    "transactions"
                };
                crate::metrics::get().p2p("out", kind, data.len());
                match self.swarm.behaviour_mut().gossip.publish(topic, data) {
                    Ok(_) => {}
                    // No peer yet, or the same bytes again: expected, and nothing is lost.
                    Err(
                        e @ (libp2p::gossipsub::PublishError::NoPeersSubscribedToTopic
                        | libp2p::gossipsub::PublishError::Duplicate),
                    ) => tracing::debug!(error = %e, kind, "gossip publish not sent"),
                    Err(e) => tracing::warn!(error = %e, kind, "gossip publish not sent"),
                }
            }
            Command::Request {
                peer,
                request,
                asked,
            } => {
                let id = self.swarm.behaviour_mut().sync.send_request(&peer, request);
                self.pending.insert(id, asked);
            }
            Command::SetValidators { members, retired } => self.set_validators(members, &retired),
            Command::SetSignatureCheck(check) => self.intake.check = Some(check),
            Command::Respond {
                id,
                channel,
                response,
            } => {
                self.places.answered(&id);
                crate::metrics::get().p2p("out", "sync", response.encoded_len());
                if self
                    .swarm
                    .behaviour_mut()
                    .sync
                    .send_response(channel, *response)
                    .is_err()
                {
                    tracing::debug!("sync response not sent: requester gone");
                }
            }
        }
    }

    fn set_validators(&mut self, members: Vec<PeerId>, retired: &[PeerId]) {
        let allowed = &mut self.swarm.behaviour_mut().allowed;
        for peer in &members {
            allowed.allow_peer(*peer);
        }
        // Validators that left, configured or not: their removal is known. A configured peer
        // never in a set this node knows stays: one restarted far behind knows only old sets,
        // and may reach today's validators only through its `p2p.peers` (issue 25, OPERATING
        // §6c).
        let left: Vec<PeerId> = self
            .validator_index
            .keys()
            .chain(retired)
            .filter(|p| !members.contains(p) && !self.observers.contains(p))
            .copied()
            .collect::<HashSet<_>>()
            .into_iter()
            .collect();
        let configured: HashSet<PeerId> = self.peers.iter().filter_map(peer_of_addr).collect();
        for peer in left {
            // Closes its connections and refuses new ones.
            allowed.disallow_peer(peer);
            if self.validator_index.contains_key(&peer) {
                tracing::info!(%peer, "validator left the set; its connections are closed");
            } else if configured.contains(&peer) {
                tracing::info!(
                    %peer,
                    "configured peer left the validator set (as this node knows it); it is \
                     refused: take it out of p2p.peers"
                );
            }
        }
        self.validator_index = members
            .into_iter()
            .enumerate()
            .map(|(i, p)| (p, i as u32))
            .collect();
    }

    /// Checks a gossip message before gossipsub may forward it ([`GossipIntake`]).
    fn validate(
        &mut self,
        from: PeerId,
        message: gossipsub::Message,
    ) -> gossipsub::MessageAcceptance {
        let author = self.validator_index.get(&from).copied();
        let verdict = if message.topic == self.consensus_topic.hash() {
            self.intake.consensus(author, &from, &message.data)
        } else if message.topic == self.tx_topic.hash() {
            self.intake.transactions(&from, &message.data)
        } else {
            Verdict::Ignore
        };
        match verdict {
            Verdict::Accept => gossipsub::MessageAcceptance::Accept,
            Verdict::Ignore => gossipsub::MessageAcceptance::Ignore,
            Verdict::Refuse => gossipsub::MessageAcceptance::Reject,
        }
    }

    fn event(&mut self, e: SwarmEvent<BehaviourEvent>) {
        match e {
            SwarmEvent::ConnectionEstablished { peer_id, .. }
                if self.connected.write().insert(peer_id) =>
            {
                tracing::info!(peer = %peer_id, "peer connected");
            }
            SwarmEvent::ConnectionClosed {
                peer_id,
                num_established: 0,
                ..
            } => {
                self.connected.write().remove(&peer_id);
                tracing::info!(peer = %peer_id, "peer disconnected");
            }
            SwarmEvent::IncomingConnectionError {
                error,
                send_back_addr,
                ..
            } => {
                tracing::debug!(from = %send_back_addr, %error, "incoming connection refused");
            }
            SwarmEvent::Behaviour(BehaviourEvent::Gossip(gossipsub::Event::Message {
                propagation_source,
                message_id,
                message,
            })) => {
                let verdict = self.validate(propagation_source, message);
                self.swarm
                    .behaviour_mut()
                    .gossip
                    .report_message_validation_result(&message_id, &propagation_source, verdict);
            }
            SwarmEvent::Behaviour(BehaviourEvent::Sync(request_response::Event::Message {
                peer,
                message,
                ..
            })) => match message {
                request_response::Message::Request {
                    request_id,
                    request,
                    channel,
                } => {
                    crate::metrics::get().p2p("in", "sync", request.encoded_len());
                    if !self.places.has_room(&peer) {
                        tracing::debug!(%peer, "too many sync requests from one peer; refusing");
                        crate::metrics::get().refused("sync_request_over_peer_limit");
                        return;
                    }
                    let request = SyncRequest {
                        peer,
                        id: request_id,
                        request,
                        channel,
                    };
                    let queue = if urgent(&request.request) {
                        &self.sync_tx
                    } else {
                        &self.sync_bulk_tx
                    };
                    match queue.try_send(request) {
                        Ok(()) => self.places.take(peer, request_id),
                        Err(_) => {
                            tracing::debug!(%peer, "sync queue full; refusing a request");
                            crate::metrics::get().refused("sync_queue_full");
                        }
                    }
                }
                request_response::Message::Response {
                    request_id,
                    response,
                } => {
                    let Some(asked) = self.pending.remove(&request_id) else {
                        return;
                    };
                    crate::metrics::get().p2p("in", "sync", response.encoded_len());
                    self.intake.answer(asked, Some(response));
                }
            },
            SwarmEvent::Behaviour(BehaviourEvent::Sync(
                request_response::Event::OutboundFailure {
                    request_id, error, ..
                },
            )) => {
                let asked = self.pending.remove(&request_id);
                tracing::debug!(?asked, %error, "sync request failed");
                // A compact proposal's transactions that will not come: the driver stops
                // waiting for them (the block gets a nil prevote). A body that will not come:
                // the driver asks the next validator. State sync asks another peer.
                if let Some(asked) = asked {
                    self.intake.answer(asked, None);
                }
            }
            SwarmEvent::Behaviour(BehaviourEvent::Sync(
                request_response::Event::InboundFailure {
                    peer, request_id, ..
                },
            )) => {
                // Refused, timed out or closed on the wire: a request that holds a place is
                // still queued and keeps it until the server answers it.
                self.places.failed(&peer, &request_id);
            }
            _ => {}
        }
    }
}
