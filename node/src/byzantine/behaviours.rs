//! What each Byzantine behaviour does (feature `byzantine`, and tests).

use std::sync::atomic::{AtomicU64, Ordering};

use bytes::Bytes;
use prost::Message as _;
use quorate_consensus::{BlockId, Signable, Signer, Vote};
use quorate_proto::merkle;
use quorate_proto::v1::{
    consensus_message, Block, BlockHeader, CommitCertificate, CommitSignature, CompactBlock,
    ConsensusMessage, Cosignature, DecisionRequest, DecisionResponse, Transaction,
};
use quorate_proto::{Hash32, Keypair};

use crate::chain::Chain;
use crate::driver::codec::{
    proposal_from_proto, proposal_to_proto, vote_from_proto, vote_to_proto,
};
use crate::driver::signing::ConsensusSigner;
use crate::storage::ExecutedBlock;

/// A year, ms.
const YEAR_MS: u64 = 365 * 24 * 3600 * 1000;
/// Bogus proposals sent with each message by [`Behaviour::Flood`].
const FLOOD_PER_MESSAGE: usize = 8;
/// Junk bytes in each flooded proposal's body.
const FLOOD_BODY_BYTES: usize = 128 * 1024;
/// Every this many messages, [`Behaviour::Flood`] also sends one larger than the others accept.
const FLOOD_OVERSIZED_EVERY: u64 = 32;
/// Size of that message (the default p2p limit is 24 MiB).
const FLOOD_OVERSIZED_BYTES: usize = 30 << 20;

/// A way of deviating from the protocol.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Behaviour {
    /// Appends an unknown protobuf field to the header bytes of the blocks it proposes (the
    /// block id is the hash of those bytes).
    ReencodeHeader,
    /// Sends each proposal first with a truncated body, then again with the right one.
    SplitBodies,
    /// Stamps the blocks it proposes a year ahead.
    FutureTime,
    /// Stamps the blocks it proposes before their parent.
    PastTime,
    /// Proposes two different valid blocks per round (and, with each, 40 proposals for the same
    /// round naming blocks nobody has) and signs two different votes per slot.
    Equivocate,
    /// Sends signed votes for absurd heights and rounds besides its real ones.
    AbsurdVotes,
    /// Answers sync requests with junk bodies, forged certificates, or nothing, and serves
    /// damaged snapshot chunks.
    JunkSync,
    /// Puts a transaction with a broken signature in every block it proposes.
    BadTxs,
    /// Sends bogus proposals with large junk bodies with every message, and now and then a
    /// message larger than the others accept.
    Flood,
    /// Sends nothing.
    Silent,
    /// Keeps the transactions clients submit to it to itself (does not gossip them), so the
    /// others must fetch them from its compact proposals, and answers one validator's body and
    /// transaction fetches with nothing (the first that asks for transactions): that validator
    /// must get the body of a block everyone else decides from someone else.
    Withhold,
    /// Like [`Behaviour::Withhold`], but answers that validator's transaction fetches with the
    /// same transactions re-signed by another key (same hash, another leaf).
    ResignFetched,
    /// Adds its own cosignature to another account's pending transaction in the blocks it
    /// proposes (a key that never authorised it), to void it with a failure receipt.
    VoidTxs,
    /// Once per height, signs proposals without a body for every round of the next height it
    /// would propose in (of the first 256), each naming a block nobody has, so that whoever
    /// takes them asks for bodies that never come.
    BodilessProposals,
    /// Sends, besides each of its votes, copies that fail the signature check: one claiming
    /// another validator (signed with its own key), one with a damaged signature. Honest
    /// validators must refuse them and never pass them on.
    ForgedVotes,
    /// Sends every other validator bursts of sync requests over the per-peer limit (decisions
    /// of old heights), to fill the sync queues it shares with honest peers' fetches.
    SyncFlood,
    /// Sends, every 200 ms, transaction gossip that decodes far beyond its size (30,000 empty
    /// transactions, `0a 00` pairs; or one transaction of signed size carrying 30,000 empty
    /// cosignatures), sends before each of its compact proposals a copy padded with 30,000
    /// empty leaves, answers decision requests with certificates padded with 30,000
    /// empty signature entries and transaction fetches with 30,000 empty transactions: honest
    /// validators must refuse each on its bytes, before decoding it.
    AmplifyingGossip,
    /// Publishes again, at once and several times, every consensus message it receives from
    /// another validator (genuinely signed by that validator), and once more with its unsigned
    /// part changed (a vote with a block attached, a proposal's block with a leaf more), to fill
    /// the queue honest nodes keep under that validator's name and push its other messages out.
    Republish,
    /// Offers forged snapshots to nodes joining by state sync: the first manifest asked for
    /// without its last validator set change; later ones with the system entry `validators`
    /// moved into an account keyed `yvalidators` (same accumulator: the chunk re-cut, the
    /// manifest's digest and size forged to match), serving that chunk.
    ForgedSnapshots,
}

