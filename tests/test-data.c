/* Data layer: decoding against PIL (bit-exact), corrupt and truncated files, the reference augmentation against
 * torchvision 0.14 (fixtures from tools/reference/ref_data.py), RNG-driven crops, the pickle reader (Python's own
 * pickles, refused opcodes, fuzzing), emoji on a fake package (and the real one when cached), IDX/Fashion-MNIST,
 * procedural shapes. */
#include "config.h"

#include "testutil.h"

#include <ratfw/data.h>

#include <glib/gstdio.h>
#include <math.h>
#ifdef _OPENMP
#include <omp.h>
#endif

static char *fixture_path(const char *rel) {
  const char *src = g_getenv("RATFW_SRCDIR");
  return g_build_filename(src ? src : RATFW_SRCDIR, "tests", "fixtures", "data", rel, NULL);
}

static JsonNode *load_json(const char *rel) {
  char *p = fixture_path(rel);
  JsonParser *parser = json_parser_new();
  GError *e = NULL;
  if (!json_parser_load_from_file(parser, p, &e))
    g_error("%s: %s", p, e->message);
  JsonNode *n = json_node_copy(json_parser_get_root(parser));
  g_object_unref(parser);
  g_free(p);
  return n;
}

static RatImage *read_fixture_image(const char *rel, RatImageAlpha alpha) {
  char *p = fixture_path(rel);
  GError *e = NULL;
  RatImage *img = rat_image_read(p, alpha, &e);
  if (!img)
    g_error("%s", e->message);
  g_free(p);
  return img;
}

/* Largest |a - b| over pixels; *n_diff counts differing bytes. */
static int image_max_diff(const RatImage *a, const RatImage *b, gsize *n_diff) {
  g_assert_cmpint(a->width, ==, b->width);
  g_assert_cmpint(a->height, ==, b->height);
  int m = 0;
  gsize n = 0;
  for (gsize i = 0; i < (gsize)a->width * a->height * 3; i++) {
    int d = abs((int)a->rgb[i] - (int)b->rgb[i]);
    m = MAX(m, d);
    n += d != 0;
  }
  if (n_diff)
    *n_diff = n;
  return m;
}

static RatImage *image_from_i32(RatTensor *t) { /* [H, W, 3] */
  RatImage *img = rat_image_new((int)t->shape[1], (int)t->shape[0]);
  const gint32 *p = rat_tensor_data_i32(t);
  for (gint64 i = 0; i < rat_tensor_numel(t); i++)
    img->rgb[i] = (guint8)p[i];
  return img;
}

/* ---- decoding ------------------------------------------------------------------------------------------ */

static void test_decode_golden(void) {
  RatScope s = rat_scope_push();
  RatFixture *f = rat_fixture_open("data");
  guint n = 0;
  for (guint i = 0; i < json_array_get_length(f->cases); i++) {
    JsonObject *c = json_array_get_object_element(f->cases, i);
    if (strcmp(json_object_get_string_member(c, "op"), "decode"))
      continue;
    const char *file = json_object_get_string_member(c, "file");
    gboolean white = !strcmp(json_object_get_string_member(c, "alpha"), "white");
    RatImage *got = read_fixture_image(file, white ? RAT_IMAGE_ALPHA_WHITE : RAT_IMAGE_ALPHA_DROP);
    RatImage *want;
    if (json_object_has_member(c, "ref")) {
      char *rel = g_build_filename("ref", json_object_get_string_member(c, "ref"), NULL);
      want = read_fixture_image(rel, RAT_IMAGE_ALPHA_DROP);
      g_free(rel);
    } else {
      want = image_from_i32(rat_fixture_get(f, "c%u.rgb", i));
    }
    gsize nd = 0;
    int md = image_max_diff(got, want, &nd);
    if (md)
      g_test_message("%s (%s, alpha %s): %" G_GSIZE_FORMAT " bytes differ, max %d", file,
                     json_object_get_string_member(c, "mode"), white ? "white" : "drop", nd, md);
    g_assert_cmpint(md, ==, 0);
    rat_image_free(got);
    rat_image_free(want);
    n++;
  }
  g_assert_cmpuint(n, >=, 10);
  /* rat_image_load: [3,H,W] in [0,1], alpha on white */
  char *p = fixture_path("rgba.png");
  GError *e = NULL;
  RatTensor *t = rat_image_load(p, &e);
  g_assert_no_error(e);
  g_assert_cmpint(t->ndim, ==, 3);
  g_assert_cmpint(t->shape[0], ==, 3);
  g_assert_cmpint(t->shape[1], ==, 23);
  g_assert_cmpint(t->shape[2], ==, 31);
  /* pixel (0,0) has alpha 0: white */
  g_assert_cmpfloat(rat_tensor_data(t)[0], ==, 1.0f);
  g_free(p);
  rat_fixture_close(f);
  rat_scope_pop(s);
}

static void check_fails(const guint8 *data, gsize len, const char *name) {
  GError *e = NULL;
  RatImage *img = rat_image_decode(data, len, name, RAT_IMAGE_ALPHA_WHITE, &e);
  if (img)
    g_error("%s: %" G_GSIZE_FORMAT " bytes decoded without error", name, len);
  g_assert_nonnull(e);
  g_assert_true(e->domain == RAT_ERROR);
  g_assert_nonnull(strstr(e->message, name));
  g_error_free(e);
}

