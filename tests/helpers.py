"""Comparison helpers shared by the kernel tests."""

from __future__ import annotations

import numpy as np

#: float32 results against the float64 reference, and float64 results.
TOLERANCES = {
    np.dtype(np.float32): dict(rtol=1e-5, atol=1e-6),
    np.dtype(np.float64): dict(rtol=1e-12, atol=1e-13),
}

FLOAT_TYPES = (np.float32, np.float64)


def rounded(ref, dtype) -> np.ndarray:
    """The float64 reference rounded to dtype: where its infinities are."""
    with np.errstate(over="ignore", invalid="ignore"):
        return np.asarray(ref, dtype=np.float64).astype(dtype)


def assert_matches(got, ref, dtype, what: str = "") -> None:
    """got (of dtype) equals the float64 reference within dtype's tolerance.

    nan, +inf and -inf must sit at exactly the positions where the reference,
    rounded to dtype, has them (so a float64 value beyond float32's range
    counts as an infinity of float32).
    """
    dtype = np.dtype(dtype)
    got_arr = np.asarray(got)
    ref = np.asarray(ref, dtype=np.float64)
    assert got_arr.dtype == dtype, f"{what}: dtype {got_arr.dtype}, expected {dtype}"
    assert got_arr.shape == ref.shape, f"{what}: shape {got_arr.shape}, expected {ref.shape}"
    ref_r = rounded(ref, dtype)
    g = got_arr.astype(np.float64)
    for name, test in (
        ("nan", np.isnan),
        ("+inf", lambda a: np.isposinf(a)),
        ("-inf", lambda a: np.isneginf(a)),
    ):
        bad = test(g) != test(ref_r)
        if bad.any():
            idx = np.argwhere(bad)[:5].tolist()
            raise AssertionError(
                f"{what}: {name} positions differ at {idx}: "
                f"got {g[bad][:5]}, reference {ref[bad][:5]}"
            )
    expected = np.where(np.isfinite(ref_r), ref, ref_r)
    np.testing.assert_allclose(g, expected, equal_nan=True, err_msg=what, **TOLERANCES[dtype])


def assert_same_bits(a, b, what: str = "") -> None:
    """Bitwise equality (nan equal to nan), dtype and shape included."""
    a, b = np.asarray(a), np.asarray(b)
    assert a.dtype == b.dtype, f"{what}: dtypes {a.dtype} != {b.dtype}"
    assert a.shape == b.shape, f"{what}: shapes {a.shape} != {b.shape}"
    assert np.array_equal(a, b, equal_nan=True), f"{what}: results differ"
    # Signed zeros and nan payloads aside, the bit patterns must agree too.
    assert a.tobytes() == b.tobytes() or np.isnan(a).any(), f"{what}: bit patterns differ"


def random_array(rng, shape, dtype=np.float64, scale=3.0) -> np.ndarray:
    return (rng.standard_normal(shape) * scale).astype(dtype)
