/* ratfw layers: parameter-holding building blocks shared by every model (linear, conv, two-layer MLP,
 * LSTM cell, batch norm). Each is a plain struct of parameter pointers created inside a module's build()
 * (names are relative to the module path) with PyTorch 1.13's default initialisation (reference §2.10). */
#pragma once

#include <ratfw/module.h>
#include <ratfw/ops.h>

G_BEGIN_DECLS

typedef struct {
  RatTensor *weight; /* [Out, In] */
  RatTensor *bias;   /* [Out] or NULL */
} RatLinear;

/* nn.Linear(in, out, bias): weight and bias U(+-1/sqrt(in)). */
void rat_linear_layer_init(RatLinear *l, RatModule *m, const RatBuildContext *ctx, const char *name, gint64 in,
                           gint64 out, gboolean bias);
RatTensor *rat_linear_layer(const RatLinear *l, RatTensor *x); /* [..., In] -> [..., Out] */

typedef struct {
  RatTensor *weight; /* [Cout, Cin/groups, KH, KW] */
  RatTensor *bias;   /* [Cout] or NULL */
  RatConvParams p;
} RatConv;

/* nn.Conv2d(cin, cout, k, stride, padding, bias). */
void rat_conv_layer_init(RatConv *c, RatModule *m, const RatBuildContext *ctx, const char *name, gint64 cin,
                         gint64 cout, int k, int stride, int padding, gboolean bias);
RatTensor *rat_conv_layer(const RatConv *c, RatTensor *x);

/* Linear(in -> hidden) -> ReLU -> Linear(hidden -> out), the gamma/beta MLPs of DF-GAN's affine (reference §2.6).
 * fc1 uses the default init; fc2's weight is set to @fc2_weight and its bias to @fc2_bias (DF-GAN: 0 and 1 for
 * gamma, 0 and 0 for beta). */
typedef struct {
  RatLinear fc1, fc2;
} RatMlp2;
void rat_mlp2_init(RatMlp2 *mlp, RatModule *m, const RatBuildContext *ctx, const char *name, gint64 in, gint64 hidden,
                   gint64 out, float fc2_weight, float fc2_bias);
RatTensor *rat_mlp2(const RatMlp2 *mlp, RatTensor *x);

/* LSTM cell (PyTorch gate order i, f, g, o), parameters weight_ih [4H,In], weight_hh [4H,H], bias_ih, bias_hh,
 * all U(+-1/sqrt(H)). */
typedef struct {
  RatTensor *weight_ih, *weight_hh, *bias_ih, *bias_hh;
  gint64 hidden;
} RatLstmCell;
void rat_lstm_layer_init(RatLstmCell *c, RatModule *m, const RatBuildContext *ctx, const char *name, gint64 in,
                         gint64 hidden);
void rat_lstm_layer_step(const RatLstmCell *c, RatTensor *x, RatTensor *h, RatTensor *cs, RatTensor **h_out,
                         RatTensor **c_out);

/* BatchNorm2d(C): optional affine weight 1 / bias 0, running mean 0 / var 1 buffers, momentum 0.1, eps 1e-5. */
typedef struct {
  RatTensor *weight, *bias, *running_mean, *running_var;
  float momentum, eps;
} RatBatchNormLayer;
void rat_batch_norm_layer_init(RatBatchNormLayer *bn, RatModule *m, const RatBuildContext *ctx, const char *name,
                               gint64 channels, gboolean affine);
RatTensor *rat_batch_norm_layer(const RatBatchNormLayer *bn, RatTensor *x, gboolean training);

/* y[b,c,h,w] = gamma[b,c] * x[b,c,h,w] + beta[b,c] (gamma/beta [B,C] or [1,C], broadcast over the batch). */
RatTensor *rat_modulate(RatTensor *x, RatTensor *gamma, RatTensor *beta);

G_END_DECLS

G_BEGIN_DECLS
/* The gamma/beta MLP pair of every affine-style conditioner: gamma = MLP_g(u), beta = MLP_b(u), with the last
 * layer of gamma starting at weight 0 / bias 1 and of beta at 0 / 0 (so the block starts as the identity). */
typedef struct {
  RatMlp2 gamma, beta;
} RatAffinePair;
void rat_affine_pair_init(RatAffinePair *p, RatModule *m, const RatBuildContext *ctx, gint64 in, gint64 hidden,
                          gint64 channels);
/* y = gamma(u) * x + beta(u); u [B,In] or [1,In] (then shared by the whole batch). */
RatTensor *rat_affine_pair_apply(const RatAffinePair *p, RatTensor *x, RatTensor *u);
G_END_DECLS
