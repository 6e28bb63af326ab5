/* pred_util.h — helpers for the length-predictor unit tests that build synthetic data sets in
 * memory: one set of n single-answer prompts with distinct texts, allocations asserted. */
#ifndef WEFT_TEST_PRED_UTIL_H
#define WEFT_TEST_PRED_UTIL_H

#include "predict/pred_data.h"

/* Zeroes d and gives it one set named set_name and n prompts, prompt i with the text
 * "<prefix> i", one answer and PF_COUNT features (all 0), and n zeroed records. The caller fills
 * each prompt's test flag, features and record, then sets n_prompts and n_recs;
 * pred_data_free releases it. */
void tu_pred_data_new(pred_data *d, int n, const char *set_name, const char *prefix);

#endif
