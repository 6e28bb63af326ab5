/* http.c — libmicrohttpd glue: the daemon (one thread per connection, so a handler may block
 * while the engine works and slow clients never stall each other), routing, the body reader
 * with its size limit, and the request-completed hook that cancels abandoned generations.
 * libmicrohttpd parses HTTP; this file only decides what each request gets. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "server/srv_internal.h"
#include "weft/tp.h"

typedef enum route {
    ROUTE_NONE = 0,
    ROUTE_HEALTH,
    ROUTE_METRICS,
    ROUTE_MODELS,
    ROUTE_MODEL, /* /v1/models/{id} */
    ROUTE_COMPLETIONS,
    ROUTE_CHAT,
} route;

/* Per-request state (libmicrohttpd's con_cls). */
typedef struct http_req {
    route r;
    bool body_route; /* POST with a body we read */
    char *body;
    size_t n_body;
    bool too_large, refused; /* a response was already queued */
    gen_job *job;            /* streaming: lives until the request completes */
} http_req;

enum MHD_Result http_send(struct MHD_Connection *c, unsigned status, const char *ctype,
                          const char *body, size_t len, const char *hname, const char *hval) {
    struct MHD_Response *r =
        MHD_create_response_from_buffer(len, (void *)body, MHD_RESPMEM_MUST_COPY);
    if (!r) return MHD_NO;
    if (ctype) MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, ctype);
    if (hname) MHD_add_response_header(r, hname, hval);
    enum MHD_Result q = MHD_queue_response(c, status, r);
    MHD_destroy_response(r);
    return q;
}

enum MHD_Result http_send_json(struct MHD_Connection *c, unsigned status, json_t *obj) {
    if (!obj) return MHD_NO;
    char *s = json_dumps(obj, JSON_COMPACT);
    json_decref(obj);
    if (!s) return MHD_NO;
    enum MHD_Result r = http_send(c, status, "application/json", s, strlen(s), NULL, NULL);
    free(s);
    return r;
}

static route route_of(const char *url, bool *is_post_route) {
    *is_post_route = false;
    if (!strcmp(url, "/health")) return ROUTE_HEALTH;
    if (!strcmp(url, "/metrics")) return ROUTE_METRICS;
    if (!strcmp(url, "/v1/models")) return ROUTE_MODELS;
    if (!strncmp(url, "/v1/models/", 11) && url[11]) return ROUTE_MODEL;
    *is_post_route = true;
    if (!strcmp(url, "/v1/completions")) return ROUTE_COMPLETIONS;
    if (!strcmp(url, "/v1/chat/completions")) return ROUTE_CHAT;
    *is_post_route = false;
    return ROUTE_NONE;
}

static json_t *model_object(const srv *s) {
    return json_pack("{s:s, s:s, s:I, s:s}", "id", s->model_id, "object", "model", "created",
                     (json_int_t)s->created, "owned_by", "weft");
}

static enum MHD_Result handle_get(srv *s, struct MHD_Connection *c, route r, const char *url) {
    switch (r) {
    case ROUTE_HEALTH: {
        char tpmsg[512];
        if (s->tp && tp_session_failed(s->tp, tpmsg, sizeof tpmsg))
            return http_send_json(c, 503, json_pack("{s:s, s:s}", "status", "failed", "error",
                                                    tpmsg));
        int st = atomic_load(&s->state);
        const char *w = st == SRV_READY ? "ok" : st == SRV_LOADING ? "loading" : "draining";
        return http_send_json(c, st == SRV_READY ? 200 : 503, json_pack("{s:s}", "status", w));
    }
    case ROUTE_METRICS: {
        engine_stats es;
        memset(&es, 0, sizeof es);
        bool up = atomic_load(&s->state) != SRV_LOADING && s->eng;
        if (up) workers_stats_sum(s, &es);
        char *text = metrics_render(&s->met, &es);
        char *sched = up ? workers_metrics_render(s) : NULL;
        if (!text || (up && !sched)) {
            free(text);
            free(sched);
            return MHD_NO;
        }
        size_t n1 = strlen(text), n2 = sched ? strlen(sched) : 0;
        char *all = malloc(n1 + n2 + 1);
        if (!all) {
            free(text);
            free(sched);
            return MHD_NO;
        }
        memcpy(all, text, n1);
        if (n2) memcpy(all + n1, sched, n2);
        all[n1 + n2] = 0;
        free(text);
        free(sched);
        enum MHD_Result q = http_send(c, 200, "text/plain; version=0.0.4; charset=utf-8", all,
                                      n1 + n2, NULL, NULL);
        free(all);
        return q;
    }
    case ROUTE_MODELS:
        return http_send_json(c, 200, json_pack("{s:s, s:[o]}", "object", "list", "data",
                                                model_object(s)));
    case ROUTE_MODEL:
        if (strcmp(url + 11, s->model_id) != 0)
            return oai_error(c, 404, "invalid_request_error", "model_not_found", "model",
                             "The model '%s' does not exist", url + 11);
        return http_send_json(c, 200, model_object(s));
    default: break;
    }
    return MHD_NO;
}

