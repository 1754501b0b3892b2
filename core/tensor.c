/* Tensors, storage with a caching allocator, and the per-thread scope stack that owns temporaries.
 * See core/include/ratfw/tensor.h for the ownership and layout rules. */
#include "config.h"

#include "ratfw-private.h"
#include <ratfw/error.h>

#include <math.h>
#include <stdlib.h>

/* ---- caching allocator ----------------------------------------------------------------------------------
 * Freed buffers are kept in per-size free lists and handed out again for the same rounded size, so a
 * training step that repeats the same shapes allocates nothing from the system after the first step. */

static GMutex alloc_lock;
static GHashTable *free_lists; /* rounded size -> GSList of buffers */
static gsize bytes_in_use, bytes_cached, bytes_peak;

static gsize round_size(gsize n) {
  if (n == 0) n = 1;
  if (n < 65536) return (n + RAT_ALIGN - 1) & ~(gsize)(RAT_ALIGN - 1);
  return (n + 4095) & ~(gsize)4095;
}

static gpointer cache_alloc(gsize n) {
  gsize r = round_size(n);
  gpointer p = NULL;
  g_mutex_lock(&alloc_lock);
  if (!free_lists) free_lists = g_hash_table_new(g_direct_hash, g_direct_equal);
  GSList *l = g_hash_table_lookup(free_lists, GSIZE_TO_POINTER(r));
  if (l) {
    p = l->data;
    GSList *rest = g_slist_delete_link(l, l);
    if (rest)
      g_hash_table_insert(free_lists, GSIZE_TO_POINTER(r), rest);
    else
      g_hash_table_remove(free_lists, GSIZE_TO_POINTER(r));
    bytes_cached -= r;
  }
  bytes_in_use += r;
  if (bytes_in_use > bytes_peak) bytes_peak = bytes_in_use;
  g_mutex_unlock(&alloc_lock);
  if (!p) {
    p = aligned_alloc(RAT_ALIGN, r);
    if (!p) g_error("ratfw: out of memory allocating %" G_GSIZE_FORMAT " bytes", r);
  }
  return p;
}

static void cache_free(gpointer p, gsize n) {
  gsize r = round_size(n);
  g_mutex_lock(&alloc_lock);
  GSList *l = g_hash_table_lookup(free_lists, GSIZE_TO_POINTER(r));
  g_hash_table_insert(free_lists, GSIZE_TO_POINTER(r), g_slist_prepend(l, p));
  bytes_in_use -= r;
  bytes_cached += r;
  g_mutex_unlock(&alloc_lock);
}

void rat_allocator_stats(gsize *in_use, gsize *cached, gsize *peak) {
  g_mutex_lock(&alloc_lock);
  if (in_use) *in_use = bytes_in_use;
  if (cached) *cached = bytes_cached;
  if (peak) *peak = bytes_peak;
  g_mutex_unlock(&alloc_lock);
}

static gboolean trim_one(gpointer key, gpointer value, gpointer user) {
  g_slist_free_full(value, free);
  return TRUE;
}

void rat_allocator_trim(void) {
  g_mutex_lock(&alloc_lock);
  if (free_lists) g_hash_table_foreach_remove(free_lists, trim_one, NULL);
  bytes_cached = 0;
  g_mutex_unlock(&alloc_lock);
}

RatStorage *rat_storage_new(gsize nbytes) {
  RatStorage *s = g_new0(RatStorage, 1);
  s->ref = 1;
  s->nbytes = nbytes;
  s->data = cache_alloc(nbytes);
  return s;
}

RatStorage *rat_storage_new_external(gpointer data, gsize nbytes) {
  RatStorage *s = g_new0(RatStorage, 1);
  s->ref = 1;
  s->nbytes = nbytes;
  s->data = data;
  s->external = TRUE;
  return s;
}

RatStorage *rat_storage_ref(RatStorage *s) {
  g_atomic_int_inc(&s->ref);
  return s;
}

