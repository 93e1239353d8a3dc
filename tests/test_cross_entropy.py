"""cross_entropy and cross_entropy_with_grad against the float64 reference
(itself checked against PyTorch in test_reference.py), and accuracy."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import reference as ref
from helpers import FLOAT_TYPES, assert_matches, assert_same_bits, random_array

import csoftmax as cs

REDUCTIONS = ("mean", "sum", "none")
SMOOTHING = (0.0, 0.1, 1.0)
IGNORE = (-100, -1, 3)


def make_problem(rng, n, q, dtype, *, probs=False, ignore_index=-100, weighted=False):
    logits = random_array(rng, (n, q), dtype, scale=3)
    if probs:
        target = rng.dirichlet(np.ones(q), n).astype(dtype)
    else:
        target = rng.integers(0, q, n)
        if ignore_index != -100 or n > 4:
            target[::5] = ignore_index  # some rows ignored
    weight = rng.uniform(0.25, 2.0, q).astype(dtype) if weighted else None
    return logits, target, weight


def check_ce(logits, target, dtype, what="", **opts):
    """Both functions against the reference; returns (loss, grad)."""
    reduction = opts.get("reduction", "mean")
    ref_loss, ref_grad = ref.cross_entropy(logits, target, **opts)
    loss = cs.cross_entropy(logits, target, **opts)
    loss2, grad = cs.cross_entropy_with_grad(logits, target, **opts)
    if reduction == "none":
        assert isinstance(loss, np.ndarray) and loss.shape == (np.shape(logits)[0],)
    else:
        assert isinstance(loss, np.generic) and not isinstance(loss, np.ndarray), type(loss)
    assert np.asarray(loss).dtype == dtype
    assert_matches(loss, ref_loss, dtype, f"loss {what} {opts}")
    assert_same_bits(loss2, loss, f"loss with grad {what} {opts}")
    assert isinstance(grad, np.ndarray)
    assert_matches(grad, ref_grad, dtype, f"grad {what} {opts}")
    return loss2, grad


# ------------------------------------------------------------- options ---


@pytest.mark.parametrize(
    "weighted, ignore_index, reduction, label_smoothing",
    list(itertools.product([False, True], IGNORE, REDUCTIONS, SMOOTHING)),
)
@pytest.mark.parametrize("dtype", FLOAT_TYPES)
def test_label_targets_every_option(
    dtype, weighted, ignore_index, reduction, label_smoothing, simd
):
    rng = np.random.default_rng(31)
    for n, q in ((37, 11), (5, 1 + 3 * 17), (130, 4)):
        logits, target, weight = make_problem(
            rng, n, q, dtype, ignore_index=ignore_index, weighted=weighted
        )
        check_ce(
            logits,
            target,
            dtype,
            what=f"n={n} q={q}",
            weight=weight,
            ignore_index=ignore_index,
            reduction=reduction,
            label_smoothing=label_smoothing,
        )


@pytest.mark.parametrize(
    "weighted, reduction, label_smoothing",
    list(itertools.product([False, True], REDUCTIONS, SMOOTHING)),
)
@pytest.mark.parametrize("dtype", FLOAT_TYPES)
def test_probability_targets_every_option(dtype, weighted, reduction, label_smoothing, simd):
    rng = np.random.default_rng(32)
    for n, q in ((37, 11), (5, 52), (130, 4)):
        logits, target, weight = make_problem(rng, n, q, dtype, probs=True, weighted=weighted)
        check_ce(
            logits,
            target,
            dtype,
            what=f"n={n} q={q}",
            weight=weight,
            reduction=reduction,
            label_smoothing=label_smoothing,
        )


@pytest.mark.parametrize("probs", [False, True], ids=["labels", "probs"])
@pytest.mark.parametrize("dtype", FLOAT_TYPES)
def test_every_width_and_simd_path(dtype, probs, simd):
    """q = 1..70 under each SIMD path, with weights and smoothing."""
    rng = np.random.default_rng(33)
    for q in range(1, 71):
        logits, target, weight = make_problem(rng, 9, q, dtype, probs=probs, weighted=True)
        for e in (0.0, 0.1):
            check_ce(logits, target, dtype, what=f"q={q}", weight=weight, label_smoothing=e)
        check_ce(logits, target, dtype, what=f"q={q}", reduction="none")


@pytest.mark.parametrize("q", [1000, 4097, 32000])
@pytest.mark.parametrize("dtype", FLOAT_TYPES)
def test_long_rows(dtype, q, simd):
    rng = np.random.default_rng(q)
    for probs in (False, True):
        logits, target, weight = make_problem(rng, 3, q, dtype, probs=probs, weighted=True)
        check_ce(logits, target, dtype, what=f"q={q}", weight=weight, label_smoothing=0.1)


@pytest.mark.parametrize("dtype", FLOAT_TYPES)
def test_many_rows(dtype):
    rng = np.random.default_rng(34)
    logits, target, weight = make_problem(rng, 3000, 10, dtype, weighted=True)
    for reduction in REDUCTIONS:
        check_ce(logits, target, dtype, weight=weight, reduction=reduction)


TARGET_TYPES = [
    np.int8,
    np.int16,
    np.int32,
    np.int64,
    np.uint8,
    np.uint16,
    np.uint32,
    np.uint64,
    ">i8",  # non-native byte order
    ">u2",
]


@pytest.mark.parametrize("ttype", TARGET_TYPES, ids=lambda t: np.dtype(t).str)
@pytest.mark.parametrize("dtype", FLOAT_TYPES)
def test_integer_target_dtypes(dtype, ttype):
    rng = np.random.default_rng(35)
    logits = random_array(rng, (29, 9), dtype)
    labels = rng.integers(0, 9, 29)
    expected = cs.cross_entropy_with_grad(logits, labels.astype(np.int64), reduction="none")
    for reduction in REDUCTIONS:
        check_ce(logits, labels.astype(ttype), dtype, reduction=reduction)
    got = cs.cross_entropy_with_grad(logits, labels.astype(ttype), reduction="none")
    assert_same_bits(got[0], expected[0])
    assert_same_bits(got[1], expected[1])
    # Signed types also carry an ignore_index that is negative.
    if np.dtype(ttype).kind == "i":
        t = labels.astype(ttype)
        t[::3] = -1
        check_ce(logits, t, dtype, ignore_index=-1, label_smoothing=0.1)


@pytest.mark.parametrize("dtype", FLOAT_TYPES)
def test_list_targets_and_list_logits(dtype):
    rng = np.random.default_rng(36)
    logits = random_array(rng, (6, 4), dtype)
    labels = [0, 3, 2, 1, 1, 0]
    check_ce(logits, labels, dtype, label_smoothing=0.1)
    check_ce(logits, tuple(labels), dtype, reduction="sum")
    # Logits given as nested lists are float64.
    check_ce(logits.astype(np.float64).tolist(), labels, np.float64, reduction="none")
    # Probability targets as lists are float64: fine with float64 logits.
    p = rng.dirichlet(np.ones(4), 6)
    check_ce(logits.astype(np.float64), p.tolist(), np.float64)


@pytest.mark.parametrize("dtype", FLOAT_TYPES)
def test_non_native_byte_order(dtype):
    rng = np.random.default_rng(37)
    logits, target, weight = make_problem(rng, 8, 5, dtype, probs=True, weighted=True)
    swapped = logits.astype(logits.dtype.newbyteorder(">"))
    tswapped = target.astype(target.dtype.newbyteorder(">"))
    expected = cs.cross_entropy_with_grad(logits, target, weight=weight)
    got = cs.cross_entropy_with_grad(swapped, tswapped, weight=weight.astype(">f8"))
    assert got[1].dtype == dtype and got[1].dtype.isnative
    assert_same_bits(got[0], expected[0])
    assert_same_bits(got[1], expected[1])


def test_integer_logits_are_float64():
    logits = np.array([[3, 1, 0], [0, 0, 5]], dtype=np.int16)
    loss, grad = check_ce(logits, [0, 2], np.float64)
    assert loss.dtype == np.float64 and grad.dtype == np.float64


# -------------------------------------------------------------- layouts ---


def _layouts(a):
    return {
        "C": a,
        "F": np.asfortranarray(a),
        "strided": np.repeat(np.repeat(a, 2, axis=0), 3, axis=1)[::2, ::3],
        "negative": a[::-1, ::-1].copy()[::-1, ::-1],
        "neg-rows": a[::-1].copy()[::-1],
    }


@pytest.mark.parametrize("probs", [False, True], ids=["labels", "probs"])
@pytest.mark.parametrize("dtype", FLOAT_TYPES)
def test_logits_and_target_layouts(dtype, probs, simd):
    rng = np.random.default_rng(38)
    logits, target, weight = make_problem(rng, 70, 13, dtype, probs=probs, weighted=True)
    opts = dict(weight=weight, label_smoothing=0.1)
    base_loss, base_grad = cs.cross_entropy_with_grad(logits, target, **opts)
    targets = _layouts(target) if probs else {"C": target, "strided": np.repeat(target, 2)[::2]}
    for lname, lv in _layouts(logits).items():
        for tname, tv in targets.items():
            loss, grad = cs.cross_entropy_with_grad(lv, tv, **opts)
            assert_same_bits(loss, base_loss, f"{lname}/{tname}")
            assert_same_bits(grad, base_grad, f"{lname}/{tname}")
            for reduction in REDUCTIONS:
                check_ce(lv, tv, dtype, what=f"{lname}/{tname}", reduction=reduction, **opts)


@pytest.mark.parametrize("probs", [False, True], ids=["labels", "probs"])
@pytest.mark.parametrize("dtype", FLOAT_TYPES)
def test_grad_out(dtype, probs, simd):
    rng = np.random.default_rng(39)
    logits, target, weight = make_problem(rng, 40, 13, dtype, probs=probs, weighted=True)
    opts = dict(weight=weight, label_smoothing=0.1, reduction="mean")
    loss0, grad0 = cs.cross_entropy_with_grad(logits, target, **opts)

    for order in ("C", "F"):
        g = np.full(logits.shape, np.nan, dtype, order=order)
        loss, grad = cs.cross_entropy_with_grad(logits, target, grad_out=g, **opts)
        assert grad is g
        assert_same_bits(grad, grad0, f"grad_out order {order}")
        assert_same_bits(loss, loss0)

    holder = np.full((80, 26), np.nan, dtype)
    g = holder[::2, ::-2]
    _, grad = cs.cross_entropy_with_grad(logits, target, grad_out=g, **opts)
    assert grad is g
    assert_same_bits(g, grad0, "strided grad_out")
    assert np.isnan(holder[1::2]).all()

    # In place, over (a private copy of) the logits, in every layout.
    for name in _layouts(logits):
        lv = _layouts(logits.copy())[name]
        loss, grad = cs.cross_entropy_with_grad(lv, target, grad_out=lv, **opts)
        assert grad is lv
        assert_same_bits(loss, loss0, f"in place {name}")
        assert_same_bits(lv, grad0, f"in place {name}")


@pytest.mark.parametrize("dtype", FLOAT_TYPES)
def test_grad_out_overlapping_inputs(dtype):
    """A grad_out sharing memory with logits (not the same view), with the
    probability targets or with the weights still gives the right values."""
    rng = np.random.default_rng(40)
    n, q = 12, 7
    buf = random_array(rng, (n + 1, q + 1), dtype)
    logits = buf[:n, :q]
    target = rng.integers(0, q, n)
    expected = cs.cross_entropy_with_grad(logits.copy(), target, label_smoothing=0.1)
    g = buf[1:, 1:]
    loss, grad = cs.cross_entropy_with_grad(logits, target, label_smoothing=0.1, grad_out=g)
    assert grad is g
    assert_same_bits(loss, expected[0])
    assert_same_bits(grad, expected[1])

    # grad_out is the probability target buffer.
    logits = random_array(rng, (n, q), dtype)
    p = rng.dirichlet(np.ones(q), n).astype(dtype)
    expected = cs.cross_entropy_with_grad(logits, p.copy())
    loss, grad = cs.cross_entropy_with_grad(logits, p, grad_out=p)
    assert grad is p
    assert_same_bits(loss, expected[0])
    assert_same_bits(grad, expected[1])

    # grad_out overlaps the weights.
    wbuf = rng.uniform(0.5, 2, (n, q)).astype(dtype)
    w = wbuf[0].copy()
    expected = cs.cross_entropy_with_grad(logits, target, weight=w)
    loss, grad = cs.cross_entropy_with_grad(logits, target, weight=wbuf[0], grad_out=wbuf)
    assert_same_bits(loss, expected[0])
    assert_same_bits(grad, expected[1])


# ------------------------------------------------- ignored rows, non-finite ---


@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("dtype", FLOAT_TYPES)
def test_every_row_ignored(dtype, weighted):
    rng = np.random.default_rng(41)
    logits = random_array(rng, (6, 5), dtype)
    weight = rng.uniform(0.5, 2, 5).astype(dtype) if weighted else None
    for ignore in (-100, 2):
        target = np.full(6, ignore)
        for e in SMOOTHING:
            loss, grad = cs.cross_entropy_with_grad(
                logits, target, weight=weight, ignore_index=ignore, label_smoothing=e
            )
            assert np.isnan(loss) and loss.dtype == dtype
            assert grad.dtype == dtype and np.all(grad == 0)
            g = np.full((6, 5), 9.0, dtype)
            cs.cross_entropy_with_grad(
                logits, target, weight=weight, ignore_index=ignore, grad_out=g
            )
            assert np.all(g == 0)
            s, gs = cs.cross_entropy_with_grad(
                logits, target, weight=weight, ignore_index=ignore, reduction="sum"
            )
            assert s == 0 and np.all(gs == 0)
            r, gr = cs.cross_entropy_with_grad(
                logits, target, weight=weight, ignore_index=ignore, reduction="none"
            )
            assert np.all(r == 0) and np.all(gr == 0)


@pytest.mark.parametrize("label_smoothing", SMOOTHING)
@pytest.mark.parametrize("dtype", FLOAT_TYPES)
def test_zero_total_weight(dtype, label_smoothing):
    """Counted rows whose labels all have weight 0: the mean divides by a
    zero total weight and is nan (as in PyTorch, and as csoftmax.h says:
    "when that is 0 the loss is nan"), whatever the smoothing."""
    logits = np.array([[1.0, 2.0, 3.0], [0.0, 1.0, 0.0], [0.5, 0.0, 0.0]], dtype)
    target = np.array([1, 1, -100])
    weight = np.array([1.0, 0.0, 2.0], dtype)
    for reduction in REDUCTIONS:
        check_ce(
            logits,
            target,
            dtype,
            weight=weight,
            reduction=reduction,
            label_smoothing=label_smoothing,
        )
    loss = cs.cross_entropy(logits, target, weight=weight, label_smoothing=label_smoothing)
    assert np.isnan(loss), loss


@pytest.mark.parametrize("dtype", FLOAT_TYPES)
def test_ignored_rows_may_hold_anything(dtype):
    """Ignored rows count for nothing, whatever their logits hold."""
    logits = np.array([[np.nan, 0, 1], [np.inf, 0, 1], [-np.inf] * 3, [0.5, 0.25, 0]], dtype)
    target = np.array([-100, -100, -100, 1])
    for e in SMOOTHING:
        for reduction in REDUCTIONS:
            loss, grad = check_ce(logits, target, dtype, reduction=reduction, label_smoothing=e)
            assert np.all(grad[:3] == 0)
            assert np.isfinite(loss).all()


@pytest.mark.parametrize("dtype", FLOAT_TYPES)
def test_empty_batch(dtype):
    logits = np.zeros((0, 5), dtype)
    for target in (np.zeros(0, np.int64), [], np.zeros((0, 5), dtype)):
        loss, grad = cs.cross_entropy_with_grad(logits, target)
        assert np.isnan(loss) and grad.shape == (0, 5) and grad.dtype == dtype
        assert cs.cross_entropy(logits, target, reduction="sum") == 0
        r = cs.cross_entropy(logits, target, reduction="none")
        assert r.shape == (0,) and r.dtype == dtype


inf, nan = np.inf, np.nan


@pytest.mark.parametrize("dtype", FLOAT_TYPES)
def test_adversarial_logits(dtype, simd):
    # Huge logits whose differences, and the sums of the log-probabilities
    # over a row and over the batch, stay within dtype's range: no
    # intermediate of PyTorch's formula overflows.
    half = float(np.finfo(dtype).max) / 40
    top = float(np.finfo(dtype).max) * 0.05
    logits = np.array(
        [
            [-inf, 0.0, 1.0, 2.0],  # -inf at the target: loss inf, gradient finite
            [0.0, -inf, 1.0, 2.0],  # -inf elsewhere
            [inf, 0.0, 1.0, 2.0],  # +inf: nan
            [0.0, nan, 1.0, 2.0],  # nan: nan
            [1e30, -1e30, 0.0, 5.0],
            [-1e30, -1e30, -1e30, -1e30],
            [half, -half, 0.0, 1.0],
            [top, top, top * 0.5, 0.0],
            [-top * 18, -top * 18, -top * 18, -top * 18],
            [-inf, -inf, -inf, 1.0],
            [1e-40, -1e-40, 0.0, 1e-45],
            [-inf, -inf, -inf, -inf],  # all -inf: nan, as log_softmax is
        ],
        dtype=dtype,
    )
    target = np.array([0, 0, 1, 2, 1, 3, 1, 0, 2, 3, 0, 1])
    for e in SMOOTHING:
        for reduction in REDUCTIONS:
            for rows in (slice(0, 1), slice(0, 2), slice(4, 9), slice(None)):
                check_ce(
                    logits[rows],
                    target[rows],
                    dtype,
                    what=f"rows {rows}",
                    reduction=reduction,
                    label_smoothing=e,
                )
    rows, _ = cs.cross_entropy_with_grad(logits, target, reduction="none")
    assert rows[0] == inf
    assert np.isnan(rows[2]) and np.isnan(rows[3]) and np.isnan(rows[11])
    assert np.isfinite(rows[[1, 4, 5, 6, 7, 8, 9, 10]]).all()
    loss, grad = cs.cross_entropy_with_grad(logits[:1], target[:1])
    assert loss == inf
    assert np.isfinite(grad).all()
    np.testing.assert_allclose(grad[0], ref.cross_entropy(logits[:1], [0])[1][0], rtol=1e-5)
    assert np.isnan(cs.cross_entropy(logits[2:3], [1]))
    assert np.isnan(cs.cross_entropy(logits[3:4], [0], reduction="sum"))


@pytest.mark.parametrize("dtype", FLOAT_TYPES)
def test_loss_overflowing_the_dtype(dtype):
    """A row loss beyond the dtype's range is inf (as the float64 reference
    rounded to dtype); the mean of finite double row losses is not."""
    top = float(np.finfo(dtype).max)
    logits = np.array([[top, -top, 0.0, 1.0], [0.0, 1.0, 2.0, 3.0]], dtype)
    with np.errstate(over="ignore"):
        for reduction in REDUCTIONS:
            check_ce(logits, [1, 3], dtype, reduction=reduction)
            check_ce(logits[:1], [1], dtype, reduction=reduction)


def test_float32_smoothing_over_a_range_spanning_row_is_inf_as_in_torch():
    """With float32 logits spanning more than float32's range, x - max
    overflows in float32 (as in PyTorch's float32 log_softmax): the smoothing
    term, and so the loss, is inf; probability targets with a zero there nan."""
    x = np.array([[3.4e38, 3.4e38, -3.4e38, 0.0]], np.float32)
    assert cs.cross_entropy(x, [0], label_smoothing=0.1) == inf
    assert np.isnan(cs.cross_entropy(x, np.array([[0.5, 0.5, 0, 0]], np.float32)))
    # The same logits in float64 are finite throughout.
    check_ce(x.astype(np.float64), [0], np.float64, label_smoothing=0.1)


@pytest.mark.parametrize("dtype", FLOAT_TYPES)
def test_ignore_index_outside_the_classes(dtype):
    rng = np.random.default_rng(43)
    logits = random_array(rng, (20, 6), dtype)
    target = rng.integers(0, 6, 20)
    target[::3] = 6
    for reduction in REDUCTIONS:
        check_ce(logits, target, dtype, ignore_index=6, reduction=reduction, label_smoothing=0.1)
    target[::3] = 2**40
    check_ce(logits, target, dtype, ignore_index=2**40)


@pytest.mark.parametrize("probs", [False, True], ids=["labels", "probs"])
@pytest.mark.parametrize("dtype", FLOAT_TYPES)
def test_broadcast_inputs(dtype, probs):
    """Zero-stride (broadcast, read-only) logits, targets and weights."""
    rng = np.random.default_rng(44)
    q = 9
    logits = np.broadcast_to(random_array(rng, q, dtype), (15, q))
    if probs:
        target = np.broadcast_to(rng.dirichlet(np.ones(q)).astype(dtype), (15, q))
    else:
        target = np.broadcast_to(np.int64(4), (15,))
    weight = np.broadcast_to(dtype(0.5), (q,))
    expected = cs.cross_entropy_with_grad(logits.copy(), target.copy(), weight=weight.copy())
    got = cs.cross_entropy_with_grad(logits, target, weight=weight)
    assert_same_bits(got[0], expected[0])
    assert_same_bits(got[1], expected[1])
    check_ce(logits, target, dtype, weight=weight, label_smoothing=0.1)
    with pytest.raises(ValueError, match="^grad_out"):
        cs.cross_entropy_with_grad(logits, target, grad_out=logits)


@pytest.mark.parametrize("dtype", FLOAT_TYPES)
def test_in_place_with_strided_probability_targets(dtype, simd):
    rng = np.random.default_rng(45)
    logits, target, weight = make_problem(rng, 33, 21, dtype, probs=True, weighted=True)
    tview = np.repeat(target, 2, axis=1)[:, ::2]
    expected = cs.cross_entropy_with_grad(logits, target, weight=weight, label_smoothing=0.1)
    for layout in ("C", "F"):
        lv = logits.copy(order=layout)
        loss, grad = cs.cross_entropy_with_grad(
            lv, tview, weight=weight, label_smoothing=0.1, grad_out=lv
        )
        assert grad is lv
        assert_same_bits(loss, expected[0])
        assert_same_bits(lv, expected[1])


# --------------------------------------------------- option value types ---


def test_numeric_options_of_numpy_types():
    """NumPy scalars work wherever Python numbers do."""
    rng = np.random.default_rng(46)
    logits, target, weight = make_problem(rng, 10, 5, np.float64, ignore_index=-1, weighted=True)
    expected = cs.cross_entropy_with_grad(
        logits, target, weight=weight, ignore_index=-1, label_smoothing=0.25
    )
    got = cs.cross_entropy_with_grad(
        logits,
        target,
        weight=weight,
        ignore_index=np.int16(-1),
        label_smoothing=np.float32(0.25),
    )
    assert_same_bits(got[0], expected[0])
    assert_same_bits(got[1], expected[1])


@pytest.mark.parametrize("fn", [cs.cross_entropy, cs.cross_entropy_with_grad])
def test_reduction_given_as_a_str_subclass(fn):
    """reduction=np.str_("sum") (what indexing a NumPy array of option names
    gives) is a str, and must act as "sum"."""
    rng = np.random.default_rng(47)
    logits, target, _ = make_problem(rng, 10, 5, np.float64)
    for name in ("mean", "sum", "none"):
        expected = fn(logits, target, reduction=name)
        got = fn(logits, target, reduction=np.str_(name))
        if isinstance(expected, tuple):
            assert_same_bits(got[0], expected[0])
            assert_same_bits(got[1], expected[1])
        else:
            assert_same_bits(got, expected)


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("dtype", FLOAT_TYPES)
def test_no_floating_point_exception_when_numpy_raises(dtype, reduction):
    """Non-finite results are IEEE values, never exceptions: not even when the
    caller has asked NumPy to raise on floating-point errors (the kernels run
    in C; a float32 loss beyond float32's range is +inf, as with "none")."""
    top = float(np.finfo(dtype).max)
    logits = np.array([[top, -top, 0.0, 1.0], [np.inf, 0.0, 1.0, 2.0]], dtype)
    with np.errstate(all="raise"):
        loss, grad = cs.cross_entropy_with_grad(logits[:1], [1], reduction=reduction)
        assert np.all(np.isposinf(loss))
        assert np.isfinite(grad).all()
        loss = cs.cross_entropy(logits, [1, 0], reduction=reduction)
        assert np.isnan(loss).any()
        all_ignored = cs.cross_entropy(logits, [-100, -100], reduction=reduction)
        assert np.isnan(all_ignored) if reduction == "mean" else np.all(all_ignored == 0)
        assert np.isnan(cs.softmax(logits[1:] * 1)).all()
        assert cs.log_softmax(logits[:1])[0, 1] == -np.inf
        assert np.isnan(cs.logsumexp(np.array([np.inf, np.nan], dtype)))
        assert cs.logsumexp(np.array([-np.inf, -np.inf], dtype)) == -np.inf


# ---------------------------------------------------------------- accuracy ---


@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.int32])
def test_accuracy_matches_reference(dtype):
    rng = np.random.default_rng(42)
    scores = (rng.standard_normal((500, 7)) * 3).astype(dtype)
    y = rng.integers(0, 7, 500)
    got = cs.accuracy(scores, y)
    assert isinstance(got, float)
    assert got == ref.accuracy(scores, y)
    y[:100] = np.argmax(scores[:100], axis=1)
    assert cs.accuracy(scores, y) == ref.accuracy(scores, y)
    assert cs.accuracy(scores, np.argmax(scores, axis=1)) == 1.0


