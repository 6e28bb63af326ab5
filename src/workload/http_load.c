/* http_load.c — the HTTP load generator (see http_load.h). One thread, one curl multi handle:
 * the loop starts every request whose arrival time has come (while fewer than max_concurrency
 * are in flight), lets curl move bytes, collects finished transfers, and sleeps in
 * curl_multi_poll until the next arrival or socket activity. Response bytes are parsed as they
 * arrive (SSE "data:" lines, each a JSON chunk), so chunk times are taken when curl hands the
 * bytes over. */
#include "workload/http_load.h"

#include <curl/curl.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define HL_MAX_RESPONSE (16u << 20) /* a response larger than this is a failure */

typedef struct hl_xfer {
    int idx;
    CURL *h;
    struct curl_slist *hdr;
    char *body;
    char *buf; /* stream: the unfinished line; otherwise the whole response */
    size_t len, cap;
    bool stream;
    double t0;
    metrics_request *rec;
    int n_chunks;
    int usage_prompt, usage_completion; /* -1: not reported */
    int finish;                         /* engine_finish, -1 unknown */
    bool saw_done, error_event, bad;
    char msg[320]; /* what went wrong, when it did */
    char curl_err[CURL_ERROR_SIZE];
} hl_xfer;

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static void xfer_free(hl_xfer *x) {
    if (!x) return;
    if (x->h) curl_easy_cleanup(x->h);
    curl_slist_free_all(x->hdr);
    free(x->body);
    free(x->buf);
    free(x);
}

static int map_finish(const char *r) {
    if (!strcmp(r, "stop")) return ENGINE_FINISH_STOP;
    return ENGINE_FINISH_LENGTH; /* "length" and anything else a server may say */
}

/* One completion object (a stream chunk or the whole response): text, finish_reason, usage,
 * error. is_chunk: text marks a token arrival. */
static void take_object(hl_xfer *x, json_t *o, bool is_chunk) {
    if (!json_is_object(o)) {
        x->bad = true;
        snprintf(x->msg, sizeof x->msg, "response is not a JSON object");
        return;
    }
    json_t *e = json_object_get(o, "error");
    if (e && !json_is_null(e)) {
        x->error_event = true;
        json_t *m = json_is_object(e) ? json_object_get(e, "message") : NULL;
        snprintf(x->msg, sizeof x->msg, "error event: %s",
                 json_is_string(m) ? json_string_value(m) : "(no message)");
    }
    json_t *ch = json_object_get(o, "choices");
    json_t *c0 = json_is_array(ch) ? json_array_get(ch, 0) : NULL;
    if (json_is_object(c0)) {
        json_t *t = json_object_get(c0, "text");
        if (json_is_string(t) && json_string_length(t) > 0) {
            x->n_chunks++;
            if (is_chunk && x->rec->first_token_s < 0) x->rec->first_token_s = now_s() - x->t0;
        }
        json_t *f = json_object_get(c0, "finish_reason");
        if (json_is_string(f)) x->finish = map_finish(json_string_value(f));
    }
    json_t *u = json_object_get(o, "usage");
    if (json_is_object(u)) {
        json_t *p = json_object_get(u, "prompt_tokens"),
               *c = json_object_get(u, "completion_tokens");
        if (json_is_integer(p)) x->usage_prompt = (int)json_integer_value(p);
        if (json_is_integer(c)) x->usage_completion = (int)json_integer_value(c);
    }
}

/* One SSE line (without its newline). Comments, event names and blank lines are skipped. */
static void take_line(hl_xfer *x, char *line, size_t n) {
    if (n && line[n - 1] == '\r') line[--n] = 0;
    if (n < 5 || memcmp(line, "data:", 5)) return;
    char *p = line + 5;
    if (*p == ' ') p++;
    if (!strcmp(p, "[DONE]")) {
        x->saw_done = true;
        return;
    }
    json_error_t je;
    json_t *o = json_loads(p, 0, &je);
    if (!o) {
        x->bad = true;
        snprintf(x->msg, sizeof x->msg, "malformed SSE chunk: %s", je.text);
        return;
    }
    take_object(x, o, true);
    json_decref(o);
}

