"""Fuzz tests (hypothesis) of the whole public surface, in this process.

Every call gets arbitrary input: dtypes (the kernels' own, the converted
ones, the refused ones: complex, object, str, bytes, datetime), shapes
(0-d and empty included), layouts (slices, negative strides, transposes,
Fortran order, unaligned record fields, broadcasts, read-only views, lists),
byte orders, values (+-0, subnormals, +-inf, nan, +-max, 1e30), labels in
and out of range, every option of the cross-entropy, and output buffers that
alias the input (``out=x``, ``grad_out=logits``, partial overlaps, reversed
views of the input) or are wrong in every way.

The property is the contract of API.md: a call either

* returns what the float64 NumPy reference (tests/reference.py) gives,
  within ``helpers.TOLERANCES``, with nan/inf exactly where the reference has
  them, in the documented dtype, writing into (and returning) the ``out=`` /
  ``grad_out=`` buffer it was given, and leaving every input it did not alias
  untouched; or
* raises ``TypeError``/``ValueError`` (AxisError is a ValueError) whose
  message starts with the name of an argument that really is wrong, before
  any memory is touched: the output buffers, filled with a sentinel before
  the call, hold the same bytes after it, and so do the inputs.

Anything else (another exception, a wrong value, a crash) fails.  The calls
run in the test process on purpose: a segfault ends the whole run.

The number of examples comes from ``conftest.fuzz_settings``:
``CSOFTMAX_FUZZ=long`` runs >= 100,000 in total over this file and
test_fuzz_files.py.
"""

from __future__ import annotations

import math
import operator
import os
import re

import numpy as np
import pytest
import reference as ref
from conftest import fuzz_settings
from helpers import TOLERANCES, assert_matches, assert_same_bits, rounded
from hypothesis import event, given, note, reject, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import csoftmax as cs
from csoftmax import _core
from csoftmax._steps import StepRunner

# Each fuzz test's share of the profile's max_examples (100 short, 10,000
# long): the factors sum to 11.6 here (row_ops counts three times, once per
# function) and 2.5 in test_fuzz_files.py, so the long profile runs 141,000
# examples in all.
SCALE = {
    "row_ops": 1.5,
    "cross_entropy": 1.5,
    "cross_entropy_with_grad": 1.5,
    "accuracy": 0.6,
    "model": 1.0,
    "model_save_load": 0.5,
    "trainer": 0.5,
    "simd_threads": 1.5,
}


#: Defects this fuzzing found are each pinned by a small failing test at the
#: end of this file.  With CSOFTMAX_FUZZ_KNOWN=skip the fuzz tests steer clear
#: of those inputs (hypothesis.reject), so that a long run keeps looking for
#: new defects instead of stopping at a known one; by default they do not.
SKIP_KNOWN = os.environ.get("CSOFTMAX_FUZZ_KNOWN", "") == "skip"


def known(condition: bool) -> None:
    """Skip this example if it hits a known defect and SKIP_KNOWN is set."""
    if SKIP_KNOWN and condition:
        reject()


def fuzz(name: str):
    """fuzz_settings with this test's share of the examples."""
    n = max(1, round(fuzz_settings.max_examples * SCALE[name]))
    return settings(fuzz_settings, max_examples=n)


# ---------------------------------------------------------------------------
# dtypes, values, shapes, layouts

F32, F64 = np.dtype(np.float32), np.dtype(np.float64)
KERNEL_TYPES = (np.float32, np.float64)
SWAPPED = [F32.newbyteorder(), F64.newbyteorder()]
CONVERTED = [
    np.dtype(t)
    for t in (
        np.float16,
        np.longdouble,
        np.bool_,
        np.int8,
        np.uint8,
        np.int16,
        np.uint16,
        np.int32,
        np.uint32,
        np.int64,
        np.uint64,
    )
] + [np.dtype(np.int32).newbyteorder()]
REFUSED = [
    np.dtype(t)
    for t in (
        np.complex64,
        np.complex128,
        object,
        "U3",
        "S2",
        "datetime64[s]",
        "timedelta64[ms]",
        [("a", "<f8"), ("b", "<f8")],
    )
]
INT_TYPES = [
    np.dtype(t)
    for t in (np.int8, np.uint8, np.int16, np.uint16, np.int32, np.uint32, np.int64, np.uint64)
] + [np.dtype(np.int64).newbyteorder()]

#: Mostly the kernels' own types, the converted ones often enough.
REAL_DTYPE = st.sampled_from([F32, F64] * 5 + SWAPPED + CONVERTED)
REFUSED_DTYPE = st.sampled_from(REFUSED)
ANY_DTYPE = st.one_of(REAL_DTYPE, REFUSED_DTYPE)


def is_kernel(dt: np.dtype) -> bool:
    return dt.type in KERNEL_TYPES


def is_refused(dt: np.dtype) -> bool:
    return dt.kind not in "biuf"


def result_dtype(dt: np.dtype) -> np.dtype:
    """What API.md says the kernels compute in: float32/float64 keep their
    precision (native order), other real types become float64."""
    return np.dtype(dt.type) if is_kernel(dt) else F64


def specials(dt: np.dtype) -> list:
    fi = np.finfo(dt)
    tiny_sub = float(fi.smallest_subnormal)
    return [
        0.0,
        -0.0,
        1.0,
        -1.0,
        tiny_sub,
        -tiny_sub,
        3 * tiny_sub,
        float(fi.tiny),
        -float(fi.tiny),
        float(fi.max),
        -float(fi.max),
        float(fi.max) / 2,
        math.inf,
        -math.inf,
        math.nan,
        1e30,
        -1e30,
        float(fi.eps),
        88.72,
        -87.34,
        709.78,
        -745.13,
    ]


def float_elements(dt: np.dtype, bound: float | None = None):
    """Moderate values, the special ones, and anything finite or not."""
    width = {2: 16, 4: 32}.get(dt.itemsize, 64)
    if bound is not None:
        return st.floats(-bound, bound, width=width)
    spec = specials(np.dtype(np.float32) if width == 32 else np.dtype(np.float64))
    if width == 16:
        spec = [v for v in spec if not math.isfinite(v) or abs(v) < 6e4]
    return st.one_of(
        st.floats(-30, 30, width=width),
        st.sampled_from(spec).map(lambda v: float(np.array(v).astype(dt))),
        st.floats(width=width),
    )


def elements_for(dt: np.dtype, bound: float | None = None):
    native = dt.newbyteorder("=") if dt.byteorder not in "=|" else dt
    if native.kind == "f":
        return float_elements(native, bound)
    if native.kind == "b":
        return st.booleans()
    if native.kind in "iu":
        info = np.iinfo(native)
        return st.one_of(
            st.integers(max(-5, int(info.min)), 5),
            st.integers(int(info.min), int(info.max)),
        )
    return hnp.from_dtype(native)


SIDES = st.sampled_from([0, 1, 2, 3, 4, 5, 1, 2, 3, 4, 5, 6, 7, 8])


@st.composite
def shapes(draw, min_dims=0, max_dims=4):
    ndim = draw(st.integers(min_dims, max_dims))
    shape = [draw(SIDES) for _ in range(ndim)]
    if ndim and ndim <= 2 and draw(st.integers(0, 5)) == 0:
        # A long axis now and then, for the vector loops and their tails.
        shape[draw(st.integers(0, ndim - 1))] = draw(st.integers(9, 70))
    return tuple(shape)


LAYOUTS = [
    "C",
    "C",
    "C",
    "F",
    "strided",
    "transposed",
    "unaligned",
    "readonly",
    "broadcast",
    "windows",
    "list",
]


@st.composite
def laid_out(draw, values: np.ndarray, layouts=LAYOUTS):
    """values (a C array) in another memory layout: the same elements."""
    layout = draw(st.sampled_from(layouts))
    shape, dt = values.shape, values.dtype
    if layout == "F":
        return np.asfortranarray(values), layout
    if layout == "strided" and values.ndim:
        steps = [draw(st.sampled_from([1, 2, 3, -1, -2])) for _ in shape]
        big = np.zeros(tuple(s * abs(k) for s, k in zip(shape, steps)), dt)
        view = big[tuple(slice(None, None, k) for k in steps)]
        view[...] = values
        return view, f"strided{steps}"
    if layout == "transposed" and values.ndim > 1:
        perm = draw(st.permutations(range(values.ndim)))
        view = np.ascontiguousarray(values.transpose(perm)).transpose(np.argsort(perm))
        return view, f"transposed{list(perm)}"
    if layout == "unaligned" and dt.kind not in "OV":
        rec = np.zeros(shape, dtype=[("pad", "u1"), ("v", dt)])  # packed: odd strides
        rec["v"] = values
        return rec["v"], layout
    if layout == "readonly":
        x = values.copy()
        x.flags.writeable = False
        return x, layout
    if layout == "broadcast" and values.ndim and shape[0]:
        return np.broadcast_to(values[:1], shape), layout
    if layout == "windows" and values.ndim == 2 and values.size:
        # Rows that overlap in memory (row i starts one element after row
        # i - 1), as sliding_window_view makes them; other values than given.
        n, d = shape
        base = np.resize(values.ravel(), n + d - 1)
        return np.lib.stride_tricks.sliding_window_view(base, d), layout
    if layout == "list" and dt.kind in "biuf" and dt.isnative and (values.size or values.ndim <= 1):
        return values.tolist(), layout
    return values, "C"


