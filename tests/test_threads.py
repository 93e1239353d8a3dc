"""Bitwise identical results for every thread count, and reentrancy."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
import reference as ref
from helpers import FLOAT_TYPES, assert_matches, assert_same_bits, random_array

import csoftmax as cs

THREAD_COUNTS = (1, 2, 3, 8)


def _all_results(x, labels, probs, weight):
    """Every kernel's output on one input, as a dict of arrays."""
    res = {
        "softmax": cs.softmax(x),
        "log_softmax": cs.log_softmax(x),
        "logsumexp": cs.logsumexp(x),
        "softmax axis 0": cs.softmax(x, axis=0),
        "logsumexp axis 0": cs.logsumexp(x, axis=0),
        "softmax F": cs.softmax(np.asfortranarray(x)),
    }
    for name, t in (("labels", labels), ("probs", probs)):
        loss, grad = cs.cross_entropy_with_grad(x, t, weight=weight, label_smoothing=0.1)
        res[f"ce {name} loss"] = loss
        res[f"ce {name} grad"] = grad
        res[f"ce {name} sum"] = cs.cross_entropy(x, t, reduction="sum")
        res[f"ce {name} none"] = cs.cross_entropy(x, t, reduction="none")
    res["ce strided"] = cs.cross_entropy_with_grad(x[:, ::-1], labels)[1]
    loss, grad = cs.cross_entropy_with_grad(x, probs[:, ::-1], reduction="sum")
    res["ce strided probs loss"], res["ce strided probs grad"] = loss, grad
    g = np.asfortranarray(x)
    res["ce in place F loss"] = cs.cross_entropy_with_grad(g, labels, grad_out=g)[0]
    res["ce in place F grad"] = g
    return res


@pytest.mark.parametrize(
    "shape", [(30000, 10), (20000, 19), (20000, 37), (3000, 1000), (2, 50000)], ids=str
)
@pytest.mark.parametrize("dtype", FLOAT_TYPES)
def test_thread_count_does_not_change_bits(dtype, shape):
    rng = np.random.default_rng(51)
    n, q = shape
    x = random_array(rng, shape, dtype, scale=4)
    x[::97, ::5] = -np.inf
    labels = rng.integers(0, q, n)
    labels[::7] = -100
    probs = rng.random(shape).astype(dtype)
    probs /= probs.sum(axis=1, keepdims=True)
    weight = rng.uniform(0.5, 2.0, q).astype(dtype)

    before = cs.get_num_threads()
    try:
        results = {}
        for k in THREAD_COUNTS:
            cs.set_num_threads(k)
            assert cs.get_num_threads() == k
            results[k] = _all_results(x, labels, probs, weight)
    finally:
        cs.set_num_threads(before)
    assert cs.get_num_threads() == before
    for k in THREAD_COUNTS[1:]:
        for name in results[1]:
            assert_same_bits(results[k][name], results[1][name], f"{name} with {k} threads")
    # And the serial results are right.
    assert_matches(results[1]["logsumexp"], ref.logsumexp(x), dtype, "logsumexp")


def test_get_and_set_num_threads():
    before = cs.get_num_threads()
    assert isinstance(before, int) and before >= 1
    try:
        for k in (1, 3, 64, 2**40):
            cs.set_num_threads(k)
            assert cs.get_num_threads() == min(k, 2**31 - 1)
        cs.set_num_threads(np.int64(2))
        assert cs.get_num_threads() == 2
    finally:
        cs.set_num_threads(before)
    assert cs.get_num_threads() == before


@pytest.mark.parametrize("threads", [1, 2])
def test_concurrent_python_threads(threads):
    """Eight Python threads calling the kernels at once, each on its own
    data, get exactly what serial calls get."""
    rng = np.random.default_rng(52)
    jobs = []
    for i in range(8):
        dtype = FLOAT_TYPES[i % 2]
        n, q = (4000 + 500 * i, 10 + 7 * i)
        x = random_array(rng, (n, q), dtype)
        y = rng.integers(0, q, n)
        jobs.append((x, y))

    def work(job):
        x, y = job
        out = []
        for _ in range(3):
            out.append(
                (
                    cs.softmax(x),
                    cs.log_softmax(x, axis=0),
                    cs.logsumexp(x),
                    *cs.cross_entropy_with_grad(x, y, label_smoothing=0.05),
                )
            )
        return out

    before = cs.get_num_threads()
    try:
        cs.set_num_threads(threads)
        serial = [work(j)[0] for j in jobs]
        with ThreadPoolExecutor(max_workers=8) as pool:
            concurrent = list(pool.map(work, jobs))
    finally:
        cs.set_num_threads(before)
    for i, (s, reps) in enumerate(zip(serial, concurrent)):
        for rep in reps:
            for a, b in zip(s, rep):
                assert_same_bits(a, b, f"job {i}")
