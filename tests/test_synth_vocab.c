/* test_synth_vocab.c — a synthetic model that takes its vocabulary from a llama2.c
 * tokenizer.bin must tokenize exactly like that tokenizer.bin itself (tokenizer.bin spells word
 * boundaries as spaces, GGUF as U+2581: the import must convert, or every word would fall back
 * to byte tokens). */
#include <stdlib.h>
#include <string.h>

#include "support/testutil.h"
#include "weft/model.h"
#include "weft/synth.h"

static void test_same_ids_as_tokenizer_bin(void **state) {
    (void)state;
    TU_SHARED_OR_SKIP(vocab, "models/tokenizers/tokenizer_llama2_32000.bin");
    char path[4096];
    tu_scratch("synth-vocab.gguf", path, sizeof path);
    synth_options o;
    synth_options_init(&o);
    o.preset = "test-gqa";
    o.n_layers = 1;
    o.vocab_from = vocab;
    weft_err err = {{0}};
    if (synth_write(&o, path, NULL, &err) != 0) fail_msg("synth: %s", err.msg);
    weft_model *m = model_load(path, NULL, &err);
    if (!m) fail_msg("load: %s", err.msg);
    weft_tokenizer *ref = tok_load_bin(vocab, 32000, &err);
    if (!ref) fail_msg("tokenizer.bin: %s", err.msg);
    static const char *texts[] = {"Hello world", "Once upon a time, there was a little girl.",
                                  "  two  spaces\nand a newline", "Ünïcödé — ✓ 🙂"};
    for (size_t i = 0; i < sizeof texts / sizeof *texts; i++) {
        int32_t a[128], b[128];
        int na = tok_encode(m->tok, texts[i], strlen(texts[i]), true, a, 128);
        int nb = tok_encode(ref, texts[i], strlen(texts[i]), true, b, 128);
        assert_int_equal(na, nb);
        assert_memory_equal(a, b, sizeof(int32_t) * (size_t)na);
    }
    /* "Hello world" is BOS + two word pieces in the Llama-2 vocabulary. */
    int32_t ids[16];
    assert_int_equal(tok_encode(m->tok, "Hello world", 11, true, ids, 16), 3);
    tok_free(ref);
    model_free(m);
}

int main(void) {
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_same_ids_as_tokenizer_bin)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}
