/* Experiment files: YAML (libyaml document API) -> a tree of RatConfigNode that keeps file:line:column, include
 * merging, --set overrides, validation of argument tables (rat_args_parse), the resolved config writer, and the
 * experiment's top-level sections (docs/experiment-format.md). */
#include "config.h"

#include "registry-private.h"

#include <ratfw/config.h>
#include <ratfw/eval.h>
#include <ratfw/error.h>

#include <math.h>
#include <stdarg.h>
#include <string.h>
#include <yaml.h>

/* ---- diagnostics: every error collected, then joined into one GError ------------------------------------- */

typedef struct {
  GString *msg;
  int code;
  guint n;
} Diag;

static void diag_init(Diag *d) {
  d->msg = g_string_new(NULL);
  d->code = RAT_ERROR_CONFIG;
  d->n = 0;
}

static void diag_addv(Diag *d, const RatConfigNode *n, int code, const char *fmt, va_list ap) {
  char *mark = rat_config_mark(n);
  char *text = g_strdup_vprintf(fmt, ap);
  if (d->n) g_string_append_c(d->msg, '\n');
  g_string_append_printf(d->msg, "%s: %s", mark, text);
  if (d->n == 0) d->code = code;
  d->n++;
  g_free(mark);
  g_free(text);
}

static void diag_add(Diag *d, const RatConfigNode *n, int code, const char *fmt, ...) G_GNUC_PRINTF(4, 5);
static void diag_add(Diag *d, const RatConfigNode *n, int code, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  diag_addv(d, n, code, fmt, ap);
  va_end(ap);
}

/* Returns TRUE when no error was collected; else moves the messages into @error. */
static gboolean diag_finish(Diag *d, GError **error) {
  gboolean ok = d->n == 0;
  if (!ok) g_set_error_literal(error, RAT_ERROR, d->code, d->msg->str);
  g_string_free(d->msg, TRUE);
  return ok;
}

/* ---- nodes ------------------------------------------------------------------------------------------------ */

static RatConfigNode *node_new(RatNodeKind kind, const char *file, guint line, guint column) {
  RatConfigNode *n = g_new0(RatConfigNode, 1);
  n->ref = 1;
  n->kind = kind;
  n->file = g_intern_string(file ? file : "?");
  n->line = line;
  n->column = column;
  if (kind != RAT_NODE_SCALAR) n->values = g_ptr_array_new_with_free_func((GDestroyNotify)rat_config_node_unref);
  if (kind == RAT_NODE_MAP) n->keys = g_ptr_array_new_with_free_func((GDestroyNotify)rat_config_node_unref);
  return n;
}

static RatConfigNode *scalar_new(const char *value, gboolean quoted, const RatConfigNode *mark_from) {
  RatConfigNode *n = node_new(RAT_NODE_SCALAR, mark_from ? mark_from->file : NULL, mark_from ? mark_from->line : 0,
                              mark_from ? mark_from->column : 0);
  n->value = g_strdup(value);
  n->quoted = quoted;
  return n;
}

RatConfigNode *rat_config_node_ref(RatConfigNode *n) {
  g_atomic_int_inc(&n->ref);
  return n;
}

void rat_config_node_unref(RatConfigNode *n) {
  if (!n || !g_atomic_int_dec_and_test(&n->ref)) return;
  g_free(n->value);
  if (n->keys) g_ptr_array_unref(n->keys);
  if (n->values) g_ptr_array_unref(n->values);
  g_free(n);
}

/* Deep copy (merging must not edit a tree another spec may hold). */
static RatConfigNode *node_copy(const RatConfigNode *n) {
  RatConfigNode *c = node_new(n->kind, n->file, n->line, n->column);
  c->value = g_strdup(n->value);
  c->quoted = n->quoted;
  if (n->values)
    for (guint i = 0; i < n->values->len; i++) g_ptr_array_add(c->values, node_copy(n->values->pdata[i]));
  if (n->keys)
    for (guint i = 0; i < n->keys->len; i++) g_ptr_array_add(c->keys, node_copy(n->keys->pdata[i]));
  return c;
}

static int map_index(const RatConfigNode *n, const char *key) {
  if (!n || n->kind != RAT_NODE_MAP) return -1;
  for (guint i = 0; i < n->keys->len; i++)
    if (g_strcmp0(((RatConfigNode *)n->keys->pdata[i])->value, key) == 0) return (int)i;
  return -1;
}

RatConfigNode *rat_config_get(RatConfigNode *n, const char *key) {
  int i = map_index(n, key);
  return i < 0 ? NULL : n->values->pdata[i];
}

static RatConfigNode *map_key(RatConfigNode *n, const char *key) {
  int i = map_index(n, key);
  return i < 0 ? NULL : n->keys->pdata[i];
}

/* Sets or replaces @key (takes ownership of @value; @key_node copied for its mark). */
static void map_set(RatConfigNode *map, RatConfigNode *key_node, RatConfigNode *value) {
  int i = map_index(map, key_node->value);
  if (i >= 0) {
    rat_config_node_unref(map->values->pdata[i]);
    map->values->pdata[i] = value;
  } else {
    g_ptr_array_add(map->keys, rat_config_node_ref(key_node));
    g_ptr_array_add(map->values, value);
  }
}

static void map_remove(RatConfigNode *map, const char *key) {
  int i = map_index(map, key);
  if (i < 0) return;
  g_ptr_array_remove_index(map->keys, (guint)i);
  g_ptr_array_remove_index(map->values, (guint)i);
}

RatConfigNode *rat_config_node_copy(const RatConfigNode *n) { return node_copy(n); }

void rat_config_remove(RatConfigNode *map, const char *key) { map_remove(map, key); }

RatConfigNode *rat_config_lookup(RatConfigNode *root, const char *path) {
  char **parts = g_strsplit(path, ".", -1);
  RatConfigNode *n = root;
  for (int i = 0; parts[i] && n; i++) n = rat_config_get(n, parts[i]);
  g_strfreev(parts);
  return n;
}

gboolean rat_config_is_null(const RatConfigNode *n) {
  if (!n) return TRUE;
  if (n->kind != RAT_NODE_SCALAR || n->quoted) return FALSE;
  const char *v = n->value;
  return !*v || !strcmp(v, "~") || !strcmp(v, "null") || !strcmp(v, "Null") || !strcmp(v, "NULL");
}

char *rat_config_mark(const RatConfigNode *n) {
  if (!n) return g_strdup("?");
  return g_strdup_printf("%s:%u:%u", n->file, n->line, n->column);
}

void rat_config_error(GError **error, const RatConfigNode *n, int code, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  char *text = g_strdup_vprintf(fmt, ap);
  va_end(ap);
  char *mark = rat_config_mark(n);
  g_set_error(error, RAT_ERROR, code, "%s: %s", mark, text);
  g_free(mark);
  g_free(text);
}

/* ---- parsing ------------------------------------------------------------------------------------------------- */

typedef struct {
  yaml_document_t *doc;
  const char *name;
  guint depth;
  Diag *diag;
} Loader;

static RatConfigNode *convert(Loader *l, yaml_node_t *yn) {
  guint line = (guint)yn->start_mark.line + 1, col = (guint)yn->start_mark.column + 1;
  if (++l->depth > 64) {
    RatConfigNode tmp = {.file = l->name, .line = line, .column = col};
    diag_add(l->diag, &tmp, RAT_ERROR_CONFIG, "nesting deeper than 64 levels (a recursive alias?)");
    l->depth--;
    return NULL;
  }
  RatConfigNode *n = NULL;
  switch (yn->type) {
  case YAML_SCALAR_NODE:
    n = node_new(RAT_NODE_SCALAR, l->name, line, col);
    n->value = g_strndup((const char *)yn->data.scalar.value, yn->data.scalar.length);
    n->quoted = yn->data.scalar.style != YAML_PLAIN_SCALAR_STYLE;
    break;
  case YAML_SEQUENCE_NODE:
    n = node_new(RAT_NODE_SEQ, l->name, line, col);
    for (yaml_node_item_t *it = yn->data.sequence.items.start; it < yn->data.sequence.items.top; it++) {
      RatConfigNode *c = convert(l, yaml_document_get_node(l->doc, *it));
      if (c) g_ptr_array_add(n->values, c);
    }
    break;
  case YAML_MAPPING_NODE:
    n = node_new(RAT_NODE_MAP, l->name, line, col);
    for (yaml_node_pair_t *p = yn->data.mapping.pairs.start; p < yn->data.mapping.pairs.top; p++) {
      RatConfigNode *k = convert(l, yaml_document_get_node(l->doc, p->key));
      RatConfigNode *v = convert(l, yaml_document_get_node(l->doc, p->value));
      if (k && k->kind != RAT_NODE_SCALAR) {
        diag_add(l->diag, k, RAT_ERROR_CONFIG, "a mapping key must be a plain name");
      } else if (k && map_index(n, k->value) >= 0) {
        char *first = rat_config_mark(map_key(n, k->value));
        diag_add(l->diag, k, RAT_ERROR_CONFIG, "duplicate key '%s' (first given at %s)", k->value, first);
        g_free(first);
      } else if (k && v) {
        g_ptr_array_add(n->keys, rat_config_node_ref(k));
        g_ptr_array_add(n->values, rat_config_node_ref(v));
      }
      if (k) rat_config_node_unref(k);
      if (v) rat_config_node_unref(v);
    }
    break;
  default:
    break;
  }
  l->depth--;
  return n;
}