@st.composite
def arrays(draw, dtypes=ANY_DTYPE, shape=None, min_dims=0, max_dims=4, bound=None, layouts=LAYOUTS):
    """(x, description): an array-like of any dtype, shape, values, layout."""
    dt = draw(dtypes)
    if shape is None:
        shape = draw(shapes(min_dims, max_dims))
    if dt.kind == "O":
        values = draw(hnp.arrays(F64, shape, elements=float_elements(F64, bound))).astype(object)
    elif dt.kind == "V":
        values = np.zeros(shape, dt)
    else:
        native = dt.newbyteorder("=") if dt.byteorder not in "=|" else dt
        values = draw(hnp.arrays(native, shape, elements=elements_for(native, bound))).astype(dt)
    x, layout = draw(laid_out(values, layouts))
    return x, f"{dt.str} {shape} {layout}"


def dtype_of(x) -> np.dtype:
    return x.dtype if isinstance(x, np.ndarray) else np.asarray(x).dtype


def fill_sentinel(a: np.ndarray) -> None:
    if isinstance(a, np.ndarray) and a.flags.writeable and a.dtype.kind in "biufc":
        a[...] = 7 if a.dtype.kind in "biu" else -12345.5


def snapshot(objs) -> list:
    """The bytes of every ndarray among objs (None for the rest)."""
    return [
        o.tobytes() if isinstance(o, np.ndarray) and o.dtype.kind != "O" else None for o in objs
    ]


# ---------------------------------------------------------------------------
# The oracle of errors


class Expect:
    """The errors a call may raise: (argument name, exception type) pairs.

    Empty means the call must succeed.
    """

    def __init__(self) -> None:
        self.allowed: set[tuple[str, type]] = set()
        self.label_values: set[int] = set()

    def add(self, name: str, *types: type) -> None:
        for t in types or (TypeError, ValueError):
            self.allowed.add((name, t))

    def __bool__(self) -> bool:
        return bool(self.allowed)

    def __repr__(self) -> str:
        return repr(sorted((n, t.__name__) for n, t in self.allowed))


RAISED = object()


def call_checked(call, expect: Expect, buffers=(), inputs=()):
    """Run call(); check it against expect.

    On an exception: it must be allowed, name its argument first, and leave
    the bytes of buffers and inputs as they were.  Returns the result, or
    RAISED.
    """
    before = snapshot(list(buffers) + list(inputs))
    try:
        result = call()
    except (TypeError, ValueError) as e:
        message = str(e)
        event(f"raised {type(e).__name__} {message.split(':')[0][:20]}")
        if not expect:
            raise AssertionError(f"raised {type(e).__name__}({message!r}); expected success") from e
        ok = any(
            isinstance(e, t) and re.match(rf"{re.escape(name)}\b", message)
            for name, t in expect.allowed
        )
        assert ok, f"raised {type(e).__name__}({message!r}); allowed {expect!r}"
        if message.startswith("target: label "):
            label = int(re.match(r"target: label (-?\d+) is out of range", message).group(1))
            assert label in expect.label_values, (message, expect.label_values)
        after = snapshot(list(buffers) + list(inputs))
        for i, (b, a) in enumerate(zip(before, after)):
            assert b == a, f"argument {i} changed although the call raised {message!r}"
        return RAISED
    event("returned")
    assert not expect, f"returned; expected one of {expect!r}"
    return result


def check_axis(expect: Expect, axis, ndim: int) -> int | None:
    """Expected errors for axis; the normalised axis, or None."""
    try:
        ax = operator.index(axis)
    except TypeError:
        expect.add("axis", TypeError)
        return None
    if ndim == 0 or not -ndim <= ax < ndim:
        expect.add("axis", ValueError)
        return None
    return ax % ndim


def check_out(expect: Expect, out, shape, dtype, name: str) -> None:
    if out is None:
        return
    if not isinstance(out, np.ndarray) or out.dtype != dtype:
        expect.add(name, TypeError)
    elif out.shape != shape:
        expect.add(name, ValueError)
    elif not out.flags.writeable:
        expect.add(name, ValueError)


def maybe_bad_out(expect: Expect, out, name: str) -> None:
    """When the result's shape is unknown (another argument is wrong), an
    error about a clearly wrong out is as good as any."""
    if out is not None:
        expect.add(name)


# ---------------------------------------------------------------------------
# Which arguments to spoil


@st.composite
def spoiled(draw, names):
    """The set of arguments to make wrong: none in about two examples of three."""
    k = draw(st.sampled_from([0] * 6 + [1] * 3 + [2]))
    order = draw(st.permutations(list(names)))
    return set(order[:k])


@st.composite
def input_array(draw, bad: bool, shape=None, min_dims=1, max_dims=4):
    """A good input (a real dtype, at least one dimension) or a bad one
    (a refused dtype, or 0-d)."""
    if not bad:
        return draw(arrays(REAL_DTYPE, shape=shape, min_dims=min_dims, max_dims=max_dims))
    if draw(st.booleans()) or shape is not None:
        return draw(arrays(REFUSED_DTYPE, shape=shape, min_dims=0, max_dims=max_dims))
    x, desc = draw(arrays(ANY_DTYPE, shape=()))
    if draw(st.booleans()) and isinstance(x, np.ndarray) and x.dtype.kind in "biuf":
        x = x[()]  # a NumPy scalar
    return x, desc


# ---------------------------------------------------------------------------
# Output buffers

GOOD_OUT = ["none", "none", "none", "fresh", "fresh", "self", "self", "reversed", "overlap"]
BAD_OUT = ["wrong_dtype", "wrong_shape", "readonly", "list", "broadcast", "self"]


def can_alias(x, shape, dtype) -> bool:
    return (
        isinstance(x, np.ndarray)
        and x.flags.writeable
        and x.dtype == dtype
        and x.shape == tuple(shape)
    )


@st.composite
def out_buffer(draw, x, shape, dtype, bad: bool):
    """(x, out, description): a good or a bad output buffer for a result of
    this shape and dtype (either None when unknown).  x comes back rebuilt
    when out is to overlap it."""
    mode = draw(st.sampled_from(BAD_OUT if bad else GOOD_OUT))
    known = shape is not None and dtype is not None
    shape = tuple(shape) if shape is not None else tuple(np.shape(x)) or (2,)
    dtype = dtype if dtype is not None else F64
    if mode in ("self", "reversed", "overlap") and not bad and not can_alias(x, shape, dtype):
        if known and tuple(np.shape(x)) == shape and np.ndim(x):
            x = np.array(x, dtype=dtype)  # an input the output may alias
        else:
            mode = "fresh"
    if mode == "none":
        return x, None, mode
    if mode == "fresh":
        base = np.empty(shape, dtype)
        out, layout = draw(laid_out(base, ["C", "C", "F", "strided", "transposed", "unaligned"]))
        return x, out, f"fresh {layout}"
    if mode == "self":
        return x, x, mode
    if mode == "reversed":
        if not x.ndim:
            return x, x, "self"
        ax = draw(st.integers(0, x.ndim - 1))
        return x, np.flip(x, ax), f"reversed axis {ax}"
    if mode == "overlap":
        size, k = math.prod(shape), draw(st.integers(1, 3))
        total = x.size + k
        buf = np.zeros(total, x.dtype)
        first = draw(st.booleans())
        xv = (buf[k:] if first else buf[: x.size]).reshape(x.shape)
        xv[...] = x
        out = (buf[:size] if first else buf[total - size :]).reshape(shape)
        return xv, out, f"overlap by {k} x_first={first}"
    if mode == "wrong_dtype":
        other = draw(st.sampled_from([F32, F64, F64.newbyteorder(), np.dtype(np.int64)]))
        if other == dtype:
            other = np.dtype(np.complex128)
        return x, np.empty(shape, other), f"wrong dtype {other.str}"
    if mode == "wrong_shape":
        wrong = draw(
            st.sampled_from([shape + (1,), shape[:-1], tuple(s + 1 for s in shape), (1,) + shape])
        )
        if wrong == shape:
            wrong = shape + (2,)
        return x, np.empty(wrong, dtype), f"wrong shape {wrong}"
    if mode == "readonly":
        out = np.empty(shape, dtype)
        out.flags.writeable = False
        return x, out, mode
    if mode == "list":
        return x, np.zeros(shape, dtype).tolist(), mode
    return x, np.broadcast_to(np.zeros((), dtype), shape), "broadcast"


# ---------------------------------------------------------------------------
# softmax, log_softmax, logsumexp

ROW_OPS = {
    "softmax": (cs.softmax, ref.softmax),
    "log_softmax": (cs.log_softmax, ref.log_softmax),
    "logsumexp": (cs.logsumexp, ref.logsumexp),
}


@st.composite
def good_axis(draw, ndim: int):
    ax = draw(st.integers(-ndim, ndim - 1))
    return draw(st.sampled_from([ax, ax, ax, np.int64(ax), np.int8(ax)]))


@st.composite
def bad_axis(draw, ndim: int):
    return draw(
        st.sampled_from(
            [ndim, -ndim - 1, ndim + 3, None, 1.0, "0", np.float64(0), [0], 2**70, -(2**70)]
        )
    )


