/* CLIP against tools/reference/ref_clip.py: a small random CLIP saved in Hugging Face names (F32) and in OpenAI names
 * (F16/BF16) gives the same text and image embeddings, tapped residual streams, prompt-token path, gradients w.r.t.
 * pixels and prompt (frozen weights) and w.r.t. the weights (trainable), EOT pooling by id, GALIP and standard
 * transforms, and contrastive loss as PyTorch; finite-difference checks (second order through the vision tower);
 * configuration inference; load errors. */
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

/* Both files (F32 Hugging Face; F16 vision + BF16 text in OpenAI names) load to identical parameters. */
static void test_same_parameters(void) {
  RatScope s = rat_scope_push();
  RatParams *a, *b;
  RatClip *ca = load("clip_small_hf.safetensors", &a), *cb = load("clip_small_openai.safetensors", &b);
  g_assert_cmpuint(rat_params_size(a), ==, rat_params_size(b));
  for (guint i = 0; i < rat_params_size(a); i++) {
    RatTensor *x = rat_params_tensor(a, i), *y = rat_params_tensor(b, i);
    gint64 n = rat_tensor_numel(x);
    float *u = g_new(float, n), *v = g_new(float, n);
    rat_tensor_read(x, u);
    rat_tensor_read(y, v);
    g_assert_cmpmem(u, n * sizeof(float), v, n * sizeof(float));
    g_free(u);
    g_free(v);
  }
  rat_clip_free(ca);
  rat_clip_free(cb);
  rat_params_free(a);
  rat_params_free(b);
  rat_scope_pop(s);
}

/* Pretraining: trainable weights get the gradients PyTorch gives. */
static void test_trainable_gradients(void) {
  RatScope s = rat_scope_push();
  RatParams *params = rat_params_new();
  RatClip *c = rat_clip_new(&cfg, params, "clip.", RAT_PARAM_TRAINABLE);
  rat_params_finalize(params);
  char *path = fixture_file("clip_small_hf.safetensors");
  GError *e = NULL;
  g_assert_true(rat_clip_load(c, path, &e));
  g_free(path);
  static const char *const vis[] = {"visual.conv1.weight",
                                    "visual.class_embedding",
                                    "visual.transformer.resblocks.1.attn.in_proj_weight",
                                    "visual.transformer.resblocks.2.mlp.c_fc.bias",
                                    "visual.ln_post.weight",
                                    "visual.proj"};
  static const char *const txt[] = {"token_embedding.weight",
                                    "positional_embedding",
                                    "transformer.resblocks.0.attn.in_proj_bias",
                                    "transformer.resblocks.1.mlp.c_proj.bias",
                                    "ln_final.bias",
                                    "text_projection"};
  for (int tower = 0; tower < 2; tower++) {
    const char *const *names = tower ? txt : vis;
    RatTensor *in[6], *g[6];
    for (int k = 0; k < 6; k++) {
      char *full = g_strdup_printf("clip.%s", names[k]);
      in[k] = rat_params_lookup(params, full);
      g_assert_nonnull(in[k]);
      g_assert_true(in[k]->requires_grad);
      g_free(full);
    }
    RatTensor *out = tower ? rat_clip_encode_text(c, rat_fixture_get(fx, "c0.ids"))
                           : rat_clip_encode_image(c, rat_fixture_get(fx, "c0.pixels"));
    RatTensor *L = rat_sum_all(rat_mul(out, rat_fixture_get(fx, tower ? "c0.Rtxt" : "c0.R")));
    g_assert_true(rat_grad(&L, NULL, 1, in, 6, g, FALSE, &e));
    for (int k = 0; k < 6; k++) {
      g_assert_nonnull(g[k]);
      rat_assert_close(g[k], rat_fixture_get(fx, "c0.pgrad.%s", names[k]), 1e-4, 2e-3, names[k]);
    }
  }
  g_assert_cmpint(rat_params_numel(params, RAT_PARAM_FROZEN), ==, 0);
  rat_clip_free(c);
  rat_params_free(params);
  rat_scope_pop(s);
}

/* A word tokenizer's end id is not the largest: pooling at its first position (argmax would pick another). */
static void test_eot_pooling(void) {
  RatScope s = rat_scope_push();
  RatParams *params;
  RatClip *c = load("clip_small_hf.safetensors", &params);
  RatTensor *t = rat_clip_encode_text_eot(c, rat_fixture_get(fx, "c0.ids_w"), (gint32)meta_int("eot_id"));
  rat_assert_close(t, rat_fixture_get(fx, "c0.text_embed_eot"), 1e-4, 1e-3, "text embedding pooled at eot_id");
  const gint64 pos[3] = {4, 11, 0}; /* where ref_clip.py put the end ids */
  rat_assert_close(rat_clip_encode_text_at(c, rat_fixture_get(fx, "c0.ids_w"), pos),
                   rat_fixture_get(fx, "c0.text_embed_eot"), 1e-4, 1e-3, "text embedding pooled at explicit positions");
  rat_clip_free(c);
  rat_params_free(params);
  rat_scope_pop(s);
}

