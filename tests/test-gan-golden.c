/* GALIP and RATLIP against the project's PyTorch reference (tools/reference/ref_gan.py): a tiny random CLIP (the
 * one of tests/fixtures/clip, frozen), the generator, the discriminator and ONE WHOLE TRAINING ITERATION as
 * rat_gan_d_step / rat_gan_g_step run it for the train_gan task: D losses (hinge real/fake, sentence mismatch,
 * MA-GP through double backward), every D gradient, D's parameters after Adam, then the G losses (adversarial,
 * CLIP similarity), every G gradient and G's parameters after Adam, plus batch norm's running statistics (RATLIP).
 * Run with --list to print the parameter names and shapes the reference must produce. */
#include "config.h"

#include "testutil.h"

#include <ratfw/ratfw.h>
#include <math.h>
#include <string.h>

static RatRegistry *reg;
static gboolean list_mode;

static const char *const g_common[] = {"nf=4", "z_dim=8", "code_channels=8", "mid_channels=8", "map_num=2",
                                       "image_size=16", "prompt_blocks=[1, 2]"};
static const char *const d_over[] = {"nf=4", "taps=[0, 1, 2]", NULL};

typedef struct {
  RatParams *clip_params;
  RatClip *clip;
  RatGanContext gctx;
  RatGan gan;
  RatOptim *opt_g, *opt_d;
} Setup;

static RatClipConfig tiny_clip(void) {
  return (RatClipConfig){.vision_width = 12, .vision_layers = 3, .vision_heads = 2, .vision_patch = 4, .image_size = 16,
                         .text_width = 8, .text_layers = 1, .text_heads = 2, .context_length = 12, .vocab_size = 50,
                         .embed_dim = 16};
}

static void setup(Setup *s, gboolean ratlip) {
  memset(s, 0, sizeof *s);
  RatClipConfig cfg = tiny_clip();
  s->clip_params = rat_params_new();
  s->clip = rat_clip_new(&cfg, s->clip_params, "", RAT_PARAM_FROZEN);
  rat_params_finalize(s->clip_params);
  s->gctx = (RatGanContext){.clip = s->clip, .sentence_dim = cfg.embed_dim};
  RatRng rng;
  rat_rng_init(&rng, 1);
  s->gan.g_params = rat_params_new();
  s->gan.d_params = rat_params_new();
  RatBuildContext ctx = {.params = s->gan.g_params, .rng = &rng, .user = &s->gctx};
  GPtrArray *ov = g_ptr_array_new();
  for (guint i = 0; i < G_N_ELEMENTS(g_common); i++) g_ptr_array_add(ov, (gpointer)g_common[i]);
  if (ratlip) {
    g_ptr_array_add(ov, "adapter_fusion={type: rat, hidden: 6, recurrence: batch_sequence}");
    g_ptr_array_add(ov, "adapter_conv={type: conv_shuffle, groups: 2}");
    g_ptr_array_add(ov, "block_conv={type: conv_shuffle, groups: 2}");
  }
  g_ptr_array_add(ov, NULL);
  GError *e = NULL;
  s->gan.gen = rat_module_build_named(reg, "galip_generator", "generator", RAT_KIND_GENERATOR,
                                      (const char *const *)ov->pdata, &ctx, &e);
  g_assert_no_error(e);
  g_ptr_array_free(ov, TRUE);
  ctx.params = s->gan.d_params;
  s->gan.disc = rat_module_build_named(reg, "galip_discriminator", "discriminator", RAT_KIND_DISCRIMINATOR, d_over, &ctx, &e);
  g_assert_no_error(e);
  rat_params_finalize(s->gan.g_params);
  rat_params_finalize(s->gan.d_params);
  s->gan.z_dim = 8;
  s->gan.image_size = 16;
  s->opt_g = rat_adam_new(s->gan.g_params, 1e-4f, 0.0f, 0.9f, 1e-8f, 0.0f);
  s->opt_d = rat_adam_new(s->gan.d_params, 4e-4f, 0.0f, 0.9f, 1e-8f, 0.0f);
}

