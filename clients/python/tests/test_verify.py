"""Blocks and inclusions checked against the genesis file: the conformance vectors (valid
blocks, forged certificates, tampered set-change chains) and a real dev node's blocks."""
from __future__ import annotations

import json
import pathlib

import pytest

import quorate
from quorate import verify
from quorate.v1 import node_pb2, types_pb2

VECTORS = pathlib.Path(__file__).resolve().parents[2] / "vectors.json"


@pytest.fixture(scope="module")
def vectors():
    return json.loads(VECTORS.read_text())["verification"]


def outcome(chain_id, genesis_keys, changes, block) -> str:
    try:
        height = types_pb2.BlockHeader.FromString(block.header_bytes).height  # the signed one
        keys = verify.follow_set_changes(chain_id, genesis_keys, changes, height)
        verify.verify_block(chain_id, keys, block)
        return "ok"
    except quorate.VerifyError as e:
        return e.kind


def test_blocks_and_forged_certificates(vectors):
    genesis = [bytes.fromhex(k) for k in vectors["genesis_validators"]]
    changes = [types_pb2.ValidatorSetChange.FromString(bytes.fromhex(c))
               for c in vectors["set_changes"]]
    assert len(vectors["blocks"]) >= 10
    for v in vectors["blocks"]:
        block = node_pb2.BlockInfo.FromString(bytes.fromhex(v["block_info"]))
        assert outcome(vectors["chain_id"], genesis, changes, block) == v["expect"], v["about"]


def test_tampered_set_change_chains(vectors):
    genesis = [bytes.fromhex(k) for k in vectors["genesis_validators"]]
    for v in vectors["set_change_chains"]:
        changes = [types_pb2.ValidatorSetChange.FromString(bytes.fromhex(c))
                   for c in v["changes"]]
        block = node_pb2.BlockInfo.FromString(bytes.fromhex(v["block_info"]))
        assert outcome(vectors["chain_id"], genesis, changes, block) == v["expect"], v["about"]


def test_a_dev_nodes_blocks_verify_against_its_genesis_and_a_forgery_is_refused(dev):
    client = quorate.Node(dev.url)
    key = quorate.Key.load(dev.key_file(3))
    nonce = client.account(key.address).next_nonce
    body = quorate.tx.transfer("quorate-dev", key.address, nonce, 1_000,
                               quorate.Key.load(dev.key_file(0)).address, 3)
    done = client.submit_and_wait(quorate.tx.sign(body, key), timeout_s=60)
    verifier = quorate.ChainVerifier.from_genesis_file(dev.home / "genesis.json")
    for block in client.blocks(max(1, done.height - 2), include_transactions=True):
        checked = verifier.verify(client, block)
        assert checked.transactions_checked
        if block.header.height == done.height:
            assert quorate.verify_inclusion(block, done.tx_hash) == done.index
            break
    forged = node_pb2.BlockInfo()
    forged.CopyFrom(block)
    sig = bytearray(forged.certificate.signatures[0].signature)
    sig[0] ^= 1
    forged.certificate.signatures[0].signature = bytes(sig)
    with pytest.raises(quorate.VerifyError) as refused:
        verify.verify_block("quorate-dev", verifier.genesis_keys, forged)
    assert refused.value.kind == "bad_signature"
    client.close()


def test_a_verifier_refuses_changes_that_leave_out_one_it_proved(vectors):
    genesis = [bytes.fromhex(k) for k in vectors["genesis_validators"]]
    changes = [types_pb2.ValidatorSetChange.FromString(bytes.fromhex(c))
               for c in vectors["set_changes"]]
    verifier = quorate.ChainVerifier(vectors["chain_id"], genesis)
    changed = verifier.prove_set(changes, 7)
    assert changed != genesis
    assert verifier.prove_set(changes, 9) == changed
    with pytest.raises(quorate.VerifyError) as refused:
        verifier.prove_set([], 9)
    assert refused.value.kind == "set_change"
    assert verifier.prove_set([], 4) == genesis


def test_block_1_must_follow_the_genesis_hash_given(dev):
    client = quorate.Node(dev.url)
    genesis_hash = bytes(client.status().genesis_hash)
    first = client.block(1)
    good = quorate.ChainVerifier.from_genesis_file(dev.home / "genesis.json", genesis_hash)
    assert good.verify(client, first).header.height == 1
    other = quorate.ChainVerifier.from_genesis_file(dev.home / "genesis.json", b"\x01" * 32)
    with pytest.raises(quorate.VerifyError) as refused:
        other.verify(client, first)
    assert refused.value.kind == "parent"
    client.close()
