"""Every error names its argument, and no output is touched when one is raised."""

from __future__ import annotations

import numpy as np
import pytest

import csoftmax as cs

ROW_OPS = [cs.softmax, cs.log_softmax, cs.logsumexp]


# ----------------------------------------------------------------- axis ---


@pytest.mark.parametrize("fn", ROW_OPS, ids=lambda f: f.__name__)
def test_axis_errors(fn):
    x = np.zeros((3, 4))
    for axis in (2, -3, 100, -100):
        with pytest.raises(ValueError, match="^axis"):
            fn(x, axis=axis)
    with pytest.raises(ValueError, match="^axis"):
        fn(np.zeros((5,)), axis=1)
    with pytest.raises(TypeError, match="^axis"):
        fn(x, axis=1.0)
    with pytest.raises(TypeError, match="^axis"):
        fn(x, axis=None)


@pytest.mark.parametrize("fn", ROW_OPS, ids=lambda f: f.__name__)
def test_zero_dimensional_input_raises_naming_axis(fn):
    for x in (np.float64(1.5), 2.0, np.array(3.0, np.float32), np.array(1, np.int8)):
        with pytest.raises(ValueError, match="^axis"):
            fn(x)
        with pytest.raises(ValueError, match="^axis"):
            fn(x, axis=0)


@pytest.mark.parametrize("fn", ROW_OPS, ids=lambda f: f.__name__)
def test_errors_leave_out_unchanged(fn):
    x = np.ones((3, 4))
    out = np.full(np.shape(fn(x)), 5.0)
    for bad in (dict(axis=7), dict(axis=None)):
        with pytest.raises((ValueError, TypeError)):
            fn(x, out=out, **bad)
        assert np.all(out == 5.0)
    with pytest.raises(TypeError):
        fn(x.astype(complex), out=out)
    assert np.all(out == 5.0)


# -------------------------------------------------------- cross-entropy ---


def _ce_calls():
    """(fn, is_with_grad) for both cross-entropy entry points."""
    return [
        pytest.param(cs.cross_entropy, id="cross_entropy"),
        pytest.param(cs.cross_entropy_with_grad, id="cross_entropy_with_grad"),
    ]


LOGITS = np.zeros((4, 10), np.float32)


@pytest.mark.parametrize("fn", _ce_calls())
def test_label_out_of_range_names_target_and_label(fn):
    with pytest.raises(ValueError, match=r"^target: label 12 is out of range \[0, 10\)$"):
        fn(LOGITS, [1, 12, 3, 4])
    with pytest.raises(ValueError, match=r"^target: label 10 is out of range \[0, 10\)$"):
        fn(LOGITS, np.array([1, 2, 10, 4], np.uint8))
    with pytest.raises(ValueError, match=r"^target: label -1 is out of range \[0, 10\)$"):
        fn(LOGITS, np.array([1, -1, 3, 4], np.int8))
    # -100 is only allowed as the ignore_index.
    with pytest.raises(ValueError, match=r"^target: label -100 is out of range"):
        fn(LOGITS, [1, -100, 3, 4], ignore_index=-1)
    # The first bad label is named.
    with pytest.raises(ValueError, match=r"^target: label 77 is"):
        fn(LOGITS, [0, 77, 88, -5])
    big = np.array([0, 2**64 - 1, 1, 1], np.uint64)
    with pytest.raises(ValueError, match=rf"^target: label {2**64 - 1} is out of range"):
        fn(LOGITS, big)
    with pytest.raises(ValueError, match=rf"^target: label {2**63} is out of range"):
        fn(LOGITS, np.array([0, 2**63, 1, 1], np.uint64))
    with pytest.raises(ValueError, match=rf"^target: label {2**62} is out of range"):
        fn(LOGITS, np.array([0, 2**62, 1, 1], np.int64))


