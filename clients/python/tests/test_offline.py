"""What needs no node: keys, addresses, hashes and signatures, checked against the command
line's own (the same rules in Rust)."""
from __future__ import annotations

import json
import subprocess

import pytest

import quorate
from quorate import tx

from conftest import quorate_bin


def test_a_key_file_of_the_command_line_loads_with_its_address(tmp_path):
    path = tmp_path / "k.json"
    subprocess.run([quorate_bin(), "keys", "generate", "--out", str(path)], check=True,
                   capture_output=True)
    written = json.loads(path.read_text())
    key = quorate.Key.load(path)
    assert key.public_key.hex() == written["public_key"]
    assert key.address.hex() == written["address"]
    # A file whose address is not its key's is refused.
    written["address"] = "00" * 20
    path.write_text(json.dumps(written))
    with pytest.raises(quorate.BadInput):
        quorate.Key.load(path)


def test_a_saved_key_loads_back_and_signs_verifiably(tmp_path):
    key = quorate.Key.generate()
    key.save(tmp_path / "k.json")
    again = quorate.Key.load(tmp_path / "k.json")
    assert again.address == key.address
    assert (tmp_path / "k.json").stat().st_mode & 0o777 == 0o600
    body = tx.transfer("c", key.address, 0, 1000, quorate.Key.generate().address, 5)
    signed = tx.sign(body, key)
    assert tx.check_signatures(signed) == [key.public_key]
    signed.signature = bytes(64)
    with pytest.raises(quorate.BadInput):
        tx.check_signatures(signed)


def test_a_multisig_address_is_the_command_lines(tmp_path):
    keys = []
    for i in range(3):
        path = tmp_path / f"m{i}.json"
        subprocess.run([quorate_bin(), "keys", "generate", "--out", str(path)], check=True,
                       capture_output=True)
        keys.append(quorate.Key.load(path))
    out = tmp_path / "set.json"
    run = subprocess.run(
        [quorate_bin(), "keys", "multisig",
         "--member", f"{tmp_path / 'm0.json'}:2", "--member", str(tmp_path / "m1.json"),
         "--member", str(tmp_path / "m2.json"), "--threshold", "2", "--large-transfer", "3",
         "--large-transfer-above", "5000", "--out", str(out), "--json"],
        check=True, capture_output=True, text=True)
    expected = json.loads(out.read_text())
    key_set = quorate.KeySet(
        [(keys[0].public_key, 2), (keys[1].public_key, 1), (keys[2].public_key, 1)],
        quorate.Thresholds(base=2, key_management=4, large_transfer_above=5000,
                           large_transfer=3))
    assert key_set.address.hex() == expected["address"], run.stdout


def test_bad_input_is_refused_before_anything_is_sent():
    with pytest.raises(quorate.BadInput):
        tx.transfer("c", bytes(19), 0, 1, bytes(20), 1)
    with pytest.raises(quorate.BadInput):
        tx.transfer("c", bytes(20), 0, 1, bytes(20), 0)
    with pytest.raises(quorate.BadInput):
        quorate.KeySet([], quorate.Thresholds(base=1, key_management=1))
    with pytest.raises(quorate.BadInput):
        quorate.Node("ftp://x:1")


def test_a_cosigner_reads_the_transaction_in_words_and_a_bad_signature_stops_it():
    a, b = quorate.Key(bytes([1] * 32)), quorate.Key(bytes([2] * 32))
    to = quorate.Key(bytes([3] * 32)).address
    signed = quorate.tx.sign(quorate.tx.transfer("c", a.address, 4, 1_000, to, 25, memo=b"rent"), a)
    words = quorate.tx.describe(quorate.tx.from_text(quorate.tx.to_text(signed)))
    assert f"transfer 25 to {to.hex()}" in words and "nonce 4" in words and "rent" in words
    forged = quorate.tx.from_text(quorate.tx.to_text(signed))
    forged.signature = bytes(64)
    with pytest.raises(quorate.BadInput):
        quorate.tx.cosign(forged, b)


def test_a_stream_resumes_from_the_first_height_that_may_hold_what_is_left():
    from quorate import Checkpoint
    assert Checkpoint(0, 0, 0).resume_height == 1
    assert Checkpoint.before_height(1).resume_height == 1
    assert Checkpoint.before_height(50).resume_height == 50
    assert Checkpoint(49, 3, 0).resume_height == 49
