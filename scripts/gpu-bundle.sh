#!/usr/bin/env bash
# Builds a self-contained effcal for a GPU node that has no Rust toolchain and no MPI
# (a cloud or lent GPU machine): the single-process build (--no-default-features), for
# any x86-64 CPU (no -C target-cpu=native: the node's CPU is not this one's; the GPU does
# the measured work), stripped, with the shared libraries it links that a bare node may
# lack (hwloc, udev) beside it. The CUDA driver and CUDA 13's cuBLAS, cuBLASLt and NVRTC
# are the node's own, loaded at run time.
#
#   scripts/gpu-bundle.sh [DIR]      (default: gpu-bundle/, ignored by git)
#
# DIR/effcal runs the binary with DIR/lib on the loader's path. Prints the bundle's size
# and the newest glibc symbol version it needs (the node's glibc must be at least that).
set -euo pipefail
cd "$(dirname "$0")/.."
out="${1:-gpu-bundle}"
. scripts/setup.sh
# The portable build: drop the -C target-cpu=native that setup.sh sets.
export RUSTFLAGS="${RUSTFLAGS//-C target-cpu=native/}"
export CARGO_TARGET_DIR="$PWD/target/gpu-bundle"
cargo build --release -p effcal --no-default-features
bin="$CARGO_TARGET_DIR/release/effcal"
rm -rf "$out"
mkdir -p "$out/lib"
strip -o "$out/effcal.bin" "$bin"
for lib in $(ldd "$bin" | awk '/=>/ {print $3}'); do
    case "$(basename "$lib")" in
        libc.so.*|libm.so.*|libgcc_s.so.*|libpthread.so.*|libdl.so.*|librt.so.*|ld-linux*) ;;
        *) cp -L "$lib" "$out/lib/" ;;
    esac
done
cat > "$out/effcal" <<'SH'
#!/bin/sh
# effcal with its bundled libraries (see scripts/gpu-bundle.sh).
here="$(cd "$(dirname "$0")" && pwd)"
LD_LIBRARY_PATH="$here/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}" exec "$here/effcal.bin" "$@"
SH
chmod +x "$out/effcal"
glibc=$(objdump -T "$out/effcal.bin" "$out"/lib/* | grep -o 'GLIBC_[0-9.]*' | sort -uV | tail -1)
echo "gpu-bundle: $out ($(du -sh "$out" | cut -f1)): $(ls "$out/lib" | tr '\n' ' ')needs $glibc or newer"
"$out/effcal" --version | head -1
