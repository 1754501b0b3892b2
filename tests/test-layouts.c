/* The dataset layouts of datasets/layouts.c (cub, oxford, faces, folder) on the fixtures written by
 * tools/make-layout-fixtures.py (Python's pickle at protocols 2-4, PIL for the expected pixels): split keys in
 * pickle order, captions (non-empty lines, CRLF files included), the CUB bounding-box crop (box, size and pixel
 * sums as PIL crops them), a corrupt image named in the error and counted under the skip policy, a pickle
 * that would run code refused without running it, and clear errors for missing captions and bad split lists. */
#include "config.h"

#include "testutil.h"

#include <json-glib/json-glib.h>
#include <ratfw/ratfw.h>
#include <string.h>
#include <unistd.h>

static RatRegistry *reg;
static JsonObject *expected;
static JsonParser *parser;

static char *fixture(const char *rel) {
  const char *src = g_getenv("RATFW_SRCDIR");
  return g_build_filename(src ? src : RATFW_SRCDIR, "tests", "fixtures", "layouts", rel, NULL);
}

/* Builds dataset @type with "key=value" overrides (NULL-terminated); NULL with @error on failure. */
static RatModule *build(const char *type, GError **error, ...) {
  GPtrArray *ov = g_ptr_array_new_with_free_func(g_free);
  va_list ap;
  va_start(ap, error);
  for (const char *s; (s = va_arg(ap, const char *));) g_ptr_array_add(ov, g_strdup(s));
  va_end(ap);
  g_ptr_array_add(ov, NULL);
  RatBuildContext ctx = {0};
  RatModule *m = rat_module_build_named(reg, type, "data", RAT_KIND_DATASET, (const char *const *)ov->pdata, &ctx, error);
  g_ptr_array_unref(ov);
  return m;
}

static RatModule *build_root(const char *type, const char *dir, const char *extra) {
  char *root = fixture(dir);
  char *arg = g_strdup_printf("root=%s", root);
  GError *e = NULL;
  RatModule *m = build(type, &e, arg, extra, NULL);
  g_assert_no_error(e);
  g_free(arg);
  g_free(root);
  return m;
}

/* Compares split @s of @m with expected[@kind][split]: keys, captions, and (when given) size and sums. */
static void check_split(RatModule *m, const char *kind, RatSplit s) {
  JsonArray *items = json_object_get_array_member(json_object_get_object_member(expected, kind),
                                                  s == RAT_SPLIT_TRAIN ? "train" : "test");
  g_assert_cmpuint(rat_dataset_count(m, s), ==, json_array_get_length(items));
  for (guint i = 0; i < json_array_get_length(items); i++) {
    JsonObject *it = json_array_get_object_element(items, i);
    char *name = rat_dataset_item_name(m, s, i);
    g_assert_cmpstr(name, ==, json_object_get_string_member(it, "key"));
    JsonArray *caps = json_object_get_array_member(it, "captions");
    g_assert_cmpuint(rat_dataset_n_captions(m, s, i), ==, json_array_get_length(caps));
    for (guint k = 0; k < json_array_get_length(caps); k++) {
      char *c = rat_dataset_caption(m, s, i, k);
      g_assert_cmpstr(c, ==, json_array_get_string_element(caps, k));
      g_free(c);
    }
    GError *e = NULL;
    RatImage *img = rat_dataset_image(m, s, i, &e);
    if (json_object_has_member(it, "corrupt")) {
      g_assert_null(img);
      g_assert_error(e, RAT_ERROR, RAT_ERROR_CORRUPT);
      g_assert_nonnull(strstr(e->message, name)); /* the message names the file */
      g_error_free(e);
    } else {
      g_assert_no_error(e);
      JsonArray *size = json_object_get_array_member(it, "size");
      g_assert_cmpint(img->width, ==, json_array_get_int_element(size, 0));
      g_assert_cmpint(img->height, ==, json_array_get_int_element(size, 1));
      JsonArray *sums = json_object_get_array_member(it, "sums");
      gint64 got[3] = {0, 0, 0};
      for (int p = 0; p < img->width * img->height; p++)
        for (int c = 0; c < 3; c++) got[c] += img->rgb[p * 3 + c];
      for (int c = 0; c < 3; c++) g_assert_cmpint(got[c], ==, json_array_get_int_element(sums, c));
      rat_image_free(img);
    }
    g_free(name);
  }
}

