/*
 * test_kernels.c - the C core checked on its own terms, without Python.
 *
 * Every kernel, on every instruction set this CPU supports, in float32 and
 * float64, against a plain double-precision reference: edge shapes (no rows,
 * q = 0 and 1, q not a multiple of any vector width), unaligned data, strided
 * and negative-stride rows, special values, in-place outputs, and bitwise
 * agreement across thread counts.  Built by CMake with -DCSOFTMAX_C_TESTS=ON
 * and run by ctest (also under valgrind or the sanitizers).
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "csoftmax.h"

static int passed, failed;

static void check(int ok, const char *what, const char *isa, csm_dtype dt, ptrdiff_t q) {
    if (ok)
        passed++;
    else {
        failed++;
        if (failed <= 20)
            fprintf(stderr, "FAIL %s [%s %s q=%td]\n", what, isa, dt == CSM_FLOAT64 ? "f64" : "f32",
                    q);
    }
}

/* ------------------------------------------------------------ helpers -- */

static unsigned long long rng_state = 0x9E3779B97F4A7C15ull;
static double uniform(void) { /* xorshift64*, in [0, 1) */
    rng_state ^= rng_state >> 12;
    rng_state ^= rng_state << 25;
    rng_state ^= rng_state >> 27;
    return (double)((rng_state * 2685821657736338717ull) >> 11) / 9007199254740992.0;
}

static double get(const void *p, csm_dtype dt, ptrdiff_t i) {
    return dt == CSM_FLOAT64 ? ((const double *)p)[i] : (double)((const float *)p)[i];
}

static void put(void *p, csm_dtype dt, ptrdiff_t i, double v) {
    if (dt == CSM_FLOAT64)
        ((double *)p)[i] = v;
    else
        ((float *)p)[i] = (float)v;
}

/* Same value, or both nan, or within the dtype's tolerance. */
static int close_to(double got, double want, csm_dtype dt) {
    if (isnan(want) || isnan(got))
        return isnan(want) && isnan(got);
    if (isinf(want) || isinf(got))
        return got == want;
    double rtol = dt == CSM_FLOAT64 ? 1e-12 : 1e-5, atol = dt == CSM_FLOAT64 ? 1e-13 : 1e-6;
    return fabs(got - want) <= atol + rtol * fabs(want);
}

/* --------------------------------------------------- double reference -- */

static double ref_max(const double *x, ptrdiff_t q) {
    double m = -INFINITY;
    for (ptrdiff_t k = 0; k < q; k++)
        if (x[k] > m)
            m = x[k];
    return m;
}

static void ref_softmax(const double *x, double *y, ptrdiff_t q, int log_form) {
    double m = ref_max(x, q), s = 0;
    for (ptrdiff_t k = 0; k < q; k++)
        s += exp(x[k] - m);
    for (ptrdiff_t k = 0; k < q; k++)
        y[k] = log_form ? (x[k] - m) - log(s) : exp(x[k] - m) / s;
}

static double ref_logsumexp(const double *x, ptrdiff_t q) {
    double m = ref_max(x, q), s = 0;
    if (!isfinite(m))
        m = 0;
    for (ptrdiff_t k = 0; k < q; k++)
        s += exp(x[k] - m);
    return m + log(s);
}

/* ------------------------------------------------------------- checks -- */

/* Fill a rows x q matrix (contiguous, row-major, as double) with test data. */
static void fill(double *x, ptrdiff_t count, int specials) {
    for (ptrdiff_t i = 0; i < count; i++)
        x[i] = (uniform() - 0.5) * 20;
    if (specials && count > 3) {
        x[count / 3] = INFINITY;
        x[count / 2] = NAN;
        x[count - 1] = -1e30;
    }
    if (specials > 1) /* dense: every kind of value the exp's slow path takes */
        for (ptrdiff_t i = 0; i < count; i += 7) {
            static const double kinds[] = {-INFINITY, -1e30, -95.0, -720.0, 1e30, 80.0, 700.0};
            x[i] = kinds[(i / 7) % 7];
        }
}

/*
 * Run softmax, log-softmax and logsumexp on an n0 x n1 x q batch laid out
 * with element stride sq (in a buffer offset by `skew` elements, so that data
 * is unaligned), and compare row by row with the reference.
 */
