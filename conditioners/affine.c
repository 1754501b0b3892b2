/* affine: DF-GAN / GALIP's conditional affine transformation ("CAT", reference §2.6).
 *   gamma = W2g ReLU(W1g c + b1g) + b2g,  beta = W2b ReLU(W1b c + b1b) + b2b,  y[n,k,i,j] = gamma[n,k] x[n,k,i,j] + beta[n,k]
 * No normalisation of x. MLP hidden width = channels (DF-GAN) unless `hidden` says otherwise; the second layer
 * of gamma starts at weight 0 / bias 1, of beta at 0 / 0. Source: GALIP.py:342-395, DF-GAN GAN.py:128-176. */
#include <ratfw/layers.h>
#include <ratfw/ratfw.h>

typedef struct {
  gint64 hidden;
} AffineOptions;

typedef struct {
  RatAffinePair pair;
} AffinePriv;

static const RatArgSpec affine_args[] = {
    RAT_ARG_I(AffineOptions, hidden, "0", 0, 1 << 20, "hidden width of the gamma/beta MLPs; 0 = the channel count (DF-GAN)"),
};

static gboolean affine_build(RatModule *m, const RatBuildContext *ctx, GError **error) {
  const AffineOptions *o = RAT_MODULE_OPTIONS(m, AffineOptions);
  if (ctx->channels <= 0 || ctx->cond_dim <= 0) {
    g_set_error(error, RAT_ERROR, RAT_ERROR_CONFIG, "%s: affine needs the feature channels and condition width from its slot",
                m->path);
    return FALSE;
  }
  AffinePriv *p = RAT_MODULE_PRIV(m, AffinePriv);
  rat_affine_pair_init(&p->pair, m, ctx, ctx->cond_dim, o->hidden ? o->hidden : ctx->channels, ctx->channels);
  return TRUE;
}

static RatTensor *affine_forward(RatModule *m, RatTensor *x, RatTensor *cond, RatCondState *state) {
  return rat_affine_pair_apply(&RAT_MODULE_PRIV(m, AffinePriv)->pair, x, cond);
}

static gboolean affine_batch_dependent(RatModule *m) { return FALSE; }

static const RatConditionerIface affine_iface = {.forward = affine_forward, .batch_dependent = affine_batch_dependent};

static const RatModuleType affine_type = {
    .struct_size = sizeof(RatModuleType),
    .name = "affine",
    .kind = RAT_KIND_CONDITIONER,
    .doc = "DF-GAN/GALIP conditional affine (CAT): y = gamma(c)*x + beta(c), gamma/beta from two-layer ReLU MLPs "
           "of the condition (reference §2.6).",
    .args = affine_args,
    .n_args = G_N_ELEMENTS(affine_args),
    .options_size = sizeof(AffineOptions),
    .priv_size = sizeof(AffinePriv),
    .build = affine_build,
    .iface = &affine_iface,
};

static gboolean affine_plugin_init(RatRegistry *reg, GError **error) {
  return rat_registry_add_type(reg, &affine_type, error);
}

RAT_PLUGIN_DEFINE("affine", "0.1.0", "MIT", "DF-GAN / GALIP conditional affine transformation", affine_plugin_init)
