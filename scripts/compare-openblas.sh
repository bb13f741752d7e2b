#!/usr/bin/env bash
# Measures effcal's GEMM against OpenBLAS in the same session, on one node, in both
# layouts: 1 rank × all cores, and one rank per core × 1 thread (StarDGEMM style; the peer
# runs one single-threaded process per core at the same time). Writes results/*.json and
# prints the peer lines next to effcal's tables. The machine may be shared and noisy, so the
# f64/f32 comparison alternates peer and effcal for ROUNDS rounds (default 3): compare the
# pairs, not runs far apart. Usage: scripts/compare-openblas.sh [n]
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/setup.sh
command -v /usr/bin/python3 >/dev/null && /usr/bin/python3 -c "import numpy" 2>/dev/null || {
    sudo=""; [ "$(id -u)" -ne 0 ] && sudo="sudo"
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq python3-numpy libopenblas0-pthread >&2
}
n="${1:-4096}"
cores=$(nproc)
cargo build --release --bin effcal >&2
cfg=$(mktemp --suffix=.toml)
sed "s/^n = 4096/n = $n/" configs/local.toml > "$cfg"
mkdir -p results

rounds="${ROUNDS:-3}"
peer() { # threads-per-process processes
    for r in $(seq 1 "$2"); do
        OPENBLAS_NUM_THREADS=$1 PEER_SEED=$r taskset -c $(( ($r - 1) * $1 ))-$(( $r * $1 - 1 )) /usr/bin/python3 scripts/peer_openblas.py "$n" &
    done
    wait
}
gemm_row() { grep -E "^(f64|f32) +$n "; }

for layout in "1 $cores" "$cores 1"; do
    set -- $layout
    ranks=$1 threads=$2
    echo "== $ranks rank(s) x $threads thread(s): OpenBLAS and effcal alternating, $rounds rounds"
    for round in $(seq 1 "$rounds"); do
        if [ "$ranks" -eq 1 ]; then peer "$threads" 1; else peer 1 "$ranks"; fi
        for p in f64 f32; do
            mpirun -n "$ranks" --map-by slot:PE="$threads" --bind-to core \
                target/release/effcal --threads "$threads" gemm --precision $p --n "$n" | gemm_row
        done
    done
    echo "== $ranks rank(s) x $threads thread(s): the whole plan"
    mpirun -n "$ranks" --map-by slot:PE="$threads" --bind-to core \
        target/release/effcal --threads "$threads" run --config "$cfg" --out "results/gemm-${ranks}x${threads}.json"
done
rm -f "$cfg"
