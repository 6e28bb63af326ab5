/* matmul.c — kn_matmul's front end: picks the path for a weight type, batch size and ISA,
 * quantizes activations for the integer kernels, splits output rows over the thread pool, and
 * holds the scalar reference kernels that every SIMD path is tested against.
 *
 * Paths: F32 weights with n >= kn_sgemm_min_n() go to OpenBLAS sgemm; F32 with smaller n and
 * F16/BF16 use weft's float kernels (weights widened to f32 in registers); Q8_0/Q4_0 quantize
 * X once per call to int8 blocks (kn_qact) and run integer dot kernels. The per-ISA kernels
 * read each weight row once per call for all n X rows, so a batch of a few tokens costs about
 * the same memory traffic as one. */
#include <assert.h>
#include <immintrin.h>
#include <limits.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <math.h>
#include <string.h>

#include <cblas.h>

#include "kernels/kn_internal.h"

/* Below this many multiply-adds a matmul runs on the calling thread alone: waking the pool
 * costs more than it saves (the 260K-parameter test models are 64-wide). */
#define KN_MIN_PARALLEL_MACS (128 * 1024)
/* Activation bytes kept L2-resident per pass over the weights (see x_chunk_rows). */
#define KN_X_CHUNK_BYTES ((size_t)512 * 1024)
/* Rows handed to a thread come in multiples of this (kernels unroll over rows). */
#define KN_ROW_UNIT 16

/* ---- activation quantization ---- */

void kn_quantize_act_row(const float *x, int cols, int8_t *qs, float *d, float *dsum,
                         int32_t *asum) {
    for (int b = 0; b < cols / WEFT_QK; b++) {
        const float *xb = x + b * WEFT_QK;
        float amax = 0.0f;
        for (int j = 0; j < WEFT_QK; j++)
            amax = fmaxf(amax, fabsf(xb[j]));
        float db = amax / 127.0f;
        float id = db != 0.0f ? 1.0f / db : 0.0f;
        int sum = 0;
        for (int j = 0; j < WEFT_QK; j++) {
            int q = (int)nearbyintf(xb[j] * id); /* nearest-even, as cvtps2dq */
            qs[b * WEFT_QK + j] = (int8_t)q;
            sum += q;
        }
        d[b] = db;
        dsum[b] = db * (float)sum;
        asum[b] = sum;
    }
}

static size_t align64(size_t v) {
    return (v + 63) & ~(size_t)63;
}

static bool is_quant(weft_dtype t) {
    return t == WEFT_Q8_0 || t == WEFT_Q4_0;
}

size_t kn_matmul_scratch_bytes(const kn_matrix *W, int n) {
    if (!is_quant(W->type) || n <= 0) return 0;
    size_t nb = (size_t)W->cols / WEFT_QK;
    return 64 + (size_t)n * align64((size_t)W->cols) + 3 * (size_t)n * nb * sizeof(float);
}

/* ---- scalar reference kernels ---- */

static float load_float_elem(weft_dtype t, const uint8_t *row, int j) {
    switch (t) {
    case WEFT_F32: {
        float f;
        memcpy(&f, row + 4 * (size_t)j, sizeof f);
        return f;
    }
    case WEFT_F16:
        return kn_fp16_to_f32(kn_load_u16(row + 2 * (size_t)j));
    case WEFT_BF16:
        return kn_bf16_to_f32(kn_load_u16(row + 2 * (size_t)j));
    default:
        return 0.0f;
    }
}

void kn_mm_float_scalar(const kn_matrix *W, const float *X, int n, float *Y, int r0, int r1) {
    for (int r = r0; r < r1; r++) {
        const uint8_t *row = (const uint8_t *)W->data + (size_t)r * W->row_bytes;
        for (int x = 0; x < n; x++) {
            const float *xr = X + (size_t)x * W->cols;
            float acc = 0.0f;
            for (int j = 0; j < W->cols; j++)
                acc += load_float_elem(W->type, row, j) * xr[j];
            Y[(size_t)x * W->rows + r] = acc;
        }
    }
}

/* Integer dot of one weight block with 32 activation int8s, weights as signed values. */
static int block_dot_q8(const block_q8_0 *w, const int8_t *a) {
    int s = 0;
    for (int j = 0; j < WEFT_QK; j++)
        s += (int)w->qs[j] * a[j];
    return s;
}

static int block_dot_q4(const block_q4_0 *w, const int8_t *a) {
    int s = 0;
    for (int j = 0; j < WEFT_QK / 2; j++) {
        s += ((w->qs[j] & 0x0f) - 8) * a[j];
        s += ((w->qs[j] >> 4) - 8) * a[j + WEFT_QK / 2];
    }
    return s;
}

