/* galip_d: GALIP's CLIP-feature discriminator ("Mate-D", reused unchanged by RATLIP; reference §5.1-5.4).
 *
 *   encode:   w = CLIP input transform(x) (galip: nearest resize + the released double mapping; or standard)
 *             Fd = patch tokens (CLS dropped) after CLIP blocks taps[0..n)            [B, n, D, g, g]
 *             e  = ln_post(CLS) proj after the last block                             [B, E]  (similarity loss)
 *   features: o = Fd[:,0]; o = DBlock_k(o, Fd[:,k]) for k = 1..n-1 (D -> D, residual and CLIP-feature gates);
 *             o = main(o) (D -> 8 nf, residual gate only)                              [B, 8 nf, g, g]
 *       DBlock(x, F) = shortcut(x) + gamma r + beta F,  r = LReLU(conv3(LReLU(conv3(x)))), no biases;
 *       shortcut = 1x1 conv with bias when the widths differ; gamma, beta scalars starting at 0
 *   logits:   the `head` (discriminator_head kind, plugins/heads.c); released NetC (galip_netc):
 *             concat(o, s tiled g x g) -> conv k1 (-> 2 nf, no bias) -> LReLU -> conv k2 (-> 1, no bias)   [B]
 *             k1 + k2 - 1 = g (released g = 7: 4 and 4)
 * The CLIP is the text encoder's (frozen); gradients flow through it to the images (the generator step). */
#include <ratfw/layers.h>
#include <ratfw/ratfw.h>

#include <math.h>
#include <string.h>

#define MAX_TAPS 16

static const char *const transforms[] = {"galip", "standard", NULL};

typedef struct {
  gint64 nf;
  RatIntList taps;
  char *transform;
  RatModuleSpec *head;
} GdOptions;

static const RatArgSpec gd_args[] = {
    RAT_ARG_I(GdOptions, nf, "64", 1, 4096, "ndf: NetD ends at 8 nf channels, NetC's hidden conv has 2 nf"),
    RAT_ARG_L(GdOptions, taps, "[1, 4, 8]", 0, 1000, "CLIP blocks whose patch tokens feed NetD (increasing; released 1, 4, 8)"),
    RAT_ARG_C(GdOptions, transform, "galip", transforms,
              "CLIP input transform: galip (released: nearest resize, second [-1,1]->[0,1] mapping) or standard"),
    RAT_ARG_M(GdOptions, head, RAT_KIND_DISCRIMINATOR_HEAD, "galip_netc",
              "the head on NetD's [B, 8 nf, g, g] features (released: galip_netc; projection, unconditional...)"),
};

typedef struct {
  RatTensor *w1, *w2; /* 3x3 convs, no bias */
  RatConv sc;
  gboolean learnable_sc, clip_feat;
  RatTensor *gamma, *beta; /* [1] */
} DBlock;

typedef struct {
  RatClip *clip;
  gint64 D, grid, E;
  int taps[MAX_TAPS], n_taps;
  DBlock blocks[MAX_TAPS];
  DBlock main;
  RatModule *head; /* NetC by default */
} GdPriv;

static void dblock_init(RatModule *m, const RatBuildContext *ctx, const char *name, gint64 fin, gint64 fout,
                        gboolean clip_feat, DBlock *b) {
  char *n = g_strdup_printf("%s.conv_r.0.weight", name);
  b->w1 = rat_module_param(m, ctx, n, RAT_SHAPE(fout, fin, 3, 3));
  rat_init_kaiming_uniform_(ctx->rng, b->w1, sqrt(5.0));
  g_free(n);
  n = g_strdup_printf("%s.conv_r.2.weight", name);
  b->w2 = rat_module_param(m, ctx, n, RAT_SHAPE(fout, fout, 3, 3));
  rat_init_kaiming_uniform_(ctx->rng, b->w2, sqrt(5.0));
  g_free(n);
  /* the released D_Block constructs its 1x1 shortcut conv even when the widths agree (unused then); we do the
   * same so that parameter counts and converted checkpoints match */
  n = g_strdup_printf("%s.conv_s", name);
  rat_conv_layer_init(&b->sc, m, ctx, n, fin, fout, 1, 1, 0, TRUE);
  g_free(n);
  b->learnable_sc = fin != fout;
  b->clip_feat = clip_feat;
  n = g_strdup_printf("%s.gamma", name);
  b->gamma = rat_module_param(m, ctx, n, RAT_SHAPE(1)); /* zero */
  g_free(n);
  if (clip_feat) {
    n = g_strdup_printf("%s.beta", name);
    b->beta = rat_module_param(m, ctx, n, RAT_SHAPE(1));
    g_free(n);
  }
}