static void teardown(Setup *s) {
  rat_optim_free(s->opt_g);
  rat_optim_free(s->opt_d);
  rat_module_free(s->gan.gen);
  rat_module_free(s->gan.disc);
  rat_params_free(s->gan.g_params);
  rat_params_free(s->gan.d_params);
  if (s->clip) { /* DF-GAN runs without a CLIP */
    rat_clip_free(s->clip);
    rat_params_free(s->clip_params);
  }
}

static void print_params(const char *what, RatParams *p) {
  for (guint i = 0; i < rat_params_size(p); i++) {
    char *sh = rat_shape_to_string(rat_tensor_shape(rat_params_tensor(p, i)));
    printf("%s %s %s %d\n", what, rat_params_name(p, i), sh, (int)rat_params_kind(p, i));
    g_free(sh);
  }
}

/* Every entry of @p named "<prefix><name>" in the fixture equals the parameter (or its gradient). */
static void compare_params(RatFixture *f, RatParams *p, const char *prefix, gboolean grads, double atol, double rtol) {
  for (guint i = 0; i < rat_params_size(p); i++) {
    RatTensor *t = rat_params_tensor(p, i);
    const char *name = rat_params_name(p, i);
    if (grads && rat_params_kind(p, i) != RAT_PARAM_TRAINABLE) continue;
    if (!rat_fixture_has(f, "%s%s", prefix, name)) g_error("fixture lacks %s%s", prefix, name);
    RatTensor *got = grads ? (t->grad ? t->grad : rat_zeros_like(t)) : t;
    char *what = g_strdup_printf("%s%s", prefix, name);
    rat_assert_close(got, rat_fixture_get(f, "%s%s", prefix, name), atol, rtol, what);
    g_free(what);
  }
}

static void load_params(RatFixture *f, RatParams *p, const char *prefix) {
  for (guint i = 0; i < rat_params_size(p); i++) {
    RatTensor *t = rat_params_tensor(p, i);
    /* the fixture holds only the CLIP's vision tower (the text tower is never run here) */
    if (!strcmp(prefix, "clip.") && !g_str_has_prefix(rat_params_name(p, i), "visual.")) continue;
    rat_tensor_copy_(t, rat_fixture_get(f, "%s%s", prefix, rat_params_name(p, i)));
    rat_tensor_bump_version(t);
  }
}

/* After one Adam step from @before with betas (0, 0.9): w = w0 - lr g / (|g| + eps) (m = g, v = 0.1 g^2, both
 * bias-corrected to g and g^2), with the gradient this test already compared with PyTorch. Buffers must equal the
 * fixture's "g1." entries (batch norm's running statistics after the training-mode forward). */
static void check_step(RatFixture *f, RatParams *p, const char *before, float lr) {
  for (guint i = 0; i < rat_params_size(p); i++) {
    RatTensor *t = rat_params_tensor(p, i);
    const char *name = rat_params_name(p, i);
    char *what = g_strdup_printf("%s after the step", name);
    if (rat_params_kind(p, i) == RAT_PARAM_BUFFER) {
      rat_assert_close(t, rat_fixture_get(f, "g1.%s", name), 1e-6, 1e-5, what);
    } else if (rat_params_kind(p, i) == RAT_PARAM_TRAINABLE) {
      RatTensor *w0 = rat_contiguous(rat_fixture_get(f, "%s%s", before, name));
      RatTensor *g = rat_contiguous(t->grad ? t->grad : rat_zeros_like(t));
      RatTensor *want = rat_empty(rat_tensor_shape(t));
      const float *a = rat_tensor_data(w0), *gg = rat_tensor_data(g);
      float *o = rat_tensor_data(want);
      for (gint64 k = 0; k < rat_tensor_numel(t); k++) o[k] = a[k] - lr * gg[k] / (fabsf(gg[k]) + 1e-8f);
      rat_assert_close(t, want, 1e-7, 1e-6, what);
    }
    g_free(what);
  }
}

