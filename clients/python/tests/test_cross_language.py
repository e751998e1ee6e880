"""Issue 26: one 2-of-3 transfer, built and first signed here in Python, co-signed by the
TypeScript library, submitted by the `quorate` command line (the Rust library): committed once,
from the multi-signature address."""
from __future__ import annotations

import os
import pathlib
import subprocess

import pytest

import quorate
from quorate import tx

from conftest import quorate_bin

COSIGN = os.environ.get("QUORATE_TS_COSIGN") or str(
    pathlib.Path(__file__).resolve().parents[2] / "typescript" / "dist" / "test" / "cosign-file.js")


def test_a_2_of_3_transfer_built_in_python_cosigned_in_typescript_submitted_from_rust(dev, tmp_path):
    if not os.path.isfile(COSIGN):
        if os.environ.get("QUORATE_REQUIRE_TS"):
            raise AssertionError(f"no TypeScript co-signer at {COSIGN}")
        pytest.skip(f"no TypeScript co-signer at {COSIGN} (npm ci in clients/typescript)")
    client = quorate.Node(dev.url)
    a, b, c = (quorate.Key.load(dev.key_file(i)) for i in (0, 1, 2))
    key_set = quorate.KeySet([(a.public_key, 1), (b.public_key, 1), (c.public_key, 1)],
                             quorate.Thresholds(base=2, key_management=3))
    # Fund the multi-signature address from a.
    fund = tx.transfer("quorate-dev", a.address, client.account(a.address).next_nonce, 1_000,
                       key_set.address, 50_000)
    assert client.submit_and_wait(tx.sign(fund, a), timeout_s=60).succeeded
    to = quorate.Key.load(dev.key_file(3)).address
    body = tx.transfer("quorate-dev", key_set.address, 0, 1_000, to, 1_234, memo=b"py-ts-rs",
                       key_set=key_set)
    path = tmp_path / "multisig.tx"
    path.write_text(tx.to_text(tx.sign(body, a)))
    # TypeScript reads it, shows what it signs, and adds b's signature.
    shown = subprocess.run(["node", COSIGN, str(path), str(dev.key_file(1))], check=True,
                           capture_output=True, text=True, timeout=60).stdout
    assert "transfer 1234 to " + to.hex() in shown, shown
    cosigned = tx.from_text(path.read_text())
    assert [bytes(s.public_key) for s in cosigned.cosignatures] == [b.public_key]
    # The command line (quorate-client) submits it and waits.
    before = client.account(to).account.balance
    out = subprocess.run([quorate_bin(), "tx", "submit", str(path), "--wait", "--node", dev.url],
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stdout + out.stderr
    assert client.account(to).account.balance == before + 1_234
    assert client.account(key_set.address).next_nonce == 1, "included once"
    client.close()
