/* CLIP byte-level BPE (OpenAI clip/simple_tokenizer.py; reference/ratlip-reference.md §10.5): the byte<->unicode
 * table, vocabularies from bpe_simple_vocab_16e6.txt.gz or Hugging Face's vocab.json + merges.txt, merges applied
 * by rank (lowest first, all non-overlapping occurrences left to right) with a per-piece cache. */
#include "config.h"

#include "text-private.h"

#include <gio/gio.h>
#include <json-glib/json-glib.h>
#include <ratfw/error.h>
#include <string.h>

#define CLIP_N_MERGES (49152 - 256 - 2) /* 48,894 merges used from OpenAI's file */
#define CACHE_MAX 200000                /* per-piece cache entries before it is cleared */

/* Byte -> code point of its byte character: 33..126, 161..172, 174..255 map to themselves, the other 68 bytes to
 * 256, 257, ... in increasing byte order. @order receives the bytes in vocabulary order (printable ranges first). */
static void byte_table(gunichar *cp, guint8 *order) {
  guint n = 0, extra = 0;
  for (int b = 0; b < 256; b++)
    if ((b >= 33 && b <= 126) || (b >= 161 && b <= 172) || (b >= 174 && b <= 255)) {
      cp[b] = (gunichar)b;
      order[n++] = (guint8)b;
    }
  for (int b = 0; b < 256; b++)
    if (!((b >= 33 && b <= 126) || (b >= 161 && b <= 172) || (b >= 174 && b <= 255))) {
      cp[b] = 256 + extra++;
      order[n++] = (guint8)b;
    }
}

static char *unichar_str(gunichar c, const char *suffix) {
  char buf[8];
  buf[g_unichar_to_utf8(c, buf)] = 0;
  return g_strconcat(buf, suffix, NULL);
}

static guint64 mix64(guint64 k) {
  k ^= k >> 33;
  k *= G_GUINT64_CONSTANT(0xff51afd7ed558ccd);
  k ^= k >> 33;
  return k;
}

static void merge_put(RatTokenizer *tok, gint32 a, gint32 b, gint32 rank, gint32 merged) {
  guint64 key = ((guint64)(guint32)a << 32) | (guint32)b;
  for (guint64 i = mix64(key) & tok->merge_mask;; i = (i + 1) & tok->merge_mask) {
    RatMergeSlot *s = &tok->merges[i];
    if (s->key == G_MAXUINT64 || s->key == key) { /* a repeated pair keeps the later rank, as Python's dict */
      s->key = key;
      s->rank = rank;
      s->merged = merged;
      return;
    }
  }
}

static const RatMergeSlot *merge_get(const RatTokenizer *tok, gint32 a, gint32 b) {
  guint64 key = ((guint64)(guint32)a << 32) | (guint32)b;
  for (guint64 i = mix64(key) & tok->merge_mask;; i = (i + 1) & tok->merge_mask) {
    const RatMergeSlot *s = &tok->merges[i];
    if (s->key == key) return s;
    if (s->key == G_MAXUINT64) return NULL;
  }
}

static void merges_alloc(RatTokenizer *tok, guint n) {
  guint64 cap = 1024;
  while (cap < 2 * (guint64)n + 16) cap <<= 1;
  tok->merges = g_new(RatMergeSlot, cap);
  for (guint64 i = 0; i < cap; i++) tok->merges[i].key = G_MAXUINT64;
  tok->merge_mask = cap - 1;
}

static RatTokenizer *bpe_new(void) {
  RatTokenizer *tok = g_new0(RatTokenizer, 1);
  tok->kind = RAT_TOKENIZER_BPE;
  tok->context = RAT_CLIP_CONTEXT;
  tok->pad = 0;
  tok->unk = -1;
  g_mutex_init(&tok->cache_lock);
  tok->cache = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, g_free);
  return tok;
}

