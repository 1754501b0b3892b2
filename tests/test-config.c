/* Experiment files: marks on every node, include merging (marks name the file a value came from), --set,
 * validation errors with exact file:line:column (syntax, unknown key with the closest valid key, wrong type,
 * out of range, missing key, unknown type listing the installed ones), all errors at once, and the resolved
 * config (every default filled in) reloading to itself. */
#include "config.h"

#include "testutil.h"

#include <glib/gstdio.h>
#include <string.h>
#include <unistd.h>

static char *cfg(const char *name) {
  const char *src = g_getenv("RATFW_SRCDIR");
  /* canonical (no "..": distcheck's srcdir is relative), as the loader records included files */
  char *p = g_build_filename(src ? src : RATFW_SRCDIR, "tests", "configs", name, NULL);
  char *c = g_canonicalize_filename(p, NULL);
  g_free(p);
  return c;
}

static RatRegistry *registry(void) {
  const char *b = g_getenv("RATFW_BUILDDIR");
  char *path = g_strdup_printf("%s/tests/plugins/good/.libs/testtask.so", b ? b : RATFW_BUILDDIR);
  RatRegistry *reg = rat_registry_new();
  GError *e = NULL;
  if (!rat_registry_load_plugin(reg, path, &e)) g_error("%s", e->message);
  g_free(path);
  return reg;
}

static void assert_contains(const char *hay, const char *needle) {
  if (!strstr(hay, needle)) g_error("expected to find\n  %s\nin\n%s", needle, hay);
}

static void test_marks(void) {
  GError *e = NULL;
  RatConfigNode *n = rat_config_parse_string("a: 1\nb:\n  c: [x, 'y']\n  d: \"true\"\n", -1, "t.yaml", &e);
  g_assert_no_error(e);
  RatConfigNode *c = rat_config_lookup(n, "b.c");
  g_assert_cmpint(c->kind, ==, RAT_NODE_SEQ);
  g_assert_cmpuint(c->line, ==, 3);
  g_assert_cmpuint(c->column, ==, 6);
  RatConfigNode *y = c->values->pdata[1];
  g_assert_cmpstr(y->value, ==, "y");
  g_assert_true(y->quoted);
  g_assert_cmpuint(y->column, ==, 10);
  char *mark = rat_config_mark(rat_config_lookup(n, "b.d"));
  g_assert_cmpstr(mark, ==, "t.yaml:4:6");
  g_free(mark);
  /* writing and reading back keeps values and quoting ("true" stays a string) */
  char *text = rat_config_to_yaml(n);
  RatConfigNode *back = rat_config_parse_string(text, -1, "back", &e);
  g_assert_no_error(e);
  g_assert_true(rat_config_lookup(back, "b.d")->quoted);
  g_assert_cmpstr(((RatConfigNode *)rat_config_lookup(back, "b.c")->values->pdata[0])->value, ==, "x");
  g_free(text);
  rat_config_node_unref(back);
  rat_config_node_unref(n);
  /* duplicate keys are an error with both places */
  g_assert_null(rat_config_parse_string("a: 1\nb: 2\na: 3\n", -1, "dup.yaml", &e));
  g_assert_cmpstr(e->message, ==, "dup.yaml:3:1: duplicate key 'a' (first given at dup.yaml:1:1)");
  g_clear_error(&e);
}

static void test_syntax(void) {
  char *path = cfg("syntax.yaml");
  GError *e = NULL;
  g_assert_null(rat_config_load(path, NULL, &e));
  g_assert_error(e, RAT_ERROR, RAT_ERROR_CONFIG);
  char *want = g_strdup_printf("%s:4:5: YAML syntax error: did not find expected ',' or ']' while parsing a flow sequence",
                               path);
  g_assert_cmpstr(e->message, ==, want);
  g_free(want);
  g_clear_error(&e);
  g_free(path);
}

