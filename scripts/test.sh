#!/usr/bin/env bash
# Runs every test: format and lint gates, native tests (unit, exhaustive,
# vectors, property, CLI integration), core built for wasm32, the wasm tests in
# Node, and the browser end-to-end tests in headless Chromium.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
# PostgreSQL 15 and moto_server (S3) for the PostgreSQL + object storage tests:
# installed when missing and started; stopped again (only what this started),
# whatever happens. The demo (scripts/demo.sh) needs neither.
trap 'bash scripts/test-servers.sh stop' EXIT
bash scripts/test-servers.sh start

step() { printf '\n== %s\n' "$*"; }

step "cargo fmt --check"
cargo fmt --all -- --check
step "cargo clippy --all-targets -- -D warnings"
cargo clippy --workspace --all-targets -- -D warnings
step "cargo test (native)"
cargo test --workspace
step "core builds for wasm32-unknown-unknown"
cargo build -p stele-core --target wasm32-unknown-unknown
step "wasm tests (wasm-bindgen-test in Node, the shared vectors)"
CARGO_TARGET_WASM32_UNKNOWN_UNKNOWN_RUNNER=wasm-bindgen-test-runner cargo test -p stele-wasm -p stele-wasm-live -p stele-wasm-seal -p stele-wasm-tsa --target wasm32-unknown-unknown
step "build the page"
bash scripts/build.sh
step "samples for the browser tests"
cargo run --release -q -p stele-tests --bin make-samples -- target/test-samples --large-mb 100
step "browser end-to-end tests (headless Chromium)"
node --test web/test/
step "the tree is clean"
dirty=$(git status --porcelain)
if [ -n "$dirty" ]; then
  echo "tests left changes in the tree:"; echo "$dirty"; exit 1
fi
echo "all test suites passed"
