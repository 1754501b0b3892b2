/* heads: discriminator heads (discriminator_head kind, gan.h): features f [B, C, g, g] and sentence s [B, E] -> [B].
 *   galip_netc     GALIP's NetC (reference §5.4; GALIP.py:235-252): concat(f, s tiled g x g) -> conv k1 x k1, no
 *                  padding (-> hidden, no bias) -> LReLU_0.2 -> conv k2 x k2 (-> 1, no bias), k1 = g/2 + 1,
 *                  k2 = g - k1 + 1 (g = 7: 4 and 4)
 *   dfgan_netc     DF-GAN's NetC (reference §5.5; DF-GAN code/models/GAN.py D_GET_LOGITS): concat(f, s tiled) ->
 *                  conv 3x3 pad 1 (-> hidden, no bias) -> LReLU_0.2 -> conv g x g (-> 1, no bias) (g = 4)
 *   projection     Miyato and Koyama 2018, "cGANs with Projection Discriminator", eq. (3) with a continuous
 *                  condition: phi = pool_hw(ReLU(f)) [B, C]; logit = w . phi + b + <V s, phi>, V [C, E]
 *   unconditional  the same without the projection term: logit = w . phi + b (the sentence is not read)
 * hidden = 2 nf of the discriminator unless given. NetC heads are named "joint_conv" in the discriminator (the
 * released parameter names joint_conv.0.weight, joint_conv.2.weight); the others "head". Every head composes
 * differentiable core ops, so MA-GP's double backward runs through it. */
#include <ratfw/layers.h>
#include <ratfw/ratfw.h>

#include <math.h>
#include <string.h>

/* ---- NetC ------------------------------------------------------------------------------------------------------ */

typedef struct {
  gint64 hidden;
} NetcOptions;

static const RatArgSpec netc_args[] = {
    RAT_ARG_I(NetcOptions, hidden, "0", 0, 1 << 16, "channels of the first conv (0: 2 nf of the discriminator)"),
};

typedef struct {
  gint64 E;
  RatTensor *w1, *w2;
  int pad1;
} NetcPriv;

static gboolean netc_build(RatModule *m, const RatBuildContext *ctx, GError **error) {
  const RatDiscriminatorHeadContext *hc = rat_discriminator_head_context(m, ctx, error);
  if (!hc) return FALSE;
  NetcPriv *p = RAT_MODULE_PRIV(m, NetcPriv);
  gint64 hidden = RAT_MODULE_OPTIONS(m, NetcOptions)->hidden;
  if (!hidden) hidden = 2 * hc->nf;
  gboolean galip = !strcmp(m->type->name, "galip_netc");
  gint64 g = hc->grid, k1 = galip ? g / 2 + 1 : 3, k2 = galip ? g - k1 + 1 : g;
  if (hidden < 1 || k2 < 1 || (!galip && g < 1)) {
    g_set_error(error, RAT_ERROR, RAT_ERROR_CONFIG, "%s: needs features of at least 1 x 1 and hidden >= 1 (grid %"
                G_GINT64_FORMAT ", hidden %" G_GINT64_FORMAT ")", m->path, g, hidden);
    return FALSE;
  }
  p->E = hc->sentence_dim;
  p->pad1 = galip ? 0 : 1;
  p->w1 = rat_module_param(m, ctx, "0.weight", RAT_SHAPE(hidden, hc->channels + p->E, k1, k1));
  rat_init_kaiming_uniform_(ctx->rng, p->w1, sqrt(5.0));
  p->w2 = rat_module_param(m, ctx, "2.weight", RAT_SHAPE(1, hidden, k2, k2));
  rat_init_kaiming_uniform_(ctx->rng, p->w2, sqrt(5.0));
  return TRUE;
}

static RatTensor *netc_logits(RatModule *m, RatTensor *f, RatTensor *s) {
  NetcPriv *p = RAT_MODULE_PRIV(m, NetcPriv);
  gint64 B = f->shape[0];
  RatTensor *st = rat_expand(rat_reshape(s, RAT_SHAPE(B, p->E, 1, 1)), RAT_SHAPE(B, p->E, f->shape[2], f->shape[3]));
  RatTensor *parts[2] = {f, st};
  RatTensor *h = rat_conv2d(rat_concat(parts, 2, 1), p->w1, NULL, RAT_CONV_PARAMS(1, p->pad1)); /* [B, hidden, .] */
  h = rat_conv2d(rat_leaky_relu(h, 0.2f), p->w2, NULL, RAT_CONV_PARAMS(1, 0));                /* [B, 1, 1, 1] */
  return rat_reshape(h, RAT_SHAPE(B));
}

static const RatDiscriminatorHeadIface netc_iface = {.name = "joint_conv", .logits = netc_logits};

static const RatModuleType galip_netc_type = {
    .struct_size = sizeof(RatModuleType),
    .name = "galip_netc",
    .kind = RAT_KIND_DISCRIMINATOR_HEAD,
    .doc = "GALIP's NetC: sentence tiled over the g x g features, conv (g/2+1) x (g/2+1) without padding, LReLU 0.2, "
           "conv to 1 x 1 (reference §5.4).",
    .args = netc_args,
    .n_args = G_N_ELEMENTS(netc_args),
    .options_size = sizeof(NetcOptions),
    .priv_size = sizeof(NetcPriv),
    .build = netc_build,
    .iface = &netc_iface,
};

