/* cost.c — the split-inference cost model: what one request costs, end to end, at a split
 * point p. Owns the formulas the planners, `weft split profile` and `weft bench split` share, so
 * a prediction and a plan always use the same arithmetic. docs/split.md ("Cost model") derives
 * them. */
#include <math.h>
#include <stddef.h>

#include "split/plan_internal.h"

/* Bytes of one token id on the wire (p = 0 sends ids; the server sends sampled ids back). */
#define TOKEN_ID_BYTES 4.0

static int finite_nonneg(double x) { return isfinite(x) && x >= 0; }

static int cost_check(const split_device_cost *c, const char *who, weft_err *err) {
    if (!finite_nonneg(c->layer_prefill_s) || !finite_nonneg(c->layer_decode_s) ||
        !finite_nonneg(c->head_prefill_s) || !finite_nonneg(c->head_decode_s))
        return weft_errf(err, "%s costs must be finite and >= 0 (prefill %g, decode %g, head %g/%g)",
                         who, c->layer_prefill_s, c->layer_decode_s, c->head_prefill_s,
                         c->head_decode_s);
    return 0;
}

static int server_check(const split_server *s, weft_err *err) {
    if (s->n_layers < 1 || s->n_layers > SPLIT_MAX_LAYERS)
        return weft_errf(err, "server n_layers %d out of range 1..%d", s->n_layers,
                         SPLIT_MAX_LAYERS);
    if (cost_check(&s->cost, "server", err)) return -1;
    if (!isfinite(s->slowdown) || s->slowdown < 1)
        return weft_errf(err, "server slowdown %g must be >= 1", s->slowdown);
    if (!isfinite(s->window_s) || s->window_s <= 0)
        return weft_errf(err, "server window_s %g must be > 0", s->window_s);
    if (!isfinite(s->cores) || s->cores <= 0)
        return weft_errf(err, "server cores %g must be > 0", s->cores);
    if (!isfinite(s->load) || s->load < 0 || s->load >= 1)
        return weft_errf(err, "server load %g must be in [0, 1)", s->load);
    if (!finite_nonneg(s->kv_bytes_per_layer_token))
        return weft_errf(err, "server kv_bytes_per_layer_token %g must be >= 0",
                         s->kv_bytes_per_layer_token);
    if (!isfinite(s->kv_capacity_bytes))
        return weft_errf(err, "server kv_capacity_bytes must be finite");
    if (s->kv_units < 0 || s->kv_units > 1000000)
        return weft_errf(err, "server kv_units %d out of range 0..1000000", s->kv_units);
    if (s->n_devices < 0 || s->n_devices > SPLIT_MAX_DEVICES || (s->n_devices > 0 && !s->devices))
        return weft_errf(err, "server n_devices %d out of range 0..%d (or no device table)",
                         s->n_devices, SPLIT_MAX_DEVICES);
    if (s->batched_n < 0 || s->batched_n > 4096 || (s->batched_n > 1 &&
                                                     cost_check(&s->cost_batched, "server batched", err)))
        return s->batched_n < 0 || s->batched_n > 4096
                   ? weft_errf(err, "server batched_n %d out of range 0..4096", s->batched_n)
                   : -1;
    if (!isfinite(s->batch) || s->batch < 0 || s->batch > 4096)
        return weft_errf(err, "server batch %g out of range [0, 4096]", s->batch);
    if (!isfinite(s->batch_split) || s->batch_split < 0 || s->batch_split > 4096 ||
        (s->batch_split > 0 && s->batch_split < 1))
        return weft_errf(err, "server batch_split %g must be 0 or in [1, 4096]", s->batch_split);
    if (!finite_nonneg(s->io_token_s) || !finite_nonneg(s->io_frame_s) ||
        !finite_nonneg(s->io_token_batched_s))
        return weft_errf(err, "server io_token_s %g and io_frame_s %g must be finite and >= 0",
                         s->io_token_s, s->io_frame_s);
    if (!finite_nonneg(s->load_step_s))
        return weft_errf(err, "server load_step_s %g must be finite and >= 0", s->load_step_s);
    if (!finite_nonneg(s->step_fixed_layer_s) || !isfinite(s->step_batch) || s->step_batch < 0 ||
        s->step_batch > 4096 || (s->step_fixed_layer_s > 0 && s->step_batch < 1))
        return weft_errf(err, "server step_fixed_layer_s %g must be >= 0 and step_batch %g in "
                              "[1, 4096] when it is set", s->step_fixed_layer_s, s->step_batch);
    if (s->batch_entry_known &&
        (s->batch_entry_known != 1 || s->batch_min_entry < 0 || s->batch_min_entry > s->n_layers))
        return weft_errf(err, "server batch_min_entry %d out of range 0..%d", s->batch_min_entry,
                         s->n_layers);
    if (s->objective != SPLIT_OBJECTIVE_WORK && s->objective != SPLIT_OBJECTIVE_KV)
        return weft_errf(err, "server objective %d unknown (0 = work, 1 = kv)", s->objective);
    if (s->device_units < 0 || s->device_units > 1000000)
        return weft_errf(err, "server device_units %d out of range 0..1000000", s->device_units);
    for (int d = 0; d < s->n_devices; d++) {
        const split_client_device *v = &s->devices[d];
        if (!isfinite(v->mem_bytes) || v->mem_bytes <= 0 || !finite_nonneg(v->fixed_bytes) ||
            !finite_nonneg(v->weight_bytes_per_layer) || !finite_nonneg(v->kv_bytes_per_layer_token))
            return weft_errf(err, "client device %d: memory %g must be > 0 and fixed %g, weights "
                                  "%g/layer, KV %g/layer/token finite and >= 0", d + 1,
                             v->mem_bytes, v->fixed_bytes, v->weight_bytes_per_layer,
                             v->kv_bytes_per_layer_token);
    }
    return 0;
}

