/* ratfw text: caption cleaning, the CLIP byte-level BPE tokenizer (OpenAI clip/simple_tokenizer.py, see
 * reference/ratlip-reference.md §10.5) and a word-level tokenizer for small CLIPs trained on a dataset's captions.
 * docs/tokenizer.md describes the algorithm, the cleaning subset and the file formats.
 *
 * Cleaning (both tokenizers, rat_text_clean): OpenAI runs ftfy.fix_text, then html.unescape twice, collapses
 * whitespace and lower-cases. ftfy is not packaged in Debian, so ratfw applies this deterministic subset, in order:
 *   1. HTML unescape, twice, with Python's html.unescape rules (numeric references &#NNN; &#xHH; with or without
 *      ';', including the Windows-1252 remap of 0x80-0x9F, U+FFFD for 0, surrogates and > 0x10FFFF, and removal
 *      of the code points HTML 5 forbids; named references limited to a table: the 106 HTML 5 names that are
 *      also valid without ';' (the Latin-1 set: &amp &lt &gt &quot &nbsp &copy &reg &eacute ... and the upper-case
 *      AMP LT GT QUOT COPY REG), plus apos, the HTML 4 "special" punctuation (ndash mdash lsquo rsquo sbquo
 *      ldquo rdquo bdquo hellip bull dagger Dagger permil prime Prime lsaquo rsaquo oline euro trade ensp emsp
 *      thinsp zwnj zwj lrm rlm OElig oelig Scaron scaron Yuml fnof circ tilde) and the arrows, minus, infin, ne,
 *      le, ge and card suits. Other names are left as written.
 *   2. Unicode NFC normalisation.
 *   3. Every run of white space (Unicode White_Space, as Python's regex \s) becomes one space; leading and
 *      trailing white space (Python's str.isspace, which adds U+001C..U+001F) is stripped.
 *   4. Lower-casing with Python's str.lower rules (full mapping for U+0130, final sigma in context).
 * NOT reproduced from ftfy: mojibake repair (fix_encoding), curly-quote straightening, ligature and width
 * fixes, terminal-escape and control-character removal. Captions carrying those differ from OpenAI's ids.
 *
 * Pre-tokenisation (rat_text_pretokenize) follows CLIP's pattern, alternatives tried in order at each position:
 * "<|startoftext|>", "<|endoftext|>", the contractions 's 't 're 've 'm 'll 'd, a run of letters \p{L}+, a single
 * number character \p{N}, a run of [^\s\p{L}\p{N}]+; white space is skipped.
 *
 * Ids are gint32. Every tokenizer has a context length (77 for CLIP); encoding writes
 * [sot] + tokens + [eot], truncated to the context with eot kept in the last position, padded with the pad id
 * (0 by default as OpenAI; set it to the eot id, 49407, to match Hugging Face). Tokenizers are immutable after
 * construction except for rat_tokenizer_set_pad_id/set_context; encoding is thread-safe.
 */
#pragma once

#include <ratfw/tensor.h>

G_BEGIN_DECLS

typedef struct _RatTokenizer RatTokenizer;

typedef enum {
  RAT_TOKENIZER_BPE = 0, /* CLIP byte-level BPE */
  RAT_TOKENIZER_WORDS,   /* word level, built from captions */
} RatTokenizerKind;

#define RAT_CLIP_CONTEXT 77
#define RAT_CLIP_SOT 49406
#define RAT_CLIP_EOT 49407

/* ---- text helpers (newly allocated UTF-8, g_free) ------------------------------------------------------- */

/* Cleaning steps 1-4 above. Invalid UTF-8 is first repaired with U+FFFD. */
char *rat_text_clean(const char *text);
/* Step 1 alone: one pass of HTML character-reference unescaping. */
char *rat_text_html_unescape(const char *text);
/* Step 4 alone: Python str.lower() semantics. */
char *rat_text_lower(const char *text);
/* Splits cleaned text into pieces (array of g_strdup'ed strings, g_ptr_array_unref frees them). */
GPtrArray *rat_text_pretokenize(const char *clean);

/* ---- construction -------------------------------------------------------------------------------------- */

