/* CLIP against tools/reference/ref_clip.py: a small random CLIP saved in Hugging Face and in OpenAI names gives the
 * same text and image embeddings, tapped residual streams, prompt-token path, gradients w.r.t. pixels and prompt
 * (frozen weights), GALIP transform and contrastive loss as PyTorch; configuration inference; load errors. */
#include "config.h"

#include "testutil.h"
#include <ratfw/clip.h>

#include <glib/gstdio.h>
#include <math.h>
#include <string.h>
#include <unistd.h>

static RatFixture *fx;
static RatClipConfig cfg;

static char *fixture_file(const char *name) {
  const char *src = g_getenv("RATFW_SRCDIR");
  return g_strdup_printf("%s/tests/fixtures/%s", src ? src : RATFW_SRCDIR, name);
}

static int meta_int(const char *key) {
  JsonObject *o = json_array_get_object_element(fx->cases, 0);
  return (int)json_object_get_int_member(o, key);
}

static RatClip *load(const char *file, RatParams **params_out) {
  RatParams *params = rat_params_new();
  RatClip *c = rat_clip_new(&cfg, params, "clip.", RAT_PARAM_FROZEN);
  rat_params_finalize(params);
  char *path = fixture_file(file);
  GError *e = NULL;
  if (!rat_clip_load(c, path, &e)) g_error("%s", e->message);
  g_free(path);
  *params_out = params;
  return c;
}

static void check_model(const char *file) {
  RatScope s = rat_scope_push();
  RatParams *params;
  RatClip *c = load(file, &params);
  RatTensor *pixels = rat_test_leaf(rat_fixture_get(fx, "c0.pixels"));
  RatTensor *taps[2];
  const int blocks[2] = {0, 2};
  RatTensor *img = rat_clip_vision_taps(c, pixels, blocks, 2, taps);
  rat_assert_close(img, rat_fixture_get(fx, "c0.image_embed"), 1e-4, 1e-3, "image embedding");
  rat_assert_close(taps[0], rat_fixture_get(fx, "c0.tap0"), 1e-4, 1e-3, "residual stream after block 0");
  rat_assert_close(taps[1], rat_fixture_get(fx, "c0.tap2"), 1e-4, 1e-3, "residual stream after block 2");
  rat_assert_close(rat_clip_encode_text(c, rat_fixture_get(fx, "c0.ids")), rat_fixture_get(fx, "c0.text_embed"), 1e-4,
                   1e-3, "text embedding");
  /* gradient w.r.t. the pixels passes through the frozen tower */
  RatTensor *L = rat_sum_all(rat_mul(img, rat_fixture_get(fx, "c0.R"))), *g;
  GError *e = NULL;
  g_assert_true(rat_grad(&L, NULL, 1, &pixels, 1, &g, FALSE, &e));
  rat_assert_close(g, rat_fixture_get(fx, "c0.grad_pixels"), 1e-4, 2e-3, "d image / d pixels");
  g_assert_cmpint(rat_params_numel(params, RAT_PARAM_TRAINABLE), ==, 0);
  /* GALIP's prompt path: append a prompt token before block 1, drop it after */
  RatTensor *prompt = rat_test_leaf(rat_fixture_get(fx, "c0.prompt"));
  RatTensor *x = rat_clip_vision_block(c, 0, rat_clip_vision_embed(c, rat_fixture_get(fx, "c0.pixels")));
  RatTensor *parts[2] = {x, prompt};
  x = rat_clip_vision_block(c, 1, rat_concat(parts, 2, 1));
  x = rat_clip_vision_block(c, 2, rat_slice(x, 1, 0, x->shape[1] - 1));
  rat_assert_close(x, rat_fixture_get(fx, "c0.prompt_out"), 1e-4, 1e-3, "prompt path");
  L = rat_sum_all(rat_mul(x, rat_fixture_get(fx, "c0.Rp")));
  g_assert_true(rat_grad(&L, NULL, 1, &prompt, 1, &g, FALSE, &e));
  rat_assert_close(g, rat_fixture_get(fx, "c0.grad_prompt"), 1e-4, 2e-3, "d out / d prompt");
  rat_clip_free(c);
  rat_params_free(params);
  rat_scope_pop(s);
}

static void test_hf(void) { check_model("clip_small_hf.safetensors"); }
static void test_openai(void) { check_model("clip_small_openai.safetensors"); }

