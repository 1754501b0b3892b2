/* A safe reader for Python pickles of string lists (AttnGAN-style filenames.pickle): a small stack machine
 * that knows only the opcodes a list or tuple of str/bytes produces (pickletools' opcode table, protocols 2-4)
 * and never constructs or calls anything; every other opcode is refused with its name and offset. */
#include "config.h"

#include "ratfw-private.h"
#include <ratfw/data.h>
#include <ratfw/error.h>

typedef enum { OBJ_STR, OBJ_LIST, OBJ_TUPLE } ObjKind;

typedef struct {
  gint ref;
  ObjKind kind;
  char *s;          /* OBJ_STR */
  GPtrArray *items; /* OBJ_LIST / OBJ_TUPLE: Obj* (strings only), owned refs */
} Obj;

static Obj mark_sentinel; /* MARK on the stack */
#define MARK_OBJ (&mark_sentinel)

static Obj *obj_new(ObjKind kind) {
  Obj *o = g_new0(Obj, 1);
  o->ref = 1;
  o->kind = kind;
  if (kind != OBJ_STR)
    o->items = g_ptr_array_new();
  return o;
}

static Obj *obj_ref(Obj *o) {
  if (o != MARK_OBJ)
    o->ref++;
  return o;
}

static void obj_unref(gpointer p) {
  Obj *o = p;
  if (!o || o == MARK_OBJ || --o->ref > 0)
    return;
  if (o->items) {
    for (guint i = 0; i < o->items->len; i++)
      obj_unref(o->items->pdata[i]);
    g_ptr_array_free(o->items, TRUE);
  }
  g_free(o->s);
  g_free(o);
}

static const char *opcode_name(guint8 op) {
  switch (op) {
  case '(': return "MARK";
  case '.': return "STOP";
  case '0': return "POP";
  case '1': return "POP_MARK";
  case '2': return "DUP";
  case 'F': return "FLOAT";
  case 'I': return "INT";
  case 'J': return "BININT";
  case 'K': return "BININT1";
  case 'L': return "LONG";
  case 'M': return "BININT2";
  case 'N': return "NONE";
  case 'P': return "PERSID";
  case 'Q': return "BINPERSID";
  case 'R': return "REDUCE";
  case 'S': return "STRING";
  case 'T': return "BINSTRING";
  case 'U': return "SHORT_BINSTRING";
  case 'V': return "UNICODE";
  case 'X': return "BINUNICODE";
  case 'a': return "APPEND";
  case 'b': return "BUILD";
  case 'c': return "GLOBAL";
  case 'd': return "DICT";
  case '}': return "EMPTY_DICT";
  case 'e': return "APPENDS";
  case 'g': return "GET";
  case 'h': return "BINGET";
  case 'i': return "INST";
  case 'j': return "LONG_BINGET";
  case 'l': return "LIST";
  case ']': return "EMPTY_LIST";
  case 'o': return "OBJ";
  case 'p': return "PUT";
  case 'q': return "BINPUT";
  case 'r': return "LONG_BINPUT";
  case 's': return "SETITEM";
  case 't': return "TUPLE";
  case ')': return "EMPTY_TUPLE";
  case 'u': return "SETITEMS";
  case 'G': return "BINFLOAT";
  case 'B': return "BINBYTES";
  case 'C': return "SHORT_BINBYTES";
  case 0x80: return "PROTO";
  case 0x81: return "NEWOBJ";
  case 0x82: return "EXT1";
  case 0x83: return "EXT2";
  case 0x84: return "EXT4";
  case 0x85: return "TUPLE1";
  case 0x86: return "TUPLE2";
  case 0x87: return "TUPLE3";
  case 0x88: return "NEWTRUE";
  case 0x89: return "NEWFALSE";
  case 0x8a: return "LONG1";
  case 0x8b: return "LONG4";
  case 0x8c: return "SHORT_BINUNICODE";
  case 0x8d: return "BINUNICODE8";
  case 0x8e: return "BINBYTES8";
  case 0x8f: return "EMPTY_SET";
  case 0x90: return "ADDITEMS";
  case 0x91: return "FROZENSET";
  case 0x92: return "NEWOBJ_EX";
  case 0x93: return "STACK_GLOBAL";
  case 0x94: return "MEMOIZE";
  case 0x95: return "FRAME";
  case 0x96: return "BYTEARRAY8";
  case 0x97: return "NEXT_BUFFER";
  case 0x98: return "READONLY_BUFFER";
  default: return NULL;
  }
}

