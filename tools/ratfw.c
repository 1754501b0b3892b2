/* The ratfw command: run, validate, plugins, inspect (issue 3; later issues add sample, eval, ablate, dataset,
 * bench as further entries of the command table). Exit status: 0 ok, 1 the run failed, 2 usage or config error;
 * every failure ends with a one-line cause on stderr. */
#include "config.h"

#include <ratfw/ratfw.h>
#include <ratfw/batchcheck.h>

#include <locale.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cmd.h"

static volatile gint stop_flag = 0;

static void on_sigint(int sig) {
  if (g_atomic_int_get(&stop_flag)) {
    signal(sig, SIG_DFL);
    raise(sig); /* second Ctrl-C: stop now */
    return;
  }
  g_atomic_int_set(&stop_flag, 1);
}

int fail(int status, const char *cmd, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  char *msg = g_strdup_vprintf(fmt, ap);
  va_end(ap);
  fprintf(stderr, "ratfw %s: %s\n", cmd, msg);
  g_free(msg);
  return status;
}

/* Multi-line config errors: every line, then the one-line cause last. */
int fail_config(const char *cmd, const GError *e) {
  char **lines = g_strsplit(e->message, "\n", -1);
  guint n = g_strv_length(lines);
  if (n > 1)
    for (guint i = 0; i < n; i++) fprintf(stderr, "%s\n", lines[i]);
  int st = n > 1 ? fail(EXIT_USAGE, cmd, "%u errors", n) : fail(EXIT_USAGE, cmd, "%s", e->message);
  g_strfreev(lines);
  return st;
}

RatRegistry *load_registry(gboolean warn, GPtrArray **failures_out) {
  RatRegistry *reg = rat_registry_new();
  GPtrArray *failures = g_ptr_array_new_with_free_func((GDestroyNotify)g_error_free);
  rat_registry_load_all(reg, failures);
  if (warn && !g_getenv("RATFW_QUIET_PLUGINS"))
    for (guint i = 0; i < failures->len; i++)
      fprintf(stderr, "ratfw: warning: plugin not loaded: %s\n", ((GError *)failures->pdata[i])->message);
  if (failures_out) *failures_out = failures;
  else g_ptr_array_unref(failures);
  return reg;
}

/* Parses a subcommand's options; leaves positional arguments in argv. Returns -1 to continue, else an exit code. */
int parse_options(const char *cmd, const char *params, const char *summary, GOptionEntry *entries, int *argc,
                         char ***argv) {
  char *p = g_strdup_printf("%s %s", cmd, params);
  GOptionContext *oc = g_option_context_new(p);
  g_free(p);
  g_option_context_set_summary(oc, summary);
  g_option_context_add_main_entries(oc, entries, NULL);
  GError *e = NULL;
  gboolean ok = g_option_context_parse(oc, argc, argv, &e);
  g_option_context_free(oc);
  if (!ok) {
    int st = fail(EXIT_USAGE, cmd, "%s (see ratfw %s --help)", e->message, cmd);
    g_error_free(e);
    return st;
  }
  return -1;
}

/* ---- validate -------------------------------------------------------------------------------------------- */

/* Builds every module of the experiment's model: section into @mods (or builds and frees them when @mods is
 * NULL: a dry build that runs the checks needing structural sizes). */
static gboolean build_model(RatRegistry *reg, RatExperiment *exp, RatBuildContext *ctx, GPtrArray *mods,
                            GError **error) {
  /* Text encoders first: a GAN's generator and discriminator use the text encoder's CLIP (RatGanContext). The
   * context lives as long as the process (this is a one-shot command). */
  static RatGanContext gctx;
  GPtrArray *built = g_ptr_array_new_with_free_func(mods ? NULL : (GDestroyNotify)rat_module_free);
  gboolean ok = TRUE;
  for (int pass = 0; pass < 2 && ok; pass++)
    for (guint i = 0; i < rat_n_model_slots && ok; i++) {
      if (!exp->model[i] || (rat_model_slots[i].kind == RAT_KIND_TEXT_ENCODER) != (pass == 0)) continue;
      RatModule *m = rat_module_build(reg, exp->model[i], rat_model_slots[i].name, rat_model_slots[i].kind, ctx, error);
      if (!m) {
        ok = FALSE;
        break;
      }
      g_ptr_array_add(mods ? mods : built, m);
      if (pass == 0 && !gctx.clip) {
        const RatTextEncoderIface *ti = RAT_MODULE_IFACE(m, RatTextEncoderIface);
        if (ti->clip && (gctx.clip = ti->clip(m))) {
          gctx.sentence_dim = rat_clip_config(gctx.clip)->embed_dim;
          ctx->user = &gctx;
        }
      }
    }
  g_ptr_array_unref(built);
  return ok;
}

static int cmd_validate(int argc, char **argv) {
  char **sets = NULL;
  gboolean resolved = FALSE;
  GOptionEntry entries[] = {
      {"set", 's', 0, G_OPTION_ARG_STRING_ARRAY, &sets, "Override a value (repeatable)", "KEY.PATH=VALUE"},
      {"resolved", 0, 0, G_OPTION_ARG_NONE, &resolved, "Print the resolved config (every default filled in)", NULL},
      {NULL}};
  int st = parse_options("validate", "EXPERIMENT.yaml",
                         "Checks an experiment file (or a sweep file of ratfw ablate: every variant) against the\n"
                         "installed plugins and reports every error with file:line:column. Does no work.",
                         entries, &argc, &argv);
  if (st >= 0) return st;
  if (argc != 2) return fail(EXIT_USAGE, "validate", "expected one experiment file (see ratfw validate --help)");
  if (rat_sweep_file_is_sweep(argv[1])) {
    st = validate_sweep(argv[1], sets, resolved);
    g_strfreev(sets);
    return st;
  }
  RatRegistry *reg = load_registry(TRUE, NULL);
  GError *e = NULL;
  RatExperiment *exp = rat_experiment_load(reg, argv[1], (const char *const *)sets, &e);
  if (!exp) {
    st = fail_config("validate", e);
    g_error_free(e);
  } else {
    /* Dry-build the model section: checks that need structural sizes (channels divisible by 2*groups, a
     * shared RAT cell of one width...) only run once the parent's sizes are known. No forward, no training. */
    RatParams *params = rat_params_new();
    RatRng rng;
    rat_rng_init(&rng, (guint64)exp->seed);
    RatBuildContext ctx = exp->sizes;
    ctx.params = params;
    ctx.rng = &rng;
    if (!build_model(reg, exp, &ctx, NULL, &e)) {
      st = fail(EXIT_USAGE, "validate", "%s", e->message);
      g_clear_error(&e);
    }
    rat_params_free(params);
    if (st >= 0) {
      /* already reported */
    } else if (resolved) {
      char *y = rat_experiment_resolved_yaml(reg, exp);
      fputs(y, stdout);
      g_free(y);
    } else {
      printf("%s: ok (%s%s)\n", argv[1], exp->task ? "task " : "no task: a model description",
             exp->task ? exp->task->type_name : "");
    }
    /* required experiments must be valid too */
    for (guint i = 0; i < exp->requires->len; i++) {
      RatExperiment *r = rat_experiment_load(reg, exp->requires->pdata[i], NULL, &e);
      if (!r) {
        st = fail_config("validate", e);
        g_clear_error(&e);
        break;
      }
      rat_experiment_free(r);
    }
    if (st < 0) st = EXIT_OK;
    rat_experiment_free(exp);
  }
  g_strfreev(sets);
  rat_registry_free(reg);
  return st;
}

