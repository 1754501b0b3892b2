/* PNG I/O: files written by ref_nn.py with zlib only (8/16-bit, gray/gray+alpha/RGB/RGBA, palettes with and
 * without tRNS, every row filter, Adam7) read back exactly; write/read round trips with clamping and rounding;
 * missing, non-PNG, truncated and bit-flipped files give a GError naming the file instead of a crash. */
#include "config.h"

#include "testutil.h"

#include <glib/gstdio.h>
#include <math.h>

static char *fixture_png(const char *name) {
  const char *src = g_getenv("RATFW_SRCDIR");
  return g_build_filename(src ? src : RATFW_SRCDIR, "tests", "fixtures", "png", name, NULL);
}

static void test_read_fixtures(void) {
  RatFixture *f = rat_fixture_open("nn_png");
  guint n = json_array_get_length(f->cases);
  g_assert_cmpuint(n, >=, 11);
  for (guint i = 0; i < n; i++) {
    RatScope s = rat_scope_push();
    JsonObject *c = json_array_get_object_element(f->cases, i);
    const char *file = json_object_get_string_member(c, "file");
    char *path = fixture_png(file);
    GError *e = NULL;
    RatTensor *img = rat_png_read(path, &e);
    if (!img) g_error("%s: %s", file, e->message);
    RatTensor *want = rat_fixture_get(f, "c%u.want", i);
    char *ws = rat_shape_to_string(rat_tensor_shape(want)), *gs = rat_shape_to_string(rat_tensor_shape(img));
    g_assert_cmpstr(gs, ==, ws);
    g_free(ws);
    g_free(gs);
    /* exact samples: a one-level error would be 1/255 or 1/65535 */
    rat_assert_close(img, want, 1e-7, 0, file);
    g_free(path);
    rat_scope_pop(s);
  }
  rat_fixture_close(f);
}

static void test_round_trip(void) {
  RatScope s = rat_scope_push();
  char *dir = g_dir_make_tmp("ratfw-png-XXXXXX", NULL);
  char *path = g_build_filename(dir, "out.png", NULL);
  for (int C = 1; C <= 4; C++) {
    RatTensor *x = rat_test_uniform(RAT_SHAPE(C, 6, 9), 0, 1, 40 + C);
    float *p = rat_tensor_data(x);
    gint64 n = rat_tensor_numel(x);
    for (gint64 i = 0; i < n; i++) p[i] = roundf(p[i] * 255.0f) / 255.0f;
    GError *e = NULL;
    g_assert_true(rat_png_write(path, x, &e));
    RatTensor *y = rat_png_read(path, &e);
    g_assert_nonnull(y);
    g_assert_cmpint(y->shape[0], ==, C);
    rat_assert_close(y, x, 1e-7, 0, "round trip");
  }
  /* clamping, rounding half up, NaN -> 0; a strided (transposed) input */
  float v[6] = {-0.5f, 1.5f, 0.5f, NAN, 0.2f / 255.0f, 0.6f / 255.0f};
  RatTensor *x = rat_from_data(RAT_SHAPE(1, 2, 3), v);
  GError *e = NULL;
  g_assert_true(rat_png_write(path, rat_transpose(x, 1, 2), &e));
  RatTensor *y = rat_png_read(path, &e);
  /* the transpose [1,3,2] has rows (v0 v3) (v1 v4) (v2 v5); NaN is written as 0 */
  float wt[6] = {0, 0, 1, 0, 128.0f / 255, 1.0f / 255};
  float got[6];
  g_assert_cmpint(y->shape[1], ==, 3);
  g_assert_cmpint(y->shape[2], ==, 2);
  rat_tensor_read(y, got);
  for (int i = 0; i < 6; i++) g_assert_cmpfloat_with_epsilon(got[i], wt[i], 1e-7);
  /* no temporary file left behind */
  GDir *d = g_dir_open(dir, 0, NULL);
  int count = 0;
  while (g_dir_read_name(d)) count++;
  g_dir_close(d);
  g_assert_cmpint(count, ==, 1);
  /* bad shapes are GErrors */
  g_assert_false(rat_png_write(path, rat_zeros(RAT_SHAPE(5, 2, 2)), &e));
  g_assert_error(e, RAT_ERROR, RAT_ERROR_SHAPE);
  g_clear_error(&e);
  g_assert_false(rat_png_write(path, rat_zeros(RAT_SHAPE(2, 2)), &e));
  g_assert_error(e, RAT_ERROR, RAT_ERROR_SHAPE);
  g_clear_error(&e);
  char *bad = g_build_filename(dir, "no-such-dir", "x.png", NULL);
  g_assert_false(rat_png_write(bad, rat_zeros(RAT_SHAPE(1, 2, 2)), &e));
  g_assert_error(e, RAT_ERROR, RAT_ERROR_IO);
  g_clear_error(&e);
  g_free(bad);
  g_unlink(path);
  g_rmdir(dir);
  g_free(path);
  g_free(dir);
  rat_scope_pop(s);
}

