/* Softmax and log-softmax along any axis (max-subtracted, sums in double), cross-entropy (torch
 * F.cross_entropy, mean reduction) and scaled dot-product attention softmax(q k^T * scale + mask) v
 * (Vaswani et al. 2017, eq. 1; the causal mask of CLIP's text encoder, -inf where j > i).
 * Backward: softmax gx = y (g - sum(g y)), log-softmax gx = g - exp(y) sum(g); a fused kernel when grad mode is
 * off, the same formula in differentiable ops when it is on (create_graph). */
#include "config.h"

#include "ratfw-private.h"

#include <math.h>

/* ---- rows along an axis --------------------------------------------------------------------------------------
 * A tensor is walked as rows: every index of the other dims gives one row of length n along the axis. */

typedef struct {
  int nk;                      /* number of other dims */
  gint64 kshape[RAT_MAX_DIMS]; /* sizes of the other dims (tensor order) */
  int kdim[RAT_MAX_DIMS];      /* which tensor dim each is */
  gint64 rows, n;
  int axis;
  int qdim; /* dim index (among the other dims) of the query position for causal masks, or -1 */
} RowPlan;

static void rows_plan(const RatTensor *t, int axis, RowPlan *p) {
  memset(p, 0, sizeof(*p));
  p->axis = axis;
  p->n = t->shape[axis];
  p->rows = 1;
  p->qdim = -1;
  for (int d = 0; d < t->ndim; d++) {
    if (d == axis) continue;
    if (d == t->ndim - 2) p->qdim = p->nk;
    p->kdim[p->nk] = d;
    p->kshape[p->nk++] = t->shape[d];
    p->rows *= t->shape[d];
  }
}

/* Offset of row r in @t, and (optionally) its index along the query dim. */
static gint64 row_offset(const RowPlan *p, const RatTensor *t, gint64 r, gint64 *qi) {
  gint64 off = t->offset;
  for (int i = p->nk - 1; i >= 0; i--) {
    gint64 idx = r % p->kshape[i];
    r /= p->kshape[i];
    off += idx * t->stride[p->kdim[i]];
    if (i == p->qdim && qi) *qi = idx;
  }
  return off;
}

static RatTensor *empty_like_dense(RatTensor *a) {
  if (rat_tensor_is_dense(a)) return rat_empty_like(a);
  return rat_empty(rat_tensor_shape(a));
}

/* y = softmax(scale * x + mask) or its log, along @axis; causal (axis last): entries j > i are masked. */
static void softmax_kernel(RatTensor *x, RatTensor *y, int axis, gboolean is_log, float scale, gboolean causal) {
  RowPlan p;
  rows_plan(x, axis, &p);
  if (p.rows == 0 || p.n == 0) return;
  const float *X = (const float *)x->storage->data;
  float *Y = (float *)y->storage->data;
  gint64 sx = x->stride[axis], sy = y->stride[axis], n = p.n;
#pragma omp parallel for schedule(static) if (p.rows * n > 32768)
  for (gint64 r = 0; r < p.rows; r++) {
    gint64 qi = 0;
    gint64 ox = row_offset(&p, x, r, &qi), oy = row_offset(&p, y, r, NULL);
    gint64 lim = causal ? MIN(qi + 1, n) : n; /* entries [lim, n) are masked */
    const float *xr = X + ox;
    float *yr = Y + oy;
    float mx = -INFINITY;
    for (gint64 j = 0; j < lim; j++) mx = MAX(mx, scale * xr[j * sx]);
    double sum = 0.0;
    if (is_log) {
      for (gint64 j = 0; j < lim; j++) sum += expf(scale * xr[j * sx] - mx);
      float ls = (float)log(sum); /* (x - max) - log(sum): no rounding of a large max + log(sum) */
      for (gint64 j = 0; j < lim; j++) yr[j * sy] = (scale * xr[j * sx] - mx) - ls;
      for (gint64 j = lim; j < n; j++) yr[j * sy] = -INFINITY;
    } else {
      for (gint64 j = 0; j < lim; j++) {
        float e = expf(scale * xr[j * sx] - mx);
        yr[j * sy] = e;
        sum += e;
      }
      float inv = (float)(1.0 / sum);
      for (gint64 j = 0; j < lim; j++) yr[j * sy] *= inv;
      for (gint64 j = lim; j < n; j++) yr[j * sy] = 0.0f;
    }
  }
}