static void check_rows(const char *isa, csm_dtype dt, ptrdiff_t n0, ptrdiff_t n1, ptrdiff_t q,
                       ptrdiff_t sq, int skew, int reverse, int specials) {
    const size_t es = dt == CSM_FLOAT64 ? 8 : 4;
    const ptrdiff_t rows = n0 * n1, span = (q > 0 ? (q - 1) * sq + 1 : 1);
    const ptrdiff_t total = rows * span + skew + 1;
    double *ref_in = malloc(sizeof(double) * (size_t)(rows * q + 1));
    double *ref_out = malloc(sizeof(double) * (size_t)(q + 1));
    char *xbuf = calloc((size_t)total, es), *ybuf = calloc((size_t)total, es);
    char *lbuf = calloc((size_t)rows + 1, es);
    fill(ref_in, rows * q, specials);

    /* Row r starts at r*span (or, reversed, at the end going back). */
    /* reverse = 2: rows in reverse order, each row's elements forward. */
    ptrdiff_t s1 = reverse ? -span : span, s0 = s1 * n1, rsq = reverse == 1 ? -sq : sq;
    const size_t back = reverse == 1 ? (size_t)(total - 1 - skew)
                        : reverse == 2 && rows > 0 ? (size_t)((rows - 1) * span)
                                                   : 0;
    char *x0 = xbuf + ((size_t)skew + back) * es;
    char *y0 = ybuf + ((size_t)skew + back) * es;
    for (ptrdiff_t r = 0; r < rows; r++)
        for (ptrdiff_t k = 0; k < q; k++) {
            ptrdiff_t off = r * s1 + k * rsq;
            double v = ref_in[r * q + k];
            if (dt == CSM_FLOAT32)
                ref_in[r * q + k] = v = (double)(float)v; /* the reference sees what the kernel sees */
            put(x0, dt, off, v);
        }

    csm_rows x = {x0, n0, n1, q, s0, s1, rsq}, y = {y0, n0, n1, q, s0, s1, rsq};
    csm_rows l = {lbuf, n0, n1, 0, n1, 1, 0};
    for (int op = 0; op < 3; op++) {
        int status = op == 0   ? csm_softmax(dt, &x, &y)
                     : op == 1 ? csm_log_softmax(dt, &x, &y)
                               : csm_logsumexp(dt, &x, &l);
        check(status == CSM_OK, "status", isa, dt, q);
        int ok = 1;
        for (ptrdiff_t r = 0; r < rows; r++) {
            if (op == 2) {
                ok &= close_to(get(lbuf, dt, r), ref_logsumexp(ref_in + r * q, q), dt);
                continue;
            }
            ref_softmax(ref_in + r * q, ref_out, q, op == 1);
            for (ptrdiff_t k = 0; k < q; k++)
                ok &= close_to(get(y0, dt, r * s1 + k * rsq), ref_out[k], dt);
        }
        check(ok, op == 0 ? "softmax" : op == 1 ? "log_softmax" : "logsumexp", isa, dt, q);
    }
    /* In place: the output is the input. */
    csm_softmax(dt, &x, &x);
    int ok = 1;
    for (ptrdiff_t r = 0; r < rows; r++) {
        ref_softmax(ref_in + r * q, ref_out, q, 0);
        for (ptrdiff_t k = 0; k < q; k++)
            ok &= close_to(get(x0, dt, r * s1 + k * rsq), ref_out[k], dt);
    }
    check(ok, "softmax in place", isa, dt, q);
    free(ref_in), free(ref_out), free(xbuf), free(ybuf), free(lbuf);
}

