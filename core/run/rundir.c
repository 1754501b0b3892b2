/* Run directories: resolved config, provenance, log, metrics.jsonl and the progress display a task reports to
 * (run.h). A completed run leaves a DONE file, which is how `requires:` knows an experiment's output exists. */
#include "config.h"

#include <ratfw/error.h>
#include <ratfw/run.h>

#include <errno.h>
#include <glib/gstdio.h>
#include <json-glib/json-glib.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

struct _RatProgress {
  char *what;
  gint64 total, done, start_done;
  gint64 t0, last_print;
  int last_decile;
  gboolean tty, drawn;
};

gboolean rat_run_is_complete(const char *dir) {
  char *p = g_build_filename(dir, "DONE", NULL);
  gboolean ok = g_file_test(p, G_FILE_TEST_EXISTS);
  g_free(p);
  return ok;
}

char *rat_run_default_dir(const RatExperiment *exp, const char *parent) {
  if (exp->out) return g_strdup(exp->out);
  char *rel = parent ? g_build_filename(parent, exp->name, NULL) : g_build_filename("runs", exp->name, NULL);
  char *abs = g_canonicalize_filename(rel, NULL);
  g_free(rel);
  return abs;
}

static char *git_revision(void) {
  char *out = NULL;
  int status = 0;
  const char *argv[] = {"git", "-C", RATFW_SRCDIR, "describe", "--always", "--dirty", "--abbrev=12", NULL};
  if (g_file_test(RATFW_SRCDIR "/.git", G_FILE_TEST_EXISTS) &&
      g_spawn_sync(NULL, (char **)argv, NULL, G_SPAWN_SEARCH_PATH | G_SPAWN_STDERR_TO_DEV_NULL, NULL, NULL, &out,
                   NULL, &status, NULL) &&
      status == 0 && out && *out) {
    g_strstrip(out);
    return out;
  }
  g_free(out);
  return g_strdup("unknown");
}

static gboolean write_provenance(RatRunContext *ctx, const char *command_line, GError **error) {
  JsonBuilder *b = json_builder_new();
  json_builder_begin_object(b);
  json_builder_set_member_name(b, "ratfw_version");
  json_builder_add_string_value(b, RATFW_VERSION);
  json_builder_set_member_name(b, "plugin_abi");
  json_builder_add_int_value(b, RAT_PLUGIN_ABI_VERSION);
  char *rev = git_revision();
  json_builder_set_member_name(b, "git_revision");
  json_builder_add_string_value(b, rev);
  g_free(rev);
  json_builder_set_member_name(b, "experiment");
  json_builder_add_string_value(b, ctx->exp->path);
  json_builder_set_member_name(b, "command_line");
  json_builder_add_string_value(b, command_line ? command_line : "");
  json_builder_set_member_name(b, "host");
  json_builder_add_string_value(b, g_get_host_name());
  json_builder_set_member_name(b, "threads");
  json_builder_add_int_value(b, ctx->threads);
  json_builder_set_member_name(b, "seed");
  json_builder_add_int_value(b, (gint64)ctx->seed);
  json_builder_set_member_name(b, "resume");
  json_builder_add_boolean_value(b, ctx->resume);
  GDateTime *t = g_date_time_new_now_utc();
  char *iso = g_date_time_format_iso8601(t);
  json_builder_set_member_name(b, "started");
  json_builder_add_string_value(b, iso);
  g_free(iso);
  g_date_time_unref(t);
  json_builder_set_member_name(b, "plugins");
  json_builder_begin_array(b);
  const GPtrArray *plugins = rat_registry_plugins(ctx->registry);
  for (guint i = 0; i < plugins->len; i++) {
    const RatPluginInfo *p = plugins->pdata[i];
    json_builder_begin_object(b);
    json_builder_set_member_name(b, "name");
    json_builder_add_string_value(b, p->name);
    json_builder_set_member_name(b, "version");
    json_builder_add_string_value(b, p->version);
    json_builder_set_member_name(b, "license");
    json_builder_add_string_value(b, p->license);
    json_builder_set_member_name(b, "path");
    json_builder_add_string_value(b, p->path);
    json_builder_end_object(b);
  }
  json_builder_end_array(b);
  json_builder_end_object(b);
  JsonGenerator *gen = json_generator_new();
  json_generator_set_pretty(gen, TRUE);
  JsonNode *root = json_builder_get_root(b);
  json_generator_set_root(gen, root);
  char *path = rat_run_path(ctx, "provenance.json");
  /* on resume keep the first provenance and add this one beside it */
  if (ctx->resume && g_file_test(path, G_FILE_TEST_EXISTS)) {
    g_free(path);
    path = rat_run_path(ctx, "provenance-resume.json");
  }
  gboolean ok = json_generator_to_file(gen, path, error);
  g_free(path);
  json_node_unref(root);
  g_object_unref(gen);
  g_object_unref(b);
  return ok;
}

