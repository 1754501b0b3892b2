/* Normalisation over feature maps x [B,C,...]: batch norm (Ioffe & Szegedy 2015), group norm (Wu & He 2018) and
 * instance norm (Ulyanov et al. 2016 = group norm with G = C), with torch.nn.functional semantics:
 *   y = (x - mean) / sqrt(var + eps) * weight[c] + bias[c],  var biased, over the statistics group.
 * Fused kernels read channels-last or row-major memory directly. Statistics are reduced per (sample, channel) over
 * fixed chunks in double and combined in a fixed order, so the bits do not depend on the thread count. The backward
 * is fused when grad mode is off inside backward, and a composite of differentiable ops otherwise (double backward). */
#include "config.h"

#include "ratfw-private.h"

#include <math.h>

/* Elements per reduction task; fixed, so the summation order never depends on the thread count. */
#define NORM_CHUNK 16384
/* Below this many elements the kernels stay on one thread. */
#define NORM_PAR_MIN 32768

/* ---- memory layout ------------------------------------------------------------------------------------------ */

/* x viewed as (b, c, s) with S = product of the spatial dims. Channels-last: element at (b*S + s)*C + c;
 * otherwise row-major: (b*C + c)*S + s. */
typedef struct {
  gboolean cl;
  gint64 B, C, S;
} Layout;

static gboolean layout_of(const RatTensor *x, Layout *L) {
  L->B = x->shape[0];
  L->C = x->shape[1];
  L->S = 1;
  for (int d = 2; d < x->ndim; d++) L->S *= x->shape[d];
  /* channels-last: channel stride 1, spatial dims row-major outside it, batch outermost */
  gboolean cl = L->C == 1 || x->stride[1] == 1;
  gint64 expect = L->C;
  for (int d = x->ndim - 1; d >= 2 && cl; d--) {
    if (x->shape[d] != 1 && x->stride[d] != expect) cl = FALSE;
    expect *= x->shape[d];
  }
  if (cl && L->B != 1 && x->stride[0] != expect) cl = FALSE;
  if (cl) {
    L->cl = TRUE;
    return TRUE;
  }
  L->cl = FALSE;
  return rat_tensor_is_contiguous(x);
}

/* ---- statistics groups ---------------------------------------------------------------------------------------- */

/* Batch norm: one group per channel, members (b, c) for every b. Group norm: one group per (b, g), members the K
 * channels of group g in sample b. Every member holds S elements. */
typedef struct {
  gboolean batch;
  gint64 G, K;
  gint64 ngroups, nmember;
} Groups;

static Groups groups_make(const Layout *L, gboolean batch, gint64 G) {
  Groups gr = {.batch = batch, .G = G, .K = batch ? 1 : L->C / G};
  gr.ngroups = batch ? L->C : L->B * G;
  gr.nmember = batch ? L->B : gr.K;
  return gr;
}

static inline gint64 groups_member(const Groups *gr, const Layout *L, gint64 grp, gint64 j) {
  return gr->batch ? j * L->C + grp : (grp / gr->G) * L->C + (grp % gr->G) * gr->K + j;
}

static inline gint64 groups_of(const Groups *gr, const Layout *L, gint64 bc) {
  return gr->batch ? bc % L->C : (bc / L->C) * gr->G + (bc % L->C) / gr->K;
}

/* ---- kernels ---------------------------------------------------------------------------------------------------- */

/* Per-(b,c) sums over s. grad FALSE: r1 = sum(p - ctr), r2 = sum((p - ctr)^2).
 * grad TRUE: r1 = sum(p), r2 = sum(p * (q - ctr)). ctr is per (b,c). Results in double. */
