"""ed25519 keys and addresses, compatible with `quorate keys generate` files."""
from __future__ import annotations

import json
import os
import struct
from dataclasses import dataclass, field
from pathlib import Path

import blake3
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from .errors import BadInput

ADDRESS_CONTEXT = "quorate/v1/address"
MULTISIG_ADDRESS_CONTEXT = "quorate/v1/multisig-address"


def address_of(public_key: bytes) -> bytes:
    """The 20-byte address of a single key: blake3 derive_key("quorate/v1/address", key)[:20]."""
    if len(public_key) != 32:
        raise BadInput(f"a public key is 32 bytes, not {len(public_key)}")
    return blake3.blake3(public_key, derive_key_context=ADDRESS_CONTEXT).digest()[:20]


class Key:
    """An ed25519 signing key."""

    def __init__(self, seed: bytes) -> None:
        if len(seed) != 32:
            raise BadInput(f"an ed25519 seed is 32 bytes, not {len(seed)}")
        self._key = Ed25519PrivateKey.from_private_bytes(seed)
        self._seed = seed
        self.public_key: bytes = self._key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
        self.address: bytes = address_of(self.public_key)

    @classmethod
    def generate(cls) -> "Key":
        """A new random key."""
        return cls(os.urandom(32))

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> "Key":
        """A key file written by `quorate keys generate` (hex `secret_key`); its `public_key`
        and `address`, when present, must be this key's."""
        try:
            data = json.loads(Path(path).read_text())
            seed = bytes.fromhex(data["secret_key"].strip())
        except (OSError, ValueError, KeyError, TypeError, AttributeError) as e:
            raise BadInput(f"{path}: not a quorate key file ({e})") from e
        key = cls(seed)
        for name, value in (("public_key", key.public_key), ("address", key.address)):
            if name in data and bytes.fromhex(str(data[name])) != value:
                raise BadInput(f"{path}: its {name} is not the one of its secret key")
        return key

    def save(self, path: str | os.PathLike[str]) -> None:
        """Writes the key as `quorate keys generate` does (readable by its owner only)."""
        text = json.dumps({
            "secret_key": self._seed.hex(),
            "public_key": self.public_key.hex(),
            "address": self.address.hex(),
        }, indent=2)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(text + "\n")

    def sign(self, message: bytes) -> bytes:
        """The 64-byte ed25519 signature of `message`."""
        return self._key.sign(message)


def verify(public_key: bytes, message: bytes, signature: bytes) -> bool:
    """Whether `signature` is `public_key`'s over `message` (ed25519)."""
    try:
        Ed25519PublicKey.from_public_bytes(public_key).verify(signature, message)
        return True
    except Exception:  # cryptography raises InvalidSignature or ValueError
        return False


@dataclass(frozen=True)
class Thresholds:
    """The weights each class of action needs (docs/TRANSACTIONS.md, "Multi-key accounts").
    0 means: `deploy` and `contract_call` as `base`; `large_transfer` no such class."""

    base: int
    key_management: int
    deploy: int = 0
    large_transfer_above: int = 0
    large_transfer: int = 0
    contract_call: int = 0


@dataclass(frozen=True)
class KeySet:
    """Up to 16 (public key, weight) pairs and their thresholds."""

    keys: tuple[tuple[bytes, int], ...]
    thresholds: Thresholds
    canonical: bytes = field(init=False, repr=False)

    def __init__(self, keys: list[tuple[bytes, int]] | tuple[tuple[bytes, int], ...],
                 thresholds: Thresholds) -> None:
        ordered = tuple(sorted((bytes(k), int(w)) for k, w in keys))
        if not 1 <= len(ordered) <= 16:
            raise BadInput(f"a key set has 1 to 16 keys, not {len(ordered)}")
        if len({k for k, _ in ordered}) != len(ordered):
            raise BadInput("a key appears twice in the key set")
        for k, w in ordered:
            if len(k) != 32 or w < 1:
                raise BadInput("each key is 32 bytes with a weight of at least 1")
        object.__setattr__(self, "keys", ordered)
        object.__setattr__(self, "thresholds", thresholds)
        t = thresholds
        out = bytes([len(ordered)])
        for k, w in ordered:
            out += k + struct.pack(">I", w)
        out += struct.pack(">IIIQI", t.base, t.key_management, t.deploy,
                           t.large_transfer_above, t.large_transfer)
        if t.contract_call:
            out += struct.pack(">I", t.contract_call)
        object.__setattr__(self, "canonical", out)

    @property
    def address(self) -> bytes:
        """The multi-signature address: blake3 derive_key("quorate/v1/multisig-address",
        canonical bytes)[:20]."""
        return blake3.blake3(self.canonical, derive_key_context=MULTISIG_ADDRESS_CONTEXT).digest()[:20]


def contract_address(deployer: bytes, nonce: int) -> bytes:
    """The address of the contract `deployer`'s transaction with `nonce` deploys:
    blake3 derive_key("quorate/v1/contract-address", deployer ‖ nonce (8 bytes BE))[:20]."""
    if len(deployer) != 20:
        raise BadInput(f"a deployer address is 20 bytes, not {len(deployer)}")
    return blake3.blake3(deployer + nonce.to_bytes(8, "big"),
                         derive_key_context="quorate/v1/contract-address").digest()[:20]