/// Bodiless proposals [`Behaviour::Equivocate`] signs besides each of its compact proposals
/// (more than the driver remembers of one proposer's blocks at a height).
const EQUIVOCATE_BODILESS: usize = 40;

/// Copies [`Behaviour::Republish`] publishes of each message it receives.
const REPUBLISH_COPIES: usize = 4;

/// Requests of each [`Behaviour::SyncFlood`] burst, per validator (over the per-peer limit).
const SYNC_FLOOD_BURST: u64 = 12;
/// Time between two bursts.
const SYNC_FLOOD_EVERY: std::time::Duration = std::time::Duration::from_millis(200);

/// Time between two of [`Behaviour::AmplifyingGossip`]'s messages.
const AMPLIFY_EVERY: std::time::Duration = std::time::Duration::from_millis(200);
/// Empty entries in each of its messages and answers (two bytes each on the wire).
const AMPLIFY_ENTRIES: usize = 30_000;

/// Tasks a Byzantine validator runs besides its node's own.
pub fn side_tasks(
    state: &std::sync::Arc<State>,
    network: &crate::network::NetworkHandle,
    validators: u32,
    me: u32,
) -> Vec<tokio::task::JoinHandle<()>> {
    let (state, network) = (state.clone(), network.clone());
    match state.behaviour {
        Behaviour::SyncFlood => vec![tokio::spawn(sync_flood(state, network, validators, me))],
        Behaviour::AmplifyingGossip => vec![tokio::spawn(amplifying_gossip(state, network))],
        _ => Vec::new(),
    }
}

/// [`Behaviour::AmplifyingGossip`]'s gossip: empty transactions, then one transaction of
/// signed size with empty cosignatures, in turn.
async fn amplifying_gossip(state: std::sync::Arc<State>, network: crate::network::NetworkHandle) {
    let mut tick = tokio::time::interval(AMPLIFY_EVERY);
    for n in 0u64.. {
        tick.tick().await;
        let transactions = if n.is_multiple_of(2) {
            state.act("gossiped empty transactions");
            vec![Transaction::default(); AMPLIFY_ENTRIES]
        } else {
            state.act("gossiped a transaction of empty cosignatures");
            vec![Transaction {
                body: Bytes::from(junk(&state.counter, 64)),
                public_key: Bytes::from(junk(&state.counter, 32)),
                signature: Bytes::from(junk(&state.counter, 64)),
                cosignatures: vec![Cosignature::default(); AMPLIFY_ENTRIES],
            }]
        };
        network.publish_txs(transactions);
    }
}

/// [`Behaviour::SyncFlood`]'s bursts.
async fn sync_flood(
    state: std::sync::Arc<State>,
    network: crate::network::NetworkHandle,
    validators: u32,
    me: u32,
) {
    let mut tick = tokio::time::interval(SYNC_FLOOD_EVERY);
    loop {
        tick.tick().await;
        for v in (0..validators).filter(|v| *v != me) {
            for height in 1..=SYNC_FLOOD_BURST {
                network.request_decision(v, height);
            }
        }
        state.act("sent a burst of sync requests over the per-peer limit");
    }
}

/// Rounds of the next height [`Behaviour::BodilessProposals`] covers.
const BODILESS_ROUNDS: u32 = 256;

/// A behaviour and its counter (so that answers vary).
#[derive(Debug)]
pub struct State {
    pub behaviour: Behaviour,
    counter: AtomicU64,
    /// How many times the behaviour changed what this node did (logged, for the tests to see
    /// that it acted).
    acted: AtomicU64,
    /// The validator whose fetches are withheld or answered with re-signed copies.
    victim: std::sync::Mutex<Option<libp2p::PeerId>>,
    /// The last height [`Behaviour::BodilessProposals`] covered.
    covered: AtomicU64,
    /// Manifests [`Behaviour::ForgedSnapshots`] answered so far.
    manifests: AtomicU64,
    /// The chunks it forged: (height, index) → bytes.
    forged_chunks: std::sync::Mutex<std::collections::HashMap<(u64, u32), Bytes>>,
}

