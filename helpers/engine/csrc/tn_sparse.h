/* tinyNAS sparse int8 kernels: weights stored row-compressed (tn_sparse_t, tn_*_sparse_s8) or
 * as bitmasks (tn_bitmask_t, tn_*_bitmask_s8); formats in helpers/engine/sparse_weights.py.
 *
 * Row-compressed: each output channel (row) has cnt[row] entries; entry j holds a weight val[j] (int8) and
 * gap[j] (uint8), the distance in taps from the previous entry of the row (the first entry's
 * gap is its own column).  Gaps over 255 are bridged by filler entries (val 0, gap 255).
 * Rows follow the kernel's walk: CONV_2D (ky, kx, cin) im2col order, FULLY_CONNECTED the
 * input vector, DEPTHWISE_CONV_2D the tap ky*kw + kx of that channel.  Byte cost:
 * 2*rows + 2*entries.  Arithmetic is TFLite-Micro's (tn_kernels.h), zero weights skipped. */
#ifndef TN_SPARSE_H
#define TN_SPARSE_H
#include "tn_kernels.h"

typedef struct {
  const uint16_t *cnt;
  const int8_t *val;
  const uint8_t *gap;
} tn_sparse_t;

/* Bitmask: each row has (cols + 7) / 8 mask bytes (bit j % 8 of byte j / 8, LSB first, set when
 * column j is stored; padding bits 0) and popcount(mask) values; rows follow one another in
 * both streams.  cols: kh*kw*ic (CONV_2D), n (FULLY_CONNECTED), kh*kw (DEPTHWISE_CONV_2D).
 * Byte cost: rows*ceil(cols/8) + nnz. */
typedef struct {
  const uint8_t *mask;
  const int8_t *val;
} tn_bitmask_t;

/* bias_folded[o] = bias[o] + in_offset * sum_k w[o][k]; col: kh*kw*ic bytes (unused for 1x1
 * convolutions without padding). */
void tn_conv2d_sparse_s8(const tn_conv_t *p, const int8_t *in, const tn_sparse_t *sw,
                         const int32_t *bias_folded, const int32_t *mult, const int32_t *shift,
                         int8_t *out, int8_t *col);
void tn_fc_sparse_s8(int32_t n, int32_t co, const int8_t *in, const tn_sparse_t *sw,
                     const int32_t *bias_folded, int32_t out_offset, const int32_t *mult,
                     const int32_t *shift, int32_t act_min, int32_t act_max, int8_t *out);
void tn_dwconv_sparse_s8(const tn_conv_t *p, const int8_t *in, const tn_sparse_t *sw,
                         const int32_t *bias, const int32_t *mult, const int32_t *shift,
                         int8_t *out);
/* In place (depth multiplier 1): channel by channel through tmp (oh*ow bytes). */
void tn_dwconv_inplace_sparse_s8(const tn_conv_t *p, int8_t *buf, const tn_sparse_t *sw,
                                 const int32_t *bias, const int32_t *mult,
                                 const int32_t *shift, int8_t *tmp);

/* The same four kernels on bitmask weights (same arguments, same bias fold). */
void tn_conv2d_bitmask_s8(const tn_conv_t *p, const int8_t *in, const tn_bitmask_t *bw,
                          const int32_t *bias_folded, const int32_t *mult, const int32_t *shift,
                          int8_t *out, int8_t *col);
void tn_fc_bitmask_s8(int32_t n, int32_t co, const int8_t *in, const tn_bitmask_t *bw,
                      const int32_t *bias_folded, int32_t out_offset, const int32_t *mult,
                      const int32_t *shift, int32_t act_min, int32_t act_max, int8_t *out);
void tn_dwconv_bitmask_s8(const tn_conv_t *p, const int8_t *in, const tn_bitmask_t *bw,
                          const int32_t *bias, const int32_t *mult, const int32_t *shift,
                          int8_t *out);
void tn_dwconv_inplace_bitmask_s8(const tn_conv_t *p, int8_t *buf, const tn_bitmask_t *bw,
                                  const int32_t *bias, const int32_t *mult,
                                  const int32_t *shift, int8_t *tmp);
#endif
