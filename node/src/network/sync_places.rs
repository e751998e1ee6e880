//! The per-peer limit on sync requests waiting for this node's sync server: at most
//! [`SYNC_REQUESTS_PER_PEER`](super::SYNC_REQUESTS_PER_PEER) of one peer's requests hold a place
//! at once, and a place is freed only when the server answers the request that took it
//! (issue 24, finding 22: a refused request's failure freed a place it never held, so one peer
//! could queue without bound; and a request that timed out on the wire freed its place while
//! it still waited in the queue). The libp2p network task and the node simulator share it.

use std::collections::HashMap;
use std::hash::Hash;

use super::SYNC_REQUESTS_PER_PEER;

/// Places in the sync server's queues, per peer (`P`), held by request (`I`).
#[derive(Debug)]
pub struct SyncPlaces<P, I> {
    /// Places each peer holds.
    held: HashMap<P, usize>,
    /// The peer each holding request came from.
    holders: HashMap<I, P>,
}

impl<P, I> Default for SyncPlaces<P, I> {
    fn default() -> Self {
        Self {
            held: HashMap::new(),
            holders: HashMap::new(),
        }
    }
}

impl<P: Hash + Eq + Copy, I: Hash + Eq> SyncPlaces<P, I> {
    /// True when `peer` may queue one more request.
    pub fn has_room(&self, peer: &P) -> bool {
        self.held(peer) < SYNC_REQUESTS_PER_PEER
    }

    /// Request `id` of `peer` was queued: it holds a place until [`SyncPlaces::free`].
    pub fn take(&mut self, peer: P, id: I) {
        *self.held.entry(peer).or_insert(0) += 1;
        self.holders.insert(id, peer);
    }

    /// The server answered request `id` (whether or not the answer reached its asker): the
    /// place it held, if it held one, is free.
    pub fn answered(&mut self, id: &I) {
        let Some(peer) = self.holders.remove(id) else {
            return;
        };
        if let Some(n) = self.held.get_mut(&peer) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                self.held.remove(&peer);
            }
        }
    }

    /// Request `id` of `peer` failed on the wire (refused, timed out, its stream closed): that
    /// frees nothing. A refused request holds no place; one that holds a place still waits in
    /// the queue, and keeps it until the server answers it.
    pub fn failed(&mut self, _peer: &P, _id: &I) {}

    /// Places `peer` holds.
    pub fn held(&self, peer: &P) -> usize {
        self.held.get(peer).copied().unwrap_or(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_answer_to_a_request_that_took_a_place_frees_one() {
        let mut places = SyncPlaces::<u8, u32>::default();
        for id in 0..SYNC_REQUESTS_PER_PEER as u32 {
            assert!(places.has_room(&1));
            places.take(1, id);
        }
        assert!(!places.has_room(&1), "the limit is reached");
        assert!(places.has_room(&2), "per peer");
        // Refused requests fail too, and queued ones time out on the wire: neither frees a
        // place while the queued requests wait.
        for failed in 0..200 {
            places.failed(&1, &failed);
        }
        assert!(!places.has_room(&1));
        assert_eq!(places.held(&1), SYNC_REQUESTS_PER_PEER);
        places.answered(&0);
        places.answered(&0);
        assert_eq!(places.held(&1), SYNC_REQUESTS_PER_PEER - 1, "freed once");
        assert!(places.has_room(&1));
    }
}
