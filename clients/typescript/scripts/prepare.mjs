// The package's build, run by npm when it installs the package from this folder (`npm install
// --install-links <folder>`) or by `npm ci` here. npm does not install a folder's own build tools
// before its prepare script, so the tools come first from the lock file when they are missing;
// then the protobuf code is generated from proto/ and everything is compiled.
import { execFileSync } from "node:child_process";
import { existsSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

const pkg = resolve(dirname(fileURLToPath(import.meta.url)), "..");
const bin = (name) => join(pkg, "node_modules", ".bin", name);
const run = (cmd, args) => execFileSync(cmd, args, { cwd: pkg, stdio: "inherit" });
if (!existsSync(bin("tsc")) || !existsSync(bin("protoc-gen-es"))) {
  run("npm", ["ci", "--ignore-scripts", "--no-audit", "--no-fund", "--loglevel=error"]);
}
run("node", [join(pkg, "scripts", "generate.mjs")]);
run(bin("tsc"), ["-p", join(pkg, "tsconfig.json")]);
