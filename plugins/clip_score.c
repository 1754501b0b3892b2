/* clip_score: the CLIP score of GALIP/RATLIP (reference §9.2): the cosine between CLIP's image embedding of each
 * generated image (through the §5.1 transform, quirk included, or the standard transform) and CLIP's text embedding
 * of its caption, averaged over the images and multiplied by 100 (RATLIP's README; GALIP's prints it raw). Not
 * Hessel et al.'s CLIPScore (no ReLU, no 2.5 factor). The released code averages batch means over full batches,
 * which is this mean when every batch is full. With `clip: run` the text embedding is the sentence embedding the
 * generator was conditioned on (the same frozen CLIP the generator's similarity loss optimises, as released). */
#include <ratfw/eval.h>
#include <ratfw/ratfw.h>

#include <string.h>

static const char *const transforms[] = {"galip", "standard", NULL};

typedef struct {
  char *clip, *vocab, *transform;
} CsOptions;

static const RatArgSpec cs_args[] = {
    RAT_ARG_P(CsOptions, clip, "", "the CLIP: empty = the run's text-encoder CLIP (as released); or a pretrain_clip "
              "run directory, or a CLIP model.safetensors such as ViT-B/32"),
    RAT_ARG_P(CsOptions, vocab, "", "tokenizer of a CLIP given by path, when none lies beside its weights"),
    RAT_ARG_C(CsOptions, transform, "galip", transforms,
              "image transform: galip (§5.1 with its double [0,1] mapping, as released) or standard (§10.6)"),
};

typedef struct {
  RatEvalClip *clip;
  double sum;
  gint64 n;
} CsPriv;

static gboolean cs_build(RatModule *m, const RatBuildContext *ctx, GError **error) { return TRUE; }

static void cs_finalize(RatModule *m) { rat_eval_clip_free(RAT_MODULE_PRIV(m, CsPriv)->clip); }

static gboolean is_run(const char *c) { return !c || !*c; }

static gboolean cs_begin(RatModule *m, RatEvalContext *ctx, RatMetricResult *res, GError **error) {
  const CsOptions *o = RAT_MODULE_OPTIONS(m, CsOptions);
  CsPriv *p = RAT_MODULE_PRIV(m, CsPriv);
  if (!(p->clip = rat_eval_clip_open(ctx, o->clip, o->vocab, error))) return FALSE;
  rat_metric_result_protocol_string(res, "clip", is_run(o->clip) ? "run" : o->clip);
  rat_metric_result_protocol_string(res, "weights", rat_eval_clip_path(p->clip));
  rat_metric_result_protocol_string(res, "weights_sha256", rat_eval_clip_sha256(p->clip));
  rat_metric_result_protocol_string(res, "transform", o->transform);
  rat_metric_result_protocol_string(res, "scale", "100 x mean cosine");
  return TRUE;
}

static gboolean cs_accumulate(RatModule *m, RatEvalContext *ctx, const RatMetricBatch *b, GError **error) {
  const CsOptions *o = RAT_MODULE_OPTIONS(m, CsOptions);
  CsPriv *p = RAT_MODULE_PRIV(m, CsPriv);
  RatTensor *img = rat_eval_clip_encode_images(p->clip, b->images, !strcmp(o->transform, "standard"));
  RatTensor *txt = is_run(o->clip) ? b->sentences : rat_eval_clip_encode_texts(p->clip, b->captions, b->n);
  double *cos = g_new(double, b->n);
  rat_eval_cosine_rows(img, txt, cos);
  for (guint i = 0; i < b->n; i++) p->sum += cos[i];
  p->n += b->n;
  g_free(cos);
  return TRUE;
}

static gboolean cs_finish(RatModule *m, RatEvalContext *ctx, RatMetricResult *res, GError **error) {
  CsPriv *p = RAT_MODULE_PRIV(m, CsPriv);
  rat_metric_result_value(res, "clip_score", 100.0 * p->sum / (double)MAX(p->n, 1), TRUE);
  return TRUE;
}

static gboolean cs_by_default(RatEvalContext *ctx) { return ctx->gan && ctx->gan->gctx.clip != NULL; }

static const RatMetricIface cs_iface = {.begin = cs_begin, .accumulate = cs_accumulate, .finish = cs_finish,
                                        .by_default = cs_by_default};

static const RatModuleType cs_type = {
    .struct_size = sizeof(RatModuleType),
    .name = "clip_score",
    .kind = RAT_KIND_METRIC,
    .doc = "GALIP/RATLIP CLIP score (reference §9.2): 100 x the mean cosine between the CLIP image embedding of each "
           "generated image (§5.1 transform, quirk included by default) and the CLIP text embedding of its caption. "
           "Higher is better.",
    .args = cs_args,
    .n_args = G_N_ELEMENTS(cs_args),
    .options_size = sizeof(CsOptions),
    .priv_size = sizeof(CsPriv),
    .build = cs_build,
    .finalize = cs_finalize,
    .iface = &cs_iface,
};

static gboolean cs_init(RatRegistry *reg, GError **error) { return rat_registry_add_type(reg, &cs_type, error); }

RAT_PLUGIN_DEFINE("clip_score", "0.1.0", "MIT", "CLIP score metric (GALIP/RATLIP protocol)", cs_init)
