/* Broken plugin: descriptor with a future ABI version. */
#include <ratfw/ratfw.h>
#include <gmodule.h>
static gboolean init(RatRegistry *reg, GError **error) { g_error("abi: init must not run"); return FALSE; }
G_MODULE_EXPORT const RatPluginDesc *rat_plugin_describe(void);
G_MODULE_EXPORT const RatPluginDesc *rat_plugin_describe(void) {
  static const RatPluginDesc d = {.abi_version = RAT_PLUGIN_ABI_VERSION + 99, .struct_size = sizeof(RatPluginDesc),
                                  .name = "abi", .version = "1", .license = "MIT", .init = init};
  return &d;
}
