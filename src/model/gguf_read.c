/* gguf_read.c — the reader half of include/weft/gguf.h. It owns everything a GGUF file turns
 * into once opened: the read-only mapping, the copied-out metadata and the tensor table.
 * Model files come from anywhere, so this is a parser for hostile input: every count, length
 * and offset is checked against explicit limits and the bytes that remain before it is used,
 * and each way a file can be wrong has its own message so a user can tell what broke. */
#include "model/gguf_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "weft/dtype.h"

/* Smallest encodings, used to refuse counts the remaining bytes could never hold before any
 * allocation is sized by them. */
#define GGUF_MIN_KV_BYTES 13u     /* key length + type + one-byte value */
#define GGUF_MIN_TENSOR_BYTES 32u /* name length + n_dims + one dim + type + offset */

/* Open-addressing index from name to entry, so duplicate checks and lookups stay O(1) even
 * with tens of thousands of entries (which a fuzzer will happily produce). */
typedef struct name_index {
    uint32_t *slots; /* entry index + 1; 0 = empty */
    size_t mask;
} name_index;

struct gguf_file {
    const uint8_t *base;
    size_t size;
    void *map; /* non-NULL when we own an mmap of `size` bytes */
    uint32_t version;
    uint32_t alignment;
    uint64_t data_offset;
    size_t n_kv;
    gguf_kv *kv;
    size_t n_tensors;
    gguf_tensor *tensors;
    name_index kv_index;
    name_index tensor_index;
};

/* ---- shared helpers (also used by the writer) ---- */

size_t gguf_type_size(gguf_type t) {
    switch (t) {
    case GGUF_TYPE_UINT8:
    case GGUF_TYPE_INT8:
    case GGUF_TYPE_BOOL:
        return 1;
    case GGUF_TYPE_UINT16:
    case GGUF_TYPE_INT16:
        return 2;
    case GGUF_TYPE_UINT32:
    case GGUF_TYPE_INT32:
    case GGUF_TYPE_FLOAT32:
        return 4;
    case GGUF_TYPE_UINT64:
    case GGUF_TYPE_INT64:
    case GGUF_TYPE_FLOAT64:
        return 8;
    default:
        return 0;
    }
}

const char *gguf_type_name(gguf_type t) {
    static const char *const names[] = {"UINT8",  "INT8",    "UINT16", "INT16",  "UINT32",
                                        "INT32",  "FLOAT32", "BOOL",   "STRING", "ARRAY",
                                        "UINT64", "INT64",   "FLOAT64"};
    return (unsigned)t < sizeof names / sizeof names[0] ? names[t] : "?";
}

void gguf_kv_clear(gguf_kv *kv) {
    free(kv->key);
    free(kv->str);
    free(kv->strs); /* strings share the pointer block's allocation */
    free(kv->data);
    memset(kv, 0, sizeof *kv);
}

/* Allocates n string pointers followed by `bytes` of character storage in one block. */
static char **strs_alloc(uint64_t n, uint64_t bytes) {
    if (n > SIZE_MAX / sizeof(char *) / 2 || bytes > SIZE_MAX / 2) return NULL;
    return malloc((size_t)n * sizeof(char *) + (size_t)bytes + 1);
}

int gguf_kv_clone(gguf_kv *dst, const gguf_kv *src) {
    memset(dst, 0, sizeof *dst);
    dst->type = src->type;
    dst->arr_type = src->arr_type;
    dst->n = src->n;
    dst->raw = src->raw;
    dst->key = strdup(src->key);
    if (!dst->key) goto oom;
    if (src->str && !(dst->str = strdup(src->str))) goto oom;
    if (src->strs) {
        uint64_t bytes = 0;
        for (uint64_t i = 0; i < src->n; i++)
            bytes += strlen(src->strs[i]) + 1;
        dst->strs = strs_alloc(src->n, bytes);
        if (!dst->strs) goto oom;
        char *p = (char *)(dst->strs + src->n);
        for (uint64_t i = 0; i < src->n; i++) {
            size_t len = strlen(src->strs[i]) + 1;
            memcpy(p, src->strs[i], len);
            dst->strs[i] = p;
            p += len;
        }
    }
    if (src->data) {
        size_t bytes = (size_t)src->n * gguf_type_size(src->arr_type);
        dst->data = malloc(bytes ? bytes : 1);
        if (!dst->data) goto oom;
        memcpy(dst->data, src->data, bytes);
    }
    return 0;
oom:
    gguf_kv_clear(dst);
    return -1;
}

