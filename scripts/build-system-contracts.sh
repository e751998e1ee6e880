#!/usr/bin/env bash
# Builds the four system contracts (contracts/remittance, credit-escrow, certificates,
# device-permissions) for wasm32 and copies them to genesis/system/, where the genesis crate
# embeds them, and version 2 of the remittance contract to genesis/system/upgrades/ (code for an
# in-place upgrade, OPERATING §7a; not part of any genesis): their code hashes are part of every genesis, so the committed bytes are the
# contracts. The build is reproducible: paths are remapped, versions locked, and the compiler
# version recorded in genesis/system/RUSTC.
#
#   scripts/build-system-contracts.sh           rebuild and update genesis/system/
#   scripts/build-system-contracts.sh --check   rebuild and fail if anything differs
#                                               (skipped, with a note, on another rustc)
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
mode="${1:-update}"
contracts=(remittance credit_escrow certificates device_permissions)
rustc_now=$(rustc --version)
if [ "$mode" = "--check" ] && [ -f genesis/system/RUSTC ] && [ "$(cat genesis/system/RUSTC)" != "$rustc_now" ]; then
  echo "system contracts: built with $(cat genesis/system/RUSTC); this is $rustc_now: not compared"
  exit 0
fi
rustup target list --installed 2>/dev/null | grep -qx wasm32-unknown-unknown || rustup target add wasm32-unknown-unknown
cargo_home="${CARGO_HOME:-$HOME/.cargo}"
out="$root/contracts/target/system"
RUSTFLAGS="--remap-path-prefix=$root=/quorate --remap-path-prefix=$cargo_home=/cargo" \
  cargo build --release --locked --quiet --target wasm32-unknown-unknown \
  --manifest-path contracts/Cargo.toml --target-dir "$out" \
  -p remittance -p credit-escrow -p certificates -p device-permissions
# Version 2 of the remittance contract (feature `v2`: one method more), the code of the in-place
# upgrade the process test and OPERATING §7a use; its own target directory, so that the genesis
# build above is not rebuilt with the feature.
RUSTFLAGS="--remap-path-prefix=$root=/quorate --remap-path-prefix=$cargo_home=/cargo" \
  cargo build --release --locked --quiet --target wasm32-unknown-unknown \
  --manifest-path contracts/Cargo.toml --target-dir "$out-v2" -p remittance --features v2
mkdir -p genesis/system/upgrades
status=0
pairs=()
for c in "${contracts[@]}"; do
  pairs+=("$out/wasm32-unknown-unknown/release/$c.wasm:genesis/system/$c.wasm")
done
pairs+=("$out-v2/wasm32-unknown-unknown/release/remittance.wasm:genesis/system/upgrades/remittance-v2.wasm")
for pair in "${pairs[@]}"; do
  built="${pair%%:*}"
  kept="${pair#*:}"
  c=$(basename "$kept" .wasm)
  if [ "$mode" = "--check" ]; then
    if cmp -s "$built" "$kept"; then
      echo "system contract $c: matches ($(wc -c < "$kept") bytes)"
    else
      echo "system contract $c: $kept is not what its source builds to; run scripts/build-system-contracts.sh" >&2
      status=1
    fi
  else
    cp "$built" "$kept"
    echo "system contract $c: $(wc -c < "$kept") bytes"
  fi
done
[ "$mode" = "--check" ] || echo "$rustc_now" > genesis/system/RUSTC
exit $status
