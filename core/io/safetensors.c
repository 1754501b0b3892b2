/* safetensors reader and writer (https://github.com/huggingface/safetensors format): an 8-byte little-endian
 * header length, a JSON header {name: {dtype, shape, data_offsets}, "__metadata__": {str: str}}, then the
 * raw little-endian data. Reading maps the file and validates every offset before touching data. */
#include "config.h"

#include "ratfw-private.h"
#include <ratfw/error.h>
#include <ratfw/io.h>

#include <errno.h>
#include <fcntl.h>
#include <glib/gstdio.h>
#include <json-glib/json-glib.h>
#include <math.h>
#include <unistd.h>

typedef struct {
  char *name;
  char *dtype;
  RatShape shape;
  guint64 begin, end; /* relative to the data section */
} Entry;

struct _RatSafetensors {
  char *path;
  GMappedFile *map;
  const guint8 *data; /* start of data section */
  guint64 data_len;
  GPtrArray *entries; /* Entry*, sorted by begin */
  GHashTable *by_name;
  GHashTable *metadata;
};

static void entry_free(gpointer p) {
  Entry *e = p;
  g_free(e->name);
  g_free(e->dtype);
  g_free(e);
}

static int dtype_bytes(const char *d) {
  static const struct {
    const char *n;
    int b;
  } t[] = {{"F64", 8}, {"F32", 4}, {"F16", 2}, {"BF16", 2}, {"I64", 8}, {"I32", 4},
           {"I16", 2}, {"I8", 1},  {"U8", 1},  {"BOOL", 1}, {"U16", 2}, {"U32", 4}};
  for (guint i = 0; i < G_N_ELEMENTS(t); i++)
    if (!strcmp(d, t[i].n)) return t[i].b;
  return 0;
}

static int cmp_begin(gconstpointer a, gconstpointer b) {
  const Entry *x = *(Entry *const *)a, *y = *(Entry *const *)b;
  return x->begin < y->begin ? -1 : (x->begin > y->begin ? 1 : 0);
}

#define CORRUPT(...)                                                                                          \
  do {                                                                                                        \
    char *m_ = g_strdup_printf(__VA_ARGS__);                                                                  \
    g_set_error(error, RAT_ERROR, RAT_ERROR_CORRUPT, "%s: not a valid safetensors file: %s", path, m_);       \
    g_free(m_);                                                                                               \
    goto fail;                                                                                                \
  } while (0)

