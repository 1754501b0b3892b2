/* train_gan: trains a text-conditioned GAN (DF-GAN, GALIP, RATLIP: whatever the experiment's model slots hold)
 * as reference §6-7 describe. Per iteration, with real images x and their sentence embeddings s:
 *
 *   D step (d_steps times, each on a fresh batch):
 *     X_r = D.encode(x) (no grad; a leaf for MA-GP)      f_r = D.features(X_r)     l_r = D.logits(f_r, s)
 *     L_real = mean relu(1 - l_r)
 *     L_mis  = mean relu(1 + D.logits(f_r, roll(s)))        (mismatch: sentence, GALIP)
 *            or mean relu(1 + D.logits(roll(f_r), s))        (mismatch: features, DF-GAN)
 *     fake = G(z, s), z ~ N(0, I);  X_f, e_f = D.encode(fake) (graph kept for the G step)
 *     L_fake = mean relu(1 + D.logits(D.features(stopgrad(X_f)), s))
 *     L_gp   = k mean ||d l_r / d(X_r, s)||^p  (MA-GP, second order)
 *     L_D    = L_real + (L_fake + L_mis) / 2 + L_gp      -> Adam(D)
 *   G step: L_G = -mean D.logits(D.features(X_f), s) - sim_weight mean cos(e_f, s)   -> Adam(G)
 *
 * The text encoder (frozen CLIP) turns each batch's tokens into s under no-grad. Every `sample_every` steps a grid
 * of fixed captions x fixed noises is written; every `checkpoint_every` steps a checkpoint with both networks,
 * both optimisers, the EMA copy of G, the RNG and the data position (atomic), so `ratfw run --resume` continues
 * bit for bit. A non-finite loss stops the run naming the step and the term; the last checkpoint is kept.
 * With `eval_every` N > 0 the experiment's eval: metrics (the ones `ratfw eval` computes, core/eval/eval.c) run every
 * N steps and at the end, as the released code logs FID and CLIP score every few epochs: a metrics.jsonl record
 * {"step", the metric values, "eval_samples", "eval_seconds"}, RUN/eval/step_NNNNNNN.json, and panels under the
 * loss curve. The evaluation draws its captions and noises from its own counter-based streams (eval.seed), reads
 * its own instance of the dataset (the loader's thread keeps the training one), and rat_gan_generate restores G's
 * mode and batch-norm buffers: the training RNG, data order and weights are those of a run without it. */
#include <ratfw/checkpoint.h>
#include <ratfw/ratfw.h>

#include <math.h>
#include <string.h>

static const char *const mismatch_choices[] = {"sentence", "features", "none", NULL};
static const char *const augment_choices[] = {"reference", "plain", "plain_flip", NULL};
static const char *const mode_choices[] = {"eval", "train", NULL};
static const char *const on_error_choices[] = {"fail", "skip", NULL};

typedef struct {
  gint64 steps, batch_size, image_size, d_steps;
  double lr_g, lr_d, beta1, beta2;
  char *mismatch;
  double gp_k, gp_p, sim_weight, ema;
  char *augment;
  gint64 sample_every, checkpoint_every, log_every, sample_rows, sample_cols;
  char *sample_mode;
  gint64 prefetch;
  char *on_error;
  gint64 eval_every, eval_samples;
} GanOptions;

