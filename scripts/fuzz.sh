#!/usr/bin/env bash
# Fuzz campaign: runs every libFuzzer target of fuzz/ for SECONDS each (default 300) with the
# nightly toolchain (installed here if missing), keeps new corpus inputs in fuzz/corpus/, and
# prints executions and crashes per target. A crash leaves its input in
# fuzz/artifacts/<target>/: copy it into fuzz/corpus/<target>/ so that
# `cargo test -p quorate-node --test fuzz_corpus` (stable, in CI) replays it for good.
#
#   scripts/fuzz.sh [SECONDS] [TARGET...]
set -euo pipefail
cd "$(dirname "$0")/../fuzz"
seconds="${1:-300}"
shift || true
rustup toolchain list | grep -q nightly || rustup toolchain install nightly --profile minimal
command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz --locked
export CARGO_TARGET_DIR="${FUZZ_TARGET_DIR:-$PWD/target}"
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
  mapfile -t targets < <(cargo +nightly fuzz list)
fi
cargo +nightly fuzz build -O
printf '%-20s %12s %8s %s\n' target executions crashes corpus
for t in "${targets[@]}"; do
  mkdir -p "corpus/$t"
  log=$(mktemp)
  status=0
  cargo +nightly fuzz run -O "$t" "corpus/$t" -- \
    -max_total_time="$seconds" -seed=1 -max_len=65536 -rss_limit_mb=4096 >"$log" 2>&1 || status=$?
  execs=$(grep -Eo 'stat::number_of_executed_units: *[0-9]+' "$log" | grep -Eo '[0-9]+$' || true)
  [ -n "$execs" ] || execs=$(grep -Eo '#[0-9]+' "$log" | tail -1 | tr -d '#')
  crashes=$([ "$status" -eq 0 ] && echo 0 || echo 1)
  printf '%-20s %12s %8s %s\n' "$t" "${execs:-?}" "$crashes" "$(ls "corpus/$t" | wc -l) inputs"
  if [ "$status" -ne 0 ]; then tail -30 "$log"; fi
  rm -f "$log"
done
