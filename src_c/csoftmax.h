/*
 * csoftmax.h - the one public header of the csoftmax C core.
 *
 * Row-wise softmax, log-softmax, logsumexp and a fused cross-entropy that
 * yields loss and gradient in one pass, for float32 and float64.  The core
 * knows nothing of Python or NumPy: arguments are plain pointers, lengths and
 * strides.  It never reads or writes outside the elements that the shapes and
 * strides describe.
 *
 * Contracts shared by every kernel
 * --------------------------------
 * - Inputs are assumed valid (the caller checks shapes, dtypes and labels);
 *   the kernels only report allocation failure (CSM_ENOMEM), before any
 *   output is written.
 * - Non-finite values follow IEEE semantics: the max-shifted formulas give
 *   nan for a row holding +inf or nan, softmax of a row of all -inf is nan,
 *   logsumexp of it is -inf, and logsumexp of a row holding +inf but no nan
 *   is +inf.  Large finite values (1e30, FLT_MAX) never overflow.
 * - Rows are independent and split across OpenMP threads (small batches run
 *   on the calling thread); every result is bitwise identical whatever the
 *   thread count, including reductions across rows.
 * - The functions are reentrant: any number of threads may call them at once.
 * - An output may be the very same memory as an input, with the same strides
 *   (in-place); partially overlapping buffers are not supported.
 */
#ifndef CSOFTMAX_H
#define CSOFTMAX_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef enum csm_dtype { CSM_FLOAT32 = 0, CSM_FLOAT64 = 1 } csm_dtype;

enum { CSM_OK = 0, CSM_ENOMEM = -1, CSM_ENOBLAS = -2 };

/*
 * A batch of rows, the view every row kernel works on: n0 * n1 rows of q
 * elements.  Row (i0, i1) starts at data + i0*s0 + i1*s1 and its element k is
 * at + k*sq.  Strides count elements, not bytes, and may be negative or zero
 * (a zero stride only for a dimension of length 1).  Two leading dimensions
 * let a row be taken along any axis of a C- or Fortran-ordered array.
 */
typedef struct csm_rows {
    void *data;
    ptrdiff_t n0, n1, q;
    ptrdiff_t s0, s1, sq;
} csm_rows;

/* y = softmax(x) row-wise: exp(x - max) / sum(exp(x - max)).
 * x and y have the same n0, n1, q. */
int csm_softmax(csm_dtype dtype, const csm_rows *x, const csm_rows *y);

/* y = (x - max) - log(sum(exp(x - max))) row-wise. */
int csm_log_softmax(csm_dtype dtype, const csm_rows *x, const csm_rows *y);

/* y = log(sum(exp(x))) row-wise; y holds one value per row of x (y->q and
 * y->sq are ignored).  A row of length 0 gives -inf. */
int csm_logsumexp(csm_dtype dtype, const csm_rows *x, const csm_rows *y);

/* y[i] = exp(x[i]) for n contiguous elements, with the vectorised exp the
 * kernels use (within 2 ulp; exact 0, +inf and nan handling).  y may be x. */
int csm_exp(csm_dtype dtype, const void *x, void *y, ptrdiff_t n);

/* y[i] = log(x[i]) likewise, with the kernels' vectorised log (within 1 ulp;
 * log(+-0) = -inf, log(+inf) = +inf, nan for x < 0 and nan).  y may be x. */
int csm_log(csm_dtype dtype, const void *x, void *y, ptrdiff_t n);

/* ------------------------------------------------------- cross-entropy -- */

typedef enum csm_reduction {
    CSM_REDUCE_NONE = 0,
    CSM_REDUCE_MEAN = 1,
    CSM_REDUCE_SUM = 2
} csm_reduction;

/*
 * The loss of torch.nn.functional.cross_entropy for 2-D logits (n, q).
 *
 * Targets are either class indices (labels != NULL: n contiguous int64, each
 * in [0, q) or equal to ignore_index) or class probabilities (probs != NULL:
 * an (n, q) array of the logits' dtype).  weight is NULL or q contiguous
 * values of the logits' dtype.  With label smoothing e, the target
 * distribution is (1 - e) * target + e / q.
 *
 * Reductions: NONE writes the n row losses to loss_rows; SUM and MEAN write
 * the total to *loss (a double).  MEAN divides by the summed weight of the
 * non-ignored rows' labels (by n for probability targets), as PyTorch does;
 * when that is 0 the loss is nan.  Ignored rows have loss 0 and gradient 0.
 *
 * grad, when not NULL, receives d loss / d logits (of the summed loss for
 * NONE); it may be the logits themselves (same data and strides).
 */
typedef struct csm_ce_args {
    ptrdiff_t n, q;
    const void *logits;
    ptrdiff_t logits_s0, logits_s1;
    const int64_t *labels;
    int64_t ignore_index;
    const void *probs;
    ptrdiff_t probs_s0, probs_s1;
    const void *weight;
    double label_smoothing;
    csm_reduction reduction;
    void *loss_rows;          /* NONE only: n values of the logits' dtype */
    ptrdiff_t loss_rows_s0;
    void *grad;               /* NULL for the loss alone */
    ptrdiff_t grad_s0, grad_s1;
} csm_ce_args;

int csm_cross_entropy(csm_dtype dtype, const csm_ce_args *args, double *loss);

