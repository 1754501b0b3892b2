/* Training checkpoints (see checkpoint.h): one atomic safetensors file with parameters, optimiser state, step
 * and RNG state. */
#include "config.h"

#include <ratfw/checkpoint.h>
#include <ratfw/error.h>
#include <ratfw/io.h>

#include <stdio.h>

static void add_map(GHashTable *map, GPtrArray *names, GPtrArray *tensors) {
  GHashTableIter it;
  gpointer k, v;
  g_hash_table_iter_init(&it, map);
  while (g_hash_table_iter_next(&it, &k, &v)) {
    g_ptr_array_add(names, k);
    g_ptr_array_add(tensors, v);
  }
}

gboolean rat_checkpoint_save(const char *path, RatParams *params, RatOptim *optim, gint64 step, const RatRng *rng,
                             GHashTable *extra, GError **error) {
  GHashTable *pm = rat_params_to_map(params, "model.");
  GHashTable *om = optim ? rat_optim_state_to_map(optim, "optim.") : NULL;
  GPtrArray *names = g_ptr_array_new(), *tensors = g_ptr_array_new();
  add_map(pm, names, tensors);
  if (om) add_map(om, names, tensors);
  GHashTable *meta = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, g_free);
  if (extra) {
    GHashTableIter it;
    gpointer k, v;
    g_hash_table_iter_init(&it, extra);
    while (g_hash_table_iter_next(&it, &k, &v)) g_hash_table_insert(meta, g_strdup(k), g_strdup(v));
  }
  g_hash_table_insert(meta, g_strdup("format"), g_strdup("ratfw checkpoint 1"));
  g_hash_table_insert(meta, g_strdup("step"), g_strdup_printf("%" G_GINT64_FORMAT, step));
  if (rng)
    g_hash_table_insert(meta, g_strdup("rng"), g_strdup_printf("%" G_GUINT64_FORMAT " %" G_GUINT64_FORMAT, rng->seed, rng->offset));
  gboolean ok = rat_safetensors_save(path, names->len, (const char *const *)names->pdata,
                                     (RatTensor *const *)tensors->pdata, meta, error);
  g_hash_table_destroy(meta);
  g_ptr_array_free(names, TRUE);
  g_ptr_array_free(tensors, TRUE);
  g_hash_table_destroy(pm);
  if (om) g_hash_table_destroy(om);
  return ok;
}

gint64 rat_checkpoint_load(const char *path, RatParams *params, RatOptim *optim, RatRng *rng, GError **error) {
  RatSafetensors *st = rat_safetensors_open(path, error);
  if (!st) return -1;
  gint64 step = -1;
  const char *s = rat_safetensors_meta(st, "step"), *r = rat_safetensors_meta(st, "rng");
  guint64 seed = 0, off = 0;
  if (!s || (rng && (!r || sscanf(r, "%" G_GUINT64_FORMAT " %" G_GUINT64_FORMAT, &seed, &off) != 2))) {
    g_set_error(error, RAT_ERROR, RAT_ERROR_CORRUPT, "%s: not a ratfw checkpoint (no step%s metadata); delete it or "
                "start a new run directory", path, rng ? "/rng" : "");
  } else if (rat_params_load(params, st, "model.", error) && (!optim || rat_optim_state_load(optim, st, "optim.", error))) {
    step = g_ascii_strtoll(s, NULL, 10);
    if (rng) rat_rng_set_state(rng, seed, off);
  }
  rat_safetensors_close(st);
  return step;
}

gboolean rat_checkpoint_save_parts(const char *path, const RatCheckpointPart *parts, guint n_parts, GHashTable *tensors,
                                   gint64 step, const RatRng *rng, GHashTable *extra, GError **error) {
  GPtrArray *names = g_ptr_array_new(), *ts = g_ptr_array_new();
  GPtrArray *maps = g_ptr_array_new_with_free_func((GDestroyNotify)g_hash_table_destroy);
  RatScope scope = rat_scope_push(); /* the optimiser-state views */
  for (guint i = 0; i < n_parts; i++) {
    GHashTable *pm = rat_params_to_map(parts[i].params, parts[i].params_prefix);
    g_ptr_array_add(maps, pm);
    add_map(pm, names, ts);
    if (parts[i].optim) {
      GHashTable *om = rat_optim_state_to_map(parts[i].optim, parts[i].optim_prefix);
      g_ptr_array_add(maps, om);
      add_map(om, names, ts);
    }
  }
  if (tensors) add_map(tensors, names, ts);
  /* a name written twice would silently shadow: refuse */
  GHashTable *seen = g_hash_table_new(g_str_hash, g_str_equal);
  gboolean ok = TRUE;
  for (guint i = 0; i < names->len && ok; i++)
    if (!g_hash_table_add(seen, names->pdata[i])) {
      g_set_error(error, RAT_ERROR, RAT_ERROR_FAILED, "%s: tensor '%s' would be written twice (overlapping prefixes)",
                  path, (const char *)names->pdata[i]);
      ok = FALSE;
    }
  g_hash_table_destroy(seen);
  if (ok) {
    GHashTable *meta = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, g_free);
    if (extra) {
      GHashTableIter it;
      gpointer k, v;
      g_hash_table_iter_init(&it, extra);
      while (g_hash_table_iter_next(&it, &k, &v)) g_hash_table_insert(meta, g_strdup(k), g_strdup(v));
    }
    g_hash_table_insert(meta, g_strdup("format"), g_strdup("ratfw checkpoint 1"));
    g_hash_table_insert(meta, g_strdup("step"), g_strdup_printf("%" G_GINT64_FORMAT, step));
    if (rng)
      g_hash_table_insert(meta, g_strdup("rng"),
                          g_strdup_printf("%" G_GUINT64_FORMAT " %" G_GUINT64_FORMAT, rng->seed, rng->offset));
    ok = rat_safetensors_save(path, names->len, (const char *const *)names->pdata, (RatTensor *const *)ts->pdata, meta,
                              error);
    g_hash_table_destroy(meta);
  }
  rat_scope_pop(scope);
  g_ptr_array_free(names, TRUE);
  g_ptr_array_free(ts, TRUE);
  g_ptr_array_unref(maps);
  return ok;
}

