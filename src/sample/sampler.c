/* sampler.c — picks the next token from a row of logits. Order of operations per step:
 *   repetition penalty -> (temperature <= 0: argmax) -> temperature -> top-k -> top-p -> min-p
 *   -> draw from what is left, renormalised.
 * Temperature is applied first (as in llama2.c), so top-p and min-p act on the tempered
 * distribution and a temperature near 0 converges to greedy. top-p and min-p follow llama.cpp:
 * top-p on the distribution left after top-k, min-p relative to the most likely token.
 * All buffers are allocated once in sampler_new; a step allocates nothing. The RNG is
 * xoshiro256** seeded through splitmix64, its state owned by the sampler. */
#include "weft/sampler.h"
#include "weft/kernels.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

typedef struct smp_cand {
    float v; /* logit, then probability */
    int32_t id;
} smp_cand;

struct weft_sampler {
    weft_sampling p;
    int n_vocab;
    uint64_t rng[4];
    smp_cand *cand;   /* n_vocab candidates */
    uint32_t *seen;   /* per-token stamp: penalised in the step with this stamp */
    uint32_t stamp;
};

void sampling_defaults(weft_sampling *p) {
    p->temperature = 0.8f;
    p->top_k = 40;
    p->top_p = 0.95f;
    p->min_p = 0.05f;
    p->repeat_penalty = 1.0f;
    p->repeat_last_n = 64;
    p->seed = 0x5eed;
}

/* ---- RNG ---- */

