/* test_model.c — model_load: GGUF and llama2.c (legacy and "version 1") checkpoints load with
 * the right configuration and weights, the two loaders agree bit for bit on stories260K, and
 * every malformed model is refused with a precise message instead of a crash.
 * Bad GGUFs are made by rewriting a small synthetic model with one key or tensor changed;
 * bad llama2.c files are written here from a synthetic header or cut from stories260K.bin. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "support/testutil.h"
#include "weft/dtype.h"
#include "weft/gguf.h"
#include "weft/model.h"
#include "weft/synth.h"

/* ---- helpers ---- */

static void write_bytes(const char *path, const void *data, size_t n) {
    FILE *fp = fopen(path, "wb");
    assert_non_null(fp);
    if (n) assert_int_equal(fwrite(data, 1, n, fp), n);
    assert_int_equal(fclose(fp), 0);
}

/* Loads and expects failure whose message contains want (printed either way). */
static void expect_refused(const char *path, const char *tok, const char *want) {
    weft_err err = {{0}};
    weft_model *m = model_load(path, tok, &err);
    fprintf(stdout, "  refused: %s\n", err.msg);
    if (m) fprintf(stdout, "  expected failure with '%s' but the model loaded\n", want);
    assert_null(m);
    if (!strstr(err.msg, want)) fprintf(stdout, "  message lacks '%s'\n", want);
    assert_non_null(strstr(err.msg, want));
}

static weft_model *load_ok(const char *path, const char *tok) {
    weft_err err = {{0}};
    weft_model *m = model_load(path, tok, &err);
    if (!m) fprintf(stdout, "  load of %s failed: %s\n", path, err.msg);
    assert_non_null(m);
    return m;
}

static void same_matrix(const kn_matrix *a, const kn_matrix *b) {
    assert_int_equal(a->type, b->type);
    assert_int_equal(a->rows, b->rows);
    assert_int_equal(a->cols, b->cols);
    assert_int_equal(a->row_bytes, b->row_bytes);
    assert_memory_equal(a->data, b->data, (size_t)a->rows * a->row_bytes);
}

/* Every weight of a equals b's bit for bit (shapes from a's config). */
static void same_weights(const weft_model *a, const weft_model *b) {
    const weft_config *c = &a->cfg;
    assert_int_equal(c->dim, b->cfg.dim);
    assert_int_equal(c->hidden_dim, b->cfg.hidden_dim);
    assert_int_equal(c->n_layers, b->cfg.n_layers);
    assert_int_equal(c->n_heads, b->cfg.n_heads);
    assert_int_equal(c->n_kv_heads, b->cfg.n_kv_heads);
    assert_int_equal(c->head_dim, b->cfg.head_dim);
    assert_int_equal(c->vocab_size, b->cfg.vocab_size);
    size_t nb = (size_t)c->dim * sizeof(float);
    same_matrix(&a->tok_embd, &b->tok_embd);
    same_matrix(&a->output, &b->output);
    assert_memory_equal(a->out_norm, b->out_norm, nb);
    for (int l = 0; l < c->n_layers; l++) {
        const weft_layer *x = &a->layers[l], *y = &b->layers[l];
        assert_memory_equal(x->attn_norm, y->attn_norm, nb);
        assert_memory_equal(x->ffn_norm, y->ffn_norm, nb);
        same_matrix(&x->wq, &y->wq);
        same_matrix(&x->wk, &y->wk);
        same_matrix(&x->wv, &y->wv);
        same_matrix(&x->wo, &y->wo);
        same_matrix(&x->w_gate, &y->w_gate);
        same_matrix(&x->w_up, &y->w_up);
        same_matrix(&x->w_down, &y->w_down);
    }
}

/* ---- GGUF: a small synthetic base model and single-edit rewrites of it ---- */

static void synth_base(const char *scratch, char *path, size_t n, weft_dtype type, bool untied) {
    synth_options o;
    synth_options_init(&o);
    o.preset = "test-gqa";
    o.type = type;
    o.n_layers = 1;
    o.untied = untied;
    tu_scratch(scratch, path, n);
    weft_err err = {{0}};
    int rc = synth_write(&o, path, NULL, &err);
    if (rc) fprintf(stdout, "synth failed: %s\n", err.msg);
    assert_int_equal(rc, 0);
}

/* One metadata change: kind 'd' drops key, 's'/'u'/'f' replace or add it. */
typedef struct kv_edit {
    const char *key;
    char kind;
    const char *str;
    double num;
} kv_edit;

typedef struct rewrite {
    kv_edit kv[3];
    const char *drop_tensor;
    const char *reshape_tensor; /* given ne0 x ne1, filled from the original then zeros */
    uint64_t ne0, ne1;
} rewrite;

static int copy_fill(void *ctx, const char *name, void *dst, uint64_t nbytes) {
    const gguf_tensor *src = ctx;
    (void)name;
    uint64_t n = src->nbytes < nbytes ? src->nbytes : nbytes;
    memcpy(dst, src->data, (size_t)n);
    memset((char *)dst + n, 0, (size_t)(nbytes - n));
    return 0;
}

