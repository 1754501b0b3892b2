/* Network pieces for the CLIP transformer and the RAT LSTM: layer norm (Ba et al. 2016; torch F.layer_norm, biased
 * variance), embedding lookup, the LSTM cell (Hochreiter & Schmidhuber 1997, torch.nn.LSTMCell gate order i, f, g, o:
 * c' = f c + i g, h' = o tanh(c')) and cosine similarity (torch 1.13: each squared norm clamped at eps^2).
 * Fused kernels in the forward; backward in differentiable ops, or a fused kernel when grad mode is off. */
#include "config.h"

#include "ratfw-private.h"

#include <math.h>

static RatTensor *dense_copy(RatTensor *t) {
  RatTensor *c;
  RAT_NO_GRAD_BEGIN
  c = rat_contiguous(t);
  RAT_NO_GRAD_END
  return c;
}

/* Contiguous f32 copy of a 1-D tensor (or NULL), for kernels. */
static float *vec_read(RatTensor *t) {
  if (!t) return NULL;
  float *v = g_new(float, MAX(rat_tensor_numel(t), 1));
  rat_tensor_read(t, v);
  return v;
}

/* ---- layer norm ---------------------------------------------------------------------------------------------
 * y = (x - mean) * rstd * w + b over the last dim E, rstd = 1 / sqrt(var + eps). Backward with xhat = (x-mean)*rstd,
 * gxhat = g w: gx = rstd (gxhat - mean(gxhat) - xhat mean(gxhat xhat)), gw = sum(g xhat), gb = sum(g). */

#define LN_CHUNK 32 /* rows per partial sum of gw, gb: fixed, so the result does not depend on the thread count */

static void ln_backward_kernel(const float *X, const float *G, const float *W, const float *mean, const float *rstd,
                               gint64 rows, gint64 E, float *GX, float *GW, float *GB) {
  gint64 nchunk = (rows + LN_CHUNK - 1) / LN_CHUNK;
  double *pw = (GW || GB) ? g_new0(double, 2 * nchunk * E) : NULL;
#pragma omp parallel for schedule(static) if (rows * E > 32768)
  for (gint64 c = 0; c < nchunk; c++) {
    for (gint64 r = c * LN_CHUNK; r < MIN(rows, (c + 1) * LN_CHUNK); r++) {
      const float *x = X + r * E, *g = G + r * E;
      float mu = mean[r], rs = rstd[r];
      double s1 = 0.0, s2 = 0.0;
      for (gint64 j = 0; j < E; j++) {
        float xh = (x[j] - mu) * rs, gh = g[j] * (W ? W[j] : 1.0f);
        s1 += gh;
        s2 += (double)gh * xh;
        if (pw) {
          pw[(2 * c) * E + j] += (double)g[j] * xh;
          pw[(2 * c + 1) * E + j] += g[j];
        }
      }
      if (GX) {
        float m1 = (float)(s1 / E), m2 = (float)(s2 / E);
        for (gint64 j = 0; j < E; j++) {
          float xh = (x[j] - mu) * rs, gh = g[j] * (W ? W[j] : 1.0f);
          GX[r * E + j] = rs * (gh - m1 - xh * m2);
        }
      }
    }
  }
  if (pw) {
    for (gint64 j = 0; j < E; j++) {
      double aw = 0.0, ab = 0.0;
      for (gint64 c = 0; c < nchunk; c++) {
        aw += pw[(2 * c) * E + j];
        ab += pw[(2 * c + 1) * E + j];
      }
      if (GW) GW[j] = (float)aw;
      if (GB) GB[j] = (float)ab;
    }
    g_free(pw);
  }
}