/* ---- name index ---- */

static uint64_t name_hash(const char *s) {
    uint64_t h = 1469598103934665603ull; /* FNV-1a */
    for (; *s; s++)
        h = (h ^ (uint8_t)*s) * 1099511628211ull;
    return h;
}

static int index_init(name_index *ix, size_t n) {
    size_t cap = 16;
    while (cap < 2 * n)
        cap <<= 1;
    ix->slots = calloc(cap, sizeof *ix->slots);
    ix->mask = cap - 1;
    return ix->slots ? 0 : -1;
}

/* Index of the entry named `name` (names[i] gives entry i's name), or -1. With insert_idx >=
 * 0, records it when the name is absent. */
static long index_lookup(const name_index *ix, const char *name,
                         const char *(*name_of)(const void *, size_t), const void *ctx,
                         long insert_idx) {
    if (!ix->slots) return -1;
    for (size_t s = (size_t)name_hash(name) & ix->mask;; s = (s + 1) & ix->mask) {
        uint32_t v = ix->slots[s];
        if (v == 0) {
            if (insert_idx >= 0) ix->slots[s] = (uint32_t)insert_idx + 1;
            return -1;
        }
        if (strcmp(name_of(ctx, v - 1), name) == 0) return (long)(v - 1);
    }
}

static const char *kv_name_of(const void *ctx, size_t i) {
    return ((const gguf_file *)ctx)->kv[i].key;
}

static const char *tensor_name_of(const void *ctx, size_t i) {
    return ((const gguf_file *)ctx)->tensors[i].name;
}

/* ---- byte cursor ---- */

typedef struct reader {
    const uint8_t *p;
    size_t size;
    size_t pos;
    weft_err *err;
} reader;

static size_t rd_left(const reader *r) {
    return r->size - r->pos;
}

static int rd_need(reader *r, uint64_t n, const char *what) {
    if (n > rd_left(r))
        return weft_errf(r->err,
                         "gguf: truncated file: %s at offset %zu needs %" PRIu64
                         " bytes but only %zu remain",
                         what, r->pos, n, rd_left(r));
    return 0;
}

static int rd_u32(reader *r, uint32_t *v, const char *what) {
    if (rd_need(r, 4, what)) return -1;
    memcpy(v, r->p + r->pos, 4);
    r->pos += 4;
    return 0;
}

static int rd_u64(reader *r, uint64_t *v, const char *what) {
    if (rd_need(r, 8, what)) return -1;
    memcpy(v, r->p + r->pos, 8);
    r->pos += 8;
    return 0;
}

/* Reads a length-prefixed string's length and checks it fits. */
static int rd_str_len(reader *r, uint64_t *len, const char *what) {
    if (rd_u64(r, len, what)) return -1;
    if (*len > GGUF_MAX_STRING_BYTES)
        return weft_errf(r->err,
                         "gguf: %s: string length %" PRIu64 " exceeds the limit of %u bytes", what,
                         *len, GGUF_MAX_STRING_BYTES);
    if (*len > rd_left(r))
        return weft_errf(r->err,
                         "gguf: truncated file: %s: string of %" PRIu64
                         " bytes at offset %zu but only %zu remain",
                         what, *len, r->pos, rd_left(r));
    return 0;
}

/* Reads a string into a fresh NUL-terminated copy. Names (keys, tensor names) may not hold NUL
 * bytes: a name that silently truncates could alias another. */
static int rd_str(reader *r, char **out, bool is_name, const char *what) {
    uint64_t len;
    if (rd_str_len(r, &len, what)) return -1;
    const uint8_t *s = r->p + r->pos;
    if (is_name && memchr(s, 0, (size_t)len))
        return weft_errf(r->err, "gguf: %s contains a NUL byte", what);
    char *c = malloc((size_t)len + 1);
    if (!c) return weft_errf(r->err, "gguf: out of memory reading %s", what);
    memcpy(c, s, (size_t)len);
    c[len] = 0;
    r->pos += (size_t)len;
    *out = c;
    return 0;
}

