/* tinyNAS sparse int8 kernels: weights stored row-compressed (helpers/engine/sparse_weights.py).
 *
 * Each output channel (row) has cnt[row] entries; entry j holds a weight val[j] (int8) and
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
#endif
