/* Shared by the ratfw command's source files (tools/ratfw.c holds the command table; each further command,
 * e.g. tools/cmd-dataset.c, defines one `int cmd_NAME(int argc, char **argv)` and adds a line to the table). */
#pragma once

#include <ratfw/ratfw.h>

enum { EXIT_OK = 0, EXIT_RUN = 1, EXIT_USAGE = 2 };

/* Prints "ratfw CMD: message" on stderr and returns @status. */
int fail(int status, const char *cmd, const char *fmt, ...) G_GNUC_PRINTF(3, 4);
/* Multi-line config errors: every line, then the one-line cause last; returns EXIT_USAGE. */
int fail_config(const char *cmd, const GError *e);
/* A registry with every plugin on the search path; @warn prints plugins that failed to load. */
RatRegistry *load_registry(gboolean warn, GPtrArray **failures_out);
/* Parses a subcommand's options (GOption); leaves positional arguments in argv. -1 to continue, else an exit code. */
int parse_options(const char *cmd, const char *params, const char *summary, GOptionEntry *entries, int *argc,
                  char ***argv);

/* Commands defined in their own files. */
int cmd_sample(int argc, char **argv); /* tools/cmd-sample.c */
int cmd_dataset(int argc, char **argv); /* tools/cmd-dataset.c */
int cmd_eval(int argc, char **argv); /* tools/cmd-eval.c */
int cmd_ablate(int argc, char **argv); /* tools/cmd-ablate.c */
int validate_sweep(const char *path, char **sets, gboolean resolved); /* tools/cmd-ablate.c: ratfw validate SWEEP */
