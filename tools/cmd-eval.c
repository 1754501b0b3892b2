/* ratfw eval: measures a trained GAN (FID, CLIP score, R-precision, shapes accuracy: the metric plugins) and writes
 * RUN/eval/results.json (docs/evaluation.md); `eval fid A.npz B.npz` is the Frechet distance of two files;
 * `eval stats` writes the reference statistics of a dataset split. Exit status: 0 ok, 1 the evaluation failed,
 * 2 usage or configuration error. */
#include "config.h"

#include "cmd.h"

#include <stdio.h>
#include <string.h>

/* A user-caused error (path, experiment, metric name, argument) is a usage error; anything else a failed evaluation. */
static int status_of(const GError *e) {
  return e->domain == RAT_ERROR && (e->code == RAT_ERROR_CONFIG || e->code == RAT_ERROR_NOT_FOUND) ? EXIT_USAGE : EXIT_RUN;
}

static int report(const char *cmd, GError *e) {
  int st = status_of(e);
  if (st == EXIT_USAGE) fail_config(cmd, e);
  else fail(EXIT_RUN, cmd, "%s", e->message);
  g_error_free(e);
  return st;
}

/* ---- eval fid A.npz B.npz ------------------------------------------------------------------------------------ */

static int cmd_eval_fid(int argc, char **argv) {
  gboolean allow = FALSE;
  GOptionEntry entries[] = {
      {"allow-rank-deficient", 0, 0, G_OPTION_ARG_NONE, &allow,
       "accept feature sets with fewer samples than features (a singular covariance)", NULL},
      {NULL}};
  int st = parse_options("eval fid", "A.npz B.npz",
                         "Prints the Frechet distance between two files, each holding `features` [N, D] (float32 or\n"
                         "float64; mu and sigma as np.mean and np.cov) or `mu` [D] and `sigma` [D, D] (the released\n"
                         "*_FIDK0.npz layout). The value is alone on the last line.",
                         entries, &argc, &argv);
  if (st >= 0) return st;
  if (argc != 3) return fail(EXIT_USAGE, "eval fid", "expected two .npz files (see ratfw eval fid --help)");
  gint64 D[2] = {0}, N[2] = {0};
  double *mu[2] = {NULL}, *sigma[2] = {NULL};
  GError *e = NULL;
  for (int i = 0; i < 2; i++)
    if (!rat_fid_stats_load(argv[1 + i], allow, &D[i], &mu[i], &sigma[i], &N[i], &e)) {
      st = fail(e->code == RAT_ERROR_IO ? EXIT_USAGE : EXIT_RUN, "eval fid", "%s", e->message);
      g_clear_error(&e);
      goto out;
    }
  if (D[0] != D[1]) {
    st = fail(EXIT_RUN, "eval fid", "%s holds %" G_GINT64_FORMAT "-d statistics but %s holds %" G_GINT64_FORMAT
              "-d ones: they come from different feature extractors", argv[1], D[0], argv[2], D[1]);
    goto out;
  }
  RatFrechet f;
  if (!rat_frechet_distance(D[0], mu[0], sigma[0], mu[1], sigma[1], &f, &e)) {
    st = fail(EXIT_RUN, "eval fid", "%s", e->message);
    g_clear_error(&e);
    goto out;
  }
  for (int i = 0; i < 2; i++) {
    if (N[i]) printf("%s: %" G_GINT64_FORMAT " samples of %" G_GINT64_FORMAT " features\n", argv[1 + i], N[i], D[i]);
    else printf("%s: mu and sigma of %" G_GINT64_FORMAT " features\n", argv[1 + i], D[i]);
  }
  printf("|mu1 - mu2|^2 %.10g  Tr(S1) %.10g  Tr(S2) %.10g  Tr(sqrtm(S1 S2)) %.10g%s\n", f.mean_term, f.trace1,
         f.trace2, f.trace_sqrt, f.regularized ? "  (1e-6 added to the diagonals: the first attempt was not finite)" : "");
  printf("%.15g\n", f.fid);
  st = EXIT_OK;
out:
  for (int i = 0; i < 2; i++) {
    g_free(mu[i]);
    g_free(sigma[i]);
  }
  return st;
}

