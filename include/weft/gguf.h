/* gguf.h — reading and writing GGUF v2/v3 files.
 * The reader maps the file read-only and validates every offset, count and length before use;
 * a hostile or truncated file is refused with a precise message in weft_err, never a crash.
 * Metadata keys and string values are copied out as NUL-terminated strings at open time;
 * tensor data stays in the mapping (see gguf_tensor.data). */
#ifndef WEFT_GGUF_H
#define WEFT_GGUF_H

#include <stddef.h>
#include <stdint.h>
#include <stdbool.h>
#include "weft/error.h"

typedef enum gguf_type {
    GGUF_TYPE_UINT8 = 0,
    GGUF_TYPE_INT8 = 1,
    GGUF_TYPE_UINT16 = 2,
    GGUF_TYPE_INT16 = 3,
    GGUF_TYPE_UINT32 = 4,
    GGUF_TYPE_INT32 = 5,
    GGUF_TYPE_FLOAT32 = 6,
    GGUF_TYPE_BOOL = 7,
    GGUF_TYPE_STRING = 8,
    GGUF_TYPE_ARRAY = 9,
    GGUF_TYPE_UINT64 = 10,
    GGUF_TYPE_INT64 = 11,
    GGUF_TYPE_FLOAT64 = 12,
} gguf_type;

#define GGUF_MAX_DIMS 4

/* Explicit limits: anything larger is refused as corrupt. */
#define GGUF_MAX_STRING_BYTES (1u << 20)  /* one key or string value */
#define GGUF_MAX_KV 65536                 /* metadata entries */
#define GGUF_MAX_TENSORS 65536
#define GGUF_MAX_ARRAY_ELEMS (1u << 24)

typedef struct gguf_tensor {
    const char *name;
    uint32_t n_dims;
    uint64_t ne[GGUF_MAX_DIMS]; /* ne[0] is the fastest-varying (row length); unused dims = 1 */
    uint32_t type;              /* weft_dtype id (only supported types are accepted) */
    uint64_t offset;            /* relative to the start of the data section */
    uint64_t nbytes;
    const void *data;           /* inside the mapping, bounds-checked */
} gguf_tensor;

typedef struct gguf_file gguf_file;

/* Opens and validates a file (mmap'd). Returns NULL and fills err on failure. */
gguf_file *gguf_open(const char *path, weft_err *err);
/* Same over a caller-owned buffer (must outlive the gguf_file); used by fuzzers and tests. */
gguf_file *gguf_open_memory(const void *data, size_t size, weft_err *err);
void gguf_close(gguf_file *f);

uint32_t gguf_version(const gguf_file *f);
uint32_t gguf_alignment(const gguf_file *f);
size_t gguf_file_size(const gguf_file *f);
/* File offset where the tensor data section starts (tensor offsets are relative to it). */
uint64_t gguf_data_offset(const gguf_file *f);

/* ---- metadata ---- */
size_t gguf_kv_count(const gguf_file *f);
const char *gguf_kv_key(const gguf_file *f, size_t i);
gguf_type gguf_kv_type(const gguf_file *f, size_t i);
/* Index of key or -1. */
long gguf_find_key(const gguf_file *f, const char *key);

/* Typed getters: return false if the key is absent or its type cannot be represented
 * (integers of any width convert when in range; get_f32 accepts FLOAT32/FLOAT64). */
bool gguf_get_u32(const gguf_file *f, const char *key, uint32_t *out);
bool gguf_get_i64(const gguf_file *f, const char *key, int64_t *out);
bool gguf_get_f32(const gguf_file *f, const char *key, float *out);
bool gguf_get_bool(const gguf_file *f, const char *key, bool *out);
/* NUL-terminated string value (owned by f) or NULL. */
const char *gguf_get_str(const gguf_file *f, const char *key);

/* Arrays: element type and count; false if absent or not an array. */
bool gguf_get_arr_info(const gguf_file *f, const char *key, gguf_type *elem_type, uint64_t *n);
/* i-th string of a string array (owned by f), or NULL. */
const char *gguf_get_arr_str(const gguf_file *f, const char *key, uint64_t i);
/* Numeric array element converted to double; false when out of range / not numeric. */
bool gguf_get_arr_num(const gguf_file *f, const char *key, uint64_t i, double *out);

/* Generic value access by index, used by `weft model inspect` and by writers copying keys. */
bool gguf_kv_num(const gguf_file *f, size_t i, double *out);   /* scalar numeric/bool */
const char *gguf_kv_str(const gguf_file *f, size_t i);         /* scalar string */
bool gguf_kv_arr_info(const gguf_file *f, size_t i, gguf_type *elem_type, uint64_t *n);

/* ---- tensors ---- */
size_t gguf_tensor_count(const gguf_file *f);
const gguf_tensor *gguf_tensor_at(const gguf_file *f, size_t i);
const gguf_tensor *gguf_find_tensor(const gguf_file *f, const char *name);

/* ---- writer ----
 * Builds metadata and a tensor list in memory, then streams the file out. Tensor data is
 * produced at write time by a callback so multi-GiB synthetic models never sit in RAM twice. */
typedef struct gguf_writer gguf_writer;

/* Fills dst (nbytes of tensor data in the tensor's own type). Returns 0 or -1. */
typedef int (*gguf_fill_fn)(void *ctx, const char *name, void *dst, uint64_t nbytes);

gguf_writer *gguf_writer_new(void);
void gguf_writer_free(gguf_writer *w);
int gguf_writer_set_u32(gguf_writer *w, const char *key, uint32_t v);
int gguf_writer_set_i32(gguf_writer *w, const char *key, int32_t v);
int gguf_writer_set_f32(gguf_writer *w, const char *key, float v);
int gguf_writer_set_bool(gguf_writer *w, const char *key, bool v);
int gguf_writer_set_str(gguf_writer *w, const char *key, const char *v);
int gguf_writer_set_arr_str(gguf_writer *w, const char *key, const char *const *v, uint64_t n);
int gguf_writer_set_arr_f32(gguf_writer *w, const char *key, const float *v, uint64_t n);
int gguf_writer_set_arr_i32(gguf_writer *w, const char *key, const int32_t *v, uint64_t n);
/* Copies key i of src (any type, arrays included) into w under the same name. */
int gguf_writer_copy_kv(gguf_writer *w, const gguf_file *src, size_t i);
/* Adds a tensor; ne[0] is the row length. fill is called once during gguf_writer_write. */
int gguf_writer_add_tensor(gguf_writer *w, const char *name, uint32_t n_dims, const uint64_t *ne,
                           uint32_t type, gguf_fill_fn fill, void *fill_ctx);
int gguf_writer_write(gguf_writer *w, const char *path, weft_err *err);

#endif
