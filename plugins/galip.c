/* galip: the GALIP generator (Tao et al. 2023, "Mate-G") and, through its slots, RATLIP's (reference §1-2).
 *
 *   cond = [z ; s]                                                                 [B, z_dim + E]
 *   h = reshape(fc_code(z))                                                        [B, code_ch, g, g]
 *   4 M-blocks:  h = h + fuse2(conv2(fuse1(conv1(h), cond)), cond)                 (64 -> 32 -> 64 channels)
 *       fuseX(x, c) = LReLU_0.2(A1(LReLU_0.2(A0(x, c)), c))  with A0, A1 from the `adapter_fusion` slot
 *       conv2 from the `adapter_conv` slot (GALIP: plain conv; RATLIP: conv_shuffle)
 *   F = conv_fuse(h) (5x5)                                                         [B, D, g, g]   bridge feature
 *   prompts = fc_prompt(cond)                                                      [B, P, D]
 *   M = frozen CLIP ViT blocks on [cls; F tokens] + pos (ln_pre), prompt j appended as an extra token at block
 *       prompt_blocks[j] and dropped after it; patch tokens of the last block            [B, D, g, g]
 *   h = conv(F + bridge_scale * M) (5x5)                                           [B, 8 nf, g, g]
 *   stages (generator_block children "blocks.<k>", galip_block by default, gan.h):
 *       G_Block: h = up(h); h = shortcut(h) + c2(fuse2(c1(fuse1(h, cond)), cond))   (targets 8 .. image_size)
 *       fusion from `block_fusion`, c1/c2 from `block_conv` unless the block names its own
 *       released plan: sizes every power of two above g and below S, then S; channels 8 nf then
 *       nf min(2^i, 8) for i = n-1 .. 0
 *   x = conv_rgb(LReLU_0.2(h)) (3x3), no tanh as released                          [B, 3, S, S]
 *
 * g and D are the CLIP's grid and vision width (7 and 768 for ViT-B/32); the CLIP is the text encoder's, frozen,
 * passed in RatGanContext; gradients flow through it into conv_fuse, the M-blocks and fc_prompt.
 * Released RATLIP = adapter_fusion {type: rat, hidden: 64, recurrence: batch_sequence}, adapter_conv and block_conv
 * {type: conv_shuffle}; GALIP = the defaults (affine, conv). */
#include <ratfw/layers.h>
#include <ratfw/ratfw.h>

#include <string.h>

#define MAX_MAP 16
#define MAX_GBLOCKS 12
#define MAX_PROMPTS 64

typedef struct {
  gint64 nf, z_dim, code_channels, mid_channels, map_num, image_size;
  RatIntList prompt_blocks;
  double bridge_scale;
  gboolean tanh;
  RatModuleSpec *adapter_fusion, *adapter_conv, *block_fusion, *block_conv, *block;
  RatStageList stages;
} GalipOptions;

static const RatArgSpec galip_args[] = {
    RAT_ARG_I(GalipOptions, nf, "64", 1, 4096, "base width ngf: adapter output 8 nf, last G_Block nf"),
    RAT_ARG_I(GalipOptions, z_dim, "100", 1, 4096, "noise size"),
    RAT_ARG_I(GalipOptions, code_channels, "64", 1, 4096, "channels of the noise code and the M-blocks"),
    RAT_ARG_I(GalipOptions, mid_channels, "32", 1, 4096, "middle channels of each M-block"),
    RAT_ARG_I(GalipOptions, map_num, "4", 1, MAX_MAP, "M-blocks of the CLIP adapter"),
    RAT_ARG_I(GalipOptions, image_size, "224", 8, 4096,
              "output side S (released: 224 for 256 px data); G_Blocks upsample to every power of two above the "
              "CLIP grid and below S, then to S"),
    RAT_ARG_L(GalipOptions, prompt_blocks, "[1, 2, 3, 4, 5, 6, 7, 8]", 0, 1000,
              "CLIP blocks that see a predicted prompt token (increasing; released 1..8)"),
    RAT_ARG_D(GalipOptions, bridge_scale, "0.1", RAT_ARG_NO_LIMIT, RAT_ARG_NO_LIMIT, "weight of the CLIP output M in F + w M"),
    RAT_ARG_B(GalipOptions, tanh, "false", "tanh on the output (released GALIP/RATLIP: none; clamped at sampling)"),
    RAT_ARG_M(GalipOptions, adapter_fusion, RAT_KIND_CONDITIONER, "affine",
              "the affines of the M-blocks' fusion blocks (GALIP affine; RATLIP rat)"),
    RAT_ARG_M(GalipOptions, adapter_conv, RAT_KIND_BLOCK, "conv", "the M-blocks' second conv (GALIP conv; RATLIP conv_shuffle)"),
    RAT_ARG_M(GalipOptions, block_fusion, RAT_KIND_CONDITIONER, "affine", "the affines of the G_Blocks' fusion blocks"),
    RAT_ARG_M(GalipOptions, block_conv, RAT_KIND_BLOCK, "conv", "the G_Blocks' c1 and c2 (GALIP conv; RATLIP conv_shuffle)"),
    RAT_ARG_M(GalipOptions, block, RAT_KIND_GENERATOR_BLOCK, "galip_block",
              "the block of every stage that names none (its fusion/conv default to block_fusion/block_conv)"),
    RAT_ARG_STAGE_LIST(GalipOptions, stages, RAT_KIND_GENERATOR_BLOCK,
                       "the trunk after the CLIP adapter: ~ = the released plan (see the type's doc), or a list "
                       "[{out: 512, size: 8, block: {type: galip_block}}, ...] from 8 nf channels at the CLIP grid "
                       "to image_size"),
};

