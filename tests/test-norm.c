/* Batch, group and instance norm: golden values and gradients against tools/reference/ref_spatial.py (row-major and
 * channels-last inputs, running-stat updates), fused vs composite backward, finite-difference checks of first and
 * second order, and bit-identical results across thread counts. */
#include "config.h"

#include "testutil.h"

#include <math.h>
#include <string.h>

/* ---- golden ------------------------------------------------------------------------------------------------------ */

static RatTensor *plain_copy(RatTensor *t) {
  RatTensor *c;
  RAT_NO_GRAD_BEGIN
  c = rat_copy(t);
  RAT_NO_GRAD_END
  return rat_tensor_alias(c);
}

static void check_case(RatFixture *f, guint i, gboolean nhwc, gboolean create_graph) {
  RatScope s = rat_scope_push();
  JsonObject *o = json_array_get_object_element(f->cases, i);
  const char *op = json_object_get_string_member(o, "op");
  float eps = (float)json_object_get_double_member(o, "eps");
  char *what = g_strdup_printf("case %u (%s%s, %s backward)", i, op, nhwc ? ", channels-last" : "",
                               create_graph ? "composite" : "fused");
  RatTensor *x = rat_test_leaf(rat_fixture_get(f, "c%u.x", i));
  RatTensor *w = rat_fixture_has(f, "c%u.w", i) ? rat_test_leaf(rat_fixture_get(f, "c%u.w", i)) : NULL;
  RatTensor *b = rat_fixture_has(f, "c%u.b", i) ? rat_test_leaf(rat_fixture_get(f, "c%u.b", i)) : NULL;
  RatTensor *gy = rat_fixture_get(f, "c%u.gy", i);
  RatTensor *xin = x;
  if (nhwc) {
    xin = rat_to_nhwc(x);
    g_assert_true(rat_tensor_is_nhwc(xin) && !rat_tensor_is_contiguous(xin));
    gy = rat_to_nhwc(gy);
  }
  RatTensor *y, *rm = NULL, *rv = NULL;
  gboolean batch = g_str_has_prefix(op, "batch");
  if (batch) {
    rm = plain_copy(rat_fixture_get(f, "c%u.rm", i));
    rv = plain_copy(rat_fixture_get(f, "c%u.rv", i));
    float momentum = (float)json_object_get_double_member(o, "momentum");
    y = rat_batch_norm(xin, rm, rv, w, b, g_str_equal(op, "batch_train"), momentum, eps);
    /* running statistics: updated (train, unbiased variance) or untouched (eval) */
    rat_assert_close(rm, rat_fixture_get(f, "c%u.rm_out", i), 1e-6, 1e-5, what);
    rat_assert_close(rv, rat_fixture_get(f, "c%u.rv_out", i), 1e-6, 1e-5, what);
  } else if (g_str_equal(op, "group")) {
    y = rat_group_norm(xin, (int)json_object_get_int_member(o, "groups"), w, b, eps);
  } else {
    y = rat_instance_norm(xin, w, b, eps);
  }
  rat_assert_close(y, rat_fixture_get(f, "c%u.y", i), 1e-5, 1e-5, what);
  if (nhwc) g_assert_true(rat_tensor_is_nhwc(y));

  RatTensor *in[3], *g[3];
  const char *gname[3];
  guint n = 0;
  in[n] = x, gname[n++] = "gx";
  if (w) in[n] = w, gname[n++] = "gw";
  if (b) in[n] = b, gname[n++] = "gb";
  GError *e = NULL;
  g_assert_true(rat_grad(&y, &gy, 1, in, n, g, create_graph, &e));
  for (guint k = 0; k < n; k++) {
    char *msg = g_strdup_printf("%s %s", what, gname[k]);
    rat_assert_close(g[k], rat_fixture_get(f, "c%u.%s", i, gname[k]), 2e-5, 2e-5, msg);
    g_free(msg);
  }
  g_free(what);
  rat_scope_pop(s);
}

static void test_golden(void) {
  RatFixture *f = rat_fixture_open("spatial_norm");
  guint n = json_array_get_length(f->cases);
  g_assert_cmpuint(n, >=, 15);
  for (guint i = 0; i < n; i++) {
    JsonObject *o = json_array_get_object_element(f->cases, i);
    gboolean four = json_array_get_length(json_object_get_array_member(o, "shape")) == 4;
    for (int cg = 0; cg < 2; cg++) {
      check_case(f, i, FALSE, cg);
      if (four) check_case(f, i, TRUE, cg);
    }
  }
  rat_fixture_close(f);
}