def row_op_call(op, data):
    fn, oracle = ROW_OPS[op]
    bad = data.draw(spoiled(["x", "axis", "out"]), label="spoiled")
    x, desc = data.draw(input_array("x" in bad), label="x")
    ndim = np.ndim(x)
    axis_given = "axis" in bad or data.draw(st.integers(0, 3)) > 0
    if "axis" in bad:
        axis = data.draw(bad_axis(ndim), label="axis")
    else:
        axis = data.draw(good_axis(max(ndim, 1)), label="axis") if axis_given else -1
    keepdims = data.draw(st.booleans(), label="keepdims") if op == "logsumexp" else False
    # Known: an int axis beyond C long raises OverflowError (test_huge_axis_...).
    known(type(axis) is int and not -(2**63) <= axis < 2**63)

    expect = Expect()
    dt = dtype_of(x)
    if is_refused(dt):
        expect.add("x", TypeError)
    ax = check_axis(expect, axis, ndim)
    shape = None
    rdt = None if is_refused(dt) else result_dtype(dt)
    if ax is not None:
        xs = np.shape(x)
        shape = xs if op != "logsumexp" else xs[:ax] + ((1,) if keepdims else ()) + xs[ax + 1 :]
    x, out, out_mode = data.draw(out_buffer(x, shape, rdt, "out" in bad), label="out")
    if (
        op == "logsumexp"
        and out is not None
        and rdt is not None
        and "out" not in bad
        and ax is not None
        and np.shape(x)[ax] > 0
        and data.draw(st.booleans())
    ):
        # The reduction written over a slice of its own input.
        if not can_alias(x, np.shape(x), rdt):
            x = np.array(x, dtype=rdt)
        k = data.draw(st.integers(0, x.shape[ax] - 1))
        index = [slice(None)] * x.ndim
        index[ax] = slice(k, k + 1) if keepdims else k
        out, out_mode = x[tuple(index)], f"slice {k} of x along the axis"
    note(f"x: {desc}; axis={axis!r} keepdims={keepdims} out: {out_mode}")
    if rdt is not None and shape is not None:
        check_out(expect, out, shape, rdt, "out")
    else:
        maybe_bad_out(expect, out, "out")

    xc = None if is_refused(dt) else np.array(x)
    aliased = (
        isinstance(out, np.ndarray) and isinstance(x, np.ndarray) and np.may_share_memory(out, x)
    )
    if not aliased:
        fill_sentinel(out)
    kwargs = {} if not axis_given else {"axis": axis}
    if op == "logsumexp" and keepdims:
        kwargs["keepdims"] = keepdims
    if out is not None:
        kwargs["out"] = out
    inputs = [x] if isinstance(x, np.ndarray) else []
    before_x = snapshot(inputs)
    res = call_checked(lambda: fn(x, **kwargs), expect, buffers=[out], inputs=inputs)
    if res is RAISED:
        return
    event(f"returned with out {out_mode.split()[0]}")
    # Success: the documented dtype, the reference values, the buffer returned.
    if out is not None:
        assert res is out, "out= given: the result must be out itself"
    elif op == "logsumexp" and len(shape) == 0:
        assert isinstance(res, np.floating) and not isinstance(res, np.ndarray), type(res)
    else:
        assert isinstance(res, np.ndarray) and res.flags.writeable
    assert np.asarray(res).dtype == rdt, (np.asarray(res).dtype, rdt)
    want = oracle(xc, ax, keepdims) if op == "logsumexp" else oracle(xc, ax)
    assert_matches(res, want, rdt, f"{op} of {desc} axis={axis} out {out_mode}")
    if not aliased:
        assert snapshot(inputs) == before_x, "the input changed"


@pytest.mark.parametrize("op", list(ROW_OPS))
@fuzz("row_ops")
@given(data=st.data())
def test_row_ops_fuzz(op, data):
    row_op_call(op, data)


# ---------------------------------------------------------------------------
# cross_entropy, cross_entropy_with_grad

GOOD_REDUCTION = st.sampled_from(["mean", "sum", "none"])
BAD_REDUCTION = st.sampled_from(["avg", "", "MEAN", "mean ", None, 1, b"mean"])
GOOD_SMOOTHING = st.one_of(
    st.floats(0.0, 1.0), st.sampled_from([0.0, 1.0, 0, 1, np.float32(0.25), np.float64(1.0)])
)
BAD_SMOOTHING = st.sampled_from(
    [-0.1, 1.0000001, -1e-300, math.nan, math.inf, -math.inf, None, "x", [0.1], 1 + 0j]
)
BAD_IGNORE = st.sampled_from([2**63, -(2**63) - 1, 2**100, 1.5, "1", None, np.float64(2)])
LOGIT_SHAPES = st.one_of(
    st.tuples(SIDES, SIDES),
    st.tuples(SIDES, SIDES),
    st.tuples(SIDES, st.integers(9, 40)),
    st.tuples(st.integers(9, 40), SIDES),
)


def arrange(draw, values: np.ndarray, layouts=LAYOUTS):
    return draw(laid_out(values, layouts))


@st.composite
def label_target(draw, n: int, q: int, ignore: int | None, bad: bool):
    """Class indices for n rows of q classes, of any integer dtype, in any
    layout: in range or ignore_index; when bad, some out of range, or the
    wrong length, or not integers."""
    dt = draw(st.sampled_from(INT_TYPES))
    if ignore is None:  # no ignore_index (Trainer.fit): every label a class
        ignore, q = 0, max(q, 1)
    if not q and not np.iinfo(dt).min <= ignore <= np.iinfo(dt).max:
        dt = np.dtype(np.int64)  # no classes: every label must be ignore_index
    info = np.iinfo(dt)
    how = draw(st.sampled_from(["range", "range", "length", "float", "2-D", "0-d"])) if bad else ""
    n_labels = n if how != "length" else draw(st.sampled_from([n + 1, max(n - 1, 0), 0, n + 5]))
    if n_labels == n and how == "length":
        n_labels = n + 1
    good = [st.integers(0, q - 1)] * 6 if q else []
    if info.min <= ignore <= info.max:
        good.append(st.just(ignore))
    if not good:
        good = [st.just(ignore)]
    pool = list(good)
    if how == "range":
        pool += [
            st.integers(-3, q + 3),
            st.sampled_from([-100, -1, q, q + 1, 2**31, 2**63 - 1, 2**64 - 1, -(2**63)]),
        ]
    values = [draw(st.one_of(pool)) for _ in range(n_labels)]
    values = [
        v
        if info.min <= v <= info.max and (how or (0 <= v < q or v == ignore))
        else (0 if q else ignore)
        for v in values
    ]
    if how == "range" and values and all(0 <= v < q or v == ignore for v in values):
        # make sure one is out of range (when the dtype can hold one)
        for cand in (q, -1, q + 7, 2**63 - 1, 2**64 - 1):
            if info.min <= cand <= info.max and cand != ignore:
                values[draw(st.integers(0, len(values) - 1))] = cand
                break
    t = np.array(values, dtype=dt) if values or how else np.zeros(0, dt)
    if how == "float":
        t = t.astype(draw(st.sampled_from([np.float64, np.float32, np.bool_, np.complex64])))
        if t.size == 0:
            t = np.zeros(1, np.float64)
    elif how == "2-D":
        t = t.reshape(-1, 1).astype(np.int64)
    elif how == "0-d":
        return draw(st.sampled_from([np.int64(1), 1, "abc", None, np.zeros((n, q, 1))])), "0-d/odd"
    x, layout = arrange(draw, t, ["C", "C", "C", "list", "strided", "readonly", "broadcast"])
    return x, f"labels {t.dtype.str} ({len(values)},) {how or 'good'} {layout}"


@st.composite
def prob_target(draw, n: int, q: int, kd: np.dtype, bad: bool):
    """Probability targets (n, q) of the logits' dtype (when bad: another
    dtype or shape)."""
    how = draw(st.sampled_from(["dtype", "shape"])) if bad else ""
    pdt = kd if draw(st.integers(0, 3)) else kd.newbyteorder()
    if how == "dtype":
        pdt = draw(st.sampled_from([F32, F64, np.dtype(np.float16), np.dtype(np.int64)]))
        if pdt == kd:
            pdt = np.dtype(np.float16)
    pshape = (n, q)
    if how == "shape":
        pshape = draw(st.sampled_from([(n, q + 1), (n + 1, q), (n, q, 1), (n * q,)]))
    elements = st.one_of(
        st.floats(0, 1, width=32),
        st.sampled_from([0.0, 1.0, -1.0, 2.0, 0.5, math.nan, math.inf, -math.inf, 1e30, 1e-30]),
    )
    if pdt.kind != "f":
        elements = st.integers(0, 1)
    values = draw(hnp.arrays(pdt.newbyteorder("="), pshape, elements=elements)).astype(pdt)
    x, layout = arrange(draw, values)
    return x, f"probs {pdt.str} {pshape} {how or 'good'} {layout}"


@st.composite
def class_weight(draw, q: int, kd: np.dtype, bad: bool):
    how = draw(st.sampled_from(["length", "dtype", "2-D"])) if bad else ""
    wq = q if how != "length" else draw(st.sampled_from([q + 1, max(q - 1, 0), 0]))
    if wq == q and how == "length":
        wq = q + 1
    wdt = draw(
        st.sampled_from(
            [kd, kd, F32, F64, np.dtype(np.int64), F64.newbyteorder(), np.dtype(np.float16)]
        )
    )
    if how == "dtype":
        wdt = draw(st.sampled_from([np.dtype(np.complex128), np.dtype(object), np.dtype("U2")]))
    if wdt.kind == "f":
        welem = st.one_of(st.floats(0.125, 10, width=16), st.just(0.0), st.just(1.0))
    elif wdt.kind in "iu":
        welem = st.integers(0, 10)
    else:
        welem = None
    if welem is None:
        w = np.ones(wq).astype(wdt)
    else:
        w = draw(hnp.arrays(wdt.newbyteorder("="), (wq,), elements=welem)).astype(wdt)
    if how == "2-D":
        w = w.reshape(1, -1)
    x, layout = arrange(
        draw, w, ["C", "C", "strided", "readonly", "broadcast", "list", "unaligned"]
    )
    return x, f"weight {wdt.str} {w.shape} {how or 'good'} {layout}"


OPTION_NAMES = ("reduction", "label_smoothing", "ignore_index")


