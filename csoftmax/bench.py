"""Benchmarks: the kernels against NumPy, SciPy, PyTorch, JAX and the memory floor.

One engine serves ``csoftmax bench`` and :func:`bench` (and the
pytest-benchmark suites in ``bench/``).  For every case (kernel, shape
(n, q), dtype, threads) it

1. builds the contenders: csoftmax; the textbook NumPy formulation; the
   peers that are installed (``scipy.special``, PyTorch, JAX, each optional);
   the physical floor, a pass of NumPy over the same array that moves the
   bytes the kernel must move (``np.copyto``: one read and one write, the
   floor of softmax, log-softmax and the loss with its gradient; the fastest
   read-only reduction, the floor of logsumexp and the loss alone);
2. runs each contender once and checks its output against csoftmax's
   (``allclose``): a contender that disagrees is reported and never timed,
   so a wrong fast kernel cannot win;
3. warms each contender up and picks how many calls make one sample;
4. takes ``repeats`` samples round-robin (every repeat runs every contender
   once, the order rotated by one each repeat), so that drift on a shared
   machine hits all of them alike, and reports medians and the spread
   (p90 - p10) / median.

Outputs are preallocated (``out=``) wherever a contender's API allows it;
the table says which contenders allocate.  :func:`bench_training` times the
textbook Fashion-MNIST run of the csoftmax ``Trainer`` against the same loop
written in NumPy and in PyTorch, on the same data, initial weights and batch
order.

>>> from csoftmax.bench import bench
>>> rows = bench(kernels=["softmax"], shapes=[(64, 10)], dtypes=["float32"],
...              threads=[1], repeats=1, peers=[], verbose=False)
>>> rows[0]["kernel"], rows[0]["speedup_numpy"] > 0
('softmax', True)
"""

from __future__ import annotations

import argparse
import dataclasses
import gc
import importlib
import json
import math
import os
import platform
import sys
import textwrap
import time
from collections.abc import Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from typing import IO, Any, Callable, Protocol, Union

import numpy as np

from . import _config, functional
from ._files import atomic_write, unwritable_reason

__all__ = [
    "KERNELS",
    "SHAPES",
    "PEERS",
    "TRAINING_LOOPS",
    "Contender",
    "Problem",
    "bench",
    "bench_training",
    "contenders_for",
    "check_contender",
    "footprint_gib",
    "make_training_loop",
    "format_table",
    "format_training_table",
    "write_json",
    "plot_results",
    "add_arguments",
    "run",
]

#: The kernels, in the order the table shows them.
KERNELS: tuple[str, ...] = (
    "softmax",
    "log_softmax",
    "logsumexp",
    "cross_entropy",
    "cross_entropy_with_grad",
)

#: The full matrix of shapes (n, q) of ``csoftmax bench``.
SHAPES: tuple[tuple[int, int], ...] = (
    (256, 10),
    (60000, 10),
    (4096, 1000),
    (1024, 32000),
    (8192, 32000),
    (65536, 1024),
)

#: The shapes of :func:`bench` in a notebook: seconds, not minutes.
NOTEBOOK_SHAPES: tuple[tuple[int, int], ...] = ((256, 10), (60000, 10), (4096, 1000))

#: The shapes, dtypes and timing of ``--quick``, a smoke run of a few seconds.
QUICK = {
    "shapes": ((256, 10), (4096, 1000)),
    "dtypes": ("float32",),
    "repeats": 3,
    "min_time": 0.001,
    "warmup": 0.005,
}

#: The optional peers, by the name ``peers=`` / ``--peers`` take.
PEERS: tuple[str, ...] = ("scipy", "torch", "jax")

#: The floor of each kernel: "copy" (read + write the array) or "read".
FLOOR_KIND = {
    "softmax": "copy",
    "log_softmax": "copy",
    "logsumexp": "read",
    "cross_entropy": "read",
    "cross_entropy_with_grad": "copy",
}

#: Arrays of the input's size alive at once in a case (input, shared output,
#: scratch, the reference copy, a peer's result and its temporaries); JAX
#: adds its own copy of the input and its result.
ARRAYS_PER_CASE = 6
ARRAYS_PER_CASE_JAX = 2

_FLOAT_TYPES = ("float32", "float64")
_RTOL = {"float32": 2e-4, "float64": 1e-9}

Runner = Callable[[], Any]
Shape = tuple[int, int]
Threads = Union[int, str]


class BenchError(ValueError):
    """A benchmark that cannot run as asked (reported by the CLI on one line)."""


# ------------------------------------------------------------ utilities --
def cpu_count() -> int:
    """The number of cores this process may run on ("all" threads)."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # pragma: no cover - not Linux
        return os.cpu_count() or 1


def _optional(name: str) -> Any | None:
    """Import module ``name`` or return None when it (or a dependency) is missing."""
    try:
        return importlib.import_module(name)
    except ImportError:
        return None


def installed_peers(peers: Sequence[str] | None = None) -> dict[str, str | None]:
    """The version of each asked-for peer, None when it cannot be imported.

    >>> sorted(installed_peers(["scipy"]))
    ['scipy']
    """
    names = PEERS if peers is None else tuple(peers)
    found: dict[str, str | None] = {}
    for name in names:
        if name not in PEERS:
            raise BenchError(f"peers: unknown peer {name!r} (choose from {', '.join(PEERS)})")
        module = _optional("scipy.special" if name == "scipy" else name)
        if module is None:
            found[name] = None
        else:
            top = sys.modules.get(name, module)
            found[name] = str(getattr(top, "__version__", "?"))
    return found


def format_seconds(seconds: float | None) -> str:
    """A duration with a unit and 3 significant digits.

    >>> format_seconds(3.2e-6), format_seconds(0.0451), format_seconds(2.5)
    ('3.20 µs', '45.1 ms', '2.50 s')
    """
    if seconds is None or not math.isfinite(seconds):
        return "-"
    units = (("s", 1.0), ("ms", 1e-3), ("µs", 1e-6))
    unit, scale = next(((u, f) for u, f in units if seconds >= f), ("ns", 1e-9))
    v = seconds / scale
    return f"{v:.3g} {unit}" if v >= 100 else f"{v:#.3g} {unit}"


def parse_shape(text: str) -> Shape:
    """``"4096x1000"`` -> ``(4096, 1000)``.

    >>> parse_shape("60000x10")
    (60000, 10)
    """
    parts = text.lower().replace("×", "x").split("x")
    try:
        n, q = (int(p) for p in parts)
    except ValueError:
        raise BenchError(f"shapes: expected NxQ such as 4096x1000, got {text!r}") from None
    if n < 1 or q < 1:
        raise BenchError(f"shapes: both sizes must be at least 1, got {text!r}")
    return n, q


def _dtype_name(dtype: Any) -> str:
    try:
        name = np.dtype(dtype).name
    except TypeError:
        name = None
    if name not in _FLOAT_TYPES:
        raise BenchError(f"dtypes: expected float32 or float64, got {dtype!r}")
    return name


def resolve_threads(threads: Sequence[Threads]) -> list[int]:
    """Thread counts, ``"all"`` as the number of cores, duplicates dropped.

    >>> resolve_threads([1, 1, 2])
    [1, 2]
    """
    out: list[int] = []
    for t in threads:
        if isinstance(t, str) and t.strip().lower() == "all":
            k = cpu_count()
        else:
            try:
                k = int(t)
            except (TypeError, ValueError):
                raise BenchError(f"threads: expected an integer or 'all', got {t!r}") from None
            if k < 1:
                raise BenchError(f"threads: must be at least 1, got {k}")
        if k not in out:
            out.append(k)
    return out


@contextmanager
def thread_limits(threads: int) -> Iterator[None]:
    """Run the body with ``threads`` threads for csoftmax, PyTorch (if loaded)
    and every BLAS (threadpoolctl); restore all three afterwards."""
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # pragma: no cover - a declared dependency
        threadpool_limits = None
    torch = sys.modules.get("torch")
    before_cs, requested = _config.get_num_threads(), _config._requested_threads
    before_torch = torch.get_num_threads() if torch is not None else None
    limits = threadpool_limits(limits=threads, user_api="blas") if threadpool_limits else None
    try:
        _config.set_num_threads(threads)
        if torch is not None:
            torch.set_num_threads(threads)
        yield
    finally:
        _config.set_num_threads(before_cs)
        _config._requested_threads = requested  # BLAS loaded later keeps its own count
        if torch is not None and before_torch is not None:
            torch.set_num_threads(before_torch)
        if limits is not None:
            limits.restore_original_limits()


# ----------------------------------------------------------- contenders --
class Problem:
    """The input of a case and the buffers its contenders share.

    Parameters
    ----------
    x : ndarray, shape (n, q), float32 or float64
        The logits.
    labels : ndarray of int64, shape (n,)
        The targets of the cross-entropy kernels.
    threads : int
        The thread count of the case (threaded floors split the rows).

    Examples
    --------
    >>> p = Problem.random(4, 3, "float32")
    >>> p.buffer("out").shape, p.x.dtype
    ((4, 3), dtype('float32'))
    """

    def __init__(self, x: np.ndarray, labels: np.ndarray, threads: int = 1) -> None:
        self.x = x
        self.labels = labels
        self.threads = threads
        self._buffers: dict[str, np.ndarray] = {}
        self._cache: dict[str, Any] = {}

    @classmethod
    def random(cls, n: int, q: int, dtype: Any, seed: int = 0, threads: int = 1) -> Problem:
        """Standard-normal logits and uniform labels."""
        rng = np.random.default_rng(seed)
        x = rng.standard_normal((n, q), dtype=np.dtype(dtype).type)
        labels = rng.integers(0, q, size=n, dtype=np.int64)
        return cls(x, labels, threads)

    @property
    def shape(self) -> Shape:
        return self.x.shape  # type: ignore[return-value]

    @property
    def nbytes(self) -> int:
        return self.x.nbytes

    def buffer(self, name: str, shape: tuple[int, ...] | None = None) -> np.ndarray:
        """A preallocated, already touched array of the input's dtype."""
        shape = self.x.shape if shape is None else shape
        buf = self._buffers.get(name)
        if buf is None or buf.shape != shape:
            buf = np.empty(shape, self.x.dtype)
            buf.fill(0)  # fault the pages in now, not in the first timed call
            self._buffers[name] = buf
        return buf

    def cached(self, key: str, make: Callable[[], Any]) -> Any:
        """``make()`` once per problem (tensors, index arrays)."""
        if key not in self._cache:
            self._cache[key] = make()
        return self._cache[key]

    def rows(self) -> np.ndarray:
        return self.cached("rows", lambda: np.arange(self.x.shape[0]))

    def release(self) -> None:
        """Drop every buffer and cached conversion."""
        self._buffers.clear()
        self._cache.clear()


