//! The simulated world: virtual clock, event queue, network, and one host per validator that
//! performs its state machine's actions the way the node does (persist, send, time, build,
//! validate, commit, serve decisions).

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::byzantine::ByzantineKind;
use super::checker::{Checker, Violation};
use super::keys::{SimSigner, SimVerifier};
use super::sets::SetSchedule;
use super::{Fault, FaultMix, Report, Scenario, SimBlock};
use crate::machine::{Action, Consensus, Input};
use crate::params::{Params, Timeout, Timeouts};
use crate::types::{
    BlockId, Certificate, Height, Message, Proposal, Round, Signable, Signed, SignedProposal,
    SignedVote, Signer, ValidatorIndex, Vote, VoteKind,
};

const GENESIS: BlockId = BlockId([0; 32]);
/// Upper bound on events per schedule, so a message storm ends the run instead of hanging it.
const MAX_EVENTS: u64 = 3_000_000;

fn sim_timeouts() -> Timeouts {
    Timeouts {
        propose_ms: 1_000,
        prevote_ms: 500,
        precommit_ms: 500,
        delta_ms: 250,
        max_ms: 4_000,
        rebroadcast_ms: 500,
    }
}

#[derive(Debug)]
enum Event {
    Deliver {
        to: ValidatorIndex,
        msg: Message,
        body: Option<SimBlock>,
    },
    SyncRequest {
        to: ValidatorIndex,
        from: ValidatorIndex,
        height: Height,
    },
    Timer {
        node: ValidatorIndex,
        incarnation: u32,
        timeout: Timeout,
    },
    Answer {
        node: ValidatorIndex,
        incarnation: u32,
        input: Input,
    },
    Fault(Fault),
    Heal,
    /// The host's background sync of its commits up to `height` is done.
    Synced {
        node: ValidatorIndex,
        incarnation: u32,
        height: Height,
    },
}

/// A commit written without fsync: a crash may lose it, and with it the pruning of the
/// record and the bodies its write removed (one atomic write in the node).
struct UnsyncedCommit {
    height: Height,
    pruned: Vec<Signed>,
    durable: Vec<BlockId>,
}

struct Scheduled {
    at: u64,
    seq: u64,
    event: Event,
}

impl PartialEq for Scheduled {
    fn eq(&self, other: &Self) -> bool {
        (self.at, self.seq) == (other.at, other.seq)
    }
}
impl Eq for Scheduled {}
impl PartialOrd for Scheduled {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Scheduled {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        (self.at, self.seq).cmp(&(other.at, other.seq))
    }
}

struct Node {
    byzantine: Option<ByzantineKind>,
    core: Option<Consensus<SimSigner, SimVerifier>>,
    incarnation: u32,
    /// The persisted record (survives crashes).
    wal: Vec<Signed>,
    /// Committed blocks' certificates (survive crashes); the chain is their blocks.
    certs: Vec<Certificate>,
    /// Block bodies held; those not committed are lost in a crash.
    blocks: HashMap<BlockId, SimBlock>,
    /// Blocks this validator precommitted at the current height: their bodies are kept
    /// durably with the record, as the node does.
    durable: Vec<BlockId>,
    /// Crash after performing this many more actions.
    crash_after: Option<usize>,
    /// Commits not synced yet, oldest first (only with `Scenario::lost_writes`).
    unsynced: Vec<UnsyncedCommit>,
    signer: SimSigner,
    /// Heights committed, as its verifier reads them (set changes of later blocks are unknown
    /// to it).
    known: Arc<AtomicU64>,
}

impl Node {
    fn head(&self) -> BlockId {
        self.certs.last().map_or(GENESIS, |c| c.block)
    }

    fn height(&self) -> Height {
        self.certs.len() as Height
    }

    fn honest(&self) -> bool {
        self.byzantine.is_none()
    }
}

