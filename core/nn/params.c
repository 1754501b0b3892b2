/* Parameter arenas: ordered named tensors (trainable, frozen, buffers) with all trainable values packed into one
 * storage and all their gradients into another, so the autograd engine accumulates in place into views and
 * the optimisers run one flat loop (STYLE.md "Memory"; llm.c carves its parameters from one allocation). */
#include "config.h"

#include "ratfw-private.h"
#include <ratfw/error.h>
#include <ratfw/nn.h>

#include <math.h>

typedef struct {
  char *name;
  RatTensor *t;     /* owned reference */
  RatParamKind kind;
  RatTensor *gview; /* trainable, after finalize: owned view into the flat gradient storage */
} Entry;

struct _RatParams {
  GPtrArray *entries;  /* Entry*, insertion order */
  GHashTable *by_name; /* name -> Entry* */
  gboolean finalized;
  gboolean merged; /* merged into another set: its tensors belong to that set's packing now */
  RatTensor *flat, *flat_grad;
};

static void entry_free(gpointer p) {
  Entry *e = p;
  g_free(e->name);
  rat_tensor_unref(e->t);
  if (e->gview) rat_tensor_unref(e->gview);
  g_free(e);
}

RatParams *rat_params_new(void) {
  RatParams *p = g_new0(RatParams, 1);
  p->entries = g_ptr_array_new_with_free_func(entry_free);
  p->by_name = g_hash_table_new(g_str_hash, g_str_equal);
  return p;
}

void rat_params_free(RatParams *p) {
  if (!p) return;
  g_hash_table_destroy(p->by_name);
  g_ptr_array_free(p->entries, TRUE);
  if (p->flat) rat_tensor_unref(p->flat);
  if (p->flat_grad) rat_tensor_unref(p->flat_grad);
  g_free(p);
}

static void set_kind(RatTensor *t, RatParamKind kind) {
  t->requires_grad = kind == RAT_PARAM_TRAINABLE;
  t->frozen = kind == RAT_PARAM_FROZEN;
}

static Entry *add_entry(RatParams *p, const char *name, RatTensor *t, RatParamKind kind) {
  rat_check(!p->finalized && !p->merged, "ratfw: cannot add parameter '%s' to a finalized or merged set", name);
  rat_check(!g_hash_table_contains(p->by_name, name), "ratfw: duplicate parameter name '%s'", name);
  rat_check(!t->grad_fn, "ratfw: parameter '%s' must be a leaf tensor (it has a grad_fn)", name);
  rat_check(t->dtype == RAT_DTYPE_F32, "ratfw: parameter '%s' must be f32", name);
  Entry *e = g_new0(Entry, 1);
  e->name = g_strdup(name);
  e->t = rat_tensor_ref(t);
  e->kind = kind;
  set_kind(t, kind);
  if (!t->name) rat_tensor_set_name(t, name);
  g_ptr_array_add(p->entries, e);
  g_hash_table_insert(p->by_name, e->name, e);
  return e;
}

RatTensor *rat_params_add(RatParams *p, const char *name, RatShape shape, RatParamKind kind) {
  gint64 st[RAT_MAX_DIMS];
  rat_strides_contiguous(shape, st);
  gint64 n = rat_shape_numel(shape);
  RatStorage *s = rat_storage_new((gsize)n * sizeof(float));
  memset(s->data, 0, (gsize)n * sizeof(float));
  RatTensor *t = rat_tensor_new_view(s, RAT_DTYPE_F32, shape.ndim, shape.d, st, 0);
  rat_storage_unref(s);
  add_entry(p, name, t, kind);
  rat_tensor_unref(t); /* the entry holds it */
  return t;
}

RatTensor *rat_params_add_tensor(RatParams *p, const char *name, RatTensor *t, RatParamKind kind) {
  add_entry(p, name, t, kind);
  return t;
}

