/* dfgan: the DF-GAN generator and discriminator (Tao et al. 2022, the June 2022 code: DF-GAN code/models/GAN.py;
 * reference §2.5-2.6, §5.5, §6.2).
 *
 * Generator:
 *   cond = [z ; s]                                                          [B, z_dim + E]
 *   h = reshape(fc(z))                                                      [B, 8 nf, 4, 4]
 *   G_Blocks k = 0..n-1 (n = log2(S) - 2):  h = up2(h);  h = shortcut(h) + c2(fuse2(c1(fuse1(h, cond)), cond))
 *       fuseX(x, c) = LReLU_0.2(A1(LReLU_0.2(A0(x, c)), c)), affines from `block_fusion` (DF-GAN: affine)
 *       c1, c2 from `block_conv` (DF-GAN: 3x3 conv with bias); shortcut = 1x1 conv with bias when widths differ
 *       widths nf min(2^i, 8) for i = n .. 0 (256 px: 8,8,8,8,4,2,1 nf)
 *   x = tanh(conv3x3(LReLU_0.2(h)))                                         [B, 3, S, S]
 * Discriminator (the pixels are D's input, so MA-GP differentiates with respect to them):
 *   features: h = conv_img(x) (3x3, bias); D_Blocks to 4 x 4:
 *       D_Block(x) = pool2(shortcut(x)) + gamma r,  r = LReLU(conv3x3(LReLU(conv4x4 stride 2(x)))), no biases,
 *       shortcut = 1x1 conv with bias when widths differ (constructed always, as released), gamma from 0
 *       widths nf min(2^i, 8) for i = 0 .. n                                [B, 8 nf, 4, 4]
 *   logits: the `head` (plugins/heads.c); released NetC (dfgan_netc):
 *           concat(h, s tiled 4 x 4) -> conv3x3 (-> 2 nf, no bias) -> LReLU -> conv4x4 (-> 1, no bias)   [B]
 * DF-GAN's own text encoder is the DAMSM BiLSTM (256-d); here the sentence comes from the experiment's text
 * encoder (its width is E). Losses: mismatch = features (roll the real features), MA-GP on pixels and sentence,
 * no CLIP similarity (train_gan: mismatch: features, sim_weight: 0). */
#include <ratfw/layers.h>
#include <ratfw/ratfw.h>

#include <math.h>
#include <string.h>

#define MAX_BLOCKS 12

/* ---- generator ------------------------------------------------------------------------------------------------ */

typedef struct {
  gint64 nf, z_dim, image_size;
  gboolean tanh;
  RatModuleSpec *block_fusion, *block_conv, *block;
  RatStageList stages;
} DfgOptions;

static const RatArgSpec dfg_args[] = {
    RAT_ARG_I(DfgOptions, nf, "32", 1, 4096, "ngf: the code has 8 nf channels, the last G_Block nf (DF-GAN birds: 32)"),
    RAT_ARG_I(DfgOptions, z_dim, "100", 1, 4096, "noise size"),
    RAT_ARG_I(DfgOptions, image_size, "256", 8, 4096, "output side S, a power of two (one G_Block per doubling from 4)"),
    RAT_ARG_B(DfgOptions, tanh, "true", "tanh on the output (DF-GAN: yes)"),
    RAT_ARG_M(DfgOptions, block_fusion, RAT_KIND_CONDITIONER, "affine", "the affines of the G_Blocks' fusion blocks"),
    RAT_ARG_M(DfgOptions, block_conv, RAT_KIND_BLOCK, "conv", "the G_Blocks' c1 and c2"),
    RAT_ARG_M(DfgOptions, block, RAT_KIND_GENERATOR_BLOCK, "dfgan_block",
              "the block of every stage that names none (its fusion/conv default to block_fusion/block_conv)"),
    RAT_ARG_STAGE_LIST(DfgOptions, stages, RAT_KIND_GENERATOR_BLOCK,
                       "the trunk: ~ = the released plan (one dfgan_block per doubling from 4 x 4, widths 8 nf .. nf), "
                       "or a list [{out: 256, block: {type: dfgan_block}}, ...] from 8 nf channels at 4 x 4 to "
                       "image_size"),
};

typedef struct {
  gint64 E, cond_dim;
  RatLinear fc;
  RatGanStages stages;
  RatConv to_rgb;
} DfgPriv;

static gboolean is_pow2(gint64 v) { return v > 0 && (v & (v - 1)) == 0; }

static gboolean dfg_check(const RatModuleType *type, const void *options, const RatBuildContext *ctx, GError **error) {
  const DfgOptions *o = options;
  if (!is_pow2(o->image_size)) {
    g_set_error(error, RAT_ERROR, RAT_ERROR_CONFIG, "dfgan_generator: image_size must be a power of two (8, 16, ..., "
                "256), not %" G_GINT64_FORMAT, o->image_size);
    return FALSE;
  }
  return TRUE;
}

