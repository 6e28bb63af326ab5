/* testutil.c — see testutil.h. */
#include "support/testutil.h"

#include "weft/error.h"
#include "weft/synth.h"

#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

const char *tu_shared(const char *rel, char *buf, size_t size) {
    snprintf(buf, size, "%s/%s", WEFT_SHARED_DIR, rel);
    if (access(buf, R_OK) != 0) {
        fprintf(stdout, "SKIP (loud): %s not found — ../shared is absent, test skipped\n", buf);
        fflush(stdout);
        return NULL;
    }
    return buf;
}

const char *tu_scratch(const char *name, char *buf, size_t size) {
    snprintf(buf, size, "%s/scratch-%s", WEFT_BUILD_DIR, name);
    return buf;
}

char *tu_read_file(const char *path, size_t *size) {
    FILE *fp = fopen(path, "rb");
    if (!fp) return NULL;
    if (fseek(fp, 0, SEEK_END) != 0) { fclose(fp); return NULL; }
    long n = ftell(fp);
    if (n < 0 || fseek(fp, 0, SEEK_SET) != 0) { fclose(fp); return NULL; }
    char *b = malloc((size_t)n + 1);
    if (!b) { fclose(fp); return NULL; }
    if (fread(b, 1, (size_t)n, fp) != (size_t)n) { free(b); fclose(fp); return NULL; }
    fclose(fp);
    b[n] = 0;
    if (size) *size = (size_t)n;
    return b;
}

weft_model *tu_synth_model(const char *name, const char *preset, weft_dtype type, uint64_t seed) {
    char path[4096];
    tu_scratch(name, path, sizeof path);
    synth_options o;
    synth_options_init(&o);
    o.preset = preset;
    o.type = type;
    o.seed = seed;
    weft_err err = {{0}};
    if (synth_write(&o, path, NULL, &err) != 0) {
        fprintf(stderr, "synth %s: %s\n", name, err.msg);
        return NULL;
    }
    weft_model *m = model_load(path, NULL, &err);
    if (!m) fprintf(stderr, "load %s: %s\n", name, err.msg);
    return m;
}
