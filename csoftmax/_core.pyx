# cython: boundscheck=False, wraparound=False, cdivision=True
"""The bridge between csoftmax's Python layer and its C kernels.

It converts arrays to pointers and strides, checks what would corrupt memory
if wrong (dtype, writeability, stride units), releases the GIL and calls C.
Everything a user can get wrong is checked earlier, in csoftmax.functional.
"""
cimport numpy as cnp
import numpy as np
from cpython.pycapsule cimport PyCapsule_GetName, PyCapsule_GetPointer
from libc.stdint cimport int64_t

cnp.import_array()

cdef enum RowOp:
    OP_SOFTMAX = 0
    OP_LOG_SOFTMAX = 1
    OP_LOGSUMEXP = 2

SOFTMAX = OP_SOFTMAX
LOG_SOFTMAX = OP_LOG_SOFTMAX
LOGSUMEXP = OP_LOGSUMEXP

REDUCTIONS = {"none": CSM_REDUCE_NONE, "mean": CSM_REDUCE_MEAN, "sum": CSM_REDUCE_SUM}


cdef int softmax(csm_dtype dtype, const csm_rows *x, const csm_rows *y) noexcept nogil:
    return csm_softmax(dtype, x, y)


cdef int log_softmax(csm_dtype dtype, const csm_rows *x, const csm_rows *y) noexcept nogil:
    return csm_log_softmax(dtype, x, y)


cdef int logsumexp(csm_dtype dtype, const csm_rows *x, const csm_rows *y) noexcept nogil:
    return csm_logsumexp(dtype, x, y)


cdef int cross_entropy(csm_dtype dtype, const csm_ce_args *args, double *loss) noexcept nogil:
    return csm_cross_entropy(dtype, args, loss)


cdef csm_dtype dtype_of(cnp.ndarray a, str name) except *:
    cdef int t = cnp.PyArray_TYPE(a)
    if not cnp.PyArray_ISNOTSWAPPED(a):
        raise TypeError(f"{name}: expected native byte order")
    if t == cnp.NPY_FLOAT32:
        return CSM_FLOAT32
    if t == cnp.NPY_FLOAT64:
        return CSM_FLOAT64
    raise TypeError(f"{name}: expected float32 or float64, got {a.dtype}")


cdef Py_ssize_t elements(Py_ssize_t stride_bytes, Py_ssize_t itemsize, str name) except? -1:
    if stride_bytes % itemsize:
        raise ValueError(f"{name}: stride {stride_bytes} is not a whole number of elements")
    return stride_bytes // itemsize


cdef check_same_dtype(cnp.ndarray a, cnp.ndarray b, str name):
    if cnp.PyArray_TYPE(a) != cnp.PyArray_TYPE(b) or not cnp.PyArray_ISNOTSWAPPED(b):
        raise TypeError(f"{name}: expected dtype {a.dtype}, got {b.dtype}")


cdef check_writeable(cnp.ndarray a, str name):
    if not cnp.PyArray_ISWRITEABLE(a):
        raise ValueError(f"{name}: output array is read-only")


cdef raise_for(int status):
    if status == CSM_ENOMEM:
        raise MemoryError("csoftmax: out of memory for a row buffer")
    if status == CSM_ENOBLAS:
        raise RuntimeError("csoftmax: no BLAS registered (call csoftmax._core.use_scipy_blas())")