/* Widths nf min(2^i, 8), i = 0 .. log2(S) - 2 (DF-GAN's get_G_in_out_chs / get_D_in_out_chs). */
static int widths(gint64 nf, gint64 S, gint64 *w) {
  int L = 0;
  while (((gint64)1 << (L + 1)) <= S) L++; /* log2 S */
  int n = L - 1;
  for (int i = 0; i < n; i++) w[i] = nf * MIN((gint64)1 << i, 8);
  return n; /* widths; blocks = n - 1 */
}

static gboolean dfg_build(RatModule *m, const RatBuildContext *ctx0, GError **error) {
  const DfgOptions *o = RAT_MODULE_OPTIONS(m, DfgOptions);
  DfgPriv *p = RAT_MODULE_PRIV(m, DfgPriv);
  const RatGanContext *gc = ctx0->user;
  if (!gc || gc->sentence_dim <= 0) {
    g_set_error(error, RAT_ERROR, RAT_ERROR_CONFIG, "%s: dfgan_generator needs the sentence width: give the experiment "
                "a model.text_encoder", m->path);
    return FALSE;
  }
  p->E = gc->sentence_dim;
  p->cond_dim = o->z_dim + p->E;
  RatBuildContext ctx = *ctx0;
  ctx.cond_dim = p->cond_dim;
  ctx.z_dim = o->z_dim;
  gint64 w[MAX_BLOCKS + 2];
  int nw = widths(o->nf, o->image_size, w), n = nw - 1;
  if (!o->stages.n && (n < 1 || n > MAX_BLOCKS || w[nw - 1] != 8 * o->nf)) {
    g_set_error(error, RAT_ERROR, RAT_ERROR_CONFIG, "%s: image_size %" G_GINT64_FORMAT " must be 32 .. %d for the "
                "released plan (one G_Block per doubling of the 4 x 4, 8 nf code); give explicit stages otherwise",
                m->path, o->image_size, 4 << MAX_BLOCKS);
    return FALSE;
  }
  rat_linear_layer_init(&p->fc, m, &ctx, "fc", o->z_dim, 8 * o->nf * 16, TRUE);
  gint64 plan_out[MAX_BLOCKS], plan_size[MAX_BLOCKS];
  for (int k = 0; k < n && k < MAX_BLOCKS; k++) {
    plan_out[k] = w[nw - 2 - k];
    plan_size[k] = (gint64)8 << k; /* nearest x2 from 4 x 4 */
  }
  if (!rat_gan_stages_build(m, &ctx, &o->stages, o->block, o->block_fusion, o->block_conv, 8 * o->nf, 4,
                            o->image_size, (guint)n, plan_out, plan_size, &p->stages, error))
    return FALSE;
  rat_conv_layer_init(&p->to_rgb, m, &ctx, "to_rgb", p->stages.out[p->stages.n - 1], 3, 3, 1, 1, TRUE);
  return TRUE;
}

static RatTensor *dfg_forward(RatModule *m, RatTensor *z, RatTensor *s) {
  const DfgOptions *o = RAT_MODULE_OPTIONS(m, DfgOptions);
  DfgPriv *p = RAT_MODULE_PRIV(m, DfgPriv);
  rat_check(z->ndim == 2 && z->shape[1] == o->z_dim && s->ndim == 2 && s->shape[1] == p->E && s->shape[0] == z->shape[0],
            "%s: expected z [B,%" G_GINT64_FORMAT "] and sentence [B,%" G_GINT64_FORMAT "]", m->path, o->z_dim, p->E);
  gint64 B = z->shape[0];
  RatTensor *parts[2] = {z, s};
  RatTensor *cond = rat_concat(parts, 2, 1);
  RatCondState *st = rat_cond_state_new();
  rat_cond_state_set_noise(st, z);
  RatTensor *h = rat_reshape(rat_linear_layer(&p->fc, z), RAT_SHAPE(B, 8 * o->nf, 4, 4));
  h = rat_gan_stages_forward(&p->stages, h, cond, st);
  rat_cond_state_free(st);
  RatTensor *x = rat_conv_layer(&p->to_rgb, rat_leaky_relu(h, 0.2f));
  return o->tanh ? rat_tanh(x) : x;
}

static gint64 dfg_z_dim(RatModule *m) { return RAT_MODULE_OPTIONS(m, DfgOptions)->z_dim; }
static gint64 dfg_image_size(RatModule *m) { return RAT_MODULE_OPTIONS(m, DfgOptions)->image_size; }

static RatTensor *dfg_example(RatModule *m, const RatBuildContext *ctx, GError **error) {
  RatRng r;
  rat_rng_init(&r, 1);
  return dfg_forward(m, rat_randn(&r, RAT_SHAPE(1, dfg_z_dim(m))),
                     rat_randn(&r, RAT_SHAPE(1, RAT_MODULE_PRIV(m, DfgPriv)->E)));
}