void rat_storage_unref(RatStorage *s) {
  if (!s || !g_atomic_int_dec_and_test(&s->ref)) return;
  if (!s->external) cache_free(s->data, s->nbytes);
  g_free(s);
}

/* ---- scopes ---------------------------------------------------------------------------------------------- */

static _Thread_local GPtrArray *scope_items;
static _Thread_local guint scope_depth;

static GPtrArray *items(void) {
  if (!scope_items) scope_items = g_ptr_array_new();
  return scope_items;
}

RatScope rat_scope_push(void) {
  scope_depth++;
  return items()->len;
}

void rat_scope_pop(RatScope scope) {
  GPtrArray *a = items();
  g_return_if_fail(scope <= a->len);
  /* Unref newest first: later tensors may hold graph references to earlier ones. */
  while (a->len > scope) {
    RatTensor *t = g_ptr_array_steal_index(a, a->len - 1);
    rat_tensor_unref(t);
  }
  if (scope_depth) scope_depth--;
}

RatTensor *rat_scope_pop_keep(RatScope scope, RatTensor *t) {
  if (t) rat_tensor_ref(t);
  rat_scope_pop(scope);
  if (t) g_ptr_array_add(items(), t);
  return t;
}

RatTensor *rat_scope_adopt(RatTensor *t) {
  if (t) g_ptr_array_add(items(), t);
  return t;
}

guint rat_scope_size(void) { return items()->len; }

/* ---- construction ---------------------------------------------------------------------------------------- */

static gsize dtype_size(RatDType d) { return d == RAT_DTYPE_I32 ? 4 : 4; }

gint64 rat_shape_numel(RatShape s) {
  gint64 n = 1;
  for (int i = 0; i < s.ndim; i++) n *= s.d[i];
  return n;
}

void rat_strides_contiguous(RatShape shape, gint64 *stride) {
  gint64 st = 1;
  for (int i = shape.ndim - 1; i >= 0; i--) {
    stride[i] = st;
    st *= MAX(shape.d[i], 1);
  }
}

RatTensor *rat_tensor_new_view(RatStorage *storage, RatDType dtype, int ndim, const gint64 *shape,
                               const gint64 *stride, gint64 offset) {
  g_assert(ndim >= 0 && ndim <= RAT_MAX_DIMS);
  RatTensor *t = g_slice_new0(RatTensor);
  t->ref = 1;
  t->dtype = dtype;
  t->ndim = ndim;
  for (int i = 0; i < ndim; i++) {
    t->shape[i] = shape[i];
    t->stride[i] = stride[i];
  }
  t->offset = offset;
  t->storage = rat_storage_ref(storage);
  return t;
}

RatTensor *rat_empty_strided(RatDType dtype, RatShape shape, const gint64 *stride) {
  gint64 span = 1;
  for (int i = 0; i < shape.ndim; i++)
    if (shape.d[i] == 0) span = 0;
  if (span) {
    span = 1;
    for (int i = 0; i < shape.ndim; i++) span += (shape.d[i] - 1) * stride[i];
  }
  RatStorage *s = rat_storage_new((gsize)span * dtype_size(dtype));
  RatTensor *t = rat_tensor_new_view(s, dtype, shape.ndim, shape.d, stride, 0);
  rat_storage_unref(s);
  return rat_scope_adopt(t);
}

RatTensor *rat_empty_dtype(RatDType dtype, RatShape shape) {
  gint64 st[RAT_MAX_DIMS];
  rat_strides_contiguous(shape, st);
  return rat_empty_strided(dtype, shape, st);
}

RatTensor *rat_empty(RatShape shape) { return rat_empty_dtype(RAT_DTYPE_F32, shape); }

