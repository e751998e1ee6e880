#!/usr/bin/env bash
# The main job: builds the node, starts the single dev validator on the embedded dev genesis
# (gRPC on 127.0.0.1:7050), runs a small demo workload against it, and keeps the node running
# until Ctrl-C. Set QUORATE_DEMO_ONLY=1 to stop after the demo.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
cargo build --release --locked -p quorate-cli
BIN="${CARGO_TARGET_DIR:-target}/release/quorate"
HOME_DIR="${QUORATE_DEV_HOME:-$PWD/.quorate/dev}"
ADDR="${QUORATE_DEV_ADDR:-127.0.0.1:7050}"
NODE="http://$ADDR"

"$BIN" dev --home "$HOME_DIR" --grpc-addr "$ADDR" --reset &
NODE_PID=$!
trap 'kill $NODE_PID 2>/dev/null || true; wait $NODE_PID 2>/dev/null || true' EXIT INT TERM
for _ in $(seq 1 100); do
  "$BIN" status --node "$NODE" >/dev/null 2>&1 && break
  sleep 0.2
done

keys="$HOME_DIR/keys"
addr_of() { "$BIN" keys show --json "$1" | sed -E 's/.*"address":"([0-9a-f]+)".*/\1/'; }
A0=$(addr_of "$keys/dev-0.json"); A1=$(addr_of "$keys/dev-1.json"); A2=$(addr_of "$keys/dev-2.json")

echo "== demo: transfers between dev accounts =="
"$BIN" tx transfer --node "$NODE" --from "$keys/dev-0.json" --to "$A1" --amount 2500 --wait
"$BIN" tx transfer --node "$NODE" --from "$keys/dev-1.json" --to "$A2" --amount 700 --wait
for i in 1 2 3 4 5; do
  "$BIN" tx transfer --node "$NODE" --from "$keys/dev-2.json" --to "$A0" --amount "$i" >/dev/null
done
"$BIN" tx transfer --node "$NODE" --from "$keys/dev-2.json" --to "$A0" --amount 6 --wait
echo "== demo: refusals =="
"$BIN" tx transfer --node "$NODE" --from "$keys/dev-0.json" --to "$A1" --amount 999999999999999 || true
"$BIN" tx transfer --node "$NODE" --from "$keys/dev-0.json" --to "$A1" --amount 1 --chain-id other-chain || true
"$BIN" tx transfer --node "$NODE" --from "$keys/dev-0.json" --to "$A1" --amount 1 --corrupt-signature || true
echo "== demo: a contract from the template: build, deploy, call, query, a refused call =="
"$BIN" contract build contracts/template
WASM=contracts/target/wasm32-unknown-unknown/release/counter.wasm
C=$("$BIN" contract deploy "$WASM" --node "$NODE" --from "$keys/dev-1.json" --init '{"start": 10}' --json \
  | sed -E 's/.*"contract_address":"([0-9a-f]+)".*/\1/')
echo "counter deployed at $C"
"$BIN" contract call "$C" increment '{"by": 5}' --node "$NODE" --from "$keys/dev-2.json"
"$BIN" contract call "$C" reset --node "$NODE" --from "$keys/dev-2.json" || true
"$BIN" contract query "$C" get --node "$NODE"
"$BIN" contract info "$C" --node "$NODE"
echo "== demo: state =="
"$BIN" account --node "$NODE" "$A0"
"$BIN" block --node "$NODE"
"$BIN" status --node "$NODE"

if [ "${QUORATE_DEMO_ONLY:-0}" = "1" ]; then exit 0; fi
echo "dev validator running on $NODE (Ctrl-C to stop)"
wait $NODE_PID