static const RatArgSpec gan_args[] = {
    RAT_ARG_I(GanOptions, steps, "10000", 1, 1e12, "generator steps (iterations)"),
    RAT_ARG_I(GanOptions, batch_size, "32", 2, 65536, "images per batch (at least 2: the mismatch term rolls the batch)"),
    RAT_ARG_I(GanOptions, image_size, "0", 0, 4096,
              "side of the real images fed to D (released: 256 while G outputs 224); 0 = the generator's output size"),
    RAT_ARG_I(GanOptions, d_steps, "1", 1, 100, "discriminator steps per generator step (released: 1)"),
    RAT_ARG_D(GanOptions, lr_g, "1e-4", 0, 1, "Adam learning rate of G (released 1e-4)"),
    RAT_ARG_D(GanOptions, lr_d, "4e-4", 0, 1, "Adam learning rate of D (released 4e-4)"),
    RAT_ARG_D(GanOptions, beta1, "0.0", 0, 0.999999, "Adam beta1 of both optimisers (released 0)"),
    RAT_ARG_D(GanOptions, beta2, "0.9", 0, 0.999999, "Adam beta2 of both optimisers (released 0.9)"),
    RAT_ARG_C(GanOptions, mismatch, "sentence", mismatch_choices,
              "mismatched pairs: roll the sentences (GALIP/RATLIP), the real image features (DF-GAN), or none"),
    RAT_ARG_D(GanOptions, gp_k, "2.0", 0, 1e6, "MA-GP weight k (0 disables the penalty)"),
    RAT_ARG_D(GanOptions, gp_p, "6.0", 1, 100, "MA-GP power p"),
    RAT_ARG_D(GanOptions, sim_weight, "4.0", 0, 1e6,
              "weight of the CLIP similarity term of L_G (GALIP/RATLIP 4; needs a discriminator with a CLIP image "
              "embedding; DF-GAN: 0)"),
    RAT_ARG_D(GanOptions, ema, "0", 0, 0.999999999, "EMA decay of G's weights for sampling (0: off, as released)"),
    RAT_ARG_C(GanOptions, augment, "reference", augment_choices,
              "reference: shorter side to size*76/64, random crop, random flip (§7.3); plain: resize to size; "
              "plain_flip: resize and random flip"),
    RAT_ARG_I(GanOptions, sample_every, "500", 1, RAT_ARG_NO_LIMIT, "write a sample grid every N steps"),
    RAT_ARG_I(GanOptions, checkpoint_every, "500", 1, RAT_ARG_NO_LIMIT, "write checkpoint.safetensors every N steps"),
    RAT_ARG_I(GanOptions, log_every, "50", 1, RAT_ARG_NO_LIMIT, "a log line every N steps"),
    RAT_ARG_I(GanOptions, sample_rows, "6", 1, 64, "captions in the sample grid (from the test split)"),
    RAT_ARG_I(GanOptions, sample_cols, "8", 1, 64, "noises per caption in the sample grid"),
    RAT_ARG_C(GanOptions, sample_mode, "eval", mode_choices,
              "normalisation of G while sampling: eval (running statistics) or train (batch statistics, as the "
              "released sample.ipynb)"),
    RAT_ARG_I(GanOptions, prefetch, "2", 0, 64, "batches decoded ahead by the loader's background thread"),
    RAT_ARG_C(GanOptions, on_error, "fail", on_error_choices, "a corrupt image stops the run, or is skipped and counted"),
    RAT_ARG_I(GanOptions, eval_every, "0", 0, RAT_ARG_NO_LIMIT,
              "run the experiment's eval: metrics every N steps and at the end (metrics.jsonl, RUN/eval/step_N.json, "
              "a panel of losses.png); 0: off. Does not change the training"),
    RAT_ARG_I(GanOptions, eval_samples, "0", 0, 1e9,
              "images per periodic evaluation (0: eval.samples of the eval: section; fewer than the FID's feature "
              "width needs eval.fid.allow_rank_deficient)"),
};

typedef struct {
  RatGan *gan;
  RatModule *data, *gen, *disc; /* data owned; gen/disc borrowed from gan */
  RatParams *g_params, *d_params; /* borrowed from gan */
  RatOptim *opt_g, *opt_d;
  RatLoader *loader;
  RatRng rng; /* noise of the training steps (checkpointed) */
  gint64 real_size;
  RatModule *eval_data;    /* the periodic evaluation's own dataset instance (built at the first evaluation) */
  RatEvalOptions eval_opt; /* the experiment's eval: section, eval_samples applied */
} Gan;

static void gan_clear(Gan *g) {
  if (g->eval_data) {
    rat_module_free(g->eval_data);
    rat_eval_options_clear(&g->eval_opt);
  }
  if (g->loader) rat_loader_free(g->loader);
  if (g->opt_g) rat_optim_free(g->opt_g);
  if (g->opt_d) rat_optim_free(g->opt_d);
  rat_gan_free(g->gan);
  if (g->data) rat_module_free(g->data);
}

