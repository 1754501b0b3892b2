/* Parameter arenas: packing into one value and one gradient storage, in-place accumulation by the engine,
 * counts, lookup, merge with prefixes, zero_grad and gradient norms, save/load with clear errors. */
#include "config.h"

#include "testutil.h"

#include <glib/gstdio.h>
#include <math.h>

static RatParams *make_set(RatRng *rng) {
  RatParams *p = rat_params_new();
  RatTensor *w = rat_params_add(p, "fc.weight", RAT_SHAPE(3, 4), RAT_PARAM_TRAINABLE);
  RatTensor *b = rat_params_add(p, "fc.bias", RAT_SHAPE(3), RAT_PARAM_TRAINABLE);
  RatTensor *f = rat_params_add(p, "clip.proj", RAT_SHAPE(2, 2), RAT_PARAM_FROZEN);
  RatTensor *rm = rat_params_add(p, "bn.running_mean", RAT_SHAPE(3), RAT_PARAM_BUFFER);
  RatTensor *g = rat_params_add(p, "gamma", RAT_SHAPE0, RAT_PARAM_TRAINABLE);
  rat_init_torch_default_(rng, w, b);
  rat_init_normal_(rng, f, 0, 1);
  rat_init_constant_(rm, 0.5f);
  rat_init_constant_(g, 2.0f);
  return p;
}

static void test_pack(void) {
  RatScope s = rat_scope_push();
  RatRng rng;
  rat_rng_init(&rng, 3);
  RatParams *p = make_set(&rng);
  RatTensor *w = rat_params_lookup(p, "fc.weight");
  float before[12];
  rat_tensor_read(w, before);
  g_assert_cmpint(rat_params_numel(p, RAT_PARAM_TRAINABLE), ==, 12 + 3 + 1);
  g_assert_cmpint(rat_params_numel(p, RAT_PARAM_FROZEN), ==, 4);
  g_assert_cmpint(rat_params_numel(p, RAT_PARAM_BUFFER), ==, 3);
  g_assert_cmpuint(rat_params_size(p), ==, 5);
  g_assert_cmpstr(rat_params_name(p, 3), ==, "bn.running_mean");
  g_assert_cmpint(rat_params_kind(p, 2), ==, RAT_PARAM_FROZEN);
  g_assert_null(rat_params_lookup(p, "nope"));
  g_assert_true(w->requires_grad);
  g_assert_false(rat_params_lookup(p, "clip.proj")->requires_grad);
  g_assert_true(rat_params_lookup(p, "clip.proj")->frozen);
  g_assert_false(rat_params_lookup(p, "bn.running_mean")->requires_grad);

  rat_params_finalize(p);
  g_assert_true(rat_params_is_finalized(p));
  /* same tensor header, now a view of the flat storage, same values */
  g_assert_true(rat_params_lookup(p, "fc.weight") == w);
  float after[12];
  rat_tensor_read(w, after);
  g_assert_cmpmem(before, sizeof(before), after, sizeof(after));
  RatTensor *flat = rat_params_flat(p), *gflat = rat_params_flat_grad(p);
  g_assert_cmpint(rat_tensor_numel(flat), ==, 16);
  RatTensor *b = rat_params_lookup(p, "fc.bias"), *gm = rat_params_lookup(p, "gamma");
  g_assert_true(w->storage == flat->storage && b->storage == flat->storage && gm->storage == flat->storage);
  g_assert_cmpint(w->offset, ==, 0);
  g_assert_cmpint(b->offset, ==, 12);
  g_assert_cmpint(gm->offset, ==, 15);
  g_assert_true(w->grad->storage == gflat->storage && w->grad->offset == 0 && gm->grad->offset == 15);
  g_assert_true(rat_params_lookup(p, "clip.proj")->grad == NULL);

  /* The engine accumulates into the flat gradient in place: L = gamma * sum(W x + b), twice. */
  RatTensor *x = rat_test_uniform(RAT_SHAPE(4), -1, 1, 1);
  for (int rep = 0; rep < 2; rep++) {
    RatTensor *y = rat_add(rat_sum(rat_mul(w, x), RAT_AXIS(1), FALSE), b);
    RatTensor *L = rat_mul(gm, rat_sum_all(y));
    GError *e = NULL;
    g_assert_true(rat_backward(L, NULL, FALSE, &e));
  }
  g_assert_true(w->grad->storage == gflat->storage);
  float xv[4], wv[12], bv[3], g[16];
  rat_tensor_read(x, xv);
  rat_tensor_read(w, wv);
  rat_tensor_read(b, bv);
  rat_tensor_read(gflat, g);
  double sumy = 0;
  for (int i = 0; i < 3; i++) {
    sumy += bv[i];
    for (int j = 0; j < 4; j++) {
      sumy += wv[i * 4 + j] * xv[j];
      g_assert_cmpfloat_with_epsilon(g[i * 4 + j], 2 * 2.0 * xv[j], 1e-6);
    }
    g_assert_cmpfloat_with_epsilon(g[12 + i], 2 * 2.0, 1e-6);
  }
  g_assert_cmpfloat_with_epsilon(g[15], 2 * sumy, 1e-5);
  double n2 = 0;
  for (int i = 0; i < 16; i++) n2 += (double)g[i] * g[i];
  g_assert_cmpfloat_with_epsilon(rat_params_grad_norm(p), sqrt(n2), 1e-9 * sqrt(n2));
  double old = rat_params_clip_grad_norm(p, 1.0);
  g_assert_cmpfloat_with_epsilon(old, sqrt(n2), 1e-9 * sqrt(n2));
  g_assert_cmpfloat_with_epsilon(rat_params_grad_norm(p), 1.0, 1e-5);

  rat_params_zero_grad(p);
  g_assert_cmpfloat(rat_params_grad_norm(p), ==, 0.0);

  /* create_graph accumulation replaces ->grad with a graph tensor; sync copies it back into the arena. */
  {
    RatTensor *L = rat_mul(gm, rat_sum_all(rat_square(b)));
    GError *e = NULL;
    g_assert_true(rat_backward(L, NULL, TRUE, &e));
    g_assert_true(b->grad->storage != gflat->storage);
    rat_params_sync_grads(p);
    g_assert_true(b->grad->storage == gflat->storage);
    rat_tensor_read(gflat, g);
    for (int i = 0; i < 3; i++) g_assert_cmpfloat_with_epsilon(g[12 + i], 2 * 2.0 * bv[i], 1e-6);
    g_assert_cmpfloat(g[0], ==, 0.0f);
    rat_tensor_zero_grad(b); /* drops a graph gradient: zero_grad must re-attach the view */
    rat_params_zero_grad(p);
    g_assert_true(b->grad->storage == gflat->storage);
  }
  rat_params_free(p);
  rat_scope_pop(s);
}