fn next_u64(counter: &AtomicU64) -> u64 {
    let n = counter.fetch_add(1, Ordering::Relaxed);
    // splitmix64: junk that differs each time, without a random number generator.
    let mut z = n.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

fn junk(counter: &AtomicU64, len: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        out.extend_from_slice(&next_u64(counter).to_le_bytes());
    }
    out.truncate(len);
    out
}

/// `block` with its header replaced by `header_bytes` (its id becomes their hash).
fn with_header_bytes(mut block: ExecutedBlock, header_bytes: Vec<u8>) -> ExecutedBlock {
    block.header_bytes = Bytes::from(header_bytes);
    block.hash = Hash32::of(&block.header_bytes);
    block
}

/// `block` with `header` re-encoded canonically.
fn with_header(mut block: ExecutedBlock, header: BlockHeader) -> ExecutedBlock {
    let bytes = header.encode_to_vec();
    block.header = header;
    with_header_bytes(block, bytes)
}

impl State {
    pub fn new(behaviour: Behaviour) -> Self {
        Self {
            behaviour,
            counter: AtomicU64::new(1),
            acted: AtomicU64::new(0),
            victim: std::sync::Mutex::new(None),
            covered: AtomicU64::new(0),
            manifests: AtomicU64::new(0),
            forged_chunks: Default::default(),
        }
    }

    /// What this validator publishes on receiving another validator's consensus message `m`.
    pub fn received(&self, m: &ConsensusMessage) -> Vec<ConsensusMessage> {
        if self.behaviour != Behaviour::Republish {
            return Vec::new();
        }
        self.act("republished another validator's message");
        let mut out = vec![m.clone(); REPUBLISH_COPIES];
        // And one with its unsigned part changed: a vote with a block attached, a proposal's
        // block with one more leaf (same signature, other bytes).
        let mut variant = m.clone();
        match (&m.message, &mut variant.compact_block) {
            (Some(consensus_message::Message::Vote(_)), block) => {
                *block = Some(CompactBlock::default());
            }
            (Some(consensus_message::Message::Proposal(_)), Some(block)) => {
                block.tx_hashes.push(Bytes::from(junk(&self.counter, 32)));
            }
            _ => return out,
        }
        out.push(variant);
        out
    }

    /// How many times the behaviour acted so far.
    pub fn acted(&self) -> u64 {
        self.acted.load(Ordering::Relaxed)
    }

    /// Notes that the behaviour acted: the first time and every 50th, a log line the tests
    /// read (`byzantine act`).
    pub fn act(&self, what: &str) {
        let n = self.acted.fetch_add(1, Ordering::Relaxed) + 1;
        if n == 1 || n.is_multiple_of(50) {
            tracing::info!(behaviour = ?self.behaviour, acted = n, what, "byzantine act");
        }
    }

    /// False if the transactions clients submit are kept from the other validators.
    pub fn gossips_client_txs(&self) -> bool {
        !matches!(
            self.behaviour,
            Behaviour::Withhold | Behaviour::ResignFetched
        )
    }

    /// True if `peer` is the validator this node lies to (chosen as the first to ask for the
    /// transactions of a compact proposal).
    fn is_victim(&self, peer: &libp2p::PeerId, request: &DecisionRequest) -> bool {
        let mut victim = self.victim.lock().unwrap_or_else(|e| e.into_inner());
        if victim.is_none() && !request.tx_hashes.is_empty() {
            tracing::info!(%peer, "byzantine: lying to this validator's fetches");
            *victim = Some(*peer);
        }
        *victim == Some(*peer)
    }

    pub fn block_time(&self, now_ms: u64) -> u64 {
        match self.behaviour {
            Behaviour::FutureTime => {
                self.act("stamped a block a year ahead");
                now_ms + YEAR_MS
            }
            _ => now_ms,
        }
    }