gboolean rat_params_merge(RatParams *dst, RatParams *src, const char *prefix, GError **error) {
  rat_check(!dst->finalized && !src->finalized, "ratfw: rat_params_merge needs sets that are not finalized");
  gboolean dot = prefix && *prefix && !g_str_has_suffix(prefix, ".");
  GPtrArray *names = g_ptr_array_new_with_free_func(g_free);
  for (guint i = 0; i < src->entries->len; i++) {
    Entry *e = src->entries->pdata[i];
    char *n = g_strconcat(prefix ? prefix : "", dot ? "." : "", e->name, NULL);
    if (g_hash_table_contains(dst->by_name, n)) {
      g_set_error(error, RAT_ERROR, RAT_ERROR_FAILED,
                  "cannot merge parameters: '%s' already exists (give the sub-module a different name)", n);
      g_free(n);
      g_ptr_array_free(names, TRUE);
      return FALSE;
    }
    g_ptr_array_add(names, n);
  }
  for (guint i = 0; i < src->entries->len; i++) {
    Entry *e = src->entries->pdata[i];
    add_entry(dst, names->pdata[i], e->t, e->kind);
  }
  src->merged = TRUE;
  g_ptr_array_free(names, TRUE);
  return TRUE;
}

static RatTensor *flat_view(RatStorage *s, gint64 n) {
  gint64 shape[1] = {n}, stride[1] = {1};
  return rat_tensor_new_view(s, RAT_DTYPE_F32, 1, shape, stride, 0);
}

void rat_params_finalize(RatParams *p) {
  rat_check(!p->finalized, "ratfw: rat_params_finalize called twice");
  rat_check(!p->merged, "ratfw: this parameter set was merged into another; finalize that one");
  gint64 total = 0;
  for (guint i = 0; i < p->entries->len; i++) {
    Entry *e = p->entries->pdata[i];
    if (e->kind == RAT_PARAM_TRAINABLE) total += rat_tensor_numel(e->t);
  }
  RatStorage *vs = rat_storage_new((gsize)total * sizeof(float));
  RatStorage *gs = rat_storage_new((gsize)total * sizeof(float));
  memset(gs->data, 0, (gsize)total * sizeof(float));
  gint64 off = 0;
  for (guint i = 0; i < p->entries->len; i++) {
    Entry *e = p->entries->pdata[i];
    if (e->kind != RAT_PARAM_TRAINABLE) continue;
    RatTensor *t = e->t;
    gint64 n = rat_tensor_numel(t);
    rat_tensor_read(t, (float *)vs->data + off);
    /* Re-point the same tensor header at the arena, row-major. */
    rat_storage_unref(t->storage);
    t->storage = rat_storage_ref(vs);
    t->offset = off;
    rat_strides_contiguous(rat_tensor_shape(t), t->stride);
    if (t->grad) rat_tensor_unref(t->grad);
    e->gview = rat_tensor_new_view(gs, RAT_DTYPE_F32, t->ndim, t->shape, t->stride, off);
    t->grad = rat_tensor_ref(e->gview);
    off += n;
  }
  p->flat = flat_view(vs, total);
  p->flat_grad = flat_view(gs, total);
  rat_storage_unref(vs);
  rat_storage_unref(gs);
  p->finalized = TRUE;
}

gboolean rat_params_is_finalized(const RatParams *p) { return p->finalized; }

guint rat_params_size(const RatParams *p) { return p->entries->len; }

static Entry *nth(const RatParams *p, guint i) {
  rat_check(i < p->entries->len, "ratfw: parameter index %u out of range (%u entries)", i, p->entries->len);
  return p->entries->pdata[i];
}

const char *rat_params_name(const RatParams *p, guint i) { return nth(p, i)->name; }
RatTensor *rat_params_tensor(const RatParams *p, guint i) { return nth(p, i)->t; }
RatParamKind rat_params_kind(const RatParams *p, guint i) { return nth(p, i)->kind; }

RatTensor *rat_params_lookup(const RatParams *p, const char *name) {
  Entry *e = g_hash_table_lookup(p->by_name, name);
  return e ? e->t : NULL;
}

