//! Joining by state sync: a validator that starts with no data asks the other validators for
//! their latest snapshot, checks the manifests against the chain (certificate from the
//! validator set, chunks summing to the certified state root), and fetches the chunks of the
//! highest one from every validator that offers it, a few at a time. Each chunk is checked on
//! arrival; one that fails its check is asked of another validator, and a validator that keeps
//! sending bad ones is no longer asked. The node then opens the imported state and catches up
//! by blocks from the snapshot's height.

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::path::Path;
use std::time::Duration;

// The tokio clock: paused in tests, the wall clock otherwise.
use tokio::time::Instant;

use quorate_proto::certificate::ValidatorSet;
use quorate_proto::crypto::Hash32;
use quorate_proto::PublicKey;

use quorate_proto::v1::DecisionResponse;

use crate::network::inbox::Inbox;
use crate::network::{ConsensusEvent, NetworkHandle};
use crate::snapshot::{
    manifest_identity, verify_manifest, ImportSummary, Restore, SnapshotError, VerifiedManifest,
};

/// How long a joining node waits for the other validators to connect.
const CONNECT_WAIT: Duration = Duration::from_secs(15);
/// How long it waits for their manifests once asked.
const MANIFEST_WAIT: Duration = Duration::from_secs(5);
/// How long it waits before asking again when too few validators answered.
const ASK_AGAIN: Duration = Duration::from_secs(5);
/// Chunk requests in flight at once.
const IN_FLIGHT: usize = 4;
/// Bad or failed answers after which a validator is no longer asked for chunks.
const STRIKES: u32 = 3;
/// Verified manifests remembered across rounds of asking (then forgotten all at once).
const KNOWN_MANIFESTS: usize = 64;
/// Longest wait for the answer to one chunk request (libp2p's request timeout, 10 s, normally
/// answers first with a failure).
const ANSWER_WAIT: Duration = Duration::from_secs(30);

/// Why state sync failed.
#[derive(Debug, thiserror::Error)]
pub enum StateSyncError {
    /// The snapshot could not be checked or written.
    #[error(transparent)]
    Snapshot(#[from] SnapshotError),
    /// No validator that offered the snapshot could deliver a good copy of a chunk.
    #[error("state sync of height {height}: no validator delivered a good copy of chunk {chunk}; restart to try again, or import a snapshot file (quorate snapshot import)")]
    Exhausted {
        /// Snapshot height.
        height: u64,
        /// The chunk.
        chunk: u32,
    },
    /// A blocking task failed.
    #[error("state sync task: {0}")]
    Task(String),
}

/// What a joining node listens to: the answers it gets, and the requests of other validators,
/// which it answers with nothing (it holds nothing yet, and a validator also joining must not
/// wait for it).
pub struct Channels<'a> {
    /// The network.
    pub net: &'a NetworkHandle,
    /// Answers to its requests (and consensus messages, dropped meanwhile).
    pub inbox: &'a Inbox<ConsensusEvent>,
    /// Other validators' sync requests.
    pub requests: &'a mut crate::network::SyncRequests,
}

impl Channels<'_> {
    async fn next(&mut self) -> ConsensusEvent {
        loop {
            tokio::select! {
                event = self.inbox.pop() => return event,
                Some(r) = self.requests.recv() => {
                    self.net.respond(r, DecisionResponse { joining: true, ..Default::default() });
                }
            }
        }
    }
}

/// The chain a joining node belongs to.
pub struct JoinTarget<'a> {
    /// Chain id.
    pub chain_id: &'a str,
    /// Genesis hash.
    pub genesis_hash: Hash32,
    /// The validators (whose certificates make a snapshot's height final).
    pub validators: &'a ValidatorSet,
    /// This node's index among them.
    pub local: Option<u32>,
    /// The operator's trust anchor, if any: snapshots that do not descend from it are refused.
    pub anchor: Option<crate::snapshot::TrustAnchor>,
    /// The peers configured by identity (`p2p.peers`): asked beside the genesis validators, so
    /// a node whose genesis validators were all replaced reaches today's.
    pub peers: &'a [PublicKey],
}

