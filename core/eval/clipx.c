/* A CLIP for the metrics (eval.h): the run's own text-encoder CLIP, or one loaded from a path through the `clip_text`
 * module type (a pretrain_clip run directory, a CLIP model.safetensors in OpenAI or Hugging Face names), with the
 * tokenizer that goes with it; text and image embeddings without normalisation, as CLIP's encode_text/encode_image
 * (reference §9.2, §10). */
#include "config.h"

#include <ratfw/clip.h>
#include <ratfw/error.h>
#include <ratfw/eval.h>
#include <ratfw/text.h>

#include <math.h>
#include <string.h>

struct _RatEvalClip {
  RatEvalContext *ctx;
  RatClip *clip;       /* borrowed from the run's text encoder or from @module */
  RatModule *module;   /* owned clip_text module (path CLIPs), or NULL */
  RatParams *params;   /* its parameters */
  RatTokenizer *tok;   /* borrowed */
  char *path, *sha256;
};

/* The weights file behind a weights argument: the file itself, or DIR/model.safetensors. */
static char *weights_file(const char *p) {
  return g_file_test(p, G_FILE_TEST_IS_DIR) ? g_build_filename(p, "model.safetensors", NULL) : g_strdup(p);
}

/* The run's text encoder weights, resolved as the argument table resolves paths (relative to the file the value
 * came from). */
static char *run_text_weights(RatExperiment *exp) {
  for (guint i = 0; i < rat_n_model_slots; i++) {
    if (strcmp(rat_model_slots[i].name, "text_encoder") || !exp->model[i] || !exp->model[i]->node) continue;
    RatConfigNode *v = rat_config_get(exp->model[i]->node, "weights");
    if (!v || v->kind != RAT_NODE_SCALAR || rat_config_is_null(v) || !*v->value) return NULL;
    if (g_path_is_absolute(v->value)) return weights_file(v->value);
    char *dir = v->file[0] != '<' && strncmp(v->file, "--set", 5) ? g_path_get_dirname(v->file) : g_strdup(".");
    char *abs = g_canonicalize_filename(v->value, dir);
    char *w = weights_file(abs);
    g_free(dir);
    g_free(abs);
    return w;
  }
  return NULL;
}

static char *yaml_quote(const char *s) {
  GString *q = g_string_new("'");
  for (const char *p = s; *p; p++) {
    if (*p == '\'') g_string_append_c(q, '\'');
    g_string_append_c(q, *p);
  }
  g_string_append_c(q, '\'');
  return g_string_free(q, FALSE);
}

RatEvalClip *rat_eval_clip_open(RatEvalContext *ctx, const char *which, const char *vocab, GError **error) {
  RatEvalClip *c = g_new0(RatEvalClip, 1);
  c->ctx = ctx;
  if (!which || !*which) {
    if (!ctx->gan || !ctx->gan->gctx.clip || !ctx->gan->tok) {
      g_set_error(error, RAT_ERROR, RAT_ERROR_CONFIG, "the run's text encoder has no CLIP%s; give the path "
                  "of a CLIP (a pretrain_clip run directory or a model.safetensors)",
                  ctx->gan && ctx->gan->gctx.clip ? " tokenizer" : "");
      g_free(c);
      return NULL;
    }
    c->clip = ctx->gan->gctx.clip;
    c->tok = ctx->gan->tok;
    c->path = run_text_weights(ctx->exp);
  } else {
    if (!g_file_test(which, G_FILE_TEST_EXISTS)) {
      g_set_error(error, RAT_ERROR, RAT_ERROR_IO, "CLIP weights %s do not exist (give a pretrain_clip run directory, or "
                  "a CLIP model.safetensors converted from OpenAI's ViT-B-32.pt or Hugging Face's openai/clip-vit-"
                  "base-patch32; docs/evaluation.md)", which);
      g_free(c);
      return NULL;
    }
    char *abs = g_canonicalize_filename(which, NULL);
    char *qw = yaml_quote(abs), *qv = vocab && *vocab ? yaml_quote(vocab) : NULL;
    char *ow = g_strdup_printf("weights=%s", qw), *ov = qv ? g_strdup_printf("vocab=%s", qv) : NULL;
    const char *overrides[3] = {ow, ov, NULL};
    c->params = rat_params_new();
    RatRng rng;
    rat_rng_init(&rng, 0);
    RatBuildContext b = {.params = c->params, .rng = &rng};
    c->module = rat_module_build_named(ctx->registry, "clip_text", "eval_clip", RAT_KIND_TEXT_ENCODER, overrides, &b, error);
    g_free(qw);
    g_free(qv);
    g_free(ow);
    g_free(ov);
    if (!c->module) {
      g_free(abs);
      rat_eval_clip_free(c);
      return NULL;
    }
    rat_params_finalize(c->params);
    rat_module_set_training(c->module, FALSE);
    const RatTextEncoderIface *ti = RAT_MODULE_IFACE(c->module, RatTextEncoderIface);
    c->clip = ti->clip(c->module);
    c->tok = ti->tokenizer ? ti->tokenizer(c->module) : NULL;
    c->path = weights_file(abs);
    g_free(abs);
    if (!c->tok) {
      g_set_error(error, RAT_ERROR, RAT_ERROR_CONFIG, "%s: no tokenizer beside the CLIP weights (tokenizer.json, or "
                  "vocab.json + merges.txt): give its vocab (the CLIP BPE bpe_simple_vocab_16e6.txt.gz)", which);
      rat_eval_clip_free(c);
      return NULL;
    }
  }
  if (c->path && g_file_test(c->path, G_FILE_TEST_IS_REGULAR)) {
    if (!(c->sha256 = rat_file_sha256(c->path, error))) {
      rat_eval_clip_free(c);
      return NULL;
    }
  } else {
    g_free(c->path);
    c->path = g_strdup("(random weights)");
    c->sha256 = g_strdup("");
  }
  return c;
}

