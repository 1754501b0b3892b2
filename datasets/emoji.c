/* emoji: the Noto emoji of npm emoji-datasource-google 16.0.0 (3,786 images of 64x64: every emoji and its skin-tone
 * variants), fetched by `ratfw dataset fetch emoji` (tools/fetch-emoji.sh) into ~/.cache/ratfw/emoji. Captions
 * are built from the name, short names, category and skin tone in several phrasings (core/data/emoji.c); the
 * fixed split puts an emoji and all its skin tones in the test split when a hash of its code points says so
 * (about 10%). Transparent pixels are composited on white. */
#include <ratfw/ratfw.h>

typedef struct {
  char *root;
} EmojiOptions;

typedef struct {
  RatEmojiSet *set;
} EmojiPriv;

static const RatArgSpec emoji_args[] = {
    RAT_ARG_P(EmojiOptions, root, "", "the unpacked package directory (holding emoji.json and img/); empty = "
              "$RATFW_EMOJI_DIR/package or ~/.cache/ratfw/emoji/package"),
};

static gboolean emoji_build(RatModule *m, const RatBuildContext *ctx, GError **error) {
  const EmojiOptions *o = RAT_MODULE_OPTIONS(m, EmojiOptions);
  char *dir = o->root && *o->root ? g_strdup(o->root) : rat_emoji_default_dir();
  RAT_MODULE_PRIV(m, EmojiPriv)->set = rat_emoji_open(dir, error);
  g_free(dir);
  (void)ctx;
  return RAT_MODULE_PRIV(m, EmojiPriv)->set != NULL;
}

static void emoji_finalize(RatModule *m) {
  EmojiPriv *p = RAT_MODULE_PRIV(m, EmojiPriv);
  if (p->set) rat_emoji_free(p->set);
}

static const RatEmojiItem *item(RatModule *m, RatSplit split, guint i) {
  return rat_emoji_item(RAT_MODULE_PRIV(m, EmojiPriv)->set, split, i);
}

static guint emoji_count(RatModule *m, RatSplit split) { return rat_emoji_count(RAT_MODULE_PRIV(m, EmojiPriv)->set, split); }
static guint emoji_n_captions(RatModule *m, RatSplit split, guint i) {
  return g_strv_length((char **)item(m, split, i)->captions);
}
static char *emoji_caption(RatModule *m, RatSplit split, guint i, guint k) { return g_strdup(item(m, split, i)->captions[k]); }
static RatImage *emoji_image(RatModule *m, RatSplit split, guint i, GError **error) {
  return rat_image_read(item(m, split, i)->image_path, RAT_IMAGE_ALPHA_WHITE, error);
}
static char *emoji_name(RatModule *m, RatSplit split, guint i) { return g_strdup(item(m, split, i)->unified); }
static int emoji_native_size(RatModule *m) { return 64; }

static const RatDatasetIface emoji_iface = {.count = emoji_count, .n_captions = emoji_n_captions, .caption = emoji_caption,
                                            .image = emoji_image, .item_name = emoji_name, .native_size = emoji_native_size};

static const RatModuleType emoji_type = {
    .struct_size = sizeof(RatModuleType), .name = "emoji", .kind = RAT_KIND_DATASET,
    .doc = "Noto emoji (npm emoji-datasource-google 16.0.0): 3,786 captioned 64x64 images, fixed train/test split.",
    .args = emoji_args, .n_args = G_N_ELEMENTS(emoji_args), .options_size = sizeof(EmojiOptions),
    .priv_size = sizeof(EmojiPriv), .build = emoji_build, .finalize = emoji_finalize, .iface = &emoji_iface};

static gboolean emoji_init(RatRegistry *reg, GError **error) { return rat_registry_add_type(reg, &emoji_type, error); }

RAT_PLUGIN_DEFINE("emoji", "0.1.0", "MIT", "Noto emoji dataset (npm emoji-datasource-google)", emoji_init)
