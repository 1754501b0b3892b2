/* NumPy .npy / .npz I/O (npz.h). The .npy layout (numpy/lib/format.py): the magic "\x93NUMPY", a major and minor
 * version byte, a little-endian header length (u16 for 1.0, u32 for 2.0 and 3.0), then an ASCII Python dict
 * literal {'descr': '<f8', 'fortran_order': False, 'shape': (2048, 2048), } padded with spaces and a newline,
 * then the raw elements. An .npz is a zip archive of NAME.npy members (libzip reads stored and deflated ones). */
#include "config.h"

#include <ratfw/error.h>
#include <ratfw/npz.h>

#include <errno.h>
#include <fcntl.h>
#include <glib/gstdio.h>
#include <string.h>
#include <unistd.h>
#include <zip.h>

static const guint8 npy_magic[6] = {0x93, 'N', 'U', 'M', 'P', 'Y'};

gint64 rat_npy_numel(const RatNpyArray *a) {
  gint64 n = 1;
  for (int i = 0; i < a->ndim; i++) n *= a->shape[i];
  return n;
}

static gsize itemsize(RatNpyDType t) { return t == RAT_NPY_F64 ? 8 : 4; }

char *rat_npy_describe(const RatNpyArray *a) {
  GString *s = g_string_new("[");
  for (int i = 0; i < a->ndim; i++) g_string_append_printf(s, "%s%" G_GINT64_FORMAT, i ? ", " : "", a->shape[i]);
  g_string_append_printf(s, "] %s", a->dtype == RAT_NPY_F64 ? "float64" : "float32");
  return g_string_free(s, FALSE);
}

/* ---- the header dict ---------------------------------------------------------------------------------------- */

typedef struct {
  const char *p, *end;
} Cursor;

static void skip_ws(Cursor *c) {
  while (c->p < c->end && (*c->p == ' ' || *c->p == '\t' || *c->p == '\n' || *c->p == '\r')) c->p++;
}

static gboolean eat(Cursor *c, char ch) {
  skip_ws(c);
  if (c->p < c->end && *c->p == ch) {
    c->p++;
    return TRUE;
  }
  return FALSE;
}

/* A Python string literal in single or double quotes (no escapes: NumPy never writes any in a header). */
static char *parse_str(Cursor *c) {
  skip_ws(c);
  if (c->p >= c->end || (*c->p != '\'' && *c->p != '"')) return NULL;
  char q = *c->p++;
  const char *s = c->p;
  while (c->p < c->end && *c->p != q) {
    if (*c->p == '\\') return NULL;
    c->p++;
  }
  if (c->p >= c->end) return NULL;
  char *out = g_strndup(s, (gsize)(c->p - s));
  c->p++;
  return out;
}

static gboolean parse_word(Cursor *c, const char *w) {
  skip_ws(c);
  gsize n = strlen(w);
  if ((gsize)(c->end - c->p) >= n && !strncmp(c->p, w, n)) {
    c->p += n;
    return TRUE;
  }
  return FALSE;
}

/* (), (n,), (a, b), (a, b, ...) */
static gboolean parse_shape(Cursor *c, RatNpyArray *a, const char **why) {
  if (!eat(c, '(')) {
    *why = "'shape' is not a tuple";
    return FALSE;
  }
  a->ndim = 0;
  for (;;) {
    if (eat(c, ')')) return TRUE;
    skip_ws(c);
    if (c->p >= c->end || !g_ascii_isdigit(*c->p)) {
      *why = "'shape' holds something other than non-negative integers";
      return FALSE;
    }
    gint64 v = 0;
    while (c->p < c->end && g_ascii_isdigit(*c->p)) {
      if (v > G_MAXINT64 / 10 - 10) {
        *why = "a dimension of 'shape' is too large";
        return FALSE;
      }
      v = v * 10 + (*c->p++ - '0');
    }
    if (c->p < c->end && *c->p == 'L') c->p++; /* Python 2 longs */
    if (a->ndim == RAT_NPY_MAX_DIMS) {
      *why = "'shape' has more than 8 dimensions";
      return FALSE;
    }
    a->shape[a->ndim++] = v;
    if (!eat(c, ',')) {
      if (eat(c, ')')) return TRUE;
      *why = "'shape' tuple is malformed";
      return FALSE;
    }
  }
}

