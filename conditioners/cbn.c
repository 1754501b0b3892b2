/* cbn: conditional batch normalisation (reference §4):
 *   y = gamma(c)[n,k] * (x - mu_k) / sqrt(var_k + eps) + beta(c)[n,k]
 * mu_k, var_k over (n,i,j) of the batch in training (running statistics updated with momentum, unbiased
 * variance, as torch.nn.BatchNorm2d), the running statistics in eval. gamma/beta as in `affine`. Not in any
 * released repository: the paper's ablation row, built from the standard definition. */
#include <ratfw/layers.h>
#include <ratfw/ratfw.h>

typedef struct {
  gint64 hidden;
  double momentum;
  double eps;
} CbnOptions;

typedef struct {
  RatAffinePair pair;
  RatBatchNormLayer bn;
} CbnPriv;

static const RatArgSpec cbn_args[] = {
    RAT_ARG_I(CbnOptions, hidden, "0", 0, 1 << 20, "hidden width of the gamma/beta MLPs; 0 = the channel count"),
    RAT_ARG_D(CbnOptions, momentum, "0.1", 0.0, 1.0, "running-statistics momentum (torch convention)"),
    RAT_ARG_D(CbnOptions, eps, "1e-5", 0.0, 1.0, "added to the variance"),
};

static gboolean cbn_build(RatModule *m, const RatBuildContext *ctx, GError **error) {
  const CbnOptions *o = RAT_MODULE_OPTIONS(m, CbnOptions);
  if (ctx->channels <= 0 || ctx->cond_dim <= 0) {
    g_set_error(error, RAT_ERROR, RAT_ERROR_CONFIG, "%s: cbn needs the feature channels and condition width from its slot",
                m->path);
    return FALSE;
  }
  CbnPriv *p = RAT_MODULE_PRIV(m, CbnPriv);
  rat_affine_pair_init(&p->pair, m, ctx, ctx->cond_dim, o->hidden ? o->hidden : ctx->channels, ctx->channels);
  rat_batch_norm_layer_init(&p->bn, m, ctx, "bn", ctx->channels, FALSE);
  p->bn.momentum = (float)o->momentum;
  p->bn.eps = (float)o->eps;
  return TRUE;
}

static RatTensor *cbn_forward(RatModule *m, RatTensor *x, RatTensor *cond, RatCondState *state) {
  CbnPriv *p = RAT_MODULE_PRIV(m, CbnPriv);
  return rat_affine_pair_apply(&p->pair, rat_batch_norm_layer(&p->bn, x, m->training), cond);
}

static gboolean cbn_batch_dependent(RatModule *m) { return m->training; }

static const RatConditionerIface cbn_iface = {.forward = cbn_forward, .batch_dependent = cbn_batch_dependent};

static const RatModuleType cbn_type = {
    .struct_size = sizeof(RatModuleType),
    .name = "cbn",
    .kind = RAT_KIND_CONDITIONER,
    .doc = "Conditional batch normalisation: batch statistics (running statistics in eval), then gamma(c)*x + beta(c) "
           "(reference §4).",
    .args = cbn_args,
    .n_args = G_N_ELEMENTS(cbn_args),
    .options_size = sizeof(CbnOptions),
    .priv_size = sizeof(CbnPriv),
    .build = cbn_build,
    .iface = &cbn_iface,
};

static gboolean cbn_plugin_init(RatRegistry *reg, GError **error) { return rat_registry_add_type(reg, &cbn_type, error); }

RAT_PLUGIN_DEFINE("cbn", "0.1.0", "MIT", "conditional batch normalisation", cbn_plugin_init)
