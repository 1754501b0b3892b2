/* Convolution and pooling: golden values and gradients against tools/reference/ref_conv.py (PyTorch, float64), with
 * inputs in NCHW and channels-last storage; double backward against torch create_graph; finite-difference checks of
 * first and second order; which oneDNN implementation runs at the RATLIP shapes; the reordered-weight cache. */
#include "config.h"

#include "testutil.h"
#include "ops/dnnl-private.h"

#include <math.h>

static RatConvParams case_params(JsonObject *c) {
  JsonArray *st = json_object_get_array_member(c, "stride"), *pa = json_object_get_array_member(c, "padding");
  JsonArray *di = json_object_get_array_member(c, "dilation");
  RatConvParams p = {.stride = {(int)json_array_get_int_element(st, 0), (int)json_array_get_int_element(st, 1)},
                     .padding = {(int)json_array_get_int_element(pa, 0), (int)json_array_get_int_element(pa, 1)},
                     .dilation = {(int)json_array_get_int_element(di, 0), (int)json_array_get_int_element(di, 1)},
                     .groups = (int)json_object_get_int_member(c, "groups")};
  return p;
}

/* Fixture tensor in the requested storage layout. */
static RatTensor *in_layout(RatTensor *t, gboolean nhwc) {
  RatTensor *r;
  RAT_NO_GRAD_BEGIN
  r = nhwc && t->ndim == 4 ? rat_to_nhwc(t) : t;
  RAT_NO_GRAD_END
  return r;
}

static void check_conv_case(RatFixture *f, JsonObject *c, gboolean nhwc) {
  gint64 i = json_object_get_int_member(c, "index");
  const char *name = json_object_get_string_member(c, "name");
  gboolean has_bias = json_object_get_boolean_member(c, "bias");
  RatConvParams p = case_params(c);
  RatScope s = rat_scope_push();
  RatTensor *x = rat_test_leaf(in_layout(rat_fixture_get(f, "c%" G_GINT64_FORMAT ".x", i), nhwc));
  RatTensor *w = rat_test_leaf(rat_fixture_get(f, "c%" G_GINT64_FORMAT ".w", i));
  RatTensor *b = has_bias ? rat_test_leaf(rat_fixture_get(f, "c%" G_GINT64_FORMAT ".b", i)) : NULL;
  RatTensor *gy = in_layout(rat_fixture_get(f, "c%" G_GINT64_FORMAT ".gy", i), nhwc);
  g_assert_true(rat_tensor_is_nhwc(x) == (nhwc || x->shape[1] == 1));
  RatTensor *y = rat_conv2d(x, w, b, p);
  char *what = g_strdup_printf("%s (%s) forward", name, nhwc ? "NHWC" : "NCHW");
  g_assert_true(rat_tensor_is_nhwc(y));
  rat_assert_close(y, rat_fixture_get(f, "c%" G_GINT64_FORMAT ".y", i), 2e-5, 2e-5, what);
  RatTensor *inputs[3] = {x, w, b}, *g[3] = {NULL};
  GError *e = NULL;
  g_assert_true(rat_grad(&y, &gy, 1, inputs, has_bias ? 3 : 2, g, FALSE, &e));
  g_free(what);
  what = g_strdup_printf("%s (%s) grad x", name, nhwc ? "NHWC" : "NCHW");
  rat_assert_close(g[0], rat_fixture_get(f, "c%" G_GINT64_FORMAT ".gx", i), 2e-5, 2e-5, what);
  g_free(what);
  what = g_strdup_printf("%s (%s) grad w", name, nhwc ? "NHWC" : "NCHW");
  rat_assert_close(g[1], rat_fixture_get(f, "c%" G_GINT64_FORMAT ".gw", i), 5e-5, 2e-5, what);
  g_free(what);
  if (has_bias) {
    what = g_strdup_printf("%s (%s) grad b", name, nhwc ? "NHWC" : "NCHW");
    rat_assert_close(g[2], rat_fixture_get(f, "c%" G_GINT64_FORMAT ".gb", i), 5e-5, 2e-5, what);
    g_free(what);
  }
  rat_scope_pop(s);
}