def rows_kernel(int op, cnp.ndarray x, Py_ssize_t n0, Py_ssize_t n1, Py_ssize_t q,
                Py_ssize_t xs0, Py_ssize_t xs1, Py_ssize_t xsq,
                cnp.ndarray y, Py_ssize_t ys0, Py_ssize_t ys1, Py_ssize_t ysq):
    """Run a row kernel over n0*n1 rows of q elements; strides in bytes.

    op is SOFTMAX, LOG_SOFTMAX (y has x's rows) or LOGSUMEXP (y has one value
    per row; ysq is ignored).
    """
    cdef csm_dtype dtype = dtype_of(x, "x")
    check_same_dtype(x, y, "out")
    check_writeable(y, "out")
    cdef Py_ssize_t es = cnp.PyArray_ITEMSIZE(x)
    cdef csm_rows xr, yr
    xr.data = cnp.PyArray_DATA(x)
    xr.n0, xr.n1, xr.q = n0, n1, q
    xr.s0, xr.s1, xr.sq = elements(xs0, es, "x"), elements(xs1, es, "x"), elements(xsq, es, "x")
    yr.data = cnp.PyArray_DATA(y)
    yr.n0, yr.n1, yr.q = n0, n1, q
    yr.s0, yr.s1 = elements(ys0, es, "out"), elements(ys1, es, "out")
    yr.sq = elements(ysq, es, "out") if op != OP_LOGSUMEXP else 0
    cdef int status
    with nogil:
        if op == OP_SOFTMAX:
            status = csm_softmax(dtype, &xr, &yr)
        elif op == OP_LOG_SOFTMAX:
            status = csm_log_softmax(dtype, &xr, &yr)
        else:
            status = csm_logsumexp(dtype, &xr, &yr)
    raise_for(status)


cdef bint is_fast_array(object a, int type_num):
    """An exact ndarray, C-contiguous, aligned and native, of this float type.
    (A misaligned array takes the general path, which copies it: the kernels
    store single elements through typed pointers.)"""
    if type(a) is not np.ndarray:
        return False
    cdef cnp.ndarray arr = <cnp.ndarray>a
    return (cnp.PyArray_TYPE(arr) == type_num and cnp.PyArray_IS_C_CONTIGUOUS(arr)
            and cnp.PyArray_ISALIGNED(arr) and cnp.PyArray_ISNOTSWAPPED(arr)
            and cnp.PyArray_NDIM(arr) >= 1)


def rows_fast(int op, object x, object axis, object out):
    """The common case in one step, or None for the general path.

    x: a C-contiguous float32/float64 ndarray, axis its last, out None or a
    C-contiguous writeable ndarray of x's shape and dtype that is x itself or
    does not overlap it.  Returns the result array.
    """
    if type(x) is not np.ndarray or type(axis) is not int:
        return None
    cdef cnp.ndarray arr = <cnp.ndarray>x
    cdef int t = cnp.PyArray_TYPE(arr)
    if (t != cnp.NPY_FLOAT32 and t != cnp.NPY_FLOAT64) or not is_fast_array(arr, t):
        return None
    cdef int nd = cnp.PyArray_NDIM(arr)
    if axis != -1 and axis != nd - 1:  # compared as Python ints: any size
        return None
    cdef Py_ssize_t q = cnp.PyArray_DIM(arr, nd - 1)
    cdef Py_ssize_t n = cnp.PyArray_SIZE(arr) // q if q > 0 else 0
    if op == OP_LOGSUMEXP:
        return None
    cdef cnp.ndarray res
    cdef char *a0
    cdef char *b0
    cdef Py_ssize_t nbytes = cnp.PyArray_NBYTES(arr)
    if out is None:
        res = cnp.PyArray_EMPTY(nd, cnp.PyArray_DIMS(arr), t, 0)
    else:
        if not is_fast_array(out, t) or not cnp.PyArray_ISWRITEABLE(<cnp.ndarray>out):
            return None
        res = <cnp.ndarray>out
        if not cnp.PyArray_SAMESHAPE(arr, res):
            return None
        a0 = <char *>cnp.PyArray_DATA(arr)
        b0 = <char *>cnp.PyArray_DATA(res)
        if a0 != b0 and a0 < b0 + nbytes and b0 < a0 + nbytes:
            return None  # partial overlap: the general path stages it
    cdef csm_rows xr, yr
    xr.data = cnp.PyArray_DATA(arr)
    xr.n0, xr.n1, xr.q = 1, n, q
    xr.s0, xr.s1, xr.sq = 0, q, 1
    yr = xr
    yr.data = cnp.PyArray_DATA(res)
    cdef csm_dtype dtype = CSM_FLOAT32 if t == cnp.NPY_FLOAT32 else CSM_FLOAT64
    cdef int status
    if n > 0 and q > 0:
        with nogil:
            if op == OP_SOFTMAX:
                status = csm_softmax(dtype, &xr, &yr)
            else:
                status = csm_log_softmax(dtype, &xr, &yr)
        raise_for(status)
    return res


