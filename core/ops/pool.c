/* Average pooling (torch.nn.functional.avg_pool2d with padding 0, and adaptive pooling to 1x1) in plain C on
 * channels-last or row-major maps. Both directions are linear: the backward of avg_pool2d is avg_pool_backward
 * (spread each gradient over its window / k^2), and the backward of that is avg_pool2d again. Deterministic:
 * every output element is summed by one thread in a fixed order. */
#include "config.h"

#include "ratfw-private.h"

/* x [B,C,H,W] (NHWC or row-major) -> y [B,C,OH,OW] of the same layout. */
static void pool_forward(RatTensor *x, RatTensor *y, int k, int s) {
  gint64 B = x->shape[0], C = x->shape[1], H = x->shape[2], W = x->shape[3];
  gint64 OH = y->shape[2], OW = y->shape[3];
  const float *X = rat_tensor_data(x);
  float *Y = rat_tensor_data(y);
  const float scale = 1.0f / (float)(k * k);
  gboolean nhwc = rat_tensor_is_nhwc(x) && C > 1;
  int nt = rat_get_num_threads();
  gboolean par = B * C * H * W > 32768;
  if (nhwc) {
#pragma omp parallel for schedule(static) num_threads(nt) if (par)
    for (gint64 r = 0; r < B * OH; r++) {
      gint64 b = r / OH, oh = r % OH;
      for (gint64 ow = 0; ow < OW; ow++) {
        float *yp = Y + ((b * OH + oh) * OW + ow) * C;
        for (gint64 c = 0; c < C; c++) yp[c] = 0.0f;
        for (int ky = 0; ky < k; ky++)
          for (int kx = 0; kx < k; kx++) {
            const float *xp = X + ((b * H + oh * s + ky) * W + ow * s + kx) * C;
            for (gint64 c = 0; c < C; c++) yp[c] += xp[c];
          }
        for (gint64 c = 0; c < C; c++) yp[c] *= scale;
      }
    }
    return;
  }
#pragma omp parallel for schedule(static) num_threads(nt) if (par)
  for (gint64 plane = 0; plane < B * C; plane++) {
    const float *xp = X + plane * H * W;
    float *yp = Y + plane * OH * OW;
    for (gint64 oh = 0; oh < OH; oh++)
      for (gint64 ow = 0; ow < OW; ow++) {
        float acc = 0.0f;
        for (int ky = 0; ky < k; ky++)
          for (int kx = 0; kx < k; kx++) acc += xp[(oh * s + ky) * W + ow * s + kx];
        yp[oh * OW + ow] = acc * scale;
      }
  }
}

/* Windows covering input row h: oh in [lo, hi] (empty when lo > hi). */
static void cover(gint64 h, int k, int s, gint64 OH, gint64 *lo, gint64 *hi) {
  gint64 a = h - k + 1;
  *lo = a <= 0 ? 0 : (a + s - 1) / s;
  *hi = MIN(h / s, OH - 1);
}

/* g [B,C,OH,OW] -> gx [B,C,H,W] of the same layout: gx = sum over covering windows of g / k^2 (a gather). */
static void pool_backward(RatTensor *g, RatTensor *gx, int k, int s) {
  gint64 B = gx->shape[0], C = gx->shape[1], H = gx->shape[2], W = gx->shape[3];
  gint64 OH = g->shape[2], OW = g->shape[3];
  const float *G = rat_tensor_data(g);
  float *X = rat_tensor_data(gx);
  const float scale = 1.0f / (float)(k * k);
  gboolean nhwc = rat_tensor_is_nhwc(g) && C > 1;
  int nt = rat_get_num_threads();
  gboolean par = B * C * H * W > 32768;
  if (nhwc) {
#pragma omp parallel for schedule(static) num_threads(nt) if (par)
    for (gint64 r = 0; r < B * H; r++) {
      gint64 b = r / H, h = r % H, oh0, oh1;
      cover(h, k, s, OH, &oh0, &oh1);
      for (gint64 w = 0; w < W; w++) {
        gint64 ow0, ow1;
        cover(w, k, s, OW, &ow0, &ow1);
        float *xp = X + ((b * H + h) * W + w) * C;
        for (gint64 c = 0; c < C; c++) xp[c] = 0.0f;
        for (gint64 oh = oh0; oh <= oh1; oh++)
          for (gint64 ow = ow0; ow <= ow1; ow++) {
            const float *gp = G + ((b * OH + oh) * OW + ow) * C;
            for (gint64 c = 0; c < C; c++) xp[c] += gp[c];
          }
        for (gint64 c = 0; c < C; c++) xp[c] *= scale;
      }
    }
    return;
  }
#pragma omp parallel for schedule(static) num_threads(nt) if (par)
  for (gint64 plane = 0; plane < B * C; plane++) {
    const float *gp = G + plane * OH * OW;
    float *xp = X + plane * H * W;
    for (gint64 h = 0; h < H; h++) {
      gint64 oh0, oh1;
      cover(h, k, s, OH, &oh0, &oh1);
      for (gint64 w = 0; w < W; w++) {
        gint64 ow0, ow1;
        cover(w, k, s, OW, &ow0, &ow1);
        float acc = 0.0f;
        for (gint64 oh = oh0; oh <= oh1; oh++)
          for (gint64 ow = ow0; ow <= ow1; ow++) acc += gp[oh * OW + ow];
        xp[h * W + w] = acc * scale;
      }
    }
  }
}

