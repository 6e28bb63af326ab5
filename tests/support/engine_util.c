/* engine_util.c — see engine_util.h. */
#include "support/engine_util.h"

#include <stdio.h>

#include "weft/sampler.h"

engine *tu_engine_new(const weft_model *m, const engine_config *c) {
    weft_err err = {{0}};
    engine *e = engine_new(m, c, &err);
    if (!e) fprintf(stderr, "engine: %s\n", err.msg);
    assert_non_null(e);
    return e;
}

void tu_submit(engine *e, const engine_request *q) {
    weft_err err = {{0}};
    int rc = engine_submit(e, q, &err);
    if (rc) fprintf(stderr, "submit: %s\n", err.msg);
    assert_int_equal(rc, 0);
}

void tu_step(engine *e) {
    weft_err err = {{0}};
    assert_true(engine_step(e, &err) >= 0);
}

engine_request tu_greedy_request(uint64_t id, int32_t prompt[64], int n_prompt, int max_tokens,
                                 engine_event_fn on_event, void *ctx) {
    for (int i = 0; i < 64; i++)
        prompt[i] = 3 + (int32_t)((id * 13 + (uint64_t)i * 5) % 200);
    engine_request q = {0};
    q.id = id;
    q.prompt = prompt;
    q.n_prompt = n_prompt;
    q.max_tokens = max_tokens;
    sampling_defaults(&q.sampling);
    q.sampling.temperature = 0;
    q.ignore_eos = true;
    q.on_event = on_event;
    q.ctx = ctx;
    return q;
}
