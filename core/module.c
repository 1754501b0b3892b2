/* Module instances: built from a validated spec (argument table -> options struct, then the type's build), kept
 * in a tree with dotted paths, parameters created in the RatParams arena under that path, and the profiling hooks
 * `ratfw inspect` uses (output shapes per module, FLOPs reported by kernels). */
#include "config.h"

#include "ratfw-private.h"
#include "registry-private.h"

#include <ratfw/config.h>
#include <ratfw/error.h>
#include <ratfw/module.h>

#include <string.h>

/* ---- building ------------------------------------------------------------------------------------------------ */

/* Does @msg open with "file:line:column: " (an error a module located itself, e.g. at a generator's stage)? */
static gboolean starts_with_mark(const char *msg) {
  return g_regex_match_simple("^[^ :][^:]*:[0-9]+:[0-9]+: ", msg, 0, 0);
}

static RatModule *build_module(RatRegistry *reg, RatModule *parent, const RatModuleSpec *spec, const char *path,
                               RatModuleKind kind, const RatBuildContext *ctx, GError **error) {
  const RatModuleType *type = rat_registry_lookup(reg, spec->type_name);
  if (!type) {
    GPtrArray *all = rat_registry_types(reg, kind);
    GString *names = g_string_new(NULL);
    for (guint i = 0; i < all->len; i++)
      g_string_append_printf(names, "%s%s", i ? ", " : "", ((const RatModuleType *)all->pdata[i])->name);
    char *mark = rat_config_mark(spec->node);
    g_set_error(error, RAT_ERROR, RAT_ERROR_NOT_FOUND, "%s: %s: unknown %s type '%s' (installed: %s)", mark, path,
                rat_module_kind_name(kind), spec->type_name, names->len ? names->str : "(none)");
    g_free(mark);
    g_string_free(names, TRUE);
    g_ptr_array_unref(all);
    return NULL;
  }
  if (kind != RAT_KIND_N && type->kind != kind) {
    char *mark = rat_config_mark(spec->node);
    g_set_error(error, RAT_ERROR, RAT_ERROR_CONFIG, "%s: %s: type '%s' is a %s, expected a %s", mark, path,
                type->name, rat_module_kind_name(type->kind), rat_module_kind_name(kind));
    g_free(mark);
    return NULL;
  }
  RatModule *m = g_new0(RatModule, 1);
  m->type = type;
  m->path = g_strdup(path);
  m->parent = parent;
  m->children = g_ptr_array_new();
  m->params = g_ptr_array_new();
  m->training = TRUE;
  m->registry = reg;
  m->node = spec->node ? rat_config_node_ref(spec->node) : NULL;
  m->options = g_malloc0(MAX(type->options_size, 1));
  char *what = g_strdup_printf("%s (%s)", path, type->name);
  gboolean args_ok = rat_args_parse_what(reg, type->args, type->n_args, spec->node, m->options, what, error);
  g_free(what);
  if (!args_ok) {
    g_free(m->options);
    m->options = NULL;
    rat_module_free(m);
    return NULL;
  }
  GError *e = NULL;
  if (type->check && !type->check(type, m->options, ctx, &e)) {
    char *mark = rat_config_mark(spec->node);
    g_set_error(error, RAT_ERROR, RAT_ERROR_CONFIG, "%s: %s (%s): %s", mark, path, type->name,
                e ? e->message : "invalid arguments");
    g_free(mark);
    g_clear_error(&e);
    rat_module_free(m);
    return NULL;
  }
  m->priv = g_malloc0(MAX(type->priv_size, 1));
  if (!type->build(m, ctx, &e)) {
    if (e && (g_str_has_prefix(e->message, path) || starts_with_mark(e->message))) g_propagate_error(error, e);
    else {
      g_set_error(error, e ? e->domain : RAT_ERROR, e ? e->code : RAT_ERROR_FAILED, "%s (%s): %s", path, type->name,
                  e ? e->message : "build failed");
      g_clear_error(&e);
    }
    rat_module_free(m);
    return NULL;
  }
  return m;
}

RatModule *rat_module_build(RatRegistry *reg, const RatModuleSpec *spec, const char *path, RatModuleKind kind,
                            const RatBuildContext *ctx, GError **error) {
  return build_module(reg, NULL, spec, path, kind, ctx, error);
}

