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
