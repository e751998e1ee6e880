// Nonces for one account under concurrent senders (the same rules as the Rust library's).
import type { QuorateNode } from "./node.js";

/** Refusals that say the nonce is taken: it is never handed out again. */
const TAKEN = new Set(["NONCE_USED", "NONCE_PENDING", "DUPLICATE"]);

/** The account's nonce source: what the manager reads its next nonce from. */
export interface NonceSource {
  account(address: Uint8Array): Promise<{ nextNonce: bigint }>;
}

/** Hands out the nonces of `address` to any number of concurrent tasks, one each, never one
 * twice. A nonce whose transaction the node refused for a reason that leaves it free is given
 * back with `refused(nonce, code)` and handed out again before any new one (a gap holds every
 * later transaction in the mempool); `resync()` moves past nonces another sender took. */
export class NonceManager {
  private next: bigint | undefined;
  private loading: Promise<bigint> | undefined;
  private floor = 0n;
  private returned: bigint[] = [];

  constructor(
    private readonly node: QuorateNode | NonceSource,
    readonly address: Uint8Array,
  ) {}

  /** The next nonce: one given back if any (lowest first), else a new one. */
  async lease(): Promise<bigint> {
    for (;;) {
      if (this.returned.length > 0) {
        this.returned.sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
        return this.returned.shift()!;
      }
      if (this.next !== undefined) break;
      this.loading ??= this.node.account(this.address).then((a) => a.nextNonce);
      const loaded = this.loading;
      let value: bigint;
      try {
        value = await loaded;
      } catch (e) {
        // A failed read is not kept: the next lease reads the account again.
        if (this.loading === loaded) this.loading = undefined;
        throw e;
      }
      // Only the first task to see this load sets it; the others take leases after it.
      if (this.loading === loaded) {
        this.next = value > this.floor ? value : this.floor;
        this.loading = undefined;
      }
    }
    const nonce = this.next;
    this.next = nonce + 1n;
    return nonce;
  }

  /** The transaction with the leased `nonce` was refused with `code`: a nonce the refusal says
   * is taken stays taken; any other is given back. */
  refused(nonce: bigint, code: string): void {
    // Only a nonce handed out (below the next new one) and not given back already.
    if (TAKEN.has(code) || this.next === undefined || nonce < this.floor || nonce >= this.next) return;
    if (!this.returned.includes(nonce)) this.returned.push(nonce);
  }

  /** Moves past nonces taken elsewhere: nonces below `nextNonce` (default: the node's next
   * nonce for the account, pending ones counted) are never handed out again. */
  async resync(nextNonce?: bigint): Promise<void> {
    const next = nextNonce ?? (await this.node.account(this.address)).nextNonce;
    if (next > this.floor) this.floor = next;
    this.returned = this.returned.filter((n) => n >= this.floor);
    if (this.next !== undefined && this.next < this.floor) this.next = this.floor;
  }
}