RatModule *rat_module_build_child(RatModule *parent, const RatModuleSpec *spec, const char *name, RatModuleKind kind,
                                  const RatBuildContext *ctx, GError **error) {
  char *path = g_strdup_printf("%s.%s", parent->path, name);
  RatModule *m = build_module(parent->registry, parent, spec, path, kind, ctx, error);
  g_free(path);
  if (m) g_ptr_array_add(parent->children, m);
  return m;
}

/* A mapping from "key=value" overrides (NULL when there are none); FALSE on a malformed override. */
static gboolean overrides_node(const char *what, const char *const *overrides, RatConfigNode **out, GError **error) {
  *out = NULL;
  if (!overrides || !overrides[0]) return TRUE;
  char *src = g_strdup_printf("<%s>", what);
  RatConfigNode *node = rat_config_parse_string("{}", -1, src, error);
  g_free(src);
  for (guint i = 0; node && overrides[i]; i++)
    if (!rat_config_set(node, overrides[i], error)) g_clear_pointer(&node, rat_config_node_unref);
  *out = node;
  return node != NULL;
}

RatModule *rat_module_build_named(RatRegistry *reg, const char *type_name, const char *path, RatModuleKind kind,
                                  const char *const *overrides, const RatBuildContext *ctx, GError **error) {
  RatConfigNode *node;
  if (!overrides_node(path, overrides, &node, error)) return NULL;
  RatModuleSpec spec = {.type_name = (char *)type_name, .node = node};
  RatModule *m = build_module(reg, NULL, &spec, path, kind, ctx, error);
  if (node) rat_config_node_unref(node);
  return m;
}

RatModule *rat_module_build_child_named(RatModule *parent, const char *type_name, const char *name,
                                        const char *const *overrides, const RatBuildContext *ctx, GError **error) {
  char *what = g_strdup_printf("%s.%s", parent->path, name);
  RatConfigNode *node;
  gboolean ok = overrides_node(what, overrides, &node, error);
  g_free(what);
  if (!ok) return NULL;
  RatModuleSpec spec = {.type_name = (char *)type_name, .node = node};
  RatModule *m = rat_module_build_child(parent, &spec, name, RAT_KIND_N, ctx, error);
  if (node) rat_config_node_unref(node);
  return m;
}

void rat_module_free(RatModule *m) {
  if (!m) return;
  for (guint i = m->children->len; i-- > 0;) rat_module_free(m->children->pdata[i]);
  if (m->type->finalize && m->priv) m->type->finalize(m);
  if (m->options) rat_args_clear(m->type->args, m->type->n_args, m->options);
  g_free(m->options);
  g_free(m->priv);
  if (m->node) rat_config_node_unref(m->node);
  g_ptr_array_unref(m->children);
  g_ptr_array_unref(m->params);
  g_free(m->path);
  g_free(m);
}

static RatTensor *module_add(RatModule *m, const RatBuildContext *ctx, const char *name, RatShape shape,
                             RatParamKind kind) {
  rat_check(ctx && ctx->params, "%s: rat_module_param without ctx->params", m->path);
  char *full = g_strdup_printf("%s.%s", m->path, name);
  RatTensor *t = rat_params_add(ctx->params, full, shape, kind);
  g_free(full);
  g_ptr_array_add(m->params, t);
  return t;
}

RatTensor *rat_module_param(RatModule *m, const RatBuildContext *ctx, const char *name, RatShape shape) {
  return module_add(m, ctx, name, shape, RAT_PARAM_TRAINABLE);
}

RatTensor *rat_module_frozen(RatModule *m, const RatBuildContext *ctx, const char *name, RatShape shape) {
  return module_add(m, ctx, name, shape, RAT_PARAM_FROZEN);
}

RatTensor *rat_module_buffer(RatModule *m, const RatBuildContext *ctx, const char *name, RatShape shape) {
  return module_add(m, ctx, name, shape, RAT_PARAM_BUFFER);
}

void rat_module_set_training(RatModule *m, gboolean training) {
  m->training = training;
  for (guint i = 0; i < m->children->len; i++) rat_module_set_training(m->children->pdata[i], training);
}

/* ---- conditioner state ---------------------------------------------------------------------------------------- */

struct _RatCondState {
  GHashTable *map; /* key -> RatTensor* (owned reference) */
  RatTensor *noise;
};