static size_t on_data(char *data, size_t size, size_t nmemb, void *ud) {
    hl_xfer *x = ud;
    size_t n = size * nmemb;
    if (x->len + n + 1 > HL_MAX_RESPONSE) {
        snprintf(x->msg, sizeof x->msg, "response larger than %u bytes", HL_MAX_RESPONSE);
        return 0; /* aborts the transfer */
    }
    if (x->len + n + 1 > x->cap) {
        size_t cap = x->cap ? x->cap : 4096;
        while (cap < x->len + n + 1)
            cap *= 2;
        char *b = realloc(x->buf, cap);
        if (!b) {
            snprintf(x->msg, sizeof x->msg, "out of memory");
            return 0;
        }
        x->buf = b;
        x->cap = cap;
    }
    memcpy(x->buf + x->len, data, n);
    x->len += n;
    x->buf[x->len] = 0;
    if (!x->stream) return n;
    /* every complete line; the rest stays for the next call */
    size_t start = 0;
    for (;;) {
        char *nl = memchr(x->buf + start, '\n', x->len - start);
        if (!nl) break;
        *nl = 0;
        take_line(x, x->buf + start, (size_t)(nl - (x->buf + start)));
        start = (size_t)(nl - x->buf) + 1;
    }
    if (start) {
        memmove(x->buf, x->buf + start, x->len - start);
        x->len -= start;
        x->buf[x->len] = 0;
    }
    return n;
}

static char *request_body(const hl_config *c, const hl_request *q, int i) {
    json_t *o = json_pack("{s:s,s:i,s:f,s:I,s:b,s:b}", "prompt", q->prompt, "max_tokens",
                          q->max_tokens, "temperature", c->temperature, "seed",
                          (json_int_t)((c->seed + (uint64_t)i) & 0x7fffffffu), "stream", c->stream,
                          "ignore_eos", 1);
    if (!o) return NULL;
    int bad = 0;
    if (c->model) bad |= json_object_set_new(o, "model", json_string(c->model));
    if (q->priority) bad |= json_object_set_new(o, "priority", json_integer(q->priority));
    if (q->deadline_ms > 0) bad |= json_object_set_new(o, "deadline_ms", json_real(q->deadline_ms));
    if (q->force_tokens > 0)
        bad |= json_object_set_new(o, "bench_output_tokens", json_integer(q->force_tokens));
    if (c->stream)
        bad |= json_object_set_new(o, "stream_options", json_pack("{s:b}", "include_usage", 1));
    char *s = bad ? NULL : json_dumps(o, JSON_COMPACT);
    json_decref(o);
    return s;
}

/* Creates and configures the transfer of request i; NULL (with msg filled) on failure. */
static hl_xfer *xfer_new(const hl_config *c, const char *endpoint, const char *auth,
                         const hl_request *q, int i, metrics_request *rec, double t0, char *msg,
                         size_t msg_size) {
    hl_xfer *x = calloc(1, sizeof *x);
    if (!x) {
        snprintf(msg, msg_size, "out of memory");
        return NULL;
    }
    x->idx = i;
    x->stream = c->stream;
    x->t0 = t0;
    x->rec = rec;
    x->usage_prompt = x->usage_completion = -1;
    x->finish = -1;
    x->body = request_body(c, q, i);
    x->h = curl_easy_init();
    struct curl_slist *h1 = curl_slist_append(NULL, "Content-Type: application/json");
    x->hdr = h1;
    struct curl_slist *h2 = h1 ? curl_slist_append(h1, "Expect:") : NULL;
    if (h2) x->hdr = h2;
    struct curl_slist *h3 = h2 && auth ? curl_slist_append(h2, auth) : h2;
    if (h3) x->hdr = h3;
    if (!x->body || !x->h || !h3) {
        snprintf(msg, msg_size, "out of memory setting up a request");
        xfer_free(x);
        return NULL;
    }
    long timeout_ms = (long)ceil(c->timeout_s * 1e3);
    int bad = 0;
    bad |= curl_easy_setopt(x->h, CURLOPT_URL, endpoint) != CURLE_OK;
    bad |= curl_easy_setopt(x->h, CURLOPT_PROXY, "") != CURLE_OK; /* loopback, never a proxy */
    bad |= curl_easy_setopt(x->h, CURLOPT_NOSIGNAL, 1L) != CURLE_OK;
    bad |= curl_easy_setopt(x->h, CURLOPT_TCP_NODELAY, 1L) != CURLE_OK;
    bad |= curl_easy_setopt(x->h, CURLOPT_POSTFIELDS, x->body) != CURLE_OK;
    bad |= curl_easy_setopt(x->h, CURLOPT_POSTFIELDSIZE, (long)strlen(x->body)) != CURLE_OK;
    bad |= curl_easy_setopt(x->h, CURLOPT_HTTPHEADER, x->hdr) != CURLE_OK;
    bad |= curl_easy_setopt(x->h, CURLOPT_WRITEFUNCTION, on_data) != CURLE_OK;
    bad |= curl_easy_setopt(x->h, CURLOPT_WRITEDATA, x) != CURLE_OK;
    bad |= curl_easy_setopt(x->h, CURLOPT_PRIVATE, x) != CURLE_OK;
    bad |= curl_easy_setopt(x->h, CURLOPT_ERRORBUFFER, x->curl_err) != CURLE_OK;
    bad |= curl_easy_setopt(x->h, CURLOPT_TIMEOUT_MS, timeout_ms) != CURLE_OK;
    bad |= curl_easy_setopt(x->h, CURLOPT_CONNECTTIMEOUT_MS,
                            timeout_ms < 10000 ? timeout_ms : 10000L) != CURLE_OK;
    if (bad) {
        snprintf(msg, msg_size, "curl refused an option");
        xfer_free(x);
        return NULL;
    }
    return x;
}

