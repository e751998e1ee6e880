//! A Byzantine validator, for tests of what honest validators survive. Built only with the
//! cargo feature `byzantine` (and in this crate's own tests): a release build has the type
//! [`Byzantine`] but every hook is the identity, and `quorate node run --byzantine` does not
//! exist.
//!
//! The hooks sit where a dishonest organisation would change its own node: the block it builds,
//! the messages it sends, the sync answers it gives. It signs only with its own key.

use quorate_proto::v1::{ConsensusMessage, DecisionRequest, DecisionResponse};
use quorate_proto::Keypair;

use crate::chain::Chain;
use crate::storage::ExecutedBlock;

#[cfg(any(test, feature = "byzantine"))]
mod behaviours;
#[cfg(any(test, feature = "byzantine"))]
pub use behaviours::Behaviour;

/// How this validator deviates from the protocol: not at all, unless built with the
/// `byzantine` feature and started with a behaviour.
#[derive(Clone, Debug, Default)]
pub struct Byzantine {
    #[cfg(any(test, feature = "byzantine"))]
    behaviour: Option<std::sync::Arc<behaviours::State>>,
}

impl Byzantine {
    /// A validator that follows the protocol.
    pub fn honest() -> Self {
        Self::default()
    }

    /// A validator that misbehaves as `behaviour` says.
    #[cfg(any(test, feature = "byzantine"))]
    pub fn new(behaviour: Behaviour) -> Self {
        Self {
            behaviour: Some(std::sync::Arc::new(behaviours::State::new(behaviour))),
        }
    }

    /// The behaviour, if any.
    #[cfg(any(test, feature = "byzantine"))]
    pub fn behaviour(&self) -> Option<Behaviour> {
        self.behaviour.as_ref().map(|s| s.behaviour)
    }

    /// How many times the behaviour changed what this node did (0 for an honest node).
    #[cfg(any(test, feature = "byzantine"))]
    pub fn acted(&self) -> u64 {
        self.behaviour.as_ref().map_or(0, |s| s.acted())
    }

    /// Tasks this validator runs besides its node's own (validator `me` of `validators`):
    /// none for an honest one.
    pub fn side_tasks(
        &self,
        network: &crate::network::NetworkHandle,
        validators: u32,
        me: u32,
    ) -> Vec<tokio::task::JoinHandle<()>> {
        #[cfg(any(test, feature = "byzantine"))]
        if let Some(s) = &self.behaviour {
            return behaviours::side_tasks(s, network, validators, me);
        }
        let _ = (network, validators, me);
        Vec::new()
    }

    /// The time this validator stamps on a block it builds.
    pub fn block_time(&self, now_ms: u64) -> u64 {
        #[cfg(any(test, feature = "byzantine"))]
        if let Some(s) = &self.behaviour {
            return s.block_time(now_ms);
        }
        now_ms
    }

    /// The block this validator proposes, given the one it built honestly.
    pub fn built(
        &self,
        block: ExecutedBlock,
        parent: Option<&std::sync::Arc<ExecutedBlock>>,
        chain: &Chain,
        key: &Keypair,
    ) -> ExecutedBlock {
        #[cfg(any(test, feature = "byzantine"))]
        if let Some(s) = &self.behaviour {
            return s.built(block, parent, chain, key);
        }
        let _ = (parent, chain, key);
        block
    }

    /// What this validator puts on the wire instead of `msg`.
    pub fn outgoing(
        &self,
        msg: ConsensusMessage,
        key: &Keypair,
        chain: &Chain,
    ) -> Vec<ConsensusMessage> {
        #[cfg(any(test, feature = "byzantine"))]
        if let Some(s) = &self.behaviour {
            return s.outgoing(msg, key, chain);
        }
        let _ = (key, chain);
        vec![msg]
    }

    /// What this validator publishes on receiving another validator's consensus message `m`
    /// (nothing, if it is honest: gossip passes messages on by itself).
    pub fn received(&self, m: &ConsensusMessage) -> Vec<ConsensusMessage> {
        #[cfg(any(test, feature = "byzantine"))]
        if let Some(s) = &self.behaviour {
            return s.received(m);
        }
        let _ = m;
        Vec::new()
    }

    /// The answer this validator gives to `peer`'s sync request, given the honest one
    /// (`snapshots`: the snapshots this node holds, for a liar that forges one).
    pub fn sync_answer(
        &self,
        peer: &libp2p::PeerId,
        request: &DecisionRequest,
        honest: DecisionResponse,
        snapshots: Option<&crate::snapshot::SnapshotStore>,
    ) -> DecisionResponse {
        #[cfg(any(test, feature = "byzantine"))]
        if let Some(s) = &self.behaviour {
            return s.sync_answer(peer, request, honest, snapshots);
        }
        let _ = (peer, request, snapshots);
        honest
    }

    /// False if this validator keeps the transactions its clients submit from the others.
    pub fn gossips_client_txs(&self) -> bool {
        #[cfg(any(test, feature = "byzantine"))]
        if let Some(s) = &self.behaviour {
            return s.gossips_client_txs();
        }
        true
    }
}
