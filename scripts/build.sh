#!/usr/bin/env bash
# Builds everything: the stele CLI (release), the wasm verifier and the web
# page (web/dist, including the single-file web/dist/stele-verify.html).
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --workspace --bins
# The wasm crates are the modules listed (with their size gates) in web/build.mjs,
# one a line: the crate, then that module's own cargo --config arguments.
mapfile -t wasm_crates < <(node web/build.mjs --cargo-packages)
[ "${#wasm_crates[@]}" -gt 0 ] || { echo "build.sh: web/build.mjs --cargo-packages listed no crate" >&2; exit 1; }
# One cargo run per module: built together, cargo would unify stele-core's
# features across them (the sealed module's `sealed` feature would land in the
# verifier, ~130 KB).
for line in "${wasm_crates[@]}"; do
  read -ra c <<<"$line"
  cargo build --package="${c[0]}" "${c[@]:1}" --profile wasm-release --target wasm32-unknown-unknown
done
node web/build.mjs
