/* FID reference statistics computed from a dataset split (eval.h): the real images through the same extractor as
 * the generated ones, cached by a content key so that every evaluation of every run on the same data, extractor and
 * weights reuses them. */
#include "config.h"

#include <ratfw/error.h>
#include <ratfw/eval.h>
#include <ratfw/io.h>
#include <ratfw/ops.h>

#include <string.h>

void rat_fid_reference_clear(RatFidReference *r) {
  g_free(r->mu);
  g_free(r->sigma);
  g_free(r->key);
  g_free(r->description);
  g_free(r->cache_file);
  memset(r, 0, sizeof *r);
}

/* The real images of @split resized to @size, one loader epoch in item order. */
static RatLoader *real_loader(RatModule *ds, RatSplit split, int size, guint batch, GError **error) {
  RatLoaderOptions lo = rat_loader_options_default(size, batch, 0);
  lo.split = split;
  lo.shuffle = FALSE;
  lo.drop_last = FALSE;
  lo.transform.mode = RAT_RESIZE_PLAIN;
  lo.transform.random_crop = FALSE;
  lo.transform.random_flip = FALSE;
  return rat_loader_new(ds, &lo, error);
}

gboolean rat_fid_reference_compute(RatExtractor *x, RatModule *dataset, RatSplit split, int size, guint batch,
                                   gboolean cache, gboolean allow_rank_deficient, RatRunContext *log,
                                   RatFidReference *out, GError **error) {
  memset(out, 0, sizeof *out);
  const char *split_name = split == RAT_SPLIT_TRAIN ? "train" : "test";
  guint count = rat_dataset_count(dataset, split);
  /* pass 1: the content key */
  GChecksum *ck = g_checksum_new(G_CHECKSUM_SHA256);
  char *head = g_strdup_printf("ratfw-fid-stats/1\n%s\n%s\n%u\n%d\n%s\n%s\n%s\n", dataset->type->name, split_name, count,
                               size, rat_extractor_name(x), rat_extractor_sha256(x), rat_extractor_preprocess(x));
  g_checksum_update(ck, (const guchar *)head, -1);
  g_free(head);
  RatLoader *l = real_loader(dataset, split, size, batch, error);
  if (!l) {
    g_checksum_free(ck);
    return FALSE;
  }
  guint64 nb = rat_loader_batches_per_epoch(l);
  gboolean ok = TRUE;
  for (guint64 i = 0; ok && i < nb; i++) {
    RatBatch b = {0};
    if (!(ok = rat_loader_next(l, &b, error))) break;
    RatScope sc = rat_scope_push();
    RatTensor *c = rat_contiguous(b.images);
    g_checksum_update(ck, (const guchar *)rat_tensor_data(c), (gssize)(rat_tensor_numel(c) * sizeof(float)));
    rat_scope_pop(sc);
    rat_batch_clear(&b);
  }
  rat_loader_free(l);
  out->key = g_strdup(g_checksum_get_string(ck));
  g_checksum_free(ck);
  if (!ok) return FALSE;
  out->n = count;
  out->dim = rat_extractor_dim(x);
  out->description = g_strdup_printf("computed: %s %s split, %u images resized to %d px (plain bilinear)",
                                     dataset->type->name, split_name, count, size);
  char *dir = g_build_filename(g_get_user_cache_dir(), "ratfw", "fid-stats", NULL);
  if (cache) out->cache_file = g_strdup_printf("%s/%s.npz", dir, out->key);
  if (cache && g_file_test(out->cache_file, G_FILE_TEST_IS_REGULAR)) {
    gint64 D = 0, n = 0;
    GError *e = NULL;
    if (rat_fid_stats_load(out->cache_file, TRUE, &D, &out->mu, &out->sigma, &n, &e) && D == out->dim) {
      out->from_cache = TRUE;
      if (log) rat_run_log(log, "fid: reference statistics from the cache: %s", out->cache_file);
      g_free(dir);
      return TRUE;
    }
    /* a damaged or foreign cache entry is recomputed and replaced */
    g_clear_pointer(&out->mu, g_free);
    g_clear_pointer(&out->sigma, g_free);
    g_clear_error(&e);
  }
  /* pass 2: the features */
  if (log) rat_run_log(log, "fid: reference statistics of %u %s images (%s split) through %s", count, dataset->type->name,
                       split_name, rat_extractor_name(x));
  RatFeatureStats *s = rat_feature_stats_new(out->dim);
  if (!(l = real_loader(dataset, split, size, batch, error))) ok = FALSE;
  for (guint64 i = 0; ok && i < nb; i++) {
    RatBatch b = {0};
    if (!(ok = rat_loader_next(l, &b, error))) break;
    RatScope sc = rat_scope_push();
    RatTensor *f = rat_contiguous(rat_extractor_features(x, b.images));
    rat_feature_stats_add(s, rat_tensor_data(f), f->shape[0]);
    rat_scope_pop(sc);
    rat_batch_clear(&b);
  }
  if (l) rat_loader_free(l);
  char *what = g_strdup_printf("the reference (%s split of %s%s)", split_name, dataset->type->name,
                               split == RAT_SPLIT_TEST ? "; a larger split: eval.fid.reference_split=train" : "");
  if (ok) ok = rat_feature_stats_finish(s, allow_rank_deficient, what, &out->mu, &out->sigma, error);
  g_free(what);
  rat_feature_stats_free(s);
  if (ok && cache) {
    GError *e = NULL;
    g_mkdir_with_parents(dir, 0755);
    if (!rat_fid_stats_save(out->cache_file, out->dim, out->mu, out->sigma, &e)) {
      if (log) rat_run_log(log, "fid: could not cache the reference statistics: %s", e->message);
      g_clear_error(&e);
    } else {
      char *side = g_strdup_printf("%s/%s.txt", dir, out->key);
      char *txt = g_strdup_printf("%s\nextractor %s\nweights %s (sha256 %s)\npreprocessing %s\n", out->description,
                                  rat_extractor_name(x), rat_extractor_weights(x), rat_extractor_sha256(x),
                                  rat_extractor_preprocess(x));
      rat_file_write_atomic(side, txt, strlen(txt), NULL);
      g_free(side);
      g_free(txt);
    }
  }
  g_free(dir);
  return ok;
}
