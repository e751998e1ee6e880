// State read with a query cannot be proven against a block (the API has no state proofs yet):
// it is shown as reported by the node it came from, and on request asked of f+1 validators,
// at least one of which is honest when they agree (ADR 0014).
import { connectWeb, toHex, type QuorateNode } from "@quorate/client";

import { h } from "./dom";
import { provenNextSet } from "./verify";
import type { View } from "./main";

/** A value in a form that compares across nodes: JSON, with bytes as hex, and without the
 * height each node answered at (only the answer's own, not heights inside the value). */
export function canonical(value: unknown): string {
  const top = value && typeof value === "object" ? { ...(value as Record<string, unknown>) } : value;
  if (top && typeof top === "object") {
    delete (top as Record<string, unknown>).height;
    delete (top as Record<string, unknown>).checkedAtMs;
  }
  return JSON.stringify(top, (key, v) => {
    if (key === "$typeName") return undefined;
    if (typeof v === "bigint") return v.toString();
    if (v instanceof Uint8Array) return toHex(v);
    return v;
  });
}

/** "Reported by node X", with a button that asks f+1 other validators for the same value.
 * Only validators at URLs the user gave count (the node's offered ones are listed, never
 * counted: a lying node could offer servers of its own). Each must name this chain's genesis
 * and a key of the set proven from genesis and named by the verified head, other than this
 * node's and each other's; f is that set's. */
export function reported(view: View, read: (node: QuorateNode) => Promise<unknown>, mine: unknown): HTMLElement {
  const result = h("span", { class: "crosscheck", "data-crosscheck": "none" });
  const button = h("button", { type: "button" }, "cross-check with f+1 validators");
  button.addEventListener("click", async () => {
    button.setAttribute("disabled", "");
    result.textContent = "asking…";
    let validators: Set<string>;
    try {
      validators = await provenNextSet(view.trust, view.node);
    } catch (e) {
      result.className = "crosscheck poor";
      result.setAttribute("data-crosscheck", "disagree");
      result.textContent = `no validator set proven: ${e instanceof Error ? e.message : String(e)}`;
      button.removeAttribute("disabled");
      return;
    }
    const n = validators.size;
    const f = Math.floor((n - 1) / 3);
    const want = canonical(mine);
    const agreeing = new Set<string>();
    const notes: string[] = [];
    const peers = view.userPeers();
    await Promise.all(
      peers.map(async (url) => {
        try {
          const peer = connectWeb(url, 5_000);
          const status = await peer.status();
          const key = toHex(status.nodePublicKey);
          if (toHex(status.genesisHash) !== view.trust.served) return void notes.push(`${url}: another chain`);
          if (!validators.has(key)) return void notes.push(`${url}: not a validator of the proven set`);
          if (key === view.nodeKey) return void notes.push(`${url}: this node again`);
          if (agreeing.has(key)) return void notes.push(`${url}: a validator already counted`);
          if (canonical(await read(peer)) === want) agreeing.add(key);
          else notes.push(`${url}: reports something else`);
        } catch {
          notes.push(`${url}: no answer`);
        }
      }),
    );
    const ok = agreeing.size >= f + 1;
    result.className = ok ? "crosscheck good" : "crosscheck poor";
    result.setAttribute("data-crosscheck", ok ? "agree" : "disagree");
    result.textContent =
      `${agreeing.size} other validator(s) at the URLs you gave report the same (f+1 = ${f + 1} of ${n} needed)` +
      (peers.length === 0 ? "; give below the URLs of other organisations' validators that you know yourself (what this node offers is not counted)" : "") +
      (notes.length > 0 ? `; ${notes.join("; ")}` : "");
    button.removeAttribute("disabled");
  });
  return h("p", { class: "reported" }, `Reported by node ${view.nodeName}, not proven. `, button, " ", result);
}

/** Renders a decoded message: bytes as hex (20-byte ones as account links), times, nested
 * messages and lists. */
export function render(value: unknown): HTMLElement {
  if (Array.isArray(value)) {
    return h("ol", {}, value.map((v) => h("li", {}, render(v))));
  }
  if (value && typeof value === "object" && !(value instanceof Uint8Array)) {
    const rows = Object.entries(value as Record<string, unknown>).filter(([k]) => k !== "$typeName");
    return h("dl", { class: "facts" }, rows.flatMap(([k, v]) => [h("dt", {}, k), h("dd", { "data-field": k }, field(k, v))]));
  }
  return h("span", {}, field("", value));
}

function field(name: string, v: unknown): HTMLElement | string {
  if (v instanceof Uint8Array) {
    const hex = Array.from(v, (b) => b.toString(16).padStart(2, "0")).join("");
    if (v.length === 20) return h("a", { href: `#/account/${hex}`, class: "hash" }, hex);
    const text = new TextDecoder("utf-8", { fatal: false }).decode(v);
    return h("span", { class: "hash", title: /^[\x20-\x7e]*$/.test(text) && text.length > 0 ? text : "" }, hex || "(empty)");
  }
  if (typeof v === "bigint" && name.endsWith("Ms")) return v === 0n ? "-" : new Date(Number(v)).toISOString().replace("T", " ").replace(/\.\d+Z$/, " UTC");
  if (typeof v === "bigint" || typeof v === "number" || typeof v === "boolean") return String(v);
  if (typeof v === "string") return v;
  if (v === undefined || v === null) return "-";
  return render(v);
}
