/* ratfw modules and plugins: module types declared as data (argument tables), instances in a tree with named
 * parameters, and the plugin descriptor every .so exports.
 *
 * A plugin registers module types in its init; an experiment file names a type per slot ("type: rat") with
 * arguments; the registry validates the arguments against the type's table (file:line:column on error), fills
 * an options struct, and calls the type's build() to create parameters and children. Forward passes go through
 * a kind-specific interface (iface), e.g. RatConditionerIface below.
 */
#pragma once

#include <gmodule.h>
#include <ratfw/autograd.h>
#include <ratfw/nn.h>
#include <ratfw/version.h>

G_BEGIN_DECLS

typedef struct _RatModule RatModule;
typedef struct _RatModuleType RatModuleType;
typedef struct _RatRegistry RatRegistry;
typedef struct _RatConfigNode RatConfigNode; /* a node of a parsed experiment file (config.h) */
/* RatParams (named parameter arena) and RatRng (counter-based RNG) come from nn.h. */

/* ---- kinds -------------------------------------------------------------------------------------------- */

typedef enum {
  RAT_KIND_CONDITIONER = 0,  /* text conditioning of a feature map: affine, cbn, cin, rat */
  RAT_KIND_BLOCK,            /* a generic layer usable in a slot: conv, conv_shuffle, shuffle_attention */
  RAT_KIND_GENERATOR,
  RAT_KIND_GENERATOR_BLOCK,
  RAT_KIND_DISCRIMINATOR,
  RAT_KIND_DISCRIMINATOR_HEAD,
  RAT_KIND_TEXT_ENCODER,
  RAT_KIND_IMAGE_ENCODER,
  RAT_KIND_LOSS,
  RAT_KIND_METRIC,
  RAT_KIND_DATASET,
  RAT_KIND_TASK, /* what `ratfw run` does: train, pretrain_clip, sample, eval */
  RAT_KIND_N
} RatModuleKind;

const char *rat_module_kind_name(RatModuleKind kind); /* "conditioner", "generator_block", ... */

/* ---- argument tables ------------------------------------------------------------------------------------ */

typedef enum {
  RAT_ARG_INT = 0, /* gint64 */
  RAT_ARG_DOUBLE,  /* double */
  RAT_ARG_BOOL,    /* gboolean */
  RAT_ARG_STRING,  /* char* (owned by the options struct) */
  RAT_ARG_CHOICE,  /* char* equal to one of .choices */
  RAT_ARG_PATH,    /* char*, resolved relative to the experiment file's directory */
  RAT_ARG_INT_LIST,    /* RatIntList */
  RAT_ARG_MODULE,  /* RatModuleSpec*: a nested mapping with its own "type:" of kind .module_kind */
  RAT_ARG_STAGES,  /* RatStageList: a generator's stages, each {out, in, size, block} (block of kind .module_kind) */
} RatArgType;

typedef struct {
  guint n;
  gint64 *v;
} RatIntList;

typedef struct {
  const char *name;             /* YAML key, snake_case */
  RatArgType type;
  gsize offset;                 /* into the type's options struct (G_STRUCT_OFFSET) */
  const char *default_value;    /* written as in YAML ("0.2", "true", "[1, 4, 8]", "batch_sequence"); NULL = required */
  double min, max;              /* inclusive range for INT/DOUBLE/INT_LIST items; RAT_ARG_NO_LIMIT to disable */
  const char *const *choices;   /* NULL-terminated, for CHOICE */
  const char *doc;              /* one line */
  RatModuleKind module_kind;    /* for MODULE */
} RatArgSpec;

#define RAT_ARG_NO_LIMIT (-1e300)
/* Convenience initialisers for argument tables. */
#define RAT_ARG_I(st, field, def, lo, hi, doc_)                                                                 \
  {.name = #field, .type = RAT_ARG_INT, .offset = G_STRUCT_OFFSET(st, field), .default_value = (def),          \
   .min = (lo), .max = (hi), .doc = (doc_)}
#define RAT_ARG_D(st, field, def, lo, hi, doc_)                                                                 \
  {.name = #field, .type = RAT_ARG_DOUBLE, .offset = G_STRUCT_OFFSET(st, field), .default_value = (def),       \
   .min = (lo), .max = (hi), .doc = (doc_)}
