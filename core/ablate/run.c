/* The sweep runner: the state of each run read from its directory, the plan with an estimated time, and the
 * execution of what is left as child processes (`ratfw run` then `ratfw eval`), several at once, each failure
 * recorded without stopping the others, Ctrl-C passed on so that every child checkpoints (docs/ablations.md).
 * Files of a run directory OUT/runs/<id>: experiment.yaml (written here), what `ratfw run` writes, ablate.json
 * (wall times, attempts, the last failure), ablate-train.log / ablate-eval.log (the children's output) and
 * eval/ablate-<eval id>.json (a copy of eval/results.json per evaluation protocol). */
#include "config.h"

#include <ratfw/ablate.h>
#include <ratfw/error.h>
#include <ratfw/io.h>
#include <ratfw/run.h>

#include <errno.h>
#include <fcntl.h>
#include <glib/gstdio.h>
#include <json-glib/json-glib.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/file.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>
#ifdef __linux__
#include <sys/prctl.h>
#endif

/* ---- small file helpers -------------------------------------------------------------------------------------- */

static char *path_in(const char *dir, const char *name) { return g_build_filename(dir, name, NULL); }

static gboolean exists_in(const char *dir, const char *name) {
  char *p = path_in(dir, name);
  gboolean ok = g_file_test(p, G_FILE_TEST_EXISTS);
  g_free(p);
  return ok;
}

static JsonObject *read_json_object(const char *path) {
  JsonParser *p = json_parser_new();
  JsonObject *o = NULL;
  if (json_parser_load_from_file(p, path, NULL)) {
    JsonNode *root = json_parser_get_root(p);
    if (root && JSON_NODE_HOLDS_OBJECT(root)) o = json_object_ref(json_node_get_object(root));
  }
  g_object_unref(p);
  return o;
}

static gboolean write_json_object(const char *path, JsonObject *o, GError **error) {
  JsonNode *root = json_node_new(JSON_NODE_OBJECT);
  json_node_set_object(root, o);
  JsonGenerator *gen = json_generator_new();
  json_generator_set_pretty(gen, TRUE);
  json_generator_set_root(gen, root);
  gsize len = 0;
  char *text = json_generator_to_data(gen, &len);
  gboolean ok = rat_file_write_atomic(path, text, len, error);
  g_free(text);
  g_object_unref(gen);
  json_node_unref(root);
  return ok;
}

static double member_double(JsonObject *o, const char *name, double dflt) {
  JsonNode *n = o ? json_object_get_member(o, name) : NULL;
  if (!n || !JSON_NODE_HOLDS_VALUE(n)) return dflt;
  GType t = json_node_get_value_type(n);
  if (t == G_TYPE_DOUBLE || t == G_TYPE_INT64) return json_node_get_double(n);
  return dflt;
}

static const char *member_string(JsonObject *o, const char *name) {
  JsonNode *n = o ? json_object_get_member(o, name) : NULL;
  return n && JSON_NODE_HOLDS_VALUE(n) && json_node_get_value_type(n) == G_TYPE_STRING ? json_node_get_string(n)
                                                                                     : NULL;
}

static char *eval_copy_name(const RatSweepRun *run) {
  return g_strdup_printf("eval/ablate-%.16s.json", run->eval_id);
}

/* metrics.jsonl: the last step, and the wall seconds per step over each process's stretch of lines (the "time"
 * of a line counts from that process's start, so a resumed run starts a new stretch). */
static void read_metrics(const char *dir, gint64 *last_step, double *step_seconds, double *total_seconds) {
  *last_step = 0;
  *step_seconds = *total_seconds = 0;
  char *path = path_in(dir, "metrics.jsonl");
  char *text = NULL;
  if (!g_file_get_contents(path, &text, NULL, NULL)) {
    g_free(path);
    return;
  }
  g_free(path);
  double dt = 0, seg_t0 = -1, prev_t = -1, seg_end = 0;
  gint64 dsteps = 0, seg_s0 = 0, prev_s = 0;
  char **lines = g_strsplit(text, "\n", -1);
  JsonParser *parser = json_parser_new();
  for (guint i = 0; lines[i]; i++) {
    if (!*lines[i] || !json_parser_load_from_data(parser, lines[i], -1, NULL)) continue;
    JsonNode *root = json_parser_get_root(parser);
    if (!root || !JSON_NODE_HOLDS_OBJECT(root)) continue;
    JsonObject *o = json_node_get_object(root);
    double t = member_double(o, "time", -1), s = member_double(o, "step", -1);
    if (t < 0 || s < 0) continue;
    if (seg_t0 < 0 || t < prev_t) { /* a new process */
      if (seg_t0 >= 0) {
        dt += prev_t - seg_t0;
        dsteps += prev_s - seg_s0;
        seg_end += prev_t;
      }
      seg_t0 = t;
      seg_s0 = (gint64)s;
    }
    prev_t = t;
    prev_s = (gint64)s;
    *last_step = (gint64)s;
  }
  if (seg_t0 >= 0) {
    dt += prev_t - seg_t0;
    dsteps += prev_s - seg_s0;
    seg_end += prev_t;
  }
  g_object_unref(parser);
  g_strfreev(lines);
  g_free(text);
  if (dsteps > 0) *step_seconds = dt / (double)dsteps;
  *total_seconds = seg_end;
}

/* ---- the state of a run ---------------------------------------------------------------------------------------- */

void rat_ablate_state_free(RatAblateState *st) {
  if (!st) return;
  g_free(st->dir);
  g_free(st->error);
  g_free(st->results_path);
  g_free(st);
}

