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

G_END_DECLS
