/* Resampling of feature maps [B,C,H,W] as separable linear maps: PyTorch's legacy 'nearest' with an explicit size
 * (src = min(floor(dst * (float)in/out), in-1); reference §2.5, §5.1) and bilinear interpolation as
 * torch.nn.functional.interpolate(mode='bilinear', antialias=False) for either align_corners.
 * Each axis is a table of taps (source index, weight) per destination; the backward applies the transposed tables
 * (a gather per input pixel in a fixed order, so deterministic), and its backward is the forward again. */
#include "config.h"

#include "ratfw-private.h"

#include <math.h>

/* Taps in compressed rows: destination i reads idx[start[i] .. start[i+1]) with weights w. */
typedef struct {
  gint64 n;
  gint64 *start;
  gint64 *idx;
  float *w;
  gboolean unit; /* one tap of weight 1 per destination (nearest forward) */
} Taps;

typedef struct {
  gint ref;
  gint64 in_h, in_w, out_h, out_w;
  Taps fh, fw; /* forward: output index -> input taps */
  Taps bh, bw; /* transposed: input index -> output taps, in increasing output order */
} Plan;

static void taps_clear(Taps *t) {
  g_free(t->start);
  g_free(t->idx);
  g_free(t->w);
}

static Plan *plan_ref(Plan *p) {
  g_atomic_int_inc(&p->ref);
  return p;
}

static void plan_unref(gpointer data) {
  Plan *p = data;
  if (!g_atomic_int_dec_and_test(&p->ref)) return;
  taps_clear(&p->fh);
  taps_clear(&p->fw);
  taps_clear(&p->bh);
  taps_clear(&p->bw);
  g_free(p);
}

static void taps_alloc(Taps *t, gint64 n, gint64 ntaps) {
  t->n = n;
  t->start = g_new0(gint64, n + 1);
  t->idx = g_new(gint64, MAX(ntaps, 1));
  t->w = g_new(float, MAX(ntaps, 1));
}

/* Transpose of f (which reads sources 0..n_src-1): per source, the destinations that read it, ascending. */
static void taps_transpose(const Taps *f, gint64 n_src, Taps *t) {
  gint64 ntaps = f->start[f->n];
  taps_alloc(t, n_src, ntaps);
  t->unit = FALSE;
  for (gint64 k = 0; k < ntaps; k++) t->start[f->idx[k] + 1]++;
  for (gint64 i = 0; i < n_src; i++) t->start[i + 1] += t->start[i];
  gint64 *fill = g_new(gint64, MAX(n_src, 1));
  memcpy(fill, t->start, n_src * sizeof(gint64));
  for (gint64 d = 0; d < f->n; d++)
    for (gint64 k = f->start[d]; k < f->start[d + 1]; k++) {
      gint64 s = f->idx[k], at = fill[s]++;
      t->idx[at] = d;
      t->w[at] = f->w[k];
    }
  g_free(fill);
}

/* torch 1.13 nearest_idx: identity, exact 2x, else floor(dst * scale) in float32 clamped to in-1. */
static gint64 nearest_source(gint64 dst, gint64 in, gint64 out) {
  if (out == in) return dst;
  if (out == 2 * in) return dst >> 1;
  float scale = (float)in / (float)out;
  gint64 s = (gint64)floorf((float)dst * scale);
  return MIN(s, in - 1);
}

static void taps_nearest(Taps *t, gint64 in, gint64 out) {
  taps_alloc(t, out, out);
  t->unit = TRUE;
  for (gint64 d = 0; d < out; d++) {
    t->start[d + 1] = d + 1;
    t->idx[d] = nearest_source(d, in, out);
    t->w[d] = 1.0f;
  }
}

/* torch 1.13 upsample_bilinear2d (float input) index/weight rule, matched weight for weight: the scale is rounded
 * to float32, the source position is computed from it in double, lambda1 rounded to float, lambda0 = 1 - lambda1. */