static void test_decode_corrupt(void) {
  const char *files[] = {"photo.jpg", "progressive.jpg", "cmyk.jpg", "big.png", "palette.png", "rgb16.png"};
  for (guint k = 0; k < G_N_ELEMENTS(files); k++) {
    char *p = fixture_path(files[k]), *buf = NULL;
    gsize len = 0;
    g_assert_true(g_file_get_contents(p, &buf, &len, NULL));
    /* every truncation must fail (step keeps the test fast) */
    gsize step = MAX(1, len / 400);
    for (gsize cut = 0; cut < len - 1; cut += step)
      check_fails((const guint8 *)buf, cut, files[k]);
    check_fails((const guint8 *)buf, len - 1, files[k]);
    /* corrupted bytes: must not crash; either a GError or an image of the right size */
    GRand *r = g_rand_new_with_seed(42 + k);
    for (int trial = 0; trial < 200; trial++) {
      guint8 *m = g_memdup2(buf, len);
      int nflip = 1 + g_rand_int_range(r, 0, 8);
      for (int j = 0; j < nflip; j++)
        m[g_rand_int_range(r, 2, (gint32)len)] = (guint8)g_rand_int(r);
      GError *e = NULL;
      RatImage *img = rat_image_decode(m, len, files[k], RAT_IMAGE_ALPHA_WHITE, &e);
      g_assert_true((img == NULL) == (e != NULL));
      if (e)
        g_assert_nonnull(strstr(e->message, files[k]));
      g_clear_error(&e);
      rat_image_free(img);
      g_free(m);
    }
    g_rand_free(r);
    g_free(buf);
    g_free(p);
  }
  guint8 junk[64] = {0xff, 0xd8, 0xff, 0xe0};
  check_fails(junk, sizeof junk, "junk.jpg");
  check_fails((const guint8 *)"GIF89a....", 10, "not-an-image.gif");
  GError *e = NULL;
  g_assert_null(rat_image_read("/nonexistent/x.jpg", RAT_IMAGE_ALPHA_WHITE, &e));
  g_assert_error(e, RAT_ERROR, RAT_ERROR_IO);
  g_assert_nonnull(strstr(e->message, "/nonexistent/x.jpg"));
  g_error_free(e);
}

/* ---- transforms ---------------------------------------------------------------------------------------- */

static void test_resize_golden(void) {
  RatScope s = rat_scope_push();
  RatFixture *f = rat_fixture_open("data");
  guint n = 0;
  gsize total = 0, ndiff_all = 0;
  int worst = 0;
  for (guint i = 0; i < json_array_get_length(f->cases); i++) {
    JsonObject *c = json_array_get_object_element(f->cases, i);
    if (strcmp(json_object_get_string_member(c, "op"), "resize"))
      continue;
    RatImage *src = read_fixture_image(json_object_get_string_member(c, "file"), RAT_IMAGE_ALPHA_DROP);
    int w = (int)json_object_get_int_member(c, "w"), h = (int)json_object_get_int_member(c, "h");
    RatImage *got = rat_image_resize(src, w, h);
    char *rel = g_build_filename("ref", json_object_get_string_member(c, "ref"), NULL);
    RatImage *want = read_fixture_image(rel, RAT_IMAGE_ALPHA_DROP);
    gsize nd = 0;
    int md = image_max_diff(got, want, &nd);
    g_test_message("resize %dx%d -> %dx%d: max diff %d/255, %" G_GSIZE_FORMAT " bytes differ", src->width, src->height,
                   w, h, md, nd);
    worst = MAX(worst, md);
    ndiff_all += nd;
    total += (gsize)w * h * 3;
    g_free(rel);
    rat_image_free(src);
    rat_image_free(got);
    rat_image_free(want);
    n++;
  }
  g_test_message("PIL bilinear resize: %u cases, %" G_GSIZE_FORMAT " of %" G_GSIZE_FORMAT " bytes differ, max %d/255",
                 n, ndiff_all, total, worst);
  g_assert_cmpuint(n, ==, 14);
  g_assert_cmpint(worst, ==, 0); /* bit-exact with Pillow */
  rat_fixture_close(f);
  rat_scope_pop(s);
}

static void test_transform_golden(void) {
  RatScope s = rat_scope_push();
  RatFixture *f = rat_fixture_open("data");
  guint n = 0;
  for (guint i = 0; i < json_array_get_length(f->cases); i++) {
    JsonObject *c = json_array_get_object_element(f->cases, i);
    if (strcmp(json_object_get_string_member(c, "op"), "transform"))
      continue;
    RatImage *img = read_fixture_image(json_object_get_string_member(c, "file"), RAT_IMAGE_ALPHA_DROP);
    JsonNode *bb = json_object_get_member(c, "bbox");
    if (!JSON_NODE_HOLDS_NULL(bb)) {
      JsonArray *a = json_node_get_array(bb), *want = json_object_get_array_member(c, "box");
      int box[4];
      rat_cub_bbox_box(img->width, img->height, json_array_get_double_element(a, 0),
                       json_array_get_double_element(a, 1), json_array_get_double_element(a, 2),
                       json_array_get_double_element(a, 3), box);
      for (int k = 0; k < 4; k++)
        g_assert_cmpint(box[k], ==, json_array_get_int_element(want, k));
      RatImage *cr = rat_image_crop(img, box[0], box[1], box[2], box[3]);
      rat_image_free(img);
      img = cr;
    }
    gboolean plain = json_object_get_boolean_member(c, "plain");
    RatTransform t = rat_transform_reference((int)json_object_get_int_member(c, "size"));
    t.mode = plain ? RAT_RESIZE_PLAIN : RAT_RESIZE_SHORTER_CROP;
    t.resize = (int)json_object_get_int_member(c, "resize");
    /* geometry from the fixture (drawn by torchvision's RandomCrop.get_params and torch.rand) */
    RatTransformParams p = {0};
    rat_transform_sample(&t, img->width, img->height, NULL, &p);
    p.crop_x = (int)json_object_get_int_member(c, "crop_x");
    p.crop_y = (int)json_object_get_int_member(c, "crop_y");
    p.flip = json_object_get_boolean_member(c, "flip");
    RatTensor *got = rat_empty(RAT_SHAPE(3, t.size, t.size));
    rat_transform_apply(&t, img, &p, rat_tensor_data(got));
    RatTensor *want = rat_fixture_get(f, "c%u.out", i);
    char *what =
        g_strdup_printf("transform case %u (%s, resize %d, crop %d at %d,%d, flip %d)", i,
                        json_object_get_string_member(c, "file"), t.resize, t.size, p.crop_x, p.crop_y, p.flip);
    rat_assert_close(got, want, 1e-6, 0, what);
    g_free(what);
    rat_image_free(img);
    n++;
  }
  g_assert_cmpuint(n, ==, 7);
  rat_fixture_close(f);
  rat_scope_pop(s);
}