static void reduce_bc(const Layout *L, const float *p, const float *q, const double *ctr, gboolean grad, double *r1,
                      double *r2) {
  gint64 B = L->B, C = L->C, S = L->S;
  int nt = rat_get_num_threads();
  gboolean par = B * C * S > NORM_PAR_MIN;
  if (L->cl) {
    gint64 rb = MAX(1, NORM_CHUNK / C), nch = (S + rb - 1) / rb, ntask = B * nch;
    double *part = g_new0(double, ntask * 2 * C);
#pragma omp parallel for schedule(static) num_threads(nt) if (par)
    for (gint64 t = 0; t < ntask; t++) {
      gint64 b = t / nch, s0 = (t % nch) * rb, s1 = MIN(s0 + rb, S);
      double *restrict a1 = part + t * 2 * C, *restrict a2 = a1 + C;
      const double *restrict k = ctr + b * C;
      for (gint64 s = s0; s < s1; s++) {
        const float *restrict pr = p + (b * S + s) * C;
        if (!grad) {
#pragma omp simd
          for (gint64 c = 0; c < C; c++) {
            double u = (double)pr[c] - k[c];
            a1[c] += u;
            a2[c] += u * u;
          }
        } else {
          const float *restrict qr = q + (b * S + s) * C;
#pragma omp simd
          for (gint64 c = 0; c < C; c++) {
            double g = pr[c];
            a1[c] += g;
            a2[c] += g * ((double)qr[c] - k[c]);
          }
        }
      }
    }
    for (gint64 b = 0; b < B; b++)
      for (gint64 c = 0; c < C; c++) {
        double s1 = 0, s2 = 0;
        for (gint64 k = 0; k < nch; k++) {
          const double *a = part + (b * nch + k) * 2 * C;
          s1 += a[c];
          s2 += a[C + c];
        }
        r1[b * C + c] = s1;
        r2[b * C + c] = s2;
      }
    g_free(part);
    return;
  }
  gint64 nch = (S + NORM_CHUNK - 1) / NORM_CHUNK, ntask = B * C * nch;
  double *part = g_new0(double, ntask * 2);
#pragma omp parallel for schedule(static) num_threads(nt) if (par)
  for (gint64 t = 0; t < ntask; t++) {
    gint64 bc = t / nch, s0 = (t % nch) * NORM_CHUNK, s1 = MIN(s0 + NORM_CHUNK, S);
    const float *restrict pr = p + bc * S;
    double k = ctr[bc], a1 = 0, a2 = 0;
    if (!grad) {
#pragma omp simd reduction(+ : a1, a2)
      for (gint64 s = s0; s < s1; s++) {
        double u = (double)pr[s] - k;
        a1 += u;
        a2 += u * u;
      }
    } else {
      const float *restrict qr = q + bc * S;
#pragma omp simd reduction(+ : a1, a2)
      for (gint64 s = s0; s < s1; s++) {
        double g = pr[s];
        a1 += g;
        a2 += g * ((double)qr[s] - k);
      }
    }
    part[2 * t] = a1;
    part[2 * t + 1] = a2;
  }
  for (gint64 bc = 0; bc < B * C; bc++) {
    double s1 = 0, s2 = 0;
    for (gint64 k = 0; k < nch; k++) {
      s1 += part[2 * (bc * nch + k)];
      s2 += part[2 * (bc * nch + k) + 1];
    }
    r1[bc] = s1;
    r2[bc] = s2;
  }
  g_free(part);
}

/* Per-(b,c) coefficients of out = ((p - ph) - pl) * a + ((q - qh) - ql) * bq + d. A centre is split into a float
 * and its float remainder: x - hi is exact for x near the centre, so a large mean costs no precision. */
typedef struct {
  float *ph, *pl, *a, *qh, *ql, *bq, *d;
} Coef;

static Coef coef_new(gint64 n) {
  Coef k;
  float *buf = g_new0(float, 7 * MAX(n, 1));
  float **f[7] = {&k.ph, &k.pl, &k.a, &k.qh, &k.ql, &k.bq, &k.d};
  for (int i = 0; i < 7; i++) *f[i] = buf + i * MAX(n, 1);
  return k;
}

