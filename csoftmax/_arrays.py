"""Turning user input into what the kernels take: checked arrays and row views.

Every check that can fail on user input lives here or in functional.py and
runs before any kernel touches memory.
"""

from __future__ import annotations

import operator
from typing import Any

import numpy as np
from numpy.exceptions import AxisError

_KERNEL_TYPES = (np.float32, np.float64)


def as_real_array(x: Any, name: str) -> np.ndarray:
    """x as float32 or float64 in native byte order.

    float32 and float64 keep their precision; other real dtypes (bool,
    integers, float16, longdouble) become float64, as in scipy.special.
    """
    arr = x if type(x) is np.ndarray else np.asarray(x)
    dt = arr.dtype
    if dt.type in _KERNEL_TYPES:
        if not dt.isnative:
            return arr.astype(dt.newbyteorder("="))
        # A field of a packed record array: the kernels step in whole elements.
        return arr if whole_element_strides(arr) else arr.copy()
    if dt.kind in "biuf":
        return arr.astype(np.float64)
    raise TypeError(f"{name}: expected real numbers, got an array of dtype {dt}")


def whole_element_strides(a: np.ndarray) -> bool:
    """Can the kernels address a (are its strides whole elements)?"""
    size = a.itemsize
    return all(s % size == 0 for s in a.strides)


def normalize_axis(axis: Any, ndim: int) -> int:
    """axis as an index in [0, ndim); negative values count from the end."""
    try:
        ax = operator.index(axis)
    except TypeError:
        raise TypeError(f"axis: expected an integer, got {type(axis).__name__}") from None
    if ndim == 0:
        raise ValueError("axis: a 0-d input has no axis to work along")
    if not -ndim <= ax < ndim:
        raise AxisError(f"axis: {ax} is out of range for an array with {ndim} dimensions")
    return ax % ndim


def check_out(out: Any, shape: tuple, dtype: np.dtype, name: str) -> np.ndarray:
    """Check an output buffer: an ndarray of this exact shape and dtype, writeable."""
    if not isinstance(out, np.ndarray):
        raise TypeError(f"{name}: expected a numpy.ndarray, got {type(out).__name__}")
    if out.dtype != dtype:
        raise TypeError(f"{name}: expected dtype {dtype}, got {out.dtype}")
    if out.shape != shape:
        raise ValueError(f"{name}: expected shape {shape}, got {out.shape}")
    if not out.flags.writeable:
        raise ValueError(f"{name}: the array is read-only")
    return out


def data_address(a: np.ndarray) -> int:
    return a.__array_interface__["data"][0]


def same_view(a: np.ndarray, b: np.ndarray) -> bool:
    """Are a and b the same elements in the same order (an exact alias)?"""
    return a.shape == b.shape and a.strides == b.strides and data_address(a) == data_address(b)


def needs_staging(out: np.ndarray, *inputs: np.ndarray | None) -> bool:
    """Must the kernel write to a fresh buffer that is then copied into out?

    Yes when out overlaps an input other than as the very same view, or when
    its strides are not whole elements.
    """
    if not whole_element_strides(out):
        return True
    return any(
        x is not None and np.may_share_memory(out, x) and not same_view(out, x) for x in inputs
    )


def row_layout(shape: tuple, axis: int, *strides: tuple) -> tuple | None:
    """The rows along `axis` as the kernels see them, for arrays sharing `shape`.

    Returns ((n0, n1, q), [(s0, s1, sq) per array]) with strides in bytes:
    the dimensions other than `axis` merged into two, in C order.  Each entry
    of `strides` gives one array's strides for all of `shape`'s dimensions.
    None when they do not merge into two for every array at once (rare: an
    already strided view of three or more dimensions).
    """
    q = shape[axis]
    others = [i for i in range(len(shape)) if i != axis and shape[i] != 1]
    if any(shape[i] == 0 for i in others):
        return (0, 1, q), [(0, 0, s[axis]) for s in strides]
    merged: list = []  # [size, [stride per array]]
    for i in others:
        st = [s[i] for s in strides]
        if merged and all(prev == cur * shape[i] for prev, cur in zip(merged[-1][1], st)):
            merged[-1] = [merged[-1][0] * shape[i], st]
        else:
            merged.append([shape[i], st])
    if len(merged) > 2:
        return None
    while len(merged) < 2:
        merged.insert(0, [1, [0] * len(strides)])
    (n0, st0), (n1, st1) = merged
    return (n0, n1, q), [(a, b, s[axis]) for a, b, s in zip(st0, st1, strides)]
