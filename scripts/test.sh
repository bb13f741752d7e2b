#!/usr/bin/env bash
# The whole test suite: clippy (clean, warnings are errors), then the unit tests of both
# crates and the integration tests in tests/, which run the binary plainly and under
# `mpirun -n 1/2/4`, and the single-process build (no MPI). Installs what is missing.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/setup.sh
# Lints first: clippy on every target, warnings are errors (installed with rustup when the
# toolchain lacks it).
if ! cargo clippy --version >/dev/null 2>&1; then
    rustup component add clippy >&2 || { echo "test.sh: cargo clippy is missing and could not be installed" >&2; exit 1; }
fi
cargo clippy --release --workspace --all-targets -- -D warnings
# The single-process build (no MPI library; the GPU bundle's): linted, built, and kept
# beside the MPI build for tests/serial.rs.
cargo clippy --release -p effcal --no-default-features -- -D warnings
cargo build --release -p effcal --no-default-features
cp target/release/effcal target/release/effcal-serial
export EFFCAL_SERIAL_BIN="$PWD/target/release/effcal-serial"
cargo test --release --workspace "$@"
