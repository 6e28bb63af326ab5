/* test_gguf.c — the GGUF reader and writer: a real file from ../shared, a write-then-read round
 * trip of every metadata type and tensor dtype, hand-made corrupt files that must each be
 * refused with their own message, and a sweep over every truncation of a valid file. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "support/testutil.h"
#include "weft/dtype.h"
#include "weft/gguf.h"

/* ---- a byte builder for hand-made files ---- */

typedef struct buf {
    uint8_t *p;
    size_t n, cap;
} buf;

static void b_bytes(buf *b, const void *src, size_t n) {
    if (b->n + n > b->cap) {
        b->cap = (b->n + n) * 2 + 64;
        b->p = realloc(b->p, b->cap);
        assert_non_null(b->p);
    }
    memcpy(b->p + b->n, src, n);
    b->n += n;
}
static void b_u8(buf *b, uint8_t v) {
    b_bytes(b, &v, 1);
}
static void b_u32(buf *b, uint32_t v) {
    b_bytes(b, &v, 4);
}
static void b_u64(buf *b, uint64_t v) {
    b_bytes(b, &v, 8);
}
static void b_str(buf *b, const char *s) {
    b_u64(b, strlen(s));
    b_bytes(b, s, strlen(s));
}
static void b_header(buf *b, uint32_t version, uint64_t n_tensors, uint64_t n_kv) {
    b_bytes(b, "GGUF", 4);
    b_u32(b, version);
    b_u64(b, n_tensors);
    b_u64(b, n_kv);
}
static void b_kv_u32(buf *b, const char *key, uint32_t v) {
    b_str(b, key);
    b_u32(b, GGUF_TYPE_UINT32);
    b_u32(b, v);
}
static void b_tensor(buf *b, const char *name, uint32_t n_dims, const uint64_t *ne, uint32_t type,
                     uint64_t offset) {
    b_str(b, name);
    b_u32(b, n_dims);
    for (uint32_t d = 0; d < n_dims; d++)
        b_u64(b, ne[d]);
    b_u32(b, type);
    b_u64(b, offset);
}
static void b_pad(buf *b, size_t align) {
    while (b->n % align)
        b_u8(b, 0);
}
static void b_zeros(buf *b, size_t n) {
    for (size_t i = 0; i < n; i++)
        b_u8(b, 0);
}

/* Opens b from an exact-size heap copy (so ASan sees any over-read) and expects refusal with a
 * message containing want. */
static void expect_refused(buf *b, const char *want) {
    uint8_t *copy = malloc(b->n ? b->n : 1);
    assert_non_null(copy);
    memcpy(copy, b->p, b->n);
    weft_err err = {{0}};
    gguf_file *f = gguf_open_memory(copy, b->n, &err);
    if (f || !strstr(err.msg, want)) {
        fprintf(stdout, "expected refusal containing \"%s\", got %s: \"%s\"\n", want,
                f ? "success" : "error", err.msg);
        gguf_close(f);
    }
    assert_null(f);
    assert_non_null(strstr(err.msg, want));
    free(copy);
    free(b->p);
    memset(b, 0, sizeof *b);
}

/* ---- real file ---- */

static void test_stories260k(void **state) {
    (void)state;
    TU_SHARED_OR_SKIP(path, "models/stories260K.gguf");
    weft_err err = {{0}};
    gguf_file *f = gguf_open(path, &err);
    if (!f) fprintf(stdout, "open failed: %s\n", err.msg);
    assert_non_null(f);
    assert_int_equal(gguf_version(f), 3);
    assert_string_equal(gguf_get_str(f, "general.architecture"), "llama");
    assert_int_equal(gguf_tensor_count(f), 48);
    uint32_t dim = 0;
    assert_true(gguf_get_u32(f, "llama.embedding_length", &dim));
    assert_int_equal(dim, 64);
    gguf_type et;
    uint64_t n;
    assert_true(gguf_get_arr_info(f, "tokenizer.ggml.tokens", &et, &n));
    assert_int_equal(et, GGUF_TYPE_STRING);
    assert_int_equal(n, 512);
    assert_string_equal(gguf_get_arr_str(f, "tokenizer.ggml.tokens", 1), "<s>");
    const gguf_tensor *t = gguf_find_tensor(f, "token_embd.weight");
    assert_non_null(t);
    assert_int_equal(t->ne[0], 64);
    assert_int_equal(t->ne[1], 512);
    assert_int_equal(t->type, WEFT_F32);
    assert_int_equal((uintptr_t)t->data % 32, 0);
    float eps = 0;
    assert_true(gguf_get_f32(f, "llama.attention.layer_norm_rms_epsilon", &eps));
    assert_true(eps > 0.9e-5f && eps < 1.1e-5f);
    assert_null(gguf_find_tensor(f, "nope"));
    assert_int_equal(gguf_find_key(f, "nope"), -1);
    gguf_close(f);
}