static void check_scalar(RatFixture *f, const char *name, double got, double atol, double rtol) {
  double want = rat_tensor_item(rat_fixture_get(f, "%s", name));
  if (fabs(got - want) > atol + rtol * fabs(want)) g_error("%s: got %.9g, reference %.9g", name, got, want);
  g_test_message("%s: %.9g (torch %.9g)", name, got, want);
}

/* MA-GP alone on (x, sentence): its value against the fixture's L_gp and its gradient w.r.t. every D parameter
 * against "pgrad.*" (the discriminator's second derivatives), tolerance relative to each tensor's largest entry. */
static void check_penalty(RatFixture *f, Setup *s, RatTensor *x, RatTensor *sent, double value_atol, double grad_floor) {
  RatTensor *xl = rat_test_leaf(rat_copy(x)), *sl = rat_test_leaf(rat_copy(sent));
  RatTensor *l = rat_discriminator_logits(s->gan.disc, rat_discriminator_features(s->gan.disc, xl), sl);
  RatTensor *P = rat_ma_gp(l, xl, sl, 2.0, 6.0);
  check_scalar(f, "L_gp", rat_tensor_item(P), value_atol, 2e-3);
  guint n = rat_params_size(s->gan.d_params);
  RatTensor **in = g_new(RatTensor *, n), **gr = g_new(RatTensor *, n);
  for (guint i = 0; i < n; i++) in[i] = rat_params_tensor(s->gan.d_params, i);
  GError *pe = NULL;
  g_assert_true(rat_grad(&P, NULL, 1, in, n, gr, FALSE, &pe));
  for (guint i = 0; i < n; i++) {
    char *what = g_strdup_printf("dMA-GP/d%s", rat_params_name(s->gan.d_params, i));
    RatTensor *want = rat_contiguous(rat_fixture_get(f, "pgrad.%s", rat_params_name(s->gan.d_params, i)));
    double scale = 0;
    for (gint64 k = 0; k < rat_tensor_numel(want); k++) scale = MAX(scale, fabs(rat_tensor_data(want)[k]));
    rat_assert_close(gr[i], want, 1e-3 * scale + grad_floor, 5e-3, what);
    g_free(what);
  }
  g_free(in);
  g_free(gr);
}

static void run_case(gconstpointer data) {
  gboolean ratlip = GPOINTER_TO_INT(data);
  RatScope scope = rat_scope_push();
  Setup s;
  setup(&s, ratlip);
  RatFixture *f = rat_fixture_open(ratlip ? "gan_ratlip" : "gan_galip");
  load_params(f, s.clip_params, "clip.");
  load_params(f, s.gan.g_params, "g0.");
  load_params(f, s.gan.d_params, "d0.");
  rat_module_set_training(s.gan.gen, TRUE);
  rat_module_set_training(s.gan.disc, TRUE);
  RatTensor *x = rat_fixture_get(f, "x"), *sent = rat_fixture_get(f, "s"), *z = rat_fixture_get(f, "z");

  /* forward pieces, no grad: G(z, s), D.encode (CLIP taps and image embedding), D logits */
  RAT_NO_GRAD_BEGIN
  RatTensor *emb = NULL, *xr = rat_discriminator_encode(s.gan.disc, x, &emb);
  rat_assert_close(xr, rat_fixture_get(f, "x_real"), 2e-5, 2e-4, "D.encode(x): CLIP taps");
  rat_assert_close(emb, rat_fixture_get(f, "e_real"), 2e-5, 2e-4, "D.encode(x): CLIP image embedding");
  RatTensor *lr = rat_discriminator_logits(s.gan.disc, rat_discriminator_features(s.gan.disc, xr), sent);
  rat_assert_close(lr, rat_fixture_get(f, "l_real"), 2e-5, 2e-4, "D logits on real pairs");
  RatTensor *fake = rat_generator_forward(s.gan.gen, z, sent);
  rat_assert_close(fake, rat_fixture_get(f, "fake"), 2e-5, 2e-4, "G(z, s)");
  RAT_NO_GRAD_END
  /* the forward above moved batch norm's running statistics (RATLIP): restore them */
  load_params(f, s.gan.g_params, "g0.");

  /* MA-GP alone: value and its gradient w.r.t. every D parameter (the discriminator's second derivatives) */
  check_penalty(f, &s, rat_fixture_get(f, "x_real"), sent, 1e-9, 1e-12);
  RatGanLossOptions lo = {.mismatch = "sentence", .gp_k = 2.0, .gp_p = 6.0, .sim_weight = 4.0};
  RatGanFake fk = {0};
  RatGanLosses L = {0};
  GError *e = NULL;
  g_assert_true(rat_gan_d_step(&s.gan, s.opt_d, &lo, x, sent, z, 0, &fk, &L, &e));
  check_scalar(f, "L_real", L.real, 1e-5, 1e-4);
  check_scalar(f, "L_fake", L.fake, 1e-5, 1e-4);
  check_scalar(f, "L_mis", L.mis, 1e-5, 1e-4);
  check_scalar(f, "L_gp", L.gp, 1e-9, 2e-3);
  check_scalar(f, "L_D", L.d, 1e-5, 1e-4);
  compare_params(f, s.gan.d_params, "dgrad.", TRUE, 1e-6, 2e-3);
  check_step(f, s.gan.d_params, "d0.", 4e-4f);
  g_assert_true(rat_gan_g_step(&s.gan, s.opt_g, &lo, &fk, 0, &L, &e));
  check_scalar(f, "L_adv", L.g_adv, 1e-5, 1e-4);
  check_scalar(f, "sim", L.sim, 1e-5, 1e-4);
  check_scalar(f, "L_G", L.g, 1e-5, 1e-4);
  compare_params(f, s.gan.g_params, "ggrad.", TRUE, 1e-6, 2e-3);
  check_step(f, s.gan.g_params, "g0.", 1e-4f);
  rat_fixture_close(f);
  teardown(&s);
  rat_scope_pop(scope);
}

