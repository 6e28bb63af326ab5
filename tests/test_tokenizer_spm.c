/* test_tokenizer_spm.c — the tokenizer loaded from GGUF metadata (tok_load_gguf): llama.cpp's
 * llama-spm vocabulary and all of its test vectors, and refusal of unsupported or malformed
 * tokenizer metadata. Needs the GGUF reader and writer (src/model/gguf_*.c). */
#include "support/testutil.h"
#include "support/tok_cases.h"
#include "weft/gguf.h"
#include "weft/tokenizer.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SPM_GGUF "models/tokenizers/ggml-vocab-llama-spm.gguf"
#define SPM_INP "models/tokenizers/ggml-vocab-llama-spm.gguf.inp"
#define SPM_OUT "models/tokenizers/ggml-vocab-llama-spm.gguf.out"
#define TOK512_BIN "models/tok512.bin"
#define STORIES_GGUF "models/stories260K.gguf"

static void test_spm_vectors(void **state) {
    (void)state;
    TU_SHARED_OR_SKIP(path, SPM_GGUF);
    TU_SHARED_OR_SKIP(inp, SPM_INP);
    TU_SHARED_OR_SKIP(out, SPM_OUT);
    weft_err err = {{0}};
    gguf_file *f = gguf_open(path, &err);
    if (!f) fail_msg("gguf_open: %s", err.msg);
    weft_tokenizer *t = tok_load_gguf(f, &err);
    if (!t) fail_msg("tok_load_gguf: %s", err.msg);
    gguf_close(f); /* the tokenizer keeps its own copies */
    assert_int_equal(tok_vocab_size(t), 32000);
    assert_int_equal(tok_bos(t), 1);
    assert_int_equal(tok_eos(t), 2);
    assert_int_equal(tok_type_of(t, 1), TOK_CONTROL);
    assert_int_equal(tok_type_of(t, 3), TOK_BYTE);
    int n_cases, n_matched;
    assert_int_equal(tu_run_vocab_cases(t, inp, out, &n_cases, &n_matched), 0);
    printf("llama-spm test vectors (GGUF vocabulary): %d/%d cases match\n", n_matched, n_cases);
    assert_int_equal(n_cases, 46);
    assert_int_equal(n_matched, n_cases);
    tok_free(t);
}

/* The GGUF and the tokenizer.bin of stories260K hold the same 512-token vocabulary. */
static void test_gguf_matches_bin(void **state) {
    (void)state;
    TU_SHARED_OR_SKIP(gpath, STORIES_GGUF);
    TU_SHARED_OR_SKIP(bpath, TOK512_BIN);
    weft_err err = {{0}};
    gguf_file *f = gguf_open(gpath, &err);
    if (!f) fail_msg("gguf_open: %s", err.msg);
    weft_tokenizer *a = tok_load_gguf(f, &err);
    if (!a) fail_msg("tok_load_gguf: %s", err.msg);
    gguf_close(f);
    weft_tokenizer *b = tok_load_bin(bpath, 512, &err);
    if (!b) fail_msg("tok_load_bin: %s", err.msg);
    assert_int_equal(tok_vocab_size(a), tok_vocab_size(b));
    for (int i = 0; i < tok_vocab_size(a); i++) {
        assert_string_equal(tok_piece(a, i), tok_piece(b, i));
        assert_float_equal(tok_score(a, i), tok_score(b, i), 1e-6);
        assert_int_equal(tok_type_of(a, i), tok_type_of(b, i));
    }
    tok_free(a);
    tok_free(b);
}

/* Writes a vocabulary-only GGUF with the given model name (and optionally no tokens). */
static const char *write_vocab(const char *name, const char *model, bool with_tokens,
                               char *path, size_t size) {
    tu_scratch(name, path, size);
    gguf_writer *w = gguf_writer_new();
    assert_non_null(w);
    if (model) assert_int_equal(gguf_writer_set_str(w, "tokenizer.ggml.model", model), 0);
    const char *toks[] = {"<unk>", "<s>", "</s>", "\u2581a", "b"};
    const float scores[] = {0, 0, 0, -1, -2};
    if (with_tokens) {
        assert_int_equal(gguf_writer_set_arr_str(w, "tokenizer.ggml.tokens", toks, 5), 0);
        assert_int_equal(gguf_writer_set_arr_f32(w, "tokenizer.ggml.scores", scores, 5), 0);
    }
    weft_err err = {{0}};
    if (gguf_writer_write(w, path, &err) != 0) fail_msg("gguf_writer_write: %s", err.msg);
    gguf_writer_free(w);
    return path;
}

static void expect_refused(const char *path, const char *want) {
    weft_err err = {{0}};
    gguf_file *f = gguf_open(path, &err);
    if (!f) fail_msg("gguf_open(%s): %s", path, err.msg);
    weft_tokenizer *t = tok_load_gguf(f, &err);
    gguf_close(f);
    if (t) fail_msg("%s: tokenizer accepted", path);
    if (!strstr(err.msg, want)) fail_msg("%s: message \"%s\" lacks \"%s\"", path, err.msg, want);
    printf("refused: %s\n", err.msg);
}

static void test_refusals(void **state) {
    (void)state;
    char path[4096];
    expect_refused(write_vocab("tok-gpt2.gguf", "gpt2", true, path, sizeof path),
                   "\"gpt2\" is not supported");
    expect_refused(write_vocab("tok-nomodel.gguf", NULL, true, path, sizeof path),
                   "no tokenizer.ggml.model");
    expect_refused(write_vocab("tok-notokens.gguf", "llama", false, path, sizeof path),
                   "no tokenizer.ggml.tokens");
    /* the minimal valid one loads, scores kept, types inferred, default special ids */
    write_vocab("tok-ok.gguf", "llama", true, path, sizeof path);
    weft_err err = {{0}};
    gguf_file *f = gguf_open(path, &err);
    assert_non_null(f);
    weft_tokenizer *t = tok_load_gguf(f, &err);
    if (!t) fail_msg("tok_load_gguf: %s", err.msg);
    gguf_close(f);
    assert_int_equal(tok_type_of(t, 1), TOK_CONTROL);
    assert_float_equal(tok_score(t, 4), -2.0f, 0);
    int32_t ids[4];
    assert_int_equal(tok_encode(t, "ab", 2, false, ids, 4), 2);
    assert_int_equal(ids[0], 3);
    assert_int_equal(ids[1], 4);
    tok_free(t);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_spm_vectors),
        cmocka_unit_test(test_gguf_matches_bin),
        cmocka_unit_test(test_refusals),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
