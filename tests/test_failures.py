"""Failure injection: a training run killed while writing a checkpoint,
Ctrl-C during a fit, and saving onto a full disk or an unwritable path.

* SIGKILL in the middle of ``np.savez`` for the second checkpoint (a child
  process, which imports the installed csoftmax: it runs in a folder of its
  own): the checkpoint file is still the first, complete one, it loads and
  resumes to the very weights of an uninterrupted run, and the half-written
  temporary file beside it is never taken for it.
* SIGINT sent to a child in the middle of a long fit: the fit returns (the
  child exits 0) at a batch boundary, with a History of the complete epochs,
  ``interrupted`` set, weights equal to a replay of exactly the steps taken,
  and the default SIGINT handler back.
* Saving models, checkpoints and plots where it cannot succeed -- a folder
  that does not exist, a parent that is a file, a target that is a folder,
  an unwritable folder (not as root: root writes anyway), a disk that fills
  up (ENOSPC from write or fsync, simulated; EFBIG from a real RLIMIT_FSIZE
  in a child) -- raises an OSError that names the place, and leaves no file,
  partial or temporary, behind; an existing file keeps its content.

/dev/full is not used: a save is a temporary file in the target's folder
renamed over the target, so "saving to /dev/full" would write a temporary
file into /dev and, as root, rename it over the device node.
"""

from __future__ import annotations

import errno
import hashlib
import importlib.util
import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest

import csoftmax as cs
from csoftmax.model import ModelFileError

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")

# The data, model and trainer of the child processes, shared with the parent.
SETUP = textwrap.dedent(
    """
    import numpy as np
    import csoftmax as cs

    def blobs(n, d, q, seed=0):
        rng = np.random.default_rng(seed)
        centers = rng.normal(scale=2.0, size=(q, d))
        y = rng.integers(0, q, n)
        return (centers[y] + rng.normal(size=(n, d))).astype(np.float32), y

    def make_trainer(d, q, shuffle=True, batch_size=64, optimizer=None):
        return cs.Trainer(
            cs.SoftmaxRegression(d, q, seed=1),
            optimizer or cs.SGD(lr=0.1, momentum=0.9, weight_decay=1e-4),
            batch_size=batch_size,
            shuffle=shuffle,
            seed=2,
            progress=False,
        )
    """
)
_shared: dict = {}
exec(SETUP, _shared)  # the same blobs and make_trainer here
blobs, make_trainer = _shared["blobs"], _shared["make_trainer"]


def run_child(code: str, cwd: Path, timeout: float = 120, **kw) -> subprocess.CompletedProcess:
    """Run code in a fresh interpreter in cwd (so that it imports the
    installed csoftmax, not a source folder)."""
    return subprocess.run(
        [sys.executable, "-c", SETUP + textwrap.dedent(code)],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
        **kw,
    )


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


# ---------------------------------------------------------------------------
# SIGKILL while a checkpoint is being written

KILL_CHILD = """
import hashlib, os, signal, sys, io
import numpy
from csoftmax.callbacks import Callback, Checkpoint

ckpt = sys.argv[1] if len(sys.argv) > 1 else "ckpt.npz"
real_savez = numpy.savez
calls = 0

def dying_savez(file, *args, **kwargs):
    global calls
    calls += 1
    if calls < 2:
        return real_savez(file, *args, **kwargs)
    # The second checkpoint: write part of it, then die at once.
    buf = io.BytesIO()
    real_savez(buf, *args, **kwargs)
    data = buf.getvalue()
    file.write(data[: len(data) // 2])
    file.flush()
    os.fsync(file.fileno())
    print("killing", flush=True)
    os.kill(os.getpid(), signal.SIGKILL)

numpy.savez = dying_savez

class Report(Callback):
    def on_epoch_end(self, trainer, epoch, logs):
        digest = hashlib.sha256(open("ckpt.npz", "rb").read()).hexdigest()
        print(f"saved epoch {epoch} {digest}", flush=True)

X, y = blobs(600, 10, 4)
t = make_trainer(10, 4)
t.fit(X, y, epochs=5, callbacks=[Checkpoint("ckpt.npz"), Report()])
print("not killed", flush=True)
"""


