/* RatTokenizer: what the BPE and word-level tokenizers share. Encoding follows OpenAI's clip.tokenize
 * (reference/ratlip-reference.md §10.5): [sot] + ids + [eot], truncated with eot kept last, padded to the context. */
#include "config.h"

#include "text-private.h"

#include <string.h>

gboolean rat_tokenizer_set_tokens(RatTokenizer *tok, char **tokens, guint vocab_size, const char **dup) {
  tok->tokens = tokens;
  tok->vocab_size = vocab_size;
  tok->token_ids = g_hash_table_new(g_str_hash, g_str_equal);
  for (guint i = 0; i < vocab_size; i++) {
    if (g_hash_table_contains(tok->token_ids, tokens[i])) {
      *dup = tokens[i];
      return FALSE;
    }
    g_hash_table_insert(tok->token_ids, tokens[i], GUINT_TO_POINTER(i + 1));
  }
  return TRUE;
}

void rat_tokenizer_free(RatTokenizer *tok) {
  if (!tok) return;
  if (tok->kind == RAT_TOKENIZER_BPE) rat_bpe_free(tok);
  if (tok->token_ids) g_hash_table_unref(tok->token_ids);
  if (tok->tokens) g_strfreev(tok->tokens);
  g_free(tok);
}

RatTokenizer *rat_tokenizer_load(const char *path, GError **error) {
  g_return_val_if_fail(path != NULL, NULL);
  if (!g_file_test(path, G_FILE_TEST_IS_DIR) && g_str_has_suffix(path, ".json")) return rat_words_load(path, error);
  return rat_tokenizer_load_bpe(path, error);
}

RatTokenizerKind rat_tokenizer_kind(const RatTokenizer *tok) { return tok->kind; }
guint rat_tokenizer_context(const RatTokenizer *tok) { return tok->context; }
guint rat_tokenizer_vocab_size(const RatTokenizer *tok) { return tok->vocab_size; }
gint32 rat_tokenizer_sot_id(const RatTokenizer *tok) { return tok->sot; }
gint32 rat_tokenizer_eot_id(const RatTokenizer *tok) { return tok->eot; }
gint32 rat_tokenizer_pad_id(const RatTokenizer *tok) { return tok->pad; }
gint32 rat_tokenizer_unk_id(const RatTokenizer *tok) { return tok->unk; }
void rat_tokenizer_set_pad_id(RatTokenizer *tok, gint32 pad) { tok->pad = pad; }

void rat_tokenizer_set_context(RatTokenizer *tok, guint context) {
  if (context < 2) g_error("rat_tokenizer_set_context: context %u < 2 (room for sot and eot is needed)", context);
  tok->context = context;
}

const char *rat_tokenizer_token(const RatTokenizer *tok, gint32 id) {
  return id >= 0 && (guint)id < tok->vocab_size ? tok->tokens[id] : NULL;
}

gint32 rat_tokenizer_token_id(const RatTokenizer *tok, const char *token) {
  return (gint32)GPOINTER_TO_UINT(g_hash_table_lookup(tok->token_ids, token)) - 1;
}

void rat_tokenizer_tokenize(RatTokenizer *tok, const char *text, GArray *out) {
  g_return_if_fail(g_array_get_element_size(out) == sizeof(gint32));
  char *clean = rat_text_clean(text ? text : "");
  GPtrArray *pieces = rat_text_pretokenize(clean);
  for (guint i = 0; i < pieces->len; i++) {
    const char *piece = g_ptr_array_index(pieces, i);
    if (tok->kind == RAT_TOKENIZER_BPE)
      rat_bpe_piece(tok, piece, out);
    else
      rat_words_piece(tok, piece, out);
  }
  g_ptr_array_unref(pieces);
  g_free(clean);
}

guint rat_tokenizer_encode(RatTokenizer *tok, const char *text, gint32 *ids, guint context) {
  if (context < 2) g_error("rat_tokenizer_encode: context %u < 2 (room for sot and eot is needed)", context);
  GArray *a = g_array_new(FALSE, FALSE, sizeof(gint32));
  rat_tokenizer_tokenize(tok, text, a);
  guint n = MIN(a->len, context - 2);
  ids[0] = tok->sot;
  if (n) memcpy(ids + 1, a->data, n * sizeof(gint32));
  ids[n + 1] = tok->eot;
  for (guint i = n + 2; i < context; i++) ids[i] = tok->pad;
  g_array_unref(a);
  return n + 2;
}

RatTensor *rat_tokenizer_encode_batch(RatTokenizer *tok, const char *const *texts, guint n, guint *lengths) {
  RatTensor *t = rat_empty_dtype(RAT_DTYPE_I32, RAT_SHAPE((gint64)n, (gint64)tok->context)); /* [N, L] */
  gint32 *p = rat_tensor_data_i32(t);
  for (guint i = 0; i < n; i++) {
    guint len = rat_tokenizer_encode(tok, texts[i], p + (gsize)i * tok->context, tok->context);
    if (lengths) lengths[i] = len;
  }
  return t;
}

char *rat_tokenizer_decode(const RatTokenizer *tok, const gint32 *ids, guint n) {
  char *s;
  if (tok->kind == RAT_TOKENIZER_BPE) {
    s = rat_bpe_decode(tok, ids, n);
  } else {
    GString *out = g_string_new(NULL);
    for (guint i = 0; i < n; i++) {
      gint32 id = ids[i];
      if (id == tok->eot) break;
      if (id == tok->sot || id == tok->pad || id < 0 || (guint)id >= tok->vocab_size) continue;
      g_string_append(out, tok->tokens[id]);
      g_string_append_c(out, ' ');
    }
    s = g_string_free(out, FALSE);
  }
  gsize len = strlen(s);
  while (len && s[len - 1] == ' ') s[--len] = 0;
  return s;
}