/* ---- round trip ---- */

/* A hand-made file holding one key of every scalar type and an array of every element type. */
static void build_all_types(buf *b) {
    b_header(b, 3, 0, 25);
    const struct {
        const char *key;
        gguf_type t;
        uint64_t v;
    } scalars[] = {
        {"s.u8", GGUF_TYPE_UINT8, 200},
        {"s.i8", GGUF_TYPE_INT8, (uint8_t)-100},
        {"s.u16", GGUF_TYPE_UINT16, 60000},
        {"s.i16", GGUF_TYPE_INT16, (uint16_t)-30000},
        {"s.u32", GGUF_TYPE_UINT32, 4000000000u},
        {"s.i32", GGUF_TYPE_INT32, (uint32_t)-7},
        {"s.u64", GGUF_TYPE_UINT64, 1ull << 60},
        {"s.i64", GGUF_TYPE_INT64, (uint64_t)-5},
        {"s.bool", GGUF_TYPE_BOOL, 1},
    };
    size_t sizes[] = {1, 1, 2, 2, 4, 4, 8, 8, 1};
    for (size_t i = 0; i < 9; i++) {
        b_str(b, scalars[i].key);
        b_u32(b, scalars[i].t);
        b_bytes(b, &scalars[i].v, sizes[i]);
    }
    float f32 = 1.5f;
    double f64 = -2.25;
    b_str(b, "s.f32");
    b_u32(b, GGUF_TYPE_FLOAT32);
    b_bytes(b, &f32, 4);
    b_str(b, "s.f64");
    b_u32(b, GGUF_TYPE_FLOAT64);
    b_bytes(b, &f64, 8);
    b_str(b, "s.str");
    b_u32(b, GGUF_TYPE_STRING);
    b_str(b, "hello \xe2\x96\x81 world");
    /* Arrays: 12 element types (all but ARRAY), three elements each. */
    for (uint32_t et = 0; et <= GGUF_TYPE_FLOAT64; et++) {
        if (et == GGUF_TYPE_ARRAY) continue;
        char key[32];
        snprintf(key, sizeof key, "a.%u", et);
        b_str(b, key);
        b_u32(b, GGUF_TYPE_ARRAY);
        b_u32(b, et);
        b_u64(b, 3);
        for (int k = 0; k < 3; k++) {
            if (et == GGUF_TYPE_STRING) {
                b_str(b, k == 0 ? "" : k == 1 ? "x" : "yz");
            } else if (et == GGUF_TYPE_FLOAT32) {
                float v = 0.5f * (float)k;
                b_bytes(b, &v, 4);
            } else if (et == GGUF_TYPE_FLOAT64) {
                double v = 0.25 * k;
                b_bytes(b, &v, 8);
            } else {
                uint64_t v = (uint64_t)k;
                size_t sz = et <= 1 || et == GGUF_TYPE_BOOL ? 1 : et <= 3 ? 2 : et <= 5 ? 4 : 8;
                b_bytes(b, &v, sz);
            }
        }
    }
    /* 9 + 3 + 12 = 24 so far; one empty array makes 25. */
    b_str(b, "a.empty");
    b_u32(b, GGUF_TYPE_ARRAY);
    b_u32(b, GGUF_TYPE_INT32);
    b_u64(b, 0);
}

