/* test_tp_plan.c — tensor-parallel shard plans and in-place sharding, without MPI: ranges tile
 * heads, FFN units and vocabulary exactly, uneven counts give the first ranks one more, KV
 * heads carry their query-head groups, quantized ranges stay on 32-element blocks, impossible
 * splits are refused with the numbers; sharding a synthesized model leaves row slices as views
 * into the mapping and column slices equal to the original columns. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "support/testutil.h"
#include "weft/synth.h"
#include "weft/tp.h"

static weft_config cfg(int heads, int kv, int hd, int hidden, int vocab) {
    weft_config c = {0};
    c.n_heads = heads;
    c.n_kv_heads = kv;
    c.head_dim = hd;
    c.dim = heads * hd;
    c.hidden_dim = hidden;
    c.vocab_size = vocab;
    c.n_layers = 1;
    return c;
}

/* Every rank's plan tiles [0, n) of each dimension contiguously. */
static void check_tiles(const weft_config *c, int fb, int ab, int size) {
    int kv = 0, h = 0, f = 0, v = 0;
    for (int r = 0; r < size; r++) {
        tp_plan p;
        weft_err err = {{0}};
        assert_int_equal(tp_plan_make(c, fb, ab, r, size, &p, &err), 0);
        assert_int_equal(p.kv0, kv);
        assert_int_equal(p.h0, h);
        assert_int_equal(p.f0, f);
        assert_int_equal(p.v0, v);
        assert_true(p.kv1 > p.kv0 && p.f1 > p.f0 && p.v1 > p.v0);
        assert_int_equal(p.h1 - p.h0, (p.kv1 - p.kv0) * (c->n_heads / c->n_kv_heads));
        assert_int_equal(p.f0 % fb, 0);
        kv = p.kv1, h = p.h1, f = p.f1, v = p.v1;
    }
    assert_int_equal(kv, c->n_kv_heads);
    assert_int_equal(h, c->n_heads);
    assert_int_equal(f, c->hidden_dim);
    assert_int_equal(v, c->vocab_size);
}

static void test_even_and_uneven(void **state) {
    (void)state;
    weft_config a = cfg(8, 2, 8, 160, 512);
    check_tiles(&a, 1, 1, 2);
    check_tiles(&a, 32, 1, 2); /* Q8_0 FFN: 5 blocks → 3 + 2 */
    tp_plan p;
    assert_int_equal(tp_plan_make(&a, 32, 1, 0, 2, &p, NULL), 0);
    assert_int_equal(p.f1, 96);
    weft_config odd = cfg(3, 3, 32, 192, 511);
    check_tiles(&odd, 1, 1, 2);
    assert_int_equal(tp_plan_make(&odd, 1, 1, 0, 2, &p, NULL), 0);
    assert_int_equal(p.h1 - p.h0, 2);   /* 3 heads over 2 ranks: 2 + 1 */
    assert_int_equal(p.v1 - p.v0, 256); /* vocab 511: 256 + 255 */
    check_tiles(&odd, 32, 32, 3);
    weft_config big = cfg(12, 12, 64, 2048, 32000);
    for (int n = 1; n <= 12; n++)
        check_tiles(&big, 32, 32, n);
}

static void test_refusals(void **state) {
    (void)state;
    tp_plan p;
    weft_err err = {{0}};
    weft_config a = cfg(8, 2, 8, 160, 512);
    assert_int_equal(tp_plan_make(&a, 1, 1, 0, 3, &p, &err), -1);
    assert_non_null(strstr(err.msg, "2 KV heads, fewer than the 3 ranks"));
    /* head_dim 8, 4 heads per rank: 32 columns per rank, on a block; 1 head would not be */
    weft_config b = cfg(4, 4, 8, 128, 512);
    assert_int_equal(tp_plan_make(&b, 32, 32, 1, 2, &p, &err), -1);
    assert_non_null(strstr(err.msg, "quantization block"));
    weft_config c = cfg(4, 4, 8, 32, 512); /* one FFN block cannot be split */
    assert_int_equal(tp_plan_make(&c, 32, 1, 0, 2, &p, &err), -1);
    assert_non_null(strstr(err.msg, "feed-forward width 32 is 1 blocks of 32"));
    assert_int_equal(tp_plan_make(&a, 1, 1, 2, 2, &p, &err), -1);
    /* different plans hash differently; the same one alike */
    assert_true(tp_plan_hash(&a, 1, 1, 2) == tp_plan_hash(&a, 1, 1, 2));
    assert_true(tp_plan_hash(&a, 1, 1, 2) != tp_plan_hash(&a, 32, 1, 2));
}

static void test_shard_model(void **state) {
    (void)state;
    char path[4096];
    tu_scratch("tp_plan_test-odd.gguf", path, sizeof path);
    synth_options so;
    synth_options_init(&so);
    so.preset = "test-odd";
    so.untied = true;
    weft_err err = {{0}};
    assert_int_equal(synth_write(&so, path, NULL, &err), 0);
    weft_model *full = model_load(path, NULL, &err);
    weft_model *m = model_load(path, NULL, &err);
    assert_non_null(full);
    assert_non_null(m);
    assert_true(tp_model_hash(full) == tp_model_hash(m));
    tp_plan p;
    assert_int_equal(tp_plan_make(&m->cfg, 1, 1, 1, 2, &p, &err), 0); /* rank 1: head 2 */
    assert_int_equal(tp_shard_model(m, &p, &err), 0);
    assert_int_equal(m->cfg.n_heads, 1);
    assert_int_equal(m->cfg.n_kv_heads, 1);
    assert_int_equal(m->cfg.hidden_dim, 96);
    assert_int_equal(m->cfg.dim, 96);
    const int hd = m->cfg.head_dim;
    for (int l = 0; l < m->cfg.n_layers; l++) {
        const weft_layer *a = &full->layers[l], *b = &m->layers[l];
        /* row slices: the right rows (views into this model's own mapping) */
        assert_int_equal(b->wq.rows, hd);
        assert_memory_equal(b->wq.data, (const char *)a->wq.data + (size_t)2 * hd * a->wq.row_bytes,
                            (size_t)hd * a->wq.row_bytes);
        assert_int_equal(b->w_up.rows, 96);
        assert_memory_equal(b->w_up.data,
                            (const char *)a->w_up.data + (size_t)96 * a->w_up.row_bytes,
                            (size_t)96 * a->w_up.row_bytes);
        /* column slices: copies of the right columns */
        assert_int_equal(b->wo.cols, hd);
        assert_int_equal(b->w_down.cols, 96);
        for (int r = 0; r < a->wo.rows; r++)
            assert_memory_equal((const float *)b->wo.data + (size_t)r * hd,
                                (const float *)a->wo.data + (size_t)r * a->wo.cols + 2 * hd,
                                sizeof(float) * hd);
        for (int r = 0; r < a->w_down.rows; r++)
            assert_memory_equal((const float *)b->w_down.data + (size_t)r * 96,
                                (const float *)a->w_down.data + (size_t)r * a->w_down.cols + 96,
                                sizeof(float) * 96);
    }
    assert_int_equal(m->output.rows, 256);
    assert_memory_equal(m->output.data,
                        (const char *)full->output.data + (size_t)256 * full->output.row_bytes,
                        (size_t)256 * full->output.row_bytes);
    assert_int_equal(tp_shard_model(m, &p, &err), -1); /* only once */
    model_free(m);
    model_free(full);
    remove(path);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_even_and_uneven),
        cmocka_unit_test(test_refusals),
        cmocka_unit_test(test_shard_model),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
