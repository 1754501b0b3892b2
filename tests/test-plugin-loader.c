/* Plugin loader and registry: one deliberately broken plugin per loader failure (each with its exact error code),
 * the good test plugin, search-path loading, argument-table checks, module building with children and parameters,
 * and the profiling hooks `ratfw inspect` uses. */
#include "config.h"

#include "testutil.h"

#include <glib/gstdio.h>
#include <string.h>

static const char *builddir(void) {
  const char *b = g_getenv("RATFW_BUILDDIR");
  return b ? b : RATFW_BUILDDIR;
}

static char *plugin_path(const char *sub, const char *name) {
  return g_strdup_printf("%s/tests/plugins/%s/.libs/%s.so", builddir(), sub, name);
}

static void expect_load_error(const char *name, int code, const char *needle) {
  RatRegistry *reg = rat_registry_new();
  char *path = plugin_path("broken", name);
  g_assert_true(g_file_test(path, G_FILE_TEST_EXISTS));
  GError *e = NULL;
  g_assert_false(rat_registry_load_plugin(reg, path, &e));
  g_assert_error(e, RAT_PLUGIN_ERROR, code);
  if (!strstr(e->message, needle)) g_error("%s: message '%s' lacks '%s'", name, e->message, needle);
  g_assert_nonnull(strstr(e->message, path)); /* names the file */
  g_assert_cmpuint(rat_registry_plugins(reg)->len, ==, 0);
  GPtrArray *types = rat_registry_types(reg, RAT_KIND_N);
  g_assert_cmpuint(types->len, ==, 0); /* a failed plugin leaves no types behind */
  g_ptr_array_unref(types);
  g_error_free(e);
  g_free(path);
  rat_registry_free(reg);
}

static void test_open(void) {
  RatRegistry *reg = rat_registry_new();
  GError *e = NULL;
  g_assert_false(rat_registry_load_plugin(reg, "/nonexistent/dir/nothing.so", &e));
  g_assert_error(e, RAT_PLUGIN_ERROR, RAT_PLUGIN_ERROR_OPEN);
  g_clear_error(&e);
  /* a file that is not a shared object */
  char *dir = g_dir_make_tmp("ratfw-open-XXXXXX", NULL);
  char *junk = g_build_filename(dir, "junk.so", NULL);
  g_assert_true(g_file_set_contents(junk, "this is not an ELF file\n", -1, NULL));
  g_assert_false(rat_registry_load_plugin(reg, junk, &e));
  g_assert_error(e, RAT_PLUGIN_ERROR, RAT_PLUGIN_ERROR_OPEN);
  g_assert_nonnull(strstr(e->message, "cannot open plugin"));
  g_clear_error(&e);
  g_unlink(junk);
  g_rmdir(dir);
  g_free(junk);
  g_free(dir);
  rat_registry_free(reg);
}

static void test_no_entry(void) { expect_load_error("noentry", RAT_PLUGIN_ERROR_NO_ENTRY, "no 'rat_plugin_describe'"); }
static void test_abi(void) { expect_load_error("abi", RAT_PLUGIN_ERROR_ABI, "plugin ABI version 100, this ratfw expects 1"); }
static void test_size(void) { expect_load_error("size", RAT_PLUGIN_ERROR_SIZE, "descriptor is 16 bytes"); }
static void test_fields(void) { expect_load_error("fields", RAT_PLUGIN_ERROR_FIELDS, "lacks its license"); }
static void test_name(void) {
  expect_load_error("badname", RAT_PLUGIN_ERROR_NAME, "calls itself 'goodname' but its file is named 'badname'");
}
static void test_duplicate(void) {
  expect_load_error("dup", RAT_PLUGIN_ERROR_DUPLICATE, "module type 'dup_type' is registered twice (first by plugin dup)");
}
static void test_init(void) { expect_load_error("initfail", RAT_PLUGIN_ERROR_INIT, "plugin init failed: cannot find its lookup table"); }
static void test_bad_table(void) {
  expect_load_error("badtable", RAT_PLUGIN_ERROR_INIT, "default '100' of argument 'n' is invalid");
}