/* The position of the first label outside [0, q) that is not ignore_index,
 * or -1 when every label is valid.  Callers check this before
 * csm_cross_entropy, which assumes valid labels. */
ptrdiff_t csm_first_bad_label(const int64_t *labels, ptrdiff_t n, ptrdiff_t q,
                              int64_t ignore_index);

/* -------------------------------------------------------- linear layer -- */

/*
 * The core links no BLAS: csm_set_blas hands it Fortran-convention sgemm and
 * dgemm (any BLAS, e.g. SciPy's scipy.linalg.cython_blas).  Until then the
 * linear functions return CSM_ENOBLAS and touch nothing.  Matrices are
 * row-major with contiguous rows; ld* are row strides in elements; every
 * dimension must fit in a C int.  GEMM runs on BLAS's own threads, never
 * inside the kernels' OpenMP regions.
 */
void csm_set_blas(void *sgemm, void *dgemm);
int csm_has_blas(void);

/* out (n x q, row stride ldo) = x (n x d, ldx) . w (d x q, contiguous) + b (q). */
int csm_linear_forward(csm_dtype dtype, ptrdiff_t n, ptrdiff_t d, ptrdiff_t q, const void *x,
                       ptrdiff_t ldx, const void *w, const void *b, void *out, ptrdiff_t ldo);

/* gw (d x q, contiguous) = alpha x^T g + beta gw, and, when gb is not NULL,
 * gb (q) = alpha colsum(g) + beta gb, with g (n x q, row stride ldg).  As in
 * BLAS, beta = 0 overwrites: gw and gb need not hold numbers beforehand. */
int csm_linear_backward(csm_dtype dtype, ptrdiff_t n, ptrdiff_t d, ptrdiff_t q, const void *x,
                        ptrdiff_t ldx, const void *g, ptrdiff_t ldg, double alpha, double beta,
                        void *gw, void *gb);

/* ---------------------------------------------- fused training step -- */

/*
 * One step of softmax regression on a batch, without BLAS: for the m rows
 * x[rows[0]], ..., x[rows[m-1]] of a data set x (rows == NULL: x's first m
 * rows), the logits z = scale * x . w + b, and, with labels,
 *   *loss_sum = the summed cross-entropy of the m rows,
 *   *correct  = how many rows' argmax (np.argmax's: first maximum, or first
 *               nan) equals their label,
 * and, with grad_w and grad_b, the gradients of the MEAN loss over the batch:
 *   grad_w (d x q) = scale * x^T G / m,  grad_b (q) = colsum(G) / m,
 * G being d loss / d logits row by row.  Without labels, the logits are
 * written to `logits` (m x q, contiguous) and nothing else is computed.
 *
 * x holds elements of `dtype`, or uint8 when x_uint8 is set (then `scale`
 * multiplies every element, e.g. 1/255 for pixels; ignored for float x).
 * ldx is x's row stride in elements; w is d x q and b q elements of dtype,
 * contiguous.  labels has one int64 per row of x (indexed like x, so
 * labels[rows[i]]), each in [0, q); rows' indices are valid rows of x.
 *
 * Made for few classes (the products run along d with the q outputs in
 * registers); for large q, GEMM (csm_linear_*) is the faster route.  Results
 * are bitwise the same for every thread count.  work: at least
 * csm_train_step_workspace(dtype, m, d, q) bytes of scratch, reused across
 * calls; CSM_ENOMEM (and nothing touched) when it is smaller.
 */
typedef struct csm_step_args {
    ptrdiff_t m, d, q;
    const void *x;
    ptrdiff_t ldx;
    int x_uint8;
    double scale;
    const int64_t *rows;
    const int64_t *labels;
    const void *w, *b;
    void *logits;          /* without labels only */
    void *grad_w, *grad_b; /* both or neither; NULL: loss and accuracy only */
    void *work;
    size_t work_size;
} csm_step_args;

size_t csm_train_step_workspace(csm_dtype dtype, ptrdiff_t m, ptrdiff_t d, ptrdiff_t q);
int csm_train_step(csm_dtype dtype, const csm_step_args *args, double *loss_sum, int64_t *correct);

/* ----------------------------------------------------- threads, config -- */

/* Threads the kernels may use: the count set (default: OpenMP's maximum),
 * never above the calling thread's OpenMP limit (omp_set_num_threads, e.g.
 * through threadpoolctl), which csm_set_num_threads also sets.  n < 1 means 1. */
int csm_get_num_threads(void);
void csm_set_num_threads(int n);

/* 1 when built with OpenMP, else 0 (the kernels then use one thread). */
int csm_openmp_enabled(void);

/* The instruction set in use ("avx512", "avx2" or "generic"), chosen once
 * from the CPU; the environment variable CSOFTMAX_SIMD can ask for a lower
 * one.  csm_set_simd switches to a named, supported one (for tests) and
 * returns 0, or -1 when the name is unknown or the CPU lacks it. */
const char *csm_simd_name(void);
int csm_set_simd(const char *name);
/* Space-separated instruction sets that this build and this CPU support. */
const char *csm_simd_available(void);

/* The compiler that built the core. */
const char *csm_compiler(void);

#ifdef __cplusplus
}
#endif
#endif /* CSOFTMAX_H */
