//! One validator's agreement state machine: Tendermint (arXiv 1807.04938, Algorithm 1) on
//! pre-processed blocks. Inputs are messages, timer expiries and the host's answers; outputs
//! are [`Action`]s. No I/O, no clock, no randomness: the same inputs give the same actions.

use std::collections::{BTreeMap, BTreeSet};

use crate::params::{Params, Timeout, TimeoutKind};
use crate::safety::{self, Lock};
use crate::types::{
    BlockId, Certificate, Height, Message, Proposal, Round, Signable, Signature, Signed,
    SignedProposal, SignedVote, Signer, ValidatorIndex, Verifier, Vote, VoteKind,
};
use crate::votes::{Added, VoteTally};

/// Messages for rounds further than this ahead of the current one are not stored (only the
/// sender's round is noted, for round skipping); this bounds what a Byzantine sender can make a
/// validator hold.
pub const ROUND_WINDOW: Round = 4;

/// Most messages of the next height kept per sender until this validator gets there (a
/// proposal and the votes of a few rounds); further ones are dropped and come again by re-send.
pub const FUTURE_PER_VALIDATOR: usize = 8;

/// Step within a round.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Debug)]
pub enum Step {
    /// Waiting for the proposal.
    Propose,
    /// Prevoted; waiting for prevotes.
    Prevote,
    /// Precommitted; waiting for precommits.
    Precommit,
}

/// Something the state machine is told.
#[derive(Clone, Debug)]
pub enum Input {
    /// A message from another validator; the host has kept any block body that came with it.
    Message(Message),
    /// A timer set by [`Action::ScheduleTimeout`] fired.
    Timeout(Timeout),
    /// The host built and executed the block asked for by [`Action::BuildBlock`].
    BlockBuilt {
        /// Height asked for.
        height: Height,
        /// Round asked for.
        round: Round,
        /// The block's id.
        block: BlockId,
    },
    /// The host re-executed a proposed block ([`Action::ValidateBlock`]): `valid` is true only if
    /// it extends the head, is signed by its proposer, and its state and receipt roots match.
    /// A `false` verdict is kept only until a `true` one comes: the host judges an endorsed
    /// block again without the checks that depend on its own view (its clock).
    Validated {
        /// Height of the block.
        height: Height,
        /// The block.
        block: BlockId,
        /// Verdict.
        valid: bool,
    },
    /// Validator `from` answered a [`Action::RequestDecision`] for `height` without a decision:
    /// it has not committed that height, whatever heights its messages claimed.
    NoDecision {
        /// Who answered.
        from: ValidatorIndex,
        /// The height asked for.
        height: Height,
    },
    /// A committed block decided that another validator set decides heights from `from` on.
    /// The host tells the machine right after it commits that block, and sets change at least
    /// [`MIN_SET_DELAY`] heights after the block that decides them, so the machine knows the
    /// set of every height before it gets there.
    ValidatorSet {
        /// First height the set decides.
        from: Height,
        /// Its size `n`.
        validators: u32,
        /// This validator's index in it, or `None` if it is not a member.
        me: Option<ValidatorIndex>,
    },
}

/// Fewest heights between the block that decides a set change and the change. One call of
/// [`Consensus::handle`] decides at most two heights (its own, then the next from messages
/// kept for it), so with three the host has told the machine of a change before the machine
/// enters its height.
pub const MIN_SET_DELAY: Height = 3;

/// A validator set as the machine needs it: its size and this validator's place in it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct SetView {
    validators: u32,
    me: Option<ValidatorIndex>,
}

/// A validator's misbehaviour seen by the state machine, for logs and evidence.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Misbehaviour {
    /// A message whose signature does not verify, or from an index outside the set.
    BadSignature {
        /// Claimed signer.
        validator: ValidatorIndex,
    },
    /// A proposal from a validator that is not the round's proposer.
    WrongProposer {
        /// Claimed proposer.
        validator: ValidatorIndex,
        /// Round.
        round: Round,
    },
    /// A proposal whose proof-of-lock round is not before its round.
    BadPolRound {
        /// Proposer.
        validator: ValidatorIndex,
        /// Round.
        round: Round,
    },
    /// Two different signed messages for the same height, round and step.
    Equivocation {
        /// The one kept.
        first: Box<Signed>,
        /// The one refused.
        second: Box<Signed>,
    },
    /// A decision whose certificate does not hold a quorum of valid precommits.
    BadCertificate {
        /// Height it claims.
        height: Height,
    },
}

