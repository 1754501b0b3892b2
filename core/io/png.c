/* PNG reading and writing with libpng 1.6 (https://www.w3.org/TR/png/). Images are [C,H,W] f32 in [0,1]:
 * C = 1 gray, 2 gray+alpha, 3 RGB, 4 RGBA as stored (palettes expand to RGB, or RGBA with a tRNS chunk; 1/2/4-bit
 * gray to 8 bits; 16-bit samples are divided by 65535). libpng reports errors by longjmp: all state that must be
 * freed on that path lives in a heap context created before setjmp, so a corrupt file is a GError, not a leak. */
#include "config.h"

#include "ratfw-private.h"
#include <ratfw/error.h>
#include <ratfw/io.h>

#include <math.h>
#include <png.h>

#define MAX_SIDE 32768

typedef struct {
  const guint8 *data;
  gsize len, pos;
  char msg[256];
  guint8 *pixels;
  png_bytep *rows;
  GByteArray *out; /* writing */
} PngCtx;

static void on_error(png_structp png, png_const_charp msg) {
  PngCtx *c = png_get_error_ptr(png);
  g_strlcpy(c->msg, msg, sizeof(c->msg));
  png_longjmp(png, 1);
}

static void on_warning(png_structp png, png_const_charp msg) {}

static void read_fn(png_structp png, png_bytep out, png_size_t n) {
  PngCtx *c = png_get_io_ptr(png);
  if (n > c->len - c->pos) png_error(png, "unexpected end of file (truncated?)");
  memcpy(out, c->data + c->pos, n);
  c->pos += n;
}

static void ctx_free(PngCtx *c) {
  g_free(c->pixels);
  g_free(c->rows);
  if (c->out) g_byte_array_unref(c->out);
  g_free(c);
}

RatTensor *rat_png_read(const char *path, GError **error) {
  gchar *contents = NULL;
  gsize len = 0;
  GError *e = NULL;
  if (!g_file_get_contents(path, &contents, &len, &e)) {
    g_set_error(error, RAT_ERROR, RAT_ERROR_IO, "cannot read %s: %s", path, e->message);
    g_error_free(e);
    return NULL;
  }
  if (len < 8 || png_sig_cmp((png_const_bytep)contents, 0, 8)) {
    g_set_error(error, RAT_ERROR, RAT_ERROR_CORRUPT, "%s: not a PNG file (bad signature)", path);
    g_free(contents);
    return NULL;
  }
  PngCtx *c = g_new0(PngCtx, 1);
  c->data = (const guint8 *)contents;
  c->len = len;
  png_structp png = png_create_read_struct(PNG_LIBPNG_VER_STRING, c, on_error, on_warning);
  png_infop info = png ? png_create_info_struct(png) : NULL;
  if (!png || !info) {
    g_set_error(error, RAT_ERROR, RAT_ERROR_FAILED, "%s: cannot initialise libpng", path);
    png_destroy_read_struct(png ? &png : NULL, NULL, NULL);
    ctx_free(c);
    g_free(contents);
    return NULL;
  }
  /* Only png, info, c and contents are live across the jump; none of them changes after setjmp. */
  if (setjmp(png_jmpbuf(png))) {
    g_set_error(error, RAT_ERROR, RAT_ERROR_CORRUPT, "%s: corrupt or truncated PNG: %s", path, c->msg);
    png_destroy_read_struct(&png, &info, NULL);
    ctx_free(c);
    g_free(contents);
    return NULL;
  }
  png_set_read_fn(png, c, read_fn);
  png_set_user_limits(png, MAX_SIDE, MAX_SIDE);
  png_read_info(png, info);
  int color = png_get_color_type(png, info), depth = png_get_bit_depth(png, info);
  if (color == PNG_COLOR_TYPE_PALETTE) png_set_palette_to_rgb(png);
  if (color == PNG_COLOR_TYPE_GRAY && depth < 8) png_set_expand_gray_1_2_4_to_8(png);
  if (png_get_valid(png, info, PNG_INFO_tRNS)) png_set_tRNS_to_alpha(png);
  png_set_interlace_handling(png);
  png_read_update_info(png, info);
  png_uint_32 W = png_get_image_width(png, info), H = png_get_image_height(png, info);
  int C = png_get_channels(png, info);
  int bits = png_get_bit_depth(png, info);
  gsize rowbytes = png_get_rowbytes(png, info);
  if (C < 1 || C > 4 || (bits != 8 && bits != 16) || rowbytes != (gsize)W * C * (bits / 8))
    png_error(png, "unsupported pixel layout after expansion");
  c->pixels = g_malloc(MAX(rowbytes * H, 1));
  c->rows = g_new(png_bytep, MAX(H, 1));
  for (png_uint_32 y = 0; y < H; y++) c->rows[y] = c->pixels + (gsize)y * rowbytes;
  png_read_image(png, c->rows);
  png_read_end(png, NULL); /* checks the chunks after the image data, through IEND */

  RatTensor *t = rat_empty(RAT_SHAPE(C, H, W));
  float *o = rat_tensor_data(t);
  gsize plane = (gsize)H * W;
  for (png_uint_32 y = 0; y < H; y++) {
    const guint8 *r = c->rows[y];
    for (png_uint_32 x = 0; x < W; x++)
      for (int ch = 0; ch < C; ch++) {
        gsize k = (gsize)x * C + ch;
        float v = bits == 16 ? (float)((r[2 * k] << 8) | r[2 * k + 1]) / 65535.0f : (float)r[k] / 255.0f;
        o[ch * plane + (gsize)y * W + x] = v;
      }
  }
  png_destroy_read_struct(&png, &info, NULL);
  ctx_free(c);
  g_free(contents);
  return t;
}

