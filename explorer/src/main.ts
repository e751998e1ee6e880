// The explorer: reads from the validator that serves it (gRPC-web on the same origin) and checks
// what it shows against the genesis pinned by the user (ADR 0014). Routes live in the URL's
// hash: #/, #/block/12, #/tx/<hash>, #/account/<address>, #/contracts, #/certificate/3, …
import "./style.css";

import { connectWeb, fromHex, toHex, type QuorateNode } from "@quorate/client";

import { accountView } from "./account";
import { blockView, chainView } from "./chain";
import { certificateView, contractsView, creditView, deviceView, remittanceView } from "./contracts";
import { h } from "./dom";
import { loadTrust, trustBanner, type Trust } from "./trust";
import { txView } from "./tx";

const PEERS_KEY = "quorate.explorer.peers";

/** What every view gets: the node, the trust anchor, and a way to follow a stream while the
 * view is shown. */
export interface View {
  node: QuorateNode;
  nodeName: string;
  trust: Trust;
  /** Keys (hex) of the validator set for the next height, proven from the pinned genesis
   * (empty when it cannot be). */
  validators: Set<string>;
  /** This node's key (hex), as it says. */
  nodeKey: string;
  /** Other validators' URLs (gRPC-web), to cross-check what a query reports. */
  peers(): string[];
  /** Runs `each` on the items of `stream` until the view changes. */
  follow<T>(stream: AsyncGenerator<T>, each: (item: T) => Promise<void> | void): void;
  /** Shows the current view again (live pages, when what they show has changed). */
  refresh(): void;
}

/** The node's explorer settings. */
interface Config {
  chain_id: string;
  node_key: string;
  peer_urls: string[];
}

const view = document.getElementById("view")!;
let streams: AsyncGenerator<unknown>[] = [];

function stopStreams(): void {
  for (const s of streams) void s.return(undefined);
  streams = [];
}

async function start(): Promise<void> {
  const origin = location.origin;
  const [trust, config] = await Promise.all([loadTrust(), fetch("config.json", { cache: "no-store" }).then((r) => r.json() as Promise<Config>)]);
  document.getElementById("trust")!.replaceChildren(trustBanner(trust, origin));
  const node = connectWeb(origin);
  const set = await node.validatorSet(0);
  let validators = new Set<string>();
  try {
    if (trust.verifier) validators = new Set(trust.verifier.proveSet(set.changes, set.height).map(toHex));
  } catch {
    // Shown on the chain page; no cross-check without a proven set.
  }
  const ctx: View = {
    node,
    nodeName: origin,
    trust,
    validators,
    nodeKey: config.node_key,
    peers: () => {
      const mine = JSON.parse(localStorage.getItem(PEERS_KEY) ?? "[]") as string[];
      return [...new Set([...config.peer_urls, ...mine])].filter((u) => u !== origin);
    },
    refresh: () => void route(ctx, true),
    follow: (stream, each) => {
      streams.push(stream as AsyncGenerator<unknown>);
      void (async () => {
        try {
          for await (const item of stream) await each(item);
        } catch (e) {
          document.getElementById("footer")!.replaceChildren(h("p", { class: "poor" }, `live updates stopped: ${e instanceof Error ? e.message : String(e)}`));
        }
      })();
    },
  };
  footer(ctx, config);
  const search = document.getElementById("search") as HTMLFormElement;
  search.addEventListener("submit", (e) => {
    e.preventDefault();
    const q = (new FormData(search).get("q") as string).trim().toLowerCase().replace(/^0x/, "");
    void searchFor(ctx, q);
  });
  window.addEventListener("hashchange", () => void route(ctx));
  await route(ctx);
}

/** Goes to what `q` names: a height, a transaction or block hash, an address. */
async function searchFor(ctx: View, q: string): Promise<void> {
  if (/^\d+$/.test(q)) {
    location.hash = `/block/${q}`;
  } else if (/^[0-9a-f]{40}$/.test(q)) {
    location.hash = `/account/${q}`;
  } else if (/^[0-9a-f]{64}$/.test(q)) {
    const status = await ctx.node.txStatus(fromHex(q));
    if (status.state !== 1) {
      location.hash = `/tx/${q}`;
      return;
    }
    try {
      const block = await ctx.node.blockByHash(fromHex(q));
      location.hash = `/block/${block.header?.height ?? 0n}`;
    } catch {
      view.replaceChildren(h("p", { class: "poor" }, `No transaction or block with hash ${q} on this node.`));
    }
  } else {
    view.replaceChildren(h("p", { class: "poor" }, `Search for a height, a 64-digit hash or a 40-digit address; ${JSON.stringify(q)} is none of them.`));
  }
}

/** Shows the view the URL's hash names. */
async function route(ctx: View, again = false): Promise<void> {
  stopStreams();
  const [, kind = "", arg = ""] = location.hash.replace(/^#/, "").split("/");
  const started = performance.now();
  // Shown again in place: the old view stays until the new one is ready.
  if (!again) view.replaceChildren(h("p", { class: "loading" }, "loading…"));
  try {
    let shown: HTMLElement;
    switch (kind) {
      case "":
        shown = await chainView(ctx);
        break;
      case "block":
        shown = await blockView(ctx, BigInt(arg));
        break;
      case "tx":
        shown = await txView(ctx, arg.toLowerCase());
        break;
      case "account":
        shown = await accountView(ctx, arg.toLowerCase());
        break;
      case "contracts":
        shown = contractsView(ctx);
        break;
      case "certificate":
        shown = await certificateView(ctx, BigInt(arg));
        break;
      case "device":
        shown = await deviceView(ctx, decodeURIComponent(arg));
        break;
      case "remittance":
        shown = await remittanceView(ctx, arg.toLowerCase());
        break;
      case "credit":
        shown = await creditView(ctx, BigInt(arg));
        break;
      default:
        shown = h("p", { class: "poor" }, `No page ${JSON.stringify(location.hash)}.`);
    }
    shown.setAttribute("data-view", kind || "chain");
    shown.setAttribute("data-ms", String(Math.round(performance.now() - started)));
    view.replaceChildren(shown);
  } catch (e) {
    view.replaceChildren(h("p", { class: "poor", "data-view": "error" }, `Cannot show this: ${e instanceof Error ? e.message : String(e)}`));
  }
}

/** The footer: which node, and the other validators' URLs used for cross-checks. */
function footer(ctx: View, config: Config): void {
  const input = h("input", { placeholder: "https://other-validator:7050", "aria-label": "another validator's URL" }) as HTMLInputElement;
  const mine = () => JSON.parse(localStorage.getItem(PEERS_KEY) ?? "[]") as string[];
  const describe = () =>
    `offered by this node: ${config.peer_urls.join(", ") || "none"}; yours: ${mine().join(", ") || "none"}`;
  const list = h("span", {}, describe());
  const form = h("form", {}, "Other validators for cross-checks: ", list, " ", input, h("button", { type: "submit" }, "add"));
  form.addEventListener("submit", (e) => {
    e.preventDefault();
    if (input.value.trim()) localStorage.setItem(PEERS_KEY, JSON.stringify([...mine(), input.value.trim()]));
    input.value = "";
    list.textContent = describe();
  });
  document.getElementById("footer")!.replaceChildren(h("p", {}, `Node ${ctx.nodeName} (key ${config.node_key.slice(0, 16)}…), chain ${config.chain_id}. `), form);
}

void start().catch((e) => {
  view.replaceChildren(h("p", { class: "poor" }, `The explorer cannot start: ${e instanceof Error ? e.message : String(e)}`));
});

