//! The protocol's vocabulary: identifiers, proposals, votes, certificates, and the signing
//! interface the host provides.

use std::fmt;

/// Block height; the first block after genesis is height 1.
pub type Height = u64;
/// Round within a height; starts at 0.
pub type Round = u32;
/// Position of a validator in the genesis validator set.
pub type ValidatorIndex = u32;

/// Hash of a block header: what validators vote on.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct BlockId(pub [u8; 32]);

impl fmt::Debug for BlockId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for b in &self.0[..6] {
            write!(f, "{b:02x}")?;
        }
        Ok(())
    }
}

impl fmt::Display for BlockId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self, f)
    }
}

/// A signature, opaque to the protocol (ed25519 in the node, a keyed hash in the simulator).
#[derive(Clone, PartialEq, Eq, Debug, Hash)]
pub struct Signature(pub Vec<u8>);

/// The two votes of a round.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Debug)]
pub enum VoteKind {
    /// First-phase vote: "this proposal is valid and I am free to support it".
    Prevote,
    /// Second-phase vote: "2f+1 prevoted this block"; 2f+1 precommits make it final.
    Precommit,
}

/// A vote for a block, or for nothing (`block == None`, "nil").
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub struct Vote {
    /// Height voted at.
    pub height: Height,
    /// Round voted in.
    pub round: Round,
    /// Prevote or precommit.
    pub kind: VoteKind,
    /// The block, or `None` for nil.
    pub block: Option<BlockId>,
    /// Who votes.
    pub validator: ValidatorIndex,
}

/// A vote with its signature.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct SignedVote {
    /// The vote.
    pub vote: Vote,
    /// Signature by `vote.validator` over [`Signable::Vote`].
    pub signature: Signature,
}

/// A proposer's offer of a block for a height and round.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub struct Proposal {
    /// Height proposed for.
    pub height: Height,
    /// Round proposed in.
    pub round: Round,
    /// The block (its body travels beside the message, held by the host).
    pub block: BlockId,
    /// The round in which 2f+1 prevoted this block, if it is re-proposed ("proof of lock").
    pub pol_round: Option<Round>,
    /// The round's proposer.
    pub proposer: ValidatorIndex,
}

/// A proposal with its signature.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct SignedProposal {
    /// The proposal.
    pub proposal: Proposal,
    /// Signature by `proposal.proposer` over [`Signable::Proposal`].
    pub signature: Signature,
}

/// Proof that a block is final: 2f+1 precommit signatures for it at one round.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct Certificate {
    /// Height of the block.
    pub height: Height,
    /// Round of the precommits.
    pub round: Round,
    /// The block.
    pub block: BlockId,
    /// `(validator, precommit signature)`, sorted by validator, no duplicates.
    pub signatures: Vec<(ValidatorIndex, Signature)>,
}

/// What one validator signs and persists before sending.
#[derive(Clone, PartialEq, Eq, Debug)]
pub enum Signed {
    /// A proposal it made.
    Proposal(SignedProposal),
    /// A vote it cast.
    Vote(SignedVote),
}

impl Signed {
    /// Height the message belongs to.
    pub fn height(&self) -> Height {
        match self {
            Signed::Proposal(p) => p.proposal.height,
            Signed::Vote(v) => v.vote.height,
        }
    }
}

/// A message between validators.
#[derive(Clone, PartialEq, Eq, Debug)]
pub enum Message {
    /// A proposal (the host carries the block body with it).
    Proposal(SignedProposal),
    /// A vote.
    Vote(SignedVote),
    /// A committed block's certificate, sent to a validator that is behind (the host carries the
    /// block body with it).
    Decision(Certificate),
}

impl From<Signed> for Message {
    fn from(s: Signed) -> Self {
        match s {
            Signed::Proposal(p) => Message::Proposal(p),
            Signed::Vote(v) => Message::Vote(v),
        }
    }
}

/// The statement a signature covers.
#[derive(Clone, Copy, Debug)]
pub enum Signable<'a> {
    /// A proposal.
    Proposal(&'a Proposal),
    /// A vote. A precommit for a block must be signed so that it verifies as a commit
    /// certificate signature for that block (the node uses the client-checkable commit message).
    Vote(&'a Vote),
}

impl Signable<'_> {
    /// The height the statement is about (whose validator set must have signed it).
    pub fn height(&self) -> Height {
        match self {
            Signable::Proposal(p) => p.height,
            Signable::Vote(v) => v.height,
        }
    }
}

/// Signs for this validator. Deterministic; no I/O.
pub trait Signer {
    /// Signs `what`.
    fn sign(&self, what: Signable<'_>) -> Signature;
}

/// Checks signatures of the validator set. Deterministic; no I/O.
pub trait Verifier {
    /// True if `signature` is `validator`'s signature over `what`.
    fn verify(&self, validator: ValidatorIndex, what: Signable<'_>, signature: &Signature) -> bool;
}