/* ---- run ------------------------------------------------------------------------------------------------- */

typedef struct {
  RatRegistry *reg;
  char *command_line;
  gboolean quiet;
  GPtrArray *stack; /* experiment paths being run (cycle detection) */
} Runner;

/* Runs @exp into @dir. Returns an exit status; on failure the cause is printed. */
static int run_experiment(Runner *r, RatExperiment *exp, const char *dir, gboolean resume) {
  for (guint i = 0; i < r->stack->len; i++)
    if (!strcmp(r->stack->pdata[i], exp->path)) return fail(EXIT_USAGE, "run", "requires: cycle through %s", exp->path);
  g_ptr_array_add(r->stack, exp->path);
  int st = EXIT_OK;
  GHashTable *required = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, g_free);
  char *parent = g_path_get_dirname(dir);
  for (guint i = 0; st == EXIT_OK && i < exp->requires->len; i++) {
    GError *e = NULL;
    RatExperiment *req = rat_experiment_load(r->reg, exp->requires->pdata[i], NULL, &e);
    if (!req) {
      st = fail_config("run", e);
      g_error_free(e);
      break;
    }
    char *rdir = rat_run_default_dir(req, parent);
    if (rat_run_is_complete(rdir)) {
      if (!r->quiet) fprintf(stderr, "ratfw run: %s: output present in %s\n", req->name, rdir);
    } else {
      if (!r->quiet) fprintf(stderr, "ratfw run: %s needs %s: running it first into %s\n", exp->name, req->name, rdir);
      char *marker = g_build_filename(rdir, "resolved.yaml", NULL);
      gboolean partial = g_file_test(marker, G_FILE_TEST_EXISTS);
      g_free(marker);
      st = run_experiment(r, req, rdir, partial);
      if (st == EXIT_OK && !rat_run_is_complete(rdir))
        st = fail(EXIT_RUN, "run", "required experiment %s did not complete (interrupted?)", req->name);
    }
    g_hash_table_insert(required, g_strdup(req->path), rdir);
    rat_experiment_free(req);
  }
  g_free(parent);
  if (st != EXIT_OK) {
    g_hash_table_unref(required);
    g_ptr_array_remove_index(r->stack, r->stack->len - 1);
    return st;
  }
  if (!exp->task) {
    g_hash_table_unref(required);
    g_ptr_array_remove_index(r->stack, r->stack->len - 1);
    return fail(EXIT_USAGE, "run", "%s has no 'task:': nothing to run (ratfw plugins lists the tasks)", exp->path);
  }
  GError *e = NULL;
  RatRunContext *ctx = rat_run_context_new(r->reg, exp, dir, resume, r->command_line, &e);
  if (!ctx) {
    st = fail(EXIT_USAGE, "run", "%s", e->message);
    g_error_free(e);
    g_hash_table_unref(required);
    g_ptr_array_remove_index(r->stack, r->stack->len - 1);
    return st;
  }
  g_hash_table_unref(ctx->required);
  ctx->required = required;
  ctx->stop = &stop_flag;
  ctx->quiet = r->quiet;
  rat_run_log(ctx, "ratfw %s: %s -> %s (task %s, seed %" G_GUINT64_FORMAT ", %d threads)%s", RATFW_VERSION,
              exp->name, ctx->dir, exp->task->type_name, ctx->seed, ctx->threads, ctx->resume ? " resuming" : "");
  RatBuildContext bctx = exp->sizes;
  RatModule *task = rat_module_build(r->reg, exp->task, "task", RAT_KIND_TASK, &bctx, &e);
  gboolean ok = task != NULL;
  if (ok) {
    const RatTaskIface *iface = RAT_MODULE_IFACE(task, RatTaskIface);
    if (!iface || !iface->run) {
      g_set_error(&e, RAT_ERROR, RAT_ERROR_UNSUPPORTED, "task type '%s' has no run function", task->type->name);
      ok = FALSE;
    } else {
      RatScope s = rat_scope_push();
      ok = iface->run(task, ctx, &e);
      rat_scope_pop(s);
    }
  }
  if (!ok) {
    rat_run_log(ctx, "failed: %s", e ? e->message : "unknown error");
    st = fail(EXIT_RUN, "run", "%s: %s", exp->name, e ? e->message : "the task failed without a reason");
    g_clear_error(&e);
  } else if (ctx->interrupted) {
    rat_run_log(ctx, "interrupted: continue with ratfw run %s --resume --out %s", exp->path, ctx->dir);
    st = fail(EXIT_RUN, "run", "%s: interrupted (continue it with --resume)", exp->name);
  } else {
    rat_run_log(ctx, "done: %s", ctx->dir);
  }
  rat_run_context_finish(ctx, ok);
  rat_module_free(task);
  rat_run_context_free(ctx);
  g_ptr_array_remove_index(r->stack, r->stack->len - 1);
  return st;
}

static int cmd_run(int argc, char **argv) {
  char **sets = NULL, *out = NULL;
  gboolean resume = FALSE, quiet = FALSE;
  int threads = 0;
  GOptionEntry entries[] = {
      {"set", 's', 0, G_OPTION_ARG_STRING_ARRAY, &sets, "Override a value (repeatable)", "KEY.PATH=VALUE"},
      {"out", 'o', 0, G_OPTION_ARG_FILENAME, &out, "Run directory (default: out: of the file, else runs/NAME)", "DIR"},
      {"resume", 'r', 0, G_OPTION_ARG_NONE, &resume, "Continue the run in the run directory", NULL},
      {"threads", 't', 0, G_OPTION_ARG_INT, &threads, "OpenMP threads (default: OMP_NUM_THREADS or all)", "N"},
      {"quiet", 'q', 0, G_OPTION_ARG_NONE, &quiet, "No progress or log lines on stderr", NULL},
      {NULL}};
  char *cmdline = g_strjoinv(" ", argv);
  int st = parse_options("run", "EXPERIMENT.yaml",
                         "Runs an experiment's task into a run directory holding resolved.yaml, provenance.json,\n"
                         "log.txt, metrics.jsonl and what the task writes. Required experiments whose output is\n"
                         "missing run first. Ctrl-C asks the task to checkpoint and stop.",
                         entries, &argc, &argv);
  if (st >= 0) {
    g_free(cmdline);
    return st;
  }
  if (argc != 2) {
    g_free(cmdline);
    return fail(EXIT_USAGE, "run", "expected one experiment file (see ratfw run --help)");
  }
  if (threads > 0) rat_set_num_threads(threads);
  RatRegistry *reg = load_registry(!quiet, NULL);
  GError *e = NULL;
  RatExperiment *exp = rat_experiment_load(reg, argv[1], (const char *const *)sets, &e);
  if (!exp) {
    st = fail_config("run", e);
    g_error_free(e);
  } else {
    signal(SIGINT, on_sigint);
    Runner r = {.reg = reg, .command_line = g_strdup_printf("ratfw %s", cmdline), .quiet = quiet,
                .stack = g_ptr_array_new()};
    char *dir = out ? g_canonicalize_filename(out, NULL) : rat_run_default_dir(exp, NULL);
    st = run_experiment(&r, exp, dir, resume);
    g_free(dir);
    g_free(r.command_line);
    g_ptr_array_unref(r.stack);
    rat_experiment_free(exp);
  }
  g_free(cmdline);
  g_free(out);
  g_strfreev(sets);
  rat_registry_free(reg);
  return st;
}

