#!/usr/bin/env bash
# Catch-up of a mirror over loopback vs `stele export` of the same log, in one run.
# Usage: scripts/bench-mirror.sh [ENTRIES]   (default 1000000; needs target/release/stele)
# Prints both times and the ratio (mirror speed / export speed; the issue asks >= 0.5).
#
# scripts/bench-mirror.sh monitor [ENTRIES]   (default 10000000; about 200
# bytes of disk per entry, removed after): what one remote `stele monitor URL`
# poll fetches on a large log. A log of ENTRIES/2 entries is polled once (the
# monitor's state), grown to ENTRIES, polled again (consistency from
# ENTRIES/2), grown by 1,000 and polled again. Each poll prints "B bytes in R
# requests": the checkpoint and the hash tiles of one consistency proof.
set -euo pipefail
mode=mirror
if [ "${1:-}" = monitor ]; then mode=monitor; shift; fi
stele=${STELE:-$(cd "$(dirname "$0")/.." && pwd)/target/release/stele}
[ -x "$stele" ] || { echo "build first: cargo build --release -p stele-writer" >&2; exit 2; }
tmp=$(mktemp -d)
server=
cleanup() { [ -n "$server" ] && kill "$server" 2>/dev/null; wait 2>/dev/null; rm -rf "$tmp"; }
trap cleanup EXIT
now() { date +%s.%N; }

if [ "$mode" = monitor ]; then
  n=${1:-10000000}
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
  exit 0
fi

n=${1:-1000000}
vkey=$("$stele" init "$tmp/log" --origin bench.example/mirror)
awk -v n="$n" 'BEGIN { for (i = 1; i < n; i++) printf "{\"actor\":\"user%d\",\"action\":\"read\",\"n\":%d,\"target\":\"records/%d\"}\n", i % 97, i, i * 7 }' \
  | "$stele" append "$tmp/log" --checkpoint-every 100000000 >/dev/null
"$stele" checkpoint "$tmp/log" >/dev/null
bytes=$(stat -c %s "$tmp/log/entries.jsonl")
t0=$(now)
"$stele" export "$tmp/log" -o "$tmp/export.stele" 2>/dev/null
t1=$(now)
# What a mirror does at least besides moving bytes: verify every entry.
"$stele" verify "$tmp/export.stele" --key "$vkey" >/dev/null 2>&1
t1v=$(now)
# The origin's defaults (access records of bundle reads, --access-rate 600).
"$stele" serve "$tmp/log" --listen 127.0.0.1:0 --public-reads --checkpoint-every 100000000 --checkpoint-interval 1h \
  > "$tmp/serve.out" 2>/dev/null &
server=$!
for _ in $(seq 100); do grep -q listening "$tmp/serve.out" 2>/dev/null && break; sleep 0.1; done
url=$(sed -n 's/.*listening on //p' "$tmp/serve.out")
t2=$(now)
"$stele" mirror "$url" "$tmp/mirror" --key "$vkey" --once --parallel ${PAR:-16} 2>"$tmp/mirror.err" || { echo "stele mirror failed:" >&2; cat "$tmp/mirror.err" >&2; exit 1; }
t3=$(now)
# The same catch-up from an origin that records no stele.access entry
# (`serve --read-only` of the same directory): the mirror's own speed.
kill "$server"; wait "$server" 2>/dev/null || true
"$stele" serve "$tmp/log" --listen 127.0.0.1:0 --read-only > "$tmp/serve2.out" 2>/dev/null &
server=$!
for _ in $(seq 100); do grep -q listening "$tmp/serve2.out" 2>/dev/null && break; sleep 0.1; done
url2=$(sed -n 's/.*listening on //p' "$tmp/serve2.out")
t4=$(now)
"$stele" mirror "$url2" "$tmp/mirror2" --key "$vkey" --once --parallel ${PAR:-16} 2>"$tmp/mirror2.err" || { echo "stele mirror (read-only origin) failed:" >&2; cat "$tmp/mirror2.err" >&2; exit 1; }
t5=$(now)
records=$(grep -c '"kind":"bundles"' "$tmp/log/entries.jsonl" || true)
size=$(sed -n 's/.*"size":\([0-9]*\).*/\1/p' "$tmp/mirror/mirror-state.json")
awk -v n="$n" -v b="$bytes" -v e="$(echo "$t1 - $t0" | bc)" -v v="$(echo "$t1v - $t1" | bc)" -v m="$(echo "$t3 - $t2" | bc)" -v r="$(echo "$t5 - $t4" | bc)" -v s="$size" -v a="$records" 'BEGIN {
  printf "log: %d entries, %.1f MB\n", n, b / 1e6
  printf "stele export:        %.2f s (%.0f MB/s)\n", e, b / 1e6 / e
  printf "stele verify (of that export): %.2f s (%.0f MB/s)\n", v, b / 1e6 / v
  printf "stele mirror --once: %.2f s (%.0f MB/s), %d entries verified and durable; the origin wrote %d stele.access records\n", m, b / 1e6 / m, s, a
  printf "ratio (mirror speed / export speed): %.2f; mirror speed / verify speed: %.2f\n", e / m, v / m
  printf "stele mirror --once from serve --read-only (records nothing): %.2f s (%.0f MB/s), ratio %.2f\n", r, b / 1e6 / r, e / r
}'
tail -1 "$tmp/mirror.err"
tail -1 "$tmp/mirror2.err"
