// A node over any Connect transport (gRPC from Node.js, gRPC-web from a browser): submit and
// wait (safe to repeat), accounts, blocks, validator sets, queries, and streams of blocks and
// events that resume from their checkpoint after a break.
import { Code, ConnectError, createClient, type Client, type Transport } from "@connectrpc/connect";

import { toHex } from "./bytes.js";
import { BadAnswer, OutcomeUnknown, QueryFailed, Refused, Unreachable } from "./errors.js";
import { txHash } from "./tx.js";
import { ContractService, type ContractInfo, type EventRecord } from "./gen/quorate/v1/contract_pb.js";
import {
  ChainService,
  type BlockInfo,
  type GetAccountResponse,
  type GetValidatorSetResponse,
  NodeService,
  type NodeStatus,
  RejectCode,
  TxService,
  TxState,
  type TxStatusResponse,
} from "./gen/quorate/v1/node_pb.js";
import { ExecStatus, type Receipt, type Transaction } from "./gen/quorate/v1/types_pb.js";

/** A stream that stayed open this long before it broke counts as having worked. */
const STABLE_MS = 5_000;

/** The largest answer taken from a node (a block with its transactions may be large). */
export const MAX_MESSAGE_BYTES = 64 << 20;

/** The longest single WaitForCommit the node serves. */
const LONGEST_WAIT_MS = 300_000;

/** A committed transaction: where it is and what it did. */
export interface Outcome {
  txHash: Uint8Array;
  height: bigint;
  index: number;
  receipt: Receipt;
  /** Whether its execution succeeded (a failed one still paid its fee). */
  succeeded: boolean;
}

/** Where an event stream stands: the last event delivered. */
export interface Checkpoint {
  height: bigint;
  txIndex: number;
  eventIndex: number;
}

/** The checkpoint of `event`. */
export function checkpointOf(event: EventRecord): Checkpoint {
  return { height: event.height, txIndex: event.txIndex, eventIndex: event.eventIndex };
}

/** The checkpoint before every event of `height` and above. */
export function checkpointBefore(height: bigint): Checkpoint {
  return { height: height > 0n ? height - 1n : 0n, txIndex: 0xffffffff, eventIndex: 0xffffffff };
}

/** The first height a stream after `c` asks for: its own block (events of it after `c` may not
 * have been delivered), or the next one when nothing of its block is left (a node that no
 * longer holds that block is not asked for it). */
export function resumeHeight(c: Checkpoint): bigint {
  if (c.txIndex === 0xffffffff && c.eventIndex === 0xffffffff) return c.height + 1n;
  return c.height < 1n ? 1n : c.height;
}

