/* test_synth.c — synthetic models: every weight type yields a GGUF the reader accepts with the
 * llama tensor names, shapes and metadata; weights are deterministic in the seed and sized so
 * activations stay O(1); tokenizers can be imported from a GGUF or a llama2.c tokenizer.bin. */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "support/testutil.h"
#include "weft/dtype.h"
#include "weft/gguf.h"
#include "weft/synth.h"

static gguf_file *synth_open(const synth_options *o, const char *scratch, char *path, size_t n) {
    tu_scratch(scratch, path, n);
    weft_err err = {{0}};
    synth_result r;
    int rc = synth_write(o, path, &r, &err);
    if (rc != 0) fprintf(stdout, "synth failed: %s\n", err.msg);
    assert_int_equal(rc, 0);
    gguf_file *f = gguf_open(path, &err);
    if (!f) fprintf(stdout, "open failed: %s\n", err.msg);
    assert_non_null(f);
    assert_int_equal(r.file_bytes, gguf_file_size(f));
    assert_int_equal(r.n_tensors, gguf_tensor_count(f));
    return f;
}

static void check_tensor(const gguf_file *f, const char *name, uint64_t ne0, uint64_t ne1,
                         uint32_t type) {
    const gguf_tensor *t = gguf_find_tensor(f, name);
    if (!t) fprintf(stdout, "missing tensor %s\n", name);
    assert_non_null(t);
    assert_int_equal(t->n_dims, ne1 ? 2 : 1);
    assert_int_equal(t->ne[0], ne0);
    assert_int_equal(t->ne[1], ne1 ? ne1 : 1);
    assert_int_equal(t->type, type);
}

static void test_every_type(void **state) {
    (void)state;
    const weft_dtype types[] = {WEFT_F32, WEFT_F16, WEFT_BF16, WEFT_Q8_0, WEFT_Q4_0};
    for (size_t k = 0; k < 5; k++) {
        synth_options o;
        synth_options_init(&o);
        o.preset = "test-gqa";
        o.type = types[k];
        char scratch[64], path[4096];
        snprintf(scratch, sizeof scratch, "synth-%s.gguf", dtype_name(types[k]));
        gguf_file *f = synth_open(&o, scratch, path, sizeof path);
        assert_string_equal(gguf_get_str(f, "general.architecture"), "llama");
        assert_string_equal(gguf_get_str(f, "general.name"), "test-gqa");
        uint32_t u;
        float x;
        struct {
            const char *key;
            uint32_t v;
        } want[] = {
            {"llama.context_length", 256},
            {"llama.embedding_length", 64},
            {"llama.block_count", 3},
            {"llama.feed_forward_length", 160},
            {"llama.attention.head_count", 8},
            {"llama.attention.head_count_kv", 2},
            {"llama.rope.dimension_count", 8},
            {"llama.vocab_size", 512},
            {"tokenizer.ggml.bos_token_id", 1},
            {"tokenizer.ggml.eos_token_id", 2},
            {"tokenizer.ggml.unknown_token_id", 0},
        };
        for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
            assert_true(gguf_get_u32(f, want[i].key, &u));
            assert_int_equal(u, want[i].v);
        }
        assert_true(gguf_get_f32(f, "llama.rope.freq_base", &x));
        assert_true(x == 10000.0f);
        assert_true(gguf_get_f32(f, "llama.attention.layer_norm_rms_epsilon", &x));
        assert_true(x == 1e-5f);
        assert_string_equal(gguf_get_str(f, "tokenizer.ggml.model"), "llama");
        assert_int_equal(gguf_tensor_count(f), 2 + 3 * 9);
        assert_null(gguf_find_tensor(f, "output.weight")); /* tied by default */
        check_tensor(f, "token_embd.weight", 64, 512, types[k]);
        check_tensor(f, "output_norm.weight", 64, 0, WEFT_F32);
        for (int l = 0; l < 3; l++) {
            char n[64];
#define CHK(suffix, e0, e1, ty)                                                                    \
    snprintf(n, sizeof n, "blk.%d." suffix, l);                                                    \
    check_tensor(f, n, e0, e1, ty)
            CHK("attn_norm.weight", 64, 0, WEFT_F32);
            CHK("attn_q.weight", 64, 64, types[k]);
            CHK("attn_k.weight", 64, 16, types[k]);
            CHK("attn_v.weight", 64, 16, types[k]);
            CHK("attn_output.weight", 64, 64, types[k]);
            CHK("ffn_norm.weight", 64, 0, WEFT_F32);
            CHK("ffn_gate.weight", 64, 160, types[k]);
            CHK("ffn_up.weight", 64, 160, types[k]);
            CHK("ffn_down.weight", 160, 64, types[k]);
#undef CHK
        }
        /* Weight statistics: std about 1/sqrt(row length); norms about 1. */
        const gguf_tensor *t = gguf_find_tensor(f, "blk.1.ffn_down.weight");
        size_t n = (size_t)(t->ne[0] * t->ne[1]);
        float *v = malloc(n * sizeof *v);
        assert_non_null(v);
        size_t rb = dtype_row_bytes(t->type, (size_t)t->ne[0]);
        for (uint64_t r = 0; r < t->ne[1]; r++)
            dtype_dequantize_row(t->type, (const uint8_t *)t->data + r * rb, v + r * t->ne[0],
                                 (size_t)t->ne[0]);
        double sum = 0, sq = 0;
        for (size_t i = 0; i < n; i++)
            sum += v[i], sq += (double)v[i] * v[i];
        double mean = sum / (double)n, sd = sqrt(sq / (double)n - mean * mean);
        double want_sd = 1.0 / sqrt(160.0);
        assert_true(fabs(mean) < 0.01);
        assert_true(sd > want_sd * 0.85 && sd < want_sd * 1.15);
        free(v);
        t = gguf_find_tensor(f, "blk.0.attn_norm.weight");
        const float *nw = t->data;
        for (int i = 0; i < 64; i++)
            assert_true(nw[i] > 0.9f && nw[i] < 1.1f);
        gguf_close(f);
    }
}

