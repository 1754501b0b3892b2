/* Text module: CLIP BPE ids against the golden fixture of tools/reference/ref_tokenizer.py (OpenAI .txt.gz and
 * Hugging Face vocab.json + merges.txt formats), cleaning and pre-tokenisation, vocabulary errors, and the
 * word-level tokenizer (golden vocabulary and ids, JSON round trip, unknown words, truncation). */
#include "config.h"

#include "testutil.h"

#include <gio/gio.h>
#include <glib/gstdio.h>
#include <ratfw/text.h>
#include <string.h>

static char *vocab_path(void) {
  const char *env = g_getenv("RATFW_CLIP_VOCAB");
  if (env && *env) return g_strdup(env);
  const char *src = g_getenv("RATFW_SRCDIR");
  return g_build_filename(src ? src : RATFW_SRCDIR, "tests", "fixtures", "clip", "bpe_simple_vocab_16e6.txt.gz", NULL);
}

/* The OpenAI tokenizer, loaded once, from the vocabulary shipped in tests/fixtures/clip/ (openai/CLIP's file, MIT;
 * SHA256SUMS beside it). It is part of the source tree, so a missing file is a failure, not a skip. */
static RatTokenizer *clip_tok(void) {
  static RatTokenizer *tok;
  if (!tok) {
    char *path = vocab_path();
    GError *e = NULL;
    tok = rat_tokenizer_load_bpe(path, &e);
    g_assert_no_error(e);
    g_free(path);
  }
  return tok;
}

static char *tmp_dir(void) {
  GError *e = NULL;
  char *d = g_dir_make_tmp("ratfw-tok-XXXXXX", &e);
  g_assert_no_error(e);
  return d;
}

static void rm_tree(const char *dir) {
  GDir *d = g_dir_open(dir, 0, NULL);
  const char *name;
  while (d && (name = g_dir_read_name(d))) {
    char *p = g_build_filename(dir, name, NULL);
    g_remove(p);
    g_free(p);
  }
  if (d) g_dir_close(d);
  g_rmdir(dir);
}

static void write_file(const char *path, const void *data, gssize len) {
  GError *e = NULL;
  g_file_set_contents(path, data, len, &e);
  g_assert_no_error(e);
}

/* Compares every BPE case of the fixture with @tok. */
static void check_bpe_cases(RatTokenizer *tok, const char *what) {
  RatFixture *f = rat_fixture_open("tokenizer");
  guint n_cases = 0;
  for (guint i = 0; i < json_array_get_length(f->cases); i++) {
    JsonObject *c = json_array_get_object_element(f->cases, i);
    if (strcmp(json_object_get_string_member(c, "kind"), "bpe") != 0) continue;
    RatScope s = rat_scope_push();
    const char *cap = json_object_get_string_member(c, "caption");
    RatTensor *want = rat_fixture_get(f, "c%u.ids", i);
    g_assert_cmpint(rat_tensor_numel(want), ==, RAT_CLIP_CONTEXT);
    const gint32 *w = rat_tensor_data_i32(want);
    gint32 ids[RAT_CLIP_CONTEXT];
    guint n = rat_tokenizer_encode(tok, cap, ids, RAT_CLIP_CONTEXT);
    for (guint k = 0; k < RAT_CLIP_CONTEXT; k++)
      if (ids[k] != w[k])
        g_error("%s: case %u \"%s\": id %u is %d, expected %d", what, i, cap, k, ids[k], w[k]);
    g_assert_cmpuint(n, ==, (guint)json_object_get_int_member(c, "n"));
    GArray *raw = g_array_new(FALSE, FALSE, sizeof(gint32));
    rat_tokenizer_tokenize(tok, cap, raw);
    g_assert_cmpuint(raw->len, ==, (guint)json_object_get_int_member(c, "n_raw"));
    g_array_unref(raw);
    const char *dec = json_object_get_string_member(c, "decoded");
    if (!strstr(dec, "\xef\xbf\xbd")) { /* invalid-UTF-8 replacement differs (Python: per maximal subpart) */
      char *got = rat_tokenizer_decode(tok, ids, RAT_CLIP_CONTEXT);
      g_assert_cmpstr(got, ==, dec);
      g_free(got);
    }
    n_cases++;
    rat_scope_pop(s);
  }
  g_assert_cmpuint(n_cases, >=, 60);
  rat_fixture_close(f);
}

