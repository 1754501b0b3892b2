/* CLIP encoding throughput at ViT-B/32 size with random weights (a benchmark, not a test): images per second
 * (224 px) and captions per second (77 tokens), forward only and forward + backward to the pixels (the GAN's
 * generator step through the frozen tower), at OMP_NUM_THREADS. bench/bench_clip.py times the same in PyTorch. */
#include <ratfw/ratfw.h>
#include <stdio.h>
#include <string.h>

static double now(void) { return (double)g_get_monotonic_time() / 1e6; }

int main(int argc, char **argv) {
  rat_init();
  int B = argc > 1 ? atoi(argv[1]) : 8, reps = argc > 2 ? atoi(argv[2]) : 5;
  RatScope root = rat_scope_push();
  RatClipConfig cfg = rat_clip_config_vit_b32();
  RatParams *p = rat_params_new();
  RatClip *clip = rat_clip_new(&cfg, p, "", RAT_PARAM_FROZEN);
  rat_params_finalize(p);
  RatRng rng;
  rat_rng_init(&rng, 1);
  rat_clip_init_random(clip, &rng);
  RatTensor *pixels = rat_randn(&rng, RAT_SHAPE(B, 3, 224, 224));
  RatTensor *ids = rat_empty_dtype(RAT_DTYPE_I32, RAT_SHAPE(B, 77));
  for (int i = 0; i < B * 77; i++) rat_tensor_data_i32(ids)[i] = (i % 77) < 20 ? (gint32)(rat_rng_u32(&rng) % 49000) : 0;
  for (int b = 0; b < B; b++) rat_tensor_data_i32(ids)[b * 77 + 20] = 49407;
  const char *names[3] = {"image forward", "text forward", "image fwd+bwd (pixels)"};
  printf("ratfw CLIP ViT-B/32 (random weights), batch %d, %d threads, best of %d\n", B, rat_get_num_threads(), reps);
  printf("%-26s %10s %12s\n", "what", "ms/batch", "items/s");
  for (int k = 0; k < 3; k++) {
    double best = 1e30;
    for (int r = 0; r < reps + 1; r++) {
      RatScope s = rat_scope_push();
      double t0 = now();
      if (k == 0) {
        RAT_NO_GRAD_BEGIN
        rat_clip_encode_image(clip, pixels);
        RAT_NO_GRAD_END
      } else if (k == 1) {
        RAT_NO_GRAD_BEGIN
        rat_clip_encode_text(clip, ids);
        RAT_NO_GRAD_END
      } else {
        RatTensor *x = rat_tensor_alias(pixels);
        rat_tensor_set_requires_grad(x, TRUE);
        RatTensor *e = rat_clip_encode_image(clip, x), *g;
        RatTensor *L = rat_sum_all(e);
        rat_grad(&L, NULL, 1, &x, 1, &g, FALSE, NULL);
      }
      double dt = now() - t0;
      rat_scope_pop(s);
      if (r > 0 && dt < best) best = dt; /* the first run builds primitives */
    }
    printf("%-26s %10.1f %12.1f\n", names[k], best * 1e3, B / best);
  }
  rat_clip_free(clip);
  rat_params_free(p);
  rat_scope_pop(root);
  return 0;
}