static RatRegistry *registry_with_testtask(void) {
  RatRegistry *reg = rat_registry_new();
  char *path = plugin_path("good", "testtask");
  GError *e = NULL;
  if (!rat_registry_load_plugin(reg, path, &e)) g_error("%s", e->message);
  g_free(path);
  return reg;
}

static void test_good(void) {
  RatRegistry *reg = registry_with_testtask();
  const GPtrArray *plugins = rat_registry_plugins(reg);
  g_assert_cmpuint(plugins->len, ==, 1);
  const RatPluginInfo *info = plugins->pdata[0];
  g_assert_cmpstr(info->name, ==, "testtask");
  g_assert_cmpstr(info->version, ==, "1.2.3");
  g_assert_cmpstr(info->license, ==, "MIT");
  const RatModuleType *t = rat_registry_lookup(reg, "toy_cond");
  g_assert_nonnull(t);
  g_assert_cmpint(t->kind, ==, RAT_KIND_CONDITIONER);
  g_assert_cmpstr(rat_registry_type_plugin(reg, t), ==, "testtask");
  g_assert_null(rat_registry_lookup(reg, "nothing"));
  GPtrArray *all = rat_registry_types(reg, RAT_KIND_N);
  g_assert_cmpuint(all->len, ==, 3);
  g_assert_cmpstr(((const RatModuleType *)all->pdata[0])->name, ==, "fit_line"); /* sorted */
  g_assert_cmpstr(((const RatModuleType *)all->pdata[2])->name, ==, "toy_cond");
  g_ptr_array_unref(all);
  GPtrArray *tasks = rat_registry_types(reg, RAT_KIND_TASK);
  g_assert_cmpuint(tasks->len, ==, 1);
  g_ptr_array_unref(tasks);
  /* the same plugin a second time */
  char *path = plugin_path("good", "testtask");
  GError *e = NULL;
  g_assert_false(rat_registry_load_plugin(reg, path, &e));
  g_assert_error(e, RAT_PLUGIN_ERROR, RAT_PLUGIN_ERROR_DUPLICATE);
  g_clear_error(&e);
  g_free(path);
  rat_registry_free(reg);
}

static void test_load_all(void) {
  char *broken = g_strdup_printf("%s/tests/plugins/broken/.libs", builddir());
  char *good = g_strdup_printf("%s/tests/plugins/good/.libs", builddir());
  char *env = g_strdup_printf("%s:%s:/nonexistent", good, broken);
  char *old = g_strdup(g_getenv("RATFW_PLUGIN_PATH"));
  g_setenv("RATFW_PLUGIN_PATH", env, TRUE);
  RatRegistry *reg = rat_registry_new();
  GPtrArray *failures = g_ptr_array_new_with_free_func((GDestroyNotify)g_error_free);
  guint n = rat_registry_load_all(reg, failures);
  g_assert_cmpuint(n, >=, 1);
  g_assert_nonnull(rat_registry_lookup(reg, "fit_line"));
  int seen[RAT_PLUGIN_ERROR_INIT + 1] = {0};
  for (guint i = 0; i < failures->len; i++) {
    GError *e = failures->pdata[i];
    if (e->domain == RAT_PLUGIN_ERROR && strstr(e->message, "/tests/plugins/broken/")) seen[e->code]++;
  }
  g_assert_cmpint(seen[RAT_PLUGIN_ERROR_NO_ENTRY], ==, 1);
  g_assert_cmpint(seen[RAT_PLUGIN_ERROR_ABI], ==, 1);
  g_assert_cmpint(seen[RAT_PLUGIN_ERROR_SIZE], ==, 1);
  g_assert_cmpint(seen[RAT_PLUGIN_ERROR_FIELDS], ==, 1);
  g_assert_cmpint(seen[RAT_PLUGIN_ERROR_NAME], ==, 1);
  g_assert_cmpint(seen[RAT_PLUGIN_ERROR_DUPLICATE], ==, 1);
  g_assert_cmpint(seen[RAT_PLUGIN_ERROR_INIT], ==, 2); /* initfail, badtable */
  g_ptr_array_unref(failures);
  rat_registry_free(reg);
  if (old) g_setenv("RATFW_PLUGIN_PATH", old, TRUE);
  else g_unsetenv("RATFW_PLUGIN_PATH");
  g_free(old);
  g_free(env);
  g_free(good);
  g_free(broken);
}

