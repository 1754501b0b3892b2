/* Broken plugin: init fails (after registering one type, which the loader must withdraw). */
#include <ratfw/ratfw.h>
#include <gmodule.h>
static gboolean build(RatModule *m, const RatBuildContext *ctx, GError **error) { return TRUE; }
static const RatModuleType t = {.struct_size = sizeof(RatModuleType), .name = "initfail_type",
                                .kind = RAT_KIND_LOSS, .doc = "withdrawn", .build = build};
static gboolean init(RatRegistry *reg, GError **error) {
  if (!rat_registry_add_type(reg, &t, error)) return FALSE;
  g_set_error(error, RAT_ERROR, RAT_ERROR_FAILED, "cannot find its lookup table");
  return FALSE;
}
RAT_PLUGIN_DEFINE("initfail", "1.0", "MIT", "init fails", init)
