/* vclock.h — the virtual clock (docs/scheduling.md "Simulator"): an engine_clock_source whose
 * time advances only by the modelled duration of each step the engine runs (step_model.h) and
 * by jumps over idle gaps to the next arrival, so a scheduling run is deterministic and its
 * times do not depend on the machine's speed or load. vclock_run is the single-threaded driver:
 * it submits every request whose arrival is due, runs engine_step, and jumps to the next arrival
 * when the engine is idle. */
#ifndef WEFT_WORKLOAD_VCLOCK_H
#define WEFT_WORKLOAD_VCLOCK_H

#include <stdint.h>

#include "weft/engine.h"
#include "weft/error.h"
#include "workload/step_model.h"

typedef struct vclock {
    stepm_params model;
    double now;     /* virtual seconds */
    double busy_s;  /* summed modelled step time */
    double idle_s;  /* summed jumps over idle gaps */
    uint64_t steps; /* steps modelled */
} vclock;

void vclock_init(vclock *vc, const stepm_params *model);
/* The engine_config.clock that reads and advances vc. */
engine_clock_source vclock_source(vclock *vc);

/* Submits request i (0 <= i < n) to e; the engine clock reads its arrival time during the call.
 * Returns 0, or -1 when the request was refused (the driver goes on with the others). */
typedef int (*vclock_submit_fn)(void *ctx, engine *e, int i);

/* Drives e (created with vclock_source(vc) as its clock, no engine thread) over n requests with
 * non-decreasing arrival times arrival_s[] (virtual seconds from vc->now at the call) until
 * every submitted request finished. Returns 0, or -1 with a message (an engine error, or the
 * engine idle with requests unfinished and none left to arrive). */
int vclock_run(vclock *vc, engine *e, int n, const double *arrival_s, vclock_submit_fn submit,
               void *ctx, weft_err *err);

#endif
