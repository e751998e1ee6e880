//! Answers other validators' sync requests, off the consensus task: committed blocks with
//! their certificates from storage, bodies of blocks proposed at the current height from the
//! [`BodyCache`] the driver fills, and state snapshots (manifests and chunks) from the
//! snapshot directory for nodes joining by state sync.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use parking_lot::Mutex;
use quorate_proto::crypto::Hash32;
use quorate_proto::v1::{Block, DecisionRequest, DecisionResponse, SnapshotRequest, Transaction};

use crate::network::NetworkHandle;
use crate::snapshot::{SnapshotError, SnapshotStore};
use crate::storage::{Storage, StorageError};

/// Most bodies the cache holds (the blocks of a few rounds of the current and next height).
pub const BODY_CACHE_ENTRIES: usize = 16;

/// Bodies of blocks this validator built or received at its current height (and the next),
/// for validators that got a proposal without its body.
#[derive(Default)]
pub struct BodyCache {
    /// Block hash → (height, insertion order, body).
    bodies: Mutex<BTreeMap<[u8; 32], (u64, u64, Block)>>,
    /// Insertions so far, for evicting the oldest.
    counter: Mutex<u64>,
}

impl BodyCache {
    /// Keeps the body of block `hash` at `height`, evicting the oldest beyond the bound.
    pub fn put(&self, height: u64, hash: [u8; 32], body: Block) {
        let order = {
            let mut c = self.counter.lock();
            *c += 1;
            *c
        };
        let mut bodies = self.bodies.lock();
        bodies.insert(hash, (height, order, body));
        while bodies.len() > BODY_CACHE_ENTRIES {
            let oldest = bodies
                .iter()
                .min_by_key(|(_, (_, o, _))| *o)
                .map(|(k, _)| *k);
            match oldest {
                Some(k) => bodies.remove(&k),
                None => break,
            };
        }
    }

    /// The body of block `hash`, if held.
    pub fn get(&self, hash: &[u8; 32]) -> Option<Block> {
        self.bodies.lock().get(hash).map(|(_, _, b)| b.clone())
    }

    /// True if the body of `hash` is held.
    pub fn contains(&self, hash: &[u8; 32]) -> bool {
        self.bodies.lock().contains_key(hash)
    }

    /// Forgets the bodies of heights up to `height` (after it is committed).
    pub fn forget_up_to(&self, height: u64) {
        self.bodies.lock().retain(|_, (h, _, _)| *h > height);
    }

    /// Number of bodies held.
    pub fn len(&self) -> usize {
        self.bodies.lock().len()
    }

    /// True when no body is held.
    pub fn is_empty(&self) -> bool {
        self.bodies.lock().is_empty()
    }
}

/// The committed block at `height` with its certificate (empty when not committed here).
pub fn decision_at(storage: &Storage, height: u64) -> Result<DecisionResponse, StorageError> {
    let Some((record, txs)) = storage.block_with_txs(height, true)? else {
        let lowest = storage.lowest_block()?;
        return Ok(DecisionResponse {
            lowest_height: if height < lowest { lowest } else { 0 },
            ..DecisionResponse::default()
        });
    };
    let transactions = txs.into_iter().filter_map(|t| t.transaction).collect();
    Ok(DecisionResponse {
        block: Some(Block {
            header: record.header,
            transactions,
        }),
        certificate: record.certificate,
        ..DecisionResponse::default()
    })
}

/// A snapshot's manifest or chunk from `store` (empty when not held).
pub fn snapshot_answer(
    store: Option<&SnapshotStore>,
    request: &SnapshotRequest,
) -> Result<DecisionResponse, SnapshotError> {
    let Some(store) = store else {
        return Ok(DecisionResponse::default());
    };
    let height = match request.height {
        0 => match store.latest()? {
            Some(h) => h,
            None => return Ok(DecisionResponse::default()),
        },
        h => h,
    };
    let held = |e: SnapshotError| match e {
        // Removed (a newer one was taken) or never held: the asker turns to another peer.
        SnapshotError::NotFound { .. } => Ok(DecisionResponse::default()),
        e => Err(e),
    };
    match request.chunk {
        None => store
            .manifest(height)
            .map(|m| DecisionResponse {
                snapshot_manifest: Some(m),
                ..DecisionResponse::default()
            })
            .or_else(held),
        Some(i) => store
            .chunk(height, i)
            .map(|c| DecisionResponse {
                snapshot_chunk: c.into(),
                ..DecisionResponse::default()
            })
            .or_else(held),
    }
}

