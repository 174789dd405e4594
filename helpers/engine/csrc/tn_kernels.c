/* tinyNAS plain-C int8 kernels (portable; the compiler may still pick DSP multiply
 * instructions such as SMLABB on Armv7E-M).  Bit-exact with TFLite-Micro's reference
 * kernels; see tn_kernels.h. */
#include "tn_kernels.h"

void tn_conv2d_s8(const tn_conv_t *p, const int8_t *in, const int8_t *w, const int32_t *bias,
                  const int32_t *mult, const int32_t *shift, int8_t *out) {
  const int32_t ih = p->ih, iw = p->iw, ic = p->ic, oh = p->oh, ow = p->ow, oc = p->oc;
  const int32_t kh = p->kh, kw = p->kw, in_off = p->in_offset;
  const int32_t ksize = kh * kw * ic;
  for (int32_t oy = 0; oy < oh; oy++) {
    const int32_t iy0 = oy * p->sh - p->pt;
    for (int32_t ox = 0; ox < ow; ox++) {
      const int32_t ix0 = ox * p->sw - p->pl;
      const int8_t *wo = w;
      for (int32_t o = 0; o < oc; o++, wo += ksize) {
        int32_t acc = 0;
        for (int32_t ky = 0; ky < kh; ky++) {
          const int32_t iy = iy0 + ky * p->dh;
          if (iy < 0 || iy >= ih) continue;
          for (int32_t kx = 0; kx < kw; kx++) {
            const int32_t ix = ix0 + kx * p->dw;
            if (ix < 0 || ix >= iw) continue;
            const int8_t *ip = in + (iy * iw + ix) * ic;
            const int8_t *wp = wo + (ky * kw + kx) * ic;
            for (int32_t c = 0; c < ic; c++) acc += (ip[c] + in_off) * wp[c];
          }
        }
        acc += bias[o];
        acc = tn_requant(acc, mult[o], shift[o]) + p->out_offset;
        *out++ = tn_clamp8(acc, p->act_min, p->act_max);
      }
    }
  }
}

void tn_dwconv_s8(const tn_conv_t *p, const int8_t *in, const int8_t *w, const int32_t *bias,
                  const int32_t *mult, const int32_t *shift, int8_t *out) {
  const int32_t ih = p->ih, iw = p->iw, ic = p->ic, oh = p->oh, ow = p->ow, oc = p->oc;
  const int32_t kh = p->kh, kw = p->kw, dm = p->depth_mult, in_off = p->in_offset;
  for (int32_t oy = 0; oy < oh; oy++) {
    const int32_t iy0 = oy * p->sh - p->pt;
    for (int32_t ox = 0; ox < ow; ox++) {
      const int32_t ix0 = ox * p->sw - p->pl;
      for (int32_t c = 0; c < ic; c++) {
        for (int32_t m = 0; m < dm; m++) {
          const int32_t o = c * dm + m;
          int32_t acc = 0;
          for (int32_t ky = 0; ky < kh; ky++) {
            const int32_t iy = iy0 + ky * p->dh;
            if (iy < 0 || iy >= ih) continue;
            for (int32_t kx = 0; kx < kw; kx++) {
              const int32_t ix = ix0 + kx * p->dw;
              if (ix < 0 || ix >= iw) continue;
              acc += (in[(iy * iw + ix) * ic + c] + in_off) * w[(ky * kw + kx) * oc + o];
            }
          }
          acc += bias[o];
          acc = tn_requant(acc, mult[o], shift[o]) + p->out_offset;
          *out++ = tn_clamp8(acc, p->act_min, p->act_max);
        }
      }
    }
  }
}

void tn_dwconv_inplace_s8(const tn_conv_t *p, int8_t *buf, const int8_t *w, const int32_t *bias,
                          const int32_t *mult, const int32_t *shift, int8_t *tmp) {
  const int32_t ih = p->ih, iw = p->iw, cn = p->ic, oh = p->oh, ow = p->ow;
  const int32_t kh = p->kh, kw = p->kw, dh = p->dh, dw = p->dw, in_off = p->in_offset;
  const int32_t row = iw * cn;
  for (int32_t c = 0; c < cn; c++) {
    int8_t *t = tmp;
    const int32_t b = bias[c], m = mult[c], sh = shift[c];
    for (int32_t oy = 0; oy < oh; oy++) {
      const int32_t iy0 = oy * p->sh - p->pt;
      /* valid tap rows: 0 <= iy0 + ky*dh < ih */
      int32_t ky0 = 0, ky1 = kh;
      while (ky0 < kh && iy0 + ky0 * dh < 0) ky0++;
      while (ky1 > ky0 && iy0 + (ky1 - 1) * dh >= ih) ky1--;
      for (int32_t ox = 0; ox < ow; ox++) {
        const int32_t ix0 = ox * p->sw - p->pl;
        int32_t kx0 = 0, kx1 = kw;
        while (kx0 < kw && ix0 + kx0 * dw < 0) kx0++;
        while (kx1 > kx0 && ix0 + (kx1 - 1) * dw >= iw) kx1--;
        int32_t acc = b;
        const int8_t *ir = buf + (iy0 + ky0 * dh) * row + (ix0 + kx0 * dw) * cn + c;
        const int8_t *wr = w + (ky0 * kw + kx0) * cn + c;
        for (int32_t ky = ky0; ky < ky1; ky++, ir += dh * row, wr += kw * cn) {
          const int8_t *ip = ir, *wp = wr;
          for (int32_t kx = kx0; kx < kx1; kx++, ip += dw * cn, wp += cn)
            acc += (*ip + in_off) * *wp;
        }
        acc = tn_requant(acc, m, sh) + p->out_offset;
        *t++ = tn_clamp8(acc, p->act_min, p->act_max);
      }
    }
    /* output channel c only overwrites input bytes of channel c (HWC, same C) */
    const int32_t n = oh * ow;
    int8_t *o = buf + c;
    for (int32_t i = 0; i < n; i++, o += cn) *o = tmp[i];
  }
}

