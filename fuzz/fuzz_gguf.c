/* fuzz_gguf.c — libFuzzer target for the GGUF reader: any byte string must either be refused
 * with a message or open into a file whose every accessor is safe to call and whose every
 * tensor's bytes lie inside the input. */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "weft/dtype.h"
#include "weft/gguf.h"

static volatile uint64_t fuzz_sink; /* keeps reads from being optimised away */

static void touch_kv(const gguf_file *f, size_t i) {
    const char *key = gguf_kv_key(f, i);
    fuzz_sink += strlen(key) + (uint64_t)gguf_kv_type(f, i);
    if (gguf_find_key(f, key) != (long)i) __builtin_trap();
    uint32_t u;
    int64_t s;
    float x;
    bool b;
    double d;
    if (gguf_get_u32(f, key, &u)) fuzz_sink += u;
    if (gguf_get_i64(f, key, &s)) fuzz_sink += (uint64_t)s;
    if (gguf_get_f32(f, key, &x)) fuzz_sink += (uint64_t)(x == x);
    if (gguf_get_bool(f, key, &b)) fuzz_sink += b;
    if (gguf_kv_num(f, i, &d)) fuzz_sink += (uint64_t)(d == d);
    const char *str = gguf_get_str(f, key);
    if (str) fuzz_sink += strlen(str);
    if (gguf_kv_str(f, i) != str) __builtin_trap();
    gguf_type et;
    uint64_t n;
    if (gguf_get_arr_info(f, key, &et, &n)) {
        for (uint64_t k = 0; k <= n && k < 64; k++) {
            const char *e = gguf_get_arr_str(f, key, k);
            if (e) fuzz_sink += strlen(e);
            if (gguf_get_arr_num(f, key, k, &d)) fuzz_sink += (uint64_t)(d == d);
        }
        if (n > 0) {
            const char *e = gguf_get_arr_str(f, key, n - 1);
            if (e) fuzz_sink += strlen(e);
            if (gguf_get_arr_num(f, key, n - 1, &d)) fuzz_sink += (uint64_t)(d == d);
        }
        if (gguf_get_arr_str(f, key, n) || gguf_get_arr_num(f, key, n, &d)) __builtin_trap();
    }
}

static void touch_tensor(const gguf_file *f, const uint8_t *data, size_t size, size_t i) {
    const gguf_tensor *t = gguf_tensor_at(f, i);
    if (gguf_find_tensor(f, t->name) != t) __builtin_trap();
    const uint8_t *p = t->data;
    if (t->nbytes == 0 || p < data || p + t->nbytes > data + size) __builtin_trap();
    fuzz_sink += p[0] + p[t->nbytes - 1];
    /* Dequantize the first row: exercises the block geometry the reader validated. */
    float row[256];
    size_t ne0 = (size_t)t->ne[0];
    if (ne0 <= 256 && dtype_row_bytes((weft_dtype)t->type, ne0) <= t->nbytes) {
        dtype_dequantize_row((weft_dtype)t->type, p, row, ne0);
        fuzz_sink += (uint64_t)(row[0] == row[0]);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    weft_err err;
    err.msg[0] = 0;
    gguf_file *f = gguf_open_memory(data, size, &err);
    if (!f) {
        if (err.msg[0] == 0) __builtin_trap(); /* every refusal must say why */
        return 0;
    }
    fuzz_sink += gguf_version(f) + gguf_alignment(f) + gguf_file_size(f) + gguf_data_offset(f);
    for (size_t i = 0; i < gguf_kv_count(f); i++)
        touch_kv(f, i);
    for (size_t i = 0; i < gguf_tensor_count(f); i++)
        touch_tensor(f, data, size, i);
    if (gguf_kv_key(f, gguf_kv_count(f)) || gguf_tensor_at(f, gguf_tensor_count(f)))
        __builtin_trap();
    gguf_close(f);
    return 0;
}
