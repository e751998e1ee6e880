#!/usr/bin/env bash
# One transaction per call from each client library against one validator, in one run: the Rust
# load generator (`quorate bench`, --batch 1), the Python library, the TypeScript library and
# the Rust library (client/examples/single_calls.rs),
# each with CLIENTS concurrent senders (one funded account each) sending TXS transfers, one
# Submit per transaction, timed until the last one commits. Then the Rust figure again, to see
# how much the machine drifted. Release build; results in docs/PERFORMANCE.md.
#
#   scripts/bench-clients.sh [--txs N] [--clients C]
set -euo pipefail
cd "$(dirname "$0")/.."
txs=20000 clients=64
while [ $# -gt 0 ]; do
  case "$1" in
    --txs) txs="$2"; shift 2 ;;
    --clients) clients="$2"; shift 2 ;;
    *) echo "unknown option $1" >&2; exit 2 ;;
  esac
done
target="${CARGO_TARGET_DIR:-$PWD/target}"
cargo build --release -q -p quorate-cli
cargo build --release -q -p quorate-client --example single_calls
bin="$target/release/quorate"
venv="$target/py-venv"
[ -x "$venv/bin/python" ] || python3 -m venv "$venv"
"$venv/bin/pip" install -q --disable-pip-version-check ./clients/python 2>&1 | grep -v "as the 'root' user" || true
rm -rf clients/python/build clients/python/src/*.egg-info
(cd clients/typescript && npm ci --no-audit --no-fund --loglevel=error >/dev/null)

work=$(mktemp -d)
node_pid=""
cleanup() { [ -n "$node_pid" ] && kill "$node_pid" 2>/dev/null && wait "$node_pid" 2>/dev/null; rm -rf "$work"; }
trap cleanup EXIT
port=$((20000 + RANDOM % 20000))
"$bin" genesis new --out "$work/chain" --accounts $((5 * clients + 1)) --grpc-port "$port" \
  --p2p-port $((port + 1)) >/dev/null
# Each run has its own group of senders, renamed account-1.. in a folder of its own (the Rust
# load generator also takes account-0, the chain's admin).
groups=(rust python typescript rust-library rust-again)
for g in "${!groups[@]}"; do
  mkdir -p "$work/${groups[$g]}"
  ln -s "$work/chain/keys/account-0.json" "$work/${groups[$g]}/account-0.json"
  for i in $(seq 1 "$clients"); do
    ln -s "$work/chain/keys/account-$((g * clients + i)).json" "$work/${groups[$g]}/account-$i.json"
  done
done
"$bin" node run --home "$work/chain/node-0" >"$work/node.log" 2>&1 &
node_pid=$!
url="http://127.0.0.1:$port"
for _ in $(seq 1 60); do "$bin" health --node "$url" >/dev/null 2>&1 && break; sleep 1; done

rust() {
  "$bin" bench --node "$url" --keys "$work/$1" --senders "$clients" --clients "$clients" \
    --batch 1 --txs "$txs" --json 2>/dev/null |
    python3 -c 'import json,sys; r=json.load(sys.stdin); print(json.dumps({"library": "rust (quorate bench)", "clients": r["clients"], "txs": r["committed"], "commit_s": round(r["duration_s"], 3), "tx_per_s": round(r["committed_tps"], 1), "latency_ms": r["latency"]}))'
}
echo "one validator, $clients concurrent senders, one transaction per call, $txs transfers each run ($(nproc) cores, $(date -u +%Y-%m-%d))"
rust rust
"$venv/bin/python" clients/python/bench/single_calls.py --node "$url" --keys "$work/python" --clients "$clients" --txs "$txs"
node clients/typescript/dist/bench/single-calls.js --node "$url" --keys "$work/typescript" --clients "$clients" --txs "$txs"
"$target/release/examples/single_calls" "$url" "$work/rust-library" "$clients" "$txs"
rust rust-again