/* ---- metadata ---- */

static int read_string_array(reader *r, gguf_kv *kv) {
    /* Pass 1: validate every length and total the bytes; pass 2: copy into one block. */
    size_t start = r->pos;
    uint64_t bytes = 0;
    for (uint64_t i = 0; i < kv->n; i++) {
        uint64_t len;
        char what[64];
        snprintf(what, sizeof what, "string #%" PRIu64 " of array", i);
        if (rd_str_len(r, &len, what)) {
            char inner[sizeof r->err->msg];
            snprintf(inner, sizeof inner, "%s", r->err ? r->err->msg : "");
            return weft_errf(r->err, "%s (key '%s')", inner, kv->key);
        }
        r->pos += (size_t)len;
        bytes += len + 1;
    }
    kv->strs = strs_alloc(kv->n, bytes);
    if (!kv->strs) return weft_errf(r->err, "gguf: out of memory for array '%s'", kv->key);
    char *p = (char *)(kv->strs + kv->n);
    r->pos = start;
    for (uint64_t i = 0; i < kv->n; i++) {
        uint64_t len;
        memcpy(&len, r->p + r->pos, 8);
        r->pos += 8;
        memcpy(p, r->p + r->pos, (size_t)len);
        p[len] = 0;
        kv->strs[i] = p;
        p += len + 1;
        r->pos += (size_t)len;
    }
    return 0;
}

static int read_array(reader *r, gguf_kv *kv) {
    uint32_t et;
    if (rd_u32(r, &et, "array element type")) return -1;
    if (et == GGUF_TYPE_ARRAY)
        return weft_errf(r->err, "gguf: key '%s' is an array of arrays (not supported)", kv->key);
    if (et > GGUF_TYPE_FLOAT64)
        return weft_errf(r->err, "gguf: key '%s' is an array of unknown element type %u", kv->key,
                         et);
    kv->arr_type = (gguf_type)et;
    if (rd_u64(r, &kv->n, "array length")) return -1;
    if (kv->n > GGUF_MAX_ARRAY_ELEMS)
        return weft_errf(r->err, "gguf: key '%s' array has %" PRIu64 " elements (limit %u)",
                         kv->key, kv->n, GGUF_MAX_ARRAY_ELEMS);
    /* n <= 2^24 and element sizes <= 8, so these products cannot overflow. */
    size_t esz = gguf_type_size(kv->arr_type);
    uint64_t min_bytes = kv->n * (esz ? esz : 8);
    if (min_bytes > rd_left(r))
        return weft_errf(r->err,
                         "gguf: key '%s' array of %" PRIu64 " %s needs at least %" PRIu64
                         " bytes but only %zu remain",
                         kv->key, kv->n, gguf_type_name(kv->arr_type), min_bytes, rd_left(r));
    if (kv->arr_type == GGUF_TYPE_STRING) return read_string_array(r, kv);
    kv->data = malloc(min_bytes ? (size_t)min_bytes : 1);
    if (!kv->data) return weft_errf(r->err, "gguf: out of memory for array '%s'", kv->key);
    memcpy(kv->data, r->p + r->pos, (size_t)min_bytes);
    if (kv->arr_type == GGUF_TYPE_BOOL) {
        for (uint64_t i = 0; i < kv->n; i++)
            if (((uint8_t *)kv->data)[i] > 1)
                return weft_errf(r->err,
                                 "gguf: key '%s' bool array element %" PRIu64
                                 " has value %u (must be 0 or 1)",
                                 kv->key, i, ((uint8_t *)kv->data)[i]);
    }
    r->pos += (size_t)min_bytes;
    return 0;
}

static int read_value(reader *r, gguf_kv *kv) {
    uint32_t t;
    if (rd_u32(r, &t, "value type")) return -1;
    if (t > GGUF_TYPE_FLOAT64)
        return weft_errf(r->err, "gguf: key '%s' has unknown value type %u", kv->key, t);
    kv->type = (gguf_type)t;
    if (kv->type == GGUF_TYPE_STRING) {
        char what[96];
        snprintf(what, sizeof what, "value of key '%.60s'", kv->key);
        return rd_str(r, &kv->str, false, what);
    }
    if (kv->type == GGUF_TYPE_ARRAY) return read_array(r, kv);
    size_t sz = gguf_type_size(kv->type);
    if (rd_need(r, sz, "scalar value")) return -1;
    memcpy(&kv->raw, r->p + r->pos, sz);
    r->pos += sz;
    if (kv->type == GGUF_TYPE_BOOL && kv->raw > 1)
        return weft_errf(r->err, "gguf: key '%s' bool has value %" PRIu64 " (must be 0 or 1)",
                         kv->key, kv->raw);
    return 0;
}

