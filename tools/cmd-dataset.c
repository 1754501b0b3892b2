/* ratfw dataset: look at a dataset before training on it.
 *   ratfw dataset info EXP_OR_TYPE [--set k=v]... [--images N]    counts, caption statistics, image sizes
 *   ratfw dataset preview EXP_OR_TYPE --out sheet.png [...]        a contact sheet with captions
 *   ratfw dataset fetch emoji                                      download what can be downloaded
 * EXP_OR_TYPE is an experiment file (its `data:` section; --set data.root=... overrides) or a dataset type name
 * (--set root=... sets its arguments). */
#include "config.h"

#include "cmd.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

static gboolean is_experiment(const char *arg) {
  return g_str_has_suffix(arg, ".yaml") || g_str_has_suffix(arg, ".yml") || g_file_test(arg, G_FILE_TEST_IS_REGULAR);
}

/* The dataset named by @arg (experiment file or type name), built; NULL after printing the error. */
static RatModule *open_dataset(RatRegistry *reg, const char *cmd, const char *arg, char **sets, int *status) {
  GError *e = NULL;
  RatModule *m = NULL;
  if (is_experiment(arg)) {
    RatExperiment *exp = rat_experiment_load(reg, arg, (const char *const *)sets, &e);
    if (!exp) {
      *status = fail_config(cmd, e);
      g_error_free(e);
      return NULL;
    }
    if (!exp->data) {
      *status = fail(EXIT_USAGE, cmd, "%s has no data: section", arg);
      rat_experiment_free(exp);
      return NULL;
    }
    m = rat_dataset_build(reg, exp->data, &e);
    rat_experiment_free(exp);
  } else {
    const RatModuleType *t = rat_registry_lookup(reg, arg);
    if (!t || t->kind != RAT_KIND_DATASET) {
      GString *names = g_string_new(NULL);
      GPtrArray *types = rat_registry_types(reg, RAT_KIND_DATASET);
      for (guint i = 0; i < types->len; i++)
        g_string_append_printf(names, "%s%s", i ? ", " : "", ((const RatModuleType *)types->pdata[i])->name);
      g_ptr_array_unref(types);
      *status = fail(EXIT_USAGE, cmd, "'%s' is neither an experiment file nor a dataset type (dataset types: %s)", arg,
                     names->str);
      g_string_free(names, TRUE);
      return NULL;
    }
    RatBuildContext ctx = {0};
    m = rat_module_build_named(reg, arg, "data", RAT_KIND_DATASET, (const char *const *)sets, &ctx, &e);
  }
  if (!m) {
    *status = fail(EXIT_RUN, cmd, "%s", e->message);
    g_error_free(e);
  }
  return m;
}

static const char *split_name(RatSplit s) { return s == RAT_SPLIT_TRAIN ? "train" : s == RAT_SPLIT_TEST ? "test" : "all"; }

static gboolean parse_split(const char *s, RatSplit *out) {
  if (!s || !strcmp(s, "train")) *out = RAT_SPLIT_TRAIN;
  else if (!strcmp(s, "test")) *out = RAT_SPLIT_TEST;
  else if (!strcmp(s, "all")) *out = RAT_SPLIT_ALL;
  else return FALSE;
  return TRUE;
}

static guint count_words(const char *s) {
  guint n = 0;
  gboolean in = FALSE;
  for (; *s; s++) {
    gboolean sp = g_ascii_isspace(*s);
    if (!sp && !in) n++;
    in = !sp;
  }
  return n;
}