/* Channels-last inputs stay channels-last; anything else becomes row-major. No autograd. */
static RatTensor *dense_input(RatTensor *t) {
  rat_check(t->ndim == 4 && t->dtype == RAT_DTYPE_F32, "ratfw: pooling needs a 4-D f32 tensor");
  if (rat_tensor_is_nhwc(t) || rat_tensor_is_contiguous(t)) return t;
  RatTensor *r;
  RAT_NO_GRAD_BEGIN
  r = t->stride[1] == 1 ? rat_to_nhwc(t) : rat_contiguous(t);
  RAT_NO_GRAD_END
  return r;
}

static RatTensor *empty_like_layout(RatShape s, const RatTensor *like) {
  return rat_tensor_is_nhwc(like) && like->shape[1] > 1 ? rat_empty_nhwc(s) : rat_empty(s);
}

static RatTensor *avg_pool_backward(RatTensor *g, RatShape in_shape, int k, int s);

static void avg_pool_bwd(RatNode *n, RatTensor *const *gy, RatTensor **gx) {
  if (rat_node_needs_grad(n, 0)) gx[0] = avg_pool_backward(gy[0], n->in_shape[0], (int)n->i[0], (int)n->i[1]);
}
static const RatOpDef op_avg_pool = {.name = "avg_pool2d", .n_inputs = 1, .backward = avg_pool_bwd};

RatTensor *rat_avg_pool2d(RatTensor *x, int k, int s) {
  rat_check(x->ndim == 4 && k >= 1 && s >= 1 && x->shape[2] >= k && x->shape[3] >= k,
            "ratfw: rat_avg_pool2d: kernel %d stride %d on a %d-d input of size %" G_GINT64_FORMAT "x%" G_GINT64_FORMAT,
            k, s, x->ndim, x->ndim == 4 ? x->shape[2] : 0, x->ndim == 4 ? x->shape[3] : 0);
  RatTensor *xd = dense_input(x);
  RatShape os = RAT_SHAPE(x->shape[0], x->shape[1], (x->shape[2] - k) / s + 1, (x->shape[3] - k) / s + 1);
  RatTensor *y = empty_like_layout(os, xd);
  pool_forward(xd, y, k, s);
  RatNode *n = rat_record(&op_avg_pool, &y, 1, &x, 1);
  if (n) {
    n->i[0] = k;
    n->i[1] = s;
  }
  return y;
}

static void avg_pool_bwd_bwd(RatNode *n, RatTensor *const *gy, RatTensor **gx) {
  if (rat_node_needs_grad(n, 0)) gx[0] = rat_avg_pool2d(gy[0], (int)n->i[0], (int)n->i[1]);
}
static const RatOpDef op_avg_pool_bwd = {.name = "avg_pool2d_backward", .n_inputs = 1, .backward = avg_pool_bwd_bwd};

static RatTensor *avg_pool_backward(RatTensor *g, RatShape in_shape, int k, int s) {
  RatTensor *gd = dense_input(g);
  RatTensor *gx = empty_like_layout(in_shape, gd);
  pool_backward(gd, gx, k, s);
  RatNode *n = rat_record(&op_avg_pool_bwd, &gx, 1, &g, 1);
  if (n) {
    n->i[0] = k;
    n->i[1] = s;
  }
  return gx;
}

RatTensor *rat_adaptive_avg_pool2d_1(RatTensor *x) {
  rat_check(x->ndim == 4, "ratfw: rat_adaptive_avg_pool2d_1 needs a 4-D input");
  return rat_mean(x, RAT_AXIS(2) | RAT_AXIS(3), TRUE);
}