function after(a: Checkpoint, b: Checkpoint): boolean {
  if (a.height !== b.height) return a.height > b.height;
  if (a.txIndex !== b.txIndex) return a.txIndex > b.txIndex;
  return a.eventIndex > b.eventIndex;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Codes that mean the connection broke or the node went away, not that it answered. */
const BROKEN = new Set([Code.Unavailable, Code.Canceled, Code.DeadlineExceeded, Code.Internal, Code.Unknown, Code.Aborted]);

/** How a node is reached: which TLS, if any (it decides the fix for a closed connection). */
export type Connection = "plaintext" | "tls" | "mutual-tls" | "web";

const CA_FIX =
  "check the CA is the one that signed the node's certificate and the host name is in it; a node that requires mutual TLS needs a client certificate";
const NO_CLIENT_CERTIFICATE =
  "the node closed the TLS connection: it may require a client certificate (mutual TLS), so give the client certificate and key its client CA signed; if it was restarting, try again";
const MAYBE_TLS =
  "the node closed the connection: if it speaks TLS, use an https:// URL and give the CA that signed its certificate; if it was restarting, try again";

/** The code of the Node.js error under `e` (ERR_SSL_…, CERT_…, ECONNRESET), if any. */
function causeCode(e: ConnectError): string {
  const code = (e.cause as { code?: unknown } | undefined)?.code;
  return typeof code === "string" ? code : "";
}

/** A failure of the connection itself (transport or TLS), not an answer of the node. */
function transportFailure(e: ConnectError): boolean {
  if (e.code === Code.Unavailable || e.code === Code.DeadlineExceeded || e.code === Code.Unknown) return true;
  // A Node.js error under the call (ERR_SSL_…, CERT_…, ECONNRESET, EPIPE, ERR_HTTP2_…): the
  // connection failed; the node's own answers carry no such cause.
  if (causeCode(e) !== "") return true;
  // An HTTP/2 connection the node closed at once: a plaintext call to a TLS node, or a restart.
  return e.code === Code.Canceled && e.rawMessage.includes("stream closed");
}

function fixFor(e: ConnectError, connection?: Connection): string {
  const text = e.rawMessage.toLowerCase();
  if (text.includes("certificate required")) return NO_CLIENT_CERTIFICATE;
  if (text.includes("alert unknown ca") || text.includes("alert bad certificate")) {
    return "the node refused the client certificate: give one its client CA signed";
  }
  if (text.includes("certificate") || text.includes("tls") || text.includes("ssl")) return CA_FIX;
  if (text.includes("econnrefused")) return "nothing listens at that address: is the node running, and is this its gRPC address?";
  if (e.code === Code.DeadlineExceeded) return "the node did not answer in time: it may be overloaded or stopped";
  const closed = text.includes("stream closed") || text.includes("socket hang up") || causeCode(e) === "ECONNRESET";
  if (closed && connection === "plaintext") return MAYBE_TLS;
  if (closed && connection === "tls") return NO_CLIENT_CERTIFICATE;
  return "check the node runs and its gRPC address (grpc.addr in its config.toml)";
}

/** One node, reached through `transport` (see `connectNode` for Node.js, `connectWeb` for a
 * browser). */
export class QuorateNode {
  private readonly tx: Client<typeof TxService>;
  private readonly chain: Client<typeof ChainService>;
  private readonly node: Client<typeof NodeService>;
  private readonly contracts: Client<typeof ContractService>;

  constructor(
    readonly url: string,
    transport: Transport,
    readonly timeoutMs = 30_000,
    /** How `transport` reaches the node (it picks the fix a failure names). */
    readonly connection?: Connection,
  ) {
    this.tx = createClient(TxService, transport);
    this.chain = createClient(ChainService, transport);
    this.node = createClient(NodeService, transport);
    this.contracts = createClient(ContractService, transport);
  }

  private async call<T>(what: string, f: () => Promise<T>): Promise<T> {
    try {
      return await f();
    } catch (e) {
      const err = ConnectError.from(e);
      if (transportFailure(err)) {
        throw new Unreachable(this.url, `${what}: ${err.rawMessage.trim()} (${Code[err.code]})`, fixFor(err, this.connection));
      }
      throw new BadAnswer(`${what}: ${err.rawMessage} (${Code[err.code]})`);
    }
  }

  /** The node's status: chain id, height, parameters, validators. */
  status(): Promise<NodeStatus> {
    return this.call("node status", () => this.node.getStatus({}, { timeoutMs: this.timeoutMs }));
  }

  /** An account: balance, committed nonce, next nonce (counting pending ones), key set. */
  account(address: Uint8Array): Promise<GetAccountResponse> {
    return this.call("account", () => this.chain.getAccount({ address }, { timeoutMs: this.timeoutMs }));
  }

  /** Where the transaction `hash` is now, as this node knows it. */
  txStatus(hash: Uint8Array): Promise<TxStatusResponse> {
    return this.call("transaction status", () => this.tx.getStatus({ txHash: hash }, { timeoutMs: this.timeoutMs }));
  }

  /** Submits `transaction`; its hash once the node admitted it. Safe to repeat: a transaction
   * the node already holds (pending, or committed with this very hash) is not an error. */
  async submit(transaction: Transaction): Promise<Uint8Array> {
    const result = await this.call("submit", () => this.tx.submit({ transaction }, { timeoutMs: this.timeoutMs }));
    const hash = result.txHash.length === 32 ? result.txHash : undefined;
    if (!result.rejection) {
      if (!hash) throw new BadAnswer("submit: admitted without a hash");
      return hash;
    }
    const code = RejectCode[result.rejection.code] ?? `CODE_${result.rejection.code}`;
    if (hash && code === "DUPLICATE") return hash;
    if (hash && code === "NONCE_USED") {
      const state = (await this.txStatus(hash)).state;
      if (state === TxState.COMMITTED || state === TxState.PENDING) return hash;
    }
    throw new Refused(hash, code, result.rejection.message);
  }

  /** Waits up to `timeoutMs` for the transaction to commit. A refusal (or eviction) throws
   * Refused; no outcome in time, or a connection that broke, throws OutcomeUnknown. */
  async wait(hash: Uint8Array, timeoutMs = 60_000): Promise<Outcome> {
    const started = Date.now();
    let pause = 50;
    for (;;) {
      const left = timeoutMs - (Date.now() - started);
      if (left <= 0) throw new OutcomeUnknown(hash, Date.now() - started, "no outcome in the time given");
      const asked = Date.now();
      const waitMs = Math.max(1, Math.min(left, LONGEST_WAIT_MS));
      let status: TxStatusResponse;
      try {
        status = await this.call("wait for commit", () =>
          this.tx.waitForCommit({ txHash: hash, timeoutMs: waitMs }, { timeoutMs: waitMs + 10_000 }),
        );
      } catch (e) {
        if (e instanceof Unreachable) throw new OutcomeUnknown(hash, Date.now() - started, e.message);
        throw e;
      }
      if (status.state === TxState.COMMITTED) {
        if (!status.receipt) throw new BadAnswer("wait for commit: committed without a receipt");
        return { txHash: hash, height: status.height, index: status.index, receipt: status.receipt, succeeded: status.receipt.status === ExecStatus.SUCCESS };
      }
      if (status.state === TxState.REJECTED || status.state === TxState.EVICTED) {
        const r = status.rejection;
        throw new Refused(hash, r ? (RejectCode[r.code] ?? `CODE_${r.code}`) : "UNSPECIFIED", r?.message ?? "");
      }
      if (Date.now() - asked < pause) {
        await sleep(Math.min(pause, Math.max(0, timeoutMs - (Date.now() - started))));
        pause = Math.min(pause * 2, 1000);
      }
    }
  }

  /** Submits and waits. Safe to call again with the same transaction after any error (same
   * hash, included at most once); a submission whose answer was lost is OutcomeUnknown. */
  async submitAndWait(transaction: Transaction, timeoutMs = 60_000): Promise<Outcome> {
    let hash: Uint8Array;
    try {
      hash = await this.submit(transaction);
    } catch (e) {
      if (e instanceof Unreachable) throw new OutcomeUnknown(txHash(transaction.body), 0, e.message);
      throw e;
    }
    return this.wait(hash, timeoutMs);
  }

  /** The committed block at `height` (0: the latest); check it with `ChainVerifier`. */
  block(height: bigint | number = 0, includeTransactions = false): Promise<BlockInfo> {
    const selector = BigInt(height) === 0n ? { case: "latest" as const, value: true } : { case: "height" as const, value: BigInt(height) };
    return this.call("block", () => this.chain.getBlock({ selector, includeTransactions }, { timeoutMs: this.timeoutMs }));
  }

  /** The committed block whose hash is `hash`; check it with `ChainVerifier`. */
  blockByHash(hash: Uint8Array, includeTransactions = false): Promise<BlockInfo> {
    return this.call("block", () => this.chain.getBlock({ selector: { case: "hash", value: hash }, includeTransactions }, { timeoutMs: this.timeoutMs }));
  }

  /** The set in force at `height` (0: the next), with the changes that prove it. */
  validatorSet(height: bigint | number = 0): Promise<GetValidatorSetResponse> {
    return this.call("validator set", () => this.chain.getValidatorSet({ height: BigInt(height) }, { timeoutMs: this.timeoutMs }));
  }

  /** The deployed contract at `address`: code hash, methods, interface, balance. */
  contract(address: Uint8Array): Promise<ContractInfo> {
    return this.call("contract", () => this.contracts.getContract({ address }, { timeoutMs: this.timeoutMs }));
  }

  /** A read-only call against the latest committed state: what the method returned. */
  async query(contract: Uint8Array, method: string, args: Uint8Array = new Uint8Array()): Promise<Uint8Array> {
    const answer = await this.call("query", () => this.contracts.query({ contract, method, args }, { timeoutMs: this.timeoutMs }));
    if (answer.status !== ExecStatus.SUCCESS) throw new QueryFailed(method, ExecStatus[answer.status] ?? String(answer.status), answer.error);
    return answer.returnData;
  }

  /** Every committed block from `fromHeight` on, in order, each once: a broken stream (the
   * node restarted, the network failed) is opened again from the next height. Throws
   * Unreachable after `giveUpAfterMs` without the node; ends when `stop` aborts (the call
   * open on the node is cancelled at once). */
  async *blocks(fromHeight: bigint | number = 1n, includeTransactions = false, giveUpAfterMs = 60_000, stop?: AbortSignal): AsyncGenerator<BlockInfo> {
    let next = BigInt(fromHeight) < 1n ? 1n : BigInt(fromHeight);
    for await (const block of this.resuming(() => `blocks from height ${next}`, (signal) => this.chain.streamBlocks({ fromHeight: next, includeTransactions }, { signal }), giveUpAfterMs, () => true, stop)) {
      if (block.header?.height !== next) throw new BadAnswer(`blocks: expected height ${next}, the node sent ${block.header?.height}`);
      next += 1n;
      yield block;
    }
  }

  /** Every contract event after `from` (default: from height 1), optionally of one contract
   * and kind, in chain order, each once: a broken stream is opened again after the last event
   * delivered. Save `checkpointOf(event)` to go on later from there. Ends when `stop` aborts. */
  async *events(filter: { contract?: Uint8Array; kind?: string } = {}, from?: Checkpoint, giveUpAfterMs = 60_000, stop?: AbortSignal): AsyncGenerator<EventRecord> {
    let at: Checkpoint = from ?? { height: 0n, txIndex: 0, eventIndex: 0 };
    const fromHeight = () => resumeHeight(at);
    const open = (signal: AbortSignal) =>
      this.contracts.streamEvents({ fromHeight: fromHeight(), contract: filter.contract ?? new Uint8Array(), kind: filter.kind ?? "" }, { signal });
    for await (const event of this.resuming(() => `events after height ${at.height}`, open, giveUpAfterMs, (e) => after(checkpointOf(e), at), stop)) {
      const here = checkpointOf(event);
      if (!after(here, at)) {
        if (here.height < fromHeight()) throw new BadAnswer(`events: asked from height ${fromHeight()}, the node sent one of height ${here.height}`);
        continue; // delivered before the stream was opened again
      }
      at = here;
      yield event;
    }
  }

  private async *resuming<T>(what: () => string, open: (signal: AbortSignal) => AsyncIterable<T>, giveUpAfterMs: number, progress: (item: T) => boolean = () => true, stop?: AbortSignal): AsyncGenerator<T> {
    let brokenSince: number | undefined;
    let pause = 100;
    for (;;) {
      if (stop?.aborted) return;
      const abort = new AbortController();
      const cancel = () => abort.abort();
      stop?.addEventListener("abort", cancel);
      const opened = Date.now();
      let cause: ConnectError;
      try {
        for await (const item of open(abort.signal)) {
          // Only an item the caller had not seen counts as the node being back.
          if (progress(item)) {
            brokenSince = undefined;
            pause = 100;
          }
          yield item;
        }
        cause = new ConnectError("the node ended the stream", Code.Unavailable);
      } catch (e) {
        if (stop?.aborted) return;
        cause = ConnectError.from(e);
        if (!BROKEN.has(cause.code) && !transportFailure(cause)) throw new BadAnswer(`${what()}: ${cause.rawMessage} (${Code[cause.code]})`);
      } finally {
        stop?.removeEventListener("abort", cancel);
        abort.abort();
      }
      if (stop?.aborted) return;
      const now = Date.now();
      if (now - opened >= STABLE_MS) {
        // The stream worked a while before this break: a new break, not the same one.
        brokenSince = undefined;
        pause = 100;
      }
      brokenSince ??= now;
      if (now - brokenSince > giveUpAfterMs) throw new Unreachable(this.url, `${what()}: ${cause.rawMessage.trim()} (${Code[cause.code]})`, fixFor(cause, this.connection));
      await sleep(pause);
      pause = Math.min(pause * 2, 2000);
    }
  }
}

/** The hex of a hash, for messages and maps. */
export const hashHex = toHex;
