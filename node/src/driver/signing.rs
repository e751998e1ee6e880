//! What a validator's consensus signatures cover, and ed25519 signing and checking of them.
//!
//! A precommit for a block is signed over the client-checkable commit message
//! ([`quorate_proto::certificate::commit_message`]), so 2f+1 precommits are a commit
//! certificate as they are. Every other message has its own domain tag, so no signature can be
//! replayed as another kind of message, on another chain, height or round.

use std::sync::Arc;

use quorate_consensus::{Signable, Signature, Signer, ValidatorIndex, Verifier, VoteKind};
use quorate_proto::certificate::commit_message;
use quorate_proto::{Hash32, Keypair};

use crate::validator_sets::ValidatorSets;

/// Domain tag of proposals.
pub const PROPOSAL_DOMAIN: &[u8] = b"quorate/v1/proposal\0";
/// Domain tag of prevotes.
pub const PREVOTE_DOMAIN: &[u8] = b"quorate/v1/prevote\0";
/// Domain tag of nil precommits.
pub const NIL_PRECOMMIT_DOMAIN: &[u8] = b"quorate/v1/precommit-nil\0";

fn prefix(domain: &[u8], chain_id: &str, height: u64, round: u32) -> Vec<u8> {
    let mut m = Vec::with_capacity(domain.len() + 2 + chain_id.len() + 8 + 4 + 1 + 32 + 5);
    m.extend_from_slice(domain);
    // chain_id is bounded by genesis validation to fit in u16.
    m.extend_from_slice(&(chain_id.len() as u16).to_be_bytes());
    m.extend_from_slice(chain_id.as_bytes());
    m.extend_from_slice(&height.to_be_bytes());
    m.extend_from_slice(&round.to_be_bytes());
    m
}

/// The bytes signed for `what` on `chain_id`.
pub fn signing_message(chain_id: &str, what: Signable<'_>) -> Vec<u8> {
    match what {
        Signable::Proposal(p) => {
            let mut m = prefix(PROPOSAL_DOMAIN, chain_id, p.height, p.round);
            m.extend_from_slice(&p.block.0);
            match p.pol_round {
                Some(vr) => {
                    m.push(1);
                    m.extend_from_slice(&vr.to_be_bytes());
                }
                None => m.push(0),
            }
            m
        }
        Signable::Vote(v) => match (v.kind, v.block) {
            (VoteKind::Precommit, Some(b)) => {
                commit_message(chain_id, v.height, v.round, &Hash32(b.0))
            }
            (VoteKind::Precommit, None) => {
                prefix(NIL_PRECOMMIT_DOMAIN, chain_id, v.height, v.round)
            }
            (VoteKind::Prevote, block) => {
                let mut m = prefix(PREVOTE_DOMAIN, chain_id, v.height, v.round);
                match block {
                    Some(b) => {
                        m.push(1);
                        m.extend_from_slice(&b.0);
                    }
                    None => m.push(0),
                }
                m
            }
        },
    }
}

/// Signs consensus messages with the validator's key.
pub struct ConsensusSigner {
    /// Chain id.
    pub chain_id: String,
    /// The validator's key.
    pub key: Keypair,
}

impl Signer for ConsensusSigner {
    fn sign(&self, what: Signable<'_>) -> Signature {
        Signature(
            self.key
                .sign(&signing_message(&self.chain_id, what))
                .to_vec(),
        )
    }
}

/// Checks consensus signatures against the validator set deciding each message's height.
pub struct ConsensusVerifier {
    /// Chain id.
    pub chain_id: String,
    /// The chain's validator sets (with the signatures found good against them).
    pub sets: Arc<ValidatorSets>,
}

impl Verifier for ConsensusVerifier {
    fn verify(&self, validator: ValidatorIndex, what: Signable<'_>, signature: &Signature) -> bool {
        self.sets
            .at(what.height())
            .set
            .keys()
            .get(validator as usize)
            .is_some_and(|k| {
                self.sets
                    .verified()
                    .verify(k, &signing_message(&self.chain_id, what), &signature.0)
            })
    }
}

/// The network's check of a gossiped proposal or vote (see
/// [`crate::network::SignatureCheck`]): stale if it is for a height `chain` has committed (not
/// verified), otherwise its signer's index if the signature verifies against the set of its
/// height.
pub fn signature_check(chain: &Arc<crate::chain::Chain>) -> crate::network::SignatureCheck {
    let c = chain.clone();
    check_against(
        &chain.info().chain_id,
        chain.sets().clone(),
        Arc::new(move || c.head().height),
    )
}

