/*
 * simd.h - the vector layer the row kernels are written in.
 *
 * row_kernels.c is compiled once per (instruction set, float type); the build
 * defines CSM_ISA_<name> and CSM_TYPE_<f32|f64>.  This header turns those into
 * REAL (the element type), VR (a vector of REAL as wide as the instruction
 * set's registers), VI (the signed integers of the same width, which vector
 * comparisons yield) and a few helpers.  GNU vector extensions let the same
 * source compile to SSE2, AVX2 or AVX-512 code, and to NEON or scalar code
 * elsewhere.
 */
#ifndef CSM_SIMD_H
#define CSM_SIMD_H

#include <math.h>
#include <stdint.h>
#include <string.h>

#if defined(CSM_ISA_avx512) || defined(CSM_ISA_avx2)
#include <immintrin.h>
#endif

#if defined(CSM_ISA_avx512)
#define VBYTES 64
#elif defined(CSM_ISA_avx2)
#define VBYTES 32
#else
#define VBYTES 16
#endif

#if defined(CSM_TYPE_f64)
typedef double REAL;
typedef int64_t IREAL;
typedef uint64_t UREAL;
#define MANT_BITS 52
#define EXP_BIAS 1023
#define CSM_TYPE f64
#define REAL_BYTES 8
#else
typedef float REAL;
typedef int32_t IREAL;
typedef uint32_t UREAL;
#define MANT_BITS 23
#define EXP_BIAS 127
#define CSM_TYPE f32
#define REAL_BYTES 4
#endif
#define LANES (VBYTES / REAL_BYTES)

typedef REAL VR __attribute__((vector_size(VBYTES)));
typedef IREAL VI __attribute__((vector_size(VBYTES)));
typedef UREAL VU __attribute__((vector_size(VBYTES))); /* for bit arithmetic: wraps, no UB */
#define W ((ptrdiff_t)LANES)

#define CSM_CAT3_(a, b, c) a##_##b##_##c
#define CSM_CAT3(a, b, c) CSM_CAT3_(a, b, c)

static inline VR vset(REAL a) {
    return (VR){0} + a;
}

/* Unaligned loads and stores: memcpy compiles to one vector move. */
static inline VR vload(const REAL *p) {
    VR v;
    memcpy(&v, p, sizeof v);
    return v;
}

static inline void vstore(REAL *p, VR v) {
    memcpy(p, &v, sizeof v);
}

/*
 * a * b + c, rounded once where the instruction set has fused multiply-add.
 * The kernels are compiled with -ffp-contract=off, so these are the only
 * fused operations: the compiler's choice to fuse an a * b + c or not, which
 * can differ between two inlined copies of one formula, never changes a
 * result (the loss comes out the same with and without the gradient).
 */
static inline VR vfma(VR a, VR b, VR c) {
#if defined(CSM_ISA_avx512) && defined(CSM_TYPE_f64)
    return (VR)_mm512_fmadd_pd((__m512d)a, (__m512d)b, (__m512d)c);
#elif defined(CSM_ISA_avx512)
    return (VR)_mm512_fmadd_ps((__m512)a, (__m512)b, (__m512)c);
#elif defined(CSM_ISA_avx2) && defined(CSM_TYPE_f64)
    return (VR)_mm256_fmadd_pd((__m256d)a, (__m256d)b, (__m256d)c);
#elif defined(CSM_ISA_avx2)
    return (VR)_mm256_fmadd_ps((__m256)a, (__m256)b, (__m256)c);
#else
    return a * b + c;
#endif
}

/* a * b - c, likewise. */
static inline VR vfms(VR a, VR b, VR c) {
#if defined(CSM_ISA_avx512) && defined(CSM_TYPE_f64)
    return (VR)_mm512_fmsub_pd((__m512d)a, (__m512d)b, (__m512d)c);
#elif defined(CSM_ISA_avx512)
    return (VR)_mm512_fmsub_ps((__m512)a, (__m512)b, (__m512)c);
#elif defined(CSM_ISA_avx2) && defined(CSM_TYPE_f64)
    return (VR)_mm256_fmsub_pd((__m256d)a, (__m256d)b, (__m256d)c);
#elif defined(CSM_ISA_avx2)
    return (VR)_mm256_fmsub_ps((__m256)a, (__m256)b, (__m256)c);
#else
    return a * b - c;
#endif
}

