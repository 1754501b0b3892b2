/* A GAN assembled from an experiment's model section (gan.h): what the train_gan task trains and `ratfw sample`
 * samples from. */
#include <ratfw/config.h>
#include <ratfw/draw.h>
#include <ratfw/error.h>
#include <ratfw/gan.h>
#include <ratfw/io.h>
#include <ratfw/text.h>

#include <math.h>
#include <string.h>

static int slot_index(const char *name) {
  for (guint i = 0; i < rat_n_model_slots; i++)
    if (!strcmp(rat_model_slots[i].name, name)) return (int)i;
  return -1;
}

void rat_gan_free(RatGan *g) {
  if (!g) return;
  if (g->ema) rat_tensor_unref(g->ema);
  RatModule *mods[3] = {g->gen, g->disc, g->text};
  for (int i = 0; i < 3; i++)
    if (mods[i]) rat_module_free(mods[i]);
  RatParams *ps[3] = {g->g_params, g->d_params, g->te_params};
  for (int i = 0; i < 3; i++)
    if (ps[i]) rat_params_free(ps[i]);
  g_free(g);
}

RatGan *rat_gan_build(RatRegistry *reg, RatExperiment *exp, guint64 seed, gboolean with_discriminator, gboolean ema,
                      GError **error) {
  int it = slot_index("text_encoder"), ig = slot_index("generator"), id = slot_index("discriminator");
  const char *missing = !exp->model[it] ? "model.text_encoder" : !exp->model[ig] ? "model.generator"
                        : with_discriminator && !exp->model[id] ? "model.discriminator" : NULL;
  if (missing) {
    g_set_error(error, RAT_ERROR, RAT_ERROR_CONFIG, "%s: a GAN needs `%s:` (a text encoder, a generator and a "
                "discriminator; see configs/cpu/ for examples)", exp->path, missing);
    return NULL;
  }
  RatGan *g = g_new0(RatGan, 1);
  RatRng init_rng;
  rat_rng_init(&init_rng, seed * 2654435761u + 17);
  g->te_params = rat_params_new();
  RatBuildContext bt = exp->sizes;
  bt.params = g->te_params;
  bt.rng = &init_rng;
  if (!(g->text = rat_module_build(reg, exp->model[it], "text_encoder", RAT_KIND_TEXT_ENCODER, &bt, error))) goto fail;
  rat_params_finalize(g->te_params);
  rat_module_set_training(g->text, FALSE);
  const RatTextEncoderIface *ti = RAT_MODULE_IFACE(g->text, RatTextEncoderIface);
  g->tok = ti->tokenizer ? ti->tokenizer(g->text) : NULL; /* callers that encode captions check it */
  g->gctx.clip = ti->clip ? ti->clip(g->text) : NULL;
  g->gctx.sentence_dim = g->gctx.clip ? rat_clip_config(g->gctx.clip)->embed_dim : 0;

  g->g_params = rat_params_new();
  RatBuildContext bg = exp->sizes;
  bg.params = g->g_params;
  bg.rng = &init_rng;
  bg.user = &g->gctx;
  if (!(g->gen = rat_module_build(reg, exp->model[ig], "generator", RAT_KIND_GENERATOR, &bg, error))) goto fail;
  if (with_discriminator) {
    g->d_params = rat_params_new();
    RatBuildContext bd = bg;
    bd.params = g->d_params;
    if (!(g->disc = rat_module_build(reg, exp->model[id], "discriminator", RAT_KIND_DISCRIMINATOR, &bd, error))) goto fail;
    rat_params_finalize(g->d_params);
  }
  rat_params_finalize(g->g_params);
  g->z_dim = RAT_GENERATOR_IFACE(g->gen)->z_dim(g->gen);
  g->image_size = RAT_GENERATOR_IFACE(g->gen)->image_size(g->gen);
  if (ema) g->ema = rat_tensor_ref(rat_contiguous(rat_copy(rat_params_flat(g->g_params))));
  return g;
fail:
  rat_gan_free(g);
  return NULL;
}

gint64 rat_gan_load_weights(RatGan *g, const char *path, gboolean use_ema, GError **error) {
  RatSafetensors *st = rat_safetensors_open(path, error);
  if (!st) return -1;
  gint64 step = -1;
  const char *s = rat_safetensors_meta(st, "step");
  gboolean ok = rat_params_load(g->g_params, st, "model.", error) &&
                (!g->d_params || rat_params_load(g->d_params, st, "model.", error));
  if (ok && use_ema && rat_safetensors_has(st, "ema.generator")) {
    RatScope sc = rat_scope_push();
    RatTensor *e = rat_safetensors_get(st, "ema.generator", error), *flat = rat_params_flat(g->g_params);
    if (!e) ok = FALSE;
    else if (rat_tensor_numel(e) != rat_tensor_numel(flat)) {
      g_set_error(error, RAT_ERROR, RAT_ERROR_SHAPE, "%s: ema.generator has %" G_GINT64_FORMAT " values, the generator %"
                  G_GINT64_FORMAT, path, rat_tensor_numel(e), rat_tensor_numel(flat));
      ok = FALSE;
    } else {
      rat_tensor_copy_(flat, rat_reshape(e, rat_tensor_shape(flat)));
      rat_tensor_bump_version(flat);
    }
    rat_scope_pop(sc);
  }
  if (ok) step = s ? g_ascii_strtoll(s, NULL, 10) : 0;
  rat_safetensors_close(st);
  return step;
}

