/*
 * linear_rows.c - the two products of the fused training step, for a block
 * of a batch's rows: the logits z = scale * x W + b, and the block's part of
 * the weight gradient, z^T x (z then holding d loss / d logits).
 *
 * Written for few classes (q up to a few dozen), where BLAS GEMM spends its
 * time on packing and edge cases: W is kept transposed (q rows of d), so both
 * products run along d, one vector of W lanes at a time, with one register
 * accumulator per (row, class) or (class, chunk of d).  Classes go in tiles
 * of at most KMAX so that the accumulators stay in registers; each tile size
 * is its own compiled loop (a switch below), because a loop bound known at
 * compile time is what lets the compiler keep acc[][] in registers.
 *
 * Rows may be uint8 (raw pixels): they are widened in registers, and the
 * caller's scale is applied once per sum, so the data set is never copied
 * into floats.  Like row_kernels.c, this file is compiled once per
 * (instruction set, float type) and exports one table.
 */
#include "fused.h"
#include "simd.h"

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

#define KMAX 12
/* AVX-512 has 32 vector registers: two rows (forward) or two chunks
 * (backward) share each load of W or of the gradient. */
#if VBYTES == 64
#define RT 2
#else
#define RT 1
#endif

typedef uint8_t VB __attribute__((vector_size(LANES)));

#define INLINE static inline __attribute__((always_inline))

/* a in every lane.  Not vset(a): its 0 + a is a real addition under strict
 * IEEE rules (-0 + 0 is +0), one more instruction per FMA here, and a lane
 * loop confuses GCC into masked moves: the instruction set's own broadcast. */
INLINE VR splat(REAL a) {
#if defined(CSM_ISA_avx512) && defined(CSM_TYPE_f64)
    return (VR)_mm512_set1_pd(a);
#elif defined(CSM_ISA_avx512)
    return (VR)_mm512_set1_ps(a);
#elif defined(CSM_ISA_avx2) && defined(CSM_TYPE_f64)
    return (VR)_mm256_set1_pd(a);
#elif defined(CSM_ISA_avx2)
    return (VR)_mm256_set1_ps(a);
#elif defined(__SSE2__) && defined(CSM_TYPE_f64)
    return (VR)_mm_set1_pd(a);
#elif defined(__SSE2__)
    return (VR)_mm_set1_ps(a);
#else
    return vset(a);
#endif
}

/* Keeps v in a register from here on: left alone, GCC folds the load of W
 * into each row's FMA, loading the same vector RT times (load-port bound). */
INLINE void in_register(VR *v) {
#if defined(__x86_64__) || defined(__i386__)
    __asm__("" : "+v"(*v));
#else
    (void)v;
#endif
}

INLINE const void *row_ptr(const csm_linear_job *job, ptrdiff_t r) {
    const ptrdiff_t i = job->rows ? (ptrdiff_t)job->rows[r] : r;
    const size_t es = job->x_uint8 ? 1 : sizeof(REAL);
    return (const char *)job->x + (size_t)i * (size_t)job->ldx * es;
}

/* W bytes widened to W REALs.  GCC turns __builtin_convertvector from
 * bytes into scalar code on x86, so the widening there is spelled out. */
INLINE VR widen_bytes(const uint8_t *p) {
#if defined(CSM_ISA_avx512) && defined(CSM_TYPE_f64)
    return (VR)_mm512_cvtepi32_pd(_mm256_cvtepu8_epi32(_mm_loadl_epi64((const __m128i *)p)));
#elif defined(CSM_ISA_avx512)
    return (VR)_mm512_cvtepi32_ps(_mm512_cvtepu8_epi32(_mm_loadu_si128((const __m128i *)p)));
#elif defined(CSM_ISA_avx2) && defined(CSM_TYPE_f64)
    int32_t four;
    memcpy(&four, p, sizeof four);
    return (VR)_mm256_cvtepi32_pd(_mm_cvtepu8_epi32(_mm_cvtsi32_si128(four)));
#elif defined(CSM_ISA_avx2)
    return (VR)_mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(_mm_loadl_epi64((const __m128i *)p)));
