/* Sweep files (docs/ablations.md): a base experiment, named variants (KEY.PATH=VALUE lists or mappings merged
 * into the base), seeds, a baseline, common overrides and the eval: section. Loading validates every
 * (variant, seed) experiment with core/config.c's machinery, so every error names file:line:column, and gives each
 * run its identity: the sha256 of its resolved config without the sections that do not change what is trained. */
#include "config.h"

#include <ratfw/ablate.h>
#include <ratfw/error.h>
#include <ratfw/gan.h>

#include <stdarg.h>
#include <string.h>

static const char *const sweep_keys[] = {"description", "base", "seeds", "baseline", "set", "variants", "eval", "out",
                                         NULL};

/* ---- errors: all of them, one line each ------------------------------------------------------------------- */

typedef struct {
  GString *msg;
  int code;
  guint n;
} Errors;

static void errors_line(Errors *e, int code, const char *line) {
  if (e->n) g_string_append_c(e->msg, '\n');
  g_string_append(e->msg, line);
  if (e->n == 0) e->code = code;
  e->n++;
}

static void errors_add(Errors *e, const RatConfigNode *n, int code, const char *fmt, ...) G_GNUC_PRINTF(4, 5);
static void errors_add(Errors *e, const RatConfigNode *n, int code, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  char *text = g_strdup_vprintf(fmt, ap);
  va_end(ap);
  char *mark = rat_config_mark(n);
  char *line = g_strdup_printf("%s: %s", mark, text);
  errors_line(e, code, line);
  g_free(line);
  g_free(mark);
  g_free(text);
}

/* Length of a leading "file:line:column: " (0 when @s does not start with one). */
static gsize mark_prefix(const char *s) {
  const char *p = s;
  for (;;) {
    const char *colon = strchr(p, ':');
    if (!colon) return 0;
    const char *q = colon + 1, *d1 = q;
    while (g_ascii_isdigit(*q)) q++;
    if (q > d1 && *q == ':') {
      const char *d2 = ++q;
      while (g_ascii_isdigit(*q)) q++;
      if (q > d2 && q[0] == ':' && q[1] == ' ') return (gsize)(q + 2 - s);
    }
    p = colon + 1;
  }
}

/* Each line of @msg as "file:line:column: variant 'NAME': message". */
static void errors_add_variant(Errors *e, int code, const char *variant, const char *msg) {
  char **lines = g_strsplit(msg, "\n", -1);
  for (guint i = 0; lines[i]; i++) {
    if (!*lines[i]) continue;
    gsize k = mark_prefix(lines[i]);
    char *line = g_strdup_printf("%.*svariant '%s': %s", (int)k, lines[i], variant, lines[i] + k);
    errors_line(e, code, line);
    g_free(line);
  }
  g_strfreev(lines);
}

static gboolean errors_finish(Errors *e, GError **error) {
  gboolean ok = e->n == 0;
  if (!ok) g_set_error_literal(error, RAT_ERROR, e->code, e->msg->str);
  g_string_free(e->msg, TRUE);
  return ok;
}

/* ---- small helpers ----------------------------------------------------------------------------------------- */

/* A path written in a file, relative to that file's directory (to the working directory for --set values). */
static char *node_path(const RatConfigNode *n) {
  if (g_path_is_absolute(n->value)) return g_canonicalize_filename(n->value, NULL);
  char *dir = n->file[0] != '<' && strncmp(n->file, "--set", 5) ? g_path_get_dirname(n->file) : g_strdup(".");
  char *abs_dir = g_canonicalize_filename(dir, NULL);
  char *p = g_canonicalize_filename(n->value, abs_dir);
  g_free(abs_dir);
  g_free(dir);
  return p;
}

static gboolean is_scalar(const RatConfigNode *n) { return n && n->kind == RAT_NODE_SCALAR && !rat_config_is_null(n); }