/* ---- plugins ------------------------------------------------------------------------------------------------ */

static char *arg_default_text(const RatArgSpec *a) { return g_strdup(a->default_value ? a->default_value : "(required)"); }

static char *arg_range_text(const RatArgSpec *a) {
  if (a->type == RAT_ARG_CHOICE) return g_strjoinv("|", (char **)a->choices);
  if (a->type == RAT_ARG_MODULE) return g_strdup_printf("a %s", rat_module_kind_name(a->module_kind));
  if (a->type == RAT_ARG_STAGES) return g_strdup_printf("{out, in, size, %s}", "block");
  if (a->type != RAT_ARG_INT && a->type != RAT_ARG_DOUBLE && a->type != RAT_ARG_INT_LIST) return g_strdup("");
  if (a->min == RAT_ARG_NO_LIMIT && a->max == RAT_ARG_NO_LIMIT) return g_strdup("any");
  char lo[32] = "-inf", hi[32] = "inf";
  if (a->min != RAT_ARG_NO_LIMIT) g_snprintf(lo, sizeof lo, "%.15g", a->min);
  if (a->max != RAT_ARG_NO_LIMIT) g_snprintf(hi, sizeof hi, "%.15g", a->max);
  return g_strdup_printf("[%s, %s]", lo, hi);
}

static const char *arg_type_text(RatArgType t) {
  static const char *const n[] = {"int", "double", "bool", "string", "choice", "path", "int list", "module", "stages"};
  return (guint)t < G_N_ELEMENTS(n) ? n[t] : "?";
}

/* What a module of the two GAN part kinds is given and must return (gan.h; docs/writing-a-block.md, -head.md). */
static void print_kind_interface(RatModuleKind kind) {
  if (kind == RAT_KIND_GENERATOR_BLOCK)
    printf("  Interface (RatGeneratorBlockIface, gan.h): one stage of a generator, built as its child blocks.<k>\n"
           "    forward(h [B, in_channels, in_size, in_size], cond [B, cond_dim], state) -> [B, out_channels, size, size]\n"
           "    build context: RatGeneratorBlockContext (rat_generator_block_context): stage, n_stages, in_channels,\n"
           "    out_channels, in_size, size, cond_dim, the generator's fusion and conv specs; state carries a chained\n"
           "    RAT's LSTM state from stage to stage. Used by model.generator.block and .stages[k].block.\n\n");
  else if (kind == RAT_KIND_DISCRIMINATOR_HEAD)
    printf("  Interface (RatDiscriminatorHeadIface, gan.h): the last stage of a discriminator\n"
           "    logits(features [B, channels, grid, grid], sentence [B, sentence_dim]) -> [B], twice differentiable\n"
           "    (MA-GP); conditional() FALSE: the sentence is not read, the losses drop the mismatch term and the\n"
           "    sentence gradient. build context: RatDiscriminatorHeadContext (rat_discriminator_head_context):\n"
           "    channels, grid, sentence_dim, nf. Used by model.discriminator.head.\n\n");
}

static void print_type(RatRegistry *reg, const RatModuleType *t) {
  const char *plugin = rat_registry_type_plugin(reg, t);
  printf("Module type %s\n", t->name);
  printf("  kind:    %s\n", rat_module_kind_name(t->kind));
  printf("  plugin:  %s\n", plugin ? plugin : "(core)");
  for (guint i = 0; i < rat_registry_plugins(reg)->len; i++) {
    const RatPluginInfo *p = rat_registry_plugins(reg)->pdata[i];
    if (plugin && !strcmp(p->name, plugin)) printf("  version: %s (%s), %s\n", p->version, p->license, p->path);
  }
  printf("\n  %s\n\n", t->doc ? t->doc : "(no description)");
  print_kind_interface(t->kind);
  if (!t->n_args) {
    printf("  No arguments.\n");
    return;
  }
  printf("  Arguments (%u):\n", t->n_args);
  printf("    %-18s %-8s %-14s %-20s %s\n", "name", "type", "default", "range/choices", "description");
  for (guint i = 0; i < t->n_args; i++) {
    const RatArgSpec *a = &t->args[i];
    char *def = arg_default_text(a), *range = arg_range_text(a);
    printf("    %-18s %-8s %-14s %-20s %s\n", a->name, arg_type_text(a->type), def, range, a->doc ? a->doc : "");
    g_free(def);
    g_free(range);
  }
}

/* `ratfw plugins --check NAME`: is a conditioner's or block's output for one sample a function of that sample
 * alone, in training and in eval mode? */
static int check_batch(RatRegistry *reg, const char *name, char **args) {
  int st = EXIT_OK;
  for (int training = 1; training >= 0; training--) {
    gboolean dep = FALSE;
    double change = 0;
    GError *e = NULL;
    if (!rat_check_batch_dependence(reg, name, (const char *const *)args, training, &dep, &change, &e)) {
      st = fail(EXIT_USAGE, "plugins", "%s", e->message);
      g_error_free(e);
      return st;
    }
    printf("%s (%s mode): %s (sample 0 moved by %.3g when the other samples changed)\n", name,
           training ? "training" : "eval", dep ? "batch-dependent" : "batch-invariant", change);
  }
  return st;
}

