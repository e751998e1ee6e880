"""Transactions: building the body, hashing, signing, co-signing (offline, through bytes)."""
from __future__ import annotations

import blake3

from .errors import BadInput
from .keys import Key, KeySet, Thresholds, verify
from .v1 import types_pb2 as pb

TX_SIGN_DOMAIN = b"quorate/v1/tx\0"

#: The largest transaction read from text (the node's own limit is lower).
MAX_TX_BYTES = 4 << 20


def tx_hash(body_bytes: bytes) -> bytes:
    """The transaction hash: blake3 of the encoded body (32 bytes)."""
    return blake3.blake3(body_bytes).digest()


def signing_message(hash32: bytes) -> bytes:
    """What every key of a transaction signs: b"quorate/v1/tx\\0" + the hash (46 bytes)."""
    if len(hash32) != 32:
        raise BadInput(f"a transaction hash is 32 bytes, not {len(hash32)}")
    return TX_SIGN_DOMAIN + hash32


def key_set_proto(key_set: KeySet) -> pb.KeySet:
    """`key_set` as the protobuf a first transaction carries (or a key change names)."""
    t = key_set.thresholds
    return pb.KeySet(
        keys=[pb.WeightedKey(public_key=k, weight=w) for k, w in key_set.keys],
        thresholds=pb.Thresholds(
            base=t.base, key_management=t.key_management, deploy=t.deploy,
            large_transfer_above=t.large_transfer_above, large_transfer=t.large_transfer,
            contract_call=t.contract_call,
        ),
    )


def _address(a: bytes, what: str) -> bytes:
    if len(a) != 20:
        raise BadInput(f"{what}: an address is 20 bytes, not {len(a)}")
    return bytes(a)


def body(chain_id: str, signer: bytes, nonce: int, fuel_limit: int,
         key_set: KeySet | None = None) -> pb.TxBody:
    """A body without its payload; set one of `transfer`, `deploy`, `call`, `admin`, `keys`
    (or use the builders below)."""
    b = pb.TxBody(chain_id=chain_id, signer=_address(signer, "signer"), nonce=nonce,
                  fuel_limit=fuel_limit)
    if key_set is not None:
        b.key_set.CopyFrom(key_set_proto(key_set))
    return b


def transfer(chain_id: str, signer: bytes, nonce: int, fuel_limit: int, to: bytes, amount: int,
             memo: bytes = b"", key_set: KeySet | None = None) -> pb.TxBody:
    """A transfer of `amount` to `to`."""
    if amount <= 0:
        raise BadInput("a transfer moves a positive amount")
    b = body(chain_id, signer, nonce, fuel_limit, key_set)
    b.transfer.CopyFrom(pb.Transfer(to=_address(to, "recipient"), amount=amount, memo=memo))
    return b


def call(chain_id: str, signer: bytes, nonce: int, fuel_limit: int, contract: bytes,
         method: str, args: bytes = b"", value: int = 0,
         key_set: KeySet | None = None) -> pb.TxBody:
    """A call of `method` of `contract` with protobuf-encoded `args`."""
    b = body(chain_id, signer, nonce, fuel_limit, key_set)
    b.call.CopyFrom(pb.Call(contract=_address(contract, "contract"), method=method, args=args,
                            value=value))
    return b


def deploy(chain_id: str, signer: bytes, nonce: int, fuel_limit: int, code: bytes,
           init_args: bytes = b"", key_set: KeySet | None = None) -> pb.TxBody:
    """A deploy of the wasm `code`."""
    b = body(chain_id, signer, nonce, fuel_limit, key_set)
    b.deploy.CopyFrom(pb.Deploy(code=code, init_args=init_args))
    return b


def sign(body_or_bytes: pb.TxBody | bytes, key: Key) -> pb.Transaction:
    """The transaction of a body signed by `key` (the body's bytes are kept as they are:
    they are what is hashed and signed)."""
    raw = body_or_bytes if isinstance(body_or_bytes, bytes) else body_or_bytes.SerializeToString()
    return pb.Transaction(body=raw, public_key=key.public_key,
                          signature=key.sign(signing_message(tx_hash(raw))))


