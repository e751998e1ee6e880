"""A `quorate dev` node for the tests: the binary named by QUORATE_BIN (built by the test
command), on a free loopback port, in a temporary home; stopped and removed afterwards."""
from __future__ import annotations

import os
import pathlib
import queue
import shutil
import subprocess
import tempfile
import threading

import pytest

REPO = pathlib.Path(__file__).resolve().parents[3]


def quorate_bin() -> str:
    path = os.environ.get("QUORATE_BIN") or str(REPO / "target" / "debug" / "quorate")
    if not os.access(path, os.X_OK):
        pytest.skip(f"no quorate binary at {path} (set QUORATE_BIN; `cargo build -p quorate-cli`)")
    return path


class DevNode:
    """`quorate dev` in `home` (a new temporary one by default) at `addr`."""

    def __init__(self, home: pathlib.Path | None = None, addr: str = "127.0.0.1:0") -> None:
        self.owns_home = home is None
        self.home = home or pathlib.Path(tempfile.mkdtemp(prefix="quorate-py-dev-"))
        self.proc = subprocess.Popen(
            [quorate_bin(), "dev", "--home", str(self.home), "--grpc-addr", addr],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        lines: queue.Queue[str] = queue.Queue()

        def read() -> None:
            assert self.proc.stdout is not None
            for line in self.proc.stdout:
                lines.put(line)

        threading.Thread(target=read, daemon=True).start()
        self.addr = ""
        seen = []
        while not self.addr:
            try:
                line = lines.get(timeout=60)
            except queue.Empty:
                self.stop()
                raise RuntimeError("quorate dev did not start within 60 s:\n" + "".join(seen))
            seen.append(line)
            if line.startswith("grpc listening on "):
                self.addr = line.removeprefix("grpc listening on ").strip()
        self.url = f"http://{self.addr}"

    def key_file(self, i: int) -> pathlib.Path:
        return self.home / "keys" / f"dev-{i}.json"

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        if self.owns_home:
            shutil.rmtree(self.home, ignore_errors=True)


@pytest.fixture(scope="session")
def dev() -> DevNode:
    node = DevNode()
    yield node
    node.stop()
