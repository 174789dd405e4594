/* tinyNAS sparse int8 kernels (see tn_sparse.h for the weight format).  Bit-exact with
 * TFLite-Micro's dense reference kernels: the skipped products are all zero. */
#include "tn_sparse.h"

/* acc + sum over n entries of val * x[pos], pos advanced by each gap */
static inline int32_t tn_sdot(const int8_t *x, const int8_t *v, const uint8_t *g, int32_t n,
                              int32_t acc) {
  for (; n >= 2; n -= 2) {
    x += g[0];
    const int32_t a = v[0] * *x;
    x += g[1];
    acc += a + v[1] * *x;
    v += 2;
    g += 2;
  }
  if (n) {
    x += g[0];
    acc += v[0] * *x;
  }
  return acc;
}

static void tn_sparse_rows(const int8_t *x, const tn_sparse_t *sw, const int32_t *bias,
                           int32_t co, const int32_t *mult, const int32_t *shift,
                           int32_t out_offset, int32_t act_min, int32_t act_max, int8_t *out) {
  const int8_t *v = sw->val;
  const uint8_t *g = sw->gap;
  for (int32_t o = 0; o < co; o++) {
    const int32_t n = sw->cnt[o];
    const int32_t acc = tn_sdot(x, v, g, n, bias[o]);
    v += n;
    g += n;
    out[o] = tn_clamp8(tn_requant(acc, mult[o], shift[o]) + out_offset, act_min, act_max);
  }
}

/* the im2col column of output pixel (oy, ox) (padding = input zero point), or the input
 * pixel itself for 1x1 convolutions without padding */
static const int8_t *tn_sparse_col(const tn_conv_t *p, const int8_t *in, int32_t oy,
                                   int32_t ox, int8_t *col) {
  const int32_t ih = p->ih, iw = p->iw, ic = p->ic, kh = p->kh, kw = p->kw;
  const int32_t iy0 = oy * p->sh - p->pt, ix0 = ox * p->sw - p->pl;
  if (kh == 1 && kw == 1 && p->pt == 0 && p->pl == 0) return in + (iy0 * iw + ix0) * ic;
  const int8_t pad_value = (int8_t)(-p->in_offset);
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
  return col;
}

void tn_conv2d_sparse_s8(const tn_conv_t *p, const int8_t *in, const tn_sparse_t *sw,
                         const int32_t *bias_folded, const int32_t *mult, const int32_t *shift,
                         int8_t *out, int8_t *col) {
  for (int32_t oy = 0; oy < p->oh; oy++) {
    for (int32_t ox = 0; ox < p->ow; ox++) {
      tn_sparse_rows(tn_sparse_col(p, in, oy, ox, col), sw, bias_folded, p->oc, mult, shift,
                     p->out_offset, p->act_min, p->act_max, out);
      out += p->oc;
    }
  }
}

void tn_fc_sparse_s8(int32_t n, int32_t co, const int8_t *in, const tn_sparse_t *sw,
                     const int32_t *bias_folded, int32_t out_offset, const int32_t *mult,
                     const int32_t *shift, int32_t act_min, int32_t act_max, int8_t *out) {
  (void)n;
  tn_sparse_rows(in, sw, bias_folded, co, mult, shift, out_offset, act_min, act_max, out);
}

/* one depthwise output: the stored taps of one channel that fall inside the image */
static inline int32_t tn_dw_taps(const tn_conv_t *p, const int8_t *in, int32_t c,
                                 int32_t iy0, int32_t ix0, const int8_t *v, const uint8_t *g,
                                 int32_t n, int32_t acc) {
  const int32_t kw = p->kw, cn = p->ic, in_off = p->in_offset;
  int32_t ky = 0, kx = 0;
  for (int32_t j = 0; j < n; j++) {
    kx += g[j];
    while (kx >= kw) {
      kx -= kw;
      ky++;
    }
    const int32_t iy = iy0 + ky * p->dh, ix = ix0 + kx * p->dw;
    if (iy < 0 || iy >= p->ih || ix < 0 || ix >= p->iw) continue;
    acc += v[j] * (in[(iy * p->iw + ix) * cn + c] + in_off);
  }
  return acc;
}

