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
}

/** A check as a badge: green with what was proven, or red with the reason. */
export function badge(check: Check): HTMLElement {
  return h("span", { class: check.ok ? "badge ok" : "badge bad", "data-verified": check.ok ? "yes" : "no" }, check.ok ? `✓ ${check.text}` : `✗ ${check.text}`);
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
    return {
      check: { ok: true, text: `certified by ${verified.signers.length} validators of the set proven from genesis${txs}` },
      verified,
    };
  } catch (e) {
    return { check: { ok: false, text: `verification failed: ${reason(e)}` } };
  }
}

/** Transaction `hash` checked in `block` (carrying its transactions): the block as
 * [`checkBlock`] does, then the transaction against the block's tx_root. */
export async function checkInclusion(trust: Trust, node: QuorateNode, block: BlockInfo, hash: Uint8Array): Promise<Check> {
  const { check } = await checkBlock(trust, node, block);
  if (!check.ok) return check;
  try {
    const index = verifyInclusion(block, hash);
    return { ok: true, text: `included at position ${index} of a verified block (tx_root checked)` };
  } catch (e) {
    return { ok: false, text: `inclusion of ${toHex(hash)} failed: ${reason(e)}` };
  }
}
