#!/usr/bin/env bash
# Four validators on four "hosts": Linux network namespaces with their own addresses on one
# virtual LAN (10.77.0.0/24), as an operator would run them on four machines. The script
#   1. creates the namespaces (a switch namespace holding a bridge, one namespace per validator
#      at 10.77.0.11-14, a client host at 10.77.0.100), touching nothing of the host's network;
#   2. makes a genesis with `quorate genesis new --hosts` (real addresses, metrics on :9100) and
#      one development CA with a node certificate per host (`quorate tls gen --ca-dir`, mutual TLS);
#   3. starts each validator in its namespace with `quorate node run`;
#   4. from the client host: waits for health SERVING on all four over mTLS, runs a
#      one-transaction-per-call workload spread over them (`quorate bench --batch 1`), scrapes
#      each validator's /metrics, and checks that all four hold the same block at one height;
#   5. operates them as docs/OPERATING.md says: a rolling restart (one validator at a time, as
#      for an upgrade), an offline backup of one validator and its restore after the others
#      moved on, then the agreement check again;
#   6. tears everything down (also on failure or Ctrl-C).
#
#   sudo scripts/multihost.sh [--release] [--keep DIR] [--txs N]
# Needs root and iproute2. Output shows each step; docs/OPERATING.md records a run.
set -euo pipefail
cd "$(dirname "$0")/.."

profile=debug
keep=""
txs=2000
while [ $# -gt 0 ]; do
  case "$1" in
    --release) profile=release ;;
    --keep) keep="$2"; shift ;;
    --txs) txs="$2"; shift ;;
    *) echo "multihost: unknown argument $1" >&2; exit 2 ;;
  esac
  shift
done
if [ "$(id -u)" -ne 0 ] || ! command -v ip >/dev/null; then
  echo "multihost: needs root and iproute2 (ip netns)" >&2
  exit 2
fi

if [ "$profile" = release ]; then
  cargo build --release -p quorate-cli --locked >&2
else
  cargo build -p quorate-cli --locked >&2
fi
bin="$(realpath "${CARGO_TARGET_DIR:-target}/$profile/quorate")"

tag="q$$"                      # namespaces and links of this run only
sw="$tag-sw"
client="$tag-cl"
hosts=(10.77.0.11 10.77.0.12 10.77.0.13 10.77.0.14)
client_ip=10.77.0.100
dir="${keep:-$(mktemp -d /tmp/quorate-multihost.XXXXXX)}"
mkdir -p "$dir"

cleanup() {
  set +e
  for ns in "$tag-0" "$tag-1" "$tag-2" "$tag-3" "$client" "$sw"; do
    for pid in $(ip netns pids "$ns" 2>/dev/null); do kill -TERM "$pid" 2>/dev/null; done
  done
  sleep 1
  for ns in "$tag-0" "$tag-1" "$tag-2" "$tag-3" "$client" "$sw"; do
    for pid in $(ip netns pids "$ns" 2>/dev/null); do kill -9 "$pid" 2>/dev/null; done
    ip netns del "$ns" 2>/dev/null
  done
  [ -n "$keep" ] || rm -rf "$dir"
  echo "== teardown: namespaces of $tag removed =="
}
trap cleanup EXIT INT TERM

step() { echo "== $* =="; }

step "network: a switch namespace with a bridge, four validator hosts and a client host"
ip netns add "$sw"
ip netns exec "$sw" ip link set lo up
ip netns exec "$sw" ip link add br0 type bridge
ip netns exec "$sw" ip link set br0 up
attach() { # namespace, address, short name
  ip netns add "$1"
  ip link add "$3" type veth peer name "$3-br"
  ip link set "$3" netns "$1"
  ip link set "$3-br" netns "$sw"
  ip netns exec "$sw" ip link set "$3-br" master br0 up
  ip netns exec "$1" ip link set lo up
  ip netns exec "$1" ip addr add "$2/24" dev "$3"
  ip netns exec "$1" ip link set "$3" up
}
for i in 0 1 2 3; do attach "$tag-$i" "${hosts[$i]}" "${tag}v$i"; done
attach "$client" "$client_ip" "${tag}c"
for i in 0 1 2 3; do
  ip netns exec "$tag-$i" ip -brief addr show dev "${tag}v$i"
done
pids=()

host_list=$(IFS=,; echo "${hosts[*]}")
step "genesis: quorate genesis new --validators 4 --hosts $host_list --metrics-port 9100"
"$bin" genesis new --validators 4 --accounts 64 --out "$dir/net" --chain-id quorate-multihost \
  --hosts "$host_list" --metrics-port 9100 | grep -v '^account '
echo "(and 64 funded accounts in $dir/net/keys)"
grep -h -E '^(grpc_addr|listen_addr|addr) ' "$dir"/net/node-0/config.toml || true