RatSafetensors *rat_safetensors_open(const char *path, GError **error) {
  GError *e = NULL;
  RatSafetensors *st = g_new0(RatSafetensors, 1);
  JsonParser *parser = NULL;
  st->path = g_strdup(path);
  st->entries = g_ptr_array_new_with_free_func(entry_free);
  st->by_name = g_hash_table_new(g_str_hash, g_str_equal);
  st->metadata = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, g_free);
  st->map = g_mapped_file_new(path, FALSE, &e);
  if (!st->map) {
    g_set_error(error, RAT_ERROR, RAT_ERROR_IO, "cannot open %s: %s", path, e->message);
    g_error_free(e);
    goto fail;
  }
  gsize len = g_mapped_file_get_length(st->map);
  const guint8 *buf = (const guint8 *)g_mapped_file_get_contents(st->map);
  if (len < 8) CORRUPT("file is %" G_GSIZE_FORMAT " bytes, shorter than the 8-byte header length", len);
  guint64 hlen = 0;
  for (int i = 7; i >= 0; i--) hlen = (hlen << 8) | buf[i];
  if (hlen > len - 8) CORRUPT("header length %" G_GUINT64_FORMAT " exceeds the file size (truncated file?)", hlen);
  if (hlen > 100u * 1024 * 1024) CORRUPT("header length %" G_GUINT64_FORMAT " is implausibly large", hlen);
  st->data = buf + 8 + hlen;
  st->data_len = len - 8 - hlen;

  parser = json_parser_new();
  if (!json_parser_load_from_data(parser, (const char *)buf + 8, (gssize)hlen, &e)) {
    g_set_error(error, RAT_ERROR, RAT_ERROR_CORRUPT, "%s: not a valid safetensors file: header is not JSON (%s)",
                path, e->message);
    g_error_free(e);
    goto fail;
  }
  JsonNode *root = json_parser_get_root(parser);
  if (!root || !JSON_NODE_HOLDS_OBJECT(root)) CORRUPT("header is not a JSON object");
  JsonObject *obj = json_node_get_object(root);
  GList *members = json_object_get_members(obj);
  for (GList *l = members; l; l = l->next) {
    const char *name = l->data;
    JsonNode *node = json_object_get_member(obj, name);
    if (!strcmp(name, "__metadata__")) {
      if (!JSON_NODE_HOLDS_OBJECT(node)) {
        g_list_free(members);
        CORRUPT("__metadata__ is not an object");
      }
      JsonObject *mo = json_node_get_object(node);
      GList *mk = json_object_get_members(mo);
      for (GList *m = mk; m; m = m->next) {
        JsonNode *v = json_object_get_member(mo, m->data);
        if (JSON_NODE_HOLDS_VALUE(v) && json_node_get_value_type(v) == G_TYPE_STRING)
          g_hash_table_insert(st->metadata, g_strdup(m->data), g_strdup(json_node_get_string(v)));
      }
      g_list_free(mk);
      continue;
    }
    if (!JSON_NODE_HOLDS_OBJECT(node)) {
      g_list_free(members);
      CORRUPT("entry '%s' is not an object", name);
    }
    JsonObject *to = json_node_get_object(node);
    JsonNode *dt = json_object_get_member(to, "dtype"), *sh = json_object_get_member(to, "shape"),
             *of = json_object_get_member(to, "data_offsets");
    if (!dt || !sh || !of || !JSON_NODE_HOLDS_VALUE(dt) || !JSON_NODE_HOLDS_ARRAY(sh) || !JSON_NODE_HOLDS_ARRAY(of)) {
      g_list_free(members);
      CORRUPT("entry '%s' lacks dtype, shape or data_offsets", name);
    }
    Entry *en = g_new0(Entry, 1);
    en->name = g_strdup(name);
    en->dtype = g_strdup(json_node_get_string(dt) ? json_node_get_string(dt) : "");
    g_ptr_array_add(st->entries, en);
    int esz = dtype_bytes(en->dtype);
    if (!esz) {
      g_list_free(members);
      CORRUPT("entry '%s' has unsupported dtype '%s'", name, en->dtype);
    }
    JsonArray *sa = json_node_get_array(sh), *oa = json_node_get_array(of);
    if (json_array_get_length(sa) > RAT_MAX_DIMS || json_array_get_length(oa) != 2) {
      g_list_free(members);
      CORRUPT("entry '%s' has a bad shape or offsets", name);
    }
    en->shape.ndim = (int)json_array_get_length(sa);
    guint64 numel = 1;
    for (int i = 0; i < en->shape.ndim; i++) {
      gint64 d = json_array_get_int_element(sa, i);
      if (d < 0 || d > ((gint64)1 << 40)) {
        g_list_free(members);
        CORRUPT("entry '%s' has a negative or huge dimension", name);
      }
      en->shape.d[i] = d;
      numel *= (guint64)d;
    }
    gint64 b = json_array_get_int_element(oa, 0), f = json_array_get_int_element(oa, 1);
    if (b < 0 || f < b || (guint64)f > st->data_len) {
      g_list_free(members);
      CORRUPT("entry '%s' has data offsets [%" G_GINT64_FORMAT ", %" G_GINT64_FORMAT ") outside the %" G_GUINT64_FORMAT
              "-byte data section (truncated file?)",
              name, b, f, st->data_len);
    }
    if ((guint64)(f - b) != numel * (guint64)esz) {
      g_list_free(members);
      CORRUPT("entry '%s' has %" G_GINT64_FORMAT " bytes but its shape and dtype need %" G_GUINT64_FORMAT, name,
              f - b, numel * esz);
    }
    en->begin = (guint64)b;
    en->end = (guint64)f;
    g_hash_table_insert(st->by_name, en->name, en);
  }
  g_list_free(members);
  g_ptr_array_sort(st->entries, cmp_begin);
  for (guint i = 1; i < st->entries->len; i++) {
    Entry *p = st->entries->pdata[i - 1], *q = st->entries->pdata[i];
    if (q->begin < p->end) CORRUPT("entries '%s' and '%s' overlap", p->name, q->name);
  }
  g_object_unref(parser);
  return st;
fail:
  if (parser) g_object_unref(parser);
  rat_safetensors_close(st);
  return NULL;
}

void rat_safetensors_close(RatSafetensors *st) {
  if (!st) return;
  if (st->map) g_mapped_file_unref(st->map);
  g_hash_table_destroy(st->by_name);
  g_hash_table_destroy(st->metadata);
  g_ptr_array_free(st->entries, TRUE);
  g_free(st->path);
  g_free(st);
}

guint rat_safetensors_count(const RatSafetensors *st) { return st->entries->len; }
const char *rat_safetensors_name(const RatSafetensors *st, guint i) {
  return i < st->entries->len ? ((Entry *)st->entries->pdata[i])->name : NULL;
}
gboolean rat_safetensors_has(const RatSafetensors *st, const char *name) {
  return g_hash_table_contains(st->by_name, name);
}
GHashTable *rat_safetensors_metadata(const RatSafetensors *st) { return st->metadata; }
const char *rat_safetensors_meta(const RatSafetensors *st, const char *key) {
  return g_hash_table_lookup(st->metadata, key);
}

