/* The reference augmentation (reference §7.3: Resize(size*76/64), RandomCrop(size), RandomHorizontalFlip,
 * ToTensor, Normalize(0.5, 0.5)) and the CUB bounding-box crop (§8.1). The resize reproduces Pillow 9.4's
 * ImagingResample for BILINEAR on 8-bit images bit for bit (src/libImaging/Resample.c: precompute_coeffs,
 * normalize_coeffs_8bpc, horizontal then vertical pass), which is what torchvision 0.14 calls on PIL images. */
#include "config.h"

#include "ratfw-private.h"
#include <ratfw/data.h>
#include <ratfw/error.h>

#include <math.h>

#define PRECISION_BITS (32 - 8 - 2)

RatImage *rat_image_crop(const RatImage *img, int left, int top, int right, int bottom) {
  rat_check(left >= 0 && top >= 0 && right <= img->width && bottom <= img->height && right > left && bottom > top,
            "rat_image_crop: box (%d, %d, %d, %d) outside %dx%d", left, top, right, bottom, img->width, img->height);
  RatImage *o = rat_image_new(right - left, bottom - top);
  for (int y = top; y < bottom; y++)
    memcpy(o->rgb + (gsize)(y - top) * o->width * 3, img->rgb + ((gsize)y * img->width + left) * 3,
           (gsize)o->width * 3);
  return o;
}

RatImage *rat_image_hflip(const RatImage *img) {
  RatImage *o = rat_image_new(img->width, img->height);
  for (int y = 0; y < img->height; y++) {
    const guint8 *s = img->rgb + (gsize)y * img->width * 3;
    guint8 *d = o->rgb + (gsize)y * img->width * 3;
    for (int x = 0; x < img->width; x++)
      memcpy(d + 3 * x, s + 3 * (img->width - 1 - x), 3);
  }
  return o;
}

/* ---- Pillow's bilinear resample ------------------------------------------------------------------------ */

typedef struct {
  int ksize;
  int *bounds; /* 2 per output pixel: first input index, count */
  gint32 *kk;  /* ksize per output pixel, fixed point */
} Coeffs;

static double bilinear_filter(double x) {
  if (x < 0.0)
    x = -x;
  if (x < 1.0)
    return 1.0 - x;
  return 0.0;
}

/* precompute_coeffs + normalize_coeffs_8bpc for the box [0, in_size) (in0, in1 are floats in Pillow). */
static void coeffs_init(Coeffs *c, int in_size, int out_size) {
  double scale = (double)((float)in_size - 0.0f) / out_size, filterscale = scale < 1.0 ? 1.0 : scale;
  double support = 1.0 * filterscale;
  int ksize = (int)ceil(support) * 2 + 1;
  double *k = g_new(double, ksize);
  c->ksize = ksize;
  c->bounds = g_new(int, 2 * out_size);
  c->kk = g_new0(gint32, (gsize)out_size * ksize);
  for (int xx = 0; xx < out_size; xx++) {
    double center = 0.0 + (xx + 0.5) * scale, ww = 0.0, ss = 1.0 / filterscale;
    int xmin = (int)(center - support + 0.5);
    if (xmin < 0)
      xmin = 0;
    int xmax = (int)(center + support + 0.5);
    if (xmax > in_size)
      xmax = in_size;
    xmax -= xmin;
    for (int x = 0; x < xmax; x++) {
      double w = bilinear_filter((x + xmin - center + 0.5) * ss);
      k[x] = w;
      ww += w;
    }
    for (int x = 0; x < xmax; x++)
      if (ww != 0.0)
        k[x] /= ww;
    gint32 *kk = c->kk + (gsize)xx * ksize;
    for (int x = 0; x < xmax; x++)
      kk[x] = k[x] < 0 ? (int)(-0.5 + k[x] * (1 << PRECISION_BITS)) : (int)(0.5 + k[x] * (1 << PRECISION_BITS));
    c->bounds[2 * xx] = xmin;
    c->bounds[2 * xx + 1] = xmax;
  }
  g_free(k);
}