def cosign(transaction: pb.Transaction | bytes, key: Key) -> pb.Transaction:
    """`transaction` with `key`'s signature added (a co-signer of a multi-key account). Takes
    and gives back the transaction; its bytes (`SerializeToString`) travel between co-signers.
    A key that signed already is refused."""
    tx = pb.Transaction.FromString(transaction) if isinstance(transaction, bytes) else transaction
    signed = set(check_signatures(tx))  # a signature that does not verify stops a co-signer
    if key.public_key in signed:
        raise BadInput("this key signed the transaction already")
    out = pb.Transaction()
    out.CopyFrom(tx)
    out.cosignatures.append(pb.Cosignature(
        public_key=key.public_key, signature=key.sign(signing_message(tx_hash(tx.body)))))
    return out


def check_signatures(transaction: pb.Transaction) -> list[bytes]:
    """The keys whose signatures over the transaction verify; raises BadInput for one that
    does not (what a co-signer checks before adding its own)."""
    message = signing_message(tx_hash(transaction.body))
    pairs = [(transaction.public_key, transaction.signature)] + [
        (c.public_key, c.signature) for c in transaction.cosignatures]
    for public_key, signature in pairs:
        if not verify(bytes(public_key), message, bytes(signature)):
            raise BadInput(f"the signature of key {bytes(public_key).hex()} does not verify")
    return [bytes(k) for k, _ in pairs]


TX_LEAF_CONTEXT = "quorate/v1/tx-leaf"


def leaf(transaction: pb.Transaction) -> bytes:
    """The transaction's leaf in its block's `tx_root`: blake3 derive_key("quorate/v1/tx-leaf",
    hash ‖ signing key ‖ each cosigner's key): which keys authorised it is part of the block."""
    h = blake3.blake3(derive_key_context=TX_LEAF_CONTEXT)
    h.update(tx_hash(transaction.body))
    h.update(bytes(transaction.public_key))
    for c in transaction.cosignatures:
        h.update(bytes(c.public_key))
    return h.digest()


def to_text(transaction: pb.Transaction) -> str:
    """`transaction` as text between machines: the hex of its encoding and a newline (what
    `quorate tx sign` and every Quorate library read and write)."""
    return transaction.SerializeToString().hex() + "\n"


def from_text(text: str) -> pb.Transaction:
    """The transaction `text` holds (`to_text`'s form), its body checked to decode."""
    if len(text) > 2 * MAX_TX_BYTES + 64:
        raise BadInput(f"{len(text)} characters: a transaction is at most {MAX_TX_BYTES} bytes")
    try:
        tx = pb.Transaction.FromString(bytes.fromhex(text.strip()))
        pb.TxBody.FromString(tx.body)
    except ValueError as e:  # bad hex, or protobuf's DecodeError (a ValueError)
        raise BadInput(f"not a transaction: {e}") from e
    if len(tx.public_key) != 32 or len(tx.signature) != 64:
        raise BadInput("not a signed transaction: key or signature of the wrong size")
    return tx


def _keys(chain_id: str, signer: bytes, nonce: int, fuel_limit: int,
          change: pb.KeyChange) -> pb.TxBody:
    b = body(chain_id, signer, nonce, fuel_limit)
    b.keys.CopyFrom(change)
    return b


def add_key(chain_id: str, signer: bytes, nonce: int, fuel_limit: int, public_key: bytes,
            weight: int) -> pb.TxBody:
    """Adds `public_key` with `weight` to the signing account's keys."""
    return _keys(chain_id, signer, nonce, fuel_limit,
                 pb.KeyChange(add_key=pb.WeightedKey(public_key=public_key, weight=weight)))


def remove_key(chain_id: str, signer: bytes, nonce: int, fuel_limit: int,
               public_key: bytes) -> pb.TxBody:
    """Removes `public_key` from the signing account's keys."""
    return _keys(chain_id, signer, nonce, fuel_limit, pb.KeyChange(remove_key=public_key))


def set_weight(chain_id: str, signer: bytes, nonce: int, fuel_limit: int, public_key: bytes,
               weight: int) -> pb.TxBody:
    """Gives `public_key`, a key of the account, the weight `weight`."""
    return _keys(chain_id, signer, nonce, fuel_limit,
                 pb.KeyChange(set_weight=pb.WeightedKey(public_key=public_key, weight=weight)))


