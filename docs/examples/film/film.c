/* FiLM conditioner, an example plugin built outside the ratfw tree (docs/writing-a-conditioner.md).
 * Feature-wise linear modulation (Perez et al., AAAI 2018, "FiLM: Visual Reasoning with a General Conditioning
 * Layer", eq. 1-3): gamma = W_g c + b_g, beta = W_b c + b_b, y = (1 + gamma) * x + beta, per channel. */
#include <ratfw/ratfw.h>

#include <gmodule.h>

/* 1. The options struct the argument table fills. */
typedef struct {
  gboolean shift;   /* learn beta (else beta = 0) */
  double gain;      /* scales gamma and beta */
} FilmOptions;

/* 2. The argument table: YAML keys, defaults, ranges and one-line docs (validation, `ratfw plugins film`). */
static const RatArgSpec film_args[] = {
    RAT_ARG_B(FilmOptions, shift, "true", "learn the additive term beta"),
    RAT_ARG_D(FilmOptions, gain, "1.0", 0, 100, "scale of gamma and beta"),
};

/* 3. Private state: the parameters this instance created. */
typedef struct {
  RatTensor *w_gamma, *b_gamma, *w_beta, *b_beta; /* [C, D], [C]: owned by the parameter arena */
  gint64 channels;
} FilmPriv;

/* 4. build(): create parameters from the structural sizes the parent passes in the build context. */
static gboolean film_build(RatModule *m, const RatBuildContext *ctx, GError **error) {
  FilmPriv *p = RAT_MODULE_PRIV(m, FilmPriv);
  if (ctx->channels <= 0 || ctx->cond_dim <= 0) {
    g_set_error(error, RAT_ERROR, RAT_ERROR_CONFIG, "film needs channels and cond_dim (got %" G_GINT64_FORMAT
                " and %" G_GINT64_FORMAT ")", ctx->channels, ctx->cond_dim);
    return FALSE;
  }
  p->channels = ctx->channels;
  /* named <module path>.gamma.weight etc. in ctx->params; nn.Linear's default initialisation */
  p->w_gamma = rat_module_param(m, ctx, "gamma.weight", RAT_SHAPE(ctx->channels, ctx->cond_dim));
  p->b_gamma = rat_module_param(m, ctx, "gamma.bias", RAT_SHAPE(ctx->channels));
  rat_init_torch_default_(ctx->rng, p->w_gamma, p->b_gamma);
  if (RAT_MODULE_OPTIONS(m, FilmOptions)->shift) {
    p->w_beta = rat_module_param(m, ctx, "beta.weight", RAT_SHAPE(ctx->channels, ctx->cond_dim));
    p->b_beta = rat_module_param(m, ctx, "beta.bias", RAT_SHAPE(ctx->channels));
    rat_init_torch_default_(ctx->rng, p->w_beta, p->b_beta);
  }
  return TRUE;
}

/* 5. forward(): only differentiable core ops, so autograd (and MA-GP's double backward) works unchanged. */
static RatTensor *film_forward(RatModule *m, RatTensor *x, RatTensor *cond, RatCondState *state) {
  const FilmOptions *o = RAT_MODULE_OPTIONS(m, FilmOptions);
  FilmPriv *p = RAT_MODULE_PRIV(m, FilmPriv);
  gint64 B = rat_tensor_dim(cond, 0);
  RatTensor *gamma = rat_mul_scalar(rat_linear(cond, p->w_gamma, p->b_gamma), (float)o->gain); /* [B, C] */
  RatTensor *y = rat_mul(x, rat_add_scalar(rat_reshape(gamma, RAT_SHAPE(B, p->channels, 1, 1)), 1.0f));
  if (o->shift) {
    RatTensor *beta = rat_mul_scalar(rat_linear(cond, p->w_beta, p->b_beta), (float)o->gain);
    y = rat_add(y, rat_reshape(beta, RAT_SHAPE(B, p->channels, 1, 1)));
  }
  (void)state; /* FiLM is stateless */
  return y;
}

/* Each sample is modulated by its own condition only. */
static gboolean film_batch_dependent(RatModule *m G_GNUC_UNUSED) { return FALSE; }

static const RatConditionerIface film_iface = {.forward = film_forward, .batch_dependent = film_batch_dependent};

/* 6. The module type: data, registered by the plugin's init. */
static const RatModuleType film_type = {
    .struct_size = sizeof(RatModuleType),
    .name = "film",
    .kind = RAT_KIND_CONDITIONER,
    .doc = "FiLM: y = (1 + gain * (W_g c + b_g)) * x + gain * (W_b c + b_b), per channel (Perez et al. 2018).",
    .args = film_args,
    .n_args = G_N_ELEMENTS(film_args),
    .options_size = sizeof(FilmOptions),
    .priv_size = sizeof(FilmPriv),
    .build = film_build,
    .iface = &film_iface,
};

static gboolean film_init(RatRegistry *reg, GError **error) { return rat_registry_add_type(reg, &film_type, error); }

/* 7. The entry point: the name must equal the file's base name (film.so). */
RAT_PLUGIN_DEFINE("film", "1.0.0", "MIT", "FiLM conditioner (example out-of-tree plugin)", film_init)
