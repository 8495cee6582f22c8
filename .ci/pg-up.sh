#!/bin/bash
# Throw-away PostgreSQL for tests: own data dir, 127.0.0.1 only, trust auth, no fsync.
# Runs as root (the server itself runs as `postgres` through runuser). Idempotent: a server
# already running on this data dir is reused. Stop it with .ci/pg-down.sh.
# See /work/shared/RECIPES-services.md, section 4. fsync=off and friends: tests only.
set -euo pipefail
PGDIR=${PGDIR:-/tmp/pg-ci}; PGPORT=${PGPORT:-55432}; PGDB=${PGDB:-hpo}
dpkg -s postgresql-15 >/dev/null 2>&1 || {
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null
}
BIN=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1)
mkdir -p "$PGDIR"; chown postgres:postgres "$PGDIR"
if [ ! -s "$PGDIR/data/PG_VERSION" ]; then
  runuser -u postgres -- "$BIN/initdb" -D "$PGDIR/data" -U postgres --auth=trust -E UTF8 \
    --locale=C.UTF-8 >/dev/null
fi
if ! runuser -u postgres -- "$BIN/pg_ctl" -D "$PGDIR/data" status >/dev/null 2>&1; then
  runuser -u postgres -- "$BIN/pg_ctl" -D "$PGDIR/data" -l "$PGDIR/server.log" -w -t 60 \
    -o "-c listen_addresses=127.0.0.1 -p $PGPORT -k $PGDIR -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=200" \
    start >/dev/null || { tail -20 "$PGDIR/server.log" >&2; exit 1; }
fi
"$BIN/pg_isready" -q -h 127.0.0.1 -p "$PGPORT"
psql -h 127.0.0.1 -p "$PGPORT" -U postgres -Atqc "SELECT 1 FROM pg_database WHERE datname='$PGDB'" | grep -q 1 \
  || psql -h 127.0.0.1 -p "$PGPORT" -U postgres -qc "CREATE DATABASE $PGDB"
echo "postgres: postgresql://postgres@127.0.0.1:$PGPORT/$PGDB"
