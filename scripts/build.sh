#!/usr/bin/env bash
# Builds everything: the stele CLI (release), the wasm verifier and the web
# page (web/dist, including the single-file web/dist/stele-verify.html).
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --workspace --bins
cargo build -p stele-wasm -p stele-wasm-live --profile wasm-release --target wasm32-unknown-unknown
node web/build.mjs