RatConfigNode *rat_config_parse_string(const char *text, gssize len, const char *name, GError **error) {
  yaml_parser_t parser;
  yaml_document_t doc;
  if (len < 0) len = (gssize)strlen(text);
  yaml_parser_initialize(&parser);
  yaml_parser_set_input_string(&parser, (const unsigned char *)text, (size_t)len);
  if (!yaml_parser_load(&parser, &doc)) {
    yaml_mark_t m = parser.problem_mark;
    if (parser.error == YAML_MEMORY_ERROR || (m.line == 0 && m.column == 0 && parser.context))
      m = parser.context_mark;
    g_set_error(error, RAT_ERROR, RAT_ERROR_CONFIG, "%s:%u:%u: YAML syntax error: %s%s%s", name,
                (guint)m.line + 1, (guint)m.column + 1, parser.problem ? parser.problem : "malformed",
                parser.context ? " " : "", parser.context ? parser.context : "");
    yaml_parser_delete(&parser);
    return NULL;
  }
  RatConfigNode *root = NULL;
  yaml_node_t *yroot = yaml_document_get_root_node(&doc);
  Diag d;
  diag_init(&d);
  if (!yroot) {
    root = node_new(RAT_NODE_SCALAR, name, 1, 1); /* empty document: null */
    root->value = g_strdup("");
  } else {
    Loader l = {.doc = &doc, .name = g_intern_string(name), .depth = 0, .diag = &d};
    root = convert(&l, yroot);
  }
  yaml_document_delete(&doc);
  yaml_parser_delete(&parser);
  if (!diag_finish(&d, error)) {
    rat_config_node_unref(root);
    return NULL;
  }
  return root;
}

RatConfigNode *rat_config_parse_file(const char *path, GError **error) {
  char *text = NULL;
  gsize len = 0;
  GError *e = NULL;
  if (!g_file_get_contents(path, &text, &len, &e)) {
    g_set_error(error, RAT_ERROR, RAT_ERROR_IO, "cannot read experiment file: %s", e->message);
    g_error_free(e);
    return NULL;
  }
  RatConfigNode *n = rat_config_parse_string(text, (gssize)len, path, error);
  g_free(text);
  return n;
}

/* ---- include and merge ---------------------------------------------------------------------------------------- */

static gboolean same_type(RatConfigNode *a, RatConfigNode *b) {
  RatConfigNode *ta = rat_config_get(a, "type"), *tb = rat_config_get(b, "type");
  if (!ta || !tb) return TRUE;
  return ta->kind == RAT_NODE_SCALAR && tb->kind == RAT_NODE_SCALAR && !g_strcmp0(ta->value, tb->value);
}

/* Merges @over into @base (both maps, @base owned and edited). */
static void merge_into(RatConfigNode *base, RatConfigNode *over) {
  for (guint i = 0; i < over->keys->len; i++) {
    RatConfigNode *k = over->keys->pdata[i], *v = over->values->pdata[i];
    RatConfigNode *old = rat_config_get(base, k->value);
    if (rat_config_is_null(v) && v->kind == RAT_NODE_SCALAR && !v->quoted && old) {
      map_remove(base, k->value);
    } else if (old && old->kind == RAT_NODE_MAP && v->kind == RAT_NODE_MAP && same_type(old, v)) {
      merge_into(old, v);
    } else {
      map_set(base, k, node_copy(v));
    }
  }
}

void rat_config_merge(RatConfigNode *base, const RatConfigNode *over) {
  g_return_if_fail(base->kind == RAT_NODE_MAP && over->kind == RAT_NODE_MAP);
  merge_into(base, (RatConfigNode *)over);
}

static RatConfigNode *load_with_includes(const char *path, GPtrArray *stack, GError **error) {
  char *abs = g_canonicalize_filename(path, NULL);
  for (guint i = 0; i < stack->len; i++)
    if (!strcmp(stack->pdata[i], abs)) {
      g_set_error(error, RAT_ERROR, RAT_ERROR_CONFIG, "%s: include cycle (%s includes itself)", path, abs);
      g_free(abs);
      return NULL;
    }
  RatConfigNode *root = rat_config_parse_file(path, error);
  if (!root) {
    g_free(abs);
    return NULL;
  }
  RatConfigNode *inc = rat_config_get(root, "include");
  if (root->kind != RAT_NODE_MAP || !inc) {
    g_free(abs);
    return root;
  }
  g_ptr_array_add(stack, abs);
  RatConfigNode *base = NULL;
  GPtrArray *files = g_ptr_array_new();
  if (inc->kind == RAT_NODE_SCALAR) g_ptr_array_add(files, inc);
  else if (inc->kind == RAT_NODE_SEQ)
    for (guint i = 0; i < inc->values->len; i++) g_ptr_array_add(files, inc->values->pdata[i]);
  gboolean ok = TRUE;
  if (inc->kind == RAT_NODE_MAP) {
    rat_config_error(error, inc, RAT_ERROR_CONFIG, "include: expects a file name or a list of file names");
    ok = FALSE;
  }
  char *dir = g_path_get_dirname(abs);
  for (guint i = 0; ok && i < files->len; i++) {
    RatConfigNode *f = files->pdata[i];
    if (f->kind != RAT_NODE_SCALAR || rat_config_is_null(f)) {
      rat_config_error(error, f, RAT_ERROR_CONFIG, "include: expects a file name");
      ok = FALSE;
      break;
    }
    char *fp = g_canonicalize_filename(f->value, dir);
    if (!g_file_test(fp, G_FILE_TEST_IS_REGULAR)) {
      rat_config_error(error, f, RAT_ERROR_IO, "included file '%s' does not exist (looked for %s)", f->value, fp);
      g_free(fp);
      ok = FALSE;
      break;
    }
    GError *e = NULL;
    RatConfigNode *sub = load_with_includes(fp, stack, &e);
    g_free(fp);
    if (!sub) {
      char *mark = rat_config_mark(f);
      g_set_error(error, RAT_ERROR, e->code, "%s\n%s: (included from here)", e->message, mark);
      g_free(mark);
      g_error_free(e);
      ok = FALSE;
      break;
    }
    if (sub->kind != RAT_NODE_MAP) {
      rat_config_error(error, sub, RAT_ERROR_CONFIG, "an included experiment file must be a mapping");
      rat_config_node_unref(sub);
      ok = FALSE;
      break;
    }
    if (!base) base = sub;
    else {
      merge_into(base, sub);
      rat_config_node_unref(sub);
    }
  }
  g_free(dir);
  g_ptr_array_free(files, TRUE);
  g_free(g_ptr_array_steal_index(stack, stack->len - 1));
  if (!ok) {
    if (base) rat_config_node_unref(base);
    rat_config_node_unref(root);
    return NULL;
  }
  map_remove(root, "include");
  if (base) {
    merge_into(base, root);
    rat_config_node_unref(root);
    root = base;
  }
  return root;
}

static void shift_columns(RatConfigNode *n, guint by) {
  if (n->line == 1) n->column += by;
  if (n->keys)
    for (guint i = 0; i < n->keys->len; i++) shift_columns(n->keys->pdata[i], by);
  if (n->values)
    for (guint i = 0; i < n->values->len; i++) shift_columns(n->values->pdata[i], by);
}

static void shift_lines(RatConfigNode *n, guint by) {
  n->line += by;
  if (n->keys)
    for (guint i = 0; i < n->keys->len; i++) shift_lines(n->keys->pdata[i], by);
  if (n->values)
    for (guint i = 0; i < n->values->len; i++) shift_lines(n->values->pdata[i], by);
}

gboolean rat_config_set(RatConfigNode *root, const char *assignment, GError **error) {
  return rat_config_set_at(root, assignment, NULL, error);
}