static void coef_free(Coef *k) { g_free(k->ph); }

static void split_centre(double v, float *hi, float *lo) {
  *hi = (float)v;
  *lo = (float)(v - (double)*hi);
}

/* out = ((p - ph) - pl) * a + ((q - qh) - ql) * bq + d; q NULL drops the middle term. */
static void apply_bc(const Layout *L, float *out, const float *p, const float *q, const Coef *k) {
  gint64 B = L->B, C = L->C, S = L->S;
  int nt = rat_get_num_threads();
  gboolean par = B * C * S > NORM_PAR_MIN;
  if (L->cl) {
#pragma omp parallel for schedule(static) num_threads(nt) if (par)
    for (gint64 r = 0; r < B * S; r++) {
      gint64 o = (r / S) * C;
      const float *restrict pr = p + r * C, *restrict ph = k->ph + o, *restrict pl = k->pl + o;
      const float *restrict a = k->a + o, *restrict d = k->d + o;
      float *restrict yr = out + r * C;
      if (q) {
        const float *restrict qr = q + r * C, *restrict qh = k->qh + o, *restrict ql = k->ql + o;
        const float *restrict bq = k->bq + o;
#pragma omp simd
        for (gint64 c = 0; c < C; c++) yr[c] = ((pr[c] - ph[c]) - pl[c]) * a[c] + ((qr[c] - qh[c]) - ql[c]) * bq[c] + d[c];
      } else {
#pragma omp simd
        for (gint64 c = 0; c < C; c++) yr[c] = ((pr[c] - ph[c]) - pl[c]) * a[c] + d[c];
      }
    }
    return;
  }
  gint64 nch = (S + NORM_CHUNK - 1) / NORM_CHUNK;
#pragma omp parallel for schedule(static) num_threads(nt) if (par)
  for (gint64 t = 0; t < B * C * nch; t++) {
    gint64 bc = t / nch, s0 = (t % nch) * NORM_CHUNK, s1 = MIN(s0 + NORM_CHUNK, S);
    const float *restrict pr = p + bc * S;
    float *restrict yr = out + bc * S;
    float ph = k->ph[bc], pl = k->pl[bc], a = k->a[bc], d = k->d[bc];
    if (q) {
      const float *restrict qr = q + bc * S;
      float qh = k->qh[bc], ql = k->ql[bc], bq = k->bq[bc];
#pragma omp simd
      for (gint64 s = s0; s < s1; s++) yr[s] = ((pr[s] - ph) - pl) * a + ((qr[s] - qh) - ql) * bq + d;
    } else {
#pragma omp simd
      for (gint64 s = s0; s < s1; s++) yr[s] = ((pr[s] - ph) - pl) * a + d;
    }
  }
}

/* Group mean and biased M2 from per-(b,c) shifted sums (every member has S elements). */
static void group_stats(const Layout *L, const Groups *gr, const double *k, const double *r1, const double *r2,
                        double *mean, double *m2) {
  gint64 S = L->S;
  for (gint64 g = 0; g < gr->ngroups; g++) {
    double msum = 0;
    for (gint64 j = 0; j < gr->nmember; j++) {
      gint64 bc = groups_member(gr, L, g, j);
      msum += k[bc] + r1[bc] / S;
    }
    double mu = msum / gr->nmember, acc = 0, spread = 0;
    for (gint64 j = 0; j < gr->nmember; j++) {
      gint64 bc = groups_member(gr, L, g, j);
      double mb = k[bc] + r1[bc] / S;
      acc += MAX(r2[bc] - r1[bc] * r1[bc] / S, 0.0);
      spread += (mb - mu) * (mb - mu);
    }
    mean[g] = mu;
    m2[g] = acc + S * spread;
  }
}

/* ---- the op ------------------------------------------------------------------------------------------------------ */

typedef enum { NORM_BATCH_TRAIN, NORM_BATCH_EVAL, NORM_GROUP } NormKind;

