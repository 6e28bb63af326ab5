/* gen.c — one generation request seen from its HTTP thread: validation of the shared
 * sampling fields, admission into the bounded queue, submission to the engine, and the loop
 * that turns engine events into text (streaming UTF-8 decoding, stop strings held back and
 * cut exactly, logprobs) while watching the client's socket, the queue timeout and the
 * server's shutdown in one poll(). The endpoint files shape what this produces. */
#include <errno.h>
#include <limits.h>
#include <stdint.h>
#include <math.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "server/srv_internal.h"

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* ---- request fields shared by both endpoints ---- */

static int want_number(json_t *body, const char *key, double lo, double hi, double *out,
                       oai_err *e) {
    json_t *v = json_object_get(body, key);
    if (!v || json_is_null(v)) return 0;
    if (!json_is_number(v))
        return oai_errf(e, 400, "invalid_type", key, "'%s' must be a number", key);
    double d = json_number_value(v);
    if (!isfinite(d) || d < lo || d > hi)
        return oai_errf(e, 400, "invalid_value", key, "'%s' must be in [%g, %g] (got %g)", key,
                        lo, hi, d);
    *out = d;
    return 1;
}

static int want_int(json_t *body, const char *key, long long lo, long long hi, long long *out,
                    oai_err *e) {
    json_t *v = json_object_get(body, key);
    if (!v || json_is_null(v)) return 0;
    if (!json_is_integer(v))
        return oai_errf(e, 400, "invalid_type", key, "'%s' must be an integer", key);
    long long n = json_integer_value(v);
    if (n < lo || n > hi)
        return oai_errf(e, 400, "invalid_value", key, "'%s' must be in [%lld, %lld] (got %lld)",
                        key, lo, hi, n);
    *out = n;
    return 1;
}

static int want_bool(json_t *body, const char *key, bool *out, oai_err *e) {
    json_t *v = json_object_get(body, key);
    if (!v || json_is_null(v)) return 0;
    if (!json_is_boolean(v))
        return oai_errf(e, 400, "invalid_type", key, "'%s' must be a boolean", key);
    *out = json_is_true(v);
    return 1;
}

static int add_stop(oai_params *p, json_t *v, oai_err *e) {
    if (!json_is_string(v))
        return oai_errf(e, 400, "invalid_type", "stop", "'stop' must be a string or an array of strings");
    size_t n = json_string_length(v);
    if (n == 0) return 0; /* an empty stop string never matches: ignored */
    if (n > STOP_MAX_LEN)
        return oai_errf(e, 400, "invalid_value", "stop", "a stop string may be at most %d bytes",
                        STOP_MAX_LEN);
    if (memchr(json_string_value(v), 0, n))
        return oai_errf(e, 400, "invalid_value", "stop", "a stop string may not contain NUL");
    if (p->n_stops == STOP_MAX_STRINGS)
        return oai_errf(e, 400, "invalid_value", "stop", "at most %d stop strings",
                        STOP_MAX_STRINGS);
    p->stops[p->n_stops++] = json_string_value(v);
    return 0;
}

