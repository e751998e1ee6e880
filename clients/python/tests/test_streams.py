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
