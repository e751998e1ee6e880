#!/usr/bin/env bash
# Installs what building Quorate needs on a fresh Debian/Ubuntu machine: clang and libclang
# (RocksDB's bindings), protoc (the .proto files), a Rust toolchain's components and the
# wasm32 target (contracts), Python's venv, Node.js for the client libraries and the explorer
# (built into the binary), and Debian's chromium for the explorer's browser tests.
# Idempotent: installs only what is missing.
set -euo pipefail

need_apt=()
command -v clang >/dev/null 2>&1 || need_apt+=(clang)
# clang-sys wants the unversioned libclang.so that only libclang-dev provides; the libclang1
# runtime that clang pulls in is not enough.
ls /usr/lib/llvm-*/lib/libclang.so >/dev/null 2>&1 || need_apt+=(libclang-dev)
command -v protoc >/dev/null 2>&1 || need_apt+=(protobuf-compiler)
# The Python library is tested in a virtual environment (Debian splits venv and ensurepip out).
command -v python3 >/dev/null 2>&1 || need_apt+=(python3)
python3 -c "import venv, ensurepip" >/dev/null 2>&1 || need_apt+=(python3-venv)
# The TypeScript library is built and tested with Node.js (20 or later) and npm.
command -v node >/dev/null 2>&1 || need_apt+=(nodejs)
command -v npm >/dev/null 2>&1 || need_apt+=(npm)
# The explorer's end-to-end tests drive a real browser (playwright-core downloads none).
command -v chromium >/dev/null 2>&1 || need_apt+=(chromium)

if [ ${#need_apt[@]} -gt 0 ]; then
  echo "setup: installing ${need_apt[*]}"
  SUDO=""
  if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq "${need_apt[@]}" >/dev/null
fi

if ! command -v cargo >/dev/null 2>&1; then
  echo "setup: cargo not found; install Rust with rustup first" >&2
  exit 1
fi
rustup component add rustfmt clippy >/dev/null 2>&1 || true
# Contracts build for wasm32 (contracts/, `quorate contract build`, the contract tests).
if ! rustup target list --installed 2>/dev/null | grep -qx wasm32-unknown-unknown; then
  echo "setup: adding the wasm32-unknown-unknown target"
  rustup target add wasm32-unknown-unknown >/dev/null
fi
# Vite (the explorer's build) needs 20.19 or later.
if ! node -e 'const [a, b] = process.versions.node.split(".").map(Number); process.exit(a > 20 || (a === 20 && b >= 19) ? 0 : 1)'; then
  echo "setup: Node.js $(node --version) is too old for the explorer and clients/typescript (20.19 or later)" >&2
  exit 1
fi
echo "setup: ready ($(cargo --version), $(protoc --version), node $(node --version))"
