"""A node: submit and wait (safe to repeat), account and node status, over gRPC."""
from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from .errors import BadAnswer, BadInput, OutcomeUnknown, QueryFailed, Refused, Unreachable
from .tx import tx_hash
from .v1 import contract_pb2, contract_pb2_grpc, node_pb2, node_pb2_grpc, types_pb2

#: A stream that stayed open this long before it broke counts as having worked.
STABLE_S = 5.0

#: The largest answer taken from a node.
MAX_MESSAGE_BYTES = 64 << 20

#: The longest single WaitForCommit the node serves (it caps the timeout at 300 s).
LONGEST_WAIT_S = 300.0


@dataclass(frozen=True)
class Tls:
    """TLS to a node: the CA that signed its certificate, and a client certificate and key
    (PEM files) for a node that requires mutual TLS."""

    ca: Path
    cert: Path | None = None
    key: Path | None = None


@dataclass(frozen=True)
class Outcome:
    """A committed transaction: where it is and what it did."""

    tx_hash: bytes
    height: int
    index: int
    receipt: types_pb2.Receipt

    @property
    def succeeded(self) -> bool:
        """Whether its execution succeeded (a failed one still paid its fee)."""
        return self.receipt.status == types_pb2.EXEC_STATUS_SUCCESS


def _code_name(code: int) -> str:
    try:
        return node_pb2.RejectCode.Name(code).removeprefix("REJECT_CODE_")
    except ValueError:
        return f"CODE_{code}"


#: Transport messages of a connection the node closed (gRPC core's words).
_CLOSED = ("socket closed", "connection reset", "tsi_data_corrupted", "broken pipe")


def _fix_for(code: grpc.StatusCode, details: str, tls: Tls | None = None) -> str:
    """What to do about a failed call: `tls` is how the connection was made (a node that
    closes a TLS connection made without a client certificate most likely requires one; TLS
    1.3 refuses it after the client's side of the handshake, so the client sees a closed
    connection, not a certificate error)."""
    text = details.lower()
    if "alert unknown ca" in text or "alert bad certificate" in text:
        return "the node refused the client certificate: give one its client CA signed"
    if "certificate" in text or "handshake" in text or "ssl" in text:
        return ("check the CA (--ca) is the one that signed the node's certificate and the "
                "host name is in it; a node that requires mutual TLS needs a client certificate")
    if code == grpc.StatusCode.UNAVAILABLE and any(c in text for c in _CLOSED):
        if tls is not None and tls.cert is None:
            return ("the node closed the TLS connection: it may require a client certificate "
                    "(mutual TLS), so give the client certificate and key its client CA "
                    "signed; if it was restarting, try again")
        if tls is None:
            return ("the node closed the connection: if it speaks TLS, use an https:// URL "
                    "and give the CA that signed its certificate; if it was restarting, "
                    "try again")
    if code == grpc.StatusCode.UNAVAILABLE:
        return "check the node runs and its gRPC address (grpc.addr in its config.toml)"
    if code == grpc.StatusCode.DEADLINE_EXCEEDED:
        return "the node did not answer in time: it may be overloaded or stopped"
    return "see the node's log"


