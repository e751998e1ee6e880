#!/usr/bin/env bash
# Four validators on four "hosts": Linux network namespaces with their own addresses on one
# virtual LAN (10.77.0.0/24), as an operator would run them on four machines. The script
#   1. creates the namespaces (a switch namespace holding a bridge, one namespace per validator
#      at 10.77.0.11-14, a client host at 10.77.0.100), touching nothing of the host's network;
#   2. runs the key ceremony (docs/OPERATING.md §2a, ADR 0015): each organisation makes its keys
#      and signed entry on its own host (`quorate genesis entry`, run in its namespace), the client
#      host assembles a genesis governed by the four from the entries alone (`genesis assemble
#      --governance 3`), and each host checks it (`genesis check`, one hash for all); each
#      organisation makes its own TLS CA and node certificate on its host (`quorate tls gen`),
#      and every node accepts client certificates of any member's CA (mutual TLS); no secret
#      leaves its host's directory (checked);
#   3. starts each validator in its namespace with `quorate node run` (metrics on :9100);
#   4. from the client host: waits for health SERVING on all four over mTLS, runs a
#      one-transaction-per-call workload spread over them (`quorate bench --batch 1`), scrapes
#      each validator's /metrics, and checks that all four hold the same block at one height;
#   5. operates them as docs/OPERATING.md says: a rolling restart (one validator at a time, as
#      for an upgrade), an offline backup of one validator and its restore after the others
#      moved on, then the agreement check again;
#   6. governs: one organisation proposes trusting a deployer from its host, two others approve
#      from theirs, and the third approval runs it (`quorate gov`, OPERATING §6d);
#   7. tears everything down (also on failure or Ctrl-C).
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
  for _ in $(seq 1 50); do        # a node shuts down within seconds; wait up to 10 s
    left=""
    for ns in "$tag-0" "$tag-1" "$tag-2" "$tag-3" "$client"; do
      left+=$(ip netns pids "$ns" 2>/dev/null)
    done
    [ -z "$left" ] && break
    sleep 0.2
  done
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
field() { python3 -c "import json, sys; print(json.load(sys.stdin)[sys.argv[1]])" "$1"; }

orgs=(acme globex initech umbrella)
org_dir() { echo "$dir/org-$1"; }          # organisation $1's directory on its own host
on() { local h="$1"; shift; ip netns exec "$tag-$h" "$bin" "$@"; }   # quorate on host $1

step "key ceremony: each organisation makes its keys and signed entry on its own host"
mkdir -p "$dir/assembler"
for i in 0 1 2 3; do
  accounts=2
  [ "$i" = 0 ] && accounts=48            # acme's accounts drive the workload below
  on "$i" genesis entry --chain-id quorate-multihost --name "${orgs[$i]}" --dir "$(org_dir "$i")" \
    --p2p-addr "/ip4/${hosts[$i]}/tcp/7060" --accounts "$accounts"
  cp "$(org_dir "$i")/entry.json" "$dir/assembler/${orgs[$i]}.json"   # only the entry leaves
done
step "assemble on the client host from the entries alone, governed by the four"
entry_args=()
for o in "${orgs[@]}"; do entry_args+=(--entry "$dir/assembler/$o.json"); done
ip netns exec "$client" "$bin" genesis assemble --chain-id quorate-multihost "${entry_args[@]}" \
  --genesis-time-ms "$(($(date +%s) * 1000))" --governance 3 --threshold policy=4 \
  --out "$dir/assembler/genesis.json"
step "each organisation checks the genesis against its own entry and the others'"
hashes=()
for i in 0 1 2 3; do
  cp "$dir/assembler/genesis.json" "$(org_dir "$i")/genesis.json"
  with=()
  for j in 0 1 2 3; do [ "$j" = "$i" ] || with+=(--with "$dir/assembler/${orgs[$j]}.json"); done
  h=$(on "$i" genesis check --genesis "$(org_dir "$i")/genesis.json" \
        --entry "$(org_dir "$i")/entry.json" "${with[@]}" --json | field genesis_hash)
  echo "${orgs[$i]}: genesis hash $h"
  hashes+=("$h")
done
for h in "${hashes[@]}"; do [ "$h" = "${hashes[0]}" ] || { echo "hashes differ"; exit 1; }; done

step "TLS: each organisation its own CA and node certificate, made on its own host"
for i in 0 1 2 3; do
  on "$i" tls gen --out "$(org_dir "$i")/ca" --hosts "${hosts[$i]}" >/dev/null   # the org's CA
done
cat "$dir"/org-*/ca/ca.pem > "$dir/assembler/consortium-ca.pem"   # public: every member's CA
for i in 0 1 2 3; do
  cp "$dir/assembler/consortium-ca.pem" "$(org_dir "$i")/"
  peers=()
  for j in 0 1 2 3; do
    [ "$j" = "$i" ] || peers+=(--peer "$(python3 -c "import json,sys; print(json.load(open(sys.argv[1]))['p2p_address'])" "$dir/assembler/${orgs[$j]}.json")")
  done
  on "$i" node init --home "$(org_dir "$i")/home" --genesis "$(org_dir "$i")/genesis.json" \
    --key "$(org_dir "$i")/validator.key.json" --grpc-addr "${hosts[$i]}:7050" \
    --p2p-addr /ip4/0.0.0.0/tcp/7060 "${peers[@]}" >/dev/null
  on "$i" tls gen --ca-dir "$(org_dir "$i")/ca" --out "$(org_dir "$i")/home/tls" \
    --hosts "${hosts[$i]}" --home "$(org_dir "$i")/home" --mutual \
    --client-ca "$(org_dir "$i")/consortium-ca.pem" | grep -v "^clients:"