static void check_all_types(const gguf_file *f) {
    assert_int_equal(gguf_kv_count(f), 25);
    uint32_t u;
    int64_t i;
    float x;
    bool bo;
    assert_true(gguf_get_u32(f, "s.u8", &u));
    assert_int_equal(u, 200);
    assert_true(gguf_get_i64(f, "s.i8", &i));
    assert_int_equal(i, -100);
    assert_false(gguf_get_u32(f, "s.i8", &u)); /* negative: not representable */
    assert_true(gguf_get_u32(f, "s.u16", &u));
    assert_int_equal(u, 60000);
    assert_true(gguf_get_i64(f, "s.i16", &i));
    assert_int_equal(i, -30000);
    assert_true(gguf_get_u32(f, "s.u32", &u));
    assert_int_equal(u, 4000000000u);
    assert_true(gguf_get_i64(f, "s.i32", &i));
    assert_int_equal(i, -7);
    assert_false(gguf_get_u32(f, "s.u64", &u)); /* out of range */
    assert_true(gguf_get_i64(f, "s.u64", &i));
    assert_true(i == (int64_t)(1ull << 60));
    assert_true(gguf_get_i64(f, "s.i64", &i));
    assert_int_equal(i, -5);
    assert_true(gguf_get_bool(f, "s.bool", &bo));
    assert_true(bo);
    assert_false(gguf_get_u32(f, "s.bool", &u));
    assert_true(gguf_get_f32(f, "s.f32", &x));
    assert_true(x == 1.5f);
    assert_true(gguf_get_f32(f, "s.f64", &x));
    assert_true(x == -2.25f);
    assert_false(gguf_get_f32(f, "s.u32", &x));
    assert_string_equal(gguf_get_str(f, "s.str"), "hello \xe2\x96\x81 world");
    assert_null(gguf_get_str(f, "s.u32"));
    for (uint32_t et = 0; et <= GGUF_TYPE_FLOAT64; et++) {
        if (et == GGUF_TYPE_ARRAY) continue;
        char key[32];
        snprintf(key, sizeof key, "a.%u", et);
        gguf_type got;
        uint64_t n;
        assert_true(gguf_get_arr_info(f, key, &got, &n));
        assert_int_equal(got, et);
        assert_int_equal(n, 3);
        if (et == GGUF_TYPE_STRING) {
            assert_string_equal(gguf_get_arr_str(f, key, 0), "");
            assert_string_equal(gguf_get_arr_str(f, key, 2), "yz");
            assert_null(gguf_get_arr_str(f, key, 3));
        } else {
            double v;
            assert_true(gguf_get_arr_num(f, key, 2, &v));
            /* Elements are 0,1,2 scaled per type; the bool array is patched to 0,1,1. */
            double want = et == GGUF_TYPE_FLOAT32   ? 1.0
                          : et == GGUF_TYPE_FLOAT64 ? 0.5
                          : et == GGUF_TYPE_BOOL    ? 1.0
                                                    : 2.0;
            assert_true(v == want);
            assert_false(gguf_get_arr_num(f, key, 3, &v));
        }
    }
    gguf_type et;
    uint64_t n = 99;
    assert_true(gguf_get_arr_info(f, "a.empty", &et, &n));
    assert_int_equal(n, 0);
}

static void test_all_types_roundtrip(void **state) {
    (void)state;
    buf b = {0};
    build_all_types(&b);
    /* The bool array was written as 0,1,2; make its last element 1 to stay valid. */
    weft_err err = {{0}};
    gguf_file *f = gguf_open_memory(b.p, b.n, &err);
    assert_null(f);
    assert_non_null(strstr(err.msg, "bool array element 2 has value 2"));
    /* Patch: find "a.7" array's third byte and set it to 1. */
    uint8_t *key = memmem(b.p, b.n, "a.7", 3);
    assert_non_null(key);
    key[3 + 4 + 4 + 8 + 2] = 1;
    f = gguf_open_memory(b.p, b.n, &err);
    if (!f) fprintf(stdout, "%s\n", err.msg);
    assert_non_null(f);
    check_all_types(f);

    /* Copy every key through the writer and read the result back. */
    gguf_writer *w = gguf_writer_new();
    assert_non_null(w);
    for (size_t i = 0; i < gguf_kv_count(f); i++)
        assert_int_equal(gguf_writer_copy_kv(w, f, i), 0);
    char path[4096];
    tu_scratch("gguf-alltypes.gguf", path, sizeof path);
    assert_int_equal(gguf_writer_write(w, path, &err), 0);
    gguf_writer_free(w);
    gguf_file *g = gguf_open(path, &err);
    if (!g) fprintf(stdout, "%s\n", err.msg);
    assert_non_null(g);
    check_all_types(g);
    for (size_t i = 0; i < gguf_kv_count(f); i++) {
        assert_string_equal(gguf_kv_key(f, i), gguf_kv_key(g, i));
        assert_int_equal(gguf_kv_type(f, i), gguf_kv_type(g, i));
    }
    gguf_close(g);
    gguf_close(f);
    free(b.p);
}

