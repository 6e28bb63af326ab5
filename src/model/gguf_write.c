/* gguf_write.c — the writer half of include/weft/gguf.h: collects metadata and a tensor list
 * in memory, then streams a GGUF v3 file out in one pass. Tensor bytes are produced by each
 * tensor's fill callback at write time, one tensor at a time, so a multi-GiB synthetic model
 * needs only its largest tensor in RAM. The file is written under a temporary name and renamed
 * into place, so a failed write never leaves a half-file that looks like a model. */
#include "model/gguf_internal.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "weft/dtype.h"

typedef struct wtensor {
    char *name;
    uint32_t n_dims;
    uint64_t ne[GGUF_MAX_DIMS];
    uint32_t type;
    uint64_t nbytes;
    uint64_t offset;
    gguf_fill_fn fill;
    void *fill_ctx;
} wtensor;

struct gguf_writer {
    gguf_kv *kv;
    size_t n_kv, cap_kv;
    wtensor *tensors;
    size_t n_tensors, cap_tensors;
    /* First failure of a set/add call; gguf_writer_write reports it, so callers may build a
     * whole file and check once. */
    bool failed;
    weft_err first_err;
};

gguf_writer *gguf_writer_new(void) {
    return calloc(1, sizeof(gguf_writer));
}

void gguf_writer_free(gguf_writer *w) {
    if (!w) return;
    for (size_t i = 0; i < w->n_kv; i++)
        gguf_kv_clear(&w->kv[i]);
    free(w->kv);
    for (size_t i = 0; i < w->n_tensors; i++)
        free(w->tensors[i].name);
    free(w->tensors);
    free(w);
}

static int fail(gguf_writer *w, const char *fmt, const char *what) {
    if (!w->failed) {
        w->failed = true;
        weft_errf(&w->first_err, fmt, what);
    }
    return -1;
}

/* ---- metadata ---- */

/* Takes ownership of kv's contents: replaces an entry with the same key or appends. */
static int put_kv(gguf_writer *w, gguf_kv *kv) {
    for (size_t i = 0; i < w->n_kv; i++) {
        if (strcmp(w->kv[i].key, kv->key) == 0) {
            gguf_kv_clear(&w->kv[i]);
            w->kv[i] = *kv;
            return 0;
        }
    }
    if (w->n_kv >= GGUF_MAX_KV) {
        int rc = fail(w, "gguf writer: too many metadata keys (at '%s')", kv->key);
        gguf_kv_clear(kv);
        return rc;
    }
    if (w->n_kv == w->cap_kv) {
        size_t cap = w->cap_kv ? w->cap_kv * 2 : 32;
        gguf_kv *n = realloc(w->kv, cap * sizeof *n);
        if (!n) {
            int rc = fail(w, "gguf writer: out of memory adding key '%s'", kv->key);
            gguf_kv_clear(kv);
            return rc;
        }
        w->kv = n;
        w->cap_kv = cap;
    }
    w->kv[w->n_kv++] = *kv;
    return 0;
}

static int set_scalar(gguf_writer *w, const char *key, gguf_type t, const void *v) {
    if (!w) return -1;
    if (!key || strlen(key) > GGUF_MAX_STRING_BYTES)
        return fail(w, "gguf writer: invalid key%s", "");
    gguf_kv kv = {.type = t};
    memcpy(&kv.raw, v, gguf_type_size(t));
    if (!(kv.key = strdup(key))) return fail(w, "gguf writer: out of memory adding key '%s'", key);
    return put_kv(w, &kv);
}

int gguf_writer_set_u32(gguf_writer *w, const char *key, uint32_t v) {
    return set_scalar(w, key, GGUF_TYPE_UINT32, &v);
}
int gguf_writer_set_i32(gguf_writer *w, const char *key, int32_t v) {
    return set_scalar(w, key, GGUF_TYPE_INT32, &v);
}
int gguf_writer_set_f32(gguf_writer *w, const char *key, float v) {
    return set_scalar(w, key, GGUF_TYPE_FLOAT32, &v);
}
int gguf_writer_set_bool(gguf_writer *w, const char *key, bool v) {
    uint8_t b = v ? 1 : 0;
    return set_scalar(w, key, GGUF_TYPE_BOOL, &b);
}

