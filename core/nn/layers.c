/* Parameter-holding layers shared by all models; see layers.h. Initialisation follows PyTorch 1.13's
 * reset_parameters() for each torch.nn class named in the comments (reference §2.10). */
#include "config.h"

#include "ratfw-private.h"
#include <ratfw/layers.h>

#include <math.h>

static char *join(const char *a, const char *b) { return g_strdup_printf("%s.%s", a, b); }

void rat_linear_layer_init(RatLinear *l, RatModule *m, const RatBuildContext *ctx, const char *name, gint64 in,
                           gint64 out, gboolean bias) {
  char *wn = join(name, "weight"), *bn = join(name, "bias");
  l->weight = rat_module_param(m, ctx, wn, RAT_SHAPE(out, in));
  l->bias = bias ? rat_module_param(m, ctx, bn, RAT_SHAPE(out)) : NULL;
  rat_init_torch_default_(ctx->rng, l->weight, l->bias);
  g_free(wn);
  g_free(bn);
}

RatTensor *rat_linear_layer(const RatLinear *l, RatTensor *x) { return rat_linear(x, l->weight, l->bias); }

void rat_conv_layer_init(RatConv *c, RatModule *m, const RatBuildContext *ctx, const char *name, gint64 cin,
                         gint64 cout, int k, int stride, int padding, gboolean bias) {
  char *wn = join(name, "weight"), *bn = join(name, "bias");
  c->weight = rat_module_param(m, ctx, wn, RAT_SHAPE(cout, cin, k, k));
  c->bias = bias ? rat_module_param(m, ctx, bn, RAT_SHAPE(cout)) : NULL;
  c->p = RAT_CONV_PARAMS(stride, padding);
  rat_init_torch_default_(ctx->rng, c->weight, c->bias);
  g_free(wn);
  g_free(bn);
}

RatTensor *rat_conv_layer(const RatConv *c, RatTensor *x) { return rat_conv2d(x, c->weight, c->bias, c->p); }

void rat_mlp2_init(RatMlp2 *mlp, RatModule *m, const RatBuildContext *ctx, const char *name, gint64 in, gint64 hidden,
                   gint64 out, float fc2_weight, float fc2_bias) {
  char *n1 = join(name, "fc1"), *n2 = join(name, "fc2");
  rat_linear_layer_init(&mlp->fc1, m, ctx, n1, in, hidden, TRUE);
  rat_linear_layer_init(&mlp->fc2, m, ctx, n2, hidden, out, TRUE);
  rat_init_constant_(mlp->fc2.weight, fc2_weight);
  rat_init_constant_(mlp->fc2.bias, fc2_bias);
  g_free(n1);
  g_free(n2);
}

RatTensor *rat_mlp2(const RatMlp2 *mlp, RatTensor *x) {
  return rat_linear_layer(&mlp->fc2, rat_relu(rat_linear_layer(&mlp->fc1, x)));
}

void rat_lstm_layer_init(RatLstmCell *c, RatModule *m, const RatBuildContext *ctx, const char *name, gint64 in,
                         gint64 hidden) {
  static const char *const parts[4] = {"weight_ih", "weight_hh", "bias_ih", "bias_hh"};
  RatShape shapes[4] = {RAT_SHAPE(4 * hidden, in), RAT_SHAPE(4 * hidden, hidden), RAT_SHAPE(4 * hidden),
                        RAT_SHAPE(4 * hidden)};
  RatTensor **dst[4] = {&c->weight_ih, &c->weight_hh, &c->bias_ih, &c->bias_hh};
  for (int i = 0; i < 4; i++) {
    char *n = join(name, parts[i]);
    *dst[i] = rat_module_param(m, ctx, n, shapes[i]);
    rat_init_lstm_(ctx->rng, *dst[i], hidden);
    g_free(n);
  }
  c->hidden = hidden;
}

void rat_lstm_layer_step(const RatLstmCell *c, RatTensor *x, RatTensor *h, RatTensor *cs, RatTensor **h_out,
                         RatTensor **c_out) {
  rat_lstm_cell(x, h, cs, c->weight_ih, c->weight_hh, c->bias_ih, c->bias_hh, h_out, c_out);
}

void rat_batch_norm_layer_init(RatBatchNormLayer *bn, RatModule *m, const RatBuildContext *ctx, const char *name,
                               gint64 channels, gboolean affine) {
  char *wn = join(name, "weight"), *bn_ = join(name, "bias"), *mn = join(name, "running_mean"),
       *vn = join(name, "running_var");
  bn->weight = affine ? rat_module_param(m, ctx, wn, RAT_SHAPE(channels)) : NULL;
  bn->bias = affine ? rat_module_param(m, ctx, bn_, RAT_SHAPE(channels)) : NULL;
  if (affine) rat_init_constant_(bn->weight, 1.0f);
  bn->running_mean = rat_module_buffer(m, ctx, mn, RAT_SHAPE(channels));
  bn->running_var = rat_module_buffer(m, ctx, vn, RAT_SHAPE(channels));
  rat_init_constant_(bn->running_var, 1.0f);
  bn->momentum = 0.1f;
  bn->eps = 1e-5f;
  g_free(wn);
  g_free(bn_);
  g_free(mn);
  g_free(vn);
}

RatTensor *rat_batch_norm_layer(const RatBatchNormLayer *bn, RatTensor *x, gboolean training) {
  return rat_batch_norm(x, bn->running_mean, bn->running_var, bn->weight, bn->bias, training, bn->momentum, bn->eps);
}

RatTensor *rat_modulate(RatTensor *x, RatTensor *gamma, RatTensor *beta) {
  rat_check(x->ndim == 4 && gamma->ndim == 2 && beta->ndim == 2, "ratfw: rat_modulate needs x [B,C,H,W], gamma/beta [B,C]");
  RatShape gs = RAT_SHAPE(gamma->shape[0], gamma->shape[1], 1, 1);
  RatShape bs = RAT_SHAPE(beta->shape[0], beta->shape[1], 1, 1);
  return rat_add(rat_mul(x, rat_reshape(gamma, gs)), rat_reshape(beta, bs));
}

void rat_affine_pair_init(RatAffinePair *p, RatModule *m, const RatBuildContext *ctx, gint64 in, gint64 hidden,
                          gint64 channels) {
  rat_mlp2_init(&p->gamma, m, ctx, "gamma", in, hidden, channels, 0.0f, 1.0f);
  rat_mlp2_init(&p->beta, m, ctx, "beta", in, hidden, channels, 0.0f, 0.0f);
}

RatTensor *rat_affine_pair_apply(const RatAffinePair *p, RatTensor *x, RatTensor *u) {
  return rat_modulate(x, rat_mlp2(&p->gamma, u), rat_mlp2(&p->beta, u));
}