/* Byte ids, specials and the byte-character decoder, once the vocabulary is known. */
static gboolean bpe_finish(RatTokenizer *tok, const char *path, GError **error) {
  gunichar cp[256];
  guint8 order[256];
  byte_table(cp, order);
  memset(tok->byte_of_char, 0xff, sizeof tok->byte_of_char);
  for (int b = 0; b < 256; b++) {
    char *s = unichar_str(cp[b], ""), *se = unichar_str(cp[b], "</w>");
    tok->byte_id[b] = rat_tokenizer_token_id(tok, s);
    tok->byte_end_id[b] = rat_tokenizer_token_id(tok, se);
    tok->byte_of_char[cp[b]] = (gint16)b;
    gboolean ok = tok->byte_id[b] >= 0 && tok->byte_end_id[b] >= 0;
    if (!ok)
      g_set_error(error, RAT_ERROR, RAT_ERROR_CORRUPT, "%s: byte token \"%s\" or \"%s\" is missing from the vocabulary",
                  path, s, se);
    g_free(s);
    g_free(se);
    if (!ok) return FALSE;
  }
  tok->sot = rat_tokenizer_token_id(tok, "<|startoftext|>");
  tok->eot = rat_tokenizer_token_id(tok, "<|endoftext|>");
  if (tok->sot < 0 || tok->eot < 0) {
    g_set_error(error, RAT_ERROR, RAT_ERROR_CORRUPT,
                "%s: <|startoftext|> or <|endoftext|> is missing from the vocabulary", path);
    return FALSE;
  }
  return TRUE;
}

/* Adds merge @rank from the line "A B" (text between @line and @end); FALSE with an error naming path:lineno. */
static gboolean add_merge(RatTokenizer *tok, const char *line, gsize len, gint32 rank, const char *path, guint lineno,
                          GError **error) {
  char *s = g_strndup(line, len);
  char *sp = strchr(s, ' ');
  gboolean ok = FALSE;
  if (!sp || sp == s || sp[1] == 0 || strchr(sp + 1, ' ')) {
    g_set_error(error, RAT_ERROR, RAT_ERROR_CORRUPT, "%s:%u: expected a merge \"A B\", found \"%s\"", path, lineno, s);
  } else {
    *sp = 0;
    char *joined = g_strconcat(s, sp + 1, NULL);
    gint32 a = rat_tokenizer_token_id(tok, s), b = rat_tokenizer_token_id(tok, sp + 1);
    gint32 m = rat_tokenizer_token_id(tok, joined);
    if (a < 0 || b < 0 || m < 0)
      g_set_error(error, RAT_ERROR, RAT_ERROR_CORRUPT,
                  "%s:%u: merge \"%s %s\" uses a token missing from the vocabulary", path, lineno, s, sp + 1);
    else {
      merge_put(tok, a, b, rank, m);
      ok = TRUE;
    }
    g_free(joined);
  }
  g_free(s);
  return ok;
}

/* Reads a file, gunzipping it when it starts with the gzip magic. */
static gboolean read_maybe_gz(const char *path, char **out, gsize *out_len, GError **error) {
  char *raw = NULL;
  gsize len = 0;
  GError *e = NULL;
  if (!g_file_get_contents(path, &raw, &len, &e)) {
    g_set_error(error, RAT_ERROR, RAT_ERROR_IO, "cannot read BPE vocabulary %s: %s (give the path of "
                "bpe_simple_vocab_16e6.txt.gz or of a directory with vocab.json and merges.txt)", path, e->message);
    g_error_free(e);
    return FALSE;
  }
  if (len < 2 || (guint8)raw[0] != 0x1f || (guint8)raw[1] != 0x8b) {
    *out = raw;
    *out_len = len;
    return TRUE;
  }
  GConverter *z = G_CONVERTER(g_zlib_decompressor_new(G_ZLIB_COMPRESSOR_FORMAT_GZIP));
  GByteArray *buf = g_byte_array_new();
  guint8 chunk[1 << 16];
  gsize in_pos = 0;
  gboolean ok = TRUE, finished = FALSE;
  while (!finished) {
    gsize read = 0, written = 0;
    GConverterResult r = g_converter_convert(z, raw + in_pos, len - in_pos, chunk, sizeof chunk,
                                             in_pos == len ? G_CONVERTER_INPUT_AT_END : G_CONVERTER_NO_FLAGS, &read,
                                             &written, &e);
    if (r == G_CONVERTER_ERROR) {
      g_set_error(error, RAT_ERROR, RAT_ERROR_CORRUPT, "%s: corrupt gzip data: %s", path, e->message);
      g_error_free(e);
      ok = FALSE;
      break;
    }
    in_pos += read;
    g_byte_array_append(buf, chunk, (guint)written);
    if (r == G_CONVERTER_FINISHED) finished = TRUE;
    else if (read == 0 && written == 0 && in_pos == len) { /* no progress at end of input */
      g_set_error(error, RAT_ERROR, RAT_ERROR_CORRUPT, "%s: truncated gzip data", path);
      ok = FALSE;
      break;
    }
  }
  g_object_unref(z);
  g_free(raw);
  if (!ok) {
    g_byte_array_unref(buf);
    return FALSE;
  }
  *out_len = buf->len;
  g_byte_array_append(buf, (const guint8 *)"", 1);
  *out = (char *)g_byte_array_free(buf, FALSE);
  return TRUE;
}