static int fill_pattern(void *ctx, const char *name, void *dst, uint64_t nbytes) {
    (void)ctx;
    uint8_t *d = dst;
    for (uint64_t i = 0; i < nbytes; i++)
        d[i] = (uint8_t)(i * 7 + (uint8_t)name[0] + strlen(name));
    return 0;
}

static int fill_fails(void *ctx, const char *name, void *dst, uint64_t nbytes) {
    (void)ctx, (void)name, (void)dst, (void)nbytes;
    return -1;
}

static void test_writer_tensors_every_dtype(void **state) {
    (void)state;
    gguf_writer *w = gguf_writer_new();
    assert_non_null(w);
    assert_int_equal(gguf_writer_set_str(w, "general.architecture", "llama"), 0);
    assert_int_equal(gguf_writer_set_u32(w, "k.u32", 7), 0);
    assert_int_equal(gguf_writer_set_u32(w, "k.u32", 8), 0); /* replaces */
    assert_int_equal(gguf_writer_set_i32(w, "k.i32", -3), 0);
    assert_int_equal(gguf_writer_set_f32(w, "k.f32", 0.125f), 0);
    assert_int_equal(gguf_writer_set_bool(w, "k.bool", false), 0);
    const char *strs[] = {"a", "", "\xe2\x96\x81the"};
    float fl[] = {1, -2, 3.5f};
    int32_t in[] = {-1, 0, 1 << 30};
    assert_int_equal(gguf_writer_set_arr_str(w, "k.strs", strs, 3), 0);
    assert_int_equal(gguf_writer_set_arr_f32(w, "k.f32s", fl, 3), 0);
    assert_int_equal(gguf_writer_set_arr_i32(w, "k.i32s", in, 3), 0);
    const uint32_t types[] = {WEFT_F32, WEFT_F16, WEFT_BF16, WEFT_Q8_0, WEFT_Q4_0};
    const char *names[] = {"t.f32", "t.f16", "t.bf16", "t.q8_0", "t.q4_0"};
    for (int i = 0; i < 5; i++) {
        uint64_t ne[3] = {64, 3, 2};
        assert_int_equal(
            gguf_writer_add_tensor(w, names[i], i == 0 ? 1 : 3, ne, types[i], fill_pattern, NULL),
            0);
    }
    char path[4096];
    tu_scratch("gguf-dtypes.gguf", path, sizeof path);
    weft_err err = {{0}};
    assert_int_equal(gguf_writer_write(w, path, &err), 0);
    gguf_writer_free(w);

    gguf_file *f = gguf_open(path, &err);
    if (!f) fprintf(stdout, "%s\n", err.msg);
    assert_non_null(f);
    assert_int_equal(gguf_version(f), 3);
    assert_int_equal(gguf_alignment(f), 32);
    uint32_t u;
    int64_t i64;
    float x;
    bool bo = true;
    assert_true(gguf_get_u32(f, "k.u32", &u));
    assert_int_equal(u, 8);
    assert_true(gguf_get_i64(f, "k.i32", &i64));
    assert_int_equal(i64, -3);
    assert_true(gguf_get_f32(f, "k.f32", &x));
    assert_true(x == 0.125f);
    assert_true(gguf_get_bool(f, "k.bool", &bo));
    assert_false(bo);
    assert_string_equal(gguf_get_arr_str(f, "k.strs", 2), "\xe2\x96\x81the");
    double d;
    assert_true(gguf_get_arr_num(f, "k.f32s", 2, &d));
    assert_true(d == 3.5);
    assert_true(gguf_get_arr_num(f, "k.i32s", 2, &d));
    assert_true(d == (double)(1 << 30));
    assert_int_equal(gguf_tensor_count(f), 5);
    for (int i = 0; i < 5; i++) {
        const gguf_tensor *t = gguf_tensor_at(f, (size_t)i);
        assert_string_equal(t->name, names[i]);
        assert_int_equal(t->type, types[i]);
        size_t rows = i == 0 ? 1 : 6;
        assert_int_equal(t->nbytes, dtype_row_bytes(types[i], 64) * rows);
        assert_int_equal(t->offset % 32, 0);
        assert_int_equal((gguf_data_offset(f) + t->offset) % 32, 0);
        assert_int_equal((uintptr_t)t->data % 32, 0); /* the mapping is page-aligned */
        uint8_t *want = malloc(t->nbytes);
        assert_non_null(want);
        fill_pattern(NULL, t->name, want, t->nbytes);
        assert_memory_equal(t->data, want, t->nbytes);
        free(want);
        assert_ptr_equal(gguf_find_tensor(f, names[i]), t);
    }
    gguf_close(f);

    /* Writer failures are reported with their own message. */
    w = gguf_writer_new();
    uint64_t ne[1] = {33};
    assert_int_equal(gguf_writer_add_tensor(w, "bad", 1, ne, WEFT_Q8_0, fill_pattern, NULL), -1);
    assert_int_equal(gguf_writer_write(w, path, &err), -1);
    assert_non_null(strstr(err.msg, "not a multiple of its block size"));
    gguf_writer_free(w);
    w = gguf_writer_new();
    ne[0] = 32;
    assert_int_equal(gguf_writer_add_tensor(w, "x", 1, ne, WEFT_F32, fill_pattern, NULL), 0);
    assert_int_equal(gguf_writer_add_tensor(w, "x", 1, ne, WEFT_F32, fill_pattern, NULL), -1);
    gguf_writer_free(w);
    w = gguf_writer_new();
    assert_int_equal(gguf_writer_add_tensor(w, "y", 1, ne, WEFT_F32, fill_fails, NULL), 0);
    char path2[4096];
    tu_scratch("gguf-fail.gguf", path2, sizeof path2);
    assert_int_equal(gguf_writer_write(w, path2, &err), -1);
    assert_non_null(strstr(err.msg, "producing data for tensor 'y' failed"));
    gguf_writer_free(w);
}

