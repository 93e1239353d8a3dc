"""Minibatch SGD and learning-rate schedules.

The update is ``torch.optim.SGD``'s (dampening 0), applied in place:

    g = grad + weight_decay * p          (weights only; the bias is not decayed)
    v = momentum * v + g                 (v = g on the first step)
    g = g + momentum * v  if nesterov  else  v
    p = p - lr * g

A schedule is a function of the epoch giving a factor of the base learning
rate; :class:`csoftmax.callbacks.LearningRateScheduler` applies one during
training, and :func:`compose` multiplies several.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, Callable

import numpy as np

__all__ = ["SGD", "step_schedule", "cosine_schedule", "warmup_schedule", "compose"]

Schedule = Callable[[int], float]


def _non_negative(value: Any, name: str) -> float:
    v = float(value)
    if not (v >= 0 and math.isfinite(v)):
        raise ValueError(f"{name}: expected a finite value >= 0, got {value}")
    return v


class SGD:
    """Stochastic gradient descent with momentum, Nesterov and weight decay.

    Parameters
    ----------
    lr : float, default 0.1
        The learning rate (``base_lr`` keeps the value given here, which
        schedules scale).
    momentum : float, default 0
    weight_decay : float, default 0
        L2 penalty added to the weights' gradient (not the bias's).
    nesterov : bool, default False
        Nesterov momentum (needs momentum > 0).

    Examples
    --------
    >>> import numpy as np
    >>> from csoftmax import SGD
    >>> w, b = np.ones(3), np.zeros(1)
    >>> SGD(lr=0.5).step((w, b), (np.ones(3), np.ones(1)))
    >>> w, b
    (array([0.5, 0.5, 0.5]), array([-0.5]))
    """

    def __init__(
        self,
        lr: float = 0.1,
        momentum: float = 0.0,
        weight_decay: float = 0.0,
        nesterov: bool = False,
    ) -> None:
        self.lr = _non_negative(lr, "lr")
        self.base_lr = self.lr
        self.momentum = _non_negative(momentum, "momentum")
        self.weight_decay = _non_negative(weight_decay, "weight_decay")
        self.nesterov = bool(nesterov)
        if self.nesterov and self.momentum == 0:
            raise ValueError("nesterov: Nesterov momentum needs momentum > 0")
        self._velocity: list[np.ndarray | None] = []
        self._scratch: list[np.ndarray | None] = []

    def __repr__(self) -> str:
        return (
            f"SGD(lr={self.lr}, momentum={self.momentum}, weight_decay={self.weight_decay}, "
            f"nesterov={self.nesterov})"
        )

    def step(
        self,
        params: Sequence[np.ndarray],
        grads: Sequence[np.ndarray],
        decay: Sequence[bool] = (True, False),
    ) -> None:
        """Update ``params`` in place from ``grads`` (which are used as scratch).

        ``decay[i]`` says whether weight decay applies to ``params[i]``: by
        default to the first (the weight) and not the second (the bias).
        """
        while len(self._velocity) < len(params):
            self._velocity.append(None)
            self._scratch.append(None)
        for i, (p, g) in enumerate(zip(params, grads)):
            if self.weight_decay and i < len(decay) and decay[i]:
                g += _scaled(p, self.weight_decay, self._tmp(i, p))
            if self.momentum:
                v = self._velocity[i]
                if v is None:
                    v = self._velocity[i] = g.copy()
                else:
                    v *= self.momentum
                    v += g
                if self.nesterov:
                    g += _scaled(v, self.momentum, self._tmp(i, p))
                else:
                    g = v
            p -= _scaled(g, self.lr, self._tmp(i, p))

    def _tmp(self, i: int, like: np.ndarray) -> np.ndarray:
        t = self._scratch[i]
        if t is None or t.shape != like.shape or t.dtype != like.dtype:
            t = self._scratch[i] = np.empty_like(like)
        return t

    def state_dict(self) -> dict[str, Any]:
        """The optimizer's state (hyper-parameters and momentum buffers)."""
        state: dict[str, Any] = {
            "lr": self.lr,
            "base_lr": self.base_lr,
            "momentum": self.momentum,
            "weight_decay": self.weight_decay,
            "nesterov": self.nesterov,
        }
        state["velocity"] = [None if v is None else v.copy() for v in self._velocity]
        return state

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore what :meth:`state_dict` returned."""
        self.lr = _non_negative(state["lr"], "lr")
        self.base_lr = _non_negative(state["base_lr"], "base_lr")
        self.momentum = _non_negative(state["momentum"], "momentum")
        self.weight_decay = _non_negative(state["weight_decay"], "weight_decay")
        self.nesterov = bool(state["nesterov"])
        self._velocity = [None if v is None else np.array(v) for v in state["velocity"]]
        self._scratch = [None] * len(self._velocity)


def _scaled(a: np.ndarray, factor: float, out: np.ndarray) -> np.ndarray:
    """factor * a, written to out (no allocation per step)."""
    return np.multiply(a, factor, out=out)


def step_schedule(step_size: int, gamma: float = 0.1) -> Schedule:
    """Multiply the learning rate by ``gamma`` every ``step_size`` epochs.

    >>> s = step_schedule(2, 0.5)
    >>> [s(e) for e in range(5)]
    [1.0, 1.0, 0.5, 0.5, 0.25]
    """
    if step_size < 1:
        raise ValueError(f"step_size: must be at least 1, got {step_size}")
    return lambda epoch: float(gamma ** (epoch // step_size))


def cosine_schedule(epochs: int, min_factor: float = 0.0) -> Schedule:
    """Cosine annealing from 1 at epoch 0 towards ``min_factor`` at ``epochs``.

    >>> s = cosine_schedule(4)
    >>> [round(s(e), 3) for e in range(4)]
    [1.0, 0.854, 0.5, 0.146]
    """
    if epochs < 1:
        raise ValueError(f"epochs: must be at least 1, got {epochs}")
    return lambda epoch: (
        min_factor + (1 - min_factor) * 0.5 * (1 + math.cos(math.pi * min(epoch, epochs) / epochs))
    )


def warmup_schedule(epochs: int) -> Schedule:
    """Ramp linearly from 1/(epochs+1) up to 1 over the first ``epochs`` epochs.

    >>> s = warmup_schedule(3)
    >>> [s(e) for e in range(5)]
    [0.25, 0.5, 0.75, 1.0, 1.0]
    """
    return lambda epoch: min(1.0, (epoch + 1) / (epochs + 1))


def compose(*schedules: Schedule) -> Schedule:
    """The product of several schedules.

    >>> s = compose(warmup_schedule(1), step_schedule(2, 0.1))
    >>> [round(s(e), 3) for e in range(4)]
    [0.5, 1.0, 0.1, 0.1]
    """
    return lambda epoch: math.prod(s(epoch) for s in schedules)
