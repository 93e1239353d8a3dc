"""Threads and build configuration of the compiled core."""

from __future__ import annotations

import contextlib
import operator
import os
import platform
import sys
from collections.abc import Iterator
from typing import Any

from . import _core, _openmp
from ._steps import FUSED_MAX_CLASSES

__all__ = ["get_num_threads", "set_num_threads", "show_config", "get_include"]


def get_num_threads() -> int:
    """The number of OpenMP threads the kernels may use.

    Examples
    --------
    >>> import csoftmax as cs
    >>> cs.get_num_threads() >= 1
    True
    """
    return _core.get_num_threads()


def set_num_threads(n: int) -> None:
    """Let the kernels use up to ``n`` threads (small inputs still use one).

    BLAS, which the model's GEMMs run on, follows the same limit (through
    threadpoolctl), so the two never oversubscribe the cores.  Kernel
    results are bitwise identical whatever ``n`` is.

    Examples
    --------
    >>> import csoftmax as cs
    >>> before = cs.get_num_threads()
    >>> cs.set_num_threads(1)
    >>> cs.get_num_threads()
    1
    >>> cs.set_num_threads(before)
    """
    try:
        k = operator.index(n)
    except TypeError:
        raise TypeError(f"n: expected an integer, got {type(n).__name__}") from None
    if k < 1:
        raise ValueError(f"n: the number of threads must be at least 1, got {k}")
    global _requested_threads
    _requested_threads = min(k, 2**31 - 1)
    _core.set_num_threads(_requested_threads)
    apply_blas_threads()


_requested_threads: int | None = None


def apply_blas_threads() -> None:
    """Let BLAS use as many threads as set_num_threads asked for.

    BLAS (SciPy's, which the model calls) is loaded lazily, so this runs
    again once it is; without threadpoolctl BLAS keeps its own setting.
    """
    if _requested_threads is None or "scipy.linalg" not in sys.modules:
        return
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # pragma: no cover - a declared dependency
        return
    threadpool_limits(limits=_requested_threads, user_api="blas")


@contextlib.contextmanager
def single_threaded_blas() -> Iterator[None]:
    """Run BLAS on one thread inside the block (restored after).

    The trainer's GEMMs are small (a batch of 256 rows), where BLAS threads
    gain nothing, collapse when another process holds a core, and make the
    last bits of a product depend on the thread count.
    """
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # pragma: no cover - a declared dependency
        yield
        return
    with threadpool_limits(limits=1, user_api="blas"):
        yield


def _blas_description() -> str:
    """The BLAS behind scipy.linalg.cython_blas, as threadpoolctl sees it."""
    try:
        import scipy.linalg  # noqa: F401  (loads SciPy's BLAS)
        from threadpoolctl import threadpool_info
    except ImportError as e:  # pragma: no cover - declared dependencies
        return f"unavailable ({e})"
    found = [i for i in threadpool_info() if i.get("user_api") == "blas"]
    scipy_own = [i for i in found if "scipy" in str(i.get("filepath", ""))]
    for info in scipy_own or found:
        return (
            f"{info.get('internal_api')} {info.get('version')} via scipy.linalg.cython_blas "
            f"({info.get('num_threads')} threads)"
        )
    return "scipy.linalg.cython_blas (library not identified)"


def get_include() -> str:
    """The directory holding ``csoftmax.h``, for C or Cython code built on csoftmax.

    Examples
    --------
    >>> import os, csoftmax as cs
    >>> os.path.exists(os.path.join(cs.get_include(), "csoftmax.h"))
    True
    """
    here = os.path.dirname(os.path.abspath(__file__))
    installed = os.path.join(here, "include")
    if os.path.isdir(installed):
        return installed
    # An editable install or a source checkout: the header's own folder.
    return os.path.join(os.path.dirname(here), "src_c")


def _config() -> dict[str, Any]:
    from . import __version__

    openmp = _core.openmp_enabled()
    return {
        "version": __version__,
        "compiler": _core.compiler(),
        "python": platform.python_version(),
        "machine": platform.machine(),
        "openmp": "on" if openmp else "off (kernels run on one thread)",
        "threads": _core.get_num_threads(),
        "simd": _core.simd_name(),
        "simd_available": " ".join(_core.simd_available()),
        "blas": _blas_description(),
        "training_step": (
            f"fused kernel for <= {FUSED_MAX_CLASSES} classes (no BLAS), "
            "BLAS GEMM + fused cross-entropy above"
        ),
        "openmp_wait": _openmp.WAIT_POLICY,
    }


def show_config(mode: str = "stdout"):
    """Print (or, with ``mode="dicts"``, return) how csoftmax was built and runs.

    Shows the version, the compiler, whether OpenMP is on and with how many
    threads, the SIMD instruction set in use, the BLAS, and which route a
    training step takes.

    Examples
    --------
    >>> import csoftmax as cs
    >>> cs.show_config(mode="dicts")["simd"] in ("avx512", "avx2", "generic")
    True
    """
    cfg = _config()
    if mode == "dicts":
        return cfg
    if mode != "stdout":
        raise ValueError(f"mode: expected 'stdout' or 'dicts', got {mode!r}")
    width = max(map(len, cfg))
    for key, value in cfg.items():
        print(f"{key:<{width}} : {value}")
    return None
