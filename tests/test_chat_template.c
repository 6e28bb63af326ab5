/* test_chat_template.c — chat templates: detection from GGUF metadata (tokenizer.chat_template,
 * general.name) and the rendered prompt of each format, read back as text with control tokens
 * spelled out, on a synthetic model carrying the real Llama-2 vocabulary. The expected strings
 * are written from the formats' public definitions (Llama-2 chat, ChatML, Zephyr), with
 * SentencePiece's dummy-prefix space at the start of every text run that follows a control token,
 * as llama.cpp tokenizes such prompts. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "server/chat_template.h"
#include "support/testutil.h"
#include "weft/gguf.h"
#include "weft/synth.h"

typedef struct copy_ctx {
    const gguf_file *src;
} copy_ctx;

static int copy_fill(void *ctx, const char *name, void *dst, uint64_t nbytes) {
    const gguf_tensor *t = gguf_find_tensor(((copy_ctx *)ctx)->src, name);
    if (!t || t->nbytes != nbytes) return -1;
    memcpy(dst, t->data, nbytes);
    return 0;
}

/* Copies base to out, adding string metadata key = value (key NULL: plain copy). */
static void copy_with_meta(const char *base, const char *out, const char *key, const char *value) {
    weft_err err = {{0}};
    gguf_file *f = gguf_open(base, &err);
    assert_non_null(f);
    gguf_writer *w = gguf_writer_new();
    assert_non_null(w);
    for (size_t i = 0; i < gguf_kv_count(f); i++) assert_int_equal(gguf_writer_copy_kv(w, f, i), 0);
    if (key) assert_int_equal(gguf_writer_set_str(w, key, value), 0);
    copy_ctx cc = {f};
    for (size_t i = 0; i < gguf_tensor_count(f); i++) {
        const gguf_tensor *t = gguf_tensor_at(f, i);
        assert_int_equal(gguf_writer_add_tensor(w, t->name, t->n_dims, t->ne, t->type, copy_fill, &cc), 0);
    }
    if (gguf_writer_write(w, out, &err) != 0) fail_msg("write: %s", err.msg);
    gguf_writer_free(w);
    gguf_close(f);
}

static char g_base[4096];

static int setup(void **state) {
    (void)state;
    char vbuf[4096];
    const char *vocab = tu_shared("models/tokenizers/tokenizer_llama2_32000.bin", vbuf, sizeof vbuf);
    if (!vocab) return 0; /* tests skip loudly */
    tu_scratch("chat-base.gguf", g_base, sizeof g_base);
    synth_options o;
    synth_options_init(&o);
    o.preset = "test-gqa";
    o.n_layers = 1;
    o.vocab_from = vocab;
    weft_err err = {{0}};
    return synth_write(&o, g_base, NULL, &err);
}

static weft_model *load_with(const char *key, const char *value, const char *tag) {
    char path[4096];
    tu_scratch(tag, path, sizeof path);
    copy_with_meta(g_base, path, key, value);
    weft_err err = {{0}};
    weft_model *m = model_load(path, NULL, &err);
    if (!m) fail_msg("load: %s", err.msg);
    return m;
}

/* Ids back to text: control tokens as <s>/</s>, byte tokens as their byte, ▁ as a space. */
static void ids_to_text(const weft_model *m, const int32_t *ids, int n, char *out, size_t size) {
    size_t o = 0;
    out[0] = 0;
    for (int i = 0; i < n; i++) {
        char buf[64];
        const char *p = tok_piece(m->tok, ids[i]);
        if (ids[i] == tok_bos(m->tok)) p = "<s>";
        else if (ids[i] == tok_eos(m->tok)) p = "</s>";
        else if (tok_type_of(m->tok, ids[i]) == TOK_BYTE) {
            unsigned v = 0;
            sscanf(p, "<0x%2X>", &v);
            buf[0] = (char)v;
            buf[1] = 0;
            p = buf;
        }
        for (; *p && o + 4 < size; p++) {
            if ((unsigned char)p[0] == 0xE2 && (unsigned char)p[1] == 0x96 && (unsigned char)p[2] == 0x81) {
                out[o++] = ' ';
                p += 2;
            } else {
                out[o++] = *p;
            }
        }
        out[o] = 0;
    }
}

