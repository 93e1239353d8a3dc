"""The kernels' Python face: softmax, log-softmax, logsumexp, cross-entropy.

Each function checks its arguments completely, then makes one call into the
compiled core, which runs with the GIL released.  Conventions (dtypes,
layouts, ``out=``, empty and non-finite input) are those of ``API.md``.
"""

from __future__ import annotations

import math
import operator
from typing import Any

import numpy as np

from . import _core
from ._arrays import (
    as_real_array,
    check_out,
    needs_staging,
    normalize_axis,
    row_layout,
    whole_element_strides,
)

__all__ = [
    "softmax",
    "log_softmax",
    "logsumexp",
    "cross_entropy",
    "cross_entropy_with_grad",
    "accuracy",
]

ArrayLike = Any
_REDUCTIONS = ("mean", "sum", "none")


def _run_rows(op: int, x: np.ndarray, axis: int, y: np.ndarray, y_strides: tuple) -> None:
    """Run a row kernel from x into y; y_strides has one entry per dimension of x."""
    layout = row_layout(x.shape, axis, x.strides, y_strides)
    if layout is None:
        # The other axes of x or y do not merge into two: work on C-ordered
        # copies, which always do.
        xc = np.ascontiguousarray(x)
        yc = np.empty(y.shape, y.dtype)
        ys = list(yc.strides)
        if op == _core.LOGSUMEXP and yc.ndim < x.ndim:
            ys.insert(axis, 0)
        _run_rows(op, xc, axis, yc, tuple(ys))
        np.copyto(y, yc)
        return
    (n0, n1, q), ((xs0, xs1, xsq), (ys0, ys1, ysq)) = layout
    _core.rows_kernel(op, x, n0, n1, q, xs0, xs1, xsq, y, ys0, ys1, ysq)


def _map_rows(op: int, x: ArrayLike, axis: int, out: np.ndarray | None) -> np.ndarray:
    fast = _core.rows_fast(op, x, axis, out)  # contiguous float rows: one step
    if fast is not None:
        return fast
    arr = as_real_array(x, "x")
    ax = normalize_axis(axis, arr.ndim)
    if out is None:
        res = np.empty_like(arr)
    else:
        res = check_out(out, arr.shape, arr.dtype, "out")
        if needs_staging(res, arr):
            tmp = np.empty_like(arr)
            _run_rows(op, arr, ax, tmp, tmp.strides)
            np.copyto(res, tmp)
            return res
    _run_rows(op, arr, ax, res, res.strides)
    return res


def softmax(x: ArrayLike, axis: int = -1, *, out: np.ndarray | None = None) -> np.ndarray:
    """Softmax along an axis: ``exp(x - max) / sum(exp(x - max))``.

    Parameters
    ----------
    x : array_like
        Real input.  float32 and float64 keep their precision; other real
        dtypes are computed in float64.
    axis : int, default -1
        The axis along which the values sum to one.
    out : ndarray, optional
        Where to write the result: the exact shape and dtype of the result,
        writeable; it may be ``x`` itself.

    Returns
    -------
    ndarray
        The probabilities, of ``x``'s shape.

    Examples
    --------
    >>> import csoftmax as cs
    >>> cs.softmax([1.0, 2.0, 3.0]).round(4)
    array([0.09  , 0.2447, 0.6652])
    """
    return _map_rows(_core.SOFTMAX, x, axis, out)


def log_softmax(x: ArrayLike, axis: int = -1, *, out: np.ndarray | None = None) -> np.ndarray:
    """Log of the softmax along an axis, ``(x - max) - log(sum(exp(x - max)))``.

    Never forms ``exp(x)`` unshifted, so large logits do not overflow.
    Arguments as for :func:`softmax`.

    Examples
    --------
    >>> import csoftmax as cs
    >>> cs.log_softmax([1000.0, 0.0]).round(4)
    array([    0., -1000.])
    """
    return _map_rows(_core.LOG_SOFTMAX, x, axis, out)