@st.composite
def ce_case(draw, with_grad: bool):
    names = ["logits", "target", "weight", "reduction", "label_smoothing", "ignore_index"]
    bad = draw(spoiled(names + (["grad_out"] if with_grad else [])))
    if "logits" in bad:
        if draw(st.booleans()):
            logits, ldesc = draw(arrays(REFUSED_DTYPE, shape=draw(LOGIT_SHAPES)))
        else:
            not_2d = draw(st.sampled_from([(), (3,), (0,), (4,), (2, 3, 4), (4, 0, 1)]))
            logits, ldesc = draw(arrays(ANY_DTYPE, shape=not_2d))
    else:
        logits, ldesc = draw(arrays(REAL_DTYPE, shape=draw(LOGIT_SHAPES)))
    ldt = dtype_of(logits)
    lshape = np.shape(logits)
    n, q = lshape if len(lshape) == 2 else (3, 4)
    kd = F64 if is_refused(ldt) else result_dtype(ldt)
    kw: dict = {}
    if "reduction" in bad:
        kw["reduction"] = draw(BAD_REDUCTION)
    elif draw(st.booleans()):
        kw["reduction"] = draw(GOOD_REDUCTION)
    if "label_smoothing" in bad:
        kw["label_smoothing"] = draw(BAD_SMOOTHING)
    elif draw(st.booleans()):
        kw["label_smoothing"] = draw(GOOD_SMOOTHING)
    probs = draw(st.integers(0, 2)) == 0
    if "ignore_index" in bad:
        kw["ignore_index"] = draw(BAD_IGNORE) if not probs or draw(st.booleans()) else 1
    elif not probs and draw(st.integers(0, 2)) == 0:
        kw["ignore_index"] = draw(
            st.sampled_from(
                [-1, 0, 1, q - 1, q, 2**40, -(2**63), 2**63 - 1, np.int8(1), np.uint64(3)]
            )
        )
    ig = kw.get("ignore_index", -100)
    ig = int(ig) if isinstance(ig, (int, np.integer)) and -(2**63) <= ig < 2**63 else -100
    if probs:
        target, tdesc = draw(prob_target(n, q, kd, "target" in bad))
    else:
        target, tdesc = draw(label_target(n, q, ig, "target" in bad))
    if "weight" in bad or draw(st.integers(0, 2)) == 0:
        kw["weight"], wdesc = draw(class_weight(q, kd, "weight" in bad))
    else:
        wdesc = "no weight"
    gmode = "none"
    if with_grad:
        gshape = (n, q) if len(lshape) == 2 else None
        if "grad_out" not in bad and can_alias(target, (n, q), kd) and draw(st.integers(0, 5)) == 0:
            kw["grad_out"], gmode = target, "the target itself"
        else:
            gdt = None if is_refused(ldt) else kd  # unknown when the logits are refused
            logits, grad_out, gmode = draw(out_buffer(logits, gshape, gdt, "grad_out" in bad))
            if grad_out is not None or draw(st.booleans()):
                kw["grad_out"] = grad_out
    return (
        logits,
        target,
        kw,
        f"spoiled {sorted(bad)}: logits {ldesc}; {tdesc}; {wdesc}; grad_out {gmode}; "
        f"options { ({k: v for k, v in kw.items() if k in OPTION_NAMES}) }",
    )


def ce_expect(logits, target, kw, with_grad) -> tuple[Expect, dict | None]:
    """The errors allowed, and (when the call must succeed) what the
    reference needs."""
    e = Expect()
    reduction = kw.get("reduction", "mean")
    if not (isinstance(reduction, str) and reduction in ("mean", "sum", "none")):
        e.add("reduction", ValueError)
    ls = kw.get("label_smoothing", 0.0)
    try:
        eps = float(ls)
    except (TypeError, ValueError):
        e.add("label_smoothing", TypeError)
        eps = 0.0
    else:
        if not 0.0 <= eps <= 1.0:
            e.add("label_smoothing", ValueError)
    ignore = kw.get("ignore_index", -100)
    try:
        ig = operator.index(ignore)
    except TypeError:
        e.add("ignore_index", TypeError)
        ig = -100
    else:
        if not -(2**63) <= ig < 2**63:
            e.add("ignore_index", ValueError)
    ldt = dtype_of(logits)
    lshape = np.shape(logits)
    grad_out = kw.get("grad_out")
    if is_refused(ldt) or len(lshape) != 2:
        e.add("logits", TypeError if is_refused(ldt) else ValueError)
        # n and q unknown: an error about any other argument will do.
        for name in ("target", "weight", "grad_out", "ignore_index"):
            e.add(name)
        return e, None
    kd = result_dtype(ldt)
    n, q = lshape
    t = np.asarray(target)
    labels = None
    if t.ndim == 2:
        if t.dtype.type is not kd.type:
            e.add("target", TypeError)
        elif t.shape != (n, q):
            e.add("target", ValueError)
        elif ig != -100:
            e.add("ignore_index", ValueError)
    elif t.ndim == 1:
        if t.dtype.kind not in "iu" and not (t.size == 0 and t.dtype.kind == "f"):
            e.add("target", TypeError)
        elif t.shape != (n,):
            e.add("target", ValueError)
        else:
            values = [int(v) for v in t.tolist()]
            bad = [v for v in values if not (0 <= v < q) and v != ig]
            if bad:
                e.add("target", ValueError)
                e.label_values.update(bad)
            else:
                labels = np.array(values, dtype=np.int64)
    else:
        e.add("target", ValueError if t.dtype.kind in "biufc" else TypeError)
        e.add("target")
    w = kw.get("weight")
    if w is not None:
        wa = np.asarray(w)
        if is_refused(wa.dtype):
            e.add("weight", TypeError)
        elif wa.shape != (q,):
            e.add("weight", ValueError)
    if with_grad:
        check_out(e, grad_out, (n, q), kd, "grad_out")
    if e:
        return e, None
    w_ref = None if w is None else np.asarray(w).astype(kd)  # computed in the logits' precision
    t_ref = labels if labels is not None else np.array(t)
    return e, dict(
        kd=kd,
        target=t_ref,
        weight=w_ref,
        ignore_index=ig,
        reduction=reduction,
        label_smoothing=eps,
    )


F32_MAX = float(np.finfo(np.float32).max)


def spans_float32_range(logits64: np.ndarray) -> bool:
    """A float32 row whose finite values span more than float32's range:
    ``x - max`` overflows in float32, as in PyTorch, where the float64
    reference stays finite (documented in test_cross_entropy.py)."""
    with np.errstate(invalid="ignore"):
        finite = np.where(np.isfinite(logits64), logits64, np.nan)
        if finite.size == 0 or np.isnan(finite).all():
            return False
        import warnings

        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            span = np.nanmax(finite, axis=1) - np.nanmin(finite, axis=1)
    return bool(np.any(span >= F32_MAX))


def reference_sums_overflow(logits: np.ndarray, spec: dict, dtype: np.dtype) -> bool:
    """Could a row's sum of w * t * log p (in PyTorch's order) overflow dtype?

    The reference sums in float64 and rounds at the end; PyTorch, and the
    kernels, sum float32 rows in float32.  Where such a sum overflows the
    two legitimately disagree (inf against a finite value), so these rows
    are beyond the comparison -- as test_cross_entropy.py keeps its
    adversarial logits to "no intermediate of PyTorch's formula overflows".
    """
    x = np.asarray(logits, np.float64)
    with np.errstate(all="ignore"):
        finite = np.where(np.isfinite(x), x, np.nan)
        if finite.size == 0 or np.isnan(finite).all():
            return False
        import warnings

        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            span = np.nan_to_num(np.nanmax(finite, axis=1) - np.nanmin(finite, axis=1))
        scale = 1.0
        if spec["weight"] is not None and spec["weight"].size:
            scale *= max(1.0, float(np.nanmax(np.abs(np.asarray(spec["weight"], np.float64)))))
        t = spec["target"]
        if t.ndim == 2 and t.size:
            tt = np.abs(t.astype(np.float64))
            tt = tt[np.isfinite(tt)]
            scale *= max(1.0, float(tt.max())) if tt.size else 1.0
        return bool(np.any(span * x.shape[1] * scale >= float(np.finfo(dtype).max) / 4))


def target_mass_slack(logits: np.ndarray, spec: dict, dtype: np.dtype):
    """Extra absolute tolerance (loss, grad) for probability targets.

    The loss of a row is -sum_k c_k (x_k - max - log s), c = w * t'; each
    term carries an error of about eps * |c_k| * (|x_k - max| + 1), and
    terms of either sign (targets may be negative or huge) cancel, so the
    error is relative to sum_k |c_k| (|x_k - max| + 1), not to the loss.
    Likewise the gradient p * sum(c) - c to sum_k |c_k|.  None for labels.
    """
    t = spec["target"]
    if t.ndim != 2 or t.size == 0:
        return None
    n, q = t.shape
    e = spec["label_smoothing"]
    with np.errstate(all="ignore"):
        x = np.asarray(logits, np.float64)
        w = np.ones(q) if spec["weight"] is None else np.abs(spec["weight"].astype(np.float64))
        c = np.abs(((1 - e) * t.astype(np.float64) + e / q) * w)
        d = np.abs(x - np.max(x, axis=1, keepdims=True)) + 1
        eps = float(np.finfo(dtype).eps)
        rows = 8 * eps * np.nansum(c * np.where(np.isfinite(d), d, 0), axis=1)
        mass = 8 * eps * np.nansum(c, axis=1)
    denom = n if spec["reduction"] == "mean" else 1
    loss = rows if spec["reduction"] == "none" else rows.sum() / denom
    return loss, (mass / denom)[:, None] * np.ones((1, q))


