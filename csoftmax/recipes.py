"""Training recipes: the textbook run and a tuned one, as data.

A :class:`Recipe` names every hyper-parameter of a run on Fashion-MNIST;
``csoftmax train --recipe NAME`` starts from one and lets each flag override a
field.  :func:`prepare` applies the recipe's input transform.

- ``textbook``: the softmax-regression chapter exactly — N(0, 0.01^2)
  weights, SGD with learning rate 0.1, batch 256, 10 epochs, raw pixels in
  [0, 1].  About 0.83 test accuracy.
- ``tuned``: the same linear model on sqrt(pixels), standardised with the
  training set's per-pixel mean and spread, trained with momentum 0.9,
  weight decay 1e-4 and a cosine learning-rate schedule.  The square root
  evens out the variance of the pixel intensities, which a linear model
  cannot do itself; it lifts test accuracy to about 0.855 in the same 10
  epochs.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np

__all__ = ["Recipe", "RECIPES", "get", "prepare"]


@dataclasses.dataclass(frozen=True)
class Recipe:
    """Every hyper-parameter of a training run."""

    name: str
    epochs: int = 10
    batch_size: int = 256
    lr: float = 0.1
    momentum: float = 0.0
    weight_decay: float = 0.0
    nesterov: bool = False
    init_std: float = 0.01
    schedule: str = "constant"  # "constant", "cosine" or "step"
    inputs: str = "pixels"  # "pixels" or "sqrt-standardized"

    def replace(self, **changes: Any) -> Recipe:
        """A copy with some fields changed (None values are ignored)."""
        return dataclasses.replace(self, **{k: v for k, v in changes.items() if v is not None})


RECIPES = {
    "textbook": Recipe("textbook"),
    "tuned": Recipe(
        "tuned",
        lr=0.02,
        momentum=0.9,
        weight_decay=1e-4,
        schedule="cosine",
        inputs="sqrt-standardized",
    ),
}


def get(name: str) -> Recipe:
    """The recipe called ``name``.

    >>> get("textbook").lr
    0.1
    """
    try:
        return RECIPES[name]
    except KeyError:
        raise ValueError(
            f"recipe: unknown recipe {name!r}; choose from {sorted(RECIPES)}"
        ) from None


def prepare(
    recipe: Recipe, X_train: np.ndarray, X_test: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """The recipe's inputs: the raw pixels, or sqrt(pixels) standardised with
    the training set's statistics (never the test set's).

    >>> X = np.array([[0.0, 1.0], [0.25, 1.0]], dtype=np.float32)
    >>> A, B = prepare(get("tuned"), X, X)
    >>> A.dtype, A.mean(axis=0).round(6).tolist()
    (dtype('float32'), [0.0, 0.0])
    """
    if recipe.inputs == "pixels":
        return X_train, X_test
    if recipe.inputs != "sqrt-standardized":
        raise ValueError(f"inputs: unknown input transform {recipe.inputs!r}")
    A, B = np.sqrt(X_train), np.sqrt(X_test)
    mean = A.mean(axis=0)
    # The floor keeps always-black border pixels from being blown up.
    scale = A.std(axis=0) + np.float32(0.05)
    A -= mean
    A /= scale
    B -= mean
    B /= scale
    return A, B
