/*
 * train_step.c - one step of softmax regression on a batch of rows, fused:
 * logits, cross-entropy, its gradient and the weight gradient in one pass
 * over the rows, read straight from the data set by index.
 *
 * For few classes this replaces gather + GEMM + cross-entropy + GEMM: each
 * block of rows is read from memory once (the second product finds it in
 * cache), no batch copy is made, and uint8 rows are widened in registers.
 *
 * Determinism: the batch is cut into blocks whose size depends only on the
 * batch size; each block's weight-gradient part and loss are sums over its
 * rows in order, and the parts are added in block order.  Threads only
 * decide who computes which block, so every result is the same for any
 * thread count.
 */
#include <math.h>
#include <string.h>

#include "fused.h"

#ifdef _OPENMP
#include <omp.h>
#endif

/* Rows per block, unless that makes more than MAX_BLOCKS: a block's rows stay
 * in L2 between the two products (256 rows of 784 floats: 0.8 MB) even for
 * a full-batch step over 60000 rows, and the parts stay few enough to add. */
#define BLOCK_ROWS 64
#define MAX_BLOCKS 256
#define ALIGN 64

typedef struct {
    ptrdiff_t d_pad, block, nblocks;
    size_t wt, z, labels, parts, gb, loss, correct, size; /* byte offsets into the workspace */
} layout;

static size_t round_up(size_t v, size_t to) {
    return (v + to - 1) / to * to;
}

static layout plan(csm_dtype dtype, ptrdiff_t m, ptrdiff_t d, ptrdiff_t q) {
    const size_t es = csm_sizeof(dtype);
    layout L;
    L.d_pad = (ptrdiff_t)round_up((size_t)d, CSM_MAX_VBYTES / es);
    L.block = (m + MAX_BLOCKS - 1) / MAX_BLOCKS;
    if (L.block < BLOCK_ROWS)
        L.block = BLOCK_ROWS;
    L.nblocks = m > 0 ? (m + L.block - 1) / L.block : 0;
    const size_t part = (size_t)q * (size_t)L.d_pad * es;
    L.wt = 0;
    L.z = round_up(L.wt + part, ALIGN);
    L.labels = round_up(L.z + (size_t)m * (size_t)q * es, ALIGN);
    L.parts = round_up(L.labels + (size_t)m * sizeof(int64_t), ALIGN);
    L.gb = round_up(L.parts + (size_t)(L.nblocks > 0 ? L.nblocks : 1) * part, ALIGN);
    L.loss = round_up(L.gb + (size_t)L.nblocks * (size_t)q * sizeof(double), ALIGN);
    L.correct = L.loss + (size_t)L.nblocks * sizeof(double);
    L.size = round_up(L.correct + (size_t)L.nblocks * sizeof(int64_t), ALIGN) + ALIGN;
    return L;
}

size_t csm_train_step_workspace(csm_dtype dtype, ptrdiff_t m, ptrdiff_t d, ptrdiff_t q) {
    return plan(dtype, m, d, q).size;
}

/* The few element-typed loops of the driver, for both float types. */
#define TYPED_HELPERS(REAL, SUF)                                                              \
    /* np.argmax's answer: the first maximum, or the first nan. */                           \
    static ptrdiff_t argmax_##SUF(const REAL *z, ptrdiff_t q) {                               \
        ptrdiff_t best = 0;                                                                   \
        for (ptrdiff_t k = 1; k < q; k++)                                                     \
            if (z[k] > z[best] || (z[k] != z[k] && z[best] == z[best]))                       \
                best = k;                                                                     \
        return best;                                                                          \
    }                                                                                         \
    static void column_sums_##SUF(const REAL *g, ptrdiff_t nr, ptrdiff_t q, double *out) {    \
        for (ptrdiff_t k = 0; k < q; k++)                                                     \
            out[k] = 0;                                                                       \
        for (ptrdiff_t r = 0; r < nr; r++)                                                    \
            for (ptrdiff_t k = 0; k < q; k++)                                                 \
                out[k] += (double)g[r * q + k];                                               \
    }

TYPED_HELPERS(float, f32)
TYPED_HELPERS(double, f64)