void tn_dwconv_sparse_s8(const tn_conv_t *p, const int8_t *in, const tn_sparse_t *sw,
                         const int32_t *bias, const int32_t *mult, const int32_t *shift,
                         int8_t *out) {
  const int32_t ic = p->ic, oh = p->oh, ow = p->ow, dm = p->depth_mult;
  for (int32_t oy = 0; oy < oh; oy++) {
    const int32_t iy0 = oy * p->sh - p->pt;
    for (int32_t ox = 0; ox < ow; ox++) {
      const int32_t ix0 = ox * p->sw - p->pl;
      const int8_t *v = sw->val;
      const uint8_t *g = sw->gap;
      int32_t o = 0;
      for (int32_t c = 0; c < ic; c++) {
        for (int32_t m = 0; m < dm; m++, o++) {
          const int32_t n = sw->cnt[o];
          const int32_t acc = tn_dw_taps(p, in, c, iy0, ix0, v, g, n, bias[o]);
          v += n;
          g += n;
          *out++ = tn_clamp8(tn_requant(acc, mult[o], shift[o]) + p->out_offset, p->act_min,
                             p->act_max);
        }
      }
    }
  }
}

void tn_dwconv_inplace_sparse_s8(const tn_conv_t *p, int8_t *buf, const tn_sparse_t *sw,
                                 const int32_t *bias, const int32_t *mult,
                                 const int32_t *shift, int8_t *tmp) {
  const int32_t cn = p->ic, oh = p->oh, ow = p->ow;
  const int8_t *v = sw->val;
  const uint8_t *g = sw->gap;
  for (int32_t c = 0; c < cn; c++) {
    const int32_t n = sw->cnt[c];
    int8_t *t = tmp;
    for (int32_t oy = 0; oy < oh; oy++) {
      const int32_t iy0 = oy * p->sh - p->pt;
      for (int32_t ox = 0; ox < ow; ox++) {
        const int32_t acc = tn_dw_taps(p, buf, c, iy0, ox * p->sw - p->pl, v, g, n, bias[c]);
        *t++ = tn_clamp8(tn_requant(acc, mult[c], shift[c]) + p->out_offset, p->act_min,
                         p->act_max);
      }
    }
    v += n;
    g += n;
    /* output channel c only overwrites input bytes of channel c (HWC, same C) */
    int8_t *o = buf + c;
    for (int32_t i = 0; i < oh * ow; i++, o += cn) *o = tmp[i];
  }
}

/* ---- bitmask weights ----------------------------------------------------------------- */

/* small loops stay loops: unrolled / vectorised copies would cost more flash than the
 * weights they serve */
#if defined(__clang__)
#define TN_NO_UNROLL _Pragma("clang loop unroll(disable) vectorize(disable)")
#else
#define TN_NO_UNROLL
#endif

/* out[o] for every row o: bias[o] + sum over the set bits j of row o's mask of val * x[j];
 * not inlined: convolution and fully connected share one copy (flash) */
__attribute__((noinline)) static void tn_bitmask_rows(const int8_t *x, const tn_bitmask_t *bw,
                                                      int32_t cols, const int32_t *bias,
                                                      int32_t co, const int32_t *mult,
                                                      const int32_t *shift, int32_t out_offset,
                                                      int32_t act_min, int32_t act_max,
                                                      int8_t *out) {
  const int32_t nb = (cols + 7) >> 3;
  const uint8_t *mk = bw->mask;
  const int8_t *v = bw->val;
  for (int32_t o = 0; o < co; o++) {
    int32_t acc = bias[o];
    const int8_t *xb = x;
    for (int32_t k = 0; k < nb; k++, xb += 8) {
      uint32_t m = mk[k];
      while (m) {
        acc += *v++ * xb[__builtin_ctz(m)];
        m &= m - 1u;
      }
    }
    mk += nb;
    out[o] = tn_clamp8(tn_requant(acc, mult[o], shift[o]) + out_offset, act_min, act_max);
  }
}

void tn_conv2d_bitmask_s8(const tn_conv_t *p, const int8_t *in, const tn_bitmask_t *bw,
                          const int32_t *bias_folded, const int32_t *mult, const int32_t *shift,
                          int8_t *out, int8_t *col) {
  const int32_t cols = p->kh * p->kw * p->ic;
  for (int32_t oy = 0; oy < p->oh; oy++) {
    for (int32_t ox = 0; ox < p->ow; ox++) {
      tn_bitmask_rows(tn_sparse_col(p, in, oy, ox, col), bw, cols, bias_folded, p->oc, mult,
                      shift, p->out_offset, p->act_min, p->act_max, out);
      out += p->oc;
    }
  }
}