static int read_metadata(reader *r, gguf_file *f, uint64_t n_kv) {
    if (n_kv > GGUF_MAX_KV)
        return weft_errf(r->err, "gguf: metadata kv count %" PRIu64 " exceeds the limit of %u",
                         n_kv, GGUF_MAX_KV);
    if (n_kv * GGUF_MIN_KV_BYTES > rd_left(r))
        return weft_errf(r->err,
                         "gguf: truncated file: %" PRIu64 " metadata entries cannot fit in the %zu"
                         " bytes that remain",
                         n_kv, rd_left(r));
    f->kv = calloc(n_kv ? (size_t)n_kv : 1, sizeof *f->kv);
    if (!f->kv || index_init(&f->kv_index, (size_t)n_kv))
        return weft_errf(r->err, "gguf: out of memory for %" PRIu64 " metadata entries", n_kv);
    for (uint64_t i = 0; i < n_kv; i++) {
        gguf_kv *kv = &f->kv[i];
        f->n_kv = (size_t)i + 1; /* so gguf_close frees the partial entry */
        char what[48];
        snprintf(what, sizeof what, "key of metadata entry #%" PRIu64, i);
        if (rd_str(r, &kv->key, true, what)) return -1;
        if (index_lookup(&f->kv_index, kv->key, kv_name_of, f, -1) >= 0)
            return weft_errf(r->err, "gguf: duplicate key '%s'", kv->key);
        if (read_value(r, kv)) return -1;
        index_lookup(&f->kv_index, kv->key, kv_name_of, f, (long)i);
    }
    return 0;
}

static int read_alignment(gguf_file *f, weft_err *err) {
    f->alignment = GGUF_DEFAULT_ALIGNMENT;
    long i = gguf_find_key(f, "general.alignment");
    if (i < 0) return 0;
    const gguf_kv *kv = &f->kv[i];
    if (kv->type != GGUF_TYPE_UINT32)
        return weft_errf(err, "gguf: general.alignment has type %s (must be UINT32)",
                         gguf_type_name(kv->type));
    uint32_t a = (uint32_t)kv->raw;
    if (a == 0 || (a & (a - 1)) != 0)
        return weft_errf(err, "gguf: general.alignment %u is not a non-zero power of two", a);
    f->alignment = a;
    return 0;
}

/* ---- tensors ---- */

static int read_tensor_info(reader *r, gguf_file *f, size_t i) {
    gguf_tensor *t = &f->tensors[i];
    char what[48];
    snprintf(what, sizeof what, "name of tensor #%zu", i);
    char *name;
    if (rd_str(r, &name, true, what)) return -1;
    t->name = name;
    if (index_lookup(&f->tensor_index, name, tensor_name_of, f, -1) >= 0)
        return weft_errf(r->err, "gguf: duplicate tensor name '%s'", name);
    if (rd_u32(r, &t->n_dims, "tensor n_dims")) return -1;
    if (t->n_dims < 1 || t->n_dims > GGUF_MAX_DIMS)
        return weft_errf(r->err, "gguf: tensor '%s' has n_dims %u (must be 1..%d)", name, t->n_dims,
                         GGUF_MAX_DIMS);
    uint64_t nelem = 1;
    for (uint32_t d = 0; d < GGUF_MAX_DIMS; d++)
        t->ne[d] = 1;
    for (uint32_t d = 0; d < t->n_dims; d++) {
        if (rd_u64(r, &t->ne[d], "tensor dimension")) return -1;
        if (t->ne[d] == 0) return weft_errf(r->err, "gguf: tensor '%s' dimension %u is 0", name, d);
        if (t->ne[d] > (uint64_t)INT64_MAX / nelem)
            return weft_errf(
                r->err, "gguf: tensor '%s' element count overflows (dimension %u = %" PRIu64 ")",
                name, d, t->ne[d]);
        nelem *= t->ne[d];
    }
    if (rd_u32(r, &t->type, "tensor type")) return -1;
    if (!dtype_supported(t->type))
        return weft_errf(r->err, "gguf: tensor '%s' has unsupported type %u (%s)", name, t->type,
                         dtype_name(t->type));
    uint64_t blk = dtype_block_elems((weft_dtype)t->type);
    uint64_t blk_bytes = dtype_block_bytes((weft_dtype)t->type);
    if (t->ne[0] % blk != 0)
        return weft_errf(r->err,
                         "gguf: tensor '%s' row length %" PRIu64
                         " is not a multiple of the %s block size %" PRIu64,
                         name, t->ne[0], dtype_name(t->type), blk);
    uint64_t blocks = nelem / blk;
    if (blocks > UINT64_MAX / blk_bytes)
        return weft_errf(r->err, "gguf: tensor '%s' byte size overflows", name);
    t->nbytes = blocks * blk_bytes;
    if (rd_u64(r, &t->offset, "tensor offset")) return -1;
    index_lookup(&f->tensor_index, name, tensor_name_of, f, (long)i);
    return 0;
}