/* ---- corrupt files ---- */

static const uint64_t NE_64[1] = {64};

/* A valid file: two keys, two F32 tensors of 64 elements. */
static void build_valid(buf *b) {
    b_header(b, 3, 2, 2);
    b_kv_u32(b, "general.alignment", 32);
    b_str(b, "general.architecture");
    b_u32(b, GGUF_TYPE_STRING);
    b_str(b, "llama");
    b_tensor(b, "a", 1, NE_64, WEFT_F32, 0);
    b_tensor(b, "b", 1, NE_64, WEFT_F32, 256);
    b_pad(b, 32);
    b_zeros(b, 512);
}

static void test_valid_baseline(void **state) {
    (void)state;
    buf b = {0};
    build_valid(&b);
    weft_err err = {{0}};
    gguf_file *f = gguf_open_memory(b.p, b.n, &err);
    if (!f) fprintf(stdout, "%s\n", err.msg);
    assert_non_null(f);
    assert_int_equal(gguf_tensor_count(f), 2);
    gguf_close(f);
    free(b.p);
}

static void test_corrupt_header(void **state) {
    (void)state;
    buf b = {0};
    b_bytes(&b, "GGML", 4);
    b_u32(&b, 3);
    expect_refused(&b, "not a GGUF file (bad magic");

    b_bytes(&b, "GG", 2);
    expect_refused(&b, "too small for the magic");

    b_header(&b, 1, 0, 0);
    expect_refused(&b, "version 1 is not supported");

    b_header(&b, 7, 0, 0);
    expect_refused(&b, "unsupported GGUF version 7");

    b_header(&b, 0x03000000u, 0, 0);
    expect_refused(&b, "big-endian");

    b_header(&b, 3, 0, 70000);
    expect_refused(&b, "metadata kv count 70000 exceeds the limit of 65536");

    b_header(&b, 3, 70000, 0);
    expect_refused(&b, "tensor count 70000 exceeds the limit of 65536");

    b_header(&b, 3, 0, 1000);
    b_kv_u32(&b, "x", 1);
    expect_refused(&b, "1000 metadata entries cannot fit");

    b_header(&b, 3, 1000, 0);
    expect_refused(&b, "1000 tensor infos cannot fit");

    b_bytes(&b, "GGUF", 4);
    b_u32(&b, 3);
    b_u64(&b, 0);
    expect_refused(&b, "metadata kv count at offset 16 needs 8 bytes but only 0 remain");
}