RatTensor *rat_empty_nhwc(RatShape s) {
  g_assert(s.ndim == 4);
  gint64 st[4] = {s.d[1] * s.d[2] * s.d[3], 1, s.d[3] * s.d[1], s.d[1]};
  return rat_empty_strided(RAT_DTYPE_F32, s, st);
}

/* Order of dims from outermost to innermost for a dense tensor (stable for equal strides). */
static gboolean dense_order(const RatTensor *t, int *order) {
  int n = t->ndim;
  for (int i = 0; i < n; i++) order[i] = i;
  for (int i = 1; i < n; i++) { /* insertion sort by stride descending */
    int k = order[i], j = i - 1;
    while (j >= 0 && t->stride[order[j]] < t->stride[k]) {
      order[j + 1] = order[j];
      j--;
    }
    order[j + 1] = k;
  }
  gint64 expect = 1;
  for (int i = n - 1; i >= 0; i--) {
    int d = order[i];
    if (t->shape[d] == 1) continue;
    if (t->stride[d] != expect) return FALSE;
    expect *= t->shape[d];
  }
  return TRUE;
}

gboolean rat_tensor_is_dense(const RatTensor *t) {
  int order[RAT_MAX_DIMS];
  return dense_order(t, order);
}

void rat_strides_like(RatShape shape, const RatTensor *like, gint64 *stride) {
  int order[RAT_MAX_DIMS];
  if (!like || like->ndim != shape.ndim || !dense_order(like, order)) {
    rat_strides_contiguous(shape, stride);
    return;
  }
  gint64 st = 1;
  for (int i = shape.ndim - 1; i >= 0; i--) {
    int d = order[i];
    stride[d] = st;
    st *= MAX(shape.d[d], 1);
  }
}

RatTensor *rat_empty_like(const RatTensor *t) {
  gint64 st[RAT_MAX_DIMS];
  RatShape s = rat_tensor_shape(t);
  rat_strides_like(s, t, st);
  return rat_empty_strided(t->dtype, s, st);
}

RatTensor *rat_full(RatShape shape, float value) {
  RatTensor *t = rat_empty(shape);
  rat_tensor_fill_(t, value);
  return t;
}

RatTensor *rat_zeros(RatShape shape) { return rat_full(shape, 0.0f); }
RatTensor *rat_ones(RatShape shape) { return rat_full(shape, 1.0f); }

RatTensor *rat_full_like(const RatTensor *t, float value) {
  RatTensor *y = rat_empty_like(t);
  y->dtype = RAT_DTYPE_F32;
  rat_tensor_fill_(y, value);
  return y;
}

RatTensor *rat_zeros_like(const RatTensor *t) { return rat_full_like(t, 0.0f); }

RatTensor *rat_scalar(float value) { return rat_full(RAT_SHAPE0, value); }

RatTensor *rat_from_data(RatShape shape, const float *data) {
  RatTensor *t = rat_empty(shape);
  memcpy(rat_tensor_data(t), data, (gsize)rat_shape_numel(shape) * sizeof(float));
  return t;
}

RatTensor *rat_from_i32(RatShape shape, const gint32 *data) {
  RatTensor *t = rat_empty_dtype(RAT_DTYPE_I32, shape);
  memcpy(rat_tensor_data_i32(t), data, (gsize)rat_shape_numel(shape) * sizeof(gint32));
  return t;
}

RatTensor *rat_arange(gint64 n) {
  RatTensor *t = rat_empty(RAT_SHAPE(n));
  float *p = rat_tensor_data(t);
  for (gint64 i = 0; i < n; i++) p[i] = (float)i;
  return t;
}

RatTensor *rat_tensor_ref(RatTensor *t) {
  g_atomic_int_inc(&t->ref);
  return t;
}