impl JoinTarget<'_> {
    /// Who is asked, by request index: the genesis validators (their indices), then the
    /// configured peers outside the genesis set.
    fn sources(&self) -> Vec<PublicKey> {
        let mut sources = self.validators.keys().to_vec();
        for k in self.peers {
            if !sources.contains(k) {
                sources.push(*k);
            }
        }
        sources
    }

    /// Whether this node is the only validator of the genesis set and has peers configured:
    /// the chain has grown (OPERATING §6c), and with no data, opening it at genesis would mean
    /// deciding block 1 alone.
    fn alone(&self) -> bool {
        self.validators.len() == 1 && self.local.is_some() && !self.peers.is_empty()
    }
}

/// Fetches the latest snapshot the other validators offer into the empty database directory
/// `target`. `Ok(None)` when none offers one (a new chain: the node starts from genesis).
pub async fn run(
    io: &mut Channels<'_>,
    chain: &JoinTarget<'_>,
    target: &Path,
) -> Result<Option<ImportSummary>, StateSyncError> {
    let sources = chain.sources();
    io.net.set_request_targets(&sources);
    let others: Vec<u32> = (0..sources.len() as u32)
        .filter(|i| Some(*i) != chain.local)
        .collect();
    let started = Instant::now();
    // Every other validator connected, or at least one and a moment for the rest.
    while started.elapsed() < CONNECT_WAIT {
        let connected = io.net.connected_validators();
        if connected == others.len()
            || (connected > 0 && started.elapsed() > Duration::from_secs(2))
        {
            break;
        }
        // Answering the requests of validators joining at the same time meanwhile.
        let _ = tokio::time::timeout(Duration::from_millis(100), io.next()).await;
    }
    // Manifests already verified, by identity (kept across rounds).
    let mut known = HashMap::new();
    let candidates = loop {
        let (candidates, answers) =
            offered_snapshots(io, chain, &sources, &others, &mut known).await;
        if !candidates.is_empty() {
            break candidates;
        }
        // No answer is not "no snapshot" (issue 25): a node that took silence, an unreachable
        // peer or an answer over the message limit for a new chain started at genesis, and
        // with its data directory no longer empty never tried again.
        match new_chain(&answers, chain) {
            // The only genesis validator with peers configured (OPERATING §6c lists the other
            // validators there once the chain has grown) never opens the chain at genesis: it
            // would decide block 1 alone (issue 25: one that lost its data signed a second
            // block 1). A peer's "no block 1" proves nothing: it may have lost its data too.
            Some(_) if chain.alone() => tracing::warn!(
                "state sync: this validator alone makes up the genesis set, its data directory is empty and p2p.peers is set, so the chain has grown: it joins from a peer's snapshot and never decides the chain again from genesis; waiting for a peer to offer one (on a stopped peer `quorate snapshot export` takes one of its head; then `quorate snapshot import` here)"
            ),
            Some(why) => {
                tracing::info!(why, "state sync: a new chain; starting from genesis");
                return Ok(None);
            }
            None => tracing::warn!(
                none = answers.none,
                joining = answers.joining,
                needed = genesis_start_quorum(chain.validators),
                anchor = chain.anchor.is_some(),
                "state sync: no snapshot to take, and too few validators answered to tell a new chain from an unreachable one; asking again"
            ),
        }
        // Answering other joiners meanwhile (their answers to this node are stale by then).
        let until = Instant::now() + ASK_AGAIN;
        while tokio::time::timeout_at(until, io.next()).await.is_ok() {}
    };
    let mut last = None;
    for (verified, offered_by) in candidates {
        tracing::info!(
            height = verified.height(),
            chunks = verified.chunk_count(),
            set_changes = verified.manifest.set_changes.len(),
            sources = ?offered_by,
            vouching = vouching(&offered_by, &sources, &verified.validators).0,
            "state sync: fetching a snapshot"
        );
        let restore = Restore::begin(target, verified)?;
        match fetch_chunks(io, restore, offered_by).await {
            Ok(summary) => return Ok(Some(summary)),
            // The validators offering it could not deliver it: the next snapshot offered.
            Err(e @ StateSyncError::Exhausted { .. }) => {
                tracing::warn!(error = %e, "state sync: trying the next snapshot offered");
                last = Some(e);
            }
            Err(e) => return Err(e),
        }
    }
    Err(last.expect("at least one snapshot was tried"))
}