static FILE *open_in_dir(RatRunContext *ctx, const char *name, const char *mode, GError **error) {
  char *path = rat_run_path(ctx, name);
  FILE *f = fopen(path, mode);
  if (!f)
    g_set_error(error, RAT_ERROR, RAT_ERROR_IO, "cannot open %s for writing: %s", path, g_strerror(errno));
  g_free(path);
  return f;
}

RatRunContext *rat_run_context_new(RatRegistry *reg, RatExperiment *exp, const char *dir, gboolean resume,
                                   const char *command_line, GError **error) {
  char *abs = g_canonicalize_filename(dir, NULL);
  char *marker = g_build_filename(abs, "resolved.yaml", NULL);
  gboolean exists = g_file_test(marker, G_FILE_TEST_EXISTS);
  g_free(marker);
  if (exists && !resume) {
    g_set_error(error, RAT_ERROR, RAT_ERROR_IO,
                "run directory %s holds a previous run: pass --resume to continue it or --out DIR for a new one", abs);
    g_free(abs);
    return NULL;
  }
  if (g_mkdir_with_parents(abs, 0755) != 0) {
    g_set_error(error, RAT_ERROR, RAT_ERROR_IO, "cannot create run directory %s: %s", abs, g_strerror(errno));
    g_free(abs);
    return NULL;
  }
  RatRunContext *ctx = g_new0(RatRunContext, 1);
  ctx->dir = abs;
  ctx->registry = reg;
  ctx->exp = exp;
  ctx->resume = resume && exists;
  ctx->seed = (guint64)exp->seed;
  ctx->threads = rat_get_num_threads();
  ctx->required = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, g_free);
  ctx->progress = g_new0(RatProgress, 1);
  /* a new run starts clean; a resumed one keeps its earlier DONE-less state */
  char *done = rat_run_path(ctx, "DONE");
  g_unlink(done);
  g_free(done);
  char *yaml = rat_experiment_resolved_yaml(reg, exp);
  char *rpath = rat_run_path(ctx, ctx->resume ? "resolved-resume.yaml" : "resolved.yaml");
  gboolean ok = g_file_set_contents(rpath, yaml, -1, error);
  g_free(rpath);
  g_free(yaml);
  if (ok) ok = write_provenance(ctx, command_line, error);
  if (ok) ok = (ctx->log = open_in_dir(ctx, "log.txt", "a", error)) != NULL;
  if (ok) ok = (ctx->metrics = open_in_dir(ctx, "metrics.jsonl", ctx->resume ? "a" : "w", error)) != NULL;
  if (!ok) {
    rat_run_context_free(ctx);
    return NULL;
  }
  ctx->progress->t0 = g_get_monotonic_time();
  return ctx;
}

