"""What can go wrong talking to a node, as values a program can act on."""
from __future__ import annotations


class QuorateError(Exception):
    """Every error of this library."""


class BadInput(QuorateError):
    """An argument this library refuses before anything is sent (a key file, an address)."""


class Unreachable(QuorateError):
    """The node could not be reached or the call broke: nothing is known of what it did."""

    def __init__(self, url: str, cause: str, fix: str) -> None:
        super().__init__(f"cannot talk to the node at {url}: {cause}; {fix}")
        self.url, self.cause, self.fix = url, cause, fix


class Refused(QuorateError):
    """The node refused the transaction (nothing changed), with its code: MALFORMED,
    WRONG_CHAIN, BAD_SIGNATURE, NONCE_USED, INSUFFICIENT_BALANCE, ... (docs/TRANSACTIONS.md)."""

    def __init__(self, tx_hash: bytes | None, code: str, message: str) -> None:
        shown = tx_hash.hex() if tx_hash else "(undecodable)"
        super().__init__(f"transaction {shown} refused: {code}: {message}")
        self.tx_hash, self.code, self.message = tx_hash, code, message


class OutcomeUnknown(QuorateError):
    """No outcome within the time given, or the connection broke while waiting: the
    transaction may still commit. Ask again about `tx_hash` (it is included at most once)."""

    def __init__(self, tx_hash: bytes, waited: float, why: str) -> None:
        super().__init__(
            f"transaction {tx_hash.hex()}: outcome unknown after {waited:.1f} s ({why}); "
            "query this hash"
        )
        self.tx_hash, self.waited, self.why = tx_hash, waited, why


class BadAnswer(QuorateError):
    """The node answered something that cannot be right (a committed status without a
    receipt, a hash of the wrong length)."""


class QueryFailed(QuorateError):
    """A read-only contract call failed: the contract trapped, aborted, ran out of fuel or
    refused its arguments (`status` is the ExecStatus name)."""

    def __init__(self, method: str, status: str, message: str) -> None:
        super().__init__(f"query {method}: {status} {message}")
        self.method, self.status, self.message = method, status, message