RatCondState *rat_cond_state_new(void) {
  RatCondState *s = g_new0(RatCondState, 1);
  s->map = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, (GDestroyNotify)rat_tensor_unref);
  return s;
}

void rat_cond_state_free(RatCondState *s) {
  if (!s) return;
  g_hash_table_unref(s->map);
  if (s->noise) rat_tensor_unref(s->noise);
  g_free(s);
}

RatTensor *rat_cond_state_get(RatCondState *s, const char *key) { return s ? g_hash_table_lookup(s->map, key) : NULL; }

void rat_cond_state_set(RatCondState *s, const char *key, RatTensor *t) {
  if (t) g_hash_table_replace(s->map, g_strdup(key), rat_tensor_ref(t));
  else g_hash_table_remove(s->map, key);
}

void rat_cond_state_set_noise(RatCondState *s, RatTensor *z) {
  if (z) rat_tensor_ref(z);
  if (s->noise) rat_tensor_unref(s->noise);
  s->noise = z;
}

RatTensor *rat_cond_state_noise(RatCondState *s) { return s ? s->noise : NULL; }

/* ---- forward wrappers ---------------------------------------------------------------------------------------- */

RatTensor *rat_conditioner_forward(RatModule *m, RatTensor *x, RatTensor *cond, RatCondState *state) {
  rat_check(m->type->kind == RAT_KIND_CONDITIONER, "%s: not a conditioner", m->path);
  rat_module_enter(m);
  RatTensor *y = RAT_MODULE_IFACE(m, RatConditionerIface)->forward(m, x, cond, state);
  rat_module_leave(m, y);
  return y;
}

RatTensor *rat_block_forward(RatModule *m, RatTensor *x) {
  rat_check(m->type->kind == RAT_KIND_BLOCK, "%s: not a block", m->path);
  rat_module_enter(m);
  RatTensor *y = RAT_MODULE_IFACE(m, RatBlockIface)->forward(m, x);
  rat_module_leave(m, y);
  return y;
}

/* ---- profiling ----------------------------------------------------------------------------------------------- */

static struct {
  gboolean on;
  GPtrArray *entries;  /* RatProfileEntry* */
  GHashTable *by_mod;  /* RatModule* -> RatProfileEntry* */
  GPtrArray *stack;    /* RatProfileEntry* */
  guint64 total;
} prof;

void rat_profile_begin(void) {
  g_return_if_fail(!prof.on);
  prof.on = TRUE;
  prof.entries = g_ptr_array_new_with_free_func(g_free);
  prof.by_mod = g_hash_table_new(NULL, NULL);
  prof.stack = g_ptr_array_new();
  prof.total = 0;
}

GPtrArray *rat_profile_end(void) {
  g_return_val_if_fail(prof.on, NULL);
  prof.on = FALSE;
  g_hash_table_unref(prof.by_mod);
  g_ptr_array_unref(prof.stack);
  GPtrArray *out = prof.entries;
  prof.entries = NULL;
  return out;
}

guint64 rat_profile_total_flops(void) { return prof.total; }

void rat_module_enter(RatModule *m) {
  if (!prof.on) return;
  RatProfileEntry *e = g_hash_table_lookup(prof.by_mod, m);
  if (!e) {
    e = g_new0(RatProfileEntry, 1);
    e->module = m;
    e->out_shape.ndim = -1;
    g_ptr_array_add(prof.entries, e);
    g_hash_table_insert(prof.by_mod, m, e);
  }
  g_ptr_array_add(prof.stack, e);
}

void rat_module_leave(RatModule *m, RatTensor *output) {
  if (!prof.on || !prof.stack->len) return;
  RatProfileEntry *e = g_ptr_array_steal_index(prof.stack, prof.stack->len - 1);
  rat_check(e->module == m, "rat_module_leave(%s) does not match rat_module_enter(%s)", m->path, e->module->path);
  e->calls++;
  if (output) e->out_shape = rat_tensor_shape(output);
}

void rat_flops_add(guint64 flops) {
  if (!prof.on) return;
#pragma omp atomic
  prof.total += flops;
  if (prof.stack->len) {
    RatProfileEntry *e = prof.stack->pdata[prof.stack->len - 1];
#pragma omp atomic
    e->flops += flops;
  }
}