@dataclasses.dataclass(frozen=True)
class Contender:
    """One way to compute a kernel.

    Parameters
    ----------
    name : str
        Shown in the table and the JSON (``"torch.softmax"``).
    family : str
        ``"csoftmax"``, ``"numpy"``, ``"floor"``, or a peer (``"scipy"``,
        ``"torch"``, ``"jax"``, or any other name for an injected one).
    prepare : callable
        ``prepare(problem)`` returns the zero-argument function that is timed;
        it returns the kernel's result (the floors' results are not checked).
    allocates : bool
        Whether each call allocates its output (no ``out=`` in its API).
    note : str
        How threads apply, or anything else worth a footnote.

    Examples
    --------
    >>> c = Contender("double", "other", lambda p: lambda: 2 * p.x)
    >>> c.prepare(Problem.random(2, 3, "float64"))().shape
    (2, 3)
    """

    name: str
    family: str
    prepare: Callable[[Problem], Runner]
    allocates: bool = False
    note: str = ""


# The textbook NumPy formulations: max-shift, exp, sum, divide, written by a
# careful user (vectorised, in place where NumPy allows).
def numpy_softmax(x: np.ndarray, out: np.ndarray) -> np.ndarray:
    """Max-shift, exp, sum, divide, in ``out``.

    >>> numpy_softmax(np.zeros((1, 2)), np.empty((1, 2)))
    array([[0.5, 0.5]])
    """
    m = x.max(axis=1, keepdims=True)
    np.subtract(x, m, out=out)
    np.exp(out, out=out)
    out /= out.sum(axis=1, keepdims=True)
    return out


def numpy_log_softmax(x: np.ndarray, out: np.ndarray, scratch: np.ndarray) -> np.ndarray:
    """``(x - m) - log(sum(exp(x - m)))`` in ``out``, ``scratch`` for the exp."""
    m = x.max(axis=1, keepdims=True)
    np.subtract(x, m, out=out)
    np.exp(out, out=scratch)
    out -= np.log(scratch.sum(axis=1, keepdims=True))
    return out


def numpy_logsumexp(x: np.ndarray, out: np.ndarray, scratch: np.ndarray) -> np.ndarray:
    """``m + log(sum(exp(x - m)))`` per row in ``out`` (n,)."""
    m = x.max(axis=1, keepdims=True)
    np.subtract(x, m, out=scratch)
    np.exp(scratch, out=scratch)
    np.log(scratch.sum(axis=1), out=out)
    out += m[:, 0]
    return out


def numpy_cross_entropy(
    x: np.ndarray, labels: np.ndarray, scratch: np.ndarray, rows: np.ndarray
) -> np.floating:
    """The mean of ``-log_softmax(x)[i, labels[i]]`` (log-softmax, pick, mean;
    the log-softmax is formed only at the picked entries)."""
    m = x.max(axis=1, keepdims=True)
    picked = x[rows, labels] - m[:, 0]
    np.subtract(x, m, out=scratch)
    np.exp(scratch, out=scratch)
    return np.mean(np.log(scratch.sum(axis=1)) - picked)


def numpy_cross_entropy_with_grad(
    x: np.ndarray, labels: np.ndarray, grad: np.ndarray, rows: np.ndarray
) -> tuple[np.floating, np.ndarray]:
    """The mean loss and ``(softmax(x) - one_hot(labels)) / n`` in ``grad``."""
    n = x.shape[0]
    m = x.max(axis=1, keepdims=True)
    picked = x[rows, labels] - m[:, 0]
    np.subtract(x, m, out=grad)
    np.exp(grad, out=grad)
    s = grad.sum(axis=1, keepdims=True)
    loss = np.mean(np.log(s[:, 0]) - picked)
    grad /= s
    grad[rows, labels] -= 1
    grad /= n
    return loss, grad


def _csoftmax_contender(kernel: str) -> Contender:
    def prepare(p: Problem) -> Runner:
        x, y = p.x, p.labels
        if kernel == "softmax":
            out = p.buffer("out")
            return lambda: functional.softmax(x, out=out)
        if kernel == "log_softmax":
            out = p.buffer("out")
            return lambda: functional.log_softmax(x, out=out)
        if kernel == "logsumexp":
            res = p.buffer("rows_out", (x.shape[0],))
            return lambda: functional.logsumexp(x, axis=1, out=res)
        if kernel == "cross_entropy":
            return lambda: functional.cross_entropy(x, y)
        grad = p.buffer("out")
        return lambda: functional.cross_entropy_with_grad(x, y, grad_out=grad)

    return Contender("csoftmax", "csoftmax", prepare, note="csoftmax.set_num_threads")


def _numpy_contender(kernel: str) -> Contender:
    def prepare(p: Problem) -> Runner:
        x, y = p.x, p.labels
        if kernel == "softmax":
            out = p.buffer("out")
            return lambda: numpy_softmax(x, out)
        if kernel == "log_softmax":
            out, scratch = p.buffer("out"), p.buffer("scratch")
            return lambda: numpy_log_softmax(x, out, scratch)
        if kernel == "logsumexp":
            res, scratch = p.buffer("rows_out", (x.shape[0],)), p.buffer("scratch")
            return lambda: numpy_logsumexp(x, res, scratch)
        rows = p.rows()
        if kernel == "cross_entropy":
            scratch = p.buffer("scratch")
            return lambda: numpy_cross_entropy(x, y, scratch, rows)
        grad = p.buffer("out")
        return lambda: numpy_cross_entropy_with_grad(x, y, grad, rows)

    return Contender("numpy", "numpy", prepare, note="one thread")


def _scipy_contenders(kernel: str) -> list[Contender]:
    if kernel in ("cross_entropy", "cross_entropy_with_grad"):
        return []  # scipy.special has no cross-entropy

    def prepare(p: Problem) -> Runner:
        special = importlib.import_module("scipy.special")
        fn, x = getattr(special, kernel), p.x
        return lambda: fn(x, axis=1)

    return [Contender(f"scipy.special.{kernel}", "scipy", prepare, True, "one thread")]


def _torch_contenders(kernel: str) -> list[Contender]:
    def tensors(p: Problem) -> tuple[Any, Any, Any]:
        torch = importlib.import_module("torch")
        t = p.cached("torch_x", lambda: torch.from_numpy(p.x))
        y = p.cached("torch_y", lambda: torch.from_numpy(p.labels))
        return torch, t, y

    note = "torch.set_num_threads"
    if kernel in ("softmax", "log_softmax"):

        def prepare(p: Problem) -> Runner:
            torch, t, _ = tensors(p)
            fn, out = getattr(torch, kernel), torch.from_numpy(p.buffer("out"))
            return lambda: fn(t, 1, out=out)

        return [Contender(f"torch.{kernel}", "torch", prepare, False, note)]
    if kernel == "logsumexp":

        def prepare(p: Problem) -> Runner:
            torch, t, _ = tensors(p)
            out = torch.from_numpy(p.buffer("rows_out", (p.x.shape[0],)))
            return lambda: torch.logsumexp(t, 1, out=out)

        return [Contender("torch.logsumexp", "torch", prepare, False, note)]
    if kernel == "cross_entropy":

        def prepare(p: Problem) -> Runner:
            torch, t, y = tensors(p)
            F = importlib.import_module("torch.nn.functional")
            return lambda: F.cross_entropy(t, y)

        return [Contender("torch F.cross_entropy", "torch", prepare, True, note)]

    def closed_form(p: Problem) -> Runner:
        # What a careful user writes: log-softmax into the gradient buffer,
        # the loss from it, then exp and subtract the one-hot, divide by n.
        torch, t, y = tensors(p)
        F = importlib.import_module("torch.nn.functional")
        g = torch.from_numpy(p.buffer("out"))
        rows = p.cached("torch_rows", lambda: torch.arange(p.x.shape[0]))
        minus_one = torch.tensor(-1.0, dtype=t.dtype)
        n = p.x.shape[0]

        def run() -> tuple[Any, Any]:
            torch.log_softmax(t, 1, out=g)
            loss = F.nll_loss(g, y)
            g.exp_()
            g.index_put_((rows, y), minus_one, accumulate=True)
            g.div_(n)
            return loss, g

        return run

    def autograd(p: Problem) -> Runner:
        torch, _, y = tensors(p)
        F = importlib.import_module("torch.nn.functional")
        leaf = torch.from_numpy(p.x).requires_grad_()

        def run() -> tuple[Any, Any]:
            leaf.grad = None
            loss = F.cross_entropy(leaf, y)
            loss.backward()
            return loss.detach(), leaf.grad

        return run

    return [
        Contender("torch closed form", "torch", closed_form, False, note),
        Contender("torch autograd", "torch", autograd, True, note),
    ]


_JAX_JIT: dict[str, Callable[..., Any]] = {}


def _jax_function(kernel: str) -> Callable[..., Any]:
    """The jitted JAX function of a kernel (compiled once per shape by JAX)."""
    if kernel in _JAX_JIT:
        return _JAX_JIT[kernel]
    jax = importlib.import_module("jax")
    jnp = importlib.import_module("jax.numpy")

    def loss(a: Any, y: Any) -> Any:
        logp = jax.nn.log_softmax(a, axis=1)
        return -jnp.mean(jnp.take_along_axis(logp, y[:, None], axis=1))

    fns = {
        "softmax": lambda a, y: jax.nn.softmax(a, axis=1),
        "log_softmax": lambda a, y: jax.nn.log_softmax(a, axis=1),
        "logsumexp": lambda a, y: jax.nn.logsumexp(a, axis=1),
        "cross_entropy": loss,
        "cross_entropy_with_grad": jax.value_and_grad(loss),
    }
    _JAX_JIT[kernel] = jax.jit(fns[kernel])
    return _JAX_JIT[kernel]


def _jax_contenders(kernel: str) -> list[Contender]:
    names = {
        "softmax": "jax.nn.softmax",
        "log_softmax": "jax.nn.log_softmax",
        "logsumexp": "jax.nn.logsumexp",
        "cross_entropy": "jax log_softmax+take",
        "cross_entropy_with_grad": "jax value_and_grad",
    }

    def prepare(p: Problem) -> Runner:
        jax = importlib.import_module("jax")
        if p.x.dtype == np.float64 and not jax.config.jax_enable_x64:
            jax.config.update("jax_enable_x64", True)  # else JAX computes in float32
        xj = p.cached("jax_x", lambda: jax.device_put(p.x))
        yj = p.cached("jax_y", lambda: jax.device_put(p.labels))
        fn = _jax_function(kernel)
        return lambda: jax.block_until_ready(fn(xj, yj))

    return [Contender(names[kernel], "jax", prepare, True, "jit; XLA's threads are set at import")]


_POOLS: dict[int, ThreadPoolExecutor] = {}


def _pool(threads: int) -> ThreadPoolExecutor:
    if threads not in _POOLS:
        _POOLS[threads] = ThreadPoolExecutor(threads, thread_name_prefix="csoftmax-floor")
    return _POOLS[threads]


def _row_slices(n: int, parts: int) -> list[slice]:
    bounds = np.linspace(0, n, parts + 1).astype(int)
    return [slice(a, b) for a, b in zip(bounds[:-1], bounds[1:]) if b > a]


