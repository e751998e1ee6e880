#!/usr/bin/env bash
# The main job: builds the node, starts a local cluster of 4 validators as separate processes on
# loopback (gRPC on 127.0.0.1:7050-7053, libp2p on 7060-7063), runs a small demo workload
# across them, and keeps the cluster running until Ctrl-C. QUORATE_DEMO_ONLY=1 stops after the
# demo; QUORATE_LOCALNET_HOME chooses the directory (reset on each run).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
cargo build --release --locked -p quorate-node
BIN="${CARGO_TARGET_DIR:-target}/release/quorate"
HOME_DIR="${QUORATE_LOCALNET_HOME:-$PWD/.quorate/localnet}"
N="${QUORATE_VALIDATORS:-4}"
rm -rf "$HOME_DIR"

"$BIN" localnet --validators "$N" --home "$HOME_DIR" &
NET_PID=$!
trap 'kill -TERM $NET_PID 2>/dev/null || true; wait $NET_PID 2>/dev/null || true' EXIT INT TERM
node() { echo "http://$(cat "$HOME_DIR/node-$1/grpc.addr")"; }
for i in $(seq 0 $((N - 1))); do
  for _ in $(seq 1 300); do
    [ -s "$HOME_DIR/node-$i/grpc.addr" ] && "$BIN" status --node "$(node "$i")" >/dev/null 2>&1 && break
    sleep 0.2
  done
done

keys="$HOME_DIR/keys"
addr_of() { "$BIN" keys show --json "$1" | sed -E 's/.*"address":"([0-9a-f]+)".*/\1/'; }
A0=$(addr_of "$keys/account-0.json"); A1=$(addr_of "$keys/account-1.json")

echo "== demo: a transfer submitted to each validator, committed by all =="
for i in $(seq 0 $((N - 1))); do
  "$BIN" tx transfer --node "$(node "$i")" --from "$keys/account-$((i + 2)).json" --to "$A0" --amount $((100 + i)) --wait
done
echo "== demo: a burst of 20 transfers through validator 1 =="
for j in $(seq 1 19); do
  "$BIN" tx transfer --node "$(node 1)" --from "$keys/account-1.json" --to "$A0" --amount "$j" >/dev/null
done
"$BIN" tx transfer --node "$(node 1)" --from "$keys/account-1.json" --to "$A0" --amount 20 --wait
echo "== demo: a replay is refused =="
"$BIN" tx transfer --node "$(node 2)" --from "$keys/account-1.json" --to "$A0" --amount 1 --nonce 0 || true
echo "== demo: every validator holds the same head =="
sleep 1
for i in $(seq 0 $((N - 1))); do
  echo "validator $i: $("$BIN" status --node "$(node "$i")" | grep -E '^(height|head|peers)' | tr -s ' ' | paste -sd ' ')"
done
"$BIN" account --node "$(node 3)" "$A0"
"$BIN" block --node "$(node 2)"
"$BIN" status --node "$(node 0)"

if [ "${QUORATE_DEMO_ONLY:-0}" = "1" ]; then exit 0; fi
echo "cluster running: validators at $(for i in $(seq 0 $((N - 1))); do printf '%s ' "$(node "$i")"; done)(Ctrl-C to stop)"
wait $NET_PID
