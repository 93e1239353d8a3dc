/*
 * test_train_step.c - the fused training step (csm_train_step) checked
 * without Python: against a double-precision reference on every instruction
 * set, both float types, float and uint8 rows, rows by index or in order,
 * shapes across the kernel's tiles; bitwise agreement across thread counts;
 * a workspace too small is refused before anything is written.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "csoftmax.h"

static int passed, failed;

static void check(int ok, const char *what, const char *isa, int dt, ptrdiff_t d, ptrdiff_t q) {
    if (ok) {
        passed++;
        return;
    }
    if (++failed <= 20)
        fprintf(stderr, "FAIL %s [%s %s d=%td q=%td]\n", what, isa, dt ? "f64" : "f32", d, q);
}

static unsigned long long state = 88172645463325252ull;
static double uniform(void) {
    state ^= state << 13;
    state ^= state >> 7;
    state ^= state << 17;
    return (double)(state >> 11) / 9007199254740992.0;
}

typedef struct {
    ptrdiff_t n, d, q, m;
    int u8;
    double scale;
    double *xd, *w, *b; /* the values, in double */
    unsigned char *x8;
    int64_t *rows, *labels;
} problem;

static problem make(ptrdiff_t n, ptrdiff_t d, ptrdiff_t q, ptrdiff_t m, int u8, int by_index) {
    problem p = {n, d, q, m, u8, u8 ? 1.0 / 255 : 1.0};
    p.xd = malloc(sizeof(double) * (size_t)(n * d));
    p.x8 = malloc((size_t)(n * d));
    p.w = malloc(sizeof(double) * (size_t)(d * q));
    p.b = malloc(sizeof(double) * (size_t)q);
    p.labels = malloc(sizeof(int64_t) * (size_t)n);
    p.rows = by_index ? malloc(sizeof(int64_t) * (size_t)m) : NULL;
    for (ptrdiff_t i = 0; i < n * d; i++) {
        p.x8[i] = (unsigned char)(uniform() * 256);
        /* float values exact in float32 too, so both types see the same data */
        p.xd[i] = u8 ? p.x8[i] : (double)(float)(uniform() * 4 - 2);
    }
    for (ptrdiff_t i = 0; i < d * q; i++)
        p.w[i] = (double)(float)((uniform() - 0.5) * 0.1);
    for (ptrdiff_t k = 0; k < q; k++)
        p.b[k] = (double)(float)(uniform() - 0.5);
    for (ptrdiff_t i = 0; i < n; i++)
        p.labels[i] = (int64_t)(uniform() * (double)q);
    for (ptrdiff_t r = 0; by_index && r < m; r++)
        p.rows[r] = (int64_t)(uniform() * (double)n);
    return p;
}

static void release(problem *p) {
    free(p->xd), free(p->x8), free(p->w), free(p->b), free(p->labels), free(p->rows);
}

/* loss sum, right answers, gradients of the mean loss, all in double. */
static void reference(const problem *p, double *loss, int64_t *right, double *gw, double *gb) {
    double *z = malloc(sizeof(double) * (size_t)p->q);
    memset(gw, 0, sizeof(double) * (size_t)(p->d * p->q));
    memset(gb, 0, sizeof(double) * (size_t)p->q);
    *loss = 0, *right = 0;
    for (ptrdiff_t r = 0; r < p->m; r++) {
        const ptrdiff_t i = p->rows ? p->rows[r] : r;
        const double *x = p->xd + i * p->d;
        double mx = -INFINITY, s = 0;
        ptrdiff_t best = 0;
        for (ptrdiff_t k = 0; k < p->q; k++) {
            z[k] = p->b[k];
            for (ptrdiff_t j = 0; j < p->d; j++)
                z[k] += p->scale * x[j] * p->w[j * p->q + k];
            if (z[k] > mx)
                mx = z[k], best = k;
        }
        for (ptrdiff_t k = 0; k < p->q; k++)
            s += exp(z[k] - mx);
        const int64_t y = p->labels[i];
        *loss += log(s) + mx - z[y];
        *right += best == y;
        for (ptrdiff_t k = 0; k < p->q; k++) {
            const double g = (exp(z[k] - mx) / s - (k == y)) / (double)p->m;
            gb[k] += g;
            for (ptrdiff_t j = 0; j < p->d; j++)
                gw[j * p->q + k] += p->scale * x[j] * g;
        }
    }
    free(z);
}

static double get(const void *a, ptrdiff_t i, csm_dtype dt) {
    return dt == CSM_FLOAT64 ? ((const double *)a)[i] : (double)((const float *)a)[i];
}

static void *typed(const double *v, ptrdiff_t n, csm_dtype dt) {
    void *out = malloc((dt == CSM_FLOAT64 ? 8 : 4) * (size_t)(n > 0 ? n : 1));
    for (ptrdiff_t i = 0; i < n; i++) {
        if (dt == CSM_FLOAT64)
            ((double *)out)[i] = v[i];
        else
            ((float *)out)[i] = (float)v[i];
    }
    return out;
}