void kn_mm_quant_scalar(const kn_matrix *W, const kn_qact *A, int n, float *Y, int r0, int r1) {
    for (int r = r0; r < r1; r++) {
        const uint8_t *row = (const uint8_t *)W->data + (size_t)r * W->row_bytes;
        for (int x = 0; x < n; x++) {
            const int8_t *qa = A->qs + (size_t)x * A->qstride;
            const float *da = A->d + (size_t)x * A->nb;
            float acc = 0.0f;
            for (int b = 0; b < A->nb; b++) {
                int s;
                float dw;
                if (W->type == WEFT_Q8_0) {
                    const block_q8_0 *blk = (const block_q8_0 *)(row + (size_t)b * sizeof *blk);
                    dw = kn_fp16_to_f32(kn_load_u16(&blk->d));
                    s = block_dot_q8(blk, qa + b * WEFT_QK);
                } else {
                    const block_q4_0 *blk = (const block_q4_0 *)(row + (size_t)b * sizeof *blk);
                    dw = kn_fp16_to_f32(kn_load_u16(&blk->d));
                    s = block_dot_q4(blk, qa + b * WEFT_QK);
                }
                /* The canonical order every batch size and the VNNI kernel share
                 * (kn_internal.h): one float product of the scales, one fused multiply-add
                 * of the exact block sum, blocks in order. */
                acc = fmaf((float)s, dw * da[b], acc);
            }
            Y[(size_t)x * W->rows + r] = acc;
        }
    }
}

/* ---- dispatch ---- */

typedef struct {
    const kn_matrix *W;         /* the first of Ws (shared type and cols) */
    const kn_matrix *const *Ws; /* n_w matrices sharing X, outputs Ys */
    float *const *Ys;
    int n_w;
    const float *X;
    const kn_qact *A;
    int n;
    kn_mm_float_fn ffn;
    kn_mm_quant_fn qfn;
    int8_t *qs; /* activation quantization targets (quant phase) */
    float *d, *dsum;
    int32_t *asum;
    bool avx512_quant; /* AVX-512 quantizer (same values as the scalar one) */
    atomic_int quant_done; /* threads past the quantization phase (mm_quant_worker) */
    const kn_mm_fuse *fz;  /* kn_matmul_fused's extras, or NULL */
    atomic_int post_ready; /* threads past the epilogue (mm_post) */
} mm_job;

/* Contiguous share of [0, total) for thread ith, in multiples of unit. */
static void share(int total, int unit, int ith, int nth, int *lo, int *hi) {
    int units = (total + unit - 1) / unit;
    int per = units / nth, extra = units % nth;
    int u0 = ith * per + (ith < extra ? ith : extra);
    int u1 = u0 + per + (ith < extra ? 1 : 0);
    *lo = u0 * unit < total ? u0 * unit : total;
    *hi = u1 * unit < total ? u1 * unit : total;
}

/* X rows per pass over a thread's weight rows: as many as fit in KN_X_CHUNK_BYTES (about
 * half an L2), so the activations stay cache-resident while the weights stream past once
 * per chunk, i.e. once per call for n up to a few dozen at LLaMA widths. */
static int x_chunk_rows(size_t row_bytes) {
    size_t c = KN_X_CHUNK_BYTES / (row_bytes ? row_bytes : 1);
    c &= ~(size_t)3;
    return c < 4 ? 4 : c > INT32_MAX ? INT32_MAX : (int)c;
}

static void mm_one(mm_job *j, const kn_matrix *W, float *Y, int ith, int nth);

/* Spins until *c reaches want (a barrier of the threads of one job). */
static void spin_until(atomic_int *c, int want) {
    for (int spins = 0; atomic_load_explicit(c, memory_order_acquire) < want; spins++) {
        if (spins < 2000)
            _mm_pause();
        else
            sched_yield(); /* a descheduled peer (oversubscribed machine): give it the core */
    }
}

/* kn_matmul_fused's epilogue on this thread's own output rows (the same share as mm_one's:
 * swiglu's two matrices have one row count, so a thread holds the same rows of both), then,
 * after every thread has finished, the caller's post function. */
