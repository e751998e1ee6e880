//! One account's nonces for many tasks at once. Each task leases the next nonce; a lease whose
//! transaction the node refused (for a reason that leaves the nonce free) is given back and
//! handed out again before any new nonce, so the account's nonces have no gap (a gap would
//! hold every later transaction in the mempool) and no nonce is handed to two tasks at once.
//! A nonce below the floor a [`NonceManager::resync`] set is never handed out again.

use std::collections::BTreeSet;
use std::sync::Arc;

use parking_lot::Mutex;
use quorate_proto::crypto::Address;

use quorate_proto::v1::RejectCode;

use crate::error::ClientError;
use crate::node::Node;

/// The nonces of one account.
#[derive(Clone, Debug)]
pub struct NonceManager {
    account: Address,
    state: Arc<Mutex<State>>,
}

#[derive(Debug)]
struct State {
    /// The lowest nonce never handed out.
    next: u64,
    /// Nonces given back, handed out again lowest first.
    returned: BTreeSet<u64>,
    /// Nonces below this are taken on the chain (a resync said so): never given back.
    floor: u64,
}

impl State {
    fn give_back(&mut self, nonce: u64) {
        if nonce >= self.floor {
            self.returned.insert(nonce);
        }
    }
}

impl NonceManager {
    /// Nonces of `account` from `next` on.
    pub fn new(account: Address, next: u64) -> Self {
        Self {
            account,
            state: Arc::new(Mutex::new(State {
                next,
                returned: BTreeSet::new(),
                floor: next,
            })),
        }
    }

    /// Nonces of `account` from the next one `node` knows (its pending transactions counted).
    pub async fn load(node: &Node, account: Address) -> Result<Self, ClientError> {
        Ok(Self::new(account, node.account(&account).await?.next_nonce))
    }

    /// The account.
    pub fn account(&self) -> Address {
        self.account
    }

    /// The next nonce for a transaction: one given back if any, else a new one.
    pub fn lease(&self) -> NonceLease {
        let mut s = self.state.lock();
        let nonce = match s.returned.pop_first() {
            Some(n) => n,
            None => {
                s.next += 1;
                s.next - 1
            }
        };
        NonceLease {
            nonce,
            owner: Some(self.state.clone()),
        }
    }

    /// Moves past nonces taken elsewhere: `next` is the node's next nonce for the account
    /// (its committed and pending transactions counted), after a refusal that says another
    /// sender used this manager's nonces. Nonces below it are never handed out again, even by
    /// leases still open.
    pub fn resync(&self, next: u64) {
        let mut s = self.state.lock();
        s.floor = s.floor.max(next);
        let floor = s.floor;
        s.returned.retain(|n| *n >= floor);
        s.next = s.next.max(floor);
    }
}

/// A nonce handed to one task. Call [`NonceLease::used`] once the node admitted the
/// transaction (or its outcome is unknown), [`NonceLease::refused`] with the node's code when
/// it refused it; dropped without either, the nonce is given back.
#[derive(Debug)]
pub struct NonceLease {
    nonce: u64,
    owner: Option<Arc<Mutex<State>>>,
}

impl NonceLease {
    /// The nonce.
    pub fn nonce(&self) -> u64 {
        self.nonce
    }

    /// The transaction with this nonce was admitted (or may have been): never hand it out
    /// again.
    pub fn used(mut self) {
        self.owner = None;
    }

    /// The node refused the transaction with `code`: a refusal that says the nonce is taken
    /// (used by a committed transaction, held by a pending one, or this very transaction is
    /// pending) keeps it from being handed out again; any other gives it back.
    pub fn refused(self, code: RejectCode) {
        if matches!(
            code,
            RejectCode::NonceUsed | RejectCode::NoncePending | RejectCode::Duplicate
        ) {
            self.used();
        }
    }
}

impl Drop for NonceLease {
    fn drop(&mut self) {
        if let Some(owner) = self.owner.take() {
            owner.lock().give_back(self.nonce);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn leases_are_unique_and_a_returned_nonce_is_handed_out_first() {
        let m = NonceManager::new(Address([7; 20]), 5);
        let a = m.lease();
        let b = m.lease();
        let c = m.lease();
        assert_eq!((a.nonce(), b.nonce(), c.nonce()), (5, 6, 7));
        a.used();
        drop(b); // refused: 6 comes back
        c.used();
        assert_eq!(m.lease().nonce(), 6, "the gap is filled first");
    }

    #[test]
    fn many_threads_get_every_nonce_once() {
        let m = NonceManager::new(Address([1; 20]), 0);
        let handles: Vec<_> = (0..20)
            .map(|t| {
                let m = m.clone();
                std::thread::spawn(move || {
                    (0..50)
                        .map(|i| {
                            let lease = m.lease();
                            let n = lease.nonce();
                            // Every seventh is refused and given back, to be handed out again.
                            if (t + i) % 7 == 0 {
                                drop(lease);
                                None
                            } else {
                                lease.used();
                                Some(n)
                            }
                        })
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        let mut used: Vec<u64> = handles
            .into_iter()
            .flat_map(|h| h.join().expect("thread"))
            .flatten()
            .collect();
        used.sort_unstable();
        let before = used.len();
        used.dedup();
        assert_eq!(used.len(), before, "a nonce used twice");
        // Every nonce handed out is either used or given back to be handed out again.
        let s = m.state.lock();
        let mut all: Vec<u64> = used.iter().chain(&s.returned).copied().collect();
        all.sort_unstable();
        assert_eq!(
            all,
            (0..s.next).collect::<Vec<_>>(),
            "a gap, or a nonce both used and given back"
        );
        assert!(
            s.returned.len() < 20,
            "given-back nonces are handed out again first"
        );
    }

    #[test]
    fn a_resync_moves_past_nonces_used_elsewhere_even_for_open_leases() {
        let m = NonceManager::new(Address([2; 20]), 3);
        drop(m.lease()); // 3 given back
        let open = m.lease(); // 3 again, still out when the resync comes
        assert_eq!(open.nonce(), 3);
        m.resync(10);
        drop(open); // below the floor: never handed out again
        let (a, b) = (m.lease(), m.lease());
        assert_eq!((a.nonce(), b.nonce()), (10, 11));
    }

    #[test]
    fn a_refusal_that_says_the_nonce_is_taken_keeps_it() {
        let m = NonceManager::new(Address([3; 20]), 0);
        m.lease().refused(RejectCode::NoncePending);
        m.lease().refused(RejectCode::InsufficientBalance); // 1 given back
        let (a, b) = (m.lease(), m.lease());
        assert_eq!((a.nonce(), b.nonce()), (1, 2));
    }
}