void tn_fc_s8(int32_t n, int32_t co, const int8_t *in, const int8_t *w, const int32_t *bias,
              int32_t in_offset, int32_t out_offset, const int32_t *mult, const int32_t *shift,
              int32_t act_min, int32_t act_max, int8_t *out) {
  for (int32_t o = 0; o < co; o++) {
    const int8_t *wo = w + o * n;
    int32_t acc = 0;
    for (int32_t k = 0; k < n; k++) acc += (in[k] + in_offset) * wo[k];
    acc += bias[o];
    acc = tn_requant(acc, mult[o], shift[o]) + out_offset;
    out[o] = tn_clamp8(acc, act_min, act_max);
  }
}

void tn_add_s8(const tn_add_t *p, const int8_t *a, const int8_t *b, int8_t *out) {
  const int32_t n = p->n;
  for (int32_t i = 0; i < n; i++) {
    const int32_t va = (int32_t)((uint32_t)(a[i] + p->a_offset) << p->left_shift);
    const int32_t vb = (int32_t)((uint32_t)(b[i] + p->b_offset) << p->left_shift);
    const int32_t sa = tn_requant(va, p->a_mult, p->a_shift);
    const int32_t sb = tn_requant(vb, p->b_mult, p->b_shift);
    const int32_t r = tn_requant(sa + sb, p->out_mult, p->out_shift) + p->out_offset;
    out[i] = tn_clamp8(r, p->act_min, p->act_max);
  }
}

void tn_avgpool_s8(const tn_pool_t *p, const int8_t *in, int8_t *out) {
  const int32_t c_n = p->c;
  for (int32_t oy = 0; oy < p->oh; oy++) {
    for (int32_t ox = 0; ox < p->ow; ox++) {
      const int32_t iy0 = oy * p->sh - p->pt, ix0 = ox * p->sw - p->pl;
      const int32_t y0 = iy0 < 0 ? 0 : iy0, x0 = ix0 < 0 ? 0 : ix0;
      const int32_t y1 = iy0 + p->kh > p->ih ? p->ih : iy0 + p->kh;
      const int32_t x1 = ix0 + p->kw > p->iw ? p->iw : ix0 + p->kw;
      const int32_t cnt = (y1 - y0) * (x1 - x0);
      for (int32_t c = 0; c < c_n; c++) {
        int32_t acc = 0;
        for (int32_t y = y0; y < y1; y++)
          for (int32_t x = x0; x < x1; x++) acc += in[(y * p->iw + x) * c_n + c];
        acc = acc > 0 ? (acc + cnt / 2) / cnt : (acc - cnt / 2) / cnt;
        *out++ = tn_clamp8(acc, p->act_min, p->act_max);
      }
    }
  }
}

void tn_maxpool_s8(const tn_pool_t *p, const int8_t *in, int8_t *out) {
  const int32_t c_n = p->c;
  for (int32_t oy = 0; oy < p->oh; oy++) {
    for (int32_t ox = 0; ox < p->ow; ox++) {
      const int32_t iy0 = oy * p->sh - p->pt, ix0 = ox * p->sw - p->pl;
      const int32_t y0 = iy0 < 0 ? 0 : iy0, x0 = ix0 < 0 ? 0 : ix0;
      const int32_t y1 = iy0 + p->kh > p->ih ? p->ih : iy0 + p->kh;
      const int32_t x1 = ix0 + p->kw > p->iw ? p->iw : ix0 + p->kw;
      for (int32_t c = 0; c < c_n; c++) {
        int32_t m = -128;
        for (int32_t y = y0; y < y1; y++)
          for (int32_t x = x0; x < x1; x++) {
            const int32_t v = in[(y * p->iw + x) * c_n + c];
            m = v > m ? v : m;
          }
        *out++ = tn_clamp8(m, p->act_min, p->act_max);
      }
    }
  }
}