RatTensor *rat_gan_encode_tokens(RatGan *g, RatTensor *tokens) {
  RatTensor *s;
  RAT_NO_GRAD_BEGIN
  s = RAT_MODULE_IFACE(g->text, RatTextEncoderIface)->encode(g->text, tokens);
  RAT_NO_GRAD_END
  return rat_tensor_detach(s);
}

RatTensor *rat_gan_encode_captions(RatGan *g, const char *const *captions, guint n) {
  rat_check(g->tok, "the text encoder %s has no tokenizer: give model.text_encoder.vocab", g->text->path);
  return rat_gan_encode_tokens(g, rat_tokenizer_encode_batch(g->tok, captions, n, NULL));
}

RatTensor *rat_gan_generate(RatGan *g, RatTensor *sentences, RatTensor *z, gboolean train_mode, gboolean use_ema) {
  RatScope sc = rat_scope_push();
  RatTensor *flat = rat_params_flat(g->g_params), *backup = NULL;
  if (use_ema && g->ema) {
    backup = rat_copy(flat);
    rat_tensor_copy_(flat, g->ema);
    rat_tensor_bump_version(flat);
  }
  /* train mode would move batch norm's running statistics: restore every buffer afterwards */
  GPtrArray *saved = g_ptr_array_new();
  for (guint i = 0; i < rat_params_size(g->g_params); i++)
    if (rat_params_kind(g->g_params, i) == RAT_PARAM_BUFFER) g_ptr_array_add(saved, rat_copy(rat_params_tensor(g->g_params, i)));
  gboolean was_training = g->gen->training;
  rat_module_set_training(g->gen, train_mode);
  RatTensor *out;
  RAT_NO_GRAD_BEGIN
  out = rat_generator_forward(g->gen, z, sentences);
  RAT_NO_GRAD_END
  rat_module_set_training(g->gen, was_training);
  for (guint i = 0, k = 0; i < rat_params_size(g->g_params); i++)
    if (rat_params_kind(g->g_params, i) == RAT_PARAM_BUFFER) {
      RatTensor *b = rat_params_tensor(g->g_params, i);
      rat_tensor_copy_(b, saved->pdata[k++]);
      rat_tensor_bump_version(b);
    }
  g_ptr_array_free(saved, TRUE);
  if (backup) {
    rat_tensor_copy_(flat, backup);
    rat_tensor_bump_version(flat);
  }
  return rat_scope_pop_keep(sc, out);
}

RatTensor *rat_gan_grid(RatTensor *images, guint rows, guint cols, const char *const *captions) {
  rat_check(images->ndim == 4 && images->shape[1] == 3 && images->shape[0] == (gint64)rows * cols,
            "rat_gan_grid: expected [%u,3,S,S] images", rows * cols);
  gint64 S = images->shape[2], pad = 2;
  gint64 W = cols * (S + pad) + pad;
  /* each row: the images, then its caption wrapped to the grid's width (at most 3 lines) */
  int max_chars = (int)MAX(8, (W - 2 * pad) / RAT_FONT_ADVANCE);
  char ***lines = g_new0(char **, rows);
  gint64 H = pad;
  for (guint r = 0; r < rows; r++) {
    lines[r] = captions && captions[r] ? rat_text_wrap(captions[r], max_chars) : g_new0(char *, 1);
    guint nl = MIN(g_strv_length(lines[r]), 3u);
    H += S + pad + (nl ? nl * RAT_FONT_LINE + pad : 0);
  }
  RatTensor *grid = rat_ones(RAT_SHAPE(3, H, W));
  RatTensor *c = rat_contiguous(images);
  const float *src = rat_tensor_data(c);
  float *dst = rat_tensor_data(grid);
  const float ink[3] = {0.1f, 0.1f, 0.1f};
  gint64 y0 = pad;
  for (guint r = 0; r < rows; r++) {
    for (guint k = 0; k < cols; k++)
      for (int ch = 0; ch < 3; ch++)
        for (gint64 y = 0; y < S; y++)
          for (gint64 x = 0; x < S; x++) {
            float v = src[(((gint64)(r * cols + k) * 3 + ch) * S + y) * S + x];
            v = isfinite(v) ? CLAMP(v, -1.0f, 1.0f) : -1.0f; /* clamp for display, as the released test() */
            dst[(ch * H + y0 + y) * W + pad + k * (S + pad) + x] = (v + 1.0f) * 0.5f;
          }
    y0 += S + pad;
    guint nl = MIN(g_strv_length(lines[r]), 3u);
    for (guint l = 0; l < nl; l++) rat_draw_text(grid, (int)pad, (int)(y0 + l * RAT_FONT_LINE), lines[r][l], 1, ink);
    if (nl) y0 += nl * RAT_FONT_LINE + pad;
    g_strfreev(lines[r]);
  }
  g_free(lines);
  return grid;
}