void rat_tensor_unref(RatTensor *t) {
  if (!t || !g_atomic_int_dec_and_test(&t->ref)) return;
  if (t->grad_acc) {
    t->grad_acc->leaf = NULL;
    rat_node_unref(t->grad_acc);
  }
  if (t->grad_fn) rat_node_unref(t->grad_fn);
  if (t->grad) rat_tensor_unref(t->grad);
  rat_storage_unref(t->storage);
  g_free(t->name);
  g_slice_free(RatTensor, t);
}

/* ---- metadata ------------------------------------------------------------------------------------------- */

RatShape rat_tensor_shape(const RatTensor *t) {
  RatShape s = {.ndim = t->ndim};
  for (int i = 0; i < t->ndim; i++) s.d[i] = t->shape[i];
  return s;
}

gint64 rat_tensor_numel(const RatTensor *t) { return rat_shape_numel(rat_tensor_shape(t)); }

gboolean rat_shape_equal(RatShape a, RatShape b) {
  if (a.ndim != b.ndim) return FALSE;
  for (int i = 0; i < a.ndim; i++)
    if (a.d[i] != b.d[i]) return FALSE;
  return TRUE;
}

char *rat_shape_to_string(RatShape s) {
  GString *g = g_string_new("[");
  for (int i = 0; i < s.ndim; i++) g_string_append_printf(g, "%s%" G_GINT64_FORMAT, i ? ", " : "", s.d[i]);
  g_string_append_c(g, ']');
  return g_string_free(g, FALSE);
}

char *rat_tensor_describe(const RatTensor *t) {
  GString *g = g_string_new(t->dtype == RAT_DTYPE_I32 ? "i32[" : "f32[");
  for (int i = 0; i < t->ndim; i++) g_string_append_printf(g, "%s%" G_GINT64_FORMAT, i ? ", " : "", t->shape[i]);
  g_string_append(g, "] strides [");
  for (int i = 0; i < t->ndim; i++) g_string_append_printf(g, "%s%" G_GINT64_FORMAT, i ? ", " : "", t->stride[i]);
  g_string_append_c(g, ']');
  return g_string_free(g, FALSE);
}

gboolean rat_tensor_is_contiguous(const RatTensor *t) {
  gint64 expect = 1;
  for (int i = t->ndim - 1; i >= 0; i--) {
    if (t->shape[i] == 1) continue;
    if (t->stride[i] != expect) return FALSE;
    expect *= t->shape[i];
  }
  return TRUE;
}

gboolean rat_tensor_is_nhwc(const RatTensor *t) {
  if (t->ndim != 4) return FALSE;
  gint64 C = t->shape[1], H = t->shape[2], W = t->shape[3];
  return (C == 1 || t->stride[1] == 1) && (W == 1 || t->stride[3] == C) && (H == 1 || t->stride[2] == W * C) &&
         (t->shape[0] == 1 || t->stride[0] == H * W * C);
}

gboolean rat_tensor_same_layout(const RatTensor *a, const RatTensor *b) {
  if (a->ndim != b->ndim) return FALSE;
  for (int i = 0; i < a->ndim; i++) {
    if (a->shape[i] != b->shape[i]) return FALSE;
    if (a->shape[i] != 1 && a->stride[i] != b->stride[i]) return FALSE;
  }
  return rat_tensor_is_dense(a) && rat_tensor_is_dense(b);
}

void rat_tensor_set_name(RatTensor *t, const char *name) {
  g_free(t->name);
  t->name = g_strdup(name);
}

float *rat_tensor_data(const RatTensor *t) { return (float *)t->storage->data + t->offset; }
gint32 *rat_tensor_data_i32(const RatTensor *t) { return (gint32 *)t->storage->data + t->offset; }

int rat_norm_axis(int axis, int ndim) {
  int a = axis < 0 ? axis + ndim : axis;
  rat_check(a >= 0 && a < MAX(ndim, 1), "ratfw: axis %d out of range for a %d-d tensor", axis, ndim);
  return a;
}

gint64 rat_tensor_dim(const RatTensor *t, int d) { return t->shape[rat_norm_axis(d, t->ndim)]; }