static gboolean valid_variant_name(const char *s) {
  if (!g_ascii_isalnum(s[0])) return FALSE;
  for (const char *p = s; *p; p++)
    if (!g_ascii_isalnum(*p) && !strchr("_.+-", *p)) return FALSE;
  return TRUE;
}

static char *sha256_hex(const char *text) {
  return g_compute_checksum_for_string(G_CHECKSUM_SHA256, text, -1);
}

/* @yaml without its leading comment lines ("# resolved from PATH ..."): the path of the file is not a setting. */
static const char *skip_comments(const char *yaml) {
  while (yaml[0] == '#') {
    const char *nl = strchr(yaml, '\n');
    if (!nl) return yaml + strlen(yaml);
    yaml = nl + 1;
  }
  return yaml;
}

/* A value on one line for --set: YAML flow style. */
static void flow(GString *o, const RatConfigNode *n) {
  if (n->kind == RAT_NODE_SEQ || n->kind == RAT_NODE_MAP) {
    g_string_append_c(o, n->kind == RAT_NODE_SEQ ? '[' : '{');
    for (guint i = 0; i < n->values->len; i++) {
      if (i) g_string_append(o, ", ");
      if (n->kind == RAT_NODE_MAP) {
        flow(o, n->keys->pdata[i]);
        g_string_append(o, ": ");
      }
      flow(o, n->values->pdata[i]);
    }
    g_string_append_c(o, n->kind == RAT_NODE_SEQ ? ']' : '}');
    return;
  }
  if (rat_config_is_null(n)) {
    g_string_append_c(o, '~');
    return;
  }
  const char *v = n->value;
  gboolean plain = !n->quoted && *v && !strpbrk(v, ",[]{}:#\"'\\&*!|>%@`\n") && v[0] != ' ' && v[0] != '-' &&
                   v[0] != '?' && v[strlen(v) - 1] != ' ';
  /* a negative number stays a number */
  if (!n->quoted && v[0] == '-' && v[1] && !strpbrk(v, ",[]{}:#\"' ")) plain = TRUE;
  if (plain) {
    g_string_append(o, v);
    return;
  }
  g_string_append_c(o, '"');
  for (const char *p = v; *p; p++) {
    if (*p == '"' || *p == '\\') g_string_append_printf(o, "\\%c", *p);
    else if (*p == '\n') g_string_append(o, "\\n");
    else g_string_append_c(o, *p);
  }
  g_string_append_c(o, '"');
}

/* Applies a variant's (or the common) overrides: a list of KEY.PATH=VALUE or a mapping merged into @tree. */
static gboolean apply_overrides(RatConfigNode *tree, const RatConfigNode *over, GError **error) {
  if (!over || rat_config_is_null(over)) return TRUE;
  if (over->kind == RAT_NODE_MAP) {
    rat_config_merge(tree, over);
    return TRUE;
  }
  for (guint i = 0; i < over->values->len; i++) {
    const RatConfigNode *it = over->values->pdata[i];
    if (!rat_config_set_at(tree, it->value, it, error)) return FALSE;
  }
  return TRUE;
}

/* Checks the form of an override list/mapping (its items must be KEY.PATH=VALUE strings). */
static void check_overrides(Errors *e, const RatConfigNode *n, const char *what) {
  if (!n || rat_config_is_null(n) || n->kind == RAT_NODE_MAP) return;
  if (n->kind != RAT_NODE_SEQ) {
    errors_add(e, n, RAT_ERROR_CONFIG,
               "%s: expects a list of KEY.PATH=VALUE overrides or a mapping merged into the base experiment, got '%s'",
               what, n->value);
    return;
  }
  for (guint i = 0; i < n->values->len; i++) {
    const RatConfigNode *it = n->values->pdata[i];
    if (!is_scalar(it) || !strchr(it->value, '=') || it->value[0] == '=')
      errors_add(e, it, RAT_ERROR_CONFIG, "%s: item %u expects KEY.PATH=VALUE (for example train.steps=1000)", what,
                 i);
  }
}