static gboolean build_models(RatRunContext *ctx, const GanOptions *o, Gan *g, GError **error) {
  RatExperiment *exp = ctx->exp;
  if (!exp->data) {
    g_set_error(error, RAT_ERROR, RAT_ERROR_CONFIG, "%s: train_gan needs a `data:` section (a dataset; `ratfw plugins` "
                "lists them under dataset)", exp->path);
    return FALSE;
  }
  if (!(g->data = rat_dataset_build(ctx->registry, exp->data, error))) return FALSE;
  if (!(g->gan = rat_gan_build(ctx->registry, exp, ctx->seed, TRUE, o->ema > 0, error))) return FALSE;
  if (!g->gan->tok) {
    g_set_error(error, RAT_ERROR, RAT_ERROR_CONFIG, "%s: the text encoder has no tokenizer: give model.text_encoder.vocab "
                "(a CLIP bpe_simple_vocab_16e6.txt.gz, or a ratfw tokenizer.json)", exp->path);
    return FALSE;
  }
  g->gen = g->gan->gen;
  g->disc = g->gan->disc;
  g->g_params = g->gan->g_params;
  g->d_params = g->gan->d_params;
  g->opt_g = rat_adam_new(g->g_params, (float)o->lr_g, (float)o->beta1, (float)o->beta2, 1e-8f, 0.0f);
  g->opt_d = rat_adam_new(g->d_params, (float)o->lr_d, (float)o->beta1, (float)o->beta2, 1e-8f, 0.0f);

  gint64 g_size = g->gan->image_size;
  gint64 d_size = RAT_DISCRIMINATOR_IFACE(g->disc)->image_size ? RAT_DISCRIMINATOR_IFACE(g->disc)->image_size(g->disc) : 0;
  g->real_size = o->image_size ? o->image_size : d_size ? d_size : g_size;
  if (d_size && g->real_size != d_size) {
    g_set_error(error, RAT_ERROR, RAT_ERROR_CONFIG, "%s: train.image_size %" G_GINT64_FORMAT " but the discriminator takes "
                "%" G_GINT64_FORMAT " px images", exp->path, g->real_size, d_size);
    return FALSE;
  }
  if (o->sim_weight > 0) {
    /* the similarity term needs the CLIP image embedding from D.encode: probe with one image */
    RatScope s = rat_scope_push();
    RatTensor *emb = NULL;
    RAT_NO_GRAD_BEGIN
    rat_discriminator_encode(g->disc, rat_zeros(RAT_SHAPE(1, 3, g_size, g_size)), &emb);
    RAT_NO_GRAD_END
    gboolean has = emb != NULL;
    rat_scope_pop(s);
    if (!has) {
      g_set_error(error, RAT_ERROR, RAT_ERROR_CONFIG, "%s: train.sim_weight is %g but the discriminator %s gives no CLIP "
                  "image embedding; set train.sim_weight: 0 (DF-GAN) or use a CLIP discriminator", exp->path,
                  o->sim_weight, g->disc->type->name);
      return FALSE;
    }
  }
  return TRUE;
}

static gboolean open_loader(const GanOptions *o, RatRunContext *ctx, Gan *g, GError **error) {
  RatLoaderOptions lo = rat_loader_options_default((int)g->real_size, (guint)o->batch_size, ctx->seed);
  if (!strcmp(o->augment, "plain") || !strcmp(o->augment, "plain_flip")) {
    lo.transform.mode = RAT_RESIZE_PLAIN;
    lo.transform.random_crop = FALSE;
    lo.transform.random_flip = !strcmp(o->augment, "plain_flip");
  }
  lo.prefetch = (guint)o->prefetch;
  lo.tokenizer = g->gan->tok;
  lo.on_error = !strcmp(o->on_error, "skip") ? RAT_ON_ERROR_SKIP : RAT_ON_ERROR_FAIL;
  g->loader = rat_loader_new(g->data, &lo, error);
  return g->loader != NULL;
}

/* One iteration: d_steps D updates on fresh batches, then one G update with the last fake. */
static gboolean train_step(const GanOptions *o, Gan *g, gint64 step, RatGanLosses *L, GError **error) {
  RatScope scope = rat_scope_push();
  RatGanLossOptions lo = {.mismatch = o->mismatch, .gp_k = o->gp_k, .gp_p = o->gp_p, .sim_weight = o->sim_weight};
  RatGanFake fk = {0};
  gboolean ok = TRUE;
  for (gint64 k = 0; k < o->d_steps && ok; k++) {
    RatBatch b = {0};
    if (!rat_loader_next(g->loader, &b, error)) {
      ok = FALSE;
      break;
    }
    RatTensor *sent = rat_gan_encode_tokens(g->gan, b.tokens);
    RatTensor *z = rat_randn(&g->rng, RAT_SHAPE(b.n, g->gan->z_dim));
    ok = rat_gan_d_step(g->gan, g->opt_d, &lo, b.images, sent, z, step, &fk, L, error);
    rat_batch_clear(&b);
  }
  if (ok) ok = rat_gan_g_step(g->gan, g->opt_g, &lo, &fk, step, L, error);
  if (ok) rat_gan_update_ema(g->gan, o->ema);
  rat_scope_pop(scope);
  return ok;
}

