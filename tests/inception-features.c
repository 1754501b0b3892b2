/* Helper of tests/test-inception.sh: runs the Inception extractors (core/eval/inception.c, through the
 * RatExtractor API fid.c uses) and the padded pools on what tools/reference/ref_inception.py wrote into DIR, and
 * writes DIR/c.safetensors with the same names ("tv.galip", "tv.standard", "fid.standard", "pool.*") for the
 * script to compare. Usage: inception-features DIR [THREADS] */
#include <ratfw/eval.h>
#include <ratfw/io.h>
#include <ratfw/ratfw.h>

#include <stdio.h>
#include <stdlib.h>

static RatTensor *features(const char *dir, const char *file, const char *kind, const char *transform,
                           RatTensor *images) {
  char *w = g_build_filename(dir, file, NULL);
  RatExtractorOptions o = {.kind = kind, .weights = w, .transform = transform};
  GError *e = NULL;
  RatExtractor *x = rat_extractor_new(NULL, &o, &e);
  if (!x) {
    fprintf(stderr, "inception-features: %s\n", e->message);
    exit(1);
  }
  g_assert_cmpint(rat_extractor_dim(x), ==, 2048);
  gint64 t0 = g_get_monotonic_time();
  RatTensor *f = rat_tensor_ref(rat_extractor_features(x, images));
  double s = (g_get_monotonic_time() - t0) / 1e6;
  printf("%s %s: %" G_GINT64_FORMAT " images in %.3f s (%s)\n", kind, transform, images->shape[0], s,
         rat_extractor_preprocess(x));
  rat_extractor_free(x);
  g_free(w);
  return rat_scope_adopt(f);
}

int main(int argc, char **argv) {
  if (argc < 2) {
    fprintf(stderr, "usage: inception-features DIR [THREADS]\n");
    return 2;
  }
  if (argc > 2) rat_set_num_threads(atoi(argv[2]));
  GError *e = NULL;
  char *dp = g_build_filename(argv[1], "data.safetensors", NULL);
  RatSafetensors *st = rat_safetensors_open(dp, &e);
  if (!st) {
    fprintf(stderr, "inception-features: %s\n", e->message);
    return 1;
  }
  RatScope sc = rat_scope_push();
  RatTensor *images = rat_safetensors_get(st, "images", &e), *px = rat_safetensors_get(st, "pool.x", &e);
  g_assert(images && px);
  const char *names[] = {"tv.galip", "tv.standard", "fid.standard", "pool.max_3_2_0", "pool.max_3_1_1",
                         "pool.avg_incl_3_1_1", "pool.avg_excl_3_1_1", "pool.avg_excl_3_2_1"};
  RatTensor *out[] = {
      features(argv[1], "tv.safetensors", "inception", "galip", images),
      features(argv[1], "tv.safetensors", "inception", "standard", images),
      features(argv[1], "fid.safetensors", "inception_fid", "galip", images), /* the transform is ignored */
      rat_eval_pool2d(px, RAT_EVAL_POOL_MAX, 3, 2, 0),
      rat_eval_pool2d(px, RAT_EVAL_POOL_MAX, 3, 1, 1),
      rat_eval_pool2d(px, RAT_EVAL_POOL_AVG_INCLUDE_PAD, 3, 1, 1),
      rat_eval_pool2d(px, RAT_EVAL_POOL_AVG_EXCLUDE_PAD, 3, 1, 1),
      rat_eval_pool2d(px, RAT_EVAL_POOL_AVG_EXCLUDE_PAD, 3, 2, 1),
  };
  char *cp = g_build_filename(argv[1], "c.safetensors", NULL);
  if (!rat_safetensors_save(cp, G_N_ELEMENTS(names), names, out, NULL, &e)) {
    fprintf(stderr, "inception-features: %s\n", e->message);
    return 1;
  }
  rat_scope_pop(sc);
  rat_safetensors_close(st);
  g_free(cp);
  g_free(dp);
  return 0;
}