void tn_fc_bitmask_s8(int32_t n, int32_t co, const int8_t *in, const tn_bitmask_t *bw,
                      const int32_t *bias_folded, int32_t out_offset, const int32_t *mult,
                      const int32_t *shift, int32_t act_min, int32_t act_max, int8_t *out) {
  tn_bitmask_rows(in, bw, n, bias_folded, co, mult, shift, out_offset, act_min, act_max, out);
}

/* All oh*ow outputs of depthwise output channel o (input channel c) into dst[i * dstride],
 * i = oy*ow + ox.  The row's mask mk is decoded once into its stored taps (weight, offsets);
 * a window inside the image then needs no border checks, and in_offset * sum(w) of the stored
 * taps is added once.  Returns v advanced past the row's values. */
static const int8_t *tn_dw_channel_bits(const tn_conv_t *p, const int8_t *in, int32_t c,
                                        int32_t o, const uint8_t *mk, const int8_t *v,
                                        const int32_t *bias, const int32_t *mult,
                                        const int32_t *shift, int8_t *dst, int32_t dstride) {
  const int32_t kh = p->kh, kw = p->kw, cn = p->ic, ih = p->ih, iw = p->iw;
  const int32_t in_off = p->in_offset, ylast = (kh - 1) * p->dh, xlast = (kw - 1) * p->dw;
  int32_t tw[kh * kw], ty[kh * kw], tx[kh * kw], toff[kh * kw];
  int32_t n = 0, wsum = 0;
  for (int32_t ky = 0, t = 0; ky < kh; ky++) {
    TN_NO_UNROLL
    for (int32_t kx = 0; kx < kw; kx++, t++) {
      if (!((mk[t >> 3] >> (t & 7)) & 1u)) continue;
      tw[n] = *v++;
      ty[n] = ky * p->dh;
      tx[n] = kx * p->dw;
      toff[n] = (ty[n] * iw + tx[n]) * cn;
      wsum += tw[n++];
    }
  }
  const int32_t b_in = bias[o] + in_off * wsum;
  for (int32_t oy = 0; oy < p->oh; oy++) {
    const int32_t iy0 = oy * p->sh - p->pt;
    for (int32_t ox = 0; ox < p->ow; ox++, dst += dstride) {
      const int32_t ix0 = ox * p->sw - p->pl;
      int32_t acc;
      if (iy0 >= 0 && ix0 >= 0 && iy0 + ylast < ih && ix0 + xlast < iw) {
        const int8_t *b = in + (iy0 * iw + ix0) * cn + c;
        acc = b_in;
        TN_NO_UNROLL
        for (int32_t j = 0; j < n; j++) acc += tw[j] * b[toff[j]];
      } else {
        acc = bias[o];
        TN_NO_UNROLL
        for (int32_t j = 0; j < n; j++) {
          const int32_t iy = iy0 + ty[j], ix = ix0 + tx[j];
          if (iy >= 0 && iy < ih && ix >= 0 && ix < iw)
            acc += tw[j] * (in[(iy * iw + ix) * cn + c] + in_off);
        }
      }
      *dst = tn_clamp8(tn_requant(acc, mult[o], shift[o]) + p->out_offset, p->act_min,
                       p->act_max);
    }
  }
  return v;
}

void tn_dwconv_bitmask_s8(const tn_conv_t *p, const int8_t *in, const tn_bitmask_t *bw,
                          const int32_t *bias, const int32_t *mult, const int32_t *shift,
                          int8_t *out) {
  const int32_t dm = p->depth_mult, oc = p->oc, nb = (p->kh * p->kw + 7) >> 3;
  const uint8_t *mk = bw->mask;
  const int8_t *v = bw->val;
  for (int32_t o = 0; o < oc; o++, mk += nb)
    v = tn_dw_channel_bits(p, in, o / dm, o, mk, v, bias, mult, shift, out + o, oc);
}

void tn_dwconv_inplace_bitmask_s8(const tn_conv_t *p, int8_t *buf, const tn_bitmask_t *bw,
                                  const int32_t *bias, const int32_t *mult,
                                  const int32_t *shift, int8_t *tmp) {
  const int32_t cn = p->ic, hw = p->oh * p->ow, nb = (p->kh * p->kw + 7) >> 3;
  const uint8_t *mk = bw->mask;
  const int8_t *v = bw->val;
  for (int32_t c = 0; c < cn; c++, mk += nb) {
    v = tn_dw_channel_bits(p, buf, c, c, mk, v, bias, mult, shift, tmp, 1);
    /* output channel c only overwrites input bytes of channel c (HWC, same C) */
    int8_t *o = buf + c;
    for (int32_t i = 0; i < hw; i++, o += cn) *o = tmp[i];
  }
}
