/* Evaluation throughput with random weights (a benchmark, not a test): images per second through the FID feature
 * extractors `inception` (torchvision's Inception-v3) and `inception_fid` (pytorch-fid's FID-Inception), batches of
 * 299-px images through the RatExtractor API as `ratfw eval` runs them (§9.1 transform, pool3 features), and through
 * the clip_score metric's work at ViT-B/32 size: the §5.1 transform, the CLIP image encoding, the text encoding of
 * the captions (77 tokens) and the cosines (as plugins/clip_score.c with a CLIP given by path). At OMP_NUM_THREADS.
 * The Inception weights are written by this program into a temporary directory (He-scaled convolutions, identity
 * BatchNorm), so nothing is downloaded. bench/bench_eval.py times the same in PyTorch; `ratfw bench eval` joins the
 * two. Output: comment lines starting with '#', then one line per extractor: NAME MS_PER_BATCH IMAGES_PER_S.
 * Usage: bench-eval [batch] [reps] */
#include <ratfw/eval.h>
#include <ratfw/io.h>
#include <ratfw/ratfw.h>

#include <glib/gstdio.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static double now(void) { return (double)g_get_monotonic_time() / 1e6; }

/* Inception-v3's BasicConv2d layers in torchvision's names: name, in, out, kh, kw. */
typedef struct {
  char name[48];
  int ci, co, kh, kw;
} Layer;

static GArray *layers;

static void add(const char *block, const char *name, int ci, int co, int kh, int kw) {
  Layer l = {.ci = ci, .co = co, .kh = kh, .kw = kw};
  g_snprintf(l.name, sizeof l.name, "%s%s%s", block ? block : "", block ? "." : "", name);
  g_array_append_val(layers, l);
}

static void add_a(const char *n, int ci, int pf) {
  add(n, "branch1x1", ci, 64, 1, 1);
  add(n, "branch5x5_1", ci, 48, 1, 1);
  add(n, "branch5x5_2", 48, 64, 5, 5);
  add(n, "branch3x3dbl_1", ci, 64, 1, 1);
  add(n, "branch3x3dbl_2", 64, 96, 3, 3);
  add(n, "branch3x3dbl_3", 96, 96, 3, 3);
  add(n, "branch_pool", ci, pf, 1, 1);
}

static void add_c(const char *n, int c7) {
  add(n, "branch1x1", 768, 192, 1, 1);
  add(n, "branch7x7_1", 768, c7, 1, 1);
  add(n, "branch7x7_2", c7, c7, 1, 7);
  add(n, "branch7x7_3", c7, 192, 7, 1);
  add(n, "branch7x7dbl_1", 768, c7, 1, 1);
  add(n, "branch7x7dbl_2", c7, c7, 7, 1);
  add(n, "branch7x7dbl_3", c7, c7, 1, 7);
  add(n, "branch7x7dbl_4", c7, c7, 7, 1);
  add(n, "branch7x7dbl_5", c7, 192, 1, 7);
  add(n, "branch_pool", 768, 192, 1, 1);
}

static void add_e(const char *n, int ci) {
  add(n, "branch1x1", ci, 320, 1, 1);
  add(n, "branch3x3_1", ci, 384, 1, 1);
  add(n, "branch3x3_2a", 384, 384, 1, 3);
  add(n, "branch3x3_2b", 384, 384, 3, 1);
  add(n, "branch3x3dbl_1", ci, 448, 1, 1);
  add(n, "branch3x3dbl_2", 448, 384, 3, 3);
  add(n, "branch3x3dbl_3a", 384, 384, 1, 3);
  add(n, "branch3x3dbl_3b", 384, 384, 3, 1);
  add(n, "branch_pool", ci, 192, 1, 1);
}

