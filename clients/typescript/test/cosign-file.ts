// Co-signs a transaction file (the text `quorate tx sign` and every library read and write)
// with a key file, after printing what is signed: `node cosign-file.js TX_FILE KEY_FILE`.
// The cross-language test uses it (built in Python, co-signed here, submitted from Rust).
import { readFileSync, writeFileSync } from "node:fs";

import { tx } from "../src/index.js";
import { loadKey } from "../src/node-transport.js";

const [file, keyFile] = process.argv.slice(2);
if (!file || !keyFile) {
  console.error("usage: cosign-file TX_FILE KEY_FILE");
  process.exit(2);
}
const signed = tx.fromText(readFileSync(file, "utf8"));
console.log(tx.describe(signed));
const cosigned = tx.cosign(signed, loadKey(keyFile));
writeFileSync(file, tx.toText(cosigned));
console.log(`co-signed; ${1 + cosigned.cosignatures.length} signatures`);