gboolean rat_safetensors_info(const RatSafetensors *st, const char *name, RatShape *shape, const char **dtype) {
  Entry *e = g_hash_table_lookup(st->by_name, name);
  if (!e) return FALSE;
  if (shape) *shape = e->shape;
  if (dtype) *dtype = e->dtype;
  return TRUE;
}

static float half_to_float(guint16 h) {
  guint32 s = (h & 0x8000u) << 16, e = (h >> 10) & 0x1f, m = h & 0x3ff, bits;
  if (e == 0) {
    if (m == 0) {
      bits = s;
    } else { /* subnormal */
      e = 127 - 15 + 1;
      while (!(m & 0x400)) {
        m <<= 1;
        e--;
      }
      m &= 0x3ff;
      bits = s | (e << 23) | (m << 13);
    }
  } else if (e == 31) {
    bits = s | 0x7f800000u | (m << 13);
  } else {
    bits = s | ((e - 15 + 127) << 23) | (m << 13);
  }
  float f;
  memcpy(&f, &bits, 4);
  return f;
}

RatTensor *rat_safetensors_get(const RatSafetensors *st, const char *name, GError **error) {
  Entry *e = g_hash_table_lookup(st->by_name, name);
  if (!e) {
    g_set_error(error, RAT_ERROR, RAT_ERROR_NOT_FOUND, "%s: no tensor named '%s'", st->path, name);
    return NULL;
  }
  const guint8 *src = st->data + e->begin;
  gint64 n = rat_shape_numel(e->shape);
  const char *d = e->dtype;
  gboolean is_float = !strcmp(d, "F32") || !strcmp(d, "F16") || !strcmp(d, "BF16") || !strcmp(d, "F64");
  RatTensor *t = rat_empty_dtype(is_float ? RAT_DTYPE_F32 : RAT_DTYPE_I32, e->shape);
  if (is_float) {
    float *o = rat_tensor_data(t);
    if (!strcmp(d, "F32")) {
      memcpy(o, src, n * 4);
    } else if (!strcmp(d, "F64")) {
      for (gint64 i = 0; i < n; i++) {
        double v;
        memcpy(&v, src + 8 * i, 8);
        o[i] = (float)v;
      }
    } else if (!strcmp(d, "F16")) {
      for (gint64 i = 0; i < n; i++) {
        guint16 h;
        memcpy(&h, src + 2 * i, 2);
        o[i] = half_to_float(h);
      }
    } else {
      for (gint64 i = 0; i < n; i++) {
        guint16 h;
        memcpy(&h, src + 2 * i, 2);
        guint32 bits = (guint32)h << 16;
        memcpy(&o[i], &bits, 4);
      }
    }
  } else {
    gint32 *o = rat_tensor_data_i32(t);
    int esz = dtype_bytes(d);
    for (gint64 i = 0; i < n; i++) {
      gint64 v = 0;
      const guint8 *p = src + esz * i;
      if (!strcmp(d, "I64")) {
        memcpy(&v, p, 8);
      } else if (!strcmp(d, "I32")) {
        gint32 x;
        memcpy(&x, p, 4);
        v = x;
      } else if (!strcmp(d, "U32")) {
        guint32 x;
        memcpy(&x, p, 4);
        v = x;
      } else if (!strcmp(d, "I16")) {
        gint16 x;
        memcpy(&x, p, 2);
        v = x;
      } else if (!strcmp(d, "U16")) {
        guint16 x;
        memcpy(&x, p, 2);
        v = x;
      } else if (!strcmp(d, "I8")) {
        v = (gint8)p[0];
      } else {
        v = p[0];
      }
      if (v > G_MAXINT32 || v < G_MININT32) {
        g_set_error(error, RAT_ERROR, RAT_ERROR_UNSUPPORTED, "%s: tensor '%s' holds %" G_GINT64_FORMAT
                    ", outside the 32-bit range ratfw uses for integers", st->path, name, v);
        return NULL;
      }
      o[i] = (gint32)v;
    }
  }
  return t;
}

/* ---- writing --------------------------------------------------------------------------------------------- */

