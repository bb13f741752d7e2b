#!/usr/bin/env bash
# The native 16-bit figures of one CPU node in one command (issue 15; about 20 minutes on
# 2 cores), one rank per core × 1 thread throughout:
#   1. the kernels' tests on this CPU (with AVX512_FP16 they run the native f16 kernels);
#   2. the peaks (register-only FMA kernels per format, clock, triad);
#   3. GEMM at GEMM_N (4096): ROUNDS (3) rounds, each OpenBLAS DGEMM/SGEMM (one process per
#      core, numpy) then effcal f64, f32, bf16, f16 (f32 accumulation) and f16 with f16
#      accumulation over blocks of 32 (the default) and 256 terms of k, so each ratio is of
#      runs minutes apart at most (each block's sum is widened and added in f32, about 7
#      vector operations per accumulator against the block's FMAs: short blocks cost rate);
#   3b. blockings of effcal's own kernels at GEMM_N (`--blocking KC,MC,NC`, `--backend auto`):
#      the f64 kernel's F64_BLOCKINGS between two more OpenBLAS DGEMM runs, and with
#      AVX512_FP16 the f16 kernel's F16_BLOCKINGS (f16 accumulation, blocks of 32): the
#      figures for choosing this core's defaults without a rebuild per try;
#   4. HPL-MxP at HPL_N (16384): OpenBLAS dgetrf (scipy, all cores), then effcal f64 and f16
#      with f32 accumulation, then f16 with f16 accumulation in blocks of 32 and of a whole
#      update (PASSED/FAILED, iterations);
# f16 accumulation runs natively only with AVX512_FP16; elsewhere it is portable scalar code
# (0.1 GF/s a core, hours at these sizes), so those runs are left out there.
#   5. the 7-point stencil at 512³ in f64, bf16, f16 (and f16 in f16 arithmetic), with the
#      same run's triad, and the 27-point in f16 arithmetic.
# Ends with the figures issue 15 asks for, computed from the JSON (each effcal rate a
# median over its repetitions; OpenBLAS's per process, summed over the node's processes).
#
#   scripts/check-16bit.sh [OUTDIR]      # default results/16bit
#   GEMM_N=1024 HPL_N=4096 STENCIL_SIZE=128 ROUNDS=1 scripts/check-16bit.sh   # a quick look
#   F64_BLOCKINGS="1024,144,4096 256,480,4096" F16_BLOCKINGS=""   # other blockings (none: "")
#
# Writes OUTDIR/*.json (every calibration), OUTDIR/check-16bit.log, OUTDIR/summary.txt. A
# command that fails is logged with its exit code and the rest still run; the script exits
# non-zero when any did.
set -uo pipefail
cd "$(dirname "$0")/.."
. scripts/setup.sh
/usr/bin/python3 -c "import numpy, scipy" 2>/dev/null || {
    sudo=""; [ "$(id -u)" -ne 0 ] && sudo="sudo"
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq python3-numpy python3-scipy libopenblas0-pthread >&2
}
out="${1:-results/16bit}"
gemm_n="${GEMM_N:-4096}"
hpl_n="${HPL_N:-16384}"
rounds="${ROUNDS:-3}"
size="${STENCIL_SIZE:-512}"
# f64 (8×24 tile, 8-byte words): the Zen 4 default first, then B micro-panels (KC·24·8 B) from
# L2-sized down to L1-sized (KC = 192: 36 KiB of Golden Cove's 48 KiB L1) with A blocks
# (MC·KC·8 B) of 0.6-1 MiB. f16 (12×64 tile, 2-byte words, KC a multiple of 32): the default,
# then shorter KC with taller row blocks.
f64_blockings="${F64_BLOCKINGS-1024,144,4096 512,192,4096 384,240,4096 256,480,4096 256,144,4096 192,384,4096 128,768,4096}"
f16_blockings="${F16_BLOCKINGS-2048,144,2048 1024,288,2048 512,576,2048 256,960,2048 384,144,2048}"
cores=$(nproc)
mkdir -p "$out"
log="$out/check-16bit.log"
: > "$log"
say() { echo "$*" | tee -a "$log"; }
failed=0
run() { # a command, its output in the log; a failure is counted
    say "\$ $*"
    "$@" 2>&1 | tee -a "$log"
    local rc=${PIPESTATUS[0]}
    [ "$rc" -eq 0 ] || { say "check-16bit: exit $rc: $*"; failed=1; }
}
effcal() { # effcal on one rank per core, with this check's peaks once measured
    local peaks=()
    [ -f "$out/peak.json" ] && peaks=(--peaks "$out/peak.json")
    run mpirun -n "$cores" --bind-to core target/release/effcal --threads 1 "${peaks[@]}" "$@"
}

