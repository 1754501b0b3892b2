/* ratfw ablate: a sweep of one experiment over named variants and seeds, run and evaluated into one directory,
 * summarised as a table (mean +- std over seeds, Welch's t-test against the baseline variant), a chart and an
 * offline report (docs/ablations.md). The planner, runner, statistics and writers live here so that other drivers
 * (MPI sweeps) can reuse them; tools/cmd-ablate.c is the command. */
#pragma once

#include <ratfw/config.h>
#include <stdio.h>

G_BEGIN_DECLS

/* ---- the sweep file -------------------------------------------------------------------------------------- */

typedef struct {
  char *name;
  RatConfigNode *node; /* its value in the sweep file: a list of KEY.PATH=VALUE, a mapping, or null */
} RatSweepVariant;

/* One (variant, seed): what `ratfw run` trains and `ratfw eval` evaluates. */
typedef struct {
  guint variant;        /* index into RatSweep.variants */
  gint64 seed;
  char *id;             /* sha256 (hex) of the training identity: the resolved experiment without eval:, out:
                         * and description: (rat_sweep_identity) */
  char *experiment;     /* that resolved experiment as YAML: the run directory's experiment.yaml */
  RatExperiment *exp;   /* the same, validated (no eval: section) */
  char *eval_id;        /* sha256 (hex) of the resolved eval: section (base's, merged with the sweep's) */
  char *eval_yaml;      /* that resolved section ("eval:\n  key: value\n...") */
  GPtrArray *eval_sets; /* "eval.KEY=VALUE" (char*), one per key of it, for `ratfw eval --set` */
  gint64 steps;         /* train.steps, 0 when the task has no such argument */
} RatSweepRun;

typedef struct {
  char *path;           /* absolute path of the sweep file */
  char *name;           /* its base name without .yaml */
  char *description;    /* or NULL */
  char *base;           /* absolute path of the base experiment */
  char *out;            /* `out:` (absolute) or NULL */
  RatConfigNode *root;  /* the sweep tree (includes applied) */
  RatConfigNode *common;/* `set:` (a list or a mapping) or NULL */
  GPtrArray *sets;      /* command-line overrides applied to every variant (char*) */
  GPtrArray *variants;  /* RatSweepVariant*, in file order */
  guint baseline;       /* index into variants */
  GArray *seeds;        /* gint64, in file order */
  GPtrArray *runs;      /* RatSweepRun*, seed-major: every variant of the first seed, then of the next */
} RatSweep;

/* TRUE when @path parses as a YAML mapping with a `variants:` key (a sweep rather than an experiment). */
gboolean rat_sweep_file_is_sweep(const char *path);
/* Loads a sweep and validates every (variant, seed) experiment with the sweep's eval: section against @reg. All
 * errors at once, one "file:line:column: variant 'NAME': message" line each. @sets (NULL-terminated, may be NULL)
 * are KEY.PATH=VALUE overrides applied to every variant after its own. */
RatSweep *rat_sweep_load(RatRegistry *reg, const char *path, const char *const *sets, GError **error);
void rat_sweep_free(RatSweep *sweep);
/* The training identity of an experiment: sha256 (hex) of its resolved config with the leading comment lines and
 * the eval:, out: and description: sections left out (none of them changes what is trained). */
char *rat_sweep_identity(RatRegistry *reg, const RatExperiment *exp);
/* Builds (and frees) the model of a run whose task is train_gan: the checks that need structural sizes. TRUE for
 * any other task. */
gboolean rat_sweep_check_build(RatRegistry *reg, const RatSweepRun *run, GError **error);
/* The sweep directory: @out if given, else the sweep's out:, else runs/NAME in the working directory. */
char *rat_sweep_out_dir(const RatSweep *sweep, const char *out);
/* A run's directory: OUT/runs/<first 16 hex digits of its id>. */
char *rat_sweep_run_dir(const char *out, const RatSweepRun *run);
/* The variant index of @name, or -1. */
int rat_sweep_variant_index(const RatSweep *sweep, const char *name);

/* ---- what the sweep directory holds ----------------------------------------------------------------------- */