/// Something the host must do. Actions are performed in order: in particular every
/// [`Action::Persist`] must be durable before any later action is performed.
#[derive(Clone, Debug)]
pub enum Action {
    /// Make this validator's own signed message durable (the persisted record). It is sent only
    /// by a later action, after this one completes.
    Persist(Signed),
    /// Send to every other validator (with the block body, for a proposal or decision).
    Broadcast(Message),
    /// Deliver [`Input::Timeout`] with `timeout` after `after_ms`.
    ScheduleTimeout {
        /// The timer.
        timeout: Timeout,
        /// Delay, ms.
        after_ms: u64,
    },
    /// Build and execute a block on the committed head, then answer [`Input::BlockBuilt`].
    BuildBlock {
        /// Height.
        height: Height,
        /// Round.
        round: Round,
    },
    /// Re-execute a proposed block whose body the host holds (or fetches), then answer
    /// [`Input::Validated`].
    ValidateBlock {
        /// Height.
        height: Height,
        /// The block.
        block: BlockId,
        /// 2f+1 validators prevoted or precommitted the block, so at least f+1 honest ones
        /// judged it valid: judge it only by the rules every validator applies alike
        /// (re-execution, roots, limits), not by this validator's own view (its clock).
        endorsed: bool,
    },
    /// The block is final: store it with this certificate, durably, before anything after.
    Commit(Certificate),
    /// Ask validator `from` for the decision (block and certificate) at `height`; its host
    /// answers from storage, and the answer comes back as [`Message::Decision`].
    RequestDecision {
        /// A validator known to be past `height`.
        from: ValidatorIndex,
        /// The height wanted.
        height: Height,
    },
    /// A validator misbehaved.
    Misbehaviour(Misbehaviour),
}

/// Guards for rules that fire once per round.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Debug)]
enum Once {
    PrevoteTimer,
    PrecommitTimer,
    Polka,
}

/// Which of its own messages a validator signs at most once per round.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Debug)]
enum Slot {
    Proposal,
    Prevote,
    Precommit,
}

impl From<VoteKind> for Slot {
    fn from(k: VoteKind) -> Self {
        match k {
            VoteKind::Prevote => Slot::Prevote,
            VoteKind::Precommit => Slot::Precommit,
        }
    }
}

/// One validator's consensus state.
pub struct Consensus<S, V> {
    params: Params,
    signer: S,
    verifier: V,
    height: Height,
    round: Round,
    step: Step,
    lock: Lock,
    valid: Option<(Round, BlockId)>,
    proposals: BTreeMap<Round, SignedProposal>,
    votes: VoteTally,
    validity: BTreeMap<BlockId, bool>,
    /// Blocks judged invalid that 2f+1 validators then endorsed, sent back to the host once to
    /// be judged as endorsed.
    rejudged: BTreeSet<BlockId>,
    /// Of those, the ones whose new verdict has not come yet.
    rejudging: BTreeSet<BlockId>,
    /// Authenticated messages of the next height, by sender, handled once this validator gets
    /// there (at most [`FUTURE_PER_VALIDATOR`] each).
    future: BTreeMap<ValidatorIndex, Vec<Message>>,
    /// A verified certificate for this height received from a validator that is ahead.
    certified: Option<Certificate>,
    /// Everything this validator signed at this height: the persisted record. Never signs a
    /// second message for a slot that holds one.
    own: BTreeMap<(Round, Slot), Signed>,
    once: BTreeSet<(Round, Once)>,
    seen_round: Vec<Option<Round>>,
    peer_height: Vec<Height>,
    sync_asked: Option<Height>,
    sync_turn: usize,
    /// Sets that decide later heights, by their first height.
    upcoming: BTreeMap<Height, SetView>,
    /// Height, round and step at the previous periodic retry (progress check).
    last_retry: Option<(Height, Round, Step)>,
    out: Vec<Action>,
}

impl<S: Signer, V: Verifier> Consensus<S, V> {
    /// A state machine for `height` (the committed head + 1), rebuilt from `record`: the
    /// messages this validator persisted before a restart (those of other heights are ignored).
    /// Call [`Consensus::start`] next.
    pub fn new(params: Params, signer: S, verifier: V, height: Height, record: &[Signed]) -> Self {
        let n = params.validators as usize;
        let mut this = Self {
            params,
            signer,
            verifier,
            height,
            round: 0,
            step: Step::Propose,
            lock: None,
            valid: None,
            proposals: BTreeMap::new(),
            votes: VoteTally::default(),
            validity: BTreeMap::new(),
            rejudged: BTreeSet::new(),
            rejudging: BTreeSet::new(),
            future: BTreeMap::new(),
            certified: None,
            own: BTreeMap::new(),
            once: BTreeSet::new(),
            seen_round: vec![None; n],
            peer_height: vec![0; n],
            sync_asked: None,
            sync_turn: 0,
            upcoming: BTreeMap::new(),
            last_retry: None,
            out: Vec::new(),
        };
        this.recover(record);
        this
    }