def _floor_contenders(kernel: str, threads: int) -> list[Contender]:
    """The physical floor: NumPy passes that only move the kernel's bytes.

    NumPy's passes run on one thread; with more threads the rows are also
    split over a thread pool (NumPy releases the GIL in these loops), and
    the floor is the fastest of the variants.
    """

    def threaded(op: Callable[[slice], Any], p: Problem) -> Runner:
        pool, parts = _pool(p.threads), _row_slices(p.x.shape[0], p.threads)
        return lambda: [f.result() for f in [pool.submit(op, s) for s in parts]]

    if FLOOR_KIND[kernel] == "copy":

        def copy(p: Problem) -> Runner:
            x, out = p.x, p.buffer("out")
            return lambda: np.copyto(out, x)

        def copy_threaded(p: Problem) -> Runner:
            x, out = p.x, p.buffer("out")
            return threaded(lambda s: np.copyto(out[s], x[s]), p)

        found = [Contender("np.copyto", "floor", copy, note="one thread")]
        if threads > 1:
            found.append(Contender(f"np.copyto x{threads}", "floor", copy_threaded))
        return found

    def max_reduce(p: Problem) -> Runner:
        x = p.x
        return lambda: np.maximum.reduce(x, axis=None)

    def add_reduce(p: Problem) -> Runner:
        x = p.x
        return lambda: np.add.reduce(x, axis=None)

    def max_threaded(p: Problem) -> Runner:
        x = p.x
        return threaded(lambda s: np.maximum.reduce(x[s], axis=None), p)

    found = [
        Contender("np.maximum.reduce", "floor", max_reduce, note="one thread"),
        Contender("np.add.reduce", "floor", add_reduce, note="one thread"),
    ]
    if threads > 1:
        found.append(Contender(f"np.maximum.reduce x{threads}", "floor", max_threaded))
    return found


def contenders_for(
    kernel: str,
    threads: int = 1,
    peers: Sequence[str] | None = None,
    extra: Sequence[Contender] = (),
) -> list[Contender]:
    """Every contender of ``kernel``: csoftmax first, NumPy, the installed
    peers among ``peers`` (default: all of :data:`PEERS`), ``extra``, the floors.

    >>> [c.name for c in contenders_for("softmax", peers=[])]
    ['csoftmax', 'numpy', 'np.copyto']
    """
    if kernel not in KERNELS:
        raise BenchError(f"kernels: unknown kernel {kernel!r} (choose from {', '.join(KERNELS)})")
    found = [_csoftmax_contender(kernel), _numpy_contender(kernel)]
    makers = {"scipy": _scipy_contenders, "torch": _torch_contenders, "jax": _jax_contenders}
    for name, version in installed_peers(peers).items():
        if version is not None:
            found.extend(makers[name](kernel))
    found.extend(extra)
    found.extend(_floor_contenders(kernel, threads))
    return found


# --------------------------------------------------------- verification --
def _as_numpy(result: Any) -> Any:
    """A contender's result as NumPy (tuples element-wise), never a view of a buffer."""
    if isinstance(result, tuple):
        return tuple(_as_numpy(r) for r in result)
    if hasattr(result, "detach"):  # torch
        result = result.detach().cpu().numpy()
    return np.array(result, copy=True)


def mismatch(got: Any, expected: Any, dtype: str) -> str | None:
    """Why ``got`` does not match ``expected`` (csoftmax's result), or None.

    Values must be ``allclose`` (rtol 2e-4 in float32, 1e-9 in float64, atol
    the rtol times the largest magnitude, nan where nan); a result may be of
    a wider dtype but not a narrower one or another shape.

    >>> mismatch(np.ones(3), np.ones(3), "float64") is None
    True
    >>> mismatch(np.zeros(3), np.ones(3), "float64")
    'values differ: max abs error 1 at index 0'
    """
    if isinstance(expected, tuple):
        if not isinstance(got, tuple) or len(got) != len(expected):
            return f"expected a tuple of {len(expected)} results"
        for i, (g, e) in enumerate(zip(got, expected)):
            why = mismatch(g, e, dtype)
            if why is not None:
                return f"result {i}: {why}"
        return None
    got, expected = np.asarray(got), np.asarray(expected)
    if got.shape != expected.shape:
        return f"shape {got.shape}, expected {expected.shape}"
    if got.dtype.kind != "f" or got.dtype.itemsize < expected.dtype.itemsize:
        return f"dtype {got.dtype}, expected {expected.dtype}"
    a, b = got.astype(np.float64), expected.astype(np.float64)
    finite = np.isfinite(b)
    scale = float(np.max(np.abs(b[finite]))) if finite.any() else 0.0
    rtol = _RTOL[dtype]
    close = np.isclose(a, b, rtol=rtol, atol=rtol * scale, equal_nan=True)
    if close.all():
        return None
    err = np.where(close, 0.0, np.abs(a - b))
    err = np.where(np.isnan(err), np.inf, err)
    where = np.unravel_index(int(np.argmax(err)), err.shape) if err.ndim else ()
    index = ", ".join(map(str, where)) or "()"
    return f"values differ: max abs error {float(np.max(err)):.3g} at index {index}"


# --------------------------------------------------------------- timing --
@dataclasses.dataclass
class _Timer:
    fn: Runner
    number: int = 1


def _calibrate(fn: Runner, min_time: float, warmup: float) -> int:
    """Warm ``fn`` up (at least one call, ``warmup`` seconds at most ~) and
    return how many calls make a sample of about ``min_time`` seconds."""
    best, spent, calls = math.inf, 0.0, 0
    while calls < 1 or (spent < warmup and calls < 10_000):
        t0 = time.perf_counter()
        fn()
        dt = time.perf_counter() - t0
        best, spent, calls = min(best, dt), spent + dt, calls + 1
    return max(1, min(1_000_000, int(min_time / max(best, 1e-9))))


def _sample(fn: Runner, number: int) -> float:
    t0 = time.perf_counter()
    for _ in range(number):
        fn()
    return (time.perf_counter() - t0) / number


def time_round_robin(
    runners: Mapping[str, Runner], repeats: int, min_time: float, warmup: float
) -> dict[str, dict[str, Any]]:
    """Median per-call times of ``runners``, sampled round-robin.

    Every runner is warmed up and calibrated first; then each of the
    ``repeats`` rounds takes one sample of every runner, the order rotated
    by one per round.  The garbage collector is off while timing.

    >>> t = time_round_robin({"a": lambda: None, "b": lambda: None}, 3, 1e-4, 0.0)
    >>> sorted(t), len(t["a"]["times_s"])
    (['a', 'b'], 3)
    """
    names = list(runners)
    timers = {name: _Timer(runners[name]) for name in names}
    times: dict[str, list[float]] = {name: [] for name in names}
    gc_was_enabled = gc.isenabled()
    gc.disable()
    try:
        for timer in timers.values():
            timer.number = _calibrate(timer.fn, min_time, warmup)
        for r in range(repeats):
            k = r % len(names) if names else 0
            for name in names[k:] + names[:k]:
                timer = timers[name]
                times[name].append(_sample(timer.fn, timer.number))
    finally:
        if gc_was_enabled:
            gc.enable()
    return {name: _stats(times[name], timers[name].number) for name in names}


def _stats(samples: list[float], number: int) -> dict[str, Any]:
    a = np.asarray(samples)
    p10, median, p90 = (float(v) for v in np.percentile(a, [10, 50, 90]))
    return {
        "median_s": median,
        "p10_s": p10,
        "p90_s": p90,
        "spread": (p90 - p10) / median if median > 0 else math.nan,
        "number": number,
        "times_s": [float(v) for v in samples],
    }


# --------------------------------------------------------------- engine --
@dataclasses.dataclass(frozen=True)
class BenchConfig:
    """What :func:`bench` runs (validated; see :func:`bench` for the fields)."""

    kernels: tuple[str, ...]
    shapes: tuple[Shape, ...]
    dtypes: tuple[str, ...]
    threads: tuple[int, ...]
    repeats: int
    min_time: float
    warmup: float
    max_gb: float
    peers: tuple[str, ...] | None
    seed: int

    def as_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["shapes"] = [list(s) for s in self.shapes]
        return d


def footprint_gib(shape: Shape, dtype: Any, with_jax: bool = False) -> float:
    """GiB a case of ``shape`` keeps alive at its peak (an estimate: the
    input, the shared output, scratch, the reference copy and a peer's
    result with its temporaries; JAX adds its copies).

    >>> footprint_gib((8192, 32000), "float64") > 6 > footprint_gib((8192, 32000), "float32")
    True
    """
    arrays = ARRAYS_PER_CASE + (ARRAYS_PER_CASE_JAX if with_jax else 0)
    return float(shape[0]) * shape[1] * np.dtype(dtype).itemsize * arrays / 2**30


def check_contender(problem: Problem, kernel: str, contender: Contender) -> str | None:
    """Run ``contender`` and csoftmax once on ``problem``; why they disagree, or None.

    >>> p = Problem.random(8, 5, "float64")
    >>> [check_contender(p, "softmax", c) for c in contenders_for("softmax", peers=[])]
    [None, None, None]
    """
    if contender.family in ("csoftmax", "floor"):
        return None
    reference = _as_numpy(_csoftmax_contender(kernel).prepare(problem)())
    return mismatch(_as_numpy(contender.prepare(problem)()), reference, problem.x.dtype.name)


def _bench_case(
    problem: Problem, kernel: str, contenders: Sequence[Contender], cfg: BenchConfig
) -> dict[str, Any]:
    """Verify and time the contenders of one case; its row of results."""
    dtype = problem.x.dtype.name
    runners: dict[str, Runner] = {}
    failures: dict[str, str] = {}
    mismatches: dict[str, str] = {}
    reference: Any = None
    for c in contenders:
        try:
            fn = c.prepare(problem)
            result = None if c.family == "floor" else _as_numpy(fn())
        except Exception as e:  # a peer that cannot run this case is reported, not fatal
            if c.family == "csoftmax":
                raise
            failures[c.name] = f"{type(e).__name__}: {e}"
            continue
        if c.family == "csoftmax":
            reference = result
        elif c.family != "floor":
            why = mismatch(result, reference, dtype)
            if why is not None:
                mismatches[c.name] = why
                continue
        runners[c.name] = fn
    del reference
    stats = time_round_robin(runners, cfg.repeats, cfg.min_time, cfg.warmup)
    by_name = {c.name: c for c in contenders}
    for name, s in stats.items():
        s["family"] = by_name[name].family
        s["allocates"] = by_name[name].allocates
        s["note"] = by_name[name].note

    def best(families: Callable[[str], bool]) -> tuple[str | None, float]:
        found = [(s["median_s"], n) for n, s in stats.items() if families(s["family"])]
        if not found:
            return None, math.nan
        t, n = min(found)
        return n, t

    ours = stats["csoftmax"]["median_s"]
    numpy_name, numpy_s = best(lambda f: f == "numpy")
    peer, peer_s = best(lambda f: f not in ("csoftmax", "numpy", "floor"))
    floor, floor_s = best(lambda f: f == "floor")
    floor_bytes = problem.nbytes * (2 if FLOOR_KIND[kernel] == "copy" else 1)
    shown = [n for n in ("csoftmax", numpy_name, peer, floor) if n is not None]
    return {
        "kernel": kernel,
        "n": problem.shape[0],
        "q": problem.shape[1],
        "dtype": dtype,
        "threads": problem.threads,
        "csoftmax_s": ours,
        "numpy_s": numpy_s,
        "speedup_numpy": numpy_s / ours,
        "peer": peer,
        "peer_s": peer_s,
        "peer_ratio": peer_s / ours,
        "floor": floor,
        "floor_kind": FLOOR_KIND[kernel],
        "floor_s": floor_s,
        "floor_bytes": floor_bytes,
        "gbps": floor_bytes / ours / 1e9,
        "floor_fraction": floor_s / ours,
        "spread": max(stats[n]["spread"] for n in shown),
        "repeats": cfg.repeats,
        "contenders": stats,
        "mismatches": mismatches,
        "failures": failures,
        "skipped": None,
    }


