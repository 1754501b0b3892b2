/* Sum and mean over any set of axes, and sum_to (the gradient of broadcasting).
 * Deterministic: every output element is accumulated (in double) by one thread in a fixed order, so the
 * bits do not depend on the thread count. Two loop shapes: reduce along the innermost memory dimension
 * (dot-product style) or across it (vector accumulate, e.g. per-channel sums of channels-last maps). */
#include "config.h"

#include "ratfw-private.h"

#include <math.h>

typedef struct {
  int nk, nr;                 /* kept / reduced dim counts */
  gint64 kshape[RAT_MAX_DIMS], kstride[RAT_MAX_DIMS]; /* kept dims, output order */
  gint64 rshape[RAT_MAX_DIMS], rstride[RAT_MAX_DIMS]; /* reduced dims, input stride descending */
  gint64 rcount;
} RedPlan;

static void plan_make(const RatTensor *a, guint axes, RedPlan *p) {
  memset(p, 0, sizeof(*p));
  int rd[RAT_MAX_DIMS];
  for (int d = 0; d < a->ndim; d++) {
    if (axes & (1u << d)) {
      rd[p->nr++] = d;
    } else {
      p->kshape[p->nk] = a->shape[d];
      p->kstride[p->nk] = a->stride[d];
      p->nk++;
    }
  }
  for (int i = 1; i < p->nr; i++) { /* sort reduced dims by stride descending */
    int k = rd[i], j = i - 1;
    while (j >= 0 && a->stride[rd[j]] < a->stride[k]) {
      rd[j + 1] = rd[j];
      j--;
    }
    rd[j + 1] = k;
  }
  p->rcount = 1;
  for (int i = 0; i < p->nr; i++) {
    p->rshape[i] = a->shape[rd[i]];
    p->rstride[i] = a->stride[rd[i]];
    p->rcount *= p->rshape[i];
  }
}

/* Offset (elements) of the kept index decoded from linear output index o. */
static gint64 kept_offset(const RedPlan *p, gint64 o) {
  gint64 off = 0;
  for (int i = p->nk - 1; i >= 0; i--) {
    gint64 idx = o % p->kshape[i];
    o /= p->kshape[i];
    off += idx * p->kstride[i];
  }
  return off;
}

/* Sum over the reduced space starting at base (scalar accumulate). */
static double sum_scalar(const float *base, const RedPlan *p) {
  if (p->nr == 0) return base[0];
  int last = p->nr - 1;
  gint64 n = p->rshape[last], s = p->rstride[last];
  gint64 idx[RAT_MAX_DIMS] = {0};
  double acc = 0.0;
  gint64 outer = p->rcount / MAX(n, 1);
  for (gint64 r = 0; r < outer; r++) {
    gint64 off = 0;
    for (int i = 0; i < last; i++) off += idx[i] * p->rstride[i];
    const float *q = base + off;
    if (s == 1)
      for (gint64 j = 0; j < n; j++) acc += q[j];
    else
      for (gint64 j = 0; j < n; j++) acc += q[j * s];
    for (int i = last - 1; i >= 0; i--) {
      if (++idx[i] < p->rshape[i]) break;
      idx[i] = 0;
    }
  }
  return acc;
}

static void reduce_sum(const RatTensor *a, guint axes, float scale, float *out /* row-major kept shape */) {
  RedPlan p;
  plan_make(a, axes, &p);
  const float *data = rat_tensor_data(a);
  gint64 nout = 1;
  for (int i = 0; i < p.nk; i++) nout *= p.kshape[i];
  if (nout == 0) return;
  /* Is the smallest input stride a kept dim (with size > 1)? Then accumulate vectors along it. */
  gint64 min_r = G_MAXINT64, min_k = G_MAXINT64;
  int kin = -1;
  for (int i = 0; i < p.nr; i++)
    if (p.rshape[i] > 1 && p.rstride[i] < min_r) min_r = p.rstride[i];
  for (int i = 0; i < p.nk; i++)
    if (p.kshape[i] > 1 && p.kstride[i] < min_k) {
      min_k = p.kstride[i];
      kin = i;
    }
  gboolean vector = kin == p.nk - 1 && min_k < min_r && p.rcount > 1;
  int nt = rat_get_num_threads();
  gint64 work = nout * MAX(p.rcount, 1);
  if (!vector) {
#pragma omp parallel for schedule(static) num_threads(nt) if (work > 65536)
    for (gint64 o = 0; o < nout; o++) out[o] = (float)(sum_scalar(data + kept_offset(&p, o), &p) * scale);
    return;
  }
  /* Vector case: the last kept dim (size n0) is innermost in memory; rows = the other kept dims. */
  gint64 n0 = p.kshape[p.nk - 1], s0 = p.kstride[p.nk - 1];
  gint64 rows = nout / n0;
  const gint64 CH = 256;
  gint64 nchunk = (n0 + CH - 1) / CH;
  gint64 ntask = rows * nchunk;
#pragma omp parallel for schedule(static) num_threads(nt) if (work > 65536)
  for (gint64 t = 0; t < ntask; t++) {
    gint64 row = t / nchunk, c0 = (t % nchunk) * CH, c1 = MIN(c0 + CH, n0);
    double acc[256];
    for (gint64 j = 0; j < c1 - c0; j++) acc[j] = 0.0;
    gint64 base = kept_offset(&p, row * n0) + c0 * s0;
    gint64 idx[RAT_MAX_DIMS] = {0};
    for (gint64 r = 0; r < p.rcount; r++) {
      gint64 off = base;
      for (int i = 0; i < p.nr; i++) off += idx[i] * p.rstride[i];
      const float *q = data + off;
      if (s0 == 1)
        for (gint64 j = 0; j < c1 - c0; j++) acc[j] += q[j];
      else
        for (gint64 j = 0; j < c1 - c0; j++) acc[j] += q[j * s0];
      for (int i = p.nr - 1; i >= 0; i--) {
        if (++idx[i] < p.rshape[i]) break;
        idx[i] = 0;
      }
    }
    for (gint64 j = 0; j < c1 - c0; j++) out[row * n0 + c0 + j] = (float)(acc[j] * scale);
  }
}

