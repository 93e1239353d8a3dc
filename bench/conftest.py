"""Options and fixtures of the pytest-benchmark suites.

Run them with ``pytest bench/ --benchmark-only`` (they are outside
``testpaths``, so ``pytest`` and ``pytest tests`` never collect them).  The
matrix is chosen with the options below; every case of the kernels checks
its contender against csoftmax before timing it.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterator

import pytest

# Not `import csoftmax.bench`: the package may export a function of that name.
bm = importlib.import_module("csoftmax.bench")


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("csoftmax benchmarks")
    group.addoption(
        "--bench-shapes",
        default=",".join(f"{n}x{q}" for n, q in bm.SHAPES),
        help="comma-separated NxQ shapes of the kernel benchmarks (default: all six)",
    )
    group.addoption(
        "--bench-dtypes", default="float32,float64", help="float32,float64 (default: both)"
    )
    group.addoption(
        "--bench-threads",
        default="1,all",
        help="thread counts, 'all' = every core (default: 1,all)",
    )
    group.addoption(
        "--bench-peers",
        default=None,
        help="among scipy,torch,jax or 'none' (default: every one installed)",
    )
    group.addoption(
        "--bench-max-gb",
        type=float,
        default=6.0,
        help="skip shapes whose case needs more memory, in GiB (default: 6)",
    )
    group.addoption(
        "--bench-epochs",
        type=int,
        default=5,
        help="timed epochs (rounds) per training benchmark (default: 5)",
    )


def _list(config: pytest.Config, name: str) -> list[str]:
    return [s.strip() for s in config.getoption(name).split(",") if s.strip()]


def peers(config: pytest.Config) -> list[str] | None:
    value = config.getoption("--bench-peers")
    if value is None:
        return None
    return [] if value.strip() == "none" else [s.strip() for s in value.split(",")]


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    config = metafunc.config
    if "threads" in metafunc.fixturenames:
        counts = bm.resolve_threads(_list(config, "--bench-threads"))
        metafunc.parametrize("threads", counts, ids=[f"{t}t" for t in counts])
    if "case" in metafunc.fixturenames:
        shapes = [bm.parse_shape(s) for s in _list(config, "--bench-shapes")]
        dtypes = _list(config, "--bench-dtypes")
        cases = [(s, d) for s in shapes for d in dtypes]
        ids = [f"{n}x{q}-{d}" for (n, q), d in cases]
        # Session scope: pytest groups the tests by case, so one input is alive at a time.
        metafunc.parametrize("case", cases, ids=ids, indirect=True, scope="session")
    if "contender" in metafunc.fixturenames:
        chosen = peers(config)
        pairs = [(k, c) for k in bm.KERNELS for c in bm.contenders_for(k, 1, chosen)]
        metafunc.parametrize(
            "kernel,contender", pairs, ids=[f"{k}-{c.name.replace(' ', '_')}" for k, c in pairs]
        )


@pytest.fixture(scope="session")
def case(request: pytest.FixtureRequest) -> Iterator[bm.Problem]:
    """The logits and labels of one (shape, dtype), shared by its benchmarks."""
    shape, dtype = request.param
    with_jax = bm.installed_peers(peers(request.config)).get("jax") is not None
    need = bm.footprint_gib(shape, dtype, with_jax)
    budget = request.config.getoption("--bench-max-gb")
    if need > budget:
        pytest.skip(f"{shape[0]}x{shape[1]} {dtype} needs about {need:.1f} GiB > {budget:g}")
    problem = bm.Problem.random(*shape, dtype)
    yield problem
    problem.release()