static void architecture(void) {
  layers = g_array_new(FALSE, FALSE, sizeof(Layer));
  add(NULL, "Conv2d_1a_3x3", 3, 32, 3, 3);
  add(NULL, "Conv2d_2a_3x3", 32, 32, 3, 3);
  add(NULL, "Conv2d_2b_3x3", 32, 64, 3, 3);
  add(NULL, "Conv2d_3b_1x1", 64, 80, 1, 1);
  add(NULL, "Conv2d_4a_3x3", 80, 192, 3, 3);
  add_a("Mixed_5b", 192, 32);
  add_a("Mixed_5c", 256, 64);
  add_a("Mixed_5d", 288, 64);
  add("Mixed_6a", "branch3x3", 288, 384, 3, 3);
  add("Mixed_6a", "branch3x3dbl_1", 288, 64, 1, 1);
  add("Mixed_6a", "branch3x3dbl_2", 64, 96, 3, 3);
  add("Mixed_6a", "branch3x3dbl_3", 96, 96, 3, 3);
  add_c("Mixed_6b", 128);
  add_c("Mixed_6c", 160);
  add_c("Mixed_6d", 160);
  add_c("Mixed_6e", 192);
  add("Mixed_7a", "branch3x3_1", 768, 192, 1, 1);
  add("Mixed_7a", "branch3x3_2", 192, 320, 3, 3);
  add("Mixed_7a", "branch7x7x3_1", 768, 192, 1, 1);
  add("Mixed_7a", "branch7x7x3_2", 192, 192, 1, 7);
  add("Mixed_7a", "branch7x7x3_3", 192, 192, 7, 1);
  add("Mixed_7a", "branch7x7x3_4", 192, 192, 3, 3);
  add_e("Mixed_7b", 1280);
  add_e("Mixed_7c", 2048);
}

/* Random Inception weights in torchvision's names: N(0, 2/fan_in) convolutions (activations stay of order one
 * through the ReLUs), BatchNorm the identity; @classes 1000 (torchvision) or 1008 (pytorch-fid). */
static void write_weights(const char *path, int classes, RatRng *rng) {
  RatScope s = rat_scope_push();
  GPtrArray *names = g_ptr_array_new_with_free_func(g_free);
  GPtrArray *ts = g_ptr_array_new();
  for (guint i = 0; i < layers->len; i++) {
    const Layer *l = &g_array_index(layers, Layer, i);
    g_ptr_array_add(names, g_strdup_printf("%s.conv.weight", l->name));
    g_ptr_array_add(ts, rat_mul_scalar(rat_randn(rng, RAT_SHAPE(l->co, l->ci, l->kh, l->kw)),
                                       (float)sqrt(2.0 / (l->ci * l->kh * l->kw))));
    const char *bn[4] = {"weight", "bias", "running_mean", "running_var"};
    for (int k = 0; k < 4; k++) {
      g_ptr_array_add(names, g_strdup_printf("%s.bn.%s", l->name, bn[k]));
      g_ptr_array_add(ts, k == 0 || k == 3 ? rat_ones(RAT_SHAPE(l->co)) : rat_zeros(RAT_SHAPE(l->co)));
    }
  }
  g_ptr_array_add(names, g_strdup("fc.weight"));
  g_ptr_array_add(ts, rat_zeros(RAT_SHAPE(classes, 2048)));
  g_ptr_array_add(names, g_strdup("fc.bias"));
  g_ptr_array_add(ts, rat_zeros(RAT_SHAPE(classes)));
  GError *e = NULL;
  if (!rat_safetensors_save(path, ts->len, (const char *const *)names->pdata, (RatTensor *const *)ts->pdata, NULL,
                            &e)) {
    fprintf(stderr, "bench-eval: %s\n", e->message);
    exit(1);
  }
  g_ptr_array_unref(names);
  g_ptr_array_unref(ts);
  rat_scope_pop(s);
}

static void row(const char *name, double best, int B) { printf("%-14s %10.1f %10.2f\n", name, best * 1e3, B / best); }

