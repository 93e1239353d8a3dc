"""Training on data that is not (or not all) in memory as floats: uint8
pixels with a scale, np.memmap files, and iterables of batches."""

import os

import numpy as np
import pytest
from helpers import assert_same_bits

import csoftmax as cs
from csoftmax import datasets

REQUIRE_DATA = os.environ.get("CSOFTMAX_REQUIRE_DATA") == "1"


def pixels(n=1000, d=20, q=5, seed=0):
    rng = np.random.default_rng(seed)
    centers = rng.integers(30, 220, (q, d))
    y = rng.integers(0, q, n)
    x = np.clip(centers[y] + rng.normal(0, 40, (n, d)), 0, 255).astype(np.uint8)
    return x, y


def trainer(d=20, q=5, **kw):
    opts = dict(batch_size=64, seed=0, progress=False)
    opts.update(kw)
    return cs.Trainer(cs.SoftmaxRegression(d, q, seed=0), cs.SGD(lr=0.5), **opts)


def weights(t):
    return t.model.weight.copy(), t.model.bias.copy()


@pytest.mark.parametrize("q", [5, 40])  # the fused route and the GEMM route
def test_uint8_with_scale_trains_like_the_scaled_floats(q):
    x8, y = pixels(q=q)
    a, b = trainer(q=q), trainer(q=q)
    ha = a.fit(x8, y, epochs=3, scale=1 / 255, validation_data=(x8[:200], y[:200]))
    hb = b.fit(x8 / np.float32(255), y, epochs=3, validation_data=(x8[:200] / 255, y[:200]))
    for got, want in zip(weights(a), weights(b)):
        np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(ha.train_loss, hb.train_loss, rtol=1e-5)
    assert ha.val_acc == pytest.approx(hb.val_acc, abs=0.01)
    ev = a.evaluate(x8, y, scale=1 / 255)
    assert ev["accuracy"] == pytest.approx(a.evaluate(x8 / np.float32(255), y)["accuracy"])


def test_scale_is_optional_for_uint8_and_refused_for_floats():
    x8, y = pixels()
    a, b = trainer(), trainer()
    a.fit(x8, y, epochs=1, validation_data=(x8, y))  # uint8 values as they are
    b.fit(x8.astype(np.float32), y, epochs=1, validation_data=(x8, y))
    assert_same_bits(a.model.weight, b.model.weight)
    t = trainer()
    with pytest.raises(ValueError, match="scale: applies to uint8 input only"):
        t.fit(x8.astype(np.float32), y, epochs=1, scale=1 / 255)
    with pytest.raises(ValueError, match="scale: expected a finite number"):
        t.fit(x8, y, epochs=1, scale=float("nan"))
    with pytest.raises(ValueError, match="scale: applies to uint8 input only"):
        t.fit(x8, y, epochs=1, scale=0.5, validation_data=(x8.astype(np.float32), y))
    assert t.epoch == 0


@pytest.mark.parametrize("dtype", [np.float32, np.uint8])
def test_memmap_trains_exactly_like_the_array_in_memory(tmp_path, dtype):
    x8, y = pixels()
    x = x8 if dtype == np.uint8 else x8 / np.float32(255)
    scale = 1 / 255 if dtype == np.uint8 else None
    path = tmp_path / "x.bin"
    mm = np.memmap(path, dtype=dtype, mode="w+", shape=x.shape)
    mm[:] = x
    mm.flush()
    del mm
    mm = np.memmap(path, dtype=dtype, mode="r", shape=x.shape)
    a, b = trainer(), trainer()
    a.fit(mm, y, epochs=2, scale=scale)
    b.fit(x, y, epochs=2, scale=scale)
    for got, want in zip(weights(a), weights(b)):
        assert_same_bits(got, want)


def test_iterable_of_batches_is_the_unshuffled_loop():
    x8, y = pixels()
    x = x8 / np.float32(255)
    batches = [(x[s : s + 64], y[s : s + 64]) for s in range(0, len(x), 64)]
    a, b = trainer(), trainer(shuffle=False)
    ha = a.fit(batches, epochs=2)  # a list: iterated afresh each epoch
    hb = b.fit(x, y, epochs=2)
    for got, want in zip(weights(a), weights(b)):
        assert_same_bits(got, want)
    assert ha.train_loss == hb.train_loss and ha.train_acc == hb.train_acc

    class Reader:  # a re-iterable, e.g. reading chunks of a file each epoch
        def __iter__(self):
            for s in range(0, len(x8), 64):
                yield x8[s : s + 64], y[s : s + 64]

    c = trainer()
    c.fit(Reader(), epochs=2, scale=1 / 255)
    np.testing.assert_allclose(c.model.weight, b.model.weight, rtol=1e-4, atol=1e-5)


def test_iterable_errors():
    x8, y = pixels()
    t = trainer()
    one_shot = iter([(x8[:64], y[:64])])
    t.fit(one_shot, epochs=1, scale=1 / 255)  # one epoch is fine
    with pytest.raises(ValueError, match="exhausted after one epoch"):
        t.fit(iter([(x8[:64], y[:64])]), epochs=2, scale=1 / 255)
    with pytest.raises(TypeError, match="pairs"):
        t.fit([x8[:64]], epochs=1, scale=1 / 255)
    with pytest.raises(TypeError, match="y: labels are required"):
        t.fit(x8, epochs=1, scale=1 / 255)
    with pytest.raises(ValueError, match="y: label 9 is out of range"):
        t.fit([(x8[:64], np.full(64, 9))], epochs=1, scale=1 / 255)


def _real_data():
    try:
        return datasets.load_fashion_mnist(download=False, raw=True)
    except datasets.DatasetError as e:
        if REQUIRE_DATA:
            pytest.fail(f"{e}, and CSOFTMAX_REQUIRE_DATA=1")
        pytest.skip(str(e))


def test_memmap_of_the_real_data_reaches_the_in_memory_accuracy(tmp_path):
    """Fashion-MNIST's raw pixels in a file, trained on through np.memmap with
    scale=1/255, against the float32 arrays in memory: same accuracy."""
    (x8, y), (x8_test, y_test) = _real_data()
    path = tmp_path / "train.u8"
    x8.tofile(path)
    mm = np.memmap(path, dtype=np.uint8, mode="r", shape=x8.shape)
    accs = []
    for x, x_test, scale in ((mm, x8_test, 1 / 255),
                             (x8 / np.float32(255), x8_test / np.float32(255), None)):
        t = cs.Trainer(cs.SoftmaxRegression(784, 10, seed=0), cs.SGD(lr=0.1),
                       batch_size=256, seed=0, progress=False)
        h = t.fit(x, y, epochs=3, validation_data=(x_test, y_test), scale=scale)
        accs.append(h.val_acc[-1])
    assert accs[0] > 0.80
    assert accs[0] == pytest.approx(accs[1], abs=0.005)