    fn recover(&mut self, record: &[Signed]) {
        let Some(me) = self.params.me else { return };
        for s in record.iter().filter(|s| s.height() == self.height) {
            let (round, slot) = match s {
                Signed::Proposal(p) if p.proposal.proposer == me => {
                    // Its own proposal goes back among the round's proposals, so that it is
                    // re-sent and judged like any other.
                    self.proposals
                        .entry(p.proposal.round)
                        .or_insert_with(|| p.clone());
                    (p.proposal.round, Slot::Proposal)
                }
                Signed::Vote(v) if v.vote.validator == me => {
                    let _ = self.votes.add(v.clone(), true);
                    if let (VoteKind::Precommit, Some(b)) = (v.vote.kind, v.vote.block) {
                        self.lock = safety::lock_on(self.lock, v.vote.round, b);
                    }
                    (v.vote.round, v.vote.kind.into())
                }
                // The proof of lock persisted beside a precommit.
                Signed::Vote(v) => {
                    let _ = self.votes.add(v.clone(), true);
                    continue;
                }
                Signed::Proposal(_) => continue,
            };
            self.own.entry((round, slot)).or_insert_with(|| s.clone());
            self.round = self.round.max(round);
        }
        // The locked block was valid and 2f+1 prevoted it: it stays the block to re-propose,
        // and the persisted proof lets the others accept it again.
        if let Some((r, b)) = self.lock {
            self.valid = Some((r, b));
            self.validity.insert(b, true);
        }
        let r = self.round;
        self.step = if self.own.contains_key(&(r, Slot::Precommit)) {
            Step::Precommit
        } else if self.own.contains_key(&(r, Slot::Prevote)) {
            Step::Prevote
        } else {
            Step::Propose
        };
    }

    /// First actions after construction: timers, the round's proposal or a re-send of what was
    /// signed before a restart.
    pub fn start(&mut self) -> Vec<Action> {
        self.schedule(TimeoutKind::Rebroadcast);
        if self.step == Step::Propose {
            self.start_round(self.round);
        }
        // A proposal restored from the record needs the host's verdict again.
        if let Some(block) = self.proposals.get(&self.round).map(|p| p.proposal.block) {
            self.request_validation(block, false);
        }
        self.resend_own();
        self.advance();
        std::mem::take(&mut self.out)
    }

    /// Feeds one input and returns what the host must do, in order.
    pub fn handle(&mut self, input: Input) -> Vec<Action> {
        match input {
            Input::Message(Message::Proposal(p)) => self.on_proposal(p, false),
            Input::Message(Message::Vote(v)) => self.on_vote(v, false),
            Input::Message(Message::Decision(c)) => self.on_decision(c),
            Input::Timeout(t) => self.on_timeout(t),
            Input::BlockBuilt {
                height,
                round,
                block,
            } => self.on_block_built(height, round, block),
            Input::Validated {
                height,
                block,
                valid,
            } => {
                if height == self.height {
                    self.rejudging.remove(&block);
                    // "Valid" overrides an earlier "invalid" (an endorsed block judged again);
                    // never the other way round.
                    let verdict = self.validity.entry(block).or_insert(valid);
                    *verdict |= valid;
                }
            }
            Input::ValidatorSet {
                from,
                validators,
                me,
            } => {
                if from > self.height && validators > 0 {
                    self.upcoming.insert(from, SetView { validators, me });
                }
            }
            Input::NoDecision { from, height } => {
                // It has not committed `height`: it is not ahead, whatever it claimed.
                if let Some(h) = self.peer_height.get_mut(from as usize) {
                    if height <= *h {
                        *h = height.saturating_sub(1);
                    }
                }
                if height == self.height && self.sync_asked == Some(height) {
                    self.sync_asked = None;
                    self.ask_for_sync(true);
                }
            }
        }
        self.advance();
        std::mem::take(&mut self.out)
    }

    /// Height being decided.
    pub fn height(&self) -> Height {
        self.height
    }

    /// Current round.
    pub fn round(&self) -> Round {
        self.round
    }

    /// Current step.
    pub fn step(&self) -> Step {
        self.step
    }

    /// Current lock.
    pub fn lock(&self) -> Lock {
        self.lock
    }

    /// The highest height another validator's authenticated messages have shown (its claim is
    /// dropped once it answers a sync request without a decision). A validator whose peers are
    /// two or more heights ahead is catching up.
    pub fn highest_peer_height(&self) -> Height {
        self.peer_height.iter().copied().max().unwrap_or(0)
    }