typedef struct span {
    uint64_t start, end;
    size_t idx;
} span;

static int span_cmp(const void *a, const void *b) {
    const span *x = a, *y = b;
    if (x->start != y->start) return x->start < y->start ? -1 : 1;
    return x->idx < y->idx ? -1 : (x->idx > y->idx);
}

/* Places every tensor inside the data section and refuses any two that share bytes. */
static int place_tensors(gguf_file *f, weft_err *err) {
    uint64_t size = f->size;
    if (f->n_tensors == 0) return 0;
    if (f->data_offset > size)
        return weft_errf(err,
                         "gguf: truncated file: data section at offset %" PRIu64
                         " starts past end of file (%zu bytes)",
                         f->data_offset, f->size);
    span *sp = malloc(f->n_tensors * sizeof *sp);
    if (!sp) return weft_errf(err, "gguf: out of memory placing tensors");
    int rc = 0;
    for (size_t i = 0; i < f->n_tensors && rc == 0; i++) {
        gguf_tensor *t = &f->tensors[i];
        if (t->offset % f->alignment != 0) {
            rc = weft_errf(
                err, "gguf: tensor '%s' offset %" PRIu64 " is not a multiple of the alignment %u",
                t->name, t->offset, f->alignment);
            break;
        }
        uint64_t room = size - f->data_offset;
        if (t->offset > room || t->nbytes > room - t->offset) {
            /* Saturate for the message: the true end may not fit in 64 bits. */
            uint64_t start =
                t->offset > UINT64_MAX - f->data_offset ? UINT64_MAX : f->data_offset + t->offset;
            uint64_t end = t->nbytes > UINT64_MAX - start ? UINT64_MAX : start + t->nbytes;
            rc = weft_errf(err,
                           "gguf: tensor '%s' data [%" PRIu64 ", %" PRIu64
                           ") extends past end of file (%zu bytes)",
                           t->name, start, end, f->size);
            break;
        }
        sp[i].start = f->data_offset + t->offset;
        sp[i].end = sp[i].start + t->nbytes;
        sp[i].idx = i;
        t->data = f->base + sp[i].start;
    }
    if (rc == 0) {
        qsort(sp, f->n_tensors, sizeof *sp, span_cmp);
        for (size_t i = 1; i < f->n_tensors; i++) {
            if (sp[i].start < sp[i - 1].end) {
                rc = weft_errf(err,
                               "gguf: tensors '%s' [%" PRIu64 ", %" PRIu64 ") and '%s' [%" PRIu64
                               ", %" PRIu64 ") overlap",
                               f->tensors[sp[i - 1].idx].name, sp[i - 1].start, sp[i - 1].end,
                               f->tensors[sp[i].idx].name, sp[i].start, sp[i].end);
                break;
            }
        }
    }
    free(sp);
    return rc;
}