/* The tree of one (variant, seed): base, then the common overrides, the variant's, the command line's, the seed. */
static RatConfigNode *variant_tree(const RatSweep *s, const RatConfigNode *base, guint v, gint64 seed,
                                   GError **error) {
  RatConfigNode *t = rat_config_node_copy(base);
  const RatSweepVariant *var = s->variants->pdata[v];
  gboolean ok = apply_overrides(t, s->common, error) && apply_overrides(t, var->node, error);
  for (guint i = 0; ok && i < s->sets->len; i++) ok = rat_config_set(t, s->sets->pdata[i], error);
  if (ok) {
    char *a = g_strdup_printf("seed=%" G_GINT64_FORMAT, seed);
    ok = rat_config_set(t, a, error);
    g_free(a);
  }
  if (!ok) {
    rat_config_node_unref(t);
    return NULL;
  }
  return t;
}

/* A copy of @tree keeping only the keys in @keep (NULL-terminated). */
static RatConfigNode *keep_only(const RatConfigNode *tree, const char *const *keep) {
  RatConfigNode *c = rat_config_node_copy(tree);
  for (guint i = c->keys->len; i-- > 0;) {
    const char *k = ((RatConfigNode *)c->keys->pdata[i])->value;
    gboolean kept = FALSE;
    for (guint j = 0; keep[j]; j++) kept |= !strcmp(k, keep[j]);
    if (!kept) rat_config_remove(c, k);
  }
  return c;
}

/* ---- identity ------------------------------------------------------------------------------------------------ */

/* @yaml without (@keep FALSE) or with only (@keep TRUE) the top-level block "NAME:": its line and the indented
 * lines under it. */
static char *yaml_block(const char *yaml, const char *name, gboolean keep) {
  GString *o = g_string_new(NULL);
  gsize nlen = strlen(name);
  gboolean in = FALSE;
  for (const char *p = yaml; *p;) {
    const char *nl = strchr(p, '\n');
    gsize len = nl ? (gsize)(nl - p + 1) : strlen(p);
    if (p[0] != ' ' && p[0] != '\n') in = !strncmp(p, name, nlen) && p[nlen] == ':';
    if (in == keep) g_string_append_len(o, p, (gssize)len);
    p += len;
  }
  return g_string_free(o, FALSE);
}

static char *identity_yaml(RatRegistry *reg, const RatConfigNode *root, const char *path, RatExperiment **exp_out,
                           GError **error) {
  RatConfigNode *c = rat_config_node_copy(root);
  rat_config_remove(c, "eval");
  rat_config_remove(c, "out");
  rat_config_remove(c, "description");
  RatExperiment *exp = rat_experiment_load_tree(reg, c, path, error);
  rat_config_node_unref(c);
  if (!exp) return NULL;
  char *yaml = rat_experiment_resolved_yaml(reg, exp);
  /* the resolved config may spell out the eval: defaults even without the section: not a training setting */
  char *body = yaml_block(skip_comments(yaml), "eval", FALSE);
  g_free(yaml);
  if (exp_out) *exp_out = exp;
  else rat_experiment_free(exp);
  return body;
}

char *rat_sweep_identity(RatRegistry *reg, const RatExperiment *exp) {
  GError *e = NULL;
  char *body = identity_yaml(reg, exp->root, exp->path, NULL, &e);
  if (!body) {
    /* a validated experiment stays valid without those sections; be safe anyway */
    g_warning("rat_sweep_identity: %s", e->message);
    g_error_free(e);
    return NULL;
  }
  char *id = sha256_hex(body);
  g_free(body);
  return id;
}

/* ---- loading --------------------------------------------------------------------------------------------------- */

gboolean rat_sweep_file_is_sweep(const char *path) {
  RatConfigNode *root = rat_config_parse_file(path, NULL);
  gboolean yes = root && rat_config_get(root, "variants") != NULL;
  if (root) rat_config_node_unref(root);
  return yes;
}

