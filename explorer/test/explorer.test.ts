// The explorer in a real browser (Debian's chromium driven by playwright-core) against a
// 4-validator localnet this test starts: every view loads with real data and verifies it, the
// head advances, a transfer appears with its receipt, a certificate shows VALID then REVOKED,
// and a proxy that alters the blocks one validator serves is caught on screen.
// EXPLORER_SCREENSHOTS=<dir> saves the main views there (docs/explorer/ holds the committed ones).
import assert from "node:assert/strict";
import { execFileSync, spawn, type ChildProcess } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { createServer, request, type IncomingMessage, type Server } from "node:http";
import { createServer as createTcpServer } from "node:net";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { createInterface } from "node:readline";
import { after, before, test } from "node:test";

import { fromBinary, toBinary } from "@bufbuild/protobuf";
import { nodeMessages } from "@quorate/client";
import { chromium, type Browser, type Page } from "playwright-core";

const REPO = resolve(import.meta.dirname, "..", "..", "..");
const BIN = process.env.QUORATE_BIN ?? join(REPO, "target", "debug", "quorate");
const CHROMIUM = process.env.CHROMIUM ?? "/usr/bin/chromium";
const SHOTS = process.env.EXPLORER_SCREENSHOTS;
const LIMIT = 60_000;

let root: string | undefined;
let home: string;
let localnet: ChildProcess;
let urls: string[] = [];
let genesisHash: string;
let browser: Browser;

/** A port with the next `n - 1` free too (a localnet takes consecutive ports). */
async function freeRun(n: number): Promise<number> {
  const free = (port: number) =>
    new Promise<boolean>((ok) => {
      const s = createTcpServer();
      s.once("error", () => ok(false));
      s.listen(port, "127.0.0.1", () => s.close(() => ok(true)));
    });
  for (let attempt = 0; attempt < 200; attempt++) {
    const base = 20_000 + Math.floor(Math.random() * 40_000);
    let all = true;
    for (let i = 0; i < n && all; i++) all = await free(base + i);
    if (all) return base;
  }
  throw new Error("no run of free ports");
}

function cli(...args: string[]): string {
  return execFileSync(BIN, args, { encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] });
}

function cliJson(...args: string[]): Record<string, unknown> {
  return JSON.parse(cli(...args, "--json")) as Record<string, unknown>;
}

const key = (i: number) => join(home, "keys", `account-${i}.json`);

/** Waits until the validator at `url` has committed `height` (a transaction committed through
 * one validator is read from another). */
async function caughtUp(url: string, height: number | bigint): Promise<void> {
  const deadline = Date.now() + LIMIT;
  while (BigInt(cliJson("status", "--node", url).height as number) < BigInt(height)) {
    if (Date.now() > deadline) throw new Error(`${url} did not reach height ${height}`);
    await new Promise((ok) => setTimeout(ok, 100));
  }
}

/** Runs a transaction command through validator `through` (its JSON status, committed), then
 * waits until every validator has its block. */
async function committed(...args: string[]): Promise<Record<string, unknown>> {
  const out = cliJson(...args);
  assert.equal(out.state, "COMMITTED", JSON.stringify(out));
  for (const url of urls) await caughtUp(url, out.height as number);
  return out;
}
const addressOf = (i: number) => cliJson("keys", "show", key(i)).address as string;