/* OpenAI's format: line 0 a header, lines 1..48894 the merges "A B" in priority order. Vocabulary: 256 byte
 * characters (table order), the same with </w>, the merged strings, <|startoftext|>, <|endoftext|>. */
static RatTokenizer *load_openai(const char *path, GError **error) {
  char *text = NULL;
  gsize len = 0;
  if (!read_maybe_gz(path, &text, &len, error)) return NULL;
  if (!g_utf8_validate(text, (gssize)len, NULL)) {
    g_set_error(error, RAT_ERROR, RAT_ERROR_CORRUPT, "%s: BPE vocabulary is not UTF-8 text", path);
    g_free(text);
    return NULL;
  }
  /* line starts */
  const char **line = g_new(const char *, CLIP_N_MERGES + 1);
  gsize *line_len = g_new(gsize, CLIP_N_MERGES + 1);
  const char *p = text, *end = text + len;
  guint n = 0;
  while (n < CLIP_N_MERGES + 1 && p < end) {
    const char *nl = memchr(p, '\n', (gsize)(end - p));
    const char *e = nl ? nl : end;
    line[n] = p;
    line_len[n] = (gsize)(e - p);
    if (line_len[n] && e[-1] == '\r') line_len[n]--;
    n++;
    p = nl ? nl + 1 : end;
  }
  if (n < CLIP_N_MERGES + 1) {
    g_set_error(error, RAT_ERROR, RAT_ERROR_CORRUPT, "%s: BPE vocabulary has %u merge lines, %d needed (is this "
                "bpe_simple_vocab_16e6.txt.gz?)", path, n ? n - 1 : 0, CLIP_N_MERGES);
    g_free(line);
    g_free(line_len);
    g_free(text);
    return NULL;
  }
  guint vocab = 512 + CLIP_N_MERGES + 2;
  char **tokens = g_new0(char *, vocab + 1);
  gunichar cp[256];
  guint8 order[256];
  byte_table(cp, order);
  for (int i = 0; i < 256; i++) {
    tokens[i] = unichar_str(cp[order[i]], "");
    tokens[256 + i] = unichar_str(cp[order[i]], "</w>");
  }
  for (guint r = 0; r < CLIP_N_MERGES; r++) {
    const char *l = line[r + 1];
    const char *sp = memchr(l, ' ', line_len[r + 1]);
    GString *j = g_string_new_len(l, sp ? sp - l : (gssize)line_len[r + 1]);
    if (sp) g_string_append_len(j, sp + 1, (gssize)(line_len[r + 1] - (gsize)(sp + 1 - l)));
    tokens[512 + r] = g_string_free(j, FALSE);
  }
  tokens[vocab - 2] = g_strdup("<|startoftext|>");
  tokens[vocab - 1] = g_strdup("<|endoftext|>");
  RatTokenizer *tok = bpe_new();
  const char *dup = NULL;
  if (!rat_tokenizer_set_tokens(tok, tokens, vocab, &dup)) { /* OpenAI's dict would keep the later id */
    g_set_error(error, RAT_ERROR, RAT_ERROR_CORRUPT, "%s: token \"%s\" occurs twice in the vocabulary", path, dup);
    goto fail;
  }
  merges_alloc(tok, CLIP_N_MERGES);
  for (guint r = 0; r < CLIP_N_MERGES; r++)
    if (!add_merge(tok, line[r + 1], line_len[r + 1], (gint32)r, path, r + 2, error)) goto fail;
  tok->n_merges = CLIP_N_MERGES;
  if (!bpe_finish(tok, path, error)) goto fail;
  g_free(line);
  g_free(line_len);
  g_free(text);
  return tok;
fail:
  g_free(line);
  g_free(line_len);
  g_free(text);
  rat_tokenizer_free(tok);
  return NULL;
}

