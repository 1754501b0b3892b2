/* conv: a plain convolution as a block, for slots whose released module is an ordinary nn.Conv2d (GALIP's M-block
 * conv2 and G_Block c1/c2; RATLIP puts conv_shuffle there): Conv2d(channels -> out_channels, k x k, stride 1,
 * padding k/2, bias), PyTorch's default initialisation. */
#include <ratfw/layers.h>
#include <ratfw/ratfw.h>

typedef struct {
  gint64 kernel;
  gboolean bias;
} ConvOptions;

typedef struct {
  RatConv conv;
} ConvPriv;

static const RatArgSpec conv_args[] = {
    RAT_ARG_I(ConvOptions, kernel, "3", 1, 15, "kernel size k (odd; padding k/2)"),
    RAT_ARG_B(ConvOptions, bias, "true", "learnable bias"),
};

static gboolean conv_check(const RatModuleType *type, const void *options, const RatBuildContext *ctx, GError **error) {
  const ConvOptions *o = options;
  if (o->kernel % 2 == 0) {
    g_set_error(error, RAT_ERROR, RAT_ERROR_CONFIG, "conv: kernel must be odd (padding k/2 keeps the size), got %" G_GINT64_FORMAT,
                o->kernel);
    return FALSE;
  }
  return TRUE;
}

static gboolean conv_build(RatModule *m, const RatBuildContext *ctx, GError **error) {
  const ConvOptions *o = RAT_MODULE_OPTIONS(m, ConvOptions);
  if (ctx->channels <= 0) {
    g_set_error(error, RAT_ERROR, RAT_ERROR_CONFIG, "%s: conv needs the input channels from its parent", m->path);
    return FALSE;
  }
  gint64 out = ctx->out_channels > 0 ? ctx->out_channels : ctx->channels;
  rat_conv_layer_init(&RAT_MODULE_PRIV(m, ConvPriv)->conv, m, ctx, "conv", ctx->channels, out, (int)o->kernel, 1,
                      (int)o->kernel / 2, o->bias);
  return TRUE;
}

static RatTensor *conv_forward(RatModule *m, RatTensor *x) { return rat_conv_layer(&RAT_MODULE_PRIV(m, ConvPriv)->conv, x); }
static gboolean conv_batch_dependent(RatModule *m) { return FALSE; }

static const RatBlockIface conv_iface = {.forward = conv_forward, .batch_dependent = conv_batch_dependent};

static const RatModuleType conv_type = {
    .struct_size = sizeof(RatModuleType), .name = "conv", .kind = RAT_KIND_BLOCK,
    .doc = "Plain Conv2d(channels -> out_channels, k x k, padding k/2, bias): GALIP's convolutions in a block slot.",
    .args = conv_args, .n_args = G_N_ELEMENTS(conv_args), .options_size = sizeof(ConvOptions),
    .priv_size = sizeof(ConvPriv), .build = conv_build, .check = conv_check, .iface = &conv_iface};

static gboolean conv_init(RatRegistry *reg, GError **error) { return rat_registry_add_type(reg, &conv_type, error); }

RAT_PLUGIN_DEFINE("conv", "0.1.0", "MIT", "plain convolution block", conv_init)