float rat_tensor_get(const RatTensor *t, const gint64 *index) {
  gint64 off = t->offset;
  for (int i = 0; i < t->ndim; i++) off += index[i] * t->stride[i];
  if (t->dtype == RAT_DTYPE_I32) return (float)((gint32 *)t->storage->data)[off];
  return ((float *)t->storage->data)[off];
}

float rat_tensor_item(const RatTensor *t) {
  rat_check(rat_tensor_numel(t) == 1, "ratfw: rat_tensor_item on a tensor with %" G_GINT64_FORMAT " elements",
            rat_tensor_numel(t));
  gint64 zero[RAT_MAX_DIMS] = {0};
  return rat_tensor_get(t, zero);
}

/* Generic strided walk used by read/write/copy (not hot: kernels use RatIter). */
typedef struct {
  gint64 idx[RAT_MAX_DIMS];
} Counter;

static gboolean counter_next(Counter *c, const RatTensor *t) {
  for (int i = t->ndim - 1; i >= 0; i--) {
    if (++c->idx[i] < t->shape[i]) return TRUE;
    c->idx[i] = 0;
  }
  return FALSE;
}

static gint64 counter_off(const Counter *c, const RatTensor *t) {
  gint64 off = t->offset;
  for (int i = 0; i < t->ndim; i++) off += c->idx[i] * t->stride[i];
  return off;
}

void rat_tensor_read(const RatTensor *t, float *out) {
  gint64 n = rat_tensor_numel(t);
  if (n == 0) return;
  if (t->dtype == RAT_DTYPE_F32 && rat_tensor_is_contiguous(t)) {
    memcpy(out, rat_tensor_data(t), n * sizeof(float));
    return;
  }
  Counter c = {{0}};
  gint64 k = 0;
  do {
    gint64 off = counter_off(&c, t);
    out[k++] = t->dtype == RAT_DTYPE_I32 ? (float)((gint32 *)t->storage->data)[off]
                                         : ((float *)t->storage->data)[off];
  } while (counter_next(&c, t));
}

void rat_tensor_write(RatTensor *t, const float *in) {
  gint64 n = rat_tensor_numel(t);
  if (n == 0) return;
  g_assert(t->dtype == RAT_DTYPE_F32);
  if (rat_tensor_is_contiguous(t)) {
    memcpy(rat_tensor_data(t), in, n * sizeof(float));
  } else {
    Counter c = {{0}};
    gint64 k = 0;
    do ((float *)t->storage->data)[counter_off(&c, t)] = in[k++];
    while (counter_next(&c, t));
  }
  rat_tensor_bump_version(t);
}

static void copy_inner(gint64 n, char **p, const gint64 *st, gpointer user) {
  float *d = (float *)p[0];
  const float *s = (const float *)p[1];
  if (st[0] == 1 && st[1] == 1) {
    memcpy(d, s, n * sizeof(float));
    return;
  }
  for (gint64 i = 0; i < n; i++) d[i * st[0]] = s[i * st[1]];
}

void rat_tensor_copy_(RatTensor *dst, const RatTensor *src) {
  RatShape ds = rat_tensor_shape(dst);
  gint64 bst[RAT_MAX_DIMS];
  rat_check(src->ndim <= dst->ndim, "ratfw: copy_ from a larger tensor");
  rat_broadcast_strides(src, ds.ndim, ds.d, bst);
  RatIter it;
  RatTensor *ops[2] = {dst, (RatTensor *)src};
  gint64 strides[2][RAT_MAX_DIMS];
  memcpy(strides[0], dst->stride, sizeof(strides[0]));
  memcpy(strides[1], bst, sizeof(strides[1]));
  rat_iter_init(&it, 2, ops, (const gint64(*)[RAT_MAX_DIMS])strides, ds.ndim, ds.d);
  rat_iter_run(&it, copy_inner, NULL);
  rat_tensor_bump_version(dst);
}

