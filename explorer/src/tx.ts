// A transaction: its status, receipt (fuel, fee, events), signatures and co-signatures, and its
// inclusion checked against a verified block's tx_root.
import { fromBinary } from "@bufbuild/protobuf";
import { fromHex, SYSTEM_CONTRACTS, systemContractAddress, toHex, tx, types } from "@quorate/client";

import { card, facts, h, link, short, table } from "./dom";
import type { View } from "./main";
import { reported } from "./reported";
import { badge, checkInclusion } from "./verify";

type Transaction = types.Transaction;
type TxBody = types.TxBody;

const STATES = ["UNSPECIFIED", "UNKNOWN", "PENDING", "COMMITTED", "REJECTED", "EVICTED"];
const EXEC = ["UNSPECIFIED", "SUCCESS", "INSUFFICIENT_FUNDS", "OUT_OF_FUEL", "TRAPPED", "ABORTED", "OUT_OF_MEMORY", "PERMISSION_DENIED", "BAD_INPUT"];

/** The name of a system contract at `address`, if it is one. */
export function contractName(address: Uint8Array): string | undefined {
  const hex = toHex(address);
  return SYSTEM_CONTRACTS.find((n) => toHex(systemContractAddress(n)) === hex);
}

/** A transaction's body, decoded (undefined if it does not decode). */
export function body(t: Transaction): TxBody | undefined {
  try {
    return fromBinary(types.TxBodySchema, t.body);
  } catch {
    return undefined;
  }
}

/** What a transaction body asks for, in a few words. */
export function describePayload(bodyBytes: Uint8Array | TxBody | undefined): string {
  let b: TxBody | undefined;
  try {
    b = bodyBytes instanceof Uint8Array ? fromBinary(types.TxBodySchema, bodyBytes) : bodyBytes;
  } catch {
    return "(undecodable)";
  }
  const p = b?.payload;
  switch (p?.case) {
    case "transfer":
      return `transfer ${p.value.amount} to ${short(toHex(p.value.to))}`;
    case "call":
      return `call ${contractName(p.value.contract) ?? short(toHex(p.value.contract))}.${p.value.method}`;
    case "deploy":
      return `deploy ${p.value.code.length} bytes of code`;
    case "admin":
      return `admin: ${p.value.action.case ?? "none"}`;
    case "keys":
      return `keys: ${p.value.change.case ?? "none"}`;
    default:
      return "no payload";
  }
}

function addressLink(bytes: Uint8Array): HTMLElement {
  const hex = toHex(bytes);
  return link(`/account/${hex}`, h("span", { class: "hash" }, hex));
}

/** `#/tx/<hash>`. */
export async function txView(view: View, hashHex: string): Promise<HTMLElement> {
  const node = view.node;
  const hash = fromHex(hashHex);
  // The head before the status: a transaction committed between the two is still seen.
  const head = (await node.status()).height;
  const status = await node.txStatus(hash);
  const state = STATES[status.state] ?? String(status.state);
  const parts: HTMLElement[] = [];
  let inclusion: HTMLElement = h("p", {}, state === "PENDING" ? "Pending: not in a block yet; what follows is reported by the node." : "Not in a committed block.");
  // What is shown of a committed transaction comes from its verified block, not from the
  // node's status answer.
  let t = state === "COMMITTED" ? undefined : status.transaction;
  let position: number | undefined;
  if (state === "PENDING") {
    // Live: shown again once a block includes it.
    view.follow(node.blocks(head + 1n, false, 60_000, view.signal), (block) => {
      if (block.txHashes.some((x) => toHex(x) === hashHex)) view.refresh();
    });
  }
  if (state === "COMMITTED") {
    const block = await node.block(status.height, true);
    const { check, index } = await checkInclusion(view.trust, node, block, status.height, hash);
    inclusion = badge(check);
    if (index !== undefined) {
      t = block.transactions[index];
      position = index;
    }
  }
  const b = t ? body(t) : undefined;
  parts.push(
    card(
      `Transaction ${short(hashHex)}`,
      inclusion,
      facts([
        ["hash", h("span", { class: "hash" }, hashHex)],
        ["state", h("strong", { id: "tx-state" }, state)],
        ...(position !== undefined
          ? ([
              ["block", link(`/block/${status.height}`, String(status.height))],
              ["position", String(position)],
            ] as [string, HTMLElement | string][])
          : []),
        ...(status.rejection ? ([["refused", `${status.rejection.code}: ${status.rejection.message}`]] as [string, string][]) : []),
        ...(b
          ? ([
              ["account", addressLink(b.signer)],
              ["nonce", String(b.nonce)],
              ["fuel limit", String(b.fuelLimit)],
              ["what", describePayload(b)],
            ] as [string, HTMLElement | string][])
          : []),
      ]),
    ),
  );
  if (status.receipt) {
    const r = status.receipt;
    parts.push(
      card(
        "Receipt",
        reported(view, async (n) => (await n.txStatus(hash)).receipt, r),
        facts([
          ["result", h("strong", { id: "receipt-status", class: r.status === 1 ? "good" : "poor" }, EXEC[r.status] ?? String(r.status))],
          ["fuel used", String(r.fuelUsed)],
          ["fee", String(r.fee)],
          ...(r.error ? ([["error", r.error]] as [string, string][]) : []),
          ...(r.contractAddress.length > 0 ? ([["contract created", addressLink(r.contractAddress)]] as [string, HTMLElement][]) : []),
          ...(r.returnData.length > 0 ? ([["returned", h("span", { class: "hash" }, toHex(r.returnData))]] as [string, HTMLElement][]) : []),
        ]),
        r.events.length > 0
          ? table(
              ["contract", "kind", "data"],
              r.events.map((e) => [contractName(e.contract) ?? short(toHex(e.contract)), e.kind, h("span", { class: "hash" }, short(toHex(e.data)))]),
              { id: "events" },
            )
          : h("p", {}, "No events."),
      ),
    );
  }
  if (t) {
    let words: string;
    try {
      words = tx.describe(t);
    } catch (e) {
      words = `signatures do not verify: ${e instanceof Error ? e.message : String(e)}`;
    }
    parts.push(
      card(
        "Signatures",
        table(
          ["role", "public key"],
          [["signer", h("span", { class: "hash" }, toHex(t.publicKey))], ...t.cosignatures.map((c) => ["co-signer", h("span", { class: "hash" }, toHex(c.publicKey))])],
          { id: "signatures" },
        ),
        h("pre", { class: "words" }, words),
      ),
    );
  }
  return h("div", {}, parts);
}