gboolean rat_file_write_atomic(const char *path, const void *data, gsize len, GError **error) {
  char *tmp = g_strdup_printf("%s.tmp.%d", path, (int)getpid());
  int fd = g_open(tmp, O_WRONLY | O_CREAT | O_TRUNC, 0644);
  gboolean ok = FALSE;
  if (fd < 0) {
    g_set_error(error, RAT_ERROR, RAT_ERROR_IO, "cannot write %s: %s", tmp, g_strerror(errno));
    goto out;
  }
  const char *p = data;
  gsize left = len;
  while (left) {
    gssize w = write(fd, p, left);
    if (w < 0) {
      if (errno == EINTR) continue;
      g_set_error(error, RAT_ERROR, RAT_ERROR_IO, "cannot write %s: %s", tmp, g_strerror(errno));
      close(fd);
      g_unlink(tmp);
      goto out;
    }
    p += w;
    left -= (gsize)w;
  }
  if (fsync(fd) != 0 || close(fd) != 0) {
    g_set_error(error, RAT_ERROR, RAT_ERROR_IO, "cannot flush %s: %s", tmp, g_strerror(errno));
    g_unlink(tmp);
    goto out;
  }
  if (g_rename(tmp, path) != 0) {
    g_set_error(error, RAT_ERROR, RAT_ERROR_IO, "cannot rename %s to %s: %s", tmp, path, g_strerror(errno));
    g_unlink(tmp);
    goto out;
  }
  ok = TRUE;
out:
  g_free(tmp);
  return ok;
}

gboolean rat_safetensors_save(const char *path, guint n, const char *const *names, RatTensor *const *tensors,
                              GHashTable *metadata, GError **error) {
  JsonBuilder *b = json_builder_new();
  json_builder_begin_object(b);
  if (metadata && g_hash_table_size(metadata)) {
    json_builder_set_member_name(b, "__metadata__");
    json_builder_begin_object(b);
    GList *keys = g_list_sort(g_hash_table_get_keys(metadata), (GCompareFunc)strcmp);
    for (GList *l = keys; l; l = l->next) {
      json_builder_set_member_name(b, l->data);
      json_builder_add_string_value(b, g_hash_table_lookup(metadata, l->data));
    }
    g_list_free(keys);
    json_builder_end_object(b);
  }
  guint64 off = 0;
  for (guint i = 0; i < n; i++) {
    RatTensor *t = tensors[i];
    guint64 bytes = (guint64)rat_tensor_numel(t) * 4;
    json_builder_set_member_name(b, names[i]);
    json_builder_begin_object(b);
    json_builder_set_member_name(b, "dtype");
    json_builder_add_string_value(b, t->dtype == RAT_DTYPE_I32 ? "I32" : "F32");
    json_builder_set_member_name(b, "shape");
    json_builder_begin_array(b);
    for (int d = 0; d < t->ndim; d++) json_builder_add_int_value(b, t->shape[d]);
    json_builder_end_array(b);
    json_builder_set_member_name(b, "data_offsets");
    json_builder_begin_array(b);
    json_builder_add_int_value(b, (gint64)off);
    json_builder_add_int_value(b, (gint64)(off + bytes));
    json_builder_end_array(b);
    json_builder_end_object(b);
    off += bytes;
  }
  json_builder_end_object(b);
  JsonGenerator *gen = json_generator_new();
  JsonNode *root = json_builder_get_root(b);
  json_generator_set_root(gen, root);
  gsize hlen = 0;
  char *header = json_generator_to_data(gen, &hlen);
  gsize padded = (hlen + 7) & ~(gsize)7; /* keep the data section 8-byte aligned */
  gsize total = 8 + padded + off;
  guint8 *buf = g_malloc(total);
  guint64 h = padded;
  for (int i = 0; i < 8; i++) buf[i] = (guint8)(h >> (8 * i));
  memcpy(buf + 8, header, hlen);
  memset(buf + 8 + hlen, ' ', padded - hlen);
  guint8 *dp = buf + 8 + padded;
  for (guint i = 0; i < n; i++) {
    RatTensor *t = tensors[i];
    gint64 cnt = rat_tensor_numel(t);
    if (t->dtype == RAT_DTYPE_I32 && rat_tensor_is_contiguous(t)) {
      memcpy(dp, rat_tensor_data_i32(t), cnt * 4);
    } else if (t->dtype == RAT_DTYPE_I32) {
      gint32 *tmp = g_new(gint32, MAX(cnt, 1));
      float *f = g_new(float, MAX(cnt, 1));
      rat_tensor_read(t, f);
      for (gint64 k = 0; k < cnt; k++) tmp[k] = (gint32)f[k];
      memcpy(dp, tmp, cnt * 4);
      g_free(tmp);
      g_free(f);
    } else {
      rat_tensor_read(t, (float *)dp);
    }
    dp += cnt * 4;
  }
  gboolean ok = rat_file_write_atomic(path, buf, total, error);
  g_free(buf);
  g_free(header);
  json_node_unref(root);
  g_object_unref(gen);
  g_object_unref(b);
  return ok;
}