/* mask ? a : b, lane by lane (C has no vector ?: operator). */
static inline VR vselect(VI mask, VR a, VR b) {
    return (VR)((mask & (VI)a) | (~mask & (VI)b));
}

/* All ones in the lanes below k, zeros from lane k on. */
static inline VI vlanes_below(ptrdiff_t k) {
    static const IREAL iota[16] = {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15};
    VI lanes;
    memcpy(&lanes, iota, sizeof lanes);
    return lanes < (IREAL)k;
}

/* The first k (< W) elements of p, the other lanes set to pad; nothing past
 * p[k - 1] is read (masked loads where the instruction set has them). */
static inline VR vload_part(const REAL *p, ptrdiff_t k, REAL pad) {
#if defined(CSM_ISA_avx512) && defined(CSM_TYPE_f64)
    return (VR)_mm512_mask_loadu_pd(_mm512_set1_pd(pad), (__mmask8)((1u << k) - 1), p);
#elif defined(CSM_ISA_avx512)
    return (VR)_mm512_mask_loadu_ps(_mm512_set1_ps(pad), (__mmask16)((1u << k) - 1), p);
#elif defined(CSM_ISA_avx2)
    VI mask = vlanes_below(k);
#if defined(CSM_TYPE_f64)
    VR v = (VR)_mm256_maskload_pd(p, (__m256i)mask);
#else
    VR v = (VR)_mm256_maskload_ps(p, (__m256i)mask);
#endif
    return vselect(mask, v, vset(pad));
#else
    VR v = vset(pad);
    for (ptrdiff_t i = 0; i < k; i++)
        v[i] = p[i];
    return v;
#endif
}

static inline void vstore_part(REAL *p, VR v, ptrdiff_t k) {
#if defined(CSM_ISA_avx512) && defined(CSM_TYPE_f64)
    _mm512_mask_storeu_pd(p, (__mmask8)((1u << k) - 1), (__m512d)v);
#elif defined(CSM_ISA_avx512)
    _mm512_mask_storeu_ps(p, (__mmask16)((1u << k) - 1), (__m512)v);
#elif defined(CSM_ISA_avx2) && defined(CSM_TYPE_f64)
    _mm256_maskstore_pd(p, (__m256i)vlanes_below(k), (__m256d)v);
#elif defined(CSM_ISA_avx2)
    _mm256_maskstore_ps(p, (__m256i)vlanes_below(k), (__m256)v);
#else
    for (ptrdiff_t i = 0; i < k; i++)
        p[i] = v[i];
#endif
}

/* Lanes at or past k zeroed (for the partial last vector of a row). */
static inline VR vkeep_first(VR v, ptrdiff_t k) {
    return vselect(vlanes_below(k), v, vset(0));
}

/* a > b ? a : b lane by lane (the max instructions' own rule): a nan in a
 * or b is not propagated; callers rely on nan reaching the sum. */
static inline VR vmax(VR a, VR b) {
#if defined(CSM_ISA_avx512) && defined(CSM_TYPE_f64)
    return (VR)_mm512_max_pd((__m512d)a, (__m512d)b);
#elif defined(CSM_ISA_avx512)
    return (VR)_mm512_max_ps((__m512)a, (__m512)b);
#elif defined(CSM_ISA_avx2) && defined(CSM_TYPE_f64)
    return (VR)_mm256_max_pd((__m256d)a, (__m256d)b);
#elif defined(CSM_ISA_avx2)
    return (VR)_mm256_max_ps((__m256)a, (__m256)b);
#else
    return vselect(a > b, a, b);
#endif
}

