/* MA-GP through a small DF-GAN-like discriminator, against PyTorch's double backward (tools/reference/ref_conv.py):
 * D(x, s) = conv4x4( concat( lrelu(conv4x4/2( lrelu(conv3x3(x)) )), tile(s) ) ), one logit per sample;
 * P = 2 * mean_n ||concat(dD/dx_n, dD/ds_n)||_2^6 (DF-GAN lib/modules.py MA_GP; reference section 6.1), and dP/dtheta
 * through rat_grad(create_graph) then rat_grad / rat_backward. */
#include "config.h"

#include "testutil.h"

#define NPARAM 5
static const char *param_names[NPARAM] = {"conv1.weight", "conv1.bias", "conv2.weight", "conv3.weight", "conv3.bias"};

typedef struct {
  RatTensor *p[NPARAM]; /* w1 [16,3,3,3], b1 [16], w2 [32,16,4,4], w3 [1,40,4,4], b3 [1] */
  gboolean use_concat;  /* FALSE: the sentence enters as conv3's weight slice on the tiled sentence (same value) */
} Net;

/* x [B,3,8,8], s [B,8] -> logits [B] */
static RatTensor *net_d(const Net *net, RatTensor *x, RatTensor *s) {
  RatTensor *h = rat_leaky_relu(rat_conv2d(x, net->p[0], net->p[1], RAT_CONV_PARAMS(1, 1)), 0.2f);
  h = rat_leaky_relu(rat_conv2d(h, net->p[2], NULL, RAT_CONV_PARAMS(2, 1)), 0.2f); /* [B,32,4,4] */
  gint64 B = h->shape[0], C = h->shape[1], S = s->shape[1];
  RatTensor *st = rat_expand(rat_reshape(s, RAT_SHAPE(B, S, 1, 1)), RAT_SHAPE(B, S, h->shape[2], h->shape[3]));
  RatTensor *out;
  if (net->use_concat) {
    RatTensor *parts[2] = {h, st};
    out = rat_conv2d(rat_concat(parts, 2, 1), net->p[3], net->p[4], RAT_CONV_PARAMS(1, 0));
  } else {
    RatTensor *wh = rat_slice(net->p[3], 1, 0, C), *ws = rat_slice(net->p[3], 1, C, C + S);
    out = rat_add(rat_conv2d(h, wh, net->p[4], RAT_CONV_PARAMS(1, 0)), rat_conv2d(st, ws, NULL, RAT_CONV_PARAMS(1, 0)));
  }
  return rat_reshape(out, RAT_SHAPE(B));
}

/* Per-sample squared gradient norm [B], with create_graph so it can be differentiated again. */
static RatTensor *grad_norm_sq(const Net *net, RatTensor *x, RatTensor *s) {
  RatTensor *out = net_d(net, x, s);
  RatTensor *ones = rat_ones(rat_tensor_shape(out));
  RatTensor *in[2] = {x, s}, *g[2];
  GError *e = NULL;
  if (!rat_grad(&out, &ones, 1, in, 2, g, TRUE, &e)) g_error("MA-GP: %s", e->message);
  return rat_add(rat_sum(rat_square(g[0]), RAT_AXIS(1) | RAT_AXIS(2) | RAT_AXIS(3), FALSE),
                 rat_sum(rat_square(g[1]), RAT_AXIS(1), FALSE));
}

/* 2 * mean(||g||^6) = 2 * mean((||g||^2)^3) */
static RatTensor *penalty(const Net *net, RatTensor *x, RatTensor *s) {
  return rat_mul_scalar(rat_mean_all(rat_pow_scalar(grad_norm_sq(net, x, s), 3.0f)), 2.0f);
}