static void test_transforms(void) {
  RatScope s = rat_scope_push();
  GError *e = NULL;
  RatTensor *raw = rat_test_leaf(rat_fixture_get(fx, "c0.raw")), *g;
  RatTensor *t = rat_clip_transform_galip(raw, cfg.image_size);
  RatTensor *L = rat_sum_all(rat_mul(t, rat_fixture_get(fx, "c0.Rt")));
  g_assert_true(rat_grad(&L, NULL, 1, &raw, 1, &g, FALSE, &e));
  rat_assert_close(g, rat_fixture_get(fx, "c0.grad_raw"), 1e-5, 1e-5, "d GALIP transform / d x");
  t = rat_clip_transform_standard(raw, cfg.image_size);
  rat_assert_close(t, rat_fixture_get(fx, "c0.standard"), 1e-5, 1e-5, "standard transform (bicubic down)");
  L = rat_sum_all(rat_mul(t, rat_fixture_get(fx, "c0.Rt")));
  g_assert_true(rat_grad(&L, NULL, 1, &raw, 1, &g, FALSE, &e));
  rat_assert_close(g, rat_fixture_get(fx, "c0.grad_raw_standard"), 1e-5, 1e-4, "d standard transform / d x");
  RatTensor *raw2 = rat_test_leaf(rat_fixture_get(fx, "c0.raw2"));
  t = rat_clip_transform_standard(raw2, cfg.image_size);
  rat_assert_close(t, rat_fixture_get(fx, "c0.standard2"), 1e-5, 1e-5, "standard transform (bicubic up + crop)");
  L = rat_sum_all(rat_mul(t, rat_fixture_get(fx, "c0.Rt2")));
  g_assert_true(rat_grad(&L, NULL, 1, &raw2, 1, &g, FALSE, &e));
  rat_assert_close(g, rat_fixture_get(fx, "c0.grad_raw2"), 1e-5, 1e-4, "d standard transform (up + crop) / d x");
  rat_scope_pop(s);
}

/* Finite differences: first and second order through the vision tower (the discriminator taps it and MA-GP
 * differentiates the gradient w.r.t. the image), and first order through the contrastive loss. */
static RatClip *fd_clip;
static RatTensor *fd_vision(RatTensor *const *in, gpointer user) {
  (void)user;
  RatTensor *tap;
  const int blocks[1] = {1};
  RatTensor *emb = rat_clip_vision_taps(fd_clip, in[0], blocks, 1, &tap);
  RatTensor *parts[2] = {rat_flatten(tap, 0, -1), rat_flatten(emb, 0, -1)};
  return rat_concat(parts, 2, 0);
}
static RatTensor *fd_loss(RatTensor *const *in, gpointer user) {
  (void)user;
  return rat_clip_contrastive_loss(in[0], in[1], in[2]);
}

static void test_finite_differences(void) {
  RatScope s = rat_scope_push();
  RatParams *params;
  fd_clip = load("clip_small_hf.safetensors", &params);
  RatTensor *px = rat_test_leaf(rat_slice(rat_fixture_get(fx, "c0.pixels"), 0, 0, 1));
  int saved = rat_test_max_elems;
  rat_test_max_elems = 12;
  rat_gradcheck("clip vision", fd_vision, NULL, 1, &px, 1e-2, 2e-3, 2e-2);
  rat_gradgradcheck("clip vision", fd_vision, NULL, 1, &px, 1e-2, 5e-3, 5e-2);
  RatTensor *in[3] = {rat_test_leaf(rat_fixture_get(fx, "c0.image_embed")),
                      rat_test_leaf(rat_fixture_get(fx, "c0.text_embed")), rat_test_leaf(rat_scalar(2.0f))};
  rat_gradcheck("contrastive loss", fd_loss, NULL, 3, in, 1e-2, 1e-3, 1e-2);
  rat_test_max_elems = saved;
  rat_clip_free(fd_clip);
  rat_params_free(params);
  rat_scope_pop(s);
}

/* Copies the Hugging Face fixture to @out with tensor @name replaced by @repl (NULL: dropped). */
static void rewrite_fixture(const char *out, const char *name, RatTensor *repl) {
  char *src = fixture_file("clip_small_hf.safetensors");
  GError *e = NULL;
  RatSafetensors *st = rat_safetensors_open(src, &e);
  g_assert_no_error(e);
  guint n = rat_safetensors_count(st), m = 0;
  const char **names = g_new(const char *, n);
  RatTensor **ts = g_new(RatTensor *, n);
  for (guint i = 0; i < n; i++) {
    const char *k = rat_safetensors_name(st, i);
    if (!strcmp(k, name) && !repl) continue;
    names[m] = k;
    ts[m++] = !strcmp(k, name) ? repl : rat_safetensors_get(st, k, &e);
    g_assert_no_error(e);
  }
  g_assert_true(rat_safetensors_save(out, m, names, ts, NULL, &e));
  rat_safetensors_close(st);
  g_free(names);
  g_free(ts);
  g_free(src);
}

