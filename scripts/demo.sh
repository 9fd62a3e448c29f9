#!/usr/bin/env bash
# The main job: build everything, write a sample signed log and a tampered
# copy, and serve the verifier page on http://127.0.0.1:${PORT:-8080}/.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
bash scripts/build.sh
out=target/samples
cargo run --release -q -p stele-tests --bin make-samples -- "$out"
bash scripts/sample-log.sh "$out"
echo
echo "Trusted key: $(cat "$out/key.txt")"
exec node web/serve.mjs --root web/dist --samples "$out" --host 127.0.0.1 --port "${PORT:-8080}"
