"""SGD against torch.optim.SGD's update rule, and the schedules."""

import math

import numpy as np
import pytest

from csoftmax import SGD
from csoftmax.optim import compose, cosine_schedule, step_schedule, warmup_schedule


def reference_sgd(w, b, grads, lr, momentum, weight_decay, nesterov):
    """torch.optim.SGD (dampening 0) written out, weight decay on w only."""
    w, b = w.copy(), b.copy()
    bufs = [None, None]
    for gw, gb in grads:
        for i, (p, g, decay) in enumerate(((w, gw.copy(), True), (b, gb.copy(), False))):
            if weight_decay and decay:
                g = g + weight_decay * p
            if momentum:
                bufs[i] = g.copy() if bufs[i] is None else momentum * bufs[i] + g
                g = g + momentum * bufs[i] if nesterov else bufs[i]
            p -= lr * g
    return w, b


@pytest.mark.parametrize(
    "momentum, weight_decay, nesterov",
    [
        (0.0, 0.0, False),
        (0.9, 0.0, False),
        (0.9, 1e-2, False),
        (0.5, 1e-3, True),
        (0.0, 0.1, False),
    ],
)
def test_sgd_update_rule(momentum, weight_decay, nesterov):
    rng = np.random.default_rng(0)
    w, b = rng.normal(size=(4, 3)), rng.normal(size=3)
    grads = [(rng.normal(size=(4, 3)), rng.normal(size=3)) for _ in range(5)]
    want_w, want_b = reference_sgd(w, b, grads, 0.1, momentum, weight_decay, nesterov)
    opt = SGD(lr=0.1, momentum=momentum, weight_decay=weight_decay, nesterov=nesterov)
    for gw, gb in grads:
        opt.step((w, b), (gw.copy(), gb.copy()))
    np.testing.assert_allclose(w, want_w, rtol=1e-13)
    np.testing.assert_allclose(b, want_b, rtol=1e-13)


def test_sgd_matches_torch():
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(1)
    w0, b0 = rng.normal(size=(4, 3)), rng.normal(size=3)
    grads = [(rng.normal(size=(4, 3)), rng.normal(size=3)) for _ in range(4)]
    tw, tb = torch.tensor(w0, requires_grad=True), torch.tensor(b0, requires_grad=True)
    topt = torch.optim.SGD(
        [{"params": [tw], "weight_decay": 0.01}, {"params": [tb], "weight_decay": 0.0}],
        lr=0.05,
        momentum=0.8,
        nesterov=True,
    )
    w, b = w0.copy(), b0.copy()
    opt = SGD(lr=0.05, momentum=0.8, weight_decay=0.01, nesterov=True)
    for gw, gb in grads:
        tw.grad, tb.grad = torch.tensor(gw), torch.tensor(gb)
        topt.step()
        opt.step((w, b), (gw.copy(), gb.copy()))
    np.testing.assert_allclose(w, tw.detach().numpy(), rtol=1e-12)
    np.testing.assert_allclose(b, tb.detach().numpy(), rtol=1e-12)


def test_sgd_updates_in_place_and_keeps_dtype():
    w, b = np.ones((2, 2), np.float32), np.zeros(2, np.float32)
    ids = id(w), id(b)
    SGD(lr=0.5, momentum=0.9).step((w, b), (np.ones((2, 2), np.float32), np.ones(2, np.float32)))
    assert (id(w), id(b)) == ids and w.dtype == np.float32 and b.dtype == np.float32
    assert np.all(w == 0.5) and np.all(b == -0.5)


@pytest.mark.parametrize(
    "kwargs",
    [
        dict(lr=-1),
        dict(lr=float("nan")),
        dict(momentum=-0.1),
        dict(weight_decay=-1),
        dict(nesterov=True),
    ],
)
def test_sgd_checks(kwargs):
    with pytest.raises(ValueError):
        SGD(**kwargs)


def test_state_dict_round_trip():
    rng = np.random.default_rng(2)
    w, b = rng.normal(size=(3, 2)), rng.normal(size=2)
    opt = SGD(lr=0.1, momentum=0.9)
    opt.step((w, b), (rng.normal(size=(3, 2)), rng.normal(size=2)))
    clone = SGD()
    clone.load_state_dict(opt.state_dict())
    w2, b2 = w.copy(), b.copy()
    g = (rng.normal(size=(3, 2)), rng.normal(size=2))
    opt.step((w, b), (g[0].copy(), g[1].copy()))
    clone.step((w2, b2), (g[0].copy(), g[1].copy()))
    assert np.array_equal(w, w2) and np.array_equal(b, b2)


def test_schedules():
    assert [step_schedule(3, 0.5)(e) for e in (0, 2, 3, 6)] == [1.0, 1.0, 0.5, 0.25]
    cos = cosine_schedule(10, min_factor=0.1)
    assert cos(0) == 1.0 and math.isclose(cos(10), 0.1) and math.isclose(cos(20), 0.1)
    assert all(cos(e) >= cos(e + 1) for e in range(10))
    assert warmup_schedule(4)(0) == 0.2 and warmup_schedule(4)(9) == 1.0
    assert compose(step_schedule(1, 0.5), step_schedule(1, 0.5))(2) == 1 / 16
    with pytest.raises(ValueError):
        step_schedule(0)
    with pytest.raises(ValueError):
        cosine_schedule(0)
