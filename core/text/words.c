/* Word-level tokenizer for small CLIPs trained on a dataset's captions: captions cleaned and split by CLIP's
 * pre-tokenisation pattern (core/text/clean.c), the most frequent words kept, <pad>=0 <sot>=1 <eot>=2 <unk>=3;
 * saved as JSON (json-glib) so a model carries its vocabulary. */
#include "config.h"

#include "text-private.h"

#include <json-glib/json-glib.h>
#include <ratfw/error.h>
#include <ratfw/io.h>
#include <string.h>

#define WORDS_FORMAT "ratfw-words"
#define WORDS_VERSION 1

static const char *const specials[4] = {"<pad>", "<sot>", "<eot>", "<unk>"};

static RatTokenizer *words_new(char **tokens, guint n, guint context, const char **dup) {
  RatTokenizer *tok = g_new0(RatTokenizer, 1);
  tok->kind = RAT_TOKENIZER_WORDS;
  tok->context = context;
  tok->pad = 0;
  tok->sot = 1;
  tok->eot = 2;
  tok->unk = 3;
  if (!rat_tokenizer_set_tokens(tok, tokens, n, dup)) {
    rat_tokenizer_free(tok);
    return NULL;
  }
  return tok;
}

typedef struct {
  const char *word;
  guint count;
} WordCount;

static int word_count_cmp(const void *a, const void *b) {
  const WordCount *x = a, *y = b;
  if (x->count != y->count) return x->count > y->count ? -1 : 1;
  return strcmp(x->word, y->word);
}

RatTokenizer *rat_tokenizer_new_words(const char *const *captions, guint n, guint max_words, guint context) {
  if (context < 2) g_error("rat_tokenizer_new_words: context %u < 2 (room for <sot> and <eot> is needed)", context);
  GHashTable *counts = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
  for (guint i = 0; i < n; i++) {
    char *clean = rat_text_clean(captions[i]);
    GPtrArray *pieces = rat_text_pretokenize(clean);
    for (guint k = 0; k < pieces->len; k++) {
      const char *w = g_ptr_array_index(pieces, k);
      gpointer old = NULL, key = NULL;
      if (g_hash_table_lookup_extended(counts, w, &key, &old))
        g_hash_table_insert(counts, g_strdup(w), GUINT_TO_POINTER(GPOINTER_TO_UINT(old) + 1));
      else
        g_hash_table_insert(counts, g_strdup(w), GUINT_TO_POINTER(1));
    }
    g_ptr_array_unref(pieces);
    g_free(clean);
  }
  guint nw = g_hash_table_size(counts);
  WordCount *wc = g_new(WordCount, MAX(nw, 1));
  GHashTableIter it;
  gpointer k, v;
  guint j = 0;
  g_hash_table_iter_init(&it, counts);
  while (g_hash_table_iter_next(&it, &k, &v)) wc[j++] = (WordCount){k, GPOINTER_TO_UINT(v)};
  qsort(wc, nw, sizeof(WordCount), word_count_cmp);
  guint keep = MIN(nw, max_words);
  char **tokens = g_new0(char *, keep + 5);
  for (guint i = 0; i < 4; i++) tokens[i] = g_strdup(specials[i]);
  for (guint i = 0; i < keep; i++) tokens[4 + i] = g_strdup(wc[i].word);
  g_free(wc);
  g_hash_table_unref(counts);
  const char *dup = NULL;
  RatTokenizer *tok = words_new(tokens, keep + 4, context, &dup);
  g_assert(tok); /* pieces never equal "<pad>" etc.: the pattern splits '<' and '>' from letters */
  return tok;
}

void rat_words_piece(RatTokenizer *tok, const char *piece, GArray *out) {
  gint32 id = rat_tokenizer_token_id(tok, piece);
  if (id < 4) id = tok->unk; /* unknown (or, impossibly, a special's spelling) */
  g_array_append_val(out, id);
}

gboolean rat_tokenizer_save(const RatTokenizer *tok, const char *path, GError **error) {
  if (tok->kind != RAT_TOKENIZER_WORDS) {
    g_set_error(error, RAT_ERROR, RAT_ERROR_UNSUPPORTED, "cannot save a BPE tokenizer to %s: refer to its vocabulary "
                "file (bpe_simple_vocab_16e6.txt.gz or a vocab.json + merges.txt directory) instead", path);
    return FALSE;
  }
  JsonBuilder *b = json_builder_new();
  json_builder_begin_object(b);
  json_builder_set_member_name(b, "format");
  json_builder_add_string_value(b, WORDS_FORMAT);
  json_builder_set_member_name(b, "version");
  json_builder_add_int_value(b, WORDS_VERSION);
  json_builder_set_member_name(b, "context");
  json_builder_add_int_value(b, tok->context);
  json_builder_set_member_name(b, "words");
  json_builder_begin_array(b);
  for (guint i = 0; i < tok->vocab_size; i++) json_builder_add_string_value(b, tok->tokens[i]);
  json_builder_end_array(b);
  json_builder_end_object(b);
  JsonGenerator *g = json_generator_new();
  JsonNode *root = json_builder_get_root(b);
  json_generator_set_root(g, root);
  gsize len = 0;
  char *text = json_generator_to_data(g, &len);
  gboolean ok = rat_file_write_atomic(path, text, len, error);
  g_free(text);
  json_node_unref(root);
  g_object_unref(g);
  g_object_unref(b);
  return ok;
}

