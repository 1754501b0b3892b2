/* Autograd engine and elementwise ops: finite-difference checks of first and second order, broadcasting,
 * gradients w.r.t. non-leaf tensors, accumulation into leaves, scopes. */
#include "config.h"

#include "testutil.h"

#include <math.h>

typedef RatTensor *(*Unary)(RatTensor *);
typedef RatTensor *(*Binary)(RatTensor *, RatTensor *);

static RatTensor *call_unary(RatTensor *const *in, gpointer user) { return ((Unary)user)(in[0]); }
static RatTensor *call_binary(RatTensor *const *in, gpointer user) { return ((Binary)user)(in[0], in[1]); }
static RatTensor *call_lrelu(RatTensor *const *in, gpointer user) { return rat_leaky_relu(in[0], 0.2f); }
static RatTensor *call_pow(RatTensor *const *in, gpointer user) { return rat_pow_scalar(in[0], 3.0f); }
static RatTensor *call_clamp(RatTensor *const *in, gpointer user) { return rat_clamp(in[0], -0.5f, 0.5f); }
static RatTensor *call_sum1(RatTensor *const *in, gpointer user) { return rat_sum(in[0], RAT_AXIS(1), FALSE); }
static RatTensor *call_mean02(RatTensor *const *in, gpointer user) { return rat_mean(in[0], RAT_AXIS(0) | RAT_AXIS(2), TRUE); }

static void test_unary(void) {
  static const struct {
    const char *name;
    Unary f;
    float lo, hi;
  } cases[] = {
      {"exp", rat_exp, -1, 1},         {"log", rat_log, 0.5f, 2},     {"sqrt", rat_sqrt, 0.5f, 2},
      {"rsqrt", rat_rsqrt, 0.5f, 2},   {"tanh", rat_tanh, -1, 1},     {"sigmoid", rat_sigmoid, -2, 2},
      {"quick_gelu", rat_quick_gelu, -2, 2}, {"square", rat_square, -1, 1}, {"neg", rat_neg, -1, 1},
  };
  for (guint i = 0; i < G_N_ELEMENTS(cases); i++) {
    RatScope s = rat_scope_push();
    RatTensor *x = rat_test_leaf(rat_test_uniform(RAT_SHAPE(3, 4), cases[i].lo, cases[i].hi, 10 + i));
    rat_gradcheck(cases[i].name, call_unary, (gpointer)cases[i].f, 1, &x, 1e-3, 2e-3, 2e-2);
    rat_gradgradcheck(cases[i].name, call_unary, (gpointer)cases[i].f, 1, &x, 1e-3, 3e-3, 3e-2);
    rat_scope_pop(s);
  }
  RatScope s = rat_scope_push();
  /* kinks kept away from the probes: values in (0.1, 1) with either sign */
  RatTensor *x = rat_test_uniform(RAT_SHAPE(4, 5), 0.1f, 1, 3);
  float *p = rat_tensor_data(x);
  for (int i = 0; i < 20; i += 2) p[i] = -p[i];
  x = rat_test_leaf(x);
  rat_gradcheck("leaky_relu", call_lrelu, NULL, 1, &x, 1e-3, 1e-3, 1e-2);
  rat_gradgradcheck("leaky_relu", call_lrelu, NULL, 1, &x, 1e-3, 1e-3, 1e-2);
  rat_gradcheck("relu", call_unary, (gpointer)rat_relu, 1, &x, 1e-3, 1e-3, 1e-2);
  rat_gradcheck("abs", call_unary, (gpointer)rat_abs, 1, &x, 1e-3, 1e-3, 1e-2);
  rat_gradcheck("pow3", call_pow, NULL, 1, &x, 1e-3, 2e-3, 2e-2);
  rat_gradgradcheck("pow3", call_pow, NULL, 1, &x, 1e-3, 3e-3, 3e-2);
  rat_gradcheck("clamp", call_clamp, NULL, 1, &x, 1e-3, 1e-3, 1e-2);
  rat_scope_pop(s);
}