static const kv_edit *find_edit(const rewrite *r, const char *key) {
    for (size_t i = 0; i < 3; i++)
        if (r->kv[i].key && strcmp(r->kv[i].key, key) == 0) return &r->kv[i];
    return NULL;
}

static void write_rewrite(const char *src_path, const rewrite *r, const char *scratch, char *out,
                          size_t n) {
    tu_scratch(scratch, out, n);
    weft_err err = {{0}};
    gguf_file *src = gguf_open(src_path, &err);
    assert_non_null(src);
    gguf_writer *w = gguf_writer_new();
    assert_non_null(w);
    for (size_t i = 0; i < gguf_kv_count(src); i++)
        if (!find_edit(r, gguf_kv_key(src, i))) assert_int_equal(gguf_writer_copy_kv(w, src, i), 0);
    for (size_t i = 0; i < 3; i++) {
        const kv_edit *e = &r->kv[i];
        if (!e->key) continue;
        if (e->kind == 's') assert_int_equal(gguf_writer_set_str(w, e->key, e->str), 0);
        if (e->kind == 'u') assert_int_equal(gguf_writer_set_u32(w, e->key, (uint32_t)e->num), 0);
        if (e->kind == 'f') assert_int_equal(gguf_writer_set_f32(w, e->key, (float)e->num), 0);
    }
    for (size_t i = 0; i < gguf_tensor_count(src); i++) {
        const gguf_tensor *t = gguf_tensor_at(src, i);
        if (r->drop_tensor && strcmp(t->name, r->drop_tensor) == 0) continue;
        uint64_t ne[2] = {t->ne[0], t->ne[1]};
        if (r->reshape_tensor && strcmp(t->name, r->reshape_tensor) == 0)
            ne[0] = r->ne0, ne[1] = r->ne1;
        assert_int_equal(gguf_writer_add_tensor(w, t->name, ne[1] > 1 ? 2 : t->n_dims, ne, t->type,
                                                copy_fill, (void *)t),
                         0);
    }
    int rc = gguf_writer_write(w, out, &err);
    if (rc) fprintf(stdout, "rewrite failed: %s\n", err.msg);
    assert_int_equal(rc, 0);
    gguf_writer_free(w);
    gguf_close(src);
}

static void gguf_expect(const char *base, const rewrite *r, const char *want) {
    char path[4096];
    write_rewrite(base, r, "model-bad.gguf", path, sizeof path);
    expect_refused(path, NULL, want);
}

static weft_model *gguf_load_rewrite(const char *base, const rewrite *r) {
    char path[4096];
    write_rewrite(base, r, "model-edit.gguf", path, sizeof path);
    return load_ok(path, NULL);
}

static void test_gguf_every_type(void **state) {
    (void)state;
    const weft_dtype types[] = {WEFT_F32, WEFT_F16, WEFT_BF16, WEFT_Q8_0, WEFT_Q4_0};
    for (size_t k = 0; k < sizeof types / sizeof types[0]; k++) {
        synth_options o;
        synth_options_init(&o);
        o.preset = "test-gqa";
        o.type = types[k];
        char name[64], path[4096];
        snprintf(name, sizeof name, "model-%s.gguf", dtype_name(types[k]));
        tu_scratch(name, path, sizeof path);
        assert_int_equal(synth_write(&o, path, NULL, NULL), 0);
        weft_model *m = load_ok(path, NULL);
        const weft_config *c = &m->cfg;
        assert_string_equal(m->arch, "llama");
        assert_string_equal(m->source, "gguf");
        assert_int_equal(c->dim, 64);
        assert_int_equal(c->hidden_dim, 160);
        assert_int_equal(c->n_layers, 3);
        assert_int_equal(c->n_heads, 8);
        assert_int_equal(c->n_kv_heads, 2);
        assert_int_equal(c->head_dim, 8);
        assert_int_equal(c->rope_dim, 8);
        assert_int_equal(c->vocab_size, 512);
        assert_int_equal(c->ctx_len, 256);
        assert_true(c->norm_eps == 1e-5f);
        assert_true(c->rope_theta == 10000.0f);
        assert_true(c->rope_freq_scale == 1.0f);
        assert_int_equal(c->bos_id, 1);
        assert_int_equal(c->eos_id, 2);
        assert_int_equal(c->n_stop_ids, 1);
        assert_int_equal(c->stop_ids[0], 2);
        assert_int_equal(m->tied_output, 1);
        assert_ptr_equal(m->output.data, m->tok_embd.data);
        assert_int_equal(m->tok_embd.type, types[k]);
        assert_int_equal(m->tok_embd.rows, 512);
        assert_int_equal(m->tok_embd.cols, 64);
        assert_int_equal(m->tok_embd.row_bytes, dtype_row_bytes(types[k], 64));
        for (int l = 0; l < 3; l++) {
            const weft_layer *ly = &m->layers[l];
            assert_int_equal(ly->wq.rows, 64);
            assert_int_equal(ly->wk.rows, 16);
            assert_int_equal(ly->wv.rows, 16);
            assert_int_equal(ly->wo.cols, 64);
            assert_int_equal(ly->w_gate.rows, 160);
            assert_int_equal(ly->w_up.rows, 160);
            assert_int_equal(ly->w_down.rows, 64);
            assert_int_equal(ly->w_down.cols, 160);
            assert_int_equal(ly->w_down.type, types[k]);
            assert_true(ly->attn_norm[0] > 0.9f && ly->attn_norm[0] < 1.1f);
        }
        /* params: embedding + final norm + 3 x (2 norms + q,k,v,o + gate,up,down) */
        uint64_t per_layer = 2 * 64 + 64 * 64 * 2 + 16 * 64 * 2 + 160 * 64 * 3;
        assert_int_equal(model_param_count(m), 512 * 64 + 64 + 3 * per_layer);
        assert_true(model_weight_bytes(m) > 0);
        model_free(m);
    }
}