static RatShape reduced_shape(const RatTensor *a, guint axes, gboolean keepdim) {
  RatShape s = {.ndim = 0};
  for (int d = 0; d < a->ndim; d++) {
    if (axes & (1u << d)) {
      if (keepdim) s.d[s.ndim++] = 1;
    } else {
      s.d[s.ndim++] = a->shape[d];
    }
  }
  return s;
}

static RatTensor *sum_impl(RatTensor *a, guint axes, gboolean keepdim, gboolean mean);

static void sum_backward(RatNode *n, RatTensor *const *gy, RatTensor **gx) {
  if (!rat_node_needs_grad(n, 0)) return;
  RatShape in = n->in_shape[0];
  guint axes = (guint)n->i[0];
  /* reshape gy to keepdim form, then broadcast */
  RatShape kd = {.ndim = in.ndim};
  for (int d = 0; d < in.ndim; d++) kd.d[d] = (axes & (1u << d)) ? 1 : in.d[d];
  RatTensor *g = rat_reshape(gy[0], kd);
  if (n->f[0] != 1.0) g = rat_mul_scalar(g, (float)n->f[0]);
  gx[0] = rat_expand(g, in);
}
static const RatOpDef op_sum = {.name = "sum", .n_inputs = 1, .backward = sum_backward};

static RatTensor *sum_impl(RatTensor *a, guint axes, gboolean keepdim, gboolean mean) {
  rat_check(a->dtype == RAT_DTYPE_F32, "ratfw: sum of a non-f32 tensor");
  axes &= (1u << a->ndim) - 1u;
  gint64 count = 1;
  for (int d = 0; d < a->ndim; d++)
    if (axes & (1u << d)) count *= a->shape[d];
  float scale = mean ? (count ? 1.0f / (float)count : NAN) : 1.0f;
  RatTensor *y = rat_empty(reduced_shape(a, axes, keepdim));
  if (count == 0)
    rat_tensor_fill_(y, mean ? NAN : 0.0f);
  else
    reduce_sum(a, axes, scale, rat_tensor_data(y));
  RatNode *n = rat_record(&op_sum, &y, 1, &a, 1);
  if (n) {
    n->i[0] = axes;
    n->f[0] = scale;
  }
  return y;
}

RatTensor *rat_sum(RatTensor *a, guint axes, gboolean keepdim) { return sum_impl(a, axes, keepdim, FALSE); }
RatTensor *rat_mean(RatTensor *a, guint axes, gboolean keepdim) { return sum_impl(a, axes, keepdim, TRUE); }
RatTensor *rat_sum_all(RatTensor *a) { return sum_impl(a, (1u << a->ndim) - 1u, FALSE, FALSE); }
RatTensor *rat_mean_all(RatTensor *a) { return sum_impl(a, (1u << a->ndim) - 1u, FALSE, TRUE); }

RatTensor *rat_sum_to(RatTensor *a, RatShape shape) {
  if (rat_shape_equal(rat_tensor_shape(a), shape)) return a;
  int lead = a->ndim - shape.ndim;
  rat_check(lead >= 0, "ratfw: sum_to a larger shape");
  guint axes = 0;
  for (int d = 0; d < a->ndim; d++) {
    if (d < lead)
      axes |= 1u << d;
    else if (shape.d[d - lead] == 1 && a->shape[d] != 1)
      axes |= 1u << d;
  }
  RatTensor *s = rat_sum(a, axes, TRUE);
  return rat_reshape(s, shape);
}