/* ---- samples ------------------------------------------------------------------------------------------- */

typedef struct {
  guint rows, cols;
  char **captions; /* rows */
  RatTensor *tokens, *z; /* [rows*cols, L], [rows*cols, z_dim]; owned references */
} SampleSet;

static void sample_set_clear(SampleSet *s) {
  g_strfreev(s->captions);
  if (s->tokens) rat_tensor_unref(s->tokens);
  if (s->z) rat_tensor_unref(s->z);
}

static gboolean sample_set_init(const GanOptions *o, RatRunContext *ctx, Gan *g, SampleSet *s, GError **error) {
  RatSplit split = rat_dataset_count(g->data, RAT_SPLIT_TEST) > 0 ? RAT_SPLIT_TEST : RAT_SPLIT_TRAIN;
  guint n = rat_dataset_count(g->data, split);
  s->rows = (guint)MIN((guint64)o->sample_rows, n);
  s->cols = (guint)o->sample_cols;
  s->captions = g_new0(char *, s->rows + 1);
  for (guint r = 0; r < s->rows; r++) s->captions[r] = rat_dataset_caption(g->data, split, (guint)((guint64)r * n / s->rows), 0);
  RatScope sc = rat_scope_push();
  guint N = s->rows * s->cols;
  const char **texts = g_new(const char *, N);
  for (guint i = 0; i < N; i++) texts[i] = s->captions[i / s->cols];
  s->tokens = rat_tensor_ref(rat_tokenizer_encode_batch(g->gan->tok, texts, N, NULL));
  g_free(texts);
  /* the same noise for every caption (columns), from a stream the training never touches */
  RatRng zr;
  rat_rng_init(&zr, ctx->seed ^ 0x5a5a5a5a5a5aull);
  gint64 zd = g->gan->z_dim;
  RatTensor *zc = rat_randn(&zr, RAT_SHAPE(s->cols, zd));
  s->z = rat_tensor_ref(rat_contiguous(rat_tile(zc, RAT_SHAPE(s->rows, 1))));
  rat_scope_pop(sc);
  (void)error;
  return TRUE;
}

static gboolean write_samples(const GanOptions *o, RatRunContext *ctx, Gan *g, SampleSet *s, gint64 step,
                              GError **error) {
  RatScope sc = rat_scope_push();
  RatTensor *imgs = rat_gan_generate(g->gan, rat_gan_encode_tokens(g->gan, s->tokens), s->z,
                                     !strcmp(o->sample_mode, "train"), TRUE);
  RatTensor *grid = rat_gan_grid(imgs, s->rows, s->cols, (const char *const *)s->captions);
  char *name = g_strdup_printf("samples/step_%07" G_GINT64_FORMAT ".png", step);
  char *path = rat_run_path(ctx, name), *latest = rat_run_path(ctx, "samples.png");
  char *dir = g_path_get_dirname(path);
  g_mkdir_with_parents(dir, 0755);
  gboolean ok = rat_png_write(path, grid, error) && rat_png_write(latest, grid, error);
  if (ok) {
    GString *txt = g_string_new(NULL);
    g_string_append_printf(txt, "Sample grid at step %" G_GINT64_FORMAT ": one caption per row, the same %u noises in "
                           "every row (G in %s mode%s).\n", step, s->cols, o->sample_mode, g->gan->ema ? ", EMA weights" : "");
    for (guint r = 0; r < s->rows; r++) g_string_append_printf(txt, "row %u: %s\n", r + 1, s->captions[r]);
    char *tp = rat_run_path(ctx, "samples.txt");
    ok = rat_file_write_atomic(tp, txt->str, txt->len, error);
    g_free(tp);
    g_string_free(txt, TRUE);
  }
  g_free(name);
  g_free(path);
  g_free(latest);
  g_free(dir);
  rat_scope_pop(sc);
  return ok;
}

/* The losses in metrics.jsonl so far as a plot (RUN/losses.png): L_D, L_G and MA-GP, averaged over windows so
 * that at most ~600 points are drawn. Reads the file, so a resumed run's curve includes the earlier part. */
static double field(const char *line, const char *key) {
  char *pat = g_strdup_printf("\"%s\": ", key);
  const char *p = strstr(line, pat);
  double v = p ? g_ascii_strtod(p + strlen(pat), NULL) : NAN;
  g_free(pat);
  return v;
}

