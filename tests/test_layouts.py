"""Any layout gives the bits of a C-contiguous copy; ``out=`` and
``keepdims`` for softmax, log_softmax and logsumexp."""

from __future__ import annotations

import numpy as np
import pytest
import reference as ref
from helpers import FLOAT_TYPES, assert_matches, assert_same_bits, random_array

import csoftmax as cs

OPS = {
    "softmax": (cs.softmax, ref.softmax),
    "log_softmax": (cs.log_softmax, ref.log_softmax),
    "logsumexp": (cs.logsumexp, ref.logsumexp),
}


def _views(rng, dtype):
    """2-D arrays in every layout, named."""
    base = random_array(rng, (14, 27), dtype)
    return {
        "C": base,
        "F": np.asfortranarray(base),
        "transposed": base.T,
        "strided": base[::2, ::3],
        "negative": base[::-1, ::-1],
        "negative-strided": base[::-3, ::-2],
        "column": base[:, 5],
        "row-slice": base[3, 4:],
        "one-row": base[:1],
        "one-col": base[:, :1],
        "mixed": np.asfortranarray(base)[1:, ::-2],
    }


@pytest.mark.parametrize("dtype", FLOAT_TYPES)
@pytest.mark.parametrize("op", OPS)
def test_2d_layouts_match_contiguous_copy(op, dtype, simd):
    rng = np.random.default_rng(21)
    fn, oracle = OPS[op]
    for name, x in _views(rng, dtype).items():
        for axis in range(-x.ndim, x.ndim):
            got = fn(x, axis=axis)
            assert_same_bits(got, fn(np.ascontiguousarray(x), axis=axis), f"{name} axis={axis}")
            assert_matches(got, oracle(x, axis), dtype, f"{op} {name} axis={axis}")


ND_SHAPES = [(17,), (4, 5, 6), (3, 4, 5, 6), (2, 1, 9, 3), (1, 1, 5)]


@pytest.mark.parametrize("shape", ND_SHAPES, ids=str)
@pytest.mark.parametrize("dtype", FLOAT_TYPES)
@pytest.mark.parametrize("op", OPS)
def test_nd_every_axis(op, dtype, shape):
    rng = np.random.default_rng(22)
    fn, oracle = OPS[op]
    x = random_array(rng, shape, dtype)
    variants = {
        "C": x,
        "F": np.asfortranarray(x),
        "transposed": x.T,
        "reversed": x[(slice(None, None, -1),) * x.ndim],
        "strided": np.repeat(x, 2, axis=0)[::2],
        "swapped": np.swapaxes(x, 0, -1),
    }
    for name, v in variants.items():
        for axis in range(-v.ndim, v.ndim):
            got = fn(v, axis=axis)
            assert_same_bits(got, fn(np.ascontiguousarray(v), axis=axis), f"{name} axis={axis}")
            assert_matches(got, oracle(v, axis), dtype, f"{op} {name} {shape} axis={axis}")


@pytest.mark.parametrize("dtype", FLOAT_TYPES)
@pytest.mark.parametrize("op", OPS)
def test_axes_that_cannot_merge(op, dtype, simd):
    """A view whose other axes do not merge into two row dimensions."""
    rng = np.random.default_rng(23)
    fn, oracle = OPS[op]
    base = random_array(rng, (4, 5, 6, 7), dtype)
    views = {
        "4d": base[:, ::2, :, ::3],
        "3d": base[:, ::2, 1, ::3],
        "3d-neg": base[::-1, ::2, :, 2][:, :, ::-2],
        "perm": base.transpose(2, 0, 3, 1)[:, ::2, ::-1, 1:],
    }
    for name, x in views.items():
        for axis in range(-x.ndim, x.ndim):
            got = fn(x, axis=axis)
            assert_same_bits(got, fn(np.ascontiguousarray(x), axis=axis), f"{name} axis={axis}")
            assert_matches(got, oracle(x, axis), dtype, f"{op} {name} axis={axis}")
            # The same with an out= that also does not merge.
            shape = np.asarray(got).shape
            holder = np.full(shape + (3,), -7.0, dtype)
            out = holder[..., 1]
            r = fn(x, axis=axis, out=out)
            assert r is out
            assert_same_bits(out, got, f"{name} axis={axis} out=")
            assert (holder[..., 0] == -7).all() and (holder[..., 2] == -7).all()


# ----------------------------------------------------------------- out= ---


@pytest.mark.parametrize("dtype", FLOAT_TYPES)
@pytest.mark.parametrize("op", OPS)
def test_out_is_written_and_returned(op, dtype):
    rng = np.random.default_rng(24)
    fn = OPS[op][0]
    x = random_array(rng, (6, 11), dtype)
    expected = fn(x)
    for order in ("C", "F"):
        out = np.full(np.shape(expected), np.nan, dtype, order=order)
        r = fn(x, out=out)
        assert r is out
        assert_same_bits(out, expected, f"order {order}")
    # A strided out.
    if op != "logsumexp":
        holder = np.full((12, 22), np.nan, dtype)
        out = holder[::2, ::-2]
        assert fn(x, out=out) is out
        assert_same_bits(out, expected, "strided out")
        assert np.isnan(holder[1::2]).all()