RatAblateState *rat_ablate_state_read(const RatSweep *sweep, guint i, const char *out) {
  const RatSweepRun *run = sweep->runs->pdata[i];
  RatAblateState *st = g_new0(RatAblateState, 1);
  st->dir = rat_sweep_run_dir(out, run);
  st->steps = run->steps;
  char *rec_path = path_in(st->dir, "ablate.json");
  JsonObject *rec = read_json_object(rec_path);
  g_free(rec_path);
  JsonObject *failed = rec && json_object_has_member(rec, "failed") &&
                               JSON_NODE_HOLDS_OBJECT(json_object_get_member(rec, "failed"))
                           ? json_object_get_object_member(rec, "failed")
                           : NULL;
  const char *fstage = member_string(failed, "stage");
  double metrics_total = 0;
  read_metrics(st->dir, &st->step, &st->step_seconds, &metrics_total);
  st->train_seconds = member_double(rec, "train_seconds", metrics_total);
  st->train_cpu_seconds = member_double(rec, "train_cpu_seconds", 0);
  st->eval_cpu_seconds = member_double(rec, "eval_cpu_seconds", 0);
  if (rat_run_is_complete(st->dir)) {
    st->train = RAT_ABLATE_TRAINED;
    if (st->steps > 0) st->step = st->steps;
  } else if (fstage && !strcmp(fstage, "train")) {
    st->train = RAT_ABLATE_FAILED;
  } else if (exists_in(st->dir, "resolved.yaml")) {
    st->train = RAT_ABLATE_PARTIAL;
  }
  if (st->train == RAT_ABLATE_TRAINED) {
    char *copy = eval_copy_name(run);
    char *p = path_in(st->dir, copy);
    g_free(copy);
    JsonObject *res = read_json_object(p);
    if (res) {
      st->eval = RAT_ABLATE_EVAL_DONE;
      st->results_path = p;
      st->eval_seconds = member_double(res, "wall_seconds", member_double(rec, "eval_seconds", 0));
      json_object_unref(res);
    } else {
      g_free(p);
      const char *fid = member_string(failed, "eval_id");
      if (fstage && !strcmp(fstage, "eval") && fid && !strcmp(fid, run->eval_id)) st->eval = RAT_ABLATE_EVAL_FAILED;
    }
  }
  if (st->train == RAT_ABLATE_FAILED || st->eval == RAT_ABLATE_EVAL_FAILED)
    st->error = g_strdup_printf("%s: %s", fstage, member_string(failed, "error") ? member_string(failed, "error") : "?");
  if (rec) json_object_unref(rec);
  return st;
}

/* ---- the plan ------------------------------------------------------------------------------------------------- */

static gboolean selected(const RatSweep *s, const RatSweepRun *run, const RatAblateOptions *opt) {
  if (!opt || !opt->only) return TRUE;
  const char *name = ((RatSweepVariant *)s->variants->pdata[run->variant])->name;
  for (guint i = 0; opt->only[i]; i++)
    if (!strcmp(opt->only[i], name)) return TRUE;
  return FALSE;
}

static char *human_seconds(double s) {
  if (!(s >= 0) || !isfinite(s)) return g_strdup("?");
  gint64 t = (gint64)(s + 0.5);
  if (t < 60) return g_strdup_printf("%" G_GINT64_FORMAT " s", t);
  if (t < 3600) return g_strdup_printf("%" G_GINT64_FORMAT " min %02" G_GINT64_FORMAT " s", t / 60, t % 60);
  return g_strdup_printf("%" G_GINT64_FORMAT " h %02" G_GINT64_FORMAT " min", t / 3600, (t % 3600) / 60);
}

/* Estimates from finished runs: training seconds per step (whole wall time, start-up included) and evaluation
 * seconds, per variant when that variant has a finished run, else over all finished runs. */
typedef struct {
  double *train_per_step, *eval_s; /* per variant; <= 0 unknown */
  double all_train_per_step, all_eval_s;
  guint n_train, n_eval;
} Estimates;

static void estimates_init(Estimates *e, const RatSweep *s, RatAblateState **st) {
  guint nv = s->variants->len;
  e->train_per_step = g_new0(double, nv);
  e->eval_s = g_new0(double, nv);
  double *ts = g_new0(double, nv), *es = g_new0(double, nv);
  guint *tn = g_new0(guint, nv), *en = g_new0(guint, nv);
  double ats = 0, aes = 0;
  e->n_train = e->n_eval = 0;
  for (guint i = 0; i < s->runs->len; i++) {
    const RatSweepRun *run = s->runs->pdata[i];
    if (st[i]->train == RAT_ABLATE_TRAINED && st[i]->train_seconds > 0 && run->steps > 0) {
      double v = st[i]->train_seconds / (double)run->steps;
      ts[run->variant] += v;
      tn[run->variant]++;
      ats += v;
      e->n_train++;
    }
    if (st[i]->eval == RAT_ABLATE_EVAL_DONE && st[i]->eval_seconds > 0) {
      es[run->variant] += st[i]->eval_seconds;
      en[run->variant]++;
      aes += st[i]->eval_seconds;
      e->n_eval++;
    }
  }
  e->all_train_per_step = e->n_train ? ats / e->n_train : 0;
  e->all_eval_s = e->n_eval ? aes / e->n_eval : 0;
  for (guint v = 0; v < nv; v++) {
    e->train_per_step[v] = tn[v] ? ts[v] / tn[v] : e->all_train_per_step;
    e->eval_s[v] = en[v] ? es[v] / en[v] : e->all_eval_s;
  }
  g_free(ts);
  g_free(es);
  g_free(tn);
  g_free(en);
}