done
# The client host acts for acme: acme's client certificate, every member's CA.
tls=(--ca "$dir/assembler/consortium-ca.pem" --cert "$(org_dir 0)/ca/client.pem"
     --key "$(org_dir 0)/ca/client.key")
tls_of() { echo --ca "$(org_dir "$1")/consortium-ca.pem" --cert "$(org_dir "$1")/ca/client.pem" --key "$(org_dir "$1")/ca/client.key"; }

step "secrets: every secret key file is under its own organisation's directory only"
python3 - "$dir" <<'PY'
import json, os, sys
root = sys.argv[1]
seeds = {}
for org in sorted(d for d in os.listdir(root) if d.startswith("org-")):
    for base, _, files in os.walk(os.path.join(root, org)):
        for f in files:
            try:
                seed = json.load(open(os.path.join(base, f))).get("secret_key")
            except Exception:
                continue
            if seed:
                seeds[seed] = org
keys = [os.path.join(b, f) for b, _, fs in os.walk(root) for f in fs]
for path in keys:
    text = open(path, "rb").read().decode("utf-8", "replace")
    for seed, org in seeds.items():
        if seed in text and not path.startswith(os.path.join(root, org) + os.sep):
            sys.exit(f"{org}'s secret key is in {path}")
    if path.endswith("ca.key") or path.endswith("node.key") or path.endswith("client.key"):
        owner = os.path.relpath(path, root).split(os.sep)[0]
        if not owner.startswith("org-"):
            sys.exit(f"a TLS key outside every organisation: {path}")
print(f"{len(seeds)} secret keys, each only under its organisation's directory; "
      f"the assembler's directory holds none")
PY

step "start: quorate node run in each validator's namespace"
run_validator() {
  QUORATE_CFG_METRICS__ADDR=0.0.0.0:9100 ip netns exec "$tag-$1" "$bin" node run \
    --home "$(org_dir "$1")/home" >>"$(org_dir "$1")/node.log" 2>&1 &
  pids[$1]=$!
}
stop_validator() { kill -TERM "${pids[$1]}"; wait "${pids[$1]}" || true; }
at() { ip netns exec "$client" "$bin" "${tls[@]}" "$@"; }
url() { echo "https://${hosts[$1]}:7050"; }
height_of() { at status --json --node "$(url "$1")" | field height; }
wait_serving() {
  for _ in $(seq 1 600); do
    if at health --node "$(url "$1")" >/dev/null 2>&1; then
      echo "validator $1 at $(url "$1"): SERVING at height $(height_of "$1")"
      return 0
    fi
    sleep 0.2
  done
  echo "validator $1 never became healthy"; tail -20 "$(org_dir "$1")/node.log"; exit 1
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
at bench "${nodes[@]}" --keys "$(org_dir 0)/keys" --txs "$txs" --senders 32 --clients 16 --batch 1 \
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
tar -C "$(org_dir 3)/home" -czf "$(org_dir 3)/backup.tgz" data
echo "archive: $(du -h "$(org_dir 3)/backup.tgz" | cut -f1)"
run_validator 3
wait_serving 3
step "restore: validator 3 stopped, the others move on, its data replaced by the archive"
stop_validator 3
stopped_at=$(height_of 0)
while [ "$(height_of 0)" -le $((stopped_at + 2)) ]; do
  at tx transfer --node "$(url 0)" --from "$(org_dir 0)/keys/account-40.json" \
    --to 0000000000000000000000000000000000000001 --amount 1 --wait >/dev/null
done
echo "others at height $(height_of 0) (validator 3 stopped at $stopped_at)"
rm -rf "$(org_dir 3)/home/data"
tar -C "$(org_dir 3)/home" -xzf "$(org_dir 3)/backup.tgz"
run_validator 3
wait_serving 3
step "agreement after the restarts and the restore"
agree
step "governance: globex proposes trusting a deployer from its host; umbrella and initech approve from theirs"
deployer=$(python3 -c "import json,sys; print(json.load(open(sys.argv[1]))['accounts'][1]['address'])" "$dir/assembler/globex.json")
gov() { local h="$1"; shift; on "$h" $(tls_of "$h") gov "$@" --node "$(url "$h")"; }
gov 1 propose trust "$deployer" --from "$(org_dir 1)/member.key.json"
gov 3 approve 1 --from "$(org_dir 3)/member.key.json"
gov 2 approve 1 --from "$(org_dir 2)/member.key.json"
state=$(at gov proposal 1 --node "$(url 0)" --json | field status)
[ "$state" = EXECUTED ] || { echo "proposal 1 is $state, not EXECUTED"; exit 1; }
step "ok: four organisations on four hosts, one chain, governed together"