static void test_gguf_untied_rope_stops(void **state) {
    (void)state;
    char untied[4096], base[4096];
    synth_base("model-untied.gguf", untied, sizeof untied, WEFT_Q8_0, true);
    weft_model *m = load_ok(untied, NULL);
    assert_int_equal(m->tied_output, 0);
    assert_ptr_not_equal(m->output.data, m->tok_embd.data);
    assert_int_equal(m->output.rows, 512);
    assert_int_equal(m->output.type, WEFT_Q8_0);
    model_free(m);

    synth_base("model-base.gguf", base, sizeof base, WEFT_F32, false);
    rewrite r = {.kv = {{"llama.rope.scaling.type", 's', "linear", 0},
                        {"llama.rope.scaling.factor", 'f', NULL, 4.0}}};
    m = gguf_load_rewrite(base, &r);
    assert_true(m->cfg.rope_freq_scale == 0.25f);
    model_free(m);
    rewrite legacy = {.kv = {{"llama.rope.scale_linear", 'f', NULL, 2.0}}};
    m = gguf_load_rewrite(base, &legacy);
    assert_true(m->cfg.rope_freq_scale == 0.5f);
    model_free(m);
    rewrite none = {.kv = {{"llama.rope.scaling.type", 's', "none", 0}}};
    m = gguf_load_rewrite(base, &none);
    assert_true(m->cfg.rope_freq_scale == 1.0f);
    model_free(m);

    rewrite eot = {.kv = {{"tokenizer.ggml.eot_token_id", 'u', NULL, 7},
                          {"tokenizer.ggml.eom_token_id", 'u', NULL, 2}}};
    m = gguf_load_rewrite(base, &eot);
    assert_int_equal(m->cfg.n_stop_ids, 2); /* EOS 2, EOT 7; EOM 2 is not repeated */
    assert_int_equal(m->cfg.stop_ids[0], 2);
    assert_int_equal(m->cfg.stop_ids[1], 7);
    model_free(m);
    rewrite eot_out = {.kv = {{"tokenizer.ggml.eot_token_id", 'u', NULL, 100000}}};
    m = gguf_load_rewrite(base, &eot_out);
    assert_int_equal(m->cfg.n_stop_ids, 1); /* out-of-vocabulary ids are ignored */
    model_free(m);

    /* Optional keys fall back to their defaults. */
    rewrite defaults = {.kv = {{"llama.context_length", 'd', NULL, 0},
                               {"llama.attention.head_count_kv", 'd', NULL, 0},
                               {"llama.rope.freq_base", 'd', NULL, 0}}};
    char path[4096];
    write_rewrite(base, &defaults, "model-defaults.gguf", path, sizeof path);
    /* without head_count_kv the model is MHA, so attn_k's [64,16] no longer fits */
    expect_refused(path, NULL,
                   "tensor 'blk.0.attn_k.weight' has shape [64, 16] (n_dims 2), "
                   "expected [64, 64]");
    rewrite defaults2 = {.kv = {{"llama.context_length", 'd', NULL, 0},
                                {"llama.rope.freq_base", 'd', NULL, 0},
                                {"llama.attention.layer_norm_rms_epsilon", 'd', NULL, 0}}};
    m = gguf_load_rewrite(base, &defaults2);
    assert_int_equal(m->cfg.ctx_len, 2048);
    assert_true(m->cfg.rope_theta == 10000.0f);
    assert_true(m->cfg.norm_eps == 1e-5f);
    model_free(m);
}