    /// One line of state for logs: height, round, step, lock and valid block.
    pub fn describe(&self) -> String {
        format!(
            "height {} round {} step {:?} lock {:?} valid {:?}",
            self.height, self.round, self.step, self.lock, self.valid
        )
    }

    /// The parameters.
    pub fn params(&self) -> &Params {
        &self.params
    }

    /// True if `sp` is a proposal this validator would take at its height or the next one:
    /// signed by the round's proposer, with a proof-of-lock round before its round, and not too
    /// far ahead (within [`ROUND_WINDOW`] of this round, or of round 0 at the next height). The
    /// host checks this before it spends work on the block body that came with the proposal;
    /// nothing changes in the machine.
    pub fn admissible_proposal(&self, sp: &SignedProposal) -> bool {
        let p = &sp.proposal;
        (p.height == self.height || p.height == self.height.saturating_add(1))
            && p.proposer < self.set_size_at(p.height)
            && p.proposer == self.proposer_at(p.height, p.round)
            && p.pol_round.is_none_or(|vr| vr < p.round)
            && p.round
                <= if p.height > self.height {
                    ROUND_WINDOW
                } else {
                    self.round.saturating_add(ROUND_WINDOW)
                }
            && self
                .verifier
                .verify(p.proposer, Signable::Proposal(p), &sp.signature)
    }

    /// True if `c` is a certificate for this validator's height holding a quorum of distinct
    /// validators' valid precommits. The host checks it before it spends work on the body that
    /// came with it.
    pub fn admissible_certificate(&self, c: &Certificate) -> bool {
        c.height == self.height && self.certificate_valid(c)
    }

    // ---- inputs -------------------------------------------------------------------------

    fn on_proposal(&mut self, sp: SignedProposal, authenticated: bool) {
        let p = sp.proposal;
        if !authenticated
            && !self.authentic(p.proposer, p.height, Signable::Proposal(&p), &sp.signature)
        {
            return;
        }
        if p.height == self.height.saturating_add(1) {
            self.keep_for_next_height(p.proposer, Message::Proposal(sp.clone()));
        }
        if !self.at_my_height(p.proposer, p.height) {
            return;
        }
        if p.proposer != self.params.proposer(p.height, p.round) {
            self.misbehaved(Misbehaviour::WrongProposer {
                validator: p.proposer,
                round: p.round,
            });
            return;
        }
        if p.pol_round.is_some_and(|vr| vr >= p.round) {
            self.misbehaved(Misbehaviour::BadPolRound {
                validator: p.proposer,
                round: p.round,
            });
            return;
        }
        if !self.note_round(p.proposer, p.round) {
            return;
        }
        match self.proposals.get(&p.round) {
            Some(old) if old.proposal == p => {}
            Some(old) => {
                let first = Box::new(Signed::Proposal(old.clone()));
                self.misbehaved(Misbehaviour::Equivocation {
                    first,
                    second: Box::new(Signed::Proposal(sp)),
                });
                return;
            }
            None => {
                self.proposals.insert(p.round, sp);
            }
        }
        self.request_validation(p.block, false);
    }

    fn on_vote(&mut self, sv: SignedVote, authenticated: bool) {
        let v = sv.vote;
        if !authenticated
            && !self.authentic(v.validator, v.height, Signable::Vote(&v), &sv.signature)
        {
            return;
        }
        if v.height == self.height.saturating_add(1) {
            self.keep_for_next_height(v.validator, Message::Vote(sv.clone()));
        }
        if !self.at_my_height(v.validator, v.height) || !self.note_round(v.validator, v.round) {
            return;
        }
        self.tally(sv);
    }

    fn on_decision(&mut self, c: Certificate) {
        if c.height != self.height {
            return;
        }
        if !self.certificate_valid(&c) {
            self.misbehaved(Misbehaviour::BadCertificate { height: c.height });
            return;
        }
        self.request_validation(c.block, true);
        self.certified.get_or_insert(c);
    }

    fn on_timeout(&mut self, t: Timeout) {
        if t.height != self.height {
            return;
        }
        match t.kind {
            // Algorithm 1 lines 57–60: no acceptable proposal in time → prevote nil.
            TimeoutKind::Propose if t.round == self.round && self.step == Step::Propose => {
                self.vote(VoteKind::Prevote, None);
                self.step = Step::Prevote;
            }
            // Lines 61–64: prevotes did not agree in time → precommit nil.
            TimeoutKind::Prevote if t.round == self.round && self.step == Step::Prevote => {
                self.vote(VoteKind::Precommit, None);
                self.step = Step::Precommit;
            }
            // Lines 65–67: precommits did not agree in time → next round.
            // The round number saturates: it cannot wrap to 0 (and, with f+1 needed to skip
            // rounds, f Byzantine validators cannot drive honest ones there).
            TimeoutKind::Precommit if t.round == self.round => {
                self.start_round(self.round.saturating_add(1))
            }
            TimeoutKind::Rebroadcast => {
                self.resend_own();
                self.ask_for_sync(true);
                self.schedule(TimeoutKind::Rebroadcast);
            }
            _ => {}
        }
    }