#define RAT_ARG_B(st, field, def, doc_)                                                                        \
  {.name = #field, .type = RAT_ARG_BOOL, .offset = G_STRUCT_OFFSET(st, field), .default_value = (def),         \
   .min = RAT_ARG_NO_LIMIT, .max = RAT_ARG_NO_LIMIT, .doc = (doc_)}
#define RAT_ARG_S(st, field, def, doc_)                                                                        \
  {.name = #field, .type = RAT_ARG_STRING, .offset = G_STRUCT_OFFSET(st, field), .default_value = (def),       \
   .min = RAT_ARG_NO_LIMIT, .max = RAT_ARG_NO_LIMIT, .doc = (doc_)}
#define RAT_ARG_C(st, field, def, choices_, doc_)                                                              \
  {.name = #field, .type = RAT_ARG_CHOICE, .offset = G_STRUCT_OFFSET(st, field), .default_value = (def),       \
   .min = RAT_ARG_NO_LIMIT, .max = RAT_ARG_NO_LIMIT, .choices = (choices_), .doc = (doc_)}
#define RAT_ARG_P(st, field, def, doc_)                                                                        \
  {.name = #field, .type = RAT_ARG_PATH, .offset = G_STRUCT_OFFSET(st, field), .default_value = (def),         \
   .min = RAT_ARG_NO_LIMIT, .max = RAT_ARG_NO_LIMIT, .doc = (doc_)}
#define RAT_ARG_L(st, field, def, lo, hi, doc_)                                                                \
  {.name = #field, .type = RAT_ARG_INT_LIST, .offset = G_STRUCT_OFFSET(st, field), .default_value = (def),     \
   .min = (lo), .max = (hi), .doc = (doc_)}
#define RAT_ARG_M(st, field, kind, def, doc_)                                                                  \
  {.name = #field, .type = RAT_ARG_MODULE, .offset = G_STRUCT_OFFSET(st, field), .default_value = (def),       \
   .min = RAT_ARG_NO_LIMIT, .max = RAT_ARG_NO_LIMIT, .module_kind = (kind), .doc = (doc_)}

/* A nested module choice, kept unbuilt until the parent knows the structural sizes (channels...). */
typedef struct {
  char *type_name;
  RatConfigNode *node; /* the mapping (arguments) from the experiment file; NULL for a default */
} RatModuleSpec;

/* One stage of a generator (RAT_ARG_STAGES): `{out: 256, size: 64, block: {type: galip_block}}`. The table
 * validates each key; what needs the generator's sizes (channels chain, the last size is the image size) is
 * checked when the generator builds, with the stage's file:line:column. */
typedef struct {
  gint64 out;            /* output channels (required) */
  gint64 in;             /* input channels; 0 = the previous stage's out (when given, it must equal it) */
  gint64 size;           /* output side; 0 = the generator's default plan (see its doc) */
  RatModuleSpec *block;  /* NULL = the generator's `block` argument */
  RatConfigNode *node;   /* the stage's mapping (owned reference), for error marks */
} RatStage;

/* The stages of RAT_ARG_STAGES; n = 0 (YAML `~`, the usual default) means the generator's released plan. */
typedef struct {
  guint n;
  RatStage *v;
} RatStageList;
#define RAT_ARG_STAGE_LIST(st, field, kind, doc_)                                                              \
  {.name = #field, .type = RAT_ARG_STAGES, .offset = G_STRUCT_OFFSET(st, field), .default_value = "~",        \
   .min = RAT_ARG_NO_LIMIT, .max = RAT_ARG_NO_LIMIT, .module_kind = (kind), .doc = (doc_)}

/* ---- build context -------------------------------------------------------------------------------------- */

/* What a parent tells a child it builds: structural sizes that are not user arguments. Fields a module does
 * not need are ignored; a missing one it needs (0) is a build error naming the module. */
typedef struct {
  RatParams *params;  /* where parameters go (names are prefixed with the module path) */
  RatRng *rng;        /* for initialisation */
  gint64 channels;    /* feature-map channels (conditioners, blocks) */
  gint64 out_channels;
  gint64 cond_dim;    /* condition width (GALIP/RATLIP: z_dim + sentence dim = 612) */
  gint64 z_dim;
  gint64 image_size;
  gpointer user;      /* kind-specific extra (e.g. the CLIP model a generator uses) */
} RatBuildContext;

/* ---- module types --------------------------------------------------------------------------------------- */