static void test_transform_rng(void) {
  RatScope s = rat_scope_push();
  RatTransform t = rat_transform_reference(256);
  g_assert_cmpint(t.size, ==, 256);
  RatTransformParams a, b;
  int flips = 0, xs[2] = {G_MAXINT, 0};
  for (guint64 seed = 0; seed < 400; seed++) {
    RatRng r1, r2;
    rat_rng_init(&r1, seed);
    rat_rng_init(&r2, seed);
    rat_transform_sample(&t, 500, 375, &r1, &a);
    rat_transform_sample(&t, 500, 375, &r2, &b);
    g_assert_true(!memcmp(&a, &b, sizeof a)); /* same seed, same crop */
    g_assert_cmpint(a.resize_w, ==, 405);     /* int(304 * 500 / 375) */
    g_assert_cmpint(a.resize_h, ==, 304);
    g_assert_cmpint(a.crop_x, >=, 0);
    g_assert_cmpint(a.crop_x, <=, 405 - 256);
    g_assert_cmpint(a.crop_y, <=, 304 - 256);
    xs[0] = MIN(xs[0], a.crop_x);
    xs[1] = MAX(xs[1], a.crop_x);
    flips += a.flip;
  }
  g_assert_cmpint(flips, >, 150);
  g_assert_cmpint(flips, <, 250);
  g_assert_cmpint(xs[0], <, 10);
  g_assert_cmpint(xs[1], >, 139);
  /* centre crop without RNG (torchvision CenterCrop) */
  rat_transform_sample(&t, 500, 375, NULL, &a);
  g_assert_cmpint(a.crop_x, ==, 74); /* round(149 / 2) = round(74.5) = 74, half to even */
  g_assert_cmpint(a.crop_y, ==, 24);
  g_assert_false(a.flip);
  int w, h;
  rat_resize_shorter_size(61, 83, 40, &w, &h);
  g_assert_cmpint(w, ==, 40);
  g_assert_cmpint(h, ==, 54);

  /* batch loader: equals per-item transforms with RNG (seed, index << 8), independent of the thread count */
  const char *names[] = {"photo.jpg", "big.png", "progressive.jpg", "photo444.jpg", "gray.jpg"};
  char *paths[5];
  for (int k = 0; k < 5; k++)
    paths[k] = fixture_path(names[k]);
  int boxes[20] = {0};
  boxes[4 * 1 + 0] = 10, boxes[4 * 1 + 1] = 5, boxes[4 * 1 + 2] = 150, boxes[4 * 1 + 3] = 100;
  RatTransform tt = rat_transform_reference(32);
  tt.resize = 40;
  GError *e = NULL;
  int nt = rat_get_num_threads();
  rat_set_num_threads(1);
  RatTensor *b1 = rat_transform_load_batch(&tt, (const char *const *)paths, 5, boxes, 99, 1000, &e);
  g_assert_no_error(e);
  rat_set_num_threads(2);
  RatTensor *b2 = rat_transform_load_batch(&tt, (const char *const *)paths, 5, boxes, 99, 1000, &e);
  g_assert_no_error(e);
  rat_set_num_threads(nt);
  g_assert_cmpmem(rat_tensor_data(b1), 5 * 3 * 32 * 32 * 4, rat_tensor_data(b2), 5 * 3 * 32 * 32 * 4);
  for (int k = 0; k < 5; k++) {
    RatImage *img = rat_image_read(paths[k], RAT_IMAGE_ALPHA_DROP, &e);
    g_assert_no_error(e);
    if (k == 1) {
      RatImage *c = rat_image_crop(img, 10, 5, 150, 100);
      rat_image_free(img);
      img = c;
    }
    RatRng r;
    rat_rng_set_state(&r, 99, (guint64)(1000 + k) << 8);
    RatTensor *one = rat_transform_image(&tt, img, &r);
    g_assert_cmpmem(rat_tensor_data(one), 3 * 32 * 32 * 4, rat_tensor_data(b1) + k * 3 * 32 * 32, 3 * 32 * 32 * 4);
    rat_image_free(img);
  }
  /* a failing file is reported by name */
  char *bad = paths[3];
  paths[3] = g_strdup("/nonexistent/bird.jpg");
  g_assert_null(rat_transform_load_batch(&tt, (const char *const *)paths, 5, NULL, 1, 0, &e));
  g_assert_error(e, RAT_ERROR, RAT_ERROR_IO);
  g_assert_nonnull(strstr(e->message, "bird.jpg"));
  g_clear_error(&e);
  g_free(paths[3]);
  paths[3] = bad;
  for (int k = 0; k < 5; k++)
    g_free(paths[k]);
  rat_scope_pop(s);
}

/* ---- pickle -------------------------------------------------------------------------------------------- */

static GPtrArray *load_pickle(const char *name, GError **e) {
  char *rel = g_build_filename("pickle", name, NULL), *p = fixture_path(rel);
  GPtrArray *a = rat_pickle_load_strings(p, e);
  g_free(rel);
  g_free(p);
  return a;
}