peer_dgemm() { # OpenBLAS DGEMM/SGEMM, one process per core, into $1
    for c in $(seq 0 $((cores - 1))); do
        OPENBLAS_NUM_THREADS=1 PEER_SEED=$((c + 1)) taskset -c "$c" /usr/bin/python3 scripts/peer_openblas.py "$gemm_n" 3 &
    done > "$1"
    wait
    tee -a "$log" < "$1"
}

say "check-16bit $(date -u +%FT%TZ) on $(hostname): $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2-), $cores cores"
say "  ISA: $(grep -m1 -o -w -E 'avx512f|avx512bw|avx512_bf16|avx512_fp16|amx_bf16|amx_fp16|amx_tile' /proc/cpuinfo | sort -u | tr '\n' ' ')"
say "  $(git log -1 --format='effcal %h %cs' 2>/dev/null)"
native_f16=no
grep -q -w avx512_fp16 /proc/cpuinfo && native_f16=yes
[ "$native_f16" = yes ] || say "  no AVX512_FP16: the f16-accumulation GEMM and HPL-MxP runs are left out (portable scalar code)"
run cargo build --release --bin effcal
run cargo test --release -p effcal-kernels

effcal peak --json "$out/peak.json"

for r in $(seq 1 "$rounds"); do
    say "== GEMM round $r of $rounds, n = $gemm_n: OpenBLAS (one process per core), then effcal"
    peer_dgemm "$out/peer-gemm-round$r.txt"
    for p in f64 f32 bf16 f16; do
        effcal gemm --precision $p --n "$gemm_n" --reps 3 --json "$out/gemm-$p-round$r.json"
    done
    if [ "$native_f16" = yes ]; then
        for b in 32 256; do
            effcal gemm --precision f16 --accumulate f16 --acc-block $b --n "$gemm_n" --reps 3 --json "$out/gemm-f16acc$b-round$r.json"
        done
    fi
done

if [ -n "$f64_blockings" ]; then
    say "== f64 kernel blockings (KC,MC,NC), n = $gemm_n, between two OpenBLAS runs"
    peer_dgemm "$out/peer-gemm-blocking-before.txt"
    for b in $f64_blockings; do
        effcal gemm --precision f64 --backend auto --blocking "$b" --n "$gemm_n" --reps 3 --json "$out/blocking-f64-$b.json"
    done
    peer_dgemm "$out/peer-gemm-blocking-after.txt"
fi
if [ "$native_f16" = yes ] && [ -n "$f16_blockings" ]; then
    say "== native f16 kernel blockings (f16 accumulation, blocks of 32), n = $gemm_n"
    for b in $f16_blockings; do
        effcal gemm --precision f16 --accumulate f16 --acc-block 32 --backend auto --blocking "$b" --n "$gemm_n" --reps 3 --json "$out/blocking-f16acc32-$b.json"
    done
fi

say "== HPL-MxP, N = $hpl_n: OpenBLAS dgetrf ($cores threads), then effcal"
OPENBLAS_NUM_THREADS=$cores /usr/bin/python3 scripts/peer_lu.py "$hpl_n" 2 2>&1 | tee "$out/peer-lu.txt" | tee -a "$log"
effcal hpl-mxp --n "$hpl_n" --precision f64,f16 --reps 2 --warmup 1 --progress-every 0 --json "$out/hpl-wide.json"
if [ "$native_f16" = yes ]; then
    for b in 32 65536; do
        effcal hpl-mxp --n "$hpl_n" --precision f16 --accumulate f16 --acc-block $b --reps 2 --warmup 1 --progress-every 0 --json "$out/hpl-f16acc$b.json"
    done
