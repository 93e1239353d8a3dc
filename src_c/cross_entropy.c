/*
 * cross_entropy.c - the fused cross-entropy over a batch: every row's loss
 * and, optionally, its gradient, in one pass over the logits.
 *
 * The reduction's denominator (the summed weight of the rows that count) is
 * known before the pass, so the gradient is scaled as it is written.  The
 * total loss is summed over fixed chunks of rows, and the chunks' partial
 * sums are added in order: the result is the same for every thread count.
 */
#include <math.h>
#include <stdlib.h>

#include "strided.h"

/* Chunks are whole tiles of rows (multiples of CSM_MAX_LANES), and large
 * enough that a call on a small batch is one chunk. */
#define CHUNK_MIN_ROWS 256
#define MAX_CHUNKS 256

ptrdiff_t csm_first_bad_label(const int64_t *labels, ptrdiff_t n, ptrdiff_t q,
                              int64_t ignore_index) {
    return csm_kernels(CSM_FLOAT64)->first_bad_label(labels, n, q, ignore_index);
}

static double read_real(const void *p, ptrdiff_t i, csm_dtype dtype) {
    return dtype == CSM_FLOAT64 ? ((const double *)p)[i] : (double)((const float *)p)[i];
}

static int row_ignored(const csm_ce_args *a, ptrdiff_t i) {
    return a->q == 0 || (a->labels && a->labels[i] == a->ignore_index);
}

static double denominator(csm_dtype dtype, const csm_ce_args *a) {
    if (a->reduction != CSM_REDUCE_MEAN)
        return 1;
    if (!a->labels)
        return (double)a->n;
    return csm_kernels(dtype)->label_mass(a->labels, a->n, a->ignore_index, a->weight);
}

typedef struct {
    csm_dtype dtype;
    size_t es;
    const csm_ce_args *a;
    const csm_row_kernels *kernels;
    csm_ce_row proto;
    csm_ce_block block;
    int logits_unit, grad_unit, probs_unit;
} ce_plan;

/* The summed loss of rows [begin, end); rows up to `readable` may be read
 * too (not written).  buf_o: CSM_MAX_LANES rows; buf_p: one row. */
static double ce_rows(const ce_plan *pl, char *buf_o, char *buf_p, ptrdiff_t begin, ptrdiff_t end,
                      ptrdiff_t readable) {
    const csm_ce_args *a = pl->a;
    const size_t es = pl->es;
    const ptrdiff_t q = a->q;
    if (a->labels) {
        double lanes[CSM_MAX_LANES] = {0};
        const ptrdiff_t ses = (ptrdiff_t)es;
        char *loss_rows = a->loss_rows;
        if (pl->logits_unit && pl->grad_unit) {
            /* Contiguous rows: the kernel takes the whole run. */
            pl->kernels->ce_labels(
                (const char *)a->logits + begin * a->logits_s0 * ses, a->logits_s0,
                a->grad ? (char *)a->grad + begin * a->grad_s0 * ses : NULL, a->grad_s0,
                a->labels + begin, loss_rows ? loss_rows + begin * a->loss_rows_s0 * ses : NULL,
                a->loss_rows_s0, end - begin, readable - begin, q, &pl->block, lanes);
        } else {
            /* Strided rows go through buf_o in groups of CSM_MAX_LANES (the
             * gradient computed over them in place), so that they meet the
             * very arithmetic and order of sums of contiguous ones. */
            for (ptrdiff_t i = begin; i < end; i += CSM_MAX_LANES) {
                const ptrdiff_t n = end - i < CSM_MAX_LANES ? end - i : CSM_MAX_LANES;
                for (ptrdiff_t r = 0; r < n; r++)
                    csm_gather((const char *)a->logits + (i + r) * a->logits_s0 * ses,
                               a->logits_s1, buf_o + (size_t)(r * q) * es, q, es);
                pl->kernels->ce_labels(
                    buf_o, q, a->grad ? buf_o : NULL, q, a->labels + i,
                    loss_rows ? loss_rows + i * a->loss_rows_s0 * ses : NULL, a->loss_rows_s0, n,
                    n, q, &pl->block, lanes);
                for (ptrdiff_t r = 0; a->grad && r < n; r++)
                    csm_scatter(buf_o + (size_t)(r * q) * es,
                                (char *)a->grad + (i + r) * a->grad_s0 * ses, a->grad_s1, q, es);
            }
        }
        double sum = 0;
        for (int k = 0; k < CSM_MAX_LANES; k++)
            sum += lanes[k];
        return sum;
    }
    double sum = 0;
    for (ptrdiff_t i = begin; i < end; i++) {
        const char *o = (const char *)a->logits + i * a->logits_s0 * (ptrdiff_t)es;
        char *g = a->grad ? (char *)a->grad + i * a->grad_s0 * (ptrdiff_t)es : NULL;
        double loss = 0;
        if (row_ignored(a, i)) {
            for (ptrdiff_t k = 0; g && k < q; k++)
                csm_store_real(g + k * a->grad_s1 * (ptrdiff_t)es, pl->dtype, 0.0);
        } else {
            csm_ce_row p = pl->proto;
            p.label = a->labels ? a->labels[i] : -1;
            if (a->probs) {
                const char *t = (const char *)a->probs + i * a->probs_s0 * (ptrdiff_t)es;
                if (!pl->probs_unit) {
                    csm_gather(t, a->probs_s1, buf_p, q, es);
                    t = buf_p;
                }
                p.probs = t;
            }
            /* Give the kernel contiguous rows: a contiguous gradient row is
             * itself the buffer the logits are gathered into. */
            char *out = g;
            if (g && !pl->grad_unit)
                out = buf_o;
            if (!pl->logits_unit) {
                char *into = out ? out : buf_o;
                csm_gather(o, a->logits_s1, into, q, es);
                o = into;
            }
            loss = pl->kernels->cross_entropy(o, out, q, &p);
            if (g && !pl->grad_unit)
                csm_scatter(out, g, a->grad_s1, q, es);
        }
        if (a->loss_rows)
            csm_store_real((char *)a->loss_rows + i * a->loss_rows_s0 * (ptrdiff_t)es, pl->dtype,
                           loss);
        sum += loss;
    }
    return sum;
}

