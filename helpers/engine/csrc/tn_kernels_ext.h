/* tinyNAS extra int8 kernels (helpers/engine/kernels_ext.py): the float I/O wrapper,
 * lookup-table elementwise ops, PAD, CONCATENATION, MUL and constant stores.
 *
 * No floating point: float QUANTIZE compares order-preserving int32 keys of the float32
 * bit patterns with 255 thresholds computed at code generation (bit-exact with TFLM's
 * round(x / scale) + zp by construction), DEQUANTIZE and the int8 -> int8 elementwise
 * ops (requantising QUANTIZE, ...) read 256-entry tables computed by the Python kernels.
 */
#ifndef TN_KERNELS_EXT_H
#define TN_KERNELS_EXT_H
#include "tn_kernels.h"

typedef struct {
  int32_t id[4], od[4], pb[4];  /* input dims, output dims, padding before (4-D, left-padded) */
  int32_t value;                /* pad value (int8) */
} tn_pad_t;

typedef struct {
  int32_t d[4];                 /* output dims (4-D) */
  int32_t sa[4], sb[4];         /* element strides of a and b per output dim (0 = broadcast) */
  int32_t a_offset, b_offset, out_offset, mult, shift, act_min, act_max;
} tn_mul_t;

typedef struct {
  int32_t id[4];                /* input dims (4-D, left-padded) */
  int32_t start[4], step[4], len[4];  /* the strided window per dimension */
} tn_slice_t;

/* STRIDED_SLICE of an activation: out = in[start + step * i] over the 4-D window */
void tn_slice_s8(const tn_slice_t *p, const int8_t *in, int8_t *out);
/* out[i] = lut[in[i] + 128] */
void tn_lut_s8(int32_t n, const int8_t *lut, const int8_t *in, int8_t *out);
/* float32 (as raw bits) -> int8: -128 + #{j : thr[j] <= key(in[i])}, 255 thresholds */
void tn_quantize_f32_s8(int32_t n, const int32_t *thr, const int32_t *in, int8_t *out);
/* int8 -> float32 bit pattern: out[i] = table[in[i] + 128] */
void tn_dequantize_s8_f32(int32_t n, const int32_t *table, const int8_t *in, int32_t *out);
void tn_pad_s8(const tn_pad_t *p, const int8_t *in, int8_t *out);
/* concatenation: outer blocks, each input i contributes inner[i] bytes per block */
void tn_concat_s8(int32_t n_in, int32_t outer, const int8_t *const *ins, const int32_t *inner,
                  int8_t *out);
void tn_mul_s8(const tn_mul_t *p, const int8_t *a, const int8_t *b, int8_t *out);
/* store n bytes of a constant (folded SHAPE / STRIDED_SLICE / PACK values) */
void tn_store_const(int8_t *dst, const int8_t *src, int32_t n);

#endif
