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
#if defined(__GNUC__) && !defined(__clang__)
/* GCC cannot follow that the short-row tiles set every column that the
 * loops after them read (j < q <= TILE_Q), and says so once per column of
 * every unrolled loop, in the headers' inline functions too. */
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif
#include "kernels.h"
#include "vlog.h"

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
        vstore(y + k, vfma(vload(x + k), vset(a), vset(b)));
    if (k < q)
        vstore_part(y + k, vfma(vload_part(x + k, q - k, 0), vset(a), vset(b)), q - k);
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
 * Short rows (q <= TILE_Q, such as the 10 classes of Fashion-MNIST) are
 * worked on W at a time, one row per lane: a tile of W rows is loaded row by
 * row and transposed in registers into q column vectors, so the max, the
 * exponentials, the sum and the log are plain lane-wise operations with no
 * horizontal reduction, and the transpose back gives the output rows.  A
 * lane's result depends only on its own row, so a row gives the same bits in
 * a full tile, in the short tile at the end of a thread's share, or alone.
 *
 * Rows are loaded in whole vectors, reading past a row's end (into the next
 * row, or the gap of a strided view) as long as that stays inside the rows
 * the call was given; the lanes read there become columns >= q, never used.
 * Only the last rows of a call take masked loads.  Stores are masked to the
 * row.  Whether the exponentials may take their fast path (vexp.h) is
 * decided once per tile, from the rows' min and max, so that the loops over
 * the columns have no branch.  Full tiles (n = nwhole = W, constants at the
 * call) compile without any test.
 */
#if defined(CSM_ISA_avx512) || defined(CSM_ISA_avx2)
#define TILE_GROUPS 2
#else
#define TILE_GROUPS (64 / VBYTES)
#endif
#define TILE_Q (TILE_GROUPS * W)
#define TILE_SPAN(q) (((q) + W - 1) / W * W) /* elements a whole-vector row read takes */

#define INLINE static inline __attribute__((always_inline))
#define UNROLL _Pragma("GCC unroll 32")

/* c[j] lane r = x[r*ldx + j] for j < q and rows r < n of a tile; rows below
 * nwhole are read in whole vectors; lanes from n on hold 0. */
INLINE void tile_load(const REAL *x, ptrdiff_t ldx, ptrdiff_t q, ptrdiff_t n, ptrdiff_t nwhole,
                      VR *c) {
    if (q > TILE_Q)
        __builtin_unreachable();
    UNROLL for (ptrdiff_t g = 0; g < TILE_GROUPS; g++) {
        if (g * W >= q)
            break;
        const ptrdiff_t k = min_len(W, q - g * W);
        VR v[W];
#ifdef CSM_HALVES
        if (nwhole == W) {
            UNROLL for (ptrdiff_t r = 0; r < W / 2; r++) {
                const REAL *a = x + r * ldx + g * W, *b = a + W / 2 * ldx;
                v[r] = vload_halves(a, b);
                v[r + W / 2] = vload_halves(a + W / 2, b + W / 2);
            }
            vtranspose_inner(v);
        } else
#endif
        {
            UNROLL for (ptrdiff_t r = 0; r < W; r++) {
                const REAL *p = x + r * ldx + g * W;
                v[r] = r < nwhole ? vload(p) : r < n ? vload_part(p, k, 0) : vset(0);
            }
            vtranspose(v);
        }
        UNROLL for (ptrdiff_t j = 0; j < k; j++)
            c[g * W + j] = v[j];
    }
}

