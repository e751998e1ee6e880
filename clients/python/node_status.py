#!/usr/bin/env python3
"""A Quorate client in Python, with the `quorate` package (pip install ./clients/python):
connects (plaintext, TLS or mutual TLS) and prints the node's status and health as JSON.

    python3 clients/python/node_status.py --node 127.0.0.1:7050 \
        [--ca ca.pem [--cert client.pem --key client.key]]

Exits 0 with a JSON line on success; exits 2 with the library's error on stderr when the node
refuses or cannot be reached (a wrong CA, a missing client certificate, plaintext to a TLS port).
"""
import argparse
import json
import sys

import quorate


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--node", default="127.0.0.1:7050", help="host:port of the node's gRPC")
    p.add_argument("--ca", help="CA certificate (PEM): use TLS and trust this CA")
    p.add_argument("--cert", help="client certificate (PEM), for mutual TLS")
    p.add_argument("--key", help="client private key (PEM)")
    p.add_argument("--timeout", type=float, default=10.0)
    args = p.parse_args()
    if bool(args.cert) != bool(args.key):
        p.error("--cert and --key go together")
    tls = quorate.Tls(args.ca, args.cert, args.key) if args.ca else None
    url = f"{'https' if tls else 'http'}://{args.node}"
    try:
        with quorate.Node(url, tls=tls, timeout_s=args.timeout) as node:
            status = node.status()
            health = node.health()
    except quorate.QuorateError as e:
        print(e, file=sys.stderr)
        return 2
    print(json.dumps({
        "chain_id": status.chain_id,
        "height": status.height,
        "validators": len(status.validators),
        "health": health,
    }))
    return 0


if __name__ == "__main__":
    sys.exit(main())