@pytest.mark.parametrize("fn", _ce_calls())
def test_target_shape_and_dtype_errors(fn):
    with pytest.raises(ValueError, match="^target"):
        fn(LOGITS, [0, 1, 2])  # too few labels
    with pytest.raises(ValueError, match="^target"):
        fn(LOGITS, np.zeros((4, 9), np.float32))  # probabilities of the wrong shape
    with pytest.raises(ValueError, match="^target"):
        fn(LOGITS, np.zeros((4, 10, 1), np.float32))
    with pytest.raises(ValueError, match="^target"):
        fn(LOGITS, np.int64(3))  # 0-d
    with pytest.raises(TypeError, match="^target"):
        fn(LOGITS, np.zeros((4, 10), np.float64))  # probabilities of another dtype
    with pytest.raises(TypeError, match="^target"):
        fn(LOGITS.astype(np.float64), np.zeros((4, 10), np.float32))
    with pytest.raises(TypeError, match="^target"):
        fn(LOGITS, np.zeros((4, 10), np.int64))  # 2-D integers are not probabilities
    with pytest.raises(TypeError, match="^target"):
        fn(LOGITS, np.zeros(4, np.float32))  # float 1-D targets
    with pytest.raises(TypeError, match="^target"):
        fn(LOGITS, [0.0, 1.0, 2.0, 3.0])
    with pytest.raises(TypeError, match="^target"):
        fn(LOGITS, np.zeros(4, bool))


@pytest.mark.parametrize("fn", _ce_calls())
def test_option_errors(fn):
    t = [0, 1, 2, 3]
    for reduction in ("avg", "MEAN", "", None, 1):
        with pytest.raises(ValueError, match="^reduction"):
            fn(LOGITS, t, reduction=reduction)
    for e in (-0.1, 1.5, np.nan, np.inf, -np.inf):
        with pytest.raises(ValueError, match="^label_smoothing"):
            fn(LOGITS, t, label_smoothing=e)
    with pytest.raises(TypeError, match="^label_smoothing"):
        fn(LOGITS, t, label_smoothing="0.1x")
    for w in (np.ones(9), np.ones(11), np.ones((10, 1)), np.ones((2, 5)), []):
        with pytest.raises(ValueError, match="^weight"):
            fn(LOGITS, t, weight=w)
    with pytest.raises(TypeError, match="^weight"):
        fn(LOGITS, t, weight=np.ones(10, complex))
    with pytest.raises(TypeError, match="^ignore_index"):
        fn(LOGITS, t, ignore_index=1.5)
    with pytest.raises(ValueError, match="^ignore_index"):
        fn(LOGITS, t, ignore_index=2**70)
    probs = np.full((4, 10), 0.1, np.float32)
    for ignore in (-1, 0, 3):
        with pytest.raises(ValueError, match="^ignore_index"):
            fn(LOGITS, probs, ignore_index=ignore)


@pytest.mark.parametrize("fn", _ce_calls())
def test_logits_errors(fn):
    for shape in ((10,), (2, 3, 4), ()):
        with pytest.raises(ValueError, match="^logits"):
            fn(np.zeros(shape), [0, 1])
    with pytest.raises(TypeError, match="^logits"):
        fn(np.zeros((2, 3), complex), [0, 1])
    with pytest.raises(TypeError, match="^logits"):
        fn(np.array([[1, "a"]], dtype=object), [0])


def test_boundary_values_accepted():
    """label_smoothing 0 and 1, and labels 0 and q-1, are in range."""
    for e in (0, 0.0, 1, 1.0, np.float32(1.0)):
        cs.cross_entropy(LOGITS, [0, 9, 0, 9], label_smoothing=e)
    cs.cross_entropy(LOGITS, [0, 9, -100, 5])
    cs.cross_entropy(LOGITS, [0, 9, 11, 5], ignore_index=11)  # an out-of-range ignore_index


