/* split_real_profile.c — writes a device profile for bench/split_real.sh with the planner's
 * split_profile_measure (include/weft/split_plan.h): per-layer prefill and decode cost and the
 * head's, on this machine, for MODEL with THREADS threads.
 * usage: split_real_profile MODEL THREADS PROMPT_TOKENS DECODE_BATCH OUT.json */
#include <stdio.h>
#include <stdlib.h>

#include "weft/model.h"
#include "weft/split_plan.h"

int main(int argc, char **argv) {
    if (argc != 6) {
        fprintf(stderr, "usage: split_real_profile MODEL THREADS PROMPT_TOKENS DECODE_BATCH OUT.json\n");
        return 2;
    }
    weft_err err = {{0}};
    weft_model *m = model_load(argv[1], NULL, &err);
    if (!m) {
        fprintf(stderr, "split_real_profile: %s\n", err.msg);
        return 1;
    }
    split_profile p;
    int rc = split_profile_measure(m, atoi(argv[2]), atoi(argv[3]), atoi(argv[4]), 5, &p, &err);
    if (rc == 0) rc = split_profile_write_json(&p, argv[5], &err);
    if (rc != 0) fprintf(stderr, "split_real_profile: %s\n", err.msg);
    else
        fprintf(stderr, "profile: layer prefill %.3g s/token, decode %.3g s, head %.3g / %.3g s\n",
                p.cost.layer_prefill_s, p.cost.layer_decode_s, p.cost.head_prefill_s,
                p.cost.head_decode_s);
    model_free(m);
    return rc == 0 ? 0 : 1;
}
