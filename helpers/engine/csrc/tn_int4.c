/* tinyNAS 4-bit-weight kernels: see tn_int4.h for the layouts and the arithmetic. */
#include <arm_acle.h>
#include "tn_int4.h"

static inline uint32_t tn4_ld32(const void *p) {
  uint32_t v;
  __builtin_memcpy(&v, p, 4); /* unaligned LDR is allowed on Armv7-M */
  return v;
}

static inline int32_t tn4_nib(uint32_t byte, int high) {
  const int32_t v = high ? (int32_t)(byte >> 4) : (int32_t)(byte & 0xFu);
  return (v ^ 8) - 8;
}

void tn_unpack_s4(const uint8_t *packed, int32_t n, int8_t *out) {
  int32_t i = 0;
  for (; i + 1 < n; i += 2) {
    const uint32_t b = *packed++;
    out[i] = (int8_t)tn4_nib(b, 0);
    out[i + 1] = (int8_t)tn4_nib(b, 1);
  }
  if (i < n) out[i] = (int8_t)tn4_nib(*packed, 0);
}

/* 16 * dot(x, w) over the tail of a row (n & 7 weights, TFLite order). */
static inline int32_t tn4_tail(const int8_t *x, const uint8_t *w, int32_t t) {
  int32_t a = 0;
  for (int32_t i = 0; i < t; i++) a += x[i] * (tn4_nib(w[i >> 1], i & 1) << 4);
  return a;
}

/* acc0 += dot(x, w0), acc1 += dot(x, w1) over n weights (rows in c_pack_rows layout). */
static inline void tn4_dot2(const int8_t *x, const uint8_t *w0, const uint8_t *w1, int32_t n,
                            int32_t *acc0, int32_t *acc1) {
  int32_t a0 = 0, a1 = 0;
  int32_t g = n >> 3;
  while (g--) {
    const uint32_t xa = tn4_ld32(x), xb = tn4_ld32(x + 4);
    x += 8;
    const int16x2_t x02 = __sxtb16(xa), x13 = __sxtb16(__ror(xa, 8));
    const int16x2_t x46 = __sxtb16(xb), x57 = __sxtb16(__ror(xb, 8));
    const uint32_t va = tn4_ld32(w0), vb = tn4_ld32(w1);
    w0 += 4;
    w1 += 4;
    const uint32_t la = (va << 4) & 0xF0F0F0F0u, ha = va & 0xF0F0F0F0u;
    const uint32_t lb = (vb << 4) & 0xF0F0F0F0u, hb = vb & 0xF0F0F0F0u;
    a0 = __smlad(__sxtb16(la), x02, a0);
    a0 = __smlad(__sxtb16(__ror(la, 8)), x13, a0);
    a0 = __smlad(__sxtb16(ha), x46, a0);
    a0 = __smlad(__sxtb16(__ror(ha, 8)), x57, a0);
    a1 = __smlad(__sxtb16(lb), x02, a1);
    a1 = __smlad(__sxtb16(__ror(lb, 8)), x13, a1);
    a1 = __smlad(__sxtb16(hb), x46, a1);
    a1 = __smlad(__sxtb16(__ror(hb, 8)), x57, a1);
  }
  const int32_t t = n & 7;
  if (t) {
    a0 += tn4_tail(x, w0, t);
    a1 += tn4_tail(x, w1, t);
  }
  *acc0 += a0 >> 4; /* every term is a multiple of 16: exact */
  *acc1 += a1 >> 4;
}

static inline int32_t tn4_dot1(const int8_t *x, const uint8_t *w0, int32_t n, int32_t acc) {
  int32_t a0 = 0;
  int32_t g = n >> 3;
  while (g--) {
    const uint32_t xa = tn4_ld32(x), xb = tn4_ld32(x + 4);
    x += 8;
    const uint32_t va = tn4_ld32(w0);
    w0 += 4;
    const uint32_t la = (va << 4) & 0xF0F0F0F0u, ha = va & 0xF0F0F0F0u;
    a0 = __smlad(__sxtb16(la), __sxtb16(xa), a0);
    a0 = __smlad(__sxtb16(__ror(la, 8)), __sxtb16(__ror(xa, 8)), a0);
    a0 = __smlad(__sxtb16(ha), __sxtb16(xb), a0);
    a0 = __smlad(__sxtb16(__ror(ha, 8)), __sxtb16(__ror(xb, 8)), a0);
  }
  if (n & 7) a0 += tn4_tail(x, w0, n & 7);
  return acc + (a0 >> 4);
}

static void tn4_outputs(const int8_t *x, const uint8_t *w, const int32_t *bias, int32_t n,
                        int32_t co, const int32_t *mult, const int32_t *shift,
                        int32_t out_offset, int32_t act_min, int32_t act_max, int8_t *out) {
  const int32_t row = (n + 1) >> 1;
  int32_t o = 0;
  for (; o + 1 < co; o += 2) {
    int32_t a0 = bias[o], a1 = bias[o + 1];
    tn4_dot2(x, w + o * row, w + (o + 1) * row, n, &a0, &a1);
    out[o] = tn_clamp8(tn_requant(a0, mult[o], shift[o]) + out_offset, act_min, act_max);
    out[o + 1] = tn_clamp8(tn_requant(a1, mult[o + 1], shift[o + 1]) + out_offset, act_min,
                           act_max);
  }
  if (o < co) {
    const int32_t a0 = tn4_dot1(x, w + o * row, n, bias[o]);
    out[o] = tn_clamp8(tn_requant(a0, mult[o], shift[o]) + out_offset, act_min, act_max);
  }
}

void tn_conv2d_s4_dsp(const tn_conv_t *p, const int8_t *in, const uint8_t *w,
                      const int32_t *bias_folded, const int32_t *mult, const int32_t *shift,
                      int8_t *out, int8_t *col) {
  const int32_t ih = p->ih, iw = p->iw, ic = p->ic, oh = p->oh, ow = p->ow, oc = p->oc;
  const int32_t kh = p->kh, kw = p->kw, ksize = kh * kw * ic;
  const int8_t pad_value = (int8_t)(-p->in_offset); /* the input zero point */
  const int direct = (kh == 1 && kw == 1 && p->pt == 0 && p->pl == 0);
  for (int32_t oy = 0; oy < oh; oy++) {
    const int32_t iy0 = oy * p->sh - p->pt;
    for (int32_t ox = 0; ox < ow; ox++) {
      const int32_t ix0 = ox * p->sw - p->pl;
      const int8_t *x;
      if (direct) {
        x = in + (iy0 * iw + ix0) * ic;
      } else { /* im2col of one output pixel, padded taps = the input zero point */
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
      tn4_outputs(x, w, bias_folded, ksize, oc, mult, shift, p->out_offset, p->act_min,
                  p->act_max, out);
      out += oc;
    }
  }
}

void tn_fc_s4_dsp(int32_t n, int32_t co, const int8_t *in, const uint8_t *w,
                  const int32_t *bias_folded, int32_t out_offset, const int32_t *mult,
                  const int32_t *shift, int32_t act_min, int32_t act_max, int8_t *out) {
  tn4_outputs(in, w, bias_folded, n, co, mult, shift, out_offset, act_min, act_max, out);
}