/// [`signature_check`] with the sets and the committed height given apart.
pub fn check_against(
    chain_id: &str,
    sets: Arc<ValidatorSets>,
    committed: Arc<dyn Fn() -> u64 + Send + Sync>,
) -> crate::network::SignatureCheck {
    use crate::network::Unchecked;
    let verifier = ConsensusVerifier {
        chain_id: chain_id.to_owned(),
        sets,
    };
    Arc::new(move |m| {
        let msg = super::codec::message_from_proto(m).map_err(|e| e.to_string())?;
        let height = match &msg {
            quorate_consensus::Message::Proposal(p) => p.proposal.height,
            quorate_consensus::Message::Vote(v) => v.vote.height,
            quorate_consensus::Message::Decision(c) => c.height,
        };
        if height <= committed() {
            return Err(Unchecked::Stale);
        }
        let (signer, ok) = match &msg {
            quorate_consensus::Message::Proposal(p) => (
                p.proposal.proposer,
                verifier.verify(
                    p.proposal.proposer,
                    Signable::Proposal(&p.proposal),
                    &p.signature,
                ),
            ),
            quorate_consensus::Message::Vote(v) => (
                v.vote.validator,
                verifier.verify(v.vote.validator, Signable::Vote(&v.vote), &v.signature),
            ),
            quorate_consensus::Message::Decision(_) => {
                return Err(Unchecked::Invalid("decisions are not gossiped".into()))
            }
        };
        if ok {
            Ok(signer)
        } else {
            Err(Unchecked::Invalid(format!(
                "signature of validator {signer} does not verify"
            )))
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use quorate_consensus::{BlockId, Certificate, Proposal, Vote};
    use quorate_proto::certificate::verify_certificate;
    use quorate_proto::certificate::ValidatorSet;
    use quorate_proto::v1::{CommitCertificate, CommitSignature};

    fn set(n: u8) -> (Vec<Keypair>, ValidatorSet) {
        let keys: Vec<Keypair> = (0..n).map(|i| Keypair::from_secret(&[i + 7; 32])).collect();
        let vs = ValidatorSet::new(keys.iter().map(Keypair::public).collect());
        (keys, vs)
    }

    /// Review of issue 24: a liar replaying a validator's genuine old votes made the network
    /// queue them under that validator. A message for a committed height is stale: dropped
    /// before its signature is checked, not held against whoever sent it.
    #[test]
    fn messages_of_a_committed_height_are_stale_before_their_signature_is_checked() {
        use crate::network::Unchecked;
        let (keys, vs) = set(4);
        let check = check_against("c", Arc::new(ValidatorSets::fixed(&vs)), Arc::new(|| 5));
        let message = |height: u64, key: &Keypair| {
            let vote = Vote {
                height,
                round: 0,
                kind: VoteKind::Prevote,
                block: None,
                validator: 1,
            };
            let signature = ConsensusSigner {
                chain_id: "c".into(),
                key: key.clone(),
            }
            .sign(Signable::Vote(&vote));
            quorate_proto::v1::ConsensusMessage {
                message: Some(quorate_proto::v1::consensus_message::Message::Vote(
                    super::super::codec::vote_to_proto(&quorate_consensus::SignedVote {
                        vote,
                        signature,
                    }),
                )),
                compact_block: None,
            }
        };
        // Genuine, but old: stale. Forged and old: stale too (never verified).
        assert_eq!(check(&message(5, &keys[1])), Err(Unchecked::Stale));
        assert_eq!(check(&message(2, &keys[3])), Err(Unchecked::Stale));
        // The height being decided: checked.
        assert_eq!(check(&message(6, &keys[1])), Ok(1));
        assert!(matches!(
            check(&message(6, &keys[3])),
            Err(Unchecked::Invalid(_))
        ));
    }

    #[test]
    fn precommits_are_client_checkable_certificate_signatures() {
        let (keys, vs) = set(4);
        let block = BlockId([9; 32]);
        let cert = Certificate {
            height: 3,
            round: 2,
            block,
            signatures: (0..3u32)
                .map(|i| {
                    let signer = ConsensusSigner {
                        chain_id: "c".into(),
                        key: keys[i as usize].clone(),
                    };
                    let vote = Vote {
                        height: 3,
                        round: 2,
                        kind: VoteKind::Precommit,
                        block: Some(block),
                        validator: i,
                    };
                    (i, signer.sign(Signable::Vote(&vote)))
                })
                .collect(),
        };
        let proto = CommitCertificate {
            height: cert.height,
            round: cert.round,
            block_hash: bytes::Bytes::copy_from_slice(&block.0),
            signatures: cert
                .signatures
                .iter()
                .map(|(i, s)| CommitSignature {
                    validator_index: *i,
                    signature: bytes::Bytes::copy_from_slice(&s.0),
                })
                .collect(),
        };
        assert_eq!(
            verify_certificate(&proto, "c", &vs, 3, &Hash32(block.0)),
            Ok(())
        );
    }

    #[test]
    fn signatures_do_not_transfer_between_kinds_chains_or_signers() {
        let (keys, vs) = set(4);
        let signer = ConsensusSigner {
            chain_id: "c".into(),
            key: keys[1].clone(),
        };
        let verifier = ConsensusVerifier {
            chain_id: "c".into(),
            sets: Arc::new(ValidatorSets::fixed(&vs)),
        };
        let p = Proposal {
            height: 1,
            round: 0,
            block: BlockId([1; 32]),
            pol_round: None,
            proposer: 1,
        };
        let sig = signer.sign(Signable::Proposal(&p));
        assert!(verifier.verify(1, Signable::Proposal(&p), &sig));
        assert!(!verifier.verify(2, Signable::Proposal(&p), &sig));
        let repro = Proposal {
            pol_round: Some(0),
            round: 1,
            ..p
        };
        assert!(!verifier.verify(1, Signable::Proposal(&repro), &sig));
        let prevote = Vote {
            height: 1,
            round: 0,
            kind: VoteKind::Prevote,
            block: Some(p.block),
            validator: 1,
        };
        let vsig = signer.sign(Signable::Vote(&prevote));
        assert!(verifier.verify(1, Signable::Vote(&prevote), &vsig));
        let precommit = Vote {
            kind: VoteKind::Precommit,
            ..prevote
        };
        assert!(!verifier.verify(1, Signable::Vote(&precommit), &vsig));
        let other_chain = ConsensusVerifier {
            chain_id: "d".into(),
            sets: Arc::new(ValidatorSets::fixed(&vs)),
        };
        assert!(!other_chain.verify(1, Signable::Vote(&prevote), &vsig));
    }
}