int split_request_check(const split_request *r, const split_server *s, weft_err *err) {
    if (server_check(s, err)) return -1;
    if (r->prompt_tokens < 1 || r->prompt_tokens > 100000000)
        return weft_errf(err, "prompt_tokens %d out of range 1..1e8", r->prompt_tokens);
    if (r->output_tokens < 1 || r->output_tokens > 100000000)
        return weft_errf(err, "output_tokens %d out of range 1..1e8", r->output_tokens);
    if (!isfinite(r->sla_s) || r->sla_s <= 0) return weft_errf(err, "sla_s %g must be > 0", r->sla_s);
    if (!isfinite(r->count) || r->count <= 0) return weft_errf(err, "count %g must be > 0", r->count);
    if (cost_check(&r->client, "client", err)) return -1;
    if (r->client_max_layers < 0)
        return weft_errf(err, "client_max_layers %d must be >= 0", r->client_max_layers);
    if (!isfinite(r->link_bw_Bps) || r->link_bw_Bps <= 0)
        return weft_errf(err, "link bandwidth %g B/s must be > 0", r->link_bw_Bps);
    if (!finite_nonneg(r->link_rtt_s)) return weft_errf(err, "link rtt %g must be >= 0", r->link_rtt_s);
    if (!finite_nonneg(r->hidden_bytes_per_token) || r->hidden_bytes_per_token <= 0)
        return weft_errf(err, "hidden_bytes_per_token %g must be > 0", r->hidden_bytes_per_token);
    if (r->device < 0 || r->device > s->n_devices)
        return weft_errf(err, "device %d out of range 0..%d", r->device, s->n_devices);
    return 0;
}

double split_server_batch(const split_server *s, int p) {
    const double b = p > 0 && p < s->n_layers && s->batch_split > 0 ? s->batch_split : s->batch;
    return b > 1 ? b : 1;
}

void split_server_step_fixed(const split_server *s, int p, double *fixed, double *batch) {
    *fixed = 0;
    *batch = 1;
    const double b = split_server_batch(s, p);
    if (s->step_fixed_layer_s > 0) {
        *fixed = s->step_fixed_layer_s;
        *batch = s->step_batch;
    } else if (s->batched_n > 1 && b > 1) {
        const double B = s->batched_n;
        const double f = (s->cost.layer_decode_s - s->cost_batched.layer_decode_s) * B / (B - 1);
        *fixed = f > 0 ? f : 0;
        *batch = b;
    }
    /* A request alone in its steps (b <= 1) shares none: nothing couples it to the others. */
    if (*batch <= 1) *fixed = 0;
}

