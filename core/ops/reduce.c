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

/* Sum (in double, in a fixed order) of the reduced elements with flattened reduced index in [r0, r1), starting
 * at @base; the flattened index is row-major over the reduced dims sorted by stride (innermost last). */
static double sum_range(const float *base, const RedPlan *p, gint64 r0, gint64 r1) {
  if (p->nr == 0) return base[0];
  int last = p->nr - 1;
  gint64 n = p->rshape[last], s = p->rstride[last];
  gint64 idx[RAT_MAX_DIMS] = {0};
  gint64 rem = r0 / n, j0 = r0 % n;
  for (int i = last - 1; i >= 0; i--) {
    idx[i] = rem % p->rshape[i];
    rem /= p->rshape[i];
  }
  double acc = 0.0;
  for (gint64 r = r0; r < r1;) {
    gint64 off = 0;
    for (int i = 0; i < last; i++) off += idx[i] * p->rstride[i];
    const float *q = base + off;
    gint64 j1 = MIN(n, j0 + (r1 - r));
    if (s == 1)
      for (gint64 j = j0; j < j1; j++) acc += q[j];
    else
      for (gint64 j = j0; j < j1; j++) acc += q[j * s];
    r += j1 - j0;
    j0 = 0;
    for (int i = last - 1; i >= 0; i--) {
      if (++idx[i] < p->rshape[i]) break;
      idx[i] = 0;
    }
  }
  return acc;
}

/* Long reductions are cut into chunks of this many elements (a constant, so the summation order, and the bits,
 * do not depend on the thread count); the chunk partials are then added in order. */
#define SUM_CHUNK 16384

