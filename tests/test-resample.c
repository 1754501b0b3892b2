/* Nearest (PyTorch legacy index rule) and bilinear resampling: golden values and gradients against
 * tools/reference/ref_spatial.py, channels-last inputs, index maps of reference §2.5, finite-difference checks of
 * first and second order, and the adjoint relation between the op and its backward. */
#include "config.h"

#include "testutil.h"

#include <math.h>
#include <string.h>

static RatTensor *run_op(const char *op, RatTensor *x, int oh, int ow, gboolean align) {
  return g_str_equal(op, "nearest") ? rat_upsample_nearest(x, oh, ow) : rat_resize_bilinear(x, oh, ow, align);
}

static void check_case(RatFixture *f, guint i, gboolean nhwc) {
  RatScope s = rat_scope_push();
  JsonObject *o = json_array_get_object_element(f->cases, i);
  const char *op = json_object_get_string_member(o, "op");
  gboolean align = json_object_get_boolean_member(o, "align_corners");
  int oh = (int)json_object_get_int_member(o, "out_h"), ow = (int)json_object_get_int_member(o, "out_w");
  RatTensor *x = rat_test_leaf(rat_fixture_get(f, "c%u.x", i));
  RatTensor *gy = rat_fixture_get(f, "c%u.gy", i);
  char *what = g_strdup_printf("case %u (%s %" G_GINT64_FORMAT "x%" G_GINT64_FORMAT " -> %dx%d%s%s)", i, op,
                               x->shape[2], x->shape[3], oh, ow, align ? ", align_corners" : "",
                               nhwc ? ", channels-last" : "");
  RatTensor *xin = x;
  if (nhwc) {
    xin = rat_to_nhwc(x);
    gy = rat_to_nhwc(gy);
  }
  RatTensor *y = run_op(op, xin, oh, ow, align);
  g_assert_cmpint(y->shape[2], ==, oh);
  g_assert_cmpint(y->shape[3], ==, ow);
  if (nhwc && x->shape[1] > 1) g_assert_true(rat_tensor_is_nhwc(y) && !rat_tensor_is_contiguous(y));
  /* nearest copies values: exact. Bilinear: the weights are torch float32's, bit for bit, which sit up to 1.5e-5
   * from the float64 reference's at 224->299 (a float32 scale), so: tight against torch float32, 1e-4 against
   * float64. */
  gboolean nearest = g_str_equal(op, "nearest");
  rat_assert_close(y, rat_fixture_get(f, "c%u.y", i), nearest ? 0 : 1e-4, 0, what);
  RatTensor *g;
  GError *e = NULL;
  g_assert_true(rat_grad(&y, &gy, 1, &x, 1, &g, FALSE, &e));
  char *gw = g_strconcat(what, " gx", NULL);
  rat_assert_close(g, rat_fixture_get(f, "c%u.gx", i), nearest ? 1e-6 : 1e-4, 1e-6, gw);
  if (!nearest) {
    rat_assert_close(y, rat_fixture_get(f, "c%u.y32", i), 2e-6, 2e-6, what);
    rat_assert_close(g, rat_fixture_get(f, "c%u.gx32", i), 5e-6, 5e-6, gw);
  }
  g_free(gw);
  g_free(what);
  rat_scope_pop(s);
}

static void test_golden(void) {
  RatFixture *f = rat_fixture_open("spatial_resample");
  guint n = json_array_get_length(f->cases);
  g_assert_cmpuint(n, >=, 17);
  for (guint i = 0; i < n; i++) {
    check_case(f, i, FALSE);
    check_case(f, i, TRUE);
  }
  rat_fixture_close(f);
}

/* Source index of every destination along H, read back through the op on an arange input. */
static void nearest_map(int in, int out, gint64 *map) {
  RatScope s = rat_scope_push();
  RatTensor *x = rat_reshape(rat_arange(in), RAT_SHAPE(1, 1, in, 1));
  RatTensor *y = rat_upsample_nearest(x, out, 1);
  float *v = g_new(float, out);
  rat_tensor_read(y, v);
  for (int i = 0; i < out; i++) map[i] = (gint64)v[i];
  g_free(v);
  rat_scope_pop(s);
}

static void test_index_maps(void) {
  gint64 m[256];
  static const gint64 want78[8] = {0, 0, 1, 2, 3, 4, 5, 6};
  nearest_map(7, 8, m);
  for (int i = 0; i < 8; i++) g_assert_cmpint(m[i], ==, want78[i]);
  nearest_map(8, 16, m);
  for (int i = 0; i < 16; i++) g_assert_cmpint(m[i], ==, i / 2);
  /* 128 -> 224 and 256 -> 224: floor(dst * (float)(in/out)) in float32, non-decreasing, clamped */
  static const int ins[2] = {128, 256};
  for (int k = 0; k < 2; k++) {
    nearest_map(ins[k], 224, m);
    float scale = (float)ins[k] / 224.0f;
    for (int i = 0; i < 224; i++) {
      gint64 want = MIN((gint64)floorf((float)i * scale), ins[k] - 1);
      g_assert_cmpint(m[i], ==, want);
      if (i) g_assert_cmpint(m[i], >=, m[i - 1]);
    }
  }
  /* 128 -> 224 is non-uniform: some sources used once, some twice */
  nearest_map(128, 224, m);
  int once = 0, twice = 0;
  for (int src = 0; src < 128; src++) {
    int c = 0;
    for (int i = 0; i < 224; i++) c += m[i] == src;
    once += c == 1;
    twice += c == 2;
  }
  g_assert_cmpint(once + twice, ==, 128);
  g_assert_cmpint(once, ==, 32);
  g_assert_cmpint(twice, ==, 96);
}

