/* The input pipeline (core/data/loader.c) on a dataset type defined here: N items, item i a 6x4 picture whose
 * pixels encode i, captions "item i caption k" (i % 3 + 1 of them), items listed in @bad unreadable. Checks the
 * determinism contract of dataset.h: batches are a pure function of (seed, batch number), independent of
 * prefetching and seeking; every item once per epoch; one caption per item per epoch; skip and fail policies. */
#include "config.h"

#include "testutil.h"

#include <ratfw/dataset.h>
#include <string.h>

typedef struct {
  gint64 n, bad;
} TOptions;

static const RatArgSpec t_args[] = {
    RAT_ARG_I(TOptions, n, "20", 1, 100000, "items"),
    RAT_ARG_I(TOptions, bad, "-1", -1, 100000, "an unreadable item (-1: none)"),
};

static guint t_count(RatModule *m, RatSplit s) { return (guint)RAT_MODULE_OPTIONS(m, TOptions)->n; }
static guint t_ncap(RatModule *m, RatSplit s, guint i) { return i % 3 + 1; }
static char *t_caption(RatModule *m, RatSplit s, guint i, guint k) { return g_strdup_printf("item %u caption %u", i, k); }
static RatImage *t_image(RatModule *m, RatSplit s, guint i, GError **error) {
  if ((gint64)i == RAT_MODULE_OPTIONS(m, TOptions)->bad) {
    g_set_error(error, RAT_ERROR, RAT_ERROR_CORRUPT, "bad-%u.png: corrupt", i);
    return NULL;
  }
  RatImage *img = rat_image_new(6, 4);
  for (int k = 0; k < 6 * 4 * 3; k++) img->rgb[k] = (guint8)((i * 7 + k) % 256);
  return img;
}
static gboolean t_build(RatModule *m, const RatBuildContext *ctx, GError **error) { return TRUE; }
static const RatDatasetIface t_iface = {.count = t_count, .n_captions = t_ncap, .caption = t_caption, .image = t_image};
static const RatModuleType t_type = {.struct_size = sizeof(RatModuleType), .name = "tdata", .kind = RAT_KIND_DATASET,
                                     .doc = "test", .args = t_args, .n_args = G_N_ELEMENTS(t_args),
                                     .options_size = sizeof(TOptions), .build = t_build, .iface = &t_iface};

static RatRegistry *reg;

static RatModule *dataset(const char *n, const char *bad) {
  char *ov[3] = {g_strdup_printf("n=%s", n), g_strdup_printf("bad=%s", bad), NULL};
  RatBuildContext ctx = {0};
  GError *e = NULL;
  RatModule *m = rat_module_build_named(reg, "tdata", "data", RAT_KIND_DATASET, (const char *const *)ov, &ctx, &e);
  g_assert_no_error(e);
  g_free(ov[0]);
  g_free(ov[1]);
  return m;
}

static RatLoaderOptions opts(guint64 seed, guint prefetch) {
  RatLoaderOptions o = rat_loader_options_default(4, 3, seed);
  o.transform.resize = 5; /* shorter side 4 -> 5, random 4x4 crop, random flip */
  o.prefetch = prefetch;
  return o;
}

/* A batch as a comparable string: items, caption ids, captions and the pixel bits. */
static char *describe(const RatBatch *b) {
  GString *s = g_string_new(NULL);
  g_string_append_printf(s, "#%" G_GUINT64_FORMAT " e%" G_GINT64_FORMAT ":", b->number, b->epoch);
  for (guint i = 0; i < b->n; i++) g_string_append_printf(s, " %u/%u/%s", b->items[i], b->caption_ids[i], b->captions[i]);
  RatTensor *c = rat_contiguous(b->images);
  const guint32 *bits = (const guint32 *)rat_tensor_data(c);
  guint32 h = 2166136261u;
  for (gint64 i = 0; i < rat_tensor_numel(c); i++) h = (h ^ bits[i]) * 16777619u;
  g_string_append_printf(s, " px%08x", h);
  return g_string_free(s, FALSE);
}

static char **run(RatModule *ds, RatLoaderOptions o, guint n, guint64 seek_to) {
  GError *e = NULL;
  RatLoader *l = rat_loader_new(ds, &o, &e);
  g_assert_no_error(e);
  if (seek_to) rat_loader_seek(l, seek_to);
  char **out = g_new0(char *, n + 1);
  for (guint i = 0; i < n; i++) {
    RatBatch b;
    RatScope s = rat_scope_push();
    g_assert_true(rat_loader_next(l, &b, &e));
    out[i] = describe(&b);
    rat_batch_clear(&b);
    rat_scope_pop(s);
  }
  rat_loader_free(l);
  return out;
}

static void test_determinism(void) {
  RatModule *ds = dataset("20", "-1");
  char **a = run(ds, opts(7, 0), 14, 0), **b = run(ds, opts(7, 3), 14, 0), **c = run(ds, opts(8, 2), 14, 0);
  char **d = run(ds, opts(7, 2), 4, 10); /* batches 10..13 after a seek */
  for (int i = 0; i < 14; i++) g_assert_cmpstr(a[i], ==, b[i]); /* prefetch does not change a bit */
  for (int i = 0; i < 4; i++) g_assert_cmpstr(a[10 + i], ==, d[i]);
  guint differ = 0;
  for (int i = 0; i < 14; i++) differ += strcmp(a[i], c[i]) != 0;
  g_assert_cmpuint(differ, >, 10); /* another seed, other batches */
  g_strfreev(a);
  g_strfreev(b);
  g_strfreev(c);
  g_strfreev(d);
  rat_module_free(ds);
}

