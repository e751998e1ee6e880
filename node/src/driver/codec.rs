//! Conversions between the consensus core's types and their protobuf form (record entries,
//! and later the wire messages between validators).

use bytes::Bytes;
use quorate_consensus::{
    BlockId, Certificate, Message, Proposal, Signature, Signed, SignedProposal, SignedVote, Vote,
    VoteKind,
};
use quorate_proto::v1::{
    consensus_message, consensus_record::Entry, Block, CommitCertificate, CommitSignature,
    CompactBlock, ConsensusMessage, ConsensusProposal, ConsensusRecord, ConsensusVote,
    VoteKind as ProtoVoteKind,
};

/// A consensus message that does not decode into a well-formed value.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("malformed consensus message: {0}")]
pub struct CodecError(pub String);

fn block_id(bytes: &[u8], what: &str) -> Result<BlockId, CodecError> {
    <[u8; 32]>::try_from(bytes)
        .map(BlockId)
        .map_err(|_| CodecError(format!("{what} is {} bytes, not 32", bytes.len())))
}

/// The protobuf form of a signed proposal.
pub fn proposal_to_proto(p: &SignedProposal) -> ConsensusProposal {
    ConsensusProposal {
        height: p.proposal.height,
        round: p.proposal.round,
        block_hash: Bytes::copy_from_slice(&p.proposal.block.0),
        pol_round: p.proposal.pol_round,
        proposer: p.proposal.proposer,
        signature: Bytes::copy_from_slice(&p.signature.0),
    }
}

/// A signed proposal from its protobuf form.
pub fn proposal_from_proto(p: &ConsensusProposal) -> Result<SignedProposal, CodecError> {
    Ok(SignedProposal {
        proposal: Proposal {
            height: p.height,
            round: p.round,
            block: block_id(&p.block_hash, "proposal block hash")?,
            pol_round: p.pol_round,
            proposer: p.proposer,
        },
        signature: Signature(p.signature.to_vec()),
    })
}

/// The protobuf form of a signed vote.
pub fn vote_to_proto(v: &SignedVote) -> ConsensusVote {
    ConsensusVote {
        height: v.vote.height,
        round: v.vote.round,
        kind: match v.vote.kind {
            VoteKind::Prevote => ProtoVoteKind::Prevote,
            VoteKind::Precommit => ProtoVoteKind::Precommit,
        } as i32,
        block_hash: v
            .vote
            .block
            .map_or_else(Bytes::new, |b| Bytes::copy_from_slice(&b.0)),
        validator: v.vote.validator,
        signature: Bytes::copy_from_slice(&v.signature.0),
    }
}

/// A signed vote from its protobuf form.
pub fn vote_from_proto(v: &ConsensusVote) -> Result<SignedVote, CodecError> {
    let kind = match ProtoVoteKind::try_from(v.kind) {
        Ok(ProtoVoteKind::Prevote) => VoteKind::Prevote,
        Ok(ProtoVoteKind::Precommit) => VoteKind::Precommit,
        _ => return Err(CodecError(format!("unknown vote kind {}", v.kind))),
    };
    let block = if v.block_hash.is_empty() {
        None
    } else {
        Some(block_id(&v.block_hash, "vote block hash")?)
    };
    Ok(SignedVote {
        vote: Vote {
            height: v.height,
            round: v.round,
            kind,
            block,
            validator: v.validator,
        },
        signature: Signature(v.signature.to_vec()),
    })
}

/// What a record entry holds.
#[derive(Debug)]
pub enum RecordEntry {
    /// A signed message.
    Signed(Signed),
    /// The body of a block this validator precommitted.
    LockedBlock(Block),
}

/// The record entry for a signed message.
pub fn record_of_signed(s: &Signed) -> ConsensusRecord {
    ConsensusRecord {
        entry: Some(match s {
            Signed::Proposal(p) => Entry::Proposal(proposal_to_proto(p)),
            Signed::Vote(v) => Entry::Vote(vote_to_proto(v)),
        }),
    }
}

/// Decodes a record entry.
pub fn record_entry(r: ConsensusRecord) -> Result<RecordEntry, CodecError> {
    match r.entry {
        Some(Entry::Proposal(p)) => Ok(RecordEntry::Signed(Signed::Proposal(proposal_from_proto(
            &p,
        )?))),
        Some(Entry::Vote(v)) => Ok(RecordEntry::Signed(Signed::Vote(vote_from_proto(&v)?))),
        Some(Entry::LockedBlock(b)) => Ok(RecordEntry::LockedBlock(b)),
        None => Err(CodecError("empty record entry".into())),
    }
}

/// A commit certificate from its stored form.
pub fn certificate_from_proto(c: &CommitCertificate) -> Result<Certificate, CodecError> {
    Ok(Certificate {
        height: c.height,
        round: c.round,
        block: block_id(&c.block_hash, "certificate block hash")?,
        signatures: c
            .signatures
            .iter()
            .map(|s| (s.validator_index, Signature(s.signature.to_vec())))
            .collect(),
    })
}

/// The wire form of a consensus message (`None` for a decision, which travels by sync).
pub fn message_to_proto(m: &Message, body: Option<CompactBlock>) -> Option<ConsensusMessage> {
    let message = match m {
        Message::Proposal(p) => consensus_message::Message::Proposal(proposal_to_proto(p)),
        Message::Vote(v) => consensus_message::Message::Vote(vote_to_proto(v)),
        Message::Decision(_) => return None,
    };
    Some(ConsensusMessage {
        message: Some(message),
        compact_block: body,
    })
}

/// A consensus message from its wire form.
pub fn message_from_proto(m: &ConsensusMessage) -> Result<Message, CodecError> {
    match &m.message {
        Some(consensus_message::Message::Proposal(p)) => {
            Ok(Message::Proposal(proposal_from_proto(p)?))
        }
        Some(consensus_message::Message::Vote(v)) => Ok(Message::Vote(vote_from_proto(v)?)),
        None => Err(CodecError("empty consensus message".into())),
    }
}

/// The stored, client-checkable form of a commit certificate.
pub fn certificate_to_proto(c: &Certificate) -> CommitCertificate {
    CommitCertificate {
        height: c.height,
        round: c.round,
        block_hash: Bytes::copy_from_slice(&c.block.0),
        signatures: c
            .signatures
            .iter()
            .map(|(v, s)| CommitSignature {
                validator_index: *v,
                signature: Bytes::copy_from_slice(&s.0),
            })
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use prost::Message;

    #[test]
    fn record_entries_round_trip() {
        let vote = Signed::Vote(SignedVote {
            vote: Vote {
                height: 4,
                round: 2,
                kind: VoteKind::Prevote,
                block: None,
                validator: 3,
            },
            signature: Signature(vec![7; 64]),
        });
        let prop = Signed::Proposal(SignedProposal {
            proposal: Proposal {
                height: 4,
                round: 3,
                block: BlockId([5; 32]),
                pol_round: Some(2),
                proposer: 1,
            },
            signature: Signature(vec![8; 64]),
        });
        for s in [vote, prop] {
            let bytes = record_of_signed(&s).encode_to_vec();
            let back = record_entry(ConsensusRecord::decode(bytes.as_slice()).expect("decodes"));
            assert!(matches!(back, Ok(RecordEntry::Signed(b)) if b == s));
        }
        let bad = ConsensusVote {
            kind: 9,
            ..Default::default()
        };
        assert!(vote_from_proto(&bad).is_err());
        let short = ConsensusProposal {
            block_hash: Bytes::from_static(&[1, 2]),
            ..Default::default()
        };
        assert!(proposal_from_proto(&short).is_err());
    }
}