cdef bint overlaps(cnp.ndarray a, cnp.ndarray b):
    """Do the bytes of two contiguous arrays overlap?"""
    cdef char *a0 = <char *>cnp.PyArray_DATA(a)
    cdef char *b0 = <char *>cnp.PyArray_DATA(b)
    return a0 < b0 + cnp.PyArray_NBYTES(b) and b0 < a0 + cnp.PyArray_NBYTES(a)


def logsumexp_fast(object x, object axis, object keepdims, object out):
    """logsumexp's common case in one step, or None for the general path.

    x: a C-contiguous float32/float64 ndarray, axis its last, keepdims a
    bool, out None or a C-contiguous writeable ndarray of the result's shape
    and dtype that does not overlap x.  Returns what logsumexp returns.
    """
    if type(x) is not np.ndarray or type(axis) is not int or type(keepdims) is not bool:
        return None
    cdef cnp.ndarray arr = <cnp.ndarray>x
    cdef int t = cnp.PyArray_TYPE(arr)
    if (t != cnp.NPY_FLOAT32 and t != cnp.NPY_FLOAT64) or not is_fast_array(arr, t):
        return None
    cdef int nd = cnp.PyArray_NDIM(arr)
    if axis != -1 and axis != nd - 1:  # compared as Python ints: any size
        return None
    cdef cnp.npy_intp *dims = cnp.PyArray_DIMS(arr)
    cdef Py_ssize_t q = dims[nd - 1], n = 1
    cdef int i
    for i in range(nd - 1):
        n *= dims[i]
    cdef int nd_out = nd - 1 + (1 if keepdims else 0)
    cdef cnp.npy_intp out_dims[32]
    for i in range(nd - 1):
        out_dims[i] = dims[i]
    if keepdims:
        out_dims[nd - 1] = 1
    cdef cnp.ndarray res
    if out is None:
        res = cnp.PyArray_EMPTY(nd_out, out_dims, t, 0)
    else:
        if not is_fast_array(out, t) or not cnp.PyArray_ISWRITEABLE(<cnp.ndarray>out):
            return None
        res = <cnp.ndarray>out
        if cnp.PyArray_NDIM(res) != nd_out:
            return None
        for i in range(nd_out):
            if cnp.PyArray_DIM(res, i) != out_dims[i]:
                return None
        if overlaps(res, arr):
            return None  # the general path stages it
    cdef csm_rows xr, yr
    xr.data = cnp.PyArray_DATA(arr)
    xr.n0, xr.n1, xr.q = 1, n, q
    xr.s0, xr.s1, xr.sq = 0, q, 1
    yr.data = cnp.PyArray_DATA(res)
    yr.n0, yr.n1, yr.q = 1, n, 0
    yr.s0, yr.s1, yr.sq = 0, 1, 0
    cdef csm_dtype dtype = CSM_FLOAT32 if t == cnp.NPY_FLOAT32 else CSM_FLOAT64
    cdef int status = CSM_OK
    if n > 0:
        with nogil:
            status = csm_logsumexp(dtype, &xr, &yr)
        raise_for(status)
    if out is None and nd_out == 0:
        return res[()]
    return res


_float32 = np.float32
_float64 = np.float64


