"""Resources: no memory leaks over many calls, nothing left behind by a fit.

* Every kernel called 100,000 times on small inputs ((8, 10), the size where
  a per-call leak is largest relative to the work), and 1,000 model
  save/load round trips: the resident set size after a warm-up stays within
  a few MB, and the reference counts of the arrays passed in do not grow.
  (Under AddressSanitizer, whose allocator keeps freed memory in
  quarantine, RSS says nothing: the RSS checks skip there.)
* ``Trainer.fit`` -- with validation data, callbacks, a checkpoint file, a
  progress bar, and when a callback raises -- leaves no file descriptor, no
  Python thread, no native thread (after a warm-up fit has started the
  OpenMP and BLAS pools), no SIGINT handler and no BLAS thread limit behind.
"""

from __future__ import annotations

import gc
import io
import os
import signal
import sys
import threading
from pathlib import Path

import numpy as np
import pytest

import csoftmax as cs
from csoftmax.callbacks import Callback, Checkpoint, EarlyStopping

PAGE = os.sysconf("SC_PAGE_SIZE")
LINUX = sys.platform.startswith("linux")
UNDER_ASAN = LINUX and "libasan" in Path("/proc/self/maps").read_text()

pytestmark = pytest.mark.skipif(not LINUX, reason="reads /proc/self")

#: The most RSS may grow over a leak loop, after its warm-up.
RSS_BOUND = 5 * 2**20


def rss() -> int:
    """Resident set size in bytes (/proc/self/statm)."""
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * PAGE


def settle() -> int:
    gc.collect()
    return rss()


# ---------------------------------------------------------------------------
# Leaks: 100,000 calls of each kernel

RNG = np.random.default_rng(0)
X = RNG.normal(size=(8, 10))
X32 = X.astype(np.float32)
LABELS = np.arange(8) % 10
PROBS = np.asarray(cs.softmax(RNG.normal(size=(8, 10))))
WEIGHT = RNG.uniform(0.5, 2, 10)
OUT = np.empty_like(X)
OUT_LSE = np.empty((8, 1))
GRAD = np.empty_like(X)
BAD_LABELS = np.array([0, 1, 2, 3, 4, 5, 6, 12])


def _raises(fn, *args, **kw):
    try:
        fn(*args, **kw)
    except (TypeError, ValueError):
        return
    raise AssertionError("expected an error")


KERNEL_CALLS = {
    "softmax": lambda: cs.softmax(X),
    "softmax float32 out=": lambda: cs.softmax(X32, out=X32),
    "softmax axis=0 (general path)": lambda: cs.softmax(X, axis=0),
    "softmax of a list": lambda: cs.softmax([1.0, 2.0, 3.0]),
    "log_softmax out=": lambda: cs.log_softmax(X, out=OUT),
    "log_softmax strided": lambda: cs.log_softmax(X[::2, ::-1]),
    "logsumexp": lambda: cs.logsumexp(X),
    "logsumexp keepdims out=": lambda: cs.logsumexp(X, keepdims=True, out=OUT_LSE),
    "logsumexp 1-D (a scalar)": lambda: cs.logsumexp(X[0]),
    "cross_entropy": lambda: cs.cross_entropy(X, LABELS),
    "cross_entropy every option": lambda: cs.cross_entropy(
        X, LABELS, weight=WEIGHT, ignore_index=3, reduction="none", label_smoothing=0.1
    ),
    "cross_entropy probabilities": lambda: cs.cross_entropy(X, PROBS),
    "cross_entropy_with_grad": lambda: cs.cross_entropy_with_grad(X, LABELS),
    "cross_entropy_with_grad grad_out=": lambda: cs.cross_entropy_with_grad(
        X, LABELS, label_smoothing=0.2, grad_out=GRAD
    ),
    "accuracy": lambda: cs.accuracy(X, LABELS),
    # The error paths build messages and tracebacks: they must not leak either.
    "cross_entropy bad label": lambda: _raises(cs.cross_entropy, X, BAD_LABELS),
    "softmax bad axis": lambda: _raises(cs.softmax, X, axis=5),
    "softmax complex": lambda: _raises(cs.softmax, X.astype(complex)),
    "cross_entropy_with_grad bad grad_out": lambda: _raises(
        cs.cross_entropy_with_grad, X, LABELS, grad_out=OUT_LSE
    ),
}


#: The plain call of each kernel runs 100,000 times; its variants (options,
#: layouts, error paths) 25,000 times each.
PRIMARY = {
    "softmax",
    "log_softmax out=",
    "logsumexp",
    "cross_entropy",
    "cross_entropy_with_grad",
    "accuracy",
}


def run_calls(call, n: int) -> None:
    for _ in range(n):
        call()


@pytest.mark.skipif(UNDER_ASAN, reason="ASan's quarantine holds freed memory: RSS says nothing")
def test_kernels_do_not_leak_over_100k_calls(record_property):
    """100,000 calls of every kernel (25,000 of each variant and error
    path): RSS stays within RSS_BOUND of what it was after a warm-up."""
    figures = []
    for name, call in KERNEL_CALLS.items():
        run_calls(call, 10_000)  # warm-up: caches, the allocator's pools
        before = settle()
        calls = 100_000 if name in PRIMARY else 25_000
        run_calls(call, calls)
        after = settle()
        figures.append((f"{name} x{calls:,}", before, after))
    report = "\n".join(
        f"  {name:40s} {b / 2**20:8.1f} MB -> {a / 2**20:8.1f} MB ({(a - b) / 2**10:+.0f} KB)"
        for name, b, a in figures
    )
    record_property("rss", report)
    print("\nRSS over 100,000 calls each:\n" + report)
    grown = [(name, a - b) for name, b, a in figures if a - b > RSS_BOUND]
    assert not grown, f"RSS grew by more than {RSS_BOUND >> 20} MB:\n{report}"


