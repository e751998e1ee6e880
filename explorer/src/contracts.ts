// The four system contracts: a certificate with its specification and validity, a device with
// its grants and history, a remitter's reserves and remittances, a credit certificate with its
// escrow; and any read-only method of any of them. Query results are reported by the node
// (cross-checked on request), not proven.
import { checkpointBefore, fromHex, SYSTEM_CONTRACTS, systemContract, systemContractAddress, toHex, type QuorateNode } from "@quorate/client";

import { card, h } from "./dom";
import type { View } from "./main";
import { render, reported } from "./reported";

const VALIDITY = ["UNSPECIFIED", "VALID", "REVOKED", "EXPIRED", "UNKNOWN"];

/** A form that goes to `route(value)`. */
function goTo(label: string, placeholder: string, route: (v: string) => string): HTMLElement {
  const input = h("input", { name: "v", placeholder, "aria-label": label }) as HTMLInputElement;
  const form = h("form", { class: "goto" }, h("label", {}, label, " ", input), h("button", { type: "submit" }, "show"));
  form.addEventListener("submit", (e) => {
    e.preventDefault();
    if (input.value.trim()) location.hash = route(input.value.trim());
  });
  return form;
}

/** Reads `method` of contract `name` with `fields` from `node`. */
function reader(name: string, method: string, fields: Record<string, unknown>) {
  return (node: QuorateNode) => systemContract(name).query(node, method, fields);
}

/** `#/contracts`. */
export function contractsView(view: View): HTMLElement {
  const names = SYSTEM_CONTRACTS;
  const contract = h("select", { name: "contract", "aria-label": "contract" }, names.map((n) => h("option", { value: n }, n))) as HTMLSelectElement;
  const method = h("select", { name: "method", "aria-label": "method" }) as HTMLSelectElement;
  const args = h("input", { name: "args", placeholder: '{"id": 1}', "aria-label": "arguments (JSON)" }) as HTMLInputElement;
  const out = h("div", { id: "query-result" });
  const fill = () => method.replaceChildren(...systemContract(contract.value).methods.map((m) => h("option", { value: m }, m)));
  contract.addEventListener("change", fill);
  fill();
  const form = h("form", { class: "query" }, contract, method, args, h("button", { type: "submit" }, "query"));
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    out.replaceChildren("asking…");
    try {
      const fields = args.value.trim() ? parseArgs(args.value) : {};
      const read = reader(contract.value, method.value, fields);
      const result = await read(view.node);
      out.replaceChildren(render(result), reported(view, read, result));
    } catch (err) {
      out.replaceChildren(h("p", { class: "poor" }, err instanceof Error ? err.message : String(err)));
    }
  });
  return h(
    "div",
    {},
    card(
      "System contracts",
      h("ul", {}, names.map((n) => h("li", {}, `${n}: `, h("span", { class: "hash" }, toHex(systemContractAddress(n)))))),
      goTo("Certificate id", "1", (v) => `/certificate/${v}`),
      goTo("Device", "door-1", (v) => `/device/${encodeURIComponent(v)}`),
      goTo("Remitter (address)", "40 hex digits", (v) => `/remittance/${v}`),
      goTo("Credit certificate id", "1", (v) => `/credit/${v}`),
    ),
    card("Query any read-only method", h("p", {}, "Arguments as JSON; bytes as hex strings."), form, out),
  );
}

/** JSON arguments; strings of hex digits for bytes fields are turned into bytes. */
function parseArgs(text: string): Record<string, unknown> {
  const parsed = JSON.parse(text) as Record<string, unknown>;
  for (const [k, v] of Object.entries(parsed)) {
    if (typeof v === "string" && /^(0x)?([0-9a-f]{2}){20,}$/i.test(v)) parsed[k] = fromHex(v.replace(/^0x/, ""));
  }
  return parsed;
}

/** Shows the page again on each new event of contract `name` (the state it shows may have
 * changed). */
async function live(view: View, name: string): Promise<void> {
  const head = (await view.node.status()).height;
  view.follow(view.node.events({ contract: systemContractAddress(name) }, checkpointBefore(head + 1n), 60_000, view.signal), () => view.refresh());
}

async function shown(view: View, title: string, name: string, method: string, fields: Record<string, unknown>, extra: (HTMLElement | string)[] = []): Promise<HTMLElement> {
  const read = reader(name, method, fields);
  const result = await read(view.node);
  return card(title, ...extra, render(result), reported(view, read, result));
}

/** `#/certificate/<id>`: validity, the certificate, its specification. */
export async function certificateView(view: View, id: bigint): Promise<HTMLElement> {
  await live(view, "certificates");
  const certs = systemContract("certificates");
  const verification = (await certs.query(view.node, "verify", { id })) as { validity: number; certificate?: { specId: bigint } };
  const validity = VALIDITY[verification.validity] ?? String(verification.validity);
  // Reported by the node (a query), so never in the green of a verified check.
  const cls = validity === "VALID" ? "badge neutral" : "badge bad";
  const parts = [
    await shown(view, `Certificate ${id}`, "certificates", "verify", { id }, [h("p", {}, h("span", { class: cls, id: "validity" }, validity), " at the latest block")]),
  ];
  if (verification.certificate && verification.certificate.specId > 0n) {
    parts.push(await shown(view, `Specification ${verification.certificate.specId}`, "certificates", "spec", { id: verification.certificate.specId }));
  }
  return h("div", {}, parts);
}

/** `#/device/<name>`: the device, its controllers and grants, its history. */
export async function deviceView(view: View, device: string): Promise<HTMLElement> {
  await live(view, "device-permissions");
  return h("div", {}, await shown(view, `Device ${device}`, "device-permissions", "device", { device }), await shown(view, "History", "device-permissions", "history", { device, limit: 200 }));
}

/** `#/remittance/<owner>`: a remitter's reserves and remittances. */
export async function remittanceView(view: View, owner: string): Promise<HTMLElement> {
  await live(view, "remittance");
  const address = fromHex(owner);
  return h(
    "div",
    {},
    await shown(view, `Reserves of ${owner}`, "remittance", "reserves", { owner: address }),
    await shown(view, "Remittances sent or received", "remittance", "history", { account: address, limit: 200 }),
  );
}

/** `#/credit/<id>`: a credit certificate, its holder and escrow state. */
export async function creditView(view: View, id: bigint): Promise<HTMLElement> {
  await live(view, "credit-escrow");
  return h("div", {}, await shown(view, `Credit certificate ${id}`, "credit-escrow", "get", { id }));
}
