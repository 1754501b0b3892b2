/* Shape ops that move data: concat (torch.cat), split (torch.split, views), tile (torch.Tensor.repeat) and roll
 * (torch.roll on one axis). Each backward is written in differentiable ops: concat -> slices, split -> concat,
 * tile -> sums over the repeat axes, roll -> roll by the opposite shift. Semantics follow torch 1.13. */
#include "config.h"

#include "ratfw-private.h"

/* An unrecorded view of @t restricted to [start, start + len) along @ax; owned reference (not scope-owned). */
static RatTensor *narrow_ref(const RatTensor *t, int ax, gint64 start, gint64 len) {
  gint64 sh[RAT_MAX_DIMS];
  memcpy(sh, t->shape, sizeof(sh));
  sh[ax] = len;
  return rat_tensor_new_view(t->storage, t->dtype, t->ndim, sh, t->stride, t->offset + start * t->stride[ax]);
}

/* ---- concat -------------------------------------------------------------------------------------------------- */

static void concat_backward(RatNode *n, RatTensor *const *gy, RatTensor **gx) {
  int ax = (int)n->i[0];
  gint64 off = 0;
  for (guint k = 0; k < n->n_in; k++) {
    gint64 len = n->in_shape[k].d[ax];
    if (rat_node_needs_grad(n, k)) gx[k] = rat_slice(gy[0], ax, off, off + len);
    off += len;
  }
}
static const RatOpDef op_concat = {.name = "concat", .n_inputs = -1, .backward = concat_backward};

RatTensor *rat_concat(RatTensor *const *ts, guint n, int axis) {
  rat_check(n >= 1 && ts[0], "ratfw: concat of no tensors");
  RatTensor *t0 = ts[0];
  rat_check(t0->ndim >= 1, "ratfw: concat of 0-d tensors");
  int ax = rat_norm_axis(axis, t0->ndim);
  RatShape s = rat_tensor_shape(t0);
  s.d[ax] = 0;
  for (guint k = 0; k < n; k++) {
    RatTensor *t = ts[k];
    gboolean ok = t->ndim == t0->ndim && t->dtype == t0->dtype;
    for (int d = 0; ok && d < t0->ndim; d++)
      if (d != ax && t->shape[d] != t0->shape[d]) ok = FALSE;
    if (!ok) {
      char *a = rat_tensor_describe(t0), *b = rat_tensor_describe(t);
      g_error("ratfw: concat along axis %d: input %u (%s) does not match input 0 (%s)", ax, k, b, a);
    }
    s.d[ax] += t->shape[ax];
  }
  /* The output keeps the dense layout of the first input (channels-last features stay channels-last). */
  gint64 st[RAT_MAX_DIMS];
  rat_strides_like(s, rat_tensor_is_dense(t0) ? t0 : NULL, st);
  RatTensor *y = rat_empty_strided(t0->dtype, s, st);
  gint64 off = 0;
  for (guint k = 0; k < n; k++) {
    gint64 len = ts[k]->shape[ax];
    if (len > 0 && rat_tensor_numel(ts[k]) > 0) {
      RatTensor *dst = narrow_ref(y, ax, off, len);
      rat_tensor_copy_(dst, ts[k]);
      rat_tensor_unref(dst);
    }
    off += len;
  }
  RatNode *node = rat_record(&op_concat, &y, 1, ts, n);
  if (node) node->i[0] = ax;
  return y;
}

/* ---- split ------------------------------------------------------------------------------------------------------- */

static void split_backward(RatNode *n, RatTensor *const *gy, RatTensor **gx) {
  if (rat_node_needs_grad(n, 0)) gx[0] = rat_concat(gy, n->n_out, (int)n->i[0]);
}
static const RatOpDef op_split = {.name = "split", .n_inputs = 1, .backward = split_backward};

void rat_split(RatTensor *a, int axis, const gint64 *sizes, guint n, RatTensor **out) {
  rat_check(a->ndim >= 1 && n >= 1, "ratfw: split needs a tensor with at least one dimension and one piece");
  int ax = rat_norm_axis(axis, a->ndim);
  gint64 total = 0;
  for (guint i = 0; i < n; i++) {
    rat_check(sizes[i] >= 0, "ratfw: split size %" G_GINT64_FORMAT " is negative", sizes[i]);
    total += sizes[i];
  }
  if (total != a->shape[ax]) {
    char *d = rat_tensor_describe(a);
    g_error("ratfw: split sizes sum to %" G_GINT64_FORMAT " but axis %d of %s has %" G_GINT64_FORMAT, total, ax, d,
            a->shape[ax]);
  }
  gint64 off = 0;
  for (guint i = 0; i < n; i++) {
    out[i] = rat_scope_adopt(narrow_ref(a, ax, off, sizes[i]));
    off += sizes[i];
  }
  /* One node with n outputs: the backward is a single concat (missing output gradients arrive as zeros). */
  RatNode *node = rat_record(&op_split, out, n, &a, 1);
  if (node) node->i[0] = ax;
}

/* ---- tile (torch.Tensor.repeat) ------------------------------------------------------------------------------ */

