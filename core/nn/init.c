/* Weight initialisers with PyTorch 1.13 semantics (torch/nn/init.py; defaults of nn.Conv2d, nn.Linear and
 * nn.LSTM reset_parameters), drawing from the counter-based RatRng. See reference §2.10: conv/linear weights
 * kaiming_uniform(a = sqrt(5)) = U(+-1/sqrt(fan_in)), biases U(+-1/sqrt(fan_in)), LSTM U(+-1/sqrt(H)). */
#include "config.h"

#include "ratfw-private.h"
#include <ratfw/nn.h>

#include <math.h>

void rat_init_fans(RatShape s, gint64 *fan_in, gint64 *fan_out) {
  rat_check(s.ndim >= 2, "ratfw: fan in/out needs a weight with at least 2 dims, got %d", s.ndim);
  gint64 receptive = 1;
  for (int i = 2; i < s.ndim; i++) receptive *= s.d[i];
  if (fan_in) *fan_in = s.d[1] * receptive;
  if (fan_out) *fan_out = s.d[0] * receptive;
}

void rat_init_uniform_(RatRng *rng, RatTensor *t, float lo, float hi) { rat_rng_fill_uniform_(rng, t, lo, hi); }

void rat_init_normal_(RatRng *rng, RatTensor *t, float mean, float std) { rat_rng_fill_normal_(rng, t, mean, std); }

void rat_init_constant_(RatTensor *t, float value) { rat_tensor_fill_(t, value); }

void rat_init_kaiming_uniform_(RatRng *rng, RatTensor *t, double a) {
  gint64 fan_in;
  rat_init_fans(rat_tensor_shape(t), &fan_in, NULL);
  rat_check(fan_in > 0, "ratfw: kaiming init of a tensor with zero fan_in");
  double gain = sqrt(2.0 / (1.0 + a * a));
  double bound = sqrt(3.0) * gain / sqrt((double)fan_in);
  rat_rng_fill_uniform_(rng, t, (float)-bound, (float)bound);
}

void rat_init_xavier_uniform_(RatRng *rng, RatTensor *t, double gain) {
  gint64 fan_in, fan_out;
  rat_init_fans(rat_tensor_shape(t), &fan_in, &fan_out);
  double bound = gain * sqrt(6.0 / (double)(fan_in + fan_out));
  rat_rng_fill_uniform_(rng, t, (float)-bound, (float)bound);
}

void rat_init_torch_default_(RatRng *rng, RatTensor *weight, RatTensor *bias) {
  rat_init_kaiming_uniform_(rng, weight, sqrt(5.0));
  if (!bias) return;
  gint64 fan_in;
  rat_init_fans(rat_tensor_shape(weight), &fan_in, NULL);
  float bound = fan_in > 0 ? (float)(1.0 / sqrt((double)fan_in)) : 0.0f;
  rat_rng_fill_uniform_(rng, bias, -bound, bound);
}

void rat_init_lstm_(RatRng *rng, RatTensor *t, gint64 hidden) {
  rat_check(hidden > 0, "ratfw: LSTM init with hidden size %" G_GINT64_FORMAT, hidden);
  float bound = (float)(1.0 / sqrt((double)hidden));
  rat_rng_fill_uniform_(rng, t, -bound, bound);
}