/// How many validators holding a chain must say they hold no snapshot for a joining node to
/// start from genesis: f + 1 of the genesis set (one of them honest), and at least one.
fn genesis_start_quorum(genesis: &ValidatorSet) -> usize {
    genesis.max_faulty() + 1
}

/// What the validators asked answered, besides snapshots.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct Answers {
    /// Validators holding a chain that hold no snapshot (a young chain).
    none: usize,
    /// Validators that are joining themselves (they hold no chain).
    joining: usize,
}

/// Whether a joining node that was offered no snapshot may open the chain at genesis (and
/// then catch up by blocks from whoever holds it), and why. Never with a trust anchor, which
/// names a height the chain has reached. A genesis validator may: the validators of a new
/// chain start one after another, the first with no one to answer, and one that lost its data
/// cannot decide alone (a one-validator genesis skips state sync). A node that joins later
/// (not in the genesis set) may only on answers (issue 25: it took silence for a new chain and
/// stayed at genesis for good): f + 1 validators holding a chain say it is young, or every
/// other genesis validator answered that it holds no snapshot or is joining too.
fn new_chain(answers: &Answers, chain: &JoinTarget<'_>) -> Option<&'static str> {
    let others = chain.validators.len() - usize::from(chain.local.is_some());
    if chain.anchor.is_some() {
        return None;
    }
    if chain.local.is_some() {
        Some("a genesis validator offered no snapshot")
    } else if answers.none >= genesis_start_quorum(chain.validators) {
        Some("f + 1 validators hold no snapshot yet")
    } else if answers.none + answers.joining == others {
        Some("every genesis validator holds no snapshot or is joining too")
    } else {
        None
    }
}

/// Asks each source in `others` (indices in `sources`) for its latest manifest; returns those
/// that check out, each with the sources that offered it, best first, and how many genesis
/// validators answered that they hold no snapshot or are joining (a failed or missing answer
/// is neither, and a configured peer's answer counts only as an offer): the snapshots that
/// f + 1 validators offer (so at least one honest validator can deliver them), highest first,
/// then the others, highest first. A Byzantine validator offering a newer snapshot it will not deliver thus
/// cannot keep a node from joining.
async fn offered_snapshots(
    io: &mut Channels<'_>,
    chain: &JoinTarget<'_>,
    sources: &[PublicKey],
    others: &[u32],
    known: &mut HashMap<Hash32, VerifiedManifest>,
) -> (Vec<(VerifiedManifest, Vec<u32>)>, Answers) {
    let genesis = chain.validators.len() as u32;
    for &v in others {
        io.net.request_snapshot(v, 0, None);
    }
    let deadline = tokio::time::Instant::now() + MANIFEST_WAIT;
    let mut waiting: HashSet<u32> = others.iter().copied().collect();
    // (Height, manifest identity) → (manifest, who offered it).
    let mut offered: BTreeMap<(u64, Hash32), (VerifiedManifest, Vec<u32>)> = BTreeMap::new();
    let mut answers = Answers::default();
    while !waiting.is_empty() {
        let Ok(event) = tokio::time::timeout_at(deadline, io.next()).await else {
            break;
        };
        let ConsensusEvent::Snapshot {
            from,
            chunk: None,
            response,
            ..
        } = event
        else {
            continue;
        };
        if !waiting.remove(&from) {
            continue;
        }
        let Some(response) = response else {
            tracing::info!(from, "state sync: no answer from a validator");
            continue;
        };
        if response.joining {
            tracing::info!(from, "state sync: validator is joining too");
            answers.joining += usize::from(from < genesis);
            continue;
        }
        let Some(manifest) = response.snapshot_manifest else {
            tracing::info!(from, "state sync: validator offers no snapshot");
            answers.none += usize::from(from < genesis);
            continue;
        };
        tracing::info!(
            from,
            height = manifest.height,
            "state sync: snapshot offered"
        );
        // The same snapshot whatever certificates each validator holds.
        let id = manifest_identity(&manifest);
        // A snapshot already checked (this round or an earlier one) is not checked again: a
        // copy with the same identity names the same chunks, which are checked on arrival
        // against the verified manifest (a copy's own certificates add nothing; a liar could
        // send the verified one verbatim anyway). Refusals are not remembered, so a forged
        // copy never shadows an honest one.
        let verified = match known.get(&id) {
            Some(v) => Ok(v.clone()),
            None => verify_manifest(
                manifest,
                chain.chain_id,
                &chain.genesis_hash,
                chain.validators,
            )
            .and_then(|v| match &chain.anchor {
                Some(a) => v.check_anchor(chain.validators, a).map(|()| v),
                None => Ok(v),
            }),
        };
        match verified {
            Ok(v) => {
                if known.len() >= KNOWN_MANIFESTS {
                    known.clear();
                }
                known.entry(id).or_insert_with(|| v.clone());
                offered
                    .entry((v.height(), id))
                    .or_insert_with(|| (v, Vec::new()))
                    .1
                    .push(from);
            }
            Err(e) => tracing::warn!(from, error = %e, "state sync: manifest refused"),
        }
    }
    if !waiting.is_empty() {
        tracing::info!(unanswered = ?waiting, "state sync: validators did not answer in time");
    }
    let mut candidates: Vec<(VerifiedManifest, Vec<u32>)> = offered.into_values().collect();
    for (_, from) in &mut candidates {
        // Asked in validator order, whoever answered first.
        from.sort_unstable();
    }
    let order = rank(
        &candidates
            .iter()
            .map(|(v, from)| {
                let (count, needed) = vouching(from, sources, &v.validators);
                // Ties go by a draw of this node's, not by the manifest's hash, which the
                // one who made it could grind to be tried first (issue 25).
                (v.height(), count, needed, rand::random::<u64>())
            })
            .collect::<Vec<_>>(),
    );
    let mut slots: Vec<Option<_>> = candidates.into_iter().map(Some).collect();
    (
        order.into_iter().filter_map(|i| slots[i].take()).collect(),
        answers,
    )
}

/// How many of the sources that offered a snapshot (`offered_by`, indices in `asked`) are
/// validators of the set in force at its height, and how many of those make f + 1 of that
/// set (so that one of them at least is honest): the vouching is counted in the set that
/// certified the snapshot, not in the genesis set (issue 25).
fn vouching(offered_by: &[u32], asked: &[PublicKey], in_force: &ValidatorSet) -> (usize, usize) {
    let count = offered_by
        .iter()
        .filter_map(|i| asked.get(*i as usize))
        .filter(|k| in_force.index_of(k).is_some())
        .count();
    (count, in_force.max_faulty() + 1)
}

/// The order in which to try snapshots offered as (height, vouching validators, how many make
/// f + 1, a draw of this node's): those vouched for by f + 1 validators first, then the rest;
/// within each, highest first, then the most offered, then by the draw.
fn rank(offers: &[(u64, usize, usize, u64)]) -> Vec<usize> {
    let mut order: Vec<usize> = (0..offers.len()).collect();
    order.sort_by_key(|&i| {
        let (height, count, needed, draw) = offers[i];
        std::cmp::Reverse((count >= needed, height, count, draw))
    });
    order
}

/// Fetches every chunk of `restore`'s snapshot from `sources`, checks and writes each.
async fn fetch_chunks(
    io: &mut Channels<'_>,
    mut restore: Restore,
    mut sources: Vec<u32>,
) -> Result<ImportSummary, StateSyncError> {
    let height = restore.manifest().height();
    let total = restore.manifest().chunk_count();
    let mut queue: VecDeque<u32> = (0..total as u32).collect();
    // Chunk → the validator asked for it, and until when its answer is awaited.
    let mut in_flight: HashMap<u32, (u32, Instant)> = HashMap::new();
    // Chunk → validators that failed to deliver it.
    let mut failed: HashMap<u32, HashSet<u32>> = HashMap::new();
    let mut strikes: HashMap<u32, u32> = HashMap::new();
    let mut next_source = 0usize;
    let mut done = 0usize;
    while done < total {
        while in_flight.len() < IN_FLIGHT {
            let Some(chunk) = queue.pop_front() else {
                break;
            };
            let tried = failed.get(&chunk);
            let pick = (0..sources.len())
                .map(|k| sources[(next_source + k) % sources.len()])
                .find(|v| !tried.is_some_and(|t| t.contains(v)));
            let Some(source) = pick else {
                restore.abandon();
                return Err(StateSyncError::Exhausted { height, chunk });
            };
            next_source = next_source.wrapping_add(1);
            io.net.request_snapshot(source, height, Some(chunk));
            in_flight.insert(chunk, (source, Instant::now() + ANSWER_WAIT));
        }
        // An answer, or a request whose answer is overdue (its request may never have left).
        let answer = match tokio::time::timeout(Duration::from_secs(1), io.next()).await {
            Ok(ConsensusEvent::Snapshot {
                from,
                height: h,
                chunk: Some(chunk),
                response,
            }) if h == height && in_flight.get(&chunk).map(|f| f.0) == Some(from) => {
                Some((chunk, from, response))
            }
            _ => {
                let now = Instant::now();
                in_flight
                    .iter()
                    .find(|(_, (_, until))| *until < now)
                    .map(|(&chunk, &(from, _))| (chunk, from, None))
            }
        };
        let Some((chunk, from, response)) = answer else {
            continue;
        };
        in_flight.remove(&chunk);
        let bytes = response.map(|r| r.snapshot_chunk).filter(|b| !b.is_empty());
        let outcome = match bytes {
            None => Err("no answer".to_owned()),
            Some(bytes) => {
                let (r, added) = tokio::task::spawn_blocking(move || {
                    let added = restore.add_chunk(chunk, &bytes);
                    (restore, added)
                })
                .await
                .map_err(|e| StateSyncError::Task(e.to_string()))?;
                restore = r;
                match added {
                    Ok(_) => Ok(()),
                    Err(e @ SnapshotError::BadChunk { .. }) => Err(e.to_string()),
                    Err(e) => {
                        restore.abandon();
                        return Err(e.into());
                    }
                }
            }
        };
        match outcome {
            Ok(()) => {
                done += 1;
                if done * 10 / total != (done - 1) * 10 / total {
                    tracing::info!(height, done, total, "state sync: chunks written");
                }
            }
            Err(reason) => {
                tracing::warn!(height, chunk, from, %reason, "state sync: chunk refused; asking another validator");
                failed.entry(chunk).or_default().insert(from);
                let s = strikes.entry(from).or_default();
                *s += 1;
                if *s >= STRIKES && sources.len() > 1 {
                    tracing::warn!(from, "state sync: no longer asking this validator");
                    sources.retain(|v| *v != from);
                }
                queue.push_front(chunk);
            }
        }
    }
    tokio::task::spawn_blocking(move || restore.finish())
        .await
        .map_err(|e| StateSyncError::Task(e.to_string()))?
        .map_err(Into::into)
}

#[cfg(test)]
mod tests {
    use super::{rank, vouching};
    use quorate_proto::certificate::ValidatorSet;
    use quorate_proto::v1::{
        CommitCertificate, CommitSignature, SnapshotManifest, ValidatorSetChange,
    };
    use std::time::Duration;

    #[test]
    fn a_snapshot_f_plus_one_validators_offer_comes_before_a_newer_one_fewer_offer() {
        // Four validators (f = 1): one offers height 3000 alone, two offer 2000, one 1000.
        let offers = [
            (3000, 1, 2, 0),
            (2000, 2, 2, 0),
            (1000, 1, 2, 0),
            (2000, 1, 2, 0),
        ];
        assert_eq!(rank(&offers), vec![1, 0, 3, 2]);
        // With every offer vouched for, the newest first.
        assert_eq!(rank(&[(1000, 3, 2, 0), (2000, 2, 2, 0)]), vec![1, 0]);
    }

    /// Issue 25 (medium): ties went by the manifest's hash (the order of the offers), which a
    /// forger grinds to be tried first; now by a draw the forger cannot see.
    #[test]
    fn ties_go_by_this_nodes_draw_not_by_the_offers_order() {
        let tie = |a: u64, b: u64| rank(&[(2000, 1, 2, a), (2000, 1, 2, b)]);
        assert_eq!(tie(1, 9), vec![1, 0]);
        assert_eq!(tie(9, 1), vec![0, 1]);
    }

    /// Issue 25 (medium): the f + 1 count used the genesis set. After a change to seven
    /// validators (f = 2), two offers are not enough; and an offer by a validator that has
    /// left the set vouches for nothing.
    #[test]
    fn vouching_is_counted_in_the_set_that_certified_the_snapshot() {
        let key = |i: u8| quorate_proto::Keypair::from_secret(&[i; 32]).public();
        let genesis = ValidatorSet::new((1..=4).map(key).collect());
        let later = ValidatorSet::new((2..=8).map(key).collect());
        // Genesis validators 1, 2 and 3 (keys 2, 3, 4) are still validators; 0 (key 1) left.
        assert_eq!(vouching(&[1, 2], genesis.keys(), &later), (2, 3));
        assert_eq!(vouching(&[0, 1, 2], genesis.keys(), &later), (2, 3));
        assert_eq!(vouching(&[1, 2, 3], genesis.keys(), &later), (3, 3));
        assert_eq!(vouching(&[0, 1], genesis.keys(), &genesis), (2, 2));
    }

    /// Issue 25 (medium): a manifest's identity left out only its top certificate, while each
    /// validator carries its own certificates of the set changes too: honest manifests of one
    /// snapshot after a set change all differed, and none was offered by f + 1 validators.
    #[test]
    fn manifests_of_one_snapshot_are_one_whatever_certificates_they_carry() {
        let cert = |b: u8| CommitCertificate {
            height: 9,
            signatures: vec![CommitSignature {
                validator_index: u32::from(b),
                signature: vec![b; 64].into(),
            }],
            ..Default::default()
        };
        let manifest = |b: u8| SnapshotManifest {
            height: 100,
            header: vec![1, 2, 3].into(),
            certificate: Some(cert(b)),
            set_changes: vec![ValidatorSetChange {
                height: 10,
                header: vec![4, 5].into(),
                certificate: Some(cert(b)),
                ..Default::default()
            }],
            ..Default::default()
        };
        let id = crate::snapshot::manifest_identity;
        assert_eq!(id(&manifest(1)), id(&manifest(2)));
        let mut other = manifest(1);
        other.set_changes[0].height = 11;
        assert_ne!(id(&other), id(&manifest(1)), "the changes themselves count");
    }

    /// How a validator answers a snapshot request in the tests below.
    #[derive(Clone, Copy)]
    enum Reply {
        /// The request fails.
        Fail,
        /// It holds a chain and no snapshot.
        None,
        /// It is joining itself.
        Joining,
    }

    /// Answers each snapshot request the handle sends as `answers` says for its target, and
    /// notes whom it was sent to (request index, peer).
    async fn answer(
        inbox: &crate::network::inbox::Inbox<crate::network::ConsensusEvent>,
        commands: &mut tokio::sync::mpsc::Receiver<crate::network::Command>,
        answers: &[Reply],
        asked: &mut Vec<(u32, libp2p::PeerId)>,
    ) {
        use crate::network::{Asked, Command, ConsensusEvent};
        while let Some(c) = commands.recv().await {
            let Command::Request {
                peer,
                asked:
                    Asked::Snapshot {
                        from,
                        height,
                        chunk,
                    },
                ..
            } = c
            else {
                continue;
            };
            asked.push((from, peer));
            let response = match answers[from as usize] {
                Reply::Fail => None,
                Reply::None => Some(Box::default()),
                Reply::Joining => Some(Box::new(quorate_proto::v1::DecisionResponse {
                    joining: true,
                    ..Default::default()
                })),
            };
            let event = ConsensusEvent::Snapshot {
                from,
                height,
                chunk,
                response,
            };
            inbox.push(from as usize, event, 1);
        }
    }

    /// A joining node on a detached network whose requests the test answers.
    struct Rig {
        net: crate::network::NetworkHandle,
        commands: tokio::sync::mpsc::Receiver<crate::network::Command>,
        requests: crate::network::SyncRequests,
        inbox: crate::network::inbox::Inbox<crate::network::ConsensusEvent>,
        dir: tempfile::TempDir,
    }

    impl Rig {
        /// The node `me` (its own network identity) with `validators` as request targets.
        fn new(validators: Vec<libp2p::PeerId>, me: libp2p::PeerId) -> Self {
            let (net, commands) = crate::network::NetworkHandle::detached(validators, me, "c");
            let (_, _, requests) = crate::network::SyncRequests::channels(8);
            Self {
                net,
                commands,
                requests,
                inbox: crate::network::inbox::Inbox::new(
                    crate::network::INBOX_SENDERS,
                    64,
                    1 << 20,
                ),
                dir: tempfile::tempdir().expect("tempdir"),
            }
        }

        /// Runs state sync for `target` for 300 s at most, each request answered as `answers`
        /// says: `Some(true)` if it opened the chain at genesis, `None` if still asking; and
        /// whom it asked (request index, peer).
        async fn run(
            &mut self,
            target: &super::JoinTarget<'_>,
            answers: &[Reply],
        ) -> (Option<bool>, Vec<(u32, libp2p::PeerId)>) {
            let mut asked = Vec::new();
            let mut io = super::Channels {
                net: &self.net,
                inbox: &self.inbox,
                requests: &mut self.requests,
            };
            let started = tokio::select! {
                r = tokio::time::timeout(Duration::from_secs(300), super::run(&mut io, target, self.dir.path())) => {
                    r.ok().map(|r| r.expect("no error").is_none())
                }
                () = answer(&self.inbox, &mut self.commands, answers, &mut asked) => unreachable!("the handle lives"),
            };
            (started, asked)
        }
    }

    /// The join target of chain "c" with genesis set `set`.
    fn target<'a>(
        set: &'a ValidatorSet,
        local: Option<u32>,
        anchor: Option<crate::snapshot::TrustAnchor>,
        peers: &'a [quorate_proto::PublicKey],
    ) -> super::JoinTarget<'a> {
        super::JoinTarget {
            chain_id: "c",
            genesis_hash: quorate_proto::Hash32([0; 32]),
            validators: set,
            local,
            anchor,
            peers,
        }
    }

    /// Issue 25 (high): "no answer", "unreachable" and "an answer over the message limit" all
    /// counted as "offers no snapshot", and with no offer the node created a database at
    /// genesis, after which it never tried again. Failed answers now count for nothing, nor do
    /// the "no snapshot" answers of nodes joining themselves: the node starts from genesis
    /// when f + 1 validators holding a chain say it is young, or every other one is joining
    /// too, and never with a trust anchor; otherwise it keeps asking.
    #[tokio::test(start_paused = true)]
    async fn silence_is_not_a_new_chain() {
        use Reply::{Fail, Joining, None as Empty};
        let keys: Vec<_> = (1..=4u8)
            .map(|i| quorate_proto::Keypair::from_secret(&[i; 32]).public())
            .collect();
        let set = ValidatorSet::new(keys.clone());
        let peers: Vec<_> = keys
            .iter()
            .map(|k| crate::network::peer_id_of(k).expect("peer id"))
            .collect();
        // This node's own network identity is outside the set (for the cases where it joins
        // later; as validator 0 it is not asked anyway).
        let me =
            crate::network::peer_id_of(&quorate_proto::Keypair::from_secret(&[9; 32]).public())
                .expect("peer id");
        let mut rig = Rig::new(peers, me);
        // (answers of validators 1-3, local index, anchored) → started from genesis
        // (Some(true)) or still asking after 300 s (None).
        for (answers, local, anchored, expected) in [
            // A node joining later, not a genesis validator: silence is not a new chain.
            ([Fail, Fail, Fail, Empty], None, false, None),
            ([Fail, Empty, Fail, Empty], None, false, Some(true)),
            // Joiners know nothing: their "no snapshot" is not a young chain's...
            ([Fail, Joining, Joining, Empty], None, false, None),
            // ...unless every genesis validator answered.
            ([Empty, Joining, Joining, Empty], None, false, Some(true)),
            ([Empty, Empty, Empty, Empty], None, true, None),
            // A genesis validator of a new chain started first: no one to answer.
            ([Fail, Fail, Fail, Fail], Some(0), false, Some(true)),
            ([Fail, Fail, Fail, Fail], Some(0), true, None),
        ] {
            let anchor = anchored.then_some(crate::snapshot::TrustAnchor {
                height: 5,
                validators_hash: set.hash(),
            });
            let (started, _) = rig.run(&target(&set, local, anchor, &[]), &answers).await;
            assert_eq!(started, expected, "local {local:?}, anchored {anchored}");
        }
    }

    /// Issue 25 (high): the validator of a one-validator genesis restarted with an empty data
    /// directory skipped state sync, saw only the genesis set and decided a new block 1 alone
    /// on a chain that had long since grown. With peers configured it now joins only from a
    /// snapshot and never opens the chain at genesis, whatever the peers answer (a peer that
    /// lost its data too, or is joining, knows of no block 1 either); with none configured it
    /// cannot tell and starts a new chain.
    #[tokio::test(start_paused = true)]
    async fn the_only_genesis_validator_with_peers_never_opens_the_chain_at_genesis() {
        use Reply::{Fail, Joining, None as Empty};
        let a = quorate_proto::Keypair::from_secret(&[1; 32]).public();
        let b = quorate_proto::Keypair::from_secret(&[2; 32]).public();
        let set = ValidatorSet::new(vec![a]);
        let me = crate::network::peer_id_of(&a).expect("peer id");
        let mut rig = Rig::new(vec![me], me);
        // (peers, the peer's answer) → opened at genesis (Some(true)) or still asking after
        // 300 s (None).
        for (peers, reply, expected) in [
            (vec![], Fail, Some(true)),
            (vec![b], Empty, None),
            (vec![b], Joining, None),
            (vec![b], Fail, None),
        ] {
            let (started, _) = rig
                .run(&target(&set, Some(0), None, &peers), &[Fail, reply])
                .await;
            assert_eq!(started, expected, "peers {}", peers.len());
        }
    }

    /// Issue 25 (high): a joining node asked only the genesis validators, never `p2p.peers`, so
    /// one whose genesis validators were all replaced could not join. The configured peers are
    /// now asked too (their requests go to their identities); their "no snapshot" is no
    /// evidence of a young chain (only the genesis validators' counts), their offers are.
    #[tokio::test(start_paused = true)]
    async fn configured_peers_are_asked_but_only_genesis_validators_say_a_chain_is_new() {
        use Reply::{Fail, None as Empty};
        let key = |i: u8| quorate_proto::Keypair::from_secret(&[i; 32]).public();
        let set = ValidatorSet::new(vec![key(1)]);
        let peers = [key(5), key(6)];
        let me = crate::network::peer_id_of(&key(9)).expect("peer id");
        let mut rig = Rig::new(vec![], me);
        // The genesis validator is gone; both peers hold a chain and no snapshot (yet).
        let (started, asked) = rig
            .run(&target(&set, None, None, &peers), &[Fail, Empty, Empty])
            .await;
        assert_eq!(
            started, None,
            "two peers' \"no snapshot\" opened the chain at genesis"
        );
        let asked: std::collections::BTreeSet<_> = asked.into_iter().collect();
        let id = |k| crate::network::peer_id_of(k).expect("peer id");
        assert!(
            asked.contains(&(1, id(&peers[0]))) && asked.contains(&(2, id(&peers[1]))),
            "the configured peers were not asked: {asked:?}"
        );
    }
}