static int cmd_plugins(int argc, char **argv) {
  gboolean check = FALSE;
  char **args = NULL;
  GOptionEntry entries[] = {
      {"check", 0, 0, G_OPTION_ARG_NONE, &check,
       "run the batch-invariance check on NAME (a conditioner or block): does a sample's output depend on the "
       "other samples of its batch?", NULL},
      {"arg", 0, 0, G_OPTION_ARG_STRING_ARRAY, &args, "an argument for --check, as key=value (repeatable)", "K=V"},
      {NULL}};
  int st = parse_options("plugins", "[NAME]",
                         "Lists installed plugins and their module types; with NAME (a module type or plugin),\n"
                         "shows its arguments with defaults, ranges and documentation.",
                         entries, &argc, &argv);
  if (st >= 0) return st;
  if (argc > 2) return fail(EXIT_USAGE, "plugins", "expected at most one NAME (see ratfw plugins --help)");
  if (check && argc != 2) return fail(EXIT_USAGE, "plugins", "--check needs the NAME of a conditioner or block");
  GPtrArray *failures = NULL;
  RatRegistry *reg = load_registry(FALSE, &failures);
  const GPtrArray *plugins = rat_registry_plugins(reg);
  if (check) {
    st = check_batch(reg, argv[1], args);
    g_strfreev(args);
    g_ptr_array_unref(failures);
    rat_registry_free(reg);
    return st;
  }
  g_strfreev(args);
  if (argc == 2) {
    const char *name = argv[1];
    const RatModuleType *t = rat_registry_lookup(reg, name);
    const RatPluginInfo *pi = NULL;
    for (guint i = 0; i < plugins->len; i++)
      if (!strcmp(((const RatPluginInfo *)plugins->pdata[i])->name, name)) pi = plugins->pdata[i];
    if (t) print_type(reg, t);
    if (pi) {
      if (t) printf("\n");
      printf("Plugin %s %s (%s)\n  %s\n  %s\n  Module types:", pi->name, pi->version, pi->license, pi->description,
             pi->path);
      GPtrArray *all = rat_registry_types(reg, RAT_KIND_N);
      for (guint i = 0; i < all->len; i++) {
        const RatModuleType *ty = all->pdata[i];
        if (!g_strcmp0(rat_registry_type_plugin(reg, ty), pi->name))
          printf(" %s (%s)", ty->name, rat_module_kind_name(ty->kind));
      }
      printf("\n");
      g_ptr_array_unref(all);
    }
    if (!t && !pi) {
      GPtrArray *all = rat_registry_types(reg, RAT_KIND_N);
      const char **names = g_new0(const char *, all->len + plugins->len + 1);
      guint n = 0;
      for (guint i = 0; i < all->len; i++) names[n++] = ((const RatModuleType *)all->pdata[i])->name;
      for (guint i = 0; i < plugins->len; i++) names[n++] = ((const RatPluginInfo *)plugins->pdata[i])->name;
      const char *near = rat_closest_name(name, names);
      st = fail(EXIT_USAGE, "plugins", "no plugin or module type named '%s'%s%s%s", name, near ? " (did you mean '" : "",
                near ? near : "", near ? "'?)" : "");
      g_free(names);
      g_ptr_array_unref(all);
    }
  } else {
    printf("Plugins (%u):\n", plugins->len);
    for (guint i = 0; i < plugins->len; i++) {
      const RatPluginInfo *p = plugins->pdata[i];
      printf("  %-20s %-8s %-12s %s\n", p->name, p->version, p->license, p->description);
    }
    for (int k = 0; k < RAT_KIND_N; k++) {
      GPtrArray *types = rat_registry_types(reg, (RatModuleKind)k);
      if (types->len) {
        printf("\n%s:\n", rat_module_kind_name((RatModuleKind)k));
        for (guint i = 0; i < types->len; i++) {
          const RatModuleType *t = types->pdata[i];
          const char *plugin = rat_registry_type_plugin(reg, t);
          char *doc = g_strdup(t->doc ? t->doc : "");
          char *dot = strstr(doc, ". ");
          if (dot) dot[1] = 0;
          printf("  %-22s %-18s %s\n", t->name, plugin ? plugin : "(core)", doc);
          g_free(doc);
        }
      }
      g_ptr_array_unref(types);
    }
    if (failures->len) {
      printf("\nNot loaded (%u):\n", failures->len);
      for (guint i = 0; i < failures->len; i++) printf("  %s\n", ((GError *)failures->pdata[i])->message);
    }
    st = EXIT_OK;
  }
  if (st < 0) st = EXIT_OK;
  g_ptr_array_unref(failures);
  rat_registry_free(reg);
  return st;
}

/* ---- inspect ------------------------------------------------------------------------------------------------ */

typedef struct {
  gint64 learnable, frozen;
  guint64 flops;
} Totals;

static void module_totals(RatModule *m, GHashTable *prof, Totals *t) {
  for (guint i = 0; i < m->params->len; i++) {
    RatTensor *p = m->params->pdata[i];
    if (p->requires_grad) t->learnable += rat_tensor_numel(p);
    else t->frozen += rat_tensor_numel(p);
  }
  RatProfileEntry *e = g_hash_table_lookup(prof, m);
  if (e) t->flops += e->flops;
  for (guint i = 0; i < m->children->len; i++) module_totals(m->children->pdata[i], prof, t);
}

static char *human(double v) {
  if (v >= 1e9) return g_strdup_printf("%.2fG", v / 1e9);
  if (v >= 1e6) return g_strdup_printf("%.2fM", v / 1e6);
  if (v >= 1e4) return g_strdup_printf("%.1fk", v / 1e3);
  return g_strdup_printf("%.0f", v);
}

static void print_module(RatModule *m, GHashTable *prof, int depth) {
  Totals t = {0};
  module_totals(m, prof, &t);
  RatProfileEntry *e = g_hash_table_lookup(prof, m);
  const char *last = strrchr(m->path, '.');
  char *label = g_strdup_printf("%*s%s", 2 * depth, "", depth ? last + 1 : m->path);
  char *shape = e && e->out_shape.ndim >= 0 ? rat_shape_to_string(e->out_shape) : g_strdup("-");
  char *fl = human((double)t.flops);
  printf("%-34s %-20s %-18s %12" G_GINT64_FORMAT " %10" G_GINT64_FORMAT " %10s\n", label, m->type->name, shape,
         t.learnable, t.frozen, fl);
  g_free(fl);
  g_free(shape);
  g_free(label);
  for (guint i = 0; i < m->children->len; i++) print_module(m->children->pdata[i], prof, depth + 1);
}

/* One forward on example inputs of batch 1. */
static gboolean example_forward(RatModule *m, const RatBuildContext *ctx, GError **error) {
  RatScope s = rat_scope_push();
  gboolean ok = TRUE;
  RatRng rng;
  rat_rng_init(&rng, 1234);
  RatTensor *(*fn)(RatModule *, const RatBuildContext *, GError **) =
      m->type->struct_size >= G_STRUCT_OFFSET(RatModuleType, example_forward) + sizeof(gpointer)
          ? m->type->example_forward
          : NULL;
  if (fn) {
    rat_module_enter(m);
    RatTensor *y = fn(m, ctx, error);
    rat_module_leave(m, y);
    ok = y != NULL;
  } else if (m->type->kind == RAT_KIND_CONDITIONER || m->type->kind == RAT_KIND_BLOCK) {
    if (ctx->channels <= 0 || (m->type->kind == RAT_KIND_CONDITIONER && ctx->cond_dim <= 0)) {
      g_set_error(error, RAT_ERROR, RAT_ERROR_CONFIG, "%s: set model.channels%s for an example input", m->path,
                  m->type->kind == RAT_KIND_CONDITIONER ? " and model.cond_dim" : "");
      ok = FALSE;
    } else {
      gint64 hw = ctx->image_size > 0 ? ctx->image_size : 8;
      RatTensor *x = rat_randn(&rng, RAT_SHAPE(1, ctx->channels, hw, hw));
      if (m->type->kind == RAT_KIND_CONDITIONER)
        rat_conditioner_forward(m, x, rat_randn(&rng, RAT_SHAPE(1, ctx->cond_dim)), NULL);
      else rat_block_forward(m, x);
    }
  } else {
    fprintf(stderr, "ratfw inspect: %s: a %s gives no example input (no example_forward): shapes and FLOPs not shown\n",
            m->path, rat_module_kind_name(m->type->kind));
  }
  rat_scope_pop(s);
  return ok;
}