/* Fused backward (no graph): gx = scale * y (g - sum(g y)) or gx = scale * (g - exp(y) sum(g)). */
static RatTensor *softmax_backward_kernel(RatTensor *g, RatTensor *y, int axis, gboolean is_log, float scale) {
  RatTensor *gx = empty_like_dense(y);
  RowPlan p;
  rows_plan(y, axis, &p);
  if (p.rows == 0 || p.n == 0) return gx;
  const float *G = (const float *)g->storage->data, *Y = (const float *)y->storage->data;
  float *GX = (float *)gx->storage->data;
  gint64 sg = g->stride[axis], sy = y->stride[axis], so = gx->stride[axis], n = p.n;
#pragma omp parallel for schedule(static) if (p.rows * n > 32768)
  for (gint64 r = 0; r < p.rows; r++) {
    const float *gr = G + row_offset(&p, g, r, NULL), *yr = Y + row_offset(&p, y, r, NULL);
    float *outr = GX + row_offset(&p, gx, r, NULL);
    double dot = 0.0;
    if (is_log) {
      for (gint64 j = 0; j < n; j++) dot += gr[j * sg];
      float s = (float)dot;
      for (gint64 j = 0; j < n; j++) outr[j * so] = scale * (gr[j * sg] - expf(yr[j * sy]) * s);
    } else {
      for (gint64 j = 0; j < n; j++) dot += (double)gr[j * sg] * yr[j * sy];
      float s = (float)dot;
      for (gint64 j = 0; j < n; j++) outr[j * so] = scale * yr[j * sy] * (gr[j * sg] - s);
    }
  }
  return gx;
}

static void softmax_backward(RatNode *n, RatTensor *const *gy, RatTensor **gx) {
  if (!rat_node_needs_grad(n, 0)) return;
  int axis = (int)n->i[0];
  gboolean is_log = (gboolean)n->i[1];
  float scale = (float)n->f[0];
  RatTensor *y = rat_node_saved(n, 0), *g = gy[0];
  if (!rat_grad_enabled()) {
    gx[0] = softmax_backward_kernel(g, y, axis, is_log, scale);
    return;
  }
  RatTensor *r;
  if (is_log)
    r = rat_sub(g, rat_mul(rat_exp(y), rat_sum(g, RAT_AXIS(axis), TRUE)));
  else
    r = rat_mul(y, rat_sub(g, rat_sum(rat_mul(g, y), RAT_AXIS(axis), TRUE)));
  gx[0] = scale == 1.0f ? r : rat_mul_scalar(r, scale);
}
static const RatOpDef op_softmax = {.name = "softmax", .n_inputs = 1, .backward = softmax_backward};

static RatTensor *softmax_impl(RatTensor *a, int axis, gboolean is_log, float scale, gboolean causal) {
  rat_check(a->dtype == RAT_DTYPE_F32, "ratfw: softmax of a non-f32 tensor");
  rat_check(a->ndim >= 1, "ratfw: softmax of a 0-d tensor");
  int ax = rat_norm_axis(axis, a->ndim);
  rat_check(!causal || (ax == a->ndim - 1 && a->ndim >= 2),
            "ratfw: causal softmax needs the last axis of a >= 2-d tensor");
  RatTensor *y = empty_like_dense(a);
  softmax_kernel(a, y, ax, is_log, scale, causal);
  RatNode *n = rat_record(&op_softmax, &y, 1, &a, 1);
  if (n) {
    n->i[0] = ax;
    n->i[1] = is_log;
    n->f[0] = scale;
    rat_node_save(n, y);
  }
  return y;
}

RatTensor *rat_softmax(RatTensor *a, int axis) { return softmax_impl(a, axis, FALSE, 1.0f, FALSE); }
RatTensor *rat_log_softmax(RatTensor *a, int axis) { return softmax_impl(a, axis, TRUE, 1.0f, FALSE); }

/* ---- cross-entropy ------------------------------------------------------------------------------------------
 * loss = -mean_n log_softmax(x)[n, t_n]. The pick (gather of one column per row) and its transpose, the scatter,
 * are each other's backward, so the loss differentiates to any order. */

static RatTensor *pick_rows(RatTensor *x, RatTensor *t);
static RatTensor *scatter_rows(RatTensor *g, RatTensor *t, gint64 K);

static void scatter_backward(RatNode *n, RatTensor *const *gy, RatTensor **gx) {
  if (rat_node_needs_grad(n, 0)) gx[0] = pick_rows(gy[0], rat_node_saved(n, 0));
}
static const RatOpDef op_scatter_rows = {.name = "scatter_rows", .n_inputs = 1, .backward = scatter_backward};