static void test_corrupt_metadata(void **state) {
    (void)state;
    buf b = {0};
    b_header(&b, 3, 0, 1);
    b_u64(&b, 1ull << 40);
    b_zeros(&b, 64);
    expect_refused(&b, "key of metadata entry #0: string length 1099511627776 exceeds the limit");

    b_header(&b, 3, 0, 1);
    b_u64(&b, 100);
    b_bytes(&b, "abc", 3);
    b_zeros(&b, 10);
    expect_refused(&b, "string of 100 bytes at offset 32 but only 13 remain");

    b_header(&b, 3, 0, 1);
    b_str(&b, "arr");
    b_u32(&b, GGUF_TYPE_ARRAY);
    b_u32(&b, GGUF_TYPE_UINT32);
    b_u64(&b, 1ull << 40);
    expect_refused(&b, "key 'arr' array has 1099511627776 elements (limit 16777216)");

    b_header(&b, 3, 0, 1);
    b_str(&b, "arr");
    b_u32(&b, GGUF_TYPE_ARRAY);
    b_u32(&b, GGUF_TYPE_UINT64);
    b_u64(&b, 1u << 20);
    b_zeros(&b, 16);
    expect_refused(&b, "key 'arr' array of 1048576 UINT64 needs at least 8388608 bytes");

    b_header(&b, 3, 0, 1);
    b_str(&b, "strs");
    b_u32(&b, GGUF_TYPE_ARRAY);
    b_u32(&b, GGUF_TYPE_STRING);
    b_u64(&b, 2);
    b_str(&b, "ok");
    b_u64(&b, 5000);
    b_zeros(&b, 4);
    expect_refused(&b, "string #1 of array: string of 5000 bytes");

    b_header(&b, 3, 0, 1);
    b_str(&b, "nest");
    b_u32(&b, GGUF_TYPE_ARRAY);
    b_u32(&b, GGUF_TYPE_ARRAY);
    b_u64(&b, 1);
    b_zeros(&b, 16);
    expect_refused(&b, "key 'nest' is an array of arrays");

    b_header(&b, 3, 0, 1);
    b_str(&b, "t");
    b_u32(&b, 13);
    b_zeros(&b, 8);
    expect_refused(&b, "key 't' has unknown value type 13");

    b_header(&b, 3, 0, 1);
    b_str(&b, "t");
    b_u32(&b, GGUF_TYPE_ARRAY);
    b_u32(&b, 99);
    b_u64(&b, 0);
    expect_refused(&b, "array of unknown element type 99");

    b_header(&b, 3, 0, 2);
    b_kv_u32(&b, "a", 1);
    b_kv_u32(&b, "a", 2);
    expect_refused(&b, "duplicate key 'a'");

    b_header(&b, 3, 0, 1);
    b_u64(&b, 3);
    b_bytes(&b, "a\0b", 3);
    b_u32(&b, GGUF_TYPE_UINT32);
    b_u32(&b, 0);
    expect_refused(&b, "key of metadata entry #0 contains a NUL byte");

    b_header(&b, 3, 0, 1);
    b_str(&b, "flag");
    b_u32(&b, GGUF_TYPE_BOOL);
    b_u8(&b, 2);
    b_zeros(&b, 12);
    expect_refused(&b, "key 'flag' bool has value 2");

    b_header(&b, 3, 0, 1);
    b_kv_u32(&b, "general.alignment", 48);
    expect_refused(&b, "general.alignment 48 is not a non-zero power of two");

    b_header(&b, 3, 0, 1);
    b_kv_u32(&b, "general.alignment", 0);
    expect_refused(&b, "general.alignment 0 is not a non-zero power of two");

    b_header(&b, 3, 0, 1);
    b_str(&b, "general.alignment");
    b_u32(&b, GGUF_TYPE_STRING);
    b_str(&b, "32");
    expect_refused(&b, "general.alignment has type STRING");
}

