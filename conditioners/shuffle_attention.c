/* shuffle_attention and conv_shuffle: the attention RATLIP inserts between RAT blocks (reference §2.7-2.8).
 * shuffle_attention (SA-Net, fightingcv ShuffleAttention), G groups, m = C/(2G), on x [B,C,H,W]:
 *   split into B*G groups of C/G channels; x0, x1 = first and last m channels of each group;
 *   x0' = x0 * sigmoid(cweight * mean_HW(x0) + cbias)            (channel branch)
 *   x1' = x1 * sigmoid(sweight * GroupNorm_m(x1) + sbias)        (spatial branch, per-channel GN)
 *   concat, back to [B,C,H,W], then a 2-group channel shuffle: out[2j + r] = in[r*C/2 + j].
 *   cweight, sweight start at 0, cbias, sbias at 1, GN weight 1 / bias 0.
 * conv_shuffle (RATLIP Conv_shuffle, RATLIP.py:553-565): y = SA(LeakyReLU_0.01(BN(Conv_kxk(x; no bias)))). */
#include <ratfw/layers.h>
#include <ratfw/ratfw.h>

/* ---- shuffle attention ------------------------------------------------------------------------------------ */

typedef struct {
  gint64 groups;
} SaOptions;

typedef struct {
  gint64 groups, m;
  RatTensor *cweight, *cbias, *sweight, *sbias, *gn_weight, *gn_bias;
} SaPriv;

static const RatArgSpec sa_args[] = {
    RAT_ARG_I(SaOptions, groups, "8", 1, 4096, "number of groups G; channels must be divisible by 2*G"),
};

static gboolean sa_check(const RatModuleType *type, const void *options, const RatBuildContext *ctx, GError **error) {
  const SaOptions *o = options;
  gint64 C = ctx->out_channels > 0 ? ctx->out_channels : ctx->channels;
  if (C > 0 && C % (2 * o->groups) != 0) {
    g_set_error(error, RAT_ERROR, RAT_ERROR_CONFIG,
                "shuffle attention needs channels divisible by 2*groups, but channels = %" G_GINT64_FORMAT
                " and groups = %" G_GINT64_FORMAT "; choose groups dividing %" G_GINT64_FORMAT,
                C, o->groups, C / 2);
    return FALSE;
  }
  return TRUE;
}

static void sa_init(SaPriv *p, RatModule *m, const RatBuildContext *ctx, const char *prefix, gint64 C, gint64 G) {
  p->groups = G;
  p->m = C / (2 * G);
  const char *names[6] = {"cweight", "cbias", "sweight", "sbias", "gn.weight", "gn.bias"};
  const float init[6] = {0, 1, 0, 1, 1, 0};
  RatTensor **dst[6] = {&p->cweight, &p->cbias, &p->sweight, &p->sbias, &p->gn_weight, &p->gn_bias};
  for (int i = 0; i < 6; i++) {
    char *n = g_strdup_printf("%s%s", prefix, names[i]);
    *dst[i] = rat_module_param(m, ctx, n, RAT_SHAPE(p->m));
    rat_init_constant_(*dst[i], init[i]);
    g_free(n);
  }
}

static RatTensor *sa_apply(const SaPriv *p, RatTensor *x) {
  gint64 B = x->shape[0], C = x->shape[1], H = x->shape[2], W = x->shape[3], G = p->groups, m = p->m;
  rat_check(C == 2 * G * m, "ratfw: shuffle attention built for %" G_GINT64_FORMAT " channels got %" G_GINT64_FORMAT,
            2 * G * m, C);
  RatTensor *y = rat_reshape(x, RAT_SHAPE(B * G, C / G, H, W));
  RatTensor *x0 = rat_slice(y, 1, 0, m), *x1 = rat_slice(y, 1, m, 2 * m);
  RatShape ps = RAT_SHAPE(1, m, 1, 1);
  RatTensor *a = rat_mean(x0, RAT_AXIS(2) | RAT_AXIS(3), TRUE);
  RatTensor *gate0 = rat_sigmoid(rat_add(rat_mul(rat_reshape(p->cweight, ps), a), rat_reshape(p->cbias, ps)));
  RatTensor *y0 = rat_mul(x0, gate0);
  RatTensor *n = rat_group_norm(x1, (int)m, p->gn_weight, p->gn_bias, 1e-5f);
  RatTensor *gate1 = rat_sigmoid(rat_add(rat_mul(rat_reshape(p->sweight, ps), n), rat_reshape(p->sbias, ps)));
  RatTensor *y1 = rat_mul(x1, gate1);
  RatTensor *parts[2] = {y0, y1};
  RatTensor *cat = rat_reshape(rat_concat(parts, 2, 1), RAT_SHAPE(B, C, H, W));
  /* channel shuffle, 2 groups: [B, 2, C/2, H, W] -> swap axes 1, 2 -> [B, C, H, W] */
  RatTensor *s = rat_transpose(rat_reshape(cat, RAT_SHAPE(B, 2, C / 2, H, W)), 1, 2);
  return rat_reshape(s, RAT_SHAPE(B, C, H, W));
}

static gboolean sa_build(RatModule *m, const RatBuildContext *ctx, GError **error) {
  gint64 C = ctx->out_channels > 0 ? ctx->out_channels : ctx->channels;
  if (C <= 0) {
    g_set_error(error, RAT_ERROR, RAT_ERROR_CONFIG, "%s: shuffle_attention needs the channel count from its slot", m->path);
    return FALSE;
  }
  if (!sa_check(m->type, m->options, ctx, error)) return FALSE;
  sa_init(RAT_MODULE_PRIV(m, SaPriv), m, ctx, "", C, RAT_MODULE_OPTIONS(m, SaOptions)->groups);
  return TRUE;
}