gboolean rat_config_set_at(RatConfigNode *root, const char *assignment, const RatConfigNode *where, GError **error) {
  const char *eq = strchr(assignment, '=');
  char *name = where ? g_strdup(where->file) : g_strdup_printf("--set %s", assignment);
  if (!eq || eq == assignment) {
    if (where)
      rat_config_error(error, where, RAT_ERROR_CONFIG, "expected KEY.PATH=VALUE (for example train.steps=10), got '%s'",
                       assignment);
    else
      g_set_error(error, RAT_ERROR, RAT_ERROR_CONFIG, "%s: expected KEY.PATH=VALUE (for example train.steps=10)",
                  name);
    g_free(name);
    return FALSE;
  }
  char *path = g_strndup(assignment, (gsize)(eq - assignment));
  GError *pe = NULL;
  RatConfigNode *value = rat_config_parse_string(eq + 1, -1, name, &pe);
  if (!value) {
    /* the parser's mark counts from the value's start: name the assignment as written instead */
    if (where) {
      rat_config_error(error, where, RAT_ERROR_CONFIG, "the value of '%s' is not valid YAML: %s", assignment,
                       pe->message);
      g_error_free(pe);
    } else {
      g_propagate_error(error, pe);
    }
    g_free(path);
    g_free(name);
    return FALSE;
  }
  /* marks: "--set a.b=c:1:COLUMN", or the file position of the scalar @where that holds the assignment */
  guint col0 = where ? where->column - 1 + (where->quoted ? 1u : 0u) : 0;
  shift_columns(value, col0 + (guint)(eq - assignment) + 1);
  if (where) shift_lines(value, where->line - 1);
  RatConfigNode *key_mark = scalar_new("", FALSE, value);
  key_mark->line = where ? where->line : 1;
  key_mark->column = col0 + 1;
  char **parts = g_strsplit(path, ".", -1);
  RatConfigNode *n = root;
  gboolean ok = TRUE;
  for (int i = 0; parts[i]; i++) {
    const char *p = parts[i];
    gboolean last = parts[i + 1] == NULL;
    if (!*p) {
      rat_config_error(error, key_mark, RAT_ERROR_CONFIG, "empty component in key path '%s'", path);
      ok = FALSE;
      break;
    }
    if (n->kind == RAT_NODE_SEQ) {
      guint64 idx;
      if (!g_ascii_string_to_unsigned(p, 10, 0, n->values->len ? n->values->len - 1 : 0, &idx, NULL) ||
          !n->values->len) {
        rat_config_error(error, key_mark, RAT_ERROR_CONFIG, "'%s' is not an index of the list at %s:%u:%u", p,
                         n->file, n->line, n->column);
        ok = FALSE;
        break;
      }
      if (last) {
        rat_config_node_unref(n->values->pdata[idx]);
        n->values->pdata[idx] = rat_config_node_ref(value);
      } else {
        n = n->values->pdata[idx];
      }
      continue;
    }
    if (n->kind != RAT_NODE_MAP) {
      rat_config_error(error, key_mark, RAT_ERROR_CONFIG, "cannot set '%s': the value at %s:%u:%u is not a mapping",
                       path, n->file, n->line, n->column);
      ok = FALSE;
      break;
    }
    RatConfigNode *k = scalar_new(p, FALSE, key_mark);
    if (last) {
      map_set(n, k, rat_config_node_ref(value));
    } else {
      RatConfigNode *c = rat_config_get(n, p);
      if (!c || rat_config_is_null(c)) {
        c = node_new(RAT_NODE_MAP, key_mark->file, key_mark->line, key_mark->column);
        map_set(n, k, c);
      } else if (c->kind == RAT_NODE_SCALAR) {
        /* "model.generator.nf" where generator is a scalar type name: turn it into {type: name} */
        RatConfigNode *m = node_new(RAT_NODE_MAP, c->file, c->line, c->column);
        RatConfigNode *tk = scalar_new("type", FALSE, c);
        map_set(m, tk, rat_config_node_ref(c));
        rat_config_node_unref(tk);
        map_set(n, k, m);
        c = m;
      }
      n = c;
    }
    rat_config_node_unref(k);
  }
  g_strfreev(parts);
  rat_config_node_unref(key_mark);
  rat_config_node_unref(value);
  g_free(path);
  g_free(name);
  return ok;
}

RatConfigNode *rat_config_load(const char *path, const char *const *sets, GError **error) {
  GPtrArray *stack = g_ptr_array_new_with_free_func(g_free);
  RatConfigNode *root = load_with_includes(path, stack, error);
  g_ptr_array_unref(stack);
  if (!root) return NULL;
  for (guint i = 0; sets && sets[i]; i++)
    if (!rat_config_set(root, sets[i], error)) {
      rat_config_node_unref(root);
      return NULL;
    }
  return root;
}

/* ---- writing ------------------------------------------------------------------------------------------------- */

static gboolean looks_special(const char *v) {
  static const char *const words[] = {"~", "null", "Null", "NULL", "true", "True", "TRUE", "false", "False",
                                      "FALSE", "yes", "Yes", "no", "No", "on", "On", "off", "Off", NULL};
  for (int i = 0; words[i]; i++)
    if (!strcmp(v, words[i])) return TRUE;
  char *end;
  g_ascii_strtod(v, &end);
  return end != v && *end == 0;
}

static void write_scalar(GString *out, const char *v, gboolean as_string) {
  gboolean plain = *v && !strchr("-?:,[]{}#&*!|>'\"%@` ", v[0]) && v[strlen(v) - 1] != ' ' &&
                   !strstr(v, ": ") && !strstr(v, " #") && v[strlen(v) - 1] != ':';
  for (const char *p = v; plain && *p; p++)
    if ((unsigned char)*p < 0x20 || *p == '"' || *p == '\\') plain = FALSE;
  if (plain && as_string && looks_special(v)) plain = FALSE;
  /* numbers like -1 or -0.5 may stay plain */
  if (!plain && !as_string && v[0] == '-' && looks_special(v)) plain = TRUE;
  if (plain) {
    g_string_append(out, v);
    return;
  }
  g_string_append_c(out, '"');
  for (const char *p = v; *p; p++) {
    if (*p == '"' || *p == '\\') g_string_append_printf(out, "\\%c", *p);
    else if (*p == '\n') g_string_append(out, "\\n");
    else if ((unsigned char)*p < 0x20) g_string_append_printf(out, "\\x%02x", (unsigned char)*p);
    else g_string_append_c(out, *p);
  }
  g_string_append_c(out, '"');
}

static gboolean all_scalars(const RatConfigNode *n) {
  for (guint i = 0; i < n->values->len; i++)
    if (((RatConfigNode *)n->values->pdata[i])->kind != RAT_NODE_SCALAR) return FALSE;
  return TRUE;
}

static void write_node(GString *out, const RatConfigNode *n, int indent);

static void write_value_after_key(GString *out, const RatConfigNode *v, int indent) {
  if (v->kind == RAT_NODE_SCALAR) {
    g_string_append_c(out, ' ');
    if (rat_config_is_null(v)) g_string_append(out, "~");
    else write_scalar(out, v->value, v->quoted);
    g_string_append_c(out, '\n');
  } else if (v->values->len == 0) {
    g_string_append(out, v->kind == RAT_NODE_MAP ? " {}\n" : " []\n");
  } else if (v->kind == RAT_NODE_SEQ && all_scalars(v)) {
    g_string_append(out, " [");
    for (guint i = 0; i < v->values->len; i++) {
      const RatConfigNode *c = v->values->pdata[i];
      if (i) g_string_append(out, ", ");
      write_scalar(out, c->value, c->quoted);
    }
    g_string_append(out, "]\n");
  } else {
    g_string_append_c(out, '\n');
    write_node(out, v, indent + 2);
  }
}

static void write_node(GString *out, const RatConfigNode *n, int indent) {
  if (n->kind == RAT_NODE_SCALAR) {
    g_string_append_printf(out, "%*s", indent, "");
    write_scalar(out, n->value, n->quoted);
    g_string_append_c(out, '\n');
    return;
  }
  for (guint i = 0; i < n->values->len; i++) {
    const RatConfigNode *v = n->values->pdata[i];
    g_string_append_printf(out, "%*s", indent, "");
    if (n->kind == RAT_NODE_MAP) {
      write_scalar(out, ((RatConfigNode *)n->keys->pdata[i])->value, FALSE);
      g_string_append_c(out, ':');
    } else {
      g_string_append_c(out, '-');
    }
    write_value_after_key(out, v, indent);
  }
}

char *rat_config_to_yaml(const RatConfigNode *n) {
  GString *out = g_string_new(NULL);
  write_node(out, n, 0);
  return g_string_free(out, FALSE);
}

