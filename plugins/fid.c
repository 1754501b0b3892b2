/* fid: the Frechet distance between the features of the generated images and those of real images (reference §9.1),
 *   FID = ||mu_g - mu_r||^2 + Tr(S_g) + Tr(S_r) - 2 Tr(sqrtm(S_g S_r)),
 * statistics in float64 with np.cov's N - 1 (core/eval/fid.c). Features come from a CLIP image tower (the CPU-scale
 * default: the run's own CLIP) or an Inception network. The real side is a released .npz (mu, sigma) or is computed
 * from a dataset split through the same extractor, the real images resized to the generator's output size first,
 * and cached under $XDG_CACHE_HOME/ratfw/fid-stats keyed by the images' content, the extractor, its weights and its
 * preprocessing. */
#include <ratfw/eval.h>
#include <ratfw/ratfw.h>

#include <math.h>
#include <string.h>

static const char *const extractors[] = {"clip", "inception", "inception_fid", NULL};
static const char *const transforms[] = {"galip", "standard", NULL};
static const char *const splits[] = {"test", "train", NULL};

typedef struct {
  char *extractor, *clip, *vocab, *weights, *transform;
  char *reference, *reference_split;
  gint64 reference_size, reference_batch;
  gboolean cache, allow_rank_deficient, save_stats;
} FidOptions;

static const RatArgSpec fid_args[] = {
    RAT_ARG_C(FidOptions, extractor, "clip", extractors,
              "feature network: clip (a CLIP image tower: image embedding before normalisation), inception "
              "(torchvision's Inception-v3 pool3, as GALIP/RATLIP) or inception_fid (pytorch-fid's FID-Inception pool3)"),
    RAT_ARG_P(FidOptions, clip, "", "extractor clip: the CLIP: empty = the run's text-encoder CLIP (as released); or a pretrain_clip "
              "run directory, or a CLIP model.safetensors such as ViT-B/32"),
    RAT_ARG_P(FidOptions, vocab, "", "tokenizer of a CLIP given by path, when none lies beside its weights"),
    RAT_ARG_P(FidOptions, weights, "", "Inception weights (safetensors converted from the .pth by tools/convert-inception.py; docs/inception.md)"),
    RAT_ARG_C(FidOptions, transform, "galip", transforms,
              "preprocessing: galip (the released quirks: CLIP §5.1, Inception §9.1) or standard (inception_fid: always "
              "pytorch-fid's)"),
    RAT_ARG_P(FidOptions, reference, "", "reference statistics: an .npz with mu [D] and sigma [D, D] (the released "
              "*_val256_FIDK0.npz) or features [N, D]; empty: computed from the dataset split and cached"),
    RAT_ARG_C(FidOptions, reference_split, "test", splits, "split the reference statistics are computed from"),
    RAT_ARG_I(FidOptions, reference_size, "0", 0, 4096,
              "side the real images are resized to before the extractor (0: the generator's output size)"),
    RAT_ARG_I(FidOptions, reference_batch, "64", 1, 4096, "real images per extractor batch"),
    RAT_ARG_B(FidOptions, cache, "true", "cache computed reference statistics under $XDG_CACHE_HOME/ratfw/fid-stats"),
    RAT_ARG_B(FidOptions, allow_rank_deficient, "false",
              "accept fewer samples than the feature width (a singular covariance; pytorch-fid does not check)"),
    RAT_ARG_B(FidOptions, save_stats, "true", "write the generated images' mu and sigma to RUN/eval/fid_stats.npz"),
};

typedef struct {
  RatExtractor *x;
  RatFeatureStats *gen;
  double *ref_mu, *ref_sigma;
  gint64 ref_n;
  char *ref_what, *ref_hash;
} FidPriv;

static gboolean fid_build(RatModule *m, const RatBuildContext *ctx, GError **error) { return TRUE; }

static void fid_finalize(RatModule *m) {
  FidPriv *p = RAT_MODULE_PRIV(m, FidPriv);
  rat_extractor_free(p->x);
  rat_feature_stats_free(p->gen);
  g_free(p->ref_mu);
  g_free(p->ref_sigma);
  g_free(p->ref_what);
  g_free(p->ref_hash);
}