static void test_merge(void) {
  RatParams *gen = rat_params_new(), *blk = rat_params_new(), *blk2 = rat_params_new();
  rat_params_add(gen, "fc.weight", RAT_SHAPE(2, 2), RAT_PARAM_TRAINABLE);
  RatTensor *c = rat_params_add(blk, "conv.weight", RAT_SHAPE(1, 1, 3, 3), RAT_PARAM_TRAINABLE);
  rat_params_add(blk, "bn.running_var", RAT_SHAPE(1), RAT_PARAM_BUFFER);
  rat_params_add(blk2, "conv.weight", RAT_SHAPE(1), RAT_PARAM_TRAINABLE);
  GError *e = NULL;
  g_assert_true(rat_params_merge(gen, blk, "block3", &e));
  g_assert_true(rat_params_lookup(gen, "block3.conv.weight") == c);
  g_assert_nonnull(rat_params_lookup(gen, "block3.bn.running_var"));
  g_assert_cmpint(rat_params_kind(gen, 2), ==, RAT_PARAM_BUFFER);
  g_assert_false(rat_params_merge(gen, blk2, "block3.", &e));
  g_assert_error(e, RAT_ERROR, RAT_ERROR_FAILED);
  g_assert_nonnull(strstr(e->message, "block3.conv.weight"));
  g_clear_error(&e);
  g_assert_cmpuint(rat_params_size(gen), ==, 3);
  rat_params_finalize(gen);
  g_assert_true(c->storage == rat_params_flat(gen)->storage);
  g_assert_cmpint(c->offset, ==, 4);
  rat_params_free(blk);
  rat_params_free(blk2);
  g_assert_true(c->storage == rat_params_flat(gen)->storage); /* still alive through gen */
  rat_params_free(gen);
}