/* ---- names ------------------------------------------------------------------------------------------------- */

guint rat_edit_distance(const char *a, const char *b) {
  gsize la = strlen(a), lb = strlen(b);
  guint *row = g_new(guint, lb + 1);
  for (gsize j = 0; j <= lb; j++) row[j] = (guint)j;
  for (gsize i = 1; i <= la; i++) {
    guint diag = row[0];
    row[0] = (guint)i;
    for (gsize j = 1; j <= lb; j++) {
      guint up = row[j];
      guint best = MIN(row[j] + 1, row[j - 1] + 1);
      best = MIN(best, diag + (a[i - 1] == b[j - 1] ? 0u : 1u));
      row[j] = best;
      diag = up;
    }
  }
  guint d = row[lb];
  g_free(row);
  return d;
}

const char *rat_closest_name(const char *name, const char *const *candidates) {
  const char *best = NULL;
  guint bd = G_MAXUINT;
  for (int i = 0; candidates && candidates[i]; i++) {
    guint d = rat_edit_distance(name, candidates[i]);
    if (d < bd) {
      bd = d;
      best = candidates[i];
    }
  }
  guint limit = MAX(2u, (guint)strlen(name) / 3);
  return bd <= limit ? best : NULL;
}

static char *join_names(const char *const *names) {
  if (!names || !names[0]) return g_strdup("(none)");
  return g_strjoinv(", ", (char **)names);
}

/* ---- argument tables ------------------------------------------------------------------------------------------- */

static gboolean parse_int(const char *s, gint64 *out) {
  return g_ascii_string_to_signed(s, 10, G_MININT64, G_MAXINT64, out, NULL);
}

static gboolean parse_double(const char *s, double *out) {
  char *end;
  if (!*s) return FALSE;
  double v = g_ascii_strtod(s, &end);
  if (*end || !isfinite(v)) return FALSE;
  *out = v;
  return TRUE;
}

static gboolean parse_bool(const char *s, gboolean *out) {
  static const char *const t[] = {"true", "yes", "on"}, *const f[] = {"false", "no", "off"};
  for (int i = 0; i < 3; i++) {
    if (!g_ascii_strcasecmp(s, t[i])) return *out = TRUE, TRUE;
    if (!g_ascii_strcasecmp(s, f[i])) return *out = FALSE, TRUE;
  }
  return FALSE;
}

static gboolean out_of_range(const RatArgSpec *a, double v) {
  return (a->min != RAT_ARG_NO_LIMIT && v < a->min) || (a->max != RAT_ARG_NO_LIMIT && v > a->max);
}

static char *range_text(const RatArgSpec *a) {
  char lo[32] = "-inf", hi[32] = "inf";
  if (a->min != RAT_ARG_NO_LIMIT) g_snprintf(lo, sizeof lo, "%.15g", a->min);
  if (a->max != RAT_ARG_NO_LIMIT) g_snprintf(hi, sizeof hi, "%.15g", a->max);
  return g_strdup_printf("[%s, %s]", lo, hi);
}

static const char *arg_type_name(RatArgType t) {
  static const char *const names[] = {"integer", "number", "boolean", "string", "choice", "path",
                                      "list of integers", "module", "list of stages"};
  return (guint)t < G_N_ELEMENTS(names) ? names[t] : "?";
}

static const char *plain_value(const RatConfigNode *v) {
  return v->kind == RAT_NODE_SCALAR ? v->value : (v->kind == RAT_NODE_MAP ? "a mapping" : "a list");
}

static RatModuleSpec *parse_module(RatRegistry *reg, RatModuleKind kind, RatConfigNode *v, const char *default_type,
                                   const char *what, Diag *d, guint depth);

static gboolean args_parse_diag(RatRegistry *reg, const RatArgSpec *args, guint n_args, RatConfigNode *node,
                                const RatConfigNode *where, gpointer options, const char *what, Diag *d,
                                guint depth);

/* The keys of one generator stage (RatStage), validated like any argument table; `block` gets its kind from
 * the stages argument. */
typedef struct {
  gint64 out, in, size;
  RatModuleSpec *block;
} StageOptions;
static const RatArgSpec stage_args[] = {
    RAT_ARG_I(StageOptions, out, NULL, 1, 1 << 20, "output channels of the stage"),
    RAT_ARG_I(StageOptions, in, "0", 0, 1 << 20, "input channels (0: the previous stage's out; checked when given)"),
    RAT_ARG_I(StageOptions, size, "0", 0, 1 << 16, "output side (0: the generator's plan)"),
    RAT_ARG_M(StageOptions, block, RAT_KIND_GENERATOR_BLOCK, "~", "the block (default: the generator's `block`)"),
};

static gboolean parse_stages(RatRegistry *reg, const RatArgSpec *a, RatConfigNode *v, RatStageList *l,
                             const char *what, Diag *d, guint depth) {
  if (v->kind != RAT_NODE_SEQ || !v->values->len) {
    diag_add(d, v, RAT_ERROR_CONFIG, "%s: '%s' expects a non-empty list of stages such as [{out: 256}, {out: 128, "
             "block: {type: galip_block}}] (or ~ for the released plan), got %s", what, a->name,
             v->kind == RAT_NODE_SEQ ? "an empty list" : plain_value(v));
    return FALSE;
  }
  RatArgSpec sargs[G_N_ELEMENTS(stage_args)];
  memcpy(sargs, stage_args, sizeof sargs);
  sargs[3].module_kind = a->module_kind;
  RatStage *st = g_new0(RatStage, v->values->len);
  gboolean ok = TRUE;
  for (guint i = 0; i < v->values->len; i++) {
    RatConfigNode *it = v->values->pdata[i];
    char *sub = g_strdup_printf("%s: stage %u of '%s'", what, i, a->name);
    StageOptions so = {0};
    if (it->kind != RAT_NODE_MAP) {
      diag_add(d, it, RAT_ERROR_CONFIG, "%s: expected a mapping {out: ..., block: ...}, got %s", sub, plain_value(it));
      ok = FALSE;
    } else if (args_parse_diag(reg, sargs, G_N_ELEMENTS(sargs), it, it, &so, sub, d, depth + 1)) {
      st[i] = (RatStage){.out = so.out, .in = so.in, .size = so.size, .block = so.block,
                         .node = rat_config_node_ref(it)};
    } else {
      rat_args_clear(sargs, G_N_ELEMENTS(sargs), &so);
      ok = FALSE;
    }
    if (it->kind == RAT_NODE_MAP && rat_config_get(it, "type"))
      diag_add(d, rat_config_get(it, "type"), RAT_ERROR_CONFIG, "%s: a stage has no type; name the block type "
               "under 'block: {type: ...}'", sub), ok = FALSE;
    g_free(sub);
  }
  l->n = v->values->len;
  l->v = st;
  if (!ok) {
    RatStageList tmp = *l;
    l->n = 0;
    l->v = NULL;
    for (guint i = 0; i < tmp.n; i++) {
      rat_module_spec_free(tmp.v[i].block);
      if (tmp.v[i].node) rat_config_node_unref(tmp.v[i].node);
    }
    g_free(tmp.v);
  }
  return ok;
}

