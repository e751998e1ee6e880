"""The four system contracts, their methods typed by the interface each contract embeds: the
argument and result messages are found from the contract's service in the generated modules
(`quorate.contracts.v1.*_pb2`, built from the same .proto files the contracts embed).

    from quorate import system
    remittance = system.contract("remittance")
    body = tx.body(chain_id, signer, nonce, fuel)
    body.call.CopyFrom(remittance.call("deposit", remittance.args("deposit", entry="rent"), 100))
    reserves = remittance.query(node, "reserves", owner=address)
"""
from __future__ import annotations

import blake3
from google.protobuf import message_factory

from .errors import BadInput
from .contracts.v1 import (certificates_pb2, credit_escrow_pb2, device_permissions_pb2,
                           remittance_pb2)
from .v1 import types_pb2 as pb

SYSTEM_CONTRACT_CONTEXT = "quorate/v1/system-contract"

_MODULES = {
    "remittance": (remittance_pb2, "RemittanceContract"),
    "credit-escrow": (credit_escrow_pb2, "CreditEscrowContract"),
    "certificates": (certificates_pb2, "CertificatesContract"),
    "device-permissions": (device_permissions_pb2, "DevicePermissionsContract"),
}

#: The names of the system contracts.
NAMES = tuple(_MODULES)


def address_of(name: str) -> bytes:
    """The address of the system contract `name`: blake3 derive_key(
    "quorate/v1/system-contract", name)[:20]."""
    return blake3.blake3(name.encode(), derive_key_context=SYSTEM_CONTRACT_CONTEXT).digest()[:20]


class SystemContract:
    """One system contract: its address and its methods' argument and result types."""

    def __init__(self, name: str) -> None:
        if name not in _MODULES:
            raise BadInput(f"no system contract {name!r} (there are: {', '.join(NAMES)})")
        module, service = _MODULES[name]
        self.name = name
        self.address = address_of(name)
        self.methods = {
            m.name: (message_factory.GetMessageClass(m.input_type),
                     message_factory.GetMessageClass(m.output_type))
            for m in module.DESCRIPTOR.services_by_name[service].methods
        }

    def _method(self, method: str):
        if method not in self.methods:
            raise BadInput(f"{self.name} has no method {method!r} "
                           f"(it has: {', '.join(self.methods)})")
        return self.methods[method]

    def args(self, method: str, **fields):
        """The argument message of `method`, with `fields` set."""
        try:
            return self._method(method)[0](**fields)
        except (TypeError, ValueError) as e:
            raise BadInput(f"{self.name}.{method}: {e}") from e

    def call(self, method: str, args=None, value: int = 0) -> pb.Call:
        """The `Call` payload of `method` with `args` (its argument message, or None for an
        empty one), moving `value` native tokens to the contract."""
        args_type = self._method(method)[0]
        if args is None:
            args = args_type()
        if not isinstance(args, args_type):
            raise BadInput(f"{self.name}.{method} takes {args_type.DESCRIPTOR.full_name}, "
                           f"not {type(args).__name__}")
        return pb.Call(contract=self.address, method=method, args=args.SerializeToString(),
                       value=value)

    def result(self, method: str, data: bytes):
        """What `method` returned (a receipt's `return_data` or a query's answer), decoded."""
        return self._method(method)[1].FromString(data)

    def query(self, node, method: str, args=None, **fields):
        """Runs `method` read-only on `node`'s latest state; its result, decoded."""
        if args is None:
            args = self.args(method, **fields)
        return self.result(method, node.query(self.address, method,
                                              self.call(method, args).args))


def contract(name: str) -> SystemContract:
    """The system contract `name` (remittance, credit-escrow, certificates,
    device-permissions)."""
    return SystemContract(name)