static void test_corrupt_tensors(void **state) {
    (void)state;
    buf b = {0};
    uint64_t ne2[2];

    /* Offset past EOF: data section at 64, file ends at 64+256. */
    b_header(&b, 3, 1, 0);
    b_tensor(&b, "blk.0.attn_q.weight", 1, NE_64, WEFT_F32, 256);
    b_pad(&b, 32);
    size_t data = b.n;
    b_zeros(&b, 256);
    char want[160];
    snprintf(want, sizeof want,
             "tensor 'blk.0.attn_q.weight' data [%zu, %zu) extends past end of file (%zu bytes)",
             data + 256, data + 512, data + 256);
    expect_refused(&b, want);

    /* An offset so large that offset + size wraps 64 bits. */
    b_header(&b, 3, 1, 0);
    b_tensor(&b, "w", 1, NE_64, WEFT_F32, UINT64_MAX - 31);
    b_pad(&b, 32);
    b_zeros(&b, 256);
    expect_refused(&b, "tensor 'w' data [");

    b_header(&b, 3, 1, 0);
    b_tensor(&b, "m", 1, NE_64, WEFT_F32, 16);
    b_pad(&b, 32);
    b_zeros(&b, 512);
    expect_refused(&b, "tensor 'm' offset 16 is not a multiple of the alignment 32");

    b_header(&b, 3, 1, 0);
    b_tensor(&b, "q41", 1, NE_64, 3 /* Q4_1 */, 0);
    b_pad(&b, 32);
    b_zeros(&b, 512);
    expect_refused(&b, "tensor 'q41' has unsupported type 3");

    b_header(&b, 3, 1, 0);
    ne2[0] = 48;
    ne2[1] = 2;
    b_tensor(&b, "q8", 2, ne2, WEFT_Q8_0, 0);
    b_pad(&b, 32);
    b_zeros(&b, 512);
    expect_refused(&b, "tensor 'q8' row length 48 is not a multiple of the Q8_0 block size 32");

    b_header(&b, 3, 2, 0);
    b_tensor(&b, "first", 1, NE_64, WEFT_F32, 0);
    b_tensor(&b, "second", 1, NE_64, WEFT_F32, 128);
    b_pad(&b, 32);
    data = b.n;
    b_zeros(&b, 512);
    snprintf(want, sizeof want, "tensors 'first' [%zu, %zu) and 'second' [%zu, %zu) overlap", data,
             data + 256, data + 128, data + 384);
    expect_refused(&b, want);

    b_header(&b, 3, 2, 0);
    b_tensor(&b, "t", 1, NE_64, WEFT_F32, 0);
    b_tensor(&b, "t", 1, NE_64, WEFT_F32, 256);
    b_pad(&b, 32);
    b_zeros(&b, 512);
    expect_refused(&b, "duplicate tensor name 't'");

    b_header(&b, 3, 1, 0);
    ne2[0] = 64;
    ne2[1] = 0;
    b_tensor(&b, "z", 2, ne2, WEFT_F32, 0);
    b_pad(&b, 32);
    b_zeros(&b, 512);
    expect_refused(&b, "tensor 'z' dimension 1 is 0");

    b_header(&b, 3, 1, 0);
    uint64_t ne5[5] = {1, 1, 1, 1, 1};
    b_tensor(&b, "five", 5, ne5, WEFT_F32, 0);
    b_pad(&b, 32);
    b_zeros(&b, 512);
    expect_refused(&b, "tensor 'five' has n_dims 5 (must be 1..4)");

    b_header(&b, 3, 1, 0);
    b_tensor(&b, "none", 0, NE_64, WEFT_F32, 0);
    b_pad(&b, 32);
    b_zeros(&b, 512);
    expect_refused(&b, "tensor 'none' has n_dims 0");

    b_header(&b, 3, 1, 0);
    uint64_t big[3] = {1ull << 32, 1ull << 32, 4};
    b_tensor(&b, "huge", 3, big, WEFT_F32, 0);
    b_pad(&b, 32);
    b_zeros(&b, 512);
    expect_refused(&b, "tensor 'huge' element count overflows (dimension 1");

    b_header(&b, 3, 1, 0);
    uint64_t wide[1] = {1ull << 62};
    b_tensor(&b, "wide", 1, wide, WEFT_F32, 0);
    b_pad(&b, 32);
    b_zeros(&b, 512);
    expect_refused(&b, "tensor 'wide' byte size overflows");

    b_header(&b, 3, 1, 0);
    b_u64(&b, 2);
    b_bytes(&b, "\0x", 2);
    b_u32(&b, 1);
    b_u64(&b, 64);
    b_u32(&b, WEFT_F32);
    b_u64(&b, 0);
    b_pad(&b, 32);
    b_zeros(&b, 256);
    expect_refused(&b, "name of tensor #0 contains a NUL byte");

    /* Tensor infos end unaligned and the file stops before the padded data section. */
    b_header(&b, 3, 1, 0);
    b_tensor(&b, "t", 1, NE_64, WEFT_F32, 0);
    assert_true(b.n % 32 != 0);
    expect_refused(&b, "starts past end of file");
}