/* Rows r < n of the tile from its columns c[j], j < q. */
INLINE void tile_store(REAL *y, ptrdiff_t ldy, ptrdiff_t q, ptrdiff_t n, const VR *c) {
    UNROLL for (ptrdiff_t g = 0; g < TILE_GROUPS; g++) {
        if (g * W >= q)
            break;
        const ptrdiff_t k = min_len(W, q - g * W);
        VR v[W];
        UNROLL for (ptrdiff_t j = 0; j < W; j++)
            v[j] = j < k ? c[g * W + j] : vset(0);
#ifdef CSM_HALVES
        if (n == W && ldy > 0) {
            /* Vector i < W/2 holds rows i and i + W/2, columns [0, W/2) of
             * the group; vector i + W/2 their columns [W/2, W). */
            vtranspose_inner(v);
            UNROLL for (ptrdiff_t i = 0; i < W / 2; i++) {
                REAL *a = y + i * ldy + g * W, *b = a + W / 2 * ldy;
                vstore_halves(a, b, v[i], min_len(k, W / 2));
                if (k > W / 2)
                    vstore_halves(a + W / 2, b + W / 2, v[i + W / 2], k - W / 2);
            }
            continue;
        }
#endif
        vtranspose(v);
        UNROLL for (ptrdiff_t r = 0; r < W; r++)
            if (r < n)
                vstore_part(y + r * ldy + g * W, v[r], k);
    }
}

/* The first row of `rows` (stride ldx) from which whole-vector reads would
 * run past the end of the last row. */
static inline ptrdiff_t tile_whole_rows(ptrdiff_t rows, ptrdiff_t ldx, ptrdiff_t q) {
    const ptrdiff_t room = (rows - 1) * ldx + q - TILE_SPAN(q); /* last start allowed */
    if (ldx <= 0)
        return room >= 0 ? 1 : 0; /* row 0 alone; also for one row */
    return room < 0 ? 0 : min_len(rows, room / ldx + 1);
}

/* Drive a tile kernel over `rows` rows, of which the first `readable`
 * (>= rows) may be read: full tiles, then the edge. */
#define FOR_TILES(rows, readable, ldx, q, FULL, EDGE)                                    \
    do {                                                                                 \
        const ptrdiff_t whole_ = min_len(tile_whole_rows(readable, ldx, q), rows);       \
        ptrdiff_t t = 0;                                                                 \
        for (; t + W <= whole_; t += W)                                                  \
            FULL;                                                                        \
        for (; t < (rows); t += W) {                                                     \
            const ptrdiff_t n = min_len(W, (rows) - t);                                  \
            const ptrdiff_t nwhole = whole_ > t ? min_len(n, whole_ - t) : 0;            \
            EDGE;                                                                        \
        }                                                                                \
    } while (0)

/* Reductions over the columns as pairwise trees (a fixed order for each q):
 * the chains stay short, so the steps of one tile overlap each other, not
 * only the next tile, whose start is hundreds of instructions away. */
#define TREE_REDUCE(op, v, q)                                                            \
    do {                                                                                 \
        UNROLL for (ptrdiff_t h_ = 1; h_ < TILE_Q; h_ *= 2) {                            \
            if (h_ >= (q))                                                               \
                break;                                                                   \
            UNROLL for (ptrdiff_t i_ = 0; i_ + h_ < TILE_Q; i_ += 2 * h_)                \
                if (i_ + h_ < (q))                                                       \
                    (v)[i_] = op((v)[i_], (v)[i_ + h_]);                                 \
        }                                                                                \
    } while (0)

static inline VR vadd2(VR a, VR b) {
    return a + b;
}

/* The lane-wise max and min of the columns (no columns: -inf and +inf). */
INLINE void tile_range(const VR *c, ptrdiff_t q, VR *max, VR *min) {
    if (q > TILE_Q)
        __builtin_unreachable();
    if (q == 0) {
        *max = vset(-INFINITY);
        *min = vset(INFINITY);
        return;
    }
    VR a[TILE_Q], b[TILE_Q];
    UNROLL for (ptrdiff_t j = 0; j < q && j < TILE_Q; j++)
        a[j] = b[j] = c[j];
    TREE_REDUCE(vmax, a, q);
    TREE_REDUCE(vmin, b, q);
    *max = a[0];
    *min = b[0];
}

