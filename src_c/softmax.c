/*
 * softmax.c - softmax, log-softmax and logsumexp over a batch of rows.
 *
 * The drivers only walk rows: threads take fixed contiguous shares of them,
 * and a row that is not contiguous in memory is gathered into a contiguous
 * buffer (the output row itself when that is contiguous), so the per-row
 * kernels of row_kernels.c always see contiguous data and give the same bits
 * whatever the layout or the thread count.
 */
#include <stdlib.h>

#include "strided.h"

/*
 * Rows [begin, end) of x into y, as runs of rows at a constant stride (the
 * rows of one i0), each run one kernel call.  A row that is not contiguous
 * goes through a buffer: the output row itself when that is contiguous,
 * else buf (q elements).  With reduce set, y holds one value per row.
 */
static void run_share(const csm_rows *x, const csm_rows *y, size_t es, csm_rows_fn f, int reduce,
                      char *buf, ptrdiff_t begin, ptrdiff_t end) {
    const ptrdiff_t q = x->q;
    const int x_unit = csm_unit_stride(x->sq, q);
    const int y_unit = reduce || csm_unit_stride(y->sq, q);
    ptrdiff_t r = begin;
    while (r < end) {
        const ptrdiff_t i0 = r / x->n1, i1 = r % x->n1;
        const ptrdiff_t count = x->n1 - i1 < end - r ? x->n1 - i1 : end - r;
        const char *xr = (const char *)x->data + (i0 * x->s0 + i1 * x->s1) * (ptrdiff_t)es;
        char *yr = (char *)y->data + (i0 * y->s0 + i1 * y->s1) * (ptrdiff_t)es;
        if (x_unit && y_unit) {
            f(xr, x->s1, yr, y->s1, count, q);
        } else {
            for (ptrdiff_t k = 0; k < count; k++) {
                const char *xk = xr + k * x->s1 * (ptrdiff_t)es;
                char *yk = yr + k * y->s1 * (ptrdiff_t)es;
                if (reduce) {
                    csm_gather(xk, x->sq, buf, q, es);
                    f(buf, q, yk, 1, 1, q);
                } else if (y_unit) {
                    csm_gather(xk, x->sq, yk, q, es);
                    f(yk, q, yk, q, 1, q);
                } else {
                    if (x_unit)
                        f(xk, q, buf, q, 1, q);
                    else {
                        csm_gather(xk, x->sq, buf, q, es);
                        f(buf, q, buf, q, 1, q);
                    }
                    csm_scatter(buf, yk, y->sq, q, es);
                }
            }
        }
        r += count;
    }
}

static int run_rows(csm_dtype dtype, const csm_rows *x, const csm_rows *y, csm_rows_fn f,
                    int reduce) {
    const size_t es = csm_sizeof(dtype);
    const ptrdiff_t rows = x->n0 * x->n1, q = x->q;
    if (rows == 0 || (q == 0 && !reduce))
        return CSM_OK;
    const int nt = csm_threads_for(rows, q);
    const int needs_buf = reduce ? !csm_unit_stride(x->sq, q) : !csm_unit_stride(y->sq, q);
    char *scratch = NULL;
    if (needs_buf) {
        scratch = malloc((size_t)nt * (size_t)q * es);
        if (!scratch)
            return CSM_ENOMEM;
    }
    if (nt == 1)
        run_share(x, y, es, f, reduce, scratch, 0, rows);
    else {
#pragma omp parallel num_threads(nt)
        {
            /* The team may be smaller than asked for: share among those present. */
            const int t = CSM_THREAD_ID();
            ptrdiff_t begin, end;
            csm_share(rows, t, CSM_TEAM_SIZE(), &begin, &end);
            run_share(x, y, es, f, reduce, scratch ? scratch + (size_t)t * (size_t)q * es : NULL,
                      begin, end);
        }
    }
    free(scratch);
    return CSM_OK;
}

int csm_softmax(csm_dtype dtype, const csm_rows *x, const csm_rows *y) {
    return run_rows(dtype, x, y, csm_kernels(dtype)->softmax, 0);
}

int csm_log_softmax(csm_dtype dtype, const csm_rows *x, const csm_rows *y) {
    return run_rows(dtype, x, y, csm_kernels(dtype)->log_softmax, 0);
}

int csm_logsumexp(csm_dtype dtype, const csm_rows *x, const csm_rows *y) {
    return run_rows(dtype, x, y, csm_kernels(dtype)->logsumexp, 1);
}

int csm_exp(csm_dtype dtype, const void *x, void *y, ptrdiff_t n) {
    csm_kernels(dtype)->exp(x, y, n);
    return CSM_OK;
}

int csm_log(csm_dtype dtype, const void *x, void *y, ptrdiff_t n) {
    csm_kernels(dtype)->log(x, y, n);
    return CSM_OK;
}