static void taps_linear(Taps *t, gint64 in, gint64 out, gboolean align_corners) {
  taps_alloc(t, out, 2 * out);
  t->unit = FALSE;
  float scale = align_corners ? (out > 1 ? (float)(in - 1) / (float)(out - 1) : 0.0f) : (float)in / (float)out;
  gint64 k = 0;
  for (gint64 d = 0; d < out; d++) {
    double real = align_corners ? (double)scale * (double)d : (double)scale * ((double)d + 0.5) - 0.5;
    if (real < 0.0) real = 0.0;
    gint64 i0 = MIN((gint64)floor(real), in - 1);
    float l1 = (float)MIN(MAX(real - (double)i0, 0.0), 1.0), l0 = 1.0f - l1;
    gint64 i1 = i0 + (i0 < in - 1 ? 1 : 0);
    t->idx[k] = i0;
    t->w[k++] = l0;
    t->idx[k] = i1;
    t->w[k++] = l1;
    t->start[d + 1] = k;
  }
}

static Plan *plan_new(gint64 in_h, gint64 in_w, gint64 out_h, gint64 out_w, gboolean bilinear, gboolean align) {
  Plan *p = g_new0(Plan, 1);
  p->ref = 1;
  p->in_h = in_h;
  p->in_w = in_w;
  p->out_h = out_h;
  p->out_w = out_w;
  if (bilinear) {
    taps_linear(&p->fh, in_h, out_h, align);
    taps_linear(&p->fw, in_w, out_w, align);
  } else {
    taps_nearest(&p->fh, in_h, out_h);
    taps_nearest(&p->fw, in_w, out_w);
  }
  taps_transpose(&p->fh, in_h, &p->bh);
  taps_transpose(&p->fw, in_w, &p->bw);
  return p;
}

/* ---- kernel ------------------------------------------------------------------------------------------------------ */

/* y[b,c,oy,ox] = sum_{(iy,wy) in th[oy]} sum_{(ix,wx) in tw[ox]} wy*wx * x[b,c,iy,ix], accumulated in float in
 * tap order. x is channels-last or row-major; y (already allocated) has the same layout class. */
static void resample_kernel(RatTensor *x, RatTensor *y, const Taps *th, const Taps *tw, gboolean cl) {
  gint64 B = x->shape[0], C = x->shape[1], IH = x->shape[2], IW = x->shape[3];
  gint64 OH = y->shape[2], OW = y->shape[3];
  const float *xd = rat_tensor_data(x);
  float *yd = rat_tensor_data(y);
  gboolean unit = th->unit && tw->unit;
  int nt = rat_get_num_threads();
  gboolean par = B * C * OH * OW > 32768;
  if (cl) {
#pragma omp parallel for schedule(static) num_threads(nt) if (par)
    for (gint64 r = 0; r < B * OH; r++) {
      gint64 b = r / OH, oy = r % OH;
      const float *xb = xd + b * IH * IW * C;
      float *yr = yd + r * OW * C;
      for (gint64 ox = 0; ox < OW; ox++) {
        float *restrict o = yr + ox * C;
        if (unit) {
          memcpy(o, xb + (th->idx[oy] * IW + tw->idx[ox]) * C, C * sizeof(float));
          continue;
        }
        for (gint64 c = 0; c < C; c++) o[c] = 0.0f;
        for (gint64 ky = th->start[oy]; ky < th->start[oy + 1]; ky++)
          for (gint64 kx = tw->start[ox]; kx < tw->start[ox + 1]; kx++) {
            float wt = th->w[ky] * tw->w[kx];
            const float *restrict s = xb + (th->idx[ky] * IW + tw->idx[kx]) * C;
#pragma omp simd
            for (gint64 c = 0; c < C; c++) o[c] += wt * s[c];
          }
      }
    }
    return;
  }
#pragma omp parallel for schedule(static) num_threads(nt) if (par)
  for (gint64 r = 0; r < B * C * OH; r++) {
    gint64 plane = r / OH, oy = r % OH;
    const float *xp = xd + plane * IH * IW;
    float *restrict o = yd + r * OW;
    if (unit) {
      const float *s = xp + th->idx[oy] * IW;
      for (gint64 ox = 0; ox < OW; ox++) o[ox] = s[tw->idx[ox]];
      continue;
    }
    for (gint64 ox = 0; ox < OW; ox++) {
      float acc = 0.0f;
      for (gint64 ky = th->start[oy]; ky < th->start[oy + 1]; ky++) {
        const float *s = xp + th->idx[ky] * IW;
        for (gint64 kx = tw->start[ox]; kx < tw->start[ox + 1]; kx++) acc += th->w[ky] * tw->w[kx] * s[tw->idx[kx]];
      }
      o[ox] = acc;
    }
  }
}