static gboolean parse_header(const char *text, gsize len, const char *what, RatNpyArray *a, GError **error) {
  Cursor c = {text, text + len};
  const char *why = NULL;
  gboolean have_descr = FALSE, have_order = FALSE, have_shape = FALSE, fortran = FALSE;
  char *descr = NULL;
  if (!eat(&c, '{')) {
    why = "it is not a dict literal";
    goto bad;
  }
  for (;;) {
    if (eat(&c, '}')) break;
    char *key = parse_str(&c);
    if (!key) {
      why = "a key is not a string";
      goto bad;
    }
    if (!eat(&c, ':')) {
      g_free(key);
      why = "a key has no ':'";
      goto bad;
    }
    if (!strcmp(key, "descr")) {
      g_free(descr);
      descr = parse_str(&c);
      have_descr = descr != NULL;
      if (!descr) why = "'descr' is not a string (structured dtypes are not supported)";
    } else if (!strcmp(key, "fortran_order")) {
      have_order = TRUE;
      if (parse_word(&c, "True")) fortran = TRUE;
      else if (parse_word(&c, "False")) fortran = FALSE;
      else why = "'fortran_order' is neither True nor False";
    } else if (!strcmp(key, "shape")) {
      have_shape = parse_shape(&c, a, &why);
    } else {
      why = "it has a key other than descr, fortran_order and shape";
    }
    g_free(key);
    if (why) goto bad;
    if (!eat(&c, ',')) {
      if (eat(&c, '}')) break;
      why = "entries are not separated by ','";
      goto bad;
    }
  }
  if (!have_descr || !have_order || !have_shape) {
    why = !have_descr ? "'descr' is missing" : !have_order ? "'fortran_order' is missing" : "'shape' is missing";
    goto bad;
  }
  if (fortran && a->ndim > 1) {
    g_set_error(error, RAT_ERROR, RAT_ERROR_UNSUPPORTED,
                "%s: the array is stored in Fortran order; save it in C order (np.ascontiguousarray) and retry", what);
    g_free(descr);
    return FALSE;
  }
  if (!strcmp(descr, "<f8") || !strcmp(descr, "=f8")) a->dtype = RAT_NPY_F64;
  else if (!strcmp(descr, "<f4") || !strcmp(descr, "=f4")) a->dtype = RAT_NPY_F32;
  else {
    gboolean big = descr[0] == '>';
    g_set_error(error, RAT_ERROR, RAT_ERROR_UNSUPPORTED,
                "%s: dtype '%s' is not supported: expected little-endian float32 ('<f4') or float64 ('<f8')%s", what,
                descr, big ? " (this one is big-endian: convert with .astype('<f8'))" : " (convert with .astype(np.float64))");
    g_free(descr);
    return FALSE;
  }
  g_free(descr);
  return TRUE;
bad:
  g_free(descr);
  g_set_error(error, RAT_ERROR, RAT_ERROR_CORRUPT, "%s: bad .npy header (%s)", what, why);
  return FALSE;
}