def non_finite_alike(got, ref, rows):
    """ref, where both it and got are non-finite in the rows marked (for a
    reduced loss: in any row), replaced by got: nan and +-inf alike there."""
    g = np.asarray(got, np.float64)
    r = np.array(ref, np.float64)
    mark = np.broadcast_to(rows, r.shape) if r.ndim else np.asarray(rows.any())
    same = mark & ~np.isfinite(g) & ~np.isfinite(r)
    return np.where(same, g, r)


def assert_matches_within(got, ref, dtype, slack, what: str) -> None:
    """helpers.assert_matches, with an extra absolute tolerance (array or
    None); nan and inf positions must still agree exactly."""
    if slack is None:
        assert_matches(got, ref, dtype, what)
        return
    dtype = np.dtype(dtype)
    g = np.asarray(got).astype(np.float64)
    r = np.asarray(ref, np.float64)
    assert np.asarray(got).dtype == dtype and g.shape == r.shape, what
    rr = rounded(r, dtype)
    for name, test in (("nan", np.isnan), ("+inf", np.isposinf), ("-inf", np.isneginf)):
        assert np.array_equal(test(g), test(rr)), f"{what}: {name} positions differ"
    ok = np.isfinite(rr)
    tol = TOLERANCES[dtype]
    bound = tol["rtol"] * np.abs(r) + tol["atol"] + np.broadcast_to(slack, r.shape)
    err = np.abs(g - r)
    bad = ok & ~(err <= bound)
    assert not bad.any(), (
        f"{what}: got {g[bad][:5]}, reference {r[bad][:5]}, bound {bound[bad][:5]}"
    )


def ce_call(data, with_grad: bool):
    fn = cs.cross_entropy_with_grad if with_grad else cs.cross_entropy
    logits, target, kw, desc = data.draw(ce_case(with_grad), label="case")
    note(desc)
    # Known: +inf probability targets where the logit is the row's maximum
    # give nan, not +inf (test_infinite_probability_target_...).
    known(
        isinstance(target, (np.ndarray, list))
        and np.ndim(target) == 2
        and np.asarray(target).dtype.kind == "f"
        and np.isinf(np.asarray(target)).any()
    )
    expect, spec = ce_expect(logits, target, kw, with_grad)
    grad_out = kw.get("grad_out")
    inputs = [a for a in (logits, target, kw.get("weight")) if isinstance(a, np.ndarray)]
    aliased = isinstance(grad_out, np.ndarray) and any(
        np.may_share_memory(grad_out, a) for a in inputs
    )
    if not aliased:
        fill_sentinel(grad_out)
    copies = [np.array(a) for a in inputs]
    lc = None if spec is None else np.array(logits)
    res = call_checked(lambda: fn(logits, target, **kw), expect, buffers=[grad_out], inputs=inputs)
    if res is RAISED:
        return
    event(f"returned with grad_out {desc.split('grad_out ')[1].split(';')[0].split()[0]}")
    kd = spec["kd"]
    n, q = lc.shape
    loss, grad = res if with_grad else (res, None)
    if spec["reduction"] == "none":
        assert isinstance(loss, np.ndarray) and loss.shape == (n,) and loss.dtype == kd
    else:
        assert isinstance(loss, np.floating) and not isinstance(loss, np.ndarray), type(loss)
        assert loss.dtype == kd
    if with_grad:
        if grad_out is not None:
            assert grad is grad_out, "grad_out given: the gradient must be grad_out itself"
        assert isinstance(grad, np.ndarray) and grad.shape == (n, q) and grad.dtype == kd
    if not aliased:
        for a, c in zip(inputs, copies):
            assert a.tobytes() == c.tobytes(), "an input changed"
    if kd == F32 and spans_float32_range(lc.astype(np.float64)):
        note("float32 rows spanning the float32 range: PyTorch's float32 overflow, not compared")
        return
    if reference_sums_overflow(lc, spec, kd):
        note("the reference's float64 row sums overflow (PyTorch's order): not compared")
        return
    if q == 0:
        # No classes: every label is ignored; sums over no classes are 0
        # (NumPy's empty sum), the mean over no counted weight nan (0/0).
        probs = spec["target"].ndim == 2
        ref_grad = np.zeros((n, 0))
        ref_loss = {
            "none": np.zeros(n),
            "sum": 0.0,
            "mean": 0.0 if probs and n else math.nan,
        }[spec["reduction"]]
    else:
        ref_loss, ref_grad = ref.cross_entropy(
            lc,
            spec["target"],
            spec["weight"],
            ignore_index=spec["ignore_index"],
            reduction=spec["reduction"],
            label_smoothing=spec["label_smoothing"],
        )
    if kd == F32 and q and 0 < spec["label_smoothing"] / q < float(np.finfo(np.float32).tiny):
        note("label_smoothing / q underflows float32 (scaled in the logits' dtype): not compared")
        return
    t = spec["target"]
    if kd == F32 and t.ndim == 2 and t.size and not np.isfinite(t.astype(np.float64)).all():
        # Infinite targets times a log-probability that float32 rounds to
        # exactly 0 (a row maximum whose sum of exponentials rounds to 1) is
        # nan in float32, as in PyTorch, where the float64 reference has inf.
        rows = ~np.isfinite(t.astype(np.float64)).all(axis=1)
        ref_loss = non_finite_alike(loss, ref_loss, rows)
        if with_grad:
            ref_grad = non_finite_alike(grad, ref_grad, rows[:, None])
    slack = target_mass_slack(lc, spec, kd) if q else None
    assert_matches_within(loss, ref_loss, kd, slack and slack[0], f"loss {desc}")
    if with_grad:
        assert_matches_within(grad, ref_grad, kd, slack and slack[1], f"grad {desc}")
        # The fused pass gives the very loss cross_entropy gives.
        plain = cs.cross_entropy(
            lc,
            spec["target"],
            weight=spec["weight"],
            ignore_index=spec["ignore_index"],
            reduction=spec["reduction"],
            label_smoothing=spec["label_smoothing"],
        )
        assert_same_bits(loss, plain, "loss with and without the gradient")


@fuzz("cross_entropy")
@given(data=st.data())
def test_cross_entropy_fuzz(data):
    ce_call(data, with_grad=False)


@fuzz("cross_entropy_with_grad")
@given(data=st.data())
def test_cross_entropy_with_grad_fuzz(data):
    ce_call(data, with_grad=True)


# ---------------------------------------------------------------------------
# accuracy


@fuzz("accuracy")
@given(data=st.data())
def test_accuracy_fuzz(data):
    bad = data.draw(spoiled(["scores", "y"]), label="spoiled")
    if "scores" in bad and data.draw(st.booleans()):
        scores, sdesc = data.draw(arrays(REFUSED_DTYPE, shape=data.draw(LOGIT_SHAPES)))
    elif "scores" in bad:
        scores, sdesc = data.draw(
            arrays(REAL_DTYPE, shape=data.draw(st.sampled_from([(), (3,), (2, 3, 1), (3, 0)])))
        )
    else:
        scores, sdesc = data.draw(arrays(REAL_DTYPE, shape=data.draw(LOGIT_SHAPES)), label="scores")
    sshape = np.shape(scores)
    n, q = sshape if len(sshape) == 2 else (3, 3)
    if "y" in bad and data.draw(st.booleans()):
        y = data.draw(
            st.sampled_from([None, 1, "a", np.zeros(n), np.zeros(n, bool), np.zeros((n, 1), int)])
        )
        ydesc = repr(y)[:40]
    else:
        # accuracy has no ignore_index; any integer label is a class that can miss
        y, ydesc = data.draw(label_target(n, q, -100, "y" in bad))
    note(f"scores {sdesc}; y {ydesc}")
    e = Expect()
    sdt = dtype_of(scores)
    if is_refused(sdt):
        e.add("scores", TypeError)
    elif len(sshape) != 2:
        e.add("scores", ValueError)
    ya = np.asarray(y)
    if ya.dtype.kind not in "iu" and not (ya.size == 0 and ya.dtype.kind == "f"):
        e.add("y", TypeError)
    elif len(sshape) == 2 and ya.shape != (sshape[0],):
        e.add("y", ValueError)
    elif len(sshape) == 2 and sshape[0] and not sshape[1]:
        e.add("scores", ValueError)
    if e and len(sshape) != 2:
        e.add("y")
    inputs = [a for a in (scores, y) if isinstance(a, np.ndarray)]
    res = call_checked(lambda: cs.accuracy(scores, y), e, inputs=inputs)
    if res is RAISED:
        return
    want = ref.accuracy(np.array(scores), ya)
    assert isinstance(res, float)
    assert res == want or (math.isnan(res) and math.isnan(want)), (res, want)


# ---------------------------------------------------------------------------
# SoftmaxRegression


def overlapping_rows(X, dtype: np.dtype) -> bool:
    """A 2-D array of dtype whose rows overlap in memory."""
    return (
        isinstance(X, np.ndarray)
        and X.ndim == 2
        and X.dtype == dtype
        and X.shape[0] >= 1
        and X.shape[1] > 1
        and 0 <= X.strides[0] < X.shape[1] * X.itemsize
    )


def as_model_input(X, dtype: np.dtype) -> np.ndarray:
    """X as the model computes with it, in float64: converted to float64
    first when of another real type, then rounded to the model's dtype."""
    a = np.array(X)
    if not is_kernel(a.dtype):
        a = a.astype(np.float64)
    return a.astype(dtype).astype(np.float64)


