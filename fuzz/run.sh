#!/usr/bin/env bash
# Runs every fuzz target for SECONDS seconds (default 60), one after the other,
# seeded with the shared test vectors. Needs nightly and cargo-fuzz:
#   rustup toolchain install nightly && cargo install cargo-fuzz
# Usage: fuzz/run.sh [SECONDS] [TARGET...]
# Prints one line per target: executions, and whether it found a crash
# (crash inputs are kept in fuzz/artifacts/TARGET/).
set -euo pipefail
cd "$(dirname "$0")"
secs=${1:-60}
shift || true
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(entry_line note proofs export stream_chunks differential trusted_checkpoint sealed_records)
cargo +nightly fuzz build -O
summary=()
status=0
for t in "${targets[@]}"; do
  mkdir -p "corpus/$t"
  # Seeds: every shared vector; entry lines and notes for the parsers.
  for f in ../tests/vectors/*.stele ../tests/vectors/sealed/*.stele ../tests/vectors/*.tlog-proof ../tests/vectors/*.trusted ../tests/vectors/*.note; do
    cp -n "$f" "corpus/$t/seed-$(basename "$f")" 2>/dev/null || true
  done
  if [ "$t" = entry_line ]; then
    grep -h '^{' ../tests/vectors/valid-log.stele | head -20 | split -l 1 - "corpus/$t/seed-line-" || true
  fi
  # The verifier targets cost time in proportion to input size: keep inputs
  # short there so they run many more cases (over-long lines have vectors).
  case "$t" in export|stream_chunks|differential|sealed_records) maxlen=8192 ;; *) maxlen=70000 ;; esac
  log=$(mktemp)
  if cargo +nightly fuzz run -O "$t" -- -max_total_time="$secs" -max_len=$maxlen -print_final_stats=1 >"$log" 2>&1; then
    ok=ok
  else
    ok="CRASH (see fuzz/artifacts/$t and $log)"; status=1
  fi
  execs=$(grep -m1 'stat::number_of_executed_units' "$log" | awk '{print $2}')
  summary+=("$t: ${execs:-?} executions in ${secs}s: $ok")
  echo "${summary[-1]}"
  [ "$ok" = ok ] && rm -f "$log"
done
echo "== summary"
printf '%s\n' "${summary[@]}"
exit $status
