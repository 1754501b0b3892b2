/* Bitmap text, lines and line plots on [3,H,W] pictures (draw.h). The font is the classic 5x7 LCD font: each
 * glyph is 5 column bytes, bit r of a column set when the pixel of row r (0 = top) is on. */
#include <ratfw/draw.h>
#include <ratfw/error.h>

#include <math.h>
#include <stdio.h>
#include <string.h>

static const guint8 font5x7[95][5] = {
    {0x00, 0x00, 0x00, 0x00, 0x00}, {0x00, 0x00, 0x5F, 0x00, 0x00}, {0x00, 0x07, 0x00, 0x07, 0x00}, /*   ! " */
    {0x14, 0x7F, 0x14, 0x7F, 0x14}, {0x24, 0x2A, 0x7F, 0x2A, 0x12}, {0x23, 0x13, 0x08, 0x64, 0x62}, /* # $ % */
    {0x36, 0x49, 0x55, 0x22, 0x50}, {0x00, 0x05, 0x03, 0x00, 0x00}, {0x00, 0x1C, 0x22, 0x41, 0x00}, /* & ' ( */
    {0x00, 0x41, 0x22, 0x1C, 0x00}, {0x08, 0x2A, 0x1C, 0x2A, 0x08}, {0x08, 0x08, 0x3E, 0x08, 0x08}, /* ) * + */
    {0x00, 0x50, 0x30, 0x00, 0x00}, {0x08, 0x08, 0x08, 0x08, 0x08}, {0x00, 0x60, 0x60, 0x00, 0x00}, /* , - . */
    {0x20, 0x10, 0x08, 0x04, 0x02}, {0x3E, 0x51, 0x49, 0x45, 0x3E}, {0x00, 0x42, 0x7F, 0x40, 0x00}, /* / 0 1 */
    {0x42, 0x61, 0x51, 0x49, 0x46}, {0x21, 0x41, 0x45, 0x4B, 0x31}, {0x18, 0x14, 0x12, 0x7F, 0x10}, /* 2 3 4 */
    {0x27, 0x45, 0x45, 0x45, 0x39}, {0x3C, 0x4A, 0x49, 0x49, 0x30}, {0x01, 0x71, 0x09, 0x05, 0x03}, /* 5 6 7 */
    {0x36, 0x49, 0x49, 0x49, 0x36}, {0x06, 0x49, 0x49, 0x29, 0x1E}, {0x00, 0x36, 0x36, 0x00, 0x00}, /* 8 9 : */
    {0x00, 0x56, 0x36, 0x00, 0x00}, {0x08, 0x14, 0x22, 0x41, 0x00}, {0x14, 0x14, 0x14, 0x14, 0x14}, /* ; < = */
    {0x00, 0x41, 0x22, 0x14, 0x08}, {0x02, 0x01, 0x51, 0x09, 0x06}, {0x32, 0x49, 0x79, 0x41, 0x3E}, /* > ? @ */
    {0x7E, 0x11, 0x11, 0x11, 0x7E}, {0x7F, 0x49, 0x49, 0x49, 0x36}, {0x3E, 0x41, 0x41, 0x41, 0x22}, /* A B C */
    {0x7F, 0x41, 0x41, 0x22, 0x1C}, {0x7F, 0x49, 0x49, 0x49, 0x41}, {0x7F, 0x09, 0x09, 0x01, 0x01}, /* D E F */
    {0x3E, 0x41, 0x41, 0x51, 0x32}, {0x7F, 0x08, 0x08, 0x08, 0x7F}, {0x00, 0x41, 0x7F, 0x41, 0x00}, /* G H I */
    {0x20, 0x40, 0x41, 0x3F, 0x01}, {0x7F, 0x08, 0x14, 0x22, 0x41}, {0x7F, 0x40, 0x40, 0x40, 0x40}, /* J K L */
    {0x7F, 0x02, 0x04, 0x02, 0x7F}, {0x7F, 0x04, 0x08, 0x10, 0x7F}, {0x3E, 0x41, 0x41, 0x41, 0x3E}, /* M N O */
    {0x7F, 0x09, 0x09, 0x09, 0x06}, {0x3E, 0x41, 0x51, 0x21, 0x5E}, {0x7F, 0x09, 0x19, 0x29, 0x46}, /* P Q R */
    {0x46, 0x49, 0x49, 0x49, 0x31}, {0x01, 0x01, 0x7F, 0x01, 0x01}, {0x3F, 0x40, 0x40, 0x40, 0x3F}, /* S T U */
    {0x1F, 0x20, 0x40, 0x20, 0x1F}, {0x7F, 0x20, 0x18, 0x20, 0x7F}, {0x63, 0x14, 0x08, 0x14, 0x63}, /* V W X */
    {0x03, 0x04, 0x78, 0x04, 0x03}, {0x61, 0x51, 0x49, 0x45, 0x43}, {0x00, 0x7F, 0x41, 0x41, 0x00}, /* Y Z [ */
    {0x02, 0x04, 0x08, 0x10, 0x20}, {0x00, 0x41, 0x41, 0x7F, 0x00}, {0x04, 0x02, 0x01, 0x02, 0x04}, /* \ ] ^ */
    {0x40, 0x40, 0x40, 0x40, 0x40}, {0x00, 0x01, 0x02, 0x04, 0x00}, {0x20, 0x54, 0x54, 0x54, 0x78}, /* _ ` a */
    {0x7F, 0x48, 0x44, 0x44, 0x38}, {0x38, 0x44, 0x44, 0x44, 0x20}, {0x38, 0x44, 0x44, 0x48, 0x7F}, /* b c d */
    {0x38, 0x54, 0x54, 0x54, 0x18}, {0x08, 0x7E, 0x09, 0x01, 0x02}, {0x08, 0x14, 0x54, 0x54, 0x3C}, /* e f g */
    {0x7F, 0x08, 0x04, 0x04, 0x78}, {0x00, 0x44, 0x7D, 0x40, 0x00}, {0x20, 0x40, 0x44, 0x3D, 0x00}, /* h i j */
    {0x00, 0x7F, 0x10, 0x28, 0x44}, {0x00, 0x41, 0x7F, 0x40, 0x00}, {0x7C, 0x04, 0x18, 0x04, 0x78}, /* k l m */
    {0x7C, 0x08, 0x04, 0x04, 0x78}, {0x38, 0x44, 0x44, 0x44, 0x38}, {0x7C, 0x14, 0x14, 0x14, 0x08}, /* n o p */
    {0x08, 0x14, 0x14, 0x18, 0x7C}, {0x7C, 0x08, 0x04, 0x04, 0x08}, {0x48, 0x54, 0x54, 0x54, 0x20}, /* q r s */
    {0x04, 0x3F, 0x44, 0x40, 0x20}, {0x3C, 0x40, 0x40, 0x20, 0x7C}, {0x1C, 0x20, 0x40, 0x20, 0x1C}, /* t u v */
    {0x3C, 0x40, 0x30, 0x40, 0x3C}, {0x44, 0x28, 0x10, 0x28, 0x44}, {0x0C, 0x50, 0x50, 0x50, 0x3C}, /* w x y */
    {0x44, 0x64, 0x54, 0x4C, 0x44}, {0x00, 0x08, 0x36, 0x41, 0x00}, {0x00, 0x00, 0x7F, 0x00, 0x00}, /* z { | */
    {0x00, 0x41, 0x36, 0x08, 0x00}, {0x02, 0x01, 0x02, 0x04, 0x02},                                 /* } ~ */
};

