"""Threads and build configuration of the compiled core."""

from __future__ import annotations

import operator
import os
import platform
from typing import Any

from . import _core

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

    Results are bitwise identical whatever ``n`` is.

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
    _core.set_num_threads(min(k, 2**31 - 1))


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
        "blas": "none: the kernels need no BLAS",
    }


def show_config(mode: str = "stdout"):
    """Print (or, with ``mode="dicts"``, return) how csoftmax was built and runs.

    Shows the version, the compiler, whether OpenMP is on and with how many
    threads, and the SIMD instruction set in use.

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
