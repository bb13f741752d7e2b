#!/usr/bin/env bash
# The GPU figures of one node, in a few minutes: effcal's GPU peaks (FMA kernels, cuBLASLt
# GEMMs, device triad), a GEMM per precision at n = 8192 (and 16384 for the tensor-core
# formats), HPL-MxP in BF16 and FP16 (with the FP64 LU of the same N) at the largest N that
# fits in 60 % of the GPU's memory (BF16 once more with the diagonal blocks factored on the
# GPU), HPL-MxP's FP8 what-if (E4M3) at N = 16384 and the 7- and 27-point stencils at 512³,
# each against those peaks, with energy where NVML reads it. Runs the bundle of
# scripts/gpu-bundle.sh (no Rust or MPI needed on the node):
#
#   scripts/gpu-bundle.sh                      # where Rust is
#   scripts/gpu-check.sh [BUNDLE] [OUTDIR]     # on the GPU node (defaults: gpu-bundle, results/gpu)
#
# Writes OUTDIR/gpu-peak.json, OUTDIR/gpu.json (the peaks and every GEMM record, merged),
# OUTDIR/gpu-check.log and OUTDIR/gpu-json.tar.gz (every calibration as written). A
# command that fails is logged with its exit code and the rest still run; the script exits
# non-zero when any did.
#
# The issue's figures run first (peaks, GEMMs, HPL-MxP at the largest N), the rest after.
# GPU_CHECK_DEADLINE (seconds, default 450): no command starts past it (each is logged as
# skipped), so the JSON is merged and packed before a lent machine's limit ends the run.
set -uo pipefail
cd "$(dirname "$0")/.."
bundle="${1:-gpu-bundle}"
out="${2:-results/gpu}"
mkdir -p "$out/runs"
log="$out/gpu-check.log"
: > "$log"
say() { echo "$*" | tee -a "$log"; }
failed=0
skipped=0
deadline="${GPU_CHECK_DEADLINE:-450}"
# Runs effcal with its output in the log; returns effcal's exit code.
run_effcal() {
    say "\$ effcal $*"
    "$bundle/effcal" "$@" 2>&1 | tee -a "$log"
    return "${PIPESTATUS[0]}"
}
# True (and logged, and counted as a failure) when the deadline has passed: the command
# is not started.
late() {
    [ "$SECONDS" -ge "$deadline" ] || return 1
    say "gpu-check: skipped at ${SECONDS} s (deadline ${deadline} s): effcal $*"
    skipped=1
    failed=1
}
step() {
    late "$@" && return 3
    run_effcal "$@"
    local rc=$?
    [ "$rc" -eq 0 ] || { say "gpu-check: exit $rc: effcal $*"; failed=1; }
    return "$rc"
}
# A measurement this GPU may not have (exit 2, refused by name: nothing measured) is said
# as such, not counted as a failure.
optional() {
    late "$@" && return 3
    run_effcal "$@"
    local rc=$?
    case $rc in
        0) ;;
        2) say "gpu-check: not on this GPU (refused by name above): effcal $*" ;;
        *) say "gpu-check: exit $rc: effcal $*"; failed=1 ;;
    esac
    return "$rc"
}

# CUDA 13's libraries where the node keeps them: the toolkit, or PyPI's nvidia-* wheels.
for d in /usr/local/cuda/lib64 /usr/local/cuda/targets/x86_64-linux/lib $(python3 -c 'import nvidia, os; p = nvidia.__path__[0]; print(" ".join(os.path.join(p, d, "lib") for d in sorted(os.listdir(p))))' 2>/dev/null); do
    [ -d "$d" ] && LD_LIBRARY_PATH="$d${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