def _skipped_row(kernel: str, shape: Shape, dtype: str, threads: int, why: str) -> dict[str, Any]:
    nan = math.nan
    return {
        "kernel": kernel,
        "n": shape[0],
        "q": shape[1],
        "dtype": dtype,
        "threads": threads,
        "csoftmax_s": nan,
        "numpy_s": nan,
        "speedup_numpy": nan,
        "peer": None,
        "peer_s": nan,
        "peer_ratio": nan,
        "floor": None,
        "floor_kind": FLOOR_KIND[kernel],
        "floor_s": nan,
        "floor_bytes": shape[0] * shape[1] * np.dtype(dtype).itemsize,
        "gbps": nan,
        "floor_fraction": nan,
        "spread": nan,
        "repeats": 0,
        "contenders": {},
        "mismatches": {},
        "failures": {},
        "skipped": why,
    }


#: The defaults of :func:`bench` (a notebook: seconds) and of ``csoftmax bench``.
NOTEBOOK_DEFAULTS: dict[str, Any] = {
    "shapes": NOTEBOOK_SHAPES,
    "dtypes": ("float32",),
    "threads": ("all",),
    "repeats": 5,
    "min_time": 0.005,
    "warmup": 0.02,
}
CLI_DEFAULTS: dict[str, Any] = {
    "shapes": SHAPES,
    "dtypes": _FLOAT_TYPES,
    "threads": (1, "all"),
    "repeats": 9,
    "min_time": 0.005,
    "warmup": 0.05,
}


def make_config(
    kernels: Sequence[str] | None = None,
    shapes: Sequence[Shape | str] | None = None,
    dtypes: Sequence[Any] | None = None,
    threads: Sequence[Threads] | None = None,
    *,
    repeats: int | None = None,
    min_time: float | None = None,
    warmup: float | None = None,
    max_gb: float = 6.0,
    peers: Sequence[str] | None = None,
    quick: bool = False,
    seed: int = 0,
    defaults: Mapping[str, Any] = NOTEBOOK_DEFAULTS,
) -> BenchConfig:
    """A validated :class:`BenchConfig`: each argument left None takes the
    ``--quick`` value (when ``quick``), else the one in ``defaults``.

    >>> make_config(shapes=["8x4"], quick=True).repeats
    3
    """
    base = {**defaults, **(QUICK if quick else {})}

    def pick(value: Any, key: str) -> Any:
        return base[key] if value is None else value

    ks = tuple(KERNELS if kernels is None else kernels)
    for k in ks:
        if k not in KERNELS:
            raise BenchError(f"kernels: unknown kernel {k!r} (choose from {', '.join(KERNELS)})")
    shp = tuple(
        parse_shape(s if isinstance(s, str) else "x".join(map(str, s)))
        for s in pick(shapes, "shapes")
    )
    dts = tuple(_dtype_name(d) for d in pick(dtypes, "dtypes"))
    ths = tuple(resolve_threads(pick(threads, "threads")))
    reps = int(pick(repeats, "repeats"))
    mt, wu = float(pick(min_time, "min_time")), float(pick(warmup, "warmup"))
    if not (ks and shp and dts and ths):
        raise BenchError("kernels, shapes, dtypes and threads must not be empty")
    if reps < 1:
        raise BenchError(f"repeats: must be at least 1, got {reps}")
    if not (mt >= 0 and wu >= 0):
        raise BenchError(f"min_time and warmup: must be >= 0, got {mt} and {wu}")
    if not (max_gb > 0):
        raise BenchError(f"max_gb: must be > 0, got {max_gb}")
    if peers is not None:
        installed_peers(peers)  # checks the names
    return BenchConfig(
        ks,
        shp,
        dts,
        ths,
        reps,
        mt,
        wu,
        float(max_gb),
        None if peers is None else tuple(peers),
        seed,
    )


def run_benchmarks(
    cfg: BenchConfig,
    *,
    extra_contenders: Mapping[str, Sequence[Contender]] | None = None,
    progress: Callable[[int, int, dict[str, Any]], None] | None = None,
) -> list[dict[str, Any]]:
    """Run every case of ``cfg``; one row (a dict) per case, in table order.

    Each (shape, dtype) input is built once and shared by its kernels and
    thread counts; a shape whose estimated footprint exceeds ``cfg.max_gb``
    GiB gives rows with ``skipped`` set instead.  ``extra_contenders`` maps a
    kernel to more contenders (they are verified like the peers).
    """
    extra = dict(extra_contenders or {})
    with_jax = installed_peers(cfg.peers).get("jax") is not None  # imports the peers
    total = len(cfg.shapes) * len(cfg.dtypes) * len(cfg.threads) * len(cfg.kernels)
    rows: list[dict[str, Any]] = []

    def done(row: dict[str, Any]) -> None:
        rows.append(row)
        if progress is not None:
            progress(len(rows), total, row)

    for shape in cfg.shapes:
        for dtype in cfg.dtypes:
            need = footprint_gib(shape, dtype, with_jax)
            if need > cfg.max_gb:
                why = f"needs about {need:.1f} GiB, more than max_gb={cfg.max_gb:g}"
                for t in cfg.threads:
                    for k in cfg.kernels:
                        done(_skipped_row(k, shape, dtype, t, why))
                continue
            problem = Problem.random(*shape, dtype, seed=cfg.seed)
            try:
                for t in cfg.threads:
                    problem.threads = t
                    with thread_limits(t):
                        for k in cfg.kernels:
                            contenders = contenders_for(k, t, cfg.peers, extra.get(k, ()))
                            done(_bench_case(problem, k, contenders, cfg))
            finally:
                problem.release()
                del problem

    def key(row: dict[str, Any]) -> tuple[int, ...]:
        return (
            KERNELS.index(row["kernel"]),
            cfg.shapes.index((row["n"], row["q"])),
            cfg.dtypes.index(row["dtype"]),
            cfg.threads.index(row["threads"]),
        )

    return sorted(rows, key=key)


def bench(
    kernels: Sequence[str] | None = None,
    shapes: Sequence[Shape | str] | None = None,
    dtypes: Sequence[Any] | None = None,
    threads: Sequence[Threads] | None = None,
    *,
    repeats: int | None = None,
    min_time: float | None = None,
    warmup: float | None = None,
    max_gb: float = 6.0,
    peers: Sequence[str] | None = None,
    quick: bool = False,
    seed: int = 0,
    verbose: bool = True,
    details: bool = False,
    json_path: str | os.PathLike | None = None,
    plot_path: str | os.PathLike | None = None,
    extra_contenders: Mapping[str, Sequence[Contender]] | None = None,
    progress: bool = False,
    file: IO[str] | None = None,
    defaults: Mapping[str, Any] = NOTEBOOK_DEFAULTS,
) -> list[dict[str, Any]]:
    """Time the kernels against NumPy, the installed peers and the memory floor.

    Prints a table (unless ``verbose=False``) and returns its rows.  The
    defaults are a short run for a notebook: the shapes (256, 10),
    (60000, 10) and (4096, 1000), float32, all threads, 5 repeats;
    ``csoftmax bench`` runs the full matrix.

    Parameters
    ----------
    kernels : list of str, optional
        Among :data:`KERNELS` (default: all).
    shapes : list of (n, q) or "NxQ", optional
    dtypes : list of "float32" / "float64", optional
    threads : list of int or "all", optional
        Thread counts for csoftmax, PyTorch and BLAS (NumPy's and SciPy's
        kernels run on one thread whatever this is).
    repeats : int, optional
        Round-robin samples per contender; the median is reported.
    min_time, warmup : float, optional
        Seconds per sample (enough calls are grouped to reach it) and of
        warm-up per contender.
    max_gb : float, default 6
        Memory budget in GiB: shapes whose case would need more are skipped
        with a note.
    peers : list of str, optional
        Among ``"scipy"``, ``"torch"``, ``"jax"`` (default: every one that is
        installed; ``[]`` for NumPy only).
    quick : bool
        A smoke run: two small shapes, float32, 3 short repeats (arguments
        given explicitly still win).
    seed : int
        Seed of the random logits and labels.
    verbose, details : bool
        Print the table; also every contender of every case.
    json_path, plot_path : path, optional
        Also write all raw timings as JSON (atomically) / a PNG bar chart
        (needs matplotlib).
    extra_contenders : dict, optional
        Kernel name -> more :class:`Contender` objects to time.
    progress : bool
        One line per finished case on standard error.
    file : text stream, optional
        Where to print (default standard output).
    defaults : dict
        The values of the arguments left None: :data:`NOTEBOOK_DEFAULTS`
        here, :data:`CLI_DEFAULTS` (the full matrix) for ``csoftmax bench``.

    Returns
    -------
    list of dict
        One per (kernel, shape, dtype, threads): ``csoftmax_s`` (median
        seconds per call), ``gbps``, ``floor_fraction``, ``speedup_numpy``,
        ``peer``/``peer_ratio``, ``spread``, every contender's raw times in
        ``contenders``, ``mismatches``, ``failures`` and ``skipped``.

    Examples
    --------
    >>> from csoftmax.bench import bench
    >>> rows = bench(kernels=["logsumexp"], shapes=[(256, 10)], threads=[1],
    ...              repeats=1, peers=[], verbose=False)
    >>> [(r["kernel"], r["n"], r["q"], r["dtype"]) for r in rows]
    [('logsumexp', 256, 10, 'float32')]
    """
    cfg = make_config(
        kernels,
        shapes,
        dtypes,
        threads,
        repeats=repeats,
        min_time=min_time,
        warmup=warmup,
        max_gb=max_gb,
        peers=peers,
        quick=quick,
        seed=seed,
        defaults=defaults,
    )
    if json_path is not None:
        _check_output("json_path", json_path)
    if plot_path is not None:
        _check_output("plot_path", plot_path)
        _figure_class()  # fails now, not after the run, without matplotlib
    out = sys.stdout if file is None else file
    peers_found = installed_peers(cfg.peers)
    if verbose:
        print(_header(peers_found), file=out, flush=True)
    rows = run_benchmarks(
        cfg,
        extra_contenders=extra_contenders,
        progress=_print_progress if progress else None,
    )
    if verbose:
        print(format_table(rows, peers=peers_found, details=details), file=out, flush=True)
    if json_path is not None:
        write_json(json_path, {"meta": _meta(cfg.as_dict(), peers_found), "kernels": rows})
        if verbose:
            print(f"wrote {os.fspath(json_path)}", file=out)
    if plot_path is not None:
        plot_results(rows, plot_path)
        if verbose:
            print(f"wrote {os.fspath(plot_path)}", file=out)
    return rows