/* ---- eval stats DATASET_OR_EXPERIMENT --out ref.npz ---------------------------------------------------------- */

static int cmd_eval_stats(int argc, char **argv) {
  char *out = NULL, *split = NULL, *extractor = NULL, *clip = NULL, *vocab = NULL, *weights = NULL, *transform = NULL;
  char **sets = NULL;
  int size = 0, batch = 64, threads = 0;
  gboolean no_cache = FALSE, quiet = FALSE, allow = FALSE;
  GOptionEntry entries[] = {
      {"out", 'o', 0, G_OPTION_ARG_FILENAME, &out, "output .npz (mu, sigma)", "FILE"},
      {"split", 0, 0, G_OPTION_ARG_STRING, &split, "test (default) or train", "SPLIT"},
      {"size", 0, 0, G_OPTION_ARG_INT, &size,
       "side the images are resized to (default: the experiment's generator output, else the dataset's native size)", "S"},
      {"extractor", 0, 0, G_OPTION_ARG_STRING, &extractor, "feature network (default: eval.fid.extractor, clip)", "NAME"},
      {"clip", 0, 0, G_OPTION_ARG_FILENAME, &clip,
       "CLIP weights for the clip extractor (default: the experiment's text-encoder CLIP)", "PATH"},
      {"vocab", 0, 0, G_OPTION_ARG_FILENAME, &vocab, "tokenizer of that CLIP, if none lies beside it", "PATH"},
      {"weights", 0, 0, G_OPTION_ARG_FILENAME, &weights, "Inception weights (safetensors)", "PATH"},
      {"transform", 0, 0, G_OPTION_ARG_STRING, &transform, "galip (default) or standard", "NAME"},
      {"batch", 'b', 0, G_OPTION_ARG_INT, &batch, "images per extractor batch (default 64)", "B"},
      {"set", 's', 0, G_OPTION_ARG_STRING_ARRAY, &sets, "override a value of the experiment (repeatable)", "KEY=VALUE"},
      {"no-cache", 0, 0, G_OPTION_ARG_NONE, &no_cache, "neither read nor write the statistics cache", NULL},
      {"allow-rank-deficient", 0, 0, G_OPTION_ARG_NONE, &allow, "accept fewer images than features", NULL},
      {"threads", 't', 0, G_OPTION_ARG_INT, &threads, "OpenMP threads", "N"},
      {"quiet", 'q', 0, G_OPTION_ARG_NONE, &quiet, "no log lines", NULL},
      {NULL}};
  int st = parse_options("eval stats", "DATASET|EXPERIMENT.yaml|RUN_DIR",
                         "Writes FID reference statistics (mu, sigma) of a dataset split: a dataset type with its\n"
                         "default arguments (ratfw plugins lists them), or the data: of an experiment or run, whose\n"
                         "eval.fid section gives the defaults. Cached as `ratfw eval` caches them.",
                         entries, &argc, &argv);
  RatRegistry *reg = NULL;
  RatEvalRun *run = NULL;
  RatExperiment *exp = NULL;
  RatModule *ds = NULL;
  RatGan *gan = NULL;
  RatExtractor *x = NULL;
  RatRunContext *log = NULL;
  RatFidReference ref = {0};
  GError *e = NULL;
  if (st >= 0) goto done;
  if (argc != 2) {
    st = fail(EXIT_USAGE, "eval stats", "expected one dataset, experiment or run directory (see ratfw eval stats --help)");
    goto done;
  }
  if (!out) {
    st = fail(EXIT_USAGE, "eval stats", "--out FILE.npz is required");
    goto done;
  }
  if (split && strcmp(split, "test") && strcmp(split, "train")) {
    st = fail(EXIT_USAGE, "eval stats", "--split must be test or train, not '%s'", split);
    goto done;
  }
  if (batch < 1 || size < 0) {
    st = fail(EXIT_USAGE, "eval stats", "--batch must be >= 1 and --size >= 0");
    goto done;
  }
  if (threads > 0) rat_set_num_threads(threads);
  reg = load_registry(!quiet, NULL);
  const char *what = argv[1];
  gboolean is_file = g_file_test(what, G_FILE_TEST_IS_REGULAR), is_dir = g_file_test(what, G_FILE_TEST_IS_DIR);
  if (is_dir) {
    char *rp = g_build_filename(what, "resolved.yaml", NULL);
    if (!(exp = rat_experiment_load(reg, rp, (const char *const *)sets, &e))) {
      g_free(rp);
      st = report("eval stats", e);
      goto done;
    }
    g_free(rp);
  } else if (is_file) {
    if (!(exp = rat_experiment_load(reg, what, (const char *const *)sets, &e))) {
      st = report("eval stats", e);
      goto done;
    }
  }
  if (exp) {
    if (!exp->data) {
      st = fail(EXIT_USAGE, "eval stats", "%s has no data: section", what);
      goto done;
    }
    if (!(ds = rat_dataset_build(reg, exp->data, &e))) {
      st = report("eval stats", e);
      goto done;
    }
  } else {
    const RatModuleType *t = rat_registry_lookup(reg, what);
    if (!t || t->kind != RAT_KIND_DATASET) {
      st = fail(EXIT_USAGE, "eval stats", "'%s' is neither a dataset type (ratfw plugins lists them), an experiment "
                "file nor a run directory", what);
      goto done;
    }
    RatModuleSpec spec = {.type_name = (char *)what};
    if (!(ds = rat_dataset_build(reg, &spec, &e))) {
      st = report("eval stats", e);
      goto done;
    }
  }
  /* the fid defaults of the experiment's eval: section */
  char *ex = NULL, *cl = NULL, *vo = NULL, *we = NULL, *tr = NULL;
  if (exp && exp->eval && exp->eval->node) {
    RatConfigNode *f = rat_config_get(exp->eval->node, "fid");
    const char *keys[] = {"extractor", "clip", "vocab", "weights", "transform"};
    char **dst[] = {&ex, &cl, &vo, &we, &tr};
    for (int i = 0; i < 5; i++) {
      RatConfigNode *v = f ? rat_config_get(f, keys[i]) : NULL;
      if (v && v->kind == RAT_NODE_SCALAR && !rat_config_is_null(v)) *dst[i] = g_strdup(v->value);
    }
  }
  RatExtractorOptions xo = {.kind = extractor ? extractor : ex ? ex : "clip", .clip = clip ? clip : cl,
                            .vocab = vocab ? vocab : vo, .weights = weights ? weights : we,
                            .transform = transform ? transform : tr ? tr : "galip"};
  gboolean need_run_clip = !strcmp(xo.kind, "clip") && (!xo.clip || !*xo.clip);
  if (exp && (need_run_clip || !size)) {
    if (!(gan = rat_gan_build(reg, exp, 0, FALSE, FALSE, &e))) {
      st = report("eval stats", e);
      goto free_opts;
    }
  }
  if (need_run_clip && !gan) {
    st = fail(EXIT_USAGE, "eval stats", "the clip extractor needs --clip PATH (a pretrain_clip run or CLIP weights) "
              "when the statistics are not of an experiment");
    goto free_opts;
  }
  if (!size) {
    size = gan ? (int)gan->image_size
               : RAT_DATASET_IFACE(ds)->native_size ? RAT_DATASET_IFACE(ds)->native_size(ds) : 0;
    if (!size) {
      st = fail(EXIT_USAGE, "eval stats", "the images of %s vary in size: give --size S", ds->type->name);
      goto free_opts;
    }
  }
  {
    RatEvalContext ctx = {.registry = reg, .exp = exp, .gan = gan, .dataset = ds};
    log = rat_run_context_new_console(".", NULL, quiet);
    if (!(x = rat_extractor_new(&ctx, &xo, &e))) {
      st = report("eval stats", e);
      goto free_opts;
    }
    RatSplit sp = split && !strcmp(split, "train") ? RAT_SPLIT_TRAIN : RAT_SPLIT_TEST;
    if (!rat_fid_reference_compute(x, ds, sp, size, (guint)batch, !no_cache, allow, log, &ref, &e) ||
        !rat_fid_stats_save(out, ref.dim, ref.mu, ref.sigma, &e)) {
      st = report("eval stats", e);
      goto free_opts;
    }
    printf("%s: mu [%" G_GINT64_FORMAT "], sigma [%" G_GINT64_FORMAT ", %" G_GINT64_FORMAT "] of %" G_GINT64_FORMAT
           " images (%s; %s, weights sha256 %s)%s\n", out, ref.dim, ref.dim, ref.dim, ref.n, ref.description,
           rat_extractor_name(x), rat_extractor_sha256(x), ref.from_cache ? " from the cache" : "");
    st = EXIT_OK;
  }
free_opts:
  g_free(ex);
  g_free(cl);
  g_free(vo);
  g_free(we);
  g_free(tr);
done:
  rat_fid_reference_clear(&ref);
  rat_extractor_free(x);
  if (log) rat_run_context_free(log);
  rat_gan_free(gan);
  if (ds) rat_module_free(ds);
  if (exp) rat_experiment_free(exp);
  rat_eval_run_free(run);
  if (reg) rat_registry_free(reg);
  g_free(out);
  g_free(split);
  g_free(extractor);
  g_free(clip);
  g_free(vocab);
  g_free(weights);
  g_free(transform);
  g_strfreev(sets);
  return st;
}