def assert_gemm_close(got, a64, b64, dtype, extra=None, what=""):
    """got ~= a64 @ b64 within the classic bound of a dot product in dtype,
    k * eps * (|a| @ |b|) (k the inner length, doubled for slack), plus
    extra (an error already in b) and a few subnormals.  Rows holding a
    non-finite or huge value are not compared (IEEE order effects)."""
    got = np.asarray(got, dtype=np.float64)
    eps = float(np.finfo(dtype).eps)
    with np.errstate(all="ignore"):
        exact = a64 @ b64
        bound = 2 * (a64.shape[-1] + 2) * eps * (np.abs(a64) @ np.abs(b64))
        if extra is not None:
            bound = bound + extra
        bound = bound + 16 * float(np.finfo(dtype).smallest_subnormal) * (a64.shape[-1] + 1)
        ok_rows = np.all(np.isfinite(a64) & (np.abs(a64) < 1e6), axis=-1)
    if not ok_rows.any():
        return
    err = np.abs(got - exact)[ok_rows]
    assert np.all(err <= bound[ok_rows]), (
        f"{what}: error {err.max()} above the bound; "
        f"got {got[ok_rows][:3]}, exact {exact[ok_rows][:3]}"
    )


@st.composite
def model_inputs(draw, n: int, d: int, bad: bool):
    if not bad:
        elements = st.one_of(st.floats(-100, 100, width=32), st.sampled_from([0.0, -0.0, 1.0]))
        if draw(st.integers(0, 5)) == 0:  # the special values too (compared where finite)
            elements = None
        dt = draw(REAL_DTYPE)
        if elements is not None and dt.kind != "f":
            elements = None
        if elements is None:
            return draw(arrays(st.just(dt), shape=(n, d)))
        values = draw(hnp.arrays(dt.newbyteorder("="), (n, d), elements=elements)).astype(dt)
        return draw(laid_out(values))
    shape = draw(st.sampled_from([(n, d + 1), (n, max(d - 1, 0)), (d,), (n, d, 1), (), (d, n + 1)]))
    if shape == (n, d):
        shape = (n, d + 1)
    if draw(st.booleans()):
        return draw(arrays(REFUSED_DTYPE, shape=(n, d)))
    return draw(arrays(REAL_DTYPE, shape=shape))


@fuzz("model")
@given(data=st.data())
def test_model_fuzz(data):
    dtype = data.draw(st.sampled_from([F32, F64]), label="dtype")
    d, q, n = data.draw(st.integers(1, 7)), data.draw(st.integers(1, 7)), data.draw(SIDES)
    model = cs.SoftmaxRegression(
        d, q, dtype=dtype, init_std=1.0, seed=data.draw(st.integers(0, 99))
    )
    model.bias[:] = data.draw(hnp.arrays(dtype, q, elements=st.floats(-3, 3, width=32)))
    params = model.weight.tobytes() + model.bias.tobytes()
    method = data.draw(
        st.sampled_from(["logits", "logits_out", "predict_proba", "predict", "loss_and_grad"])
    )
    names = ["X"] + {"logits_out": ["out"], "loss_and_grad": ["y", "options"]}.get(method, [])
    bad = data.draw(spoiled(names), label="spoiled")
    X, xdesc = data.draw(model_inputs(n, d, "X" in bad), label="X")
    xs = np.shape(X)
    e = Expect()
    xdt = dtype_of(X)
    if is_refused(xdt):
        e.add("X", TypeError)
    elif xs != (xs[0] if xs else -1, d) or len(xs) != 2:
        e.add("X", ValueError)
    nn = xs[0] if len(xs) == 2 else n
    note(f"model {d}x{q} {dtype}; {method}; X {xdesc}")
    # Known: rows overlapping in memory (broadcast, sliding windows) of the
    # model's dtype go to BLAS as they are (test_model_rows_overlapping_...).
    known(overlapping_rows(X, dtype))
    w64 = model.weight.astype(np.float64)
    b64 = model.bias.astype(np.float64)
    inputs = [X] if isinstance(X, np.ndarray) else []

    if method in ("logits", "logits_out"):
        out = None
        if method == "logits_out":
            _, out, omode = data.draw(out_buffer(None, (nn, q), dtype, "out" in bad), label="out")
            if out is not None:
                check_out(e, out, (nn, q), dtype, "out")
                fill_sentinel(out)
            note(f"out {omode}")
        kw = {} if out is None else {"out": out}
        res = call_checked(lambda: model.logits(X, **kw), e, buffers=[out], inputs=inputs)
        if res is not RAISED:
            assert res.dtype == dtype and res.shape == (nn, q)
            if out is not None:
                assert res is out
            x64 = as_model_input(X, dtype)
            assert_gemm_close(
                res - b64,
                x64,
                w64,
                dtype,
                extra=np.abs(b64) * 4 * float(np.finfo(dtype).eps),
                what="logits",
            )
    elif method == "predict_proba":
        res = call_checked(lambda: model.predict_proba(X), e, inputs=inputs)
        if res is not RAISED:
            assert_same_bits(
                res, cs.softmax(model.logits(X)), "predict_proba is the softmax of the logits"
            )
    elif method == "predict":
        res = call_checked(lambda: model.predict(X), e, inputs=inputs)
        if res is not RAISED:
            want = np.argmax(model.logits(X), axis=1)
            assert res.dtype.kind == "i" and np.array_equal(res, want)
    else:
        # The options of the cross-entropy, good or bad; y names "target" or "y".
        kw: dict = {}
        opt_bad = "options" in bad
        which = data.draw(
            st.sampled_from(["reduction", "label_smoothing", "ignore_index", "weight"])
        )
        if data.draw(st.booleans()) or opt_bad:
            if which == "reduction":
                kw["reduction"] = data.draw(BAD_REDUCTION if opt_bad else GOOD_REDUCTION)
            elif which == "label_smoothing":
                kw["label_smoothing"] = data.draw(BAD_SMOOTHING if opt_bad else GOOD_SMOOTHING)
            elif which == "ignore_index":
                kw["ignore_index"] = data.draw(BAD_IGNORE if opt_bad else st.integers(-2, q + 1))
            else:
                kw["weight"], _ = data.draw(class_weight(q, dtype, opt_bad))
        ig = kw.get("ignore_index", -100)
        ig = int(ig) if isinstance(ig, (int, np.integer)) and -(2**63) <= ig < 2**63 else -100
        y, ydesc = data.draw(label_target(nn, q, ig, "y" in bad), label="y")
        note(f"y {ydesc}; options {kw}")
        if not e:
            logits = model.logits(X)
            expect, spec = ce_expect(logits, y, kw, with_grad=False)
        else:
            expect, spec = Expect(), None
            for name in ("target", "weight", "reduction", "label_smoothing", "ignore_index"):
                expect.add(name)
        e.allowed |= expect.allowed
        e.label_values |= expect.label_values
        if ("target", ValueError) in e.allowed or ("target", TypeError) in e.allowed:
            e.add("y")
        res = call_checked(lambda: model.loss_and_grad(X, y, **kw), e, inputs=inputs)
        if res is not RAISED:
            loss, gw, gb = res
            assert (
                gw.dtype == dtype and gw.shape == (d, q) and gb.dtype == dtype and gb.shape == (q,)
            )
            ref_loss, g = ref.cross_entropy(
                logits,
                spec["target"],
                spec["weight"],
                ignore_index=spec["ignore_index"],
                reduction=spec["reduction"],
                label_smoothing=spec["label_smoothing"],
            )
            assert_matches(loss, ref_loss, dtype, "loss")
            # Known: the bias gradient may be nan from uninitialised memory
            # (test_bias_gradient_does_not_depend_on_uninitialised_memory).
            known(np.isnan(gb).any() and np.isfinite(g).all())
            x64 = as_model_input(X, dtype)
            if np.all(np.isfinite(g)) and np.all(np.isfinite(x64)):
                tol = TOLERANCES[dtype]
                g_err = tol["rtol"] * np.abs(g) + tol["atol"]
                assert_gemm_close(
                    gw, x64.T, g, dtype, extra=np.abs(x64.T) @ g_err, what="grad_weight"
                )
                ones = np.ones((1, nn))
                assert_gemm_close(gb[None], ones, g, dtype, extra=ones @ g_err, what="grad_bias")
    assert model.weight.tobytes() + model.bias.tobytes() == params, "the parameters changed"


@fuzz("model_save_load")
@given(data=st.data())
def test_model_save_load_fuzz(data, scratch):
    dtype = data.draw(st.sampled_from([F32, F64]))
    d, q = data.draw(st.integers(1, 9)), data.draw(st.integers(1, 9))
    model = cs.SoftmaxRegression(d, q, dtype=dtype, seed=0)
    model.weight[...] = data.draw(hnp.arrays(dtype, (d, q), elements=float_elements(dtype)))
    model.bias[...] = data.draw(hnp.arrays(dtype, (q,), elements=float_elements(dtype)))
    if data.draw(st.booleans()):
        model.class_names = data.draw(st.lists(st.text(max_size=12), min_size=q, max_size=q))
    name = data.draw(
        st.sampled_from(["model.npz", "m", "with space.npz", "ünïcode.npz", ".hidden.npz"])
    )
    path = scratch / name
    kind = data.draw(st.sampled_from([str, lambda p: p]))
    model.save(kind(path))
    back = cs.SoftmaxRegression.load(kind(path))
    assert back.dtype == dtype and back.weight.shape == (d, q) and back.bias.shape == (q,)
    assert back.weight.tobytes() == model.weight.tobytes()
    assert back.bias.tobytes() == model.bias.tobytes()
    assert back.class_names == model.class_names
    assert back.weight.flags.c_contiguous and back.weight.flags.writeable
    assert sorted(os.listdir(scratch)) == [name], "a temporary file was left behind"
    path.unlink()


@pytest.fixture(scope="module")
def scratch(tmp_path_factory):
    return tmp_path_factory.mktemp("fuzz-save")