static int read_tensors(reader *r, gguf_file *f, uint64_t n_tensors) {
    if (n_tensors * GGUF_MIN_TENSOR_BYTES > rd_left(r))
        return weft_errf(r->err,
                         "gguf: truncated file: %" PRIu64 " tensor infos cannot fit in the %zu"
                         " bytes that remain",
                         n_tensors, rd_left(r));
    f->tensors = calloc(n_tensors ? (size_t)n_tensors : 1, sizeof *f->tensors);
    if (!f->tensors || index_init(&f->tensor_index, (size_t)n_tensors))
        return weft_errf(r->err, "gguf: out of memory for %" PRIu64 " tensors", n_tensors);
    for (size_t i = 0; i < n_tensors; i++) {
        f->n_tensors = i + 1;
        if (read_tensor_info(r, f, i)) return -1;
    }
    uint64_t a = f->alignment;
    f->data_offset = ((uint64_t)r->pos + a - 1) / a * a;
    return 0;
}

/* ---- open / close ---- */

static int parse(gguf_file *f, weft_err *err) {
    reader r = {.p = f->base, .size = f->size, .pos = 0, .err = err};
    if (f->size < 4)
        return weft_errf(err, "gguf: not a GGUF file (only %zu bytes, too small for the magic)",
                         f->size);
    if (memcmp(f->base, GGUF_MAGIC, 4) != 0)
        return weft_errf(err, "gguf: not a GGUF file (bad magic %02x %02x %02x %02x)", f->base[0],
                         f->base[1], f->base[2], f->base[3]);
    r.pos = 4;
    if (rd_u32(&r, &f->version, "version")) return -1;
    if (f->version == 1)
        return weft_errf(err, "gguf: GGUF version 1 is not supported (only versions 2 and 3)");
    if (f->version == 0x02000000u || f->version == 0x03000000u)
        return weft_errf(err, "gguf: big-endian GGUF files are not supported");
    if (f->version != 2 && f->version != 3)
        return weft_errf(err, "gguf: unsupported GGUF version %u (only versions 2 and 3)",
                         f->version);
    uint64_t n_tensors, n_kv;
    if (rd_u64(&r, &n_tensors, "tensor count")) return -1;
    if (rd_u64(&r, &n_kv, "metadata kv count")) return -1;
    if (n_tensors > GGUF_MAX_TENSORS)
        return weft_errf(err, "gguf: tensor count %" PRIu64 " exceeds the limit of %u", n_tensors,
                         GGUF_MAX_TENSORS);
    if (read_metadata(&r, f, n_kv)) return -1;
    if (read_alignment(f, err)) return -1;
    if (read_tensors(&r, f, n_tensors)) return -1;
    return place_tensors(f, err);
}

static gguf_file *open_over(const uint8_t *base, size_t size, void *map, weft_err *err) {
    gguf_file *f = calloc(1, sizeof *f);
    if (!f) {
        if (map) munmap(map, size);
        weft_errf(err, "gguf: out of memory");
        return NULL;
    }
    f->base = base;
    f->size = size;
    f->map = map;
    if (parse(f, err)) {
        gguf_close(f);
        return NULL;
    }
    return f;
}

gguf_file *gguf_open_memory(const void *data, size_t size, weft_err *err) {
    if (!data && size) {
        weft_errf(err, "gguf: NULL buffer");
        return NULL;
    }
    static const uint8_t empty[1];
    return open_over(data ? data : empty, size, NULL, err);
}

gguf_file *gguf_open(const char *path, weft_err *err) {
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        weft_errf(err, "gguf: cannot open '%s': %s", path, strerror(errno));
        return NULL;
    }
    struct stat st;
    if (fstat(fd, &st) != 0) {
        weft_errf(err, "gguf: cannot stat '%s': %s", path, strerror(errno));
        close(fd);
        return NULL;
    }
    if (!S_ISREG(st.st_mode)) {
        weft_errf(err, "gguf: '%s' is not a regular file", path);
        close(fd);
        return NULL;
    }
    if (st.st_size < 4) {
        weft_errf(err, "gguf: '%s' is not a GGUF file (only %lld bytes)", path,
                  (long long)st.st_size);
        close(fd);
        return NULL;
    }
    size_t size = (size_t)st.st_size;
    void *map = mmap(NULL, size, PROT_READ, MAP_PRIVATE, fd, 0);
    int saved = errno;
    close(fd);
    if (map == MAP_FAILED) {
        weft_errf(err, "gguf: cannot map '%s': %s", path, strerror(saved));
        return NULL;
    }
    return open_over(map, size, map, err);
}

