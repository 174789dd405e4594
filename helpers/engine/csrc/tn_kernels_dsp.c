/* tinyNAS int8 kernels using Armv7E-M DSP instructions (Cortex-M4/M7):
 * SXTB16 expands two int8 lanes to int16 halves, SMLAD does two 16x16 MACs in one
 * single-cycle instruction, SMLABB/SMLATT one MAC on a chosen half.
 *
 * Convolution / fully connected: sum_k (x_k + in_offset) * w_k is computed as
 * sum_k x_k * w_k + in_offset * sum_k w_k, the second term folded into the bias at
 * code generation time.  Padded taps of a convolution are filled with the input zero
 * point (x + in_offset = 0 there), so the fold is exact at the borders too and the
 * result equals TFLite-Micro's bit for bit.  Two output channels share each expanded
 * input word. */
#include <arm_acle.h>
#include "tn_kernels.h"

static inline uint32_t tn_ld32(const int8_t *p) {
  uint32_t v;
  __builtin_memcpy(&v, p, 4); /* unaligned LDR is allowed on Armv7-M */
  return v;
}

/* acc0 += dot(x, w0), acc1 += dot(x, w1) over n int8 values */
static inline void tn_dot2(const int8_t *x, const int8_t *w0, const int8_t *w1, int32_t n,
                           int32_t *acc0, int32_t *acc1) {
  int32_t a0 = *acc0, a1 = *acc1;
  int32_t k = n >> 2;
  while (k--) {
    const uint32_t xv = tn_ld32(x);
    x += 4;
    const int16x2_t xe = __sxtb16(xv), xo = __sxtb16(__ror(xv, 8));
    const uint32_t wa = tn_ld32(w0);
    w0 += 4;
    a0 = __smlad(__sxtb16(wa), xe, a0);
    a0 = __smlad(__sxtb16(__ror(wa, 8)), xo, a0);
    const uint32_t wb = tn_ld32(w1);
    w1 += 4;
    a1 = __smlad(__sxtb16(wb), xe, a1);
    a1 = __smlad(__sxtb16(__ror(wb, 8)), xo, a1);
  }
  for (k = n & 3; k; k--) {
    const int32_t xv = *x++;
    a0 += xv * *w0++;
    a1 += xv * *w1++;
  }
  *acc0 = a0;
  *acc1 = a1;
}

static inline int32_t tn_dot1(const int8_t *x, const int8_t *w0, int32_t n, int32_t a0) {
  int32_t k = n >> 2;
  while (k--) {
    const uint32_t xv = tn_ld32(x);
    x += 4;
    const uint32_t wa = tn_ld32(w0);
    w0 += 4;
    a0 = __smlad(__sxtb16(wa), __sxtb16(xv), a0);
    a0 = __smlad(__sxtb16(__ror(wa, 8)), __sxtb16(__ror(xv, 8)), a0);
  }
  for (k = n & 3; k; k--) a0 += *x++ * *w0++;
  return a0;
}

static void tn_outputs(const int8_t *x, const int8_t *w, const int32_t *bias, int32_t n,
                       int32_t co, const int32_t *mult, const int32_t *shift, int32_t out_offset,
                       int32_t act_min, int32_t act_max, int8_t *out) {
  int32_t o = 0;
  for (; o + 1 < co; o += 2) {
    int32_t a0 = bias[o], a1 = bias[o + 1];
    tn_dot2(x, w + o * n, w + (o + 1) * n, n, &a0, &a1);
    out[o] = tn_clamp8(tn_requant(a0, mult[o], shift[o]) + out_offset, act_min, act_max);
    out[o + 1] = tn_clamp8(tn_requant(a1, mult[o + 1], shift[o + 1]) + out_offset, act_min,
                           act_max);
  }
  if (o < co) {
    const int32_t a0 = tn_dot1(x, w + o * n, n, bias[o]);
    out[o] = tn_clamp8(tn_requant(a0, mult[o], shift[o]) + out_offset, act_min, act_max);
  }
}

void tn_conv2d_s8_dsp(const tn_conv_t *p, const int8_t *in, const int8_t *w,
                      const int32_t *bias_folded, const int32_t *mult, const int32_t *shift,
                      int8_t *out, int8_t *col) {
  const int32_t ih = p->ih, iw = p->iw, ic = p->ic, oh = p->oh, ow = p->ow, oc = p->oc;
  const int32_t kh = p->kh, kw = p->kw;
  const int32_t ksize = kh * kw * ic;
  const int8_t pad_value = (int8_t)(-p->in_offset); /* the input zero point */
  const int direct = (kh == 1 && kw == 1 && p->pt == 0 && p->pl == 0);
  for (int32_t oy = 0; oy < oh; oy++) {
    const int32_t iy0 = oy * p->sh - p->pt;
    for (int32_t ox = 0; ox < ow; ox++) {
      const int32_t ix0 = ox * p->sw - p->pl;
      const int8_t *x;
      if (direct) {
        x = in + (iy0 * iw + ix0) * ic;
      } else { /* im2col of one output pixel */
        int8_t *c = col;
        for (int32_t ky = 0; ky < kh; ky++) {
          const int32_t iy = iy0 + ky * p->dh;
          for (int32_t kx = 0; kx < kw; kx++) {
            const int32_t ix = ix0 + kx * p->dw;
            if (iy < 0 || iy >= ih || ix < 0 || ix >= iw) {
              for (int32_t i = 0; i < ic; i++) *c++ = pad_value;
            } else {
              const int8_t *ip = in + (iy * iw + ix) * ic;
              for (int32_t i = 0; i < ic; i++) *c++ = ip[i];
            }
          }
        }
        x = col;
      }
      tn_outputs(x, w, bias_folded, ksize, oc, mult, shift, p->out_offset, p->act_min,
                 p->act_max, out);
      out += oc;
    }
  }
}