static void layer_norm_backward(RatNode *n, RatTensor *const *gy, RatTensor **gx) {
  RatTensor *x = rat_node_saved(n, 0), *w = rat_node_saved(n, 1), *g = gy[0];
  float eps = (float)n->f[0];
  gint64 E = x->shape[x->ndim - 1];
  guint lead = (1u << (x->ndim - 1)) - 1u;
  if (!rat_grad_enabled()) {
    RatTensor *mean = rat_node_saved(n, 2), *rstd = rat_node_saved(n, 3);
    RatTensor *xd = rat_contiguous(x), *gd = rat_contiguous(g);
    gint64 rows = E ? rat_tensor_numel(x) / E : 0;
    RatTensor *tx = rat_node_needs_grad(n, 0) ? rat_empty(rat_tensor_shape(x)) : NULL;
    RatTensor *tw = rat_node_needs_grad(n, 1) ? rat_empty(RAT_SHAPE(E)) : NULL;
    RatTensor *tb = rat_node_needs_grad(n, 2) ? rat_empty(RAT_SHAPE(E)) : NULL;
    float *W = vec_read(w);
    ln_backward_kernel(rat_tensor_data(xd), rat_tensor_data(gd), W, rat_tensor_data(mean), rat_tensor_data(rstd),
                       rows, E, tx ? rat_tensor_data(tx) : NULL, tw ? rat_tensor_data(tw) : NULL,
                       tb ? rat_tensor_data(tb) : NULL);
    g_free(W);
    gx[0] = tx;
    gx[1] = tw;
    gx[2] = tb;
    return;
  }
  /* create_graph: the same formulas in recorded ops, statistics recomputed from x so they are differentiable */
  guint last = RAT_AXIS(x->ndim - 1);
  RatTensor *xc = rat_sub(x, rat_mean(x, last, TRUE));
  RatTensor *rstd = rat_rsqrt(rat_add_scalar(rat_mean(rat_square(xc), last, TRUE), eps));
  RatTensor *xhat = rat_mul(xc, rstd);
  if (rat_node_needs_grad(n, 0)) {
    RatTensor *gh = w ? rat_mul(g, w) : g;
    RatTensor *t = rat_sub(rat_sub(gh, rat_mean(gh, last, TRUE)),
                           rat_mul(xhat, rat_mean(rat_mul(gh, xhat), last, TRUE)));
    gx[0] = rat_mul(t, rstd);
  }
  if (rat_node_needs_grad(n, 1)) gx[1] = rat_reshape(rat_sum(rat_mul(g, xhat), lead, FALSE), RAT_SHAPE(E));
  if (rat_node_needs_grad(n, 2)) gx[2] = rat_reshape(rat_sum(g, lead, FALSE), RAT_SHAPE(E));
}
static const RatOpDef op_layer_norm = {.name = "layer_norm", .n_inputs = 3, .backward = layer_norm_backward};

RatTensor *rat_layer_norm(RatTensor *x, RatTensor *weight, RatTensor *bias, float eps) {
  rat_check(x->dtype == RAT_DTYPE_F32 && x->ndim >= 1, "ratfw: layer_norm needs an f32 tensor of at least 1 dim");
  gint64 E = x->shape[x->ndim - 1];
  if ((weight && (weight->ndim != 1 || weight->shape[0] != E)) || (bias && (bias->ndim != 1 || bias->shape[0] != E))) {
    char *a = rat_shape_to_string(rat_tensor_shape(x));
    g_error("ratfw: layer_norm: weight/bias must be [%" G_GINT64_FORMAT "] for input %s", E, a);
  }
  RatTensor *xd = dense_copy(x);
  gint64 rows = E ? rat_tensor_numel(x) / E : 0;
  RatTensor *y = rat_empty(rat_tensor_shape(x));
  RatTensor *mean = rat_empty(RAT_SHAPE(rows)), *rstd = rat_empty(RAT_SHAPE(rows));
  const float *X = rat_tensor_data(xd);
  float *Y = rat_tensor_data(y), *MU = rat_tensor_data(mean), *RS = rat_tensor_data(rstd);
  float *W = vec_read(weight), *B = vec_read(bias);
#pragma omp parallel for schedule(static) if (rows * E > 32768)
  for (gint64 r = 0; r < rows; r++) {
    const float *xr = X + r * E;
    double s = 0.0, s2 = 0.0;
    for (gint64 j = 0; j < E; j++) s += xr[j];
    double mu = s / E;
    for (gint64 j = 0; j < E; j++) s2 += (xr[j] - mu) * (xr[j] - mu);
    float m = (float)mu, rs = (float)(1.0 / sqrt(s2 / E + eps));
    MU[r] = m;
    RS[r] = rs;
    float *yr = Y + r * E;
    for (gint64 j = 0; j < E; j++) {
      float v = (xr[j] - m) * rs;
      if (W) v *= W[j];
      if (B) v += B[j];
      yr[j] = v;
    }
  }
  g_free(W);
  g_free(B);
  RatTensor *in[3] = {x, weight, bias};
  RatNode *n = rat_record(&op_layer_norm, &y, 1, in, 3);
  if (n) {
    n->f[0] = eps;
    rat_node_save(n, x);
    rat_node_save(n, weight);
    rat_node_save(n, mean);
    rat_node_save(n, rstd);
  }
  return y;
}

