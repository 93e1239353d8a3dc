"""Trainer: the step is model.loss_and_grad + SGD, batches come from the
seed alone, checkpoints resume bit for bit, callbacks and Ctrl-C behave."""

import os
import signal

import numpy as np
import pytest

import csoftmax as cs
from csoftmax._steps import FUSED_MAX_CLASSES, StepRunner
from csoftmax.callbacks import Callback, Checkpoint, EarlyStopping, LearningRateScheduler
from csoftmax.model import ModelFileError
from csoftmax.optim import cosine_schedule


def blobs(n=700, d=12, q=4, seed=0, dtype=np.float32):
    """q Gaussian clusters in d dimensions: learnable, not trivially."""
    rng = np.random.default_rng(seed)
    centers = rng.normal(scale=1.5, size=(q, d))
    y = rng.integers(0, q, size=n)
    X = (centers[y] + rng.normal(size=(n, d))).astype(dtype)
    return X, y


def trainer(d=12, q=4, seed=0, dtype=np.float32, **kwargs):
    opt = kwargs.pop("optimizer", None) or cs.SGD(lr=0.1, momentum=0.9, weight_decay=1e-3)
    model = cs.SoftmaxRegression(d, q, dtype=dtype, seed=seed)
    return cs.Trainer(
        model, opt, batch_size=kwargs.pop("batch_size", 64), seed=seed, progress=False, **kwargs
    )


def params(t):
    return t.model.weight.tobytes() + t.model.bias.tobytes()


def test_fit_learns_and_reports_every_metric():
    X, y = blobs(900)
    X, y, Xv, yv = X[:700], y[:700], X[700:], y[700:]
    t = trainer()
    h = t.fit(X, y, epochs=4, validation_data=(Xv, yv))
    assert isinstance(h, cs.History) and len(h) == 4 and t.epoch == 4
    for key in ("train_loss", "train_acc", "val_loss", "val_acc", "seconds"):
        assert len(h[key]) == 4 and all(np.isfinite(h[key]))
    assert h.train_loss[-1] < h.train_loss[0]
    assert h.val_acc[-1] > 0.8
    scores = t.evaluate(Xv, yv)
    assert scores["accuracy"] == pytest.approx(h.val_acc[-1])
    assert scores["loss"] == pytest.approx(h.val_loss[-1], rel=1e-6)
    assert not h.interrupted


def test_without_validation_data_val_metrics_are_nan():
    X, y = blobs(100)
    h = trainer().fit(X, y, epochs=1)
    assert np.isnan(h.val_loss[0]) and np.isnan(h.val_acc[0])


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_same_seed_same_weights(dtype):
    X, y = blobs(dtype=dtype)
    a, b = trainer(dtype=dtype), trainer(dtype=dtype)
    a.fit(X, y, epochs=3)
    b.fit(X, y, epochs=3)
    assert params(a) == params(b)
    c = trainer(dtype=dtype, seed=1)
    c.model.weight[:] = trainer(dtype=dtype).model.weight
    c.fit(X, y, epochs=3)
    assert params(c) != params(a)  # another seed shuffles differently