before(async () => {
  assert.ok(existsSync(CHROMIUM), `no browser at ${CHROMIUM} (scripts/setup.sh installs Debian's chromium)`);
  root = mkdtempSync(join(tmpdir(), "quorate-explorer-"));
  home = join(root, "net");
  const [grpc, p2p, metrics] = [await freeRun(4), await freeRun(4), await freeRun(4)];
  localnet = spawn(BIN, ["localnet", "--home", home, "--validators", "4", "--accounts", "4", "--grpc-port", String(grpc), "--p2p-port", String(p2p), "--metrics-port", String(metrics)], {
    stdio: ["ignore", "pipe", "pipe"],
  });
  const seen: string[] = [];
  await new Promise<void>((ok, fail) => {
    const timer = setTimeout(() => fail(new Error(`the localnet did not start:\n${seen.join("\n")}`)), LIMIT);
    localnet.once("exit", (code) => fail(new Error(`quorate localnet exited (${code}):\n${seen.join("\n")}`)));
    createInterface({ input: localnet.stderr! }).on("line", (l) => seen.push(l));
    createInterface({ input: localnet.stdout! }).on("line", (line) => {
      seen.push(line);
      if (line.includes("validators running")) {
        clearTimeout(timer);
        ok();
      }
    });
  });
  urls = [0, 1, 2, 3].map((i) => `http://127.0.0.1:${grpc + i}`);
  genesisHash = cliJson("status", "--node", urls[0]).genesis_hash as string;
  browser = await chromium.launch({ executablePath: CHROMIUM, args: ["--no-sandbox", "--disable-gpu"] });
});

after(async () => {
  await browser?.close();
  if (localnet && localnet.exitCode === null) {
    const exited = new Promise((ok) => localnet.once("exit", ok));
    localnet.kill("SIGTERM");
    const timer = setTimeout(() => localnet.kill("SIGKILL"), 30_000);
    await exited;
    clearTimeout(timer);
  }
  if (root) rmSync(root, { recursive: true, force: true });
});

/** A page of the explorer served by `base`, with the genesis pinned. */
async function open(base: string, route = "", width = 1280): Promise<Page> {
  const page = await browser.newPage({ viewport: { width, height: 900 } });
  await page.goto(`${base}/explorer/?genesis=${genesisHash}#${route}`);
  return page;
}

/** Waits for the view `name` to be shown; returns how long it took the page (ms). */
async function shown(page: Page, name: string): Promise<number> {
  const view = page.locator(`[data-view="${name}"]`);
  await view.waitFor({ timeout: LIMIT });
  return Number(await view.getAttribute("data-ms"));
}

async function shot(page: Page, name: string): Promise<void> {
  if (!SHOTS) return;
  mkdirSync(SHOTS, { recursive: true });
  await page.screenshot({ path: join(SHOTS, `${name}.png`), fullPage: true });
}

const timings: Record<string, number> = {};

test("the chain view: head, validator set proven from genesis, blocks verified, live", async () => {
  const page = await open(urls[0]);
  timings.chain = await shown(page, "chain");
  assert.equal(await page.locator("[data-trust]").getAttribute("data-trust"), "pinned");
  assert.equal(await page.locator("#validators tbody tr").count(), 4);
  await page.locator("#set-check [data-verified=yes]").waitFor({ timeout: LIMIT });
  await page.locator("#blocks tr").first().waitFor();
  assert.equal(await page.locator("#blocks [data-verified=no]").count(), 0, "no block fails its check");
  assert.ok((await page.locator("#blocks [data-verified=yes]").count()) > 0);
  const first = BigInt((await page.locator("#head-height").textContent()) ?? "0");
  // Live: three more blocks arrive from the node's stream, each verified as it comes.
  await page.waitForFunction((h) => BigInt(document.getElementById("head-height")?.textContent ?? "0") >= BigInt(h) + 3n, String(first), { timeout: LIMIT });
  assert.equal(await page.locator("#blocks [data-verified=no]").count(), 0);
  assert.match((await page.locator("#last-signers").textContent()) ?? "", /certified by: validator-\d/);
  await shot(page, "chain");
  // Readable on a phone.
  await page.setViewportSize({ width: 390, height: 844 });
  await shot(page, "chain-phone");
  await page.close();
});