/* ---- the op: forward (transposed FALSE) or its adjoint (TRUE); each is the other's backward ---------------------- */

static RatTensor *resample_apply(RatTensor *x, Plan *p, gboolean transposed);

static void resample_backward(RatNode *n, RatTensor *const *gy, RatTensor **gx) {
  if (rat_node_needs_grad(n, 0)) gx[0] = resample_apply(gy[0], n->ctx, !n->i[0]);
}
static const RatOpDef op_resample = {
    .name = "resample", .n_inputs = 1, .backward = resample_backward, .ctx_free = plan_unref};

static RatTensor *resample_apply(RatTensor *x, Plan *p, gboolean transposed) {
  gint64 ih = transposed ? p->out_h : p->in_h, iw = transposed ? p->out_w : p->in_w;
  gint64 oh = transposed ? p->in_h : p->out_h, ow = transposed ? p->in_w : p->out_w;
  if (x->ndim != 4 || x->dtype != RAT_DTYPE_F32 || x->shape[2] != ih || x->shape[3] != iw) {
    char *d = rat_tensor_describe(x);
    g_error("ratfw: resample expects an f32 input [B,C,%" G_GINT64_FORMAT ",%" G_GINT64_FORMAT "], got %s", ih, iw, d);
  }
  gboolean cl = rat_tensor_is_nhwc(x) && !rat_tensor_is_contiguous(x);
  if (!cl) x = rat_contiguous(x);
  RatShape s = RAT_SHAPE(x->shape[0], x->shape[1], oh, ow);
  RatTensor *y = cl ? rat_empty_nhwc(s) : rat_empty(s);
  if (rat_tensor_numel(y) > 0) {
    if (transposed)
      resample_kernel(x, y, &p->bh, &p->bw, cl);
    else
      resample_kernel(x, y, &p->fh, &p->fw, cl);
  }
  RatNode *n = rat_record(&op_resample, &y, 1, &x, 1);
  if (n) {
    n->ctx = plan_ref(p);
    n->i[0] = transposed;
  }
  return y;
}

static RatTensor *resample(RatTensor *x, int out_h, int out_w, gboolean bilinear, gboolean align) {
  if (x->ndim != 4 || out_h <= 0 || out_w <= 0 || x->shape[2] <= 0 || x->shape[3] <= 0) {
    char *d = rat_tensor_describe(x);
    g_error("ratfw: %s to %dx%d: need a [B,C,H,W] input with H, W > 0 and a positive size, got %s",
            bilinear ? "resize_bilinear" : "upsample_nearest", out_h, out_w, d);
  }
  Plan *p = plan_new(x->shape[2], x->shape[3], out_h, out_w, bilinear, align);
  RatTensor *y = resample_apply(x, p, FALSE);
  plan_unref(p);
  return y;
}

RatTensor *rat_upsample_nearest(RatTensor *x, int out_h, int out_w) { return resample(x, out_h, out_w, FALSE, FALSE); }

RatTensor *rat_resize_bilinear(RatTensor *x, int out_h, int out_w, gboolean align_corners) {
  return resample(x, out_h, out_w, TRUE, align_corners);
}