/// The answer to one sync request.
pub fn answer(
    storage: &Storage,
    cache: &BodyCache,
    request: &DecisionRequest,
) -> Result<DecisionResponse, StorageError> {
    if request.block_hash.is_empty() {
        return decision_at(storage, request.height);
    }
    let Some(hash) = Hash32::from_slice(&request.block_hash) else {
        return Ok(DecisionResponse::default());
    };
    let block = match cache.get(&hash.0) {
        Some(block) => Some(block),
        // Committed since: the stored block (without its certificate: a body was asked for).
        None => match storage.height_of(&hash)? {
            Some(height) => decision_at(storage, height)?.block,
            None => None,
        },
    };
    let Some(block) = block else {
        return Ok(DecisionResponse::default());
    };
    if request.tx_hashes.is_empty() {
        return Ok(DecisionResponse {
            block: Some(block),
            ..Default::default()
        });
    }
    Ok(DecisionResponse {
        transactions: select_txs(block, &request.tx_hashes),
        ..Default::default()
    })
}

/// The transactions of `block` named by `wanted`, in that order; none unless the block holds
/// every one (so what a peer can ask for is bounded by the block it names).
fn select_txs(block: Block, wanted: &[bytes::Bytes]) -> Vec<Transaction> {
    if wanted.len() > block.transactions.len() {
        return Vec::new();
    }
    let mut slot: HashMap<&[u8], usize> = HashMap::with_capacity(wanted.len());
    for (i, h) in wanted.iter().enumerate() {
        slot.insert(h.as_ref(), i);
    }
    let mut out: Vec<Option<Transaction>> = vec![None; wanted.len()];
    for tx in block.transactions {
        if let Some(&i) = slot.get(quorate_proto::tx::leaf_of(&tx).0.as_slice()) {
            out[i] = Some(tx);
        }
    }
    out.into_iter()
        .collect::<Option<Vec<_>>>()
        .unwrap_or_default()
}

/// Serves sync requests until the network goes away: one at a time, each read on the blocking
/// pool, so that however many requests arrive the consensus task does none of this work.
pub async fn serve(
    requests: crate::network::SyncRequests,
    storage: Arc<Storage>,
    cache: Arc<BodyCache>,
    snapshots: Option<SnapshotStore>,
    net: NetworkHandle,
    byzantine: crate::byzantine::Byzantine,
) {
    let sources = Sources {
        storage,
        cache,
        snapshots,
    };
    serve_with(requests, sources, byzantine, |req, response| {
        net.respond(req, response)
    })
    .await;
}

/// What sync answers are read from.
#[derive(Clone)]
pub struct Sources {
    /// Committed blocks and decisions.
    pub storage: Arc<Storage>,
    /// Bodies of the height being decided.
    pub cache: Arc<BodyCache>,
    /// Snapshots, when this node takes them.
    pub snapshots: Option<SnapshotStore>,
}

/// A peer's sync request as a transport hands it over.
pub trait PeerRequest: Send + 'static {
    /// Who asks.
    fn peer(&self) -> &libp2p::PeerId;
    /// What it asks for.
    fn request(&self) -> &DecisionRequest;
}

impl PeerRequest for crate::network::SyncRequest {
    fn peer(&self) -> &libp2p::PeerId {
        &self.peer
    }
    fn request(&self) -> &DecisionRequest {
        &self.request
    }
}