/* a < b ? a : b lane by lane. */
static inline VR vmin(VR a, VR b) {
#if defined(CSM_ISA_avx512) && defined(CSM_TYPE_f64)
    return (VR)_mm512_min_pd((__m512d)a, (__m512d)b);
#elif defined(CSM_ISA_avx512)
    return (VR)_mm512_min_ps((__m512)a, (__m512)b);
#elif defined(CSM_ISA_avx2) && defined(CSM_TYPE_f64)
    return (VR)_mm256_min_pd((__m256d)a, (__m256d)b);
#elif defined(CSM_ISA_avx2)
    return (VR)_mm256_min_ps((__m256)a, (__m256)b);
#else
    return vselect(a < b, a, b);
#endif
}

/*
 * Lane masks for the hot loops: AVX-512's mask registers, where a compare
 * and a blend are one instruction each (GCC does not turn the all-ones
 * vectors of C's vector compares into them), and those vectors elsewhere.
 * Compares are ordered: false where a lane is nan.
 */
#if defined(CSM_ISA_avx512)
#if defined(CSM_TYPE_f64)
typedef __mmask8 VM;
#define CSM_CMP(a, b, op) _mm512_cmp_pd_mask((__m512d)(a), (__m512d)(b), op)
static inline VM veqi(VI a, IREAL b) {
    return _mm512_cmpeq_epi64_mask((__m512i)a, _mm512_set1_epi64(b));
}
static inline VR vsel(VM m, VR a, VR b) {
    return (VR)_mm512_mask_blend_pd(m, (__m512d)b, (__m512d)a);
}
#else
typedef __mmask16 VM;
#define CSM_CMP(a, b, op) _mm512_cmp_ps_mask((__m512)(a), (__m512)(b), op)
static inline VM veqi(VI a, IREAL b) {
    return _mm512_cmpeq_epi32_mask((__m512i)a, _mm512_set1_epi32(b));
}
static inline VR vsel(VM m, VR a, VR b) {
    return (VR)_mm512_mask_blend_ps(m, (__m512)b, (__m512)a);
}
#endif
static inline VM vlt(VR a, VR b) {
    return CSM_CMP(a, b, _CMP_LT_OQ);
}
static inline VM vgt(VR a, VR b) {
    return CSM_CMP(a, b, _CMP_GT_OQ);
}
static inline VM veq(VR a, VR b) {
    return CSM_CMP(a, b, _CMP_EQ_OQ);
}
static inline VM vge(VR a, VR b) {
    return CSM_CMP(a, b, _CMP_GE_OQ);
}
static inline int vany_m(VM m) {
    return m != 0;
}
#else
typedef VI VM;
static inline VM veqi(VI a, IREAL b) {
    return a == b;
}
static inline VR vsel(VM m, VR a, VR b) {
    return vselect(m, a, b);
}
static inline VM vlt(VR a, VR b) {
    return a < b;
}
static inline VM vgt(VR a, VR b) {
    return a > b;
}
static inline VM veq(VR a, VR b) {
    return a == b;
}
static inline VM vge(VR a, VR b) {
    return a >= b;
}
#endif

/*
 * Horizontal max and sum.  Lanes are combined pairwise (lane i with lane
 * i + h, for h = W/2, W/4, ..., 1), a fixed order, so a result depends only
 * on v; the "all" forms leave the result in every lane.  With
 * __builtin_shufflevector (GCC >= 12, Clang) this stays in registers.
 */
#if defined(__clang__) || (defined(__GNUC__) && __GNUC__ >= 12)
#define SHUF(v, ...) __builtin_shufflevector(v, v, __VA_ARGS__)
#if LANES == 16
#define TREE(op, v)                                                                      \
    v = op(v, SHUF(v, 8, 9, 10, 11, 12, 13, 14, 15, 0, 1, 2, 3, 4, 5, 6, 7));            \
    v = op(v, SHUF(v, 4, 5, 6, 7, 0, 1, 2, 3, 12, 13, 14, 15, 8, 9, 10, 11));            \
    v = op(v, SHUF(v, 2, 3, 0, 1, 6, 7, 4, 5, 10, 11, 8, 9, 14, 15, 12, 13));            \
    v = op(v, SHUF(v, 1, 0, 3, 2, 5, 4, 7, 6, 9, 8, 11, 10, 13, 12, 15, 14))