struct _RatModuleType {
  gsize struct_size; /* sizeof(RatModuleType) at compile time of the plugin */
  const char *name;  /* unique in the registry: "rat", "affine", "galip_generator" */
  RatModuleKind kind;
  const char *doc;   /* one paragraph: what it computes, with the equation and the reference it follows */
  const RatArgSpec *args;
  guint n_args;
  gsize options_size; /* the options struct the argument table fills */
  gsize priv_size;    /* zeroed private state allocated by the host */
  /* Creates parameters (rat_module_param) and children (rat_module_build_child). On failure set @error; the
   * host then calls finalize, which must be safe on a partly built module. */
  gboolean (*build)(RatModule *m, const RatBuildContext *ctx, GError **error);
  void (*finalize)(RatModule *m); /* may be NULL */
  const void *iface;              /* kind-specific function table */
  /* Optional semantic checks across arguments after the table validated each one (e.g. channels divisible by
   * 2*groups); return FALSE with a message — the host adds file:line:column of the module's mapping. */
  gboolean (*check)(const RatModuleType *type, const void *options, const RatBuildContext *ctx, GError **error);
  gpointer reserved[6];
  /* --- added after the first layout (read only when struct_size covers it) --- */
  /* Optional, for `ratfw inspect`: runs one forward of a built module on example inputs of batch 1 made from
   * the build context (and the module's options) and returns the output (scope-owned). Conditioners and blocks
   * without it get a default: x [1, channels, 8, 8] and cond [1, cond_dim] drawn from N(0, 1). */
  RatTensor *(*example_forward)(RatModule *m, const RatBuildContext *ctx, GError **error);
};

struct _RatModule {
  const RatModuleType *type;
  char *path;            /* "gen.mblocks.0.fuse1.affine0" */
  RatModule *parent;
  GPtrArray *children;   /* RatModule*, owned */
  GPtrArray *params;     /* RatTensor* this module created (borrowed from the RatParams arena) */
  gboolean training;
  gpointer options;      /* filled from the argument table; owned */
  gpointer priv;         /* priv_size bytes, zeroed; owned */
  RatConfigNode *node;   /* where it was declared (for error messages); may be NULL */
  /* --- added by issue 3 --- */
  RatRegistry *registry; /* the registry it was built from (children are looked up there) */
};

/* Kind interface for conditioners: modulate a feature map by a condition. */
typedef struct _RatCondState RatCondState;
typedef struct {
  /* x [B,C,H,W], cond [B,D] -> [B,C,H,W]. @state is shared by all conditioners of one generator forward
   * (recurrent schemes keep their carried state there); it may be NULL for stateless use. */
  RatTensor *(*forward)(RatModule *m, RatTensor *x, RatTensor *cond, RatCondState *state);
  /* Does a sample's output depend on the other samples of the batch in this mode? */
  gboolean (*batch_dependent)(RatModule *m);
} RatConditionerIface;

/* Kind interface for blocks (generic layers): x [B,C,H,W] -> [B,C',H',W']. */
typedef struct {
  RatTensor *(*forward)(RatModule *m, RatTensor *x);
  gboolean (*batch_dependent)(RatModule *m);
} RatBlockIface;

/* A per-forward key/value store of tensors (owned references), e.g. the chained RAT's LSTM (h, c). */
RatCondState *rat_cond_state_new(void);
void rat_cond_state_free(RatCondState *s);
RatTensor *rat_cond_state_get(RatCondState *s, const char *key);
void rat_cond_state_set(RatCondState *s, const char *key, RatTensor *t);
/* The noise z of this forward (some schemes initialise their state from it); may be NULL. */
void rat_cond_state_set_noise(RatCondState *s, RatTensor *z);
RatTensor *rat_cond_state_noise(RatCondState *s);

/* ---- module instances ------------------------------------------------------------------------------------ */

/* Builds a module of @spec's type (looked up in @reg), validating its arguments. @path names it. */
RatModule *rat_module_build(RatRegistry *reg, const RatModuleSpec *spec, const char *path, RatModuleKind kind,
                            const RatBuildContext *ctx, GError **error);
/* Builds a child of @parent from a nested spec (path = parent path + "." + @name). */
RatModule *rat_module_build_child(RatModule *parent, const RatModuleSpec *spec, const char *name,
                                  RatModuleKind kind, const RatBuildContext *ctx, GError **error);
