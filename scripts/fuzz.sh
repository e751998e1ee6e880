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
bin_dir="$CARGO_TARGET_DIR/x86_64-unknown-linux-gnu/release"
printf '%-20s %12s %8s %s\n' target executions crashes corpus
for t in "${targets[@]}"; do
  mkdir -p "corpus/$t" "artifacts/$t"
  log=$(mktemp)
  status=0
  # The binary itself, not `cargo fuzz run` (which would rebuild whenever a source changed).
  "$bin_dir/$t" "corpus/$t" -artifact_prefix="artifacts/$t/" -max_total_time="$seconds" \
    -seed=1 -max_len=65536 -rss_limit_mb=4096 -timeout=10 -print_final_stats=1 >"$log" 2>&1 \
    || status=$?
  execs=$(grep -Eo 'stat::number_of_executed_units: *[0-9]+' "$log" | grep -Eo '[0-9]+$' || true)
  # Keep the corpus small: only inputs that add coverage (libFuzzer's merge).
  fresh=$(mktemp -d)
  "$bin_dir/$t" -merge=1 "$fresh" "corpus/$t" >/dev/null 2>&1 && {
    rm -rf "corpus/$t"
    mv "$fresh" "corpus/$t"
  }
  crashes=$([ "$status" -eq 0 ] && echo 0 || echo 1)
  printf '%-20s %12s %8s %s\n' "$t" "${execs:-?}" "$crashes" "$(ls "corpus/$t" | wc -l) inputs"
  if [ "$status" -ne 0 ]; then tail -30 "$log"; fi
  rm -f "$log"
done
