// What can go wrong talking to a node, as values a program can act on.

/** Every error of this library. */
export class QuorateError extends Error {
  constructor(message: string) {
    super(message);
    this.name = new.target.name;
  }
}

/** An argument this library refuses before anything is sent (a key, an address, bytes). */
export class BadInput extends QuorateError {}

/** The node could not be reached or the call broke: nothing is known of what it did. */
export class Unreachable extends QuorateError {
  constructor(
    readonly url: string,
    readonly cause: string,
    readonly fix: string,
  ) {
    super(`cannot talk to the node at ${url}: ${cause}; ${fix}`);
  }
}

/** The node refused the transaction (nothing changed), with its code (NONCE_USED,
 * INSUFFICIENT_BALANCE, BAD_SIGNATURE, ... as in docs/TRANSACTIONS.md) and message. */
export class Refused extends QuorateError {
  constructor(
    readonly txHash: Uint8Array | undefined,
    readonly code: string,
    readonly detail: string,
  ) {
    super(`transaction ${txHash ? hex(txHash) : "(undecodable)"} refused: ${code}: ${detail}`);
  }
}

/** No outcome in the time given, or the connection broke while waiting: the transaction may
 * still commit. Ask again about `txHash` (it is included at most once). */
export class OutcomeUnknown extends QuorateError {
  constructor(
    readonly txHash: Uint8Array,
    readonly waitedMs: number,
    readonly why: string,
  ) {
    super(`transaction ${hex(txHash)}: outcome unknown after ${waitedMs} ms (${why}); query this hash`);
  }
}

/** The node answered something that cannot be right. */
export class BadAnswer extends QuorateError {}

/** A read-only contract call failed (trapped, aborted, out of fuel, bad arguments). */
export class QueryFailed extends QuorateError {
  constructor(
    readonly method: string,
    readonly status: string,
    readonly detail: string,
  ) {
    super(`query ${method}: ${status} ${detail}`);
  }
}

/** What a node said does not hold against the genesis file. `kind` names the check:
 * header_hash, chain, no_certificate, wrong_block, unknown_validator, duplicate_validator,
 * bad_signature, no_quorum, set_change, transactions, not_included, parent, unnamed_set. */
export class VerifyError extends QuorateError {
  constructor(
    readonly kind: string,
    detail: string,
  ) {
    super(`${kind}: ${detail}`);
  }
}

function hex(b: Uint8Array): string {
  return Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");
}