test("a transfer appears with its receipt, verified in its block; the account shows it", async () => {
  const to = addressOf(1);
  const sent = await committed("tx", "transfer", "--from", key(0), "--to", to, "--amount", "7", "--memo", "explorer test", "--wait", "--node", urls[1]);
  const hash = sent.tx_hash as string;
  const page = await open(urls[2], `/tx/${hash}`);
  timings.transaction = await shown(page, "tx");
  assert.equal(await page.locator("#tx-state").textContent(), "COMMITTED");
  assert.equal(await page.locator("#receipt-status").textContent(), "SUCCESS");
  assert.equal(await page.locator("[data-verified]").first().getAttribute("data-verified"), "yes");
  assert.equal(await page.locator("#signatures tbody tr").count(), 1);
  // The receipt is reported by one node. What the node offers is not counted: with no URL
  // given, no agreement.
  const check = page.getByRole("button", { name: "cross-check with f+1 validators" });
  await check.click();
  await page.locator('[data-crosscheck="disagree"]').waitFor({ timeout: LIMIT });
  assert.match((await page.locator(".crosscheck").textContent()) ?? "", /^0 other validator\(s\) at the URLs you gave/);
  // The user gives the three other validators' URLs (the page keeps them): they agree.
  for (const other of [urls[0], urls[1], urls[3]]) {
    await page.fill('[aria-label="another validator\'s URL"]', other);
    await page.press('[aria-label="another validator\'s URL"]', "Enter");
  }
  await check.click();
  await page.locator('[data-crosscheck="agree"]').waitFor({ timeout: LIMIT });
  assert.match((await page.locator(".crosscheck").textContent()) ?? "", /^3 other validator\(s\)/);
  await shot(page, "transaction");

  await page.goto(`${urls[2]}/explorer/#/block/${sent.height as number}`);
  timings.block = await shown(page, "block");
  assert.equal(await page.locator("[data-verified]").first().getAttribute("data-verified"), "yes");
  assert.ok((await page.locator("#signers li").count()) >= 3, "a quorum of 4 signed");
  assert.match((await page.locator("#txs").textContent()) ?? "", /transfer 7/);
  await shot(page, "block");

  await page.goto(`${urls[2]}/explorer/#/account/${to}`);
  timings.account = await shown(page, "account");
  await page.locator(`#recent a[href="#/tx/${hash}"]`).waitFor({ timeout: LIMIT });
  // Reported by one node; the three others, at the URLs given on the transaction's page, agree.
  await page.getByRole("button", { name: "cross-check with f+1 validators" }).click();
  await page.locator('[data-crosscheck="agree"]').waitFor({ timeout: LIMIT });
  await shot(page, "account");
  // Live: another transfer to the account appears with no reload.
  const again = await committed("tx", "transfer", "--from", key(2), "--to", to, "--amount", "3", "--wait", "--node", urls[3]);
  await page.locator(`#recent a[href="#/tx/${again.tx_hash as string}"]`).waitFor({ timeout: LIMIT });

  // Search by the hash goes to the transaction.
  await page.fill("#search input", hash);
  await page.press("#search input", "Enter");
  await shown(page, "tx");
  await page.close();
});