/* ---- eval RUN_DIR|CHECKPOINT --------------------------------------------------------------------------------- */

int cmd_eval(int argc, char **argv) {
  if (argc >= 2 && !strcmp(argv[1], "fid")) return cmd_eval_fid(argc - 1, argv + 1);
  if (argc >= 2 && !strcmp(argv[1], "stats")) return cmd_eval_stats(argc - 1, argv + 1);
  char *metrics = NULL, *experiment = NULL, *out = NULL;
  char **sets = NULL;
  gint samples = -1, seed = -1, batch = -1, threads = 0;
  gboolean quiet = FALSE;
  GOptionEntry entries[] = {
      {"metrics", 'm', 0, G_OPTION_ARG_STRING, &metrics,
       "comma-separated metrics (fid,clip_score,r_precision,shapes_accuracy) or auto (default: eval.metrics)", "LIST"},
      {"samples", 'n', 0, G_OPTION_ARG_INT, &samples, "images to generate (default: eval.samples, 2000)", "N"},
      {"seed", 's', 0, G_OPTION_ARG_INT, &seed, "seed of the captions and noises (default: eval.seed, 0)", "S"},
      {"batch", 'b', 0, G_OPTION_ARG_INT, &batch, "images generated at once (default: eval.batch, 50)", "B"},
      {"threads", 't', 0, G_OPTION_ARG_INT, &threads, "OpenMP threads (default: OMP_NUM_THREADS or all)", "N"},
      {"set", 0, 0, G_OPTION_ARG_STRING_ARRAY, &sets, "override an eval setting (repeatable): eval.samples=500, "
       "eval.fid.extractor=clip, eval.clip_score.transform=standard", "eval.KEY=VALUE"},
      {"experiment", 'e', 0, G_OPTION_ARG_FILENAME, &experiment,
       "the experiment describing the model (default: RUN/resolved.yaml)", "FILE"},
      {"out", 'o', 0, G_OPTION_ARG_FILENAME, &out,
       "results file (default: RUN/eval/results.json); fid_stats.npz and log.txt go beside it", "FILE"},
      {"quiet", 'q', 0, G_OPTION_ARG_NONE, &quiet, "no progress bar or log lines", NULL},
      {NULL}};
  int st = parse_options("eval", "RUN_DIR|CHECKPOINT",
                         "Generates images from the captions of the test split and measures them (FID, CLIP score,\n"
                         "R-precision, shapes accuracy); writes RUN/eval/results.json. Defaults come from the\n"
                         "experiment's eval: section. Also: `ratfw eval fid A.npz B.npz` and\n"
                         "`ratfw eval stats DATASET|EXPERIMENT --out ref.npz` (see their --help).",
                         entries, &argc, &argv);
  RatRegistry *reg = NULL;
  RatEvalRun *run = NULL;
  RatEvalResults *res = NULL;
  RatRunContext *log = NULL;
  RatEvalOptions o = {0};
  gboolean have_opts = FALSE;
  GError *e = NULL;
  if (st >= 0) goto done;
  if (argc != 2) {
    st = fail(EXIT_USAGE, "eval", "expected one run directory or checkpoint file (see ratfw eval --help)");
    goto done;
  }
  if ((samples != -1 && samples < 1) || (batch != -1 && batch < 1) || (seed != -1 && seed < 0)) {
    st = fail(EXIT_USAGE, "eval", "--samples and --batch must be >= 1, --seed >= 0");
    goto done;
  }
  if (threads > 0) rat_set_num_threads(threads);
  gint64 t0 = g_get_monotonic_time();
  reg = load_registry(!quiet, NULL);
  if (!(run = rat_eval_run_open(reg, argv[1], experiment, (const char *const *)sets, &e))) {
    st = report("eval", e);
    goto done;
  }
  if (!rat_eval_options_load(reg, run->exp, &o, &e)) {
    st = report("eval", e);
    goto done;
  }
  have_opts = TRUE;
  if (metrics) {
    g_free(o.metrics);
    o.metrics = g_strdup(metrics);
  }
  if (samples > 0) o.samples = samples;
  if (seed >= 0) o.seed = seed;
  if (batch > 0) o.batch = batch;
  gboolean ema_used = FALSE;
  gint64 step = rat_eval_run_load(run, o.ema, &ema_used, &e);
  if (step < 0) {
    st = report("eval", e);
    goto done;
  }
  if (out) { /* what metrics write (fid_stats.npz) goes beside the results file */
    g_free(run->out_dir);
    char *abs = g_canonicalize_filename(out, NULL);
    run->out_dir = g_path_get_dirname(abs);
    g_free(abs);
  }
  char *log_path = g_build_filename(run->out_dir, "log.txt", NULL);
  log = rat_run_context_new_console(run->out_dir, log_path, quiet);
  g_free(log_path);
  rat_run_log(log, "ratfw eval %s: %s, step %" G_GINT64_FORMAT ", %" G_GINT64_FORMAT " samples (seed %" G_GINT64_FORMAT
              ", batch %" G_GINT64_FORMAT ", %s split, G in %s mode%s), metrics %s, %d threads", RATFW_VERSION,
              run->checkpoint, step, o.samples, o.seed, o.batch, o.split, o.mode, ema_used ? ", EMA weights" : "",
              o.metrics, rat_get_num_threads());
  if (!(res = rat_eval_gan(reg, run->exp, run->gan, run->dataset, &o, run->run_dir, run->checkpoint, step, ema_used,
                           run->out_dir, log, &e))) {
    rat_run_log(log, "failed: %s", e->message);
    st = report("eval", e);
    goto done;
  }
  char *path = out ? g_strdup(out) : g_build_filename(run->out_dir, "results.json", NULL);
  if (!rat_eval_results_write(res, path, &e)) {
    g_free(path);
    st = report("eval", e);
    goto done;
  }
  printf("%-28s %14s  %s\n", "metric", "value", "better");
  for (guint i = 0; i < rat_eval_results_count(res); i++)
    printf("%-28s %14.6g  %s\n", rat_eval_results_name(res, i), rat_eval_results_value(res, i),
           rat_eval_results_higher_is_better(res, i) ? "higher" : "lower");
  printf("%s (protocol %.12s, %.1f s)\n", path, rat_eval_results_protocol_hash(res),
         (double)(g_get_monotonic_time() - t0) / 1e6);
  rat_run_log(log, "results: %s", path);
  g_free(path);
  st = EXIT_OK;
done:
  rat_eval_results_free(res);
  if (log) rat_run_context_free(log);
  if (have_opts) rat_eval_options_clear(&o);
  rat_eval_run_free(run);
  if (reg) rat_registry_free(reg);
  g_free(metrics);
  g_free(experiment);
  g_free(out);
  g_strfreev(sets);
  return st;
}
