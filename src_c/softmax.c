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

typedef void (*map_fn)(const void *x, void *y, ptrdiff_t q);
typedef double (*reduce_fn)(const void *x, ptrdiff_t q);

/* Rows [begin, end): y = f(x) row by row.  buf: q elements of scratch. */
static void map_share(const csm_rows *x, const csm_rows *y, size_t es, map_fn f, char *buf,
                      ptrdiff_t begin, ptrdiff_t end) {
    const ptrdiff_t q = x->q;
    const int x_unit = csm_unit_stride(x->sq, q), y_unit = csm_unit_stride(y->sq, q);
    csm_row_cursor cx = csm_cursor_at(x, begin, es), cy = csm_cursor_at(y, begin, es);
    for (ptrdiff_t r = begin; r < end; r++) {
        const char *xr = csm_cursor_row(&cx);
        char *yr = csm_cursor_row(&cy);
        if (x_unit && y_unit)
            f(xr, yr, q);
        else if (y_unit) { /* the output row is the buffer */
            csm_gather(xr, x->sq, yr, q, es);
            f(yr, yr, q);
        } else {
            if (x_unit)
                f(xr, buf, q);
            else {
                csm_gather(xr, x->sq, buf, q, es);
                f(buf, buf, q);
            }
            csm_scatter(buf, yr, y->sq, q, es);
        }
        csm_cursor_next(&cx);
        csm_cursor_next(&cy);
    }
}

static int map_rows(csm_dtype dtype, const csm_rows *x, const csm_rows *y, map_fn f) {
    const size_t es = csm_sizeof(dtype);
    const ptrdiff_t rows = x->n0 * x->n1, q = x->q;
    if (rows == 0 || q == 0)
        return CSM_OK;
    const int nt = csm_threads_for(rows, q);
    char *scratch = NULL;
    if (!csm_unit_stride(y->sq, q)) {
        scratch = malloc((size_t)nt * (size_t)q * es);
        if (!scratch)
            return CSM_ENOMEM;
    }
    if (nt == 1)
        map_share(x, y, es, f, scratch, 0, rows);
    else {
#pragma omp parallel num_threads(nt)
        {
            /* The team may be smaller than asked for: share among those present. */
            const int t = CSM_THREAD_ID();
            ptrdiff_t begin, end;
            csm_share(rows, t, CSM_TEAM_SIZE(), &begin, &end);
            map_share(x, y, es, f, scratch ? scratch + (size_t)t * (size_t)q * es : NULL, begin,
                      end);
        }
    }
    free(scratch);
    return CSM_OK;
}

static void reduce_share(csm_dtype dtype, const csm_rows *x, const csm_rows *y, size_t es,
                         reduce_fn f, char *buf, ptrdiff_t begin, ptrdiff_t end) {
    const ptrdiff_t q = x->q;
    csm_row_cursor cx = csm_cursor_at(x, begin, es), cy = csm_cursor_at(y, begin, es);
    for (ptrdiff_t r = begin; r < end; r++) {
        const char *xr = csm_cursor_row(&cx);
        if (buf) {
            csm_gather(xr, x->sq, buf, q, es);
            xr = buf;
        }
        csm_store_real(csm_cursor_row(&cy), dtype, f(xr, q));
        csm_cursor_next(&cx);
        csm_cursor_next(&cy);
    }
}

static int reduce_rows(csm_dtype dtype, const csm_rows *x, const csm_rows *y, reduce_fn f) {
    const size_t es = csm_sizeof(dtype);
    const ptrdiff_t rows = x->n0 * x->n1, q = x->q;
    if (rows == 0)
        return CSM_OK;
    const int nt = csm_threads_for(rows, q);
    char *scratch = NULL;
    if (!csm_unit_stride(x->sq, q)) {
        scratch = malloc((size_t)nt * (size_t)q * es);
        if (!scratch)
            return CSM_ENOMEM;
    }
    if (nt == 1)
        reduce_share(dtype, x, y, es, f, scratch, 0, rows);
    else {
#pragma omp parallel num_threads(nt)
        {
            /* The team may be smaller than asked for: share among those present. */
            const int t = CSM_THREAD_ID();
            ptrdiff_t begin, end;
            csm_share(rows, t, CSM_TEAM_SIZE(), &begin, &end);
            reduce_share(dtype, x, y, es, f,
                         scratch ? scratch + (size_t)t * (size_t)q * es : NULL, begin, end);
        }
    }
    free(scratch);
    return CSM_OK;
}

int csm_softmax(csm_dtype dtype, const csm_rows *x, const csm_rows *y) {
    return map_rows(dtype, x, y, csm_kernels(dtype)->softmax);
}

int csm_log_softmax(csm_dtype dtype, const csm_rows *x, const csm_rows *y) {
    return map_rows(dtype, x, y, csm_kernels(dtype)->log_softmax);
}

int csm_logsumexp(csm_dtype dtype, const csm_rows *x, const csm_rows *y) {
    return reduce_rows(dtype, x, y, csm_kernels(dtype)->logsumexp);
}

int csm_exp(csm_dtype dtype, const void *x, void *y, ptrdiff_t n) {
    csm_kernels(dtype)->exp(x, y, n);
    return CSM_OK;
}
