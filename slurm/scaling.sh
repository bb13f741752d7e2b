#!/bin/bash
# Scaling sweep: one sbatch job per node count, from slurm/effcal.sbatch, each writing its
# own calibration; merge them afterwards into one document with the parallel efficiencies:
#
#     bash slurm/scaling.sh 1 2 4 8            # submits 4 jobs
#     effcal merge results/scaling-*.json --out results/scaling.json
#
# Weak scaling (the problem grows with the nodes) is what GEMM does by itself and what a
# plan's stencil does with a per-rank size; strong scaling keeps the plan's sizes. Set the
# ranks and threads per node as for effcal.sbatch:
#   RANKS_PER_NODE (default: effcal.sbatch's own, one per core: the node's cores / THREADS,
#   counted on the node)  THREADS (default 1)
#   TIME (default 00:30:00)  PARTITION, ACCOUNT (passed when set)
#   EFFCAL_PLAN, EFFCAL_BIN, EFFCAL_MPI as for effcal.sbatch.
set -euo pipefail
cd "$(dirname "$0")/.."
[ $# -ge 1 ] || { echo "usage: slurm/scaling.sh NODES... (e.g. 1 2 4 8)" >&2; exit 2; }
threads=${THREADS:-1}
extra=()
[ -n "${PARTITION:-}" ] && extra+=(--partition="$PARTITION")
[ -n "${ACCOUNT:-}" ] && extra+=(--account="$ACCOUNT")
mkdir -p results
for n in "$@"; do
    [[ "$n" =~ ^[1-9][0-9]*$ ]] || { echo "scaling.sh: node count '$n' is not a positive integer" >&2; exit 2; }
    per_node=()
    [ -n "${RANKS_PER_NODE:-}" ] && per_node=(--ntasks-per-node="$RANKS_PER_NODE")
    EFFCAL_OUT="results/scaling-${n}n-%j.json" sbatch --nodes="$n" "${per_node[@]}" --cpus-per-task="$threads" \
        --time="${TIME:-00:30:00}" --job-name="effcal-${n}n" "${extra[@]}" --export=ALL slurm/effcal.sbatch
done
