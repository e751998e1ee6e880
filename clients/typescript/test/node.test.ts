// The library against a real `quorate dev` node it starts: submit and wait (safe to repeat),
// refusals with their codes, 20 concurrent tasks of one account through the nonce manager,
// an event stream across a node restart, blocks verified against the genesis file.
import assert from "node:assert/strict";
import { readFileSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, test } from "node:test";

import {
  ChainVerifier, checkpointOf, connectWeb, NonceManager, OutcomeUnknown, Refused, systemContract, toHex, tx, Unreachable,
  verifyBlock, VerifyError, verifyInclusion,
} from "../src/index.js";
import { connectNode, loadKey } from "../src/node-transport.js";
import { DevNode, freePort } from "./dev.js";

let dev: DevNode;
before(async () => {
  dev = await DevNode.start();
});
after(async () => {
  await dev.stop();
});

test("a transfer commits once however often it is submitted, and a refusal carries its code", async () => {
  const node = connectNode(dev.url);
  const [a, b] = [loadKey(dev.keyFile(0)), loadKey(dev.keyFile(1))];
  const nonce = (await node.account(a.address)).nextNonce;
  const signed = tx.sign(tx.transfer({ chainId: "quorate-dev", signer: a.address, nonce, fuelLimit: 1000 }, b.address, 5), a);
  const first = await node.submitAndWait(signed);
  assert.ok(first.succeeded);
  const again = await node.submitAndWait(signed);
  assert.deepEqual([again.height, again.index], [first.height, first.index]);
  assert.equal((await node.account(a.address)).nextNonce, nonce + 1n, "one inclusion");
  const wrong = tx.sign(tx.transfer({ chainId: "another-chain", signer: a.address, nonce: nonce + 1n, fuelLimit: 1000 }, b.address, 5), a);
  await assert.rejects(node.submit(wrong), (e: unknown) => e instanceof Refused && e.code === "WRONG_CHAIN");
});

test("twenty tasks of one account send a thousand transfers without gap or reuse", async () => {
  const node = connectNode(dev.url);
  const [a, b] = [loadKey(dev.keyFile(2)), loadKey(dev.keyFile(3))];
  const nonces = new NonceManager(node, a.address);
  const start = (await node.account(a.address)).nextNonce;
  const task = async () => {
    const hashes: Uint8Array[] = [];
    for (let i = 0; i < 50; i++) {
      const nonce = await nonces.lease();
      hashes.push(await node.submit(tx.sign(tx.transfer({ chainId: "quorate-dev", signer: a.address, nonce, fuelLimit: 1000 }, b.address, 1), a)));
    }
    return hashes;
  };
  const hashes = (await Promise.all(Array.from({ length: 20 }, task))).flat();
  assert.equal(hashes.length, 1000);
  const places = new Set<string>();
  for (const h of hashes) {
    const o = await node.wait(h);
    assert.ok(o.succeeded);
    places.add(`${o.height}/${o.index}`);
  }
  assert.equal(places.size, 1000, "each in its own place");
  assert.equal((await node.account(a.address)).account?.nonce, start + 1000n);
});

test("blocks verify against the genesis file; a forged certificate is refused", async () => {
  const node = connectNode(dev.url);
  const key = loadKey(dev.keyFile(1));
  const nonce = (await node.account(key.address)).nextNonce;
  const done = await node.submitAndWait(tx.sign(tx.transfer({ chainId: "quorate-dev", signer: key.address, nonce, fuelLimit: 1000 }, loadKey(dev.keyFile(0)).address, 2), key));
  const verifier = ChainVerifier.fromGenesisJson(readFileSync(join(dev.home, "genesis.json"), "utf8"));
  let found;
  for await (const block of node.blocks(done.height > 2n ? done.height - 2n : 1n, true)) {
    const checked = await verifier.verify(node, block);
    assert.ok(checked.transactionsChecked);
    if (block.header!.height === done.height) {
      found = block;
      break;
    }
  }
  assert.ok(found);
  assert.equal(verifyInclusion(found, done.txHash), done.index);
  // Block 1 must name the genesis hash given as its parent.
  const genesisHash = (await node.status()).genesisHash;
  const first = await node.block(1n);
  const genesisText = readFileSync(join(dev.home, "genesis.json"), "utf8");
  assert.equal((await ChainVerifier.fromGenesisJson(genesisText, genesisHash).verify(node, first)).header.height, 1n);
  await assert.rejects(ChainVerifier.fromGenesisJson(genesisText, new Uint8Array(32).fill(1)).verify(node, first), (e: unknown) => e instanceof VerifyError && e.kind === "parent");
  const forged = structuredClone(found);
  forged.certificate!.signatures[0].signature[0] ^= 1;
  assert.throws(() => verifyBlock("quorate-dev", verifier.genesisKeys, forged), (e: unknown) => e instanceof VerifyError && e.kind === "bad_signature");
});

