"""Client library for Quorate nodes.

Keys and addresses (`Key`, `KeySet`, `address_of`), transactions (`tx.transfer`, `tx.call`,
`tx.deploy`, `tx.sign`, `tx.cosign`), a node (`Node`: `submit`, `wait`, `submit_and_wait`,
`account`, `status`), nonces under concurrent senders (`NonceManager`), and errors a program can
act on (`Refused`, `OutcomeUnknown`, `Unreachable`, `BadInput`, `QueryFailed`,
`VerifyError`). Streams of blocks and events resume from a checkpoint (`Node.blocks`,
`Node.events`, `Checkpoint`); blocks and inclusions are checked against the genesis file
(`ChainVerifier`, `verify_block`, `verify_inclusion`); the system contracts' methods are typed
(`system.contract("remittance")`). The protobuf messages are `quorate.v1.*_pb2` and
`quorate.contracts.v1.*_pb2`, generated from the node's protos at install.
"""
from . import system, tx
from .errors import (BadAnswer, BadInput, OutcomeUnknown, QueryFailed, QuorateError, Refused,
                     Unreachable)
from .keys import Key, KeySet, Thresholds, address_of, contract_address, verify
from .node import Checkpoint, Node, Outcome, Tls
from .nonce import NonceManager
from .verify import ChainVerifier, VerifyError, verify_block, verify_inclusion

__all__ = [
    "BadAnswer", "BadInput", "ChainVerifier", "Checkpoint", "Key", "KeySet", "Node",
    "NonceManager", "Outcome", "OutcomeUnknown", "QueryFailed", "QuorateError", "Refused",
    "Thresholds", "Tls", "Unreachable", "VerifyError", "address_of", "contract_address", "system",
    "tx", "verify",
    "verify_block", "verify_inclusion",
]