gboolean rat_npy_parse(const guint8 *buf, gsize len, const char *what, RatNpyArray *out, GError **error) {
  memset(out, 0, sizeof *out);
  if (len < 10 || memcmp(buf, npy_magic, 6) != 0) {
    g_set_error(error, RAT_ERROR, RAT_ERROR_CORRUPT, "%s: not a .npy array (bad magic: the file does not start with "
                "\\x93NUMPY)", what);
    return FALSE;
  }
  guint major = buf[6];
  gsize hlen, start;
  if (major == 1) {
    hlen = (gsize)buf[8] | (gsize)buf[9] << 8;
    start = 10;
  } else if (major == 2 || major == 3) {
    if (len < 12) {
      g_set_error(error, RAT_ERROR, RAT_ERROR_CORRUPT, "%s: truncated .npy header", what);
      return FALSE;
    }
    hlen = (gsize)buf[8] | (gsize)buf[9] << 8 | (gsize)buf[10] << 16 | (gsize)buf[11] << 24;
    start = 12;
  } else {
    g_set_error(error, RAT_ERROR, RAT_ERROR_UNSUPPORTED, "%s: .npy format version %u.%u is not supported (1.0-3.0 are)",
                what, major, (guint)buf[7]);
    return FALSE;
  }
  if (hlen > len - start) {
    g_set_error(error, RAT_ERROR, RAT_ERROR_CORRUPT, "%s: truncated .npy header (%" G_GSIZE_FORMAT " header bytes "
                "announced, %" G_GSIZE_FORMAT " present)", what, hlen, len - start);
    return FALSE;
  }
  RatNpyArray a = {0};
  if (!parse_header((const char *)buf + start, hlen, what, &a, error)) return FALSE;
  gint64 n = 1;
  for (int i = 0; i < a.ndim; i++) {
    if (a.shape[i] && n > G_MAXINT64 / 16 / a.shape[i]) {
      g_set_error(error, RAT_ERROR, RAT_ERROR_CORRUPT, "%s: the shape is too large", what);
      return FALSE;
    }
    n *= a.shape[i];
  }
  gsize need = (gsize)n * itemsize(a.dtype), have = len - start - hlen;
  if (have != need) {
    char *d = rat_npy_describe(&a);
    g_set_error(error, RAT_ERROR, RAT_ERROR_CORRUPT, "%s: the header says %s (%" G_GSIZE_FORMAT " bytes of data) but "
                "%" G_GSIZE_FORMAT " bytes follow it%s", what, d, need, have, have < need ? " (truncated?)" : "");
    g_free(d);
    return FALSE;
  }
  /* an empty array still gets a buffer, but reads nothing: the member may end at the header */
  a.data = need ? g_memdup2(buf + start + hlen, need) : g_malloc0(1);
  *out = a;
  return TRUE;
}

guint8 *rat_npy_serialize(const RatNpyArray *a, gsize *len) {
  GString *h = g_string_new(NULL);
  g_string_append_printf(h, "{'descr': '%s', 'fortran_order': False, 'shape': (", a->dtype == RAT_NPY_F64 ? "<f8" : "<f4");
  for (int i = 0; i < a->ndim; i++) g_string_append_printf(h, "%" G_GINT64_FORMAT ",%s", a->shape[i], i + 1 < a->ndim ? " " : "");
  if (a->ndim > 1) g_string_truncate(h, h->len - 1); /* (a, b) but (n,) */
  g_string_append(h, "), }");
  /* pad with spaces so that magic + length + header + '\n' is a multiple of 64 (NumPy's alignment) */
  while ((10 + h->len + 1) % 64) g_string_append_c(h, ' ');
  g_string_append_c(h, '\n');
  gsize data = (gsize)rat_npy_numel(a) * itemsize(a->dtype);
  *len = 10 + h->len + data;
  guint8 *out = g_malloc(*len);
  memcpy(out, npy_magic, 6);
  out[6] = 1;
  out[7] = 0;
  out[8] = (guint8)(h->len & 0xff);
  out[9] = (guint8)(h->len >> 8);
  memcpy(out + 10, h->str, h->len);
  if (data) memcpy(out + 10 + h->len, a->data, data);
  g_string_free(h, TRUE);
  return out;
}

/* ---- .npz --------------------------------------------------------------------------------------------------- */

struct _RatNpz {
  char *path;
  zip_t *zip;
  GPtrArray *names;   /* array names */
  GArray *index;      /* zip index of each */
};

static void zip_fail(GError **error, const char *path, int code) {
  zip_error_t ze;
  zip_error_init_with_code(&ze, code);
  if (code == ZIP_ER_NOZIP)
    g_set_error(error, RAT_ERROR, RAT_ERROR_CORRUPT, "%s: not an .npz file: not a zip archive (%s)", path,
                zip_error_strerror(&ze));
  else
    g_set_error(error, RAT_ERROR, code == ZIP_ER_NOENT || code == ZIP_ER_OPEN || code == ZIP_ER_READ ? RAT_ERROR_IO
                : RAT_ERROR_CORRUPT, "%s: cannot open as .npz: %s", path, zip_error_strerror(&ze));
  zip_error_fini(&ze);
}