    fn on_block_built(&mut self, height: Height, round: Round, block: BlockId) {
        if height != self.height
            || round != self.round
            || self.step != Step::Propose
            || self.params.me != Some(self.params.proposer(height, round))
            || self.own.contains_key(&(round, Slot::Proposal))
        {
            return;
        }
        self.validity.insert(block, true);
        match self.valid {
            // A block that 2f+1 prevoted this height takes precedence (lines 14–16).
            Some((vr, vb)) => self.propose(vb, Some(vr)),
            None => self.propose(block, None),
        }
    }

    // ---- rules ---------------------------------------------------------------------------

    /// Applies every rule whose condition holds until none does.
    fn advance(&mut self) {
        loop {
            let before = (self.height, self.round, self.step, self.out.len());
            self.rule_rejudge();
            self.rule_decide();
            self.rule_skip_round();
            self.rule_prevote();
            self.rule_polka();
            self.rule_nil_polka();
            self.rule_timers();
            if (self.height, self.round, self.step, self.out.len()) == before {
                return;
            }
        }
    }

    /// Not in Algorithm 1, which takes `valid(v)` to be the same everywhere: a validator may
    /// judge a block invalid by its own view (a clock behind the proposer's; Tendermint's
    /// proposer-based timestamps have the same issue). A block with 2f+1 prevotes in some round
    /// or 2f+1 precommits was judged valid by at least f+1 honest validators: the host judges
    /// it once more, without its own view, so that this validator can lock on it, re-propose
    /// it, and commit it like the others. Without this a validator whose clock refused a block
    /// that others locked on could stall the height for good.
    fn rule_rejudge(&mut self) {
        let quorum = self.params.quorum();
        let endorsed: Vec<BlockId> = self
            .votes
            .quorums(VoteKind::Prevote, quorum)
            .into_iter()
            .chain(self.votes.committable(quorum))
            .map(|(_, b)| b)
            .chain(self.certified.as_ref().map(|c| c.block))
            .collect();
        for block in endorsed {
            if self.validity.get(&block) == Some(&false) && self.rejudged.insert(block) {
                self.rejudging.insert(block);
                self.out.push(Action::ValidateBlock {
                    height: self.height,
                    block,
                    endorsed: true,
                });
            }
        }
    }

    /// Lines 49–54: 2f+1 precommits for a valid block in any round → decide it. A verified
    /// certificate from a validator that is ahead counts as those precommits.
    fn rule_decide(&mut self) {
        if let Some(c) = &self.certified {
            if self.validity.get(&c.block) == Some(&true) {
                let c = c.clone();
                self.out.push(Action::Commit(c));
                self.next_height();
                return;
            }
        }
        let quorum = self.params.quorum();
        let committable = self.votes.committable(quorum);
        let decided = committable
            .into_iter()
            .find(|(_, b)| self.validity.get(b) == Some(&true));
        if let Some((round, block)) = decided {
            let signatures = self.votes.precommit_signatures(round, block);
            assert!(signatures.len() >= quorum, "decision without a quorum");
            self.out.push(Action::Commit(Certificate {
                height: self.height,
                round,
                block,
                signatures,
            }));
            self.next_height();
        }
    }

    /// Lines 55–56: f+1 validators are in a later round → join the latest round at least one
    /// honest validator has reached.
    fn rule_skip_round(&mut self) {
        let mut ahead: Vec<Round> = self
            .seen_round
            .iter()
            .flatten()
            .copied()
            .filter(|&r| r > self.round)
            .collect();
        let k = self.params.one_honest();
        if ahead.len() >= k {
            ahead.sort_unstable_by(|a, b| b.cmp(a));
            self.start_round(ahead[k - 1]);
        }
    }

