/* tinyNAS extra int8 kernels; see tn_kernels_ext.h. */
#include "tn_kernels_ext.h"

void tn_lut_s8(int32_t n, const int8_t *lut, const int8_t *in, int8_t *out) {
  for (int32_t i = 0; i < n; ++i) out[i] = lut[(int32_t)in[i] + 128];
}

void tn_quantize_f32_s8(int32_t n, const int32_t *thr, const int32_t *in, int8_t *out) {
  for (int32_t i = 0; i < n; ++i) {
    const int32_t b = in[i];
    const int32_t key = b >= 0 ? b : -(b & 0x7fffffff);
    int32_t lo = 0, hi = 255;            /* count of thresholds <= key, in [lo, hi] */
    while (lo < hi) {
      const int32_t mid = (lo + hi) >> 1;
      if (thr[mid] <= key) lo = mid + 1; else hi = mid;
    }
    out[i] = (int8_t)(lo - 128);
  }
}

void tn_dequantize_s8_f32(int32_t n, const int32_t *table, const int8_t *in, int32_t *out) {
  for (int32_t i = 0; i < n; ++i) out[i] = table[(int32_t)in[i] + 128];
}

void tn_pad_s8(const tn_pad_t *p, const int8_t *in, int8_t *out) {
  const int32_t total = p->od[0] * p->od[1] * p->od[2] * p->od[3];
  for (int32_t i = 0; i < total; ++i) out[i] = (int8_t)p->value;
  for (int32_t a = 0; a < p->id[0]; ++a)
    for (int32_t b = 0; b < p->id[1]; ++b)
      for (int32_t c = 0; c < p->id[2]; ++c) {
        const int8_t *src = in + ((a * p->id[1] + b) * p->id[2] + c) * p->id[3];
        int8_t *dst = out + (((a + p->pb[0]) * p->od[1] + b + p->pb[1]) * p->od[2] + c + p->pb[2])
                                * p->od[3] + p->pb[3];
        for (int32_t d = 0; d < p->id[3]; ++d) dst[d] = src[d];
      }
}

void tn_concat_s8(int32_t n_in, int32_t outer, const int8_t *const *ins, const int32_t *inner,
                  int8_t *out) {
  for (int32_t o = 0; o < outer; ++o)
    for (int32_t i = 0; i < n_in; ++i) {
      const int8_t *src = ins[i] + o * inner[i];
      for (int32_t j = 0; j < inner[i]; ++j) *out++ = src[j];
    }
}

void tn_mul_s8(const tn_mul_t *p, const int8_t *a, const int8_t *b, int8_t *out) {
  for (int32_t i0 = 0; i0 < p->d[0]; ++i0)
    for (int32_t i1 = 0; i1 < p->d[1]; ++i1)
      for (int32_t i2 = 0; i2 < p->d[2]; ++i2) {
        const int8_t *pa = a + i0 * p->sa[0] + i1 * p->sa[1] + i2 * p->sa[2];
        const int8_t *pb = b + i0 * p->sb[0] + i1 * p->sb[1] + i2 * p->sb[2];
        for (int32_t i3 = 0; i3 < p->d[3]; ++i3) {
          const int32_t va = (int32_t)pa[i3 * p->sa[3]] + p->a_offset;
          const int32_t vb = (int32_t)pb[i3 * p->sb[3]] + p->b_offset;
          const int32_t r = tn_requant(va * vb, p->mult, p->shift) + p->out_offset;
          *out++ = tn_clamp8(r, p->act_min, p->act_max);
        }
      }
}

void tn_store_const(int8_t *dst, const int8_t *src, int32_t n) {
  for (int32_t i = 0; i < n; ++i) dst[i] = src[i];
}

void tn_slice_s8(const tn_slice_t *p, const int8_t *in, int8_t *out) {
  for (int32_t a = 0; a < p->len[0]; ++a) {
    const int32_t i0 = p->start[0] + a * p->step[0];
    for (int32_t b = 0; b < p->len[1]; ++b) {
      const int32_t i1 = i0 * p->id[1] + p->start[1] + b * p->step[1];
      for (int32_t c = 0; c < p->len[2]; ++c) {
        const int32_t i2 = i1 * p->id[2] + p->start[2] + c * p->step[2];
        const int8_t *src = in + i2 * p->id[3] + p->start[3];
        for (int32_t d = 0; d < p->len[3]; ++d) *out++ = src[d * p->step[3]];
      }
    }
  }
}