static void info_split(RatModule *m, RatSplit s, int images) {
  guint n = rat_dataset_count(m, s);
  printf("%s: %u items\n", split_name(s), n);
  if (!n) return;
  guint64 caps = 0, words = 0, chars = 0;
  guint cmin = G_MAXUINT, cmax = 0, wmin = G_MAXUINT, wmax = 0;
  GHashTable *distinct = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
  GHashTable *vocab = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
  for (guint i = 0; i < n; i++) {
    guint k = rat_dataset_n_captions(m, s, i);
    caps += k;
    cmin = MIN(cmin, k);
    cmax = MAX(cmax, k);
    for (guint j = 0; j < k; j++) {
      char *c = rat_dataset_caption(m, s, i, j);
      guint w = count_words(c);
      words += w;
      chars += g_utf8_strlen(c, -1);
      wmin = MIN(wmin, w);
      wmax = MAX(wmax, w);
      char *low = g_utf8_strdown(c, -1);
      char **toks = g_strsplit_set(low, " \t\n.,;:!?\"()", -1);
      for (char **t = toks; *t; t++)
        if (**t) g_hash_table_add(vocab, g_strdup(*t));
      g_strfreev(toks);
      g_free(low);
      g_hash_table_add(distinct, c);
    }
  }
  printf("  captions: %" G_GUINT64_FORMAT " (%u..%u per item, mean %.2f), %u distinct\n", caps, cmin, cmax,
         (double)caps / n, g_hash_table_size(distinct));
  printf("  caption length: %u..%u words (mean %.2f), mean %.1f characters; vocabulary %u words\n", wmin, wmax,
         (double)words / caps, (double)chars / caps, g_hash_table_size(vocab));
  g_hash_table_unref(distinct);
  g_hash_table_unref(vocab);
  if (images <= 0) return;
  guint step = MAX(1u, n / (guint)images), seen = 0, bad = 0;
  int wlo = G_MAXINT, whi = 0, hlo = G_MAXINT, hhi = 0;
  char *first_bad = NULL;
  for (guint i = 0; i < n && seen < (guint)images; i += step, seen++) {
    GError *e = NULL;
    RatImage *img = rat_dataset_image(m, s, i, &e);
    if (!img) {
      if (!bad++) first_bad = g_strdup(e->message);
      g_error_free(e);
      continue;
    }
    wlo = MIN(wlo, img->width);
    whi = MAX(whi, img->width);
    hlo = MIN(hlo, img->height);
    hhi = MAX(hhi, img->height);
    rat_image_free(img);
  }
  if (seen > bad)
    printf("  images (%u of %u decoded, evenly spaced): width %d..%d, height %d..%d\n", seen - bad, seen, wlo, whi,
           hlo, hhi);
  if (bad) printf("  unreadable: %u of %u; first: %s\n", bad, seen, first_bad);
  g_free(first_bad);
}

static int dataset_info(int argc, char **argv) {
  char **sets = NULL;
  gint images = 64;
  GOptionEntry entries[] = {
      {"set", 0, 0, G_OPTION_ARG_STRING_ARRAY, &sets, "override an argument (data.root=DIR for an experiment, "
       "root=DIR for a type name)", "KEY=VALUE"},
      {"images", 'i', 0, G_OPTION_ARG_INT, &images, "decode this many images per split for size statistics "
       "(default 64; 0 = none)", "N"},
      {NULL}};
  int st = parse_options("dataset info", "EXPERIMENT.yaml|TYPE", "Counts, caption statistics and image sizes of a dataset.",
                         entries, &argc, &argv);
  if (st >= 0) goto done;
  if (argc != 2) {
    st = fail(EXIT_USAGE, "dataset info", "expected one experiment file or dataset type name");
    goto done;
  }
  RatRegistry *reg = load_registry(FALSE, NULL);
  RatModule *m = open_dataset(reg, "dataset info", argv[1], sets, &st);
  if (m) {
    printf("dataset %s (type %s)\n", argv[1], m->type->name);
    const RatDatasetIface *it = RAT_DATASET_IFACE(m);
    if (it->native_size && it->native_size(m) > 0) printf("native size: %d px\n", it->native_size(m));
    info_split(m, RAT_SPLIT_TRAIN, images);
    info_split(m, RAT_SPLIT_TEST, images);
    rat_module_free(m);
    st = EXIT_OK;
  }
  rat_registry_free(reg);
done:
  g_strfreev(sets);
  return st;
}

/* @img fitted into a size x size cell (aspect kept, PIL bilinear), centred on white, into @sheet at (x, y). */
static void paste(RatTensor *sheet, const RatImage *img, int x, int y, int size) {
  double sc = (double)size / MAX(img->width, img->height);
  int w = MAX(1, (int)lround(img->width * sc)), h = MAX(1, (int)lround(img->height * sc));
  RatImage *r = rat_image_resize(img, w, h);
  gint64 H = rat_tensor_dim(sheet, 1), W = rat_tensor_dim(sheet, 2);
  float *px = rat_tensor_data(sheet);
  int ox = x + (size - w) / 2, oy = y + (size - h) / 2;
  for (int j = 0; j < h; j++)
    for (int i = 0; i < w; i++)
      for (int c = 0; c < 3; c++) {
        gint64 yy = oy + j, xx = ox + i;
        if (yy < H && xx < W) px[(c * H + yy) * W + xx] = r->rgb[(j * w + i) * 3 + c] / 255.0f;
      }
  rat_image_free(r);
}