pub(crate) struct World<'a> {
    sc: &'a Scenario,
    rng: ChaCha8Rng,
    now: u64,
    seq: u64,
    queue: BinaryHeap<Reverse<Scheduled>>,
    sets: Arc<SetSchedule>,
    nodes: Vec<Node>,
    sides: Vec<u8>,
    healed: bool,
    target: Option<Height>,
    checker: Checker,
    events: u64,
    misbehaviour: u64,
    lost_commits: u64,
    violation: Option<Violation>,
    block_counter: u64,
    /// Every block built with roots that do not match (by Byzantine proposers).
    invalid_blocks: std::collections::HashSet<BlockId>,
    /// `lock-split`: the honest validator that alone sees the first round's precommits at the
    /// aimed heights, and whose messages reach no one until the heal.
    lock_split_target: Option<ValidatorIndex>,
    /// `lock-split`: the fresh block a Byzantine proposer put in place of its re-proposal, by
    /// (proposer, height, round); its votes of that round go to it.
    substituted: HashMap<(ValidatorIndex, Height, Round), BlockId>,
    trace: bool,
}

impl<'a> World<'a> {
    pub(crate) fn new(sc: &'a Scenario) -> Self {
        let n = sc.sets.nodes;
        let nodes = (0..n)
            .map(|v| Node {
                byzantine: sc.byzantine.iter().find(|(b, _)| *b == v).map(|&(_, k)| k),
                core: None,
                incarnation: 0,
                wal: Vec::new(),
                certs: Vec::new(),
                blocks: HashMap::new(),
                durable: Vec::new(),
                crash_after: None,
                unsynced: Vec::new(),
                signer: SimSigner::new(v),
                known: Arc::new(AtomicU64::new(0)),
            })
            .collect();
        let sets = Arc::new(sc.sets.clone());
        Self {
            sc,
            rng: ChaCha8Rng::seed_from_u64(sc.seed ^ 0x5157_0a7e_c0de_0001),
            now: 0,
            seq: 0,
            queue: BinaryHeap::new(),
            sets: sets.clone(),
            nodes,
            sides: vec![0; n as usize],
            healed: false,
            target: None,
            checker: Checker::new(sets),
            events: 0,
            misbehaviour: 0,
            lost_commits: 0,
            violation: None,
            block_counter: 0,
            invalid_blocks: std::collections::HashSet::new(),
            lock_split_target: (sc.mix == FaultMix::LockSplit)
                .then(|| (0..n).find(|v| sc.byzantine.iter().all(|(b, _)| b != v)))
                .flatten(),
            substituted: HashMap::new(),
            trace: std::env::var_os("QUORATE_SIM_TRACE").is_some(),
        }
    }

    pub(crate) fn run(mut self) -> Report {
        for v in 0..self.sets.nodes {
            if self.nodes[v as usize].byzantine != Some(ByzantineKind::Silent) {
                self.boot(v);
            }
        }
        for (at, fault) in self.sc.faults.clone() {
            self.push(at, Event::Fault(fault));
        }
        self.push(self.sc.heal_ms, Event::Heal);
        let deadline = self.sc.heal_ms + self.sc.liveness_ms;
        while let Some(Reverse(s)) = self.queue.pop() {
            if s.at > deadline || self.events >= MAX_EVENTS {
                break;
            }
            self.now = s.at;
            self.events += 1;
            if self.trace {
                eprintln!("{:>7} {:?}", self.now, s.event);
            }
            self.dispatch(s.event);
            if self.violation.is_some() || self.live() {
                break;
            }
        }
        if self.violation.is_none() {
            self.check_liveness();
        }
        if self.trace {
            eprintln!("{:?}", self.sc);
            for (v, n) in self.nodes.iter().enumerate() {
                if let Some(c) = &n.core {
                    eprintln!("v{v}: {}", c.describe());
                }
            }
        }
        Report {
            seed: self.sc.seed,
            mix: self.sc.mix,
            n: self.sc.n,
            heights: self.nodes.iter().map(Node::height).collect(),
            events: self.events,
            misbehaviour: self.misbehaviour,
            lost_commits: self.lost_commits,
            violation: self.violation,
        }
    }

