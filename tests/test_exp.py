"""The kernels' vectorised exp (``csoftmax._core.exp``): within 2 ulp of the
correctly rounded result over the whole range, exact special values, under
every SIMD path.  ``pytest -s`` prints the largest error measured."""

from __future__ import annotations

import math

import numpy as np
import pytest

from csoftmax import _core

MAX_ULP = 2.0


def _f32_from_bits(lo, hi):
    """Every float32 whose bit pattern is in [lo, hi] (as int32 patterns)."""
    return np.arange(lo, hi + 1, dtype=np.uint32).view(np.float32)


def _bits(v):
    return int(np.array(v, np.float32).view(np.uint32))


@pytest.fixture(scope="module")
def f32_sweep():
    """Points and their float64 exp: a dense grid of [-104, 89], every float32
    in the overflow zone and in the subnormal-result zone, and random small
    arguments drawn by bit pattern."""
    grid = np.linspace(-104.0, 89.0, 12_000_001, dtype=np.float32)
    # Every float32 in [88, 89] (results near FLT_MAX, and the overflow edge).
    over = _f32_from_bits(_bits(88.0), _bits(89.0))
    # Every float32 in [-104, -87.3] (results subnormal or flushed to 0): the
    # bit patterns of negative numbers grow with the magnitude.
    under = _f32_from_bits(_bits(-87.3), _bits(-104.0))
    rng = np.random.default_rng(61)
    small = rng.integers(0, 2**31, 2_000_000, dtype=np.uint32)
    small = small[(small & 0x7F800000) < 0x3F800000].view(np.float32)  # |x| < 1
    small = np.concatenate([small, -small])
    x = np.concatenate([grid, over, under, small])
    with np.errstate(over="ignore"):
        ref = np.exp(x.astype(np.float64))
        ref32 = ref.astype(np.float32)
    return x, ref, ref32


@pytest.fixture(scope="module")
def f64_sweep():
    """Points and their long-double exp over the whole float64 range, with a
    dense subnormal-result zone and random bit patterns."""
    grid = np.linspace(-745.2, 709.8, 3_000_001)
    sub = np.linspace(-745.2, -708.3, 400_001)
    rng = np.random.default_rng(62)
    bits = rng.integers(0, 2**63, 600_000, dtype=np.uint64)
    rand = bits.view(np.float64)
    rand = rand[np.abs(rand) < 745.2]  # finite and in range (nan bit patterns go)
    x = np.concatenate([grid, sub, rand, -rand])
    with np.errstate(over="ignore"):
        ref = np.exp(x.astype(np.longdouble))
        ref64 = ref.astype(np.float64)
    return x, ref, ref64


def _ulp_errors(got, ref_hi, ref_rounded, wide):
    """|got - exact| in ulps of the correctly rounded result, where it is finite."""
    fin = np.isfinite(ref_rounded)
    spacing = np.spacing(np.abs(ref_rounded[fin])).astype(wide)
    err = np.abs(got[fin].astype(wide) - ref_hi[fin].astype(wide)) / spacing
    return fin, err


@pytest.mark.parametrize("path", _core.simd_available())
def test_float32_ulp_sweep(path, f32_sweep):
    x, ref, ref32 = f32_sweep
    _core.set_simd(path)
    got = _core.exp(x)
    assert got.dtype == np.float32 and got.shape == x.shape
    # Overflow and underflow land exactly where the correctly rounded result does.
    np.testing.assert_array_equal(np.isposinf(got), np.isposinf(ref32), "overflow positions")
    assert not np.isnan(got).any()
    fin, err = _ulp_errors(got, ref, ref32, np.float64)
    worst = int(np.argmax(err))
    print(
        f"\nexp float32 [{path}]: max error {err[worst]:.4f} ulp at x={x[fin][worst]!r} "
        f"over {x.size} points"
    )
    assert err[worst] <= MAX_ULP, (x[fin][worst], got[fin][worst], ref[fin][worst])
    # Subnormal results: within one unit of the subnormal spacing.
    sub = fin & (ref < np.finfo(np.float32).tiny)
    sub_err = (
        np.abs(got[sub].astype(np.float64) - ref[sub]) / np.finfo(np.float32).smallest_subnormal
    )
    print(f"exp float32 [{path}]: subnormal results max error {sub_err.max():.4f} ulp")
    assert sub.sum() > 1_000_000
    assert sub_err.max() <= 1.0


