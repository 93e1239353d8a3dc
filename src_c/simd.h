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
#define MANT_BITS 52
#define EXP_BIAS 1023
#define CSM_TYPE f64
#define REAL_BYTES 8
#else
typedef float REAL;
typedef int32_t IREAL;
#define MANT_BITS 23
#define EXP_BIAS 127
#define CSM_TYPE f32
#define REAL_BYTES 4
#endif
#define LANES (VBYTES / REAL_BYTES)

typedef REAL VR __attribute__((vector_size(VBYTES)));
typedef IREAL VI __attribute__((vector_size(VBYTES)));
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

/* A nan in a or b is not propagated; callers rely on nan reaching the sum. */
static inline VR vmax(VR a, VR b) {
    return vselect(a > b, a, b);
}

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

static inline double vsum(VR v) {
    return (double)vsum_all(v)[0];
}

static inline REAL vmax_lanes(VR v) {
    return vmax_all(v)[0];
}

#endif