/* Generator-sized maps, both layouts, in parallel: identical values, and the adjoint identity
 * <R x, g> = <x, R^T g> that ties the backward to the forward. */
static double dot(RatTensor *a, RatTensor *b) {
  gint64 n = rat_tensor_numel(a);
  float *x = g_new(float, n), *y = g_new(float, n);
  rat_tensor_read(a, x);
  rat_tensor_read(b, y);
  double s = 0;
  for (gint64 i = 0; i < n; i++) s += (double)x[i] * y[i];
  g_free(x);
  g_free(y);
  return s;
}

static void test_layouts_adjoint(void) {
  static const struct {
    int in, out, bilinear, align;
  } cases[] = {{128, 224, 0, 0}, {256, 224, 0, 0}, {7, 8, 0, 0}, {224, 299, 1, 0}, {224, 299, 1, 1}, {299, 224, 1, 1}};
  for (guint i = 0; i < G_N_ELEMENTS(cases); i++) {
    RatScope s = rat_scope_push();
    RatShape sh = RAT_SHAPE(2, 5, cases[i].in, cases[i].in);
    RatTensor *x = rat_test_leaf(rat_test_randn(sh, 100 + i));
    RatTensor *xl = rat_to_nhwc(x);
    int o = cases[i].out;
    RatTensor *y1 = cases[i].bilinear ? rat_resize_bilinear(x, o, o, cases[i].align) : rat_upsample_nearest(x, o, o);
    RatTensor *y2 = cases[i].bilinear ? rat_resize_bilinear(xl, o, o, cases[i].align) : rat_upsample_nearest(xl, o, o);
    g_assert_true(rat_tensor_is_nhwc(y2));
    rat_assert_close(y2, y1, 0, 0, "channels-last vs row-major forward");
    RatTensor *gy = rat_test_randn(rat_tensor_shape(y1), 200 + i), *g1, *g2;
    GError *e = NULL;
    g_assert_true(rat_grad(&y1, &gy, 1, &x, 1, &g1, FALSE, &e));
    g_assert_true(rat_grad(&y2, &gy, 1, &x, 1, &g2, FALSE, &e));
    rat_assert_close(g2, g1, 0, 0, "channels-last vs row-major backward");
    double lhs = dot(y1, gy), rhs = dot(x, g1);
    g_assert_cmpfloat(fabs(lhs - rhs), <=, 1e-4 * (1 + fabs(lhs)));
    rat_scope_pop(s);
  }
}

typedef struct {
  int oh, ow, bilinear, align, nhwc;
} Args;

static RatTensor *call_resample(RatTensor *const *in, gpointer user) {
  Args *a = user;
  RatTensor *x = a->nhwc ? rat_to_nhwc(in[0]) : in[0];
  return a->bilinear ? rat_resize_bilinear(x, a->oh, a->ow, a->align) : rat_upsample_nearest(x, a->oh, a->ow);
}

static void test_gradcheck(void) {
  static const Args cases[] = {{8, 8, 0, 0, 0}, {3, 11, 0, 0, 1}, {9, 4, 1, 0, 0}, {9, 4, 1, 1, 1}, {3, 5, 1, 0, 1},
                               {3, 5, 1, 1, 0}};
  for (guint i = 0; i < G_N_ELEMENTS(cases); i++) {
    RatScope s = rat_scope_push();
    RatTensor *x = rat_test_leaf(rat_test_randn(RAT_SHAPE(2, 3, 7, 6), 300 + i));
    Args a = cases[i];
    rat_gradcheck("resample", call_resample, &a, 1, &x, 1e-2, 2e-3, 1e-2);
    rat_gradgradcheck("resample", call_resample, &a, 1, &x, 1e-2, 2e-3, 1e-2);
    /* the backward's own backward is the forward: differentiate the gradient with respect to gy */
    RatTensor *y = call_resample(&x, &a);
    RatTensor *gy = rat_test_leaf(rat_test_randn(rat_tensor_shape(y), 400 + i)), *gx, *ggy;
    GError *e = NULL;
    g_assert_true(rat_grad(&y, &gy, 1, &x, 1, &gx, TRUE, &e));
    RatTensor *v = rat_test_randn(rat_tensor_shape(x), 500 + i);
    RatTensor *F = rat_sum_all(rat_mul(gx, v));
    g_assert_true(rat_grad(&F, NULL, 1, &gy, 1, &ggy, FALSE, &e));
    rat_assert_close(ggy, call_resample(&v, &a), 1e-6, 1e-6, "d<R^T gy, v>/d gy = R v");
    rat_scope_pop(s);
  }
}

int main(int argc, char **argv) {
  rat_test_init(&argc, &argv);
  g_test_add_func("/resample/golden", test_golden);
  g_test_add_func("/resample/index-maps", test_index_maps);
  g_test_add_func("/resample/layouts-adjoint", test_layouts_adjoint);
  g_test_add_func("/resample/gradcheck", test_gradcheck);
  return g_test_run();
}
