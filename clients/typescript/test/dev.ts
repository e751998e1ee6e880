// A `quorate dev` node for the tests: the binary named by QUORATE_BIN, on a free loopback port
// (or the one given), in a temporary home; stopped (and its home removed) afterwards.
import { spawn, type ChildProcess } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { createInterface } from "node:readline";

const REPO = resolve(import.meta.dirname, "..", "..", "..", "..");

export function quorateBin(): string {
  return process.env.QUORATE_BIN ?? join(REPO, "target", "debug", "quorate");
}

export async function freePort(): Promise<number> {
  return new Promise((ok, fail) => {
    const s = createServer();
    s.once("error", fail);
    s.listen(0, "127.0.0.1", () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => ok(port));
    });
  });
}

export class DevNode {
  private constructor(
    readonly home: string,
    readonly addr: string,
    private readonly proc: ChildProcess,
    private readonly ownsHome: boolean,
  ) {}

  get url(): string {
    return `http://${this.addr}`;
  }

  keyFile(i: number): string {
    return join(this.home, "keys", `dev-${i}.json`);
  }

  static async start(home?: string, addr = "127.0.0.1:0"): Promise<DevNode> {
    const dir = home ?? mkdtempSync(join(tmpdir(), "quorate-ts-dev-"));
    const proc = spawn(quorateBin(), ["dev", "--home", dir, "--grpc-addr", addr], { stdio: ["ignore", "pipe", "pipe"] });
    const seen: string[] = [];
    const listening = await new Promise<string>((ok, fail) => {
      const timer = setTimeout(() => fail(new Error(`quorate dev did not start within 60 s:\n${seen.join("\n")}`)), 60_000);
      proc.once("error", fail);
      proc.once("exit", (code) => fail(new Error(`quorate dev exited (${code}):\n${seen.join("\n")}`)));
      createInterface({ input: proc.stdout! }).on("line", (line) => {
        seen.push(line);
        if (line.startsWith("grpc listening on ")) {
          clearTimeout(timer);
          ok(line.slice("grpc listening on ".length).trim());
        }
      });
      createInterface({ input: proc.stderr! }).on("line", (line) => seen.push(line));
    });
    return new DevNode(dir, listening, proc, home === undefined);
  }

  async stop(): Promise<void> {
    if (this.proc.exitCode === null) {
      const exited = new Promise((ok) => this.proc.once("exit", ok));
      this.proc.kill("SIGTERM");
      const timer = setTimeout(() => this.proc.kill("SIGKILL"), 20_000);
      await exited;
      clearTimeout(timer);
    }
    if (this.ownsHome) rmSync(this.home, { recursive: true, force: true });
  }
}
