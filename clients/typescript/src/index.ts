// Client library for Quorate nodes, for Node.js and browsers. From Node.js, import
// "@quorate/client/node" for `connectNode` (gRPC) and key files; from a browser, use
// `connectWeb` (gRPC-web). Messages are the generated `gen/quorate/v1/*_pb.js`.
export * from "./bytes.js";
export * from "./errors.js";
export * from "./keys.js";
export * as tx from "./tx.js";
export { QuorateNode, checkpointBefore, checkpointOf, resumeHeight, MAX_MESSAGE_BYTES, type Checkpoint, type Connection, type Outcome } from "./node.js";
export { NonceManager, type NonceSource } from "./nonce.js";
export * from "./verify.js";
export * from "./system.js";
export { connectWeb } from "./web.js";
export * as types from "./gen/quorate/v1/types_pb.js";
export * as nodeMessages from "./gen/quorate/v1/node_pb.js";
export * as contractMessages from "./gen/quorate/v1/contract_pb.js";
