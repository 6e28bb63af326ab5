/* test_tokenizer.c — the SentencePiece tokenizer through its tokenizer.bin loader: loading real
 * vocabularies, llama.cpp's test vectors (the 32000-token Llama-2 vocabulary in tokenizer.bin is
 * the same vocabulary, scores included, as ggml-vocab-llama-spm.gguf), round trips, the
 * streaming decoder, hostile files, and the in-memory constructor. */
#include "support/testutil.h"
#include "support/tok_cases.h"
#include "weft/tokenizer.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define TOK512 "models/tok512.bin"
#define LLAMA2 "models/tokenizers/tokenizer_llama2_32000.bin"
#define SPM_INP "models/tokenizers/ggml-vocab-llama-spm.gguf.inp"
#define SPM_OUT "models/tokenizers/ggml-vocab-llama-spm.gguf.out"

static weft_tokenizer *load_or_fail(const char *path, int n) {
    weft_err err = {{0}};
    weft_tokenizer *t = tok_load_bin(path, n, &err);
    if (!t) fail_msg("tok_load_bin(%s): %s", path, err.msg);
    return t;
}

/* Decodes ids with the streaming decoder (flushing at the end) into a malloc'd string. */
static char *decode_all(const weft_tokenizer *t, const int32_t *ids, int n) {
    size_t cap = (size_t)n * 64 + 64, len = 0;
    char *s = malloc(cap);
    assert_non_null(s);
    tok_decoder d;
    tok_decoder_init(&d, t);
    for (int i = 0; i < n; i++) {
        int k = tok_decoder_feed(&d, ids[i], s + len, cap - len);
        assert_true(k >= 0);
        len += (size_t)k;
    }
    int k = tok_decoder_flush(&d, s + len, cap - len);
    assert_true(k >= 0);
    return s;
}

static void check_round_trip(const weft_tokenizer *t, const char *text, bool bos) {
    size_t len = strlen(text);
    int32_t ids[1024];
    int n = tok_encode(t, text, len, bos, ids, 1024);
    assert_true(n >= 0 && n <= 1024);
    char *back = decode_all(t, ids, n);
    if (strcmp(back, text) != 0) fail_msg("round trip: \"%s\" came back as \"%s\"", text, back);
    free(back);
}

static const char *const round_trip_texts[] = {
    "",
    "Hello world",
    " Hello world",
    "  two leading spaces",
    "trailing space ",
    "Once upon a time, there was a little girl named Lily.",
    "line one\nline two\n\n\ttabbed",
    "Äpfel und Birnen kosten 4 ½ €",
    "нещо на български",
    "日本語のテキストと中文",
    "emoji 🦙🚀 and a family 👨‍👩‍👧 ✅",
    "ខ្មែរ script",
    "<s> and </s> and <0x41> and <unk> are just text",
    "   ",
    "\n",
};

static void test_load_tok512(void **state) {
    (void)state;
    TU_SHARED_OR_SKIP(path, TOK512);
    weft_tokenizer *t = load_or_fail(path, 512);
    assert_int_equal(tok_vocab_size(t), 512);
    assert_int_equal(tok_bos(t), 1);
    assert_int_equal(tok_eos(t), 2);
    assert_string_equal(tok_piece(t, 0), "<unk>");
    assert_string_equal(tok_piece(t, 1), "<s>"); /* "\n<s>\n" in the file */
    assert_string_equal(tok_piece(t, 2), "</s>");
    assert_string_equal(tok_piece(t, 13), "<0x0A>");
    assert_string_equal(tok_piece(t, 259), "\u2581t"); /* " t" in the file */
    assert_int_equal(tok_type_of(t, 0), TOK_UNKNOWN);
    assert_int_equal(tok_type_of(t, 1), TOK_CONTROL);
    assert_int_equal(tok_type_of(t, 2), TOK_CONTROL);
    assert_int_equal(tok_type_of(t, 3), TOK_BYTE);
    assert_int_equal(tok_type_of(t, 258), TOK_BYTE);
    assert_int_equal(tok_type_of(t, 259), TOK_NORMAL);
    assert_null(tok_piece(t, 512));
    assert_null(tok_piece(t, -1));
    for (size_t i = 0; i < sizeof round_trip_texts / sizeof *round_trip_texts; i++) {
        check_round_trip(t, round_trip_texts[i], false);
        check_round_trip(t, round_trip_texts[i], true);
    }
    tok_free(t);
}