static void check_double_case(RatFixture *f, JsonObject *c) {
  gint64 i = json_object_get_int_member(c, "index");
  const char *name = json_object_get_string_member(c, "name");
  RatConvParams p = case_params(c);
  RatScope s = rat_scope_push();
  RatTensor *x = rat_test_leaf(rat_fixture_get(f, "c%" G_GINT64_FORMAT ".x", i));
  RatTensor *w = rat_test_leaf(rat_fixture_get(f, "c%" G_GINT64_FORMAT ".w", i));
  RatTensor *b = rat_test_leaf(rat_fixture_get(f, "c%" G_GINT64_FORMAT ".b", i));
  RatTensor *gy = rat_test_leaf(rat_fixture_get(f, "c%" G_GINT64_FORMAT ".gy", i));
  RatTensor *v = rat_fixture_get(f, "c%" G_GINT64_FORMAT ".v", i), *u = rat_fixture_get(f, "c%" G_GINT64_FORMAT ".u", i);
  RatTensor *y = rat_conv2d(x, w, b, p);
  RatTensor *xw[2] = {x, w}, *g1[2];
  GError *e = NULL;
  g_assert_true(rat_grad(&y, &gy, 1, xw, 2, g1, TRUE, &e));
  rat_assert_close(g1[0], rat_fixture_get(f, "c%" G_GINT64_FORMAT ".gx", i), 2e-5, 2e-5, name);
  rat_assert_close(g1[1], rat_fixture_get(f, "c%" G_GINT64_FORMAT ".gw", i), 5e-5, 2e-5, name);
  g_assert_nonnull(g1[0]->grad_fn);
  g_assert_nonnull(g1[1]->grad_fn);
  RatTensor *L = rat_add(rat_sum_all(rat_mul(g1[0], v)), rat_sum_all(rat_mul(g1[1], u)));
  RatTensor *in3[3] = {x, w, gy}, *g2[3];
  g_assert_true(rat_grad(&L, NULL, 1, in3, 3, g2, FALSE, &e));
  char *what = g_strdup_printf("%s: d/dx", name);
  rat_assert_close(g2[0], rat_fixture_get(f, "c%" G_GINT64_FORMAT ".dx", i), 5e-5, 5e-5, what);
  g_free(what);
  what = g_strdup_printf("%s: d/dw", name);
  rat_assert_close(g2[1], rat_fixture_get(f, "c%" G_GINT64_FORMAT ".dw", i), 5e-5, 5e-5, what);
  g_free(what);
  what = g_strdup_printf("%s: d/dgy", name);
  rat_assert_close(g2[2], rat_fixture_get(f, "c%" G_GINT64_FORMAT ".dgy", i), 5e-5, 5e-5, what);
  g_free(what);
  rat_scope_pop(s);
}

static void check_pool_case(RatFixture *f, JsonObject *c, gboolean nhwc) {
  gint64 i = json_object_get_int_member(c, "index");
  const char *name = json_object_get_string_member(c, "name"), *op = json_object_get_string_member(c, "op");
  int k = (int)json_object_get_int_member(c, "k"), st = (int)json_object_get_int_member(c, "s");
  RatScope s = rat_scope_push();
  RatTensor *x = rat_test_leaf(in_layout(rat_fixture_get(f, "c%" G_GINT64_FORMAT ".x", i), nhwc));
  RatTensor *gy = in_layout(rat_fixture_get(f, "c%" G_GINT64_FORMAT ".gy", i), nhwc);
  RatTensor *y = g_str_equal(op, "avg_pool2d") ? rat_avg_pool2d(x, k, st) : rat_adaptive_avg_pool2d_1(x);
  char *what = g_strdup_printf("%s (%s)", name, nhwc ? "NHWC" : "NCHW");
  rat_assert_close(y, rat_fixture_get(f, "c%" G_GINT64_FORMAT ".y", i), 1e-6, 1e-5, what);
  RatTensor *g;
  GError *e = NULL;
  g_assert_true(rat_grad(&y, &gy, 1, &x, 1, &g, FALSE, &e));
  rat_assert_close(g, rat_fixture_get(f, "c%" G_GINT64_FORMAT ".gx", i), 1e-6, 1e-5, what);
  g_free(what);
  rat_scope_pop(s);
}

