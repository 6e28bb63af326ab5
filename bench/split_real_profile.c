/* split_real_profile.c — writes a device profile for bench/split_real.sh with the planner's
 * split_profile_measure (include/weft/split_plan.h): per-layer prefill and decode cost and the
 * head's, on this machine, for MODEL with THREADS threads. One measurement on this shared VM is
 * noisy (a two-point fit), so it is repeated RUNS times (20 repetitions each) and each cost is
 * the median over the runs.
 * usage: split_real_profile MODEL THREADS PROMPT_TOKENS DECODE_BATCH OUT.json */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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
    enum { RUNS = 7 };
    split_profile p, runs[RUNS];
    int rc = 0;
    for (int i = 0; i < RUNS && rc == 0; i++)
        rc = split_profile_measure(m, atoi(argv[2]), atoi(argv[3]), atoi(argv[4]), 20, &runs[i],
                                   &err);
    if (rc == 0) {
        p = runs[0];
        double *out[4] = {&p.cost.layer_prefill_s, &p.cost.layer_decode_s,
                          &p.cost.head_prefill_s, &p.cost.head_decode_s};
        for (int f = 0; f < 4; f++) {
            double v[RUNS];
            for (int i = 0; i < RUNS; i++) {
                const split_device_cost *c = &runs[i].cost;
                v[i] = f == 0 ? c->layer_prefill_s : f == 1 ? c->layer_decode_s
                     : f == 2 ? c->head_prefill_s : c->head_decode_s;
            }
            for (int i = 1; i < RUNS; i++) /* insertion sort */
                for (int j = i; j > 0 && v[j] < v[j - 1]; j--) {
                    double t = v[j];
                    v[j] = v[j - 1];
                    v[j - 1] = t;
                }
            *out[f] = v[RUNS / 2];
        }
        snprintf(p.model, sizeof p.model, "%s", argv[1]);
        rc = split_profile_write_json(&p, argv[5], &err);
    }
    if (rc != 0) fprintf(stderr, "split_real_profile: %s\n", err.msg);
    else
        fprintf(stderr, "profile: layer prefill %.3g s/token, decode %.3g s, head %.3g / %.3g s\n",
                p.cost.layer_prefill_s, p.cost.layer_decode_s, p.cost.head_prefill_s,
                p.cost.head_decode_s);
    model_free(m);
    return rc == 0 ? 0 : 1;
}