int split_cost_eval(const split_request *r, const split_server *s, int p, split_choice *out,
                    weft_err *err) {
    if (split_request_check(r, s, err)) return -1;
    const int L = s->n_layers;
    if (p < 0 || p > L) return weft_errf(err, "split point %d out of range 0..%d", p, L);
    const double P = r->prompt_tokens;
    const double Dd = r->output_tokens - 1; /* decode steps: prefill yields the first token */
    const double bw = r->link_bw_Bps, rtt = r->link_rtt_s, hb = r->hidden_bytes_per_token;
    const split_device_cost *cs = &s->cost, *cc = &r->client;
    const int ls = L - p; /* server layers */

    /* Compute time on each side (wall seconds on that device, per request). */
    double srv_pre = 0, srv_dec = 0, cli_pre = 0, cli_dec = 0;
    /* Decode in a batch of b sequences: a cost x measured alone (x1) and with B sequences per
     * step (xB, per sequence) is a + f / b, f = (x1 - xB) B / (B - 1) the part the batch shares
     * (the weights read once per step). */
    const double b = split_server_batch(s, p); /* the batch this kind of token runs in */
    double ld_cost = cs->layer_decode_s, hd_cost = cs->head_decode_s;
    if (s->batched_n > 1 && b > 1) {
        const double B = s->batched_n;
        double f = (cs->layer_decode_s - s->cost_batched.layer_decode_s) * B / (B - 1);
        if (f < 0) f = 0;
        ld_cost = cs->layer_decode_s - f + f / b;
        f = (cs->head_decode_s - s->cost_batched.head_decode_s) * B / (B - 1);
        if (f < 0) f = 0;
        hd_cost = cs->head_decode_s - f + f / b;
    }
    if (ls > 0) {
        srv_pre = ls * P * cs->layer_prefill_s + cs->head_prefill_s;
        srv_dec = ls * ld_cost + hd_cost;
    }
    cli_pre = p * P * cc->layer_prefill_s;
    cli_dec = p * cc->layer_decode_s;
    if (ls == 0) { /* fully local: the client runs the head as well */
        cli_pre += cc->head_prefill_s;
        cli_dec += cc->head_decode_s;
    }

    /* The link. */
    double comm_pre = 0, comm_step = 0, up = 0, down = 0;
    if (p == 0) { /* ids up once; sampled ids stream down without waiting on the client */
        comm_pre = rtt + P * TOKEN_ID_BYTES / bw + TOKEN_ID_BYTES / bw;
        up = P * TOKEN_ID_BYTES;
        down = (Dd + 1) * TOKEN_ID_BYTES;
    } else if (ls > 0) { /* one round trip per prefill chunk and per decode step */
        comm_pre = rtt + P * hb / bw + TOKEN_ID_BYTES / bw;
        comm_step = rtt + hb / bw + TOKEN_ID_BYTES / bw;
        up = (P + Dd) * hb;
        down = (Dd + 1) * TOKEN_ID_BYTES;
    }

    const double sd = s->slowdown;
    const double ld = ls > 0 ? s->load_step_s : 0; /* the others' part of each fused step */
    /* A decode step of b sequences lasts b x the per-sequence cost; a prefill chunk shares its
     * step with the b - 1 others' decode tokens. */
    const double others = ls > 0 ? (b - 1) * srv_dec : 0;
    const double ttft = cli_pre + comm_pre + (srv_pre + others) * sd + ld;
    const double step = cli_dec + comm_step + (srv_dec + others) * sd + ld;
    const double lat = ttft + Dd * step;

    out->p = p;
    out->allowed = p <= r->client_max_layers && (p < L || r->client_can_head);
    out->latency_s = lat;
    out->ttft_s = ttft;
    out->sla_ok = lat <= r->sla_s;
    /* Server work in CPU-seconds: its wall time for this request times its cores. */
    /* The network path on the server: a TOKEN frame per token at p = 0, a round trip per prefill
     * chunk and decode step otherwise (CPU-seconds already). */
    double io_tok = s->io_token_s;
    if (s->batched_n > 1 && b > 1 && s->io_token_batched_s > 0) {
        const double B = s->batched_n;
        double f = (s->io_token_s - s->io_token_batched_s) * B / (B - 1);
        if (f < 0) f = 0;
        io_tok = s->io_token_s - f + f / b;
    }
    const double io = p == 0 ? (Dd + 1) * io_tok : ls > 0 ? (1 + Dd) * s->io_frame_s : 0;
    out->server_work_s = r->count * ((srv_pre + Dd * srv_dec) * s->cores + io);
    out->client_work_s = r->count * (cli_pre + Dd * cli_dec);
    out->comm_s = comm_pre + Dd * comm_step;
    out->bytes_up = up;
    out->bytes_down = down;
    /* Server KV memory-time: layers [p, L) of the request's tokens (on average the prompt plus
     * half the answer) held for the request's whole life. */
    out->kv_byte_s = r->count * ls * s->kv_bytes_per_layer_token * (P + 0.5 * (Dd + 1)) * lat;
    /* The same for the client's layers on its shared device, and the most it holds at once. */
    out->client_kv_byte_s = 0;
    out->client_kv_peak_bytes = 0;
    if (r->device > 0) {
        const double kvc = s->devices[r->device - 1].kv_bytes_per_layer_token;
        out->client_kv_byte_s = r->count * p * kvc * (P + 0.5 * (Dd + 1)) * lat;
        out->client_kv_peak_bytes = p * kvc * (P + Dd + 1);
    }
    /* Its share of one layer's fixed step part over its decode steps (at most what its own
     * per-sequence layer cost carries). */
    out->server_fixed_layer_s = 0;
    if (ls > 0) {
        double fx, fb;
        split_server_step_fixed(s, p, &fx, &fb);
        double share = fx / fb;
        if (share > ld_cost) share = ld_cost;
        out->server_fixed_layer_s = r->count * s->cores * Dd * share;
    }
    return 0;
}
