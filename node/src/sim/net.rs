//! The simulated network: what each validator's [`NetworkHandle`](crate::network::NetworkHandle)
//! asks for goes through links that delay, drop, duplicate, reorder and partition, and arrives
//! through the same checks and queues as on libp2p ([`GossipIntake`](crate::network::GossipIntake),
//! the per-peer sync limit, the two sync queues, the answer's byte bounds). Gossip is forwarded
//! by whoever accepts it; copies of one publication are recognised for a minute, as gossipsub
//! recognises a message by its author and sequence number (a re-sent vote is a new message);
//! a sync request not answered within the request timeout fails, whatever became of it.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use libp2p::PeerId;
use prost::Message;
use quorate_proto::v1::{DecisionRequest, DecisionResponse};
use rand::Rng;
use rand_chacha::ChaCha8Rng;
use tokio::sync::mpsc;
use tokio::time::Instant;

use super::checks::Violation;
use super::{World, VALIDATORS};
use crate::network::{Asked, Command, Verdict, SYNC_REQUESTS_PER_PEER};

/// How long a request may wait for its answer (as libp2p's request-response is configured).
const REQUEST_TIMEOUT: Duration = crate::network::SYNC_REQUEST_TIMEOUT;
/// How long a gossip message is remembered (gossipsub's duplicate cache).
const SEEN_TTL: Duration = Duration::from_secs(60);
/// Largest sync answer (the default `p2p.max_message_bytes`).
const MAX_MESSAGE_BYTES: usize = 24 << 20;

/// How links behave during the storm.
#[derive(Clone, Debug)]
pub struct Faults {
    /// Base one-way latency of a link, drawn per link from this range, ms.
    pub latency_ms: (u64, u64),
    /// Extra latency drawn per message (reorders messages), ms.
    pub jitter_ms: u64,
    /// Chance a message is lost.
    pub drop: f64,
    /// Chance a message is delivered twice (the copy up to 90 s later).
    pub duplicate: f64,
}

impl Faults {
    /// A healthy network: 1-5 ms links.
    pub fn none() -> Self {
        Self {
            latency_ms: (1, 5),
            jitter_ms: 1,
            drop: 0.0,
            duplicate: 0.0,
        }
    }

    /// A faulty network drawn from `rng`.
    pub fn draw(rng: &mut ChaCha8Rng) -> Self {
        let low = rng.gen_range(1..=20);
        Self {
            latency_ms: (low, low + rng.gen_range(0..=80)),
            jitter_ms: rng.gen_range(0..=100),
            drop: rng.gen_range(0.0..0.08),
            duplicate: rng.gen_range(0.0..0.05),
        }
    }
}

/// Which topic a gossip message came on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Topic {
    Consensus,
    Transactions,
}

/// A peer's sync request as the simulated network hands it to a validator's sync server.
pub(crate) struct SimRequest {
    /// The asking validator.
    pub from: usize,
    /// Its incarnation when it asked (an answer to a crashed incarnation is lost).
    pub incarnation: u64,
    /// Its id (unique in the run).
    id: u64,
    peer: PeerId,
    request: DecisionRequest,
    asked: Asked,
    /// Set once the asker has its answer or its failure (whichever comes first).
    settled: Arc<std::sync::atomic::AtomicBool>,
}

impl SimRequest {
    /// What the asker is told when the request fails; shares `settled` with the request.
    fn failure(&self) -> Settle {
        Settle {
            from: self.from,
            incarnation: self.incarnation,
            asked: self.asked,
            settled: self.settled.clone(),
        }
    }
}

/// The asker's end of a request: told once, of an answer or a failure.
struct Settle {
    from: usize,
    incarnation: u64,
    asked: Asked,
    settled: Arc<std::sync::atomic::AtomicBool>,
}

impl crate::sync_server::PeerRequest for SimRequest {
    fn peer(&self) -> &PeerId {
        &self.peer
    }
    fn request(&self) -> &DecisionRequest {
        &self.request
    }
}

/// The network's state: links, cuts, counters.
pub(crate) struct Net {
    faults: Faults,
    state: parking_lot::Mutex<State>,
}

struct State {
    /// Base latency of each directed link, ms.
    base: Vec<Vec<u64>>,
    /// Directed links cut by a partition.
    cut: BTreeSet<(usize, usize)>,
    /// After the heal every link delivers at its base latency.
    healed: bool,
    delivered: u64,
    lost: u64,
    /// Validators asked for each block's body or transactions, per asking validator.
    asked_of: BTreeMap<(usize, [u8; 32]), BTreeSet<usize>>,
    /// Publications so far.
    published: u64,
    /// Sync requests so far.
    requests: u64,
}