gint64 rat_params_numel(const RatParams *p, RatParamKind kind) {
  gint64 n = 0;
  for (guint i = 0; i < p->entries->len; i++) {
    Entry *e = p->entries->pdata[i];
    if (e->kind == kind) n += rat_tensor_numel(e->t);
  }
  return n;
}

RatTensor *rat_params_flat(RatParams *p) {
  rat_check(p->finalized, "ratfw: rat_params_flat before rat_params_finalize");
  return p->flat;
}

RatTensor *rat_params_flat_grad(RatParams *p) {
  rat_check(p->finalized, "ratfw: rat_params_flat_grad before rat_params_finalize");
  return p->flat_grad;
}

/* ---- gradients ----------------------------------------------------------------------------------------- */

void rat_params_sync_grads(RatParams *p) {
  rat_check(p->finalized, "ratfw: gradients of a parameter set that is not finalized");
  for (guint i = 0; i < p->entries->len; i++) {
    Entry *e = p->entries->pdata[i];
    if (e->kind != RAT_PARAM_TRAINABLE || e->t->grad == e->gview) continue;
    /* The engine replaced the view (create_graph accumulation) or rat_tensor_zero_grad dropped it. */
    if (e->t->grad) {
      rat_tensor_copy_(e->gview, e->t->grad);
      rat_tensor_unref(e->t->grad);
    } else {
      rat_tensor_fill_(e->gview, 0.0f);
    }
    e->t->grad = rat_tensor_ref(e->gview);
  }
}

void rat_params_zero_grad(RatParams *p) {
  rat_check(p->finalized, "ratfw: rat_params_zero_grad before rat_params_finalize");
  for (guint i = 0; i < p->entries->len; i++) {
    Entry *e = p->entries->pdata[i];
    if (e->kind != RAT_PARAM_TRAINABLE || e->t->grad == e->gview) continue;
    if (e->t->grad) rat_tensor_unref(e->t->grad);
    e->t->grad = rat_tensor_ref(e->gview);
  }
  gint64 n = rat_tensor_numel(p->flat_grad);
  memset(rat_tensor_data(p->flat_grad), 0, (gsize)n * sizeof(float));
  rat_tensor_bump_version(p->flat_grad);
}

double rat_params_grad_norm(RatParams *p) {
  rat_params_sync_grads(p);
  const float *g = rat_tensor_data(p->flat_grad);
  gint64 n = rat_tensor_numel(p->flat_grad);
  gint64 nchunk = (n + RAT_REDUCE_CHUNK - 1) / RAT_REDUCE_CHUNK;
  double *part = g_new0(double, MAX(nchunk, 1));
  int nt = rat_get_num_threads();
#pragma omp parallel for schedule(static) num_threads(nt) if (nchunk > 4)
  for (gint64 c = 0; c < nchunk; c++) {
    gint64 a = c * RAT_REDUCE_CHUNK, b = MIN(a + RAT_REDUCE_CHUNK, n);
    double acc = 0.0;
    for (gint64 i = a; i < b; i++) acc += (double)g[i] * g[i];
    part[c] = acc;
  }
  double total = 0.0;
  for (gint64 c = 0; c < nchunk; c++) total += part[c];
  g_free(part);
  return sqrt(total);
}

double rat_params_clip_grad_norm(RatParams *p, double max_norm) {
  double norm = rat_params_grad_norm(p);
  double coef = max_norm / (norm + 1e-6);
  if (coef < 1.0) {
    float *g = rat_tensor_data(p->flat_grad);
    gint64 n = rat_tensor_numel(p->flat_grad);
    float c = (float)coef;
    int nt = rat_get_num_threads();
#pragma omp parallel for schedule(static) num_threads(nt) if (n > 65536)
    for (gint64 i = 0; i < n; i++) g[i] *= c;
    rat_tensor_bump_version(p->flat_grad);
  }
  return norm;
}

/* ---- loading and saving ------------------------------------------------------------------------------------- */

