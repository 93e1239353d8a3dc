"""Smoke tests of the benchmark harness (csoftmax/bench.py): tiny runs only.

The benchmarks themselves live in bench/ and never run with the tests.
"""

from __future__ import annotations

import argparse
import doctest
import importlib
import json
import os
import re
import sys
from pathlib import Path

import numpy as np
import pytest

import csoftmax as cs

# `csoftmax.bench` may be shadowed by the function `csoftmax.bench` once the
# package exports it: take the module from sys.modules.
bm = importlib.import_module("csoftmax.bench")

ROOT = Path(__file__).resolve().parent.parent

#: A case small enough that a whole run takes a few milliseconds.
TINY = {
    "shapes": [(64, 10)],
    "dtypes": ["float32"],
    "threads": [1],
    "repeats": 2,
    "min_time": 1e-4,
    "warmup": 0.0,
}

ROW_KEYS = {
    "kernel",
    "n",
    "q",
    "dtype",
    "threads",
    "csoftmax_s",
    "numpy_s",
    "speedup_numpy",
    "peer",
    "peer_s",
    "peer_ratio",
    "floor",
    "floor_kind",
    "floor_s",
    "floor_bytes",
    "gbps",
    "floor_fraction",
    "spread",
    "repeats",
    "contenders",
    "mismatches",
    "failures",
    "skipped",
}


def _hide(monkeypatch, *modules):
    """Make ``import NAME`` fail for each of modules, as if not installed."""
    for name in modules:
        monkeypatch.setitem(sys.modules, name, None)


def _cli(*argv):
    parser = argparse.ArgumentParser(prog="csoftmax bench")
    bm.add_arguments(parser)
    return parser.parse_args(list(argv))


TINY_ARGV = ("--shapes", "64x10", "--dtypes", "float32", "--threads", "1", "--repeats", "2")
TINY_ARGV += ("--min-time", "0.0001", "--warmup", "0", "--no-progress")


# ----------------------------------------------------------------- bench() --
def test_bench_returns_a_row_per_case_with_the_expected_keys():
    rows = bm.bench(**{**TINY, "dtypes": ["float32", "float64"]}, peers=[], verbose=False)
    assert [(r["kernel"], r["dtype"]) for r in rows] == [
        (k, d) for k in bm.KERNELS for d in ("float32", "float64")
    ]
    for r in rows:
        assert set(r) == ROW_KEYS
        assert r["skipped"] is None and r["mismatches"] == {} and r["failures"] == {}
        assert {"csoftmax", "numpy"} <= set(r["contenders"])
        assert r["floor"] in r["contenders"]
        for key in ("csoftmax_s", "numpy_s", "floor_s", "speedup_numpy", "gbps"):
            assert np.isfinite(r[key]) and r[key] > 0
        assert r["speedup_numpy"] == pytest.approx(r["numpy_s"] / r["csoftmax_s"])
        assert r["peer"] is None and np.isnan(r["peer_ratio"])
        stats = r["contenders"]["csoftmax"]
        assert len(stats["times_s"]) == 2 and stats["p10_s"] <= stats["median_s"] <= stats["p90_s"]
        nbytes = 64 * 10 * np.dtype(r["dtype"]).itemsize
        assert r["floor_bytes"] == nbytes * (2 if r["floor_kind"] == "copy" else 1)


def test_the_table_prints(capsys):
    bm.bench(**{**TINY, "threads": [1, 2]}, kernels=["softmax", "logsumexp"], peers=[])
    out = capsys.readouterr().out
    assert out.startswith("csoftmax ")  # the header: version, SIMD, peers, load
    assert re.search(r"^kernel +shape +dtype +thr +csoftmax +GB/s", out, re.M)
    assert re.search(r"^softmax +64x10 +float32 +1 ", out, re.M)
    assert re.search(r"^logsumexp +64x10 +float32 +2 ", out, re.M)
    assert "write into preallocated out=: csoftmax, numpy" in out


def test_every_installed_peer_agrees_with_csoftmax():
    rows = bm.bench(**{**TINY, "dtypes": ["float32", "float64"]}, verbose=False)
    peers = bm.installed_peers()
    assert peers["scipy"] is not None  # a dependency of csoftmax
    for r in rows:
        assert r["mismatches"] == {} and r["failures"] == {}, r["kernel"]
        families = {s["family"] for s in r["contenders"].values()}
        # SciPy has softmax, log_softmax and logsumexp but no cross-entropy:
        # without torch or jax a cross-entropy row has no peer to meet.
        offering = {p for p, v in peers.items() if v is not None}
        if r["kernel"].startswith("cross_entropy"):
            offering -= {"scipy"}
        assert offering <= families
    softmax = next(r for r in rows if r["kernel"] == "softmax")
    assert softmax["contenders"]["scipy.special.softmax"]["allocates"]
    if peers["torch"] is not None:
        grad = next(r for r in rows if r["kernel"] == "cross_entropy_with_grad")
        assert {"torch closed form", "torch autograd"} <= set(grad["contenders"])


