"""Plots of a training run: the textbook's training curves and its grid of
predicted test images.

matplotlib is optional (``pip install 'csoftmax[plot]'``) and imported only
when a plot is drawn.  The figures are drawn with matplotlib's object API and
the Agg canvas, never pyplot: no display is needed and no global state of
matplotlib (its backend, its list of open figures) is touched.  Every PNG is
written to a temporary file in the destination folder and renamed into
place, so an error never leaves a partial file behind.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping, Sequence
from typing import Any, Union

import numpy as np

from ._files import atomic_write
from .datasets import FASHION_MNIST_CLASSES

__all__ = ["plot_history", "plot_predictions"]

PathLike = Union[str, os.PathLike]

_MISSING = "plotting needs matplotlib: pip install 'csoftmax[plot]'"
#: Colours of the titles of right and wrong predictions.
_RIGHT, _WRONG = "black", "tab:red"


def _matplotlib() -> tuple[Any, Any]:
    """matplotlib's ``Figure`` and ``FigureCanvasAgg`` classes, or the
    ImportError that says how to install matplotlib."""
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError:
        raise ImportError(_MISSING) from None
    return Figure, FigureCanvasAgg


def _save_png(fig: Any, canvas_cls: Any, path: PathLike) -> None:
    """Render ``fig`` as a PNG into ``path`` through an atomic write."""
    canvas_cls(fig)
    with atomic_write(path) as f:
        fig.savefig(f, format="png")


def _metric(history: Any, key: str) -> list[float]:
    try:
        values = history[key]
    except (KeyError, IndexError, TypeError):
        values = getattr(history, key, None)
        if values is None:
            raise TypeError(
                f"history: expected a History or a mapping with {key!r}, "
                f"got {type(history).__name__}"
            ) from None
    return [float(v) for v in values]


def plot_history(
    history: Any,
    path: PathLike,
    *,
    title: str | None = None,
) -> None:
    """Plot the training curves of a fit and save them as a PNG.

    The train loss, the train accuracy and the test (validation) accuracy of
    every epoch on one axes, epochs on the x axis: the final frame of the
    textbook's animated ``train_ch3`` plot.  Epochs without validation data
    (nan ``val_acc``) draw no test curve.

    Parameters
    ----------
    history : History or mapping
        A :class:`csoftmax.History` (what :meth:`csoftmax.Trainer.fit`
        returns), or a mapping with the lists ``train_loss``, ``train_acc``
        and ``val_acc``.
    path : str or os.PathLike
        The PNG to write; it is written atomically (a temporary file in the
        same folder, then a rename).
    title : str, optional
        A title above the axes.

    Raises
    ------
    ImportError
        If matplotlib is not installed.
    OSError
        If ``path`` cannot be written; nothing is left behind.

    Examples
    --------
    >>> from csoftmax.plot import plot_history
    >>> history = {"train_loss": [0.79, 0.57, 0.52], "train_acc": [0.75, 0.81, 0.83],
    ...            "val_acc": [0.79, 0.80, 0.82]}
    >>> plot_history(history, "curves.png", title="softmax regression")  # doctest: +SKIP
    """
    Figure, Canvas = _matplotlib()
    train_loss = _metric(history, "train_loss")
    train_acc = _metric(history, "train_acc")
    val_acc = _metric(history, "val_acc")
    if not len(train_loss) == len(train_acc) == len(val_acc):
        raise ValueError(
            "history: train_loss, train_acc and val_acc must have one value per epoch, "
            f"got {len(train_loss)}, {len(train_acc)} and {len(val_acc)}"
        )
    epochs = np.arange(1, len(train_loss) + 1)

    fig = Figure(figsize=(6.0, 4.0), dpi=100, layout="constrained")
    ax = fig.add_subplot()
    ax.plot(epochs, train_loss, "-", marker="o", markersize=3, label="train loss")
    ax.plot(epochs, train_acc, "m--", marker="o", markersize=3, label="train acc")
    if not all(math.isnan(v) for v in val_acc):
        ax.plot(epochs, val_acc, "g-.", marker="o", markersize=3, label="test acc")
    ax.set_xlabel("epoch")
    if len(epochs) > 1:
        ax.set_xlim(1, len(epochs))
    if len(epochs) <= 20:
        ax.set_xticks(epochs)
    ax.grid(True, alpha=0.4)
    ax.legend()
    if title:
        ax.set_title(title)
    _save_png(fig, Canvas, path)


def plot_predictions(
    images: Any,
    labels: Any,
    predictions: Any,
    path: PathLike,
    *,
    class_names: Sequence[str] | Mapping[int, str] | None = FASHION_MNIST_CLASSES,
    n: int = 18,
    cols: int = 9,
) -> None:
    """Show the first ``n`` images with their true and predicted classes, as a PNG.

    A grid of 28x28 grey images, each titled ``"true\\npredicted"``, the
    wrong predictions in red: the textbook's ``predict_ch3``.

    Parameters
    ----------
    images : array_like, shape (m, 784) or (m, 28, 28)
        The images (e.g. the raw test pixels in [0, 1]).
    labels, predictions : array_like of int, shape (m,)
        The true and the predicted class of each image.
    path : str or os.PathLike
        The PNG to write; it is written atomically (a temporary file in the
        same folder, then a rename).
    class_names : sequence of str, optional
        The name of each class (Fashion-MNIST's by default); None titles the
        images with the class numbers.
    n : int, default 18
        How many images to show (at most m).
    cols : int, default 9
        Images per row.

    Raises
    ------
    ImportError
        If matplotlib is not installed.
    ValueError
        If the shapes do not agree.
    OSError
        If ``path`` cannot be written; nothing is left behind.

    Examples
    --------
    >>> import numpy as np
    >>> from csoftmax.plot import plot_predictions
    >>> images = np.zeros((4, 784), dtype=np.float32)
    >>> plot_predictions(images, [0, 1, 2, 3], [0, 1, 2, 9], "preds.png",
    ...                  n=4, cols=2)  # doctest: +SKIP
    """
    Figure, Canvas = _matplotlib()
    for value, name in ((n, "n"), (cols, "cols")):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
            raise ValueError(f"{name}: expected an integer >= 1, got {value!r}")
    imgs = np.asarray(images)
    if imgs.ndim == 2 and imgs.shape[1] == 28 * 28:
        imgs = imgs.reshape(-1, 28, 28)
    if imgs.ndim != 3 or imgs.shape[1:] != (28, 28):
        raise ValueError(f"images: expected shape (m, 784) or (m, 28, 28), got {imgs.shape}")
    true = np.asarray(labels).reshape(-1)
    pred = np.asarray(predictions).reshape(-1)
    if not len(true) == len(pred) == len(imgs):
        raise ValueError(
            f"labels, predictions: expected {len(imgs)} of each (one per image), "
            f"got {len(true)} and {len(pred)}"
        )
    count = min(int(n), len(imgs))
    cols = max(1, min(int(cols), count))
    rows = max(1, math.ceil(count / cols))

    def name(k: Any) -> str:
        if class_names is None:
            return str(k)
        try:
            return str(class_names[int(k)])
        except (IndexError, KeyError):
            return str(k)

    fig = Figure(figsize=(1.5 * cols, 1.9 * rows), dpi=100, layout="constrained")
    axes = fig.subplots(rows, cols, squeeze=False)
    for i, ax in enumerate(axes.flat):
        ax.set_axis_off()
        if i >= count:
            continue
        img = imgs[i]
        lo, hi = min(0.0, float(img.min())), max(1.0, float(img.max()))
        ax.imshow(img, cmap="gray", vmin=lo, vmax=hi)
        wrong = true[i] != pred[i]
        ax.set_title(
            f"{name(true[i])}\n{name(pred[i])}",
            fontsize=8,
            color=_WRONG if wrong else _RIGHT,
            fontweight="bold" if wrong else "normal",
        )
    _save_png(fig, Canvas, path)
