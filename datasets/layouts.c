/* The papers' dataset layouts (reference §8) and a plain folder of captioned images, as dataset types:
 *
 *   cub     data/birds: CUB_200_2011/images/<key>.jpg, CUB_200_2011/images.txt + bounding_boxes.txt (the crop
 *           rule of §8.1, boxes cast to int as the reference's pandas .astype(int) does), text/<key>.txt,
 *           train|test/filenames.pickle
 *   oxford  data/flower: images/<key> (the key holds the extension), text/<key minus extension>.txt, pickles
 *   faces   data/faces:  images/<key>.jpg, text/<key>.txt, pickles
 *   folder  any directory: every .png/.jpg/.jpeg (recursively) with a same-named .txt of captions; the test
 *           split is a list file or a fixed hash-chosen fraction
 *
 * Captions are the non-empty lines of each caption file (a trailing '\r' removed), as get_caption reads them
 * (§8.1); the loader draws one per image per epoch. The pickles are read by the safe reader of core/data/pickle.c
 * (lists of strings only; anything else is an error, never code execution). Caption files are read when the
 * dataset is built, so a missing one is reported at once with its path; images are decoded when a batch needs
 * them, a missing or corrupt one is an error naming the file (the loader's on_error policy decides whether it
 * stops the run or is skipped and counted). */
#include <ratfw/ratfw.h>

#include <errno.h>
#include <string.h>

typedef enum { LAYOUT_CUB, LAYOUT_OXFORD, LAYOUT_FACES, LAYOUT_FOLDER } LayoutKind;

typedef struct {
  char *root;
  gboolean bbox_crop;   /* cub */
  char *test_list;      /* folder */
  double test_ratio;    /* folder */
} LayoutOptions;

typedef struct {
  char *key;
  char *image_path;
  char **captions; /* NULL-terminated, >= 1 */
  gboolean has_bbox;
  int bbox[4];     /* x, y, w, h (integers, as the reference casts them) */
} LayoutItem;

typedef struct {
  GPtrArray *items[2]; /* LayoutItem* of the train and test splits */
} LayoutPriv;

static void item_free(gpointer p) {
  LayoutItem *it = p;
  g_free(it->key);
  g_free(it->image_path);
  g_strfreev(it->captions);
  g_free(it);
}

/* Non-empty lines of @path (trailing \r dropped). NULL with @error when unreadable or without any caption. */
static char **read_captions(const char *path, GError **error) {
  char *text = NULL;
  gsize len = 0;
  GError *e = NULL;
  if (!g_file_get_contents(path, &text, &len, &e)) {
    g_set_error(error, RAT_ERROR, RAT_ERROR_IO, "%s (each image needs its caption file)", e->message);
    g_error_free(e);
    return NULL;
  }
  if (!g_utf8_validate(text, (gssize)len, NULL)) {
    g_set_error(error, RAT_ERROR, RAT_ERROR_CORRUPT, "caption file %s is not valid UTF-8", path);
    g_free(text);
    return NULL;
  }
  char **lines = g_strsplit(text, "\n", -1);
  g_free(text);
  GPtrArray *out = g_ptr_array_new();
  for (char **l = lines; *l; l++) {
    gsize n = strlen(*l);
    if (n && (*l)[n - 1] == '\r') (*l)[n - 1] = 0;
    if (**l) g_ptr_array_add(out, g_strdup(*l));
  }
  g_strfreev(lines);
  if (out->len == 0) {
    g_ptr_array_free(out, TRUE);
    g_set_error(error, RAT_ERROR, RAT_ERROR_CORRUPT, "caption file %s holds no caption (every line is empty)", path);
    return NULL;
  }
  g_ptr_array_add(out, NULL);
  return (char **)g_ptr_array_free(out, FALSE);
}

