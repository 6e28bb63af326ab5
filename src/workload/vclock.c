/* vclock.c — the virtual clock and its single-threaded driver (vclock.h). Time moves only here:
 * by the modelled duration of each step (step_done, called by the engine after the forward pass
 * and before the step's tokens are emitted, so TTFT and finish times include their step) and by
 * jumps over idle gaps. Nothing that depends on thread timing reaches the clock. */
#include "workload/vclock.h"

#include <string.h>

void vclock_init(vclock *vc, const stepm_params *model) {
    memset(vc, 0, sizeof *vc);
    vc->model = *model;
}

static double vc_now(void *ctx) {
    return ((const vclock *)ctx)->now;
}

static void vc_step_done(void *ctx, const engine_step_shape *sh) {
    vclock *vc = ctx;
    double dt = stepm_eval_s(&vc->model, sh);
    vc->now += dt;
    vc->busy_s += dt;
    vc->steps++;
}

engine_clock_source vclock_source(vclock *vc) {
    return (engine_clock_source){vc, vc_now, vc_step_done};
}

int vclock_run(vclock *vc, engine *e, int n, const double *arrival_s, vclock_submit_fn submit,
               void *ctx, weft_err *err) {
    const double t0 = vc->now;
    int next = 0;
    for (;;) {
        /* requests that arrived during the last step: each is stamped with its own arrival
         * (the engine reads the clock in engine_submit), then the clock returns to now */
        const double now = vc->now;
        while (next < n && t0 + arrival_s[next] <= now) {
            vc->now = t0 + arrival_s[next];
            (void)submit(ctx, e, next); /* a refused request is the caller's to record */
            next++;
        }
        vc->now = now;
        int ran = engine_step(e, err);
        if (ran < 0) return -1;
        if (ran > 0) continue;
        if (next < n) { /* idle: jump to the next arrival */
            double t = t0 + arrival_s[next];
            if (t > vc->now) {
                vc->idle_s += t - vc->now;
                vc->now = t;
            }
            continue;
        }
        engine_stats st; /* published by the step that just ran */
        engine_get_stats(e, &st);
        if (st.waiting + st.running == 0) return 0;
        return weft_errf(err, "virtual clock: the engine is idle with %d requests unfinished "
                              "and none left to arrive (a mode that waits on the clock?)",
                         st.waiting + st.running);
    }
}
