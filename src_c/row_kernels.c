/*
 * row_kernels.c - softmax, log-softmax, logsumexp and cross-entropy of one
 * contiguous row, written once.  CMake compiles this file once per
 * (instruction set, float type); each build exports one table of kernels,
 * csm_rows_<isa>_<f32|f64>, that dispatch.c chooses from.
 *
 * Every kernel first takes the row's max m and works with x - m, so that
 * exp never overflows.  Sums are taken in vector lanes over blocks of
 * SUM_BLOCK elements and folded into a double, which bounds the float32
 * rounding error by the block length rather than the row length.  The order
 * of every sum depends only on q, never on the data's address, so a row's
 * result is the same wherever it lies in memory.
 */
#include "kernels.h"
#include "vexp.h"

#define SUM_BLOCK 512 /* a multiple of every W */

static inline ptrdiff_t min_len(ptrdiff_t a, ptrdiff_t b) {
    return a < b ? a : b;
}

static REAL row_max(const REAL *x, ptrdiff_t q) {
    VR m0 = vset(-INFINITY), m1 = m0;
    ptrdiff_t k = 0;
    for (; k + 2 * W <= q; k += 2 * W) {
        m0 = vmax(m0, vload(x + k));
        m1 = vmax(m1, vload(x + k + W));
    }
    for (; k + W <= q; k += W)
        m0 = vmax(m0, vload(x + k));
    if (k < q)
        m1 = vmax(m1, vload_part(x + k, q - k, -INFINITY));
    return vmax_lanes(vmax(m0, m1));
}

/* sum_k exp(x[k] - shift), also stored to y[k] when store is set. */
static inline double exp_sum(const REAL *x, REAL *y, ptrdiff_t q, REAL shift, const int store) {
    const VR s = vset(shift);
    const ptrdiff_t full = q - q % W;
    double total = 0;
    for (ptrdiff_t b = 0; b < full; b += SUM_BLOCK) {
        const ptrdiff_t end = min_len(b + SUM_BLOCK, full);
        VR a0 = {0}, a1 = {0};
        ptrdiff_t k = b;
        for (; k + 2 * W <= end; k += 2 * W) {
            VR e0 = vexp(vload(x + k) - s), e1 = vexp(vload(x + k + W) - s);
            if (store) {
                vstore(y + k, e0);
                vstore(y + k + W, e1);
            }
            a0 += e0;
            a1 += e1;
        }
        if (k < end) {
            VR e0 = vexp(vload(x + k) - s);
            if (store)
                vstore(y + k, e0);
            a0 += e0;
        }
        total += vsum(a0 + a1);
    }
    if (full < q) {
        VR e = vkeep_first(vexp(vload_part(x + full, q - full, 0) - s), q - full);
        if (store)
            vstore_part(y + full, e, q - full);
        total += vsum(e);
    }
    return total;
}

/* y[k] = x[k] * a + b (y may be x). */
static void affine(const REAL *x, REAL *y, ptrdiff_t q, REAL a, REAL b) {
    ptrdiff_t k = 0;
    for (; k + W <= q; k += W)
        vstore(y + k, vload(x + k) * a + b);
    if (k < q)
        vstore_part(y + k, vload_part(x + k, q - k, 0) * a + b, q - k);
}

static void softmax_row(const REAL *x, REAL *y, ptrdiff_t q) {
    const REAL m = row_max(x, q);
    const double s = exp_sum(x, y, q, m, 1);
    affine(y, y, q, (REAL)(1.0 / s), 0);
}

static void log_softmax_row(const REAL *x, REAL *y, ptrdiff_t q) {
    const REAL m = row_max(x, q);
    const REAL log_s = (REAL)log(exp_sum(x, NULL, q, m, 0));
    /* (x - m) - log_s, not x - (m + log_s): x - m is exact near the max. */
    const VR vm = vset(m);
    ptrdiff_t k = 0;
    for (; k + W <= q; k += W)
        vstore(y + k, (vload(x + k) - vm) - log_s);
    if (k < q)
        vstore_part(y + k, (vload_part(x + k, q - k, 0) - vm) - log_s, q - k);
}

static double logsumexp_row(const REAL *x, ptrdiff_t q) {
    const REAL m = row_max(x, q);
    /* An infinite max is not subtracted: a row of -inf then sums to 0
     * (log: -inf) and a row holding +inf to +inf, unless it holds nan. */
    const REAL shift = isfinite(m) ? m : 0;
    return (double)shift + log(exp_sum(x, NULL, q, shift, 0));
}

/*
 * Rows no longer than one vector (q <= W, such as the 10 classes of
 * Fashion-MNIST) live in one register from load to store: the max and the
 * sum are shuffle trees, and consecutive rows are independent, so the CPU
 * overlaps them.  The padding lanes hold -inf, whose exp is 0.
 */
static inline VR short_row(const REAL *x, ptrdiff_t q, VR *m) {
    const VR v = vload_part(x, q, -INFINITY);
    *m = vmax_all(v);
    return v;
}