/* ---- embedding ------------------------------------------------------------------------------------------------
 * y[..., :] = W[id, :]. Backward: scatter-add of the output gradient into the rows of W (columns split across
 * threads, ids always added in order: deterministic); the scatter's own backward is the lookup again. */

static RatTensor *embedding_backward_op(RatTensor *g, RatTensor *ids, gint64 V);

static void embedding_backward(RatNode *n, RatTensor *const *gy, RatTensor **gx) {
  if (rat_node_needs_grad(n, 0)) gx[0] = embedding_backward_op(gy[0], rat_node_saved(n, 0), n->in_shape[0].d[0]);
}
static const RatOpDef op_embedding = {.name = "embedding", .n_inputs = 1, .backward = embedding_backward};

static void embedding_bwd_backward(RatNode *n, RatTensor *const *gy, RatTensor **gx) {
  if (rat_node_needs_grad(n, 0)) gx[0] = rat_embedding(gy[0], rat_node_saved(n, 0));
}
static const RatOpDef op_embedding_bwd = {.name = "embedding_backward", .n_inputs = 1,
                                          .backward = embedding_bwd_backward};

/* ids: contiguous i32 (checked). g [..., E] -> [V, E]. */
static RatTensor *embedding_backward_op(RatTensor *g, RatTensor *ids, gint64 V) {
  gint64 E = g->shape[g->ndim - 1], N = rat_tensor_numel(ids);
  RatTensor *gd = dense_copy(g);
  RatTensor *y = rat_zeros(RAT_SHAPE(V, E));
  const gint32 *I = rat_tensor_data_i32(ids);
  const float *G = rat_tensor_data(gd);
  float *Y = rat_tensor_data(y);
  const gint64 CH = 64;
  gint64 nchunk = (E + CH - 1) / CH;
#pragma omp parallel for schedule(static) if (N * E > 32768)
  for (gint64 c = 0; c < nchunk; c++) {
    gint64 e0 = c * CH, e1 = MIN(E, e0 + CH);
    for (gint64 i = 0; i < N; i++) {
      float *dst = Y + (gint64)I[i] * E;
      const float *src = G + i * E;
      for (gint64 e = e0; e < e1; e++) dst[e] += src[e];
    }
  }
  RatNode *n = rat_record(&op_embedding_bwd, &y, 1, &g, 1);
  if (n) rat_node_save(n, ids);
  return y;
}

