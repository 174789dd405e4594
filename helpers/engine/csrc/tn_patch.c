/* tinyNAS patch-based inference helpers (MCUNetV2-style): run one kernel over one patch,
 * output row by row into a buffer whose rows may be wider than the patch (the full split
 * output), reading an input buffer that may hold more than the patch needs.
 *
 * The generated code gives each call a tn_conv_t / tn_pool_t with the patch's local shape:
 * ih, iw = the input buffer's region, oh, ow = the patch's output region, pt, pl = the
 * image's padding at an image border and a negative offset (skip rows / columns of the
 * buffer) inside it.  Each output row r runs as its own call with oh = 1; a negative top
 * pad becomes a pointer offset so every call sees pt >= 0 (and a 1x1 convolution, whose
 * column offset the generator also folds into the pointer, keeps its direct DSP path).
 * Taps outside the buffer are outside the image by construction, so they read as padding,
 * exactly as in the layer-by-layer kernels: bit-exact with TFLite-Micro. */
#include "tn_kernels.h"

enum { TN_CONV = 0, TN_CONV_DSP = 1, TN_DW = 2, TN_DW_DSP = 3 };
enum { TN_AVGPOOL = 0, TN_MAXPOOL = 1 };

/* Field by field: a struct assignment would call __aeabi_memcpy4, which has no libc here. */
static void tn_conv_copy(tn_conv_t *q, const tn_conv_t *p) {
  q->ih = p->ih; q->iw = p->iw; q->ic = p->ic; q->oh = p->oh; q->ow = p->ow; q->oc = p->oc;
  q->kh = p->kh; q->kw = p->kw; q->sh = p->sh; q->sw = p->sw; q->dh = p->dh; q->dw = p->dw;
  q->pt = p->pt; q->pl = p->pl; q->depth_mult = p->depth_mult; q->in_offset = p->in_offset;
  q->out_offset = p->out_offset; q->act_min = p->act_min; q->act_max = p->act_max;
}

static void tn_pool_copy(tn_pool_t *q, const tn_pool_t *p) {
  q->ih = p->ih; q->iw = p->iw; q->c = p->c; q->oh = p->oh; q->ow = p->ow; q->kh = p->kh;
  q->kw = p->kw; q->sh = p->sh; q->sw = p->sw; q->pt = p->pt; q->pl = p->pl;
  q->act_min = p->act_min; q->act_max = p->act_max;
}

void tn_patch_conv_s8(int32_t kind, const tn_conv_t *p, const int8_t *in, const int8_t *w,
                      const int32_t *bias, const int32_t *mult, const int32_t *shift,
                      int8_t *out, int32_t out_stride, int8_t *col) {
  for (int32_t r = 0; r < p->oh; r++) {
    tn_conv_t q;
    tn_conv_copy(&q, p);
    const int8_t *x = in;
    q.oh = 1;
    q.pt = p->pt - r * p->sh;
    if (q.pt < 0) {
      x += (-q.pt) * p->iw * p->ic;
      q.ih += q.pt;
      q.pt = 0;
    }
    int8_t *o = out + r * out_stride;
    switch (kind) {
      case TN_CONV: tn_conv2d_s8(&q, x, w, bias, mult, shift, o); break;
#ifdef TN_PATCH_DSP
      case TN_CONV_DSP: tn_conv2d_s8_dsp(&q, x, w, bias, mult, shift, o, col); break;
      case TN_DW_DSP: tn_dwconv_s8_dsp(&q, x, w, bias, mult, shift, o); break;
#endif
      default: tn_dwconv_s8(&q, x, w, bias, mult, shift, o); break;
    }
  }
  (void)col;
}

void tn_patch_pool_s8(int32_t kind, const tn_pool_t *p, const int8_t *in, int8_t *out,
                      int32_t out_stride) {
  for (int32_t r = 0; r < p->oh; r++) {
    tn_pool_t q;
    tn_pool_copy(&q, p);
    const int8_t *x = in;
    q.oh = 1;
    q.pt = p->pt - r * p->sh;
    if (q.pt < 0) {
      x += (-q.pt) * p->iw * p->c;
      q.ih += q.pt;
      q.pt = 0;
    }
    if (kind == TN_AVGPOOL) tn_avgpool_s8(&q, x, out + r * out_stride);
    else tn_maxpool_s8(&q, x, out + r * out_stride);
  }
}

/* p->n = the patch's row length (columns x channels); rows of a, b, out at their strides. */
void tn_patch_add_s8(const tn_add_t *p, int32_t rows, const int8_t *a, int32_t a_stride,
                     const int8_t *b, int32_t b_stride, int8_t *out, int32_t out_stride) {
  for (int32_t r = 0; r < rows; r++)
    tn_add_s8(p, a + r * a_stride, b + r * b_stride, out + r * out_stride);
}