static void run(gboolean use_concat) {
  RatScope scope = rat_scope_push();
  RatFixture *f = rat_fixture_open("gradient_penalty");
  Net net = {.use_concat = use_concat};
  for (int i = 0; i < NPARAM; i++) net.p[i] = rat_test_leaf(rat_fixture_get(f, "c0.p.%s", param_names[i]));
  RatTensor *x = rat_test_leaf(rat_fixture_get(f, "c0.x")), *s = rat_test_leaf(rat_fixture_get(f, "c0.s"));
  const char *variant = use_concat ? "concat" : "split weight";

  RatTensor *out = net_d(&net, x, s);
  rat_assert_close(out, rat_fixture_get(f, "c0.out"), 1e-5, 1e-5, variant);
  RatTensor *nsq = grad_norm_sq(&net, x, s);
  rat_assert_close(rat_sqrt(nsq), rat_fixture_get(f, "c0.norm"), 1e-6, 1e-5, variant);
  RatTensor *P = penalty(&net, x, s);
  g_test_message("%s: penalty %.8g (torch %.8g)", variant, rat_tensor_item(P),
                 rat_tensor_item(rat_fixture_get(f, "c0.penalty")));
  rat_assert_close(rat_reshape(P, RAT_SHAPE(1)), rat_fixture_get(f, "c0.penalty"), 1e-6, 5e-5, variant);

  /* dP/dtheta with rat_grad */
  RatTensor *g[NPARAM];
  GError *e = NULL;
  g_assert_true(rat_grad(&P, NULL, 1, net.p, NPARAM, g, FALSE, &e));
  for (int i = 0; i < NPARAM; i++) {
    char *what = g_strdup_printf("%s: rat_grad dP/d%s", variant, param_names[i]);
    rat_assert_close(g[i], rat_fixture_get(f, "c0.g.%s", param_names[i]), 2e-5, 2e-4, what);
    g_free(what);
  }
  /* ... and accumulated into ->grad by rat_backward (a fresh graph) */
  RatTensor *P2 = penalty(&net, x, s);
  g_assert_true(rat_backward(P2, NULL, FALSE, &e));
  for (int i = 0; i < NPARAM; i++) {
    char *what = g_strdup_printf("%s: rat_backward dP/d%s", variant, param_names[i]);
    /* a parameter the penalty does not reach (biases only move LeakyReLU kinks) gets no ->grad: zero, as torch */
    RatTensor *got = net.p[i]->grad ? net.p[i]->grad : rat_zeros_like(net.p[i]);
    rat_assert_close(got, rat_fixture_get(f, "c0.g.%s", param_names[i]), 2e-5, 2e-4, what);
    g_free(what);
  }
  rat_fixture_close(f);
  rat_scope_pop(scope);
}

static void test_concat(void) { run(TRUE); }
static void test_split(void) { run(FALSE); }

/* Finite differences of the penalty itself w.r.t. the weights (the second-order term end to end). */
static RatTensor *fn_penalty(RatTensor *const *in, gpointer user) {
  Net net = {.use_concat = FALSE};
  for (int i = 0; i < NPARAM; i++) net.p[i] = in[i];
  /* the penalty differentiates w.r.t. x and s: fresh leaves each call (they are data, not checked here) */
  return penalty(&net, rat_test_leaf(in[NPARAM]), rat_test_leaf(in[NPARAM + 1]));
}

static void test_finite_differences(void) {
  RatScope scope = rat_scope_push();
  RatFixture *f = rat_fixture_open("gradient_penalty");
  RatTensor *in[NPARAM + 2];
  /* Only conv3 is probed: w1, b1, w2 move LeakyReLU kinks, and a probe that flips one unit makes the finite
   * difference meaningless; the penalty is a smooth polynomial in conv3's weights. */
  for (int i = 0; i < NPARAM; i++) {
    RatTensor *t = rat_fixture_get(f, "c0.p.%s", param_names[i]);
    in[i] = i >= 3 ? rat_test_leaf(t) : t;
  }
  in[NPARAM] = rat_fixture_get(f, "c0.x"); /* data: no gradient wanted */
  in[NPARAM + 1] = rat_fixture_get(f, "c0.s");
  int keep = rat_test_max_elems;
  rat_test_max_elems = 24;
  rat_gradcheck("MA-GP", fn_penalty, NULL, NPARAM + 2, in, 2e-3, 2e-3, 2e-2);
  rat_test_max_elems = keep;
  rat_fixture_close(f);
  rat_scope_pop(scope);
}

