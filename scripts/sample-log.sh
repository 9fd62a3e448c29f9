#!/usr/bin/env bash
# Writes a sample log with the stele CLI (init, append, checkpoint, export)
# and a tampered copy of its export, into DIR (default target/samples).
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-target/samples}
stele=target/release/stele
if [ ! -x "$stele" ]; then
  echo "sample-log: $stele is not built yet; skipping the CLI sample" >&2
  exit 0
fi
# The log and its private key live outside the served samples folder.
work=target/demo
log=$work/log
rm -rf "$log" "$out/demo-log" "$out/demo-signing.key"
mkdir -p "$out" "$work"
"$stele" init "$log" --origin demo.stele.example/audit --key-file "$work/signing.key" >/dev/null
for i in $(seq 1 200); do
  printf '{"actor":"user%d","action":"%s","target":"doc/%d","outcome":"success"}\n' $((i % 7)) "$([ $((i % 3)) = 0 ] && echo update || echo read)" $((i % 40))
done | "$stele" append "$log" >/dev/null
"$stele" checkpoint "$log" >/dev/null
"$stele" export "$log" -o "$out/demo.stele"
"$stele" key "$log" > "$out/demo-key.txt"
# The tampered copy: one event of entry 100 changed after the fact.
sed '/"seq":100,/ s/"outcome":"success"/"outcome":"denied"/' "$out/demo.stele" > "$out/demo-tampered.stele"
echo "wrote $out/demo.stele and $out/demo-tampered.stele (key: $(cat "$out/demo-key.txt"))"
# A log with sealed fields (docs/FORMAT.md section 13): emails and IPs are
# sealed, revealed to a demo auditor whose age key is written beside it.
if command -v age-keygen >/dev/null 2>&1; then
  slog=$work/sealed-log
  rm -rf "$slog" "$out/demo-auditor.key"
  "$stele" init "$slog" --origin demo.stele.example/sealed --key-file "$work/sealed-signing.key" \
    --seal /actor/email --seal /ip >/dev/null
  age-keygen -o "$out/demo-auditor.key" 2>/dev/null
  chmod 600 "$out/demo-auditor.key"
  "$stele" auditor add "$slog" "$(age-keygen -y "$out/demo-auditor.key")" 2>/dev/null
  for i in $(seq 1 50); do
    printf '{"action":"%s","actor":{"email":"user%d@example.com","id":"u%d"},"ip":"192.0.2.%d"}\n' \
      "$([ $((i % 4)) = 0 ] && echo export || echo login)" $((i % 5)) $((i % 5)) $((i % 250))
  done | "$stele" append "$slog" >/dev/null
  "$stele" forget "$slog" --subject '{"email":"user3@example.com","id":"u3"}' --by demo >/dev/null
  "$stele" checkpoint "$slog" >/dev/null
  "$stele" export "$slog" -o "$out/demo-sealed.stele" --reveal-to "$(age-keygen -y "$out/demo-auditor.key")"
  "$stele" key "$slog" > "$out/demo-sealed-key.txt"
  echo "wrote $out/demo-sealed.stele: stele verify $out/demo-sealed.stele --key \"\$(cat $out/demo-sealed-key.txt)\" --identity $out/demo-auditor.key"
fi

