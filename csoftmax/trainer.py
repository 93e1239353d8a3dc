"""The training loop: minibatch SGD over a data set, epoch by epoch.

One step is a call or two on buffers allocated once per fit (see _steps.py):
for few classes one fused kernel reads the batch's rows from the data set by
index and returns loss, accuracy and gradients; for many, gather + GEMM +
fused cross-entropy + GEMM.  Then the optimizer's in-place update.  The
batch order of epoch e comes from ``(seed, e)`` alone; the fused kernel's
sums do not depend on the thread count and BLAS runs on one thread during a
fit, so the same seed gives bitwise-identical weights whatever
``set_num_threads`` says, and a run resumed from a checkpoint ends exactly
where the uninterrupted run does.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import sys
import threading
import time
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np

from ._config import single_threaded_blas
from ._steps import StepRunner, input_rows
from .model import (
    ModelFileError,
    SoftmaxRegression,
    _ensure_blas,
    check_class_names,
    parse_json_header,
    read_npz,
    write_npz_atomically,
)
from .optim import SGD

__all__ = ["Trainer", "History"]

CHECKPOINT_FORMAT = "csoftmax.checkpoint"
CHECKPOINT_VERSION = 1
METRICS = ("train_loss", "train_acc", "val_loss", "val_acc", "seconds")
EVAL_BLOCK_ROWS = 8192


class History:
    """Per-epoch metrics of a fit: ``train_loss``, ``train_acc``,
    ``val_loss``, ``val_acc`` (nan without validation data) and ``seconds``.

    Index it like a dict (``history["val_acc"]``) or read the attributes.
    ``interrupted`` is True when Ctrl-C stopped the fit.

    >>> h = History()
    >>> h.append({"train_loss": 0.5, "train_acc": 0.8, "val_loss": 0.6,
    ...           "val_acc": 0.75, "seconds": 0.1})
    >>> len(h), h["val_acc"]
    (1, [0.75])
    """

    def __init__(self) -> None:
        self.train_loss: list[float] = []
        self.train_acc: list[float] = []
        self.val_loss: list[float] = []
        self.val_acc: list[float] = []
        self.seconds: list[float] = []
        self.interrupted = False

    def __getitem__(self, key: str) -> list[float]:
        if key not in METRICS:
            raise KeyError(key)
        return getattr(self, key)

    def __len__(self) -> int:
        return len(self.train_loss)

    def __repr__(self) -> str:
        return f"History(epochs={len(self)}, interrupted={self.interrupted})"

    def append(self, logs: dict[str, float]) -> None:
        for key in METRICS:
            self[key].append(float(logs[key]))

    def as_dict(self) -> dict[str, list[float]]:
        return {key: list(self[key]) for key in METRICS}

    @classmethod
    def from_dict(cls, d: dict[str, Sequence[float]]) -> History:
        h = cls()
        for key in METRICS:
            h[key].extend(float(v) for v in d[key])
        return h


class _Interrupt:
    """Turns the first Ctrl-C during a fit into a request to stop at the next
    batch boundary; a second Ctrl-C raises KeyboardInterrupt as usual."""

    def __init__(self) -> None:
        self.requested = False
        self._previous: Any = None

    def __enter__(self) -> _Interrupt:
        if threading.current_thread() is threading.main_thread():
            self._previous = signal.signal(signal.SIGINT, self._handle)
        return self

    def _handle(self, signum: int, frame: Any) -> None:
        self.requested = True
        signal.signal(signal.SIGINT, signal.default_int_handler)

    def __exit__(self, *exc: Any) -> None:
        if self._previous is not None:
            signal.signal(signal.SIGINT, self._previous)


class Trainer:
    """Trains a :class:`SoftmaxRegression` with an optimizer on minibatches.

    Parameters
    ----------
    model : SoftmaxRegression
    optimizer : SGD
    batch_size : int, default 256
    shuffle : bool, default True
        Shuffle the rows every epoch; without it batches are taken in order.
        The last, partial batch is kept either way.
    seed : int, optional
        Seed of the shuffling (a fresh one is drawn when None, and kept in
        ``trainer.seed`` and in checkpoints).
    progress : bool, default True
        Show a progress bar over the batches (when tqdm is installed and
        standard error is a terminal).

    Examples
    --------
    >>> import numpy as np, csoftmax as cs
    >>> rng = np.random.default_rng(0)
    >>> X = rng.normal(size=(512, 5)).astype(np.float32)
    >>> y = (X[:, 0] > 0).astype(np.int64)
    >>> trainer = cs.Trainer(cs.SoftmaxRegression(5, 2, seed=0), cs.SGD(lr=0.5),
    ...                      batch_size=64, seed=0, progress=False)
    >>> history = trainer.fit(X, y, epochs=3)
    >>> len(history), history.train_acc[-1] > 0.9
    (3, True)
    """

    def __init__(
        self,
        model: SoftmaxRegression,
        optimizer: SGD,
        *,
        batch_size: int = 256,
        shuffle: bool = True,
        seed: int | None = None,
        progress: bool = True,
    ) -> None:
        if not isinstance(model, SoftmaxRegression):
            raise TypeError(f"model: expected a SoftmaxRegression, got {type(model).__name__}")
        if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)):
            raise TypeError(f"batch_size: expected an integer, got {type(batch_size).__name__}")
        if batch_size < 1:
            raise ValueError(f"batch_size: must be at least 1, got {batch_size}")
        self.model = model
        self.optimizer = optimizer
        self.batch_size = int(batch_size)
        self.shuffle = bool(shuffle)
        self.seed = int(np.random.SeedSequence().entropy % 2**63) if seed is None else int(seed)
        self.progress = bool(progress)
        self.epoch = 0  # epochs completed
        self.history = History()
        self.stop_training = False

    # ----------------------------------------------------------- checking --
    def _data(
        self, X: Any, y: Any, name: str, labels_name: str = "y", scale: float | None = None
    ) -> tuple[np.ndarray, np.ndarray, float]:
        model = self.model
        x, scale = input_rows(X, model.n_features, model.dtype, scale, name)
        labels = np.asarray(y)
        if labels.size == 0 and labels.dtype.kind == "f":  # np.asarray([]) is float64
            labels = labels.astype(np.int64)
        if labels.dtype.kind not in "iu":
            raise TypeError(
                f"{labels_name}: class indices must be integers, got dtype {labels.dtype}"
            )
        if labels.shape != (x.shape[0],):
            raise ValueError(
                f"{labels_name}: expected {x.shape[0]} labels, got shape {labels.shape}"
            )
        if labels.size and (labels.min() < 0 or labels.max() >= model.n_classes):
            bad = labels.min() if labels.min() < 0 else labels.max()
            raise ValueError(
                f"{labels_name}: label {int(bad)} is out of range [0, {model.n_classes})"
            )
        return x, np.require(labels, np.int64, ["C", "A"]), scale

    # ---------------------------------------------------------- training --
    def fit(
        self,
        X: Any,
        y: Any = None,
        *,
        epochs: int = 10,
        validation_data: tuple[Any, Any] | None = None,
        callbacks: Iterable[Any] = (),
        resume_from: str | os.PathLike | None = None,
        scale: float | None = None,
    ) -> History:
        """Train for ``epochs`` epochs; returns the :class:`History` of all epochs.

        Parameters
        ----------
        X, y : array_like
            Rows (n, n_features) and their integer labels (n,).  ``X`` may be
            a ``np.memmap`` (rows are read batch by batch, never copied whole)
            or uint8 with ``scale``.  With ``y=None``, ``X`` is instead an
            iterable of ``(X_batch, y_batch)`` pairs, each one step, iterated
            afresh every epoch (a list, or an object whose ``__iter__``
            starts over; a one-shot iterator feeds one epoch); the trainer's
            ``batch_size`` and ``shuffle`` then do not apply.
        epochs : int, default 10
            Epochs to train.  With ``resume_from``, the total of the run the
            checkpoint belongs to: the epochs it holds are not repeated.
        validation_data : (X_val, y_val), optional
            Evaluated after every epoch (``val_loss``, ``val_acc``).
        callbacks : iterable
            Objects with any of ``on_train_begin(trainer)``,
            ``on_epoch_begin(trainer, epoch)``,
            ``on_epoch_end(trainer, epoch, logs)``, ``on_train_end(trainer)``;
            setting ``trainer.stop_training`` ends the fit after the epoch.
        resume_from : path, optional
            A checkpoint written by :meth:`save_checkpoint` (or the
            ``Checkpoint`` callback) to continue from.
        scale : float, optional
            For uint8 data (raw pixels) only: every element is multiplied by
            it (e.g. 1/255) inside the kernels, so no float copy of the data
            set is made; without it uint8 values count as they are.  Applies
            to ``validation_data`` too.

        Ctrl-C stops the fit at the next batch boundary: the weights are
        those after the last complete step, the History holds the complete
        epochs, and ``history.interrupted`` is True.
        """
        if isinstance(epochs, bool) or not isinstance(epochs, (int, np.integer)) or epochs < 0:
            raise ValueError(f"epochs: expected an integer >= 0, got {epochs!r}")
        if y is None:
            source = _BatchSource(X, epochs)
            data = None
        else:
            source = None
            data = self._data(X, y, "X", scale=scale)
        val = None
        if validation_data is not None:
            if not isinstance(validation_data, (tuple, list)) or len(validation_data) != 2:
                raise TypeError("validation_data: expected a pair (X_val, y_val)")
            val = self._data(*validation_data, "validation_data", "validation_data", scale)
        if resume_from is not None:
            self.load_checkpoint(resume_from)
            last = int(epochs)
        else:
            last = self.epoch + int(epochs)
        callbacks = list(callbacks)
        self.stop_training = False
        self.history.interrupted = False

        rows = self.batch_size if data is None else min(self.batch_size, max(len(data[0]), 1))
        runner = StepRunner(self.model, rows)
        _call(callbacks, "on_train_begin", self)
        with _Interrupt() as interrupt, _blas_for(runner):
            while self.epoch < last and not self.stop_training:
                _call(callbacks, "on_epoch_begin", self, self.epoch)
                start = time.perf_counter()
                if data is None:
                    batches, total = source.epoch(lambda b: self._data(*b, "X", "y", scale)), None
                else:
                    batches = self._batches(*data)
                    total = -(-len(data[0]) // self.batch_size)
                done, loss_sum, correct, seen = self._train_epoch(
                    batches, total, runner, interrupt
                )
                if not done:
                    self.history.interrupted = True
                    break
                logs = {
                    "train_loss": loss_sum / seen if seen else float("nan"),
                    "train_acc": correct / seen if seen else float("nan"),
                    "val_loss": float("nan"),
                    "val_acc": float("nan"),
                }
                if val is not None:
                    scores = self._evaluate(*val)
                    logs["val_loss"], logs["val_acc"] = scores["loss"], scores["accuracy"]
                logs["seconds"] = time.perf_counter() - start
                self.history.append(logs)
                self.epoch += 1
                _call(callbacks, "on_epoch_end", self, self.epoch - 1, logs)
        _call(callbacks, "on_train_end", self)
        return self.history

    def _batch_order(self, n: int) -> np.ndarray | None:
        if not self.shuffle:
            return None
        return np.random.default_rng([self.seed, self.epoch]).permutation(n)

    def _batches(self, x, labels, scale):
        """This epoch's batches of an in-memory (or memory-mapped) data set:
        (x, labels, row indices or None, start, count, scale)."""
        n, bs = x.shape[0], self.batch_size
        order = self._batch_order(n)
        for start in range(0, n, bs):
            m = min(bs, n - start)
            if order is None:
                yield x, labels, None, start, m, scale
            else:
                yield x, labels, order[start : start + m], 0, m, scale

    def _train_epoch(self, batches, total, runner, interrupt):
        model, opt = self.model, self.optimizer
        params, grads = (model.weight, model.bias), (runner.grad_w, runner.grad_b)
        loss_sum, correct, seen = 0.0, 0, 0
        bar = _progress_bar(self.progress, total, f"epoch {self.epoch + 1}")
        for x, labels, rows, start, m, scale in batches:
            if interrupt.requested:
                _close(bar)
                return False, loss_sum, correct, seen
            runner.reserve(m)
            loss, right = runner.step(x, labels, rows, start, m, scale)
            opt.step(params, grads)
            loss_sum += loss
            correct += right
            seen += m
            if bar is not None:
                bar.update(1)
        _close(bar)
        return True, loss_sum, correct, seen

    # -------------------------------------------------------- evaluation --
    def evaluate(self, X: Any, y: Any, *, scale: float | None = None) -> dict[str, float]:
        """Mean loss and accuracy of the model on (X, y), in large blocks.

        ``scale`` is for uint8 ``X``, as in :meth:`fit`.

        >>> import numpy as np, csoftmax as cs
        >>> t = cs.Trainer(cs.SoftmaxRegression(3, 2), cs.SGD(), progress=False)
        >>> scores = t.evaluate(np.zeros((4, 3)), [0, 1, 0, 1])
        >>> round(scores["loss"], 6), scores["accuracy"]   # log 2, in the model's float32
        (0.693147, 0.5)
        """
        data = self._data(X, y, "X", scale=scale)
        with _blas_for(StepRunner(self.model, 0)):
            return self._evaluate(*data)

    def _evaluate(self, x: np.ndarray, labels: np.ndarray, scale: float) -> dict[str, float]:
        n = x.shape[0]
        if n == 0:
            return {"loss": float("nan"), "accuracy": float("nan")}
        runner = StepRunner(self.model, min(n, EVAL_BLOCK_ROWS))
        loss_sum, correct = 0.0, 0
        for start in range(0, n, EVAL_BLOCK_ROWS):
            m = min(EVAL_BLOCK_ROWS, n - start)
            loss, right = runner.step(x, labels, None, start, m, scale, grad=False)
            loss_sum += loss
            correct += right
        return {"loss": loss_sum / n, "accuracy": correct / n}

    # -------------------------------------------------------- checkpoints --
    def save_checkpoint(self, path: str | os.PathLike) -> None:
        """Write everything a resumed fit needs (model, optimizer, epoch,
        seed, history) to ``path`` atomically (temporary name, then rename)."""
        model, state = self.model, self.optimizer.state_dict()
        velocity = state.pop("velocity")
        header = {
            "format": CHECKPOINT_FORMAT,
            "version": CHECKPOINT_VERSION,
            "epoch": self.epoch,
            "seed": self.seed,
            "batch_size": self.batch_size,
            "shuffle": self.shuffle,
            "dtype": model.dtype.name,
            "n_features": model.n_features,
            "n_classes": model.n_classes,
            "class_names": model.class_names,
            "optimizer": state,
            "velocity": [v is not None for v in velocity],
            "history": self.history.as_dict(),
        }
        arrays = {
            "header": np.frombuffer(json.dumps(header).encode(), dtype=np.uint8),
            "weight": model.weight,
            "bias": model.bias,
        }
        for i, v in enumerate(velocity):
            if v is not None:
                arrays[f"velocity_{i}"] = v
        write_npz_atomically(path, arrays)

    def load_checkpoint(self, path: str | os.PathLike) -> None:
        """Restore the state :meth:`save_checkpoint` wrote into this trainer,
        its model and its optimizer (which must match its shapes and dtype).

        Everything is checked before anything changes: a damaged or foreign
        file raises :class:`csoftmax.model.ModelFileError` and leaves the
        trainer as it was.
        """
        where = os.fspath(path)
        model = self.model
        arrays_like = {
            "header": None,
            "weight": (model.weight.shape, model.dtype),
            "bias": (model.bias.shape, model.dtype),
            "velocity_0": (model.weight.shape, model.dtype),
            "velocity_1": (model.bias.shape, model.dtype),
        }
        velocity = ("velocity_0", "velocity_1")
        raw = read_npz(path, arrays_like, optional=velocity, only=("header",))
        header = parse_json_header(where, raw["header"])
        if not isinstance(header, dict) or header.get("format") != CHECKPOINT_FORMAT:
            raise ModelFileError(f"{where}: not a csoftmax checkpoint")
        try:
            shapes_match = (header["n_features"], header["n_classes"], header["dtype"]) == (
                model.n_features,
                model.n_classes,
                model.dtype.name,
            )
        except KeyError as e:
            raise ModelFileError(f"{where}: a malformed checkpoint (no {e})") from None
        if not shapes_match:
            raise ModelFileError(
                f"{where}: a checkpoint of a {header['n_features']}x{header['n_classes']} "
                f"{header['dtype']} model, not of this {model!r}"
            )
        arrays = read_npz(path, arrays_like, optional=velocity)
        try:
            state = self._checked_checkpoint(where, header, arrays)
        except ModelFileError:
            raise
        except (KeyError, TypeError, ValueError, AttributeError, OverflowError) as e:
            raise ModelFileError(
                f"{where}: a malformed checkpoint ({type(e).__name__}: {e})"
            ) from None
        # Nothing below can fail.
        self.optimizer.load_state_dict(state["optimizer"])
        np.copyto(self.model.weight, arrays["weight"])
        np.copyto(self.model.bias, arrays["bias"])
        self.model.class_names = state["class_names"]
        self.history, self.epoch, self.seed = state["history"], state["epoch"], state["seed"]
        self.batch_size, self.shuffle = state["batch_size"], state["shuffle"]

    def _checked_checkpoint(self, where: str, header: Any, arrays: dict) -> dict[str, Any]:
        """The checkpoint's state, every field checked (raises on anything off)."""
        if header.get("version") != CHECKPOINT_VERSION:
            raise ModelFileError(f"{where}: checkpoint version {header.get('version')!r} is not 1")
        model = self.model
        has_velocity = header["velocity"]
        if not isinstance(has_velocity, list) or len(has_velocity) > 2:
            raise ModelFileError(f"{where}: velocity must list at most two flags")
        expected = {"header", "weight", "bias"}
        expected |= {f"velocity_{i}" for i, has in enumerate(has_velocity) if has is True}
        if set(arrays) != expected:
            raise ModelFileError(f"{where}: expected the arrays {sorted(expected)}")
        # read_npz has checked every array's shape and dtype.
        velocity = [arrays.get(f"velocity_{i}") for i in range(len(has_velocity))]
        optimizer = dict(header["optimizer"])
        optimizer["velocity"] = velocity
        SGD().load_state_dict(optimizer)  # raises on bad hyper-parameters
        epoch, seed, batch_size = header["epoch"], header["seed"], header["batch_size"]
        for name, v, low in (("epoch", epoch, 0), ("seed", seed, 0), ("batch_size", batch_size, 1)):
            if not isinstance(v, int) or isinstance(v, bool) or v < low:
                raise ModelFileError(f"{where}: {name} must be an integer >= {low}, got {v!r}")
        if not isinstance(header["shuffle"], bool):
            raise ModelFileError(f"{where}: shuffle must be true or false")
        names = header["class_names"]
        check_class_names(where, names, model.n_classes)
        history = History.from_dict(header["history"])
        if len(history) != epoch or any(len(history[k]) != epoch for k in METRICS):
            raise ModelFileError(f"{where}: the history does not hold {epoch} epochs")
        return {
            "optimizer": optimizer,
            "class_names": names,
            "history": history,
            "epoch": epoch,
            "seed": seed,
            "batch_size": batch_size,
            "shuffle": header["shuffle"],
        }


