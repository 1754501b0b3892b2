/* upconv_block: an example generator_block plugin built out of tree (docs/writing-a-block.md). One stage:
 *   h = up_nearest(h, size)                                   [B, in, size, size]
 *   h = conv3x3(h) (in -> out, bias)                          [B, out, size, size]
 *   h = LReLU_0.2(A(h, cond))                                 A: a conditioner from the `fusion` slot
 * with no shortcut: a plain "upsample, convolve, modulate" stage (a StyleGAN-like block without noise). */
#include <ratfw/layers.h>
#include <ratfw/ratfw.h>

typedef struct {
  RatModuleSpec *fusion;
  double slope;
} UpconvOptions;

static const RatArgSpec upconv_args[] = {
    RAT_ARG_M(UpconvOptions, fusion, RAT_KIND_CONDITIONER, "~", "the conditioner (~: the generator's block_fusion)"),
    RAT_ARG_D(UpconvOptions, slope, "0.2", 0, 1, "negative slope of the LeakyReLU"),
};

typedef struct {
  RatConv conv;
  RatModule *cond;
  int size;
} UpconvPriv;

static gboolean upconv_build(RatModule *m, const RatBuildContext *ctx0, GError **error) {
  const UpconvOptions *o = RAT_MODULE_OPTIONS(m, UpconvOptions);
  UpconvPriv *p = RAT_MODULE_PRIV(m, UpconvPriv);
  /* what the generator tells its stage: channels, sizes, cond width, its default fusion spec */
  const RatGeneratorBlockContext *bc = rat_generator_block_context(m, ctx0, error);
  if (!bc) return FALSE;
  p->size = (int)bc->size;
  RatBuildContext ctx = *ctx0;
  ctx.user = (gpointer)bc->gan;
  ctx.cond_dim = bc->cond_dim;
  rat_conv_layer_init(&p->conv, m, &ctx, "conv", bc->in_channels, bc->out_channels, 3, 1, 1, TRUE);
  ctx.channels = bc->out_channels; /* the conditioner modulates the conv's output */
  ctx.out_channels = 0;
  p->cond = rat_module_build_child(m, o->fusion ? o->fusion : bc->fusion, "cond", RAT_KIND_CONDITIONER, &ctx, error);
  return p->cond != NULL;
}

static RatTensor *upconv_forward(RatModule *m, RatTensor *h, RatTensor *cond, RatCondState *state) {
  UpconvPriv *p = RAT_MODULE_PRIV(m, UpconvPriv);
  h = rat_conv_layer(&p->conv, rat_upsample_nearest(h, p->size, p->size));
  /* pass the generator's state on: a chained RAT carries its LSTM state through it */
  h = rat_conditioner_forward(p->cond, h, cond, state);
  return rat_leaky_relu(h, (float)RAT_MODULE_OPTIONS(m, UpconvOptions)->slope);
}

static const RatGeneratorBlockIface upconv_iface = {.forward = upconv_forward};

static const RatModuleType upconv_type = {
    .struct_size = sizeof(RatModuleType),
    .name = "upconv_block",
    .kind = RAT_KIND_GENERATOR_BLOCK,
    .doc = "Example block: nearest upsampling to the stage's size, conv3x3, a conditioner, LeakyReLU (no shortcut).",
    .args = upconv_args,
    .n_args = G_N_ELEMENTS(upconv_args),
    .options_size = sizeof(UpconvOptions),
    .priv_size = sizeof(UpconvPriv),
    .build = upconv_build,
    .iface = &upconv_iface,
};

static gboolean upconv_init(RatRegistry *reg, GError **error) { return rat_registry_add_type(reg, &upconv_type, error); }

RAT_PLUGIN_DEFINE("upconv_block", "1.0.0", "MIT", "upsample-conv-modulate generator block (example out-of-tree plugin)",
                  upconv_init)