static void mm_post(mm_job *j, int ith, int nth) {
    const kn_mm_fuse *fz = j->fz;
    if (!fz) return;
    const kn_matrix *W = j->Ws[0];
    int r0, r1;
    share(W->rows, KN_ROW_UNIT, ith, nth, &r0, &r1);
    for (int x = 0; r0 < r1 && x < j->n; x++) {
        float *y = j->Ys[0] + (size_t)x * W->rows + r0;
        if (fz->residual) kn_add(fz->residual + (size_t)x * W->rows + r0, y, r1 - r0);
        if (fz->swiglu) kn_swiglu(y, j->Ys[1] + (size_t)x * W->rows + r0, r1 - r0);
    }
    if (!fz->post) return;
    atomic_fetch_add_explicit(&j->post_ready, 1, memory_order_acq_rel);
    spin_until(&j->post_ready, nth);
    fz->post(fz->post_ctx, ith, nth);
}

static void mm_worker(void *ctx, int ith, int nth) {
    mm_job *j = ctx;
    for (int w = 0; w < j->n_w; w++) mm_one(j, j->Ws[w], j->Ys[w], ith, nth);
    mm_post(j, ith, nth);
}

static void mm_one(mm_job *j, const kn_matrix *W, float *Y, int ith, int nth) {
    int r0, r1;
    share(W->rows, KN_ROW_UNIT, ith, nth, &r0, &r1);
    if (r0 >= r1) return;
    if (j->ffn) {
        int chunk = x_chunk_rows((size_t)W->cols * sizeof(float));
        for (int x0 = 0; x0 < j->n; x0 += chunk) {
            int nx = j->n - x0 < chunk ? j->n - x0 : chunk;
            j->ffn(W, j->X + (size_t)x0 * W->cols, nx, Y + (size_t)x0 * W->rows, r0, r1);
        }
    } else {
        int chunk = x_chunk_rows(j->A->qstride);
        for (int x0 = 0; x0 < j->n; x0 += chunk) {
            int nx = j->n - x0 < chunk ? j->n - x0 : chunk;
            kn_qact a = *j->A;
            a.qs += (size_t)x0 * a.qstride;
            a.d += (size_t)x0 * a.nb;
            a.dsum += (size_t)x0 * a.nb;
            a.asum += (size_t)x0 * a.nb;
            j->qfn(W, &a, nx, Y + (size_t)x0 * W->rows, r0, r1);
        }
    }
}

static void quant_worker(void *ctx, int ith, int nth) {
    mm_job *j = ctx;
    int x0, x1, cols = j->W->cols, nb = cols / WEFT_QK;
    share(j->n, 1, ith, nth, &x0, &x1);
    for (int x = x0; x < x1; x++) {
        const float *xr = j->X + (size_t)x * cols;
        if (j->fz && j->fz->norm_w) { /* kn_matmul_fused's prologue: this row's RMSNorm */
            float *o = j->fz->norm_out + (size_t)x * cols;
            kn_rmsnorm(o, xr, j->fz->norm_w, cols, j->fz->norm_eps);
            xr = o;
        }
        int8_t *qs = j->qs + (size_t)x * align64((size_t)cols);
        float *d = j->d + (size_t)x * nb, *ds = j->dsum + (size_t)x * nb;
        int32_t *as = j->asum + (size_t)x * nb;
        if (j->avx512_quant)
            kn_quantize_act_row_avx512(xr, cols, qs, d, ds, as);
        else
            kn_quantize_act_row(xr, cols, qs, d, ds, as);
    }
}

/* Quantization and the matmul in one pool dispatch: each thread quantizes its share of the X
 * rows, waits at a spin barrier until every share is done (every thread reads every row), then
 * runs its share of the weight rows. One wake-up per matmul instead of two (a tiny110m decode
 * step issues ~50 quantized matmul groups). */
static void mm_quant_worker(void *ctx, int ith, int nth) {
    mm_job *j = ctx;
    quant_worker(j, ith, nth);
    atomic_fetch_add_explicit(&j->quant_done, 1, memory_order_acq_rel);
    spin_until(&j->quant_done, nth);
    mm_worker(ctx, ith, nth);
}

/* The VNNI kernel's packed batched path runs for n >= this (bench_kernels 2 Q8_0/Q4_0, see
 * docs/kernels.md); WEFT_Q_BATCHED_MIN_N=N overrides it (N >= 1; "off" = never). Both paths
 * sum in the same order, so the choice changes speed, never results. */
#define KN_Q_BATCHED_MIN_N 8

static int q_batched_min_n(void) {
    const char *e = getenv("WEFT_Q_BATCHED_MIN_N");
    if (!e || !*e) return KN_Q_BATCHED_MIN_N;
    if (strcmp(e, "off") == 0) return INT_MAX;
    char *end;
    long v = strtol(e, &end, 10);
    return *end || v < 1 || v > INT_MAX ? KN_Q_BATCHED_MIN_N : (int)v;
}