#elif LANES == 8
#define TREE(op, v)                                                                      \
    v = op(v, SHUF(v, 4, 5, 6, 7, 0, 1, 2, 3));                                          \
    v = op(v, SHUF(v, 2, 3, 0, 1, 6, 7, 4, 5));                                          \
    v = op(v, SHUF(v, 1, 0, 3, 2, 5, 4, 7, 6))
#elif LANES == 4
#define TREE(op, v)                                                                      \
    v = op(v, SHUF(v, 2, 3, 0, 1));                                                      \
    v = op(v, SHUF(v, 1, 0, 3, 2))
#elif LANES == 2
#define TREE(op, v) v = op(v, SHUF(v, 1, 0))
#endif
#endif

static inline VR vadd(VR a, VR b) {
    return a + b;
}

static inline VR vmax_all(VR v) {
#ifdef TREE
    TREE(vmax, v);
    return v;
#else
    REAL lanes[W];
    memcpy(lanes, &v, sizeof v);
    for (ptrdiff_t h = W / 2; h > 0; h /= 2)
        for (ptrdiff_t i = 0; i < h; i++)
            lanes[i] = lanes[i + h] > lanes[i] ? lanes[i + h] : lanes[i];
    return vset(lanes[0]);
#endif
}

static inline VR vsum_all(VR v) {
#ifdef TREE
    TREE(vadd, v);
    return v;
#else
    REAL lanes[W];
    memcpy(lanes, &v, sizeof v);
    for (ptrdiff_t h = W / 2; h > 0; h /= 2)
        for (ptrdiff_t i = 0; i < h; i++)
            lanes[i] += lanes[i + h];
    return vset(lanes[0]);
#endif
}

/* Is any lane of x below lo or above hi?  (A nan lane is neither.) */
static inline int vany_outside(VR x, REAL lo, REAL hi) {
#if defined(CSM_ISA_avx512) && defined(CSM_TYPE_f64)
    return (_mm512_cmp_pd_mask((__m512d)x, _mm512_set1_pd(lo), _CMP_LT_OQ) |
            _mm512_cmp_pd_mask((__m512d)x, _mm512_set1_pd(hi), _CMP_GT_OQ)) != 0;
#elif defined(CSM_ISA_avx512)
    return (_mm512_cmp_ps_mask((__m512)x, _mm512_set1_ps(lo), _CMP_LT_OQ) |
            _mm512_cmp_ps_mask((__m512)x, _mm512_set1_ps(hi), _CMP_GT_OQ)) != 0;
#elif defined(CSM_ISA_avx2) && defined(CSM_TYPE_f64)
    return _mm256_movemask_pd((__m256d)((x < lo) | (x > hi))) != 0;
#elif defined(CSM_ISA_avx2)
    return _mm256_movemask_ps((__m256)((x < lo) | (x > hi))) != 0;
#else
    VI out = (x < lo) | (x > hi);
    IREAL any = 0;
    for (ptrdiff_t i = 0; i < W; i++)
        any |= out[i];
    return any != 0;
#endif
}

static inline int vany(VI mask) {
#if defined(CSM_ISA_avx512) && defined(CSM_TYPE_f64)
    return _mm512_test_epi64_mask((__m512i)mask, (__m512i)mask) != 0;
#elif defined(CSM_ISA_avx512)
    return _mm512_test_epi32_mask((__m512i)mask, (__m512i)mask) != 0;
#elif defined(CSM_ISA_avx2)
    return !_mm256_testz_si256((__m256i)mask, (__m256i)mask);
#else
    IREAL any = 0;
    for (ptrdiff_t i = 0; i < W; i++)
        any |= mask[i];
    return any != 0;
#endif
}

/* W class labels as lanes of VI, -1 where a label equals `ignore` (the
 * labels are valid class indices otherwise, so they fit). */
