#!/usr/bin/env bash
# Starts and stops a private one-node Slurm cluster on 127.0.0.1 for tests:
# munged + slurmctld + slurmd, all running as the calling user (root in
# containers), every file (config, MUNGE key and socket, state, spool, logs,
# pid files) under one directory. No accounting daemon, no cgroups
# (proctrack/linuxproc, task/none), so it works inside a container. It does
# not touch /etc/slurm, /etc/munge or any system-wide daemon.
#
# It is not a production setup: one node, SlurmUser = the caller, a fresh
# MUNGE key per cluster.
#
# usage:
#   slurm-cluster.sh start DIR   start a cluster under DIR (created if needed);
#                                prints the line 'export SLURM_CONF=DIR/slurm.conf'
#                                (also written to DIR/env.sh). Clients
#                                (sbatch, squeue, scancel, sinfo) find the
#                                cluster through SLURM_CONF.
#                                Exit 0 once the node is idle; exit 3 when a
#                                daemon cannot start (missing packages, no
#                                permission), with the reason on stderr and the
#                                daemons already started stopped again.
#   slurm-cluster.sh stop DIR    stop the daemons started under DIR (SIGTERM,
#                                then SIGKILL after 10 s) and cancel its jobs.
#   slurm-cluster.sh status DIR  print sinfo/squeue for the cluster under DIR.
#   slurm-cluster.sh demo        start a cluster in a temporary directory, run
#                                `sbatch --array=0-3%2`, check that the four
#                                tasks ran with at most two at a time, stop it.
set -euo pipefail

SBIN_PATHS=/usr/sbin:/usr/bin:/sbin:/bin
export PATH="$PATH:$SBIN_PATHS"

die_unavailable() {
  echo "slurm-cluster: cannot start: $*" >&2
  exit 3
}

# A TCP port on 127.0.0.1 nobody listens on (best effort: bash /dev/tcp probe).
free_port() {
  local p i
  for i in $(seq 1 200); do
    p=$(( 20000 + (RANDOM * 32768 + RANDOM) % 40000 ))
    if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then
      echo "$p"
      return 0
    fi
  done
  return 1
}

pid_alive() { [ -n "${1:-}" ] && kill -0 "$1" 2>/dev/null; }

