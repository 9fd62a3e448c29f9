#!/usr/bin/env bash
# What one remote `stele monitor URL` poll fetches on a large log: a log of
# ENTRIES/2 entries is polled once (the monitor's state), grown to ENTRIES,
# polled again (consistency from ENTRIES/2), then grown by 1,000 and polled
# again. Each poll prints "B bytes in R requests": the checkpoint and the
# hash tiles of one consistency proof, never entries.
# Usage: scripts/bench-monitor.sh [ENTRIES]   (default 10000000; needs
# target/release/stele and about 200 bytes of disk per entry, removed after)
set -euo pipefail
n=${1:-10000000}
stele=${STELE:-$(cd "$(dirname "$0")/.." && pwd)/target/release/stele}
[ -x "$stele" ] || { echo "build first: cargo build --release -p stele-writer" >&2; exit 2; }
tmp=$(mktemp -d)
server=
cleanup() { [ -n "$server" ] && kill "$server" 2>/dev/null; wait 2>/dev/null; rm -rf "$tmp"; }
trap cleanup EXIT
vkey=$("$stele" init "$tmp/log" --origin bench.example/monitor)
grow() { # grow FROM TO: append entries FROM..TO-1 and sign
  awk -v a="$1" -v b="$2" 'BEGIN { for (i = a; i < b; i++) printf "{\"n\":%d}\n", i }' \
    | "$stele" append "$tmp/log" --checkpoint-every 100000000 >/dev/null
  "$stele" checkpoint "$tmp/log" >/dev/null
}
poll() { # serve read-only, poll once, stop
  "$stele" serve "$tmp/log" --listen 127.0.0.1:0 --read-only > "$tmp/serve.out" 2>/dev/null &
  server=$!
  for _ in $(seq 100); do grep -q listening "$tmp/serve.out" 2>/dev/null && break; sleep 0.1; done
  url=$(sed -n 's/.*listening on //p' "$tmp/serve.out")
  "$stele" monitor "$url" --key "$vkey" --state "$tmp/state" --once 2>&1 | tail -1
  kill "$server"; wait "$server" 2>/dev/null || true
  server=
}
grow 1 $((n / 2))
poll
grow $((n / 2)) "$n"
poll
grow "$n" $((n + 1000))
poll
