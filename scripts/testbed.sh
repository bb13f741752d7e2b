#!/usr/bin/env bash
# A multi-host test bed on one machine: N "hosts" (2 to 4), each a Linux network namespace
# with a veth pair to a bridge, its own address in 10.77.0.0/24 and its own hostname
# (effh1, effh2, ...), and its own CPU (host i runs on cpu (i-1) mod ncpus), so that Open
# MPI and hwloc see distinct nodes and the traffic crosses a network (TCP over the veths).
#
#   scripts/testbed.sh up N      make hosts effh1..effhN (exit 77 where this machine cannot:
#                                not root, no namespaces); the last line of output is the
#                                mpirun options that launch across them:
#                                  mpirun $(scripts/testbed.sh up 2 | tail -1) -n 2 effcal ...
#   scripts/testbed.sh down      remove everything it made (also after a failed run)
#   scripts/testbed.sh options   print the mpirun options again (hosts already up)
#   scripts/testbed.sh exec H CMD...  run CMD on host H (effh1, or its address), as the
#                                launch agent does
#
# Everything it makes is named eff*: namespaces effh1.., the bridge effbr0 (10.77.0.254,
# mpirun's side), veth pairs effv1/effp1 ... Nothing else is touched. Needs root, iproute2
# and util-linux (installed with apt when missing).
set -euo pipefail

SUBNET=10.77.0
BRIDGE=effbr0
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
SELF="$HERE/testbed.sh"

need() {
    # 77: this machine cannot have a test bed (the tests skip, saying why).
    if [ "$(id -u)" != 0 ]; then
        echo "testbed.sh: needs root (network namespaces)" >&2
        exit 77
    fi
    if ! command -v ip >/dev/null || ! command -v nsenter >/dev/null || ! command -v unshare >/dev/null; then
        export DEBIAN_FRONTEND=noninteractive
        apt-get install -y -q iproute2 util-linux >/dev/null 2>&1 \
            || { apt-get update -qq >/dev/null 2>&1 && apt-get install -y -q iproute2 util-linux >/dev/null 2>&1; } \
            || { echo "testbed.sh: cannot install iproute2 util-linux (apt)" >&2; exit 77; }
    fi
}

hosts() {
    ip netns list 2>/dev/null | awk '{print $1}' | grep -E '^effh[0-9]+$' | sort -V || true
}

options() {
    local list
    list=$(hosts | sed "s/^effh//" | awk -v s="$SUBNET" '{printf "%s%s.%s", sep, s, $1; sep=","}')
    if [ -z "$list" ]; then
        echo "testbed.sh: no hosts are up (scripts/testbed.sh up N)" >&2
        exit 1
    fi
    # The launch agent enters the host's namespaces; ranks go round the hosts (--map-by node);
    # TCP only (no shared memory), over the test bed's subnet; processes are not bound by
    # Open MPI (each host's CPU is its own; effcal binds its threads inside it).
    echo "--host $list --map-by node --mca plm_rsh_agent $HERE/testbed-agent --mca plm_rsh_no_tree_spawn 1 --mca btl tcp,self --mca btl_tcp_if_include $SUBNET.0/24 --mca oob_tcp_if_include $SUBNET.0/24 --bind-to none --oversubscribe"
}

down() {
    for h in $(hosts); do
        # Every process still in the host (a killed job's orted and ranks) goes with it.
        for pid in $(ip netns pids "$h" 2>/dev/null); do kill -9 "$pid" 2>/dev/null || true; done
        ip netns del "$h" 2>/dev/null || true
    done
    for v in $(ip -o link show 2>/dev/null | awk -F': ' '{print $2}' | cut -d@ -f1 | grep -E '^effv[0-9]+$' || true); do
        ip link del "$v" 2>/dev/null || true
    done
    ip link del "$BRIDGE" 2>/dev/null || true
}

up() {
    local n=$1
    if ! [[ "$n" =~ ^[2-4]$ ]]; then
        echo "testbed.sh up N: N is the number of hosts, 2 to 4 (got '$n')" >&2
        exit 2
    fi
    down
    local cpus
    cpus=$(nproc)
    if ! ip link add "$BRIDGE" type bridge; then
        echo "testbed.sh: this machine does not let root make a bridge (network namespaces)" >&2
        exit 77
    fi
    ip addr add "$SUBNET.254/24" dev "$BRIDGE"
    ip link set "$BRIDGE" up
    for i in $(seq 1 "$n"); do
        local h=effh$i
        ip netns add "$h"
        ip link add "effv$i" type veth peer name "effp$i"
        ip link set "effp$i" netns "$h"
        ip link set "effv$i" master "$BRIDGE"
        ip link set "effv$i" up
        ip -n "$h" link set lo up
        ip -n "$h" link set "effp$i" name eth0
        ip -n "$h" addr add "$SUBNET.$i/24" dev eth0
        ip -n "$h" link set eth0 up
        echo "host $h: address $SUBNET.$i, cpu $(( (i - 1) % cpus ))" >&2
    done
    options
}

# The launch agent (as ssh: HOST COMMAND...): runs the command in the host's network
# namespace, in a UTS namespace of its own named after the host, on the host's CPU.
run_on() {
    local host=$1
    shift
    local i
    case "$host" in
        effh[0-9]*) i=${host#effh} ;;
        "$SUBNET".*) i=${host##*.} ;;
        *) echo "testbed.sh exec: unknown host '$host'" >&2; exit 2 ;;
    esac
    local cpu=$(( (i - 1) % $(nproc) ))
    # nsenter, not `ip netns exec`: that remounts /sys for the namespace, hiding the cgroup
    # hierarchy (slurmd needs it); the network namespace is all a host needs of its own.
    exec nsenter --net="/var/run/netns/effh$i" unshare --uts sh -c "hostname effh$i && exec taskset -c $cpu sh -c \"\$0\"" "$*"
}

case "${1:-}" in
    up) need; up "${2:-}" ;;
    down) need; down ;;
    options) options ;;
    exec) shift; run_on "$@" ;;
    *) echo "usage: scripts/testbed.sh up N | down | options | exec HOST CMD..." >&2; exit 2 ;;
esac