/* y = a tiled by reps; @a is padded with leading 1s to reps.ndim dims. Works on 32-bit words (f32 and i32). */
static void tile_kernel(const RatTensor *a, RatTensor *y, RatShape reps) {
  int nd = reps.ndim, lead = nd - a->ndim;
  gint64 p[RAT_MAX_DIMS], ps[RAT_MAX_DIMS]; /* padded input shape and strides */
  for (int d = 0; d < nd; d++) {
    p[d] = d < lead ? 1 : a->shape[d - lead];
    ps[d] = d < lead ? 0 : a->stride[d - lead];
  }
  const guint32 *src = (const guint32 *)a->storage->data + a->offset;
  guint32 *dst = (guint32 *)y->storage->data + y->offset; /* y is fresh and row-major */
  if (nd == 0) {
    dst[0] = src[0];
    return;
  }
  gint64 L = y->shape[nd - 1], pl = p[nd - 1], sl = ps[nd - 1], rl = reps.d[nd - 1];
  gint64 rows = rat_tensor_numel(y) / L;
  int nt = rat_get_num_threads();
#pragma omp parallel for schedule(static) num_threads(nt) if (rows * L > 32768)
  for (gint64 r = 0; r < rows; r++) {
    gint64 rem = r, off = 0;
    for (int d = nd - 2; d >= 0; d--) {
      gint64 i = rem % y->shape[d];
      rem /= y->shape[d];
      off += (i % p[d]) * ps[d];
    }
    const guint32 *s = src + off;
    guint32 *o = dst + r * L;
    for (gint64 k = 0; k < rl; k++, o += pl)
      for (gint64 j = 0; j < pl; j++) o[j] = s[j * sl];
  }
}

static void tile_backward(RatNode *n, RatTensor *const *gy, RatTensor **gx) {
  if (!rat_node_needs_grad(n, 0)) return;
  RatShape in = n->in_shape[0], out = n->out_shape[0];
  if (rat_shape_numel(in) == 0) {
    gx[0] = rat_zeros(in);
    return;
  }
  int nd = out.ndim, lead = nd - in.ndim;
  RatShape cur = out;
  RatTensor *g = gy[0];
  /* Sum the repeats away one axis at a time: view [pre, r, p*post] and sum the middle axis. */
  for (int d = 0; d < nd; d++) {
    gint64 p = d < lead ? 1 : in.d[d - lead], r = out.d[d] / p;
    if (r == 1) continue;
    gint64 pre = 1, post = 1;
    for (int e = 0; e < d; e++) pre *= cur.d[e];
    for (int e = d + 1; e < nd; e++) post *= cur.d[e];
    g = rat_sum(rat_reshape(g, RAT_SHAPE(pre, r, p * post)), RAT_AXIS(1), FALSE);
    cur.d[d] = p;
  }
  gx[0] = rat_reshape(g, in);
}
static const RatOpDef op_tile = {.name = "tile", .n_inputs = 1, .backward = tile_backward};

RatTensor *rat_tile(RatTensor *a, RatShape reps) {
  if (reps.ndim < a->ndim) {
    char *x = rat_shape_to_string(reps), *d = rat_tensor_describe(a);
    g_error("ratfw: tile: repeats %s have fewer dimensions than the tensor %s", x, d);
  }
  int lead = reps.ndim - a->ndim;
  RatShape s = {.ndim = reps.ndim};
  for (int d = 0; d < reps.ndim; d++) {
    rat_check(reps.d[d] >= 0, "ratfw: tile: negative repeat count");
    s.d[d] = reps.d[d] * (d < lead ? 1 : a->shape[d - lead]);
  }
  RatTensor *y = rat_empty_dtype(a->dtype, s);
  if (rat_shape_numel(s) > 0) tile_kernel(a, y, reps);
  rat_record(&op_tile, &y, 1, &a, 1);
  return y;
}

/* ---- roll ------------------------------------------------------------------------------------------------------ */

static void roll_backward(RatNode *n, RatTensor *const *gy, RatTensor **gx) {
  if (rat_node_needs_grad(n, 0)) gx[0] = rat_roll(gy[0], -n->i[0], (int)n->i[1]);
}
static const RatOpDef op_roll = {.name = "roll", .n_inputs = 1, .backward = roll_backward};

RatTensor *rat_roll(RatTensor *a, gint64 shift, int axis) {
  rat_check(a->ndim >= 1, "ratfw: roll of a 0-d tensor");
  int ax = rat_norm_axis(axis, a->ndim);
  gint64 len = a->shape[ax];
  RatTensor *y = rat_empty_like(a);
  if (rat_tensor_numel(a) > 0) {
    gint64 s = ((shift % len) + len) % len; /* y[(i + shift) mod len] = a[i] */
    RatTensor *d0 = narrow_ref(y, ax, s, len - s), *s0 = narrow_ref(a, ax, 0, len - s);
    rat_tensor_copy_(d0, s0);
    rat_tensor_unref(d0);
    rat_tensor_unref(s0);
    if (s > 0) {
      RatTensor *d1 = narrow_ref(y, ax, 0, s), *s1 = narrow_ref(a, ax, len - s, s);
      rat_tensor_copy_(d1, s1);
      rat_tensor_unref(d1);
      rat_tensor_unref(s1);
    }
  }
  RatNode *n = rat_record(&op_roll, &y, 1, &a, 1);
  if (n) {
    n->i[0] = shift;
    n->i[1] = ax;
  }
  return y;
}
