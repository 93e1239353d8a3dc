/*
 * linear.c - the linear layer of softmax regression through BLAS GEMM.
 *
 * The core links no BLAS: the caller hands in sgemm/dgemm function pointers
 * once (the Python layer takes SciPy's, from scipy.linalg.cython_blas), so a
 * build needs no BLAS and the process uses the BLAS SciPy already loaded.
 * Our matrices are row-major; a row-major product C = A B is the
 * column-major product C^T = B^T A^T, so each call below swaps the operands
 * instead of transposing anything.  GEMM is never called inside an OpenMP
 * region: BLAS runs its own threads.
 */
#include <string.h>

#include "kernels.h"

typedef void (*sgemm_fn)(char *ta, char *tb, int *m, int *n, int *k, float *alpha, float *a,
                         int *lda, float *b, int *ldb, float *beta, float *c, int *ldc);
typedef void (*dgemm_fn)(char *ta, char *tb, int *m, int *n, int *k, double *alpha, double *a,
                         int *lda, double *b, int *ldb, double *beta, double *c, int *ldc);

static sgemm_fn blas_sgemm;
static dgemm_fn blas_dgemm;

void csm_set_blas(void *sgemm, void *dgemm) {
    __atomic_store_n(&blas_sgemm, (sgemm_fn)sgemm, __ATOMIC_RELEASE);
    __atomic_store_n(&blas_dgemm, (dgemm_fn)dgemm, __ATOMIC_RELEASE);
}

int csm_has_blas(void) {
    return __atomic_load_n(&blas_sgemm, __ATOMIC_ACQUIRE) != NULL &&
           __atomic_load_n(&blas_dgemm, __ATOMIC_ACQUIRE) != NULL;
}

static int at_least_1(ptrdiff_t v) {
    return v > 0 ? (int)v : 1;
}

/* Column-major C (m x n, ldc) = alpha op(A) op(B) + beta C. */
static void gemm(csm_dtype dtype, char ta, char tb, ptrdiff_t m, ptrdiff_t n, ptrdiff_t k,
                 double alpha, const void *a, ptrdiff_t lda, const void *b, ptrdiff_t ldb,
                 double beta, void *c, ptrdiff_t ldc) {
    int im = (int)m, in = (int)n, ik = (int)k;
    int ilda = at_least_1(lda), ildb = at_least_1(ldb), ildc = at_least_1(ldc);
    if (dtype == CSM_FLOAT64) {
        double al = alpha, be = beta;
        blas_dgemm(&ta, &tb, &im, &in, &ik, &al, (double *)a, &ilda, (double *)b, &ildb, &be,
                   (double *)c, &ildc);
    } else {
        float al = (float)alpha, be = (float)beta;
        blas_sgemm(&ta, &tb, &im, &in, &ik, &al, (float *)a, &ilda, (float *)b, &ildb, &be,
                   (float *)c, &ildc);
    }
}

int csm_linear_forward(csm_dtype dtype, ptrdiff_t n, ptrdiff_t d, ptrdiff_t q, const void *x,
                       ptrdiff_t ldx, const void *w, const void *b, void *out, ptrdiff_t ldo) {
    if (!csm_has_blas())
        return CSM_ENOBLAS;
    const size_t es = csm_sizeof(dtype);
    if (n == 0 || q == 0)
        return CSM_OK;
    /* out = b in every row, then out += X W: out^T (q x n) += W^T (q x d) X^T (d x n). */
    for (ptrdiff_t i = 0; i < n; i++)
        memcpy((char *)out + (size_t)(i * ldo) * es, b, (size_t)q * es);
    gemm(dtype, 'N', 'N', q, n, d, 1.0, w, q, x, ldx, 1.0, out, ldo);
    return CSM_OK;
}

#define COLUMN_SUMS(REAL)                                                                     \
    do {                                                                                      \
        const REAL *g_ = g;                                                                   \
        REAL *s_ = gb;                                                                        \
        for (ptrdiff_t k = 0; k < q; k++) /* beta = 0 overwrites, as in BLAS */             \
            s_[k] = beta == 0 ? (REAL)0 : (REAL)(beta * s_[k]);                               \
        for (ptrdiff_t i = 0; i < n; i++)                                                     \
            for (ptrdiff_t k = 0; k < q; k++)                                                 \
                s_[k] += (REAL)alpha * g_[i * ldg + k];                                       \
    } while (0)

int csm_linear_backward(csm_dtype dtype, ptrdiff_t n, ptrdiff_t d, ptrdiff_t q, const void *x,
                        ptrdiff_t ldx, const void *g, ptrdiff_t ldg, double alpha, double beta,
                        void *gw, void *gb) {
    if (!csm_has_blas())
        return CSM_ENOBLAS;
    /* gW (d x q) = alpha X^T G + beta gW: gW^T (q x d) = G^T (q x n) X (n x d). */
    if (d > 0 && q > 0)
        gemm(dtype, 'N', 'T', q, d, n, alpha, g, ldg, x, ldx, beta, gw, q);
    if (gb) {
        if (dtype == CSM_FLOAT64)
            COLUMN_SUMS(double);
        else
            COLUMN_SUMS(float);
    }
    return CSM_OK;
}
