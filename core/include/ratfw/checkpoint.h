/* Training checkpoints: parameters ("model.<name>"), optimiser state ("optim.<...>"), the step and the RNG
 * state (metadata) in one safetensors file written atomically (temporary file, fsync, rename), so a crash
 * never leaves a torn checkpoint and Python tools can read it. A resumed run continues bit for bit. */
#pragma once

#include <ratfw/nn.h>

G_BEGIN_DECLS

/* @optim and @rng may be NULL. @extra: more metadata (string -> string), may be NULL. */
gboolean rat_checkpoint_save(const char *path, RatParams *params, RatOptim *optim, gint64 step, const RatRng *rng,
                             GHashTable *extra, GError **error);
/* Restores what rat_checkpoint_save wrote into @params / @optim / @rng and returns the step, or -1 with @error
 * (missing metadata or tensors, shape mismatches: nothing is half-loaded for the parameters). */
gint64 rat_checkpoint_load(const char *path, RatParams *params, RatOptim *optim, RatRng *rng, GError **error);

/* Checkpoints of several networks (a GAN's generator and discriminator, each with its own optimiser): every part
 * stores its parameters under @params_prefix and its optimiser state (optional) under @optim_prefix. @tensors: more
 * named tensors to store (name -> RatTensor*, e.g. an EMA copy), may be NULL. */
typedef struct {
  RatParams *params;
  const char *params_prefix; /* "model." */
  RatOptim *optim;           /* may be NULL */
  const char *optim_prefix;  /* "optim_g." */
} RatCheckpointPart;

gboolean rat_checkpoint_save_parts(const char *path, const RatCheckpointPart *parts, guint n_parts, GHashTable *tensors,
                                   gint64 step, const RatRng *rng, GHashTable *extra, GError **error);
/* Loads what rat_checkpoint_save_parts wrote: validates every part before changing anything, restores @rng
 * (may be NULL), fills each tensor of @tensors (name -> RatTensor* of the right shape; may be NULL) and returns
 * the step, or -1 with @error. @meta_out (may be NULL) receives every metadata entry (g_hash_table_unref). */
gint64 rat_checkpoint_load_parts(const char *path, const RatCheckpointPart *parts, guint n_parts, GHashTable *tensors,
                                 RatRng *rng, GHashTable **meta_out, GError **error);

G_END_DECLS