/* Hugging Face's format: vocab.json {"token": id, ...} (ids dense from 0) and merges.txt ("#version" header, then
 * "A B" lines in priority order). */
static RatTokenizer *load_hf(const char *dir, GError **error) {
  char *vpath = g_build_filename(dir, "vocab.json", NULL), *mpath = g_build_filename(dir, "merges.txt", NULL);
  RatTokenizer *tok = NULL;
  char *mtext = NULL;
  gsize mlen = 0;
  GError *e = NULL;
  JsonParser *parser = json_parser_new();
  if (!g_file_test(vpath, G_FILE_TEST_EXISTS)) {
    g_set_error(error, RAT_ERROR, RAT_ERROR_IO, "cannot read BPE vocabulary %s: no such file (a Hugging Face "
                "tokenizer directory holds vocab.json and merges.txt)", vpath);
    goto out;
  }
  if (!json_parser_load_from_file(parser, vpath, &e)) {
    g_set_error(error, RAT_ERROR, e->domain == G_FILE_ERROR ? RAT_ERROR_IO : RAT_ERROR_CORRUPT, "%s: %s", vpath,
                e->message);
    g_error_free(e);
    goto out;
  }
  JsonNode *root = json_parser_get_root(parser);
  if (!root || !JSON_NODE_HOLDS_OBJECT(root)) {
    g_set_error(error, RAT_ERROR, RAT_ERROR_CORRUPT, "%s: expected a JSON object mapping tokens to ids", vpath);
    goto out;
  }
  JsonObject *obj = json_node_get_object(root);
  guint n = json_object_get_size(obj);
  char **tokens = g_new0(char *, n + 1);
  JsonObjectIter it;
  const char *name;
  JsonNode *val;
  json_object_iter_init(&it, obj);
  gboolean ok = TRUE;
  while (ok && json_object_iter_next(&it, &name, &val)) {
    gboolean is_int = JSON_NODE_HOLDS_VALUE(val) && json_node_get_value_type(val) == G_TYPE_INT64;
    gint64 id = is_int ? json_node_get_int(val) : -1;
    if (id < 0 || id >= n || tokens[id]) {
      g_set_error(error, RAT_ERROR, RAT_ERROR_CORRUPT, "%s: token \"%s\" has an invalid or repeated id (ids must be "
                  "the integers 0..%u, each once)", vpath, name, n - 1);
      ok = FALSE;
    } else
      tokens[id] = g_strdup(name);
  }
  if (!ok) {
    g_strfreev(tokens);
    goto out;
  }
  tok = bpe_new();
  const char *dup = NULL;
  if (!rat_tokenizer_set_tokens(tok, tokens, n, &dup)) {
    g_set_error(error, RAT_ERROR, RAT_ERROR_CORRUPT, "%s: token \"%s\" occurs twice", vpath, dup);
    goto fail;
  }
  if (!g_file_get_contents(mpath, &mtext, &mlen, &e)) {
    g_set_error(error, RAT_ERROR, RAT_ERROR_IO, "cannot read BPE merges %s: %s", mpath, e->message);
    g_error_free(e);
    goto fail;
  }
  if (!g_utf8_validate(mtext, (gssize)mlen, NULL)) {
    g_set_error(error, RAT_ERROR, RAT_ERROR_CORRUPT, "%s: not UTF-8 text", mpath);
    goto fail;
  }
  merges_alloc(tok, n);
  {
    const char *p = mtext, *end = mtext + mlen;
    guint lineno = 0;
    gint32 rank = 0;
    while (p < end) {
      const char *nl = memchr(p, '\n', (gsize)(end - p));
      const char *le = nl ? nl : end;
      gsize ll = (gsize)(le - p);
      if (ll && le[-1] == '\r') ll--;
      lineno++;
      gboolean skip = ll == 0 || (lineno == 1 && g_str_has_prefix(p, "#version"));
      if (!skip && !add_merge(tok, p, ll, rank++, mpath, lineno, error)) goto fail;
      p = nl ? nl + 1 : end;
    }
    tok->n_merges = (guint)rank;
  }
  if (!bpe_finish(tok, vpath, error)) goto fail;
  goto out;
fail:
  rat_tokenizer_free(tok);
  tok = NULL;
out:
  g_object_unref(parser);
  g_free(mtext);
  g_free(vpath);
  g_free(mpath);
  return tok;
}