static void test_cub(void) {
  RatModule *m = build_root("cub", "birds", NULL);
  check_split(m, "cub", RAT_SPLIT_TRAIN); /* protocol 2 pickle */
  check_split(m, "cub", RAT_SPLIT_TEST);  /* protocol 3 */
  g_assert_cmpuint(rat_dataset_count(m, RAT_SPLIT_ALL), ==, 6);
  rat_module_free(m);
}

static void test_cub_no_crop(void) {
  RatModule *m = build_root("cub", "birds", "bbox_crop=false");
  JsonArray *items = json_object_get_array_member(json_object_get_object_member(expected, "cub"), "train");
  for (guint i = 0; i < rat_dataset_count(m, RAT_SPLIT_TRAIN); i++) {
    RatImage *img = rat_dataset_image(m, RAT_SPLIT_TRAIN, i, NULL);
    g_assert_nonnull(img);
    JsonArray *box = json_object_get_array_member(json_array_get_object_element(items, i), "box");
    /* The whole picture is at least as large as the crop box, and larger in one side at least. */
    g_assert_cmpint(img->width, >=, json_array_get_int_element(box, 2) - json_array_get_int_element(box, 0));
    g_assert_cmpint(img->height, >=, json_array_get_int_element(box, 3) - json_array_get_int_element(box, 1));
    g_assert_cmpint(img->width * img->height, >,
                    (json_array_get_int_element(box, 2) - json_array_get_int_element(box, 0)) *
                        (json_array_get_int_element(box, 3) - json_array_get_int_element(box, 1)));
    rat_image_free(img);
  }
  rat_module_free(m);
}

static void test_oxford_and_corrupt(void) {
  RatModule *m = build_root("oxford", "flower", NULL);
  check_split(m, "oxford", RAT_SPLIT_TRAIN); /* protocol 4 */
  check_split(m, "oxford", RAT_SPLIT_TEST);  /* protocol 2, holds the truncated JPEG */
  /* Through the loader: fail names the file, skip counts it and goes on. */
  RatLoaderOptions o = rat_loader_options_default(16, 1, 3);
  o.split = RAT_SPLIT_TEST;
  o.shuffle = FALSE;
  o.prefetch = 0;
  RatLoader *l = rat_loader_new(m, &o, NULL);
  RatBatch b = {0};
  GError *e = NULL;
  g_assert_true(rat_loader_next(l, &b, &e)); /* image_00004.jpg */
  rat_batch_clear(&b);
  g_assert_false(rat_loader_next(l, &b, &e));
  g_assert_nonnull(e);
  g_assert_nonnull(strstr(e->message, "image_00005.jpg"));
  g_clear_error(&e);
  rat_loader_free(l);
  o.on_error = RAT_ON_ERROR_SKIP;
  l = rat_loader_new(m, &o, NULL);
  for (int k = 0; k < 4; k++) {
    g_assert_true(rat_loader_next(l, &b, &e));
    g_assert_no_error(e);
    g_assert_cmpuint(b.items[0], ==, 0); /* only the readable item is ever served */
    const float *px = rat_tensor_data(rat_contiguous(b.images));
    for (gint64 q = 0; q < rat_tensor_numel(b.images); q++) g_assert_true(px[q] >= -1.0f && px[q] <= 1.0f);
    rat_batch_clear(&b);
  }
  g_assert_cmpuint(rat_loader_skipped(l), >=, 1);
  rat_loader_free(l);
  rat_module_free(m);
}

static void test_faces(void) {
  RatModule *m = build_root("faces", "faces", NULL);
  check_split(m, "faces", RAT_SPLIT_TRAIN);
  check_split(m, "faces", RAT_SPLIT_TEST);
  rat_module_free(m);
}