RatRunContext *rat_run_context_new_console(const char *dir, const char *log_path, gboolean quiet) {
  RatRunContext *ctx = g_new0(RatRunContext, 1);
  ctx->dir = g_canonicalize_filename(dir ? dir : ".", NULL);
  ctx->threads = rat_get_num_threads();
  ctx->quiet = quiet;
  ctx->required = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, g_free);
  ctx->progress = g_new0(RatProgress, 1);
  ctx->progress->t0 = g_get_monotonic_time();
  if (log_path) {
    char *d = g_path_get_dirname(log_path);
    g_mkdir_with_parents(d, 0755);
    g_free(d);
    ctx->log = fopen(log_path, "a");
  }
  return ctx;
}

void rat_run_context_finish(RatRunContext *ctx, gboolean ok) {
  rat_run_progress_end(ctx);
  if (ctx->log) fflush(ctx->log);
  if (ctx->metrics) fflush(ctx->metrics);
  if (ok && !ctx->interrupted) {
    char *done = rat_run_path(ctx, "DONE");
    g_file_set_contents(done, "", 0, NULL);
    g_free(done);
  }
}

void rat_run_context_free(RatRunContext *ctx) {
  if (!ctx) return;
  if (ctx->log) fclose(ctx->log);
  if (ctx->metrics) fclose(ctx->metrics);
  if (ctx->progress) g_free(ctx->progress->what);
  g_free(ctx->progress);
  g_hash_table_unref(ctx->required);
  g_free(ctx->dir);
  g_free(ctx);
}

char *rat_run_path(RatRunContext *ctx, const char *name) { return g_build_filename(ctx->dir, name, NULL); }

const char *rat_run_required_dir(RatRunContext *ctx, const char *exp_path) {
  char *abs = g_canonicalize_filename(exp_path, NULL);
  const char *d = g_hash_table_lookup(ctx->required, abs);
  g_free(abs);
  return d;
}

gboolean rat_run_should_stop(RatRunContext *ctx) {
  if (ctx->stop && g_atomic_int_get(ctx->stop)) {
    ctx->interrupted = TRUE;
    return TRUE;
  }
  return FALSE;
}

static void clear_bar(RatRunContext *ctx) {
  if (ctx->progress && ctx->progress->tty && ctx->progress->drawn) {
    fputs("\r\033[K", stderr);
    ctx->progress->drawn = FALSE;
  }
}

void rat_run_log(RatRunContext *ctx, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  char *msg = g_strdup_vprintf(fmt, ap);
  va_end(ap);
  double t = ctx->progress ? (double)(g_get_monotonic_time() - ctx->progress->t0) / 1e6 : 0;
  if (ctx->log) {
    fprintf(ctx->log, "[%9.3f] %s\n", t, msg);
    fflush(ctx->log);
  }
  if (!ctx->quiet) {
    clear_bar(ctx);
    fprintf(stderr, "%s\n", msg);
  }
  g_free(msg);
}

void rat_run_metrics(RatRunContext *ctx, gint64 step, ...) {
  if (!ctx->metrics) return;
  GString *line = g_string_new(NULL);
  double t = (double)(g_get_monotonic_time() - ctx->progress->t0) / 1e6;
  g_string_append_printf(line, "{\"step\": %" G_GINT64_FORMAT ", \"time\": %.3f", step, t);
  va_list ap;
  va_start(ap, step);
  const char *name;
  while ((name = va_arg(ap, const char *))) {
    double v = va_arg(ap, double);
    char buf[G_ASCII_DTOSTR_BUF_SIZE];
    g_string_append_printf(line, ", \"%s\": ", name);
    if (isfinite(v)) g_string_append(line, g_ascii_formatd(buf, sizeof buf, "%.9g", v));
    else g_string_append(line, "null");
  }
  va_end(ap);
  g_string_append(line, "}\n");
  fputs(line->str, ctx->metrics);
  fflush(ctx->metrics);
  g_string_free(line, TRUE);
}