    fn live(&self) -> bool {
        self.target.is_some_and(|t| {
            self.nodes
                .iter()
                .filter(|n| n.honest())
                .all(|n| n.height() >= t)
        })
    }

    fn check_liveness(&mut self) {
        let Some(target) = self.target else { return };
        if let Some((v, n)) = self
            .nodes
            .iter()
            .enumerate()
            .find(|(_, n)| n.honest() && n.height() < target)
        {
            self.violation = Some(Violation::Stalled {
                validator: v as ValidatorIndex,
                height: n.height(),
                target,
            });
        }
    }

    fn push(&mut self, at: u64, event: Event) {
        self.seq += 1;
        self.queue.push(Reverse(Scheduled {
            at,
            seq: self.seq,
            event,
        }));
    }

    fn dispatch(&mut self, event: Event) {
        match event {
            Event::Deliver { to, msg, body } => {
                let node = &mut self.nodes[to as usize];
                if node.core.is_none() {
                    return;
                }
                // A copy whose bytes do not match its id is refused, never kept: a good copy
                // may still come (the node checks the header hash and the transaction root).
                if let Some(b) = body.filter(|b| !b.damaged) {
                    node.blocks.entry(b.id).or_insert(b);
                }
                self.step(to, Input::Message(msg));
            }
            Event::SyncRequest { to, from, height } => self.serve_decision(to, from, height),
            Event::Timer {
                node,
                incarnation,
                timeout,
            } => {
                if self.nodes[node as usize].incarnation == incarnation {
                    self.step(node, Input::Timeout(timeout));
                }
            }
            Event::Answer {
                node,
                incarnation,
                input,
            } => {
                if self.nodes[node as usize].incarnation == incarnation {
                    self.step(node, input);
                }
            }
            Event::Fault(Fault::Crash { node, mid_step }) => {
                let n = &mut self.nodes[node as usize];
                if n.core.is_some() {
                    match mid_step {
                        Some(k) => n.crash_after = Some(k),
                        None => self.crash(node),
                    }
                }
            }
            Event::Fault(Fault::Restart { node }) => {
                if self.nodes[node as usize].core.is_none() {
                    self.boot(node);
                }
            }
            Event::Fault(Fault::Partition { mut sides }) => {
                if !self.healed {
                    // Nodes outside the genesis set stay on the first side.
                    sides.resize(self.sets.nodes as usize, 0);
                    self.sides = sides;
                }
            }
            Event::Heal => {
                self.healed = true;
                self.sides.fill(0);
                for v in 0..self.sets.nodes {
                    let n = &mut self.nodes[v as usize];
                    n.crash_after = None;
                    if n.honest() && n.core.is_none() {
                        self.boot(v);
                    }
                }
                let top = self.nodes.iter().map(Node::height).max().unwrap_or(0);
                self.target = Some(top + self.sc.liveness_heights);
            }
            Event::Synced {
                node,
                incarnation,
                height,
            } => {
                let n = &mut self.nodes[node as usize];
                if n.incarnation == incarnation {
                    n.unsynced.retain(|u| u.height > height);
                }
            }
        }
    }

    fn boot(&mut self, v: ValidatorIndex) {
        let node = &mut self.nodes[v as usize];
        let committed = node.height();
        let height = committed + 1;
        node.known.store(committed, Ordering::Relaxed);
        let members = self.sets.members_at(height, committed).len() as u32;
        let me = self.sets.index_of(v, height, committed);
        let mut params = Params::new(members, me, sim_timeouts());
        params.fault = match node.byzantine {
            Some(ByzantineKind::InvalidBlocks) => Some(crate::InjectedFault::IgnoreLock),
            Some(_) => None,
            None => self.sc.broken,
        };
        node.incarnation += 1;
        let mut core = Consensus::new(
            params,
            node.signer.clone(),
            SimVerifier::with_sets(self.sets.clone(), node.known.clone()),
            height,
            &node.wal,
        );
        let actions = core.start();
        node.core = Some(core);
        self.perform(v, actions);
        // The changes its committed blocks decided that are not in force yet, as the node
        // reads them from its state at start-up.
        let sets = self.sets.clone();
        for c in sets.changes.iter() {
            if c.decided <= committed && c.effective > height {
                self.tell_set(v, c.effective, c.decided);
            }
        }
    }

