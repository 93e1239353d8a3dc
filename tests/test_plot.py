"""csoftmax.plot: the training curves and the predictions grid, as PNG files."""

from __future__ import annotations

import doctest
import os
import sys

import numpy as np
import pytest

pytest.importorskip("matplotlib")
import matplotlib.image  # noqa: E402

from csoftmax import History, plot  # noqa: E402
from csoftmax.plot import plot_history, plot_predictions  # noqa: E402

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def _history(epochs: int = 3, val: bool = True) -> History:
    h = History()
    for e in range(epochs):
        h.append(
            {
                "train_loss": 0.8 - 0.1 * e,
                "train_acc": 0.75 + 0.03 * e,
                "val_loss": 0.7 - 0.05 * e if val else float("nan"),
                "val_acc": 0.78 + 0.02 * e if val else float("nan"),
                "seconds": 0.1,
            }
        )
    return h


def _predictions(m: int = 20):
    rng = np.random.default_rng(0)
    images = rng.random((m, 784), dtype=np.float32)
    labels = rng.integers(0, 10, m)
    predicted = labels.copy()
    predicted[::3] = (predicted[::3] + 1) % 10
    return images, labels, predicted


def _read_png(path) -> np.ndarray:
    with open(path, "rb") as f:
        assert f.read(8) == PNG_SIGNATURE
    return matplotlib.image.imread(path)


def _only(folder, *names):
    assert sorted(os.listdir(folder)) == sorted(names)


def test_plot_history_writes_a_png(tmp_path):
    path = tmp_path / "curves.png"
    plot_history(_history(), path, title="softmax regression")
    img = _read_png(path)
    assert img.ndim == 3 and img.shape[2] in (3, 4)
    assert img.shape[0] >= 200 and img.shape[1] >= 300
    assert img.std() > 0  # not a blank image
    _only(tmp_path, "curves.png")


@pytest.mark.parametrize("history", [_history(1), _history(3, val=False), _history(0)])
def test_plot_history_edge_cases(tmp_path, history):
    path = str(tmp_path / "curves.png")  # a str path as well as a Path
    plot_history(history, path)
    assert _read_png(path).ndim == 3


def test_plot_history_takes_a_mapping_and_replaces_a_file(tmp_path):
    path = tmp_path / "curves.png"
    path.write_bytes(b"old")
    plot_history({"train_loss": [0.5, 0.4], "train_acc": [0.8, 0.9], "val_acc": [0.7, 0.8]}, path)
    assert _read_png(path).ndim == 3
    _only(tmp_path, "curves.png")


def test_plot_history_rejects_bad_histories(tmp_path):
    with pytest.raises(ValueError, match="history"):
        plot_history(
            {"train_loss": [0.5], "train_acc": [0.8, 0.9], "val_acc": [0.7]}, tmp_path / "x.png"
        )
    with pytest.raises(TypeError, match="history"):
        plot_history(42, tmp_path / "x.png")
    _only(tmp_path)


def test_plot_predictions_writes_a_png(tmp_path):
    path = tmp_path / "preds.png"
    plot_predictions(*_predictions(), path)
    img = _read_png(path)
    assert img.ndim == 3 and img.shape[1] > img.shape[0]  # two rows of nine
    _only(tmp_path, "preds.png")


def test_plot_predictions_options(tmp_path):
    images, labels, predicted = _predictions(5)
    path = tmp_path / "preds.png"
    # 28x28 images, fewer images than n, no class names.
    plot_predictions(
        images.reshape(-1, 28, 28), labels, predicted, path, class_names=None, n=8, cols=4
    )
    assert _read_png(path).ndim == 3
    with pytest.raises(ValueError, match="images"):
        plot_predictions(images[:, :100], labels, predicted, path)
    with pytest.raises(ValueError, match="predictions"):
        plot_predictions(images, labels, predicted[:3], path)
    with pytest.raises(ValueError, match="n"):
        plot_predictions(images, labels, predicted, path, n=0)
    _only(tmp_path, "preds.png")


def test_unwritable_paths_raise_and_leave_nothing(tmp_path):
    missing = tmp_path / "no" / "such" / "folder.png"
    with pytest.raises(OSError):
        plot_history(_history(), missing)
    with pytest.raises(OSError):
        plot_predictions(*_predictions(), missing)
    (tmp_path / "a-folder.png").mkdir()
    with pytest.raises(OSError):
        plot_history(_history(), tmp_path / "a-folder.png")
    _only(tmp_path, "a-folder.png")
    assert os.listdir(tmp_path / "a-folder.png") == []


def test_a_failing_render_leaves_nothing(tmp_path, monkeypatch):
    from matplotlib.figure import Figure

    def boom(self, *args, **kwargs):
        raise RuntimeError("render failed")

    monkeypatch.setattr(Figure, "savefig", boom)
    with pytest.raises(RuntimeError, match="render failed"):
        plot_history(_history(), tmp_path / "curves.png")
    _only(tmp_path)


def test_missing_matplotlib(tmp_path, monkeypatch):
    for name in list(sys.modules):
        if name == "matplotlib" or name.startswith("matplotlib."):
            monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    message = r"plotting needs matplotlib: pip install 'csoftmax\[plot\]'"
    with pytest.raises(ImportError, match=message):
        plot_history(_history(), tmp_path / "curves.png")
    with pytest.raises(ImportError, match=message):
        plot_predictions(*_predictions(), tmp_path / "preds.png")
    _only(tmp_path)


def test_no_pyplot_and_no_backend_change(tmp_path, monkeypatch):
    backend = matplotlib.get_backend()
    monkeypatch.setitem(sys.modules, "matplotlib.pyplot", None)  # importing it fails
    plot_history(_history(), tmp_path / "curves.png")
    plot_predictions(*_predictions(), tmp_path / "preds.png")
    assert matplotlib.get_backend() == backend


def test_docstring_examples():
    result = doctest.testmod(plot, optionflags=doctest.NORMALIZE_WHITESPACE)
    assert result.attempted > 0 and result.failed == 0


@pytest.mark.skipif(os.name != "posix", reason="POSIX file modes")
def test_png_mode_follows_the_umask(tmp_path):
    old = os.umask(0o027)
    try:
        plot_history(_history(), tmp_path / "curves.png")
    finally:
        os.umask(old)
    assert (tmp_path / "curves.png").stat().st_mode & 0o777 == 0o640
