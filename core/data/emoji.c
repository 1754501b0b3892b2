/* The emoji source: emoji-datasource-google (npm, unpacked by tools/fetch-emoji.sh): one item per 64x64 PNG that
 * exists, base emoji and skin-tone variants, captioned from the name, short names, category, subcategory and skin
 * tone in several phrasings, with a fixed train/test split by a hash of the base code point. */
#include "config.h"

#include "ratfw-private.h"
#include <ratfw/data.h>
#include <ratfw/error.h>

#include <json-glib/json-glib.h>

struct _RatEmojiSet {
  GPtrArray *items;    /* RatEmojiItem*, owned */
  GPtrArray *split[2]; /* views: train, test */
  GStringChunk *chunk; /* every string */
  GPtrArray *vectors;  /* const char ** arrays, owned */
};

char *rat_emoji_default_dir(void) {
  const char *env = g_getenv("RATFW_EMOJI_DIR");
  if (env && *env)
    return g_build_filename(env, "package", NULL);
  return g_build_filename(g_get_user_cache_dir(), "ratfw", "emoji", "package", NULL);
}

guint64 rat_fnv1a64(const char *s) {
  guint64 h = 0xcbf29ce484222325ull;
  for (; *s; s++) {
    h ^= (guint8)*s;
    h *= 0x100000001b3ull;
  }
  return h;
}

static const char *tone_name(const char *code) {
  static const char *const codes[] = {"1F3FB", "1F3FC", "1F3FD", "1F3FE", "1F3FF"};
  static const char *const names[] = {"light", "medium-light", "medium", "medium-dark", "dark"};
  for (guint i = 0; i < G_N_ELEMENTS(codes); i++)
    if (!g_ascii_strcasecmp(code, codes[i]))
      return names[i];
  return NULL;
}

/* "1F3FD" -> "medium skin tone"; "1F3FB-1F3FF" -> "light and dark skin tones"; unknown -> NULL. */
static char *skin_tone_phrase(const char *key) {
  char **parts = g_strsplit(key, "-", -1);
  char *r = NULL;
  guint n = g_strv_length(parts);
  if (n == 1 && tone_name(parts[0])) {
    r = g_strdup_printf("%s skin tone", tone_name(parts[0]));
  } else if (n == 2 && tone_name(parts[0]) && tone_name(parts[1])) {
    if (!g_ascii_strcasecmp(parts[0], parts[1]))
      r = g_strdup_printf("%s skin tone", tone_name(parts[0]));
    else
      r = g_strdup_printf("%s and %s skin tones", tone_name(parts[0]), tone_name(parts[1]));
  }
  g_strfreev(parts);
  return r;
}

static const char *article(const char *word) { return strchr("aeiouAEIOU", word[0]) && word[0] ? "an" : "a"; }

/* Short name as words: "smiley_cat" -> "smiley cat", "flag-eg" -> "flag eg". */
static char *words(const char *s) {
  char *w = g_strdup(s);
  for (char *p = w; *p; p++)
    if (*p == '_' || *p == '-')
      *p = ' ';
  return w;
}

static const char *member_string(JsonObject *o, const char *key) {
  JsonNode *n = json_object_get_member(o, key);
  if (!n || JSON_NODE_TYPE(n) != JSON_NODE_VALUE || json_node_get_value_type(n) != G_TYPE_STRING)
    return NULL;
  return json_node_get_string(n);
}

static const char *const *make_vector(RatEmojiSet *set, GPtrArray *strs) {
  const char **v = g_new0(const char *, strs->len + 1);
  for (guint i = 0; i < strs->len; i++)
    v[i] = g_string_chunk_insert_const(set->chunk, strs->pdata[i]);
  g_ptr_array_add(set->vectors, v);
  return v;
}

