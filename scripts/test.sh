#!/usr/bin/env bash
# The whole test suite: unit tests of both crates and the integration tests in tests/,
# which run the binary plainly and under `mpirun -n 1/2/4`. Installs what is missing.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/setup.sh
cargo test --release --workspace "$@"