static void test_include(void) {
  char *path = cfg("ablation.yaml"), *base = cfg("base.yaml");
  GError *e = NULL;
  RatConfigNode *n = rat_config_load(path, NULL, &e);
  g_assert_no_error(e);
  g_assert_null(rat_config_get(n, "include"));
  g_assert_cmpstr(rat_config_lookup(n, "train.steps")->value, ==, "20");
  g_assert_null(rat_config_lookup(n, "train.a")); /* a: ~ removes the inherited key */
  RatConfigNode *lr = rat_config_lookup(n, "train.lr");
  g_assert_cmpstr(lr->value, ==, "0.5");
  g_assert_cmpstr(lr->file, ==, base); /* an inherited value names the base file */
  g_assert_cmpuint(lr->line, ==, 7);
  RatConfigNode *scale = rat_config_lookup(n, "model.block.cond.scale");
  g_assert_cmpstr(scale->file, ==, path);
  g_assert_cmpstr(rat_config_lookup(n, "model.block.cond.mode")->value, ==, "add"); /* merged below */
  /* --set: the value's mark names the assignment */
  const char *const sets[] = {"train.steps=5", "model.block.cond.type=toy_cond", "train.new.deep=[1, 2]", NULL};
  RatConfigNode *s = rat_config_load(path, sets, &e);
  g_assert_no_error(e);
  RatConfigNode *steps = rat_config_lookup(s, "train.steps");
  g_assert_cmpstr(steps->value, ==, "5");
  char *mark = rat_config_mark(steps);
  g_assert_cmpstr(mark, ==, "--set train.steps=5:1:13");
  g_free(mark);
  g_assert_cmpuint(rat_config_lookup(s, "train.new.deep")->values->len, ==, 2);
  const char *const bad[] = {"train.l=[1, 2]", "train.l.x=1", NULL};
  g_assert_null(rat_config_load(path, bad, &e));
  assert_contains(e->message, "--set train.l.x=1:1:1: 'x' is not an index of the list at --set train.l=[1, 2]:1:9");
  g_clear_error(&e);
  const char *const idx[] = {"train.l=[1, 2]", "train.l.1=7", NULL};
  RatConfigNode *li = rat_config_load(path, idx, &e);
  g_assert_no_error(e);
  g_assert_cmpstr(((RatConfigNode *)rat_config_lookup(li, "train.l")->values->pdata[1])->value, ==, "7");
  rat_config_node_unref(li);
  g_clear_error(&e);
  const char *const noeq[] = {"train.steps", NULL};
  g_assert_null(rat_config_load(path, noeq, &e));
  assert_contains(e->message, "expected KEY.PATH=VALUE");
  g_clear_error(&e);
  rat_config_node_unref(s);
  rat_config_node_unref(n);
  /* include cycles */
  char *cyc = cfg("cycle-a.yaml");
  g_assert_null(rat_config_load(cyc, NULL, &e));
  assert_contains(e->message, "include cycle");
  g_clear_error(&e);
  g_free(cyc);
  g_free(path);
  g_free(base);
}

static void test_errors(void) {
  RatRegistry *reg = registry();
  char *path = cfg("errors.yaml");
  GError *e = NULL;
  g_assert_null(rat_experiment_load(reg, path, NULL, &e));
  g_assert_error(e, RAT_ERROR, RAT_ERROR_CONFIG);
  const char *want[] = {
      "1:7: experiment: 'seed' = -3 is out of range [0, inf]",
      "4:3: train: unknown key 'step' (did you mean 'steps'?)",
      "6:13: train: 'n_points' = 100000 is out of range [2, 4096]",
      "5:7: train: 'lr' expects a number, got 'fast'",
      "10:11: model.conditioner: unknown conditioner type 'toy_cnd' (did you mean 'toy_cond'?) (installed: toy_cond)",
      "13:34: model.block (toy_block).cond (toy_cond): 'mode' = 'sideways' is not one of: add, mul",
      "14:15: model.block (toy_block): item 1 of 'dims' expects an integer, got 'x'",
  };
  char **lines = g_strsplit(e->message, "\n", -1);
  g_assert_cmpuint(g_strv_length(lines), ==, G_N_ELEMENTS(want));
  for (guint i = 0; i < G_N_ELEMENTS(want); i++) {
    char *full = g_strdup_printf("%s:%s", path, want[i]);
    gboolean found = FALSE;
    for (guint j = 0; lines[j]; j++) found |= !strcmp(lines[j], full);
    if (!found) g_error("missing error line\n  %s\nin\n%s", full, e->message);
    g_free(full);
  }
  g_strfreev(lines);
  g_clear_error(&e);
  g_free(path);

  path = cfg("missing.yaml");
  g_assert_null(rat_experiment_load(reg, path, NULL, &e));
  char *w = g_strdup_printf("%s:2:1: a 'train:' section needs 'task:' naming the task", path);
  g_assert_cmpstr(e->message, ==, w);
  g_free(w);
  g_clear_error(&e);
  g_free(path);

  path = cfg("wrongkind.yaml");
  g_assert_null(rat_experiment_load(reg, path, NULL, &e));
  w = g_strdup_printf("%s:3:14: model.generator: type 'toy_cond' is a conditioner, expected a generator (installed: "
                      "(none))", path);
  g_assert_cmpstr(e->message, ==, w);
  g_free(w);
  g_clear_error(&e);

  /* unknown task type lists the installed tasks; unknown top-level key suggests the closest */
  const char *const sets[] = {"task=fit_lin", "modle.x=1", NULL};
  g_assert_null(rat_experiment_load(reg, path, sets, &e));
  assert_contains(e->message, "--set modle.x=1:1:1: experiment: unknown key 'modle' (did you mean 'model'?)");
  assert_contains(e->message, "--set task=fit_lin:1:6: task: unknown task type 'fit_lin' (did you mean 'fit_line'?) "
                              "(installed tasks: fit_line)");
  g_assert_error(e, RAT_ERROR, RAT_ERROR_CONFIG);
  g_clear_error(&e);
  g_free(path);
  rat_registry_free(reg);
}

