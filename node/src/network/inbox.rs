//! What the network received for the consensus driver, queued per sending validator and
//! handed out in turn, so that one validator flooding the network delays only its own
//! messages: a full queue drops that sender's oldest message, never another validator's vote.

use std::collections::VecDeque;

use parking_lot::Mutex;
use tokio::sync::Notify;

/// One sender's queue.
struct Queue<T> {
    items: VecDeque<(T, usize)>,
    bytes: usize,
}

struct State<T> {
    queues: Vec<Queue<T>>,
    /// The queue served next.
    turn: usize,
    /// Items dropped because their sender's queue was full.
    dropped: u64,
}

/// A bounded inbox with one queue per sender, served round-robin.
pub struct Inbox<T> {
    state: Mutex<State<T>>,
    ready: Notify,
    max_items: usize,
    max_bytes: usize,
}

impl<T> Inbox<T> {
    /// An inbox for `senders` senders, each holding at most `max_items` items and `max_bytes`
    /// bytes (as the pusher counts them).
    pub fn new(senders: usize, max_items: usize, max_bytes: usize) -> Self {
        Self {
            state: Mutex::new(State {
                queues: (0..senders.max(1))
                    .map(|_| Queue {
                        items: VecDeque::new(),
                        bytes: 0,
                    })
                    .collect(),
                turn: 0,
                dropped: 0,
            }),
            ready: Notify::new(),
            max_items: max_items.max(1),
            max_bytes,
        }
    }

    /// Queues `item` of `bytes` from `sender` (out-of-range senders share the last queue);
    /// drops that sender's oldest items while its queue is over a bound. Returns how many were
    /// dropped.
    pub fn push(&self, sender: usize, item: T, bytes: usize) -> usize {
        let mut s = self.state.lock();
        let last = s.queues.len() - 1;
        let q = &mut s.queues[sender.min(last)];
        q.items.push_back((item, bytes));
        q.bytes += bytes;
        let mut dropped = 0;
        while q.items.len() > self.max_items || (q.bytes > self.max_bytes && q.items.len() > 1) {
            if let Some((_, b)) = q.items.pop_front() {
                q.bytes -= b;
                dropped += 1;
            }
        }
        s.dropped += dropped as u64;
        drop(s);
        self.ready.notify_one();
        dropped
    }

    /// The next item, taking senders in turn; `None` when every queue is empty.
    pub fn try_pop(&self) -> Option<T> {
        let mut s = self.state.lock();
        let n = s.queues.len();
        for i in 0..n {
            let idx = (s.turn + i) % n;
            if let Some((item, bytes)) = s.queues[idx].items.pop_front() {
                s.queues[idx].bytes -= bytes;
                s.turn = (idx + 1) % n;
                return Some(item);
            }
        }
        None
    }

    /// Waits for the next item.
    pub async fn pop(&self) -> T {
        loop {
            let notified = self.ready.notified();
            if let Some(item) = self.try_pop() {
                return item;
            }
            notified.await;
        }
    }

    /// Items dropped so far because a sender's queue was full.
    pub fn dropped(&self) -> u64 {
        self.state.lock().dropped
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Issue 13, defect 4: one shared queue meant a validator flooding it made every other
    /// validator's votes drop. Per-sender queues keep the others' messages whole.
    #[test]
    fn a_flooding_sender_drops_only_its_own_messages() {
        let inbox = Inbox::new(4, 8, 1 << 20);
        inbox.push(1, "honest vote", 100);
        for _ in 0..10_000 {
            inbox.push(0, "flood", 100);
        }
        inbox.push(2, "another honest vote", 100);
        let mut got = Vec::new();
        while let Some(m) = inbox.try_pop() {
            got.push(m);
        }
        assert!(got.contains(&"honest vote"));
        assert!(got.contains(&"another honest vote"));
        assert_eq!(got.iter().filter(|m| **m == "flood").count(), 8);
        assert_eq!(inbox.dropped(), 10_000 - 8);
    }

    #[test]
    fn bytes_are_bounded_per_sender_and_senders_take_turns() {
        let inbox = Inbox::new(2, 100, 1000);
        for i in 0..5 {
            inbox.push(0, i, 400);
        }
        inbox.push(1, 100, 10);
        // Sender 0 keeps only its newest 2 (800 bytes); the senders alternate.
        assert_eq!(inbox.try_pop(), Some(3));
        assert_eq!(inbox.try_pop(), Some(100));
        assert_eq!(inbox.try_pop(), Some(4));
        assert_eq!(inbox.try_pop(), None);
    }
}