static void write_fn(png_structp png, png_bytep data, png_size_t n) {
  PngCtx *c = png_get_io_ptr(png);
  g_byte_array_append(c->out, data, (guint)n);
}

static void flush_fn(png_structp png) {}

gboolean rat_png_write(const char *path, RatTensor *chw, GError **error) {
  if (chw->ndim != 3 || chw->shape[0] < 1 || chw->shape[0] > 4 || chw->shape[1] < 1 || chw->shape[2] < 1 ||
      chw->shape[1] > MAX_SIDE || chw->shape[2] > MAX_SIDE || chw->dtype != RAT_DTYPE_F32) {
    char *d = rat_tensor_describe(chw);
    g_set_error(error, RAT_ERROR, RAT_ERROR_SHAPE,
                "cannot write %s: a PNG needs an f32 [C,H,W] image with C = 1, 2, 3 or 4, got %s", path, d);
    g_free(d);
    return FALSE;
  }
  int C = (int)chw->shape[0];
  gsize H = (gsize)chw->shape[1], W = (gsize)chw->shape[2], plane = H * W;
  float *f = g_new(float, plane * C);
  rat_tensor_read(chw, f);
  PngCtx *c = g_new0(PngCtx, 1);
  c->out = g_byte_array_new();
  c->pixels = g_malloc(plane * C);
  c->rows = g_new(png_bytep, H);
  for (gsize y = 0; y < H; y++) {
    c->rows[y] = c->pixels + y * W * C;
    for (gsize x = 0; x < W; x++)
      for (int ch = 0; ch < C; ch++) {
        float v = f[ch * plane + y * W + x];
        v = isnan(v) ? 0.0f : CLAMP(v, 0.0f, 1.0f);
        c->rows[y][x * C + ch] = (guint8)floorf(v * 255.0f + 0.5f);
      }
  }
  g_free(f);
  static const int types[5] = {0, PNG_COLOR_TYPE_GRAY, PNG_COLOR_TYPE_GRAY_ALPHA, PNG_COLOR_TYPE_RGB,
                               PNG_COLOR_TYPE_RGB_ALPHA};
  png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, c, on_error, on_warning);
  png_infop info = png ? png_create_info_struct(png) : NULL;
  if (!png || !info) {
    g_set_error(error, RAT_ERROR, RAT_ERROR_FAILED, "cannot write %s: cannot initialise libpng", path);
    png_destroy_write_struct(png ? &png : NULL, NULL);
    ctx_free(c);
    return FALSE;
  }
  if (setjmp(png_jmpbuf(png))) {
    g_set_error(error, RAT_ERROR, RAT_ERROR_FAILED, "cannot encode %s: %s", path, c->msg);
    png_destroy_write_struct(&png, &info);
    ctx_free(c);
    return FALSE;
  }
  png_set_write_fn(png, c, write_fn, flush_fn);
  png_set_IHDR(png, info, (png_uint_32)W, (png_uint_32)H, 8, types[C], PNG_INTERLACE_NONE,
               PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
  png_write_info(png, info);
  png_write_image(png, c->rows);
  png_write_end(png, NULL);
  png_destroy_write_struct(&png, &info);
  gboolean ok = rat_file_write_atomic(path, c->out->data, c->out->len, error);
  ctx_free(c);
  return ok;
}