typedef struct {
  RatConv conv1;
  RatModule *conv2;
  RatFuseBlock fuse1, fuse2;
} MBlock;

typedef struct {
  RatClip *clip;
  gint64 D, grid, E, cond_dim;
  RatLinear fc_code, fc_prompt;
  MBlock m[MAX_MAP];
  RatConv conv_fuse, conv;
  RatGanStages stages;
  RatConv to_rgb;
  int prompt_at[1024]; /* CLIP block -> prompt index + 1 (0: none) */
} GalipPriv;

/* The G_Block plan for a CLIP grid g and output side S: targets every power of two p with g < p < S, then S;
 * channels [8 nf] + [nf min(2^i, 8) for i = n-1 .. 0] (224 with g = 7: 8,16,32,64,128,224 and
 * 512,512,512,512,256,128,64 as released). */
static guint plan(gint64 grid, gint64 S, gint64 nf, gint64 *sizes, gint64 *chans) {
  guint n = 0;
  for (gint64 p = 1; p < S && n < MAX_GBLOCKS; p *= 2)
    if (p > grid) sizes[n++] = p;
  if (n < MAX_GBLOCKS) sizes[n++] = S;
  chans[0] = 8 * nf;
  for (guint k = 1; k <= n; k++) chans[k] = nf * MIN((gint64)1 << (n - k), 8);
  return n;
}

static gboolean galip_check(const RatModuleType *type, const void *options, const RatBuildContext *ctx, GError **error) {
  const GalipOptions *o = options;
  for (guint i = 1; i < o->prompt_blocks.n; i++)
    if (o->prompt_blocks.v[i] <= o->prompt_blocks.v[i - 1]) {
      g_set_error(error, RAT_ERROR, RAT_ERROR_CONFIG, "galip_generator: prompt_blocks must be increasing");
      return FALSE;
    }
  if (o->prompt_blocks.n > MAX_PROMPTS) {
    g_set_error(error, RAT_ERROR, RAT_ERROR_CONFIG, "galip_generator: at most %d prompt blocks", MAX_PROMPTS);
    return FALSE;
  }
  return TRUE;
}

