#!/usr/bin/env bash
# Compares two `quorate` binaries (e.g. before and after a change) on the same machine in one
# run: each workload runs with A, then B, then A and B again, so that a noisy neighbour hits
# both alike. Both client patterns: SubmitBatch of 64 from 8 clients, and one transaction per
# call from 64 clients, on 1 and 4 validators.
#
#   scripts/bench-compare.sh BIN_A BIN_B [TXS]
set -euo pipefail
a="$1"
b="$2"
txs="${3:-20000}"
out=$(mktemp -d /tmp/quorate-compare.XXXXXX)
tps() { python3 -c "import json,sys; r=json.load(open(sys.argv[1])); u=r['usage']; print(round(r['committed_tps']), round(r['latency']['p50_ms']), round(r['latency']['p99_ms']), round(sum(x['cpu_percent'] for x in u)/max(len(u),1)))" "$1"; }
printf '%-34s %-6s %10s %9s %9s %14s\n' workload binary "tx/s" "p50 ms" "p99 ms" "CPU/validator"
for w in "1 64 8" "1 1 64" "4 64 8" "4 1 64"; do
  set -- $w
  for pass in 1 2; do
    for bin in A B; do
      exe=$a
      [ "$bin" = B ] && exe=$b
      f="$out/v$1-b$2-c$3-$bin-$pass.json"
      "$exe" bench --validators "$1" --workload transfer --txs "$txs" --senders 2000 \
        --batch "$2" --clients "$3" --timeout 120s --out "$f" >/dev/null
      read -r t p50 p99 cpu < <(tps "$f")
      printf '%-34s %-6s %10s %9s %9s %13s%%\n' "$1 validator(s), batch $2, $3 clients" "$bin" "$t" "$p50" "$p99" "$cpu"
    done
  done
done
rm -rf "$out"
