"""softmax, log_softmax and logsumexp against the float64 reference:
values, sizes, dtypes, non-finite input and empty input."""

from __future__ import annotations

import numpy as np
import pytest
import reference as ref
from helpers import FLOAT_TYPES, assert_matches, random_array

import csoftmax as cs

OPS = {
    "softmax": (cs.softmax, ref.softmax),
    "log_softmax": (cs.log_softmax, ref.log_softmax),
    "logsumexp": (cs.logsumexp, ref.logsumexp),
}


def check(op, x, axis=-1, dtype=None, what=""):
    """Run op on x and compare with the reference; returns the result."""
    fn, oracle = OPS[op]
    got = fn(x, axis=axis)
    expected_dtype = dtype if dtype is not None else np.asarray(x).dtype
    assert_matches(got, oracle(np.asarray(x), axis), expected_dtype, what=f"{op} {what}")
    return got


# ---------------------------------------------------------------- values ---


@pytest.mark.parametrize("dtype", FLOAT_TYPES)
@pytest.mark.parametrize("op", OPS)
def test_small_example(op, dtype, simd):
    x = np.array([[1.0, 2.0, 3.0], [0.0, 0.0, 0.0], [-5.0, 10.0, 2.5]], dtype=dtype)
    check(op, x)


def test_docstring_examples():
    np.testing.assert_array_equal(cs.softmax([[0.0, 0.0]]), [[0.5, 0.5]])
    np.testing.assert_allclose(cs.log_softmax([1000.0, 0.0]), [0.0, -1000.0], atol=1e-12)
    assert float(cs.logsumexp([0.0, 0.0])) == pytest.approx(np.log(2.0), rel=1e-15)


