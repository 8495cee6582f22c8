#!/bin/bash
# Stop what .ci/slurm-up.sh started, by PID file only (nothing else is touched): running jobs
# are cancelled, then slurmd, slurmctld, slurmdbd, MariaDB and munged stop. Idempotent.
# Set SLURM_WIPE=1 to delete the state dir as well (job ids then restart at 1).
set -uo pipefail
SLURM_DIR=${SLURM_DIR:-/tmp/slurm-ci}
command -v scancel >/dev/null && [ -s "$SLURM_DIR/slurmctld.pid" ] \
  && timeout 10 scancel --quiet -u "$(id -un)" 2>/dev/null
# gone = no such PID, or a zombie waiting for PID 1 to reap it
gone() {
  local st
  st=$(ps -o stat= -p "$1" 2>/dev/null) || return 0
  [[ $st == Z* ]]
}
stop() {
  [ -s "$1" ] || return 0
  local p i
  p=$(cat "$1")
  kill "$p" 2>/dev/null || { rm -f "$1"; return 0; }
  for i in $(seq 1 100); do
    gone "$p" && { rm -f "$1"; return 0; }
    sleep 0.1
  done
  echo "slurm-down: $1 ($p) did not stop in 10 s; killing it" >&2
  kill -9 "$p" 2>/dev/null
  rm -f "$1"
}
for f in "$SLURM_DIR"/slurmd-*.pid; do [ -e "$f" ] && stop "$f"; done
stop "$SLURM_DIR/slurmctld.pid"
stop "$SLURM_DIR/slurmdbd.pid"
stop /run/mysqld/mysqld.pid
stop /run/munge/munged.pid
[ "${SLURM_WIPE:-0}" = 1 ] && rm -rf "$SLURM_DIR"
echo "slurm stopped"
exit 0