static enum MHD_Result refuse_method(struct MHD_Connection *c, const char *method,
                                     const char *url, const char *allow) {
    oai_err e;
    oai_errf(&e, 405, "method_not_allowed", NULL, "Method %s is not allowed on %s (allowed: %s)",
             method, url, allow);
    json_t *o = json_pack("{s:{s:s, s:s, s:n, s:s}}", "error", "message", e.msg, "type",
                          "invalid_request_error", "param", "code", "method_not_allowed");
    if (!o) return MHD_NO;
    char *body = json_dumps(o, JSON_COMPACT);
    json_decref(o);
    if (!body) return MHD_NO;
    enum MHD_Result q = http_send(c, 405, "application/json", body, strlen(body),
                                  MHD_HTTP_HEADER_ALLOW, allow);
    free(body);
    return q;
}

/* First call for a request: route, method, auth, early refusals. Returns MHD_YES with
 * req->refused set when a response was queued already. */
static enum MHD_Result first_call(srv *s, struct MHD_Connection *c, http_req *req,
                                  const char *url, const char *method) {
    bool post_route;
    req->r = route_of(url, &post_route);
    bool is_get = !strcmp(method, "GET") || !strcmp(method, "HEAD");
    bool is_post = !strcmp(method, "POST");
    req->refused = true;
    if (req->r != ROUTE_HEALTH && !auth_ok(s, c))
        return oai_error(c, 401, "invalid_request_error", "invalid_api_key", NULL,
                         "Incorrect or missing API key: send 'Authorization: Bearer <key>'");
    if (req->r == ROUTE_NONE)
        return oai_error(c, 404, "invalid_request_error", "not_found", NULL,
                         "Unknown request URL: %s %s", method, url);
    if (post_route && !is_post) return refuse_method(c, method, url, "POST");
    if (!post_route && !is_get) return refuse_method(c, method, url, "GET, HEAD");
    if (!post_route) {
        /* answered on the final call: libmicrohttpd closes the connection after a response
         * queued before the request was complete, so answering now would defeat keep-alive */
        req->refused = false;
        return MHD_YES;
    }
    int st = atomic_load(&s->state);
    if (st != SRV_READY) {
        metrics_count(&s->met, METRICS_REJECTED);
        return oai_error(c, 503, "server_error", st == SRV_LOADING ? "loading" : "shutting_down",
                         NULL, st == SRV_LOADING ? "The model is still loading"
                                                 : "The server is shutting down");
    }
    const char *cl =
        MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
    if (cl) {
        char *end;
        unsigned long long n = strtoull(cl, &end, 10);
        if (end != cl && n > (unsigned long long)s->cfg->max_body_bytes) {
            metrics_count(&s->met, METRICS_CLIENT_ERROR);
            return oai_error(c, 413, "invalid_request_error", "request_too_large", NULL,
                             "The request body is %llu bytes; the limit is %lld", n,
                             (long long)s->cfg->max_body_bytes);
        }
    }
    req->refused = false;
    req->body_route = true;
    return MHD_YES;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url,
                                  const char *method, const char *version,
                                  const char *upload_data, size_t *upload_data_size,
                                  void **con_cls) {
    srv *s = cls;
    http_req *req = *con_cls;
    if (!req) {
        req = calloc(1, sizeof *req);
        if (!req) return MHD_NO;
        *con_cls = req;
        enum MHD_Result q = first_call(s, c, req, url, method);
        if (req->refused || q != MHD_YES) return q;
        return MHD_YES; /* wait for the body */
    }
    if (req->refused) { /* a response is queued: discard whatever body still arrives */
        *upload_data_size = 0;
        return MHD_YES;
    }
    if (*upload_data_size > 0) {
        size_t n = *upload_data_size;
        *upload_data_size = 0;
        if (req->too_large) return MHD_YES;
        if (req->n_body + n > (size_t)s->cfg->max_body_bytes) {
            /* never buffer past the limit: drop what we have and refuse */
            req->too_large = true;
            free(req->body);
            req->body = NULL;
            req->n_body = 0;
            return MHD_YES;
        }
        char *b = realloc(req->body, req->n_body + n + 1);
        if (!b) return MHD_NO;
        memcpy(b + req->n_body, upload_data, n);
        req->body = b;
        req->n_body += n;
        req->body[req->n_body] = 0;
        return MHD_YES;
    }
    /* the final call: the whole body is here */
    req->refused = true;
    if (!req->body_route) return handle_get(s, c, req->r, url);
    if (req->too_large) {
        metrics_count(&s->met, METRICS_CLIENT_ERROR);
        return oai_error(c, 413, "invalid_request_error", "request_too_large", NULL,
                         "The request body exceeds the limit of %lld bytes",
                         (long long)s->cfg->max_body_bytes);
    }
    if (req->r == ROUTE_COMPLETIONS)
        return oai_completions(s, c, req->body ? req->body : "", req->n_body, &req->job);
    return oai_chat(s, c, req->body ? req->body : "", req->n_body, &req->job);
}