gint64 rat_checkpoint_load_parts(const char *path, const RatCheckpointPart *parts, guint n_parts, GHashTable *tensors,
                                 RatRng *rng, GHashTable **meta_out, GError **error) {
  if (meta_out) *meta_out = NULL;
  RatSafetensors *st = rat_safetensors_open(path, error);
  if (!st) return -1;
  gint64 step = -1;
  const char *s = rat_safetensors_meta(st, "step"), *r = rat_safetensors_meta(st, "rng");
  guint64 seed = 0, off = 0;
  gboolean ok = TRUE;
  if (!s || (rng && (!r || sscanf(r, "%" G_GUINT64_FORMAT " %" G_GUINT64_FORMAT, &seed, &off) != 2))) {
    g_set_error(error, RAT_ERROR, RAT_ERROR_CORRUPT,
                "%s: not a ratfw checkpoint (no step%s metadata); delete it or start a new run directory", path,
                rng ? "/rng" : "");
    ok = FALSE;
  }
  /* validate the extra tensors before loading anything */
  if (ok && tensors) {
    GHashTableIter it;
    gpointer k, v;
    g_hash_table_iter_init(&it, tensors);
    while (ok && g_hash_table_iter_next(&it, &k, &v)) {
      RatShape got;
      if (!rat_safetensors_info(st, k, &got, NULL)) {
        g_set_error(error, RAT_ERROR, RAT_ERROR_NOT_FOUND, "%s: missing tensor '%s'", path, (const char *)k);
        ok = FALSE;
      } else if (!rat_shape_equal(got, rat_tensor_shape(v))) {
        char *ws = rat_shape_to_string(rat_tensor_shape(v)), *gs = rat_shape_to_string(got);
        g_set_error(error, RAT_ERROR, RAT_ERROR_SHAPE, "%s: tensor '%s': expected shape %s, found %s", path,
                    (const char *)k, ws, gs);
        g_free(ws);
        g_free(gs);
        ok = FALSE;
      }
    }
  }
  /* Each part is validated by rat_params_load before it is written; a failure in a later part leaves earlier
   * parts loaded, and the caller abandons the run (resume fails with this error). */
  for (guint i = 0; ok && i < n_parts; i++) {
    if (!rat_params_load(parts[i].params, st, parts[i].params_prefix, error)) ok = FALSE;
    else if (parts[i].optim && !rat_optim_state_load(parts[i].optim, st, parts[i].optim_prefix, error)) ok = FALSE;
  }
  if (ok && tensors) {
    GHashTableIter it;
    gpointer k, v;
    g_hash_table_iter_init(&it, tensors);
    RatScope scope = rat_scope_push();
    while (ok && g_hash_table_iter_next(&it, &k, &v)) {
      RatTensor *src = rat_safetensors_get(st, k, error);
      if (!src) ok = FALSE;
      else rat_tensor_copy_(v, src);
    }
    rat_scope_pop(scope);
  }
  if (ok) {
    step = g_ascii_strtoll(s, NULL, 10);
    if (rng) rat_rng_set_state(rng, seed, off);
    if (meta_out) { /* a copy: closing the file destroys its table */
      GHashTable *m = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, g_free);
      GHashTableIter it;
      gpointer k, v;
      g_hash_table_iter_init(&it, rat_safetensors_metadata(st));
      while (g_hash_table_iter_next(&it, &k, &v)) g_hash_table_insert(m, g_strdup(k), g_strdup(v));
      *meta_out = m;
    }
  }
  rat_safetensors_close(st);
  return step;
}