fi

say "== Stencils, $size³ over the node"
effcal stencil --kind 7pt --size $size $size $size --precision f64,bf16,f16 --iters 5 --reps 3 --json "$out/stencil-7pt.json"
effcal stencil --kind 7pt --size $size $size $size --precision f16 --arithmetic f16 --iters 5 --reps 3 --json "$out/stencil-7pt-f16arith.json"
effcal stencil --kind 27pt --size $size $size $size --precision f16 --arithmetic f16 --iters 5 --reps 3 --json "$out/stencil-27pt-f16arith.json"

/usr/bin/python3 - "$out" "$rounds" <<'EOF' | tee "$out/summary.txt" | tee -a "$log"
import glob, json, os, re, statistics, sys
out, rounds = sys.argv[1], int(sys.argv[2])
def records(name):
    path = os.path.join(out, name)
    return json.load(open(path))["records"] if os.path.exists(path) else []
def rate(name, prec=None):
    for r in records(name):
        if prec in (None, r["precision"]):
            return r["gflops"]["median"], r["params"].get("path"), r["valid"], r["efficiency"].get("vs_empirical")
    return None, None, None, None
def fmt(x): return "-" if x is None else f"{x:.2f}"
print("Issue 15's figures (medians; `target` is the issue's; each ratio within one round)")
print(f"{'figure':50} {'rounds':>18}  target")
def row(name, values, target):
    print(f"{name:50} {' '.join(fmt(v) for v in values):>18}  {target}")
def peer_sum(name, p):  # OpenBLAS's rate for p in a peer file, summed over its processes
    path = os.path.join(out, name)
    lines = re.findall(rf"peer {p} .* median=([0-9.]+)", open(path).read()) if os.path.exists(path) else []
    return sum(map(float, lines)) if lines else None
peer = {(p, r): peer_sum(f"peer-gemm-round{r}.txt", p) for p in ("f64", "f32") for r in range(1, rounds + 1)}
def ratio(a, b): return None if a is None or not b else a / b
g = {(k, r): rate(f"gemm-{k}-round{r}.json") for k in ("f64", "f32", "bf16", "f16", "f16acc32", "f16acc256") for r in range(1, rounds + 1)}
rs = range(1, rounds + 1)
row("f64 GEMM / OpenBLAS DGEMM", [ratio(g["f64", r][0], peer["f64", r]) for r in rs], ">= 0.95")
row("f32 GEMM / OpenBLAS SGEMM", [ratio(g["f32", r][0], peer["f32", r]) for r in rs], ">= 0.95")
row("bf16 GEMM / effcal f32", [ratio(g["bf16", r][0], g["f32", r][0]) for r in rs], ">= 0.95")
for b in (32, 256):
    row(f"f16 GEMM, f16 accumulation B={b} / effcal f32", [ratio(g[f"f16acc{b}", r][0], g["f32", r][0]) for r in rs], ">= 1.8")
row("f16 GEMM, f32 accumulation / effcal f32", [ratio(g["f16", r][0], g["f32", r][0]) for r in rs], ">= 1.2")
for k in ("f64", "f32", "bf16", "f16", "f16acc32", "f16acc256"):
    if all(g[k, r][0] is None for r in rs):
        continue
    paths = sorted({str(g[k, r][1]) for r in rs})
    valid = all(g[k, r][2] for r in rs if g[k, r][2] is not None)
    print(f"  GEMM {k}: GF/s {' '.join(fmt(g[k, r][0]) for r in rs)}; of the measured {'f16' if k.startswith('f16') else k} peak {' '.join(fmt(g[k, r][3]) for r in rs)}; "
          f"path {', '.join(paths)}; {'PASSED' if valid else 'FAILED'}")
