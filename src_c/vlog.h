/*
 * vlog.h - log(x) on a vector of REAL, within 1 ulp over the whole range.
 *
 * x = 2^k * m with m in [sqrt(1/2), sqrt(2)), read off the bits: adding
 * 1 - sqrt(1/2) to the bit pattern carries into the exponent exactly when the
 * mantissa is at least sqrt(2)'s, so one integer add, shift and mask give k
 * and m.  Subnormal x are first scaled by 2^MANT_BITS.  With f = m - 1
 * (exact) and s = f / (2 + f), |s| < 0.172:
 *
 *   log(1 + f) = 2 atanh(s) = f - h + s (h + R(s^2)),   h = f^2 / 2,
 *
 * where R(z) = z P(z), P a minimax polynomial (degree 2 for float, 6 for
 * double; truncation below 0.02 ulp).  f, the large term, is exact, and the
 * rounding of the division only touches the small one.  k ln 2 is added in
 * two parts (a head with trailing zero bits, so k * head is exact, and a
 * tail folded in with the small terms).
 *
 * Special values come out as in C's log: log(+-0) = -inf, log(+inf) = +inf,
 * log(x < 0) and log(nan) = nan.  Used once per row, on the sum of the
 * exponentials, so it is written for accuracy first; no branch.
 */
#ifndef CSM_VLOG_H
#define CSM_VLOG_H

#include "vexp.h"

#if defined(CSM_TYPE_f64)
#define LOG_SQRT_HALF_BITS 0x3fe6a09e667f3bcdLL /* sqrt(1/2) */
#define LOG_ONE_BITS 0x3ff0000000000000LL
#define LOG_MANT_MASK 0x000fffffffffffffLL
#define LOG_MIN_NORMAL 2.2250738585072014e-308
#define LOG_SUB_SCALE 4503599627370496.0 /* 2^52 */
#else
#define LOG_SQRT_HALF_BITS 0x3f3504f3
#define LOG_ONE_BITS 0x3f800000
#define LOG_MANT_MASK 0x007fffff
#define LOG_MIN_NORMAL 1.17549435e-38f
#define LOG_SUB_SCALE 8388608.0f /* 2^23 */
#endif

static inline VR vlog(VR x) {
    const VM sub = vlt(x, vset(LOG_MIN_NORMAL)); /* also 0 and negatives: fixed below */
    const VR xs = vsel(sub, x * LOG_SUB_SCALE, x);
    const VU ix = (VU)xs + (UREAL)(LOG_ONE_BITS - LOG_SQRT_HALF_BITS);
    /* The biased exponent, as REAL: its bits under those of 2^MANT_BITS.
     * (Negative x and nan give garbage here, replaced at the end.) */
    const VR two_mant = vset(LOG_SUB_SCALE);
    const VR biased = (VR)(((ix >> MANT_BITS) & 0x7ff) | (VU)two_mant) - two_mant;
    const VR k = biased - (REAL)EXP_BIAS - vsel(sub, vset(MANT_BITS), vset(0));
    const VR m = (VR)((ix & (UREAL)LOG_MANT_MASK) + (UREAL)LOG_SQRT_HALF_BITS);
    const VR f = m - 1;
    const VR s = f / (f + 2);
    const VR z = s * s;
#if defined(CSM_TYPE_f64)
    static const REAL c[] = {0.14797471365040757, 0.1531390668048818,  0.18183569613751163,
                             0.22222198478245433, 0.285714287432424,   0.39999999999411173,
                             0.6666666666666735};
#else
    static const REAL c[] = {0.29873040318489075f, 0.399774968624115f, 0.6666677594184875f};
#endif
    VR p = vset(c[0]);
    for (size_t i = 1; i < sizeof c / sizeof c[0]; i++)
        p = vfma(p, z, vset(c[i]));
    const VR h = (REAL)0.5 * f * f;
    /* k ln2_hi + (f - (h - (s (h + z P) + k ln2_lo))) */
    const VR small = vfma(s, vfma(z, p, h), k * LN2_LO);
    const VR r = vfma(k, vset(LN2_HI), f - (h - small));
    const VR inf = vset(INFINITY);
    VR y = vsel(veq(x, inf), inf, r);
    y = vsel(veq(x, vset(0)), -inf, y);
    return vsel(vge(x, vset(0)), y, vset(NAN));
}

#endif
