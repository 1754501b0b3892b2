/* clip: module types that put a CLIP (core/clip/clip.c, reference §10) into an experiment. `clip_text` encodes
 * token ids to sentence embeddings; `clip_image` encodes [-1,1] images through the GALIP transform (the released
 * default, §5.1) or the standard one. Weights: a Hugging Face model.safetensors (or its directory), an OpenAI
 * state dict in safetensors, or the run directory of `pretrain_clip`; frozen by default (gradients still reach
 * the inputs, as GALIP's generator step needs). */
#include <ratfw/ratfw.h>

#include <string.h>

static const char *const transforms[] = {"galip", "standard", NULL};

static const char *const architectures[] = {"", "vit-b32", NULL};

typedef struct {
  char *weights;
  char *vocab;
  char *transform;
  gboolean frozen;
  char *architecture;
} ClipOptions;

typedef struct {
  RatClip *clip;
  gint32 eot;
  RatTokenizer *tok; /* NULL when no vocabulary was found (ids must then come from elsewhere) */
} ClipPriv;

static const RatArgSpec clip_args[] = {
    RAT_ARG_P(ClipOptions, weights, "", "CLIP weights: model.safetensors (Hugging Face or OpenAI names) or a directory "
              "with it (a pretrain_clip run directory works); required unless `architecture` is set"),
    RAT_ARG_P(ClipOptions, vocab, "", "tokenizer (text): a ratfw word tokenizer .json; empty = the weights directory's "
              "tokenizer.json if present, else CLIP BPE (end token = largest id)"),
    RAT_ARG_C(ClipOptions, transform, "galip", transforms, "image transform: galip (released quirk) or standard"),
    RAT_ARG_B(ClipOptions, frozen, "true", "frozen parameters take no gradient (they still pass it on)"),
    RAT_ARG_C(ClipOptions, architecture, "", architectures,
              "with no weights: build this architecture with random weights (for `ratfw inspect` and benchmarks "
              "of the paper configurations without downloading CLIP; never for training)"),
};

static gboolean clip_check(const RatModuleType *type, const void *options, const RatBuildContext *ctx, GError **error) {
  const ClipOptions *o = options;
  if ((!o->weights || !*o->weights) && (!o->architecture || !*o->architecture)) {
    g_set_error(error, RAT_ERROR, RAT_ERROR_CONFIG,
                "%s needs `weights:` (a CLIP model.safetensors or its directory, e.g. a pretrain_clip run) or "
                "`architecture: vit-b32` for random weights", type->name);
    return FALSE;
  }
  return TRUE;
}

static gboolean clip_build(RatModule *m, const RatBuildContext *ctx, GError **error) {
  const ClipOptions *o = RAT_MODULE_OPTIONS(m, ClipOptions);
  ClipPriv *p = RAT_MODULE_PRIV(m, ClipPriv);
  RatClipConfig cfg;
  gboolean random = !o->weights || !*o->weights;
  if (random) cfg = rat_clip_config_vit_b32();
  else if (!rat_clip_config_from_file(o->weights, &cfg, error)) return FALSE;
  char *prefix = g_strdup_printf("%s.", m->path);
  guint before = rat_params_size(ctx->params);
  p->clip = rat_clip_new(&cfg, ctx->params, prefix, o->frozen ? RAT_PARAM_FROZEN : RAT_PARAM_TRAINABLE);
  g_free(prefix);
  /* the module owns what the CLIP created (for parameter counts and checkpoints) */
  for (guint i = before; i < rat_params_size(ctx->params); i++) g_ptr_array_add(m->params, rat_params_tensor(ctx->params, i));
  /* weights are loaded into the parameters now, before the arena is finalized: rat_clip_load copies values */
  if (random) {
    rat_clip_init_random(p->clip, ctx->rng ? ctx->rng : &(RatRng){0});
    p->eot = -1;
    return TRUE;
  }
  if (!rat_clip_load(p->clip, o->weights, error)) return FALSE;
  p->eot = -1;
  /* The tokenizer: `vocab` if given (a ratfw word tokenizer .json, else CLIP BPE: the .txt.gz or a directory with
   * vocab.json + merges.txt); otherwise the weights directory's tokenizer.json (pretrain_clip runs) or its
   * vocab.json + merges.txt (Hugging Face); otherwise none (callers must bring their own ids). */
  char *tp = NULL;
  gboolean bpe = FALSE;
  if (o->vocab && *o->vocab) {
    tp = g_strdup(o->vocab);
    bpe = !g_str_has_suffix(tp, ".json");
  } else if (g_file_test(o->weights, G_FILE_TEST_IS_DIR)) {
    char *tj = g_build_filename(o->weights, "tokenizer.json", NULL), *vj = g_build_filename(o->weights, "vocab.json", NULL);
    if (g_file_test(tj, G_FILE_TEST_EXISTS)) tp = g_strdup(tj);
    else if (g_file_test(vj, G_FILE_TEST_EXISTS)) tp = g_strdup(o->weights), bpe = TRUE;
    g_free(tj);
    g_free(vj);
  }
  if (tp) {
    p->tok = bpe ? rat_tokenizer_load_bpe(tp, error) : rat_tokenizer_load(tp, error);
    g_free(tp);
    if (!p->tok) return FALSE;
    if (!bpe) p->eot = rat_tokenizer_eot_id(p->tok);
  }
  return TRUE;
}

