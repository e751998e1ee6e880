"""The conformance vectors computed by the node's own rules (clients/vectors.json, written and
checked by client/tests/vectors.rs): this library must compute every one of them exactly."""
from __future__ import annotations

import json
import pathlib

import pytest

import quorate
from quorate import tx

VECTORS = pathlib.Path(__file__).resolve().parents[2] / "vectors.json"


@pytest.fixture(scope="module")
def vectors():
    return json.loads(VECTORS.read_text())


def test_keys_and_addresses(vectors):
    for v in vectors["keys"]:
        key = quorate.Key(bytes.fromhex(v["seed"]))
        assert key.public_key.hex() == v["public_key"]
        assert key.address.hex() == v["address"]
        assert quorate.address_of(key.public_key).hex() == v["address"]


def test_multisig_key_sets(vectors):
    for v in vectors["multisig"]:
        t = v["thresholds"]
        key_set = quorate.KeySet(
            [(bytes.fromhex(k["public_key"]), k["weight"]) for k in v["keys"]],
            quorate.Thresholds(**t))
        assert key_set.canonical.hex() == v["canonical_bytes"]
        assert key_set.address.hex() == v["address"]


def test_a_transfer_encoded_hashed_signed_cosigned_and_leafed(vectors):
    v = vectors["transfer"]
    sender = quorate.Key(bytes.fromhex(v["signer_seed"]))
    body = tx.transfer(v["chain_id"], sender.address, v["nonce"], v["fuel_limit"],
                       bytes.fromhex(v["to"]), v["amount"], memo=bytes.fromhex(v["memo"]))
    raw = body.SerializeToString()
    assert raw.hex() == v["body_bytes"]
    assert tx.tx_hash(raw).hex() == v["tx_hash"]
    assert tx.signing_message(tx.tx_hash(raw)).hex() == v["signing_message"]
    signed = tx.sign(body, sender)
    assert signed.signature.hex() == v["signature"]
    assert tx.leaf(signed).hex() == v["leaf"]
    cosigned = tx.cosign(signed.SerializeToString(), quorate.Key(bytes.fromhex(v["cosigner_seed"])))
    assert cosigned.SerializeToString().hex() == v["cosigned_transaction"]
    assert tx.leaf(cosigned).hex() == v["cosigned_leaf"]


def test_system_and_deployed_contract_addresses(vectors):
    for v in vectors["system_contracts"]:
        assert quorate.system.address_of(v["name"]).hex() == v["address"]
        assert quorate.system.contract(v["name"]).address.hex() == v["address"]
    c = vectors["contract_address"]
    assert quorate.contract_address(bytes.fromhex(c["deployer"]), c["nonce"]).hex() == c["address"]


def test_every_kind_of_body(vectors):
    assert len(vectors["bodies"]) == 13
    for v in vectors["bodies"]:
        f, kind = v["fields"], v["kind"]
        common = (v["chain_id"], bytes.fromhex(v["signer"]), v["nonce"], v["fuel_limit"])
        h = bytes.fromhex
        if kind == "call":
            b = tx.call(*common, h(f["contract"]), f["method"], h(f["args"]), f["value"])
        elif kind == "system_call":
            c = quorate.system.contract(f["contract"])
            b = tx.body(*common)
            b.call.CopyFrom(c.call(f["method"], c.args(f["method"], **f["fields"]), f["value"]))
        elif kind == "deploy":
            b = tx.deploy(*common, h(f["code"]), h(f["init_args"]))
        elif kind in ("add_key", "set_weight"):
            b = getattr(tx, kind)(*common, h(f["public_key"]), f["weight"])
        elif kind in ("remove_key", "remove_validator"):
            b = getattr(tx, kind)(*common, h(f["public_key"]))
        elif kind == "set_thresholds":
            b = tx.set_thresholds(*common, quorate.Thresholds(**f))
        elif kind == "set_trusted_deployer":
            b = tx.set_trusted_deployer(*common, h(f["account"]), f["trusted"])
        elif kind == "set_admin":
            b = tx.set_admin(*common, h(f["to"]))
        elif kind == "add_validator":
            b = tx.add_validator(*common, h(f["public_key"]), f["name"])
        elif kind == "replace_validator":
            b = tx.replace_validator(*common, h(f["old"]), h(f["new"]), f["name"])
        else:
            raise AssertionError(f"no builder for {kind}")
        assert b.SerializeToString().hex() == v["body_bytes"], kind