def test_kernels_keep_reference_counts():
    """No call keeps a reference to the arrays it is given (a Cython
    refcount leak would show here long before in RSS)."""
    arrays = [X, X32, LABELS, PROBS, WEIGHT, OUT, OUT_LSE, GRAD, BAD_LABELS]
    for name, call in KERNEL_CALLS.items():
        call()
        gc.collect()
        before = [sys.getrefcount(a) for a in arrays]
        run_calls(call, 1000)
        gc.collect()
        after = [sys.getrefcount(a) for a in arrays]
        assert after == before, f"{name}: reference counts {before} -> {after}"


@pytest.mark.skipif(UNDER_ASAN, reason="ASan's quarantine holds freed memory: RSS says nothing")
def test_model_save_load_does_not_leak(tmp_path, record_property):
    """1,000 save/load round trips (and model calls on the loaded model)."""
    model = cs.SoftmaxRegression(20, 10, seed=0)
    model.class_names = [f"class {i}" for i in range(10)]
    path = tmp_path / "model.npz"
    Xm = RNG.normal(size=(8, 20)).astype(np.float32)

    def round_trip():
        model.save(path)
        back = cs.SoftmaxRegression.load(path)
        back.loss_and_grad(Xm, LABELS)
        back.predict_proba(Xm)

    for _ in range(100):
        round_trip()
    before = settle()
    fds = len(os.listdir("/proc/self/fd"))
    for _ in range(1000):
        round_trip()
    after = settle()
    record_property("rss", f"{before} -> {after}")
    print(
        f"\nRSS over 1,000 save/load round trips: {before / 2**20:.1f} MB -> {after / 2**20:.1f} MB"
    )
    assert after - before < RSS_BOUND, f"RSS grew by {(after - before) / 2**20:.1f} MB"
    assert len(os.listdir("/proc/self/fd")) == fds, "file descriptors left open"
    assert sorted(os.listdir(tmp_path)) == ["model.npz"]


# ---------------------------------------------------------------------------
# Nothing left behind by a fit


def fds() -> list[str]:
    """Open file descriptors, as what they point to."""
    out = []
    for fd in sorted(os.listdir("/proc/self/fd"), key=int):
        try:
            out.append(f"{fd} -> {os.readlink(f'/proc/self/fd/{fd}')}")
        except OSError:
            pass  # the descriptor listdir itself used
    return out


def native_threads() -> int:
    return len(os.listdir("/proc/self/task"))


def blas_threads() -> list:
    from threadpoolctl import threadpool_info

    return sorted((i.get("filepath"), i.get("num_threads")) for i in threadpool_info())


def snapshot():
    gc.collect()
    return {
        "fds": fds(),
        "python threads": sorted(t.name for t in threading.enumerate()),
        "native threads": native_threads(),
        "SIGINT handler": signal.getsignal(signal.SIGINT),
        "BLAS threads": blas_threads(),
    }


def blobs(n=600, d=10, q=4, seed=0):
    rng = np.random.default_rng(seed)
    centers = rng.normal(scale=2, size=(q, d))
    y = rng.integers(0, q, n)
    return (centers[y] + rng.normal(size=(n, d))).astype(np.float32), y


class FakeTTY(io.StringIO):
    """A stderr that says it is a terminal, so that fit draws its progress bar."""

    def isatty(self) -> bool:
        return True


def trainer(**kw) -> cs.Trainer:
    return cs.Trainer(
        cs.SoftmaxRegression(10, 4, seed=1),
        cs.SGD(lr=0.1, momentum=0.9),
        batch_size=64,
        seed=2,
        progress=kw.pop("progress", False),
        **kw,
    )


@pytest.mark.parametrize("progress", [False, True], ids=["quiet", "progress-bar"])
def test_fit_leaves_no_file_descriptor_or_thread_behind(tmp_path, monkeypatch, progress):
    X, y = blobs()
    Xv, yv = blobs(200, seed=1)
    if progress:
        monkeypatch.setattr(sys, "stderr", FakeTTY())
    # Warm up: OpenMP's and BLAS's pools start here, and may stay.
    trainer(progress=progress).fit(X, y, epochs=1, validation_data=(Xv, yv))
    before = snapshot()
    for _ in range(3):
        t = trainer(progress=progress)
        h = t.fit(
            X,
            y,
            epochs=4,
            validation_data=(Xv, yv),
            callbacks=[Checkpoint(tmp_path / "ckpt.npz"), EarlyStopping(patience=2)],
        )
        assert len(h) >= 1
        t.evaluate(Xv, yv)
        t.fit(X, y, epochs=5, resume_from=tmp_path / "ckpt.npz")
    after = snapshot()
    for key in before:
        assert after[key] == before[key], f"{key}: {before[key]} before, {after[key]} after"
    assert sorted(os.listdir(tmp_path)) == ["ckpt.npz"]


def test_fit_that_raises_leaves_nothing_behind(tmp_path):
    """A callback raising in the middle of a fit: the exception comes out,
    and the SIGINT handler, BLAS's thread count and the descriptors are
    restored all the same."""
    X, y = blobs()
    trainer().fit(X, y, epochs=1)
    before = snapshot()

    class Boom(Callback):
        def on_epoch_end(self, trainer, epoch, logs):
            if epoch == 1:
                raise RuntimeError("boom")

    for _ in range(3):
        with pytest.raises(RuntimeError, match="boom"):
            trainer().fit(X, y, epochs=5, callbacks=[Checkpoint(tmp_path / "c.npz"), Boom()])
    after = snapshot()
    for key in before:
        assert after[key] == before[key], f"{key}: {before[key]} before, {after[key]} after"