static void clip_finalize(RatModule *m) {
  ClipPriv *p = RAT_MODULE_PRIV(m, ClipPriv);
  rat_clip_free(p->clip);
  if (p->tok) rat_tokenizer_free(p->tok);
}

static RatTokenizer *tokenizer_of(RatModule *m) { return RAT_MODULE_PRIV(m, ClipPriv)->tok; }

static RatClip *clip_of(RatModule *m) { return RAT_MODULE_PRIV(m, ClipPriv)->clip; }

static RatTensor *text_encode(RatModule *m, RatTensor *ids) {
  rat_module_enter(m);
  RatTensor *y = rat_clip_encode_text_eot(clip_of(m), ids, RAT_MODULE_PRIV(m, ClipPriv)->eot);
  rat_module_leave(m, y);
  return y;
}

static RatTensor *image_encode(RatModule *m, RatTensor *images) {
  const ClipOptions *o = RAT_MODULE_OPTIONS(m, ClipOptions);
  int S = rat_clip_config(clip_of(m))->image_size;
  rat_module_enter(m);
  RatTensor *x = !strcmp(o->transform, "galip") ? rat_clip_transform_galip(images, S) : rat_clip_transform_standard(images, S);
  RatTensor *y = rat_clip_encode_image(clip_of(m), x);
  rat_module_leave(m, y);
  return y;
}

static RatTensor *text_example(RatModule *m, const RatBuildContext *ctx, GError **error) {
  int L = rat_clip_config(clip_of(m))->context_length;
  RatTensor *ii = rat_empty_dtype(RAT_DTYPE_I32, RAT_SHAPE(1, L));
  rat_tensor_fill_(ii, 0);
  gint32 *p = rat_tensor_data_i32(ii);
  p[0] = 1;
  p[1] = RAT_MODULE_PRIV(m, ClipPriv)->eot >= 0 ? RAT_MODULE_PRIV(m, ClipPriv)->eot : rat_clip_config(clip_of(m))->vocab_size - 1;
  return text_encode(m, ii);
}

static RatTensor *image_example(RatModule *m, const RatBuildContext *ctx, GError **error) {
  int S = rat_clip_config(clip_of(m))->image_size;
  return image_encode(m, rat_zeros(RAT_SHAPE(1, 3, S, S)));
}

static const RatTextEncoderIface text_iface = {.encode = text_encode, .clip = clip_of, .tokenizer = tokenizer_of};
static const RatImageEncoderIface image_iface = {.encode = image_encode, .clip = clip_of};

static const RatModuleType text_type = {
    .struct_size = sizeof(RatModuleType), .name = "clip_text", .kind = RAT_KIND_TEXT_ENCODER,
    .doc = "CLIP text tower: token ids -> sentence embedding (EOT pooling, text projection; not normalised).",
    .args = clip_args, .n_args = G_N_ELEMENTS(clip_args), .options_size = sizeof(ClipOptions),
    .priv_size = sizeof(ClipPriv), .build = clip_build, .finalize = clip_finalize, .iface = &text_iface, .check = clip_check,
    .example_forward = text_example};

static const RatModuleType image_type = {
    .struct_size = sizeof(RatModuleType), .name = "clip_image", .kind = RAT_KIND_IMAGE_ENCODER,
    .doc = "CLIP vision tower: [-1,1] images -> image embedding through the GALIP or the standard transform.",
    .args = clip_args, .n_args = G_N_ELEMENTS(clip_args), .options_size = sizeof(ClipOptions),
    .priv_size = sizeof(ClipPriv), .build = clip_build, .finalize = clip_finalize, .iface = &image_iface, .check = clip_check,
    .example_forward = image_example};

static gboolean clip_plugin_init(RatRegistry *reg, GError **error) {
  return rat_registry_add_type(reg, &text_type, error) && rat_registry_add_type(reg, &image_type, error);
}

RAT_PLUGIN_DEFINE("clip", "0.1.0", "MIT", "CLIP text and image encoders", clip_plugin_init)