def cross_entropy_fast(object logits, object target, object weight, object ignore_index,
                       object reduction, object label_smoothing, bint want_grad,
                       object grad_out):
    """The cross-entropy's common case in one step, or None for the general path.

    logits: a C-contiguous native float32/float64 ndarray (n, q); target: n
    contiguous native int64 labels, all valid; weight None; ignore_index an
    int64; reduction a known name; label_smoothing a float or int in [0, 1];
    grad_out None or a C-contiguous writeable ndarray like logits that is
    logits itself or overlaps neither it nor the labels.  Anything else, a bad
    label included, goes to the general path, which names the problem.
    Returns what cross_entropy (want_grad false) or cross_entropy_with_grad
    returns.
    """
    if type(logits) is not np.ndarray or type(target) is not np.ndarray or weight is not None:
        return None
    if type(reduction) is not str or type(ignore_index) is not int:
        return None
    if type(label_smoothing) is not float and type(label_smoothing) is not int:
        return None
    if not -2**63 <= ignore_index < 2**63:
        return None
    cdef double eps = label_smoothing
    if not 0.0 <= eps <= 1.0:  # also refuses nan
        return None
    red = REDUCTIONS.get(reduction)
    if red is None:
        return None
    cdef cnp.ndarray o = <cnp.ndarray>logits
    cdef int t = cnp.PyArray_TYPE(o)
    if ((t != cnp.NPY_FLOAT32 and t != cnp.NPY_FLOAT64) or not is_fast_array(o, t)
            or cnp.PyArray_NDIM(o) != 2):
        return None
    cdef Py_ssize_t n = cnp.PyArray_DIM(o, 0), q = cnp.PyArray_DIM(o, 1)
    cdef cnp.ndarray lab = <cnp.ndarray>target
    if (cnp.PyArray_TYPE(lab) != cnp.NPY_INT64 or cnp.PyArray_NDIM(lab) != 1
            or cnp.PyArray_DIM(lab, 0) != n or not cnp.PyArray_IS_C_CONTIGUOUS(lab)
            or not cnp.PyArray_ISALIGNED(lab) or not cnp.PyArray_ISNOTSWAPPED(lab)):
        return None
    cdef const int64_t *labels = <const int64_t *>cnp.PyArray_DATA(lab)
    cdef int64_t ignore = ignore_index
    cdef Py_ssize_t bad
    with nogil:
        bad = csm_first_bad_label(labels, n, q, ignore)
    if bad >= 0:
        return None
    cdef cnp.ndarray grad = None
    if want_grad:
        if grad_out is None:
            grad = cnp.PyArray_EMPTY(2, cnp.PyArray_DIMS(o), t, 0)
        else:
            if not is_fast_array(grad_out, t) or not cnp.PyArray_ISWRITEABLE(<cnp.ndarray>grad_out):
                return None
            grad = <cnp.ndarray>grad_out
            if not cnp.PyArray_SAMESHAPE(o, grad) or overlaps(grad, lab):
                return None
            if cnp.PyArray_DATA(grad) != cnp.PyArray_DATA(o) and overlaps(grad, o):
                return None
    cdef cnp.ndarray rows = None
    if red == CSM_REDUCE_NONE:
        rows = cnp.PyArray_EMPTY(1, cnp.PyArray_DIMS(o), t, 0)
    cdef csm_ce_args a
    a.n, a.q = n, q
    a.logits = cnp.PyArray_DATA(o)
    a.logits_s0, a.logits_s1 = q, 1
    a.labels = labels
    a.ignore_index = ignore
    a.probs = NULL
    a.probs_s0 = a.probs_s1 = 0
    a.weight = NULL
    a.label_smoothing = eps
    a.reduction = red
    a.loss_rows = cnp.PyArray_DATA(rows) if rows is not None else NULL
    a.loss_rows_s0 = 1
    a.grad = cnp.PyArray_DATA(grad) if grad is not None else NULL
    a.grad_s0, a.grad_s1 = q, 1
    cdef double total = 0
    cdef int status
    cdef csm_dtype dtype = CSM_FLOAT32 if t == cnp.NPY_FLOAT32 else CSM_FLOAT64
    with nogil:
        status = csm_cross_entropy(dtype, &a, &total)
    raise_for(status)
    if rows is not None:
        loss = rows
    elif dtype == CSM_FLOAT32:
        loss = _float32(<float>total)  # rounded in C: NumPy's error state never sees it
    else:
        loss = _float64(total)
    return (loss, grad) if want_grad else loss