/* Parses one argument value @v into @dst. Returns FALSE (with a diagnostic) when invalid. */
static gboolean parse_arg(RatRegistry *reg, const RatArgSpec *a, RatConfigNode *v, gpointer dst, const char *what,
                          Diag *d, guint depth) {
  gboolean null = rat_config_is_null(v);
  switch (a->type) {
  case RAT_ARG_INT:
  case RAT_ARG_DOUBLE: {
    double dv = 0;
    gint64 iv = 0;
    gboolean ok = v->kind == RAT_NODE_SCALAR && !v->quoted &&
                  (a->type == RAT_ARG_INT ? parse_int(v->value, &iv) : parse_double(v->value, &dv));
    if (!ok) {
      diag_add(d, v, RAT_ERROR_CONFIG, "%s: '%s' expects %s, got '%s'", what, a->name,
               a->type == RAT_ARG_INT ? "an integer" : "a number", plain_value(v));
      return FALSE;
    }
    if (a->type == RAT_ARG_INT) dv = (double)iv;
    if (out_of_range(a, dv)) {
      char *r = range_text(a);
      diag_add(d, v, RAT_ERROR_CONFIG, "%s: '%s' = %s is out of range %s", what, a->name, v->value, r);
      g_free(r);
      return FALSE;
    }
    if (a->type == RAT_ARG_INT) *(gint64 *)dst = iv;
    else *(double *)dst = dv;
    return TRUE;
  }
  case RAT_ARG_BOOL: {
    gboolean b;
    if (v->kind != RAT_NODE_SCALAR || v->quoted || !parse_bool(v->value, &b)) {
      diag_add(d, v, RAT_ERROR_CONFIG, "%s: '%s' expects true or false, got '%s'", what, a->name, plain_value(v));
      return FALSE;
    }
    *(gboolean *)dst = b;
    return TRUE;
  }
  case RAT_ARG_STRING:
  case RAT_ARG_PATH:
  case RAT_ARG_CHOICE: {
    if (v->kind != RAT_NODE_SCALAR) {
      diag_add(d, v, RAT_ERROR_CONFIG, "%s: '%s' expects a %s, got %s", what, a->name, arg_type_name(a->type),
               plain_value(v));
      return FALSE;
    }
    if (null && a->type != RAT_ARG_CHOICE) {
      *(char **)dst = NULL;
      return TRUE;
    }
    if (a->type == RAT_ARG_CHOICE) {
      for (int i = 0; a->choices && a->choices[i]; i++)
        if (!strcmp(a->choices[i], v->value)) {
          *(char **)dst = g_strdup(v->value);
          return TRUE;
        }
      const char *near = rat_closest_name(v->value, a->choices);
      char *all = join_names(a->choices);
      diag_add(d, v, RAT_ERROR_CONFIG, "%s: '%s' = '%s' is not one of: %s%s%s%s", what, a->name, v->value, all,
               near ? " (did you mean '" : "", near ? near : "", near ? "'?)" : "");
      g_free(all);
      return FALSE;
    }
    if (a->type == RAT_ARG_PATH && !g_path_is_absolute(v->value)) {
      char *dir = NULL;
      if (v->file[0] != '<' && strncmp(v->file, "--set", 5) != 0) dir = g_path_get_dirname(v->file);
      char *abs_dir = g_canonicalize_filename(dir ? dir : ".", NULL);
      *(char **)dst = g_canonicalize_filename(v->value, abs_dir);
      g_free(abs_dir);
      g_free(dir);
      return TRUE;
    }
    *(char **)dst = g_strdup(v->value);
    return TRUE;
  }
  case RAT_ARG_INT_LIST: {
    RatIntList *l = dst;
    if (v->kind != RAT_NODE_SEQ) {
      diag_add(d, v, RAT_ERROR_CONFIG, "%s: '%s' expects a list of integers such as [1, 2], got %s", what, a->name,
               plain_value(v));
      return FALSE;
    }
    gint64 *vals = g_new0(gint64, v->values->len + 1);
    gboolean ok = TRUE;
    for (guint i = 0; i < v->values->len; i++) {
      RatConfigNode *it = v->values->pdata[i];
      if (it->kind != RAT_NODE_SCALAR || it->quoted || !parse_int(it->value, &vals[i])) {
        diag_add(d, it, RAT_ERROR_CONFIG, "%s: item %u of '%s' expects an integer, got '%s'", what, i, a->name,
                 plain_value(it));
        ok = FALSE;
      } else if (out_of_range(a, (double)vals[i])) {
        char *r = range_text(a);
        diag_add(d, it, RAT_ERROR_CONFIG, "%s: item %u of '%s' = %s is out of range %s", what, i, a->name, it->value,
                 r);
        g_free(r);
        ok = FALSE;
      }
    }
    if (!ok) {
      g_free(vals);
      return FALSE;
    }
    l->n = v->values->len;
    l->v = vals;
    return TRUE;
  }
  case RAT_ARG_MODULE: {
    if (null) {
      *(RatModuleSpec **)dst = NULL;
      return TRUE;
    }
    char *sub = g_strdup_printf("%s.%s", what, a->name);
    const char *def = a->default_value;
    if (def && (!*def || !strcmp(def, "~") || !strcmp(def, "null"))) def = NULL;
    RatModuleSpec *spec = parse_module(reg, a->module_kind, v, def, sub, d, depth + 1);
    g_free(sub);
    *(RatModuleSpec **)dst = spec;
    return spec != NULL;
  }
  case RAT_ARG_STAGES:
    if (null) {
      *(RatStageList *)dst = (RatStageList){0};
      return TRUE;
    }
    return parse_stages(reg, a, v, dst, what, d, depth);
  }
  diag_add(d, v, RAT_ERROR_CONFIG, "%s: '%s' has an unknown argument type %d", what, a->name, (int)a->type);
  return FALSE;
}

static RatConfigNode *default_node(const RatArgSpec *a, const char *what) {
  char *name = g_strdup_printf("<default of %s.%s>", what, a->name);
  GError *e = NULL;
  RatConfigNode *n = rat_config_parse_string(a->default_value, -1, name, &e);
  if (!n) {
    g_warning("%s", e->message);
    g_error_free(e);
  }
  g_free(name);
  return n;
}

static gboolean args_parse_diag(RatRegistry *reg, const RatArgSpec *args, guint n_args, RatConfigNode *node,
                                const RatConfigNode *where, gpointer options, const char *what, Diag *d,
                                guint depth) {
  guint before = d->n;
  if (depth > 32) {
    diag_add(d, where, RAT_ERROR_CONFIG, "%s: modules nested more than 32 deep", what);
    return FALSE;
  }
  if (node && rat_config_is_null(node)) node = NULL;
  if (node && node->kind != RAT_NODE_MAP) {
    diag_add(d, node, RAT_ERROR_CONFIG, "%s: expected a mapping of arguments, got %s", what, plain_value(node));
    return FALSE;
  }
  if (node) {
    const char **names = g_new0(const char *, n_args + 1);
    for (guint i = 0; i < n_args; i++) names[i] = args[i].name;
    for (guint i = 0; i < node->keys->len; i++) {
      RatConfigNode *k = node->keys->pdata[i];
      gboolean known = !strcmp(k->value, "type");
      for (guint j = 0; !known && j < n_args; j++) known = !strcmp(args[j].name, k->value);
      if (known) continue;
      const char *near = rat_closest_name(k->value, names);
      if (near)
        diag_add(d, k, RAT_ERROR_CONFIG, "%s: unknown key '%s' (did you mean '%s'?)", what, k->value, near);
      else {
        char *all = join_names(names);
        diag_add(d, k, RAT_ERROR_CONFIG, "%s: unknown key '%s' (valid keys: %s)", what, k->value, all);
        g_free(all);
      }
    }
    g_free(names);
  }
  for (guint i = 0; i < n_args; i++) {
    const RatArgSpec *a = &args[i];
    RatConfigNode *v = rat_config_get(node, a->name), *def = NULL;
    if (!v) {
      if (!a->default_value) {
        diag_add(d, node ? node : where, RAT_ERROR_CONFIG, "%s: missing required key '%s' (%s: %s)", what, a->name,
                 arg_type_name(a->type), a->doc ? a->doc : "");
        continue;
      }
      v = def = default_node(a, what);
      if (!v) continue;
    }
    parse_arg(reg, a, v, (char *)options + a->offset, what, d, depth);
    if (def) rat_config_node_unref(def);
  }
  return d->n == before;
}

gboolean rat_args_parse(RatRegistry *reg, const RatArgSpec *args, guint n_args, RatConfigNode *node,
                        gpointer options, GError **error) {
  return rat_args_parse_what(reg, args, n_args, node, options, "arguments", error);
}

gboolean rat_args_parse_what(RatRegistry *reg, const RatArgSpec *args, guint n_args, RatConfigNode *node,
                             gpointer options, const char *what, GError **error) {
  Diag d;
  diag_init(&d);
  args_parse_diag(reg, args, n_args, node, node, options, what, &d, 0);
  if (d.n) rat_args_clear(args, n_args, options);
  return diag_finish(&d, error);
}

void rat_args_clear(const RatArgSpec *args, guint n_args, gpointer options) {
  for (guint i = 0; i < n_args; i++) {
    gpointer p = (char *)options + args[i].offset;
    switch (args[i].type) {
    case RAT_ARG_STRING:
    case RAT_ARG_CHOICE:
    case RAT_ARG_PATH:
      g_clear_pointer((char **)p, g_free);
      break;
    case RAT_ARG_INT_LIST:
      g_clear_pointer(&((RatIntList *)p)->v, g_free);
      ((RatIntList *)p)->n = 0;
      break;
    case RAT_ARG_MODULE:
      g_clear_pointer((RatModuleSpec **)p, rat_module_spec_free);
      break;
    case RAT_ARG_STAGES: {
      RatStageList *l = p;
      for (guint k = 0; k < l->n; k++) {
        rat_module_spec_free(l->v[k].block);
        if (l->v[k].node) rat_config_node_unref(l->v[k].node);
      }
      g_clear_pointer(&l->v, g_free);
      l->n = 0;
      break;
    }
    default:
      break;
    }
  }
}

