"""The nonce manager's rules, offline: a nonce refused for a reason that leaves it free is
handed out again before any new one; a taken one never is; resync moves past nonces taken
elsewhere."""
from __future__ import annotations

import threading
from types import SimpleNamespace

import quorate


class FakeNode:
    def __init__(self, next_nonce: int) -> None:
        self.next_nonce = next_nonce

    def account(self, _address: bytes):
        return SimpleNamespace(next_nonce=self.next_nonce)


def test_refused_nonces_come_back_first_and_taken_ones_never():
    m = quorate.NonceManager(FakeNode(5), b"\x01" * 20)
    assert [m.lease() for _ in range(3)] == [5, 6, 7]
    m.refused(6, "MEMPOOL_FULL")      # free again: no gap may stay at 6
    m.refused(7, "NONCE_USED")        # taken: never again
    assert m.lease() == 6
    assert m.lease() == 8


def test_resync_moves_past_nonces_taken_elsewhere():
    node = FakeNode(0)
    m = quorate.NonceManager(node, b"\x01" * 20)
    assert [m.lease() for _ in range(3)] == [0, 1, 2]
    m.refused(1, "INSUFFICIENT_BALANCE")
    node.next_nonce = 10              # another sender used 0..9
    m.resync()
    assert m.lease() == 10, "the nonce given back is below the floor"


def test_many_threads_never_share_a_nonce():
    m = quorate.NonceManager(FakeNode(0), b"\x01" * 20)
    got: list[int] = []
    lock = threading.Lock()

    def take() -> None:
        for _ in range(200):
            n = m.lease()
            with lock:
                got.append(n)

    threads = [threading.Thread(target=take) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(got) == list(range(1600))


def test_a_nonce_refused_twice_or_never_handed_out_is_not_handed_out_twice():
    m = quorate.NonceManager(FakeNode(0), b"\x01" * 20)
    assert m.lease() == 0
    m.refused(0, "MEMPOOL_FULL")
    m.refused(0, "MEMPOOL_FULL")
    m.refused(7, "MEMPOOL_FULL")
    assert [m.lease(), m.lease(), m.lease()] == [0, 1, 2]
