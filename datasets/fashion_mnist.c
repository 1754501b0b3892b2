/* fashion_mnist: Debian's dataset-fashion-mnist (IDX files in /usr/share/datasets/fashion-mnist): 60,000 train
 * and 10,000 test 28x28 gray images of 10 clothing classes. Captions: every phrasing of the class name
 * ("a photo of a sneaker", ...); images are the gray value replicated to RGB (white garment on black, as stored,
 * or inverted with `invert: true`). attributes() gives the label (guint). */
#include <ratfw/ratfw.h>

typedef struct {
  char *root;
  gboolean invert;
} FmOptions;

typedef struct {
  RatFashionMnist *split[2];
} FmPriv;

static const RatArgSpec fm_args[] = {
    RAT_ARG_P(FmOptions, root, "", "directory with the IDX files; empty = " RAT_FASHION_MNIST_DIR
              " (apt-get install dataset-fashion-mnist)"),
    RAT_ARG_B(FmOptions, invert, "false", "dark garment on white instead of the stored white on black"),
};

static gboolean fm_build(RatModule *m, const RatBuildContext *ctx, GError **error) {
  const FmOptions *o = RAT_MODULE_OPTIONS(m, FmOptions);
  FmPriv *p = RAT_MODULE_PRIV(m, FmPriv);
  const char *dir = o->root && *o->root ? o->root : NULL;
  for (int s = 0; s < 2; s++)
    if (!(p->split[s] = rat_fashion_mnist_open(dir, s ? RAT_SPLIT_TEST : RAT_SPLIT_TRAIN, error))) return FALSE;
  return TRUE;
}

static void fm_finalize(RatModule *m) {
  FmPriv *p = RAT_MODULE_PRIV(m, FmPriv);
  for (int s = 0; s < 2; s++)
    if (p->split[s]) rat_fashion_mnist_free(p->split[s]);
}

static const RatFashionMnist *fm(RatModule *m, RatSplit split) {
  return RAT_MODULE_PRIV(m, FmPriv)->split[split == RAT_SPLIT_TEST];
}

static guint fm_count(RatModule *m, RatSplit split) { return fm(m, split)->n; }
static guint fm_n_captions(RatModule *m, RatSplit split, guint i) { return rat_fashion_mnist_n_phrasings(); }
static char *fm_caption(RatModule *m, RatSplit split, guint i, guint k) {
  return rat_fashion_mnist_caption(fm(m, split)->labels[i], k);
}
static RatImage *fm_image(RatModule *m, RatSplit split, guint i, GError **error) {
  const RatFashionMnist *f = fm(m, split);
  gboolean inv = RAT_MODULE_OPTIONS(m, FmOptions)->invert;
  RatImage *img = rat_image_new(f->cols, f->rows);
  const guint8 *src = f->images + (gsize)i * f->rows * f->cols;
  for (int k = 0; k < f->rows * f->cols; k++) {
    guint8 v = inv ? (guint8)(255 - src[k]) : src[k];
    img->rgb[3 * k] = img->rgb[3 * k + 1] = img->rgb[3 * k + 2] = v;
  }
  return img;
}
static char *fm_name(RatModule *m, RatSplit split, guint i) {
  return g_strdup_printf("%s/%05u", split == RAT_SPLIT_TEST ? "t10k" : "train", i);
}
static gboolean fm_attributes(RatModule *m, RatSplit split, guint i, gpointer out) {
  *(guint *)out = fm(m, split)->labels[i];
  return TRUE;
}
static int fm_native_size(RatModule *m) { return 28; }

static const RatDatasetIface fm_iface = {.count = fm_count, .n_captions = fm_n_captions, .caption = fm_caption,
                                         .image = fm_image, .item_name = fm_name, .attributes = fm_attributes,
                                         .native_size = fm_native_size};

static const RatModuleType fm_type = {
    .struct_size = sizeof(RatModuleType), .name = "fashion_mnist", .kind = RAT_KIND_DATASET,
    .doc = "Fashion-MNIST (Debian dataset-fashion-mnist): 60k/10k 28x28 clothing images, captions from the class names.",
    .args = fm_args, .n_args = G_N_ELEMENTS(fm_args), .options_size = sizeof(FmOptions), .priv_size = sizeof(FmPriv),
    .build = fm_build, .finalize = fm_finalize, .iface = &fm_iface};

static gboolean fm_init(RatRegistry *reg, GError **error) { return rat_registry_add_type(reg, &fm_type, error); }

RAT_PLUGIN_DEFINE("fashion_mnist", "0.1.0", "MIT", "Fashion-MNIST dataset (Debian dataset-fashion-mnist)", fm_init)
