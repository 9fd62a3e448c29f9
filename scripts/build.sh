#!/usr/bin/env bash
# Builds everything: the stele CLI (release), the wasm verifier and the web
# page (web/dist, including the single-file web/dist/stele-verify.html).
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --workspace --bins
# The wasm crates are the modules listed (with their size gates) in web/build.mjs.
mapfile -t wasm_crates < <(node web/build.mjs --cargo-packages)
[ "${#wasm_crates[@]}" -gt 0 ] || { echo "build.sh: web/build.mjs --cargo-packages listed no crate" >&2; exit 1; }
# One cargo run a crate: built together, cargo would unify stele-core's
# features, and the plain verifier would carry wasm-seal's sealed checks.
for crate in "${wasm_crates[@]}"; do
  cargo build --package="$crate" --profile wasm-release --target wasm32-unknown-unknown
done
node web/build.mjs