/* Finite differences: G's output w.r.t. a few parameters and z (first order), and the MA-GP penalty w.r.t. its input
 * and NetC's last conv (the penalty's gradient is the discriminator's second order). */
typedef struct {
  Setup *s;
  RatTensor *x, *sent, *z;
} FdCtx;

static RatTensor *fn_g(RatTensor *const *in, gpointer user) {
  FdCtx *c = user;
  return rat_generator_forward(c->s->gan.gen, in[0], c->sent);
}

static RatTensor *fn_penalty(RatTensor *const *in, gpointer user) {
  FdCtx *c = user;
  RatTensor *xr = rat_test_leaf(rat_copy(in[0])), *sl = rat_test_leaf(rat_copy(c->sent));
  RatTensor *l = rat_discriminator_logits(c->s->gan.disc, rat_discriminator_features(c->s->gan.disc, xr), sl);
  return rat_ma_gp(l, xr, sl, 1.0, 2.0); /* p = 2: larger values, so float32 finite differences resolve them */
}

static void test_finite_differences(void) {
  RatScope scope = rat_scope_push();
  Setup s;
  setup(&s, FALSE);
  RatFixture *f = rat_fixture_open("gan_galip");
  load_params(f, s.clip_params, "clip.");
  load_params(f, s.gan.g_params, "g0.");
  load_params(f, s.gan.d_params, "d0.");
  FdCtx c = {.s = &s, .x = rat_fixture_get(f, "x_real"), .sent = rat_fixture_get(f, "s")};
  int keep = rat_test_max_elems;
  rat_test_max_elems = 6;
  RatTensor *gin[3] = {rat_test_leaf(rat_copy(rat_fixture_get(f, "z"))),
                       rat_params_lookup(s.gan.g_params, "generator.mapping.fc_prompt.weight"),
                       rat_params_lookup(s.gan.g_params, "generator.to_rgb.weight")};
  rat_gradcheck("G(z, s) w.r.t. z, fc_prompt, to_rgb", fn_g, &c, 3, gin, 2e-3, 2e-3, 5e-2);
  /* NetC's last conv only: parameters ahead of a LeakyReLU move its kinks, and a probe across a kink makes the
   * finite difference meaningless; the gradient w.r.t. every D parameter is compared with PyTorch above */
  RatTensor *din[2] = {c.x, rat_params_lookup(s.gan.d_params, "discriminator.joint_conv.2.weight")};
  rat_gradcheck("MA-GP w.r.t. its input and NetC's last conv (second order of D)", fn_penalty, &c, 2, din, 1e-3, 1e-5, 3e-2);
  rat_test_max_elems = keep;
  rat_fixture_close(f);
  teardown(&s);
  rat_scope_pop(scope);
}