/* CUB: key ("<class_dir>/<image>", no extension) -> bounding box, from images.txt and bounding_boxes.txt. */
static GHashTable *read_cub_boxes(const char *cub_dir, GError **error) {
  char *images_txt = g_build_filename(cub_dir, "images.txt", NULL);
  char *boxes_txt = g_build_filename(cub_dir, "bounding_boxes.txt", NULL);
  char *imgs = NULL, *boxes = NULL;
  GHashTable *map = NULL;
  GError *e = NULL;
  if (!g_file_get_contents(images_txt, &imgs, NULL, &e) || !g_file_get_contents(boxes_txt, &boxes, NULL, &e)) {
    g_set_error(error, RAT_ERROR, RAT_ERROR_IO, "%s (the cub layout needs CUB_200_2011/images.txt and "
                "bounding_boxes.txt for the crop; set bbox_crop: false to train on whole images)", e->message);
    g_error_free(e);
    goto out;
  }
  GHashTable *id_to_key = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, g_free);
  char **lines = g_strsplit(imgs, "\n", -1);
  for (guint ln = 0; lines[ln]; ln++) {
    char *l = g_strstrip(lines[ln]);
    if (!*l) continue;
    char **f = g_strsplit_set(l, " \t", 2);
    if (!f[0] || !f[1] || !*f[1]) {
      g_set_error(error, RAT_ERROR, RAT_ERROR_CORRUPT, "%s:%u: expected \"<id> <class_dir>/<image>.jpg\", got \"%s\"",
                  images_txt, ln + 1, l);
      g_strfreev(f);
      g_strfreev(lines);
      g_hash_table_unref(id_to_key);
      goto out;
    }
    char *key = g_strdup(g_strstrip(f[1]));
    char *dot = strrchr(key, '.');
    if (dot && !strchr(dot, '/')) *dot = 0;
    g_hash_table_replace(id_to_key, g_strdup(f[0]), key);
    g_strfreev(f);
  }
  g_strfreev(lines);
  map = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, g_free);
  lines = g_strsplit(boxes, "\n", -1);
  for (guint ln = 0; lines[ln]; ln++) {
    char *l = g_strstrip(lines[ln]);
    if (!*l) continue;
    char id[64];
    double v[4];
    if (sscanf(l, "%63s %lf %lf %lf %lf", id, &v[0], &v[1], &v[2], &v[3]) != 5 || v[2] <= 0 || v[3] <= 0) {
      g_set_error(error, RAT_ERROR, RAT_ERROR_CORRUPT, "%s:%u: expected \"<id> <x> <y> <width> <height>\" with a "
                  "positive size, got \"%s\"", boxes_txt, ln + 1, l);
      g_hash_table_unref(map);
      map = NULL;
      break;
    }
    const char *key = g_hash_table_lookup(id_to_key, id);
    if (!key) {
      g_set_error(error, RAT_ERROR, RAT_ERROR_CORRUPT, "%s:%u: image id %s is not in %s", boxes_txt, ln + 1, id,
                  images_txt);
      g_hash_table_unref(map);
      map = NULL;
      break;
    }
    int *b = g_new(int, 4);
    for (int k = 0; k < 4; k++) b[k] = (int)v[k]; /* pandas .astype(int) truncates toward zero */
    g_hash_table_replace(map, g_strdup(key), b);
  }
  g_strfreev(lines);
  g_hash_table_unref(id_to_key);
out:
  g_free(imgs);
  g_free(boxes);
  g_free(images_txt);
  g_free(boxes_txt);
  return map;
}

static const char *split_dir(RatSplit s) { return s == RAT_SPLIT_TEST ? "test" : "train"; }

