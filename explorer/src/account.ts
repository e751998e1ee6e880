// An account: balance, nonces, key set and thresholds (reported by the node, cross-checked on
// request), and its recent transactions found in the latest blocks (each block verified).
import { fromHex, toHex } from "@quorate/client";

import { card, facts, h, link, short, table } from "./dom";
import type { View } from "./main";
import { reported } from "./reported";
import { body, describePayload } from "./tx";
import { badge, checkBlock } from "./verify";

/** How many of the latest blocks are searched for the account's transactions. */
const SCAN = 100;

/** `#/account/<address>`. */
export async function accountView(view: View, hex: string): Promise<HTMLElement> {
  const node = view.node;
  const address = fromHex(hex);
  const read = (n: typeof node) => n.account(address);
  const answer = await read(node);
  const a = answer.account;
  const ks = answer.keySet;
  const keys = ks
    ? card(
        "Keys",
        table(
          ["public key", "weight"],
          ks.keys.map((k) => [h("span", { class: "hash" }, toHex(k.publicKey)), String(k.weight)]),
          { id: "keys" },
        ),
        ks.thresholds
          ? facts([
              ["base", String(ks.thresholds.base)],
              ["key management", String(ks.thresholds.keyManagement)],
              ["deploy", String(ks.thresholds.deploy)],
              ["large transfer", `${ks.thresholds.largeTransfer} above ${ks.thresholds.largeTransferAbove}`],
              ["contract call", String(ks.thresholds.contractCall)],
            ])
          : "",
      )
    : card("Keys", h("p", {}, "One key: the address is its hash."));

  // Recent transactions: the account's own, and transfers to it, in the latest blocks.
  const recent = h("tbody", { id: "recent" });
  const scan = async () => {
    const head = (await node.status()).height;
    const from = head > BigInt(SCAN) ? head - BigInt(SCAN) + 1n : 1n;
    // Oldest first, so that each block is checked as the one after the last (its certificate
    // only), and every block is checked, matched or not: a node that withholds or alters a
    // block's transactions cannot hide the account's ones unseen. Newest shown first.
    for (let height = from; height <= head && height > 0n; height++) {
      if (view.signal.aborted) return;
      const block = await node.block(height, true);
      const { check } = await checkBlock(view.trust, node, block, { height, transactions: true });
      if (!check.ok) {
        recent.prepend(h("tr", {}, h("td", {}, link(`/block/${height}`, String(height))), h("td", { colspan: "2" }, "its transactions cannot be searched"), h("td", {}, badge(check))));
        continue;
      }
      const found = block.transactions
        .map((t, i) => ({ t, i, b: body(t) }))
        .filter(({ b }) => b && (toHex(b.signer) === hex || (b.payload.case === "transfer" && toHex(b.payload.value.to) === hex)));
      for (const { t, i } of found) {
        const txHex = toHex(block.txHashes[i] ?? new Uint8Array());
        recent.prepend(h("tr", {}, h("td", {}, link(`/block/${height}`, String(height))), h("td", {}, link(`/tx/${txHex}`, h("span", { class: "hash" }, short(txHex)))), h("td", {}, describePayload(t.body)), h("td", {}, badge(check))));
      }
    }
    if (recent.children.length === 0) recent.append(h("tr", {}, h("td", { colspan: "4" }, `None in the last ${SCAN} blocks.`)));
  };
  void scan().catch((e) => recent.append(h("tr", {}, h("td", { colspan: "4", class: "poor" }, `The search stopped: ${e instanceof Error ? e.message : String(e)}`))));
  // Live: shown again when a new block carries a transaction of this account or to it.
  const head = answer.height;
  view.follow(node.blocks(head + 1n, true, 60_000, view.signal), (block) => {
    const touches = block.transactions.some((t) => {
      const b = body(t);
      return b && (toHex(b.signer) === hex || (b.payload.case === "transfer" && toHex(b.payload.value.to) === hex));
    });
    if (touches) view.refresh();
  });

  return h(
    "div",
    {},
    card(
      `Account ${short(hex)}`,
      facts([
        ["address", h("span", { class: "hash" }, hex)],
        ["balance", h("strong", { id: "balance" }, String(a?.balance ?? 0n))],
        ["nonce", String(a?.nonce ?? 0n)],
        ["next nonce", `${answer.nextNonce} (with pending)`],
        ["at height", String(answer.height)],
      ]),
      reported(view, read, answer),
    ),
    keys,
    card("Recent transactions", h("table", {}, h("thead", {}, h("tr", {}, ["block", "hash", "what", "verified"].map((c) => h("th", {}, c)))), recent)),
  );
}
