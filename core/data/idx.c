/* IDX files (LeCun's MNIST format: 0x0000, element type, rank, big-endian 32-bit dimensions, data), gzip or
 * plain, and Fashion-MNIST (Xiao, Rasul, Vollgraf 2017, "Fashion-MNIST: a Novel Image Dataset for Benchmarking
 * Machine Learning Algorithms") read from Debian's dataset-fashion-mnist, with captions from the class names. */
#include "config.h"

#include "ratfw-private.h"
#include <ratfw/data.h>
#include <ratfw/error.h>

#include <gio/gio.h>

#define IDX_MAX_BYTES ((gsize)1 << 31)

/* Inflates a whole gzip member into a new buffer; truncation and garbage are RAT_ERROR_CORRUPT. */
static guint8 *gunzip(const guint8 *in, gsize in_len, gsize *out_len, const char *path, GError **error) {
  GZlibDecompressor *z = g_zlib_decompressor_new(G_ZLIB_COMPRESSOR_FORMAT_GZIP);
  gsize cap = MAX(in_len * 4, (gsize)1 << 16), len = 0, pos = 0;
  guint8 *out = g_malloc(cap);
  GError *e = NULL;
  for (;;) {
    if (cap - len < ((gsize)1 << 16)) {
      if (cap >= IDX_MAX_BYTES) {
        g_set_error(error, RAT_ERROR, RAT_ERROR_CORRUPT, "%s: decompresses to more than %" G_GSIZE_FORMAT " bytes",
                    path, IDX_MAX_BYTES);
        goto fail;
      }
      cap *= 2;
      out = g_realloc(out, cap);
    }
    gsize rd = 0, wr = 0;
    GConverterResult r = g_converter_convert(G_CONVERTER(z), in + pos, in_len - pos, out + len, cap - len,
                                             G_CONVERTER_INPUT_AT_END, &rd, &wr, &e);
    if (r == G_CONVERTER_ERROR) {
      g_set_error(error, RAT_ERROR, RAT_ERROR_CORRUPT, "%s: corrupt or truncated gzip data: %s", path, e->message);
      g_error_free(e);
      goto fail;
    }
    pos += rd;
    len += wr;
    if (r == G_CONVERTER_FINISHED)
      break;
    if (rd == 0 && wr == 0) {
      g_set_error(error, RAT_ERROR, RAT_ERROR_CORRUPT, "%s: truncated gzip data", path);
      goto fail;
    }
  }
  g_object_unref(z);
  *out_len = len;
  return out;
fail:
  g_object_unref(z);
  g_free(out);
  return NULL;
}

