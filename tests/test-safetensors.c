/* safetensors: round trip with metadata and any strides; reading F16, BF16, F64, I64 written by hand; every
 * truncation, header corruptions, bad offsets and random byte flips give a GError naming the file, never a crash;
 * writes are atomic (no temporary file left behind). */
#include "config.h"

#include "testutil.h"

#include <glib/gstdio.h>
#include <string.h>

static char *tmpdir;

static char *tmp_path(const char *name) { return g_build_filename(tmpdir, name, NULL); }

static void test_round_trip(void) {
  RatScope s = rat_scope_push();
  RatTensor *a = rat_test_randn(RAT_SHAPE(2, 3, 4), 1);
  RatTensor *b = rat_transpose(rat_test_randn(RAT_SHAPE(5, 6), 2), 0, 1); /* non-contiguous */
  RatTensor *ids = rat_from_i32(RAT_SHAPE(4), (gint32[]){0, -7, 49407, 16777217});
  RatTensor *z = rat_scalar(3.5f);
  const char *names[4] = {"a", "b.t", "ids", "z"};
  RatTensor *ts[4] = {a, b, ids, z};
  GHashTable *meta = g_hash_table_new(g_str_hash, g_str_equal);
  g_hash_table_insert(meta, "step", "42");
  char *path = tmp_path("rt.safetensors");
  GError *e = NULL;
  g_assert_true(rat_safetensors_save(path, 4, names, ts, meta, &e));
  g_assert_no_error(e);
  RatSafetensors *st = rat_safetensors_open(path, &e);
  g_assert_no_error(e);
  g_assert_cmpuint(rat_safetensors_count(st), ==, 4);
  g_assert_cmpstr(rat_safetensors_meta(st, "step"), ==, "42");
  for (int i = 0; i < 4; i++) rat_assert_close(rat_safetensors_get(st, names[i], &e), ts[i], 0, 0, names[i]);
  RatTensor *ri = rat_safetensors_get(st, "ids", &e);
  g_assert_cmpint(ri->dtype, ==, RAT_DTYPE_I32);
  g_assert_cmpint(rat_tensor_data_i32(ri)[3], ==, 16777217);
  g_assert_null(rat_safetensors_get(st, "missing", &e));
  g_assert_error(e, RAT_ERROR, RAT_ERROR_NOT_FOUND);
  g_assert_nonnull(strstr(e->message, "missing"));
  g_clear_error(&e);
  rat_safetensors_close(st);
  /* atomic write: only the file itself in the directory */
  GDir *d = g_dir_open(tmpdir, 0, NULL);
  const char *f;
  while ((f = g_dir_read_name(d))) g_assert_null(strstr(f, ".tmp."));
  g_dir_close(d);
  g_hash_table_destroy(meta);
  g_free(path);
  rat_scope_pop(s);
}

/* A file with the given header and raw data section. */
static char *write_raw(const char *name, const char *header, const void *data, gsize len) {
  char *path = tmp_path(name);
  gsize hl = strlen(header);
  GByteArray *b = g_byte_array_new();
  guint8 n8[8];
  for (int i = 0; i < 8; i++) n8[i] = (guint8)((guint64)hl >> (8 * i));
  g_byte_array_append(b, n8, 8);
  g_byte_array_append(b, (const guint8 *)header, (guint)hl);
  g_byte_array_append(b, data, (guint)len);
  g_assert_true(g_file_set_contents(path, (const char *)b->data, b->len, NULL));
  g_byte_array_unref(b);
  return path;
}

static void test_dtypes(void) {
  RatScope s = rat_scope_push();
  /* 1.0, -2.0, 0.5 in F16 and BF16; 3.25 in F64; 123456789012 would overflow i32, 7 fits, in I64 */
  guint16 f16[3] = {0x3c00, 0xc000, 0x3800}, bf16[3] = {0x3f80, 0xc000, 0x3f00};
  double f64 = 3.25;
  gint64 i64[2] = {7, -9};
  guint8 data[6 + 6 + 8 + 16];
  memcpy(data, f16, 6);
  memcpy(data + 6, bf16, 6);
  memcpy(data + 12, &f64, 8);
  memcpy(data + 20, i64, 16);
  char *path = write_raw("dt.safetensors",
                         "{\"h\":{\"dtype\":\"F16\",\"shape\":[3],\"data_offsets\":[0,6]},"
                         "\"b\":{\"dtype\":\"BF16\",\"shape\":[3],\"data_offsets\":[6,12]},"
                         "\"d\":{\"dtype\":\"F64\",\"shape\":[],\"data_offsets\":[12,20]},"
                         "\"i\":{\"dtype\":\"I64\",\"shape\":[2],\"data_offsets\":[20,36]}}",
                         data, sizeof(data));
  GError *e = NULL;
  RatSafetensors *st = rat_safetensors_open(path, &e);
  g_assert_no_error(e);
  RatTensor *want = rat_from_data(RAT_SHAPE(3), (float[]){1.0f, -2.0f, 0.5f});
  rat_assert_close(rat_safetensors_get(st, "h", &e), want, 0, 0, "F16");
  rat_assert_close(rat_safetensors_get(st, "b", &e), want, 0, 0, "BF16");
  g_assert_cmpfloat(rat_tensor_item(rat_safetensors_get(st, "d", &e)), ==, 3.25f);
  RatTensor *i = rat_safetensors_get(st, "i", &e);
  g_assert_cmpint(rat_tensor_data_i32(i)[0], ==, 7);
  g_assert_cmpint(rat_tensor_data_i32(i)[1], ==, -9);
  rat_safetensors_close(st);
  g_free(path);
  rat_scope_pop(s);
}

