/* Broken plugin: descriptor struct_size smaller than the fields the host reads. */
#include <ratfw/ratfw.h>
#include <gmodule.h>
static gboolean init(RatRegistry *reg, GError **error) { g_error("size: init must not run"); return FALSE; }
G_MODULE_EXPORT const RatPluginDesc *rat_plugin_describe(void);
G_MODULE_EXPORT const RatPluginDesc *rat_plugin_describe(void) {
  static const RatPluginDesc d = {.abi_version = RAT_PLUGIN_ABI_VERSION, .struct_size = 16,
                                  .name = "size", .version = "1", .license = "MIT", .init = init};
  return &d;
}
