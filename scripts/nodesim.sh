#!/usr/bin/env bash
# The node simulator's campaign: runs seeds of `quorate-nodesim` (whole validators on a simulated
# network and clock, see node/src/sim/) in parallel jobs and sums them up.
#
#   scripts/nodesim.sh [--seeds N] [--from S] [--mix MIX] [--jobs J] [--out DIR] [--bin FILE]
#                      [--protocol-v2]
#   scripts/nodesim.sh --defect NAME [--seeds N] [--mix MIX]
#
# --protocol-v2 builds the simulator with the test-only protocol version 2 (feature
# `protocol-test-v2`): the chain admin activates it mid-run (ADR 0019).
#
# --defect NAME puts back the defect of scripts/defects/NAME.patch (a fix of an earlier issue,
# undone), builds, runs seeds from --from one after another until one breaks an invariant, and
# prints the first seed that caught it. It builds HEAD with the patch in a worktree of its own
# (target/nodesim-defect-tree-NAME, target directory target/nodesim-defect-target): this tree and its
# build are never touched.
#
# --bin FILE runs that binary instead of building one: a campaign resumed later (with --from)
# stays on one build.
#
# Results go to DIR (default target/nodesim/<date>): one log per job and summary.txt.
set -euo pipefail
cd "$(dirname "$0")/.."

seeds=1000 from=0 mix=all jobs=2 out="" defect="" given="" features=sim
while [ $# -gt 0 ]; do
  case "$1" in
    --seeds) seeds="$2"; shift 2 ;;
    --from) from="$2"; shift 2 ;;
    --mix) mix="$2"; shift 2 ;;
    --jobs) jobs="$2"; shift 2 ;;
    --out) out="$2"; shift 2 ;;
    --defect) defect="$2"; shift 2 ;;
    --bin) given="$2"; shift 2 ;;
    --protocol-v2) features=sim,protocol-test-v2; shift ;;
    -h|--help) sed -n '2,21p' "$0"; exit 0 ;;
    *) echo "unknown argument: $1" >&2; exit 2 ;;
  esac
done
out="${out:-target/nodesim/$(date -u +%Y%m%dT%H%M%SZ)${defect:+-$defect}}"
mkdir -p "$out"
bin="$out/quorate-nodesim"

build() {
  if [ -n "$given" ]; then
    [ -x "$given" ] || { echo "no such binary: $given" >&2; exit 2; }
    [ "$(realpath "$given")" = "$(realpath -m "$bin")" ] || cp "$given" "$bin"
    return
  fi
  cargo build --release -q -p quorate-node --features "$features" --bin quorate-nodesim
  cp target/release/quorate-nodesim "$bin"
}

if [ -n "$defect" ]; then
  patch="$PWD/scripts/defects/$defect.patch"
  [ -f "$patch" ] || { echo "no such defect: $patch" >&2; exit 2; }
  # Built in a worktree of HEAD with its own target directory: this tree is never touched.
  tree="$PWD/target/nodesim-defect-tree-$defect"
  git worktree remove --force "$tree" 2>/dev/null || rm -rf "$tree"
  git worktree prune
  git worktree add -q --detach "$tree" HEAD
  trap 'git worktree remove --force "$tree" 2>/dev/null || true' EXIT
  # Dependencies are compiled once: a first run starts from this tree's release build.
  if [ ! -d target/nodesim-defect-target/release ] && [ -d target/release/deps ]; then
    mkdir -p target/nodesim-defect-target
    cp -a target/release target/nodesim-defect-target/
  fi
  (cd "$tree" && git apply "$patch" &&
    CARGO_TARGET_DIR="$PWD/../nodesim-defect-target" \
      cargo build --release -q -p quorate-node --features sim --bin quorate-nodesim)
  cp target/nodesim-defect-target/release/quorate-nodesim "$bin"
  echo "defect $defect put back; seeds $from..$((from + seeds)) of mix $mix, until one catches it"
  started=$(date +%s)
  status=0
  "$bin" --mix "$mix" --seeds "$from..$((from + seeds))" --stop-at-first >"$out/defect.log" || status=$?
  if [ "$status" -eq 0 ]; then
    echo "NOT CAUGHT in $seeds seeds ($(($(date +%s) - started)) s)" | tee "$out/summary.txt"
    exit 1
  fi
  first=$(grep -m1 -o 'VIOLATION seed=[0-9]*' "$out/defect.log" | grep -o '[0-9]*$' || true)
  if [ "$status" -ne 1 ] || [ -z "$first" ]; then
    echo "the run failed (status $status) without a violation: see $out/defect.log" >&2
    exit 2
  fi
  grep -m3 'VIOLATION' "$out/defect.log"
  echo "defect $defect caught by seed $first: $((first - from + 1)) seeds of mix $mix ($(($(date +%s) - started)) s)" | tee "$out/summary.txt"
  exit 0
fi

build
echo "seeds $from..$((from + seeds)) of mix $mix in $jobs jobs; logs in $out"
started=$(date +%s)
per=$(((seeds + jobs - 1) / jobs))
pids=()
for j in $(seq 0 $((jobs - 1))); do
  a=$((from + j * per)); b=$((a + per)); [ $b -gt $((from + seeds)) ] && b=$((from + seeds))
  [ $a -ge $b ] && continue
  "$bin" --mix "$mix" --seeds "$a..$b" >"$out/job-$from-$j.log" 2>&1 &
  pids+=($!)
done
status=0
for p in "${pids[@]}"; do wait "$p" || status=1; done
wall=$(($(date +%s) - started))
cat "$out"/job-*.log | awk -v wall="$wall" -v cores="$(nproc)" -v mix="$mix" '
  /^seed=/ {
    runs++
    for (i = 1; i <= NF; i++) { split($i, kv, "="); v[kv[1]] = kv[2] }
    sim += v["simulated_s"]; events += v["delivered"] + v["lost"]; crashes += v["crashes"]
    acked += v["acknowledged"]; acts += v["byzantine_acts"]
    if (v["violations"] > 0) failed++
    drawn[v["drawn"]]++
  }
  END {
    printf "mix=%s runs=%d failed=%d simulated_h=%.1f messages=%d crashes=%d acknowledged_txs=%d byzantine_acts=%d wall_s=%d cores=%d\n",
      mix, runs, failed, sim / 3600, events, crashes, acked, acts, wall, cores
    for (d in drawn) printf "  drawn %s: %d\n", d, drawn[d]
  }' | tee "$out/summary.txt"
grep -h VIOLATION "$out"/job-*.log | head -20 || true
exit $status
