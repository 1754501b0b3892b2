/* Elementwise ops and reductions against PyTorch 1.13 (fixtures from tools/reference/ref_elementwise.py) in every
 * storage layout, with finite-difference gradient checks of first and second order; plus the precision of large
 * reductions against float64, bitwise determinism across thread counts, and edge cases (0-d, empty, NaN). */
#include "config.h"

#include "golden-ops.h"

#ifdef _OPENMP
#include <omp.h>
#endif

static const GoldenTol tol_ew = {.atol = 1e-6, .rtol = 1e-6, .gatol = 2e-6, .grtol = 2e-6};

static void test_golden_elementwise(void) {
  guint runs = golden_run_fixture("elementwise", &tol_ew, TRUE);
  g_assert_cmpuint(runs, >, 300);
}

static void test_golden_reduce(void) {
  guint runs = golden_run_fixture("elementwise-reduce", &tol_ew, TRUE);
  g_assert_cmpuint(runs, >, 300);
}

/* 1000 + u, u = (i * 2654435761 mod 2^32) / 2^32 rounded to f32: the same values ref_elementwise.py uses. */
static RatTensor *hash_values(RatShape s) {
  RatTensor *t = rat_empty(s);
  float *p = rat_tensor_data(t);
  gint64 n = rat_shape_numel(s);
  for (gint64 i = 0; i < n; i++) {
    guint32 h = (guint32)((guint64)i * 2654435761u);
    p[i] = (float)(1000.0 + h / 4294967296.0);
  }
  return t;
}

/* Reductions of 2^20 values of large mean and small spread: float accumulation would be off by ~1e-4 relative;
 * the double accumulation must agree with the float64 reference to float rounding. */
static void test_precision(void) {
  RatScope s = rat_scope_push();
  RatFixture *fx = rat_fixture_open("elementwise-reduce");
  guint idx = 0;
  for (guint c = 0; c < json_array_get_length(fx->cases); c++)
    if (!strcmp(json_object_get_string_member(json_array_get_object_element(fx->cases, c), "op"), "precision")) idx = c;
  JsonObject *co = json_array_get_object_element(fx->cases, idx);
  g_assert_cmpstr(json_object_get_string_member(co, "op"), ==, "precision");
  gint64 n = json_object_get_int_member(co, "n");
  double want_mean = json_object_get_double_member(co, "mean"), want_sum = json_object_get_double_member(co, "sum");
  RatTensor *x = hash_values(RAT_SHAPE(n));
  double m = rat_tensor_item(rat_mean_all(x)), su = rat_tensor_item(rat_sum_all(x));
  g_assert_cmpfloat(fabs(m - want_mean), <=, 1e-7 * want_mean);
  g_assert_cmpfloat(fabs(su - want_sum), <=, 1e-7 * want_sum);
  g_assert_cmpfloat(fabs(rat_tensor_item(rat_mean(x, RAT_AXIS(0), FALSE)) - want_mean), <=, 1e-7 * want_mean);
  /* rows (inner reduction) and columns (vector reduction), also channels-last */
  rat_assert_close(rat_sum(rat_reshape(x, RAT_SHAPE(16, -1)), RAT_AXIS(1), FALSE),
                   rat_fixture_get(fx, "c%u.sum_rows", idx), 0, 1e-7, "row sums of 2^16 values");
  rat_assert_close(rat_mean(rat_reshape(x, RAT_SHAPE(1024, 1024)), RAT_AXIS(0), FALSE),
                   rat_fixture_get(fx, "c%u.mean_cols", idx), 0, 1e-7, "column means of 1024 values");
  RatTensor *nhwc = rat_empty_nhwc(RAT_SHAPE(1, 1024, 32, 32));
  RatTensor *xt = rat_transpose(rat_reshape(x, RAT_SHAPE(1024, 1024)), 0, 1); /* [C, HW] */
  rat_tensor_copy_(nhwc, rat_reshape(xt, RAT_SHAPE(1, 1024, 32, 32)));
  rat_assert_close(rat_mean(nhwc, RAT_AXIS(0) | RAT_AXIS(2) | RAT_AXIS(3), FALSE),
                   rat_fixture_get(fx, "c%u.mean_cols", idx), 0, 1e-7, "per-channel means, channels-last");
  rat_fixture_close(fx);
  rat_scope_pop(s);
}

