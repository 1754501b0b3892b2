/* gblock: the G_Blocks of GALIP/RATLIP and DF-GAN as generator_block types (reference §2.5-2.6; GALIP.py G_Block,
 * DF-GAN code/models/GAN.py G_Block). Both compute, on a stage [in, in_size] -> [out, size]:
 *   h = up_nearest(h, size);  out = shortcut(h) + c2(fuse2(c1(fuse1(h, cond)), cond))
 *   fuseX(x, c) = LReLU_0.2(A1(LReLU_0.2(A0(x, c)), c)), A0, A1 from `fusion`; c1 (in -> out), c2 (out -> out) from
 *   `conv`; shortcut = 1x1 conv with bias when in != out, else identity.
 * galip_block upsamples to the stage's size (GALIP: 7 -> 8, ..., 128 -> 224); dfgan_block doubles it or, with
 * upsample: false, keeps it (DF-GAN's scale_factor=2 / upsample flag). The forward lives in core/gan/blocks.c. */
#include <ratfw/ratfw.h>

typedef struct {
  RatModuleSpec *fusion, *conv;
  gboolean upsample;
} GBlockOptions;

static const RatArgSpec galip_block_args[] = {
    RAT_ARG_M(GBlockOptions, fusion, RAT_KIND_CONDITIONER, "~",
              "the affines of fuse1 and fuse2 (~: the generator's block_fusion; GALIP/RATLIP affine)"),
    RAT_ARG_M(GBlockOptions, conv, RAT_KIND_BLOCK, "~", "c1 and c2 (~: the generator's block_conv; GALIP conv, "
              "RATLIP conv_shuffle)"),
};

static const RatArgSpec dfgan_block_args[] = {
    RAT_ARG_M(GBlockOptions, fusion, RAT_KIND_CONDITIONER, "~",
              "the affines of fuse1 and fuse2 (~: the generator's block_fusion; DF-GAN affine)"),
    RAT_ARG_M(GBlockOptions, conv, RAT_KIND_BLOCK, "~", "c1 and c2 (~: the generator's block_conv; DF-GAN conv)"),
    RAT_ARG_B(GBlockOptions, upsample, "true", "nearest x2 before the block (false: the stage keeps its size)"),
};

typedef struct {
  RatGBlock b;
  int size;
} GBlockPriv;

static gboolean gblock_build(RatModule *m, const RatBuildContext *ctx0, GError **error) {
  const GBlockOptions *o = RAT_MODULE_OPTIONS(m, GBlockOptions);
  GBlockPriv *p = RAT_MODULE_PRIV(m, GBlockPriv);
  const RatGeneratorBlockContext *bc = rat_generator_block_context(m, ctx0, error);
  if (!bc) return FALSE;
  if (m->type->args == dfgan_block_args && bc->size != (o->upsample ? 2 : 1) * bc->in_size) {
    g_set_error(error, RAT_ERROR, RAT_ERROR_CONFIG, "%s: dfgan_block %s its input (%" G_GINT64_FORMAT ") but the stage "
                "ends at %" G_GINT64_FORMAT "; use galip_block for other sizes, or set the stage's size", m->path,
                o->upsample ? "doubles" : "keeps (upsample: false)", bc->in_size, bc->size);
    return FALSE;
  }
  const RatModuleSpec *fusion = o->fusion ? o->fusion : bc->fusion, *conv = o->conv ? o->conv : bc->conv;
  if (!fusion || !conv) {
    g_set_error(error, RAT_ERROR, RAT_ERROR_CONFIG, "%s: no %s given and the generator has no default", m->path,
                fusion ? "conv" : "fusion");
    return FALSE;
  }
  p->size = (int)bc->size;
  RatBuildContext ctx = *ctx0;
  ctx.user = (gpointer)bc->gan; /* conditioners and convs see the generator's context, as before */
  ctx.cond_dim = bc->cond_dim;
  return rat_gblock_build(m, fusion, conv, &ctx, bc->in_channels, bc->out_channels, &p->b, error);
}

static RatTensor *gblock_forward(RatModule *m, RatTensor *h, RatTensor *cond, RatCondState *st) {
  GBlockPriv *p = RAT_MODULE_PRIV(m, GBlockPriv);
  return rat_gblock(&p->b, h, p->size, cond, st);
}

static const RatGeneratorBlockIface gblock_iface = {.forward = gblock_forward};

static const RatModuleType galip_block_type = {
    .struct_size = sizeof(RatModuleType),
    .name = "galip_block",
    .kind = RAT_KIND_GENERATOR_BLOCK,
    .doc = "GALIP/RATLIP G_Block: nearest upsampling to the stage's size, then shortcut(h) + c2(fuse2(c1(fuse1(h, c)), "
           "c)) with DF fusion blocks and slot-chosen convolutions (reference §2.5).",
    .args = galip_block_args,
    .n_args = G_N_ELEMENTS(galip_block_args),
    .options_size = sizeof(GBlockOptions),
    .priv_size = sizeof(GBlockPriv),
    .build = gblock_build,
    .iface = &gblock_iface,
};

static const RatModuleType dfgan_block_type = {
    .struct_size = sizeof(RatModuleType),
    .name = "dfgan_block",
    .kind = RAT_KIND_GENERATOR_BLOCK,
    .doc = "DF-GAN G_Block: nearest x2 (or none), then shortcut(h) + c2(fuse2(c1(fuse1(h, c)), c)) with DF fusion "
           "blocks and slot-chosen convolutions (reference §2.5-2.6; DF-GAN code/models/GAN.py).",
    .args = dfgan_block_args,
    .n_args = G_N_ELEMENTS(dfgan_block_args),
    .options_size = sizeof(GBlockOptions),
    .priv_size = sizeof(GBlockPriv),
    .build = gblock_build,
    .iface = &gblock_iface,
};

static gboolean gblock_init(RatRegistry *reg, GError **error) {
  return rat_registry_add_type(reg, &galip_block_type, error) && rat_registry_add_type(reg, &dfgan_block_type, error);
}

RAT_PLUGIN_DEFINE("gblock", "0.1.0", "MIT", "G_Blocks of GALIP/RATLIP and DF-GAN (generator_block kind)", gblock_init)