RatTokenizer *rat_tokenizer_load_bpe(const char *path, GError **error) {
  g_return_val_if_fail(path != NULL, NULL);
  if (g_file_test(path, G_FILE_TEST_IS_DIR)) return load_hf(path, error);
  return load_openai(path, error);
}

void rat_bpe_free(RatTokenizer *tok) {
  g_free(tok->merges);
  if (tok->cache) g_hash_table_unref(tok->cache);
  g_mutex_clear(&tok->cache_lock);
}

/* ---- encoding ---------------------------------------------------------------------------------------------- */

void rat_bpe_piece(RatTokenizer *tok, const char *piece, GArray *out) {
  if (strcmp(piece, "<|startoftext|>") == 0 || strcmp(piece, "<|endoftext|>") == 0) {
    gint32 id = piece[2] == 's' ? tok->sot : tok->eot;
    g_array_append_val(out, id);
    return;
  }
  g_mutex_lock(&tok->cache_lock);
  const gint32 *hit = g_hash_table_lookup(tok->cache, piece);
  if (hit) g_array_append_vals(out, hit + 1, (guint)hit[0]);
  g_mutex_unlock(&tok->cache_lock);
  if (hit) return;

  gsize n = strlen(piece);
  if (n == 0) return;
  gint32 stack[64];
  gint32 *sym = n <= G_N_ELEMENTS(stack) ? stack : g_new(gint32, n);
  for (gsize i = 0; i < n; i++) sym[i] = tok->byte_id[(guint8)piece[i]];
  sym[n - 1] = tok->byte_end_id[(guint8)piece[n - 1]];
  while (n > 1) {
    gint32 best = G_MAXINT32, a = -1, b = -1, merged = -1;
    for (gsize i = 0; i + 1 < n; i++) {
      const RatMergeSlot *s = merge_get(tok, sym[i], sym[i + 1]);
      if (s && s->rank < best) {
        best = s->rank;
        a = sym[i];
        b = sym[i + 1];
        merged = s->merged;
      }
    }
    if (merged < 0) break;
    gsize w = 0;
    for (gsize i = 0; i < n;) {
      if (i + 1 < n && sym[i] == a && sym[i + 1] == b) {
        sym[w++] = merged;
        i += 2;
      } else
        sym[w++] = sym[i++];
    }
    n = w;
  }
  g_array_append_vals(out, sym, (guint)n);
  gint32 *entry = g_new(gint32, n + 1);
  entry[0] = (gint32)n;
  memcpy(entry + 1, sym, n * sizeof(gint32));
  if (sym != stack) g_free(sym);
  g_mutex_lock(&tok->cache_lock);
  if (g_hash_table_size(tok->cache) >= CACHE_MAX) g_hash_table_remove_all(tok->cache);
  g_hash_table_replace(tok->cache, g_strdup(piece), entry);
  g_mutex_unlock(&tok->cache_lock);
}

/* As OpenAI's decode: token strings concatenated, byte characters mapped back to bytes, invalid UTF-8 replaced
 * (GLib: one U+FFFD per invalid byte), then every "</w>" replaced by a space. */
char *rat_bpe_decode(const RatTokenizer *tok, const gint32 *ids, guint n) {
  GString *bytes = g_string_new(NULL);
  for (guint i = 0; i < n; i++) {
    gint32 id = ids[i];
    if (id == tok->eot) break;
    if (id == tok->sot || id < 0 || (guint)id >= tok->vocab_size) continue;
    for (const char *p = tok->tokens[id]; *p; p = g_utf8_next_char(p)) {
      gunichar c = g_utf8_get_char(p);
      if (c < G_N_ELEMENTS(tok->byte_of_char) && tok->byte_of_char[c] >= 0)
        g_string_append_c(bytes, (char)tok->byte_of_char[c]);
      else /* not a byte character: keep its text */
        g_string_append_len(bytes, p, g_utf8_next_char(p) - p);
    }
  }
  char *valid = g_utf8_make_valid(bytes->str, (gssize)bytes->len);
  g_string_free(bytes, TRUE);
  GString *out = g_string_new(NULL);
  for (const char *p = valid; *p;) {
    if (g_str_has_prefix(p, "</w>")) {
      g_string_append_c(out, ' ');
      p += 4;
    } else
      g_string_append_c(out, *p++);
  }
  g_free(valid);
  return g_string_free(out, FALSE);
}
