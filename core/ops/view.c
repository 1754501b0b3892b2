/* View ops (no data copied): reshape/view, permute, transpose, expand, slice, select, squeeze; and the copies
 * that change layout: contiguous, to_nhwc, copy. Each view's backward undoes it on the gradient. */
#include "config.h"

#include "ratfw-private.h"

/* ---- helpers --------------------------------------------------------------------------------------------- */

static RatTensor *make_view(RatTensor *a, int ndim, const gint64 *shape, const gint64 *stride, gint64 offset) {
  RatTensor *v = rat_tensor_new_view(a->storage, a->dtype, ndim, shape, stride, offset);
  return rat_scope_adopt(v);
}

/* PyTorch's computeStride: strides for viewing @a as @shape without copying, or FALSE. */
static gboolean view_strides(const RatTensor *a, RatShape shape, gint64 *out) {
  gint64 numel = rat_tensor_numel(a);
  if (numel == 0 || rat_tensor_is_contiguous(a)) {
    rat_strides_contiguous(shape, out);
    return TRUE;
  }
  int view_d = shape.ndim - 1;
  gint64 chunk_base_stride = a->ndim ? a->stride[a->ndim - 1] : 1;
  gint64 tensor_numel = 1, view_numel = 1;
  for (int tensor_d = a->ndim - 1; tensor_d >= 0; tensor_d--) {
    tensor_numel *= a->shape[tensor_d];
    if (tensor_d == 0 || (a->shape[tensor_d - 1] != 1 && a->stride[tensor_d - 1] != tensor_numel * chunk_base_stride)) {
      while (view_d >= 0 && (view_numel < tensor_numel || shape.d[view_d] == 1)) {
        out[view_d] = view_numel * chunk_base_stride;
        view_numel *= shape.d[view_d];
        view_d--;
      }
      if (view_numel != tensor_numel) return FALSE;
      if (tensor_d > 0) {
        chunk_base_stride = a->stride[tensor_d - 1];
        tensor_numel = 1;
        view_numel = 1;
      }
    }
  }
  if (view_d != -1) return FALSE;
  return TRUE;
}

static RatShape infer_shape(const RatTensor *a, RatShape shape) {
  gint64 numel = rat_tensor_numel(a), known = 1;
  int neg = -1;
  for (int i = 0; i < shape.ndim; i++) {
    if (shape.d[i] == -1) {
      rat_check(neg < 0, "ratfw: reshape with more than one -1");
      neg = i;
    } else {
      known *= shape.d[i];
    }
  }
  if (neg >= 0) {
    rat_check(known > 0 && numel % known == 0, "ratfw: cannot infer -1 in reshape");
    shape.d[neg] = numel / known;
  }
  if (rat_shape_numel(shape) != numel) {
    char *x = rat_shape_to_string(rat_tensor_shape(a)), *y = rat_shape_to_string(shape);
    g_error("ratfw: cannot reshape a tensor of shape %s to %s", x, y);
  }
  return shape;
}

/* ---- reshape / view ---------------------------------------------------------------------------------------- */

static void reshape_backward(RatNode *n, RatTensor *const *gy, RatTensor **gx) {
  if (rat_node_needs_grad(n, 0)) gx[0] = rat_reshape(gy[0], n->in_shape[0]);
}
static const RatOpDef op_reshape = {.name = "reshape", .n_inputs = 1, .backward = reshape_backward};

RatTensor *rat_view(RatTensor *a, RatShape shape) {
  shape = infer_shape(a, shape);
  gint64 st[RAT_MAX_DIMS];
  if (!view_strides(a, shape, st)) {
    char *x = rat_tensor_describe(a), *y = rat_shape_to_string(shape);
    g_error("ratfw: view of %s as %s is not possible without a copy (use rat_reshape)", x, y);
  }
  RatTensor *y = make_view(a, shape.ndim, shape.d, st, a->offset);
  rat_record(&op_reshape, &y, 1, &a, 1);
  return y;
}

RatTensor *rat_reshape(RatTensor *a, RatShape shape) {
  shape = infer_shape(a, shape);
  gint64 st[RAT_MAX_DIMS];
  if (rat_shape_equal(shape, rat_tensor_shape(a))) return a;
  if (view_strides(a, shape, st)) {
    RatTensor *y = make_view(a, shape.ndim, shape.d, st, a->offset);
    rat_record(&op_reshape, &y, 1, &a, 1);
    return y;
  }
  return rat_view(rat_contiguous(a), shape);
}