static inline VI vload_labels(const int64_t *p, int64_t ignore) {
#if defined(CSM_ISA_avx512) && defined(CSM_TYPE_f64)
    const __m512i l = _mm512_loadu_si512(p);
    const __mmask8 ig = _mm512_cmpeq_epi64_mask(l, _mm512_set1_epi64(ignore));
    return (VI)_mm512_mask_mov_epi64(l, ig, _mm512_set1_epi64(-1));
#elif defined(CSM_ISA_avx512)
    const __m512i a = _mm512_loadu_si512(p), b = _mm512_loadu_si512(p + 8);
    const __m512i ig = _mm512_set1_epi64(ignore);
    const __mmask16 skip = (__mmask16)(_mm512_cmpeq_epi64_mask(a, ig) |
                                       (_mm512_cmpeq_epi64_mask(b, ig) << 8));
    const __m512i l = _mm512_inserti64x4(_mm512_castsi256_si512(_mm512_cvtepi64_epi32(a)),
                                         _mm512_cvtepi64_epi32(b), 1);
    return (VI)_mm512_mask_mov_epi32(l, skip, _mm512_set1_epi32(-1));
#elif defined(CSM_ISA_avx2) && defined(CSM_TYPE_f64)
    const __m256i l = _mm256_loadu_si256((const __m256i *)p);
    return (VI)_mm256_or_si256(l, _mm256_cmpeq_epi64(l, _mm256_set1_epi64x(ignore)));
#elif defined(CSM_ISA_avx2)
    const __m256i ig = _mm256_set1_epi64x(ignore);
    __m256i a = _mm256_loadu_si256((const __m256i *)p);
    __m256i b = _mm256_loadu_si256((const __m256i *)(p + 4));
    a = _mm256_or_si256(a, _mm256_cmpeq_epi64(a, ig)); /* ignored: all ones */
    b = _mm256_or_si256(b, _mm256_cmpeq_epi64(b, ig));
    /* The low halves of the eight 64-bit lanes, in order. */
    const __m256 lo = _mm256_shuffle_ps(_mm256_castsi256_ps(a), _mm256_castsi256_ps(b),
                                        _MM_SHUFFLE(2, 0, 2, 0));
    return (VI)_mm256_permute4x64_epi64(_mm256_castps_si256(lo), _MM_SHUFFLE(3, 1, 2, 0));
#else
    VI l;
    for (ptrdiff_t i = 0; i < W; i++)
        l[i] = p[i] == ignore ? -1 : (IREAL)p[i];
    return l;
#endif
}

#if !defined(CSM_ISA_avx512)
static inline int vany_m(VM m) {
    return vany(m);
}
#endif

/*
 * W x W transpose in place: row i of v becomes column i.  log2(W) rounds of
 * two-source shuffles; round d swaps the d-sized off-diagonal blocks, so the
 * result comes out in natural order.  Unused outputs (columns past a short
 * row) are dead code the compiler drops.
 */
#ifdef SHUF
#define SHUF2(a, b, ...) __builtin_shufflevector(a, b, __VA_ARGS__)
#define TR_ROUND(d, LO, HI)                                                              \
    for (ptrdiff_t i_ = 0; i_ < W; i_++)                                                 \
        if (!(i_ & (d))) {                                                               \
            const VR a_ = v[i_], b_ = v[i_ + (d)];                                       \
            v[i_] = SHUF2(a_, b_, LO);                                                   \
            v[i_ + (d)] = SHUF2(a_, b_, HI);                                             \
        }