static uint64_t splitmix64(uint64_t *x) {
    uint64_t z = (*x += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

static uint64_t smp_next(uint64_t s[4]) {
    uint64_t r = rotl(s[1] * 5, 7) * 9;
    uint64_t t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    return r;
}

/* Uniform in [0, 1). */
static double smp_uniform(uint64_t s[4]) { return (double)(smp_next(s) >> 11) * 0x1.0p-53; }

/* ---- lifetime ---- */

weft_sampler *sampler_new(const weft_sampling *p, int vocab_size) {
    if (!p || vocab_size <= 0) return NULL;
    weft_sampler *s = calloc(1, sizeof *s);
    if (!s) return NULL;
    s->p = *p;
    s->n_vocab = vocab_size;
    s->cand = malloc((size_t)vocab_size * sizeof *s->cand);
    s->seen = calloc((size_t)vocab_size, sizeof *s->seen);
    if (!s->cand || !s->seen) {
        sampler_free(s);
        return NULL;
    }
    uint64_t x = p->seed;
    for (int i = 0; i < 4; i++) s->rng[i] = splitmix64(&x);
    return s;
}

void sampler_free(weft_sampler *s) {
    if (!s) return;
    free(s->cand);
    free(s->seen);
    free(s);
}

/* ---- steps ---- */

static void apply_penalty(weft_sampler *s, float *logits, const int32_t *recent, int n_recent) {
    float pen = s->p.repeat_penalty;
    int last_n = s->p.repeat_last_n;
    if (pen == 1.0f || !(pen > 0.0f) || last_n <= 0 || !recent || n_recent <= 0) return;
    if (++s->stamp == 0) { /* wrapped: forget old stamps */
        memset(s->seen, 0, (size_t)s->n_vocab * sizeof *s->seen);
        s->stamp = 1;
    }
    int from = n_recent > last_n ? n_recent - last_n : 0;
    for (int i = from; i < n_recent; i++) {
        int32_t id = recent[i];
        if (id < 0 || id >= s->n_vocab || s->seen[id] == s->stamp) continue;
        s->seen[id] = s->stamp; /* each distinct token is penalised once */
        logits[id] = logits[id] > 0.0f ? logits[id] / pen : logits[id] * pen;
    }
}

/* Lowest id among the largest logits; NaN counts as -inf (kn_argmax, AVX-512 where active). */
static int argmax(const float *logits, int n) {
    return kn_argmax(logits, n);
}

/* a ranks before b: larger value, then lower id. */
static int cand_before(const smp_cand *a, const smp_cand *b) {
    return a->v > b->v || (a->v == b->v && a->id < b->id);
}

/* Heap whose root is the candidate that ranks last (the weakest of those kept). */
static void sift_down(smp_cand *h, int n, int i) {
    for (;;) {
        int c = 2 * i + 1;
        if (c >= n) return;
        if (c + 1 < n && cand_before(&h[c], &h[c + 1])) c++;
        if (!cand_before(&h[i], &h[c])) return;
        smp_cand t = h[i];
        h[i] = h[c];
        h[c] = t;
        i = c;
    }
}

/* Sorts c[0..n) best first by heap-sort: in place, no allocation (qsort may allocate). */
static void sort_best_first(smp_cand *c, int n) {
    for (int i = n / 2 - 1; i >= 0; i--) sift_down(c, n, i);
    for (int m = n; m > 1; m--) { /* move the weakest to the end */
        smp_cand t = c[0];
        c[0] = c[m - 1];
        c[m - 1] = t;
        sift_down(c, m - 1, 0);
    }
}

/* Moves the k best of c[0..n) to the front, best first, in place: O(n log k). */
static void partial_sort_best(smp_cand *c, int n, int k) {
    for (int i = k / 2 - 1; i >= 0; i--) sift_down(c, k, i);
    for (int i = k; i < n; i++) {
        if (cand_before(&c[i], &c[0])) {
            smp_cand t = c[0];
            c[0] = c[i];
            c[i] = t;
            sift_down(c, k, 0);
        }
    }
    sort_best_first(c, k);
}

/* Keeps the k best logits in c[0..k), best first: O(V log k), no full sort. */
static void select_top_k(smp_cand *c, const float *logits, int n_vocab, int k) {
    for (int i = 0; i < k; i++) c[i] = (smp_cand){logits[i], i};
    for (int i = k / 2 - 1; i >= 0; i--) sift_down(c, k, i);
    for (int i = k; i < n_vocab; i++) {
        smp_cand x = {logits[i], i};
        if (cand_before(&x, &c[0])) {
            c[0] = x;
            sift_down(c, k, 0);
        }
    }
    sort_best_first(c, k);
}

int sampler_sample(weft_sampler *s, float *logits, const int32_t *recent, int n_recent) {
    const int V = s->n_vocab;
    for (int i = 0; i < V; i++) /* an unconditional store, so the loop vectorizes */
        logits[i] = isnan(logits[i]) ? -INFINITY : logits[i];
    apply_penalty(s, logits, recent, n_recent);

    int best = argmax(logits, V);
    float max_logit = logits[best];
    if (!(s->p.temperature > 0.0f) || s->p.top_k == 1 || max_logit == -INFINITY ||
        max_logit == INFINITY)
        return best;

    /* candidates, best first when sorted */
    smp_cand *c = s->cand;
    int n;
    bool sorted;
    if (s->p.top_k > 0 && s->p.top_k < V) {
        n = s->p.top_k;
        select_top_k(c, logits, V, n);
        sorted = true;
    } else {
        n = V;
        for (int i = 0; i < V; i++) c[i] = (smp_cand){logits[i], i};
        sorted = false;
    }

    /* tempered softmax over the candidates (the max is always among them) */
    const float inv_t = 1.0f / s->p.temperature;
    double sum = 0.0;
    for (int i = 0; i < n; i++) {
        float p = expf((c[i].v - max_logit) * inv_t);
        c[i].v = p;
        sum += p;
    }
    for (int i = 0; i < n; i++) c[i].v = (float)(c[i].v / sum);

    if (s->p.top_p < 1.0f && n > 1) {
        double top_p = s->p.top_p > 0.0f ? s->p.top_p : 0.0;
        if (!sorted) {
            /* Tokens below (1-p)/(n-1) together hold less than 1-p, so the nucleus lies among
             * the others: drop the rest (the best token always stays). */
            float cut = (float)((1.0 - top_p) / (double)(n - 1));
            int m = 0;
            for (int i = 0; i < n; i++)
                if (c[i].v >= cut || c[i].id == best) c[m++] = c[i];
            n = m;
            /* Sort only as far as the nucleus reaches: grow a best-first prefix until it holds
             * mass p. Peaked distributions stop after the first round. */
            int k = n < 64 ? n : 64;
            for (;;) {
                partial_sort_best(c, n, k);
                double mass = 0.0;
                for (int i = 0; i < k; i++) mass += c[i].v;
                if (mass >= top_p || k == n) break;
                k = k > n / 4 ? n : k * 4;
            }
            n = k;
            sorted = true;
        }
        double cum = 0.0;
        int keep = n;
        for (int i = 0; i < n; i++) {
            cum += c[i].v;
            if (cum >= top_p) {
                keep = i + 1;
                break;
            }
        }
        n = keep;
    }

    if (s->p.min_p > 0.0f) {
        /* the best token has tempered probability p_max; keep p >= min_p * p_max */
        float p_max = 0.0f;
        for (int i = 0; i < n; i++)
            if (c[i].v > p_max) p_max = c[i].v;
        float floor_p = s->p.min_p * p_max;
        int m = 0;
        for (int i = 0; i < n; i++)
            if (c[i].v >= floor_p) c[m++] = c[i];
        n = m;
        if (n == 0) return best; /* only possible when min_p > 1 */
    }

    double total = 0.0;
    for (int i = 0; i < n; i++) total += c[i].v;
    double r = smp_uniform(s->rng) * total;
    double cum = 0.0;
    for (int i = 0; i < n; i++) {
        cum += c[i].v;
        if (r < cum) return c[i].id;
    }
    return c[n - 1].id;
}
