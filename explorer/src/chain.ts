// The chain: the live head, the validator set with its proven changes, the latest blocks (each
// verified, new ones arriving from the node's block stream), and one block in detail.
import type { nodeMessages } from "@quorate/client";
import { equal, toHex, validatorSetHash } from "@quorate/client";

import { card, facts, h, link, short, table, time } from "./dom";
import type { View } from "./main";
import { body, describePayload } from "./tx";
import { badge, checkBlock, type Check } from "./verify";
import type { VerifiedBlock } from "@quorate/client";

type BlockInfo = nodeMessages.BlockInfo;
type GetValidatorSetResponse = nodeMessages.GetValidatorSetResponse;

/** Blocks listed on the chain page. */
const LATEST = 15;

/** Names of validators by key (hex), from the set answers seen. */
const names = new Map<string, string>();

function remember(set: GetValidatorSetResponse): void {
  for (const v of set.validators) names.set(toHex(v.publicKey), v.name);
  for (const c of set.changes) for (const v of c.validators) names.set(toHex(v.publicKey), v.name);
}

function validatorName(key: Uint8Array): string {
  const hex = toHex(key);
  const name = names.get(hex);
  return name ? `${name} (${short(hex)})` : short(hex);
}

/** The validator set for the next height, proven from genesis through its changes, and named
 * by the verified head block (a change left out would leave an older set: the head's header
 * names the set that decides the next height). */
function setCheck(view: View, set: GetValidatorSetResponse, head: VerifiedBlock | undefined): Check {
  if (!view.trust.verifier) return { ok: false, text: "not verified: the genesis served is not the one pinned" };
  if (set.height > 1n && (!head || head.header.height + 1n !== set.height)) {
    return { ok: false, text: `not verified: the block before height ${set.height} did not check out` };
  }
  if (head && !equal(head.header.nextValidatorsHash, set.setHash)) {
    return { ok: false, text: `block ${head.header.height}, verified, names another set for height ${set.height}: a change is missing` };
  }
  try {
    const proven = view.trust.verifier.proveSet(set.changes, set.height);
    const named = set.validators.map((v) => v.publicKey);
    const same = proven.length === named.length && proven.every((k, i) => equal(k, named[i]));
    if (!same || !equal(validatorSetHash(proven), set.setHash)) {
      return { ok: false, text: `the node names a set for height ${set.height} other than the one its changes prove` };
    }
    return { ok: true, text: `proven from genesis through ${set.changes.length} certified change(s), named by the verified head`, unpinned: !view.trust.pinned };
  } catch (e) {
    return { ok: false, text: `set changes do not check out: ${e instanceof Error ? e.message : String(e)}` };
  }
}

function blockRow(block: BlockInfo, check: Check, signers: number): HTMLElement {
  const header = block.header;
  const height = header?.height ?? 0n;
  return h(
    "tr",
    { "data-height": String(height) },
    h("td", {}, link(`/block/${height}`, String(height))),
    h("td", { class: "hash" }, short(toHex(block.hash))),
    h("td", {}, String(header?.txCount ?? 0)),
    h("td", {}, time(header?.timeMs ?? 0n)),
    h("td", {}, String(signers)),
    h("td", {}, badge(check)),
  );
}