/* ---- argument tables refused by the registry ----------------------------------------------------------------- */

typedef struct {
  gint64 n;
  double x;
  char *mode;
  RatIntList l;
} Opts;
static const char *const modes[] = {"a", "b", NULL};
static gboolean build_nothing(RatModule *m, const RatBuildContext *ctx, GError **error) { return TRUE; }

static gboolean try_table(const RatArgSpec *args, guint n, char **msg) {
  RatRegistry *reg = rat_registry_new();
  RatModuleType t = {.struct_size = sizeof(RatModuleType), .name = "t", .kind = RAT_KIND_LOSS, .args = args,
                     .n_args = n, .options_size = sizeof(Opts), .build = build_nothing};
  GError *e = NULL;
  gboolean ok = rat_registry_add_type(reg, &t, &e);
  *msg = e ? g_strdup(e->message) : NULL;
  g_clear_error(&e);
  rat_registry_free(reg);
  return ok;
}

static void test_tables(void) {
  char *msg = NULL;
  const RatArgSpec good[] = {RAT_ARG_I(Opts, n, "3", 0, 5, "n"), RAT_ARG_D(Opts, x, "0.5", 0, 1, "x"),
                             RAT_ARG_C(Opts, mode, "b", modes, "mode"), RAT_ARG_L(Opts, l, "[1, 2]", 0, 9, "l")};
  g_assert_true(try_table(good, 4, &msg));
  const RatArgSpec dup[] = {RAT_ARG_I(Opts, n, "3", 0, 5, "n"), RAT_ARG_I(Opts, n, "3", 0, 5, "n")};
  g_assert_false(try_table(dup, 2, &msg));
  g_assert_nonnull(strstr(msg, "argument 'n' declared twice"));
  g_free(msg);
  const RatArgSpec badchoice[] = {RAT_ARG_C(Opts, mode, "c", modes, "mode")};
  g_assert_false(try_table(badchoice, 1, &msg));
  g_assert_nonnull(strstr(msg, "default 'c' of argument 'mode' is invalid"));
  g_free(msg);
  const RatArgSpec badlist[] = {RAT_ARG_L(Opts, l, "[1, 20]", 0, 9, "l")};
  g_assert_false(try_table(badlist, 1, &msg));
  g_assert_nonnull(strstr(msg, "out of range [0, 9]"));
  g_free(msg);
  const RatArgSpec badtype[] = {RAT_ARG_D(Opts, x, "many", 0, 1, "x")};
  g_assert_false(try_table(badtype, 1, &msg));
  g_assert_nonnull(strstr(msg, "expects a number"));
  g_free(msg);
  RatArgSpec outside = RAT_ARG_I(Opts, n, "1", 0, 5, "n");
  outside.offset = 4096;
  g_assert_false(try_table(&outside, 1, &msg));
  g_assert_nonnull(strstr(msg, "outside options_size"));
  g_free(msg);
  g_assert_cmpstr(rat_module_kind_name(RAT_KIND_GENERATOR_BLOCK), ==, "generator_block");
  g_assert_cmpstr(rat_module_kind_name(RAT_KIND_TASK), ==, "task");
}

/* ---- building modules and profiling ---------------------------------------------------------------------------- */

