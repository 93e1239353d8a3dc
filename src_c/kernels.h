/*
 * kernels.h - private: the per-row kernels that the drivers (softmax.c,
 * cross_entropy.c) run over a batch, and the table of them per instruction
 * set.  A row here is always contiguous; the drivers gather strided rows.
 */
#ifndef CSM_KERNELS_H
#define CSM_KERNELS_H

#include "csoftmax.h"

/* What one row of cross-entropy needs besides its logits. */
typedef struct csm_ce_row {
    int64_t label;          /* class index, or -1 with probability targets */
    const void *probs;      /* contiguous target row, or NULL */
    const void *weight;     /* q class weights, or NULL */
    double smoothing;       /* label smoothing e */
    double grad_scale;      /* 1 / denominator of the reduction */
} csm_ce_row;

/* The row kernels take `rows` contiguous rows of q elements, row r at
 * x + r*ldx (elements); logsumexp writes one value per row, at y + r*ldy. */
typedef void (*csm_rows_fn)(const void *x, ptrdiff_t ldx, void *y, ptrdiff_t ldy, ptrdiff_t rows,
                            ptrdiff_t q);

typedef struct csm_row_kernels {
    csm_rows_fn softmax;
    csm_rows_fn log_softmax;
    csm_rows_fn logsumexp;
    /* Returns the row's loss (unreduced); writes the gradient when g != NULL.
     * g may be o. */
    double (*cross_entropy)(const void *o, void *g, ptrdiff_t q, const csm_ce_row *p);
    void (*exp)(const void *x, void *y, ptrdiff_t n);
} csm_row_kernels;

/* The kernels of the instruction set in use, for one dtype. */
const csm_row_kernels *csm_kernels(csm_dtype dtype);

/* How many threads to use for `rows` rows of `q` elements. */
int csm_threads_for(ptrdiff_t rows, ptrdiff_t q);

static inline size_t csm_sizeof(csm_dtype dtype) {
    return dtype == CSM_FLOAT64 ? sizeof(double) : sizeof(float);
}

#endif