#else
    VB v;
    memcpy(&v, p, sizeof v);
    return __builtin_convertvector(__builtin_convertvector(v, VI), VR);
#endif
}

INLINE VR load_x(const void *row, ptrdiff_t j, const int u8) {
    if (u8)
        return widen_bytes((const uint8_t *)row + j);
    return vload((const REAL *)row + j);
}

/* The k < W elements from j on, zeros after: nothing past the row is read. */
INLINE VR load_x_tail(const void *row, ptrdiff_t j, ptrdiff_t k, const int u8) {
    if (u8) {
        VR v = vset(0);
        for (ptrdiff_t i = 0; i < k; i++)
            v[i] = (REAL)((const uint8_t *)row + j)[i];
        return v;
    }
    return vload_part((const REAL *)row + j, k, 0);
}

/* ------------------------------------------------------------ forward -- */

#if defined(CSM_ISA_avx512) && defined(CSM_TYPE_f32)
/* The partner of t[i] at one level of the tree below: zero past the end. */
#define PARTNER(t, i, n) ((i) < (n) ? (t)[i] : _mm512_setzero_ps())
#endif

/* out[i] = the sum of v[i]'s lanes, for i < n.  Each row's logits end in
 * one such sum per class; one vector at a time, that is 4 shuffles and 4
 * additions a sum, a sixth of the work of the row's FMAs.  With AVX-512
 * float32 (the textbook case), up to 16 vectors go through one transpose-
 * and-add tree instead: 15 additions and 30 shuffles for all 16. */
INLINE void lane_sums(const VR *v, int n, REAL *out) {
#if defined(CSM_ISA_avx512) && defined(CSM_TYPE_f32)
    for (int i0 = 0; i0 < n; i0 += 16) {
        const int g = n - i0 < 16 ? n - i0 : 16;
        __m512 t[16];
        int c = g;
        for (int i = 0; i < g; i++)
            t[i] = (__m512)v[i0 + i];
        /* Halves of 256 bits, then of 128, then pairs and single lanes;
         * lane l of the last holds the sum of vector (l % 4) * 4 + l / 4. */
        for (int i = 0; 2 * i < c; i++) {
            const __m512 a = t[2 * i], b = PARTNER(t, 2 * i + 1, c);
            t[i] = _mm512_add_ps(_mm512_shuffle_f32x4(a, b, 0x44), _mm512_shuffle_f32x4(a, b, 0xEE));
        }
        c = (c + 1) / 2;
        for (int i = 0; 2 * i < c; i++) {
            const __m512 a = t[2 * i], b = PARTNER(t, 2 * i + 1, c);
            t[i] = _mm512_add_ps(_mm512_shuffle_f32x4(a, b, 0x88), _mm512_shuffle_f32x4(a, b, 0xDD));
        }
        c = (c + 1) / 2;
        for (int i = 0; 2 * i < c; i++) {
            const __m512 a = t[2 * i], b = PARTNER(t, 2 * i + 1, c);
            t[i] = _mm512_add_ps(_mm512_shuffle_ps(a, b, 0x44), _mm512_shuffle_ps(a, b, 0xEE));
        }
        c = (c + 1) / 2;
        const __m512 a = t[0], b = PARTNER(t, 1, c);
        float lanes[16];
        _mm512_storeu_ps(lanes, _mm512_add_ps(_mm512_shuffle_ps(a, b, 0x88), _mm512_shuffle_ps(a, b, 0xDD)));
        for (int i = 0; i < g; i++)
            out[i0 + i] = lanes[(i % 4) * 4 + i / 4];
    }
#else
    for (int i = 0; i < n; i++)
        out[i] = vsum_all(v[i])[0];
#endif
}

/* z[r][k] for rt rows and the kt classes of one tile; wt and b start at the
 * tile's first class, z at the first row's. */
