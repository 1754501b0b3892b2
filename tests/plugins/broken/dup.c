/* Broken plugin: registers one module type twice (and ignores the failure). */
#include <ratfw/ratfw.h>
#include <gmodule.h>
static gboolean build(RatModule *m, const RatBuildContext *ctx, GError **error) { return TRUE; }
static const RatModuleType t = {.struct_size = sizeof(RatModuleType), .name = "dup_type", .kind = RAT_KIND_LOSS,
                                .doc = "registered twice", .build = build};
static gboolean init(RatRegistry *reg, GError **error) {
  rat_registry_add_type(reg, &t, NULL);
  rat_registry_add_type(reg, &t, NULL);
  return TRUE;
}
RAT_PLUGIN_DEFINE("dup", "1.0", "MIT", "duplicate type", init)