GRAD_ERRORS = [
    # (kwargs overriding a valid call, exception, argument named)
    (dict(target=[0, 1, 12, 3]), ValueError, "target"),
    (dict(target=[0, 1, 2, 3, 4]), ValueError, "target"),
    (dict(target=np.full((4, 10), 0.1)), TypeError, "target"),
    (dict(target=[0.0, 1.0, 2.0, 3.0]), TypeError, "target"),
    (dict(reduction="avg"), ValueError, "reduction"),
    (dict(label_smoothing=1.01), ValueError, "label_smoothing"),
    (dict(label_smoothing=np.nan), ValueError, "label_smoothing"),
    (dict(weight=np.ones(3)), ValueError, "weight"),
    (dict(target=np.full((4, 10), 0.1, np.float32), ignore_index=2), ValueError, "ignore_index"),
    (dict(logits=np.zeros((4, 10, 1), np.float32)), ValueError, "logits"),
]


@pytest.mark.parametrize("kwargs, exc, name", GRAD_ERRORS, ids=lambda v: str(v)[:40])
def test_failed_checks_leave_grad_out_unchanged(kwargs, exc, name):
    logits = np.linspace(-2, 2, 40, dtype=np.float32).reshape(4, 10)
    call = dict(logits=logits, target=[0, 1, 2, 3])
    call.update(kwargs)
    g = np.full((4, 10), 1234.5, np.float32)
    logits_before = logits.copy()
    with pytest.raises(exc, match=f"^{name}"):
        cs.cross_entropy_with_grad(call.pop("logits"), call.pop("target"), grad_out=g, **call)
    assert np.all(g == 1234.5)
    np.testing.assert_array_equal(logits, logits_before)


def test_bad_label_with_grad_out_in_place_leaves_logits_unchanged():
    logits = np.linspace(-2, 2, 40).reshape(4, 10)
    before = logits.copy()
    with pytest.raises(ValueError, match=r"^target: label 10 is out of range \[0, 10\)"):
        cs.cross_entropy_with_grad(logits, [0, 1, 2, 10], grad_out=logits)
    np.testing.assert_array_equal(logits, before)


def test_grad_out_errors():
    logits = np.zeros((4, 10), np.float32)
    t = [0, 1, 2, 3]
    cases = [
        (ValueError, np.full((4, 9), 3.0, np.float32)),
        (ValueError, np.full((10, 4), 3.0, np.float32)),
        (ValueError, np.full((40,), 3.0, np.float32)),
        (TypeError, np.full((4, 10), 3.0, np.float64)),
        (TypeError, np.full((4, 10), 3.0, ">f4")),
    ]
    ro = np.full((4, 10), 3.0, np.float32)
    ro.flags.writeable = False
    cases.append((ValueError, ro))
    for exc, g in cases:
        before = g.copy()
        with pytest.raises(exc, match="^grad_out"):
            cs.cross_entropy_with_grad(logits, t, grad_out=g)
        np.testing.assert_array_equal(g, before)
    with pytest.raises(TypeError, match="^grad_out"):
        cs.cross_entropy_with_grad(logits, t, grad_out=np.zeros((4, 10)).tolist())
    # A non-native logits array is converted: its own buffer cannot take the gradient.
    swapped = logits.astype(">f4")
    with pytest.raises(TypeError, match="^grad_out"):
        cs.cross_entropy_with_grad(swapped, t, grad_out=swapped)


def test_cross_entropy_has_no_grad_out():
    with pytest.raises(TypeError):
        cs.cross_entropy(LOGITS, [0, 1, 2, 3], grad_out=np.zeros((4, 10), np.float32))


# -------------------------------------------------------------- threads ---


def test_set_num_threads_errors():
    before = cs.get_num_threads()
    for bad in (0, -1, -(2**40)):
        with pytest.raises(ValueError, match="^n"):
            cs.set_num_threads(bad)
    for bad in (1.5, "2", None, 2.0):
        with pytest.raises(TypeError, match="^n"):
            cs.set_num_threads(bad)
    assert cs.get_num_threads() == before
