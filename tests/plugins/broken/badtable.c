/* Broken plugin: an argument table whose default is out of its own range (refused by the registry). */
#include <ratfw/ratfw.h>
#include <gmodule.h>
typedef struct { gint64 n; } Opts;
static const RatArgSpec args[] = {RAT_ARG_I(Opts, n, "100", 0, 10, "a count")};
static gboolean build(RatModule *m, const RatBuildContext *ctx, GError **error) { return TRUE; }
static const RatModuleType t = {.struct_size = sizeof(RatModuleType), .name = "badtable_type",
                                .kind = RAT_KIND_LOSS, .doc = "bad default", .args = args, .n_args = 1,
                                .options_size = sizeof(Opts), .build = build};
static gboolean init(RatRegistry *reg, GError **error) { return rat_registry_add_type(reg, &t, error); }
RAT_PLUGIN_DEFINE("badtable", "1.0", "MIT", "bad argument table", init)