int gguf_writer_set_str(gguf_writer *w, const char *key, const char *v) {
    if (!w) return -1;
    if (!key || !v || strlen(key) > GGUF_MAX_STRING_BYTES || strlen(v) > GGUF_MAX_STRING_BYTES)
        return fail(w, "gguf writer: invalid string key or value (%s)", key ? key : "NULL");
    gguf_kv kv = {.type = GGUF_TYPE_STRING};
    kv.key = strdup(key);
    kv.str = strdup(v);
    if (!kv.key || !kv.str) {
        gguf_kv_clear(&kv);
        return fail(w, "gguf writer: out of memory adding key '%s'", key);
    }
    return put_kv(w, &kv);
}

static int set_arr(gguf_writer *w, const char *key, gguf_type et, const void *v, uint64_t n) {
    if (!w) return -1;
    if (!key || strlen(key) > GGUF_MAX_STRING_BYTES || n > GGUF_MAX_ARRAY_ELEMS || (n && !v))
        return fail(w, "gguf writer: invalid array '%s'", key ? key : "NULL");
    gguf_kv src = {.type = GGUF_TYPE_ARRAY, .arr_type = et, .n = n, .key = (char *)key};
    if (et == GGUF_TYPE_STRING) {
        const char *const *s = v;
        for (uint64_t i = 0; i < n; i++)
            if (!s[i] || strlen(s[i]) > GGUF_MAX_STRING_BYTES)
                return fail(w, "gguf writer: invalid string in array '%s'", key);
        src.strs = (char **)v; /* only read by the clone */
    } else {
        src.data = (void *)v;
    }
    gguf_kv kv;
    if (gguf_kv_clone(&kv, &src)) return fail(w, "gguf writer: out of memory adding '%s'", key);
    return put_kv(w, &kv);
}

int gguf_writer_set_arr_str(gguf_writer *w, const char *key, const char *const *v, uint64_t n) {
    return set_arr(w, key, GGUF_TYPE_STRING, v, n);
}
int gguf_writer_set_arr_f32(gguf_writer *w, const char *key, const float *v, uint64_t n) {
    return set_arr(w, key, GGUF_TYPE_FLOAT32, v, n);
}
int gguf_writer_set_arr_i32(gguf_writer *w, const char *key, const int32_t *v, uint64_t n) {
    return set_arr(w, key, GGUF_TYPE_INT32, v, n);
}

int gguf_writer_copy_kv(gguf_writer *w, const gguf_file *src, size_t i) {
    if (!w) return -1;
    const gguf_kv *s = src ? gguf_kv_at(src, i) : NULL;
    if (!s) return fail(w, "gguf writer: copy of a missing key%s", "");
    gguf_kv kv;
    if (gguf_kv_clone(&kv, s)) return fail(w, "gguf writer: out of memory copying '%s'", s->key);
    return put_kv(w, &kv);
}

/* ---- tensors ---- */

