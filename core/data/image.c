/* Image decoding to 8-bit RGB: JPEG through libjpeg-turbo's libjpeg API (PIL's decoder settings, so pixels
 * match PIL bit for bit) and PNG through libpng; both read from memory, and both longjmp out of the library's
 * error handler so a corrupt or truncated file becomes a GError naming it, with nothing leaked. */
#include "config.h"

#include "ratfw-private.h"
#include <ratfw/data.h>
#include <ratfw/error.h>
#include <ratfw/io.h>

#include <setjmp.h>
#include <stdio.h>

#include <jpeglib.h>
#include <jerror.h>
#include <png.h>

RatImage *rat_image_new(int width, int height) {
  rat_check(width > 0 && height > 0, "rat_image_new: bad size %dx%d", width, height);
  RatImage *img = g_new0(RatImage, 1);
  img->width = width;
  img->height = height;
  img->rgb = g_malloc0((gsize)width * height * 3);
  return img;
}

void rat_image_free(RatImage *img) {
  if (!img)
    return;
  g_free(img->rgb);
  g_free(img);
}

RatImage *rat_image_copy(const RatImage *img) {
  RatImage *c = g_new0(RatImage, 1);
  *c = *img;
  c->rgb = g_memdup2(img->rgb, (gsize)img->width * img->height * 3);
  return c;
}

/* Composites 8-bit RGBA rows onto white (rounded), or drops alpha. */
static void rgba_to_rgb(const guint8 *in, guint8 *out, gsize npix, RatImageAlpha alpha) {
  for (gsize i = 0; i < npix; i++) {
    guint a = in[4 * i + 3];
    for (int c = 0; c < 3; c++) {
      guint v = in[4 * i + c];
      out[3 * i + c] = alpha == RAT_IMAGE_ALPHA_DROP ? (guint8)v : (guint8)((v * a + 255u * (255u - a) + 127u) / 255u);
    }
  }
}

/* ---- JPEG ---------------------------------------------------------------------------------------------- */

typedef struct {
  struct jpeg_error_mgr pub;
  jmp_buf jump;
  char msg[JMSG_LENGTH_MAX];
} JpegErr;

static void jpeg_error_exit_cb(j_common_ptr cinfo) {
  JpegErr *e = (JpegErr *)cinfo->err;
  e->pub.format_message(cinfo, e->msg);
  longjmp(e->jump, 1);
}

static void jpeg_output_message_cb(j_common_ptr cinfo) { (void)cinfo; /* warnings are not printed */ }

static void jpeg_emit_message_cb(j_common_ptr cinfo, int level) {
  /* Premature end of data (libjpeg would go on with grey fill) is an error for us, as for PIL: a truncated file
   * must not decode to a silently grey image. Other warnings (extraneous bytes, ...) are ignored, as PIL does. */
  JpegErr *e = (JpegErr *)cinfo->err;
  if (level < 0 && e->pub.msg_code == JWRN_JPEG_EOF) {
    e->pub.format_message(cinfo, e->msg);
    longjmp(e->jump, 1);
  }
}