static void add_item(RatEmojiSet *set, const char *img_dir, JsonObject *base, const char *unified, const char *image,
                     const char *tone_key) {
  char *path = g_build_filename(img_dir, image, NULL);
  if (!g_file_test(path, G_FILE_TEST_IS_REGULAR)) {
    g_free(path);
    return;
  }
  RatEmojiItem *it = g_new0(RatEmojiItem, 1);
  GStringChunk *c = set->chunk;
  const char *base_unified = member_string(base, "unified");
  char *name = g_utf8_strdown(member_string(base, "name"), -1);
  const char *cat = member_string(base, "category"), *sub = member_string(base, "subcategory");
  char *tone = tone_key ? skin_tone_phrase(tone_key) : NULL;
  it->unified = g_string_chunk_insert_const(c, unified);
  it->base = g_string_chunk_insert_const(c, base_unified);
  it->image_path = g_string_chunk_insert(c, path);
  it->name = g_string_chunk_insert_const(c, name);
  it->category = g_string_chunk_insert_const(c, cat ? cat : "");
  it->subcategory = g_string_chunk_insert_const(c, sub ? sub : "");
  it->skin_tone = tone ? g_string_chunk_insert_const(c, tone) : NULL;
  it->split = rat_fnv1a64(base_unified) % 10 == 0 ? RAT_SPLIT_TEST : RAT_SPLIT_TRAIN;

  GPtrArray *sn = g_ptr_array_new_with_free_func(g_free);
  JsonNode *snn = json_object_get_member(base, "short_names");
  if (snn && JSON_NODE_HOLDS_ARRAY(snn)) {
    JsonArray *a = json_node_get_array(snn);
    for (guint i = 0; i < json_array_get_length(a); i++) {
      JsonNode *e = json_array_get_element(a, i);
      if (JSON_NODE_HOLDS_VALUE(e) && json_node_get_value_type(e) == G_TYPE_STRING)
        g_ptr_array_add(sn, g_strdup(json_node_get_string(e)));
    }
  }
  it->short_names = make_vector(set, sn);

  /* captions */
  GPtrArray *cap = g_ptr_array_new_with_free_func(g_free);
  char *subw = words(it->subcategory), *catl = g_utf8_strdown(it->category, -1);
  char *with_tone = tone ? g_strdup_printf(" in %s", tone) : g_strdup("");
  char *comma_tone = tone ? g_strdup_printf(", %s", tone) : g_strdup("");
  g_ptr_array_add(cap, g_strdup_printf("%s%s", name, comma_tone));
  g_ptr_array_add(cap, g_strdup_printf("an emoji of %s%s", name, with_tone));
  if (*subw)
    g_ptr_array_add(cap, g_strdup_printf("%s %s emoji showing %s%s", article(subw), subw, name, with_tone));
  if (*catl)
    g_ptr_array_add(cap, g_strdup_printf("%s%s, an emoji from the %s category", name, comma_tone, catl));
  for (guint i = 0; i < sn->len && i < 2; i++) {
    char *w = words(sn->pdata[i]);
    g_ptr_array_add(cap, g_strdup_printf("the :%s: emoji%s", (char *)sn->pdata[i], comma_tone));
    g_ptr_array_add(cap, g_strdup_printf("%s %s emoji%s", article(w), w, with_tone));
    g_free(w);
  }
  g_ptr_array_add(cap, g_strdup_printf("a cartoon icon of %s on a white background%s", name, comma_tone));
  it->captions = make_vector(set, cap);
  g_ptr_array_add(set->items, it);

  g_ptr_array_unref(cap);
  g_ptr_array_unref(sn);
  g_free(subw);
  g_free(catl);
  g_free(with_tone);
  g_free(comma_tone);
  g_free(tone);
  g_free(name);
  g_free(path);
}

static gint cmp_str(gconstpointer a, gconstpointer b) { return strcmp(*(char *const *)a, *(char *const *)b); }