RatNpz *rat_npz_open(const char *path, GError **error) {
  if (!g_file_test(path, G_FILE_TEST_EXISTS)) {
    g_set_error(error, RAT_ERROR, RAT_ERROR_IO, "%s: no such file", path);
    return NULL;
  }
  int code = 0;
  zip_t *zip = zip_open(path, ZIP_RDONLY | ZIP_CHECKCONS, &code);
  if (!zip) {
    zip_fail(error, path, code);
    return NULL;
  }
  RatNpz *z = g_new0(RatNpz, 1);
  z->path = g_strdup(path);
  z->zip = zip;
  z->names = g_ptr_array_new_with_free_func(g_free);
  z->index = g_array_new(FALSE, FALSE, sizeof(zip_uint64_t));
  zip_int64_t n = zip_get_num_entries(zip, 0);
  for (zip_int64_t i = 0; i < n; i++) {
    const char *name = zip_get_name(zip, (zip_uint64_t)i, 0);
    if (!name) continue;
    char *arr = g_str_has_suffix(name, ".npy") ? g_strndup(name, strlen(name) - 4) : g_strdup(name);
    g_ptr_array_add(z->names, arr);
    zip_uint64_t ix = (zip_uint64_t)i;
    g_array_append_val(z->index, ix);
  }
  return z;
}

void rat_npz_close(RatNpz *z) {
  if (!z) return;
  if (z->zip) zip_discard(z->zip);
  g_ptr_array_unref(z->names);
  g_array_unref(z->index);
  g_free(z->path);
  g_free(z);
}

const char *rat_npz_path(const RatNpz *z) { return z->path; }
guint rat_npz_count(const RatNpz *z) { return z->names->len; }
const char *rat_npz_name(const RatNpz *z, guint i) { return i < z->names->len ? z->names->pdata[i] : NULL; }

static int find(const RatNpz *z, const char *name) {
  for (guint i = 0; i < z->names->len; i++)
    if (!strcmp(z->names->pdata[i], name)) return (int)i;
  return -1;
}

gboolean rat_npz_has(const RatNpz *z, const char *name) { return find(z, name) >= 0; }

gboolean rat_npz_read(RatNpz *z, const char *name, RatNpyArray *out, GError **error) {
  memset(out, 0, sizeof *out);
  int i = find(z, name);
  if (i < 0) {
    GString *all = g_string_new(NULL);
    for (guint k = 0; k < z->names->len; k++) g_string_append_printf(all, "%s%s", k ? ", " : "", (char *)z->names->pdata[k]);
    g_set_error(error, RAT_ERROR, RAT_ERROR_NOT_FOUND, "%s: no array '%s' (it holds: %s)", z->path, name,
                all->len ? all->str : "nothing");
    g_string_free(all, TRUE);
    return FALSE;
  }
  zip_uint64_t ix = g_array_index(z->index, zip_uint64_t, i);
  char *what = g_strdup_printf("%s: %s.npy", z->path, name);
  zip_stat_t st;
  gboolean ok = FALSE;
  guint8 *buf = NULL;
  if (zip_stat_index(z->zip, ix, 0, &st) != 0 || !(st.valid & ZIP_STAT_SIZE)) {
    g_set_error(error, RAT_ERROR, RAT_ERROR_CORRUPT, "%s: cannot read the member's size (%s)", what, zip_strerror(z->zip));
    goto out;
  }
  if (st.size > ((zip_uint64_t)1 << 40)) {
    g_set_error(error, RAT_ERROR, RAT_ERROR_CORRUPT, "%s: member of %" G_GUINT64_FORMAT " bytes is implausibly large",
                what, (guint64)st.size);
    goto out;
  }
  zip_file_t *f = zip_fopen_index(z->zip, ix, 0);
  if (!f) {
    g_set_error(error, RAT_ERROR, RAT_ERROR_CORRUPT, "%s: cannot open the member (%s)", what, zip_strerror(z->zip));
    goto out;
  }
  buf = g_malloc(st.size ? st.size : 1);
  zip_uint64_t got = 0;
  while (got < st.size) {
    zip_int64_t r = zip_fread(f, buf + got, st.size - got);
    if (r <= 0) break;
    got += (zip_uint64_t)r;
  }
  gboolean read_ok = got == st.size;
  if (!read_ok)
    g_set_error(error, RAT_ERROR, RAT_ERROR_CORRUPT, "%s: truncated or corrupt member (read %" G_GUINT64_FORMAT " of %"
                G_GUINT64_FORMAT " bytes: %s)", what, (guint64)got, (guint64)st.size, zip_file_strerror(f));
  zip_fclose(f);
  if (read_ok) ok = rat_npy_parse(buf, st.size, what, out, error);
out:
  g_free(buf);
  g_free(what);
  return ok;
}