typedef struct {
  const guint8 *p;
  gsize len, pos;
  const char *name;
  GPtrArray *stack; /* Obj* (owned refs, released by hand; MARK_OBJ for marks) */
  GHashTable *memo; /* guint index -> Obj* (owned ref) */
  GError **error;
} Machine;

static gboolean fail(Machine *m, RatErrorCode code, gsize at, const char *fmt, ...) G_GNUC_PRINTF(4, 5);
static gboolean fail(Machine *m, RatErrorCode code, gsize at, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  char *msg = g_strdup_vprintf(fmt, ap);
  va_end(ap);
  g_set_error(m->error, RAT_ERROR, code, "%s: %s (at byte offset %" G_GSIZE_FORMAT ")", m->name, msg, at);
  g_free(msg);
  return FALSE;
}

/* Reads an n-byte little-endian unsigned argument. */
static gboolean arg_uint(Machine *m, int n, guint64 *v, gsize op_at) {
  if (m->len - m->pos < (gsize)n)
    return fail(m, RAT_ERROR_CORRUPT, op_at, "truncated pickle: %s needs %d argument bytes", opcode_name(m->p[op_at]),
                n);
  guint64 x = 0;
  for (int i = n - 1; i >= 0; i--)
    x = (x << 8) | m->p[m->pos + i];
  m->pos += n;
  *v = x;
  return TRUE;
}

static gboolean push_string(Machine *m, gsize nbytes, gboolean unicode, gsize op_at) {
  if (nbytes > m->len - m->pos)
    return fail(m, RAT_ERROR_CORRUPT, op_at,
                "truncated pickle: %s of %" G_GSIZE_FORMAT " bytes, %" G_GSIZE_FORMAT " left", opcode_name(m->p[op_at]),
                nbytes, m->len - m->pos);
  const char *s = (const char *)m->p + m->pos;
  if (memchr(s, 0, nbytes))
    return fail(m, RAT_ERROR_UNSUPPORTED, op_at, "string contains a NUL character");
  if (unicode && !g_utf8_validate(s, (gssize)nbytes, NULL))
    return fail(m, RAT_ERROR_CORRUPT, op_at, "%s is not valid UTF-8", opcode_name(m->p[op_at]));
  Obj *o = obj_new(OBJ_STR);
  o->s = g_strndup(s, nbytes);
  g_ptr_array_add(m->stack, o);
  m->pos += nbytes;
  return TRUE;
}

static gssize find_mark(Machine *m) {
  for (gssize i = (gssize)m->stack->len - 1; i >= 0; i--)
    if (m->stack->pdata[i] == MARK_OBJ)
      return i;
  return -1;
}

static Obj *top(Machine *m) { return m->stack->len ? m->stack->pdata[m->stack->len - 1] : NULL; }

/* Moves stack[from..] into @seq (strings only) and pops them. */
static gboolean move_items(Machine *m, guint from, Obj *seq, gsize op_at) {
  for (guint i = from; i < m->stack->len; i++) {
    Obj *it = m->stack->pdata[i];
    if (it == MARK_OBJ || it->kind != OBJ_STR)
      return fail(m, RAT_ERROR_UNSUPPORTED, op_at, "%s: only strings may be list or tuple items",
                  opcode_name(m->p[op_at]));
  }
  for (guint i = from; i < m->stack->len; i++)
    g_ptr_array_add(seq->items, m->stack->pdata[i]);
  g_ptr_array_set_size(m->stack, from); /* refs moved into seq */
  return TRUE;
}