/* ---- fused vs composite backward --------------------------------------------------------------------------------- */

typedef struct {
  int kind; /* 0 batch train, 1 batch eval, 2 group, 3 instance */
  int groups;
  RatTensor *rm, *rv;
} NormArgs;

static RatTensor *call_norm(RatTensor *const *in, gpointer user) {
  NormArgs *a = user;
  switch (a->kind) {
  case 0: return rat_batch_norm(in[0], NULL, NULL, in[1], in[2], TRUE, 0.1f, 1e-5f);
  case 1: return rat_batch_norm(in[0], a->rm, a->rv, in[1], in[2], FALSE, 0.1f, 1e-5f);
  case 2: return rat_group_norm(in[0], a->groups, in[1], in[2], 1e-5f);
  default: return rat_instance_norm(in[0], in[1], in[2], 1e-5f);
  }
}

/* Large enough for the parallel kernels; channels-last x with a row-major incoming gradient (a layout mismatch). */
static void test_paths_agree(void) {
  for (int kind = 0; kind < 4; kind++) {
    RatScope s = rat_scope_push();
    RatShape sh = RAT_SHAPE(3, 12, 20, 24);
    NormArgs a = {.kind = kind, .groups = 4, .rm = rat_test_randn(RAT_SHAPE(12), 5),
                  .rv = rat_test_uniform(RAT_SHAPE(12), 0.5f, 1.5f, 6)};
    RatTensor *x = rat_test_leaf(rat_test_randn(sh, 10 + kind));
    RatTensor *in[3] = {rat_to_nhwc(x), rat_test_leaf(rat_test_uniform(RAT_SHAPE(12), 0.5f, 1.5f, 20)),
                        rat_test_leaf(rat_test_randn(RAT_SHAPE(12), 21))};
    RatTensor *leaves[3] = {x, in[1], in[2]};
    RatTensor *y = call_norm(in, &a);
    RatTensor *gy = rat_test_randn(sh, 30);
    RatTensor *g1[3], *g2[3];
    GError *e = NULL;
    g_assert_true(rat_grad(&y, &gy, 1, leaves, 3, g1, FALSE, &e));
    y = call_norm(in, &a);
    g_assert_true(rat_grad(&y, &gy, 1, leaves, 3, g2, TRUE, &e));
    g_assert_nonnull(g2[0]->grad_fn); /* composite: differentiable */
    for (int k = 0; k < 3; k++) {
      char *what = g_strdup_printf("kind %d, gradient %d: fused vs composite", kind, k);
      rat_assert_close(g1[k], g2[k], 2e-5, 2e-4, what);
      g_free(what);
    }
    rat_scope_pop(s);
  }
}

/* ---- finite differences ------------------------------------------------------------------------------------------ */

static void test_gradcheck(void) {
  static const struct {
    int kind, groups;
    const char *name;
  } cases[] = {{0, 0, "batch_norm train"}, {1, 0, "batch_norm eval"}, {2, 2, "group_norm G<C"},
               {2, 4, "group_norm G=C"},   {3, 0, "instance_norm"}};
  for (guint i = 0; i < G_N_ELEMENTS(cases); i++) {
    RatScope s = rat_scope_push();
    NormArgs a = {.kind = cases[i].kind, .groups = cases[i].groups, .rm = rat_test_randn(RAT_SHAPE(4), 7),
                  .rv = rat_test_uniform(RAT_SHAPE(4), 0.5f, 1.5f, 8)};
    RatTensor *in[3] = {rat_test_leaf(rat_test_randn(RAT_SHAPE(2, 4, 3, 3), 40 + i)),
                        rat_test_leaf(rat_test_uniform(RAT_SHAPE(4), 0.5f, 1.5f, 50 + i)),
                        rat_test_leaf(rat_test_randn(RAT_SHAPE(4), 60 + i))};
    rat_gradcheck(cases[i].name, call_norm, &a, 3, in, 5e-3, 5e-3, 2e-2);
    rat_gradgradcheck(cases[i].name, call_norm, &a, 3, in, 5e-3, 1e-2, 3e-2);
    rat_scope_pop(s);
  }
}

