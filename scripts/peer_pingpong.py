#!/usr/bin/env python3
"""A peer for `effcal net`: IMB PingPong between rank 0 and rank 1 with mpi4py (Debian's
python3-mpi4py; the OSU micro-benchmarks and IMB are not packaged in Debian 12). Same
convention: one-way time = half the mean round trip over ITERS round trips after ITERS/10
untimed (a tenth as many beyond 64 KiB), median of REPS repetitions; bandwidth = bytes /
one-way time (GB/s, 1e9 B/s). Buffers are numpy arrays, sent without pickling (Send/Recv).

    mpirun -n 2 /usr/bin/python3 scripts/peer_pingpong.py [MAX_BYTES] [ITERS] [REPS]
"""
import sys
import time

import numpy as np
from mpi4py import MPI

comm = MPI.COMM_WORLD
rank = comm.Get_rank()
max_bytes = int(sys.argv[1]) if len(sys.argv) > 1 else 4 << 20
scale = int(sys.argv[2]) if len(sys.argv) > 2 else 200
reps = int(sys.argv[3]) if len(sys.argv) > 3 else 5
buf = np.zeros(max(max_bytes, 1), dtype=np.uint8)
sizes = [0] + [1 << i for i in range(max_bytes.bit_length()) if (1 << i) <= max_bytes]
if rank == 0:
    print("# mpi4py %s on %s" % (__import__("mpi4py").__version__, MPI.Get_library_version().splitlines()[0]))
    print("%10s %14s %16s" % ("# Size (B)", "Latency (us)", "Bandwidth (GB/s)"))
for size in sizes:
    iters = scale if size <= 65536 else max(scale // 10, 5)
    view = buf[:size]
    one_way = []
    for rep in range(reps + 1):
        comm.Barrier()
        for timed in (False, True):
            n = iters if timed else iters // 10 + 1
            t = time.perf_counter()
            for _ in range(n):
                if rank == 0:
                    comm.Send(view, dest=1)
                    comm.Recv(view, source=1)
                elif rank == 1:
                    comm.Recv(view, source=0)
                    comm.Send(view, dest=0)
            t = time.perf_counter() - t
        if rep > 0:
            one_way.append(t / iters / 2)
    if rank == 0:
        t = sorted(one_way)[len(one_way) // 2]
        print("%10d %14.2f %16.3f" % (size, t * 1e6, size / t / 1e9))
