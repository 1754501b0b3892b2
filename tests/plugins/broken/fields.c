/* Broken plugin: descriptor without a license. */
#include <ratfw/ratfw.h>
#include <gmodule.h>
static gboolean init(RatRegistry *reg, GError **error) { g_error("fields: init must not run"); return FALSE; }
RAT_PLUGIN_DEFINE("fields", "1.0", NULL, "no license", init)