static void test_pickle(void) {
  JsonNode *root = load_json("pickle/expect.json");
  JsonObject *ok = json_object_get_object_member(json_node_get_object(root), "ok");
  JsonObject *refused = json_object_get_object_member(json_node_get_object(root), "refused");
  GList *names = json_object_get_members(ok);
  guint n_files = 0;
  for (GList *l = names; l; l = l->next, n_files++) {
    GError *e = NULL;
    GPtrArray *got = load_pickle(l->data, &e);
    g_assert_no_error(e);
    JsonArray *want = json_object_get_array_member(ok, l->data);
    g_assert_cmpuint(got->len, ==, json_array_get_length(want));
    for (guint i = 0; i < got->len; i++)
      g_assert_cmpstr(got->pdata[i], ==, json_array_get_string_element(want, i));
    g_ptr_array_unref(got);
  }
  g_list_free(names);
  g_assert_cmpuint(n_files, ==, 12);
  for (int proto = 2; proto <= 4; proto += 2) {
    char *name = g_strdup_printf("big-p%d.pickle", proto);
    GError *e = NULL;
    GPtrArray *got = load_pickle(name, &e);
    g_assert_no_error(e);
    g_assert_cmpuint(got->len, ==, 10000);
    for (guint i = 0; i < 10000; i++) {
      char want[16];
      g_snprintf(want, sizeof want, "k%u", i);
      g_assert_cmpstr(got->pdata[i], ==, want);
    }
    g_ptr_array_unref(got);
    g_free(name);
  }
  names = json_object_get_members(refused);
  for (GList *l = names; l; l = l->next) {
    GError *e = NULL;
    g_assert_null(load_pickle(l->data, &e));
    g_assert_error(e, RAT_ERROR, RAT_ERROR_UNSUPPORTED);
    const char *op = json_object_get_string_member(refused, l->data);
    g_test_message("%s: %s", (char *)l->data, e->message);
    /* op is "NAME (at byte offset N)", as pickletools decodes the file */
    char *name = g_strndup(op, strcspn(op, " "));
    char *needle = g_strdup_printf("opcode %s ", name);
    g_assert_nonnull(strstr(e->message, needle));
    g_assert_nonnull(strstr(e->message, op + strlen(name) + 1));
    g_free(needle);
    g_free(name);
    g_error_free(e);
  }
  g_list_free(names);
  g_assert_false(g_file_test("/tmp/ratfw-pwned", G_FILE_TEST_EXISTS));
  json_node_unref(root);
}

static void test_pickle_fuzz(void) {
  const char *files[] = {"list-p2.pickle",  "list-p4.pickle", "memo-p3.pickle",
                         "bytes-p4.pickle", "py2.pickle",     "tuple-p2.pickle"};
  GRand *r = g_rand_new_with_seed(7);
  guint refused = 0, accepted = 0;
  for (guint k = 0; k < G_N_ELEMENTS(files); k++) {
    char *rel = g_build_filename("pickle", files[k], NULL), *p = fixture_path(rel), *buf;
    gsize len;
    g_assert_true(g_file_get_contents(p, &buf, &len, NULL));
    for (gsize cut = 0; cut < len; cut++) { /* every truncation fails cleanly */
      GError *e = NULL;
      GPtrArray *a = rat_pickle_parse_strings((const guint8 *)buf, cut, files[k], &e);
      g_assert_null(a);
      g_assert_nonnull(e);
      g_assert_nonnull(strstr(e->message, files[k]));
      g_error_free(e);
    }
    for (int trial = 0; trial < 3000; trial++) { /* mutations: a result or a GError, never a crash */
      guint8 *m = g_memdup2(buf, len);
      int nflip = 1 + g_rand_int_range(r, 0, 4);
      for (int j = 0; j < nflip; j++)
        m[g_rand_int_range(r, 0, (gint32)len)] = (guint8)g_rand_int(r);
      GError *e = NULL;
      GPtrArray *a = rat_pickle_parse_strings(m, len, "mutant", &e);
      g_assert_true((a == NULL) == (e != NULL));
      if (a) {
        accepted++;
        g_ptr_array_unref(a);
      } else {
        refused++;
        g_error_free(e);
      }
      g_free(m);
    }
    g_free(buf);
    g_free(p);
    g_free(rel);
  }
  for (int trial = 0; trial < 20000; trial++) { /* random bytes, biased to the opcodes the reader knows */
    static const guint8 ops[] = {0x80, 0x95, '(', ']', ')',  'l', 't', 0x85, 0x86, 0x87, 'a', 'e', 'X',
                                 0x8c, 0x8d, 'B', 'C', 0x8e, 'U', 'T', 0x94, 'q',  'r',  'h', 'j', '.'};
    gsize len = (gsize)g_rand_int_range(r, 0, 64);
    guint8 *m = g_malloc(len + 1);
    for (gsize j = 0; j < len; j++)
      m[j] = g_rand_boolean(r) ? ops[g_rand_int_range(r, 0, G_N_ELEMENTS(ops))] : (guint8)g_rand_int_range(r, 0, 8);
    GError *e = NULL;
    GPtrArray *a = rat_pickle_parse_strings(m, len, "random", &e);
    g_assert_true((a == NULL) == (e != NULL));
    if (a)
      g_ptr_array_unref(a);
    g_clear_error(&e);
    g_free(m);
  }
  g_test_message("mutated pickles: %u refused, %u still parsed", refused, accepted);
  g_assert_cmpuint(refused, >, 0);
  g_rand_free(r);
}

/* ---- emoji --------------------------------------------------------------------------------------------- */

static void write_png(const char *path, guint8 r, guint8 g, guint8 b, guint8 a) {
  RatScope s = rat_scope_push();
  RatTensor *t = rat_empty(RAT_SHAPE(4, 64, 64));
  float *p = rat_tensor_data(t);
  for (int i = 0; i < 64 * 64; i++) {
    p[i] = r / 255.0f;
    p[4096 + i] = g / 255.0f;
    p[8192 + i] = b / 255.0f;
    p[12288 + i] = (i % 64 < 32 ? a : 255) / 255.0f;
  }
  GError *e = NULL;
  g_assert_true(rat_png_write(path, t, &e));
  g_assert_no_error(e);
  rat_scope_pop(s);
}

