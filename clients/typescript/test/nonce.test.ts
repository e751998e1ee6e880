// The nonce manager's rules, offline: a nonce refused for a reason that leaves it free is
// handed out again before any new one; a taken one never is; resync moves past nonces taken
// elsewhere; a failed read is not kept. And where a resumed event stream starts.
import assert from "node:assert/strict";
import { test } from "node:test";

import { checkpointBefore, NonceManager, resumeHeight } from "../src/index.js";

const source = (next: { value: bigint; fail?: boolean }) => ({
  account: async () => {
    if (next.fail) throw new Error("unreachable");
    return { nextNonce: next.value };
  },
});

test("refused nonces come back first and taken ones never", async () => {
  const m = new NonceManager(source({ value: 5n }), new Uint8Array(20));
  assert.deepEqual(await Promise.all([m.lease(), m.lease(), m.lease()]), [5n, 6n, 7n]);
  m.refused(6n, "MEMPOOL_FULL");
  m.refused(7n, "NONCE_USED");
  assert.equal(await m.lease(), 6n);
  assert.equal(await m.lease(), 8n);
});

test("resync moves past nonces taken elsewhere", async () => {
  const next = { value: 0n };
  const m = new NonceManager(source(next), new Uint8Array(20));
  for (const want of [0n, 1n, 2n]) assert.equal(await m.lease(), want);
  m.refused(1n, "INSUFFICIENT_BALANCE");
  next.value = 10n;
  await m.resync();
  assert.equal(await m.lease(), 10n);
});

test("a failed read is not kept", async () => {
  const next = { value: 3n, fail: true };
  const m = new NonceManager(source(next), new Uint8Array(20));
  await assert.rejects(m.lease());
  next.fail = false;
  assert.equal(await m.lease(), 3n);
});

test("concurrent leases never share a nonce", async () => {
  const m = new NonceManager(source({ value: 0n }), new Uint8Array(20));
  const got = await Promise.all(Array.from({ length: 500 }, () => m.lease()));
  assert.deepEqual([...got].sort((a, b) => (a < b ? -1 : 1)), Array.from({ length: 500 }, (_, i) => BigInt(i)));
});

test("a nonce refused twice, or never handed out, is not handed out twice", async () => {
  const m = new NonceManager(source({ value: 0n }), new Uint8Array(20));
  assert.equal(await m.lease(), 0n);
  m.refused(0n, "MEMPOOL_FULL");
  m.refused(0n, "MEMPOOL_FULL");
  m.refused(7n, "MEMPOOL_FULL");
  assert.deepEqual([await m.lease(), await m.lease(), await m.lease()], [0n, 1n, 2n]);
});

test("a stream resumes from the first height that may hold what is left", () => {
  assert.equal(resumeHeight({ height: 0n, txIndex: 0, eventIndex: 0 }), 1n);
  assert.equal(resumeHeight(checkpointBefore(1n)), 1n);
  assert.equal(resumeHeight(checkpointBefore(50n)), 50n);
  assert.equal(resumeHeight({ height: 49n, txIndex: 3, eventIndex: 0 }), 49n);
});