int oai_parse_common(srv *s, json_t *body, bool chat, oai_params *p, oai_err *e) {
    memset(p, 0, sizeof *p);
    p->max_tokens = -1;
    sampling_defaults(&p->sampling);
    /* OpenAI semantics: only temperature and top_p shape the distribution. */
    p->sampling.temperature = 1.0f;
    p->sampling.top_p = 1.0f;
    p->sampling.top_k = 0;
    p->sampling.min_p = 0;
    p->sampling.repeat_penalty = 1.0f;
    double d;
    long long n;
    int r;
    /* model: any string is accepted (one model is served); a wrong type is an error */
    json_t *model = json_object_get(body, "model");
    if (model && !json_is_string(model) && !json_is_null(model))
        return oai_errf(e, 400, "invalid_type", "model", "'model' must be a string");
    const char *mt_key = "max_tokens";
    if (chat && json_object_get(body, "max_completion_tokens")) mt_key = "max_completion_tokens";
    if ((r = want_int(body, mt_key, LLONG_MIN, LLONG_MAX, &n, e)) < 0) return -1;
    if (r) {
        if (n < 1)
            return oai_errf(e, 400, "invalid_value", mt_key, "'%s' must be at least 1 (got %lld)",
                            mt_key, n);
        if (s->cfg->max_tokens_cap > 0 && n > s->cfg->max_tokens_cap) n = s->cfg->max_tokens_cap;
        p->max_tokens = n > INT32_MAX ? INT32_MAX : (int)n;
    }
    if ((r = want_number(body, "temperature", 0, 2, &d, e)) < 0) return -1;
    if (r) p->sampling.temperature = (float)d;
    if ((r = want_number(body, "top_p", 0, 1, &d, e)) < 0) return -1;
    if (r) {
        if (d <= 0) return oai_errf(e, 400, "invalid_value", "top_p", "'top_p' must be > 0");
        p->sampling.top_p = (float)d;
    }
    if ((r = want_int(body, "seed", LLONG_MIN, LLONG_MAX, &n, e)) < 0) return -1;
    p->sampling.seed = r ? (uint64_t)n : 0;
    bool has_seed = r == 1;
    if ((r = want_int(body, "n", LLONG_MIN, LLONG_MAX, &n, e)) < 0) return -1;
    if (r && n != 1)
        return oai_errf(e, 400, "invalid_value", "n", "only n = 1 is supported (got %lld)", n);
    json_t *stop = json_object_get(body, "stop");
    if (stop && json_is_array(stop)) {
        size_t i;
        json_t *v;
        json_array_foreach(stop, i, v) if (add_stop(p, v, e) != 0) return -1;
    } else if (stop && !json_is_null(stop)) {
        if (add_stop(p, stop, e) != 0) return -1;
    }
    if (want_bool(body, "stream", &p->stream, e) < 0) return -1;
    json_t *so = json_object_get(body, "stream_options");
    if (so && !json_is_null(so)) {
        if (!json_is_object(so))
            return oai_errf(e, 400, "invalid_type", "stream_options",
                            "'stream_options' must be an object");
        if (want_bool(so, "include_usage", &p->include_usage, e) < 0) return -1;
    }
    if (chat) {
        bool lp = false;
        if (want_bool(body, "logprobs", &lp, e) < 0) return -1;
        if ((r = want_int(body, "top_logprobs", 0, ENGINE_MAX_TOP_LOGPROBS, &n, e)) < 0)
            return -1;
        if (r && !lp)
            return oai_errf(e, 400, "invalid_value", "top_logprobs",
                            "'top_logprobs' needs 'logprobs': true");
        p->want_lp = lp;
        p->top_lp = r ? (int)n : 0;
    } else {
        if ((r = want_int(body, "logprobs", 0, ENGINE_MAX_TOP_LOGPROBS, &n, e)) < 0) return -1;
        p->want_lp = r == 1;
        p->top_lp = r ? (int)n : 0;
        bool echo = false;
        if (want_bool(body, "echo", &echo, e) < 0) return -1;
        if (echo) return oai_errf(e, 400, "unsupported", "echo", "'echo' is not supported");
    }
    /* weft extensions */
    if ((r = want_int(body, "priority", INT32_MIN, INT32_MAX, &n, e)) < 0) return -1;
    if (r) p->priority = (int)n;
    if ((r = want_number(body, "deadline_ms", 0, 1e12, &d, e)) < 0) return -1;
    if (r) p->deadline_ms = d;
    if (want_bool(body, "ignore_eos", &p->ignore_eos, e) < 0) return -1;
    /* bench-only: a forced output length the scheduling policies must not see (they see
     * max_tokens), so a benchmark can force real lengths without leaking them */
    if ((r = want_int(body, "bench_output_tokens", 1, INT32_MAX, &n, e)) < 0) return -1;
    if (r) p->bench_output_tokens = (int)n;
    if (!has_seed) p->sampling.seed = (uint64_t)time(NULL) ^ (atomic_load(&s->next_id) * 0x9E3779B97F4A7C15ull);
    return 0;
}

void gen_prompt_features(const srv *s, const char *text, size_t len, int n_tokens,
                         oai_params *p) {
    p->has_feat = false;
    if (!strcmp(s->cfg->predictor, "none")) return;
    pred_features_text(text ? text : "", text ? len : 0, n_tokens, &p->feat);
    p->has_feat = true;
}