static void test_resolved(void) {
  RatRegistry *reg = registry();
  char *path = cfg("ablation.yaml");
  GError *e = NULL;
  const char *const sets[] = {"seed=11", NULL};
  RatExperiment *exp = rat_experiment_load(reg, path, sets, &e);
  g_assert_no_error(e);
  g_assert_cmpint(exp->seed, ==, 11);
  g_assert_cmpstr(exp->task->type_name, ==, "fit_line");
  g_assert_cmpint(exp->sizes.channels, ==, 8);
  g_assert_cmpint(exp->sizes.cond_dim, ==, 4);
  g_assert_nonnull(exp->model[5]);
  g_assert_cmpstr(exp->model[5]->type_name, ==, "toy_block");
  g_assert_cmpstr(exp->name, ==, "ablation");
  char *y = rat_experiment_resolved_yaml(reg, exp);
  assert_contains(y, "seed: 11\n");
  assert_contains(y, "task: fit_line\ntrain:\n  steps: 20\n  n_points: 16\n  lr: 0.5\n  a: 2.0\n  b: -1.0\n");
  assert_contains(y, "  block:\n    type: toy_block\n    cond:\n      type: toy_cond\n      scale: 0.5\n"
                     "      mode: add\n      bias: true\n    depth: 2\n    dims: [1, 2]\n");
  /* the resolved file is itself a valid experiment that resolves to the same text (after its comment line) */
  char *tmp = NULL;
  int fd = g_file_open_tmp("resolved-XXXXXX.yaml", &tmp, NULL);
  close(fd);
  g_assert_true(g_file_set_contents(tmp, y, -1, NULL));
  RatExperiment *again = rat_experiment_load(reg, tmp, NULL, &e);
  g_assert_no_error(e);
  char *y2 = rat_experiment_resolved_yaml(reg, again);
  g_assert_cmpstr(strchr(y2, '\n'), ==, strchr(y, '\n'));
  g_unlink(tmp);
  g_free(tmp);
  g_free(y2);
  g_free(y);
  rat_experiment_free(again);
  rat_experiment_free(exp);
  g_free(path);
  rat_registry_free(reg);
}

typedef struct {
  gint64 n;
  double x;
  gboolean b;
  char *s, *c, *p;
  RatIntList l;
  RatModuleSpec *m;
} AllOpts;
static const char *const abc[] = {"alpha", "beta", "gamma", NULL};

