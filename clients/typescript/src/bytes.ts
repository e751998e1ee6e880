// Byte helpers: hex, concatenation, big-endian integers.
import { BadInput } from "./errors.js";

/** `bytes` as lowercase hex. */
export function toHex(bytes: Uint8Array): string {
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

/** The bytes of the hex string `hex` (an optional 0x prefix and surrounding space allowed). */
export function fromHex(hex: string): Uint8Array {
  const text = hex.trim().replace(/^0x/, "");
  if (text.length % 2 !== 0 || !/^[0-9a-fA-F]*$/.test(text)) {
    throw new BadInput(`not hex: ${text.slice(0, 16)}${text.length > 16 ? "…" : ""}`);
  }
  const out = new Uint8Array(text.length / 2);
  for (let i = 0; i < out.length; i++) out[i] = parseInt(text.slice(2 * i, 2 * i + 2), 16);
  return out;
}

/** The concatenation of `parts`. */
export function concat(...parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

/** `n` as `width` big-endian bytes (2, 4 or 8). */
export function bigEndian(n: number | bigint, width: 2 | 4 | 8): Uint8Array {
  const out = new Uint8Array(width);
  let v = BigInt(n);
  if (v < 0n || v >= 1n << BigInt(8 * width)) throw new BadInput(`${n} does not fit ${width} bytes`);
  for (let i = width - 1; i >= 0; i--) {
    out[i] = Number(v & 0xffn);
    v >>= 8n;
  }
  return out;
}

/** UTF-8 bytes of `text`. */
export function utf8(text: string): Uint8Array {
  return new TextEncoder().encode(text);
}

/** Whether `a` and `b` hold the same bytes. */
export function equal(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && a.every((x, i) => x === b[i]);
}

/** -1, 0 or 1 as `a` sorts before, with or after `b` (bytewise). */
export function compare(a: Uint8Array, b: Uint8Array): number {
  for (let i = 0; i < Math.min(a.length, b.length); i++) {
    if (a[i] !== b[i]) return a[i] < b[i] ? -1 : 1;
  }
  return a.length === b.length ? 0 : a.length < b.length ? -1 : 1;
}
