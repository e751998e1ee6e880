//! Coalesced admission: concurrent `Submit` and `SubmitBatch` calls, and gossiped batches,
//! join one admission round — one decode pass, one signature batch, one mempool lock, one
//! multi-get of the signers — and each caller gets its own results, answered from the round
//! that verified them.
//!
//! A round starts as soon as the previous one ends and takes everything that queued meanwhile
//! (up to [`MAX_ROUND_TXS`]), as group commit does: an idle node admits a lone transaction at
//! once, without waiting for company, and rounds grow with the load.
//!
//! Rounds run in one task, each round's work on the blocking pool (inline under the node
//! simulator).
//!
//! What clients sent and a round admitted goes to the other validators in one gossip message
//! per gossip interval (`p2p.tx_gossip_interval_ms`, [`GOSSIP_INTERVAL`] by default): at once
//! when nothing went out for that long, else with what the next rounds admit (sooner when the
//! outbox holds a full round or `GOSSIP_MAX_BYTES`, split under that size), so that
//! one transaction per call does not mean one message per transaction for every peer to
//! receive, decrypt and admit.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use quorate_proto::v1::Transaction;
use tokio::sync::{mpsc, oneshot, Notify};
use tokio::time::Instant;

use crate::admission::{Admission, Admitted};
use crate::network::NetworkHandle;

/// Transactions one round takes at most (a request larger than this is a round alone).
pub const MAX_ROUND_TXS: usize = 4096;
/// Requests waiting for a round at most; callers beyond wait to enqueue.
const QUEUE_REQUESTS: usize = 4096;
/// Bytes of transactions one gossip message carries at most: a fuller outbox goes out at once,
/// split (far below `p2p.max_message_bytes`, at least 1 MiB, so every message is sent).
const GOSSIP_MAX_BYTES: usize = 512 << 10;
/// Client transactions go out to the other validators at most once per this interval by
/// default (a transaction waits for it only when a message went out less than this long ago).
pub const GOSSIP_INTERVAL: Duration = Duration::from_millis(10);

/// Why a submission got no results.
#[derive(Debug, Clone, thiserror::Error)]
pub enum QueueError {
    /// Storage failed during the round (the node stops on such failures).
    #[error("storage: {0}")]
    Storage(String),
    /// The admission task is gone (the node is shutting down).
    #[error("the node is shutting down")]
    Closed,
}

/// Where transactions come from: clients' are passed on to the other validators once
/// admitted; gossiped ones already were.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Origin {
    /// A gRPC client.
    Client,
    /// Another validator's gossip.
    Gossip,
}

struct Request {
    txs: Vec<Transaction>,
    origin: Origin,
    reply: oneshot::Sender<Result<Vec<Admitted>, QueueError>>,
}

/// The handle submitters use; cheap to clone.
#[derive(Clone)]
pub struct AdmissionQueue {
    tx: mpsc::Sender<Request>,
    rounds: Arc<AtomicU64>,
    published: Arc<AtomicU64>,
}

impl AdmissionQueue {
    /// Starts the admission task. Admitted client
    /// transactions go out on `network`, one message per `gossip_interval` (sooner when the
    /// outbox fills); every round that admits something wakes `admitted` (the block driver)
    /// once.
    pub fn start(
        admission: Arc<Admission>,
        network: Option<(NetworkHandle, Duration)>,
        admitted: Arc<Notify>,
    ) -> Self {
        let (tx, rx) = mpsc::channel(QUEUE_REQUESTS);
        let rounds = Arc::new(AtomicU64::new(0));
        let published = Arc::new(AtomicU64::new(0));
        let (network, gossip_interval) = match network {
            Some((n, interval)) => (Some(n), interval),
            None => (None, GOSSIP_INTERVAL),
        };
        let worker = Rounds {
            admission,
            network,
            gossip_interval,
            admitted,
            rounds: rounds.clone(),
            published: published.clone(),
            outbox: Vec::new(),
            outbox_bytes: 0,
            last_publish: None,
        };
        tokio::spawn(worker.run(rx));
        Self {
            tx,
            rounds,
            published,
        }
    }

