"""The oracle itself, checked against SciPy and (where installed) PyTorch."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import reference as ref
import scipy.special as sp


@pytest.mark.parametrize("shape", [(1,), (7,), (5, 9), (4, 3, 6), (2, 3, 4, 5)])
def test_row_functions_match_scipy(shape):
    rng = np.random.default_rng(1)
    x = rng.standard_normal(shape) * 10
    for axis in range(-len(shape), len(shape)):
        np.testing.assert_allclose(ref.softmax(x, axis), sp.softmax(x, axis=axis), rtol=1e-14)
        np.testing.assert_allclose(
            ref.log_softmax(x, axis), sp.log_softmax(x, axis=axis), rtol=1e-13, atol=1e-13
        )
        np.testing.assert_allclose(
            ref.logsumexp(x, axis), sp.logsumexp(x, axis=axis), rtol=1e-14, atol=1e-14
        )
        np.testing.assert_allclose(
            ref.logsumexp(x, axis, keepdims=True),
            sp.logsumexp(x, axis=axis, keepdims=True),
            rtol=1e-14,
            atol=1e-14,
        )


def test_row_functions_large_finite_values_match_scipy():
    x = np.array([[1e300, -1e300, 0.0], [-1e30, -1e30 + 1e15, -1e30], [700.0, 710.0, 720.0]])
    np.testing.assert_allclose(ref.softmax(x), sp.softmax(x, axis=-1), rtol=1e-14)
    np.testing.assert_allclose(ref.logsumexp(x), sp.logsumexp(x, axis=-1), rtol=1e-14)
    np.testing.assert_allclose(ref.log_softmax(x), sp.log_softmax(x, axis=-1), rtol=1e-14)


def test_reference_non_finite_semantics():
    inf, nan = np.inf, np.nan
    np.testing.assert_array_equal(ref.softmax([inf, 1.0]), [nan, nan])
    np.testing.assert_array_equal(ref.log_softmax([inf, 1.0]), [nan, nan])
    np.testing.assert_array_equal(ref.softmax([-inf, -inf]), [nan, nan])
    assert ref.logsumexp([-inf, -inf]) == -inf
    assert ref.logsumexp([inf, 1.0, -inf]) == inf
    assert np.isnan(ref.logsumexp([inf, nan]))
    assert np.isnan(ref.logsumexp([1.0, nan]))
    assert ref.logsumexp(np.zeros((3, 0))).tolist() == [-inf] * 3
    assert ref.softmax(np.zeros((3, 0))).shape == (3, 0)
    np.testing.assert_array_equal(ref.softmax([-inf, 0.0]), [0.0, 1.0])
    np.testing.assert_array_equal(ref.log_softmax([-inf, 0.0]), [-inf, 0.0])


def test_accuracy_reference():
    s = np.array([[0.1, 0.9], [0.8, 0.2], [0.5, 0.5]])
    assert ref.accuracy(s, [1, 1, 0]) == pytest.approx(2 / 3)
    assert np.isnan(ref.accuracy(np.zeros((0, 3)), []))


def test_cross_entropy_reference_hand_computed():
    logits = np.array([[2.0, 0.0], [0.0, 2.0]])
    loss, grad = ref.cross_entropy(logits, [0, 1])
    assert loss == pytest.approx(np.log1p(np.exp(-2.0)), rel=1e-15)
    p = 1 / (1 + np.exp(-2.0))
    np.testing.assert_allclose(grad, [[(p - 1) / 2, (1 - p) / 2], [(1 - p) / 2, (p - 1) / 2]])
    # Every row ignored: mean nan, gradient zero.
    loss, grad = ref.cross_entropy(logits, [-100, -100])
    assert np.isnan(loss)
    assert not grad.any()


# --------------------------------------------------------------- torch ---

REDUCTIONS = ("mean", "sum", "none")
SMOOTHING = (0.0, 0.1, 1.0)


def _torch_ce(logits, target, weight, ignore_index, reduction, label_smoothing):
    torch = pytest.importorskip("torch")
    o = torch.tensor(logits, dtype=torch.float64, requires_grad=True)
    t = torch.tensor(target) if np.asarray(target).ndim == 1 else torch.tensor(target)
    if t.dtype != torch.float64:
        t = t.long()
    w = None if weight is None else torch.tensor(weight, dtype=torch.float64)
    loss = torch.nn.functional.cross_entropy(
        o,
        t,
        weight=w,
        ignore_index=ignore_index,
        reduction=reduction,
        label_smoothing=label_smoothing,
    )
    loss.sum().backward()
    return loss.detach().numpy(), o.grad.numpy()


@pytest.mark.parametrize(
    "weighted, ignore_index, reduction, label_smoothing",
    list(itertools.product([False, True, "zeros"], [-100, -1, 3], REDUCTIONS, SMOOTHING)),
)
def test_cross_entropy_reference_matches_torch_labels(
    weighted, ignore_index, reduction, label_smoothing
):
    pytest.importorskip("torch")
    rng = np.random.default_rng(7)
    n, q = 23, 7
    logits = rng.standard_normal((n, q)) * 4
    target = rng.integers(0, q, n)
    if ignore_index != -100:
        target[::4] = ignore_index
    weight = rng.uniform(0.2, 2.0, q) if weighted else None
    if weighted == "zeros":
        weight[[0, 4]] = 0.0  # classes that count for nothing
    loss, grad = ref.cross_entropy(logits, target, weight, ignore_index, reduction, label_smoothing)
    t_loss, t_grad = _torch_ce(logits, target, weight, ignore_index, reduction, label_smoothing)
    np.testing.assert_allclose(loss, t_loss, rtol=1e-13, atol=1e-14)
    np.testing.assert_allclose(grad, t_grad, rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize(
    "weighted, reduction, label_smoothing",
    list(itertools.product([False, True], REDUCTIONS, SMOOTHING)),
)
def test_cross_entropy_reference_matches_torch_probabilities(weighted, reduction, label_smoothing):
    pytest.importorskip("torch")
    rng = np.random.default_rng(8)
    n, q = 19, 6
    logits = rng.standard_normal((n, q)) * 4
    target = rng.dirichlet(np.ones(q), n)
    weight = rng.uniform(0.2, 2.0, q) if weighted else None
    loss, grad = ref.cross_entropy(logits, target, weight, -100, reduction, label_smoothing)
    t_loss, t_grad = _torch_ce(logits, target, weight, -100, reduction, label_smoothing)
    np.testing.assert_allclose(loss, t_loss, rtol=1e-13, atol=1e-14)
    np.testing.assert_allclose(grad, t_grad, rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("label_smoothing", SMOOTHING)
def test_cross_entropy_reference_all_ignored_matches_torch(weighted, label_smoothing):
    pytest.importorskip("torch")
    rng = np.random.default_rng(9)
    logits = rng.standard_normal((5, 4))
    target = np.full(5, -100)
    weight = rng.uniform(0.2, 2.0, 4) if weighted else None
    for reduction in REDUCTIONS:
        loss, grad = ref.cross_entropy(logits, target, weight, -100, reduction, label_smoothing)
        t_loss, t_grad = _torch_ce(logits, target, weight, -100, reduction, label_smoothing)
        np.testing.assert_allclose(loss, t_loss, equal_nan=True)
        np.testing.assert_array_equal(grad, t_grad)


def test_cross_entropy_reference_non_finite_logits_match_torch():
    pytest.importorskip("torch")
    inf = np.inf
    logits = np.array(
        [
            [-inf, 0.0, 1.0],
            [0.0, -inf, 1.0],
            [inf, 0.0, 1.0],
            [np.nan, 0.0, 1.0],
            [1e300, -1e300, 0],
        ]
    )
    target = np.array([0, 2, 1, 1, 1])
    for reduction in REDUCTIONS:
        for e in SMOOTHING:
            loss, grad = ref.cross_entropy(logits, target, None, -100, reduction, e)
            t_loss, t_grad = _torch_ce(logits, target, None, -100, reduction, e)
            np.testing.assert_allclose(loss, t_loss, equal_nan=True, rtol=1e-13)
            np.testing.assert_allclose(grad, t_grad, equal_nan=True, rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize("label_smoothing", SMOOTHING)
def test_cross_entropy_reference_zero_total_weight_matches_torch(label_smoothing):
    """Rows counted but all of zero class weight: the mean divides by 0."""
    pytest.importorskip("torch")
    logits = np.array([[1.0, 2.0, 3.0], [0.0, 1.0, 0.0], [0.5, 0.0, 0.0]])
    target = np.array([1, 1, -100])
    weight = np.array([1.0, 0.0, 2.0])
    for reduction in REDUCTIONS:
        loss, grad = ref.cross_entropy(logits, target, weight, -100, reduction, label_smoothing)
        t_loss, t_grad = _torch_ce(logits, target, weight, -100, reduction, label_smoothing)
        np.testing.assert_allclose(loss, t_loss, equal_nan=True, rtol=1e-13)
        np.testing.assert_allclose(grad, t_grad, equal_nan=True, rtol=1e-12, atol=1e-15)
