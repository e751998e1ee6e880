// A few DOM helpers: elements from a tag, attributes and children; text is always set as text,
// never parsed as HTML (what a node sends cannot inject markup).

/** A child: an element, text, or nothing. */
export type Child = Node | string | number | bigint | null | undefined | false;

/** `<tag attrs…>children…</tag>`. */
export function h(tag: string, attrs: Record<string, string | boolean | undefined> = {}, ...children: (Child | Child[])[]): HTMLElement {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === false) continue;
    el.setAttribute(k, v === true ? "" : v);
  }
  append(el, children);
  return el;
}

/** Appends `children` (flattened) to `el`. */
export function append(el: HTMLElement, children: (Child | Child[])[]): void {
  for (const c of children.flat()) {
    if (c === null || c === undefined || c === false) continue;
    el.append(c instanceof Node ? c : String(c));
  }
}

/** A link to a route of the page. */
export function link(route: string, text: Child): HTMLElement {
  return h("a", { href: `#${route}` }, text);
}

/** A table of label/value rows. */
export function facts(rows: [string, Child | Child[]][]): HTMLElement {
  return h("dl", { class: "facts" }, rows.flatMap(([k, v]) => [h("dt", {}, k), h("dd", {}, ...(Array.isArray(v) ? v : [v]))]));
}

/** A table with a header row. */
export function table(head: string[], rows: (Child | Child[])[][], attrs: Record<string, string> = {}): HTMLElement {
  return h(
    "table",
    attrs,
    h("thead", {}, h("tr", {}, head.map((c) => h("th", {}, c)))),
    h("tbody", {}, rows.map((r) => h("tr", {}, r.map((c) => h("td", {}, ...(Array.isArray(c) ? c : [c])))))),
  );
}

/** A titled section. */
export function card(title: string, ...children: (Child | Child[])[]): HTMLElement {
  return h("section", { class: "card" }, h("h2", {}, title), ...children);
}

/** Time of a block or record (milliseconds since the epoch). */
export function time(ms: bigint | number): string {
  const n = Number(ms);
  return n === 0 ? "-" : new Date(n).toISOString().replace("T", " ").replace(/\.\d+Z$/, " UTC");
}

/** The first and last hex digits of a long hash, for tables. */
export function short(hex: string): string {
  return hex.length > 20 ? `${hex.slice(0, 10)}…${hex.slice(-6)}` : hex;
}