@pytest.mark.parametrize("dtype", FLOAT_TYPES)
@pytest.mark.parametrize("op", ["softmax", "log_softmax"])
def test_out_in_place(op, dtype, simd):
    rng = np.random.default_rng(25)
    fn = OPS[op][0]
    base = random_array(rng, (9, 40), dtype)
    for name, make in {
        "C": lambda b: b.copy(),
        "F": lambda b: np.asfortranarray(b),
        "strided": lambda b: np.repeat(b, 2, axis=1)[:, ::2],
        "negative": lambda b: b[::-1, ::-1].copy()[::-1, ::-1],
    }.items():
        for axis in (0, 1, -1):
            x = make(base)
            expected = fn(x.copy(), axis=axis)
            r = fn(x, axis=axis, out=x)
            assert r is x
            assert_same_bits(x, expected, f"in place {name} axis={axis}")


@pytest.mark.parametrize("dtype", FLOAT_TYPES)
@pytest.mark.parametrize("op", ["softmax", "log_softmax"])
def test_out_partially_overlapping_input(op, dtype):
    rng = np.random.default_rng(26)
    fn = OPS[op][0]
    buf = random_array(rng, (5, 14), dtype)
    cases = {
        "shift right": (lambda b: b[:, :10], lambda b: b[:, 4:]),
        "shift left": (lambda b: b[:, 4:], lambda b: b[:, :10]),
        "shift by one": (lambda b: b[:, 1:11], lambda b: b[:, :10]),
        "transposed": (lambda b: b[:, :5], lambda b: b[:, :5].T.T[::-1]),
        "rows": (lambda b: b[:4], lambda b: b[1:]),
    }
    for name, (xf, of) in cases.items():
        for axis in (0, 1):
            b = buf.copy()
            x, out = xf(b), of(b)
            expected = fn(x.copy(), axis=axis)
            r = fn(x, axis=axis, out=out)
            assert r is out
            assert_same_bits(out, expected, f"{name} axis={axis}")
    # 1-D: a shifted view of the same buffer.
    b = np.arange(20, dtype=dtype) / 7
    expected = fn(b[:15].copy())
    out = b[5:]
    fn(b[:15], out=out)
    assert_same_bits(out, expected, "1-D shifted")


@pytest.mark.parametrize("dtype", FLOAT_TYPES)
def test_logsumexp_out_overlapping_input(dtype):
    rng = np.random.default_rng(27)
    buf = random_array(rng, (4, 11), dtype)
    x = buf[:, :10]
    expected = cs.logsumexp(x.copy())
    out = buf[:, 0]
    assert cs.logsumexp(x, out=out) is out
    assert_same_bits(out, expected, "first column")
    buf = random_array(rng, (4, 11), dtype)
    expected = cs.logsumexp(buf.copy(), axis=0, keepdims=True)
    out = buf[1:2]
    assert cs.logsumexp(buf, axis=0, keepdims=True, out=out) is out
    assert_same_bits(out, expected, "keepdims row")


@pytest.mark.parametrize("op", OPS)
def test_out_errors_leave_out_unchanged(op):
    fn = OPS[op][0]
    x = np.linspace(-1, 1, 12, dtype=np.float32).reshape(3, 4)
    good_shape = np.shape(fn(x))
    bad_shape = (3, 5) if op != "logsumexp" else (4,)
    cases = [
        (ValueError, np.full(bad_shape, 7.0, np.float32)),
        (ValueError, np.full(good_shape + (1,), 7.0, np.float32)),
        (TypeError, np.full(good_shape, 7.0, np.float64)),
        (TypeError, np.full(good_shape, 7.0, ">f4")),
        (TypeError, np.full(good_shape, 7, np.int32)),
    ]
    ro = np.full(good_shape, 7.0, np.float32)
    ro.flags.writeable = False
    cases.append((ValueError, ro))
    for exc, out in cases:
        before = out.copy()
        with pytest.raises(exc, match="^out"):
            fn(x, out=out)
        np.testing.assert_array_equal(out, before)
        assert out.dtype == before.dtype
    with pytest.raises(TypeError, match="^out"):
        fn(x, out=[[0.0] * 4] * 3)
    with pytest.raises(TypeError, match="^out"):
        fn(x, out=np.zeros(good_shape, np.float32).tolist())


def test_out_for_converted_input_must_be_float64():
    x = np.arange(6, dtype=np.int32).reshape(2, 3)
    with pytest.raises(TypeError, match="^out"):
        cs.softmax(x, out=np.zeros((2, 3), np.int32))
    out = np.zeros((2, 3))
    assert cs.softmax(x, out=out) is out
    assert_matches(out, ref.softmax(x), np.float64)


# -------------------------------------------------------- logsumexp shape ---