print("  OpenBLAS GF/s (sum over processes): f64 " + " ".join(fmt(peer['f64', r]) for r in rs) + ", f32 " + " ".join(fmt(peer['f32', r]) for r in rs))
def mean(xs):
    xs = [x for x in xs if x]
    return statistics.mean(xs) if xs else None
sweep = sorted(glob.glob(os.path.join(out, "blocking-*.json")), key=os.path.getmtime)  # in the order run
if sweep:
    dgemm = mean([peer_sum(f"peer-gemm-blocking-{w}.txt", "f64") for w in ("before", "after")])
    f32 = mean([g["f32", r][0] for r in rs])
    print(f"Blockings (--blocking KC,MC,NC, --backend auto; medians): f64 against OpenBLAS DGEMM run before and after ({fmt(dgemm)} GF/s, the mean), "
          f"f16 accumulation against effcal's f32 of the rounds ({fmt(f32)} GF/s, the mean)")
    for path in sweep:
        kind, asked = os.path.basename(path)[len("blocking-"):-len(".json")].split("-", 1)
        for r in json.load(open(path))["records"]:
            b = r["params"].get("blocking")
            ran = f"{b['kc']},{b['mc']},{b['nc']}" if b else f"({r['params'].get('path')})"
            rate_ = r["gflops"]["median"]
            print(f"  {kind:9} asked {asked:15} ran {ran:15} {rate_:8.2f} GF/s  x{fmt(ratio(rate_, dgemm if kind == 'f64' else f32))}  {'PASSED' if r['valid'] else 'FAILED'}")
lu = re.findall(r"median=([0-9.]+)", open(os.path.join(out, "peer-lu.txt")).read()) if os.path.exists(os.path.join(out, "peer-lu.txt")) else []
lu = float(lu[0]) if lu else None
for name, prec in (("hpl-wide.json", "f64"), ("hpl-wide.json", "f16"), ("hpl-f16acc32.json", "f16"), ("hpl-f16acc65536.json", "f16")):
    for r in records(name):
        if r["precision"] != prec:
            continue
        acc = r["params"].get("accumulation")
        its = r.get("accuracy", {}).get("iterations", r.get("results", {}).get("iterations"))
        block = f" B={r['params']['accumulation_block']}" if acc == "f16" else ""
        label = f"HPL-MxP {prec} ({acc} accumulation{block}) / dgetrf"
        row(label, [ratio(r["gflops"]["median"], lu)], ">= 3.2 (f16)" if prec == "f16" else "")
        print(f"  {r['gflops']['median']:.1f} GF/s, path {r['params'].get('path')}, iterations {its}, {'PASSED' if r['valid'] else 'FAILED'}; dgetrf {fmt(lu)} GF/s")
for name in ("stencil-7pt.json", "stencil-7pt-f16arith.json", "stencil-27pt-f16arith.json"):
    for r in records(name):
        mpts = r["results"]["mpoints_per_s"]["median"]
        print(f"  {r['kernel']} {r['precision']} ({r['params'].get('arithmetic')} arithmetic, stores {r['params'].get('stores')}): "
              f"{mpts:.0f} Mpt/s, {r['efficiency'].get('vs_empirical') or 0:.2f} of the triad, {'PASSED' if r['valid'] else 'FAILED'}")
s = {r["precision"]: r for r in records("stencil-7pt.json")}
if "f64" in s:
    f64 = s["f64"]["results"]["mpoints_per_s"]["median"]
    row("7-point f64 / the same run's triad", [s["f64"]["efficiency"].get("vs_empirical")], ">= 0.75")
    for p in ("bf16", "f16"):
        if p in s:
            row(f"7-point {p} / f64 (points per second)", [s[p]["results"]["mpoints_per_s"]["median"] / f64], ">= 2")
EOF
say "check-16bit: $( [ $failed -eq 0 ] && echo 'every command succeeded' || echo 'some commands FAILED (above)')"
exit $failed