/* e[j] = exp(d[j]) (e may be d, or NULL); returns their sum.  `slow`: some
 * lane may be outside the fast path's range. */
INLINE VR tile_exp(const VR *d, VR *e, ptrdiff_t q, int slow) {
    if (q == 0)
        return vset(0);
    VR t[TILE_Q];
    if (slow) {
        UNROLL for (ptrdiff_t j = 0; j < q && j < TILE_Q; j++)
            t[j] = vexp_slow(d[j]);
    } else {
        UNROLL for (ptrdiff_t j = 0; j < q && j < TILE_Q; j++)
            t[j] = vexp_fast(d[j]);
    }
    if (e)
        UNROLL for (ptrdiff_t j = 0; j < q && j < TILE_Q; j++)
            e[j] = t[j];
    TREE_REDUCE(vadd2, t, q);
    return t[0];
}

/* Is min - max below the fast range in some lane? */
INLINE int tile_slow(VR min, VR max) {
    return vany_m(vlt(min - max, vset(EXP_FAST_LO)));
}

/* Softmax (log_form: log-softmax) in two halves: the front loads a tile and
 * leaves its shifted columns in c and 1/s (log s) in *k; the back scales
 * (shifts) and stores them.  softmax_tiles runs one tile's front before the
 * previous tile's back, so that the division or log at the end of the front
 * runs while the CPU stores the other tile. */
INLINE void softmax_front(const REAL *x, ptrdiff_t ldx, ptrdiff_t q, ptrdiff_t n, ptrdiff_t nwhole,
                          int log_form, VR *c, VR *k) {
    VR m, lo;
    tile_load(x, ldx, q, n, nwhole, c);
    tile_range(c, q, &m, &lo);
    /* A row of -inf has m = -inf and nan everywhere, as the formula says. */
    UNROLL for (ptrdiff_t j = 0; j < q && j < TILE_Q; j++)
        c[j] -= m;
    if (log_form)
        *k = vlog(tile_exp(c, NULL, q, tile_slow(lo, m)));
    else
        *k = 1 / tile_exp(c, c, q, tile_slow(lo, m));
}

INLINE void softmax_back(REAL *y, ptrdiff_t ldy, ptrdiff_t q, ptrdiff_t n, int log_form, VR *c,
                         VR k) {
    UNROLL for (ptrdiff_t j = 0; j < q && j < TILE_Q; j++)
        /* (x - m) - log s, not x - (m + log s): x - m is exact near the max. */
        c[j] = log_form ? c[j] - k : c[j] * k;
    tile_store(y, ldy, q, n, c);
}

/* One value per row, in lane order. */
INLINE VR logsumexp_tile(const REAL *x, ptrdiff_t ldx, ptrdiff_t q, ptrdiff_t n,
                         ptrdiff_t nwhole) {
    VR c[TILE_Q], m, lo;
    tile_load(x, ldx, q, n, nwhole, c);
    tile_range(c, q, &m, &lo);
    /* An infinite max is not subtracted: a row of -inf then sums to 0
     * (log: -inf) and a row holding +inf to +inf, unless it holds nan. */
    const VR shift = vsel(veq(m - m, vset(0)), m, vset(0));
    UNROLL for (ptrdiff_t j = 0; j < q && j < TILE_Q; j++)
        c[j] -= shift;
    const int slow = vany_m(vlt(lo - shift, vset(EXP_FAST_LO))) ||
                     vany_m(vgt(m - shift, vset(EXP_FAST_HI)));
    return shift + vlog(tile_exp(c, NULL, q, slow));
}