static void check_picture(const RatTensor *img) {
  rat_check(img->ndim == 3 && img->shape[0] == 3 && img->dtype == RAT_DTYPE_F32,
            "drawing needs a [3,H,W] f32 picture");
}

/* Pixel write for a contiguous or strided [3,H,W] picture, clipped. */
static inline void put(RatTensor *img, gint64 x, gint64 y, const float rgb[3]) {
  if (x < 0 || y < 0 || x >= img->shape[2] || y >= img->shape[1]) return;
  float *d = rat_tensor_data(img);
  for (int c = 0; c < 3; c++) d[c * img->stride[0] + y * img->stride[1] + x * img->stride[2]] = rgb[c];
}

static guint n_code_points(const char *text) {
  return g_utf8_validate(text, -1, NULL) ? (guint)g_utf8_strlen(text, -1) : (guint)strlen(text);
}

void rat_draw_text(RatTensor *img, int x, int y, const char *text, int scale, const float rgb[3]) {
  check_picture(img);
  if (scale < 1) scale = 1;
  gboolean utf8 = g_utf8_validate(text, -1, NULL);
  int cx = x;
  for (const char *p = text; *p; p = utf8 ? g_utf8_next_char(p) : p + 1) {
    gunichar u = utf8 ? g_utf8_get_char(p) : (guchar)*p;
    int gi = (u >= 32 && u <= 126) ? (int)u - 32 : '?' - 32;
    for (int col = 0; col < RAT_FONT_WIDTH; col++)
      for (int row = 0; row < RAT_FONT_HEIGHT; row++)
        if (font5x7[gi][col] >> row & 1)
          for (int sy = 0; sy < scale; sy++)
            for (int sx = 0; sx < scale; sx++) put(img, cx + col * scale + sx, y + row * scale + sy, rgb);
    cx += RAT_FONT_ADVANCE * scale;
  }
}