static void test_build(void) {
  RatRegistry *reg = registry_with_testtask();
  RatParams *params = rat_params_new();
  RatRng rng;
  rat_rng_init(&rng, 5);
  RatBuildContext ctx = {.params = params, .rng = &rng, .channels = 6, .cond_dim = 3};
  GError *e = NULL;
  RatConfigNode *node = rat_config_parse_string("{type: toy_block, depth: 3, cond: {type: toy_cond, mode: mul}}", -1,
                                                "<test>", &e);
  g_assert_no_error(e);
  RatModuleSpec spec = {.type_name = "toy_block", .node = node};
  RatModule *m = rat_module_build(reg, &spec, "blk", RAT_KIND_BLOCK, &ctx, &e);
  g_assert_no_error(e);
  g_assert_cmpuint(m->children->len, ==, 3);
  RatModule *c2 = m->children->pdata[2];
  g_assert_cmpstr(c2->path, ==, "blk.stage2");
  g_assert_true(c2->parent == m);
  g_assert_cmpuint(rat_params_size(params), ==, 6); /* weight + bias per stage */
  RatTensor *w = rat_params_lookup(params, "blk.stage1.weight");
  g_assert_nonnull(w);
  g_assert_true(rat_shape_equal(rat_tensor_shape(w), RAT_SHAPE(1, 6, 3)));
  g_assert_nonnull(rat_params_lookup(params, "blk.stage2.bias"));
  g_assert_true(c2->params->len == 2 && c2->params->pdata[0] == rat_params_lookup(params, "blk.stage2.weight"));
  /* options filled from YAML and defaults */
  typedef struct {
    double scale;
    char *mode;
    gboolean bias;
  } ToyCondOptions;
  g_assert_cmpstr(RAT_MODULE_OPTIONS(c2, ToyCondOptions)->mode, ==, "mul");
  g_assert_cmpfloat(RAT_MODULE_OPTIONS(c2, ToyCondOptions)->scale, ==, 1.0);

  /* profiling: output shapes per module and FLOPs reported inside */
  rat_profile_begin();
  RatScope s = rat_scope_push();
  RatTensor *x = rat_randn(&rng, RAT_SHAPE(1, 6, 5, 5));
  RatTensor *y = rat_block_forward(m, x);
  g_assert_true(rat_shape_equal(rat_tensor_shape(y), RAT_SHAPE(1, 6, 5, 5)));
  rat_scope_pop(s);
  GPtrArray *entries = rat_profile_end();
  g_assert_cmpuint(entries->len, ==, 4);
  RatProfileEntry *top = entries->pdata[0], *st = entries->pdata[3];
  g_assert_true(top->module == m && st->module == c2);
  g_assert_true(rat_shape_equal(top->out_shape, RAT_SHAPE(1, 6, 5, 5)));
  g_assert_cmpuint(st->calls, ==, 1);
  g_assert_cmpuint(st->flops, ==, 2 * 6 * 3 + 2 * 150); /* as toy_cond reports it */
  g_assert_cmpuint(top->flops, ==, 0);
  g_ptr_array_unref(entries);
  rat_flops_add(10); /* not profiling: ignored */

  /* a child by name with overrides */
  const char *const ov[] = {"scale=2.5", "bias=false", NULL};
  RatModule *named = rat_module_build_child_named(m, "toy_cond", "extra", ov, &ctx, &e);
  g_assert_no_error(e);
  g_assert_cmpstr(named->path, ==, "blk.extra");
  g_assert_cmpfloat(RAT_MODULE_OPTIONS(named, ToyCondOptions)->scale, ==, 2.5);
  g_assert_cmpuint(named->params->len, ==, 1);
  const char *const bad[] = {"scale=20", NULL};
  g_assert_null(rat_module_build_child_named(m, "toy_cond", "bad", bad, &ctx, &e));
  g_assert_error(e, RAT_ERROR, RAT_ERROR_CONFIG);
  g_assert_cmpstr(e->message, ==, "--set scale=20:1:7: blk.bad (toy_cond): 'scale' = 20 is out of range [0, 10]");
  g_clear_error(&e);
  rat_module_free(m);
  /* a root module by name */
  const char *const rov[] = {"mode=add", NULL};
  RatModule *root = rat_module_build_named(reg, "toy_cond", "root", RAT_KIND_CONDITIONER, rov, &ctx, &e);
  g_assert_no_error(e);
  g_assert_cmpstr(RAT_MODULE_OPTIONS(root, ToyCondOptions)->mode, ==, "add");
  g_assert_nonnull(rat_params_lookup(params, "root.weight"));
  rat_module_free(root);
  const char *const rbad[] = {"mode=sideways", NULL};
  g_assert_null(rat_module_build_named(reg, "toy_cond", "root2", RAT_KIND_CONDITIONER, rbad, &ctx, &e));
  g_assert_cmpstr(e->message, ==, "--set mode=sideways:1:6: root2 (toy_cond): 'mode' = 'sideways' is not one of: add, mul");
  g_clear_error(&e);

  /* the type's check(): channels 6 with depth 4 */
  RatConfigNode *n4 = rat_config_parse_string("depth: 4", -1, "blk.yaml", NULL);
  RatModuleSpec s4 = {.type_name = "toy_block", .node = n4};
  g_assert_null(rat_module_build(reg, &s4, "blk4", RAT_KIND_BLOCK, &ctx, &e));
  g_assert_error(e, RAT_ERROR, RAT_ERROR_CONFIG);
  g_assert_cmpstr(e->message, ==, "blk.yaml:1:1: blk4 (toy_block): channels 6 not divisible by depth 4");
  g_clear_error(&e);
  /* a build failure names the module path */
  RatBuildContext nochan = {.params = params, .rng = &rng, .channels = 4, .cond_dim = 0};
  RatModuleSpec sc = {.type_name = "toy_cond"};
  g_assert_null(rat_module_build(reg, &sc, "gen.cond", RAT_KIND_CONDITIONER, &nochan, &e));
  g_assert_cmpstr(e->message, ==, "gen.cond (toy_cond): needs channels and cond_dim from its parent (got 4, 0)");
  g_clear_error(&e);
  /* wrong kind, unknown type */
  g_assert_null(rat_module_build(reg, &sc, "x", RAT_KIND_GENERATOR, &ctx, &e));
  g_assert_nonnull(strstr(e->message, "type 'toy_cond' is a conditioner, expected a generator"));
  g_clear_error(&e);
  RatModuleSpec su = {.type_name = "toy_cnd"};
  g_assert_null(rat_module_build(reg, &su, "x", RAT_KIND_CONDITIONER, &ctx, &e));
  g_assert_error(e, RAT_ERROR, RAT_ERROR_NOT_FOUND);
  g_assert_nonnull(strstr(e->message, "unknown conditioner type 'toy_cnd' (installed: toy_cond)"));
  g_clear_error(&e);
  rat_config_node_unref(n4);
  rat_config_node_unref(node);
  rat_params_free(params);
  rat_registry_free(reg);
}

