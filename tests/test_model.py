"""SoftmaxRegression: BLAS forward/backward against NumPy and finite
differences, every cross-entropy option, save/load and its failure modes."""

import itertools
import json
import os
import zipfile

import numpy as np
import pytest
import reference as ref
from helpers import TOLERANCES

import csoftmax as cs
from csoftmax.model import ModelFileError


def make_model(d=7, q=5, dtype=np.float64, seed=0):
    m = cs.SoftmaxRegression(d, q, dtype=dtype, init_std=0.5, seed=seed)
    m.bias[:] = np.random.default_rng(seed + 1).normal(size=q)
    return m


def test_init_follows_the_textbook():
    m = cs.SoftmaxRegression(784, 10, seed=0)
    assert m.weight.shape == (784, 10) and m.bias.shape == (10,)
    assert m.weight.dtype == np.float32 and m.bias.dtype == np.float32
    assert np.all(m.bias == 0)
    assert abs(float(m.weight.std()) - 0.01) < 0.0005
    assert abs(float(m.weight.mean())) < 0.0005
    same = cs.SoftmaxRegression(784, 10, seed=0)
    assert np.array_equal(m.weight, same.weight)


@pytest.mark.parametrize(
    "kwargs, error",
    [
        (dict(n_features=0, n_classes=3), ValueError),
        (dict(n_features=3, n_classes=0), ValueError),
        (dict(n_features=2.5, n_classes=3), TypeError),
        (dict(n_features=3, n_classes=3, dtype=np.int32), TypeError),
        (dict(n_features=3, n_classes=3, init_std=-1.0), ValueError),
        (dict(n_features=3, n_classes=3, init_std=float("nan")), ValueError),
    ],
)
def test_constructor_checks(kwargs, error):
    with pytest.raises(error):
        cs.SoftmaxRegression(**kwargs)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("layout", ["C", "F", "strided", "int"])
def test_logits_is_X_W_plus_b(dtype, layout):
    rng = np.random.default_rng(3)
    m = make_model(9, 4, dtype)
    X = rng.normal(size=(33, 9))
    if layout == "F":
        X = np.asfortranarray(X)
    elif layout == "strided":
        X = rng.normal(size=(66, 20))[::2, 3:12]
    elif layout == "int":
        X = rng.integers(-3, 4, size=(33, 9))
    want = X.astype(np.float64) @ m.weight.astype(np.float64) + m.bias
    got = m.logits(X)
    assert got.dtype == dtype and got.shape == want.shape
    np.testing.assert_allclose(got, want, rtol=1e-5 if dtype == np.float32 else 1e-12, atol=1e-5)
    np.testing.assert_allclose(m.predict_proba(X), ref.softmax(want), **TOLERANCES[np.dtype(dtype)])
    assert np.array_equal(m.predict(X), np.argmax(got, axis=1))


def test_logits_with_out_and_empty_input():
    m = make_model()
    out = np.empty((4, 5))
    assert m.logits(np.ones((4, 7)), out=out) is out
    assert m.logits(np.empty((0, 7))).shape == (0, 5)
    with pytest.raises(ValueError, match="^X"):
        m.logits(np.ones((4, 6)))
    with pytest.raises(ValueError, match="^X"):
        m.logits(np.ones(7))
    with pytest.raises(TypeError, match="^out"):
        m.logits(np.ones((4, 7)), out=np.empty((4, 5), np.float32))


OPTIONS = [
    dict(weight=w, ignore_index=ii, reduction=r, label_smoothing=ls)
    for w, ii, r, ls in itertools.product(
        [None, "random"], [-100, 2], ["mean", "sum", "none"], [0.0, 0.2]
    )
]