def test_absent_peers_are_skipped_cleanly(monkeypatch, capsys):
    _hide(monkeypatch, "torch", "jax", "scipy.special")
    assert bm.installed_peers() == {"scipy": None, "torch": None, "jax": None}
    rows = bm.bench(**TINY)
    out = capsys.readouterr().out
    assert "peers: none (scipy, torch, jax not installed)" in out
    assert "not installed (skipped): scipy, torch, jax" in out
    for r in rows:
        assert {s["family"] for s in r["contenders"].values()} == {"csoftmax", "numpy", "floor"}
        assert r["peer"] is None and r["failures"] == {}


def test_the_verification_catches_a_wrong_contender(capsys):
    def wrong(p):  # fast: it returns the input, not its softmax
        return lambda: p.x

    def narrow(p):  # right values in a narrower dtype
        return lambda: cs.softmax(p.x).astype(np.float16)

    def broken(p):
        raise RuntimeError("no such kernel")

    extra = [
        bm.Contender("fast but wrong", "other", wrong),
        bm.Contender("float16", "other", narrow),
        bm.Contender("broken", "other", broken),
        bm.Contender(
            "numpy again", "other", lambda p: lambda: bm.numpy_softmax(p.x, p.buffer("b"))
        ),
    ]
    (row,) = bm.bench(**TINY, kernels=["softmax"], peers=[], extra_contenders={"softmax": extra})
    assert set(row["mismatches"]) == {"fast but wrong", "float16"}
    assert row["mismatches"]["fast but wrong"].startswith("values differ")
    assert row["mismatches"]["float16"] == "dtype float16, expected float32"
    assert row["failures"] == {"broken": "RuntimeError: no such kernel"}
    assert row["peer"] == "numpy again"  # the one right extra contender is timed
    assert not {"fast but wrong", "float16", "broken"} & set(row["contenders"])
    out = capsys.readouterr().out
    assert "MISMATCH, not timed: softmax 64x10 float32 1t: fast but wrong: values differ" in out


def test_mismatch_tolerances():
    x = np.linspace(-3, 3, 12, dtype=np.float32).reshape(3, 4)
    ref = cs.log_softmax(x)
    assert bm.mismatch(ref.astype(np.float64), ref, "float32") is None  # wider is fine
    assert bm.mismatch(ref * (1 + 1e-5), ref, "float32") is None
    assert bm.mismatch(ref * (1 + 1e-2), ref, "float32") is not None
    assert bm.mismatch(ref[:2], ref, "float32").startswith("shape")
    nan = np.array([np.nan, 1.0])
    assert bm.mismatch(nan, nan, "float64") is None
    assert bm.mismatch((np.float32(1), ref), (np.float32(1), ref), "float32") is None
    assert bm.mismatch((np.float32(2), ref), (np.float32(1), ref), "float32").startswith("result 0")


def test_the_memory_budget_skips_large_shapes(capsys):
    shapes = [(64, 10), (4096, 4096)]
    rows = bm.bench(**{**TINY, "shapes": shapes}, kernels=["softmax"], peers=[], max_gb=0.1)
    small, large = rows
    assert small["skipped"] is None
    assert "needs about 0.4 GiB, more than max_gb=0.1" in large["skipped"]
    assert np.isnan(large["csoftmax_s"]) and large["contenders"] == {}
    out = capsys.readouterr().out
    assert re.search(r"^softmax +4096x4096 +float32 +1 +skipped$", out, re.M)
    assert "skipped (memory): 4096x4096 float32: needs about 0.4 GiB" in out
    assert (
        bm.footprint_gib((8192, 32000), "float64") > 6 > bm.footprint_gib((8192, 32000), "float32")
    )


def test_round_robin_rotates_the_order_and_warms_up_first():
    calls = []
    runners = {name: (lambda name=name: calls.append(name)) for name in "abc"}
    stats = bm.time_round_robin(runners, repeats=4, min_time=0.0, warmup=0.0)
    assert calls[:3] == ["a", "b", "c"]  # one warm-up call each
    assert calls[3:] == list("abcbcacababc")
    assert {s["number"] for s in stats.values()} == {1}
    assert all(len(s["times_s"]) == 4 for s in stats.values())