/* The evaluation records of metrics.jsonl (those with "eval_seconds") as a plot [3, H, W], one series per metric,
 * the last record of a step winning (a resumed run repeats the steps after its checkpoint); NULL when none. */
static RatTensor *eval_plot(const char *text) {
  GPtrArray *names = g_ptr_array_new_with_free_func(g_free);
  GPtrArray *xs = g_ptr_array_new_with_free_func((GDestroyNotify)g_array_unref);
  GPtrArray *ys = g_ptr_array_new_with_free_func((GDestroyNotify)g_array_unref);
  char **lines = g_strsplit(text, "\n", -1);
  double samples = NAN;
  for (char **l = lines; *l; l++) {
    if (!strstr(*l, "\"eval_seconds\": ")) continue;
    double st = field(*l, "step");
    if (!isfinite(st)) continue;
    samples = field(*l, "eval_samples");
    /* the flat {"key": number, ...} members other than the bookkeeping ones */
    for (const char *p = strchr(*l, '"'); p; p = strchr(p, '"')) {
      const char *e = strchr(p + 1, '"');
      if (!e || strncmp(e, "\": ", 3)) break;
      char *key = g_strndup(p + 1, (gsize)(e - p - 1));
      char *end = NULL;
      double v = g_ascii_strtod(e + 3, &end);
      if (end == e + 3) v = NAN; /* null */
      p = strchr(e + 3, ',');
      if (strcmp(key, "step") && strcmp(key, "time") && strcmp(key, "eval_seconds") && strcmp(key, "eval_samples")) {
        guint k = 0;
        while (k < names->len && strcmp(names->pdata[k], key)) k++;
        if (k == names->len) {
          g_ptr_array_add(names, g_strdup(key));
          g_ptr_array_add(xs, g_array_new(FALSE, FALSE, sizeof(double)));
          g_ptr_array_add(ys, g_array_new(FALSE, FALSE, sizeof(double)));
        }
        GArray *x = xs->pdata[k], *y = ys->pdata[k];
        guint i = 0;
        while (i < x->len && g_array_index(x, double, i) != st) i++;
        if (i < x->len) g_array_index(y, double, i) = v;
        else {
          g_array_append_val(x, st);
          g_array_append_val(y, v);
        }
      }
      g_free(key);
      if (!p) break;
    }
  }
  g_strfreev(lines);
  /* one panel per headline value (the metrics' scales differ: FID in the tens, accuracies in [0, 1]): not
   * r_precision_top5, nor a value whose name extends another's (shapes_accuracy_kind); at most 4, two per row */
  guint pick[4], np = 0;
  for (guint k = 0; k < names->len && np < 4; k++) {
    const char *nk = names->pdata[k];
    gboolean sub = g_str_has_suffix(nk, "_top5");
    for (guint j = 0; j < names->len && !sub; j++) {
      gsize lj = strlen(names->pdata[j]);
      sub = j != k && !strncmp(nk, names->pdata[j], lj) && nk[lj] == '_';
    }
    if (!sub) pick[np++] = k;
  }
  RatTensor *img = NULL;
  if (np) {
    RatTensor *rows[2] = {NULL, NULL};
    for (guint r = 0; r < (np + 1) / 2; r++) {
      RatTensor *cell[2];
      for (guint c = 0; c < 2; c++) {
        guint i = r * 2 + c;
        if (i >= np) {
          cell[c] = rat_ones(RAT_SHAPE(3, 200, 320));
          continue;
        }
        guint k = pick[i];
        GArray *x = xs->pdata[k], *y = ys->pdata[k];
        const double *xv = (const double *)x->data, *yv = (const double *)y->data;
        guint nn = x->len;
        const char *nm = names->pdata[k];
        char *title = g_strdup_printf("eval: %s (%.0f samples)", nm, samples);
        cell[c] = rat_plot_lines(320, 200, title, 1, &nm, &xv, &yv, &nn);
        g_free(title);
      }
      rows[r] = rat_concat(cell, 2, 2);
    }
    img = np > 2 ? rat_concat(rows, 2, 1) : rows[0];
  }
  g_ptr_array_unref(names);
  g_ptr_array_unref(xs);
  g_ptr_array_unref(ys);
  return img;
}

