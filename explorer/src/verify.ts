// The page's checks, through the client library: a block against its certificate under the set
// proven from genesis, a transaction against its block's tx_root. A failed check is shown in
// red with its reason, never hidden.
import type { nodeMessages, QuorateNode, VerifiedBlock } from "@quorate/client";
import { equal, toHex, validatorSetHash, verifyInclusion } from "@quorate/client";

type BlockInfo = nodeMessages.BlockInfo;

import { h } from "./dom";
import type { Trust } from "./trust";

/** The outcome of one check. */
export interface Check {
  ok: boolean;
  text: string;
  /** Proven, but from a genesis the user did not pin: shown in amber. */
  unpinned?: boolean;
}

/** A check as a badge: green with what was proven (amber when the genesis is not pinned), or
 * red with the reason. */
export function badge(check: Check): HTMLElement {
  const cls = !check.ok ? "badge bad" : check.unpinned ? "badge warn" : "badge ok";
  return h("span", { class: cls, "data-verified": check.ok ? "yes" : "no" }, check.ok ? `✓ ${check.text}` : `✗ ${check.text}`);
}

function reason(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

/** What a block was asked for: its height, and whether with its transactions. */
export interface Asked {
  height?: bigint;
  transactions?: boolean;
}

/** `block` checked: its certificate under the set proven from genesis, its transactions when it
 * carries them; and that it is what was `asked` (the height, the transactions not withheld). */
/** The highest block this page has verified: a node that reports a lower head is refused. */
let highestVerified = 0n;

export async function checkBlock(trust: Trust, node: QuorateNode, block: BlockInfo, asked: Asked = {}): Promise<{ check: Check; verified?: VerifiedBlock }> {
  if (!trust.verifier) return { check: { ok: false, text: "not verified: the genesis served is not the one pinned" } };
  try {
    const verified = await trust.verifier.verify(node, block);
    if (asked.height !== undefined && verified.header.height !== asked.height) {
      return { check: { ok: false, text: `asked for block ${asked.height}, the node sent block ${verified.header.height}` } };
    }
    if (asked.transactions && verified.header.txCount > 0 && !verified.transactionsChecked) {
      return { check: { ok: false, text: `the node withheld the ${verified.header.txCount} transactions of block ${verified.header.height}` } };
    }
    if (verified.header.height > highestVerified) highestVerified = verified.header.height;
    const txs = verified.transactionsChecked && block.transactions.length > 0 ? `, ${block.transactions.length} transactions match tx_root` : "";
    const anchor = trust.pinned ? "the pinned genesis" : "the genesis this node serves (not pinned)";
    return {
      check: { ok: true, text: `certified by ${verified.signers.length} validators of the set proven from ${anchor}${txs}`, unpinned: !trust.pinned },
      verified,
    };
  } catch (e) {
    return { check: { ok: false, text: `verification failed: ${reason(e)}` } };
  }
}

/** Transaction `hash` checked in `block` (block `height`, asked with its transactions): the
 * block as [`checkBlock`] does, then the transaction against the block's tx_root; its position
 * when both hold. */
export async function checkInclusion(trust: Trust, node: QuorateNode, block: BlockInfo, height: bigint, hash: Uint8Array): Promise<{ check: Check; index?: number }> {
  const { check } = await checkBlock(trust, node, block, { height, transactions: true });
  if (!check.ok) return { check };
  try {
    const index = verifyInclusion(block, hash);
    return { check: { ok: true, text: `included at position ${index} of verified block ${height} (tx_root checked)`, unpinned: check.unpinned }, index };
  } catch (e) {
    return { check: { ok: false, text: `inclusion of ${toHex(hash)} failed: ${reason(e)}` } };
  }
}

/** The keys (hex) of the set that decides the next height: proven from genesis through the
 * changes the node gives, and named by the head block, verified. */
export async function provenNextSet(trust: Trust, node: QuorateNode): Promise<Set<string>> {
  if (!trust.verifier) throw new Error("the genesis served is not the one pinned");
  const head = (await node.status()).height;
  // A node reporting an older head (whose set a later change may have replaced) is refused.
  if (head < highestVerified) throw new Error(`the node reports head ${head}, below block ${highestVerified} this page verified`);
  const set = await node.validatorSet(head + 1n);
  const keys = trust.verifier.proveSet(set.changes, head + 1n);
  if (head > 0n) {
    const { check, verified } = await checkBlock(trust, node, await node.block(head, false), { height: head });
    if (!verified) throw new Error(check.text);
    if (!equal(validatorSetHash(keys), verified.header.nextValidatorsHash)) {
      throw new Error(`block ${head}, verified, names another set for height ${head + 1n}: a change is missing`);
    }
  }
  return new Set(keys.map(toHex));
}