    /// Tells `v`'s machine of the set deciding heights from `from` on, as decided at `decided`.
    fn tell_set(&mut self, v: ValidatorIndex, from: Height, decided: Height) {
        let members = self.sets.members_at(from, decided).len() as u32;
        let me = self.sets.index_of(v, from, decided);
        self.step(
            v,
            Input::ValidatorSet {
                from,
                validators: members,
                me,
            },
        );
    }

    fn crash(&mut self, v: ValidatorIndex) {
        let node = &mut self.nodes[v as usize];
        node.core = None;
        node.incarnation += 1;
        node.crash_after = None;
        // The commits not synced yet: the newest few (maybe none, maybe all) are lost.
        let unsynced = std::mem::take(&mut node.unsynced);
        let keep = if unsynced.is_empty() {
            0
        } else {
            self.rng.gen_range(0..=unsynced.len())
        };
        for u in unsynced.into_iter().skip(keep).rev() {
            let cert = node
                .certs
                .pop()
                .expect("an unsynced commit is on the chain");
            debug_assert_eq!(cert.height, u.height);
            if !self.sc.record_pruned_apart {
                let later = std::mem::take(&mut node.wal);
                node.wal = u.pruned;
                node.wal.extend(later);
            }
            node.durable = u.durable;
            self.lost_commits += 1;
        }
        node.known.store(node.height(), Ordering::Relaxed);
        let height = node.height();
        let durable = std::mem::take(&mut node.durable);
        node.blocks
            .retain(|id, b| b.height <= height || durable.contains(id));
        node.durable = durable;
    }

    fn step(&mut self, v: ValidatorIndex, input: Input) {
        let Some(core) = self.nodes[v as usize].core.as_mut() else {
            return;
        };
        let actions = core.handle(input);
        self.perform(v, actions);
    }

    fn perform(&mut self, v: ValidatorIndex, actions: Vec<Action>) {
        for action in actions {
            if self.violation.is_some() {
                return;
            }
            let node = &mut self.nodes[v as usize];
            match node.crash_after {
                Some(0) => {
                    self.crash(v);
                    return;
                }
                Some(k) => node.crash_after = Some(k - 1),
                None => {}
            }
            self.perform_one(v, action);
        }
    }

