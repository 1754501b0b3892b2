/* The registry of module types: types registered by plugins (or the core) are looked up by name, listed by kind,
 * and checked when added (malformed argument tables are refused before any experiment uses them). In the spirit
 * of GStreamer's element factories (gst/gstregistry.c): types are data, looked up by name. */
#include "config.h"

#include "registry-private.h"

#include <ratfw/config.h>
#include <ratfw/error.h>

#include <string.h>

typedef struct {
  const RatModuleType *type;
  char *plugin; /* NULL for core types */
} TypeEntry;

static void type_entry_free(gpointer p) {
  TypeEntry *e = p;
  g_free(e->plugin);
  g_free(e);
}

static void plugin_info_free(gpointer p) {
  RatPluginInfo *i = p;
  g_free(i->name);
  g_free(i->version);
  g_free(i->license);
  g_free(i->description);
  g_free(i->path);
  g_free(i);
}

RatRegistry *rat_registry_new(void) {
  RatRegistry *reg = g_new0(RatRegistry, 1);
  reg->types = g_hash_table_new_full(g_str_hash, g_str_equal, NULL, type_entry_free);
  reg->plugins = g_ptr_array_new_with_free_func(plugin_info_free);
  reg->order = g_ptr_array_new();
  return reg;
}

void rat_registry_free(RatRegistry *reg) {
  if (!reg) return;
  g_hash_table_unref(reg->types);
  g_ptr_array_unref(reg->plugins);
  g_ptr_array_unref(reg->order);
  g_free(reg->dup_message);
  g_free(reg);
}

const char *rat_module_kind_name(RatModuleKind kind) {
  static const char *const names[RAT_KIND_N] = {
      "conditioner",        "block",        "generator",     "generator_block", "discriminator",
      "discriminator_head", "text_encoder", "image_encoder", "loss",            "metric",
      "dataset",            "task"};
  return (guint)kind < RAT_KIND_N ? names[kind] : "module";
}

/* Checks one argument's table entry and its default; returns FALSE with @error. */
static gboolean check_arg(RatRegistry *reg, const RatModuleType *type, const RatArgSpec *a, GError **error) {
  if (!a->name || !*a->name) {
    g_set_error(error, RAT_ERROR, RAT_ERROR_FAILED, "type '%s': an argument has no name", type->name);
    return FALSE;
  }
  if ((guint)a->type > RAT_ARG_STAGES) {
    g_set_error(error, RAT_ERROR, RAT_ERROR_FAILED, "type '%s': argument '%s' has unknown type %d", type->name,
                a->name, (int)a->type);
    return FALSE;
  }
  gsize need = a->type == RAT_ARG_INT || a->type == RAT_ARG_DOUBLE ? 8
               : a->type == RAT_ARG_BOOL                           ? sizeof(gboolean)
               : a->type == RAT_ARG_INT_LIST                       ? sizeof(RatIntList)
               : a->type == RAT_ARG_STAGES                         ? sizeof(RatStageList)
                                                                   : sizeof(gpointer);
  if (a->offset + need > type->options_size) {
    g_set_error(error, RAT_ERROR, RAT_ERROR_FAILED,
                "type '%s': argument '%s' at offset %" G_GSIZE_FORMAT " lies outside options_size %" G_GSIZE_FORMAT,
                type->name, a->name, a->offset, type->options_size);
    return FALSE;
  }
  if (a->type == RAT_ARG_CHOICE && (!a->choices || !a->choices[0])) {
    g_set_error(error, RAT_ERROR, RAT_ERROR_FAILED, "type '%s': choice argument '%s' has no choices", type->name,
                a->name);
    return FALSE;
  }
  if (!a->default_value || a->type == RAT_ARG_MODULE) return TRUE; /* module defaults may name later plugins */
  /* The default must pass the argument's own validation. */
  gpointer opts = g_malloc0(type->options_size);
  RatArgSpec one = *a;
  RatConfigNode *n = rat_config_parse_string(a->default_value, -1, "<default>", NULL);
  gboolean ok = n != NULL;
  GError *e = NULL;
  if (ok) {
    RatConfigNode *map = rat_config_parse_string("{}", -1, "<default>", NULL);
    RatConfigNode *key = rat_config_parse_string(a->name, -1, "<default>", NULL);
    g_ptr_array_add(map->keys, key);
    g_ptr_array_add(map->values, n);
    ok = rat_args_parse(reg, &one, 1, map, opts, &e);
    if (ok) rat_args_clear(&one, 1, opts);
    rat_config_node_unref(map);
  }
  g_free(opts);
  if (!ok) {
    g_set_error(error, RAT_ERROR, RAT_ERROR_FAILED, "type '%s': default '%s' of argument '%s' is invalid%s%s",
                type->name, a->default_value, a->name, e ? ": " : "", e ? e->message : "");
    g_clear_error(&e);
  }
  return ok;
}

