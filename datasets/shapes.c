/* shapes: procedural, seeded and unbounded (core/data/shapes.c): 1..max_objects coloured shapes of 8 kinds and 3
 * sizes in the cells of a 3x3 grid on plain or two-tone backgrounds, with captions that state every attribute.
 * Item i of the train split is index i of the generator, item i of the test split index 2^40 + i, so the splits
 * never share an image; an epoch has train_size items. attributes() gives the RatShapesItem (kinds, sizes,
 * colours, cells, background) for metrics. */
#include <ratfw/ratfw.h>

typedef struct {
  gint64 seed, max_objects, render_size, train_size, test_size;
  gboolean two_tone, rotate;
} ShapesOptions;

static const RatArgSpec shapes_args[] = {
    RAT_ARG_I(ShapesOptions, seed, "0", 0, RAT_ARG_NO_LIMIT, "generator seed (independent of the experiment's seed)"),
    RAT_ARG_I(ShapesOptions, max_objects, "1", 1, RAT_SHAPES_MAX_OBJECTS, "each image has 1..max_objects shapes"),
    RAT_ARG_I(ShapesOptions, render_size, "64", 8, 1024, "side of the rendered images (the loader resizes them)"),
    RAT_ARG_I(ShapesOptions, train_size, "50000", 1, 1e9, "items per training epoch"),
    RAT_ARG_I(ShapesOptions, test_size, "1000", 1, 1e9, "items of the test split"),
    RAT_ARG_B(ShapesOptions, two_tone, "true", "allow two-tone backgrounds (half of the items)"),
    RAT_ARG_B(ShapesOptions, rotate, "true", "random rotation of non-circular shapes"),
};

static void sample(RatModule *m, RatSplit split, guint i, RatShapesItem *it) {
  const ShapesOptions *o = RAT_MODULE_OPTIONS(m, ShapesOptions);
  RatShapesOptions so = rat_shapes_options_default((guint64)o->seed);
  so.max_objects = (int)o->max_objects;
  so.two_tone = o->two_tone;
  so.rotate = o->rotate;
  rat_shapes_sample(&so, (split == RAT_SPLIT_TEST ? (guint64)1 << 40 : 0) + i, it);
}

static gboolean shapes_build(RatModule *m, const RatBuildContext *ctx, GError **error) { return TRUE; }
static guint shapes_count(RatModule *m, RatSplit split) {
  const ShapesOptions *o = RAT_MODULE_OPTIONS(m, ShapesOptions);
  return (guint)(split == RAT_SPLIT_TEST ? o->test_size : o->train_size);
}
static guint shapes_n_captions(RatModule *m, RatSplit split, guint i) { return rat_shapes_n_phrasings(); }
static char *shapes_caption(RatModule *m, RatSplit split, guint i, guint k) {
  RatShapesItem it;
  sample(m, split, i, &it);
  return rat_shapes_caption(&it, k);
}
static RatImage *shapes_image(RatModule *m, RatSplit split, guint i, GError **error) {
  RatShapesItem it;
  sample(m, split, i, &it);
  return rat_shapes_render_image(&it, (int)RAT_MODULE_OPTIONS(m, ShapesOptions)->render_size);
}
static char *shapes_name(RatModule *m, RatSplit split, guint i) {
  return g_strdup_printf("%s/%u", split == RAT_SPLIT_TEST ? "test" : "train", i);
}
static gboolean shapes_attributes(RatModule *m, RatSplit split, guint i, gpointer out) {
  sample(m, split, i, out);
  return TRUE;
}
static int shapes_native_size(RatModule *m) { return (int)RAT_MODULE_OPTIONS(m, ShapesOptions)->render_size; }

static const RatDatasetIface shapes_iface = {.count = shapes_count, .n_captions = shapes_n_captions,
                                             .caption = shapes_caption, .image = shapes_image, .item_name = shapes_name,
                                             .attributes = shapes_attributes, .native_size = shapes_native_size};

static const RatModuleType shapes_type = {
    .struct_size = sizeof(RatModuleType), .name = "shapes", .kind = RAT_KIND_DATASET,
    .doc = "Procedural coloured shapes with captions stating kind, size, colour, position and background; seeded, "
           "unbounded, ground-truth attributes for metrics.",
    .args = shapes_args, .n_args = G_N_ELEMENTS(shapes_args), .options_size = sizeof(ShapesOptions),
    .build = shapes_build, .iface = &shapes_iface};

static gboolean shapes_init(RatRegistry *reg, GError **error) { return rat_registry_add_type(reg, &shapes_type, error); }

RAT_PLUGIN_DEFINE("shapes", "0.1.0", "MIT", "procedural shapes dataset", shapes_init)
