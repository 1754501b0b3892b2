/* ratfw evaluation: the metric kind (plugins fid, clip_score, r_precision, shapes_accuracy), the Frechet distance
 * in float64 through LAPACK, the feature extractors FID uses, and the evaluation of a GAN run that `ratfw eval`,
 * the `eval` task and train_gan's periodic evaluation share (reference §9).
 *
 * An evaluation generates N images in micro-batches from the captions of a dataset split (one random caption and
 * one noise per image, §9.1) and hands every batch to each metric's accumulate(); finish() turns what a metric
 * accumulated into flat values ("fid", "r_precision_top1", ...) and protocol entries. Nothing is kept per image,
 * so memory does not grow with N. */
#pragma once

#include <ratfw/config.h>
#include <ratfw/dataset.h>
#include <ratfw/gan.h>
#include <ratfw/module.h>
#include <ratfw/run.h>

G_BEGIN_DECLS

/* ---- the Frechet distance (core/eval/fid.c) ----------------------------------------------------------------
 * FID = ||mu1 - mu2||^2 + Tr(S1) + Tr(S2) - 2 Tr(sqrtm(S1 S2))   (Heusel et al. 2017; pytorch-fid, §9.1)
 * Tr(sqrtm(S1 S2)) is the sum of the square roots of the eigenvalues of S1 S2, which are those of the symmetric
 * positive semi-definite B^T S2 B with S1 = V diag(w) V^T, B = V diag(sqrt(w)) (LAPACK dsyevd twice, dgemm).
 * Statistics are accumulated in float64; sigma is np.cov's unbiased estimate (divided by N - 1). */

typedef struct _RatFeatureStats RatFeatureStats;

RatFeatureStats *rat_feature_stats_new(gint64 dim);
void rat_feature_stats_free(RatFeatureStats *s);
gint64 rat_feature_stats_dim(const RatFeatureStats *s);
gint64 rat_feature_stats_count(const RatFeatureStats *s);
/* Adds @n feature rows x [n, D] (row-major float32 or float64). */
void rat_feature_stats_add(RatFeatureStats *s, const float *x, gint64 n);
void rat_feature_stats_add_f64(RatFeatureStats *s, const double *x, gint64 n);
/* mu [D] and sigma [D, D] (g_free both). Fewer than 2 samples is an error; fewer samples than D is an error
 * unless @allow_rank_deficient (the covariance is then singular, of rank at most N - 1). @what names the set. */
gboolean rat_feature_stats_finish(const RatFeatureStats *s, gboolean allow_rank_deficient, const char *what,
                                  double **mu, double **sigma, GError **error);

typedef struct {
  double fid;
  double mean_term;   /* ||mu1 - mu2||^2 */
  double trace1, trace2;
  double trace_sqrt;  /* Tr(sqrtm(S1 S2)) */
  gboolean regularized; /* pytorch-fid's fallback: eps I added to both covariances because the first attempt was
                         * not finite */
} RatFrechet;

/* The FID of two Gaussians of width @dim. Non-finite input, or a product whose square root has an imaginary part
 * larger than pytorch-fid accepts (a sigma that is not positive semi-definite), is an error. */
gboolean rat_frechet_distance(gint64 dim, const double *mu1, const double *sigma1, const double *mu2,
                              const double *sigma2, RatFrechet *out, GError **error);
/* Checks a covariance: finite, symmetric to 1e-9 of its largest entry, non-negative diagonal. @what names it. */
gboolean rat_fid_check_sigma(const char *what, gint64 dim, const double *sigma, GError **error);

/* Gaussian statistics of a file for `ratfw eval fid`: an .npz holding `mu` [D] and `sigma` [D, D], or `features`
 * [N, D] (float32 or float64; mu and sigma computed as np.mean / np.cov). @n receives N (0 for mu + sigma). */
gboolean rat_fid_stats_load(const char *path, gboolean allow_rank_deficient, gint64 *dim, double **mu,
                            double **sigma, gint64 *n, GError **error);
/* Writes mu and sigma (float64, the released *_FIDK0.npz layout) atomically. */
gboolean rat_fid_stats_save(const char *path, gint64 dim, const double *mu, const double *sigma, GError **error);

/* Hex SHA-256 of a file's bytes (g_free), or NULL with @error. */
char *rat_file_sha256(const char *path, GError **error);

/* ---- evaluation context, batches and results (core/eval/eval.c) --------------------------------------------- */