int gguf_writer_add_tensor(gguf_writer *w, const char *name, uint32_t n_dims, const uint64_t *ne,
                           uint32_t type, gguf_fill_fn fill, void *fill_ctx) {
    if (!w) return -1;
    if (!name || strlen(name) > GGUF_MAX_STRING_BYTES || !ne || !fill)
        return fail(w, "gguf writer: invalid tensor '%s'", name ? name : "NULL");
    if (n_dims < 1 || n_dims > GGUF_MAX_DIMS)
        return fail(w, "gguf writer: tensor '%s' needs 1..4 dimensions", name);
    if (!dtype_supported(type))
        return fail(w, "gguf writer: tensor '%s' has unsupported type", name);
    for (size_t i = 0; i < w->n_tensors; i++)
        if (strcmp(w->tensors[i].name, name) == 0)
            return fail(w, "gguf writer: duplicate tensor '%s'", name);
    if (w->n_tensors >= GGUF_MAX_TENSORS)
        return fail(w, "gguf writer: too many tensors (at '%s')", name);
    wtensor t = {.n_dims = n_dims, .type = type, .fill = fill, .fill_ctx = fill_ctx};
    uint64_t nelem = 1;
    for (uint32_t d = 0; d < GGUF_MAX_DIMS; d++)
        t.ne[d] = 1;
    for (uint32_t d = 0; d < n_dims; d++) {
        if (ne[d] == 0 || ne[d] > (uint64_t)INT64_MAX / nelem)
            return fail(w, "gguf writer: tensor '%s' has a zero or overflowing dimension", name);
        t.ne[d] = ne[d];
        nelem *= ne[d];
    }
    uint64_t blk = dtype_block_elems((weft_dtype)type);
    if (t.ne[0] % blk != 0)
        return fail(w, "gguf writer: tensor '%s' row length is not a multiple of its block size",
                    name);
    uint64_t blocks = nelem / blk, bb = dtype_block_bytes((weft_dtype)type);
    if (blocks > (uint64_t)SIZE_MAX / bb)
        return fail(w, "gguf writer: tensor '%s' is too large", name);
    t.nbytes = blocks * bb;
    if (w->n_tensors == w->cap_tensors) {
        size_t cap = w->cap_tensors ? w->cap_tensors * 2 : 64;
        wtensor *n = realloc(w->tensors, cap * sizeof *n);
        if (!n) return fail(w, "gguf writer: out of memory adding tensor '%s'", name);
        w->tensors = n;
        w->cap_tensors = cap;
    }
    if (!(t.name = strdup(name)))
        return fail(w, "gguf writer: out of memory adding tensor '%s'", name);
    w->tensors[w->n_tensors++] = t;
    return 0;
}

/* ---- output ---- */

typedef struct sink {
    FILE *fp;
    uint64_t pos;
    int failed_errno; /* 0 while all writes succeed */
} sink;

static void put(sink *s, const void *p, size_t n) {
    if (s->failed_errno || n == 0) return;
    if (fwrite(p, 1, n, s->fp) != n) s->failed_errno = errno ? errno : EIO;
    s->pos += n;
}

static void put_u32(sink *s, uint32_t v) {
    put(s, &v, 4);
}
static void put_u64(sink *s, uint64_t v) {
    put(s, &v, 8);
}

static void put_str(sink *s, const char *str) {
    uint64_t n = strlen(str);
    put_u64(s, n);
    put(s, str, (size_t)n);
}

static void put_pad(sink *s, uint32_t align) {
    static const uint8_t zeros[256];
    uint64_t pad = (align - s->pos % align) % align;
    while (pad > 0) {
        size_t k = pad < sizeof zeros ? (size_t)pad : sizeof zeros;
        put(s, zeros, k);
        pad -= k;
    }
}

static void put_kv_entry(sink *s, const gguf_kv *kv) {
    put_str(s, kv->key);
    put_u32(s, (uint32_t)kv->type);
    if (kv->type == GGUF_TYPE_STRING) {
        put_str(s, kv->str);
    } else if (kv->type == GGUF_TYPE_ARRAY) {
        put_u32(s, (uint32_t)kv->arr_type);
        put_u64(s, kv->n);
        if (kv->arr_type == GGUF_TYPE_STRING) {
            for (uint64_t i = 0; i < kv->n; i++)
                put_str(s, kv->strs[i]);
        } else {
            put(s, kv->data, (size_t)kv->n * gguf_type_size(kv->arr_type));
        }
    } else {
        put(s, &kv->raw, gguf_type_size(kv->type));
    }
}