def test_sigkill_while_writing_a_checkpoint_keeps_the_previous_one(tmp_path):
    proc = run_child(KILL_CHILD, tmp_path)
    assert proc.returncode == -signal.SIGKILL, (proc.returncode, proc.stdout, proc.stderr)
    lines = proc.stdout.splitlines()
    assert lines[-1] == "killing" and "not killed" not in lines, lines
    saved = [line.split() for line in lines if line.startswith("saved")]
    assert len(saved) == 1 and saved[0][2] == "0", lines  # the first checkpoint only

    ckpt = tmp_path / "ckpt.npz"
    assert sha256(ckpt) == saved[0][3], "the checkpoint is not the first, complete one"
    # The half-written second checkpoint is a temporary file beside it, under
    # a name that no loader or glob for the checkpoint picks up.
    others = sorted(p.name for p in tmp_path.iterdir() if p.name != "ckpt.npz")
    assert len(others) == 1 and others[0].startswith("."), others
    assert sorted(p.name for p in tmp_path.glob("*.npz")) == ["ckpt.npz"]
    assert sorted(p.name for p in tmp_path.glob("ckpt*")) == ["ckpt.npz"]
    partial = tmp_path / others[0]
    assert 0 < partial.stat().st_size < ckpt.stat().st_size * 1.5
    with pytest.raises(ModelFileError):
        make_trainer(10, 4).load_checkpoint(partial)

    # It loads, and resumes to the weights of an uninterrupted run.
    X, y = blobs(600, 10, 4)
    straight = make_trainer(10, 4)
    straight.fit(X, y, epochs=5)
    loaded = make_trainer(10, 4)
    loaded.load_checkpoint(ckpt)
    assert loaded.epoch == 1 and len(loaded.history) == 1
    resumed = make_trainer(10, 4)
    h = resumed.fit(X, y, epochs=5, resume_from=ckpt)
    assert len(h) == 5 and resumed.epoch == 5
    assert resumed.model.weight.tobytes() == straight.model.weight.tobytes()
    assert resumed.model.bias.tobytes() == straight.model.bias.tobytes()
    assert h.train_loss == straight.history.train_loss
    # A new checkpoint in the same folder is written as usual, beside the stray.
    resumed.save_checkpoint(ckpt)
    make_trainer(10, 4).load_checkpoint(ckpt)


# ---------------------------------------------------------------------------
# Ctrl-C during fit

SIGINT_CHILD = """
import json, signal, sys
import numpy as np
from threadpoolctl import threadpool_limits
from csoftmax.callbacks import Callback

class CountingSGD(cs.SGD):
    steps = 0
    def step(self, *args, **kwargs):
        super().step(*args, **kwargs)
        self.steps += 1

class Started(Callback):
    def on_epoch_end(self, trainer, epoch, logs):
        if epoch == 0:
            print("started", flush=True)

N, D, Q, B = 200_000, 50, 10, 128

X, y = blobs(N, D, Q)
opt = CountingSGD(lr=0.05, momentum=0.9)
t = make_trainer(D, Q, shuffle=False, batch_size=B, optimizer=opt)
h = t.fit(X, y, epochs=10_000, callbacks=[Started()])
steps = opt.steps

# Replay exactly `steps` steps of the textbook loop (shuffle=False).
from csoftmax._steps import StepRunner
m = cs.SoftmaxRegression(D, Q, seed=1)
replay = cs.SGD(lr=0.05, momentum=0.9)
batches = -(-N // B)
with threadpool_limits(limits=1, user_api="blas"):
    runner = StepRunner(m, B)  # the trainer's own step (fused or GEMM route)
    for k in range(steps):
        start = (k % batches) * B
        runner.step(X, y, None, start, min(B, N - start), 1.0)
        replay.step((m.weight, m.bias), (runner.grad_w, runner.grad_b))
print(json.dumps({
    "epochs": len(h),
    "interrupted": h.interrupted,
    "trainer_epoch": t.epoch,
    "steps": steps,
    "batches": batches,
    "same_weights": m.weight.tobytes() == t.model.weight.tobytes()
    and m.bias.tobytes() == t.model.bias.tobytes(),
    "finite": bool(np.isfinite(t.model.weight).all()),
    "handler_restored": signal.getsignal(signal.SIGINT) is signal.default_int_handler,
    "history_keys_agree": all(
        len(h[k]) == len(h) for k in ("train_loss", "train_acc", "val_loss", "val_acc", "seconds")
    ),
}), flush=True)
"""


