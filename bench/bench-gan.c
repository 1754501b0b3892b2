/* One GAN training iteration (a benchmark, not a test): the D step (hinge real/fake/mismatch, MA-GP through
 * double backward, Adam) and the G step (adversarial + CLIP similarity through the frozen CLIP, Adam) of the
 * CPU-scale emoji models (configs/cpu/ratlip-emoji.yaml and galip-emoji.yaml: nf 32, 32 px, prompts at CLIP blocks
 * 1-3, taps 1-3, the 128-wide 4-layer CLIP of clip-emoji.yaml with random weights), and DF-GAN at nf 32, 64 px.
 * bench/bench_gan.py times the same iteration in PyTorch (nn.Module networks of tools/reference/ref_released.py).
 * Usage: bench-gan [batch 32] [reps 5]; OMP_NUM_THREADS threads; best of reps after one warm-up iteration. */
#include <ratfw/ratfw.h>
#include <stdio.h>
#include <string.h>

static double now(void) { return (double)g_get_monotonic_time() / 1e6; }

static void run(RatRegistry *reg, const char *name, int B, int reps) {
  RatScope root = rat_scope_push();
  RatClipConfig cfg = {.vision_width = 128, .vision_layers = 4, .vision_heads = 4, .vision_patch = 8, .image_size = 32,
                       .text_width = 128, .text_layers = 3, .text_heads = 4, .context_length = 24, .vocab_size = 3000,
                       .embed_dim = 128};
  RatParams *cp = rat_params_new();
  RatClip *clip = rat_clip_new(&cfg, cp, "", RAT_PARAM_FROZEN);
  rat_params_finalize(cp);
  RatRng rng;
  rat_rng_init(&rng, 1);
  rat_clip_init_random(clip, &rng);
  RatGanContext gctx = {.clip = clip, .sentence_dim = cfg.embed_dim};
  RatGan gan = {0};
  gan.g_params = rat_params_new();
  gan.d_params = rat_params_new();
  RatBuildContext ctx = {.params = gan.g_params, .rng = &rng, .user = &gctx};
  gboolean dfgan = !strcmp(name, "dfgan");
  const char *ratlip_g[] = {"nf=32", "image_size=32", "prompt_blocks=[1, 2, 3]",
                            "adapter_fusion={type: rat, hidden: 64, recurrence: batch_sequence}",
                            "adapter_conv=conv_shuffle", "block_conv=conv_shuffle", NULL};
  const char *galip_g[] = {"nf=32", "image_size=32", "prompt_blocks=[1, 2, 3]", NULL};
  const char *galip_d[] = {"nf=32", "taps=[1, 2, 3]", NULL};
  const char *dfgan_g[] = {"nf=32", "image_size=64", NULL};
  const char *dfgan_d[] = {"nf=32", "image_size=64", NULL};
  GError *e = NULL;
  gan.gen = rat_module_build_named(reg, dfgan ? "dfgan_generator" : "galip_generator", "generator", RAT_KIND_GENERATOR,
                                   dfgan ? dfgan_g : !strcmp(name, "ratlip") ? ratlip_g : galip_g, &ctx, &e);
  ctx.params = gan.d_params;
  if (gan.gen)
    gan.disc = rat_module_build_named(reg, dfgan ? "dfgan_discriminator" : "galip_discriminator", "discriminator",
                                      RAT_KIND_DISCRIMINATOR, dfgan ? dfgan_d : galip_d, &ctx, &e);
  if (!gan.disc) {
    fprintf(stderr, "bench-gan: %s (is RATFW_PLUGIN_PATH set?)\n", e->message);
    exit(1);
  }
  rat_params_finalize(gan.g_params);
  rat_params_finalize(gan.d_params);
  gan.z_dim = 100;
  int S = dfgan ? 64 : 32;
  RatOptim *og = rat_adam_new(gan.g_params, 1e-4f, 0.0f, 0.9f, 1e-8f, 0.0f);
  RatOptim *od = rat_adam_new(gan.d_params, 4e-4f, 0.0f, 0.9f, 1e-8f, 0.0f);
  RatGanLossOptions lo = {.mismatch = dfgan ? "features" : "sentence", .gp_k = 2, .gp_p = 6, .sim_weight = dfgan ? 0 : 4};
  RatTensor *x = rat_add_scalar(rat_mul_scalar(rat_rand(&rng, RAT_SHAPE(B, 3, S, S)), 2.0f), -1.0f);
  RatTensor *s = rat_randn(&rng, RAT_SHAPE(B, 128));
  double best_d = 1e30, best_it = 1e30;
  for (int r = 0; r < reps + 1; r++) {
    RatScope sc = rat_scope_push();
    RatTensor *z = rat_randn(&rng, RAT_SHAPE(B, 100));
    RatGanFake fk = {0};
    RatGanLosses L = {0};
    double t0 = now();
    if (!rat_gan_d_step(&gan, od, &lo, x, s, z, r, &fk, &L, &e)) {
      fprintf(stderr, "bench-gan: %s\n", e->message);
      exit(1);
    }
    double t1 = now();
    if (!rat_gan_g_step(&gan, og, &lo, &fk, r, &L, &e)) {
      fprintf(stderr, "bench-gan: %s\n", e->message);
      exit(1);
    }
    double t2 = now();
    rat_scope_pop(sc);
    if (r > 0) { /* the first iteration builds primitives */
      best_d = MIN(best_d, t1 - t0);
      best_it = MIN(best_it, t2 - t0);
    }
  }
  printf("%-6s %-7s %6d %8d %10.1f %10.1f %10.1f\n", "ratfw", name, B, rat_get_num_threads(), best_d * 1e3,
         (best_it - best_d) * 1e3, best_it * 1e3);
  rat_optim_free(og);
  rat_optim_free(od);
  rat_module_free(gan.gen);
  rat_module_free(gan.disc);
  rat_params_free(gan.g_params);
  rat_params_free(gan.d_params);
  rat_clip_free(clip);
  rat_params_free(cp);
  rat_scope_pop(root);
}

int main(int argc, char **argv) {
  rat_init();
  int B = argc > 1 ? atoi(argv[1]) : 32, reps = argc > 2 ? atoi(argv[2]) : 5;
  RatRegistry *reg = rat_registry_new();
  GPtrArray *fails = g_ptr_array_new_with_free_func((GDestroyNotify)g_error_free);
  rat_registry_load_all(reg, fails);
  g_ptr_array_unref(fails);
  printf("%-6s %-7s %6s %8s %10s %10s %10s\n", "impl", "model", "batch", "threads", "D step ms", "G step ms", "iter ms");
  const char *models[] = {"ratlip", "galip", "dfgan"};
  for (int k = 0; k < 3; k++) run(reg, models[k], B, reps);
  rat_registry_free(reg);
  return 0;
}