int rat_text_width(const char *text, int scale) { return (int)n_code_points(text) * RAT_FONT_ADVANCE * MAX(scale, 1); }

char **rat_text_wrap(const char *text, int max_chars) {
  if (max_chars < 1) max_chars = 1;
  GPtrArray *lines = g_ptr_array_new();
  char **words = g_strsplit_set(text, " \t\n", -1);
  GString *cur = g_string_new(NULL);
  guint cur_n = 0;
  for (char **w = words; *w; w++) {
    if (!**w) continue;
    char *word = g_utf8_validate(*w, -1, NULL) ? g_strdup(*w) : g_utf8_make_valid(*w, -1);
    guint wn = (guint)g_utf8_strlen(word, -1);
    const char *p = word;
    while (wn > (guint)max_chars) { /* a word longer than a line: cut it */
      if (cur_n) {
        g_ptr_array_add(lines, g_string_free(cur, FALSE));
        cur = g_string_new(NULL);
        cur_n = 0;
      }
      const char *e = g_utf8_offset_to_pointer(p, max_chars);
      g_ptr_array_add(lines, g_strndup(p, (gsize)(e - p)));
      p = e;
      wn -= (guint)max_chars;
    }
    if (cur_n && cur_n + 1 + wn > (guint)max_chars) {
      g_ptr_array_add(lines, g_string_free(cur, FALSE));
      cur = g_string_new(NULL);
      cur_n = 0;
    }
    if (wn) {
      if (cur_n) g_string_append_c(cur, ' '), cur_n++;
      g_string_append(cur, p);
      cur_n += wn;
    }
    g_free(word);
  }
  if (cur_n) g_ptr_array_add(lines, g_string_free(cur, FALSE));
  else g_string_free(cur, TRUE);
  g_strfreev(words);
  g_ptr_array_add(lines, NULL);
  return (char **)g_ptr_array_free(lines, FALSE);
}

void rat_draw_rect(RatTensor *img, int x, int y, int w, int h, const float rgb[3]) {
  check_picture(img);
  for (int yy = MAX(y, 0); yy < y + h && yy < img->shape[1]; yy++)
    for (int xx = MAX(x, 0); xx < x + w && xx < img->shape[2]; xx++) put(img, xx, yy, rgb);
}

void rat_draw_line(RatTensor *img, double x0, double y0, double x1, double y1, const float rgb[3]) {
  check_picture(img);
  double dx = x1 - x0, dy = y1 - y0;
  int n = (int)ceil(MAX(fabs(dx), fabs(dy))) + 1;
  if (n > 100000) n = 100000;
  for (int i = 0; i <= n; i++) {
    double t = (double)i / n;
    put(img, (gint64)lround(x0 + t * dx), (gint64)lround(y0 + t * dy), rgb);
  }
}

static void fmt_value(char *buf, gsize len, double v) {
  if (v != 0 && (fabs(v) >= 1e5 || fabs(v) < 1e-3)) g_snprintf(buf, len, "%.2e", v);
  else g_snprintf(buf, len, "%.4g", v);
}