static int cmd_inspect(int argc, char **argv) {
  char **sets = NULL;
  GOptionEntry entries[] = {
      {"set", 's', 0, G_OPTION_ARG_STRING_ARRAY, &sets, "Override a value (repeatable)", "KEY.PATH=VALUE"}, {NULL}};
  int st = parse_options("inspect", "EXPERIMENT.yaml",
                         "Builds the experiment's model without training and prints the module tree with output\n"
                         "shapes (batch 1), learnable and frozen parameter counts and forward FLOPs per sample.",
                         entries, &argc, &argv);
  if (st >= 0) return st;
  if (argc != 2) return fail(EXIT_USAGE, "inspect", "expected one experiment file (see ratfw inspect --help)");
  RatRegistry *reg = load_registry(TRUE, NULL);
  GError *e = NULL;
  RatExperiment *exp = rat_experiment_load(reg, argv[1], (const char *const *)sets, &e);
  if (!exp) {
    st = fail_config("inspect", e);
    g_error_free(e);
    g_strfreev(sets);
    rat_registry_free(reg);
    return st;
  }
  RatParams *params = rat_params_new();
  RatRng rng;
  rat_rng_init(&rng, (guint64)exp->seed);
  RatBuildContext ctx = exp->sizes;
  ctx.params = params;
  ctx.rng = &rng;
  GPtrArray *mods = g_ptr_array_new_with_free_func((GDestroyNotify)rat_module_free);
  st = EXIT_OK;
  if (!build_model(reg, exp, &ctx, mods, &e)) {
    st = fail(EXIT_RUN, "inspect", "%s", e->message);
    g_clear_error(&e);
  }
  if (st == EXIT_OK && !mods->len) st = fail(EXIT_USAGE, "inspect", "%s has no model: section", argv[1]);
  if (st == EXIT_OK) {
    rat_profile_begin();
    RAT_NO_GRAD_BEGIN
    for (guint i = 0; i < mods->len && st == EXIT_OK; i++) {
      RatModule *m = mods->pdata[i];
      rat_module_set_training(m, FALSE);
      if (!example_forward(m, &ctx, &e)) {
        st = fail(EXIT_RUN, "inspect", "%s", e ? e->message : "forward failed");
        g_clear_error(&e);
      }
    }
    RAT_NO_GRAD_END
    GPtrArray *entries_ = rat_profile_end();
    GHashTable *prof = g_hash_table_new(NULL, NULL);
    for (guint i = 0; i < entries_->len; i++)
      g_hash_table_insert(prof, ((RatProfileEntry *)entries_->pdata[i])->module, entries_->pdata[i]);
    if (st == EXIT_OK) {
      printf("%-34s %-20s %-18s %12s %10s %10s\n", "module", "type", "output (batch 1)", "learnable", "frozen",
             "FLOPs");
      Totals all = {0};
      for (guint i = 0; i < mods->len; i++) {
        print_module(mods->pdata[i], prof, 0);
        module_totals(mods->pdata[i], prof, &all);
      }
      char *fl = human((double)all.flops);
      printf("%-34s %-20s %-18s %12" G_GINT64_FORMAT " %10" G_GINT64_FORMAT " %10s\n", "total", "", "", all.learnable,
             all.frozen, fl);
      g_free(fl);
    }
    g_hash_table_unref(prof);
    g_ptr_array_unref(entries_);
  }
  g_ptr_array_unref(mods);
  rat_params_free(params);
  rat_experiment_free(exp);
  g_strfreev(sets);
  rat_registry_free(reg);
  return st;
}

/* ---- main -------------------------------------------------------------------------------------------------- */

/* ---- tokenize ----------------------------------------------------------------------------------------------- */

static int cmd_tokenize(int argc, char **argv) {
  char *vocab = NULL;
  gboolean hf_pad = FALSE;
  GOptionEntry entries[] = {
      {"vocab", 0, 0, G_OPTION_ARG_FILENAME, &vocab,
       "OpenAI's bpe_simple_vocab_16e6.txt.gz, a directory with Hugging Face vocab.json + merges.txt, or a "
       "ratfw word tokenizer (.json)", "PATH"},
      {"pad-eot", 0, 0, G_OPTION_ARG_NONE, &hf_pad, "pad with the end token 49407 (Hugging Face) instead of 0", NULL},
      {NULL}};
  int st = parse_options("tokenize", "[CAPTION...]",
                         "Prints the token ids of each caption (context 77 for CLIP, with truncation that keeps the\n"
                         "end token), one line per caption, space-separated. Without CAPTION arguments, reads\n"
                         "captions from standard input, one per line.",
                         entries, &argc, &argv);
  if (st >= 0) return st;
  if (!vocab) return fail(EXIT_USAGE, "tokenize", "--vocab PATH is required (see ratfw tokenize --help)");
  GError *e = NULL;
  RatTokenizer *tok = g_str_has_suffix(vocab, ".json") ? rat_tokenizer_load(vocab, &e) : rat_tokenizer_load_bpe(vocab, &e);
  g_free(vocab);
  if (!tok) {
    st = fail(EXIT_USAGE, "tokenize", "%s", e->message);
    g_error_free(e);
    return st;
  }
  if (hf_pad) rat_tokenizer_set_pad_id(tok, 49407);
  guint ctx = rat_tokenizer_context(tok);
  gint32 *ids = g_new(gint32, ctx);
  GString *line = g_string_new(NULL);
  int i = 1;
  for (;;) {
    const char *text;
    char *buf = NULL;
    if (argc > 1) {
      if (i >= argc) break;
      text = argv[i++];
    } else {
      char chunk[4096];
      g_string_truncate(line, 0);
      gboolean got = FALSE;
      while (fgets(chunk, sizeof(chunk), stdin)) {
        got = TRUE;
        g_string_append(line, chunk);
        if (line->len && line->str[line->len - 1] == '\n') break;
      }
      if (!got) break;
      if (line->len && line->str[line->len - 1] == '\n') g_string_truncate(line, line->len - 1);
      buf = g_strdup(line->str);
      text = buf;
    }
    rat_tokenizer_encode(tok, text, ids, ctx);
    for (guint k = 0; k < ctx; k++) printf(k ? " %d" : "%d", ids[k]);
    printf("\n");
    g_free(buf);
  }
  g_string_free(line, TRUE);
  g_free(ids);
  rat_tokenizer_free(tok);
  return EXIT_OK;
}

/* ---- clip encode ------------------------------------------------------------------------------------------- */