def logsumexp(
    x: ArrayLike,
    axis: int = -1,
    *,
    keepdims: bool = False,
    out: np.ndarray | None = None,
) -> np.ndarray | np.floating:
    """``log(sum(exp(x)))`` along an axis, without overflow.

    A zero-length axis gives ``-inf``; a row of all ``-inf`` gives ``-inf``;
    a row holding ``+inf`` and no nan gives ``+inf``.

    Parameters
    ----------
    x : array_like
        Real input (see :func:`softmax`).
    axis : int, default -1
        The axis to reduce.
    keepdims : bool, default False
        Keep the reduced axis with length one.
    out : ndarray, optional
        Where to write the result (exact shape and dtype, writeable).

    Returns
    -------
    ndarray or scalar
        A NumPy scalar when the result has no dimensions and ``out`` is None.

    Examples
    --------
    >>> import csoftmax as cs
    >>> float(cs.logsumexp([0.0, 0.0]))  # log 2
    0.6931471805599453
    """
    fast = _core.logsumexp_fast(x, axis, keepdims, out)  # contiguous float rows: one step
    if fast is not None:
        return fast
    arr = as_real_array(x, "x")
    ax = normalize_axis(axis, arr.ndim)
    shape = arr.shape[:ax] + ((1,) if keepdims else ()) + arr.shape[ax + 1 :]
    res = np.empty(shape, arr.dtype) if out is None else check_out(out, shape, arr.dtype, "out")
    dest = np.empty(shape, arr.dtype) if out is not None and needs_staging(res, arr) else res
    strides = list(dest.strides)
    if not keepdims:
        strides.insert(ax, 0)
    _run_rows(_core.LOGSUMEXP, arr, ax, dest, tuple(strides))
    if dest is not res:
        np.copyto(res, dest)
    if out is None and res.ndim == 0:
        return res[()]
    return res


def _check_options(
    reduction: Any, label_smoothing: Any, ignore_index: Any
) -> tuple[str, float, int]:
    if not isinstance(reduction, str) or reduction not in _REDUCTIONS:
        raise ValueError(f"reduction: expected one of {_REDUCTIONS}, got {reduction!r}")
    try:
        eps = float(label_smoothing)
    except (TypeError, ValueError):
        raise TypeError(
            f"label_smoothing: expected a number, got {type(label_smoothing).__name__}"
        ) from None
    if not 0.0 <= eps <= 1.0:  # also refuses nan
        raise ValueError(f"label_smoothing: {label_smoothing} is outside [0, 1]")
    try:
        ignore = operator.index(ignore_index)
    except TypeError:
        raise TypeError(
            f"ignore_index: expected an integer, got {type(ignore_index).__name__}"
        ) from None
    if not -(2**63) <= ignore < 2**63:
        raise ValueError(f"ignore_index: {ignore} does not fit in int64")
    return str(reduction), eps, ignore


def _class_labels(t: np.ndarray, n: int, q: int, ignore: int) -> np.ndarray:
    """Integer class indices as n contiguous int64, every label checked."""
    if t.dtype.kind not in "iu":
        if t.size == 0 and t.dtype.kind == "f":  # np.asarray([]) is float64
            t = t.astype(np.int64)
        else:
            raise TypeError(
                f"target: class indices must be integers, got dtype {t.dtype}"
                " (probability targets have the logits' shape)"
            )
    if t.shape != (n,):
        raise ValueError(f"target: expected {n} labels for {n} rows of logits, got shape {t.shape}")
    if t.dtype.kind == "u" and t.dtype.itemsize == 8 and n and int(t.max()) >= 2**63:
        raise ValueError(f"target: label {int(t.max())} is out of range [0, {q})")
    labels = np.ascontiguousarray(t, dtype=np.int64)
    bad = _core.first_bad_label(labels, q, ignore)
    if bad >= 0:
        raise ValueError(f"target: label {int(labels[bad])} is out of range [0, {q})")
    return labels


def _cross_entropy(
    logits: ArrayLike,
    target: ArrayLike,
    weight: ArrayLike | None,
    ignore_index: int,
    reduction: str,
    label_smoothing: float,
    want_grad: bool,
    grad_out: np.ndarray | None,
):
    fast = _core.cross_entropy_fast(  # native float logits, int64 labels, no weights: one step
        logits, target, weight, ignore_index, reduction, label_smoothing, want_grad, grad_out
    )
    if fast is not None:
        return fast if want_grad else (fast, None)
    reduction, eps, ignore = _check_options(reduction, label_smoothing, ignore_index)
    o = as_real_array(logits, "logits")
    if o.ndim != 2:
        raise ValueError(f"logits: expected a 2-D array (n, q), got shape {o.shape}")
    n, q = o.shape

    t = target if type(target) is np.ndarray else np.asarray(target)
    labels = probs = None
    if t.ndim == 2:
        if t.dtype.type is not o.dtype.type:
            raise TypeError(
                f"target: probability targets must have the logits' dtype {o.dtype}, got {t.dtype}"
            )
        if t.shape != o.shape:
            raise ValueError(
                f"target: probability targets must have the logits' shape {o.shape}, got {t.shape}"
            )
        if ignore != -100:
            raise ValueError("ignore_index: applies to class-index targets only")
        native = t.dtype.isnative and whole_element_strides(t)
        probs = t if native else t.astype(o.dtype)
    elif t.ndim == 1:
        labels = _class_labels(t, n, q, ignore)
    else:
        raise ValueError(
            f"target: expected class indices (n,) or probabilities (n, q), got shape {t.shape}"
        )

    w = None
    if weight is not None:
        w = as_real_array(weight, "weight")
        if w.shape != (q,):
            raise ValueError(f"weight: expected {q} class weights, got shape {w.shape}")
        w = np.ascontiguousarray(w, dtype=o.dtype)

    grad = dest = None
    if want_grad:
        if grad_out is None:
            grad = dest = np.empty(o.shape, o.dtype)
        else:
            grad = check_out(grad_out, o.shape, o.dtype, "grad_out")
            # The kernel may write the gradient over the logits (the same
            # view), but over nothing else that it reads.
            reads = (probs, w, labels)
            if needs_staging(grad, o) or any(
                np.may_share_memory(grad, a) for a in reads if a is not None
            ):
                dest = np.empty(o.shape, o.dtype)
            else:
                dest = grad
    rows = np.empty(n, o.dtype) if reduction == "none" else None

    total = _core.cross_entropy_kernel(o, labels, ignore, probs, w, eps, reduction, rows, dest)
    if dest is not grad:
        np.copyto(grad, dest)
    loss = rows if rows is not None else o.dtype.type(total)
    return loss, grad