typedef enum {
  RAT_ABLATE_TODO = 0, /* not started */
  RAT_ABLATE_PARTIAL,  /* started, no DONE: continues with ratfw run --resume */
  RAT_ABLATE_TRAINED,  /* DONE */
  RAT_ABLATE_FAILED,   /* its last attempt failed (the next ablate resumes it) */
} RatAblateTrain;

typedef enum {
  RAT_ABLATE_EVAL_TODO = 0,
  RAT_ABLATE_EVAL_DONE,   /* results for this eval protocol exist */
  RAT_ABLATE_EVAL_FAILED, /* the last evaluation with this protocol failed */
} RatAblateEval;

/* The state of one run as found on disk. */
typedef struct {
  char *dir;
  RatAblateTrain train;
  RatAblateEval eval;
  gint64 step;            /* last step in metrics.jsonl (0 if none) */
  gint64 steps;           /* steps of the run (RatSweepRun.steps) */
  double train_seconds;   /* wall time spent training so far (ablate's record, else metrics.jsonl) */
  double step_seconds;    /* measured wall seconds per step (metrics.jsonl), 0 when unknown */
  double eval_seconds;    /* results.json wall_seconds, 0 when not evaluated */
  double train_cpu_seconds, eval_cpu_seconds; /* user + system time of those children (ablate's record), 0 unknown */
  char *error;            /* FAILED: the stage and the last lines of its log */
  char *results_path;     /* RUN/eval/ablate-<eval id>.json when evaluated, else NULL */
} RatAblateState;

RatAblateState *rat_ablate_state_read(const RatSweep *sweep, guint run, const char *out);
void rat_ablate_state_free(RatAblateState *st);

/* ---- planning and running ---------------------------------------------------------------------------------- */

typedef struct {
  const char *ratfw;        /* the ratfw executable the runs execute */
  guint jobs;               /* runs at once (>= 1) */
  int threads;              /* threads in all, split between the jobs (>= 1) */
  const char *const *only;  /* variant names to run (NULL-terminated), or NULL for all */
  volatile gint *stop;      /* set (to 1, then 2) by the caller's SIGINT handler; may be NULL */
  FILE *log;                /* progress lines (stderr), or NULL */
  gpointer reserved[4];
} RatAblateOptions;

/* Prints the plan: every run with its state, what is left to do and an estimated time from the step times and
 * evaluation wall times of finished runs. */
void rat_ablate_print_plan(FILE *f, const RatSweep *sweep, const char *out, const RatAblateOptions *opt);
/* Runs what is left: first the required experiments (`requires:`) once, then each (variant, seed) as
 * `ratfw run EXP --out RUN --threads K --quiet` (--resume for a partial run) followed by `ratfw eval RUN ...`, up
 * to @opt->jobs at once. A run that fails is recorded (RUN/ablate.json) and the others go on. On *stop the
 * children are asked to checkpoint and stop (SIGINT) and the call returns once they have. Then writes the table,
 * chart and report (rat_ablate_report). FALSE with @error only when the sweep cannot run at all (directory,
 * lock, a required experiment that failed); @n_failed counts failed runs, @interrupted says *stop was set. */
gboolean rat_ablate_run(RatRegistry *reg, const RatSweep *sweep, const char *out, const RatAblateOptions *opt,
                        guint *n_failed, gboolean *interrupted, GError **error);

/* ---- results, statistics and writers ----------------------------------------------------------------------- */

/* One run's outcome, as the writers read it. */
typedef struct {
  guint variant;          /* index into RatAblateResults.variants */
  gint64 seed;
  char *run;              /* the run directory's name (16 hex digits) or NULL */
  char *state;            /* "done", "failed", "not evaluated", "to do", "partial" */
  char *error;            /* why it failed, or NULL */
  GHashTable *metrics;    /* name (char*) -> value (double*) from results.json, NULL when not evaluated */
  double train_seconds, eval_seconds;
  double train_cpu_seconds, eval_cpu_seconds; /* 0 when unknown */
  gint64 steps;
  char *protocol_hash;    /* results.json protocol_hash, or NULL */
  char *samples_png, *losses_png; /* absolute paths of the run's last sample grid and loss curve, or NULL */
} RatAblateRecord;