@pytest.mark.parametrize("options", OPTIONS, ids=lambda o: "-".join(map(str, o.values())))
def test_loss_and_grad_matches_the_reference(options):
    rng = np.random.default_rng(4)
    m = make_model(6, 4)
    X = rng.normal(size=(40, 6))
    y = rng.integers(0, 4, size=40)
    opts = dict(options)
    if opts["weight"] == "random":
        opts["weight"] = rng.uniform(0.5, 2.0, size=4)
    loss, gw, gb = m.loss_and_grad(X, y, **opts)
    logits = X @ m.weight + m.bias
    want_loss, g = ref.cross_entropy(logits, y, **opts)
    np.testing.assert_allclose(loss, want_loss, rtol=1e-12, atol=1e-13)
    np.testing.assert_allclose(gw, X.T @ g, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(gb, g.sum(axis=0), rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("label_smoothing", [0.0, 0.3])
@pytest.mark.parametrize("weighted", [False, True])
def test_loss_and_grad_matches_finite_differences(label_smoothing, weighted):
    rng = np.random.default_rng(5)
    m = make_model(5, 3)
    X = rng.normal(size=(20, 5))
    y = rng.integers(0, 3, size=20)
    opts = dict(label_smoothing=label_smoothing)
    if weighted:
        opts["weight"] = np.array([0.5, 1.0, 2.0])
    _, gw, gb = m.loss_and_grad(X, y, **opts)
    h = 1e-6
    for param, grad in ((m.weight, gw), (m.bias, gb)):
        for idx in np.ndindex(param.shape):
            keep = param[idx]
            param[idx] = keep + h
            up = float(m.loss_and_grad(X, y, **opts)[0])
            param[idx] = keep - h
            down = float(m.loss_and_grad(X, y, **opts)[0])
            param[idx] = keep
            assert abs((up - down) / (2 * h) - grad[idx]) < 1e-7, (idx, grad[idx])


def test_loss_and_grad_float32_close_to_float64():
    rng = np.random.default_rng(6)
    m64 = make_model(8, 4)
    m32 = cs.SoftmaxRegression(8, 4, dtype=np.float32)
    m32.weight[:] = m64.weight
    m32.bias[:] = m64.bias
    X = rng.normal(size=(50, 8))
    y = rng.integers(0, 4, size=50)
    l64, gw64, gb64 = m64.loss_and_grad(X, y)
    l32, gw32, gb32 = m32.loss_and_grad(X.astype(np.float32), y)
    assert gw32.dtype == np.float32 and np.asarray(l32).dtype == np.float32
    np.testing.assert_allclose(l32, l64, rtol=1e-5)
    np.testing.assert_allclose(gw32, gw64, rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(gb32, gb64, rtol=1e-4, atol=1e-6)


def test_loss_and_grad_rejects_bad_labels_before_changing_anything():
    m = make_model()
    w, b = m.weight.copy(), m.bias.copy()
    with pytest.raises(ValueError, match="^target: label 9 is out of range"):
        m.loss_and_grad(np.ones((2, 7)), [0, 9])
    assert np.array_equal(m.weight, w) and np.array_equal(m.bias, b)


# ------------------------------------------------------------- save, load --


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_save_load_round_trip(tmp_path, dtype):
    m = make_model(6, 3, dtype)
    m.class_names = ["a", "b", "c"]
    path = tmp_path / "model.npz"
    m.save(path)
    assert os.listdir(tmp_path) == ["model.npz"]  # no temporary left behind
    back = cs.SoftmaxRegression.load(path)
    assert back.dtype == dtype and back.class_names == ["a", "b", "c"]
    assert back.weight.tobytes() == m.weight.tobytes()
    assert back.bias.tobytes() == m.bias.tobytes()
    X = np.random.default_rng(0).normal(size=(5, 6))
    assert np.array_equal(back.logits(X), m.logits(X))
    m.save(str(path))  # overwrite in place, str path
    assert cs.SoftmaxRegression.load(str(path)).class_names == ["a", "b", "c"]


def test_a_failed_save_leaves_no_file(tmp_path, monkeypatch):
    m = make_model()
    path = tmp_path / "model.npz"
    m.save(path)
    before = path.read_bytes()

    def broken_savez(*args, **kwargs):
        raise OSError("No space left on device")

    monkeypatch.setattr(np, "savez", broken_savez)
    with pytest.raises(OSError, match="No space"):
        m.save(path)
    assert sorted(os.listdir(tmp_path)) == ["model.npz"]
    assert path.read_bytes() == before
    with pytest.raises(OSError):
        m.save(tmp_path / "missing-folder" / "model.npz")


def write_npz(path, **arrays):
    with open(path, "wb") as f:
        np.savez(f, **arrays)


def header(**changes):
    h = {
        "format": "csoftmax.SoftmaxRegression",
        "version": 1,
        "dtype": "float64",
        "n_features": 2,
        "n_classes": 3,
        "class_names": None,
    }
    h.update(changes)
    return np.frombuffer(json.dumps(h).encode(), dtype=np.uint8)


GOOD = dict(weight=np.zeros((2, 3)), bias=np.zeros(3))


@pytest.mark.parametrize(
    "arrays, message",
    [
        (dict(header=header(format="other"), **GOOD), "not a csoftmax"),
        (dict(header=header(version=2), **GOOD), "version"),
        (dict(header=header(dtype="int8"), **GOOD), "dtype"),
        (dict(header=header(n_features=-1), **GOOD), "n_features"),
        (dict(header=header(class_names=["x"]), **GOOD), "class_names"),
        (dict(header=np.frombuffer(b"{not json", np.uint8), **GOOD), "JSON"),
        (dict(header=header(), weight=np.zeros((3, 2)), bias=np.zeros(3)), "weight"),
        (dict(header=header(), weight=np.zeros((2, 3), np.float32), bias=np.zeros(3)), "weight"),
        (dict(header=header(), weight=np.zeros((2, 3))), "expected the arrays"),
        (dict(header=header(), extra=np.zeros(1), **GOOD), "expected the arrays"),
    ],
)
def test_load_rejects_malformed_models(tmp_path, arrays, message):
    path = tmp_path / "bad.npz"
    write_npz(path, **arrays)
    with pytest.raises(ModelFileError, match=message):
        cs.SoftmaxRegression.load(path)


def test_load_never_unpickles(tmp_path):
    path = tmp_path / "pickled.npz"
    write_npz(path, header=header(), weight=np.array([object()], dtype=object), bias=np.zeros(3))
    with pytest.raises(ModelFileError):
        cs.SoftmaxRegression.load(path)


@pytest.mark.parametrize("damage", ["missing", "empty", "truncated", "bitflip", "npy", "text"])
def test_load_reports_damaged_files(tmp_path, damage):
    path = tmp_path / "model.npz"
    make_model(2, 3).save(path)
    data = path.read_bytes()
    if damage == "missing":
        path.unlink()
    elif damage == "empty":
        path.write_bytes(b"")
    elif damage == "truncated":
        path.write_bytes(data[: len(data) // 2])
    elif damage == "bitflip":
        with zipfile.ZipFile(path) as z:
            info = z.getinfo("weight.npy")
        flipped = bytearray(data)
        flipped[info.header_offset + 100] ^= 0xFF  # inside the stored array
        path.write_bytes(bytes(flipped))
    elif damage == "npy":
        np.save(path.with_suffix(""), np.zeros(3))
        path = tmp_path / "model.npy"
    elif damage == "text":
        path.write_text("hello")
    with pytest.raises(ModelFileError, match=str(path.name)):
        cs.SoftmaxRegression.load(path)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_linear_backward_overwrites_whatever_the_outputs_held(dtype):
    """beta = 0 means overwrite (as in BLAS), even over nan left in the buffers."""
    from csoftmax import _core

    rng = np.random.default_rng(8)
    X = rng.normal(size=(31, 6)).astype(dtype)
    G = rng.normal(size=(31, 4)).astype(dtype)
    gw = np.full((6, 4), np.nan, dtype)
    gb = np.full(4, np.nan, dtype)
    cs.SoftmaxRegression(6, 4)  # any model: makes sure SciPy's BLAS is handed in
    from csoftmax.model import _ensure_blas

    _ensure_blas()
    _core.linear_backward(X, G, gw, gb)
    np.testing.assert_allclose(gw, X.T @ G, rtol=1e-5)
    np.testing.assert_allclose(gb, G.sum(axis=0), rtol=1e-5)
    _core.linear_backward(X, G, gw, gb, 1.0, 1.0)  # beta = 1 accumulates
    np.testing.assert_allclose(gb, 2 * G.sum(axis=0), rtol=1e-5)


def test_logits_into_a_single_row_out_of_any_row_stride():
    """Found by the long fuzz run: a one-row out whose (unused) row stride is
    negative was refused as an "unsupported row stride"."""
    m = cs.SoftmaxRegression(3, 2, seed=0)
    X = np.ones((1, 3), np.float32)
    out = np.zeros((3, 2), np.float32)[::-1][:1]  # row stride -8
    assert m.logits(X, out=out) is out
    np.testing.assert_allclose(out, X @ m.weight + m.bias, rtol=1e-6)