static gboolean same_bits(RatTensor *a, RatTensor *b) {
  gint64 n = rat_tensor_numel(a);
  if (n != rat_tensor_numel(b)) return FALSE;
  float *x = g_new(float, MAX(n, 1)), *y = g_new(float, MAX(n, 1));
  rat_tensor_read(a, x);
  rat_tensor_read(b, y);
  gboolean same = memcmp(x, y, n * sizeof(float)) == 0;
  g_free(x);
  g_free(y);
  return same;
}

/* The bits of every reduction are independent of the thread count. */
static void test_determinism(void) {
  RatScope s = rat_scope_push();
  RatTensor *x = rat_test_randn(RAT_SHAPE(4, 64, 32, 32), 99);
  RatTensor *xl = rat_empty_nhwc(RAT_SHAPE(4, 64, 32, 32));
  rat_tensor_copy_(xl, x);
  static const guint axes[] = {0xF, 0x1, 0x2, 0xD, 0xC, 0x3, 0x8};
  int prev = rat_get_num_threads();
  for (guint i = 0; i < G_N_ELEMENTS(axes); i++) {
    for (int layout = 0; layout < 2; layout++) {
      RatTensor *in = layout ? xl : x;
      rat_set_num_threads(1);
      RatTensor *r1 = rat_sum(in, axes[i], FALSE), *m1 = rat_mean(in, axes[i], TRUE);
      rat_set_num_threads(2);
      RatTensor *r2 = rat_sum(in, axes[i], FALSE), *m2 = rat_mean(in, axes[i], TRUE);
      if (!same_bits(r1, r2) || !same_bits(m1, m2))
        g_error("sum over axes 0x%x (%s) differs between 1 and 2 threads", axes[i], layout ? "nhwc" : "nchw");
      /* and the layout does not change the result beyond rounding */
      if (layout) rat_assert_close(r1, rat_sum(x, axes[i], FALSE), 1e-4, 1e-5, "nhwc vs nchw sum");
    }
  }
  rat_set_num_threads(1);
  RatTensor *a1 = rat_sum_all(x), *mx1 = rat_max(xl, 1, FALSE);
  rat_set_num_threads(2);
  g_assert_true(same_bits(a1, rat_sum_all(x)));
  g_assert_true(same_bits(mx1, rat_max(xl, 1, FALSE)));
  rat_set_num_threads(prev);
  rat_scope_pop(s);
}

