#!/usr/bin/env bash
# Start and restart time of a validator whose genesis funds ACCOUNTS accounts (default 1M):
# the time from `quorate node run` to gRPC listening, for a first start (the genesis file is
# parsed and checked in full, the state written) and for restarts (only the file's hash is
# checked against the recorded one). Release build.
#
#   scripts/restart-time.sh [ACCOUNTS] [RESTARTS]
set -euo pipefail
cd "$(dirname "$0")/.."
accounts="${1:-1000000}"
restarts="${2:-3}"
cargo build --release -p quorate-cli --locked >&2
bin="$(realpath "${CARGO_TARGET_DIR:-target}/release/quorate")"
dir=$(mktemp -d /tmp/quorate-restart.XXXXXX)
pid=""
trap '[ -n "$pid" ] && kill -9 "$pid" 2>/dev/null; rm -rf "$dir"' EXIT

# A one-validator chain with the large genesis (bench writes it and commits a few blocks).
"$bin" bench --validators 1 --extra-accounts "$accounts" --home "$dir/net" --txs 200 \
  --senders 8 --clients 2 >/dev/null
home="$dir/net/node-0"
echo "genesis: $(du -h "$home/genesis.json" | cut -f1) ($accounts extra accounts), $(nproc) cores"

# Seconds from start to "grpc listening", then a clean stop.
start_once() {
  local t0 t1
  t0=$(date +%s%N)
  QUORATE_CFG_GRPC_ADDR=127.0.0.1:0 "$bin" node run --home "$home" >"$dir/out" 2>"$dir/err" &
  pid=$!
  for _ in $(seq 1 6000); do
    grep -q "grpc listening" "$dir/out" 2>/dev/null && break
    kill -0 "$pid" 2>/dev/null || { cat "$dir/err" >&2; exit 1; }
    sleep 0.005
  done
  t1=$(date +%s%N)
  kill -TERM "$pid"; wait "$pid" || true; pid=""
  awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.3f", (b - a) / 1e9 }'
}

rm -rf "$home/data"
echo "first start (empty data, full genesis check): $(start_once) s"
for i in $(seq 1 "$restarts"); do
  echo "restart $i (genesis hash checked only): $(start_once) s"
done