#define BY_TYPE(dtype, fn, ...) \
    ((dtype) == CSM_FLOAT64 ? fn##_f64(__VA_ARGS__) : fn##_f32(__VA_ARGS__))
#define BY_TYPE_VOID(dtype, fn, ...)         \
    do {                                     \
        if ((dtype) == CSM_FLOAT64)          \
            fn##_f64(__VA_ARGS__);           \
        else                                 \
            fn##_f32(__VA_ARGS__);           \
    } while (0)

typedef struct {
    csm_dtype dtype;
    const csm_step_args *a;
    const csm_linear_job *job;
    const csm_fused_kernels *fk;
    const csm_row_kernels *rk;
    layout L;
    char *ws;
} step_plan;

/* One block: logits; then, with labels, accuracy, loss and the gradient in
 * place of the logits; then, with grad_w, the block's gradient part. */
static void run_block(const step_plan *P, ptrdiff_t bl) {
    const csm_step_args *a = P->a;
    const size_t es = csm_sizeof(P->dtype);
    const ptrdiff_t q = a->q, r0 = bl * P->L.block;
    const ptrdiff_t nr = a->m - r0 < P->L.block ? a->m - r0 : P->L.block;
    char *z = (char *)P->job->z;
    P->fk->forward(P->job, r0, nr);
    if (!a->labels)
        return;
    /* The block's labels side by side, for the row kernels' cross-entropy
     * over many rows at once (one row per SIMD lane for short rows). */
    int64_t *labels = (int64_t *)(P->ws + P->L.labels) + r0;
    int64_t correct = 0;
    for (ptrdiff_t r = r0; r < r0 + nr; r++) {
        labels[r - r0] = a->labels[a->rows ? (ptrdiff_t)a->rows[r] : r];
        const char *zr = z + (size_t)(r * q) * es;
        correct += BY_TYPE(P->dtype, argmax, (const void *)zr, q) == labels[r - r0];
    }
    /* Labels were checked by the caller: none is ignored. */
    const csm_ce_block ce = {-1, NULL, 0.0, 1.0 / (double)a->m, (double)q};
    double lanes[CSM_MAX_LANES] = {0}, loss = 0;
    char *zb = z + (size_t)(r0 * q) * es;
    P->rk->ce_labels(zb, q, a->grad_w ? zb : NULL, q, labels, NULL, 0, nr, nr, q, &ce, lanes);
    for (int k = 0; k < CSM_MAX_LANES; k++)
        loss += lanes[k];
    ((double *)(P->ws + P->L.loss))[bl] = loss;
    ((int64_t *)(P->ws + P->L.correct))[bl] = correct;
    if (!a->grad_w)
        return;
    char *part = P->ws + P->L.parts + (size_t)(bl * q * P->L.d_pad) * es;
    P->fk->backward(P->job, r0, nr, part);
    BY_TYPE_VOID(P->dtype, column_sums, (void *)(z + (size_t)(r0 * q) * es), nr, q,
                 (double *)(P->ws + P->L.gb) + bl * q);
}

static int threads_for_step(const csm_step_args *a, ptrdiff_t nblocks) {
    /* The products cost about d * q per row: weigh rows by that. */
    int nt = csm_threads_for(a->m, a->d * (a->q < 4 ? 4 : a->q) / 8);
    return nt < nblocks ? nt : (int)(nblocks > 0 ? nblocks : 1);
}

int csm_train_step(csm_dtype dtype, const csm_step_args *a, double *loss_sum, int64_t *correct) {
    const layout L = plan(dtype, a->m, a->d, a->q);
    char *ws = (char *)round_up((size_t)(uintptr_t)a->work, ALIGN);
    if (!a->work || a->work_size < L.size)
        return CSM_ENOMEM;
    const csm_fused_kernels *fk = csm_fused(dtype);
    fk->transpose_in(a->w, ws + L.wt, a->d, a->q, L.d_pad);

    csm_linear_job job = {a->x, a->ldx, a->x_uint8, a->x_uint8 ? a->scale : 1.0, a->rows, a->m,
                          a->d, a->q, L.d_pad, ws + L.wt, a->b,
                          a->labels ? (void *)(ws + L.z) : a->logits};
    step_plan P = {dtype, a, &job, fk, csm_kernels(dtype), L, ws};
    const int nt = threads_for_step(a, L.nblocks);
    const ptrdiff_t nb = L.nblocks, d = a->d;
#pragma omp parallel for num_threads(nt) if (nt > 1) schedule(dynamic, 1)
    for (ptrdiff_t bl = 0; bl < nb; bl++)
        run_block(&P, bl); /* dynamic: a thread slowed by another process hands blocks on */
    if (a->grad_w && a->labels) {
        /* The parts' sum in block order, into grad_w's layout.  A few
         * microseconds: on this thread, as a second parallel pass would cost
         * another team barrier, and barriers are what hurts when another
         * process holds a core. */
        const ptrdiff_t stride = a->q * L.d_pad;
        if (nb == 0) /* no rows: a zero gradient */
            memset(ws + L.parts, 0, (size_t)stride * csm_sizeof(dtype));
        fk->gradient_out(ws + L.parts, nb > 0 ? nb : 1, stride, a->q, L.d_pad, job.scale,
                         a->grad_w, d);
    }
    double loss = 0;
    int64_t right = 0;
    if (a->labels)
        for (ptrdiff_t bl = 0; bl < nb; bl++) {
            loss += ((const double *)(ws + L.loss))[bl];
            right += ((const int64_t *)(ws + L.correct))[bl];
        }
    if (a->grad_b) {
        const double *gb = (const double *)(ws + L.gb);
        for (ptrdiff_t k = 0; k < a->q; k++) {
            double s = 0;
            for (ptrdiff_t bl = 0; bl < nb; bl++)
                s += gb[bl * a->q + k];
            if (dtype == CSM_FLOAT64)
                ((double *)a->grad_b)[k] = s;
            else
                ((float *)a->grad_b)[k] = (float)s;
        }
    }
    if (loss_sum)
        *loss_sum = loss;
    if (correct)
        *correct = right;
    return CSM_OK;
}