RatModuleSpec *rat_module_spec_new(const char *type_name, RatConfigNode *node) {
  RatModuleSpec *s = g_new0(RatModuleSpec, 1);
  s->type_name = g_strdup(type_name);
  s->node = node ? rat_config_node_ref(node) : NULL;
  return s;
}

void rat_module_spec_free(RatModuleSpec *spec) {
  if (!spec) return;
  g_free(spec->type_name);
  if (spec->node) rat_config_node_unref(spec->node);
  g_free(spec);
}

static char **type_names(RatRegistry *reg, RatModuleKind kind) {
  GPtrArray *types = rat_registry_types(reg, kind);
  char **names = g_new0(char *, types->len + 1);
  for (guint i = 0; i < types->len; i++) names[i] = g_strdup(((const RatModuleType *)types->pdata[i])->name);
  g_ptr_array_unref(types);
  return names;
}

/* A module choice: scalar type name, or a mapping with `type:` (or @default_type) and arguments. */
static RatModuleSpec *parse_module(RatRegistry *reg, RatModuleKind kind, RatConfigNode *v, const char *default_type,
                                   const char *what, Diag *d, guint depth) {
  RatConfigNode *tnode = v;
  RatConfigNode *args = NULL;
  if (v->kind == RAT_NODE_MAP) {
    tnode = rat_config_get(v, "type");
    args = v;
    if (!tnode && !default_type) {
      diag_add(d, v, RAT_ERROR_CONFIG, "%s: missing required key 'type' (which %s to use)", what,
               rat_module_kind_name(kind));
      return NULL;
    }
  }
  if (tnode && (tnode->kind != RAT_NODE_SCALAR || rat_config_is_null(tnode))) {
    diag_add(d, tnode, RAT_ERROR_CONFIG, "%s: expected a %s type name, got %s", what, rat_module_kind_name(kind),
             plain_value(tnode));
    return NULL;
  }
  const char *tname = tnode ? tnode->value : default_type;
  const RatModuleType *type = rat_registry_lookup(reg, tname);
  if (!type || (kind != RAT_KIND_N && type->kind != kind)) {
    char **names = type_names(reg, kind);
    const char *near = rat_closest_name(tname, (const char *const *)names);
    char *all = join_names((const char *const *)names);
    if (type)
      diag_add(d, tnode ? tnode : v, RAT_ERROR_CONFIG, "%s: type '%s' is a %s, expected a %s (installed: %s)", what,
               tname, rat_module_kind_name(type->kind), rat_module_kind_name(kind), all);
    else
      diag_add(d, tnode ? tnode : v, RAT_ERROR_NOT_FOUND, "%s: unknown %s type '%s'%s%s%s (installed: %s)", what,
               kind == RAT_KIND_N ? "module" : rat_module_kind_name(kind), tname, near ? " (did you mean '" : "",
               near ? near : "", near ? "'?)" : "", all);
    g_free(all);
    g_strfreev(names);
    return NULL;
  }
  gpointer opts = g_malloc0(MAX(type->options_size, 1));
  char *sub = g_strdup_printf("%s (%s)", what, type->name);
  gboolean ok = args_parse_diag(reg, type->args, type->n_args, args, v, opts, sub, d, depth);
  g_free(sub);
  rat_args_clear(type->args, type->n_args, opts);
  g_free(opts);
  if (!ok) return NULL;
  RatModuleSpec *spec = rat_module_spec_new(tname, args);
  return spec;
}

/* ---- resolved config ------------------------------------------------------------------------------------------ */

static void emit_args(GString *out, RatRegistry *reg, const RatArgSpec *args, guint n, gconstpointer options,
                      int indent);

static void emit_double(GString *out, double v) {
  char buf[64];
  g_snprintf(buf, sizeof buf, "%.15g", v);
  if (g_ascii_strtod(buf, NULL) != v) g_snprintf(buf, sizeof buf, "%.17g", v);
  if (!strpbrk(buf, ".eEn")) g_strlcat(buf, ".0", sizeof buf);
  g_string_append(out, buf);
}

static void emit_spec(GString *out, RatRegistry *reg, const RatModuleSpec *spec, int indent) {
  const RatModuleType *type = spec ? rat_registry_lookup(reg, spec->type_name) : NULL;
  if (!type) {
    g_string_append(out, " ~\n");
    return;
  }
  g_string_append_c(out, '\n');
  g_string_append_printf(out, "%*stype: ", indent, "");
  write_scalar(out, type->name, TRUE);
  g_string_append_c(out, '\n');
  gpointer opts = g_malloc0(MAX(type->options_size, 1));
  GError *e = NULL;
  if (rat_args_parse(reg, type->args, type->n_args, spec->node, opts, &e)) {
    emit_args(out, reg, type->args, type->n_args, opts, indent);
    rat_args_clear(type->args, type->n_args, opts);
  } else {
    g_string_append_printf(out, "%*s# invalid: %s\n", indent, "", e->message);
    g_error_free(e);
  }
  g_free(opts);
}

static void emit_args(GString *out, RatRegistry *reg, const RatArgSpec *args, guint n, gconstpointer options,
                      int indent) {
  for (guint i = 0; i < n; i++) {
    const RatArgSpec *a = &args[i];
    gconstpointer p = (const char *)options + a->offset;
    g_string_append_printf(out, "%*s%s:", indent, "", a->name);
    switch (a->type) {
    case RAT_ARG_INT:
      g_string_append_printf(out, " %" G_GINT64_FORMAT "\n", *(const gint64 *)p);
      break;
    case RAT_ARG_DOUBLE:
      g_string_append_c(out, ' ');
      emit_double(out, *(const double *)p);
      g_string_append_c(out, '\n');
      break;
    case RAT_ARG_BOOL:
      g_string_append(out, *(const gboolean *)p ? " true\n" : " false\n");
      break;
    case RAT_ARG_STRING:
    case RAT_ARG_CHOICE:
    case RAT_ARG_PATH: {
      const char *s = *(char *const *)p;
      g_string_append_c(out, ' ');
      if (s) write_scalar(out, s, TRUE);
      else g_string_append_c(out, '~');
      g_string_append_c(out, '\n');
      break;
    }
    case RAT_ARG_INT_LIST: {
      const RatIntList *l = p;
      g_string_append(out, " [");
      for (guint j = 0; j < l->n; j++) g_string_append_printf(out, "%s%" G_GINT64_FORMAT, j ? ", " : "", l->v[j]);
      g_string_append(out, "]\n");
      break;
    }
    case RAT_ARG_MODULE:
      emit_spec(out, reg, *(RatModuleSpec *const *)p, indent + 2);
      break;
    case RAT_ARG_STAGES: {
      const RatStageList *l = p;
      if (!l->n) g_string_append(out, " ~\n");
      else g_string_append_c(out, '\n');
      for (guint k = 0; k < l->n; k++) {
        const RatStage *sg = &l->v[k];
        g_string_append_printf(out, "%*s- out: %" G_GINT64_FORMAT "\n", indent + 2, "", sg->out);
        g_string_append_printf(out, "%*sin: %" G_GINT64_FORMAT "\n", indent + 4, "", sg->in);
        g_string_append_printf(out, "%*ssize: %" G_GINT64_FORMAT "\n", indent + 4, "", sg->size);
        g_string_append_printf(out, "%*sblock:", indent + 4, "");
        emit_spec(out, reg, sg->block, indent + 6);
      }
      break;
    }
    }
  }
}

/* ---- the experiment -------------------------------------------------------------------------------------------- */

const RatModelSlot rat_model_slots[] = {
    {"generator", RAT_KIND_GENERATOR},         {"discriminator", RAT_KIND_DISCRIMINATOR},
    {"text_encoder", RAT_KIND_TEXT_ENCODER},   {"image_encoder", RAT_KIND_IMAGE_ENCODER},
    {"conditioner", RAT_KIND_CONDITIONER},     {"block", RAT_KIND_BLOCK},
};
const guint rat_n_model_slots = G_N_ELEMENTS(rat_model_slots);

static const char *const model_sizes[] = {"channels", "out_channels", "cond_dim", "z_dim", "image_size", NULL};
static const char *const top_keys[] = {"requires", "seed", "out", "task", "data", "model", "loss",
                                       "train", "sample", "eval", "description", NULL};

