/* `ratfw ablate SWEEP.yaml`: runs a sweep (every variant x seed of an experiment, each trained by `ratfw run` and
 * measured by `ratfw eval` in a child process) into a sweep directory and writes table.md/.csv/.tex, chart.png
 * and index.html; and `ratfw validate SWEEP.yaml`. The work is core/ablate/ (ratfw/ablate.h); docs/ablations.md. */
#include "config.h"

#include <ratfw/ratfw.h>

#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "cmd.h"

static volatile gint stop_level = 0;

/* Ctrl-C (or SIGTERM): the first asks every run to checkpoint and stop, the second to stop at once. */
static void on_stop(int sig) {
  if (g_atomic_int_get(&stop_level) < 2) g_atomic_int_inc(&stop_level);
}

static char *self_exe(void) {
  char *exe = g_file_read_link("/proc/self/exe", NULL);
  if (!exe) exe = g_find_program_in_path("ratfw");
  return exe;
}

/* Splits "a,b" and repeated --only into one NULL-terminated list. */
static char **split_only(char **only) {
  GPtrArray *names = g_ptr_array_new();
  for (guint i = 0; only && only[i]; i++) {
    char **parts = g_strsplit(only[i], ",", -1);
    for (guint k = 0; parts[k]; k++)
      if (*g_strstrip(parts[k])) g_ptr_array_add(names, g_strdup(parts[k]));
    g_strfreev(parts);
  }
  g_ptr_array_add(names, NULL);
  return (char **)g_ptr_array_free(names, FALSE);
}

static gboolean check_only(const RatSweep *s, char **only) {
  for (guint i = 0; only && only[i]; i++) {
    if (rat_sweep_variant_index(s, only[i]) >= 0) continue;
    const char **names = g_new0(const char *, s->variants->len + 1);
    for (guint v = 0; v < s->variants->len; v++) names[v] = ((RatSweepVariant *)s->variants->pdata[v])->name;
    const char *near = rat_closest_name(only[i], names);
    char *all = g_strjoinv(", ", (char **)names);
    fail(EXIT_USAGE, "ablate", "--only: '%s' is not a variant of the sweep%s%s%s (variants: %s)", only[i],
         near ? " (did you mean '" : "", near ? near : "", near ? "'?)" : "", all);
    g_free(all);
    g_free(names);
    return FALSE;
  }
  return TRUE;
}

/* `ratfw validate SWEEP.yaml`: every variant's experiment (with the sweep's eval: section) validated, and its model
 * built once (the checks that need structural sizes), as for an experiment. */
int validate_sweep(const char *path, char **sets, gboolean resolved) {
  RatRegistry *reg = load_registry(TRUE, NULL);
  GError *e = NULL;
  int st = EXIT_OK;
  RatSweep *s = rat_sweep_load(reg, path, (const char *const *)sets, &e);
  if (!s) {
    st = fail_config("validate", e);
    g_error_free(e);
    rat_registry_free(reg);
    return st;
  }
  for (guint v = 0; v < s->variants->len && st == EXIT_OK; v++) {
    const RatSweepRun *run = NULL;
    for (guint i = 0; i < s->runs->len && !run; i++)
      if (((RatSweepRun *)s->runs->pdata[i])->variant == v) run = s->runs->pdata[i];
    if (!rat_sweep_check_build(reg, run, &e)) {
      st = fail(EXIT_USAGE, "validate", "variant '%s': %s", ((RatSweepVariant *)s->variants->pdata[v])->name,
                e->message);
      g_clear_error(&e);
    } else if (resolved) {
      printf("# ---- variant %s, seed %" G_GINT64_FORMAT ", run %.16s\n%s", ((RatSweepVariant *)s->variants->pdata[v])->name,
             run->seed, run->id, run->experiment);
      printf("# evaluation (ratfw eval --set ...)\n%s", run->eval_yaml);
    }
  }
  if (st == EXIT_OK && !resolved)
    printf("%s: ok (sweep: %u variants x %u seeds = %u runs of %s, baseline %s)\n", path, s->variants->len,
           s->seeds->len, s->runs->len, s->base, ((RatSweepVariant *)s->variants->pdata[s->baseline])->name);
  rat_sweep_free(s);
  rat_registry_free(reg);
  return st;
}