def test_thread_limits_restore_every_setting():
    before = cs.get_num_threads()
    with bm.thread_limits(1):
        assert cs.get_num_threads() == 1
    assert cs.get_num_threads() == before


def test_bad_arguments_name_the_argument():
    for kwargs, word in (
        ({"kernels": ["softmaxx"]}, "kernels"),
        ({"shapes": ["10"]}, "shapes"),
        ({"dtypes": ["int32"]}, "dtypes"),
        ({"threads": [0]}, "threads"),
        ({"repeats": 0}, "repeats"),
        ({"peers": ["tensorflow"]}, "peers"),
    ):
        with pytest.raises(ValueError, match=word):
            bm.bench(**{**TINY, **kwargs}, verbose=False)


# --------------------------------------------------------------------- CLI --
def test_cli_quick_defaults_and_parsing():
    args = _cli("--quick", "--threads", "1,all", "--kernels", "softmax,logsumexp")
    assert args.quick and args.kernels == ["softmax", "logsumexp"]
    assert args.threads == [1, "all"] and args.shapes is None
    cfg = bm.make_config(quick=True, defaults=bm.CLI_DEFAULTS)
    assert cfg.shapes == ((256, 10), (4096, 1000)) and cfg.dtypes == ("float32",)
    full = bm.make_config(defaults=bm.CLI_DEFAULTS)
    assert full.shapes == bm.SHAPES and full.dtypes == ("float32", "float64")
    assert full.threads == tuple(bm.resolve_threads([1, "all"]))
    assert _cli("--peers", "none").peers == []


@pytest.mark.parametrize(
    "argv",
    [["--shapes", "4096"], ["--kernels", "softmaxx"], ["--dtypes", "float16"], ["--threads", "0"]],
)
def test_cli_rejects_bad_values(argv, capsys):
    with pytest.raises(SystemExit) as e:
        _cli(*argv)
    assert e.value.code == 2
    assert argv[0] in capsys.readouterr().err


def test_cli_json_is_valid_and_written_atomically(tmp_path, capsys):
    path = tmp_path / "bench.json"
    assert (
        bm.run(_cli(*TINY_ARGV, "--kernels", "softmax", "--peers", "none", "--json", str(path)))
        == 0
    )
    data = json.loads(path.read_text())
    assert set(data) == {"meta", "kernels"}
    assert data["meta"]["config"]["repeats"] == 2
    assert data["meta"]["csoftmax"]["simd"] == cs.show_config(mode="dicts")["simd"]
    (row,) = data["kernels"]
    assert row["kernel"] == "softmax" and len(row["contenders"]["numpy"]["times_s"]) == 2
    assert os.listdir(tmp_path) == ["bench.json"]  # no temporary file left behind
    assert f"wrote {path}" in capsys.readouterr().out


def test_a_failed_json_write_keeps_the_old_file(tmp_path, monkeypatch):
    path = tmp_path / "bench.json"
    path.write_text("old")

    def fail(*args):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", fail)
    with pytest.raises(OSError):
        bm.write_json(path, {"a": [1.0, float("nan")]})
    assert path.read_text() == "old"
    assert os.listdir(tmp_path) == ["bench.json"]


def test_cli_reports_an_unwritable_output_before_timing(tmp_path, capsys):
    missing = tmp_path / "no" / "such" / "out.json"
    assert bm.run(_cli(*TINY_ARGV, "--json", str(missing))) == 1
    captured = capsys.readouterr()
    assert "csoftmax: error: --json" in captured.err and "does not exist" in captured.err
    assert "kernel" not in captured.out  # nothing was timed


def test_cli_plot_without_matplotlib_fails_fast(tmp_path, monkeypatch, capsys):
    _hide(monkeypatch, "matplotlib", "matplotlib.figure")
    assert bm.run(_cli(*TINY_ARGV, "--plot", str(tmp_path / "b.png"))) == 1
    err = capsys.readouterr().err
    assert "csoftmax: error: plotting needs matplotlib" in err and "pip install" in err
    assert not (tmp_path / "b.png").exists()


def test_cli_plot_writes_a_png(tmp_path):
    pytest.importorskip("matplotlib")
    path = tmp_path / "b.png"
    argv = (*TINY_ARGV, "--kernels", "softmax,cross_entropy", "--plot", str(path))
    assert bm.run(_cli(*argv)) == 0
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_cli_exit_code_is_1_when_a_contender_disagrees(monkeypatch, capsys):
    wrong = bm.Contender("wrong", "other", lambda p: lambda: p.x)
    real = bm.contenders_for

    def with_wrong(kernel, threads=1, peers=None, extra=()):
        return real(kernel, threads, peers, [*extra, wrong] if kernel == "softmax" else extra)

    monkeypatch.setattr(bm, "contenders_for", with_wrong)
    assert bm.run(_cli(*TINY_ARGV, "--kernels", "softmax", "--peers", "none")) == 1
    assert "1 result disagreed with csoftmax" in capsys.readouterr().err