/* ---- the job ---- */

gen_job *gen_new(srv *s, struct MHD_Connection *c, bool chat) {
    gen_job *j = calloc(1, sizeof *j);
    if (!j) return NULL;
    j->s = s;
    j->conn = c;
    j->chat = chat;
    j->end_token = -1;
    j->conn_fd = -1;
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(c, MHD_CONNECTION_INFO_CONNECTION_FD);
    if (ci) j->conn_fd = ci->connect_fd;
    return j;
}

static void left_queue(gen_job *j) {
    if (!j->counted_live || j->first_seen) return;
    j->first_seen = true;
    pthread_mutex_lock(&j->s->mu);
    j->s->n_waiting--;
    pthread_mutex_unlock(&j->s->mu);
}

static json_t *new_lp(const gen_job *j) {
    if (!j->want_lp) return NULL;
    if (j->chat) return json_array();
    return json_pack("{s:[], s:[], s:o, s:[]}", "tokens", "token_logprobs", "top_logprobs",
                     j->top_lp > 0 ? json_array() : json_null(), "text_offset");
}

int gen_submit(gen_job *j, int32_t *prompt, int n_prompt, const oai_params *p) {
    srv *s = j->s;
    j->prompt = prompt;
    j->n_prompt = n_prompt;
    int ctx = s->ctx;
    if (n_prompt >= ctx)
        return oai_errf(&j->err, 400, "context_length_exceeded", "prompt" ,
                        "This model's maximum context length is %d tokens, but the prompt is %d "
                        "tokens (at most %d leave room for one generated token)",
                        ctx, n_prompt, ctx - 1);
    int mt = p->max_tokens;
    if (mt < 0) {
        mt = j->chat ? ctx - n_prompt : 16;
        if (mt > ctx - n_prompt) mt = ctx - n_prompt;
        if (s->cfg->max_tokens_cap > 0 && mt > s->cfg->max_tokens_cap) mt = s->cfg->max_tokens_cap;
    } else if ((long long)n_prompt + mt > ctx) {
        return oai_errf(&j->err, 400, "context_length_exceeded", "max_tokens",
                        "This model's maximum context length is %d tokens. However, you "
                        "requested %lld tokens (%d in the prompt, %d for the completion). Please "
                        "reduce the prompt or max_tokens.",
                        ctx, (long long)n_prompt + mt, n_prompt, mt);
    }
    int sched_mt = 0; /* what the policies see; 0 = mt */
    if (p->bench_output_tokens > 0) {
        if (p->bench_output_tokens > mt)
            return oai_errf(&j->err, 400, "invalid_value", "bench_output_tokens",
                            "'bench_output_tokens' (%d) may not exceed max_tokens (%d)",
                            p->bench_output_tokens, mt);
        sched_mt = mt;
        mt = p->bench_output_tokens;
    }
    j->max_tokens = mt;
    if (stop_init(&j->stop, p->stops, p->n_stops) != 0)
        return oai_errf(&j->err, 400, "invalid_value", "stop", "invalid stop strings");
    tok_decoder_init(&j->dec, s->model->tok);
    /* The last prompt token is context for spacing only (as in generate()). */
    char scratch[64];
    tok_decoder_feed(&j->dec, prompt[n_prompt - 1], scratch, sizeof scratch);
    j->dec.n_pend = 0;
    j->stream = p->stream;
    j->include_usage = p->stream && p->include_usage;
    j->want_lp = p->want_lp;
    j->top_lp = p->top_lp;
    if (j->want_lp && !(j->lp = new_lp(j)))
        return oai_errf(&j->err, 500, "out_of_memory", NULL, "out of memory");
    j->ch = chan_new();
    if (!j->ch) return oai_errf(&j->err, 500, "out_of_memory", NULL, "out of memory");
    j->id = atomic_fetch_add(&s->next_id, 1) + 1;
    snprintf(j->resp_id, sizeof j->resp_id, "%s-%016llx", j->chat ? "chatcmpl" : "cmpl",
             (unsigned long long)j->id);

    pthread_mutex_lock(&s->mu);
    if (atomic_load(&s->state) != SRV_READY) {
        pthread_mutex_unlock(&s->mu);
        return oai_errf(&j->err, 503, "shutting_down", NULL, "The server is shutting down");
    }
    if (s->n_waiting >= s->cfg->max_queue) {
        int w = s->n_waiting;
        pthread_mutex_unlock(&s->mu);
        return oai_errf(&j->err, 429, "queue_full", NULL,
                        "The server is busy: %d requests are waiting (limit %d); retry later", w,
                        s->cfg->max_queue);
    }
    s->n_waiting++;
    s->n_live++;
    j->counted_live = true;
    pthread_mutex_unlock(&s->mu);

    j->req = (engine_request){
        .id = j->id,
        .prompt = prompt,
        .n_prompt = n_prompt,
        .max_tokens = mt,
        .sched_max_tokens = sched_mt,
        .sampling = p->sampling,
        .ignore_eos = p->ignore_eos,
        .priority = p->priority,
        .deadline_ms = p->deadline_ms,
        .want_logprobs = p->want_lp,
        .top_logprobs = p->top_lp,
        .on_event = chan_on_event,
        .ctx = j->ch,
    };
    j->t_submit = now_s();
    j->created = (long)time(NULL);
    weft_err err = {{0}};
    if (p->has_feat) j->req.features = &p->feat; /* copied by engine_submit */
    j->worker = workers_route(s, &j->req, p->has_feat ? &p->feat : NULL);
    j->eng = s->workers[j->worker];
    if (engine_submit(j->eng, &j->req, &err) != 0) {
        left_queue(j);
        return oai_errf(&j->err, 400, "invalid_request", NULL, "%s", err.msg);
    }
    j->submitted = true;
    return 0;
}