static RatTensor *dblock(const DBlock *b, RatTensor *x, RatTensor *F) {
  RatTensor *r = rat_leaky_relu(rat_conv2d(x, b->w1, NULL, RAT_CONV_PARAMS(1, 1)), 0.2f);
  r = rat_leaky_relu(rat_conv2d(r, b->w2, NULL, RAT_CONV_PARAMS(1, 1)), 0.2f);
  RatTensor *xs = b->learnable_sc ? rat_conv_layer(&b->sc, x) : x;
  RatTensor *out = rat_add(xs, rat_mul(b->gamma, r));
  if (b->clip_feat && F) out = rat_add(out, rat_mul(b->beta, F));
  return out;
}

static gboolean gd_check(const RatModuleType *type, const void *options, const RatBuildContext *ctx, GError **error) {
  const GdOptions *o = options;
  if (o->taps.n < 1 || o->taps.n > MAX_TAPS) {
    g_set_error(error, RAT_ERROR, RAT_ERROR_CONFIG, "galip_discriminator: taps needs 1..%d blocks", MAX_TAPS);
    return FALSE;
  }
  for (guint i = 1; i < o->taps.n; i++)
    if (o->taps.v[i] <= o->taps.v[i - 1]) {
      g_set_error(error, RAT_ERROR, RAT_ERROR_CONFIG, "galip_discriminator: taps must be increasing");
      return FALSE;
    }
  return TRUE;
}

static gboolean gd_build(RatModule *m, const RatBuildContext *ctx, GError **error) {
  const GdOptions *o = RAT_MODULE_OPTIONS(m, GdOptions);
  GdPriv *p = RAT_MODULE_PRIV(m, GdPriv);
  const RatGanContext *gc = ctx->user;
  if (!gc || !gc->clip) {
    g_set_error(error, RAT_ERROR, RAT_ERROR_CONFIG, "%s: galip_discriminator reads the text encoder's CLIP: give the "
                "experiment a model.text_encoder of type clip_text", m->path);
    return FALSE;
  }
  p->clip = gc->clip;
  const RatClipConfig *cc = rat_clip_config(p->clip);
  p->D = cc->vision_width;
  p->grid = cc->image_size / cc->vision_patch;
  p->E = gc->sentence_dim > 0 ? gc->sentence_dim : cc->embed_dim;
  p->n_taps = (int)o->taps.n;
  for (int k = 0; k < p->n_taps; k++) {
    p->taps[k] = (int)o->taps.v[k];
    if (p->taps[k] >= cc->vision_layers) {
      g_set_error(error, RAT_ERROR, RAT_ERROR_CONFIG, "%s: tap %d but the CLIP has %d vision blocks (0..%d)", m->path,
                  p->taps[k], cc->vision_layers, cc->vision_layers - 1);
      return FALSE;
    }
  }
  for (int k = 1; k < p->n_taps; k++) {
    char *n = g_strdup_printf("DBlocks.%d", k - 1);
    dblock_init(m, ctx, n, p->D, p->D, TRUE, &p->blocks[k - 1]);
    g_free(n);
  }
  dblock_init(m, ctx, "main", p->D, 8 * o->nf, FALSE, &p->main);
  RatDiscriminatorHeadContext hc = {.magic = RAT_DISCRIMINATOR_HEAD_CONTEXT_MAGIC, .channels = 8 * o->nf,
                                     .grid = p->grid, .sentence_dim = p->E, .nf = o->nf};
  return (p->head = rat_discriminator_head_build(m, o->head, ctx, &hc, error)) != NULL;
}