static void test_emoji_fake(void) {
  char *dir = g_dir_make_tmp("ratfw-emoji-XXXXXX", NULL);
  char *img = g_build_filename(dir, "img", "google", "64", NULL);
  g_assert_cmpint(g_mkdir_with_parents(img, 0755), ==, 0);
  const char *json =
      "[{\"name\":\"GRINNING FACE\",\"unified\":\"1F600\",\"image\":\"1f600.png\",\"short_name\":\"grinning\","
      "\"short_names\":[\"grinning\"],\"category\":\"Smileys & Emotion\",\"subcategory\":\"face-smiling\"},"
      " {\"name\":\"FATHER CHRISTMAS\",\"unified\":\"1F385\",\"image\":\"1f385.png\",\"short_names\":[\"santa\"],"
      "\"category\":\"People & Body\",\"subcategory\":\"person-fantasy\",\"skin_variations\":{"
      "\"1F3FD\":{\"unified\":\"1F385-1F3FD\",\"image\":\"1f385-1f3fd.png\"},"
      "\"1F3FB\":{\"unified\":\"1F385-1F3FB\",\"image\":\"1f385-1f3fb.png\"},"
      "\"1F3FB-1F3FF\":{\"unified\":\"1F385-1F3FB-1F3FF\",\"image\":\"1f385-1f3fb-1f3ff.png\"},"
      "\"1F3FE\":{\"unified\":\"1F385-1F3FE\",\"image\":\"missing.png\"}}},"
      " {\"name\":\"OCTOPUS\",\"unified\":\"1F419\",\"image\":\"1f419.png\",\"short_names\":[\"octopus\"],"
      "\"category\":\"Animals & Nature\",\"subcategory\":\"animal-marine\"},"
      " {\"name\":\"NO IMAGE\",\"unified\":\"1F999\",\"image\":\"1f999.png\",\"short_names\":[]}]";
  char *jp = g_build_filename(dir, "emoji.json", NULL);
  g_assert_true(g_file_set_contents(jp, json, -1, NULL));
  const char *pngs[] = {"1f600.png", "1f385.png", "1f385-1f3fd.png", "1f385-1f3fb.png", "1f385-1f3fb-1f3ff.png",
                        "1f419.png"};
  for (guint i = 0; i < G_N_ELEMENTS(pngs); i++) {
    char *p = g_build_filename(img, pngs[i], NULL);
    write_png(p, (guint8)(40 * i), 100, 200, 0);
    g_free(p);
  }
  GError *e = NULL;
  RatEmojiSet *set = rat_emoji_open(dir, &e);
  g_assert_no_error(e);
  g_assert_cmpuint(rat_emoji_count(set, RAT_SPLIT_ALL), ==, 6);
  g_assert_cmpuint(rat_emoji_count(set, RAT_SPLIT_TRAIN) + rat_emoji_count(set, RAT_SPLIT_TEST), ==, 6);
  const RatEmojiItem *it = rat_emoji_item(set, RAT_SPLIT_ALL, 0);
  g_assert_cmpstr(it->name, ==, "grinning face");
  g_assert_null(it->skin_tone);
  g_assert_cmpstr(it->captions[0], ==, "grinning face");
  g_assert_cmpstr(it->captions[1], ==, "an emoji of grinning face");
  g_assert_cmpstr(it->captions[2], ==, "a face smiling emoji showing grinning face");
  g_assert_cmpstr(it->short_names[0], ==, "grinning");
  /* base first, then variants in key order: 1F3FB, 1F3FB-1F3FF, 1F3FD (1F3FE has no image) */
  it = rat_emoji_item(set, RAT_SPLIT_ALL, 1);
  g_assert_cmpstr(it->unified, ==, "1F385");
  it = rat_emoji_item(set, RAT_SPLIT_ALL, 2);
  g_assert_cmpstr(it->unified, ==, "1F385-1F3FB");
  g_assert_cmpstr(it->skin_tone, ==, "light skin tone");
  g_assert_cmpstr(it->base, ==, "1F385");
  g_assert_cmpstr(it->captions[1], ==, "an emoji of father christmas in light skin tone");
  it = rat_emoji_item(set, RAT_SPLIT_ALL, 3);
  g_assert_cmpstr(it->skin_tone, ==, "light and dark skin tones");
  it = rat_emoji_item(set, RAT_SPLIT_ALL, 4);
  g_assert_cmpstr(it->skin_tone, ==, "medium skin tone");
  g_assert_true(g_str_has_suffix(it->image_path, "1f385-1f3fd.png"));
  g_assert_cmpstr(it->category, ==, "People & Body");
  /* a base and its variants share the split */
  for (guint i = 2; i < 5; i++)
    g_assert_cmpint(rat_emoji_item(set, RAT_SPLIT_ALL, i)->split, ==, rat_emoji_item(set, RAT_SPLIT_ALL, 1)->split);
  it = rat_emoji_item(set, RAT_SPLIT_ALL, 5);
  g_assert_cmpstr(it->captions[3], ==, "octopus, an emoji from the animals & nature category");
  for (guint i = 0; it->captions[i]; i++)
    g_test_message("caption %u: %s", i, it->captions[i]);
  /* the image: transparent left half composited on white */
  RatScope s = rat_scope_push();
  RatTensor *t = rat_image_load(it->image_path, &e);
  g_assert_no_error(e);
  g_assert_cmpfloat(rat_tensor_data(t)[0], ==, 1.0f);
  g_assert_cmpfloat(rat_tensor_data(t)[40], ==, 200.0f / 255.0f); /* red of item 5 (40 * 5), x = 40 is opaque */
  rat_scope_pop(s);
  rat_emoji_free(set);
  /* missing package: a hint to run the fetch script */
  g_assert_null(rat_emoji_open(img, &e));
  g_assert_error(e, RAT_ERROR, RAT_ERROR_NOT_FOUND);
  g_assert_nonnull(strstr(e->message, "fetch-emoji.sh"));
  g_clear_error(&e);
  /* malformed JSON */
  g_assert_true(g_file_set_contents(jp, "[{\"name\": 3}", -1, NULL));
  g_assert_null(rat_emoji_open(dir, &e));
  g_assert_error(e, RAT_ERROR, RAT_ERROR_CORRUPT);
  g_clear_error(&e);
  g_assert_true(
      g_file_set_contents(jp, "[{\"name\": \"X\", \"unified\": \"1\", \"image\": \"../../etc/passwd\"}]", -1, NULL));
  g_assert_null(rat_emoji_open(dir, &e));
  g_assert_error(e, RAT_ERROR, RAT_ERROR_CORRUPT);
  g_clear_error(&e);
  char *cmd = g_strdup_printf("rm -rf '%s'", dir);
  g_assert_cmpint(system(cmd), ==, 0);
  g_free(cmd);
  g_free(jp);
  g_free(img);
  g_free(dir);
}