/* Every prefix of a valid file that cuts into its header or tensor data must be refused (with
 * a message) and never read out of bounds; the file itself must open. */
static void test_truncation_sweep(void **state) {
    (void)state;
    gguf_writer *w = gguf_writer_new();
    assert_non_null(w);
    assert_int_equal(gguf_writer_set_str(w, "general.architecture", "llama"), 0);
    assert_int_equal(gguf_writer_set_u32(w, "llama.block_count", 1), 0);
    const char *strs[] = {"<unk>", "<s>", "</s>"};
    float sc[] = {0, -1, -2};
    assert_int_equal(gguf_writer_set_arr_str(w, "tokenizer.ggml.tokens", strs, 3), 0);
    assert_int_equal(gguf_writer_set_arr_f32(w, "tokenizer.ggml.scores", sc, 3), 0);
    uint64_t ne[2] = {32, 2};
    assert_int_equal(gguf_writer_add_tensor(w, "a", 2, ne, WEFT_Q8_0, fill_pattern, NULL), 0);
    assert_int_equal(gguf_writer_add_tensor(w, "b", 1, ne, WEFT_F32, fill_pattern, NULL), 0);
    char path[4096];
    tu_scratch("gguf-trunc.gguf", path, sizeof path);
    weft_err err = {{0}};
    assert_int_equal(gguf_writer_write(w, path, &err), 0);
    gguf_writer_free(w);
    size_t size;
    char *full = tu_read_file(path, &size);
    assert_non_null(full);
    gguf_file *f = gguf_open_memory(full, size, &err);
    assert_non_null(f);
    size_t need = 0;
    for (size_t i = 0; i < gguf_tensor_count(f); i++) {
        const gguf_tensor *t = gguf_tensor_at(f, i);
        size_t end = (size_t)(gguf_data_offset(f) + t->offset + t->nbytes);
        if (end > need) need = end;
    }
    gguf_close(f);
    for (size_t len = 0; len < size; len++) {
        uint8_t *p = malloc(len ? len : 1);
        assert_non_null(p);
        memcpy(p, full, len);
        err.msg[0] = 0;
        f = gguf_open_memory(p, len, &err);
        if (len < need) {
            if (f) fprintf(stdout, "prefix of %zu bytes opened\n", len);
            assert_null(f);
            assert_true(strlen(err.msg) > 6);
            assert_true(strncmp(err.msg, "gguf: ", 6) == 0);
        } else {
            assert_non_null(f);
        }
        gguf_close(f);
        free(p);
    }
    free(full);
}

static void test_open_errors(void **state) {
    (void)state;
    weft_err err = {{0}};
    assert_null(gguf_open("/nonexistent/x.gguf", &err));
    assert_non_null(strstr(err.msg, "cannot open '/nonexistent/x.gguf'"));
    assert_null(gguf_open("/tmp", &err));
    assert_non_null(strstr(err.msg, "not a regular file"));
    assert_null(gguf_open_memory(NULL, 0, &err));
    assert_non_null(strstr(err.msg, "not a GGUF file"));
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_stories260k),
        cmocka_unit_test(test_all_types_roundtrip),
        cmocka_unit_test(test_writer_tensors_every_dtype),
        cmocka_unit_test(test_valid_baseline),
        cmocka_unit_test(test_corrupt_header),
        cmocka_unit_test(test_corrupt_metadata),
        cmocka_unit_test(test_corrupt_tensors),
        cmocka_unit_test(test_truncation_sweep),
        cmocka_unit_test(test_open_errors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