static RatImage *decode_jpeg(const guint8 *data, gsize len, const char *name, GError **error) {
  struct jpeg_decompress_struct cinfo;
  JpegErr jerr;
  /* volatile: modified between setjmp and longjmp */
  RatImage *volatile img = NULL;
  guint8 *volatile row = NULL;
  memset(&cinfo, 0, sizeof cinfo);
  cinfo.err = jpeg_std_error(&jerr.pub);
  jerr.pub.error_exit = jpeg_error_exit_cb;
  jerr.pub.output_message = jpeg_output_message_cb;
  jerr.pub.emit_message = jpeg_emit_message_cb;
  jerr.msg[0] = 0;
  if (setjmp(jerr.jump)) {
    g_set_error(error, RAT_ERROR, RAT_ERROR_CORRUPT, "%s: corrupt or truncated JPEG: %s", name, jerr.msg);
    jpeg_destroy_decompress(&cinfo);
    rat_image_free(img);
    g_free(row);
    return NULL;
  }
  jpeg_create_decompress(&cinfo);
  jpeg_mem_src(&cinfo, data, (unsigned long)len);
  jpeg_read_header(&cinfo, TRUE);
  gboolean cmyk = FALSE, inverted = FALSE;
  switch (cinfo.jpeg_color_space) {
  case JCS_GRAYSCALE:
  case JCS_YCbCr:
  case JCS_RGB: cinfo.out_color_space = JCS_RGB; break;
  case JCS_CMYK:
  case JCS_YCCK:
    cinfo.out_color_space = JCS_CMYK;
    cmyk = TRUE;
    inverted = cinfo.saw_Adobe_marker; /* Adobe writes inverted CMYK (PIL's "CMYK;I") */
    break;
  default:
    g_set_error(error, RAT_ERROR, RAT_ERROR_UNSUPPORTED, "%s: unsupported JPEG colour space %d", name,
                (int)cinfo.jpeg_color_space);
    jpeg_destroy_decompress(&cinfo);
    return NULL;
  }
  /* PIL's defaults (libjpeg's): JDCT_ISLOW, fancy upsampling, no block smoothing change. */
  cinfo.dct_method = JDCT_ISLOW;
  cinfo.do_fancy_upsampling = TRUE;
  jpeg_start_decompress(&cinfo);
  int w = (int)cinfo.output_width, h = (int)cinfo.output_height, nc = cinfo.output_components;
  if (w <= 0 || h <= 0 || (gint64)w * h > ((gint64)1 << 28) || nc != (cmyk ? 4 : 3)) {
    g_set_error(error, RAT_ERROR, RAT_ERROR_CORRUPT, "%s: JPEG of unusable size %dx%d (%d components)", name, w, h, nc);
    jpeg_destroy_decompress(&cinfo);
    return NULL;
  }
  img = rat_image_new(w, h);
  row = g_malloc((gsize)w * nc);
  while (cinfo.output_scanline < cinfo.output_height) {
    guint y = cinfo.output_scanline;
    JSAMPROW dst = cmyk ? row : img->rgb + (gsize)y * w * 3;
    if (jpeg_read_scanlines(&cinfo, &dst, 1) != 1) {
      g_set_error(error, RAT_ERROR, RAT_ERROR_CORRUPT, "%s: truncated JPEG at row %u", name, y);
      jpeg_destroy_decompress(&cinfo);
      rat_image_free(img);
      g_free(row);
      return NULL;
    }
    if (cmyk) {
      guint8 *o = img->rgb + (gsize)y * w * 3;
      for (int x = 0; x < w; x++) {
        int k = row[4 * x + 3];
        if (inverted)
          k = 255 - k;
        int nk = 255 - k;
        for (int c = 0; c < 3; c++) {
          int v = row[4 * x + c];
          if (inverted)
            v = 255 - v;
          /* PIL cmyk2rgb: nk - MULDIV255(c, nk) with MULDIV255(a, b) = ((a*b + 128) + ((a*b + 128) >> 8)) >> 8 */
          int t = v * nk + 128;
          o[3 * x + c] = (guint8)CLAMP(nk - ((t + (t >> 8)) >> 8), 0, 255);
        }
      }
    }
  }
  jpeg_finish_decompress(&cinfo);
  jpeg_destroy_decompress(&cinfo);
  g_free(row);
  return img;
}

