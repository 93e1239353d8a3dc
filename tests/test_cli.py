"""The command line: `csoftmax train` on the real Fashion-MNIST, and `info`.

The runs call ``csoftmax.cli.main`` in-process, with the data set loaded once
per module; one end-to-end run goes through ``python -m csoftmax``.  The
tests on the real data skip without it, or fail if
``CSOFTMAX_REQUIRE_DATA=1`` (as in CI).
"""

from __future__ import annotations

import contextlib
import io
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from csoftmax import cli, datasets, get_num_threads, set_num_threads
from csoftmax.datasets import FASHION_MNIST_CLASSES, DatasetError
from csoftmax.model import SoftmaxRegression
from csoftmax.trainer import Trainer

REQUIRE_DATA = os.environ.get("CSOFTMAX_REQUIRE_DATA") == "1"
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
NUM = r"\d+\.\d{4}"
EPOCH_LINE = re.compile(
    rf"^epoch +(\d+)/(\d+)  train loss {NUM}  train acc {NUM}  test acc ({NUM})  "
    r"\(\d+\.\d\d s\)(  lr \S+)?$"
)
SUMMARY = re.compile(rf"^(done|stopped): test acc ({NUM})  test loss {NUM}  after (\d+) epochs  ")


def run(argv: list[str]) -> tuple[int, str, str]:
    """``main(argv)`` in-process: (exit code, stdout, stderr)."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = cli.main(argv)
        except SystemExit as e:
            code = e.code
    return code, out.getvalue(), err.getvalue()


def epoch_lines(out: str) -> list[re.Match]:
    return [m for m in map(EPOCH_LINE.match, out.splitlines()) if m]


def summary(out: str) -> re.Match:
    found = [m for m in map(SUMMARY.match, out.splitlines()) if m]
    assert len(found) == 1, out
    return found[0]


def read_png(path: Path) -> np.ndarray:
    import matplotlib.image

    assert path.read_bytes()[:8] == PNG_SIGNATURE
    img = matplotlib.image.imread(path)
    assert img.ndim == 3 and img.shape[0] > 100 and img.shape[1] > 100
    return img


@pytest.fixture(autouse=True)
def _one_thread():
    """Train on one thread: on a small CI machine shared with other jobs, the
    kernels' and BLAS's per-step thread barriers stall whenever a thread is
    descheduled (epochs 20-30x slower).  Results are bitwise the same on any
    number of threads; conftest restores the count after each test."""
    set_num_threads(1)


# ---------------------------------------------------------------------------
# The real data, loaded once


@pytest.fixture(scope="module")
def data_dir() -> Path:
    """The folder the default search finds the data in; skip (or fail) without it."""
    try:
        return datasets._locate(None, download=False, progress=False)
    except DatasetError as e:
        msg = f"Fashion-MNIST not found (`apt-get install dataset-fashion-mnist`): {e}"
        if REQUIRE_DATA:
            pytest.fail(f"{msg}\nand CSOFTMAX_REQUIRE_DATA=1")
        pytest.skip(msg)


@pytest.fixture(scope="module")
def data(data_dir):
    """Serve ``load_fashion_mnist()`` from memory for this module's runs."""
    real = datasets.load_fashion_mnist
    cached = real(data_dir)
    for a in (*cached[0], *cached[1]):
        a.setflags(write=False)  # no run may change the shared arrays

    def load(root=None, **kwargs):
        return cached if root is None else real(root, **kwargs)

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(datasets, "load_fashion_mnist", load)
        yield cached


@pytest.fixture(scope="module")
def two_epochs(data, tmp_path_factory):
    """The textbook recipe for 2 epochs with every output."""
    folder = tmp_path_factory.mktemp("two-epochs")
    threads = get_num_threads()
    try:
        code, out, err = run(
            [
                "train",
                "--epochs=2",
                "--threads=1",  # as the other runs (see _one_thread)
                "--no-progress",
                f"--plot={folder / 'curves.png'}",
                f"--show-predictions={folder / 'preds.png'}",
                f"--save={folder / 'model.npz'}",
            ]
        )
    finally:
        set_num_threads(threads)
    return code, out, err, folder