static void softmax_rows(const void *xv, ptrdiff_t ldx, void *yv, ptrdiff_t ldy, ptrdiff_t rows,
                         ptrdiff_t q) {
    const REAL *x = xv;
    REAL *y = yv;
    if (q > W) {
        for (ptrdiff_t r = 0; r < rows; r++)
            softmax_row(x + r * ldx, y + r * ldy, q);
        return;
    }
    for (ptrdiff_t r = 0; r < rows; r++) {
        VR m;
        const VR v = short_row(x + r * ldx, q, &m);
        /* A row of -inf has m = -inf and nan everywhere, as the formula says. */
        const VR e = vkeep_first(vexp(v - m), q);
        vstore_part(y + r * ldy, e / vsum_all(e), q);
    }
}

static void log_softmax_rows(const void *xv, ptrdiff_t ldx, void *yv, ptrdiff_t ldy,
                             ptrdiff_t rows, ptrdiff_t q) {
    const REAL *x = xv;
    REAL *y = yv;
    if (q > W) {
        for (ptrdiff_t r = 0; r < rows; r++)
            log_softmax_row(x + r * ldx, y + r * ldy, q);
        return;
    }
    for (ptrdiff_t r = 0; r < rows; r++) {
        VR m;
        const VR v = short_row(x + r * ldx, q, &m);
        const VR d = v - m;
        const REAL s = vsum_all(vkeep_first(vexp(d), q))[0];
        vstore_part(y + r * ldy, d - (REAL)log((double)s), q);
    }
}

static void logsumexp_rows(const void *xv, ptrdiff_t ldx, void *yv, ptrdiff_t ldy,
                           ptrdiff_t rows, ptrdiff_t q) {
    const REAL *x = xv;
    REAL *y = yv;
    if (q > W) {
        for (ptrdiff_t r = 0; r < rows; r++)
            y[r * ldy] = (REAL)logsumexp_row(x + r * ldx, q);
        return;
    }
    for (ptrdiff_t r = 0; r < rows; r++) {
        VR m;
        const VR v = short_row(x + r * ldx, q, &m);
        const REAL shift = isfinite(m[0]) ? m[0] : 0;
        const REAL s = vsum_all(vexp(v - shift))[0];
        y[r * ldy] = (REAL)((double)shift + log((double)s));
    }
}

/*
 * Cross-entropy against a target distribution c over the classes (smoothed
 * and weighted):  loss = -sum_k c_k log p_k = -sum_k c_k (o_k - m) + C log s
 * with C = sum_k c_k, s = sum_k exp(o_k - m), and the gradient
 * g_k = scale * (p_k C - c_k).
 *
 * With probability targets c_k = w_k ((1 - e) t_k + e/q).  With a label y,
 * c_k = (e/q) w_k + (1 - e) w_y [k = y], and the loss is formed as PyTorch
 * forms it, (1 - e) nll + (e/q) smooth, so the same IEEE special cases come
 * out (the smoothing term is left out entirely when e = 0).
 */

/* sum_k c_k log p_k and sum_k c_k, with log p_k = (o_k - m) - log_s and
 * c_k = w_k (a t_k + b); a missing w reads as ones, a missing t as zeros.
 * Each product is formed before the sum, as PyTorch forms it, so an
 * infinite c_k meets log p_k itself (never a 0 that log_s was split from). */
static void target_moments(const REAL *o, const REAL *t, const REAL *w, ptrdiff_t q, REAL m,
                           REAL log_s, REAL a, REAL b, double *dot, double *mass) {
    const VR vm = vset(m);
    const ptrdiff_t full = q - q % W;
    double d = 0, c = 0;
    for (ptrdiff_t blk = 0; blk < full; blk += SUM_BLOCK) {
        const ptrdiff_t end = min_len(blk + SUM_BLOCK, full);
        VR ad = {0}, ac = {0};
        for (ptrdiff_t k = blk; k < end; k += W) {
            VR ck = t ? vload(t + k) * a + b : vset(b);
            if (w)
                ck *= vload(w + k);
            ad += ck * ((vload(o + k) - vm) - log_s);
            ac += ck;
        }
        d += vsum(ad);
        c += vsum(ac);
    }
    if (full < q) {
        const ptrdiff_t r = q - full;
        VR ck = t ? vload_part(t + full, r, 0) * a + b : vset(b);
        if (w)
            ck *= vload_part(w + full, r, 0);
        ck = vkeep_first(ck, r);
        d += vsum(vkeep_first(ck * ((vload_part(o + full, r, 0) - vm) - log_s), r));
        c += vsum(ck);
    }
    *dot = d;
    *mass = c;
}

/* g_k = e_k A - w_k (sa t_k + sb), with e_k = exp(o_k - m) already in g, or
 * (in place, g holding the logits) computed here from them. */
