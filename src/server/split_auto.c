/* split_auto.c — `--split auto` on the server: when a split client connects asking the server
 * to plan, its HELLO (prompt length, max_tokens as the expected output, SLA, the client's
 * measured per-layer costs and link) and this server's own measured costs (`weft split profile`
 * JSON given with --split-profile) go to the planner's split_choose_one (include/weft/
 * split_plan.h), which returns the least-server-work split point meeting the SLA, with the
 * server's current load (the batch of sequences the engine's recent steps ran, which this
 * one's steps are shared with) in both the per-sequence cost and the latency. The client
 * may not take the head (p = L is "fully local" in the cost model, which this protocol does not
 * do), and a client that states no bandwidth is taken as on a fast local link. */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "server/split_server.h"
#include "weft/split_plan.h"

struct split_auto {
    const weft_model *m;
    engine *eng;
    split_profile prof;
};

static double mono_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

split_auto *split_auto_new(const weft_model *m, engine *e, const char *path, weft_err *err) {
    split_auto *a = calloc(1, sizeof *a);
    if (!a) {
        weft_errf(err, "out of memory");
        return NULL;
    }
    a->m = m;
    a->eng = e;
    if (split_profile_read_json(path, &a->prof, err) != 0) {
        free(a);
        return NULL;
    }
    if (a->prof.n_layers != m->cfg.n_layers) {
        weft_errf(err, "--split-profile %s was measured on %d layers; the model has %d", path,
                  a->prof.n_layers, m->cfg.n_layers);
        free(a);
        return NULL;
    }
    return a;
}

void split_auto_free(split_auto *a) {
    free(a);
}