static gboolean galip_build(RatModule *m, const RatBuildContext *ctx0, GError **error) {
  const GalipOptions *o = RAT_MODULE_OPTIONS(m, GalipOptions);
  GalipPriv *p = RAT_MODULE_PRIV(m, GalipPriv);
  const RatGanContext *gc = ctx0->user;
  if (!gc || !gc->clip) {
    g_set_error(error, RAT_ERROR, RAT_ERROR_CONFIG, "%s: galip_generator runs the text encoder's CLIP: give the "
                "experiment a model.text_encoder of type clip_text", m->path);
    return FALSE;
  }
  p->clip = gc->clip;
  const RatClipConfig *cc = rat_clip_config(p->clip);
  p->D = cc->vision_width;
  p->grid = cc->image_size / cc->vision_patch;
  p->E = gc->sentence_dim > 0 ? gc->sentence_dim : cc->embed_dim;
  p->cond_dim = o->z_dim + p->E;
  for (guint j = 0; j < o->prompt_blocks.n; j++) {
    if (o->prompt_blocks.v[j] >= cc->vision_layers) {
      g_set_error(error, RAT_ERROR, RAT_ERROR_CONFIG, "%s: prompt block %" G_GINT64_FORMAT " but the CLIP has %d vision "
                  "blocks (0..%d)", m->path, o->prompt_blocks.v[j], cc->vision_layers, cc->vision_layers - 1);
      return FALSE;
    }
    p->prompt_at[o->prompt_blocks.v[j]] = (int)j + 1;
  }
  if (o->image_size <= p->grid) {
    g_set_error(error, RAT_ERROR, RAT_ERROR_CONFIG, "%s: image_size %" G_GINT64_FORMAT " must exceed the CLIP grid %" G_GINT64_FORMAT,
                m->path, o->image_size, p->grid);
    return FALSE;
  }
  RatBuildContext ctx = *ctx0;
  ctx.cond_dim = p->cond_dim;
  ctx.z_dim = o->z_dim;
  gint64 g = p->grid, cc_ch = o->code_channels;
  rat_linear_layer_init(&p->fc_code, m, &ctx, "fc_code", o->z_dim, cc_ch * g * g, TRUE);
  for (int k = 0; k < o->map_num; k++) {
    MBlock *b = &p->m[k];
    char *n = g_strdup_printf("mapping.%d.conv1", k);
    rat_conv_layer_init(&b->conv1, m, &ctx, n, cc_ch, o->mid_channels, 3, 1, 1, TRUE);
    g_free(n);
    n = g_strdup_printf("mapping.%d.fuse1", k);
    gboolean ok = rat_fuse_block_build(m, o->adapter_fusion, n, &ctx, o->mid_channels, &b->fuse1, error);
    g_free(n);
    if (!ok) return FALSE;
    n = g_strdup_printf("mapping.%d.conv2", k);
    b->conv2 = rat_gan_slot_block_build(m, o->adapter_conv, n, &ctx, o->mid_channels, cc_ch, error);
    g_free(n);
    if (!b->conv2) return FALSE;
    n = g_strdup_printf("mapping.%d.fuse2", k);
    ok = rat_fuse_block_build(m, o->adapter_fusion, n, &ctx, cc_ch, &b->fuse2, error);
    g_free(n);
    if (!ok) return FALSE;
  }
  rat_conv_layer_init(&p->conv_fuse, m, &ctx, "mapping.conv_fuse", cc_ch, p->D, 5, 1, 2, TRUE);
  if (o->prompt_blocks.n)
    rat_linear_layer_init(&p->fc_prompt, m, &ctx, "mapping.fc_prompt", p->cond_dim, (gint64)o->prompt_blocks.n * p->D, TRUE);
  rat_conv_layer_init(&p->conv, m, &ctx, "mapping.conv", p->D, 8 * o->nf, 5, 1, 2, TRUE);
  gint64 sizes[MAX_GBLOCKS], chans[MAX_GBLOCKS + 1];
  guint n_plan = plan(g, o->image_size, o->nf, sizes, chans);
  if (!rat_gan_stages_build(m, &ctx, &o->stages, o->block, o->block_fusion, o->block_conv, 8 * o->nf, g,
                            o->image_size, n_plan, chans + 1, sizes, &p->stages, error))
    return FALSE;
  rat_conv_layer_init(&p->to_rgb, m, &ctx, "to_rgb", p->stages.out[p->stages.n - 1], 3, 3, 1, 1, TRUE);
  return TRUE;
}

/* The frozen CLIP on the bridge feature F [B,D,g,g] with prompts [B,P,D] -> M [B,D,g,g]. */
static RatTensor *clip_mapper(GalipPriv *p, RatTensor *F, RatTensor *prompts) {
  gint64 B = F->shape[0], D = p->D, g = p->grid, T = 1 + g * g;
  RatTensor *x = rat_clip_vision_tokens(p->clip, rat_transpose(rat_reshape(F, RAT_SHAPE(B, D, g * g)), 1, 2));
  int L = rat_clip_config(p->clip)->vision_layers;
  for (int i = 0; i < L; i++) {
    int j = p->prompt_at[i];
    if (j) {
      RatTensor *parts[2] = {x, rat_slice(prompts, 1, j - 1, j)};
      x = rat_slice(rat_clip_vision_block(p->clip, i, rat_concat(parts, 2, 1)), 1, 0, T);
    } else {
      x = rat_clip_vision_block(p->clip, i, x);
    }
  }
  RatTensor *patches = rat_slice(x, 1, 1, T); /* [B, g*g, D] */
  return rat_reshape(rat_contiguous(rat_transpose(patches, 1, 2)), RAT_SHAPE(B, D, g, g));
}

