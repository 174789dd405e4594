/* tinyNAS int8 kernels for Cortex-M (plain C and Armv7E-M DSP variants).
 *
 * Arithmetic follows TFLite / TFLite-Micro's reference integer kernels bit for bit:
 * per-channel requantisation with MultiplyByQuantizedMultiplier (double rounding:
 * gemmlowp SaturatingRoundingDoublingHighMul then RoundingDivideByPOT), activation
 * clamps, rounded average pooling, QuantizedMeanOrSum and the fixed-point softmax.
 * Multipliers and shifts are computed in Python (helpers/kernels.py) at code
 * generation time and emitted as constants.  Tensors are NHWC int8 (batch 1).
 */
#ifndef TN_KERNELS_H
#define TN_KERNELS_H
#include <stdint.h>

#define TN_INT32_MIN (-2147483647 - 1)
#define TN_INT32_MAX 2147483647

typedef struct {
  int32_t ih, iw, ic, oh, ow, oc;
  int32_t kh, kw, sh, sw, dh, dw, pt, pl;
  int32_t depth_mult;
  int32_t in_offset;   /* -input zero point */
  int32_t out_offset;  /* output zero point */
  int32_t act_min, act_max;
} tn_conv_t;

typedef struct {
  int32_t n;
  int32_t a_offset, b_offset, out_offset, left_shift;
  int32_t a_mult, a_shift, b_mult, b_shift, out_mult, out_shift;
  int32_t act_min, act_max;
} tn_add_t;

typedef struct {
  int32_t ih, iw, c, oh, ow, kh, kw, sh, sw, pt, pl, act_min, act_max;
} tn_pool_t;

typedef struct {
  int32_t hw, c, in_zp, out_zp, mult, shift;
} tn_mean_t;

typedef struct {
  int32_t rows, n, beta_mult, beta_shift, diff_min;
} tn_softmax_t;

/* ---- fixed-point helpers (gemmlowp semantics) --------------------------------- */
static inline int32_t tn_srdhm(int32_t a, int32_t b) {
  if (a == TN_INT32_MIN && b == TN_INT32_MIN) return TN_INT32_MAX;
  int64_t ab = (int64_t)a * (int64_t)b;
  int64_t nudge = ab >= 0 ? (1 << 30) : (1 - (1 << 30));
  return (int32_t)((ab + nudge) / (1ll << 31));
}

static inline int32_t tn_rdbpot(int32_t x, int e) {
  const int32_t mask = (int32_t)((1u << e) - 1u);
  const int32_t rem = x & mask;
  const int32_t thr = (mask >> 1) + (x < 0 ? 1 : 0);
  return (x >> e) + (rem > thr ? 1 : 0);
}

/* TFLite MultiplyByQuantizedMultiplier (double-rounding build). */
static inline int32_t tn_requant(int32_t x, int32_t mult, int32_t shift) {
  const int ls = shift > 0 ? shift : 0;
  const int rs = shift > 0 ? 0 : -shift;
  return tn_rdbpot(tn_srdhm((int32_t)((uint32_t)x << ls), mult), rs);
}

static inline int8_t tn_clamp8(int32_t v, int32_t lo, int32_t hi) {
  v = v < lo ? lo : v;
  v = v > hi ? hi : v;
  return (int8_t)v;
}

/* ---- plain C kernels (tn_kernels.c) -------------------------------------------- */
void tn_conv2d_s8(const tn_conv_t *p, const int8_t *in, const int8_t *w, const int32_t *bias,
                  const int32_t *mult, const int32_t *shift, int8_t *out);
void tn_dwconv_s8(const tn_conv_t *p, const int8_t *in, const int8_t *w, const int32_t *bias,
                  const int32_t *mult, const int32_t *shift, int8_t *out);
/* In-place depthwise: buf holds the HWC input and receives the output; each channel is
 * computed into tmp (oh*ow bytes) and then scattered over its own input channel. */
void tn_dwconv_inplace_s8(const tn_conv_t *p, int8_t *buf, const int8_t *w, const int32_t *bias,
                          const int32_t *mult, const int32_t *shift, int8_t *tmp);
void tn_fc_s8(int32_t n, int32_t co, const int8_t *in, const int8_t *w, const int32_t *bias,
              int32_t in_offset, int32_t out_offset, const int32_t *mult, const int32_t *shift,
              int32_t act_min, int32_t act_max, int8_t *out);
void tn_add_s8(const tn_add_t *p, const int8_t *a, const int8_t *b, int8_t *out);
void tn_avgpool_s8(const tn_pool_t *p, const int8_t *in, int8_t *out);
void tn_maxpool_s8(const tn_pool_t *p, const int8_t *in, int8_t *out);
void tn_mean_s8(const tn_mean_t *p, const int8_t *in, int8_t *out);
void tn_softmax_s8(const tn_softmax_t *p, const int8_t *in, int8_t *out);
void tn_copy_s8(int8_t *dst, const int8_t *src, int32_t n);
void tn_reduce_max_s8(int32_t hw, int32_t c, const int8_t *in, int8_t *out);

/* ---- Armv7E-M DSP kernels (tn_kernels_dsp.c): SXTB16 + SMLAD / SMLAxy ------------ */
/* bias_folded[o] = bias[o] + in_offset * sum_k w[o][k] (computed at code generation),
 * col: scratch of kh*kw*ic bytes (unused for 1x1 convolutions without padding). */
void tn_conv2d_s8_dsp(const tn_conv_t *p, const int8_t *in, const int8_t *w,
                      const int32_t *bias_folded, const int32_t *mult, const int32_t *shift,
                      int8_t *out, int8_t *col);
void tn_dwconv_s8_dsp(const tn_conv_t *p, const int8_t *in, const int8_t *w, const int32_t *bias,
                      const int32_t *mult, const int32_t *shift, int8_t *out);
void tn_fc_s8_dsp(int32_t n, int32_t co, const int8_t *in, const int8_t *w,
                  const int32_t *bias_folded, int32_t out_offset, const int32_t *mult,
                  const int32_t *shift, int32_t act_min, int32_t act_max, int8_t *out);

#endif