# ---------------------------------------------------------------------------
# Trainer


def manual_fit(X, y, d, q, dtype, seed, opt_kw, batch_size, epochs):
    """The textbook loop: the trainer's step (StepRunner, whose numbers
    test_train_step.py checks) on each slice, SGD."""
    model = cs.SoftmaxRegression(d, q, dtype=dtype, seed=seed)
    opt = cs.SGD(**opt_kw)
    x = np.ascontiguousarray(
        np.asarray(X).astype(np.float64) if not is_kernel(dtype_of(X)) else X, dtype=dtype
    )
    labels = np.ascontiguousarray(np.asarray(y), dtype=np.int64)
    runner = StepRunner(model, batch_size)
    losses = []
    for _ in range(epochs):
        total = 0.0
        for start in range(0, len(x), batch_size):
            count = min(batch_size, len(x) - start)
            total += runner.step(x, labels, None, start, count, 1.0)[0]
            opt.step((model.weight, model.bias), (runner.grad_w, runner.grad_b))
        losses.append(total / len(x) if len(x) else math.nan)
    return model, losses


@fuzz("trainer")
@given(data=st.data())
def test_trainer_fuzz(data):
    dtype = data.draw(st.sampled_from([F32, F64]))
    d, q = data.draw(st.integers(1, 5)), data.draw(st.integers(1, 5))
    n = data.draw(st.integers(0, 24))
    seed = data.draw(st.integers(0, 2**31))
    momentum = data.draw(st.sampled_from([0.0, 0.0, 0.5, 0.9]))
    opt_kw = dict(
        lr=data.draw(st.sampled_from([0.0, 0.05, 0.5, 1.0])),
        momentum=momentum,
        weight_decay=data.draw(st.sampled_from([0.0, 1e-3])),
        nesterov=bool(momentum) and data.draw(st.booleans()),
    )
    batch_size = data.draw(st.integers(1, 9))
    shuffle = data.draw(st.booleans())
    epochs = data.draw(st.integers(0, 3))
    bad = data.draw(spoiled(["X", "y", "epochs", "validation_data"]), label="spoiled")
    X, xdesc = data.draw(model_inputs(n, d, "X" in bad), label="X")
    xs = np.shape(X)
    nn = xs[0] if len(xs) == 2 else n
    y, ydesc = data.draw(label_target(nn, q, None, "y" in bad), label="y")
    e = Expect()
    if is_refused(dtype_of(X)):
        e.add("X", TypeError)
    elif len(xs) != 2 or xs[1] != d:
        e.add("X", ValueError)
    ya = np.asarray(y)
    if ya.dtype.kind not in "iu" and not (ya.size == 0 and ya.dtype.kind == "f"):
        e.add("y", TypeError)  # [] is no labels (float64 to NumPy), as in cross_entropy
    elif len(xs) == 2 and ya.shape != (nn,):
        e.add("y", ValueError)
    elif ya.size and any(not 0 <= int(v) < q for v in ya.ravel().tolist()):
        e.add("y", ValueError)
    if e:
        e.add("y")
    if "epochs" in bad:
        epochs_arg = data.draw(st.sampled_from([-1, 1.5, None, "2", True]))
        e.add("epochs")
    else:
        epochs_arg = data.draw(st.sampled_from([epochs, np.int64(epochs)]))
    fit_kw = {"epochs": epochs_arg}
    if "validation_data" in bad:
        fit_kw["validation_data"] = data.draw(
            st.sampled_from(
                [
                    np.zeros((2, d)),
                    (np.zeros((2, d)),),
                    (np.zeros((2, d + 1)), [0, 0]),
                    (np.zeros((2, d)), [q, 0]),
                    (np.zeros((2, d)), [0.5, 0]),
                ]
            )
        )
        e.add("validation_data")
        # Labels of the validation data are checked under the name "y"
        # (test_validation_label_errors_name_validation_data pins this).
        e.add("y")
    elif data.draw(st.booleans()):
        Xv, _ = data.draw(model_inputs(data.draw(st.integers(0, 6)), d, False))
        yv, _ = data.draw(label_target(np.shape(Xv)[0], q, None, False))
        fit_kw["validation_data"] = data.draw(st.sampled_from([(Xv, yv), [Xv, yv]]))
    note(
        f"{dtype} d={d} q={q}; X {xdesc}; y {ydesc}; {opt_kw}; batch {batch_size} "
        f"shuffle {shuffle}; fit {list(fit_kw)} epochs {epochs_arg!r}"
    )

    def make():
        return cs.Trainer(
            cs.SoftmaxRegression(d, q, dtype=dtype, seed=seed),
            cs.SGD(**opt_kw),
            batch_size=batch_size,
            shuffle=shuffle,
            seed=seed,
            progress=False,
        )

    t = make()
    params = t.model.weight.tobytes() + t.model.bias.tobytes()
    inputs = [a for a in (X, y) if isinstance(a, np.ndarray)]
    h = call_checked(lambda: t.fit(X, y, **fit_kw), e, inputs=inputs)
    if h is RAISED:
        assert t.model.weight.tobytes() + t.model.bias.tobytes() == params
        assert t.epoch == 0 and len(t.history) == 0
        return
    assert isinstance(h, cs.History) and len(h) == epochs and t.epoch == epochs
    assert not h.interrupted
    for key in ("train_loss", "train_acc", "val_loss", "val_acc", "seconds"):
        assert len(h[key]) == epochs
    finite_x = np.all(np.isfinite(as_model_input(X, dtype))) if nn else True

    def nan_model(m):
        return bool(np.isnan(m.weight).any() or np.isnan(m.bias).any())

    # Known: the first step's bias gradient may be nan from uninitialised
    # memory (test_bias_gradient_does_not_depend_on_uninitialised_memory).
    known(finite_x and nan_model(t.model))
    if not shuffle:
        model, losses = manual_fit(X, y, d, q, dtype, seed, opt_kw, batch_size, epochs)
        known(finite_x and nan_model(model))
        assert t.model.weight.tobytes() == model.weight.tobytes(), "weights differ from the loop"
        assert t.model.bias.tobytes() == model.bias.tobytes(), "bias differs from the loop"
        np.testing.assert_allclose(h.train_loss, losses, rtol=1e-6, equal_nan=True)
    else:
        again = make()
        again.fit(X, y, **fit_kw)
        known(finite_x and nan_model(again.model))
        assert again.model.weight.tobytes() == t.model.weight.tobytes(), "same seed, other weights"
    for acc in h.train_acc:
        assert (math.isnan(acc) and nn == 0) or 0.0 <= acc <= 1.0
    if finite_x and nn:
        scores = t.evaluate(X, y)
        logits = t.model.logits(np.array(X))  # a copy: see overlapping_rows
        want_loss = (
            ref.cross_entropy(logits, np.asarray(y).astype(np.int64), reduction="sum")[0] / nn
        )
        assert_matches(
            np.asarray(scores["loss"], dtype), want_loss, dtype, "evaluate loss"
        ) if dtype == F64 else np.testing.assert_allclose(
            scores["loss"], want_loss, rtol=1e-5, atol=1e-6, equal_nan=True
        )
        assert scores["accuracy"] == ref.accuracy(logits, np.asarray(y))


# ---------------------------------------------------------------------------
# Every SIMD path, several thread counts: the reference, and the same bits


SIMD_PATHS = list(_core.simd_available())


@fuzz("simd_threads")
@given(data=st.data())
def test_simd_paths_and_threads_fuzz(data):
    """Larger arrays (up to 300 rows of 70) from a seeded generator with
    special values sprinkled in: each SIMD path matches the reference, and
    2 or 3 threads give the bits of 1 (API.md: "bitwise identical whatever
    the number of threads")."""
    op = data.draw(st.sampled_from(["softmax", "log_softmax", "logsumexp", "ce", "ce_probs"]))
    dtype = data.draw(st.sampled_from([F32, F64]))
    n, q = data.draw(st.integers(1, 300)), data.draw(st.integers(1, 70))
    rng = np.random.default_rng(data.draw(st.integers(0, 2**32 - 1)))
    scale = data.draw(st.sampled_from([1.0, 10.0, 100.0, 1e4]))
    x = (rng.standard_normal((n, q)) * scale).astype(dtype)
    for _ in range(data.draw(st.integers(0, 6))):
        i, j = data.draw(st.integers(0, n - 1)), data.draw(st.integers(0, q - 1))
        x[i, j] = data.draw(st.sampled_from(specials(dtype)))
    kw: dict = {}
    if op.startswith("ce"):
        if op == "ce_probs":
            target = rng.dirichlet(np.ones(q), n).astype(dtype)
        else:
            target = rng.integers(0, q, n)
            if data.draw(st.booleans()):
                target[rng.random(n) < 0.2] = -100
        kw["reduction"] = data.draw(st.sampled_from(["mean", "sum", "none"]))
        kw["label_smoothing"] = data.draw(st.sampled_from([0.0, 0.1, 1.0]))
        if data.draw(st.booleans()):
            kw["weight"] = rng.uniform(0.25, 4, q).astype(dtype)
    note(f"{op} {dtype} ({n}, {q}) scale {scale} {sorted(kw)}")

    def compute():
        if op == "softmax":
            return (cs.softmax(x),)
        if op == "log_softmax":
            return (cs.log_softmax(x),)
        if op == "logsumexp":
            return (cs.logsumexp(x, axis=data_axis),)
        return cs.cross_entropy_with_grad(x, target, **kw)

    data_axis = data.draw(st.sampled_from([0, 1, -1])) if op == "logsumexp" else -1
    if op == "softmax":
        want = (ref.softmax(x),)
    elif op == "log_softmax":
        want = (ref.log_softmax(x),)
    elif op == "logsumexp":
        want = (ref.logsumexp(x, data_axis),)
    else:
        w = kw.get("weight")
        want = ref.cross_entropy(
            x, target, w, reduction=kw["reduction"], label_smoothing=kw["label_smoothing"]
        )
    compare = not (
        op.startswith("ce")
        and (
            (dtype == F32 and spans_float32_range(x.astype(np.float64)))
            or reference_sums_overflow(
                x, {"weight": kw.get("weight"), "target": np.asarray(target)}, dtype
            )
        )
    )
    for simd in SIMD_PATHS:
        _core.set_simd(simd)
        base = None
        for threads in (1, 2, 3):
            cs.set_num_threads(threads)
            got = compute()
            if base is None:
                base = got
                if compare:
                    slacks = (None, None)
                    if op == "ce_probs":
                        spec = {
                            "target": target,
                            "weight": kw.get("weight"),
                            "label_smoothing": kw["label_smoothing"],
                            "reduction": kw["reduction"],
                        }
                        slacks = target_mass_slack(x, spec, dtype)
                    for g, r, sl in zip(got, want, slacks):
                        assert_matches_within(g, r, dtype, sl, f"{op} under {simd}")
            else:
                for g, b in zip(got, base):
                    assert_same_bits(g, b, f"{op} under {simd} with {threads} threads")