static void test_errors(void) {
  RatScope s = rat_scope_push();
  char *dir = g_dir_make_tmp("ratfw-png-XXXXXX", NULL);
  char *path = g_build_filename(dir, "bad.png", NULL);
  GError *e = NULL;
  /* missing */
  char *missing = g_build_filename(dir, "missing.png", NULL);
  g_assert_null(rat_png_read(missing, &e));
  g_assert_error(e, RAT_ERROR, RAT_ERROR_IO);
  g_assert_nonnull(strstr(e->message, missing));
  g_clear_error(&e);
  g_free(missing);
  /* not a PNG */
  g_assert_true(g_file_set_contents(path, "hello, this is text\n", -1, NULL));
  g_assert_null(rat_png_read(path, &e));
  g_assert_error(e, RAT_ERROR, RAT_ERROR_CORRUPT);
  g_assert_nonnull(strstr(e->message, path));
  g_clear_error(&e);

  char *good = fixture_png("rgb8.png");
  gchar *data;
  gsize len;
  g_assert_true(g_file_get_contents(good, &data, &len, NULL));
  /* every truncation fails cleanly */
  for (gsize cut = 0; cut < len; cut++) {
    g_assert_true(g_file_set_contents(path, data, (gssize)cut, NULL));
    RatTensor *t = rat_png_read(path, &e);
    if (t) g_error("truncated to %" G_GSIZE_FORMAT " of %" G_GSIZE_FORMAT " bytes but read succeeded", cut, len);
    g_assert_error(e, RAT_ERROR, RAT_ERROR_CORRUPT);
    g_assert_nonnull(strstr(e->message, path));
    g_clear_error(&e);
  }
  /* one flipped bit anywhere after the signature: an error (CRC, zlib, header check) or, never, a crash */
  int failures = 0;
  for (gsize i = 8; i < len; i++) {
    data[i] ^= 0x10;
    g_assert_true(g_file_set_contents(path, data, (gssize)len, NULL));
    RatTensor *t = rat_png_read(path, &e);
    if (!t) {
      g_assert_error(e, RAT_ERROR, RAT_ERROR_CORRUPT);
      g_clear_error(&e);
      failures++;
    }
    data[i] ^= 0x10;
  }
  /* Every chunk of this file is critical and CRC-checked, so every flip is detected. */
  g_assert_cmpint(failures, ==, (int)(len - 8));
  g_free(data);
  g_free(good);
  g_unlink(path);
  g_rmdir(dir);
  g_free(path);
  g_free(dir);
  rat_scope_pop(s);
}

int main(int argc, char **argv) {
  rat_test_init(&argc, &argv);
  g_test_add_func("/png/read-fixtures", test_read_fixtures);
  g_test_add_func("/png/round-trip", test_round_trip);
  g_test_add_func("/png/errors", test_errors);
  return g_test_run();
}