# ---------------------------------------------------------------------------
# Training runs


def test_short_run_prints_epochs_and_summary(two_epochs):
    code, out, err, _ = two_epochs
    assert code == 0, err
    assert err == ""
    lines = out.splitlines()
    assert lines[0].startswith("recipe textbook: epochs 2, batch size 256, lr 0.1, momentum 0,")
    assert "float32, seed 0, 1 thread" in lines[0]
    epochs = epoch_lines(out)
    assert [(m[1], m[2]) for m in epochs] == [("1", "2"), ("2", "2")]
    assert all(m[4] is None for m in epochs)  # no lr column without a schedule
    s = summary(out)
    assert s[1] == "done" and s[3] == "2" and s[2] == epochs[-1][3]
    assert float(s[2]) > 0.75
    assert "data loading" in out and "interrupted" not in out


def test_plots_are_written(two_epochs):
    code, out, err, folder = two_epochs
    assert code == 0, err
    read_png(folder / "curves.png")
    read_png(folder / "preds.png")
    assert sorted(os.listdir(folder)) == ["curves.png", "model.npz", "preds.png"]  # no temp files
    for name in ("model.npz", "curves.png", "preds.png"):
        assert f"wrote {folder / name}" in out


def test_saved_model_has_class_names_and_the_reported_accuracy(two_epochs, data):
    code, out, err, folder = two_epochs
    assert code == 0, err
    model = SoftmaxRegression.load(folder / "model.npz")
    assert model.class_names == list(FASHION_MNIST_CLASSES)
    assert model.weight.shape == (784, 10) and model.dtype == np.float32
    _, (X_test, y_test) = data
    acc = float(np.mean(model.predict(X_test) == y_test))
    assert f"{acc:.4f}" == summary(out)[2]


class _InterruptAfter:
    """Stands in for the Trainer's Ctrl-C flag: 'pressed' after ``k`` batches."""

    def __init__(self, k: int) -> None:
        self.k = k

    @property
    def requested(self) -> bool:
        self.k -= 1
        return self.k < 0


def test_interrupt_then_resume_matches_the_straight_run(two_epochs, tmp_path, monkeypatch):
    """Ctrl-C in epoch 2 of 2: exit 130, outputs written; resuming from the
    epoch-1 checkpoint ends bitwise where the uninterrupted run ended."""
    original = Trainer._train_epoch

    def train_epoch(self, x, labels, buf, interrupt):
        if self.epoch == 1:
            interrupt = _InterruptAfter(5)
        return original(self, x, labels, buf, interrupt)

    ckpt, saved, curves = tmp_path / "ckpt.npz", tmp_path / "stopped.npz", tmp_path / "c.png"
    with monkeypatch.context() as mp:
        mp.setattr(Trainer, "_train_epoch", train_epoch)
        code, out, err = run(
            ["train", "--epochs=2", f"--checkpoint={ckpt}", f"--save={saved}", f"--plot={curves}"]
        )
    assert code == 130, err
    assert "interrupted after 1 complete epochs" in out
    assert [m[1] for m in epoch_lines(out)] == ["1"]
    assert summary(out)[1] == "stopped"
    read_png(curves)
    stopped = SoftmaxRegression.load(saved)  # the model after 1 epoch and 5 batches
    assert stopped.class_names == list(FASHION_MNIST_CLASSES)

    resumed = tmp_path / "resumed.npz"
    code, out, err = run(["train", "--epochs=2", f"--resume={ckpt}", f"--save={resumed}"])
    assert code == 0, err
    assert "resuming from" in out and "after epoch 1" in out
    assert [m[1] for m in epoch_lines(out)] == ["2"]
    straight = SoftmaxRegression.load(two_epochs[3] / "model.npz")
    final = SoftmaxRegression.load(resumed)
    assert final.weight.tobytes() == straight.weight.tobytes()
    assert final.bias.tobytes() == straight.bias.tobytes()
    assert final.class_names == list(FASHION_MNIST_CLASSES)
    assert stopped.weight.tobytes() != final.weight.tobytes()