static int cmd_clip(int argc, char **argv) {
  char *weights = NULL, *out = NULL, *vocab = NULL, *transform = NULL, *taps_s = NULL;
  char **texts = NULL, **images = NULL;
  GOptionEntry entries[] = {
      {"weights", 0, 0, G_OPTION_ARG_FILENAME, &weights,
       "CLIP weights: a Hugging Face model.safetensors (or its directory, with config.json and vocab.json/merges.txt) "
       "or an OpenAI state dict converted to safetensors", "PATH"},
      {"text", 0, 0, G_OPTION_ARG_STRING_ARRAY, &texts, "a caption to embed (repeatable)", "TEXT"},
      {"image", 0, 0, G_OPTION_ARG_FILENAME_ARRAY, &images, "a PNG image to embed (repeatable)", "FILE.png"},
      {"vocab", 0, 0, G_OPTION_ARG_FILENAME, &vocab,
       "tokenizer when the weights directory has none: bpe_simple_vocab_16e6.txt.gz, a vocab.json+merges.txt "
       "directory, or a ratfw word tokenizer .json", "PATH"},
      {"transform", 0, 0, G_OPTION_ARG_STRING, &transform,
       "image transform: galip (released GALIP/RATLIP quirk, default) or standard", "NAME"},
      {"taps", 0, 0, G_OPTION_ARG_STRING, &taps_s, "also write the vision residual stream after these blocks, e.g. 1,4,8",
       "LIST"},
      {"out", 'o', 0, G_OPTION_ARG_FILENAME, &out, "output safetensors: text_embeds, image_embeds, image_tap.N", "FILE"},
      {NULL}};
  int st = parse_options("clip", "encode",
                         "Embeds captions and images with a CLIP model and writes the embeddings (un-normalised) to a\n"
                         "safetensors file, so they can be compared with another implementation.",
                         entries, &argc, &argv);
  if (st >= 0) return st;
  GError *e = NULL;
  RatClipConfig cfg;
  RatParams *params = NULL;
  RatClip *clip = NULL;
  RatTokenizer *tok = NULL;
  GPtrArray *names = g_ptr_array_new_with_free_func(g_free), *tensors = g_ptr_array_new();
  RatScope scope = rat_scope_push();
  gboolean prev_grad = rat_set_grad_enabled(FALSE); /* inference only */
  if (argc != 2 || strcmp(argv[1], "encode")) {
    st = fail(EXIT_USAGE, "clip", "expected 'encode' (see ratfw clip --help)");
    goto out;
  }
  if (!weights || !out) {
    st = fail(EXIT_USAGE, "clip", "--weights and --out are required");
    goto out;
  }
  if (!texts && !images) {
    st = fail(EXIT_USAGE, "clip", "nothing to embed: give --text and/or --image");
    goto out;
  }
  gboolean galip = !transform || !strcmp(transform, "galip");
  if (transform && !galip && strcmp(transform, "standard")) {
    st = fail(EXIT_USAGE, "clip", "--transform must be galip or standard, not '%s'", transform);
    goto out;
  }
  if (!rat_clip_config_from_file(weights, &cfg, &e)) goto error;
  params = rat_params_new();
  clip = rat_clip_new(&cfg, params, "", RAT_PARAM_FROZEN);
  rat_params_finalize(params);
  if (!rat_clip_load(clip, weights, &e)) goto error;
  if (texts) {
    char *tpath = vocab ? g_strdup(vocab) : g_file_test(weights, G_FILE_TEST_IS_DIR) ? g_strdup(weights) : NULL;
    if (!tpath) {
      st = fail(EXIT_USAGE, "clip", "--text needs a tokenizer: give --vocab, or a weights directory with vocab.json "
                "and merges.txt");
      goto out;
    }
    tok = rat_tokenizer_load(tpath, &e);
    g_free(tpath);
    if (!tok) goto error;
    rat_tokenizer_set_context(tok, MIN(rat_tokenizer_context(tok), (guint)cfg.context_length));
    RatTensor *ids = rat_tokenizer_encode_batch(tok, (const char *const *)texts, g_strv_length(texts), NULL);
    gint32 eot = rat_tokenizer_kind(tok) == RAT_TOKENIZER_BPE ? -1 : rat_tokenizer_eot_id(tok);
    g_ptr_array_add(names, g_strdup("text_ids"));
    g_ptr_array_add(tensors, ids);
    g_ptr_array_add(names, g_strdup("text_embeds"));
    g_ptr_array_add(tensors, rat_clip_encode_text_eot(clip, ids, eot));
  }
  if (images) {
    guint n = g_strv_length(images);
    RatTensor **px = g_new0(RatTensor *, n);
    for (guint i = 0; i < n; i++) {
      RatTensor *img = rat_png_read(images[i], &e);
      if (!img) {
        g_free(px);
        goto error;
      }
      if (img->shape[0] != 3) {
        st = fail(EXIT_USAGE, "clip", "%s: %" G_GINT64_FORMAT " channels; CLIP takes RGB images", images[i], img->shape[0]);
        g_free(px);
        goto out;
      }
      RatTensor *x = rat_add_scalar(rat_mul_scalar(rat_unsqueeze(img, 0), 2.0f), -1.0f);
      px[i] = galip ? rat_clip_transform_galip(x, cfg.image_size) : rat_clip_transform_standard(x, cfg.image_size);
    }
    RatTensor *pix = rat_concat(px, n, 0);
    g_free(px);
    int blocks[64];
    guint nb = 0;
    if (taps_s) {
      char **parts = g_strsplit(taps_s, ",", -1);
      for (guint k = 0; parts[k] && nb < 64; k++) blocks[nb++] = atoi(parts[k]);
      g_strfreev(parts);
      for (guint k = 0; k < nb; k++)
        if (blocks[k] < 0 || blocks[k] >= cfg.vision_layers || (k && blocks[k] <= blocks[k - 1])) {
          st = fail(EXIT_USAGE, "clip", "--taps must be increasing block numbers below %d", cfg.vision_layers);
          goto out;
        }
    }
    RatTensor *taps[64];
    g_ptr_array_add(names, g_strdup("image_embeds"));
    g_ptr_array_add(tensors, rat_clip_vision_taps(clip, pix, blocks, nb, taps));
    for (guint k = 0; k < nb; k++) {
      g_ptr_array_add(names, g_strdup_printf("image_tap.%d", blocks[k]));
      g_ptr_array_add(tensors, taps[k]);
    }
  }
  GHashTable *meta = g_hash_table_new(g_str_hash, g_str_equal);
  g_hash_table_insert(meta, "weights", weights);
  g_hash_table_insert(meta, "transform", galip ? "galip" : "standard");
  g_ptr_array_add(names, NULL);
  gboolean ok = rat_safetensors_save(out, tensors->len, (const char *const *)names->pdata, (RatTensor *const *)tensors->pdata,
                                     meta, &e);
  g_hash_table_destroy(meta);
  if (!ok) goto error;
  printf("%s: %u tensors\n", out, tensors->len);
  st = EXIT_OK;
  goto out;
error:
  st = fail(EXIT_RUN, "clip", "%s", e->message);
  g_error_free(e);
out:
  rat_set_grad_enabled(prev_grad);
  rat_scope_pop(scope);
  if (tok) rat_tokenizer_free(tok);
  rat_clip_free(clip);
  if (params) rat_params_free(params);
  g_ptr_array_unref(names);
  g_ptr_array_unref(tensors);
  g_strfreev(texts);
  g_strfreev(images);
  g_free(weights);
  g_free(out);
  g_free(vocab);
  g_free(transform);
  g_free(taps_s);
  return st;
}

/* ---- bench ---------------------------------------------------------------------------------------------------- */

/* The benchmark programs live beside ratfw: bench/ in a build tree, $(pkglibexecdir) once installed. */
static char *find_helper(const char *name) {
  const char *env = g_getenv("RATFW_BENCH_DIR");
  char *exe = g_file_read_link("/proc/self/exe", NULL);
  char *exedir = exe ? g_path_get_dirname(exe) : g_strdup(".");
  char *cands[5] = {env ? g_build_filename(env, name, NULL) : NULL, g_build_filename(exedir, "..", "bench", name, NULL),
                    g_build_filename(exedir, "..", "..", "bench", name, NULL),
                    g_build_filename(RATFW_PKGLIBEXECDIR, name, NULL), NULL};
  char *found = NULL;
  for (int i = 0; i < 4; i++) {
    if (!found && cands[i] && g_file_test(cands[i], G_FILE_TEST_IS_EXECUTABLE)) found = g_strdup(cands[i]);
    g_free(cands[i]);
  }
  g_free(exe);
  g_free(exedir);
  return found;
}

static gboolean spawn_ok(char **argv_, GError **e) {
  gint wait = 0;
  return g_spawn_sync(NULL, argv_, NULL, G_SPAWN_CHILD_INHERITS_STDIN, NULL, NULL, NULL, NULL, &wait, e) &&
         g_spawn_check_wait_status(wait, NULL);
}

/* A benchmark script: the source tree's bench/NAME, else the installed copy in the package data directory. */
static char *bench_script(const char *name) {
  char *script = g_build_filename(RATFW_SRCDIR, "bench", name, NULL);
  if (!g_file_test(script, G_FILE_TEST_EXISTS)) {
    g_free(script);
    script = g_build_filename(RATFW_PKGDATADIR, name, NULL);
  }
  return script;
}