RatIdx *rat_idx_read(const char *path, GError **error) {
  GError *e = NULL;
  GMappedFile *map = g_mapped_file_new(path, FALSE, &e);
  if (!map) {
    g_set_error(error, RAT_ERROR, RAT_ERROR_IO, "cannot open %s: %s", path, e->message);
    g_error_free(e);
    return NULL;
  }
  const guint8 *raw = (const guint8 *)g_mapped_file_get_contents(map);
  gsize raw_len = g_mapped_file_get_length(map), len = raw_len;
  guint8 *owned = NULL;
  const guint8 *p = raw;
  if (raw_len >= 2 && raw[0] == 0x1f && raw[1] == 0x8b) {
    owned = gunzip(raw, raw_len, &len, path, error);
    if (!owned) {
      g_mapped_file_unref(map);
      return NULL;
    }
    p = owned;
  }
  RatIdx *idx = NULL;
  if (len < 4 || p[0] != 0 || p[1] != 0) {
    g_set_error(error, RAT_ERROR, RAT_ERROR_CORRUPT, "%s: not an IDX file (bad magic)", path);
    goto out;
  }
  if (p[2] != 0x08) {
    g_set_error(error, RAT_ERROR, RAT_ERROR_UNSUPPORTED,
                "%s: IDX element type 0x%02x; only unsigned bytes (0x08) "
                "are supported",
                path, p[2]);
    goto out;
  }
  int nd = p[3];
  if (nd < 1 || nd > 4) {
    g_set_error(error, RAT_ERROR, RAT_ERROR_CORRUPT, "%s: IDX rank %d (want 1..4)", path, nd);
    goto out;
  }
  gsize hdr = 4 + 4 * (gsize)nd;
  if (len < hdr) {
    g_set_error(error, RAT_ERROR, RAT_ERROR_CORRUPT, "%s: truncated IDX header", path);
    goto out;
  }
  idx = g_new0(RatIdx, 1);
  idx->ndim = nd;
  guint64 total = 1;
  for (int d = 0; d < nd; d++) {
    const guint8 *q = p + 4 + 4 * d;
    idx->dims[d] = ((guint32)q[0] << 24) | ((guint32)q[1] << 16) | ((guint32)q[2] << 8) | q[3];
    total *= idx->dims[d];
    if (idx->dims[d] == 0 || total > IDX_MAX_BYTES) {
      g_set_error(error, RAT_ERROR, RAT_ERROR_CORRUPT, "%s: bad IDX dimension %d = %u", path, d, idx->dims[d]);
      g_clear_pointer(&idx, g_free);
      goto out;
    }
  }
  if (len - hdr != total) {
    g_set_error(error, RAT_ERROR, RAT_ERROR_CORRUPT,
                "%s: IDX data has %" G_GSIZE_FORMAT " bytes, the header "
                "says %" G_GUINT64_FORMAT " (%s)",
                path, len - hdr, total, len - hdr < total ? "truncated" : "trailing bytes");
    g_clear_pointer(&idx, g_free);
    goto out;
  }
  idx->size = (gsize)total;
  idx->data = g_memdup2(p + hdr, idx->size);
out:
  g_free(owned);
  g_mapped_file_unref(map);
  return idx;
}

void rat_idx_free(RatIdx *idx) {
  if (!idx)
    return;
  g_free(idx->data);
  g_free(idx);
}

/* ---- Fashion-MNIST -------------------------------------------------------------------------------------- */

static const struct {
  const char *name;  /* the dataset's label name */
  const char *noun;  /* with its article, for captions */
  const char *plain; /* without article */
} fm_classes[RAT_FASHION_MNIST_N_CLASSES] = {
    {"T-shirt/top", "a t-shirt", "t-shirt"},
    {"Trouser", "a pair of trousers", "trousers"},
    {"Pullover", "a pullover", "pullover"},
    {"Dress", "a dress", "dress"},
    {"Coat", "a coat", "coat"},
    {"Sandal", "a sandal", "sandal"},
    {"Shirt", "a shirt", "shirt"},
    {"Sneaker", "a sneaker", "sneaker"},
    {"Bag", "a bag", "bag"},
    {"Ankle boot", "an ankle boot", "ankle boot"},
};

static const char *const fm_phrasings[] = {
    "a photo of %s",
    "a black and white photo of %s",
    "a small grayscale picture of %s",
    "%s on a black background",
    "a low resolution image of %s",
    "a product photo of %s",
};

const char *rat_fashion_mnist_class_name(guint label) {
  return label < RAT_FASHION_MNIST_N_CLASSES ? fm_classes[label].name : NULL;
}

guint rat_fashion_mnist_n_phrasings(void) { return G_N_ELEMENTS(fm_phrasings); }

char *rat_fashion_mnist_caption(guint label, guint phrasing) {
  rat_check(label < RAT_FASHION_MNIST_N_CLASSES, "rat_fashion_mnist_caption: label %u", label);
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wformat-nonliteral"
  return g_strdup_printf(fm_phrasings[phrasing % G_N_ELEMENTS(fm_phrasings)], fm_classes[label].noun);
#pragma GCC diagnostic pop
}

/* Finds PREFIX-KIND-ubyte.gz or PREFIX-KIND-ubyte in @dir. */
static char *find_part(const char *dir, const char *prefix, const char *kind) {
  char *base = g_strdup_printf("%s-%s-ubyte", prefix, kind);
  char *gz = g_strdup_printf("%s/%s.gz", dir, base), *plain = g_strdup_printf("%s/%s", dir, base);
  g_free(base);
  if (g_file_test(gz, G_FILE_TEST_EXISTS)) {
    g_free(plain);
    return gz;
  }
  g_free(gz);
  return plain;
}