done
export LD_LIBRARY_PATH="${LD_LIBRARY_PATH:-}"
say "gpu-check $(date -u +%FT%TZ) on $(hostname): $(nvidia-smi --query-gpu=name,driver_version,power.limit --format=csv,noheader 2>&1 | head -4 | tr '\n' ';')"
for lib in libcuda.so.1 libcublas.so.13 libcublasLt.so.13 libnvrtc.so.13 libnvidia-ml.so.1; do
    found=$( { ldconfig -p | awk -v l="$lib" '$1 == l {print $NF; exit}'; for d in ${LD_LIBRARY_PATH//:/ }; do [ -e "$d/$lib" ] && echo "$d/$lib"; done; } | head -1)
    say "  $lib: ${found:-NOT FOUND}"
done
# What the figures depend on beside the GPU: its clocks, power limit, ECC and link, and the
# host's CPU (the diagonal blocks and the stencils' checks run there).
say "  $(nvidia-smi --query-gpu=clocks.max.sm,clocks.max.mem,power.limit,power.max_limit,ecc.mode.current,persistence_mode,pcie.link.gen.current,pcie.link.width.current --format=csv 2>&1 | tr '\n' ';')"
say "  host: $(lscpu 2>/dev/null | awk -F: '/^Model name/ {gsub(/^ +/, "", $2); print $2; exit}'), $(nproc) CPUs, $(awk '/MemTotal/ {printf "%.0f GiB", $2 / 1048576}' /proc/meminfo)"
"$bundle/effcal" --version | tee -a "$log"

peak="$out/gpu-peak.json"
step peak --device gpu --reps 5 --fma-seconds 0.2 --gemm-n 8192 --json "$peak"
if [ $? -eq 2 ]; then
    say "gpu-check: no usable GPU here (see above); nothing else to run"
    exit 2
fi
peaks=()
[ -f "$peak" ] && peaks=(--peaks "$peak")
runs=("$peak")
for p in f64 f32 tf32 bf16 f16 e4m3 e5m2 int8; do
    sizes="8192"
    case $p in bf16|f16|e4m3|int8) sizes="8192 16384" ;; esac
    for n in $sizes; do
        json="$out/runs/gemm-$p-$n.json"
        # E5M2 × E5M2: Hopper's cuBLASLt has none (tried: a later GPU or library may).
        run=step
        [ "$p" = e5m2 ] && run=optional
        $run "${peaks[@]}" gemm --device gpu --precision "$p" --n "$n" --reps 5 --json "$json"
        [ -f "$json" ] && runs+=("$json")
    done
done
# HPL-MxP on the GPU: a small solve first (so a failure at the large one still leaves a
# figure), then BF16 and FP16 at the largest N (a multiple of NB = 1024) whose f32 matrix and
# its f64 copy (12 bytes an element) fit in 60 % of the GPU's memory, with the FP64 LU of the
# same N last (16 bytes an element: it is refused, by itself, where it does not fit; the
# records before it are kept) for the speed-up.
step "${peaks[@]}" hpl-mxp --device gpu --precision bf16 --n 8192 --reps 2 --json "$out/runs/hpl-mxp-8192.json"
[ -f "$out/runs/hpl-mxp-8192.json" ] && runs+=("$out/runs/hpl-mxp-8192.json")
mem_mib=$(nvidia-smi --query-gpu=memory.total --format=csv,noheader,nounits 2>/dev/null | head -1 | tr -dc 0-9)
if [ -n "$mem_mib" ]; then
    n=$(awk -v m="$mem_mib" 'BEGIN { print int(sqrt(0.6 * m * 1048576 / 12) / 1024) * 1024 }')
    say "gpu-check: HPL-MxP at N = $n (60 % of $mem_mib MiB at 12 bytes an element)"
    json="$out/runs/hpl-mxp-$n.json"
    step "${peaks[@]}" hpl-mxp --device gpu --precision bf16,f16,f64 --n "$n" --reps 2 --json "$json"
    [ -f "$json" ] && runs+=("$json")
    # The same BF16 solve with each diagonal block factored on the GPU (--diagonal gpu)
    # instead of the host: which is faster on this node (the phases say where time went).
    json="$out/runs/hpl-mxp-$n-diag-gpu.json"
    step "${peaks[@]}" hpl-mxp --device gpu --precision bf16 --n "$n" --diagonal gpu --reps 2 --json "$json"
    [ -f "$json" ] && runs+=("$json")
else
    say "gpu-check: nvidia-smi gave no memory size: the large HPL-MxP solve is left out"
fi
# The FP8 what-if (E4M3 panels scaled per panel, cuBLASLt's FP8 update), with BF16 beside it.
step "${peaks[@]}" hpl-mxp --device gpu --precision bf16,e4m3 --n 16384 --reps 2 --json "$out/runs/hpl-mxp-e4m3-16384.json"
[ -f "$out/runs/hpl-mxp-e4m3-16384.json" ] && runs+=("$out/runs/hpl-mxp-e4m3-16384.json")
# Stencils on the GPU (one rank): 7- and 27-point at 512³ in every storage the GPU sweeps,
# each field checked bit for bit against the host's sweeps.
for kind in 7pt 27pt; do
    json="$out/runs/stencil-$kind.json"
    step "${peaks[@]}" stencil --device gpu --kind "$kind" --precision f64,f32,bf16,f16 --size 512 512 512 --iters 10 --reps 3 --json "$json"
    [ -f "$json" ] && runs+=("$json")
done
existing=()
for f in "${runs[@]}"; do [ -f "$f" ] && existing+=("$f"); done
if [ ${#existing[@]} -ge 2 ]; then
    # Past the deadline too: merging takes a moment and keeps what was measured together.
    run_effcal merge "${existing[@]}" --out "$out/gpu.json" || { say "gpu-check: exit $?: effcal merge"; failed=1; }
fi
tar czf "$out/gpu-json.tar.gz" -C "$out" runs $( [ -f "$peak" ] && echo gpu-peak.json ) 2>/dev/null
if [ $failed -eq 0 ]; then
    say "gpu-check: every command passed"
else
    say "gpu-check: some commands FAILED$( [ $skipped -eq 1 ] && echo ' or were skipped past the deadline') (see above)"
fi
exit $failed