/* Broadcasting layout rule and a few semantic edge cases outside the fixtures. */
static void test_edge_cases(void) {
  RatScope s = rat_scope_push();
  /* the affine of the generator: NHWC x times [B,C,1,1] stays NHWC, whichever operand comes first */
  RatTensor *x = rat_empty_nhwc(RAT_SHAPE(2, 8, 3, 3));
  rat_tensor_copy_(x, rat_test_randn(RAT_SHAPE(2, 8, 3, 3), 1));
  RatTensor *g = rat_test_randn(RAT_SHAPE(2, 8, 1, 1), 2);
  g_assert_true(rat_tensor_is_nhwc(rat_mul(x, g)));
  g_assert_true(rat_tensor_is_nhwc(rat_mul(g, x)));
  g_assert_true(rat_tensor_is_nhwc(rat_relu(x)));
  rat_assert_close(rat_mul(g, x), rat_mul(rat_contiguous(x), g), 0, 0, "g*x == x*g");

  /* NaN propagates through relu, leaky_relu, clamp and max (as torch); relu does not hide a diverged value */
  RatTensor *nan = rat_from_data(RAT_SHAPE(3), (float[]){-1.0f, NAN, 2.0f});
  g_assert_true(isnan(rat_tensor_data(rat_relu(nan))[1]));
  g_assert_true(isnan(rat_tensor_data(rat_leaky_relu(nan, 0.2f))[1]));
  g_assert_true(isnan(rat_tensor_data(rat_clamp(nan, -1, 1))[1]));
  g_assert_true(isnan(rat_tensor_item(rat_max(nan, 0, FALSE))));

  /* relu's gradient is exactly 0 where the input is negative, even for an infinite incoming gradient */
  RatTensor *xr = rat_test_leaf(rat_from_data(RAT_SHAPE(2), (float[]){-1.0f, 1.0f}));
  RatTensor *y = rat_relu(xr), *gy = rat_from_data(RAT_SHAPE(2), (float[]){INFINITY, 1.0f}), *gx;
  GError *e = NULL;
  g_assert_true(rat_grad(&y, &gy, 1, &xr, 1, &gx, FALSE, &e));
  g_assert_cmpfloat(rat_tensor_data(gx)[0], ==, 0.0f);

  /* pow with exponent 0 has a zero gradient everywhere, including at 0 (torch returns zeros) */
  RatTensor *x0 = rat_test_leaf(rat_from_data(RAT_SHAPE(2), (float[]){0.0f, 2.0f}));
  RatTensor *p0 = rat_sum_all(rat_pow_scalar(x0, 0.0f));
  g_assert_true(rat_grad(&p0, NULL, 1, &x0, 1, &gx, FALSE, &e));
  g_assert_cmpfloat(rat_tensor_data(gx)[0], ==, 0.0f);

  /* 0-d op 0-d, 0-d with empty, empty with empty */
  RatTensor *z = rat_add(rat_scalar(2.0f), rat_scalar(3.0f));
  g_assert_cmpint(z->ndim, ==, 0);
  g_assert_cmpfloat(rat_tensor_item(z), ==, 5.0f);
  RatTensor *emp = rat_mul(rat_zeros(RAT_SHAPE(0, 4)), rat_scalar(3.0f));
  g_assert_cmpint(emp->ndim, ==, 2);
  g_assert_cmpint(rat_tensor_numel(emp), ==, 0);
  g_assert_cmpfloat(rat_tensor_item(rat_sum_all(emp)), ==, 0.0f);
  g_assert_true(isnan(rat_tensor_item(rat_mean_all(emp))));
  /* sum of a 0-d tensor over no axes, and sum_to of a 0-d tensor to itself */
  g_assert_cmpfloat(rat_tensor_item(rat_sum(rat_scalar(4.0f), 0, FALSE)), ==, 4.0f);
  g_assert_cmpint(rat_sum_to(rat_scalar(4.0f), RAT_SHAPE0)->ndim, ==, 0);

  /* second derivative through max (MA-GP through a max-pooled path): d2/dx2 of sum(max(x)^2) */
  RatTensor *xm = rat_test_leaf(rat_from_data(RAT_SHAPE(2, 3), (float[]){1, 5, 2, 7, -1, 3}));
  RatTensor *l = rat_sum_all(rat_square(rat_max(xm, 1, FALSE)));
  RatTensor *g1, *g2;
  g_assert_true(rat_grad(&l, NULL, 1, &xm, 1, &g1, TRUE, &e));
  float g1v[6];
  rat_tensor_read(g1, g1v);
  float want1[6] = {0, 10, 0, 14, 0, 0};
  for (int i = 0; i < 6; i++) g_assert_cmpfloat(g1v[i], ==, want1[i]);
  RatTensor *l2 = rat_sum_all(g1);
  g_assert_true(rat_grad(&l2, NULL, 1, &xm, 1, &g2, FALSE, &e));
  rat_tensor_read(g2, g1v);
  float want2[6] = {0, 2, 0, 2, 0, 0};
  for (int i = 0; i < 6; i++) g_assert_cmpfloat(g1v[i], ==, want2[i]);
  rat_scope_pop(s);
}

int main(int argc, char **argv) {
  rat_test_init(&argc, &argv);
  rat_test_max_elems = 24;
  g_test_add_func("/elementwise/golden", test_golden_elementwise);
  g_test_add_func("/elementwise/reduce-golden", test_golden_reduce);
  g_test_add_func("/elementwise/precision", test_precision);
  g_test_add_func("/elementwise/determinism", test_determinism);
  g_test_add_func("/elementwise/edge-cases", test_edge_cases);
  return g_test_run();
}
