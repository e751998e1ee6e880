//! What the network received for the consensus driver, queued per sending validator and
//! handed out in turn, so that one validator flooding the network delays only its own
//! messages: a full queue drops that sender's oldest message, never another validator's vote.
//! An item may carry a key (a digest of its content): while one item of a key waits, another
//! with that key is not queued, so copies cannot push a sender's other messages out.

use std::collections::{HashMap, VecDeque};

use parking_lot::Mutex;
use tokio::sync::Notify;

/// A queued item: the item, its bytes and its key, if it has one.
type Entry<T> = (T, usize, Option<[u8; 32]>);

/// One sender's queue.
struct Queue<T> {
    items: VecDeque<Entry<T>>,
    bytes: usize,
}

struct State<T> {
    queues: Vec<Queue<T>>,
    /// The queue served next.
    turn: usize,
    /// Items dropped because their sender's queue was full.
    dropped: u64,
    /// Items waiting, by key.
    keyed: HashMap<[u8; 32], u32>,
    /// The most items of one key that ever waited at once.
    most_copies: u32,
    /// Items not queued because one of their key was waiting.
    copies_refused: u64,
}

impl<T> State<T> {
    /// Forgets one waiting item of `key`.
    fn release(&mut self, key: Option<[u8; 32]>) {
        if let Some(k) = key {
            if let std::collections::hash_map::Entry::Occupied(mut e) = self.keyed.entry(k) {
                *e.get_mut() -= 1;
                if *e.get() == 0 {
                    e.remove();
                }
            }
        }
    }
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
                keyed: HashMap::new(),
                most_copies: 0,
                copies_refused: 0,
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
        self.queue(sender, item, bytes, None).unwrap_or(0)
    }

    /// Like [`Inbox::push`], for an item whose content has the digest `key`: `None` (nothing
    /// queued) if an item of that key is waiting, otherwise how many were dropped.
    pub fn push_keyed(&self, sender: usize, key: [u8; 32], item: T, bytes: usize) -> Option<usize> {
        self.queue(sender, item, bytes, Some(key))
    }

    /// Whether an item of `key` is waiting: if so, one more of that key is counted as refused
    /// (the caller drops it).
    pub fn is_copy(&self, key: &[u8; 32]) -> bool {
        let mut s = self.state.lock();
        let copy = s.keyed.contains_key(key);
        s.copies_refused += u64::from(copy);
        copy
    }

    fn queue(&self, sender: usize, item: T, bytes: usize, key: Option<[u8; 32]>) -> Option<usize> {
        let mut s = self.state.lock();
        if let Some(k) = key {
            if s.keyed.contains_key(&k) {
                s.copies_refused += 1;
                return None;
            }
            let copies = s.keyed.entry(k).or_default();
            *copies += 1;
            let copies = *copies;
            s.most_copies = s.most_copies.max(copies);
        }
        let last = s.queues.len() - 1;
        let q = &mut s.queues[sender.min(last)];
        q.items.push_back((item, bytes, key));
        q.bytes += bytes;
        let mut gone = Vec::new();
        while q.items.len() > self.max_items || (q.bytes > self.max_bytes && q.items.len() > 1) {
            if let Some((_, b, k)) = q.items.pop_front() {
                q.bytes -= b;
                gone.push(k);
            }
        }
        let dropped = gone.len();
        for k in gone {
            s.release(k);
        }
        s.dropped += dropped as u64;
        drop(s);
        self.ready.notify_one();
        Some(dropped)
    }

    /// The next item, taking senders in turn; `None` when every queue is empty.
    pub fn try_pop(&self) -> Option<T> {
        let mut s = self.state.lock();
        let n = s.queues.len();
        for i in 0..n {
            let idx = (s.turn + i) % n;
            if let Some((item, bytes, key)) = s.queues[idx].items.pop_front() {
                s.queues[idx].bytes -= bytes;
                s.turn = (idx + 1) % n;
                s.release(key);
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

    /// The most items of one key that ever waited at once (1 while copies are kept out).
    pub fn most_copies(&self) -> u32 {
        self.state.lock().most_copies
    }

    /// Items not queued so far because one of their key was waiting.
    pub fn copies_refused(&self) -> u64 {
        self.state.lock().copies_refused
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

    /// Issue 24, finding 33: a keyed item is not queued while one of its key waits; its key is
    /// free again once it is taken, or pushed out of a full queue.
    #[test]
    fn a_key_waits_once_and_is_freed_when_its_item_goes() {
        let inbox = Inbox::new(2, 2, 1 << 20);
        assert_eq!(inbox.push_keyed(0, [1; 32], "vote", 10), Some(0));
        assert_eq!(inbox.push_keyed(0, [1; 32], "copy", 10), None);
        assert_eq!(inbox.push_keyed(1, [1; 32], "copy elsewhere", 10), None);
        assert!(inbox.is_copy(&[1; 32]));
        assert_eq!(inbox.copies_refused(), 3);
        assert_eq!(inbox.try_pop(), Some("vote"));
        assert!(!inbox.is_copy(&[1; 32]), "taken: its key is free");
        assert_eq!(inbox.push_keyed(0, [1; 32], "again", 10), Some(0));
        // Two more of sender 0 push the oldest out of its 2-item queue, and free its key.
        inbox.push(0, "a", 10);
        assert_eq!(inbox.push(0, "b", 10), 1);
        assert!(!inbox.is_copy(&[1; 32]), "pushed out: its key is free");
        assert_eq!(inbox.most_copies(), 1);
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
