// The explorer: reads from the validator that serves it (gRPC-web on the same origin) and checks
// what it shows against the genesis pinned by the user (ADR 0014). Routes live in the URL's
// hash: #/, #/block/12, #/tx/<hash>, #/account/<address>, #/contracts, #/certificate/3, …
import "./style.css";

import { connectWeb, fromHex, type QuorateNode } from "@quorate/client";

import { accountView } from "./account";
import { blockView, chainView } from "./chain";
import { certificateView, contractsView, creditView, deviceView, remittanceView } from "./contracts";
import { h } from "./dom";
import { loadTrust, trustBanner, type Trust } from "./trust";
import { txView } from "./tx";

const PEERS_KEY = "quorate.explorer.peers";

/** What every view shares: the node, the trust anchor, the other validators' URLs. */
interface Base {
  node: QuorateNode;
  nodeName: string;
  trust: Trust;
  /** This node's key (hex), as it says. */
  nodeKey: string;
  /** Other validators' URLs (gRPC-web) the user gave, to cross-check what a query reports. */
  userPeers(): string[];
  /** Those this node offers (listed, never counted). */
  offeredPeers: string[];
}

/** What one showing of a view gets: the shared part, and what ends with it. */
export interface View extends Base {
  /** Aborted when another view (or this one again) is shown: streams and scans stop. */
  signal: AbortSignal;
  /** Runs `each` on the items of `stream` while this view is shown (open the stream with
   * `signal`, so that it is closed on the node too). */
  follow<T>(stream: AsyncGenerator<T>, each: (item: T) => Promise<void> | void): void;
  /** Shows this view again (live pages, when what they show has changed). */
  refresh(): void;
}

/** The node's explorer settings. */
interface Config {
  chain_id: string;
  node_key: string;
  peer_urls: string[];
}

const view = document.getElementById("view")!;
let current = new AbortController();
let generation = 0;

async function start(): Promise<void> {
  const origin = location.origin;
  const [trust, config] = await Promise.all([loadTrust(), fetch("config.json", { cache: "no-store" }).then((r) => r.json() as Promise<Config>)]);
  document.getElementById("trust")!.replaceChildren(trustBanner(trust, origin));
  const base: Base = {
    node: connectWeb(origin),
    nodeName: origin,
    trust,
    nodeKey: config.node_key,
    userPeers: () => [...new Set(JSON.parse(localStorage.getItem(PEERS_KEY) ?? "[]") as string[])].filter((u) => u !== origin),
    offeredPeers: config.peer_urls,
  };
  footer(base, config);
  const search = document.getElementById("search") as HTMLFormElement;
  search.addEventListener("submit", (e) => {
    e.preventDefault();
    const q = (new FormData(search).get("q") as string).trim().toLowerCase().replace(/^0x/, "");
    void searchFor(base, q);
  });
  window.addEventListener("hashchange", () => void route(base));
  await route(base);
}

/** Goes to what `q` names: a height, a transaction or block hash, an address. */
async function searchFor(ctx: Base, q: string): Promise<void> {
  // What the search shows replaces the view, which stops (its streams, its late answers).
  current.abort();
  generation++;
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
async function route(base: Base, again = false): Promise<void> {
  // The view shown until now stops: its streams close, its scans end, its late answers are
  // dropped (only the newest showing puts anything on the page).
  current.abort();
  current = new AbortController();
  const signal = current.signal;
  const mine = ++generation;
  const ctx: View = {
    ...base,
    signal,
    follow: (stream, each) => {
      void (async () => {
        try {
          for await (const item of stream) {
            if (signal.aborted) return;
            await each(item);
          }
        } catch (e) {
          if (!signal.aborted) {
            document.getElementById("live")!.replaceChildren(h("p", { class: "poor" }, `live updates stopped: ${e instanceof Error ? e.message : String(e)}`));
          }
        }
      })();
    },
    refresh: () => {
      if (!signal.aborted) void route(base, true);
    },
  };
  document.getElementById("live")!.replaceChildren();
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
    if (mine !== generation) return;
    shown.setAttribute("data-view", kind || "chain");
    shown.setAttribute("data-ms", String(Math.round(performance.now() - started)));
    view.replaceChildren(shown);
  } catch (e) {
    if (mine !== generation) return;
    view.replaceChildren(h("p", { class: "poor", "data-view": "error" }, `Cannot show this: ${e instanceof Error ? e.message : String(e)}`));
  }
}

/** The footer: which node, and the other validators' URLs used for cross-checks. */
function footer(ctx: Base, config: Config): void {
  const input = h("input", { placeholder: "https://other-validator:7050", "aria-label": "another validator's URL" }) as HTMLInputElement;
  const mine = () => JSON.parse(localStorage.getItem(PEERS_KEY) ?? "[]") as string[];
  const describe = () =>
    `yours (counted): ${mine().join(", ") || "none"}; offered by this node (not counted): ${config.peer_urls.join(", ") || "none"}`;
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

