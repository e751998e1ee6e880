// What the page trusts: the genesis file, tied to a hash the user pinned (ADR 0014). The node
// serves its genesis as the compact JSON whose BLAKE3 is the genesis hash; the page hashes the
// bytes it got and compares. From the genesis validators every set change and certificate is
// proven by the client library.
import { ChainVerifier, equal, fromHex, toHex } from "@quorate/client";
import { blake3 } from "@noble/hashes/blake3.js";

import { h } from "./dom";

const PIN_KEY = "quorate.explorer.genesis";

/** How far the page trusts what it shows. */
export interface Trust {
  /** The verifier from the genesis, or none when the genesis served is not the one pinned. */
  verifier: ChainVerifier | undefined;
  /** Hash of the genesis the node served. */
  served: string;
  /** The hash the user pinned, if any. */
  pinned: string | undefined;
  /** The chain's id, from the genesis. */
  chainId: string;
}

/** The hash pinned: `?genesis=` in the page's URL (kept from then on), or kept from before. */
function pinnedHash(): string | undefined {
  const fromUrl = new URLSearchParams(location.search).get("genesis");
  if (fromUrl) {
    localStorage.setItem(PIN_KEY, fromUrl.toLowerCase());
    return fromUrl.toLowerCase();
  }
  return localStorage.getItem(PIN_KEY) ?? undefined;
}

/** Loads the node's genesis and checks it against the pinned hash. */
export async function loadTrust(): Promise<Trust> {
  const response = await fetch("genesis.json", { cache: "no-store" });
  if (!response.ok) throw new Error(`the node serves no genesis (${response.status})`);
  const bytes = new Uint8Array(await response.arrayBuffer());
  const served = toHex(blake3(bytes));
  const text = new TextDecoder().decode(bytes);
  const chainId = (JSON.parse(text) as { chain_id: string }).chain_id;
  const pinned = pinnedHash();
  const matches = pinned === undefined || (/^[0-9a-f]{64}$/.test(pinned) && equal(fromHex(pinned), fromHex(served)));
  return {
    verifier: matches ? ChainVerifier.fromGenesisJson(text, fromHex(served)) : undefined,
    served,
    pinned,
    chainId,
  };
}

/** The banner that says what the page trusts. */
export function trustBanner(trust: Trust, node: string): HTMLElement {
  if (trust.pinned === undefined) {
    const pin = h("button", { type: "button", id: "pin" }, "pin this genesis");
    pin.addEventListener("click", () => {
      localStorage.setItem(PIN_KEY, trust.served);
      location.reload();
    });
    return h(
      "div",
      { class: "banner warn", "data-trust": "unpinned" },
      `Trusting the genesis of node ${node} (hash ${trust.served}): compare it with the hash your consortium published, then `,
      pin,
      ". Blocks are checked against it.",
    );
  }
  if (trust.verifier === undefined) {
    return h(
      "div",
      { class: "banner bad", "data-trust": "mismatch" },
      `Node ${node} serves a genesis with hash ${trust.served}, not the pinned ${trust.pinned}: this is another chain or a lying node, and nothing it shows can be verified.`,
    );
  }
  const unpin = h("button", { type: "button" }, "unpin");
  unpin.addEventListener("click", () => {
    localStorage.removeItem(PIN_KEY);
    location.assign(location.pathname);
  });
  return h("div", { class: "banner ok", "data-trust": "pinned" }, `Genesis ${trust.served} pinned: every block is checked against it. `, unpin);
}