def test_accuracy_ties_and_edge_cases():
    assert cs.accuracy([[0.5, 0.5], [1.0, 1.0]], [0, 1]) == 0.5  # first maximum wins
    assert cs.accuracy([[0.1, 0.9], [0.8, 0.2]], [1, 1]) == 0.5
    assert cs.accuracy(np.ones((3, 1)), np.zeros(3, np.uint8)) == 1.0
    assert np.isnan(cs.accuracy(np.zeros((0, 4)), []))
    assert np.isnan(cs.accuracy(np.zeros((0, 4)), np.zeros(0, np.int64)))


def test_accuracy_errors():
    with pytest.raises(ValueError, match="^scores"):
        cs.accuracy(np.zeros(4), [0, 0, 0, 0])
    with pytest.raises(ValueError, match="^scores"):
        cs.accuracy(np.zeros((2, 3, 4)), [0, 0])
    with pytest.raises(ValueError, match="^y"):
        cs.accuracy(np.zeros((3, 4)), [0, 1])
    with pytest.raises(ValueError, match="^y"):
        cs.accuracy(np.zeros((3, 4)), [[0, 1, 2]])
    with pytest.raises(TypeError, match="^y"):
        cs.accuracy(np.zeros((3, 4)), [0.0, 1.0, 2.0])
    with pytest.raises(TypeError, match="^scores"):
        cs.accuracy(np.zeros((3, 4), complex), [0, 1, 2])
    with pytest.raises(ValueError, match="^scores"):
        cs.accuracy(np.zeros((3, 0)), [0, 1, 2])