void gguf_close(gguf_file *f) {
    if (!f) return;
    for (size_t i = 0; i < f->n_kv; i++)
        gguf_kv_clear(&f->kv[i]);
    free(f->kv);
    for (size_t i = 0; i < f->n_tensors; i++)
        free((char *)f->tensors[i].name);
    free(f->tensors);
    free(f->kv_index.slots);
    free(f->tensor_index.slots);
    if (f->map) munmap(f->map, f->size);
    free(f);
}

/* ---- accessors ---- */

uint32_t gguf_version(const gguf_file *f) {
    return f->version;
}
uint32_t gguf_alignment(const gguf_file *f) {
    return f->alignment;
}
size_t gguf_file_size(const gguf_file *f) {
    return f->size;
}
uint64_t gguf_data_offset(const gguf_file *f) {
    return f->data_offset;
}
size_t gguf_kv_count(const gguf_file *f) {
    return f->n_kv;
}

const gguf_kv *gguf_kv_at(const gguf_file *f, size_t i) {
    return i < f->n_kv ? &f->kv[i] : NULL;
}

const char *gguf_kv_key(const gguf_file *f, size_t i) {
    return i < f->n_kv ? f->kv[i].key : NULL;
}

gguf_type gguf_kv_type(const gguf_file *f, size_t i) {
    return i < f->n_kv ? f->kv[i].type : (gguf_type)-1;
}

long gguf_find_key(const gguf_file *f, const char *key) {
    if (!key) return -1;
    return index_lookup(&f->kv_index, key, kv_name_of, f, -1);
}

static const gguf_kv *kv_by_key(const gguf_file *f, const char *key) {
    long i = gguf_find_key(f, key);
    return i < 0 ? NULL : &f->kv[i];
}

/* Value of a fixed-size element of type t at p, widened. Integers go through int64/uint64 so
 * range checks stay exact; returns the kind so callers can decide what is representable. */
typedef enum num_kind { NUM_NONE, NUM_SIGNED, NUM_UNSIGNED, NUM_FLOAT } num_kind;
typedef struct num {
    num_kind kind;
    int64_t i;
    uint64_t u;
    double d;
} num;

static num decode_num(gguf_type t, const void *p) {
    num n = {.kind = NUM_NONE};
    uint64_t u = 0;
    size_t sz = gguf_type_size(t);
    if (sz) memcpy(&u, p, sz);
    switch (t) {
    case GGUF_TYPE_UINT8:
    case GGUF_TYPE_UINT16:
    case GGUF_TYPE_UINT32:
    case GGUF_TYPE_UINT64:
    case GGUF_TYPE_BOOL:
        n.kind = NUM_UNSIGNED;
        n.u = u;
        n.d = (double)u;
        break;
    case GGUF_TYPE_INT8:
        n.kind = NUM_SIGNED;
        n.i = (int8_t)u;
        break;
    case GGUF_TYPE_INT16:
        n.kind = NUM_SIGNED;
        n.i = (int16_t)u;
        break;
    case GGUF_TYPE_INT32:
        n.kind = NUM_SIGNED;
        n.i = (int32_t)u;
        break;
    case GGUF_TYPE_INT64:
        n.kind = NUM_SIGNED;
        memcpy(&n.i, &u, 8);
        break;
    case GGUF_TYPE_FLOAT32: {
        float v;
        memcpy(&v, p, 4);
        n.kind = NUM_FLOAT;
        n.d = v;
        break;
    }
    case GGUF_TYPE_FLOAT64:
        n.kind = NUM_FLOAT;
        memcpy(&n.d, p, 8);
        break;
    default:
        break;
    }
    if (n.kind == NUM_SIGNED) n.d = (double)n.i;
    return n;
}

static bool is_int_type(gguf_type t) {
    return t != GGUF_TYPE_BOOL && t != GGUF_TYPE_FLOAT32 && t != GGUF_TYPE_FLOAT64 &&
           gguf_type_size(t) != 0;
}