double *rat_npz_read_f64(RatNpz *z, const char *name, int *ndim, gint64 *shape, GError **error) {
  RatNpyArray a;
  if (!rat_npz_read(z, name, &a, error)) return NULL;
  *ndim = a.ndim;
  memcpy(shape, a.shape, sizeof a.shape);
  if (a.dtype == RAT_NPY_F64) return a.data;
  gint64 n = rat_npy_numel(&a);
  double *d = g_new(double, MAX(n, 1));
  const float *f = a.data;
  for (gint64 i = 0; i < n; i++) d[i] = f[i];
  g_free(a.data);
  return d;
}

gboolean rat_npz_write(const char *path, guint n, const char *const *names, const RatNpyArray *arrays,
                       gboolean compress, GError **error) {
  char *tmp = g_strdup_printf("%s.tmp.%d", path, (int)getpid());
  g_unlink(tmp);
  int code = 0;
  gboolean ok = FALSE;
  GPtrArray *bufs = g_ptr_array_new_with_free_func(g_free);
  zip_t *zip = zip_open(tmp, ZIP_CREATE | ZIP_EXCL, &code);
  if (!zip) {
    zip_error_t ze;
    zip_error_init_with_code(&ze, code);
    g_set_error(error, RAT_ERROR, RAT_ERROR_IO, "cannot write %s: %s", tmp, zip_error_strerror(&ze));
    zip_error_fini(&ze);
    goto out;
  }
  for (guint i = 0; i < n; i++) {
    gsize len;
    guint8 *b = rat_npy_serialize(&arrays[i], &len);
    g_ptr_array_add(bufs, b);
    zip_source_t *src = zip_source_buffer(zip, b, len, 0);
    char *member = g_strdup_printf("%s.npy", names[i]);
    zip_int64_t ix = src ? zip_file_add(zip, member, src, ZIP_FL_ENC_UTF_8) : -1;
    g_free(member);
    if (ix < 0) {
      if (src) zip_source_free(src);
      g_set_error(error, RAT_ERROR, RAT_ERROR_IO, "cannot write %s: %s", tmp, zip_strerror(zip));
      zip_discard(zip);
      goto out;
    }
    zip_set_file_compression(zip, (zip_uint64_t)ix, compress ? ZIP_CM_DEFLATE : ZIP_CM_STORE, 0);
    zip_file_set_mtime(zip, (zip_uint64_t)ix, 315532800, 0); /* 1980-01-01: the same arrays give the same bytes */
  }
  if (zip_close(zip) != 0) {
    g_set_error(error, RAT_ERROR, RAT_ERROR_IO, "cannot write %s: %s", tmp, zip_strerror(zip));
    zip_discard(zip);
    goto out;
  }
  int fd = g_open(tmp, O_RDONLY, 0);
  if (fd < 0 || fsync(fd) != 0) {
    g_set_error(error, RAT_ERROR, RAT_ERROR_IO, "cannot flush %s: %s", tmp, g_strerror(errno));
    if (fd >= 0) close(fd);
    goto out;
  }
  close(fd);
  if (g_rename(tmp, path) != 0) {
    g_set_error(error, RAT_ERROR, RAT_ERROR_IO, "cannot rename %s to %s: %s", tmp, path, g_strerror(errno));
    goto out;
  }
  ok = TRUE;
out:
  if (!ok) g_unlink(tmp);
  g_ptr_array_unref(bufs);
  g_free(tmp);
  return ok;
}