    /// Lines 22–33: prevote for the round's proposal if it is valid and the lock allows it;
    /// otherwise nil.
    fn rule_prevote(&mut self) {
        if self.step != Step::Propose {
            return;
        }
        let Some(p) = self.proposals.get(&self.round).map(|sp| sp.proposal) else {
            return;
        };
        let Some(&valid) = self.validity.get(&p.block) else {
            return;
        };
        if let Some(vr) = p.pol_round {
            // Line 28: a re-proposal is judged only once its proof of lock is seen.
            if self.votes.count(vr, VoteKind::Prevote, Some(p.block)) < self.params.quorum() {
                return;
            }
        }
        // Judged invalid but endorsed by 2f+1: wait for the second verdict.
        if !valid && self.rejudging.contains(&p.block) {
            return;
        }
        let ok = valid && self.lock_allows(p.block, p.pol_round);
        self.vote(VoteKind::Prevote, ok.then_some(p.block));
        self.step = Step::Prevote;
    }

    /// Lines 36–43: 2f+1 prevotes for the round's valid proposal → lock on it and precommit it
    /// (if still in the prevote step); remember it as the valid block either way.
    fn rule_polka(&mut self) {
        if self.step == Step::Propose || self.once.contains(&(self.round, Once::Polka)) {
            return;
        }
        let Some(block) = self.proposals.get(&self.round).map(|sp| sp.proposal.block) else {
            return;
        };
        if self.validity.get(&block) != Some(&true)
            || self.votes.count(self.round, VoteKind::Prevote, Some(block)) < self.params.quorum()
        {
            return;
        }
        self.once.insert((self.round, Once::Polka));
        if self.step == Step::Prevote {
            // Persist the proof of lock first, so that after a restart this validator can still
            // justify re-proposing the block it is locked on.
            let proof: Vec<Action> = self
                .votes
                .for_block(self.round, VoteKind::Prevote, block)
                .into_iter()
                .map(|v| Action::Persist(Signed::Vote(v.clone())))
                .collect();
            self.out.extend(proof);
            self.lock = safety::lock_on(self.lock, self.round, block);
            self.vote(VoteKind::Precommit, Some(block));
            self.step = Step::Precommit;
        }
        self.valid = Some((self.round, block));
    }

    /// Lines 44–46: 2f+1 nil prevotes → precommit nil.
    fn rule_nil_polka(&mut self) {
        if self.step == Step::Prevote
            && self.votes.count(self.round, VoteKind::Prevote, None) >= self.params.quorum()
        {
            self.vote(VoteKind::Precommit, None);
            self.step = Step::Precommit;
        }
    }

    /// Lines 34–35 and 47–48: 2f+1 votes of a kind, whatever for → start that step's timer.
    fn rule_timers(&mut self) {
        let quorum = self.params.quorum();
        let r = self.round;
        if self.step == Step::Prevote
            && self.votes.count_any(r, VoteKind::Prevote) >= quorum
            && self.once.insert((r, Once::PrevoteTimer))
        {
            self.schedule(TimeoutKind::Prevote);
        }
        if self.votes.count_any(r, VoteKind::Precommit) >= quorum
            && self.once.insert((r, Once::PrecommitTimer))
        {
            self.schedule(TimeoutKind::Precommit);
        }
    }

    // ---- transitions ----------------------------------------------------------------------

    /// Lines 11–21.
    fn start_round(&mut self, round: Round) {
        self.round = round;
        self.step = Step::Propose;
        let proposer = self.params.proposer(self.height, round);
        if self.params.me == Some(proposer) && !self.own.contains_key(&(round, Slot::Proposal)) {
            match self.valid {
                Some((vr, block)) => self.propose(block, Some(vr)),
                None => self.out.push(Action::BuildBlock {
                    height: self.height,
                    round,
                }),
            }
        }
        self.schedule(TimeoutKind::Propose);
    }

    fn next_height(&mut self) {
        self.height += 1;
        let later = self.upcoming.split_off(&(self.height + 1));
        if let Some((_, set)) = std::mem::replace(&mut self.upcoming, later).pop_last() {
            self.params.validators = set.validators;
            self.params.me = set.me;
            self.peer_height = vec![0; set.validators as usize];
        }
        let n = self.params.validators as usize;
        self.round = 0;
        self.step = Step::Propose;
        self.lock = None;
        self.valid = None;
        self.proposals.clear();
        self.votes = VoteTally::default();
        self.validity.clear();
        self.rejudged.clear();
        self.rejudging.clear();
        self.certified = None;
        self.own.clear();
        self.once.clear();
        self.seen_round = vec![None; n];
        self.sync_asked = None;
        self.schedule(TimeoutKind::Rebroadcast);
        self.ask_for_sync(false);
        self.start_round(0);
        // What arrived early for this height is handled now (already authenticated).
        let future = std::mem::take(&mut self.future);
        for msg in future.into_values().flatten() {
            match msg {
                Message::Proposal(p) => self.on_proposal(p, true),
                Message::Vote(v) => self.on_vote(v, true),
                Message::Decision(_) => {}
            }
        }
    }