impl Net {
    /// A network of `faults`, its links drawn from `rng`.
    pub fn new(faults: Faults, rng: &mut ChaCha8Rng) -> Self {
        let base = (0..VALIDATORS)
            .map(|_| {
                (0..VALIDATORS)
                    .map(|_| rng.gen_range(faults.latency_ms.0..=faults.latency_ms.1))
                    .collect()
            })
            .collect();
        Self {
            faults,
            state: parking_lot::Mutex::new(State {
                base,
                cut: BTreeSet::new(),
                healed: false,
                delivered: 0,
                lost: 0,
                asked_of: BTreeMap::new(),
                published: 0,
                requests: 0,
            }),
        }
    }

    /// Every link delivers from now on, without loss.
    pub fn heal(&self) {
        let mut s = self.state.lock();
        s.healed = true;
        s.cut.clear();
    }

    /// Cuts every link between `side` and the others.
    pub fn partition(&self, side: &[usize]) {
        let mut s = self.state.lock();
        for a in 0..VALIDATORS {
            for b in 0..VALIDATORS {
                if side.contains(&a) != side.contains(&b) {
                    s.cut.insert((a, b));
                }
            }
        }
    }

    /// Mends every partition.
    pub fn mend(&self) {
        self.state.lock().cut.clear();
    }

    /// A new message id for a publication by `from`.
    fn publication_id(&self, from: usize) -> [u8; 32] {
        let mut s = self.state.lock();
        s.published += 1;
        let mut h = blake3::Hasher::new();
        h.update(&(from as u64).to_le_bytes());
        h.update(&s.published.to_le_bytes());
        *h.finalize().as_bytes()
    }

    /// A new sync request id.
    fn request_id(&self) -> u64 {
        let mut s = self.state.lock();
        s.requests += 1;
        s.requests
    }

    /// (delivered, lost, fetches asked of more than one validator).
    pub fn counters(&self) -> (u64, u64, u64) {
        let s = self.state.lock();
        let elsewhere = s.asked_of.values().filter(|v| v.len() > 1).count() as u64;
        (s.delivered, s.lost, elsewhere)
    }

    /// When a message from `a` to `b` sent now arrives, if it does; with a duplicate's time.
    fn fate(&self, world: &World, a: usize, b: usize) -> (Option<Duration>, Option<Duration>) {
        let mut s = self.state.lock();
        let base = s.base[a][b];
        if s.healed {
            s.delivered += 1;
            return (Some(Duration::from_millis(base)), None);
        }
        if s.cut.contains(&(a, b)) {
            s.lost += 1;
            return (None, None);
        }
        let f = &self.faults;
        let (lost, jitter, dup, dup_after) = world.rng(|r| {
            (
                r.gen_bool(f.drop),
                r.gen_range(0..=f.jitter_ms),
                r.gen_bool(f.duplicate),
                r.gen_range(0..90_000u64),
            )
        });
        if lost {
            s.lost += 1;
            return (None, None);
        }
        s.delivered += 1;
        let at = Duration::from_millis(base + jitter);
        (Some(at), dup.then(|| at + Duration::from_millis(dup_after)))
    }

    fn note_fetch(&self, from: usize, to: usize, asked: &Asked) {
        if let Asked::Body { hash, .. } | Asked::Txs { hash, .. } = asked {
            self.state
                .lock()
                .asked_of
                .entry((from, *hash))
                .or_default()
                .insert(to);
        }
    }
}

/// Runs `f` at `at` (simulated).
fn later(world: &Arc<World>, after: Duration, f: impl FnOnce(&Arc<World>) + Send + 'static) {
    let world = world.clone();
    tokio::spawn(async move {
        tokio::time::sleep(after).await;
        f(&world);
    });
}