static const RatGeneratorIface dfg_iface = {.forward = dfg_forward, .z_dim = dfg_z_dim, .image_size = dfg_image_size};

static const RatModuleType dfg_type = {
    .struct_size = sizeof(RatModuleType),
    .name = "dfgan_generator",
    .kind = RAT_KIND_GENERATOR,
    .doc = "DF-GAN generator: noise to a 4x4 code, G_Blocks (nearest x2, deep fusion of [z; s] by stacked affines, "
           "3x3 convs) to image_size, tanh (reference §2.5-2.6; DF-GAN code/models/GAN.py).",
    .args = dfg_args,
    .n_args = G_N_ELEMENTS(dfg_args),
    .options_size = sizeof(DfgOptions),
    .priv_size = sizeof(DfgPriv),
    .build = dfg_build,
    .check = dfg_check,
    .iface = &dfg_iface,
    .example_forward = dfg_example,
};

/* ---- discriminator ---------------------------------------------------------------------------------------------- */

typedef struct {
  gint64 nf, image_size;
  RatModuleSpec *head;
} DfdOptions;

static const RatArgSpec dfd_args[] = {
    RAT_ARG_I(DfdOptions, nf, "32", 1, 4096, "ndf: D_Blocks end at 8 nf channels, NetC's hidden conv has 2 nf"),
    RAT_ARG_I(DfdOptions, image_size, "256", 8, 4096, "side of the images D reads, a power of two (D_Blocks halve it to 4)"),
    RAT_ARG_M(DfdOptions, head, RAT_KIND_DISCRIMINATOR_HEAD, "dfgan_netc",
              "the head on the [B, 8 nf, 4, 4] features (released: dfgan_netc; projection, unconditional...)"),
};

typedef struct {
  RatTensor *w1, *w2; /* 4x4 stride 2 and 3x3, no bias */
  RatConv sc;
  gboolean learnable_sc;
  RatTensor *gamma;
} DBlock;

typedef struct {
  gint64 E;
  RatConv conv_img;
  DBlock blocks[MAX_BLOCKS];
  int n;
  RatModule *head; /* NetC by default */
} DfdPriv;

static gboolean dfd_check(const RatModuleType *type, const void *options, const RatBuildContext *ctx, GError **error) {
  const DfdOptions *o = options;
  if (!is_pow2(o->image_size) || o->image_size < 8) {
    g_set_error(error, RAT_ERROR, RAT_ERROR_CONFIG, "dfgan_discriminator: image_size must be a power of two >= 8, not %"
                G_GINT64_FORMAT, o->image_size);
    return FALSE;
  }
  return TRUE;
}

static gboolean dfd_build(RatModule *m, const RatBuildContext *ctx, GError **error) {
  const DfdOptions *o = RAT_MODULE_OPTIONS(m, DfdOptions);
  DfdPriv *p = RAT_MODULE_PRIV(m, DfdPriv);
  const RatGanContext *gc = ctx->user;
  if (!gc || gc->sentence_dim <= 0) {
    g_set_error(error, RAT_ERROR, RAT_ERROR_CONFIG, "%s: dfgan_discriminator needs the sentence width: give the "
                "experiment a model.text_encoder", m->path);
    return FALSE;
  }
  p->E = gc->sentence_dim;
  gint64 w[MAX_BLOCKS + 2];
  int nw = widths(o->nf, o->image_size, w);
  p->n = nw - 1;
  if (p->n < 1 || p->n > MAX_BLOCKS || w[nw - 1] != 8 * o->nf) {
    g_set_error(error, RAT_ERROR, RAT_ERROR_CONFIG, "%s: image_size %" G_GINT64_FORMAT " must be 32 .. %d so that the "
                "D_Blocks end at 8 nf channels on a 4x4 grid", m->path, o->image_size, 4 << MAX_BLOCKS);
    return FALSE;
  }
  rat_conv_layer_init(&p->conv_img, m, ctx, "conv_img", 3, o->nf, 3, 1, 1, TRUE);
  for (int k = 0; k < p->n; k++) {
    DBlock *b = &p->blocks[k];
    gint64 fin = w[k], fout = w[k + 1];
    char *n = g_strdup_printf("DBlocks.%d.conv_r.0.weight", k);
    b->w1 = rat_module_param(m, ctx, n, RAT_SHAPE(fout, fin, 4, 4));
    rat_init_kaiming_uniform_(ctx->rng, b->w1, sqrt(5.0));
    g_free(n);
    n = g_strdup_printf("DBlocks.%d.conv_r.2.weight", k);
    b->w2 = rat_module_param(m, ctx, n, RAT_SHAPE(fout, fout, 3, 3));
    rat_init_kaiming_uniform_(ctx->rng, b->w2, sqrt(5.0));
    g_free(n);
    n = g_strdup_printf("DBlocks.%d.conv_s", k);
    rat_conv_layer_init(&b->sc, m, ctx, n, fin, fout, 1, 1, 0, TRUE);
    g_free(n);
    b->learnable_sc = fin != fout;
    n = g_strdup_printf("DBlocks.%d.gamma", k);
    b->gamma = rat_module_param(m, ctx, n, RAT_SHAPE(1)); /* zero */
    g_free(n);
  }
  RatDiscriminatorHeadContext hc = {.magic = RAT_DISCRIMINATOR_HEAD_CONTEXT_MAGIC, .channels = 8 * o->nf, .grid = 4,
                                     .sentence_dim = p->E, .nf = o->nf};
  return (p->head = rat_discriminator_head_build(m, o->head, ctx, &hc, error)) != NULL;
}