static void test_binary_broadcast(void) {
  static const struct {
    const char *name;
    Binary f;
  } cases[] = {{"add", rat_add}, {"sub", rat_sub}, {"mul", rat_mul}, {"div", rat_div}};
  for (guint i = 0; i < G_N_ELEMENTS(cases); i++) {
    RatScope s = rat_scope_push();
    RatTensor *in[2] = {rat_test_leaf(rat_test_uniform(RAT_SHAPE(2, 3, 4), 0.5f, 1.5f, 20 + i)),
                        rat_test_leaf(rat_test_uniform(RAT_SHAPE(3, 1), 0.5f, 1.5f, 30 + i))};
    rat_gradcheck(cases[i].name, call_binary, (gpointer)cases[i].f, 2, in, 1e-3, 2e-3, 2e-2);
    rat_gradgradcheck(cases[i].name, call_binary, (gpointer)cases[i].f, 2, in, 1e-3, 3e-3, 3e-2);
    rat_scope_pop(s);
  }
}

static void test_reductions(void) {
  RatScope s = rat_scope_push();
  RatTensor *x = rat_test_leaf(rat_test_randn(RAT_SHAPE(3, 4, 5), 5));
  rat_gradcheck("sum axis 1", call_sum1, NULL, 1, &x, 1e-3, 2e-3, 2e-2);
  rat_gradcheck("mean axes 0,2", call_mean02, NULL, 1, &x, 1e-3, 2e-3, 2e-2);
  /* values: sum over axis 1 */
  RatTensor *y = rat_sum(x, RAT_AXIS(1), FALSE);
  float in[60], out[15];
  rat_tensor_read(x, in);
  rat_tensor_read(y, out);
  for (int a = 0; a < 3; a++)
    for (int c = 0; c < 5; c++) {
      double ref = 0;
      for (int b = 0; b < 4; b++) ref += in[a * 20 + b * 5 + c];
      g_assert_cmpfloat_with_epsilon(out[a * 5 + c], ref, 1e-5);
    }
  /* channels-last input: per-channel sum takes the vector path */
  RatTensor *nhwc = rat_empty_nhwc(RAT_SHAPE(2, 3, 4, 5));
  RatTensor *ref4 = rat_test_randn(RAT_SHAPE(2, 3, 4, 5), 6);
  rat_tensor_copy_(nhwc, ref4);
  RatTensor *s1 = rat_sum(nhwc, RAT_AXIS(0) | RAT_AXIS(2) | RAT_AXIS(3), FALSE);
  RatTensor *s2 = rat_sum(ref4, RAT_AXIS(0) | RAT_AXIS(2) | RAT_AXIS(3), FALSE);
  rat_assert_close(s1, s2, 1e-5, 1e-5, "per-channel sum, NHWC vs NCHW");
  rat_scope_pop(s);
}

