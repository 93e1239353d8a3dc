"""The `csoftmax` command line.

``csoftmax train`` trains softmax regression on Fashion-MNIST from a recipe
(:mod:`csoftmax.recipes`), each hyper-parameter overridable by a flag;
``csoftmax info`` shows how csoftmax was built.

Exit codes: 0 on success, 1 for a runtime error (reported on one line as
``csoftmax: error: ...``, without a traceback), 2 for a usage error, 130 when
Ctrl-C stopped the training (the outputs of the model so far are still
written).
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import time
from collections.abc import Sequence
from typing import Any, Callable

from ._files import unwritable_reason

EXIT_OK, EXIT_ERROR, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130


class CliError(Exception):
    """A runtime error reported as ``csoftmax: error: MESSAGE`` with exit code 1."""


# ---------------------------------------------------------------- values --
def _integer(minimum: int) -> Callable[[str], int]:
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"must be at least {minimum}, got {value}")
        return value

    parse.__name__ = "integer"
    return parse


def _number(*, positive: bool) -> Callable[[str], float]:
    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
        if not math.isfinite(value) or value < 0 or (positive and value == 0):
            bound = "> 0" if positive else ">= 0"
            raise argparse.ArgumentTypeError(f"expected a finite number {bound}, got {text}")
        return value

    parse.__name__ = "number"
    return parse


# ---------------------------------------------------------------- `info` --
def _info(args: argparse.Namespace) -> int:
    from ._config import show_config

    show_config()
    return EXIT_OK


# --------------------------------------------------------------- `train` --
class _EpochPrinter:
    """A callback printing one line per epoch as it completes."""

    def __init__(self, epochs: int, show_lr: bool) -> None:
        self.epochs = epochs
        self.show_lr = show_lr
        self._width = len(str(epochs))

    def on_epoch_end(self, trainer: Any, epoch: int, logs: dict[str, float]) -> None:
        w = self._width
        line = (
            f"epoch {epoch + 1:>{w}}/{self.epochs}  "
            f"train loss {logs['train_loss']:.4f}  train acc {logs['train_acc']:.4f}  "
            f"test acc {logs['val_acc']:.4f}  ({logs['seconds']:.2f} s)"
        )
        if self.show_lr:
            line += f"  lr {trainer.optimizer.lr:.4g}"
        print(line, flush=True)


def _check_output(option: str, path: str | os.PathLike) -> None:
    """Fail before any work if ``path`` cannot be an output file."""
    reason = unwritable_reason(path)
    if reason is not None:
        raise CliError(f"{option} {os.fspath(path)}: {reason}")


def _write(option: str, path: str, write: Callable[[str], None]) -> None:
    try:
        write(path)
    except OSError as e:
        reason = e.strerror or str(e)
        raise CliError(f"{option} {path}: cannot write it ({reason})") from None


def _describe(recipe: Any, args: argparse.Namespace, threads: int) -> str:
    return (
        f"recipe {recipe.name}: epochs {recipe.epochs}, batch size {recipe.batch_size}, "
        f"lr {recipe.lr:g}, momentum {recipe.momentum:g}, "
        f"weight decay {recipe.weight_decay:g}, nesterov {'on' if recipe.nesterov else 'off'}, "
        f"init std {recipe.init_std:g}, schedule {recipe.schedule}, inputs {recipe.inputs}; "
        f"{args.dtype}, seed {args.seed}, {threads} thread{'s' if threads != 1 else ''}"
    )


def _train(args: argparse.Namespace) -> int:
    import numpy as np

    from . import datasets, recipes
    from ._config import get_num_threads, set_num_threads
    from .callbacks import Checkpoint, LearningRateScheduler
    from .model import SoftmaxRegression
    from .optim import SGD, cosine_schedule, step_schedule
    from .trainer import Trainer

    recipe = recipes.get(args.recipe).replace(
        epochs=args.epochs,
        batch_size=args.batch_size,
        lr=args.lr,
        momentum=args.momentum,
        weight_decay=args.weight_decay,
        nesterov=args.nesterov,
        init_std=args.init_std,
        schedule=args.schedule,
    )
    if recipe.nesterov and recipe.momentum == 0:
        args.parser.error("--nesterov needs a momentum > 0 (set --momentum)")

    # Everything that can fail fast does, before the data is loaded.
    for option, path in (
        ("--save", args.save),
        ("--plot", args.plot),
        ("--show-predictions", args.show_predictions),
        ("--checkpoint", args.checkpoint),
    ):
        if path is not None:
            _check_output(option, path)
    if args.plot is not None or args.show_predictions is not None:
        from .plot import _matplotlib

        try:
            _matplotlib()
        except ImportError as e:
            raise CliError(str(e)) from None
    if args.threads is not None:
        set_num_threads(args.threads)

    model = SoftmaxRegression(
        784,
        len(datasets.FASHION_MNIST_CLASSES),
        dtype=np.dtype(args.dtype),
        init_std=recipe.init_std,
        seed=args.seed,
    )
    model.class_names = list(datasets.FASHION_MNIST_CLASSES)
    optimizer = SGD(
        lr=recipe.lr,
        momentum=recipe.momentum,
        weight_decay=recipe.weight_decay,
        nesterov=recipe.nesterov,
    )
    trainer = Trainer(
        model,
        optimizer,
        batch_size=recipe.batch_size,
        seed=args.seed,
        progress=not args.no_progress,
    )
    if args.resume is not None:
        trainer.load_checkpoint(args.resume)  # fails here, before the data is loaded

    print(_describe(recipe, args, get_num_threads()), flush=True)
    if args.resume is not None:
        print(f"resuming from {args.resume} after epoch {trainer.epoch}", flush=True)

    start = time.perf_counter()
    (X_train, y_train), (X_test, y_test) = datasets.load_fashion_mnist(args.data_root)
    A_train, A_test = recipes.prepare(recipe, X_train, X_test)
    load_seconds = time.perf_counter() - start
    print(
        f"data: Fashion-MNIST, {len(y_train)} training and {len(y_test)} test images "
        f"({load_seconds:.2f} s)",
        flush=True,
    )

    callbacks: list[Any] = []
    if recipe.schedule == "cosine":
        callbacks.append(LearningRateScheduler(cosine_schedule(recipe.epochs)))
    elif recipe.schedule == "step":
        callbacks.append(LearningRateScheduler(step_schedule(max(1, recipe.epochs // 3), 0.1)))
    callbacks.append(_EpochPrinter(recipe.epochs, show_lr=recipe.schedule != "constant"))
    if args.checkpoint is not None:
        callbacks.append(Checkpoint(args.checkpoint, every=1))

    start = time.perf_counter()
    history = trainer.fit(
        A_train,
        y_train,
        epochs=recipe.epochs,
        validation_data=(A_test, y_test),
        callbacks=callbacks,
        resume_from=args.resume,
    )
    train_seconds = time.perf_counter() - start

    if history.interrupted or not history.val_acc:
        # The weights moved since the last complete epoch (if any): score them.
        final = trainer.evaluate(A_test, y_test)
    else:
        final = {"loss": history.val_loss[-1], "accuracy": history.val_acc[-1]}
    if history.interrupted:
        print(f"interrupted after {len(history)} complete epochs", flush=True)
    print(
        f"{'stopped' if history.interrupted else 'done'}: test acc {final['accuracy']:.4f}  "
        f"test loss {final['loss']:.4f}  after {len(history)} epochs  "
        f"training {train_seconds:.2f} s  (data loading {load_seconds:.2f} s)",
        flush=True,
    )

    errors = []
    outputs: list[tuple[str, str | None, Callable[[str], None]]] = [
        ("--save", args.save, model.save),
    ]
    if args.plot is not None:
        from .plot import plot_history

        title = f"softmax regression on Fashion-MNIST ({recipe.name} recipe)"
        outputs.append(("--plot", args.plot, lambda p: plot_history(history, p, title=title)))
    if args.show_predictions is not None:
        from .plot import plot_predictions

        n = 18
        predicted = model.predict(A_test[:n])
        outputs.append(
            (
                "--show-predictions",
                args.show_predictions,
                lambda p: plot_predictions(X_test[:n], y_test[:n], predicted, p, n=n),
            )
        )
    for option, path, write in outputs:
        if path is None:
            continue
        try:
            _write(option, path, write)
        except CliError as e:
            errors.append(str(e))
        else:
            print(f"wrote {path}", flush=True)
    if errors:
        raise CliError("; ".join(errors))
    return EXIT_INTERRUPTED if history.interrupted else EXIT_OK


def _add_train(sub: Any) -> None:
    from .recipes import RECIPES

    train = sub.add_parser(
        "train",
        help="train softmax regression on Fashion-MNIST",
        description=(
            "Train softmax regression on Fashion-MNIST, the textbook run by default "
            "(10 epochs, batch 256, SGD with lr 0.1). Every hyper-parameter defaults to "
            "the recipe's value."
        ),
    )
    train.set_defaults(run=_train, parser=train)
    hp = train.add_argument_group("hyper-parameters (default: the recipe's)")
    hp.add_argument(
        "--recipe",
        choices=sorted(RECIPES),
        default="textbook",
        help="the recipe the hyper-parameters start from (textbook)",
    )
    hp.add_argument("--epochs", type=_integer(1), metavar="N", help="epochs to train")
    hp.add_argument("--batch-size", type=_integer(1), metavar="N", help="minibatch size")
    hp.add_argument("--lr", type=_number(positive=True), metavar="LR", help="learning rate")
    hp.add_argument("--momentum", type=_number(positive=False), metavar="M", help="momentum")
    hp.add_argument("--weight-decay", type=_number(positive=False), metavar="WD", help="L2 penalty")
    hp.add_argument("--nesterov", action="store_true", default=None, help="Nesterov momentum")
    hp.add_argument("--no-nesterov", dest="nesterov", action="store_false", help="plain momentum")
    hp.add_argument(
        "--init-std",
        type=_number(positive=False),
        metavar="S",
        help="standard deviation of the initial weights",
    )
    hp.add_argument(
        "--schedule",
        choices=("constant", "cosine", "step"),
        help="learning-rate schedule",
    )
    run = train.add_argument_group("run")
    run.add_argument(
        "--seed", type=_integer(0), default=0, help="seed of the init and the shuffling (0)"
    )
    run.add_argument(
        "--dtype", choices=("float32", "float64"), default="float32", help="precision (float32)"
    )
    run.add_argument("--threads", type=_integer(1), metavar="N", help="OpenMP threads")
    run.add_argument(
        "--data-root",
        metavar="PATH",
        help="folder holding the four Fashion-MNIST files (default: search, then download)",
    )
    run.add_argument("--no-progress", action="store_true", help="no progress bar")
    out = train.add_argument_group("outputs")
    out.add_argument("--plot", metavar="PNG", help="write the training curves")
    out.add_argument(
        "--show-predictions", metavar="PNG", help="write a grid of predicted test images"
    )
    out.add_argument("--save", metavar="NPZ", help="write the trained model")
    out.add_argument("--checkpoint", metavar="NPZ", help="write a checkpoint after every epoch")
    out.add_argument(
        "--resume",
        metavar="NPZ",
        help="continue from a checkpoint (--epochs is the total of the run)",
    )


def _add_bench(sub: Any) -> None:
    from .bench import add_arguments, run

    bench = sub.add_parser(
        "bench",
        help="time the kernels (or a training run) against NumPy, SciPy, PyTorch, JAX",
        description=(
            "Time every kernel against the textbook NumPy formulation, the installed peers "
            "(SciPy, PyTorch, JAX) and the memory floor, side by side; with --training, the "
            "textbook Fashion-MNIST run of the csoftmax Trainer against NumPy and PyTorch loops."
        ),
    )
    add_arguments(bench)
    bench.set_defaults(run=run)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="csoftmax", description="Fast softmax regression: kernels, training, benchmarks."
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    _add_train(sub)
    _add_bench(sub)
    info = sub.add_parser("info", help="show how csoftmax was built and runs")
    info.set_defaults(run=_info)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line with ``argv`` (default ``sys.argv[1:]``); returns
    the exit code (argparse exits with 2 itself on a usage error)."""
    from .model import ModelFileError

    args = build_parser().parse_args(argv)
    try:
        return args.run(args)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr, flush=True)
        return EXIT_INTERRUPTED
    except (CliError, OSError, ModelFileError) as e:
        # OSError covers DatasetError and unreadable files.
        print(f"csoftmax: error: {e}", file=sys.stderr, flush=True)
        return EXIT_ERROR


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