RatTensor *rat_plot_lines(int width, int height, const char *title, guint n_series, const char *const *names,
                          const double *const *xs, const double *const *ys, const guint *n) {
  static const float palette[][3] = {{0.12f, 0.47f, 0.71f}, {1.0f, 0.5f, 0.05f}, {0.17f, 0.63f, 0.17f},
                                     {0.84f, 0.15f, 0.16f}, {0.58f, 0.4f, 0.74f}, {0.55f, 0.34f, 0.29f},
                                     {0.89f, 0.47f, 0.76f}, {0.5f, 0.5f, 0.5f}};
  const float black[3] = {0, 0, 0}, grey[3] = {0.85f, 0.85f, 0.85f};
  width = MAX(width, 160);
  height = MAX(height, 120);
  RatTensor *img = rat_ones(RAT_SHAPE(3, height, width));
  double xmin = INFINITY, xmax = -INFINITY, ymin = INFINITY, ymax = -INFINITY;
  for (guint s = 0; s < n_series; s++)
    for (guint i = 0; i < n[s]; i++)
      if (isfinite(xs[s][i]) && isfinite(ys[s][i])) {
        xmin = MIN(xmin, xs[s][i]), xmax = MAX(xmax, xs[s][i]);
        ymin = MIN(ymin, ys[s][i]), ymax = MAX(ymax, ys[s][i]);
      }
  if (!isfinite(xmin)) xmin = 0, xmax = 1, ymin = 0, ymax = 1;
  if (xmax <= xmin) xmax = xmin + 1;
  if (ymax <= ymin) ymax = ymin + 1;
  double pad = (ymax - ymin) * 0.05;
  ymin -= pad, ymax += pad;
  int left = 8 + 9 * RAT_FONT_ADVANCE, right = width - 10, top = 8 + RAT_FONT_LINE * 2, bottom = height - 8 - RAT_FONT_LINE * 2;
  if (title) rat_draw_text(img, left, 6, title, 1, black);
  for (int k = 0; k <= 4; k++) { /* horizontal grid */
    double yy = top + (bottom - top) * k / 4.0;
    rat_draw_line(img, left, yy, right, yy, grey);
  }
  rat_draw_line(img, left, top, left, bottom, black);
  rat_draw_line(img, left, bottom, right, bottom, black);
  char buf[32];
  fmt_value(buf, sizeof buf, ymax);
  rat_draw_text(img, 4, top - 3, buf, 1, black);
  fmt_value(buf, sizeof buf, ymin);
  rat_draw_text(img, 4, bottom - 4, buf, 1, black);
  fmt_value(buf, sizeof buf, xmin);
  rat_draw_text(img, left, bottom + 4, buf, 1, black);
  fmt_value(buf, sizeof buf, xmax);
  rat_draw_text(img, right - rat_text_width(buf, 1), bottom + 4, buf, 1, black);
  int lx = left + 6;
  for (guint s = 0; s < n_series; s++) {
    const float *c = palette[s % G_N_ELEMENTS(palette)];
    gboolean have = FALSE;
    double px = 0, py = 0;
    for (guint i = 0; i < n[s]; i++) {
      if (!isfinite(xs[s][i]) || !isfinite(ys[s][i])) {
        have = FALSE;
        continue;
      }
      double X = left + (xs[s][i] - xmin) / (xmax - xmin) * (right - left);
      double Y = bottom - (ys[s][i] - ymin) / (ymax - ymin) * (bottom - top);
      if (have) rat_draw_line(img, px, py, X, Y, c);
      else rat_draw_line(img, X, Y, X, Y, c);
      px = X, py = Y, have = TRUE;
    }
    if (names && names[s]) { /* legend along the bottom */
      rat_draw_rect(img, lx, height - 4 - RAT_FONT_HEIGHT, 8, RAT_FONT_HEIGHT, c);
      rat_draw_text(img, lx + 11, height - 4 - RAT_FONT_HEIGHT, names[s], 1, black);
      lx += 11 + rat_text_width(names[s], 1) + 12;
    }
  }
  return img;
}
