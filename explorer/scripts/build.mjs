// Builds the explorer into the directory given (explorer/build.rs runs this for Cargo): the
// TypeScript client library first (its code generated from proto/), then the page with Vite.
// Dependencies come from the lock files. One build at a time: two Cargo builds (debug and
// release, or two checkouts' CI) would otherwise install into the same node_modules at once.
import { execFileSync } from "node:child_process";
import { existsSync, mkdirSync, rmSync, statSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

const explorer = resolve(dirname(fileURLToPath(import.meta.url)), "..");
const library = resolve(explorer, "..", "clients", "typescript");
const out = process.argv[2];
if (!out) throw new Error("usage: node scripts/build.mjs OUT_DIR");

const lock = join(explorer, "node_modules.lock");
const started = Date.now();
for (;;) {
  try {
    mkdirSync(lock);
    break;
  } catch (e) {
    if (e.code !== "EEXIST") throw e;
    // A lock left by a build that was killed is taken after ten minutes.
    if (Date.now() - statSync(lock).mtimeMs > 600_000) rmSync(lock, { recursive: true, force: true });
    if (Date.now() - started > 900_000) throw new Error(`another explorer build holds ${lock}`);
    execFileSync("sleep", ["1"]);
  }
}
const release = () => rmSync(lock, { recursive: true, force: true });
process.on("exit", release);

const npm = (cwd, args) => execFileSync("npm", [...args, "--no-audit", "--no-fund", "--loglevel=error"], { cwd, stdio: ["ignore", 2, 2] });
const installed = (dir) => {
  const marker = join(dir, "node_modules", ".package-lock.json");
  return existsSync(marker) && statSync(marker).mtimeMs >= statSync(join(dir, "package-lock.json")).mtimeMs;
};
if (!installed(library)) npm(library, ["ci"]); // its prepare script generates and compiles
else execFileSync("node", [join(library, "scripts", "prepare.mjs")], { cwd: library, stdio: ["ignore", 2, 2] });
if (!installed(explorer)) npm(explorer, ["ci"]);
execFileSync(join(explorer, "node_modules", ".bin", "vite"), ["build", "--logLevel", "warn"], {
  cwd: explorer,
  stdio: ["ignore", 2, 2],
  env: { ...process.env, EXPLORER_OUT: out },
});
