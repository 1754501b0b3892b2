/* ratfw experiment files: a YAML tree that keeps the file, line and column of every node (also through
 * `include:` and `--set`), merging of an included base, and the validated experiment (docs/experiment-format.md).
 * Every error a user can cause names file:line:column. */
#pragma once

#include <ratfw/module.h>

G_BEGIN_DECLS

typedef enum {
  RAT_NODE_SCALAR = 0,
  RAT_NODE_MAP,
  RAT_NODE_SEQ,
} RatNodeKind;

struct _RatConfigNode {
  gint ref;
  RatNodeKind kind;
  char *value;      /* SCALAR: the text; NULL otherwise */
  gboolean quoted;  /* SCALAR written in quotes (always a string, never null/bool/number) */
  const char *file; /* interned: the file this node came from, or "--set a.b=c", or "<default of T.arg>" */
  guint line, column; /* 1-based */
  /* MAP: keys[i] (scalar nodes, for their marks) -> values[i]; SEQ: values[i]. Owned references. */
  GPtrArray *keys;
  GPtrArray *values;
};

RatConfigNode *rat_config_node_ref(RatConfigNode *n);
void rat_config_node_unref(RatConfigNode *n);
/* Parses one YAML document (no includes). @name is used in marks. */
RatConfigNode *rat_config_parse_string(const char *text, gssize len, const char *name, GError **error);
RatConfigNode *rat_config_parse_file(const char *path, GError **error);
/* Parses @path, resolves `include:` (a file or a list of files, relative to the including file; the including
 * file's keys override, mappings merge recursively, `key: null` deletes an inherited key, a mapping whose
 * `type:` differs from the inherited one replaces it), then applies each "a.b.c=value" of @sets (NULL-terminated,
 * may be NULL; the value is YAML). */
RatConfigNode *rat_config_load(const char *path, const char *const *sets, GError **error);
/* Applies one "a.b.c=value" override in place. */
gboolean rat_config_set(RatConfigNode *root, const char *assignment, GError **error);
/* The same for an assignment written in a file as the scalar @where (e.g. a sweep's variant list): the new nodes
 * and any error carry @where's file:line:column instead of "--set ...". @where NULL is rat_config_set. */
gboolean rat_config_set_at(RatConfigNode *root, const char *assignment, const RatConfigNode *where, GError **error);
/* Merges the mapping @over into the mapping @base as `include:` does (mappings merge key by key, `key: ~` deletes,
 * a module mapping of another `type:` replaces the inherited one). @over's nodes are copied with their marks. */
void rat_config_merge(RatConfigNode *base, const RatConfigNode *over);
/* A deep copy, marks kept. */
RatConfigNode *rat_config_node_copy(const RatConfigNode *n);
/* Removes @key from the mapping @map (nothing when absent). */
void rat_config_remove(RatConfigNode *map, const char *key);

/* MAP lookup; NULL when absent or @n is not a map. */
RatConfigNode *rat_config_get(RatConfigNode *n, const char *key);
/* Dotted path lookup: "model.generator.nf". */
RatConfigNode *rat_config_lookup(RatConfigNode *root, const char *path);
gboolean rat_config_is_null(const RatConfigNode *n); /* plain scalar ~, null, Null, NULL or empty */
/* "file:line:column" of @n (g_free); "?" for NULL. */
char *rat_config_mark(const RatConfigNode *n);
/* Sets @error (RAT_ERROR, @code) to "file:line:column: message". */
void rat_config_error(GError **error, const RatConfigNode *n, int code, const char *fmt, ...) G_GNUC_PRINTF(4, 5);
/* Serialises a tree as block YAML. */
char *rat_config_to_yaml(const RatConfigNode *n);
/* Edit distance (for "did you mean") and the closest of @candidates (NULL-terminated), or NULL if none is close. */
guint rat_edit_distance(const char *a, const char *b);
const char *rat_closest_name(const char *name, const char *const *candidates);

/* ---- the validated experiment ------------------------------------------------------------------------------- */

/* Slots of the `model:` section and the kind each one must have. */
typedef struct {
  const char *name;
  RatModuleKind kind;
} RatModelSlot;
extern const RatModelSlot rat_model_slots[];
extern const guint rat_n_model_slots;

typedef struct {
  char *path;          /* absolute path of the experiment file */
  char *name;          /* basename without .yaml/.yml */
  RatConfigNode *root; /* merged tree (includes and --set applied) */
  gint64 seed;
  char *out;           /* `out:` (absolute) or NULL */
  GPtrArray *requires; /* char* absolute paths of required experiments */
  RatModuleSpec *task; /* type named by `task:`; node = the `train:` section (may be NULL); NULL without task: */
  RatModuleSpec *data; /* `data:`, or NULL */
  RatModuleSpec *loss; /* `loss:`, or NULL */
  RatModuleSpec *sample, *eval; /* `sample:` / `eval:` sections, validated by the task types of those names */
  RatModuleSpec *model[16];     /* per rat_model_slots entry, NULL when absent */
  RatBuildContext sizes;        /* model.channels, cond_dim, z_dim, image_size, out_channels (0 when absent) */
} RatExperiment;

/* Loads and validates an experiment against the types in @reg. All errors are reported in one GError (one
 * "file:line:column: ..." line each); the code is the first error's (RAT_ERROR_CONFIG or RAT_ERROR_NOT_FOUND
 * for an unknown type, RAT_ERROR_IO for an unreadable file). */
RatExperiment *rat_experiment_load(RatRegistry *reg, const char *path, const char *const *sets, GError **error);
/* The same for a tree already loaded (includes and overrides applied); @path names the experiment (its name and
 * the directory `requires:` is relative to). Takes its own reference to @root. */
RatExperiment *rat_experiment_load_tree(RatRegistry *reg, RatConfigNode *root, const char *path, GError **error);
void rat_experiment_free(RatExperiment *exp);
/* The resolved config: the experiment with every default filled in (what the run directory stores). */
char *rat_experiment_resolved_yaml(RatRegistry *reg, const RatExperiment *exp);

G_END_DECLS