/* `ratfw bench clip`: ViT-B/32 encoding throughput (random weights), then the same in PyTorch with --torch. */
static int bench_clip(gboolean quick, gboolean torch) {
  char *bin = find_helper("bench-clip");
  if (!bin) return fail(EXIT_RUN, "bench", "bench-clip not found beside ratfw (build it with make, or set RATFW_BENCH_DIR)");
  const char *reps = quick ? "2" : "5";
  char *argv_c[] = {bin, "8", (char *)reps, NULL};
  GError *e = NULL;
  int st = spawn_ok(argv_c, &e) ? EXIT_OK : EXIT_RUN;
  if (st == EXIT_OK && torch) {
    char *script = bench_script("bench_clip.py");
    char *argv_p[] = {"/usr/bin/python3", script, "8", (char *)reps, NULL};
    if (!spawn_ok(argv_p, &e)) st = EXIT_RUN;
    g_free(script);
  }
  if (e) {
    st = fail(EXIT_RUN, "bench", "%s", e->message);
    g_error_free(e);
  }
  g_free(bin);
  return st;
}

/* Input pipeline: ratfw's decode + augmentation against PIL + torchvision on the same JPEGs (made once by
 * bench_data.py --make into ~/.cache/ratfw/bench-data, which needs python3-pil). */
static int bench_data(gboolean quick, gboolean torch) {
  char *bin = find_helper("bench-data");
  if (!bin) return fail(EXIT_RUN, "bench", "bench-data not found beside ratfw (build it with make, or set RATFW_BENCH_DIR)");
  char *script = bench_script("bench_data.py");
  char *dir = g_build_filename(g_get_user_cache_dir(), "ratfw", "bench-data", NULL);
  const char *passes = quick ? "1" : "3";
  GError *e = NULL;
  int st = EXIT_OK;
  char *probe = g_build_filename(dir, "img_00255.jpg", NULL);
  if (!g_file_test(probe, G_FILE_TEST_EXISTS)) {
    char *argv_m[] = {"/usr/bin/python3", script, "--make", dir, "256", NULL};
    if (!spawn_ok(argv_m, &e)) {
      st = fail(EXIT_RUN, "bench", "could not write the benchmark images with %s (needs python3-pil: "
                "apt-get install python3-pil)%s%s", script, e ? ": " : "", e ? e->message : "");
      goto out;
    }
  }
  char *argv_c[] = {bin, dir, "256", "32", (char *)passes, NULL};
  if (!spawn_ok(argv_c, &e)) {
    st = EXIT_RUN;
    goto out;
  }
  if (torch) {
    char *argv_p[] = {"/usr/bin/python3", script, dir, "256", "32", (char *)passes, NULL};
    if (!spawn_ok(argv_p, &e)) st = fail(EXIT_RUN, "bench", "the PyTorch side failed (needs python3-torch, "
                                          "python3-torchvision and python3-pil)%s%s", e ? ": " : "", e ? e->message : "");
  }
out:
  g_clear_error(&e);
  g_free(probe);
  g_free(dir);
  g_free(script);
  g_free(bin);
  return st;
}

/* One GAN iteration (D step + G step) of the CPU-scale models, next to PyTorch with --torch. */
static int bench_gan(gboolean quick, gboolean torch) {
  char *bin = find_helper("bench-gan");
  if (!bin) return fail(EXIT_RUN, "bench", "bench-gan not found beside ratfw (build it with make, or set RATFW_BENCH_DIR)");
  const char *reps = quick ? "2" : "5";
  char *argv_c[] = {bin, "32", (char *)reps, NULL};
  GError *e = NULL;
  int st = spawn_ok(argv_c, &e) ? EXIT_OK : EXIT_RUN;
  if (st == EXIT_OK && torch) {
    char *script = bench_script("bench_gan.py");
    char *argv_p[] = {"/usr/bin/python3", script, "32", (char *)reps, NULL};
    if (!spawn_ok(argv_p, &e)) st = fail(EXIT_RUN, "bench", "the PyTorch side failed (needs python3-torch and the "
                                          "source tree's tools/reference)%s%s", e ? ": " : "", e ? e->message : "");
    g_free(script);
  }
  g_clear_error(&e);
  g_free(bin);
  return st;
}

/* Runs @argv_ with @envp (NULL: ours) and returns its stdout, or NULL (its stderr passes through). */
static char *spawn_out(char **argv_, char **envp, GError **e) {
  gint wait = 0;
  char *out = NULL;
  if (!g_spawn_sync(NULL, argv_, envp, G_SPAWN_CHILD_INHERITS_STDIN, NULL, NULL, &out, NULL, &wait, e) ||
      !g_spawn_check_wait_status(wait, e)) {
    g_free(out);
    return NULL;
  }
  return out;
}

/* The images/s column of row @name in bench-eval's (or bench_eval.py's) output, or a negative number. */
static double bench_rate(const char *out, const char *name) {
  char **lines = g_strsplit(out ? out : "", "\n", -1);
  double v = -1;
  for (char **l = lines; *l; l++) {
    char **f = g_strsplit_set(g_strstrip(*l), " \t", -1), *w[3];
    int n = 0;
    for (char **x = f; *x && n < 3; x++)
      if (**x) w[n++] = *x;
    if (n == 3 && **l != '#' && !strcmp(w[0], name)) v = g_ascii_strtod(w[2], NULL);
    g_strfreev(f);
  }
  g_strfreev(lines);
  return v;
}

/* `ratfw bench eval`: images/s of the FID Inception extractors and of the CLIP score at ViT-B/32 size (random
 * weights, bench-eval), with --torch next to PyTorch (bench_eval.py, run with OPENBLAS_CORETYPE and OPENBLAS_L2_SIZE
 * unset so that torch's OpenBLAS picks its own kernels), in one table. */
static int bench_eval(gboolean quick, gboolean torch) {
  char *bin = find_helper("bench-eval");
  if (!bin) return fail(EXIT_RUN, "bench", "bench-eval not found beside ratfw (build it with make, or set RATFW_BENCH_DIR)");
  const char *batch = "16", *reps = quick ? "1" : "3";
  char *argv_c[] = {bin, (char *)batch, (char *)reps, NULL};
  GError *e = NULL;
  char *out_c = spawn_out(argv_c, NULL, &e), *out_p = NULL;
  int st = EXIT_OK;
  if (!out_c) {
    st = fail(EXIT_RUN, "bench", "%s failed%s%s", bin, e ? ": " : "", e ? e->message : "");
    goto out;
  }
  if (torch) {
    char *script = bench_script("bench_eval.py");
    char *argv_p[] = {"/usr/bin/python3", script, (char *)batch, (char *)reps, NULL};
    char **envp = g_environ_unsetenv(g_environ_unsetenv(g_get_environ(), "OPENBLAS_CORETYPE"), "OPENBLAS_L2_SIZE");
    out_p = spawn_out(argv_p, envp, &e);
    g_strfreev(envp);
    if (!out_p)
      st = fail(EXIT_RUN, "bench", "the PyTorch side failed (needs python3-torch, python3-torchvision and the "
                "source tree's tools/reference)%s%s", e ? ": " : "", e ? e->message : "");
    g_free(script);
  }
  const char *outs[2] = {out_c, out_p};
  for (int k = 0; k < 2; k++) {
    char **lines = g_strsplit(outs[k] ? outs[k] : "", "\n", -1);
    for (char **l = lines; *l; l++)
      if (**l == '#') printf("%s\n", *l);
    g_strfreev(lines);
  }
  printf("%-14s %14s %14s %8s\n", "extractor", "ratfw img/s", "PyTorch img/s", "ratio");
  const char *names[3] = {"inception", "inception_fid", "clip_score"};
  for (int i = 0; i < 3; i++) {
    double c = bench_rate(out_c, names[i]), p = bench_rate(out_p, names[i]);
    char pc[32] = "-", rc[32] = "-";
    if (p > 0) {
      g_snprintf(pc, sizeof pc, "%.2f", p);
      g_snprintf(rc, sizeof rc, "%.2fx", c / p);
    }
    printf("%-14s %14.2f %14s %8s\n", names[i], c, pc, rc);
  }
out:
  g_clear_error(&e);
  g_free(out_c);
  g_free(out_p);
  g_free(bin);
  return st;
}