RatTensor *rat_embedding(RatTensor *weight, RatTensor *ids) {
  if (weight->ndim != 2 || weight->dtype != RAT_DTYPE_F32 || ids->dtype != RAT_DTYPE_I32 ||
      ids->ndim + 1 > RAT_MAX_DIMS) {
    char *a = rat_tensor_describe(weight), *b = rat_tensor_describe(ids);
    g_error("ratfw: embedding: weight %s and ids %s do not fit (need f32 [V, E] and i32 ids)", a, b);
  }
  gint64 V = weight->shape[0], E = weight->shape[1], N = rat_tensor_numel(ids);
  /* contiguous ids, range-checked */
  RatTensor *idc = rat_empty_dtype(RAT_DTYPE_I32, rat_tensor_shape(ids));
  gint32 *I = rat_tensor_data_i32(idc);
  {
    gint64 idx[RAT_MAX_DIMS] = {0};
    const gint32 *src = (const gint32 *)ids->storage->data;
    for (gint64 k = 0; k < N; k++) {
      gint64 off = ids->offset;
      for (int d = 0; d < ids->ndim; d++) off += idx[d] * ids->stride[d];
      I[k] = src[off];
      if (I[k] < 0 || I[k] >= V)
        g_error("ratfw: embedding: id %d (element %" G_GINT64_FORMAT " of the ids) is out of range for a table of %"
                G_GINT64_FORMAT " rows",
                I[k], k, V);
      for (int d = ids->ndim - 1; d >= 0; d--) {
        if (++idx[d] < ids->shape[d]) break;
        idx[d] = 0;
      }
    }
  }
  RatShape ys = rat_tensor_shape(ids);
  ys.d[ys.ndim++] = E;
  RatTensor *y = rat_empty(ys);
  const float *Wd = (const float *)weight->storage->data + weight->offset;
  gint64 s0 = weight->stride[0], s1 = weight->stride[1];
  float *Y = rat_tensor_data(y);
#pragma omp parallel for schedule(static) if (N * E > 32768)
  for (gint64 k = 0; k < N; k++) {
    const float *row = Wd + (gint64)I[k] * s0;
    if (s1 == 1)
      memcpy(Y + k * E, row, E * sizeof(float));
    else
      for (gint64 e = 0; e < E; e++) Y[k * E + e] = row[e * s1];
  }
  RatNode *n = rat_record(&op_embedding, &y, 1, &weight, 1);
  if (n) rat_node_save(n, idc);
  return y;
}

/* ---- LSTM cell ------------------------------------------------------------------------------------------------
 * gates = x W_ih^T + b_ih + h W_hh^T + b_hh [B, 4H] (two GEMMs), then one fused pass:
 * i = s(g0), f = s(g1), g = tanh(g2), o = s(g3); c' = f c + i g; h' = o tanh(c').
 * Backward with dc' = gc + gh o (1 - tanh(c')^2): di = dc' g i(1-i), df = dc' c f(1-f), dg = dc' i (1-g^2),
 * do = gh tanh(c') o(1-o), dc = dc' f. */

static float sigm(float v) { return 1.0f / (1.0f + expf(-v)); }

/* [B, H] x 4 -> [B, 4H] along the last axis (assembles the gate gradient in the differentiable path). */
static void concat4_backward(RatNode *n, RatTensor *const *gy, RatTensor **gx) {
  gint64 H = n->in_shape[0].d[1];
  for (guint k = 0; k < 4; k++)
    if (rat_node_needs_grad(n, k)) gx[k] = rat_slice(gy[0], 1, k * H, (k + 1) * H);
}
static const RatOpDef op_concat4 = {.name = "lstm_concat4", .n_inputs = 4, .backward = concat4_backward};

static RatTensor *concat4(RatTensor *const *p) {
  gint64 B = p[0]->shape[0], H = p[0]->shape[1];
  RatTensor *y = rat_empty(RAT_SHAPE(B, 4 * H));
  RAT_NO_GRAD_BEGIN
  for (int k = 0; k < 4; k++) rat_tensor_copy_(rat_slice(y, 1, k * H, (k + 1) * H), p[k]);
  RAT_NO_GRAD_END
  rat_record(&op_concat4, &y, 1, p, 4);
  return y;
}