static void coeffs_clear(Coeffs *c) {
  g_free(c->bounds);
  g_free(c->kk);
}

static inline guint8 clip8(gint32 in) {
  if (in >= (1 << PRECISION_BITS << 8))
    return 255;
  if (in <= 0)
    return 0;
  return (guint8)(in >> PRECISION_BITS);
}

/* Working buffers reused across the images one thread transforms (fresh large buffers cost page faults). */
typedef struct {
  gpointer buf[3];
  gsize size[3];
} Scratch;

static gpointer scratch_get(Scratch *sc, int i, gsize n) {
  if (sc->size[i] < n) {
    g_free(sc->buf[i]);
    sc->buf[i] = g_malloc(n);
    sc->size[i] = n;
  }
  return sc->buf[i];
}

static void scratch_clear(Scratch *sc) {
  for (int i = 0; i < 3; i++)
    g_free(sc->buf[i]);
}

/* Writes the window [wx, wx+ww) x [wy, wy+wh) of the (out_w x out_h) resize of @in to @dst (wh rows of ww*3). */
static void resize_window(const RatImage *in, int out_w, int out_h, int wx, int wy, int ww, int wh, guint8 *dst,
                          Scratch *sc) {
  gboolean need_h = out_w != in->width, need_v = out_h != in->height;
  Coeffs ch = {0}, cv = {0};
  if (need_h)
    coeffs_init(&ch, in->width, out_w);
  if (need_v)
    coeffs_init(&cv, in->height, out_h);
  /* input rows the window needs */
  int r0 = wy, r1 = wy + wh;
  if (need_v) {
    r0 = cv.bounds[2 * wy];
    r1 = cv.bounds[2 * (wy + wh - 1)] + cv.bounds[2 * (wy + wh - 1) + 1];
  }
  const gsize in_stride = (gsize)in->width * 3, tmp_stride = (gsize)ww * 3;
  guint8 *tmp = scratch_get(sc, 0, (gsize)(r1 - r0) * tmp_stride);
  for (int r = r0; r < r1; r++) {
    const guint8 *src = in->rgb + (gsize)r * in_stride;
    guint8 *t = tmp + (gsize)(r - r0) * tmp_stride;
    if (!need_h) {
      memcpy(t, src + (gsize)wx * 3, tmp_stride);
      continue;
    }
    for (int xx = 0; xx < ww; xx++) {
      int xmin = ch.bounds[2 * (wx + xx)], xmax = ch.bounds[2 * (wx + xx) + 1];
      const gint32 *k = ch.kk + (gsize)(wx + xx) * ch.ksize;
      gint32 s0 = 1 << (PRECISION_BITS - 1), s1 = s0, s2 = s0;
      const guint8 *p = src + (gsize)xmin * 3;
      for (int x = 0; x < xmax; x++) {
        s0 += p[3 * x] * k[x];
        s1 += p[3 * x + 1] * k[x];
        s2 += p[3 * x + 2] * k[x];
      }
      t[3 * xx] = clip8(s0);
      t[3 * xx + 1] = clip8(s1);
      t[3 * xx + 2] = clip8(s2);
    }
  }
  gint32 *acc = scratch_get(sc, 1, tmp_stride * sizeof(gint32));
  for (int yy = 0; yy < wh; yy++) {
    guint8 *d = dst + (gsize)yy * tmp_stride;
    if (!need_v) {
      memcpy(d, tmp + (gsize)(wy + yy - r0) * tmp_stride, tmp_stride);
      continue;
    }
    /* tap-major so the inner loop runs along a row (vectorises); same sums as Pillow's per-pixel order */
    int ymin = cv.bounds[2 * (wy + yy)], ymax = cv.bounds[2 * (wy + yy) + 1];
    const gint32 *k = cv.kk + (gsize)(wy + yy) * cv.ksize;
    for (gsize x = 0; x < tmp_stride; x++)
      acc[x] = 1 << (PRECISION_BITS - 1);
    for (int y = 0; y < ymax; y++) {
      const guint8 *row = tmp + (gsize)(ymin + y - r0) * tmp_stride;
      const gint32 ky = k[y];
      for (gsize x = 0; x < tmp_stride; x++)
        acc[x] += row[x] * ky;
    }
    for (gsize x = 0; x < tmp_stride; x++)
      d[x] = clip8(acc[x]);
  }
  if (need_h)
    coeffs_clear(&ch);
  if (need_v)
    coeffs_clear(&cv);
}