static RatTensor *sa_forward(RatModule *m, RatTensor *x) { return sa_apply(RAT_MODULE_PRIV(m, SaPriv), x); }
static gboolean sa_batch_dependent(RatModule *m) { return FALSE; }
static const RatBlockIface sa_iface = {.forward = sa_forward, .batch_dependent = sa_batch_dependent};

static const RatModuleType sa_type = {
    .struct_size = sizeof(RatModuleType),
    .name = "shuffle_attention",
    .kind = RAT_KIND_BLOCK,
    .doc = "SA-Net shuffle attention (fightingcv ShuffleAttention, reference §2.8): per group, a channel gate from "
           "the mean and a spatial gate from a per-channel GroupNorm, then a 2-group channel shuffle.",
    .args = sa_args,
    .n_args = G_N_ELEMENTS(sa_args),
    .options_size = sizeof(SaOptions),
    .priv_size = sizeof(SaPriv),
    .build = sa_build,
    .iface = &sa_iface,
    .check = sa_check,
};

/* ---- conv_shuffle ----------------------------------------------------------------------------------------- */

typedef struct {
  gint64 kernel;
  gint64 groups;
  double slope;
} ConvShuffleOptions;

typedef struct {
  RatConv conv;
  RatBatchNormLayer bn;
  SaPriv sa;
  float slope;
} ConvShufflePriv;

static const RatArgSpec conv_shuffle_args[] = {
    RAT_ARG_I(ConvShuffleOptions, kernel, "3", 1, 15, "convolution kernel size k (odd; padding k/2, no bias)"),
    RAT_ARG_I(ConvShuffleOptions, groups, "8", 1, 4096, "shuffle-attention groups G; out channels divisible by 2*G"),
    RAT_ARG_D(ConvShuffleOptions, slope, "0.01", 0.0, 1.0, "LeakyReLU slope (released: nn.LeakyReLU() = 0.01)"),
};

static gboolean conv_shuffle_check(const RatModuleType *type, const void *options, const RatBuildContext *ctx,
                                   GError **error) {
  const ConvShuffleOptions *o = options;
  SaOptions so = {.groups = o->groups};
  if (o->kernel % 2 == 0) {
    g_set_error(error, RAT_ERROR, RAT_ERROR_CONFIG, "conv_shuffle needs an odd kernel (got %" G_GINT64_FORMAT ")", o->kernel);
    return FALSE;
  }
  return sa_check(type, &so, ctx, error);
}

static gboolean conv_shuffle_build(RatModule *m, const RatBuildContext *ctx, GError **error) {
  const ConvShuffleOptions *o = RAT_MODULE_OPTIONS(m, ConvShuffleOptions);
  ConvShufflePriv *p = RAT_MODULE_PRIV(m, ConvShufflePriv);
  gint64 cin = ctx->channels, cout = ctx->out_channels > 0 ? ctx->out_channels : ctx->channels;
  if (cin <= 0) {
    g_set_error(error, RAT_ERROR, RAT_ERROR_CONFIG, "%s: conv_shuffle needs the channel counts from its slot", m->path);
    return FALSE;
  }
  if (!conv_shuffle_check(m->type, o, ctx, error)) return FALSE;
  rat_conv_layer_init(&p->conv, m, ctx, "conv", cin, cout, (int)o->kernel, 1, (int)o->kernel / 2, FALSE);
  rat_batch_norm_layer_init(&p->bn, m, ctx, "bn", cout, TRUE);
  sa_init(&p->sa, m, ctx, "sa.", cout, o->groups);
  p->slope = (float)o->slope;
  return TRUE;
}

static RatTensor *conv_shuffle_forward(RatModule *m, RatTensor *x) {
  ConvShufflePriv *p = RAT_MODULE_PRIV(m, ConvShufflePriv);
  RatTensor *y = rat_batch_norm_layer(&p->bn, rat_conv_layer(&p->conv, x), m->training);
  return sa_apply(&p->sa, rat_leaky_relu(y, p->slope));
}

static gboolean conv_shuffle_batch_dependent(RatModule *m) { return m->training; }
static const RatBlockIface conv_shuffle_iface = {.forward = conv_shuffle_forward,
                                                 .batch_dependent = conv_shuffle_batch_dependent};

static const RatModuleType conv_shuffle_type = {
    .struct_size = sizeof(RatModuleType),
    .name = "conv_shuffle",
    .kind = RAT_KIND_BLOCK,
    .doc = "RATLIP Conv_shuffle (reference §2.7): conv k x k without bias -> BatchNorm -> LeakyReLU(0.01) -> shuffle "
           "attention. Batch statistics in training, running statistics in eval.",
    .args = conv_shuffle_args,
    .n_args = G_N_ELEMENTS(conv_shuffle_args),
    .options_size = sizeof(ConvShuffleOptions),
    .priv_size = sizeof(ConvShufflePriv),
    .build = conv_shuffle_build,
    .iface = &conv_shuffle_iface,
    .check = conv_shuffle_check,
};

static gboolean shuffle_attention_plugin_init(RatRegistry *reg, GError **error) {
  return rat_registry_add_type(reg, &sa_type, error) && rat_registry_add_type(reg, &conv_shuffle_type, error);
}

RAT_PLUGIN_DEFINE("shuffle_attention", "0.1.0", "MIT", "shuffle attention and RATLIP's conv_shuffle block",
                  shuffle_attention_plugin_init)
