"""The one-step fast paths of the common case (C-contiguous native float rows
along the last axis; int64 labels, no class weights) give the very bits of
the general path, and leave every check to it: bad input raises the same
errors, before anything is written."""

from __future__ import annotations

import numpy as np
import pytest
from helpers import FLOAT_TYPES, assert_same_bits

import csoftmax as cs


def _general(x):
    """The same values in a layout the fast paths refuse (Fortran order)."""
    return np.asfortranarray(x) if x.ndim > 1 else x[::-1].copy()[::-1]


@pytest.mark.parametrize("dtype", FLOAT_TYPES)
@pytest.mark.parametrize("shape", [(256, 10), (7, 3), (33, 17), (5, 0), (0, 4), (10,), (2, 3, 40)])
def test_row_kernels_fast_equals_general(dtype, shape, simd):
    rng = np.random.default_rng(70)
    x = (rng.standard_normal(shape) * 4).astype(dtype)
    if x.size:
        x.flat[:: max(1, x.size // 7)] = [np.inf, -np.inf, np.nan, 1e30, -1e30, 80, -95][
            : len(x.flat[:: max(1, x.size // 7)])
        ]
    for f in (cs.softmax, cs.log_softmax, cs.logsumexp):
        assert_same_bits(f(x), f(_general(x)), f"{f.__name__} {shape}")
        out = np.empty(x.shape if f is not cs.logsumexp else x.shape[:-1], dtype)
        assert f(x, out=out) is out
        assert_same_bits(out, f(_general(x)), f"{f.__name__} out= {shape}")
    k = cs.logsumexp(x, keepdims=True)
    assert k.shape == x.shape[:-1] + (1,)
    assert_same_bits(k, cs.logsumexp(_general(x), keepdims=True))


def test_logsumexp_fast_path_details():
    x = np.array([0.0, 0.0])
    r = cs.logsumexp(x)
    assert type(r) is np.float64 and r == np.log(2.0)
    out = np.empty((), np.float64)
    assert cs.logsumexp(x, out=out) is out and out[()] == np.log(2.0)
    # An out= that overlaps x is staged by the general path.
    buf = np.arange(12, dtype=np.float32).reshape(3, 4)
    want = cs.logsumexp(buf.copy())
    got = cs.logsumexp(buf, out=buf[:, 0])
    np.testing.assert_array_equal(got, want)
    with pytest.raises(ValueError, match="^out"):
        cs.logsumexp(np.zeros((3, 4)), out=np.zeros(4))
    with pytest.raises(TypeError, match="^out"):
        cs.logsumexp(np.zeros((3, 4)), out=np.zeros(3, np.float32))
    ro = np.zeros(3)
    ro.flags.writeable = False
    with pytest.raises(ValueError, match="^out"):
        cs.logsumexp(np.zeros((3, 4)), out=ro)
    with pytest.raises(np.exceptions.AxisError, match="^axis"):
        cs.logsumexp(np.zeros((3, 4)), axis=2)
    assert cs.logsumexp(np.zeros((3, 0))).tolist() == [-np.inf] * 3


@pytest.mark.parametrize("dtype", FLOAT_TYPES)
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("n,q", [(256, 10), (37, 3), (5, 40)])
def test_cross_entropy_fast_equals_general(dtype, reduction, n, q, simd):
    rng = np.random.default_rng(71)
    x = (rng.standard_normal((n, q)) * 3).astype(dtype)
    y = rng.integers(0, q, n)
    y[::5] = -100
    for eps in (0.0, 0.1, 1):
        opts = dict(reduction=reduction, label_smoothing=eps)
        fast = cs.cross_entropy_with_grad(x, y, **opts)
        general = cs.cross_entropy_with_grad(_general(x), y.astype(np.int32), **opts)
        assert_same_bits(fast[0], general[0], f"loss {reduction} {eps}")
        assert_same_bits(fast[1], general[1], f"grad {reduction} {eps}")
        assert_same_bits(cs.cross_entropy(x, y, **opts), general[0])
        g = np.empty_like(x)
        loss, grad = cs.cross_entropy_with_grad(x, y, grad_out=g, **opts)
        assert grad is g
        assert_same_bits(g, general[1])
        # In place over the logits.
        inplace = x.copy()
        loss, grad = cs.cross_entropy_with_grad(inplace, y, grad_out=inplace, **opts)
        assert grad is inplace
        assert_same_bits(inplace, general[1])
        assert_same_bits(loss, general[0])


def test_cross_entropy_fast_path_leaves_errors_to_the_checks():
    x = np.zeros((4, 3), np.float32)
    g = np.full_like(x, 7.0)
    with pytest.raises(ValueError, match=r"^target: label 3 is out of range \[0, 3\)"):
        cs.cross_entropy_with_grad(x, np.array([0, 1, 3, 2]), grad_out=g)
    assert (g == 7.0).all()
    with pytest.raises(ValueError, match=r"^target: label -1 is out of range"):
        cs.cross_entropy(x, np.array([0, -1, 1, 2]))
    with pytest.raises(ValueError, match="^reduction"):
        cs.cross_entropy(x, np.array([0, 1, 1, 2]), reduction="max")
    with pytest.raises(ValueError, match="^label_smoothing"):
        cs.cross_entropy(x, np.array([0, 1, 1, 2]), label_smoothing=1.5)
    with pytest.raises(ValueError, match="^label_smoothing"):
        cs.cross_entropy(x, np.array([0, 1, 1, 2]), label_smoothing=float("nan"))
    with pytest.raises(TypeError, match="^ignore_index"):
        cs.cross_entropy(x, np.array([0, 1, 1, 2]), ignore_index=1.0)
    with pytest.raises(ValueError, match="^ignore_index"):
        cs.cross_entropy(x, np.array([0, 1, 1, 2]), ignore_index=2**70)
    with pytest.raises(ValueError, match="^target"):
        cs.cross_entropy(x, np.array([0, 1, 1]))
    with pytest.raises(ValueError, match="^grad_out"):
        cs.cross_entropy_with_grad(x, np.array([0, 1, 1, 2]), grad_out=np.zeros((4, 4), np.float32))
    with pytest.raises(TypeError, match="^grad_out"):
        cs.cross_entropy_with_grad(x, np.array([0, 1, 1, 2]), grad_out=np.zeros((4, 3)))
    ro = np.zeros_like(x)
    ro.flags.writeable = False
    with pytest.raises(ValueError, match="^grad_out"):
        cs.cross_entropy_with_grad(x, np.array([0, 1, 1, 2]), grad_out=ro)
    # np.float64 smoothing and numpy-integer ignore_index take the general path.
    a = cs.cross_entropy(x, np.array([0, 1, 1, 2]), label_smoothing=np.float64(0.1))
    b = cs.cross_entropy(x, np.array([0, 1, 1, 2]), label_smoothing=0.1)
    assert_same_bits(a, b)
    assert_same_bits(
        cs.cross_entropy(x, np.array([0, 1, 1, 2]), ignore_index=np.int64(1)),
        cs.cross_entropy(x, np.array([0, 1, 1, 2]), ignore_index=1),
    )


def test_cross_entropy_grad_out_over_the_labels_is_staged():
    """A gradient buffer that shares memory with the labels must not be
    written while they are read: the general path stages it."""
    buf = np.zeros(64, np.float64)
    labels = buf[:8].view(np.int64)
    labels[:] = [0, 1, 2, 0, 1, 2, 0, 1]
    x = np.random.default_rng(72).standard_normal((8, 3))
    want_loss, want_grad = cs.cross_entropy_with_grad(x, labels.copy())
    grad_out = buf[:24].reshape(8, 3)
    loss, grad = cs.cross_entropy_with_grad(x, labels, grad_out=grad_out)
    assert grad is grad_out
    assert_same_bits(loss, want_loss)
    assert_same_bits(grad, want_grad)