@pytest.mark.parametrize("path", _core.simd_available())
def test_float64_ulp_sweep(path, f64_sweep):
    x, ref, ref64 = f64_sweep
    _core.set_simd(path)
    got = _core.exp(x)
    assert got.dtype == np.float64 and got.shape == x.shape
    np.testing.assert_array_equal(np.isposinf(got), np.isposinf(ref64), "overflow positions")
    assert not np.isnan(got).any()
    fin, err = _ulp_errors(got, ref, ref64, np.longdouble)
    worst = int(np.argmax(err))
    print(
        f"\nexp float64 [{path}]: max error {float(err[worst]):.4f} ulp at x={x[fin][worst]!r} "
        f"over {x.size} points"
    )
    assert err[worst] <= MAX_ULP, (x[fin][worst], got[fin][worst], ref[fin][worst])
    sub = fin & (ref64 < np.finfo(np.float64).tiny)
    sub_err = np.abs(got[sub].astype(np.longdouble) - ref[sub]) / np.longdouble(
        np.finfo(np.float64).smallest_subnormal
    )
    print(f"exp float64 [{path}]: subnormal results max error {float(sub_err.max()):.4f} ulp")
    assert sub.sum() > 100_000
    assert sub_err.max() <= 1.0


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("path", _core.simd_available())
def test_special_values(path, dtype):
    _core.set_simd(path)
    fi = np.finfo(dtype)
    inf, nan = np.inf, np.nan
    x = np.array([-inf, inf, nan, 0.0, -0.0, -1e30, 1e30, fi.max, -fi.max, 1.0], dtype)
    got = _core.exp(x)
    assert got[0] == 0.0 and not np.signbit(got[0])
    assert got[1] == inf
    assert np.isnan(got[2])
    assert got[3] == 1.0 and got[4] == 1.0
    assert got[5] == 0.0 and got[6] == inf
    assert got[7] == inf and got[8] == 0.0
    assert abs(float(got[9]) - math.e) <= 2 * np.spacing(dtype(math.e))
    # nan with any payload or sign stays nan.
    nans = np.array([nan, -nan], dtype)
    assert np.isnan(_core.exp(nans)).all()

    # Overflow: just above log(max) is inf, just below it is finite.
    log_max = np.log(np.longdouble(fi.max))
    above = np.nextafter(dtype(log_max), dtype(inf))
    while np.longdouble(above) <= log_max:
        above = np.nextafter(above, dtype(inf))
    below = np.nextafter(dtype(log_max), dtype(-inf))
    while np.longdouble(below) >= log_max:
        below = np.nextafter(below, dtype(-inf))
    edge = _core.exp(np.array([below, above, np.nextafter(above, dtype(inf))], dtype))
    assert np.isfinite(edge[0]) and edge[0] > fi.max / 2
    assert edge[1] == inf and edge[2] == inf

    # Underflow: far below the smallest subnormal's log is exactly 0.
    lo = float(np.log(np.longdouble(fi.smallest_subnormal)))
    under = np.array([lo - 1, lo - 10, lo * 1.5, -1e4], dtype)
    np.testing.assert_array_equal(_core.exp(under), 0.0)
    # And the smallest subnormal comes out of its own log.
    tiny = _core.exp(np.array([np.log(np.longdouble(fi.smallest_subnormal))], dtype))
    assert tiny[0] == fi.smallest_subnormal


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("path", _core.simd_available())
def test_every_length_matches_elementwise(path, dtype):
    """Partial vectors give the same bits as full ones, at every length."""
    _core.set_simd(path)
    rng = np.random.default_rng(63)
    x = (rng.standard_normal(80) * 30).astype(dtype)
    x[::9] = [-np.inf, np.inf, np.nan, 0.0, -200, 200, 1e-30, -1e-30, 88.5][: len(x[::9])]
    full = _core.exp(x)
    for n in range(0, 71):
        part = _core.exp(x[:n].copy())
        assert part.shape == (n,)
        np.testing.assert_array_equal(part, full[:n], err_msg=f"n={n}")
        for i in range(n):
            single = _core.exp(x[i : i + 1].copy())
            np.testing.assert_array_equal(single, full[i : i + 1], err_msg=f"n={n} i={i}")
            if i > 2:
                break


def test_exp_argument_checks():
    with pytest.raises(ValueError, match="^x"):
        _core.exp(np.zeros((4, 4))[:, ::2])
    with pytest.raises(TypeError, match="^x"):
        _core.exp(np.zeros(4, np.int64))
    with pytest.raises(TypeError, match="^x"):
        _core.exp(np.zeros(4, ">f8"))
    y = _core.exp(np.zeros((3, 5), np.float32))
    assert y.shape == (3, 5) and y.dtype == np.float32 and np.all(y == 1)


# ------------------------------------------------------------------- log ---
# The kernels' vectorised log (``csoftmax._core.log``), which log-softmax,
# logsumexp and the cross-entropy take of each row's sum: within 1 ulp of the
# correctly rounded result, exact special values, under every SIMD path.

MAX_ULP_LOG = 1.0