RatEmojiSet *rat_emoji_open(const char *package_dir, GError **error) {
  char *json = g_build_filename(package_dir, "emoji.json", NULL);
  char *img_dir = g_build_filename(package_dir, "img", "google", "64", NULL);
  RatEmojiSet *set = NULL;
  JsonParser *parser = NULL;
  GError *e = NULL;
  if (!g_file_test(json, G_FILE_TEST_IS_REGULAR) || !g_file_test(img_dir, G_FILE_TEST_IS_DIR)) {
    g_set_error(error, RAT_ERROR, RAT_ERROR_NOT_FOUND,
                "%s: no emoji.json and img/google/64/ here: run "
                "tools/fetch-emoji.sh (it unpacks emoji-datasource-google into ~/.cache/ratfw/emoji/package)",
                package_dir);
    goto out;
  }
  parser = json_parser_new();
  if (!json_parser_load_from_file(parser, json, &e)) {
    g_set_error(error, RAT_ERROR, RAT_ERROR_CORRUPT, "%s: %s", json, e->message);
    g_error_free(e);
    goto out;
  }
  JsonNode *root = json_parser_get_root(parser);
  if (!root || !JSON_NODE_HOLDS_ARRAY(root)) {
    g_set_error(error, RAT_ERROR, RAT_ERROR_CORRUPT, "%s: want a JSON array of emoji objects", json);
    goto out;
  }
  set = g_new0(RatEmojiSet, 1);
  set->items = g_ptr_array_new_with_free_func(g_free);
  set->split[0] = g_ptr_array_new();
  set->split[1] = g_ptr_array_new();
  set->chunk = g_string_chunk_new(1 << 16);
  set->vectors = g_ptr_array_new_with_free_func(g_free);
  JsonArray *arr = json_node_get_array(root);
  for (guint i = 0; i < json_array_get_length(arr); i++) {
    JsonNode *n = json_array_get_element(arr, i);
    JsonObject *o = JSON_NODE_HOLDS_OBJECT(n) ? json_node_get_object(n) : NULL;
    const char *unified = o ? member_string(o, "unified") : NULL, *image = o ? member_string(o, "image") : NULL;
    const char *name = o ? member_string(o, "name") : NULL;
    if (!unified || !image || !name || strchr(image, '/') || image[0] == '.') {
      g_set_error(error, RAT_ERROR, RAT_ERROR_CORRUPT,
                  "%s: entry %u lacks a string unified, name or image (or the "
                  "image is not a plain file name)",
                  json, i);
      g_clear_pointer(&set, rat_emoji_free);
      goto out;
    }
    add_item(set, img_dir, o, unified, image, NULL);
    JsonNode *sv = json_object_get_member(o, "skin_variations");
    if (!sv || !JSON_NODE_HOLDS_OBJECT(sv))
      continue;
    JsonObject *svo = json_node_get_object(sv);
    GList *keys = json_object_get_members(svo);
    GPtrArray *sorted = g_ptr_array_new();
    for (GList *l = keys; l; l = l->next)
      g_ptr_array_add(sorted, l->data);
    g_ptr_array_sort(sorted, cmp_str);
    for (guint k = 0; k < sorted->len; k++) {
      const char *key = sorted->pdata[k];
      JsonNode *vn = json_object_get_member(svo, key);
      JsonObject *v = JSON_NODE_HOLDS_OBJECT(vn) ? json_node_get_object(vn) : NULL;
      const char *vu = v ? member_string(v, "unified") : NULL, *vi = v ? member_string(v, "image") : NULL;
      if (vu && vi && !strchr(vi, '/') && vi[0] != '.')
        add_item(set, img_dir, o, vu, vi, key);
    }
    g_ptr_array_unref(sorted);
    g_list_free(keys);
  }
  for (guint i = 0; i < set->items->len; i++) {
    RatEmojiItem *it = set->items->pdata[i];
    g_ptr_array_add(set->split[it->split == RAT_SPLIT_TEST], it);
  }
out:
  if (parser)
    g_object_unref(parser);
  g_free(json);
  g_free(img_dir);
  return set;
}

void rat_emoji_free(RatEmojiSet *set) {
  if (!set)
    return;
  g_ptr_array_unref(set->items);
  g_ptr_array_unref(set->split[0]);
  g_ptr_array_unref(set->split[1]);
  g_ptr_array_unref(set->vectors);
  g_string_chunk_free(set->chunk);
  g_free(set);
}

static GPtrArray *split_array(const RatEmojiSet *set, RatSplit split) {
  return split == RAT_SPLIT_ALL ? set->items : set->split[split == RAT_SPLIT_TEST];
}

guint rat_emoji_count(const RatEmojiSet *set, RatSplit split) { return split_array(set, split)->len; }

const RatEmojiItem *rat_emoji_item(const RatEmojiSet *set, RatSplit split, guint i) {
  GPtrArray *a = split_array(set, split);
  rat_check(i < a->len, "rat_emoji_item: index %u of %u", i, a->len);
  return a->pdata[i];
}