# ---------------------------------------------------------------------------
# Defects found by the fuzz tests above, each pinned by a small test that
# fails while the defect is there.  All fixed since: the uninitialised bias
# gradient (8640a46), the huge axis (dae6b62), overlapping rows given to
# GEMM, +inf probability targets, validation label errors' name and [] as
# labels in fit (e51bcb4).


@pytest.mark.parametrize("fn", [cs.softmax, cs.log_softmax, cs.logsumexp], ids=lambda f: f.__name__)
@pytest.mark.parametrize("axis", [2**63, 2**70, -(2**70)])
def test_huge_axis_raises_value_error_naming_axis(fn, axis):
    """API.md: an axis out of range raises ValueError naming axis.  The fast
    path of softmax/log_softmax (contiguous float rows) converted axis to a C
    long first and raised OverflowError for an int beyond it."""
    for x in (np.zeros((2, 3)), np.zeros(4, np.float32), np.zeros(0)):
        with pytest.raises(ValueError, match="^axis"):
            fn(x, axis=axis)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_infinite_probability_target_at_the_row_maximum(dtype):
    """+inf in a probability target where the logit is the row's maximum:
    PyTorch (and the reference) compute -(t * log_softmax(x)).sum() =
    -(inf * -log 2) = +inf; the kernel summed t * (x - max) first, where
    inf * 0 is nan, and returned nan."""
    logits = np.array([[-1.0, 1.0], [0.0, 0.0], [0.0, 1.0]], dtype)
    target = np.array([[0.0, np.inf], [np.inf, np.inf], [np.inf, 0.0]], dtype)
    want, _ = ref.cross_entropy(logits, target, reduction="none")
    assert np.all(np.isposinf(want))
    rows = cs.cross_entropy(logits, target, reduction="none")
    assert_matches(rows, want, dtype, "row losses")  # rows 0 and 1 are nan


def poison_allocator(nbytes: int, count: int = 32) -> None:
    """Free arrays of nbytes of 0xFF (a nan in float32 and float64), so that
    the next np.empty of that size is likely to hand one back."""
    junk = [np.full(nbytes, 0xFF, np.uint8) for _ in range(count)]
    del junk


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("q", [3, 4, 10])
def test_bias_gradient_does_not_depend_on_uninitialised_memory(dtype, q):
    """linear_backward's column sums computed gb = beta * gb + sum(G) with
    beta = 0 on a buffer from np.empty: 0 * (nan or inf left there by an
    earlier array) is nan.  loss_and_grad then returned a nan bias gradient,
    and Trainer.fit (whose bias-gradient buffer is np.empty too) ruined the
    model at its first step -- even with lr=0 -- depending on what memory
    the allocator hands back: non-deterministic, silently wrong results."""
    model = cs.SoftmaxRegression(5, q, seed=0, dtype=dtype)
    X = np.ones((7, 5), dtype)
    y = np.arange(7) % q
    want = ref.cross_entropy(model.logits(X), y)[1].sum(axis=0)
    tol = dict(rtol=1e-5, atol=1e-6) if dtype == np.float32 else dict(rtol=1e-12, atol=1e-13)
    for _ in range(5):
        poison_allocator(model.bias.nbytes)
        _, _, gb = model.loss_and_grad(X, y)
        np.testing.assert_allclose(
            gb, want, err_msg="bias gradient after nan arrays were freed", **tol
        )

    t = cs.Trainer(
        cs.SoftmaxRegression(5, q, seed=0, dtype=dtype),
        cs.SGD(lr=0.0),
        batch_size=4,
        shuffle=False,
        progress=False,
    )
    before = t.model.weight.tobytes() + t.model.bias.tobytes()
    poison_allocator(t.model.bias.nbytes)
    t.fit(X, y, epochs=1)
    assert t.model.weight.tobytes() + t.model.bias.tobytes() == before, "lr=0 changed the model"


@pytest.mark.parametrize(
    "y_val, error",
    [([5, 0], ValueError), ([0.5, 0], TypeError), ([0], ValueError)],
    ids=["label out of range", "float labels", "wrong length"],
)
def test_validation_label_errors_name_validation_data(y_val, error):
    """API.md: errors name the argument.  Bad labels in validation_data were
    reported as "y: ..." -- the name of fit's training labels, which are
    fine here -- instead of "validation_data: ..." (as its X already is)."""
    t = cs.Trainer(cs.SoftmaxRegression(3, 4, seed=0), cs.SGD(), progress=False)
    with pytest.raises(error, match="^validation_data"):
        t.fit(np.zeros((2, 3)), [0, 1], epochs=1, validation_data=(np.zeros((2, 3)), y_val))


def _overlapping_inputs(dtype):
    row = np.array([1.0, -2.0, 0.5], dtype)
    return {
        "broadcast": np.broadcast_to(row, (4, 3)),  # rows of stride 0
        "sliding windows": np.lib.stride_tricks.sliding_window_view(
            np.arange(8, dtype=dtype) / 4, 3
        ),  # rows one element apart
        # One row whose stride is one element (C-contiguous to NumPy, so
        # Trainer.fit passed it on too): GEMM's leading dimension was 1.
        "one window": np.lib.stride_tricks.sliding_window_view(row, 3),
    }


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("kind", ["broadcast", "sliding windows", "one window"])
def test_model_rows_overlapping_in_memory(dtype, kind):
    """API.md: "Any layout: non-contiguous ... inputs give the same result as
    a C-contiguous copy."  model._blas_rows accepted any row stride >= 0 that
    is a whole number of elements and handed X to GEMM as it was: a row stride
    of 0 (a broadcast) became a leading dimension of n_features, so GEMM
    read past the end of X (garbage results; a segfault for a large X, see
    the next test); a row stride below a row (sliding windows) is an illegal
    leading dimension: DGEMM printed "parameter number 10 had an illegal
    value" and left the logits at the bias (and the gradient np.empty's)."""
    model = cs.SoftmaxRegression(3, 2, dtype=dtype, init_std=1.0, seed=0)
    model.bias[:] = [0.25, -0.5]
    X = _overlapping_inputs(dtype)[kind]
    copy = np.array(X)
    tol = dict(rtol=1e-5, atol=1e-6) if dtype == np.float32 else dict(rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(model.logits(X), model.logits(copy), err_msg="logits", **tol)
    np.testing.assert_allclose(model.predict_proba(X), model.predict_proba(copy), **tol)
    y = np.arange(len(copy)) % 2
    for got, want in zip(model.loss_and_grad(X, y), model.loss_and_grad(copy, y)):
        np.testing.assert_allclose(got, want, err_msg="loss_and_grad", **tol)
    t = cs.Trainer(model, cs.SGD(), progress=False)
    assert t.evaluate(X, y) == t.evaluate(copy, y)


def test_model_logits_of_a_large_broadcast_input_does_not_crash(tmp_path):
    """The same defect with a (200000, 1000) broadcast of one row: GEMM read
    1.6 GB past the 8 KB the array holds and the process died (SIGSEGV)."""
    import subprocess
    import sys

    code = (
        "import numpy as np, csoftmax as cs\n"
        "m = cs.SoftmaxRegression(1000, 2, dtype=np.float64, seed=0)\n"
        "X = np.broadcast_to(np.ones(1000), (200000, 1000))\n"
        "z = m.logits(X)\n"
        "print(bool(np.allclose(z, z[0])))\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=300
    )
    assert proc.returncode == 0, f"the child died with {proc.returncode} (-11 is SIGSEGV)"
    assert proc.stdout.strip() == "True"


def test_empty_label_list_is_accepted_like_cross_entropy():
    """A minor inconsistency: cs.cross_entropy(np.zeros((0, 3)), []) and
    cs.accuracy take [] (NumPy makes it float64) as no labels; Trainer.fit and
    Trainer.evaluate raised TypeError "y: class indices must be integers"."""
    assert math.isnan(cs.cross_entropy(np.zeros((0, 3)), []))
    t = cs.Trainer(cs.SoftmaxRegression(3, 2, seed=0), cs.SGD(), progress=False)
    scores = t.evaluate(np.zeros((0, 3)), [])
    assert math.isnan(scores["loss"]) and math.isnan(scores["accuracy"])
    h = t.fit(np.zeros((4, 3)), [0, 1, 0, 1], epochs=1, validation_data=(np.zeros((0, 3)), []))
    assert len(h) == 1
