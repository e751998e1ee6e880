"""Nonces for one account under concurrent senders (the same rules as the Rust library's)."""
from __future__ import annotations

import threading

from .node import Node

#: Refusals that say the nonce is taken (used by a committed transaction, held by a pending one,
#: or this very transaction is pending): it is never handed out again.
TAKEN = frozenset({"NONCE_USED", "NONCE_PENDING", "DUPLICATE"})


class NonceManager:
    """Hands out the nonces of `address` to any number of threads, one each, never one twice.
    A nonce whose transaction the node refused for a reason that leaves it free (a full mempool,
    a low balance, a bad signature) is given back with `refused(nonce, code)` and handed out
    again before any new one, so the account's nonces keep no gap (a gap holds every later
    transaction in the mempool). `resync()` moves past nonces another sender took."""

    def __init__(self, node: Node, address: bytes) -> None:
        self._node, self._address = node, address
        self._lock = threading.Lock()
        self._next: int | None = None
        self._floor = 0
        self._returned: set[int] = set()

    def lease(self) -> int:
        """The next nonce: one given back if any (lowest first), else a new one."""
        with self._lock:
            if self._returned:
                nonce = min(self._returned)
                self._returned.discard(nonce)
                return nonce
            if self._next is None:
                self._next = max(self._floor, self._node.account(self._address).next_nonce)
            nonce = self._next
            self._next += 1
            return nonce

    def refused(self, nonce: int, code: str) -> None:
        """The transaction with the leased `nonce` was refused with `code`: a nonce the refusal
        says is taken stays taken; any other is given back."""
        if code in TAKEN:
            return
        with self._lock:
            # Only a nonce handed out (below the next new one) and not given back already.
            if self._next is not None and self._floor <= nonce < self._next:
                self._returned.add(nonce)

    def resync(self, next_nonce: int | None = None) -> None:
        """Moves past nonces taken elsewhere: nonces below `next_nonce` (default: the node's
        next nonce for the account, its pending transactions counted) are never handed out
        again, even those given back."""
        if next_nonce is None:
            next_nonce = self._node.account(self._address).next_nonce
        with self._lock:
            self._floor = max(self._floor, next_nonce)
            self._returned = {n for n in self._returned if n >= self._floor}
            if self._next is not None:
                self._next = max(self._next, self._floor)