    pub fn built(
        &self,
        block: ExecutedBlock,
        parent: Option<&std::sync::Arc<ExecutedBlock>>,
        chain: &Chain,
        key: &Keypair,
    ) -> ExecutedBlock {
        if matches!(
            self.behaviour,
            Behaviour::ReencodeHeader | Behaviour::PastTime | Behaviour::BadTxs
        ) {
            self.act("changed a block it built");
        }
        match self.behaviour {
            Behaviour::ReencodeHeader => {
                let mut bytes = block.header_bytes.to_vec();
                // Field 20, varint 0: unknown to `BlockHeader`, skipped by every decoder.
                bytes.extend_from_slice(&[0xa0, 0x01, 0x00]);
                with_header_bytes(block, bytes)
            }
            Behaviour::PastTime => {
                let parent = chain.head().time_ms;
                let header = BlockHeader {
                    time_ms: parent.saturating_sub(60_000),
                    ..block.header.clone()
                };
                with_header(block, header)
            }
            Behaviour::BadTxs => {
                let info = chain.info();
                let mut tx = quorate_proto::tx::sign(
                    &quorate_proto::tx::transfer_body(
                        &info.chain_id,
                        key,
                        next_u64(&self.counter),
                        info.params.transfer_fuel,
                        key.address(),
                        1,
                        Vec::new(),
                    ),
                    key,
                );
                let mut sig = tx.signature.to_vec();
                sig[0] ^= 0x55;
                tx.signature = Bytes::from(sig);
                let forged = crate::verified_tx::forge_verified(tx, &info.chain_id, &info.params);
                let mut block = block;
                if let Some(v) = forged {
                    block.txs.push(std::sync::Arc::new(v));
                }
                let hashes: Vec<Hash32> = block.txs.iter().map(|t| t.leaf).collect();
                let header = BlockHeader {
                    tx_root: Bytes::copy_from_slice(&merkle::root(&hashes).0),
                    tx_count: block.txs.len() as u32,
                    ..block.header.clone()
                };
                with_header(block, header)
            }
            Behaviour::VoidTxs => self.void_one(block, parent, chain, key),
            _ => block,
        }
    }

    /// [`Behaviour::VoidTxs`]: the first transaction of another account gets this validator's
    /// cosignature. The block is built again with the copy; if this node's own rules drop it
    /// (they make such a block invalid), the copy goes in anyway with the root recomputed, so
    /// that the others must refuse it.
    fn void_one(
        &self,
        block: ExecutedBlock,
        parent: Option<&std::sync::Arc<ExecutedBlock>>,
        chain: &Chain,
        key: &Keypair,
    ) -> ExecutedBlock {
        let info = chain.info();
        let Some(i) = block.txs.iter().position(|t| t.signer != key.address()) else {
            return block;
        };
        let mut tx = block.txs[i].tx.clone();
        if !quorate_proto::tx::cosign(&mut tx, key) {
            return block;
        }
        let Some(forged) = crate::verified_tx::forge_verified(tx, &info.chain_id, &info.params)
        else {
            return block;
        };
        self.act("cosigned another account's pending transaction");
        let mut txs = block.txs.clone();
        txs[i] = std::sync::Arc::new(forged);
        let proposer: [u8; 32] = key.public().0;
        match chain.propose_on(parent, txs.clone(), proposer, block.header.time_ms) {
            Ok((rebuilt, dropped)) if dropped.is_empty() => rebuilt,
            _ => {
                let leaves: Vec<Hash32> = txs.iter().map(|t| t.leaf).collect();
                let header = BlockHeader {
                    tx_root: Bytes::copy_from_slice(&merkle::root(&leaves).0),
                    ..block.header.clone()
                };
                let mut block = block;
                block.txs = txs;
                with_header(block, header)
            }
        }
    }

    /// [`Behaviour::BodilessProposals`] for the height after the vote `msg`, once per height.
    fn bodiless_proposals(
        &self,
        msg: &ConsensusMessage,
        signer: &ConsensusSigner,
        chain: &Chain,
    ) -> Vec<ConsensusMessage> {
        let Some(consensus_message::Message::Vote(v)) = &msg.message else {
            return Vec::new();
        };
        let Ok(sv) = vote_from_proto(v) else {
            return Vec::new();
        };
        let (next, me) = (sv.vote.height + 1, sv.vote.validator);
        if self.covered.fetch_max(next, Ordering::Relaxed) >= next {
            return Vec::new();
        }
        let n = chain.sets().at(next).set.len().max(1) as u64;
        self.act("signed proposals without a body for the next height");
        (0..BODILESS_ROUNDS)
            .filter(|r| (next + u64::from(*r)) % n == u64::from(me))
            .map(|round| {
                self.bodiless(
                    quorate_consensus::Proposal {
                        height: next,
                        round,
                        block: BlockId([0; 32]),
                        pol_round: None,
                        proposer: me,
                    },
                    signer,
                )
            })
            .collect()
    }

