#!/usr/bin/env python3
"""A Quorate client in Python: generates the gRPC stubs from the repository's .proto files,
connects (plaintext, TLS or mutual TLS) and prints the node's status and health as JSON.

    python3 clients/python/node_status.py --node 127.0.0.1:7050 \
        [--ca ca.pem [--cert client.pem --key client.key]]

Exits 0 with a JSON line on success; exits 2 with the gRPC status code on stderr when the node
refuses or cannot be reached (a wrong CA, a missing client certificate, plaintext to a TLS port).
"""
import argparse
import importlib
import json
import os
import sys
import tempfile

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_tools import protoc

PROTO_ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "proto", "proto")


def load_stubs():
    """Compiles quorate/v1/*.proto into a temporary folder and imports the node service."""
    out = tempfile.mkdtemp(prefix="quorate-py-")
    protos = [os.path.join("quorate", "v1", f) for f in ("types.proto", "node.proto")]
    include = os.path.join(os.path.dirname(protoc.__file__), "_proto")
    rc = protoc.main(["protoc", f"-I{PROTO_ROOT}", f"-I{include}", f"--python_out={out}",
                      f"--grpc_python_out={out}", *protos])
    if rc != 0:
        sys.exit(f"protoc failed ({rc})")
    sys.path.insert(0, out)
    return (importlib.import_module("quorate.v1.node_pb2"),
            importlib.import_module("quorate.v1.node_pb2_grpc"))


def channel(args):
    if args.ca is None:
        return grpc.insecure_channel(args.node)
    with open(args.ca, "rb") as f:
        ca = f.read()
    cert = key = None
    if args.cert:
        with open(args.cert, "rb") as f:
            cert = f.read()
        with open(args.key, "rb") as f:
            key = f.read()
    creds = grpc.ssl_channel_credentials(root_certificates=ca, private_key=key,
                                         certificate_chain=cert)
    return grpc.secure_channel(args.node, creds)


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--node", default="127.0.0.1:7050", help="host:port of the node's gRPC")
    p.add_argument("--ca", help="CA certificate (PEM): use TLS and trust this CA")
    p.add_argument("--cert", help="client certificate (PEM), for mutual TLS")
    p.add_argument("--key", help="client private key (PEM)")
    p.add_argument("--timeout", type=float, default=10.0)
    args = p.parse_args()
    if bool(args.cert) != bool(args.key):
        p.error("--cert and --key go together")
    node_pb2, node_pb2_grpc = load_stubs()
    with channel(args) as ch:
        try:
            status = node_pb2_grpc.NodeServiceStub(ch).GetStatus(
                node_pb2.GetNodeStatusRequest(), timeout=args.timeout)
            health = health_pb2_grpc.HealthStub(ch).Check(
                health_pb2.HealthCheckRequest(service=""), timeout=args.timeout)
        except grpc.RpcError as e:
            print(f"{e.code().name}: {e.details()}", file=sys.stderr)
            return 2
    print(json.dumps({
        "chain_id": status.chain_id,
        "height": status.height,
        "validators": len(status.validators),
        "health": health_pb2.HealthCheckResponse.ServingStatus.Name(health.status),
    }))
    return 0


if __name__ == "__main__":
    sys.exit(main())
