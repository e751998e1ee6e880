// The page's checks, through the client library: a block against its certificate under the set
// proven from genesis, a transaction against its block's tx_root. A failed check is shown in
// red with its reason, never hidden.
import type { nodeMessages, QuorateNode, VerifiedBlock } from "@quorate/client";
import { toHex, verifyInclusion } from "@quorate/client";

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

/** `block` checked: its certificate under the set proven from genesis, its transactions when it
 * carries them. */
export async function checkBlock(trust: Trust, node: QuorateNode, block: BlockInfo): Promise<{ check: Check; verified?: VerifiedBlock }> {
  if (!trust.verifier) return { check: { ok: false, text: "not verified: the genesis served is not the one pinned" } };
  try {
    const verified = await trust.verifier.verify(node, block);
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

/** Transaction `hash` checked in `block` (carrying its transactions): the block as
 * [`checkBlock`] does, then the transaction against the block's tx_root; its position when
 * both hold. */
export async function checkInclusion(trust: Trust, node: QuorateNode, block: BlockInfo, hash: Uint8Array): Promise<{ check: Check; index?: number }> {
  const { check } = await checkBlock(trust, node, block);
  if (!check.ok) return { check };
  try {
    const index = verifyInclusion(block, hash);
    return { check: { ok: true, text: `included at position ${index} of a verified block (tx_root checked)` }, index };
  } catch (e) {
    return { check: { ok: false, text: `inclusion of ${toHex(hash)} failed: ${reason(e)}` } };
  }
}