/// Carries validator `from`'s commands (incarnation `incarnation`) until it stops.
pub(crate) async fn route(
    world: Arc<World>,
    from: usize,
    incarnation: u64,
    mut commands: mpsc::Receiver<Command>,
) {
    while let Some(c) = commands.recv().await {
        match c {
            Command::Publish { topic, data } => {
                let topic = if topic.to_string().ends_with("/consensus/1") {
                    Topic::Consensus
                } else {
                    Topic::Transactions
                };
                publish(&world, from, topic, Arc::new(data));
            }
            Command::Request {
                peer,
                request,
                asked,
            } => {
                let Some(to) = world.index_of(&peer) else {
                    continue;
                };
                if world.plan.honest(from) {
                    world.net.note_fetch(from, to, &asked);
                }
                let req = SimRequest {
                    id: world.net.request_id(),
                    from,
                    incarnation,
                    peer: world.peer(from),
                    request,
                    asked,
                    settled: Arc::default(),
                };
                // The request times out whatever becomes of it (a crashed server, a queue
                // never served), as libp2p's request-response does.
                let timeout = req.failure();
                later(&world, REQUEST_TIMEOUT, move |w| settle(w, timeout, None));
                if let Some(after) = world.net.fate(&world, from, to).0 {
                    later(&world, after, move |w| arrive(w, to, req));
                }
            }
            Command::SetSignatureCheck(check) => {
                if let Some(r) = world.validators[from].lock().running_at(incarnation) {
                    r.intake.check = Some(check);
                }
            }
            // The simulated chains keep their genesis set; responses go through `respond`.
            Command::SetValidators { .. } | Command::Respond { .. } => {}
        }
    }
}

/// Validator `from` gossips `data`: to every other validator (a liar in the Byzantine mix
/// tells each a different story: each of its messages reaches a random part of them).
fn publish(world: &Arc<World>, from: usize, topic: Topic, data: Arc<Vec<u8>>) {
    // As gossipsub names a message (author and sequence number): a re-sent vote is a new
    // message, and only the copies of one publication are recognised as duplicates.
    let id = world.net.publication_id(from);
    if let Some(r) = world.validators[from].lock().running.as_mut() {
        r.seen.insert(id, Instant::now());
    }
    let splits = world.plan.liar.is_some_and(|(l, _)| l == from)
        && world.plan.drawn == super::Mix::Byzantine;
    for to in (0..VALIDATORS).filter(|t| *t != from) {
        if splits && world.rng(|r| r.gen_bool(0.5)) {
            continue;
        }
        send_gossip(world, from, to, topic, data.clone(), id);
    }
}

fn send_gossip(
    world: &Arc<World>,
    from: usize,
    to: usize,
    topic: Topic,
    data: Arc<Vec<u8>>,
    id: [u8; 32],
) {
    let (first, copy) = world.net.fate(world, from, to);
    for after in [first, copy].into_iter().flatten() {
        let data = data.clone();
        later(world, after, move |w| {
            deliver_gossip(w, from, to, topic, data, id)
        });
    }
}

/// Gossip from `from` reaches `to`: checked and queued as libp2p's intake does, then
/// forwarded to the others if accepted.
fn deliver_gossip(
    world: &Arc<World>,
    from: usize,
    to: usize,
    topic: Topic,
    data: Arc<Vec<u8>>,
    id: [u8; 32],
) {
    let peer = world.peer(from);
    // What an honest validator passes on is checked: its height always, its signature only
    // where someone lies (only then can a forgery be passed on).
    let mut relaying = None;
    // Copies of a waiting message this honest validator dropped, and the most copies of one
    // message its driver's inbox ever held at once.
    let mut copies = None;
    let verdict = {
        let mut slot = world.validators[to].lock();
        let Some(r) = slot.running.as_mut() else {
            return;
        };
        let now = Instant::now();
        if r.seen
            .get(&id)
            .is_some_and(|t| now.duration_since(*t) < SEEN_TTL)
        {
            return;
        }
        if r.seen.len() > 8192 {
            r.seen.retain(|_, t| now.duration_since(*t) < SEEN_TTL);
        }
        r.seen.insert(id, now);
        if topic == Topic::Consensus && world.plan.honest(to) {
            relaying = Some((r.chain.clone(), r.chain.head().height));
        }
        match topic {
            Topic::Consensus if world.plan.honest(to) => {
                let inbox = &r.intake.consensus;
                let (dropped, most) = (inbox.copies_refused(), inbox.most_copies());
                let verdict = r.intake.consensus(Some(from as u32), &peer, &data);
                // Checked when this message raised the most.
                let raised = Some(inbox.most_copies()).filter(|m| *m > most);
                copies = Some((inbox.copies_refused() - dropped, raised));
                verdict
            }
            Topic::Consensus => r.intake.consensus(Some(from as u32), &peer, &data),
            Topic::Transactions => r.intake.transactions(&peer, &data),
        }
    };
    if let Some((dropped, most)) = copies {
        world.stats.lock().copies_dropped += dropped;
        if let Some(most) = most {
            super::checks::copies(world, to, most);
        }
    }
    match verdict {
        Verdict::Accept => {
            if let Some((chain, committed)) = relaying {
                super::checks::relayed(world, to, &chain, committed, &data);
            }
            if topic == Topic::Transactions && world.plan.liar.is_some() && world.plan.honest(to) {
                super::checks::took_gossip(world, to, &data);
            }
            for next in (0..VALIDATORS).filter(|n| *n != to && *n != from) {
                send_gossip(world, to, next, topic, data.clone(), id);
            }
        }
        Verdict::Refuse if world.plan.honest(to) => world.stats.lock().refused_gossip += 1,
        _ => {}
    }
}