/* What an evaluation gives every metric. Borrowed pointers, valid from begin() to finish(). */
typedef struct {
  RatRegistry *registry;
  RatExperiment *exp;     /* the run's experiment (its eval: section holds each metric's arguments) */
  RatGan *gan;            /* the generator and the run's text encoder (its CLIP: gan->gctx.clip; tokenizer gan->tok) */
  RatModule *dataset;     /* the experiment's data: */
  RatSplit split;         /* where the captions come from */
  gint64 samples;         /* images that will be generated */
  gint64 batch;           /* images per micro-batch */
  guint64 seed;
  gint64 image_size;      /* side of the generated images */
  const char *out_dir;    /* a directory a metric may write files to (RUN/eval), or NULL */
  RatRunContext *run;     /* log lines and the progress display; NULL when quiet */
  gpointer reserved[8];
} RatEvalContext;

/* One micro-batch of generated images and what they were generated from. */
typedef struct {
  guint n;
  gint64 first;                 /* index of the first sample in the evaluation */
  RatTensor *images;            /* [n, 3, S, S] f32 in [-1, 1]: clamped, NaN -> -1, +-inf -> +-1 (§9.1) */
  const char *const *captions;  /* n captions */
  RatTensor *tokens;            /* [n, L] i32 from the run's tokenizer */
  RatTensor *sentences;         /* [n, E] sentence embeddings G was conditioned on */
  const guint *items;           /* the split item each caption belongs to (its ground truth: the dataset's
                                 * attributes(), e.g. RatShapesItem for shapes) */
  const guint *caption_ids;     /* which caption of the item */
} RatMetricBatch;

/* What a metric reports: flat numbers and protocol entries (results.json). */
typedef struct _RatMetricResult RatMetricResult;
void rat_metric_result_value(RatMetricResult *r, const char *key, double value, gboolean higher_is_better);
void rat_metric_result_protocol_string(RatMetricResult *r, const char *key, const char *value);
void rat_metric_result_protocol_int(RatMetricResult *r, const char *key, gint64 value);
void rat_metric_result_protocol_double(RatMetricResult *r, const char *key, double value);
void rat_metric_result_protocol_bool(RatMetricResult *r, const char *key, gboolean value);

/* For hosts and tests that drive a metric by hand (as a harness): an empty result, its values by key. */
RatMetricResult *rat_metric_result_new(void);
void rat_metric_result_free(RatMetricResult *r);
gboolean rat_metric_result_get(const RatMetricResult *r, const char *key, double *value);

/* The metric kind's interface. A metric type declares its arguments in its table (the `eval.NAME:` mapping of an
 * experiment); the host builds one module per evaluation, then calls begin, accumulate per batch, finish. */
typedef struct {
  /* Prepares what the metric needs (networks, reference statistics); may record protocol entries. */
  gboolean (*begin)(RatModule *m, RatEvalContext *ctx, RatMetricResult *res, GError **error);
  gboolean (*accumulate)(RatModule *m, RatEvalContext *ctx, const RatMetricBatch *b, GError **error);
  /* Reports values (rat_metric_result_value) and the rest of the protocol. */
  gboolean (*finish)(RatModule *m, RatEvalContext *ctx, RatMetricResult *res, GError **error);
  /* Optional: is this metric part of `metrics: auto` for this evaluation (e.g. shapes accuracy on shapes)? NULL
   * means never by default. */
  gboolean (*by_default)(RatEvalContext *ctx);
  gpointer reserved[6];
} RatMetricIface;

#define RAT_METRIC_IFACE(m) RAT_MODULE_IFACE(m, RatMetricIface)

/* ---- helpers for metrics (core/eval/clipx.c, core/eval/extract.c) ------------------------------------------- */

/* A CLIP for metrics: NULL or "" (the run's text-encoder CLIP and tokenizer) or a path (a pretrain_clip run directory,
 * a CLIP model.safetensors in OpenAI or Hugging Face names, or its directory) with its tokenizer (@vocab, else the
 * one found beside the weights). */
typedef struct _RatEvalClip RatEvalClip;
RatEvalClip *rat_eval_clip_open(RatEvalContext *ctx, const char *which, const char *vocab, GError **error);
void rat_eval_clip_free(RatEvalClip *c);
RatClip *rat_eval_clip_model(RatEvalClip *c);
const char *rat_eval_clip_path(RatEvalClip *c);   /* weights file */
const char *rat_eval_clip_sha256(RatEvalClip *c); /* of the weights file */
/* Text embeddings [n, E] of captions (no grad; not normalised). */
RatTensor *rat_eval_clip_encode_texts(RatEvalClip *c, const char *const *captions, guint n);
/* Image embeddings [n, E] (ln_post(CLS) @ proj, not normalised) of [-1, 1] images through the GALIP transform
 * (§5.1, @standard FALSE) or the standard one (§10.6), at the CLIP's input size. */
RatTensor *rat_eval_clip_encode_images(RatEvalClip *c, RatTensor *images, gboolean standard);