    /// `proposal` naming a block nobody has (junk), signed, without a body.
    fn bodiless(
        &self,
        proposal: quorate_consensus::Proposal,
        signer: &ConsensusSigner,
    ) -> ConsensusMessage {
        let proposal = quorate_consensus::Proposal {
            block: BlockId(
                junk(&self.counter, 32)
                    .try_into()
                    .expect("32 bytes of junk"),
            ),
            ..proposal
        };
        let signature = signer.sign(Signable::Proposal(&proposal));
        ConsensusMessage {
            message: Some(consensus_message::Message::Proposal(proposal_to_proto(
                &quorate_consensus::SignedProposal {
                    proposal,
                    signature,
                },
            ))),
            compact_block: None,
        }
    }

    /// [`Behaviour::Equivocate`]'s further proposals: with each compact proposal it sends,
    /// [`EQUIVOCATE_BODILESS`] more for the same height and round, each naming a block nobody
    /// has (every one admissible: signed by the round's proposer).
    fn bodiless_equivocations(
        &self,
        msg: &ConsensusMessage,
        signer: &ConsensusSigner,
    ) -> Vec<ConsensusMessage> {
        let Some(consensus_message::Message::Proposal(p)) = &msg.message else {
            return Vec::new();
        };
        if msg.compact_block.is_none() {
            return Vec::new();
        }
        let Ok(sp) = proposal_from_proto(p) else {
            return Vec::new();
        };
        (0..EQUIVOCATE_BODILESS)
            .map(|_| self.bodiless(sp.proposal, signer))
            .collect()
    }