static void test_clean_pretokenize(void) {
  RatFixture *f = rat_fixture_open("tokenizer");
  for (guint i = 0; i < json_array_get_length(f->cases); i++) {
    JsonObject *c = json_array_get_object_element(f->cases, i);
    if (strcmp(json_object_get_string_member(c, "kind"), "bpe") != 0) continue;
    char *clean = rat_text_clean(json_object_get_string_member(c, "caption"));
    g_assert_cmpstr(clean, ==, json_object_get_string_member(c, "clean"));
    GPtrArray *p = rat_text_pretokenize(clean);
    JsonArray *want = json_object_get_array_member(c, "pieces");
    g_assert_cmpuint(p->len, ==, json_array_get_length(want));
    for (guint k = 0; k < p->len; k++)
      g_assert_cmpstr(g_ptr_array_index(p, k), ==, json_array_get_string_element(want, k));
    g_ptr_array_unref(p);
    g_free(clean);
  }
  rat_fixture_close(f);
  /* a few hand-checked values */
  char *s = rat_text_html_unescape("a &amp;amp; b &#x41;&#66 &lt3 &ampersand &#150; &bogus; &");
  g_assert_cmpstr(s, ==, "a &amp; b AB <3 &ersand \xe2\x80\x93 &bogus; &");
  g_free(s);
  s = rat_text_lower("\xc4\xb0STANBUL \xce\x9f\xce\x94\xce\x9f\xce\xa3 \xce\xa3"); /* İSTANBUL ΟΔΟΣ Σ */
  g_assert_cmpstr(s, ==, "i\xcc\x87stanbul \xce\xbf\xce\xb4\xce\xbf\xcf\x82 \xcf\x83");
  g_free(s);
}

static void test_bpe_openai(void) {
  RatTokenizer *tok = clip_tok();
  g_assert_cmpuint(rat_tokenizer_vocab_size(tok), ==, 49408);
  g_assert_cmpint(rat_tokenizer_sot_id(tok), ==, 49406);
  g_assert_cmpint(rat_tokenizer_eot_id(tok), ==, 49407);
  g_assert_cmpint(rat_tokenizer_pad_id(tok), ==, 0);
  g_assert_cmpuint(rat_tokenizer_context(tok), ==, 77);
  g_assert_cmpstr(rat_tokenizer_token(tok, 0), ==, "!");
  g_assert_cmpstr(rat_tokenizer_token(tok, 256), ==, "!</w>");
  g_assert_cmpstr(rat_tokenizer_token(tok, 512), ==, "in");
  g_assert_cmpint(rat_tokenizer_token_id(tok, "cat</w>"), >, 512);
  check_bpe_cases(tok, "OpenAI vocabulary");
  check_bpe_cases(tok, "OpenAI vocabulary, cached"); /* second pass through the per-piece cache */
}

/* vocab.json + merges.txt derived here from the OpenAI file (written in reverse id order, so the loader must use
 * the ids rather than the order), then the same golden ids. */