static void test_load_llama2(void **state) {
    (void)state;
    TU_SHARED_OR_SKIP(path, LLAMA2);
    weft_tokenizer *t = load_or_fail(path, 32000);
    assert_int_equal(tok_vocab_size(t), 32000);
    assert_string_equal(tok_piece(t, 15043), "\u2581Hello");
    assert_string_equal(tok_piece(t, 259), "\u2581\u2581");
    for (size_t i = 0; i < sizeof round_trip_texts / sizeof *round_trip_texts; i++) {
        check_round_trip(t, round_trip_texts[i], false);
        check_round_trip(t, round_trip_texts[i], true);
    }
    int32_t ids[8];
    /* BOS and the dummy prefix */
    assert_int_equal(tok_encode(t, "Hello world", 11, true, ids, 8), 3);
    assert_int_equal(ids[0], 1);
    assert_int_equal(ids[1], 15043);
    assert_int_equal(ids[2], 3186);
    assert_int_equal(tok_encode(t, "", 0, true, ids, 8), 1);
    assert_int_equal(tok_encode(t, "", 0, false, ids, 8), 0);
    /* a short buffer still reports the full count and fills what it can */
    ids[1] = -7;
    assert_int_equal(tok_encode(t, "Hello world", 11, false, ids, 1), 2);
    assert_int_equal(ids[0], 15043);
    assert_int_equal(ids[1], -7);
    assert_int_equal(tok_encode(t, "Hello world", 11, false, NULL, 0), 2);
    /* literal special-token text never becomes the special token */
    int n = tok_encode(t, "<s>", 3, false, ids, 8);
    for (int i = 0; i < n && i < 8; i++) assert_true(ids[i] != 1);
    tok_free(t);
}

static void test_llama_spm_vectors(void **state) {
    (void)state;
    TU_SHARED_OR_SKIP(path, LLAMA2);
    TU_SHARED_OR_SKIP(inp, SPM_INP);
    TU_SHARED_OR_SKIP(out, SPM_OUT);
    weft_tokenizer *t = load_or_fail(path, 32000);
    int n_cases, n_matched;
    assert_int_equal(tu_run_vocab_cases(t, inp, out, &n_cases, &n_matched), 0);
    printf("llama-spm test vectors (tokenizer.bin vocabulary): %d/%d cases match\n", n_matched,
           n_cases);
    assert_int_equal(n_cases, 46);
    assert_int_equal(n_matched, n_cases);
    tok_free(t);
}

