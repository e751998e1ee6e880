#!/usr/bin/env bash
# The main job: builds the node, starts a local cluster of 4 validators as separate processes on
# loopback (gRPC on 127.0.0.1:7050-7053, libp2p on 7060-7063), runs a small demo workload
# across them, and keeps the cluster running until Ctrl-C. QUORATE_DEMO_ONLY=1 stops after the
# demo; QUORATE_LOCALNET_HOME chooses the directory (reset on each run).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
cargo build --release --locked -p quorate-cli
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
echo "== demo: system contracts (deployed at genesis; each step through another validator) =="
acct() { echo "$keys/account-$1.json"; }
A2=$(addr_of "$(acct 2)"); A3=$(addr_of "$(acct 3)")
refused() { echo "   -> refused, as it should be: $1"; }
echo "-- remittance: account-1 reserves 6000 in two entries and remits 5500 to account-2 --"
"$BIN" remittance deposit payroll 5000 --node "$(node 0)" --from "$(acct 1)"
"$BIN" remittance deposit bonus 1000 --node "$(node 1)" --from "$(acct 1)"
"$BIN" remittance remit "$A2" 5500 --alloc payroll=5000 --alloc bonus=500 --memo salary \
  --node "$(node 2)" --from "$(acct 1)"
"$BIN" remittance remit "$A2" 900 --alloc bonus=400 --node "$(node 3)" --from "$(acct 1)" \
  || refused "400 allocated does not cover 900"
"$BIN" remittance reserves "$(acct 1)" --node "$(node 0)"
echo "-- credit escrow: account-0 owes 7000 to holder account-3, who transfers it to account-4 --"
"$BIN" escrow issue "$(acct 3)" 7000 --maturity 90d --terms "invoice 2026-117" --node "$(node 1)" --from "$(acct 0)" >/dev/null
"$BIN" escrow transfer 1 "$(acct 4)" --node "$(node 2)" --from "$(acct 3)" >/dev/null
echo "   escrow (target) address of account-3 and account-4: $("$BIN" escrow target "$(acct 3)" "$(acct 4)" --node "$(node 3)" 2>/dev/null)"
"$BIN" escrow confirm 1 --node "$(node 3)" --from "$(acct 5)" || refused "only the creditor confirms"
"$BIN" escrow confirm 1 --node "$(node 0)" --from "$(acct 4)" >/dev/null
"$BIN" escrow show 1 --node "$(node 1)"
echo "-- certificates: authority account-0 issues 1000 diplomas in one transaction --"
"$BIN" certs create-spec diploma --schema "degree/v1" --validity 365d --node "$(node 2)" --from "$(acct 0)"
batch=$(mktemp)
printf '%s,BSc 2026\n' "$A3" > "$batch"
for i in $(seq 2 1000); do printf '%040x,graduate %d\n' "$i" "$i"; done >> "$batch"
"$BIN" certs issue 1 --file "$batch" --fuel-limit 100000000 --node "$(node 3)" --from "$(acct 0)"
rm -f "$batch"
"$BIN" certs issue 1 --subject "$A3" --node "$(node 0)" --from "$(acct 5)" || refused "account-5 is no authority"
"$BIN" certs verify 1 --node "$(node 1)"
"$BIN" certs revoke 1 --reason "issued in error" --node "$(node 2)" --from "$(acct 0)" >/dev/null
echo "   certificate 1 is now: $("$BIN" certs verify 1 --node "$(node 3)" 2>/dev/null | sed -E 's/.*"validity":"([A-Z]+)".*/\1/')"
"$BIN" certs present 1 --purpose "job application" --node "$(node 0)" --from "$(acct 3)" || refused "a revoked certificate cannot be used"
echo "-- device permissions: account-6 owns door-7, names controller account-7, which grants account-5 --"
"$BIN" device register door-7 --node "$(node 1)" --from "$(acct 6)" >/dev/null
"$BIN" device add-controller door-7 "$(acct 7)" --node "$(node 2)" --from "$(acct 6)" >/dev/null
"$BIN" device grant door-7 "$(acct 5)" --scope unlock,read --expires 30d --data "facility manager" \
  --node "$(node 3)" --from "$(acct 7)"
"$BIN" device grant door-7 "$(acct 5)" --scope '*' --node "$(node 0)" --from "$(acct 5)" || refused "only the owner or a controller grants"
echo "   may account-5 unlock door-7? $("$BIN" device check door-7 "$(acct 5)" unlock --node "$(node 1)" 2>/dev/null)"
"$BIN" device revoke 1 --data "facility manager" --node "$(node 2)" --from "$(acct 6)" >/dev/null
echo "   after revocation:          $("$BIN" device check door-7 "$(acct 5)" unlock --node "$(node 3)" 2>/dev/null)"
"$BIN" device history door-7 --node "$(node 0)"
echo "-- credit escrow, return path: account-4 transfers it on to account-5; both sign its return --"
"$BIN" escrow transfer 1 "$(acct 5)" --node "$(node 1)" --from "$(acct 4)" >/dev/null
TARGET=$("$BIN" escrow target "$(acct 4)" "$(acct 5)" --node "$(node 2)" --json 2>/dev/null | sed -nE 's/.*"address":"(0x)?([0-9a-f]+)".*/\2/p')
"$BIN" tx transfer --node "$(node 3)" --from "$(acct 0)" --to "$TARGET" --amount 20000000 --wait >/dev/null
"$BIN" escrow return 1 --debtor "$(acct 4)" --creditor "$(acct 5)" --node "$(node 0)" --from "$(acct 4)" \
  || refused "the escrow address is 2 of 2: one signature is not enough"
"$BIN" escrow return 1 --debtor "$(acct 4)" --creditor "$(acct 5)" --node "$(node 1)" --from "$(acct 4)" \
  --cosign "$(acct 5)" >/dev/null
echo "   certificate 1 after the co-signed return: $("$BIN" escrow show 1 --node "$(node 2)" --json 2>/dev/null | sed -E 's/.*"state":"([A-Z_]+)".*/\1/')"
echo "== demo: accounts with several keys =="
echo "-- a 2-of-3 address of accounts 5, 6 and 7; transfers above 1000 need all three --"
"$BIN" keys multisig --member "$(acct 5)" --member "$(acct 6)" --member "$(acct 7)" --threshold 2 \
  --large-transfer 3 --large-transfer-above 1000 --out "$HOME_DIR/multisig.json"
MS=$(sed -nE 's/.*"address": "([0-9a-f]+)".*/\1/p' "$HOME_DIR/multisig.json")
"$BIN" tx transfer --node "$(node 2)" --from "$(acct 1)" --to "$MS" --amount 50000000 --wait >/dev/null
"$BIN" tx transfer --node "$(node 3)" --from "$(acct 5)" --key-set "$HOME_DIR/multisig.json" --to "$A0" --amount 10 \
  || refused "one key of weight 1 is short of 2"
"$BIN" tx transfer --node "$(node 0)" --from "$(acct 5)" --key-set "$HOME_DIR/multisig.json" --to "$A0" --amount 10 \
  --save "$HOME_DIR/cosigned.tx" --save-only >/dev/null
"$BIN" tx sign "$HOME_DIR/cosigned.tx" --add-signature "$(acct 6)"
"$BIN" tx submit "$HOME_DIR/cosigned.tx" --node "$(node 1)" --wait
"$BIN" tx transfer --node "$(node 2)" --from "$(acct 5)" --cosign "$(acct 6)" --account "$MS" --to "$A0" --amount 5000 \
  || refused "a transfer above 1000 needs weight 3"
"$BIN" account keys "$MS" --node "$(node 3)"
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
