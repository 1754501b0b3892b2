/* The plugin loader (GModule): opens a .so, reads its static descriptor and checks it in a fixed order, each
 * failure with its own RAT_PLUGIN_ERROR code, before running the plugin's init (STYLE.md "Plugin ABI"; after
 * GStreamer's gst/gstplugin.c). Loaded modules stay resident. */
#include "config.h"

#include "registry-private.h"

#include <ratfw/error.h>
#include <ratfw/module.h>

#include <gmodule.h>
#include <string.h>

G_DEFINE_QUARK(rat-plugin-error-quark, rat_plugin_error)

/* conditioners/.libs/rat.so -> "rat"; libfoo.so -> "foo". */
static char *plugin_base_name(const char *path) {
  char *base = g_path_get_basename(path);
  char *dot = strstr(base, "." G_MODULE_SUFFIX);
  if (dot) *dot = 0;
  if (g_str_has_prefix(base, "lib") && base[3]) memmove(base, base + 3, strlen(base + 3) + 1);
  return base;
}

static const RatPluginInfo *find_plugin(RatRegistry *reg, const char *name) {
  for (guint i = 0; i < reg->plugins->len; i++) {
    const RatPluginInfo *p = reg->plugins->pdata[i];
    if (!strcmp(p->name, name)) return p;
  }
  return NULL;
}

gboolean rat_registry_load_plugin(RatRegistry *reg, const char *path, GError **error) {
  GModule *mod = g_module_open(path, G_MODULE_BIND_LOCAL);
  if (!mod) {
    g_set_error(error, RAT_PLUGIN_ERROR, RAT_PLUGIN_ERROR_OPEN, "%s: cannot open plugin: %s", path,
                g_module_error());
    return FALSE;
  }
  gpointer sym = NULL;
  if (!g_module_symbol(mod, RAT_PLUGIN_ENTRY, &sym) || !sym) {
    g_set_error(error, RAT_PLUGIN_ERROR, RAT_PLUGIN_ERROR_NO_ENTRY,
                "%s: not a ratfw plugin: no '" RAT_PLUGIN_ENTRY "' symbol (define one with RAT_PLUGIN_DEFINE)", path);
    g_module_close(mod);
    return FALSE;
  }
  const RatPluginDesc *desc = ((RatPluginDescribeFunc)sym)();
  char *base = plugin_base_name(path);
  gboolean ok = FALSE;
  if (!desc) {
    g_set_error(error, RAT_PLUGIN_ERROR, RAT_PLUGIN_ERROR_NO_ENTRY, "%s: '" RAT_PLUGIN_ENTRY "' returned NULL",
                path);
  } else if (desc->abi_version != RAT_PLUGIN_ABI_VERSION) {
    g_set_error(error, RAT_PLUGIN_ERROR, RAT_PLUGIN_ERROR_ABI,
                "%s: plugin ABI version %u, this ratfw expects %u: rebuild the plugin against ratfw " RATFW_VERSION,
                path, desc->abi_version, (guint)RAT_PLUGIN_ABI_VERSION);
  } else if (desc->struct_size < G_STRUCT_OFFSET(RatPluginDesc, reserved)) {
    g_set_error(error, RAT_PLUGIN_ERROR, RAT_PLUGIN_ERROR_SIZE,
                "%s: plugin descriptor is %u bytes, at least %u expected: rebuild the plugin", path,
                desc->struct_size, (guint)G_STRUCT_OFFSET(RatPluginDesc, reserved));
  } else if (!desc->name || !desc->version || !desc->license || !desc->init) {
    g_set_error(error, RAT_PLUGIN_ERROR, RAT_PLUGIN_ERROR_FIELDS, "%s: plugin descriptor lacks its %s", path,
                !desc->name ? "name" : !desc->version ? "version" : !desc->license ? "license" : "init function");
  } else if (strcmp(desc->name, base) != 0) {
    g_set_error(error, RAT_PLUGIN_ERROR, RAT_PLUGIN_ERROR_NAME,
                "%s: plugin calls itself '%s' but its file is named '%s' (they must be equal)", path, desc->name,
                base);
  } else if (find_plugin(reg, desc->name)) {
    g_set_error(error, RAT_PLUGIN_ERROR, RAT_PLUGIN_ERROR_DUPLICATE, "%s: a plugin named '%s' is already loaded from %s",
                path, desc->name, find_plugin(reg, desc->name)->path);
  } else {
    ok = TRUE;
  }
  if (!ok) {
    g_free(base);
    g_module_close(mod); /* no plugin code other than the describe function ran */
    return FALSE;
  }
  /* From here plugin code runs: the module stays resident whatever happens. */
  g_module_make_resident(mod);
  GError *e = NULL;
  reg->current = g_strdup(desc->name);
  reg->duplicate = FALSE;
  g_clear_pointer(&reg->dup_message, g_free);
  gboolean init_ok = desc->init(reg, &e);
  if (!init_ok || reg->duplicate) {
    if (reg->duplicate || (e && e->domain == RAT_PLUGIN_ERROR && e->code == RAT_PLUGIN_ERROR_DUPLICATE))
      g_set_error(error, RAT_PLUGIN_ERROR, RAT_PLUGIN_ERROR_DUPLICATE, "%s: %s", path,
                  reg->dup_message ? reg->dup_message : e ? e->message : "a module type it registers exists already");
    else
      g_set_error(error, RAT_PLUGIN_ERROR, RAT_PLUGIN_ERROR_INIT, "%s: plugin init failed: %s", path,
                  e ? e->message : "(no reason given)");
    g_clear_error(&e);
    rat_registry_remove_plugin_types(reg, reg->current);
    g_clear_pointer(&reg->current, g_free);
    g_free(base);
    return FALSE;
  }
  g_clear_error(&e);
  g_clear_pointer(&reg->current, g_free);
  RatPluginInfo *info = g_new0(RatPluginInfo, 1);
  info->name = g_strdup(desc->name);
  info->version = g_strdup(desc->version);
  info->license = g_strdup(desc->license);
  info->description = g_strdup(desc->description ? desc->description : "");
  info->path = g_canonicalize_filename(path, NULL);
  g_ptr_array_add(reg->plugins, info);
  g_free(base);
  return TRUE;
}

