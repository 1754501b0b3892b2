/* Caption cleaning and CLIP's pre-tokenisation, by hand with GLib's Unicode functions: the deterministic subset of
 * OpenAI's basic_clean/whitespace_clean (clip/simple_tokenizer.py; reference/ratlip-reference.md §10.5) documented
 * in ratfw/text.h and docs/tokenizer.md, with Python's html.unescape, str.lower and `regex` class semantics. */
#include "config.h"

#include "text-private.h"

#include <stdlib.h>
#include <string.h>

/* ---- HTML character references (Python's html.unescape rules, named table limited: see text.h) ---------------- */

typedef struct {
  const char *name;
  gunichar value;
  gboolean legacy; /* also valid without the ';' (HTML 5 legacy names) */
} Entity;

/* Sorted by name (strcmp order) for bsearch. Values from the HTML 5 named character reference table. */
static const Entity entities[] = {
#include "entities.inc"
};

/* Windows-1252 remap of the numeric references 0x80..0x9F (HTML 5 "invalid" references; 0 = keep as is). */
static const guint16 cp1252[32] = {
    0x20AC, 0x0081, 0x201A, 0x0192, 0x201E, 0x2026, 0x2020, 0x2021, 0x02C6, 0x2030, 0x0160,
    0x2039, 0x0152, 0x008D, 0x017D, 0x008F, 0x0090, 0x2018, 0x2019, 0x201C, 0x201D, 0x2022,
    0x2013, 0x2014, 0x02DC, 0x2122, 0x0161, 0x203A, 0x0153, 0x009D, 0x017E, 0x0178,
};

static int entity_cmp(const void *key, const void *elem) {
  return strcmp((const char *)key, ((const Entity *)elem)->name);
}

static const Entity *entity_find(const char *name, gsize len, gboolean need_legacy) {
  char buf[40];
  if (len == 0 || len >= sizeof buf) return NULL;
  memcpy(buf, name, len);
  buf[len] = 0;
  const Entity *e = bsearch(buf, entities, G_N_ELEMENTS(entities), sizeof(Entity), entity_cmp);
  return e && (!need_legacy || e->legacy) ? e : NULL;
}

static void append_numeric(GString *out, guint64 num, gboolean overflow) {
  if (!overflow && num == 0x0D) {
    g_string_append_c(out, '\r');
    return;
  }
  if (!overflow && num == 0) {
    g_string_append_unichar(out, 0xFFFD);
    return;
  }
  if (!overflow && num >= 0x80 && num <= 0x9F) {
    g_string_append_unichar(out, cp1252[num - 0x80]);
    return;
  }
  if (overflow || num > 0x10FFFF || (num >= 0xD800 && num <= 0xDFFF)) {
    g_string_append_unichar(out, 0xFFFD);
    return;
  }
  if ((num >= 0x1 && num <= 0x8) || num == 0xB || (num >= 0xE && num <= 0x1F) || (num >= 0x7F && num <= 0x9F) ||
      (num >= 0xFDD0 && num <= 0xFDEF) || (num & 0xFFFE) == 0xFFFE)
    return; /* code points HTML 5 forbids are dropped */
  g_string_append_unichar(out, (gunichar)num);
}

static gboolean is_name_char(gunichar c) {
  return c != '\t' && c != '\n' && c != '\f' && c != ' ' && c != '<' && c != '&' && c != '#' && c != ';';
}

char *rat_text_html_unescape(const char *text) {
  GString *out = g_string_sized_new(strlen(text));
  const char *p = text;
  while (*p) {
    const char *amp = strchr(p, '&');
    if (!amp) {
      g_string_append(out, p);
      break;
    }
    g_string_append_len(out, p, amp - p);
    const char *q = amp + 1;
    if (*q == '#') { /* &#123; or &#x7b; (';' optional) */
      gboolean hex = q[1] == 'x' || q[1] == 'X';
      const char *d = q + (hex ? 2 : 1);
      guint64 num = 0;
      gboolean overflow = FALSE;
      const char *e = d;
      for (; hex ? g_ascii_isxdigit(*e) : g_ascii_isdigit(*e); e++) {
        num = num * (hex ? 16 : 10) + (guint64)(hex ? g_ascii_xdigit_value(*e) : g_ascii_digit_value(*e));
        if (num > 0x10FFFF) overflow = TRUE, num = 0x110000;
      }
      if (e == d) { /* no digits: not a reference */
        g_string_append_c(out, '&');
        p = q;
        continue;
      }
      if (*e == ';') e++;
      append_numeric(out, num, overflow);
      p = e;
      continue;
    }
    /* named: up to 32 characters that are not \t \n \f space < & # ;, then an optional ';' */
    const char *e = q;
    int nchars = 0;
    while (*e && nchars < 32 && is_name_char(g_utf8_get_char(e))) {
      e = g_utf8_next_char(e);
      nchars++;
    }
    if (nchars == 0) {
      g_string_append_c(out, '&');
      p = q;
      continue;
    }
    gboolean semi = *e == ';';
    const char *end = semi ? e + 1 : e; /* the reference text s = [q, end) */
    const Entity *ent = entity_find(q, e - q, !semi);
    if (ent) {
      g_string_append_unichar(out, ent->value);
      p = end;
      continue;
    }
    /* the longest prefix (at least 2 characters, shorter than s) that is a legacy name */
    gboolean found = FALSE;
    for (gsize x = (gsize)(end - q) - 1; x >= 2; x--) {
      ent = entity_find(q, x, TRUE);
      if (ent) {
        g_string_append_unichar(out, ent->value);
        g_string_append_len(out, q + x, end - (q + x));
        found = TRUE;
        break;
      }
    }
    if (!found) {
      g_string_append_c(out, '&');
      g_string_append_len(out, q, end - q);
    }
    p = end;
  }
  return g_string_free(out, FALSE);
}