static gboolean run(Machine *m, Obj **result) {
  while (m->pos < m->len) {
    gsize at = m->pos;
    guint8 op = m->p[m->pos++];
    guint64 v = 0;
    switch (op) {
    case 0x80: /* PROTO */
      if (!arg_uint(m, 1, &v, at))
        return FALSE;
      if (v > 5)
        return fail(m, RAT_ERROR_UNSUPPORTED, at, "unsupported pickle protocol %u", (guint)v);
      break;
    case 0x95: /* FRAME: a length hint; check it fits */
      if (!arg_uint(m, 8, &v, at))
        return FALSE;
      if (v > m->len - m->pos)
        return fail(m, RAT_ERROR_CORRUPT, at, "truncated pickle: FRAME of %" G_GUINT64_FORMAT " bytes", v);
      break;
    case '(': g_ptr_array_add(m->stack, MARK_OBJ); break;
    case ']': g_ptr_array_add(m->stack, obj_new(OBJ_LIST)); break;
    case ')': g_ptr_array_add(m->stack, obj_new(OBJ_TUPLE)); break;
    case 'l':
    case 't': {
      gssize mk = find_mark(m);
      if (mk < 0)
        return fail(m, RAT_ERROR_CORRUPT, at, "%s without MARK", opcode_name(op));
      Obj *seq = obj_new(op == 'l' ? OBJ_LIST : OBJ_TUPLE);
      if (!move_items(m, (guint)mk + 1, seq, at)) {
        obj_unref(seq);
        return FALSE;
      }
      g_ptr_array_set_size(m->stack, (guint)mk); /* drop the mark */
      g_ptr_array_add(m->stack, seq);
      break;
    }
    case 0x85:
    case 0x86:
    case 0x87: {
      guint n = op - 0x84;
      if (m->stack->len < n)
        return fail(m, RAT_ERROR_CORRUPT, at, "%s on a short stack", opcode_name(op));
      Obj *seq = obj_new(OBJ_TUPLE);
      if (!move_items(m, m->stack->len - n, seq, at)) {
        obj_unref(seq);
        return FALSE;
      }
      g_ptr_array_add(m->stack, seq);
      break;
    }
    case 'a': {
      if (m->stack->len < 2)
        return fail(m, RAT_ERROR_CORRUPT, at, "APPEND on a short stack");
      Obj *list = m->stack->pdata[m->stack->len - 2];
      if (list == MARK_OBJ || list->kind != OBJ_LIST)
        return fail(m, RAT_ERROR_CORRUPT, at, "APPEND to a non-list");
      if (!move_items(m, m->stack->len - 1, list, at))
        return FALSE;
      break;
    }
    case 'e': {
      gssize mk = find_mark(m);
      if (mk < 1)
        return fail(m, RAT_ERROR_CORRUPT, at, "APPENDS without MARK and list");
      Obj *list = m->stack->pdata[mk - 1];
      if (list == MARK_OBJ || list->kind != OBJ_LIST)
        return fail(m, RAT_ERROR_CORRUPT, at, "APPENDS to a non-list");
      if (!move_items(m, (guint)mk + 1, list, at))
        return FALSE;
      g_ptr_array_set_size(m->stack, (guint)mk);
      break;
    }
    case 'X': /* BINUNICODE */
    case 0x8c:
    case 0x8d:
      if (!arg_uint(m, op == 'X' ? 4 : op == 0x8c ? 1 : 8, &v, at))
        return FALSE;
      if (!push_string(m, v > G_MAXSIZE ? G_MAXSIZE : (gsize)v, TRUE, at))
        return FALSE;
      break;
    case 'B': /* BINBYTES */
    case 'C':
    case 0x8e:
    case 'U': /* SHORT_BINSTRING (Python 2 str) */
      if (!arg_uint(m, op == 'B' ? 4 : op == 0x8e ? 8 : 1, &v, at))
        return FALSE;
      if (!push_string(m, v > G_MAXSIZE ? G_MAXSIZE : (gsize)v, FALSE, at))
        return FALSE;
      break;
    case 'T': /* BINSTRING: signed 4-byte length */
      if (!arg_uint(m, 4, &v, at))
        return FALSE;
      if (v & 0x80000000u)
        return fail(m, RAT_ERROR_CORRUPT, at, "BINSTRING with a negative length");
      if (!push_string(m, (gsize)v, FALSE, at))
        return FALSE;
      break;
    case 0x94: /* MEMOIZE */
    case 'q':
    case 'r': {
      if (!top(m) || top(m) == MARK_OBJ)
        return fail(m, RAT_ERROR_CORRUPT, at, "%s with nothing to store", opcode_name(op));
      if (op == 0x94)
        v = g_hash_table_size(m->memo);
      else if (!arg_uint(m, op == 'q' ? 1 : 4, &v, at))
        return FALSE;
      g_hash_table_replace(m->memo, GUINT_TO_POINTER((guint)v), obj_ref(top(m)));
      break;
    }
    case 'h':
    case 'j': {
      if (!arg_uint(m, op == 'h' ? 1 : 4, &v, at))
        return FALSE;
      Obj *o = g_hash_table_lookup(m->memo, GUINT_TO_POINTER((guint)v));
      if (!o)
        return fail(m, RAT_ERROR_CORRUPT, at, "%s of memo entry %u that was never stored", opcode_name(op), (guint)v);
      g_ptr_array_add(m->stack, obj_ref(o));
      break;
    }
    case '.': {
      if (m->stack->len != 1 || top(m) == MARK_OBJ || top(m)->kind == OBJ_STR)
        return fail(m, RAT_ERROR_UNSUPPORTED, at, "the pickle is not a single list or tuple of strings");
      *result = obj_ref(top(m));
      return TRUE;
    }
    default: {
      const char *n = opcode_name(op);
      if (n)
        return fail(m, RAT_ERROR_UNSUPPORTED, at,
                    "refusing pickle opcode %s (0x%02x): only lists and tuples of strings are read", n, op);
      return fail(m, RAT_ERROR_CORRUPT, at, "invalid pickle opcode 0x%02x", op);
    }
    }
  }
  return fail(m, RAT_ERROR_CORRUPT, m->len, "truncated pickle: no STOP opcode");
}

