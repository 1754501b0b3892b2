/* cin: conditional instance normalisation (reference §4):
 *   y = gamma(c)[n,k] * (x - mu_{n,k}) / sqrt(var_{n,k} + eps) + beta(c)[n,k]
 * with per-sample, per-channel statistics over (i,j) (biased variance), no running statistics. */
#include <ratfw/layers.h>
#include <ratfw/ratfw.h>

typedef struct {
  gint64 hidden;
  double eps;
} CinOptions;

typedef struct {
  RatAffinePair pair;
} CinPriv;

static const RatArgSpec cin_args[] = {
    RAT_ARG_I(CinOptions, hidden, "0", 0, 1 << 20, "hidden width of the gamma/beta MLPs; 0 = the channel count"),
    RAT_ARG_D(CinOptions, eps, "1e-5", 0.0, 1.0, "added to the variance"),
};

static gboolean cin_build(RatModule *m, const RatBuildContext *ctx, GError **error) {
  const CinOptions *o = RAT_MODULE_OPTIONS(m, CinOptions);
  if (ctx->channels <= 0 || ctx->cond_dim <= 0) {
    g_set_error(error, RAT_ERROR, RAT_ERROR_CONFIG, "%s: cin needs the feature channels and condition width from its slot",
                m->path);
    return FALSE;
  }
  rat_affine_pair_init(&RAT_MODULE_PRIV(m, CinPriv)->pair, m, ctx, ctx->cond_dim, o->hidden ? o->hidden : ctx->channels,
                       ctx->channels);
  return TRUE;
}

static RatTensor *cin_forward(RatModule *m, RatTensor *x, RatTensor *cond, RatCondState *state) {
  const CinOptions *o = RAT_MODULE_OPTIONS(m, CinOptions);
  return rat_affine_pair_apply(&RAT_MODULE_PRIV(m, CinPriv)->pair, rat_instance_norm(x, NULL, NULL, (float)o->eps), cond);
}

static gboolean cin_batch_dependent(RatModule *m) { return FALSE; }

static const RatConditionerIface cin_iface = {.forward = cin_forward, .batch_dependent = cin_batch_dependent};

static const RatModuleType cin_type = {
    .struct_size = sizeof(RatModuleType),
    .name = "cin",
    .kind = RAT_KIND_CONDITIONER,
    .doc = "Conditional instance normalisation: per-sample, per-channel statistics, then gamma(c)*x + beta(c) "
           "(reference §4).",
    .args = cin_args,
    .n_args = G_N_ELEMENTS(cin_args),
    .options_size = sizeof(CinOptions),
    .priv_size = sizeof(CinPriv),
    .build = cin_build,
    .iface = &cin_iface,
};

static gboolean cin_plugin_init(RatRegistry *reg, GError **error) { return rat_registry_add_type(reg, &cin_type, error); }

RAT_PLUGIN_DEFINE("cin", "0.1.0", "MIT", "conditional instance normalisation", cin_plugin_init)