static RatTensor *gd_encode(RatModule *m, RatTensor *images, RatTensor **emb) {
  const GdOptions *o = RAT_MODULE_OPTIONS(m, GdOptions);
  GdPriv *p = RAT_MODULE_PRIV(m, GdPriv);
  int S = rat_clip_config(p->clip)->image_size;
  RatTensor *w = !strcmp(o->transform, "galip") ? rat_clip_transform_galip(images, S) : rat_clip_transform_standard(images, S);
  RatTensor *taps[MAX_TAPS];
  RatTensor *e = rat_clip_vision_taps(p->clip, w, p->taps, (guint)p->n_taps, taps);
  if (emb) *emb = e;
  gint64 B = images->shape[0], g = p->grid, T = 1 + g * g;
  RatTensor *fs[MAX_TAPS];
  for (int k = 0; k < p->n_taps; k++) {
    RatTensor *t = rat_transpose(rat_slice(taps[k], 1, 1, T), 1, 2); /* [B, D, g*g] */
    fs[k] = rat_reshape(rat_contiguous(t), RAT_SHAPE(B, 1, p->D, g, g));
  }
  return rat_concat(fs, (guint)p->n_taps, 1);
}

static RatTensor *gd_features(RatModule *m, RatTensor *x) {
  GdPriv *p = RAT_MODULE_PRIV(m, GdPriv);
  rat_check(x->ndim == 5 && x->shape[1] == p->n_taps && x->shape[2] == p->D, "%s: expected CLIP features [B,%d,%"
            G_GINT64_FORMAT ",g,g]", m->path, p->n_taps, p->D);
  RatTensor *o = rat_contiguous(rat_select(x, 1, 0));
  for (int k = 1; k < p->n_taps; k++) o = dblock(&p->blocks[k - 1], o, rat_contiguous(rat_select(x, 1, k)));
  return dblock(&p->main, o, NULL);
}

static RatTensor *gd_logits(RatModule *m, RatTensor *f, RatTensor *s) {
  return rat_discriminator_head_logits(RAT_MODULE_PRIV(m, GdPriv)->head, f, s);
}

static gboolean gd_conditional(RatModule *m) {
  return rat_discriminator_head_conditional(RAT_MODULE_PRIV(m, GdPriv)->head);
}

static gint64 gd_image_size(RatModule *m) { return 0; }

static RatTensor *gd_example(RatModule *m, const RatBuildContext *ctx, GError **error) {
  GdPriv *p = RAT_MODULE_PRIV(m, GdPriv);
  RatRng r;
  rat_rng_init(&r, 1);
  int S = rat_clip_config(p->clip)->image_size;
  RatTensor *x = gd_encode(m, rat_randn(&r, RAT_SHAPE(1, 3, S, S)), NULL);
  return gd_logits(m, gd_features(m, x), rat_randn(&r, RAT_SHAPE(1, p->E)));
}

static const RatDiscriminatorIface gd_iface = {.encode = gd_encode, .features = gd_features, .logits = gd_logits,
                                               .image_size = gd_image_size, .conditional = gd_conditional};

static const RatModuleType gd_type = {
    .struct_size = sizeof(RatModuleType),
    .name = "galip_discriminator",
    .kind = RAT_KIND_DISCRIMINATOR,
    .doc = "GALIP's discriminator: frozen CLIP ViT features tapped after chosen blocks, NetD residual blocks with CLIP "
           "feature gates, NetC text-conditioned head (reference §5).",
    .args = gd_args,
    .n_args = G_N_ELEMENTS(gd_args),
    .options_size = sizeof(GdOptions),
    .priv_size = sizeof(GdPriv),
    .build = gd_build,
    .check = gd_check,
    .iface = &gd_iface,
    .example_forward = gd_example,
};

static gboolean gd_init(RatRegistry *reg, GError **error) { return rat_registry_add_type(reg, &gd_type, error); }

RAT_PLUGIN_DEFINE("galip_d", "0.1.0", "MIT", "GALIP / RATLIP CLIP-feature discriminator", gd_init)
