// TLS to a node: mutual TLS works with the CA and a client certificate, and each wrong setting
// fails with a message that names its cause and the fix (never a bare transport error).
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, test } from "node:test";

import { BadInput, Unreachable } from "../src/index.js";
import { connectNode } from "../src/node-transport.js";
import { DevNode, quorateBin } from "./dev.js";

let dev: DevNode;
let root: string;
before(async () => {
  root = mkdtempSync(join(tmpdir(), "quorate-ts-tls-"));
  const home = join(root, "home");
  mkdirSync(home);
  const run = (...args: string[]) => execFileSync(quorateBin(), args, { stdio: "pipe" });
  run("tls", "gen", "--out", join(root, "tls"), "--hosts", "127.0.0.1,localhost", "--home", home, "--mutual");
  run("tls", "gen", "--out", join(root, "other"));
  dev = await DevNode.start(home);
});
after(async () => {
  await dev.stop();
  rmSync(root, { recursive: true, force: true });
});

const file = (dir: string, name: string) => join(root, dir, name);

test("mutual TLS with the CA and a client certificate", async () => {
  const node = connectNode(`https://${dev.addr}`, {
    ca: file("tls", "ca.pem"),
    cert: file("tls", "client.pem"),
    key: file("tls", "client.key"),
  });
  assert.equal((await node.status()).chainId, "quorate-dev");
});

test("each wrong TLS setting names its fix", async () => {
  const https = `https://${dev.addr}`;
  // Refused before any connection.
  assert.throws(() => connectNode(https), (e) => e instanceof BadInput && /needs the CA/.test(e.message));
  assert.throws(() => connectNode(dev.url, { ca: file("tls", "ca.pem") }), (e) => e instanceof BadInput && /use https:\/\//.test(e.message));
  assert.throws(() => connectNode(https, { ca: file("tls", "missing.pem") }), (e) => e instanceof BadInput && /TLS files/.test(e.message));

  const failure = async (url: string, tls?: { ca: string }): Promise<Unreachable> => {
    try {
      await connectNode(url, tls, 10_000).status();
    } catch (e) {
      assert.ok(e instanceof Unreachable, `${e}`);
      return e;
    }
    assert.fail("the call succeeded");
  };
  // The CA that did not sign the node's certificate.
  let e = await failure(https, { ca: file("other", "ca.pem") });
  assert.match(e.fix, /the CA is the one that signed the node's certificate/, e.message);
  // The right CA, no client certificate, against mutual TLS.
  e = await failure(https, { ca: file("tls", "ca.pem") });
  assert.match(e.fix, /may require a client certificate/, e.message);
  // Plaintext to a TLS node.
  e = await failure(dev.url);
  assert.match(e.fix, /use an https:\/\/ URL/, e.message);
});