static void test_bpe_hf(void) {
  clip_tok();
  char *path = vocab_path();
  char *gz = NULL;
  gsize gz_len = 0;
  GError *e = NULL;
  g_assert_true(g_file_get_contents(path, &gz, &gz_len, &e));
  GConverter *z = G_CONVERTER(g_zlib_decompressor_new(G_ZLIB_COMPRESSOR_FORMAT_GZIP));
  GInputStream *in = g_memory_input_stream_new_from_data(gz, (gssize)gz_len, NULL);
  GInputStream *conv = g_converter_input_stream_new(in, z);
  GOutputStream *mem = g_memory_output_stream_new_resizable();
  g_output_stream_splice(mem, conv, G_OUTPUT_STREAM_SPLICE_CLOSE_TARGET, NULL, &e);
  g_assert_no_error(e);
  g_output_stream_write(mem, "", 1, NULL, NULL);
  char *text = g_memory_output_stream_steal_data(G_MEMORY_OUTPUT_STREAM(mem));
  char **lines = g_strsplit(text, "\n", 48896);
  /* byte characters in vocabulary order */
  GPtrArray *vocab = g_ptr_array_new_with_free_func(g_free);
  int order[256], n = 0, extra = 0;
  gunichar cp[256];
  for (int b = 0; b < 256; b++)
    if ((b >= 33 && b <= 126) || (b >= 161 && b <= 172) || b >= 174) cp[b] = (gunichar)b, order[n++] = b;
  for (int b = 0; b < 256; b++)
    if (!((b >= 33 && b <= 126) || (b >= 161 && b <= 172) || b >= 174)) cp[b] = 256 + extra++, order[n++] = b;
  for (int pass = 0; pass < 2; pass++)
    for (int i = 0; i < 256; i++) {
      char buf[8] = {0};
      g_unichar_to_utf8(cp[order[i]], buf);
      g_ptr_array_add(vocab, g_strconcat(buf, pass ? "</w>" : "", NULL));
    }
  GString *merges = g_string_new("#version: 0.2\n");
  for (int r = 1; r <= 48894; r++) {
    g_string_append_printf(merges, "%s\n", lines[r]);
    char **ab = g_strsplit(lines[r], " ", 2);
    g_ptr_array_add(vocab, g_strconcat(ab[0], ab[1], NULL));
    g_strfreev(ab);
  }
  g_ptr_array_add(vocab, g_strdup("<|startoftext|>"));
  g_ptr_array_add(vocab, g_strdup("<|endoftext|>"));
  JsonBuilder *jb = json_builder_new();
  json_builder_begin_object(jb);
  for (guint i = vocab->len; i-- > 0;) {
    json_builder_set_member_name(jb, g_ptr_array_index(vocab, i));
    json_builder_add_int_value(jb, i);
  }
  json_builder_end_object(jb);
  JsonGenerator *gen = json_generator_new();
  JsonNode *root = json_builder_get_root(jb);
  json_generator_set_root(gen, root);
  char *dir = tmp_dir();
  char *vj = g_build_filename(dir, "vocab.json", NULL), *mt = g_build_filename(dir, "merges.txt", NULL);
  g_assert_true(json_generator_to_file(gen, vj, &e));
  write_file(mt, merges->str, (gssize)merges->len);

  RatTokenizer *hf = rat_tokenizer_load_bpe(dir, &e);
  g_assert_no_error(e);
  g_assert_cmpuint(rat_tokenizer_vocab_size(hf), ==, 49408);
  check_bpe_cases(hf, "Hugging Face vocabulary");
  /* Hugging Face pads with <|endoftext|>: only the padding changes */
  gint32 a[77], b[77];
  guint na = rat_tokenizer_encode(hf, "a photo of a cat", a, 77);
  rat_tokenizer_set_pad_id(hf, RAT_CLIP_EOT);
  guint nb = rat_tokenizer_encode(hf, "a photo of a cat", b, 77);
  g_assert_cmpuint(na, ==, 7);
  g_assert_cmpuint(nb, ==, 7);
  for (guint k = 0; k < 77; k++) g_assert_cmpint(b[k], ==, k < na ? a[k] : RAT_CLIP_EOT);
  rat_tokenizer_free(hf);

  /* errors naming the file: merges.txt missing, a merge with an unknown token, vocab.json not JSON */
  g_remove(mt);
  g_assert_null(rat_tokenizer_load_bpe(dir, &e));
  g_assert_error(e, RAT_ERROR, RAT_ERROR_IO);
  g_assert_nonnull(strstr(e->message, mt));
  g_clear_error(&e);
  write_file(mt, "#version: 0.2\ni n\nt h\nzz\xc4\x80 q\n", -1);
  g_assert_null(rat_tokenizer_load_bpe(dir, &e));
  g_assert_error(e, RAT_ERROR, RAT_ERROR_CORRUPT);
  char *where = g_strdup_printf("%s:4", mt);
  g_assert_nonnull(strstr(e->message, where));
  g_free(where);
  g_clear_error(&e);
  write_file(vj, "{\"a\": 0, \"b\": ", -1);
  g_assert_null(rat_tokenizer_load_bpe(dir, &e));
  g_assert_error(e, RAT_ERROR, RAT_ERROR_CORRUPT);
  g_assert_nonnull(strstr(e->message, vj));
  g_clear_error(&e);
  write_file(vj, "{\"a\": 0, \"b\": 5}", -1);
  g_assert_null(rat_tokenizer_load_bpe(dir, &e));
  g_assert_error(e, RAT_ERROR, RAT_ERROR_CORRUPT);
  g_clear_error(&e);

  rm_tree(dir);
  json_node_unref(root);
  g_object_unref(gen);
  g_object_unref(jb);
  g_string_free(merges, TRUE);
  g_ptr_array_unref(vocab);
  g_strfreev(lines);
  g_free(text);
  g_object_unref(mem);
  g_object_unref(conv);
  g_object_unref(in);
  g_object_unref(z);
  g_free(gz);
  g_free(path);
  g_free(dir);
  g_free(vj);
  g_free(mt);
}

