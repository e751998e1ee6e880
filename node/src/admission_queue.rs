//! Coalesced admission: concurrent `Submit` and `SubmitBatch` calls, and gossiped batches,
//! join one admission round — one decode pass, one parallel signature batch, one mempool lock,
//! one multi-get of the signers, one gossip message for what clients sent — and each caller gets
//! its own results.
//!
//! A round starts as soon as the previous one ends and takes everything that queued meanwhile
//! (up to [`MAX_ROUND_TXS`]), as group commit does: an idle node admits a lone transaction at
//! once, without waiting for company, and rounds grow with the load.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use quorate_proto::v1::Transaction;
use tokio::sync::{mpsc, oneshot, Notify};

use crate::admission::{Admission, Admitted};
use crate::network::NetworkHandle;

/// Transactions one round takes at most (a request larger than this is a round alone).
pub const MAX_ROUND_TXS: usize = 4096;
/// Requests waiting for a round at most; callers beyond wait to enqueue.
const QUEUE_REQUESTS: usize = 4096;

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
}

impl AdmissionQueue {
    /// Starts the admission task. Admitted client transactions go out on `network`; every
    /// round that admits something wakes `admitted` (the block driver) once.
    pub fn start(
        admission: Arc<Admission>,
        network: Option<NetworkHandle>,
        admitted: Arc<Notify>,
    ) -> Self {
        let (tx, rx) = mpsc::channel(QUEUE_REQUESTS);
        let rounds = Arc::new(AtomicU64::new(0));
        tokio::spawn(run(rx, admission, network, admitted, rounds.clone()));
        Self { tx, rounds }
    }

    /// Rounds started so far.
    pub fn rounds(&self) -> u64 {
        self.rounds.load(Ordering::Relaxed)
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

async fn run(
    mut rx: mpsc::Receiver<Request>,
    admission: Arc<Admission>,
    network: Option<NetworkHandle>,
    admitted: Arc<Notify>,
    rounds: Arc<AtomicU64>,
) {
    let m = crate::metrics::get();
    while let Some(first) = rx.recv().await {
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
        rounds.fetch_add(1, Ordering::Relaxed);
        m.admission_round_txs.observe(count as f64);
        let mut sizes = Vec::with_capacity(round.len());
        let mut txs = Vec::with_capacity(count);
        for r in &mut round {
            sizes.push(r.txs.len());
            txs.append(&mut r.txs);
        }
        // Transactions share their buffers (`Bytes`): keeping them for gossip copies no payload.
        let kept = match &network {
            Some(_) if round.iter().any(|r| r.origin == Origin::Client) => Some(txs.clone()),
            _ => None,
        };
        let a = admission.clone();
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
                continue;
            }
        };
        if results.iter().any(|a| a.result.is_ok()) {
            admitted.notify_one();
            // One gossip message for every client transaction of the round that was admitted
            // (first security verification passed here; the others verify again on receipt).
            if let (Some(net), Some(kept)) = (&network, kept) {
                let mut slot = 0;
                let mut out = Vec::new();
                let mut kept = kept.into_iter();
                for (r, &n) in round.iter().zip(&sizes) {
                    for (tx, a) in kept.by_ref().take(n).zip(&results[slot..slot + n]) {
                        if r.origin == Origin::Client && a.result.is_ok() {
                            out.push(tx);
                        }
                    }
                    slot += n;
                }
                if !out.is_empty() {
                    net.publish_txs(out);
                }
            }
        }
        let mut results = results.into_iter();
        for (r, n) in round.into_iter().zip(sizes) {
            let _ = r.reply.send(Ok(results.by_ref().take(n).collect()));
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
        let admission = Arc::new(Admission::new(
            t.genesis.chain_id.clone(),
            t.chain.params().clone(),
            t.chain.storage().clone(),
            t.mempool.clone(),
            t.chain.contracts().clone(),
        ));
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
}
