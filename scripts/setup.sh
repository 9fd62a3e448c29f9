#!/usr/bin/env bash
# Installs what a fresh machine lacks, idempotently: Debian chromium (browser
# tests), the wasm32 target, wasm-bindgen-cli at the version in Cargo.lock,
# and the web folder's npm packages. Safe to run again.
set -euo pipefail
cd "$(dirname "$0")/.."

say() { printf '\n== %s\n' "$*"; }

if ! command -v chromium >/dev/null 2>&1 || ! command -v chromedriver >/dev/null 2>&1; then
  say "apt: chromium chromium-driver"
  SUDO=""; [ "$(id -u)" = 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq chromium chromium-driver >/dev/null
fi

# age / age-keygen: the sealed-field interop tests open wraps with the real tool.
if ! command -v age >/dev/null 2>&1 || ! command -v age-keygen >/dev/null 2>&1; then
  say "apt: age"
  SUDO=""; [ "$(id -u)" = 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq age >/dev/null
fi

# openssl: the RFC 3161 tests run a real TSA (openssl ts -reply) and cross-check with openssl ts -verify.
if ! command -v openssl >/dev/null 2>&1; then
  say "apt: openssl"
  SUDO=""; [ "$(id -u)" = 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq openssl >/dev/null
fi

if ! rustup target list --installed | grep -qx wasm32-unknown-unknown; then
  say "rustup: wasm32-unknown-unknown"
  rustup target add wasm32-unknown-unknown
fi
rustup component list --installed 2>/dev/null | grep -q '^clippy' || rustup component add clippy rustfmt

# wasm-bindgen-cli must match the wasm-bindgen crate in Cargo.lock exactly.
want=$(awk '/^name = "wasm-bindgen"$/ {getline; gsub(/version = |"/, ""); print; exit}' Cargo.lock)
have=$(wasm-bindgen --version 2>/dev/null | awk '{print $2}' || true)
if [ "$want" != "$have" ]; then
  say "cargo install wasm-bindgen-cli $want (a few minutes)"
  cargo install wasm-bindgen-cli --version "=$want"
fi

# Again when package-lock.json is newer than the last install (npm writes
# node_modules/.package-lock.json), e.g. after a devDependency was added.
hidden=web/node_modules/.package-lock.json
if [ ! -x web/node_modules/.bin/wasm-opt ] || [ ! -f "$hidden" ] || [ web/package-lock.json -nt "$hidden" ]; then
  say "npm ci (web/)"
  npm ci --prefix web --no-audit --no-fund
fi

# Go and golang.org/x/mod: Go's reference tlog (sumdb/tlog) checks the tiles
# the PostgreSQL + S3 backend writes (writer/tests/cluster_faults.rs), and its
# note package the witnesses' cosignatures (tests/tests/witness_go.rs).
gocode=/usr/share/gocode/src/golang.org/x/mod/sumdb
if ! command -v go >/dev/null 2>&1 || [ ! -d $gocode/tlog ] || [ ! -d $gocode/note ]; then
  say "apt: golang-go golang-golang-x-mod-dev"
  SUDO=""; [ "$(id -u)" = 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq golang-go golang-golang-x-mod-dev >/dev/null
fi