static void check_folder_split(RatModule *m, RatSplit s) {
  JsonArray *names = json_object_get_array_member(json_object_get_object_member(expected, "folder"),
                                                  s == RAT_SPLIT_TRAIN ? "train" : "test");
  g_assert_cmpuint(rat_dataset_count(m, s), ==, json_array_get_length(names));
  for (guint i = 0; i < json_array_get_length(names); i++) {
    char *n = rat_dataset_item_name(m, s, i);
    g_assert_cmpstr(n, ==, json_array_get_string_element(names, i));
    g_free(n);
    char *c = rat_dataset_caption(m, s, i, 1);
    g_assert_cmpstr(c, ==, "second line");
    g_free(c);
    RatImage *img = rat_dataset_image(m, s, i, NULL);
    g_assert_nonnull(img);
    g_assert_cmpint(img->height, ==, 16);
    rat_image_free(img);
  }
}

static void test_folder(void) {
  char *list = fixture("folder-test.txt");
  char *arg = g_strdup_printf("test_list=%s", list);
  RatModule *m = build_root("folder", "folder", arg);
  check_folder_split(m, RAT_SPLIT_TRAIN);
  check_folder_split(m, RAT_SPLIT_TEST);
  rat_module_free(m);
  /* A hash-chosen split: all items somewhere, stable from build to build, ratio 1 puts all in test. */
  m = build_root("folder", "folder", NULL);
  g_assert_cmpuint(rat_dataset_count(m, RAT_SPLIT_ALL), ==, 5);
  guint ntest = rat_dataset_count(m, RAT_SPLIT_TEST);
  rat_module_free(m);
  m = build_root("folder", "folder", NULL);
  g_assert_cmpuint(rat_dataset_count(m, RAT_SPLIT_TEST), ==, ntest);
  rat_module_free(m);
  m = build_root("folder", "folder", "test_ratio=1");
  g_assert_cmpuint(rat_dataset_count(m, RAT_SPLIT_TEST), ==, 5);
  rat_module_free(m);
  /* a symlink to an ancestor directory is not followed (no endless walk) */
  char *tmp = g_dir_make_tmp("ratfw-folder-XXXXXX", NULL);
  char *src = fixture("folder");
  char *cmd = g_strdup_printf("cp -r '%s/.' '%s/' && ln -s .. '%s/cats/loop'", src, tmp, tmp);
  g_assert_cmpint(system(cmd), ==, 0);
  char *rootarg = g_strdup_printf("root=%s", tmp);
  GError *e = NULL;
  m = build("folder", &e, rootarg, NULL);
  g_assert_no_error(e);
  g_assert_cmpuint(rat_dataset_count(m, RAT_SPLIT_ALL), ==, 5);
  rat_module_free(m);
  g_free(cmd);
  cmd = g_strdup_printf("rm -rf '%s'", tmp);
  g_assert_cmpint(system(cmd), ==, 0);
  g_free(cmd);
  g_free(rootarg);
  g_free(src);
  g_free(tmp);
  g_free(arg);
  g_free(list);
}