static RatTensor *call_norm_nhwc(RatTensor *const *in, gpointer user) {
  RatTensor *v[3] = {rat_to_nhwc(in[0]), in[1], in[2]};
  return call_norm(v, user);
}

static void test_gradcheck_nhwc(void) {
  for (int kind = 0; kind < 4; kind++) {
    RatScope s = rat_scope_push();
    NormArgs a = {.kind = kind, .groups = 2, .rm = rat_test_randn(RAT_SHAPE(4), 7),
                  .rv = rat_test_uniform(RAT_SHAPE(4), 0.5f, 1.5f, 8)};
    RatTensor *in[3] = {rat_test_leaf(rat_test_randn(RAT_SHAPE(2, 4, 3, 2), 70 + kind)),
                        rat_test_leaf(rat_test_uniform(RAT_SHAPE(4), 0.5f, 1.5f, 80)),
                        rat_test_leaf(rat_test_randn(RAT_SHAPE(4), 81))};
    rat_gradcheck("norm channels-last", call_norm_nhwc, &a, 3, in, 5e-3, 5e-3, 2e-2);
    rat_gradgradcheck("norm channels-last", call_norm_nhwc, &a, 3, in, 5e-3, 1e-2, 3e-2);
    rat_scope_pop(s);
  }
}

/* ---- determinism --------------------------------------------------------------------------------------------------- */

static void run_bn(RatTensor *x, RatTensor *gy, float *y_out, float *gx_out, float *rm_out) {
  RatScope s = rat_scope_push();
  RatTensor *xl = rat_test_leaf(x);
  RatTensor *xin = rat_tensor_is_nhwc(x) ? rat_to_nhwc(xl) : xl;
  RatTensor *rm = rat_zeros(RAT_SHAPE(x->shape[1])), *rv = rat_ones(RAT_SHAPE(x->shape[1]));
  RatTensor *y = rat_batch_norm(xin, rm, rv, NULL, NULL, TRUE, 0.1f, 1e-5f);
  RatTensor *g;
  GError *e = NULL;
  g_assert_true(rat_grad(&y, &gy, 1, &xl, 1, &g, FALSE, &e));
  rat_tensor_read(y, y_out);
  rat_tensor_read(g, gx_out);
  rat_tensor_read(rm, rm_out);
  rat_scope_pop(s);
}

static void test_threads(void) {
  int saved = rat_get_num_threads();
  for (int layout = 0; layout < 2; layout++) {
    RatScope s = rat_scope_push();
    RatShape sh = RAT_SHAPE(4, 40, 24, 26);
    RatTensor *x = rat_test_randn(sh, 90);
    if (layout) {
      RatTensor *t = rat_empty_nhwc(sh);
      rat_tensor_copy_(t, x);
      x = t;
    }
    RatTensor *gy = rat_test_randn(sh, 91);
    gint64 n = rat_shape_numel(sh);
    float *y1 = g_new(float, n), *g1 = g_new(float, n), *y2 = g_new(float, n), *g2 = g_new(float, n), r1[40], r2[40];
    rat_set_num_threads(1);
    run_bn(x, gy, y1, g1, r1);
    rat_set_num_threads(2);
    run_bn(x, gy, y2, g2, r2);
    rat_set_num_threads(saved);
    g_assert_true(memcmp(y1, y2, n * sizeof(float)) == 0);
    g_assert_true(memcmp(g1, g2, n * sizeof(float)) == 0);
    g_assert_true(memcmp(r1, r2, sizeof(r1)) == 0);
    g_free(y1);
    g_free(g1);
    g_free(y2);
    g_free(g2);
    rat_scope_pop(s);
  }
}

int main(int argc, char **argv) {
  rat_test_init(&argc, &argv);
  g_test_add_func("/norm/golden", test_golden);
  g_test_add_func("/norm/fused-vs-composite", test_paths_agree);
  g_test_add_func("/norm/gradcheck", test_gradcheck);
  g_test_add_func("/norm/gradcheck-channels-last", test_gradcheck_nhwc);
  g_test_add_func("/norm/thread-count-determinism", test_threads);
  return g_test_run();
}