test("a certificate shows VALID, then REVOKED once revoked; the other contracts' pages", async () => {
  const subject = addressOf(3);
  await committed("certs", "create-spec", "diploma", "--schema", "degree/v1", "--validity", "365d", "--node", urls[0], "--from", key(0));
  await committed("certs", "issue", "1", "--subject", `${subject}:BSc 2026`, "--node", urls[1], "--from", key(0));
  const page = await open(urls[3], "/certificate/1");
  timings.certificate = await shown(page, "certificate");
  assert.equal(await page.locator("#validity").textContent(), "VALID");
  await shot(page, "certificate");
  await committed("certs", "revoke", "1", "--reason", "issued in error", "--node", urls[2], "--from", key(0));
  // Live: the page shows it again on the contract's revocation event, with no reload.
  await page.waitForFunction(() => document.getElementById("validity")?.textContent === "REVOKED", undefined, { timeout: LIMIT });
  assert.match((await page.locator('[data-field="revocationReason"]').first().textContent()) ?? "", /issued in error/);
  // The other system contracts' pages load with what the localnet holds.
  await committed("remittance", "deposit", "payroll", "5000", "--node", urls[0], "--from", key(1));
  await committed("device", "register", "door-7", "--node", urls[1], "--from", key(2));
  await page.goto(`${urls[3]}/explorer/#/remittance/${addressOf(1)}`);
  timings.remittance = await shown(page, "remittance");
  assert.match((await page.locator("main").textContent()) ?? "", /payroll/);
  await page.goto(`${urls[3]}/explorer/#/device/door-7`);
  timings.device = await shown(page, "device");
  assert.match((await page.locator("main").textContent()) ?? "", /door-7/);
  await committed("escrow", "issue", key(3), "7000", "--maturity", "90d", "--terms", "invoice 2026-117", "--node", urls[2], "--from", key(0));
  await committed("escrow", "transfer", "1", key(2), "--node", urls[3], "--from", key(3));
  await page.goto(`${urls[3]}/explorer/#/credit/1`);
  timings.credit = await shown(page, "credit");
  assert.match((await page.locator("main").textContent()) ?? "", /invoice 2026-117/);
  assert.ok((await page.locator('[data-field="history"] li').count()) >= 2, "issued, then moved to escrow");
  await shot(page, "credit");
  await page.goto(`${urls[3]}/explorer/#/contracts`);
  await shown(page, "contracts");
  await shot(page, "contracts");
  await page.close();
});

/** A proxy in front of `target` that flips the last byte of every block it passes on (its
 * certificate's last signature), in `GetBlock` answers and in the live `StreamBlocks`, frame by
 * frame as they come; counts what it altered. */
function alteringProxy(target: string): Promise<{ server: Server; url: string; altered: () => number }> {
  let altered = 0;
  const server = createServer((req, res) => {
    const upstream = request(`${target}${req.url}`, { method: req.method, headers: req.headers }, (up: IncomingMessage) => {
      const headers = { ...up.headers };
      delete headers["content-length"];
      res.writeHead(up.statusCode ?? 502, headers);
      if (!/\/(GetBlock|StreamBlocks)$/.test(req.url ?? "")) {
        up.pipe(res);
        return;
      }
      // gRPC-web frames: a flag byte (0: a message, 0x80: trailers), a 4-byte length, the bytes.
      let pending = Buffer.alloc(0);
      up.on("data", (chunk: Buffer) => {
        pending = Buffer.concat([pending, chunk]);
        while (pending.length >= 5 && pending.length >= 5 + pending.readUInt32BE(1)) {
          const frame = Buffer.from(pending.subarray(0, 5 + pending.readUInt32BE(1)));
          pending = pending.subarray(frame.length);
          if (frame[0] === 0 && frame.length > 5) {
            frame[frame.length - 1] ^= 0x01;
            altered += 1;
          }
          res.write(frame);
        }
      });
      up.on("end", () => res.end(pending));
    });
    upstream.on("error", () => res.destroy());
    res.on("close", () => upstream.destroy());
    req.pipe(upstream);
  });
  return new Promise((ok) => server.listen(0, "127.0.0.1", () => ok({ server, url: `http://127.0.0.1:${(server.address() as { port: number }).port}`, altered: () => altered })));
}

test("a node whose blocks are altered on the way is caught: every block shown fails its check", async () => {
  const proxy = await alteringProxy(urls[0]);
  try {
    const page = await open(proxy.url);
    await shown(page, "chain");
    await page.locator("#blocks tr").first().waitFor();
    assert.ok(proxy.altered() > 0, "the proxy altered blocks");
    // Live blocks, altered in the stream, fail too: a newer row comes, and none is verified.
    const alteredBefore = proxy.altered();
    const newest = Number(await page.locator("#blocks tr").first().getAttribute("data-height"));
    await page.waitForFunction((h) => Number(document.querySelector("#blocks tr")?.getAttribute("data-height")) > h, newest, { timeout: LIMIT });
    assert.ok(proxy.altered() > alteredBefore, "streamed blocks altered too");
    assert.equal(await page.locator("#blocks [data-verified=yes]").count(), 0, "no streamed block passes");
    const failed = page.locator("#blocks [data-verified=no]");
    assert.ok((await failed.count()) > 0);
    assert.match((await failed.first().textContent()) ?? "", /verification failed: bad_signature: signature of validator \d does not verify/);
    // With no verified block, the set cannot be tied to the head either.
    assert.equal(await page.locator("#set-check [data-verified]").getAttribute("data-verified"), "no");
    await shot(page, "forged");
    // The same block through the honest node verifies.
    const height = await page.locator("#blocks tr").first().getAttribute("data-height");
    const honest = await open(urls[1], `/block/${height}`);
    await shown(honest, "block");
    assert.equal(await honest.locator("[data-verified]").first().getAttribute("data-verified"), "yes");
    await honest.close();
    await page.close();
  } finally {
    proxy.server.closeAllConnections();
    proxy.server.close();
  }
});