def test_ctrl_c_stops_fit_at_a_batch_boundary(tmp_path):
    proc = subprocess.Popen(
        [sys.executable, "-c", SETUP + textwrap.dedent(SIGINT_CHILD)],
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 120
        line = proc.stdout.readline()
        assert line.strip() == "started", (
            line,
            proc.stderr.read() if proc.poll() is not None else "",
        )
        assert time.monotonic() < deadline
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 0, (proc.returncode, out, err)
    result = json.loads(out.strip().splitlines()[-1])
    assert result["interrupted"] is True, result
    assert result["epochs"] >= 1 and result["trainer_epoch"] == result["epochs"], result
    # The History holds the complete epochs: those of the steps taken.
    assert result["epochs"] == result["steps"] // result["batches"], result
    assert result["handler_restored"] and result["history_keys_agree"], result
    # The weights are those after exactly the steps taken: none half done.
    assert result["finite"], result
    assert result["same_weights"], result


# ---------------------------------------------------------------------------
# Full disk, unwritable paths


def _history():
    h = cs.History()
    for e in range(3):
        h.append(
            {
                "train_loss": 1 / (e + 1),
                "train_acc": 0.5 + e / 10,
                "val_loss": 1.0,
                "val_acc": 0.6,
                "seconds": 0.1,
            }
        )
    return h


def _writers():
    """name -> write(path) for every writer of a file."""
    model = cs.SoftmaxRegression(784, 10, seed=0)
    trainer = cs.Trainer(
        cs.SoftmaxRegression(784, 10, seed=0), cs.SGD(momentum=0.9), progress=False
    )
    X = np.random.default_rng(0).random((20, 784), dtype=np.float32)
    trainer.fit(X, np.arange(20) % 10, epochs=1)
    out = {
        "model.save": model.save,
        "Trainer.save_checkpoint": trainer.save_checkpoint,
    }
    if importlib.util.find_spec("csoftmax.plot") and importlib.util.find_spec("matplotlib"):
        from csoftmax import plot

        images = np.random.default_rng(1).random((4, 784))
        out["plot_history"] = lambda path: plot.plot_history(_history(), path)
        out["plot_predictions"] = lambda path: plot.plot_predictions(
            images, [0, 1, 2, 3], [0, 1, 2, 9], path, n=4, cols=2
        )
    return out


WRITERS = _writers()
WRITER_NAMES = ["model.save", "Trainer.save_checkpoint", "plot_history", "plot_predictions"]


def writer(name):
    if name not in WRITERS:
        pytest.skip(f"{name}: csoftmax.plot or matplotlib is not available")
    return WRITERS[name]


def listing(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir()) if p.is_file()}


@pytest.mark.parametrize("name", WRITER_NAMES)
def test_saving_into_a_missing_folder(tmp_path, name):
    write = writer(name)
    target = tmp_path / "no-such-folder" / "out.file"
    with pytest.raises(OSError) as info:
        write(target)
    assert isinstance(info.value, FileNotFoundError)
    assert "no-such-folder" in str(info.value)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("name", WRITER_NAMES)
def test_saving_under_a_file(tmp_path, name):
    write = writer(name)
    (tmp_path / "a-file").write_bytes(b"keep me")
    with pytest.raises(OSError) as info:
        write(tmp_path / "a-file" / "out.file")
    assert isinstance(info.value, NotADirectoryError)
    assert "a-file" in str(info.value)
    assert listing(tmp_path) == {"a-file": b"keep me"}


@pytest.mark.parametrize("name", WRITER_NAMES)
def test_saving_over_a_folder(tmp_path, name):
    write = writer(name)
    (tmp_path / "a-folder").mkdir()
    (tmp_path / "a-folder" / "inside").write_bytes(b"keep me")
    with pytest.raises(OSError):
        write(tmp_path / "a-folder")
    assert [p.name for p in tmp_path.iterdir()] == ["a-folder"]
    assert listing(tmp_path / "a-folder") == {"inside": b"keep me"}


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into a 0o500 folder all the same")
@pytest.mark.parametrize("name", WRITER_NAMES)
def test_saving_into_an_unwritable_folder(tmp_path, name):
    write = writer(name)
    folder = tmp_path / "locked"
    folder.mkdir()
    (folder / "out.file").write_bytes(b"old")
    folder.chmod(0o500)
    try:
        with pytest.raises(PermissionError) as info:
            write(folder / "out.file")
        assert "locked" in str(info.value)
    finally:
        folder.chmod(0o700)
    assert listing(folder) == {"out.file": b"old"}