/* Builds a child of a type given by name with default arguments plus "key=value" overrides (NULL-terminated). */
RatModule *rat_module_build_child_named(RatModule *parent, const char *type_name, const char *name,
                                        const char *const *overrides, const RatBuildContext *ctx, GError **error);
/* Builds a root module of a type given by name with default arguments plus "key=value" overrides
 * (NULL-terminated; values written as in YAML). For tests and tools that build without an experiment file. */
RatModule *rat_module_build_named(RatRegistry *reg, const char *type_name, const char *path, RatModuleKind kind,
                                  const char *const *overrides, const RatBuildContext *ctx, GError **error);
void rat_module_free(RatModule *m);
/* Creates a parameter named path + "." + @name in ctx->params, initialised to zero (callers then init it). */
RatTensor *rat_module_param(RatModule *m, const RatBuildContext *ctx, const char *name, RatShape shape);
/* Same, but frozen (saved, never trained) or a buffer (running statistics). */
RatTensor *rat_module_frozen(RatModule *m, const RatBuildContext *ctx, const char *name, RatShape shape);
RatTensor *rat_module_buffer(RatModule *m, const RatBuildContext *ctx, const char *name, RatShape shape);
void rat_module_set_training(RatModule *m, gboolean training); /* recursive */
#define RAT_MODULE_OPTIONS(m, T) ((T *)(m)->options)
#define RAT_MODULE_PRIV(m, T) ((T *)(m)->priv)
#define RAT_MODULE_IFACE(m, T) ((const T *)(m)->type->iface)

/* Calls the conditioner / block interfaces, recording the module on the profiling stack (inspect). */
RatTensor *rat_conditioner_forward(RatModule *m, RatTensor *x, RatTensor *cond, RatCondState *state);
RatTensor *rat_block_forward(RatModule *m, RatTensor *x);

/* Profiling hooks used by `ratfw inspect`: modules entered/left, and FLOPs reported by kernels. */
void rat_module_enter(RatModule *m);
void rat_module_leave(RatModule *m, RatTensor *output);
void rat_flops_add(guint64 flops); /* called by conv/matmul kernels; no-op unless profiling */

/* ---- registry ----------------------------------------------------------------------------------------------- */

RatRegistry *rat_registry_new(void);
void rat_registry_free(RatRegistry *reg);
/* Registers a type (plugins call this from init). Fails if the name is taken or the table is malformed
 * (unknown arg type, default that does not parse or is out of range, duplicate arg name). */
gboolean rat_registry_add_type(RatRegistry *reg, const RatModuleType *type, GError **error);
const RatModuleType *rat_registry_lookup(RatRegistry *reg, const char *name);
/* All registered types of @kind (or every kind with RAT_KIND_N), sorted by name. g_ptr_array_unref. */
GPtrArray *rat_registry_types(RatRegistry *reg, RatModuleKind kind);
/* The plugin that registered @type (NULL for types built into the core). */
const char *rat_registry_type_plugin(RatRegistry *reg, const RatModuleType *type);

/* ---- plugins ------------------------------------------------------------------------------------------------ */

typedef struct {
  guint32 abi_version;  /* RAT_PLUGIN_ABI_VERSION */
  guint32 struct_size;  /* sizeof(RatPluginDesc) */
  const char *name;     /* must equal the file's base name: conditioners/rat.so -> "rat" */
  const char *version;
  const char *license;  /* SPDX identifier */
  const char *description;
  /* Registers module types; nothing else (no I/O, no global state). */
  gboolean (*init)(RatRegistry *reg, GError **error);
  gpointer reserved[8];
} RatPluginDesc;

#define RAT_PLUGIN_ENTRY "rat_plugin_describe"
typedef const RatPluginDesc *(*RatPluginDescribeFunc)(void);

/* Defines the entry point of a plugin. */
#define RAT_PLUGIN_DEFINE(name_, version_, license_, description_, init_)                                      \
  G_MODULE_EXPORT const RatPluginDesc *rat_plugin_describe(void);                                             \
  G_MODULE_EXPORT const RatPluginDesc *rat_plugin_describe(void) {                                            \
    static const RatPluginDesc desc = {.abi_version = RAT_PLUGIN_ABI_VERSION,                                 \
                                       .struct_size = sizeof(RatPluginDesc),                                  \
                                       .name = (name_),                                                       \
                                       .version = (version_),                                                 \
                                       .license = (license_),                                                 \
                                       .description = (description_),                                         \
                                       .init = (init_)};                                                      \
    return &desc;                                                                                             \
  }