typedef struct {
  char *title;                /* the sweep's name */
  char *description;          /* or NULL */
  GPtrArray *variants;        /* char*: names in sweep order */
  guint baseline;
  GPtrArray *metrics;         /* char*: metric names, in order of first appearance */
  GHashTable *higher_is_better; /* name -> GINT_TO_POINTER(1) when higher is better, (2) when lower is */
  GPtrArray *records;         /* RatAblateRecord* */
  /* the protocol, for the report (each may be NULL) */
  char *sweep_path, *base_path, *base_yaml, *common_yaml, *eval_yaml, *seeds, *ratfw_version, *git_revision;
  GPtrArray *variant_yaml;    /* char*: each variant's overrides as written, parallel to variants */
  GArray *steps;              /* gint64: train.steps per variant, parallel to variants (0 when unknown) */
} RatAblateResults;

RatAblateResults *rat_ablate_results_new(const char *title, guint baseline);
void rat_ablate_results_free(RatAblateResults *r);
/* Adds a variant name; returns its index. */
guint rat_ablate_results_add_variant(RatAblateResults *r, const char *name);
/* Adds a record (taken); its metrics' names join r->metrics. */
void rat_ablate_results_add(RatAblateResults *r, RatAblateRecord *rec, GHashTable *higher_is_better);
RatAblateRecord *rat_ablate_record_new(guint variant, gint64 seed, const char *state);
void rat_ablate_record_set_metric(RatAblateRecord *rec, const char *name, double value);
/* The results of a sweep directory as the runs left them. */
RatAblateResults *rat_ablate_results_collect(const RatSweep *sweep, const char *out);

/* The statistics of one (variant, metric) over its evaluated seeds. */
typedef struct {
  guint n;                /* evaluated seeds */
  double mean, std;       /* std: sample standard deviation (n - 1), NAN with n < 2 */
  double delta;           /* mean - baseline mean (NAN when either has no value) */
  double t, df, p;        /* Welch's t-test against the baseline: NAN with fewer than 2 seeds on either side, or
                           * both sides without spread */
  gboolean best;          /* the best mean of this metric (ties all marked) */
} RatAblateSummary;

/* Summaries of variant @v, metric @m (index into r->metrics). */
RatAblateSummary rat_ablate_summary(const RatAblateResults *r, guint v, guint m);

/* Writers: the table as Markdown, CSV (one row per variant and metric) and LaTeX (a table environment). */
char *rat_ablate_table_md(const RatAblateResults *r);
char *rat_ablate_table_csv(const RatAblateResults *r);
char *rat_ablate_table_tex(const RatAblateResults *r);
/* chart.png: one panel per metric, each variant's mean with a +-std error bar over its seeds (cairo). */
gboolean rat_ablate_chart(const RatAblateResults *r, const char *path, GError **error);
/* index.html: the table, the chart, each variant's sample grids and loss curves (copied into DIR/report/) and the
 * protocol; self-contained within DIR, no network. */
gboolean rat_ablate_html(const RatAblateResults *r, const char *dir, GError **error);
/* All of them into @dir: table.md, table.csv, table.tex, chart.png, index.html (atomically each). */
gboolean rat_ablate_report(const RatAblateResults *r, const char *dir, GError **error);

/* ---- statistics ------------------------------------------------------------------------------------------ */

double rat_stats_mean(const double *x, guint n);
/* Sample standard deviation (divisor n - 1); NAN for n < 2. */
double rat_stats_std(const double *x, guint n);
/* The regularised incomplete beta function I_x(a, b) (a, b > 0, 0 <= x <= 1). */
double rat_stats_betainc(double a, double b, double x);
/* Welch's unequal-variance t-test of mean(a) = mean(b), two-sided: t, the Welch-Satterthwaite degrees of freedom
 * and p = I_{df/(df+t^2)}(df/2, 1/2). FALSE (outputs NAN) with fewer than 2 values on either side or zero
 * standard error. */
gboolean rat_stats_welch(const double *a, guint na, const double *b, guint nb, double *t, double *df, double *p);

G_END_DECLS
