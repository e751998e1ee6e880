//! Quorate's agreement protocol: Tendermint-style threshold BFT (n = 3f+1, quorums of 2f+1) on
//! pre-processed blocks, written as a pure state machine — messages, timer expiries and host
//! answers in; actions out. It does no I/O, reads no clock and draws no randomness, so the
//! node drives it over the network and the simulator (feature `sim`) drives it under faults.
//!
//! See `README.md` in this crate for the protocol, its safety argument, the persisted record
//! and the invariants the simulator checks.

#![forbid(unsafe_code)]

mod machine;
mod params;
pub mod safety;
mod types;
mod votes;

#[cfg(feature = "sim")]
pub mod sim;

pub use machine::{Action, Consensus, Input, Misbehaviour, Step, MIN_SET_DELAY, ROUND_WINDOW};
#[cfg(feature = "sim")]
pub use params::InjectedFault;
pub use params::{Params, Timeout, TimeoutKind, Timeouts};
pub use types::{
    BlockId, Certificate, Height, Message, Proposal, Round, Signable, Signature, Signed,
    SignedProposal, SignedVote, Signer, ValidatorIndex, Verifier, Vote, VoteKind,
};
