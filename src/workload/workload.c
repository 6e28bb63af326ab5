/* workload.c — assembling a workload from a wl_spec (see workload.h). Each random piece gets its
 * own seed derived from the spec's, so changing, say, the length source leaves arrival times
 * as they were. */
#include "workload/workload.h"

#include <stdlib.h>
#include <string.h>

#include "workload/arrivals.h"
#include "workload/dataset.h"
#include "workload/lengths.h"
#include "workload/prompts.h"
#include "workload/rng.h"

enum { SEED_ARRIVALS = 1, SEED_OUTPUT = 2, SEED_PICK_LEN = 3, SEED_PICK_PROMPT = 4, SEED_IDS = 5 };

static uint64_t sub_seed(uint64_t seed, uint64_t tag) {
    wl_rng r;
    wl_rng_seed(&r, seed * 0x100000001b3ULL + tag);
    return wl_rng_next(&r);
}

void wl_spec_defaults(wl_spec *s) {
    memset(s, 0, sizeof *s);
    s->n_requests = 32;
    s->trace_scale = 1.0;
    s->output_src = WL_SRC_FIXED;
    s->output_len = 128;
    s->prompt_src = WL_SRC_FIXED;
    s->prompt_len = 32;
    s->seed = 1;
}

/* Prompt ids of request i: prefix + body, where body comes from text (tokenized) or synthetic. */
static int make_prompt(const wl_spec *s, const weft_tokenizer *tok, int vocab, int bos,
                       const int32_t *prefix, const char *text, int synth_len, wl_rng *ids_rng,
                       wl_request *r, weft_err *err) {
    int32_t *body = NULL;
    int n_body = 0;
    if (text) {
        if (wl_prompt_tokenize(tok, text, s->system_prefix == 0, 0, &body, &n_body, err)) return -1;
    } else {
        body = malloc(sizeof *body * (size_t)(synth_len > 0 ? synth_len : 1));
        if (!body) return weft_errf(err, "out of memory");
        if (wl_prompt_synthetic(ids_rng, synth_len, vocab, body, err)) {
            free(body);
            return -1;
        }
        n_body = synth_len;
    }
    int n = s->system_prefix + n_body;
    if (n < 1) { /* an empty data-set prompt and no prefix: send BOS alone */
        body[0] = bos;
        n_body = n = 1;
    }
    int32_t *p = malloc(sizeof *p * (size_t)n);
    if (!p) {
        free(body);
        return weft_errf(err, "out of memory");
    }
    if (s->system_prefix) memcpy(p, prefix, sizeof *p * (size_t)s->system_prefix);
    if (n_body) memcpy(p + s->system_prefix, body, sizeof *p * (size_t)n_body);
    free(body);
    r->prompt = p;
    r->n_prompt = n;
    return 0;
}