int split_auto_choose(void *ctx, const split_hello *h, int split_live, char *msg,
                      size_t msg_size) {
    split_auto *a = ctx;
    const weft_config *c = &a->m->cfg;
    const double now = mono_s(); /* the plan's own time is logged */
    split_server s = {0};
    s.n_layers = c->n_layers;
    s.cost = a->prof.cost;
    s.slowdown = 1;
    s.window_s = 1;
    s.cores = a->prof.threads > 0 ? a->prof.threads : 1;
    s.load = 0;
    s.kv_bytes_per_layer_token = 2.0 * c->n_kv_heads * c->head_dim * sizeof(float);
    s.kv_capacity_bytes = 0; /* the engine's cache admits or preempts; not planned here */
    /* Current load: the requests that stream tokens without waiting for a client (ordinary
     * ones and split 0) are in every decode step, so this request's steps are shared with
     * them (batch = 1 + those); split requests at p > 0 wait on their clients' round trips and
     * rarely share a step. The profile's batched costs turn the batch into per-sequence cost. */
    engine_stats es;
    engine_get_stats(a->eng, &es);
    int streaming = es.running + es.waiting - split_live;
    if (streaming < 0) streaming = 0;
    /* They share only the part of this request's life they still run: their remaining tokens
     * (the engine's count, p50 or max_tokens) over this one's, each at most all of it. */
    const int n_all = es.running + es.waiting;
    const double left = n_all > 0 ? (es.running_left_tokens + es.waiting_pred_tokens) *
                                        streaming / n_all
                                  : 0;
    double overlap = left / (h->max_tokens > 0 ? h->max_tokens : 1);
    if (overlap > streaming) overlap = streaming;
    const double batch_connect = 1 + overlap;
    /* That count sees only the requests already there, not the ones that arrive during this
     * one's life, so it runs low; the batch the engine's recent steps measured (step-weighted,
     * src/split/batch_est.c) is used instead once there are steps to measure. */
    s.batch = es.decode_batch_ewma >= 1 ? es.decode_batch_ewma : batch_connect;
    /* Split tokens wait for their clients' round trips and run in whatever step is running when
     * they arrive, or alone: the batch each kind of token ran in is measured apart (the mean over
     * its tokens of 1 / the step's sequences), and a split point is charged its kind's. */
    if (es.stream_inv_batch_ewma > 0 && es.stream_inv_batch_ewma <= 1)
        s.batch = 1 / es.stream_inv_batch_ewma;
    if (es.split_inv_batch_ewma > 0 && es.split_inv_batch_ewma <= 1)
        s.batch_split = 1 / es.split_inv_batch_ewma;
    s.cost_batched = a->prof.cost_batched;
    s.batched_n = a->prof.batched_n;
    s.io_token_s = a->prof.io_token_s;
    s.io_frame_s = a->prof.io_frame_s;
    s.io_token_batched_s = a->prof.io_token_batched_s;
    /* The fused step model (docs/split.md): the batch's lowest entry layer decides which
     * layers' fixed step part this request can save, and which it would add to the others. */
    s.batch_entry_known = 1;
    s.batch_min_entry = es.batch_min_entry >= 0 && es.batch_min_entry <= c->n_layers
                            ? es.batch_min_entry
                            : c->n_layers;
    split_request r = {0};
    r.prompt_tokens = h->n_prompt;
    r.output_tokens = h->max_tokens;
    r.sla_s = h->sla_s > 0 ? h->sla_s : 1e9;
    r.count = 1;
    r.client = (split_device_cost){h->layer_prefill_s, h->layer_decode_s, h->head_prefill_s,
                                   h->head_decode_s};
    r.client_max_layers = h->client_max_layers > 0 ? h->client_max_layers : c->n_layers;
    r.client_can_head = 0;
    r.link_bw_Bps = h->link_bw_Bps > 0 ? h->link_bw_Bps : 1e12;
    r.link_rtt_s = h->link_rtt_s;
    r.hidden_bytes_per_token = (double)c->dim * ((h->flags & SPLIT_HELLO_F16) ? 2 : 4);
    split_choice ch;
    weft_err err = {{0}};
    /* The counterfactual batch model (src/split/batch_model.c): the requests the engine runs,
     * with their split points, tokens left and measured client cycles, plus this one at each
     * candidate p; where the profile has the decode cost at two batch sizes. */
    split_step_model sm;
    split_auto_detail det = {0};
    int use_model = split_step_model_from_server(&s, &sm, &err) == 0;
    engine_split_seq snap[ENGINE_SPLIT_SNAPSHOT_MAX];
    split_active act[ENGINE_SPLIT_SNAPSHOT_MAX];
    int n_act = 0;
    if (use_model) {
        int k = engine_split_snapshot(a->eng, snap, ENGINE_SPLIT_SNAPSHOT_MAX);
        if (k > ENGINE_SPLIT_SNAPSHOT_MAX) k = ENGINE_SPLIT_SNAPSHOT_MAX;
        for (int i = 0; i < k; i++) {
            const int l = snap[i].split_layer;
            if (l >= c->n_layers) continue; /* fully local: never on this server's steps */
            /* its client's next request is like it: max_tokens - 1 decode tokens (prefill gives
             * the first), the same prompt */
            act[n_act++] = (split_active){l,
                                          snap[i].tokens_left,
                                          snap[i].cycle_s,
                                          snap[i].split_auto ? 1 : 0,
                                          0,
                                          snap[i].max_tokens > 1 ? snap[i].max_tokens - 1 : 1,
                                          0,
                                          snap[i].n_prompt};
        }
    }
    int p;
    if (h->split >= 0) { /* a fixed split: predicted the same way, not chosen */
        p = split_cost_eval(&r, &s, h->split, &ch, &err) == 0 ? h->split : -1;
        if (p >= 0) ch.server_work_s = split_plan_work(&s, &ch, 1, NULL);
        if (p >= 0 && use_model) {
            split_choice cf;
            weft_err e2 = {{0}};
            if (split_predict_auto(&r, &s, &sm, act, n_act, h->split, &cf, &det, &e2) == h->split)
                ch = cf;
        }
    } else if (use_model) {
        p = split_choose_auto(&r, &s, &sm, act, n_act, &ch, &det, &err);
        /* the plan's own cost is server work too: logged, so the real run can see it */
        if (p < 0) { /* beyond the simulation's bounds: the per-request chooser, said so */
            fprintf(stderr, "split auto: batch model: %s; planning with the measured batch\n",
                    err.msg);
            use_model = 0;
            err = (weft_err){{0}};
            p = split_choose_one(&r, &s, -1, &ch, &err);
        }
    } else {
        p = split_choose_one(&r, &s, -1, &ch, &err);
    }
    if (p < 0) {
        if (h->split >= 0) return h->split; /* a fixed split needs no prediction */
        snprintf(msg, msg_size, "auto split: %s", err.msg);
        return p;
    }
    /* the planner's prediction, for comparison with what the request then costs */
    fprintf(stderr,
            "split plan: %s p=%d prompt=%d output=%d sla_s=%.4f streaming=%d split_live=%d "
            "batch=%g batch_split=%g batch_connect=%g min_entry=%d model=%d active=%d movable=%d "
            "sim_batch=%g world_s=%.6f stream_world_s=%.6f "
            "plan_ms=%.3f predicted server_work_s=%.6f latency_s=%.4f sla_ok=%d\n",
            h->split >= 0 ? "fixed" : "auto", p, h->n_prompt, h->max_tokens, r.sla_s, streaming,
            split_live, s.batch, s.batch_split, batch_connect, s.batch_min_entry, use_model,
            det.n_active, det.n_movable, det.batch, det.world_work_s,
            det.stream_world_s, 1e3 * (mono_s() - now),
            ch.server_work_s, ch.latency_s, ch.sla_ok);
    return p;
}