static void test_bpe_errors(void) {
  GError *e = NULL;
  char *dir = tmp_dir();
  char *missing = g_build_filename(dir, "no-such-vocab.txt.gz", NULL);
  g_assert_null(rat_tokenizer_load_bpe(missing, &e));
  g_assert_error(e, RAT_ERROR, RAT_ERROR_IO);
  g_assert_nonnull(strstr(e->message, missing));
  g_clear_error(&e);
  g_assert_null(rat_tokenizer_load(missing, &e)); /* generic loader: same */
  g_assert_error(e, RAT_ERROR, RAT_ERROR_IO);
  g_clear_error(&e);

  char *bad = g_build_filename(dir, "bad.txt.gz", NULL);
  static const guint8 junk[] = {0x1f, 0x8b, 0x08, 0x00, 0, 0, 0, 0, 0, 0x03, 0xde, 0xad, 0xbe, 0xef, 0x01, 0x02};
  write_file(bad, junk, sizeof junk);
  g_assert_null(rat_tokenizer_load_bpe(bad, &e));
  g_assert_error(e, RAT_ERROR, RAT_ERROR_CORRUPT);
  g_assert_nonnull(strstr(e->message, bad));
  g_clear_error(&e);

  char *shortf = g_build_filename(dir, "short.txt", NULL);
  write_file(shortf, "header\ni n\nt h\n", -1);
  g_assert_null(rat_tokenizer_load_bpe(shortf, &e));
  g_assert_error(e, RAT_ERROR, RAT_ERROR_CORRUPT);
  g_assert_nonnull(strstr(e->message, shortf));
  g_clear_error(&e);

  char *emptydir = g_build_filename(dir, "hf", NULL);
  g_mkdir(emptydir, 0700);
  g_assert_null(rat_tokenizer_load_bpe(emptydir, &e));
  g_assert_error(e, RAT_ERROR, RAT_ERROR_IO);
  g_assert_nonnull(strstr(e->message, "vocab.json"));
  g_clear_error(&e);
  g_rmdir(emptydir);
  rm_tree(dir);
  g_free(emptydir);
  g_free(shortf);
  g_free(bad);
  g_free(missing);
  g_free(dir);
}