/* DF-GAN (plugins/dfgan.c) against ref_gan.py's run_dfgan: no CLIP; the discriminator reads pixels, so MA-GP
 * differentiates with respect to the images; mismatch rolls the real features; L_G has no similarity term. */
static void setup_dfgan(Setup *s) {
  memset(s, 0, sizeof *s);
  s->gctx = (RatGanContext){.clip = NULL, .sentence_dim = 16};
  RatRng rng;
  rat_rng_init(&rng, 1);
  s->gan.g_params = rat_params_new();
  s->gan.d_params = rat_params_new();
  RatBuildContext ctx = {.params = s->gan.g_params, .rng = &rng, .user = &s->gctx};
  static const char *const g_over[] = {"nf=4", "z_dim=8", "image_size=32", NULL};
  static const char *const dd_over[] = {"nf=2", "image_size=32", NULL};
  GError *e = NULL;
  s->gan.gen = rat_module_build_named(reg, "dfgan_generator", "generator", RAT_KIND_GENERATOR, g_over, &ctx, &e);
  g_assert_no_error(e);
  ctx.params = s->gan.d_params;
  s->gan.disc = rat_module_build_named(reg, "dfgan_discriminator", "discriminator", RAT_KIND_DISCRIMINATOR, dd_over, &ctx, &e);
  g_assert_no_error(e);
  rat_params_finalize(s->gan.g_params);
  rat_params_finalize(s->gan.d_params);
  s->gan.z_dim = 8;
  s->gan.image_size = 32;
  s->opt_g = rat_adam_new(s->gan.g_params, 1e-4f, 0.0f, 0.9f, 1e-8f, 0.0f);
  s->opt_d = rat_adam_new(s->gan.d_params, 4e-4f, 0.0f, 0.9f, 1e-8f, 0.0f);
}