class _BatchSource:
    """An iterable of (X_batch, y_batch) pairs, fed to the trainer epoch by epoch."""

    def __init__(self, source: Any, epochs: int) -> None:
        if isinstance(source, np.ndarray) or not isinstance(source, Iterable):
            raise TypeError(
                "y: labels are required, unless X is an iterable of (X_batch, y_batch) pairs"
            )
        self.source = source
        self.one_shot = iter(source) is source
        self.used = False

    def epoch(self, check):
        if self.one_shot and self.used:
            raise ValueError(
                "X: this iterator of batches is exhausted after one epoch; pass a "
                "re-iterable (a list, or an object whose __iter__ starts over)"
            )
        self.used = True
        for pair in self.source:
            if not isinstance(pair, (tuple, list)) or len(pair) != 2:
                raise TypeError("X: expected (X_batch, y_batch) pairs")
            x, labels, scale = check(pair)
            yield x, labels, None, 0, x.shape[0], scale


def _blas_for(runner: StepRunner):
    """BLAS on one thread (products independent of the thread count) where
    the steps use GEMM; nothing to do for the fused route."""
    if runner.fused:
        return contextlib.nullcontext()
    _ensure_blas()
    return single_threaded_blas()


def _call(callbacks: list, method: str, *args: Any) -> None:
    for cb in callbacks:
        fn = getattr(cb, method, None)
        if fn is not None:
            fn(*args)


def _progress_bar(enabled: bool, total: int, desc: str):
    if not enabled or not sys.stderr.isatty():
        return None
    try:
        from tqdm.auto import tqdm
    except ImportError:
        return None
    return tqdm(total=total, desc=desc, leave=False, unit="batch")


def _close(bar) -> None:
    if bar is not None:
        bar.close()
