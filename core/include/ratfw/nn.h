/* ratfw training building blocks: a counter-based RNG (Philox4x32-10, Salmon et al., SC'11 "Parallel random
 * numbers: as easy as 1, 2, 3"), PyTorch 1.13 default initialisers (reference §2.10), parameter arenas with
 * named views, and the Adam / SGD optimisers of torch.optim stepping over one flat buffer. */
#pragma once

#include <ratfw/io.h>
#include <ratfw/tensor.h>

G_BEGIN_DECLS

/* ---- random numbers (core/nn/rng.c) ---------------------------------------------------------------------
 * A RatRng is (seed, offset). Every draw is a pure function of the Philox key (the seed) and a counter block
 * (the offset, then the element index), so the numbers never depend on the thread count. A fill of n values
 * consumes ceil(n/4) counter blocks (4 x 32 bits each; element i uses block offset + i/4, word i%4); a scalar
 * draw consumes one block. Saving (seed, offset) in a checkpoint and restoring it continues the exact
 * sequence. Values are drawn in the tensor's logical row-major order whatever its strides. */
typedef struct {
  guint64 seed;
  guint64 offset;
} RatRng;

void rat_rng_init(RatRng *rng, guint64 seed);
void rat_rng_get_state(const RatRng *rng, guint64 *seed, guint64 *offset);
void rat_rng_set_state(RatRng *rng, guint64 seed, guint64 offset);
/* The raw generator: out = Philox4x32-10(counter ctr[4], key key[2]). */
void rat_philox4x32_10(const guint32 ctr[4], const guint32 key[2], guint32 out[4]);

guint32 rat_rng_u32(RatRng *rng);
guint64 rat_rng_u64(RatRng *rng);
double rat_rng_double(RatRng *rng); /* [0, 1), 53 bits */
/* Uniform integer in [0, n) (n >= 1), 64-bit multiply-shift: bias below n / 2^64. */
guint64 rat_rng_below(RatRng *rng, guint64 n);

/* In place, no autograd. Uniform: lo + (hi - lo) * u, u = (x >> 8) * 2^-24 in [0, 1), result kept below hi.
 * Normal: Box-Muller on the block's two pairs of 32-bit uniforms (cos and sin of each pair). */
void rat_rng_fill_uniform_(RatRng *rng, RatTensor *t, float lo, float hi);
void rat_rng_fill_normal_(RatRng *rng, RatTensor *t, float mean, float std);
/* N(0, 1) restricted to [-bound, bound] (DF-GAN's truncated noise uses bound 2): element i rejects normals
 * from its own counter sequence (block offset + i, attempt k in the third counter word) until one fits.
 * Consumes n blocks. */
void rat_rng_truncated_normal_(RatRng *rng, RatTensor *t, float bound);
RatTensor *rat_rand(RatRng *rng, RatShape shape);  /* U[0, 1), scope-owned */
RatTensor *rat_randn(RatRng *rng, RatShape shape); /* N(0, 1), scope-owned */
/* Fisher-Yates: perm[0..n) becomes a uniformly random permutation of 0..n-1. */
void rat_rng_permutation(RatRng *rng, gint64 n, gint64 *perm);
RatTensor *rat_randperm(RatRng *rng, gint64 n); /* i32 [n], scope-owned */

/* ---- initialisers (core/nn/init.c), in place, no autograd ----------------------------------------------- */
/* torch.nn.init._calculate_fan_in_and_fan_out: weight [O, I/groups, K...] -> fan_in = I/groups * prod(K),
 * fan_out = O * prod(K). Needs at least 2 dims. */
void rat_init_fans(RatShape weight_shape, gint64 *fan_in, gint64 *fan_out);
void rat_init_uniform_(RatRng *rng, RatTensor *t, float lo, float hi);
void rat_init_normal_(RatRng *rng, RatTensor *t, float mean, float std);
void rat_init_constant_(RatTensor *t, float value);
/* kaiming_uniform_(mode='fan_in', nonlinearity='leaky_relu'): bound = sqrt(3) * sqrt(2 / (1 + a^2)) / sqrt(fan_in). */
void rat_init_kaiming_uniform_(RatRng *rng, RatTensor *t, double a);
/* xavier_uniform_: bound = gain * sqrt(6 / (fan_in + fan_out)). */
void rat_init_xavier_uniform_(RatRng *rng, RatTensor *t, double gain);
/* nn.Conv2d / nn.Linear reset_parameters(): weight kaiming_uniform(a = sqrt(5)) = U(+-1/sqrt(fan_in)), bias
 * (may be NULL) U(+-1/sqrt(fan_in)) with fan_in from the weight. */
void rat_init_torch_default_(RatRng *rng, RatTensor *weight, RatTensor *bias);
/* nn.LSTM: every weight and bias U(+-1/sqrt(hidden)). */
void rat_init_lstm_(RatRng *rng, RatTensor *t, gint64 hidden);

/* ---- parameter arenas (core/nn/params.c) ------------------------------------------------------------------
 * A RatParams is an ordered set of named tensors. Trainable parameters require grad; frozen parameters take no
 * gradient but are saved and loaded; buffers (running statistics) are saved and loaded, never trained. Model
 * code keeps the RatTensor pointers it gets from rat_params_add (they live as long as the set).
 * rat_params_finalize() packs every trainable parameter into ONE contiguous storage and points each one's
 * ->grad at a view of ONE contiguous gradient storage, so backward accumulates in place and the optimisers
 * run one flat loop. Finalize before building any graph (it moves the data). */