static void test_gguf_refusals(void **state) {
    (void)state;
    char base[4096];
    synth_base("model-base.gguf", base, sizeof base, WEFT_F32, false);

    rewrite arch = {.kv = {{"general.architecture", 's', "gpt2", 0}}};
    gguf_expect(base, &arch, "architecture 'gpt2' is not supported (only llama)");
    rewrite noarch = {.kv = {{"general.architecture", 'd', NULL, 0}}};
    gguf_expect(base, &noarch, "general.architecture is missing");

    static const char *const required[] = {"embedding_length", "feed_forward_length", "block_count",
                                           "attention.head_count"};
    for (size_t i = 0; i < sizeof required / sizeof required[0]; i++) {
        char key[96], want[160];
        snprintf(key, sizeof key, "llama.%s", required[i]);
        snprintf(want, sizeof want, "required key '%s' is missing", key);
        rewrite r = {.kv = {{key, 'd', NULL, 0}}};
        gguf_expect(base, &r, want);
    }
    rewrite strdim = {.kv = {{"llama.embedding_length", 's', "64", 0}}};
    gguf_expect(base, &strdim, "key 'llama.embedding_length' is not an unsigned integer");
    rewrite zero = {.kv = {{"llama.feed_forward_length", 'u', NULL, 0}}};
    gguf_expect(base, &zero, "a hyper-parameter is zero");

    rewrite heads = {.kv = {{"llama.attention.head_count", 'u', NULL, 6}}};
    gguf_expect(base, &heads, "dim 64, heads 6 and kv heads 2 do not divide evenly");
    rewrite kv = {.kv = {{"llama.attention.head_count_kv", 'u', NULL, 3}}};
    gguf_expect(base, &kv, "dim 64, heads 8 and kv heads 3 do not divide evenly");
    rewrite keylen = {.kv = {{"llama.attention.key_length", 'u', NULL, 16}}};
    gguf_expect(base, &keylen, "head size 16 x 8 heads != embedding 64");
    /* large enough that head size x heads overflows an int */
    rewrite keylen_big = {.kv = {{"llama.attention.key_length", 'u', NULL, 1u << 30}}};
    gguf_expect(base, &keylen_big, "head size 1073741824 x 8 heads != embedding 64");
    rewrite ropedim = {.kv = {{"llama.rope.dimension_count", 'u', NULL, 7}}};
    gguf_expect(base, &ropedim, "rope dimension 7 invalid for head size 8");
    /* more layers than the file has tensors for: refused before anything is allocated */
    rewrite layers = {.kv = {{"llama.block_count", 'u', NULL, 1u << 30}}};
    gguf_expect(base, &layers, "block_count 1073741824");
    rewrite layers2 = {.kv = {{"llama.block_count", 'u', NULL, 2}}};
    gguf_expect(base, &layers2,
                "llama.block_count 2 needs 18 layer tensors but the file has 11 tensors");
    rewrite bigdim = {.kv = {{"llama.embedding_length", 'u', NULL, 1u << 30},
                             {"llama.attention.head_count", 'u', NULL, 1},
                             {"llama.attention.head_count_kv", 'u', NULL, 1}}};
    gguf_expect(base, &bigdim, "tensor 'token_embd.weight' has shape [64, 512]");

    rewrite yarn = {.kv = {{"llama.rope.scaling.type", 's', "yarn", 0}}};
    gguf_expect(base, &yarn, "rope scaling 'yarn' is not supported (none, linear)");
    rewrite eps = {.kv = {{"llama.attention.layer_norm_rms_epsilon", 'f', NULL, -1.0}}};
    gguf_expect(base, &eps, "rms epsilon and rope base must be positive");

    rewrite vocab = {.kv = {{"llama.vocab_size", 'u', NULL, 500}}};
    gguf_expect(base, &vocab, "llama.vocab_size 500 differs from the tokenizer's 512 tokens");
    rewrite tokmodel = {.kv = {{"tokenizer.ggml.model", 's', "gpt2", 0}}};
    gguf_expect(base, &tokmodel, "tokenizer model \"gpt2\" is not supported");
    rewrite notok = {.kv = {{"tokenizer.ggml.model", 'd', NULL, 0}}};
    gguf_expect(base, &notok, "no tokenizer in this file");

    static const char *const tensors[] = {
        "token_embd.weight",     "output_norm.weight",       "blk.0.attn_norm.weight",
        "blk.0.ffn_norm.weight", "blk.0.attn_q.weight",      "blk.0.attn_k.weight",
        "blk.0.attn_v.weight",   "blk.0.attn_output.weight", "blk.0.ffn_gate.weight",
        "blk.0.ffn_up.weight",   "blk.0.ffn_down.weight"};
    for (size_t i = 0; i < sizeof tensors / sizeof tensors[0]; i++) {
        char want[160];
        snprintf(want, sizeof want, "tensor '%s' is missing", tensors[i]);
        rewrite r = {.drop_tensor = tensors[i]};
        gguf_expect(base, &r, want);
    }
    rewrite shape = {.reshape_tensor = "blk.0.attn_k.weight", .ne0 = 64, .ne1 = 32};
    gguf_expect(base, &shape,
                "tensor 'blk.0.attn_k.weight' has shape [64, 32] (n_dims 2), expected [64, 16]");
    rewrite transposed = {.reshape_tensor = "blk.0.ffn_down.weight", .ne0 = 64, .ne1 = 160};
    gguf_expect(base, &transposed, "tensor 'blk.0.ffn_down.weight' has shape [64, 160]");
    rewrite norm = {.reshape_tensor = "output_norm.weight", .ne0 = 32, .ne1 = 1};
    gguf_expect(base, &norm, "tensor 'output_norm.weight' should be a vector of 64 elements");
    rewrite out = {.reshape_tensor = "token_embd.weight", .ne0 = 64, .ne1 = 511};
    gguf_expect(base, &out, "tensor 'token_embd.weight' has shape [64, 511]");

    /* Not GGUF and not a file at all. */
    expect_refused("/nonexistent/model.gguf", NULL, "cannot open '/nonexistent/model.gguf'");
}

