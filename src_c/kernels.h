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

/* The most lanes of any instruction set's vectors (float32 in AVX-512). */
#define CSM_MAX_LANES 16

/* Cross-entropy with class labels over a run of rows: what stays the same
 * from row to row. */
typedef struct csm_ce_block {
    int64_t ignore_index;
    const void *weight;     /* q class weights, or NULL */
    double smoothing;       /* label smoothing e */
    double grad_scale;      /* 1 / denominator of the reduction */
    double weight_sum;      /* sum of the class weights (q without weights) */
} csm_ce_block;

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
    /* `rows` rows with class labels: logits at o + r*ldo, gradient (when g
     * != NULL; g may be o) at g + r*ldg, row losses (when loss_rows != NULL)
     * at loss_rows + r*lds.  Row r's loss is added to lane_sums[r % lanes],
     * `lanes` being the instruction set's vector width (a divisor of
     * CSM_MAX_LANES): the caller adds the CSM_MAX_LANES sums in order, so the
     * total depends only on the rows, not on how they were split into calls
     * (of multiples of CSM_MAX_LANES rows).  The logits of rows [rows,
     * readable) may be read too, never written.  Labels are valid or
     * ignore_index. */
    void (*ce_labels)(const void *o, ptrdiff_t ldo, void *g, ptrdiff_t ldg, const int64_t *labels,
                      void *loss_rows, ptrdiff_t lds, ptrdiff_t rows, ptrdiff_t readable,
                      ptrdiff_t q, const csm_ce_block *p, double *lane_sums);
    /* The position of the first label outside [0, q) that is not ignore,
     * or -1. */
    ptrdiff_t (*first_bad_label)(const int64_t *labels, ptrdiff_t n, ptrdiff_t q, int64_t ignore);
    /* The summed weight of the labels that are not ignore (their count
     * without weights), added in a fixed order. */
    double (*label_mass)(const int64_t *labels, ptrdiff_t n, int64_t ignore, const void *weight);
    void (*exp)(const void *x, void *y, ptrdiff_t n);
    void (*log)(const void *x, void *y, ptrdiff_t n);
} csm_row_kernels;

/* The kernels of the instruction set in use, for one dtype. */
const csm_row_kernels *csm_kernels(csm_dtype dtype);

/* How many threads to use for `rows` rows of `q` elements. */
int csm_threads_for(ptrdiff_t rows, ptrdiff_t q);

static inline size_t csm_sizeof(csm_dtype dtype) {
    return dtype == CSM_FLOAT64 ? sizeof(double) : sizeof(float);
}

#endif