def cross_entropy_kernel(cnp.ndarray logits, object labels, int64_t ignore_index,
                         object probs, object weight, double label_smoothing,
                         str reduction, object loss_rows, object grad):
    """The fused cross-entropy; returns the reduced loss, rounded to the logits' dtype.

    logits: (n, q); labels: None or n contiguous int64; probs: None or (n, q)
    of the logits' dtype; weight: None or q contiguous values of that dtype;
    loss_rows: (n,) output for reduction "none", else None; grad: None or an
    (n, q) output.
    """
    cdef csm_dtype dtype = dtype_of(logits, "logits")
    cdef Py_ssize_t es = cnp.PyArray_ITEMSIZE(logits)
    cdef csm_ce_args a
    cdef cnp.ndarray arr
    a.n = cnp.PyArray_DIM(logits, 0)
    a.q = cnp.PyArray_DIM(logits, 1)
    a.logits = cnp.PyArray_DATA(logits)
    a.logits_s0 = elements(cnp.PyArray_STRIDE(logits, 0), es, "logits")
    a.logits_s1 = elements(cnp.PyArray_STRIDE(logits, 1), es, "logits")
    a.labels = NULL
    a.ignore_index = ignore_index
    a.probs = NULL
    a.probs_s0 = a.probs_s1 = 0
    a.weight = NULL
    a.label_smoothing = label_smoothing
    a.reduction = REDUCTIONS[reduction]
    a.loss_rows = NULL
    a.loss_rows_s0 = 0
    a.grad = NULL
    a.grad_s0 = a.grad_s1 = 0
    if labels is not None:
        arr = labels
        if (cnp.PyArray_TYPE(arr) != cnp.NPY_INT64 or not cnp.PyArray_IS_C_CONTIGUOUS(arr)
                or cnp.PyArray_SIZE(arr) != a.n):
            raise TypeError("target: expected n contiguous int64 labels")
        a.labels = <const int64_t *>cnp.PyArray_DATA(arr)
    if probs is not None:
        arr = probs
        check_same_dtype(logits, arr, "target")
        a.probs = cnp.PyArray_DATA(arr)
        a.probs_s0 = elements(cnp.PyArray_STRIDE(arr, 0), es, "target")
        a.probs_s1 = elements(cnp.PyArray_STRIDE(arr, 1), es, "target")
    if weight is not None:
        arr = weight
        check_same_dtype(logits, arr, "weight")
        if not cnp.PyArray_IS_C_CONTIGUOUS(arr) or cnp.PyArray_SIZE(arr) != a.q:
            raise ValueError("weight: expected q contiguous values")
        a.weight = cnp.PyArray_DATA(arr)
    if loss_rows is not None:
        arr = loss_rows
        check_same_dtype(logits, arr, "loss")
        check_writeable(arr, "loss")
        a.loss_rows = cnp.PyArray_DATA(arr)
        a.loss_rows_s0 = elements(cnp.PyArray_STRIDE(arr, 0), es, "loss")
    if grad is not None:
        arr = grad
        check_same_dtype(logits, arr, "grad_out")
        check_writeable(arr, "grad_out")
        a.grad = cnp.PyArray_DATA(arr)
        a.grad_s0 = elements(cnp.PyArray_STRIDE(arr, 0), es, "grad_out")
        a.grad_s1 = elements(cnp.PyArray_STRIDE(arr, 1), es, "grad_out")
    cdef double loss = 0
    cdef int status
    with nogil:
        status = csm_cross_entropy(dtype, &a, &loss)
    raise_for(status)
    # Rounded here, in C, so that NumPy's error state never sees an overflow.
    return <float>loss if dtype == CSM_FLOAT32 else loss


def first_bad_label(cnp.ndarray labels, Py_ssize_t q, int64_t ignore_index):
    """Index of the first label outside [0, q) that is not ignore_index, or -1."""
    if cnp.PyArray_TYPE(labels) != cnp.NPY_INT64 or not cnp.PyArray_IS_C_CONTIGUOUS(labels):
        raise TypeError("target: expected contiguous int64 labels")
    cdef const int64_t *p = <const int64_t *>cnp.PyArray_DATA(labels)
    cdef Py_ssize_t n = cnp.PyArray_SIZE(labels), bad
    with nogil:
        bad = csm_first_bad_label(p, n, q, ignore_index)
    return bad


def exp(cnp.ndarray x):
    """exp of a contiguous float array with the kernels' vectorised exp (for tests)."""
    cdef csm_dtype dtype = dtype_of(x, "x")
    if not cnp.PyArray_IS_C_CONTIGUOUS(x):
        raise ValueError("x: expected a contiguous array")
    cdef cnp.ndarray y = np.empty_like(x, order="C")
    cdef Py_ssize_t n = cnp.PyArray_SIZE(x)
    with nogil:
        csm_exp(dtype, cnp.PyArray_DATA(x), cnp.PyArray_DATA(y), n)
    return y