static void test_cond_state(void) {
  RatScope s = rat_scope_push();
  RatCondState *st = rat_cond_state_new();
  RatTensor *h = rat_ones(RAT_SHAPE(2, 3));
  rat_cond_state_set(st, "h", h);
  g_assert_true(rat_cond_state_get(st, "h") == h);
  g_assert_null(rat_cond_state_get(st, "c"));
  rat_cond_state_set_noise(st, h);
  g_assert_true(rat_cond_state_noise(st) == h);
  rat_scope_pop(s); /* the state keeps its own references */
  g_assert_cmpfloat(rat_tensor_item(rat_select(rat_select(rat_cond_state_get(st, "h"), 0, 1), 0, 2)), ==, 1.0f);
  rat_cond_state_set(st, "h", NULL);
  g_assert_null(rat_cond_state_get(st, "h"));
  rat_cond_state_free(st);
}

int main(int argc, char **argv) {
  rat_test_init(&argc, &argv);
  g_test_add_func("/plugin/open", test_open);
  g_test_add_func("/plugin/no-entry", test_no_entry);
  g_test_add_func("/plugin/abi", test_abi);
  g_test_add_func("/plugin/size", test_size);
  g_test_add_func("/plugin/fields", test_fields);
  g_test_add_func("/plugin/name", test_name);
  g_test_add_func("/plugin/duplicate", test_duplicate);
  g_test_add_func("/plugin/init", test_init);
  g_test_add_func("/plugin/bad-table", test_bad_table);
  g_test_add_func("/plugin/good", test_good);
  g_test_add_func("/plugin/load-all", test_load_all);
  g_test_add_func("/registry/tables", test_tables);
  g_test_add_func("/module/build", test_build);
  g_test_add_func("/module/cond-state", test_cond_state);
  return g_test_run();
}