RatImage *rat_image_resize(const RatImage *img, int width, int height) {
  rat_check(width > 0 && height > 0, "rat_image_resize: bad size %dx%d", width, height);
  RatImage *o = rat_image_new(width, height);
  Scratch sc = {0};
  resize_window(img, width, height, 0, 0, width, height, o->rgb, &sc);
  scratch_clear(&sc);
  return o;
}

void rat_resize_shorter_size(int width, int height, int short_side, int *out_w, int *out_h) {
  int s = MIN(width, height), l = MAX(width, height);
  int nl = (int)((double)((gint64)short_side * l) / s);
  if (width <= height) {
    *out_w = short_side;
    *out_h = nl;
  } else {
    *out_w = nl;
    *out_h = short_side;
  }
}

void rat_cub_bbox_box(int width, int height, double x, double y, double w, double h, int box[4]) {
  int bx = (int)x, by = (int)y, bw = (int)w, bh = (int)h;
  int r = (int)(MAX(bw, bh) * 0.75);
  int cx = (int)((2.0 * bx + bw) / 2.0), cy = (int)((2.0 * by + bh) / 2.0);
  box[0] = MAX(0, cx - r);
  box[1] = MAX(0, cy - r);
  box[2] = MIN(width, cx + r);
  box[3] = MIN(height, cy + r);
}

/* ---- the transform --------------------------------------------------------------------------------------- */

RatTransform rat_transform_reference(int size) {
  return (RatTransform){.mode = RAT_RESIZE_SHORTER_CROP,
                        .size = size,
                        .resize = 0,
                        .random_crop = TRUE,
                        .random_flip = TRUE,
                        .normalize = TRUE};
}

static int transform_resize(const RatTransform *t) { return t->resize > 0 ? t->resize : (int)(t->size * 76 / 64); }

void rat_transform_sample(const RatTransform *t, int width, int height, RatRng *rng, RatTransformParams *p) {
  rat_check(t->size > 0 && width > 0 && height > 0, "rat_transform_sample: size %d, image %dx%d", t->size, width,
            height);
  memset(p, 0, sizeof *p);
  if (t->mode == RAT_RESIZE_PLAIN) {
    p->resize_w = p->resize_h = t->size;
  } else {
    int r = transform_resize(t);
    rat_check(r >= t->size, "rat_transform_sample: resize %d smaller than the crop %d", r, t->size);
    rat_resize_shorter_size(width, height, r, &p->resize_w, &p->resize_h);
    if (t->random_crop && rng) {
      p->crop_y = (int)rat_rng_below(rng, (guint64)(p->resize_h - t->size + 1));
      p->crop_x = (int)rat_rng_below(rng, (guint64)(p->resize_w - t->size + 1));
    } else { /* torchvision CenterCrop: int(round((h - th) / 2.0)), Python rounds half to even */
      p->crop_y = (int)nearbyint((p->resize_h - t->size) / 2.0);
      p->crop_x = (int)nearbyint((p->resize_w - t->size) / 2.0);
    }
  }
  if (t->random_flip && rng)
    p->flip = rat_rng_double(rng) < 0.5;
}