RatTokenizer *rat_words_load(const char *path, GError **error) {
  JsonParser *parser = json_parser_new();
  GError *e = NULL;
  RatTokenizer *tok = NULL;
  if (!json_parser_load_from_file(parser, path, &e)) {
    gboolean io = e->domain == G_FILE_ERROR;
    g_set_error(error, RAT_ERROR, io ? RAT_ERROR_IO : RAT_ERROR_CORRUPT, "%s %s: %s",
                io ? "cannot read tokenizer" : "corrupt tokenizer", path, e->message);
    g_error_free(e);
    goto out;
  }
  JsonNode *root = json_parser_get_root(parser);
  JsonObject *o = root && JSON_NODE_HOLDS_OBJECT(root) ? json_node_get_object(root) : NULL;
  JsonNode *fmt = o ? json_object_get_member(o, "format") : NULL;
  if (!fmt || !JSON_NODE_HOLDS_VALUE(fmt) || g_strcmp0(json_node_get_string(fmt), WORDS_FORMAT) != 0) {
    g_set_error(error, RAT_ERROR, RAT_ERROR_CORRUPT, "%s: not a ratfw word tokenizer (\"format\": \"%s\" expected; "
                "a Hugging Face vocab.json is loaded by giving its directory)", path, WORDS_FORMAT);
    goto out;
  }
  JsonNode *ver = json_object_get_member(o, "version"), *ctx = json_object_get_member(o, "context");
  JsonNode *words = json_object_get_member(o, "words");
  if (!ver || json_node_get_value_type(ver) != G_TYPE_INT64 || json_node_get_int(ver) != WORDS_VERSION) {
    g_set_error(error, RAT_ERROR, RAT_ERROR_CORRUPT, "%s: unsupported word tokenizer version (%d expected)", path,
                WORDS_VERSION);
    goto out;
  }
  if (!ctx || json_node_get_value_type(ctx) != G_TYPE_INT64 || json_node_get_int(ctx) < 2 ||
      json_node_get_int(ctx) > 1 << 20) {
    g_set_error(error, RAT_ERROR, RAT_ERROR_CORRUPT, "%s: \"context\" must be an integer >= 2", path);
    goto out;
  }
  if (!words || !JSON_NODE_HOLDS_ARRAY(words) || json_array_get_length(json_node_get_array(words)) < 4) {
    g_set_error(error, RAT_ERROR, RAT_ERROR_CORRUPT, "%s: \"words\" must be an array starting with <pad> <sot> <eot> "
                "<unk>", path);
    goto out;
  }
  JsonArray *a = json_node_get_array(words);
  guint n = json_array_get_length(a);
  char **tokens = g_new0(char *, n + 1);
  for (guint i = 0; i < n; i++) {
    JsonNode *w = json_array_get_element(a, i);
    const char *s = JSON_NODE_HOLDS_VALUE(w) && json_node_get_value_type(w) == G_TYPE_STRING ? json_node_get_string(w)
                                                                                              : NULL;
    if (!s || (i < 4 && strcmp(s, specials[i]) != 0) || (i >= 4 && !*s)) {
      g_set_error(error, RAT_ERROR, RAT_ERROR_CORRUPT, "%s: word %u is %s (words must be non-empty strings after "
                  "<pad> <sot> <eot> <unk>)", path, i, s ? (*s ? s : "empty") : "not a string");
      g_strfreev(tokens);
      goto out;
    }
    tokens[i] = g_strdup(s);
  }
  const char *dup = NULL;
  /* words_new frees tokens on failure through the tokenizer, but dup points into them: report first */
  GHashTable *seen = g_hash_table_new(g_str_hash, g_str_equal);
  for (guint i = 0; i < n && !dup; i++) {
    if (g_hash_table_contains(seen, tokens[i])) dup = tokens[i];
    g_hash_table_add(seen, tokens[i]);
  }
  g_hash_table_unref(seen);
  if (dup) {
    g_set_error(error, RAT_ERROR, RAT_ERROR_CORRUPT, "%s: word \"%s\" occurs twice", path, dup);
    g_strfreev(tokens);
    goto out;
  }
  tok = words_new(tokens, n, (guint)json_node_get_int(ctx), &dup);
out:
  g_object_unref(parser);
  return tok;
}
