#!/usr/bin/env bash
# Compares `quorate` binaries (e.g. before and after a change) on the same machine in one run:
# each workload runs with A, then B (then C …), then all of them again, so that a noisy
# neighbour hits them alike. Both client patterns: SubmitBatch of 64 from 8 clients, and one
# transaction per call from 64 clients, on 1 and 4 validators. Columns: committed tx/s,
# submit → commit latency, average CPU per validator, p2p payload bytes all validators received
# per committed transaction.
#
#   scripts/bench-compare.sh BIN_A BIN_B [BIN_C ...] [TXS]
set -euo pipefail
bins=()
txs=20000
for arg in "$@"; do
  if [[ "$arg" =~ ^[0-9]+$ ]]; then txs=$arg; else bins+=("$arg"); fi
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
per_tx = round(sum(p.values()) / max(r["committed"], 1)) if p else "-"
print(round(r["committed_tps"]), round(r["latency"]["p50_ms"]), round(r["latency"]["p99_ms"]), round(cpu), per_tx)
PY
}
for i in "${!bins[@]}"; do echo "${names[$i]} = ${bins[$i]}"; done
printf '%-34s %-6s %10s %9s %9s %14s %10s\n' workload binary "tx/s" "p50 ms" "p99 ms" "CPU/validator" "p2p B/tx"
for w in "1 64 8" "1 1 64" "4 64 8" "4 1 64"; do
  set -- $w
  for pass in 1 2; do
    for i in "${!bins[@]}"; do
      f="$out/v$1-b$2-c$3-${names[$i]}-$pass.json"
      "${bins[$i]}" bench --validators "$1" --workload transfer --txs "$txs" --senders 2000 \
        --batch "$2" --clients "$3" --timeout 120s --out "$f" >/dev/null
      read -r t p50 p99 cpu p2p < <(figures "$f")
      printf '%-34s %-6s %10s %9s %9s %13s%% %10s\n' "$1 validator(s), batch $2, $3 clients" \
        "${names[$i]}" "$t" "$p50" "$p99" "$cpu" "$p2p"
    done
  done
done
