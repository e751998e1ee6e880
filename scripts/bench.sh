#!/usr/bin/env bash
# Benchmarks a 1-validator and a 4-validator cluster on loopback with `quorate bench` (release
# build): native transfers, remittance calls, certificate batches and a mix, then 4 validators
# at half their transfer throughput for latency. Writes, into $QUORATE_BENCH_OUT (default
# ./bench-report): report.md (every command with its output), one JSON and one SVG plot per run.
# The load generator runs on the same machine as the validators and competes with them for CPU.
#
#   scripts/bench.sh              the full set (about 5 minutes on 2 cores after the build)
#   QUORATE_BENCH_QUICK=1 ...     a tenth of the transactions, to try it out
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
cargo build --release --locked -p quorate-cli
BIN="${CARGO_TARGET_DIR:-target}/release/quorate"
OUT="${QUORATE_BENCH_OUT:-$PWD/bench-report}"
mkdir -p "$OUT"
scale=1
[ "${QUORATE_BENCH_QUICK:-0}" = "1" ] && scale=10
n() { echo $(($1 / scale)); }
report="$OUT/report.md"
{
  echo "# Quorate benchmark report"
  echo
  echo "- date: $(date -u +%Y-%m-%dT%H:%M:%SZ)"
  echo "- machine: $(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo), $(sed -n 's/^model name\s*: //p' /proc/cpuinfo | head -1)"
  echo "- commit: $(git rev-parse --short HEAD 2>/dev/null || echo unknown)"
  echo "- binary: $BIN (release)"
  echo
} > "$report"

# run NAME ARGS...: one `quorate bench` run, its output into the report.
run() {
  local name=$1
  shift
  echo "== $name: quorate bench $*"
  local text
  text=$("$BIN" bench "$@" --out "$OUT/$name.json" --plot "$OUT/$name.svg" --timeout 90s)
  echo "$text"
  {
    echo "## $name"
    echo
    echo '```'
    echo "\$ quorate bench $*"
    echo "$text"
    echo '```'
    echo
    echo "![$name]($name.svg)"
    echo
  } >> "$report"
}
tps_of() { sed -nE 's/^  "committed_tps": *([0-9]+).*/\1/p' "$OUT/$1.json"; }

run v1-transfer --validators 1 --workload transfer --txs "$(n 100000)" --senders 2000
# One transaction per call (what most clients do), 64 concurrent clients, and at a fixed rate.
run v1-transfer-singles --validators 1 --workload transfer --txs "$(n 20000)" --senders 2000 --batch 1 --clients 64
run v1-transfer-singles-8 --validators 1 --workload transfer --txs "$(n 20000)" --senders 2000 --batch 1 --clients 8
run v1-transfer-singles-1 --validators 1 --workload transfer --txs "$(n 2000)" --senders 2000 --batch 1 --clients 1
half=$(( $(tps_of v1-transfer-singles) / 2 ))
[ "$half" -gt 0 ] || half=100
run v1-transfer-singles-half-load --validators 1 --workload transfer --txs "$(( half * 15 ))" --senders 2000 --batch 1 --clients 64 --rate "$half"
run v1-remittance --validators 1 --workload remittance --txs "$(n 50000)" --senders 2000
run v1-certs --validators 1 --workload certs --txs "$(n 500)" --senders 20 --certs-per-tx 100
run v1-mix --validators 1 --workload mix --txs "$(n 50000)" --senders 2000 --certs-per-tx 10
run v4-transfer --validators 4 --workload transfer --txs "$(n 60000)" --senders 2000
half=$(( $(tps_of v4-transfer) / 2 ))
[ "$half" -gt 0 ] || half=100
run v4-transfer-half-load --validators 4 --workload transfer --txs "$(( half * 20 ))" --senders 2000 --rate "$half"
run v4-transfer-singles --validators 4 --workload transfer --txs "$(n 20000)" --senders 2000 --batch 1 --clients 64
run v4-transfer-singles-8 --validators 4 --workload transfer --txs "$(n 20000)" --senders 2000 --batch 1 --clients 8
run v4-transfer-singles-1 --validators 4 --workload transfer --txs "$(n 2000)" --senders 2000 --batch 1 --clients 1
half=$(( $(tps_of v4-transfer-singles) / 2 ))
[ "$half" -gt 0 ] || half=100
run v4-transfer-singles-half-load --validators 4 --workload transfer --txs "$(( half * 15 ))" --senders 2000 --batch 1 --clients 64 --rate "$half"
run v4-remittance --validators 4 --workload remittance --txs "$(n 20000)" --senders 2000
# The two client patterns side by side, against the targets of issue 14.
python3 - "$OUT" >> "$report" <<'PY'
import json, os, sys
out = sys.argv[1]
def r(name):
    path = os.path.join(out, name + ".json")
    return json.load(open(path)) if os.path.exists(path) else None
