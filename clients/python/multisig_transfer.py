#!/usr/bin/env python3
"""Builds, co-signs and submits a transfer from a multi-signature address, in Python.

    python3 clients/python/multisig_transfer.py --node 127.0.0.1:7050 \
        --key a.json --key b.json [--member c.json ...] --threshold 2 --to ADDRESS --amount 10

Every `--key` signs; `--member` adds a key of the set that does not sign. The address is derived
from the keys (weight 1 each), `--threshold` (base) and key management = the sum of the weights,
exactly as `quorate keys multisig` derives it (docs/TRANSACTIONS.md, "Multi-key accounts"). Its
first transaction carries the key set, which registers it. Prints one JSON line: the address,
the transaction hash, its state and receipt status (or the refusal). `--duplicate` signs twice
with the first key, to show the node's refusal.
"""
import argparse
import json
import os
import struct
import sys

import blake3
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from node_status import load_stubs  # noqa: E402  (the same stub generation)

TX_SIGN_DOMAIN = b"quorate/v1/tx\0"
MULTISIG_ADDRESS_DOMAIN = "quorate/v1/multisig-address"


def load_key(path):
    """An ed25519 key from a `quorate keys generate` file (hex seed in `secret_key`)."""
    with open(path) as f:
        seed = bytes.fromhex(json.load(f)["secret_key"].strip())
    key = Ed25519PrivateKey.from_private_bytes(seed)
    return key, key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)


def canonical_bytes(keys, base, key_management, deploy=0, above=0, large=0):
    """The bytes a multi-signature address is derived from: count, (key, weight BE u32) in key
    order, then the thresholds (u32 BE, large_transfer_above u64 BE)."""
    out = bytes([len(keys)])
    for public, weight in keys:
        out += public + struct.pack(">I", weight)
    return out + struct.pack(">IIIQI", base, key_management, deploy, above, large)


def multisig_address(keys, base, key_management):
    digest = blake3.blake3(canonical_bytes(keys, base, key_management),
                           derive_key_context=MULTISIG_ADDRESS_DOMAIN).digest()
    return digest[:20]


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--node", default="127.0.0.1:7050", help="host:port of the node's gRPC")
    p.add_argument("--key", action="append", required=True, help="key file that signs")
    p.add_argument("--member", action="append", default=[], help="key file in the set, not signing")
    p.add_argument("--threshold", type=int, required=True)
    p.add_argument("--to", required=True, help="recipient address (40 hex digits)")
    p.add_argument("--amount", type=int, required=True)
    p.add_argument("--duplicate", action="store_true", help="sign twice with the first key")
    args = p.parse_args()

    import grpc
    node_pb2, node_pb2_grpc = load_stubs()
    import quorate.v1.types_pb2 as pb2

    signers = [load_key(k) for k in args.key]
    members = sorted({pub for _, pub in signers} | {load_key(m)[1] for m in args.member})
    keys = [(pub, 1) for pub in members]
    key_management = len(keys)
    address = multisig_address(keys, args.threshold, key_management)

    with grpc.insecure_channel(args.node) as ch:
        status = node_pb2_grpc.NodeServiceStub(ch).GetStatus(node_pb2.GetNodeStatusRequest())
        account = node_pb2_grpc.ChainServiceStub(ch).GetAccount(
            node_pb2.GetAccountRequest(address=address))
        body = pb2.TxBody(
            chain_id=status.chain_id, signer=address, nonce=account.next_nonce,
            fuel_limit=status.params.transfer_fuel,
            transfer=pb2.Transfer(to=bytes.fromhex(args.to), amount=args.amount))
        if not account.HasField("key_set"):
            body.key_set.CopyFrom(pb2.KeySet(
                keys=[pb2.WeightedKey(public_key=k, weight=w) for k, w in keys],
                thresholds=pb2.Thresholds(base=args.threshold, key_management=key_management)))
        body_bytes = body.SerializeToString()
        tx_hash = blake3.blake3(body_bytes).digest()
        message = TX_SIGN_DOMAIN + tx_hash
        # Every co-signer signs the same message; the order does not matter.
        (first, first_pub), rest = signers[0], signers[1:]
        if args.duplicate:
            rest = [signers[0]] + rest
        tx = pb2.Transaction(
            body=body_bytes, public_key=first_pub, signature=first.sign(message),
            cosignatures=[pb2.Cosignature(public_key=pub, signature=key.sign(message))
                          for key, pub in rest])
        tx_service = node_pb2_grpc.TxServiceStub(ch)
        result = tx_service.Submit(node_pb2.SubmitRequest(transaction=tx))
        out = {"address": address.hex(), "tx_hash": tx_hash.hex()}
        if result.HasField("rejection"):
            out["state"] = "REJECTED"
            out["code"] = node_pb2.RejectCode.Name(result.rejection.code).removeprefix("REJECT_CODE_")
            out["message"] = result.rejection.message
        else:
            done = tx_service.WaitForCommit(
                node_pb2.WaitForCommitRequest(tx_hash=tx_hash, timeout_ms=60000))
            out["state"] = node_pb2.TxState.Name(done.state).removeprefix("TX_STATE_")
            out["status"] = pb2.ExecStatus.Name(done.receipt.status).removeprefix("EXEC_STATUS_")
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