static void test_dfgan(void) {
  RatScope scope = rat_scope_push();
  Setup s;
  setup_dfgan(&s);
  RatFixture *f = rat_fixture_open("gan_dfgan");
  load_params(f, s.gan.g_params, "g0.");
  load_params(f, s.gan.d_params, "d0.");
  rat_module_set_training(s.gan.gen, TRUE);
  rat_module_set_training(s.gan.disc, TRUE);
  RatTensor *x = rat_fixture_get(f, "x"), *sent = rat_fixture_get(f, "s"), *z = rat_fixture_get(f, "z");
  RAT_NO_GRAD_BEGIN
  RatTensor *emb = (RatTensor *)1, *xr = rat_discriminator_encode(s.gan.disc, x, &emb);
  g_assert_null(emb); /* no CLIP image embedding: the similarity loss must be off */
  RatTensor *lr = rat_discriminator_logits(s.gan.disc, rat_discriminator_features(s.gan.disc, xr), sent);
  rat_assert_close(lr, rat_fixture_get(f, "l_real"), 2e-5, 2e-4, "DF-GAN D logits on real pairs");
  rat_assert_close(rat_generator_forward(s.gan.gen, z, sent), rat_fixture_get(f, "fake"), 2e-5, 2e-4, "DF-GAN G(z, s)");
  RAT_NO_GRAD_END
  check_penalty(f, &s, x, sent, 1e-12, 1e-14);
  RatGanLossOptions lo = {.mismatch = "features", .gp_k = 2.0, .gp_p = 6.0, .sim_weight = 0.0};
  RatGanFake fk = {0};
  RatGanLosses L = {0};
  GError *e = NULL;
  g_assert_true(rat_gan_d_step(&s.gan, s.opt_d, &lo, x, sent, z, 0, &fk, &L, &e));
  check_scalar(f, "L_real", L.real, 1e-5, 1e-4);
  check_scalar(f, "L_fake", L.fake, 1e-5, 1e-4);
  check_scalar(f, "L_mis", L.mis, 1e-5, 1e-4);
  check_scalar(f, "L_gp", L.gp, 1e-12, 2e-3);
  check_scalar(f, "L_D", L.d, 1e-5, 1e-4);
  compare_params(f, s.gan.d_params, "dgrad.", TRUE, 1e-6, 2e-3);
  check_step(f, s.gan.d_params, "d0.", 4e-4f);
  g_assert_true(rat_gan_g_step(&s.gan, s.opt_g, &lo, &fk, 0, &L, &e));
  check_scalar(f, "L_adv", L.g_adv, 1e-5, 1e-4);
  check_scalar(f, "L_G", L.g, 1e-5, 1e-4);
  compare_params(f, s.gan.g_params, "ggrad.", TRUE, 1e-6, 2e-3);
  check_step(f, s.gan.g_params, "g0.", 1e-4f);
  /* with a similarity weight the G step refuses: DF-GAN's discriminator has no CLIP embedding */
  lo.sim_weight = 4;
  g_assert_false(rat_gan_g_step(&s.gan, s.opt_g, &lo, &fk, 0, &L, &e));
  g_assert_error(e, RAT_ERROR, RAT_ERROR_CONFIG);
  g_clear_error(&e);

  /* finite differences: G w.r.t. z and to_rgb; MA-GP w.r.t. the pixels and NetC's last conv (D's second order) */
  FdCtx c = {.s = &s, .x = x, .sent = sent};
  load_params(f, s.gan.g_params, "g0.");
  load_params(f, s.gan.d_params, "d0.");
  int keep = rat_test_max_elems;
  rat_test_max_elems = 6;
  RatTensor *gin[2] = {rat_test_leaf(rat_copy(z)), rat_params_lookup(s.gan.g_params, "generator.to_rgb.weight")};
  rat_gradcheck("DF-GAN G(z, s) w.r.t. z and to_rgb", fn_g, &c, 2, gin, 2e-3, 2e-3, 5e-2);
  RatTensor *din[2] = {x, rat_params_lookup(s.gan.d_params, "discriminator.joint_conv.2.weight")};
  rat_gradcheck("DF-GAN MA-GP w.r.t. the pixels and NetC's last conv (second order of D)", fn_penalty, &c, 2, din, 1e-3,
                1e-6, 3e-2);
  rat_test_max_elems = keep;
  rat_fixture_close(f);
  teardown(&s);
  rat_scope_pop(scope);
}

/* tools/convert-checkpoint.py on checkpoints in the released layouts (tools/reference/ref_released.py: torch
 * nn.Module trees named as GALIP, RATLIP (saved with DDP's "module." prefix) and DF-GAN name theirs, with the frozen
 * CLIP inside GALIP's generator in fp16): the converted file loads into ratfw's modules and reproduces PyTorch's
 * G(z, s) (eval mode) and D logits. Needs python3-torch to unpickle the .pth files. */