    fn propose(&mut self, block: BlockId, pol_round: Option<Round>) {
        let Some(me) = self.params.me else { return };
        let proposal = Proposal {
            height: self.height,
            round: self.round,
            block,
            pol_round,
            proposer: me,
        };
        let signature = self.signer.sign(Signable::Proposal(&proposal));
        let sp = SignedProposal {
            proposal,
            signature,
        };
        self.own
            .insert((self.round, Slot::Proposal), Signed::Proposal(sp.clone()));
        self.proposals.insert(self.round, sp.clone());
        self.out.push(Action::Persist(Signed::Proposal(sp.clone())));
        self.out.push(Action::Broadcast(Message::Proposal(sp)));
        self.relay_proof_of_lock(pol_round, block);
    }

    /// Sends the 2f+1 prevotes that justify re-proposing `block` from round `pol_round`, so
    /// validators that missed them can judge the proposal (line 28 needs them).
    fn relay_proof_of_lock(&mut self, pol_round: Option<Round>, block: BlockId) {
        let Some(vr) = pol_round else { return };
        let proof: Vec<Action> = self
            .votes
            .for_block(vr, VoteKind::Prevote, block)
            .into_iter()
            .map(|v| Action::Broadcast(Message::Vote(v.clone())))
            .collect();
        self.out.extend(proof);
    }

    /// Signs, records and sends this validator's vote — or, if it already signed one for this
    /// round and kind, sends that one again: a validator never signs two votes for one slot.
    fn vote(&mut self, kind: VoteKind, block: Option<BlockId>) {
        let Some(me) = self.params.me else { return };
        if let Some(signed) = self.own.get(&(self.round, kind.into())) {
            self.out.push(Action::Broadcast(signed.clone().into()));
            return;
        }
        let vote = Vote {
            height: self.height,
            round: self.round,
            kind,
            block,
            validator: me,
        };
        let signature = self.signer.sign(Signable::Vote(&vote));
        let sv = SignedVote { vote, signature };
        self.own
            .insert((self.round, kind.into()), Signed::Vote(sv.clone()));
        let _ = self.votes.add(sv.clone(), true);
        self.out.push(Action::Persist(Signed::Vote(sv.clone())));
        self.out.push(Action::Broadcast(Message::Vote(sv)));
    }

    // ---- helpers --------------------------------------------------------------------------

    /// Size of the set that decides `height` (this height's, or a later one the host told of).
    fn set_size_at(&self, height: Height) -> u32 {
        self.upcoming
            .range(..=height)
            .next_back()
            .filter(|_| height > self.height)
            .map_or(self.params.validators, |(_, s)| s.validators)
    }

    /// The proposer of `round` at `height`, in the set that decides `height`.
    fn proposer_at(&self, height: Height, round: Round) -> ValidatorIndex {
        ((height + u64::from(round)) % u64::from(self.set_size_at(height))) as ValidatorIndex
    }

    fn lock_allows(&self, block: BlockId, pol_round: Option<Round>) -> bool {
        #[cfg(feature = "sim")]
        if self.params.fault == Some(crate::params::InjectedFault::IgnoreLock) {
            return true;
        }
        safety::may_prevote(self.lock, block, pol_round)
    }

    fn authentic(
        &mut self,
        validator: ValidatorIndex,
        height: Height,
        what: Signable<'_>,
        signature: &Signature,
    ) -> bool {
        let ok = validator < self.set_size_at(height)
            && self.verifier.verify(validator, what, signature);
        if !ok {
            self.misbehaved(Misbehaviour::BadSignature { validator });
        }
        ok
    }

    /// True if `height` is the one being decided; notes validators that are ahead and asks one
    /// of them for the missing decision.
    fn at_my_height(&mut self, validator: ValidatorIndex, height: Height) -> bool {
        // An index of another set names another validator here, or none: a height beyond a
        // known set change says nothing about whom to ask.
        let same_set = height <= self.height
            || self
                .upcoming
                .range(self.height + 1..=height)
                .next()
                .is_none();
        if let (true, true, Some(h)) = (
            height > self.height,
            same_set,
            self.peer_height.get_mut(validator as usize),
        ) {
            *h = (*h).max(height);
            if self.sync_asked != Some(self.height) {
                self.sync_asked = Some(self.height);
                self.out.push(Action::RequestDecision {
                    from: validator,
                    height: self.height,
                });
            }
        }
        height == self.height
    }

    /// Notes that `validator` reached `round`; false if the round is too far ahead to store.
    fn note_round(&mut self, validator: ValidatorIndex, round: Round) -> bool {
        let seen = &mut self.seen_round[validator as usize];
        *seen = Some(seen.map_or(round, |s| s.max(round)));
        round <= self.round.saturating_add(ROUND_WINDOW)
    }

