/*
 * vexp.h - exp(x) on a vector of REAL, within 2 ulp over the whole range.
 *
 * exp(x) = 2^n * exp(r) with n = round(x / ln 2) and r = x - n ln 2, so that
 * |r| <= ln(2)/2.  r is formed in two steps (Cody and Waite): ln 2 is split
 * into a head with trailing zero bits, so n * head is exact, and a tail.
 * exp(r) is 1 + r + r^2 P(r), P a minimax polynomial (degree 6 in all for
 * float, 11 for double; truncation below 0.06 ulp), evaluated by Horner's
 * rule to the end: one fused multiply-add per degree.
 *
 * Two paths give the same bits wherever both apply.  The fast one serves a
 * vector whose lanes all have normal results: 2^n is then one exact scaling
 * (vscalefps on AVX-512, an exponent-field add elsewhere).  Any other lane
 * (subnormal or zero result, overflow, +-inf) sends the whole vector down
 * the slow path: lanes whose result is 0 are computed on 0 and zeroed at the
 * end, others are clamped so that they overflow to +inf, and 2^n is applied
 * as two normal powers of two 2^n1 * 2^n2, so the last multiply rounds
 * correctly into the subnormal range.  vscalefps is kept off that path: on
 * these cores it takes a microcode assist (~100 ns) for every subnormal
 * result, where a plain multiply takes none.  nan passes every comparison
 * (they are false) and stays nan.  No -ffast-math: it would break exactly
 * these cases.
 */
#ifndef CSM_VEXP_H
#define CSM_VEXP_H

#include "simd.h"

#if defined(CSM_TYPE_f64)
#define EXP_LO (-746.0)            /* exp(-746) < 2^-1075: rounds to 0 */
#define EXP_HI 710.0               /* exp(710) > DBL_MAX: +inf */
#define EXP_FAST_LO (-707.0)       /* exp(x) >= 2^-1020 from here up: normal */
#define EXP_FAST_HI 709.0          /* and n <= 1023 up to here */
#define LN2_HI 6.93147180369123816490e-01
#define LN2_LO 1.90821492927058770002e-10
#define ROUND_SHIFTER 6755399441055744.0 /* 1.5 * 2^52 */
#else
#define EXP_LO (-104.0f)           /* exp(-104) < 2^-150: rounds to 0 */
#define EXP_HI 89.0f               /* exp(89) > FLT_MAX: +inf */
#define EXP_FAST_LO (-86.0f)       /* exp(x) >= 2^-124 from here up: normal */
#define EXP_FAST_HI 88.0f          /* and n <= 127 up to here */
#define LN2_HI 0.693359375f        /* 355/512: 9 significant bits */
#define LN2_LO (-2.12194440e-4f)
#define ROUND_SHIFTER 12582912.0f  /* 1.5 * 2^23 */
#endif
#define LOG2E ((REAL)1.44269504088896340736)

/* Round to the nearest integer (ties to even), for |x| < 2^(MANT_BITS-1):
 * adding 1.5 * 2^MANT_BITS leaves no fraction bits. */
static inline VR vround_int(VR x) {
    return (x + ROUND_SHIFTER) - ROUND_SHIFTER;
}

/* 2^k for integer-valued k in the normal exponent range: the biased exponent
 * is read off the low bits of k + bias + shifter and moved into place. */
static inline VR vpow2i(VR k) {
    VR t = k + ((REAL)EXP_BIAS + ROUND_SHIFTER);
    VU biased = (VU)t - (VU)vset(ROUND_SHIFTER);
    return (VR)(biased << MANT_BITS);
}

/* p * 2^n for integer-valued n when the result is a normal number. */
static inline VR vscale_normal(VR p, VR n) {
#if defined(CSM_ISA_avx512) && defined(CSM_TYPE_f64)
    return (VR)_mm512_scalef_pd((__m512d)p, (__m512d)n);
#elif defined(CSM_ISA_avx512)
    return (VR)_mm512_scalef_ps((__m512)p, (__m512)n);
#else
    return p * vpow2i(n);
#endif
}

/* exp(r) with r = x - n ln 2; n returned. */
static inline VR vexp_reduced(VR x, VR *n_out) {
    const VR n = vfma(x, vset(LOG2E), vset(ROUND_SHIFTER)) - ROUND_SHIFTER;
    const VR r = vfma(n, vset(-LN2_LO), vfma(n, vset(-LN2_HI), x));
#if defined(CSM_TYPE_f64)
    static const REAL c[] = {2.500004619301009e-08,  2.7630269230551677e-07, 2.7557586528750637e-06,
                             2.480149304513617e-05,  0.00019841269506288824, 0.0013888888943676876,
                             0.008333333333494647,   0.04166666666653,       0.16666666666666413,
                             0.5000000000000011,     1.0,                    1.0};
#else
    static const REAL c[] = {0.0013814577832818031f, 0.008368726819753647f, 0.04166838899254799f,
                             0.1666652113199234f,    0.4999999403953552f,   1.0f,
                             1.0f};
#endif
    VR p = vset(c[0]);
    for (size_t i = 1; i < sizeof c / sizeof c[0]; i++)
        p = vfma(p, r, vset(c[i]));
    *n_out = n;
    return p;
}

static inline VR vexp_slow(VR x) {
    const VI zero = x < EXP_LO;
    x = vselect(zero, vset(0), x);
    x = vselect(x > EXP_HI, vset(EXP_HI), x);
    VR n;
    const VR p = vexp_reduced(x, &n);
    const VR n1 = vround_int(n * (REAL)0.5);
    return vselect(zero, vset(0), (p * vpow2i(n1)) * vpow2i(n - n1));
}

/* exp(x) when every lane is in [EXP_FAST_LO, EXP_FAST_HI] or nan. */
static inline VR vexp_fast(VR x) {
    VR n;
    const VR p = vexp_reduced(x, &n);
    return vscale_normal(p, n);
}

static inline VR vexp(VR x) {
    if (__builtin_expect(vany_outside(x, EXP_FAST_LO, EXP_FAST_HI), 0))
        return vexp_slow(x);
    return vexp_fast(x);
}

#endif
