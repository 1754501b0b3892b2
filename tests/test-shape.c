/* View and shape ops against PyTorch 1.13 (fixtures from tools/reference/ref_shape.py) in every storage layout,
 * with finite-difference checks of first and second order; plus chains of views (views of views, expand then
 * reshape), the layouts concat keeps, and the discriminator's uses (sentence tiling, mismatched-pair roll). */
#include "config.h"

#include "golden-ops.h"

static const GoldenTol tol_exact = {.atol = 0, .rtol = 0, .gatol = 1e-6, .grtol = 1e-6};

static void test_golden(void) {
  guint runs = golden_run_fixture("shape", &tol_exact, TRUE);
  g_assert_cmpuint(runs, >, 250);
}

static RatTensor *values(RatShape s) {
  RatTensor *t = rat_empty(s);
  float *p = rat_tensor_data(t);
  for (gint64 i = 0; i < rat_shape_numel(s); i++) p[i] = (float)i;
  return t;
}

/* Chains of views: every result is compared with the same chain applied to a contiguous copy. */
static void test_view_chains(void) {
  RatScope s = rat_scope_push();
  RatTensor *x = rat_test_leaf(values(RAT_SHAPE(4, 6, 5)));
  /* slice of a slice of a transpose, then select */
  RatTensor *v = rat_select(rat_slice(rat_slice(rat_transpose(x, 0, 2), 1, 1, 5), 1, 1, 3), 2, -1);
  g_assert_true(v->storage == x->storage);
  float got[10];
  g_assert_cmpint(rat_tensor_numel(v), ==, 10);
  rat_tensor_read(v, got);
  /* v[i][j] = x[3][2 + j][i] */
  for (int i = 0; i < 5; i++)
    for (int j = 0; j < 2; j++) g_assert_cmpfloat(got[i * 2 + j], ==, (float)(3 * 30 + (2 + j) * 5 + i));

  /* expand then reshape: a view when the expanded dim stays separate, a copy otherwise */
  RatTensor *c = rat_test_leaf(values(RAT_SHAPE(3, 1)));
  RatTensor *e = rat_expand(c, RAT_SHAPE(2, 3, 4));
  RatTensor *r1 = rat_reshape(e, RAT_SHAPE(2, 3, 2, 2));
  RatTensor *r2 = rat_reshape(e, RAT_SHAPE(1, 2, 3, 1, 4));
  RatTensor *r3 = rat_reshape(e, RAT_SHAPE(24));
  g_assert_true(r1->storage == c->storage);
  g_assert_true(r2->storage == c->storage);
  g_assert_true(rat_reshape(e, RAT_SHAPE(6, 4))->storage != c->storage); /* merging a stride-0 dim needs a copy */
  float w[24];
  rat_tensor_read(r3, w);
  for (int i = 0; i < 24; i++) g_assert_cmpfloat(w[i], ==, (float)((i / 4) % 3));
  /* gradient through expand + reshape + slice: each of the 3 values is used 8 times, minus the sliced-off ones */
  RatTensor *l = rat_sum_all(rat_slice(r3, 0, 2, 24));
  RatTensor *gc;
  GError *err = NULL;
  g_assert_true(rat_grad(&l, NULL, 1, &c, 1, &gc, FALSE, &err));
  float gv[3];
  rat_tensor_read(gc, gv);
  g_assert_cmpfloat(gv[0], ==, 6.0f);
  g_assert_cmpfloat(gv[1], ==, 8.0f);
  g_assert_cmpfloat(gv[2], ==, 8.0f);

  /* view of a channels-last tensor: [B,C,H,W] NHWC viewed through permute as [B,H,W,C] contiguous */
  RatTensor *n = rat_empty_nhwc(RAT_SHAPE(2, 3, 4, 5));
  rat_tensor_copy_(n, values(RAT_SHAPE(2, 3, 4, 5)));
  RatTensor *bhwc = rat_permute(n, (int[]){0, 2, 3, 1});
  g_assert_true(rat_tensor_is_contiguous(bhwc));
  RatTensor *flat = rat_view(bhwc, RAT_SHAPE(2, 20, 3));
  g_assert_true(flat->storage == n->storage);
  g_assert_cmpfloat(rat_tensor_get(flat, (gint64[]){1, 7, 2}), ==, (float)(60 + 2 * 20 + 7));

  /* unsqueeze / squeeze / flatten on 0-d and empty tensors */
  RatTensor *z = rat_scalar(7.0f);
  g_assert_cmpint(rat_unsqueeze(z, 0)->ndim, ==, 1);
  g_assert_cmpint(rat_squeeze(rat_unsqueeze(z, -1), 0)->ndim, ==, 0);
  RatTensor *em = rat_zeros(RAT_SHAPE(2, 0, 3));
  g_assert_cmpint(rat_flatten(em, 0, -1)->shape[0], ==, 0);
  g_assert_cmpint(rat_reshape(em, RAT_SHAPE(-1, 3))->shape[0], ==, 0);
  g_assert_cmpint(rat_transpose(em, 0, 2)->shape[0], ==, 3);
  rat_scope_pop(s);
}