INLINE void forward_tile(const csm_linear_job *job, const void *const *xr, const char *const *pf,
                         const REAL *wt, const REAL *b, REAL *z, const int u8, const int kt,
                         const int rt) {
    const ptrdiff_t d = job->d, dp = job->d_pad, q = job->q, full = d - d % W;
    VR acc[RT][KMAX];
    for (int r = 0; r < rt; r++)
        for (int k = 0; k < kt; k++)
            acc[r][k] = vset(0);
    ptrdiff_t j = 0;
    for (; j < full; j += W) {
        VR xv[RT];
        for (int r = 0; r < rt; r++) {
            xv[r] = load_x(xr[r], j, u8);
            /* Batch rows are scattered over the data set, beyond the reach
             * of the hardware prefetcher: fetch the next rows' lines now. */
            if (pf)
                __builtin_prefetch(pf[r] + j * (u8 ? 1 : (ptrdiff_t)sizeof(REAL)));
        }
        for (int k = 0; k < kt; k++) {
            VR wv = vload(wt + k * dp + j);
            in_register(&wv);
            for (int r = 0; r < rt; r++)
                acc[r][k] += xv[r] * wv;
        }
    }
    if (j < d) {
        VR xv[RT];
        for (int r = 0; r < rt; r++)
            xv[r] = load_x_tail(xr[r], j, d - j, u8);
        for (int k = 0; k < kt; k++) {
            const VR wv = vload(wt + k * dp + j); /* zero past d */
            for (int r = 0; r < rt; r++)
                acc[r][k] += xv[r] * wv;
        }
    }
    REAL sums[RT * KMAX];
    for (int r = 0; r < rt; r++)
        lane_sums(acc[r], kt, sums + r * kt);
    const REAL s = (REAL)job->scale;
    for (int r = 0; r < rt; r++)
        for (int k = 0; k < kt; k++)
            z[r * q + k] = sums[r * kt + k] * s + b[k];
}

#define FORWARD_CASE(K)                                                                      \
    case K:                                                                                  \
        if (u8)                                                                              \
            rt == RT ? forward_tile(job, xr, pf, wt, b, z, 1, K, RT)                         \
                     : forward_tile(job, xr, pf, wt, b, z, 1, K, 1);                         \
        else                                                                                 \
            rt == RT ? forward_tile(job, xr, pf, wt, b, z, 0, K, RT)                         \
                     : forward_tile(job, xr, pf, wt, b, z, 0, K, 1);                         \
        break;

static void forward_any(const csm_linear_job *job, const void *const *xr, const char *const *pf,
                        const REAL *wt, const REAL *b, REAL *z, int u8, int kt, int rt) {
    switch (kt) {
        FORWARD_CASE(1) FORWARD_CASE(2) FORWARD_CASE(3) FORWARD_CASE(4)
        FORWARD_CASE(5) FORWARD_CASE(6) FORWARD_CASE(7) FORWARD_CASE(8)
        FORWARD_CASE(9) FORWARD_CASE(10) FORWARD_CASE(11) FORWARD_CASE(12)
    }
}

/* Tile t of ntiles over q classes: as even as possible, at most KMAX each. */
INLINE void tile(ptrdiff_t q, ptrdiff_t t, ptrdiff_t ntiles, ptrdiff_t *k0, int *kt) {
    const ptrdiff_t base = q / ntiles, extra = q % ntiles;
    *k0 = t * base + (t < extra ? t : extra);
    *kt = (int)(base + (t < extra));
}

/* Rows [r, r + rt) through every class tile, prefetching the rows from
 * r + rt on (up to `end`) during the first. */
INLINE void forward_rows(const csm_linear_job *job, ptrdiff_t r, int rt, ptrdiff_t end) {
    const ptrdiff_t q = job->q, dp = job->d_pad, ntiles = (q + KMAX - 1) / KMAX;
    const void *xr[RT];
    const char *pf[RT];
    for (int i = 0; i < rt; i++) {
        xr[i] = row_ptr(job, r + i);
        pf[i] = row_ptr(job, r + rt + i < end ? r + rt + i : r + i);
    }
    for (ptrdiff_t t = 0; t < ntiles; t++) {
        ptrdiff_t k0;
        int kt;
        tile(q, t, ntiles, &k0, &kt);
        forward_any(job, xr, t == 0 ? pf : NULL, (const REAL *)job->wt + k0 * dp,
                    (const REAL *)job->b + k0,
                    (REAL *)job->z + r * q + k0, job->x_uint8, kt, rt);
    }
}

