// Builds the explorer into the directory given (explorer/build.rs runs this for Cargo): the
// TypeScript client library first (its code generated from proto/), then the page with Vite.
// Dependencies come from the lock files. One build at a time: two Cargo builds (debug and
// release, or two checkouts' CI) would otherwise install into the same node_modules at once.
import { execFileSync } from "node:child_process";
import { existsSync, mkdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

const explorer = resolve(dirname(fileURLToPath(import.meta.url)), "..");
const library = resolve(explorer, "..", "clients", "typescript");
const out = process.argv[2];
if (!out) throw new Error("usage: node scripts/build.mjs OUT_DIR");

// The lock is a directory holding the owner's pid: a lock whose owner is gone is taken over.
const lock = join(explorer, "node_modules.lock");
const owner = join(lock, "pid");
const alive = (pid) => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};
const started = Date.now();
for (;;) {
  try {
    mkdirSync(lock);
    writeFileSync(owner, String(process.pid));
    break;
  } catch (e) {
    if (e.code !== "EEXIST") throw e;
    let pid = 0;
    try {
      pid = Number(readFileSync(owner, "utf8"));
    } catch {
      // Being written, or left empty by a build killed at that instant: wait a little.
    }
    const stale = pid > 0 ? !alive(pid) : Date.now() - statSync(lock).mtimeMs > 60_000;
    if (stale) rmSync(lock, { recursive: true, force: true });
    else if (Date.now() - started > 900_000) throw new Error(`another explorer build (pid ${pid}) holds ${lock}`);
    else execFileSync("sleep", ["1"]);
  }
}
const release = () => {
  try {
    if (Number(readFileSync(owner, "utf8")) === process.pid) rmSync(lock, { recursive: true, force: true });
  } catch {
    // Not ours, or gone already.
  }
};
process.on("exit", release);
for (const signal of ["SIGINT", "SIGTERM", "SIGHUP"]) {
  process.on(signal, () => {
    release();
    process.exit(1);
  });
}

const npm = (cwd, args) => execFileSync("npm", [...args, "--no-audit", "--no-fund", "--loglevel=error"], { cwd, stdio: ["ignore", 2, 2] });
const installed = (dir) => {
  const marker = join(dir, "node_modules", ".package-lock.json");
  return existsSync(marker) && statSync(marker).mtimeMs >= statSync(join(dir, "package-lock.json")).mtimeMs;
};
if (!installed(library)) npm(library, ["ci"]); // its prepare script generates and compiles
else execFileSync("node", [join(library, "scripts", "prepare.mjs")], { cwd: library, stdio: ["ignore", 2, 2] });
if (!installed(explorer)) npm(explorer, ["ci"]);
// Vite does not type-check: tsc does, first.
execFileSync(join(explorer, "node_modules", ".bin", "tsc"), ["-p", join(explorer, "tsconfig.json")], { cwd: explorer, stdio: ["ignore", 2, 2] });
execFileSync(join(explorer, "node_modules", ".bin", "vite"), ["build", "--logLevel", "warn"], {
  cwd: explorer,
  stdio: ["ignore", 2, 2],
  env: { ...process.env, EXPLORER_OUT: out },
});
