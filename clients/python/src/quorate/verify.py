"""Checking what a node says against the genesis file, on the client's side.

A block is final when a quorum (2n/3 + 1) of the validator set in force at its height signed
it; that set is proven from the genesis set by a chain of set changes, each certified by the set
before it (docs/TRANSACTIONS.md, "Block roots"; the node's `quorate_proto::certificate`). A
transaction is in a block when its leaf is among those whose Merkle root the header carries.
Nothing a node says is trusted; the genesis file's validators are.
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass, field

import blake3

from .errors import QuorateError
from .keys import verify as verify_signature
from .tx import leaf, tx_hash
from .v1 import types_pb2 as pb
from .v1 import node_pb2

COMMIT_SIGN_DOMAIN = b"quorate/v1/commit\0"
VALIDATOR_SET_DOMAIN = b"quorate/v1/validators\0"
MAX_VALIDATORS = 64


class VerifyError(QuorateError):
    """What a node said does not hold. `kind` names the check that failed: header_hash, chain,
    no_certificate, wrong_block, unknown_validator, duplicate_validator, bad_signature,
    no_quorum, set_change, transactions, not_included, parent, unnamed_set."""

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(f"{kind}: {message}")
        self.kind = kind


def validator_set_hash(keys: list[bytes]) -> bytes:
    """blake3(domain ‖ count (u32 BE) ‖ each 32-byte key in index order)."""
    h = blake3.blake3(VALIDATOR_SET_DOMAIN)
    h.update(len(keys).to_bytes(4, "big"))
    for k in keys:
        h.update(k)
    return h.digest()


def quorum(n: int) -> int:
    """Signatures a certificate needs from a set of n: floor(2n/3) + 1."""
    return n * 2 // 3 + 1


def commit_message(chain_id: str, height: int, round_: int, block_hash: bytes) -> bytes:
    """What a validator signs to commit `block_hash`."""
    cid = chain_id.encode()
    return (COMMIT_SIGN_DOMAIN + len(cid).to_bytes(2, "big") + cid + height.to_bytes(8, "big")
            + round_.to_bytes(4, "big") + block_hash)


def merkle_root(leaves: list[bytes]) -> bytes:
    """Leaves hashed as blake3(0x00 ‖ leaf), nodes as blake3(0x01 ‖ left ‖ right), an odd node
    carried up; the empty list's root is blake3("quorate/v1/merkle-empty")."""
    if not leaves:
        return blake3.blake3(b"quorate/v1/merkle-empty").digest()
    level = [blake3.blake3(b"\x00" + x).digest() for x in leaves]
    while len(level) > 1:
        level = [blake3.blake3(b"\x01" + level[i] + level[i + 1]).digest()
                 if i + 1 < len(level) else level[i] for i in range(0, len(level), 2)]
    return level[0]


def verify_certificate(cert: pb.CommitCertificate, chain_id: str, keys: list[bytes],
                       height: int, block_hash: bytes) -> None:
    """Raises VerifyError unless `cert` carries a quorum of valid, distinct signatures of
    `keys` (the set in force at `height`) over `block_hash`."""
    if cert.height != height or bytes(cert.block_hash) != block_hash:
        raise VerifyError("wrong_block", f"certificate of height {cert.height} block "
                          f"{bytes(cert.block_hash).hex()}, expected {height} {block_hash.hex()}")
    seen: set[int] = set()
    for s in cert.signatures:
        if s.validator_index >= len(keys):
            raise VerifyError("unknown_validator", f"validator index {s.validator_index} is "
                              f"outside the set of {len(keys)}")
        if s.validator_index in seen:
            raise VerifyError("duplicate_validator", f"validator {s.validator_index} twice")
        seen.add(s.validator_index)
    message = commit_message(chain_id, cert.height, cert.round, block_hash)
    for s in cert.signatures:
        if not verify_signature(keys[s.validator_index], message, bytes(s.signature)):
            raise VerifyError("bad_signature",
                              f"signature of validator {s.validator_index} does not verify")
    if len(cert.signatures) < quorum(len(keys)):
        raise VerifyError("no_quorum", f"{len(cert.signatures)} signatures; "
                          f"{quorum(len(keys))} of {len(keys)} validators needed")