# ---------------------------------------------------------------- training --
def _small_data():
    rng = np.random.default_rng(1)
    centers = rng.normal(size=(3, 20))
    y = rng.integers(0, 3, size=700)
    X = (centers[y] + rng.normal(size=(700, 20))).astype(np.float32)
    return (X[:600], y[:600]), (X[600:], y[600:])


def test_training_benchmark_on_injected_data(monkeypatch, capsys):
    def no_download(*args, **kwargs):
        raise AssertionError("the injected data must be used")

    monkeypatch.setattr(cs.datasets, "load_fashion_mnist", no_download)
    rows = bm.bench_training(epochs=1, threads=[1], data=_small_data, batch_size=64, pause=0)
    loops = [r["loop"] for r in rows]
    assert loops[:2] == ["csoftmax", "numpy"]
    if bm.installed_peers(["torch"])["torch"] is not None:
        assert loops[2:] == ["torch", "torch-autograd"]
    csm = rows[0]
    assert csm["max_weight_diff"] == 0 and csm["speedup"] == 1
    for r in rows:
        assert r["agrees"] and r["max_weight_diff"] < 1e-5, r["loop"]  # same init, same batches
        assert r["train_loss"] == pytest.approx(csm["train_loss"], rel=1e-5)
        assert r["test_acc"] == pytest.approx(csm["test_acc"], abs=0.011) and r["test_acc"] > 0.8
        assert len(r["epoch_s"]) == 1 and r["n_train"] == 600 and r["batch_size"] == 64
    out = capsys.readouterr().out
    assert "training: 600 x 20 -> 3 classes" in out and "csoftmax Trainer" in out


def test_training_benchmark_without_torch(monkeypatch):
    _hide(monkeypatch, "torch")
    rows = bm.bench_training(epochs=1, threads=[1], data=_small_data(), pause=0, verbose=False)
    assert [r["loop"] for r in rows] == ["csoftmax", "numpy"]
    with pytest.raises(ValueError, match="needs PyTorch"):
        bm.bench_training(epochs=1, data=_small_data(), loops=["torch"], verbose=False)


def test_training_loops_follow_the_trainers_batch_order():
    (X, y), _ = _small_data()
    w = np.zeros((20, 3), np.float32)
    b = np.zeros(3, np.float32)
    ours = bm.make_training_loop("csoftmax", X, y, w, b, batch_size=50, seed=7)
    theirs = bm.make_training_loop("numpy", X, y, w, b, batch_size=50, seed=7)
    other_seed = bm.make_training_loop("numpy", X, y, w, b, batch_size=50, seed=8)
    for loop in (ours, theirs, other_seed):
        loop.run_epoch()
        loop.run_epoch()
    assert np.allclose(ours.weights()[0], theirs.weights()[0], atol=1e-6)
    assert not np.allclose(ours.weights()[0], other_seed.weights()[0], atol=1e-6)


def test_cli_training_with_json(monkeypatch, tmp_path, capsys):
    monkeypatch.setattr(cs.datasets, "load_fashion_mnist", lambda root=None: _small_data())
    monkeypatch.setattr(bm, "bench_training", _no_pause(bm.bench_training))
    path = tmp_path / "train.json"
    args = _cli("--training", "--quick", "--threads", "1", "--json", str(path), "--no-progress")
    assert bm.run(args) == 0
    data = json.loads(path.read_text())
    assert data["meta"]["config"]["epochs"] == 1
    assert [r["loop"] for r in data["training"]][:2] == ["csoftmax", "numpy"]
    assert "x csoftmax" in capsys.readouterr().out


def _no_pause(fn):
    def wrapped(**kwargs):
        return fn(**{**kwargs, "pause": 0})

    return wrapped


# -------------------------------------------------------------- packaging --
def test_docstring_examples():
    result = doctest.testmod(bm, optionflags=doctest.NORMALIZE_WHITESPACE, verbose=False)
    assert result.attempted > 10 and result.failed == 0


def test_the_benchmarks_are_not_collected_by_the_tests():
    pyproject = (ROOT / "pyproject.toml").read_text()
    assert re.search(r'^testpaths = \["tests"\]$', pyproject, re.M)
    suites = sorted(p.name for p in (ROOT / "bench").glob("test_*.py"))
    assert suites == ["test_kernels_bench.py", "test_training_bench.py"]