class Node:
    """One node, reached at `url` (http://host:port, https://host:port with `tls`, or
    host:port for plaintext)."""

    def __init__(self, url: str, tls: Tls | None = None, timeout_s: float = 30.0) -> None:
        target, secure = self._target(url)
        if secure and tls is None:
            raise BadInput(f"{url}: an https:// node needs the CA that signed its certificate")
        if tls is not None and not secure:
            raise BadInput(f"{url}: TLS given for a plaintext URL: use https://")
        # A block with its transactions may exceed gRPC's default 4 MiB (a node sends up to
        # its grpc.max_message_bytes, 32 MiB by default).
        options = [("grpc.max_receive_message_length", MAX_MESSAGE_BYTES)]
        if tls is None:
            self._channel = grpc.insecure_channel(target, options=options)
        else:
            try:
                ca = Path(tls.ca).read_bytes()
                cert = Path(tls.cert).read_bytes() if tls.cert else None
                key = Path(tls.key).read_bytes() if tls.key else None
            except OSError as e:
                raise BadInput(f"TLS files: {e}") from e
            creds = grpc.ssl_channel_credentials(root_certificates=ca, private_key=key,
                                                 certificate_chain=cert)
            self._channel = grpc.secure_channel(target, creds, options=options)
        self.url = url
        self._tls = tls
        self.timeout_s = timeout_s
        self._tx = node_pb2_grpc.TxServiceStub(self._channel)
        self._chain = node_pb2_grpc.ChainServiceStub(self._channel)
        self._node = node_pb2_grpc.NodeServiceStub(self._channel)
        self._contracts = contract_pb2_grpc.ContractServiceStub(self._channel)
        self._health = health_pb2_grpc.HealthStub(self._channel)

    @staticmethod
    def _target(url: str) -> tuple[str, bool]:
        for scheme, secure in (("https://", True), ("http://", False)):
            if url.startswith(scheme):
                return url[len(scheme):].rstrip("/"), secure
        if "://" in url or ":" not in url:
            raise BadInput(f"invalid node URL {url!r}: use http://host:port or https://host:port")
        return url, False

    def close(self) -> None:
        """Closes the connection."""
        self._channel.close()

    def __enter__(self) -> "Node":
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def _call(self, what: str, method, request, timeout_s: float | None = None):
        try:
            return method(request, timeout=timeout_s or self.timeout_s)
        except grpc.RpcError as e:
            code, details = e.code(), e.details() or ""
            if code in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED):
                raise Unreachable(self.url, f"{what}: {details} ({code.name})",
                                  _fix_for(code, details, self._tls)) from e
            raise BadAnswer(f"{what}: {details} ({code.name})") from e

    def status(self) -> node_pb2.NodeStatus:
        """The node's status: chain id, height, parameters, validators."""
        return self._call("node status", self._node.GetStatus, node_pb2.GetNodeStatusRequest())

    def health(self) -> str:
        """The node's health: SERVING when it commits at the head with a quorum of validators
        in reach, NOT_SERVING while it catches up or lacks a quorum."""
        answer = self._call("health", self._health.Check, health_pb2.HealthCheckRequest(service=""))
        return health_pb2.HealthCheckResponse.ServingStatus.Name(answer.status)

    def account(self, address: bytes) -> node_pb2.GetAccountResponse:
        """An account: balance, committed nonce, next nonce (counting pending transactions),
        key set."""
        return self._call("account", self._chain.GetAccount,
                          node_pb2.GetAccountRequest(address=address))

    def tx_status(self, hash32: bytes) -> node_pb2.TxStatusResponse:
        """Where the transaction `hash32` is now, as this node knows it."""
        return self._call("transaction status", self._tx.GetStatus,
                          node_pb2.TxStatusRequest(tx_hash=hash32))

    def submit(self, transaction: types_pb2.Transaction) -> bytes:
        """Submits a transaction; returns its hash. Safe to repeat: a transaction the node
        already holds (pending, or committed with this very hash) is not an error."""
        result = self._call("submit", self._tx.Submit,
                            node_pb2.SubmitRequest(transaction=transaction))
        hash32 = bytes(result.tx_hash) if len(result.tx_hash) == 32 else None
        if not result.HasField("rejection"):
            if hash32 is None:
                raise BadAnswer("submit: admitted without a hash")
            return hash32
        code = _code_name(result.rejection.code)
        if hash32 is not None:
            if code == "DUPLICATE":
                return hash32
            if code == "NONCE_USED" and self._holds(hash32):
                return hash32
        raise Refused(hash32, code, result.rejection.message)

    def _holds(self, hash32: bytes) -> bool:
        state = self.tx_status(hash32).state
        return state in (node_pb2.TX_STATE_COMMITTED, node_pb2.TX_STATE_PENDING)

    def wait(self, hash32: bytes, timeout_s: float = 60.0) -> Outcome:
        """Waits up to `timeout_s` for the transaction to be committed. A refusal (or an
        eviction) raises Refused; no outcome in time, or a connection that broke while waiting,
        raises OutcomeUnknown: ask again about the hash."""
        started = time.monotonic()
        pause = 0.05
        while True:
            left = timeout_s - (time.monotonic() - started)
            if left <= 0:
                raise OutcomeUnknown(hash32, time.monotonic() - started,
                                     "no outcome in the time given")
            asked = time.monotonic()
            wait_ms = max(1, int(min(left, LONGEST_WAIT_S) * 1000))
            try:
                status = self._call(
                    "wait for commit", self._tx.WaitForCommit,
                    node_pb2.WaitForCommitRequest(tx_hash=hash32, timeout_ms=wait_ms),
                    timeout_s=wait_ms / 1000 + 10)
            except Unreachable as e:
                raise OutcomeUnknown(hash32, time.monotonic() - started, str(e)) from e
            if status.state == node_pb2.TX_STATE_COMMITTED:
                if not status.HasField("receipt"):
                    raise BadAnswer("wait for commit: committed without a receipt")
                return Outcome(hash32, status.height, status.index, status.receipt)
            if status.state in (node_pb2.TX_STATE_REJECTED, node_pb2.TX_STATE_EVICTED):
                raise Refused(hash32, _code_name(status.rejection.code), status.rejection.message)
            # Pending, or unknown to this node (yet): the node answers at once for a hash it
            # does not hold, so ask again after a pause that grows.
            if time.monotonic() - asked < pause:
                time.sleep(min(pause, max(0.0, timeout_s - (time.monotonic() - started))))
                pause = min(pause * 2, 1.0)

    def submit_and_wait(self, transaction: types_pb2.Transaction,
                        timeout_s: float = 60.0) -> Outcome:
        """Submits and waits. Safe to call again with the same transaction after any error:
        it has the same hash and is included at most once. A submission whose answer was lost
        raises OutcomeUnknown with the hash computed here."""
        try:
            hash32 = self.submit(transaction)
        except Unreachable as e:
            raise OutcomeUnknown(tx_hash(transaction.body), 0.0, str(e)) from e
        return self.wait(hash32, timeout_s)

    def block(self, height: int = 0, include_transactions: bool = False) -> node_pb2.BlockInfo:
        """The committed block at `height` (0: the latest); check it with `ChainVerifier`."""
        request = node_pb2.GetBlockRequest(include_transactions=include_transactions)
        if height:
            request.height = height
        else:
            request.latest = True
        return self._call("block", self._chain.GetBlock, request)

    def validator_set(self, height: int = 0) -> node_pb2.GetValidatorSetResponse:
        """The validator set in force at `height` (0: the next), with the set changes that
        prove it from genesis (check them with `ChainVerifier.prove_set`)."""
        return self._call("validator set", self._chain.GetValidatorSet,
                          node_pb2.GetValidatorSetRequest(height=height))

    def contract(self, address: bytes) -> contract_pb2.ContractInfo:
        """The deployed contract at `address`: code hash, methods, interface, balance."""
        return self._call("contract", self._contracts.GetContract,
                          contract_pb2.GetContractRequest(address=address))

    def query(self, contract: bytes, method: str, args: bytes = b"") -> bytes:
        """A read-only call against the latest committed state: what the method returned.
        Raises QueryFailed when the contract trapped, aborted or refused its arguments."""
        answer = self._call("query", self._contracts.Query,
                            contract_pb2.QueryRequest(contract=contract, method=method, args=args))
        if answer.status != types_pb2.EXEC_STATUS_SUCCESS:
            raise QueryFailed(method, types_pb2.ExecStatus.Name(answer.status), answer.error)
        return bytes(answer.return_data)

    def blocks(self, from_height: int = 1, include_transactions: bool = False,
               give_up_after_s: float = 60.0):
        """Every committed block (`BlockInfo`) from `from_height` on, in order, for as long as
        the caller takes them. A broken stream (the node restarted, the network failed) is
        opened again from the next height: no block is skipped or repeated. Raises Unreachable
        after `give_up_after_s` seconds without the node, BadAnswer if it skips a height."""
        next_height = max(1, from_height)

        def open_stream():
            return self._chain.StreamBlocks(node_pb2.StreamBlocksRequest(
                from_height=next_height, include_transactions=include_transactions))

        for block in self._resuming(lambda: f"blocks from height {next_height}", open_stream,
                                    give_up_after_s):
            if block.header.height != next_height:
                raise BadAnswer(f"blocks: expected height {next_height}, "
                                f"the node sent {block.header.height}")
            next_height += 1
            yield block

    def events(self, contract: bytes = b"", kind: str = "", after: Checkpoint | None = None,
               give_up_after_s: float = 60.0):
        """Every contract event (`EventRecord`) after the checkpoint `after` (default: from
        height 1), optionally of one contract and one kind, in chain order, for as long as the
        caller takes them. Save `Checkpoint.of(event)` to go on later from there; a broken
        stream is opened again after the last event delivered: none is skipped or repeated."""
        checkpoint = after or Checkpoint(0, 0, 0)

        def open_stream():
            return self._contracts.StreamEvents(contract_pb2.StreamEventsRequest(
                from_height=checkpoint.resume_height, contract=contract, kind=kind))

        for event in self._resuming(lambda: f"events after {checkpoint}", open_stream,
                                    give_up_after_s,
                                    progress=lambda e: Checkpoint.of(e) > checkpoint):
            at = Checkpoint.of(event)
            if at <= checkpoint:
                if at.height < checkpoint.resume_height:
                    raise BadAnswer(f"events: asked from height {checkpoint.resume_height}, "
                                    f"the node sent one of height {at.height}")
                continue  # delivered before the stream was opened again
            checkpoint = at
            yield event

    def _resuming(self, what, open_stream, give_up_after_s: float, progress=lambda _: True):
        """The items of the streams `open_stream()` opens, one after another: a stream that
        breaks (or that the node ends) is opened again after a pause that grows, until
        `give_up_after_s` seconds pass without `progress` (an item the caller had not seen)."""
        broken_since: float | None = None
        pause = 0.1
        while True:
            opened = time.monotonic()
            try:
                for item in open_stream():
                    if progress(item):
                        broken_since, pause = None, 0.1
                    yield item
                # A node that shuts down ends its streams: open it again, as for a break.
                code, details = grpc.StatusCode.UNAVAILABLE, "the node ended the stream"
            except grpc.RpcError as e:
                code, details = e.code(), e.details() or ""
                if code not in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.CANCELLED,
                                grpc.StatusCode.DEADLINE_EXCEEDED, grpc.StatusCode.INTERNAL,
                                grpc.StatusCode.UNKNOWN):
                    raise BadAnswer(f"{what()}: {details} ({code.name})") from e
            now = time.monotonic()
            if now - opened >= STABLE_S:
                # The stream worked a while before this break: a new break, not the same one.
                broken_since, pause = None, 0.1
            broken_since = broken_since or now
            if now - broken_since > give_up_after_s:
                raise Unreachable(self.url, f"{what()}: {details} ({code.name})",
                                  _fix_for(code, details, self._tls))
            time.sleep(pause)
            pause = min(pause * 2, 2.0)


@dataclass(frozen=True, order=True)
class Checkpoint:
    """Where an event stream stands: the last event delivered, by height, transaction index
    and event index. Events after it are those a stream from it delivers."""

    height: int
    tx_index: int
    event_index: int

    @classmethod
    def of(cls, event: contract_pb2.EventRecord) -> "Checkpoint":
        """The checkpoint of `event`."""
        return cls(event.height, event.tx_index, event.event_index)

    @classmethod
    def before_height(cls, height: int) -> "Checkpoint":
        """The checkpoint before every event of `height` and above."""
        return cls(max(0, height - 1), 2**32 - 1, 2**32 - 1)

    @property
    def resume_height(self) -> int:
        """The first height a stream after this checkpoint asks for: its own block (events of
        it after the checkpoint may not have been delivered), or the next one when nothing of
        its block is left (a node that no longer holds that block is not asked for it)."""
        if (self.tx_index, self.event_index) == (2**32 - 1, 2**32 - 1):
            return self.height + 1
        return max(1, self.height)