/* Cross-entropy with labels, weights and smoothing against the formula. */
static void check_cross_entropy(const char *isa, csm_dtype dt, ptrdiff_t n, ptrdiff_t q,
                                int weighted, double eps, int probs) {
    const size_t es = dt == CSM_FLOAT64 ? 8 : 4;
    double *o = malloc(sizeof(double) * (size_t)(n * q + 1));
    double *t = malloc(sizeof(double) * (size_t)(n * q + 1));
    double *w = malloc(sizeof(double) * (size_t)(q + 1));
    int64_t *labels = malloc(sizeof(int64_t) * (size_t)(n + 1));
    char *ob = malloc(es * (size_t)(n * q + 1)), *tb = malloc(es * (size_t)(n * q + 1));
    char *wb = malloc(es * (size_t)(q + 1)), *gb = malloc(es * (size_t)(n * q + 1));
    char *lb = malloc(es * (size_t)(n + 1));
    fill(o, n * q, 0);
    for (ptrdiff_t i = 0; i < n * q; i++) {
        put(ob, dt, i, o[i]);
        o[i] = get(ob, dt, i);
    }
    for (ptrdiff_t i = 0; i < n; i++) {
        labels[i] = i % 4 == 3 ? -100 : (int64_t)(uniform() * (double)q);
        double sum = 0;
        for (ptrdiff_t k = 0; k < q; k++)
            sum += t[i * q + k] = uniform();
        for (ptrdiff_t k = 0; k < q; k++) {
            put(tb, dt, i * q + k, t[i * q + k] / sum);
            t[i * q + k] = get(tb, dt, i * q + k);
        }
    }
    for (ptrdiff_t k = 0; k < q; k++) {
        put(wb, dt, k, weighted ? 0.5 + uniform() : 1.0);
        w[k] = get(wb, dt, k);
    }
    check(csm_first_bad_label(labels, n, q, -100) == -1, "labels valid", isa, dt, q);

    for (int red = 0; red < 3; red++) {
        csm_ce_args a;
        memset(&a, 0, sizeof a);
        a.n = n, a.q = q, a.logits = ob, a.logits_s0 = q, a.logits_s1 = 1;
        a.labels = probs ? NULL : labels, a.ignore_index = -100;
        a.probs = probs ? tb : NULL, a.probs_s0 = q, a.probs_s1 = 1;
        a.weight = weighted ? wb : NULL, a.label_smoothing = eps;
        a.reduction = (csm_reduction)red, a.loss_rows = red == CSM_REDUCE_NONE ? lb : NULL;
        a.loss_rows_s0 = 1, a.grad = gb, a.grad_s0 = q, a.grad_s1 = 1;
        double loss = 0;
        check(csm_cross_entropy(dt, &a, &loss) == CSM_OK, "ce status", isa, dt, q);

        double total = 0, denom = 0;
        int ok = 1;
        double *p = malloc(sizeof(double) * (size_t)(q + 1)), *c = malloc(sizeof(double) * (size_t)(q + 1));
        for (ptrdiff_t i = 0; i < n; i++)
            if (probs || labels[i] != -100)
                denom += probs ? 1.0 : w[labels[i]];
        double scale = red == CSM_REDUCE_MEAN ? 1.0 / denom : 1.0;
        for (ptrdiff_t i = 0; i < n; i++) {
            double row_loss = 0, mass = 0;
            int ignored = !probs && labels[i] == -100;
            ref_softmax(o + i * q, p, q, 1); /* log p */
            for (ptrdiff_t k = 0; k < q && !ignored; k++) {
                c[k] = probs ? w[k] * ((1 - eps) * t[i * q + k] + eps / q)
                             : w[k] * eps / q + (k == labels[i] ? (1 - eps) * w[k] : 0);
                row_loss -= c[k] * p[k];
                mass += c[k];
            }
            total += row_loss;
            if (red == CSM_REDUCE_NONE)
                ok &= close_to(get(lb, dt, i), row_loss, dt);
            for (ptrdiff_t k = 0; k < q; k++) {
                double want = ignored ? 0 : scale * (exp(p[k]) * mass - c[k]);
                ok &= close_to(get(gb, dt, i * q + k), want, dt) ||
                      fabs(get(gb, dt, i * q + k) - want) < (dt == CSM_FLOAT64 ? 1e-13 : 1e-6);
            }
        }
        if (red != CSM_REDUCE_NONE)
            ok &= close_to(loss, red == CSM_REDUCE_MEAN ? total / denom : total, dt);
        check(ok, "cross_entropy", isa, dt, q);
        free(p), free(c);
    }
    free(o), free(t), free(w), free(labels), free(ob), free(tb), free(wb), free(gb), free(lb);
}

/* The same results, bit for bit, with 1 and with 3 threads. */
static void check_thread_invariance(const char *isa, csm_dtype dt, ptrdiff_t q) {
    const ptrdiff_t n = 5000;
    const size_t es = dt == CSM_FLOAT64 ? 8 : 4, bytes = es * (size_t)(n * q);
    char *x = malloc(bytes), *y1 = malloc(bytes), *y3 = malloc(bytes);
    int64_t *labels = malloc(sizeof(int64_t) * (size_t)n);
    for (ptrdiff_t i = 0; i < n * q; i++)
        put(x, dt, i, (uniform() - 0.5) * 30);
    for (ptrdiff_t i = 0; i < n; i++)
        labels[i] = (int64_t)(uniform() * (double)q);
    for (ptrdiff_t i = 0; i < n; i += 11)
        labels[i] = -100;
    char *g1 = malloc(bytes), *g3 = malloc(bytes);
    double loss1 = 0, loss3 = 0, plain1 = 0, plain3 = 0;
    for (int threads = 1; threads <= 3; threads += 2) {
        csm_set_num_threads(threads);
        char *y = threads == 1 ? y1 : y3;
        csm_rows xr = {x, 1, n, q, 0, q, 1}, yr = {y, 1, n, q, 0, q, 1};
        csm_log_softmax(dt, &xr, &yr);
        csm_ce_args a;
        memset(&a, 0, sizeof a);
        a.n = n, a.q = q, a.logits = x, a.logits_s0 = q, a.logits_s1 = 1, a.labels = labels;
        a.ignore_index = -100, a.reduction = CSM_REDUCE_MEAN, a.label_smoothing = 0.1;
        csm_cross_entropy(dt, &a, threads == 1 ? &loss1 : &loss3);
        a.label_smoothing = 0, a.grad = threads == 1 ? g1 : g3, a.grad_s0 = q, a.grad_s1 = 1;
        csm_cross_entropy(dt, &a, threads == 1 ? &plain1 : &plain3);
    }
    check(memcmp(y1, y3, bytes) == 0 && loss1 == loss3 && plain1 == plain3 &&
              memcmp(g1, g3, bytes) == 0,
          "threads bitwise", isa, dt, q);
    csm_set_num_threads(1);
    free(x), free(y1), free(y3), free(labels), free(g1), free(g3);
}

