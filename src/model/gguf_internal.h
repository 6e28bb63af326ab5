/* gguf_internal.h — the in-memory form of GGUF metadata, shared by the reader (gguf_read.c)
 * and the writer (gguf_write.c) so a key read from one file can be copied into a new one with
 * its exact type and bits. Not a public header. */
#ifndef WEFT_GGUF_INTERNAL_H
#define WEFT_GGUF_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include "weft/gguf.h"

#define GGUF_MAGIC "GGUF"
#define GGUF_DEFAULT_ALIGNMENT 32u

/* One metadata entry. Scalars keep their raw little-endian bits in `raw`; a scalar string
 * lives in `str`; an array holds either `strs` (n NUL-terminated strings) or `data`
 * (n * gguf_type_size(arr_type) bytes, little-endian). All pointers are owned by the entry. */
typedef struct gguf_kv {
    char *key;
    gguf_type type;
    gguf_type arr_type;
    uint64_t n;
    uint64_t raw;
    char *str;
    char **strs;
    void *data;
} gguf_kv;

/* Bytes per element of a fixed-size type; 0 for STRING, ARRAY and unknown types. */
size_t gguf_type_size(gguf_type t);
const char *gguf_type_name(gguf_type t);
void gguf_kv_clear(gguf_kv *kv);
/* Deep copy of src into dst (dst's key is a fresh copy too). Returns 0 or -1 (out of memory). */
int gguf_kv_clone(gguf_kv *dst, const gguf_kv *src);
/* The entry at index i of an open file, or NULL when out of range. */
const gguf_kv *gguf_kv_at(const gguf_file *f, size_t i);

#endif
