#!/usr/bin/env python3
"""Peer measurement for HPL-MxP: OpenBLAS's FP64 LU (dgetrf, partial pivoting) through
Debian's scipy (python3-scipy links the system liblapack, which is OpenBLAS's when
libopenblas is installed). Prints `peer dgetrf n=<n> threads=<t> best=<GF/s>
median=<GF/s>` with FLOPs = 2/3 n^3. One warm-up factorisation of order n/4 is discarded,
then `reps` timed factorisations of fresh copies of a uniform random matrix.
Thread count from OPENBLAS_NUM_THREADS."""
import os
import sys
import time

import numpy as np
import scipy.linalg

n = int(sys.argv[1]) if len(sys.argv) > 1 else 16384
reps = int(sys.argv[2]) if len(sys.argv) > 2 else 2
rng = np.random.default_rng(1)
a = np.asfortranarray(rng.uniform(-0.5, 0.5, (n, n)))
w = np.asfortranarray(a[: n // 4, : n // 4])
scipy.linalg.lu_factor(w, overwrite_a=True, check_finite=False)
rates = []
for _ in range(reps):
    c = a.copy(order="F")
    t = time.perf_counter()
    scipy.linalg.lu_factor(c, overwrite_a=True, check_finite=False)
    dt = time.perf_counter() - t
    rates.append(2.0 / 3.0 * n**3 / dt / 1e9)
    del c
rates.sort()
print(f"peer dgetrf n={n} threads={os.environ.get('OPENBLAS_NUM_THREADS', 'all')} "
      f"best={rates[-1]:.1f} median={rates[len(rates) // 2]:.1f}", flush=True)