/* Cosine similarity of rows, in float64: out[i] = <a_i, b_i> / (|a_i| |b_i|). a, b [n, E]. */
void rat_eval_cosine_rows(RatTensor *a, RatTensor *b, double *out);
/* The rank (1 = best) of candidate 0 among @k candidates [k, E] by cosine with @query [E], in float64: 1 + the
 * number of other candidates scoring strictly higher. */
guint rat_eval_rank_first(const float *query, const float *candidates, guint k, gint64 E);

/* A feature extractor for FID: images [n, 3, S, S] in [-1, 1] -> features [n, D]. */
typedef struct _RatExtractor RatExtractor;
typedef struct {
  const char *kind;       /* "clip", "inception" (torchvision), "inception_fid" (pytorch-fid's TF port) */
  const char *clip;       /* kind clip: NULL or "" (the run's CLIP) or a path */
  const char *vocab;
  const char *weights;    /* kind inception / inception_fid: safetensors converted from the .pth */
  const char *transform;  /* "galip" (the released quirks, §5.1 / §9.1) or "standard" */
} RatExtractorOptions;
RatExtractor *rat_extractor_new(RatEvalContext *ctx, const RatExtractorOptions *o, GError **error);
void rat_extractor_free(RatExtractor *x);
gint64 rat_extractor_dim(RatExtractor *x);
/* Scope-owned [n, D] features (no grad). */
RatTensor *rat_extractor_features(RatExtractor *x, RatTensor *images);
/* Provenance for the protocol: "clip:embedding", the weights file and its sha256, the preprocessing. */
const char *rat_extractor_name(RatExtractor *x);
const char *rat_extractor_weights(RatExtractor *x);
const char *rat_extractor_sha256(RatExtractor *x);
const char *rat_extractor_preprocess(RatExtractor *x);

/* Inception-v3 for FID (core/eval/inception.c): torchvision's inception_v3 (@fid FALSE, GALIP/RATLIP's FID, §9.1) or
 * pytorch-fid's FID-Inception (@fid TRUE: FIDInceptionA/C/E_1 average-pool with count_include_pad=False, E_2
 * max-pools), BatchNorm folded into the convolutions at load, no gradient. Weights: safetensors in the .pth's names
 * (tools/convert-inception.py, docs/inception.md); a missing or wrong file is an error saying how to convert. */
typedef struct _RatInception RatInception;
RatInception *rat_inception_load(const char *path, gboolean fid, GError **error);
void rat_inception_free(RatInception *net);
/* x [B, 3, H, W] (H, W >= 75; 299 as trained), already preprocessed -> pool3 features [B, 2048] (scope-owned). */
RatTensor *rat_inception_forward(RatInception *net, RatTensor *x);
typedef enum {
  RAT_INCEPTION_STANDARD = 0, /* the network sees x in [-1, 1] bilinearly resized to 299 (torchvision's transform_input
                               * applied to ImageNet-normalised input; pytorch-fid's normalize_input 2u - 1) */
  RAT_INCEPTION_GALIP = 1,    /* §9.1, the released quirk: u = (x + 1)/2 resized to 299, then
                               * v_c = u std_c/0.5 + (mean_c - 0.5)/0.5 (transform_input applied to a [0, 1] image) */
} RatInceptionTransform;
/* Images [B, 3, S, S] in [-1, 1] -> the network's input [B, 3, 299, 299] (bilinear, align_corners=False). */
RatTensor *rat_inception_preprocess(RatTensor *images, RatInceptionTransform t);

/* 2-D pooling with padding for the extractors, forward only (no autograd): torch's max_pool2d (padding counts as
 * -inf) and avg_pool2d with count_include_pad True or False. x [B, C, H, W] -> [B, C, OH, OW] channels-last,
 * OH = (H + 2 pad - k)/s + 1; pad <= k/2. */
typedef enum {
  RAT_EVAL_POOL_MAX = 0,
  RAT_EVAL_POOL_AVG_INCLUDE_PAD = 1,
  RAT_EVAL_POOL_AVG_EXCLUDE_PAD = 2,
} RatEvalPool;
RatTensor *rat_eval_pool2d(RatTensor *x, RatEvalPool kind, int k, int s, int pad);

/* Reference statistics of a dataset split through an extractor (core/eval/reference.c): the real images resized to
 * @size (the loader's plain bilinear resize, no flip), one epoch in item order. With @cache they are read from or
 * written to $XDG_CACHE_HOME/ratfw/fid-stats/KEY.npz (with a KEY.txt saying what they are), KEY the SHA-256 of the
 * images' content as the extractor sees them, the dataset, split, size, extractor, its weights' SHA-256 and its
 * preprocessing. */