static gboolean write_loss_curve(RatRunContext *ctx, GError **error) {
  if (ctx->metrics) fflush(ctx->metrics);
  char *mp = rat_run_path(ctx, "metrics.jsonl"), *text = NULL;
  gboolean ok = TRUE;
  if (g_file_get_contents(mp, &text, NULL, NULL)) {
    static const char *keys[3] = {"loss_d", "loss_g", "ma_gp"};
    GArray *x = g_array_new(FALSE, FALSE, sizeof(double)), *y[3];
    for (int k = 0; k < 3; k++) y[k] = g_array_new(FALSE, FALSE, sizeof(double));
    char **lines = g_strsplit(text, "\n", -1);
    for (char **l = lines; *l; l++) {
      double st = field(*l, "step"), v0 = field(*l, keys[0]);
      if (!isfinite(st) || !isfinite(v0)) continue;
      g_array_append_val(x, st);
      for (int k = 0; k < 3; k++) {
        double v = field(*l, keys[k]);
        g_array_append_val(y[k], v);
      }
    }
    g_strfreev(lines);
    guint n = x->len, win = MAX(1u, n / 600), m = n / win;
    if (m >= 2) {
      double *xs = g_new(double, m), *ys[3];
      for (int k = 0; k < 3; k++) ys[k] = g_new0(double, m);
      for (guint i = 0; i < m; i++) {
        xs[i] = g_array_index(x, double, i * win + win - 1);
        for (int k = 0; k < 3; k++) {
          double acc = 0;
          for (guint j = 0; j < win; j++) acc += g_array_index(y[k], double, i * win + j);
          ys[k][i] = acc / win;
        }
      }
      RatScope sc = rat_scope_push();
      const double *xv[3] = {xs, xs, xs}, *yv[3] = {ys[0], ys[1], ys[2]};
      guint nn[3] = {m, m, m};
      char *title = g_strdup_printf("losses (mean of %u steps per point)", win);
      RatTensor *img = rat_plot_lines(640, 360, title, 3, keys, xv, yv, nn);
      RatTensor *ev = eval_plot(text);
      if (ev) img = rat_concat((RatTensor *const[]){img, ev}, 2, 1);
      char *pp = rat_run_path(ctx, "losses.png");
      ok = rat_png_write(pp, img, error);
      g_free(pp);
      g_free(title);
      rat_scope_pop(sc);
      g_free(xs);
      for (int k = 0; k < 3; k++) g_free(ys[k]);
    }
    g_array_unref(x);
    for (int k = 0; k < 3; k++) g_array_unref(y[k]);
    g_free(text);
  }
  g_free(mp);
  return ok;
}

/* ---- periodic evaluation -------------------------------------------------------------------------------- */

static gboolean periodic_eval(const GanOptions *o, RatRunContext *ctx, Gan *g, gint64 step, GError **error) {
  if (!g->eval_data) {
    if (!rat_eval_options_load(ctx->registry, ctx->exp, &g->eval_opt, error)) return FALSE;
    if (o->eval_samples > 0) g->eval_opt.samples = o->eval_samples;
    if (!(g->eval_data = rat_dataset_build(ctx->registry, ctx->exp->data, error))) {
      rat_eval_options_clear(&g->eval_opt);
      return FALSE;
    }
  }
  gint64 t0 = g_get_monotonic_time();
  RatScope sc = rat_scope_push();
  GError *e = NULL;
  RatEvalResults *r = rat_eval_gan(ctx->registry, ctx->exp, g->gan, g->eval_data, &g->eval_opt, ctx->dir, NULL, step,
                                   FALSE, NULL, NULL, &e);
  rat_scope_pop(sc);
  if (!r) {
    g_propagate_prefixed_error(error, e, "train.eval_every: the evaluation at step %" G_GINT64_FORMAT " failed: ", step);
    return FALSE;
  }
  double secs = (double)(g_get_monotonic_time() - t0) / 1e6;
  guint n = rat_eval_results_count(r);
  const char **names = g_new(const char *, n + 2);
  double *values = g_new(double, n + 2);
  GString *msg = g_string_new(NULL);
  for (guint i = 0; i < n; i++) {
    names[i] = rat_eval_results_name(r, i);
    values[i] = rat_eval_results_value(r, i);
    g_string_append_printf(msg, " %s %.4g", names[i], values[i]);
  }
  names[n] = "eval_samples";
  values[n] = (double)g->eval_opt.samples;
  names[n + 1] = "eval_seconds";
  values[n + 1] = secs;
  rat_run_metrics_array(ctx, step, n + 2, names, values);
  rat_run_log(ctx, "eval at step %" G_GINT64_FORMAT " (%" G_GINT64_FORMAT " samples, %.1f s):%s", step,
              g->eval_opt.samples, secs, msg->str);
  char *name = g_strdup_printf("eval/step_%07" G_GINT64_FORMAT ".json", step);
  char *path = rat_run_path(ctx, name);
  gboolean ok = rat_eval_results_write(r, path, error);
  g_free(path);
  g_free(name);
  g_string_free(msg, TRUE);
  g_free(names);
  g_free(values);
  rat_eval_results_free(r);
  return ok && write_loss_curve(ctx, error);
}

