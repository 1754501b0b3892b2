/* Registry internals shared by registry.c and plugin.c (not installed). */
#pragma once

#include <ratfw/module.h>

struct _RatRegistry {
  GHashTable *types;   /* name -> TypeEntry */
  GPtrArray *order;    /* type names in registration order */
  GPtrArray *plugins;  /* RatPluginInfo*, load order */
  char *current;       /* plugin whose init is running (types it adds are attributed to it), or NULL */
  gboolean duplicate;  /* set when the running init tried to add an existing type */
  char *dup_message;   /* the first such error */
};

/* Removes every type registered by @plugin (after its init failed). */
void rat_registry_remove_plugin_types(RatRegistry *reg, const char *plugin);

/* rat_args_parse naming the module in messages ("gen.fuse1 (rat): 'hidden' = 0 is out of range ..."). */
gboolean rat_args_parse_what(RatRegistry *reg, const RatArgSpec *args, guint n_args, RatConfigNode *node,
                             gpointer options, const char *what, GError **error);
