/* The shapes_accuracy metric (plugins/shapes_accuracy.c) driven by hand on real renderings of the shapes dataset:
 * images of the test split (through the loader's plain resize, as a generator's training data) measured against their
 * own captions' ground truth must score (nearly) 100% on every attribute; the same images measured against the
 * captions of other items (shuffled) must score near chance. Runs at 64 and 32 px, one and several objects, plain
 * and two-tone backgrounds. */
#include "config.h"

#include "testutil.h"

#include <string.h>

static RatRegistry *reg;

typedef struct {
  double all, kind, color, position, size, background;
} Scores;

/* Measures the first @n test items rendered at @size px, against item (i + shift) mod n's ground truth. */
static Scores measure(int size, int max_objects, guint n, guint shift) {
  char *yaml = g_strdup_printf("{type: shapes, seed: 7, render_size: 64, test_size: %u, max_objects: %d}", n, max_objects);
  RatConfigNode *node = rat_config_parse_string(yaml, -1, "<test>", NULL);
  g_free(yaml);
  RatModuleSpec spec = {.type_name = "shapes", .node = node};
  GError *e = NULL;
  RatModule *ds = rat_dataset_build(reg, &spec, &e);
  g_assert_no_error(e);
  RatLoaderOptions lo = rat_loader_options_default(size, n, 0);
  lo.split = RAT_SPLIT_TEST;
  lo.shuffle = FALSE;
  lo.drop_last = FALSE;
  lo.prefetch = 0;
  lo.transform.mode = RAT_RESIZE_PLAIN;
  lo.transform.random_crop = FALSE;
  lo.transform.random_flip = FALSE;
  RatLoader *l = rat_loader_new(ds, &lo, &e);
  g_assert_no_error(e);
  RatBatch b = {0};
  g_assert_true(rat_loader_next(l, &b, &e));
  g_assert_cmpuint(b.n, ==, n);
  guint *items = g_new(guint, n);
  for (guint i = 0; i < n; i++) items[i] = (b.items[i] + shift) % n;
  RatModule *m = rat_module_build_named(reg, "shapes_accuracy", "eval.shapes_accuracy", RAT_KIND_METRIC, NULL,
                                        &(RatBuildContext){0}, &e);
  g_assert_no_error(e);
  RatEvalContext ctx = {.registry = reg, .dataset = ds, .split = RAT_SPLIT_TEST, .samples = n, .batch = n,
                        .image_size = size};
  const RatMetricIface *mi = RAT_METRIC_IFACE(m);
  RatMetricResult *res = rat_metric_result_new();
  g_assert_true(mi->begin(m, &ctx, res, &e));
  RatMetricBatch mb = {.n = n, .images = b.images, .captions = (const char *const *)b.captions, .items = items};
  g_assert_true(mi->accumulate(m, &ctx, &mb, &e));
  g_assert_true(mi->finish(m, &ctx, res, &e));
  g_assert_no_error(e);
  Scores s;
  const struct {
    const char *key;
    double *v;
  } keys[] = {{"shapes_accuracy", &s.all}, {"shapes_accuracy_kind", &s.kind}, {"shapes_accuracy_color", &s.color},
              {"shapes_accuracy_position", &s.position}, {"shapes_accuracy_size", &s.size},
              {"shapes_accuracy_background", &s.background}};
  for (guint k = 0; k < G_N_ELEMENTS(keys); k++) g_assert_true(rat_metric_result_get(res, keys[k].key, keys[k].v));
  g_test_message("%d px, up to %d objects, shift %u: all %.3f kind %.3f color %.3f position %.3f size %.3f "
                 "background %.3f", size, max_objects, shift, s.all, s.kind, s.color, s.position, s.size, s.background);
  rat_metric_result_free(res);
  rat_module_free(m);
  g_free(items);
  rat_batch_clear(&b);
  rat_loader_free(l);
  rat_module_free(ds);
  rat_config_node_unref(node);
  return s;
}

/* Real renderings measured against their own captions. */
static void test_real(void) {
  RatScope sc = rat_scope_push();
  Scores s64 = measure(64, 1, 200, 0);
  g_assert_cmpfloat(s64.all, >=, 0.99);
  g_assert_cmpfloat(s64.size, >=, 0.99);
  g_assert_cmpfloat(s64.background, >=, 0.99);
  Scores s32 = measure(32, 1, 200, 0);
  g_assert_cmpfloat(s32.color, >=, 0.99);
  g_assert_cmpfloat(s32.position, >=, 0.99);
  g_assert_cmpfloat(s32.kind, >=, 0.95);
  g_assert_cmpfloat(s32.background, >=, 0.99);
  Scores multi = measure(64, 4, 100, 0);
  g_assert_cmpfloat(multi.kind, >=, 0.97);
  g_assert_cmpfloat(multi.color, >=, 0.99);
  g_assert_cmpfloat(multi.position, >=, 0.99);
  rat_scope_pop(sc);
}

/* The same images against another item's captions: about chance (1/8 kinds, 1/12 colours, 1/9 cells). */
static void test_shuffled(void) {
  RatScope sc = rat_scope_push();
  Scores s = measure(64, 1, 200, 1);
  g_assert_cmpfloat(s.all, <=, 0.03);
  g_assert_cmpfloat(s.kind, <=, 0.25);
  g_assert_cmpfloat(s.color, <=, 0.25);
  g_assert_cmpfloat(s.position, <=, 0.25);
  rat_scope_pop(sc);
}

int main(int argc, char **argv) {
  rat_test_init(&argc, &argv);
  reg = rat_registry_new();
  GPtrArray *failures = g_ptr_array_new_with_free_func((GDestroyNotify)g_error_free);
  rat_registry_load_all(reg, failures);
  g_ptr_array_unref(failures);
  if (!rat_registry_lookup(reg, "shapes_accuracy") || !rat_registry_lookup(reg, "shapes")) {
    g_printerr("the shapes_accuracy and shapes plugins must be on RATFW_PLUGIN_PATH\n");
    return 1;
  }
  g_test_add_func("/shapes_accuracy/real", test_real);
  g_test_add_func("/shapes_accuracy/shuffled", test_shuffled);
  int st = g_test_run();
  rat_registry_free(reg);
  return st;
}
