"""Callbacks for :meth:`csoftmax.Trainer.fit`: early stopping, checkpoints,
learning-rate schedules.

A callback is any object with some of ``on_train_begin(trainer)``,
``on_epoch_begin(trainer, epoch)``, ``on_epoch_end(trainer, epoch, logs)``
and ``on_train_end(trainer)``; :class:`Callback` is an empty base to start
from.
"""

from __future__ import annotations

import math
import os
from typing import Any

import numpy as np

from .optim import Schedule

__all__ = ["Callback", "EarlyStopping", "Checkpoint", "LearningRateScheduler"]


class Callback:
    """A callback that does nothing; override the hooks you need."""

    def on_train_begin(self, trainer: Any) -> None:
        pass

    def on_epoch_begin(self, trainer: Any, epoch: int) -> None:
        pass

    def on_epoch_end(self, trainer: Any, epoch: int, logs: dict[str, float]) -> None:
        pass

    def on_train_end(self, trainer: Any) -> None:
        pass


class EarlyStopping(Callback):
    """Stop when a metric has not improved for ``patience`` epochs.

    Parameters
    ----------
    monitor : str, default "val_loss"
        A History key; losses are minimised, accuracies maximised.
    patience : int, default 3
    min_delta : float, default 0
        The least change that counts as an improvement.
    restore_best : bool, default True
        Put back the weights of the best epoch when stopping.
    """

    def __init__(
        self,
        monitor: str = "val_loss",
        patience: int = 3,
        min_delta: float = 0.0,
        restore_best: bool = True,
    ) -> None:
        if monitor not in ("train_loss", "train_acc", "val_loss", "val_acc"):
            raise ValueError(f"monitor: unknown metric {monitor!r}")
        self.monitor = monitor
        self.patience = int(patience)
        self.min_delta = float(min_delta)
        self.restore_best = bool(restore_best)
        self._sign = 1.0 if monitor.endswith("loss") else -1.0
        self.best = math.inf
        self.best_epoch = -1
        self._wait = 0
        self._best_params: tuple[np.ndarray, np.ndarray] | None = None

    def on_train_begin(self, trainer: Any) -> None:
        self.best, self.best_epoch, self._wait, self._best_params = math.inf, -1, 0, None

    def on_epoch_end(self, trainer: Any, epoch: int, logs: dict[str, float]) -> None:
        value = self._sign * logs[self.monitor]
        if value < self.best - self.min_delta:
            self.best, self.best_epoch, self._wait = value, epoch, 0
            if self.restore_best:
                self._best_params = (trainer.model.weight.copy(), trainer.model.bias.copy())
            return
        self._wait += 1
        if self._wait >= self.patience:
            trainer.stop_training = True
            if self._best_params is not None:
                np.copyto(trainer.model.weight, self._best_params[0])
                np.copyto(trainer.model.bias, self._best_params[1])


class Checkpoint(Callback):
    """Save a resumable checkpoint every ``every`` epochs (atomically).

    ``Trainer.fit(..., resume_from=path)`` continues from it and ends with
    the same weights as an uninterrupted run.
    """

    def __init__(self, path: str | os.PathLike, every: int = 1) -> None:
        if every < 1:
            raise ValueError(f"every: must be at least 1, got {every}")
        self.path = path
        self.every = int(every)

    def on_epoch_end(self, trainer: Any, epoch: int, logs: dict[str, float]) -> None:
        if (epoch + 1) % self.every == 0:
            trainer.save_checkpoint(self.path)


class LearningRateScheduler(Callback):
    """Set ``optimizer.lr = optimizer.base_lr * schedule(epoch)`` before each epoch.

    >>> from csoftmax import SGD
    >>> from csoftmax.optim import step_schedule
    >>> opt = SGD(lr=1.0)
    >>> class T: optimizer = opt
    >>> LearningRateScheduler(step_schedule(1, 0.5)).on_epoch_begin(T, 2)
    >>> opt.lr
    0.25
    """

    def __init__(self, schedule: Schedule) -> None:
        self.schedule = schedule

    def on_epoch_begin(self, trainer: Any, epoch: int) -> None:
        opt = trainer.optimizer
        opt.lr = opt.base_lr * float(self.schedule(epoch))
