"""Client library for Quorate nodes.

Keys and addresses (`Key`, `KeySet`, `address_of`), transactions (`tx.transfer`, `tx.call`,
`tx.deploy`, `tx.sign`, `tx.cosign`), a node (`Node`: `submit`, `wait`, `submit_and_wait`,
`account`, `status`), nonces under concurrent senders (`NonceManager`), and errors a program can
act on (`Refused`, `OutcomeUnknown`, `Unreachable`, `BadInput`). The protobuf messages are
`quorate.v1.types_pb2` and `quorate.v1.node_pb2`, generated from the node's protos at install.
"""
from . import tx
from .errors import BadAnswer, BadInput, OutcomeUnknown, QuorateError, Refused, Unreachable
from .keys import Key, KeySet, Thresholds, address_of, verify
from .node import Node, Outcome, Tls
from .nonce import NonceManager

__all__ = [
    "BadAnswer", "BadInput", "Key", "KeySet", "Node", "NonceManager", "Outcome",
    "OutcomeUnknown", "QuorateError", "Refused", "Thresholds", "Tls", "Unreachable",
    "address_of", "tx", "verify",
]