/* ---- llama2.c: synthetic checkpoints ---- */

enum { SD = 16, SH = 32, SL = 2, SNH = 4, SKV = 2, SV = 300, SCTX = 16 };

/* Floats a legacy file with header h carries after the header (classifier included). */
static size_t legacy_floats(const int32_t h[7]) {
    size_t D = (size_t)h[0], H = (size_t)h[1], L = (size_t)h[2], hd = D / (size_t)h[3];
    size_t KV = (size_t)h[4] * hd, V = (size_t)(h[5] < 0 ? -h[5] : h[5]), T = (size_t)h[6];
    size_t n =
        V * D + L * D + L * D * D + 2 * L * KV * D + L * D * D + L * D + 3 * L * H * D + D + T * hd;
    return n + (h[5] < 0 ? V * D : 0);
}

/* Writes a legacy file: header h, n_floats distinct values (index-derived, so a misplaced
 * pointer shows in a bitwise compare). */
static void write_legacy(const char *path, const int32_t h[7], size_t n_floats) {
    size_t n = 28 + n_floats * 4;
    unsigned char *b = malloc(n);
    assert_non_null(b);
    memcpy(b, h, 28);
    for (size_t i = 0; i < n_floats; i++) {
        float v = (float)(i % 1999) * 0.001f - 1.0f;
        memcpy(b + 28 + 4 * i, &v, 4);
    }
    write_bytes(path, b, n);
    free(b);
}

/* A llama2.c tokenizer.bin with n pieces: <unk>, <s>, </s>, the 256 byte pieces, words. */
static void write_tokenizer(const char *path, int n) {
    FILE *fp = fopen(path, "wb");
    assert_non_null(fp);
    int32_t max_len = 16;
    assert_int_equal(fwrite(&max_len, 4, 1, fp), 1);
    for (int i = 0; i < n; i++) {
        char s[32];
        if (i == 0)
            snprintf(s, sizeof s, "<unk>");
        else if (i == 1)
            snprintf(s, sizeof s, "\n<s>\n");
        else if (i == 2)
            snprintf(s, sizeof s, "\n</s>\n");
        else if (i < 259)
            snprintf(s, sizeof s, "<0x%02X>", i - 3);
        else
            snprintf(s, sizeof s, " w%d", i);
        float score = i < 259 ? 0.0f : (float)-i;
        int32_t len = (int32_t)strlen(s);
        assert_int_equal(fwrite(&score, 4, 1, fp), 1);
        assert_int_equal(fwrite(&len, 4, 1, fp), 1);
        assert_int_equal(fwrite(s, 1, (size_t)len, fp), (size_t)len);
    }
    assert_int_equal(fclose(fp), 0);
}

/* Converts a legacy checkpoint (in memory) to llama2.c's "version 1" layout at path. extra
 * is appended after the weights (NULL/0 for none); shared_flag overrides the classifier flag
 * when >= 0. */