typedef enum { OUT_OK, OUT_HTTP, OUT_NET } outcome;

/* Classifies a finished transfer and fills its record. */
static outcome xfer_done(hl_xfer *x, CURLcode res, const hl_request *q, int *status_out) {
    metrics_request *r = x->rec;
    r->finish_s = now_s() - x->t0;
    long status = 0;
    if (curl_easy_getinfo(x->h, CURLINFO_RESPONSE_CODE, &status) != CURLE_OK) status = 0;
    if (status_out) *status_out = (int)status;
    r->finish = ENGINE_FINISH_ERROR;
    if (res != CURLE_OK) {
        if (!x->msg[0])
            snprintf(x->msg, sizeof x->msg, "%s",
                     x->curl_err[0] ? x->curl_err : curl_easy_strerror(res));
        return OUT_NET;
    }
    if (status != 200) {
        char body[120] = "";
        if (x->buf) snprintf(body, sizeof body, "%s", x->buf);
        body[strcspn(body, "\r\n")] = 0;
        snprintf(x->msg, sizeof x->msg, "HTTP %ld: %s", status, body);
        return OUT_HTTP;
    }
    if (!x->stream) {
        json_error_t je;
        json_t *o = x->buf ? json_loads(x->buf, 0, &je) : NULL;
        if (!o) {
            snprintf(x->msg, sizeof x->msg, "malformed JSON response");
            return OUT_NET;
        }
        take_object(x, o, false);
        json_decref(o);
    } else if (x->len > 0 && !x->bad) {
        take_line(x, x->buf, x->len); /* a last line without its newline */
    }
    if (x->error_event) return OUT_HTTP;
    if (x->bad) return OUT_NET;
    if (x->stream && !x->saw_done) {
        snprintf(x->msg, sizeof x->msg, "stream ended without data: [DONE]");
        return OUT_NET;
    }
    r->n_prompt = x->usage_prompt >= 0 ? x->usage_prompt : q->n_prompt;
    r->n_generated = x->usage_completion >= 0 ? x->usage_completion : x->n_chunks;
    if (!x->stream && r->n_generated > 0) r->first_token_s = r->finish_s;
    r->finish = x->finish >= 0 ? x->finish : ENGINE_FINISH_LENGTH;
    return OUT_OK;
}

static void note_failure(hl_stats *st, int i, const char *what) {
    if (!st->first_error[0])
        snprintf(st->first_error, sizeof st->first_error, "request %d: %s", i, what);
}

