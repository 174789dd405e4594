/* tinyNAS 4-bit-weight kernels (helpers/engine/int4.py): int8 activations, int4 filters.
 *
 * Two paths, both the same arithmetic as TFLite-Micro (which unpacks an int4 filter to
 * int8 and runs its int8 kernel):
 *  - tn_unpack_s4: TFLite's int4 order (element 2i low nibble, 2i+1 high nibble) into an
 *    int8 buffer, then any int8 kernel of tn_kernels.h (depthwise, and the plain kernels);
 *  - tn_conv2d_s4_dsp / tn_fc_s4_dsp: the filter stays packed in flash in the generated
 *    C's row layout (helpers.engine.int4.c_pack_rows: per output channel, groups of 8
 *    weights in 4 bytes, byte j = w[j] | w[j+4] << 4; the n % 8 tail in TFLite order).
 *    A group is expanded with (v << 4) & 0xF0F0F0F0 and v & 0xF0F0F0F0 (each byte = 16 w)
 *    and four SXTB16 + SMLAD: the sum is 16x the int8 one, exact, and shifted back by 4. */
#ifndef TN_INT4_H
#define TN_INT4_H
#include "tn_kernels.h"

void tn_unpack_s4(const uint8_t *packed, int32_t n, int8_t *out);
/* bias_folded as for tn_conv2d_s8_dsp; w: c_pack_rows layout, row = kh*kw*ic weights. */
void tn_conv2d_s4_dsp(const tn_conv_t *p, const int8_t *in, const uint8_t *w,
                      const int32_t *bias_folded, const int32_t *mult, const int32_t *shift,
                      int8_t *out, int8_t *col);
void tn_fc_s4_dsp(int32_t n, int32_t co, const int8_t *in, const uint8_t *w,
                  const int32_t *bias_folded, int32_t out_offset, const int32_t *mult,
                  const int32_t *shift, int32_t act_min, int32_t act_max, int8_t *out);
#endif