    fn perform_one(&mut self, v: ValidatorIndex, action: Action) {
        let vi = v as usize;
        if self.trace {
            eprintln!("{:>7}   v{v} -> {action:?}", self.now);
        }
        match action {
            Action::Persist(s) => {
                let me = self.sets.index_of(v, s.height(), self.nodes[vi].height());
                let own = match &s {
                    Signed::Proposal(p) => Some(p.proposal.proposer) == me,
                    Signed::Vote(sv) => Some(sv.vote.validator) == me,
                };
                if own && self.nodes[vi].honest() {
                    let invalid = &self.invalid_blocks;
                    if let Err(e) = self.checker.on_signed(v, &s, |b| invalid.contains(b)) {
                        self.violation = Some(e);
                    }
                }
                let node = &mut self.nodes[vi];
                // A record write is fsynced: every write before it, commits too, is durable.
                node.unsynced.clear();
                // The node keeps the body of a block it proposes or precommits with its record.
                match &s {
                    Signed::Vote(sv) => {
                        if let (true, Some(b)) = (own, sv.vote.block) {
                            if sv.vote.kind == crate::types::VoteKind::Precommit {
                                node.durable.push(b);
                            }
                        }
                    }
                    Signed::Proposal(sp) if own => {
                        node.durable.push(sp.proposal.block);
                    }
                    Signed::Proposal(_) => {}
                }
                node.wal.push(s);
            }
            Action::Broadcast(msg) => self.broadcast(v, msg),
            Action::ScheduleTimeout { timeout, after_ms } => {
                // `lock-split`: an honest validator entered the second round of an aimed
                // height; the Byzantine proposer strikes.
                if timeout.round == 1
                    && timeout.kind == crate::params::TimeoutKind::Propose
                    && self.nodes[vi].honest()
                    && Some(v) != self.lock_split_target
                {
                    self.lock_split_strike(timeout.height);
                }
                let incarnation = self.nodes[vi].incarnation;
                self.push(
                    self.now + after_ms,
                    Event::Timer {
                        node: v,
                        incarnation,
                        timeout,
                    },
                );
            }
            Action::BuildBlock { height, round } => {
                let valid = self.nodes[vi].byzantine != Some(ByzantineKind::InvalidBlocks);
                let block = self.make_block(v, height, valid);
                if self.nodes[vi].byzantine == Some(ByzantineKind::FutureTime) {
                    if let Some(b) = self.nodes[vi].blocks.get_mut(&block) {
                        b.future_time = true;
                    }
                }
                let incarnation = self.nodes[vi].incarnation;
                let at = self.now + self.rng.gen_range(0..20);
                self.push(
                    at,
                    Event::Answer {
                        node: v,
                        incarnation,
                        input: Input::BlockBuilt {
                            height,
                            round,
                            block,
                        },
                    },
                );
            }
            Action::ValidateBlock {
                height,
                block,
                endorsed,
            } => {
                let node = &self.nodes[vi];
                let Some(b) = node.blocks.get(&block) else {
                    return;
                };
                // Half of the validators (by block) have clocks behind a future-stamped block
                // and refuse it, unless 2f+1 endorsed it.
                let clock_refuses =
                    b.future_time && !endorsed && (block.0[0] as u32 + v).is_multiple_of(2);
                let valid = node.byzantine == Some(ByzantineKind::InvalidBlocks)
                    || (b.valid && b.height == height && b.parent == node.head() && !clock_refuses);
                let incarnation = node.incarnation;
                let at = self.now + self.rng.gen_range(0..10);
                self.push(
                    at,
                    Event::Answer {
                        node: v,
                        incarnation,
                        input: Input::Validated {
                            height,
                            block,
                            valid,
                        },
                    },
                );
            }
            Action::Commit(cert) => {
                let node = &mut self.nodes[vi];
                if node.honest() {
                    let block = node.blocks.get(&cert.block);
                    if let Err(e) = self.checker.on_commit(v, node.head(), block, &cert) {
                        self.violation = Some(e);
                        return;
                    }
                }
                let h = cert.height;
                node.certs.push(cert);
                node.known.store(h, Ordering::Relaxed);
                let (pruned, kept) = std::mem::take(&mut node.wal)
                    .into_iter()
                    .partition(|s| s.height() <= h);
                node.wal = kept;
                let durable = std::mem::take(&mut node.durable);
                if self.sc.lost_writes {
                    // Written without fsync; the host syncs in the background.
                    node.unsynced.push(UnsyncedCommit {
                        height: h,
                        pruned,
                        durable,
                    });
                    let incarnation = node.incarnation;
                    let at = self.now + self.rng.gen_range(0..30);
                    self.push(
                        at,
                        Event::Synced {
                            node: v,
                            incarnation,
                            height: h,
                        },
                    );
                }
                // The host reads the block's set changes as it commits it.
                let sets = self.sets.clone();
                for c in sets.decided_at(h) {
                    self.tell_set(v, c.effective, h);
                }
            }
            Action::RequestDecision { from, height } => {
                // `from` is an index in the set this validator is deciding with.
                let known = self.nodes[vi].height();
                let Some(&from) = self.sets.members_at(known + 1, known).get(from as usize) else {
                    return;
                };
                if self.reachable(v, from) {
                    let at = self.delay();
                    self.push(
                        at,
                        Event::SyncRequest {
                            to: from,
                            from: v,
                            height,
                        },
                    );
                }
            }
            Action::Misbehaviour(_) => {
                if self.nodes[vi].honest() {
                    self.misbehaviour += 1;
                }
            }
        }
    }

