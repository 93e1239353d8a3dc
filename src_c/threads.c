/* threads.c - how many threads the kernels use, and when to use them. */
#include "kernels.h"

#ifdef _OPENMP
#include <omp.h>
#endif

/* Starting a thread team costs a microsecond or two while its threads are
 * still spinning from the last region, far more once they sleep; below
 * about 5 us of work per thread (16K elements of long rows), fewer threads
 * finish sooner, and a team of idle spinners is not worth waking.  A row
 * costs about ROW_OVERHEAD elements on top of q: little, now that short rows
 * go W at a time (a q = 10 row takes about as long as 14 elements of a long
 * one), so a thread takes at least about 1200 rows of 10. */
#define MIN_WORK_PER_THREAD 16384
#define ROW_OVERHEAD 4

static int requested_threads; /* 0: OpenMP's default */

int csm_openmp_enabled(void) {
#ifdef _OPENMP
    return 1;
#else
    return 0;
#endif
}

/* The count set here, lowered by the calling thread's OpenMP limit: that is
 * what threadpoolctl.threadpool_limits(user_api="openmp") sets, so tools
 * that tame every library's threads tame these too. */
int csm_get_num_threads(void) {
#ifdef _OPENMP
    int n = __atomic_load_n(&requested_threads, __ATOMIC_RELAXED);
    int limit = omp_get_max_threads();
    return n > 0 && n < limit ? n : limit;
#else
    return 1;
#endif
}

/* Also raises (or lowers) the calling thread's OpenMP limit, so that n above
 * the default (the core count) is not capped on this thread. */
void csm_set_num_threads(int n) {
    n = n < 1 ? 1 : n;
    __atomic_store_n(&requested_threads, n, __ATOMIC_RELAXED);
#ifdef _OPENMP
    omp_set_num_threads(n);
#endif
}

int csm_threads_for(ptrdiff_t rows, ptrdiff_t q) {
    int nt = csm_get_num_threads();
    if (nt <= 1 || rows <= 1)
        return 1;
    double work = (double)rows * (double)(q + ROW_OVERHEAD);
    double useful = work / MIN_WORK_PER_THREAD;
    if (useful < nt)
        nt = useful < 1 ? 1 : (int)useful;
    if (nt > rows)
        nt = (int)rows;
    return nt;
}