static void test_save_load(void) {
  RatScope s = rat_scope_push();
  char *dir = g_dir_make_tmp("ratfw-params-XXXXXX", NULL);
  char *path = g_build_filename(dir, "p.safetensors", NULL);
  RatRng rng;
  rat_rng_init(&rng, 10);
  RatParams *a = make_set(&rng);
  rat_params_finalize(a);
  GError *e = NULL;
  g_assert_true(rat_params_save(a, path, NULL, &e));

  rat_rng_init(&rng, 11);
  RatParams *b = make_set(&rng);
  rat_init_constant_(rat_params_lookup(b, "bn.running_mean"), -1);
  RatSafetensors *st = rat_safetensors_open(path, &e);
  g_assert_nonnull(st);
  g_assert_cmpuint(rat_safetensors_count(st), ==, 5);
  g_assert_true(rat_params_load(b, st, NULL, &e));
  for (guint i = 0; i < rat_params_size(a); i++)
    rat_assert_close(rat_params_tensor(b, i), rat_params_tensor(a, i), 0, 0, rat_params_name(a, i));

  /* map with a prefix, as a checkpoint holding several models does */
  GHashTable *m = rat_params_to_map(a, "netG.");
  g_assert_cmpuint(g_hash_table_size(m), ==, 5);
  g_assert_true(g_hash_table_lookup(m, "netG.fc.bias") == rat_params_lookup(a, "fc.bias"));
  RatParams *c = make_set(&rng);
  g_assert_true(rat_params_load_map(c, m, "netG.", &e));
  rat_assert_close(rat_params_lookup(c, "clip.proj"), rat_params_lookup(a, "clip.proj"), 0, 0, "map load");

  /* missing tensor: NOT_FOUND naming it; nothing changed */
  RatParams *d = make_set(&rng);
  rat_params_add(d, "extra.weight", RAT_SHAPE(5), RAT_PARAM_TRAINABLE);
  float keep[12];
  rat_tensor_read(rat_params_lookup(d, "fc.weight"), keep);
  g_assert_false(rat_params_load(d, st, NULL, &e));
  g_assert_error(e, RAT_ERROR, RAT_ERROR_NOT_FOUND);
  g_assert_nonnull(strstr(e->message, "'extra.weight'"));
  g_clear_error(&e);
  float now[12];
  rat_tensor_read(rat_params_lookup(d, "fc.weight"), now);
  g_assert_cmpmem(keep, sizeof(keep), now, sizeof(now));
  g_assert_false(rat_params_load_map(d, m, "netD.", &e));
  g_assert_error(e, RAT_ERROR, RAT_ERROR_NOT_FOUND);
  g_assert_nonnull(strstr(e->message, "netD.fc.weight"));
  g_clear_error(&e);

  /* shape mismatch: expected vs found */
  RatParams *f = rat_params_new();
  rat_params_add(f, "fc.weight", RAT_SHAPE(4, 3), RAT_PARAM_TRAINABLE);
  g_assert_false(rat_params_load(f, st, NULL, &e));
  g_assert_error(e, RAT_ERROR, RAT_ERROR_SHAPE);
  g_assert_nonnull(strstr(e->message, "'fc.weight': expected shape [4, 3], found [3, 4]"));
  g_clear_error(&e);

  g_hash_table_destroy(m);
  rat_safetensors_close(st);
  rat_params_free(a);
  rat_params_free(b);
  rat_params_free(c);
  rat_params_free(d);
  rat_params_free(f);
  g_unlink(path);
  g_rmdir(dir);
  g_free(path);
  g_free(dir);
  rat_scope_pop(s);
}

int main(int argc, char **argv) {
  rat_test_init(&argc, &argv);
  g_test_add_func("/params/pack-and-grad", test_pack);
  g_test_add_func("/params/merge", test_merge);
  g_test_add_func("/params/save-load", test_save_load);
  return g_test_run();
}
