/*
 * dispatch.c - choose, once, the instruction set whose row kernels run.
 *
 * The best one that both this build and this CPU support is taken, unless
 * the environment variable CSOFTMAX_SIMD names a lower one ("generic",
 * "avx2", "avx512").  The choice is published with an atomic store, so
 * concurrent first calls agree.
 */
#include <stdlib.h>
#include <string.h>

#include "fused.h"

extern const csm_row_kernels csm_rows_generic_f32, csm_rows_generic_f64;
extern const csm_fused_kernels csm_fused_generic_f32, csm_fused_generic_f64;
#ifdef CSM_HAVE_X86_DISPATCH
extern const csm_row_kernels csm_rows_avx2_f32, csm_rows_avx2_f64;
extern const csm_row_kernels csm_rows_avx512_f32, csm_rows_avx512_f64;
extern const csm_fused_kernels csm_fused_avx2_f32, csm_fused_avx2_f64;
extern const csm_fused_kernels csm_fused_avx512_f32, csm_fused_avx512_f64;

static int cpu_has_avx2(void) {
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
}

static int cpu_has_avx512(void) {
    __builtin_cpu_init();
    return cpu_has_avx2() && __builtin_cpu_supports("avx512f") &&
           __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("avx512vl");
}
#endif

static int always(void) {
    return 1;
}

typedef struct {
    const char *name;
    const char *available; /* this one and all below it */
    const csm_row_kernels *kernels[2];
    const csm_fused_kernels *fused[2];
    int (*supported)(void);
} isa_entry;

/* Best first. */
static const isa_entry isas[] = {
#ifdef CSM_HAVE_X86_DISPATCH
    {"avx512", "avx512 avx2 generic", {&csm_rows_avx512_f32, &csm_rows_avx512_f64},
     {&csm_fused_avx512_f32, &csm_fused_avx512_f64}, cpu_has_avx512},
    {"avx2", "avx2 generic", {&csm_rows_avx2_f32, &csm_rows_avx2_f64},
     {&csm_fused_avx2_f32, &csm_fused_avx2_f64}, cpu_has_avx2},
#endif
    {"generic", "generic", {&csm_rows_generic_f32, &csm_rows_generic_f64},
     {&csm_fused_generic_f32, &csm_fused_generic_f64}, always},
};
#define N_ISAS (sizeof isas / sizeof isas[0])

static const isa_entry *active;

static const isa_entry *best_supported(size_t from) {
    for (size_t i = from; i < N_ISAS; i++)
        if (isas[i].supported())
            return &isas[i];
    return &isas[N_ISAS - 1];
}

static const isa_entry *choose(void) {
    const char *want = getenv("CSOFTMAX_SIMD");
    size_t from = 0;
    if (want)
        for (size_t i = 0; i < N_ISAS; i++)
            if (strcmp(want, isas[i].name) == 0)
                from = i;
    return best_supported(from);
}

static const isa_entry *current(void) {
    const isa_entry *e = __atomic_load_n(&active, __ATOMIC_ACQUIRE);
    if (!e) {
        e = choose();
        __atomic_store_n(&active, e, __ATOMIC_RELEASE);
    }
    return e;
}

const csm_row_kernels *csm_kernels(csm_dtype dtype) {
    return current()->kernels[dtype == CSM_FLOAT64];
}

const csm_fused_kernels *csm_fused(csm_dtype dtype) {
    return current()->fused[dtype == CSM_FLOAT64];
}

const char *csm_simd_name(void) {
    return current()->name;
}

const char *csm_simd_available(void) {
    return best_supported(0)->available;
}

int csm_set_simd(const char *name) {
    for (size_t i = 0; i < N_ISAS; i++)
        if (strcmp(name, isas[i].name) == 0 && isas[i].supported()) {
            __atomic_store_n(&active, &isas[i], __ATOMIC_RELEASE);
            return 0;
        }
    return -1;
}

const char *csm_compiler(void) {
#ifdef CSM_COMPILER
    return CSM_COMPILER;
#else
    return "unknown";
#endif
}