gboolean rat_image_write_jpeg(const char *path, const RatImage *img, int quality, GError **error) {
  struct jpeg_compress_struct cinfo;
  JpegErr jerr;
  struct {
    unsigned char *buf; /* address taken: lives in memory across the longjmp */
    unsigned long size;
  } out = {NULL, 0};
  memset(&cinfo, 0, sizeof cinfo);
  cinfo.err = jpeg_std_error(&jerr.pub);
  jerr.pub.error_exit = jpeg_error_exit_cb;
  jerr.pub.output_message = jpeg_output_message_cb;
  if (setjmp(jerr.jump)) {
    g_set_error(error, RAT_ERROR, RAT_ERROR_IO, "%s: cannot encode JPEG: %s", path, jerr.msg);
    jpeg_destroy_compress(&cinfo);
    free(out.buf);
    return FALSE;
  }
  jpeg_create_compress(&cinfo);
  jpeg_mem_dest(&cinfo, &out.buf, &out.size);
  cinfo.image_width = (JDIMENSION)img->width;
  cinfo.image_height = (JDIMENSION)img->height;
  cinfo.input_components = 3;
  cinfo.in_color_space = JCS_RGB;
  jpeg_set_defaults(&cinfo);
  jpeg_set_quality(&cinfo, CLAMP(quality, 1, 100), TRUE);
  jpeg_start_compress(&cinfo, TRUE);
  while (cinfo.next_scanline < cinfo.image_height) {
    JSAMPROW r = img->rgb + (gsize)cinfo.next_scanline * img->width * 3;
    jpeg_write_scanlines(&cinfo, &r, 1);
  }
  jpeg_finish_compress(&cinfo);
  jpeg_destroy_compress(&cinfo);
  gboolean ok = rat_file_write_atomic(path, out.buf, out.size, error);
  free(out.buf);
  return ok;
}

/* ---- PNG ------------------------------------------------------------------------------------------------ */

typedef struct {
  const guint8 *data;
  gsize len, pos;
  const char *name;
  char msg[256];
} PngSrc;

static void png_read_cb(png_structp png, png_bytep out, png_size_t n) {
  PngSrc *s = png_get_io_ptr(png);
  if (n > s->len - s->pos)
    png_error(png, "unexpected end of file");
  memcpy(out, s->data + s->pos, n);
  s->pos += n;
}

static void png_error_cb(png_structp png, png_const_charp msg) {
  PngSrc *s = png_get_error_ptr(png);
  g_strlcpy(s->msg, msg, sizeof s->msg);
  png_longjmp(png, 1);
}

static void png_warning_cb(png_structp png, png_const_charp msg) { (void)png, (void)msg; }

static RatImage *decode_png(const guint8 *data, gsize len, const char *name, RatImageAlpha alpha, GError **error) {
  PngSrc src = {.data = data, .len = len, .pos = 0, .name = name};
  png_structp png = png_create_read_struct(PNG_LIBPNG_VER_STRING, &src, png_error_cb, png_warning_cb);
  png_infop info = png ? png_create_info_struct(png) : NULL;
  RatImage *volatile img = NULL;
  guint8 *volatile buf = NULL;
  png_bytep *volatile rows = NULL;
  if (!info) {
    png_destroy_read_struct(&png, NULL, NULL);
    g_set_error(error, RAT_ERROR, RAT_ERROR_FAILED, "%s: cannot initialise libpng", name);
    return NULL;
  }
  if (setjmp(png_jmpbuf(png))) {
    g_set_error(error, RAT_ERROR, RAT_ERROR_CORRUPT, "%s: corrupt or truncated PNG: %s", name, src.msg);
    png_destroy_read_struct(&png, &info, NULL);
    rat_image_free(img);
    g_free(buf);
    g_free(rows);
    return NULL;
  }
  png_set_read_fn(png, &src, png_read_cb);
  png_set_user_limits(png, 1u << 16, 1u << 16);
  png_read_info(png, info);
  png_uint_32 w = png_get_image_width(png, info), h = png_get_image_height(png, info);
  int color = png_get_color_type(png, info);
  if ((guint64)w * h > ((guint64)1 << 28))
    png_error(png, "image too large");
  /* To 8-bit RGBA: palette and tRNS expanded, 16-bit keeps the high byte (PIL), gray replicated. */
  png_set_expand(png);
  png_set_strip_16(png);
  if (color == PNG_COLOR_TYPE_GRAY || color == PNG_COLOR_TYPE_GRAY_ALPHA)
    png_set_gray_to_rgb(png);
  png_set_add_alpha(png, 0xff, PNG_FILLER_AFTER);
  png_set_interlace_handling(png);
  png_read_update_info(png, info);
  if (png_get_rowbytes(png, info) != (gsize)w * 4)
    png_error(png, "unexpected row layout");
  buf = g_malloc((gsize)w * h * 4);
  rows = g_new(png_bytep, h);
  for (png_uint_32 y = 0; y < h; y++)
    rows[y] = buf + (gsize)y * w * 4;
  png_read_image(png, rows);
  png_read_end(png, NULL);
  png_destroy_read_struct(&png, &info, NULL);
  img = rat_image_new((int)w, (int)h);
  rgba_to_rgb(buf, img->rgb, (gsize)w * h, alpha);
  g_free(buf);
  g_free(rows);
  return img;
}

