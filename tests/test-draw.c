/* Bitmap text, wrapping and plots (core/io/draw.c). */
#include "config.h"

#include "testutil.h"

#include <ratfw/draw.h>

#include <math.h>

static const float black[3] = {0, 0, 0};

/* Pixel (x, y) of channel 0 is dark. */
static gboolean dark(RatTensor *img, int x, int y) {
  return rat_tensor_data(img)[y * img->shape[2] + x] < 0.5f;
}

static void test_glyphs(void) {
  RatScope s = rat_scope_push();
  RatTensor *img = rat_ones(RAT_SHAPE(3, 10, 20));
  rat_draw_text(img, 1, 1, "I-", 1, black);
  /* 'I' = columns 00 41 7F 41 00: the middle column (x = 1 + 2) is fully on, its neighbours only top and bottom */
  for (int r = 0; r < 7; r++) g_assert_true(dark(img, 3, 1 + r));
  g_assert_true(dark(img, 2, 1) && dark(img, 2, 7) && !dark(img, 2, 4));
  g_assert_false(dark(img, 1, 4)); /* column 0 empty */
  /* '-' = 08 in every column: row 3 only, starting one advance (6 px) later */
  for (int c = 0; c < 5; c++) g_assert_true(dark(img, 7 + c, 4) && !dark(img, 7 + c, 3));
  /* scale 2 doubles every pixel; drawing is clipped at the border (no crash) */
  RatTensor *big = rat_ones(RAT_SHAPE(3, 16, 12));
  rat_draw_text(big, 0, 0, "I", 2, black);
  g_assert_true(dark(big, 4, 0) && dark(big, 5, 0) && dark(big, 4, 13) && !dark(big, 4, 14));
  rat_draw_text(big, 10, 10, "WWW", 3, black);
  /* non-ASCII becomes '?' (one glyph per code point) */
  g_assert_cmpint(rat_text_width("caf\xc3\xa9", 1), ==, 4 * RAT_FONT_ADVANCE);
  RatTensor *a = rat_ones(RAT_SHAPE(3, 9, 8)), *b = rat_ones(RAT_SHAPE(3, 9, 8));
  rat_draw_text(a, 0, 0, "\xc3\xa9", 1, black);
  rat_draw_text(b, 0, 0, "?", 1, black);
  rat_assert_close(a, b, 0, 0, "non-ASCII drawn as ?");
  rat_scope_pop(s);
}

static void test_wrap(void) {
  char **l = rat_text_wrap("a small red circle at the top left", 12);
  g_assert_cmpuint(g_strv_length(l), ==, 3);
  g_assert_cmpstr(l[0], ==, "a small red");
  g_assert_cmpstr(l[1], ==, "circle at");
  g_assert_cmpstr(l[2], ==, "the top left");
  g_strfreev(l);
  l = rat_text_wrap("abcdefghij xy", 4); /* a long word is cut */
  g_assert_cmpuint(g_strv_length(l), ==, 4);
  g_assert_cmpstr(l[0], ==, "abcd");
  g_assert_cmpstr(l[2], ==, "ij");
  g_assert_cmpstr(l[3], ==, "xy");
  g_strfreev(l);
  l = rat_text_wrap("", 10);
  g_assert_cmpuint(g_strv_length(l), ==, 0);
  g_strfreev(l);
}

static void test_plot(void) {
  RatScope s = rat_scope_push();
  double x[5] = {0, 1, 2, 3, 4}, y0[5] = {4, 3, 2, 1, 0}, y1[5] = {0, NAN, 1, 1, 2};
  const double *xs[2] = {x, x}, *ys[2] = {y0, y1};
  guint n[2] = {5, 5};
  const char *names[2] = {"loss_d", "loss_g"};
  RatTensor *img = rat_plot_lines(320, 200, "losses", 2, names, xs, ys, n);
  g_assert_cmpint(img->shape[1], ==, 200);
  g_assert_cmpint(img->shape[2], ==, 320);
  /* both series' colours are present */
  const float *d = rat_tensor_data(img);
  int blue = 0, orange = 0;
  for (gint64 i = 0; i < 200 * 320; i++) {
    if (fabsf(d[i] - 0.12f) < 1e-3f && fabsf(d[2 * 200 * 320 + i] - 0.71f) < 1e-3f) blue++;
    if (fabsf(d[i] - 1.0f) < 1e-3f && fabsf(d[200 * 320 + i] - 0.5f) < 1e-3f) orange++;
  }
  g_assert_cmpint(blue, >, 100);
  g_assert_cmpint(orange, >, 50);
  const char *out = g_getenv("RATFW_DRAW_PNG");
  if (out) g_assert_true(rat_png_write(out, img, NULL));
  rat_scope_pop(s);
}

int main(int argc, char **argv) {
  rat_test_init(&argc, &argv);
  g_test_add_func("/draw/glyphs", test_glyphs);
  g_test_add_func("/draw/wrap", test_wrap);
  g_test_add_func("/draw/plot", test_plot);
  return g_test_run();
}