typedef struct {
  NormKind kind;
  gint64 G;
  float eps;
  gint64 ngroups;
  double *mean, *inv; /* per statistics group: the values the forward used */
} NormCtx;

static void norm_ctx_free(gpointer p) {
  NormCtx *c = p;
  g_free(c->mean);
  g_free(c->inv);
  g_free(c);
}

static void norm_backward(RatNode *n, RatTensor *const *gy, RatTensor **gx);
static const RatOpDef op_batch_norm = {
    .name = "batch_norm", .n_inputs = 3, .backward = norm_backward, .ctx_free = norm_ctx_free};
static const RatOpDef op_group_norm = {
    .name = "group_norm", .n_inputs = 3, .backward = norm_backward, .ctx_free = norm_ctx_free};

static float *read_param(RatTensor *t, gint64 C, float fill, const char *what) {
  float *v = g_new(float, MAX(C, 1));
  if (!t) {
    for (gint64 c = 0; c < C; c++) v[c] = fill;
    return v;
  }
  if (t->ndim != 1 || t->shape[0] != C || t->dtype != RAT_DTYPE_F32) {
    char *d = rat_tensor_describe(t);
    g_error("ratfw: normalisation %s must be f32[%" G_GINT64_FORMAT "], got %s", what, C, d);
  }
  rat_tensor_read(t, v);
  return v;
}

static RatShape channel_shape(const RatTensor *x) {
  RatShape s = {.ndim = x->ndim};
  for (int d = 0; d < x->ndim; d++) s.d[d] = d == 1 ? x->shape[1] : 1;
  return s;
}

static guint all_but_channel(int ndim) { return ((1u << ndim) - 1u) & ~RAT_AXIS(1); }

/* Shared forward. run_mean/run_var: eval statistics (batch eval) or the buffers to update (batch train, may be
 * NULL). */