/* Chunks [first, last) into partial[]: one thread's share.  A chunk's rows
 * may read ahead into the rest of the share, never into another thread's. */
static void ce_share(const ce_plan *pl, char *buf, size_t per_thread, ptrdiff_t chunk_rows,
                     ptrdiff_t first, ptrdiff_t last, double *partial) {
    const ptrdiff_t n = pl->a->n, q = pl->a->q;
    const ptrdiff_t share_end = last * chunk_rows < n ? last * chunk_rows : n;
    for (ptrdiff_t c = first; c < last; c++) {
        const ptrdiff_t end = (c + 1) * chunk_rows < n ? (c + 1) * chunk_rows : n;
        partial[c] = ce_rows(pl, buf, buf ? buf + per_thread - (size_t)q * pl->es : NULL,
                             c * chunk_rows, end, share_end);
    }
}

int csm_cross_entropy(csm_dtype dtype, const csm_ce_args *a, double *loss) {
    const size_t es = csm_sizeof(dtype);
    const ptrdiff_t n = a->n, q = a->q;
    const double denom = denominator(dtype, a);

    ce_plan pl;
    pl.dtype = dtype;
    pl.es = es;
    pl.a = a;
    pl.kernels = csm_kernels(dtype);
    pl.proto.label = -1;
    pl.proto.probs = NULL;
    pl.proto.weight = a->weight;
    pl.proto.smoothing = a->label_smoothing;
    pl.proto.grad_scale = 1.0 / denom; /* inf when nothing counts: nan, as in PyTorch */
    pl.block.ignore_index = a->ignore_index;
    pl.block.weight = a->weight;
    pl.block.smoothing = a->label_smoothing;
    pl.block.grad_scale = pl.proto.grad_scale;
    pl.block.weight_sum = (double)q;
    if (a->weight) {
        pl.block.weight_sum = 0;
        for (ptrdiff_t k = 0; k < q; k++)
            pl.block.weight_sum += read_real(a->weight, k, dtype);
    }
    pl.logits_unit = csm_unit_stride(a->logits_s1, q);
    pl.grad_unit = !a->grad || csm_unit_stride(a->grad_s1, q);
    pl.probs_unit = !a->probs || csm_unit_stride(a->probs_s1, q);

    ptrdiff_t chunk_rows = n / MAX_CHUNKS + 1 > CHUNK_MIN_ROWS ? n / MAX_CHUNKS + 1 : CHUNK_MIN_ROWS;
    chunk_rows = (chunk_rows + CSM_MAX_LANES - 1) / CSM_MAX_LANES * CSM_MAX_LANES;
    const ptrdiff_t n_chunks = (n + chunk_rows - 1) / chunk_rows;
    double partial[MAX_CHUNKS];

    int nt = csm_threads_for(n, q);
    if (nt > n_chunks)
        nt = n_chunks > 0 ? (int)n_chunks : 1;
    /* buf_o: CSM_MAX_LANES rows with class labels, one row with
     * probabilities; buf_p: one row. */
    const size_t per_thread = (a->labels ? CSM_MAX_LANES + 1 : 2) * (size_t)q * es;
    char *scratch = NULL;
    if (!pl.logits_unit || !pl.grad_unit || !pl.probs_unit) {
        scratch = malloc((size_t)nt * per_thread + 1);
        if (!scratch)
            return CSM_ENOMEM;
    }

    if (nt == 1)
        ce_share(&pl, scratch, per_thread, chunk_rows, 0, n_chunks, partial);
    else {
#pragma omp parallel num_threads(nt)
        {
            /* The team may be smaller than asked for: share among those present. */
            const int t = CSM_THREAD_ID();
            ptrdiff_t first, last;
            csm_share(n_chunks, t, CSM_TEAM_SIZE(), &first, &last);
            ce_share(&pl, scratch ? scratch + (size_t)t * per_thread : NULL, per_thread,
                     chunk_rows, first, last, partial);
        }
    }
    free(scratch);

    double total = 0;
    for (ptrdiff_t c = 0; c < n_chunks; c++)
        total += partial[c];
    /* PyTorch's mean is (1-e) sum(nll)/D + (e/q) sum(smooth)/D, and sum(nll)
     * is 0 or nan when D = 0: the mean is then nan, never inf. */
    if (a->reduction == CSM_REDUCE_MEAN)
        *loss = denom == 0 ? NAN : total / denom;
    else
        *loss = total;
    return CSM_OK;
}