static void expect_corrupt(const char *path, const char *what) {
  GError *e = NULL;
  RatSafetensors *st = rat_safetensors_open(path, &e);
  if (st) {
    /* the header may be intact: every tensor must then still read without a crash */
    for (guint i = 0; i < rat_safetensors_count(st); i++) {
      RatScope s = rat_scope_push();
      rat_safetensors_get(st, rat_safetensors_name(st, i), NULL);
      rat_scope_pop(s);
    }
    rat_safetensors_close(st);
    return;
  }
  if (!g_error_matches(e, RAT_ERROR, RAT_ERROR_CORRUPT) && !g_error_matches(e, RAT_ERROR, RAT_ERROR_IO))
    g_error("%s: unexpected error %s", what, e->message);
  if (!strstr(e->message, path)) g_error("%s: error does not name the file: %s", what, e->message);
  g_error_free(e);
}

static void test_corrupt(void) {
  RatScope s = rat_scope_push();
  char *good = tmp_path("good.safetensors");
  RatTensor *a = rat_test_randn(RAT_SHAPE(3, 5), 3), *b = rat_test_randn(RAT_SHAPE(7), 4);
  const char *names[2] = {"a", "b"};
  RatTensor *ts[2] = {a, b};
  GError *e = NULL;
  g_assert_true(rat_safetensors_save(good, 2, names, ts, NULL, &e));
  char *buf;
  gsize len;
  g_assert_true(g_file_get_contents(good, &buf, &len, NULL));
  char *bad = tmp_path("bad.safetensors");
  /* every truncation: the header or data no longer fits */
  for (gsize cut = 0; cut < len; cut++) {
    g_assert_true(g_file_set_contents(bad, buf, (gssize)cut, NULL));
    GError *te = NULL;
    RatSafetensors *st = rat_safetensors_open(bad, &te);
    if (st) g_error("truncation at %" G_GSIZE_FORMAT " of %" G_GSIZE_FORMAT " bytes was accepted", cut, len);
    g_assert_true(g_error_matches(te, RAT_ERROR, RAT_ERROR_CORRUPT));
    g_assert_nonnull(strstr(te->message, bad));
    g_error_free(te);
  }
  /* hand-made header faults, each a CORRUPT error */
  static const char *const headers[] = {
      "not json",
      "[1, 2]",
      "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,4]}}",    /* size does not match the shape */
      "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,800]}}",  /* past the end */
      "{\"a\":{\"dtype\":\"Q7\",\"shape\":[2],\"data_offsets\":[0,8]}}",     /* unknown dtype */
      "{\"a\":{\"dtype\":\"F32\",\"shape\":[-2],\"data_offsets\":[0,8]}}",   /* negative dimension */
      "{\"a\":{\"dtype\":\"F32\",\"shape\":[2]}}",                           /* no offsets */
      "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
      "\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[4,12]}}",    /* overlap */
  };
  float data[4] = {1, 2, 3, 4};
  for (guint i = 0; i < G_N_ELEMENTS(headers); i++) {
    char *p = write_raw("h.safetensors", headers[i], data, sizeof(data));
    GError *he = NULL;
    g_assert_null(rat_safetensors_open(p, &he));
    g_assert_error(he, RAT_ERROR, RAT_ERROR_CORRUPT);
    g_assert_nonnull(strstr(he->message, p));
    g_error_free(he);
    g_free(p);
  }
  /* random byte flips never crash */
  GRand *r = g_rand_new_with_seed(11);
  for (int k = 0; k < 400; k++) {
    char *c = g_memdup2(buf, len);
    int flips = g_rand_int_range(r, 1, 4);
    for (int f = 0; f < flips; f++) c[g_rand_int_range(r, 0, (gint32)len)] ^= (char)(1 << g_rand_int_range(r, 0, 8));
    g_assert_true(g_file_set_contents(bad, c, (gssize)len, NULL));
    expect_corrupt(bad, "byte flip");
    g_free(c);
  }
  g_rand_free(r);
  /* a missing file is an I/O error naming it */
  char *missing = tmp_path("nope.safetensors");
  g_assert_null(rat_safetensors_open(missing, &e));
  g_assert_error(e, RAT_ERROR, RAT_ERROR_IO);
  g_assert_nonnull(strstr(e->message, missing));
  g_clear_error(&e);
  g_free(missing);
  g_free(buf);
  g_free(bad);
  g_free(good);
  rat_scope_pop(s);
}

int main(int argc, char **argv) {
  rat_test_init(&argc, &argv);
  tmpdir = g_dir_make_tmp("ratfw-st-XXXXXX", NULL);
  g_test_add_func("/safetensors/round-trip", test_round_trip);
  g_test_add_func("/safetensors/dtypes", test_dtypes);
  g_test_add_func("/safetensors/corrupt", test_corrupt);
  int rc = g_test_run();
  GDir *d = g_dir_open(tmpdir, 0, NULL);
  const char *f;
  while (d && (f = g_dir_read_name(d))) {
    char *p = tmp_path(f);
    g_unlink(p);
    g_free(p);
  }
  if (d) g_dir_close(d);
  g_rmdir(tmpdir);
  g_free(tmpdir);
  return rc;
}