static void run(const problem *p, csm_dtype dt, const char *isa) {
    const double tol = dt == CSM_FLOAT64 ? 1e-11 : 2e-5;
    double *rgw = malloc(sizeof(double) * (size_t)(p->d * p->q)), *rgb = malloc(sizeof(double) * (size_t)p->q);
    double rloss;
    int64_t rright;
    reference(p, &rloss, &rright, rgw, rgb);

    void *x = p->u8 ? (void *)p->x8 : typed(p->xd, p->n * p->d, dt);
    void *w = typed(p->w, p->d * p->q, dt), *b = typed(p->b, p->q, dt);
    void *gw[2], *gb[2];
    double loss[2];
    int64_t right[2];
    const size_t ws = csm_train_step_workspace(dt, p->m, p->d, p->q);
    void *work = malloc(ws);
    for (int t = 0; t < 2; t++) {
        csm_set_num_threads(t ? 3 : 1);
        gw[t] = typed(rgw, p->d * p->q, dt), gb[t] = typed(rgb, p->q, dt);
        csm_step_args a = {p->m, p->d, p->q, x, p->d, p->u8, p->scale, p->rows, p->labels, w, b,
                           NULL, gw[t], gb[t], work, ws};
        check(csm_train_step(dt, &a, &loss[t], &right[t]) == CSM_OK, "status", isa, dt, p->d, p->q);
    }
    check(fabs(loss[0] - rloss) <= tol * (1 + fabs(rloss)), "loss", isa, dt, p->d, p->q);
    check(right[0] == rright, "right answers", isa, dt, p->d, p->q);
    /* Plain comparisons, not fmax: GCC 12's vectoriser crashes on fmax
     * reductions for aarch64. */
    double scale = 0, err = 0;
    for (ptrdiff_t i = 0; i < p->d * p->q; i++) {
        const double r = fabs(rgw[i]), e = fabs(get(gw[0], i, dt) - rgw[i]);
        scale = r > scale ? r : scale;
        err = e > err || e != e ? e : err;
    }
    for (ptrdiff_t k = 0; k < p->q; k++) {
        const double e = fabs(get(gb[0], k, dt) - rgb[k]);
        err = e > err || e != e ? e : err;
    }
    check(err <= tol * (scale + 1e-3), "gradients", isa, dt, p->d, p->q);
    const size_t es = dt == CSM_FLOAT64 ? 8 : 4;
    check(loss[0] == loss[1] && right[0] == right[1] &&
              !memcmp(gw[0], gw[1], es * (size_t)(p->d * p->q)) &&
              !memcmp(gb[0], gb[1], es * (size_t)p->q),
          "same bits for 1 and 3 threads", isa, dt, p->d, p->q);

    /* A workspace one byte short: refused, the gradients untouched. */
    memcpy(gw[1], gw[0], es * (size_t)(p->d * p->q));
    memset(gw[0], 0x7f, es * (size_t)(p->d * p->q));
    csm_step_args a = {p->m, p->d, p->q, x, p->d, p->u8, p->scale, p->rows, p->labels, w, b,
                       NULL, gw[0], gb[0], work, ws - 1};
    int untouched = csm_train_step(dt, &a, &loss[0], &right[0]) == CSM_ENOMEM;
    for (ptrdiff_t i = 0; i < (ptrdiff_t)es * p->d * p->q; i++)
        if (((unsigned char *)gw[0])[i] != 0x7f) {
            untouched = 0;
            break;
        }
    check(untouched, "small workspace refused", isa, dt, p->d, p->q);

    for (int t = 0; t < 2; t++)
        free(gw[t]), free(gb[t]);
    if (!p->u8)
        free(x);
    free(w), free(b), free(work), free(rgw), free(rgb);
}

int main(void) {
    static const char *isas[] = {"avx512", "avx2", "generic"};
    static const ptrdiff_t shapes[][4] = {
        {300, 784, 10, 256}, {50, 1, 1, 7}, {90, 17, 12, 65}, {40, 33, 13, 40},
        {200, 8, 32, 129}, {70, 100, 25, 1}, {130, 16, 3, 128},
    };
    for (size_t s = 0; s < sizeof isas / sizeof isas[0]; s++) {
        if (csm_set_simd(isas[s]) != 0)
            continue; /* not on this CPU or this build */
        for (size_t i = 0; i < sizeof shapes / sizeof shapes[0]; i++)
            for (int u8 = 0; u8 < 2; u8++)
                for (int by_index = 0; by_index < 2; by_index++) {
                    problem p = make(shapes[i][0], shapes[i][1], shapes[i][2], shapes[i][3], u8,
                                     by_index);
                    run(&p, CSM_FLOAT32, isas[s]);
                    run(&p, CSM_FLOAT64, isas[s]);
                    release(&p);
                }
    }
    printf("train_step: %d passed, %d failed\n", passed, failed);
    return failed != 0;
}