typedef struct {
  gint64 dim, n;        /* feature width, images */
  double *mu, *sigma;   /* [D], [D, D] */
  char *key;            /* hex SHA-256 */
  char *description;    /* "computed: emoji test split, 440 images resized to 32 px ..." */
  char *cache_file;     /* NULL without the cache */
  gboolean from_cache;
} RatFidReference;
gboolean rat_fid_reference_compute(RatExtractor *x, RatModule *dataset, RatSplit split, int size, guint batch,
                                   gboolean cache, gboolean allow_rank_deficient, RatRunContext *log,
                                   RatFidReference *out, GError **error);
void rat_fid_reference_clear(RatFidReference *r);

/* ---- evaluating a GAN (core/eval/eval.c) --------------------------------------------------------------------
 * The `eval:` section of an experiment: these keys (rat_eval_args, validated by the `eval` task type), plus one
 * mapping per metric type named after it holding that metric's arguments (eval.fid.extractor: clip). */
typedef struct {
  char *metrics;       /* "auto" or a comma-separated list */
  gint64 samples, seed, batch;
  char *split;         /* test | train */
  char *mode;          /* eval | train (normalisation of G) */
  gboolean ema;        /* the EMA weights when the checkpoint has them */
  double truncation;   /* 0: z ~ N(0, I); t > 0: DF-GAN's truncnorm(-2, 2) * t (§9.3) */
} RatEvalOptions;
extern const RatArgSpec rat_eval_args[];
extern const guint rat_eval_n_args;

/* The defaults of @exp's eval: section (built-in defaults where it has none). rat_eval_options_clear frees. */
gboolean rat_eval_options_load(RatRegistry *reg, RatExperiment *exp, RatEvalOptions *o, GError **error);
void rat_eval_options_clear(RatEvalOptions *o);
/* The eval: section without the metric mappings (for validation against rat_eval_args), a new reference or
 * NULL; and whether @key of an eval: section names a metric type. */
RatConfigNode *rat_eval_section_plain(RatRegistry *reg, RatConfigNode *section);
gboolean rat_eval_is_metric_key(RatRegistry *reg, const char *key);

/* A run (or checkpoint) opened for evaluation: its experiment, its GAN (weights not yet loaded: the eval options
 * choose the EMA copy) and its dataset. */
typedef struct {
  RatExperiment *exp;
  RatGan *gan;
  RatModule *dataset;
  char *run_dir;    /* absolute; the checkpoint's directory for a checkpoint file */
  char *checkpoint; /* absolute */
  char *out_dir;    /* RUN/eval (DIR_OF_CHECKPOINT/eval) */
} RatEvalRun;

/* Opens RUN_DIR (its checkpoint.safetensors and resolved.yaml) or a CHECKPOINT file (with its directory's
 * resolved.yaml, or @experiment), applying the "a.b=value" overrides @sets (NULL-terminated, may be NULL) to the
 * experiment. Errors: RAT_ERROR_CONFIG / RAT_ERROR_NOT_FOUND for what the user gave (paths, the experiment),
 * others when building fails. */
RatEvalRun *rat_eval_run_open(RatRegistry *reg, const char *path, const char *experiment, const char *const *sets,
                              GError **error);
void rat_eval_run_free(RatEvalRun *r);
/* Loads the weights (the EMA copy when @ema and the checkpoint has one); returns the step, -1 on error. @ema_used
 * (may be NULL) tells whether the EMA copy was loaded. */
gint64 rat_eval_run_load(RatEvalRun *r, gboolean ema, gboolean *ema_used, GError **error);

typedef struct _RatEvalResults RatEvalResults;

/* Evaluates @gan (weights loaded) on @dataset with the metrics of @o: generation in micro-batches, metrics, and
 * the results.json document. @run_dir / @checkpoint / @step / @ema_used (the weights are the EMA copy) are recorded;
 * @out_dir receives what metrics write (NULL: nothing is written); @run (may be NULL) gets the progress bar and log
 * lines. The EMA choice of @o is applied when the GAN holds an EMA copy (training) or by rat_eval_run_load. */
RatEvalResults *rat_eval_gan(RatRegistry *reg, RatExperiment *exp, RatGan *gan, RatModule *dataset,
                             const RatEvalOptions *o, const char *run_dir, const char *checkpoint, gint64 step,
                             gboolean ema_used, const char *out_dir, RatRunContext *run, GError **error);
void rat_eval_results_free(RatEvalResults *r);
guint rat_eval_results_count(const RatEvalResults *r);
const char *rat_eval_results_name(const RatEvalResults *r, guint i);
double rat_eval_results_value(const RatEvalResults *r, guint i);
gboolean rat_eval_results_higher_is_better(const RatEvalResults *r, guint i);
const char *rat_eval_results_protocol_hash(const RatEvalResults *r);
/* The results.json text ("format": "ratfw-eval/1"), and writing it atomically. */
const char *rat_eval_results_json(const RatEvalResults *r);
gboolean rat_eval_results_write(const RatEvalResults *r, const char *path, GError **error);

G_END_DECLS