def log(cnp.ndarray x):
    """log of a contiguous float array with the kernels' vectorised log (for tests)."""
    cdef csm_dtype dtype = dtype_of(x, "x")
    if not cnp.PyArray_IS_C_CONTIGUOUS(x):
        raise ValueError("x: expected a contiguous array")
    cdef cnp.ndarray y = np.empty_like(x, order="C")
    cdef Py_ssize_t n = cnp.PyArray_SIZE(x)
    with nogil:
        csm_log(dtype, cnp.PyArray_DATA(x), cnp.PyArray_DATA(y), n)
    return y


cdef void *capsule_pointer(object capsule):
    return PyCapsule_GetPointer(capsule, PyCapsule_GetName(capsule))


def use_scipy_blas():
    """Hand SciPy's sgemm and dgemm to the core (idempotent)."""
    from scipy.linalg import cython_blas

    api = cython_blas.__pyx_capi__
    csm_set_blas(capsule_pointer(api["sgemm"]), capsule_pointer(api["dgemm"]))


cdef int check_matrix(cnp.ndarray a, csm_dtype dtype, str name, bint writeable) except -1:
    """A 2-D array of dtype whose rows are contiguous (what BLAS can take)."""
    if dtype_of(a, name) != dtype:
        raise TypeError(f"{name}: expected the model's dtype")
    if cnp.PyArray_NDIM(a) != 2:
        raise ValueError(f"{name}: expected a 2-D array")
    if writeable:
        check_writeable(a, name)
    if cnp.PyArray_SIZE(a) == 0:  # any strides: nothing is read or written
        return 0
    if cnp.PyArray_DIM(a, 1) > 1 and cnp.PyArray_STRIDE(a, 1) != cnp.PyArray_ITEMSIZE(a):
        raise ValueError(f"{name}: rows must be contiguous")
    if cnp.PyArray_DIM(a, 0) > 1:  # one row: its stride is never used
        if cnp.PyArray_STRIDE(a, 0) < 0 or cnp.PyArray_STRIDE(a, 0) % cnp.PyArray_ITEMSIZE(a):
            raise ValueError(f"{name}: unsupported row stride")
        if cnp.PyArray_STRIDE(a, 0) < cnp.PyArray_DIM(a, 1) * cnp.PyArray_ITEMSIZE(a):
            raise ValueError(f"{name}: rows overlap (a row stride shorter than a row)")
    if max(cnp.PyArray_DIM(a, 0), cnp.PyArray_DIM(a, 1)) >= 2**31:
        raise ValueError(f"{name}: dimensions must fit BLAS's 32-bit integers")
    return 0


cdef Py_ssize_t row_stride(cnp.ndarray a):
    """The leading dimension BLAS gets: the row stride, or the row length for
    an array of at most one row (whose stride may be anything)."""
    if cnp.PyArray_DIM(a, 0) <= 1 or cnp.PyArray_SIZE(a) == 0:
        return cnp.PyArray_DIM(a, 1)
    return cnp.PyArray_STRIDE(a, 0) // cnp.PyArray_ITEMSIZE(a)


def linear_forward(cnp.ndarray x, cnp.ndarray w, cnp.ndarray b, cnp.ndarray out):
    """out = x @ w + b through BLAS GEMM; shapes (n, d), (d, q), (q,), (n, q)."""
    cdef csm_dtype dtype = dtype_of(w, "weight")
    check_matrix(x, dtype, "X", False)
    check_matrix(out, dtype, "out", True)
    if not (cnp.PyArray_IS_C_CONTIGUOUS(w) and cnp.PyArray_IS_C_CONTIGUOUS(b)):
        raise ValueError("weight, bias: expected contiguous arrays")
    check_same_dtype(w, b, "bias")
    cdef Py_ssize_t n = x.shape[0], d = x.shape[1], q = w.shape[1]
    if w.shape[0] != d or b.shape[0] != q or out.shape[0] != n or out.shape[1] != q:
        raise ValueError("linear_forward: shapes do not match")
    cdef Py_ssize_t ldx = row_stride(x), ldo = row_stride(out)
    cdef int status
    with nogil:
        status = csm_linear_forward(dtype, n, d, q, cnp.PyArray_DATA(x), ldx,
                                    cnp.PyArray_DATA(w), cnp.PyArray_DATA(b),
                                    cnp.PyArray_DATA(out), ldo)
    raise_for(status)