static void test_converted(void) {
  const char *src = g_getenv("RATFW_SRCDIR");
  if (!src) src = RATFW_SRCDIR;
  char *probe[] = {"/usr/bin/python3", "-c", "import torch", NULL};
  gint wait = 1;
  if (!g_spawn_sync(NULL, probe, NULL, G_SPAWN_STDOUT_TO_DEV_NULL | G_SPAWN_STDERR_TO_DEV_NULL, NULL, NULL, NULL, NULL,
                    &wait, NULL) || !g_spawn_check_wait_status(wait, NULL)) {
    g_test_skip("python3-torch is not installed (tools/setup.sh --torch)");
    return;
  }
  static const char *const kinds[] = {"galip", "ratlip", "dfgan"};
  char *dir = g_dir_make_tmp("ratfw-convert-XXXXXX", NULL);
  RatFixture *f = rat_fixture_open("released/outputs");
  for (int k = 0; k < 3; k++) {
    RatScope scope = rat_scope_push();
    char *in = g_strdup_printf("%s/tests/fixtures/released/%s.pth", src, kinds[k]);
    char *out = g_strdup_printf("%s/%s.safetensors", dir, kinds[k]);
    char *script = g_strdup_printf("%s/tools/convert-checkpoint.py", src);
    char *argv_c[] = {"/usr/bin/python3", script, in, out, NULL};
    char *so = NULL, *se = NULL;
    GError *e = NULL;
    g_assert_true(g_spawn_sync(NULL, argv_c, NULL, 0, NULL, NULL, &so, &se, &wait, &e));
    if (!g_spawn_check_wait_status(wait, NULL)) g_error("convert-checkpoint %s failed: %s%s", kinds[k], so, se);
    g_test_message("%s", g_strstrip(so));
    Setup s;
    if (k < 2) {
      setup(&s, k == 1);
      load_params(f, s.clip_params, "clip.");
    } else {
      setup_dfgan(&s);
    }
    gint64 step = rat_gan_load_weights(&s.gan, out, FALSE, &e);
    g_assert_no_error(e);
    g_assert_cmpint(step, ==, 0);
    rat_module_set_training(s.gan.gen, FALSE);
    RatTensor *z = rat_fixture_get(f, "z"), *sent = rat_fixture_get(f, "s");
    RatTensor *x = rat_fixture_get(f, k < 2 ? "x" : "x_dfgan");
    char *what = g_strdup_printf("%s: converted G(z, s) vs PyTorch", kinds[k]);
    RAT_NO_GRAD_BEGIN
    rat_assert_close(rat_generator_forward(s.gan.gen, z, sent), rat_fixture_get(f, "%s.fake", kinds[k]), 2e-5, 2e-4, what);
    g_free(what);
    what = g_strdup_printf("%s: converted D logits vs PyTorch", kinds[k]);
    RatTensor *xe = rat_discriminator_encode(s.gan.disc, x, NULL);
    rat_assert_close(rat_discriminator_logits(s.gan.disc, rat_discriminator_features(s.gan.disc, xe), sent),
                     rat_fixture_get(f, "%s.logits", kinds[k]), 2e-5, 2e-4, what);
    RAT_NO_GRAD_END
    g_free(what);
    teardown(&s);
    g_free(so);
    g_free(se);
    g_free(script);
    g_free(in);
    g_free(out);
    rat_scope_pop(scope);
  }
  rat_fixture_close(f);
  char *rm = g_strdup_printf("rm -rf '%s'", dir);
  g_assert_cmpint(system(rm), ==, 0);
  g_free(rm);
  g_free(dir);
}

int main(int argc, char **argv) {
  for (int i = 1; i < argc; i++)
    if (!strcmp(argv[i], "--list")) list_mode = TRUE;
  if (!list_mode) rat_test_init(&argc, &argv);
  else rat_init();
  reg = rat_registry_new();
  GPtrArray *fails = g_ptr_array_new_with_free_func((GDestroyNotify)g_error_free);
  rat_registry_load_all(reg, fails);
  g_ptr_array_unref(fails);
  if (list_mode) {
    for (int v = 0; v < 2; v++) {
      Setup s;
      setup(&s, v);
      printf("# %s\n", v ? "ratlip" : "galip");
      print_params("g", s.gan.g_params);
      print_params("d", s.gan.d_params);
      teardown(&s);
    }
    return 0;
  }
  g_test_add_data_func("/gan-golden/galip-iteration", GINT_TO_POINTER(0), run_case);
  g_test_add_data_func("/gan-golden/ratlip-iteration", GINT_TO_POINTER(1), run_case);
  g_test_add_func("/gan-golden/finite-differences", test_finite_differences);
  g_test_add_func("/gan-golden/dfgan-iteration", test_dfgan);
  g_test_add_func("/gan-golden/converted-checkpoints", test_converted);
  int r = g_test_run();
  rat_registry_free(reg);
  return r;
}