static void reduce_sum(const RatTensor *a, guint axes, double scale, float *out /* row-major kept shape */) {
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
    gint64 nchunk = (p.rcount + SUM_CHUNK - 1) / SUM_CHUNK;
    if (nchunk <= 1) {
#pragma omp parallel for schedule(static) num_threads(nt) if (work > 65536)
      for (gint64 o = 0; o < nout; o++)
        out[o] = (float)(sum_range(data + kept_offset(&p, o), &p, 0, p.rcount) * scale);
      return;
    }
    double *part = g_new(double, nout * nchunk);
#pragma omp parallel for schedule(static) num_threads(nt)
    for (gint64 t = 0; t < nout * nchunk; t++) {
      gint64 o = t / nchunk, c = t % nchunk;
      part[t] = sum_range(data + kept_offset(&p, o), &p, c * SUM_CHUNK, MIN((c + 1) * SUM_CHUNK, p.rcount));
    }
    for (gint64 o = 0; o < nout; o++) {
      double acc = 0.0;
      for (gint64 c = 0; c < nchunk; c++) acc += part[o * nchunk + c];
      out[o] = (float)(acc * scale);
    }
    g_free(part);
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
  double scale = mean ? (count ? 1.0 / (double)count : NAN) : 1.0;
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

/* ---- max along one axis: values; the gradient goes to the first maximum (torch.max(a, dim) semantics) ------
 * The backward is a scatter of the gradient to the saved indices, and the scatter's backward is the matching
 * gather, so both orders of differentiation stay expressible in recorded ops. */

/* Element offset (relative to the tensor's offset) of row-major linear index @o over @shape with @stride. */
static gint64 lin_offset(int ndim, const gint64 *shape, const gint64 *stride, gint64 o) {
  gint64 off = 0;
  for (int d = ndim - 1; d >= 0; d--) {
    gint64 i = o % shape[d];
    o /= shape[d];
    off += i * stride[d];
  }
  return off;
}

static RatTensor *index_scatter(RatTensor *g, RatTensor *idx, RatShape in_shape, int ax);
static RatTensor *index_gather(RatTensor *x, RatTensor *idx, int ax);

/* inputs: 0 = g (keepdim shape); the indices are saved */
static void index_scatter_backward(RatNode *n, RatTensor *const *gy, RatTensor **gx) {
  if (rat_node_needs_grad(n, 0)) gx[0] = index_gather(gy[0], rat_node_saved(n, 0), (int)n->i[0]);
}
static const RatOpDef op_index_scatter = {.name = "index_scatter", .n_inputs = 1, .backward = index_scatter_backward};

static void index_gather_backward(RatNode *n, RatTensor *const *gy, RatTensor **gx) {
  if (rat_node_needs_grad(n, 0)) gx[0] = index_scatter(gy[0], rat_node_saved(n, 0), n->in_shape[0], (int)n->i[0]);
}
static const RatOpDef op_index_gather = {.name = "index_gather", .n_inputs = 1, .backward = index_gather_backward};

/* y = zeros(in_shape); y[..., idx[o], ...] = g[o] along @ax. g and idx have in_shape with 1 at @ax. */
static RatTensor *index_scatter(RatTensor *g, RatTensor *idx, RatShape in_shape, int ax) {
  RatTensor *y = rat_zeros(in_shape);
  gint64 nout = rat_tensor_numel(idx), sax = y->stride[ax];
  const gint32 *ix = rat_tensor_data_i32(idx); /* row-major */
  const float *gd = rat_tensor_data(g);
  float *yd = rat_tensor_data(y);
#pragma omp parallel for schedule(static) if (nout > 32768)
  for (gint64 o = 0; o < nout; o++)
    yd[lin_offset(g->ndim, g->shape, y->stride, o) + ix[o] * sax] = gd[lin_offset(g->ndim, g->shape, g->stride, o)];
  RatNode *n = rat_record(&op_index_scatter, &y, 1, &g, 1);
  if (n) {
    n->i[0] = ax;
    rat_node_save(n, idx);
  }
  return y;
}

/* y[o] = x[..., idx[o], ...] along @ax; y has idx's shape (row-major). */
static RatTensor *index_gather(RatTensor *x, RatTensor *idx, int ax) {
  RatTensor *y = rat_empty(rat_tensor_shape(idx));
  gint64 nout = rat_tensor_numel(idx), sax = x->stride[ax];
  const gint32 *ix = rat_tensor_data_i32(idx);
  const float *xd = rat_tensor_data(x);
  float *yd = rat_tensor_data(y);
#pragma omp parallel for schedule(static) if (nout > 32768)
  for (gint64 o = 0; o < nout; o++) yd[o] = xd[lin_offset(y->ndim, y->shape, x->stride, o) + ix[o] * sax];
  RatNode *n = rat_record(&op_index_gather, &y, 1, &x, 1);
  if (n) {
    n->i[0] = ax;
    rat_node_save(n, idx);
  }
  return y;
}

static void max_backward(RatNode *n, RatTensor *const *gy, RatTensor **gx) {
  if (!rat_node_needs_grad(n, 0)) return;
  RatTensor *idx = rat_node_saved(n, 0);
  RatTensor *g = rat_reshape(gy[0], rat_tensor_shape(idx)); /* keepdim form */
  gx[0] = index_scatter(g, idx, n->in_shape[0], (int)n->i[0]);
}
static const RatOpDef op_max = {.name = "max", .n_inputs = 1, .backward = max_backward};

RatTensor *rat_max(RatTensor *a, int axis, gboolean keepdim) {
  rat_check(a->dtype == RAT_DTYPE_F32, "ratfw: max of a non-f32 tensor");
  if (a->ndim == 0) { /* torch.max(x, 0) of a 0-d tensor is x */
    rat_norm_axis(axis, 0);
    return rat_copy(a);
  }
  int ax = rat_norm_axis(axis, a->ndim);
  gint64 len = a->shape[ax], sa = a->stride[ax];
  if (len == 0) {
    char *d = rat_tensor_describe(a);
    g_error("ratfw: max along axis %d of %s: the axis is empty", ax, d);
  }
  RatShape ks = rat_tensor_shape(a);
  ks.d[ax] = 1;
  RatTensor *idx = rat_empty_dtype(RAT_DTYPE_I32, ks);
  RatTensor *y = rat_empty(reduced_shape(a, RAT_AXIS(ax), keepdim)); /* row-major: same order as ks */
  gint64 nout = rat_shape_numel(ks);
  const float *x = rat_tensor_data(a);
  float *yd = rat_tensor_data(y);
  gint32 *ix = rat_tensor_data_i32(idx);
#pragma omp parallel for schedule(static) if (nout * len > 65536)
  for (gint64 o = 0; o < nout; o++) {
    const float *q = x + lin_offset(a->ndim, ks.d, a->stride, o);
    float best = q[0];
    gint64 bi = 0;
    /* first maximum; a NaN is the maximum (as torch), the first NaN wins */
    for (gint64 j = 1; j < len && !isnan(best); j++) {
      float v = q[j * sa];
      if (v > best || isnan(v)) {
        best = v;
        bi = j;
      }
    }
    yd[o] = best;
    ix[o] = (gint32)bi;
  }
  RatNode *n = rat_record(&op_max, &y, 1, &a, 1);
  if (n) {
    n->i[0] = ax;
    rat_node_save(n, idx);
  }
  return y;
}