@pytest.mark.parametrize("dtype", FLOAT_TYPES)
def test_logsumexp_keepdims_and_out(dtype):
    rng = np.random.default_rng(28)
    x = random_array(rng, (3, 4, 5), dtype)
    for axis in range(-3, 3):
        r = cs.logsumexp(x, axis=axis)
        rk = cs.logsumexp(x, axis=axis, keepdims=True)
        assert rk.shape == ref.logsumexp(x, axis, keepdims=True).shape
        assert_matches(rk, ref.logsumexp(x, axis, keepdims=True), dtype)
        assert_same_bits(np.squeeze(rk, axis=axis), r)
        out = np.empty(r.shape, dtype)
        assert cs.logsumexp(x, axis=axis, out=out) is out
        assert_same_bits(out, r)
        outk = np.empty(rk.shape, dtype)
        assert cs.logsumexp(x, axis=axis, keepdims=True, out=outk) is outk
        assert_same_bits(outk, rk)
        with pytest.raises(ValueError, match="^out"):
            cs.logsumexp(x, axis=axis, out=np.empty(rk.shape, dtype))
        with pytest.raises(ValueError, match="^out"):
            cs.logsumexp(x, axis=axis, keepdims=True, out=np.empty(r.shape, dtype))


@pytest.mark.parametrize("dtype", FLOAT_TYPES)
def test_logsumexp_1d_returns_numpy_scalar(dtype):
    x = np.array([0.5, -1.0, 2.0], dtype)
    r = cs.logsumexp(x)
    assert isinstance(r, np.generic) and not isinstance(r, np.ndarray)
    assert r.dtype == dtype
    assert_matches(r, ref.logsumexp(x), dtype)
    rk = cs.logsumexp(x, keepdims=True)
    assert isinstance(rk, np.ndarray) and rk.shape == (1,)
    out = np.empty((), dtype)
    assert cs.logsumexp(x, out=out) is out
    assert out[()] == r


@pytest.mark.parametrize("dtype", FLOAT_TYPES)
@pytest.mark.parametrize("op", OPS)
def test_broadcast_zero_stride_input(op, dtype):
    rng = np.random.default_rng(29)
    fn, oracle = OPS[op]
    row = random_array(rng, 13, dtype)
    for x in (
        np.broadcast_to(row, (6, 13)),
        np.broadcast_to(row[:, None], (13, 6)),
        np.broadcast_to(row, (2, 3, 13)),
        np.broadcast_to(dtype(1.5), (4, 5)),
    ):
        assert not x.flags.writeable
        for axis in range(-x.ndim, x.ndim):
            got = fn(x, axis=axis)
            assert_same_bits(got, fn(x.copy(), axis=axis), f"{x.strides} axis={axis}")
            assert_matches(got, oracle(x, axis), dtype, f"{op} broadcast axis={axis}")


def _packed_field(values, dtype):
    """values as the first field of a packed record array: a valid NumPy
    view whose strides are not a multiple of the itemsize (and unaligned)."""
    rec = np.zeros(values.shape, dtype=[("v", dtype), ("pad", np.int8)])
    rec["v"] = values
    view = rec["v"]
    assert view.strides[-1] % view.itemsize != 0
    return view


@pytest.mark.parametrize("dtype", FLOAT_TYPES)
@pytest.mark.parametrize("op", OPS)
def test_strides_not_a_multiple_of_the_itemsize(op, dtype):
    """A field of a packed structured array is a layout like any other: the
    result is that of a C-contiguous copy (API.md: "Any layout")."""
    rng = np.random.default_rng(30)
    fn = OPS[op][0]
    values = random_array(rng, (5, 7), dtype)
    x = _packed_field(values, dtype)
    for axis in (0, 1):
        assert_same_bits(fn(x, axis=axis), fn(values, axis=axis), f"axis={axis}")
        expected = fn(values, axis=axis)
        out = _packed_field(np.zeros(np.shape(expected), dtype), dtype)
        r = fn(values, axis=axis, out=out)
        assert r is out
        assert_same_bits(out, expected, f"out= axis={axis}")


@pytest.mark.parametrize("dtype", FLOAT_TYPES)
def test_cross_entropy_strides_not_a_multiple_of_the_itemsize(dtype):
    rng = np.random.default_rng(31)
    values = random_array(rng, (6, 5), dtype)
    target = rng.integers(0, 5, 6)
    expected = cs.cross_entropy_with_grad(values, target)
    got = cs.cross_entropy_with_grad(_packed_field(values, dtype), target)
    assert_same_bits(got[0], expected[0])
    assert_same_bits(got[1], expected[1])
    g = _packed_field(np.zeros((6, 5), dtype), dtype)
    _, grad = cs.cross_entropy_with_grad(values, target, grad_out=g)
    assert grad is g
    assert_same_bits(g, expected[1])


@pytest.mark.parametrize("dtype", FLOAT_TYPES)
@pytest.mark.parametrize("op", OPS)
def test_unaligned_contiguous_input(op, dtype):
    rng = np.random.default_rng(32)
    fn = OPS[op][0]
    values = random_array(rng, (5, 7), dtype)
    buf = np.zeros(values.nbytes + 1, np.uint8)
    x = buf[1:].view(dtype).reshape(values.shape)
    x[...] = values
    assert not x.flags.aligned
    for axis in (0, 1):
        assert_same_bits(fn(x, axis=axis), fn(values, axis=axis), f"axis={axis}")
