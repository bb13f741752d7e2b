#!/usr/bin/env bash
# Builds effcal for the CPU of the node this runs on (run it on a compute node: login and
# compute nodes differ, and -C target-cpu=native must match the node that measures). Unlike
# setup.sh it installs nothing: on a cluster, load the site's MPI, hwloc and clang modules
# first (rsmpi needs an MPI with mpicc on PATH and libclang). E.g.
#     srun -N 1 -n 1 --cpus-per-task=<cores> bash scripts/build.sh
set -euo pipefail
cd "$(dirname "$0")/.."
if ! command -v cargo >/dev/null 2>&1 && [ -f "$HOME/.cargo/env" ]; then
    . "$HOME/.cargo/env"
fi
command -v cargo >/dev/null 2>&1 || { echo "build.sh: cargo not found; install Rust (rustup) first" >&2; exit 1; }
export RUSTFLAGS="${RUSTFLAGS:-} -C target-cpu=native"
cargo build --release --bin effcal
echo "built target/release/effcal for $(uname -m) ($(grep -m1 'model name' /proc/cpuinfo 2>/dev/null | cut -d: -f2 | sed 's/^ //'))"