static void check_exp(const char *isa, csm_dtype dt) {
    double in[] = {-INFINITY, INFINITY, NAN, 0.0, -1000.0, 1000.0, 1.0, -1.0, 88.0, -87.0, 0.5};
    double want[] = {0.0, INFINITY, NAN, 1.0, 0.0, INFINITY, M_E, 1 / M_E, exp(88.0), exp(-87.0),
                     exp(0.5)};
    const ptrdiff_t n = sizeof in / sizeof in[0];
    char x[8 * 16], y[8 * 16];
    for (ptrdiff_t i = 0; i < n; i++)
        put(x, dt, i, in[i]);
    csm_exp(dt, x, y, n);
    int ok = 1;
    for (ptrdiff_t i = 0; i < n; i++) {
        double v = dt == CSM_FLOAT32 ? (double)(float)want[i] : want[i];
        ok &= close_to(get(y, dt, i), v, dt);
    }
    check(ok, "exp special values", isa, dt, n);
}

int main(void) {
    char available[64];
    snprintf(available, sizeof available, "%s", csm_simd_available());
    for (char *isa = strtok(available, " "); isa; isa = strtok(NULL, " ")) {
        if (csm_set_simd(isa) != 0) {
            check(0, "set_simd", isa, CSM_FLOAT32, 0);
            continue;
        }
        for (int d = 0; d < 2; d++) {
            csm_dtype dt = d ? CSM_FLOAT64 : CSM_FLOAT32;
            check_exp(isa, dt);
            const ptrdiff_t qs[] = {0, 1, 2, 3, 5, 7, 8, 9, 15, 16, 17, 31, 33, 47, 64, 65, 100, 1027};
            for (size_t i = 0; i < sizeof qs / sizeof qs[0]; i++) {
                ptrdiff_t q = qs[i];
                check_rows(isa, dt, 1, 7, q, 1, 0, 0, 0);
                check_rows(isa, dt, 3, 5, q, 1, 1, 0, 1);  /* unaligned, specials */
                check_rows(isa, dt, 2, 3, q, 3, 1, 0, 1);  /* strided rows */
                check_rows(isa, dt, 2, 2, q, 2, 0, 1, 0);  /* negative strides */
                check_rows(isa, dt, 0, 4, q, 1, 0, 0, 0);  /* no rows */
                /* Many rows: full tiles of every width, then a short one. */
                check_rows(isa, dt, 1, 53, q, 1, 1, 0, 1);
                check_rows(isa, dt, 3, 37, q, 1, 0, 0, 2); /* dense specials */
                check_rows(isa, dt, 2, 41, q, 2, 1, 0, 2); /* strided */
                check_rows(isa, dt, 1, 35, q, 1, 0, 1, 1); /* negative strides */
                check_rows(isa, dt, 1, 35, q, 1, 1, 2, 1); /* rows in reverse order */
                if (q > 0)
                    for (int weighted = 0; weighted < 2; weighted++) {
                        check_cross_entropy(isa, dt, 9, q, weighted, 0.0, 0);
                        check_cross_entropy(isa, dt, 9, q, weighted, 0.1, 0);
                        check_cross_entropy(isa, dt, 9, q, weighted, 0.2, 1);
                        check_cross_entropy(isa, dt, 83, q, weighted, 0.0, 0);
                        check_cross_entropy(isa, dt, 83, q, weighted, 0.1, 0);
                    }
            }
            check_thread_invariance(isa, dt, 37);
            check_thread_invariance(isa, dt, 10);
            check_thread_invariance(isa, dt, 3);
        }
    }
    printf("%d passed, %d failed\n", passed, failed);
    return failed != 0;
}
