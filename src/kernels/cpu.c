/* cpu.c — owns the one piece of global mutable state in the kernels: which instruction set
 * the kernels use. The CPU's features are probed once (cpuid + xgetbv, so a level only counts
 * when the OS also saves its registers); the active level starts as the best detected one,
 * lowered by WEFT_ISA=scalar|avx2|avx512, and can be forced by kn_isa_set (tests, benches). */
#include <cpuid.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cblas.h>

#include "kernels/kn_internal.h"

/* Written once under g_once (features), then read-only; g_active is the owned selection. */
static pthread_once_t g_once = PTHREAD_ONCE_INIT;
static kn_isa g_detected = KN_ISA_SCALAR;
static bool g_vnni = false;
static _Atomic int g_active = KN_ISA_SCALAR;
static _Atomic int g_sgemm_min_n = 128;

/* Smallest F32 batch that goes to OpenBLAS sgemm instead of weft's own float kernel.
 * Measured on Zen 5 (bench_core prefill of tiny110m, 128 tokens, same run): Debian's OpenBLAS
 * 0.3.21 does not know this CPU and runs its AVX2 "Haswell" sgemm, which is ~1.7x slower than
 * weft's AVX-512 kernel (982-1071 vs 1634-1877 tok/s); with AVX-512 kernels (SkylakeX and later
 * core types, e.g. OPENBLAS_CORETYPE=SkylakeX) sgemm wins from n ~ 64-128. So: when weft runs
 * AVX-512 but OpenBLAS does not, only very large batches go to sgemm. WEFT_SGEMM_MIN_N overrides. */
static int default_sgemm_min_n(kn_isa level) {
    const char *env = getenv("WEFT_SGEMM_MIN_N");
    if (env && *env) {
        char *end;
        long v = strtol(env, &end, 10);
        if (*end == 0 && v >= 1 && v <= (1 << 30)) return (int)v;
        fprintf(stderr, "weft: ignoring invalid WEFT_SGEMM_MIN_N=%s\n", env);
    }
    const char *core = openblas_get_corename();
    bool blas_avx512 = core && (strcasestr(core, "skylakex") || strcasestr(core, "cooperlake") ||
                                strcasestr(core, "sapphire"));
    return level == KN_ISA_AVX512 && !blas_avx512 ? 4096 : 128;
}

static uint64_t xgetbv0(void) {
    uint32_t lo, hi;
    __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
    return ((uint64_t)hi << 32) | lo;
}

static void detect(void) {
    unsigned a, b, c, d;
    kn_isa level = KN_ISA_SCALAR;
    if (__get_cpuid(1, &a, &b, &c, &d)) {
        bool osxsave = c & (1u << 27), avx = c & (1u << 28);
        bool fma = c & (1u << 12), f16c = c & (1u << 29);
        uint64_t xcr0 = osxsave ? xgetbv0() : 0;
        bool os_avx = (xcr0 & 0x6) == 0x6;      /* XMM + YMM state */
        bool os_avx512 = (xcr0 & 0xe6) == 0xe6; /* + opmask, ZMM_Hi256, Hi16_ZMM */
        unsigned b7 = 0, c7 = 0;
        if (__get_cpuid_count(7, 0, &a, &b7, &c7, &d)) {
            bool avx2 = b7 & (1u << 5);
            bool f = b7 & (1u << 16), dq = b7 & (1u << 17);
            bool bw = b7 & (1u << 30), vl = b7 & (1u << 31);
            if (avx && fma && f16c && avx2 && os_avx) {
                level = KN_ISA_AVX2;
                if (f && dq && bw && vl && os_avx512) {
                    level = KN_ISA_AVX512;
                    g_vnni = c7 & (1u << 11);
                }
            }
        }
    }
    g_detected = level;
    atomic_store(&g_sgemm_min_n, default_sgemm_min_n(level));
    kn_isa active = level;
    const char *env = getenv("WEFT_ISA");
    if (env && *env) {
        if (!strcmp(env, "scalar"))
            active = KN_ISA_SCALAR;
        else if (!strcmp(env, "avx2"))
            active = KN_ISA_AVX2;
        else if (!strcmp(env, "avx512"))
            active = KN_ISA_AVX512;
        else
            fprintf(stderr, "weft: ignoring unknown WEFT_ISA=%s\n", env);
        if (active > level) active = level;
    }
    atomic_store(&g_active, (int)active);
}

static void ensure_detected(void) {
    if (pthread_once(&g_once, detect) != 0) abort(); /* cannot happen with a valid once */
}

kn_isa kn_isa_detected(void) {
    ensure_detected();
    return g_detected;
}

kn_isa kn_isa_active(void) {
    ensure_detected();
    return (kn_isa)atomic_load_explicit(&g_active, memory_order_relaxed);
}

void kn_isa_set(kn_isa isa) {
    ensure_detected();
    if (isa < KN_ISA_SCALAR) isa = KN_ISA_SCALAR;
    if (isa > g_detected) isa = g_detected;
    atomic_store(&g_active, (int)isa);
}

bool kn_cpu_has_avx512_vnni(void) {
    ensure_detected();
    return g_vnni;
}

const char *kn_isa_name(kn_isa isa) {
    switch (isa) {
    case KN_ISA_SCALAR:
        return "scalar";
    case KN_ISA_AVX2:
        return "avx2";
    case KN_ISA_AVX512:
        return "avx512";
    }
    return "?";
}

int kn_sgemm_min_n(void) {
    ensure_detected();
    return atomic_load_explicit(&g_sgemm_min_n, memory_order_relaxed);
}

void kn_sgemm_min_n_set(int n) {
    ensure_detected();
    atomic_store(&g_sgemm_min_n, n < 1 ? 1 : n);
}