static void fill_inner(gint64 n, char **p, const gint64 *st, gpointer user) {
  float v = *(float *)user;
  float *d = (float *)p[0];
  for (gint64 i = 0; i < n; i++) d[i * st[0]] = v;
}

void rat_tensor_fill_(RatTensor *t, float value) {
  if (t->dtype == RAT_DTYPE_I32) {
    Counter c = {{0}};
    if (rat_tensor_numel(t) == 0) return;
    do ((gint32 *)t->storage->data)[counter_off(&c, t)] = (gint32)value;
    while (counter_next(&c, t));
    return;
  }
  RatIter it;
  rat_iter_init(&it, 1, &t, (const gint64(*)[RAT_MAX_DIMS])t->stride, t->ndim, t->shape);
  rat_iter_run(&it, fill_inner, &value);
  rat_tensor_bump_version(t);
}

void rat_tensor_bump_version(RatTensor *t) { t->storage->version++; }

RatTensor *rat_tensor_alias(RatTensor *t) {
  RatTensor *a = rat_tensor_new_view(t->storage, t->dtype, t->ndim, t->shape, t->stride, t->offset);
  return rat_scope_adopt(a);
}

RatTensor *rat_tensor_detach(RatTensor *t) { return rat_tensor_alias(t); }

void rat_tensor_set_requires_grad(RatTensor *t, gboolean requires) {
  rat_check(!t->grad_fn, "ratfw: requires_grad can only be set on leaf tensors");
  t->requires_grad = requires;
}

void rat_tensor_zero_grad(RatTensor *t) {
  if (!t->grad) return;
  if (t->grad->grad_fn) { /* a graph-carrying gradient (create_graph): drop it */
    rat_tensor_unref(t->grad);
    t->grad = NULL;
    return;
  }
  rat_tensor_fill_(t->grad, 0.0f);
}

gboolean rat_tensor_needs_grad(const RatTensor *t) { return t && (t->requires_grad || t->grad_fn); }

/* ---- threads -------------------------------------------------------------------------------------------- */

int rat_get_num_threads(void) {
#ifdef _OPENMP
  return omp_get_max_threads();
#else
  return 1;
#endif
}

void rat_set_num_threads(int n) {
#ifdef _OPENMP
  if (n > 0) omp_set_num_threads(n);
#endif
}

void rat_init(void) {
  static gsize once = 0;
  if (g_once_init_enter(&once)) {
    const char *env = g_getenv("RATFW_NUM_THREADS");
    if (env && atoi(env) > 0) rat_set_num_threads(atoi(env));
    g_once_init_leave(&once, 1);
  }
}

static void add_inner(gint64 n, char **p, const gint64 *st, gpointer user) {
  float a = *(float *)user;
  float *d = (float *)p[0];
  const float *s = (const float *)p[1];
  if (st[0] == 1 && st[1] == 1) {
    for (gint64 i = 0; i < n; i++) d[i] += a * s[i];
    return;
  }
  for (gint64 i = 0; i < n; i++) d[i * st[0]] += a * s[i * st[1]];
}

void rat_tensor_add_(RatTensor *dst, const RatTensor *src, float alpha) {
  RatShape ds = rat_tensor_shape(dst);
  gint64 strides[2][RAT_MAX_DIMS];
  memcpy(strides[0], dst->stride, sizeof(strides[0]));
  rat_broadcast_strides(src, ds.ndim, ds.d, strides[1]);
  RatIter it;
  RatTensor *ops[2] = {dst, (RatTensor *)src};
  rat_iter_init(&it, 2, ops, (const gint64(*)[RAT_MAX_DIMS])strides, ds.ndim, ds.d);
  rat_iter_run(&it, add_inner, &alpha);
  rat_tensor_bump_version(dst);
}

G_DEFINE_QUARK(rat-error-quark, rat_error)