/* CLIP BPE from @path: either OpenAI's bpe_simple_vocab_16e6.txt.gz (gzip; a plain .txt also works) or a
 * directory holding Hugging Face's vocab.json and merges.txt. Missing files are RAT_ERROR_IO, malformed ones
 * RAT_ERROR_CORRUPT; the message names the file (and the line for merges). Context 77, pad 0. */
RatTokenizer *rat_tokenizer_load_bpe(const char *path, GError **error);

/* Word-level vocabulary from @n captions: each caption is cleaned (rat_text_clean) and pre-tokenised, the
 * @max_words most frequent pieces are kept (ties broken by byte order). Ids: <pad>=0, <sot>=1, <eot>=2,
 * <unk>=3, then the words by decreasing frequency, so vocab_size = 4 + min(max_words, distinct pieces). */
RatTokenizer *rat_tokenizer_new_words(const char *const *captions, guint n, guint max_words, guint context);

/* Loads a tokenizer: a JSON file written by rat_tokenizer_save (word level), or, for a directory or a file not
 * ending in .json, the BPE formats of rat_tokenizer_load_bpe. */
RatTokenizer *rat_tokenizer_load(const char *path, GError **error);
/* Saves a word-level tokenizer as JSON (atomic write): {"format":"ratfw-words","version":1,"context":C,
 * "words":["<pad>","<sot>","<eot>","<unk>",...]} (the index in "words" is the id). BPE tokenizers are not
 * saved (a model refers to the vocabulary file instead): RAT_ERROR_UNSUPPORTED. */
gboolean rat_tokenizer_save(const RatTokenizer *tok, const char *path, GError **error);
void rat_tokenizer_free(RatTokenizer *tok);

/* ---- properties ---------------------------------------------------------------------------------------- */

RatTokenizerKind rat_tokenizer_kind(const RatTokenizer *tok);
guint rat_tokenizer_context(const RatTokenizer *tok);
void rat_tokenizer_set_context(RatTokenizer *tok, guint context); /* >= 2 */
guint rat_tokenizer_vocab_size(const RatTokenizer *tok);
gint32 rat_tokenizer_sot_id(const RatTokenizer *tok);
gint32 rat_tokenizer_eot_id(const RatTokenizer *tok);
gint32 rat_tokenizer_pad_id(const RatTokenizer *tok);
gint32 rat_tokenizer_unk_id(const RatTokenizer *tok); /* -1 for BPE (every byte has a token) */
void rat_tokenizer_set_pad_id(RatTokenizer *tok, gint32 pad);
/* Token string of @id (BPE: byte-level characters, "</w>" marks a word end), NULL when out of range. */
const char *rat_tokenizer_token(const RatTokenizer *tok, gint32 id);
/* Id of a token string, -1 if absent. */
gint32 rat_tokenizer_token_id(const RatTokenizer *tok, const char *token);

/* ---- encoding ------------------------------------------------------------------------------------------ */

/* Ids of @text without sot/eot and without length limit, appended to @out (a GArray of gint32). */
void rat_tokenizer_tokenize(RatTokenizer *tok, const char *text, GArray *out);
/* Writes @context ids to @ids: sot, tokens, eot, pad; when too long, the first @context ids with eot written
 * in the last position. Returns the number of positions before padding (position of eot + 1). */
guint rat_tokenizer_encode(RatTokenizer *tok, const char *text, gint32 *ids, guint context);
/* I32 tensor [N, L] (L = the tokenizer's context), scope-owned. @lengths (may be NULL) receives, per row, the
 * value rat_tokenizer_encode returned. */
RatTensor *rat_tokenizer_encode_batch(RatTokenizer *tok, const char *const *texts, guint n, guint *lengths);
/* Text of @n ids: sot is skipped and decoding stops at the first eot. BPE (as OpenAI's decode): token strings
 * concatenated, byte characters mapped back to bytes, invalid UTF-8 replaced by U+FFFD (one per invalid byte;
 * Python replaces per maximal subpart), every "</w>" replaced by a space. Words: <pad> skipped, words joined by
 * spaces, <unk> written as "<unk>". Trailing spaces are removed. g_free. */
char *rat_tokenizer_decode(const RatTokenizer *tok, const gint32 *ids, guint n);

G_END_DECLS