# --------------------------------------------------------------- output --
def _print_progress(i: int, total: int, row: dict[str, Any]) -> None:
    what = f"{row['kernel']} {row['n']}x{row['q']} {row['dtype']} {row['threads']}t"
    if row["skipped"]:
        result = "skipped"
    else:
        result = f"{format_seconds(row['csoftmax_s'])}, x{row['speedup_numpy']:.2f} vs numpy"
    print(f"[{i}/{total}] {what}: {result}", file=sys.stderr, flush=True)


def _header(peers: Mapping[str, str | None]) -> str:
    from . import __version__

    cfg = _config.show_config(mode="dicts")
    have = [f"{k} {v}" for k, v in peers.items() if v is not None]
    missing = [k for k, v in peers.items() if v is None]
    line = (
        f"csoftmax {__version__} ({cfg['simd']}, OpenMP {cfg['openmp'].split()[0]}), "
        f"numpy {np.__version__}; peers: {', '.join(have) or 'none'}"
    )
    if missing:
        line += f" ({', '.join(missing)} not installed)"
    cores = cpu_count()
    line += f"; {cores} core{'s' if cores != 1 else ''}"
    try:
        load = os.getloadavg()
    except (AttributeError, OSError):  # pragma: no cover - not POSIX
        return line
    line += f", load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}"
    if load[0] > 0.5 * cores:
        line += " (busy: timings are noisy)"
    return line


def _ratio(v: float) -> str:
    return "-" if v is None or not math.isfinite(v) else f"{v:.2f}"


def _percent(v: float) -> str:
    return "-" if v is None or not math.isfinite(v) else f"{v:.0%}"


def _columns(table: list[list[str]], right: set[int]) -> list[str]:
    widths = [max(len(r[i]) for r in table) for i in range(len(table[0]))]
    return [
        "  ".join(
            c.rjust(w) if i in right else c.ljust(w) for i, (c, w) in enumerate(zip(r, widths))
        ).rstrip()
        for r in table
    ]


def format_table(
    rows: Sequence[dict[str, Any]],
    *,
    peers: Mapping[str, str | None] | None = None,
    details: bool = False,
) -> str:
    """The rows of :func:`bench` as a text table with its footnotes.

    >>> print(format_table([]))
    no results
    """
    if not rows:
        return "no results"
    head = ["kernel", "shape", "dtype", "thr", "csoftmax", "GB/s", "of floor"]
    head += ["x numpy", "x peer", "fastest peer", "spread"]
    table = [head]
    skipped: list[str] = []
    for r in rows:
        cells = [r["kernel"], f"{r['n']}x{r['q']}", r["dtype"], str(r["threads"])]
        if r["skipped"]:
            table.append([*cells, "skipped", "", "", "", "", "", ""])
            note = f"{r['n']}x{r['q']} {r['dtype']}: {r['skipped']}"
            if note not in skipped:
                skipped.append(note)
            continue
        table.append(
            cells
            + [
                format_seconds(r["csoftmax_s"]),
                f"{r['gbps']:.1f}",
                _percent(r["floor_fraction"]),
                _ratio(r["speedup_numpy"]),
                _ratio(r["peer_ratio"]),
                r["peer"] or "-",
                _percent(r["spread"]),
            ]
        )
    lines = _columns(table, right={3, 4, 5, 6, 7, 8, 10})
    lines.insert(1, "-" * len(lines[0]))
    lines.append("")
    lines += _footnotes(rows, peers)
    if skipped:
        lines.append("skipped (memory): " + "; ".join(skipped))
    if details:
        lines.append("")
        lines += _details(rows)
    return "\n".join(lines)


def _footnotes(rows: Sequence[dict[str, Any]], peers: Mapping[str, str | None] | None) -> list[str]:
    done = [r for r in rows if not r["skipped"]]
    repeats = "/".join(str(k) for k in sorted({r["repeats"] for r in done}))
    notes = [
        f"csoftmax: median time per call over {repeats} round-robin repeat(s); every "
        "contender's output was first checked against csoftmax's (allclose).",
        "GB/s: the bytes the floor moves (copy: read + write of the array; read: one read) "
        "/ csoftmax's time. of floor: floor's time / csoftmax's (100% = as fast as a NumPy "
        "pass over the same array: the fastest of np.copyto, or of np.maximum.reduce and "
        "np.add.reduce, on one thread or with the rows split over the row's threads).",
        "x numpy, x peer: their median time / csoftmax's (> 1: csoftmax is faster). "
        "spread: (p90 - p10) / median, the largest among csoftmax, numpy, the peer and "
        "the floor of the row.",
    ]
    names: dict[bool, set[str]] = {False: set(), True: set()}
    for r in done:
        for name, s in r["contenders"].items():
            if s["family"] != "floor":
                names[bool(s["allocates"])].add(name)
    if names[False]:
        notes.append("write into preallocated out=: " + ", ".join(sorted(names[False])))
    if names[True]:
        notes.append("allocate their result on every call: " + ", ".join(sorted(names[True])))
    notes.append(
        "threads: csoftmax and PyTorch use the row's count; NumPy and SciPy run on one; "
        "JAX on what XLA chose at import."
    )
    if names[False] & {"torch closed form"} or names[True] & {"torch autograd"}:
        notes.append(
            "loss with gradient in PyTorch: 'torch closed form' is log_softmax(out=), "
            "nll_loss, exp_, index_put_(-1), div_(n), what a careful user writes; 'torch "
            "autograd' is F.cross_entropy and backward() on a leaf tensor."
        )
    if peers:
        missing = [k for k, v in peers.items() if v is None]
        if missing:
            notes.append("not installed (skipped): " + ", ".join(missing))
    for r in done:
        where = f"{r['kernel']} {r['n']}x{r['q']} {r['dtype']} {r['threads']}t"
        for name, why in r["mismatches"].items():
            notes.append(f"MISMATCH, not timed: {where}: {name}: {why}")
        for name, why in r["failures"].items():
            notes.append(f"failed, not timed: {where}: {name}: {why}")
    return [textwrap.fill(n, 100, subsequent_indent="    ", break_on_hyphens=False) for n in notes]


def _details(rows: Sequence[dict[str, Any]]) -> list[str]:
    lines = []
    for r in rows:
        if r["skipped"]:
            continue
        lines.append(f"{r['kernel']} {r['n']}x{r['q']} {r['dtype']} {r['threads']} threads:")
        table = [["", "contender", "median", "p10", "p90", "calls/sample", "allocates"]]
        for name, s in sorted(r["contenders"].items(), key=lambda kv: kv[1]["median_s"]):
            table.append(
                [
                    "",
                    name,
                    format_seconds(s["median_s"]),
                    format_seconds(s["p10_s"]),
                    format_seconds(s["p90_s"]),
                    str(s["number"]),
                    "yes" if s["allocates"] else "",
                ]
            )
        lines += _columns(table, right={2, 3, 4, 5})
    return lines


def _jsonable(value: Any) -> Any:
    """Plain JSON values: nan and inf as null, NumPy scalars as Python ones."""
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, (np.generic,)):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def _check_output(option: str, path: str | os.PathLike) -> None:
    """Fail before any work if ``path`` cannot be an output file."""
    reason = unwritable_reason(path)
    if reason is not None:
        raise BenchError(f"{option} {os.fspath(path)}: {reason}")


def _write_atomically(path: str | os.PathLike, write: Callable[[IO[bytes]], Any]) -> None:
    """``write`` the new content of ``path`` through the package's atomic writer
    (a temporary file beside it, fsynced, renamed over it; removed on error)."""
    with atomic_write(path) as f:
        write(f)


def write_json(path: str | os.PathLike, payload: Any) -> None:
    """Write ``payload`` as strict JSON (nan as null), atomically.

    >>> import json, os, tempfile
    >>> path = os.path.join(tempfile.mkdtemp(), "t.json")
    >>> write_json(path, {"t": [1.5, float("nan")]})
    >>> json.load(open(path))
    {'t': [1.5, None]}
    """
    text = json.dumps(_jsonable(payload), indent=1, allow_nan=False)
    _write_atomically(path, lambda f: f.write(text.encode() + b"\n"))


def _meta(config: dict[str, Any], peers: Mapping[str, str | None]) -> dict[str, Any]:
    try:
        load: Any = list(os.getloadavg())
    except (AttributeError, OSError):  # pragma: no cover - not POSIX
        load = None
    return {
        "csoftmax": _config.show_config(mode="dicts"),
        "numpy": np.__version__,
        "peers": dict(peers),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cores": cpu_count(),
        "load_average": load,
        "time": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "config": config,
    }


def _figure_class() -> Any:
    """matplotlib's Figure, attached to an Agg canvas (no pyplot, no global state)."""
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError:
        raise BenchError(
            "plotting needs matplotlib, which is not installed: "
            "pip install matplotlib (or pip install 'csoftmax[plot]')"
        ) from None

    def figure(**kwargs: Any) -> Any:
        fig = Figure(**kwargs)
        FigureCanvasAgg(fig)
        return fig

    return figure


_PLOT_FAMILIES = ("csoftmax", "scipy", "torch", "jax", "floor")


def plot_results(rows: Sequence[dict[str, Any]], path: str | os.PathLike) -> None:
    """A PNG bar chart of :func:`bench`'s rows: per kernel, the speed-up over
    NumPy (log scale) of csoftmax, the fastest contender of each peer and
    the floor, for every case.  Needs matplotlib; written atomically."""
    new_figure = _figure_class()
    done = [r for r in rows if not r["skipped"]]
    kernels = [k for k in KERNELS if any(r["kernel"] == k for r in done)]
    if not kernels:
        raise BenchError("nothing to plot: every case was skipped")
    widest = max(sum(r["kernel"] == k for r in done) for k in kernels)
    fig = new_figure(figsize=(max(6.0, 0.9 * widest + 2), 3.2 * len(kernels)), layout="constrained")
    axes = fig.subplots(len(kernels), 1, squeeze=False)[:, 0]
    colors = {"csoftmax": "C3", "scipy": "C0", "torch": "C1", "jax": "C2", "floor": "0.6"}
    for ax, kernel in zip(axes, kernels):
        cases = [r for r in done if r["kernel"] == kernel]
        families = [
            f
            for f in _PLOT_FAMILIES
            if any(s["family"] == f for r in cases for s in r["contenders"].values())
        ]
        width = 0.8 / max(len(families), 1)
        for j, family in enumerate(families):
            heights = []
            for r in cases:
                times = [s["median_s"] for s in r["contenders"].values() if s["family"] == family]
                heights.append(r["numpy_s"] / min(times) if times else 0.0)
            xs = [i + (j - (len(families) - 1) / 2) * width for i in range(len(cases))]
            ax.bar(xs, heights, width, label=family, color=colors.get(family))
        ax.axhline(1.0, color="k", linewidth=0.8)
        ax.set_yscale("log")
        ax.set_xticks(range(len(cases)))
        ax.set_xticklabels(
            [f"{r['n']}x{r['q']}\n{r['dtype']} {r['threads']}t" for r in cases], fontsize=7
        )
        ax.set_title(f"{kernel}: speed-up over NumPy (median time)", fontsize=9)
        ax.legend(fontsize=7, ncol=len(families))
    _write_atomically(path, lambda f: fig.savefig(f, format="png", dpi=110))


