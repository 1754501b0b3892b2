/* ratfw sample: images from a trained (or converted) GAN for given captions, as a grid PNG (one caption per row,
 * n noises per caption, the same noises in every row). Reference §9.3: z ~ N(0, I) (GALIP/RATLIP) or DF-GAN's
 * truncated noise truncnorm(-2, 2) * t; G in eval mode (running statistics) or train mode (batch statistics,
 * as RATLIP's sample.ipynb). */
#include "config.h"

#include "cmd.h"

#include <stdio.h>
#include <string.h>

static char **read_lines(const char *path, GError **error) {
  char *text = NULL;
  if (!g_file_get_contents(path, &text, NULL, error)) return NULL;
  char **lines = g_strsplit(text, "\n", -1);
  g_free(text);
  GPtrArray *out = g_ptr_array_new();
  for (char **l = lines; *l; l++) {
    char *t = g_strstrip(*l);
    if (*t) g_ptr_array_add(out, g_strdup(t));
  }
  g_strfreev(lines);
  g_ptr_array_add(out, NULL);
  return (char **)g_ptr_array_free(out, FALSE);
}

int cmd_sample(int argc, char **argv) {
  char *experiment = NULL, *captions_file = NULL, *out = NULL, *mode = NULL;
  char **captions = NULL;
  gint n = 8, seed = 0;
  double truncation = 0;
  gboolean no_ema = FALSE;
  GOptionEntry entries[] = {
      {"caption", 'c', 0, G_OPTION_ARG_STRING_ARRAY, &captions, "a caption (repeat for more rows)", "TEXT"},
      {"captions", 0, 0, G_OPTION_ARG_FILENAME, &captions_file, "captions, one per line", "FILE"},
      {"n", 'n', 0, G_OPTION_ARG_INT, &n, "images per caption (default 8)", "N"},
      {"seed", 's', 0, G_OPTION_ARG_INT, &seed, "noise seed (default 0)", "S"},
      {"out", 'o', 0, G_OPTION_ARG_FILENAME, &out, "output PNG", "FILE"},
      {"truncation", 't', 0, G_OPTION_ARG_DOUBLE, &truncation,
       "DF-GAN truncation: z = truncnorm(-2, 2) * T (default 0: plain N(0, I), as GALIP/RATLIP)", "T"},
      {"mode", 'm', 0, G_OPTION_ARG_STRING, &mode, "eval (default: running statistics) or train (batch statistics)", "MODE"},
      {"no-ema", 0, 0, G_OPTION_ARG_NONE, &no_ema, "use the raw weights even when the checkpoint has an EMA copy", NULL},
      {"experiment", 'e', 0, G_OPTION_ARG_FILENAME, &experiment,
       "the experiment describing the model (default: RUN/resolved.yaml)", "FILE"},
      {NULL}};
  int st = parse_options("sample", "RUN_DIR|CHECKPOINT",
                         "Writes a grid of generated images: one row per caption, the same N noises in every row.",
                         entries, &argc, &argv);
  RatRegistry *reg = NULL;
  RatExperiment *exp = NULL;
  RatGan *gan = NULL;
  char *ckpt = NULL, *exp_path = NULL;
  char **caps = NULL;
  GError *e = NULL;
  if (st >= 0) goto done;
  if (argc != 2) {
    st = fail(EXIT_USAGE, "sample", "expected one run directory or checkpoint file (see ratfw sample --help)");
    goto done;
  }
  if (!out) {
    st = fail(EXIT_USAGE, "sample", "--out FILE.png is required");
    goto done;
  }
  if (n < 1 || n > 256) {
    st = fail(EXIT_USAGE, "sample", "-n must be in 1..256, not %d", n);
    goto done;
  }
  if (mode && strcmp(mode, "eval") && strcmp(mode, "train")) {
    st = fail(EXIT_USAGE, "sample", "--mode must be eval or train, not '%s'", mode);
    goto done;
  }
  if (truncation < 0) {
    st = fail(EXIT_USAGE, "sample", "--truncation must be >= 0");
    goto done;
  }
  if (captions_file) {
    if (!(caps = read_lines(captions_file, &e))) {
      st = fail(EXIT_USAGE, "sample", "%s", e->message);
      goto done;
    }
  } else {
    caps = g_strdupv(captions);
  }
  if (!caps || !caps[0]) {
    st = fail(EXIT_USAGE, "sample", "no captions: give --caption TEXT (repeatable) or --captions FILE");
    goto done;
  }
  if (g_file_test(argv[1], G_FILE_TEST_IS_DIR)) {
    ckpt = g_build_filename(argv[1], "checkpoint.safetensors", NULL);
    exp_path = experiment ? g_strdup(experiment) : g_build_filename(argv[1], "resolved.yaml", NULL);
  } else {
    ckpt = g_strdup(argv[1]);
    if (!experiment) {
      st = fail(EXIT_USAGE, "sample", "%s is a file: give --experiment FILE.yaml describing its model", argv[1]);
      goto done;
    }
    exp_path = g_strdup(experiment);
  }
  if (!g_file_test(ckpt, G_FILE_TEST_EXISTS)) {
    st = fail(EXIT_RUN, "sample", "%s: no checkpoint (has the run written one yet? see checkpoint_every)", ckpt);
    goto done;
  }
  reg = load_registry(TRUE, NULL);
  if (!(exp = rat_experiment_load(reg, exp_path, NULL, &e))) {
    st = fail_config("sample", e);
    goto done;
  }
  if (!(gan = rat_gan_build(reg, exp, 0, FALSE, FALSE, &e))) {
    st = fail(EXIT_USAGE, "sample", "%s", e->message);
    goto done;
  }
  gint64 step = rat_gan_load_weights(gan, ckpt, !no_ema, &e);
  if (step < 0) {
    st = fail(EXIT_RUN, "sample", "%s", e->message);
    goto done;
  }
  {
    RatScope sc = rat_scope_push();
    guint rows = g_strv_length(caps), N = rows * (guint)n;
    const char **texts = g_new(const char *, N);
    for (guint i = 0; i < N; i++) texts[i] = caps[i / (guint)n];
    RatTensor *sent = rat_gan_encode_captions(gan, texts, N);
    g_free(texts);
    RatRng rng;
    rat_rng_init(&rng, (guint64)seed);
    RatTensor *zc = rat_empty(RAT_SHAPE(n, gan->z_dim));
    if (truncation > 0) {
      rat_rng_truncated_normal_(&rng, zc, 2.0f);
      zc = rat_mul_scalar(zc, (float)truncation);
    } else {
      rat_rng_fill_normal_(&rng, zc, 0.0f, 1.0f);
    }
    RatTensor *z = rat_contiguous(rat_tile(zc, RAT_SHAPE(rows, 1)));
    RatTensor *imgs = rat_gan_generate(gan, sent, z, mode && !strcmp(mode, "train"), !no_ema);
    RatTensor *grid = rat_gan_grid(imgs, rows, (guint)n, (const char *const *)caps);
    if (!rat_png_write(out, grid, &e)) st = fail(EXIT_RUN, "sample", "%s", e->message);
    else {
      printf("%s: %u captions x %d images of %" G_GINT64_FORMAT " px from %s (step %" G_GINT64_FORMAT ")\n", out, rows, n,
             gan->image_size, ckpt, step);
      st = EXIT_OK;
    }
    rat_scope_pop(sc);
  }
done:
  if (e) g_error_free(e);
  rat_gan_free(gan);
  if (exp) rat_experiment_free(exp);
  if (reg) rat_registry_free(reg);
  g_strfreev(caps);
  g_strfreev(captions);
  g_free(captions_file);
  g_free(experiment);
  g_free(out);
  g_free(mode);
  g_free(ckpt);
  g_free(exp_path);
  return st;
}