static int cmd_bench(int argc, char **argv) {
  gboolean quick = FALSE, torch = FALSE;
  GOptionEntry entries[] = {
      {"quick", 0, 0, G_OPTION_ARG_NONE, &quick, "fewer shapes and repeats", NULL},
      {"torch", 0, 0, G_OPTION_ARG_NONE, &torch,
       "also time the same ops in PyTorch (python3-torch) at the same thread count and print one joined table", NULL},
      {NULL}};
  int st = parse_options("bench", "ops|clip|data|gan|eval",
                         "Benchmarks. 'ops': GFLOP/s of conv2d forward, backward-data and backward-weights at the\n"
                         "RATLIP generator's shapes and of matmul, next to the machine's sgemm peak measured in the\n"
                         "same run. 'clip': CLIP ViT-B/32 image and text encoding throughput (random weights).\n"
                         "'data': images/s through JPEG decode and the reference augmentation at 256 px (--torch:\n"
                         "next to PIL + torchvision on the same files, DataLoader workers = threads).\n"
                         "'gan': one training iteration (D step with MA-GP, G step with CLIP similarity, Adam) of the\n"
                         "CPU-scale RATLIP, GALIP and DF-GAN (--torch: the same iteration in PyTorch).\n"
                         "'eval': images/s of the FID extractors inception and inception_fid (batch 16 at 299 px) and\n"
                         "of the CLIP score at ViT-B/32 size (--torch: torchvision/PyTorch, one table with the ratio).\n"
                         "Threads: OMP_NUM_THREADS. A benchmark prints a table; it asserts nothing.",
                         entries, &argc, &argv);
  if (st >= 0) return st;
  if (argc != 2 || (strcmp(argv[1], "ops") && strcmp(argv[1], "clip") && strcmp(argv[1], "data") &&
                    strcmp(argv[1], "gan") && strcmp(argv[1], "eval")))
    return fail(EXIT_USAGE, "bench", "expected 'ops', 'clip', 'data', 'gan' or 'eval' (see ratfw bench --help)");
  if (!strcmp(argv[1], "eval")) return bench_eval(quick, torch);
  if (!strcmp(argv[1], "gan")) return bench_gan(quick, torch);
  if (!strcmp(argv[1], "data")) return bench_data(quick, torch);
  if (!strcmp(argv[1], "clip")) return bench_clip(quick, torch);
  char *bin = find_helper("bench-ops");
  if (!bin) return fail(EXIT_RUN, "bench", "bench-ops not found beside ratfw (build it with make, or set RATFW_BENCH_DIR)");
  GPtrArray *args = g_ptr_array_new_with_free_func(g_free);
  if (torch) {
    char *script = bench_script("run-bench-ops.sh");
    g_ptr_array_add(args, g_strdup("/bin/sh"));
    g_ptr_array_add(args, script);
    g_setenv("BENCH_OPS_BIN", bin, TRUE);
  } else {
    g_ptr_array_add(args, g_strdup(bin));
  }
  if (quick) g_ptr_array_add(args, g_strdup("--quick"));
  g_ptr_array_add(args, NULL);
  GError *e = NULL;
  gint wait = 0;
  if (!g_spawn_sync(NULL, (char **)args->pdata, NULL, G_SPAWN_CHILD_INHERITS_STDIN,
                    NULL, NULL, NULL, NULL, &wait, &e)) {
    st = fail(EXIT_RUN, "bench", "%s", e->message);
    g_error_free(e);
  } else {
    st = g_spawn_check_wait_status(wait, NULL) ? EXIT_OK : EXIT_RUN;
  }
  g_ptr_array_unref(args);
  g_free(bin);
  return st;
}

static const struct {
  const char *name;
  int (*fn)(int argc, char **argv);
  const char *help;
} commands[] = {
    {"run", cmd_run, "run an experiment into a run directory"},
    {"validate", cmd_validate, "check an experiment file, report every error, do no work"},
    {"plugins", cmd_plugins, "list plugins and module types, or one type's arguments"},
    {"inspect", cmd_inspect, "build the model and print modules, shapes, parameters and FLOPs"},
    {"sample", cmd_sample, "generate a grid of images for captions from a GAN run or checkpoint"},
    {"eval", cmd_eval, "measure a GAN run (FID, CLIP score, R-precision, shapes accuracy); 'eval fid A B'; 'eval stats'"},
    {"dataset", cmd_dataset, "'dataset info|preview|fetch': look at a dataset (counts, captions, a contact sheet)"},
    {"tokenize", cmd_tokenize, "print the token ids of captions (CLIP BPE or a word tokenizer)"},
    {"clip", cmd_clip, "'clip encode': embed captions and images with CLIP weights into a safetensors file"},
    {"ablate", cmd_ablate, "train and evaluate every variant x seed of a sweep; table, chart and report"},
    {"bench", cmd_bench, "benchmarks next to PyTorch: 'ops' (kernel GFLOP/s), 'clip', 'data' (input pipeline), 'gan' (one iteration), 'eval' (FID/CLIP-score extractors)"},
};

static void usage(FILE *f) {
  fprintf(f, "Usage: ratfw COMMAND [OPTION...] [ARG...]\n\nText-to-image GAN research framework " RATFW_VERSION
             ".\n\nCommands:\n");
  for (guint i = 0; i < G_N_ELEMENTS(commands); i++) fprintf(f, "  %-10s %s\n", commands[i].name, commands[i].help);
  fprintf(f, "\n'ratfw COMMAND --help' describes a command's options. Plugins are searched in RATFW_PLUGIN_PATH,\n"
             "then " RATFW_PLUGINDIR ".\nExit status: 0 success, 1 the run failed, 2 usage or configuration error.\n");
}

int main(int argc, char **argv) {
  setlocale(LC_ALL, "");
  rat_init();
  if (argc < 2) {
    usage(stderr);
    return EXIT_USAGE;
  }
  if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") || !strcmp(argv[1], "help")) {
    usage(stdout);
    return EXIT_OK;
  }
  if (!strcmp(argv[1], "--version")) {
    printf("ratfw " RATFW_VERSION " (plugin ABI %d)\n", RAT_PLUGIN_ABI_VERSION);
    return EXIT_OK;
  }
  for (guint i = 0; i < G_N_ELEMENTS(commands); i++)
    if (!strcmp(argv[1], commands[i].name)) {
      int st = commands[i].fn(argc - 1, argv + 1);
      fflush(stdout);
      exit(st);
    }
  fprintf(stderr, "ratfw: unknown command '%s' (commands: run, validate, plugins, inspect; see ratfw --help)\n",
          argv[1]);
  return EXIT_USAGE;
}