static gint cmp_str(gconstpointer a, gconstpointer b) {
  return strcmp(*(const char *const *)a, *(const char *const *)b);
}

guint rat_registry_load_all(RatRegistry *reg, GPtrArray *failures) {
  GPtrArray *dirs = g_ptr_array_new_with_free_func(g_free);
  const char *env = g_getenv("RATFW_PLUGIN_PATH");
  if (env) {
    char **parts = g_strsplit(env, G_SEARCHPATH_SEPARATOR_S, -1);
    for (int i = 0; parts[i]; i++)
      if (*parts[i]) g_ptr_array_add(dirs, g_strdup(parts[i]));
    g_strfreev(parts);
  }
  g_ptr_array_add(dirs, g_strdup(RATFW_PLUGINDIR));
  guint loaded = 0;
  for (guint d = 0; d < dirs->len; d++) {
    GDir *dir = g_dir_open(dirs->pdata[d], 0, NULL);
    if (!dir) continue;
    GPtrArray *files = g_ptr_array_new_with_free_func(g_free);
    const char *f;
    while ((f = g_dir_read_name(dir)))
      if (g_str_has_suffix(f, "." G_MODULE_SUFFIX)) g_ptr_array_add(files, g_strdup(f));
    g_dir_close(dir);
    g_ptr_array_sort(files, cmp_str);
    for (guint i = 0; i < files->len; i++) {
      char *path = g_build_filename(dirs->pdata[d], files->pdata[i], NULL);
      char *name = plugin_base_name(path);
      if (!find_plugin(reg, name)) {
        GError *e = NULL;
        if (rat_registry_load_plugin(reg, path, &e)) loaded++;
        else if (failures) g_ptr_array_add(failures, e);
        else g_error_free(e);
      }
      g_free(name);
      g_free(path);
    }
    g_ptr_array_unref(files);
  }
  g_ptr_array_unref(dirs);
  return loaded;
}