static void transform_apply(const RatTransform *t, const RatImage *img, const RatTransformParams *p, float *out,
                            Scratch *sc) {
  int S = t->size;
  rat_check(p->crop_x >= 0 && p->crop_y >= 0 && p->crop_x + S <= p->resize_w && p->crop_y + S <= p->resize_h,
            "rat_transform_apply: crop (%d, %d) size %d outside the resize %dx%d", p->crop_x, p->crop_y, S, p->resize_w,
            p->resize_h);
  float lut[256];
  for (int v = 0; v < 256; v++) {
    float f = (float)v / 255.0f; /* ToTensor */
    lut[v] = t->normalize ? (f - 0.5f) / 0.5f : f;
  }
  guint8 *win = scratch_get(sc, 2, (gsize)S * S * 3);
  resize_window(img, p->resize_w, p->resize_h, p->crop_x, p->crop_y, S, S, win, sc);
  gsize plane = (gsize)S * S;
  for (int y = 0; y < S; y++) {
    const guint8 *r = win + (gsize)y * S * 3;
    float *o0 = out + (gsize)y * S, *o1 = o0 + plane, *o2 = o1 + plane;
    for (int x = 0; x < S; x++) {
      int sx = p->flip ? S - 1 - x : x;
      o0[x] = lut[r[3 * sx]];
      o1[x] = lut[r[3 * sx + 1]];
      o2[x] = lut[r[3 * sx + 2]];
    }
  }
}

void rat_transform_apply(const RatTransform *t, const RatImage *img, const RatTransformParams *p, float *out) {
  Scratch sc = {0};
  transform_apply(t, img, p, out, &sc);
  scratch_clear(&sc);
}

RatTensor *rat_transform_image(const RatTransform *t, const RatImage *img, RatRng *rng) {
  RatTransformParams p;
  rat_transform_sample(t, img->width, img->height, rng, &p);
  RatTensor *o = rat_empty(RAT_SHAPE(3, t->size, t->size));
  rat_transform_apply(t, img, &p, rat_tensor_data(o));
  return o;
}

/* One item of a batch: decode, optional crop box, transform with the item's own RNG stream. */
static void load_one(const RatTransform *t, const char *path, const int *box, guint64 seed, guint64 index, float *out,
                     Scratch *sc, GError **error) {
  RatImage *img = rat_image_read(path, RAT_IMAGE_ALPHA_DROP, error);
  if (!img)
    return;
  if (box && box[2] > box[0]) {
    if (box[0] < 0 || box[1] < 0 || box[2] > img->width || box[3] > img->height || box[3] <= box[1]) {
      g_set_error(error, RAT_ERROR, RAT_ERROR_SHAPE, "%s: crop box (%d, %d, %d, %d) outside the %dx%d image", path,
                  box[0], box[1], box[2], box[3], img->width, img->height);
      rat_image_free(img);
      return;
    }
    RatImage *c = rat_image_crop(img, box[0], box[1], box[2], box[3]);
    rat_image_free(img);
    img = c;
  }
  RatRng rng;
  rat_rng_set_state(&rng, seed, index << 8);
  RatTransformParams p;
  rat_transform_sample(t, img->width, img->height, &rng, &p);
  transform_apply(t, img, &p, out, sc);
  rat_image_free(img);
}

RatTensor *rat_transform_load_batch(const RatTransform *t, const char *const *paths, guint n, const int *boxes,
                                    guint64 seed, guint64 base_index, GError **error) {
  int S = t->size;
  RatTensor *out = rat_empty(RAT_SHAPE(n, 3, S, S)); /* [B,3,S,S] */
  float *o = rat_tensor_data(out);
  GError **errs = g_new0(GError *, n);
#pragma omp parallel
  {
    Scratch sc = {0};
#pragma omp for schedule(dynamic, 1)
    for (gint64 k = 0; k < (gint64)n; k++)
      load_one(t, paths[k], boxes ? boxes + 4 * k : NULL, seed, base_index + (guint64)k, o + (gsize)k * 3 * S * S, &sc,
               &errs[k]);
    scratch_clear(&sc);
  }
  gboolean ok = TRUE;
  for (guint k = 0; k < n; k++) {
    if (errs[k] && ok) {
      g_propagate_error(error, errs[k]);
      ok = FALSE;
    } else if (errs[k]) {
      g_error_free(errs[k]);
    }
  }
  g_free(errs);
  return ok ? out : NULL;
}