static void run_free(RatSweepRun *r) {
  if (!r) return;
  g_free(r->id);
  g_free(r->experiment);
  rat_experiment_free(r->exp);
  g_free(r->eval_id);
  g_free(r->eval_yaml);
  if (r->eval_sets) g_ptr_array_unref(r->eval_sets);
  g_free(r);
}

static void variant_free(RatSweepVariant *v) {
  g_free(v->name);
  if (v->node) rat_config_node_unref(v->node);
  g_free(v);
}

void rat_sweep_free(RatSweep *s) {
  if (!s) return;
  g_free(s->path);
  g_free(s->name);
  g_free(s->description);
  g_free(s->base);
  g_free(s->out);
  if (s->root) rat_config_node_unref(s->root);
  if (s->common) rat_config_node_unref(s->common);
  if (s->sets) g_ptr_array_unref(s->sets);
  if (s->variants) g_ptr_array_unref(s->variants);
  if (s->seeds) g_array_unref(s->seeds);
  if (s->runs) g_ptr_array_unref(s->runs);
  g_free(s);
}

/* Reads the top-level keys of the sweep (not the experiments). */
static void parse_sweep(RatSweep *s, Errors *e) {
  RatConfigNode *root = s->root;
  for (guint i = 0; i < root->keys->len; i++) {
    RatConfigNode *k = root->keys->pdata[i];
    gboolean known = FALSE;
    for (guint j = 0; sweep_keys[j]; j++) known |= !strcmp(k->value, sweep_keys[j]);
    if (known) continue;
    const char *near = rat_closest_name(k->value, sweep_keys);
    if (near) errors_add(e, k, RAT_ERROR_CONFIG, "sweep: unknown key '%s' (did you mean '%s'?)", k->value, near);
    else
      errors_add(e, k, RAT_ERROR_CONFIG,
                 "sweep: unknown key '%s' (valid keys: description, base, seeds, baseline, set, variants, eval, out)",
                 k->value);
  }
  RatConfigNode *v = rat_config_get(root, "description");
  if (v && !rat_config_is_null(v)) {
    if (v->kind != RAT_NODE_SCALAR) errors_add(e, v, RAT_ERROR_CONFIG, "description: expects a string");
    else s->description = g_strdup(v->value);
  }
  v = rat_config_get(root, "base");
  if (!v) {
    errors_add(e, root, RAT_ERROR_CONFIG, "sweep: missing required key 'base' (the experiment file the variants "
               "change, relative to this file)");
  } else if (!is_scalar(v)) {
    errors_add(e, v, RAT_ERROR_CONFIG, "base: expects an experiment file name");
  } else {
    s->base = node_path(v);
    if (!g_file_test(s->base, G_FILE_TEST_IS_REGULAR))
      errors_add(e, v, RAT_ERROR_IO, "base: experiment '%s' does not exist (looked for %s)", v->value, s->base);
  }
  v = rat_config_get(root, "out");
  if (v && !rat_config_is_null(v)) {
    if (!is_scalar(v)) errors_add(e, v, RAT_ERROR_CONFIG, "out: expects a directory name");
    else s->out = node_path(v);
  }
  /* seeds */
  v = rat_config_get(root, "seeds");
  if (!v) {
    errors_add(e, root, RAT_ERROR_CONFIG, "sweep: missing required key 'seeds' (a list such as [1, 2, 3])");
  } else if (v->kind != RAT_NODE_SEQ || v->values->len == 0) {
    errors_add(e, v, RAT_ERROR_CONFIG, "seeds: expects a non-empty list of integers such as [1, 2, 3]");
  } else {
    for (guint i = 0; i < v->values->len; i++) {
      RatConfigNode *it = v->values->pdata[i];
      gint64 seed = 0;
      if (!is_scalar(it) || it->quoted ||
          !g_ascii_string_to_signed(it->value, 10, 0, G_MAXINT64, &seed, NULL)) {
        errors_add(e, it, RAT_ERROR_CONFIG, "seeds: item %u expects an integer >= 0, got '%s'", i,
                   it->kind == RAT_NODE_SCALAR ? it->value : "a collection");
        continue;
      }
      gboolean dup = FALSE;
      for (guint j = 0; j < s->seeds->len; j++) dup |= g_array_index(s->seeds, gint64, j) == seed;
      if (dup) errors_add(e, it, RAT_ERROR_CONFIG, "seeds: %" G_GINT64_FORMAT " is listed twice", seed);
      else g_array_append_val(s->seeds, seed);
    }
  }
  /* common overrides */
  v = rat_config_get(root, "set");
  if (v && !rat_config_is_null(v)) {
    check_overrides(e, v, "set");
    s->common = rat_config_node_ref(v);
  }
  /* variants */
  v = rat_config_get(root, "variants");
  if (!v || v->kind != RAT_NODE_MAP || v->keys->len == 0) {
    errors_add(e, v ? v : root, RAT_ERROR_CONFIG,
               "variants: expects a mapping of variant names to overrides (a list of KEY.PATH=VALUE, or a mapping "
               "merged into the base; [] for the base as it is)");
  } else {
    for (guint i = 0; i < v->keys->len; i++) {
      RatConfigNode *k = v->keys->pdata[i], *val = v->values->pdata[i];
      if (!valid_variant_name(k->value))
        errors_add(e, k, RAT_ERROR_CONFIG,
                   "variants: name '%s' may hold only letters, digits and _ . + - (it names files and table rows)",
                   k->value);
      char *what = g_strdup_printf("variant '%s'", k->value);
      check_overrides(e, val, what);
      g_free(what);
      RatSweepVariant *var = g_new0(RatSweepVariant, 1);
      var->name = g_strdup(k->value);
      var->node = rat_config_node_ref(val);
      g_ptr_array_add(s->variants, var);
    }
  }
  /* baseline */
  v = rat_config_get(root, "baseline");
  if (v && !rat_config_is_null(v)) {
    int idx = is_scalar(v) ? rat_sweep_variant_index(s, v->value) : -1;
    if (idx < 0 && s->variants->len) {
      const char **names = g_new0(const char *, s->variants->len + 1);
      for (guint i = 0; i < s->variants->len; i++) names[i] = ((RatSweepVariant *)s->variants->pdata[i])->name;
      const char *near = is_scalar(v) ? rat_closest_name(v->value, names) : NULL;
      char *all = g_strjoinv(", ", (char **)names);
      errors_add(e, v, RAT_ERROR_CONFIG, "baseline: '%s' is not a variant%s%s%s (variants: %s)",
                 v->kind == RAT_NODE_SCALAR ? v->value : "?", near ? " (did you mean '" : "", near ? near : "",
                 near ? "'?)" : "", all);
      g_free(all);
      g_free(names);
    } else if (idx >= 0) {
      s->baseline = (guint)idx;
    }
  }
  v = rat_config_get(root, "eval");
  if (!v || rat_config_is_null(v))
    errors_add(e, v ? v : root, RAT_ERROR_CONFIG,
               "sweep: missing required key 'eval' (what ratfw eval measures, e.g. eval: {metrics: [fid], samples: "
               "2000}; the keys of the experiment's eval: section)");
  else if (v->kind != RAT_NODE_MAP)
    errors_add(e, v, RAT_ERROR_CONFIG, "eval: expects a mapping (the keys of an experiment's eval: section)");
}