static void run_fixture(const char *fixture) {
  RatFixture *f = rat_fixture_open(fixture);
  guint n_conv = 0, n_double = 0, n_pool = 0;
  for (guint j = 0; j < json_array_get_length(f->cases); j++) {
    JsonObject *c = json_array_get_object_element(f->cases, j);
    const char *op = json_object_get_string_member(c, "op");
    if (g_str_equal(op, "conv2d")) {
      check_conv_case(f, c, FALSE);
      check_conv_case(f, c, TRUE);
      n_conv++;
    } else if (g_str_equal(op, "conv_double")) {
      check_double_case(f, c);
      n_double++;
    } else {
      check_pool_case(f, c, FALSE);
      check_pool_case(f, c, TRUE);
      n_pool++;
    }
  }
  g_test_message("%s: %u conv, %u double-backward, %u pooling cases", fixture, n_conv, n_double, n_pool);
  g_assert_cmpuint(n_conv + n_double + n_pool, ==, json_array_get_length(f->cases));
  rat_fixture_close(f);
}

static void test_golden(void) { run_fixture("conv"); }
static void test_golden_patch(void) { run_fixture("conv_patch"); }

/* ---- finite differences ------------------------------------------------------------------------------------------ */

static RatTensor *fn_conv(RatTensor *const *in, gpointer user) {
  return rat_conv2d(in[0], in[1], in[2], *(RatConvParams *)user);
}
static RatTensor *fn_conv_lrelu(RatTensor *const *in, gpointer user) {
  return rat_leaky_relu(rat_conv2d(in[0], in[1], in[2], *(RatConvParams *)user), 0.2f);
}
static RatTensor *fn_bwd_data(RatTensor *const *in, gpointer user) {
  RatConvParams *p = user;
  RatShape xs = RAT_SHAPE(2, 4, 6, 6);
  return rat_conv2d_backward_data(in[0], in[1], xs, *p);
}
static RatTensor *fn_bwd_weight(RatTensor *const *in, gpointer user) {
  return rat_conv2d_backward_weight(in[0], in[1], RAT_SHAPE(6, 2, 3, 3), *(RatConvParams *)user);
}
static RatTensor *fn_pool(RatTensor *const *in, gpointer user) { return rat_avg_pool2d(in[0], 3, 2); }
static RatTensor *fn_pool_sq(RatTensor *const *in, gpointer user) {
  return rat_square(rat_avg_pool2d(rat_square(in[0]), 2, 2));
}
static RatTensor *fn_adaptive_sq(RatTensor *const *in, gpointer user) {
  return rat_adaptive_avg_pool2d_1(rat_square(in[0]));
}