/* ---- checkpoints ---------------------------------------------------------------------------------------- */

static void parts_of(Gan *g, RatCheckpointPart parts[2]) {
  parts[0] = (RatCheckpointPart){.params = g->g_params, .params_prefix = "model.", .optim = g->opt_g, .optim_prefix = "optim_g."};
  parts[1] = (RatCheckpointPart){.params = g->d_params, .params_prefix = "model.", .optim = g->opt_d, .optim_prefix = "optim_d."};
}

static gboolean save_checkpoint(RatRunContext *ctx, Gan *g, gint64 step, GError **error) {
  RatCheckpointPart parts[2];
  parts_of(g, parts);
  GHashTable *extra = g_hash_table_new_full(g_str_hash, g_str_equal, NULL, g_free);
  g_hash_table_insert(extra, "data_position", g_strdup_printf("%" G_GUINT64_FORMAT, rat_loader_position(g->loader)));
  g_hash_table_insert(extra, "generator", g_strdup(g->gen->type->name));
  g_hash_table_insert(extra, "discriminator", g_strdup(g->disc->type->name));
  GHashTable *tensors = NULL;
  if (g->gan->ema) {
    tensors = g_hash_table_new(g_str_hash, g_str_equal);
    g_hash_table_insert(tensors, "ema.generator", g->gan->ema);
  }
  char *path = rat_run_path(ctx, "checkpoint.safetensors");
  gboolean ok = rat_checkpoint_save_parts(path, parts, 2, tensors, step, &g->rng, extra, error);
  g_free(path);
  g_hash_table_destroy(extra);
  if (tensors) g_hash_table_destroy(tensors);
  return ok;
}

static gint64 load_checkpoint(RatRunContext *ctx, Gan *g, GError **error) {
  char *path = rat_run_path(ctx, "checkpoint.safetensors");
  gint64 step = 0;
  if (g_file_test(path, G_FILE_TEST_EXISTS)) {
    RatCheckpointPart parts[2];
    parts_of(g, parts);
    GHashTable *tensors = NULL, *meta = NULL;
    if (g->gan->ema) {
      tensors = g_hash_table_new(g_str_hash, g_str_equal);
      g_hash_table_insert(tensors, "ema.generator", g->gan->ema);
    }
    step = rat_checkpoint_load_parts(path, parts, 2, tensors, &g->rng, &meta, error);
    if (step >= 0) {
      const char *pos = g_hash_table_lookup(meta, "data_position");
      if (!pos) {
        g_set_error(error, RAT_ERROR, RAT_ERROR_CORRUPT, "%s: no data_position metadata: not a train_gan checkpoint", path);
        step = -1;
      } else {
        rat_loader_seek(g->loader, g_ascii_strtoull(pos, NULL, 10));
      }
    }
    if (meta) g_hash_table_unref(meta);
    if (tensors) g_hash_table_destroy(tensors);
  }
  g_free(path);
  return step;
}

/* ---- the task ------------------------------------------------------------------------------------------- */