/* The text a token stands for in logprobs: its piece with SentencePiece's space restored,
 * an ASCII byte token as its character. */
static void token_text(const weft_tokenizer *t, int id, strbuf *out) {
    const char *p = tok_piece(t, id);
    if (!p) p = "";
    if (tok_type_of(t, id) == TOK_BYTE && strlen(p) == 6 && !strncmp(p, "<0x", 3)) {
        unsigned v = (unsigned)strtoul(p + 3, NULL, 16);
        if (v >= 0x20 && v < 0x7f) {
            char ch = (char)v;
            strbuf_add(out, &ch, 1);
            return;
        }
    }
    for (; *p;) {
        if (!strncmp(p, "\xe2\x96\x81", 3)) {
            strbuf_add(out, " ", 1);
            p += 3;
        } else {
            strbuf_add(out, p, 1);
            p++;
        }
    }
}

static json_t *lp_token_json(const weft_tokenizer *t, int id, float lp, bool with_bytes) {
    strbuf b = {0};
    token_text(t, id, &b);
    json_t *o = json_object();
    if (o) {
        json_object_set_new(o, "token", oai_string(b.s ? b.s : "", b.n));
        json_object_set_new(o, "logprob", json_real(lp));
        if (with_bytes) {
            json_t *bytes = json_array();
            for (size_t i = 0; i < b.n && bytes; i++)
                json_array_append_new(bytes, json_integer((unsigned char)b.s[i]));
            json_object_set_new(o, "bytes", bytes ? bytes : json_null());
        }
    }
    free(b.s);
    return o;
}

static void record_logprob(gen_job *j, const engine_event *ev) {
    if (!j->lp) return;
    const weft_tokenizer *t = j->s->model->tok;
    if (j->chat) {
        json_t *o = lp_token_json(t, ev->token, ev->logprob, true);
        if (!o) return;
        json_t *tops = json_array();
        for (int i = 0; i < ev->n_top && tops; i++)
            json_array_append_new(tops, lp_token_json(t, ev->top_ids[i], ev->top_logprobs[i], true));
        json_object_set_new(o, "top_logprobs", tops ? tops : json_array());
        json_array_append_new(j->lp, o);
        return;
    }
    strbuf b = {0};
    token_text(t, ev->token, &b);
    json_array_append_new(json_object_get(j->lp, "tokens"), oai_string(b.s ? b.s : "", b.n));
    free(b.s);
    json_array_append_new(json_object_get(j->lp, "token_logprobs"), json_real(ev->logprob));
    json_array_append_new(json_object_get(j->lp, "text_offset"),
                          json_integer((json_int_t)j->text_offset));
    json_t *tops = json_object_get(j->lp, "top_logprobs");
    if (json_is_array(tops)) {
        json_t *m = json_object();
        for (int i = 0; i < ev->n_top && m; i++) {
            strbuf k = {0};
            token_text(t, ev->top_ids[i], &k);
            json_t *key = oai_string(k.s ? k.s : "", k.n); /* a valid UTF-8 key */
            if (key) json_object_set_new(m, json_string_value(key), json_real(ev->top_logprobs[i]));
            json_decref(key);
            free(k.s);
        }
        json_array_append_new(tops, m ? m : json_object());
    }
}