static void test_bpe_batch(void) {
  RatTokenizer *tok = clip_tok();
  RatScope s = rat_scope_push();
  const char *caps[] = {"a bird", "", "A BIRD!"};
  guint len[3];
  RatTensor *t = rat_tokenizer_encode_batch(tok, caps, 3, len);
  g_assert_cmpint(t->dtype, ==, RAT_DTYPE_I32);
  g_assert_cmpint(rat_tensor_dim(t, 0), ==, 3);
  g_assert_cmpint(rat_tensor_dim(t, 1), ==, 77);
  const gint32 *p = rat_tensor_data_i32(t);
  g_assert_cmpuint(len[0], ==, 4);
  g_assert_cmpuint(len[1], ==, 2);
  g_assert_cmpuint(len[2], ==, 5);
  g_assert_cmpint(p[77], ==, 49406);
  g_assert_cmpint(p[78], ==, 49407);
  g_assert_cmpint(p[79], ==, 0);
  g_assert_cmpint(p[1], ==, p[2 * 77 + 1]); /* lower-cased */
  g_assert_cmpint(p[2], ==, p[2 * 77 + 2]);
  /* a shorter context truncates and keeps eot last */
  gint32 ids[5];
  g_assert_cmpuint(rat_tokenizer_encode(tok, "one two three four five six", ids, 5), ==, 5);
  g_assert_cmpint(ids[0], ==, 49406);
  g_assert_cmpint(ids[4], ==, 49407);
  char *d = rat_tokenizer_decode(tok, ids, 5);
  g_assert_cmpstr(d, ==, "one two three");
  g_free(d);
  rat_scope_pop(s);
}

/* ---- word level ------------------------------------------------------------------------------------------- */

static GPtrArray *fixture_captions(RatFixture *f) {
  GPtrArray *caps = g_ptr_array_new();
  for (guint i = 0; i < json_array_get_length(f->cases); i++) {
    JsonObject *c = json_array_get_object_element(f->cases, i);
    if (strcmp(json_object_get_string_member(c, "kind"), "bpe") == 0)
      g_ptr_array_add(caps, (gpointer)json_object_get_string_member(c, "caption"));
  }
  return caps;
}

static void check_words_cases(RatTokenizer *tok, RatFixture *f) {
  guint checked = 0;
  for (guint i = 0; i < json_array_get_length(f->cases); i++) {
    JsonObject *c = json_array_get_object_element(f->cases, i);
    if (strcmp(json_object_get_string_member(c, "kind"), "words") != 0) continue;
    RatScope s = rat_scope_push();
    const gint32 *w = rat_tensor_data_i32(rat_fixture_get(f, "c%u.ids", i));
    gint32 ids[16];
    guint n = rat_tokenizer_encode(tok, json_object_get_string_member(c, "caption"), ids, 16);
    g_assert_cmpuint(n, ==, (guint)json_object_get_int_member(c, "n"));
    for (guint k = 0; k < 16; k++)
      if (ids[k] != w[k]) g_error("words case %u: id %u is %d, expected %d", i, k, ids[k], w[k]);
    checked++;
    rat_scope_pop(s);
  }
  g_assert_cmpuint(checked, >=, 60);
}