def linear_backward(cnp.ndarray x, cnp.ndarray g, cnp.ndarray gw, object gb,
                    double alpha=1.0, double beta=0.0):
    """gw = alpha x.T @ g + beta gw and gb = alpha g.sum(0) + beta gb (gb may be None)."""
    cdef csm_dtype dtype = dtype_of(gw, "grad_weight")
    check_matrix(x, dtype, "X", False)
    check_matrix(g, dtype, "grad", False)
    check_writeable(gw, "grad_weight")
    if not cnp.PyArray_IS_C_CONTIGUOUS(gw):
        raise ValueError("grad_weight: expected a contiguous array")
    cdef Py_ssize_t n = x.shape[0], d = x.shape[1], q = g.shape[1]
    if g.shape[0] != n or gw.shape[0] != d or gw.shape[1] != q:
        raise ValueError("linear_backward: shapes do not match")
    cdef void *gb_data = NULL
    cdef cnp.ndarray gb_arr
    if gb is not None:
        gb_arr = gb
        check_same_dtype(gw, gb_arr, "grad_bias")
        check_writeable(gb_arr, "grad_bias")
        if not cnp.PyArray_IS_C_CONTIGUOUS(gb_arr) or cnp.PyArray_SIZE(gb_arr) != q:
            raise ValueError("grad_bias: expected q contiguous values")
        gb_data = cnp.PyArray_DATA(gb_arr)
    cdef Py_ssize_t ldx = row_stride(x), ldg = row_stride(g)
    cdef int status
    with nogil:
        status = csm_linear_backward(dtype, n, d, q, cnp.PyArray_DATA(x), ldx,
                                     cnp.PyArray_DATA(g), ldg, alpha, beta,
                                     cnp.PyArray_DATA(gw), gb_data)
    raise_for(status)


# ------------------------------------------------------ fused training step --

def train_step_workspace(str dtype, Py_ssize_t m, Py_ssize_t d, Py_ssize_t q):
    """Bytes of scratch that train_step needs for a batch of m rows."""
    cdef csm_dtype dt = CSM_FLOAT64 if dtype == "float64" else CSM_FLOAT32
    return csm_train_step_workspace(dt, m, d, q)


cdef const int64_t *int64_vector(object a, Py_ssize_t n, str name) except? NULL:
    cdef cnp.ndarray arr = a
    if (cnp.PyArray_TYPE(arr) != cnp.NPY_INT64 or cnp.PyArray_NDIM(arr) != 1
            or not cnp.PyArray_IS_C_CONTIGUOUS(arr) or not cnp.PyArray_ISALIGNED(arr)
            or cnp.PyArray_ISBYTESWAPPED(arr)):
        raise TypeError(f"{name}: expected a contiguous, aligned 1-D int64 array")
    if n >= 0 and cnp.PyArray_DIM(arr, 0) != n:
        raise ValueError(f"{name}: expected {n} values, got {cnp.PyArray_DIM(arr, 0)}")
    return <const int64_t *>cnp.PyArray_DATA(arr)


cdef void *contiguous(object a, csm_dtype dtype, tuple shape, str name, bint writeable) except NULL:
    cdef cnp.ndarray arr = a
    if dtype_of(arr, name) != dtype:
        raise TypeError(f"{name}: expected the model's dtype")
    if a.shape != shape or not cnp.PyArray_IS_C_CONTIGUOUS(arr):
        raise ValueError(f"{name}: expected a contiguous array of shape {shape}")
    if writeable:
        check_writeable(arr, name)
    return cnp.PyArray_DATA(arr)


