/* concat_head: an example discriminator_head plugin built out of tree (docs/writing-a-head.md). The concatenation
 * head of Reed et al. 2016 (GAN-INT-CLS) on pooled features:
 *   phi = mean_hw(f)                                          [B, C]
 *   h = LReLU_0.2(W1 [phi ; s] + b1)                          [B, hidden]
 *   logit = w2 . h + b2                                       [B]
 * Composed of differentiable core ops, so MA-GP's double backward runs through it. */
#include <ratfw/layers.h>
#include <ratfw/ratfw.h>

typedef struct {
  gint64 hidden;
} ConcatOptions;

static const RatArgSpec concat_args[] = {
    RAT_ARG_I(ConcatOptions, hidden, "64", 1, 1 << 16, "width of the hidden layer"),
};

typedef struct {
  RatLinear fc1, fc2;
} ConcatPriv;

static gboolean concat_build(RatModule *m, const RatBuildContext *ctx, GError **error) {
  /* what the discriminator tells its head: feature channels and side, sentence width, its nf */
  const RatDiscriminatorHeadContext *hc = rat_discriminator_head_context(m, ctx, error);
  if (!hc) return FALSE;
  ConcatPriv *p = RAT_MODULE_PRIV(m, ConcatPriv);
  gint64 hidden = RAT_MODULE_OPTIONS(m, ConcatOptions)->hidden;
  rat_linear_layer_init(&p->fc1, m, ctx, "fc1", hc->channels + hc->sentence_dim, hidden, TRUE);
  rat_linear_layer_init(&p->fc2, m, ctx, "fc2", hidden, 1, TRUE);
  return TRUE;
}

static RatTensor *concat_logits(RatModule *m, RatTensor *f, RatTensor *s) {
  ConcatPriv *p = RAT_MODULE_PRIV(m, ConcatPriv);
  RatTensor *parts[2] = {rat_mean(f, RAT_AXIS(2) | RAT_AXIS(3), FALSE), s};
  RatTensor *h = rat_leaky_relu(rat_linear_layer(&p->fc1, rat_concat(parts, 2, 1)), 0.2f);
  return rat_reshape(rat_linear_layer(&p->fc2, h), RAT_SHAPE(f->shape[0]));
}

/* .name is the child name (and parameter prefix) the discriminator gives the head; conditional NULL = reads s */
static const RatDiscriminatorHeadIface concat_iface = {.name = "head", .logits = concat_logits};

static const RatModuleType concat_type = {
    .struct_size = sizeof(RatModuleType),
    .name = "concat_head",
    .kind = RAT_KIND_DISCRIMINATOR_HEAD,
    .doc = "Example head: an MLP on the concatenation of mean-pooled features and the sentence (Reed et al. 2016).",
    .args = concat_args,
    .n_args = G_N_ELEMENTS(concat_args),
    .options_size = sizeof(ConcatOptions),
    .priv_size = sizeof(ConcatPriv),
    .build = concat_build,
    .iface = &concat_iface,
};

static gboolean concat_init(RatRegistry *reg, GError **error) { return rat_registry_add_type(reg, &concat_type, error); }

RAT_PLUGIN_DEFINE("concat_head", "1.0.0", "MIT", "concatenation discriminator head (example out-of-tree plugin)",
                  concat_init)