/* Concat keeps the first input's dense layout; split + concat round-trips; tile and roll as the discriminator
 * uses them (sentence vectors tiled to the feature map, mismatched pairs by roll(s, -1) over the batch). */
static void test_shape_ops(void) {
  RatScope s = rat_scope_push();
  RatTensor *f = rat_empty_nhwc(RAT_SHAPE(2, 4, 3, 3));
  rat_tensor_copy_(f, rat_test_randn(RAT_SHAPE(2, 4, 3, 3), 3));
  RatTensor *sv = rat_test_randn(RAT_SHAPE(2, 5), 4);
  RatTensor *st = rat_tile(rat_reshape(sv, RAT_SHAPE(2, 5, 1, 1)), RAT_SHAPE(1, 1, 3, 3));
  RatTensor *cat = rat_concat((RatTensor *[]){f, st}, 2, 1);
  g_assert_true(rat_tensor_is_nhwc(cat));
  g_assert_cmpint(cat->shape[1], ==, 9);
  for (int b = 0; b < 2; b++)
    for (int c = 0; c < 5; c++)
      for (int k = 0; k < 9; k++)
        g_assert_cmpfloat(rat_tensor_get(cat, (gint64[]){b, 4 + c, k / 3, k % 3}), ==,
                          rat_tensor_data(sv)[b * 5 + c]);

  RatTensor *parts[3];
  rat_split(cat, 1, (gint64[]){4, 2, 3}, 3, parts);
  rat_assert_close(rat_concat(parts, 3, 1), cat, 0, 0, "split + concat");
  rat_assert_close(parts[0], f, 0, 0, "first piece");

  /* gradient of using only one split piece: zeros elsewhere */
  RatTensor *x = rat_test_leaf(rat_test_randn(RAT_SHAPE(3, 4), 5));
  RatTensor *p2[2];
  rat_split(x, 1, (gint64[]){1, 3}, 2, p2);
  RatTensor *l = rat_sum_all(rat_mul_scalar(p2[1], 2.0f)), *gx;
  GError *e = NULL;
  g_assert_true(rat_grad(&l, NULL, 1, &x, 1, &gx, FALSE, &e));
  for (int i = 0; i < 12; i++) g_assert_cmpfloat(rat_tensor_get(gx, (gint64[]){i / 4, i % 4}), ==, i % 4 ? 2.0f : 0.0f);

  /* s_mis[n] = s[(n + 1) mod B] */
  RatTensor *mis = rat_roll(sv, -1, 0);
  for (int c = 0; c < 5; c++) {
    g_assert_cmpfloat(rat_tensor_data(mis)[c], ==, rat_tensor_data(sv)[5 + c]);
    g_assert_cmpfloat(rat_tensor_data(mis)[5 + c], ==, rat_tensor_data(sv)[c]);
  }
  /* roll of a channels-last map keeps its layout */
  g_assert_true(rat_tensor_is_nhwc(rat_roll(f, 1, 1)));

  /* i32 tensors move through concat, tile and roll exactly */
  RatTensor *ids = rat_from_i32(RAT_SHAPE(2), (gint32[]){16777217, -5});
  RatTensor *ic = rat_roll(rat_tile(rat_concat((RatTensor *[]){ids, ids}, 2, 0), RAT_SHAPE(2)), 1, 0);
  g_assert_true(ic->dtype == RAT_DTYPE_I32);
  gint32 want[8] = {-5, 16777217, -5, 16777217, -5, 16777217, -5, 16777217};
  for (int i = 0; i < 8; i++) g_assert_cmpint(rat_tensor_data_i32(ic)[i], ==, want[i]);
  RatTensor *ict = rat_contiguous(rat_transpose(rat_reshape(ic, RAT_SHAPE(2, 4)), 0, 1));
  g_assert_cmpint(rat_tensor_data_i32(ict)[1], ==, -5);
  g_assert_cmpint(rat_tensor_data_i32(ict)[2], ==, 16777217);
  rat_scope_pop(s);
}

int main(int argc, char **argv) {
  rat_test_init(&argc, &argv);
  rat_test_max_elems = 24;
  g_test_add_func("/shape/golden", test_golden);
  g_test_add_func("/shape/view-chains", test_view_chains);
  g_test_add_func("/shape/shape-ops", test_shape_ops);
  return g_test_run();
}