void rat_run_metrics_array(RatRunContext *ctx, gint64 step, guint n, const char *const *names, const double *values) {
  if (!ctx->metrics) return;
  GString *line = g_string_new(NULL);
  double t = (double)(g_get_monotonic_time() - ctx->progress->t0) / 1e6;
  g_string_append_printf(line, "{\"step\": %" G_GINT64_FORMAT ", \"time\": %.3f", step, t);
  for (guint i = 0; i < n; i++) {
    char buf[G_ASCII_DTOSTR_BUF_SIZE];
    g_string_append_printf(line, ", \"%s\": ", names[i]);
    if (isfinite(values[i])) g_string_append(line, g_ascii_formatd(buf, sizeof buf, "%.9g", values[i]));
    else g_string_append(line, "null");
  }
  g_string_append(line, "}\n");
  fputs(line->str, ctx->metrics);
  fflush(ctx->metrics);
  g_string_free(line, TRUE);
}

char *rat_progress_format(const char *what, gint64 done, gint64 total, double elapsed, int width) {
  double rate = elapsed > 0 ? (double)done / elapsed : 0;
  GString *s = g_string_new(what);
  if (width > 0 && total > 0) {
    int fill = (int)((double)width * (double)MIN(done, total) / (double)total);
    g_string_append(s, " [");
    for (int i = 0; i < width; i++) g_string_append_c(s, i < fill ? '#' : ' ');
    g_string_append_c(s, ']');
  }
  g_string_append_printf(s, " %" G_GINT64_FORMAT "/%" G_GINT64_FORMAT, done, total);
  if (width <= 0 && total > 0) g_string_append_printf(s, " (%d%%)", (int)(100.0 * (double)done / (double)total));
  if (rate >= 1e4) g_string_append_printf(s, " %.1fk/s", rate / 1e3);
  else g_string_append_printf(s, " %.3g/s", rate);
  if (rate > 0 && total > done) {
    gint64 eta = (gint64)((double)(total - done) / rate + 0.5);
    g_string_append_printf(s, " ETA %" G_GINT64_FORMAT ":%02d", eta / 60, (int)(eta % 60));
  } else if (total > 0 && done >= total) {
    g_string_append_printf(s, " in %.1fs", elapsed);
  }
  return g_string_free(s, FALSE);
}

void rat_run_progress_start(RatRunContext *ctx, const char *what, gint64 total, gint64 done) {
  RatProgress *p = ctx->progress;
  g_free(p->what);
  p->what = g_strdup(what);
  p->total = total;
  p->done = p->start_done = done;
  p->t0 = g_get_monotonic_time();
  p->last_print = 0;
  p->last_decile = total > 0 ? (int)(10 * done / total) : 0;
  p->tty = !ctx->quiet && isatty(STDERR_FILENO) && g_strcmp0(g_getenv("TERM"), "dumb") != 0;
  p->drawn = FALSE;
}

void rat_run_progress_update(RatRunContext *ctx, gint64 done) {
  RatProgress *p = ctx->progress;
  if (!p->what || ctx->quiet) return;
  p->done = done;
  gint64 now = g_get_monotonic_time();
  double elapsed = (double)(now - p->t0) / 1e6;
  if (p->tty) {
    if (now - p->last_print < 100000 && done < p->total) return;
    p->last_print = now;
    char *s = rat_progress_format(p->what, done - p->start_done, p->total - p->start_done, elapsed, 30);
    fprintf(stderr, "\r\033[K%s", s);
    fflush(stderr);
    p->drawn = TRUE;
    g_free(s);
  } else {
    int decile = p->total > 0 ? (int)(10 * done / p->total) : 0;
    if (decile == p->last_decile) return;
    p->last_decile = decile;
    char *s = rat_progress_format(p->what, done - p->start_done, p->total - p->start_done, elapsed, 0);
    fprintf(stderr, "%s\n", s);
    g_free(s);
  }
}

void rat_run_progress_end(RatRunContext *ctx) {
  RatProgress *p = ctx->progress;
  if (!p || !p->what) return;
  if (p->tty && p->drawn) {
    fputc('\n', stderr);
    p->drawn = FALSE;
  }
  g_clear_pointer(&p->what, g_free);
}