static void bench_inception(const char *dir, const char *kind, int classes, RatTensor *images, int reps, RatRng *rng) {
  char *w = g_build_filename(dir, classes == 1000 ? "tv.safetensors" : "fid.safetensors", NULL);
  write_weights(w, classes, rng);
  RatExtractorOptions o = {.kind = kind, .weights = w, .transform = "galip"};
  GError *e = NULL;
  RatExtractor *x = rat_extractor_new(NULL, &o, &e);
  g_unlink(w);
  if (!x) {
    fprintf(stderr, "bench-eval: %s\n", e->message);
    exit(1);
  }
  double best = 1e30, sum = 0;
  for (int r = 0; r < reps + 1; r++) {
    RatScope s = rat_scope_push();
    double t0 = now();
    RatTensor *f = rat_extractor_features(x, images);
    double dt = now() - t0;
    sum += rat_tensor_data(f)[0]; /* keep the result live */
    rat_scope_pop(s);
    if (r > 0 && dt < best) best = dt; /* the first run builds primitives */
  }
  if (!isfinite(sum)) fprintf(stderr, "bench-eval: %s gave non-finite features\n", kind);
  row(kind, best, (int)images->shape[0]);
  rat_extractor_free(x);
  g_free(w);
}

int main(int argc, char **argv) {
  rat_init();
  int B = argc > 1 ? atoi(argv[1]) : 16, reps = argc > 2 ? atoi(argv[2]) : 3;
  if (B < 1 || reps < 1) {
    fprintf(stderr, "usage: bench-eval [batch >= 1] [reps >= 1]\n");
    return 2;
  }
  RatScope root = rat_scope_push();
  RatRng rng;
  rat_rng_init(&rng, 1);
  architecture();
  GError *e = NULL;
  char *dir = g_dir_make_tmp("ratfw-bench-eval-XXXXXX", &e);
  if (!dir) {
    fprintf(stderr, "bench-eval: %s\n", e->message);
    return 1;
  }
  printf("# ratfw, random weights, batch %d, %d threads, best of %d after a warm-up\n", B, rat_get_num_threads(),
         reps);
  printf("# inception*: [B, 3, 299, 299] images in [-1, 1] -> the galip transform -> pool3 [B, 2048]\n");
  printf("# clip_score: [B, 3, 224, 224] images and B captions of 77 tokens -> ViT-B/32 image and text encodings, "
         "cosines\n");
  RatTensor *images = rat_clamp(rat_randn(&rng, RAT_SHAPE(B, 3, 299, 299)), -1.0f, 1.0f);
  bench_inception(dir, "inception", 1000, images, reps, &rng);
  bench_inception(dir, "inception_fid", 1008, images, reps, &rng);
  g_rmdir(dir);

  /* clip_score at ViT-B/32 size: rat_eval_clip_encode_images and _texts' work without the file and tokenizer. */
  RatClipConfig cfg = rat_clip_config_vit_b32();
  RatParams *p = rat_params_new();
  RatClip *clip = rat_clip_new(&cfg, p, "", RAT_PARAM_FROZEN);
  rat_params_finalize(p);
  rat_clip_init_random(clip, &rng);
  RatTensor *pix = rat_clamp(rat_randn(&rng, RAT_SHAPE(B, 3, 224, 224)), -1.0f, 1.0f);
  RatTensor *ids = rat_empty_dtype(RAT_DTYPE_I32, RAT_SHAPE(B, 77));
  for (int i = 0; i < B * 77; i++) rat_tensor_data_i32(ids)[i] = (i % 77) < 20 ? (gint32)(rat_rng_u32(&rng) % 49000) : 0;
  for (int b = 0; b < B; b++) rat_tensor_data_i32(ids)[b * 77 + 20] = 49407;
  double best = 1e30, sum = 0;
  double *cos = g_new(double, B);
  for (int r = 0; r < reps + 1; r++) {
    RatScope s = rat_scope_push();
    double t0 = now();
    RatTensor *img, *txt;
    RAT_NO_GRAD_BEGIN
    img = rat_clip_encode_image(clip, rat_clip_transform_galip(pix, cfg.image_size));
    txt = rat_clip_encode_text(clip, ids);
    RAT_NO_GRAD_END
    rat_eval_cosine_rows(img, txt, cos);
    double dt = now() - t0;
    for (int b = 0; b < B; b++) sum += cos[b];
    rat_scope_pop(s);
    if (r > 0 && dt < best) best = dt;
  }
  if (!isfinite(sum)) fprintf(stderr, "bench-eval: clip_score gave non-finite cosines\n");
  row("clip_score", best, B);
  g_free(cos);
  rat_clip_free(clip);
  rat_params_free(p);
  rat_scope_pop(root);
  g_array_free(layers, TRUE);
  g_free(dir);
  return 0;
}