static void test_determinism_and_options(void **state) {
    (void)state;
    synth_options o;
    synth_options_init(&o);
    o.preset = "test-gqa";
    o.type = WEFT_Q8_0;
    o.seed = 1234;
    char p1[4096], p2[4096], p3[4096];
    gguf_close(synth_open(&o, "synth-det1.gguf", p1, sizeof p1));
    gguf_close(synth_open(&o, "synth-det2.gguf", p2, sizeof p2));
    o.seed = 1235;
    gguf_close(synth_open(&o, "synth-det3.gguf", p3, sizeof p3));
    size_t n1, n2, n3;
    char *a = tu_read_file(p1, &n1), *b = tu_read_file(p2, &n2), *c = tu_read_file(p3, &n3);
    assert_non_null(a);
    assert_non_null(b);
    assert_non_null(c);
    assert_int_equal(n1, n2);
    assert_memory_equal(a, b, n1);
    assert_int_equal(n1, n3);
    assert_memory_not_equal(a, c, n1);
    free(a);
    free(b);
    free(c);

    /* A tensor's bytes depend only on its name and the seed, not on what precedes it: layer 0
     * is identical whether or not output.weight (written before it) is present and however
     * many layers follow. */
    o.seed = 1234;
    o.untied = true;
    o.n_layers = 1;
    o.ctx_len = 77;
    o.rope_theta = 500000.0f;
    char p4[4096];
    gguf_file *f4 = synth_open(&o, "synth-untied.gguf", p4, sizeof p4);
    gguf_file *f1 = gguf_open(p1, NULL);
    assert_non_null(f1);
    assert_int_equal(gguf_tensor_count(f4), 3 + 9);
    const gguf_tensor *out = gguf_find_tensor(f4, "output.weight");
    assert_non_null(out);
    assert_int_equal(out->ne[0], 64);
    assert_int_equal(out->ne[1], 512);
    uint32_t u;
    float x;
    assert_true(gguf_get_u32(f4, "llama.block_count", &u));
    assert_int_equal(u, 1);
    assert_true(gguf_get_u32(f4, "llama.context_length", &u));
    assert_int_equal(u, 77);
    assert_true(gguf_get_f32(f4, "llama.rope.freq_base", &x));
    assert_true(x == 500000.0f);
    const gguf_tensor *q4 = gguf_find_tensor(f4, "blk.0.attn_q.weight");
    const gguf_tensor *q1 = gguf_find_tensor(f1, "blk.0.attn_q.weight");
    assert_int_equal(q4->nbytes, q1->nbytes);
    assert_memory_equal(q4->data, q1->data, q4->nbytes);
    gguf_close(f4);
    gguf_close(f1);
}

static void test_bad_options(void **state) {
    (void)state;
    synth_options o;
    synth_options_init(&o);
    weft_err err = {{0}};
    char path[4096];
    tu_scratch("synth-bad.gguf", path, sizeof path);
    o.preset = "nope";
    assert_int_equal(synth_write(&o, path, NULL, &err), -1);
    assert_non_null(strstr(err.msg, "unknown preset 'nope'"));
    o.preset = "test-gqa";
    o.type = (weft_dtype)3;
    assert_int_equal(synth_write(&o, path, NULL, &err), -1);
    assert_non_null(strstr(err.msg, "unsupported weight type"));
    o.type = WEFT_F32;
    o.vocab_from = "/nonexistent/tok.bin";
    assert_int_equal(synth_write(&o, path, NULL, &err), -1);
    assert_non_null(strstr(err.msg, "cannot open '/nonexistent/tok.bin'"));
    assert_non_null(synth_find_preset("tiny15m"));
    assert_int_equal(synth_find_preset("llama7b")->hidden_dim, 11008);
    assert_int_equal(synth_find_preset("tiny110m")->dim, 768);
}

