/*
 * vexp.h - exp(x) on a vector of REAL, within 2 ulp over the whole range.
 *
 * exp(x) = 2^n * exp(r) with n = round(x / ln 2) and r = x - n ln 2, so that
 * |r| <= ln(2)/2.  r is formed in two steps (Cody and Waite): ln 2 is split
 * into a head with trailing zero bits, so n * head is exact, and a tail.
 * exp(r) is its Taylor polynomial, of degree 7 for float (truncation below
 * 0.2 ulp on |r| <= 0.347) and 13 for double (below 0.1 ulp).
 *
 * Special values need no branch: below LO the result is exactly 0 (selected),
 * above HI x is clamped and overflows to +inf, and 2^n is applied as two
 * normal powers of two 2^n1 * 2^n2, so the last multiply rounds correctly
 * into the subnormal range and overflows correctly to +inf.  -inf gives
 * exactly 0; nan passes both comparisons (they are false) and stays nan.
 * No -ffast-math: it would break exactly these cases.
 */
#ifndef CSM_VEXP_H
#define CSM_VEXP_H

#include "simd.h"

#if defined(CSM_TYPE_f64)
#define EXP_LO (-746.0)            /* exp(-746) < 2^-1075: rounds to 0 */
#define EXP_HI 710.0               /* exp(710) > DBL_MAX: +inf */
#define LN2_HI 6.93147180369123816490e-01
#define LN2_LO 1.90821492927058770002e-10
#define ROUND_SHIFTER 6755399441055744.0 /* 1.5 * 2^52 */
#else
#define EXP_LO (-104.0f)           /* exp(-104) < 2^-150: rounds to 0 */
#define EXP_HI 89.0f               /* exp(89) > FLT_MAX: +inf */
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
    VI biased = (VI)t - (VI)vset(ROUND_SHIFTER);
    return (VR)(biased << MANT_BITS);
}

static inline VR vexp(VR x) {
    /* Lanes whose result is 0 (-inf among them, and the padding of short
     * rows) are computed on 0 and zeroed at the end: taking them through
     * the underflowing multiply would cost a microcode assist each. */
    const VI zero = x < EXP_LO;
    x = vselect(zero, vset(0), x);
    x = vselect(x > EXP_HI, vset(EXP_HI), x);
    VR n = vround_int(x * LOG2E);
    VR r = (x - n * LN2_HI) - n * LN2_LO;
#if defined(CSM_TYPE_f64)
    VR p = vset(1.0 / 6227020800.0);      /* 1/13! */
    p = p * r + 1.0 / 479001600.0;        /* 1/12! */
    p = p * r + 1.0 / 39916800.0;
    p = p * r + 1.0 / 3628800.0;
    p = p * r + 1.0 / 362880.0;
    p = p * r + 1.0 / 40320.0;
    p = p * r + 1.0 / 5040.0;
    p = p * r + 1.0 / 720.0;
    p = p * r + 1.0 / 120.0;
    p = p * r + 1.0 / 24.0;
    p = p * r + 1.0 / 6.0;
    p = p * r + 0.5;
#else
    VR p = vset(1.0f / 5040.0f);          /* 1/7! */
    p = p * r + 1.0f / 720.0f;
    p = p * r + 1.0f / 120.0f;
    p = p * r + 1.0f / 24.0f;
    p = p * r + 1.0f / 6.0f;
    p = p * r + 0.5f;
#endif
    /* 1 + r + r^2 * (...): the exact 1 is added last, keeping r's bits. */
    p = 1 + (r + (r * r) * p);
    VR n1 = vround_int(n * (REAL)0.5);
    return vselect(zero, vset(0), (p * vpow2i(n1)) * vpow2i(n - n1));
}

#endif
