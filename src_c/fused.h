/*
 * fused.h - private: the per-instruction-set halves of the fused training
 * step (train_step.c), compiled from linear_rows.c once per (instruction
 * set, float type) like the row kernels.
 */
#ifndef CSM_FUSED_H
#define CSM_FUSED_H

#include "kernels.h"

/* The rows a step reads and the transposed weights it multiplies them by. */
typedef struct csm_linear_job {
    const void *x;         /* the data set's rows: REAL, or uint8 when x_uint8 */
    ptrdiff_t ldx;         /* row stride of x, in elements */
    int x_uint8;
    double scale;          /* x's values are scale * x (1 for float input) */
    const int64_t *rows;   /* the batch's row indices into x, or NULL: 0, 1, ... */
    ptrdiff_t m;           /* batch rows */
    ptrdiff_t d, q;
    ptrdiff_t d_pad;       /* row stride of wt and of a gradient part */
    const void *wt;        /* q x d_pad weights, transposed, zero past d */
    const void *b;         /* q biases */
    void *z;               /* batch rows x q: logits, then their gradient */
} csm_linear_job;

typedef struct csm_fused_kernels {
    /* z[r] = scale * (x[rows[r]] . W) + b for r in [r0, r0 + nr). */
    void (*forward)(const csm_linear_job *job, ptrdiff_t r0, ptrdiff_t nr);
    /* part (q x d_pad) = sum over r in [r0, r0 + nr), in order, of
     * z[r] (x) x[rows[r]], unscaled; lanes past d are written too. */
    void (*backward)(const csm_linear_job *job, ptrdiff_t r0, ptrdiff_t nr, void *part);
    /* wt (q x d_pad, zero past d) = w (d x q) transposed. */
    void (*transpose_in)(const void *w, void *wt, ptrdiff_t d, ptrdiff_t q, ptrdiff_t d_pad);
    /* gw (d x q) = scale * (part_0 + part_1 + ... + part_{nparts-1}), the
     * parts (q x d_pad each, `stride` elements apart) added in that order,
     * in place into part_0, and transposed. */
    void (*gradient_out)(void *parts, ptrdiff_t nparts, ptrdiff_t stride, ptrdiff_t q,
                         ptrdiff_t d_pad, double scale, void *gw, ptrdiff_t d);
} csm_fused_kernels;

/* The kernels of the instruction set in use, for one dtype (dispatch.c). */
const csm_fused_kernels *csm_fused(csm_dtype dtype);

/* The widest vector in bytes of any instruction set: d_pad is a multiple of
 * it, so every build's vectors tile a padded row exactly. */
#define CSM_MAX_VBYTES 64

#endif
