# The cimport API of csoftmax: the C kernels, callable without the GIL from
# other Cython code.  `cimport csoftmax._core as csm` needs
# csoftmax.get_include() on the C include path (for csoftmax.h); the calls go
# through this module's capsules, so nothing needs linking.  The contracts are
# those of csoftmax.h: valid input is the caller's job.
from libc.stdint cimport int64_t


cdef extern from "csoftmax.h" nogil:
    ctypedef enum csm_dtype:
        CSM_FLOAT32
        CSM_FLOAT64

    enum:
        CSM_OK
        CSM_ENOMEM
        CSM_ENOBLAS

    ctypedef struct csm_rows:
        void *data
        Py_ssize_t n0, n1, q
        Py_ssize_t s0, s1, sq

    ctypedef enum csm_reduction:
        CSM_REDUCE_NONE
        CSM_REDUCE_MEAN
        CSM_REDUCE_SUM

    ctypedef struct csm_ce_args:
        Py_ssize_t n, q
        const void *logits
        Py_ssize_t logits_s0, logits_s1
        const int64_t *labels
        int64_t ignore_index
        const void *probs
        Py_ssize_t probs_s0, probs_s1
        const void *weight
        double label_smoothing
        csm_reduction reduction
        void *loss_rows
        Py_ssize_t loss_rows_s0
        void *grad
        Py_ssize_t grad_s0, grad_s1

    int csm_softmax(csm_dtype dtype, const csm_rows *x, const csm_rows *y)
    int csm_log_softmax(csm_dtype dtype, const csm_rows *x, const csm_rows *y)
    int csm_logsumexp(csm_dtype dtype, const csm_rows *x, const csm_rows *y)
    int csm_exp(csm_dtype dtype, const void *x, void *y, Py_ssize_t n)
    int csm_log(csm_dtype dtype, const void *x, void *y, Py_ssize_t n)
    int csm_cross_entropy(csm_dtype dtype, const csm_ce_args *args, double *loss)
    Py_ssize_t csm_first_bad_label(const int64_t *labels, Py_ssize_t n, Py_ssize_t q,
                                   int64_t ignore_index)
    void csm_set_blas(void *sgemm, void *dgemm)
    int csm_has_blas()
    int csm_linear_forward(csm_dtype dtype, Py_ssize_t n, Py_ssize_t d, Py_ssize_t q,
                           const void *x, Py_ssize_t ldx, const void *w, const void *b,
                           void *out, Py_ssize_t ldo)
    int csm_linear_backward(csm_dtype dtype, Py_ssize_t n, Py_ssize_t d, Py_ssize_t q,
                            const void *x, Py_ssize_t ldx, const void *g, Py_ssize_t ldg,
                            double alpha, double beta, void *gw, void *gb)
    ctypedef struct csm_step_args:
        Py_ssize_t m, d, q
        const void *x
        Py_ssize_t ldx
        int x_uint8
        double scale
        const int64_t *rows
        const int64_t *labels
        const void *w
        const void *b
        void *logits
        void *grad_w
        void *grad_b
        void *work
        size_t work_size

    size_t csm_train_step_workspace(csm_dtype dtype, Py_ssize_t m, Py_ssize_t d, Py_ssize_t q)
    int csm_train_step(csm_dtype dtype, const csm_step_args *args, double *loss_sum,
                       int64_t *correct)
    int csm_get_num_threads()
    void csm_set_num_threads(int n)
    int csm_openmp_enabled()
    const char *csm_simd_name()
    int csm_set_simd(const char *name)
    const char *csm_simd_available()
    const char *csm_compiler()


# The kernels for other extension modules (shared through capsules).
cdef int softmax(csm_dtype dtype, const csm_rows *x, const csm_rows *y) noexcept nogil
cdef int log_softmax(csm_dtype dtype, const csm_rows *x, const csm_rows *y) noexcept nogil
cdef int logsumexp(csm_dtype dtype, const csm_rows *x, const csm_rows *y) noexcept nogil
cdef int cross_entropy(csm_dtype dtype, const csm_ce_args *args, double *loss) noexcept nogil