static void emit_text(gen_job *j, const char *s, size_t n) {
    if (n == 0) return;
    if (strbuf_add(&j->text, s, n) != 0) j->status = GEN_FAILED;
    j->text_offset += n;
}

static void finish(gen_job *j, const char *reason, bool cancel_engine) {
    j->status = GEN_DONE;
    j->finish_reason = reason;
    if (cancel_engine) engine_cancel(j->eng, j->id);
}

static void absorb(gen_job *j, const engine_event *ev) {
    char piece[64];
    char out[sizeof piece + sizeof j->stop.held];
    if (ev->type == ENGINE_EV_TOKEN) {
        double t = now_s();
        if (!j->first_seen) {
            left_queue(j);
            j->t_first = t;
        }
        j->t_last = t;
        j->n_generated++;
        if (ev->token == j->end_token) {
            finish(j, "stop", true);
            return;
        }
        if (j->want_lp) record_logprob(j, ev);
        int np = tok_decoder_feed(&j->dec, ev->token, piece, sizeof piece);
        if (np > 0) {
            size_t no = stop_feed(&j->stop, piece, (size_t)np, out, sizeof out);
            emit_text(j, out, no);
            if (j->stop.stopped) finish(j, "stop", true);
        }
        return;
    }
    /* FINISHED */
    left_queue(j);
    j->queue_s = ev->queue_s;
    if (j->status != GEN_RUNNING) return;
    if (ev->finish == ENGINE_FINISH_CANCELLED || ev->finish == ENGINE_FINISH_ERROR) {
        j->status = GEN_FAILED;
        return;
    }
    int np = tok_decoder_flush(&j->dec, piece, sizeof piece);
    size_t no = np > 0 ? stop_feed(&j->stop, piece, (size_t)np, out, sizeof out) : 0;
    emit_text(j, out, no);
    if (j->stop.stopped) {
        finish(j, "stop", false);
        return;
    }
    no = stop_flush(&j->stop, out, sizeof out);
    emit_text(j, out, no);
    finish(j, ev->finish == ENGINE_FINISH_STOP ? "stop" : "length", false);
}

static bool has_output(const gen_job *j) {
    if (j->text.n > 0) return true;
    if (!j->lp) return false;
    json_t *arr = j->chat ? j->lp : json_object_get(j->lp, "tokens");
    return json_array_size(arr) > 0;
}

/* Cancels the engine request after the client, the timeout or the shutdown ended it. */
static void abandon(gen_job *j, gen_status st) {
    j->status = st;
    engine_cancel(j->eng, j->id);
}

void gen_pump(gen_job *j) {
    while (j->status == GEN_RUNNING) {
        engine_event ev;
        if (chan_pop(j->ch, &ev)) {
            absorb(j, &ev);
            if (ev.type == ENGINE_EV_TOKEN && has_output(j)) return;
            continue;
        }
        if (chan_failed(j->ch)) {
            abandon(j, GEN_FAILED);
            return;
        }
        struct pollfd fds[3] = {{.fd = j->ch->efd, .events = POLLIN},
                                {.fd = j->s->shutdown_efd, .events = POLLIN},
                                {.fd = j->conn_fd, .events = POLLRDHUP}};
        int nfds = j->conn_fd >= 0 ? 3 : 2;
        int timeout_ms = 1000;
        int qt = j->s->cfg->queue_timeout_ms;
        if (!j->first_seen && qt > 0) {
            double left = j->t_submit + 1e-3 * qt - now_s();
            if (left <= 0) {
                abandon(j, GEN_TIMEOUT);
                return;
            }
            if (left * 1000 < timeout_ms) timeout_ms = (int)(left * 1000) + 1;
        }
        int r = poll(fds, (nfds_t)nfds, timeout_ms);
        if (r < 0 && errno != EINTR) {
            abandon(j, GEN_FAILED);
            return;
        }
        if (r <= 0) continue;
        if (nfds == 3 && (fds[2].revents & (POLLRDHUP | POLLHUP | POLLERR | POLLNVAL))) {
            abandon(j, GEN_DISCONNECTED);
            return;
        }
        if (fds[1].revents & POLLIN) {
            abandon(j, GEN_SHUTDOWN);
            return;
        }
    }
}

