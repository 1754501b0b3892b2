/* Broken plugin: a shared object without the rat_plugin_describe entry point. */
#include <glib.h>
#include <gmodule.h>
G_MODULE_EXPORT int noentry_something(void);
G_MODULE_EXPORT int noentry_something(void) { return 42; }