static void legacy_to_v1(const unsigned char *leg, size_t size, const char *path, int shared_flag,
                         size_t trailing) {
    int32_t h[7];
    assert_true(size >= 28);
    memcpy(h, leg, 28);
    int shared = h[5] > 0;
    size_t D = (size_t)h[0], H = (size_t)h[1], L = (size_t)h[2], hd = D / (size_t)h[3];
    size_t KV = (size_t)h[4] * hd, V = (size_t)(shared ? h[5] : -h[5]), T = (size_t)h[6];
    /* legacy order and sizes (floats) */
    enum { EMB, ATT, WQ, WK, WV, WO, FFN, W1, W2, W3, FIN, ROPE, CLS, N_PART };
    size_t len[N_PART] = {V * D,     L * D,  L * D * D,         L * KV * D, L * KV * D,
                          L * D * D, L * D,  L * H * D,         L * D * H,  L * H * D,
                          D,         T * hd, shared ? 0 : V * D};
    size_t off[N_PART], pos = 28;
    for (int i = 0; i < N_PART; i++) {
        off[i] = pos;
        pos += len[i] * 4;
    }
    assert_int_equal(pos, size);
    static const int order[] = {ATT, FFN, FIN, EMB, WQ, WK, WV, WO, W1, W2, W3, CLS};
    FILE *fp = fopen(path, "wb");
    assert_non_null(fp);
    unsigned char hdr[256] = {0};
    uint32_t magic = 0x616b3432u;
    int32_t version = 1;
    h[5] = (int32_t)V;
    memcpy(hdr, &magic, 4);
    memcpy(hdr + 4, &version, 4);
    memcpy(hdr + 8, h, 28);
    hdr[36] = (unsigned char)(shared_flag >= 0 ? shared_flag : shared);
    assert_int_equal(fwrite(hdr, 1, 256, fp), 256);
    for (size_t i = 0; i < sizeof order / sizeof order[0]; i++)
        if (len[order[i]])
            assert_int_equal(fwrite(leg + off[order[i]], 4, len[order[i]], fp), len[order[i]]);
    for (size_t i = 0; i < trailing; i++)
        assert_int_equal(fputc(0, fp), 0);
    assert_int_equal(fclose(fp), 0);
}

static void test_llama2c_synthetic(void **state) {
    (void)state;
    char tok[4096], path[4096], path2[4096];
    tu_scratch("l2c-tok300.bin", tok, sizeof tok);
    write_tokenizer(tok, SV);
    const int32_t good[7] = {SD, SH, SL, SNH, SKV, SV, SCTX};
    tu_scratch("l2c-good.bin", path, sizeof path);
    write_legacy(path, good, legacy_floats(good));
    weft_model *m = load_ok(path, tok);
    const weft_config *c = &m->cfg;
    assert_string_equal(m->source, "llama2c");
    assert_string_equal(m->arch, "llama");
    assert_int_equal(c->dim, SD);
    assert_int_equal(c->hidden_dim, SH);
    assert_int_equal(c->n_layers, SL);
    assert_int_equal(c->n_heads, SNH);
    assert_int_equal(c->n_kv_heads, SKV);
    assert_int_equal(c->head_dim, SD / SNH);
    assert_int_equal(c->rope_dim, SD / SNH);
    assert_int_equal(c->vocab_size, SV);
    assert_int_equal(c->ctx_len, SCTX);
    assert_int_equal(c->bos_id, 1);
    assert_int_equal(c->eos_id, 2);
    assert_int_equal(c->n_stop_ids, 1);
    assert_int_equal(m->tied_output, 1);
    assert_ptr_equal(m->output.data, m->tok_embd.data);
    /* the embedding is the first tensor after the 28-byte header */
    assert_ptr_equal(m->tok_embd.data, (const unsigned char *)m->map + 28);
    assert_int_equal(model_param_count(m),
                     (uint64_t)SV * SD + SD +
                         SL * (2 * SD + 2 * SD * SD + 2 * (SKV * SD / SNH) * SD + 3 * SH * SD));
    assert_int_equal(model_weight_bytes(m), 4 * model_param_count(m));

    /* The same weights in the version-1 layout load bit for bit the same. */
    size_t size;
    unsigned char *leg = (unsigned char *)tu_read_file(path, &size);
    assert_non_null(leg);
    tu_scratch("l2c-good-v1.bin", path2, sizeof path2);
    legacy_to_v1(leg, size, path2, -1, 0);
    weft_model *v1 = load_ok(path2, tok);
    assert_string_equal(v1->source, "llama2c-v1");
    assert_int_equal(v1->tied_output, 1);
    assert_int_equal(v1->cfg.ctx_len, SCTX);
    same_weights(m, v1);
    model_free(v1);
    /* v1 whose flag says "separate classifier" but has none: truncated; flag "shared" with
     * extra bytes: trailing */
    legacy_to_v1(leg, size, path2, 0, 0);
    expect_refused(path2, tok, "truncated");
    legacy_to_v1(leg, size, path2, 1, 12);
    expect_refused(path2, tok, "has 12 trailing bytes");
    free(leg);

    /* Separate classifier (negative vocab) in both layouts. */
    const int32_t unshared[7] = {SD, SH, SL, SNH, SKV, -SV, SCTX};
    tu_scratch("l2c-unshared.bin", path, sizeof path);
    write_legacy(path, unshared, legacy_floats(unshared));
    weft_model *u = load_ok(path, tok);
    assert_int_equal(u->tied_output, 0);
    assert_int_equal(u->cfg.vocab_size, SV);
    assert_ptr_equal(u->output.data, (const unsigned char *)u->map + u->map_size - 4u * SV * SD);
    same_matrix(&u->tok_embd, &m->tok_embd);
    leg = (unsigned char *)tu_read_file(path, &size);
    assert_non_null(leg);
    legacy_to_v1(leg, size, path2, -1, 0);
    free(leg);
    v1 = load_ok(path2, tok);
    assert_int_equal(v1->tied_output, 0);
    same_weights(u, v1);
    model_free(v1);
    model_free(u);
    model_free(m);
}