/// A sync request reaches validator `to`: refused over the per-peer limit or a full queue,
/// otherwise queued for its sync server.
fn arrive(world: &Arc<World>, to: usize, req: SimRequest) {
    let mut over = None;
    let refused = {
        let mut slot = world.validators[to].lock();
        let incarnation = slot.incarnation;
        match slot.running.as_mut() {
            None => Some(req),
            Some(r) if !r.places.has_room(&req.from) => {
                // libp2p reports a refused request's failure to the server as well.
                r.places.failed(&req.from, &req.id);
                Some(req)
            }
            Some(r) => {
                let (from, id) = (req.from, req.id);
                let queue = if crate::network::urgent(&req.request) {
                    &r.urgent
                } else {
                    &r.bulk
                };
                match queue.try_send(req) {
                    Ok(()) => {
                        r.places.take(from, id);
                        // As libp2p does, the server's side of the request fails once its
                        // timeout passes, answered or not.
                        later(world, REQUEST_TIMEOUT, move |w| {
                            if let Some(r) = w.validators[to].lock().running_at(incarnation) {
                                r.places.failed(&from, &id);
                            }
                        });
                        let queued = r.queued.entry(from).or_insert(0);
                        *queued += 1;
                        if *queued > SYNC_REQUESTS_PER_PEER && world.plan.honest(to) {
                            over = Some(*queued);
                        }
                        None
                    }
                    Err(e) => {
                        let req = e.into_inner();
                        r.places.failed(&req.from, &req.id);
                        Some(req)
                    }
                }
            }
        }
    };
    if let Some(value) = over {
        world.checks.violate(Violation::Memory {
            validator: to,
            what: "sync requests of one peer queued",
            value: value as u64,
            bound: SYNC_REQUESTS_PER_PEER as u64,
        });
    }
    if let Some(req) = refused {
        world.stats.lock().refused_sync += u64::from(world.plan.honest(to));
        // The stream is closed at once: the asker learns of the failure an RTT later (or at
        // its timeout when nothing comes back).
        if let Some(after) = world.net.fate(world, to, req.from).0 {
            let failure = req.failure();
            later(world, after, move |w| settle(w, failure, None));
        }
    }
}

/// Validator `server`'s sync server answers `req`.
pub(crate) fn respond(
    world: &Arc<World>,
    server: usize,
    req: SimRequest,
    response: DecisionResponse,
) {
    let mut decided = 0;
    if let Some(r) = world.validators[server].lock().running.as_mut() {
        r.places.answered(&req.id);
        if let Some(n) = r.queued.get_mut(&req.from) {
            *n = n.saturating_sub(1);
        }
        decided = r.status.borrow().height;
    }
    if world.plan.honest(server) {
        super::checks::served(world, server, &req.request, &response);
        if world.plan.honest(req.from) {
            super::checks::fetch_answered(world, server, decided, &req.request, &response);
        }
    }
    let bytes = response.encode_to_vec();
    // Too large an answer is never read: the request times out.
    if bytes.len() > MAX_MESSAGE_BYTES {
        return;
    }
    if let Some(after) = world.net.fate(world, server, req.from).0 {
        let to = req.failure();
        later(world, after, move |w| {
            let decoded = crate::network::wire::check_response(&bytes)
                .ok()
                .and_then(|()| DecisionResponse::decode(bytes.as_slice()).ok());
            if let Some(response) = &decoded {
                if w.plan.honest(to.from) {
                    super::checks::took_answer(w, to.from, bytes.len(), response);
                }
            }
            // An answer that fails the byte bounds or does not decode fails the request.
            settle(w, to, Some(decoded));
        })
    }
}

/// The validator that asked is told of the answer (`Some(Some(_))`) or of the request's
/// failure, once and only if it is still the incarnation that asked.
fn settle(world: &Arc<World>, to: Settle, answer: Option<Option<DecisionResponse>>) {
    if to.settled.swap(true, std::sync::atomic::Ordering::Relaxed) {
        return;
    }
    if let Some(r) = world.validators[to.from].lock().running_at(to.incarnation) {
        r.intake.answer(to.asked, answer.flatten());
    }
}
