// Generates the protobuf messages and service descriptors (protobuf-es v2, which Connect-ES v2
// uses directly) from the node's .proto files into src/gen: nothing generated is committed.
// The .proto files are found at QUORATE_PROTO_DIR, or at ../../proto/proto from the package.
import { execFileSync } from "node:child_process";
import { existsSync, mkdirSync, readdirSync, rmSync, statSync } from "node:fs";
import { dirname, join, relative, resolve } from "node:path";
import { fileURLToPath } from "node:url";

const pkg = resolve(dirname(fileURLToPath(import.meta.url)), "..");
const protoDir = resolve(process.env.QUORATE_PROTO_DIR ?? join(pkg, "..", "..", "proto", "proto"));
if (!existsSync(join(protoDir, "quorate", "v1", "types.proto"))) {
  console.error(`@quorate/client: no .proto files at ${protoDir} (set QUORATE_PROTO_DIR)`);
  process.exit(1);
}
const protos = [];
const walk = (dir) => {
  for (const name of readdirSync(dir)) {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) walk(path);
    else if (name.endsWith(".proto")) protos.push(relative(protoDir, path));
  }
};
walk(protoDir);
protos.sort();
const out = join(pkg, "src", "gen");
rmSync(out, { recursive: true, force: true });
mkdirSync(out, { recursive: true });
const plugin = join(pkg, "node_modules", ".bin", "protoc-gen-es");
execFileSync(
  "protoc",
  [
    `-I${protoDir}`,
    `--plugin=protoc-gen-es=${plugin}`,
    `--es_out=${out}`,
    "--es_opt=target=ts,import_extension=js",
    ...protos,
  ],
  { stdio: "inherit" },
);