typedef struct {
  const RatSafetensors *st;
  GHashTable *map;
} Source;

static gboolean source_shape(const Source *s, const char *name, RatShape *shape) {
  if (s->st) return rat_safetensors_info(s->st, name, shape, NULL);
  RatTensor *t = g_hash_table_lookup(s->map, name);
  if (t) *shape = rat_tensor_shape(t);
  return t != NULL;
}

static RatTensor *source_get(const Source *s, const char *name, GError **error) {
  if (s->st) return rat_safetensors_get(s->st, name, error);
  return g_hash_table_lookup(s->map, name);
}

static gboolean load_from(RatParams *p, const Source *src, const char *prefix, GError **error) {
  /* Validate everything first, so a failed load leaves the parameters untouched. */
  for (guint i = 0; i < p->entries->len; i++) {
    Entry *e = p->entries->pdata[i];
    char *sname = g_strconcat(prefix ? prefix : "", e->name, NULL);
    RatShape want = rat_tensor_shape(e->t), got;
    if (!source_shape(src, sname, &got)) {
      char *ws = rat_shape_to_string(want);
      g_set_error(error, RAT_ERROR, RAT_ERROR_NOT_FOUND,
                  "missing tensor '%s' (parameter '%s' of shape %s): the checkpoint was written by a different model "
                  "or configuration",
                  sname, e->name, ws);
      g_free(ws);
      g_free(sname);
      return FALSE;
    }
    if (!rat_shape_equal(want, got)) {
      char *ws = rat_shape_to_string(want), *gs = rat_shape_to_string(got);
      g_set_error(error, RAT_ERROR, RAT_ERROR_SHAPE, "tensor '%s': expected shape %s, found %s", sname, ws, gs);
      g_free(ws);
      g_free(gs);
      g_free(sname);
      return FALSE;
    }
    g_free(sname);
  }
  RatScope scope = rat_scope_push();
  gboolean ok = TRUE;
  gint64 maxn = 1;
  for (guint i = 0; i < p->entries->len; i++) maxn = MAX(maxn, rat_tensor_numel(((Entry *)p->entries->pdata[i])->t));
  float *buf = g_new(float, maxn);
  for (guint i = 0; i < p->entries->len && ok; i++) {
    Entry *e = p->entries->pdata[i];
    char *sname = g_strconcat(prefix ? prefix : "", e->name, NULL);
    RatTensor *v = source_get(src, sname, error);
    if (!v) {
      ok = FALSE;
    } else {
      rat_tensor_read(v, buf); /* any dtype and strides, logical order */
      rat_tensor_write(e->t, buf);
    }
    g_free(sname);
  }
  g_free(buf);
  rat_scope_pop(scope);
  return ok;
}

gboolean rat_params_load(RatParams *p, const RatSafetensors *st, const char *prefix, GError **error) {
  Source s = {.st = st};
  return load_from(p, &s, prefix, error);
}

gboolean rat_params_load_map(RatParams *p, GHashTable *map, const char *prefix, GError **error) {
  Source s = {.map = map};
  return load_from(p, &s, prefix, error);
}

GHashTable *rat_params_to_map(const RatParams *p, const char *prefix) {
  GHashTable *m = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
  for (guint i = 0; i < p->entries->len; i++) {
    Entry *e = p->entries->pdata[i];
    g_hash_table_insert(m, g_strconcat(prefix ? prefix : "", e->name, NULL), e->t);
  }
  return m;
}

gboolean rat_params_save(const RatParams *p, const char *path, GHashTable *metadata, GError **error) {
  guint n = p->entries->len;
  const char **names = g_new(const char *, MAX(n, 1));
  RatTensor **ts = g_new(RatTensor *, MAX(n, 1));
  for (guint i = 0; i < n; i++) {
    Entry *e = p->entries->pdata[i];
    names[i] = e->name;
    ts[i] = e->t;
  }
  gboolean ok = rat_safetensors_save(path, n, names, ts, metadata, error);
  g_free(names);
  g_free(ts);
  return ok;
}
