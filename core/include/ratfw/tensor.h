/* ratfw tensors: shape and strides over reference-counted storage, and the scope that owns temporaries.
 *
 * Ownership rule (read this first): every function that returns a new RatTensor* hands its reference to the
 * innermost RatScope of the calling thread; the tensor lives until that scope is popped. To keep a tensor
 * longer, take a reference (rat_tensor_ref) and drop it later (rat_tensor_unref), or pop the scope with
 * rat_scope_pop_keep(). Model code therefore reads like PyTorch: y = rat_add(rat_mul(g, x), b);
 *
 * Layout: shapes are always given in the API order (NCHW for images). Strides may be any dense permutation;
 * convolutions produce channels-last (NHWC strides) because oneDNN is fastest there, and elementwise ops keep
 * the layout of their first operand. rat_tensor_contiguous() gives row-major data when a caller needs it.
 */
#pragma once

#include <glib.h>
#include <stdint.h>

G_BEGIN_DECLS

#define RAT_MAX_DIMS 8

typedef enum {
  RAT_DTYPE_F32 = 0,
  RAT_DTYPE_I32 = 1,
} RatDType;

/* A shape by value: RAT_SHAPE(B, C, H, W). */
typedef struct {
  int ndim;
  gint64 d[RAT_MAX_DIMS];
} RatShape;

#define RAT__NARG(...) RAT__NARG_(__VA_ARGS__, 8, 7, 6, 5, 4, 3, 2, 1, 0)
#define RAT__NARG_(_1, _2, _3, _4, _5, _6, _7, _8, N, ...) N
#define RAT_SHAPE(...) ((RatShape){.ndim = RAT__NARG(__VA_ARGS__), .d = {__VA_ARGS__}})
#define RAT_SHAPE0 ((RatShape){.ndim = 0})

typedef struct _RatStorage RatStorage;
typedef struct _RatNode RatNode;
typedef struct _RatTensor RatTensor;

struct _RatStorage {
  gint ref;
  gsize nbytes;
  gpointer data;     /* 64-byte aligned */
  guint64 version;   /* bumped by in-place writers (optimizer steps); caches of derived data compare it */
  gboolean external; /* data not owned (mmap, caller buffer) */
};

struct _RatTensor {
  gint ref;
  RatDType dtype;
  int ndim;
  gint64 shape[RAT_MAX_DIMS];
  gint64 stride[RAT_MAX_DIMS]; /* in elements */
  gint64 offset;               /* in elements */
  RatStorage *storage;

  /* autograd */
  gboolean requires_grad; /* leaf flag (parameters, inputs a gradient is wanted for) */
  RatNode *grad_fn;       /* node that produced this tensor, NULL for leaves and constants */
  guint output_nr;        /* which output of grad_fn */
  RatNode *grad_acc;      /* for leaves: the accumulate node, created when first used in a graph */
  RatTensor *grad;        /* accumulated gradient (leaves), owned */
  gboolean frozen;        /* parameter that takes no gradient (requires_grad stays FALSE) */

  char *name; /* optional, owned */
};

/* ---- scopes (autorelease pools) ---------------------------------------------------------------------- */

typedef guint RatScope;
RatScope rat_scope_push(void);
void rat_scope_pop(RatScope scope);
/* Pop, keeping @t alive in the enclosing scope. Returns @t. */
RatTensor *rat_scope_pop_keep(RatScope scope, RatTensor *t);
/* Hand an owned reference to the current scope (used by constructors; rarely needed by users). */
RatTensor *rat_scope_adopt(RatTensor *t);
guint rat_scope_size(void);

/* ---- construction ------------------------------------------------------------------------------------- */

RatTensor *rat_empty(RatShape shape);          /* f32, row-major, uninitialised */
RatTensor *rat_empty_dtype(RatDType dtype, RatShape shape);
RatTensor *rat_empty_nhwc(RatShape shape);     /* 4-D f32 with channels-last strides */
RatTensor *rat_empty_like(const RatTensor *t); /* same shape, dtype and dense layout */
RatTensor *rat_zeros(RatShape shape);
RatTensor *rat_zeros_like(const RatTensor *t);
RatTensor *rat_ones(RatShape shape);
RatTensor *rat_full(RatShape shape, float value);
RatTensor *rat_full_like(const RatTensor *t, float value);
RatTensor *rat_scalar(float value); /* 0-d */
RatTensor *rat_from_data(RatShape shape, const float *data);
RatTensor *rat_from_i32(RatShape shape, const gint32 *data);
RatTensor *rat_arange(gint64 n); /* f32 0..n-1 */