static void test_gradcheck(void) {
  RatScope s = rat_scope_push();
  RatConvParams p = RAT_CONV_PARAMS(2, 1);
  RatTensor *in[3] = {rat_test_leaf(rat_test_randn(RAT_SHAPE(2, 3, 5, 5), 1)),
                      rat_test_leaf(rat_test_randn(RAT_SHAPE(4, 3, 3, 3), 2)),
                      rat_test_leaf(rat_test_randn(RAT_SHAPE(4), 3))};
  rat_gradcheck("conv 3x3 s2 p1", fn_conv, &p, 3, in, 1e-2, 2e-3, 2e-3);
  rat_gradgradcheck("conv 3x3 s2 p1", fn_conv, &p, 3, in, 1e-2, 2e-3, 2e-3);

  RatConvParams q = {.stride = {1, 2}, .padding = {2, 1}, .dilation = {2, 1}, .groups = 2};
  RatTensor *in2[3] = {rat_test_leaf(rat_test_randn(RAT_SHAPE(2, 4, 6, 5), 4)),
                       rat_test_leaf(rat_test_randn(RAT_SHAPE(6, 2, 3, 2), 5)), NULL};
  in2[2] = rat_test_leaf(rat_test_randn(RAT_SHAPE(6), 6));
  rat_gradcheck("conv grouped dilated", fn_conv, &q, 3, in2, 1e-2, 2e-3, 2e-3);
  rat_gradgradcheck("conv grouped dilated", fn_conv, &q, 3, in2, 1e-2, 2e-3, 2e-3);
  /* through a LeakyReLU (the discriminator pattern): second order flows through the mask */
  rat_gradgradcheck("conv + leaky_relu", fn_conv_lrelu, &p, 3, in, 1e-3, 2e-3, 5e-3);

  /* the backward functions as ops of their own */
  RatConvParams r = {.stride = {2, 2}, .padding = {1, 1}, .dilation = {1, 1}, .groups = 2};
  RatTensor *bd[2] = {rat_test_leaf(rat_test_randn(RAT_SHAPE(2, 6, 3, 3), 7)),
                      rat_test_leaf(rat_test_randn(RAT_SHAPE(6, 2, 3, 3), 8))};
  rat_gradcheck("conv_backward_data", fn_bwd_data, &r, 2, bd, 1e-2, 2e-3, 2e-3);
  rat_gradgradcheck("conv_backward_data", fn_bwd_data, &r, 2, bd, 1e-2, 2e-3, 2e-3);
  RatTensor *bw[2] = {rat_test_leaf(rat_test_randn(RAT_SHAPE(2, 4, 6, 6), 9)),
                      rat_test_leaf(rat_test_randn(RAT_SHAPE(2, 6, 3, 3), 10))};
  rat_gradcheck("conv_backward_weight", fn_bwd_weight, &r, 2, bw, 1e-2, 2e-3, 2e-3);
  rat_gradgradcheck("conv_backward_weight", fn_bwd_weight, &r, 2, bw, 1e-2, 2e-3, 2e-3);

  RatTensor *x = rat_test_leaf(rat_test_randn(RAT_SHAPE(2, 3, 7, 6), 11));
  rat_gradcheck("avg_pool 3/2", fn_pool, NULL, 1, &x, 1e-2, 1e-3, 1e-3);
  rat_gradgradcheck("avg_pool 3/2", fn_pool, NULL, 1, &x, 1e-2, 1e-3, 1e-3);
  rat_gradcheck("square(avg_pool(square))", fn_pool_sq, NULL, 1, &x, 1e-3, 2e-3, 5e-3);
  rat_gradgradcheck("square(avg_pool(square))", fn_pool_sq, NULL, 1, &x, 1e-3, 2e-3, 5e-3);
  rat_gradgradcheck("adaptive(square)", fn_adaptive_sq, NULL, 1, &x, 1e-3, 2e-3, 5e-3);
  rat_scope_pop(s);
}

/* ---- implementation choice and caches ---------------------------------------------------------------------------- */

static void test_impl(void) {
  static const struct {
    gint64 B, Ci, Co, S, K, P;
  } shapes[] = {{8, 512, 512, 8, 3, 1},   {8, 512, 512, 16, 3, 1},  {8, 512, 512, 32, 3, 1}, {8, 512, 256, 64, 3, 1},
                {8, 256, 128, 128, 3, 1}, {8, 128, 64, 224, 3, 1}, {8, 768, 512, 7, 5, 2}};
  __builtin_cpu_init();
  gboolean avx512 = __builtin_cpu_supports("avx512f");
  for (guint i = 0; i < G_N_ELEMENTS(shapes); i++) {
    RatShape xs = RAT_SHAPE(shapes[i].B, shapes[i].Ci, shapes[i].S, shapes[i].S);
    RatShape ws = RAT_SHAPE(shapes[i].Co, shapes[i].Ci, shapes[i].K, shapes[i].K);
    RatConvParams p = RAT_CONV_PARAMS(1, (int)shapes[i].P);
    for (int which = 0; which < 3; which++) {
      const char *impl = rat_conv2d_impl_name(xs, ws, TRUE, p, which);
      g_test_message("%" G_GINT64_FORMAT "->%" G_GINT64_FORMAT " %" G_GINT64_FORMAT "px k%" G_GINT64_FORMAT
                     " %s: %s",
                     shapes[i].Ci, shapes[i].Co, shapes[i].S, shapes[i].K, which == 0 ? "fwd" : which == 1 ? "bwd_data" : "bwd_weights",
                     impl);
      /* jit:avx512_core or brgconv:avx512_core (brgemm kernels); never ref: or the im2col gemm: path */
      g_assert_true(g_str_has_prefix(impl, "jit") || g_str_has_prefix(impl, "brg"));
      if (avx512) g_assert_nonnull(strstr(impl, "avx512"));
    }
  }
}