static const RatModuleType dfgan_netc_type = {
    .struct_size = sizeof(RatModuleType),
    .name = "dfgan_netc",
    .kind = RAT_KIND_DISCRIMINATOR_HEAD,
    .doc = "DF-GAN's NetC: sentence tiled over the g x g features, conv 3x3 pad 1, LReLU 0.2, conv g x g to 1 x 1 "
           "(reference §5.5; DF-GAN code/models/GAN.py).",
    .args = netc_args,
    .n_args = G_N_ELEMENTS(netc_args),
    .options_size = sizeof(NetcOptions),
    .priv_size = sizeof(NetcPriv),
    .build = netc_build,
    .iface = &netc_iface,
};

/* ---- projection and unconditional -------------------------------------------------------------------------------- */

static const char *const pools[] = {"sum", "mean", NULL};

typedef struct {
  char *pool;
} ProjOptions;

static const RatArgSpec proj_args[] = {
    RAT_ARG_C(ProjOptions, pool, "sum", pools, "pooling of ReLU(f) over the g x g grid (Miyato and Koyama: sum)"),
};

typedef struct {
  gboolean conditional, mean;
  RatLinear linear, embed;
} ProjPriv;

static gboolean proj_build(RatModule *m, const RatBuildContext *ctx, GError **error) {
  const RatDiscriminatorHeadContext *hc = rat_discriminator_head_context(m, ctx, error);
  if (!hc) return FALSE;
  ProjPriv *p = RAT_MODULE_PRIV(m, ProjPriv);
  p->conditional = !strcmp(m->type->name, "projection");
  p->mean = !strcmp(RAT_MODULE_OPTIONS(m, ProjOptions)->pool, "mean");
  rat_linear_layer_init(&p->linear, m, ctx, "linear", hc->channels, 1, TRUE);
  if (p->conditional) rat_linear_layer_init(&p->embed, m, ctx, "embed", hc->sentence_dim, hc->channels, FALSE);
  return TRUE;
}

static RatTensor *proj_logits(RatModule *m, RatTensor *f, RatTensor *s) {
  ProjPriv *p = RAT_MODULE_PRIV(m, ProjPriv);
  gint64 B = f->shape[0];
  RatTensor *r = rat_relu(f);
  RatTensor *phi = p->mean ? rat_mean(r, RAT_AXIS(2) | RAT_AXIS(3), FALSE) : rat_sum(r, RAT_AXIS(2) | RAT_AXIS(3), FALSE);
  RatTensor *l = rat_reshape(rat_linear_layer(&p->linear, phi), RAT_SHAPE(B)); /* [B] */
  if (!p->conditional) return l;
  RatTensor *proj = rat_sum(rat_mul(rat_linear_layer(&p->embed, s), phi), RAT_AXIS(1), FALSE); /* [B] */
  return rat_add(l, proj);
}

static gboolean proj_conditional(RatModule *m) { return RAT_MODULE_PRIV(m, ProjPriv)->conditional; }

static const RatDiscriminatorHeadIface proj_iface = {.name = "head", .logits = proj_logits,
                                                     .conditional = proj_conditional};

static const RatModuleType projection_type = {
    .struct_size = sizeof(RatModuleType),
    .name = "projection",
    .kind = RAT_KIND_DISCRIMINATOR_HEAD,
    .doc = "Projection head (Miyato and Koyama 2018): phi = pool(ReLU(f)), logit = w . phi + b + <V s, phi>; "
           "parameters linear (C -> 1) and embed (E -> C, no bias).",
    .args = proj_args,
    .n_args = G_N_ELEMENTS(proj_args),
    .options_size = sizeof(ProjOptions),
    .priv_size = sizeof(ProjPriv),
    .build = proj_build,
    .iface = &proj_iface,
};

static const RatModuleType unconditional_type = {
    .struct_size = sizeof(RatModuleType),
    .name = "unconditional",
    .kind = RAT_KIND_DISCRIMINATOR_HEAD,
    .doc = "Unconditional head: logit = w . pool(ReLU(f)) + b, the sentence unread (the losses then drop the mismatch "
           "term and MA-GP's sentence gradient).",
    .args = proj_args,
    .n_args = G_N_ELEMENTS(proj_args),
    .options_size = sizeof(ProjOptions),
    .priv_size = sizeof(ProjPriv),
    .build = proj_build,
    .iface = &proj_iface,
};

static gboolean heads_init(RatRegistry *reg, GError **error) {
  return rat_registry_add_type(reg, &galip_netc_type, error) && rat_registry_add_type(reg, &dfgan_netc_type, error) &&
         rat_registry_add_type(reg, &projection_type, error) && rat_registry_add_type(reg, &unconditional_type, error);
}

RAT_PLUGIN_DEFINE("heads", "0.1.0", "MIT", "discriminator heads: GALIP and DF-GAN NetC, projection, unconditional",
                  heads_init)