static void expect_render(const weft_model *m, const char *tmpl, const chat_msg *msgs, int n,
                          const char *expected) {
    chat_template t;
    assert_int_equal(chat_template_init(&t, m, tmpl), 0);
    int32_t *ids = NULL;
    int k = chat_render(&t, m, msgs, n, &ids);
    assert_true(k > 0);
    char text[4096];
    ids_to_text(m, ids, k, text, sizeof text);
    if (strcmp(text, expected) != 0) fail_msg("%s rendered\n[%s]\nexpected\n[%s]", tmpl, text, expected);
    free(ids);
}

#define MSG(r, s) {r, s, sizeof(s) - 1}

static void test_render_formats(void **state) {
    (void)state;
    char vbuf[4096];
    if (!tu_shared("models/tokenizers/tokenizer_llama2_32000.bin", vbuf, sizeof vbuf)) skip();
    weft_model *m = load_with(NULL, NULL, "chat-plain.gguf");
    const chat_msg sys_user[] = {MSG(CHAT_SYSTEM, "You are kind."), MSG(CHAT_USER, "Hi there")};
    const chat_msg turns[] = {MSG(CHAT_USER, "A"), MSG(CHAT_ASSISTANT, "B"), MSG(CHAT_USER, "C")};
    expect_render(m, "llama2", sys_user, 2,
                  "<s> [INST] <<SYS>>\nYou are kind.\n<</SYS>>\n\nHi there [/INST]");
    expect_render(m, "llama2", turns, 3, "<s> [INST] A [/INST] B</s><s> [INST] C [/INST]");
    /* This vocabulary has no <|im_start|> token, so ChatML markers are plain text. */
    expect_render(m, "chatml", sys_user, 2,
                  "<s> <|im_start|>system\nYou are kind.<|im_end|>\n<|im_start|>user\nHi there"
                  "<|im_end|>\n<|im_start|>assistant\n");
    expect_render(m, "zephyr", sys_user, 2,
                  "<s> <|system|>\nYou are kind.</s> \n<|user|>\nHi there</s> \n<|assistant|>\n");
    expect_render(m, "raw", turns, 3, "<s> A\n\nB\n\nC");
    chat_template t;
    assert_int_equal(chat_template_init(&t, m, "nonsense"), -1);
    model_free(m);
}

static void test_detection(void **state) {
    (void)state;
    char vbuf[4096];
    if (!tu_shared("models/tokenizers/tokenizer_llama2_32000.bin", vbuf, sizeof vbuf)) skip();
    static const struct {
        const char *key, *value;
        chat_kind kind;
    } cases[] = {
        {"tokenizer.chat_template", "{% for m in messages %}<|im_start|>{{ m.role }}", CHAT_CHATML},
        {"tokenizer.chat_template", "{% if m.role == 'user' %}<|user|>\n{{ m.content }}", CHAT_ZEPHYR},
        {"tokenizer.chat_template", "{{ bos_token + '[INST] ' + m.content + ' [/INST]' }}", CHAT_LLAMA2},
        {"general.name", "Llama-2-7b-Chat", CHAT_LLAMA2},
        {"general.name", "zephyr-7b-beta", CHAT_ZEPHYR},
        {"general.name", "OpenHermes-2.5", CHAT_CHATML},
        {NULL, NULL, CHAT_RAW},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        char tag[64];
        snprintf(tag, sizeof tag, "chat-detect-%zu.gguf", i);
        weft_model *m = load_with(cases[i].key, cases[i].value, tag);
        chat_template t;
        assert_int_equal(chat_template_init(&t, m, NULL), 0);
        if (t.kind != cases[i].kind)
            fail_msg("case %zu (%s): detected %s, expected %s", i, cases[i].value ? cases[i].value : "none",
                     chat_kind_name(t.kind), chat_kind_name(cases[i].kind));
        model_free(m);
    }
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_render_formats),
        cmocka_unit_test(test_detection),
    };
    return cmocka_run_group_tests(tests, setup, NULL);
}
