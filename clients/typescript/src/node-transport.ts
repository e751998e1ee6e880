// Node.js only: a node over gRPC (HTTP/2, plaintext or TLS with an optional client
// certificate), and key files on disk.
import { createPrivateKey, sign as opensslSign, type KeyObject } from "node:crypto";
import { readFileSync, writeFileSync } from "node:fs";
import { createGrpcTransport } from "@connectrpc/connect-node";

import { BadInput } from "./errors.js";
import { Key, setSigner } from "./keys.js";

/** The PKCS#8 wrapping of a raw ed25519 seed (RFC 8410). */
const PKCS8_ED25519 = Uint8Array.from([0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22, 0x04, 0x20]);
const privateKeys = new WeakMap<Uint8Array, KeyObject>();

// In Node.js, signing goes through OpenSSL (the same signatures as @noble/ed25519's, faster).
setSigner((seed, message) => {
  let key = privateKeys.get(seed);
  if (!key) {
    const der = new Uint8Array(PKCS8_ED25519.length + 32);
    der.set(PKCS8_ED25519);
    der.set(seed, PKCS8_ED25519.length);
    key = createPrivateKey({ key: Buffer.from(der), format: "der", type: "pkcs8" });
    privateKeys.set(seed, key);
  }
  return new Uint8Array(opensslSign(null, message, key));
}, "openssl");
import { MAX_MESSAGE_BYTES, QuorateNode } from "./node.js";

/** TLS to a node: the CA that signed its certificate, and for mutual TLS a client certificate
 * and key (PEM file paths). */
export interface TlsFiles {
  ca: string;
  cert?: string;
  key?: string;
}

/** The node at `url` (http://host:port, or https://host:port with `tls`), over gRPC. */
export function connectNode(url: string, tls?: TlsFiles, timeoutMs = 30_000): QuorateNode {
  const secure = url.startsWith("https://");
  if (!secure && !url.startsWith("http://")) throw new BadInput(`invalid node URL ${JSON.stringify(url)}: use http://host:port or https://host:port`);
  if (secure && !tls) throw new BadInput(`${url}: an https:// node needs the CA that signed its certificate`);
  if (!secure && tls) throw new BadInput(`${url}: TLS given for a plaintext URL: use https://`);
  let nodeOptions = {};
  if (tls) {
    try {
      nodeOptions = {
        ca: readFileSync(tls.ca),
        cert: tls.cert ? readFileSync(tls.cert) : undefined,
        key: tls.key ? readFileSync(tls.key) : undefined,
      };
    } catch (e) {
      throw new BadInput(`TLS files: ${(e as Error).message}`);
    }
  }
  const connection = !tls ? "plaintext" : tls.cert ? "mutual-tls" : "tls";
  return new QuorateNode(url, createGrpcTransport({ baseUrl: url, nodeOptions, readMaxBytes: MAX_MESSAGE_BYTES }), timeoutMs, connection);
}

/** The key in the key file at `path` (`quorate keys generate`). */
export function loadKey(path: string): Key {
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch (e) {
    throw new BadInput(`${path}: ${(e as Error).message}`);
  }
  return Key.fromJson(text, path);
}

/** Writes `key` to `path` as `quorate keys generate` does (readable by its owner only). */
export function saveKey(key: Key, path: string): void {
  writeFileSync(path, key.toJson(), { mode: 0o600 });
}

export * from "./index.js";
