"""The fused training step (``_core.train_step``): logits, loss, accuracy and
both gradients of a batch in one pass over rows read by index."""

import numpy as np
import pytest
import reference as ref
from conftest import fuzz_settings
from helpers import assert_same_bits
from hypothesis import given
from hypothesis import strategies as st

import csoftmax as cs
from csoftmax import _core

TOL = {np.float32: dict(rtol=2e-5, atol=2e-6), np.float64: dict(rtol=1e-12, atol=1e-13)}


def problem(rng, n, d, q, dtype, uint8=False):
    if uint8:
        x = rng.integers(0, 256, (n, d)).astype(np.uint8)
    else:
        x = rng.standard_normal((n, d)).astype(dtype)
    w = (rng.standard_normal((d, q)) * 0.05).astype(dtype)
    b = (rng.standard_normal(q) * 0.1).astype(dtype)
    return x, rng.integers(0, q, n), w, b


def step(x, rows, labels, w, b, scale=1.0, m=-1, grad=True):
    d, q = w.shape
    count = m if rows is None else len(rows)
    gw = np.full((d, q), np.nan, w.dtype) if grad else None
    gb = np.full(q, np.nan, w.dtype) if grad else None
    work = np.empty(_core.train_step_workspace(w.dtype.name, count, d, q), np.uint8)
    loss, right = _core.train_step(x, rows, labels, w, b, gw, gb, work, scale, None, m)
    return loss, right, gw, gb


def check(got, want, dtype):
    loss, right, gw, gb = got
    rloss, rright, rgw, rgb = want
    np.testing.assert_allclose(loss, rloss, rtol=TOL[dtype]["rtol"] * 10)
    assert right == rright
    np.testing.assert_allclose(gw, rgw, **TOL[dtype])
    np.testing.assert_allclose(gb, rgb, **TOL[dtype])


# Shapes around the kernel's edges: one class, q past a tile of 12 (several
# tiles), d below and past a vector, one row, odd rows (AVX-512 takes two).
SHAPES = [(50, 784, 10, 17), (300, 37, 3, 100), (200, 5, 30, 33), (64, 1, 1, 1),
          (500, 100, 13, 500), (90, 16, 12, 90), (40, 17, 25, 7), (600, 64, 32, 513)]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("uint8", [False, True])
@pytest.mark.parametrize("shape", SHAPES)
def test_matches_the_reference(simd, rng, shape, dtype, uint8):
    n, d, q, m = shape
    x, labels, w, b = problem(rng, n, d, q, dtype, uint8)
    scale = 1 / 255 if uint8 else 1.0
    rows = rng.permutation(n)[:m].astype(np.int64)
    check(step(x, rows, labels, w, b, scale), ref.train_step(x, rows, labels, w, b, scale), dtype)
    # rows=None: x's first m rows
    check(step(x, None, labels, w, b, scale, m=m), ref.train_step(x, m, labels, w, b, scale), dtype)


@fuzz_settings
@given(
    n=st.integers(1, 80), d=st.integers(1, 70), q=st.integers(1, 40),
    dtype=st.sampled_from([np.float32, np.float64]), uint8=st.booleans(),
    seed=st.integers(0, 2**32 - 1), data=st.data(),
)
def test_property_matches_the_reference(n, d, q, dtype, uint8, seed, data):
    rng = np.random.default_rng(seed)
    x, labels, w, b = problem(rng, n, d, q, dtype, uint8)
    # Any rows, repeats allowed, in any order; a strided x (every other row).
    rows = np.asarray(data.draw(st.lists(st.integers(0, n - 1), min_size=1, max_size=70)))
    strided = data.draw(st.booleans())
    if strided:
        big = np.zeros((2 * n, d), x.dtype)
        big[::2] = x
        x = big[::2]
    scale = 1 / 255 if uint8 else 1.0
    check(step(x, rows, labels, w, b, scale), ref.train_step(x, rows, labels, w, b, scale), dtype)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_same_bits_for_every_thread_count(rng, dtype):
    x, labels, w, b = problem(rng, 3000, 200, 10, dtype)
    rows = rng.permutation(3000)[:2500].astype(np.int64)
    results = []
    for threads in (1, 2, 3, 8):
        cs.set_num_threads(threads)
        results.append(step(x, rows, labels, w, b))
    for other in results[1:]:
        assert other[0] == results[0][0] and other[1] == results[0][1]
        assert_same_bits(other[2], results[0][2], "grad_w")
        assert_same_bits(other[3], results[0][3], "grad_b")


