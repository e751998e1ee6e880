// Nonces for one account under concurrent senders.
import type { QuorateNode } from "./node.js";

/** Refusals after which the node's view of the account's nonces is read again. */
const RESYNC_ON = new Set(["NONCE_USED", "NONCE_TOO_FAR", "NONCE_PENDING"]);

/** Hands out the nonces of `address` to any number of concurrent tasks, one each, in order,
 * never one twice; after a refusal that says the nonces moved, the next lease reads the
 * account again. */
export class NonceManager {
  private next: bigint | undefined;
  private loading: Promise<bigint> | undefined;

  constructor(
    private readonly node: QuorateNode,
    readonly address: Uint8Array,
  ) {}

  /** The next nonce. */
  async lease(): Promise<bigint> {
    while (this.next === undefined) {
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
        this.next = value;
        this.loading = undefined;
      }
    }
    const nonce = this.next;
    this.next = nonce + 1n;
    return nonce;
  }

  /** A transaction with a leased nonce was refused with `code`. */
  refused(code: string): void {
    if (RESYNC_ON.has(code)) this.resync();
  }

  /** Forgets what was handed out: the next lease starts from the node's next nonce. */
  resync(): void {
    this.next = undefined;
    this.loading = undefined;
  }
}