static gboolean load_part(RatFashionMnist *fm, const char *dir, const char *prefix, GError **error) {
  char *ip = find_part(dir, prefix, "images-idx3"), *lp = find_part(dir, prefix, "labels-idx1");
  RatIdx *im = rat_idx_read(ip, error), *lb = NULL;
  gboolean ok = FALSE;
  if (!im) {
    if (error && *error && (*error)->code == RAT_ERROR_IO)
      g_prefix_error(error, "Fashion-MNIST not found (install the Debian package dataset-fashion-mnist): ");
    goto out;
  }
  lb = rat_idx_read(lp, error);
  if (!lb)
    goto out;
  if (im->ndim != 3 || lb->ndim != 1 || im->dims[0] != lb->dims[0]) {
    g_set_error(error, RAT_ERROR, RAT_ERROR_CORRUPT,
                "%s and %s: want images [N,rows,cols] and labels [N], got "
                "rank %d (%u images) and rank %d (%u labels)",
                ip, lp, im->ndim, im->dims[0], lb->ndim, lb->dims[0]);
    goto out;
  }
  if (fm->n && (fm->rows != (int)im->dims[1] || fm->cols != (int)im->dims[2])) {
    g_set_error(error, RAT_ERROR, RAT_ERROR_CORRUPT, "%s: images of %ux%u, the train split has %dx%d", ip, im->dims[1],
                im->dims[2], fm->rows, fm->cols);
    goto out;
  }
  for (gsize i = 0; i < lb->size; i++)
    if (lb->data[i] >= RAT_FASHION_MNIST_N_CLASSES) {
      g_set_error(error, RAT_ERROR, RAT_ERROR_CORRUPT, "%s: label %u at item %" G_GSIZE_FORMAT " (want 0..9)", lp,
                  lb->data[i], i);
      goto out;
    }
  fm->rows = (int)im->dims[1];
  fm->cols = (int)im->dims[2];
  gsize per = (gsize)fm->rows * fm->cols;
  fm->images = g_realloc(fm->images, (fm->n + im->dims[0]) * per);
  memcpy(fm->images + fm->n * per, im->data, im->size);
  fm->labels = g_realloc(fm->labels, fm->n + im->dims[0]);
  memcpy(fm->labels + fm->n, lb->data, lb->size);
  fm->n += im->dims[0];
  ok = TRUE;
out:
  rat_idx_free(im);
  rat_idx_free(lb);
  g_free(ip);
  g_free(lp);
  return ok;
}

RatFashionMnist *rat_fashion_mnist_open(const char *dir, RatSplit split, GError **error) {
  if (!dir)
    dir = RAT_FASHION_MNIST_DIR;
  RatFashionMnist *fm = g_new0(RatFashionMnist, 1);
  if ((split != RAT_SPLIT_TEST && !load_part(fm, dir, "train", error)) ||
      (split != RAT_SPLIT_TRAIN && !load_part(fm, dir, "t10k", error))) {
    rat_fashion_mnist_free(fm);
    return NULL;
  }
  return fm;
}

void rat_fashion_mnist_free(RatFashionMnist *fm) {
  if (!fm)
    return;
  g_free(fm->images);
  g_free(fm->labels);
  g_free(fm);
}

RatTensor *rat_fashion_mnist_image(const RatFashionMnist *fm, guint i, int channels) {
  rat_check(i < fm->n && (channels == 1 || channels == 3), "rat_fashion_mnist_image: item %u of %u, %d channels", i,
            fm->n, channels);
  gsize per = (gsize)fm->rows * fm->cols;
  RatTensor *t = rat_empty(RAT_SHAPE(channels, fm->rows, fm->cols));
  float *o = rat_tensor_data(t);
  const guint8 *src = fm->images + (gsize)i * per;
  for (int c = 0; c < channels; c++)
    for (gsize k = 0; k < per; k++)
      o[c * per + k] = (float)src[k] / 255.0f;
  return t;
}
