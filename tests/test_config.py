"""show_config, the SIMD switch, and the package surface."""

from __future__ import annotations

import numpy as np
import pytest

import csoftmax as cs
from csoftmax import _core


def test_show_config_prints_openmp_and_simd(capsys):
    assert cs.show_config() is None
    out = capsys.readouterr().out
    keys = {line.split(":", 1)[0].strip() for line in out.splitlines() if ":" in line}
    assert {"version", "compiler", "openmp", "simd"} <= keys, out
    simd_line = next(line for line in out.splitlines() if line.split(":")[0].strip() == "simd")
    assert simd_line.split(":", 1)[1].strip() == _core.simd_name()


def test_show_config_dicts():
    cfg = cs.show_config(mode="dicts")
    assert isinstance(cfg, dict)
    assert {"version", "compiler", "openmp", "simd"} <= set(cfg)
    assert cfg["version"] == cs.__version__
    assert cfg["simd"] in _core.simd_available()
    assert isinstance(cfg["compiler"], str) and cfg["compiler"]
    assert str(cfg["openmp"]).startswith("on") == _core.openmp_enabled()
    with pytest.raises(ValueError, match="^mode"):
        cs.show_config(mode="yaml")


def test_simd_switch():
    available = _core.simd_available()
    assert available and available[-1] == "generic"
    assert set(available) <= {"avx512", "avx2", "generic"}
    before = _core.simd_name()
    assert before in available
    try:
        for name in available:
            _core.set_simd(name)
            assert _core.simd_name() == name
            assert cs.show_config(mode="dicts")["simd"] == name
        with pytest.raises(ValueError, match="^simd"):
            _core.set_simd("sse9")
    finally:
        _core.set_simd(before)
    assert _core.simd_name() == before


def test_simd_paths_agree_closely():
    """Every path is checked against the reference elsewhere; here, they
    also agree with one another on one input to float32 rounding."""
    rng = np.random.default_rng(71)
    x = (rng.standard_normal((50, 77)) * 5).astype(np.float32)
    before = _core.simd_name()
    results = []
    try:
        for name in _core.simd_available():
            _core.set_simd(name)
            results.append(cs.softmax(x))
    finally:
        _core.set_simd(before)
    for r in results[1:]:
        np.testing.assert_allclose(r, results[0], rtol=1e-5, atol=1e-7)


def test_public_names():
    for name in cs.__all__:
        assert hasattr(cs, name), name
    for name in (
        "softmax",
        "log_softmax",
        "logsumexp",
        "cross_entropy",
        "cross_entropy_with_grad",
        "accuracy",
        "get_num_threads",
        "set_num_threads",
        "show_config",
    ):
        assert callable(getattr(cs, name))


def test_threadpoolctl_sees_and_limits_the_kernels_openmp():
    """threadpool_info() lists the OpenMP runtime the core runs on, and
    threadpool_limits(user_api="openmp") caps the kernels' threads."""
    import os

    from threadpoolctl import threadpool_info, threadpool_limits

    with open("/proc/self/maps") as maps:  # the OpenMP runtime the core loaded
        gomp = {line.split()[-1] for line in maps if "libgomp" in line}
    core = os.path.realpath(_core.__file__)
    assert gomp, f"{core} runs without libgomp?"
    openmp = [i for i in threadpool_info() if i["user_api"] == "openmp"]
    assert any(os.path.realpath(i["filepath"]) in {os.path.realpath(g) for g in gomp}
               for i in openmp), openmp

    before = cs.get_num_threads()
    cs.set_num_threads(3)
    assert cs.get_num_threads() == 3
    with threadpool_limits(limits=1, user_api="openmp"):
        assert cs.get_num_threads() == 1
        x = np.random.default_rng(0).normal(size=(4000, 100))
        np.testing.assert_allclose(cs.softmax(x).sum(axis=1), 1)
    assert cs.get_num_threads() == 3
    cs.set_num_threads(before)