static gboolean gan_run(RatModule *m, RatRunContext *ctx, GError **error) {
  const GanOptions *o = RAT_MODULE_OPTIONS(m, GanOptions);
  Gan g = {0};
  SampleSet ss = {0};
  gboolean ok = FALSE;
  RatScope outer = rat_scope_push();
  rat_rng_init(&g.rng, ctx->seed);
  if (!build_models(ctx, o, &g, error) || !open_loader(o, ctx, &g, error) || !sample_set_init(o, ctx, &g, &ss, error))
    goto out;
  gint64 step = ctx->resume ? load_checkpoint(ctx, &g, error) : 0;
  if (step < 0) goto out;
  rat_run_log(ctx, "train_gan: %s (%" G_GINT64_FORMAT " learnable parameters, %" G_GINT64_FORMAT " px) vs %s (%" G_GINT64_FORMAT
              " learnable), text encoder %s (%" G_GINT64_FORMAT " frozen); data %s: %u train images at %" G_GINT64_FORMAT
              " px, batch %" G_GINT64_FORMAT "%s",
              g.gen->type->name, rat_params_numel(g.g_params, RAT_PARAM_TRAINABLE), g.gan->image_size, g.disc->type->name,
              rat_params_numel(g.d_params, RAT_PARAM_TRAINABLE), g.gan->text->type->name,
              rat_params_numel(g.gan->te_params, RAT_PARAM_FROZEN) + rat_params_numel(g.gan->te_params, RAT_PARAM_TRAINABLE),
              g.data->type->name, rat_dataset_count(g.data, RAT_SPLIT_TRAIN), g.real_size, o->batch_size,
              step ? " (resumed)" : "");
  if (step) rat_run_log(ctx, "resuming at step %" G_GINT64_FORMAT, step);
  rat_module_set_training(g.gen, TRUE);
  rat_module_set_training(g.disc, TRUE);
  if (step == 0 && !write_samples(o, ctx, &g, &ss, 0, error)) goto out;
  rat_run_progress_start(ctx, "train", o->steps, step);
  ok = TRUE;
  while (step < o->steps) {
    if (rat_run_should_stop(ctx)) {
      ctx->interrupted = TRUE;
      break;
    }
    gint64 t0 = g_get_monotonic_time();
    RatGanLosses L = {0};
    if (!train_step(o, &g, step, &L, error)) {
      ok = FALSE;
      break;
    }
    step++;
    double dt = (double)(g_get_monotonic_time() - t0) / 1e6;
    rat_run_metrics(ctx, step, "loss_d", L.d, "d_real", L.real, "d_fake", L.fake, "d_mismatch", L.mis, "ma_gp", L.gp,
                    "loss_g", L.g, "g_adv", L.g_adv, "clip_sim", L.sim, "grad_norm_d", L.grad_norm_d, "grad_norm_g", L.grad_norm_g,
                    "step_time", dt, NULL);
    if (step % o->log_every == 0 || step == 1)
      rat_run_log(ctx, "step %" G_GINT64_FORMAT " D %.4f (real %.3f fake %.3f mis %.3f gp %.3g) G %.4f (adv %.3f sim %.3f)"
                  " |gD| %.3g |gG| %.3g %.0f ms/step", step, L.d, L.real, L.fake, L.mis, L.gp, L.g, L.g_adv, L.sim,
                  L.grad_norm_d, L.grad_norm_g, dt * 1e3);
    if ((step % o->sample_every == 0 || step == o->steps) &&
        (!write_samples(o, ctx, &g, &ss, step, error) || !write_loss_curve(ctx, error))) {
      ok = FALSE;
      break;
    }
    if (o->eval_every > 0 && (step % o->eval_every == 0 || step == o->steps) && !periodic_eval(o, ctx, &g, step, error)) {
      ok = FALSE;
      break;
    }
    if ((step % o->checkpoint_every == 0 || step == o->steps) && !save_checkpoint(ctx, &g, step, error)) {
      ok = FALSE;
      break;
    }
    rat_run_progress_update(ctx, step);
  }
  rat_run_progress_end(ctx);
  if (ok && ctx->interrupted) ok = save_checkpoint(ctx, &g, step, error);
  if (ok && rat_loader_skipped(g.loader))
    rat_run_log(ctx, "%" G_GUINT64_FORMAT " unreadable images were skipped (on_error: skip)", rat_loader_skipped(g.loader));
out:
  sample_set_clear(&ss);
  rat_scope_pop(outer);
  gan_clear(&g);
  return ok;
}

static gboolean gan_build(RatModule *m, const RatBuildContext *ctx, GError **error) { return TRUE; }

static const RatTaskIface gan_iface = {.run = gan_run};

static const RatModuleType gan_type = {
    .struct_size = sizeof(RatModuleType),
    .name = "train_gan",
    .kind = RAT_KIND_TASK,
    .doc = "Trains the experiment's generator against its discriminator with hinge losses, the mismatch term, MA-GP "
           "and (GALIP/RATLIP) the CLIP similarity loss, as the released GALIP/RATLIP/DF-GAN code (reference §6-7); "
           "sample grids, atomic checkpoints and exact resume.",
    .args = gan_args,
    .n_args = G_N_ELEMENTS(gan_args),
    .options_size = sizeof(GanOptions),
    .build = gan_build,
    .iface = &gan_iface,
};

static gboolean train_gan_init(RatRegistry *reg, GError **error) { return rat_registry_add_type(reg, &gan_type, error); }

RAT_PLUGIN_DEFINE("train_gan", "0.1.0", "MIT", "GAN training task (DF-GAN, GALIP, RATLIP)", train_gan_init)
