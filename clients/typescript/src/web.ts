// A node from a browser: gRPC-web, which every validator serves beside gRPC.
import { createGrpcWebTransport } from "@connectrpc/connect-web";

import { QuorateNode } from "./node.js";

/** The node at `url` (http(s)://host:port), reached with gRPC-web (browsers). */
export function connectWeb(url: string, timeoutMs = 30_000): QuorateNode {
  return new QuorateNode(url, createGrpcWebTransport({ baseUrl: url }), timeoutMs, "web");
}
