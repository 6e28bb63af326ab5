/* sampler.h — turns a row of logits into the next token: greedy, temperature, top-k, top-p,
 * min-p, repetition penalty, seeded RNG. Also the stop-string matcher used while streaming. */
#ifndef WEFT_SAMPLER_H
#define WEFT_SAMPLER_H

#include <stddef.h>
#include <stdint.h>
#include <stdbool.h>

typedef struct weft_sampling {
    float temperature;    /* <= 0: greedy (argmax) */
    int top_k;            /* <= 0: off */
    float top_p;          /* >= 1: off */
    float min_p;          /* <= 0: off; keep tokens with p >= min_p * p_max */
    float repeat_penalty; /* 1: off; llama.cpp semantics (divide positive logits, multiply negative) */
    int repeat_last_n;    /* how many recent tokens the penalty looks at */
    uint64_t seed;
} weft_sampling;

void sampling_defaults(weft_sampling *p); /* temp 0.8, top_k 40, top_p 0.95, min_p 0.05, penalty 1 */

typedef struct weft_sampler weft_sampler;
weft_sampler *sampler_new(const weft_sampling *p, int vocab_size); /* NULL on allocation failure */
void sampler_free(weft_sampler *s);
/* Picks a token. logits (vocab_size floats) may be modified. recent: previously seen tokens
 * (prompt + generated), the last repeat_last_n of which are penalised. */
int sampler_sample(weft_sampler *s, float *logits, const int32_t *recent, int n_recent);

/* ---- stop strings ----
 * Text is fed as it is generated; the matcher says how much of it is safe to emit (text that
 * might be the start of a stop string is held back) and whether a stop string completed. */
#define STOP_MAX_STRINGS 8
#define STOP_MAX_LEN 256

typedef struct stop_matcher {
    int n;
    char strs[STOP_MAX_STRINGS][STOP_MAX_LEN + 1];
    char held[STOP_MAX_LEN * 2 + 64]; /* text not yet emitted */
    size_t n_held;
    bool stopped;
} stop_matcher;

/* Returns -1 if there are too many or too long strings (empty strings are ignored). */
int stop_init(stop_matcher *m, const char *const *strs, int n);
/* Feeds text; copies the part now safe to emit into out (NUL-terminated) and returns its length.
 * When a stop string completes, emits only the text before it and sets m->stopped.
 * out_size must be at least len + sizeof m->held. */
size_t stop_feed(stop_matcher *m, const char *text, size_t len, char *out, size_t out_size);
/* At end of generation: emits whatever is held (if not stopped). */
size_t stop_flush(stop_matcher *m, char *out, size_t out_size);

#endif