def tps(x): return f"{x['committed_tps']:.0f}" if x else "-"
def lat(x): return f"{x['latency']['p50_ms']:.0f} / {x['latency']['p99_ms']:.0f} ms" if x else "-"
def p2p(x):
    total = sum((x or {}).get("p2p_received", {}).values())
    return f"{total / max(x['committed'], 1):.0f} B" if total else "-"
print("## Client patterns side by side\n")
print("| cluster | SubmitBatch of 64, 8 clients | single Submit, 64 clients | singles / batched | singles at half their maximum: p50 / p99 | p2p bytes per tx (singles) |")
print("|---|---|---|---|---|---|")
for v in (1, 4):
    b, s, h = r(f"v{v}-transfer"), r(f"v{v}-transfer-singles"), r(f"v{v}-transfer-singles-half-load")
    ratio = f"{100 * s['committed_tps'] / b['committed_tps']:.0f}%" if b and s and b['committed_tps'] else "-"
    print(f"| {v} validator{'s' if v > 1 else ''} | {tps(b)} tx/s | {tps(s)} tx/s | {ratio} | {lat(h)} | {p2p(s)} |")
print("\nTargets (issue 14): 1 validator singles >= 80% of batched; 4 validators singles >= 6,000 tx/s and")
print("no worse than batched; 4 validators singles at half their maximum p50 <= 50 ms, p99 <= 200 ms.\n")
def cpu_tx(x):
    u = (x or {}).get("usage") or []
    return sum(v["cpu_us_per_tx"] for v in u) / len(u) if u else None
print("## One transaction per call at low concurrency\n")
print("| cluster | clients | tx/s | share of 64 clients | submit -> admitted p50 / p99 | submit -> commit p50 | validator CPU per tx |")
print("|---|---|---|---|---|---|---|")
for v in (1, 4):
    top = r(f"v{v}-transfer-singles")
    for c, name in ((1, f"v{v}-transfer-singles-1"), (8, f"v{v}-transfer-singles-8"), (64, f"v{v}-transfer-singles")):
        x = r(name)
        if not x:
            continue
        share = f"{100 * x['committed_tps'] / top['committed_tps']:.0f}%" if top and top['committed_tps'] else "-"
        acc = f"{x['acceptance']['p50_ms']:.2f} / {x['acceptance']['p99_ms']:.2f} ms"
        cpu = cpu_tx(x)
        print(f"| {v} validator{'s' if v > 1 else ''} | {c} | {tps(x)} | {share} | {acc} | {x['latency']['p50_ms']:.0f} ms | {cpu:.0f} us |" if cpu is not None else f"| {v} | {c} | {tps(x)} | {share} | {acc} | - | - |")
b, s = r("v1-transfer"), r("v1-transfer-singles")
if cpu_tx(b) and cpu_tx(s):
    print(f"\nOne validator: CPU per transaction of single calls (64 clients) / batched: {cpu_tx(s) / cpu_tx(b):.2f}x.")
print("Targets (issue 29): 4 validators, 8 clients >= 60% of 64 clients; 1 validator single-call CPU per tx <= 1.25x batched.\n")
PY
echo "report: $report"