static void estimates_clear(Estimates *e) {
  g_free(e->train_per_step);
  g_free(e->eval_s);
}

static const char *train_word(RatAblateTrain t) {
  static const char *const w[] = {"to do", "partial", "done", "failed"};
  return w[t];
}

void rat_ablate_print_plan(FILE *f, const RatSweep *s, const char *out, const RatAblateOptions *opt) {
  guint n = s->runs->len;
  RatAblateState **st = g_new0(RatAblateState *, n);
  for (guint i = 0; i < n; i++) st[i] = rat_ablate_state_read(s, i, out);
  Estimates est;
  estimates_init(&est, s, st);
  fprintf(f, "sweep %s\n  base %s\n  %u variants x %u seeds = %u runs (baseline: %s), into %s\n", s->path, s->base,
          s->variants->len, s->seeds->len, n, ((RatSweepVariant *)s->variants->pdata[s->baseline])->name, out);
  fprintf(f, "\n%-20s %6s  %-16s %8s  %-26s %s\n", "variant", "seed", "run", "steps", "training", "evaluation");
  guint todo_train = 0, todo_eval = 0, partial = 0, unknown = 0;
  double left = 0;
  GHashTable *seen = g_hash_table_new(g_str_hash, g_str_equal);
  for (guint i = 0; i < n; i++) {
    const RatSweepRun *run = s->runs->pdata[i];
    const char *vname = ((RatSweepVariant *)s->variants->pdata[run->variant])->name;
    gboolean sel = selected(s, run, opt), dup = g_hash_table_contains(seen, run->id);
    g_hash_table_add(seen, run->id);
    char *tw;
    if (st[i]->train == RAT_ABLATE_PARTIAL || (st[i]->train == RAT_ABLATE_FAILED && st[i]->step > 0))
      tw = g_strdup_printf("%s (step %" G_GINT64_FORMAT ")", train_word(st[i]->train), st[i]->step);
    else if (st[i]->train == RAT_ABLATE_TRAINED) {
      char *h = human_seconds(st[i]->train_seconds);
      tw = g_strdup_printf("done (%s)", h);
      g_free(h);
    } else tw = g_strdup(train_word(st[i]->train));
    const char *ew = st[i]->eval == RAT_ABLATE_EVAL_DONE ? "done" : st[i]->eval == RAT_ABLATE_EVAL_FAILED ? "failed" : "to do";
    fprintf(f, "%-20s %6" G_GINT64_FORMAT "  %.16s %8" G_GINT64_FORMAT "  %-26s %s%s%s\n", vname, run->seed, run->id,
            run->steps, tw, ew, !sel ? "  (not selected by --only)" : "", dup ? "  (same run as above)" : "");
    if (st[i]->error) {
      char *one = g_strdup(st[i]->error);
      g_strdelimit(one, "\n", ' ');
      fprintf(f, "%29s last failure: %.200s\n", "", one);
      g_free(one);
    }
    g_free(tw);
    if (!sel || dup) continue;
    if (st[i]->train != RAT_ABLATE_TRAINED) {
      todo_train++;
      if (st[i]->step > 0) partial++;
      double per = est.train_per_step[run->variant];
      gint64 remaining = run->steps - st[i]->step;
      if (per > 0 && run->steps > 0) left += per * (double)MAX(remaining, 0);
      else unknown++;
    }
    if (st[i]->eval != RAT_ABLATE_EVAL_DONE) {
      todo_eval++;
      if (est.eval_s[run->variant] > 0) left += est.eval_s[run->variant];
      else unknown++;
    }
  }
  g_hash_table_unref(seen);
  guint jobs = opt && opt->jobs ? opt->jobs : 1;
  fprintf(f, "\nto do: %u trainings (%u of them resumed), %u evaluations\n", todo_train, partial, todo_eval);
  if (todo_train + todo_eval == 0) {
    fprintf(f, "estimated time: nothing left to run\n");
  } else if (est.n_train == 0 && est.n_eval == 0) {
    fprintf(f, "estimated time: unknown (no run has finished yet; the estimate comes from finished runs' "
               "metrics.jsonl and results.json)\n");
  } else {
    char *h = human_seconds(left / jobs);
    fprintf(f, "estimated time: %s with --jobs %u (from %u finished trainings, %.3g s per step on average, and %u "
               "evaluations, %.3g s each; assumes the same jobs and threads as those runs)%s\n",
            h, jobs, est.n_train, est.all_train_per_step, est.n_eval, est.all_eval_s,
            unknown ? "; some stages have no measurement yet and are not counted" : "");
    g_free(h);
  }
  estimates_clear(&est);
  for (guint i = 0; i < n; i++) rat_ablate_state_free(st[i]);
  g_free(st);
}

/* ---- child processes ------------------------------------------------------------------------------------------- */

typedef enum { STAGE_TRAIN, STAGE_EVAL, STAGE_REQUIRE } Stage;

typedef struct {
  guint run;           /* index into sweep->runs (unused for STAGE_REQUIRE) */
  Stage stage;
  GPid pid;
  gint64 t0;           /* monotonic microseconds */
  char *log;           /* the child's output */
  int signalled;       /* SIGINTs passed on */
  int threads;
  double cpu;          /* user + system seconds of the child, once it ended */
  char *label;
} Job;

static void job_free(Job *j) {
  g_free(j->log);
  g_free(j->label);
  g_free(j);
}