static void pick_backward(RatNode *n, RatTensor *const *gy, RatTensor **gx) {
  if (rat_node_needs_grad(n, 0)) gx[0] = scatter_rows(gy[0], rat_node_saved(n, 0), n->in_shape[0].d[1]);
}
static const RatOpDef op_pick_rows = {.name = "pick_rows", .n_inputs = 1, .backward = pick_backward};

/* t: contiguous i32 [N], already range-checked. y[n] = x[n, t[n]]. */
static RatTensor *pick_rows(RatTensor *x, RatTensor *t) {
  gint64 N = x->shape[0];
  RatTensor *y = rat_empty(RAT_SHAPE(N));
  const gint32 *T = rat_tensor_data_i32(t);
  const float *X = (const float *)x->storage->data;
  float *Y = rat_tensor_data(y);
  for (gint64 i = 0; i < N; i++) Y[i] = X[x->offset + i * x->stride[0] + T[i] * x->stride[1]];
  RatNode *n = rat_record(&op_pick_rows, &y, 1, &x, 1);
  if (n) rat_node_save(n, t);
  return y;
}

/* y [N, K] zeros with y[n, t[n]] = g[n]. */
static RatTensor *scatter_rows(RatTensor *g, RatTensor *t, gint64 K) {
  gint64 N = g->shape[0];
  RatTensor *y = rat_zeros(RAT_SHAPE(N, K));
  const gint32 *T = rat_tensor_data_i32(t);
  float *Y = rat_tensor_data(y);
  for (gint64 i = 0; i < N; i++) Y[i * K + T[i]] = rat_tensor_data(g)[i * g->stride[0]];
  RatNode *n = rat_record(&op_scatter_rows, &y, 1, &g, 1);
  if (n) rat_node_save(n, t);
  return y;
}

RatTensor *rat_cross_entropy(RatTensor *logits, RatTensor *targets) {
  if (logits->ndim != 2 || targets->ndim != 1 || targets->shape[0] != logits->shape[0] ||
      targets->dtype != RAT_DTYPE_I32 || logits->dtype != RAT_DTYPE_F32) {
    char *a = rat_tensor_describe(logits), *b = rat_tensor_describe(targets);
    g_error("ratfw: cross_entropy: logits %s and targets %s do not fit (need f32 [N, K] and i32 [N])", a, b);
  }
  gint64 N = logits->shape[0], K = logits->shape[1];
  RatTensor *t = rat_empty_dtype(RAT_DTYPE_I32, RAT_SHAPE(N));
  gint32 *T = rat_tensor_data_i32(t);
  const gint32 *src = (const gint32 *)targets->storage->data + targets->offset;
  for (gint64 i = 0; i < N; i++) {
    T[i] = src[i * targets->stride[0]];
    if (T[i] < 0 || T[i] >= K)
      g_error("ratfw: cross_entropy: target %d of sample %" G_GINT64_FORMAT " is out of range for %" G_GINT64_FORMAT
              " classes",
              T[i], i, K);
  }
  return rat_neg(rat_mean_all(pick_rows(rat_log_softmax(logits, 1), t)));
}

/* ---- scaled dot-product attention ------------------------------------------------------------------------------
 * Composed from two batched GEMMs (k^T is a transposition flag, not a copy) around one fused pass that scales,
 * masks and normalises the scores. */

RatTensor *rat_scaled_dot_product_attention(RatTensor *q, RatTensor *k, RatTensor *v, gboolean causal, float scale) {
  if (q->ndim < 2 || k->ndim != q->ndim || v->ndim != q->ndim || q->shape[q->ndim - 1] != k->shape[k->ndim - 1] ||
      k->shape[k->ndim - 2] != v->shape[v->ndim - 2]) {
    char *a = rat_shape_to_string(rat_tensor_shape(q)), *b = rat_shape_to_string(rat_tensor_shape(k)),
         *c = rat_shape_to_string(rat_tensor_shape(v));
    g_error("ratfw: attention: q %s, k %s, v %s do not fit (need [..., L, D], [..., S, D], [..., S, Dv])", a, b, c);
  }
  RatTensor *s = rat_matmul(q, rat_transpose(k, -1, -2)); /* [..., L, S] */
  RatTensor *p = softmax_impl(s, -1, FALSE, scale, causal);
  return rat_matmul(p, v); /* [..., L, Dv] */
}