static void test_streaming_decode(void **state) {
    (void)state;
    TU_SHARED_OR_SKIP(path, TOK512);
    weft_tokenizer *t = load_or_fail(path, 512);
    char buf[64];
    tok_decoder d;
    /* "€" = E2 82 AC as three byte tokens: nothing until the last one */
    tok_decoder_init(&d, t);
    assert_int_equal(tok_decoder_feed(&d, 1, buf, sizeof buf), 0); /* BOS */
    assert_int_equal(tok_decoder_feed(&d, 3 + 0xE2, buf, sizeof buf), 0);
    assert_int_equal(tok_decoder_feed(&d, 3 + 0x82, buf, sizeof buf), 0);
    assert_int_equal(d.n_pend, 2);
    assert_int_equal(tok_decoder_feed(&d, 3 + 0xAC, buf, sizeof buf), 3);
    assert_string_equal(buf, "\xe2\x82\xac");
    assert_int_equal(tok_decoder_flush(&d, buf, sizeof buf), 0);

    /* leading space dropped after BOS only; "▁t" later keeps it */
    tok_decoder_init(&d, t);
    assert_int_equal(tok_decoder_feed(&d, 1, buf, sizeof buf), 0);
    assert_int_equal(tok_decoder_feed(&d, 259, buf, sizeof buf), 1);
    assert_string_equal(buf, "t");
    assert_int_equal(tok_decoder_feed(&d, 259, buf, sizeof buf), 2);
    assert_string_equal(buf, " t");
    assert_int_equal(tok_decoder_feed(&d, 2, buf, sizeof buf), 0); /* EOS prints nothing */

    /* an incomplete character interrupted by text becomes U+FFFD, then the text */
    tok_decoder_init(&d, t);
    assert_int_equal(tok_decoder_feed(&d, 3 + 0xF0, buf, sizeof buf), 0);
    assert_int_equal(tok_decoder_feed(&d, 3 + 0x9F, buf, sizeof buf), 0);
    assert_int_equal(tok_decoder_feed(&d, 3 + 'a', buf, sizeof buf), 4);
    assert_string_equal(buf, "\xef\xbf\xbd" "a");
    /* a stray continuation byte and a lead byte left pending at the end */
    assert_int_equal(tok_decoder_feed(&d, 3 + 0x80, buf, sizeof buf), 3);
    assert_string_equal(buf, "\xef\xbf\xbd");
    assert_int_equal(tok_decoder_feed(&d, 3 + 0xE2, buf, sizeof buf), 0);
    assert_int_equal(tok_decoder_flush(&d, buf, sizeof buf), 3);
    assert_string_equal(buf, "\xef\xbf\xbd");
    assert_int_equal(d.n_pend, 0);
    /* invalid ids print nothing; a too-small buffer fails without consuming */
    assert_int_equal(tok_decoder_feed(&d, -5, buf, sizeof buf), 0);
    assert_int_equal(tok_decoder_feed(&d, 512, buf, sizeof buf), 0);
    assert_int_equal(tok_decoder_feed(&d, 259, buf, 2), -1);
    assert_int_equal(tok_decoder_feed(&d, 259, buf, 3), 2);
    assert_string_equal(buf, " t");
    tok_free(t);
}

/* Writes a scratch file and expects tok_load_bin to refuse it with a message containing want. */
static void expect_refused(const char *name, const void *data, size_t size, int vocab,
                           const char *want) {
    char path[4096];
    tu_scratch(name, path, sizeof path);
    FILE *fp = fopen(path, "wb");
    assert_non_null(fp);
    assert_int_equal(fwrite(data, 1, size, fp), size);
    fclose(fp);
    weft_err err = {{0}};
    weft_tokenizer *t = tok_load_bin(path, vocab, &err);
    if (t) fail_msg("%s: hostile tokenizer.bin was accepted", name);
    if (!strstr(err.msg, want)) fail_msg("%s: message \"%s\" lacks \"%s\"", name, err.msg, want);
    printf("refused %s: %s\n", name, err.msg);
}

static void put_i32(unsigned char *p, int32_t v) { memcpy(p, &v, 4); }

