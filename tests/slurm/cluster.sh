#!/usr/bin/env bash
# A throwaway single-node Slurm on this machine, for tests/slurm.rs (and for trying the
# scripts in slurm/ by hand):
#
#   tests/slurm/cluster.sh up DIR     install what is missing (Debian: slurmctld slurmd
#                                     slurm-client munge), write DIR/slurm.conf, start
#                                     munged, slurmctld and slurmd, wait for the node;
#                                     prints `export SLURM_CONF=DIR/slurm.conf`
#   tests/slurm/cluster.sh down DIR   stop the daemons this started (by the PIDs in DIR)
#
# Exit 77 when Slurm cannot be installed here (no apt, not root): the caller skips.
# Everything lives under DIR (state, spool, logs, munge socket); the daemons run as root
# with `-D` in the background, so their PIDs are known and nothing is left behind.
set -euo pipefail

cmd=${1:?usage: cluster.sh up|down DIR}
dir=$(realpath -m "${2:?usage: cluster.sh up|down DIR}")

stop() {
    for d in slurmd slurmctld munged; do
        if [ -f "$dir/$d.pid" ]; then
            pid=$(cat "$dir/$d.pid")
            kill "$pid" 2>/dev/null || true
            for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
            kill -9 "$pid" 2>/dev/null || true
            rm -f "$dir/$d.pid"
        fi
    done
}

if [ "$cmd" = down ]; then
    stop
    exit 0
fi
[ "$cmd" = up ] || { echo "cluster.sh: unknown command '$cmd' (allowed: up, down)" >&2; exit 2; }

need=()
for p in slurmctld slurmd slurm-client munge; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || need+=("$p")
done
if [ ${#need[@]} -gt 0 ]; then
    if ! command -v apt-get >/dev/null || [ "$(id -u)" -ne 0 ]; then
        echo "cluster.sh: cannot install ${need[*]} (needs apt-get and root)" >&2
        exit 77
    fi
    echo "cluster.sh: installing ${need[*]}" >&2
    apt-get update -qq >&2 || true
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >&2 || { echo "cluster.sh: apt-get install ${need[*]} failed" >&2; exit 77; }
fi
[ "$(id -u)" -eq 0 ] || { echo "cluster.sh: the daemons need root" >&2; exit 77; }

mkdir -p "$dir"/{state,spool,log,munge}
host=$(hostname -s)
cpus=$(nproc)
mem=$(awk '/MemTotal/ { print int($2 / 1024 * 0.8) }' /proc/meminfo)
# Ports away from the defaults (6817/6818), in case a real Slurm runs here too.
cat > "$dir/slurm.conf" <<EOF
ClusterName=effcal-test
SlurmctldHost=$host
SlurmctldPort=16817
SlurmdPort=16818
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
AuthInfo=socket=$dir/munge/munge.socket
CredType=cred/munge
StateSaveLocation=$dir/state
SlurmdSpoolDir=$dir/spool
SlurmctldPidFile=$dir/slurmctld.pidfile
SlurmdPidFile=$dir/slurmd.pidfile
SlurmctldLogFile=$dir/log/slurmctld.log
SlurmdLogFile=$dir/log/slurmd.log
MpiDefault=pmix
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
SchedulerType=sched/backfill
ReturnToService=2
SlurmdTimeout=30
InactiveLimit=0
KillWait=5
NodeName=$host CPUs=$cpus RealMemory=$mem State=UNKNOWN
PartitionName=debug Nodes=$host Default=YES MaxTime=INFINITE State=UP
EOF

stop
# munged: its own socket and pid file under DIR, the system's key.
/usr/sbin/munged --force --socket="$dir/munge/munge.socket" --pid-file="$dir/munge/munged.pid" \
    --log-file="$dir/log/munged.log" --seed-file="$dir/munge/seed"
for _ in $(seq 50); do [ -f "$dir/munge/munged.pid" ] && break; sleep 0.1; done
cp "$dir/munge/munged.pid" "$dir/munged.pid"

export SLURM_CONF="$dir/slurm.conf"
/usr/sbin/slurmctld -D -i -f "$SLURM_CONF" > "$dir/log/slurmctld.out" 2>&1 &
echo $! > "$dir/slurmctld.pid"
/usr/sbin/slurmd -D -f "$SLURM_CONF" > "$dir/log/slurmd.out" 2>&1 &
echo $! > "$dir/slurmd.pid"

for _ in $(seq 100); do
    if sinfo -h -N -o '%T' 2>/dev/null | grep -qE '^(idle|mixed|allocated)'; then
        echo "export SLURM_CONF=$SLURM_CONF"
        exit 0
    fi
    sleep 0.2
done
echo "cluster.sh: the node did not come up; logs in $dir/log:" >&2
tail -n 20 "$dir"/log/*.log "$dir"/log/*.out >&2 || true
stop
exit 1
