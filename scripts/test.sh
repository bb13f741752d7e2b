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
# NVRTC from PyPI (no GPU needed; x86-64 wheel): effcal-gpu's test compiles effcal's CUDA
# source with it.
nvrtc="$PWD/target/nvrtc"
if [ "$(uname -m)" = x86_64 ] && [ ! -f "$nvrtc/nvidia/cu13/lib/libnvrtc.so.13" ]; then
    if ! python3 -m pip --version >/dev/null 2>&1; then
        sudo=""; [ "$(id -u)" -ne 0 ] && sudo="sudo"
        $sudo apt-get update -qq && DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq python3-pip >&2
    fi
    python3 -m pip download -q --no-deps --only-binary=:all: --platform manylinux2010_x86_64 \
        -d "$nvrtc" nvidia-cuda-nvrtc==13.5.37 >&2
    python3 -c 'import sys, zipfile, glob; zipfile.ZipFile(glob.glob(sys.argv[1] + "/nvidia_cuda_nvrtc-*.whl")[0]).extractall(sys.argv[1])' "$nvrtc"
fi
[ -f "$nvrtc/nvidia/cu13/lib/libnvrtc.so.13" ] && export EFFCAL_NVRTC_TEST=1 LD_LIBRARY_PATH="$nvrtc/nvidia/cu13/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
# ReFrame from PyPI, in a virtual environment of its own: tests/reframe.rs runs the check in
# slurm/reframe/ under it.
rfm="$PWD/target/reframe"
if [ ! -x "$rfm/bin/reframe" ]; then
    if ! python3 -m venv "$rfm" >/dev/null 2>&1; then
        rm -rf "$rfm"
        sudo=""; [ "$(id -u)" -ne 0 ] && sudo="sudo"
        $sudo apt-get update -qq && DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq python3-venv >&2
        python3 -m venv "$rfm"
    fi
    "$rfm/bin/python" -m pip install -q reframe-hpc==4.10.4 >&2
fi
export EFFCAL_REFRAME="$rfm/bin/reframe"
cargo test --release --workspace "$@"
