#!/usr/bin/env bash
# Compares `quorate` binaries (e.g. before and after a change) on the same machine in one run:
# each workload runs with A, then B (then C …), then all of them again, so that a noisy
# neighbour hits them alike. Both client patterns: SubmitBatch of 64 from 8 clients, and one
# transaction per call from 64, 8 and 1 clients (1 client sends at most 2,000), on 1 and 4
# validators. Columns: committed tx/s, submit → commit latency, submit → admitted latency
# (p50), average CPU per validator, validator CPU per committed transaction (µs, average over
# the validators), p2p payload bytes all validators received per committed transaction.
#
# The last binary is the load generator of every run (`quorate bench --validator-binary`), so
# only the validators differ.
#
# With --contracts: contract workloads on 1 validator instead (ADR 0020): transfers, remittance
# calls (batched and one per call; "remittance-far": payees half the senders away, which keeps
# a block's remittances from naming one account twice only while a block holds fewer than
# half the senders), certificate batches (500 txs of 100) and the mix.
#
#   scripts/bench-compare.sh [--contracts] BIN_A BIN_B [BIN_C ...] [TXS]
set -euo pipefail
bins=()
txs=20000
contracts=0
for arg in "$@"; do
  if [ "$arg" = --contracts ]; then contracts=1
  elif [[ "$arg" =~ ^[0-9]+$ ]]; then txs=$arg; else bins+=("$arg"); fi
done
[ "${#bins[@]}" -ge 2 ] || { echo "usage: $0 BIN_A BIN_B [BIN_C ...] [TXS]" >&2; exit 2; }
names=(A B C D E F)
out=$(mktemp -d /tmp/quorate-compare.XXXXXX)
trap 'rm -rf "$out"' EXIT
figures() {
  python3 - "$1" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
u = r["usage"]
p = r.get("p2p_received") or {}
cpu = sum(x["cpu_percent"] for x in u) / max(len(u), 1)
cpu_tx = sum(x["cpu_us_per_tx"] for x in u) / max(len(u), 1)
per_tx = round(sum(p.values()) / max(r["committed"], 1)) if p else "-"
print(round(r["committed_tps"]), round(r["latency"]["p50_ms"]), round(r["latency"]["p99_ms"]),
      f'{r["acceptance"]["p50_ms"]:.2f}', round(cpu), f"{cpu_tx:.1f}", per_tx)
PY
}
for i in "${!bins[@]}"; do echo "${names[$i]} = ${bins[$i]}"; done
last=${bins[${#bins[@]}-1]}
"$last" bench --help | grep -q -- --validator-binary ||
  { echo "the last binary ($last) runs the load: it must have quorate bench --validator-binary" >&2; exit 2; }
printf '%-34s %-6s %8s %8s %8s %10s %9s %9s %9s\n' workload binary "tx/s" "p50 ms" "p99 ms" \
  "accept ms" "CPU/val" "CPU us/tx" "p2p B/tx"
# validators batch clients workload
runs=("1 64 8 transfer" "1 1 64 transfer" "1 1 8 transfer" "1 1 1 transfer"
  "4 64 8 transfer" "4 1 64 transfer" "4 1 8 transfer" "4 1 1 transfer")
[ "$contracts" = 1 ] && runs=("1 64 8 transfer" "1 64 8 remittance" "1 64 8 remittance-far"
  "1 1 64 remittance" "1 1 64 remittance-far" "1 64 8 certs" "1 64 8 mix")
for w in "${runs[@]}"; do
  set -- $w
  n=$txs
  extra=(--senders 2000)
  [ "$3" -eq 1 ] && [ "$n" -gt 2000 ] && n=2000
  workload=$4
  case "$4" in
    certs) n=500; extra=(--senders 20 --certs-per-tx 100) ;;
    mix) extra=(--senders 2000 --certs-per-tx 10) ;;
    remittance-far) workload=remittance; extra=(--senders 2000 --payee-offset 1000) ;;
  esac
  for pass in 1 2; do
    for i in "${!bins[@]}"; do
      f="$out/v$1-b$2-c$3-$4-${names[$i]}-$pass.json"
      "$last" bench --validator-binary "${bins[$i]}" --validators "$1" --workload "$workload" --txs "$n" "${extra[@]}" \
        --batch "$2" --clients "$3" --timeout 120s --out "$f" >/dev/null 2>"$out/run.err" ||
        { cat "$out/run.err" >&2; exit 1; }
      line=$(figures "$f")
      read -r t p50 p99 acc cpu cpu_tx p2p <<<"$line"
      printf '%-34s %-6s %8s %8s %8s %10s %8s%% %9s %9s\n' "$1 val, batch $2, $3 clients, $4" \
        "${names[$i]}" "$t" "$p50" "$p99" "$acc" "$cpu" "$cpu_tx" "$p2p"
    done
  done
done