void gen_status_error(gen_job *j) {
    switch (j->status) {
    case GEN_TIMEOUT:
        oai_errf(&j->err, 503, "queue_timeout", NULL,
                 "The request waited longer than the queue timeout (%d ms) without starting",
                 j->s->cfg->queue_timeout_ms);
        break;
    case GEN_SHUTDOWN:
        oai_errf(&j->err, 503, "shutting_down", NULL,
                 "The server is shutting down; the request was cancelled");
        break;
    default:
        oai_errf(&j->err, 500, "internal_error", NULL, "The generation failed");
        break;
    }
}

json_t *gen_usage(const gen_job *j) {
    return json_pack("{s:i, s:i, s:i}", "prompt_tokens", j->n_prompt, "completion_tokens",
                     j->n_generated, "total_tokens", j->n_prompt + j->n_generated);
}

void gen_free(gen_job *j) {
    if (!j) return;
    srv *s = j->s;
    if (j->submitted) {
        if (j->status == GEN_RUNNING) engine_cancel(j->eng, j->id); /* the client went away */
        left_queue(j);
        metrics_status st = METRICS_ERROR;
        if (j->status == GEN_DONE) st = METRICS_OK;
        else if (j->status == GEN_RUNNING || j->status == GEN_DISCONNECTED) st = METRICS_CANCELLED;
        else if (j->status == GEN_TIMEOUT) st = METRICS_TIMEOUT;
        double end = now_s();
        double ttft = j->t_first > 0 ? j->t_first - j->t_submit : -1;
        double tpot = j->n_generated > 1 ? (j->t_last - j->t_first) / (j->n_generated - 1) : -1;
        metrics_record(&s->met, st, j->n_prompt, j->n_generated,
                       j->queue_s > 0 ? j->queue_s : -1, ttft, tpot, end - j->t_submit);
    } else if (j->err.status) {
        metrics_count(&s->met, j->err.status == 429 || j->err.status == 503
                                   ? METRICS_REJECTED
                                   : j->err.status >= 500 ? METRICS_ERROR : METRICS_CLIENT_ERROR);
    }
    if (j->counted_live) {
        pthread_mutex_lock(&s->mu);
        if (--s->n_live == 0) pthread_cond_broadcast(&s->idle);
        pthread_mutex_unlock(&s->mu);
    }
    if (j->ch) {
        if (!j->submitted) chan_unref(j->ch); /* the engine never took its reference */
        chan_unref(j->ch);
    }
    json_decref(j->lp);
    free(j->prompt);
    free(j->text.s);
    free(j->out.s);
    free(j);
}

/* ---- response pieces shared by completions and chat ---- */

/* Takes the text produced since the last take. */
json_t *gen_take_text(gen_job *j) {
    json_t *t = oai_string(j->text.s ? j->text.s : "", j->text.n);
    j->text.n = 0;
    return t;
}

/* Takes the logprobs gathered since the last take (a fresh collector replaces them). */
json_t *gen_take_lp(gen_job *j) {
    if (!j->lp) return json_null();
    json_t *lp = j->lp;
    if (j->chat) {
        j->lp = json_array();
        return json_pack("{s:o}", "content", lp);
    }
    j->lp = json_pack("{s:[], s:[], s:o, s:[]}", "tokens", "token_logprobs", "top_logprobs",
                      j->top_lp > 0 ? json_array() : json_null(), "text_offset");
    return lp;
}
