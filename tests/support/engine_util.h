/* engine_util.h — helpers for the unit tests that drive the engine step by step on their own
 * thread (the scheduling tests): create, submit and step with the failure reported and
 * asserted, and a greedy test request with a deterministic prompt. */
#ifndef WEFT_TEST_ENGINE_UTIL_H
#define WEFT_TEST_ENGINE_UTIL_H

#include <stdint.h>

#include "support/testutil.h"
#include "weft/engine.h"

/* engine_new, asserting success (the error is printed first). */
engine *tu_engine_new(const weft_model *m, const engine_config *c);
void tu_submit(engine *e, const engine_request *q);
void tu_step(engine *e);

/* A greedy request (temperature 0, EOS ignored) of n_prompt <= 64 tokens written into prompt:
 * a pattern of id, so different requests have different prompts. */
engine_request tu_greedy_request(uint64_t id, int32_t prompt[64], int n_prompt, int max_tokens,
                                 engine_event_fn on_event, void *ctx);

#endif