#if LANES == 16
#define L16_8 0, 1, 2, 3, 4, 5, 6, 7, 16, 17, 18, 19, 20, 21, 22, 23
#define H16_8 8, 9, 10, 11, 12, 13, 14, 15, 24, 25, 26, 27, 28, 29, 30, 31
#define L16_4 0, 1, 2, 3, 16, 17, 18, 19, 8, 9, 10, 11, 24, 25, 26, 27
#define H16_4 4, 5, 6, 7, 20, 21, 22, 23, 12, 13, 14, 15, 28, 29, 30, 31
#define L16_2 0, 1, 16, 17, 4, 5, 20, 21, 8, 9, 24, 25, 12, 13, 28, 29
#define H16_2 2, 3, 18, 19, 6, 7, 22, 23, 10, 11, 26, 27, 14, 15, 30, 31
#define L16_1 0, 16, 2, 18, 4, 20, 6, 22, 8, 24, 10, 26, 12, 28, 14, 30
#define H16_1 1, 17, 3, 19, 5, 21, 7, 23, 9, 25, 11, 27, 13, 29, 15, 31
static inline void vtranspose_inner(VR *v) {
    TR_ROUND(4, L16_4, H16_4)
    TR_ROUND(2, L16_2, H16_2)
    TR_ROUND(1, L16_1, H16_1)
}
static inline void vtranspose(VR *v) {
    TR_ROUND(8, L16_8, H16_8)
    vtranspose_inner(v);
}
#elif LANES == 8
#define L8_4 0, 1, 2, 3, 8, 9, 10, 11
#define H8_4 4, 5, 6, 7, 12, 13, 14, 15
#define L8_2 0, 1, 8, 9, 4, 5, 12, 13
#define H8_2 2, 3, 10, 11, 6, 7, 14, 15
#define L8_1 0, 8, 2, 10, 4, 12, 6, 14
#define H8_1 1, 9, 3, 11, 5, 13, 7, 15
static inline void vtranspose_inner(VR *v) {
    TR_ROUND(2, L8_2, H8_2)
    TR_ROUND(1, L8_1, H8_1)
}
static inline void vtranspose(VR *v) {
    TR_ROUND(4, L8_4, H8_4)
    vtranspose_inner(v);
}
#elif LANES == 4
#define L4_2 0, 1, 4, 5
#define H4_2 2, 3, 6, 7
#define L4_1 0, 4, 2, 6
#define H4_1 1, 5, 3, 7
static inline void vtranspose_inner(VR *v) {
    TR_ROUND(1, L4_1, H4_1)
}
static inline void vtranspose(VR *v) {
    TR_ROUND(2, L4_2, H4_2)
    vtranspose_inner(v);
}
#elif LANES == 2
#define L2_1 0, 2
#define H2_1 1, 3
static inline void vtranspose_inner(VR *v) {
    (void)v;
}
static inline void vtranspose(VR *v) {
    TR_ROUND(1, L2_1, H2_1)
}
#endif
#else
#define CSM_NO_SHUFFLE 1
static inline void vtranspose(VR *v) {
    REAL m[W][W];
    for (ptrdiff_t i = 0; i < W; i++)
        for (ptrdiff_t j = 0; j < W; j++)
            m[j][i] = v[i][j];
    memcpy(v, m, sizeof m);
}
#endif

/*
 * The outer round of a transpose (the one that swaps half-vectors) done by
 * the loads and stores instead of shuffles, where the instruction set has
 * half-vector inserts from memory and masked stores: it moves that work from
 * the shuffle port to the load and store ports.
 *   vload_halves(a, b) = [a[0 .. W/2), b[0 .. W/2)];
 *   vstore_halves(a, b, v, k): lanes [0, k) of v's low half to a, of its high
 *   half to b (k <= W/2).
 */
#if defined(CSM_ISA_avx512) && !defined(CSM_NO_SHUFFLE)
#define CSM_HALVES 1
static inline VR vload_halves(const REAL *a, const REAL *b) {
#if defined(CSM_TYPE_f64)
    return (VR)_mm512_insertf64x4(_mm512_castpd256_pd512(_mm256_loadu_pd(a)), _mm256_loadu_pd(b),
                                  1);
#else
    return (VR)_mm512_insertf32x8(_mm512_castps256_ps512(_mm256_loadu_ps(a)), _mm256_loadu_ps(b),
                                  1);
#endif
}

static inline void vstore_halves(REAL *a, REAL *b, VR v, ptrdiff_t k) {
    const unsigned lo = (1u << k) - 1;
#if defined(CSM_TYPE_f64)
    _mm512_mask_storeu_pd(a, (__mmask8)lo, (__m512d)v);
    _mm512_mask_storeu_pd(b - W / 2, (__mmask8)(lo << (W / 2)), (__m512d)v);
#else
    _mm512_mask_storeu_ps(a, (__mmask16)lo, (__m512)v);
    _mm512_mask_storeu_ps(b - W / 2, (__mmask16)(lo << (W / 2)), (__m512)v);
#endif
}
#endif

static inline double vsum(VR v) {
    return (double)vsum_all(v)[0];
}

static inline REAL vmax_lanes(VR v) {
    return vmax_all(v)[0];
}

#endif