static RatTensor *dfd_encode(RatModule *m, RatTensor *images, RatTensor **emb) {
  const DfdOptions *o = RAT_MODULE_OPTIONS(m, DfdOptions);
  rat_check(images->ndim == 4 && images->shape[1] == 3 && images->shape[2] == o->image_size &&
                images->shape[3] == o->image_size,
            "%s: expected images [B,3,%" G_GINT64_FORMAT ",%" G_GINT64_FORMAT "] (set train.image_size or the "
            "generator's image_size to match)", m->path, o->image_size, o->image_size);
  if (emb) *emb = NULL;
  return images;
}

static RatTensor *dfd_features(RatModule *m, RatTensor *x) {
  DfdPriv *p = RAT_MODULE_PRIV(m, DfdPriv);
  RatTensor *h = rat_conv_layer(&p->conv_img, x);
  for (int k = 0; k < p->n; k++) {
    const DBlock *b = &p->blocks[k];
    RatTensor *r = rat_leaky_relu(rat_conv2d(h, b->w1, NULL, RAT_CONV_PARAMS(2, 1)), 0.2f);
    r = rat_leaky_relu(rat_conv2d(r, b->w2, NULL, RAT_CONV_PARAMS(1, 1)), 0.2f);
    RatTensor *s = b->learnable_sc ? rat_conv_layer(&b->sc, h) : h;
    h = rat_add(rat_avg_pool2d(s, 2, 2), rat_mul(b->gamma, r));
  }
  return h;
}

static RatTensor *dfd_logits(RatModule *m, RatTensor *f, RatTensor *s) {
  return rat_discriminator_head_logits(RAT_MODULE_PRIV(m, DfdPriv)->head, f, s);
}

static gboolean dfd_conditional(RatModule *m) {
  return rat_discriminator_head_conditional(RAT_MODULE_PRIV(m, DfdPriv)->head);
}

static gint64 dfd_image_size(RatModule *m) { return RAT_MODULE_OPTIONS(m, DfdOptions)->image_size; }

static RatTensor *dfd_example(RatModule *m, const RatBuildContext *ctx, GError **error) {
  RatRng r;
  rat_rng_init(&r, 1);
  gint64 S = dfd_image_size(m);
  RatTensor *x = dfd_encode(m, rat_randn(&r, RAT_SHAPE(1, 3, S, S)), NULL);
  return dfd_logits(m, dfd_features(m, x), rat_randn(&r, RAT_SHAPE(1, RAT_MODULE_PRIV(m, DfdPriv)->E)));
}

static const RatDiscriminatorIface dfd_iface = {.encode = dfd_encode, .features = dfd_features, .logits = dfd_logits,
                                                .image_size = dfd_image_size, .conditional = dfd_conditional};

static const RatModuleType dfd_type = {
    .struct_size = sizeof(RatModuleType),
    .name = "dfgan_discriminator",
    .kind = RAT_KIND_DISCRIMINATOR,
    .doc = "DF-GAN discriminator: conv_img, residual D_Blocks (stride-2 4x4 conv, gated by a learned gamma) down to "
           "4x4, and NetC (sentence tiled 4x4, 3x3 conv, 4x4 conv) (reference §5.5; DF-GAN code/models/GAN.py).",
    .args = dfd_args,
    .n_args = G_N_ELEMENTS(dfd_args),
    .options_size = sizeof(DfdOptions),
    .priv_size = sizeof(DfdPriv),
    .build = dfd_build,
    .check = dfd_check,
    .iface = &dfd_iface,
    .example_forward = dfd_example,
};

static gboolean dfgan_init(RatRegistry *reg, GError **error) {
  return rat_registry_add_type(reg, &dfg_type, error) && rat_registry_add_type(reg, &dfd_type, error);
}

RAT_PLUGIN_DEFINE("dfgan", "0.1.0", "MIT", "DF-GAN generator and discriminator", dfgan_init)