/// [`serve`] over any transport: `respond` sends each answer back to its asker.
pub async fn serve_with<T: PeerRequest>(
    requests: crate::network::SyncRequests<T>,
    sources: Sources,
    byzantine: crate::byzantine::Byzantine,
    respond: impl Fn(T, DecisionResponse),
) {
    let answer = |req: &T| {
        let Sources {
            storage,
            cache,
            snapshots,
        } = sources.clone();
        let request = req.request().clone();
        async move {
            let answer = crate::environment::blocking(move || match &request.snapshot {
                Some(s) => snapshot_answer(snapshots.as_ref(), s),
                None => answer(&storage, &cache, &request).map_err(SnapshotError::from),
            })
            .await;
            match answer {
                Ok(Ok(r)) => r,
                Ok(Err(e)) => {
                    tracing::error!(error = %e, "failure answering a sync request");
                    DecisionResponse::default()
                }
                Err(e) => {
                    tracing::error!(error = %e, "sync answer task failed");
                    DecisionResponse::default()
                }
            }
        }
    };
    serve_queues(requests, answer, |req: T, response| {
        let snapshots = sources.snapshots.as_ref();
        let response = byzantine.sync_answer(req.peer(), req.request(), response, snapshots);
        respond(req, response);
    })
    .await;
}