def test_tuned_recipe(data):
    code, out, err = run(["train", "--recipe=tuned", "--epochs=2", "--no-progress"])
    assert code == 0, err
    header = out.splitlines()[0]
    assert header.startswith("recipe tuned: epochs 2, batch size 256, lr 0.02, momentum 0.9,")
    assert "schedule cosine, inputs sqrt-standardized" in header
    epochs = epoch_lines(out)
    assert len(epochs) == 2 and all(m[4] for m in epochs)  # the lr column
    assert float(summary(out)[2]) > 0.8


def test_flags_override_the_recipe(data, tmp_path):
    path = tmp_path / "m.npz"
    code, out, err = run(
        [
            "train",
            "--epochs=1",
            "--batch-size=512",
            "--lr=0.2",
            "--momentum=0.5",
            "--nesterov",
            "--weight-decay=0.001",
            "--init-std=0",
            "--schedule=step",
            "--dtype=float64",
            "--seed=3",
            "--threads=1",
            f"--save={path}",
        ]
    )
    assert code == 0, err
    header = out.splitlines()[0]
    for part in (
        "epochs 1",
        "batch size 512",
        "lr 0.2",
        "momentum 0.5",
        "weight decay 0.001",
        "nesterov on",
        "init std 0",
        "schedule step",
        "float64, seed 3, 1 thread",
    ):
        assert part in header
    assert len(epoch_lines(out)) == 1
    assert SoftmaxRegression.load(path).dtype == np.float64


def test_end_to_end_python_m(data_dir, tmp_path):
    """`python -m csoftmax train` in a child, run from an unrelated folder so
    that it imports the installed package."""
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "csoftmax",
            "train",
            "--epochs",
            "1",
            "--data-root",
            str(data_dir),
            "--threads",
            "1",
            "--save",
            "model.npz",
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == ""  # no warnings, no progress bar off a terminal
    assert len(epoch_lines(proc.stdout)) == 1
    assert summary(proc.stdout)[1] == "done"
    assert SoftmaxRegression.load(tmp_path / "model.npz").class_names == list(FASHION_MNIST_CLASSES)


def test_textbook_recipe_reaches_0_82(data):
    """The textbook's run: 10 epochs, batch 256, lr 0.1, must reach 0.82."""
    code, out, err = run(["train"])
    assert code == 0, err
    assert [m[1] for m in epoch_lines(out)] == [str(e) for e in range(1, 11)]
    accuracy = float(summary(out)[2])
    assert accuracy >= 0.82, out


# ---------------------------------------------------------------------------
# Errors


@pytest.mark.parametrize(
    "argv",
    [
        [],
        ["bogus"],
        ["train", "--bogus"],
        ["train", "--epochs", "-1"],
        ["train", "--epochs", "0"],
        ["train", "--epochs", "two"],
        ["train", "--lr", "-3"],
        ["train", "--lr", "0"],
        ["train", "--lr", "nan"],
        ["train", "--momentum", "inf"],
        ["train", "--weight-decay", "-1e-4"],
        ["train", "--init-std", "-0.1"],
        ["train", "--batch-size", "0"],
        ["train", "--threads", "0"],
        ["train", "--seed", "-1"],
        ["train", "--schedule", "linear"],
        ["train", "--recipe", "nope"],
        ["train", "--dtype", "float16"],
        ["train", "--nesterov"],  # the textbook recipe has no momentum
    ],
    ids=lambda argv: " ".join(argv) or "no-command",
)
def test_usage_errors_exit_2(argv):
    code, out, err = run(argv)
    assert code == 2
    assert "usage: csoftmax" in err
    assert "error:" in err and "Traceback" not in err
    assert out == ""