    fn serve_decision(&mut self, at: ValidatorIndex, to: ValidatorIndex, height: Height) {
        let node = &self.nodes[at as usize];
        if node.core.is_none() || height == 0 {
            return;
        }
        if node.height() < height {
            // "Not committed here", as the node's sync answers it, from `at`'s index in the
            // asker's set.
            let known = self.nodes[to as usize].height();
            let Some(from) = self.sets.index_of(at, known + 1, known) else {
                return;
            };
            if self.reachable(at, to) {
                let when = self.delay();
                let incarnation = self.nodes[to as usize].incarnation;
                self.push(
                    when,
                    Event::Answer {
                        node: to,
                        incarnation,
                        input: Input::NoDecision { from, height },
                    },
                );
            }
            return;
        }
        let cert = node.certs[height as usize - 1].clone();
        let msg = Message::Decision(cert);
        let body = self.body_of(at, &msg);
        self.send(at, to, msg, body);
    }

    fn make_block(&mut self, proposer: ValidatorIndex, height: Height, valid: bool) -> BlockId {
        self.block_counter += 1;
        let node = &mut self.nodes[proposer as usize];
        let parent = node.head();
        let mut h = blake3::Hasher::new();
        h.update(&height.to_le_bytes());
        h.update(&parent.0);
        h.update(&proposer.to_le_bytes());
        h.update(&self.block_counter.to_le_bytes());
        let id = BlockId(*h.finalize().as_bytes());
        if !valid {
            self.invalid_blocks.insert(id);
        }
        node.blocks.insert(
            id,
            SimBlock {
                id,
                height,
                parent,
                valid,
                damaged: false,
                future_time: false,
            },
        );
        id
    }

    fn body_of(&mut self, v: ValidatorIndex, msg: &Message) -> Option<SimBlock> {
        let id = match msg {
            Message::Proposal(p) => p.proposal.block,
            Message::Decision(c) => c.block,
            Message::Vote(_) => return None,
        };
        let mut body = self.nodes[v as usize].blocks.get(&id).cloned()?;
        if self.nodes[v as usize].byzantine == Some(ByzantineKind::BadBodies)
            && self.rng.gen_bool(0.7)
        {
            body.damaged = true;
        }
        Some(body)
    }

    fn broadcast(&mut self, v: ValidatorIndex, msg: Message) {
        match (self.nodes[v as usize].byzantine, &msg) {
            (Some(ByzantineKind::Silent), _) => {}
            (Some(ByzantineKind::LockSplit), Message::Proposal(sp)) if sp.proposal.round > 0 => {
                self.propose_fresh(v, sp.proposal)
            }
            (Some(ByzantineKind::LockSplit), Message::Vote(sv))
                if self.lock_split_precommit(v, sv) => {}
            (Some(ByzantineKind::LockSplit), Message::Vote(sv))
                if self
                    .substituted
                    .contains_key(&(v, sv.vote.height, sv.vote.round)) =>
            {
                let block = self.substituted[&(v, sv.vote.height, sv.vote.round)];
                let vote = Vote {
                    block: Some(block),
                    ..sv.vote
                };
                let msg = self.signed_vote(v, vote);
                for to in 0..self.sets.nodes {
                    self.send(v, to, msg.clone(), None);
                }
            }
            (Some(ByzantineKind::Equivocate), Message::Proposal(sp)) => {
                self.equivocate_proposal(v, sp.clone())
            }
            (Some(ByzantineKind::Equivocate), Message::Vote(sv)) => {
                self.equivocate_vote(v, sv.clone())
            }
            _ => {
                for to in 0..self.sets.nodes {
                    let body = self.body_of(v, &msg);
                    self.send(v, to, msg.clone(), body);
                }
            }
        }
    }