static void test_llama2c_refusals(void **state) {
    (void)state;
    char tok[4096], path[4096];
    tu_scratch("l2c-tok300.bin", tok, sizeof tok);
    write_tokenizer(tok, SV);
    tu_scratch("l2c-bad.bin", path, sizeof path);
    const int32_t good[7] = {SD, SH, SL, SNH, SKV, SV, SCTX};
    size_t nf = legacy_floats(good);

    static const struct {
        int field;
        int32_t value;
        const char *want;
    } cases[] = {
        {0, 0, "non-positive size (dim 0 "},
        {0, -16, "non-positive size (dim -16 "},
        {1, 0, "hidden 0 "},
        {2, -1, "layers -1 "},
        {3, 0, "heads 0 "},
        {4, 0, "kv_heads 0 "},
        {5, 0, "vocab 0 "},
        {5, INT32_MIN, "vocab -2147483648 "},
        {6, 0, "seq_len 0)"},
        {6, -5, "seq_len -5)"},
        {3, 3, "dim 16 / heads 3 / kv_heads 2 do not divide evenly"},
        {4, 3, "dim 16 / heads 4 / kv_heads 3 do not divide evenly"},
        {3, 16, "head size 1 is odd"},
        {0, 1 << 20, "implausibly large"},
        {2, INT32_MAX, "implausibly large"},
        {5, INT32_MAX, "implausibly large"},
        {5, -INT32_MAX, "implausibly large"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        int32_t h[7];
        memcpy(h, good, sizeof h);
        h[cases[i].field] = cases[i].value;
        if (cases[i].field == 3 && cases[i].value == 16) h[4] = 16;
        write_legacy(path, h, nf);
        expect_refused(path, tok, cases[i].want);
    }

    /* Sizes that fit the header but not the file, or leave bytes over. */
    write_legacy(path, good, nf - 1);
    expect_refused(path, tok, "truncated");
    write_legacy(path, good, nf + 1);
    expect_refused(path, tok, "has 4 trailing bytes");
    const int32_t unshared[7] = {SD, SH, SL, SNH, SKV, -SV, SCTX};
    write_legacy(path, unshared, nf); /* classifier missing */
    expect_refused(path, tok, "truncated");
    write_bytes(path, good, 20);
    expect_refused(path, tok, "is 20 bytes, too small for a header");
    write_bytes(path, "", 0);
    expect_refused(path, tok, "is 0 bytes, too small for a header");

    /* version-1 headers */
    unsigned char v1[300] = {0};
    uint32_t magic = 0x616b3432u;
    int32_t version = 2;
    memcpy(v1, &magic, 4);
    memcpy(v1 + 4, &version, 4);
    memcpy(v1 + 8, good, 28);
    write_bytes(path, v1, sizeof v1);
    expect_refused(path, tok, "export version 2 is not supported");
    version = 1;
    memcpy(v1 + 4, &version, 4);
    write_bytes(path, v1, 100);
    expect_refused(path, tok, "truncated v1 header");
    write_bytes(path, v1, sizeof v1);
    expect_refused(path, tok, "truncated");

    /* Tokenizer problems. */
    write_legacy(path, good, nf);
    expect_refused(path, NULL, "needs a tokenizer (--tokenizer tokenizer.bin)");
    expect_refused(path, "/nonexistent/tok.bin", "/nonexistent/tok.bin");
    char small[4096];
    tu_scratch("l2c-tok290.bin", small, sizeof small);
    write_tokenizer(small, SV - 10);
    expect_refused(path, small, "truncated at token 290 of 300");
    /* the header problem is reported even when the tokenizer is also missing */
    write_legacy(path, good, nf - 1);
    expect_refused(path, NULL, "truncated");
}

/* ---- llama2.c: the real checkpoints in ../shared ---- */

static void test_stories260k(void **state) {
    (void)state;
    TU_SHARED_OR_SKIP(bin, "models/stories260K.bin");
    TU_SHARED_OR_SKIP(tok, "models/tok512.bin");
    TU_SHARED_OR_SKIP(gguf, "models/stories260K.gguf");
    weft_model *m = load_ok(bin, tok);
    const weft_config *c = &m->cfg;
    assert_string_equal(m->source, "llama2c");
    assert_int_equal(c->dim, 64);
    assert_int_equal(c->hidden_dim, 172);
    assert_int_equal(c->n_layers, 5);
    assert_int_equal(c->n_heads, 8);
    assert_int_equal(c->n_kv_heads, 4);
    assert_int_equal(c->head_dim, 8);
    assert_int_equal(c->vocab_size, 512);
    assert_int_equal(c->ctx_len, 512);
    assert_int_equal(m->tied_output, 1);
    assert_int_equal(model_param_count(m), 260032);

    /* The two loaders agree on every weight (the GGUF's separate output.weight equals the
     * shared embedding). */
    weft_model *g = load_ok(gguf, NULL);
    assert_int_equal(g->tied_output, 0);
    same_weights(m, g);
    assert_int_equal(g->cfg.bos_id, c->bos_id);
    assert_int_equal(g->cfg.eos_id, c->eos_id);
    model_free(g);

    /* Legacy -> version 1 conversion: bit-identical weights. */
    size_t size;
    unsigned char *leg = (unsigned char *)tu_read_file(bin, &size);
    assert_non_null(leg);
    char v1p[4096];
    tu_scratch("stories260K-v1.bin", v1p, sizeof v1p);
    legacy_to_v1(leg, size, v1p, -1, 0);
    weft_model *v1 = load_ok(v1p, tok);
    assert_string_equal(v1->source, "llama2c-v1");
    assert_int_equal(v1->tied_output, 1);
    assert_int_equal(v1->cfg.ctx_len, 512);
    same_weights(m, v1);
    model_free(v1);

    /* Unshared classifier: vocab negated, a classifier (here the embedding negated) appended. */
    size_t cls = 512u * 64u * 4u;
    unsigned char *un = malloc(size + cls);
    assert_non_null(un);
    memcpy(un, leg, size);
    int32_t v = -512;
    memcpy(un + 20, &v, 4);
    for (size_t i = 0; i < cls; i += 4) {
        float x;
        memcpy(&x, leg + 28 + i, 4);
        x = -x;
        memcpy(un + size + i, &x, 4);
    }
    char unp[4096];
    tu_scratch("stories260K-unshared.bin", unp, sizeof unp);
    write_bytes(unp, un, size + cls);
    weft_model *u = load_ok(unp, tok);
    assert_int_equal(u->tied_output, 0);
    assert_int_equal(u->cfg.vocab_size, 512);
    assert_memory_equal(u->output.data, un + size, cls);
    same_matrix(&u->tok_embd, &m->tok_embd);
    assert_int_equal(model_param_count(u), 260032 + 512 * 64);
    legacy_to_v1(un, size + cls, v1p, -1, 0);
    v1 = load_ok(v1p, tok);
    assert_int_equal(v1->tied_output, 0);
    same_weights(u, v1);
    model_free(v1);
    model_free(u);

    /* Truncated copies and trailing garbage. */
    char bad[4096];
    tu_scratch("stories260K-bad.bin", bad, sizeof bad);
    const size_t cuts[] = {28, 29, 1000, 131100, size / 2, size - 4 * 4096, size - 4, size - 1};
    for (size_t i = 0; i < sizeof cuts / sizeof cuts[0]; i++) {
        write_bytes(bad, leg, cuts[i]);
        expect_refused(bad, tok, "is truncated");
    }
    write_bytes(bad, leg, 27);
    expect_refused(bad, tok, "too small for a header");
    memcpy(un, leg, size);
    memcpy(un + size, "garbage!", 8);
    write_bytes(bad, un, size + 8);
    expect_refused(bad, tok, "has 8 trailing bytes");
    /* the classifier flag flipped on the real file: the weights come up short */
    memcpy(un + 20, &v, 4);
    write_bytes(bad, un, size);
    expect_refused(bad, tok, "is truncated");
    free(un);
    free(leg);

    /* A truncated tokenizer. */
    size_t tsize;
    char *tb = tu_read_file(tok, &tsize);
    assert_non_null(tb);
    char badtok[4096];
    tu_scratch("tok512-cut.bin", badtok, sizeof badtok);
    write_bytes(badtok, tb, tsize / 2);
    expect_refused(bin, badtok, "truncated");
    free(tb);
    model_free(m);
}

static void test_aidreams260k(void **state) {
    (void)state;
    TU_SHARED_OR_SKIP(bin, "models/aidreams260K.bin");
    TU_SHARED_OR_SKIP(tok, "models/aidreams260K.tok512.bin");
    weft_model *m = load_ok(bin, tok);
    const weft_config *c = &m->cfg;
    assert_int_equal(c->n_layers, 4);
    assert_int_equal(c->n_heads, 4);
    assert_int_equal(c->n_kv_heads, 4);
    assert_int_equal(c->ctx_len, 128);
    assert_int_equal(c->vocab_size, 512);
    assert_int_equal(c->head_dim * c->n_heads, c->dim);
    assert_int_equal(m->layers[0].wk.rows, c->dim); /* no GQA */
    fprintf(stdout, "  aidreams260K: dim %d hidden %d tied %d\n", c->dim, c->hidden_dim,
            m->tied_output);
    model_free(m);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_gguf_every_type),  cmocka_unit_test(test_gguf_untied_rope_stops),
        cmocka_unit_test(test_gguf_refusals),    cmocka_unit_test(test_llama2c_synthetic),
        cmocka_unit_test(test_llama2c_refusals), cmocka_unit_test(test_stories260k),
        cmocka_unit_test(test_aidreams260k),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