static void test_emoji_real(void) {
  char *dir = rat_emoji_default_dir();
  char *json = g_build_filename(dir, "emoji.json", NULL);
  if (!g_file_test(json, G_FILE_TEST_EXISTS)) {
    g_test_skip("emoji package not in the cache (run tools/fetch-emoji.sh)");
    g_free(json);
    g_free(dir);
    return;
  }
  GError *e = NULL;
  gint64 t0 = g_get_monotonic_time();
  RatEmojiSet *set = rat_emoji_open(dir, &e);
  g_assert_no_error(e);
  guint n = rat_emoji_count(set, RAT_SPLIT_ALL), nt = rat_emoji_count(set, RAT_SPLIT_TEST);
  g_test_message("%s: %u images (%u train, %u test) listed in %.2f s", dir, n, rat_emoji_count(set, RAT_SPLIT_TRAIN),
                 nt, (g_get_monotonic_time() - t0) / 1e6);
  g_assert_cmpuint(n, ==, 3786);
  g_assert_cmpuint(nt, >, 250);
  g_assert_cmpuint(nt, <, 500);
  guint tones = 0;
  for (guint i = 0; i < n; i++)
    tones += rat_emoji_item(set, RAT_SPLIT_ALL, i)->skin_tone != NULL;
  g_assert_cmpuint(tones, ==, 1875);
  for (guint i = 0; i < n; i += 757) {
    const RatEmojiItem *it = rat_emoji_item(set, RAT_SPLIT_ALL, i);
    for (guint k = 0; it->captions[k]; k++)
      g_test_message("%s: %s", it->unified, it->captions[k]);
  }
  RatScope s = rat_scope_push();
  RatTensor *t = rat_image_load(rat_emoji_item(set, RAT_SPLIT_ALL, 100)->image_path, &e);
  g_assert_no_error(e);
  g_assert_cmpint(t->shape[1], ==, 64);
  g_assert_cmpint(t->shape[2], ==, 64);
  rat_scope_pop(s);
  rat_emoji_free(set);
  g_free(json);
  g_free(dir);
}

/* ---- IDX / Fashion-MNIST ------------------------------------------------------------------------------ */

static void test_idx_fixture(void) {
  JsonObject *want = json_node_get_object(load_json("fmnist/expect.json"));
  char *dir = fixture_path("fmnist");
  GError *e = NULL;
  RatFashionMnist *tr = rat_fashion_mnist_open(dir, RAT_SPLIT_TRAIN, &e);
  g_assert_no_error(e);
  g_assert_cmpuint(tr->n, ==, 5);
  g_assert_cmpint(tr->rows, ==, 4);
  g_assert_cmpint(tr->cols, ==, 3);
  JsonArray *wi = json_object_get_array_member(want, "train_images"),
            *wl = json_object_get_array_member(want, "train_labels");
  for (guint i = 0; i < 60; i++)
    g_assert_cmpint(tr->images[i], ==, json_array_get_int_element(wi, i));
  for (guint i = 0; i < 5; i++)
    g_assert_cmpint(tr->labels[i], ==, json_array_get_int_element(wl, i));
  RatFashionMnist *all = rat_fashion_mnist_open(dir, RAT_SPLIT_ALL, &e);
  g_assert_no_error(e);
  g_assert_cmpuint(all->n, ==, 7);
  g_assert_cmpint(all->labels[5], ==, 5);
  g_assert_cmpint(all->labels[6], ==, 8);
  wi = json_object_get_array_member(want, "test_images");
  for (guint i = 0; i < 24; i++)
    g_assert_cmpint(all->images[60 + i], ==, json_array_get_int_element(wi, i));
  RatScope s = rat_scope_push();
  RatTensor *t = rat_fashion_mnist_image(all, 6, 3);
  g_assert_cmpint(t->shape[0], ==, 3);
  g_assert_cmpfloat(rat_tensor_data(t)[12 + 5], ==, all->images[6 * 12 + 5] / 255.0f);
  rat_scope_pop(s);
  char *c = rat_fashion_mnist_caption(7, 0);
  g_assert_cmpstr(c, ==, "a photo of a sneaker");
  g_free(c);
  c = rat_fashion_mnist_caption(9, 1);
  g_assert_cmpstr(c, ==, "a black and white photo of an ankle boot");
  g_free(c);
  g_assert_cmpstr(rat_fashion_mnist_class_name(0), ==, "T-shirt/top");
  g_assert_cmpuint(rat_fashion_mnist_n_phrasings(), >=, 4);
  rat_fashion_mnist_free(tr);
  rat_fashion_mnist_free(all);

  /* corrupt files */
  char *tmp = g_dir_make_tmp("ratfw-idx-XXXXXX", NULL);
  struct {
    const char *what;
    const char *bytes;
    gsize len;
    RatErrorCode code;
  } bad[] = {
      {"bad magic", "\x01\x00\x08\x01\x00\x00\x00\x02\x05\x06", 10, RAT_ERROR_CORRUPT},
      {"float type", "\x00\x00\x0d\x01\x00\x00\x00\x01\x00\x00\x00\x00", 12, RAT_ERROR_UNSUPPORTED},
      {"truncated data", "\x00\x00\x08\x02\x00\x00\x00\x02\x00\x00\x00\x03\x01\x02\x03", 15, RAT_ERROR_CORRUPT},
      {"trailing bytes", "\x00\x00\x08\x01\x00\x00\x00\x01\x07\x08", 10, RAT_ERROR_CORRUPT},
      {"truncated header", "\x00\x00\x08\x03\x00\x00\x00\x02", 8, RAT_ERROR_CORRUPT},
      {"rank 0", "\x00\x00\x08\x00", 4, RAT_ERROR_CORRUPT},
      {"zero dim", "\x00\x00\x08\x01\x00\x00\x00\x00", 8, RAT_ERROR_CORRUPT},
      {"huge dims", "\x00\x00\x08\x02\xff\xff\xff\xff\xff\xff\xff\xff", 12, RAT_ERROR_CORRUPT},
      {"bad gzip", "\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\xff\x01\x02", 12, RAT_ERROR_CORRUPT},
  };
  char *p = g_build_filename(tmp, "x-idx", NULL);
  for (guint i = 0; i < G_N_ELEMENTS(bad); i++) {
    g_assert_true(g_file_set_contents(p, bad[i].bytes, (gssize)bad[i].len, NULL));
    RatIdx *idx = rat_idx_read(p, &e);
    if (idx)
      g_error("IDX %s accepted", bad[i].what);
    g_assert_error(e, RAT_ERROR, (gint)bad[i].code);
    g_assert_nonnull(strstr(e->message, "x-idx"));
    g_clear_error(&e);
  }
  /* every truncation of a real gzip IDX fails */
  char *gz = g_build_filename(dir, "train-images-idx3-ubyte.gz", NULL), *buf;
  gsize len;
  g_assert_true(g_file_get_contents(gz, &buf, &len, NULL));
  for (gsize cut = 0; cut < len; cut++) {
    g_assert_true(g_file_set_contents(p, buf, (gssize)cut, NULL));
    RatIdx *idx = rat_idx_read(p, &e);
    g_assert_null(idx);
    g_assert_nonnull(e);
    g_clear_error(&e);
  }
  g_assert_true(g_file_set_contents(p, buf, (gssize)len, NULL));
  RatIdx *idx = rat_idx_read(p, &e);
  g_assert_no_error(e);
  g_assert_cmpint(idx->ndim, ==, 3);
  g_assert_cmpuint(idx->size, ==, 60);
  rat_idx_free(idx);
  g_free(buf);
  g_free(gz);
  /* labels out of range, counts that disagree */
  g_assert_null(rat_fashion_mnist_open(tmp, RAT_SPLIT_TRAIN, &e));
  g_assert_error(e, RAT_ERROR, RAT_ERROR_IO);
  g_assert_nonnull(strstr(e->message, "dataset-fashion-mnist"));
  g_clear_error(&e);
  char *ip = g_build_filename(tmp, "train-images-idx3-ubyte", NULL),
       *lp = g_build_filename(tmp, "train-labels-idx1-ubyte", NULL);
  g_assert_true(
      g_file_set_contents(ip, "\x00\x00\x08\x03\x00\x00\x00\x01\x00\x00\x00\x01\x00\x00\x00\x01\x05", 17, NULL));
  g_assert_true(g_file_set_contents(lp, "\x00\x00\x08\x01\x00\x00\x00\x01\x0a", 9, NULL));
  g_assert_null(rat_fashion_mnist_open(tmp, RAT_SPLIT_TRAIN, &e));
  g_assert_error(e, RAT_ERROR, RAT_ERROR_CORRUPT);
  g_assert_nonnull(strstr(e->message, "label 10"));
  g_clear_error(&e);
  g_assert_true(g_file_set_contents(lp, "\x00\x00\x08\x01\x00\x00\x00\x02\x01\x02", 10, NULL));
  g_assert_null(rat_fashion_mnist_open(tmp, RAT_SPLIT_TRAIN, &e));
  g_assert_error(e, RAT_ERROR, RAT_ERROR_CORRUPT);
  g_clear_error(&e);
  char *cmd = g_strdup_printf("rm -rf '%s'", tmp);
  g_assert_cmpint(system(cmd), ==, 0);
  g_free(cmd);
  g_free(ip);
  g_free(lp);
  g_free(p);
  g_free(tmp);
  g_free(dir);
}

