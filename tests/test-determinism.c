/* Bit-reproducible training: a 2-layer MLP (linear layers written with broadcasting multiply + sum, so the test
 * depends only on core elementwise/reduction ops) initialised from a seeded RatRng and trained 20 steps with
 * Adam gives identical parameters when run twice, at 1 thread and at 2 threads, and across thread counts. */
#include "config.h"

#include "testutil.h"

#include <math.h>

enum { B = 64, IN = 32, HID = 48, OUT = 8, STEPS = 20 };

/* x [B, In], w [Out, In], b [Out] -> [B, Out]: sum_i x[b,1,i] * w[1,o,i] + b */
static RatTensor *dense(RatTensor *x, RatTensor *w, RatTensor *b) {
  return rat_add(rat_sum(rat_mul(rat_unsqueeze(x, 1), w), RAT_AXIS(2), FALSE), b);
}

typedef struct {
  float *params;
  gint64 n;
  float first_loss, last_loss;
} Run;

static Run train(int threads) {
  rat_set_num_threads(threads);
  RatScope s = rat_scope_push();
  RatRng rng;
  rat_rng_init(&rng, 20240501);
  RatParams *p = rat_params_new();
  RatTensor *w1 = rat_params_add(p, "fc1.weight", RAT_SHAPE(HID, IN), RAT_PARAM_TRAINABLE);
  RatTensor *b1 = rat_params_add(p, "fc1.bias", RAT_SHAPE(HID), RAT_PARAM_TRAINABLE);
  RatTensor *w2 = rat_params_add(p, "fc2.weight", RAT_SHAPE(OUT, HID), RAT_PARAM_TRAINABLE);
  RatTensor *b2 = rat_params_add(p, "fc2.bias", RAT_SHAPE(OUT), RAT_PARAM_TRAINABLE);
  rat_init_torch_default_(&rng, w1, b1);
  rat_init_torch_default_(&rng, w2, b2);
  rat_params_finalize(p);
  RatOptim *opt = rat_adam_new(p, 1e-2f, 0.0f, 0.9f, 1e-8f, 0.0f);
  RatTensor *x = rat_randn(&rng, RAT_SHAPE(B, IN));
  RatTensor *target = rat_empty(RAT_SHAPE(B, OUT));
  rat_rng_truncated_normal_(&rng, target, 2.0f);
  Run r = {0};
  for (int step = 0; step < STEPS; step++) {
    RatScope ss = rat_scope_push();
    rat_optim_zero_grad(opt);
    /* a fresh noise draw each step, as a GAN's z */
    RatTensor *noise = rat_mul_scalar(rat_randn(&rng, RAT_SHAPE(B, IN)), 0.1f);
    RatTensor *h = rat_leaky_relu(dense(rat_add(x, noise), w1, b1), 0.2f);
    RatTensor *y = dense(h, w2, b2);
    RatTensor *loss = rat_mean_all(rat_square(rat_sub(y, target)));
    GError *e = NULL;
    g_assert_true(rat_backward(loss, NULL, FALSE, &e));
    rat_optim_step(opt);
    float l = rat_tensor_item(loss);
    if (step == 0) r.first_loss = l;
    r.last_loss = l;
    rat_scope_pop(ss);
  }
  r.n = rat_params_numel(p, RAT_PARAM_TRAINABLE);
  r.params = g_new(float, r.n);
  rat_tensor_read(rat_params_flat(p), r.params);
  rat_optim_free(opt);
  rat_params_free(p);
  rat_scope_pop(s);
  return r;
}

static void test_determinism(void) {
  int prev = rat_get_num_threads();
  Run a1 = train(1), b1 = train(1), a2 = train(2), b2 = train(2);
  rat_set_num_threads(prev);
  g_assert_cmpint(a1.n, ==, HID * IN + HID + OUT * HID + OUT);
  g_assert_cmpfloat(a1.last_loss, <, 0.8 * a1.first_loss); /* it trains */
  g_assert_cmpmem(a1.params, a1.n * 4, b1.params, b1.n * 4);
  g_assert_cmpmem(a2.params, a2.n * 4, b2.params, b2.n * 4);
  g_assert_cmpmem(a1.params, a1.n * 4, a2.params, a2.n * 4);
  g_assert_cmpfloat(a1.last_loss, ==, a2.last_loss);
  g_test_message("loss %.6f -> %.6f over %d steps", a1.first_loss, a1.last_loss, STEPS);
  g_free(a1.params);
  g_free(b1.params);
  g_free(a2.params);
  g_free(b2.params);
}

int main(int argc, char **argv) {
  rat_test_init(&argc, &argv);
  g_test_add_func("/determinism/mlp-adam", test_determinism);
  return g_test_run();
}