def _rows_for_width(rng, q, dtype):
    """Rows of length q whose max sits in every interesting place."""
    rows = [random_array(rng, q, dtype)]
    for pos in {0, q - 1, q // 2}:
        r = random_array(rng, q, dtype)
        r[pos] = 50  # a dominant max at the head, the tail, the middle
        rows.append(r)
    rows.append(random_array(rng, q, dtype, scale=100) + 1000)
    rows.append(random_array(rng, q, dtype, scale=0.01) - 1000)
    rows.append(np.full(q, 0.25, dtype))
    return np.array(rows, dtype=dtype)


@pytest.mark.parametrize("dtype", FLOAT_TYPES)
@pytest.mark.parametrize("op", OPS)
def test_every_tail_length(op, dtype, simd):
    """q = 1..70 covers every remainder of vectors of 4, 8 and 16 lanes, and
    the two-vectors-at-a-time main loops with and without a single vector."""
    rng = np.random.default_rng(100)
    for q in range(1, 71):
        check(op, _rows_for_width(rng, q, dtype), what=f"q={q}")


@pytest.mark.parametrize("q", [1000, 4097, 32000])
@pytest.mark.parametrize("dtype", FLOAT_TYPES)
@pytest.mark.parametrize("op", OPS)
def test_long_rows(op, dtype, q, simd):
    rng = np.random.default_rng(q)
    x = random_array(rng, (3, q), dtype, scale=5)
    x[1] += 300  # rows far from 0
    x[2, q - 1] = 40  # dominant max in the last (partial) vector
    check(op, x, what=f"q={q}")


@pytest.mark.parametrize("shape", [(3000, 37), (2500, 7), (5000, 1)])
@pytest.mark.parametrize("dtype", FLOAT_TYPES)
@pytest.mark.parametrize("op", OPS)
def test_many_rows(op, dtype, shape):
    rng = np.random.default_rng(3)
    check(op, random_array(rng, shape, dtype), what=str(shape))


@pytest.mark.parametrize("dtype", FLOAT_TYPES)
def test_softmax_rows_sum_to_one_long(dtype):
    rng = np.random.default_rng(4)
    x = random_array(rng, (4, 32000), dtype, scale=2)
    s = cs.softmax(x).astype(np.float64).sum(axis=1)
    np.testing.assert_allclose(s, 1.0, rtol=1e-5 if dtype == np.float32 else 1e-12)


# ---------------------------------------------------------------- dtypes ---


@pytest.mark.parametrize("dtype", FLOAT_TYPES)
@pytest.mark.parametrize("op", OPS)
def test_float_types_keep_their_dtype(op, dtype):
    x = np.linspace(-3, 3, 24, dtype=dtype).reshape(4, 6)
    out = OPS[op][0](x)
    assert out.dtype == dtype
    check(op, x)


CONVERTED_TYPES = [
    np.bool_,
    np.int8,
    np.int16,
    np.int32,
    np.int64,
    np.uint8,
    np.uint16,
    np.uint32,
    np.uint64,
    np.float16,
    np.longdouble,
]


@pytest.mark.parametrize("dtype", CONVERTED_TYPES, ids=lambda t: np.dtype(t).name)
@pytest.mark.parametrize("op", OPS)
def test_other_real_types_give_float64(op, dtype):
    x = (np.arange(20).reshape(4, 5) % 7).astype(dtype)
    got = OPS[op][0](x)
    assert got.dtype == np.float64
    check(op, x, dtype=np.float64)


def test_lists_and_scalars_in_lists_give_float64():
    got = cs.softmax([[1, 2, 3]])
    assert got.dtype == np.float64
    assert_matches(got, ref.softmax([[1.0, 2.0, 3.0]]), np.float64)
    got = cs.logsumexp([True, False])
    assert isinstance(got, np.float64)
    assert got == pytest.approx(np.log(1 + np.e), rel=1e-15)


@pytest.mark.parametrize("code, dtype", [(">f4", np.float32), (">f8", np.float64)])
@pytest.mark.parametrize("op", OPS)
def test_non_native_byte_order_gives_native_result(op, code, dtype):
    rng = np.random.default_rng(5)
    native = random_array(rng, (5, 9), dtype)
    swapped = native.astype(code)
    got = OPS[op][0](swapped)
    assert got.dtype == np.dtype(dtype)
    assert got.dtype.isnative
    np.testing.assert_array_equal(got, OPS[op][0](native))
    check(op, swapped, dtype=dtype)


@pytest.mark.parametrize(
    "x",
    [
        np.ones((2, 3), np.complex128),
        np.ones((2, 3), np.complex64),
        np.array([[1.0, "a"]], dtype=object),
        np.array([[1.0, 2.0]], dtype=object),
    ],
    ids=["complex128", "complex64", "object-mixed", "object-floats"],
)
@pytest.mark.parametrize("op", OPS)
def test_complex_and_object_raise_type_error(op, x):
    with pytest.raises(TypeError, match="^x"):
        OPS[op][0](x)


# ----------------------------------------------------- non-finite input ---

inf, nan = np.inf, np.nan


def test_api_examples_exactly():
    np.testing.assert_array_equal(cs.softmax([inf, 1.0]), [nan, nan])
    np.testing.assert_array_equal(cs.log_softmax([inf, 1.0]), [nan, nan])
    assert cs.logsumexp([-inf, -inf]) == -inf
    assert cs.logsumexp([inf, 1.0]) == inf
    assert cs.logsumexp([inf, -inf, 3.0]) == inf
    assert np.isnan(cs.logsumexp([inf, nan]))
    assert np.isnan(cs.logsumexp([1.0, nan, 2.0]))
    assert np.isnan(cs.softmax([-inf, -inf])).all()
    assert np.isnan(cs.log_softmax([-inf, -inf])).all()
    # A nan row leaves the other rows alone.
    x = np.array([[1.0, nan, 2.0], [1.0, 2.0, 3.0]])
    s = cs.softmax(x)
    assert np.isnan(s[0]).all()
    np.testing.assert_allclose(s[1], ref.softmax(x[1]), rtol=1e-14)
    assert np.isnan(cs.log_softmax(x)[0]).all()
    lse = cs.logsumexp(x)
    assert np.isnan(lse[0]) and np.isfinite(lse[1])


def _special_patterns(dtype):
    big = np.finfo(dtype).max
    tiny = np.finfo(dtype).smallest_subnormal
    pats = [
        [inf, 1.0],
        [1.0, inf],
        [inf, inf],
        [-inf, -inf],
        [-inf],
        [inf],
        [nan],
        [-inf, -inf, -inf, 0.0],
        [-inf, 0.0, 1.0],
        [inf, -inf, 0.0],
        [inf, -inf],
        [nan, inf, -inf],
        [nan, 0.0, 1.0],
        [1e30, -1e30, 0.0],
        [1e30, 1e30],
        [-1e30, -1e30],
        [-1e30, -1e30, -1e30 * 0.999],
        [3.4e38, -3.4e38],
        [3.4e38, 3.4e38, 3.4e38],
        [-3.4e38, -3.4e38],
        [-3.4e38, 0.0, 3.4e38],
        [big, -big, 0.0],
        [big, big],
        [-big, -big],
        [tiny, 0.0, -tiny],
        [tiny * 3, tiny],
        [-0.0, 0.0],
        [88.0, -88.0, 0.0],
        [-104.0, 0.0],
        [700.0, 0.0, -700.0],
        [-745.0, 0.0],
    ]
    if dtype == np.float64:
        pats += [[1.7e308, -1.7e308], [1.7e308, 1.7e308], [-1.7e308, 0.0, 1.7e308]]
    return pats


def _embed(pattern, q, rng, dtype, where):
    """The pattern inside a row of q finite random values."""
    row = random_array(rng, q, dtype)
    start = {"head": 0, "tail": q - len(pattern), "middle": (q - len(pattern)) // 2}[where]
    row[start : start + len(pattern)] = pattern
    return row


@pytest.mark.parametrize("dtype", FLOAT_TYPES)
@pytest.mark.parametrize("op", OPS)
def test_adversarial_rows(op, dtype, simd):
    rng = np.random.default_rng(6)
    for pattern in _special_patterns(dtype):
        with np.errstate(over="ignore"):
            p = np.array(pattern, dtype=dtype)
        check(op, p[None, :], what=f"pattern {pattern}")
        check(op, p, what=f"1-D pattern {pattern}")
        for q in (len(p) + 1, 17, 33, 70):
            rows = np.array([_embed(p, q, rng, dtype, w) for w in ("head", "tail", "middle")])
            check(op, rows, what=f"pattern {pattern} in rows of {q}")
            # The same rows along axis 0.
            check(op, rows.T.copy(), axis=0, what=f"pattern {pattern} down columns of {q}")


@pytest.mark.parametrize("dtype", FLOAT_TYPES)
def test_large_logits_never_overflow(dtype):
    x = np.array([[1e30, -1e30, 0.0], [-1e30, -1e30, -1e30]], dtype=dtype)
    s = cs.softmax(x)
    np.testing.assert_array_equal(s[0], [1.0, 0.0, 0.0])
    np.testing.assert_allclose(s[1], [1 / 3] * 3, rtol=1e-6)
    ls = cs.log_softmax(x)
    assert ls[0, 0] == 0.0 and ls[0, 1] == dtype(-2e30) and ls[0, 2] == dtype(-1e30)
    lse = cs.logsumexp(x)
    assert lse[0] == dtype(1e30)
    assert lse[1] == dtype(-1e30)


@pytest.mark.parametrize("dtype", FLOAT_TYPES)
@pytest.mark.parametrize("op", OPS)
def test_mixed_special_batch(op, dtype, simd):
    """Many rows, a different special value in each, in one call (several
    threads' shares): every row must come out as the reference has it."""
    rng = np.random.default_rng(11)
    n, q = 4000, 19
    x = random_array(rng, (n, q), dtype, scale=10)
    specials = np.array([inf, -inf, nan, 1e30, -1e30, 3e38, -3e38, 0.0], dtype=dtype)
    mask = rng.random((n, q)) < 0.08
    x[mask] = rng.choice(specials, mask.sum())
    x[rng.random(n) < 0.02] = -inf  # whole rows of -inf
    check(op, x, what="mixed")
    check(op, x.T, axis=0, what="mixed, transposed")


# --------------------------------------------------------------- empty ----

EMPTY_SHAPES = [(0, 5), (5, 0), (0, 0), (3, 0, 4), (0,)]


@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.int64])
@pytest.mark.parametrize("shape", EMPTY_SHAPES, ids=str)
def test_empty_inputs(shape, dtype):
    x = np.zeros(shape, dtype)
    kdtype = np.dtype(dtype) if dtype != np.int64 else np.dtype(np.float64)
    for axis in range(-len(shape), len(shape)):
        for op in ("softmax", "log_softmax"):
            got = OPS[op][0](x, axis=axis)
            assert got.shape == shape and got.dtype == kdtype, (op, axis)
        got = cs.logsumexp(x, axis=axis)
        expected = ref.logsumexp(x, axis)
        assert np.asarray(got).dtype == kdtype
        assert np.asarray(got).shape == expected.shape
        if x.shape[axis] == 0:
            assert np.all(np.asarray(got) == -inf), (shape, axis, got)
        np.testing.assert_array_equal(got, expected)
        got_k = cs.logsumexp(x, axis=axis, keepdims=True)
        np.testing.assert_array_equal(got_k, ref.logsumexp(x, axis, keepdims=True))


def test_empty_list():
    assert cs.logsumexp([]) == -inf
    assert cs.softmax([]).shape == (0,)
    assert cs.log_softmax([]).dtype == np.float64