/// Serves the two queues of `requests` side by side, each one request at a time: a fetch of
/// the height being decided is never kept waiting by a snapshot chunk or an old block being
/// read (issue 25: one serial server answered both).
async fn serve_queues<T, F, A>(
    requests: crate::network::SyncRequests<T>,
    answer: F,
    respond: impl Fn(T, DecisionResponse),
) where
    F: Fn(&T) -> A,
    A: std::future::Future<Output = DecisionResponse>,
{
    let (urgent, bulk) = requests.split();
    let serve = |mut queue: tokio::sync::mpsc::Receiver<T>| {
        let (answer, respond) = (&answer, &respond);
        async move {
            while let Some(req) = queue.recv().await {
                let response = answer(&req).await;
                respond(req, response);
            }
        }
    };
    tokio::join!(serve(urgent), serve(bulk));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cache_is_bounded_and_forgets_committed_heights() {
        let cache = BodyCache::default();
        for i in 0..(BODY_CACHE_ENTRIES as u8 + 4) {
            cache.put(u64::from(i % 3) + 1, [i; 32], Block::default());
        }
        assert_eq!(cache.len(), BODY_CACHE_ENTRIES);
        assert!(!cache.contains(&[0; 32]), "the oldest went first");
        cache.forget_up_to(2);
        assert!(!cache.is_empty());
        assert!(cache.bodies.lock().values().all(|(h, _, _)| *h == 3));
    }

    /// Issue 17: a pruned height is answered with where this node's blocks start, not as a
    /// height it has not reached.
    #[test]
    fn a_pruned_height_is_answered_with_the_lowest_height_held() {
        let t = crate::testutil::TestChain::new(2);
        for nonce in 0..8 {
            t.admit_ok(vec![t.transfer(0, t.addr(1), 1, nonce)]);
            t.produce().expect("block");
        }
        let t = t.reopen_with(&crate::storage::StorageOptions {
            sync_writes: false,
            keep_blocks: Some(3),
            ..Default::default()
        });
        t.admit_ok(vec![t.transfer(0, t.addr(1), 1, 8)]);
        t.produce().expect("block 9");
        let storage = t.chain.storage();
        let pruned = decision_at(storage, 2).expect("answer");
        assert_eq!((pruned.block, pruned.lowest_height), (None, 7));
        let held = decision_at(storage, 8).expect("answer");
        assert!(held.block.is_some() && held.certificate.is_some());
        assert_eq!(held.lowest_height, 0);
        let ahead = decision_at(storage, 50).expect("answer");
        assert_eq!(
            (ahead.block, ahead.lowest_height),
            (None, 0),
            "not reached is not pruned"
        );
    }

    /// Issue 17: snapshots are served from the snapshot directory — the latest manifest when
    /// height 0 is asked, a chunk by index — and what is not held is answered empty (the asker
    /// turns to another validator), never as an error.
    #[test]
    fn snapshots_are_served_and_what_is_not_held_is_answered_empty() {
        let t = crate::testutil::TestChain::new(3);
        let dir = tempfile::tempdir().expect("tempdir");
        let store = SnapshotStore::new(dir.path());
        let ask = |height, chunk| {
            snapshot_answer(Some(&store), &SnapshotRequest { height, chunk }).expect("answer")
        };
        assert_eq!(ask(0, None), DecisionResponse::default(), "none held yet");
        for nonce in 0..2 {
            t.admit_ok(vec![t.transfer(0, t.addr(1), 1, nonce)]);
            t.produce().expect("block");
            let info = t.chain.info();
            crate::snapshot::take(
                t.chain.storage(),
                &store,
                &info.chain_id,
                &info.genesis_hash,
                || {},
            )
            .expect("take");
        }
        let latest = ask(0, None).snapshot_manifest.expect("latest manifest");
        assert_eq!(latest.height, 2);
        assert_eq!(
            ask(1, None).snapshot_manifest.expect("manifest 1").height,
            1
        );
        let chunk = ask(2, Some(0)).snapshot_chunk;
        assert_eq!(chunk.to_vec(), store.chunk(2, 0).expect("stored chunk"));
        assert!(ask(2, Some(latest.chunks.len() as u32))
            .snapshot_chunk
            .is_empty());
        assert_eq!(ask(7, None), DecisionResponse::default());
        assert_eq!(ask(7, Some(0)), DecisionResponse::default());
        assert_eq!(
            snapshot_answer(
                None,
                &SnapshotRequest {
                    height: 0,
                    chunk: None
                }
            )
            .expect("answer"),
            DecisionResponse::default(),
            "a node that takes no snapshots holds none"
        );
    }

    #[test]
    fn transactions_are_served_in_the_order_asked_and_only_all_or_none() {
        let tx = |n: u8| Transaction {
            body: bytes::Bytes::from(vec![n; 8]),
            ..Transaction::default()
        };
        let hash = |n: u8| bytes::Bytes::copy_from_slice(&quorate_proto::tx::leaf_of(&tx(n)).0);
        let block = Block {
            header: Default::default(),
            transactions: vec![tx(1), tx(2), tx(3)],
        };
        assert_eq!(
            select_txs(block.clone(), &[hash(3), hash(1)]),
            vec![tx(3), tx(1)]
        );
        assert!(select_txs(block.clone(), &[hash(3), hash(9)]).is_empty());
        let too_many = vec![hash(1); 4];
        assert!(select_txs(block, &too_many).is_empty());
    }

    /// Issue 25 (low): snapshot requests and the current height's fetches shared one serial
    /// server, so a fetch waited behind a chunk being read. A fetch is now answered while a
    /// bulk request is still being read (here: held until the fetch has been answered; served
    /// one after the other, the bulk answer would wait forever).
    #[tokio::test]
    async fn a_fetch_is_answered_while_a_bulk_request_is_being_read() {
        use crate::network::SyncRequests;
        let (urgent, bulk, requests) = SyncRequests::<&'static str>::channels(4);
        bulk.send("bulk").await.expect("send");
        drop(bulk);
        // The fetch arrives once the bulk request is being read.
        let urgent = std::sync::Mutex::new(Some(urgent));
        let fetched = std::sync::Arc::new(tokio::sync::Notify::new());
        let answered = std::sync::Mutex::new(Vec::new());
        let answer = |req: &&'static str| {
            let fetch = (*req == "bulk")
                .then(|| urgent.lock().expect("lock").take())
                .flatten();
            let fetched = fetched.clone();
            async move {
                if let Some(urgent) = fetch {
                    urgent.try_send("fetch").expect("send");
                    fetched.notified().await;
                }
                DecisionResponse::default()
            }
        };
        let respond = |req: &'static str, _| {
            answered.lock().expect("lock").push(req);
            if req == "fetch" {
                fetched.notify_one();
            }
        };
        tokio::time::timeout(
            std::time::Duration::from_secs(10),
            serve_queues(requests, answer, respond),
        )
        .await
        .expect("the fetch waited behind the bulk request");
        assert_eq!(*answered.lock().expect("lock"), vec!["fetch", "bulk"]);
    }
}
