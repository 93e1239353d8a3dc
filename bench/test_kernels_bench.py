"""pytest-benchmark suite of the kernels: every contender of ``csoftmax bench``
(csoftmax, the textbook NumPy formulation, the installed peers, the floor)
on every (kernel, shape, dtype, threads), grouped so that the contenders of
one case sit side by side:

    pytest bench/test_kernels_bench.py --benchmark-only --benchmark-group-by=group

Each contender's output is checked against csoftmax's before it is timed.
"""

from __future__ import annotations

import importlib

import pytest

bm = importlib.import_module("csoftmax.bench")


def test_kernel(benchmark, case, threads, kernel, contender):
    n, q = case.shape
    dtype = case.x.dtype.name
    case.threads = threads
    with bm.thread_limits(threads):
        why = bm.check_contender(case, kernel, contender)
        if why is not None:
            pytest.fail(f"{contender.name} disagrees with csoftmax: {why}")
        fn = contender.prepare(case)
        benchmark.group = f"{kernel} {n}x{q} {dtype} {threads}t"
        benchmark.extra_info.update(
            kernel=kernel,
            n=n,
            q=q,
            dtype=dtype,
            threads=threads,
            contender=contender.name,
            family=contender.family,
            allocates=contender.allocates,
            floor_kind=bm.FLOOR_KIND[kernel],
            floor_bytes=case.nbytes * (2 if bm.FLOOR_KIND[kernel] == "copy" else 1),
        )
        benchmark(fn)