@pytest.fixture(scope="module")
def f32_log_sweep():
    """Every float32 in [0.5, 2) (where the reduction changes sides and the
    result cancels toward 0), every subnormal's neighbourhood by random bit
    patterns, and random bit patterns over the whole positive range."""
    near_one = _f32_from_bits(_bits(0.5), _bits(2.0) - 1)
    rng = np.random.default_rng(64)
    anywhere = rng.integers(1, 0x7F800000, 4_000_000, dtype=np.uint32).view(np.float32)
    subnormal = rng.integers(1, 0x00800000, 500_000, dtype=np.uint32).view(np.float32)
    x = np.concatenate([near_one, anywhere, subnormal])
    return x, np.log(x.astype(np.float64))


@pytest.fixture(scope="module")
def f64_log_sweep():
    """A dense grid of [0.5, 2], the immediate neighbourhood of 1, random bit
    patterns over the whole positive range and over the subnormals, against
    the long-double log."""
    rng = np.random.default_rng(65)
    grid = np.linspace(0.5, 2.0, 2_000_001)
    around_one = 1.0 + np.linspace(-1e-6, 1e-6, 20_001)
    anywhere = rng.integers(1, 0x7FF0000000000000, 3_000_000, dtype=np.uint64).view(np.float64)
    subnormal = rng.integers(1, 2**52, 300_000, dtype=np.uint64).view(np.float64)
    x = np.concatenate([grid, around_one, anywhere, subnormal])
    return x, np.log(x.astype(np.longdouble))


@pytest.mark.parametrize("path", _core.simd_available())
def test_log_float32_ulp_sweep(path, f32_log_sweep):
    x, ref = f32_log_sweep
    _core.set_simd(path)
    got = _core.log(x)
    assert got.dtype == np.float32 and got.shape == x.shape
    assert np.isfinite(got).all()
    _, err = _ulp_errors(got, ref, ref.astype(np.float32), np.float64)
    worst = int(np.argmax(err))
    print(f"\nlog float32 [{path}]: max error {err[worst]:.4f} ulp at x={x[worst]!r} over {x.size}")
    assert err[worst] <= MAX_ULP_LOG, (x[worst], got[worst], ref[worst])
    # Exact where the result is exact.
    assert _core.log(np.array([1.0], np.float32))[0] == 0.0


@pytest.mark.parametrize("path", _core.simd_available())
def test_log_float64_ulp_sweep(path, f64_log_sweep):
    x, ref = f64_log_sweep
    _core.set_simd(path)
    got = _core.log(x)
    assert got.dtype == np.float64 and got.shape == x.shape
    assert np.isfinite(got).all()
    _, err = _ulp_errors(got, ref, ref.astype(np.float64), np.longdouble)
    worst = int(np.argmax(err))
    print(f"\nlog float64 [{path}]: max error {float(err[worst]):.4f} ulp at x={x[worst]!r}")
    assert err[worst] <= MAX_ULP_LOG, (x[worst], got[worst], ref[worst])
    assert _core.log(np.array([1.0]))[0] == 0.0


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("path", _core.simd_available())
def test_log_special_values(path, dtype):
    _core.set_simd(path)
    fi = np.finfo(dtype)
    inf, nan = np.inf, np.nan
    x = np.array([0.0, -0.0, inf, -inf, nan, -nan, -1.0, -fi.tiny, -fi.smallest_subnormal], dtype)
    got = _core.log(x)
    assert got[0] == -inf and got[1] == -inf
    assert got[2] == inf
    assert np.isnan(got[3:]).all()
    # The ends of the finite range, against the long-double log.
    ends = np.array([fi.smallest_subnormal, fi.tiny, fi.max, 2.0, 0.5], dtype)
    want = np.log(ends.astype(np.longdouble)).astype(dtype)
    np.testing.assert_allclose(_core.log(ends), want, rtol=2 * fi.eps, atol=0)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("path", _core.simd_available())
def test_log_every_length_matches_elementwise(path, dtype):
    """Partial vectors give the same bits as full ones, at every length."""
    _core.set_simd(path)
    rng = np.random.default_rng(66)
    x = np.exp(rng.standard_normal(80) * 30).astype(dtype)
    x[::9] = [0.0, np.inf, np.nan, 1.0, -2.0, 1e-30, 1e30, 3.0, 0.25][: len(x[::9])]
    full = _core.log(x)
    for n in range(0, 71):
        np.testing.assert_array_equal(_core.log(x[:n].copy()), full[:n], err_msg=f"n={n}")


def test_log_argument_checks():
    with pytest.raises(ValueError, match="^x"):
        _core.log(np.ones((4, 4))[:, ::2])
    with pytest.raises(TypeError, match="^x"):
        _core.log(np.ones(4, np.int64))