static void test_words(void) {
  RatFixture *f = rat_fixture_open("tokenizer");
  GPtrArray *caps = fixture_captions(f);
  RatTokenizer *tok = rat_tokenizer_new_words((const char *const *)caps->pdata, caps->len, 40, 16);
  g_assert_cmpint(rat_tokenizer_kind(tok), ==, RAT_TOKENIZER_WORDS);
  JsonArray *words = NULL;
  for (guint i = 0; i < json_array_get_length(f->cases) && !words; i++) {
    JsonObject *c = json_array_get_object_element(f->cases, i);
    if (strcmp(json_object_get_string_member(c, "kind"), "words_vocab") == 0)
      words = json_object_get_array_member(c, "words");
  }
  g_assert_nonnull(words);
  g_assert_cmpuint(rat_tokenizer_vocab_size(tok), ==, json_array_get_length(words));
  for (guint i = 0; i < json_array_get_length(words); i++)
    g_assert_cmpstr(rat_tokenizer_token(tok, (gint32)i), ==, json_array_get_string_element(words, i));
  g_assert_cmpint(rat_tokenizer_pad_id(tok), ==, 0);
  g_assert_cmpint(rat_tokenizer_sot_id(tok), ==, 1);
  g_assert_cmpint(rat_tokenizer_eot_id(tok), ==, 2);
  g_assert_cmpint(rat_tokenizer_unk_id(tok), ==, 3);
  check_words_cases(tok, f);

  /* unknown words, truncation keeping <eot>, decode */
  gint32 ids[16];
  g_assert_cmpuint(rat_tokenizer_encode(tok, "A zyzzyva and a bird", ids, 16), ==, 7);
  g_assert_cmpint(ids[0], ==, 1);
  g_assert_cmpint(ids[1], ==, rat_tokenizer_token_id(tok, "a"));
  g_assert_cmpint(ids[2], ==, 3);
  g_assert_cmpint(ids[6], ==, 2);
  g_assert_cmpint(ids[7], ==, 0);
  char *d = rat_tokenizer_decode(tok, ids, 16);
  g_assert_cmpstr(d, ==, "a <unk> and a bird");
  g_free(d);
  gint32 shortids[4];
  g_assert_cmpuint(rat_tokenizer_encode(tok, "a bird and a bird", shortids, 4), ==, 4);
  g_assert_cmpint(shortids[3], ==, 2);
  g_assert_cmpint(shortids[2], ==, rat_tokenizer_token_id(tok, "bird"));

  /* JSON round trip through the generic loader */
  GError *e = NULL;
  char *dir = tmp_dir(), *path = g_build_filename(dir, "words.json", NULL);
  g_assert_true(rat_tokenizer_save(tok, path, &e));
  g_assert_no_error(e);
  RatTokenizer *back = rat_tokenizer_load(path, &e);
  g_assert_no_error(e);
  g_assert_cmpuint(rat_tokenizer_vocab_size(back), ==, rat_tokenizer_vocab_size(tok));
  g_assert_cmpuint(rat_tokenizer_context(back), ==, 16);
  for (guint i = 0; i < rat_tokenizer_vocab_size(tok); i++)
    g_assert_cmpstr(rat_tokenizer_token(back, (gint32)i), ==, rat_tokenizer_token(tok, (gint32)i));
  check_words_cases(back, f);
  RatScope s = rat_scope_push();
  RatTensor *bt = rat_tokenizer_encode_batch(back, (const char *const *)caps->pdata, caps->len, NULL);
  g_assert_cmpint(rat_tensor_dim(bt, 1), ==, 16);
  rat_scope_pop(s);
  rat_tokenizer_free(back);

  /* corrupt files name themselves */
  static const char *const bad[] = {"{\"format\": \"ratfw-words\", \"version\": 1, \"context\": 8, \"words\": "
                                    "[\"<pad>\", \"<sot>\", \"<eot>\", \"<unk>\", \"a\", \"a\"]}",
                                    "{\"format\": \"ratfw-words\", \"version\": 1, \"context\": 8, \"words\": [\"x\"]}",
                                    "{\"format\": \"other\"}", "[1, 2", "{\"!\": 0}"};
  for (guint i = 0; i < G_N_ELEMENTS(bad); i++) {
    write_file(path, bad[i], -1);
    g_assert_null(rat_tokenizer_load(path, &e));
    g_assert_error(e, RAT_ERROR, RAT_ERROR_CORRUPT);
    g_assert_nonnull(strstr(e->message, path));
    g_clear_error(&e);
  }
  g_remove(path);
  g_assert_null(rat_tokenizer_load(path, &e));
  g_assert_error(e, RAT_ERROR, RAT_ERROR_IO);
  g_assert_nonnull(strstr(e->message, path));
  g_clear_error(&e);
  RatTokenizer *bpe = clip_tok();
  g_assert_false(rat_tokenizer_save(bpe, path, &e));
  g_assert_error(e, RAT_ERROR, RAT_ERROR_UNSUPPORTED);
  g_clear_error(&e);
  rm_tree(dir);
  g_free(path);
  g_free(dir);
  rat_tokenizer_free(tok);
  g_ptr_array_unref(caps);
  rat_fixture_close(f);
}

int main(int argc, char **argv) {
  rat_test_init(&argc, &argv);
  g_test_add_func("/text/clean-pretokenize", test_clean_pretokenize);
  g_test_add_func("/text/bpe-openai", test_bpe_openai);
  g_test_add_func("/text/bpe-hf", test_bpe_hf);
  g_test_add_func("/text/bpe-errors", test_bpe_errors);
  g_test_add_func("/text/bpe-batch", test_bpe_batch);
  g_test_add_func("/text/words", test_words);
  return g_test_run();
}