/* The library's MA-GP (core/gan/losses.c, used by train_gan) on the same network: value and dP/dtheta. */
static void test_library_ma_gp(void) {
  RatScope scope = rat_scope_push();
  RatFixture *f = rat_fixture_open("gradient_penalty");
  Net net = {.use_concat = TRUE};
  for (int i = 0; i < NPARAM; i++) net.p[i] = rat_test_leaf(rat_fixture_get(f, "c0.p.%s", param_names[i]));
  RatTensor *x = rat_test_leaf(rat_fixture_get(f, "c0.x")), *s = rat_test_leaf(rat_fixture_get(f, "c0.s"));
  RatTensor *P = rat_ma_gp(net_d(&net, x, s), x, s, 2.0, 6.0);
  rat_assert_close(rat_reshape(P, RAT_SHAPE(1)), rat_fixture_get(f, "c0.penalty"), 1e-6, 5e-5, "rat_ma_gp value");
  RatTensor *g[NPARAM];
  GError *e = NULL;
  g_assert_true(rat_grad(&P, NULL, 1, net.p, NPARAM, g, FALSE, &e));
  for (int i = 0; i < NPARAM; i++) {
    char *what = g_strdup_printf("rat_ma_gp dP/d%s", param_names[i]);
    rat_assert_close(g[i], rat_fixture_get(f, "c0.g.%s", param_names[i]), 2e-5, 2e-4, what);
    g_free(what);
  }
  /* k and p enter as k * mean(||g||^p): p = 2, k = 1 is the mean squared gradient norm */
  RatTensor *P2 = rat_ma_gp(net_d(&net, x, s), x, s, 1.0, 2.0);
  RatTensor *nsq = rat_square(rat_fixture_get(f, "c0.norm"));
  rat_assert_close(rat_reshape(P2, RAT_SHAPE(1)), rat_reshape(rat_mean_all(nsq), RAT_SHAPE(1)), 1e-6, 1e-5, "k=1 p=2");
  rat_fixture_close(f);
  rat_scope_pop(scope);
}

/* Hinge terms and the roll, against their definitions on hand-computed values. */
static void test_hinge_roll(void) {
  RatScope scope = rat_scope_push();
  float lv[4] = {-2.0f, 0.5f, 1.5f, 3.0f};
  RatTensor *l = rat_from_data(RAT_SHAPE(4), lv);
  /* real: relu(1 - l) = 3, 0.5, 0, 0 -> 0.875; fake: relu(1 + l) = 0, 1.5, 2.5, 4 -> 2.0; G: -mean(l) = -0.75 */
  g_assert_cmpfloat_with_epsilon(rat_tensor_item(rat_hinge_d(l, TRUE)), 0.875, 1e-6);
  g_assert_cmpfloat_with_epsilon(rat_tensor_item(rat_hinge_d(l, FALSE)), 2.0, 1e-6);
  g_assert_cmpfloat_with_epsilon(rat_tensor_item(rat_hinge_g(l)), -0.75, 1e-6);
  float xv[6] = {0, 1, 10, 11, 20, 21};
  RatTensor *r = rat_contiguous(rat_roll_batch(rat_from_data(RAT_SHAPE(3, 2), xv)));
  const float want[6] = {10, 11, 20, 21, 0, 1}; /* torch.cat((x[1:], x[0:1])) */
  for (int i = 0; i < 6; i++) g_assert_cmpfloat(rat_tensor_data(r)[i], ==, want[i]);
  float av[4] = {1, 0, 0, 2}, bv[4] = {1, 1, 0, -3};
  /* cos([1,0],[1,1]) = 0.70710678, cos([0,2],[0,-3]) = -1 */
  RatTensor *c = rat_mean_cosine(rat_from_data(RAT_SHAPE(2, 2), av), rat_from_data(RAT_SHAPE(2, 2), bv));
  g_assert_cmpfloat_with_epsilon(rat_tensor_item(c), (0.70710678 - 1.0) / 2, 1e-6);
  rat_scope_pop(scope);
}

int main(int argc, char **argv) {
  rat_test_init(&argc, &argv);
  g_test_add_func("/gradient-penalty/ma-gp-concat", test_concat);
  g_test_add_func("/gradient-penalty/ma-gp-split-weight", test_split);
  g_test_add_func("/gradient-penalty/finite-differences", test_finite_differences);
  g_test_add_func("/gradient-penalty/library-ma-gp", test_library_ma_gp);
  g_test_add_func("/gradient-penalty/hinge-roll-cosine", test_hinge_roll);
  return g_test_run();
}