static void test_epochs(void) {
  RatModule *ds = dataset("20", "-1");
  RatLoaderOptions o = opts(3, 2);
  o.drop_last = FALSE;
  GError *e = NULL;
  RatLoader *l = rat_loader_new(ds, &o, &e);
  g_assert_cmpuint(rat_loader_batches_per_epoch(l), ==, 7); /* 20 items, batches of 3, last one of 2 */
  for (int epoch = 0; epoch < 3; epoch++) {
    guint seen[20] = {0}, caption[20];
    for (int k = 0; k < 7; k++) {
      RatBatch b;
      RatScope s = rat_scope_push();
      g_assert_true(rat_loader_next(l, &b, &e));
      g_assert_cmpint(b.epoch, ==, epoch);
      g_assert_cmpuint(b.n, ==, k == 6 ? 2 : 3);
      for (guint i = 0; i < b.n; i++) {
        seen[b.items[i]]++;
        caption[b.items[i]] = b.caption_ids[i];
        g_assert_cmpuint(b.caption_ids[i], <, b.items[i] % 3 + 1);
        char *want = g_strdup_printf("item %u caption %u", b.items[i], b.caption_ids[i]);
        g_assert_cmpstr(b.captions[i], ==, want);
        g_free(want);
      }
      rat_batch_clear(&b);
      rat_scope_pop(s);
    }
    for (int i = 0; i < 20; i++) g_assert_cmpuint(seen[i], ==, 1); /* each item exactly once per epoch */
    (void)caption;
  }
  rat_loader_free(l);
  rat_module_free(ds);
}

static void test_tokens_and_pixels(void) {
  RatModule *ds = dataset("6", "-1");
  const char *caps[3] = {"item caption", "caption item", "item"};
  RatTokenizer *tok = rat_tokenizer_new_words(caps, 3, 100, 8);
  RatLoaderOptions o = opts(1, 1);
  o.tokenizer = tok;
  o.transform = (RatTransform){.mode = RAT_RESIZE_PLAIN, .size = 4, .normalize = FALSE};
  o.shuffle = FALSE;
  GError *e = NULL;
  RatLoader *l = rat_loader_new(ds, &o, &e);
  RatBatch b;
  RatScope s = rat_scope_push();
  g_assert_true(rat_loader_next(l, &b, &e));
  g_assert_cmpuint(b.items[0], ==, 0); /* no shuffle: item order */
  g_assert_cmpint(b.tokens->shape[0], ==, 3);
  g_assert_cmpint(b.tokens->shape[1], ==, 8);
  gint32 ids[8];
  for (guint i = 0; i < b.n; i++) {
    rat_tokenizer_encode(tok, b.captions[i], ids, 8);
    for (int k = 0; k < 8; k++) g_assert_cmpint(rat_tensor_data_i32(b.tokens)[i * 8 + k], ==, ids[k]);
  }
  /* pixels: the item's picture resized as the data layer does */
  RatImage *img = t_image(ds, RAT_SPLIT_TRAIN, 1, NULL);
  RatTransformParams tp;
  rat_transform_sample(&o.transform, img->width, img->height, NULL, &tp);
  float want[3 * 4 * 4];
  rat_transform_apply(&o.transform, img, &tp, want);
  rat_image_free(img);
  rat_assert_close(rat_select(b.images, 0, 1), rat_from_data(RAT_SHAPE(3, 4, 4), want), 0, 0, "pixels of item 1");
  rat_batch_clear(&b);
  rat_scope_pop(s);
  rat_loader_free(l);
  rat_tokenizer_free(tok);
  rat_module_free(ds);
}

static void test_bad_images(void) {
  RatModule *ds = dataset("9", "4");
  RatLoaderOptions o = opts(5, 2);
  o.shuffle = FALSE;
  GError *e = NULL;
  RatLoader *l = rat_loader_new(ds, &o, &e);
  RatBatch b;
  RatScope s = rat_scope_push();
  g_assert_true(rat_loader_next(l, &b, &e)); /* items 0..2 */
  rat_batch_clear(&b);
  g_assert_false(rat_loader_next(l, &b, &e)); /* items 3..5: item 4 fails */
  g_assert_error(e, RAT_ERROR, RAT_ERROR_CORRUPT);
  g_assert_nonnull(strstr(e->message, "bad-4.png"));
  g_clear_error(&e);
  rat_loader_free(l);
  o.on_error = RAT_ON_ERROR_SKIP;
  l = rat_loader_new(ds, &o, &e);
  g_assert_true(rat_loader_next(l, &b, &e));
  rat_batch_clear(&b);
  g_assert_true(rat_loader_next(l, &b, &e));
  g_assert_cmpuint(b.items[0], ==, 3);
  g_assert_cmpuint(b.items[1], ==, 5); /* 4 replaced by the next item of the order */
  g_assert_cmpuint(rat_loader_skipped(l), ==, 1);
  rat_batch_clear(&b);
  rat_scope_pop(s);
  rat_loader_free(l);
  /* too few items for one batch */
  RatModule *tiny = dataset("2", "-1");
  g_assert_null(rat_loader_new(tiny, &o, &e));
  g_assert_error(e, RAT_ERROR, RAT_ERROR_CONFIG);
  g_clear_error(&e);
  rat_module_free(tiny);
  rat_module_free(ds);
}

int main(int argc, char **argv) {
  rat_test_init(&argc, &argv);
  reg = rat_registry_new();
  g_assert_true(rat_registry_add_type(reg, &t_type, NULL));
  g_test_add_func("/loader/determinism", test_determinism);
  g_test_add_func("/loader/epochs", test_epochs);
  g_test_add_func("/loader/tokens-pixels", test_tokens_and_pixels);
  g_test_add_func("/loader/bad-images", test_bad_images);
  int r = g_test_run();
  rat_registry_free(reg);
  return r;
}