stop_cluster() {
  local dir=$1
  [ -d "$dir" ] || return 0
  if [ -f "$dir/slurm.conf" ] && command -v scancel >/dev/null 2>&1 && [ -f "$dir/slurmctld.pid" ] &&
     pid_alive "$(cat "$dir/slurmctld.pid")"; then
    SLURM_CONF="$dir/slurm.conf" timeout 5 scancel --full --quiet --user "$(id -un)" 2>/dev/null || true
  fi
  # slurmd first (it may still run job steps), then the controller, then munged.
  local name pid i
  for name in slurmd slurmctld munged; do
    [ -f "$dir/$name.pid" ] || continue
    pid=$(cat "$dir/$name.pid")
    if pid_alive "$pid"; then
      kill -TERM "$pid" 2>/dev/null || true
      for i in $(seq 1 100); do
        pid_alive "$pid" || break
        sleep 0.1
      done
      if pid_alive "$pid"; then
        echo "slurm-cluster: $name (pid $pid) ignored SIGTERM for 10 s; sending SIGKILL" >&2
        kill -KILL "$pid" 2>/dev/null || true
      fi
    fi
    rm -f "$dir/$name.pid"
  done
  # Job steps (slurmstepd) outlive slurmd by design, and so may the programs
  # of a job; end those of this cluster: processes whose environment names
  # this cluster's SLURM_CONF and, for job programs, carries SLURM_JOB_ID
  # (the caller and this script have no SLURM_JOB_ID of this cluster).
  local p env
  for p in /proc/[0-9]*; do
    p=${p#/proc/}
    [ "$p" = "$$" ] && continue
    env=$( { tr '\0' '\n' <"/proc/$p/environ"; } 2>/dev/null) || continue
    printf '%s\n' "$env" | grep -qx "SLURM_CONF=$dir/slurm.conf" || continue
    if [ "$(cat "/proc/$p/comm" 2>/dev/null)" = slurmstepd ] || printf '%s\n' "$env" | grep -q '^SLURM_JOB_ID='; then
      kill -KILL "$p" 2>/dev/null || true
    fi
  done
}

start_cluster() {
  local dir=$1
  mkdir -p "$dir"
  dir=$(cd "$dir" && pwd)
  for b in munged mungekey slurmctld slurmd sbatch sinfo scontrol; do
    command -v "$b" >/dev/null 2>&1 || die_unavailable "'$b' not found (run scripts/install-slurm.sh)"
  done
  if [ -f "$dir/slurmctld.pid" ] && pid_alive "$(cat "$dir/slurmctld.pid")"; then
    die_unavailable "a cluster is already running under $dir (stop it first)"
  fi

  local user node cpus ctld_port slurmd_port
  user=$(id -un)
  node=$(hostname -s 2>/dev/null || hostname)
  cpus=$(nproc)
  ctld_port=$(free_port) || die_unavailable "no free TCP port found"
  slurmd_port=$(free_port) || die_unavailable "no free TCP port found"
  while [ "$slurmd_port" = "$ctld_port" ]; do slurmd_port=$(free_port); done
  mkdir -p "$dir/state" "$dir/spool" "$dir/log" "$dir/munge"
  chmod 700 "$dir/munge"

  # MUNGE: a private key and socket.
  rm -f "$dir/munge/munge.key"
  mungekey --create --keyfile="$dir/munge/munge.key" --bits=1024 >/dev/null 2>&1 ||
    die_unavailable "mungekey --create failed"
  chmod 400 "$dir/munge/munge.key"
  munged --force --key-file="$dir/munge/munge.key" --socket="$dir/munge/munge.sock" \
    --pid-file="$dir/munged.pid" --log-file="$dir/log/munged.log" \
    --seed-file="$dir/munge/munged.seed" >"$dir/log/munged.out" 2>&1 ||
    { cat "$dir/log/munged.out" >&2; stop_cluster "$dir"; die_unavailable "munged failed to start (log: $dir/log/munged.log)"; }

  cat >"$dir/slurm.conf" <<EOF
# Generated by kvlab scripts/slurm-cluster.sh: one node, one partition, no accounting.
ClusterName=kvlabtest
SlurmctldHost=$node(127.0.0.1)
SlurmctldPort=$ctld_port
SlurmdPort=$slurmd_port
SlurmUser=$user
SlurmdUser=$user
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket=$dir/munge/munge.sock
StateSaveLocation=$dir/state
SlurmdSpoolDir=$dir/spool/%n
SlurmctldPidFile=$dir/slurmctld.conf.pid
SlurmdPidFile=$dir/slurmd.conf.pid
SlurmctldLogFile=$dir/log/slurmctld.log
SlurmdLogFile=$dir/log/slurmd.log
SlurmctldDebug=info
SlurmdDebug=info
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
MpiDefault=none
ReturnToService=2
MailProg=/bin/true
SlurmdTimeout=30
InactiveLimit=0
KillWait=2
MinJobAge=300
MaxArraySize=10001
NodeName=$node NodeAddr=127.0.0.1 NodeHostname=$node CPUs=$cpus State=UNKNOWN
PartitionName=debug Nodes=$node Default=YES MaxTime=INFINITE State=UP
EOF
  export SLURM_CONF="$dir/slurm.conf"
  printf 'export SLURM_CONF=%q\n' "$dir/slurm.conf" >"$dir/env.sh"

  # -D: stay in the foreground so that $! is the daemon; -i: ignore stale state.
  setsid slurmctld -D -i -f "$dir/slurm.conf" >"$dir/log/slurmctld.out" 2>&1 </dev/null &
  echo $! >"$dir/slurmctld.pid"
  local i ok=0
  for i in $(seq 1 100); do
    if ! pid_alive "$(cat "$dir/slurmctld.pid")"; then break; fi
    if scontrol ping 2>/dev/null | grep -q "UP"; then ok=1; break; fi
    sleep 0.1
  done
  if [ $ok != 1 ]; then
    tail -n 20 "$dir/log/slurmctld.log" "$dir/log/slurmctld.out" >&2 2>/dev/null || true
    stop_cluster "$dir"
    die_unavailable "slurmctld did not come up (log: $dir/log/slurmctld.log)"
  fi

  setsid slurmd -D -N "$node" -f "$dir/slurm.conf" >"$dir/log/slurmd.out" 2>&1 </dev/null &
  echo $! >"$dir/slurmd.pid"
  ok=0
  local state=""
  for i in $(seq 1 200); do
    if ! pid_alive "$(cat "$dir/slurmd.pid")"; then break; fi
    state=$(sinfo -h -N -o '%T' 2>/dev/null | head -n1 || true)
    if [ "$state" = "idle" ]; then ok=1; break; fi
    sleep 0.1
  done
  if [ $ok != 1 ]; then
    tail -n 20 "$dir/log/slurmd.log" "$dir/log/slurmd.out" >&2 2>/dev/null || true
    stop_cluster "$dir"
    die_unavailable "slurmd did not register an idle node (last state '${state}'; log: $dir/log/slurmd.log)"
  fi
  echo "export SLURM_CONF=$dir/slurm.conf"
}

DEMO_DIR=""
demo() {
  DEMO_DIR=$(mktemp -d "${TMPDIR:-/tmp}/kvlab-slurm-demo-XXXXXX")
  trap 'stop_cluster "$DEMO_DIR/cluster"; rm -rf "$DEMO_DIR"' EXIT
  local dir=$DEMO_DIR
  start_cluster "$dir/cluster" >/dev/null
  export SLURM_CONF="$dir/cluster/slurm.conf"
  mkdir -p "$dir/out"
  cat >"$dir/demo.sbatch" <<EOF
#!/bin/bash
#SBATCH --job-name=kvlab-demo
#SBATCH --output=$dir/out/%A_%a.out
#SBATCH --ntasks=1
#SBATCH --cpus-per-task=1
echo "task \$SLURM_ARRAY_TASK_ID job \$SLURM_ARRAY_JOB_ID node \$SLURMD_NODENAME start \$(date +%s.%N)"
sleep 2
echo "end \$(date +%s.%N)"
EOF
  local out jobid
  out=$(sbatch --parsable --array=0-3%2 "$dir/demo.sbatch")
  jobid=${out%%;*}
  echo "demo: submitted array job $jobid (0-3%2)"
  local i max_running=0 n
  for i in $(seq 1 600); do
    n=$(squeue -h -j "$jobid" -t RUNNING -o %i 2>/dev/null | wc -l)
    [ "$n" -gt "$max_running" ] && max_running=$n
    if [ -z "$(squeue -h -j "$jobid" -o %i 2>/dev/null)" ]; then break; fi
    sleep 0.1
  done
  local done_count
  done_count=$(grep -l '^end ' "$dir"/out/"${jobid}"_*.out 2>/dev/null | wc -l)
  cat "$dir"/out/*.out
  echo "demo: $done_count of 4 tasks finished; at most $max_running ran at once"
  if [ "$done_count" != 4 ] || [ "$max_running" -gt 2 ]; then
    echo "demo: FAILED" >&2
    exit 1
  fi
  echo "demo: OK"
}

cmd=${1:-}
case "$cmd" in
  start) [ $# -eq 2 ] || { echo "usage: $0 start DIR" >&2; exit 2; }; start_cluster "$2" ;;
  stop) [ $# -eq 2 ] || { echo "usage: $0 stop DIR" >&2; exit 2; }; stop_cluster "$2" ;;
  status)
    [ $# -eq 2 ] || { echo "usage: $0 status DIR" >&2; exit 2; }
    export SLURM_CONF="$2/slurm.conf"
    sinfo
    squeue
    ;;
  demo) demo ;;
  *) echo "usage: $0 start DIR | stop DIR | status DIR | demo" >&2; exit 2 ;;
esac