static RatTensor *galip_forward(RatModule *m, RatTensor *z, RatTensor *s) {
  const GalipOptions *o = RAT_MODULE_OPTIONS(m, GalipOptions);
  GalipPriv *p = RAT_MODULE_PRIV(m, GalipPriv);
  rat_check(z->ndim == 2 && z->shape[1] == o->z_dim && s->ndim == 2 && s->shape[1] == p->E && s->shape[0] == z->shape[0],
            "%s: expected z [B,%" G_GINT64_FORMAT "] and sentence [B,%" G_GINT64_FORMAT "]", m->path, o->z_dim, p->E);
  gint64 B = z->shape[0], g = p->grid;
  RatTensor *parts[2] = {z, s};
  RatTensor *cond = rat_concat(parts, 2, 1);
  RatCondState *st = rat_cond_state_new();
  rat_cond_state_set_noise(st, z);
  RatTensor *h = rat_reshape(rat_linear_layer(&p->fc_code, z), RAT_SHAPE(B, o->code_channels, g, g));
  for (int k = 0; k < o->map_num; k++) {
    MBlock *b = &p->m[k];
    RatTensor *r = rat_fuse_block(&b->fuse1, rat_conv_layer(&b->conv1, h), cond, st);
    r = rat_fuse_block(&b->fuse2, rat_block_forward(b->conv2, r), cond, st);
    h = rat_add(h, r);
  }
  RatTensor *F = rat_conv_layer(&p->conv_fuse, h);
  RatTensor *prompts = o->prompt_blocks.n ? rat_reshape(rat_linear_layer(&p->fc_prompt, cond),
                                                        RAT_SHAPE(B, (gint64)o->prompt_blocks.n, p->D))
                                          : NULL;
  RatTensor *M = clip_mapper(p, F, prompts);
  h = rat_conv_layer(&p->conv, rat_add(F, rat_mul_scalar(M, (float)o->bridge_scale)));
  h = rat_gan_stages_forward(&p->stages, h, cond, st);
  rat_cond_state_free(st);
  RatTensor *x = rat_conv_layer(&p->to_rgb, rat_leaky_relu(h, 0.2f));
  return o->tanh ? rat_tanh(x) : x;
}

static gint64 galip_z_dim(RatModule *m) { return RAT_MODULE_OPTIONS(m, GalipOptions)->z_dim; }
static gint64 galip_image_size(RatModule *m) { return RAT_MODULE_OPTIONS(m, GalipOptions)->image_size; }

static RatTensor *galip_example(RatModule *m, const RatBuildContext *ctx, GError **error) {
  GalipPriv *p = RAT_MODULE_PRIV(m, GalipPriv);
  RatRng r;
  rat_rng_init(&r, 1);
  return galip_forward(m, rat_randn(&r, RAT_SHAPE(1, galip_z_dim(m))), rat_randn(&r, RAT_SHAPE(1, p->E)));
}

static const RatGeneratorIface galip_iface = {.forward = galip_forward, .z_dim = galip_z_dim, .image_size = galip_image_size};

static const RatModuleType galip_type = {
    .struct_size = sizeof(RatModuleType),
    .name = "galip_generator",
    .kind = RAT_KIND_GENERATOR,
    .doc = "GALIP generator (noise code, CLIP adapter with fusion M-blocks, bridge feature, prompt predictor, frozen "
           "CLIP ViT with prompts, G_Blocks to image_size); RATLIP through its slots (reference §2).",
    .args = galip_args,
    .n_args = G_N_ELEMENTS(galip_args),
    .options_size = sizeof(GalipOptions),
    .priv_size = sizeof(GalipPriv),
    .build = galip_build,
    .check = galip_check,
    .iface = &galip_iface,
    .example_forward = galip_example,
};

static gboolean galip_init(RatRegistry *reg, GError **error) { return rat_registry_add_type(reg, &galip_type, error); }

RAT_PLUGIN_DEFINE("galip", "0.1.0", "MIT", "GALIP / RATLIP generator", galip_init)
