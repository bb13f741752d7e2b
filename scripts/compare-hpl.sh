#!/usr/bin/env bash
# Measures effcal's HPL-MxP against an FP64 LU peer in the same session, on one node:
# OpenBLAS dgetrf (scipy, all cores) alternating with `effcal hpl-mxp` over one rank per
# core (f64 baseline, bf16, f16; most square grid), ROUNDS times (default 2), then bf16 on
# one rank × 1 thread next to the same on all cores, for the parallel efficiency. Writes
# results/hpl-*.json. Usage: scripts/compare-hpl.sh [n]
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/setup.sh
/usr/bin/python3 -c "import scipy" 2>/dev/null || {
    sudo=""; [ "$(id -u)" -ne 0 ] && sudo="sudo"
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq python3-scipy libopenblas0-pthread >&2
}
n="${1:-16384}"
cores=$(nproc)
rounds="${ROUNDS:-2}"
cargo build --release --bin effcal >&2
mkdir -p results
hpl() { # ranks, then effcal hpl-mxp arguments
    local ranks=$1; shift
    mpirun -n "$ranks" --bind-to core target/release/effcal --threads 1 hpl-mxp --n "$n" --progress-every 0 "$@" \
        | grep -E "^(MxP-|Speed-up|bf16 |f64 )"
}
for round in $(seq 1 "$rounds"); do
    echo "== round $round: OpenBLAS dgetrf ($cores threads), then effcal on $cores ranks"
    OPENBLAS_NUM_THREADS=$cores /usr/bin/python3 scripts/peer_lu.py "$n" 2
    hpl "$cores" --precision f64,bf16,f16 --reps 2 --warmup 1 --json "results/hpl-${cores}ranks-round$round.json"
done
echo "== parallel efficiency: bf16 on 1 rank x 1 thread, then on $cores ranks"
hpl 1 --precision bf16 --reps 2 --warmup 1 --json results/hpl-1rank.json
hpl "$cores" --precision bf16 --reps 2 --warmup 1 --json "results/hpl-${cores}ranks-bf16.json"
