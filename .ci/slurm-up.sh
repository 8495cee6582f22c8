#!/bin/bash
# Single-machine SLURM for tests: munged + MariaDB + slurmdbd + slurmctld + N slurmd ("fake
# nodes" n1..nN), all on 127.0.0.1, started by hand (no systemd, no cgroups). Runs as root.
# Accounting (slurmdbd + MariaDB) is on by default: without it, submitit never sees a job that
# ended without a result (scancel, node lost) as done. Idempotent: daemons already running are
# reused, and a cluster that is already up is left alone. Exits non-zero, with the daemons'
# last log lines, when SLURM is not up. Stop it with .ci/slurm-down.sh.
# See /work/shared/RECIPES-services.md, section 1.
set -euo pipefail
SLURM_DIR=${SLURM_DIR:-/tmp/slurm-ci}
NODES=${SLURM_NODES:-2}
CPUS_PER_NODE=${SLURM_CPUS_PER_NODE:-1}
ACCOUNTING=${SLURM_ACCOUNTING:-1}
# a requeued job waits cred_expire seconds before it starts again (SLURM's default: 120)
CRED_EXPIRE=${SLURM_CRED_EXPIRE:-10}
export DEBIAN_FRONTEND=noninteractive

die() {
  echo "slurm-up: $*" >&2
  sinfo >&2 2>&1 || true
  for f in "$SLURM_DIR"/log/*.log; do
    [ -s "$f" ] && { echo "--- $f" >&2; tail -n 15 "$f" >&2; }
  done
  exit 1
}
trap 'die "failed at line $LINENO: $BASH_COMMAND"' ERR
[ "$(id -u)" = 0 ] || { echo "slurm-up: must run as root" >&2; exit 1; }

# alive PIDFILE: the process named in PIDFILE runs (a zombie counts as gone)
alive() {
  [ -s "$1" ] || return 1
  local st; st=$(ps -o stat= -p "$(cat "$1")" 2>/dev/null) || return 1
  [[ $st != Z* ]]
}
# number of nodes that answer (idle, allocated, mixed, completing; not down/drained/unknown)
nodes_up() {
  sinfo -h -N -o '%t' 2>/dev/null | grep -cE '^(idle|alloc|allocated|mix|mixed|comp|completing)$' || true
}
all_running() {
  alive "$SLURM_DIR/slurmctld.pid" || return 1
  for i in $(seq 1 "$NODES"); do alive "$SLURM_DIR/slurmd-n$i.pid" || return 1; done
  if [ "$ACCOUNTING" = 1 ]; then alive "$SLURM_DIR/slurmdbd.pid" || return 1; fi
  [ "$(nodes_up)" = "$NODES" ]
}

pkgs="slurmctld slurmd slurm-client munge"
[ "$ACCOUNTING" = 1 ] && pkgs="$pkgs slurmdbd mariadb-server"
if ! dpkg -s $pkgs >/dev/null 2>&1; then
  echo "slurm-up: installing $pkgs" >&2
  apt-get update -qq || die "apt-get update failed"
  apt-get install -y -qq --no-install-recommends $pkgs >/dev/null || die "apt-get install $pkgs failed"
fi

if command -v sinfo >/dev/null && all_running; then
  echo "slurm: already up, $NODES node(s)"
  exit 0
fi

H=$(hostname -s)
mkdir -p "$SLURM_DIR/state" "$SLURM_DIR/log" /run/munge /etc/slurm
for i in $(seq 1 "$NODES"); do mkdir -p "$SLURM_DIR/spool-n$i"; done
chown munge:munge /run/munge
if [ ! -s /etc/munge/munge.key ]; then # the Debian package normally creates it
  dd if=/dev/urandom of=/etc/munge/munge.key bs=1024 count=1 status=none
  chown munge:munge /etc/munge/munge.key
  chmod 400 /etc/munge/munge.key
fi
if [ "$ACCOUNTING" = 1 ]; then
  ACCT="AccountingStorageType=accounting_storage/slurmdbd
AccountingStorageHost=localhost
AccountingStoragePort=6819"
else
  ACCT="AccountingStorageType=accounting_storage/none"
fi
cat >/etc/slurm/slurm.conf <<CONF
ClusterName=ci
SlurmctldHost=${H}(127.0.0.1)
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
AuthInfo=cred_expire=$CRED_EXPIRE
CryptoType=crypto/munge
MpiDefault=none
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
$ACCT
JobCompType=jobcomp/none
SchedulerType=sched/backfill
SchedulerParameters=batch_sched_delay=0,sched_interval=2,bf_interval=1
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
ReturnToService=2
MailProg=/bin/true
SlurmctldPort=6817
SlurmdPort=6818
StateSaveLocation=$SLURM_DIR/state
SlurmdSpoolDir=$SLURM_DIR/spool-%n
SlurmctldPidFile=$SLURM_DIR/slurmctld.pid
SlurmdPidFile=$SLURM_DIR/slurmd-%n.pid
SlurmctldLogFile=$SLURM_DIR/log/slurmctld.log
SlurmdLogFile=$SLURM_DIR/log/slurmd-%n.log
SlurmctldTimeout=30
SlurmdTimeout=30
InactiveLimit=0
MinJobAge=300
KillWait=5
Waittime=0
NodeName=n[1-$NODES] NodeHostname=$H NodeAddr=127.0.0.1 Port=17001-$((17000 + NODES)) CPUs=$CPUS_PER_NODE RealMemory=4000 State=UNKNOWN
PartitionName=debug Nodes=ALL Default=YES MaxTime=INFINITE State=UP
CONF

alive /run/munge/munged.pid || runuser -u munge -- /usr/sbin/munged
for i in $(seq 1 50); do munge -n 2>/dev/null | unmunge >/dev/null 2>&1 && break; sleep 0.1; done
munge -n | unmunge >/dev/null 2>&1 || die "munged does not answer"

if [ "$ACCOUNTING" = 1 ]; then
  if ! mariadb-admin ping >/dev/null 2>&1; then
    mkdir -p /run/mysqld
    chown mysql:mysql /run/mysqld
    (mariadbd --user=mysql --bind-address=127.0.0.1 --port=3306 --socket=/run/mysqld/mysqld.sock \
      --pid-file=/run/mysqld/mysqld.pid >"$SLURM_DIR/log/mariadb.log" 2>&1 &)
    for i in $(seq 1 150); do mariadb-admin ping >/dev/null 2>&1 && break; sleep 0.1; done
    mariadb-admin ping >/dev/null 2>&1 || die "MariaDB did not start"
  fi
  mariadb -e "CREATE USER IF NOT EXISTS 'slurm'@'localhost' IDENTIFIED BY 'slurm';
              GRANT ALL ON slurm_acct_db.* TO 'slurm'@'localhost';"
  cat >/etc/slurm/slurmdbd.conf <<CONF
AuthType=auth/munge
DbdHost=localhost
DbdAddr=127.0.0.1
DbdPort=6819
SlurmUser=root
StorageType=accounting_storage/mysql
StorageHost=localhost
StoragePort=3306
StorageUser=slurm
StoragePass=slurm
StorageLoc=slurm_acct_db
LogFile=$SLURM_DIR/log/slurmdbd.log
PidFile=$SLURM_DIR/slurmdbd.pid
CONF
  chmod 600 /etc/slurm/slurmdbd.conf
  alive "$SLURM_DIR/slurmdbd.pid" || /usr/sbin/slurmdbd
  for i in $(seq 1 150); do sacctmgr -n list cluster >/dev/null 2>&1 && break; sleep 0.1; done
  sacctmgr -n list cluster >/dev/null 2>&1 || die "slurmdbd does not answer"
  # register the cluster before slurmctld starts (no-op if it exists)
  sacctmgr -n -P list cluster format=cluster 2>/dev/null | grep -qx ci \
    || sacctmgr -i -Q add cluster ci >/dev/null
fi

if alive "$SLURM_DIR/slurmctld.pid"; then
  scontrol reconfigure >/dev/null 2>&1 || true
else
  /usr/sbin/slurmctld
fi
for i in $(seq 1 "$NODES"); do
  alive "$SLURM_DIR/slurmd-n$i.pid" || /usr/sbin/slurmd -N "n$i"
done
for i in $(seq 1 150); do
  if [ "$(nodes_up)" = "$NODES" ]; then
    echo "slurm: $NODES node(s) up (partition debug, accounting=$ACCOUNTING)"
    exit 0
  fi
  sleep 0.2
done
trap - ERR
die "SLURM did not come up: $(nodes_up) of $NODES node(s) answer after 30 s"
