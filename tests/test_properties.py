"""Property tests (hypothesis) of the row kernels on arbitrary arrays."""

from __future__ import annotations

import numpy as np
import reference as ref
from helpers import assert_matches
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import csoftmax as cs

DTYPES = st.sampled_from([np.float32, np.float64])


@st.composite
def finite_arrays(draw, min_dims=1, max_dims=3, max_side=40, bound=None, dtype=None):
    """A finite array of either float type (values anywhere in its range
    unless bounded) and an axis of it."""
    dtype = draw(DTYPES) if dtype is None else dtype
    shape = draw(
        hnp.array_shapes(min_dims=min_dims, max_dims=max_dims, min_side=1, max_side=max_side)
    )
    width = 32 if dtype == np.float32 else 64
    elements = st.floats(
        min_value=-bound if bound else None,
        max_value=bound if bound else None,
        allow_nan=False,
        allow_infinity=False,
        width=width,
    )
    x = draw(hnp.arrays(dtype, shape, elements=elements))
    axis = draw(st.integers(-x.ndim, x.ndim - 1))
    return x, axis


@settings(max_examples=80)
@given(finite_arrays(bound=1e4))
def test_softmax_rows_sum_to_one(case):
    x, axis = case
    s = cs.softmax(x, axis=axis)
    assert s.dtype == x.dtype
    assert np.all(s >= 0) and np.all(s <= 1)
    tol = 1e-5 if x.dtype == np.float32 else 1e-12
    np.testing.assert_allclose(s.astype(np.float64).sum(axis=axis), 1.0, rtol=tol)


@settings(max_examples=60)
@given(finite_arrays(bound=100), st.floats(-50, 50))
def test_shift_invariance(case, c):
    x, axis = case
    shifted = (x.astype(np.float64) + c).astype(x.dtype)
    # The shift itself rounds in float32; compare against softmax of what was
    # actually passed, computed both ways.
    a = cs.softmax(shifted, axis=axis)
    b = cs.softmax(x, axis=axis)
    if x.dtype == np.float32:
        # rounding x + c changes differences by up to ulp(150) ~ 1.5e-5
        np.testing.assert_allclose(a, b, rtol=1e-3, atol=1e-5)
    else:
        np.testing.assert_allclose(a, b, rtol=1e-9, atol=1e-12)
    # The same for exactly representable shifts: equal up to rounding.
    x2 = x.astype(np.float64)
    np.testing.assert_allclose(
        cs.softmax(x2 + 64.0, axis=axis), cs.softmax(x2, axis=axis), rtol=1e-12, atol=1e-13
    )


@settings(max_examples=60)
@given(finite_arrays(bound=30))
def test_log_softmax_is_log_of_softmax(case):
    x, axis = case
    ls = cs.log_softmax(x, axis=axis)
    s = cs.softmax(x, axis=axis)
    assert ls.dtype == x.dtype
    with np.errstate(divide="ignore"):
        logs = np.log(s.astype(np.float64))
    where = np.isfinite(logs) & (s > np.finfo(x.dtype).tiny)
    tol = dict(rtol=1e-4, atol=1e-5) if x.dtype == np.float32 else dict(rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(ls[where], logs[where], **tol)
    assert np.all(ls <= 0)


@settings(max_examples=80)
@given(finite_arrays())
def test_logsumexp_at_least_row_max(case):
    x, axis = case
    lse = cs.logsumexp(x, axis=axis)
    m = np.max(x, axis=axis)
    assert np.all(lse >= m), (lse, m)
    # and at most max + log(q)
    q = x.shape[axis]
    with np.errstate(over="ignore"):
        bound = m.astype(np.float64) + np.log(q) * (1 + 1e-5) + 1e-5 * np.abs(m)
    assert np.all(np.asarray(lse, np.float64) <= bound)


@settings(max_examples=60)
@given(
    DTYPES,
    hnp.array_shapes(min_dims=1, max_dims=2, min_side=1, max_side=20),
    st.floats(0.001, 0.05),
    st.data(),
)
def test_order_preserved(dtype, shape, scale, data):
    """Distinct values (at least `scale` apart, spanning at most 80 so that
    no probability underflows) keep their order through softmax and
    log_softmax."""
    ints = data.draw(hnp.arrays(np.int32, shape, elements=st.integers(-800, 800), unique=True))
    x = (ints * scale).astype(dtype)
    axis = data.draw(st.integers(-x.ndim, x.ndim - 1))
    for fn in (cs.softmax, cs.log_softmax):
        y = fn(x, axis=axis)
        np.testing.assert_array_equal(
            np.argsort(y, axis=axis, kind="stable"), np.argsort(x, axis=axis, kind="stable")
        )


@settings(max_examples=100)
@given(finite_arrays(max_dims=4, max_side=12))
def test_agrees_with_reference_on_arbitrary_finite_arrays(case):
    x, axis = case
    for name, fn, oracle in (
        ("softmax", cs.softmax, ref.softmax),
        ("log_softmax", cs.log_softmax, ref.log_softmax),
        ("logsumexp", cs.logsumexp, ref.logsumexp),
    ):
        assert_matches(fn(x, axis=axis), oracle(x, axis), x.dtype, f"{name} axis={axis}")


@settings(max_examples=60)
@given(
    finite_arrays(min_dims=2, max_dims=2, max_side=30, bound=1e3),
    st.sampled_from(["mean", "sum", "none"]),
    st.sampled_from([0.0, 0.2, 1.0]),
    st.booleans(),
    st.data(),
)
def test_cross_entropy_agrees_with_reference(case, reduction, e, weighted, data):
    logits, _ = case
    n, q = logits.shape
    y = np.array(data.draw(st.lists(st.integers(0, q - 1), min_size=n, max_size=n)))
    w = None
    if weighted:
        w = np.array(
            data.draw(st.lists(st.floats(0.125, 10, width=32), min_size=q, max_size=q)),
            logits.dtype,
        )
    ref_loss, ref_grad = ref.cross_entropy(logits, y, w, reduction=reduction, label_smoothing=e)
    loss, grad = cs.cross_entropy_with_grad(
        logits, y, weight=w, reduction=reduction, label_smoothing=e
    )
    assert_matches(loss, ref_loss, logits.dtype, "loss")
    assert_matches(grad, ref_grad, logits.dtype, "grad")