static void unknown_key(Diag *d, RatConfigNode *k, const char *what, const char *const *valid) {
  const char *near = rat_closest_name(k->value, valid);
  char *all = join_names(valid);
  if (near) diag_add(d, k, RAT_ERROR_CONFIG, "%s: unknown key '%s' (did you mean '%s'?)", what, k->value, near);
  else diag_add(d, k, RAT_ERROR_CONFIG, "%s: unknown key '%s' (valid keys: %s)", what, k->value, all);
  g_free(all);
}

static gboolean in_list(const char *s, const char *const *list) {
  for (int i = 0; list[i]; i++)
    if (!strcmp(s, list[i])) return TRUE;
  return FALSE;
}

static RatModuleSpec *section_task(RatRegistry *reg, RatConfigNode *root, const char *section, const char *tname,
                                   RatConfigNode *tnode, Diag *d) {
  RatConfigNode *sec = rat_config_get(root, section);
  const RatModuleType *type = rat_registry_lookup(reg, tname);
  if (!type || type->kind != RAT_KIND_TASK) {
    char **names = type_names(reg, RAT_KIND_TASK);
    const char *near = rat_closest_name(tname, (const char *const *)names);
    char *all = join_names((const char *const *)names);
    RatConfigNode *where = tnode ? tnode : map_key(root, section);
    if (type)
      diag_add(d, where, RAT_ERROR_CONFIG, "'%s' is a %s, not a task (installed tasks: %s)", tname,
               rat_module_kind_name(type->kind), all);
    else if (tnode)
      diag_add(d, where, RAT_ERROR_NOT_FOUND, "task: unknown task type '%s'%s%s%s (installed tasks: %s)", tname,
               near ? " (did you mean '" : "", near ? near : "", near ? "'?)" : "", all);
    else
      diag_add(d, where, RAT_ERROR_NOT_FOUND,
               "section '%s' needs the task type '%s', which is not installed (installed tasks: %s)", section, tname,
               all);
    g_free(all);
    g_strfreev(names);
    return NULL;
  }
  gpointer opts = g_malloc0(MAX(type->options_size, 1));
  gboolean ok = args_parse_diag(reg, type->args, type->n_args, sec, tnode ? tnode : map_key(root, section), opts,
                                section, d, 0);
  rat_args_clear(type->args, type->n_args, opts);
  g_free(opts);
  return ok ? rat_module_spec_new(tname, sec && !rat_config_is_null(sec) ? sec : NULL) : NULL;
}

/* The eval: section: the keys of rat_eval_args (core/eval/eval.c), and one mapping per metric type named after it
 * holding that metric's arguments (eval.fid.extractor). */
static RatModuleSpec *section_eval(RatRegistry *reg, RatConfigNode *root, Diag *d) {
  RatConfigNode *sec = rat_config_get(root, "eval");
  if (rat_config_is_null(sec)) return rat_module_spec_new("eval", NULL);
  if (sec->kind != RAT_NODE_MAP) {
    diag_add(d, sec, RAT_ERROR_CONFIG, "eval: expects a mapping (samples:, metrics:, fid: {...}, ...)");
    return NULL;
  }
  gboolean ok = TRUE;
  for (guint i = 0; i < sec->keys->len; i++) {
    RatConfigNode *k = sec->keys->pdata[i], *v = sec->values->pdata[i];
    if (!rat_eval_is_metric_key(reg, k->value) || rat_config_is_null(v)) continue;
    char *what = g_strdup_printf("eval.%s", k->value);
    if (v->kind != RAT_NODE_MAP) {
      diag_add(d, v, RAT_ERROR_CONFIG, "%s: expects a mapping of the metric's arguments (`ratfw plugins %s` lists them)",
               what, k->value);
      ok = FALSE;
    } else {
      RatModuleSpec *m = parse_module(reg, RAT_KIND_METRIC, v, k->value, what, d, 0);
      if (m && strcmp(m->type_name, k->value)) {
        diag_add(d, rat_config_get(v, "type"), RAT_ERROR_CONFIG, "%s: the metric is named by its key; drop 'type: %s'",
                 what, m->type_name);
        ok = FALSE;
      }
      ok = ok && m;
      rat_module_spec_free(m);
    }
    g_free(what);
  }
  RatConfigNode *plain = rat_eval_section_plain(reg, sec);
  gpointer opts = g_malloc0(sizeof(RatEvalOptions));
  ok = args_parse_diag(reg, rat_eval_args, rat_eval_n_args, plain, map_key(root, "eval"), opts, "eval", d, 0) && ok;
  rat_args_clear(rat_eval_args, rat_eval_n_args, opts);
  g_free(opts);
  if (plain) rat_config_node_unref(plain);
  return ok ? rat_module_spec_new("eval", sec) : NULL;
}

/* The eval: section with its defaults, then each metric mapping with the metric's defaults. */
static void emit_eval(GString *out, RatRegistry *reg, const RatModuleSpec *s) {
  g_string_append(out, "eval:\n");
  RatConfigNode *plain = rat_eval_section_plain(reg, s->node);
  RatEvalOptions o = {0};
  if (rat_args_parse(reg, rat_eval_args, rat_eval_n_args, plain, &o, NULL)) {
    emit_args(out, reg, rat_eval_args, rat_eval_n_args, &o, 2);
    rat_args_clear(rat_eval_args, rat_eval_n_args, &o);
  }
  if (plain) rat_config_node_unref(plain);
  for (guint i = 0; s->node && i < s->node->keys->len; i++) {
    RatConfigNode *k = s->node->keys->pdata[i], *v = s->node->values->pdata[i];
    if (!rat_eval_is_metric_key(reg, k->value) || rat_config_is_null(v)) continue;
    const RatModuleType *type = rat_registry_lookup(reg, k->value);
    g_string_append_printf(out, "  %s:\n", k->value);
    gpointer opts = g_malloc0(MAX(type->options_size, 1));
    if (rat_args_parse(reg, type->args, type->n_args, v, opts, NULL)) {
      emit_args(out, reg, type->args, type->n_args, opts, 4);
      rat_args_clear(type->args, type->n_args, opts);
    }
    g_free(opts);
  }
}

void rat_experiment_free(RatExperiment *exp) {
  if (!exp) return;
  g_free(exp->path);
  g_free(exp->name);
  g_free(exp->out);
  if (exp->root) rat_config_node_unref(exp->root);
  if (exp->requires) g_ptr_array_unref(exp->requires);
  rat_module_spec_free(exp->task);
  rat_module_spec_free(exp->data);
  rat_module_spec_free(exp->loss);
  rat_module_spec_free(exp->sample);
  rat_module_spec_free(exp->eval);
  for (guint i = 0; i < G_N_ELEMENTS(exp->model); i++) rat_module_spec_free(exp->model[i]);
  g_free(exp);
}

RatExperiment *rat_experiment_load(RatRegistry *reg, const char *path, const char *const *sets, GError **error) {
  RatConfigNode *root = rat_config_load(path, sets, error);
  if (!root) return NULL;
  RatExperiment *exp = rat_experiment_load_tree(reg, root, path, error);
  rat_config_node_unref(root);
  return exp;
}