static void test_args(void) {
  RatRegistry *reg = registry();
  const RatArgSpec args[] = {
      RAT_ARG_I(AllOpts, n, NULL, 1, 10, "required int"),
      RAT_ARG_D(AllOpts, x, "0.25", 0, 1, "x"),
      RAT_ARG_B(AllOpts, b, "yes", "b"),
      RAT_ARG_S(AllOpts, s, "~", "optional string"),
      RAT_ARG_C(AllOpts, c, "beta", abc, "choice"),
      RAT_ARG_P(AllOpts, p, "data/x.bin", "path"),
      RAT_ARG_L(AllOpts, l, "[]", 0, 100, "list"),
      RAT_ARG_M(AllOpts, m, RAT_KIND_CONDITIONER, "toy_cond", "module"),
  };
  AllOpts o = {0};
  GError *e = NULL;
  RatConfigNode *n = rat_config_parse_string("n: 3\nc: gama\ns: '12'\nl: [4, 5, 6]\nm: {scale: 2}\np: /abs/f\n", -1,
                                             "/tmp/exp/a.yaml", &e);
  g_assert_false(rat_args_parse(reg, args, G_N_ELEMENTS(args), n, &o, &e));
  g_assert_cmpstr(e->message, ==, "/tmp/exp/a.yaml:2:4: arguments: 'c' = 'gama' is not one of: alpha, beta, gamma "
                                  "(did you mean 'gamma'?)");
  g_clear_error(&e);
  rat_config_node_unref(n);
  n = rat_config_parse_string("n: 3\nc: gamma\ns: '12'\nl: [4, 5, 6]\nm: {scale: 2}\n", -1, "/tmp/exp/a.yaml", &e);
  g_assert_true(rat_args_parse(reg, args, G_N_ELEMENTS(args), n, &o, &e));
  g_assert_no_error(e);
  g_assert_cmpint(o.n, ==, 3);
  g_assert_cmpfloat(o.x, ==, 0.25);
  g_assert_true(o.b);
  g_assert_cmpstr(o.s, ==, "12");
  g_assert_cmpstr(o.c, ==, "gamma");
  char *cwd = g_get_current_dir(), *want_p = g_build_filename(cwd, "data", "x.bin", NULL);
  g_assert_cmpstr(o.p, ==, want_p); /* a default path is relative to the working directory */
  g_free(want_p);
  g_free(cwd);
  g_assert_cmpuint(o.l.n, ==, 3);
  g_assert_cmpint(o.l.v[2], ==, 6);
  g_assert_cmpstr(o.m->type_name, ==, "toy_cond"); /* default type, arguments from the mapping */
  g_assert_cmpstr(rat_config_get(o.m->node, "scale")->value, ==, "2");
  rat_args_clear(args, G_N_ELEMENTS(args), &o);
  g_assert_null(o.s);
  g_assert_null(o.m);
  rat_config_node_unref(n);
  /* missing required key, type errors */
  n = rat_config_parse_string("x: 2\nb: maybe\n", -1, "b.yaml", &e);
  g_assert_false(rat_args_parse(reg, args, G_N_ELEMENTS(args), n, &o, &e));
  g_assert_cmpstr(e->message, ==,
                  "b.yaml:1:1: arguments: missing required key 'n' (integer: required int)\n"
                  "b.yaml:1:4: arguments: 'x' = 2 is out of range [0, 1]\n"
                  "b.yaml:2:4: arguments: 'b' expects true or false, got 'maybe'");
  g_clear_error(&e);
  rat_config_node_unref(n);
  g_assert_cmpuint(rat_edit_distance("kitten", "sitting"), ==, 3);
  const char *const cands[] = {"steps", "lr", "n_points", NULL};
  g_assert_cmpstr(rat_closest_name("setps", cands), ==, "steps");
  g_assert_null(rat_closest_name("completely_else", cands));
  rat_registry_free(reg);
}

static void test_progress(void) {
  char *s = rat_progress_format("train", 50, 100, 4.0, 10);
  g_assert_cmpstr(s, ==, "train [#####     ] 50/100 12.5/s ETA 0:04");
  g_free(s);
  s = rat_progress_format("train", 100, 100, 8.0, 0);
  g_assert_cmpstr(s, ==, "train 100/100 (100%) 12.5/s in 8.0s");
  g_free(s);
}

int main(int argc, char **argv) {
  rat_test_init(&argc, &argv);
  g_test_add_func("/config/marks", test_marks);
  g_test_add_func("/config/syntax", test_syntax);
  g_test_add_func("/config/include-set", test_include);
  g_test_add_func("/config/errors", test_errors);
  g_test_add_func("/config/resolved", test_resolved);
  g_test_add_func("/config/args", test_args);
  g_test_add_func("/run/progress", test_progress);
  return g_test_run();
}
