// State read with a query cannot be proven against a block (the API has no state proofs yet):
// it is shown as reported by the node it came from, and on request asked of f+1 validators,
// at least one of which is honest when they agree (ADR 0014).
import { connectWeb, type QuorateNode } from "@quorate/client";

import { h } from "./dom";
import type { View } from "./main";

/** A value in a form that compares across nodes: JSON, with bytes as hex, and without the
 * height each node answered at. */
export function canonical(value: unknown): string {
  return JSON.stringify(value, (key, v) => {
    if (key === "height" || key === "$typeName" || key === "checkedAtMs") return undefined;
    if (typeof v === "bigint") return v.toString();
    if (v instanceof Uint8Array) return Array.from(v, (b) => b.toString(16).padStart(2, "0")).join("");
    return v;
  });
}

/** "Reported by node X", with a button that asks the other validators for the same value. */
export function reported(view: View, read: (node: QuorateNode) => Promise<unknown>, mine: unknown): HTMLElement {
  const result = h("span", { class: "crosscheck", "data-crosscheck": "none" });
  const button = h("button", { type: "button" }, "cross-check with f+1 validators");
  button.addEventListener("click", async () => {
    button.setAttribute("disabled", "");
    result.textContent = "asking…";
    const peers = view.peers();
    const n = view.setSize;
    const f = Math.floor((n - 1) / 3);
    const want = canonical(mine);
    let agree = 1;
    const differ: string[] = [];
    const failed: string[] = [];
    await Promise.all(
      peers.map(async (url) => {
        try {
          if (canonical(await read(connectWeb(url, 5_000))) === want) agree += 1;
          else differ.push(url);
        } catch {
          failed.push(url);
        }
      }),
    );
    const ok = agree >= f + 1 && differ.length === 0;
    result.className = ok ? "crosscheck good" : "crosscheck poor";
    result.setAttribute("data-crosscheck", ok ? "agree" : "disagree");
    result.textContent =
      `${agree} of ${peers.length + 1} validators report this (f+1 = ${f + 1} needed)` +
      (differ.length > 0 ? `; different from ${differ.join(", ")}` : "") +
      (failed.length > 0 ? `; no answer from ${failed.join(", ")}` : "") +
      (peers.length === 0 ? "; no other validator's URL is known: add them below the page" : "");
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