test("block and event streams resume across a node restart from their checkpoints", async () => {
  const home = mkdtempSync(join(tmpdir(), "quorate-ts-events-"));
  const addr = `127.0.0.1:${await freePort()}`;
  let own = await DevNode.start(home, addr);
  try {
    const node = connectNode(own.url);
    const key = loadKey(own.keyFile(2));
    const remittance = systemContract("remittance");
    const deposit = async (nonce: bigint, amount: bigint) => {
      const body = tx.withCall({ chainId: "quorate-dev", signer: key.address, nonce, fuelLimit: 10_000_000 }, remittance.call("deposit", { entry: "ts" }, amount));
      return node.submitAndWait(tx.sign(body, key));
    };
    const events = node.events({ contract: remittance.address, kind: "deposited" });
    const blocks = node.blocks(1n);
    const heights: bigint[] = [];
    const sent = [];
    for (let n = 0n; n < 3n; n++) sent.push(await deposit(n, 10n + n));
    const seen = [];
    for (let i = 0; i < 3; i++) seen.push((await events.next()).value!);
    const saved = checkpointOf(seen[2]);
    while ((heights.at(-1) ?? 0n) < sent[2].height) heights.push((await blocks.next()).value!.header!.height);
    await own.stop();
    own = await DevNode.start(home, addr);
    for (let n = 3n; n < 6n; n++) sent.push(await deposit(n, 10n + n));
    for (let i = 0; i < 3; i++) seen.push((await events.next()).value!);
    while ((heights.at(-1) ?? 0n) < sent[5].height) heights.push((await blocks.next()).value!.header!.height);
    assert.deepEqual(heights, Array.from({ length: Number(sent[5].height) }, (_, i) => BigInt(i + 1)), "every block once, in order, across the restart");
    await blocks.return(undefined);
    assert.deepEqual(seen.map((e) => toHex(e.txHash)), sent.map((o) => toHex(o.txHash)), "each once, in order");
    assert.deepEqual(sent.map((o) => remittance.result("deposit", o.receipt.returnData).amount), [10n, 11n, 12n, 13n, 14n, 15n]);
    const later = node.events({ contract: remittance.address }, saved);
    const rest = [];
    for (let i = 0; i < 3; i++) rest.push(toHex((await later.next()).value!.txHash));
    assert.deepEqual(rest, sent.slice(3).map((o) => toHex(o.txHash)));
    const reserves = await remittance.query(node, "reserves", { owner: key.address });
    assert.equal(reserves.total, 75n);
    await events.return(undefined);
    await later.return(undefined);
  } finally {
    await own.stop();
    rmSync(home, { recursive: true, force: true });
  }
});

test("a node that is not there is named with a fix", async () => {
  const node = connectNode(`http://127.0.0.1:${await freePort()}`);
  await assert.rejects(node.status(), (e: unknown) => e instanceof Unreachable && /nothing listens|running/.test(e.message));
});

test("a browser's gRPC-web reaches the node directly, across origins, streams included", async () => {
  // What a page does: gRPC-web over fetch (HTTP/1.1), after a CORS preflight.
  const preflight = await fetch(`${dev.url}/quorate.v1.NodeService/GetStatus`, {
    method: "OPTIONS",
    headers: { origin: "http://explorer.example", "access-control-request-method": "POST", "access-control-request-headers": "content-type,x-grpc-web" },
  });
  assert.equal(preflight.headers.get("access-control-allow-origin"), "*");
  const web = connectWeb(dev.url);
  const status = await web.status();
  assert.equal(status.chainId, "quorate-dev");
  const blocks = web.blocks(1n);
  const heights = [];
  for (let i = 0; i < 3; i++) heights.push((await blocks.next()).value!.header!.height);
  await blocks.return(undefined);
  assert.deepEqual(heights, [1n, 2n, 3n]);
});

test("the other system contracts through their typed methods, and an unanswered wait names its hash", async () => {
  const node = connectNode(dev.url);
  const owner = loadKey(dev.keyFile(1));
  const devices = systemContract("device-permissions");
  const id = `gate-${Date.now()}`;
  const nonce = (await node.account(owner.address)).nextNonce;
  const done = await node.submitAndWait(tx.sign(tx.withCall({ chainId: "quorate-dev", signer: owner.address, nonce, fuelLimit: 10_000_000 }, devices.call("register", { device: id })), owner));
  assert.ok(done.succeeded);
  assert.equal(devices.result("register", done.receipt.returnData).id, id);
  assert.deepEqual((await devices.query(node, "device", { device: id })).owner, owner.address);
  const authorities = await systemContract("certificates").query(node, "authorities");
  assert.ok(authorities.admin);
  const target = await systemContract("credit-escrow").query(node, "target_address", { debtorKey: owner.publicKey, creditorKey: loadKey(dev.keyFile(0)).publicKey });
  assert.equal((target.address as Uint8Array).length, 20);
  // A transaction nobody submitted: the wait runs out and says so, naming the hash.
  const hash = new Uint8Array(32).fill(9);
  await assert.rejects(node.wait(hash, 300), (e: unknown) => e instanceof OutcomeUnknown && toHex(e.txHash) === toHex(hash));
});
