#!/usr/bin/env bash
# A throwaway single-node Slurm on this machine, for tests/slurm.rs (and for trying the
# scripts in slurm/ by hand):
#
#   tests/slurm/cluster.sh up DIR     install what is missing (Debian: slurmctld slurmd
#                                     slurm-client munge), write DIR/slurm.conf, start
#                                     munged, slurmctld and slurmd, wait for the node;
#                                     prints `export SLURM_CONF=DIR/slurm.conf`; the
#                                     node has two stand-in GPUs (gres gpu:2 on /dev/null
#                                     and /dev/zero, no CUDA behind them), so GPU batch
#                                     scripts are taken and run up to effcal's own check
#   tests/slurm/cluster.sh up DIR N   the same with N nodes (2 to 4) on the test bed
#                                     (scripts/testbed.sh up N): one slurmd per host
#                                     effh1..effhN, in its namespaces, on its CPU; slurmctld
#                                     on the bridge's address (other ports than one node's)
#   tests/slurm/cluster.sh down DIR   stop the daemons this started (by the PIDs in DIR),
#                                     and the test bed where it made one
#
# Exit 77 when Slurm cannot be installed here (no apt, not root): the caller skips.
# Everything lives under DIR (state, spool, logs, munge socket); the daemons run as root
# with `-D` in the background, so their PIDs are known and nothing is left behind.
set -euo pipefail

cmd=${1:?usage: cluster.sh up|down DIR}
dir=$(realpath -m "${2:?usage: cluster.sh up|down DIR}")

stop() {
    for d in slurmd slurmd.effh1 slurmd.effh2 slurmd.effh3 slurmd.effh4 slurmctld munged; do
        if [ -f "$dir/$d.pid" ]; then
            pid=$(cat "$dir/$d.pid")
            kill "$pid" 2>/dev/null || true
            for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
            kill -9 "$pid" 2>/dev/null || true
            rm -f "$dir/$d.pid"
        fi
    done
}

testbed="$(dirname "$(realpath "$0")")/../../scripts/testbed.sh"
if [ "$cmd" = down ]; then
    stop
    if [ -f "$dir/testbed" ]; then
        bash "$testbed" down
        rm -f "$dir/testbed"
    fi
    exit 0
fi
nodes=${3:-1}
case "$nodes" in
    1|2|3|4) ;;
    *) echo "cluster.sh: N is the number of nodes, 1 to 4 (got '$nodes')" >&2; exit 2 ;;
esac
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
# Ports away from the defaults (6817/6818), in case a real Slurm runs here too; a test-bed
# cluster has its own, so it can run beside a one-node one.
ctld="$host" ctld_port=16817 slurmd_port=16818 tmpfs_line=
nodelines="NodeName=$host CPUs=$cpus RealMemory=$mem Gres=gpu:2 State=UNKNOWN"
printf 'Name=gpu File=/dev/null\nName=gpu File=/dev/zero\n' > "$dir/gres.conf"
partition_nodes=$host
if [ "$nodes" -gt 1 ]; then
    [ "$(id -u)" -eq 0 ] || { echo "cluster.sh: the test bed needs root" >&2; exit 77; }
    set +e
    bash "$testbed" up "$nodes" > "$dir/log/testbed.out" 2>&1
    code=$?
    set -e
    [ $code -eq 77 ] && { cat "$dir/log/testbed.out" >&2; exit 77; }
    [ $code -eq 0 ] || { cat "$dir/log/testbed.out" >&2; exit 1; }
    touch "$dir/testbed"
    ctld="$host(10.77.0.254)" ctld_port=16827 slurmd_port=16828
    # A temporary file system per node (TmpFS expands %n): Slurm's PMIx plugin makes the
    # same directory names in it on every node of a step.
    mkdir -p "$dir/tmp"
    tmpfs_line="TmpFS=$dir/tmp/%n"
    nodelines="" partition_nodes=""
    : > "$dir/gres.conf"
    for i in $(seq 1 "$nodes"); do
        nodelines+="NodeName=effh$i NodeAddr=10.77.0.$i CPUs=1 RealMemory=$(( mem / nodes )) State=UNKNOWN"$'\n'
        partition_nodes+="${partition_nodes:+,}effh$i"
        mkdir -p "$dir/tmp/effh$i"
    done
fi
cat > "$dir/slurm.conf" <<EOF
ClusterName=effcal-test
GresTypes=gpu
SlurmctldHost=$ctld
SlurmctldPort=$ctld_port
SlurmdPort=$slurmd_port
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
AuthInfo=socket=$dir/munge/munge.socket
CredType=cred/munge
StateSaveLocation=$dir/state
SlurmdSpoolDir=$dir/spool/%n
SlurmctldPidFile=$dir/slurmctld.pidfile
SlurmdPidFile=$dir/slurmd.%n.pidfile
SlurmctldLogFile=$dir/log/slurmctld.log
SlurmdLogFile=$dir/log/slurmd.%n.log
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
$tmpfs_line
$nodelines
PartitionName=debug Nodes=$partition_nodes Default=YES MaxTime=INFINITE State=UP
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
if [ "$nodes" -eq 1 ]; then
    /usr/sbin/slurmd -D -f "$SLURM_CONF" > "$dir/log/slurmd.out" 2>&1 &
    echo $! > "$dir/slurmd.pid"
else
    # Each slurmd enters its host as Open MPI's launch agent does (the PID stays slurmd's:
    # every step execs the next).
    for i in $(seq 1 "$nodes"); do
        mkdir -p "$dir/spool/effh$i"
        "$(dirname "$testbed")/testbed-agent" "effh$i" exec /usr/sbin/slurmd -D -N "effh$i" -f "$SLURM_CONF" > "$dir/log/slurmd.effh$i.out" 2>&1 &
        echo $! > "$dir/slurmd.effh$i.pid"
    done
fi

for _ in $(seq 100); do
    if [ "$(sinfo -h -N -o '%T' 2>/dev/null | grep -cE '^(idle|mixed|allocated)')" -ge "$nodes" ]; then
        echo "export SLURM_CONF=$SLURM_CONF"
        exit 0
    fi
    sleep 0.2
done
echo "cluster.sh: the node did not come up; logs in $dir/log:" >&2
tail -n 20 "$dir"/log/*.log "$dir"/log/*.out >&2 || true
stop
if [ -f "$dir/testbed" ]; then
    bash "$testbed" down
    rm -f "$dir/testbed"
fi
exit 1