/* The sweep directory's lock (lock_out), held by rat_ablate_run and handed to every child as its descriptor 3: a
 * flock belongs to the open file, so the lock stays taken until the sweep AND all its children have ended. A sweep
 * killed outright (kill -9) leaves its children to checkpoint and stop; the next ratfw ablate waits for them
 * instead of training the same run directory twice at once. */
static int sweep_lock_fd = -1;
static pid_t sweep_pid;

static void child_setup(gpointer user_data) {
  /* its own process group, so that the terminal's Ctrl-C reaches the sweep alone, which passes it on once */
  setpgid(0, 0);
#ifdef __linux__
  /* a sweep killed outright still lets its children checkpoint and stop */
  prctl(PR_SET_PDEATHSIG, SIGINT);
  /* ... also when it died between the fork and the prctl */
  if (getppid() != sweep_pid) _exit(128 + SIGINT);
#endif
}

static gboolean spawn_child(GPtrArray *argv, const char *log, GPid *pid, GError **error) {
  int fd = open(log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (fd < 0) {
    g_set_error(error, RAT_ERROR, RAT_ERROR_IO, "cannot open %s: %s", log, g_strerror(errno));
    return FALSE;
  }
  char *line = g_strjoinv(" ", (char **)argv->pdata);
  GDateTime *now = g_date_time_new_now_local();
  char *when = g_date_time_format(now, "%Y-%m-%d %H:%M:%S");
  char *head = g_strdup_printf("==== %s: %s\n", when, line);
  if (write(fd, head, strlen(head)) < 0) { /* the log is a convenience */
  }
  g_free(head);
  g_free(when);
  g_date_time_unref(now);
  g_free(line);
  int devnull = open("/dev/null", O_RDONLY | O_CLOEXEC);
  sweep_pid = getpid();
#if GLIB_CHECK_VERSION(2, 68, 0)
  const int lock_src[1] = {sweep_lock_fd}, lock_dst[1] = {3};
  gboolean ok = g_spawn_async_with_pipes_and_fds(NULL, (const char *const *)argv->pdata, NULL,
                                                 G_SPAWN_DO_NOT_REAP_CHILD, child_setup, NULL, devnull, fd, fd,
                                                 lock_src, lock_dst, sweep_lock_fd >= 0 ? 1 : 0, pid, NULL, NULL,
                                                 NULL, error);
#else /* the children do not hold the lock: the next sweep does not wait for the children of a killed one */
  gboolean ok = g_spawn_async_with_fds(NULL, (char **)argv->pdata, NULL, G_SPAWN_DO_NOT_REAP_CHILD, child_setup, NULL,
                                       pid, devnull, fd, fd, error);
#endif
  if (devnull >= 0) close(devnull);
  close(fd);
  return ok;
}

/* The last @n non-empty lines of a child's log (after its last "====" header). */
static char *log_tail(const char *path, guint n) {
  char *text = NULL;
  if (!g_file_get_contents(path, &text, NULL, NULL)) return g_strdup("");
  char *start = text, *h;
  while ((h = strstr(start, "==== ")) && (h == text || h[-1] == '\n')) {
    char *nl = strchr(h, '\n');
    if (!nl) break;
    start = nl + 1;
  }
  char **lines = g_strsplit(start, "\n", -1);
  GPtrArray *keep = g_ptr_array_new();
  for (guint i = 0; lines[i]; i++)
    if (*g_strstrip(lines[i])) g_ptr_array_add(keep, lines[i]);
  guint from = keep->len > n ? keep->len - n : 0;
  GString *out = g_string_new(NULL);
  for (guint i = from; i < keep->len; i++) {
    if (out->len) g_string_append_c(out, '\n');
    g_string_append(out, keep->pdata[i]);
  }
  g_ptr_array_free(keep, TRUE);
  g_strfreev(lines);
  g_free(text);
  return g_string_free(out, FALSE);
}

static char *exit_text(int status) {
  if (WIFEXITED(status)) return g_strdup_printf("exit status %d", WEXITSTATUS(status));
  if (WIFSIGNALED(status)) return g_strdup_printf("killed by signal %d (%s)", WTERMSIG(status), g_strsignal(WTERMSIG(status)));
  return g_strdup("ended abnormally");
}

/* ---- the record of a run (ablate.json) ------------------------------------------------------------------------ */

static JsonObject *record_open(const char *dir, const RatSweep *s, const RatSweepRun *run) {
  char *p = path_in(dir, "ablate.json");
  JsonObject *o = read_json_object(p);
  g_free(p);
  if (!o) o = json_object_new();
  json_object_set_string_member(o, "id", run->id);
  json_object_set_string_member(o, "variant", ((RatSweepVariant *)s->variants->pdata[run->variant])->name);
  json_object_set_int_member(o, "seed", run->seed);
  json_object_set_string_member(o, "sweep", s->path);
  return o;
}

static void record_save(const char *dir, JsonObject *o, FILE *log) {
  char *p = path_in(dir, "ablate.json");
  GError *e = NULL;
  if (!write_json_object(p, o, &e)) {
    if (log) fprintf(log, "ratfw ablate: warning: %s\n", e->message);
    g_error_free(e);
  }
  g_free(p);
}

static void record_failure(JsonObject *o, const char *stage, const char *error, const char *eval_id) {
  JsonObject *f = json_object_new();
  json_object_set_string_member(f, "stage", stage);
  json_object_set_string_member(f, "error", error);
  if (eval_id) json_object_set_string_member(f, "eval_id", eval_id);
  GDateTime *now = g_date_time_new_now_utc();
  char *iso = g_date_time_format_iso8601(now);
  json_object_set_string_member(f, "time", iso);
  g_free(iso);
  g_date_time_unref(now);
  json_object_set_object_member(o, "failed", f);
}

/* ---- running --------------------------------------------------------------------------------------------------- */

typedef struct {
  RatRegistry *reg;
  const RatSweep *s;
  const char *out;
  const RatAblateOptions *opt;
  FILE *log;
  GPtrArray *active;     /* Job* */
  gboolean interrupted;
} Runner;

static gboolean stopping(Runner *r) { return r->opt->stop && g_atomic_int_get(r->opt->stop) > 0; }

static void say(Runner *r, const char *fmt, ...) G_GNUC_PRINTF(2, 3);
static void say(Runner *r, const char *fmt, ...) {
  if (!r->log) return;
  va_list ap;
  va_start(ap, fmt);
  char *msg = g_strdup_vprintf(fmt, ap);
  va_end(ap);
  GDateTime *now = g_date_time_new_now_local();
  char *when = g_date_time_format(now, "%H:%M:%S");
  fprintf(r->log, "[%s] %s\n", when, msg);
  fflush(r->log);
  g_free(when);
  g_date_time_unref(now);
  g_free(msg);
}

static int threads_each(Runner *r, guint runs_left) {
  guint jobs = MIN(r->opt->jobs, MAX(runs_left, 1u));
  return MAX(1, r->opt->threads / (int)jobs);
}

static GPtrArray *argv_new(const char *ratfw, const char *cmd) {
  GPtrArray *a = g_ptr_array_new_with_free_func(g_free);
  g_ptr_array_add(a, g_strdup(ratfw));
  g_ptr_array_add(a, g_strdup(cmd));
  return a;
}

static gboolean start_train(Runner *r, guint i, int threads, GError **error) {
  const RatSweepRun *run = r->s->runs->pdata[i];
  char *dir = rat_sweep_run_dir(r->out, run);
  if (g_mkdir_with_parents(dir, 0755) != 0) {
    g_set_error(error, RAT_ERROR, RAT_ERROR_IO, "cannot create %s: %s", dir, g_strerror(errno));
    g_free(dir);
    return FALSE;
  }
  char *exp_path = path_in(dir, "experiment.yaml");
  gboolean ok = rat_file_write_atomic(exp_path, run->experiment, strlen(run->experiment), error);
  gboolean resume = exists_in(dir, "resolved.yaml");
  Job *j = g_new0(Job, 1);
  j->run = i;
  j->stage = STAGE_TRAIN;
  j->threads = threads;
  j->log = path_in(dir, "ablate-train.log");
  j->label = g_strdup_printf("%s seed %" G_GINT64_FORMAT, ((RatSweepVariant *)r->s->variants->pdata[run->variant])->name,
                             run->seed);
  GPtrArray *a = argv_new(r->opt->ratfw, "run");
  g_ptr_array_add(a, g_strdup(exp_path));
  g_ptr_array_add(a, g_strdup("--out"));
  g_ptr_array_add(a, g_strdup(dir));
  g_ptr_array_add(a, g_strdup_printf("--threads=%d", threads));
  g_ptr_array_add(a, g_strdup("--quiet"));
  if (resume) g_ptr_array_add(a, g_strdup("--resume"));
  g_ptr_array_add(a, NULL);
  if (ok) ok = spawn_child(a, j->log, &j->pid, error);
  g_ptr_array_unref(a);
  if (ok) {
    j->t0 = g_get_monotonic_time();
    g_ptr_array_add(r->active, j);
    say(r, "%s: %s (pid %d, %d threads) -> %s", j->label, resume ? "resuming training" : "training", (int)j->pid,
        threads, dir);
  } else {
    job_free(j);
  }
  g_free(exp_path);
  g_free(dir);
  return ok;
}

static gboolean start_eval(Runner *r, guint i, int threads, GError **error) {
  const RatSweepRun *run = r->s->runs->pdata[i];
  char *dir = rat_sweep_run_dir(r->out, run);
  Job *j = g_new0(Job, 1);
  j->run = i;
  j->stage = STAGE_EVAL;
  j->threads = threads;
  j->log = path_in(dir, "ablate-eval.log");
  j->label = g_strdup_printf("%s seed %" G_GINT64_FORMAT, ((RatSweepVariant *)r->s->variants->pdata[run->variant])->name,
                             run->seed);
  /* the previous results.json must not pass for this evaluation's */
  char *res = path_in(dir, "eval/results.json");
  g_unlink(res);
  g_free(res);
  GPtrArray *a = argv_new(r->opt->ratfw, "eval");
  g_ptr_array_add(a, g_strdup(dir));
  for (guint k = 0; k < run->eval_sets->len; k++) {
    g_ptr_array_add(a, g_strdup("--set"));
    g_ptr_array_add(a, g_strdup(run->eval_sets->pdata[k]));
  }
  g_ptr_array_add(a, g_strdup_printf("--threads=%d", threads));
  g_ptr_array_add(a, g_strdup("--quiet"));
  g_ptr_array_add(a, NULL);
  gboolean ok = spawn_child(a, j->log, &j->pid, error);
  g_ptr_array_unref(a);
  if (ok) {
    j->t0 = g_get_monotonic_time();
    g_ptr_array_add(r->active, j);
    say(r, "%s: evaluating (pid %d, %d threads)", j->label, (int)j->pid, threads);
  } else {
    job_free(j);
  }
  g_free(dir);
  return ok;
}

static void metrics_line(GString *out, const char *results_path) {
  JsonObject *o = read_json_object(results_path);
  JsonObject *m = o && json_object_has_member(o, "metrics") && JSON_NODE_HOLDS_OBJECT(json_object_get_member(o, "metrics"))
                      ? json_object_get_object_member(o, "metrics")
                      : NULL;
  GList *names = m ? json_object_get_members(m) : NULL;
  for (GList *l = names; l; l = l->next)
    g_string_append_printf(out, "%s%s %.4g", out->len ? ", " : "", (const char *)l->data,
                           member_double(m, l->data, NAN));
  g_list_free(names);
  if (o) json_object_unref(o);
}

/* A child ended: record it; returns TRUE when the run's evaluation should start next. */
static gboolean job_finished(Runner *r, Job *j, int status) {
  const RatSweepRun *run = r->s->runs->pdata[j->run];
  char *dir = rat_sweep_run_dir(r->out, run);
  double wall = (double)(g_get_monotonic_time() - j->t0) / 1e6;
  gboolean ok = WIFEXITED(status) && WEXITSTATUS(status) == 0;
  gboolean next_eval = FALSE;
  JsonObject *rec = record_open(dir, r->s, run);
  char *how = exit_text(status);
  if (j->stage == STAGE_TRAIN) {
    json_object_set_double_member(rec, "train_seconds", member_double(rec, "train_seconds", 0) + wall);
    json_object_set_double_member(rec, "train_cpu_seconds", member_double(rec, "train_cpu_seconds", 0) + j->cpu);
    json_object_set_int_member(rec, "train_attempts", (gint64)member_double(rec, "train_attempts", 0) + 1);
    json_object_set_int_member(rec, "threads", j->threads);
    if (ok && rat_run_is_complete(dir)) {
      json_object_remove_member(rec, "failed");
      say(r, "%s: trained in %.0f s", j->label, wall);
      next_eval = TRUE;
    } else if (stopping(r) && j->signalled) {
      say(r, "%s: stopped (%s); the next ratfw ablate resumes it", j->label, how);
    } else {
      char *tail = log_tail(j->log, 6);
      char *err = g_strdup_printf("%s%s%s", tail, *tail ? "\n" : "", how);
      record_failure(rec, "train", err, NULL);
      say(r, "%s: training FAILED (%s); see %s", j->label, how, j->log);
      g_free(err);
      g_free(tail);
    }
  } else {
    json_object_set_double_member(rec, "eval_seconds", wall);
    json_object_set_double_member(rec, "eval_cpu_seconds", j->cpu);
    json_object_set_int_member(rec, "eval_threads", j->threads);
    char *res = path_in(dir, "eval/results.json");
    char *text = NULL;
    gsize len = 0;
    GError *e = NULL;
    JsonObject *parsed = ok && g_file_get_contents(res, &text, &len, NULL) ? read_json_object(res) : NULL;
    if (parsed) {
      char *copy = eval_copy_name(run);
      char *cp = path_in(dir, copy);
      if (rat_file_write_atomic(cp, text, len, &e)) {
        json_object_remove_member(rec, "failed");
        GString *m = g_string_new(NULL);
        metrics_line(m, cp);
        say(r, "%s: evaluated in %.0f s: %s", j->label, wall, m->str);
        g_string_free(m, TRUE);
      } else {
        record_failure(rec, "eval", e->message, run->eval_id);
        g_clear_error(&e);
      }
      g_free(cp);
      g_free(copy);
      json_object_unref(parsed);
    } else if (stopping(r) && j->signalled) {
      say(r, "%s: evaluation stopped (%s); the next ratfw ablate runs it", j->label, how);
    } else {
      char *tail = log_tail(j->log, 6);
      char *err = g_strdup_printf("%s%s%s%s", tail, *tail ? "\n" : "", how,
                                  ok ? " but no readable eval/results.json" : "");
      record_failure(rec, "eval", err, run->eval_id);
      say(r, "%s: evaluation FAILED (%s); see %s", j->label, how, j->log);
      g_free(err);
      g_free(tail);
    }
    g_free(text);
    g_free(res);
  }
  record_save(dir, rec, r->log);
  json_object_unref(rec);
  g_free(how);
  g_free(dir);
  return next_eval;
}

/* Passes the user's Ctrl-C on: once (checkpoint and stop), and a second time when asked twice (stop now). */
static void forward_stop(Runner *r) {
  int level = r->opt->stop ? g_atomic_int_get(r->opt->stop) : 0;
  for (guint k = 0; k < r->active->len; k++) {
    Job *j = r->active->pdata[k];
    while (j->signalled < MIN(level, 2)) {
      kill(j->pid, SIGINT);
      j->signalled++;
    }
  }
  if (level > 0) r->interrupted = TRUE;
}

/* Waits for one child; returns it with its status and CPU time (NULL when none is running). */
static Job *wait_any(Runner *r, int *status) {
  for (;;) {
    if (!r->active->len) return NULL;
    forward_stop(r);
    for (guint k = 0; k < r->active->len; k++) {
      Job *j = r->active->pdata[k];
      struct rusage ru;
      pid_t p = wait4(j->pid, status, WNOHANG, &ru);
      if (p == j->pid || (p < 0 && errno == ECHILD)) {
        if (p < 0) *status = 0xff00; /* reaped elsewhere: an unknown failure */
        else
          j->cpu = (double)ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 + (double)ru.ru_stime.tv_sec +
                   ru.ru_stime.tv_usec / 1e6;
        g_spawn_close_pid(j->pid);
        g_ptr_array_steal_index(r->active, k); /* the caller frees it */
        return j;
      }
    }
    g_usleep(50 * 1000);
  }
}

/* Required experiments (requires:) run once, before the runs that need them, which would otherwise start them
 * several at a time. They go where `ratfw run` looks for them: their out:, else OUT/runs/<name>. */
static gboolean run_requirements(Runner *r, const GArray *todo, GError **error) {
  GPtrArray *paths = g_ptr_array_new();
  for (guint k = 0; k < todo->len; k++) {
    const RatSweepRun *run = r->s->runs->pdata[g_array_index(todo, guint, k)];
    for (guint q = 0; q < run->exp->requires->len; q++) {
      const char *p = run->exp->requires->pdata[q];
      gboolean have = FALSE;
      for (guint m = 0; m < paths->len; m++) have |= !strcmp(paths->pdata[m], p);
      if (!have) g_ptr_array_add(paths, (gpointer)p);
    }
  }
  char *parent = path_in(r->out, "runs");
  gboolean ok = TRUE;
  for (guint m = 0; ok && m < paths->len && !stopping(r); m++) {
    RatExperiment *req = rat_experiment_load(r->reg, paths->pdata[m], NULL, error);
    if (!req) {
      ok = FALSE;
      break;
    }
    char *dir = rat_run_default_dir(req, parent);
    if (!rat_run_is_complete(dir)) {
      g_mkdir_with_parents(parent, 0755);
      char *base = g_path_get_basename(dir);
      char *logname = g_strdup_printf("require-%s.log", base);
      Job *j = g_new0(Job, 1);
      j->stage = STAGE_REQUIRE;
      j->log = path_in(r->out, logname);
      j->label = g_strdup(req->name);
      GPtrArray *a = argv_new(r->opt->ratfw, "run");
      g_ptr_array_add(a, g_strdup(req->path));
      g_ptr_array_add(a, g_strdup("--out"));
      g_ptr_array_add(a, g_strdup(dir));
      g_ptr_array_add(a, g_strdup_printf("--threads=%d", r->opt->threads));
      g_ptr_array_add(a, g_strdup("--quiet"));
      if (exists_in(dir, "resolved.yaml")) g_ptr_array_add(a, g_strdup("--resume"));
      g_ptr_array_add(a, NULL);
      say(r, "required experiment %s first -> %s", req->name, dir);
      ok = spawn_child(a, j->log, &j->pid, error);
      g_ptr_array_unref(a);
      if (ok) {
        j->t0 = g_get_monotonic_time();
        g_ptr_array_add(r->active, j);
        int status = 0;
        Job *done = wait_any(r, &status);
        g_assert(done == j);
        if (!(WIFEXITED(status) && WEXITSTATUS(status) == 0 && rat_run_is_complete(dir)) && !stopping(r)) {
          char *tail = log_tail(j->log, 6), *how = exit_text(status);
          g_set_error(error, RAT_ERROR, RAT_ERROR_FAILED, "the required experiment %s failed (%s): %s (log: %s)",
                      req->path, how, tail, j->log);
          g_free(tail);
          g_free(how);
          ok = FALSE;
        } else if (ok && !stopping(r)) {
          say(r, "required experiment %s done in %.0f s", req->name, (double)(g_get_monotonic_time() - j->t0) / 1e6);
        }
      } else {
        job_free(j);
        j = NULL;
      }
      if (j) job_free(j);
      g_free(logname);
      g_free(base);
    }
    g_free(dir);
    rat_experiment_free(req);
  }
  g_free(parent);
  g_ptr_array_free(paths, TRUE);
  return ok;
}

/* One ratfw ablate per sweep directory at a time, children included (sweep_lock_fd). Returns the open lock file, or
 * -1. When the ratfw ablate that holds it has ended (killed) and only its children still hold it, they were told
 * to stop (SIGINT): waits for them. */
static int lock_out(const char *out, FILE *log, GError **error) {
  char *p = path_in(out, ".ablate.lock");
  int fd = open(p, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (fd < 0) {
    g_set_error(error, RAT_ERROR, RAT_ERROR_IO, "cannot open %s: %s", p, g_strerror(errno));
    g_free(p);
    return -1;
  }
  gboolean locked = flock(fd, LOCK_EX | LOCK_NB) == 0;
  if (!locked) {
    char buf[32] = {0};
    if (pread(fd, buf, sizeof buf - 1, 0) < 0) buf[0] = 0;
    gint64 holder = 0;
    gboolean known = g_ascii_string_to_signed(g_strstrip(buf), 10, 1, G_MAXINT, &holder, NULL);
    if (known && kill((pid_t)holder, 0) != 0 && errno == ESRCH) {
      if (log)
        fprintf(log, "ratfw ablate: the ratfw ablate that ran in %s (pid %" G_GINT64_FORMAT ") has ended; waiting "
                "for its runs to checkpoint and stop\n", out, holder);
      while (!(locked = flock(fd, LOCK_EX) == 0) && errno == EINTR) {
      }
    }
    if (!locked) {
      g_set_error(error, RAT_ERROR, RAT_ERROR_IO,
                  "another ratfw ablate (pid %s) is running in %s: wait for it or stop it first", known ? buf : "?",
                  out);
      close(fd);
      fd = -1;
    }
  }
  if (locked) {
    char pid[32];
    int len = g_snprintf(pid, sizeof pid, "%d\n", (int)getpid());
    if (ftruncate(fd, 0) != 0 || pwrite(fd, pid, (size_t)len, 0) != len) { /* the pid is informative */
    }
  }
  g_free(p);
  return fd;
}

gboolean rat_ablate_run(RatRegistry *reg, const RatSweep *s, const char *out, const RatAblateOptions *opt,
                        guint *n_failed, gboolean *interrupted, GError **error) {
  *n_failed = 0;
  *interrupted = FALSE;
  if (g_mkdir_with_parents(out, 0755) != 0) {
    g_set_error(error, RAT_ERROR, RAT_ERROR_IO, "cannot create the sweep directory %s: %s", out, g_strerror(errno));
    return FALSE;
  }
  int lock = lock_out(out, opt->log, error);
  if (lock < 0) return FALSE;
  sweep_lock_fd = lock;
  Runner r = {.reg = reg, .s = s, .out = out, .opt = opt, .log = opt->log,
              .active = g_ptr_array_new_with_free_func((GDestroyNotify)job_free)};
  /* what is left, once per distinct run (two variants may resolve to the same experiment) */
  GArray *todo = g_array_new(FALSE, FALSE, sizeof(guint));
  GHashTable *seen = g_hash_table_new(g_str_hash, g_str_equal);
  guint n_failed_before = 0;
  for (guint i = 0; i < s->runs->len; i++) {
    const RatSweepRun *run = s->runs->pdata[i];
    if (!selected(s, run, opt) || g_hash_table_contains(seen, run->id)) continue;
    g_hash_table_add(seen, run->id);
    RatAblateState *st = rat_ablate_state_read(s, i, out);
    if (st->train != RAT_ABLATE_TRAINED || st->eval != RAT_ABLATE_EVAL_DONE) g_array_append_val(todo, i);
    n_failed_before += st->train == RAT_ABLATE_FAILED || st->eval == RAT_ABLATE_EVAL_FAILED;
    rat_ablate_state_free(st);
  }
  g_hash_table_unref(seen);
  say(&r, "%s: %u runs, %u left (%u of them failed last time and are retried), --jobs %u, %d threads", s->name,
      s->runs->len, todo->len, n_failed_before, opt->jobs, opt->threads);
  gboolean ok = run_requirements(&r, todo, error);
  /* with the required experiments present, build each variant's model once: a variant that cannot be built is
   * an error before any of them trains */
  for (guint k = 0; ok && !stopping(&r) && k < todo->len; k++) {
    const RatSweepRun *run = s->runs->pdata[g_array_index(todo, guint, k)];
    gboolean first = TRUE;
    for (guint q = 0; q < k; q++)
      first &= ((RatSweepRun *)s->runs->pdata[g_array_index(todo, guint, q)])->variant != run->variant;
    GError *e = NULL;
    if (first && !rat_sweep_check_build(reg, run, &e)) {
      g_set_error(error, RAT_ERROR, RAT_ERROR_CONFIG, "variant '%s': %s",
                  ((RatSweepVariant *)s->variants->pdata[run->variant])->name, e->message);
      g_error_free(e);
      ok = FALSE;
    }
  }
  /* the queue: training (or evaluation of a trained run), then that run's evaluation in the same slot */
  guint next = 0, left = todo->len;
  while (ok) {
    while (!stopping(&r) && next < todo->len && r.active->len < opt->jobs) {
      guint i = g_array_index(todo, guint, next++);
      RatAblateState *st = rat_ablate_state_read(s, i, out);
      int threads = threads_each(&r, left);
      GError *e = NULL;
      gboolean started = st->train == RAT_ABLATE_TRAINED ? start_eval(&r, i, threads, &e) : start_train(&r, i, threads, &e);
      if (!started) {
        say(&r, "cannot start a run: %s", e->message);
        left--;
        g_error_free(e);
      }
      rat_ablate_state_free(st);
    }
    int status = 0;
    Job *j = wait_any(&r, &status);
    if (!j) break;
    gboolean eval_next = job_finished(&r, j, status);
    if (eval_next && !stopping(&r)) {
      GError *e = NULL;
      if (!start_eval(&r, j->run, threads_each(&r, left), &e)) {
        say(&r, "cannot start an evaluation: %s", e->message);
        g_error_free(e);
        left--;
      }
    } else {
      left--;
    }
    job_free(j);
  }
  /* a required experiment failed, or stopping: wait for every child */
  int status;
  Job *j;
  while ((j = wait_any(&r, &status))) {
    job_finished(&r, j, status);
    job_free(j);
  }
  g_array_unref(todo);
  g_ptr_array_unref(r.active);
  /* failed: the selected runs whose last attempt failed (this time or before) */
  for (guint i = 0; i < s->runs->len; i++) {
    if (!selected(s, s->runs->pdata[i], opt)) continue;
    RatAblateState *st = rat_ablate_state_read(s, i, out);
    *n_failed += st->train == RAT_ABLATE_FAILED || st->eval == RAT_ABLATE_EVAL_FAILED;
    rat_ablate_state_free(st);
  }
  *interrupted = r.interrupted || stopping(&r);
  /* the table, chart and report of whatever is there, also after a stop */
  RatAblateResults *res = rat_ablate_results_collect(s, out);
  GError *e = NULL;
  if (!rat_ablate_report(res, out, &e)) {
    if (ok) g_propagate_error(error, e);
    else g_error_free(e);
    ok = FALSE;
  } else {
    say(&r, "table: %s/table.md, report: %s/index.html", out, out);
  }
  rat_ablate_results_free(res);
  sweep_lock_fd = -1;
  close(lock);
  return ok;
}
