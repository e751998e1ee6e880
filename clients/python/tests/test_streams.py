"""Block streams that resume: across a node restart no block is skipped or repeated."""
from __future__ import annotations

import shutil
import socket
import tempfile
import pathlib

import quorate

from conftest import DevNode


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_a_block_stream_resumes_across_a_node_restart():
    home = pathlib.Path(tempfile.mkdtemp(prefix="quorate-py-stream-"))
    addr = f"127.0.0.1:{free_port()}"
    node = DevNode(home, addr)
    try:
        client = quorate.Node(f"http://{addr}")
        blocks = client.blocks(1, give_up_after_s=60)
        heights = [next(blocks).header.height for _ in range(3)]
        # The node stops and starts again from its disk, at the same address; the stream is
        # opened again from the next height.
        node.stop()
        node = DevNode(home, addr)
        heights += [next(blocks).header.height for _ in range(3)]
        assert heights == list(range(1, 7))
        client.close()
    finally:
        node.stop()
        shutil.rmtree(home, ignore_errors=True)


def test_a_stream_of_a_node_that_never_comes_back_ends_in_unreachable():
    client = quorate.Node(f"http://127.0.0.1:{free_port()}")
    try:
        next(client.blocks(1, give_up_after_s=1.0))
    except quorate.Unreachable as e:
        assert "blocks from height 1" in str(e)
    else:
        raise AssertionError("a stream from no node yielded a block")


def deposit(client, key, nonce, amount):
    remittance = quorate.system.contract("remittance")
    body = quorate.tx.body("quorate-dev", key.address, nonce, 10_000_000)
    body.call.CopyFrom(remittance.call("deposit", remittance.args("deposit", entry="py"), amount))
    return client.submit_and_wait(quorate.tx.sign(body, key), timeout_s=60)


def test_an_event_stream_resumes_across_a_node_restart_from_its_checkpoint():
    home = pathlib.Path(tempfile.mkdtemp(prefix="quorate-py-events-"))
    addr = f"127.0.0.1:{free_port()}"
    node = DevNode(home, addr)
    remittance = quorate.system.contract("remittance")
    try:
        client = quorate.Node(f"http://{addr}")
        key = quorate.Key.load(node.key_file(2))
        events = client.events(contract=remittance.address, kind="deposited")
        sent = [deposit(client, key, n, 10 + n) for n in range(3)]
        seen = [next(events) for _ in range(3)]
        saved = quorate.Checkpoint.of(seen[-1])
        node.stop()
        node = DevNode(home, addr)
        sent += [deposit(client, key, n, 10 + n) for n in range(3, 6)]
        seen += [next(events) for _ in range(3)]
        assert [e.tx_hash for e in seen] == [o.tx_hash for o in sent], "each once, in order"
        amounts = [remittance.result("deposit", o.receipt.return_data).amount for o in sent]
        assert amounts == [10, 11, 12, 13, 14, 15]
        # A stream opened later from the saved checkpoint: exactly the events after it.
        later = client.events(contract=remittance.address, after=saved)
        assert [next(later).tx_hash for _ in range(3)] == [o.tx_hash for o in sent[3:]]
        reserves = remittance.query(client, "reserves", owner=key.address)
        assert reserves.total == sum(range(10, 16))
        client.close()
    finally:
        node.stop()
        shutil.rmtree(home, ignore_errors=True)
