/* tok_cases.c — see tok_cases.h. */
#include "support/tok_cases.h"
#include "support/testutil.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CASE_SEP "\n__ggml_vocab_test__\n"

static void print_ids(const char *label, const int32_t *ids, int n) {
    printf("  %s:", label);
    for (int i = 0; i < n; i++) printf(" %d", (int)ids[i]);
    printf("\n");
}

int tu_run_vocab_cases(const weft_tokenizer *t, const char *inp_path, const char *out_path,
                       int *n_cases, int *n_matched) {
    size_t inp_size, out_size;
    char *inp = tu_read_file(inp_path, &inp_size);
    char *outs = tu_read_file(out_path, &out_size);
    int rc = -1;
    int32_t *want = NULL, *got = NULL;
    *n_cases = *n_matched = 0;
    if (!inp || !outs) goto done;
    size_t cap = inp_size * 4 + 16;
    want = malloc(cap * sizeof *want);
    got = malloc(cap * sizeof *got);
    if (!want || !got) goto done;

    char *text = inp;
    char *line = outs;
    char *sep;
    while ((sep = strstr(text, CASE_SEP)) != NULL) {
        size_t len = (size_t)(sep - text);
        if (!*line) {
            printf("vocab cases: %s has fewer lines than %s has cases\n", out_path, inp_path);
            goto done;
        }
        char *eol = strchr(line, '\n');
        if (eol) *eol = 0;
        int n_want = 0;
        for (char *p = line, *end; *p; p = end) {
            long v = strtol(p, &end, 10);
            if (end == p) break;
            want[n_want++] = (int32_t)v;
        }
        int n_got = tok_encode(t, text, len, false, got, (int)cap);
        (*n_cases)++;
        if (n_got == n_want && memcmp(got, want, (size_t)n_want * sizeof *got) == 0) {
            (*n_matched)++;
        } else {
            printf("vocab case %d MISMATCH: \"%.*s\"\n", *n_cases, (int)len, text);
            print_ids("want", want, n_want);
            print_ids("got ", got, n_got < 0 ? 0 : n_got);
        }
        text = sep + strlen(CASE_SEP);
        line = eol ? eol + 1 : line + strlen(line);
    }
    rc = 0;
done:
    free(want);
    free(got);
    free(inp);
    free(outs);
    return rc;
}
