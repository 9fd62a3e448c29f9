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
# The simulated-attack demo: a live log, attacked copies, a table of what was caught.
rm -rf target/demo/attacks
target/release/stele demo target/demo/attacks --seconds 5
for f in target/demo/attacks/tampered/*.stele; do cp "$f" "$out/attack-$(basename "$f")"; done
cp target/demo/attacks/key.txt "$out/attack-key.txt"
echo
echo "Trusted key for valid.stele and tampered-*.stele (pre-filled): $(cat "$out/key.txt")"
echo "Trusted key for demo*.stele: $(cat "$out/demo-key.txt" 2>/dev/null)"
echo "Trusted key for attack-*.stele: $(cat "$out/attack-key.txt")"
[ -f "$out/demo-auditor.key" ] && echo "Auditor key for demo-sealed.stele (paste it into \"Auditor key\"): $out/demo-auditor.key (trusted key: $(cat "$out/demo-sealed-key.txt" 2>/dev/null))"
echo "Open http://127.0.0.1:${PORT:-8080}/?demo for the page with the samples listed."
exec node web/serve.mjs --root web/dist --samples "$out" --host 127.0.0.1 --port "${PORT:-8080}"