/* Runs n_w matrices of one type and column count over the same X: one activation
 * quantization and one pool dispatch, each thread taking its share of every matrix's rows. */
static void mm_run(tp_pool *pool, const kn_matrix *const *Ws, int n_w, const float *X, int n,
                   float *const *Ys, void *scratch, const kn_mm_fuse *fz) {
    const kn_matrix *W0 = Ws[0];
    kn_isa isa = kn_isa_active();
    double macs = 0;
    for (int w = 0; w < n_w; w++) macs += (double)Ws[w]->rows * Ws[w]->cols * n;
    if (macs < KN_MIN_PARALLEL_MACS) pool = NULL;
    mm_job job = {.W = W0, .Ws = Ws, .Ys = Ys, .n_w = n_w, .X = X, .n = n, .fz = fz};
    atomic_init(&job.post_ready, 0);

    if (!is_quant(W0->type)) {
        assert(W0->type == WEFT_F32 || W0->type == WEFT_F16 || W0->type == WEFT_BF16);
        if (W0->type == WEFT_F32 && n >= kn_sgemm_min_n() && isa != KN_ISA_SCALAR) {
            for (int w = 0; w < n_w; w++) {
                const kn_matrix *W = Ws[w];
                assert(W->row_bytes >= (size_t)W->cols * 4);
                cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, n, W->rows, W->cols, 1.0f, X,
                            W->cols, (const float *)W->data, (int)(W->row_bytes / sizeof(float)),
                            0.0f, Ys[w], W->rows);
            }
            return;
        }
        for (int w = 0; w < n_w; w++)
            assert(Ws[w]->row_bytes >= (size_t)Ws[w]->cols * (W0->type == WEFT_F32 ? 4 : 2));
        job.ffn = isa == KN_ISA_AVX512 ? kn_mm_float_avx512
                  : isa == KN_ISA_AVX2 ? kn_mm_float_avx2
                                       : kn_mm_float_scalar;
        tp_run(pool, mm_worker, &job);
        return;
    }

    assert(W0->cols % WEFT_QK == 0 && scratch != NULL);
    for (int w = 0; w < n_w; w++)
        assert(Ws[w]->row_bytes >= (size_t)Ws[w]->cols / WEFT_QK *
                                       (W0->type == WEFT_Q8_0 ? sizeof(block_q8_0)
                                                              : sizeof(block_q4_0)));
    int nb = W0->cols / WEFT_QK;
    uint8_t *base = (uint8_t *)(((uintptr_t)scratch + 63) & ~(uintptr_t)63);
    job.qs = (int8_t *)base;
    job.d = (float *)(base + (size_t)n * align64((size_t)W0->cols));
    job.dsum = job.d + (size_t)n * nb;
    job.asum = (int32_t *)(job.dsum + (size_t)n * nb);
    bool vnni = isa == KN_ISA_AVX512 && kn_cpu_has_avx512_vnni();
    job.avx512_quant = vnni;
    atomic_init(&job.quant_done, 0);
    const char *fq = getenv("WEFT_MM_FUSED_QUANT");
    const bool fused_quant = n > 1 && pool && !(fq && strcmp(fq, "off") == 0);
    if (!fused_quant) {
        if (n == 1 || !pool)
            quant_worker(&job, 0, 1);
        else
            tp_run(pool, quant_worker, &job);
    }

    kn_qact act = {.qs = job.qs,
                   .d = job.d,
                   .dsum = job.dsum,
                   .asum = job.asum,
                   .cols = W0->cols,
                   .nb = nb,
                   .qstride = align64((size_t)W0->cols),
                   .packed_min_n = q_batched_min_n()};
    job.A = &act;
    job.qfn = vnni                 ? kn_mm_quant_avx512
              : isa >= KN_ISA_AVX2 ? kn_mm_quant_avx2
                                   : kn_mm_quant_scalar;
    tp_run(pool, fused_quant ? mm_quant_worker : mm_worker, &job);
}

void kn_matmul(tp_pool *pool, const kn_matrix *W, const float *X, int n, float *Y, void *scratch) {
    if (n <= 0 || W->rows <= 0) return;
    mm_run(pool, &W, 1, X, n, &Y, scratch, NULL);
}

/* Whether all n_w matrices have Ws[0]'s type and column count (so they can share one
 * activation quantization and one dispatch). */
static bool same_shape(const kn_matrix *const *Ws, int n_w) {
    for (int w = 1; w < n_w; w++)
        if (Ws[w]->type != Ws[0]->type || Ws[w]->cols != Ws[0]->cols) return false;
    return true;
}

