#!/usr/bin/env bash
# The whole test suite: clippy (clean, warnings are errors), then the unit tests of both
# crates and the integration tests in tests/, which run the binary plainly and under
# `mpirun -n 1/2/4`. Installs what is missing.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/setup.sh
# Lints first: clippy on every target, warnings are errors (installed with rustup when the
# toolchain lacks it).
if ! cargo clippy --version >/dev/null 2>&1; then
    rustup component add clippy >&2 || { echo "test.sh: cargo clippy is missing and could not be installed" >&2; exit 1; }
fi
cargo clippy --release --workspace --all-targets -- -D warnings
cargo test --release --workspace "$@"