def cross_entropy(
    logits: ArrayLike,
    target: ArrayLike,
    *,
    weight: ArrayLike | None = None,
    ignore_index: int = -100,
    reduction: str = "mean",
    label_smoothing: float = 0.0,
):
    """Cross-entropy of softmax(logits) against targets, as in PyTorch.

    Parameters
    ----------
    logits : array_like, shape (n, q)
        Unnormalised scores.
    target : array_like
        Class indices, shape (n,), of any integer dtype, each in ``[0, q)``
        or equal to ``ignore_index``; or class probabilities, shape (n, q),
        of the logits' dtype.
    weight : array_like, shape (q,), optional
        A weight per class.
    ignore_index : int, default -100
        Rows with this label count for nothing (class-index targets only).
    reduction : {"mean", "sum", "none"}
        "mean" divides the summed loss by the summed weight of the counted
        rows' labels (by n for probability targets); "none" returns the n
        row losses.
    label_smoothing : float in [0, 1], default 0
        Mix the target with the uniform distribution by this amount.

    Returns
    -------
    scalar or ndarray
        A scalar of the logits' dtype, or the (n,) row losses for "none".

    Examples
    --------
    >>> import csoftmax as cs
    >>> round(float(cs.cross_entropy([[2.0, 0.0], [0.0, 2.0]], [0, 1])), 6)
    0.126928
    """
    loss, _ = _cross_entropy(
        logits, target, weight, ignore_index, reduction, label_smoothing, False, None
    )
    return loss


def cross_entropy_with_grad(
    logits: ArrayLike,
    target: ArrayLike,
    *,
    weight: ArrayLike | None = None,
    ignore_index: int = -100,
    reduction: str = "mean",
    label_smoothing: float = 0.0,
    grad_out: np.ndarray | None = None,
):
    """The cross-entropy and its gradient by the logits, in one fused pass.

    Arguments as for :func:`cross_entropy`, and

    grad_out : ndarray, optional
        Where to write the gradient: shape (n, q), the logits' dtype,
        writeable; it may be ``logits`` itself.

    Returns
    -------
    (loss, grad)
        ``grad`` is d loss / d logits (of the summed loss for ``"none"``).

    Examples
    --------
    >>> import csoftmax as cs
    >>> loss, grad = cs.cross_entropy_with_grad([[0.0, 0.0]], [1])
    >>> grad
    array([[ 0.5, -0.5]])
    """
    return _cross_entropy(
        logits, target, weight, ignore_index, reduction, label_smoothing, True, grad_out
    )


def accuracy(scores: ArrayLike, y: ArrayLike) -> float:
    """The fraction of rows whose largest score is at the true class.

    Ties go to the first maximum, as in ``numpy.argmax``; no rows give nan.

    Examples
    --------
    >>> import csoftmax as cs
    >>> cs.accuracy([[0.1, 0.9], [0.8, 0.2]], [1, 1])
    0.5
    """
    s = as_real_array(scores, "scores")
    if s.ndim != 2:
        raise ValueError(f"scores: expected a 2-D array (n, q), got shape {s.shape}")
    labels = np.asarray(y)
    if labels.dtype.kind not in "iu" and not (labels.size == 0 and labels.dtype.kind == "f"):
        raise TypeError(f"y: class indices must be integers, got dtype {labels.dtype}")
    if labels.shape != (s.shape[0],):
        raise ValueError(f"y: expected {s.shape[0]} labels, got shape {labels.shape}")
    n = s.shape[0]
    if n == 0:
        return math.nan
    if s.shape[1] == 0:
        raise ValueError("scores: no classes to choose from")
    return float(np.count_nonzero(np.argmax(s, axis=1) == labels)) / n
