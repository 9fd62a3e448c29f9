#!/usr/bin/env bash
# The servers the PostgreSQL + object storage tests (writer/tests/cluster*.rs)
# talk to: PostgreSQL 15 (the Debian cluster 15/main, a role stele_test that
# may CREATE DATABASE) and moto_server (S3) on 127.0.0.1:5055.
#
#   bash scripts/test-servers.sh start   install what is missing, start what is not running
#   bash scripts/test-servers.sh stop    stop only what `start` started
#
# Safe to run again: what already runs is used and left running. What
# `start` started is noted in target/test-servers/ for `stop`.
set -euo pipefail
cd "$(dirname "$0")/.."

state=target/test-servers
mkdir -p "$state"
S3_PORT=${STELE_TEST_S3_PORT:-5055}
SUDO=""; [ "$(id -u)" = 0 ] || SUDO="sudo"
say() { printf '\n== %s\n' "$*"; }

pg_up() { pg_lsclusters -h 2>/dev/null | awk '$1 == 15 && $2 == "main" {print $4}' | grep -qx online; }
s3_up() { curl -s -o /dev/null --max-time 2 "http://127.0.0.1:$S3_PORT/"; }

start() {
  if ! command -v pg_ctlcluster >/dev/null 2>&1 || ! pg_lsclusters -h 2>/dev/null | awk '{print $1}' | grep -qx 15; then
    say "apt: postgresql-15"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq postgresql-15 >/dev/null
  fi
  if ! pg_up; then
    say "start PostgreSQL 15/main"
    $SUDO pg_ctlcluster 15 main start
    touch "$state/pg.started"
  fi
  for _ in $(seq 1 60); do
    $SUDO runuser -u postgres -- psql -qtAc 'select 1' >/dev/null 2>&1 && break
    sleep 0.5
  done
  # initdb refuses root, so the role is made as the postgres user.
  $SUDO runuser -u postgres -- psql -v ON_ERROR_STOP=1 -qc "DO \$\$BEGIN
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'stele_test') THEN
      CREATE ROLE stele_test LOGIN CREATEDB PASSWORD 'stele_test';
    END IF; END\$\$;" >/dev/null

  if ! command -v moto_server >/dev/null 2>&1; then
    say "pip: moto[server]"
    python3 -m pip install -q 'moto[server]' 2>/dev/null \
      || python3 -m pip install -q --break-system-packages 'moto[server]'
    hash -r
  fi
  if ! s3_up; then
    say "start moto_server on 127.0.0.1:$S3_PORT"
    setsid moto_server -H 127.0.0.1 -p "$S3_PORT" >"$state/moto.log" 2>&1 < /dev/null &
    echo $! >"$state/moto.pid"
    for _ in $(seq 1 120); do s3_up && break; sleep 0.5; done
    s3_up || { echo "moto_server did not come up; see $state/moto.log"; exit 1; }
  fi
}

stop() {
  if [ -f "$state/moto.pid" ]; then
    kill "$(cat "$state/moto.pid")" 2>/dev/null || true
    rm -f "$state/moto.pid"
  fi
  if [ -f "$state/pg.started" ]; then
    $SUDO pg_ctlcluster 15 main stop || true
    rm -f "$state/pg.started"
  fi
}

case "${1:-}" in
  start) start ;;
  stop) stop ;;
  *) echo "usage: $0 start|stop"; exit 2 ;;
esac