# ------------------------------------------------------------- training --
#: The training loops :func:`bench_training` can time.
TRAINING_LOOPS: tuple[str, ...] = (
    "csoftmax", "csoftmax-uint8", "numpy", "torch", "torch-autograd"
)

#: Final parameters of a loop may differ from csoftmax's by this much,
#: relative to their largest magnitude (float rounding), before it counts as
#: a different computation (another batch order, a bug).
WEIGHT_RTOL = 1e-3

_LOOP_LABELS = {
    "csoftmax": "csoftmax Trainer",
    "csoftmax-uint8": "csoftmax Trainer, uint8 pixels",
    "numpy": "NumPy",
    "torch": "PyTorch closed form",
    "torch-autograd": "PyTorch autograd + optim.SGD",
}


class TrainingLoop(Protocol):
    """What :func:`make_training_loop` returns."""

    def run_epoch(self) -> tuple[float, float]:
        """One epoch; its mean loss and accuracy (before each step)."""
        ...  # pragma: no cover

    def weights(self) -> tuple[np.ndarray, np.ndarray]:
        """The current weight and bias, as NumPy arrays."""
        ...  # pragma: no cover


def _permutation(seed: int, epoch: int, n: int) -> np.ndarray:
    """The batch order of an epoch, as :class:`csoftmax.Trainer` draws it."""
    return np.random.default_rng([seed, epoch]).permutation(n)


class _CsoftmaxLoop:
    """The csoftmax Trainer, one ``fit(epochs=1)`` per epoch."""

    def __init__(
        self,
        X: np.ndarray,
        y: np.ndarray,
        weight: np.ndarray,
        bias: np.ndarray,
        batch_size: int,
        lr: float,
        seed: int,
    ) -> None:
        from .model import SoftmaxRegression
        from .optim import SGD
        from .trainer import Trainer

        model = SoftmaxRegression(weight.shape[0], weight.shape[1], dtype=weight.dtype, seed=0)
        np.copyto(model.weight, weight)
        np.copyto(model.bias, bias)
        self.X, self.y, self.model = X, y, model
        self.trainer = Trainer(model, SGD(lr=lr), batch_size=batch_size, seed=seed, progress=False)

    scale: float | None = None

    def run_epoch(self) -> tuple[float, float]:
        history = self.trainer.fit(self.X, self.y, epochs=1, scale=self.scale)
        return history.train_loss[-1], history.train_acc[-1]

    def weights(self) -> tuple[np.ndarray, np.ndarray]:
        return self.model.weight, self.model.bias


class _CsoftmaxUint8Loop(_CsoftmaxLoop):
    """The Trainer on raw uint8 pixels, scale=1/255 applied in the kernel
    (a quarter of the memory traffic).  The data are taken back to 0..255
    by rounding X * 255, exact for pixels that were scaled by 1/255."""

    scale = 1 / 255

    def __init__(self, X: np.ndarray, *args: Any) -> None:
        super().__init__(np.rint(np.clip(X, 0, 1) * 255).astype(np.uint8), *args)


class _NumpyLoop:
    """The loop a careful NumPy user writes: gather the batch into a buffer,
    ``X @ W + b``, stable softmax, ``(P - one_hot) / m``, ``X.T @ G``, update."""

    def __init__(
        self,
        X: np.ndarray,
        y: np.ndarray,
        weight: np.ndarray,
        bias: np.ndarray,
        batch_size: int,
        lr: float,
        seed: int,
    ) -> None:
        self.X, self.y, self.lr, self.seed, self.bs = X, y, lr, seed, batch_size
        self.W, self.b = weight.copy(), bias.copy()
        rows = min(batch_size, X.shape[0])
        self.xb = np.empty((rows, X.shape[1]), X.dtype)
        self.z = np.empty((rows, weight.shape[1]), X.dtype)
        self.gW = np.empty_like(self.W)
        self.gb = np.empty_like(self.b)
        self.ar = np.arange(rows)
        self.epoch = 0

    def run_epoch(self) -> tuple[float, float]:
        X, y, W, b, lr = self.X, self.y, self.W, self.b, self.lr
        n = X.shape[0]
        order = _permutation(self.seed, self.epoch, n)
        loss_sum, correct = 0.0, 0
        for start in range(0, n, self.bs):
            idx = order[start : start + self.bs]
            m = idx.shape[0]
            xb, z, ar = self.xb[:m], self.z[:m], self.ar[:m]
            np.take(X, idx, axis=0, out=xb)
            yb = y[idx]
            np.matmul(xb, W, out=z)
            z += b
            correct += int(np.count_nonzero(z.argmax(axis=1) == yb))
            z -= z.max(axis=1, keepdims=True)
            picked = z[ar, yb]
            np.exp(z, out=z)
            s = z.sum(axis=1, keepdims=True)
            loss_sum += float(np.sum(np.log(s[:, 0]) - picked))
            z /= s
            z[ar, yb] -= 1
            z /= m
            np.matmul(xb.T, z, out=self.gW)
            np.sum(z, axis=0, out=self.gb)
            self.gW *= lr
            W -= self.gW
            self.gb *= lr
            b -= self.gb
        self.epoch += 1
        return loss_sum / n, correct / n

    def weights(self) -> tuple[np.ndarray, np.ndarray]:
        return self.W, self.b


class _TorchLoop:
    """The fastest loop a careful PyTorch user writes: preloaded tensors, no
    DataLoader, ``index_select`` and ``addmm`` into buffers, the closed-form
    gradient ``(softmax - one_hot) / m``, in-place updates, no autograd."""

    def __init__(
        self,
        X: np.ndarray,
        y: np.ndarray,
        weight: np.ndarray,
        bias: np.ndarray,
        batch_size: int,
        lr: float,
        seed: int,
    ) -> None:
        import torch

        self.torch = torch
        self.X, self.y = torch.from_numpy(X), torch.from_numpy(y)
        self.W, self.b = torch.from_numpy(weight.copy()), torch.from_numpy(bias.copy())
        self.lr, self.seed, self.bs = lr, seed, batch_size
        rows = min(batch_size, X.shape[0])
        self.xb = torch.empty((rows, X.shape[1]), dtype=self.X.dtype)
        self.yb = torch.empty(rows, dtype=torch.int64)
        self.z = torch.empty((rows, weight.shape[1]), dtype=self.X.dtype)
        self.gW = torch.empty_like(self.W)
        self.ar = torch.arange(rows)
        self.minus_one = torch.tensor(-1.0, dtype=self.X.dtype)
        self.epoch = 0

    def run_epoch(self) -> tuple[float, float]:
        torch = self.torch
        X, y, W, b, lr = self.X, self.y, self.W, self.b, self.lr
        n = X.shape[0]
        order = torch.from_numpy(_permutation(self.seed, self.epoch, n))
        loss_sum = torch.zeros((), dtype=torch.float64)
        correct = torch.zeros((), dtype=torch.int64)
        with torch.inference_mode():
            for start in range(0, n, self.bs):
                idx = order[start : start + self.bs]
                m = idx.shape[0]
                xb, yb, z = self.xb[:m], self.yb[:m], self.z[:m]
                torch.index_select(X, 0, idx, out=xb)
                torch.index_select(y, 0, idx, out=yb)
                torch.addmm(b, xb, W, out=z)
                correct += (z.argmax(1) == yb).sum()
                torch.log_softmax(z, 1, out=z)
                loss_sum -= z.gather(1, yb[:, None]).sum()
                z.exp_()
                z.index_put_((self.ar[:m], yb), self.minus_one, accumulate=True)
                z.div_(m)
                torch.mm(xb.t(), z, out=self.gW)
                W.sub_(self.gW, alpha=lr)
                b.sub_(z.sum(0), alpha=lr)
        self.epoch += 1
        return float(loss_sum) / n, int(correct) / n

    def weights(self) -> tuple[np.ndarray, np.ndarray]:
        return self.W.numpy(), self.b.numpy()


class _TorchAutogradLoop:
    """The idiomatic PyTorch loop: ``addmm``, ``F.cross_entropy``,
    ``backward()``, ``torch.optim.SGD`` (preloaded tensors, no DataLoader)."""

    def __init__(
        self,
        X: np.ndarray,
        y: np.ndarray,
        weight: np.ndarray,
        bias: np.ndarray,
        batch_size: int,
        lr: float,
        seed: int,
    ) -> None:
        import torch

        self.torch = torch
        self.X, self.y = torch.from_numpy(X), torch.from_numpy(y)
        self.W = torch.from_numpy(weight.copy()).requires_grad_()
        self.b = torch.from_numpy(bias.copy()).requires_grad_()
        self.opt = torch.optim.SGD([self.W, self.b], lr=lr)
        self.seed, self.bs = seed, batch_size
        self.epoch = 0

    def run_epoch(self) -> tuple[float, float]:
        torch = self.torch
        F = importlib.import_module("torch.nn.functional")
        X, y, W, b, opt = self.X, self.y, self.W, self.b, self.opt
        n = X.shape[0]
        order = torch.from_numpy(_permutation(self.seed, self.epoch, n))
        loss_sum = torch.zeros((), dtype=torch.float64)
        correct = torch.zeros((), dtype=torch.int64)
        for start in range(0, n, self.bs):
            idx = order[start : start + self.bs]
            xb, yb = X.index_select(0, idx), y.index_select(0, idx)
            z = torch.addmm(b, xb, W)
            loss = F.cross_entropy(z, yb)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            with torch.no_grad():
                correct += (z.argmax(1) == yb).sum()
                loss_sum += loss * idx.shape[0]
        self.epoch += 1
        return float(loss_sum) / n, int(correct) / n

    def weights(self) -> tuple[np.ndarray, np.ndarray]:
        return self.W.detach().numpy(), self.b.detach().numpy()


_LOOPS = {
    "csoftmax": _CsoftmaxLoop,
    "csoftmax-uint8": _CsoftmaxUint8Loop,
    "numpy": _NumpyLoop,
    "torch": _TorchLoop,
    "torch-autograd": _TorchAutogradLoop,
}