static RatTensor *norm_forward(RatTensor *x, RatTensor *weight, RatTensor *bias, NormKind kind, gint64 G,
                               RatTensor *run_mean, RatTensor *run_var, float momentum, float eps) {
  const char *name = kind == NORM_GROUP ? "group_norm" : "batch_norm";
  if (x->dtype != RAT_DTYPE_F32 || x->ndim < 2) {
    char *d = rat_tensor_describe(x);
    g_error("ratfw: %s needs an f32 input [B,C,...], got %s", name, d);
  }
  Layout L;
  if (!layout_of(x, &L)) {
    x = rat_contiguous(x);
    layout_of(x, &L);
  }
  gint64 B = L.B, C = L.C, S = L.S, BC = B * C;
  if (kind == NORM_GROUP)
    rat_check(G > 0 && C % G == 0, "ratfw: group_norm: %" G_GINT64_FORMAT " channels do not split into %" G_GINT64_FORMAT
              " groups", C, G);
  Groups gr = groups_make(&L, kind != NORM_GROUP, G);
  gint64 count = gr.nmember * S;
  if (kind == NORM_BATCH_TRAIN)
    rat_check(count > 1, "ratfw: batch_norm in training needs more than 1 value per channel (input %s)",
              rat_tensor_describe(x));
  float *w = read_param(weight, C, 1.0f, "weight"), *bv = read_param(bias, C, 0.0f, "bias");
  double *mean = g_new0(double, MAX(gr.ngroups, 1)), *inv = g_new0(double, MAX(gr.ngroups, 1));
  const float *xd = rat_tensor_data(x);

  if (kind == NORM_BATCH_EVAL) {
    rat_check(run_mean && run_var, "ratfw: batch_norm in eval mode needs running_mean and running_var");
    float *rm = read_param(run_mean, C, 0, "running_mean"), *rv = read_param(run_var, C, 1, "running_var");
    for (gint64 c = 0; c < C; c++) {
      mean[c] = rm[c];
      inv[c] = 1.0 / sqrt((double)rv[c] + eps);
    }
    g_free(rm);
    g_free(rv);
  } else if (count > 0) {
    double *k = g_new(double, BC), *r1 = g_new(double, BC), *r2 = g_new(double, BC), *m2 = g_new(double, gr.ngroups);
    for (gint64 bc = 0; bc < BC; bc++) /* shift: the first element of each (b,c), for a stable one-pass variance */
      k[bc] = S ? xd[L.cl ? (bc / C) * S * C + bc % C : bc * S] : 0.0;
    reduce_bc(&L, xd, NULL, k, FALSE, r1, r2);
    group_stats(&L, &gr, k, r1, r2, mean, m2);
    for (gint64 g = 0; g < gr.ngroups; g++) inv[g] = 1.0 / sqrt(m2[g] / count + eps);
    if (kind == NORM_BATCH_TRAIN && (run_mean || run_var)) {
      /* running stats: no autograd; momentum on the unbiased variance, as torch */
      float *rm = read_param(run_mean, C, 0, "running_mean"), *rv = read_param(run_var, C, 1, "running_var");
      for (gint64 c = 0; c < C; c++) {
        rm[c] = (float)((1.0 - momentum) * rm[c] + (double)momentum * mean[c]);
        rv[c] = (float)((1.0 - momentum) * rv[c] + (double)momentum * m2[c] / (double)(count - 1));
      }
      if (run_mean) rat_tensor_write(run_mean, rm);
      if (run_var) rat_tensor_write(run_var, rv);
      g_free(rm);
      g_free(rv);
    }
    g_free(k);
    g_free(r1);
    g_free(r2);
    g_free(m2);
  }

  /* y = (x - mean) * (w * inv) + bias */
  Coef k = coef_new(BC);
  for (gint64 bc = 0; bc < BC; bc++) {
    gint64 g = groups_of(&gr, &L, bc), c = bc % C;
    split_centre(mean[g], &k.ph[bc], &k.pl[bc]);
    k.a[bc] = (float)(w[c] * inv[g]);
    k.d[bc] = bv[c];
  }
  RatTensor *y = rat_empty_like(x);
  if (BC * S > 0) apply_bc(&L, rat_tensor_data(y), xd, NULL, &k);
  coef_free(&k);
  g_free(w);
  g_free(bv);

  RatTensor *in[3] = {x, weight, bias};
  RatNode *n = rat_record(kind == NORM_GROUP ? &op_group_norm : &op_batch_norm, &y, 1, in, 3);
  if (n) {
    NormCtx *ctx = g_new0(NormCtx, 1);
    ctx->kind = kind;
    ctx->G = G;
    ctx->eps = eps;
    ctx->ngroups = gr.ngroups;
    ctx->mean = mean;
    ctx->inv = inv;
    n->ctx = ctx;
    rat_node_save(n, x);
    rat_node_save(n, weight);
  } else {
    g_free(mean);
    g_free(inv);
  }
  return y;
}

/* ---- backward ------------------------------------------------------------------------------------------------- */

