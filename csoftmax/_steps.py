"""How a minibatch step and an evaluation block are computed.

Two routes give the same numbers (to rounding): for few classes, one fused
kernel reads the batch's rows straight from the data set by index and
returns loss, accuracy and both gradients (``_core.train_step``); for many
classes, the rows are gathered into a buffer and go through GEMM, the fused
cross-entropy and GEMM again, where BLAS's blocking wins.  The trainer and
the model call :class:`StepRunner` and do not care which route runs.

uint8 data (raw pixels) with a ``scale`` is read as is by the fused kernel;
the GEMM route widens the gathered rows into its float buffer.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from . import _core

if TYPE_CHECKING:
    from .model import SoftmaxRegression

# Above this many classes BLAS GEMM is faster than the fused kernel (measured
# with bench/, d = 784); the fused kernel keeps a row's q sums in registers.
FUSED_MAX_CLASSES = 32


def step_route(n_classes: int) -> str:
    """The route a training step takes for ``n_classes`` classes."""
    return "fused" if n_classes <= FUSED_MAX_CLASSES else "gemm"


def input_rows(X, n_features: int, dtype: np.dtype, scale, name: str) -> tuple[np.ndarray, float]:
    """X as rows the step can read without a copy when possible, and the scale.

    uint8 input is kept as uint8, its values multiplied by ``scale`` (1 when
    None, the values as they are; 1/255 for pixels) inside the kernels; float
    input of the model's dtype is kept as is (memmaps too), other real input
    is converted; ``scale`` is for uint8 only.
    """
    from ._arrays import as_real_array

    arr = X if isinstance(X, np.ndarray) else np.asarray(X)
    if arr.dtype == np.uint8:
        scale = 1.0 if scale is None else float(scale)
        if not np.isfinite(scale):
            raise ValueError(f"scale: expected a finite number, got {scale}")
        x = arr
    else:
        if scale is not None:
            raise ValueError(
                f"scale: applies to uint8 input only, {name} has dtype {arr.dtype}"
            )
        x = as_real_array(arr, name)
        scale = 1.0
    if x.ndim != 2 or x.shape[1] != n_features:
        raise ValueError(f"{name}: expected shape (n, {n_features}), got {x.shape}")
    if x.dtype != np.uint8 and x.dtype != dtype:
        x = np.ascontiguousarray(x, dtype=dtype)
    elif x.shape[0] > 1 and x.shape[1] > 0 and (
        x.strides[1] != x.itemsize or x.strides[0] < x.shape[1] * x.itemsize
    ):
        x = np.ascontiguousarray(x)
    return x, scale


class StepRunner:
    """Loss, accuracy and gradients of minibatches, in buffers reused across steps.

    ``grad_w`` and ``grad_b`` hold the gradients of the mean loss of the
    last :meth:`step`.
    """

    def __init__(self, model: SoftmaxRegression, rows: int) -> None:
        self.model = model
        self.fused = step_route(model.n_classes) == "fused"
        self.grad_w = np.empty_like(model.weight)
        self.grad_b = np.empty_like(model.bias)
        self.rows = 0
        self.reserve(rows)

    def reserve(self, rows: int) -> None:
        """Make room for batches of up to ``rows`` rows."""
        if rows <= self.rows:
            return
        m = self.model
        if self.fused:
            size = _core.train_step_workspace(m.dtype.name, rows, m.n_features, m.n_classes)
            self.work = np.empty(size, np.uint8)
        else:
            self.x = np.empty((rows, m.n_features), m.dtype)
            self.y = np.empty(rows, np.int64)
            self.logits = np.empty((rows, m.n_classes), m.dtype)
        self.rows = rows

    def step(self, x, labels, rows, start, count, scale, grad=True) -> tuple[float, int]:
        """The summed loss and the number of right answers of a batch.

        The batch is ``x[rows]`` (int64 indices) or, with ``rows=None``,
        ``x[start:start + count]``; ``labels`` are indexed like ``x``'s rows.
        With ``grad``, the gradients of the batch's mean loss land in
        ``grad_w`` and ``grad_b``.
        """
        m = self.model
        gw, gb = (self.grad_w, self.grad_b) if grad else (None, None)
        if self.fused:
            if rows is None:
                x, labels = x[start : start + count], labels[start : start + count]
            return _core.train_step(
                x, rows, labels, m.weight, m.bias, gw, gb, self.work, scale, None, count
            )
        xb, logits = self._gathered(x, rows, start, count, scale), self.logits[:count]
        if rows is None:
            yb = labels[start : start + count]
        else:
            yb = np.take(labels, rows, out=self.y[:count])
        _core.linear_forward(xb, m.weight, m.bias, logits)
        correct = int(np.count_nonzero(np.argmax(logits, axis=1) == yb))
        # Labels were checked with the data: straight to the fused kernel,
        # the gradient written over the logits.
        loss = _core.cross_entropy_kernel(
            logits, yb, -100, None, None, 0.0, "mean", None, logits if grad else None
        )
        if grad:
            _core.linear_backward(xb, logits, gw, gb)
        return float(loss) * count, correct

    def _gathered(self, x, rows, start, count, scale) -> np.ndarray:
        if x.dtype != np.uint8:
            if rows is None:
                return x[start : start + count]
            return np.take(x, rows, axis=0, out=self.x[:count])
        raw = x[start : start + count] if rows is None else x[rows]
        return np.multiply(raw, scale, out=self.x[:count], casting="unsafe")
