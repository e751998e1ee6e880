// One transaction per call from the TypeScript library (Node.js, gRPC): `--clients` concurrent
// tasks, each sending transfers from its own funded account (key files `--keys`/account-N.json
// from `--first`), one Submit per transaction, until `--txs` are accepted; then waits for every
// sender's last transaction. Prints JSON like the Python and Rust figures.
import { parseArgs } from "node:util";

import { Key, tx } from "../src/index.js";
import { connectNode, loadKey } from "../src/node-transport.js";

const { values } = parseArgs({
  options: {
    node: { type: "string" },
    keys: { type: "string" },
    first: { type: "string", default: "1" },
    clients: { type: "string", default: "64" },
    txs: { type: "string", default: "20000" },
  },
});
const clients = Number(values.clients);
const node = connectNode(values.node!);
const status = await node.status();
const keys = Array.from({ length: clients }, (_, i) => loadKey(`${values.keys}/account-${Number(values.first) + i}.json`));
const to = Key.generate().address;
const per = Math.floor(Number(values.txs) / clients);
// Signed before the clock starts, as the Rust load generator does: the figure is the cost of
// submitting and committing one transaction per call.
const work = await Promise.all(
  keys.map(async (key) => {
    const nonce = (await node.account(key.address)).nextNonce;
    return Array.from({ length: per }, (_, k) =>
      tx.sign(tx.transfer({ chainId: status.chainId, signer: key.address, nonce: nonce + BigInt(k), fuelLimit: status.params!.transferFuel }, to, 1n), key),
    );
  }),
);
const latencies: number[] = [];
const last: Uint8Array[] = [];

const started = performance.now();
await Promise.all(
  work.map(async (signed, i) => {
    for (const t of signed) {
      const t0 = performance.now();
      last[i] = await node.submit(t);
      latencies.push(performance.now() - t0);
    }
  }),
);
const accepted = performance.now() - started;
for (const h of last) await node.wait(h, 300_000);
const committed = performance.now() - started;
latencies.sort((a, b) => a - b);
const n = latencies.length;
console.log(JSON.stringify({
  library: "typescript", clients, txs: n,
  accept_s: +(accepted / 1000).toFixed(3), commit_s: +(committed / 1000).toFixed(3),
  tx_per_s: +((n * 1000) / committed).toFixed(1),
  accept_p50_ms: +latencies[n >> 1].toFixed(2), accept_p99_ms: +latencies[Math.min(n - 1, Math.floor((n * 99) / 100))].toFixed(2),
}));