int wl_workload_build(const wl_spec *s, const weft_tokenizer *tok, int vocab, int bos,
                      wl_workload *out, weft_err *err) {
    memset(out, 0, sizeof *out);
    wl_trace tr = {0};
    wl_dataset dl = {0}, dp = {0};
    int *idx_len = NULL, *idx_prompt = NULL, *outlen = NULL;
    int32_t *prefix = NULL;
    int rc = -1;

    if (s->system_prefix < 0 || s->max_prompt < 0 || s->max_seq_len < 0 || s->max_output < 0) {
        weft_errf(err, "workload: negative limit");
        goto done;
    }
    if (s->trace) {
        if (wl_trace_load(s->trace, s->trace_scale, s->n_requests, &tr, err)) goto done;
        out->n = tr.n;
    } else {
        if (s->n_requests < 1) {
            weft_errf(err, "workload: need at least one request");
            goto done;
        }
        out->n = s->n_requests;
    }
    if ((s->output_src == WL_SRC_TRACE || s->prompt_src == WL_SRC_TRACE) && !s->trace) {
        weft_errf(err, "workload: trace lengths need a trace");
        goto done;
    }
    if ((s->output_src == WL_SRC_DATASET || s->prompt_src == WL_SRC_DATASET) && !tok) {
        weft_errf(err, "workload: a data set needs the model's tokenizer");
        goto done;
    }
    int n = out->n;
    out->req = calloc((size_t)n, sizeof *out->req);
    outlen = malloc(sizeof *outlen * (size_t)n);
    if (!out->req || !outlen) {
        weft_errf(err, "out of memory");
        goto done;
    }

    /* arrivals */
    if (s->trace) {
        for (int i = 0; i < n; i++)
            out->req[i].arrival_s = tr.rec[i].t_s;
    } else {
        double *t = malloc(sizeof *t * (size_t)n);
        if (!t) {
            weft_errf(err, "out of memory");
            goto done;
        }
        uint64_t aseed = s->arrival_seed ? s->arrival_seed : s->seed;
        int prc = wl_poisson_arrivals(n, s->gap_mean_s, sub_seed(aseed, SEED_ARRIVALS), t, err);
        for (int i = 0; i < n && prc == 0; i++)
            out->req[i].arrival_s = t[i];
        free(t);
        if (prc) goto done;
    }

    /* data sets: one pick when both sources name the same file, so a request's prompt and its
     * output length come from the same record */
    if (s->output_src == WL_SRC_DATASET) {
        if (wl_dataset_load(s->lengths_from, &dl, err)) goto done;
        idx_len = malloc(sizeof *idx_len * (size_t)n);
        if (!idx_len) {
            weft_errf(err, "out of memory");
            goto done;
        }
        if (wl_dataset_pick(&dl, n, sub_seed(s->seed, SEED_PICK_LEN), idx_len, err)) goto done;
    }
    const wl_dataset *pd = NULL;
    const int *pidx = NULL;
    if (s->prompt_src == WL_SRC_DATASET) {
        if (idx_len && !strcmp(s->prompts_from, s->lengths_from)) {
            pd = &dl;
            pidx = idx_len;
        } else {
            if (wl_dataset_load(s->prompts_from, &dp, err)) goto done;
            idx_prompt = malloc(sizeof *idx_prompt * (size_t)n);
            if (!idx_prompt) {
                weft_errf(err, "out of memory");
                goto done;
            }
            if (wl_dataset_pick(&dp, n, sub_seed(s->seed, SEED_PICK_PROMPT), idx_prompt, err))
                goto done;
            pd = &dp;
            pidx = idx_prompt;
        }
    }

    /* output lengths */
    switch (s->output_src) {
    case WL_SRC_FIXED:
        if (wl_lengths_fixed(n, s->output_len, outlen, err)) goto done;
        break;
    case WL_SRC_UNIFORM:
        if (wl_lengths_uniform(n, s->output_lo, s->output_hi, sub_seed(s->seed, SEED_OUTPUT),
                               outlen, err))
            goto done;
        break;
    case WL_SRC_DATASET:
        if (wl_lengths_from_dataset(&dl, idx_len, n, tok, 0, outlen, err)) goto done;
        break;
    case WL_SRC_TRACE:
        for (int i = 0; i < n; i++)
            outlen[i] = tr.rec[i].n_output > 0 ? tr.rec[i].n_output : 1;
        break;
    }

    /* prompts */
    if (s->system_prefix) {
        prefix = malloc(sizeof *prefix * (size_t)s->system_prefix);
        if (!prefix) {
            weft_errf(err, "out of memory");
            goto done;
        }
        if (wl_prompt_prefix(s->system_prefix, vocab, bos, s->seed, prefix, err)) goto done;
    }
    if (s->prompt_src == WL_SRC_FIXED && s->prompt_len < 0) {
        weft_errf(err, "workload: negative prompt length");
        goto done;
    }
    wl_rng ids;
    wl_rng_seed(&ids, sub_seed(s->seed, SEED_IDS));
    for (int i = 0; i < n; i++) {
        const char *text = pd ? pd->pairs[pidx[i]].prompt : NULL;
        int synth_len = s->prompt_src == WL_SRC_TRACE ? tr.rec[i].n_input : s->prompt_len;
        /* Trace prompts longer than the cut are never materialised in full. */
        if (!text && s->max_prompt > 0 && synth_len + s->system_prefix > s->max_prompt)
            synth_len = s->max_prompt > s->system_prefix ? s->max_prompt - s->system_prefix : 0;
        if (make_prompt(s, tok, vocab, bos, prefix, text, synth_len, &ids, &out->req[i], err))
            goto done;
        if (text && !(out->req[i].text = strdup(text))) {
            weft_errf(err, "out of memory");
            goto done;
        }
    }

    /* limits */
    for (int i = 0; i < n; i++) {
        wl_request *r = &out->req[i];
        int clipped = 0, o = outlen[i];
        if (s->max_output > 0 && o > s->max_output) o = s->max_output;
        if (s->max_prompt > 0 && r->n_prompt > s->max_prompt) {
            r->n_prompt = s->max_prompt;
            clipped = 1;
        }
        if (s->max_seq_len > 0) {
            if (r->n_prompt > s->max_seq_len - 1) {
                r->n_prompt = s->max_seq_len - 1;
                clipped = 1;
            }
            if (r->n_prompt + o > s->max_seq_len) {
                o = s->max_seq_len - r->n_prompt;
                clipped = 1;
            }
        }
        if (r->n_prompt < 1) {
            weft_errf(err, "workload: request %d has an empty prompt", i);
            goto done;
        }
        r->n_output = o;
        out->n_clipped += clipped;
    }
    rc = 0;
done:
    wl_trace_free(&tr);
    wl_dataset_free(&dl);
    wl_dataset_free(&dp);
    free(idx_len);
    free(idx_prompt);
    free(outlen);
    free(prefix);
    if (rc) wl_workload_free(out);
    return rc;
}

void wl_workload_free(wl_workload *w) {
    if (w->req)
        for (int i = 0; i < w->n; i++) {
            free(w->req[i].prompt);
            free(w->req[i].text);
        }
    free(w->req);
    memset(w, 0, sizeof *w);
}

int64_t wl_workload_prompt_tokens(const wl_workload *w) {
    int64_t s = 0;
    for (int i = 0; i < w->n; i++)
        s += w->req[i].n_prompt;
    return s;
}

int64_t wl_workload_output_tokens(const wl_workload *w) {
    int64_t s = 0;
    for (int i = 0; i < w->n; i++)
        s += w->req[i].n_output;
    return s;
}

int wl_workload_longest(const wl_workload *w) {
    int m = 0;
    for (int i = 0; i < w->n; i++)
        if (w->req[i].n_prompt + w->req[i].n_output > m)
            m = w->req[i].n_prompt + w->req[i].n_output;
    return m;
}