static int dataset_preview(int argc, char **argv) {
  char **sets = NULL, *out = NULL, *split_s = NULL;
  gint n = 24, cols = 6, size = 96, seed = -1, lines = 3;
  GOptionEntry entries[] = {
      {"set", 0, 0, G_OPTION_ARG_STRING_ARRAY, &sets, "override an argument (as for info)", "KEY=VALUE"},
      {"out", 'o', 0, G_OPTION_ARG_FILENAME, &out, "output PNG", "FILE"},
      {"split", 0, 0, G_OPTION_ARG_STRING, &split_s, "train (default), test or all", "SPLIT"},
      {"n", 'n', 0, G_OPTION_ARG_INT, &n, "images (default 24)", "N"},
      {"cols", 0, 0, G_OPTION_ARG_INT, &cols, "images per row (default 6)", "C"},
      {"size", 0, 0, G_OPTION_ARG_INT, &size, "cell size in pixels (default 96)", "PX"},
      {"lines", 0, 0, G_OPTION_ARG_INT, &lines, "caption lines under each image (default 3)", "L"},
      {"seed", 's', 0, G_OPTION_ARG_INT, &seed, "pick random items and captions with this seed (default: the first "
       "items, their first captions)", "S"},
      {NULL}};
  int st = parse_options("dataset preview", "EXPERIMENT.yaml|TYPE",
                         "A contact sheet: images of a split with a caption under each.", entries, &argc, &argv);
  RatRegistry *reg = NULL;
  RatModule *m = NULL;
  RatSplit split;
  if (st >= 0) goto done;
  if (argc != 2) {
    st = fail(EXIT_USAGE, "dataset preview", "expected one experiment file or dataset type name");
    goto done;
  }
  if (!out) {
    st = fail(EXIT_USAGE, "dataset preview", "--out FILE.png is required");
    goto done;
  }
  if (!parse_split(split_s, &split)) {
    st = fail(EXIT_USAGE, "dataset preview", "--split must be train, test or all, not '%s'", split_s);
    goto done;
  }
  if (n < 1 || n > 1024 || cols < 1 || size < 16 || size > 1024 || lines < 0 || lines > 10) {
    st = fail(EXIT_USAGE, "dataset preview", "need 1 <= n <= 1024, cols >= 1, 16 <= size <= 1024, 0 <= lines <= 10");
    goto done;
  }
  reg = load_registry(FALSE, NULL);
  if (!(m = open_dataset(reg, "dataset preview", argv[1], sets, &st))) goto done;
  guint count = rat_dataset_count(m, split);
  if (!count) {
    st = fail(EXIT_RUN, "dataset preview", "the %s split is empty", split_name(split));
    goto done;
  }
  n = MIN(n, (gint)count);
  cols = MIN(cols, n);
  int rows = (n + cols - 1) / cols, pad = 4, line_h = RAT_FONT_LINE, cell_h = size + lines * line_h + pad;
  int max_chars = MAX(1, size / RAT_FONT_ADVANCE);
  RatScope scope = rat_scope_push();
  RatTensor *sheet = rat_empty(RAT_SHAPE(3, (gint64)(rows * cell_h + pad), (gint64)(cols * (size + pad) + pad)));
  float *px = rat_tensor_data(sheet);
  for (gint64 k = 0; k < rat_tensor_numel(sheet); k++) px[k] = 1.0f;
  GRand *rng = seed >= 0 ? g_rand_new_with_seed((guint32)seed) : NULL;
  const float ink[3] = {0.1f, 0.1f, 0.1f}, red[3] = {0.8f, 0.1f, 0.1f};
  guint bad = 0;
  for (int k = 0; k < n; k++) {
    guint item = rng ? (guint)g_rand_int_range(rng, 0, (gint32)MIN(count, (guint)G_MAXINT32)) : (guint)k;
    guint ncap = rat_dataset_n_captions(m, split, item);
    char *cap = rat_dataset_caption(m, split, item, rng ? (guint)g_rand_int_range(rng, 0, (gint32)ncap) : 0);
    int x = pad + (k % cols) * (size + pad), y = pad + (k / cols) * cell_h;
    GError *e = NULL;
    RatImage *img = rat_dataset_image(m, split, item, &e);
    if (img) {
      paste(sheet, img, x, y, size);
      rat_image_free(img);
    } else {
      fprintf(stderr, "ratfw dataset preview: %s\n", e->message);
      rat_draw_text(sheet, x + 2, y + size / 2, "unreadable", 1, red);
      g_error_free(e);
      bad++;
    }
    char **wrapped = rat_text_wrap(cap, max_chars);
    for (int l = 0; l < lines && wrapped[l]; l++) rat_draw_text(sheet, x, y + size + 2 + l * line_h, wrapped[l], 1, ink);
    g_strfreev(wrapped);
    g_free(cap);
  }
  if (rng) g_rand_free(rng);
  GError *e = NULL;
  if (!rat_png_write(out, sheet, &e)) {
    st = fail(EXIT_RUN, "dataset preview", "%s", e->message);
    g_error_free(e);
  } else {
    printf("wrote %s: %d images of the %s split (%d x %d)%s\n", out, n, split_name(split), cols, rows,
           bad ? ", some unreadable (see above)" : "");
    st = EXIT_OK;
  }
  rat_scope_pop(scope);
done:
  if (m) rat_module_free(m);
  if (reg) rat_registry_free(reg);
  g_strfreev(sets);
  g_free(out);
  g_free(split_s);
  return st;
}

