/* ratfw run directories: what `ratfw run` gives a task (RatTaskIface in module.h): the directory with the
 * resolved config, provenance.json (version, git revision, plugin versions, host, threads, seed), log.txt,
 * metrics.jsonl, a progress bar (rate and ETA on a terminal, plain lines otherwise) and a stop flag. */
#pragma once

#include <ratfw/config.h>
#include <stdio.h>

G_BEGIN_DECLS

typedef struct _RatProgress RatProgress;

struct _RatRunContext {
  char *dir;              /* absolute path of the run directory */
  RatRegistry *registry;
  RatExperiment *exp;
  gboolean resume;        /* continue from the checkpoint in @dir if there is one */
  guint64 seed;
  int threads;
  volatile gint *stop;    /* non-zero once the user asked to stop (SIGINT); may be NULL */
  FILE *log;              /* log.txt (appended) */
  FILE *metrics;          /* metrics.jsonl (appended on resume) */
  RatProgress *progress;
  gboolean quiet;         /* no log lines on stderr */
  GHashTable *required;   /* absolute experiment path -> its run directory (runs of `requires:`) */
  gboolean interrupted;   /* a task returned after rat_run_should_stop() */
  gpointer reserved[4];
};

/* Creates (or, with @resume, reopens) @dir: fails with RAT_ERROR_IO when it exists and holds a previous run and
 * @resume is FALSE. Writes resolved.yaml and provenance.json; opens log.txt and metrics.jsonl. */
RatRunContext *rat_run_context_new(RatRegistry *reg, RatExperiment *exp, const char *dir, gboolean resume,
                                   const char *command_line, GError **error);
/* A context for a command that reports progress and log lines without being a run (ratfw eval): no resolved.yaml,
 * provenance or metrics; log lines go to stderr (unless @quiet) and are appended to @log_path when it is not NULL.
 * Free with rat_run_context_free. */
RatRunContext *rat_run_context_new_console(const char *dir, const char *log_path, gboolean quiet);
/* Closes the files; with @ok (and not interrupted) marks the run complete (a DONE file). */
void rat_run_context_finish(RatRunContext *ctx, gboolean ok);
void rat_run_context_free(RatRunContext *ctx);
/* TRUE when @dir holds a completed run (its DONE file exists). */
gboolean rat_run_is_complete(const char *dir);
/* The default run directory of an experiment: its `out:`, else runs/<name> under @parent (or the working dir). */
char *rat_run_default_dir(const RatExperiment *exp, const char *parent);

/* A line in log.txt (with elapsed time) and, unless quiet, on stderr. */
void rat_run_log(RatRunContext *ctx, const char *fmt, ...) G_GNUC_PRINTF(2, 3);
/* One metrics.jsonl line {"step": N, "time": seconds, name: value, ...}; pairs (const char *, double), NULL-ended. */
void rat_run_metrics(RatRunContext *ctx, gint64 step, ...) G_GNUC_NULL_TERMINATED;
/* The same line from arrays: @n names and values. */
void rat_run_metrics_array(RatRunContext *ctx, gint64 step, guint n, const char *const *names, const double *values);
/* A file inside the run directory (g_free). */
char *rat_run_path(RatRunContext *ctx, const char *name);
/* The run directory of a required experiment (NULL when @exp_path is not among `requires:`). */
const char *rat_run_required_dir(RatRunContext *ctx, const char *exp_path);

gboolean rat_run_should_stop(RatRunContext *ctx);

/* Progress: a bar with rate and ETA on a terminal (stderr), plain lines every 10% otherwise. */
void rat_run_progress_start(RatRunContext *ctx, const char *what, gint64 total, gint64 done);
void rat_run_progress_update(RatRunContext *ctx, gint64 done);
void rat_run_progress_end(RatRunContext *ctx);
/* The formatting behind it, for tests: "what [#####     ] 50/100 12.5/s ETA 0:04". */
char *rat_progress_format(const char *what, gint64 done, gint64 total, double elapsed, int width);

G_END_DECLS
