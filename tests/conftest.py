"""Shared fixtures: a deterministic hypothesis profile, the SIMD paths, and
a guard that restores the thread count and the SIMD path after every test."""

from __future__ import annotations

import os

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

# The fuzz tests (test_fuzz.py, test_fuzz_files.py) run under a profile of
# their own, chosen by CSOFTMAX_FUZZ: "short" (the default, "ci": a quick,
# deterministic pass) or "long" (>= 100,000 examples across the fuzz tests,
# freshly random each run, no deadline).  The other tests keep "csoftmax".
settings.register_profile(
    "ci",
    parent=settings.get_profile("csoftmax"),
    max_examples=100,
)
settings.register_profile(
    "long",
    parent=settings.get_profile("csoftmax"),
    derandomize=False,
    deadline=None,
    max_examples=10_000,
)
FUZZ_MODE = os.environ.get("CSOFTMAX_FUZZ", "short").strip().lower() or "short"
if FUZZ_MODE not in ("short", "long"):
    raise ValueError(f"CSOFTMAX_FUZZ: expected 'short' or 'long', got {FUZZ_MODE!r}")
#: The settings of every fuzz test (scale max_examples from it, never replace it).
fuzz_settings = settings.get_profile("long" if FUZZ_MODE == "long" else "ci")

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