static void test_errors(void) {
  GError *e = NULL;
  /* A pickle holding an object whose unpickling would call os.system: refused, nothing runs. */
  unlink("/tmp/ratfw-pickle-pwned");
  char *evil = fixture("evil");
  char *arg = g_strdup_printf("root=%s", evil);
  g_assert_null(build("faces", &e, arg, NULL));
  g_assert_error(e, RAT_ERROR, RAT_ERROR_UNSUPPORTED);
  g_assert_nonnull(strstr(e->message, "filenames.pickle"));
  g_test_message("evil pickle: %s", e->message);
  g_clear_error(&e);
  g_assert_false(g_file_test("/tmp/ratfw-pickle-pwned", G_FILE_TEST_EXISTS));
  g_free(arg);
  g_free(evil);

  /* No root: the message says what to set. */
  g_assert_null(build("cub", &e, NULL));
  g_assert_error(e, RAT_ERROR, RAT_ERROR_CONFIG);
  g_assert_nonnull(strstr(e->message, "root"));
  g_clear_error(&e);

  /* A missing caption file is named, with the item. */
  char *tmp = g_dir_make_tmp("ratfw-layouts-XXXXXX", NULL);
  char *src = fixture("faces");
  char *cmd = g_strdup_printf("cp -r '%s/.' '%s/' && rm '%s/text/10.txt'", src, tmp, tmp);
  g_assert_cmpint(system(cmd), ==, 0);
  arg = g_strdup_printf("root=%s", tmp);
  g_assert_null(build("faces", &e, arg, NULL));
  g_assert_error(e, RAT_ERROR, RAT_ERROR_IO);
  g_assert_nonnull(strstr(e->message, "text/10.txt"));
  g_test_message("missing caption: %s", e->message);
  g_clear_error(&e);
  g_free(arg);
  g_free(cmd);

  /* A folder image without captions, and a test list naming nothing there. */
  char *fsrc = fixture("folder");
  cmd = g_strdup_printf("rm -rf '%s' && mkdir '%s' && cp -r '%s/.' '%s/' && rm '%s/lone.txt'", tmp, tmp, fsrc, tmp, tmp);
  g_assert_cmpint(system(cmd), ==, 0);
  arg = g_strdup_printf("root=%s", tmp);
  g_assert_null(build("folder", &e, arg, NULL));
  g_assert_error(e, RAT_ERROR, RAT_ERROR_IO);
  g_assert_nonnull(strstr(e->message, "lone.txt"));
  g_clear_error(&e);
  char *list = g_build_filename(tmp, "list.txt", NULL);
  g_assert_true(g_file_set_contents(list, "cats/tabby\nno/such\n", -1, NULL));
  char *arg2 = g_strdup_printf("test_list=%s", list);
  char *fixed = fixture("folder");
  char *arg3 = g_strdup_printf("root=%s", fixed);
  g_assert_null(build("folder", &e, arg3, arg2, NULL));
  g_assert_error(e, RAT_ERROR, RAT_ERROR_NOT_FOUND);
  g_assert_nonnull(strstr(e->message, "1 of the 2 names"));
  g_clear_error(&e);
  cmd = g_strdup_printf("rm -rf '%s'", tmp);
  g_assert_cmpint(system(cmd), ==, 0);
  g_free(cmd);
  g_free(arg);
  g_free(arg2);
  g_free(arg3);
  g_free(list);
  g_free(fixed);
  g_free(fsrc);
  g_free(src);
  g_free(tmp);
}

/* A CUB batch through the reference augmentation: shapes and range. */
static void test_cub_loader(void) {
  RatModule *m = build_root("cub", "birds", NULL);
  RatLoaderOptions o = rat_loader_options_default(16, 2, 11);
  GError *e = NULL;
  RatLoader *l = rat_loader_new(m, &o, &e);
  g_assert_no_error(e);
  g_assert_cmpuint(rat_loader_batches_per_epoch(l), ==, 2);
  RatBatch b = {0};
  g_assert_true(rat_loader_next(l, &b, &e));
  g_assert_cmpint(rat_tensor_dim(b.images, 0), ==, 2);
  g_assert_cmpint(rat_tensor_dim(b.images, 2), ==, 16);
  RatTensor *c = rat_contiguous(b.images);
  const float *x = rat_tensor_data(c);
  for (gint64 k = 0; k < rat_tensor_numel(c); k++) g_assert_true(x[k] >= -1.0f && x[k] <= 1.0f);
  rat_batch_clear(&b);
  rat_loader_free(l);
  rat_module_free(m);
}

int main(int argc, char **argv) {
  rat_test_init(&argc, &argv);
  reg = rat_registry_new();
  GPtrArray *fails = g_ptr_array_new_with_free_func(g_free);
  rat_registry_load_all(reg, fails);
  char *path = fixture("expected.json");
  parser = json_parser_new();
  GError *e = NULL;
  if (!json_parser_load_from_file(parser, path, &e)) g_error("%s: %s (run tools/make-layout-fixtures.py)", path, e->message);
  expected = json_node_get_object(json_parser_get_root(parser));
  g_test_add_func("/layouts/cub", test_cub);
  g_test_add_func("/layouts/cub-no-crop", test_cub_no_crop);
  g_test_add_func("/layouts/cub-loader", test_cub_loader);
  g_test_add_func("/layouts/oxford-corrupt-image", test_oxford_and_corrupt);
  g_test_add_func("/layouts/faces", test_faces);
  g_test_add_func("/layouts/folder", test_folder);
  g_test_add_func("/layouts/errors", test_errors);
  int r = g_test_run();
  g_object_unref(parser);
  g_free(path);
  g_ptr_array_unref(fails);
  rat_registry_free(reg);
  return r;
}