/* One pass over g and x for the per-(b,c) sums, one pass writing gx; grad mode is off. */
static void norm_backward_fused(RatNode *n, RatTensor *x, RatTensor *weight, RatTensor *g, RatTensor **gx) {
  NormCtx *ctx = n->ctx;
  Layout L;
  gboolean ok = layout_of(x, &L);
  g_assert(ok);
  gint64 C = L.C, S = L.S, BC = L.B * C;
  Groups gr = groups_make(&L, ctx->kind != NORM_GROUP, ctx->G);
  if (!rat_tensor_same_layout(g, x)) {
    RatTensor *t = rat_empty_like(x);
    rat_tensor_copy_(t, g);
    g = t;
  }
  const float *xd = rat_tensor_data(x), *gd = rat_tensor_data(g);
  float *w = read_param(weight, C, 1.0f, "weight");
  double *ctr = g_new(double, MAX(BC, 1)), *r1 = g_new0(double, MAX(BC, 1)), *r2 = g_new0(double, MAX(BC, 1));
  for (gint64 bc = 0; bc < BC; bc++) ctr[bc] = ctx->mean[groups_of(&gr, &L, bc)];
  if (BC * S > 0) reduce_bc(&L, gd, xd, ctr, TRUE, r1, r2);

  if (rat_node_needs_grad(n, 1) || rat_node_needs_grad(n, 2)) {
    float *gw = g_new(float, MAX(C, 1)), *gb = g_new(float, MAX(C, 1));
    for (gint64 c = 0; c < C; c++) {
      double sw = 0, sb = 0;
      for (gint64 b = 0; b < L.B; b++) {
        gint64 bc = b * C + c;
        sw += ctx->inv[groups_of(&gr, &L, bc)] * r2[bc];
        sb += r1[bc];
      }
      gw[c] = (float)sw;
      gb[c] = (float)sb;
    }
    if (rat_node_needs_grad(n, 1)) gx[1] = rat_from_data(RAT_SHAPE(C), gw);
    if (rat_node_needs_grad(n, 2)) gx[2] = rat_from_data(RAT_SHAPE(C), gb);
    g_free(gw);
    g_free(gb);
  }

  if (rat_node_needs_grad(n, 0)) {
    Coef k = coef_new(BC);
    double *m1 = g_new0(double, gr.ngroups), *m2 = g_new0(double, gr.ngroups);
    double count = (double)gr.nmember * S;
    if (ctx->kind != NORM_BATCH_EVAL) {
      /* gx = inv * (gxhat - mean(gxhat) - xhat * mean(gxhat * xhat)), gxhat = g * w */
      for (gint64 grp = 0; grp < gr.ngroups; grp++) {
        double sg = 0, sgx = 0;
        for (gint64 j = 0; j < gr.nmember; j++) {
          gint64 bc = groups_member(&gr, &L, grp, j);
          sg += w[bc % C] * r1[bc];
          sgx += w[bc % C] * r2[bc];
        }
        m1[grp] = sg / count;
        m2[grp] = ctx->inv[grp] * sgx / count;
      }
    }
    /* gx = g * (w inv) + (x - mean) * (-inv^2 m2) - inv m1 */
    for (gint64 bc = 0; bc < BC; bc++) {
      gint64 grp = groups_of(&gr, &L, bc);
      double inv = ctx->inv[grp];
      k.a[bc] = (float)(w[bc % C] * inv);
      split_centre(ctx->mean[grp], &k.qh[bc], &k.ql[bc]);
      k.bq[bc] = (float)(-inv * inv * m2[grp]);
      k.d[bc] = (float)(-inv * m1[grp]);
    }
    RatTensor *r = rat_empty_like(x);
    if (BC * S > 0) apply_bc(&L, rat_tensor_data(r), gd, ctx->kind == NORM_BATCH_EVAL ? NULL : xd, &k);
    gx[0] = r;
    coef_free(&k);
    g_free(m1);
    g_free(m2);
  }
  g_free(w);
  g_free(ctr);
  g_free(r1);
  g_free(r2);
}