static void test_fashion_mnist_debian(void) {
  if (!g_file_test(RAT_FASHION_MNIST_DIR "/train-images-idx3-ubyte.gz", G_FILE_TEST_EXISTS)) {
    g_test_skip("Debian's dataset-fashion-mnist is not installed");
    return;
  }
  GError *e = NULL;
  gint64 t0 = g_get_monotonic_time();
  RatFashionMnist *fm = rat_fashion_mnist_open(NULL, RAT_SPLIT_TEST, &e);
  g_assert_no_error(e);
  g_test_message("Fashion-MNIST test split: %u images of %dx%d in %.2f s", fm->n, fm->rows, fm->cols,
                 (g_get_monotonic_time() - t0) / 1e6);
  g_assert_cmpuint(fm->n, ==, 10000);
  g_assert_cmpint(fm->rows, ==, 28);
  guint counts[10] = {0};
  for (guint i = 0; i < fm->n; i++)
    counts[fm->labels[i]]++;
  for (int k = 0; k < 10; k++)
    g_assert_cmpuint(counts[k], ==, 1000);
  char *c = rat_fashion_mnist_caption(fm->labels[0], 0);
  g_test_message("item 0: %s", c);
  g_assert_cmpstr(c, ==, "a photo of an ankle boot"); /* the first test image is an ankle boot */
  g_free(c);
  rat_fashion_mnist_free(fm);
}

/* ---- shapes -------------------------------------------------------------------------------------------- */

static double polygon_area_of(const RatShapesObject *o) {
  /* analytic areas for radius r */
  double r = o->radius;
  switch (o->kind) {
  case RAT_SHAPES_CIRCLE: return G_PI * r * r;
  case RAT_SHAPES_SQUARE: return 2 * r * r;
  case RAT_SHAPES_TRIANGLE: return 3 * sqrt(3) / 4 * r * r;
  case RAT_SHAPES_PENTAGON: return 2.5 * sin(2 * G_PI / 5) * r * r;
  case RAT_SHAPES_HEXAGON: return 3 * sqrt(3) / 2 * r * r;
  case RAT_SHAPES_DIAMOND: return 2 * r * 0.62 * r;
  case RAT_SHAPES_STAR: return 10 * 0.5 * r * 0.45 * r * sin(G_PI / 5);
  case RAT_SHAPES_CROSS: {
    double a = 0.34 * r;
    return 4 * a * a + 4 * (2 * a) * (r - a);
  }
  default: return 0;
  }
}