/* cub / oxford / faces: keys from <root>/<split>/filenames.pickle. */
static gboolean build_pickled(RatModule *m, LayoutKind kind, GError **error) {
  const LayoutOptions *o = RAT_MODULE_OPTIONS(m, LayoutOptions);
  LayoutPriv *p = RAT_MODULE_PRIV(m, LayoutPriv);
  if (!o->root || !*o->root) {
    g_set_error(error, RAT_ERROR, RAT_ERROR_CONFIG, "%s: set root: to the dataset directory (%s)",
                m->type->name, kind == LAYOUT_CUB ? "data/birds" : kind == LAYOUT_OXFORD ? "data/flower" : "data/faces");
    return FALSE;
  }
  if (!g_file_test(o->root, G_FILE_TEST_IS_DIR)) {
    g_set_error(error, RAT_ERROR, RAT_ERROR_IO, "%s: root %s is not a directory", m->type->name, o->root);
    return FALSE;
  }
  GHashTable *boxes = NULL;
  if (kind == LAYOUT_CUB && o->bbox_crop) {
    char *cub_dir = g_build_filename(o->root, "CUB_200_2011", NULL);
    boxes = read_cub_boxes(cub_dir, error);
    g_free(cub_dir);
    if (!boxes) return FALSE;
  }
  gboolean ok = TRUE;
  for (int s = 0; s < 2 && ok; s++) {
    p->items[s] = g_ptr_array_new_with_free_func(item_free);
    char *pk = g_build_filename(o->root, split_dir(s), "filenames.pickle", NULL);
    GPtrArray *keys = rat_pickle_load_strings(pk, error);
    if (!keys) {
      g_prefix_error(error, "%s split of %s: ", split_dir(s), m->type->name);
      g_free(pk);
      ok = FALSE;
      break;
    }
    for (guint i = 0; i < keys->len && ok; i++) {
      const char *key = keys->pdata[i];
      LayoutItem *it = g_new0(LayoutItem, 1);
      it->key = g_strdup(key);
      char *text_key = g_strdup(key);
      if (kind == LAYOUT_CUB) {
        char *rel = g_strconcat(key, ".jpg", NULL);
        it->image_path = g_build_filename(o->root, "CUB_200_2011", "images", rel, NULL);
        g_free(rel);
      } else if (kind == LAYOUT_OXFORD) {
        it->image_path = g_build_filename(o->root, "images", key, NULL);
        char *dot = strrchr(text_key, '.');
        if (dot && !strchr(dot, '/')) *dot = 0;
      } else {
        char *rel = g_strconcat(key, ".jpg", NULL);
        it->image_path = g_build_filename(o->root, "images", rel, NULL);
        g_free(rel);
      }
      char *txt = g_strconcat(text_key, ".txt", NULL);
      char *txt_path = g_build_filename(o->root, "text", txt, NULL);
      it->captions = read_captions(txt_path, error);
      if (!it->captions) {
        g_prefix_error(error, "item \"%s\" of %s: ", key, pk);
        ok = FALSE;
      }
      g_free(txt);
      g_free(txt_path);
      g_free(text_key);
      if (ok && boxes) {
        const int *b = g_hash_table_lookup(boxes, key);
        if (!b) {
          g_set_error(error, RAT_ERROR, RAT_ERROR_NOT_FOUND, "item \"%s\" of %s has no bounding box in "
                      "CUB_200_2011/images.txt (set bbox_crop: false to use whole images)", key, pk);
          ok = FALSE;
        } else {
          it->has_bbox = TRUE;
          memcpy(it->bbox, b, sizeof it->bbox);
        }
      }
      g_ptr_array_add(p->items[s], it);
    }
    g_ptr_array_unref(keys);
    g_free(pk);
  }
  if (boxes) g_hash_table_unref(boxes);
  return ok;
}

static gboolean is_image_name(const char *name) {
  char *l = g_ascii_strdown(name, -1);
  gboolean r = g_str_has_suffix(l, ".png") || g_str_has_suffix(l, ".jpg") || g_str_has_suffix(l, ".jpeg");
  g_free(l);
  return r;
}

static char *strip_ext(const char *name) {
  char *s = g_strdup(name);
  char *dot = strrchr(s, '.');
  char *slash = strrchr(s, '/');
  if (dot && (!slash || dot > slash)) *dot = 0;
  return s;
}

static gboolean walk(const char *root, const char *rel, GPtrArray *out, GError **error) {
  char *dir_path = rel ? g_build_filename(root, rel, NULL) : g_strdup(root);
  GDir *d = g_dir_open(dir_path, 0, error);
  if (!d) {
    g_prefix_error(error, "folder dataset: ");
    g_free(dir_path);
    return FALSE;
  }
  const char *name;
  gboolean ok = TRUE;
  while (ok && (name = g_dir_read_name(d))) {
    if (name[0] == '.') continue;
    char *r = rel ? g_build_filename(rel, name, NULL) : g_strdup(name);
    char *full = g_build_filename(root, r, NULL);
    if (g_file_test(full, G_FILE_TEST_IS_DIR)) {
      /* symlinked directories are not followed: a link to an ancestor would recurse forever */
      if (!g_file_test(full, G_FILE_TEST_IS_SYMLINK)) ok = walk(root, r, out, error);
    }
    else if (is_image_name(name))
      g_ptr_array_add(out, g_strdup(r));
    g_free(full);
    g_free(r);
  }
  g_dir_close(d);
  g_free(dir_path);
  return ok;
}

static int cmp_str(gconstpointer a, gconstpointer b) { return strcmp(*(char *const *)a, *(char *const *)b); }

