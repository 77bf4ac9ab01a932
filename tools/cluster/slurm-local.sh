#!/usr/bin/env bash
# A real one-node Slurm on this machine, for CI and for trying `--executor slurm` (docs/distributed.md).
#   sudo tools/cluster/slurm-local.sh start    # idempotent: installs slurm-wlm + munge (apt), writes the config,
#                                              # starts munged, slurmctld, slurmd, waits for the node to be idle
#   sudo tools/cluster/slurm-local.sh stop     # stops the three daemons it started
#   tools/cluster/slurm-local.sh status
# Made for a container (no systemd, no cgroups): ProctrackType=proctrack/linuxproc, TaskPlugin=task/none.
# No slurmdbd: `sacct` answers that accounting is disabled; finished tasks are recorded by
# JobCompType=jobcomp/filetxt in $DISTILL_SLURM_LOG/jobcomp.log, and squeue / scontrol follow the jobs.
set -euo pipefail

LOGDIR="${DISTILL_SLURM_LOG:-/var/log/distill-slurm}"
STATE=/var/lib/distill-slurm
CONF=/etc/slurm/slurm.conf
CTLD_PID=/run/slurmctld.pid
SLURMD_PID=/run/slurmd.pid
MUNGE_PID=/run/munge/munged.pid

say() { echo "slurm-local: $*"; }
need_root() { [ "$(id -u)" = 0 ] || { echo "slurm-local: '$1' needs root (it installs packages and starts daemons): sudo $0 $1" >&2; exit 2; }; }
alive() { [ -s "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null; }

install() {
  if command -v slurmctld >/dev/null && command -v slurmd >/dev/null && command -v munged >/dev/null; then return; fi
  say "installing slurm-wlm and munge (apt)"
  local t0=$SECONDS
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends slurm-wlm munge >/dev/null
  say "installed in $((SECONDS - t0)) s"
}

write_conf() {
  local host cpus tmp
  host="$(hostname -s)"
  cpus="$(nproc)"
  mkdir -p /etc/slurm "$STATE/ctld" "$STATE/d" "$LOGDIR"
  tmp="$(mktemp)"
  cat >"$tmp" <<CONF
# written by tools/cluster/slurm-local.sh: one node, no cgroups, no accounting database
ClusterName=distill-local
SlurmctldHost=${host}(127.0.0.1)
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
StateSaveLocation=$STATE/ctld
SlurmdSpoolDir=$STATE/d
SlurmctldPidFile=$CTLD_PID
SlurmdPidFile=$SLURMD_PID
SlurmctldLogFile=$LOGDIR/slurmctld.log
SlurmdLogFile=$LOGDIR/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/filetxt
JobCompLoc=$LOGDIR/jobcomp.log
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
SchedulerType=sched/backfill
ReturnToService=2
MinJobAge=600
MaxArraySize=10001
NodeName=${host} NodeAddr=127.0.0.1 CPUs=${cpus} State=UNKNOWN
PartitionName=main Nodes=${host} Default=YES MaxTime=INFINITE State=UP
CONF
  if ! cmp -s "$tmp" "$CONF"; then
    mv "$tmp" "$CONF"
    chmod 644 "$CONF"
    CONF_CHANGED=1
  else
    rm -f "$tmp"
  fi
}

munge_key() {
  if [ ! -s /etc/munge/munge.key ]; then
    mkdir -p /etc/munge
    dd if=/dev/urandom of=/etc/munge/munge.key bs=1024 count=1 status=none
  fi
  chown munge:munge /etc/munge/munge.key
  chmod 400 /etc/munge/munge.key
  mkdir -p /run/munge /var/log/munge /var/lib/munge
  chown munge:munge /run/munge /var/log/munge /var/lib/munge
}

wait_idle() {
  local host state
  host="$(hostname -s)"
  for _ in $(seq 1 60); do
    state="$(sinfo -h -N -n "$host" -o %t 2>/dev/null | head -1 || true)"
    case "$state" in
      idle|mix|alloc) say "node $host is $state"; return 0 ;;
      down*|drain*|drng*) scontrol update nodename="$host" state=resume >/dev/null 2>&1 || true ;;
    esac
    sleep 1
  done
  echo "slurm-local: the node did not become idle in 60 s (state '${state:-none}'); see $LOGDIR/slurmctld.log and $LOGDIR/slurmd.log" >&2
  return 1
}

start() {
  need_root start
  install
  CONF_CHANGED=0
  write_conf
  munge_key
  if [ "$CONF_CHANGED" = 1 ] && { alive "$CTLD_PID" || alive "$SLURMD_PID"; }; then
    say "slurm.conf changed: restarting the daemons"
    stop_daemons
  fi
  alive "$MUNGE_PID" || { runuser -u munge -- /usr/sbin/munged; say "munged started"; }
  alive "$CTLD_PID" || { slurmctld; say "slurmctld started"; }
  alive "$SLURMD_PID" || { slurmd; say "slurmd started"; }
  wait_idle
}

stop_one() {
  local pidfile="$1" name="$2"
  if alive "$pidfile"; then
    local pid
    pid="$(cat "$pidfile")"
    kill "$pid"
    for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
    say "$name stopped"
  fi
}

stop_daemons() {
  stop_one "$SLURMD_PID" slurmd
  stop_one "$CTLD_PID" slurmctld
}

case "${1:-}" in
  start) start ;;
  stop)
    need_root stop
    stop_daemons
    stop_one "$MUNGE_PID" munged
    ;;
  status)
    for p in "$MUNGE_PID:munged" "$CTLD_PID:slurmctld" "$SLURMD_PID:slurmd"; do
      if alive "${p%%:*}"; then say "${p##*:} running (pid $(cat "${p%%:*}"))"; else say "${p##*:} not running"; fi
    done
    command -v sinfo >/dev/null && sinfo 2>/dev/null || true
    ;;
  *) echo "usage: $0 start|stop|status" >&2; exit 2 ;;
esac