gboolean rat_registry_add_type(RatRegistry *reg, const RatModuleType *type, GError **error) {
  if (!type || type->struct_size < G_STRUCT_OFFSET(RatModuleType, reserved) || !type->name || !*type->name) {
    g_set_error(error, RAT_ERROR, RAT_ERROR_FAILED, "a module type without name or with struct_size %u too small",
                type ? (guint)type->struct_size : 0u);
    return FALSE;
  }
  TypeEntry *old = g_hash_table_lookup(reg->types, type->name);
  if (old) {
    g_set_error(error, RAT_PLUGIN_ERROR, RAT_PLUGIN_ERROR_DUPLICATE,
                "module type '%s' is registered twice (first by %s%s)", type->name,
                old->plugin ? "plugin " : "the core", old->plugin ? old->plugin : "");
    if (reg->current && !reg->duplicate) {
      reg->duplicate = TRUE;
      g_free(reg->dup_message);
      reg->dup_message = g_strdup_printf("module type '%s' is registered twice (first by %s%s)", type->name,
                                         old->plugin ? "plugin " : "the core", old->plugin ? old->plugin : "");
    }
    return FALSE;
  }
  if ((guint)type->kind >= RAT_KIND_N || !type->build) {
    g_set_error(error, RAT_ERROR, RAT_ERROR_FAILED, "type '%s': %s", type->name,
                type->build ? "unknown kind" : "no build function");
    return FALSE;
  }
  if (type->n_args && !type->args) {
    g_set_error(error, RAT_ERROR, RAT_ERROR_FAILED, "type '%s': n_args is %u but args is NULL", type->name,
                type->n_args);
    return FALSE;
  }
  for (guint i = 0; i < type->n_args; i++) {
    for (guint j = 0; j < i; j++)
      if (type->args[i].name && type->args[j].name && !strcmp(type->args[i].name, type->args[j].name)) {
        g_set_error(error, RAT_ERROR, RAT_ERROR_FAILED, "type '%s': argument '%s' declared twice", type->name,
                    type->args[i].name);
        return FALSE;
      }
    if (type->args[i].name && !strcmp(type->args[i].name, "type")) {
      g_set_error(error, RAT_ERROR, RAT_ERROR_FAILED, "type '%s': 'type' is reserved and cannot be an argument",
                  type->name);
      return FALSE;
    }
    if (!check_arg(reg, type, &type->args[i], error)) return FALSE;
  }
  TypeEntry *e = g_new0(TypeEntry, 1);
  e->type = type;
  e->plugin = g_strdup(reg->current);
  g_hash_table_insert(reg->types, (gpointer)type->name, e);
  g_ptr_array_add(reg->order, (gpointer)type->name);
  return TRUE;
}

void rat_registry_remove_plugin_types(RatRegistry *reg, const char *plugin) {
  for (guint i = reg->order->len; i-- > 0;) {
    TypeEntry *e = g_hash_table_lookup(reg->types, reg->order->pdata[i]);
    if (e && !g_strcmp0(e->plugin, plugin)) {
      g_hash_table_remove(reg->types, reg->order->pdata[i]);
      g_ptr_array_remove_index(reg->order, i);
    }
  }
}

const RatModuleType *rat_registry_lookup(RatRegistry *reg, const char *name) {
  TypeEntry *e = name ? g_hash_table_lookup(reg->types, name) : NULL;
  return e ? e->type : NULL;
}

static gint cmp_type(gconstpointer a, gconstpointer b) {
  return strcmp((*(const RatModuleType *const *)a)->name, (*(const RatModuleType *const *)b)->name);
}

GPtrArray *rat_registry_types(RatRegistry *reg, RatModuleKind kind) {
  GPtrArray *out = g_ptr_array_new();
  GHashTableIter it;
  gpointer v;
  g_hash_table_iter_init(&it, reg->types);
  while (g_hash_table_iter_next(&it, NULL, &v)) {
    const RatModuleType *t = ((TypeEntry *)v)->type;
    if (kind == RAT_KIND_N || t->kind == kind) g_ptr_array_add(out, (gpointer)t);
  }
  g_ptr_array_sort(out, cmp_type);
  return out;
}

const char *rat_registry_type_plugin(RatRegistry *reg, const RatModuleType *type) {
  TypeEntry *e = type ? g_hash_table_lookup(reg->types, type->name) : NULL;
  return e && e->type == type ? e->plugin : NULL;
}

const GPtrArray *rat_registry_plugins(RatRegistry *reg) { return reg->plugins; }
