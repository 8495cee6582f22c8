#!/bin/bash
# Stop the server that .ci/pg-up.sh started (by its data dir; nothing else is touched).
# Set PG_WIPE=1 to delete the data dir as well.
set -uo pipefail
PGDIR=${PGDIR:-/tmp/pg-ci}
BIN=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1)
if [ -s "$PGDIR/data/postmaster.pid" ]; then
  runuser -u postgres -- "$BIN/pg_ctl" -D "$PGDIR/data" -m fast -w -t 30 stop >/dev/null
fi
[ "${PG_WIPE:-0}" = 1 ] && rm -rf "$PGDIR"
echo "postgres stopped"