static gboolean build_folder(RatModule *m, GError **error) {
  const LayoutOptions *o = RAT_MODULE_OPTIONS(m, LayoutOptions);
  LayoutPriv *p = RAT_MODULE_PRIV(m, LayoutPriv);
  if (!o->root || !*o->root) {
    g_set_error(error, RAT_ERROR, RAT_ERROR_CONFIG, "folder: set root: to a directory of images with a .txt of "
                "captions beside each");
    return FALSE;
  }
  GPtrArray *files = g_ptr_array_new_with_free_func(g_free);
  if (!walk(o->root, NULL, files, error)) {
    g_ptr_array_unref(files);
    return FALSE;
  }
  g_ptr_array_sort(files, cmp_str);
  if (files->len == 0) {
    g_set_error(error, RAT_ERROR, RAT_ERROR_NOT_FOUND, "folder: no .png, .jpg or .jpeg image under %s", o->root);
    g_ptr_array_unref(files);
    return FALSE;
  }
  /* The test list names items by relative path, with or without the extension. */
  GHashTable *test = NULL;
  if (o->test_list && *o->test_list) {
    char *text = NULL;
    if (!g_file_get_contents(o->test_list, &text, NULL, error)) {
      g_prefix_error(error, "folder: test_list: ");
      g_ptr_array_unref(files);
      return FALSE;
    }
    test = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
    char **lines = g_strsplit(text, "\n", -1);
    for (char **l = lines; *l; l++) {
      char *s = g_strstrip(*l);
      if (*s) g_hash_table_add(test, strip_ext(s));
    }
    g_strfreev(lines);
    g_free(text);
  }
  p->items[0] = g_ptr_array_new_with_free_func(item_free);
  p->items[1] = g_ptr_array_new_with_free_func(item_free);
  gboolean ok = TRUE;
  guint matched = 0;
  for (guint i = 0; i < files->len && ok; i++) {
    const char *rel = files->pdata[i];
    char *stem = strip_ext(rel);
    char *txt_rel = g_strconcat(stem, ".txt", NULL);
    char *txt = g_build_filename(o->root, txt_rel, NULL);
    LayoutItem *it = g_new0(LayoutItem, 1);
    it->key = g_strdup(rel);
    it->image_path = g_build_filename(o->root, rel, NULL);
    it->captions = read_captions(txt, error);
    if (!it->captions) {
      g_prefix_error(error, "folder: image %s needs its captions in %s: ", rel, txt_rel);
      item_free(it);
      ok = FALSE;
    } else {
      gboolean in_test;
      if (test) {
        in_test = g_hash_table_contains(test, stem);
        matched += in_test;
      } else {
        in_test = (double)(rat_fnv1a64(stem) % 1000000) < o->test_ratio * 1e6;
      }
      g_ptr_array_add(p->items[in_test ? 1 : 0], it);
    }
    g_free(stem);
    g_free(txt_rel);
    g_free(txt);
  }
  if (ok && test && matched < g_hash_table_size(test)) {
    g_set_error(error, RAT_ERROR, RAT_ERROR_NOT_FOUND, "folder: %u of the %u names in test_list %s are not images "
                "under %s (names are relative paths, with or without the extension)",
                g_hash_table_size(test) - matched, g_hash_table_size(test), o->test_list, o->root);
    ok = FALSE;
  }
  if (test) g_hash_table_unref(test);
  g_ptr_array_unref(files);
  return ok;
}

static LayoutKind kind_of(RatModule *m) {
  const char *t = m->type->name;
  return !strcmp(t, "cub") ? LAYOUT_CUB : !strcmp(t, "oxford") ? LAYOUT_OXFORD : !strcmp(t, "faces") ? LAYOUT_FACES
                                                                                                    : LAYOUT_FOLDER;
}

static gboolean layout_build(RatModule *m, const RatBuildContext *ctx, GError **error) {
  (void)ctx;
  LayoutKind k = kind_of(m);
  return k == LAYOUT_FOLDER ? build_folder(m, error) : build_pickled(m, k, error);
}

static void layout_finalize(RatModule *m) {
  LayoutPriv *p = RAT_MODULE_PRIV(m, LayoutPriv);
  for (int s = 0; s < 2; s++)
    if (p->items[s]) g_ptr_array_unref(p->items[s]);
}

static const LayoutItem *get(RatModule *m, RatSplit split, guint i) {
  LayoutPriv *p = RAT_MODULE_PRIV(m, LayoutPriv);
  if (split == RAT_SPLIT_ALL) {
    guint n0 = p->items[0]->len;
    return i < n0 ? p->items[0]->pdata[i] : p->items[1]->pdata[i - n0];
  }
  return p->items[split]->pdata[i];
}

static guint layout_count(RatModule *m, RatSplit split) {
  LayoutPriv *p = RAT_MODULE_PRIV(m, LayoutPriv);
  return split == RAT_SPLIT_ALL ? p->items[0]->len + p->items[1]->len : p->items[split]->len;
}
static guint layout_n_captions(RatModule *m, RatSplit split, guint i) { return g_strv_length(get(m, split, i)->captions); }
static char *layout_caption(RatModule *m, RatSplit split, guint i, guint k) {
  return g_strdup(get(m, split, i)->captions[k]);
}
static char *layout_name(RatModule *m, RatSplit split, guint i) { return g_strdup(get(m, split, i)->key); }