    pub fn outgoing(
        &self,
        msg: ConsensusMessage,
        key: &Keypair,
        chain: &Chain,
    ) -> Vec<ConsensusMessage> {
        let signer = ConsensusSigner {
            chain_id: chain.info().chain_id.clone(),
            key: key.clone(),
        };
        match (self.behaviour, &msg.message) {
            (Behaviour::SplitBodies, _) if msg.compact_block.is_none() => {}
            (Behaviour::AmplifyingGossip, _) if msg.compact_block.is_some() => {
                self.act("sent a compact proposal padded with empty leaves")
            }
            (Behaviour::Equivocate | Behaviour::AbsurdVotes, Some(_))
            | (Behaviour::ForgedVotes, Some(consensus_message::Message::Vote(_)))
            | (Behaviour::Silent | Behaviour::SplitBodies | Behaviour::Flood, _) => {
                self.act("changed an outgoing consensus message")
            }
            _ => {}
        }
        match self.behaviour {
            Behaviour::Silent => Vec::new(),
            Behaviour::SplitBodies => match &msg.compact_block {
                Some(body) => {
                    let mut truncated = body.clone();
                    if truncated.tx_hashes.pop().is_none() {
                        truncated
                            .tx_hashes
                            .push(Bytes::from(junk(&self.counter, 32)));
                    }
                    let bad = ConsensusMessage {
                        compact_block: Some(truncated),
                        ..msg.clone()
                    };
                    vec![bad, msg]
                }
                None => vec![msg],
            },
            Behaviour::AmplifyingGossip => match &msg.compact_block {
                // The leaves are not signed: the padded copy carries the proposal's own
                // signature, and decodes each two-byte empty leaf to a whole `Bytes`.
                Some(body) => {
                    let mut padded = body.clone();
                    padded
                        .tx_hashes
                        .extend(std::iter::repeat_n(Bytes::new(), AMPLIFY_ENTRIES));
                    let padded = ConsensusMessage {
                        compact_block: Some(padded),
                        ..msg.clone()
                    };
                    vec![padded, msg]
                }
                None => vec![msg],
            },
            Behaviour::BodilessProposals => {
                let extra = self.bodiless_proposals(&msg, &signer, chain);
                let mut out = vec![msg];
                out.extend(extra);
                out
            }
            Behaviour::Equivocate => {
                let alt = self.equivocation(&msg, &signer);
                let extra = self.bodiless_equivocations(&msg, &signer);
                let mut out = vec![msg];
                out.extend(alt);
                out.extend(extra);
                out
            }
            Behaviour::AbsurdVotes => {
                let mut out = vec![msg.clone()];
                if let Some(consensus_message::Message::Vote(v)) = &msg.message {
                    if let Ok(sv) = vote_from_proto(v) {
                        let (h, r) = (sv.vote.height, sv.vote.round);
                        for (height, round) in [
                            (u64::MAX, u32::MAX),
                            (u64::MAX, r),
                            (h.saturating_add(1_000_000), 0),
                            (h, u32::MAX),
                            (h, r.saturating_add(1_000)),
                        ] {
                            let vote = Vote {
                                height,
                                round,
                                ..sv.vote
                            };
                            let signature = signer.sign(Signable::Vote(&vote));
                            out.push(ConsensusMessage {
                                message: Some(consensus_message::Message::Vote(vote_to_proto(
                                    &quorate_consensus::SignedVote { vote, signature },
                                ))),
                                compact_block: None,
                            });
                        }
                    }
                }
                out
            }
            Behaviour::ForgedVotes => {
                let mut out = vec![msg.clone()];
                if let Some(consensus_message::Message::Vote(v)) = &msg.message {
                    if let Ok(sv) = vote_from_proto(v) {
                        let n = chain.sets().at(sv.vote.height).set.len().max(2) as u32;
                        let claimed = Vote {
                            validator: (sv.vote.validator + 1) % n,
                            ..sv.vote
                        };
                        let mut damaged = sv.signature.clone();
                        if let Some(b) = damaged.0.first_mut() {
                            *b ^= 1;
                        }
                        for forged in [
                            quorate_consensus::SignedVote {
                                vote: claimed,
                                signature: signer.sign(Signable::Vote(&claimed)),
                            },
                            quorate_consensus::SignedVote {
                                vote: sv.vote,
                                signature: damaged,
                            },
                        ] {
                            out.push(ConsensusMessage {
                                message: Some(consensus_message::Message::Vote(vote_to_proto(
                                    &forged,
                                ))),
                                compact_block: None,
                            });
                        }
                    }
                }
                out
            }
            Behaviour::Flood => {
                let mut out = vec![msg.clone()];
                if next_u64(&self.counter).is_multiple_of(FLOOD_OVERSIZED_EVERY) {
                    out.push(ConsensusMessage {
                        message: msg.message.clone(),
                        compact_block: Some(CompactBlock {
                            header: Bytes::from(vec![0u8; FLOOD_OVERSIZED_BYTES]),
                            tx_hashes: Vec::new(),
                        }),
                    });
                }
                let height = match &msg.message {
                    Some(consensus_message::Message::Vote(v)) => v.height,
                    Some(consensus_message::Message::Proposal(p)) => p.height,
                    None => 1,
                };
                for _ in 0..FLOOD_PER_MESSAGE {
                    let header = Bytes::from(junk(&self.counter, 200));
                    let bogus = quorate_proto::v1::ConsensusProposal {
                        height,
                        round: (next_u64(&self.counter) % 3) as u32,
                        block_hash: Bytes::copy_from_slice(&Hash32::of(&header).0),
                        pol_round: None,
                        proposer: (next_u64(&self.counter) % 8) as u32,
                        signature: Bytes::from(junk(&self.counter, 64)),
                    };
                    out.push(ConsensusMessage {
                        message: Some(consensus_message::Message::Proposal(bogus)),
                        compact_block: Some(CompactBlock {
                            header,
                            tx_hashes: (0..FLOOD_BODY_BYTES / 32)
                                .map(|_| Bytes::from(junk(&self.counter, 32)))
                                .collect(),
                        }),
                    });
                }
                out
            }
            _ => vec![msg],
        }
    }

    /// A second, conflicting signed message for `msg`: a proposal of the same block stamped
    /// one millisecond later (a different, equally valid block), or a vote for the other
    /// choice (nil for a block, the last proposed block for nil).
    fn equivocation(
        &self,
        msg: &ConsensusMessage,
        signer: &ConsensusSigner,
    ) -> Option<ConsensusMessage> {
        match &msg.message {
            Some(consensus_message::Message::Proposal(p)) => {
                let body = msg.compact_block.as_ref()?;
                let header = BlockHeader::decode(body.header.clone()).ok()?;
                let alt_header = BlockHeader {
                    time_ms: header.time_ms + 1,
                    ..header
                }
                .encode_to_vec();
                let alt_id = BlockId(Hash32::of(&alt_header).0);
                let mut sp = proposal_from_proto(p).ok()?;
                sp.proposal.block = alt_id;
                sp.signature = signer.sign(Signable::Proposal(&sp.proposal));
                Some(ConsensusMessage {
                    message: Some(consensus_message::Message::Proposal(proposal_to_proto(&sp))),
                    compact_block: Some(CompactBlock {
                        header: Bytes::from(alt_header),
                        tx_hashes: body.tx_hashes.clone(),
                    }),
                })
            }
            Some(consensus_message::Message::Vote(v)) => {
                let sv = vote_from_proto(v).ok()?;
                let block = match sv.vote.block {
                    Some(_) => None,
                    None => Some(BlockId(
                        Hash32::of(&next_u64(&self.counter).to_le_bytes()).0,
                    )),
                };
                let vote = Vote { block, ..sv.vote };
                let signature = signer.sign(Signable::Vote(&vote));
                Some(ConsensusMessage {
                    message: Some(consensus_message::Message::Vote(vote_to_proto(
                        &quorate_consensus::SignedVote { vote, signature },
                    ))),
                    compact_block: None,
                })
            }
            None => None,
        }
    }

