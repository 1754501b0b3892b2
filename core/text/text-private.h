/* Internal state of RatTokenizer shared by core/text/bpe.c (CLIP BPE) and core/text/words.c (word level), and
 * the character classes of CLIP's pre-tokenisation pattern (core/text/clean.c). Not installed. */
#pragma once

#include <ratfw/text.h>

G_BEGIN_DECLS

typedef struct {
  guint64 key; /* (first id << 32) | second id; G_MAXUINT64 marks an empty slot */
  gint32 rank;
  gint32 merged;
} RatMergeSlot;

struct _RatTokenizer {
  RatTokenizerKind kind;
  guint context;
  gint32 sot, eot, pad, unk;
  guint vocab_size;
  char **tokens;         /* [vocab_size] id -> token string, owned */
  GHashTable *token_ids; /* token string (borrowed from tokens) -> id + 1 */

  /* BPE only */
  gint32 byte_id[256];     /* byte -> id of its byte character */
  gint32 byte_end_id[256]; /* byte -> id of its byte character + "</w>" */
  gint16 byte_of_char[512]; /* byte character code point (< 512) -> byte, -1 if none */
  RatMergeSlot *merges;    /* open addressing, merge_mask + 1 slots */
  guint64 merge_mask;
  guint n_merges;
  GMutex cache_lock;
  GHashTable *cache; /* piece -> gint32 array {n, id_1..id_n} */
};

/* Pre-tokenisation character classes (CLIP's regex, case-insensitive, Python `regex` module semantics). */
gboolean rat_text_is_regex_space(gunichar c);
gboolean rat_text_is_letter(gunichar c);
gboolean rat_text_is_number(gunichar c);

/* Common to both kinds: id table from @vocab_size owned strings (takes ownership of @tokens). Returns FALSE if
 * a string repeats (sets *dup to it). */
gboolean rat_tokenizer_set_tokens(RatTokenizer *tok, char **tokens, guint vocab_size, const char **dup);
/* Kind-specific: ids of one pre-tokenised piece appended to @out. */
void rat_bpe_piece(RatTokenizer *tok, const char *piece, GArray *out);
void rat_words_piece(RatTokenizer *tok, const char *piece, GArray *out);
char *rat_bpe_decode(const RatTokenizer *tok, const gint32 *ids, guint n);
void rat_bpe_free(RatTokenizer *tok);
RatTokenizer *rat_words_load(const char *path, GError **error);

G_END_DECLS