def test_help_exits_0():
    code, out, err = run(["train", "--help"])
    assert code == 0
    for flag in ("--recipe", "--epochs", "--lr", "--plot", "--show-predictions", "--resume"):
        assert flag in out


def _one_line_error(err: str) -> str:
    lines = err.splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("csoftmax: error: ")
    return lines[0]


def test_empty_data_root_exits_1(tmp_path):
    code, out, err = run(["train", "--epochs=1", f"--data-root={tmp_path}"])
    assert code == 1
    line = _one_line_error(err)
    assert str(tmp_path) in line and "no such file" in line
    assert epoch_lines(out) == []


def test_corrupt_data_exits_1(tmp_path, data_dir):
    for name in datasets._FILES:
        if name != "t10k-labels-idx1-ubyte":
            real = datasets._file_in(data_dir, name)
            os.symlink(real, tmp_path / real.name)
    (tmp_path / "t10k-labels-idx1-ubyte.gz").write_bytes(b"not a gzip file")
    code, out, err = run(["train", "--epochs=1", f"--data-root={tmp_path}"])
    assert code == 1
    assert "t10k-labels-idx1-ubyte" in _one_line_error(err)


@pytest.mark.parametrize("content", [None, b"garbage", b"PK\x03\x04 truncated zip"])
def test_bad_resume_file_exits_1(tmp_path, content):
    path = tmp_path / "ckpt.npz"
    if content is not None:
        path.write_bytes(content)
    code, out, err = run(["train", f"--resume={path}"])
    assert code == 1
    assert str(path) in _one_line_error(err)
    assert "data:" not in out  # it failed before loading the data


def test_resume_of_a_model_file_exits_1(tmp_path):
    path = tmp_path / "model.npz"
    SoftmaxRegression(784, 10).save(path)
    code, out, err = run(["train", f"--resume={path}"])
    assert code == 1
    assert str(path) in _one_line_error(err)


@pytest.mark.parametrize("option", ["--save", "--plot", "--show-predictions", "--checkpoint"])
def test_unwritable_output_exits_1_before_training(tmp_path, option):
    target = tmp_path / "missing" / "out.png"
    code, out, err = run(["train", f"{option}={target}"])
    assert code == 1
    line = _one_line_error(err)
    assert option in line and "does not exist" in line
    assert out == "" and os.listdir(tmp_path) == []
    (tmp_path / "folder").mkdir()
    code, out, err = run(["train", f"{option}={tmp_path / 'folder'}"])
    assert code == 1
    assert "is a folder" in _one_line_error(err)


def test_a_failing_write_after_training_exits_1(data, tmp_path, monkeypatch):
    def fail(self, path):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(SoftmaxRegression, "save", fail)
    curves = tmp_path / "curves.png"
    code, out, err = run(
        ["train", "--epochs=1", f"--save={tmp_path / 'm.npz'}", f"--plot={curves}"]
    )
    assert code == 1
    assert "--save" in _one_line_error(err) and "Permission denied" in err
    read_png(curves)  # the other outputs are still written
    assert sorted(os.listdir(tmp_path)) == ["curves.png"]


def test_missing_matplotlib_exits_1_before_training(tmp_path, monkeypatch):
    for name in list(sys.modules):
        if name == "matplotlib" or name.startswith("matplotlib."):
            monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    code, out, err = run(["train", f"--plot={tmp_path / 'c.png'}"])
    assert code == 1
    assert "pip install 'csoftmax[plot]'" in _one_line_error(err)
    assert out == ""


def test_ctrl_c_while_loading_exits_130(monkeypatch):
    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(datasets, "load_fashion_mnist", interrupted)
    code, out, err = run(["train"])
    assert code == 130
    assert err.strip() == "interrupted"


# ---------------------------------------------------------------------------
# info


def test_info(capsys):
    assert cli.main(["info"]) == 0
    out = capsys.readouterr().out
    assert re.search(r"^openmp\s+: ", out, re.M)
    assert re.search(r"^simd\s+: (avx512|avx2|generic)$", out, re.M)