static void test_transform_and_loss(void) {
  RatScope s = rat_scope_push();
  RatTensor *t = rat_clip_transform_galip(rat_fixture_get(fx, "c0.raw"), cfg.image_size);
  rat_assert_close(t, rat_fixture_get(fx, "c0.transformed"), 1e-5, 1e-5, "GALIP transform");
  RatTensor *img = rat_test_leaf(rat_fixture_get(fx, "c0.image_embed"));
  RatTensor *txt = rat_test_leaf(rat_fixture_get(fx, "c0.text_embed"));
  RatTensor *ls = rat_test_leaf(rat_scalar(logf(1.0f / 0.07f)));
  RatTensor *loss = rat_clip_contrastive_loss(img, txt, ls);
  rat_assert_close(loss, rat_fixture_get(fx, "c0.loss"), 1e-5, 1e-4, "contrastive loss");
  RatTensor *in[3] = {img, txt, ls}, *g[3];
  GError *e = NULL;
  g_assert_true(rat_grad(&loss, NULL, 1, in, 3, g, FALSE, &e));
  rat_assert_close(g[0], rat_fixture_get(fx, "c0.grad_img"), 1e-5, 1e-3, "d loss / d image embedding");
  rat_assert_close(g[1], rat_fixture_get(fx, "c0.grad_txt"), 1e-5, 1e-3, "d loss / d text embedding");
  rat_assert_close(g[2], rat_fixture_get(fx, "c0.grad_logit_scale"), 1e-5, 1e-3, "d loss / d logit scale");
  rat_scope_pop(s);
}

static void test_config_and_errors(void) {
  RatScope s = rat_scope_push();
  char *hf = fixture_file("clip_small_hf.safetensors");
  RatClipConfig got = {0};
  GError *e = NULL;
  g_assert_true(rat_clip_config_from_file(hf, &got, &e));
  g_assert_cmpint(got.vision_width, ==, cfg.vision_width);
  g_assert_cmpint(got.vision_layers, ==, cfg.vision_layers);
  g_assert_cmpint(got.vision_patch, ==, cfg.vision_patch);
  g_assert_cmpint(got.image_size, ==, cfg.image_size);
  g_assert_cmpint(got.text_layers, ==, cfg.text_layers);
  g_assert_cmpint(got.context_length, ==, cfg.context_length);
  g_assert_cmpint(got.vocab_size, ==, cfg.vocab_size);
  g_assert_cmpint(got.embed_dim, ==, cfg.embed_dim);
  /* heads come from a Hugging Face config.json beside the weights */
  char *dir = g_dir_make_tmp("ratfw-clip-XXXXXX", NULL);
  char *link = g_build_filename(dir, "model.safetensors", NULL), *cj = g_build_filename(dir, "config.json", NULL);
  g_assert_cmpint(symlink(hf, link), ==, 0);
  char *json = g_strdup_printf("{\"vision_config\": {\"num_attention_heads\": %d}, \"text_config\": "
                               "{\"num_attention_heads\": %d}}", cfg.vision_heads, cfg.text_heads);
  g_assert_true(g_file_set_contents(cj, json, -1, NULL));
  g_assert_true(rat_clip_config_from_file(dir, &got, &e));
  g_assert_cmpint(got.vision_heads, ==, cfg.vision_heads);
  g_assert_cmpint(got.text_heads, ==, cfg.text_heads);
  /* a configuration with one more vision layer: the missing tensor is named with its expected shape */
  RatClipConfig big = cfg;
  big.vision_layers++;
  RatParams *p = rat_params_new();
  RatClip *c = rat_clip_new(&big, p, "", RAT_PARAM_FROZEN);
  g_assert_false(rat_clip_load(c, dir, &e));
  g_assert_error(e, RAT_ERROR, RAT_ERROR_NOT_FOUND);
  g_assert_nonnull(strstr(e->message, "vision_model.encoder.layers.3."));
  g_assert_nonnull(strstr(e->message, "expected shape"));
  g_clear_error(&e);
  rat_clip_free(c);
  rat_params_free(p);
  /* a different embedding width: a shape error naming both shapes */
  RatClipConfig wide = cfg;
  wide.embed_dim++;
  p = rat_params_new();
  c = rat_clip_new(&wide, p, "", RAT_PARAM_FROZEN);
  g_assert_false(rat_clip_load(c, hf, &e));
  g_assert_error(e, RAT_ERROR, RAT_ERROR_SHAPE);
  g_assert_nonnull(strstr(e->message, "visual_projection.weight"));
  g_clear_error(&e);
  rat_clip_free(c);
  rat_params_free(p);
  g_unlink(link);
  g_unlink(cj);
  g_rmdir(dir);
  g_free(json);
  g_free(link);
  g_free(cj);
  g_free(dir);
  g_free(hf);
  rat_scope_pop(s);
}

int main(int argc, char **argv) {
  rat_test_init(&argc, &argv);
  fx = rat_fixture_open("clip");
  cfg = (RatClipConfig){.vision_width = meta_int("vision_width"), .vision_layers = meta_int("vision_layers"),
                        .vision_heads = meta_int("vision_heads"), .vision_patch = meta_int("patch"),
                        .image_size = meta_int("image"), .text_width = meta_int("text_width"),
                        .text_layers = meta_int("text_layers"), .text_heads = meta_int("text_heads"),
                        .context_length = meta_int("context"), .vocab_size = meta_int("vocab"),
                        .embed_dim = meta_int("embed")};
  g_test_add_func("/clip/hugging-face-names", test_hf);
  g_test_add_func("/clip/openai-names", test_openai);
  g_test_add_func("/clip/transform-and-loss", test_transform_and_loss);
  g_test_add_func("/clip/config-and-errors", test_config_and_errors);
  int rc = g_test_run();
  rat_fixture_close(fx);
  return rc;
}