    fn tally(&mut self, sv: SignedVote) {
        let proposed = sv
            .vote
            .block
            .is_some_and(|b| self.proposals.values().any(|p| p.proposal.block == b));
        if let Added::Conflict(first) = self.votes.add(sv.clone(), proposed) {
            self.misbehaved(Misbehaviour::Equivocation {
                first: Box::new(Signed::Vote(*first)),
                second: Box::new(Signed::Vote(sv)),
            });
        }
    }

    fn request_validation(&mut self, block: BlockId, endorsed: bool) {
        if !self.validity.contains_key(&block) {
            self.out.push(Action::ValidateBlock {
                height: self.height,
                block,
                endorsed,
            });
        }
    }

    /// Keeps an authenticated message of the next height (bounded per sender).
    fn keep_for_next_height(&mut self, from: ValidatorIndex, msg: Message) {
        let kept = self.future.entry(from).or_default();
        if kept.len() < FUTURE_PER_VALIDATOR && !kept.contains(&msg) {
            kept.push(msg);
        }
    }

    /// True if the certificate holds a quorum of distinct validators' valid precommits.
    fn certificate_valid(&self, c: &Certificate) -> bool {
        let mut seen = BTreeSet::new();
        for (validator, signature) in &c.signatures {
            if *validator >= self.params.validators || !seen.insert(*validator) {
                return false;
            }
            let vote = Vote {
                height: c.height,
                round: c.round,
                kind: VoteKind::Precommit,
                block: Some(c.block),
                validator: *validator,
            };
            if !self
                .verifier
                .verify(*validator, Signable::Vote(&vote), signature)
            {
                return false;
            }
        }
        seen.len() >= self.params.quorum()
    }

    /// Asks a validator known to be ahead for the decision at this height. `rotate` picks the
    /// next such validator each time (for periodic retries).
    ///
    /// With none known to be ahead, the periodic retry still asks one validator of the set in
    /// turn when this validator is not a member (it sends nothing that would make others answer
    /// it) or made no progress since the previous retry: validators that decided this height
    /// and left the set with it send nothing more, so a validator that missed their votes
    /// learns the decision only by asking.
    fn ask_for_sync(&mut self, rotate: bool) {
        let mut ahead: Vec<ValidatorIndex> = (0..self.params.validators)
            .filter(|&v| self.peer_height[v as usize] > self.height)
            .collect();
        let mark = (self.height, self.round, self.step);
        let stuck = self.last_retry.replace(mark) == Some(mark);
        // Asking those seen ahead did not help (or none is): every other validator in turn.
        if rotate && (self.params.me.is_none() || stuck) {
            ahead = (0..self.params.validators)
                .filter(|&v| Some(v) != self.params.me)
                .collect();
        }
        if ahead.is_empty() {
            return;
        }
        if rotate {
            self.sync_turn = self.sync_turn.wrapping_add(1);
        }
        self.sync_asked = Some(self.height);
        self.out.push(Action::RequestDecision {
            from: ahead[self.sync_turn % ahead.len()],
            height: self.height,
        });
    }

    /// Re-sends this validator's votes of the current and previous round (validators still in
    /// the previous round need them to reach its timeouts) and its proposal of this round.
    fn resend_own(&mut self) {
        let r = self.round;
        let msgs: Vec<Message> = self
            .own
            .range((r.saturating_sub(1), Slot::Proposal)..=(r, Slot::Precommit))
            .filter(|(&(_, slot), _)| slot != Slot::Proposal)
            .map(|(_, s)| s.clone().into())
            .collect();
        self.out.extend(msgs.into_iter().map(Action::Broadcast));
        if let Some(p) = self.own.get(&(r, Slot::Proposal)) {
            if let Some(sp) = self
                .proposals
                .get(&r)
                .filter(|sp| Signed::Proposal((*sp).clone()) == *p)
            {
                let (pol_round, block) = (sp.proposal.pol_round, sp.proposal.block);
                self.out.push(Action::Broadcast(p.clone().into()));
                self.relay_proof_of_lock(pol_round, block);
            }
        }
    }

    fn schedule(&mut self, kind: TimeoutKind) {
        self.out.push(Action::ScheduleTimeout {
            timeout: Timeout {
                height: self.height,
                round: self.round,
                kind,
            },
            after_ms: self.params.timeouts.duration_ms(kind, self.round),
        });
    }

    fn misbehaved(&mut self, m: Misbehaviour) {
        self.out.push(Action::Misbehaviour(m));
    }
}
