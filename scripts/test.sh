#!/usr/bin/env bash
# The test command: set up the machine, check formatting, run every test of the workspace, and
# close with the totals.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
cargo fmt --all -- --check
cargo fmt --all --manifest-path contracts/Cargo.toml -- --check
# The system contracts embedded in genesis must be what their source builds to.
bash scripts/build-system-contracts.sh --check
# No import circle of more than two files among the node's modules (issue 26).
python3 scripts/import-cycles.py node/src --max 2
# Every defect put back on purpose (RELIABILITY.md) must still apply to this tree.
for patch in scripts/defects/*.patch; do
  git apply --check "$patch" || { echo "$patch no longer applies: regenerate it" >&2; exit 1; }
done
log=$(mktemp)
trap 'rm -f "$log" "$log.py" "$log.ts" "$log.pip" "$log.explorer"' EXIT
# The Python library, installed into a virtual environment of its own (its stubs are generated
# from proto/ at install): the Rust tests run its examples (clients/python/*.py) with it.
target="${CARGO_TARGET_DIR:-$PWD/target}"
venv="$target/py-venv"
[ -x "$venv/bin/python" ] || python3 -m venv "$venv"
"$venv/bin/pip" install -q --disable-pip-version-check ./clients/python pytest==8.4.2 >"$log.pip" 2>&1 ||
  { cat "$log.pip" >&2; echo "the Python library did not install" >&2; exit 1; }
rm -rf clients/python/build clients/python/src/*.egg-info
export QUORATE_PYTHON="$venv/bin/python"
cargo test --workspace --all-targets --locked 2>&1 | tee "$log"
# The release without protocol version 2, kept for the rolling-upgrade test below.
cp "$target/debug/quorate" "$target/quorate-protocol-v1"
# The protocol tests again in a release that supports version 2 (they check its rules then).
cargo test -p quorate-node --features protocol-test-v2 --lib --locked protocol 2>&1 | tee -a "$log"
# Byzantine validators against real processes, and the rolling upgrade to protocol version 2:
# the node built with its test-only features (one build for both).
QUORATE_V1_BIN="$target/quorate-protocol-v1" \
  cargo test -p quorate-cli --features byzantine,protocol-test-v2 \
  --test byzantine --test protocol_upgrade --locked 2>&1 | tee -a "$log"
# The contract SDK and template, on the host (their unit tests use the SDK's mock host).
cargo test --manifest-path contracts/Cargo.toml --workspace --locked 2>&1 | tee -a "$log"
# Version 2 of the remittance contract (the in-place upgrade's code).
cargo test --manifest-path contracts/Cargo.toml -p remittance --features v2 --locked 2>&1 | tee -a "$log"
# The TypeScript library (clients/typescript): dependencies from its lock file; `npm ci` runs
# its prepare script, which generates the protobuf code from proto/ and compiles it; tested
# with node:test against `quorate dev`.
(cd clients/typescript && npm ci --no-audit --no-fund --loglevel=error)
(cd clients/typescript && QUORATE_BIN="$target/debug/quorate" npm test --silent) 2>&1 | tee "$log.ts"
awk '/^# pass / { p = $3 } /^# fail / { f = $3 }
  END { printf "test result: typescript. %d passed; %d failed\n", p, f }' "$log.ts" | tee -a "$log"
# The explorer (explorer/, embedded in the binary by its build script) in Debian's chromium,
# driven by playwright-core, against a 4-validator localnet the test starts.
(cd explorer && npm ci --no-audit --no-fund --loglevel=error && npx tsc -p tsconfig.test.json)
(cd explorer && QUORATE_BIN="$target/debug/quorate" npm test --silent) 2>&1 | tee "$log.explorer"
awk '/^# pass / { p = $3 } /^# fail / { f = $3 }
  END { printf "test result: explorer. %d passed; %d failed\n", p, f }' "$log.explorer" | tee -a "$log"
# The Python library (clients/python), tested with pytest against `quorate dev`.
QUORATE_REQUIRE_TS=1 QUORATE_BIN="$target/debug/quorate" "$venv/bin/python" -m pytest -q -p no:cacheprovider clients/python/tests 2>&1 | tee "$log.py"
# Its totals, in cargo's words, for the sum below.
awk '/ (passed|failed)/ { p = f = 0
  for (i = 1; i < NF; i++) { if ($(i + 1) ~ /^passed/) p = $i; if ($(i + 1) ~ /^failed/) f = $i }
  printf "test result: python. %d passed; %d failed\n", p, f }' "$log.py" | tail -1 | tee -a "$log"
# tee hides cargo's exit status from `set -e`: pipefail keeps it, so a failure stops here.
passed=$(grep -Eo '^test result: [a-zA-Z]+\. [0-9]+ passed' "$log" | awk '{s += $4} END {print s + 0}')
failed=$(grep -Eo '; [0-9]+ failed' "$log" | awk '{s += $2} END {print s + 0}')
echo "$passed passed, $failed failed"