static void forward(const csm_linear_job *job, ptrdiff_t r0, ptrdiff_t nr) {
    ptrdiff_t r = r0;
    for (; r + RT <= r0 + nr; r += RT)
        forward_rows(job, r, RT, job->m);
    for (; r < r0 + nr; r++)
        forward_rows(job, r, 1, job->m);
}

/* ----------------------------------------------------------- backward -- */

/* part[k][j + c W] = sum over the rows of z[r][k] x[r][j + c W], for the kt
 * classes of one tile and ct chunks of W from j (the last one `tail`
 * elements long when tail > 0). */
INLINE void backward_tile(const csm_linear_job *job, ptrdiff_t r0, ptrdiff_t nr, const REAL *z,
                          REAL *part, ptrdiff_t j, ptrdiff_t tail, const int u8, const int kt,
                          const int ct) {
    const ptrdiff_t dp = job->d_pad, q = job->q;
    VR acc[RT][KMAX];
    for (int c = 0; c < ct; c++)
        for (int k = 0; k < kt; k++)
            acc[c][k] = vset(0);
    for (ptrdiff_t r = r0; r < r0 + nr; r++) {
        const void *row = row_ptr(job, r);
        VR xv[RT];
        for (int c = 0; c < ct; c++)
            xv[c] = tail > 0 ? load_x_tail(row, j + c * W, tail, u8) : load_x(row, j + c * W, u8);
        const REAL *g = z + r * q;
        for (int k = 0; k < kt; k++) {
            const VR gk = splat(g[k]);
            for (int c = 0; c < ct; c++)
                acc[c][k] += gk * xv[c];
        }
    }
    for (int k = 0; k < kt; k++)
        for (int c = 0; c < ct; c++)
            vstore(part + k * dp + j + c * W, acc[c][k]);
}

#define BACKWARD_CASE(K)                                                                     \
    case K:                                                                                  \
        if (u8)                                                                              \
            ct == RT ? backward_tile(job, r0, nr, z, part, j, tail, 1, K, RT)                \
                     : backward_tile(job, r0, nr, z, part, j, tail, 1, K, 1);                \
        else                                                                                 \
            ct == RT ? backward_tile(job, r0, nr, z, part, j, tail, 0, K, RT)                \
                     : backward_tile(job, r0, nr, z, part, j, tail, 0, K, 1);                \
        break;

static void backward_any(const csm_linear_job *job, ptrdiff_t r0, ptrdiff_t nr, const REAL *z,
                         REAL *part, ptrdiff_t j, ptrdiff_t tail, int u8, int kt, int ct) {
    switch (kt) {
        BACKWARD_CASE(1) BACKWARD_CASE(2) BACKWARD_CASE(3) BACKWARD_CASE(4)
        BACKWARD_CASE(5) BACKWARD_CASE(6) BACKWARD_CASE(7) BACKWARD_CASE(8)
        BACKWARD_CASE(9) BACKWARD_CASE(10) BACKWARD_CASE(11) BACKWARD_CASE(12)
    }
}