RatTensor *rat_flatten(RatTensor *a, int start, int end) {
  if (a->ndim == 0) return rat_reshape(a, RAT_SHAPE(1)); /* torch.flatten of a 0-d tensor is 1-d */
  start = rat_norm_axis(start, a->ndim);
  end = rat_norm_axis(end, a->ndim);
  RatShape s = {.ndim = 0};
  for (int d = 0; d < start; d++) s.d[s.ndim++] = a->shape[d];
  gint64 m = 1;
  for (int d = start; d <= end; d++) m *= a->shape[d];
  s.d[s.ndim++] = m;
  for (int d = end + 1; d < a->ndim; d++) s.d[s.ndim++] = a->shape[d];
  return rat_reshape(a, s);
}

RatTensor *rat_unsqueeze(RatTensor *a, int axis) {
  int ax = axis < 0 ? axis + a->ndim + 1 : axis;
  rat_check(ax >= 0 && ax <= a->ndim && a->ndim < RAT_MAX_DIMS, "ratfw: unsqueeze axis %d out of range", axis);
  RatShape s = {.ndim = a->ndim + 1};
  for (int d = 0, k = 0; d < s.ndim; d++) s.d[d] = d == ax ? 1 : a->shape[k++];
  return rat_reshape(a, s);
}

RatTensor *rat_squeeze(RatTensor *a, int axis) {
  int ax = rat_norm_axis(axis, a->ndim);
  if (a->shape[ax] != 1) return a;
  RatShape s = {.ndim = a->ndim - 1};
  for (int d = 0, k = 0; d < a->ndim; d++)
    if (d != ax) s.d[k++] = a->shape[d];
  return rat_reshape(a, s);
}

/* ---- permute / transpose ----------------------------------------------------------------------------------- */

static void permute_backward(RatNode *n, RatTensor *const *gy, RatTensor **gx) {
  if (!rat_node_needs_grad(n, 0)) return;
  int inv[RAT_MAX_DIMS];
  for (int d = 0; d < gy[0]->ndim; d++) inv[n->i[d]] = d;
  gx[0] = rat_permute(gy[0], inv);
}
static const RatOpDef op_permute = {.name = "permute", .n_inputs = 1, .backward = permute_backward};

RatTensor *rat_permute(RatTensor *a, const int *perm) {
  gint64 sh[RAT_MAX_DIMS], st[RAT_MAX_DIMS];
  guint seen = 0;
  for (int d = 0; d < a->ndim; d++) {
    int p = rat_norm_axis(perm[d], a->ndim);
    rat_check(!(seen & (1u << p)), "ratfw: permute with a repeated axis");
    seen |= 1u << p;
    sh[d] = a->shape[p];
    st[d] = a->stride[p];
  }
  RatTensor *y = make_view(a, a->ndim, sh, st, a->offset);
  RatNode *n = rat_record(&op_permute, &y, 1, &a, 1);
  if (n)
    for (int d = 0; d < a->ndim; d++) n->i[d] = rat_norm_axis(perm[d], a->ndim);
  return y;
}

RatTensor *rat_transpose(RatTensor *a, int d0, int d1) {
  int perm[RAT_MAX_DIMS];
  for (int d = 0; d < a->ndim; d++) perm[d] = d;
  d0 = rat_norm_axis(d0, a->ndim);
  d1 = rat_norm_axis(d1, a->ndim);
  perm[d0] = d1;
  perm[d1] = d0;
  return rat_permute(a, perm);
}

/* ---- expand ------------------------------------------------------------------------------------------------ */

static void expand_backward(RatNode *n, RatTensor *const *gy, RatTensor **gx) {
  if (rat_node_needs_grad(n, 0)) gx[0] = rat_sum_to(gy[0], n->in_shape[0]);
}
static const RatOpDef op_expand = {.name = "expand", .n_inputs = 1, .backward = expand_backward};

RatTensor *rat_expand(RatTensor *a, RatShape shape) {
  gint64 st[RAT_MAX_DIMS];
  rat_check(shape.ndim >= a->ndim, "ratfw: expand to fewer dimensions");
  for (int d = shape.ndim - a->ndim; d < shape.ndim; d++) /* -1 keeps the size (torch.Tensor.expand) */
    if (shape.d[d] == -1) shape.d[d] = a->shape[d - (shape.ndim - a->ndim)];
  if (rat_shape_equal(shape, rat_tensor_shape(a))) return a;
  rat_broadcast_strides(a, shape.ndim, shape.d, st);
  RatTensor *y = make_view(a, shape.ndim, shape.d, st, a->offset);
  rat_record(&op_expand, &y, 1, &a, 1);
  return y;
}

/* ---- slice / select ------------------------------------------------------------------------------------------ */

static RatTensor *slice_backward_op(RatTensor *g, RatShape in_shape, int axis, gint64 start);

static void slice_backward(RatNode *n, RatTensor *const *gy, RatTensor **gx) {
  if (rat_node_needs_grad(n, 0)) gx[0] = slice_backward_op(gy[0], n->in_shape[0], (int)n->i[0], n->i[1]);
}
static const RatOpDef op_slice = {.name = "slice", .n_inputs = 1, .backward = slice_backward};