/* Loads @file into a fresh frozen CLIP of @c; expects failure with @code and every string of @want in the message,
 * and the parameters untouched (still their construction values). */
static void expect_load_error(const RatClipConfig *c, const char *file, GQuark domain, int code,
                              const char *const *want) {
  RatScope s = rat_scope_push();
  RatParams *p = rat_params_new();
  RatClip *clip = rat_clip_new(c, p, "", RAT_PARAM_FROZEN);
  rat_params_finalize(p);
  GError *e = NULL;
  g_assert_false(rat_clip_load(clip, file, &e));
  g_assert_error(e, domain, code);
  for (; *want; want++)
    if (!strstr(e->message, *want)) g_error("'%s' not in the error: %s", *want, e->message);
  g_assert_cmpfloat(rat_tensor_item(rat_sum_all(rat_abs(rat_params_lookup(p, "visual.conv1.weight")))), ==, 0.0);
  g_clear_error(&e);
  rat_clip_free(clip);
  rat_params_free(p);
  rat_scope_pop(s);
}

static void test_load_errors(void) {
  RatScope s = rat_scope_push();
  char *dir = g_dir_make_tmp("ratfw-clip-XXXXXX", NULL), *f = g_build_filename(dir, "bad.safetensors", NULL);
  /* OpenAI names: one text layer more than the file has */
  RatClipConfig more = cfg;
  more.text_layers++;
  char *oa = fixture_file("clip_small_openai.safetensors");
  const char *w1[] = {"missing tensor transformer.resblocks.2.attn.in_proj_weight", "expected shape [72, 24]", NULL};
  expect_load_error(&more, oa, RAT_ERROR, RAT_ERROR_NOT_FOUND, w1);
  /* Hugging Face names: a k_proj of the wrong shape is named with the shape of one of q, k, v */
  rewrite_fixture(f, "vision_model.encoder.layers.1.self_attn.k_proj.weight", rat_zeros(RAT_SHAPE(24, 20)));
  const char *w2[] = {"vision_model.encoder.layers.1.self_attn.k_proj.weight has shape [24, 20], expected [24, 24]",
                      "visual.transformer.resblocks.1.attn.in_proj_weight", NULL};
  expect_load_error(&cfg, f, RAT_ERROR, RAT_ERROR_SHAPE, w2);
  /* a dropped v_proj bias */
  rewrite_fixture(f, "text_model.encoder.layers.0.self_attn.v_proj.bias", NULL);
  const char *w3[] = {"missing tensor text_model.encoder.layers.0.self_attn.v_proj.bias", "expected shape [24]", NULL};
  expect_load_error(&cfg, f, RAT_ERROR, RAT_ERROR_NOT_FOUND, w3);
  /* an integer tensor where a weight belongs */
  rewrite_fixture(f, "logit_scale", rat_empty_dtype(RAT_DTYPE_I32, RAT_SHAPE0));
  const char *w4[] = {"tensor logit_scale is I32", NULL};
  expect_load_error(&cfg, f, RAT_ERROR, RAT_ERROR_CORRUPT, w4);
  /* the transposed projection in its Hugging Face orientation */
  rewrite_fixture(f, "text_projection.weight", rat_zeros(RAT_SHAPE(24, 16)));
  const char *w5[] = {"text_projection.weight has shape [24, 16], expected [16, 24]", NULL};
  expect_load_error(&cfg, f, RAT_ERROR, RAT_ERROR_SHAPE, w5);
  g_unlink(f);
  g_rmdir(dir);
  g_free(f);
  g_free(dir);
  g_free(oa);
  rat_scope_pop(s);
}

/* Result bits do not depend on the thread count. */
static void test_thread_invariance(void) {
  RatScope s = rat_scope_push();
  RatParams *params;
  RatClip *c = load("clip_small_hf.safetensors", &params);
  int saved = rat_get_num_threads();
  RatTensor *out[2][2];
  for (int k = 0; k < 2; k++) {
    rat_set_num_threads(k ? 2 : 1);
    out[k][0] = rat_clip_encode_image(c, rat_fixture_get(fx, "c0.pixels"));
    out[k][1] = rat_clip_encode_text(c, rat_fixture_get(fx, "c0.ids"));
  }
  rat_set_num_threads(saved);
  rat_assert_close(out[1][0], out[0][0], 0.0, 0.0, "image, 2 vs 1 threads");
  rat_assert_close(out[1][1], out[0][1], 0.0, 0.0, "text, 2 vs 1 threads");
  rat_clip_free(c);
  rat_params_free(params);
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
  g_test_add_func("/clip/f16-bf16-load-identical", test_same_parameters);
  g_test_add_func("/clip/trainable-gradients", test_trainable_gradients);
  g_test_add_func("/clip/eot-pooling", test_eot_pooling);
  g_test_add_func("/clip/transforms", test_transforms);
  g_test_add_func("/clip/finite-differences", test_finite_differences);
  g_test_add_func("/clip/load-errors", test_load_errors);
  g_test_add_func("/clip/thread-invariance", test_thread_invariance);
  int rc = g_test_run();
  rat_fixture_close(fx);
  return rc;
}