    /// [`Behaviour::ForgedSnapshots`]' answer to a snapshot request (others honestly).
    fn forged_snapshot(
        &self,
        request: &DecisionRequest,
        honest: DecisionResponse,
        snapshots: Option<&crate::snapshot::SnapshotStore>,
    ) -> DecisionResponse {
        let Some(asked) = &request.snapshot else {
            return honest;
        };
        let read_chunk = |height: u64, index: u32| snapshots?.chunk(height, index).ok();
        if let Some(index) = asked.chunk {
            let forged = self
                .forged_chunks
                .lock()
                .expect("lock")
                .get(&(asked.height, index))
                .cloned();
            return match forged {
                Some(chunk) => {
                    self.act("served a chunk with an entry moved to another kind");
                    DecisionResponse {
                        snapshot_chunk: chunk,
                        ..DecisionResponse::default()
                    }
                }
                None => honest,
            };
        }
        let Some(mut manifest) = honest.snapshot_manifest else {
            return honest;
        };
        if self.manifests.fetch_add(1, Ordering::Relaxed) == 0 {
            // Its snapshot of the height just before the last set change came into force: its
            // certificate is of the set before the change, so the change's absence passes every
            // check but the one of the header's next set (issue 25).
            let before_change = snapshots.and_then(|s| {
                s.heights().ok()?.into_iter().rev().find_map(|h| {
                    let m = s.manifest(h).ok()?;
                    (m.set_changes.last()?.height == h + 1).then_some(m)
                })
            });
            if let Some(mut m) = before_change {
                m.set_changes.pop();
                self.act("offered a manifest without its last set change");
                return DecisionResponse {
                    snapshot_manifest: Some(m),
                    ..DecisionResponse::default()
                };
            }
        }
        use quorate_proto::v1::{SnapshotChunk, StateKind};
        let moved = (0..manifest.chunks.len() as u32).find_map(|i| {
            let mut chunk =
                SnapshotChunk::decode(read_chunk(manifest.height, i)?.as_slice()).ok()?;
            let entry = chunk
                .entries
                .iter_mut()
                .find(|e| e.kind() == StateKind::System && e.key.as_ref() == b"validators")?;
            entry.kind = StateKind::Account as i32;
            entry.key = Bytes::from_static(b"yvalidators");
            chunk
                .entries
                .sort_by(|a, b| (a.kind, &a.key).cmp(&(b.kind, &b.key)));
            Some((i, Bytes::from(chunk.encode_to_vec())))
        });
        if let Some((i, bytes)) = moved {
            let info = &mut manifest.chunks[i as usize];
            info.digest = Bytes::copy_from_slice(&Hash32::of(&bytes).0);
            info.size = bytes.len() as u64;
            self.forged_chunks
                .lock()
                .expect("lock")
                .insert((manifest.height, i), bytes);
            self.act("offered a snapshot with an entry moved to another kind");
        }
        DecisionResponse {
            snapshot_manifest: Some(manifest),
            ..DecisionResponse::default()
        }
    }