def test_loss_only_and_logits_only(rng):
    x, labels, w, b = problem(rng, 300, 40, 7, np.float64)
    rows = rng.permutation(300)[:120].astype(np.int64)
    rloss, rright, _, _ = ref.train_step(x, rows, labels, w, b)
    loss, right, gw, gb = step(x, rows, labels, w, b, grad=False)
    np.testing.assert_allclose(loss, rloss, rtol=1e-12)
    assert right == rright and gw is None
    # Without labels: the logits, nothing else.
    logits = np.full((120, 7), np.nan)
    work = np.empty(_core.train_step_workspace("float64", 120, 40, 7), np.uint8)
    assert _core.train_step(x, rows, None, w, b, None, None, work, 1.0, logits) == (0.0, 0)
    np.testing.assert_allclose(logits, x[rows] @ w + b, rtol=1e-12)


def test_non_finite_rows_give_nan_not_a_crash(rng):
    x, labels, w, b = problem(rng, 64, 20, 5, np.float32)
    x[3, 4] = np.nan
    x[7, 0] = np.inf
    x[9, :] = 1e30
    loss, right, gw, gb = step(x, None, labels, w, b, m=64)
    assert np.isnan(loss) and np.isnan(gw).any()
    assert 0 <= right <= 64


def test_argmax_ties_and_nan_follow_numpy():
    """Accuracy counts np.argmax's answer: the first maximum, the first nan."""
    w = np.zeros((1, 3))
    x = np.ones((3, 1))
    for b, label, right in (([1.0, 1.0, 0.0], 0, 1), ([1.0, 1.0, 0.0], 1, 0),
                            ([0.0, np.nan, np.nan], 1, 1), ([0.0, np.nan, np.nan], 2, 0)):
        labels = np.full(3, label)
        got = step(x, None, labels, w, np.array(b), m=3, grad=False)[1]
        assert got == 3 * right, (b, label)


def test_bad_input_raises_before_anything_is_written(rng):
    x, labels, w, b = problem(rng, 50, 8, 4, np.float32)
    gw, gb = np.full((8, 4), 7, np.float32), np.full(4, 7, np.float32)
    work = np.empty(_core.train_step_workspace("float32", 10, 8, 4), np.uint8)
    rows = np.arange(10, dtype=np.int64)

    def call(**kw):
        args = dict(x=x, rows=rows, labels=labels, w=w, b=b, grad_w=gw, grad_b=gb, work=work)
        args.update(kw)
        return _core.train_step(*args.values())

    bad_rows = rows.copy()
    bad_rows[5] = 50
    bad_labels = labels.copy()
    bad_labels[3] = 4
    cases = [
        (dict(rows=bad_rows), IndexError, "rows"),
        (dict(rows=-rows - 1), IndexError, "rows"),
        (dict(labels=bad_labels), ValueError, "labels"),
        (dict(labels=labels[:-1]), ValueError, "labels"),
        (dict(rows=rows.astype(np.int32)), TypeError, "rows"),
        (dict(work=work[:-100]), ValueError, "work"),
        (dict(x=x.astype(np.float64)), TypeError, "X"),
        (dict(x=x[:, :7]), ValueError, "weight"),
        (dict(grad_w=gw.T.copy()), ValueError, "grad_weight"),
        (dict(grad_b=gb[:3]), ValueError, "grad_bias"),
        (dict(x=np.asfortranarray(x)), ValueError, "X"),
    ]
    for kw, exc, name in cases:
        with pytest.raises(exc, match=name):
            call(**kw)
    assert (gw == 7).all() and (gb == 7).all()


def test_no_rows_give_zero_gradients(rng):
    x, labels, w, b = problem(rng, 10, 30, 4, np.float32)
    loss, right, gw, gb = step(x, np.zeros(0, np.int64), labels, w, b)
    assert (loss, right) == (0.0, 0)
    assert (gw == 0).all() and (gb == 0).all()
