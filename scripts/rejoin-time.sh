#!/usr/bin/env bash
# How long a validator whose data was lost takes to rejoin a running 4-validator cluster: by
# replaying every block from genesis (storage.state_sync = false) and by state sync from the
# other validators' latest snapshot. Release build, loopback.
#
#   scripts/rejoin-time.sh [SECONDS] [RATE] [EXTRA_ACCOUNTS] [SNAPSHOT_INTERVAL]
#       (defaults: 120 s of load at 2000 tx/s, 200000 extra funded accounts, every 500 heights)
#
# The chain is built by `quorate bench` (transfers at RATE for SECONDS); then validators 0-2
# run on, validator 3's data is deleted, and the time from its start to reaching the height
# validator 0 had at that start is measured, once per way.
set -euo pipefail
cd "$(dirname "$0")/.."
secs="${1:-120}"
rate="${2:-2000}"
extra="${3:-200000}"
interval="${4:-500}"
BIN="${QUORATE_BIN:-${CARGO_TARGET_DIR:-target}/release/quorate}"
[ -x "$BIN" ] || cargo build --release --locked -p quorate-cli
BIN="$(realpath "$BIN")"
port="${PORT:-7550}"
dir=$(mktemp -d /tmp/quorate-rejoin.XXXXXX)
pids=("" "" "" "")
cleanup() {
  for p in "${pids[@]}"; do
    [ -n "$p" ] || continue
    kill -9 "$p" 2>/dev/null || true
    wait "$p" 2>/dev/null || true
  done
  rm -rf "$dir"
}
trap cleanup EXIT
export QUORATE_CFG_STORAGE__SNAPSHOT_INTERVAL="$interval"

echo "building the chain: ${secs} s of transfers at ${rate} tx/s, ${extra} extra accounts, $(nproc) cores"
"$BIN" bench --validators 4 --home "$dir/net" --grpc-port "$port" --p2p-port $((port + 20)) \
  --extra-accounts "$extra" --workload transfer --senders 2000 --rate "$rate" \
  --txs $((rate * secs)) --timeout 60s > "$dir/bench.txt" 2>&1
grep -E "^committed" "$dir/bench.txt" || tail -3 "$dir/bench.txt"

start() { # start validator $1 with extra environment "$2"
  local i="$1"
  rm -f "$dir/net/node-$i/grpc.addr"
  env $2 "$BIN" node run --home "$dir/net/node-$i" >>"$dir/node-$i.out" 2>>"$dir/net/node-$i/node.log" &
  pids[$i]=$!
}
height() { # committed height of validator $1 (empty if it does not answer)
  "$BIN" status --node "http://127.0.0.1:$((port + $1))" --json 2>/dev/null |
    python3 -c 'import json,sys; print(json.load(sys.stdin)["height"])' 2>/dev/null || true
}
for i in 0 1 2; do start "$i" ""; done
for _ in $(seq 1 600); do [ -n "$(height 0)" ] && break; sleep 0.1; done
snapshots=$("$BIN" snapshot list --home "$dir/net/node-0" | tail -1)
echo "validator 0: height $(height 0); latest snapshot: $snapshots"
echo "data directory of validator 3: $(du -sh "$dir/net/node-3/data" | cut -f1)"

rejoin() { # $1: label, $2: environment of validator 3
  if [ -n "${pids[3]:-}" ]; then
    kill -9 "${pids[3]}" 2>/dev/null || true
    wait "${pids[3]}" 2>/dev/null || true
  fi
  rm -rf "$dir/net/node-3/data"
  local target t0 t1 h
  target=$(height 0)
  t0=$(date +%s%N)
  start 3 "$2"
  while :; do
    h=$(height 3)
    [ -n "$h" ] && [ "$h" -ge "$target" ] && break
    kill -0 "${pids[3]}" 2>/dev/null || { tail -20 "$dir/net/node-3/node.log"; exit 1; }
    sleep 0.2
  done
  t1=$(date +%s%N)
  echo "$1: reached height $target in $(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.1f", (b - a) / 1e9 }') s; data $(du -sh "$dir/net/node-3/data" | cut -f1)"
}
rejoin "replay from genesis (state_sync = false)" "QUORATE_CFG_STORAGE__STATE_SYNC=false"
rejoin "state sync from a snapshot" ""
grep -E "state sync: (fetching|joined)" "$dir/net/node-3/node.log" | tail -2 | cut -c1-220
