#!/usr/bin/env bash
# Fault campaign: a 4-validator cluster under a transfer load while validators are SIGKILLed
# and restarted, paused (SIGSTOP/SIGCONT) and partitioned, on a seeded schedule; then every
# transaction a client saw committed must be committed on every validator, all validators must
# hold the same blocks, and all must be alive (`quorate chaos`).
#
# As root, the cluster runs in a network namespace this script creates and removes, so that
# the partitions (routing rules that blackhole packets between p2p ports) touch nothing else.
# Otherwise it runs on the host's loopback with kills and pauses only.
#
#   scripts/chaos.sh [--seconds N] [--seed S] [--validators N] [--release] [--json]
set -euo pipefail
cd "$(dirname "$0")/.."

profile=debug
args=()
while [ $# -gt 0 ]; do
  case "$1" in
    --release) profile=release ;;
    *) args+=("$1") ;;
  esac
  shift
done

if [ "$profile" = release ]; then
  cargo build --release -p quorate-cli --locked >&2
else
  cargo build -p quorate-cli --locked >&2
fi
bin="${CARGO_TARGET_DIR:-target}/$profile/quorate"

if [ "$(id -u)" -eq 0 ] && command -v ip >/dev/null; then
  ns="quorate-chaos-$$"
  ip netns add "$ns"
  cleanup() {
    for pid in $(ip netns pids "$ns" 2>/dev/null); do kill -9 "$pid" 2>/dev/null || true; done
    ip netns del "$ns" 2>/dev/null || true
  }
  trap cleanup EXIT
  ip netns exec "$ns" ip link set lo up
  ip netns exec "$ns" "$bin" chaos --own-netns "${args[@]}"
else
  echo "chaos: not root (or no ip): running without partitions" >&2
  "$bin" chaos "${args[@]}"
fi
