/* NumPy .npy arrays and .npz archives (a zip of .npy members, read and written through libzip): FID reference
 * statistics in the layout of the released *_val256_FIDK0.npz files (mu [D], sigma [D, D] float64) and feature
 * sets (features [N, D]). Reads float32 and float64, little-endian, C order, from stored or deflated members;
 * every problem (not a zip, a bad .npy magic or header, another dtype, Fortran order, a size that disagrees with
 * the shape) is a RAT_ERROR_CORRUPT / RAT_ERROR_UNSUPPORTED GError naming the file and the member. */
#pragma once

#include <ratfw/tensor.h>

G_BEGIN_DECLS

typedef enum {
  RAT_NPY_F32 = 0, /* '<f4' */
  RAT_NPY_F64 = 1, /* '<f8' */
} RatNpyDType;

#define RAT_NPY_MAX_DIMS 8

typedef struct {
  RatNpyDType dtype;
  int ndim;                        /* 0 for a scalar */
  gint64 shape[RAT_NPY_MAX_DIMS];
  gpointer data;                   /* row-major elements */
} RatNpyArray;

gint64 rat_npy_numel(const RatNpyArray *a);
/* "[2048, 2048] float64" (g_free). */
char *rat_npy_describe(const RatNpyArray *a);

/* Parses one .npy file image (format versions 1.0, 2.0 and 3.0). On success @out->data is a g_malloc'd copy of
 * the elements (g_free it). @what names the source in errors ("ref.npz: mu.npy"). */
gboolean rat_npy_parse(const guint8 *buf, gsize len, const char *what, RatNpyArray *out, GError **error);
/* The .npy image of @a (version 1.0 header, padded to 64 bytes as NumPy writes it); g_free. */
guint8 *rat_npy_serialize(const RatNpyArray *a, gsize *len);

typedef struct _RatNpz RatNpz;

/* Opens an .npz and lists its members. A file that is not a zip archive is RAT_ERROR_CORRUPT. */
RatNpz *rat_npz_open(const char *path, GError **error);
void rat_npz_close(RatNpz *z);
const char *rat_npz_path(const RatNpz *z);
/* Array names (member names without ".npy"), in archive order. */
guint rat_npz_count(const RatNpz *z);
const char *rat_npz_name(const RatNpz *z, guint i);
gboolean rat_npz_has(const RatNpz *z, const char *name);
/* Reads array @name (data g_malloc'd, as stored: f32 or f64). */
gboolean rat_npz_read(RatNpz *z, const char *name, RatNpyArray *out, GError **error);
/* Reads array @name widened to float64 (g_free the result); @ndim and @shape (RAT_NPY_MAX_DIMS) receive its
 * shape. */
double *rat_npz_read_f64(RatNpz *z, const char *name, int *ndim, gint64 *shape, GError **error);

/* Writes @n arrays as NAME.npy members, stored (np.savez) or deflated (np.savez_compressed), atomically: a
 * temporary file in the same directory, fsync, rename. Members are dated 1980-01-01 so that equal arrays give
 * equal files. */
gboolean rat_npz_write(const char *path, guint n, const char *const *names, const RatNpyArray *arrays,
                       gboolean compress, GError **error);

G_END_DECLS