void tn_mean_s8(const tn_mean_t *p, const int8_t *in, int8_t *out) {
  /* mult/shift already include the 1/(h*w) factor (QuantizedMeanOrSum). */
  for (int32_t c = 0; c < p->c; c++) {
    int32_t acc = 0;
    for (int32_t i = 0; i < p->hw; i++) acc += in[i * p->c + c];
    acc -= p->in_zp * p->hw;
    int32_t r = tn_requant(acc, p->mult, p->shift) + p->out_zp;
    out[c] = tn_clamp8(r, -128, 127);
  }
}

void tn_reduce_max_s8(int32_t hw, int32_t c, const int8_t *in, int8_t *out) {
  for (int32_t j = 0; j < c; j++) {
    int32_t m = -128;
    for (int32_t i = 0; i < hw; i++) m = in[i * c + j] > m ? in[i * c + j] : m;
    out[j] = (int8_t)m;
  }
}

void tn_copy_s8(int8_t *dst, const int8_t *src, int32_t n) {
  if (dst == src) return;
  if (dst < src) {
    for (int32_t i = 0; i < n; i++) dst[i] = src[i];
  } else {
    for (int32_t i = n - 1; i >= 0; i--) dst[i] = src[i];
  }
}

/* ---- softmax: TFLite reference int8 Softmax (gemmlowp fixed point) ---------------- */
static inline int32_t tn_sat_shl(int32_t x, int e) {
  const int64_t v = (int64_t)x << e;
  return v > TN_INT32_MAX ? TN_INT32_MAX : (v < TN_INT32_MIN ? TN_INT32_MIN : (int32_t)v);
}

static int32_t tn_exp_quarter(int32_t a) { /* exp on [-1/4, 0), Q0.31 */
  const int32_t constant_term = 1895147668, one_third = 715827883;
  const int32_t x = a + (1 << 28);
  const int32_t x2 = tn_srdhm(x, x), x3 = tn_srdhm(x2, x), x4 = tn_srdhm(x2, x2);
  const int32_t x4_over_4 = tn_rdbpot(x4, 2);
  const int32_t poly = tn_rdbpot(tn_srdhm(x4_over_4 + x3, one_third) + x2, 1);
  return constant_term + tn_srdhm(constant_term, x + poly);
}

static int32_t tn_exp_neg(int32_t a) { /* input Q5.26 <= 0, output Q0.31 */
  const int frac = 26;
  const int32_t one_quarter = 1 << (frac - 2), mask = one_quarter - 1;
  const int32_t a_mod = (a & mask) - one_quarter;
  int32_t result = tn_exp_quarter(tn_sat_shl(a_mod, 5));
  const int32_t rem = a_mod - a;
  static const int32_t mults[7] = {1672461947, 1302514674, 790015084, 290630308, 39332535,
                                   720401, 242};
  for (int e = -2; e <= 4; e++)
    if (rem & (1 << (frac + e))) result = tn_srdhm(result, mults[e + 2]);
  return a == 0 ? TN_INT32_MAX : result;
}

static int32_t tn_one_over_one_plus_x(int32_t a) { /* Q0.31 in [0,1) -> Q0.31 */
  const int64_t s = (int64_t)a + TN_INT32_MAX;
  const int32_t half_den = (int32_t)(s >= 0 ? (s + 1) >> 1 : -((-s + 1) >> 1));
  int32_t x = 1515870810 + tn_srdhm(half_den, -1010580540);
  for (int i = 0; i < 3; i++) {
    const int32_t hdx = tn_srdhm(half_den, x);
    const int32_t one_minus = (1 << 29) - hdx;
    x = x + tn_sat_shl(tn_srdhm(x, one_minus), 2);
  }
  return tn_sat_shl(tn_rdbpot(x, 1), 2);
}

void tn_softmax_s8(const tn_softmax_t *p, const int8_t *in, int8_t *out) {
  for (int32_t r = 0; r < p->rows; r++, in += p->n, out += p->n) {
    int32_t mx = -128;
    for (int32_t i = 0; i < p->n; i++) mx = in[i] > mx ? in[i] : mx;
    int32_t sum = 0;
    for (int32_t i = 0; i < p->n; i++) {
      const int32_t d = in[i] - mx;
      if (d >= p->diff_min) {
        const int32_t sd = tn_srdhm((int32_t)((uint32_t)d << p->beta_shift), p->beta_mult);
        sum += tn_rdbpot(tn_exp_neg(sd), 12);
      }
    }
    const int headroom = sum ? __builtin_clz((uint32_t)sum) : 32;
    const int bits_over_unit = 12 - headroom;
    const int32_t shifted = (int32_t)(((uint32_t)sum << headroom) - (1u << 31));
    const int32_t scale = tn_one_over_one_plus_x(shifted);
    for (int32_t i = 0; i < p->n; i++) {
      const int32_t d = in[i] - mx;
      if (d >= p->diff_min) {
        const int32_t sd = tn_srdhm((int32_t)((uint32_t)d << p->beta_shift), p->beta_mult);
        const int32_t e = tn_exp_neg(sd);
        const int32_t v = tn_rdbpot(tn_srdhm(scale, e), bits_over_unit + 31 - 8) - 128;
        out[i] = tn_clamp8(v, -128, 127);
      } else {
        out[i] = -128;
      }
    }
  }
}
