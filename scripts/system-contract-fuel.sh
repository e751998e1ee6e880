#!/usr/bin/env bash
# Measures the fuel of every call of the four system contracts on a fresh dev chain, and the
# size of each contract's wasm, and prints them as Markdown tables (docs/CONTRACTS.md quotes
# them). Fuel is deterministic: the same calls on the same state use the same fuel on every
# machine. Each call is made once from the CLI, as a user would.
#
#   scripts/system-contract-fuel.sh     (QUORATE_FUEL_ADDR picks the gRPC address)
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh >/dev/null
cargo build --release --locked -p quorate-cli
BIN="${CARGO_TARGET_DIR:-target}/release/quorate"
ADDR="${QUORATE_FUEL_ADDR:-127.0.0.1:7450}"
NODE="http://$ADDR"
HOME_DIR=$(mktemp -d)
"$BIN" dev --home "$HOME_DIR" --grpc-addr "$ADDR" >/dev/null 2>&1 &
NODE_PID=$!
trap 'kill $NODE_PID 2>/dev/null || true; wait $NODE_PID 2>/dev/null || true; rm -rf "$HOME_DIR"' EXIT
for _ in $(seq 1 150); do
  "$BIN" status --node "$NODE" >/dev/null 2>&1 && break
  sleep 0.2
done
K="$HOME_DIR/keys"
k() { echo "$K/dev-$1.json"; }
addr_of() { "$BIN" keys show --json "$1" | sed -E 's/.*"address":"([0-9a-f]+)".*/\1/'; }

echo '| contract | command (`quorate …`) | case | fuel |'
echo "|---|---|---|---:|"
# fuel CONTRACT CASE -- quorate arguments...: runs it and prints a table row with its fuel.
fuel() {
  local contract=$1 case=$2
  shift 3
  local out
  out=$("$BIN" "$@" --node "$NODE" --json 2>/dev/null || true)
  local used status
  used=$(sed -nE 's/.*"fuel_used":([0-9]+).*/\1/p' <<<"$out")
  status=$(sed -nE 's/.*"status":"([A-Z_]+)".*/\1/p' <<<"$out")
  [ -n "$used" ] || { echo "no fuel in output of $*: $out" >&2; exit 1; }
  local what="$1 $2"
  [ "$status" = "SUCCESS" ] || case="$case ($status)"
  echo "| $contract | \`$what\` | $case | $used |"
}

A2=$(addr_of "$(k 2)")
fuel remittance "new entry" -- remittance deposit payroll 1000 --from "$(k 1)"
fuel remittance "second entry" -- remittance deposit bonus 500 --from "$(k 1)"
fuel remittance "existing entry" -- remittance deposit bonus 100 --from "$(k 1)"
fuel remittance "partial" -- remittance withdraw bonus 100 --from "$(k 1)"
fuel remittance "2 allocations" -- remittance remit "$A2" 1200 --alloc payroll=1000 --alloc bonus=300 --memo salary --from "$(k 1)"
fuel remittance "not covered" -- remittance remit "$A2" 900 --alloc bonus=100 --from "$(k 1)"
fuel remittance "query, 1 entry" -- remittance reserves "$(k 1)"
fuel remittance "query" -- remittance show 1
fuel remittance "query, 1 remittance" -- remittance history "$A2"

fuel credit-escrow "" -- escrow issue "$(k 1)" 5000 --maturity 365d --terms "invoice 17" --from "$(k 0)"
fuel credit-escrow "" -- escrow transfer 1 "$(k 2)" --from "$(k 1)"
fuel credit-escrow "not the creditor" -- escrow confirm 1 --from "$(k 3)"
fuel credit-escrow "" -- escrow confirm 1 --from "$(k 2)"
"$BIN" escrow transfer 1 "$(k 3)" --node "$NODE" --from "$(k 2)" >/dev/null
# The return is one transaction from the escrow's 2-of-2 address (it pays the fee), signed by both.
TARGET=$("$BIN" escrow target "$(k 2)" "$(k 3)" --node "$NODE" --json | sed -nE 's/.*"address":"(0x)?([0-9a-f]+)".*/\2/p')
"$BIN" tx transfer --from "$(k 0)" --to "$TARGET" --amount 20000000 --wait --node "$NODE" >/dev/null
fuel credit-escrow "2-of-2 co-signed" -- escrow return 1 --debtor "$(k 2)" --creditor "$(k 3)" --from "$(k 2)" --cosign "$(k 3)"
"$BIN" escrow transfer 1 "$(k 3)" --deadline 1s --node "$NODE" --from "$(k 2)" >/dev/null
sleep 2
fuel credit-escrow "after the deadline" -- escrow reclaim 1 --from "$(k 2)"
fuel credit-escrow "query, 6 history entries" -- escrow show 1
fuel credit-escrow "query" -- escrow target "$(k 1)" "$(k 2)"

fuel certificates "" -- certs add-authority "$(k 1)" --from "$(k 0)"
fuel certificates "" -- certs remove-authority "$(k 1)" --from "$(k 0)"
fuel certificates "query" -- certs authorities
fuel certificates "" -- certs create-spec diploma --schema degree/v1 --validity 365d --from "$(k 0)"
fuel certificates "query" -- certs spec 1
batch=$(mktemp)
for n in 1 100 1000 2000; do
  : > "$batch"
  for i in $(seq 1 "$n"); do printf '%040x,graduate %d\n' "$i" "$i"; done >> "$batch"
  fuel certificates "batch of $n" -- certs issue 1 --file "$batch" --fuel-limit 100000000 --from "$(k 0)"
done
rm -f "$batch"
"$BIN" certs issue 1 --subject "$A2:BSc" --node "$NODE" --from "$(k 0)" >/dev/null
last=$((1 + 100 + 1000 + 2000 + 1))
fuel certificates "not the authority" -- certs issue 1 --subject "$A2" --from "$(k 3)"
fuel certificates "" -- certs present "$last" --purpose job --from "$(k 2)"
fuel certificates "query" -- certs verify "$last"
fuel certificates "" -- certs revoke "$last" --reason error --from "$(k 0)"
fuel certificates "revoked" -- certs present "$last" --from "$(k 2)"
fuel certificates "" -- certs set-admin "$(k 0)" --from "$(k 0)"

fuel device-permissions "" -- device register door-1 --from "$(k 1)"
fuel device-permissions "" -- device add-controller door-1 "$(k 2)" --from "$(k 1)"
fuel device-permissions "by a controller" -- device grant door-1 "$(k 3)" --scope unlock,read --expires 1h --data landlord --from "$(k 2)"
fuel device-permissions "not owner or controller" -- device grant door-1 "$(k 3)" --scope '*' --from "$(k 3)"
fuel device-permissions "query, allowed" -- device check door-1 "$(k 3)" unlock
fuel device-permissions "" -- device revoke 1 --data landlord --from "$(k 1)"
fuel device-permissions "query, revoked" -- device check door-1 "$(k 3)" unlock
fuel device-permissions "" -- device remove-controller door-1 "$(k 2)" --from "$(k 1)"
fuel device-permissions "query" -- device show door-1
fuel device-permissions "query, 2 entries" -- device history door-1

echo
echo "| contract | wasm bytes |"
echo "|---|---:|"
for c in remittance credit_escrow certificates device_permissions; do
  echo "| $c | $(wc -c < "genesis/system/$c.wasm") |"
done