/* The same gradients in recorded ops, so that a second differentiation works (create_graph). */
static void norm_backward_composite(RatNode *n, RatTensor *x, RatTensor *weight, RatTensor *g, RatTensor **gx) {
  NormCtx *ctx = n->ctx;
  RatShape xs = rat_tensor_shape(x), cs = channel_shape(x);
  guint red = all_but_channel(x->ndim);
  RatTensor *wb = weight ? rat_reshape(weight, cs) : NULL;
  RatTensor *xhat, *dx = NULL;
  if (ctx->kind == NORM_BATCH_EVAL) {
    gint64 C = x->shape[1];
    float *m = g_new(float, C), *iv = g_new(float, C);
    for (gint64 c = 0; c < C; c++) {
      m[c] = (float)ctx->mean[c];
      iv[c] = (float)ctx->inv[c];
    }
    RatTensor *mt = rat_reshape(rat_from_data(RAT_SHAPE(C), m), cs), *it = rat_reshape(rat_from_data(RAT_SHAPE(C), iv), cs);
    g_free(m);
    g_free(iv);
    xhat = rat_mul(rat_sub(x, mt), it);
    if (rat_node_needs_grad(n, 0)) dx = rat_mul(g, wb ? rat_mul(wb, it) : it);
  } else {
    /* X: x grouped so that the statistics reduce over axes R */
    gboolean batch = ctx->kind != NORM_GROUP;
    RatTensor *X = batch ? x : rat_reshape(x, RAT_SHAPE(xs.d[0], ctx->G, -1));
    guint R = batch ? red : RAT_AXIS(2);
    /* centre on the forward's mean (a constant: the derivatives do not change) so that x - k is exact */
    float *kf = g_new(float, ctx->ngroups);
    for (gint64 i = 0; i < ctx->ngroups; i++) kf[i] = (float)ctx->mean[i];
    RatTensor *k = rat_from_data(batch ? cs : RAT_SHAPE(xs.d[0], ctx->G, 1), kf);
    g_free(kf);
    X = rat_sub(X, k);
    RatTensor *xc = rat_sub(X, rat_mean(X, R, TRUE));
    RatTensor *inv = rat_rsqrt(rat_add_scalar(rat_mean(rat_square(xc), R, TRUE), ctx->eps));
    RatTensor *xhatX = rat_mul(xc, inv);
    xhat = batch ? xhatX : rat_reshape(xhatX, xs);
    if (rat_node_needs_grad(n, 0)) {
      RatTensor *gh = wb ? rat_mul(g, wb) : g;
      RatTensor *ghX = batch ? gh : rat_reshape(gh, rat_tensor_shape(X));
      RatTensor *t = rat_sub(rat_sub(ghX, rat_mean(ghX, R, TRUE)), rat_mul(xhatX, rat_mean(rat_mul(ghX, xhatX), R, TRUE)));
      RatTensor *dX = rat_mul(inv, t);
      dx = batch ? dX : rat_reshape(dX, xs);
    }
  }
  if (dx) gx[0] = dx;
  if (rat_node_needs_grad(n, 1)) gx[1] = rat_sum(rat_mul(g, xhat), red, FALSE);
  if (rat_node_needs_grad(n, 2)) gx[2] = rat_sum(g, red, FALSE);
}

static void norm_backward(RatNode *n, RatTensor *const *gy, RatTensor **gx) {
  RatTensor *x = rat_node_saved(n, 0), *weight = rat_node_saved(n, 1);
  if (rat_grad_enabled())
    norm_backward_composite(n, x, weight, gy[0], gx);
  else
    norm_backward_fused(n, x, weight, gy[0], gx);
}

/* ---- public ---------------------------------------------------------------------------------------------------- */

RatTensor *rat_batch_norm(RatTensor *x, RatTensor *running_mean, RatTensor *running_var, RatTensor *weight,
                          RatTensor *bias, gboolean training, float momentum, float eps) {
  return norm_forward(x, weight, bias, training ? NORM_BATCH_TRAIN : NORM_BATCH_EVAL, 0, running_mean, running_var,
                      momentum, eps);
}

RatTensor *rat_group_norm(RatTensor *x, int groups, RatTensor *weight, RatTensor *bias, float eps) {
  return norm_forward(x, weight, bias, NORM_GROUP, groups, NULL, NULL, 0, eps);
}

RatTensor *rat_instance_norm(RatTensor *x, RatTensor *weight, RatTensor *bias, float eps) {
  rat_check(x->ndim >= 2, "ratfw: instance_norm needs an input [B,C,...]");
  return norm_forward(x, weight, bias, NORM_GROUP, x->shape[1], NULL, NULL, 0, eps);
}