def _enospc(*args, **kwargs):
    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))


@pytest.mark.parametrize("where", ["fsync", "write", "close"])
@pytest.mark.parametrize("name", WRITER_NAMES)
def test_a_full_disk_leaves_the_old_file_and_nothing_else(tmp_path, monkeypatch, name, where):
    """ENOSPC from fsync, from a write in the middle of the file (after part
    of it was written), or from close: the error comes out as it is, the
    previous file is untouched and no temporary file is left."""
    write = writer(name)
    target = tmp_path / "out.file"
    target.write_bytes(b"the previous version")
    if where == "fsync":
        monkeypatch.setattr(os, "fsync", _enospc)
    else:
        written = [0]

        def full_write(f, data):
            if where == "write" and written[0] > 100:
                _enospc()  # part of the file is already out
            written[0] += len(data)
            return f.write(data)

        def full_close(f):
            f.close()
            if where == "close":
                _enospc()

        real_fdopen = os.fdopen

        def fdopen(fd, mode="r", *args, **kwargs):
            f = real_fdopen(fd, mode, *args, **kwargs)
            return _Wrapped(f, full_write, full_close) if "w" in mode else f

        monkeypatch.setattr(os, "fdopen", fdopen)
    with pytest.raises(OSError) as info:
        write(target)
    assert info.value.errno == errno.ENOSPC
    assert listing(tmp_path) == {"out.file": b"the previous version"}


class _Wrapped:
    """A file object whose write and close can fail like a full disk's."""

    def __init__(self, f, write, close):
        self._f, self._write, self._close = f, write, close

    def write(self, data):
        return self._write(self._f, data)

    def close(self):
        return self._close(self._f)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def __getattr__(self, name):
        return getattr(self._f, name)


RLIMIT_CHILD = """
import json, os, resource, signal, sys
from pathlib import Path
import numpy as np

signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # then a write past the limit fails with EFBIG
names = json.loads(sys.argv[1])
model = cs.SoftmaxRegression(784, 10, seed=0)  # 31 KB of weights
trainer = make_trainer(784, 10)
trainer.fit(np.ones((8, 784), np.float32), np.arange(8), epochs=1)
writers = {"model.save": model.save, "Trainer.save_checkpoint": trainer.save_checkpoint}
try:
    from csoftmax import plot
    images = np.random.default_rng(1).random((18, 784))
    h = cs.History()
    for e in range(3):
        h.append(dict(train_loss=1.0, train_acc=0.5, val_loss=1.0, val_acc=0.5, seconds=0.1))
    writers["plot_history"] = lambda p: plot.plot_history(h, p)
    writers["plot_predictions"] = lambda p: plot.plot_predictions(
        images, np.arange(18) % 10, np.arange(18) % 7, p
    )
except ImportError:
    pass
for name in names:
    if name not in writers:
        continue
    folder = Path(name)
    folder.mkdir()
    (folder / "out.file").write_bytes(b"old")
    resource.setrlimit(resource.RLIMIT_FSIZE, (1024, resource.RLIM_INFINITY))
    try:
        writers[name](folder / "out.file")
        outcome = "saved"
    except OSError as e:
        outcome = f"OSError {e.errno}"
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, (resource.RLIM_INFINITY, resource.RLIM_INFINITY))
    files = sorted(p.name for p in folder.iterdir())
    print(json.dumps({"name": name, "outcome": outcome, "files": files,
                      "old": (folder / "out.file").read_bytes() == b"old"}), flush=True)
"""


def test_a_real_write_error_from_a_file_size_limit(tmp_path):
    """RLIMIT_FSIZE of 1 KB in a child: the kernel fails the write (EFBIG)
    in the middle of each file; each writer raises OSError and leaves the
    old file and nothing else."""
    proc = subprocess.run(
        [sys.executable, "-c", SETUP + textwrap.dedent(RLIMIT_CHILD), json.dumps(WRITER_NAMES)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert proc.returncode == 0, (proc.returncode, proc.stdout, proc.stderr)
    results = [json.loads(line) for line in proc.stdout.splitlines()]
    assert {r["name"] for r in results} >= {"model.save", "Trainer.save_checkpoint"}
    for r in results:
        assert r["outcome"] == f"OSError {errno.EFBIG}", r
        assert r["files"] == ["out.file"] and r["old"], r