static int writer_alignment(const gguf_writer *w, uint32_t *align, weft_err *err) {
    *align = GGUF_DEFAULT_ALIGNMENT;
    for (size_t i = 0; i < w->n_kv; i++) {
        if (strcmp(w->kv[i].key, "general.alignment") != 0) continue;
        uint32_t a = (uint32_t)w->kv[i].raw;
        if (w->kv[i].type != GGUF_TYPE_UINT32 || a == 0 || (a & (a - 1)) != 0)
            return weft_errf(err, "gguf writer: general.alignment must be a UINT32 power of two");
        *align = a;
    }
    return 0;
}

static int write_body(gguf_writer *w, sink *s, uint32_t align, weft_err *err) {
    uint64_t off = 0, max_bytes = 0;
    for (size_t i = 0; i < w->n_tensors; i++) {
        wtensor *t = &w->tensors[i];
        t->offset = off;
        off = (off + t->nbytes + align - 1) / align * align;
        if (t->nbytes > max_bytes) max_bytes = t->nbytes;
    }
    put(s, GGUF_MAGIC, 4);
    put_u32(s, 3);
    put_u64(s, w->n_tensors);
    put_u64(s, w->n_kv);
    for (size_t i = 0; i < w->n_kv; i++)
        put_kv_entry(s, &w->kv[i]);
    for (size_t i = 0; i < w->n_tensors; i++) {
        const wtensor *t = &w->tensors[i];
        put_str(s, t->name);
        put_u32(s, t->n_dims);
        for (uint32_t d = 0; d < t->n_dims; d++)
            put_u64(s, t->ne[d]);
        put_u32(s, t->type);
        put_u64(s, t->offset);
    }
    put_pad(s, align);
    if (w->n_tensors == 0) return 0;
    uint8_t *buf = malloc((size_t)max_bytes);
    if (!buf)
        return weft_errf(err, "gguf writer: out of memory for a %" PRIu64 "-byte tensor",
                         max_bytes);
    int rc = 0;
    for (size_t i = 0; i < w->n_tensors && !s->failed_errno; i++) {
        const wtensor *t = &w->tensors[i];
        memset(buf, 0, (size_t)t->nbytes);
        if (t->fill(t->fill_ctx, t->name, buf, t->nbytes) != 0) {
            rc = weft_errf(err, "gguf writer: producing data for tensor '%s' failed", t->name);
            break;
        }
        put(s, buf, (size_t)t->nbytes);
        put_pad(s, align);
    }
    free(buf);
    return rc;
}

int gguf_writer_write(gguf_writer *w, const char *path, weft_err *err) {
    if (!w || !path) return weft_errf(err, "gguf writer: no writer or path");
    if (w->failed) {
        if (err) *err = w->first_err;
        return -1;
    }
    uint32_t align;
    if (writer_alignment(w, &align, err)) return -1;
    size_t plen = strlen(path);
    char *tmp = malloc(plen + 8);
    if (!tmp) return weft_errf(err, "gguf writer: out of memory");
    snprintf(tmp, plen + 8, "%s.tmp", path);
    sink s = {.fp = fopen(tmp, "wb")};
    if (!s.fp) {
        int rc = weft_errf(err, "gguf writer: cannot create '%s': %s", tmp, strerror(errno));
        free(tmp);
        return rc;
    }
    int rc = write_body(w, &s, align, err);
    if (fclose(s.fp) != 0 && !s.failed_errno) s.failed_errno = errno ? errno : EIO;
    if (rc == 0 && s.failed_errno)
        rc = weft_errf(err, "gguf writer: writing '%s' failed: %s", tmp, strerror(s.failed_errno));
    if (rc == 0 && rename(tmp, path) != 0)
        rc = weft_errf(err, "gguf writer: cannot rename '%s' to '%s': %s", tmp, path,
                       strerror(errno));
    if (rc != 0) unlink(tmp);
    free(tmp);
    return rc;
}