def set_thresholds(chain_id: str, signer: bytes, nonce: int, fuel_limit: int,
                   thresholds: Thresholds) -> pb.TxBody:
    """Replaces the account's thresholds."""
    t = thresholds
    return _keys(chain_id, signer, nonce, fuel_limit, pb.KeyChange(set_thresholds=pb.Thresholds(
        base=t.base, key_management=t.key_management, deploy=t.deploy,
        large_transfer_above=t.large_transfer_above, large_transfer=t.large_transfer,
        contract_call=t.contract_call)))


def _admin(chain_id: str, signer: bytes, nonce: int, fuel_limit: int,
           action: pb.Admin) -> pb.TxBody:
    b = body(chain_id, signer, nonce, fuel_limit)
    b.admin.CopyFrom(action)
    return b


def set_trusted_deployer(chain_id: str, signer: bytes, nonce: int, fuel_limit: int,
                         account: bytes, trusted: bool) -> pb.TxBody:
    """Admin: allows or stops `account` deploying precompiled machine code."""
    return _admin(chain_id, signer, nonce, fuel_limit, pb.Admin(
        set_trusted_deployer=pb.SetTrustedDeployer(account=_address(account, "account"),
                                                   trusted=trusted)))


def set_admin(chain_id: str, signer: bytes, nonce: int, fuel_limit: int,
              to: bytes) -> pb.TxBody:
    """Admin: hands the admin role to `to`."""
    return _admin(chain_id, signer, nonce, fuel_limit, pb.Admin(set_admin=_address(to, "admin")))


def add_validator(chain_id: str, signer: bytes, nonce: int, fuel_limit: int,
                  public_key: bytes, name: str) -> pb.TxBody:
    """Admin: adds a validator at the end of the set (in force some heights later)."""
    return _admin(chain_id, signer, nonce, fuel_limit, pb.Admin(
        add_validator=pb.ValidatorEntry(public_key=public_key, name=name)))


def remove_validator(chain_id: str, signer: bytes, nonce: int, fuel_limit: int,
                     public_key: bytes) -> pb.TxBody:
    """Admin: removes the validator with `public_key`."""
    return _admin(chain_id, signer, nonce, fuel_limit, pb.Admin(remove_validator=public_key))


def replace_validator(chain_id: str, signer: bytes, nonce: int, fuel_limit: int, old: bytes,
                      new: bytes, name: str) -> pb.TxBody:
    """Admin: puts `new` (with `name`) in the place of the validator `old`."""
    return _admin(chain_id, signer, nonce, fuel_limit, pb.Admin(replace_validator=pb.ReplaceValidator(
        old_key=old, new=pb.ValidatorEntry(public_key=new, name=name))))


def describe(transaction: pb.Transaction) -> str:
    """`transaction` in words (hash, account, nonce, what it does, who signed), its signatures
    checked: what a co-signer reads before signing."""
    b = pb.TxBody.FromString(transaction.body)
    signers = check_signatures(transaction)
    lines = [f"transaction {tx_hash(transaction.body).hex()}",
             f"  account {b.signer.hex()} nonce {b.nonce} on chain {b.chain_id!r}, "
             f"fuel up to {b.fuel_limit}"]
    kind = b.WhichOneof("payload")
    if kind == "transfer":
        lines.append(f"  transfer {b.transfer.amount} to {b.transfer.to.hex()} "
                     f"(memo {b.transfer.memo!r})")
    elif kind == "call":
        c = b.call
        lines.append(f"  call {c.contract.hex()}.{c.method!r} with {len(c.args)} bytes of "
                     f"arguments ({c.args.hex()}), moving {c.value}")
    elif kind == "deploy":
        lines.append(f"  deploy code {blake3.blake3(b.deploy.code).hexdigest()} "
                     f"({len(b.deploy.code)} bytes)")
    elif kind in ("admin", "keys"):
        message = getattr(b, kind)
        which = message.WhichOneof("action" if kind == "admin" else "change")
        value = getattr(message, which) if which else None
        shown = value.hex() if isinstance(value, bytes) else str(value).replace("\n", " ").strip()
        lines.append(f"  {kind}: {which or 'nothing'} {shown!r}")
    else:
        lines.append("  no payload")
    if b.HasField("key_set"):
        lines.append("  registers the account's key set")
    lines.append("  signed by " + ", ".join(k.hex() for k in signers))
    return "\n".join(lines)
