/*
 * strided.h - private: splitting rows among threads, and copying a strided
 * row to and from a contiguous buffer.
 * Shared by the drivers softmax.c and cross_entropy.c.
 */
#ifndef CSM_STRIDED_H
#define CSM_STRIDED_H

#include <string.h>

#include "kernels.h"

#ifdef _OPENMP
#include <omp.h>
#define CSM_THREAD_ID() omp_get_thread_num()
#define CSM_TEAM_SIZE() omp_get_num_threads()
#else
#define CSM_THREAD_ID() 0
#define CSM_TEAM_SIZE() 1
#endif

/* The contiguous share [*begin, *end) of `count` items for thread t of nt:
 * a fixed split, so each item is always handled the same way. */
static inline void csm_share(ptrdiff_t count, int t, int nt, ptrdiff_t *begin, ptrdiff_t *end) {
    *begin = count * t / nt;
    *end = count * (t + 1) / nt;
}

/* Is a row with this element stride contiguous? */
static inline int csm_unit_stride(ptrdiff_t stride, ptrdiff_t q) {
    return stride == 1 || q <= 1;
}

/* dst[k] = src[k * stride] for k < q (stride in elements). */
static inline void csm_gather(const char *src, ptrdiff_t stride, char *dst, ptrdiff_t q, size_t es) {
    if (es == sizeof(double))
        for (ptrdiff_t k = 0; k < q; k++)
            memcpy(dst + k * 8, src + k * stride * 8, 8);
    else
        for (ptrdiff_t k = 0; k < q; k++)
            memcpy(dst + k * 4, src + k * stride * 4, 4);
}

static inline void csm_scatter(const char *src, char *dst, ptrdiff_t stride, ptrdiff_t q, size_t es) {
    if (es == sizeof(double))
        for (ptrdiff_t k = 0; k < q; k++)
            memcpy(dst + k * stride * 8, src + k * 8, 8);
    else
        for (ptrdiff_t k = 0; k < q; k++)
            memcpy(dst + k * stride * 4, src + k * 4, 4);
}

static inline void csm_store_real(char *p, csm_dtype dtype, double v) {
    if (dtype == CSM_FLOAT64)
        memcpy(p, &v, sizeof v);
    else {
        float f = (float)v;
        memcpy(p, &f, sizeof f);
    }
}

#endif