    /// `lock-split`, until the heal: at an aimed height whose second round has begun, the
    /// Byzantine proposer of that round proposes a fresh block without proof of lock and sends
    /// its prevote and precommit for it, once (its own machine, deaf to the first round's
    /// precommits, is still in the first round).
    fn lock_split_strike(&mut self, height: Height) {
        let Some(target) = self.lock_split_target else {
            return;
        };
        let b = ((height + 1) % u64::from(self.sc.n)) as ValidatorIndex;
        if self.healed
            || self.nodes[b as usize].byzantine != Some(ByzantineKind::LockSplit)
            || self.substituted.contains_key(&(b, height, 1))
            || self.nodes[b as usize].height() + 1 != height
        {
            return;
        }
        let proposal = Proposal {
            height,
            round: 1,
            block: GENESIS,
            pol_round: None,
            proposer: b,
        };
        self.propose_fresh(b, proposal);
        let block = self.substituted[&(b, height, 1)];
        for kind in [VoteKind::Prevote, VoteKind::Precommit] {
            let vote = Vote {
                height,
                round: 1,
                kind,
                block: Some(block),
                validator: b,
            };
            let msg = self.signed_vote(b, vote);
            for to in (0..self.sets.nodes).filter(|&to| to != target) {
                self.send(b, to, msg.clone(), None);
            }
        }
    }

    /// `lock-split`: proposes a fresh valid block without proof of lock in place of `p` (the
    /// honest machine would re-propose the block 2f+1 prevoted), to everyone.
    fn propose_fresh(&mut self, v: ValidatorIndex, p: Proposal) {
        let key = (v, p.height, p.round);
        let block = match self.substituted.get(&key) {
            Some(&b) => b,
            None => {
                let id = self.make_block(v, p.height, true);
                self.substituted.insert(key, id);
                id
            }
        };
        let proposal = Proposal {
            block,
            pol_round: None,
            ..p
        };
        let signature = self.nodes[v as usize]
            .signer
            .sign(Signable::Proposal(&proposal));
        let msg = Message::Proposal(SignedProposal {
            proposal,
            signature,
        });
        for to in 0..self.sets.nodes {
            let body = self.body_of(v, &msg);
            self.send(v, to, msg.clone(), body);
        }
    }

    /// `lock-split`, until the heal: `v`'s first-round precommit of a block at a height whose
    /// second round a Byzantine validator proposes goes to the target alone; the others get a
    /// nil precommit. With the target's own messages held back, the others see 2f+1 precommits
    /// (so they move to the next round locked) but fewer than 2f+1 for the block, which the
    /// target alone decides.
    fn lock_split_precommit(&mut self, v: ValidatorIndex, sv: &SignedVote) -> bool {
        let (Some(target), true) = (self.lock_split_target, self.lock_split_aims(&sv.vote)) else {
            return false;
        };
        let vote = sv.vote;
        let nil = self.signed_vote(
            v,
            Vote {
                block: None,
                ..vote
            },
        );
        for to in 0..self.sets.nodes {
            let msg = if to == target {
                Message::Vote(sv.clone())
            } else {
                nil.clone()
            };
            self.send(v, to, msg, None);
        }
        true
    }

    /// `lock-split`, until the heal: `vote` is a first-round precommit of a block at a height
    /// whose second round a Byzantine validator proposes.
    fn lock_split_aims(&self, vote: &Vote) -> bool {
        let second_proposer = ((vote.height + 1) % u64::from(self.sc.n)) as ValidatorIndex;
        self.lock_split_target.is_some()
            && !self.healed
            && vote.kind == VoteKind::Precommit
            && vote.block.is_some()
            && vote.round == 0
            && self.sc.byzantine.iter().any(|&(b, _)| b == second_proposer)
    }