def _set_of(entries) -> list[bytes]:
    keys = [bytes(e.public_key) for e in entries]
    if not 1 <= len(keys) <= MAX_VALIDATORS:
        raise VerifyError("set_change", f"a validator set of {len(keys)}")
    if any(len(k) != 32 for k in keys) or len(set(keys)) != len(keys):
        raise VerifyError("set_change", "a set with a malformed or repeated key")
    return keys


def follow_set_changes(chain_id: str, genesis_keys: list[bytes],
                       changes: list[pb.ValidatorSetChange], height: int) -> list[bytes]:
    """The set in force at `height`, followed from the genesis set: each change is proven by
    the header of the height before it, certified by the set in force there, naming the new
    set's hash. Raises VerifyError("set_change", ...) when a link does not hold."""
    keys, previous = list(genesis_keys), 1
    for change in changes:
        if change.height > height:
            break
        h = change.height
        if h <= previous:
            raise VerifyError("set_change", f"change at {h} does not follow the one at {previous}")
        header = pb.BlockHeader.FromString(change.header)
        if header.height != h - 1 or header.chain_id != chain_id:
            raise VerifyError("set_change", f"change at {h}: header of height {header.height} "
                              f"on chain {header.chain_id!r}")
        if not change.HasField("certificate"):
            raise VerifyError("set_change", f"change at {h}: no certificate")
        try:
            verify_certificate(change.certificate, chain_id, keys, h - 1,
                               blake3.blake3(change.header).digest())
        except VerifyError as e:
            raise VerifyError("set_change", f"change at {h}: certificate: {e}") from e
        new = _set_of(change.validators)
        if validator_set_hash(new) != bytes(header.next_validators_hash):
            raise VerifyError("set_change", f"change at {h}: the header names another set than "
                              "the change carries")
        keys, previous = new, h
    return keys


@dataclass
class VerifiedBlock:
    """A block whose certificate holds: its header decoded from the certified bytes (never
    the node's own decoding) and who signed it."""
    hash: bytes
    header: pb.BlockHeader
    signers: list[bytes]
    transactions_checked: bool


def _check_transactions(header: pb.BlockHeader, block: node_pb2.BlockInfo) -> None:
    txs = list(block.transactions)
    if len(txs) != header.tx_count:
        raise VerifyError("transactions", f"{len(txs)} carried, the header counts "
                          f"{header.tx_count}")
    if merkle_root([leaf(t) for t in txs]) != bytes(header.tx_root):
        raise VerifyError("transactions", "their leaves' root is not the header's tx_root")
    if [bytes(h) for h in block.tx_hashes] != [tx_hash(t.body) for t in txs]:
        raise VerifyError("transactions", "the hashes listed are not the transactions'")


def verify_block(chain_id: str, keys: list[bytes], block: node_pb2.BlockInfo) -> VerifiedBlock:
    """`block` checked against `keys` (the set in force at its height): its header bytes hash
    to its hash, its certificate holds, and its transactions (when carried) match the header."""
    digest = blake3.blake3(block.header_bytes).digest()
    if digest != bytes(block.hash):
        raise VerifyError("header_hash", "the header bytes do not hash to the block's hash")
    header = pb.BlockHeader.FromString(block.header_bytes)
    if block.HasField("header") and block.header != header:
        raise VerifyError("header_hash", "the node's decoded header is not the header its "
                          "bytes hold")
    if header.chain_id != chain_id:
        raise VerifyError("chain", f"block of chain {header.chain_id!r}, not {chain_id!r}")
    if not block.HasField("certificate"):
        raise VerifyError("no_certificate", f"block {header.height} carries no certificate")
    verify_certificate(block.certificate, chain_id, keys, header.height, digest)
    checked = len(block.transactions) > 0 or header.tx_count == 0
    if checked:
        _check_transactions(header, block)
    return VerifiedBlock(digest, header,
                         [keys[s.validator_index] for s in block.certificate.signatures], checked)