def make_training_loop(
    name: str,
    X: np.ndarray,
    y: np.ndarray,
    weight: np.ndarray,
    bias: np.ndarray,
    *,
    batch_size: int = 256,
    lr: float = 0.1,
    seed: int = 0,
) -> TrainingLoop:
    """A training loop among :data:`TRAINING_LOOPS`, starting from copies of
    ``weight`` and ``bias``.

    The result has ``run_epoch()`` (one epoch of minibatch SGD in the batch
    order ``np.random.default_rng([seed, epoch]).permutation(n)``, as the
    csoftmax Trainer draws it; returns the epoch's mean loss and accuracy,
    measured before each step) and ``weights()``.

    >>> X = np.ones((8, 3), np.float32); y = np.arange(8) % 2
    >>> loop = make_training_loop("numpy", X, y, np.zeros((3, 2), np.float32),
    ...                           np.zeros(2, np.float32), batch_size=8)
    >>> loss, acc = loop.run_epoch()
    >>> round(loss, 4)
    0.6931
    """
    if name not in _LOOPS:
        raise BenchError(f"loops: unknown loop {name!r} (choose from {', '.join(TRAINING_LOOPS)})")
    return _LOOPS[name](X, y, weight, bias, batch_size, lr, seed)


def _is_pixels(X: Any) -> bool:
    """Are X's values k/255 (0 <= k <= 255), as uint8 pixels scaled to [0, 1]?"""
    x = np.asarray(X, dtype=np.float64)
    k = x * 255
    close = (k >= -1e-3) & (k <= 255.001) & (abs(k - np.rint(k)) < 1e-3)
    return bool(x.size) and bool(np.all(close))


def _training_data(data: Any, data_root: Any) -> tuple[np.ndarray, ...]:
    if data is None:
        from .datasets import load_fashion_mnist

        data = load_fashion_mnist(data_root)
    elif callable(data):
        data = data()
    try:
        (X, y), (X_test, y_test) = data
    except (TypeError, ValueError):
        raise BenchError("data: expected ((X_train, y_train), (X_test, y_test))") from None
    return X, y, X_test, y_test


def bench_training(
    *,
    epochs: int = 10,
    threads: Sequence[Threads] | None = None,
    dtype: Any = "float32",
    batch_size: int = 256,
    lr: float = 0.1,
    init_std: float = 0.01,
    seed: int = 0,
    data: Any = None,
    data_root: str | os.PathLike | None = None,
    loops: Sequence[str] | None = None,
    warmup_batches: int = 8,
    pause: float = 0.2,
    verbose: bool = True,
    json_path: str | os.PathLike | None = None,
    plot_path: str | os.PathLike | None = None,
    file: IO[str] | None = None,
) -> list[dict[str, Any]]:
    """Time the textbook training run: the csoftmax Trainer against the same
    loop in NumPy and in PyTorch (closed form and autograd, when installed).

    Every loop starts from the same N(0, init_std^2) weights (those of
    ``SoftmaxRegression(..., seed=seed)``) and visits the same batches in the
    same order; the epochs are run round-robin (epoch e of every loop, the
    order rotated each epoch) after a short warm-up of each loop on a
    throw-away copy.  Reports the median and total epoch time, the final
    train loss and test accuracy of each loop and how far its final weights
    are from csoftmax's.

    Parameters
    ----------
    epochs : int, default 10
    threads : list of int or "all", default ["all"]
    dtype : "float32" or "float64", default "float32"
    batch_size, lr, init_std, seed : the textbook run's 256, 0.1, 0.01, 0
    data : ((X_train, y_train), (X_test, y_test)) or a callable returning it
        Default: Fashion-MNIST through :func:`csoftmax.datasets.load_fashion_mnist`
        (``data_root`` is passed on).
    loops : list of str, optional
        Among :data:`TRAINING_LOOPS` (default: all whose library is installed;
        ``csoftmax-uint8`` when the data are pixels, multiples of 1/255).
    warmup_batches : int
        Batches each loop runs on a throw-away copy before timing.
    pause : float, default 0.2
        Seconds of idle before each timed epoch, so that the thread pools
        of the loop before (OpenBLAS and OpenMP workers spin for a while
        after their last call) are asleep and do not slow the next one.
    verbose, json_path, plot_path, file
        As in :func:`bench`.

    Returns
    -------
    list of dict
        One per (threads, loop): ``median_epoch_s``, ``total_s``,
        ``epoch_s`` (every epoch), ``speedup`` (the loop's median epoch over
        csoftmax's), ``train_loss``, ``test_acc``, ``max_weight_diff``.

    Examples
    --------
    >>> import numpy as np
    >>> from csoftmax.bench import bench_training
    >>> rng = np.random.default_rng(0)
    >>> X = rng.random((512, 8), dtype=np.float32); y = (X[:, 0] > 0.5).astype(np.int64)
    >>> rows = bench_training(epochs=1, threads=[1], data=((X, y), (X, y)),
    ...                       loops=["csoftmax", "numpy"], pause=0, verbose=False)
    >>> [r["loop"] for r in rows], rows[1]["max_weight_diff"] < 1e-5
    (['csoftmax', 'numpy'], True)
    """
    from .model import SoftmaxRegression

    if isinstance(epochs, bool) or not isinstance(epochs, (int, np.integer)) or epochs < 1:
        raise BenchError(f"epochs: expected an integer >= 1, got {epochs!r}")
    dt = np.dtype(_dtype_name(dtype))
    ths = resolve_threads(("all",) if threads is None else threads)
    torch_found = _optional("torch") is not None
    names = (
        list(loops)
        if loops is not None
        else [n for n in TRAINING_LOOPS if torch_found or not n.startswith("torch")]
    )
    for name in names:
        if name not in _LOOPS:
            raise BenchError(
                f"loops: unknown loop {name!r} (choose from {', '.join(TRAINING_LOOPS)})"
            )
        if name.startswith("torch") and not torch_found:
            raise BenchError(f"loops: {name!r} needs PyTorch, which is not installed")
    if not names:
        raise BenchError("loops: nothing to run")
    for option, path in (("json_path", json_path), ("plot_path", plot_path)):
        if path is not None:
            _check_output(option, path)
    if plot_path is not None:
        _figure_class()
    X, y, X_test, y_test = _training_data(data, data_root)
    if not _is_pixels(X):
        if loops is not None and "csoftmax-uint8" in names:
            raise BenchError(
                "loops: 'csoftmax-uint8' needs pixel data (multiples of 1/255 in [0, 1])"
            )
        names = [n for n in names if n != "csoftmax-uint8"]
    X = np.ascontiguousarray(X, dtype=dt)
    X_test = np.ascontiguousarray(X_test, dtype=dt)
    y = np.ascontiguousarray(y, dtype=np.int64)
    y_test = np.ascontiguousarray(y_test, dtype=np.int64)
    n_classes = int(max(y.max(), y_test.max())) + 1
    init = SoftmaxRegression(X.shape[1], n_classes, dtype=dt, init_std=init_std, seed=seed)
    w0, b0 = init.weight.copy(), init.bias.copy()
    settings = {"batch_size": batch_size, "lr": lr, "seed": seed}

    rows: list[dict[str, Any]] = []
    for t in ths:
        with thread_limits(t):
            warm = min(X.shape[0], warmup_batches * batch_size)
            for name in names:
                if warm > 0:
                    make_training_loop(name, X[:warm], y[:warm], w0, b0, **settings).run_epoch()
            runs = {name: make_training_loop(name, X, y, w0, b0, **settings) for name in names}
            seconds: dict[str, list[float]] = {name: [] for name in names}
            metrics: dict[str, tuple[float, float]] = {}
            for epoch in range(epochs):
                k = epoch % len(names)
                for name in names[k:] + names[:k]:
                    if pause > 0:
                        time.sleep(pause)
                    t0 = time.perf_counter()
                    metrics[name] = runs[name].run_epoch()
                    seconds[name].append(time.perf_counter() - t0)
            rows += _training_rows(names, runs, seconds, metrics, X_test, y_test, t)
    settings_out = {
        "epochs": epochs,
        "dtype": dt.name,
        "batch_size": batch_size,
        "lr": lr,
        "init_std": init_std,
        "seed": seed,
        "n_train": int(X.shape[0]),
        "n_test": int(X_test.shape[0]),
        "n_features": int(X.shape[1]),
        "n_classes": n_classes,
    }
    for row in rows:
        row.update(settings_out)
    out = sys.stdout if file is None else file
    if verbose:
        print(format_training_table(rows), file=out, flush=True)
    if json_path is not None:
        meta = _meta(settings_out, installed_peers(["torch"]))
        write_json(json_path, {"meta": meta, "training": rows})
        if verbose:
            print(f"wrote {os.fspath(json_path)}", file=out)
    if plot_path is not None:
        plot_training(rows, plot_path)
        if verbose:
            print(f"wrote {os.fspath(plot_path)}", file=out)
    return rows


def _training_rows(
    names: Sequence[str],
    runs: Mapping[str, TrainingLoop],
    seconds: Mapping[str, list[float]],
    metrics: Mapping[str, tuple[float, float]],
    X_test: np.ndarray,
    y_test: np.ndarray,
    threads: int,
) -> list[dict[str, Any]]:
    finals = {name: runs[name].weights() for name in names}
    ref = finals.get("csoftmax")
    med = {name: float(np.median(seconds[name])) for name in names}
    rows = []
    for name in names:
        W, b = finals[name]
        t = np.asarray(seconds[name])
        p10, p90 = np.percentile(t, [10, 90])
        acc = (
            float(np.mean(np.argmax(X_test @ W + b, axis=1) == y_test)) if len(y_test) else math.nan
        )
        diff, agrees = math.nan, True
        if ref is not None:
            diff = float(max(np.max(np.abs(W - ref[0])), np.max(np.abs(b - ref[1]))))
            scale = float(max(np.max(np.abs(ref[0])), np.max(np.abs(ref[1])), 1e-3))
            agrees = diff <= WEIGHT_RTOL * scale
        rows.append(
            {
                "loop": name,
                "label": _LOOP_LABELS[name],
                "threads": threads,
                "epoch_s": [float(v) for v in t],
                "median_epoch_s": med[name],
                "total_s": float(t.sum()),
                "spread": float((p90 - p10) / med[name]) if med[name] > 0 else math.nan,
                "speedup": med[name] / med["csoftmax"] if "csoftmax" in med else math.nan,
                "train_loss": float(metrics[name][0]),
                "train_acc": float(metrics[name][1]),
                "test_acc": acc,
                "max_weight_diff": diff,
                "agrees": bool(agrees),
            }
        )
    return rows