static void lstm_pointwise_backward(RatNode *n, RatTensor *const *gy, RatTensor **gx) {
  RatTensor *gates = rat_node_saved(n, 0), *c = rat_node_saved(n, 1);
  gint64 B = c->shape[0], H = c->shape[1];
  if (!rat_grad_enabled()) {
    RatTensor *gd = rat_contiguous(gates), *cd = rat_contiguous(c);
    RatTensor *ghd = rat_contiguous(gy[0]), *gcd = rat_contiguous(gy[1]);
    RatTensor *dg = rat_empty(RAT_SHAPE(B, 4 * H)), *dc = rat_empty(RAT_SHAPE(B, H));
    const float *G = rat_tensor_data(gd), *C = rat_tensor_data(cd), *GH = rat_tensor_data(ghd),
                *GC = rat_tensor_data(gcd);
    float *DG = rat_tensor_data(dg), *DC = rat_tensor_data(dc);
    for (gint64 b = 0; b < B; b++)
      for (gint64 j = 0; j < H; j++) {
        const float *gr = G + b * 4 * H;
        float i = sigm(gr[j]), f = sigm(gr[H + j]), g = tanhf(gr[2 * H + j]), o = sigm(gr[3 * H + j]);
        float cn = f * C[b * H + j] + i * g, tc = tanhf(cn);
        float gh = GH[b * H + j], dcn = GC[b * H + j] + gh * o * (1.0f - tc * tc);
        float *d = DG + b * 4 * H;
        d[j] = dcn * g * i * (1.0f - i);
        d[H + j] = dcn * C[b * H + j] * f * (1.0f - f);
        d[2 * H + j] = dcn * i * (1.0f - g * g);
        d[3 * H + j] = gh * tc * o * (1.0f - o);
        DC[b * H + j] = dcn * f;
      }
    gx[0] = rat_node_needs_grad(n, 0) ? dg : NULL;
    gx[1] = rat_node_needs_grad(n, 1) ? dc : NULL;
    return;
  }
  RatTensor *i = rat_sigmoid(rat_slice(gates, 1, 0, H)), *f = rat_sigmoid(rat_slice(gates, 1, H, 2 * H));
  RatTensor *g = rat_tanh(rat_slice(gates, 1, 2 * H, 3 * H)), *o = rat_sigmoid(rat_slice(gates, 1, 3 * H, 4 * H));
  RatTensor *tc = rat_tanh(rat_add(rat_mul(f, c), rat_mul(i, g)));
  RatTensor *gh = gy[0];
  RatTensor *dcn = rat_add(gy[1], rat_mul(rat_mul(gh, o), rat_rsub_scalar(rat_square(tc), 1.0f)));
  if (rat_node_needs_grad(n, 0)) {
    RatTensor *p[4] = {
        rat_mul(rat_mul(dcn, g), rat_mul(i, rat_rsub_scalar(i, 1.0f))),
        rat_mul(rat_mul(dcn, c), rat_mul(f, rat_rsub_scalar(f, 1.0f))),
        rat_mul(rat_mul(dcn, i), rat_rsub_scalar(rat_square(g), 1.0f)),
        rat_mul(rat_mul(gh, tc), rat_mul(o, rat_rsub_scalar(o, 1.0f))),
    };
    gx[0] = concat4(p);
  }
  if (rat_node_needs_grad(n, 1)) gx[1] = rat_mul(dcn, f);
}
static const RatOpDef op_lstm_pointwise = {.name = "lstm_pointwise", .n_inputs = 2,
                                           .backward = lstm_pointwise_backward};