typedef enum {
  RAT_PLUGIN_ERROR_OPEN,        /* dlopen failed */
  RAT_PLUGIN_ERROR_NO_ENTRY,    /* no rat_plugin_describe symbol */
  RAT_PLUGIN_ERROR_ABI,         /* abi_version differs */
  RAT_PLUGIN_ERROR_SIZE,        /* struct_size smaller than the fields this host reads */
  RAT_PLUGIN_ERROR_FIELDS,      /* a required field (name, version, license, init) is NULL */
  RAT_PLUGIN_ERROR_NAME,        /* name differs from the file's base name */
  RAT_PLUGIN_ERROR_DUPLICATE,   /* a module type it registers exists already */
  RAT_PLUGIN_ERROR_INIT,        /* init returned FALSE */
} RatPluginError;
#define RAT_PLUGIN_ERROR (rat_plugin_error_quark())
GQuark rat_plugin_error_quark(void);

typedef struct {
  char *name, *version, *license, *description, *path;
} RatPluginInfo;

/* Loads one plugin file, running the checks in the order of RatPluginError before any plugin code other than
 * the describe function. Loaded modules stay resident. */
gboolean rat_registry_load_plugin(RatRegistry *reg, const char *path, GError **error);
/* Loads every *.so found on RATFW_PLUGIN_PATH (colon-separated) then the install directory; a plugin whose name
 * was already loaded from an earlier directory is skipped. Failures are collected (not fatal) in @failures
 * (GError*, may be NULL). Returns the number loaded. */
guint rat_registry_load_all(RatRegistry *reg, GPtrArray *failures);
/* Loaded plugins (RatPluginInfo*), in load order. */
const GPtrArray *rat_registry_plugins(RatRegistry *reg);

/* ---- tasks (added by issue 3) -------------------------------------------------------------------------------
 * A task is what `ratfw run` does with an experiment (train_gan, pretrain_clip, ...). Its type has kind
 * RAT_KIND_TASK; its argument table validates the experiment's `train:` section. The run context (run.h) gives
 * it the run directory, the registry, the parsed experiment, the log, metrics, progress and a stop flag. */
typedef struct _RatRunContext RatRunContext;
typedef struct {
  /* Does the work; returns FALSE with @error on failure. Should poll rat_run_should_stop() and, when it is set,
   * checkpoint and return TRUE early (rat_run_stopped() then records an interrupted run). */
  gboolean (*run)(RatModule *task, RatRunContext *ctx, GError **error);
} RatTaskIface;

/* ---- argument tables as a service (core/config.c) -----------------------------------------------------------
 * Validates the mapping @node (may be NULL: all defaults) against @args and fills @options (zeroed, at least
 * the type's options_size). Every problem is reported (file:line:column each, one per line in the message).
 * MODULE arguments are looked up in @reg and their own arguments validated recursively. */
gboolean rat_args_parse(RatRegistry *reg, const RatArgSpec *args, guint n_args, RatConfigNode *node,
                        gpointer options, GError **error);
/* Frees what rat_args_parse stored in @options (strings, lists, module specs); not @options itself. */
void rat_args_clear(const RatArgSpec *args, guint n_args, gpointer options);
/* A RatModuleSpec for a type with default arguments (node NULL). g_free via rat_module_spec_free. */
RatModuleSpec *rat_module_spec_new(const char *type_name, RatConfigNode *node);
void rat_module_spec_free(RatModuleSpec *spec);

/* ---- profiling for `ratfw inspect` (core/module.c) ----------------------------------------------------------- */
typedef struct {
  RatModule *module;
  RatShape out_shape; /* of the last call; ndim -1 when the module returned no tensor */
  guint64 flops;      /* reported by kernels while this module was the innermost one (self, not children) */
  guint calls;
} RatProfileEntry;
void rat_profile_begin(void);
/* Ends profiling; returns the entries (RatProfileEntry*, g_free'd by the array) in first-entry order. */
GPtrArray *rat_profile_end(void);
guint64 rat_profile_total_flops(void); /* FLOPs reported since rat_profile_begin */

G_END_DECLS