/* Backward of slice: zeros of the input shape with g written at [start, start+len) along axis. */
static void slice_bwd_backward(RatNode *n, RatTensor *const *gy, RatTensor **gx) {
  if (rat_node_needs_grad(n, 0))
    gx[0] = rat_slice(gy[0], (int)n->i[0], n->i[1], n->i[1] + n->i[2]);
}
static const RatOpDef op_slice_bwd = {.name = "slice_backward", .n_inputs = 1, .backward = slice_bwd_backward};

static RatTensor *slice_backward_op(RatTensor *g, RatShape in_shape, int axis, gint64 start) {
  RatTensor *y = rat_zeros(in_shape);
  RAT_NO_GRAD_BEGIN
  RatTensor *dst = rat_slice(y, axis, start, start + g->shape[axis]);
  rat_tensor_copy_(dst, g);
  RAT_NO_GRAD_END
  RatNode *n = rat_record(&op_slice_bwd, &y, 1, &g, 1);
  if (n) {
    n->i[0] = axis;
    n->i[1] = start;
    n->i[2] = g->shape[axis];
  }
  return y;
}

RatTensor *rat_slice(RatTensor *a, int axis, gint64 start, gint64 end) {
  int ax = rat_norm_axis(axis, a->ndim);
  gint64 size = a->shape[ax];
  if (start < 0) start += size;
  if (end < 0) end += size;
  start = CLAMP(start, 0, size);
  end = CLAMP(end, start, size);
  gint64 sh[RAT_MAX_DIMS];
  memcpy(sh, a->shape, sizeof(sh));
  sh[ax] = end - start;
  RatTensor *y = make_view(a, a->ndim, sh, a->stride, a->offset + start * a->stride[ax]);
  RatNode *n = rat_record(&op_slice, &y, 1, &a, 1);
  if (n) {
    n->i[0] = ax;
    n->i[1] = start;
  }
  return y;
}

RatTensor *rat_select(RatTensor *a, int axis, gint64 index) {
  int ax = rat_norm_axis(axis, a->ndim);
  if (index < 0) index += a->shape[ax];
  rat_check(index >= 0 && index < a->shape[ax], "ratfw: select index out of range");
  return rat_squeeze(rat_slice(a, ax, index, index + 1), ax);
}

/* ---- layout copies --------------------------------------------------------------------------------------- */

static void copy_backward(RatNode *n, RatTensor *const *gy, RatTensor **gx) {
  if (rat_node_needs_grad(n, 0)) gx[0] = gy[0];
}
static const RatOpDef op_copy = {.name = "copy", .n_inputs = 1, .backward = copy_backward};

/* 32-bit word copy for i32 tensors (a round trip through float would round ids above 2^24). */
static void copy_words(gint64 n, char **p, const gint64 *st, gpointer user) {
  guint32 *d = (guint32 *)p[0];
  const guint32 *s = (const guint32 *)p[1];
  for (gint64 i = 0; i < n; i++) d[i * st[0]] = s[i * st[1]];
}

static RatTensor *copy_to(RatTensor *a, const gint64 *stride) {
  RatTensor *y = rat_empty_strided(a->dtype, rat_tensor_shape(a), stride);
  if (a->dtype == RAT_DTYPE_I32) {
    RatTensor *ops[2] = {y, a};
    gint64 st[2][RAT_MAX_DIMS];
    memcpy(st[0], y->stride, sizeof(st[0]));
    memcpy(st[1], a->stride, sizeof(st[1]));
    RatIter it;
    rat_iter_init(&it, 2, ops, (const gint64(*)[RAT_MAX_DIMS])st, a->ndim, a->shape);
    rat_iter_run(&it, copy_words, NULL);
    return y;
  }
  rat_tensor_copy_(y, a);
  rat_record(&op_copy, &y, 1, &a, 1);
  return y;
}

RatTensor *rat_contiguous(RatTensor *a) {
  if (rat_tensor_is_contiguous(a)) return a;
  gint64 st[RAT_MAX_DIMS];
  rat_strides_contiguous(rat_tensor_shape(a), st);
  return copy_to(a, st);
}

RatTensor *rat_to_nhwc(RatTensor *a) {
  rat_check(a->ndim == 4, "ratfw: to_nhwc needs a 4-D tensor");
  if (rat_tensor_is_nhwc(a)) return a;
  gint64 C = a->shape[1], H = a->shape[2], W = a->shape[3];
  gint64 st[4] = {H * W * C, 1, W * C, C};
  return copy_to(a, st);
}

RatTensor *rat_copy(RatTensor *a) {
  gint64 st[RAT_MAX_DIMS];
  rat_strides_like(rat_tensor_shape(a), a, st);
  return copy_to(a, st);
}