static void test_weight_cache(void) {
  RatScope s = rat_scope_push();
  RatTensor *x = rat_to_nhwc(rat_test_randn(RAT_SHAPE(2, 32, 6, 6), 21));
  RatTensor *w = rat_test_randn(RAT_SHAPE(32, 32, 3, 3), 22);
  RatConvParams p = RAT_CONV_PARAMS(1, 1);
  RatTensor *y1 = rat_conv2d(x, w, NULL, p);
  guint64 n0 = rat_conv2d_weight_reorders();
  RatTensor *y2 = rat_conv2d(x, w, NULL, p);
  g_assert_cmpuint(rat_conv2d_weight_reorders(), ==, n0); /* unchanged weight: no reorder */
  rat_assert_close(y2, y1, 0, 0, "repeat");
  /* an in-place update with a version bump must be seen */
  rat_tensor_fill_(w, 0.5f);
  RatTensor *y3 = rat_conv2d(x, w, NULL, p);
  g_assert_cmpuint(rat_conv2d_weight_reorders(), ==, n0 + 1);
  RatTensor *y4 = rat_conv2d(x, rat_full(RAT_SHAPE(32, 32, 3, 3), 0.5f), NULL, p);
  rat_assert_close(y3, y4, 0, 0, "after an in-place weight update");
  /* a non-contiguous weight view (transposed storage) */
  RatTensor *wt = rat_transpose(rat_contiguous(rat_transpose(rat_test_randn(RAT_SHAPE(32, 32, 3, 3), 23), 0, 1)), 0, 1);
  g_assert_false(rat_tensor_is_contiguous(wt));
  rat_assert_close(rat_conv2d(x, wt, NULL, p), rat_conv2d(x, rat_contiguous(wt), NULL, p), 0, 0, "strided weight");
  rat_scope_pop(s);
}

/* The result bits must not depend on the thread count. */
static void test_threads(void) {
  RatScope s = rat_scope_push();
  RatTensor *x = rat_to_nhwc(rat_test_randn(RAT_SHAPE(4, 64, 12, 12), 31));
  RatTensor *w = rat_test_randn(RAT_SHAPE(64, 64, 3, 3), 32);
  RatTensor *gy = rat_to_nhwc(rat_test_randn(RAT_SHAPE(4, 64, 12, 12), 33));
  RatConvParams p = RAT_CONV_PARAMS(1, 1);
  int nt = rat_get_num_threads();
  RatTensor *r[2][4];
  for (int k = 0; k < 2; k++) {
    rat_set_num_threads(k == 0 ? 1 : MAX(nt, 2));
    r[k][0] = rat_conv2d(x, w, NULL, p);
    r[k][1] = rat_conv2d_backward_data(gy, w, rat_tensor_shape(x), p);
    r[k][2] = rat_conv2d_backward_weight(x, gy, rat_tensor_shape(w), p);
    r[k][3] = rat_avg_pool2d(x, 2, 2);
  }
  rat_set_num_threads(nt);
  static const char *names[4] = {"forward", "backward data", "backward weights", "avg_pool"};
  for (int j = 0; j < 4; j++) rat_assert_close(r[1][j], r[0][j], 0, 0, names[j]);
  /* a RATLIP shape where oneDNN splits the batch of the weight gradient over threads (differed before the fix) */
  RatTensor *x2 = rat_to_nhwc(rat_test_randn(RAT_SHAPE(8, 256, 64, 64), 34));
  RatTensor *g2 = rat_to_nhwc(rat_test_randn(RAT_SHAPE(8, 128, 64, 64), 35));
  RatTensor *gw[2];
  for (int k = 0; k < 2; k++) {
    rat_set_num_threads(k == 0 ? 1 : MAX(nt, 2));
    gw[k] = rat_conv2d_backward_weight(x2, g2, RAT_SHAPE(128, 256, 3, 3), p);
  }
  rat_set_num_threads(nt);
  rat_assert_close(gw[1], gw[0], 0, 0, "backward weights 8x256->128 at 64px");
  rat_scope_pop(s);
}

int main(int argc, char **argv) {
  rat_test_init(&argc, &argv);
  g_test_add_func("/conv/golden", test_golden);
  g_test_add_func("/conv/golden-patchify", test_golden_patch);
  g_test_add_func("/conv/gradcheck", test_gradcheck);
  g_test_add_func("/conv/impl", test_impl);
  g_test_add_func("/conv/weight-cache", test_weight_cache);
  g_test_add_func("/conv/threads", test_threads);
  return g_test_run();
}