static void ce_grad(REAL *g, const REAL *t, const REAL *w, ptrdiff_t q, REAL A, REAL sa, REAL sb,
                    int g_holds_logits, REAL m) {
    const VR vm = vset(m);
    ptrdiff_t k = 0;
    for (; k + W <= q; k += W) {
        VR ck = t ? vload(t + k) * sa + sb : vset(sb);
        if (w)
            ck *= vload(w + k);
        VR e = vload(g + k);
        if (g_holds_logits)
            e = vexp(e - vm);
        vstore(g + k, e * A - ck);
    }
    if (k < q) {
        const ptrdiff_t r = q - k;
        VR ck = t ? vload_part(t + k, r, 0) * sa + sb : vset(sb);
        if (w)
            ck *= vload_part(w + k, r, 0);
        VR e = vload_part(g + k, r, 0);
        if (g_holds_logits)
            e = vexp(e - vm);
        vstore_part(g + k, e * A - ck, r);
    }
}

/* ce_row for q <= W: the same formulas with the row in one register. */
static double ce_short(const REAL *o, REAL *g, ptrdiff_t q, const csm_ce_row *p) {
    const REAL *t = p->probs;
    const REAL *w = p->weight;
    const double e = p->smoothing;
    const VR v = vload_part(o, q, -INFINITY);
    const VR m = vmax_all(v);
    const VR d = v - m;
    const VR ex = vkeep_first(vexp(d), q);
    const double s = (double)vsum_all(ex)[0];
    const double log_s = log(s);
    const VR wv = w ? vload_part(w, q, 0) : vkeep_first(vset(1), q);
    const VR logp = d - (REAL)log_s;
    double loss, C, wy = 0, oy = 0;
    VR c = vset(0); /* the target coefficients that the vector pass subtracts */
    if (t) {
        c = vkeep_first((vload_part(t, q, 0) * (REAL)(1 - e) + (REAL)(e / q)) * wv, q);
        C = (double)vsum_all(c)[0];
        loss = -(double)vsum_all(vkeep_first(c * logp, q))[0];
    } else {
        oy = (double)o[p->label];
        wy = w ? (double)w[p->label] : 1.0;
        loss = (1 - e) * (-wy * ((oy - (double)m[0]) - log_s));
        C = (1 - e) * wy;
        if (e > 0) {
            c = wv * (REAL)(e / q);
            loss += -(double)vsum_all(vkeep_first(c * logp, q))[0];
            C += (double)vsum_all(c)[0];
        }
    }
    if (g) {
        const double scale = p->grad_scale;
        const double A = scale * C / s;
        vstore_part(g, ex * (REAL)A - c * (REAL)scale, q);
        if (!t)
            g[p->label] = (REAL)((double)ex[p->label] * A - scale * (e / q) * wy -
                                 scale * (1 - e) * wy);
    }
    return loss;
}

static double ce_row(const void *ov, void *gv, ptrdiff_t q, const csm_ce_row *p) {
    const REAL *o = ov;
    REAL *g = gv;
    if (q <= W)
        return ce_short(o, g, q, p);
    const REAL *t = p->probs;
    const REAL *w = p->weight;
    const double e = p->smoothing;
    const REAL m = row_max(o, q);
    /* The exponentials go straight into g unless g is o, whose values the
     * target pass still needs: then the gradient pass recomputes them. */
    const int in_place = g == o;
    const double oy = t ? 0 : (double)o[p->label];
    const double s = exp_sum(o, g, q, m, g != NULL && !in_place);
    const double log_s = log(s);
    /* The target's exponential, bit for bit the one exp_sum stored. */
    const double ey = (t || !g)  ? 0
                      : in_place ? (double)vexp(vset(o[p->label] - m))[0]
                                 : (double)g[p->label];

    double dot = 0, mass = 0;
    if (t)
        target_moments(o, t, w, q, m, (REAL)log_s, (REAL)(1 - e), (REAL)(e / q), &dot, &mass);
    else if (e > 0)
        target_moments(o, NULL, w, q, m, (REAL)log_s, 0, (REAL)(e / q), &dot, &mass);

    double loss, C;
    double wy = 0;
    if (t) {
        loss = -dot;
        C = mass;
    } else {
        wy = w ? (double)w[p->label] : 1.0;
        const double nll = -wy * ((oy - (double)m) - log_s);
        loss = (1 - e) * nll;
        if (e > 0)
            loss += -dot;
        C = (1 - e) * wy + mass;
    }
    if (g) {
        const double scale = p->grad_scale;
        const double A = scale * C / s;
        if (t)
            ce_grad(g, t, w, q, (REAL)A, (REAL)(scale * (1 - e)), (REAL)(scale * e / q), in_place,
                    m);
        else {
            const double sb = scale * e / q;
            ce_grad(g, NULL, e > 0 ? w : NULL, q, (REAL)A, 0, (REAL)sb, in_place, m);
            g[p->label] = (REAL)(ey * A - sb * wy - scale * (1 - e) * wy);
        }
    }
    return loss;
}

static void exp_array(const void *xv, void *yv, ptrdiff_t n) {
    const REAL *x = xv;
    REAL *y = yv;
    ptrdiff_t k = 0;
    for (; k + W <= n; k += W)
        vstore(y + k, vexp(vload(x + k)));
    if (k < n)
        vstore_part(y + k, vexp(vload_part(x + k, n - k, 0)), n - k);
}

const csm_row_kernels CSM_CAT3(csm_rows, CSM_ISA, CSM_TYPE) = {
    softmax_rows, log_softmax_rows, logsumexp_rows, ce_row, exp_array,
};