static gboolean fid_begin(RatModule *m, RatEvalContext *ctx, RatMetricResult *res, GError **error) {
  const FidOptions *o = RAT_MODULE_OPTIONS(m, FidOptions);
  FidPriv *p = RAT_MODULE_PRIV(m, FidPriv);
  RatExtractorOptions xo = {.kind = o->extractor, .clip = o->clip, .vocab = o->vocab, .weights = o->weights,
                            .transform = o->transform};
  if (!(p->x = rat_extractor_new(ctx, &xo, error))) return FALSE;
  gint64 D = rat_extractor_dim(p->x);
  p->gen = rat_feature_stats_new(D);
  if (o->reference && *o->reference) {
    gint64 rd = 0;
    if (!rat_fid_stats_load(o->reference, o->allow_rank_deficient, &rd, &p->ref_mu, &p->ref_sigma, &p->ref_n, error))
      return FALSE;
    if (rd != D) {
      g_set_error(error, RAT_ERROR, RAT_ERROR_SHAPE, "%s holds %" G_GINT64_FORMAT "-d statistics but the extractor %s "
                  "gives %" G_GINT64_FORMAT "-d features: the reference was made with another network", o->reference, rd,
                  rat_extractor_name(p->x), D);
      return FALSE;
    }
    if (!(p->ref_hash = rat_file_sha256(o->reference, error))) return FALSE;
    p->ref_what = g_strdup(o->reference);
  } else {
    RatFidReference ref;
    RatSplit split = !strcmp(o->reference_split, "train") ? RAT_SPLIT_TRAIN : RAT_SPLIT_TEST;
    int size = (int)(o->reference_size ? o->reference_size : ctx->image_size);
    if (!rat_fid_reference_compute(p->x, ctx->dataset, split, size, (guint)o->reference_batch, o->cache,
                                   o->allow_rank_deficient, ctx->run, &ref, error)) {
      rat_fid_reference_clear(&ref);
      return FALSE;
    }
    p->ref_mu = g_steal_pointer(&ref.mu);
    p->ref_sigma = g_steal_pointer(&ref.sigma);
    p->ref_n = ref.n;
    p->ref_hash = g_steal_pointer(&ref.key);
    p->ref_what = g_steal_pointer(&ref.description);
    rat_fid_reference_clear(&ref);
  }
  rat_metric_result_protocol_string(res, "extractor", rat_extractor_name(p->x));
  rat_metric_result_protocol_string(res, "weights", rat_extractor_weights(p->x));
  rat_metric_result_protocol_string(res, "weights_sha256", rat_extractor_sha256(p->x));
  rat_metric_result_protocol_string(res, "preprocess", rat_extractor_preprocess(p->x));
  rat_metric_result_protocol_int(res, "features", D);
  char *resize = g_strdup_printf("generated: the generator's %" G_GINT64_FORMAT " px images as they are; real: "
                                 "resized to %" G_GINT64_FORMAT " px (plain bilinear) unless given as statistics; then "
                                 "the extractor's preprocessing", ctx->image_size,
                                 o->reference_size ? o->reference_size : ctx->image_size);
  rat_metric_result_protocol_string(res, "resize", resize);
  g_free(resize);
  rat_metric_result_protocol_string(res, "reference", p->ref_what);
  rat_metric_result_protocol_string(res, "reference_sha256", p->ref_hash);
  rat_metric_result_protocol_int(res, "reference_samples", p->ref_n);
  return TRUE;
}

static gboolean fid_accumulate(RatModule *m, RatEvalContext *ctx, const RatMetricBatch *b, GError **error) {
  FidPriv *p = RAT_MODULE_PRIV(m, FidPriv);
  RatTensor *f = rat_contiguous(rat_extractor_features(p->x, b->images));
  const float *d = rat_tensor_data(f);
  for (gint64 i = 0; i < rat_tensor_numel(f); i++)
    if (!isfinite(d[i])) {
      g_set_error(error, RAT_ERROR, RAT_ERROR_NUMERIC, "fid: the features of sample %" G_GINT64_FORMAT " are not finite",
                  b->first + i / f->shape[1]);
      return FALSE;
    }
  rat_feature_stats_add(p->gen, d, f->shape[0]);
  return TRUE;
}

static gboolean fid_finish(RatModule *m, RatEvalContext *ctx, RatMetricResult *res, GError **error) {
  const FidOptions *o = RAT_MODULE_OPTIONS(m, FidOptions);
  FidPriv *p = RAT_MODULE_PRIV(m, FidPriv);
  double *mu = NULL, *sigma = NULL;
  gint64 D = rat_extractor_dim(p->x);
  if (!rat_feature_stats_finish(p->gen, o->allow_rank_deficient, "fid: the generated images", &mu, &sigma, error))
    return FALSE;
  RatFrechet f;
  gboolean ok = rat_frechet_distance(D, mu, sigma, p->ref_mu, p->ref_sigma, &f, error);
  if (ok && o->save_stats && ctx->out_dir) {
    char *path = g_build_filename(ctx->out_dir, "fid_stats.npz", NULL);
    g_mkdir_with_parents(ctx->out_dir, 0755);
    ok = rat_fid_stats_save(path, D, mu, sigma, error);
    g_free(path);
  }
  g_free(mu);
  g_free(sigma);
  if (!ok) return FALSE;
  rat_metric_result_value(res, "fid", f.fid, FALSE);
  rat_metric_result_protocol_bool(res, "regularized", f.regularized);
  rat_metric_result_protocol_bool(res, "rank_deficient", rat_feature_stats_count(p->gen) < D);
  return TRUE;
}

static gboolean fid_by_default(RatEvalContext *ctx) { return ctx->gan && ctx->gan->gctx.clip != NULL; }

static const RatMetricIface fid_iface = {.begin = fid_begin, .accumulate = fid_accumulate, .finish = fid_finish,
                                         .by_default = fid_by_default};

static const RatModuleType fid_type = {
    .struct_size = sizeof(RatModuleType),
    .name = "fid",
    .kind = RAT_KIND_METRIC,
    .doc = "Frechet distance between generated and real image features, ||mu1-mu2||^2 + Tr(S1) + Tr(S2) - "
           "2 Tr(sqrtm(S1 S2)) in float64 (reference §9.1, pytorch-fid); features from a CLIP image tower or "
           "Inception; reference statistics from an .npz or computed from the dataset split and cached. Lower is better.",
    .args = fid_args,
    .n_args = G_N_ELEMENTS(fid_args),
    .options_size = sizeof(FidOptions),
    .priv_size = sizeof(FidPriv),
    .build = fid_build,
    .finalize = fid_finalize,
    .iface = &fid_iface,
};

static gboolean fid_init(RatRegistry *reg, GError **error) { return rat_registry_add_type(reg, &fid_type, error); }

RAT_PLUGIN_DEFINE("fid", "0.1.0", "MIT", "FID metric (CLIP or Inception features)", fid_init)