/* ---- character classes ------------------------------------------------------------------------------------- */

/* Python `regex` \s: the Unicode White_Space property. */
gboolean rat_text_is_regex_space(gunichar c) {
  return (c >= 0x9 && c <= 0xD) || c == 0x20 || c == 0x85 || c == 0xA0 || c == 0x1680 || (c >= 0x2000 && c <= 0x200A) ||
         c == 0x2028 || c == 0x2029 || c == 0x202F || c == 0x205F || c == 0x3000;
}

/* Python str.isspace (used by str.strip): White_Space plus the separators U+001C..U+001F. */
static gboolean is_py_space(gunichar c) { return rat_text_is_regex_space(c) || (c >= 0x1C && c <= 0x1F); }

gboolean rat_text_is_letter(gunichar c) {
  switch (g_unichar_type(c)) {
  case G_UNICODE_UPPERCASE_LETTER:
  case G_UNICODE_LOWERCASE_LETTER:
  case G_UNICODE_TITLECASE_LETTER:
  case G_UNICODE_MODIFIER_LETTER:
  case G_UNICODE_OTHER_LETTER: return TRUE;
  default: return FALSE;
  }
}

gboolean rat_text_is_number(gunichar c) {
  switch (g_unichar_type(c)) {
  case G_UNICODE_DECIMAL_NUMBER:
  case G_UNICODE_LETTER_NUMBER:
  case G_UNICODE_OTHER_NUMBER: return TRUE;
  default: return FALSE;
  }
}

/* ---- lower case (Python str.lower: full mapping of U+0130, final sigma by context, else simple mapping) ------- */

/* Simple lower-case mapping. GLib maps letters only; Unicode also maps the Roman numerals U+2160..216F (Nl) and
 * the circled letters U+24B6..24CF (So), which Python's str.lower follows. */
static gunichar simple_lower(gunichar c) {
  if (c >= 0x2160 && c <= 0x216F) return c + 0x10;
  if (c >= 0x24B6 && c <= 0x24CF) return c + 0x1A;
  return g_unichar_tolower(c);
}

static gboolean is_cased(gunichar c) {
  GUnicodeType t = g_unichar_type(c);
  return t == G_UNICODE_UPPERCASE_LETTER || t == G_UNICODE_LOWERCASE_LETTER || t == G_UNICODE_TITLECASE_LETTER ||
         (c >= 0x2160 && c <= 0x217F) || (c >= 0x24B6 && c <= 0x24E9) || g_unichar_tolower(c) != c ||
         g_unichar_toupper(c) != c;
}

static gboolean is_case_ignorable(gunichar c) {
  switch (g_unichar_type(c)) {
  case G_UNICODE_NON_SPACING_MARK:
  case G_UNICODE_ENCLOSING_MARK:
  case G_UNICODE_FORMAT:
  case G_UNICODE_MODIFIER_LETTER:
  case G_UNICODE_MODIFIER_SYMBOL: return TRUE;
  default: break;
  }
  /* Word_Break MidLetter, MidNumLet, Single_Quote */
  static const gunichar mid[] = {0x27,   0x2E,   0x3A,   0xB7,   0x387,  0x55F,  0x5F4,  0x2018, 0x2019,
                                 0x2024, 0x2027, 0xFE13, 0xFE52, 0xFE55, 0xFF07, 0xFF0E, 0xFF1A};
  for (guint i = 0; i < G_N_ELEMENTS(mid); i++)
    if (c == mid[i]) return TRUE;
  return FALSE;
}