static RatImage *layout_image(RatModule *m, RatSplit split, guint i, GError **error) {
  const LayoutItem *it = get(m, split, i);
  /* PIL's Image.open(path).convert('RGB'): alpha dropped, as the reference reads its images. */
  RatImage *img = rat_image_read(it->image_path, RAT_IMAGE_ALPHA_DROP, error);
  if (!img || !it->has_bbox) return img;
  int box[4];
  rat_cub_bbox_box(img->width, img->height, it->bbox[0], it->bbox[1], it->bbox[2], it->bbox[3], box);
  if (box[2] <= box[0] || box[3] <= box[1]) {
    g_set_error(error, RAT_ERROR, RAT_ERROR_CORRUPT, "%s: bounding box (%d, %d, %d, %d) lies outside the %dx%d image",
                it->image_path, it->bbox[0], it->bbox[1], it->bbox[2], it->bbox[3], img->width, img->height);
    rat_image_free(img);
    return NULL;
  }
  RatImage *c = rat_image_crop(img, box[0], box[1], box[2], box[3]);
  rat_image_free(img);
  return c;
}

static const RatDatasetIface layout_iface = {.count = layout_count, .n_captions = layout_n_captions,
                                             .caption = layout_caption, .image = layout_image, .item_name = layout_name};

static const RatArgSpec cub_args[] = {
    RAT_ARG_P(LayoutOptions, root, "", "the data/birds directory (CUB_200_2011/, text/, train/, test/)"),
    RAT_ARG_B(LayoutOptions, bbox_crop, "true", "crop each image around its bounding box (reference §8.1)"),
};
static const RatArgSpec oxford_args[] = {
    RAT_ARG_P(LayoutOptions, root, "", "the data/flower directory (images/, text/, train/, test/)"),
};
static const RatArgSpec faces_args[] = {
    RAT_ARG_P(LayoutOptions, root, "", "the data/faces directory (images/, text/, train/, test/)"),
};
static const RatArgSpec folder_args[] = {
    RAT_ARG_P(LayoutOptions, root, "", "a directory of images (.png/.jpg/.jpeg, searched recursively), each with a "
              "same-named .txt of captions, one per line"),
    RAT_ARG_P(LayoutOptions, test_list, "", "a file naming the test items (relative paths, one per line, extension "
              "optional); empty = choose by test_ratio"),
    RAT_ARG_D(LayoutOptions, test_ratio, "0.1", 0, 1, "without test_list: the fraction of items in the test split, "
              "chosen by a hash of each relative path (stable when files are added)"),
};

#define LAYOUT_TYPE(var, name_, doc_, args_)                                                                     \
  static const RatModuleType var = {.struct_size = sizeof(RatModuleType), .name = name_, .kind = RAT_KIND_DATASET, \
                                    .doc = doc_, .args = args_, .n_args = G_N_ELEMENTS(args_),                   \
                                    .options_size = sizeof(LayoutOptions), .priv_size = sizeof(LayoutPriv),      \
                                    .build = layout_build, .finalize = layout_finalize, .iface = &layout_iface}

LAYOUT_TYPE(cub_type, "cub", "CUB-200-2011 birds in the AttnGAN/DF-GAN/GALIP/RATLIP layout: keys from "
            "train|test/filenames.pickle, images cropped to 1.5x their bounding box (reference §8.1), 10 captions per image "
            "from text/<key>.txt.", cub_args);
LAYOUT_TYPE(oxford_type, "oxford", "Oxford-102 flowers in the RATLIP layout (reference §8.2): images/<key> where the key holds "
            "the extension, text/<key minus extension>.txt, train|test/filenames.pickle; no crop.", oxford_args);
LAYOUT_TYPE(faces_type, "faces", "CelebA-tiny faces in the RATLIP layout (reference §8.3): images/<key>.jpg, text/<key>.txt, "
            "train|test/filenames.pickle.", faces_args);
LAYOUT_TYPE(folder_type, "folder", "Any directory of images with a same-named .txt of captions per image; the test split "
            "from a list file or a stable hash-chosen fraction.", folder_args);

static gboolean layouts_init(RatRegistry *reg, GError **error) {
  return rat_registry_add_type(reg, &cub_type, error) && rat_registry_add_type(reg, &oxford_type, error) &&
         rat_registry_add_type(reg, &faces_type, error) && rat_registry_add_type(reg, &folder_type, error);
}

RAT_PLUGIN_DEFINE("layouts", "0.1.0", "MIT", "the papers' dataset layouts (cub, oxford, faces) and a captioned folder",
                  layouts_init)