def train_step(cnp.ndarray x, object rows, object labels, cnp.ndarray w, cnp.ndarray b,
               object grad_w, object grad_b, cnp.ndarray work, double scale=1.0,
               object logits=None, Py_ssize_t m=-1):
    """The fused step of csm_train_step on the rows `rows` (int64, or None for
    x's first m rows) of x (model dtype, or uint8 scaled by `scale`).

    With labels (int64, one per row of x): returns (loss_sum, correct) and
    writes grad_w, grad_b when given (gradients of the mean loss).  Without:
    writes the logits to `logits` (m, q) and returns (0.0, 0).  Row indices
    and labels are checked here, before any memory is touched.
    """
    cdef csm_dtype dtype = dtype_of(w, "weight")
    cdef csm_step_args a
    cdef Py_ssize_t n, i, bad_row = -1, bad_label = -1
    cdef int64_t v
    if cnp.PyArray_NDIM(x) != 2:
        raise ValueError("X: expected a 2-D array")
    n = x.shape[0]
    a.d = x.shape[1]
    a.q = w.shape[1] if cnp.PyArray_NDIM(w) == 2 else 0
    a.x_uint8 = cnp.PyArray_TYPE(x) == cnp.NPY_UINT8
    if not a.x_uint8 and dtype_of(x, "X") != dtype:
        raise TypeError("X: expected the model's dtype or uint8")
    if a.d > 1 and cnp.PyArray_STRIDE(x, 1) != cnp.PyArray_ITEMSIZE(x):
        raise ValueError("X: rows must be contiguous")
    if n > 1 and (cnp.PyArray_STRIDE(x, 0) < a.d * cnp.PyArray_ITEMSIZE(x)
                  or cnp.PyArray_STRIDE(x, 0) % cnp.PyArray_ITEMSIZE(x)):
        raise ValueError("X: unsupported row stride")
    a.ldx = cnp.PyArray_STRIDE(x, 0) // cnp.PyArray_ITEMSIZE(x) if n > 1 else a.d
    a.x = cnp.PyArray_DATA(x)
    a.scale = scale
    a.w = contiguous(w, dtype, (a.d, a.q), "weight", False)
    a.b = contiguous(b, dtype, (a.q,), "bias", False)
    if rows is None:
        if m < 0 or m > n:
            raise ValueError(f"m: expected 0 <= m <= {n}")
        a.m = m
        a.rows = NULL
    else:
        a.m = len(rows)
        a.rows = int64_vector(rows, -1, "rows")
    a.labels = NULL if labels is None else int64_vector(labels, n, "labels")
    a.logits = NULL
    a.grad_w = a.grad_b = NULL
    if labels is None:
        a.logits = contiguous(logits, dtype, (a.m, a.q), "logits", True)
    elif grad_w is not None:
        a.grad_w = contiguous(grad_w, dtype, (a.d, a.q), "grad_weight", True)
        a.grad_b = contiguous(grad_b, dtype, (a.q,), "grad_bias", True)
    if (cnp.PyArray_TYPE(work) != cnp.NPY_UINT8 or not cnp.PyArray_IS_C_CONTIGUOUS(work)
            or cnp.PyArray_NDIM(work) != 1):
        raise TypeError("work: expected a contiguous uint8 vector")
    check_writeable(work, "work")
    a.work = cnp.PyArray_DATA(work)
    a.work_size = cnp.PyArray_SIZE(work)
    if a.work_size < csm_train_step_workspace(dtype, a.m, a.d, a.q):
        raise ValueError("work: too small; see train_step_workspace")
    with nogil:
        for i in range(a.m):
            v = a.rows[i] if a.rows != NULL else i
            if v < 0 or v >= n:
                bad_row = i
                break
            if a.labels != NULL and (a.labels[v] < 0 or a.labels[v] >= a.q):
                bad_label = v
                break
    if bad_row >= 0:
        raise IndexError(f"rows: index {a.rows[bad_row]} is out of range for {n} rows")
    if bad_label >= 0:
        raise ValueError(f"labels: label {a.labels[bad_label]} is out of range [0, {a.q})")
    cdef double loss = 0
    cdef int64_t correct = 0
    cdef int status
    with nogil:
        status = csm_train_step(dtype, &a, &loss, &correct)
    raise_for(status)
    return loss, correct


def get_num_threads():
    return csm_get_num_threads()


def set_num_threads(int n):
    csm_set_num_threads(n)


def openmp_enabled():
    return bool(csm_openmp_enabled())


def simd_name():
    return csm_simd_name().decode()


def simd_available():
    return csm_simd_available().decode().split()


def set_simd(str name):
    if csm_set_simd(name.encode()) != 0:
        raise ValueError(f"simd: {name!r} is not supported here; available: {simd_available()}")


def compiler():
    return csm_compiler().decode()