step "TLS: one development CA, a node certificate per host, mutual TLS on every validator"
"$bin" tls gen --out "$dir/tls/ca" --hosts "$client_ip" >/dev/null
for i in 0 1 2 3; do
  "$bin" tls gen --ca-dir "$dir/tls/ca" --out "$dir/net/node-$i/tls" --hosts "${hosts[$i]}" \
    --home "$dir/net/node-$i" --mutual | grep -v "^clients:"
done
tls=(--ca "$dir/tls/ca/ca.pem" --cert "$dir/tls/ca/client.pem" --key "$dir/tls/ca/client.key")

step "start: quorate node run in each validator's namespace"
run_validator() {
  ip netns exec "$tag-$1" "$bin" node run --home "$dir/net/node-$1" \
    >>"$dir/net/node-$1/node.log" 2>&1 &
  pids[$1]=$!
}
stop_validator() { kill -TERM "${pids[$1]}"; wait "${pids[$1]}" || true; }
at() { ip netns exec "$client" "$bin" "${tls[@]}" "$@"; }
url() { echo "https://${hosts[$1]}:7050"; }
field() { python3 -c "import json, sys; print(json.load(sys.stdin)[sys.argv[1]])" "$1"; }
height_of() { at status --json --node "$(url "$1")" | field height; }
wait_serving() {
  for _ in $(seq 1 600); do
    if at health --node "$(url "$1")" >/dev/null 2>&1; then
      echo "validator $1 at $(url "$1"): SERVING at height $(height_of "$1")"
      return 0
    fi
    sleep 0.2
  done
  echo "validator $1 never became healthy"; tail -20 "$dir/net/node-$1/node.log"; exit 1
}
for i in 0 1 2 3; do run_validator "$i"; done
for i in 0 1 2 3; do wait_serving "$i"; done
echo "plaintext from the client host is refused:"
if ip netns exec "$client" "$bin" status --node "http://${hosts[0]}:7050" >/dev/null 2>&1; then
  echo "   accepted (wrong)"; exit 1
else
  echo "   refused"
fi

step "workload: quorate bench --batch 1 over all four validators from the client host"
nodes=()
for i in 0 1 2 3; do nodes+=(--node "$(url "$i")"); done
at bench "${nodes[@]}" --keys "$dir/net/keys" --txs "$txs" --senders 32 --clients 16 --batch 1 \
  --timeout 120s

step "metrics: scraped from each host's :9100/metrics"
for i in 0 1 2 3; do
  m=$(ip netns exec "$client" curl -fsS "http://${hosts[$i]}:9100/metrics")
  h=$(echo "$m" | awk '$1 == "quorate_consensus_height" {print $2}')
  c=$(echo "$m" | awk '$1 == "quorate_transactions_committed_total" {print $2}')
  p=$(echo "$m" | awk '$1 == "quorate_p2p_peers" {print $2}')
  echo "validator $i: height $h, transactions committed $c, peers $p, $(echo "$m" | grep -c '^# TYPE quorate_') metric families"
done

agree() {
  local target=$(($(height_of 0) - 1)) first="" hash
  for i in 0 1 2 3; do
    hash=$(at block "$target" --json --node "$(url "$i")" | field hash)
    echo "validator $i: block $target = $hash"
    [ -z "$first" ] && first="$hash"
    [ "$hash" = "$first" ] || { echo "validators disagree at height $target"; exit 1; }
  done
}
step "agreement: every validator holds the same block at one height"
agree

step "rolling restart (an upgrade swaps the binary between stop and start)"
for i in 0 1 2 3; do
  stop_validator "$i"
  run_validator "$i"
  wait_serving "$i"
done

step "backup: validator 3 stopped, its data archived, started again"
stop_validator 3
tar -C "$dir/net/node-3" -czf "$dir/node-3-backup.tgz" data
echo "archive: $(du -h "$dir/node-3-backup.tgz" | cut -f1)"
run_validator 3
wait_serving 3
step "restore: validator 3 stopped, the others move on, its data replaced by the archive"
stop_validator 3
stopped_at=$(height_of 0)
while [ "$(height_of 0)" -le $((stopped_at + 2)) ]; do
  at tx transfer --node "$(url 0)" --from "$dir/net/keys/account-40.json" \
    --to 0000000000000000000000000000000000000001 --amount 1 --wait >/dev/null
done
echo "others at height $(height_of 0) (validator 3 stopped at $stopped_at)"
rm -rf "$dir/net/node-3/data"
tar -C "$dir/net/node-3" -xzf "$dir/node-3-backup.tgz"
run_validator 3
wait_serving 3
step "agreement after the restarts and the restore"
agree
step "ok: four hosts, one chain"
