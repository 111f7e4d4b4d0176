#!/usr/bin/env bash
# A single-node Slurm cluster for the tests, in a folder of its own:
#
#   tests/slurm/cluster.sh start DIR    # prints the SLURM_CONF to export
#   tests/slurm/cluster.sh stop DIR
#
# Needs root and Debian's slurmctld, slurmd, slurm-client and munge (.ci/run
# installs them). No systemd: the daemons are started by hand, with process
# tracking by /proc (no cgroups), no accounting, and short scheduler and
# credential intervals so that a requeued job starts again in seconds.
# Exit 3 when Slurm cannot run here (not root, not installed), with the
# reason on stderr, so the caller can tell "skipped" from "broken".
set -euo pipefail
cmd=${1:?start or stop}
dir=$(realpath -m "${2:?folder}")
conf=$dir/slurm.conf

stop() {
  if [ -s "$dir/slurmctld.pid" ] && kill -0 "$(cat "$dir/slurmctld.pid")" 2>/dev/null; then
    SLURM_CONF=$conf timeout 10 scancel --quiet --user=root 2>/dev/null || true
  fi
  for pidfile in "$dir/slurmd.pid" "$dir/slurmctld.pid"; do
    if [ -s "$pidfile" ]; then
      pid=$(cat "$pidfile")
      kill "$pid" 2>/dev/null || true
      for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
      kill -9 "$pid" 2>/dev/null || true
      rm -f "$pidfile"
    fi
  done
}

case $cmd in
stop)
  stop
  exit 0
  ;;
start) ;;
*)
  echo "usage: $0 start|stop DIR" >&2
  exit 2
  ;;
esac

if [ "$(id -u)" != 0 ]; then
  echo "Slurm needs root to start its daemons (running as uid $(id -u))" >&2
  exit 3
fi
for tool in slurmctld slurmd sbatch munged; do
  if ! command -v "$tool" >/dev/null && ! [ -x "/usr/sbin/$tool" ]; then
    echo "$tool is not installed (apt-get install slurmctld slurmd slurm-client munge)" >&2
    exit 3
  fi
done

mkdir -p "$dir/ctld" "$dir/d" "$dir/log"
# munge: the key the package made, one daemon for the machine.
if ! [ -S /run/munge/munge.socket.2 ] || ! pgrep -x munged >/dev/null; then
  mkdir -p /run/munge && chown munge:munge /run/munge
  [ -s /etc/munge/munge.key ] || { /usr/sbin/mungekey --create 2>/dev/null || /usr/sbin/create-munge-key -f; chown munge:munge /etc/munge/munge.key; }
  runuser -u munge -- /usr/sbin/munged
fi

# The node as slurmd sees it: CPUs and memory.
read -r cpus memory < <(/usr/sbin/slurmd -C | sed -n 's/.*CPUs=\([0-9]*\).*RealMemory=\([0-9]*\).*/\1 \2/p')
cat >"$conf" <<CONF
ClusterName=lptest
SlurmctldHost=localhost
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
MpiDefault=none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
ReturnToService=2
StateSaveLocation=$dir/ctld
SlurmdSpoolDir=$dir/d
SlurmctldPidFile=$dir/slurmctld.pid
SlurmdPidFile=$dir/slurmd.pid
SlurmctldLogFile=$dir/log/slurmctld.log
SlurmdLogFile=$dir/log/slurmd.log
SlurmctldPort=16817
SlurmdPort=16818
AuthInfo=cred_expire=10
SchedulerParameters=sched_interval=2,bf_interval=2
MinJobAge=600
KillWait=10
NodeName=localhost CPUs=$cpus RealMemory=$memory State=UNKNOWN
PartitionName=debug Nodes=localhost Default=YES MaxTime=INFINITE State=UP
CONF
export SLURM_CONF=$conf
stop
/usr/sbin/slurmctld -f "$conf" -i
/usr/sbin/slurmd -f "$conf" -N localhost
for _ in $(seq 200); do
  if sinfo -h -N -o %t 2>/dev/null | grep -qx idle; then
    echo "$conf"
    exit 0
  fi
  sleep 0.1
done
echo "Slurm did not reach an idle node in 20 s; see $dir/log" >&2
tail -5 "$dir/log/slurmctld.log" "$dir/log/slurmd.log" >&2 || true
exit 1