@pytest.mark.parametrize("n_classes", [4, 40])  # the fused route and the GEMM route
def test_epoch_is_the_textbook_loop(n_classes):
    """shuffle=False: each step is loss_and_grad on the next slice + SGD (to
    rounding: the trainer's fused route sums in another order than GEMM),
    and exactly the StepRunner's step + SGD."""
    X, y = blobs(300, q=n_classes)
    t = cs.Trainer(
        cs.SoftmaxRegression(12, n_classes, seed=0), cs.SGD(lr=0.2),
        batch_size=128, shuffle=False, seed=0, progress=False,
    )
    m = cs.SoftmaxRegression(12, n_classes, seed=0)
    exact = cs.SoftmaxRegression(12, n_classes, seed=0)
    opt, opt_exact = cs.SGD(lr=0.2), cs.SGD(lr=0.2)
    runner = StepRunner(exact, 128)
    for start in range(0, 300, 128):  # the last, partial batch of 44 rows counts
        _, gw, gb = m.loss_and_grad(X[start : start + 128], y[start : start + 128])
        opt.step((m.weight, m.bias), (gw, gb))
        runner.step(X, y, None, start, min(128, 300 - start), 1.0)
        opt_exact.step((exact.weight, exact.bias), (runner.grad_w, runner.grad_b))
    h = t.fit(X, y, epochs=1)
    assert runner.fused == (n_classes <= FUSED_MAX_CLASSES)
    assert t.model.weight.tobytes() == exact.weight.tobytes()
    assert t.model.bias.tobytes() == exact.bias.tobytes()
    np.testing.assert_allclose(t.model.weight, m.weight, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(t.model.bias, m.bias, rtol=1e-5, atol=1e-6)
    assert 0 < h.train_loss[0] < 5


def test_resume_from_checkpoint_equals_an_uninterrupted_run(tmp_path):
    X, y = blobs()
    ckpt = tmp_path / "ckpt.npz"
    sched = LearningRateScheduler(cosine_schedule(5))
    straight = trainer()
    straight.fit(X, y, epochs=5, callbacks=[sched])

    first = trainer()
    first.fit(X, y, epochs=2, callbacks=[sched, Checkpoint(ckpt)])
    assert os.listdir(tmp_path) == ["ckpt.npz"]
    resumed = trainer(seed=123)  # seed, epoch, momentum all come from the file
    h = resumed.fit(X, y, epochs=5, callbacks=[sched], resume_from=ckpt)
    assert params(resumed) == params(straight)
    assert len(h) == 5 and h.train_loss == straight.history.train_loss


def test_checkpoint_of_another_model_is_refused(tmp_path):
    X, y = blobs()
    t = trainer()
    t.fit(X, y, epochs=1)
    t.save_checkpoint(tmp_path / "c.npz")
    other = cs.Trainer(cs.SoftmaxRegression(12, 5), cs.SGD(), progress=False)
    with pytest.raises(ModelFileError, match="checkpoint"):
        other.load_checkpoint(tmp_path / "c.npz")
    (tmp_path / "junk.npz").write_bytes(b"junk")
    with pytest.raises(ModelFileError, match="junk.npz"):
        t.load_checkpoint(tmp_path / "junk.npz")
    t.model.save(tmp_path / "model.npz")  # a model file is not a checkpoint
    with pytest.raises(ModelFileError):
        t.load_checkpoint(tmp_path / "model.npz")


def test_callbacks_are_called_in_order_and_can_stop():
    X, y = blobs(200)
    calls = []

    class Spy(Callback):
        def on_train_begin(self, trainer):
            calls.append("begin")

        def on_epoch_begin(self, trainer, epoch):
            calls.append(("epoch", epoch))

        def on_epoch_end(self, trainer, epoch, logs):
            calls.append(("end", epoch, sorted(logs)))
            if epoch == 1:
                trainer.stop_training = True

        def on_train_end(self, trainer):
            calls.append("done")

    h = trainer().fit(X, y, epochs=5, callbacks=[Spy()])
    keys = ["seconds", "train_acc", "train_loss", "val_acc", "val_loss"]
    assert calls == [
        "begin",
        ("epoch", 0),
        ("end", 0, keys),
        ("epoch", 1),
        ("end", 1, keys),
        "done",
    ]
    assert len(h) == 2


def test_early_stopping_restores_the_best_weights():
    X, y = blobs(400)
    X, y, Xv, yv = X[:300], y[:300], X[300:], y[300:]
    t = trainer()
    # Only a gain of 10 would count: nothing after the first epoch improves.
    stop = EarlyStopping("val_loss", patience=2, min_delta=10.0)
    saved = {}

    class Keep(Callback):
        def on_epoch_end(self, trainer, epoch, logs):
            saved[epoch] = trainer.model.weight.copy()

    h = t.fit(X, y, epochs=30, validation_data=(Xv, yv), callbacks=[Keep(), stop])
    assert len(h) == 3 and stop.best_epoch == 0
    assert not np.array_equal(saved[2], saved[0])
    assert np.array_equal(t.model.weight, saved[0])


def test_learning_rate_scheduler_sets_lr_each_epoch():
    X, y = blobs(100)
    seen = []

    class Spy(Callback):
        def on_epoch_end(self, trainer, epoch, logs):
            seen.append(trainer.optimizer.lr)

    t = trainer(optimizer=cs.SGD(lr=0.4))
    t.fit(X, y, epochs=3, callbacks=[LearningRateScheduler(lambda e: 0.5**e), Spy()])
    assert seen == [0.4, 0.2, 0.1]


def test_ctrl_c_stops_at_a_batch_boundary_with_consistent_weights():
    X, y = blobs()
    one_epoch = trainer()
    one_epoch.fit(X, y, epochs=1)

    class CtrlC(Callback):
        def on_epoch_begin(self, trainer, epoch):
            if epoch == 1:
                signal.raise_signal(signal.SIGINT)

    t = trainer()
    h = t.fit(X, y, epochs=3, callbacks=[CtrlC()])
    assert h.interrupted and len(h) == 1 and t.epoch == 1
    assert params(t) == params(one_epoch)  # stopped before the next step began
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
    h2 = t.fit(X, y, epochs=1)  # and it can go on
    assert not h2.interrupted and len(h2) == 2


@pytest.mark.parametrize(
    "X, y, error, match",
    [
        (np.zeros((5, 11)), np.zeros(5, int), ValueError, "^X: expected shape"),
        (np.zeros((5, 12)), np.zeros(4, int), ValueError, "^y: expected 5 labels"),
        (np.zeros((5, 12)), np.zeros(5), TypeError, "^y: class indices"),
        (np.zeros((5, 12)), np.array([0, 1, 2, 3, 4]), ValueError, "^y: label 4 is out of range"),
        (np.zeros((5, 12)), np.array([0, -1, 2, 3, 1]), ValueError, "^y: label -1"),
    ],
)
def test_fit_checks_its_data_before_training(X, y, error, match):
    t = trainer()
    before = params(t)
    with pytest.raises(error, match=match):
        t.fit(X, y, epochs=1)
    assert params(t) == before


def test_trainer_arguments_are_checked():
    m = cs.SoftmaxRegression(3, 2)
    with pytest.raises(ValueError, match="batch_size"):
        cs.Trainer(m, cs.SGD(), batch_size=0)
    with pytest.raises(TypeError, match="model"):
        cs.Trainer("model", cs.SGD())
    with pytest.raises(ValueError, match="epochs"):
        cs.Trainer(m, cs.SGD(), progress=False).fit(np.zeros((2, 3)), [0, 1], epochs=-1)


def test_data_of_another_dtype_is_converted_once():
    X, y = blobs(dtype=np.float64)
    a = trainer()
    a.fit(X, y.astype(np.int32), epochs=1)
    b = trainer()
    b.fit(X.astype(np.float32), y, epochs=1)
    assert params(a) == params(b)


def test_training_does_not_depend_on_the_thread_count():
    """BLAS splits a (256, 784) x (784, 10) product differently on 1 and 2
    threads; the trainer runs BLAS on one thread, so the weights agree."""
    rng = np.random.default_rng(7)
    X = rng.random((1024, 784), dtype=np.float32)
    y = rng.integers(0, 10, size=1024)
    weights = []
    for threads in (1, 2, 3):
        cs.set_num_threads(threads)
        t = cs.Trainer(
            cs.SoftmaxRegression(784, 10, seed=0),
            cs.SGD(lr=0.1, momentum=0.9),
            seed=0,
            progress=False,
        )
        t.fit(X, y, epochs=2)
        weights.append(t.model.weight.tobytes() + t.model.bias.tobytes())
        assert t.evaluate(X, y) == cs.Trainer(t.model, cs.SGD(), progress=False).evaluate(X, y)
    assert weights[0] == weights[1] == weights[2]


def test_a_fit_leaves_blas_threads_as_they_were():
    from threadpoolctl import threadpool_info

    def blas_threads():
        return sorted(i["num_threads"] for i in threadpool_info() if i["user_api"] == "blas")

    X, y = blobs(100)
    t = trainer()
    t.fit(X, y, epochs=1)  # loads SciPy's BLAS
    before = blas_threads()
    t.fit(X, y, epochs=1)
    assert blas_threads() == before
