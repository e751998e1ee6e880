"""Nonces for one account under concurrent senders."""
from __future__ import annotations

import threading

from .node import Node

#: Refusals after which the node's view of the account's nonces is read again.
RESYNC_ON = frozenset({"NONCE_USED", "NONCE_TOO_FAR", "NONCE_PENDING"})


class NonceManager:
    """Hands out the nonces of `address` to any number of threads, one each, in order. After a
    refusal that says the nonces moved (another program sent for the account, a transaction
    was dropped), `refused(code)` reads them from the node again."""

    def __init__(self, node: Node, address: bytes) -> None:
        self._node, self._address = node, address
        self._lock = threading.Lock()
        self._next: int | None = None

    def lease(self) -> int:
        """The next nonce, never handed out twice unless the manager resynchronised."""
        with self._lock:
            if self._next is None:
                self._next = self._node.account(self._address).next_nonce
            nonce = self._next
            self._next += 1
            return nonce

    def refused(self, code: str) -> None:
        """A transaction with a leased nonce was refused with `code`: for a nonce refusal the
        next lease reads the account again."""
        if code in RESYNC_ON:
            self.resync()

    def resync(self) -> None:
        """Forgets what was handed out: the next lease starts from the node's next nonce."""
        with self._lock:
            self._next = None
