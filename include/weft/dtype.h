/* dtype.h — element types of weight tensors, numbered as GGUF (ggml) numbers them, and the
 * scalar conversions between them. Quantized types are stored in blocks along a row. */
#ifndef WEFT_DTYPE_H
#define WEFT_DTYPE_H

#include <stddef.h>
#include <stdint.h>
#include <stdbool.h>

typedef enum weft_dtype {
    WEFT_F32 = 0,
    WEFT_F16 = 1,
    WEFT_Q4_0 = 2,
    WEFT_Q8_0 = 8,
    WEFT_BF16 = 30,
} weft_dtype;

#define WEFT_QK 32 /* elements per Q8_0 / Q4_0 block */

/* Q8_0: 32 int8 values sharing one fp16 scale; value = d * qs[i]. 34 bytes. */
typedef struct {
    uint16_t d;
    int8_t qs[WEFT_QK];
} block_q8_0;

/* Q4_0: 32 4-bit values sharing one fp16 scale. Byte j holds element j in its low nibble and
 * element j+16 in its high nibble; value = d * (nibble - 8). 18 bytes. */
typedef struct {
    uint16_t d;
    uint8_t qs[WEFT_QK / 2];
} block_q4_0;

/* True for the types weft can load and compute with. */
bool dtype_supported(uint32_t type);
/* "F32", "Q8_0", ... or "?" for an unknown id. */
const char *dtype_name(uint32_t type);
/* Parses "f32", "f16", "bf16", "q8_0", "q4_0" (any case); 0, or -1 for anything else. */
int dtype_from_name(const char *s, weft_dtype *out);
/* Elements per block (1 for F32/F16/BF16, 32 for Q8_0/Q4_0); 0 if unsupported. */
size_t dtype_block_elems(weft_dtype t);
/* Bytes per block; 0 if unsupported. */
size_t dtype_block_bytes(weft_dtype t);
/* Bytes taken by a row of n elements (n must be a multiple of the block size);
 * returns 0 when n is not a multiple or the type is unsupported. */
size_t dtype_row_bytes(weft_dtype t, size_t n);

float fp16_to_f32(uint16_t h);
uint16_t f32_to_fp16(float f); /* round to nearest even */
float bf16_to_f32(uint16_t h);
uint16_t f32_to_bf16(float f); /* round to nearest even */

/* Converts n elements (n a multiple of the block size) between F32 and type t. */
void dtype_quantize_row(weft_dtype t, const float *src, void *dst, size_t n);
void dtype_dequantize_row(weft_dtype t, const void *src, float *dst, size_t n);

#endif