GPtrArray *rat_pickle_parse_strings(const guint8 *data, gsize len, const char *name, GError **error) {
  Machine m = {.p = data, .len = len, .pos = 0, .name = name ? name : "(memory)", .error = error};
  m.stack = g_ptr_array_new(); /* no free func: items move between the stack and lists */
  m.memo = g_hash_table_new_full(g_direct_hash, g_direct_equal, NULL, obj_unref);
  Obj *res = NULL;
  GPtrArray *out = NULL;
  if (run(&m, &res)) {
    out = g_ptr_array_new_full(res->items->len, g_free);
    for (guint i = 0; i < res->items->len; i++)
      g_ptr_array_add(out, g_strdup(((Obj *)res->items->pdata[i])->s));
    obj_unref(res);
  }
  for (guint i = 0; i < m.stack->len; i++)
    obj_unref(m.stack->pdata[i]);
  g_ptr_array_unref(m.stack);
  g_hash_table_destroy(m.memo);
  return out;
}

GPtrArray *rat_pickle_load_strings(const char *path, GError **error) {
  GError *e = NULL;
  GMappedFile *map = g_mapped_file_new(path, FALSE, &e);
  if (!map) {
    g_set_error(error, RAT_ERROR, RAT_ERROR_IO, "cannot open %s: %s", path, e->message);
    g_error_free(e);
    return NULL;
  }
  GPtrArray *r = rat_pickle_parse_strings((const guint8 *)g_mapped_file_get_contents(map),
                                          g_mapped_file_get_length(map), path, error);
  g_mapped_file_unref(map);
  return r;
}
