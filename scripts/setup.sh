#!/usr/bin/env bash
# Installs what effcal needs when it is missing (Debian/Ubuntu: apt; a Rust toolchain must
# be on PATH), and sets the build flags for the node this runs on. Sourced by run.sh and
# test.sh; safe to run again.
set -euo pipefail

packages=(openmpi-bin libopenmpi-dev libclang-dev libhwloc-dev libudev-dev pkg-config)
missing=()
for p in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
    echo "effcal setup: installing ${missing[*]}" >&2
    sudo=""
    [ "$(id -u)" -ne 0 ] && sudo="sudo"
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}" >&2
fi

if ! command -v cargo >/dev/null 2>&1; then
    [ -f "$HOME/.cargo/env" ] && . "$HOME/.cargo/env"
fi
command -v cargo >/dev/null 2>&1 || { echo "effcal setup: cargo not found; install Rust (rustup) first" >&2; exit 1; }

# Build for the CPU of the node that runs (login and compute nodes differ, so this is set
# here, never in .cargo/config.toml). Kernels that need a feature (AVX512_BF16) still
# detect it at run time.
export RUSTFLAGS="${RUSTFLAGS:-} -C target-cpu=native"

# Open MPI refuses root unless told; containers and CI runners often are root.
if [ "$(id -u)" -eq 0 ]; then
    export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
fi