INLINE void softmax_tiles(const REAL *x, ptrdiff_t ldx, REAL *y, ptrdiff_t ldy, ptrdiff_t rows,
                          ptrdiff_t q, int log_form) {
    const ptrdiff_t whole = tile_whole_rows(rows, ldx, q);
    ptrdiff_t t = 0;
    if (whole >= W) {
        /* In place, a front's loads come before the back that writes the
         * tile before it, and read no row of it. */
        VR c[TILE_Q], k;
        softmax_front(x, ldx, q, W, W, log_form, c, &k);
        for (t = W; t + W <= whole; t += W) {
            VR next[TILE_Q], k_next;
            softmax_front(x + t * ldx, ldx, q, W, W, log_form, next, &k_next);
            softmax_back(y + (t - W) * ldy, ldy, q, W, log_form, c, k);
            UNROLL for (ptrdiff_t j = 0; j < q && j < TILE_Q; j++)
                c[j] = next[j];
            k = k_next;
        }
        softmax_back(y + (t - W) * ldy, ldy, q, W, log_form, c, k);
    }
    for (; t < rows; t += W) {
        const ptrdiff_t n = min_len(W, rows - t);
        const ptrdiff_t nwhole = whole > t ? min_len(n, whole - t) : 0;
        VR c[TILE_Q], k;
        softmax_front(x + t * ldx, ldx, q, n, nwhole, log_form, c, &k);
        softmax_back(y + t * ldy, ldy, q, n, log_form, c, k);
    }
}

INLINE void logsumexp_tiles(const REAL *x, ptrdiff_t ldx, REAL *y, ptrdiff_t ldy, ptrdiff_t rows,
                            ptrdiff_t q) {
    FOR_TILES(rows, rows, ldx, q, {
        const VR lse = logsumexp_tile(x + t * ldx, ldx, q, W, W);
        if (ldy == 1)
            vstore(y + t, lse);
        else
            for (ptrdiff_t r = 0; r < W; r++)
                y[(t + r) * ldy] = lse[r];
    }, {
        const VR lse = logsumexp_tile(x + t * ldx, ldx, q, n, nwhole);
        for (ptrdiff_t r = 0; r < n; r++)
            y[(t + r) * ldy] = lse[r];
    });
}

static void softmax_rows(const void *xv, ptrdiff_t ldx, void *yv, ptrdiff_t ldy, ptrdiff_t rows,
                         ptrdiff_t q) {
    const REAL *x = xv;
    REAL *y = yv;
    if (q <= TILE_Q) {
        if (q == 10 && 10 <= TILE_Q)
            softmax_tiles(x, ldx, y, ldy, rows, 10, 0);
        else
            softmax_tiles(x, ldx, y, ldy, rows, q, 0);
        return;
    }
    for (ptrdiff_t r = 0; r < rows; r++)
        softmax_row(x + r * ldx, y + r * ldy, q);
}

static void log_softmax_rows(const void *xv, ptrdiff_t ldx, void *yv, ptrdiff_t ldy,
                             ptrdiff_t rows, ptrdiff_t q) {
    const REAL *x = xv;
    REAL *y = yv;
    if (q <= TILE_Q) {
        if (q == 10 && 10 <= TILE_Q)
            softmax_tiles(x, ldx, y, ldy, rows, 10, 1);
        else
            softmax_tiles(x, ldx, y, ldy, rows, q, 1);
        return;
    }
    for (ptrdiff_t r = 0; r < rows; r++)
        log_softmax_row(x + r * ldx, y + r * ldy, q);
}