char *rat_text_lower(const char *text) {
  glong n = 0;
  gunichar *u = g_utf8_to_ucs4_fast(text, -1, &n);
  GString *out = g_string_sized_new(strlen(text) + 8);
  for (glong i = 0; i < n; i++) {
    gunichar c = u[i];
    if (c == 0x130) {
      g_string_append(out, "i\xcc\x87"); /* i + COMBINING DOT ABOVE */
    } else if (c == 0x3A3) {
      glong j = i - 1;
      while (j >= 0 && is_case_ignorable(u[j])) j--;
      gboolean final = j >= 0 && is_cased(u[j]);
      if (final) {
        j = i + 1;
        while (j < n && is_case_ignorable(u[j])) j++;
        final = j == n || !is_cased(u[j]);
      }
      g_string_append_unichar(out, final ? 0x3C2 : 0x3C3);
    } else {
      g_string_append_unichar(out, simple_lower(c));
    }
  }
  g_free(u);
  return g_string_free(out, FALSE);
}

/* ---- cleaning ------------------------------------------------------------------------------------------------ */

char *rat_text_clean(const char *text) {
  char *valid = g_utf8_make_valid(text ? text : "", -1);
  char *a = rat_text_html_unescape(valid);
  char *b = rat_text_html_unescape(a);
  char *nfc = g_utf8_normalize(b, -1, G_NORMALIZE_NFC);
  g_free(valid);
  g_free(a);
  g_free(b);
  /* collapse White_Space runs to one space, then strip str.isspace characters at both ends */
  GString *ws = g_string_sized_new(strlen(nfc));
  for (const char *p = nfc; *p;) {
    gunichar c = g_utf8_get_char(p);
    if (rat_text_is_regex_space(c)) {
      g_string_append_c(ws, ' ');
      while (*p && rat_text_is_regex_space(g_utf8_get_char(p))) p = g_utf8_next_char(p);
      continue;
    }
    const char *next = g_utf8_next_char(p);
    g_string_append_len(ws, p, next - p);
    p = next;
  }
  g_free(nfc);
  const char *s = ws->str, *e = ws->str + ws->len;
  while (s < e && is_py_space(g_utf8_get_char(s))) s = g_utf8_next_char(s);
  while (e > s) {
    const char *prev = g_utf8_prev_char(e);
    if (!is_py_space(g_utf8_get_char(prev))) break;
    e = prev;
  }
  char *stripped = g_strndup(s, e - s);
  g_string_free(ws, TRUE);
  char *lower = rat_text_lower(stripped);
  g_free(stripped);
  return lower;
}

/* ---- pre-tokenisation ---------------------------------------------------------------------------------------- */

/* Characters the case-insensitive pattern matches with no alternative: white space, and U+0345 (COMBINING GREEK
 * YPOGEGRAMMENI, whose case folding is a letter, so the negated class rejects it while \p{L} does not take it). */
static gboolean is_skipped(gunichar c) { return rat_text_is_regex_space(c) || c == 0x345; }

static gboolean is_other(gunichar c) { return !is_skipped(c) && !rat_text_is_letter(c) && !rat_text_is_number(c); }

GPtrArray *rat_text_pretokenize(const char *clean) {
  static const char *const specials[] = {"<|startoftext|>", "<|endoftext|>"};
  GPtrArray *out = g_ptr_array_new_with_free_func(g_free);
  const char *p = clean;
  while (*p) {
    gunichar c = g_utf8_get_char(p);
    const char *start = p;
    if (is_skipped(c)) {
      p = g_utf8_next_char(p);
      continue;
    }
    gboolean done = FALSE;
    for (guint k = 0; k < G_N_ELEMENTS(specials) && !done; k++) {
      gsize len = strlen(specials[k]);
      if (g_ascii_strncasecmp(p, specials[k], len) == 0) {
        g_ptr_array_add(out, g_strndup(p, len));
        p += len;
        done = TRUE;
      }
    }
    if (done) continue;
    if (c == '\'') { /* 's 't 're 've 'm 'll 'd, case-insensitive (U+017F LONG S folds to s) */
      const char *q = p + 1;
      gunichar c1 = *q ? g_unichar_tolower(g_utf8_get_char(q)) : 0;
      const char *q2 = *q ? g_utf8_next_char(q) : q;
      gunichar c2 = *q2 ? g_unichar_tolower(g_utf8_get_char(q2)) : 0;
      const char *end = NULL;
      if (c1 == 's' || c1 == 0x17F || c1 == 't' || c1 == 'm' || c1 == 'd')
        end = q2;
      else if ((c1 == 'r' && c2 == 'e') || (c1 == 'v' && c2 == 'e') || (c1 == 'l' && c2 == 'l'))
        end = g_utf8_next_char(q2);
      if (end) {
        g_ptr_array_add(out, g_strndup(p, end - p));
        p = end;
        continue;
      }
    }
    if (rat_text_is_letter(c)) {
      while (*p && rat_text_is_letter(g_utf8_get_char(p))) p = g_utf8_next_char(p);
    } else if (rat_text_is_number(c)) {
      p = g_utf8_next_char(p);
    } else {
      while (*p && is_other(g_utf8_get_char(p))) p = g_utf8_next_char(p);
    }
    g_ptr_array_add(out, g_strndup(start, p - start));
  }
  return out;
}