/* ---- entry points -------------------------------------------------------------------------------------- */

RatImage *rat_image_decode(const guint8 *data, gsize len, const char *name, RatImageAlpha alpha, GError **error) {
  static const guint8 png_sig[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
  if (!name)
    name = "(memory)";
  if (len >= 3 && data[0] == 0xff && data[1] == 0xd8 && data[2] == 0xff)
    return decode_jpeg(data, len, name, error);
  if (len >= 8 && !memcmp(data, png_sig, 8))
    return decode_png(data, len, name, alpha, error);
  g_set_error(error, RAT_ERROR, RAT_ERROR_CORRUPT, "%s: not a JPEG or PNG image (%" G_GSIZE_FORMAT " bytes)", name,
              len);
  return NULL;
}

RatImage *rat_image_read(const char *path, RatImageAlpha alpha, GError **error) {
  GError *e = NULL;
  GMappedFile *map = g_mapped_file_new(path, FALSE, &e);
  if (!map) {
    g_set_error(error, RAT_ERROR, RAT_ERROR_IO, "cannot open image %s: %s", path, e->message);
    g_error_free(e);
    return NULL;
  }
  RatImage *img = rat_image_decode((const guint8 *)g_mapped_file_get_contents(map), g_mapped_file_get_length(map), path,
                                   alpha, error);
  g_mapped_file_unref(map);
  return img;
}

RatTensor *rat_image_to_tensor(const RatImage *img) {
  gint64 hw = (gint64)img->width * img->height;
  RatTensor *t = rat_empty(RAT_SHAPE(3, img->height, img->width));
  float *o = rat_tensor_data(t);
  for (gint64 i = 0; i < hw; i++)
    for (int c = 0; c < 3; c++)
      o[c * hw + i] = (float)img->rgb[3 * i + c] / 255.0f;
  return t;
}

RatImage *rat_image_from_tensor(RatTensor *chw) {
  rat_check(chw->ndim == 3 && (chw->shape[0] == 3 || chw->shape[0] == 1) && chw->dtype == RAT_DTYPE_F32,
            "rat_image_from_tensor: want f32 [3,H,W] or [1,H,W], got %s", rat_tensor_describe(chw));
  RatScope s = rat_scope_push();
  RatTensor *c = rat_contiguous(chw);
  const float *p = rat_tensor_data(c);
  int C = (int)chw->shape[0], h = (int)chw->shape[1], w = (int)chw->shape[2];
  gint64 hw = (gint64)w * h;
  RatImage *img = rat_image_new(w, h);
  for (gint64 i = 0; i < hw; i++)
    for (int k = 0; k < 3; k++) {
      float v = p[(C == 3 ? k : 0) * hw + i];
      v = v != v ? 0.0f : CLAMP(v, 0.0f, 1.0f);
      img->rgb[3 * i + k] = (guint8)(v * 255.0f + 0.5f);
    }
  rat_scope_pop(s);
  return img;
}

RatTensor *rat_image_load(const char *path, GError **error) {
  RatImage *img = rat_image_read(path, RAT_IMAGE_ALPHA_WHITE, error);
  if (!img)
    return NULL;
  RatTensor *t = rat_image_to_tensor(img);
  rat_image_free(img);
  return t;
}
