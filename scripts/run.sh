#!/usr/bin/env bash
# The main job: build effcal for this node and run the default plan (configs/local.toml)
# under mpirun with one rank per core, each bound to its core. Extra arguments go to
# `effcal run` (e.g. --config configs/local.toml --out results/calibration.json).
# EFFCAL_RANKS overrides the rank count.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/setup.sh
cargo build --release --bin effcal >&2
ranks="${EFFCAL_RANKS:-$(nproc)}"
if command -v mpirun >/dev/null 2>&1 && [ "$ranks" -gt 1 ]; then
    exec mpirun -n "$ranks" --bind-to core --map-by core target/release/effcal run "$@"
else
    exec target/release/effcal run "$@"
fi
