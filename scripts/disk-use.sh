#!/usr/bin/env bash
# Disk use of a validator's data directory under a steady load, without and with pruning:
# `quorate bench` at a fixed rate on one validator (release build), `du` of its data directory
# and its height every 10 s. Prints one line per sample and a summary per mode.
#
#   scripts/disk-use.sh [SECONDS] [RATE] [KEEP_BLOCKS]     (defaults: 600 s, 2000 tx/s, 1000)
#   MODES="pruning" PORT=7450 scripts/disk-use.sh ...         one mode only, on other ports
#
# The data directory holds the WAL and memtables' worth of recent writes besides the SST files:
# pruned blocks leave the disk only when RocksDB compacts, so the curve shows the effect after
# a few flushes, not in the first minutes.
set -euo pipefail
cd "$(dirname "$0")/.."
secs="${1:-600}"
rate="${2:-2000}"
keep="${3:-1000}"
BIN="${QUORATE_BIN:-${CARGO_TARGET_DIR:-target}/release/quorate}"
[ -x "$BIN" ] || cargo build --release --locked -p quorate-cli
port="${PORT:-7350}"
for mode in ${MODES:-archive pruning}; do
  home=$(mktemp -d /tmp/quorate-disk.XXXXXX)
  k=0
  [ "$mode" = pruning ] && k="$keep"
  QUORATE_CFG_STORAGE__KEEP_BLOCKS="$k" "$BIN" bench --validators 1 --home "$home/cluster" \
    --grpc-port "$port" --p2p-port $((port + 20)) --workload transfer --senders 2000 \
    --rate "$rate" --txs $((rate * secs)) --timeout 60s > "$home/bench.txt" 2>&1 &
  pid=$!
  t=0
  first=""
  last=""
  while kill -0 "$pid" 2>/dev/null; do
    sleep 10
    t=$((t + 10))
    data="$home/cluster/node-0/data"
    [ -d "$data" ] || continue
    mib=$(du -sm "$data" | cut -f1)
    sst=$(find "$data" -name '*.sst' -printf '%s\n' | awk '{s += $1} END {printf "%.0f", s / 1048576}')
    wal=$(find "$data" -name '*.log' -printf '%s\n' | awk '{s += $1} END {printf "%.0f", s / 1048576}')
    height=$("$BIN" status --node "http://127.0.0.1:$port" --json 2>/dev/null |
      python3 -c 'import json,sys; s=json.load(sys.stdin); print(s["height"], s.get("lowest_block_height", 1))' 2>/dev/null) || continue
    echo "$mode keep_blocks=$k t=${t}s data=${mib} MiB (sst ${sst}, wal ${wal}) height/lowest=$height"
    [ -z "$first" ] && [ "$t" -ge 60 ] && first="$mib"
    last="$mib at ${t} s"
  done
  wait "$pid" || true
  grep -E "^committed" "$home/bench.txt" | sed "s/^/$mode: /" || tail -3 "$home/bench.txt"
  echo "$mode: data ${first:-?} MiB at 60 s, ${last:-?} (last sample under load)"
  rm -rf "$home"
done