void rat_eval_clip_free(RatEvalClip *c) {
  if (!c) return;
  if (c->module) rat_module_free(c->module);
  if (c->params) rat_params_free(c->params);
  g_free(c->path);
  g_free(c->sha256);
  g_free(c);
}

RatClip *rat_eval_clip_model(RatEvalClip *c) { return c->clip; }
const char *rat_eval_clip_path(RatEvalClip *c) { return c->path; }
const char *rat_eval_clip_sha256(RatEvalClip *c) { return c->sha256; }

RatTensor *rat_eval_clip_encode_texts(RatEvalClip *c, const char *const *captions, guint n) {
  RatTensor *out;
  if (!c->module) return rat_gan_encode_captions(c->ctx->gan, captions, n);
  RatTensor *ids = rat_tokenizer_encode_batch(c->tok, captions, n, NULL);
  RAT_NO_GRAD_BEGIN
  out = RAT_MODULE_IFACE(c->module, RatTextEncoderIface)->encode(c->module, ids);
  RAT_NO_GRAD_END
  return rat_tensor_detach(out);
}

RatTensor *rat_eval_clip_encode_images(RatEvalClip *c, RatTensor *images, gboolean standard) {
  int S = rat_clip_config(c->clip)->image_size;
  RatTensor *out;
  RAT_NO_GRAD_BEGIN
  RatTensor *x = standard ? rat_clip_transform_standard(images, S) : rat_clip_transform_galip(images, S);
  out = rat_clip_encode_image(c->clip, x);
  RAT_NO_GRAD_END
  return rat_tensor_detach(out);
}

void rat_eval_cosine_rows(RatTensor *a, RatTensor *b, double *out) {
  rat_check(a->ndim == 2 && b->ndim == 2 && a->shape[0] == b->shape[0] && a->shape[1] == b->shape[1],
            "rat_eval_cosine_rows: shapes differ");
  gint64 n = a->shape[0], E = a->shape[1];
  RatTensor *ca = rat_contiguous(a), *cb = rat_contiguous(b);
  const float *pa = rat_tensor_data(ca), *pb = rat_tensor_data(cb);
  for (gint64 i = 0; i < n; i++) {
    double ab = 0, aa = 0, bb = 0;
    for (gint64 k = 0; k < E; k++) {
      double x = pa[i * E + k], y = pb[i * E + k];
      ab += x * y;
      aa += x * x;
      bb += y * y;
    }
    out[i] = ab / (sqrt(aa) * sqrt(bb));
  }
}

static double cosine(const float *a, const float *b, gint64 E) {
  double ab = 0, aa = 0, bb = 0;
  for (gint64 k = 0; k < E; k++) {
    ab += (double)a[k] * b[k];
    aa += (double)a[k] * a[k];
    bb += (double)b[k] * b[k];
  }
  return ab / (sqrt(aa) * sqrt(bb));
}

guint rat_eval_rank_first(const float *query, const float *candidates, guint k, gint64 E) {
  double s0 = cosine(query, candidates, E);
  guint rank = 1;
  for (guint i = 1; i < k; i++)
    if (cosine(query, candidates + (gsize)i * E, E) > s0) rank++;
  return rank;
}
