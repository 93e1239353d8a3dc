"""Shared fixtures: a deterministic hypothesis profile, the SIMD paths, and
a guard that restores the thread count and the SIMD path after every test."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, settings

import csoftmax as cs
from csoftmax import _core

settings.register_profile(
    "csoftmax",
    derandomize=True,
    database=None,
    deadline=None,
    max_examples=60,
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
settings.load_profile("csoftmax")

#: The instruction sets this CPU and this build support, best first.
SIMD_PATHS = list(_core.simd_available())


@pytest.fixture(autouse=True)
def _restore_global_state():
    """No test may leak a thread count or a SIMD path into the next one."""
    threads, simd = cs.get_num_threads(), _core.simd_name()
    yield
    cs.set_num_threads(threads)
    _core.set_simd(simd)


@pytest.fixture(params=SIMD_PATHS)
def simd(request):
    """Run the test under each available SIMD path in turn."""
    before = _core.simd_name()
    _core.set_simd(request.param)
    assert _core.simd_name() == request.param
    yield request.param
    _core.set_simd(before)


@pytest.fixture
def rng():
    return np.random.default_rng(20240521)