RatExperiment *rat_experiment_load_tree(RatRegistry *reg, RatConfigNode *root, const char *path, GError **error) {
  Diag d;
  diag_init(&d);
  RatExperiment *exp = g_new0(RatExperiment, 1);
  exp->root = rat_config_node_ref(root);
  exp->path = g_canonicalize_filename(path, NULL);
  char *base = g_path_get_basename(path);
  char *dot = g_str_has_suffix(base, ".yaml") || g_str_has_suffix(base, ".yml") ? strrchr(base, '.') : NULL;
  if (dot) *dot = 0;
  exp->name = base;
  exp->requires = g_ptr_array_new_with_free_func(g_free);
  if (root->kind != RAT_NODE_MAP) {
    diag_add(&d, root, RAT_ERROR_CONFIG, "an experiment file must be a mapping (seed:, task:, model:, ...)");
    goto done;
  }
  for (guint i = 0; i < root->keys->len; i++) {
    RatConfigNode *k = root->keys->pdata[i];
    if (!in_list(k->value, top_keys)) unknown_key(&d, k, "experiment", top_keys);
  }
  /* seed */
  RatConfigNode *v = rat_config_get(root, "seed");
  if (v) {
    static const RatArgSpec seed_arg = {.name = "seed", .type = RAT_ARG_INT, .min = 0, .max = RAT_ARG_NO_LIMIT};
    parse_arg(reg, &seed_arg, v, &exp->seed, "experiment", &d, 0);
  }
  v = rat_config_get(root, "description");
  if (v && v->kind != RAT_NODE_SCALAR) diag_add(&d, v, RAT_ERROR_CONFIG, "description: expects a string");
  v = rat_config_get(root, "out");
  if (v) {
    static const RatArgSpec out_arg = {.name = "out", .type = RAT_ARG_PATH};
    parse_arg(reg, &out_arg, v, &exp->out, "experiment", &d, 0);
  }
  /* requires */
  v = rat_config_get(root, "requires");
  if (v && !rat_config_is_null(v)) {
    GPtrArray *items = g_ptr_array_new();
    if (v->kind == RAT_NODE_SEQ)
      for (guint i = 0; i < v->values->len; i++) g_ptr_array_add(items, v->values->pdata[i]);
    else g_ptr_array_add(items, v);
    for (guint i = 0; i < items->len; i++) {
      RatConfigNode *it = items->pdata[i];
      if (it->kind != RAT_NODE_SCALAR || rat_config_is_null(it)) {
        diag_add(&d, it, RAT_ERROR_CONFIG, "requires: expects experiment file names");
        continue;
      }
      char *dir = it->file[0] != '<' && strncmp(it->file, "--set", 5) ? g_path_get_dirname(it->file) : g_strdup(".");
      char *abs_dir = g_canonicalize_filename(dir, NULL);
      char *p = g_canonicalize_filename(it->value, abs_dir);
      g_free(dir);
      g_free(abs_dir);
      if (!g_file_test(p, G_FILE_TEST_IS_REGULAR)) {
        diag_add(&d, it, RAT_ERROR_IO, "required experiment '%s' does not exist (looked for %s)", it->value, p);
        g_free(p);
      } else if (!strcmp(p, exp->path)) {
        diag_add(&d, it, RAT_ERROR_CONFIG, "an experiment cannot require itself");
        g_free(p);
      } else {
        g_ptr_array_add(exp->requires, p);
      }
    }
    g_ptr_array_free(items, TRUE);
  }
  /* task + train */
  RatConfigNode *task = rat_config_get(root, "task");
  if (!task) {
    /* an experiment without a task only describes a model (ratfw inspect); `ratfw run` refuses it */
    if (rat_config_get(root, "train"))
      diag_add(&d, map_key(root, "train"), RAT_ERROR_CONFIG, "a 'train:' section needs 'task:' naming the task");
  } else if (task->kind != RAT_NODE_SCALAR || rat_config_is_null(task)) {
    diag_add(&d, task, RAT_ERROR_CONFIG, "task: expects a task type name (its arguments go under 'train:')");
  } else {
    exp->task = section_task(reg, root, "train", task->value, task, &d);
  }
  if (rat_config_get(root, "sample")) exp->sample = section_task(reg, root, "sample", "sample", NULL, &d);
  if (rat_config_get(root, "eval")) exp->eval = section_eval(reg, root, &d);
  /* data, loss */
  v = rat_config_get(root, "data");
  if (v && !rat_config_is_null(v)) exp->data = parse_module(reg, RAT_KIND_DATASET, v, NULL, "data", &d, 0);
  v = rat_config_get(root, "loss");
  if (v && !rat_config_is_null(v)) exp->loss = parse_module(reg, RAT_KIND_LOSS, v, NULL, "loss", &d, 0);
  /* model */
  v = rat_config_get(root, "model");
  if (v && !rat_config_is_null(v)) {
    if (v->kind != RAT_NODE_MAP) {
      diag_add(&d, v, RAT_ERROR_CONFIG, "model: expects a mapping of slots (generator:, discriminator:, ...)");
    } else {
      const char **valid = g_new0(const char *, rat_n_model_slots + G_N_ELEMENTS(model_sizes) + 1);
      guint nv = 0;
      for (guint i = 0; i < rat_n_model_slots; i++) valid[nv++] = rat_model_slots[i].name;
      for (guint i = 0; model_sizes[i]; i++) valid[nv++] = model_sizes[i];
      gint64 *sizes[] = {&exp->sizes.channels, &exp->sizes.out_channels, &exp->sizes.cond_dim, &exp->sizes.z_dim,
                         &exp->sizes.image_size};
      for (guint i = 0; i < v->keys->len; i++) {
        RatConfigNode *k = v->keys->pdata[i], *val = v->values->pdata[i];
        gboolean found = FALSE;
        for (guint s = 0; s < rat_n_model_slots; s++)
          if (!strcmp(k->value, rat_model_slots[s].name)) {
            found = TRUE;
            if (rat_config_is_null(val)) break;
            char *what = g_strdup_printf("model.%s", k->value);
            exp->model[s] = parse_module(reg, rat_model_slots[s].kind, val, NULL, what, &d, 0);
            g_free(what);
          }
        for (guint s = 0; !found && model_sizes[s]; s++)
          if (!strcmp(k->value, model_sizes[s])) {
            const RatArgSpec arg = {.name = model_sizes[s], .type = RAT_ARG_INT, .min = 0, .max = RAT_ARG_NO_LIMIT};
            parse_arg(reg, &arg, val, sizes[s], "model", &d, 0);
            found = TRUE;
          }
        if (!found) unknown_key(&d, k, "model", valid);
      }
      g_free(valid);
    }
  }
done:
  if (!diag_finish(&d, error)) {
    rat_experiment_free(exp);
    return NULL;
  }
  return exp;
}

char *rat_experiment_resolved_yaml(RatRegistry *reg, const RatExperiment *exp) {
  GString *out = g_string_new(NULL);
  g_string_append_printf(out, "# resolved from %s: every default filled in\n", exp->path);
  RatConfigNode *desc = rat_config_get(exp->root, "description");
  if (desc && desc->kind == RAT_NODE_SCALAR) {
    g_string_append(out, "description: ");
    write_scalar(out, desc->value, TRUE);
    g_string_append_c(out, '\n');
  }
  g_string_append_printf(out, "seed: %" G_GINT64_FORMAT "\n", exp->seed);
  if (exp->out) {
    g_string_append(out, "out: ");
    write_scalar(out, exp->out, TRUE);
    g_string_append_c(out, '\n');
  }
  if (exp->requires->len) {
    g_string_append(out, "requires:\n");
    for (guint i = 0; i < exp->requires->len; i++) {
      g_string_append(out, "  - ");
      write_scalar(out, exp->requires->pdata[i], TRUE);
      g_string_append_c(out, '\n');
    }
  }
  if (exp->task) {
    g_string_append(out, "task: ");
    write_scalar(out, exp->task->type_name, TRUE);
    g_string_append(out, "\n");
  }
  const struct {
    const char *name;
    const RatModuleSpec *spec;
    gboolean task;
  } secs[] = {{"train", exp->task, TRUE}, {"data", exp->data, FALSE}, {"loss", exp->loss, FALSE},
              {"sample", exp->sample, TRUE}, {"eval", exp->eval, TRUE}};
  for (guint i = 0; i < G_N_ELEMENTS(secs); i++) {
    const RatModuleSpec *s = secs[i].spec;
    if (!s) continue;
    if (s == exp->eval) {
      emit_eval(out, reg, s);
      continue;
    }
    const RatModuleType *type = rat_registry_lookup(reg, s->type_name);
    if (!type) continue;
    if (secs[i].task) {
      if (!type->n_args) continue;
      g_string_append_printf(out, "%s:\n", secs[i].name);
      gpointer opts = g_malloc0(MAX(type->options_size, 1));
      if (rat_args_parse(reg, type->args, type->n_args, s->node, opts, NULL)) {
        emit_args(out, reg, type->args, type->n_args, opts, 2);
        rat_args_clear(type->args, type->n_args, opts);
      }
      g_free(opts);
    } else {
      g_string_append_printf(out, "%s:", secs[i].name);
      emit_spec(out, reg, s, 2);
    }
  }
  gboolean any = FALSE;
  const gint64 sizes[] = {exp->sizes.channels, exp->sizes.out_channels, exp->sizes.cond_dim, exp->sizes.z_dim,
                          exp->sizes.image_size};
  for (guint i = 0; i < rat_n_model_slots; i++) any |= exp->model[i] != NULL;
  for (guint i = 0; i < G_N_ELEMENTS(sizes); i++) any |= sizes[i] != 0;
  if (any) {
    g_string_append(out, "model:\n");
    for (guint i = 0; i < G_N_ELEMENTS(sizes); i++)
      if (sizes[i]) g_string_append_printf(out, "  %s: %" G_GINT64_FORMAT "\n", model_sizes[i], sizes[i]);
    for (guint i = 0; i < rat_n_model_slots; i++) {
      if (!exp->model[i]) continue;
      g_string_append_printf(out, "  %s:", rat_model_slots[i].name);
      emit_spec(out, reg, exp->model[i], 4);
    }
  }
  return g_string_free(out, FALSE);
}