/* The resolved eval: section of @tree (an experiment tree with its eval: merged): its text and its keys as
 * --set assignments. */
static gboolean resolve_eval(RatRegistry *reg, const RatConfigNode *tree, const char *path, RatSweepRun *run,
                             GError **error) {
  static const char *const keep[] = {"eval", NULL};
  RatConfigNode *c = keep_only(tree, keep);
  RatExperiment *exp = rat_experiment_load_tree(reg, c, path, error);
  rat_config_node_unref(c);
  if (!exp) return FALSE;
  char *yaml = rat_experiment_resolved_yaml(reg, exp);
  rat_experiment_free(exp);
  run->eval_yaml = yaml_block(yaml, "eval", TRUE);
  g_free(yaml);
  if (!*run->eval_yaml) {
    g_free(run->eval_yaml);
    run->eval_yaml = g_strdup("eval: {}\n");
  }
  run->eval_id = sha256_hex(run->eval_yaml);
  run->eval_sets = g_ptr_array_new_with_free_func(g_free);
  RatConfigNode *parsed = rat_config_parse_string(run->eval_yaml, -1, "<resolved eval>", error);
  if (!parsed) return FALSE;
  RatConfigNode *ev = rat_config_get(parsed, "eval");
  for (guint i = 0; ev && ev->kind == RAT_NODE_MAP && i < ev->keys->len; i++) {
    GString *a = g_string_new("eval.");
    g_string_append(a, ((RatConfigNode *)ev->keys->pdata[i])->value);
    g_string_append_c(a, '=');
    flow(a, ev->values->pdata[i]);
    g_ptr_array_add(run->eval_sets, g_string_free(a, FALSE));
  }
  rat_config_node_unref(parsed);
  return TRUE;
}