static void logsumexp_rows(const void *xv, ptrdiff_t ldx, void *yv, ptrdiff_t ldy,
                           ptrdiff_t rows, ptrdiff_t q) {
    const REAL *x = xv;
    REAL *y = yv;
    if (q <= TILE_Q) {
        if (q == 10 && 10 <= TILE_Q)
            logsumexp_tiles(x, ldx, y, ldy, rows, 10);
        else
            logsumexp_tiles(x, ldx, y, ldy, rows, q);
        return;
    }
    for (ptrdiff_t r = 0; r < rows; r++)
        y[r * ldy] = (REAL)logsumexp_row(x + r * ldx, q);
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
            VR ck = t ? vfma(vload(t + k), vset(a), vset(b)) : vset(b);
            if (w)
                ck *= vload(w + k);
            ad = vfma(ck, (vload(o + k) - vm) - log_s, ad);
            ac += ck;
        }
        d += vsum(ad);
        c += vsum(ac);
    }
    if (full < q) {
        const ptrdiff_t r = q - full;
        VR ck = t ? vfma(vload_part(t + full, r, 0), vset(a), vset(b)) : vset(b);
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
        VR ck = t ? vfma(vload(t + k), vset(sa), vset(sb)) : vset(sb);
        if (w)
            ck *= vload(w + k);
        VR e = vload(g + k);
        if (g_holds_logits)
            e = vexp(e - vm);
        vstore(g + k, vfms(e, vset(A), ck));
    }
    if (k < q) {
        const ptrdiff_t r = q - k;
        VR ck = t ? vfma(vload_part(t + k, r, 0), vset(sa), vset(sb)) : vset(sb);
        if (w)
            ck *= vload_part(w + k, r, 0);
        VR e = vload_part(g + k, r, 0);
        if (g_holds_logits)
            e = vexp(e - vm);
        vstore_part(g + k, vfms(e, vset(A), ck), r);
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
        c = vkeep_first(vfma(vload_part(t, q, 0), vset((REAL)(1 - e)), vset((REAL)(e / q))) * wv,
                        q);
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
        vstore_part(g, vfms(ex, vset((REAL)A), c * (REAL)scale), q);
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

/* The row losses of a tile are formed and summed in double, as ce_row's:
 * a row loss beyond float32's range still averages into a finite mean. */
#if defined(CSM_TYPE_f64)
typedef VR VD;
typedef VI VDI;
#define TO_VD(v) (v)
#define TO_VDI(v) (v)
#define TO_VI(v) (v)
#else
typedef double VD __attribute__((vector_size(LANES * sizeof(double))));
typedef int64_t VDI __attribute__((vector_size(LANES * sizeof(int64_t))));
#define TO_VD(v) __builtin_convertvector(v, VD)
#define TO_VDI(v) __builtin_convertvector(v, VDI)
#define TO_VI(v) __builtin_convertvector(v, VI)
#endif

/*
 * Cross-entropy with class labels, a tile of W rows at a time (q <= TILE_Q):
 * the same formulas as ce_row, lane-wise.  The label's column is picked by
 * comparing each column index with the lanes' labels; ignored rows (and the
 * lanes past the rows) carry label -1 and give loss 0 and gradient 0.
 */
/* What ce_tile needs besides the rows, as plain values. */
typedef struct {
    int64_t ignore;
    const REAL *w;
    double e, scale, weight_sum;
} ce_opts;

/* plain: no weights, no smoothing (o.w = NULL, o.e = 0), as a constant at
 * the call, so that the common case carries none of their work. */
INLINE void ce_tile(const REAL *o, ptrdiff_t ldo, REAL *g, ptrdiff_t ldg, const int64_t *labels,
                    ptrdiff_t q, ptrdiff_t n, ptrdiff_t nwhole, ce_opts op, int want_grad,
                    int plain, VD *row_loss) {
    const REAL *w = plain ? NULL : op.w;
    const double e = plain ? 0 : op.e;
    VR d[TILE_Q], ex[TILE_Q], m, lo;
    tile_load(o, ldo, q, n, nwhole, d);
    VI lab;
    if (n == W)
        lab = vload_labels(labels, op.ignore);
    else {
        IREAL lab_lanes[W];
        for (ptrdiff_t r = 0; r < W; r++)
            lab_lanes[r] = r < n && labels[r] != op.ignore ? (IREAL)labels[r] : -1;
        memcpy(&lab, lab_lanes, sizeof lab);
    }

    tile_range(d, q, &m, &lo);
    VR oy = vset(0), wy = vset(1);
    UNROLL for (ptrdiff_t j = 0; j < q && j < TILE_Q; j++) {
        const VM is_y = veqi(lab, (IREAL)j);
        oy = vsel(is_y, d[j], oy);
        if (w)
            wy = vsel(is_y, vset(w[j]), wy);
        d[j] -= m;
    }
    const VR s = tile_exp(d, want_grad ? ex : NULL, q, tile_slow(lo, m));
    const VR log_s = vlog(s);
    /* -w_y log p_y with log p_y = (o_y - m) - log s, in double. */
    VD loss = -(TO_VD(wy) * ((TO_VD(oy) - TO_VD(m)) - TO_VD(log_s)));
    VR C = wy;
    if (e > 0) {
        /* -sum_k w_k log p_k, each product formed before the sum (PyTorch's
         * order: an infinite log p_k meets its own weight). */
        VR smooth = vset(0);
        UNROLL for (ptrdiff_t j = 0; j < q && j < TILE_Q; j++)
            smooth = w ? vfma(vset(-w[j]), d[j] - log_s, smooth) : smooth - (d[j] - log_s);
        loss = (1 - e) * loss + (e / q) * TO_VD(smooth);
        C = vfma(vset((REAL)(1 - e)), wy, vset((REAL)(e / q * op.weight_sum)));
    }
    const VM ignored = veqi(lab, -1);
    if (want_grad) {
        const REAL scale = (REAL)op.scale;
        const VR A = scale * C / s;
        const VR target = scale * (REAL)(1 - e) * wy;
        const REAL sb = (REAL)(op.scale * e / q);
        UNROLL for (ptrdiff_t j = 0; j < q && j < TILE_Q; j++) {
            d[j] = vfms(ex[j], A, vsel(veqi(lab, (IREAL)j), target, vset(0)));
            if (e > 0)
                d[j] -= sb * (w ? w[j] : 1);
        }
        if (vany_m(ignored))
            UNROLL for (ptrdiff_t j = 0; j < q && j < TILE_Q; j++)
                d[j] = vsel(ignored, vset(0), d[j]);
        tile_store(g, ldg, q, n, d);
    }
    *row_loss = (VD)(~TO_VDI(lab == -1) & (VDI)loss);
}

INLINE void ce_tiles(const REAL *o, ptrdiff_t ldo, REAL *g, ptrdiff_t ldg, const int64_t *labels,
                     REAL *lr, ptrdiff_t lds, ptrdiff_t rows, ptrdiff_t readable, ptrdiff_t q,
                     ce_opts op, int want_grad, int plain, double *lane_sums) {
    VD acc;
    for (ptrdiff_t i = 0; i < W; i++)
        acc[i] = lane_sums[i];
    FOR_TILES(rows, readable, ldo, q, {
        VD loss;
        ce_tile(o + t * ldo, ldo, g + t * ldg, ldg, labels + t, q, W, W, op, want_grad, plain,
                &loss);
        if (lr)
            for (ptrdiff_t r = 0; r < W; r++)
                lr[(t + r) * lds] = (REAL)loss[r];
        acc += loss;
    }, {
        VD loss;
        ce_tile(o + t * ldo, ldo, g + t * ldg, ldg, labels + t, q, n, nwhole, op, want_grad,
                plain, &loss);
        if (lr)
            for (ptrdiff_t r = 0; r < n; r++)
                lr[(t + r) * lds] = (REAL)loss[r];
        acc += loss;
    });
    for (ptrdiff_t i = 0; i < W; i++)
        lane_sums[i] = acc[i];
}

/* ce_tiles with q and the case as constants. */
#define CE_TILES(qq, grad, plain)                                                        \
    ce_tiles(o, ldo, g, ldg, labels, lr, lds, rows, readable, qq, op, grad, plain, lane_sums)

static void ce_labels(const void *ov, ptrdiff_t ldo, void *gv, ptrdiff_t ldg,
                      const int64_t *labels, void *loss_rows, ptrdiff_t lds, ptrdiff_t rows,
                      ptrdiff_t readable, ptrdiff_t q, const csm_ce_block *p, double *lane_sums) {
    const REAL *o = ov;
    REAL *g = gv;
    REAL *lr = loss_rows;
    if (q <= TILE_Q && q > 0) {
        const ce_opts op = {p->ignore_index, p->weight, p->smoothing, p->grad_scale,
                            p->weight_sum};
        const int plain = !p->weight && p->smoothing == 0;
        if (!g)
            g = (REAL *)o; /* never written: keeps the pointer arithmetic defined */
        if (q == 10 && 10 <= TILE_Q && plain) {
            if (gv)
                CE_TILES(10, 1, 1);
            else
                CE_TILES(10, 0, 1);
        } else if (plain) {
            if (gv)
                CE_TILES(q, 1, 1);
            else
                CE_TILES(q, 0, 1);
        } else {
            if (gv)
                CE_TILES(q, 1, 0);
            else
                CE_TILES(q, 0, 0);
        }
        return;
    }
    csm_ce_row row = {-1, NULL, p->weight, p->smoothing, p->grad_scale};
    for (ptrdiff_t r = 0; r < rows; r++) {
        double loss = 0;
        if (q > 0 && labels[r] != p->ignore_index) {
            row.label = labels[r];
            loss = ce_row(o + r * ldo, g ? g + r * ldg : NULL, q, &row);
        } else if (g)
            memset(g + r * ldg, 0, (size_t)q * sizeof(REAL));
        if (lr)
            lr[r * lds] = (REAL)loss;
        lane_sums[r % W] += loss;
    }
}

/* Label checks sit with the kernels to be compiled for the instruction set:
 * a pass over 60000 labels is a noticeable part of a cross-entropy call. */
static ptrdiff_t first_bad_label(const int64_t *labels, ptrdiff_t n, ptrdiff_t q, int64_t ignore) {
    /* Blocks without an early exit (vectorised), then the block holding the
     * first bad label, if any, label by label. */
    enum { BLOCK = 256 };
    for (ptrdiff_t b = 0; b < n; b += BLOCK) {
        const ptrdiff_t end = n - b < BLOCK ? n : b + BLOCK;
        int64_t bad = 0;
        for (ptrdiff_t i = b; i < end; i++)
            bad |= (labels[i] != ignore) & ((uint64_t)labels[i] >= (uint64_t)q);
        if (bad)
            for (ptrdiff_t i = b; i < end; i++)
                if (labels[i] != ignore && (labels[i] < 0 || labels[i] >= q))
                    return i;
    }
    return -1;
}

static double label_mass(const int64_t *labels, ptrdiff_t n, int64_t ignore, const void *wv) {
    const REAL *w = wv;
    if (!w) {
        /* A count: exact, and free of a chain of dependent additions. */
        int64_t counted = 0;
        for (ptrdiff_t i = 0; i < n; i++)
            counted += labels[i] != ignore;
        return (double)counted;
    }
    /* Four running sums, combined in a fixed order. */
    double d[4] = {0, 0, 0, 0};
    for (ptrdiff_t i = 0; i < n; i++)
        if (labels[i] != ignore)
            d[i & 3] += (double)w[labels[i]];
    return (d[0] + d[1]) + (d[2] + d[3]);
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

static void log_array(const void *xv, void *yv, ptrdiff_t n) {
    const REAL *x = xv;
    REAL *y = yv;
    ptrdiff_t k = 0;
    for (; k + W <= n; k += W)
        vstore(y + k, vlog(vload(x + k)));
    if (k < n)
        vstore_part(y + k, vlog(vload_part(x + k, n - k, 1)), n - k);
}

const csm_row_kernels CSM_CAT3(csm_rows, CSM_ISA, CSM_TYPE) = {
    softmax_rows,    log_softmax_rows, logsumexp_rows, ce_row,    ce_labels,
    first_bad_label, label_mass,       exp_array,      log_array,
};