static void on_completed(void *cls, struct MHD_Connection *c, void **con_cls,
                         enum MHD_RequestTerminationCode toe) {
    http_req *req = *con_cls;
    if (!req) return;
    /* gen_free cancels the engine request when it is still live (a client that went away
     * mid-stream, or a response that could not be written). */
    if (req->job) gen_free(req->job);
    free(req->body);
    free(req);
    *con_cls = NULL;
}

struct MHD_Daemon *http_start(srv *s, weft_err *err) {
    const srv_config *cfg = s->cfg;
    unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_THREAD_PER_CONNECTION |
                     MHD_USE_POLL | MHD_USE_ITC;
    struct sockaddr_storage ss;
    memset(&ss, 0, sizeof ss);
    struct sockaddr_in *v4 = (struct sockaddr_in *)&ss;
    struct sockaddr_in6 *v6 = (struct sockaddr_in6 *)&ss;
    const char *host = strcmp(cfg->host, "localhost") ? cfg->host : "127.0.0.1";
    if (inet_pton(AF_INET, host, &v4->sin_addr) == 1) {
        v4->sin_family = AF_INET;
        v4->sin_port = htons((uint16_t)cfg->port);
    } else if (inet_pton(AF_INET6, host, &v6->sin6_addr) == 1) {
        v6->sin6_family = AF_INET6;
        v6->sin6_port = htons((uint16_t)cfg->port);
        flags |= MHD_USE_IPv6;
    } else {
        weft_errf(err, "--host '%s' is not an IPv4 or IPv6 address", cfg->host);
        return NULL;
    }
    struct MHD_Daemon *d = MHD_start_daemon(
        flags, (uint16_t)cfg->port, NULL, NULL, on_request, s, MHD_OPTION_SOCK_ADDR, &ss,
        MHD_OPTION_CONNECTION_LIMIT, (unsigned)cfg->max_connections,
        MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)cfg->connection_timeout_s,
        MHD_OPTION_NOTIFY_COMPLETED, on_completed, s, MHD_OPTION_LISTENING_ADDRESS_REUSE,
        (unsigned)1, MHD_OPTION_END);
    if (!d) weft_errf(err, "cannot listen on %s:%d (address in use or not permitted)", cfg->host,
                      cfg->port);
    return d;
}