static char *find_script(const char *name) {
  const char *src = g_getenv("RATFW_SRCDIR");
  char *cands[] = {g_build_filename(RATFW_PKGLIBEXECDIR, name, NULL),
                   g_build_filename(src ? src : RATFW_SRCDIR, "tools", name, NULL), NULL};
  char *found = NULL;
  for (int i = 0; cands[i]; i++) {
    if (!found && g_file_test(cands[i], G_FILE_TEST_IS_REGULAR)) found = g_strdup(cands[i]);
    g_free(cands[i]);
  }
  return found;
}

static int dataset_fetch(int argc, char **argv) {
  int st = parse_options("dataset fetch", "NAME", "Fetches a dataset that can be fetched here: emoji (npm pack of "
                         "emoji-datasource-google, hash checked). For the others, prints where the data comes from.",
                         (GOptionEntry[]){{NULL}}, &argc, &argv);
  if (st >= 0) return st;
  if (argc != 2) return fail(EXIT_USAGE, "dataset fetch", "expected one dataset name (emoji, fashion_mnist, cub, oxford, faces)");
  const char *name = argv[1];
  if (!strcmp(name, "emoji")) {
    char *script = find_script("fetch-emoji.sh");
    if (!script) return fail(EXIT_RUN, "dataset fetch", "fetch-emoji.sh is not installed (looked in %s and the source tree)",
                             RATFW_PKGLIBEXECDIR);
    char *args[] = {"sh", script, NULL};
    int wait = 0;
    GError *e = NULL;
    if (!g_spawn_sync(NULL, args, NULL, G_SPAWN_SEARCH_PATH | G_SPAWN_CHILD_INHERITS_STDIN, NULL, NULL, NULL, NULL,
                      &wait, &e)) {
      st = fail(EXIT_RUN, "dataset fetch", "%s", e->message);
      g_error_free(e);
    } else {
      st = g_spawn_check_wait_status(wait, NULL) ? EXIT_OK : EXIT_RUN;
    }
    g_free(script);
    return st;
  }
  if (!strcmp(name, "fashion_mnist")) {
    if (g_file_test(RAT_FASHION_MNIST_DIR, G_FILE_TEST_IS_DIR)) {
      printf("fashion_mnist: present in %s\n", RAT_FASHION_MNIST_DIR);
      return EXIT_OK;
    }
    return fail(EXIT_RUN, "dataset fetch", "fashion_mnist comes from Debian: apt-get install dataset-fashion-mnist "
                "(installs %s)", RAT_FASHION_MNIST_DIR);
  }
  if (!strcmp(name, "cub") || !strcmp(name, "oxford") || !strcmp(name, "faces")) {
    printf("%s cannot be downloaded by ratfw (no source is reachable from here and the images carry their own\n"
           "licences). Obtain the preprocessed metadata (captions, filenames.pickle, FID statistics) that DF-GAN and\n"
           "GALIP link from their READMEs, and the images (%s), then point data.root at the directory;\n"
           "docs/datasets.md shows the layout and `ratfw dataset info` checks it.\n",
           name, !strcmp(name, "cub") ? "CUB_200_2011.tgz from Caltech" : !strcmp(name, "oxford") ?
           "102flowers.tgz from the Oxford VGG page" : "Multi-Modal-CelebA-HQ");
    return EXIT_OK;
  }
  return fail(EXIT_USAGE, "dataset fetch", "unknown dataset '%s' (emoji, fashion_mnist, cub, oxford, faces)", name);
}

int cmd_dataset(int argc, char **argv) {
  if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
    FILE *f = argc < 2 ? stderr : stdout;
    fprintf(f, "usage: ratfw dataset info|preview|fetch ...\n"
               "  info EXP_OR_TYPE [--set K=V]... [--images N]   counts, caption statistics, image sizes\n"
               "  preview EXP_OR_TYPE --out sheet.png [--split S] [-n N] [--cols C] [--size PX] [--seed S]\n"
               "  fetch NAME                                     download a dataset that can be downloaded (emoji)\n");
    return argc < 2 ? EXIT_USAGE : EXIT_OK;
  }
  if (!strcmp(argv[1], "info")) return dataset_info(argc - 1, argv + 1);
  if (!strcmp(argv[1], "preview")) return dataset_preview(argc - 1, argv + 1);
  if (!strcmp(argv[1], "fetch")) return dataset_fetch(argc - 1, argv + 1);
  return fail(EXIT_USAGE, "dataset", "unknown subcommand '%s' (info, preview, fetch)", argv[1]);
}