    /// Rounds started so far.
    pub fn rounds(&self) -> u64 {
        self.rounds.load(Ordering::Relaxed)
    }

    /// Gossip messages of client transactions sent so far.
    pub fn published(&self) -> u64 {
        self.published.load(Ordering::Relaxed)
    }

    /// Requests waiting for a round now.
    pub fn queued(&self) -> usize {
        self.tx.max_capacity() - self.tx.capacity()
    }

    /// Admits `txs` in the next round; one result per transaction, in order.
    pub async fn admit(
        &self,
        txs: Vec<Transaction>,
        origin: Origin,
    ) -> Result<Vec<Admitted>, QueueError> {
        if txs.is_empty() {
            return Ok(Vec::new());
        }
        let (reply, answer) = oneshot::channel();
        self.tx
            .send(Request { txs, origin, reply })
            .await
            .map_err(|_| QueueError::Closed)?;
        answer.await.map_err(|_| QueueError::Closed)?
    }
}

/// The rounds and what they keep between them: client transactions not gossiped yet.
struct Rounds {
    admission: Arc<Admission>,
    network: Option<NetworkHandle>,
    admitted: Arc<Notify>,
    gossip_interval: Duration,
    rounds: Arc<AtomicU64>,
    published: Arc<AtomicU64>,
    /// Admitted client transactions waiting for the next gossip message, and their bytes.
    outbox: Vec<Transaction>,
    outbox_bytes: usize,
    last_publish: Option<Instant>,
}

impl Rounds {
    /// Runs rounds until every handle is gone, each round's work on the blocking pool (inline
    /// under the simulator).
    async fn run(mut self, mut rx: mpsc::Receiver<Request>) {
        loop {
            // Gossip that is due goes out before another round may hold it back.
            if self.gossip_due().is_some_and(|at| at <= Instant::now()) {
                self.publish();
            }
            let first = match self.gossip_due() {
                None => rx.recv().await,
                // Biased, timer first: the simulator's seed decides every order (an unbiased
                // select draws its own).
                Some(at) => tokio::select! {
                    biased;
                    () = tokio::time::sleep_until(at) => {
                        self.publish();
                        continue;
                    }
                    r = rx.recv() => r,
                },
            };
            let Some(first) = first else { break };
            let mut round = vec![first];
            let mut count = round[0].txs.len();
            while count < MAX_ROUND_TXS {
                match rx.try_recv() {
                    Ok(r) => {
                        count += r.txs.len();
                        round.push(r);
                    }
                    Err(_) => break,
                }
            }
            self.round(round, count).await;
        }
        self.publish();
    }

    /// When the outbox must go out, if it holds anything.
    fn gossip_due(&self) -> Option<Instant> {
        if self.outbox.is_empty() {
            return None;
        }
        Some(
            self.last_publish
                .map_or_else(Instant::now, |t| t + self.gossip_interval),
        )
    }

    /// Sends the outbox to the other validators in one message.
    fn publish(&mut self) {
        if self.outbox.is_empty() {
            return;
        }
        if let Some(net) = &self.network {
            net.publish_txs(std::mem::take(&mut self.outbox));
            self.published.fetch_add(1, Ordering::Relaxed);
        }
        self.outbox.clear();
        self.outbox_bytes = 0;
        self.last_publish = Some(Instant::now());
    }

    /// Puts `tx` in the outbox; what it holds goes out first when `tx` would take it over
    /// [`GOSSIP_MAX_BYTES`].
    fn queue_for_gossip(&mut self, tx: Transaction) {
        let size = prost::Message::encoded_len(&tx);
        if !self.outbox.is_empty() && self.outbox_bytes + size > GOSSIP_MAX_BYTES {
            self.publish();
        }
        self.outbox_bytes += size;
        self.outbox.push(tx);
    }