bool gguf_get_u32(const gguf_file *f, const char *key, uint32_t *out) {
    const gguf_kv *kv = kv_by_key(f, key);
    if (!kv || !is_int_type(kv->type)) return false;
    num n = decode_num(kv->type, &kv->raw);
    if (n.kind == NUM_SIGNED) {
        if (n.i < 0 || n.i > (int64_t)UINT32_MAX) return false;
        *out = (uint32_t)n.i;
    } else {
        if (n.u > UINT32_MAX) return false;
        *out = (uint32_t)n.u;
    }
    return true;
}

bool gguf_get_i64(const gguf_file *f, const char *key, int64_t *out) {
    const gguf_kv *kv = kv_by_key(f, key);
    if (!kv || !is_int_type(kv->type)) return false;
    num n = decode_num(kv->type, &kv->raw);
    if (n.kind == NUM_SIGNED) {
        *out = n.i;
    } else {
        if (n.u > (uint64_t)INT64_MAX) return false;
        *out = (int64_t)n.u;
    }
    return true;
}

bool gguf_get_f32(const gguf_file *f, const char *key, float *out) {
    const gguf_kv *kv = kv_by_key(f, key);
    if (!kv || (kv->type != GGUF_TYPE_FLOAT32 && kv->type != GGUF_TYPE_FLOAT64)) return false;
    *out = (float)decode_num(kv->type, &kv->raw).d;
    return true;
}

bool gguf_get_bool(const gguf_file *f, const char *key, bool *out) {
    const gguf_kv *kv = kv_by_key(f, key);
    if (!kv || kv->type != GGUF_TYPE_BOOL) return false;
    *out = kv->raw != 0;
    return true;
}

const char *gguf_get_str(const gguf_file *f, const char *key) {
    const gguf_kv *kv = kv_by_key(f, key);
    return kv && kv->type == GGUF_TYPE_STRING ? kv->str : NULL;
}

bool gguf_get_arr_info(const gguf_file *f, const char *key, gguf_type *elem_type, uint64_t *n) {
    long i = gguf_find_key(f, key);
    return i >= 0 && gguf_kv_arr_info(f, (size_t)i, elem_type, n);
}

const char *gguf_get_arr_str(const gguf_file *f, const char *key, uint64_t i) {
    const gguf_kv *kv = kv_by_key(f, key);
    if (!kv || kv->type != GGUF_TYPE_ARRAY || kv->arr_type != GGUF_TYPE_STRING || i >= kv->n)
        return NULL;
    return kv->strs[i];
}

bool gguf_get_arr_num(const gguf_file *f, const char *key, uint64_t i, double *out) {
    const gguf_kv *kv = kv_by_key(f, key);
    if (!kv || kv->type != GGUF_TYPE_ARRAY || !kv->data || i >= kv->n) return false;
    size_t esz = gguf_type_size(kv->arr_type);
    *out = decode_num(kv->arr_type, (const uint8_t *)kv->data + i * esz).d;
    return true;
}

bool gguf_kv_num(const gguf_file *f, size_t i, double *out) {
    if (i >= f->n_kv || gguf_type_size(f->kv[i].type) == 0) return false;
    *out = decode_num(f->kv[i].type, &f->kv[i].raw).d;
    return true;
}

const char *gguf_kv_str(const gguf_file *f, size_t i) {
    return i < f->n_kv && f->kv[i].type == GGUF_TYPE_STRING ? f->kv[i].str : NULL;
}

bool gguf_kv_arr_info(const gguf_file *f, size_t i, gguf_type *elem_type, uint64_t *n) {
    if (i >= f->n_kv || f->kv[i].type != GGUF_TYPE_ARRAY) return false;
    if (elem_type) *elem_type = f->kv[i].arr_type;
    if (n) *n = f->kv[i].n;
    return true;
}

size_t gguf_tensor_count(const gguf_file *f) {
    return f->n_tensors;
}

const gguf_tensor *gguf_tensor_at(const gguf_file *f, size_t i) {
    return i < f->n_tensors ? &f->tensors[i] : NULL;
}

const gguf_tensor *gguf_find_tensor(const gguf_file *f, const char *name) {
    if (!name) return NULL;
    long i = index_lookup(&f->tensor_index, name, tensor_name_of, f, -1);
    return i < 0 ? NULL : &f->tensors[i];
}