void tn_fc_s8_dsp(int32_t n, int32_t co, const int8_t *in, const int8_t *w,
                  const int32_t *bias_folded, int32_t out_offset, const int32_t *mult,
                  const int32_t *shift, int32_t act_min, int32_t act_max, int8_t *out) {
  tn_outputs(in, w, bias_folded, n, co, mult, shift, out_offset, act_min, act_max, out);
}

/* Depthwise, depth multiplier 1: four channels per step with SXTB16 + SADD16 (offset)
 * and SMLABB / SMLATT into four accumulators. */
void tn_dwconv_s8_dsp(const tn_conv_t *p, const int8_t *in, const int8_t *w, const int32_t *bias,
                      const int32_t *mult, const int32_t *shift, int8_t *out) {
  if (p->depth_mult != 1) {
    tn_dwconv_s8(p, in, w, bias, mult, shift, out);
    return;
  }
  const int32_t ih = p->ih, iw = p->iw, cn = p->ic, oh = p->oh, ow = p->ow;
  const int32_t kh = p->kh, kw = p->kw, in_off = p->in_offset;
  const uint32_t off2 = ((uint32_t)(uint16_t)in_off << 16) | (uint16_t)in_off;
  for (int32_t oy = 0; oy < oh; oy++) {
    const int32_t iy0 = oy * p->sh - p->pt;
    for (int32_t ox = 0; ox < ow; ox++) {
      const int32_t ix0 = ox * p->sw - p->pl;
      int32_t c = 0;
      for (; c + 3 < cn; c += 4) {
        int32_t a0 = bias[c], a1 = bias[c + 1], a2 = bias[c + 2], a3 = bias[c + 3];
        for (int32_t ky = 0; ky < kh; ky++) {
          const int32_t iy = iy0 + ky * p->dh;
          if (iy < 0 || iy >= ih) continue;
          for (int32_t kx = 0; kx < kw; kx++) {
            const int32_t ix = ix0 + kx * p->dw;
            if (ix < 0 || ix >= iw) continue;
            const uint32_t xv = tn_ld32(in + (iy * iw + ix) * cn + c);
            const uint32_t wv = tn_ld32(w + (ky * kw + kx) * cn + c);
            const int16x2_t x02 = __sadd16(__sxtb16(xv), off2);
            const int16x2_t x13 = __sadd16(__sxtb16(__ror(xv, 8)), off2);
            const int16x2_t w02 = __sxtb16(wv), w13 = __sxtb16(__ror(wv, 8));
            a0 = __smlabb(x02, w02, a0);
            a2 = __smlatt(x02, w02, a2);
            a1 = __smlabb(x13, w13, a1);
            a3 = __smlatt(x13, w13, a3);
          }
        }
        out[c] = tn_clamp8(tn_requant(a0, mult[c], shift[c]) + p->out_offset, p->act_min, p->act_max);
        out[c + 1] = tn_clamp8(tn_requant(a1, mult[c + 1], shift[c + 1]) + p->out_offset, p->act_min, p->act_max);
        out[c + 2] = tn_clamp8(tn_requant(a2, mult[c + 2], shift[c + 2]) + p->out_offset, p->act_min, p->act_max);
        out[c + 3] = tn_clamp8(tn_requant(a3, mult[c + 3], shift[c + 3]) + p->out_offset, p->act_min, p->act_max);
      }
      for (; c < cn; c++) {
        int32_t acc = bias[c];
        for (int32_t ky = 0; ky < kh; ky++) {
          const int32_t iy = iy0 + ky * p->dh;
          if (iy < 0 || iy >= ih) continue;
          for (int32_t kx = 0; kx < kw; kx++) {
            const int32_t ix = ix0 + kx * p->dw;
            if (ix < 0 || ix >= iw) continue;
            acc += (in[(iy * iw + ix) * cn + c] + in_off) * w[(ky * kw + kx) * cn + c];
          }
        }
        out[c] = tn_clamp8(tn_requant(acc, mult[c], shift[c]) + p->out_offset, p->act_min, p->act_max);
      }
      out += cn;
    }
  }
}