    pub fn sync_answer(
        &self,
        peer: &libp2p::PeerId,
        request: &DecisionRequest,
        honest: DecisionResponse,
        snapshots: Option<&crate::snapshot::SnapshotStore>,
    ) -> DecisionResponse {
        let fetch = !request.block_hash.is_empty();
        match self.behaviour {
            Behaviour::ForgedSnapshots => return self.forged_snapshot(request, honest, snapshots),
            Behaviour::Withhold if fetch && self.is_victim(peer, request) => {
                self.act("withheld a body or transactions");
                return DecisionResponse::default();
            }
            Behaviour::ResignFetched
                if !request.tx_hashes.is_empty() && self.is_victim(peer, request) =>
            {
                let other = Keypair::from_secret(&[0x5a; 32]);
                let transactions = honest
                    .transactions
                    .into_iter()
                    .map(|tx| {
                        let hash = quorate_proto::tx::tx_hash(&tx.body);
                        let signature = other.sign(&quorate_proto::tx::signing_message(&hash));
                        Transaction {
                            public_key: Bytes::copy_from_slice(&other.public().0),
                            signature: Bytes::copy_from_slice(&signature),
                            ..tx
                        }
                    })
                    .collect();
                self.act("answered a fetch with re-signed transactions");
                return DecisionResponse {
                    transactions,
                    ..DecisionResponse::default()
                };
            }
            Behaviour::AmplifyingGossip => return self.amplified(request, honest),
            Behaviour::JunkSync => {}
            _ => return honest,
        }
        self.act("junk sync answer");
        let pick = next_u64(&self.counter) % 4;
        // A snapshot's manifest honestly, so that it is asked for chunks; a chunk with one
        // byte changed, or cut short.
        if request.snapshot.as_ref().is_some_and(|s| s.chunk.is_none()) {
            return honest;
        }
        if !honest.snapshot_chunk.is_empty() {
            let mut chunk = honest.snapshot_chunk.to_vec();
            if pick.is_multiple_of(2) {
                let mid = chunk.len() / 2;
                chunk[mid] ^= 0x5a;
            } else {
                chunk.truncate(chunk.len() / 2);
            }
            return DecisionResponse {
                snapshot_chunk: Bytes::from(chunk),
                ..DecisionResponse::default()
            };
        }
        // Transactions of a compact proposal: one short, or one replaced by junk.
        if !honest.transactions.is_empty() {
            let mut transactions = honest.transactions;
            if pick.is_multiple_of(2) {
                transactions.pop();
            } else {
                transactions[0] = Transaction {
                    body: Bytes::from(junk(&self.counter, 40)),
                    ..Transaction::default()
                };
            }
            return DecisionResponse {
                transactions,
                ..DecisionResponse::default()
            };
        }
        match (pick, honest.block, honest.certificate) {
            // A body whose header is junk, with the real certificate.
            (0, Some(_), cert) => DecisionResponse {
                block: Some(Block {
                    header: Bytes::from(junk(&self.counter, 180)),
                    transactions: Vec::new(),
                }),
                certificate: cert,
                ..DecisionResponse::default()
            },
            // The real body under a forged certificate.
            (1, block, _) => DecisionResponse {
                block,
                certificate: Some(CommitCertificate {
                    height: request.height,
                    round: 0,
                    block_hash: Bytes::from(junk(&self.counter, 32)),
                    signatures: (0..4)
                        .map(|i| CommitSignature {
                            validator_index: i,
                            signature: Bytes::from(junk(&self.counter, 64)),
                        })
                        .collect(),
                }),
                ..DecisionResponse::default()
            },
            // The real certificate with a body missing its last transaction.
            (2, Some(mut b), cert) => {
                b.transactions.pop();
                b.transactions.push(Transaction {
                    body: Bytes::from(junk(&self.counter, 40)),
                    ..Transaction::default()
                });
                DecisionResponse {
                    block: Some(b),
                    certificate: cert,
                    ..DecisionResponse::default()
                }
            }
            // Nothing, as if it held nothing.
            _ => DecisionResponse::default(),
        }
    }

    /// [`Behaviour::AmplifyingGossip`]'s answers: a decision's certificate padded with empty
    /// signature entries, fetched transactions followed by empty ones.
    fn amplified(&self, request: &DecisionRequest, honest: DecisionResponse) -> DecisionResponse {
        if !request.tx_hashes.is_empty() {
            self.act("answered a fetch with empty transactions");
            let mut transactions = honest.transactions;
            transactions.extend(std::iter::repeat_n(Transaction::default(), AMPLIFY_ENTRIES));
            return DecisionResponse {
                transactions,
                ..DecisionResponse::default()
            };
        }
        match honest.certificate {
            Some(mut cert) if request.block_hash.is_empty() => {
                self.act("answered a decision with empty certificate entries");
                cert.signatures.extend(std::iter::repeat_n(
                    CommitSignature::default(),
                    AMPLIFY_ENTRIES,
                ));
                DecisionResponse {
                    certificate: Some(cert),
                    ..honest
                }
            }
            certificate => DecisionResponse {
                certificate,
                ..honest
            },
        }
    }
}