static gint64 resolved_steps(const char *yaml) {
  RatConfigNode *r = rat_config_parse_string(yaml, -1, "<resolved>", NULL);
  gint64 steps = 0;
  RatConfigNode *n = r ? rat_config_lookup(r, "train.steps") : NULL;
  if (is_scalar(n)) g_ascii_string_to_signed(n->value, 10, 0, G_MAXINT64, &steps, NULL);
  if (r) rat_config_node_unref(r);
  return steps;
}

RatSweep *rat_sweep_load(RatRegistry *reg, const char *path, const char *const *sets, GError **error) {
  RatConfigNode *root = rat_config_load(path, NULL, error);
  if (!root) return NULL;
  RatSweep *s = g_new0(RatSweep, 1);
  s->root = root;
  s->path = g_canonicalize_filename(path, NULL);
  char *bn = g_path_get_basename(path);
  if (g_str_has_suffix(bn, ".yaml") || g_str_has_suffix(bn, ".yml")) *strrchr(bn, '.') = 0;
  s->name = bn;
  s->sets = g_ptr_array_new_with_free_func(g_free);
  for (guint i = 0; sets && sets[i]; i++) g_ptr_array_add(s->sets, g_strdup(sets[i]));
  s->variants = g_ptr_array_new_with_free_func((GDestroyNotify)variant_free);
  s->seeds = g_array_new(FALSE, FALSE, sizeof(gint64));
  s->runs = g_ptr_array_new_with_free_func((GDestroyNotify)run_free);
  Errors e = {.msg = g_string_new(NULL), .code = RAT_ERROR_CONFIG};
  if (root->kind != RAT_NODE_MAP) {
    errors_add(&e, root, RAT_ERROR_CONFIG, "a sweep file must be a mapping (base:, seeds:, variants:, eval:, ...)");
    errors_finish(&e, error);
    rat_sweep_free(s);
    return NULL;
  }
  parse_sweep(s, &e);
  if (e.n) {
    errors_finish(&e, error);
    rat_sweep_free(s);
    return NULL;
  }
  GError *le = NULL;
  RatConfigNode *base = rat_config_load(s->base, NULL, &le);
  if (!base) {
    char *mark = rat_config_mark(rat_config_get(root, "base"));
    g_set_error(error, RAT_ERROR, le->code, "%s\n%s: (the sweep's base)", le->message, mark);
    g_free(mark);
    g_error_free(le);
    g_string_free(e.msg, TRUE);
    rat_sweep_free(s);
    return NULL;
  }
  static const char *const keep_eval[] = {"eval", NULL};
  RatConfigNode *sweep_eval = keep_only(root, keep_eval);
  /* every variant with every seed; a variant's errors are reported once */
  RatSweepRun **grid = g_new0(RatSweepRun *, s->variants->len * s->seeds->len);
  for (guint v = 0; v < s->variants->len; v++) {
    const char *vname = ((RatSweepVariant *)s->variants->pdata[v])->name;
    for (guint k = 0; k < s->seeds->len; k++) {
      gint64 seed = g_array_index(s->seeds, gint64, k);
      RatConfigNode *t = variant_tree(s, base, v, seed, &le);
      RatConfigNode *tv = NULL;
      RatExperiment *check = NULL;
      if (t) {
        /* validated with the sweep's eval: merged in, so the eval type checks those keys too */
        tv = rat_config_node_copy(t);
        rat_config_merge(tv, sweep_eval);
        check = rat_experiment_load_tree(reg, tv, s->base, &le);
      }
      RatSweepRun *run = NULL;
      if (check) {
        run = g_new0(RatSweepRun, 1);
        run->variant = v;
        run->seed = seed;
        char *body = identity_yaml(reg, t, s->base, &run->exp, &le);
        if (body) {
          run->id = sha256_hex(body);
          run->experiment =
              g_strdup_printf("# %s: variant %s, seed %" G_GINT64_FORMAT " (ratfw ablate; base %s)\n%s", s->path,
                              vname, seed, s->base, body);
          run->steps = resolved_steps(body);
          g_free(body);
          if (!resolve_eval(reg, tv, s->base, run, &le)) g_clear_pointer(&run, run_free);
        } else {
          g_clear_pointer(&run, run_free);
        }
        rat_experiment_free(check);
      }
      if (tv) rat_config_node_unref(tv);
      if (t) rat_config_node_unref(t);
      if (!run) {
        errors_add_variant(&e, le->code, vname, le->message);
        g_clear_error(&le);
        break;
      }
      grid[v * s->seeds->len + k] = run;
    }
  }
  rat_config_node_unref(sweep_eval);
  rat_config_node_unref(base);
  for (guint k = 0; k < s->seeds->len; k++)
    for (guint v = 0; v < s->variants->len; v++)
      if (grid[v * s->seeds->len + k]) g_ptr_array_add(s->runs, grid[v * s->seeds->len + k]);
  g_free(grid);
  if (!errors_finish(&e, error)) {
    rat_sweep_free(s);
    return NULL;
  }
  return s;
}

int rat_sweep_variant_index(const RatSweep *s, const char *name) {
  for (guint i = 0; i < s->variants->len; i++)
    if (!strcmp(((RatSweepVariant *)s->variants->pdata[i])->name, name)) return (int)i;
  return -1;
}

gboolean rat_sweep_check_build(RatRegistry *reg, const RatSweepRun *run, GError **error) {
  if (!run->exp->task || strcmp(run->exp->task->type_name, "train_gan")) return TRUE;
  RatGan *gan = rat_gan_build(reg, run->exp, (guint64)run->seed, TRUE, FALSE, error);
  if (!gan) return FALSE;
  rat_gan_free(gan);
  return TRUE;
}

char *rat_sweep_out_dir(const RatSweep *s, const char *out) {
  if (out) return g_canonicalize_filename(out, NULL);
  if (s->out) return g_strdup(s->out);
  char *rel = g_build_filename("runs", s->name, NULL);
  char *abs = g_canonicalize_filename(rel, NULL);
  g_free(rel);
  return abs;
}

char *rat_sweep_run_dir(const char *out, const RatSweepRun *run) {
  char *short_id = g_strndup(run->id, 16);
  char *d = g_build_filename(out, "runs", short_id, NULL);
  g_free(short_id);
  return d;
}