/** A proxy in front of `target` that answers every request for a block by height with block 1
 * (valid, certified, but not the one asked); counts the requests it changed. */
function staleProxy(target: string): Promise<{ server: Server; url: string; changed: () => number }> {
  let changed = 0;
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => {
      let body = Buffer.concat(chunks);
      if (req.url?.endsWith("/GetBlock") && body.length >= 5 && body[0] === 0) {
        const asked = fromBinary(nodeMessages.GetBlockRequestSchema, body.subarray(5, 5 + body.readUInt32BE(1)));
        if (asked.selector.case === "height" && asked.selector.value > 1n) {
          asked.selector.value = 1n;
          const msg = toBinary(nodeMessages.GetBlockRequestSchema, asked);
          const frame = Buffer.alloc(5);
          frame.writeUInt32BE(msg.length, 1);
          body = Buffer.concat([frame, Buffer.from(msg)]);
          changed += 1;
        }
      }
      const headers = { ...req.headers, "content-length": String(body.length) };
      const upstream = request(`${target}${req.url}`, { method: req.method, headers }, (up: IncomingMessage) => {
        res.writeHead(up.statusCode ?? 502, up.headers);
        up.pipe(res);
      });
      upstream.on("error", () => res.destroy());
      res.on("close", () => upstream.destroy());
      upstream.end(body);
    });
  });
  return new Promise((ok) => server.listen(0, "127.0.0.1", () => ok({ server, url: `http://127.0.0.1:${(server.address() as { port: number }).port}`, changed: () => changed })));
}

test("a node answering with a valid block other than the one asked is caught", async () => {
  const proxy = await staleProxy(urls[0]);
  try {
    const page = await open(proxy.url);
    await shown(page, "chain");
    await page.locator("#blocks tr").first().waitFor();
    assert.ok(proxy.changed() > 0, "the proxy answered with block 1");
    // Block 1 itself verifies; every other height asked shows what the node did.
    const wrong = page.locator("#blocks [data-verified=no]");
    assert.ok((await wrong.count()) > 0);
    assert.match((await wrong.first().textContent()) ?? "", /asked for block \d+, the node sent block 1/);
    await page.goto(`${proxy.url}/explorer/#/block/3`);
    await shown(page, "block");
    assert.match((await page.locator("[data-verified]").first().textContent()) ?? "", /asked for block 3, the node sent block 1/);
    await page.close();
  } finally {
    proxy.server.closeAllConnections();
    proxy.server.close();
  }
});

test("a genesis other than the one pinned is refused: nothing verifies", async () => {
  const page = await browser.newPage();
  await page.goto(`${urls[0]}/explorer/?genesis=${"ab".repeat(32)}#/`);
  await shown(page, "chain");
  assert.equal(await page.locator("[data-trust]").getAttribute("data-trust"), "mismatch");
  await page.locator("#blocks tr").first().waitFor();
  assert.equal(await page.locator("#blocks [data-verified=yes]").count(), 0);
  await page.close();
  // What each view took the page on this localnet (recorded, not asserted: docs/PERFORMANCE.md).
  console.log(`# view times (ms): ${JSON.stringify(timings)}`);
});