static void test_vocab_from_llama2c(void **state) {
    (void)state;
    TU_SHARED_OR_SKIP(tok, "models/tok512.bin");
    synth_options o;
    synth_options_init(&o);
    o.preset = "test-gqa";
    o.vocab_from = tok;
    char path[4096];
    gguf_file *f = synth_open(&o, "synth-tok512.gguf", path, sizeof path);
    gguf_type et;
    uint64_t n;
    assert_true(gguf_get_arr_info(f, "tokenizer.ggml.tokens", &et, &n));
    assert_int_equal(n, 512);
    assert_string_equal(gguf_get_arr_str(f, "tokenizer.ggml.tokens", 0), "<unk>");
    assert_string_equal(gguf_get_arr_str(f, "tokenizer.ggml.tokens", 1), "<s>");
    assert_string_equal(gguf_get_arr_str(f, "tokenizer.ggml.tokens", 2), "</s>");
    assert_string_equal(gguf_get_arr_str(f, "tokenizer.ggml.tokens", 3), "<0x00>");
    double d;
    assert_true(gguf_get_arr_num(f, "tokenizer.ggml.token_type", 0, &d) && d == 2);
    assert_true(gguf_get_arr_num(f, "tokenizer.ggml.token_type", 1, &d) && d == 3);
    assert_true(gguf_get_arr_num(f, "tokenizer.ggml.token_type", 2, &d) && d == 3);
    assert_true(gguf_get_arr_num(f, "tokenizer.ggml.token_type", 3, &d) && d == 6);
    assert_true(gguf_get_arr_num(f, "tokenizer.ggml.token_type", 300, &d) && d == 1);
    assert_true(gguf_get_arr_info(f, "tokenizer.ggml.scores", &et, &n));
    assert_int_equal(et, GGUF_TYPE_FLOAT32);
    assert_int_equal(n, 512);
    uint32_t u;
    assert_true(gguf_get_u32(f, "llama.vocab_size", &u));
    assert_int_equal(u, 512);
    assert_int_equal(gguf_find_tensor(f, "token_embd.weight")->ne[1], 512);
    gguf_close(f);

    /* The same tokenizer, now read back out of that GGUF, must be copied key for key. */
    char path2[4096];
    o.vocab_from = path;
    gguf_file *g = synth_open(&o, "synth-tok512-copy.gguf", path2, sizeof path2);
    f = gguf_open(path, NULL);
    assert_non_null(f);
    for (uint64_t i = 0; i < 512; i++)
        assert_string_equal(gguf_get_arr_str(f, "tokenizer.ggml.tokens", i),
                            gguf_get_arr_str(g, "tokenizer.ggml.tokens", i));
    gguf_close(f);
    gguf_close(g);
}

static void test_vocab_from_gguf(void **state) {
    (void)state;
    TU_SHARED_OR_SKIP(src, "models/tokenizers/ggml-vocab-llama-spm.gguf");
    synth_options o;
    synth_options_init(&o);
    o.preset = "test-gqa";
    o.vocab_from = src;
    o.type = WEFT_Q4_0;
    char path[4096];
    gguf_file *f = synth_open(&o, "synth-spm.gguf", path, sizeof path);
    gguf_file *s = gguf_open(src, NULL);
    assert_non_null(s);
    size_t copied = 0;
    for (size_t i = 0; i < gguf_kv_count(s); i++) {
        const char *k = gguf_kv_key(s, i);
        if (strncmp(k, "tokenizer.ggml.", 15) != 0) continue;
        long j = gguf_find_key(f, k);
        assert_true(j >= 0);
        assert_int_equal(gguf_kv_type(f, (size_t)j), gguf_kv_type(s, i));
        copied++;
    }
    assert_true(copied >= 5);
    uint32_t u;
    assert_true(gguf_get_u32(f, "llama.vocab_size", &u));
    assert_int_equal(u, 32000);
    assert_int_equal(gguf_find_tensor(f, "token_embd.weight")->ne[1], 32000);
    gguf_close(s);
    gguf_close(f);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_every_type),      cmocka_unit_test(test_determinism_and_options),
        cmocka_unit_test(test_bad_options),     cmocka_unit_test(test_vocab_from_llama2c),
        cmocka_unit_test(test_vocab_from_gguf),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