/** `#/`: head, validators, latest blocks; live. */
export async function chainView(view: View): Promise<HTMLElement> {
  const node = view.node;
  const status = await node.status();
  const set = await node.validatorSet(status.height + 1n);
  remember(set);
  const headHeight = h("span", { id: "head-height" }, String(status.height));
  const headHash = h("span", { class: "hash", id: "head-hash" }, "");
  const lastSigners = h("div", { id: "last-signers" }, "");
  const rows = h("tbody", { id: "blocks" });
  const list = h(
    "table",
    { class: "blocks" },
    h("thead", {}, h("tr", {}, ["height", "hash", "txs", "time", "signatures", "verified"].map((c) => h("th", {}, c)))),
    rows,
  );

  const setBadge = h("span", { id: "set-check" }, "checking…");
  const validators = card(
    "Validator set",
    setBadge,
    facts([
      ["deciding height", String(set.height)],
      ["set hash", h("span", { class: "hash" }, toHex(set.setHash))],
    ]),
    table(
      ["#", "name", "public key"],
      set.validators.map((v, i) => [String(i), v.name, h("span", { class: "hash" }, toHex(v.publicKey))]),
      { id: "validators" },
    ),
    set.changes.length > 0
      ? table(
          ["changed at", "validators", "certified by"],
          set.changes.map((c) => [String(c.height), c.validators.map((v) => v.name || short(toHex(v.publicKey))).join(", "), `${c.certificate?.signatures.length ?? 0} signatures`]),
        )
      : h("p", {}, "No change since genesis."),
    set.scheduled.map((s) => h("p", { class: "scheduled" }, `Decided, in force from height ${s.fromHeight} (reported by the node, proven once in force): ${s.validators.map((v) => v.name || short(toHex(v.publicKey))).join(", ")}`)),
  );

  let head: VerifiedBlock | undefined;
  // A block of the list is the height asked (a node answering with an older block is caught);
  // the stream's blocks are checked in order by the library.
  const shown = async (block: BlockInfo, height?: bigint) => {
    const { check, verified } = await checkBlock(view.trust, node, block, { height });
    const row = blockRow(block, check, verified?.signers.length ?? block.certificate?.signatures.length ?? 0);
    rows.prepend(row);
    while (rows.children.length > LATEST) rows.lastElementChild?.remove();
    // The head moves only with a verified block.
    if (verified) {
      head = verified;
      headHeight.textContent = String(verified.header.height);
      headHash.textContent = toHex(verified.hash);
      lastSigners.replaceChildren(`Block ${verified.header.height} certified by: ${verified.signers.map(validatorName).join(", ")}`);
    }
  };

  // The latest blocks, oldest first so that the newest ends on top; then the live stream.
  const top = status.height;
  const first = top > BigInt(LATEST) ? top - BigInt(LATEST) + 1n : 1n;
  for (let height = first; height <= top && top > 0n; height++) {
    await shown(await node.block(height, false), height);
  }
  setBadge.replaceChildren(badge(setCheck(view, set, head)));
  view.follow(node.blocks(top + 1n, false, 60_000, view.signal), (block) => shown(block));

  return h(
    "div",
    {},
    card("Head", facts([["chain", status.chainId], ["height", headHeight], ["hash", headHash], ["node", view.nodeName]]), lastSigners),
    validators,
    card("Latest blocks", list),
  );
}

/** `#/block/<height>`: header, certificate, transactions, checked. */
export async function blockView(view: View, height: bigint): Promise<HTMLElement> {
  const node = view.node;
  const [block, set] = await Promise.all([node.block(height, true), node.validatorSet(height)]);
  remember(set);
  const { check, verified: checked } = await checkBlock(view.trust, node, block, { height, transactions: true });
  const verified = check.ok ? checked : undefined;
  // What is shown comes from the signed header when it checked out.
  const header = verified?.header ?? block.header;
  const txs = block.transactions.map((t, i) => {
    const hash = toHex(block.txHashes[i] ?? new Uint8Array());
    const signer = toHex(body(t)?.signer ?? new Uint8Array());
    return [String(i), link(`/tx/${hash}`, h("span", { class: "hash" }, short(hash))), describePayload(t.body), link(`/account/${signer}`, short(signer))];
  });
  return h(
    "div",
    {},
    card(
      `Block ${height}`,
      badge(check),
      facts([
        ["hash", h("span", { class: "hash" }, toHex(block.hash))],
        ["parent", header && header.height > 1n ? link(`/block/${header.height - 1n}`, h("span", { class: "hash" }, toHex(header.parentHash))) : h("span", { class: "hash" }, toHex(header?.parentHash ?? new Uint8Array()))],
        ["time", time(header?.timeMs ?? 0n)],
        ["proposer", validatorName(header?.proposer ?? new Uint8Array())],
        ["transactions", String(header?.txCount ?? 0)],
        ["tx root", h("span", { class: "hash" }, toHex(header?.txRoot ?? new Uint8Array()))],
        ["state root", h("span", { class: "hash" }, toHex(header?.stateRoot ?? new Uint8Array()))],
        ["next validators", h("span", { class: "hash" }, toHex(header?.nextValidatorsHash ?? new Uint8Array()))],
        ["round", String(block.certificate?.round ?? 0)],
      ]),
      h("p", { class: "nav" }, height > 1n ? link(`/block/${height - 1n}`, "← previous") : "", " ", link(`/block/${height + 1n}`, "next →")),
    ),
    card("Signed by", verified ? h("ul", { id: "signers" }, verified.signers.map((k) => h("li", {}, validatorName(k)))) : h("p", {}, "No verified signers.")),
    card("Transactions", txs.length > 0 ? table(["#", "hash", "what", "signer"], txs, { id: "txs" }) : h("p", {}, "None.")),
  );
}
