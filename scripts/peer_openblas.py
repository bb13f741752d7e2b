#!/usr/bin/env python3
"""Peer measurement: OpenBLAS DGEMM/SGEMM through Debian's numpy (python3-numpy links the
system libblas, which is OpenBLAS when libopenblas is installed). Prints one line per
precision: `peer <dtype> n=<n> threads=<t> best=<GF/s> median=<GF/s>` with FLOPs = 2n^3.
Warm-up run discarded, then `reps` timed runs. Thread count from OPENBLAS_NUM_THREADS."""
import os
import sys
import time

import numpy as np

n = int(sys.argv[1]) if len(sys.argv) > 1 else 4096
reps = int(sys.argv[2]) if len(sys.argv) > 2 else 5
rng = np.random.default_rng(int(os.environ.get("PEER_SEED", "1")))
for dtype in (np.float64, np.float32):
    a = rng.uniform(-1, 1, (n, n)).astype(dtype)
    b = rng.uniform(-1, 1, (n, n)).astype(dtype)
    c = np.empty((n, n), dtype=dtype)
    rates = []
    for r in range(reps + 1):
        t = time.perf_counter()
        np.matmul(a, b, out=c)
        dt = time.perf_counter() - t
        if r > 0:
            rates.append(2.0 * n**3 / dt / 1e9)
    rates.sort()
    name = {np.float64: "f64", np.float32: "f32"}[dtype]
    print(f"peer {name} n={n} threads={os.environ.get('OPENBLAS_NUM_THREADS', 'all')} "
          f"best={rates[-1]:.1f} median={rates[len(rates) // 2]:.1f}", flush=True)
