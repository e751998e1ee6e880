#!/usr/bin/env python3
"""Builds, co-signs and submits a transfer from a multi-signature address, with the `quorate`
package (pip install ./clients/python).

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
import sys

import quorate
from quorate import tx
from quorate.v1 import types_pb2


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--node", default="127.0.0.1:7050", help="host:port of the node's gRPC")
    p.add_argument("--key", action="append", required=True, help="key file that signs")
    p.add_argument("--member", action="append", default=[], help="key file in the set, not signing")
    p.add_argument("--threshold", type=int, required=True)
    p.add_argument("--to", required=True, help="recipient address (40 hex digits)")
    p.add_argument("--amount", type=int, required=True)
    p.add_argument("--duplicate", action="store_true", help="sign twice with the first key")
    args = p.parse_args()
    signers = [quorate.Key.load(k) for k in args.key]
    members = {k.public_key for k in signers} | {quorate.Key.load(m).public_key for m in args.member}
    key_set = quorate.KeySet([(pub, 1) for pub in members],
                             quorate.Thresholds(base=args.threshold, key_management=len(members)))
    with quorate.Node(f"http://{args.node}") as node:
        status = node.status()
        account = node.account(key_set.address)
        body = tx.transfer(status.chain_id, key_set.address, account.next_nonce,
                           status.params.transfer_fuel, bytes.fromhex(args.to), args.amount,
                           key_set=None if account.HasField("key_set") else key_set)
        # The first key signs; every other co-signs the same bytes (in any order).
        signed = tx.sign(body, signers[0])
        for key in signers[1:]:
            signed = tx.cosign(signed, key)
        if args.duplicate:
            # The library refuses to sign twice with one key; built by hand to show the node's
            # own refusal.
            signed.cosignatures.append(types_pb2.Cosignature(
                public_key=signers[0].public_key,
                signature=signers[0].sign(tx.signing_message(tx.tx_hash(signed.body)))))
        out = {"address": key_set.address.hex(), "tx_hash": tx.tx_hash(signed.body).hex()}
        try:
            outcome = node.submit_and_wait(signed, timeout_s=60)
            out["state"] = "COMMITTED"
            out["status"] = types_pb2.ExecStatus.Name(outcome.receipt.status).removeprefix(
                "EXEC_STATUS_")
        except quorate.Refused as e:
            out.update(state="REJECTED", code=e.code, message=e.message)
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
