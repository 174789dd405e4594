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

void tn_conv2d_sparse_s8(const tn_conv_t *p, const int8_t *in, const tn_sparse_t *sw,
                         const int32_t *bias_folded, const int32_t *mult, const int32_t *shift,
                         int8_t *out, int8_t *col) {
  const int32_t ih = p->ih, iw = p->iw, ic = p->ic, oh = p->oh, ow = p->ow, oc = p->oc;
  const int32_t kh = p->kh, kw = p->kw;
  const int8_t pad_value = (int8_t)(-p->in_offset);
  const int direct = (kh == 1 && kw == 1 && p->pt == 0 && p->pl == 0);
  for (int32_t oy = 0; oy < oh; oy++) {
    const int32_t iy0 = oy * p->sh - p->pt;
    for (int32_t ox = 0; ox < ow; ox++) {
      const int32_t ix0 = ox * p->sw - p->pl;
      const int8_t *x;
      if (direct) {
        x = in + (iy0 * iw + ix0) * ic;
      } else {
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
      tn_sparse_rows(x, sw, bias_folded, oc, mult, shift, p->out_offset, p->act_min,
                     p->act_max, out);
      out += oc;
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
