#!/usr/bin/env bash
# Benchmark (not a test): batched HTTP ingest through 1, 2 and 3
# `stele serve --db … --objects …` front-ends beside a file log's server, and
# tile reads from object storage beside files, in one run on this machine.
# Starts PostgreSQL and moto if needed (scripts/test-servers.sh), makes a
# database and a bucket, and drops the database afterwards.
#
#   bash scripts/bench-cluster.sh [stele bench-cluster options, e.g. --duration 10s --batch 1000]
set -euo pipefail
cd "$(dirname "$0")/.."
# Servers an earlier `test-servers.sh start` left running stay running.
keep=no; { [ -e target/test-servers/pg.started ] || [ -e target/test-servers/moto.pid ]; } && keep=yes
bash scripts/test-servers.sh start
trap '[ $keep = yes ] || bash scripts/test-servers.sh stop' EXIT
# A release build (debug is several times slower and says nothing about speed).
BIN=${STELE_BIN:-target/release/stele}
[ -n "${STELE_BIN:-}" ] || cargo build --release -q --workspace --bins  # the selection scripts/build.sh builds (another one rebuilds every dependency)
PG=${STELE_TEST_PG:-postgres://stele_test:stele_test@127.0.0.1:5432/postgres}
S3=${STELE_TEST_S3:-http://127.0.0.1:5055}
name=stele_bench_$$
bucket=stele-bench-$$
psql "$PG" -qc "CREATE DATABASE $name"
trap 'psql "$PG" -qc "DROP DATABASE IF EXISTS $name WITH (FORCE)"; [ $keep = yes ] || bash scripts/test-servers.sh stop' EXIT
curl -sf -X PUT "$S3/$bucket" >/dev/null
export AWS_ENDPOINT_URL=$S3 AWS_ACCESS_KEY_ID=bench AWS_SECRET_ACCESS_KEY=bench AWS_REGION=us-east-1
nice "$BIN" bench-cluster --db "${PG%/*}/$name" --objects "s3://$bucket/log" "$@"
