// Node.js only: a node over gRPC (HTTP/2, plaintext or TLS with an optional client
// certificate), and key files on disk.
import { readFileSync, writeFileSync } from "node:fs";
import { createGrpcTransport } from "@connectrpc/connect-node";

import { BadInput } from "./errors.js";
import { Key } from "./keys.js";
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
  return new QuorateNode(url, createGrpcTransport({ baseUrl: url, nodeOptions, readMaxBytes: MAX_MESSAGE_BYTES }), timeoutMs);
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