typedef enum {
  RAT_PARAM_TRAINABLE = 0,
  RAT_PARAM_FROZEN,
  RAT_PARAM_BUFFER,
} RatParamKind;

typedef struct _RatParams RatParams;

RatParams *rat_params_new(void);
void rat_params_free(RatParams *p);
/* A new zero-filled tensor named @name (duplicate names are a programming error). Borrowed: owned by @p. */
RatTensor *rat_params_add(RatParams *p, const char *name, RatShape shape, RatParamKind kind);
/* Adds an existing leaf tensor (a reference is taken; it is moved into the arena at finalize). */
RatTensor *rat_params_add_tensor(RatParams *p, const char *name, RatTensor *t, RatParamKind kind);
/* Adds every entry of @src to @dst as "<prefix>.<name>" (prefix NULL or "": names unchanged); the tensors are
 * shared. Neither set may be finalized. Fails (RAT_ERROR_FAILED) on a name clash, adding nothing. */
gboolean rat_params_merge(RatParams *dst, RatParams *src, const char *prefix, GError **error);
void rat_params_finalize(RatParams *p);
gboolean rat_params_is_finalized(const RatParams *p);

guint rat_params_size(const RatParams *p); /* number of entries, in insertion order */
const char *rat_params_name(const RatParams *p, guint i);
RatTensor *rat_params_tensor(const RatParams *p, guint i);
RatParamKind rat_params_kind(const RatParams *p, guint i);
RatTensor *rat_params_lookup(const RatParams *p, const char *name); /* NULL if absent */
gint64 rat_params_numel(const RatParams *p, RatParamKind kind);
/* After finalize: 1-D views over all trainable values / gradients, in insertion order. Borrowed. */
RatTensor *rat_params_flat(RatParams *p);
RatTensor *rat_params_flat_grad(RatParams *p);

/* After finalize. zero_grad re-attaches gradients the engine replaced (create_graph) and zeroes the flat
 * buffer; sync_grads copies such replaced gradients into the flat buffer (the optimisers call it). */
void rat_params_zero_grad(RatParams *p);
void rat_params_sync_grads(RatParams *p);
/* sqrt(sum of squared gradients) over trainable parameters, in double, independent of the thread count. */
double rat_params_grad_norm(RatParams *p);
/* Scales gradients so their global norm is at most @max_norm (torch clip_grad_norm_). Returns the old norm. */
double rat_params_clip_grad_norm(RatParams *p, double max_norm);

/* Loading checks every entry first and changes nothing on error: a missing tensor is RAT_ERROR_NOT_FOUND, a
 * shape mismatch RAT_ERROR_SHAPE naming the expected and found shapes. The source name of entry N is
 * "<prefix>N" (prefix used verbatim, may be NULL). Tensors in the source that @p lacks are ignored. */
gboolean rat_params_load(RatParams *p, const RatSafetensors *st, const char *prefix, GError **error);
gboolean rat_params_load_map(RatParams *p, GHashTable *map, const char *prefix, GError **error);
/* name (owned, with @prefix) -> RatTensor* (borrowed) for every entry. */
GHashTable *rat_params_to_map(const RatParams *p, const char *prefix);
gboolean rat_params_save(const RatParams *p, const char *path, GHashTable *metadata, GError **error);

/* ---- optimisers (core/nn/optim.c) -------------------------------------------------------------------------
 * torch.optim.Adam (L2 weight decay added to the gradient, bias correction) and torch.optim.SGD (momentum,
 * dampening, nesterov, weight decay), over a finalized RatParams in one flat parallel loop (no reduction,
 * so the result bits do not depend on the thread count). A parameter that received no gradient in a step
 * is stepped with a zero gradient (torch would skip it). */
typedef struct _RatOptim RatOptim;

RatOptim *rat_adam_new(RatParams *params, float lr, float beta1, float beta2, float eps, float weight_decay);
RatOptim *rat_sgd_new(RatParams *params, float lr, float momentum, float dampening, float weight_decay,
                      gboolean nesterov);
void rat_optim_free(RatOptim *o);
void rat_optim_step(RatOptim *o);
void rat_optim_zero_grad(RatOptim *o);
void rat_optim_set_lr(RatOptim *o, float lr);
float rat_optim_get_lr(const RatOptim *o);
gint64 rat_optim_steps(const RatOptim *o);
/* State as named tensors: "<prefix>step" (i32 scalar) and, per trainable parameter N, Adam's
 * "<prefix>exp_avg.N" and "<prefix>exp_avg_sq.N" or SGD's "<prefix>momentum_buffer.N". The map owns its names;
 * the tensors are scope-owned views of the live state (they change with the next step). */
GHashTable *rat_optim_state_to_map(RatOptim *o, const char *prefix);
gboolean rat_optim_state_load_map(RatOptim *o, GHashTable *map, const char *prefix, GError **error);
gboolean rat_optim_state_load(RatOptim *o, const RatSafetensors *st, const char *prefix, GError **error);

G_END_DECLS