static void test_shapes(void) {
  RatShapesOptions opt = rat_shapes_options_default(123);
  RatShapesItem a, b;
  int kinds[RAT_SHAPES_N_KINDS] = {0}, bgs[RAT_SHAPES_N_BGS] = {0};
  RatScope s = rat_scope_push();
  for (guint64 i = 0; i < 400; i++) {
    rat_shapes_sample(&opt, i, &a);
    rat_shapes_sample(&opt, i, &b);
    g_assert_true(!memcmp(&a, &b, sizeof a));
    g_assert_cmpint(a.n_objects, ==, 1);
    const RatShapesObject *o = &a.objects[0];
    kinds[o->kind]++;
    bgs[a.background]++;
    /* inside its cell */
    double cx0 = (o->cell % 3) / 3.0, cy0 = (o->cell / 3) / 3.0;
    g_assert_cmpfloat(o->cx - o->radius, >=, cx0);
    g_assert_cmpfloat(o->cx + o->radius, <=, cx0 + 1.0 / 3);
    g_assert_cmpfloat(o->cy - o->radius, >=, cy0);
    g_assert_cmpfloat(o->cy + o->radius, <=, cy0 + 1.0 / 3);
    char *cap = rat_shapes_caption(&a, 0);
    g_assert_nonnull(strstr(cap, rat_shapes_kind_name(o->kind)));
    g_assert_nonnull(strstr(cap, rat_shapes_color_name(o->color)));
    g_assert_nonnull(strstr(cap, rat_shapes_size_name(o->size)));
    g_assert_nonnull(strstr(cap, rat_shapes_cell_name(o->cell)));
    g_assert_nonnull(strstr(cap, rat_shapes_color_name(a.bg_color[0])));
    if (i < 6)
      g_test_message("shapes item %u: %s", (guint)i, cap);
    g_free(cap);
    if (i >= 60)
      continue;
    /* rendering: item i depends only on (seed, i); area matches the analytic one (plain backgrounds) */
    RatTensor *t1 = rat_shapes_render(&a, 96), *t2 = rat_shapes_render(&b, 96);
    g_assert_cmpmem(rat_tensor_data(t1), 3 * 96 * 96 * 4, rat_tensor_data(t2), 3 * 96 * 96 * 4);
    if (a.background != RAT_SHAPES_BG_PLAIN)
      continue;
    guint8 fg[3], bg[3];
    rat_shapes_color_rgb(o->color, fg);
    rat_shapes_color_rgb(a.bg_color[0], bg);
    int ch = 0;
    for (int c = 1; c < 3; c++)
      if (abs(fg[c] - bg[c]) > abs(fg[ch] - bg[ch]))
        ch = c;
    const float *p = rat_tensor_data(t1) + ch * 96 * 96;
    double cover = 0;
    for (int k = 0; k < 96 * 96; k++)
      cover += (p[k] - bg[ch] / 255.0) / ((fg[ch] - bg[ch]) / 255.0);
    double area = polygon_area_of(o) * 96 * 96;
    g_assert_cmpfloat(fabs(cover - area), <, 0.01 * area + 2.0);
    /* the centre is the shape's colour, an empty cell's centre the background */
    int px = (int)(o->cx * 96), py = (int)(o->cy * 96);
    if (o->kind != RAT_SHAPES_STAR)
      g_assert_cmpfloat(fabs(p[py * 96 + px] - fg[ch] / 255.0), <, 1e-5);
    int empty = (o->cell + 4) % 9;
    int ex = (int)((empty % 3 + 0.5) / 3 * 96), ey = (int)((empty / 3 + 0.5) / 3 * 96);
    g_assert_cmpfloat(fabs(p[ey * 96 + ex] - bg[ch] / 255.0), <, 1e-6);
  }
  for (int k = 0; k < RAT_SHAPES_N_KINDS; k++)
    g_assert_cmpint(kinds[k], >, 20);
  g_assert_cmpint(bgs[0], >, 150);
  for (int k = 1; k < RAT_SHAPES_N_BGS; k++)
    g_assert_cmpint(bgs[k], >, 30);
  /* different seeds give different items; several objects never share a cell */
  RatShapesOptions o2 = opt;
  o2.seed = 124;
  o2.max_objects = 4;
  int differ = 0, multi = 0;
  for (guint64 i = 0; i < 100; i++) {
    rat_shapes_sample(&opt, i, &a);
    rat_shapes_sample(&o2, i, &b);
    differ += memcmp(&a, &b, sizeof a) != 0;
    multi += b.n_objects > 1;
    for (int x = 0; x < b.n_objects; x++)
      for (int y = x + 1; y < b.n_objects; y++)
        g_assert_cmpint(b.objects[x].cell, !=, b.objects[y].cell);
    if (i == 3) {
      for (guint ph = 0; ph < rat_shapes_n_phrasings(); ph++) {
        char *cap = rat_shapes_caption(&b, ph);
        g_test_message("phrasing %u: %s", ph, cap);
        g_free(cap);
      }
    }
  }
  g_assert_cmpint(differ, ==, 100);
  g_assert_cmpint(multi, >, 50);
  RatImage *img = rat_shapes_render_image(&b, 40);
  g_assert_cmpint(img->width, ==, 40);
  rat_image_free(img);
  rat_scope_pop(s);
}

int main(int argc, char **argv) {
  rat_test_init(&argc, &argv);
  g_test_add_func("/data/decode/golden", test_decode_golden);
  g_test_add_func("/data/decode/corrupt", test_decode_corrupt);
  g_test_add_func("/data/transform/resize-golden", test_resize_golden);
  g_test_add_func("/data/transform/golden", test_transform_golden);
  g_test_add_func("/data/transform/rng", test_transform_rng);
  g_test_add_func("/data/pickle/golden", test_pickle);
  g_test_add_func("/data/pickle/fuzz", test_pickle_fuzz);
  g_test_add_func("/data/emoji/fake", test_emoji_fake);
  g_test_add_func("/data/emoji/real", test_emoji_real);
  g_test_add_func("/data/idx/fixture", test_idx_fixture);
  g_test_add_func("/data/idx/fashion-mnist", test_fashion_mnist_debian);
  g_test_add_func("/data/shapes", test_shapes);
  return g_test_run();
}