def verify_inclusion(block: node_pb2.BlockInfo, hash32: bytes) -> int:
    """The position of transaction `hash32` in `block` (which carries its transactions),
    checked against the header's tx_root."""
    if blake3.blake3(block.header_bytes).digest() != bytes(block.hash):
        raise VerifyError("header_hash", "the header bytes do not hash to the block's hash")
    header = pb.BlockHeader.FromString(block.header_bytes)
    _check_transactions(header, block)
    for i, t in enumerate(block.transactions):
        if tx_hash(t.body) == hash32:
            return i
    raise VerifyError("not_included", f"transaction {hash32.hex()} is not in block {header.height}")


@dataclass
class ChainVerifier:
    """What a client trusts (the genesis file's chain id and validators) and what it checked
    since: blocks checked in order need only their certificates; a set change is asked of the
    node and proven from genesis when a header names another set."""
    chain_id: str
    genesis_keys: list[bytes]
    #: The genesis hash (as `quorate genesis new` prints it), to check block 1's link to it.
    genesis_hash: bytes | None = None
    _last: tuple[int, bytes, list[bytes], bytes] | None = field(default=None, repr=False)
    _known: dict[int, list[bytes]] = field(default_factory=dict, repr=False)

    @classmethod
    def from_genesis_file(cls, path: str | os.PathLike[str],
                          genesis_hash: bytes | None = None) -> "ChainVerifier":
        """Trusts the genesis file at `path` (and, when given, its hash: block 1 must name it
        as its parent)."""
        with open(path, encoding="utf-8") as f:
            genesis = json.load(f)
        return cls(genesis["chain_id"],
                   [bytes.fromhex(v["public_key"]) for v in genesis["validators"]], genesis_hash)

    def prove_set(self, changes: list[pb.ValidatorSetChange], height: int) -> list[bytes]:
        """The set in force at `height`, proven from the genesis set by `changes`; a change
        proven before may not be left out nor contradicted."""
        keys = follow_set_changes(self.chain_id, self.genesis_keys, changes, height)
        given = {c.height: [bytes(v.public_key) for v in c.validators]
                 for c in changes if c.height <= height}
        for h, known in self._known.items():
            if h <= height and h not in given:
                raise VerifyError("set_change", f"the changes given leave out the one at {h}")
            if h in given and given[h] != known:
                raise VerifyError("set_change", f"two different certified changes at {h}")
        self._known.update(given)
        return keys

    def verify(self, node, block: node_pb2.BlockInfo) -> VerifiedBlock:
        """`block` checked: the set in force at its height (from the last block checked when
        it follows it under the same set, else asked of `node` and proven), its certificate,
        its link to the block checked before it, its transactions when carried."""
        digest = blake3.blake3(block.header_bytes).digest()
        if digest != bytes(block.hash):
            raise VerifyError("header_hash", "the header bytes do not hash to the block's hash")
        # The height is the signed header's, never the node's own decoding of it.
        height = pb.BlockHeader.FromString(block.header_bytes).height
        last = self._last if self._last and self._last[0] + 1 == height else None
        if last and validator_set_hash(last[2]) == last[3]:
            keys = last[2]
        else:
            keys = self.prove_set(list(node.validator_set(height).changes), height)
            if last and validator_set_hash(keys) != last[3]:
                raise VerifyError("unnamed_set", f"the set proven for {height} is not the one "
                                  "the header before it names")
        verified = verify_block(self.chain_id, keys, block)
        if height == 1 and self.genesis_hash is not None \
                and bytes(verified.header.parent_hash) != self.genesis_hash:
            raise VerifyError("parent", "block 1 does not follow the genesis given")
        if last and bytes(verified.header.parent_hash) != last[1]:
            raise VerifyError("parent", f"block {height} does not follow the block checked "
                              "before it")
        self._last = (verified.header.height, verified.hash, keys,
                      bytes(verified.header.next_validators_hash))
        return verified
