#!/usr/bin/env bash
# Checks the Grafana dashboard against real data: starts a 4-validator localnet with metrics,
# a Prometheus server scraping it (deploy/prometheus.yml's job, pointed at loopback), sends a
# transfer load, then runs every query of deploy/grafana/quorate.json through Prometheus's HTTP
# API and prints how many series each returns. A query with no series fails the check (except
# those that count rare events: failures, drops, stalls, compiles).
#
#   deploy/grafana/check.sh [--release]
# Needs `prometheus` and `promtool` (Debian package prometheus).
set -euo pipefail
cd "$(dirname "$0")/../.."
profile=debug
[ "${1:-}" = --release ] && profile=release
if [ "$profile" = release ]; then cargo build --release -p quorate-cli --locked >&2
else cargo build -p quorate-cli --locked >&2; fi
bin="$(realpath "${CARGO_TARGET_DIR:-target}/$profile/quorate")"
command -v prometheus >/dev/null || { echo "needs prometheus (apt-get install prometheus)" >&2; exit 2; }

dir=$(mktemp -d /tmp/quorate-dashboard.XXXXXX)
pids=()
trap 'for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null; done; wait 2>/dev/null; rm -rf "$dir"' EXIT
base=$((30000 + $$ % 1000 * 20))
"$bin" localnet --validators 4 --home "$dir/net" --grpc-port "$base" --p2p-port $((base + 10)) \
  --metrics-port $((base + 4)) --accounts 20 >"$dir/localnet.log" 2>&1 &
pids+=($!)
targets=$(for i in 0 1 2 3; do printf '"127.0.0.1:%d",' $((base + 4 + i)); done)
sed -e "s/targets: \[.*\]/targets: [${targets%,}]/" -e 's/scrape_interval: .*/scrape_interval: 2s/' \
  deploy/prometheus.yml >"$dir/prometheus.yml"
promtool check config "$dir/prometheus.yml"
prom=$((base + 9))
prometheus --config.file="$dir/prometheus.yml" --storage.tsdb.path="$dir/tsdb" \
  --web.listen-address="127.0.0.1:$prom" >"$dir/prometheus.log" 2>&1 &
pids+=($!)
for _ in $(seq 1 300); do
  [ -s "$dir/net/node-3/grpc.addr" ] && "$bin" health --node "http://$(cat "$dir/net/node-0/grpc.addr")" >/dev/null 2>&1 && break
  sleep 0.2
done
"$bin" bench --node "http://127.0.0.1:$base" --node "http://127.0.0.1:$((base + 1))" \
  --keys "$dir/net/keys" --txs 3000 --senders 16 --clients 8 --batch 1 | grep -E '^(committed|latency)'
sleep 20 # a few scrapes after the load

python3 - "$prom" deploy/grafana/quorate.json <<'EOF'
import json, sys, urllib.parse, urllib.request
port, path = sys.argv[1], sys.argv[2]
rare = ("failed", "dropped", "write_stopped", "delayed_write", "compiles", "artifact_loads", "contract_")
dash = json.load(open(path))
bad = 0
for p in dash["panels"]:
    for t in p["targets"]:
        expr = t["expr"].replace("$instance", ".*")
        url = f"http://127.0.0.1:{port}/api/v1/query?" + urllib.parse.urlencode({"query": expr})
        r = json.load(urllib.request.urlopen(url))
        n = len(r["data"]["result"]) if r["status"] == "success" else -1
        ok = n > 0 or (n == 0 and any(k in expr for k in rare))
        bad += not ok
        print(f"{'ok ' if ok else 'BAD'} {n:3d} series  {p['title']}: {t['legendFormat']}")
print(f"{sum(len(p['targets']) for p in dash['panels'])} queries, {bad} bad")
sys.exit(1 if bad else 0)
EOF