def format_training_table(rows: Sequence[dict[str, Any]]) -> str:
    """The rows of :func:`bench_training` as a text table.

    >>> print(format_training_table([]))
    no results
    """
    if not rows:
        return "no results"
    r0 = rows[0]
    lines = [
        f"training: {r0['n_train']} x {r0['n_features']} -> {r0['n_classes']} classes "
        f"({r0['n_test']} test rows), {r0['dtype']}, batch {r0['batch_size']}, "
        f"SGD lr {r0['lr']:g}, N(0, {r0['init_std']:g}^2) init, {r0['epochs']} epochs, "
        f"seed {r0['seed']}; the same initial weights and batch order for every loop",
        "",
    ]
    table = [
        ["thr", "loop", "epoch", "total", "x csoftmax", "spread", "train loss", "test acc"]
        + ["max |dW|", ""]
    ]
    for r in rows:
        table.append(
            [
                str(r["threads"]),
                r["label"],
                format_seconds(r["median_epoch_s"]),
                format_seconds(r["total_s"]),
                _ratio(r["speedup"]),
                _percent(r["spread"]),
                f"{r['train_loss']:.4f}",
                f"{r['test_acc']:.4f}",
                "-" if not math.isfinite(r["max_weight_diff"]) else f"{r['max_weight_diff']:.1e}",
            ]
            + ["" if r["agrees"] else "DISAGREES"]
        )
    out = _columns(table, right={0, 2, 3, 4, 5, 6, 7, 8})
    out.insert(1, "-" * len(out[0]))
    lines += out
    notes = [
        "epoch: median time per epoch (the loops' epochs interleaved round-robin, "
        "each after an idle pause); x csoftmax: the loop's median epoch / csoftmax's "
        "(> 1: csoftmax is faster); spread: (p90 - p10) / median; max |dW|: the largest "
        "difference of the final parameters from csoftmax's (same start, same batches).",
        "threads: the csoftmax Trainer's fused step (up to 32 classes; no BLAS) uses the "
        "row's count of OpenMP threads (its GEMM route, above 32 classes, one BLAS thread); "
        "NumPy's BLAS and PyTorch use the row's count.",
        "loops: csoftmax Trainer (fit one epoch at a time); NumPy: take into a buffer, "
        "matmul(out=), stable softmax in place, (P - one_hot) / m, X.T @ G; PyTorch "
        "closed form: index_select/addmm(out=), log_softmax, exp_, index_put_, mm; PyTorch "
        "autograd: addmm, F.cross_entropy, backward, torch.optim.SGD. All track the "
        "train loss and accuracy as the Trainer does.",
    ]
    lines.append("")
    lines += [textwrap.fill(n, 100, subsequent_indent="    ") for n in notes]
    return "\n".join(lines)


def plot_training(rows: Sequence[dict[str, Any]], path: str | os.PathLike) -> None:
    """A PNG bar chart of the median epoch time of each loop (per thread count)."""
    new_figure = _figure_class()
    threads = sorted({r["threads"] for r in rows})
    labels = list(dict.fromkeys(r["label"] for r in rows))
    fig = new_figure(figsize=(7, 3.5), layout="constrained")
    ax = fig.subplots()
    width = 0.8 / max(len(threads), 1)
    for j, t in enumerate(threads):
        by = {r["label"]: r["median_epoch_s"] * 1e3 for r in rows if r["threads"] == t}
        xs = [i + (j - (len(threads) - 1) / 2) * width for i in range(len(labels))]
        ax.bar(
            xs,
            [by.get(label, 0.0) for label in labels],
            width,
            label=f"{t} thread{'s' if t != 1 else ''}",
        )
    ax.set_xticks(range(len(labels)))
    ax.set_xticklabels(labels, fontsize=8)
    ax.set_ylabel("ms per epoch (median)")
    ax.set_title("one training epoch", fontsize=9)
    ax.legend(fontsize=8)
    _write_atomically(path, lambda f: fig.savefig(f, format="png", dpi=110))


# ------------------------------------------------------------------ CLI --
def _list_of(parse: Callable[[str], Any], what: str) -> Callable[[str], list[Any]]:
    def parse_list(text: str) -> list[Any]:
        items = [t.strip() for t in text.split(",") if t.strip()]
        if not items:
            raise argparse.ArgumentTypeError(f"expected a comma-separated list of {what}")
        try:
            return [parse(t) for t in items]
        except BenchError as e:
            raise argparse.ArgumentTypeError(str(e).split(": ", 1)[-1]) from None

    parse_list.__name__ = what
    return parse_list


def _kernel(text: str) -> str:
    if text not in KERNELS:
        raise BenchError(f"kernels: unknown kernel {text!r} (choose from {', '.join(KERNELS)})")
    return text


def _peer(text: str) -> str:
    if text not in PEERS:
        raise BenchError(f"peers: unknown peer {text!r} (choose from {', '.join(PEERS)}, none)")
    return text


def _peers_option(text: str) -> list[str]:
    if text.strip().lower() == "none":
        return []
    return _list_of(_peer, "peers")(text)


def _thread_count(text: str) -> Threads:
    if text.lower() == "all":
        return "all"
    return resolve_threads([text])[0]


def _positive(kind: Callable[[str], Any], minimum: float) -> Callable[[str], Any]:
    def parse(text: str) -> Any:
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
        if not (value >= minimum) or (isinstance(value, float) and not math.isfinite(value)):
            raise argparse.ArgumentTypeError(f"must be at least {minimum}, got {text}")
        return value

    parse.__name__ = kind.__name__
    return parse


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the options of ``csoftmax bench`` to ``parser`` (see :func:`run`).

    >>> p = argparse.ArgumentParser()
    >>> add_arguments(p)
    >>> p.parse_args(["--quick", "--shapes", "256x10", "--threads", "1,all"]).shapes
    [(256, 10)]
    """
    what = parser.add_argument_group("what to time (comma-separated lists)")
    what.add_argument(
        "--kernels",
        type=_list_of(_kernel, "kernels"),
        metavar="LIST",
        help=f"among {', '.join(KERNELS)} (default: all)",
    )
    what.add_argument(
        "--shapes",
        type=_list_of(parse_shape, "shapes"),
        metavar="LIST",
        help="NxQ shapes (default: " + ",".join(f"{n}x{q}" for n, q in SHAPES) + ")",
    )
    what.add_argument(
        "--dtypes",
        type=_list_of(_dtype_name, "dtypes"),
        metavar="LIST",
        help="float32,float64 (default: both; float32 for --training)",
    )
    what.add_argument(
        "--threads",
        type=_list_of(_thread_count, "thread counts"),
        metavar="LIST",
        help="thread counts, 'all' for every core (default: 1,all)",
    )
    what.add_argument(
        "--peers",
        type=_peers_option,
        metavar="LIST",
        help="among scipy,torch,jax, or none (default: all that are installed)",
    )
    what.add_argument(
        "--max-gb",
        type=_positive(float, 0.001),
        default=6.0,
        metavar="GIB",
        help="skip shapes whose case needs more memory than this, in GiB (default: 6)",
    )
    how = parser.add_argument_group("timing")
    how.add_argument(
        "--quick",
        action="store_true",
        help="a smoke run: shapes 256x10,4096x1000, float32, 3 short repeats; 1 epoch "
        "with --training (options given explicitly still win)",
    )
    how.add_argument(
        "--repeats", type=_positive(int, 1), metavar="N", help="round-robin samples (default: 9)"
    )
    how.add_argument(
        "--min-time",
        type=_positive(float, 0.0),
        metavar="S",
        help="seconds per sample; fast calls are grouped to reach it (default: 0.005)",
    )
    how.add_argument(
        "--warmup",
        type=_positive(float, 0.0),
        metavar="S",
        help="seconds of warm-up per contender (default: 0.05)",
    )
    how.add_argument(
        "--seed", type=_positive(int, 0), default=0, help="seed of the data (default: 0)"
    )
    train = parser.add_argument_group("training (--training)")
    train.add_argument(
        "--training",
        action="store_true",
        help="time the textbook Fashion-MNIST run (csoftmax Trainer, NumPy, PyTorch) "
        "instead of the kernels",
    )
    train.add_argument(
        "--epochs", type=_positive(int, 1), metavar="N", help="epochs (default: 10; 1 with --quick)"
    )
    train.add_argument(
        "--data-root",
        metavar="PATH",
        help="folder holding the Fashion-MNIST files (default: search, then download)",
    )
    out = parser.add_argument_group("outputs")
    out.add_argument("--json", metavar="PATH", help="write every raw timing as JSON")
    out.add_argument("--plot", metavar="PNG", help="write a bar chart (needs matplotlib)")
    out.add_argument("--details", action="store_true", help="show every contender of every case")
    out.add_argument(
        "--no-progress", action="store_true", help="no progress lines on standard error"
    )


def run(args: argparse.Namespace) -> int:
    """Run ``csoftmax bench`` with the options of :func:`add_arguments`.

    Returns the exit code: 0, or 1 when a contender disagreed with csoftmax
    or the benchmark could not run (reported as ``csoftmax: error: ...``).
    """
    try:
        for option, path in (("--json", args.json), ("--plot", args.plot)):
            if path is not None:
                _check_output(option, path)
        if args.plot is not None:
            _figure_class()  # fails now, not after the run, without matplotlib
        if args.training:
            return _run_training(args)
        rows = bench(
            args.kernels,
            args.shapes,
            args.dtypes,
            args.threads,
            repeats=args.repeats,
            min_time=args.min_time,
            warmup=args.warmup,
            max_gb=args.max_gb,
            peers=args.peers,
            quick=args.quick,
            seed=args.seed,
            details=args.details,
            json_path=args.json,
            plot_path=args.plot,
            progress=not args.no_progress and sys.stderr.isatty(),
            defaults=CLI_DEFAULTS,
        )
    except (BenchError, OSError) as e:  # OSError covers a missing data set
        print(f"csoftmax: error: {e}", file=sys.stderr, flush=True)
        return 1
    bad = sum(len(r["mismatches"]) for r in rows)
    if bad:
        print(
            f"csoftmax: error: {bad} result{'s' if bad != 1 else ''} disagreed with csoftmax "
            "(MISMATCH above)",
            file=sys.stderr,
            flush=True,
        )
        return 1
    return 0


def _run_training(args: argparse.Namespace) -> int:
    dtypes = args.dtypes or ["float32"]
    epochs = args.epochs if args.epochs is not None else (1 if args.quick else 10)
    threads = args.threads or (1, "all")
    rows: list[dict[str, Any]] = []
    for i, dtype in enumerate(dtypes):
        if i:
            print()
        rows += bench_training(
            epochs=epochs, threads=threads, dtype=dtype, seed=args.seed, data_root=args.data_root
        )
    if args.json is not None:
        config = {"epochs": epochs, "threads": list(threads), "dtypes": dtypes, "seed": args.seed}
        write_json(args.json, {"meta": _meta(config, installed_peers(["torch"])), "training": rows})
        print(f"wrote {args.json}")
    if args.plot is not None:
        plot_training(rows, args.plot)
        print(f"wrote {args.plot}")
    bad = [f"{r['label']} ({r['threads']} threads)" for r in rows if not r["agrees"]]
    if bad:
        print(
            f"csoftmax: error: the final weights of {', '.join(bad)} disagree with csoftmax's",
            file=sys.stderr,
            flush=True,
        )
        return 1
    return 0