void rat_lstm_cell(RatTensor *x, RatTensor *h, RatTensor *c, RatTensor *w_ih, RatTensor *w_hh, RatTensor *b_ih,
                   RatTensor *b_hh, RatTensor **h_out, RatTensor **c_out) {
  if (x->ndim != 2 || h->ndim != 2 || c->ndim != 2 || h->shape[0] != x->shape[0] ||
      !rat_shape_equal(rat_tensor_shape(h), rat_tensor_shape(c)) || w_ih->ndim != 2 || w_hh->ndim != 2 ||
      w_ih->shape[0] != 4 * h->shape[1] || w_hh->shape[0] != 4 * h->shape[1]) {
    char *a = rat_shape_to_string(rat_tensor_shape(x)), *b = rat_shape_to_string(rat_tensor_shape(h)),
         *d = rat_shape_to_string(rat_tensor_shape(w_ih)), *e = rat_shape_to_string(rat_tensor_shape(w_hh));
    g_error("ratfw: lstm_cell: x %s, h/c %s, w_ih %s, w_hh %s do not fit (need [B,In], [B,H], [4H,In], [4H,H])", a, b,
            d, e);
  }
  gint64 B = h->shape[0], H = h->shape[1];
  RatTensor *gates = rat_add(rat_linear(x, w_ih, b_ih), rat_linear(h, w_hh, b_hh)); /* [B, 4H] */
  RatTensor *gd = dense_copy(gates), *cd = dense_copy(c);
  RatTensor *hn = rat_empty(RAT_SHAPE(B, H)), *cn = rat_empty(RAT_SHAPE(B, H));
  const float *G = rat_tensor_data(gd), *C = rat_tensor_data(cd);
  float *HN = rat_tensor_data(hn), *CN = rat_tensor_data(cn);
#pragma omp parallel for schedule(static) if (B * H > 32768)
  for (gint64 b = 0; b < B; b++)
    for (gint64 j = 0; j < H; j++) {
      const float *gr = G + b * 4 * H;
      float i = sigm(gr[j]), f = sigm(gr[H + j]), g = tanhf(gr[2 * H + j]), o = sigm(gr[3 * H + j]);
      float cv = f * C[b * H + j] + i * g;
      CN[b * H + j] = cv;
      HN[b * H + j] = o * tanhf(cv);
    }
  RatTensor *outs[2] = {hn, cn}, *in[2] = {gates, c};
  RatNode *n = rat_record(&op_lstm_pointwise, outs, 2, in, 2);
  if (n) {
    rat_node_save(n, gates);
    rat_node_save(n, c);
  }
  *h_out = hn;
  *c_out = cn;
}

/* ---- cosine similarity ------------------------------------------------------------------------------------------
 * torch 1.13 (aten Distance.cpp): <a,b> / sqrt(max(|a|^2, eps^2) max(|b|^2, eps^2)), the clamps applied without
 * gradient (the squared norms keep their unclamped derivative), which this reproduces with a straight-through clamp. */

static void clamp_st_backward(RatNode *n, RatTensor *const *gy, RatTensor **gx) {
  if (rat_node_needs_grad(n, 0)) gx[0] = gy[0];
}
static const RatOpDef op_clamp_st = {.name = "clamp_min_straight_through", .n_inputs = 1,
                                     .backward = clamp_st_backward};

static RatTensor *clamp_min_st(RatTensor *a, float lo) {
  RatTensor *y;
  RAT_NO_GRAD_BEGIN
  y = rat_clamp(a, lo, INFINITY);
  RAT_NO_GRAD_END
  rat_record(&op_clamp_st, &y, 1, &a, 1);
  return y;
}

RatTensor *rat_cosine_similarity(RatTensor *a, RatTensor *b, int axis, float eps) {
  RatShape s;
  if (!rat_broadcast_shape(rat_tensor_shape(a), rat_tensor_shape(b), &s) || s.ndim == 0) {
    char *x = rat_shape_to_string(rat_tensor_shape(a)), *y = rat_shape_to_string(rat_tensor_shape(b));
    g_error("ratfw: cosine_similarity: shapes %s and %s do not broadcast", x, y);
  }
  guint ax = RAT_AXIS(rat_norm_axis(axis, s.ndim));
  a = rat_expand(a, s);
  b = rat_expand(b, s);
  RatTensor *dot = rat_sum(rat_mul(a, b), ax, FALSE);
  RatTensor *na = clamp_min_st(rat_sum(rat_square(a), ax, FALSE), eps * eps);
  RatTensor *nb = clamp_min_st(rat_sum(rat_square(b), ax, FALSE), eps * eps);
  return rat_mul(dot, rat_rsqrt(rat_mul(na, nb)));
}