    /// Sends a second, different valid block to a random part of the validators.
    fn equivocate_proposal(&mut self, v: ValidatorIndex, sp: SignedProposal) {
        let p = sp.proposal;
        let alt_id = self.make_block(v, p.height, true);
        let alt = Proposal { block: alt_id, ..p };
        let signature = self.nodes[v as usize].signer.sign(Signable::Proposal(&alt));
        let alt = Message::Proposal(SignedProposal {
            proposal: alt,
            signature,
        });
        self.send_split(v, Message::Proposal(sp), alt);
    }

    /// Sends a conflicting vote (another block of this height, or nil) to a random half.
    fn equivocate_vote(&mut self, v: ValidatorIndex, sv: SignedVote) {
        let vote = sv.vote;
        let others: Vec<BlockId> = self.nodes[v as usize]
            .blocks
            .values()
            .filter(|b| b.height == vote.height && Some(b.id) != vote.block)
            .map(|b| b.id)
            .collect();
        let other = if vote.block.is_some() && (others.is_empty() || self.rng.gen_bool(0.5)) {
            None
        } else if others.is_empty() {
            vote.block
        } else {
            let mut sorted = others;
            sorted.sort();
            Some(sorted[self.rng.gen_range(0..sorted.len())])
        };
        let alt = self.signed_vote(
            v,
            Vote {
                block: other,
                ..vote
            },
        );
        self.send_split(v, Message::Vote(sv), alt);
    }

    /// `vote` signed by validator `v` (only with its own key: Byzantine validators lie, they
    /// do not forge).
    fn signed_vote(&self, v: ValidatorIndex, vote: Vote) -> Message {
        let signature = self.nodes[v as usize].signer.sign(Signable::Vote(&vote));
        Message::Vote(SignedVote { vote, signature })
    }

    /// Sends `original` to a random part of the validators and `alt` to the others.
    fn send_split(&mut self, v: ValidatorIndex, original: Message, alt: Message) {
        for to in 0..self.sets.nodes {
            let msg = if self.rng.gen_bool(0.5) {
                original.clone()
            } else {
                alt.clone()
            };
            let body = self.body_of(v, &msg);
            self.send(v, to, msg, body);
        }
    }

    fn reachable(&mut self, from: ValidatorIndex, to: ValidatorIndex) -> bool {
        if from == to || self.sides[from as usize] != self.sides[to as usize] {
            return false;
        }
        // `lock-split`: the target's messages reach no one until the heal.
        if !self.healed && self.lock_split_target == Some(from) {
            return false;
        }
        self.healed || !self.rng.gen_bool(self.sc.drop)
    }

    fn delay(&mut self) -> u64 {
        self.now + self.rng.gen_range(self.sc.delay_ms.0..=self.sc.delay_ms.1)
    }

    fn send(
        &mut self,
        from: ValidatorIndex,
        to: ValidatorIndex,
        msg: Message,
        body: Option<SimBlock>,
    ) {
        if !self.reachable(from, to) {
            return;
        }
        // `lock-split`: the Byzantine validators' own machines do not hear the aimed
        // precommits either (they would decide the block and answer others' sync requests).
        if let Message::Vote(sv) = &msg {
            if self.nodes[to as usize].byzantine == Some(ByzantineKind::LockSplit)
                && self.lock_split_aims(&sv.vote)
            {
                return;
            }
        }
        if self.rng.gen_bool(self.sc.duplicate) {
            let at = self.delay();
            self.push(
                at,
                Event::Deliver {
                    to,
                    msg: msg.clone(),
                    body: body.clone(),
                },
            );
        }
        let at = self.delay();
        self.push(at, Event::Deliver { to, msg, body });
    }
}
