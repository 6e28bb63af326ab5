/* sched_policy.c — lifetime helpers shared by every scheduling policy (see weft/sched.h). A
 * policy frees its own state through its destroy hook; this is the one place that calls it. */
#include <stdlib.h>

#include "weft/sched.h"

void sched_policy_free(sched_policy *p) {
    if (!p) return;
    if (p->destroy)
        p->destroy(p);
    else
        free(p);
}
