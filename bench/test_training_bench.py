"""pytest-benchmark suite of one training epoch: the textbook Fashion-MNIST
run (batch 256, SGD lr 0.1, N(0, 0.01^2) init, float32) of the csoftmax
Trainer, the same loop in NumPy, and in PyTorch (closed form and autograd)
when it is installed; the same initial weights and batch order for all:

    pytest bench/test_training_bench.py --benchmark-only --benchmark-group-by=group

Each round is one epoch (``--bench-epochs`` rounds after one warm-up epoch).
"""

from __future__ import annotations

import importlib

import numpy as np
import pytest

import csoftmax as cs

bm = importlib.import_module("csoftmax.bench")

LOOPS = [
    name
    for name in bm.TRAINING_LOOPS
    if not name.startswith("torch") or bm.installed_peers(["torch"])["torch"] is not None
]


@pytest.fixture(scope="session")
def fashion_mnist():
    try:
        return cs.datasets.load_fashion_mnist()
    except OSError as e:  # DatasetError: not found and no network
        pytest.skip(f"Fashion-MNIST is not available: {e}")


@pytest.mark.parametrize("loop", LOOPS)
def test_training_epoch(benchmark, request, fashion_mnist, threads, loop):
    (X, y), (X_test, y_test) = fashion_mnist
    init = cs.SoftmaxRegression(X.shape[1], 10, init_std=0.01, seed=0)
    with bm.thread_limits(threads):
        run = bm.make_training_loop(loop, X, y, init.weight, init.bias, batch_size=256, lr=0.1)
        benchmark.group = f"training epoch {threads}t"
        benchmark.extra_info.update(loop=loop, threads=threads)
        rounds = request.config.getoption("--bench-epochs")
        benchmark.pedantic(run.run_epoch, rounds=rounds, iterations=1, warmup_rounds=1)
    W, b = run.weights()
    accuracy = float(np.mean(np.argmax(X_test @ W + b, axis=1) == y_test))
    benchmark.extra_info["test_accuracy"] = accuracy
    assert accuracy > 0.7