int cmd_ablate(int argc, char **argv) {
  char *out = NULL, **only_opt = NULL, **sets = NULL;
  int jobs = 1, threads = 0;
  gboolean dry_run = FALSE;
  GOptionEntry entries[] = {
      {"out", 'o', 0, G_OPTION_ARG_FILENAME, &out, "Sweep directory (default: out: of the sweep, else runs/NAME)", "DIR"},
      {"jobs", 'j', 0, G_OPTION_ARG_INT, &jobs, "Runs at once; the threads are split between them (default 1)", "N"},
      {"threads", 't', 0, G_OPTION_ARG_INT, &threads, "Threads in all (default: OMP_NUM_THREADS or every core)", "N"},
      {"only", 0, 0, G_OPTION_ARG_STRING_ARRAY, &only_opt, "Run only these variants (repeatable or a,b)", "VARIANT"},
      {"dry-run", 'n', 0, G_OPTION_ARG_NONE, &dry_run, "Print the plan (runs done, partial, to do; estimated time)", NULL},
      {"set", 's', 0, G_OPTION_ARG_STRING_ARRAY, &sets, "Override a value of every variant (repeatable)", "KEY.PATH=VALUE"},
      {NULL}};
  int st = parse_options("ablate", "SWEEP.yaml",
                         "Trains and evaluates every variant x seed of a sweep file (docs/ablations.md), each run a\n"
                         "child process (ratfw run, then ratfw eval), and writes table.md, table.csv, table.tex,\n"
                         "chart.png and index.html into the sweep directory. A run is identified by the hash of its\n"
                         "resolved config: finished runs are never trained again, an interrupted sweep resumes where\n"
                         "it stopped. Ctrl-C makes every run checkpoint and stop. Exit status 1 when a run failed.",
                         entries, &argc, &argv);
  if (st >= 0) goto out;
  if (argc != 2) {
    st = fail(EXIT_USAGE, "ablate", "expected one sweep file (see ratfw ablate --help)");
    goto out;
  }
  if (jobs < 1 || threads < 0) {
    st = fail(EXIT_USAGE, "ablate", "--jobs must be at least 1 and --threads at least 1");
    goto out;
  }
  char **only = split_only(only_opt);
  RatRegistry *reg = load_registry(TRUE, NULL);
  GError *e = NULL;
  RatSweep *s = rat_sweep_load(reg, argv[1], (const char *const *)sets, &e);
  if (!s) {
    st = fail_config("ablate", e);
    g_error_free(e);
  } else if (!check_only(s, only)) {
    st = EXIT_USAGE;
  } else {
    char *dir = rat_sweep_out_dir(s, out);
    char *exe = self_exe();
    RatAblateOptions opt = {.ratfw = exe, .jobs = (guint)jobs, .threads = threads ? threads : rat_get_num_threads(),
                            .only = only[0] ? (const char *const *)only : NULL, .stop = &stop_level, .log = stderr};
    if (dry_run) {
      rat_ablate_print_plan(stdout, s, dir, &opt);
      st = EXIT_OK;
    } else if (!exe) {
      st = fail(EXIT_RUN, "ablate", "cannot find the ratfw executable to run the sweep's runs with");
    } else {
      struct sigaction sa = {0};
      sa.sa_handler = on_stop;
      sigemptyset(&sa.sa_mask);
      sigaction(SIGINT, &sa, NULL);
      sigaction(SIGTERM, &sa, NULL);
      guint n_failed = 0;
      gboolean interrupted = FALSE;
      if (!rat_ablate_run(reg, s, dir, &opt, &n_failed, &interrupted, &e)) {
        st = fail(e->code == RAT_ERROR_CONFIG ? EXIT_USAGE : EXIT_RUN, "ablate", "%s", e->message);
        g_error_free(e);
      } else if (interrupted) {
        st = fail(EXIT_RUN, "ablate", "interrupted: run the same command again to continue (%s)", dir);
      } else if (n_failed) {
        st = fail(EXIT_RUN, "ablate", "%u run%s failed (see the table's 'Failed runs'): %s/table.md", n_failed,
                  n_failed == 1 ? "" : "s", dir);
      } else {
        printf("%s/table.md\n%s/index.html\n", dir, dir);
        st = EXIT_OK;
      }
    }
    g_free(exe);
    g_free(dir);
  }
  rat_sweep_free(s);
  rat_registry_free(reg);
  g_strfreev(only);
out:
  g_free(out);
  g_strfreev(only_opt);
  g_strfreev(sets);
  return st;
}
