/* Broken plugin: its descriptor's name differs from its file name (badname.so). */
#include <ratfw/ratfw.h>
#include <gmodule.h>
static gboolean init(RatRegistry *reg, GError **error) { g_error("badname: init must not run"); return FALSE; }
RAT_PLUGIN_DEFINE("goodname", "1.0", "MIT", "misnamed", init)
