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
#else
typedef float REAL;
typedef int32_t IREAL;
#define MANT_BITS 23
#define EXP_BIAS 127
#define CSM_TYPE f32
#endif

typedef REAL VR __attribute__((vector_size(VBYTES)));
typedef IREAL VI __attribute__((vector_size(VBYTES)));
#define W ((ptrdiff_t)(VBYTES / sizeof(REAL)))

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

/* The first k (< W) elements of p, the other lanes set to pad. */
static inline VR vload_part(const REAL *p, ptrdiff_t k, REAL pad) {
    VR v = vset(pad);
    for (ptrdiff_t i = 0; i < k; i++)
        v[i] = p[i];
    return v;
}

static inline void vstore_part(REAL *p, VR v, ptrdiff_t k) {
    for (ptrdiff_t i = 0; i < k; i++)
        p[i] = v[i];
}

/* mask ? a : b, lane by lane (C has no vector ?: operator). */
static inline VR vselect(VI mask, VR a, VR b) {
    return (VR)((mask & (VI)a) | (~mask & (VI)b));
}

/* Lanes at or past k zeroed (for the partial last vector of a row). */
static inline VR vkeep_first(VR v, ptrdiff_t k) {
    for (ptrdiff_t i = k; i < W; i++)
        v[i] = 0;
    return v;
}

/* A nan in a or b is not propagated; callers rely on nan reaching the sum. */
static inline VR vmax(VR a, VR b) {
    return vselect(a > b, a, b);
}

/* Lanes reduced in a fixed order, so the result depends only on v. */
static inline double vsum(VR v) {
    double s = 0;
    for (ptrdiff_t i = 0; i < W; i++)
        s += (double)v[i];
    return s;
}

static inline REAL vmax_lanes(VR v) {
    REAL m = v[0];
    for (ptrdiff_t i = 1; i < W; i++)
        m = v[i] > m ? v[i] : m;
    return m;
}

#endif