int hl_run(const hl_config *c, const hl_request *rq, int n, metrics_request *out, int *http_status,
           hl_stats *st, weft_err *err) {
    memset(st, 0, sizeof *st);
    if (n < 1 || c->max_concurrency < 1 || !(c->timeout_s > 0) || !c->url)
        return weft_errf(err, "http load: bad arguments");
    /* endpoint: base without trailing "/" or "/v1", then /v1/completions */
    size_t ul = strlen(c->url);
    while (ul && c->url[ul - 1] == '/')
        ul--;
    if (ul >= 3 && !memcmp(c->url + ul - 3, "/v1", 3)) ul -= 3;
    char *endpoint = malloc(ul + sizeof "/v1/completions");
    char *auth = NULL;
    if (c->api_key) {
        size_t al = strlen(c->api_key) + sizeof "Authorization: Bearer ";
        auth = malloc(al);
        if (auth) snprintf(auth, al, "Authorization: Bearer %s", c->api_key);
    }
    hl_xfer **live = calloc((size_t)n, sizeof *live);
    CURLM *m = curl_multi_init();
    if (!endpoint || (c->api_key && !auth) || !live || !m) {
        free(endpoint);
        free(auth);
        free(live);
        if (m) curl_multi_cleanup(m);
        return weft_errf(err, "http load: out of memory");
    }
    memcpy(endpoint, c->url, ul);
    strcpy(endpoint + ul, "/v1/completions");

    for (int i = 0; i < n; i++) {
        memset(&out[i], 0, sizeof out[i]);
        out[i].first_token_s = out[i].finish_s = -1;
        out[i].finish = -1;
        out[i].n_prompt = rq[i].n_prompt;
        out[i].n_expected = rq[i].force_tokens > 0 ? rq[i].force_tokens : rq[i].max_tokens;
        if (http_status) http_status[i] = 0;
    }

    int rc = 0, next = 0, in_flight = 0, done = 0;
    double t0 = now_s();
    while (done < n) {
        double t = now_s() - t0;
        while (next < n && in_flight < c->max_concurrency && t >= rq[next].arrival_s) {
            int i = next++;
            char msg[320];
            out[i].arrival_s = now_s() - t0;
            out[i].submitted = true;
            hl_xfer *x = xfer_new(c, endpoint, auth, &rq[i], i, &out[i], t0, msg, sizeof msg);
            if (x && curl_multi_add_handle(m, x->h) != CURLM_OK) {
                snprintf(msg, sizeof msg, "curl_multi_add_handle failed");
                xfer_free(x);
                x = NULL;
            }
            if (!x) {
                out[i].finish = ENGINE_FINISH_ERROR;
                out[i].finish_s = now_s() - t0;
                st->n_net_errors++;
                note_failure(st, i, msg);
                done++;
                continue;
            }
            live[i] = x;
            in_flight++;
        }
        int running;
        CURLMcode mc = curl_multi_perform(m, &running);
        if (mc != CURLM_OK) {
            rc = weft_errf(err, "http load: curl_multi_perform: %s", curl_multi_strerror(mc));
            break;
        }
        CURLMsg *msg;
        int queued;
        while ((msg = curl_multi_info_read(m, &queued))) {
            if (msg->msg != CURLMSG_DONE) continue;
            char *priv = NULL;
            if (curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, &priv) != CURLE_OK || !priv)
                continue;
            hl_xfer *x = (hl_xfer *)(void *)priv;
            CURLcode res = msg->data.result; /* read before the handle goes */
            int i = x->idx;
            outcome oc = xfer_done(x, res, &rq[i], http_status ? &http_status[i] : NULL);
            if (oc == OUT_OK) {
                st->n_ok++;
                if (out[i].n_generated < out[i].n_expected) st->n_short++;
            } else {
                if (oc == OUT_HTTP)
                    st->n_http_errors++;
                else
                    st->n_net_errors++;
                note_failure(st, i, x->msg);
            }
            if (curl_multi_remove_handle(m, x->h) != CURLM_OK) {
                rc = weft_errf(err, "http load: curl_multi_remove_handle failed");
            }
            xfer_free(x);
            live[i] = NULL;
            in_flight--;
            done++;
        }
        if (rc || done >= n) break;
        int wait_ms = 100;
        if (next < n && in_flight < c->max_concurrency) {
            double dt = rq[next].arrival_s - (now_s() - t0);
            wait_ms = dt <= 0 ? 0 : dt >= 0.1 ? 100 : (int)ceil(dt * 1e3);
        }
        if (wait_ms > 0) {
            mc = curl_multi_poll(m, NULL, 0, wait_ms, NULL);
            if (mc != CURLM_OK) {
                rc = weft_errf(err, "http load: curl_multi_poll: %s", curl_multi_strerror(mc));
                break;
            }
        }
    }
    st->wall_s = now_s() - t0;
    for (int i = 0; i < n; i++) /* only after an internal error */
        if (live[i]) {
            (void)curl_multi_remove_handle(m, live[i]->h);
            xfer_free(live[i]);
        }
    curl_multi_cleanup(m);
    free(live);
    free(endpoint);
    free(auth);
    return rc;
}