/* Several matrices that read the same X (Q/K/V, or gate/up) share one dispatch when they have
 * one type and column count; otherwise each runs on its own. */
void kn_matmul_multi(tp_pool *pool, const kn_matrix *const *Ws, int n_w, const float *X, int n,
                     float *const *Ys, void *scratch) {
    if (n <= 0 || n_w <= 0) return;
    if (same_shape(Ws, n_w)) {
        mm_run(pool, Ws, n_w, X, n, Ys, scratch, NULL);
        return;
    }
    for (int w = 0; w < n_w; w++) kn_matmul(pool, Ws[w], X, n, Ys[w], scratch);
}

/* The prologue and epilogue ride in the quantized matmul's one dispatch: each thread
 * normalises and quantizes its share of the X rows, waits at the existing barrier, runs its
 * share of the weight rows, applies the epilogue to exactly those output rows, and (with a
 * post function) meets the others at a second barrier before running post. Every element
 * goes through the same functions as the unfused sequence (kn_rmsnorm, the quantizer,
 * kn_add, kn_swiglu), so the results are the same bits. Float weights, mixed matrices and
 * shapes the epilogue cannot split that way run the unfused sequence itself (so does
 * WEFT_MM_FUSE=off, for before/after measurements). */
void kn_matmul_fused(tp_pool *pool, const kn_matrix *const *Ws, int n_w, const float *X, int n,
                     float *const *Ys, void *scratch, const kn_mm_fuse *fz) {
    if (n <= 0 || n_w <= 0) return;
    if (!fz) {
        kn_matmul_multi(pool, Ws, n_w, X, n, Ys, scratch);
        return;
    }
    const bool same = same_shape(Ws, n_w);
    const bool split_ok = !fz->swiglu || (n_w == 2 && Ws[1]->rows == Ws[0]->rows);
    const char *e = getenv("WEFT_MM_FUSE"); /* "off": the unfused sequence (benchmarks) */
    if (same && split_ok && is_quant(Ws[0]->type) && Ws[0]->rows > 0 &&
        !(e && strcmp(e, "off") == 0)) {
        mm_run(pool, Ws, n_w, X, n, Ys, scratch, fz);
        return;
    }
    const int cols = Ws[0]->cols, rows = Ws[0]->rows;
    if (fz->norm_w) {
        for (int x = 0; x < n; x++)
            kn_rmsnorm(fz->norm_out + (size_t)x * cols, X + (size_t)x * cols, fz->norm_w, cols,
                       fz->norm_eps);
        X = fz->norm_out;
    }
    kn_matmul_multi(pool, Ws, n_w, X, n, Ys, scratch);
    if (fz->residual) kn_add(fz->residual, Ys[0], n * rows);
    if (fz->swiglu) kn_swiglu(Ys[0], Ys[1], n * rows);
    if (fz->post) tp_run(pool, fz->post, fz->post_ctx);
}

/* ---- one row as F32 (embedding lookup) ---- */

void kn_matrix_row_f32(const kn_matrix *W, int i, float *out) {
    const uint8_t *row = (const uint8_t *)W->data + (size_t)i * W->row_bytes;
    switch (W->type) {
    case WEFT_F32:
        memcpy(out, row, (size_t)W->cols * sizeof(float));
        return;
    case WEFT_F16:
    case WEFT_BF16:
        for (int j = 0; j < W->cols; j++)
            out[j] = load_float_elem(W->type, row, j);
        return;
    case WEFT_Q8_0:
        for (int b = 0; b < W->cols / WEFT_QK; b++) {
            const block_q8_0 *blk = (const block_q8_0 *)(row + (size_t)b * sizeof *blk);
            float d = kn_fp16_to_f32(kn_load_u16(&blk->d));
            for (int j = 0; j < WEFT_QK; j++)
                out[b * WEFT_QK + j] = d * (float)blk->qs[j];
        }
        return;
    case WEFT_Q4_0:
        for (int b = 0; b < W->cols / WEFT_QK; b++) {
            const block_q4_0 *blk = (const block_q4_0 *)(row + (size_t)b * sizeof *blk);
            float d = kn_fp16_to_f32(kn_load_u16(&blk->d));
            for (int j = 0; j < WEFT_QK / 2; j++) {
                out[b * WEFT_QK + j] = d * (float)((blk->qs[j] & 0x0f) - 8);
                out[b * WEFT_QK + j + WEFT_QK / 2] = d * (float)((blk->qs[j] >> 4) - 8);
            }
        }
        return;
    }
    assert(!"kn_matrix_row_f32: unsupported weight type");
}