RatTensor *rat_tensor_ref(RatTensor *t);
void rat_tensor_unref(RatTensor *t);

/* ---- metadata ------------------------------------------------------------------------------------------ */

RatShape rat_tensor_shape(const RatTensor *t);
gint64 rat_tensor_numel(const RatTensor *t);
gint64 rat_shape_numel(RatShape s);
gboolean rat_shape_equal(RatShape a, RatShape b);
char *rat_shape_to_string(RatShape s); /* "[2, 3, 4]", g_free */
gboolean rat_tensor_is_contiguous(const RatTensor *t);
gboolean rat_tensor_is_nhwc(const RatTensor *t); /* 4-D with dense channels-last strides */
gboolean rat_tensor_is_dense(const RatTensor *t); /* some permutation of dims is contiguous */
gboolean rat_tensor_same_layout(const RatTensor *a, const RatTensor *b); /* same shape and strides, both dense */
void rat_tensor_set_name(RatTensor *t, const char *name);
float *rat_tensor_data(const RatTensor *t);      /* f32 pointer at the tensor's offset */
gint32 *rat_tensor_data_i32(const RatTensor *t); /* i32 pointer at the tensor's offset */
gint64 rat_tensor_dim(const RatTensor *t, int d); /* negative d counts from the end */
float rat_tensor_item(const RatTensor *t);        /* value of a 1-element tensor */
float rat_tensor_get(const RatTensor *t, const gint64 *index);

/* Copies to a plain row-major float array of numel elements (caller-provided). */
void rat_tensor_read(const RatTensor *t, float *out);
/* Writes row-major data into t (respecting its strides). No autograd. */
void rat_tensor_write(RatTensor *t, const float *in);
/* In-place, no autograd: dst <- src (shapes equal, any strides), dst <- value. */
void rat_tensor_copy_(RatTensor *dst, const RatTensor *src);
void rat_tensor_fill_(RatTensor *t, float value);
/* In-place, no autograd: dst += alpha * src (src broadcasts to dst). */
void rat_tensor_add_(RatTensor *dst, const RatTensor *src, float alpha);
/* Marks the storage as modified in place (invalidates caches keyed on storage version). */
void rat_tensor_bump_version(RatTensor *t);

/* Views and detaching (no data copy). */
RatTensor *rat_tensor_detach(RatTensor *t);
RatTensor *rat_tensor_alias(RatTensor *t); /* same data, no autograd history */
void rat_tensor_set_requires_grad(RatTensor *t, gboolean requires);
void rat_tensor_zero_grad(RatTensor *t);
gboolean rat_tensor_needs_grad(const RatTensor *t); /* requires_grad or has grad_fn */

/* ---- storage and the caching allocator ---------------------------------------------------------------- */

RatStorage *rat_storage_new(gsize nbytes);
RatStorage *rat_storage_new_external(gpointer data, gsize nbytes);
RatStorage *rat_storage_ref(RatStorage *s);
void rat_storage_unref(RatStorage *s);
/* Allocator statistics: bytes currently handed out, bytes cached for reuse, peak handed out. */
void rat_allocator_stats(gsize *in_use, gsize *cached, gsize *peak);
void rat_allocator_trim(void);

/* Builds a tensor header over existing storage (takes a new reference to storage). */
RatTensor *rat_tensor_new_view(RatStorage *storage, RatDType dtype, int ndim, const gint64 *shape,
                               const gint64 *stride, gint64 offset);

/* Aborts with a message for a programming error (wrong shapes passed by code, not by a user: user-caused
 * problems are GErrors raised earlier, at configuration or load time). */
#define rat_check(cond, ...)                                                                                  \
  do {                                                                                                        \
    if (G_UNLIKELY(!(cond))) g_error(__VA_ARGS__);                                                            \
  } while (0)

/* ---- library set-up -------------------------------------------------------------------------------------- */

void rat_init(void);
int rat_get_num_threads(void);
void rat_set_num_threads(int n);

G_END_DECLS