    /// One round: admits every request's transactions together and answers each request.
    async fn round(&mut self, mut round: Vec<Request>, count: usize) {
        self.rounds.fetch_add(1, Ordering::Relaxed);
        crate::metrics::get()
            .admission_round_txs
            .observe(count as f64);
        let mut sizes = Vec::with_capacity(round.len());
        let mut txs = Vec::with_capacity(count);
        for r in &mut round {
            sizes.push(r.txs.len());
            txs.append(&mut r.txs);
        }
        // Transactions share their buffers (`Bytes`): keeping them for gossip copies no payload.
        let kept = match &self.network {
            Some(_) if round.iter().any(|r| r.origin == Origin::Client) => Some(txs.clone()),
            _ => None,
        };
        let a = self.admission.clone();
        let outcome = crate::environment::blocking(move || a.admit(txs))
            .await
            .map_err(|e| e.to_string())
            .and_then(|r| r.map_err(|e| e.to_string()));
        let results = match outcome {
            Ok(results) => results,
            Err(why) => {
                tracing::error!(error = %why, "admission round failed");
                for r in round {
                    let _ = r.reply.send(Err(QueueError::Storage(why.clone())));
                }
                return;
            }
        };
        if results.iter().any(|a| a.result.is_ok()) {
            self.admitted.notify_one();
            // Every client transaction of the round that was admitted goes to the outbox
            // (first security verification passed here; the others verify again on receipt).
            if let Some(kept) = kept {
                let mut slot = 0;
                let mut kept = kept.into_iter();
                for (r, &n) in round.iter().zip(&sizes) {
                    for (tx, a) in kept.by_ref().take(n).zip(&results[slot..slot + n]) {
                        if r.origin == Origin::Client && a.result.is_ok() {
                            self.queue_for_gossip(tx);
                        }
                    }
                    slot += n;
                }
            }
        }
        let mut results = results.into_iter();
        for (r, n) in round.into_iter().zip(sizes) {
            let _ = r.reply.send(Ok(results.by_ref().take(n).collect()));
        }
        // At once when nothing went out for an interval, or when the outbox is full.
        if self.outbox.len() >= MAX_ROUND_TXS
            || self.outbox_bytes >= GOSSIP_MAX_BYTES
            || self.gossip_due().is_some_and(|at| at <= Instant::now())
        {
            self.publish();
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::time::Duration;

    use bytes::Bytes;

    use super::*;
    use crate::testutil::TestChain;
    use crate::verified_tx::AdmissionError;

    /// The admission of `t`'s chain.
    fn admission_of(t: &TestChain) -> Arc<Admission> {
        Arc::new(Admission::new(
            t.genesis.chain_id.clone(),
            t.chain.params().clone(),
            t.chain.storage().clone(),
            t.mempool.clone(),
            t.chain.contracts().clone(),
        ))
    }

    /// A network handle to one other validator whose commands come out of the receiver.
    fn detached(t: &TestChain) -> (NetworkHandle, mpsc::Receiver<crate::network::Command>) {
        let peer = libp2p::PeerId::random();
        NetworkHandle::detached(vec![peer], peer, &t.genesis.chain_id)
    }

    /// Submits `tx` as a client and asserts it was admitted.
    async fn admit_client(q: &AdmissionQueue, tx: &Transaction) {
        let r = q.admit(vec![tx.clone()], Origin::Client).await.unwrap();
        assert!(r[0].result.is_ok(), "{:?}", r[0].result);
    }

    /// Polls `f` until it holds (bounded: a stuck queue fails the test, a slow one does not).
    async fn until(what: &str, f: impl Fn() -> bool) {
        for _ in 0..6000 {
            if f() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        panic!("timed out waiting for {what}");
    }

    // The mempool lock is held across awaits on purpose: it stalls a round on another thread.
    #[allow(clippy::await_holding_lock)]
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_submissions_join_one_round_and_each_gets_its_own_results() {
        let t = TestChain::new(8);
        let admission = admission_of(&t);
        let woken = Arc::new(Notify::new());
        let q = AdmissionQueue::start(admission, None, woken.clone());

        // A lone transaction is admitted at once, in a round of its own, and wakes the driver.
        let r = q
            .admit(vec![t.transfer(0, t.addr(1), 1, 0)], Origin::Client)
            .await
            .unwrap();
        assert!(r[0].result.is_ok());
        tokio::time::timeout(Duration::from_secs(30), woken.notified())
            .await
            .unwrap();
        assert_eq!(q.rounds(), 1);

        // Hold the mempool so that the next round cannot finish: one submission enters it,
        // 63 more queue behind it, and then all 63 must share the round after.
        let guard = t.mempool.lock();
        let submit = |i: u64| {
            let q = q.clone();
            let from = 1 + (i % 7) as usize;
            let good = t.transfer(from, t.addr(0), 1, i / 7);
            let mut bad = t.transfer(from, t.addr(0), 2, 100 + i);
            let mut sig = bad.signature.to_vec();
            sig[0] ^= 1;
            bad.signature = Bytes::from(sig);
            tokio::spawn(async move { q.admit(vec![good, bad], Origin::Client).await })
        };
        let first = submit(0);
        until("the second round to start", || q.rounds() == 2).await;
        let rest: Vec<_> = (1..64).map(submit).collect();
        until("63 submissions queued", || q.queued() == 63).await;
        drop(guard);
        for h in std::iter::once(first).chain(rest) {
            let r = h.await.unwrap().unwrap();
            assert_eq!(r.len(), 2);
            assert!(r[0].result.is_ok(), "{:?}", r[0].result);
            assert!(matches!(r[1].result, Err(AdmissionError::BadSignature(_))));
        }
        assert_eq!(q.rounds(), 3, "the 63 queued submissions shared one round");
        assert_eq!(t.mempool.lock().len(), 65);
    }

    /// Outside the simulator, on the runtime's clock: what waits in the outbox goes out when
    /// the interval ends, and when the queue is dropped.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_outbox_goes_out_on_the_timer_and_when_the_queue_is_dropped() {
        let t = TestChain::new(8);
        let start = |interval: Duration| {
            let admission = admission_of(&t);
            let (net, commands) = detached(&t);
            let q =
                AdmissionQueue::start(admission, Some((net, interval)), Arc::new(Notify::new()));
            (q, commands)
        };
        let hash = |tx: &Transaction| quorate_proto::tx::tx_hash(&tx.body);
        let gossiped = Arc::new(parking_lot::Mutex::new(Vec::new()));
        let collect = |mut commands: mpsc::Receiver<crate::network::Command>| {
            let gossiped = gossiped.clone();
            tokio::spawn(async move {
                while let Some(c) = commands.recv().await {
                    let txs = c.published_txs().expect("only transactions are gossiped");
                    gossiped.lock().extend(txs.iter().map(hash));
                }
            })
        };

        // The timer: whatever the machine's speed, every transaction goes out exactly once.
        let (q, commands) = start(Duration::from_millis(300));
        let collector = collect(commands);
        let mut sent = Vec::new();
        for i in 0..3 {
            let tx = t.transfer(i, t.addr(7), 1, 0);
            admit_client(&q, &tx).await;
            sent.push(hash(&tx));
        }
        until("the outbox to go out on the timer", || {
            gossiped.lock().len() >= 3
        })
        .await;
        assert_eq!(*gossiped.lock(), sent);
        assert!(
            q.published() >= 2,
            "the first went out at once, the others on the timer"
        );

        // Dropped with transactions waiting a minute: they go out as the thread ends.
        let (q2, commands2) = start(Duration::from_secs(60));
        let collector2 = collect(commands2);
        for i in 3..6 {
            let tx = t.transfer(i, t.addr(7), 1, 0);
            admit_client(&q2, &tx).await;
            sent.push(hash(&tx));
        }
        assert_eq!(q2.published(), 1, "two wait for the minute");
        drop(q2);
        until("the outbox to go out when dropped", || {
            gossiped.lock().len() >= 6
        })
        .await;
        assert_eq!(*gossiped.lock(), sent);
        collector.abort();
        collector2.abort();
    }

    /// However many rounds fill the outbox, no gossip message carries more than
    /// GOSSIP_MAX_BYTES of transactions (a merged outbox could outgrow the peers' limit).
    #[tokio::test]
    async fn a_full_outbox_goes_out_at_once_split_under_the_byte_limit() {
        let t = TestChain::new(1);
        let admission = admission_of(&t);
        let (net, mut commands) = detached(&t);
        let mut rounds = Rounds {
            admission,
            network: Some(net),
            admitted: Arc::new(Notify::new()),
            gossip_interval: Duration::from_secs(1),
            rounds: Arc::default(),
            published: Arc::default(),
            outbox: Vec::new(),
            outbox_bytes: 0,
            // Just published: nothing is due for a second.
            last_publish: Some(Instant::now()),
        };
        let big = |i: u8| Transaction {
            body: bytes::Bytes::from(vec![i; 200 << 10]),
            ..Default::default()
        };
        for i in 0..5 {
            rounds.queue_for_gossip(big(i));
        }
        let mut sizes = Vec::new();
        while let Ok(c) = commands.try_recv() {
            let txs = c.published_txs().expect("transactions");
            let bytes: usize = txs.iter().map(prost::Message::encoded_len).sum();
            assert!(bytes <= GOSSIP_MAX_BYTES, "{bytes} bytes in one message");
            sizes.push(txs.len());
        }
        assert_eq!(sizes, vec![2, 2], "two messages of two; the fifth waits");
        assert_eq!(rounds.outbox.len(), 1);
        assert_eq!(rounds.published.load(Ordering::Relaxed), 2);
    }

    /// Single calls admitted one after another go out to the other validators together: the
    /// first at once, the rest in one message when the interval is over; gossiped
    /// transactions never go out again.
    #[tokio::test(start_paused = true)]
    async fn client_transactions_admitted_within_an_interval_share_one_gossip_message() {
        crate::environment::simulate(0);
        let t = TestChain::new(8);
        let admission = admission_of(&t);
        let (net, mut commands) = detached(&t);
        let q = AdmissionQueue::start(
            admission,
            Some((net, GOSSIP_INTERVAL)),
            Arc::new(Notify::new()),
        );
        let gossiped = |commands: &mut mpsc::Receiver<crate::network::Command>| {
            let mut out = Vec::new();
            while let Ok(c) = commands.try_recv() {
                out.push(c.published_txs().expect("only transactions are gossiped"));
            }
            out
        };
        let hash = |tx: &Transaction| quorate_proto::tx::tx_hash(&tx.body);

        let first = t.transfer(0, t.addr(1), 1, 0);
        assert!(
            q.admit(vec![first.clone()], Origin::Client).await.unwrap()[0]
                .result
                .is_ok()
        );
        let sent = gossiped(&mut commands);
        assert_eq!(sent.len(), 1, "an idle node gossips at once");
        assert_eq!(
            sent[0].iter().map(hash).collect::<Vec<_>>(),
            vec![hash(&first)]
        );

        // Five more single calls and one gossiped transaction, all within the interval.
        let mut later = Vec::new();
        for i in 1..6 {
            let tx = t.transfer(i, t.addr(0), 1, 0);
            admit_client(&q, &tx).await;
            later.push(hash(&tx));
        }
        let from_peer = t.transfer(6, t.addr(0), 1, 0);
        assert!(q.admit(vec![from_peer], Origin::Gossip).await.unwrap()[0]
            .result
            .is_ok());
        assert!(
            gossiped(&mut commands).is_empty(),
            "nothing more within the interval"
        );
        assert_eq!(q.published(), 1);

        tokio::time::sleep(GOSSIP_INTERVAL * 2).await;
        let sent = gossiped(&mut commands);
        assert_eq!(sent.len(), 1, "one message for the five calls");
        assert_eq!(sent[0].iter().map(hash).collect::<Vec<_>>(), later);
        assert_eq!(q.published(), 2);
        assert_eq!(q.rounds(), 7);
        crate::environment::stop_simulating();
    }
}