/* d/dh of a function of a non-leaf h; and gradients accumulate into leaves over two backward calls. */
static void test_engine(void) {
  RatScope s = rat_scope_push();
  RatTensor *x = rat_test_leaf(rat_test_randn(RAT_SHAPE(4), 1));
  RatTensor *h = rat_mul_scalar(x, 3.0f);
  RatTensor *y = rat_sum_all(rat_square(h));
  RatTensor *g;
  GError *e = NULL;
  g_assert_true(rat_grad(&y, NULL, 1, &h, 1, &g, FALSE, &e));
  float hv[4], gv[4], xv[4];
  rat_tensor_read(h, hv);
  rat_tensor_read(g, gv);
  for (int i = 0; i < 4; i++) g_assert_cmpfloat_with_epsilon(gv[i], 2 * hv[i], 1e-5);

  g_assert_true(rat_backward(y, NULL, FALSE, &e));
  g_assert_true(rat_backward(rat_sum_all(rat_square(rat_mul_scalar(x, 3.0f))), NULL, FALSE, &e));
  rat_tensor_read(x, xv);
  rat_tensor_read(x->grad, gv);
  for (int i = 0; i < 4; i++) g_assert_cmpfloat_with_epsilon(gv[i], 2 * 18 * xv[i], 1e-4);

  /* errors: no gradient path, implied gradient on a vector */
  RatTensor *c = rat_ones(RAT_SHAPE(2));
  g_assert_false(rat_backward(c, NULL, FALSE, &e));
  g_assert_error(e, RAT_ERROR, RAT_ERROR_AUTOGRAD);
  g_clear_error(&e);
  g_assert_false(rat_backward(rat_mul_scalar(x, 2.0f), NULL, FALSE, &e));
  g_assert_error(e, RAT_ERROR, RAT_ERROR_AUTOGRAD);
  g_clear_error(&e);

  /* the gradient of an unused leaf w.r.t. itself is the output gradient (rat_reshape to the same shape returns
   * its input: the root is then the leaf itself) */
  RatTensor *fresh = rat_test_leaf(rat_test_randn(RAT_SHAPE(3), 2));
  RatTensor *same = rat_reshape(fresh, RAT_SHAPE(3));
  RatTensor *go = rat_from_data(RAT_SHAPE(3), (float[]){1, 2, 3}), *gf;
  g_assert_true(same == fresh);
  g_assert_true(rat_grad(&same, &go, 1, &fresh, 1, &gf, FALSE, &e));
  rat_assert_close(gf, go, 0, 0, "d leaf / d leaf");

  /* no-grad mode records nothing */
  RAT_NO_GRAD_BEGIN
  g_assert_null(rat_mul(x, x)->grad_fn);
  RAT_NO_GRAD_END
  rat_scope_pop(s);
}

/* MA-GP shaped use: penalty on the norm of an input gradient, differentiated into a weight. */
static RatTensor *penalty(RatTensor *const *in, gpointer user) {
  RatTensor *x = in[0], *w = in[1];
  RatTensor *d = rat_sum_all(rat_leaky_relu(rat_mul(x, w), 0.2f));
  RatTensor *gx;
  GError *e = NULL;
  g_assert_true(rat_grad(&d, NULL, 1, &x, 1, &gx, TRUE, &e));
  RatTensor *n2 = rat_sum_all(rat_square(gx));
  return rat_pow_scalar(rat_sqrt(n2), 6.0f);
}

static void test_double_backward(void) {
  RatScope s = rat_scope_push();
  RatTensor *x = rat_test_uniform(RAT_SHAPE(6), 0.2f, 1, 9);
  float *p = rat_tensor_data(x);
  p[1] = -p[1];
  p[4] = -p[4];
  RatTensor *in[2] = {rat_test_leaf(x), rat_test_leaf(rat_test_uniform(RAT_SHAPE(6), 0.3f, 0.8f, 10))};
  rat_gradcheck("gradient penalty", penalty, NULL, 2, in, 1e-3, 5e-3, 3e-2);
  rat_scope_pop(s);
}

static void test_scopes(void) {
  guint before = rat_scope_size();
  RatScope s = rat_scope_push();
  RatTensor *a = rat_ones(RAT_SHAPE(3));
  RatTensor *b = rat_add(a, a);
  g_assert_cmpuint(rat_scope_size(), >, before);
  RatTensor *kept = rat_scope_pop_keep(s, b);
  g_assert_cmpuint(rat_scope_size(), ==, before + 1);
  g_assert_cmpfloat(rat_tensor_data(kept)[2], ==, 2.0f);
}

int main(int argc, char **argv) {
  rat_test_init(&argc, &argv);
  g_test_add_func("/autograd/unary", test_unary);
  g_test_add_func("/autograd/binary-broadcast", test_binary_broadcast);
  g_test_add_func("/autograd/reductions", test_reductions);
  g_test_add_func("/autograd/engine", test_engine);
  g_test_add_func("/autograd/double-backward", test_double_backward);
  g_test_add_func("/autograd/scopes", test_scopes);
  return g_test_run();
}