static void test_hostile_files(void **state) {
    (void)state;
    unsigned char b[64] = {0};
    /* header only, no tokens */
    put_i32(b, 8);
    expect_refused("tok-hdr-only.bin", b, 4, 3, "truncated at token 0");
    expect_refused("tok-empty.bin", b, 0, 3, "truncated");
    expect_refused("tok-short-hdr.bin", b, 2, 3, "truncated");
    /* token 0: score 0, negative length */
    put_i32(b + 4, 0);
    put_i32(b + 8, -1);
    expect_refused("tok-neg.bin", b, 12, 1, "negative length -1");
    /* huge length */
    put_i32(b + 8, 0x7fffffff);
    expect_refused("tok-huge.bin", b, 16, 1, "only 4 bytes are left");
    /* length one past the end */
    put_i32(b + 8, 5);
    memcpy(b + 12, "abcd", 4);
    expect_refused("tok-past-end.bin", b, 16, 1, "length 5 but only 4 bytes");
    /* negative max_token_length */
    put_i32(b, -3);
    expect_refused("tok-neg-max.bin", b, 16, 1, "max_token_length -3");
    /* bad vocabulary sizes */
    weft_err err = {{0}};
    assert_null(tok_load_bin("/nonexistent/tokenizer.bin", 10, &err));
    assert_non_null(strstr(err.msg, "cannot open"));
    assert_null(tok_load_bin("/nonexistent/tokenizer.bin", 0, &err));
    assert_null(tok_load_bin("/nonexistent/tokenizer.bin", -4, &err));

    /* a real file cut short at every few bytes, and read with too large a vocabulary */
    char real[4096];
    if (!tu_shared(TOK512, real, sizeof real)) return;
    size_t size;
    char *data = tu_read_file(real, &size);
    assert_non_null(data);
    for (size_t cut = 0; cut < size; cut += 97) {
        char name[64];
        snprintf(name, sizeof name, "tok-cut-%zu.bin", cut);
        expect_refused(name, data, cut, 512, "truncated");
    }
    expect_refused("tok-cut-last.bin", data, size - 1, 512, "truncated");
    expect_refused("tok-too-many.bin", data, size, 513, "truncated at token 512");
    free(data);
}

static void test_from_pieces(void **state) {
    (void)state;
    /* A toy vocabulary: merges should build "▁ab" from "▁a"+"b" (higher score than "ab"). */
    const char *pieces[] = {"<unk>", "<s>", "</s>", "\u2581", "a", "b",
                            "ab", "\u2581a", "\u2581ab", "<0x63>"};
    const float scores[] = {0, 0, 0, -5, -1, -1, -4, -2, -3, 0};
    weft_err err = {{0}};
    weft_tokenizer *t = tok_new_from_pieces(pieces, scores, NULL, 10, 1, 2, 0, &err);
    assert_non_null(t);
    assert_int_equal(tok_type_of(t, 9), TOK_BYTE);
    int32_t ids[16];
    assert_int_equal(tok_encode(t, "ab", 2, false, ids, 16), 1);
    assert_int_equal(ids[0], 8);
    /* "c" falls back to its byte token; "d" has none and becomes <unk> */
    assert_int_equal(tok_encode(t, "abcd", 4, false, ids, 16), 3);
    assert_int_equal(ids[0], 8);
    assert_int_equal(ids[1], 9);
    assert_int_equal(ids[2], 0);
    /* "b a": ▁ then b (no "▁b") then ▁a */
    assert_int_equal(tok_encode(t, "b a", 3, false, ids, 16), 3);
    assert_int_equal(ids[0], 3);
    assert_int_equal(ids[1], 5);
    assert_int_equal(ids[2], 7);
    char *s = decode_all(t, ids, 3);
    assert_string_equal(s, "b a");
    free(s);
    tok_free(t);

    assert_null(tok_new_from_pieces(pieces, scores, NULL, 10, 10, 2, 0, &err));
    assert_non_null(strstr(err.msg, "BOS token id 10"));
    assert_null(tok_new_from_pieces(NULL, NULL, NULL, 3, 1, 2, 0, &err));
    assert_null(tok_new_from_pieces(pieces, NULL, NULL, 0, 0, 0, 0, &err));
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_load_tok512),      cmocka_unit_test(test_load_llama2),
        cmocka_unit_test(test_llama_spm_vectors), cmocka_unit_test(test_streaming_decode),
        cmocka_unit_test(test_hostile_files),     cmocka_unit_test(test_from_pieces),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