static void backward(const csm_linear_job *job, ptrdiff_t r0, ptrdiff_t nr, void *part_v) {
    const ptrdiff_t q = job->q, d = job->d, dp = job->d_pad, full = d - d % W;
    const ptrdiff_t ntiles = (q + KMAX - 1) / KMAX;
    const REAL *z = job->z;
    REAL *part = part_v;
    const int u8 = job->x_uint8;
    for (ptrdiff_t t = 0; t < ntiles; t++) {
        ptrdiff_t k0;
        int kt;
        tile(q, t, ntiles, &k0, &kt);
        ptrdiff_t j = 0;
        for (; j + RT * W <= full; j += RT * W)
            backward_any(job, r0, nr, z + k0, part + k0 * dp, j, 0, u8, kt, RT);
        for (; j < full; j += W)
            backward_any(job, r0, nr, z + k0, part + k0 * dp, j, 0, u8, kt, 1);
        if (j < d)
            backward_any(job, r0, nr, z + k0, part + k0 * dp, j, d - j, u8, kt, 1);
        /* Lanes past the last chunk up to d_pad: zero, so the sum of parts
         * is defined everywhere. */
        for (ptrdiff_t k = k0; k < k0 + kt; k++)
            for (ptrdiff_t i = (d + W - 1) / W * W; i < dp; i++)
                part[k * dp + i] = 0;
    }
}

/* ------------------------------------------------- layout of W and dW -- */

/* Once a step, W in and its gradient out: a few microseconds that no other
 * thread shares, so on AVX-512 a column of 16 rows moves as one gather or
 * scatter rather than element by element. */
#if defined(CSM_ISA_avx512)
/* {0, q, 2q, ...}: lane i at row i of a (rows x q) matrix. */
INLINE __m512i row_offsets(ptrdiff_t q) {
    return _mm512_mullo_epi32(
        _mm512_set_epi32(15, 14, 13, 12, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1, 0),
        _mm512_set1_epi32((int)q));
}
#if defined(CSM_TYPE_f64)
#define GATHER(idx, p) (VR) _mm512_i32gather_pd(_mm512_castsi512_si256(idx), (p), 8)
#define SCATTER(p, idx, v) _mm512_i32scatter_pd((p), _mm512_castsi512_si256(idx), (__m512d)(v), 8)
#else
#define GATHER(idx, p) (VR) _mm512_i32gather_ps((idx), (p), 4)
#define SCATTER(p, idx, v) _mm512_i32scatter_ps((p), (idx), (__m512)(v), 4)
#endif
/* The offsets stay in 32 bits. */
#define GATHERS_FIT(q) ((q) <= INT32_MAX / W)
#endif

static void transpose_in(const void *wv, void *wtv, ptrdiff_t d, ptrdiff_t q, ptrdiff_t dp) {
    const REAL *w = wv;
    REAL *wt = wtv;
    ptrdiff_t j = 0;
#if defined(CSM_ISA_avx512)
    if (GATHERS_FIT(q)) {
        const __m512i idx = row_offsets(q);
        for (; j + W <= d; j += W)
            for (ptrdiff_t k = 0; k < q; k++)
                vstore(wt + k * dp + j, GATHER(idx, w + j * q + k));
    }
#endif
    for (ptrdiff_t k = 0; k < q; k++) {
        for (ptrdiff_t i = j; i < d; i++)
            wt[k * dp + i] = w[i * q + k];
        for (ptrdiff_t i = d; i < dp; i++)
            wt[k * dp + i] = 0;
    }
}

static void gradient_out(void *partsv, ptrdiff_t nparts, ptrdiff_t stride, ptrdiff_t q,
                         ptrdiff_t dp, double scale, void *gwv, ptrdiff_t d) {
    REAL *parts = partsv, *gw = gwv;
    for (ptrdiff_t p = 1; p < nparts; p++)
        for (ptrdiff_t e = 0; e < stride; e++)
            parts[e] += parts[p * stride + e];
    const REAL s = (REAL)scale;
    ptrdiff_t j = 0;
#if defined(CSM_ISA_avx512)
    if (GATHERS_FIT(q)) {
        const __m512i idx = row_offsets(q);
        for (; j + W <= d; j += W)
            for (ptrdiff_t k = 0; k < q; k++)
                SCATTER(gw + j * q + k, idx, vload(parts + k * dp + j) * splat(s));
    }
#endif
    for (; j < d; j++)
        for (ptrdiff_t k = 0; k < q; k++)
            gw[j * q + k] = s * parts[k * dp + j];
}

const csm_fused_kernels CSM_CAT3(csm_fused, CSM_ISA, CSM_TYPE) = {forward, backward, transpose_in,
                                                                  gradient_out};
