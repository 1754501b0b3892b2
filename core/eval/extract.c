/* Feature extractors for FID (eval.h): images [n, 3, S, S] in [-1, 1] -> features [n, D].
 *   clip: a CLIP image tower (the run's text-encoder CLIP, a pretrain_clip run, or ViT-B/32 weights); the features
 *         are the image embedding before normalisation, ln_post(CLS) @ proj (D = the CLIP's embed_dim), after the
 *         GALIP input transform (§5.1, the released quirk) or the standard one (§10.6);
 *   inception: torchvision's Inception-v3 pool3 (2048-d) after the §9.1 preprocessing (galip: the [0, 1]-input quirk)
 *         or the standard one (the network sees [-1, 1]);
 *   inception_fid: pytorch-fid's FID-Inception pool3 (2048-d), pytorch-fid's preprocessing (bilinear to 299, [-1, 1])
 *         whatever the transform. Networks in core/eval/inception.c. */
#include "config.h"

#include <ratfw/clip.h>
#include <ratfw/error.h>
#include <ratfw/eval.h>

#include <string.h>

struct _RatExtractor {
  char *name, *weights, *sha256, *preprocess;
  gint64 dim;
  gboolean standard;
  RatEvalClip *clip;
  RatInception *inception;
};

void rat_extractor_free(RatExtractor *x) {
  if (!x) return;
  rat_eval_clip_free(x->clip);
  rat_inception_free(x->inception);
  g_free(x->name);
  g_free(x->weights);
  g_free(x->sha256);
  g_free(x->preprocess);
  g_free(x);
}

RatExtractor *rat_extractor_new(RatEvalContext *ctx, const RatExtractorOptions *o, GError **error) {
  RatExtractor *x = g_new0(RatExtractor, 1);
  x->standard = o->transform && !strcmp(o->transform, "standard");
  if (!strcmp(o->kind, "clip")) {
    if (!(x->clip = rat_eval_clip_open(ctx, o->clip, o->vocab, error))) {
      rat_extractor_free(x);
      return NULL;
    }
    const RatClipConfig *cfg = rat_clip_config(rat_eval_clip_model(x->clip));
    x->dim = cfg->embed_dim;
    x->name = g_strdup("clip:embedding");
    x->weights = g_strdup(rat_eval_clip_path(x->clip));
    x->sha256 = g_strdup(rat_eval_clip_sha256(x->clip));
    x->preprocess = x->standard
                        ? g_strdup_printf("standard: u = x/2 + 1/2, the shorter side to %d (antialiased bicubic), centre "
                                          "crop, CLIP mean/std (reference §10.6)", cfg->image_size)
                        : g_strdup_printf("galip: u = x/2 + 1/2, nearest resize to %d, v = (u + 1)/2, CLIP mean/std "
                                          "(reference §5.1, the released quirk)", cfg->image_size);
    return x;
  }
  gboolean fid = !strcmp(o->kind, "inception_fid");
  if (fid || !strcmp(o->kind, "inception")) {
    if (!(x->inception = rat_inception_load(o->weights, fid, error)) ||
        !(x->sha256 = rat_file_sha256(o->weights, error))) {
      rat_extractor_free(x);
      return NULL;
    }
    x->dim = 2048;
    x->name = g_strdup(fid ? "inception_fid:pool3" : "inception:pool3");
    x->weights = g_strdup(o->weights);
    if (fid) x->standard = TRUE;
    x->preprocess = g_strdup(
        fid ? "pytorch-fid: u = x/2 + 1/2, bilinear resize to 299 (align_corners=False), 2u - 1"
        : x->standard ? "standard: bilinear resize to 299 (align_corners=False) of x in [-1, 1] (torchvision's "
                        "transform_input on ImageNet-normalised input)"
                      : "galip: u = x/2 + 1/2, bilinear resize to 299 (align_corners=False), u std_c/0.5 + "
                        "(mean_c - 0.5)/0.5 with ImageNet mean/std (reference §9.1, the released quirk)");
    return x;
  }
  g_set_error(error, RAT_ERROR, RAT_ERROR_CONFIG, "unknown feature extractor '%s' (clip, inception, inception_fid)",
              o->kind);
  rat_extractor_free(x);
  return NULL;
}

gint64 rat_extractor_dim(RatExtractor *x) { return x->dim; }
const char *rat_extractor_name(RatExtractor *x) { return x->name; }
const char *rat_extractor_weights(RatExtractor *x) { return x->weights; }
const char *rat_extractor_sha256(RatExtractor *x) { return x->sha256; }
const char *rat_extractor_preprocess(RatExtractor *x) { return x->preprocess; }

RatTensor *rat_extractor_features(RatExtractor *x, RatTensor *images) {
  if (x->inception)
    return rat_inception_forward(
        x->inception, rat_inception_preprocess(images, x->standard ? RAT_INCEPTION_STANDARD : RAT_INCEPTION_GALIP));
  return rat_eval_clip_encode_images(x->clip, images, x->standard);
}
